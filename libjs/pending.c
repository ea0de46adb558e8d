/*
 * pending.c - see pending.h. The hash is open addressing with linear
 * probing and backward-shift deletion, keyed by stream sequence (never 0).
 */
#include "pending.h"
#include "util.h"

#define MIN_CAP 16

void jsi_pend_init(jsi_pend *p) { memset(p, 0, sizeof *p); }

void jsi_pend_free(jsi_pend *p) {
    jsi_free(p->ents);
    jsi_free(p->order);
    jsi_free(p->heap);
    memset(p, 0, sizeof *p);
}

static size_t slot_of(const jsi_pend *p, uint64_t sseq) {
    uint64_t h = sseq * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 17) & (p->cap - 1);
}

jsi_pent *jsi_pend_get(jsi_pend *p, uint64_t sseq) {
    if (!p->cap || !sseq)
        return NULL;
    for (size_t i = slot_of(p, sseq);; i = (i + 1) & (p->cap - 1)) {
        if (p->ents[i].sseq == sseq)
            return &p->ents[i];
        if (p->ents[i].sseq == 0)
            return NULL;
    }
}

static int rehash(jsi_pend *p, size_t ncap) {
    jsi_pent *old = p->ents;
    size_t ocap = p->cap;
    jsi_pent *n = jsi_calloc(ncap, sizeof *n);
    if (!n)
        return JS_ENOMEM;
    p->ents = n;
    p->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].sseq)
            continue;
        size_t j = slot_of(p, old[i].sseq);
        while (n[j].sseq)
            j = (j + 1) & (ncap - 1);
        n[j] = old[i];
    }
    jsi_free(old);
    return 0;
}

/* Drop removed sequences at the front of `order`, and compact it when
 * more than half of it is holes. */
static void order_trim(jsi_pend *p) {
    while (p->olen && p->order[p->ohead] == 0) {
        p->ohead++;
        p->olen--;
    }
    if (p->olen == 0)
        p->ohead = 0;
    if (p->olen > 64 && p->n < p->olen / 2) {
        size_t k = 0;
        for (size_t i = 0; i < p->olen; i++)
            if (p->order[p->ohead + i])
                p->order[k++] = p->order[p->ohead + i];
        p->ohead = 0;
        p->olen = k;
    }
}

static int order_push(jsi_pend *p, uint64_t sseq) {
    if (p->ohead + p->olen == p->ocap) {
        if (p->ohead) {
            memmove(p->order, p->order + p->ohead, p->olen * sizeof *p->order);
            p->ohead = 0;
        }
        if (p->olen == p->ocap) {
            size_t nc = p->ocap ? p->ocap * 2 : MIN_CAP;
            uint64_t *o = jsi_realloc(p->order, nc * sizeof *o);
            if (!o)
                return JS_ENOMEM;
            p->order = o;
            p->ocap = nc;
        }
    }
    p->order[p->ohead + p->olen++] = sseq;
    return 0;
}

/* Index in `order` of sseq (binary search: order is ascending but for
 * holes, which are 0; probe around them). */
static size_t order_find(const jsi_pend *p, uint64_t sseq) {
    size_t lo = p->ohead, hi = p->ohead + p->olen;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2, m = mid;
        while (m < hi && p->order[m] == 0)
            m++;
        if (m == hi) {
            hi = mid;
            continue;
        }
        if (p->order[m] == sseq)
            return m;
        if (p->order[m] < sseq)
            lo = m + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

jsi_pent *jsi_pend_add(jsi_pend *p, uint64_t sseq) {
    if ((p->n + 1) * 4 > p->cap * 3 &&
        rehash(p, p->cap ? p->cap * 2 : MIN_CAP) != 0)
        return NULL;
    if (order_push(p, sseq) != 0)
        return NULL;
    size_t i = slot_of(p, sseq);
    while (p->ents[i].sseq)
        i = (i + 1) & (p->cap - 1);
    jsi_pent *e = &p->ents[i];
    memset(e, 0, sizeof *e);
    e->sseq = sseq;
    e->deadline = INT64_MAX;
    p->n++;
    return e;
}

int jsi_pend_del(jsi_pend *p, uint64_t sseq) {
    jsi_pent *e = jsi_pend_get(p, sseq);
    if (!e)
        return 0;
    if (e->count > 1)
        p->redelivered--;
    size_t k = order_find(p, sseq);
    if (k != SIZE_MAX)
        p->order[k] = 0;
    /* Backward-shift deletion keeps probe chains unbroken. */
    size_t i = (size_t)(e - p->ents), j = i;
    for (;;) {
        j = (j + 1) & (p->cap - 1);
        if (!p->ents[j].sseq)
            break;
        size_t home = slot_of(p, p->ents[j].sseq);
        if ((j > i && (home <= i || home > j)) ||
            (j < i && (home <= i && home > j))) {
            p->ents[i] = p->ents[j];
            i = j;
        }
    }
    p->ents[i].sseq = 0;
    p->n--;
    order_trim(p);
    return 1;
}

static void heap_swap(jsi_pend *p, size_t a, size_t b) {
    struct jsi_pheap t = p->heap[a];
    p->heap[a] = p->heap[b];
    p->heap[b] = t;
}

static void heap_up(jsi_pend *p, size_t i) {
    while (i && p->heap[(i - 1) / 2].deadline > p->heap[i].deadline) {
        heap_swap(p, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(jsi_pend *p, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < p->hn && p->heap[l].deadline < p->heap[m].deadline)
            m = l;
        if (r < p->hn && p->heap[r].deadline < p->heap[m].deadline)
            m = r;
        if (m == i)
            return;
        heap_swap(p, i, m);
        i = m;
    }
}

static void heap_pop(jsi_pend *p) {
    p->heap[0] = p->heap[--p->hn];
    if (p->hn)
        heap_down(p, 0);
}

/* 1 if the heap's top item still describes its entry's deadline. */
static int top_live(jsi_pend *p) {
    jsi_pent *e = jsi_pend_get(p, p->heap[0].sseq);
    return e && e->gen == p->heap[0].gen && e->deadline == p->heap[0].deadline;
}

/* Rebuild the heap from the live entries when stale items dominate. */
static void heap_compact(jsi_pend *p) {
    size_t k = 0;
    for (size_t i = 0; i < p->cap; i++) {
        jsi_pent *e = &p->ents[i];
        if (e->sseq && e->deadline != INT64_MAX)
            p->heap[k++] = (struct jsi_pheap){e->deadline, e->sseq, e->gen};
    }
    p->hn = k;
    for (size_t i = k / 2; i-- > 0;)
        heap_down(p, i);
}

int jsi_pend_schedule(jsi_pend *p, jsi_pent *e, int64_t deadline) {
    /* Room first: on failure the entry keeps its old deadline (and its
     * heap item), so it is not left scheduled with nothing to fire it. */
    if (deadline != INT64_MAX && p->hn == p->hcap) {
        size_t nc = p->hcap ? p->hcap * 2 : MIN_CAP;
        struct jsi_pheap *h = jsi_realloc(p->heap, nc * sizeof *h);
        if (!h)
            return JS_ENOMEM;
        p->heap = h;
        p->hcap = nc;
    }
    e->gen++;
    e->deadline = deadline;
    if (deadline == INT64_MAX)
        return 0;
    if (p->hn > 64 && p->hn > 2 * p->n)
        heap_compact(p);
    p->heap[p->hn] = (struct jsi_pheap){deadline, e->sseq, e->gen};
    heap_up(p, p->hn++);
    return 0;
}

void jsi_pend_delivered(jsi_pend *p, jsi_pent *e, uint64_t dseq,
                        int64_t now) {
    if (++e->count == 2)
        p->redelivered++;
    e->dseq = dseq;
    e->delivered = now;
}

jsi_pent *jsi_pend_first(jsi_pend *p) {
    order_trim(p);
    return p->olen ? jsi_pend_get(p, p->order[p->ohead]) : NULL;
}

int64_t jsi_pend_next_deadline(jsi_pend *p) {
    while (p->hn && !top_live(p))
        heap_pop(p);
    return p->hn ? p->heap[0].deadline : INT64_MAX;
}

jsi_pent *jsi_pend_due(jsi_pend *p, int64_t now) {
    if (jsi_pend_next_deadline(p) > now)
        return NULL;
    return jsi_pend_get(p, p->heap[0].sseq);
}

jsi_pent *jsi_pend_next(jsi_pend *p, size_t *pos) {
    while (*pos < p->olen) {
        uint64_t s = p->order[p->ohead + (*pos)++];
        if (s)
            return jsi_pend_get(p, s);
    }
    return NULL;
}
