/*
 * events.c - see events.h.
 */
#include <inttypes.h>
#include <stdio.h>

#include "events.h"
#include "util.h"

static const char *const types[] = {
    [JS_EVENT_STREAM_CREATED] = "io.nats.jetstream.advisory.v1.stream_action",
    [JS_EVENT_STREAM_UPDATED] = "io.nats.jetstream.advisory.v1.stream_action",
    [JS_EVENT_STREAM_DELETED] = "io.nats.jetstream.advisory.v1.stream_action",
    [JS_EVENT_CONSUMER_CREATED] =
        "io.nats.jetstream.advisory.v1.consumer_action",
    [JS_EVENT_CONSUMER_UPDATED] =
        "io.nats.jetstream.advisory.v1.consumer_action",
    [JS_EVENT_CONSUMER_DELETED] =
        "io.nats.jetstream.advisory.v1.consumer_action",
    [JS_EVENT_MAX_DELIVERIES] = "io.nats.jetstream.advisory.v1.max_deliver",
    [JS_EVENT_MSG_TERMINATED] = "io.nats.jetstream.advisory.v1.terminated",
    [JS_EVENT_MSG_NAKED] = "io.nats.jetstream.advisory.v1.nak",
    [JS_EVENT_ACK_SAMPLE] = "io.nats.jetstream.metric.v1.consumer_ack",
};

static const char *const actions[] = {
    [JS_EVENT_STREAM_CREATED] = "create",   [JS_EVENT_STREAM_UPDATED] = "modify",
    [JS_EVENT_STREAM_DELETED] = "delete",   [JS_EVENT_CONSUMER_CREATED] = "create",
    [JS_EVENT_CONSUMER_UPDATED] = "modify", [JS_EVENT_CONSUMER_DELETED] = "delete",
};

void jsi_evq_init(jsi_evq *q) {
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
}

/* Each queued event owns one block holding its strings; the block is the
 * event's `id` pointer (the id is the first string). */
static void ev_release(js_event *e) { jsi_free((char *)e->id); }

void jsi_evq_free(jsi_evq *q) {
    for (size_t i = 0; i < q->n; i++)
        ev_release(&q->q[(q->head + i) % q->cap]);
    jsi_free(q->q);
    pthread_mutex_destroy(&q->mu);
}

void jsi_evq_set(jsi_evq *q, js_event_handler cb, void *ctx) {
    pthread_mutex_lock(&q->mu);
    q->cb = cb;
    q->ctx = ctx;
    pthread_mutex_unlock(&q->mu);
}

static size_t slen(const char *s) { return s ? strlen(s) + 1 : 0; }

static const char *put(char **p, const char *s) {
    if (!s)
        return NULL;
    const char *r = *p;
    *p = stpcpy(*p, s) + 1;
    return r;
}

/* A deep copy of ev whose strings live in one block. */
static int ev_copy(const js_event *ev, uint64_t id, int64_t now,
                   js_event *out) {
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%016" PRIx64, id);
    char *b = jsi_malloc(slen(idbuf) + slen(ev->stream) + slen(ev->consumer) +
                         slen(ev->reason));
    if (!b)
        return JS_ENOMEM;
    *out = *ev;
    out->version = 1;
    out->id = put(&b, idbuf);
    out->stream = put(&b, ev->stream);
    out->consumer = put(&b, ev->consumer);
    out->reason = put(&b, ev->reason);
    out->type = ev->kind > 0 && ev->kind <= JS_EVENT_ACK_SAMPLE
                    ? types[ev->kind] : "";
    out->action = ev->kind <= JS_EVENT_CONSUMER_DELETED && ev->kind > 0
                      ? actions[ev->kind] : NULL;
    if (!out->timestamp)
        out->timestamp = now;
    return 0;
}

static int grow(jsi_evq *q) {
    size_t nc = q->cap ? q->cap * 2 : 16;
    js_event *n = jsi_malloc(nc * sizeof *n);
    if (!n)
        return JS_ENOMEM;
    for (size_t i = 0; i < q->n; i++)
        n[i] = q->q[(q->head + i) % q->cap];
    jsi_free(q->q);
    q->q = n;
    q->cap = nc;
    q->head = 0;
    return 0;
}

void jsi_evq_emit(jsi_evq *q, const js_event *ev, int64_t now) {
    pthread_mutex_lock(&q->mu);
    if (!q->cb) {
        pthread_mutex_unlock(&q->mu);
        return;
    }
    if (q->n == JSI_EVQ_MAX) {
        ev_release(&q->q[q->head]);
        q->head = (q->head + 1) % q->cap;
        q->n--;
        q->dropped++;
    }
    js_event e;
    if ((q->n == q->cap && grow(q) != 0) ||
        ev_copy(ev, ++q->next_id, now, &e) != 0) {
        q->dropped++;
    } else {
        q->q[(q->head + q->n) % q->cap] = e;
        q->n++;
    }
    pthread_mutex_unlock(&q->mu);
}

int jsi_evq_drain(jsi_evq *q) {
    int done = 0;
    pthread_mutex_lock(&q->mu);
    if (q->draining) {
        pthread_mutex_unlock(&q->mu);
        return 0;
    }
    q->draining = 1;
    while (q->n) {
        js_event e = q->q[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
        js_event_handler cb = q->cb;
        void *ctx = q->ctx;
        pthread_mutex_unlock(&q->mu);
        if (cb) {
            cb(&e, ctx);
            done++;
        }
        ev_release(&e);
        pthread_mutex_lock(&q->mu);
    }
    q->draining = 0;
    pthread_mutex_unlock(&q->mu);
    return done;
}

int jsi_evq_pending(jsi_evq *q) {
    pthread_mutex_lock(&q->mu);
    int n = q->n != 0;
    pthread_mutex_unlock(&q->mu);
    return n;
}
