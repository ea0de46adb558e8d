/*
 * fuzz_catalog.c - the store's catalogue (catalog.c): every stream's id,
 * creation time and config; each config through the stream config codec
 * and NATS's config rules. A catalogue that decodes must encode back to
 * the same bytes.
 *
 * Input: a mode byte (bit 0: fix the trailing checksum), then the file.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "store.h"
#include "util.h"

static void round_trip(uint64_t next_id, const jsi_cat_entry *e, size_t n) {
    jsi_buf b = {0};
    uint64_t next2 = 0;
    jsi_cat_entry *e2 = NULL;
    size_t n2 = 0;
    if (jsi_catalog_encode(next_id, e, n, &b) != 0)
        return;
    if (jsi_catalog_decode(b.p, b.len, &next2, &e2, &n2) != 0 ||
        next2 != next_id || n2 != n)
        fuzz_fail("a decoded catalogue does not decode once encoded");
    for (size_t i = 0; i < n; i++)
        if (e2[i].id != e[i].id || e2[i].created != e[i].created ||
            !jsi_scfg_equal(&e2[i].cfg, &e[i].cfg))
            fuzz_fail("a catalogue entry changed across encode and decode");
    jsi_catalog_free(e2, n2);
    jsi_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t n = size - 1;
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return 0;
    memcpy(p, data + 1, n);
    if (data[0] & FUZZ_MODE_FIX_CRC)
        fuzz_fix_trailer(p, n);
    uint64_t next_id = 0;
    jsi_cat_entry *e = NULL;
    size_t count = 0;
    if (jsi_catalog_decode(p, n, &next_id, &e, &count) == 0) {
        round_trip(next_id, e, count);
        jsi_catalog_free(e, count);
    } else if (e || count) {
        fuzz_fail("a failed decode returned entries");
    }
    free(p);
    return 0;
}
