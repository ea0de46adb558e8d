/*
 * test_codec.c - the on-disk codecs field by field: the block header and
 * record codec (libjs/record.c, format in record.h) and the index
 * checkpoint (libjs/checkpoint.c, format in checkpoint.h).
 *
 * Random damage mostly fails a checksum first, so the checks behind the
 * checksums are reached here on purpose: each field is made malformed in
 * turn with its checksum recomputed, and the decoder must refuse exactly
 * that (JS_ECORRUPT, or -1 for a record header). Boundary lengths pass or
 * fail exactly, every record type round-trips, and a valid checkpoint
 * decodes to exactly the fields written. The checkpoint writer's error
 * paths are made to happen: an allocation failing at each step, a tail
 * block file missing or short, a store that failed earlier, appends not
 * yet written, a failed write; the checkpoint on storage stays whole (the
 * old one or the new one), never a mix.
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check_rc.h"
#include "checkpoint.h"
#include "jetstream.h"
#include "msgstore_int.h"
#include "record.h"
#include "simfs.h"
#include "stree.h"
#include "testutil_fs.h"
#include "util.h"
#include "vfs.h"
#include "runner.h"

static char *base_dir; /* removed by main() */

/* ---- block header --------------------------------------------------------- */

/* Recompute a block header's CRC after changing a field. */
static void blkhdr_fix(uint8_t *p) {
    jsi_put32(p + 28, jsi_crc32c(0, p, 28));
}

START_TEST(block_header_round_trips_and_each_field_is_checked) {
    uint8_t good[48], p[48];
    memset(good, 0xee, sizeof good);
    jsi_blkhdr_encode(good, 42);
    ck_assert_int_eq(memcmp(good, "JSBLK\r\n\x1a", 8), 0);
    ck_assert_uint_eq(jsi_get32(good + 8), JSI_BLK_VERSION);
    ck_assert_uint_eq(jsi_get32(good + 12), 0);
    ck_assert_uint_eq(jsi_get64(good + 16), 42);
    ck_assert_uint_eq(jsi_get32(good + 24), 0);
    ck_assert_uint_eq(good[32], 0xee); /* nothing past the header */
    CHECK_RC(jsi_blkhdr_check(good, JSI_BLK_HDR_LEN, 42), 0);
    CHECK_RC(jsi_blkhdr_check(good, sizeof good, 42), 0);
    /* Too short, or another block's file. */
    CHECK_RC(jsi_blkhdr_check(good, JSI_BLK_HDR_LEN - 1, 42), JS_ECORRUPT);
    CHECK_RC(jsi_blkhdr_check(good, 0, 42), JS_ECORRUPT);
    CHECK_RC(jsi_blkhdr_check(good, JSI_BLK_HDR_LEN, 43), JS_ECORRUPT);
    /* Each byte of the magic. */
    for (int i = 0; i < 8; i++) {
        memcpy(p, good, sizeof p);
        p[i] ^= 0x20;
        blkhdr_fix(p);
        CHECK_RC(jsi_blkhdr_check(p, JSI_BLK_HDR_LEN, 42), JS_ECORRUPT);
    }
    /* Any changed byte without a new CRC. */
    for (int i = 8; i < 32; i++) {
        memcpy(p, good, sizeof p);
        p[i] ^= 1;
        CHECK_RC(jsi_blkhdr_check(p, JSI_BLK_HDR_LEN, 42), JS_ECORRUPT);
    }
    /* Version, flags and number, each with a valid CRC. */
    memcpy(p, good, sizeof p);
    jsi_put32(p + 8, JSI_BLK_VERSION + 1);
    blkhdr_fix(p);
    CHECK_RC(jsi_blkhdr_check(p, JSI_BLK_HDR_LEN, 42), JS_ECORRUPT);
    memcpy(p, good, sizeof p);
    jsi_put32(p + 12, 1); /* compressed: not in version 1 */
    blkhdr_fix(p);
    CHECK_RC(jsi_blkhdr_check(p, JSI_BLK_HDR_LEN, 42), JS_ECORRUPT);
    memcpy(p, good, sizeof p);
    jsi_put64(p + 16, 41);
    blkhdr_fix(p);
    CHECK_RC(jsi_blkhdr_check(p, JSI_BLK_HDR_LEN, 42), JS_ECORRUPT);
    CHECK_RC(jsi_blkhdr_check(p, JSI_BLK_HDR_LEN, 41), 0);
}
END_TEST

/* ---- records -------------------------------------------------------------- */

static void rec_fix(uint8_t *p) {
    jsi_put32(p + 36, jsi_crc32c(0, p, 36));
}

START_TEST(message_record_round_trips_with_each_part_present_or_empty) {
    static const char hdr[] = "NATS/1.0\r\nNats-Msg-Id: x\r\n\r\n";
    const size_t hl = sizeof hdr - 1;
    uint8_t p[256];
    jsi_rechdr h;
    struct {
        const char *subj;
        const char *hdr;
        const char *data;
        uint8_t flags;
    } c[] = {
        {"a.b", hdr, "hello", JSI_RECF_MSGID},
        {"a.b", NULL, "hello", 0},
        {"x", hdr, NULL, 0},
        {"orders.eu.1", NULL, NULL, 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        size_t sl = strlen(c[i].subj), h2 = c[i].hdr ? hl : 0,
               dl = c[i].data ? strlen(c[i].data) : 0;
        memset(p, 0, sizeof p);
        size_t len = jsi_rec_encode_msg(p, 100 + i, -5 + (int64_t)i,
                                        c[i].flags, c[i].subj, sl, c[i].hdr,
                                        h2, c[i].data, dl);
        ck_assert_uint_eq(len, JSI_REC_HDR_LEN + sl + h2 + dl);
        ck_assert_int_eq(jsi_rec_parse_hdr(p, len, &h), 1);
        ck_assert_uint_eq(h.len, len);
        ck_assert_uint_eq(h.seq, 100 + i);
        ck_assert_int_eq(h.ts, -5 + (int64_t)i);
        ck_assert_uint_eq(h.type, JSI_REC_MSG);
        ck_assert_uint_eq(h.flags, c[i].flags);
        ck_assert_uint_eq(h.subj_len, sl);
        ck_assert_uint_eq(h.hdr_len, h2);
        ck_assert_uint_eq(h.hdr_crc, jsi_get32(p + 36));
        ck_assert_uint_eq(h.body_crc,
                          jsi_crc32c(0, p + JSI_REC_HDR_LEN, len - 40));
        ck_assert_int_eq(jsi_rec_body_ok(p, &h), 1);
        ck_assert_int_eq(memcmp(p + 40, c[i].subj, sl), 0);
        if (h2)
            ck_assert_int_eq(memcmp(p + 40 + sl, hdr, h2), 0);
        if (dl)
            ck_assert_int_eq(memcmp(p + 40 + sl + h2, c[i].data, dl), 0);
        /* Whole header, record cut short: torn, not damaged. */
        ck_assert_int_eq(jsi_rec_parse_hdr(p, len - 1, &h), 0);
        ck_assert_int_eq(jsi_rec_parse_hdr(p, JSI_REC_HDR_LEN, &h), 0);
        /* Any byte of the body changed: the header stands, the body
         * does not. */
        for (size_t k = 40; k < len; k++) {
            p[k] ^= 0x40;
            ck_assert_int_eq(jsi_rec_parse_hdr(p, len, &h), 1);
            ck_assert_int_eq(jsi_rec_body_ok(p, &h), 0);
            p[k] ^= 0x40;
        }
    }
}
END_TEST

/* DEL, FRONT and ERASED records as the store writes them. */
START_TEST(removal_and_erased_records_round_trip) {
    uint8_t p[128], body[16] = {3, 1, 0, 5, 2, 9, 0};
    jsi_rechdr h;
    memcpy(p + 40, body, 7);
    jsi_rec_encode_hdr(p, 47, 77, 9, JSI_REC_DEL, 0, 0, 0,
                       jsi_crc32c(0, body, 7));
    ck_assert_int_eq(jsi_rec_parse_hdr(p, 47, &h), 1);
    ck_assert_uint_eq(h.type, JSI_REC_DEL);
    ck_assert_uint_eq(h.seq, 77);
    ck_assert_uint_eq(h.len, 47);
    ck_assert_int_eq(jsi_rec_body_ok(p, &h), 1);
    jsi_put64(p + 40, 1234);
    jsi_rec_encode_hdr(p, JSI_REC_HDR_LEN + 8, 1300, 10, JSI_REC_FRONT, 0, 0,
                       0, jsi_crc32c(0, p + 40, 8));
    ck_assert_int_eq(jsi_rec_parse_hdr(p, 48, &h), 1);
    ck_assert_uint_eq(h.type, JSI_REC_FRONT);
    ck_assert_uint_eq(h.seq, 1300);
    ck_assert_int_eq(jsi_rec_body_ok(p, &h), 1);
    ck_assert_uint_eq(jsi_get64(p + 40), 1234);
    memset(p + 40, 0, 60);
    jsi_rec_encode_hdr(p, 100, 5, 11, JSI_REC_ERASED, 0, 0, 0,
                       jsi_crc32c(0, p + 40, 60));
    ck_assert_int_eq(jsi_rec_parse_hdr(p, 100, &h), 1);
    ck_assert_uint_eq(h.type, JSI_REC_ERASED);
    ck_assert_uint_eq(h.seq, 5);
    ck_assert_int_eq(jsi_rec_body_ok(p, &h), 1);
}
END_TEST

/* Each length and type rule of a record header, just inside and just
 * outside its bound, with a valid header CRC so the rule itself answers.
 * want: 1 valid (parsed with the whole record available), -1 refused. */
START_TEST(record_header_lengths_and_types_are_checked_at_their_bounds) {
    const uint32_t msg_max = JSI_REC_MAX_LEN;
    struct {
        const char *what;
        uint32_t len;
        uint8_t type, flags;
        uint16_t slen;
        uint32_t hlen;
        int want;
    } c[] = {
        {"MSG, one subject byte", 41, JSI_REC_MSG, 0, 1, 0, 1},
        {"MSG with the msg-id flag", 41, JSI_REC_MSG, JSI_RECF_MSGID, 1, 0,
         1},
        {"MSG, subject and headers fill the body", 50, JSI_REC_MSG, 0, 3, 7,
         1},
        {"MSG, subject and headers past the body", 49, JSI_REC_MSG, 0, 3, 7,
         -1},
        {"MSG, subject past the body", 42, JSI_REC_MSG, 0, 3, 0, -1},
        {"MSG without a subject", 41, JSI_REC_MSG, 0, 0, 0, -1},
        {"MSG, longest subject", 40 + JS_MAX_SUBJECT_LEN, JSI_REC_MSG, 0,
         JS_MAX_SUBJECT_LEN, 0, 1},
        {"MSG, subject too long", 41 + JS_MAX_SUBJECT_LEN, JSI_REC_MSG, 0,
         JS_MAX_SUBJECT_LEN + 1, 0, -1},
        {"MSG, largest header block", 41 + JS_MAX_HDR_LEN, JSI_REC_MSG, 0, 1,
         JS_MAX_HDR_LEN, 1},
        {"MSG, header block too long", 42 + JS_MAX_HDR_LEN, JSI_REC_MSG, 0,
         1, JS_MAX_HDR_LEN + 1, -1},
        {"largest record", msg_max, JSI_REC_MSG, 0, 1, 0, 1},
        {"record too long", msg_max + 1, JSI_REC_MSG, 0, 1, 0, -1},
        {"length below a header", 39, JSI_REC_ERASED, 0, 0, 0, -1},
        {"length 0", 0, JSI_REC_ERASED, 0, 0, 0, -1},
        {"unknown flag", 41, JSI_REC_MSG, 0x02, 1, 0, -1},
        {"flag on a DEL", 44, JSI_REC_DEL, JSI_RECF_MSGID, 0, 0, -1},
        {"flag on an ERASED", 44, JSI_REC_ERASED, JSI_RECF_MSGID, 0, 0, -1},
        {"ERASED", 100, JSI_REC_ERASED, 0, 0, 0, 1},
        {"ERASED, empty body", 40, JSI_REC_ERASED, 0, 0, 0, 1},
        {"ERASED with a subject", 100, JSI_REC_ERASED, 0, 3, 0, -1},
        {"ERASED with headers", 100, JSI_REC_ERASED, 0, 0, 3, -1},
        {"DEL, one body byte", 41, JSI_REC_DEL, 0, 0, 0, 1},
        {"DEL, empty body", 40, JSI_REC_DEL, 0, 0, 0, -1},
        {"DEL with a subject", 44, JSI_REC_DEL, 0, 1, 0, -1},
        {"DEL with headers", 44, JSI_REC_DEL, 0, 0, 1, -1},
        {"FRONT", 48, JSI_REC_FRONT, 0, 0, 0, 1},
        {"FRONT, 7-byte body", 47, JSI_REC_FRONT, 0, 0, 0, -1},
        {"FRONT, 9-byte body", 49, JSI_REC_FRONT, 0, 0, 0, -1},
        {"FRONT with a subject", 48, JSI_REC_FRONT, 0, 1, 0, -1},
        {"FRONT with headers", 48, JSI_REC_FRONT, 0, 0, 1, -1},
        {"type 0", 48, 0, 0, 0, 0, -1},
        {"type 5", 48, 5, 0, 0, 0, -1},
        {"type 255", 48, 255, 0, 0, 0, -1},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        uint8_t p[JSI_REC_HDR_LEN];
        jsi_rechdr h;
        jsi_rec_encode_hdr(p, c[i].len, 9, 8, c[i].type, c[i].flags,
                           c[i].slen, c[i].hlen, 0x1234);
        /* At least a header's worth of bytes, so the rule answers, not
         * the partial-header check. */
        size_t avail = c[i].len < JSI_REC_HDR_LEN ? JSI_REC_HDR_LEN : c[i].len;
        int got = jsi_rec_parse_hdr(p, avail, &h);
        ck_assert_msg(got == c[i].want, "%s: got %d, want %d", c[i].what,
                      got, c[i].want);
        if (c[i].want < 0)
            continue;
        ck_assert_uint_eq(h.len, c[i].len);
        ck_assert_uint_eq(h.type, c[i].type);
        ck_assert_uint_eq(h.flags, c[i].flags);
        ck_assert_uint_eq(h.subj_len, c[i].slen);
        ck_assert_uint_eq(h.hdr_len, c[i].hlen);
        ck_assert_uint_eq(h.body_crc, 0x1234);
        ck_assert_uint_eq(h.seq, 9);
        ck_assert_int_eq(h.ts, 8);
        /* One byte short of the whole record: torn. */
        ck_assert_msg(jsi_rec_parse_hdr(p, c[i].len - 1, &h) == 0,
                      "%s: cut short", c[i].what);
    }
    /* Sequence UINT64_MAX is no message's and no stream's last: "last + 1"
     * would wrap (a block starting at 0 took every sequence). */
    static const uint8_t types[] = {JSI_REC_MSG, JSI_REC_ERASED, JSI_REC_DEL,
                                    JSI_REC_FRONT, JSI_REC_LOST};
    for (size_t i = 0; i < sizeof types; i++) {
        uint8_t p[JSI_REC_HDR_LEN + 16];
        jsi_rechdr h;
        uint8_t t = types[i];
        uint16_t slen = t == JSI_REC_MSG;
        uint32_t len = t == JSI_REC_FRONT ? 48 : t == JSI_REC_LOST ? 49 : 41;
        jsi_rec_encode_hdr(p, len, UINT64_MAX - 1, 8, t, 0, slen, 0, 0);
        ck_assert_int_eq(jsi_rec_parse_hdr(p, sizeof p, &h), 1);
        ck_assert_uint_eq(h.seq, UINT64_MAX - 1);
        jsi_rec_encode_hdr(p, len, UINT64_MAX, 8, t, 0, slen, 0, 0);
        ck_assert_msg(jsi_rec_parse_hdr(p, sizeof p, &h) == -1,
                      "type %u with sequence UINT64_MAX taken", t);
    }
}
END_TEST

START_TEST(record_header_magic_checksum_and_partial_headers) {
    uint8_t good[JSI_REC_HDR_LEN], p[JSI_REC_HDR_LEN];
    jsi_rechdr h;
    jsi_rec_encode_hdr(good, 48, 3, 4, JSI_REC_FRONT, 0, 0, 0, 0);
    ck_assert_int_eq(jsi_rec_parse_hdr(good, 48, &h), 1);
    /* Each magic byte, CRC recomputed: not a record. */
    for (int i = 0; i < 4; i++) {
        memcpy(p, good, sizeof p);
        p[i] ^= 0x01;
        rec_fix(p);
        ck_assert_int_eq(jsi_rec_parse_hdr(p, 48, &h), -1);
    }
    /* Any other header byte changed, CRC left: not a record. */
    for (int i = 4; i < JSI_REC_HDR_LEN; i++) {
        memcpy(p, good, sizeof p);
        p[i] ^= 0x80;
        ck_assert_msg(jsi_rec_parse_hdr(p, 48, &h) == -1, "byte %d", i);
    }
    /* Less than a header at the end of the data: nothing at all is not a
     * record; a prefix of the magic (or too little to tell) may be one
     * being written (torn); anything else is not. */
    ck_assert_int_eq(jsi_rec_parse_hdr(good, 0, &h), -1);
    for (size_t n = 1; n < 4; n++)
        ck_assert_int_eq(jsi_rec_parse_hdr(good, n, &h), 0);
    for (size_t n = 4; n < JSI_REC_HDR_LEN; n++)
        ck_assert_int_eq(jsi_rec_parse_hdr(good, n, &h), 0);
    memcpy(p, good, sizeof p);
    p[0] = 'X';
    for (size_t n = 4; n < JSI_REC_HDR_LEN; n++)
        ck_assert_int_eq(jsi_rec_parse_hdr(p, n, &h), -1);
    /* The header is zeroed whatever the outcome (callers copy it). */
    memset(&h, 0xff, sizeof h);
    ck_assert_int_eq(jsi_rec_parse_hdr(p, 8, &h), -1);
    ck_assert_uint_eq(h.len, 0);
    ck_assert_uint_eq(h.seq, 0);
}
END_TEST

START_TEST(resync_skips_false_starts_to_the_next_valid_header) {
    uint8_t p[256];
    memset(p, 'J', sizeof p); /* every byte a possible start */
    /* A magic with a bad header CRC at 5, a bare "JSR" at 60. */
    jsi_rec_encode_hdr(p + 5, 48, 1, 1, JSI_REC_FRONT, 0, 0, 0, 0);
    p[5 + 20] ^= 1;
    memcpy(p + 60, "JSR", 3);
    /* A valid header at 97 (its record runs past the end: still a
     * header, as a torn tail). */
    jsi_rec_encode_hdr(p + 97, 400, 2, 2, JSI_REC_ERASED, 0, 0, 0, 0);
    ck_assert_uint_eq(jsi_rec_resync(p, sizeof p, 0), 97);
    ck_assert_uint_eq(jsi_rec_resync(p, sizeof p, 97), 97);
    ck_assert_uint_eq(jsi_rec_resync(p, sizeof p, 98), sizeof p);
    /* Not enough bytes left for a header after `from`: none. */
    ck_assert_uint_eq(jsi_rec_resync(p, 97 + JSI_REC_HDR_LEN - 1, 6),
                      97 + JSI_REC_HDR_LEN - 1);
    ck_assert_uint_eq(jsi_rec_resync(p, 97 + JSI_REC_HDR_LEN, 6), 97);
    ck_assert_uint_eq(jsi_rec_resync(p, 10, 0), 10);
    ck_assert_uint_eq(jsi_rec_resync(p, 0, 0), 0);
}
END_TEST

/* ---- checkpoint images ------------------------------------------------- */

/* Where the image builder writes an overlong varint instead of a value. */
enum {
    AT_NONE, AT_HDR, AT_NBLK, AT_BLK, AT_NSUM, AT_PAIR, AT_NSUBJ,
    AT_SUBJLEN, AT_SUBJ,
};

/* A checkpoint image, field by field (checkpoint.h). The counts written
 * (nblk, nsum, nsubj) may differ from the items written (at most 3
 * blocks, 2 pairs a block, 2 subjects), to lie about them. */
typedef struct ck_img {
    uint32_t version, flags;
    /* first, last, msgs, bytes, last_ts, lost_bytes, next_blkno,
     * next_sid, tail block number, tail size */
    uint64_t h[10];
    int no_tcrc; /* the image ends before the tail CRC */
    uint32_t tcrc;
    uint64_t nblk;
    /* no, lo, hi - lo + 1, msgs, bytes, first_ts, last_ts, size,
     * with_ids */
    uint64_t blk[3][9];
    uint64_t nsum[3];
    uint64_t pair[3][2][2]; /* id delta, count */
    uint64_t del_lo, del_hi; /* deleted run, 0: none */
    int bad_rs;               /* 1: deleted, 2: lost claim 10^6 runs */
    uint64_t nsubj;
    uint64_t slen[2];
    const char *subj[2];
    uint64_t sv[2][5]; /* count, first, last, flags, id */
    size_t extra;      /* zero bytes before the trailing CRC */
    int bad_at;        /* AT_*: the first varint there is overlong */
} ck_img;

/* A valid image: messages 1..10 less 7; block 1 holds 1..5 (subject ids
 * 1 and 2), block 2 holds 6..10, block 3 is the empty tail. */
static ck_img ck_valid(void) {
    ck_img m = {
        .version = 2,
        .h = {1, 10, 9, 850, 5000, 0, 4, 3, 3, 32},
        .tcrc = 0xdeadbeef,
        .nblk = 3,
        .blk = {{1, 1, 5, 5, 500, 100, 500, 700, 0},
                {2, 6, 5, 4, 350, 600, 5000, 600, 1},
                {3, 11, 0, 0, 0, 0, 0, 32, 0}},
        .nsum = {2, 2, 0},
        .pair = {{{1, 3}, {1, 2}}, {{1, 2}, {1, 2}}},
        .del_lo = 7,
        .del_hi = 7,
        .nsubj = 2,
        .slen = {3, 1},
        .subj = {"a.b", "c"},
        .sv = {{5, 1, 9, 0, 1}, {4, 2, 10, 3, 2}},
    };
    return m;
}

typedef struct wr {
    jsi_buf b;
    int bad_at, bad_done;
} wr;

static void w_bytes(wr *w, const void *p, size_t n) {
    ck_assert_int_eq(jsi_buf_append(&w->b, p, n), 0);
}

static void w_u32(wr *w, uint32_t v) {
    uint8_t t[4];
    jsi_put32(t, v);
    w_bytes(w, t, 4);
}

static void w_uv(wr *w, int at, uint64_t v) {
    uint8_t t[10];
    if (at == w->bad_at && !w->bad_done) {
        static const uint8_t overlong[2] = {0x80, 0x00};
        w->bad_done = 1;
        w_bytes(w, overlong, 2);
        return;
    }
    w_bytes(w, t, jsi_uvarint_put(t, v));
}

static void w_rs(wr *w, uint64_t lo, uint64_t hi, int bad) {
    if (bad) {
        w_uv(w, AT_NONE, 1000000);
        return;
    }
    jsi_rangeset s = JSI_RANGESET_INIT;
    if (lo)
        ck_assert_int_eq(jsi_rs_add(&s, lo, hi), 0);
    ck_assert_int_eq(jsi_rs_encode(&s, &w->b), 0);
    jsi_rs_free(&s);
}

/* The image's bytes, trailing CRC included; free with jsi_buf_free. */
static jsi_buf ck_build(const ck_img *m) {
    wr w = {{0}, m->bad_at, 0};
    w_bytes(&w, "JSIDX\r\n\x1a", 8);
    w_u32(&w, m->version);
    w_u32(&w, m->flags);
    for (int k = 0; k < 10; k++)
        w_uv(&w, AT_HDR, m->h[k]);
    if (!m->no_tcrc) {
        w_u32(&w, m->tcrc);
        w_uv(&w, AT_NBLK, m->nblk);
        for (uint64_t i = 0; i < m->nblk && i < 3; i++) {
            for (int k = 0; k < 9; k++)
                w_uv(&w, AT_BLK, m->blk[i][k]);
            w_uv(&w, AT_NSUM, m->nsum[i]);
            for (uint64_t j = 0; j < m->nsum[i] && j < 2; j++) {
                w_uv(&w, AT_PAIR, m->pair[i][j][0]);
                w_uv(&w, AT_PAIR, m->pair[i][j][1]);
            }
        }
        w_rs(&w, m->del_lo, m->del_hi, m->bad_rs == 1);
        w_rs(&w, 0, 0, m->bad_rs == 2);
        w_uv(&w, AT_NSUBJ, m->nsubj);
        for (uint64_t i = 0; i < m->nsubj && i < 2; i++) {
            w_uv(&w, AT_SUBJLEN, m->slen[i]);
            w_bytes(&w, m->subj[i], strlen(m->subj[i]));
            for (int k = 0; k < 5; k++)
                w_uv(&w, AT_SUBJ, m->sv[i][k]);
        }
        static const uint8_t zeros[16];
        w_bytes(&w, zeros, m->extra);
    }
    w_u32(&w, jsi_crc32c(0, w.b.p, w.b.len));
    return w.b;
}

/* ---- message stores ----------------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t fake_now = 1700000000000000000LL;

static int64_t test_clock(void *ctx) {
    (void)ctx;
    return fake_now;
}

/* A message store in dir on vfs (4 KiB blocks, sync ALWAYS). The caller
 * holds mu for every jsi_ms_* call. */
static jsi_ms *ms_open(js_vfs *vfs, const char *dir) {
    jsi_ms_cfg cfg = {vfs,        dir,  4096, JS_SYNC_ALWAYS, 0,
                      test_clock, NULL, &mu};
    jsi_ms *ms = NULL;
    int rc = jsi_vfs_mkdirs(vfs, dir);
    ck_assert_msg(rc == 0, "mkdirs %s: %s", dir, js_strerror(rc));
    CHECK_RC(jsi_ms_open(&cfg, 1, &ms), 0);
    return ms;
}

/* The "checkpoint" test case's fixture: an in-memory backend, and the
 * stores' mutex held, as the store's callers hold it. */
static js_vfs *mem;

static void mem_setup(void) {
    mem = jsi_vfs_mem_new();
    ck_assert_ptr_nonnull(mem);
    pthread_mutex_lock(&mu);
}

static void mem_teardown(void) {
    pthread_mutex_unlock(&mu);
    jsi_vfs_mem_free(mem);
    mem = NULL;
}

/* An empty index, as recovery decodes a checkpoint into. */
static jsi_ms *ms_blank(js_vfs *vfs) {
    jsi_ms *ms = ms_open(vfs, "/blank");
    CHECK_RC(jsi_ms_reset_index(ms), 0);
    return ms;
}

static int decode(jsi_ms *ms, const jsi_buf *img, uint64_t *no,
                  uint64_t *size, uint32_t *crc) {
    CHECK_RC(jsi_ms_reset_index(ms), 0);
    return jsi_ckpt_decode(ms, img->p, img->len, no, size, crc);
}

static jsi_sidx_entry *subject(jsi_ms *ms, const char *s) {
    return jsi_sidx_get(ms->sidx, s, strlen(s));
}

START_TEST(valid_checkpoint_decodes_to_exactly_its_fields) {
    jsi_ms *ms = ms_blank(mem);
    ck_img m = ck_valid();
    jsi_buf img = ck_build(&m);
    uint64_t no = 0, size = 0;
    uint32_t crc = 0;
    CHECK_RC(decode(ms, &img, &no, &size, &crc), 0);
    ck_assert_uint_eq(no, 3);
    ck_assert_uint_eq(size, 32);
    ck_assert_uint_eq(crc, 0xdeadbeef);
    ck_assert_uint_eq(ms->first, 1);
    ck_assert_uint_eq(ms->last, 10);
    ck_assert_uint_eq(ms->msgs, 9);
    ck_assert_uint_eq(ms->bytes, 850);
    ck_assert_int_eq(ms->last_ts, 5000);
    ck_assert_uint_eq(ms->lost_bytes, 0);
    ck_assert_uint_eq(ms->next_blkno, 4);
    ck_assert_uint_eq(ms->next_sid, 3);
    ck_assert_uint_eq(ms->nblks, 3);
    for (size_t i = 0; i < 3; i++) {
        const jsi_blk *b = ms->blks[i];
        const uint64_t *v = m.blk[i];
        ck_assert_uint_eq(b->no, v[0]);
        ck_assert_uint_eq(b->lo, v[1]);
        ck_assert_uint_eq(b->hi, v[1] + v[2] - 1);
        ck_assert_uint_eq(b->msgs, v[3]);
        ck_assert_uint_eq(b->bytes, v[4]);
        ck_assert_int_eq(b->first_ts, (int64_t)v[5]);
        ck_assert_int_eq(b->last_ts, (int64_t)v[6]);
        ck_assert_uint_eq(b->size, v[7]);
        ck_assert_uint_eq(b->wr, v[7]);
        ck_assert_uint_eq(b->sy, v[7]);
        ck_assert_uint_eq(b->with_ids, v[8]);
        ck_assert_uint_eq(b->nsum, m.nsum[i]);
        ck_assert_uint_eq(b->nsorted, m.nsum[i]);
        uint64_t id = 0;
        for (size_t j = 0; j < b->nsum; j++) {
            id += m.pair[i][j][0];
            ck_assert_uint_eq(jsi_sum_id(&b->sum[j]), id);
            ck_assert_uint_eq(b->sum[j].cnt, m.pair[i][j][1]);
        }
    }
    ck_assert_uint_eq(jsi_rs_total(&ms->deleted), 1);
    ck_assert_int_eq(jsi_rs_contains(&ms->deleted, 7), 1);
    ck_assert_uint_eq(jsi_rs_total(&ms->lost), 0);
    ck_assert_uint_eq(jsi_sidx_size(ms->sidx), 2);
    for (int i = 0; i < 2; i++) {
        jsi_sidx_entry *e = subject(ms, m.subj[i]);
        ck_assert_ptr_nonnull(e);
        ck_assert_uint_eq(e->count, m.sv[i][0]);
        ck_assert_uint_eq(e->first, m.sv[i][1]);
        ck_assert_uint_eq(e->last, m.sv[i][2]);
        ck_assert_uint_eq(e->first_stale, m.sv[i][3]);
        ck_assert_uint_eq(e->id, m.sv[i][4]);
    }
    jsi_buf_free(&img);
    /* An empty stream: first is last + 1, one empty block, nothing else;
     * the largest next subject id still allowed. */
    ck_img e = {
        .version = 2,
        .h = {11, 10, 0, 0, 0, 0, 4, UINT64_MAX / 2, 3, 32},
        .nblk = 1,
        .blk = {{3, 11, 0, 0, 0, 0, 0, 32, 0}},
    };
    img = ck_build(&e);
    CHECK_RC(decode(ms, &img, &no, &size, &crc), 0);
    ck_assert_uint_eq(ms->first, 11);
    ck_assert_uint_eq(ms->last, 10);
    ck_assert_uint_eq(ms->msgs, 0);
    ck_assert_uint_eq(ms->nblks, 1);
    ck_assert_uint_eq(ms->blks[0]->hi, 10);
    ck_assert_uint_eq(ms->next_sid, UINT64_MAX / 2);
    ck_assert_uint_eq(jsi_sidx_size(ms->sidx), 0);
    jsi_buf_free(&img);
    jsi_ms_free(ms);
}
END_TEST

/* One field of the valid image made malformed; its name. */
static const char *ck_break(ck_img *m, int c) {
    switch (c) {
    case 0: m->version = 1; return "version 1 (no longer read)";
    case 1: m->version = 3; return "version from the future";
    case 2: m->flags = 2; return "an unknown flag"; /* 1 is LOST-logged */
    case 3: m->bad_at = AT_HDR; return "overlong varint in the header";
    case 4: m->no_tcrc = 1; return "ends before the tail CRC";
    case 5: m->h[0] = 0; return "first sequence 0";
    case 6: m->h[0] = 12; return "first past last + 1";
    case 7: m->h[2] = 11; return "more messages than sequences";
    case 8: m->h[7] = 0; return "next subject id 0";
    case 9: m->h[7] = UINT64_MAX / 2 + 1; return "next subject id too large";
    case 10: m->h[8] = 2; return "tail is not the last block";
    case 11: m->bad_at = AT_NBLK; return "overlong block count";
    case 12: m->nblk = 0; return "no block";
    case 13: m->nblk = 1000000; return "more blocks than the bytes hold";
    case 14: m->bad_at = AT_BLK; return "overlong block field";
    case 15: m->blk[1][0] = 1; return "block numbers not ascending";
    case 16: m->blk[0][1] = 0; return "block starting at sequence 0";
    case 17: m->blk[1][1] = 5; return "block overlapping the one before";
    case 18: m->blk[2][2] = UINT64_MAX - 5; return "block span overflows";
    case 19: m->blk[0][7] = 31; return "block size below its header";
    case 20: m->blk[0][3] = 6; return "more messages than the block spans";
    case 21: m->blk[2][0] = 4; return "block number not below next_blkno";
    case 22: m->bad_at = AT_NSUM; return "overlong pair count";
    case 23: m->nsum[0] = 1000; return "more pairs than the bytes hold";
    case 24: m->nsum[0] = 6; return "more pairs than the block spans";
    case 25: m->bad_at = AT_PAIR; return "overlong pair";
    case 26: m->pair[0][1][0] = 0; return "subject ids not ascending";
    case 27: m->pair[0][1][0] = 2; return "subject id not below next_sid";
    case 28: m->pair[0][0][1] = 0; return "pair count 0";
    case 29: m->pair[0][1][1] = 3; return "pair counts past the block span";
    case 30:
        /* A block spanning 2^33 sequences, a count over 32 bits. */
        m->blk[1][2] = (uint64_t)1 << 33;
        m->pair[1][0][1] = (uint64_t)1 << 32;
        return "pair count over 32 bits";
    case 31: m->bad_rs = 1; return "deleted set claims too many runs";
    case 32: m->bad_rs = 2; return "lost set claims too many runs";
    case 33: m->bad_at = AT_NSUBJ; return "overlong subject count";
    case 34: m->nsubj = 1000; return "more subjects than the bytes hold";
    case 35: m->bad_at = AT_SUBJLEN; return "overlong subject length";
    case 36: m->slen[0] = 0; return "subject length 0";
    case 37:
        m->slen[1] = JS_MAX_SUBJECT_LEN + 1;
        return "subject length too large";
    case 38: m->slen[1] = 200; return "subject runs past the end";
    case 39: m->bad_at = AT_SUBJ; return "overlong subject field";
    case 40: m->sv[0][0] = 0; return "subject count 0";
    case 41: m->sv[0][1] = 10; return "subject first after its last";
    case 42: m->sv[1][2] = 11; return "subject last after the stream's";
    case 43: m->sv[0][3] = 4; return "unknown subject flags";
    case 44: m->sv[0][4] = 0; return "subject id 0";
    case 45: m->sv[1][4] = 3; return "subject id not below next_sid";
    case 46: m->subj[1] = "a b"; m->slen[1] = 3; return "invalid subject";
    case 47: m->subj[1] = "a.b"; m->slen[1] = 3; return "subject twice";
    case 48: m->extra = 1; return "a byte after the subjects";
    default: return NULL;
    }
}

START_TEST(checkpoint_with_any_field_malformed_is_refused) {
    jsi_ms *ms = ms_blank(mem);
    const char *what;
    int c = 0;
    for (;; c++) {
        ck_img m = ck_valid();
        if (!(what = ck_break(&m, c)))
            break;
        jsi_buf img = ck_build(&m);
        uint64_t no, size;
        uint32_t crc;
        int rc = decode(ms, &img, &no, &size, &crc);
        ck_assert_msg(rc == JS_ECORRUPT, "%s: got %d (%s)", what, rc,
                      js_strerror(rc));
        jsi_buf_free(&img);
    }
    ck_assert_int_eq(c, 49);
    /* The decoder still takes a valid image after all that. */
    ck_img m = ck_valid();
    jsi_buf img = ck_build(&m);
    uint64_t no, size;
    uint32_t crc;
    CHECK_RC(decode(ms, &img, &no, &size, &crc), 0);
    jsi_buf_free(&img);
    jsi_ms_free(ms);
}
END_TEST

START_TEST(checkpoint_framing_is_checked_before_any_field) {
    jsi_ms *ms = ms_blank(mem);
    ck_img m = ck_valid();
    jsi_buf img = ck_build(&m);
    uint64_t no, size;
    uint32_t crc;
    CHECK_RC(jsi_ms_reset_index(ms), 0);
    /* Shorter than magic, version, flags and CRC together. */
    for (size_t n = 0; n < 20; n++)
        CHECK_RC(jsi_ckpt_decode(ms, img.p, n, &no, &size, &crc),
                 JS_ECORRUPT);
    /* Each magic byte, trailing CRC recomputed. */
    for (int i = 0; i < 8; i++) {
        img.p[i] ^= 0x01;
        jsi_put32(img.p + img.len - 4, jsi_crc32c(0, img.p, img.len - 4));
        CHECK_RC(decode(ms, &img, &no, &size, &crc), JS_ECORRUPT);
        img.p[i] ^= 0x01;
        jsi_put32(img.p + img.len - 4, jsi_crc32c(0, img.p, img.len - 4));
    }
    /* Any byte changed without a new CRC, the CRC included. */
    for (size_t i = 8; i < img.len; i++) {
        img.p[i] ^= 0x10;
        CHECK_RC(decode(ms, &img, &no, &size, &crc), JS_ECORRUPT);
        img.p[i] ^= 0x10;
    }
    CHECK_RC(decode(ms, &img, &no, &size, &crc), 0);
    jsi_buf_free(&img);
    jsi_ms_free(ms);
}
END_TEST

/* Every allocation of a decode fails in turn: out of memory is said as
 * such (the caller must not take it for damage and rebuild), never as
 * JS_ECORRUPT. */
START_TEST(checkpoint_decode_out_of_memory_is_not_damage) {
    jsi_ms *ms = ms_blank(mem);
    ck_img m = ck_valid();
    jsi_buf img = ck_build(&m);
    uint64_t no, size, k;
    uint32_t crc;
    for (k = 1;; k++) {
        CHECK_RC(jsi_ms_reset_index(ms), 0);
        jsi_alloc_fail_at(k, 0);
        int rc = jsi_ckpt_decode(ms, img.p, img.len, &no, &size, &crc);
        uint64_t failed = jsi_alloc_failed();
        jsi_alloc_fail_at(0, 0);
        if (!failed) {
            CHECK_RC(rc, 0);
            break;
        }
        ck_assert_msg(rc == JS_ENOMEM, "allocation %" PRIu64 ": %s", k,
                      js_strerror(rc));
    }
    ck_assert_uint_gt(k, 3); /* blocks, summaries and subjects allocate */
    ck_assert_uint_eq(ms->nblks, 3);
    ck_assert_uint_eq(jsi_sidx_size(ms->sidx), 2);
    jsi_buf_free(&img);
    jsi_ms_free(ms);
}
END_TEST

/* ---- the checkpoint writer ------------------------------------------------- */

static void append(jsi_ms *ms, const char *subj, int i) {
    char data[200];
    memset(data, 'a' + i % 26, sizeof data);
    uint64_t seq;
    fake_now += 1000;
    CHECK_RC(jsi_ms_append(ms, subj, strlen(subj), NULL, 0, data,
                           100 + (size_t)(i * 7) % 100, fake_now, i % 4 == 0,
                           &seq),
             0);
}

/* A store over several blocks, with subjects, interior deletes and a
 * front removal, all durable. */
static jsi_ms *ms_filled(js_vfs *vfs, const char *dir) {
    static const char *subj[] = {"orders.eu", "orders.us", "audit",
                                 "orders.eu.late"};
    jsi_ms *ms = ms_open(vfs, dir);
    for (int i = 0; i < 60; i++)
        append(ms, subj[i % 4], i);
    CHECK_RC(jsi_ms_remove(ms, 20, 0), 0);
    CHECK_RC(jsi_ms_remove(ms, 21, 0), 0);
    CHECK_RC(jsi_ms_remove(ms, 44, 0), 0);
    CHECK_RC(jsi_ms_remove_first(ms), 0);
    CHECK_RC(jsi_ms_remove_first(ms), 0);
    CHECK_RC(jsi_ms_commit(ms, 1), 0);
    ck_assert_uint_ge(ms->nblks, 3);
    return ms;
}

static jsi_buf read_index(js_vfs *vfs, const char *dir, int *found) {
    char *path = jsi_path_join(dir, "index");
    jsi_buf b = {0};
    int rc = jsi_vfs_read_file(vfs, path, &b, 1 << 20);
    ck_assert_msg(rc == 0 || rc == JS_ENOTFOUND, "read %s: %s", path,
                  js_strerror(rc));
    *found = rc == 0;
    free(path);
    return b;
}

static int same_buf(const jsi_buf *a, const jsi_buf *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

typedef struct subj_cmp {
    jsi_ms *other;
    size_t n;
} subj_cmp;

static int cmp_subject(void *val, void *ctx) {
    const jsi_sidx_entry *e = val;
    subj_cmp *c = ctx;
    jsi_sidx_entry *o = jsi_sidx_get(c->other->sidx, e->subj, e->len);
    ck_assert_msg(o != NULL, "subject %s not decoded", e->subj);
    ck_assert_uint_eq(o->count, e->count);
    ck_assert_uint_eq(o->first, e->first);
    ck_assert_uint_eq(o->last, e->last);
    ck_assert_uint_eq(o->first_stale, e->first_stale);
    ck_assert_uint_eq(o->id, e->id);
    c->n++;
    return 0;
}

/* d decoded from ms's checkpoint: the same index. */
static void same_index(jsi_ms *ms, jsi_ms *d) {
    ck_assert_uint_eq(d->first, ms->first);
    ck_assert_uint_eq(d->last, ms->last);
    ck_assert_uint_eq(d->msgs, ms->msgs);
    ck_assert_uint_eq(d->bytes, ms->bytes);
    ck_assert_int_eq(d->last_ts, ms->last_ts);
    ck_assert_uint_eq(d->next_blkno, ms->next_blkno);
    ck_assert_uint_eq(d->next_sid, ms->next_sid);
    ck_assert_uint_eq(d->nblks, ms->nblks);
    for (size_t i = 0; i < ms->nblks; i++) {
        const jsi_blk *a = ms->blks[i], *b = d->blks[i];
        ck_assert_uint_eq(b->no, a->no);
        ck_assert_uint_eq(b->lo, a->lo);
        ck_assert_uint_eq(b->hi, a->hi);
        ck_assert_uint_eq(b->msgs, a->msgs);
        ck_assert_uint_eq(b->bytes, a->bytes);
        ck_assert_int_eq(b->first_ts, a->first_ts);
        ck_assert_int_eq(b->last_ts, a->last_ts);
        ck_assert_uint_eq(b->size, a->size);
        ck_assert_uint_eq(b->with_ids, a->with_ids);
        size_t k = 0;
        for (size_t j = 0; j < a->nsum; j++) {
            if (!a->sum[j].cnt)
                continue; /* zero counts are not written */
            ck_assert_uint_lt(k, b->nsum);
            ck_assert_uint_eq(jsi_sum_id(&b->sum[k]), jsi_sum_id(&a->sum[j]));
            ck_assert_uint_eq(b->sum[k].cnt, a->sum[j].cnt);
            k++;
        }
        ck_assert_uint_eq(k, b->nsum);
    }
    ck_assert_uint_eq(d->deleted.n, ms->deleted.n);
    for (size_t i = 0; i < ms->deleted.n; i++) {
        ck_assert_uint_eq(d->deleted.r[i].lo, ms->deleted.r[i].lo);
        ck_assert_uint_eq(d->deleted.r[i].hi, ms->deleted.r[i].hi);
    }
    ck_assert_uint_eq(jsi_rs_total(&d->lost), jsi_rs_total(&ms->lost));
    subj_cmp c = {d, 0};
    ck_assert_int_eq(jsi_stree_each(ms->stree, cmp_subject, &c), 0);
    ck_assert_uint_eq(c.n, jsi_sidx_size(ms->sidx));
    ck_assert_uint_eq(jsi_sidx_size(d->sidx), jsi_sidx_size(ms->sidx));
}

START_TEST(checkpoint_of_a_store_decodes_to_the_same_index) {
    jsi_ms *ms = ms_filled(mem, "/s"), *d = ms_blank(mem);
    CHECK_RC(jsi_ms_checkpoint(ms), 0);
    int found;
    jsi_buf img = read_index(mem, "/s", &found);
    ck_assert(found);
    uint64_t no, size;
    uint32_t crc;
    CHECK_RC(decode(d, &img, &no, &size, &crc), 0);
    same_index(ms, d);
    const jsi_blk *t = ms->blks[ms->nblks - 1];
    ck_assert_uint_eq(no, t->no);
    ck_assert_uint_eq(size, t->size);
    ck_assert_uint_eq(crc, jsi_crc32c(0, t->buf + t->size - 64, 64));
    ck_assert_uint_eq(jsi_rs_total(&d->deleted), 3); /* 20, 21, 44 */
    ck_assert_uint_eq(d->first, 3);
    ck_assert_uint_eq(d->msgs, 55);
    jsi_buf_free(&img);
    jsi_ms_free(d);
    CHECK_RC(jsi_ms_close(ms), 0);
}
END_TEST

/* Each allocation of a checkpoint of ms (in dir, whose checkpoint on
 * storage is now `old`) fails in turn. The call fails with JS_ENOMEM
 * while encoding (the old checkpoint stays) or succeeds (a failure while
 * writing the file only costs a slower open): either way storage holds the
 * old checkpoint or the new one, whole, and the new one decodes to ms's
 * index. Returns how many failures the encoder reported. */
static uint64_t checkpoint_alloc_sweep(jsi_ms *ms, js_vfs *vfs,
                                       const char *dir, const jsi_buf *old) {
    enum { MAXK = 512 };
    jsi_buf *seen = calloc(MAXK, sizeof *seen);
    int rcs[MAXK], found;
    uint64_t k, nomem = 0;
    ck_assert_ptr_nonnull(seen);
    for (k = 1;; k++) {
        ck_assert_uint_lt(k, MAXK);
        jsi_alloc_fail_at(k, 0);
        int rc = jsi_ms_checkpoint(ms);
        uint64_t failed = jsi_alloc_failed();
        jsi_alloc_fail_at(0, 0);
        seen[k] = read_index(vfs, dir, &found);
        ck_assert(found);
        rcs[k] = rc;
        if (!failed) {
            CHECK_RC(rc, 0);
            break;
        }
        ck_assert_msg(rc == 0 || rc == JS_ENOMEM, "allocation %" PRIu64
                      ": %s", k, js_strerror(rc));
        nomem += rc == JS_ENOMEM;
    }
    const jsi_buf *fresh = &seen[k];
    for (uint64_t i = 1; i < k; i++) {
        ck_assert_msg(same_buf(&seen[i], old) ||
                          (rcs[i] == 0 && same_buf(&seen[i], fresh)),
                      "allocation %" PRIu64 " left a mixed checkpoint", i);
        jsi_buf_free(&seen[i]);
    }
    jsi_ms *d = ms_blank(vfs);
    uint64_t no, size;
    uint32_t crc;
    CHECK_RC(decode(d, fresh, &no, &size, &crc), 0);
    same_index(ms, d);
    jsi_ms_free(d);
    jsi_buf_free(&seen[k]);
    free(seen);
    return nomem;
}

/* A store just opened from its checkpoint has not loaded its tail block:
 * the writer reads the tail's last bytes from the file, and a missing or
 * short file fails the checkpoint, leaving the one on storage. */
START_TEST(checkpoint_reads_an_unloaded_tail_from_its_file) {
    jsi_ms *ms = ms_filled(mem, "/s");
    CHECK_RC(jsi_ms_close(ms), 0); /* writes the checkpoint */
    int found;
    jsi_buf before = read_index(mem, "/s", &found), after;
    ck_assert(found);
    ms = ms_open(mem, "/s");
    jsi_blk *t = ms->blks[ms->nblks - 1];
    ck_assert_ptr_null(t->buf);
    CHECK_RC(jsi_ms_checkpoint(ms), 0);
    after = read_index(mem, "/s", &found);
    ck_assert(same_buf(&before, &after)); /* the same index, bit for bit */
    jsi_buf_free(&after);
    /* Out of memory at each step, the path of the tail's file included. */
    ck_assert_uint_gt(checkpoint_alloc_sweep(ms, mem, "/s", &before), 0);
    ck_assert_ptr_null(t->buf);
    /* The tail file cut short, then gone. */
    char *path = jsi_ms_blk_path(ms, t->no);
    js_vfs_file *f = NULL;
    CHECK_RC(jsi_vfs_open(mem, path, JS_VFS_WRITE, &f), 0);
    CHECK_RC(f->io->truncate(f, t->size - 1), 0);
    CHECK_RC(jsi_vfs_close(f), 0);
    CHECK_RC(jsi_ms_checkpoint(ms), JS_ECORRUPT); /* a short read */
    CHECK_RC(mem->remove(mem, path), 0);
    CHECK_RC(jsi_ms_checkpoint(ms), JS_ENOTFOUND);
    after = read_index(mem, "/s", &found);
    ck_assert(same_buf(&before, &after));
    jsi_buf_free(&after);
    jsi_free(path);
    jsi_buf_free(&before);
    jsi_ms_free(ms);
}
END_TEST

START_TEST(checkpoint_allocation_failures_leave_old_or_new_whole) {
    jsi_ms *ms = ms_filled(mem, "/s");
    CHECK_RC(jsi_ms_checkpoint(ms), 0);
    int found;
    jsi_buf old = read_index(mem, "/s", &found);
    /* More subjects and another block since. */
    char subj[32];
    for (int i = 0; i < 40; i++) {
        snprintf(subj, sizeof subj, "more.%d", i);
        append(ms, subj, i);
    }
    CHECK_RC(jsi_ms_remove_first(ms), 0);
    CHECK_RC(jsi_ms_commit(ms, 1), 0);
    ck_assert_uint_gt(checkpoint_alloc_sweep(ms, mem, "/s", &old), 3);
    jsi_buf now = read_index(mem, "/s", &found);
    ck_assert(!same_buf(&now, &old));
    jsi_buf_free(&now);
    jsi_buf_free(&old);
    CHECK_RC(jsi_ms_close(ms), 0);
}
END_TEST

/* The same for indexes of many sizes (1 to 12 subjects, 0 to 12 isolated
 * deletes, over three blocks): the buffer the image is encoded into grows
 * at a different field each time, so an allocation fails in the middle of
 * each part of the encoding. */
START_TEST(checkpoint_allocation_failures_at_every_index_size) {
    char subj[64];
    for (int n = 1; n <= 12; n++) {
        for (int del = 0; del <= 12; del++) {
            js_vfs *vfs = jsi_vfs_mem_new();
            pthread_mutex_lock(&mu);
            jsi_ms *ms = ms_open(vfs, "/s");
            for (int i = 0; i < 40; i++) {
                int k = i % n;
                snprintf(subj, sizeof subj, "k.%.*s%c", 1 + (k * 5) % 23,
                         "abcdefghijklmnopqrstuvwxyz", 'a' + k);
                append(ms, subj, i);
            }
            for (int i = 0; i < del; i++)
                CHECK_RC(jsi_ms_remove(ms, 3 + 3 * (uint64_t)i, 0), 0);
            CHECK_RC(jsi_ms_commit(ms, 1), 0);
            CHECK_RC(jsi_ms_checkpoint(ms), 0);
            int found;
            jsi_buf old = read_index(vfs, "/s", &found);
            append(ms, "last", n);
            CHECK_RC(jsi_ms_commit(ms, 1), 0);
            ck_assert_uint_gt(checkpoint_alloc_sweep(ms, vfs, "/s", &old), 0);
            jsi_buf_free(&old);
            CHECK_RC(jsi_ms_close(ms), 0);
            pthread_mutex_unlock(&mu);
            jsi_vfs_mem_free(vfs);
        }
    }
}
END_TEST

/* A checkpoint describes only durable records: appends not yet written
 * are flushed first; a store whose writes failed writes none. */
START_TEST(checkpoint_flushes_pending_appends_and_refuses_a_failed_store) {
    jsi_ms *ms = ms_filled(mem, "/s");
    append(ms, "late", 1);
    append(ms, "late", 2);
    ck_assert_uint_ne(ms->dpos, ms->apos);
    CHECK_RC(jsi_ms_checkpoint(ms), 0);
    ck_assert_uint_eq(ms->dpos, ms->apos);
    int found;
    jsi_buf img = read_index(mem, "/s", &found);
    jsi_ms *d = ms_blank(mem);
    uint64_t no, size;
    uint32_t crc;
    CHECK_RC(decode(d, &img, &no, &size, &crc), 0);
    ck_assert_uint_eq(d->last, 62);
    same_index(ms, d);
    jsi_ms_free(d);
    /* The store's sticky error, as a failed flush leaves it. */
    append(ms, "late", 3);
    ms->failed = JS_EIO;
    CHECK_RC(jsi_ms_checkpoint(ms), JS_EFAILED);
    jsi_buf now = read_index(mem, "/s", &found);
    ck_assert(same_buf(&img, &now));
    jsi_buf_free(&now);
    jsi_buf_free(&img);
    jsi_ms_free(ms);
}
END_TEST

/* The flush before a checkpoint fails: its error is the checkpoint's. */
START_TEST(checkpoint_returns_the_flush_failure) {
    char *grave = tu_path("%s/grave", base_dir);
    char *dir = tu_path("%s/flush", base_dir);
    simfs *sim = sim_new("codec-simfs", grave);
    pthread_mutex_lock(&mu);
    jsi_ms *ms = ms_open(&sim->vfs, dir);
    append(ms, "a", 1);
    CHECK_RC(jsi_ms_commit(ms, 1), 0);
    append(ms, "a", 2);
    sim_fault(sim, SIM_F_WRITE, 1, JS_EIO, 1);
    CHECK_RC(jsi_ms_checkpoint(ms), JS_EIO);
    sim_fault(sim, 0, 0, 0, 0);
    jsi_ms_free(ms);
    pthread_mutex_unlock(&mu);
    sim_free(sim);
    free(dir);
    free(grave);
}
END_TEST

START_TEST(checkpoint_remove_is_durable_and_tolerates_none) {
    char *grave = tu_path("%s/grave-rm", base_dir);
    char *dir = tu_path("%s/remove", base_dir);
    simfs *sim = sim_new("codec-simfs-rm", grave);
    pthread_mutex_lock(&mu);
    jsi_ms *ms = ms_open(&sim->vfs, dir);
    append(ms, "a", 1);
    CHECK_RC(jsi_ms_checkpoint(ms), 0);
    char *path = tu_path("%s/index", dir);
    ck_assert_int_eq(access(path, F_OK), 0);
    /* A failing remove is returned (no directory sync follows). */
    sim_fault(sim, SIM_F_REMOVE, 1, JS_EIO, 0);
    CHECK_RC(jsi_ckpt_remove(ms), JS_EIO);
    ck_assert_int_eq(access(path, F_OK), 0);
    /* Out of memory for the path. */
    jsi_alloc_fail_at(1, 0);
    CHECK_RC(jsi_ckpt_remove(ms), JS_ENOMEM);
    jsi_alloc_fail_at(0, 0);
    ck_assert_int_eq(access(path, F_OK), 0);
    /* Removed, and the directory synced: it survives a power cut. */
    sim_reset(sim);
    CHECK_RC(jsi_ckpt_remove(ms), 0);
    ck_assert_int_ne(access(path, F_OK), 0);
    /* None there: nothing to do, not an error. */
    CHECK_RC(jsi_ckpt_remove(ms), 0);
    jsi_ms_free(ms);
    pthread_mutex_unlock(&mu);
    sim_power_fail(sim, SIM_DROP, 1);
    ck_assert_int_ne(access(path, F_OK), 0);
    sim_free(sim);
    free(path);
    free(dir);
    free(grave);
}
END_TEST

static Suite *codec_suite(void) {
    Suite *s = suite_create("codec");
    TCase *t = tcase_create("record");
    tcase_add_test(t, block_header_round_trips_and_each_field_is_checked);
    tcase_add_test(t,
                   message_record_round_trips_with_each_part_present_or_empty);
    tcase_add_test(t, removal_and_erased_records_round_trip);
    tcase_add_test(t,
                   record_header_lengths_and_types_are_checked_at_their_bounds);
    tcase_add_test(t, record_header_magic_checksum_and_partial_headers);
    tcase_add_test(t, resync_skips_false_starts_to_the_next_valid_header);
    suite_add_tcase(s, t);
    t = tcase_create("checkpoint");
    tcase_set_timeout(t, 60);
    tcase_add_checked_fixture(t, mem_setup, mem_teardown);
    tcase_add_test(t, valid_checkpoint_decodes_to_exactly_its_fields);
    tcase_add_test(t, checkpoint_with_any_field_malformed_is_refused);
    tcase_add_test(t, checkpoint_framing_is_checked_before_any_field);
    tcase_add_test(t, checkpoint_decode_out_of_memory_is_not_damage);
    tcase_add_test(t, checkpoint_of_a_store_decodes_to_the_same_index);
    tcase_add_test(t, checkpoint_reads_an_unloaded_tail_from_its_file);
    tcase_add_test(t, checkpoint_allocation_failures_leave_old_or_new_whole);
    tcase_add_test(t,
                   checkpoint_flushes_pending_appends_and_refuses_a_failed_store);
    suite_add_tcase(s, t);
    /* Each with its own backend. */
    t = tcase_create("checkpoint-io");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, checkpoint_allocation_failures_at_every_index_size);
    tcase_add_test(t, checkpoint_returns_the_flush_failure);
    tcase_add_test(t, checkpoint_remove_is_durable_and_tolerates_none);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    base_dir = tu_mkdtemp("test_codec");
    int failed = tu_run_suite(codec_suite());
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed == 0 ? 0 : 1;
}
