/*
 * rangeset.c - sets of sequence numbers as sorted, disjoint, non-adjacent
 * inclusive runs, with binary search, and their varint encoding.
 *
 * Invariant: for every i, 1 <= r[i].lo <= r[i].hi, and for i > 0,
 * r[i-1].hi + 1 < r[i].lo (runs never touch; touching runs are merged).
 *
 * Encoding (all unsigned LEB128 varints, minimal length):
 *   count, then per run: lo - prev_hi (prev_hi = 0 before the first run,
 *   so the first is lo itself, >= 1; later ones are >= 2), hi - lo.
 */
#include "rangeset.h"
#include "util.h"

#define RS_MIN_CAP 4

/* Index of the first run with hi >= v; s->n if none. */
static size_t first_hi_at_least(const jsi_rangeset *s, uint64_t v) {
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].hi < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Index of the first run with lo > v, less `slack` (lo - slack > v);
 * s->n if none. slack is 0 or 1, and every lo is >= 1. */
static size_t first_lo_above(const jsi_rangeset *s, uint64_t v, uint64_t slack) {
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].lo - slack <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Make room for `more` additional runs. */
static int rs_reserve(jsi_rangeset *s, size_t more) {
    size_t cap;
    jsi_range *r;

    if (s->n + more <= s->cap)
        return 0;
    cap = s->cap ? s->cap : RS_MIN_CAP;
    while (cap < s->n + more) {
        if (cap > SIZE_MAX / 2 / sizeof(jsi_range))
            return JSI_ERR(JS_ENOMEM, 0, "range set: too many runs");
        cap *= 2;
    }
    r = jsi_realloc(s->r, cap * sizeof(jsi_range));
    if (r == NULL)
        return JSI_ERR(JS_ENOMEM, 0, "range set: out of memory");
    s->r = r;
    s->cap = cap;
    return 0;
}

/* Delete runs [i, k). */
static void rs_cut(jsi_rangeset *s, size_t i, size_t k) {
    if (i >= k)
        return;
    memmove(s->r + i, s->r + k, (s->n - k) * sizeof(jsi_range));
    s->n -= k - i;
}

int jsi_rs_add(jsi_rangeset *s, uint64_t lo, uint64_t hi) {
    size_t i, k;

    if (lo == 0 || lo > hi)
        return JSI_ERR(JS_EINVAL, 0, "range set: bad run [%llu, %llu]",
                       (unsigned long long)lo, (unsigned long long)hi);
    /* Runs [i, k) overlap or touch [lo, hi]. */
    i = first_hi_at_least(s, lo - 1);
    k = first_lo_above(s, hi, 1);
    if (i == k) {
        int rc = rs_reserve(s, 1);
        if (rc != 0)
            return rc;
        memmove(s->r + i + 1, s->r + i, (s->n - i) * sizeof(jsi_range));
        s->r[i].lo = lo;
        s->r[i].hi = hi;
        s->n++;
        return 0;
    }
    s->r[i].lo = JSI_MIN(lo, s->r[i].lo);
    s->r[i].hi = JSI_MAX(hi, s->r[k - 1].hi);
    rs_cut(s, i + 1, k);
    return 0;
}

int jsi_rs_contains(const jsi_rangeset *s, uint64_t v) {
    size_t i = first_hi_at_least(s, v);
    return i < s->n && s->r[i].lo <= v;
}

void jsi_rs_remove_below(jsi_rangeset *s, uint64_t v) {
    size_t i = first_hi_at_least(s, v);

    rs_cut(s, 0, i);
    if (s->n > 0 && s->r[0].lo < v)
        s->r[0].lo = v;
}

int jsi_rs_remove(jsi_rangeset *s, uint64_t lo, uint64_t hi) {
    size_t i, k;

    if (lo > hi)
        return 0;
    /* Runs [i, k) intersect [lo, hi]. */
    i = first_hi_at_least(s, lo);
    k = first_lo_above(s, hi, 0);
    if (i >= k)
        return 0;
    if (k - i == 1 && s->r[i].lo < lo && s->r[i].hi > hi) {
        int rc = rs_reserve(s, 1);
        if (rc != 0)
            return rc;
        memmove(s->r + i + 1, s->r + i, (s->n - i) * sizeof(jsi_range));
        s->n++;
        s->r[i].hi = lo - 1;
        s->r[i + 1].lo = hi + 1;
        return 0;
    }
    if (s->r[i].lo < lo)
        s->r[i++].hi = lo - 1;
    if (s->r[k - 1].hi > hi)
        s->r[--k].lo = hi + 1;
    rs_cut(s, i, k);
    return 0;
}

uint64_t jsi_rs_count_in(const jsi_rangeset *s, uint64_t lo, uint64_t hi) {
    uint64_t c = 0;

    if (lo > hi)
        return 0;
    for (size_t i = first_hi_at_least(s, lo); i < s->n && s->r[i].lo <= hi;
         i++)
        c += JSI_MIN(hi, s->r[i].hi) - JSI_MAX(lo, s->r[i].lo) + 1;
    return c;
}

uint64_t jsi_rs_total(const jsi_rangeset *s) {
    uint64_t c = 0;

    for (size_t i = 0; i < s->n; i++)
        c += s->r[i].hi - s->r[i].lo + 1;
    return c;
}

uint64_t jsi_rs_next_member(const jsi_rangeset *s, uint64_t v) {
    size_t i = first_hi_at_least(s, v);
    return i < s->n ? JSI_MAX(v, s->r[i].lo) : 0;
}

/* Returns 0 if every value from v to UINT64_MAX is a member. */
uint64_t jsi_rs_next_gap(const jsi_rangeset *s, uint64_t v) {
    size_t i = first_hi_at_least(s, v);

    if (i == s->n || s->r[i].lo > v)
        return v;
    return s->r[i].hi == UINT64_MAX ? 0 : s->r[i].hi + 1;
}

uint64_t jsi_rs_prev_gap(const jsi_rangeset *s, uint64_t v) {
    size_t i = first_hi_at_least(s, v);

    return i < s->n && s->r[i].lo <= v ? s->r[i].lo - 1 : v;
}

void jsi_rs_clear(jsi_rangeset *s) { s->n = 0; }

void jsi_rs_free(jsi_rangeset *s) {
    jsi_free(s->r);
    s->r = NULL;
    s->n = s->cap = 0;
}

/* ---- encoding ------------------------------------------------------------ */

static size_t uvarint_len(uint64_t v) {
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t jsi_uvarint_put(uint8_t *p, uint64_t v) {
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Rejects truncation, more than 64 bits, and non-minimal encodings (a
 * final 0 byte after continuation bytes), so each value has one form. */
size_t jsi_uvarint_get(const uint8_t *p, size_t n, uint64_t *v) {
    uint64_t x = 0;

    for (size_t i = 0; i < n && i < 10; i++) {
        uint8_t b = p[i];
        if (i == 9 && b > 1)
            return 0;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            if (b == 0 && i > 0)
                return 0;
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

int jsi_rs_encode(const jsi_rangeset *s, struct jsi_buf *b) {
    size_t need = uvarint_len(s->n);
    uint64_t prev = 0;
    int rc;

    for (size_t i = 0; i < s->n; i++) {
        need += uvarint_len(s->r[i].lo - prev);
        need += uvarint_len(s->r[i].hi - s->r[i].lo);
        prev = s->r[i].hi;
    }
    rc = jsi_buf_reserve(b, need);
    if (rc != 0)
        return rc;
    b->len += jsi_uvarint_put(b->p + b->len, s->n);
    prev = 0;
    for (size_t i = 0; i < s->n; i++) {
        b->len += jsi_uvarint_put(b->p + b->len, s->r[i].lo - prev);
        b->len += jsi_uvarint_put(b->p + b->len, s->r[i].hi - s->r[i].lo);
        prev = s->r[i].hi;
    }
    return 0;
}

#define RS_CORRUPT(...) JSI_ERR(JS_ECORRUPT, 0, "range set: " __VA_ARGS__)

/* Decode count runs from p[0..n) into r; *pos advances. */
static int decode_runs(jsi_range *r, uint64_t count, const uint8_t *p,
                       size_t n, size_t *pos) {
    uint64_t prev = 0;

    for (uint64_t i = 0; i < count; i++) {
        uint64_t gap, span;
        size_t k = jsi_uvarint_get(p + *pos, n - *pos, &gap);

        if (k == 0)
            return RS_CORRUPT("run %llu: bad start", (unsigned long long)i);
        *pos += k;
        k = jsi_uvarint_get(p + *pos, n - *pos, &span);
        if (k == 0)
            return RS_CORRUPT("run %llu: bad length", (unsigned long long)i);
        *pos += k;
        if (gap < (i == 0 ? 1u : 2u))
            return RS_CORRUPT("run %llu: starts at 0 or overlaps or touches "
                              "the previous run", (unsigned long long)i);
        if (gap > UINT64_MAX - prev || span > UINT64_MAX - (prev + gap))
            return RS_CORRUPT("run %llu: past 2^64", (unsigned long long)i);
        r[i].lo = prev + gap;
        r[i].hi = r[i].lo + span;
        prev = r[i].hi;
    }
    return 0;
}

int jsi_rs_decode(jsi_rangeset *s, const uint8_t *p, size_t n, size_t *used) {
    uint64_t count;
    size_t pos = jsi_uvarint_get(p, n, &count);
    jsi_range *r;
    int rc;

    if (pos == 0)
        return RS_CORRUPT("bad run count");
    /* Each run takes at least two bytes: this bounds the allocation by the
     * input's size whatever the count claims. */
    if (count > (n - pos) / 2)
        return RS_CORRUPT("%llu runs cannot fit in %zu bytes",
                          (unsigned long long)count, n - pos);
    r = count ? jsi_malloc((size_t)count * sizeof(jsi_range)) : NULL;
    if (count && r == NULL)
        return JSI_ERR(JS_ENOMEM, 0, "range set: out of memory");
    rc = decode_runs(r, count, p, n, &pos);
    if (rc != 0) {
        jsi_free(r);
        return rc;
    }
    jsi_free(s->r);
    s->r = r;
    s->n = s->cap = (size_t)count;
    if (used != NULL)
        *used = pos;
    return 0;
}
