/*
 * dispatch.c - push delivery: subscriptions on push consumers, the
 * js_dispatch() pump that hands due messages to their callbacks with no
 * lock held, and the optional dispatcher threads that run it.
 */
#include <errno.h>
#include <time.h>

#include "consumer.h"
#include "events.h"
#include "store.h"

#define ROUND_MAX 64 /* messages per consumer per round: others get a turn */
#define THREAD_WAIT (100 * JSI_NS_PER_MS)

void jsi_dispatch_wake(js_store *st) {
    pthread_mutex_lock(&st->disp_mu);
    st->disp_gen++;
    pthread_cond_broadcast(&st->disp_cond);
    pthread_mutex_unlock(&st->disp_mu);
}

/* ---- subscriptions ---------------------------------------------------------- */

JS_API int js_consumer_subscribe(js_consumer *c, js_msg_handler cb, void *ctx,
                                 js_sub **out) {
    return jsi_consumer_subscribe(c, cb, ctx, 0, out);
}

int jsi_consumer_subscribe(js_consumer *c, js_msg_handler cb, void *ctx,
                           int mark, js_sub **out) {
    int rc = jsi_consumer_enter(c);
    if (rc)
        return rc;
    js_stream *s = c->s;
    js_sub *sub = NULL;
    if (!cb || !out)
        rc = JSI_ERR(JS_EINVAL, 0, "cb and out are required");
    else if (!c->cfg.c.deliver_subject)
        rc = JSI_ERR(JS_EINVAL, 0, "consumer %s is pull based (no "
                     "deliver_subject)", c->name);
    else if (c->nsubs && !c->cfg.c.deliver_group)
        rc = JSI_ERR(JS_EBUSY, 10105, "consumer %s is already bound to a "
                     "subscription (set deliver_group to share it)", c->name);
    if (rc == 0 && c->nsubs == c->subs_cap) {
        size_t nc = c->subs_cap ? c->subs_cap * 2 : 2;
        js_sub **v = jsi_realloc(c->subs, nc * sizeof *v);
        if (!v)
            rc = JSI_ERR(JS_ENOMEM, 0, "subscribe");
        else {
            c->subs = v;
            c->subs_cap = nc;
        }
    }
    if (rc == 0 && !(sub = jsi_calloc(1, sizeof *sub)))
        rc = JSI_ERR(JS_ENOMEM, 0, "subscribe");
    if (rc == 0) {
        sub->magic = JSI_SUB_MAGIC;
        sub->c = c;
        sub->cb = cb;
        sub->ctx = ctx;
        sub->mark = mark;
        jsi_consumer_ref(c);
        c->subs[c->nsubs++] = sub;
        c->last_active = jsi_stream_now(s);
        *out = sub;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc == 0)
        jsi_dispatch_wake(s->store);
    return rc;
}

static void sub_detach(js_consumer *c, js_sub *sub) {
    for (size_t i = 0; i < c->nsubs; i++)
        if (c->subs[i] == sub) {
            memmove(&c->subs[i], &c->subs[i + 1],
                    (c->nsubs - i - 1) * sizeof *c->subs);
            c->nsubs--;
            return;
        }
}

static void sub_free(js_sub *sub) {
    js_consumer *c = sub->c;
    sub->magic = 0;
    jsi_free(sub);
    jsi_consumer_unref(c);
}

/* Only a callback executing now is waited for (in another thread): one
 * merely queued in a dispatch round is dropped by that round, which may be
 * the very round whose callback is calling this. */
JS_API int js_sub_unsubscribe(js_sub *sub) {
    jsi_err_clear();
    if (!sub)
        return 0;
    if (sub->magic != JSI_SUB_MAGIC)
        return JSI_ERR(JS_EMISUSE, 0, "not a subscription");
    js_consumer *c = sub->c;
    js_stream *s = c->s;
    pthread_mutex_lock(&s->mu);
    sub->gone = 1;
    sub_detach(c, sub);
    while (sub->running)
        pthread_cond_wait(&c->cond, &s->mu);
    c->last_active = jsi_stream_now(s);
    int later = sub->queued != 0;
    sub->orphan = later;
    pthread_mutex_unlock(&s->mu);
    if (!later)
        sub_free(sub);
    return 0;
}

/* ---- one round over a stream -------------------------------------------------- */

typedef struct delivery {
    js_sub *sub;
    js_msg *msg;
} delivery;

typedef struct round {
    delivery *v;
    size_t n, cap;
} round;

static int round_push(round *r, js_sub *sub, js_msg *m) {
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 64;
        delivery *v = jsi_realloc(r->v, nc * sizeof *v);
        if (!v)
            return JS_ENOMEM;
        r->v = v;
        r->cap = nc;
    }
    r->v[r->n++] = (delivery){sub, m};
    return 0;
}

/* rate_limit_bps: a token bucket of one second's bytes. 1 if a message
 * may go now, else 0 and *wake gets when it may. */
static int rate_ok(js_consumer *c, int64_t now, int64_t *wake) {
    uint64_t bps = c->cfg.c.rate_limit_bps;
    if (!bps)
        return 1;
    double cap = (double)bps / 8.0;
    if (!c->tokens_at)
        c->tokens = cap;
    else
        c->tokens += (double)(now - c->tokens_at) * cap / 1e9;
    c->tokens = c->tokens > cap ? cap : c->tokens;
    c->tokens_at = now;
    if (c->tokens > 0)
        return 1;
    *wake = JSI_MIN(*wake, now + (int64_t)(-c->tokens * 1e9 / cap) + 1);
    return 0;
}

/* Nothing to deliver now: subscriptions that asked to hear of it get one
 * NULL message. */
static void mark_idle(js_consumer *c, round *r) {
    for (size_t i = 0; i < c->nsubs; i++) {
        js_sub *sub = c->subs[i];
        if (sub->mark && round_push(r, sub, NULL) == 0) {
            sub->mark = 0;
            sub->queued++;
        }
    }
}

static void take_for_subs(js_consumer *c, int64_t now, round *r,
                          int64_t *next) {
    for (int k = 0; k < ROUND_MAX && c->nsubs; k++) {
        int64_t wake = INT64_MAX;
        js_msg *m;
        if (!rate_ok(c, now, next))
            return;
        int rc = jsi_consumer_take(c, now, &wake, 0, &m);
        *next = JSI_MIN(*next, wake);
        if (rc == JS_ETIMEOUT)
            mark_idle(c, r);
        if (rc)
            return;
        js_sub *sub = c->subs[c->rr++ % c->nsubs];
        if (round_push(r, sub, m) != 0) {
            js_msg_free(m); /* redelivered after ack_wait */
            return;
        }
        sub->queued++;
        if (c->cfg.c.rate_limit_bps)
            c->tokens -= (double)jsi_msg_size(m);
    }
}

/* Under s->mu: a delivery to sub is over (called: its callback ran).
 * Returns sub if it is now to be freed. */
static js_sub *sub_settle(js_sub *sub, int called) {
    if (called && --sub->running == 0)
        pthread_cond_broadcast(&sub->c->cond);
    sub->queued--;
    return sub->orphan && sub->queued == 0 ? sub : NULL;
}

/* Call the round's callbacks with no lock held, skipping subscriptions
 * unsubscribed since the round was taken (their messages are redelivered
 * after ack_wait). One lock hold between callbacks settles the previous
 * delivery and checks the next. Returns the callbacks made. */
static int hand_over(js_stream *s, round *r) {
    js_sub *prev = NULL;
    int prev_called = 0, made = 0;
    for (size_t i = 0; i <= r->n; i++) {
        js_sub *sub = i < r->n ? r->v[i].sub : NULL, *dead = NULL;
        int call = 0;
        if (!prev && !sub)
            break;
        pthread_mutex_lock(&s->mu);
        if (prev)
            dead = sub_settle(prev, prev_called);
        if (sub && (call = !sub->gone))
            sub->running++;
        pthread_mutex_unlock(&s->mu);
        if (dead)
            sub_free(dead);
        if (call) {
            sub->cb(sub->c, r->v[i].msg, sub->ctx);
            made++;
        } else if (sub) {
            js_msg_free(r->v[i].msg);
        }
        prev = sub;
        prev_called = call;
    }
    return made;
}

/* Release the consumers this round delivered for (s->mu held). */
static void round_done(js_stream *s, js_consumer **mine, size_t n) {
    int again = 0;
    for (size_t i = 0; i < n; i++) {
        again |= mine[i]->dispatch_skipped;
        mine[i]->dispatching = mine[i]->dispatch_skipped = 0;
        jsi_consumer_unref(mine[i]);
    }
    if (again) /* a round that skipped them may have gone to sleep */
        jsi_dispatch_wake(s->store);
}

static int stream_round(js_stream *s, int64_t *next) {
    round r = {0};
    pthread_mutex_lock(&s->mu);
    if (s->gone) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    int64_t now = jsi_stream_now(s);
    *next = JSI_MIN(*next, jsi_consumers_tick(s, now));
    /* One round at a time delivers a consumer's messages, so each
     * subscription's callbacks run one at a time and in order. */
    js_consumer **mine = s->ncons ? jsi_malloc(s->ncons * sizeof *mine) : NULL;
    size_t nmine = 0;
    for (size_t i = 0; mine && i < s->ncons; i++) {
        js_consumer *c = s->cons[i];
        if (!c->nsubs)
            continue;
        if (c->dispatching) {
            c->dispatch_skipped = 1;
            continue;
        }
        c->dispatching = 1;
        jsi_consumer_ref(c);
        mine[nmine++] = c;
    }
    for (size_t i = 0; i < nmine; i++) {
        js_consumer *c = mine[i];
        if (c->gone)
            continue;
        take_for_subs(c, now, &r, next);
        jsi_consumer_log_flush(c, 0); /* may release the lock */
    }
    pthread_mutex_unlock(&s->mu);
    int made = hand_over(s, &r);
    jsi_free(r.v);
    pthread_mutex_lock(&s->mu);
    round_done(s, mine, nmine);
    pthread_mutex_unlock(&s->mu);
    jsi_free(mine);
    return made;
}

/* One pass over every stream; returns callbacks made, or JS_ENOMEM. */
static int store_round(js_store *st, int64_t *next) {
    pthread_rwlock_rdlock(&st->lock);
    size_t n = st->closed ? 0 : st->nstreams;
    js_stream **v = n ? jsi_malloc(n * sizeof *v) : NULL;
    if (n && !v) {
        pthread_rwlock_unlock(&st->lock);
        return JSI_ERR(JS_ENOMEM, 0, "dispatch");
    }
    for (size_t i = 0; i < n; i++) {
        v[i] = st->streams[i];
        jsi_stream_ref(v[i]);
    }
    pthread_rwlock_unlock(&st->lock);
    int done = 0;
    for (size_t i = 0; i < n; i++) {
        done += stream_round(v[i], next);
        jsi_stream_unref(v[i]);
    }
    jsi_free(v);
    return done;
}

static void wait_work(js_store *st, uint64_t gen, int64_t ns) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t t = (int64_t)ts.tv_sec * JSI_NS_PER_SEC + ts.tv_nsec + ns;
    ts.tv_sec = (time_t)(t / JSI_NS_PER_SEC);
    ts.tv_nsec = (long)(t % JSI_NS_PER_SEC);
    pthread_mutex_lock(&st->disp_mu);
    if (st->disp_gen == gen && !st->disp_stop)
        pthread_cond_timedwait(&st->disp_cond, &st->disp_mu, &ts);
    pthread_mutex_unlock(&st->disp_mu);
}

JS_API int js_dispatch(js_store *st, int64_t timeout) {
    int rc = jsi_store_enter(st);
    if (rc)
        return rc;
    int64_t end = timeout < 0 ? INT64_MAX
                              : jsi_time_add(jsi_monotonic_ns(), timeout);
    for (;;) {
        pthread_mutex_lock(&st->disp_mu);
        uint64_t gen = st->disp_gen;
        int stop = st->disp_stop;
        pthread_mutex_unlock(&st->disp_mu);
        int64_t next = INT64_MAX;
        int n = store_round(st, &next);
        if (n < 0)
            return n;
        n += jsi_evq_drain(&st->events);
        int64_t left = end == INT64_MAX ? INT64_MAX : end - jsi_monotonic_ns();
        if (n > 0 || timeout == 0 || left <= 0 || stop || st->closed)
            return n;
        if (next != INT64_MAX)
            left = JSI_MIN(left, JSI_MAX(next - st->clock(st->clock_ctx),
                                         JSI_NS_PER_MS));
        wait_work(st, gen, JSI_MIN(left, 3600 * JSI_NS_PER_SEC));
    }
}

/* ---- dispatcher threads --------------------------------------------------------- */

static void *dispatcher_main(void *arg) {
    js_store *st = arg;
    for (;;) {
        pthread_mutex_lock(&st->disp_mu);
        int stop = st->disp_stop;
        pthread_mutex_unlock(&st->disp_mu);
        if (stop)
            return NULL;
        js_dispatch(st, THREAD_WAIT);
    }
}

JS_API int js_dispatcher_start(js_store *st, unsigned threads) {
    int rc = jsi_store_enter(st);
    if (rc)
        return rc;
    if (threads < 1 || threads > 64)
        return JSI_ERR(JS_EINVAL, 0, "threads: must be 1..64");
    pthread_mutex_lock(&st->disp_ctl);
    if (st->ndisp) {
        pthread_mutex_unlock(&st->disp_ctl);
        return JSI_ERR(JS_EBUSY, 0, "dispatcher already running");
    }
    if (!(st->disp_threads = jsi_calloc(threads, sizeof(pthread_t))))
        rc = JSI_ERR(JS_ENOMEM, 0, "dispatcher");
    for (unsigned i = 0; rc == 0 && i < threads; i++) {
        if (pthread_create(&st->disp_threads[i], NULL, dispatcher_main, st)) {
            rc = JSI_ERR(JS_ENOMEM, 0, "dispatcher: cannot start a thread");
            break;
        }
        st->ndisp++;
    }
    pthread_mutex_unlock(&st->disp_ctl);
    if (rc && st->ndisp)
        js_dispatcher_stop(st);
    return rc;
}

int jsi_dispatch_on_own_thread(js_store *st) {
    int own = 0;
    pthread_mutex_lock(&st->disp_ctl);
    for (unsigned i = 0; i < st->ndisp; i++)
        own |= pthread_equal(st->disp_threads[i], pthread_self());
    pthread_mutex_unlock(&st->disp_ctl);
    return own;
}

JS_API int js_dispatcher_stop(js_store *st) {
    jsi_err_clear();
    if (!st || st->magic != JSI_STORE_MAGIC)
        return JSI_ERR(JS_EMISUSE, 0, "not a store handle");
    if (jsi_dispatch_on_own_thread(st))
        return JSI_ERR(JS_EMISUSE, 0, "called from a dispatcher thread "
                       "(a callback)");
    pthread_mutex_lock(&st->disp_ctl);
    pthread_mutex_lock(&st->disp_mu);
    st->disp_stop = 1;
    pthread_cond_broadcast(&st->disp_cond);
    pthread_mutex_unlock(&st->disp_mu);
    for (unsigned i = 0; i < st->ndisp; i++)
        pthread_join(st->disp_threads[i], NULL);
    jsi_free(st->disp_threads);
    st->disp_threads = NULL;
    st->ndisp = 0;
    pthread_mutex_lock(&st->disp_mu);
    st->disp_stop = 0;
    pthread_mutex_unlock(&st->disp_mu);
    pthread_mutex_unlock(&st->disp_ctl);
    return 0;
}

JS_API int js_events_set(js_store *st, js_event_handler cb, void *ctx) {
    int rc = jsi_store_enter(st);
    if (rc)
        return rc;
    jsi_evq_set(&st->events, cb, ctx);
    return 0;
}
