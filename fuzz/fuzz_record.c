/*
 * fuzz_record.c - the block codec (record.h): a block file's header, then
 * its records walked as recovery walks them, resynchronising after damage,
 * and the rangeset body of every DEL and LOST record.
 *
 * Input: a mode byte (bit 0: fix the checksums), then a block file.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "rangeset.h"
#include "record.h"
#include "util.h"

static void check_record(const uint8_t *p, size_t avail, const jsi_rechdr *h) {
    if (h->len < JSI_REC_HDR_LEN || h->len > avail)
        fuzz_fail("a whole record longer than the bytes it was parsed from");
    if (h->type == JSI_REC_MSG &&
        (size_t)h->subj_len + h->hdr_len > h->len - JSI_REC_HDR_LEN)
        fuzz_fail("a message's subject and headers overrun its record");
    if (!jsi_rec_body_ok(p, h) ||
        (h->type != JSI_REC_DEL && h->type != JSI_REC_LOST))
        return;
    /* DEL: a rangeset; LOST: the lost bytes, then a rangeset. */
    size_t skip = h->type == JSI_REC_LOST ? 8 : 0;
    size_t body = h->len - JSI_REC_HDR_LEN - skip;
    jsi_rangeset rs = JSI_RANGESET_INIT;
    size_t used = 0;
    if (jsi_rs_decode(&rs, p + JSI_REC_HDR_LEN + skip, body, &used) == 0 &&
        used > body)
        fuzz_fail("rangeset decode used more than it was given");
    jsi_rs_free(&rs);
}

/* Recovery's walk: a valid record moves on by its length, a torn one ends
 * the block, anything else resynchronises at the next valid header. */
static void walk(const uint8_t *p, size_t n) {
    size_t o = n < JSI_BLK_HDR_LEN ? n : JSI_BLK_HDR_LEN;
    while (o < n) {
        jsi_rechdr h;
        int r = jsi_rec_parse_hdr(p + o, n - o, &h);
        if (r == 1) {
            check_record(p + o, n - o, &h);
            o += h.len;
        } else if (r == 0) {
            return;
        } else {
            size_t next = jsi_rec_resync(p, n, o + 1);
            if (next <= o || next > n)
                fuzz_fail("resync went backwards or past the end");
            if (next < n && jsi_rec_parse_hdr(p + next, n - next, &h) < 0)
                fuzz_fail("resync stopped at an invalid header");
            o = next;
        }
    }
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
        fuzz_fix_block(p, n);
    uint64_t no = n >= 24 ? jsi_get64(p + 16) : 1;
    (void)jsi_blkhdr_check(p, n, no);
    (void)jsi_blkhdr_check(p, n, 1);
    walk(p, n);
    free(p);
    return 0;
}
