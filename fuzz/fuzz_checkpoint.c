/*
 * fuzz_checkpoint.c - the index checkpoint decoder (checkpoint.h) on its
 * own: every field, block summary, rangeset and subject entry, into an
 * empty message store; then the in-memory walks that trust what it
 * loaded (subject listing, counting by summaries), which must not crash
 * even when the block files it names are missing.
 *
 * Input: a mode byte (bit 0: fix the trailing checksum), then the file.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz_util.h"
#include "msgstore.h"
#include "msgstore_int.h"
#include "vfs.h"

static void use_index(jsi_ms *ms) {
    jsi_ms_state st;
    jsi_ms_state_get(ms, &st);
    const char *f[2] = {"a.*", ">"};
    uint64_t n;
    jsi_ms_count(ms, f, 1, ms->first, &n);
    jsi_ms_count(ms, NULL, 0, ms->last, &n);
    jsi_sidx_entry *e = jsi_ms_subject_next(ms, NULL, NULL, 0);
    for (int i = 0; e && i < 32; i++) {
        char after[JS_MAX_SUBJECT_LEN + 1];
        size_t len = e->len;
        memcpy(after, e->subj, len + 1);
        e = jsi_ms_subject_next(ms, ">", after, len);
    }
    (void)jsi_ms_next_with_ids(ms, ms->first);
    (void)jsi_ms_seq_from_time(ms, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t len = size - 1;
    uint8_t *p = malloc(len ? len : 1);
    js_vfs *vfs = jsi_vfs_mem_new();
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    jsi_ms_cfg cfg = {vfs, "/s", 4096, JS_SYNC_NONE, 0, fuzz_clock, NULL, &mu};
    jsi_ms *ms = NULL;
    if (!p || !vfs)
        goto out;
    memcpy(p, data + 1, len);
    if (data[0] & FUZZ_MODE_FIX_CRC)
        fuzz_fix_trailer(p, len);
    vfs->mkdir(vfs, "/s");
    pthread_mutex_lock(&mu);
    /* An empty store, emptied further to the state recovery decodes into. */
    if (jsi_ms_open(&cfg, 1, &ms) == 0 && jsi_ms_reset_index(ms) == 0) {
        uint64_t no, off;
        uint32_t crc;
        if (jsi_ckpt_decode(ms, p, len, &no, &off, &crc) == 0)
            use_index(ms);
        jsi_ms_reset_index(ms);
    }
    jsi_ms_free(ms);
    pthread_mutex_unlock(&mu);
out:
    jsi_vfs_mem_free(vfs);
    free(p);
    return 0;
}
