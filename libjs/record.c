/*
 * record.c - block header and record codec (see record.h for the format).
 */
#include "record.h"

#include "jetstream.h"
#include "util.h"

static const uint8_t blk_magic[8] = {'J', 'S', 'B', 'L', 'K', '\r', '\n', 0x1a};

void jsi_blkhdr_encode(uint8_t *p, uint64_t blkno) {
    memcpy(p, blk_magic, 8);
    jsi_put32(p + 8, JSI_BLK_VERSION);
    jsi_put32(p + 12, 0);
    jsi_put64(p + 16, blkno);
    jsi_put32(p + 24, 0);
    jsi_put32(p + 28, jsi_crc32c(0, p, 28));
}

int jsi_blkhdr_check(const uint8_t *p, size_t n, uint64_t blkno) {
    if (n < JSI_BLK_HDR_LEN || memcmp(p, blk_magic, 8) != 0)
        return JS_ECORRUPT;
    if (jsi_get32(p + 28) != jsi_crc32c(0, p, 28))
        return JS_ECORRUPT;
    if (jsi_get32(p + 8) != JSI_BLK_VERSION || jsi_get32(p + 12) != 0 ||
        jsi_get64(p + 16) != blkno)
        return JS_ECORRUPT;
    return 0;
}

void jsi_rec_encode_hdr(uint8_t *p, uint32_t len, uint64_t seq, int64_t ts,
                        uint8_t type, uint8_t flags, uint16_t subj_len,
                        uint32_t hdr_len, uint32_t body_crc) {
    jsi_put32(p, JSI_REC_MAGIC);
    jsi_put32(p + 4, len);
    jsi_put64(p + 8, seq);
    jsi_put64(p + 16, (uint64_t)ts);
    p[24] = type;
    p[25] = flags;
    jsi_put16(p + 26, subj_len);
    jsi_put32(p + 28, hdr_len);
    jsi_put32(p + 32, body_crc);
    jsi_put32(p + 36, jsi_crc32c(0, p, 36));
}

size_t jsi_rec_encode_msg(uint8_t *p, uint64_t seq, int64_t ts,
                          uint8_t flags, const char *subj, size_t slen,
                          const void *hdr, size_t hlen, const void *data,
                          size_t dlen) {
    uint8_t *b = p + JSI_REC_HDR_LEN;
    size_t len = JSI_REC_HDR_LEN + slen + hlen + dlen;
    memcpy(b, subj, slen);
    if (hlen)
        memcpy(b + slen, hdr, hlen);
    if (dlen)
        memcpy(b + slen + hlen, data, dlen);
    uint32_t crc = jsi_crc32c(0, b, len - JSI_REC_HDR_LEN);
    jsi_rec_encode_hdr(p, (uint32_t)len, seq, ts, JSI_REC_MSG, flags,
                       (uint16_t)slen, (uint32_t)hlen, crc);
    return len;
}

/* Lengths a record of each type may have; anything else is damage. */
static int rec_lengths_ok(const jsi_rechdr *h) {
    if (h->len < JSI_REC_HDR_LEN || h->len > JSI_REC_MAX_LEN)
        return 0;
    uint64_t body = h->len - JSI_REC_HDR_LEN;
    switch (h->type) {
    case JSI_REC_MSG:
        return h->subj_len > 0 && h->subj_len <= JS_MAX_SUBJECT_LEN &&
               h->hdr_len <= JS_MAX_HDR_LEN &&
               (uint64_t)h->subj_len + h->hdr_len <= body;
    case JSI_REC_ERASED:
        return h->subj_len == 0 && h->hdr_len == 0;
    case JSI_REC_DEL:
        return h->subj_len == 0 && h->hdr_len == 0 && body > 0;
    case JSI_REC_FRONT:
        return h->subj_len == 0 && h->hdr_len == 0 && body == 8;
    case JSI_REC_LOST:
        return h->subj_len == 0 && h->hdr_len == 0 && body > 8;
    default:
        return 0;
    }
}

int jsi_rec_parse_hdr(const uint8_t *p, size_t avail, jsi_rechdr *h) {
    memset(h, 0, sizeof *h); /* callers may copy it whole, padding too */
    if (avail < JSI_REC_HDR_LEN) {
        /* A partial header at the end of the data: torn if it could be the
         * start of a record. */
        if (avail == 0)
            return -1;
        return (avail < 4 || jsi_get32(p) == JSI_REC_MAGIC) ? 0 : -1;
    }
    if (jsi_get32(p) != JSI_REC_MAGIC)
        return -1;
    h->hdr_crc = jsi_get32(p + 36);
    if (h->hdr_crc != jsi_crc32c(0, p, 36) || (p[25] & ~JSI_RECF_KNOWN) ||
        (p[25] && p[24] != JSI_REC_MSG))
        return -1;
    h->flags = p[25];
    h->len = jsi_get32(p + 4);
    h->seq = jsi_get64(p + 8);
    h->ts = (int64_t)jsi_get64(p + 16);
    h->type = p[24];
    h->subj_len = jsi_get16(p + 26);
    h->hdr_len = jsi_get32(p + 28);
    h->body_crc = jsi_get32(p + 32);
    /* No sequence is UINT64_MAX (the last one a message may take is one
     * below, so "last + 1" never wraps), nor is any last sequence. */
    if (!rec_lengths_ok(h) || h->seq == UINT64_MAX)
        return -1;
    return h->len <= avail ? 1 : 0;
}

int jsi_rec_body_ok(const uint8_t *p, const jsi_rechdr *h) {
    return jsi_crc32c(0, p + JSI_REC_HDR_LEN, h->len - JSI_REC_HDR_LEN) ==
           h->body_crc;
}

size_t jsi_rec_resync(const uint8_t *p, size_t n, size_t from) {
    jsi_rechdr h;
    for (size_t o = from; o + JSI_REC_HDR_LEN <= n; o++) {
        if (p[o] != 'J' || jsi_get32(p + o) != JSI_REC_MAGIC)
            continue;
        if (jsi_rec_parse_hdr(p + o, n - o, &h) >= 0)
            return o;
    }
    return n;
}
