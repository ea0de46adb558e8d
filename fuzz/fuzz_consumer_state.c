/*
 * fuzz_consumer_state.c - a durable consumer's state log
 * (consumer_state.h): replay of a file image, the normalised state's
 * invariants, a round trip through a SNAP record, and the log file itself
 * opened from the image on a private RAM disk (torn tail cut off, damaged
 * header replaced), appended to, rewritten and reopened.
 *
 * Input: a mode byte (bit 0: fix each record's checksum), then the file.
 */
#include <stdlib.h>
#include <string.h>

#include "consumer_state.h"
#include "fuzz_util.h"
#include "vfs.h"

static void check_state(const jsi_cstate *s) {
    for (size_t i = 0; i < s->acked.n; i++)
        if (s->acked.r[i].lo <= s->floor_sseq)
            fuzz_fail("an acked sequence at or below the ack floor");
    if (s->floor_sseq < UINT64_MAX && jsi_rs_contains(&s->acked,
                                                      s->floor_sseq + 1))
        fuzz_fail("the ack floor did not advance over acked sequences");
    for (size_t i = 0; i < s->ncounts; i++) {
        const jsi_cstate_count *c = &s->counts[i];
        if (c->n < 2 || c->sseq <= s->floor_sseq ||
            jsi_rs_contains(&s->acked, c->sseq) ||
            (i && c->sseq <= s->counts[i - 1].sseq))
            fuzz_fail("a delivery count that a normalised state drops");
    }
}

static int same_state(const jsi_cstate *a, const jsi_cstate *b) {
    return a->dlv_dseq == b->dlv_dseq && a->dlv_sseq == b->dlv_sseq &&
           a->floor_dseq == b->floor_dseq && a->floor_sseq == b->floor_sseq &&
           a->lps_end == b->lps_end && a->acked.n == b->acked.n &&
           a->ncounts == b->ncounts &&
           (!a->acked.n || memcmp(a->acked.r, b->acked.r,
                                  a->acked.n * sizeof *a->acked.r) == 0) &&
           (!a->ncounts || memcmp(a->counts, b->counts,
                                  a->ncounts * sizeof *a->counts) == 0);
}

static void round_trip(const jsi_cstate *s) {
    jsi_buf b = {0};
    jsi_cstate t;
    size_t good;
    jsi_cstate_init(&t);
    if (jsi_cstate_enc_header(&b) == 0 && jsi_cstate_enc_snap(s, &b) == 0) {
        if (jsi_cstate_replay(b.p, b.len, &t, &good) != 0 || good != b.len)
            fuzz_fail("a SNAP of a replayed state does not replay");
        if (!same_state(s, &t))
            fuzz_fail("a state changed across a SNAP record");
    }
    jsi_cstate_free(&t);
    jsi_buf_free(&b);
}

/* Open the log from the image, add a record, rewrite, reopen: the state
 * must be what replay said, and survive the rewrite. */
static void log_file(const uint8_t *p, size_t n, const jsi_cstate *want) {
    js_vfs *vfs = jsi_vfs_mem_new();
    jsi_cslog *l = NULL;
    jsi_cstate st;
    js_vfs_file *f = NULL;
    if (!vfs)
        return;
    jsi_cstate_init(&st);
    vfs->mkdir(vfs, "/d");
    if (jsi_vfs_open(vfs, "/d/c", JS_VFS_WRITE | JS_VFS_CREATE, &f) == 0) {
        if (n)
            f->io->write(f, p, n, 0);
        jsi_vfs_close(f);
    }
    if (jsi_cslog_open(vfs, "/d", "c", &st, &l) == 0) {
        if (want && !same_state(want, &st))
            fuzz_fail("the log opened to another state than its replay");
        jsi_buf b = {0};
        uint64_t done = st.floor_sseq + 2;
        if (done > st.floor_sseq &&
            jsi_cstate_enc_acks(st.dlv_dseq, st.dlv_sseq, st.floor_dseq,
                                st.floor_sseq, &done, 1, &b) == 0 &&
            jsi_cslog_append(l, b.p, b.len) == 0)
            jsi_cslog_sync(l);
        jsi_buf_free(&b);
        jsi_cslog_rewrite(l, &st);
        jsi_cslog_close(l);
        l = NULL;
        if (jsi_cslog_open(vfs, "/d", "c", &st, &l) == 0 && jsi_cslog_damage(l, NULL))
            fuzz_fail("a rewritten log is damaged");
        jsi_cslog_close(l);
    }
    jsi_cstate_free(&st);
    jsi_vfs_mem_free(vfs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t n = size - 1, good = 0;
    uint8_t *p = malloc(n ? n : 1);
    jsi_cstate s;
    if (!p)
        return 0;
    memcpy(p, data + 1, n);
    if (data[0] & FUZZ_MODE_FIX_CRC)
        fuzz_fix_cstate(p, n);
    jsi_cstate_init(&s);
    int rc = jsi_cstate_replay(p, n, &s, &good);
    if (good > n)
        fuzz_fail("replay claims more valid bytes than there are");
    if (rc == 0) {
        check_state(&s);
        round_trip(&s);
    }
    log_file(p, n, rc == 0 ? &s : NULL);
    jsi_cstate_free(&s);
    free(p);
    return 0;
}
