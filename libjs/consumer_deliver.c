/*
 * consumer_deliver.c - choosing the next message for a consumer (due
 * redeliveries first, then new messages), pull calls, num_pending upkeep
 * as the stream changes, and the consumer timers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "consumer.h"
#include "events.h"
#include "headers.h"
#include "subject.h"

#define MSG_SIZE_HDR "Nats-Msg-Size"


/* ---- bookkeeping ----------------------------------------------------------- */

void jsi_consumer_floor(js_consumer *c) {
    jsi_pent *e = jsi_pend_first(&c->pend);
    uint64_t fs = e ? e->sseq - 1 : c->dlv_sseq;
    uint64_t fd = e ? (e->dseq ? e->dseq - 1 : 0) : c->dseq;
    c->floor_sseq = JSI_MAX(c->floor_sseq, fs);
    c->floor_dseq = JSI_MAX(c->floor_dseq, fd);
}

static int lps_mode(const js_consumer *c) { return c->lps_i < c->lps_n; }

static uint64_t recount(js_consumer *c) {
    jsi_ms *ms = c->s->ms;
    uint64_t n = 0, from = c->next_sseq;
    jsi_rec r;
    if (lps_mode(c)) {
        for (size_t i = c->lps_i; i < c->lps_n; i++)
            n += jsi_ms_load(ms, c->lps[i], &r) == 0;
        from = c->lps[c->lps_n - 1] + 1;
    }
    uint64_t rest = 0;
    if (jsi_ms_count(ms, c->filters, c->nfilters, from, &rest) != 0)
        return c->num_pending; /* keep the old figure; retried later */
    c->recount = 0;
    return n + rest;
}

uint64_t jsi_consumer_pending(js_consumer *c) {
    if (c->recount)
        c->num_pending = recount(c);
    return c->num_pending;
}

int64_t jsi_consumer_ack_wait(const js_consumer *c, uint64_t count) {
    const js_consumer_config *k = &c->cfg.c;
    if (k->num_backoff) {
        size_t i = count ? (size_t)JSI_MIN(count - 1, k->num_backoff - 1) : 0;
        return k->backoff[i];
    }
    return k->ack_wait;
}

/* ---- stream hooks --------------------------------------------------------- */

void jsi_consumers_on_publish(js_stream *s, uint64_t seq, const char *subj,
                              size_t slen) {
    (void)seq;
    for (size_t i = 0; i < s->ncons; i++) {
        js_consumer *c = s->cons[i];
        if (!c->recount && jsi_ccfg_matches(&c->cfg, subj, slen))
            c->num_pending++;
    }
}

void jsi_consumers_notify(js_stream *s) {
    int push = 0;
    for (size_t i = 0; i < s->ncons; i++) {
        js_consumer *c = s->cons[i];
        if (c->waiting)
            pthread_cond_broadcast(&c->cond);
        push |= c->nsubs != 0;
    }
    if (push)
        jsi_dispatch_wake(s->store);
}

int jsi_consumers_interested(js_stream *s, const char *subj, size_t slen) {
    for (size_t i = 0; i < s->ncons; i++)
        if (jsi_ccfg_matches(&s->cons[i]->cfg, subj, slen))
            return 1;
    return 0;
}

/* Drop pending entries for removed messages in [lo, hi]. */
static void drop_pending(js_consumer *c, uint64_t lo, uint64_t hi) {
    if (hi - lo < c->pend.n) {
        for (uint64_t q = lo; q <= hi && q >= lo; q++)
            jsi_pend_del(&c->pend, q);
    } else {
        size_t pos = 0, k = 0;
        uint64_t *gone = jsi_malloc(c->pend.n * sizeof *gone + 1);
        jsi_pent *e;
        while (gone && (e = jsi_pend_next(&c->pend, &pos)) != NULL)
            if (e->sseq >= lo && e->sseq <= hi)
                gone[k++] = e->sseq;
        for (size_t i = 0; i < k; i++)
            jsi_pend_del(&c->pend, gone[i]);
        jsi_free(gone);
    }
    jsi_consumer_floor(c);
}

/* Index of the first of v[0..n) (sorted) that is >= x. */
static size_t lower_u64(const uint64_t *v, size_t n, uint64_t x) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* How many still-pending messages of a last-per-subject consumer the
 * removal of [lo, hi] (one matching subject) takes: its entries still in
 * the list, and any past the list (new messages). Counting them here, not
 * by a recount that reads every listed message, keeps a watch over many
 * keys linear while the keys are being rewritten. */
static uint64_t lps_removed(const js_consumer *c, uint64_t lo, uint64_t hi) {
    const uint64_t *v = c->lps + c->lps_i;
    size_t n = c->lps_n - c->lps_i;
    uint64_t top = c->lps[c->lps_n - 1];
    uint64_t k = lower_u64(v, n, hi > UINT64_MAX - 1 ? hi : hi + 1) -
                 lower_u64(v, n, lo);
    if (hi > top)
        k += hi - JSI_MAX(lo, top + 1) + 1;
    return k;
}

void jsi_consumers_on_remove(void *ctx, uint64_t lo, uint64_t hi,
                             const char *subj, size_t slen) {
    js_stream *s = ctx;
    for (size_t i = 0; i < s->ncons; i++) {
        js_consumer *c = s->cons[i];
        if (c->gaveup.n)
            (void)jsi_rs_remove(&c->gaveup, lo, hi);
        if (c->pend.n) {
            uint64_t before = c->pend.n;
            drop_pending(c, lo, hi);
            if (c->pend.n != before) { /* max_ack_pending slots freed */
                pthread_cond_broadcast(&c->cond);
                if (c->nsubs)
                    jsi_dispatch_wake(s->store);
            }
        }
        if (c->recount || hi < c->next_sseq)
            continue;
        if (!subj) {
            c->recount = 1;
        } else if (jsi_ccfg_matches(&c->cfg, subj, slen)) {
            uint64_t n = lps_mode(c) ? lps_removed(c, lo, hi)
                                     : hi - JSI_MAX(lo, c->next_sseq) + 1;
            c->num_pending -= JSI_MIN(n, c->num_pending);
        }
    }
}

/* ---- building a delivered message ------------------------------------------ */

/* headers_only: the headers plus Nats-Msg-Size, no payload. */
static int headers_only(const jsi_rec *r, jsi_buf *b, jsi_rec *out) {
    char line[64];
    int n = snprintf(line, sizeof line, MSG_SIZE_HDR ": %zu\r\n", r->dlen);
    int rc;
    if (r->hlen >= 4) /* drop the final CRLF, add ours, end again */
        rc = jsi_buf_append(b, r->hdr, r->hlen - 2);
    else
        rc = jsi_buf_append(b, "NATS/1.0\r\n", 10);
    if (rc == 0)
        rc = jsi_buf_append(b, line, (size_t)n);
    if (rc == 0)
        rc = jsi_buf_append(b, "\r\n", 2);
    if (rc)
        return JSI_ERR(JS_ENOMEM, 0, "message");
    *out = *r;
    out->hdr = b->p;
    out->hlen = b->len;
    out->data = NULL;
    out->dlen = 0;
    return 0;
}

/* The message to hand out, built before the delivery changes any state so
 * that a failed allocation leaves the consumer as it was. */
static int build_msg(js_consumer *c, const jsi_rec *r, js_msg **out) {
    jsi_rec v = *r;
    jsi_buf b = {0};
    int rc = 0;
    if (c->cfg.c.headers_only)
        rc = headers_only(r, &b, &v);
    if (rc == 0)
        rc = jsi_msg_from_rec(&v, out);
    jsi_buf_free(&b);
    return rc;
}

static size_t rec_size(const jsi_rec *r) { return r->slen + r->hlen + r->dlen; }

/* ---- redelivery ------------------------------------------------------------- */

/* A pending message is finished without delivery (removed from the stream,
 * damaged, or out of deliveries). */
static void finish(js_consumer *c, uint64_t sseq, int log) {
    if (log)
        jsi_consumer_log_done(c, sseq);
    jsi_pend_del(&c->pend, sseq);
    jsi_consumer_floor(c);
}

/* 0: delivered into *out; 1: nothing delivered, look again; else error. */
static int redeliver(js_consumer *c, jsi_pent *e, int64_t now,
                     size_t max_bytes, js_msg **out) {
    jsi_rec r;
    uint64_t sseq = e->sseq;
    int rc = jsi_ms_load(c->s->ms, sseq, &r);
    if (rc == JS_EMSG_NOT_FOUND || rc == JS_ECORRUPT) {
        finish(c, sseq, 0);
        return 1;
    }
    if (rc)
        return rc;
    int64_t maxd = c->cfg.c.max_deliver;
    if (maxd > 0 && e->count >= (uint64_t)maxd) {
        jsi_consumer_event(c, JS_EVENT_MAX_DELIVERIES, sseq, 0, e->count,
                           NULL, 0);
        /* An interest stream keeps it for this consumer until it is acked
         * (as NATS does); a failed add only lets it go sooner. */
        if (c->s->cfg.c.retention == JS_RETENTION_INTEREST)
            (void)jsi_rs_add(&c->gaveup, sseq, sseq);
        finish(c, sseq, 1);
        return 1;
    }
    if (max_bytes && rec_size(&r) > max_bytes)
        return JS_EMSG_SIZE;
    js_msg *m;
    if ((rc = build_msg(c, &r, &m)) != 0)
        return rc;
    /* On failure the entry keeps its (due) deadline: tried again later. */
    int64_t due = jsi_time_add(now, jsi_consumer_ack_wait(c, e->count + 1));
    if (jsi_pend_schedule(&c->pend, e, due) != 0) {
        js_msg_free(m);
        return JSI_ERR(JS_ENOMEM, 0, "consumer");
    }
    c->dseq++;
    jsi_pend_delivered(&c->pend, e, c->dseq, now);
    c->dlv_time = now;
    jsi_msg_set_delivery(m, c, c->dseq, e->count, jsi_consumer_pending(c));
    *out = m;
    return 0;
}

/* ---- new messages ------------------------------------------------------------- */

/* The next new message at or after next_sseq, within what is visible. */
static int next_new(js_consumer *c, jsi_rec *r) {
    jsi_ms *ms = c->s->ms;
    while (lps_mode(c)) {
        uint64_t seq = c->lps[c->lps_i];
        int rc = jsi_ms_load(ms, seq, r);
        if (rc == 0)
            return seq <= c->s->visible ? 0 : JS_EMSG_NOT_FOUND;
        c->lps_i++;
        if (!lps_mode(c))
            c->next_sseq = JSI_MAX(c->next_sseq, seq + 1);
        if (rc != JS_EMSG_NOT_FOUND && rc != JS_ECORRUPT)
            return rc;
    }
    int rc = jsi_ms_next_multi(ms, c->filters, c->nfilters, c->next_sseq, r);
    if (rc == 0 && r->seq > c->s->visible)
        rc = JS_EMSG_NOT_FOUND;
    return rc;
}

/* replay_policy original: not before the recorded gap since the first. */
static int64_t replay_due(js_consumer *c, const jsi_rec *r, int64_t now) {
    if (c->cfg.c.replay_policy != JS_REPLAY_ORIGINAL)
        return now;
    if (!c->replay_wall) {
        c->replay_wall = now;
        c->replay_ts = r->ts;
    }
    return c->replay_wall + (r->ts - c->replay_ts);
}

static void advance(js_consumer *c, uint64_t seq) {
    if (lps_mode(c)) {
        c->lps_i++;
        if (!lps_mode(c))
            c->next_sseq = JSI_MAX(c->next_sseq, c->lps[c->lps_n - 1] + 1);
    } else {
        c->next_sseq = seq + 1;
    }
    if (!c->recount && c->num_pending)
        c->num_pending--;
}

static int at_max_ack_pending(const js_consumer *c) {
    int64_t m = c->cfg.c.max_ack_pending;
    return c->cfg.c.ack_policy != JS_ACK_NONE && m > 0 &&
           c->pend.n >= (uint64_t)m;
}

int jsi_consumers_all_done(js_stream *s, uint64_t sseq, const char *subj,
                           size_t slen);

static int deliver_new(js_consumer *c, int64_t now, int64_t *wake,
                       size_t max_bytes, js_msg **out) {
    jsi_rec r;
    if (at_max_ack_pending(c))
        return JS_ETIMEOUT;
    int rc = next_new(c, &r);
    if (rc == JS_EMSG_NOT_FOUND)
        return JS_ETIMEOUT;
    if (rc)
        return rc;
    int64_t due = replay_due(c, &r, now);
    if (due > now) {
        *wake = JSI_MIN(*wake, due);
        return JS_ETIMEOUT;
    }
    if (max_bytes && rec_size(&r) > max_bytes)
        return JS_EMSG_SIZE;
    /* Everything that can fail comes before the cursor moves: a failure
     * leaves the message to the next call. */
    js_msg *m;
    jsi_pent *e = NULL;
    uint64_t seq = r.seq;
    if ((rc = build_msg(c, &r, &m)) != 0)
        return rc;
    if (c->cfg.c.ack_policy != JS_ACK_NONE) {
        e = jsi_pend_add(&c->pend, seq);
        int64_t redo = jsi_time_add(now, jsi_consumer_ack_wait(c, 1));
        if (!e || jsi_pend_schedule(&c->pend, e, redo) != 0) {
            if (e)
                jsi_pend_del(&c->pend, seq);
            js_msg_free(m);
            return JSI_ERR(JS_ENOMEM, 0, "consumer");
        }
    }
    advance(c, seq);
    c->dseq++;
    c->dlv_sseq = seq;
    c->dlv_time = now;
    if (e)
        jsi_pend_delivered(&c->pend, e, c->dseq, now);
    jsi_consumer_floor(c);
    jsi_msg_set_delivery(m, c, c->dseq, 1, jsi_consumer_pending(c));
    *out = m;
    /* r's pointers may be stale after the recount: use the copy's subject. */
    const char *subj = js_msg_subject(m);
    if (c->cfg.c.ack_policy == JS_ACK_NONE &&
        c->s->cfg.c.retention == JS_RETENTION_INTEREST &&
        jsi_consumers_all_done(c->s, seq, subj, strlen(subj)))
        jsi_ms_remove(c->s->ms, seq, 0);
    return 0;
}

int jsi_consumer_take(js_consumer *c, int64_t now, int64_t *wake,
                      size_t max_bytes, js_msg **out) {
    jsi_pent *e;
    *wake = INT64_MAX;
    while ((e = jsi_pend_due(&c->pend, now)) != NULL) {
        int rc = redeliver(c, e, now, max_bytes, out);
        if (rc != 1)
            return rc;
    }
    *wake = jsi_pend_next_deadline(&c->pend);
    return deliver_new(c, now, wake, max_bytes, out);
}

/* ---- pull calls ------------------------------------------------------------- */

static struct timespec abs_after(int64_t ns) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t t = (int64_t)ts.tv_sec * JSI_NS_PER_SEC + ts.tv_nsec + ns;
    ts.tv_sec = (time_t)(t / JSI_NS_PER_SEC);
    ts.tv_nsec = (long)(t % JSI_NS_PER_SEC);
    return ts;
}

static int check_fetch(js_consumer *c, size_t max_msgs, int64_t max_bytes,
                       int64_t timeout) {
    const js_consumer_config *k = &c->cfg.c;
    if (k->deliver_subject)
        return JSI_ERR(JS_EINVAL, 0, "consumer is push based");
    if (max_msgs == 0)
        return JSI_ERR(JS_EINVAL, 0, "max_msgs: must be > 0");
    if (k->max_batch > 0 && max_msgs > (uint64_t)k->max_batch)
        return JSI_ERR(JS_EINVAL, 0, "Exceeded MaxRequestBatch of %" PRId64,
                       k->max_batch);
    if (max_bytes < 0)
        return JSI_ERR(JS_EINVAL, 0, "max_bytes: must be >= 0");
    if (k->max_bytes > 0 && max_bytes > k->max_bytes)
        return JSI_ERR(JS_EINVAL, 0, "Exceeded MaxRequestMaxBytes of %" PRId64,
                       k->max_bytes);
    if (k->max_expires > 0 && (timeout < 0 || timeout > k->max_expires))
        return JSI_ERR(JS_EINVAL, 0, "Exceeded MaxRequestExpires of %" PRId64
                       "ns", k->max_expires);
    return 0;
}

/* Take what is available now, up to the limits. */
static int take_batch(js_consumer *c, js_msg **msgs, size_t max_msgs,
                      int64_t max_bytes, size_t *n, int64_t *wake) {
    size_t budget = max_bytes > 0 ? (size_t)max_bytes : 0;
    int rc = 0;
    while (*n < max_msgs) {
        js_msg *m;
        rc = jsi_consumer_take(c, jsi_stream_now(c->s), wake,
                               max_bytes > 0 ? budget : 0, &m);
        if (rc)
            break;
        msgs[(*n)++] = m;
        if (max_bytes > 0) {
            size_t sz = jsi_msg_size(m);
            budget = sz >= budget ? 0 : budget - sz;
            if (!budget)
                break;
        }
    }
    if (rc == JS_EMSG_SIZE && *n == 0)
        return JSI_ERR(JS_EMSG_SIZE, 0, "Message Size Exceeds MaxBytes");
    return *n || rc == JS_EMSG_SIZE ? 0 : rc;
}

/* Wait for a publish, an ack, a deadline or the timeout. Returns 0 to look
 * again, JS_ETIMEOUT when the time is up. */
static int wait_more(js_consumer *c, int64_t end_mono, int64_t wake) {
    int64_t left = end_mono == INT64_MAX ? INT64_MAX
                                         : end_mono - jsi_monotonic_ns();
    if (left <= 0)
        return JS_ETIMEOUT;
    if (wake != INT64_MAX)
        left = JSI_MIN(left, JSI_MAX(wake - jsi_stream_now(c->s),
                                     JSI_NS_PER_MS));
    if ((int64_t)c->waiting >= c->cfg.c.max_waiting && c->cfg.c.max_waiting > 0)
        return JSI_ERR(JS_EMAX_WAITING, 0, "Exceeded MaxWaiting");
    c->waiting++;
    if (left == INT64_MAX) {
        pthread_cond_wait(&c->cond, &c->s->mu);
    } else {
        struct timespec ts = abs_after(JSI_MIN(left, 3600 * JSI_NS_PER_SEC));
        pthread_cond_timedwait(&c->cond, &c->s->mu, &ts);
    }
    c->waiting--;
    if (c->gone || c->s->gone)
        return c->s->closed ? JSI_ERR(JS_EMISUSE, 0, "store closed")
                            : JSI_ERR(JS_ECONSUMER_NOT_FOUND, 10014,
                                      "consumer deleted");
    return 0;
}

static int fetch_locked(js_consumer *c, js_msg **msgs, size_t max_msgs,
                        const js_fetch_opts *o, size_t *n) {
    int64_t timeout = o->no_wait ? 0 : o->timeout;
    int64_t end = timeout < 0 ? INT64_MAX
                              : jsi_time_add(jsi_monotonic_ns(), timeout);
    int rc;
    c->last_active = jsi_stream_now(c->s);
    jsi_consumers_tick(c->s, c->last_active);
    for (;;) {
        int64_t wake = INT64_MAX;
        c->last_active = jsi_stream_now(c->s);
        rc = take_batch(c, msgs, max_msgs, o->max_bytes, n, &wake);
        if (rc != JS_ETIMEOUT || timeout == 0)
            break;
        if ((rc = wait_more(c, end, wake)) != 0)
            break;
    }
    if (rc == JS_ETIMEOUT)
        rc = JSI_ERR(JS_ETIMEOUT, 0, "no messages");
    int lrc = jsi_consumer_log_flush(c, 0);
    return rc ? rc : lrc;
}

static size_t fetch_opts_size(unsigned v) {
    return v == 1 ? sizeof(js_fetch_opts) : 0;
}

JS_API int js_consumer_fetch(js_consumer *c, js_msg **msgs, size_t max_msgs,
                             const js_fetch_opts *opts, size_t *n) {
    js_fetch_opts o = JS_FETCH_OPTS_INIT;
    size_t got = 0;
    if (n)
        *n = 0;
    int rc = jsi_consumer_enter(c);
    if (rc)
        return rc;
    if (opts && !fetch_opts_size(opts->version))
        rc = JSI_ERR(JS_EINVAL, 0, "opts: version %u unknown", opts->version);
    else if (!msgs)
        rc = JSI_ERR(JS_EINVAL, 0, "msgs: NULL");
    else if (!n) /* the caller could not tell how many it now owns */
        rc = JSI_ERR(JS_EINVAL, 0, "n: NULL");
    if (rc == 0 && opts)
        memcpy(&o, opts, fetch_opts_size(opts->version));
    if (rc == 0)
        rc = check_fetch(c, max_msgs, o.max_bytes, o.no_wait ? 0 : o.timeout);
    if (rc == 0)
        rc = fetch_locked(c, msgs, max_msgs, &o, &got);
    js_stream *s = c->s;
    pthread_mutex_unlock(&s->mu);
    jsi_evq_drain(jsi_stream_events(s));
    if (n)
        *n = got;
    return got && rc != JS_EIO && rc != JS_EFAILED ? 0 : rc;
}

JS_API int js_consumer_next(js_consumer *c, int64_t timeout, js_msg **out) {
    js_fetch_opts o = JS_FETCH_OPTS_INIT;
    size_t n = 0;
    if (!out) {
        jsi_err_clear();
        return JSI_ERR(JS_EINVAL, 0, "out: NULL");
    }
    *out = NULL;
    o.timeout = timeout;
    int rc = js_consumer_fetch(c, out, 1, &o, &n);
    if (rc == 0 && n == 0)
        rc = JSI_ERR(JS_ETIMEOUT, 0, "no messages");
    if (rc && *out) {
        /* Taken, but the state write after it failed: it is pending and
         * comes again after ack_wait. */
        js_msg_free(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- timers ------------------------------------------------------------------ */

static int inactive(const js_consumer *c, int64_t now) {
    int64_t t = c->cfg.c.inactive_threshold;
    return t > 0 && !c->waiting && !c->nsubs && now - c->last_active > t;
}

int64_t jsi_consumers_tick(js_stream *s, int64_t now) {
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < s->ncons;) {
        js_consumer *c = s->cons[i];
        if (inactive(c, now)) {
            jsi_consumer_delete_locked(s, c);
            continue; /* the list shifted */
        }
        if (c->nsubs)
            next = JSI_MIN(next, jsi_pend_next_deadline(&c->pend));
        else if (c->cfg.c.inactive_threshold > 0)
            next = JSI_MIN(next, jsi_time_add(c->last_active,
                                              c->cfg.c.inactive_threshold));
        i++;
    }
    return next;
}
