/*
 * msgstore_filter.c - reads by subject filter across blocks: exact counts
 * (jsi_ms_count) and the next matching message (jsi_ms_next_multi). Both
 * answer from the subject index and the per-block summaries
 * (msgstore_sum.c), so a block holding no matching message is never read,
 * and a count reads at most the block holding its start.
 *
 * Wildcard filters map to subject ids through a small cache (jsi_fcache)
 * kept up to date as subjects are created, so a consumer stepping through
 * a stream with many subjects does not walk the whole index per message.
 */
#include <stdlib.h>

#include "msgstore_int.h"

/* ---- filters -------------------------------------------------------------- */

static int all_subjects(const char *const *f, size_t nf) {
    for (size_t i = 0; i < nf; i++)
        if (jsi_ms_filter_is_all(f[i]))
            return 1;
    return nf == 0;
}

static int is_wild(const char *f) {
    return jsi_subject_has_wildcard(f, strlen(f));
}

static int any_wild(const char *const *f, size_t nf) {
    for (size_t i = 0; i < nf; i++)
        if (is_wild(f[i]))
            return 1;
    return 0;
}

/* 1 if subj matches one of the filters (only the wildcard ones: wild). */
static int matches(const char *const *f, size_t nf, int wild,
                   const char *subj, size_t slen) {
    for (size_t i = 0; i < nf; i++)
        if (jsi_subject_match(f[i], strlen(f[i]), subj, slen) &&
            (!wild || is_wild(f[i])))
            return 1;
    return 0;
}

typedef struct idvec {
    uint64_t *v;
    size_t n, cap;
} idvec;

static int idvec_push(idvec *x, uint64_t id) {
    if (x->n == x->cap) {
        size_t ncap = x->cap ? x->cap * 2 : 16;
        uint64_t *n = jsi_realloc(x->v, ncap * sizeof *n);
        if (!n)
            return JS_ENOMEM;
        x->v = n;
        x->cap = ncap;
    }
    x->v[x->n++] = id;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- the filter cache ------------------------------------------------------ */

static void fcache_drop(jsi_fcache *c) {
    for (size_t i = 0; c->filters && i < c->nf; i++)
        jsi_free(c->filters[i]);
    jsi_free(c->filters);
    jsi_free(c->ids);
    memset(c, 0, sizeof *c);
}

static int fcache_same(const jsi_fcache *c, const char *const *f, size_t nf) {
    if (!c->filters || c->nf != nf)
        return 0;
    for (size_t i = 0; i < nf; i++)
        if (strcmp(c->filters[i], f[i]) != 0)
            return 0;
    return 1;
}

static int fcache_set(jsi_fcache *c, const char *const *f, size_t nf) {
    fcache_drop(c);
    c->filters = jsi_calloc(nf, sizeof *c->filters);
    if (!c->filters)
        return JS_ENOMEM;
    c->nf = nf;
    for (size_t i = 0; i < nf; i++)
        if (!(c->filters[i] = jsi_strdup(f[i]))) {
            fcache_drop(c);
            return JS_ENOMEM;
        }
    c->stale = 1;
    return 0;
}

static int push_id(jsi_sidx_entry *e, void *ctx) {
    return idvec_push(ctx, e->id);
}

/* Fill c with the ids of every subject its filters match, or make it
 * dense if that is most of them. */
static int fcache_build(jsi_ms *ms, jsi_fcache *c) {
    idvec x = {c->ids, 0, c->cap};
    c->stale = 1;
    int rc = jsi_ms_subject_each(ms, (const char *const *)c->filters, c->nf,
                                 push_id, &x);
    c->ids = x.v;
    c->cap = x.cap;
    c->n = x.n;
    if (rc)
        return rc;
    c->built_s = jsi_sidx_size(ms->sidx);
    c->dense = c->n > 64 && c->n > c->built_s / 2;
    if (c->dense) {
        jsi_free(c->ids);
        c->ids = NULL;
        c->n = c->cap = 0;
    } else if (c->n) {
        qsort(c->ids, c->n, sizeof *c->ids, cmp_u64);
    }
    c->stale = 0;
    return 0;
}

/* Ids of removed subjects pile up under churn: rebuild once they could
 * outnumber the live ones. A dense set is looked at again when the index
 * has doubled or halved. */
static int fcache_outdated(const jsi_ms *ms, const jsi_fcache *c) {
    size_t s = jsi_sidx_size(ms->sidx);
    if (c->stale)
        return 1;
    if (!c->dense)
        return c->n > 2 * s + 64;
    return s > 2 * c->built_s + 64 || 2 * s + 64 < c->built_s;
}

/* The cache slot for these filters, built if needed (LRU replacement). */
static int fcache_get(jsi_ms *ms, const char *const *f, size_t nf,
                      jsi_fcache **out) {
    jsi_fcache *c = NULL, *victim = &ms->fcache[0];
    for (size_t i = 0; i < JSI_FCACHE_SLOTS && !c; i++) {
        jsi_fcache *k = &ms->fcache[i];
        if (fcache_same(k, f, nf))
            c = k;
        else if (!k->filters || (victim->filters && k->tick < victim->tick))
            victim = k;
    }
    if (!c && fcache_set(victim, f, nf) != 0)
        return JSI_ERR(JS_ENOMEM, 0, "filter cache");
    if (!c)
        c = victim;
    c->tick = ++ms->fcache_tick;
    if (fcache_outdated(ms, c) && fcache_build(ms, c) != 0)
        return JSI_ERR(JS_ENOMEM, 0, "filter cache");
    *out = c;
    return 0;
}

void jsi_ms_subject_new(jsi_ms *ms, jsi_sidx_entry *e) {
    e->id = ms->next_sid++;
    for (size_t i = 0; i < JSI_FCACHE_SLOTS; i++) {
        jsi_fcache *c = &ms->fcache[i];
        if (!c->filters || c->stale || c->dense ||
            !matches((const char *const *)c->filters, c->nf, 0, e->subj,
                     e->len))
            continue;
        idvec x = {c->ids, c->n, c->cap};
        if (idvec_push(&x, e->id) != 0) {
            c->stale = 1; /* rebuilt at its next use */
            continue;
        }
        c->ids = x.v;
        c->n = x.n;
        c->cap = x.cap;
    }
}

void jsi_ms_fcache_reset(jsi_ms *ms) {
    for (size_t i = 0; i < JSI_FCACHE_SLOTS; i++) {
        ms->fcache[i].n = 0;
        ms->fcache[i].stale = 1;
    }
}

void jsi_ms_fcache_free(jsi_ms *ms) {
    for (size_t i = 0; i < JSI_FCACHE_SLOTS; i++)
        fcache_drop(&ms->fcache[i]);
}

/* ---- reading a loaded block ------------------------------------------------ */

/* The next MSG record in loaded block b with a sequence in [*q, to] that is
 * neither removed nor lost and has a sound header; *q moves past it. NULL
 * when there is none. */
static const uint8_t *next_rec(jsi_ms *ms, const jsi_blk *b, uint64_t *q,
                               uint64_t to, jsi_rechdr *h) {
    while (*q <= to) {
        uint64_t s = jsi_rs_next_gap(&ms->deleted, *q);
        if (s > to)
            break;
        *q = s + 1;
        uint64_t k = s - b->lo;
        if (k >= b->noffs || b->offs[k] == JSI_NO_OFF ||
            jsi_rs_contains(&ms->lost, s))
            continue;
        const uint8_t *p = b->buf + b->offs[k];
        if (jsi_rec_parse_hdr(p, (size_t)(b->size - b->offs[k]), h) == 1 &&
            h->type == JSI_REC_MSG)
            return p;
    }
    return NULL;
}

/* ---- counting ----------------------------------------------------------- */

/* Live messages >= s (s in [first, last]): whole blocks by their counts;
 * in the block holding s, its span less what was removed or lost. */
static uint64_t count_all(jsi_ms *ms, uint64_t s) {
    int i = jsi_ms_blk_find(ms, s);
    uint64_t n = 0;
    size_t k = 0;
    if (i >= 0) {
        jsi_blk *b = ms->blks[i];
        if (s <= b->hi)
            n = (b->hi - s + 1) - jsi_rs_count_in(&ms->deleted, s, b->hi) -
                jsi_rs_count_in(&ms->lost, s, b->hi);
        k = (size_t)i + 1;
    }
    for (; k < ms->nblks; k++)
        n += ms->blks[k]->msgs;
    return n;
}

/* A subject's messages are all >= s, all below it, or on both sides
 * ("partial"). first may be a lower bound and last an upper bound (stale
 * after removals), which can only turn a whole answer into "partial". */
static int classify(const jsi_sidx_entry *e, uint64_t s, uint64_t *total,
                    idvec *partial) {
    if (e->first >= s)
        *total += e->count;
    else if (e->last >= s)
        return idvec_push(partial, e->id);
    return 0;
}

typedef struct classify_walk {
    const char *const *f;
    size_t nf;
    uint64_t s, *total;
    idvec *partial;
} classify_walk;

/* The literal filters were looked up already. */
static int classify_wild(jsi_sidx_entry *e, void *ctx) {
    classify_walk *w = ctx;
    if (!matches(w->f, w->nf, 1, e->subj, e->len))
        return 0;
    return classify(e, w->s, w->total, w->partial);
}

/* Literal filters by lookup, wildcard ones by one walk of the index. */
static int classify_all(jsi_ms *ms, const char *const *f, size_t nf,
                        uint64_t s, uint64_t *total, idvec *partial) {
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nf; i++) {
        if (is_wild(f[i]))
            continue;
        jsi_sidx_entry *e = jsi_sidx_get(ms->sidx, f[i], strlen(f[i]));
        if (e)
            rc = classify(e, s, total, partial);
    }
    if (rc || !any_wild(f, nf))
        return rc;
    classify_walk w = {f, nf, s, total, partial};
    return jsi_ms_subject_each(ms, f, nf, classify_wild, &w);
}

/* Messages >= s in block b whose subject id is in ids (sorted): read. */
static int count_in_blk(jsi_ms *ms, jsi_blk *b, uint64_t s,
                        const idvec *ids, uint64_t *total) {
    int rc = jsi_ms_blk_load(ms, b);
    if (rc)
        return rc;
    const uint8_t *p;
    jsi_rechdr h;
    uint64_t q = s;
    while ((p = next_rec(ms, b, &q, b->hi, &h)) != NULL) {
        jsi_sidx_entry *e = jsi_sidx_get(
            ms->sidx, (const char *)p + JSI_REC_HDR_LEN, h.subj_len);
        if (e && jsi_ms_ids_have(ids->v, ids->n, e->id))
            (*total)++;
    }
    return 0;
}

/* The messages >= s of the partial subjects: blocks after the one holding
 * s from their summaries; that block by reading it, unless s is at its
 * start or it holds none of them. */
static int count_partial(jsi_ms *ms, uint64_t s, idvec *ids,
                         uint64_t *total) {
    qsort(ids->v, ids->n, sizeof *ids->v, cmp_u64);
    int i = jsi_ms_blk_find(ms, s);
    size_t k = 0;
    if (i >= 0) {
        jsi_blk *b = ms->blks[i];
        if (s <= b->lo) {
            *total += jsi_ms_sum_of(b, ids->v, ids->n, 0);
        } else if (s <= b->hi && jsi_ms_sum_of(b, ids->v, ids->n, 1)) {
            int rc = count_in_blk(ms, b, s, ids, total);
            if (rc)
                return rc;
        }
        k = (size_t)i + 1;
    }
    for (; k < ms->nblks; k++)
        *total += jsi_ms_sum_of(ms->blks[k], ids->v, ids->n, 0);
    return 0;
}

int jsi_ms_count(jsi_ms *ms, const char *const *filters, size_t nfilters,
                 uint64_t start, uint64_t *out) {
    uint64_t s = JSI_MAX(start, ms->first), total = 0;
    *out = 0;
    if (ms->msgs == 0 || s > ms->last)
        return 0;
    if (all_subjects(filters, nfilters)) {
        *out = count_all(ms, s);
        return 0;
    }
    idvec partial = {0};
    int rc = classify_all(ms, filters, nfilters, s, &total, &partial);
    if (rc == 0 && partial.n)
        rc = count_partial(ms, s, &partial, &total);
    jsi_free(partial.v);
    if (rc)
        return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "counting messages") : rc;
    *out = total;
    return 0;
}

/* ---- the next matching message ------------------------------------------ */

/* The first live, intact message in b with a sequence in [from, to]
 * matching the filters (nf 0: any). A block that cannot be read is
 * skipped unless the failure is one the caller must hear of. */
static int scan_blk(jsi_ms *ms, jsi_blk *b, uint64_t from, uint64_t to,
                    const char *const *f, size_t nf, jsi_rec *r) {
    int rc = jsi_ms_blk_load(ms, b);
    if (rc)
        return rc == JS_ENOMEM || rc == JS_EIO ? rc : JS_EMSG_NOT_FOUND;
    const uint8_t *p;
    jsi_rechdr h;
    uint64_t q = from;
    while ((p = next_rec(ms, b, &q, to, &h)) != NULL) {
        if ((nf && !matches(f, nf, 0, (const char *)p + JSI_REC_HDR_LEN,
                            h.subj_len)) ||
            !jsi_rec_body_ok(p, &h))
            continue; /* a damaged one is skipped by scans, reported by get */
        jsi_ms_rec_view(p, &h, r);
        return 0;
    }
    return JS_EMSG_NOT_FOUND;
}

/* Scan [lo, hi] block by block; with ids, only blocks whose summary
 * counts one of them. */
static int scan(jsi_ms *ms, uint64_t lo, uint64_t hi, const char *const *f,
                size_t nf, const uint64_t *ids, size_t nids, jsi_rec *r) {
    int i = jsi_ms_blk_find(ms, lo);
    for (size_t k = i < 0 ? 0 : (size_t)i; k < ms->nblks; k++) {
        jsi_blk *b = ms->blks[k];
        if (b->lo > hi)
            break;
        if (b->msgs == 0 || b->hi < b->lo || b->hi < lo ||
            (ids && !jsi_ms_sum_of(b, ids, nids, 1)))
            continue;
        int rc = scan_blk(ms, b, JSI_MAX(lo, b->lo), JSI_MIN(hi, b->hi), f,
                          nf, r);
        if (rc != JS_EMSG_NOT_FOUND)
            return rc;
    }
    return JS_EMSG_NOT_FOUND;
}

/* Literal filters: their ids, and [*lo, *hi] narrowed to the span of
 * their first and last messages. */
static size_t literal_ids(jsi_ms *ms, const char *const *f, size_t nf,
                          uint64_t *lo, uint64_t *hi, uint64_t *ids) {
    uint64_t nlo = UINT64_MAX, nhi = 0;
    size_t n = 0;
    for (size_t i = 0; i < nf; i++) {
        jsi_sidx_entry *e = jsi_sidx_get(ms->sidx, f[i], strlen(f[i]));
        if (!e || e->last < *lo)
            continue;
        ids[n++] = e->id;
        nlo = JSI_MIN(nlo, JSI_MAX(*lo, e->first));
        nhi = JSI_MAX(nhi, e->last);
    }
    qsort(ids, n, sizeof *ids, cmp_u64);
    *lo = nlo;
    *hi = JSI_MIN(*hi, nhi);
    return n;
}

int jsi_ms_next_multi(jsi_ms *ms, const char *const *filters,
                      size_t nfilters, uint64_t seq, jsi_rec *r) {
    uint64_t lo = JSI_MAX(seq, ms->first), hi = ms->last;
    if (ms->msgs == 0 || lo > hi)
        return JS_EMSG_NOT_FOUND;
    if (all_subjects(filters, nfilters))
        return scan(ms, lo, hi, NULL, 0, NULL, 0, r);
    if (any_wild(filters, nfilters)) {
        jsi_fcache *c = NULL;
        int rc = fcache_get(ms, filters, nfilters, &c);
        if (rc)
            return rc;
        if (c->dense)
            return scan(ms, lo, hi, filters, nfilters, NULL, 0, r);
        return c->n ? scan(ms, lo, hi, filters, nfilters, c->ids, c->n, r)
                    : JS_EMSG_NOT_FOUND;
    }
    uint64_t buf[8];
    uint64_t *ids = nfilters <= 8 ? buf : jsi_malloc(nfilters * sizeof *ids);
    if (!ids)
        return JSI_ERR(JS_ENOMEM, 0, "next message");
    size_t n = literal_ids(ms, filters, nfilters, &lo, &hi, ids);
    int rc = n ? scan(ms, lo, hi, filters, nfilters, ids, n, r)
               : JS_EMSG_NOT_FOUND;
    if (ids != buf)
        jsi_free(ids);
    return rc;
}
