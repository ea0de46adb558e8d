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
 *     documented: until then a crash costs one redelivery); its config is
 *     its last ACKED update or a MAYBE one after it, never an older one;
 *     once its delete is ACKED it is gone for good;
 *   - a KV key's latest entry is its last ACKED operation or a MAYBE one
 *     after it, and no revision an ACKED purge removed is there;
 *   - limits: max_msgs, max_bytes (discard old: a message is ACKED-removed
 *     once the acked messages certainly there after it fill the stream;
 *     MAYBE when everything that may be there after it does; discard new:
 *     a refused publish stored nothing, an accepted one pushed nothing
 *     out), max_age on the fake clock (ACKED-removed when older than
 *     max_age at an acked publish, MAYBE once the clock passes its age);
 *     verification then opens at the time the stream was made, so what
 *     is there is what was stored, not what the reopen expires again;
 *   - js_kv_purge_deletes ACKED: no value under a key's marker comes back,
 *     and the key holds its marker alone or nothing, by the marker's age;
 *     a MAYBE one leaves the key as before or after it.
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

#include <unistd.h>

#include "check_rc.h"
#include "consumer.h"
#include "jetstream.h"
#include "testutil_fs.h"

enum { PC_NONE, PC_MAYBE, PC_ACKED };

#define PC_MAXID 256
#define PC_MAXSEQ 1024
#define PC_KEYS 4
#define PC_KVOPS 64
#define PC_CFGS 8

enum { KV_PUT, KV_DEL, KV_PURGE };

/* What js_kv_purge_deletes may have left of a key, a mask: its marker
 * alone, nothing; 0: not known. */
enum { PC_PD_MARKER = 1, PC_PD_EMPTY = 2 };

typedef struct pc_kvop {
    int kind, st;
    int val;          /* PUT: the value's number */
    uint64_t rev;     /* ACKED: the revision */
    int64_t ts;       /* the clock when it was made */
} pc_kvop;

typedef struct pc_model {
    int stream_st;        /* stream "S" made */
    int max_msgs;         /* its max_msgs, 0: none */
    int64_t max_bytes;    /* its max_bytes, 0: none */
    int64_t max_age;      /* its max_age (ns), 0: none */
    int discard_new;      /* the update to discard new: made, maybe */
    int pub[PC_MAXID + 1];
    uint64_t seq[PC_MAXID + 1];
    int64_t ts[PC_MAXID + 1]; /* the clock at each publish */
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
    int cfg_st[PC_CFGS];  /* update of C to version n (its description) */
    int ncfg;
    int cons_del;         /* C deleted */
    /* stream "T": made, then deleted (catalogue changes) */
    int t_st, t_del;
    /* KV bucket "kv": keys k0..k3 */
    int kv_st;
    pc_kvop kv[PC_KEYS][PC_KVOPS];
    int nkv[PC_KEYS];
    int kv_val;
    /* js_kv_purge_deletes acked: no PUT before op kv_cleared[k] may be in
     * k's history; and while k has had no op since (nkv[k] ==
     * kv_pd_at[k]), kv_pd[k] says what its history may be exactly. */
    int kv_cleared[PC_KEYS];
    int kv_pd_at[PC_KEYS];
    int kv_pd[PC_KEYS];
    /* verify opens the store at this time if set: max_age workloads look
     * at what was stored from before the first expiry, so a removal that
     * was not durable shows instead of being redone by the reopen */
    int64_t verify_clock;
} pc_model;

typedef struct pc_run {
    js_store *st;
    uint64_t faults_at_open; /* pc_faults() when st was opened */
    const char *dir;
    const char *vfs;
    int64_t clock;
    pc_model m;
} pc_run;

static inline int64_t pc_clock(void *ctx) {
    return *(int64_t *)ctx;
}

/* Faults injected so far, if the program injects any. */
static uint64_t (*pc_faults)(void);

/* Open r->dir on r->vfs with 4 KiB blocks and the fake clock. */
static inline int pc_open(pc_run *r) {
    r->faults_at_open = pc_faults ? pc_faults() : 0;
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

/* Marks the removal of seq as st unless it is ACKED already. */
static inline void pc_mark(pc_model *m, uint64_t seq, int st) {
    if (m->rm[seq] != PC_ACKED)
        m->rm[seq] = st;
}

/* Bytes message id counts for in max_bytes (jsi_ms_msg_size). */
static inline int64_t pc_size(int id) {
    char subj[16], data[512];
    pc_subject(id, subj);
    return 40 + (int64_t)strlen(subj) + (int64_t)pc_payload(id, data);
}

/* max_age at time now: acked messages older than now - max_age are gone
 * (st ACKED: a publish at now returned, and its commit wrote the
 * removals) or may be (st MAYBE: any call from now on may expire them). */
static inline void pc_apply_age(pc_model *m, int64_t now, int st) {
    if (m->max_age <= 0)
        return;
    for (int id = 1; id <= m->next_id; id++)
        if (m->pub[id] == PC_ACKED && m->ts[id] < now - m->max_age)
            pc_mark(m, m->seq[id], st);
}

/* Advance the fake clock: from now on any call may expire messages. */
static inline void pc_tick(pc_run *r, int64_t ns) {
    r->clock += ns;
    pc_apply_age(&r->m, r->clock, PC_MAYBE);
}

/* max_bytes, discard old, after the acked publish of id: the oldest go
 * while the stream holds more than max_bytes. The messages certainly
 * there (acked, never removed in any way) from q to id alone exceeding
 * it means q and everything before went. Only while discard old is
 * certain (no update to discard new tried). */
static inline void pc_apply_bytes(pc_model *m, int id) {
    if (m->max_bytes <= 0 || m->discard_new != PC_NONE)
        return;
    int64_t sum = 0;
    int gone = 0;
    for (int q = id; q >= 1; q--) {
        if (m->pub[q] != PC_ACKED)
            continue;
        if (!gone && m->rm[m->seq[q]] == PC_NONE)
            sum += pc_size(q);
        gone = gone || sum > m->max_bytes;
        if (gone)
            pc_mark(m, m->seq[q], PC_ACKED);
    }
}

/* Discard new, as the publish of id (size bytes) finds the stream: the
 * bytes certainly there (acked, never removed in any way; upper 0) or
 * perhaps there (published or tried, not certainly removed; upper 1). */
static inline int64_t pc_bytes_held(const pc_model *m, int id, int upper) {
    int64_t sum = 0;
    for (int q = 1; q < id; q++) {
        int in = upper ? m->pub[q] != PC_NONE &&
                             (m->pub[q] != PC_ACKED ||
                              m->rm[m->seq[q]] != PC_ACKED)
                       : m->pub[q] == PC_ACKED &&
                             m->rm[m->seq[q]] == PC_NONE;
        sum += in ? pc_size(q) : 0;
    }
    return sum;
}

/* Under discard new a publish is refused when it would take the stream
 * to max_bytes or past it, else stored with nothing pushed out. */
static inline void pc_check_discard_new(const pc_model *m, int id, int rc) {
    if (m->max_bytes <= 0 || m->discard_new != PC_ACKED)
        return;
    if (rc == 0)
        ck_assert_msg(pc_bytes_held(m, id, 0) + pc_size(id) < m->max_bytes,
                      "discard new: id %d stored past max_bytes", id);
    else if (rc == JS_EMAX_BYTES)
        ck_assert_msg(pc_bytes_held(m, id, 1) + pc_size(id) >= m->max_bytes,
                      "discard new: id %d refused, but it fits", id);
}

/* max_bytes: an acked message may have been pushed out when it and
 * everything published after it up to id that may be there (acked or
 * failed; a refused one is not) exceed max_bytes. After each publish
 * tried while discard old may hold (a failed one too may have stored its
 * message and pushed others out), and at verification up to the last
 * whatever the policy (an open enforces the limit on what it finds). */
static inline void pc_bytes_maybe(pc_model *m, int upto) {
    if (m->max_bytes <= 0)
        return;
    int64_t after = 0;
    for (int id = upto; id >= 1; id--) {
        if (m->pub[id] == PC_NONE)
            continue;
        after += pc_size(id);
        if (m->pub[id] == PC_ACKED && after > m->max_bytes)
            pc_mark(m, m->seq[id], PC_MAYBE);
    }
}

static inline int pc_pub(pc_run *r) {
    pc_model *m = &r->m;
    int id = ++m->next_id;
    ck_assert_int_le(id, PC_MAXID);
    char subj[16], data[512];
    pc_subject(id, subj);
    size_t n = pc_payload(id, data);
    js_pub_ack a = JS_PUB_ACK_INIT;
    m->ts[id] = r->clock;
    int rc = js_publish(r->st, subj, NULL, 0, data, n, &a);
    pc_check_discard_new(m, id, rc);
    m->pub[id] = rc == 0 ? PC_ACKED : PC_MAYBE;
    if (rc == 0) {
        ck_assert_uint_lt(a.seq, PC_MAXSEQ);
        m->seq[id] = a.seq;
        pc_note_seq(m, a.seq);
        pc_apply_limits(m, a.seq, PC_ACKED);
        pc_apply_age(m, r->clock, PC_ACKED);
        pc_apply_bytes(m, id);
    } else if (rc == JS_EMAX_BYTES) {
        /* Refused by discard new: nothing stored, nothing removed. */
        ck_assert_msg(m->discard_new != PC_NONE,
                      "publish refused (max_bytes) under discard old");
        m->pub[id] = PC_NONE;
    } else {
        pc_pub_failed(m);
    }
    if (m->discard_new != PC_ACKED)
        pc_bytes_maybe(m, id);
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
        m->ts[id] = r->clock;
        if (i < done) {
            m->pub[id] = PC_ACKED;
            m->seq[id] = acks[i].seq;
            pc_note_seq(m, acks[i].seq);
            pc_apply_limits(m, acks[i].seq, PC_ACKED);
            pc_apply_age(m, r->clock, PC_ACKED);
            pc_apply_bytes(m, id);
        } else {
            m->pub[id] = PC_MAYBE;
            pc_pub_failed(m);
        }
        if (m->discard_new != PC_ACKED)
            pc_bytes_maybe(m, id);
    }
    return rc;
}

/* ---- stream set-up and removals ---------------------------------------- */

/* Stream "S" on s.>, its limits as the model has them. */
static inline js_stream_config pc_stream_config(const pc_model *m,
                                                int retention) {
    static const char *subjects[] = {"s.>"};
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "S";
    c.subjects = subjects;
    c.num_subjects = 1;
    c.retention = retention;
    c.max_msgs = m->max_msgs;
    c.max_bytes = m->max_bytes;
    c.max_age = m->max_age;
    return c;
}

/* Makes S with the limits set in r->m (max_bytes, max_age) and these. */
static inline int pc_stream(pc_run *r, int retention, int max_msgs) {
    r->m.max_msgs = max_msgs;
    r->m.workqueue = retention == JS_RETENTION_WORKQUEUE;
    if (r->m.max_age > 0)
        r->m.verify_clock = r->clock;
    js_stream_config c = pc_stream_config(&r->m, retention);
    int rc = js_stream_add(r->st, &c, NULL);
    r->m.stream_st = rc == 0 ? PC_ACKED : PC_MAYBE;
    return rc;
}

/* S (retention limits) changed to discard new, its limits unchanged. */
static inline int pc_discard_new(pc_run *r) {
    js_stream_config c = pc_stream_config(&r->m, JS_RETENTION_LIMITS);
    c.discard = JS_DISCARD_NEW;
    int rc = js_stream_update(r->st, &c);
    r->m.discard_new = rc == 0 ? PC_ACKED : PC_MAYBE;
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

/* Stream info: touches S (expires by age) and commits, acknowledges
 * nothing. */
static inline int pc_info(pc_run *r) {
    js_stream *s = pc_lookup(r);
    if (!s)
        return JS_EIO;
    struct js_stream_info *i = NULL;
    int rc = js_stream_info(s, &i);
    js_stream_info_free(i);
    js_stream_release(s);
    return rc;
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

/* Update C to the next version: its description says which. */
static inline int pc_consumer_update(pc_run *r) {
    pc_model *m = &r->m;
    char desc[16];
    js_stream *s = pc_lookup(r);
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    int v = ++m->ncfg;
    ck_assert_int_lt(v, PC_CFGS);
    snprintf(desc, sizeof desc, "v%d", v);
    c.durable_name = "C";
    c.description = desc;
    c.ack_wait = 3600 * (int64_t)1000000000;
    c.max_ack_pending = -1;
    int rc = s ? js_consumer_update(s, &c, NULL) : JS_EIO;
    js_stream_release(s);
    m->cfg_st[v] = rc == 0 ? PC_ACKED : PC_MAYBE;
    return rc;
}

static inline int pc_consumer_delete(pc_run *r) {
    js_stream *s = pc_lookup(r);
    int rc = s ? js_consumer_delete(s, "C") : JS_EIO;
    js_stream_release(s);
    r->m.cons_del = rc == 0 ? PC_ACKED : PC_MAYBE;
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
    op->ts = r->clock;
    uint64_t last = 0;
    for (int i = m->nkv[k] - 2; i >= 0; i--)
        if (m->kv[k][i].st == PC_ACKED) {
            last = m->kv[k][i].rev;
            break;
        }
    char key[16], val[64];
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

/* js_kv_purge_deletes(older_than): a key whose last op is an acked
 * marker loses everything under it, and the marker too when it is older
 * than older_than (0: 30 minutes; negative: any age). */
static inline int pc_kv_purge_deletes(pc_run *r, int64_t older_than) {
    pc_model *m = &r->m;
    js_kv *kv = NULL;
    uint64_t n = 0;
    int rc = js_kv_open(r->st, "kv", &kv);
    if (rc == 0)
        rc = js_kv_purge_deletes(kv, older_than, &n);
    js_kv_release(kv);
    int64_t age = older_than ? older_than : 30 * 60 * 1000000000LL;
    for (int k = 0; k < PC_KEYS; k++) {
        int last = m->nkv[k] - 1;
        if (last < 0 || m->kv[k][last].st != PC_ACKED ||
            m->kv[k][last].kind == KV_PUT)
            continue;
        int after = older_than < 0 || m->kv[k][last].ts < r->clock - age
                        ? PC_PD_EMPTY
                        : PC_PD_MARKER;
        if (rc == 0) {
            m->kv_cleared[k] = last;
            m->kv_pd_at[k] = m->nkv[k];
            m->kv_pd[k] = after;
        } else if (m->kv_pd_at[k] == m->nkv[k]) {
            m->kv_pd[k] |= after; /* before (if known) or after */
        }
    }
    return rc;
}

/* ---- verification: reopen and check the model ----------------------- */

/* The run in progress, printed when a check fails (with CK_FORK=no, so
 * one process runs every test). */
static char where[128];

#define VCHECK(cond, ...)                                                 \
    do {                                                                  \
        if (!(cond))                                                      \
            fprintf(stderr, "battery: failed in %s\n", where);           \
        ck_assert_msg(cond, __VA_ARGS__);                                 \
    } while (0)

/* Reopens on vfs, which the caller has made harmless: the batteries use
 * simfs with nothing armed, posix without syncs (a real fsync per reopen
 * would triple the run time). */
static inline js_store *open_plain(const char *dir, const char *vfs,
                            int64_t *clock) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.vfs = vfs;
    o.block_size = 4096;
    o.clock = pc_clock;
    o.clock_ctx = clock;
    js_store *st = NULL;
    int rc = js_open(dir, &o, &st);
    VCHECK(rc == 0, "reopen after the cut: %s (%s)", js_strerror(rc),
                  js_errmsg());
    return st;
}

/* The number after prefix in the first bytes of p (which is not a
 * string: no terminating NUL), or 0. */
static inline int pc_number(const void *p, size_t len, const char *fmt) {
    char buf[32];
    int v = 0;
    size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return sscanf(buf, fmt, &v) == 1 ? v : 0;
}

static inline int payload_id(const js_msg *msg) {
    size_t len = 0;
    const char *d = js_msg_data(msg, &len);
    int id = pc_number(d, len, "id=%d;");
    VCHECK(len > 3 && id > 0 &&
                      id <= PC_MAXID,
                  "seq %" PRIu64 ": a message nobody wrote",
                  js_msg_seq(msg));
    return id;
}

static inline void check_intact(const js_msg *msg, int id) {
    char subj[16], want[512];
    size_t len = 0, n = pc_payload(id, want);
    pc_subject(id, subj);
    const void *d = js_msg_data(msg, &len);
    VCHECK(len == n && memcmp(d, want, n) == 0 &&
                      strcmp(js_msg_subject(msg), subj) == 0,
                  "seq %" PRIu64 " (id %d) is damaged", js_msg_seq(msg), id);
}

/* Walks the stream; present[seq] = 1 for each message found. */
static inline void verify_stream(pc_run *r, js_stream *s, uint8_t *present) {
    pc_model *m = &r->m;
    int last_id = 0;
    uint64_t seq = 1;
    js_msg *msg = NULL;
    int rc;
    while ((rc = js_msg_get_next(s, NULL, seq, &msg)) == 0) {
        uint64_t q = js_msg_seq(msg);
        int id = payload_id(msg);
        VCHECK(m->pub[id] != PC_NONE, "id %d was never published",
                      id);
        check_intact(msg, id);
        VCHECK(m->pub[id] != PC_ACKED || m->seq[id] == q,
                      "id %d acked at %" PRIu64 ", found at %" PRIu64, id,
                      m->seq[id], q);
        VCHECK(q >= PC_MAXSEQ || m->rm[q] != PC_ACKED,
                      "seq %" PRIu64 " was removed and came back", q);
        VCHECK(id > last_id, "id %d after id %d", id, last_id);
        last_id = id;
        if (q < PC_MAXSEQ)
            present[q] = 1;
        js_msg_free(msg);
        seq = q + 1;
    }
    ck_assert_int_eq(rc, JS_EMSG_NOT_FOUND);
    for (int id = 1; id <= m->next_id; id++) {
        if (m->pub[id] != PC_ACKED || m->rm[m->seq[id]] != PC_NONE)
            continue;
        VCHECK(present[m->seq[id]], "acked id %d (seq %" PRIu64
                      ") was lost", id, m->seq[id]);
    }
}

static inline void verify_sequence_rises(pc_run *r, js_store *st,
                                         js_stream *s) {
    char data[512];
    size_t n = pc_payload(PC_MAXID, data);
    js_pub_ack a = JS_PUB_ACK_INIT;
    int rc = js_publish(st, "s.0", NULL, 0, data, n, &a);
    if (rc == JS_EMAX_BYTES && r->m.discard_new != PC_NONE) {
        /* Full under discard new: the next publish would get last + 1. */
        struct js_stream_info *i = NULL;
        CHECK_RC(js_stream_info(s, &i), 0);
        a.seq = i->state->last_seq + 1;
        js_stream_info_free(i);
    } else {
        CHECK_RC(rc, 0);
    }
    VCHECK(a.seq > r->m.max_seq,
                  "new publish got seq %" PRIu64 ", but %" PRIu64
                  " was acknowledged",
                  a.seq, r->m.max_seq);
}

/* C's config is its last ACKED version (0: as added) or a MAYBE later
 * one: an update cut short never takes it back past an acknowledged one. */
static inline void verify_consumer_config(pc_run *r, js_consumer *c) {
    pc_model *m = &r->m;
    struct js_consumer_info *ci = NULL;
    int last = 0, v = 0;
    CHECK_RC(js_consumer_info(c, &ci), 0);
    const char *d = ci->config->description;
    if (d)
        VCHECK(sscanf(d, "v%d", &v) == 1 && v > 0 && v <= m->ncfg,
               "consumer C: description %s", d);
    js_consumer_info_free(ci);
    for (int i = 1; i <= m->ncfg; i++)
        if (m->cfg_st[i] == PC_ACKED)
            last = i;
    VCHECK(v == last || (v > last && m->cfg_st[v] == PC_MAYBE),
           "consumer C has config version %d, the last acknowledged is %d",
           v, last);
}

static inline void verify_consumer(pc_run *r, js_stream *s, const uint8_t *present) {
    pc_model *m = &r->m;
    js_consumer *c = NULL;
    int rc = js_consumer_lookup(s, "C", &c);
    if (m->cons_del == PC_ACKED) {
        VCHECK(rc == JS_ECONSUMER_NOT_FOUND, "deleted consumer C is back");
        js_consumer_release(c);
        return;
    }
    if ((m->cons_st != PC_ACKED || m->cons_del == PC_MAYBE) &&
        rc == JS_ECONSUMER_NOT_FOUND)
        return;
    VCHECK(rc == 0, "consumer: %s", js_strerror(rc));
    verify_consumer_config(r, c);
    uint8_t got[PC_MAXSEQ] = {0};
    for (;;) {
        js_msg *msgs[32];
        size_t n = 0;
        rc = js_consumer_fetch(c, msgs, 32, NULL, &n);
        VCHECK(rc == 0 || rc == JS_ETIMEOUT, "fetch: %s",
                      js_strerror(rc));
        for (size_t i = 0; i < n; i++) {
            uint64_t q = js_msg_seq(msgs[i]);
            VCHECK(m->ack[q] != PC_ACKED,
                          "seq %" PRIu64 " redelivered after a durable ack",
                          q);
            got[q] = 1;
            CHECK_RC(js_msg_ack(msgs[i]), 0);
            js_msg_free(msgs[i]);
        }
        if (n == 0)
            break;
    }
    for (uint64_t q = 1; q < PC_MAXSEQ; q++)
        VCHECK(!present[q] || m->ack[q] != PC_NONE || got[q],
                      "seq %" PRIu64 " present, unacked, never delivered",
                      q);
    js_consumer_release(c);
}

/* The latest entry of key k is the last acked op or a MAYBE one after it;
 * no value an acked purge removed is in its history. */
static inline void verify_key(pc_run *r, js_kv *kv, int k) {
    pc_model *m = &r->m;
    char key[16];
    snprintf(key, sizeof key, "k%d", k);
    int last = -1, purge = m->kv_cleared[k];
    for (int i = 0; i < m->nkv[k]; i++)
        if (m->kv[k][i].st == PC_ACKED) {
            last = i;
            if (m->kv[k][i].kind == KV_PURGE && i > purge)
                purge = i;
        }
    struct js_kv_entry *e = NULL;
    int rc = js_kv_get(kv, key, 0, &e);
    VCHECK(rc == 0 || rc == JS_EKEY_NOT_FOUND, "get %s: %s", key,
                  js_strerror(rc));
    int ok = 0;
    for (int i = last < 0 ? 0 : last; i < m->nkv[k] && !ok; i++) {
        const pc_kvop *op = &m->kv[k][i];
        if (i != last && op->st != PC_MAYBE)
            continue;
        if (op->kind != KV_PUT) {
            ok = rc == JS_EKEY_NOT_FOUND;
            continue;
        }
        char val[64];
        size_t len;
        pc_kv_value(op->val, val, &len);
        ok = rc == 0 && e->len == len && memcmp(e->value, val, len) == 0 &&
             (op->st != PC_ACKED || e->revision == op->rev);
    }
    if (last < 0 && rc == JS_EKEY_NOT_FOUND)
        ok = 1;
    VCHECK(ok, "key %s: latest entry is not the last acked op (%d)",
                  key, last);
    js_kv_entry_free(e);
    struct js_kv_entry **h = NULL;
    size_t n = 0;
    rc = js_kv_history(kv, key, &h, &n);
    VCHECK(rc == 0 || rc == JS_EKEY_NOT_FOUND, "history: %s",
                  js_strerror(rc));
    if (m->kv_pd[k] && m->nkv[k] == m->kv_pd_at[k]) {
        int empty = rc == JS_EKEY_NOT_FOUND,
            marker = rc == 0 && n == 1 && h[0]->op != JS_KV_OP_PUT;
        VCHECK((empty && (m->kv_pd[k] & PC_PD_EMPTY)) ||
                   (marker && (m->kv_pd[k] & PC_PD_MARKER)),
               "key %s: after purge_deletes %zu entries, expected %s", key,
               n, m->kv_pd[k] == PC_PD_EMPTY    ? "none"
                  : m->kv_pd[k] == PC_PD_MARKER ? "its marker alone"
                                                : "none or its marker");
    }
    for (size_t j = 0; j < n; j++) {
        if (h[j]->op != JS_KV_OP_PUT)
            continue;
        int v = pc_number(h[j]->value, h[j]->len, "value-%d-");
        ck_assert_int_gt(v, 0);
        for (int i = 0; i < purge; i++)
            VCHECK(m->kv[k][i].kind != KV_PUT || m->kv[k][i].val != v,
                          "key %s: value %d came back after a purge", key,
                          v);
    }
    js_kv_history_free(h, n);
}

static inline void verify_kv(pc_run *r, js_store *st) {
    js_kv *kv = NULL;
    int rc = js_kv_open(st, "kv", &kv);
    if (r->m.kv_st != PC_ACKED && rc == JS_ESTREAM_NOT_FOUND)
        return;
    VCHECK(rc == 0, "kv open: %s", js_strerror(rc));
    for (int k = 0; k < PC_KEYS; k++)
        verify_key(r, kv, k);
    js_kv_release(kv);
}

static inline void verify_catalogue(pc_run *r, js_store *st) {
    js_stream *t = NULL;
    int rc = js_stream_lookup(st, "T", &t);
    js_stream_release(t);
    if (r->m.t_del == PC_ACKED)
        VCHECK(rc == JS_ESTREAM_NOT_FOUND, "deleted T is back");
    else if (r->m.t_st == PC_ACKED && r->m.t_del == PC_NONE)
        VCHECK(rc == 0, "stream T lost: %s", js_strerror(rc));
}

static inline void verify(pc_run *r) {
    int64_t clock = r->m.verify_clock ? r->m.verify_clock : r->clock;
    js_store *st = open_plain(r->dir, r->vfs, &clock);
    js_stream *s = NULL;
    int rc = js_stream_lookup(st, "S", &s);
    pc_bytes_maybe(&r->m, r->m.next_id);
    if (rc == 0) {
        uint8_t present[PC_MAXSEQ] = {0};
        verify_stream(r, s, present);
        verify_consumer(r, s, present);
        verify_sequence_rises(r, st, s);
        js_stream_release(s);
    } else {
        VCHECK(r->m.stream_st != PC_ACKED, "stream S lost: %s",
                      js_strerror(rc));
    }
    verify_kv(r, st);
    verify_catalogue(r, st);
    CHECK_RC(js_close(st), 0);
}

/* ---- the canonical workloads ------------------------------------------- */

typedef void (*workload_fn)(pc_run *r);

static inline void w_publish(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0)
        return;
    for (int i = 0; i < 30; i++)
        pc_pub(r);
}

static inline void w_batch(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0)
        return;
    pc_pub_batch(r, 8);
    pc_pub_batch(r, 5);
    pc_pub_batch(r, 16);
}

static inline void w_delete(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0)
        return;
    for (int i = 0; i < 14; i++)
        pc_pub(r);
    pc_delete(r, 2, 0);
    pc_delete(r, 5, 0);
    pc_delete(r, 3, 1);
    pc_delete(r, 14, 1); /* the last: its sequence must not come back */
    pc_delete(r, 1, 0);  /* the first */
    for (int i = 0; i < 3; i++)
        pc_pub(r);
    pc_delete(r, 16, 0);
}

static inline void w_purge(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0)
        return;
    for (int i = 0; i < 18; i++)
        pc_pub(r);
    pc_purge(r, "s.1", 0, 0);
    pc_purge(r, NULL, 8, 0);
    pc_purge(r, NULL, 0, 3);
    for (int i = 0; i < 3; i++)
        pc_pub(r);
    pc_purge(r, NULL, 0, 0);
    pc_pub(r);
}

static inline void w_limits(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 5) != 0)
        return;
    for (int i = 0; i < 30; i++)
        pc_pub(r);
}

static inline void w_acks(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0 || pc_consumer(r) != 0)
        return;
    for (int i = 0; i < 16; i++)
        pc_pub(r);
    pc_fetch_ack(r, 4, 1); /* ack_sync */
    pc_fetch_ack(r, 4, 0); /* plain, made durable by the next fetch */
    pc_fetch_ack(r, 4, 2); /* nak: redelivered next */
    pc_fetch_ack(r, 8, 3); /* alternate */
    pc_flush(r);
    pc_fetch_ack(r, 4, 0);
}

static inline void w_workqueue(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_WORKQUEUE, 0) != 0 ||
        pc_consumer(r) != 0)
        return;
    for (int i = 0; i < 14; i++)
        pc_pub(r);
    pc_fetch_ack(r, 5, 1);
    pc_fetch_ack(r, 5, 0);
    pc_flush(r);
    pc_fetch_ack(r, 4, 3);
}

/* The state log is rewritten as a snapshot every few acks. */
static inline void w_consumer_state(pc_run *r) {
    uint64_t saved = jsi_consumer_log_min_rewrite;
    jsi_consumer_log_min_rewrite = 256;
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) == 0 && pc_consumer(r) == 0) {
        for (int i = 0; i < 24; i++)
            pc_pub(r);
        for (int i = 0; i < 6; i++)
            pc_fetch_ack(r, 4, i % 2 ? 1 : 3);
    }
    jsi_consumer_log_min_rewrite = saved;
}

static inline void w_catalogue(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0)
        return;
    pc_pub(r);
    if (pc_stream_t(r, 0) != 0 || pc_consumer(r) != 0 ||
        pc_kv_bucket(r, 1) != 0)
        return;
    pc_pub(r);
    pc_stream_t(r, 1);
    pc_pub(r);
}

static inline void w_kv(pc_run *r) {
    if (pc_kv_bucket(r, 3) != 0)
        return;
    for (int k = 0; k < PC_KEYS; k++)
        pc_kv_op(r, k, KV_PUT, 0);
    pc_kv_op(r, 0, KV_PUT, 1);
    pc_kv_op(r, 1, KV_DEL, 0);
    pc_kv_op(r, 2, KV_PURGE, 0);
    pc_kv_op(r, 0, KV_PUT, 0);
    pc_kv_op(r, 0, KV_PUT, 1);
    pc_kv_op(r, 3, KV_DEL, 1);
    pc_kv_op(r, 0, KV_PURGE, 1);
    pc_kv_op(r, 1, KV_PUT, 1);
    pc_kv_op(r, 2, KV_PUT, 0);
}

/* C's config changed, read back at a reopen, changed again, then C
 * deleted. */
static inline void w_consumer_config(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0 || pc_consumer(r) != 0)
        return;
    for (int i = 0; i < 8; i++)
        pc_pub(r);
    pc_fetch_ack(r, 3, 1);
    pc_consumer_update(r);
    pc_consumer_update(r);
    pc_fetch_ack(r, 2, 1);
    if (pc_reopen(r) != 0)
        return;
    pc_consumer_update(r);
    pc_fetch_ack(r, 2, 1);
    pc_consumer_delete(r);
    pc_pub(r);
}

/* Reopens in the middle: index checkpoints written at close, then
 * removals and publishes past them. */
static inline void w_reopen(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0 || pc_consumer(r) != 0)
        return;
    for (int i = 0; i < 12; i++)
        pc_pub(r);
    pc_fetch_ack(r, 3, 0);
    if (pc_reopen(r) != 0)
        return;
    pc_delete(r, 4, 0);
    pc_delete(r, 12, 0);
    pc_fetch_ack(r, 3, 1);
    pc_pub(r);
    if (pc_reopen(r) != 0)
        return;
    pc_purge(r, NULL, 6, 0);
    pc_pub(r);
}

#define PC_SEC 1000000000LL

/* Messages expire while others are published: one or two at each publish
 * (committed with it), at a stream info (committed, acknowledging
 * nothing), at an open, then all at once (their blocks go) before the
 * stream goes on. max_age is not a whole number of seconds, so no message
 * is ever exactly at the limit. */
static inline void w_max_age(pc_run *r) {
    r->m.max_age = 10 * PC_SEC + PC_SEC / 2;
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0)
        return;
    for (int i = 0; i < 12; i++) {
        pc_tick(r, PC_SEC);
        pc_pub(r);
    }
    for (int i = 0; i < 6; i++) {
        pc_tick(r, 2 * PC_SEC);
        pc_pub(r);
    }
    pc_tick(r, 3 * PC_SEC);
    pc_info(r);
    pc_tick(r, PC_SEC);
    if (pc_reopen(r) != 0)
        return;
    pc_pub(r);
    pc_tick(r, 60 * PC_SEC);
    pc_pub(r);
    for (int i = 0; i < 3; i++) {
        pc_tick(r, PC_SEC);
        pc_pub(r);
    }
}

/* max_bytes: publishes (single and a batch) push the oldest out; then
 * discard new: publishes that do not fit are refused and change nothing,
 * a delete makes room for more. */
static inline void w_max_bytes(pc_run *r) {
    r->m.max_bytes = 2000;
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0)
        return;
    for (int i = 0; i < 10; i++)
        pc_pub(r);
    pc_pub_batch(r, 4);
    for (int i = 0; i < 3; i++)
        pc_pub(r);
    if (pc_discard_new(r) != 0)
        return;
    for (int i = 0; i < 6; i++)
        pc_pub(r);
    pc_delete(r, 17, 0);
    for (int i = 0; i < 3; i++)
        pc_pub(r);
}

/* Deletes and purges, then js_kv_purge_deletes: first every marker (k0's,
 * with its key's history), then the same again, which finds nothing left
 * to do (a retry); k0 used again; then with an age: the old marker (k2's)
 * goes with its history, the new ones (k1, k3) stay alone. */
static inline void w_kv_purge_deletes(pc_run *r) {
    if (pc_kv_bucket(r, 5) != 0)
        return;
    for (int k = 0; k < PC_KEYS; k++)
        pc_kv_op(r, k, KV_PUT, 0);
    pc_kv_op(r, 0, KV_PUT, 0);
    pc_kv_op(r, 1, KV_PUT, 1);
    pc_kv_op(r, 2, KV_PUT, 0);
    pc_kv_op(r, 0, KV_DEL, 0);
    pc_kv_purge_deletes(r, -1);
    pc_kv_purge_deletes(r, -1);
    pc_kv_op(r, 0, KV_PUT, 0);
    pc_kv_op(r, 2, KV_PURGE, 0);
    pc_tick(r, 120 * PC_SEC);
    pc_kv_op(r, 1, KV_DEL, 1);
    pc_kv_op(r, 3, KV_PURGE, 0);
    pc_tick(r, 10 * PC_SEC);
    pc_kv_purge_deletes(r, 60 * PC_SEC);
}

/* PC_EVERY=n (for the slow valgrind run) keeps every n-th cut or fault
 * point of the enumerations, and the last; unset or 1: all of them. */
static inline int pc_skip(uint64_t k, uint64_t last) {
    const char *e = getenv("PC_EVERY");
    uint64_t every = e ? strtoull(e, NULL, 10) : 1;
    return every > 1 && k % every != 0 && k != last;
}

/* Every workload, for X-macro lists: X(name) for each w_<name>. */
#define PC_WORKLOADS(X)                                                   \
    X(publish) X(batch) X(delete) X(purge) X(limits) X(acks) X(workqueue) \
    X(consumer_state) X(catalogue) X(kv) X(reopen) X(max_age)            \
    X(max_bytes) X(kv_purge_deletes) X(consumer_config)

/* A RAM-backed scratch directory when there is one: the batteries make
 * and remove thousands of small files, and nothing in them needs a real
 * disk (simfs never syncs). NULL if none can be made. */
static inline char *pc_scratch_dir(const char *name) {
    char *dir = tu_path("%s/%s.XXXXXX",
                        access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
                        name);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        free(dir);
        return NULL;
    }
    return dir;
}

#endif
