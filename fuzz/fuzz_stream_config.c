/*
 * fuzz_stream_config.c - a stream config's stored form (the TLV of
 * stream_config.c, inside each catalogue entry) without the catalogue's
 * checksum in the way: decode, NATS's config rules, and a round trip.
 *
 * Input: the TLV bytes.
 */
#include "fuzz_util.h"
#include "stream.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    jsi_scfg c, c2;
    jsi_buf b = {0};
    if (jsi_scfg_decode(data, size, &c) != 0)
        return 0;
    if (jsi_scfg_encode(&c, &b) == 0) {
        if (jsi_scfg_decode(b.p, b.len, &c2) != 0)
            fuzz_fail("a decoded stream config does not decode once encoded");
        if (!jsi_scfg_equal(&c, &c2))
            fuzz_fail("a stream config changed across encode and decode");
        if (jsi_scfg_check_update(&c, &c2) != 0)
            fuzz_fail("a stream config cannot be updated to itself");
        jsi_scfg_free(&c2);
    }
    jsi_buf_free(&b);
    jsi_scfg_free(&c);
    return 0;
}
