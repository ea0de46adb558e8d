/*
 * msgstore.h - the messages of one stream: append-only block files of
 * checksummed records over a js_vfs, an in-memory index (blocks, deleted
 * runs, per-subject counts, and per block the live messages of each
 * subject in it), a block cache, group commit, index checkpoints and
 * crash recovery.
 *
 * Locking: every function is called with the stream's mutex (cfg.mu) held.
 * jsi_ms_commit() may release it while it writes and syncs, so other
 * publishers keep appending while one thread does the I/O for all of them
 * (group commit); state is re-read after it returns.
 *
 * Durability: a removal is logged as a DEL record (interior sequences) or a
 * FRONT record (everything below a sequence) in the tail block; block files
 * are deleted only once every message in them is below a durable FRONT.
 * The sequences an open found lost are logged as LOST records, again
 * whenever block files are about to be deleted, so they stay reported. A
 * checkpoint (file "index") snapshots the in-memory index so an open replays
 * only the records written after it.
 */
#ifndef JSI_MSGSTORE_H
#define JSI_MSGSTORE_H

#include <pthread.h>
#include <stdint.h>

#include "jetstream.h"
#include "rangeset.h"
#include "subject.h"

typedef struct jsi_ms jsi_ms;

typedef struct jsi_ms_cfg {
    js_vfs *vfs;
    const char *dir;         /* the stream's directory (exists) */
    uint32_t block_size;     /* target block size; 0: default */
    int sync;                /* JS_SYNC_ALWAYS / INTERVAL / NONE */
    int64_t sync_interval;   /* ns */
    int64_t (*clock)(void *ctx); /* ns since the epoch */
    void *clock_ctx;
    pthread_mutex_t *mu;     /* the stream's mutex, held by callers */
} jsi_ms_cfg;

/* A message as stored. The pointers borrow the store's memory and stay
 * valid only until the next jsi_ms_* call or until mu is released. */
typedef struct jsi_rec {
    uint64_t seq;
    int64_t ts;
    const char *subj;
    size_t slen;
    const uint8_t *hdr;
    size_t hlen;
    const uint8_t *data;
    size_t dlen;
} jsi_rec;

typedef struct jsi_ms_state {
    uint64_t msgs, bytes, first, last;
    int64_t first_ts, last_ts;
    uint64_t num_subjects, num_deleted;
    uint64_t lost_msgs, lost_bytes;
} jsi_ms_state;

/* Bytes a message counts for in max_bytes and the stream's `bytes`. */
static inline uint64_t jsi_ms_msg_size(size_t slen, size_t hlen, size_t dlen) {
    return 40u + (uint64_t)slen + hlen + dlen;
}

/* Open the store in cfg->dir, recovering whatever is there. A new (empty)
 * directory gets a store whose first sequence is first_seq (>= 1). */
int jsi_ms_open(const jsi_ms_cfg *cfg, uint64_t first_seq, jsi_ms **out);
/* Flush, sync, write a checkpoint, free. Returns the first error. */
int jsi_ms_close(jsi_ms *ms);
/* Free without writing anything (after a failure, or before removal). */
void jsi_ms_free(jsi_ms *ms);

/* Stop all writes (the stream is being deleted): writers and waiters get
 * JS_EFAILED from now on. Returns once no I/O is under way. */
void jsi_ms_kill(jsi_ms *ms);

/* Change the sync policy (stream update). */
void jsi_ms_set_sync(jsi_ms *ms, int sync, int64_t interval);

void jsi_ms_state_get(jsi_ms *ms, jsi_ms_state *st);
/* The lost sequences (found damaged or missing by recovery) as sorted,
 * disjoint ranges; *n gets their number. The array is the store's,
 * valid until the next jsi_ms_* call or until mu is released. */
const jsi_range *jsi_ms_lost(const jsi_ms *ms, size_t *n);
uint64_t jsi_ms_first_seq(const jsi_ms *ms);
uint64_t jsi_ms_last_seq(const jsi_ms *ms);
uint64_t jsi_ms_msgs(const jsi_ms *ms);
uint64_t jsi_ms_bytes(const jsi_ms *ms);

/* Append a message with the next sequence; *seq gets it. has_msgid marks a
 * message carrying Nats-Msg-Id (blocks count them, so the duplicate window
 * is rebuilt at open by reading only blocks that hold any). Buffered: durable
 * only after jsi_ms_commit(). No per-message allocation or syscall. */
int jsi_ms_append(jsi_ms *ms, const char *subj, size_t slen, const void *hdr,
                  size_t hlen, const void *data, size_t dlen, int64_t ts,
                  int has_msgid, uint64_t *seq);

/* Remove a message (logged at the next commit). JS_EMSG_NOT_FOUND if it is
 * not there. With erase, its bytes are overwritten on storage during the
 * next commit. */
int jsi_ms_remove(jsi_ms *ms, uint64_t seq, int erase);

/* Remove the first (oldest) message; JS_EMSG_NOT_FOUND if empty. */
int jsi_ms_remove_first(jsi_ms *ms);

/* Purge as NATS STREAM.PURGE: filter (NULL: all subjects), below seq (0:
 * no bound), keep the newest `keep` matching (0: none kept). *purged gets
 * the count. */
int jsi_ms_purge(jsi_ms *ms, const char *filter, uint64_t seq, uint64_t keep,
                 uint64_t *purged);

/* Write the records for pending removals, then make everything appended so
 * far as durable as the sync policy says: ALWAYS syncs (sharing the sync
 * with concurrent committers), INTERVAL writes and syncs if the interval
 * has passed, NONE writes. force_sync syncs whatever the policy. */
int jsi_ms_commit(jsi_ms *ms, int force_sync);

/* Called (under the stream mutex) for messages the store removes: by
 * jsi_ms_remove, jsi_ms_remove_first, jsi_ms_purge. subj/slen is the
 * subject of every message in [lo, hi] (lo == hi for a single message), or
 * NULL when the store removed a range without knowing the subjects (then
 * the caller recounts with jsi_ms_count). Called after the index has
 * changed; it may read (jsi_ms_count, ...) but not remove, and subj is
 * valid only until it calls back into the store. Never called for
 * removals replayed during recovery (no observer is set until open
 * returns). */
typedef void (*jsi_ms_removed_fn)(void *ctx, uint64_t lo, uint64_t hi,
                                  const char *subj, size_t slen);
/* Set (fn NULL: clear) the removal observer. */
void jsi_ms_set_observer(jsi_ms *ms, jsi_ms_removed_fn fn, void *ctx);

/* Exact number of live messages with sequence >= start whose subject
 * matches any of filters[0..nfilters) (nfilters 0: every subject). Filters
 * are valid subjects, possibly with wildcards, none a subset of another.
 * Reads at most the one block holding `start`; everything else comes from
 * in-memory summaries. "Live" is as the index knows it: a record found
 * damaged only after open still counts until it is removed. 0,
 * JS_ENOMEM, or the error loading the block holding start. */
int jsi_ms_count(jsi_ms *ms, const char *const *filters, size_t nfilters,
                 uint64_t start, uint64_t *out);

/* Reads. Each returns 0 and fills *r, JS_EMSG_NOT_FOUND, or JS_ECORRUPT
 * (the message was stored but is damaged or lost). */
int jsi_ms_load(jsi_ms *ms, uint64_t seq, jsi_rec *r);
/* First message with sequence >= seq matching filter (NULL: any). */
int jsi_ms_next(jsi_ms *ms, const char *filter, uint64_t seq, jsi_rec *r);
/* First live message with sequence >= seq matching any of filters
 * (nfilters 0: any); filters as for jsi_ms_count. Skips blocks whose
 * summary holds no matching subject, so a sparse filter reads only the
 * blocks holding its messages. Damaged records are skipped. */
int jsi_ms_next_multi(jsi_ms *ms, const char *const *filters,
                      size_t nfilters, uint64_t seq, jsi_rec *r);
/* Last message matching filter (a literal subject or wildcards). */
int jsi_ms_last(jsi_ms *ms, const char *filter, jsi_rec *r);
/* The per-subject index (for walks over all subjects). */
jsi_sidx *jsi_ms_sidx(jsi_ms *ms);
/* The first subject entry after after[0..after_len) (after NULL: from the
 * start) in byte order matching filter (NULL or ">": any), or NULL. A
 * filter with a literal prefix visits only that part of the index. The
 * entry is valid until the store lock is released; resume a walk by
 * passing a copy of its subject as after. */
jsi_sidx_entry *jsi_ms_subject_next(jsi_ms *ms, const char *filter,
                                    const char *after, size_t after_len);
/* Call fn once for every subject matching any of f[0..nf) (nf 0: every
 * subject), in no particular order, until it returns non-zero (returned).
 * Literal-prefix filters walk only their part of the ordered index. fn
 * must not change the index. */
typedef int (*jsi_subj_fn)(jsi_sidx_entry *e, void *ctx);
int jsi_ms_subject_each(jsi_ms *ms, const char *const *f, size_t nf,
                        jsi_subj_fn fn, void *ctx);
/* Make an index entry's first/last exact (they may lag after removals). */
int jsi_ms_subject_fix(jsi_ms *ms, jsi_sidx_entry *e);
/* The same for `last` alone (cheap: reads back only when it is stale). */
void jsi_ms_subject_fix_last(jsi_ms *ms, jsi_sidx_entry *e);

/* Timestamp of the first message (0 if empty). */
int64_t jsi_ms_first_ts(jsi_ms *ms);
/* The first sequence >= seq in a block holding any message with a
 * Nats-Msg-Id (last+1 if none): the duplicate-window scan skips the rest. */
uint64_t jsi_ms_next_with_ids(jsi_ms *ms, uint64_t seq);
/* First sequence whose message has ts >= t (last+1 if none). */
uint64_t jsi_ms_seq_from_time(jsi_ms *ms, int64_t t);

/* 1 if a removal is not yet as durable as the sync policy (or, with sync,
 * a sync) makes a commit: jsi_ms_commit() would make it so. */
int jsi_ms_removals_pending(const jsi_ms *ms, int sync);

/* Write a checkpoint now (after a sync). */
int jsi_ms_checkpoint(jsi_ms *ms);

#endif
