/*
 * events.h - the store's event queue: advisories (consumer created, max
 * deliveries, ...) are queued where they happen, under whatever lock is
 * held, and delivered to the application's callback later, with no lock
 * held, one at a time and in order.
 */
#ifndef JSI_EVENTS_H
#define JSI_EVENTS_H

#include <pthread.h>

#include "jetstream.h"

#define JSI_EVQ_MAX 65536 /* queued events; beyond this the oldest go */

typedef struct jsi_evq {
    pthread_mutex_t mu;
    js_event_handler cb;
    void *ctx;
    js_event *q;           /* ring; strings owned (one block per event) */
    size_t head, n, cap;
    int draining;          /* a thread is calling the callback */
    uint64_t next_id;
    uint64_t dropped;
} jsi_evq;

void jsi_evq_init(jsi_evq *q);
void jsi_evq_free(jsi_evq *q);
void jsi_evq_set(jsi_evq *q, js_event_handler cb, void *ctx);
/* Queue a copy of *ev (strings copied; type, action and id filled in from
 * kind). Nothing is queued while no callback is registered. Never fails
 * the caller: an event that cannot be queued is counted as dropped. */
void jsi_evq_emit(jsi_evq *q, const js_event *ev, int64_t now);
/* Deliver queued events in this thread unless another thread is already
 * delivering. Call with no library lock held. Returns how many. */
int jsi_evq_drain(jsi_evq *q);
/* 1 if events wait. */
int jsi_evq_pending(jsi_evq *q);

#endif
