/*
 * stream.h - streams: config rules, limits, discard, de-duplication,
 * expected-* headers, rollups, purges; the layer between the store's
 * catalogue and a stream's message store.
 */
#ifndef JSI_STREAM_H
#define JSI_STREAM_H

#include <pthread.h>

#include "jetstream.h"
#include "msgstore.h"

/* A stream config with every string owned by it. */
typedef struct jsi_scfg {
    js_stream_config c;     /* c.name, c.description, c.subjects owned */
    char **subjects;
} jsi_scfg;

/* Copy a caller's config (versioned prefix) into an owned, zeroed one. */
int jsi_scfg_import(const js_stream_config *in, jsi_scfg *out);
/* Apply NATS defaults and check every rule that needs no other stream. */
int jsi_scfg_normalize(jsi_scfg *c, int is_create);
/* NATS's update rules between an existing and a new normalised config. */
int jsi_scfg_check_update(const jsi_scfg *old, const jsi_scfg *nu);
/* 1 if two normalised configs are the same. */
int jsi_scfg_equal(const jsi_scfg *a, const jsi_scfg *b);
int jsi_scfg_copy(const jsi_scfg *in, jsi_scfg *out);
void jsi_scfg_free(jsi_scfg *c);
/* 1 if a subject of a collides with a subject of b; names them. */
int jsi_scfg_overlap(const jsi_scfg *a, const jsi_scfg *b, const char **sa,
                     const char **sb);

/* The catalogue's serialisation of a config (TLV, see catalog.c). */
struct jsi_buf;
int jsi_scfg_encode(const jsi_scfg *c, struct jsi_buf *b);
int jsi_scfg_decode(const uint8_t *p, size_t n, jsi_scfg *out);

#define JSI_STREAM_MAGIC 0x4a53544du /* "JSTM" */

/* Opening a stream's messages: how and where. */
typedef struct jsi_stream_env {
    js_vfs *vfs;
    const char *dir;
    uint32_t block_size;
    int sync;
    int64_t sync_interval;
    int64_t (*clock)(void *ctx);
    void *clock_ctx;
    struct jsi_evq *events;  /* the store's event queue */
} jsi_stream_env;

/* js_stream is the stream object itself, refcounted: the store's list
 * holds one reference, every handle given out one more. */
struct js_stream {
    uint32_t magic;
    int refs;                /* atomic */
    js_store *store;
    uint64_t id;
    char *name;              /* lives until js_close (acks borrow it) */
    int64_t created;
    pthread_mutex_t mu;      /* protects everything below */
    jsi_scfg cfg;
    jsi_ms *ms;
    int gone;                /* deleted or store closed */
    int closed;              /* store closed */
    jsi_stream_env env;
    /* de-duplication: Nats-Msg-Id -> seq (first) and ts (last) */
    struct jsi_sidx *dedupe;
    struct jsi_sidx_entry **dq; /* FIFO of entries by insertion time */
    size_t dq_head, dq_len, dq_cap;
    char *last_msgid;
    size_t last_msgid_len;
    /* consumers (consumer.c) */
    struct js_consumer **cons;
    size_t ncons, cons_cap;
    uint64_t cons_gen;       /* bumped whenever the list changes */
    uint64_t next_cid;       /* next durable consumer's file number */
    uint64_t visible;        /* consumers deliver up to here: messages whose
                                publish has returned (durable per policy) */
};

int jsi_stream_open(js_store *store, uint64_t id, int64_t created,
                    const jsi_scfg *cfg, const jsi_stream_env *env,
                    js_stream **out);
/* Flush, checkpoint and release the message store; the object lives on
 * while handles hold it. */
int jsi_stream_close(js_stream *s);
void jsi_stream_ref(js_stream *s);
void jsi_stream_unref(js_stream *s);
/* 1 if the literal subject is one of this stream's. */
int jsi_stream_takes(const js_stream *s, const char *subj, size_t slen);

/* Publish one message (stream lock taken inside), durable per the policy
 * when it returns. */
int jsi_stream_publish(js_stream *s, const char *subj, size_t slen,
                       const void *hdr, size_t hlen, const void *data,
                       size_t dlen, js_pub_ack *ack);
/* The same with s->mu held by the caller, a timestamp given, and no
 * commit: a batch publishes many, then commits once. */
int jsi_stream_publish_locked(js_stream *s, const char *subj, size_t slen,
                              const void *hdr, size_t hlen, const void *data,
                              size_t dlen, int64_t now, js_pub_ack *ack);
int jsi_stream_commit(js_stream *s, int force_sync);
/* js_flush(): sync the messages, then every consumer's state. */
int jsi_stream_flush(js_stream *s);
int jsi_stream_commit_locked(js_stream *s, int force_sync);
int64_t jsi_stream_now(js_stream *s);
/* Check a handle and take s->mu: 0, or an error with the lock free. */
int jsi_stream_enter(js_stream *s);
/* The effective sync policy (the stream's, else the store's). */
int jsi_stream_sync(const js_stream *s);
struct jsi_evq *jsi_stream_events(js_stream *s);
/* Visit up to max (<= INT_MAX) subjects after after[0..after_len) (NULL:
 * from the first) that match filter, in byte order, each with its latest
 * sequence, under the stream lock (fn must not call the library). Returns
 * how many were visited (fewer than max: the end), fn's non-zero return,
 * or an error (JS_ESTREAM_NOT_FOUND once the stream is deleted). */
typedef int (*jsi_subject_visit)(const char *subj, size_t len, uint64_t last,
                                 void *ctx);
int jsi_stream_subjects(js_stream *s, const char *filter, const char *after,
                        size_t after_len, size_t max, jsi_subject_visit fn,
                        void *ctx);
/* Apply a new config (already validated against the store). */
int jsi_stream_update(js_stream *s, const jsi_scfg *nu);

#endif
