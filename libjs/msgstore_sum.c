/*
 * msgstore_sum.c - per-block subject summaries: how many live messages of
 * each subject every block holds, so that counting and filtered scans can
 * skip blocks without reading them.
 *
 * An append touches only the last block's summary and finds its pair
 * through the subject entry's hint, with no extra hash lookup. A subject
 * first seen in the last block gets a pair at the end (the unsorted
 * suffix); the block is sorted when it stops being the last one (or when a
 * checkpoint is written), so removals and counts elsewhere binary-search.
 *
 * Invariant: only the last block has an unsorted suffix, and each pair in
 * it is the one its entry's hint points at. Hints change only in
 * jsi_ms_sum_add, which only the last block receives.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "msgstore_int.h"
#include "stree.h"

static void pair_set(jsi_sum_pair *p, uint64_t id, uint32_t cnt) {
    p->id_lo = (uint32_t)id;
    p->id_hi = (uint32_t)(id >> 32);
    p->cnt = cnt;
}

static int pair_cmp(const void *a, const void *b) {
    uint64_t x = jsi_sum_id(a), y = jsi_sum_id(b);
    return x < y ? -1 : x > y;
}

/* The pair for id in the sorted part of b, or NULL. */
static jsi_sum_pair *sum_bsearch(const jsi_blk *b, uint64_t id) {
    size_t lo = 0, hi = b->nsorted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t m = jsi_sum_id(&b->sum[mid]);
        if (m == id)
            return &b->sum[mid];
        if (m < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static jsi_sum_pair *sum_find(const jsi_blk *b, const jsi_sidx_entry *e) {
    /* Ids are unique within a block, so a hint landing on e's id is right
     * whichever block it was set for. */
    if (e->hint < b->nsum && jsi_sum_id(&b->sum[e->hint]) == e->id)
        return &b->sum[e->hint];
    return sum_bsearch(b, e->id);
}

int jsi_ms_sum_reserve(jsi_blk *b) {
    if (b->nsum < b->sum_cap)
        return 0;
    if (b->sum_cap > UINT32_MAX / 2)
        return JS_ENOMEM;
    uint32_t ncap = b->sum_cap ? b->sum_cap * 2 : 8;
    jsi_sum_pair *n = jsi_realloc(b->sum, (size_t)ncap * sizeof *n);
    if (!n)
        return JS_ENOMEM;
    b->sum = n;
    b->sum_cap = ncap;
    return 0;
}

void jsi_ms_sum_add(jsi_blk *b, jsi_sidx_entry *e) {
    jsi_sum_pair *p = sum_find(b, e);
    if (!p) {
        p = &b->sum[b->nsum++];
        pair_set(p, e->id, 0);
    }
    e->hint = (uint32_t)(p - b->sum);
    p->cnt++;
}

void jsi_ms_sum_sub(jsi_blk *b, const jsi_sidx_entry *e) {
    jsi_sum_pair *p = sum_find(b, e);
    if (p && p->cnt)
        p->cnt--;
}

uint32_t jsi_ms_sum_get(const jsi_blk *b, const jsi_sidx_entry *e) {
    const jsi_sum_pair *p = sum_find(b, e);
    return p ? p->cnt : 0;
}

static int sum_sorted(const jsi_blk *b) {
    for (uint32_t i = 1; i < b->nsum; i++)
        if (jsi_sum_id(&b->sum[i - 1]) >= jsi_sum_id(&b->sum[i]))
            return 0;
    return 1;
}

void jsi_ms_sum_seal(jsi_blk *b, int shrink) {
    if (b->nsorted < b->nsum && !sum_sorted(b))
        qsort(b->sum, b->nsum, sizeof *b->sum, pair_cmp);
    uint32_t k = 0;
    for (uint32_t i = 0; i < b->nsum; i++)
        if (b->sum[i].cnt)
            b->sum[k++] = b->sum[i];
    b->nsum = b->nsorted = k;
    if (!shrink || b->sum_cap == k)
        return;
    if (k == 0) {
        jsi_free(b->sum);
        b->sum = NULL;
        b->sum_cap = 0;
        return;
    }
    jsi_sum_pair *n = jsi_realloc(b->sum, (size_t)k * sizeof *n);
    if (n) { /* else keep the larger array */
        b->sum = n;
        b->sum_cap = k;
    }
}

void jsi_ms_sum_clear(jsi_ms *ms) {
    for (size_t i = 0; i < ms->nblks; i++) {
        jsi_blk *b = ms->blks[i];
        b->nsum = b->nsorted = 0;
        if (i + 1 < ms->nblks) {
            jsi_free(b->sum);
            b->sum = NULL;
            b->sum_cap = 0;
        }
    }
}

int jsi_ms_ids_have(const uint64_t *ids, size_t n, uint64_t id) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] == id)
            return 1;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Add p's count to *total; 1 when the caller should stop (any). */
static int take(const jsi_sum_pair *p, const uint64_t *ids, size_t n,
                int any, uint64_t *total) {
    if (!p || !p->cnt || (ids && !jsi_ms_ids_have(ids, n, jsi_sum_id(p))))
        return 0;
    *total += p->cnt;
    return any;
}

uint64_t jsi_ms_sum_of(const jsi_blk *b, const uint64_t *ids, size_t n,
                       int any) {
    uint64_t total = 0;
    /* Walk the smaller of the two sorted sides, searching the other. */
    if (n < b->nsorted) {
        for (size_t i = 0; i < n; i++)
            if (take(sum_bsearch(b, ids[i]), NULL, 0, any, &total))
                return total;
    } else {
        for (uint32_t j = 0; j < b->nsorted; j++)
            if (take(&b->sum[j], ids, n, any, &total))
                return total;
    }
    for (uint32_t j = b->nsorted; j < b->nsum; j++)
        if (take(&b->sum[j], ids, n, any, &total))
            return total;
    return total;
}

/* ---- consistency (tests) ------------------------------------------------- */

/* Every id at most once in b, and the sorted part in order. */
static int check_blk(const jsi_blk *b) {
    for (uint32_t i = 1; i < b->nsorted; i++)
        if (jsi_sum_id(&b->sum[i - 1]) >= jsi_sum_id(&b->sum[i]))
            return JSI_ERR(JS_ECORRUPT, 0, "block %" PRIu64 ": summary "
                           "out of order at %u", b->no, i);
    if (b->nsum == 0)
        return 0;
    jsi_sum_pair *c = jsi_malloc((size_t)b->nsum * sizeof *c);
    if (!c)
        return JS_ENOMEM;
    memcpy(c, b->sum, (size_t)b->nsum * sizeof *c);
    qsort(c, b->nsum, sizeof *c, pair_cmp);
    int rc = 0;
    uint64_t total = 0;
    for (uint32_t i = 0; i < b->nsum; i++) {
        total += c[i].cnt;
        if (i && jsi_sum_id(&c[i - 1]) == jsi_sum_id(&c[i]))
            rc = JSI_ERR(JS_ECORRUPT, 0, "block %" PRIu64 ": subject id %"
                         PRIu64 " twice", b->no, jsi_sum_id(&c[i]));
    }
    jsi_free(c);
    if (rc == 0 && total != b->msgs)
        rc = JSI_ERR(JS_ECORRUPT, 0, "block %" PRIu64 ": summary counts %"
                     PRIu64 " messages, block %" PRIu64, b->no, total,
                     b->msgs);
    return rc;
}

int jsi_ms_sum_check(jsi_ms *ms) {
    for (size_t i = 0; i < ms->nblks; i++) {
        int rc = check_blk(ms->blks[i]);
        if (rc)
            return rc;
        if (i + 1 < ms->nblks && ms->blks[i]->nsorted != ms->blks[i]->nsum)
            return JSI_ERR(JS_ECORRUPT, 0, "block %" PRIu64 " is not the "
                           "last but has an unsorted summary",
                           ms->blks[i]->no);
    }
    size_t pos = 0;
    uint64_t all = 0;
    jsi_sidx_entry *e;
    while ((e = jsi_sidx_next(ms->sidx, &pos)) != NULL) {
        if (jsi_stree_find(ms->stree, e->subj, e->len) != e)
            return JSI_ERR(JS_ECORRUPT, 0, "subject %s is missing from "
                           "the ordered index", e->subj);
        uint64_t n = 0;
        for (size_t i = 0; i < ms->nblks; i++)
            n += jsi_ms_sum_get(ms->blks[i], e);
        if (n != e->count)
            return JSI_ERR(JS_ECORRUPT, 0, "subject %s (id %" PRIu64
                           "): %" PRIu64 " in the index, %" PRIu64
                           " in block summaries", e->subj, e->id, e->count, n);
        all += n;
    }
    if (jsi_stree_size(ms->stree) != jsi_sidx_size(ms->sidx))
        return JSI_ERR(JS_ECORRUPT, 0, "ordered index holds %zu subjects, "
                       "the hash %zu", jsi_stree_size(ms->stree),
                       jsi_sidx_size(ms->sidx));
    if (all != ms->msgs)
        return JSI_ERR(JS_ECORRUPT, 0, "subjects count %" PRIu64
                       " messages, the store %" PRIu64, all, ms->msgs);
    return 0;
}
