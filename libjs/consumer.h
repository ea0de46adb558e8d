/*
 * consumer.h - consumers: cursors over a stream with at-least-once
 * delivery (pull and push), acks, redelivery, retention, durable state.
 *
 * Locking: a consumer's delivery state is protected by its stream's mutex
 * (s->mu), so publishing, removal and delivery see one consistent state.
 * A durable consumer's state file is written with s->mu released, by one
 * thread at a time (the I/O token `log_busy`), so concurrent ack_syncs
 * share one sync (group commit). Callbacks run with no lock held.
 */
#ifndef JSI_CONSUMER_H
#define JSI_CONSUMER_H

#include <pthread.h>

#include "consumer_config.h"
#include "consumer_state.h"
#include "pending.h"
#include "rangeset.h"
#include "stream.h"
#include "util.h"

#define JSI_CONSUMER_MAGIC 0x4a53434eu /* "JSCN" */
#define JSI_SUB_MAGIC 0x4a535342u      /* "JSSB" */

struct js_sub {
    uint32_t magic;
    js_consumer *c;
    js_msg_handler cb;
    void *ctx;
    /* under s->mu: */
    int queued;    /* deliveries taken for it, not yet handed over */
    int running;   /* callbacks executing now */
    int gone;      /* unsubscribed: queued deliveries are dropped */
    int orphan;    /* unsubscribed with deliveries queued: the dispatch
                      round that hands over the last one frees it */
    int mark;      /* once the consumer has nothing to deliver, cb gets
                      one NULL message */
};

struct js_consumer {
    uint32_t magic;
    int refs;                /* atomic: the stream's list, handles, msgs */
    js_stream *s;            /* referenced */
    uint64_t id;             /* durable: file name; 0 for ephemerals */
    char *name;
    int64_t created;
    int gone;                /* deleted, stream deleted or store closed */
    /* ---- under s->mu ---- */
    jsi_ccfg cfg;
    const char *const *filters;
    size_t nfilters;
    uint64_t next_sseq;      /* next stream sequence to look at */
    uint64_t dseq;           /* last consumer sequence given out */
    uint64_t dlv_sseq;       /* stream sequence of the last delivery */
    int64_t dlv_time, ack_time;
    uint64_t floor_sseq, floor_dseq;
    jsi_pend pend;
    uint64_t num_pending;    /* exact: matching, >= next_sseq */
    int recount;             /* num_pending must be recounted */
    jsi_rangeset gaveup;     /* interest streams: out of deliveries at
                                max_deliver, kept until acked (in memory) */
    uint64_t *lps;           /* last_per_subject: the sequences to deliver */
    size_t lps_n, lps_i;
    uint64_t lps_end;        /* the stream's last sequence when made */
    int64_t replay_wall, replay_ts; /* replay original: first delivery */
    int waiting;             /* pull calls waiting */
    pthread_cond_t cond;     /* signalled on publish, ack, delete */
    int64_t last_active;     /* for inactive_threshold */
    uint64_t sample_n;       /* acks seen, for sample_freq */
    /* push */
    js_sub **subs;
    size_t nsubs, subs_cap, rr;
    int dispatching;         /* a dispatch round is delivering its messages:
                                others skip it, so callbacks are serial */
    int dispatch_skipped;    /* a round skipped it meanwhile */
    double tokens;           /* rate_limit_bps bucket, bytes */
    int64_t tokens_at;
    /* durable state file */
    jsi_cslog *log;
    jsi_buf logbuf;          /* records not yet written */
    uint64_t *done;          /* done sequences not yet in logbuf */
    size_t ndone, done_cap;
    uint64_t log_gen;        /* records queued so far (group commit) */
    uint64_t log_written_gen, log_synced_gen;
    uint64_t logged_dlv, logged_floor; /* progress already queued */
    uint64_t snap_size;      /* file size after the last rewrite */
    int log_busy, log_failed;
    pthread_cond_t log_cond;
};

/* ---- stream-side hooks (called with s->mu held) -------------------------- */

/* Load the stream's durable consumers from its directory (at open). */
int jsi_consumers_load(js_stream *s);
/* A message was stored: count it for the consumers that match. */
void jsi_consumers_on_publish(js_stream *s, uint64_t seq, const char *subj,
                              size_t slen);
/* Messages became visible (durable per policy): wake waiters. */
void jsi_consumers_notify(js_stream *s);
/* 1 if some consumer's filter matches subj (interest retention). */
int jsi_consumers_interested(js_stream *s, const char *subj, size_t slen);
/* The msgstore's removal observer (see jsi_ms_set_observer). */
void jsi_consumers_on_remove(void *ctx, uint64_t lo, uint64_t hi,
                             const char *subj, size_t slen);
/* Store closing: flush every consumer's state, drop the list. s->mu not
 * held. Returns the first error. */
int jsi_consumers_close(js_stream *s);
/* Stream deleted: mark consumers gone, wake waiters. s->mu not held. */
void jsi_consumers_kill(js_stream *s);
/* Apply timers for every consumer of the stream: redeliveries due, inactive
 * ephemerals. Returns the earliest next deadline (INT64_MAX if none). */
int64_t jsi_consumers_tick(js_stream *s, int64_t now);

/* ---- internal, between consumer*.c files ---------------------------------- */

void jsi_consumer_ref(js_consumer *c);
void jsi_consumer_unref(js_consumer *c);
/* Check a handle and take its stream's lock: 0, or an error, lock free. */
int jsi_consumer_enter(js_consumer *c);
/* js_consumer_subscribe(), and with mark set cb is called once with a
 * NULL message the first time a dispatch round finds nothing to deliver
 * (a KV watcher's end of initial values when it has run out of them). */
int jsi_consumer_subscribe(js_consumer *c, js_msg_handler cb, void *ctx,
                           int mark, js_sub **out);
/* Recompute the ack floor from the pending set. */
void jsi_consumer_floor(js_consumer *c);
/* How long to wait for an ack after the count-th delivery (backoff). */
int64_t jsi_consumer_ack_wait(const js_consumer *c, uint64_t count);
/* Exact num_pending (recounting if flagged). */
uint64_t jsi_consumer_pending(js_consumer *c);
/* Queue a done sequence for the state file. */
int jsi_consumer_log_done(js_consumer *c, uint64_t sseq);
/* Write queued state records; sync if asked. Called with s->mu held; may
 * release it while writing. */
int jsi_consumer_log_flush(js_consumer *c, int sync);

/* A state log is rewritten as one snapshot once it passes
 * max(this, 4 x the last snapshot): 64 KiB. A variable so the power-cut
 * tests can reach the rewrite in a few acks. */
extern uint64_t jsi_consumer_log_min_rewrite;
/* Next message to deliver now into *out (a js_msg carrying its delivery),
 * or JS_ETIMEOUT with *wake set to when something may become due. */
int jsi_consumer_take(js_consumer *c, int64_t now, int64_t *wake,
                      size_t max_bytes, js_msg **out);
/* 1 if the stream message sseq may be removed under interest retention. */
int jsi_consumers_all_done(js_stream *s, uint64_t sseq, const char *subj,
                           size_t slen);
/* At open, interest retention: drop what only consumers gone with the
 * last close (ephemerals) still held. Reads the messages above the lowest
 * ack floor of the durable consumers; with none, removes everything. */
int jsi_consumers_reopen_interest(js_stream *s);
/* Remove messages nobody is interested in any more, from sseq up
 * (interest retention, after a consumer is deleted or refiltered). */
int jsi_consumers_cleanup_interest(js_stream *s, uint64_t from);

/* Queue an event about this consumer. */
void jsi_consumer_event(js_consumer *c, int kind, uint64_t sseq,
                        uint64_t dseq, uint64_t deliveries,
                        const char *reason, int64_t ack_time);
/* Wake js_dispatch() waiters: push work may be due (dispatch.c). */
void jsi_dispatch_wake(js_store *st);
/* Delete under s->mu (inactivity, or js_consumer_delete). */
int jsi_consumer_delete_locked(js_stream *s, js_consumer *c);

/* js_msg's delivery metadata (msg.c). */
int jsi_msg_from_rec(const jsi_rec *r, js_msg **out);
void jsi_msg_set_delivery(js_msg *m, js_consumer *c, uint64_t dseq,
                          uint64_t count, uint64_t pending);
js_consumer *jsi_msg_consumer(const js_msg *m, uint64_t *dseq);
/* 1 if m is a live message handle. */
int jsi_msg_valid(const js_msg *m);
size_t jsi_msg_size(const js_msg *m); /* subject + headers + data */

#endif
