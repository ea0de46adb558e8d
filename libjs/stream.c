/*
 * stream.c - one stream: publish rules (expected-* headers, de-duplication,
 * rollups, discard policies), limits, purges, deletes and reads, over the
 * stream's message store. Every function here runs with s->mu held unless
 * it takes it itself.
 */
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

#include "consumer.h"
#include "headers.h"
#include "stream.h"
#include "subject.h"
#include "util.h"

#define HDR_MSG_ID "Nats-Msg-Id"
#define HDR_EXP_STREAM "Nats-Expected-Stream"
#define HDR_EXP_LAST_SEQ "Nats-Expected-Last-Sequence"
#define HDR_EXP_LAST_SUBJ_SEQ "Nats-Expected-Last-Subject-Sequence"
#define HDR_EXP_LAST_SUBJ_SEQ_SUBJ "Nats-Expected-Last-Subject-Sequence-Subject"
#define HDR_EXP_LAST_MSG_ID "Nats-Expected-Last-Msg-Id"
#define HDR_ROLLUP "Nats-Rollup"

enum { ROLLUP_NONE, ROLLUP_SUB, ROLLUP_ALL };

static int64_t now_ns(js_stream *s) {
    return s->env.clock(s->env.clock_ctx);
}

static int eff_sync(const js_stream *s) {
    return s->cfg.c.sync ? s->cfg.c.sync : s->env.sync;
}

/* ---- references --------------------------------------------------------- */

void jsi_stream_ref(js_stream *s) {
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

void jsi_store_unref(js_store *st); /* store.c */

void jsi_stream_unref(js_stream *s) {
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    js_store *st = s->store;
    jsi_ms_free(s->ms);
    jsi_scfg_free(&s->cfg);
    jsi_sidx_free(s->dedupe);
    jsi_free(s->dq);
    jsi_free(s->last_msgid);
    jsi_free(s->cons);
    jsi_free((char *)s->env.dir);
    pthread_mutex_destroy(&s->mu);
    s->magic = 0;
    /* s->name is kept by the store until js_close (acks borrow it). */
    jsi_free(s);
    jsi_store_unref(st);
}

int jsi_stream_takes(const js_stream *s, const char *subj, size_t slen) {
    for (size_t i = 0; i < s->cfg.c.num_subjects; i++) {
        const char *f = s->cfg.subjects[i];
        if (jsi_subject_match(f, strlen(f), subj, slen))
            return 1;
    }
    return 0;
}

/* ---- de-duplication ----------------------------------------------------- */

static void dedupe_expire(js_stream *s, int64_t now) {
    int64_t cutoff = now - s->cfg.c.duplicate_window;
    while (s->dq_len) {
        jsi_sidx_entry *e = s->dq[s->dq_head];
        if ((int64_t)e->last >= cutoff)
            break;
        s->dq_head = (s->dq_head + 1) % s->dq_cap;
        s->dq_len--;
        jsi_sidx_remove(s->dedupe, e);
    }
}

static int dq_push(js_stream *s, jsi_sidx_entry *e) {
    if (s->dq_len == s->dq_cap) {
        size_t ncap = s->dq_cap ? s->dq_cap * 2 : 64;
        jsi_sidx_entry **n = jsi_malloc(ncap * sizeof *n);
        if (!n)
            return JS_ENOMEM;
        for (size_t i = 0; i < s->dq_len; i++)
            n[i] = s->dq[(s->dq_head + i) % s->dq_cap];
        jsi_free(s->dq);
        s->dq = n;
        s->dq_cap = ncap;
        s->dq_head = 0;
    }
    s->dq[(s->dq_head + s->dq_len) % s->dq_cap] = e;
    s->dq_len++;
    return 0;
}

static int dedupe_add(js_stream *s, const char *id, size_t n, uint64_t seq,
                      int64_t ts) {
    int created = 0;
    jsi_sidx_entry *e = jsi_sidx_upsert(s->dedupe, id, n, &created);
    if (!e)
        return JS_ENOMEM;
    e->first = seq;
    e->last = (uint64_t)ts;
    if (created && dq_push(s, e) != 0) {
        jsi_sidx_remove(s->dedupe, e);
        return JS_ENOMEM;
    }
    return 0;
}

static int set_last_msgid(js_stream *s, const char *id, size_t n) {
    if (n > s->last_msgid_len || !s->last_msgid) {
        char *p = jsi_realloc(s->last_msgid, n + 1);
        if (!p)
            return JS_ENOMEM;
        s->last_msgid = p;
    }
    if (n)
        memcpy(s->last_msgid, id, n);
    s->last_msgid[n] = 0;
    s->last_msgid_len = n;
    return 0;
}

/* After an open: ids of messages still inside the window, and the last
 * message's id for Nats-Expected-Last-Msg-Id. */
static int dedupe_rebuild(js_stream *s) {
    int64_t now = now_ns(s);
    uint64_t seq = jsi_ms_first_seq(s->ms);
    jsi_rec r;
    /* Only blocks counted as holding ids are read. */
    if (jsi_ms_next_with_ids(s->ms, seq) <= jsi_ms_last_seq(s->ms))
        seq = jsi_ms_seq_from_time(s->ms, now - s->cfg.c.duplicate_window);
    else
        seq = jsi_ms_last_seq(s->ms) + 1;
    const char *v;
    size_t vl;
    int rc = set_last_msgid(s, "", 0);
    while (rc == 0 &&
           (seq = jsi_ms_next_with_ids(s->ms, seq)) <= jsi_ms_last_seq(s->ms) &&
           jsi_ms_next(s->ms, NULL, seq, &r) == 0) {
        seq = r.seq + 1;
        if (r.hlen && jsi_hdr_get(r.hdr, r.hlen, HDR_MSG_ID, &v, &vl) && vl)
            rc = dedupe_add(s, v, vl, r.seq, r.ts);
    }
    uint64_t last = jsi_ms_last_seq(s->ms);
    if (rc == 0 && jsi_ms_next_with_ids(s->ms, last) <= last &&
        jsi_ms_last(s->ms, NULL, &r) == 0 && r.hlen &&
        jsi_hdr_get(r.hdr, r.hlen, HDR_MSG_ID, &v, &vl))
        rc = set_last_msgid(s, v, vl);
    return rc ? JSI_ERR(rc, 0, "stream %s: duplicate window", s->name) : 0;
}

/* ---- limits ------------------------------------------------------------- */

/* The per-subject entry, or NULL. Its count is exact; first and last may
 * be stale: a caller fixes what it reads, since making `first` exact can
 * mean walking from the old first to the next message of the subject. */
static jsi_sidx_entry *subject_entry(js_stream *s, const char *subj,
                                     size_t slen) {
    return jsi_sidx_get(jsi_ms_sidx(s->ms), subj, slen);
}

static int expire_age(js_stream *s, int64_t now) {
    if (s->cfg.c.max_age <= 0)
        return 0;
    int64_t cutoff = now - s->cfg.c.max_age;
    while (jsi_ms_msgs(s->ms) && jsi_ms_first_ts(s->ms) < cutoff) {
        int rc = jsi_ms_remove_first(s->ms);
        if (rc)
            return rc;
    }
    return 0;
}

static int trim_subject(js_stream *s, jsi_sidx_entry *e) {
    int64_t max = s->cfg.c.max_msgs_per_subject;
    while (max > 0 && e && e->count > (uint64_t)max) {
        int rc = jsi_ms_subject_fix(s->ms, e);
        if (rc)
            return rc;
        uint64_t victim = e->first, count = e->count;
        rc = jsi_ms_remove(s->ms, victim, 0);
        if (rc)
            return rc;
        if (count == 1)
            break; /* the entry is gone */
    }
    return 0;
}

/* Discard-old limits after a store: oldest messages go first. */
static int enforce_limits(js_stream *s, jsi_sidx_entry *e) {
    const js_stream_config *c = &s->cfg.c;
    int rc = trim_subject(s, e);
    while (rc == 0 && c->max_msgs > 0 &&
           jsi_ms_msgs(s->ms) > (uint64_t)c->max_msgs)
        rc = jsi_ms_remove_first(s->ms);
    while (rc == 0 && c->max_bytes > 0 &&
           jsi_ms_bytes(s->ms) > (uint64_t)c->max_bytes)
        rc = jsi_ms_remove_first(s->ms);
    return rc;
}

/* Every limit over every subject: after an open or a config update. */
static int enforce_all(js_stream *s) {
    int rc = expire_age(s, now_ns(s));
    if (rc == 0 && s->cfg.c.max_msgs_per_subject > 0) {
        jsi_sidx *x = jsi_ms_sidx(s->ms);
        size_t pos = 0;
        jsi_sidx_entry *e;
        uint64_t max = (uint64_t)s->cfg.c.max_msgs_per_subject;
        /* Trimming may remove entries, so restart the walk after each. */
        while (rc == 0 && (e = jsi_sidx_next(x, &pos)) != NULL) {
            if (e->count <= max)
                continue;
            rc = trim_subject(s, e);
            pos = 0;
        }
    }
    return rc ? rc : enforce_limits(s, NULL);
}

/* Discard-new checks, as NATS's stores make them. */
static int check_discard_new(js_stream *s, const char *subj, size_t slen,
                             uint64_t size, int rollup) {
    const js_stream_config *c = &s->cfg.c;
    jsi_sidx_entry *e = NULL;
    int at_subject_limit = 0;
    if (c->max_msgs_per_subject > 0) {
        e = subject_entry(s, subj, slen);
        at_subject_limit = e && e->count >= (uint64_t)c->max_msgs_per_subject;
    }
    if (c->discard_new_per_subject && at_subject_limit && !rollup)
        return JSI_ERR(JS_EMAX_MSGS_PER_SUBJECT, 10077,
                       "max_msgs_per_subject: maximum messages per subject "
                       "exceeded");
    if (c->max_msgs > 0 && jsi_ms_msgs(s->ms) >= (uint64_t)c->max_msgs &&
        !at_subject_limit)
        return JSI_ERR(JS_EMAX_MSGS, 10077,
                       "max_msgs: maximum messages exceeded");
    if (c->max_bytes > 0 &&
        jsi_ms_bytes(s->ms) + size >= (uint64_t)c->max_bytes) {
        jsi_rec r;
        /* Full, unless dropping this subject's oldest makes the room. */
        if (!at_subject_limit || jsi_ms_load(s->ms, e->first, &r) != 0 ||
            jsi_ms_msg_size(r.slen, r.hlen, r.dlen) < size)
            return JSI_ERR(JS_EMAX_BYTES, 10077,
                           "max_bytes: maximum bytes exceeded");
    }
    return 0;
}

/* ---- publish ------------------------------------------------------------ */

/* The header checks of NATS's publish path, in its order. *rollup and the
 * msg id (if any) are returned for after the store. */
static int check_expected(js_stream *s, const char *subj, size_t slen,
                          const uint8_t *hdr, size_t hlen) {
    const char *v, *fs;
    size_t vl, fl;
    uint64_t want;
    if (jsi_hdr_get(hdr, hlen, HDR_EXP_STREAM, &v, &vl) &&
        (vl != strlen(s->name) || memcmp(v, s->name, vl) != 0))
        return JSI_ERR(JS_ESTREAM_MISMATCH, 10060,
                       "%s: expected stream does not match", HDR_EXP_STREAM);
    int has_fs = jsi_hdr_get(hdr, hlen, HDR_EXP_LAST_SUBJ_SEQ_SUBJ, &fs, &fl);
    if (jsi_hdr_get(hdr, hlen, HDR_EXP_LAST_SUBJ_SEQ, &v, &vl)) {
        if (jsi_parse_u64(v, vl, &want) != 0)
            return JSI_ERR(JS_EBAD_HEADER, 10003,
                           "%s: not a sequence number", HDR_EXP_LAST_SUBJ_SEQ);
        uint64_t have = 0;
        jsi_rec r;
        if (has_fs) {
            char *f = jsi_strndup(fs, fl);
            if (!f)
                return JSI_ERR(JS_ENOMEM, 0, "publish");
            if (!jsi_subject_valid(f, fl, 1)) {
                jsi_free(f);
                return JSI_ERR(JS_EBAD_HEADER, 10003, "%s: invalid subject",
                               HDR_EXP_LAST_SUBJ_SEQ_SUBJ);
            }
            if (jsi_ms_last(s->ms, f, &r) == 0)
                have = r.seq;
            jsi_free(f);
        } else {
            jsi_sidx_entry *e = subject_entry(s, subj, slen);
            if (e)
                jsi_ms_subject_fix_last(s->ms, e);
            have = e ? e->last : 0;
        }
        if (have != want)
            return JSI_ERR(JS_EWRONG_LAST_SEQ, 10071,
                           "%s: wrong last sequence: %" PRIu64,
                           HDR_EXP_LAST_SUBJ_SEQ, have);
    } else if (has_fs) {
        return JSI_ERR(JS_EBAD_HEADER, 10193,
                       "%s: missing sequence for expected last sequence per "
                       "subject", HDR_EXP_LAST_SUBJ_SEQ_SUBJ);
    }
    if (jsi_hdr_get(hdr, hlen, HDR_EXP_LAST_SEQ, &v, &vl)) {
        if (jsi_parse_u64(v, vl, &want) != 0)
            return JSI_ERR(JS_EBAD_HEADER, 10003, "%s: not a sequence number",
                           HDR_EXP_LAST_SEQ);
        if (want != jsi_ms_last_seq(s->ms))
            return JSI_ERR(JS_EWRONG_LAST_SEQ, 10071,
                           "%s: wrong last sequence: %" PRIu64,
                           HDR_EXP_LAST_SEQ, jsi_ms_last_seq(s->ms));
    }
    return 0;
}

static int check_rollup(js_stream *s, const uint8_t *hdr, size_t hlen,
                        int *rollup) {
    const char *v;
    size_t vl;
    *rollup = ROLLUP_NONE;
    if (!jsi_hdr_get(hdr, hlen, HDR_ROLLUP, &v, &vl))
        return 0;
    if (!s->cfg.c.allow_rollup_hdrs || s->cfg.c.deny_purge)
        return JSI_ERR(JS_EROLLUP, 10111, "%s: rollup not permitted%s",
                       HDR_ROLLUP, s->cfg.c.deny_purge
                                       ? " (deny_purge is set)"
                                       : " (allow_rollup_hdrs is not set)");
    if (vl == 3 && strncasecmp(v, "sub", 3) == 0)
        *rollup = ROLLUP_SUB;
    else if (vl == 3 && strncasecmp(v, "all", 3) == 0)
        *rollup = ROLLUP_ALL;
    else
        return JSI_ERR(JS_EROLLUP, 10111, "%s: rollup value invalid: \"%.*s\"",
                       HDR_ROLLUP, (int)JSI_MIN(vl, (size_t)64), v);
    return 0;
}

static int do_rollup(js_stream *s, const char *subj, int rollup) {
    uint64_t n = 0;
    if (rollup == ROLLUP_SUB)
        return jsi_ms_purge(s->ms, subj, 0, 1, &n);
    if (rollup == ROLLUP_ALL)
        return jsi_ms_purge(s->ms, NULL, 0, 1, &n);
    return 0;
}

static void fill_ack(js_stream *s, js_pub_ack *ack, uint64_t seq, int dup) {
    if (!ack)
        return;
    ack->seq = seq;
    ack->duplicate = dup;
    ack->stream = s->name;
}

int jsi_stream_publish_locked(js_stream *s, const char *subj, size_t slen,
                              const void *hdrp, size_t hlen, const void *data,
                              size_t dlen, int64_t now, js_pub_ack *ack) {
    const js_stream_config *c = &s->cfg.c;
    const uint8_t *hdr = hdrp;
    const char *id = NULL;
    size_t idlen = 0;
    int rollup = ROLLUP_NONE, rc;
    if (s->gone)
        return JSI_ERR(s->closed ? JS_EMISUSE : JS_ESTREAM_NOT_FOUND,
                       s->closed ? 0 : 10059, "stream %s is %s", s->name,
                       s->closed ? "closed" : "deleted");
    if (c->sealed)
        return JSI_ERR(JS_ESEALED, 10109, "invalid operation on sealed stream");
    if (hlen) {
        if ((rc = check_expected(s, subj, slen, hdr, hlen)) != 0)
            return rc;
        if (jsi_hdr_get(hdr, hlen, HDR_MSG_ID, &id, &idlen) && idlen) {
            dedupe_expire(s, now);
            jsi_sidx_entry *e = jsi_sidx_get(s->dedupe, id, idlen);
            if (e) {
                fill_ack(s, ack, e->first, 1);
                return 0;
            }
        } else {
            id = NULL;
        }
        const char *v;
        size_t vl;
        if (jsi_hdr_get(hdr, hlen, HDR_EXP_LAST_MSG_ID, &v, &vl) &&
            (vl != s->last_msgid_len || memcmp(v, s->last_msgid, vl) != 0))
            return JSI_ERR(JS_EWRONG_LAST_MSGID, 10070,
                           "%s: wrong last msg ID: %s", HDR_EXP_LAST_MSG_ID,
                           s->last_msgid);
        if ((rc = check_rollup(s, hdr, hlen, &rollup)) != 0)
            return rc;
    }
    if (c->max_msg_size > 0 &&
        (hlen > (size_t)c->max_msg_size ||
         dlen > (size_t)c->max_msg_size - hlen))
        return JSI_ERR(JS_EMSG_SIZE, 10054,
                       "max_msg_size: message size exceeds maximum allowed");
    if ((rc = expire_age(s, now)) != 0)
        return rc;
    if (c->discard == JS_DISCARD_NEW &&
        (rc = check_discard_new(s, subj, slen,
                                jsi_ms_msg_size(slen, hlen, dlen), rollup)))
        return rc;
    uint64_t seq;
    rc = jsi_ms_append(s->ms, subj, slen, hdr, hlen, data, dlen, now,
                       id != NULL, &seq);
    if (rc)
        return rc;
    jsi_consumers_on_publish(s, seq, subj, slen);
    /* Interest retention: with no consumer to take it, the sequence is
     * used but the message is not kept (NATS SkipMsgNoInterest). */
    if (c->retention == JS_RETENTION_INTEREST &&
        !jsi_consumers_interested(s, subj, slen) &&
        (rc = jsi_ms_remove(s->ms, seq, 0)) != 0)
        return rc;
    if (id)
        rc = dedupe_add(s, id, idlen, seq, now);
    if (rc == 0)
        rc = set_last_msgid(s, id ? id : "", idlen);
    if (rc == 0)
        rc = do_rollup(s, subj, rollup);
    if (rc == 0)
        rc = enforce_limits(s, c->max_msgs_per_subject > 0
                                   ? jsi_sidx_get(jsi_ms_sidx(s->ms), subj, slen)
                                   : NULL);
    if (rc)
        return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "publish") : rc;
    fill_ack(s, ack, seq, 0);
    return 0;
}

int jsi_stream_publish(js_stream *s, const char *subj, size_t slen,
                       const void *hdr, size_t hlen, const void *data,
                       size_t dlen, js_pub_ack *ack) {
    pthread_mutex_lock(&s->mu);
    int rc = jsi_stream_publish_locked(s, subj, slen, hdr, hlen, data, dlen,
                                       now_ns(s), ack);
    if (rc == 0)
        rc = jsi_stream_commit_locked(s, 0);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* A commit makes everything appended before it durable per the policy:
 * only then may consumers see it. */
int jsi_stream_commit_locked(js_stream *s, int force_sync) {
    if (!s->ms || s->gone)
        return 0;
    uint64_t upto = jsi_ms_last_seq(s->ms);
    int rc = jsi_ms_commit(s->ms, force_sync);
    if (rc == 0 && upto > s->visible && !s->gone) {
        s->visible = upto;
        jsi_consumers_notify(s);
    }
    return rc;
}

int jsi_stream_commit(js_stream *s, int force_sync) {
    pthread_mutex_lock(&s->mu);
    int rc = jsi_stream_commit_locked(s, force_sync);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int jsi_stream_flush(js_stream *s) {
    pthread_mutex_lock(&s->mu);
    int rc = jsi_stream_commit_locked(s, 1);
    /* A consumer's flush releases the lock, and a delete meanwhile moves
     * the last consumer into the freed slot: start over when the list
     * changed under us (those already flushed return at once). */
    for (size_t i = 0; rc == 0 && i < s->ncons;) {
        js_consumer *c = s->cons[i];
        uint64_t gen = s->cons_gen;
        jsi_consumer_ref(c);
        rc = jsi_consumer_log_flush(c, 1);
        i = s->cons_gen == gen ? i + 1 : 0;
        jsi_consumer_unref(c);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int64_t jsi_stream_now(js_stream *s) { return now_ns(s); }

int jsi_stream_sync(const js_stream *s) { return eff_sync(s); }

struct jsi_evq *jsi_stream_events(js_stream *s) { return s->env.events; }

/* ---- open, close, update ------------------------------------------------ */

const char *jsi_store_intern(js_store *st, const char *name); /* store.c */
void jsi_store_ref(js_store *st);                               /* store.c */

int jsi_stream_open(js_store *store, uint64_t id, int64_t created,
                    const jsi_scfg *cfg, const jsi_stream_env *env,
                    js_stream **out) {
    js_stream *s = jsi_calloc(1, sizeof *s);
    if (!s)
        return JSI_ERR(JS_ENOMEM, 0, "stream");
    s->magic = JSI_STREAM_MAGIC;
    s->refs = 1;
    s->store = store;
    jsi_store_ref(store);
    s->id = id;
    s->created = created;
    s->env = *env;
    s->env.dir = jsi_strdup(env->dir);
    s->dedupe = jsi_sidx_new();
    pthread_mutex_init(&s->mu, NULL);
    s->name = (char *)jsi_store_intern(store, cfg->c.name);
    int rc = jsi_scfg_copy(cfg, &s->cfg);
    if (rc == 0 && (!s->env.dir || !s->dedupe || !s->name))
        rc = JS_ENOMEM;
    if (rc) {
        s->gone = 1;
        jsi_stream_unref(s);
        return JSI_ERR(JS_ENOMEM, 0, "stream %s", cfg->c.name);
    }
    jsi_ms_cfg mc = {env->vfs,  s->env.dir, env->block_size, eff_sync(s),
                     env->sync_interval, env->clock, env->clock_ctx, &s->mu};
    pthread_mutex_lock(&s->mu);
    rc = jsi_ms_open(&mc, cfg->c.first_seq, &s->ms);
    if (rc == 0)
        rc = dedupe_rebuild(s);
    if (rc == 0) {
        s->visible = jsi_ms_last_seq(s->ms);
        rc = jsi_consumers_load(s);
        jsi_ms_set_observer(s->ms, jsi_consumers_on_remove, s);
    }
    if (rc == 0 && s->cfg.c.retention == JS_RETENTION_INTEREST)
        rc = jsi_consumers_reopen_interest(s);
    if (rc == 0)
        rc = enforce_all(s);
    if (rc == 0)
        rc = jsi_ms_commit(s->ms, 0);
    pthread_mutex_unlock(&s->mu);
    if (rc)
        jsi_consumers_kill(s);
    if (rc) {
        s->gone = 1;
        jsi_stream_unref(s);
        return rc;
    }
    *out = s;
    return 0;
}

void jsi_stream_kill(js_stream *s);

/* A deleted stream: no more writes; waiters in a commit wake up failed. */
void jsi_stream_kill(js_stream *s) {
    pthread_mutex_lock(&s->mu);
    s->gone = 1;
    if (s->ms)
        jsi_ms_kill(s->ms);
    pthread_mutex_unlock(&s->mu);
    jsi_consumers_kill(s);
}

int jsi_stream_close(js_stream *s) {
    int crc = jsi_consumers_close(s);
    pthread_mutex_lock(&s->mu);
    int rc = jsi_ms_close(s->ms);
    s->ms = NULL;
    s->gone = 1;
    s->closed = 1;
    pthread_mutex_unlock(&s->mu);
    return rc ? rc : crc;
}

int jsi_stream_update(js_stream *s, const jsi_scfg *nu) {
    jsi_scfg copy;
    int rc = jsi_scfg_copy(nu, &copy);
    if (rc)
        return JSI_ERR(rc, 0, "update");
    pthread_mutex_lock(&s->mu);
    jsi_scfg_free(&s->cfg);
    s->cfg = copy;
    jsi_ms_set_sync(s->ms, eff_sync(s), s->env.sync_interval);
    rc = enforce_all(s);
    if (rc == 0)
        rc = jsi_ms_commit(s->ms, 1);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- public per-stream calls -------------------------------------------- */

/* Check a handle and take its lock: 0, or an error with the lock free. */
static int enter(js_stream *s);

int jsi_stream_enter(js_stream *s) { return enter(s); }

static int enter(js_stream *s) {
    jsi_err_clear();
    if (!s || s->magic != JSI_STREAM_MAGIC)
        return JSI_ERR(JS_EMISUSE, 0, "not a stream handle");
    pthread_mutex_lock(&s->mu);
    if (s->gone) {
        int closed = s->closed;
        pthread_mutex_unlock(&s->mu);
        return closed ? JSI_ERR(JS_EMISUSE, 0, "store closed")
                      : JSI_ERR(JS_ESTREAM_NOT_FOUND, 10059,
                                "stream not found (deleted)");
    }
    return 0;
}

JS_API void js_stream_release(js_stream *s) {
    if (!s || s->magic != JSI_STREAM_MAGIC)
        return;
    jsi_stream_unref(s);
}

JS_API int js_stream_info(js_stream *s, struct js_stream_info **out) {
    if (!out)
        return JSI_ERR(JS_EINVAL, 0, "out: NULL");
    int rc = enter(s);
    if (rc)
        return rc;
    jsi_ms_state st;
    expire_age(s, now_ns(s));
    /* Expiry acknowledges nothing: if logging it fails (the store is then
     * fail-stop), the next open finds those messages and expires them
     * again, so the info is right either way. */
    (void)jsi_ms_commit(s->ms, 0);
    jsi_ms_state_get(s->ms, &st);
    size_t nlost;
    const jsi_range *lost = jsi_ms_lost(s->ms, &nlost);
    /* One allocation: the info, its config, its state, the lost ranges,
     * then strings. */
    size_t strs = strlen(s->cfg.c.name) + 1 +
                  (s->cfg.c.description ? strlen(s->cfg.c.description) + 1 : 0);
    for (size_t i = 0; i < s->cfg.c.num_subjects; i++)
        strs += strlen(s->cfg.subjects[i]) + 1;
    size_t head = sizeof(struct js_stream_info) + sizeof(js_stream_config) +
                  sizeof(js_stream_state) + nlost * sizeof(js_seq_range) +
                  s->cfg.c.num_subjects * sizeof(char *);
    uint8_t *m = jsi_calloc(1, head + strs);
    if (!m) {
        pthread_mutex_unlock(&s->mu);
        return JSI_ERR(JS_ENOMEM, 0, "stream info");
    }
    struct js_stream_info *info = (struct js_stream_info *)m;
    js_stream_config *cfg = (js_stream_config *)(info + 1);
    js_stream_state *state = (js_stream_state *)(cfg + 1);
    js_seq_range *ranges = (js_seq_range *)(state + 1);
    const char **subs = (const char **)(ranges + nlost);
    char *p = (char *)(subs + s->cfg.c.num_subjects);
    *cfg = s->cfg.c;
    cfg->name = p;
    p = stpcpy(p, s->cfg.c.name) + 1;
    if (s->cfg.c.description) {
        cfg->description = p;
        p = stpcpy(p, s->cfg.c.description) + 1;
    }
    for (size_t i = 0; i < s->cfg.c.num_subjects; i++) {
        subs[i] = p;
        p = stpcpy(p, s->cfg.subjects[i]) + 1;
    }
    cfg->subjects = subs;
    state->msgs = st.msgs;
    state->bytes = st.bytes;
    /* As NATS: a stream that never held a message reports first 0. */
    state->first_seq = st.last == 0 && s->cfg.c.first_seq <= 1 ? 0 : st.first;
    state->first_ts = st.first_ts;
    state->last_seq = st.last;
    state->last_ts = st.last_ts;
    state->num_subjects = st.num_subjects;
    state->num_deleted = st.num_deleted;
    state->lost_msgs = st.lost_msgs;
    state->lost_bytes = st.lost_bytes;
    state->consumer_count = s->ncons;
    info->config = cfg;
    info->state = state;
    info->created = s->created;
    for (size_t i = 0; i < nlost; i++) {
        ranges[i].first = lost[i].lo;
        ranges[i].last = lost[i].hi;
    }
    info->lost = nlost ? ranges : NULL;
    info->lost_len = nlost;
    pthread_mutex_unlock(&s->mu);
    *out = info;
    return 0;
}

JS_API void js_stream_info_free(struct js_stream_info *info) { jsi_free(info); }

JS_API int js_stream_purge(js_stream *s, const js_purge_opts *opts,
                           uint64_t *purged) {
    js_purge_opts o = JS_PURGE_OPTS_INIT;
    uint64_t n = 0;
    if (opts) {
        if (opts->version < 1 || opts->version > JS_PURGE_OPTS_VERSION)
            return JSI_ERR(JS_EINVAL, 0, "purge opts: version %u unknown",
                           opts->version);
        o = *opts;
    }
    if (o.seq && o.keep)
        return JSI_ERR(JS_EINVAL, 10003,
                       "bad request: seq and keep are mutually exclusive");
    if (o.filter && *o.filter &&
        !jsi_subject_valid(o.filter, strlen(o.filter), 1))
        return JSI_ERR(JS_EINVAL, 10003, "filter: invalid subject \"%s\"",
                       o.filter);
    int rc = enter(s);
    if (rc)
        return rc;
    if (s->cfg.c.sealed)
        rc = JSI_ERR(JS_ESEALED, 10109, "invalid operation on sealed stream");
    else if (s->cfg.c.deny_purge)
        rc = JSI_ERR(JS_EPURGE_DENIED, 10110, "stream purge not permitted");
    else
        rc = jsi_ms_purge(s->ms, o.filter, o.seq, o.keep, &n);
    if (rc == 0)
        rc = jsi_ms_commit(s->ms, 0);
    pthread_mutex_unlock(&s->mu);
    if (purged)
        *purged = rc == 0 ? n : 0;
    return rc;
}

static int msg_remove(js_stream *s, uint64_t seq, int erase) {
    int rc = enter(s);
    if (rc)
        return rc;
    if (s->cfg.c.sealed)
        rc = JSI_ERR(JS_ESEALED, 10109, "invalid operation on sealed stream");
    else if (s->cfg.c.deny_delete)
        rc = JSI_ERR(JS_EDELETE_DENIED, 10057, "message delete not permitted");
    else
        rc = jsi_ms_remove(s->ms, seq, erase);
    if (rc == JS_EMSG_NOT_FOUND)
        rc = JSI_ERR(rc, 10043, "sequence %" PRIu64 " not found", seq);
    if (rc == 0)
        rc = jsi_ms_commit(s->ms, 0);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

JS_API int js_msg_delete(js_stream *s, uint64_t seq) {
    return msg_remove(s, seq, 0);
}

JS_API int js_msg_erase(js_stream *s, uint64_t seq) {
    return msg_remove(s, seq, 1);
}

/* ---- reads -------------------------------------------------------------- */

int jsi_msg_from_rec(const jsi_rec *r, js_msg **out); /* msg.c */

static int get_common(js_stream *s, int kind, uint64_t seq, const char *f,
                      js_msg **out) {
    jsi_rec r;
    if (!out)
        return JSI_ERR(JS_EINVAL, 0, "out: NULL");
    *out = NULL;
    if (kind != 0 && f && *f && !jsi_subject_valid(f, strlen(f), 1))
        return JSI_ERR(JS_EINVAL, 10003, "%s: invalid subject \"%.*s\"",
                       kind == 1 ? "subject" : "filter",
                       (int)JSI_MIN(strlen(f), (size_t)200), f);
    if (kind == 1 && (!f || !*f))
        return JSI_ERR(JS_EINVAL, 10003, "subject: required");
    int rc = enter(s);
    if (rc)
        return rc;
    expire_age(s, now_ns(s));
    if (kind == 0)
        rc = jsi_ms_load(s->ms, seq, &r);
    else if (kind == 1)
        rc = jsi_ms_last(s->ms, f, &r);
    else
        rc = jsi_ms_next(s->ms, f, seq, &r);
    if (rc == 0)
        rc = jsi_msg_from_rec(&r, out);
    else if (rc == JS_EMSG_NOT_FOUND)
        rc = JSI_ERR(rc, 10037, "no message found");
    pthread_mutex_unlock(&s->mu);
    return rc;
}

JS_API int js_msg_get(js_stream *s, uint64_t seq, js_msg **out) {
    return get_common(s, 0, seq, NULL, out);
}

JS_API int js_msg_get_last(js_stream *s, const char *subject, js_msg **out) {
    return get_common(s, 1, 0, subject, out);
}

JS_API int js_msg_get_next(js_stream *s, const char *filter, uint64_t seq,
                           js_msg **out) {
    return get_common(s, 2, seq, filter, out);
}

int jsi_stream_subjects(js_stream *s, const char *filter, const char *after,
                        size_t after_len, size_t max, jsi_subject_visit fn,
                        void *ctx) {
    int rc = enter(s);
    if (rc)
        return rc;
    size_t n = 0;
    jsi_sidx_entry *e = jsi_ms_subject_next(s->ms, filter, after, after_len);
    while (rc == 0 && e && n < max) {
        jsi_ms_subject_fix_last(s->ms, e);
        rc = fn(e->subj, e->len, e->last, ctx);
        n++;
        e = jsi_ms_subject_next(s->ms, filter, e->subj, e->len);
    }
    pthread_mutex_unlock(&s->mu);
    return rc ? rc : (int)n;
}
