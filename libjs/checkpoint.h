/*
 * checkpoint.h - the index checkpoint of a message store (file "index" in
 * the stream's directory): a snapshot of the in-memory index taken when
 * everything before it was durable, so an open replays only the records
 * written after it instead of every block.
 *
 * Format (integers little-endian, counts and sequences as varints):
 *   u8[8]  magic "JSIDX\r\n\x1a"
 *   u32    version (2)
 *   u32    flags: bit 0 set when the lost set below is non-empty (or
 *          lost bytes non-zero) and also held by LOST records in the
 *          blocks; other bits 0. Without it an open logs the lost set.
 *   varint first, last, msgs, bytes, last_ts, lost_bytes, next_blkno,
 *          next subject id
 *   varint tail block number, tail size (replay starts there)
 *   u32    CRC-32C of the tail block's bytes [max(32, size-64), size)
 *   varint block count; per block: no, lo, hi-lo+1, msgs, bytes,
 *          first_ts, last_ts, size, messages with Nats-Msg-Id, then its
 *          subject summary: pair count, per pair (ids ascending): id minus
 *          the previous pair's id (the first: the id), live messages
 *   rangeset deleted, rangeset lost
 *   varint subject count; per subject: len, bytes, count, first, last,
 *          flags, id
 *   u32    CRC-32C of everything before it
 *
 * Version 1 (no subject ids or summaries) is not read: the open rebuilds
 * the index from the blocks and writes a version 2 checkpoint.
 */
#ifndef JSI_CHECKPOINT_H
#define JSI_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

struct jsi_ms;

/* Load the checkpoint into an empty store, checking it against the block
 * files found (numbers sorted, nos[0..n)). On success the store holds the
 * checkpointed index and *blk, *off say where replay starts. JS_ENOTFOUND if
 * there is none, JS_ECORRUPT if it is damaged or does not match the files
 * (the caller then rebuilds from the blocks). */
int jsi_ckpt_load(struct jsi_ms *ms, const uint64_t *nos, size_t n,
                  uint64_t *blk, uint64_t *off);

/* Remove the checkpoint file, durably (the directory is synced). */
int jsi_ckpt_remove(struct jsi_ms *ms);

/* Decode a checkpoint image (for the fuzzer and tests): 0 or JS_ECORRUPT,
 * never reading outside p[0..len). */
int jsi_ckpt_decode(struct jsi_ms *ms, const uint8_t *p, size_t len,
                    uint64_t *tail_no, uint64_t *tail_size,
                    uint32_t *tail_crc);

#endif
