/*
 * consumer_state.h - what a durable consumer must not forget across a
 * crash, and the append-only log file that keeps it.
 *
 * The runtime keeps far more in memory (pending timers, waiting pulls);
 * this is only what a restart needs: where delivery stood, the ack floor,
 * the acks above it, and the delivery counts of messages handed out more
 * than once. A restart resumes at floor_sseq + 1, skips members of
 * `acked`, redelivers what is in (floor_sseq, dlv_sseq] and not acked,
 * and restores delivery counts from `counts`.
 *
 * File format (one file per consumer; integers little-endian):
 *   header, 16 bytes:
 *     0  u8[4]  magic "JSCS"
 *     4  u32    format version (JSI_CSTATE_VERSION)
 *     8  u8[8]  reserved: written as 0, ignored on read
 *   then records back to back:
 *     0  u32    payload length (the payload alone)
 *     4  u32    CRC-32C of the type byte and the payload
 *     8  u8     type (JSI_CSREC_*)
 *     9  payload, all unsigned LEB128 varints:
 *        SNAP:  dlv_dseq dlv_sseq floor_dseq floor_sseq, acked as a
 *               rangeset encoding (jsi_rs_encode), ncounts, then per
 *               count: sseq - previous sseq (previous 0 before the
 *               first; so every delta >= 1), n
 *        ACKS:  dlv_dseq dlv_sseq floor_dseq floor_sseq, then the done
 *               stream sequences as a rangeset encoding
 *        COUNT: sseq n
 *   A payload must be consumed exactly; anything else is corruption.
 *
 * Replay starts from the empty state and applies the records in order:
 * SNAP replaces the state; ACKS takes the maximum of each of the four
 * positions (they never move back; a runtime that must move them back,
 * say to reset a consumer, writes a SNAP) and adds its sequences to
 * `acked`; COUNT sets the delivery count of one message (n <= 1 clears
 * it). The first record that runs past the end, fails its CRC, has an
 * unknown type or does not decode ends the log: it and everything after
 * it are a torn tail. A new record type therefore needs a new format
 * version. The replayed state is then normalised (jsi_cstate_normalise).
 *
 * Every record is a fact that stays true (a message done, a position
 * reached), so replaying any prefix of the log yields a state that claims
 * no more than was true; what a lost tail forgets is redelivered, which
 * at-least-once delivery allows.
 *
 * No locking here: the caller serialises calls on a state or a log (and
 * does its own group commit: encode records into one buffer, append it,
 * sync once).
 */
#ifndef JSI_CONSUMER_STATE_H
#define JSI_CONSUMER_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "rangeset.h"
#include "util.h"

#define JSI_CSTATE_MAGIC "JSCS"
#define JSI_CSTATE_VERSION 1u
#define JSI_CSTATE_HDR_LEN 16
#define JSI_CSREC_HDR_LEN 9 /* length, CRC, type */

enum {
    JSI_CSREC_SNAP = 1,
    JSI_CSREC_ACKS = 2,
    JSI_CSREC_COUNT = 3,
};

typedef struct jsi_cstate_count {
    uint64_t sseq; /* stream sequence, >= 1 */
    uint64_t n;    /* times delivered, >= 2 once normalised */
} jsi_cstate_count;

typedef struct jsi_cstate {
    /* delivered: the last consumer and stream sequences handed out */
    uint64_t dlv_dseq, dlv_sseq;
    /* ack floor: every stream sequence <= floor_sseq is done */
    uint64_t floor_dseq, floor_sseq;
    /* stream sequences > floor_sseq that are done (acked, terminated, or
     * given up after max_deliver) */
    jsi_rangeset acked;
    /* delivery counts of messages above the floor that were delivered
     * more than once and are not done; sorted by sseq, no duplicates */
    size_t ncounts;
    jsi_cstate_count *counts;
    size_t counts_cap; /* entries allocated at counts */
    /* last_per_subject: the stream's last sequence when the consumer was
     * made; its list is each matching subject's last message up to here
     * (0: none, or the list is done). Carried by SNAP only. */
    uint64_t lps_end;
} jsi_cstate;

/* ---- the state ------------------------------------------------------- */

/* An empty state: nothing delivered, nothing done. Never fails. */
void jsi_cstate_init(jsi_cstate *s);
/* Release what s holds and leave it empty; NULL accepted. */
void jsi_cstate_free(jsi_cstate *s);
/* Replace out (an initialised state) by a deep copy of in. 0 or
 * JS_ENOMEM (out unchanged). */
int jsi_cstate_copy(const jsi_cstate *in, jsi_cstate *out);
/* Set the delivery count of sseq (>= 1) to n; n <= 1 removes the entry.
 * 0, JS_EINVAL (sseq 0) or JS_ENOMEM (s unchanged). */
int jsi_cstate_set_count(jsi_cstate *s, uint64_t sseq, uint64_t n);
/* Canonical form, the same whatever order the facts arrived in: advance
 * the floor while floor_sseq + 1 is in acked (floor_dseq keeps its largest
 * recorded value: which consumer sequence delivered the new floor is not
 * known), then drop acked members <= floor_sseq and counts that are <=
 * floor_sseq, in acked, or <= 1. Never fails. */
void jsi_cstate_normalise(jsi_cstate *s);

/* ---- the codec ------------------------------------------------------- */
/* Each encoder appends one whole record to b; on failure b is as it was.
 * They return 0, JS_EINVAL (a sequence 0, unsorted or duplicate counts)
 * or JS_ENOMEM. */

/* Append the 16-byte file header. */
int jsi_cstate_enc_header(jsi_buf *b);
/* A SNAP of the whole of s (counts must be sorted by sseq, no sseq twice,
 * none 0). */
int jsi_cstate_enc_snap(const jsi_cstate *s, jsi_buf *b);
/* An ACKS record: the runtime's current positions and done[0..n), stream
 * sequences (>= 1) in any order, duplicates allowed. */
int jsi_cstate_enc_acks(uint64_t dlv_dseq, uint64_t dlv_sseq,
                        uint64_t floor_dseq, uint64_t floor_sseq,
                        const uint64_t *done, size_t n, jsi_buf *b);
/* A COUNT record: sseq (>= 1) has been delivered n times. */
int jsi_cstate_enc_count(uint64_t sseq, uint64_t n, jsi_buf *b);

/* Replay a whole file image p[0..n) into *out (an initialised state,
 * whose old contents are freed on success). Returns 0 when the header is
 * good: *out holds the normalised replay of the valid records and *good
 * the length of the valid prefix (header included; < n when a torn or
 * damaged tail follows). JS_ECORRUPT when the image is shorter than the
 * header or the magic or version is wrong: *out is then the empty state
 * and *good 0. JS_ENOMEM: *out unchanged. Never reads outside p[0..n). */
int jsi_cstate_replay(const uint8_t *p, size_t n, jsi_cstate *out,
                      size_t *good);

/* ---- the log file ----------------------------------------------------- */

typedef struct jsi_cslog jsi_cslog; /* an open log file */

/* Open or create dir/name (dir must exist) and replay it into *st (an
 * initialised state, replaced on success). A stale dir/name.tmp (a rewrite
 * cut short by a crash before its rename) is removed: the name itself is
 * still the old, complete log. A torn tail is cut off, durably, before
 * this returns. A file whose header is short or damaged opens as the empty
 * state (see jsi_cslog_damage) and is rewritten as such. Returns 0,
 * JS_EINVAL (a NULL argument), JS_ENOMEM, or the VFS's error when the
 * file cannot be read or repaired (JS_ENOTFOUND: no directory dir); *out
 * is NULL on failure. Do not name another file name + ".tmp". */
int jsi_cslog_open(js_vfs *vfs, const char *dir, const char *name,
                   jsi_cstate *st, jsi_cslog **out);
/* What jsi_cslog_open found: JS_ECORRUPT if the header was short or
 * damaged (the state started empty: everything will be redelivered), else
 * 0. *cut, if not NULL, gets the bytes cut off as a torn tail. */
int jsi_cslog_damage(const jsi_cslog *l, uint64_t *cut);
/* Write p[0..n) (whole records) at the end of the file; not durable until
 * jsi_cslog_sync. After any failed write or sync, appends and syncs fail
 * with JS_EFAILED until a jsi_cslog_rewrite succeeds. */
int jsi_cslog_append(jsi_cslog *l, const void *p, size_t n);
/* Make every append before it durable. */
int jsi_cslog_sync(jsi_cslog *l);
/* Bytes in the file, header included. */
uint64_t jsi_cslog_size(const jsi_cslog *l);
/* Replace the file atomically and durably by the header and one SNAP of
 * st (write name.tmp, sync it, rename it over name, sync dir), and go on
 * appending to the new file. If it fails before the rename, the old file
 * stays in use, untouched; if only the directory sync fails, the new file
 * is in use but the log is failed (JS_EFAILED) until a rewrite succeeds. */
int jsi_cslog_rewrite(jsi_cslog *l, const jsi_cstate *st);
/* Close the file (unsynced appends are left to the OS); NULL accepted. */
void jsi_cslog_close(jsi_cslog *l);
/* Remove dir/name and any dir/name.tmp, durably. A missing file is not
 * an error. Close the log first. */
int jsi_cslog_remove(js_vfs *vfs, const char *dir, const char *name);

#endif
