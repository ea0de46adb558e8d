/*
 * record.h - the on-disk codec of block files: the block header and the
 * checksummed records inside. Pure functions over bytes, no I/O, so every
 * byte that comes from storage passes through here first (and a fuzzer can
 * reach it directly).
 *
 * Block file: a 32-byte header, then records back to back.
 *   0  u8[8]  magic "JSBLK\r\n\x1a"
 *   8  u32    format version (1)
 *   12 u32    flags (bit 0 compressed, bit 1 encrypted; reserved, 0 in v1)
 *   16 u64    block number (matches the file name)
 *   24 u32    reserved, 0
 *   28 u32    CRC-32C of bytes 0..27
 *
 * Record (all integers little-endian), a 40-byte header then the body:
 *   0  u32 magic "JSR1"  (lets recovery resynchronise after damage)
 *   4  u32 len           total record bytes, header included
 *   8  u64 seq           MSG/ERASED: its sequence; DEL/FRONT/LOST: the
 *                        stream's last sequence when written
 *   16 i64 ts            ns since the epoch
 *   24 u8  type          JSI_REC_*
 *   25 u8  flags         MSG: JSI_RECF_MSGID if it carries Nats-Msg-Id;
 *                        0 otherwise
 *   26 u16 subj_len
 *   28 u32 hdr_len
 *   32 u32 body CRC-32C
 *   36 u32 header CRC-32C of bytes 0..35
 *   40 body: MSG: subject, header block, payload (the rest of len)
 *            DEL: a rangeset encoding of removed sequences
 *            FRONT: u64 new first sequence (all below it removed)
 *            ERASED: zeros (a MSG overwritten by a secure erase)
 *            LOST: u64 the stream's lost bytes, then a rangeset encoding
 *                  of lost sequences (some or all of them: a reader takes
 *                  the union), so the blocks still say what an open
 *                  reported lost once the records that showed it are
 *                  gone (msgstore_recover.c). A reader older than this
 *                  record skips it as damage.
 * Two checksums: a damaged body still names the sequence it held, so the
 * loss is reported exactly; a damaged header is skipped by resync.
 */
#ifndef JSI_RECORD_H
#define JSI_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define JSI_BLK_HDR_LEN 32
#define JSI_BLK_VERSION 1
#define JSI_REC_HDR_LEN 40
#define JSI_REC_MAGIC 0x3152534Au /* "JSR1" */
/* Bound on a record: a header, a subject, a header block and a payload. */
#define JSI_REC_MAX_LEN \
    (JSI_REC_HDR_LEN + JS_MAX_SUBJECT_LEN + JS_MAX_PAYLOAD)

enum {
    JSI_REC_MSG = 1,
    JSI_REC_DEL = 2,
    JSI_REC_FRONT = 3,
    JSI_REC_ERASED = 4,
    JSI_REC_LOST = 5,
};

/* Record flags. */
#define JSI_RECF_MSGID 0x01u /* the message has a Nats-Msg-Id header */
#define JSI_RECF_KNOWN 0x01u

typedef struct jsi_rechdr {
    uint32_t len;
    uint64_t seq;
    int64_t ts;
    uint8_t type;
    uint8_t flags;
    uint16_t subj_len;
    uint32_t hdr_len;
    uint32_t body_crc;
    uint32_t hdr_crc;
} jsi_rechdr;

/* Write a block header for block number blkno into p[0..32). */
void jsi_blkhdr_encode(uint8_t *p, uint64_t blkno);
/* 0 if p[0..n) starts with a valid header for blkno, else JS_ECORRUPT. */
int jsi_blkhdr_check(const uint8_t *p, size_t n, uint64_t blkno);

/* Encode a record header (computing the header CRC) into p[0..40). body_crc
 * is the CRC-32C of the body. */
void jsi_rec_encode_hdr(uint8_t *p, uint32_t len, uint64_t seq, int64_t ts,
                        uint8_t type, uint8_t flags, uint16_t subj_len,
                        uint32_t hdr_len, uint32_t body_crc);

/* Encode a whole MSG record into p (which has room for
 * JSI_REC_HDR_LEN + slen + hlen + dlen bytes); returns its length. */
size_t jsi_rec_encode_msg(uint8_t *p, uint64_t seq, int64_t ts,
                          uint8_t flags, const char *subj, size_t slen,
                          const void *hdr, size_t hlen, const void *data,
                          size_t dlen);

/* Parse and check the record header at p[0..avail). Returns
 *   1  header valid and the whole record (h->len bytes) is available;
 *   0  header valid but the record runs past avail (torn tail);
 *  -1  not a valid header here (bad magic, CRC, or inconsistent lengths).
 * Every length is bound-checked against JSI_REC_MAX_LEN and the type. */
int jsi_rec_parse_hdr(const uint8_t *p, size_t avail, jsi_rechdr *h);

/* 1 if the body of a parsed record at p matches its CRC. */
int jsi_rec_body_ok(const uint8_t *p, const jsi_rechdr *h);

/* Find the next offset >= from in p[0..n) where a valid record header
 * starts (magic + header CRC), or n if there is none. */
size_t jsi_rec_resync(const uint8_t *p, size_t n, size_t from);

#endif
