/*
 * consumer_ack.c - acks (+ACK, -NAK, +WPI, +TERM, and ack-sync), the
 * retention they drive (interest, work queue), and a durable consumer's
 * state file: done sequences are queued in memory, written as ACKS
 * records at the next flush point, and synced by ack_sync; concurrent
 * syncs share one (group commit). The file is rewritten as one snapshot
 * when it grows past max(64 KiB, 4 x the snapshot).
 */
#include "consumer.h"
#include "events.h"

uint64_t jsi_consumer_log_min_rewrite = 64u * 1024;

/* ---- retention --------------------------------------------------------------- */

/* 1 if sseq is among the last_per_subject sequences still to deliver. */
static int lps_listed(const js_consumer *c, uint64_t sseq) {
    size_t lo = c->lps_i, hi = c->lps_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->lps[mid] == sseq)
            return 1;
        if (c->lps[mid] < sseq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* 1 if consumer c has finished with stream message sseq. In
 * last_per_subject mode only the listed sequences, and whatever comes
 * after the last of them, are still to be delivered. */
static int done_by(js_consumer *c, uint64_t sseq) {
    if (c->lps_i < c->lps_n) {
        if (sseq > c->lps[c->lps_n - 1] || lps_listed(c, sseq))
            return 0;
    } else if (sseq >= c->next_sseq) {
        return 0;
    }
    return jsi_pend_get(&c->pend, sseq) == NULL &&
           !jsi_rs_contains(&c->gaveup, sseq);
}

int jsi_consumers_all_done(js_stream *s, uint64_t sseq, const char *subj,
                           size_t slen) {
    for (size_t i = 0; i < s->ncons; i++) {
        js_consumer *c = s->cons[i];
        if (jsi_ccfg_matches(&c->cfg, subj, slen) && !done_by(c, sseq))
            return 0;
    }
    return 1;
}

int jsi_consumers_cleanup_interest(js_stream *s, uint64_t from) {
    jsi_rec r;
    uint64_t seq = JSI_MAX(from, jsi_ms_first_seq(s->ms));
    int rc;
    while ((rc = jsi_ms_next(s->ms, NULL, seq, &r)) == 0) {
        seq = r.seq + 1;
        if (jsi_consumers_all_done(s, r.seq, r.subj, r.slen) &&
            (rc = jsi_ms_remove(s->ms, r.seq, 0)) != 0 &&
            rc != JS_EMSG_NOT_FOUND)
            return rc;
    }
    return rc == JS_EMSG_NOT_FOUND ? jsi_ms_commit(s->ms, 0) : rc;
}

int jsi_consumers_reopen_interest(js_stream *s) {
    uint64_t purged, from = UINT64_MAX;
    if (s->ncons == 0) {
        int rc = jsi_ms_purge(s->ms, NULL, 0, 0, &purged);
        return rc ? rc : jsi_ms_commit(s->ms, 0);
    }
    for (size_t i = 0; i < s->ncons; i++)
        from = JSI_MIN(from, s->cons[i]->floor_sseq + 1);
    /* Everything below every durable's ack floor is done by all of them. */
    int rc = jsi_ms_purge(s->ms, NULL, from, 0, &purged);
    return rc ? rc : jsi_consumers_cleanup_interest(s, from);
}

/* The stream side of a finished message. subj may be NULL (unknown). */
static int retire(js_consumer *c, uint64_t sseq, const char *subj,
                  size_t slen) {
    js_stream *s = c->s;
    jsi_rec r;
    int ret = s->cfg.c.retention, rc = 0;
    if (ret == JS_RETENTION_LIMITS)
        return 0;
    if (ret == JS_RETENTION_INTEREST) {
        if (!subj) {
            if (jsi_ms_load(s->ms, sseq, &r) != 0)
                return 0;
            subj = r.subj;
            slen = r.slen;
        }
        if (!jsi_consumers_all_done(s, sseq, subj, slen))
            return 0;
    }
    rc = jsi_ms_remove(s->ms, sseq, 0);
    return rc == JS_EMSG_NOT_FOUND ? 0 : rc;
}

/* ---- the state file ------------------------------------------------------------ */

int jsi_consumer_log_done(js_consumer *c, uint64_t sseq) {
    if (!c->log)
        return 0;
    if (c->log_failed)
        return JSI_ERR(JS_EFAILED, 0, "consumer %s: an earlier state write "
                       "failed; reopen the store", c->name);
    if (c->ndone == c->done_cap) {
        size_t nc = c->done_cap ? c->done_cap * 2 : 64;
        uint64_t *n = jsi_realloc(c->done, nc * sizeof *n);
        if (!n)
            return JSI_ERR(JS_ENOMEM, 0, "ack");
        c->done = n;
        c->done_cap = nc;
    }
    c->done[c->ndone++] = sseq;
    return 0;
}

/* Move queued done sequences (and delivery progress) into logbuf. */
static int encode_pending(js_consumer *c) {
    if (!c->ndone && c->logged_dlv == c->dseq && c->logged_floor == c->floor_sseq)
        return 0;
    int rc = jsi_cstate_enc_acks(c->dseq, c->dlv_sseq, c->floor_dseq,
                                 c->floor_sseq, c->done, c->ndone,
                                 &c->logbuf);
    if (rc)
        return JSI_ERR(rc, 0, "consumer %s: state", c->name);
    c->ndone = 0;
    c->logged_dlv = c->dseq;
    c->logged_floor = c->floor_sseq;
    c->log_gen++;
    return 0;
}

/* The persisted form of the current state. */
static int snapshot(js_consumer *c, jsi_cstate *st) {
    size_t pos = 0;
    uint64_t prev = c->floor_sseq;
    jsi_pent *e;
    int rc = 0;
    jsi_cstate_init(st);
    st->dlv_dseq = c->dseq;
    st->dlv_sseq = c->dlv_sseq;
    st->floor_dseq = c->floor_dseq;
    st->floor_sseq = c->floor_sseq;
    st->lps_end = c->lps_i < c->lps_n ? c->lps_end : 0;
    while (rc == 0 && (e = jsi_pend_next(&c->pend, &pos)) != NULL) {
        if (e->sseq > prev + 1)
            rc = jsi_rs_add(&st->acked, prev + 1, e->sseq - 1);
        if (rc == 0 && e->count > 1)
            rc = jsi_cstate_set_count(st, e->sseq, e->count);
        prev = e->sseq;
    }
    if (rc == 0 && c->dlv_sseq > prev)
        rc = jsi_rs_add(&st->acked, prev + 1, c->dlv_sseq);
    if (rc)
        jsi_cstate_free(st);
    return rc;
}

/* Rewrite the file as one snapshot. Holds the I/O token. */
static int compact(js_consumer *c) {
    jsi_cstate st;
    int rc = snapshot(c, &st);
    if (rc)
        return JSI_ERR(rc, 0, "consumer %s: state", c->name);
    /* Everything queued so far is in the snapshot. */
    jsi_buf_free(&c->logbuf);
    c->ndone = 0;
    uint64_t gen = c->log_gen;
    /* The snapshot may hold acks made while the lock was released for the
     * write just done: the removals they caused reach the stream's file
     * first (as in jsi_consumer_log_flush), and durably, since the
     * rewrite is synced whatever the policy. */
    if (jsi_ms_removals_pending(c->s->ms, 1))
        rc = jsi_ms_commit(c->s->ms, 1);
    if (rc == 0) {
        pthread_mutex_unlock(&c->s->mu);
        rc = jsi_cslog_rewrite(c->log, &st);
        pthread_mutex_lock(&c->s->mu);
    }
    if (rc == 0) {
        c->snap_size = jsi_cslog_size(c->log);
        c->log_written_gen = c->log_synced_gen = gen;
    }
    jsi_cstate_free(&st);
    return rc;
}

/* One thread writes (and syncs) for everyone queued so far. */
static int write_round(js_consumer *c, int sync) {
    jsi_buf b = c->logbuf;
    uint64_t gen = c->log_gen;
    memset(&c->logbuf, 0, sizeof c->logbuf);
    c->log_busy = 1;
    pthread_mutex_unlock(&c->s->mu);
    int rc = b.len ? jsi_cslog_append(c->log, b.p, b.len) : 0;
    if (rc == 0 && sync)
        rc = jsi_cslog_sync(c->log);
    pthread_mutex_lock(&c->s->mu);
    jsi_buf_free(&b);
    if (rc == 0) {
        c->log_written_gen = gen;
        if (sync)
            c->log_synced_gen = gen;
        if (jsi_cslog_size(c->log) >
            JSI_MAX(jsi_consumer_log_min_rewrite, 4 * c->snap_size))
            rc = compact(c);
    }
    c->log_busy = 0;
    pthread_cond_broadcast(&c->log_cond);
    if (rc)
        c->log_failed = rc;
    return rc;
}

int jsi_consumer_log_flush(js_consumer *c, int sync) {
    if (!c->log)
        return 0;
    if (c->log_failed)
        return JSI_ERR(JS_EFAILED, 0, "consumer %s: an earlier state write "
                       "failed; reopen the store", c->name);
    int rc = encode_pending(c);
    if (rc)
        return rc;
    /* Removals (by acks, purges, deletes) reach the stream's file first,
     * so a state file never moves past a message the stream may bring
     * back after a crash, nor says "done" for one it still holds. */
    if (jsi_ms_removals_pending(c->s->ms, 0) &&
        (rc = jsi_ms_commit(c->s->ms, 0)) != 0)
        return rc;
    uint64_t target = c->log_gen;
    for (;;) {
        uint64_t have = sync ? c->log_synced_gen : c->log_written_gen;
        if (have >= target && (!sync || c->log_synced_gen >= target))
            return 0;
        if (c->log_failed)
            return JSI_ERR(JS_EFAILED, 0, "consumer %s: state write failed",
                           c->name);
        if (c->log_busy) {
            pthread_cond_wait(&c->log_cond, &c->s->mu);
            continue;
        }
        if ((rc = write_round(c, sync)) != 0)
            return JSI_ERR(rc, 0, "consumer %s: writing its state", c->name);
    }
}

/* ---- acks ------------------------------------------------------------------------- */

enum { ACK, NAK, WPI, TERM };

/* Sample acks at sample_freq percent, spread evenly (every k-th where
 * the running share crosses a whole number). */
static void maybe_sample(js_consumer *c, const jsi_pent *e, int64_t now) {
    int pct = c->cfg.sample_pct;
    if (pct <= 0)
        return;
    uint64_t n = ++c->sample_n;
    if ((n * (uint64_t)pct) / 100 == ((n - 1) * (uint64_t)pct) / 100)
        return;
    jsi_consumer_event(c, JS_EVENT_ACK_SAMPLE, e->sseq, e->dseq, e->count,
                       NULL, now - e->delivered);
}

/* Finish one pending message acked or terminated. */
static int done_one(js_consumer *c, jsi_pent *e, const char *subj,
                    size_t slen, int64_t now, int sample) {
    uint64_t sseq = e->sseq;
    /* Not recorded: still pending, so the caller may retry the ack. */
    int rc = jsi_consumer_log_done(c, sseq);
    if (rc)
        return rc;
    if (sample)
        maybe_sample(c, e, now);
    jsi_pend_del(&c->pend, sseq);
    return retire(c, sseq, subj, slen);
}

static int ack_all_upto(js_consumer *c, uint64_t sseq, int64_t now) {
    jsi_pent *e;
    int rc = 0;
    while (rc == 0 && (e = jsi_pend_first(&c->pend)) != NULL &&
           e->sseq <= sseq)
        rc = done_one(c, e, NULL, 0, now, 1);
    return rc;
}

static int apply(js_consumer *c, const js_msg *m, int kind, int64_t delay,
                 const char *reason) {
    uint64_t dseq;
    uint64_t sseq = js_msg_seq(m);
    int64_t now = jsi_stream_now(c->s);
    jsi_pent *e = jsi_pend_get(&c->pend, sseq);
    (void)jsi_msg_consumer(m, &dseq);
    c->ack_time = now;
    c->last_active = now;
    if (kind == ACK && c->cfg.c.ack_policy == JS_ACK_ALL)
        return ack_all_upto(c, sseq, now);
    if (!e && (kind == ACK || kind == TERM)) {
        /* Done here already: acked, removed, or given up on at
         * max_deliver, which work-queue and interest streams keep until
         * it is acked (NATS PR #7845). */
        if (jsi_rs_contains(&c->gaveup, sseq) &&
            jsi_rs_remove(&c->gaveup, sseq, sseq) != 0)
            return JSI_ERR(JS_ENOMEM, 0, "ack");
        return retire(c, sseq, js_msg_subject(m), strlen(js_msg_subject(m)));
    }
    if (!e)
        return 0;
    /* A nak or in-progress from a delivery superseded by a redelivery
     * would move the timer of the delivery now being worked on: ignored.
     * An ack or term of it still finishes the message (as in NATS, and
     * so that a returned ack_sync means it is never delivered again). */
    if ((kind == NAK || kind == WPI) && e->dseq != dseq)
        return 0;
    switch (kind) {
    case NAK:
        jsi_consumer_event(c, JS_EVENT_MSG_NAKED, sseq, dseq, e->count, NULL,
                           0);
        if (jsi_pend_schedule(&c->pend, e,
                              jsi_time_add(now, JSI_MAX(delay, 0))) != 0)
            return JSI_ERR(JS_ENOMEM, 0, "nak");
        pthread_cond_broadcast(&c->cond);
        if (c->nsubs)
            jsi_dispatch_wake(c->s->store);
        return 0;
    case WPI:
        return jsi_pend_schedule(&c->pend, e, jsi_time_add(
                                     now, jsi_consumer_ack_wait(c, e->count)))
                   ? JSI_ERR(JS_ENOMEM, 0, "in progress") : 0;
    case TERM:
        jsi_consumer_event(c, JS_EVENT_MSG_TERMINATED, sseq, dseq, e->count,
                           reason, 0);
        /* fall through */
    default:
        return done_one(c, e, js_msg_subject(m), strlen(js_msg_subject(m)),
                        now, kind == ACK);
    }
}

static int ack_common(js_msg *m, int kind, int64_t delay, const char *reason,
                      int sync) {
    jsi_err_clear();
    if (!jsi_msg_valid(m))
        return JSI_ERR(JS_EMISUSE, 0, "not a message");
    js_consumer *c = jsi_msg_consumer(m, NULL);
    if (!c)
        return JSI_ERR(JS_EINVAL, 0, "the message was not delivered by a "
                       "consumer");
    int rc = jsi_consumer_enter(c);
    if (rc)
        return rc;
    js_stream *s = c->s;
    if (c->cfg.c.ack_policy == JS_ACK_NONE)
        rc = JSI_ERR(JS_EINVAL, 0, "consumer %s has ack policy none",
                     c->name);
    if (rc == 0)
        rc = apply(c, m, kind, delay, reason);
    if (rc == 0 && kind != NAK && kind != WPI) {
        jsi_consumer_floor(c);
        /* A freed slot under max_ack_pending lets delivery go on. */
        pthread_cond_broadcast(&c->cond);
        if (c->nsubs)
            jsi_dispatch_wake(s->store);
    }
    if (rc == 0 && sync)
        rc = jsi_consumer_log_flush(c, jsi_stream_sync(s) == JS_SYNC_ALWAYS);
    pthread_mutex_unlock(&s->mu);
    jsi_evq_drain(jsi_stream_events(s));
    return rc;
}

JS_API int js_msg_ack(js_msg *m) { return ack_common(m, ACK, 0, NULL, 0); }

JS_API int js_msg_ack_sync(js_msg *m) {
    return ack_common(m, ACK, 0, NULL, 1);
}

JS_API int js_msg_nak(js_msg *m, int64_t delay) {
    return ack_common(m, NAK, delay, NULL, 0);
}

JS_API int js_msg_in_progress(js_msg *m) {
    return ack_common(m, WPI, 0, NULL, 0);
}

JS_API int js_msg_term(js_msg *m, const char *reason) {
    return ack_common(m, TERM, 0, reason, 0);
}
