/*
 * powercut.h - the workloads of the power-cut and I/O-fault batteries and
 * the model that says what must survive them.
 *
 * A workload drives a store through the public API, sync ALWAYS, and tells
 * the model what each call returned: a call that returned 0 is ACKED (it
 * must survive anything), one that failed is MAYBE (it may or may not have
 * happened). Verification reopens the store on plain posix and checks:
 *   - every ACKED message is there and intact, unless an ACKED or MAYBE
 *     removal covers it; nothing ACKED-removed is there;
 *   - every message there is one the workload tried to publish, intact,
 *     at its acknowledged sequence if it had one, and ids rise with
 *     sequences (nothing reordered, nothing invented);
 *   - a new publish gets a sequence above every one acknowledged, so
 *     sequences are never reused;
 *   - a durable consumer never redelivers an ACKED ack and delivers every
 *     message present that nobody acked (none is skipped). A plain ack is
 *     ACKED only once a later ack_sync or js_flush returned 0 (as
 *     documented: until then a crash costs one redelivery);
 *   - a KV key's latest entry is its last ACKED operation or a MAYBE one
 *     after it, and no revision an ACKED purge removed is there.
 *
 * Messages: id 1..; subject "s.<id % 3>", payload "id=<id>" padded to
 * 100..400 bytes with a pattern derived from the id, so any damage shows.
 */
#ifndef POWERCUT_H
#define POWERCUT_H

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_rc.h"
#include "jetstream.h"

enum { PC_NONE, PC_MAYBE, PC_ACKED };

#define PC_MAXID 256
#define PC_MAXSEQ 1024
#define PC_KEYS 4
#define PC_KVOPS 64

enum { KV_PUT, KV_DEL, KV_PURGE };

typedef struct pc_kvop {
    int kind, st;
    int val;          /* PUT: the value's number */
    uint64_t rev;     /* ACKED: the revision */
} pc_kvop;

typedef struct pc_model {
    int stream_st;        /* stream "S" made */
    int max_msgs;         /* its max_msgs, 0: none */
    int pub[PC_MAXID + 1];
    uint64_t seq[PC_MAXID + 1];
    int rm[PC_MAXSEQ];    /* removal of a sequence */
    uint64_t max_seq;     /* highest sequence acknowledged in any way */
    uint64_t maybe_pubs;  /* failed publishes (each may have been stored) */
    int next_id;
    /* durable consumer "C" on S */
    int cons_st;
    int ack[PC_MAXSEQ];
    uint64_t plain[PC_MAXSEQ]; /* plain acks waiting for a flush point */
    size_t nplain;
    int workqueue;        /* an ack removes the message */
    /* stream "T": made, then deleted (catalogue changes) */
    int t_st, t_del;
    /* KV bucket "kv": keys k0..k3 */
    int kv_st;
    pc_kvop kv[PC_KEYS][PC_KVOPS];
    int nkv[PC_KEYS];
    int kv_val;
} pc_model;

typedef struct pc_run {
    js_store *st;
    const char *dir;
    const char *vfs;
    int64_t clock;
    pc_model m;
} pc_run;

static inline int64_t pc_clock(void *ctx) {
    return *(int64_t *)ctx;
}

/* Open r->dir on r->vfs with 4 KiB blocks and the fake clock. */
static inline int pc_open(pc_run *r) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.vfs = r->vfs;
    o.block_size = 4096;
    o.clock = pc_clock;
    o.clock_ctx = &r->clock;
    r->st = NULL;
    return js_open(r->dir, &o, &r->st);
}

/* Close and open again in the middle of a workload (a clean close writes
 * the index checkpoint and rewrites state). 0 or the first failure; on
 * failure r->st is NULL and the workload's later calls fail. */
static inline int pc_reopen(pc_run *r) {
    int rc = js_close(r->st);
    r->st = NULL;
    if (rc == 0)
        rc = pc_open(r);
    return rc;
}

/* ---- messages ---------------------------------------------------------- */

static inline size_t pc_payload(int id, char *buf) {
    size_t n = 100 + ((size_t)id * 97) % 300;
    int k = snprintf(buf, n, "id=%d;", id);
    for (size_t i = (size_t)k; i < n; i++)
        buf[i] = (char)('a' + (id * 7 + (int)i) % 26);
    return n;
}

static inline void pc_subject(int id, char *buf) {
    snprintf(buf, 16, "s.%d", id % 3);
}

static inline int pc_rc_ok(int rc) {
    return rc == 0;
}

static inline void pc_note_seq(pc_model *m, uint64_t seq) {
    if (seq > m->max_seq)
        m->max_seq = seq;
}

/* Limit removal after a publish at seq: acked, or (maybe) one that
 * failed but may have been stored at seq and pushed older ones out. */
static inline void pc_apply_limits(pc_model *m, uint64_t seq, int st) {
    if (m->max_msgs <= 0 || seq <= (uint64_t)m->max_msgs)
        return;
    for (uint64_t q = 1; q <= seq - (uint64_t)m->max_msgs; q++)
        if (m->rm[q] != PC_ACKED)
            m->rm[q] = st;
}

/* A failed publish: stored or not, at most one past the highest seq. */
static inline void pc_pub_failed(pc_model *m) {
    m->maybe_pubs++;
    pc_apply_limits(m, m->max_seq + m->maybe_pubs, PC_MAYBE);
}

static inline int pc_pub(pc_run *r) {
    pc_model *m = &r->m;
    int id = ++m->next_id;
    ck_assert_int_le(id, PC_MAXID);
    char subj[16], data[512];
    pc_subject(id, subj);
    size_t n = pc_payload(id, data);
    js_pub_ack a = JS_PUB_ACK_INIT;
    int rc = js_publish(r->st, subj, NULL, 0, data, n, &a);
    m->pub[id] = rc == 0 ? PC_ACKED : PC_MAYBE;
    if (rc == 0) {
        ck_assert_uint_lt(a.seq, PC_MAXSEQ);
        m->seq[id] = a.seq;
        pc_note_seq(m, a.seq);
        pc_apply_limits(m, a.seq, PC_ACKED);
    } else {
        pc_pub_failed(m);
    }
    return rc;
}

static inline int pc_pub_batch(pc_run *r, size_t n) {
    pc_model *m = &r->m;
    js_pub_msg msgs[16];
    js_pub_ack acks[16];
    char subj[16][16], data[16][512];
    int first = m->next_id + 1;
    ck_assert_uint_le(n, 16);
    for (size_t i = 0; i < n; i++) {
        int id = ++m->next_id;
        pc_subject(id, subj[i]);
        msgs[i].subject = subj[i];
        msgs[i].hdrs = NULL;
        msgs[i].hdr_len = 0;
        msgs[i].data = data[i];
        msgs[i].len = pc_payload(id, data[i]);
        acks[i] = (js_pub_ack)JS_PUB_ACK_INIT;
    }
    size_t done = 0;
    int rc = js_publish_batch(r->st, msgs, n, acks, &done);
    /* "done" are stored and durable even when the call fails. */
    for (size_t i = 0; i < n; i++) {
        int id = first + (int)i;
        if (i < done) {
            m->pub[id] = PC_ACKED;
            m->seq[id] = acks[i].seq;
            pc_note_seq(m, acks[i].seq);
            pc_apply_limits(m, acks[i].seq, PC_ACKED);
        } else {
            m->pub[id] = PC_MAYBE;
            pc_pub_failed(m);
        }
    }
    return rc;
}

/* ---- stream set-up and removals ---------------------------------------- */

static inline int pc_stream(pc_run *r, int retention, int max_msgs) {
    static const char *subjects[] = {"s.>"};
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "S";
    c.subjects = subjects;
    c.num_subjects = 1;
    c.retention = retention;
    c.max_msgs = max_msgs;
    r->m.max_msgs = max_msgs;
    r->m.workqueue = retention == JS_RETENTION_WORKQUEUE;
    int rc = js_stream_add(r->st, &c, NULL);
    r->m.stream_st = rc == 0 ? PC_ACKED : PC_MAYBE;
    return rc;
}

/* Catalogue changes: a second stream made, then deleted. */
static inline int pc_stream_t(pc_run *r, int del) {
    static const char *subjects[] = {"t.>"};
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "T";
    c.subjects = subjects;
    c.num_subjects = 1;
    int rc = del ? js_stream_delete(r->st, "T") : js_stream_add(r->st, &c,
                                                                  NULL);
    int *st = del ? &r->m.t_del : &r->m.t_st;
    *st = rc == 0 ? PC_ACKED : PC_MAYBE;
    return rc;
}

static inline js_stream *pc_lookup(pc_run *r) {
    js_stream *s = NULL;
    return js_stream_lookup(r->st, "S", &s) == 0 ? s : NULL;
}

/* The sequence of acked message id, or 0. */
static inline uint64_t pc_seq_of(pc_run *r, int id) {
    return r->m.pub[id] == PC_ACKED ? r->m.seq[id] : 0;
}

static inline void pc_mark_rm(pc_model *m, uint64_t seq, int rc) {
    if (m->rm[seq] != PC_ACKED)
        m->rm[seq] = rc == 0 ? PC_ACKED : PC_MAYBE;
    pc_note_seq(m, rc == 0 ? seq : 0);
}

static inline int pc_delete(pc_run *r, int id, int erase) {
    uint64_t seq = pc_seq_of(r, id);
    js_stream *s = pc_lookup(r);
    if (!seq || !s) {
        js_stream_release(s);
        return JS_EIO;
    }
    int rc = erase ? js_msg_erase(s, seq) : js_msg_delete(s, seq);
    js_stream_release(s);
    pc_mark_rm(&r->m, seq, rc);
    return rc;
}

/* Purge with a subject filter (NULL: all), below seq (0: any), keeping
 * the newest `keep`; the model learns which acked messages went. */
static inline int pc_purge(pc_run *r, const char *filter, uint64_t below,
                           uint64_t keep) {
    pc_model *m = &r->m;
    js_stream *s = pc_lookup(r);
    if (!s)
        return JS_EIO;
    js_purge_opts o = JS_PURGE_OPTS_INIT;
    o.filter = filter;
    o.seq = below;
    o.keep = keep;
    uint64_t purged = 0;
    int rc = js_stream_purge(s, &o, &purged);
    js_stream_release(s);
    /* Which sequences the purge covered: those matching, newest `keep`
     * spared (counted over what is still there). */
    uint64_t cover[PC_MAXID];
    size_t n = 0;
    for (int id = 1; id <= m->next_id; id++) {
        uint64_t q = m->seq[id];
        char subj[16];
        pc_subject(id, subj);
        if (m->pub[id] != PC_ACKED || m->rm[q] == PC_ACKED)
            continue;
        if (filter && strcmp(filter, subj) != 0 && strcmp(filter, "s.>"))
            continue;
        if (below && q >= below)
            continue;
        cover[n++] = q;
    }
    for (size_t i = 0; i + keep < n; i++)
        pc_mark_rm(m, cover[i], rc);
    return rc;
}

/* ---- the consumer ---------------------------------------------------- */

static inline int pc_consumer(pc_run *r) {
    js_stream *s = pc_lookup(r);
    if (!s)
        return JS_EIO;
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    c.durable_name = "C";
    c.ack_wait = 3600 * (int64_t)1000000000;
    c.max_ack_pending = -1;
    int rc = js_consumer_add(s, &c, NULL);
    js_stream_release(s);
    r->m.cons_st = rc == 0 ? PC_ACKED : PC_MAYBE;
    return rc;
}

/* ack_sync, js_flush or js_close made the queued plain acks durable. */
static inline void pc_plain_durable(pc_model *m) {
    for (size_t i = 0; i < m->nplain; i++) {
        m->ack[m->plain[i]] = PC_ACKED;
        if (m->workqueue)
            m->rm[m->plain[i]] = PC_ACKED;
    }
    m->nplain = 0;
}

/* Fetch up to n and ack each: how = 0 plain, 1 ack_sync, 2 nak, 3
 * alternate plain and sync. Returns the first failure. */
static inline int pc_fetch_ack(pc_run *r, size_t n, int how) {
    pc_model *m = &r->m;
    js_stream *s = pc_lookup(r);
    js_consumer *c = NULL;
    int rc = s ? js_consumer_lookup(s, "C", &c) : JS_EIO;
    js_stream_release(s);
    if (rc != 0)
        return rc;
    js_msg *msgs[32];
    size_t got = 0;
    ck_assert_uint_le(n, 32);
    /* A fetch writes the queued plain acks but does not sync them: they
     * survive a process crash, not a power cut (js_msg_ack(3)). */
    rc = js_consumer_fetch(c, msgs, n, NULL, &got);
    for (size_t i = 0; i < got; i++) {
        uint64_t seq = js_msg_seq(msgs[i]);
        int k = how == 3 ? (int)(i & 1) : how;
        int arc;
        if (k == 2) {
            arc = js_msg_nak(msgs[i], 0);
        } else if (k == 1) {
            arc = js_msg_ack_sync(msgs[i]);
            if (m->ack[seq] != PC_ACKED)
                m->ack[seq] = arc == 0 ? PC_ACKED : PC_MAYBE;
            if (arc == 0) {
                pc_plain_durable(m); /* ack_sync writes the queue too */
                if (m->workqueue)
                    m->rm[seq] = PC_ACKED;
            } else if (m->workqueue && m->rm[seq] != PC_ACKED) {
                m->rm[seq] = PC_MAYBE;
            }
        } else {
            arc = js_msg_ack(msgs[i]);
            if (m->ack[seq] != PC_ACKED)
                m->ack[seq] = PC_MAYBE;
            if (m->workqueue && m->rm[seq] != PC_ACKED)
                m->rm[seq] = PC_MAYBE;
            if (arc == 0)
                m->plain[m->nplain++] = seq;
        }
        if (rc == 0)
            rc = arc;
        js_msg_free(msgs[i]);
    }
    js_consumer_release(c);
    return rc;
}

static inline int pc_flush(pc_run *r) {
    int rc = js_flush(r->st);
    if (rc == 0)
        pc_plain_durable(&r->m);
    return rc;
}

/* ---- KV ------------------------------------------------------------------ */

static inline int pc_kv_bucket(pc_run *r, int history) {
    js_kv_config c = JS_KV_CONFIG_INIT;
    c.bucket = "kv";
    c.history = history;
    int rc = js_kv_create(r->st, &c, NULL);
    r->m.kv_st = rc == 0 ? PC_ACKED : PC_MAYBE;
    return rc;
}

static inline void pc_kv_value(int v, char *buf, size_t *len) {
    *len = (size_t)snprintf(buf, 64, "value-%d-%0*d", v, 8 + v % 20, v);
}

/* One KV operation on key k; cas: use update_key/create_key with the
 * last acked revision. */
static inline int pc_kv_op(pc_run *r, int k, int kind, int cas) {
    pc_model *m = &r->m;
    js_kv *kv = NULL;
    int rc = js_kv_open(r->st, "kv", &kv);
    ck_assert_int_lt(m->nkv[k], PC_KVOPS);
    pc_kvop *op = &m->kv[k][m->nkv[k]++];
    op->kind = kind;
    uint64_t last = 0;
    for (int i = m->nkv[k] - 2; i >= 0; i--)
        if (m->kv[k][i].st == PC_ACKED) {
            last = m->kv[k][i].rev;
            break;
        }
    char key[8], val[64];
    size_t len = 0;
    snprintf(key, sizeof key, "k%d", k);
    uint64_t rev = 0;
    if (rc == 0) {
        switch (kind) {
        case KV_PUT:
            op->val = ++m->kv_val;
            pc_kv_value(op->val, val, &len);
            rc = cas ? js_kv_update_key(kv, key, val, len, last, &rev)
                     : js_kv_put(kv, key, val, len, &rev);
            break;
        case KV_DEL:
            rc = js_kv_delete_key(kv, key, cas ? last : 0);
            break;
        default:
            rc = js_kv_purge_key(kv, key, cas ? last : 0);
            break;
        }
    }
    js_kv_release(kv);
    op->st = rc == 0 ? PC_ACKED : PC_MAYBE;
    if (rc == 0 && kind == KV_PUT)
        op->rev = rev;
    return rc;
}

#endif
