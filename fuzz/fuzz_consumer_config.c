/*
 * fuzz_consumer_config.c - a durable consumer's config file
 * (consumer_config_file.c): framing, the tag-length-value body, NATS's
 * consumer rules, and a round trip through encode. Also the filter helpers
 * a decoded config feeds.
 *
 * Input: a mode byte (bit 0: fix the length field and the checksum), then
 * the file.
 */
#include <stdlib.h>
#include <string.h>

#include "consumer_config.h"
#include "fuzz_util.h"
#include "util.h"

static void round_trip(uint64_t id, int64_t created, const jsi_ccfg *c) {
    jsi_buf b = {0};
    jsi_ccfg c2;
    uint64_t id2;
    int64_t created2;
    if (jsi_ccfg_file_encode(id, created, c, &b) != 0)
        return;
    if (jsi_ccfg_file_decode(b.p, b.len, &id2, &created2, &c2) != 0)
        fuzz_fail("a decoded consumer config does not decode once encoded");
    if (id2 != id || created2 != created || !jsi_ccfg_equal(c, &c2))
        fuzz_fail("a consumer config changed across encode and decode");
    if (jsi_ccfg_check_update(c, &c2) != 0)
        fuzz_fail("a consumer config cannot be updated to itself");
    jsi_ccfg_free(&c2);
    jsi_buf_free(&b);
}

static void filters(const jsi_ccfg *c) {
    const char *const *f;
    size_t n = jsi_ccfg_filters(c, &f);
    for (size_t i = 0; i < n; i++)
        if (!jsi_ccfg_matches(c, f[i], strlen(f[i])) &&
            !strpbrk(f[i], "*>"))
            fuzz_fail("a literal filter does not match itself");
    (void)jsi_ccfg_matches(c, "a.b.c", 5);
    (void)jsi_ccfg_wq_conflict(c, c, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t n = size - 1;
    uint8_t *p = malloc(n ? n : 1);
    jsi_ccfg c;
    uint64_t id = 0;
    int64_t created = 0;
    if (!p)
        return 0;
    memcpy(p, data + 1, n);
    if (data[0] & FUZZ_MODE_FIX_CRC)
        fuzz_fix_ccfg(p, n);
    if (jsi_ccfg_file_decode(p, n, &id, &created, &c) == 0) {
        round_trip(id, created, &c);
        filters(&c);
        jsi_ccfg_free(&c);
    }
    free(p);
    return 0;
}
