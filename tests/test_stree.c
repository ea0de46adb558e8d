/*
 * test_stree.c - the ordered subject tree against a sorted-array model:
 * random inserts, removes and finds over several subject shapes, ordered
 * and filtered walks, walks resumed across changes, allocation failure at
 * every point. `test_stree bench [n]` runs the benchmark instead.
 *
 * The tree is intrusive, so each value is a small struct holding its key.
 * Tests free a value as soon as it leaves the tree (replaced or removed),
 * so under the sanitizers a tree still reading it fails loudly.
 */
#include <check.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "stree.h"
#include "subject.h"
#include "util.h"
#include "runner.h"

/* check records a location on every passing ck_assert (a write(2) each);
 * the model loops use this instead, which only reaches check on failure. */
#define REQUIRE(expr)                                      \
    do {                                                   \
        if (!(expr))                                       \
            ck_abort_msg("requirement failed: %s", #expr); \
    } while (0)

static uint64_t rng_state;

static uint64_t rng(void) {
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static unsigned rnd(unsigned n) { return (unsigned)(rng() % n); }

/* ---- values: a struct holding its key -------------------------------------- */

typedef struct tval {
    size_t len;
    char s[]; /* len bytes and a NUL */
} tval;

static const char *tval_key(const void *v, size_t *len) {
    const tval *x = v;

    *len = x->len;
    return x->s;
}

static void *mkval(const char *s, size_t len) {
    tval *x = malloc(sizeof(tval) + len + 1);

    REQUIRE(x != NULL);
    x->len = len;
    memcpy(x->s, s, len);
    x->s[len] = '\0';
    return x;
}

static jsi_stree *new_tree(void) { return jsi_stree_new(tval_key); }

static int free_val(void *v, void *ctx) {
    free(v);
    return 0;
}

/* Free the tree and every value still in it. */
static void free_tree(jsi_stree *t) {
    if (t != NULL)
        jsi_stree_each(t, free_val, NULL);
    jsi_stree_free(t);
}

/* Insert a fresh value for s; the one it replaces is freed. */
static void *put(jsi_stree *t, const char *s, size_t len) {
    void *v = mkval(s, len), *old = NULL;

    REQUIRE(jsi_stree_insert(t, s, len, v, &old) == 0);
    free(old);
    return v;
}

/* ---- the model: a sorted array of (subject, value) ------------------------ */

typedef struct mkey {
    char *s;
    size_t len;
    void *val;
} mkey;

typedef struct model {
    mkey *k;
    size_t n, cap;
} model;

static int keycmp(const char *a, size_t al, const char *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c != 0 ? c : (al > bl) - (al < bl);
}

/* Index of the first key >= s. */
static size_t m_lower(const model *m, const char *s, size_t len) {
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (keycmp(m->k[mid].s, m->k[mid].len, s, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static mkey *m_find(model *m, const char *s, size_t len) {
    size_t i = m_lower(m, s, len);
    return i < m->n && keycmp(m->k[i].s, m->k[i].len, s, len) == 0 ? &m->k[i]
                                                                    : NULL;
}

static void m_insert(model *m, const char *s, size_t len, void *val) {
    size_t i = m_lower(m, s, len);
    if (i < m->n && keycmp(m->k[i].s, m->k[i].len, s, len) == 0) {
        m->k[i].val = val;
        return;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->k = realloc(m->k, m->cap * sizeof(mkey));
        REQUIRE(m->k != NULL);
    }
    memmove(m->k + i + 1, m->k + i, (m->n - i) * sizeof(mkey));
    m->k[i].s = malloc(len + 1);
    memcpy(m->k[i].s, s, len);
    m->k[i].s[len] = '\0';
    m->k[i].len = len;
    m->k[i].val = val;
    m->n++;
}

static void m_remove(model *m, const char *s, size_t len) {
    size_t i = m_lower(m, s, len);
    if (i < m->n && keycmp(m->k[i].s, m->k[i].len, s, len) == 0) {
        free(m->k[i].s);
        memmove(m->k + i, m->k + i + 1, (m->n - i - 1) * sizeof(mkey));
        m->n--;
    }
}

static void m_free(model *m) {
    for (size_t i = 0; i < m->n; i++)
        free(m->k[i].s);
    free(m->k);
    memset(m, 0, sizeof(*m));
}

/* ---- subject shapes --------------------------------------------------------- */

enum { SH_TOKENS, SH_SINGLE, SH_DEEP, SH_LONG, SH_CHAIN, SH_BYTEPREFIX, SH_N };

static size_t gen(int shape, char *b) {
    static const char *pool[] = {"a", "b", "c", "ab", "bc", "ba", "a*", "b>"};
    static const char *pre[] = {"a.b",    "a.bc",   "a.b.c", "a.bc.d",
                                "a.b.cd", "a",      "ab",    "a.b.c.d"};
    static const char *suf[] = {"", ".x", "y", ".b.c", "c"};
    size_t n = 0;
    unsigned k;

    switch (shape) {
    case SH_TOKENS:
        for (k = 1 + rnd(4); k > 0; k--)
            n += (size_t)sprintf(b + n, "%s%s", n ? "." : "", pool[rnd(8)]);
        break;
    case SH_SINGLE:
        for (k = 1 + rnd(5); k > 0; k--)
            b[n++] = "abc01"[rnd(5)];
        break;
    case SH_DEEP:
        for (k = 3 + rnd(10); k > 0; k--)
            n += (size_t)sprintf(b + n, "%s%c", n ? "." : "", "ab"[rnd(2)]);
        break;
    case SH_LONG:
        for (k = 1 + rnd(3); k > 0; k--) {
            unsigned x = rnd(200);
            if (n)
                b[n++] = '.';
            b[n++] = 't';
            memset(b + n, 'x', x);
            n += x;
            b[n++] = "ab"[rnd(2)];
        }
        break;
    case SH_CHAIN: /* "a.a.a...": a tree far deeper than next's stack */
        for (k = 1 + rnd(150); k > 0; k--)
            n += (size_t)sprintf(b + n, "%sa", n ? "." : "");
        if (rnd(3) == 0)
            n += (size_t)sprintf(b + n, ".%c", "bc"[rnd(2)]);
        break;
    default:
        n = (size_t)sprintf(b, "%s%s", pre[rnd(8)], suf[rnd(5)]);
        break;
    }
    b[n] = '\0';
    return n;
}

static const char *filters[] = {
    ">",     "*",       "*.*",     "a",       "a.*",   "a.>",   "*.b",
    "a.*.c", "a.b.>",   "a.b",     "a.bc",    "*.*.>", "a.*.>", "*.b.>",
    "b.>",   "a.a.>",   "a.a.a.a.a.a.>",      "*.*.*.*", "x.>",   "ab",
    "a.b.c", "*.bc.*",  "a.a.*.a.>",          "b",       "a.b.*", "c.>",
    "a*.>",  "*.b>",    "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.*"};
#define NFILTERS (sizeof(filters) / sizeof(filters[0]))

static int matches(const char *filter, const mkey *k) {
    return filter == NULL ||
           jsi_subject_match(filter, strlen(filter), k->s, k->len);
}

/* The model's answer to next(filter, after). */
static const mkey *m_next(const model *m, const char *filter, const char *after,
                          size_t alen) {
    size_t i = 0;
    if (after != NULL) {
        i = m_lower(m, after, alen);
        if (i < m->n && keycmp(m->k[i].s, m->k[i].len, after, alen) == 0)
            i++;
    }
    for (; i < m->n; i++)
        if (matches(filter, &m->k[i]))
            return &m->k[i];
    return NULL;
}

/* A full walk of the tree with filter equals the model's filtered order. */
static void check_walk(const jsi_stree *t, const model *m, const char *filter) {
    const char *s = NULL;
    size_t len = 0, i;
    char *last = NULL;
    size_t lastlen = 0;
    void *v;

    for (i = 0; i < m->n; i++) {
        if (!matches(filter, &m->k[i]))
            continue;
        v = jsi_stree_next(t, filter, last, lastlen, &s, &len);
        REQUIRE(v == m->k[i].val);
        REQUIRE(len == m->k[i].len && memcmp(s, m->k[i].s, len) == 0);
        REQUIRE(s == ((tval *)v)->s && s[len] == '\0'); /* the value's own key */
        last = m->k[i].s;
        lastlen = m->k[i].len;
    }
    REQUIRE(jsi_stree_next(t, filter, last, lastlen, &s, &len) == NULL);
}

static void check_all(const jsi_stree *t, model *m, int shape) {
    char b[8192];

    REQUIRE(jsi_stree_check(t) == 0);
    REQUIRE(jsi_stree_size(t) == m->n);
    check_walk(t, m, NULL);
    for (size_t f = 0; f < NFILTERS; f++)
        check_walk(t, m, filters[f]);
    /* next from arbitrary points: keys, non-keys, prefixes of keys */
    for (int q = 0; q < 200; q++) {
        const char *filter = rnd(3) ? filters[rnd(NFILTERS)] : NULL;
        const char *after = b, *s;
        size_t alen, len;
        const mkey *want;
        void *v;

        if (m->n > 0 && rnd(2)) {
            const mkey *k = &m->k[rnd((unsigned)m->n)];
            alen = rnd(2) ? k->len : rnd((unsigned)k->len + 1);
            memcpy(b, k->s, alen);
        } else {
            alen = gen(shape, b);
        }
        want = m_next(m, filter, after, alen);
        v = jsi_stree_next(t, filter, after, alen, &s, &len);
        REQUIRE(want == NULL ? v == NULL : v == want->val);
        if (want != NULL)
            REQUIRE(len == want->len && memcmp(s, want->s, len) == 0);
    }
}

/* ---- basic behaviour ------------------------------------------------------- */

START_TEST(empty_tree_finds_nothing) {
    jsi_stree *t = new_tree();

    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(jsi_stree_size(t), 0);
    ck_assert_ptr_null(jsi_stree_find(t, "a", 1));
    ck_assert_ptr_null(jsi_stree_remove(t, "a", 1));
    ck_assert_ptr_null(jsi_stree_next(t, NULL, NULL, 0, NULL, NULL));
    ck_assert_ptr_null(jsi_stree_next(t, "a.>", "a", 1, NULL, NULL));
    ck_assert_int_eq(jsi_stree_check(t), 0);
    jsi_stree_free(t);
    jsi_stree_free(NULL);
}
END_TEST

START_TEST(insert_replaces_and_returns_old_value) {
    jsi_stree *t = new_tree();
    size_t mem = jsi_stree_memory(t);
    void *a = mkval("x.y", 3), *b = mkval("x.y", 3), *old = a;

    ck_assert_int_eq(jsi_stree_insert(t, "x.y", 3, a, &old), 0);
    ck_assert_ptr_null(old);
    ck_assert_int_eq(jsi_stree_insert(t, "x.y", 3, b, &old), 0);
    ck_assert_ptr_eq(old, a);
    ck_assert_uint_eq(jsi_stree_size(t), 1);
    ck_assert_ptr_eq(jsi_stree_find(t, "x.y", 3), b);
    ck_assert_ptr_eq(jsi_stree_remove(t, "x.y", 3), b);
    ck_assert_uint_eq(jsi_stree_size(t), 0);
    ck_assert_uint_eq(jsi_stree_memory(t), mem);
    jsi_stree_free(t);
    free(a);
    free(b);
}
END_TEST

/* A replaced value may be a rep of nodes above it: once replaced and freed
 * it must not be read again (the sanitizers and check() would see it). */
START_TEST(replaced_value_is_no_longer_referenced) {
    static const char *keys[] = {"a.b", "a.b.c", "a.bc", "a.b.d", "b"};
    jsi_stree *t = new_tree();
    void *v[5];

    for (int i = 0; i < 5; i++)
        v[i] = put(t, keys[i], strlen(keys[i]));
    for (int i = 4; i >= 0; i--) {
        void *w = put(t, keys[i], strlen(keys[i])); /* frees v[i] */
        ck_assert_ptr_ne(w, v[i]);
        ck_assert_int_eq(jsi_stree_check(t), 0);
        ck_assert_ptr_eq(jsi_stree_find(t, keys[i], strlen(keys[i])), w);
    }
    ck_assert_ptr_nonnull(jsi_stree_next(t, "a.b.>", "a.b.c", 5, NULL, NULL));
    ck_assert_uint_eq(jsi_stree_size(t), 5);
    free_tree(t);
}
END_TEST

START_TEST(insert_rejects_empty_and_oversized_subjects) {
    jsi_stree *t = new_tree();
    static char big[JS_MAX_SUBJECT_LEN + 2];
    void *empty = mkval("", 0), *over, *a;

    memset(big, 'a', sizeof(big) - 1);
    over = mkval(big, JS_MAX_SUBJECT_LEN + 1);
    a = mkval(big, JS_MAX_SUBJECT_LEN);
    ck_assert_int_eq(jsi_stree_insert(t, "", 0, empty, NULL), JS_EINVAL);
    ck_assert_int_eq(jsi_stree_insert(t, big, JS_MAX_SUBJECT_LEN + 1, over, NULL),
                     JS_EINVAL);
    ck_assert_int_eq(jsi_stree_insert(t, big, JS_MAX_SUBJECT_LEN, a, NULL), 0);
    ck_assert_ptr_eq(jsi_stree_find(t, big, JS_MAX_SUBJECT_LEN), a);
    ck_assert_uint_eq(jsi_stree_size(t), 1);
    free_tree(t);
    free(empty);
    free(over);
}
END_TEST

/* A leaf is the value pointer tagged in its low bit, so NULL and odd
 * values cannot be stored; nor can a value whose key differs from the
 * subject given. Each is refused and the tree is left as it was. */
START_TEST(insert_rejects_null_odd_and_mismatched_values) {
    jsi_stree *t = new_tree();
    char *raw = malloc(sizeof(tval) + 8);
    void *odd = raw + 1, *a = mkval("a.b", 3), *old = a;
    size_t mem;

    ck_assert_ptr_nonnull(raw);
    ck_assert_int_eq(jsi_stree_insert(t, "a.b", 3, odd, &old), JS_EINVAL);
    ck_assert_ptr_null(old);
    ck_assert_int_eq(jsi_stree_insert(t, "a.b", 3, NULL, NULL), JS_EINVAL);
    ck_assert_int_eq(jsi_stree_insert(t, "a.c", 3, a, NULL), JS_EINVAL);
    ck_assert_int_eq(jsi_stree_insert(t, "a.bc", 4, a, NULL), JS_EINVAL);
    ck_assert_int_eq(jsi_stree_insert(t, "a", 1, a, NULL), JS_EINVAL);
    ck_assert_uint_eq(jsi_stree_size(t), 0);
    put(t, "a.bc", 4);
    ck_assert_int_eq(jsi_stree_insert(t, "a.b", 3, a, NULL), 0);
    mem = jsi_stree_memory(t);
    /* refused as a replacement too, and as a new key beside others */
    ck_assert_int_eq(jsi_stree_insert(t, "a.b", 3, odd, &old), JS_EINVAL);
    ck_assert_ptr_null(old);
    ck_assert_int_eq(jsi_stree_insert(t, "a.c", 3, (char *)a + 1, NULL), JS_EINVAL);
    ck_assert_ptr_eq(jsi_stree_find(t, "a.b", 3), a);
    ck_assert_ptr_null(jsi_stree_find(t, "a.c", 3));
    ck_assert_uint_eq(jsi_stree_size(t), 2);
    ck_assert_uint_eq(jsi_stree_memory(t), mem);
    ck_assert_int_eq(jsi_stree_check(t), 0);
    free_tree(t);
    free(raw);
}
END_TEST

START_TEST(keys_that_are_byte_prefixes_sort_before_their_extensions) {
    static const char *in[] = {"a.bc", "a.b.c", "a.b", "a", "a.b.c.d", "ab", "a.b0"};
    static const char *want[] = {"a", "a.b", "a.b.c", "a.b.c.d", "a.b0", "a.bc", "ab"};
    jsi_stree *t = new_tree();
    void *v[7];
    const char *s = NULL;
    size_t len = 0;

    for (size_t i = 0; i < 7; i++) {
        v[i] = mkval(in[i], strlen(in[i]));
        ck_assert_int_eq(jsi_stree_insert(t, in[i], strlen(in[i]), v[i], NULL), 0);
    }
    for (size_t i = 0; i < 7; i++) {
        ck_assert_ptr_nonnull(jsi_stree_next(t, NULL, s, len, &s, &len));
        ck_assert_str_eq(s, want[i]);
    }
    ck_assert_ptr_null(jsi_stree_next(t, NULL, s, len, &s, &len));
    ck_assert_ptr_eq(jsi_stree_next(t, "a.b", NULL, 0, &s, &len), v[2]);
    ck_assert_ptr_eq(jsi_stree_next(t, "a.*", "a.b", 3, &s, &len), v[6]);
    ck_assert_ptr_eq(jsi_stree_next(t, "a.b.>", NULL, 0, &s, &len), v[1]);
    ck_assert_ptr_eq(jsi_stree_next(t, "a.b.>", "a.b.c", 5, &s, &len), v[4]);
    ck_assert_ptr_null(jsi_stree_next(t, "a.b.>", "a.b.c.d", 7, &s, &len));
    ck_assert_ptr_null(jsi_stree_next(t, "a..b", NULL, 0, &s, &len)); /* invalid */
    ck_assert_ptr_eq(jsi_stree_remove(t, "a.b", 3), v[2]);
    free(v[2]);
    ck_assert_ptr_null(jsi_stree_find(t, "a.b", 3));
    ck_assert_ptr_eq(jsi_stree_find(t, "a.b.c", 5), v[1]);
    ck_assert_int_eq(jsi_stree_check(t), 0);
    free_tree(t);
}
END_TEST

/* ---- against the model ----------------------------------------------------- */

START_TEST(random_operations_agree_with_sorted_model) {
    int shape = _i;
    jsi_stree *t = new_tree();
    model m = {0};
    char b[8192];

    rng_state = 1000 + (uint64_t)shape;
    for (int op = 1; op <= 12000; op++) {
        size_t len = gen(shape, b);
        unsigned what = rnd(10);

        if (what < 5) {
            void *old = NULL, *v = mkval(b, len);
            mkey *k = m_find(&m, b, len);
            void *want = k ? k->val : NULL;
            REQUIRE(jsi_stree_insert(t, b, len, v, &old) == 0);
            REQUIRE(old == want);
            free(old);
            m_insert(&m, b, len, v);
        } else if (what < 8) {
            mkey *k = m_find(&m, b, len);
            void *want = k ? k->val : NULL;
            REQUIRE(jsi_stree_remove(t, b, len) == want);
            free(want);
            m_remove(&m, b, len);
        } else {
            mkey *k = m_find(&m, b, len);
            REQUIRE(jsi_stree_find(t, b, len) == (k ? k->val : NULL));
        }
        if (op % 1500 == 0)
            check_all(t, &m, shape);
    }
    check_all(t, &m, shape);
    /* drain through removes of every key */
    while (m.n > 0) {
        mkey *k = &m.k[rnd((unsigned)m.n)];
        REQUIRE(jsi_stree_remove(t, k->s, k->len) == k->val);
        free(k->val);
        m_remove(&m, k->s, k->len);
        if (m.n % 97 == 0)
            REQUIRE(jsi_stree_check(t) == 0);
    }
    REQUIRE(jsi_stree_size(t) == 0);
    REQUIRE(jsi_stree_check(t) == 0);
    jsi_stree_free(t);
    m_free(&m);
}
END_TEST

/* A path of 200+ nodes overflows next()'s 64-frame stack: the walk must
 * still continue past the deep subtree to the keys after it. */
START_TEST(walk_past_a_subtree_deeper_than_the_stack_continues) {
    static const char *extra[] = {"b", "a.a.a.a.a.a.a.a.a.a.b", "a.b.c", "c.d",
                                  "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.c"};
    jsi_stree *t = new_tree();
    model m = {0};
    char b[8192];
    void *ex[5];
    size_t n = 0;

    rng_state = 99;
    for (int k = 1; k <= 220; k++) {
        n += (size_t)sprintf(b + n, "%sa", n ? "." : "");
        m_insert(&m, b, n, put(t, b, n));
    }
    for (int i = 0; i < 5; i++) {
        ex[i] = put(t, extra[i], strlen(extra[i]));
        m_insert(&m, extra[i], strlen(extra[i]), ex[i]);
    }
    check_all(t, &m, SH_CHAIN);
    /* after the deepest key: a 21-token key, then the shallow "a.b.c" */
    ck_assert_ptr_eq(jsi_stree_next(t, NULL, b, n, NULL, NULL), ex[4]);
    ck_assert_ptr_eq(jsi_stree_next(t, "*.b.>", b, n, NULL, NULL), ex[2]);
    ck_assert_ptr_eq(jsi_stree_next(t, "c.*", b, n, NULL, NULL), ex[3]);
    free_tree(t);
    m_free(&m);
}
END_TEST

/* Walk with a copy of the last key while inserting and removing between
 * steps: strictly increasing, each key present at its return, and every key
 * present throughout is returned. */
START_TEST(walk_interleaved_with_changes_returns_stable_keys_once) {
    int shape = _i % SH_N;
    const char *filter = _i < SH_N ? NULL : filters[(size_t)_i % NFILTERS];
    jsi_stree *t = new_tree();
    model m = {0}, stable = {0};
    char b[8192], last[8192];
    size_t lastlen = 0, seen = 0;
    const char *s;
    size_t len;
    int started = 0;

    rng_state = 77 + (uint64_t)_i;
    for (int i = 0; i < 1500; i++) {
        size_t l = gen(shape, b);
        m_insert(&m, b, l, put(t, b, l));
    }
    for (size_t i = 0; i < m.n; i++)
        if (matches(filter, &m.k[i]))
            m_insert(&stable, m.k[i].s, m.k[i].len, m.k[i].val);
    for (;;) {
        void *v = jsi_stree_next(t, filter, started ? last : NULL, lastlen, &s, &len);
        if (v == NULL)
            break;
        REQUIRE(!started || keycmp(s, len, last, lastlen) > 0);
        REQUIRE(m_find(&m, s, len) != NULL && m_find(&m, s, len)->val == v);
        REQUIRE(matches(filter, &(mkey){(char *)s, len, v}));
        if (m_find(&stable, s, len) != NULL)
            m_find(&stable, s, len)->val = NULL; /* seen */
        memcpy(last, s, len);
        lastlen = len;
        started = 1;
        seen++;
        for (int c = rnd(4); c > 0; c--) { /* changes between steps */
            size_t l = gen(shape, b);
            if (rnd(2)) {
                m_insert(&m, b, l, put(t, b, l));
            } else {
                free(jsi_stree_remove(t, b, l));
                m_remove(&m, b, l);
                m_remove(&stable, b, l); /* no longer present throughout */
            }
        }
    }
    /* keys re-inserted with a new value stay stable only if never removed */
    for (size_t i = 0; i < stable.n; i++)
        REQUIRE(stable.k[i].val == NULL);
    REQUIRE(seen >= stable.n);
    REQUIRE(jsi_stree_check(t) == 0);
    free_tree(t);
    m_free(&m);
    m_free(&stable);
}
END_TEST

/* ---- allocation failure ------------------------------------------------------ */

static void alloc_teardown(void) { jsi_alloc_fail_at(0, 0); }

/* Fail each allocation of each insert in turn: the insert reports ENOMEM
 * and the tree is exactly as before; then let it succeed. */
START_TEST(insert_out_of_memory_at_every_point_leaves_tree_unchanged) {
    int shape = _i;
    jsi_stree *t;
    model m = {0};
    char b[8192];
    uint64_t failures = 0;

    rng_state = 5 + (uint64_t)shape;
    jsi_alloc_fail_at(1, 0);
    ck_assert_ptr_null(new_tree());
    jsi_alloc_fail_at(0, 0);
    t = new_tree();
    for (int i = 0; i < 600; i++) {
        size_t len = gen(shape, b), mem = jsi_stree_memory(t);
        void *v = mkval(b, len), *old = NULL;
        int rc;

        for (uint64_t k = 1;; k++) {
            jsi_alloc_fail_at(k, 0);
            rc = jsi_stree_insert(t, b, len, v, &old);
            jsi_alloc_fail_at(0, 0);
            if (rc == 0)
                break;
            failures++;
            REQUIRE(rc == JS_ENOMEM);
            REQUIRE(jsi_stree_memory(t) == mem);
            REQUIRE(jsi_stree_size(t) == m.n);
            REQUIRE(jsi_stree_check(t) == 0);
            REQUIRE(jsi_stree_find(t, b, len) ==
                    (m_find(&m, b, len) ? m_find(&m, b, len)->val : NULL));
        }
        free(old);
        m_insert(&m, b, len, v);
        if (i % 100 == 0)
            check_all(t, &m, shape);
    }
    REQUIRE(failures > 0);
    check_all(t, &m, shape);
    /* removals never need memory: with every allocation failing they still
     * succeed (a node that cannot shrink keeps its size) */
    jsi_alloc_fail_at(1, 1);
    while (m.n > 0) {
        mkey *k = &m.k[rnd((unsigned)m.n)];
        REQUIRE(jsi_stree_remove(t, k->s, k->len) == k->val);
        free(k->val);
        m_remove(&m, k->s, k->len);
        if (m.n % 50 == 0)
            REQUIRE(jsi_stree_check(t) == 0);
    }
    jsi_alloc_fail_at(0, 0);
    REQUIRE(jsi_stree_check(t) == 0);
    jsi_stree_free(t);
    m_free(&m);
}
END_TEST

static Suite *stree_suite(void) {
    Suite *s = suite_create("stree");
    TCase *t = tcase_create("basic");

    tcase_add_test(t, empty_tree_finds_nothing);
    tcase_add_test(t, insert_replaces_and_returns_old_value);
    tcase_add_test(t, replaced_value_is_no_longer_referenced);
    tcase_add_test(t, insert_rejects_empty_and_oversized_subjects);
    tcase_add_test(t, insert_rejects_null_odd_and_mismatched_values);
    tcase_add_test(t, keys_that_are_byte_prefixes_sort_before_their_extensions);
    suite_add_tcase(s, t);

    t = tcase_create("model");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, random_operations_agree_with_sorted_model, 0, SH_N);
    tcase_add_test(t, walk_past_a_subtree_deeper_than_the_stack_continues);
    tcase_add_loop_test(t, walk_interleaved_with_changes_returns_stable_keys_once,
                        0, 2 * SH_N + 6);
    suite_add_tcase(s, t);

    t = tcase_create("alloc");
    tcase_set_timeout(t, 120);
    tcase_add_checked_fixture(t, NULL, alloc_teardown);
    tcase_add_loop_test(t, insert_out_of_memory_at_every_point_leaves_tree_unchanged,
                        0, SH_N);
    suite_add_tcase(s, t);
    return s;
}

/* ---- benchmark: test_stree bench [n] ----------------------------------------- */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes in use by malloc, where glibc can say (else 0: heap not shown). */
static size_t heap_used(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#else
    return 0;
#endif
}

static size_t subject_of(int kind, size_t i, char *b) {
    if (kind == 0)
        return (size_t)sprintf(b, "$KV.cfg.key%zu", i);
    return (size_t)sprintf(b, "sensor.site%zu.dev%zu.temp", i / 1000, i % 1000);
}

/* Visit keys in a scrambled but covering order: i * step mod n. */
static size_t scramble(size_t i, size_t n) { return (i * 7919) % n; }

static const char *bench_filter(int kind) {
    return kind == 0 ? "$KV.cfg.key12345" : "sensor.site123.>";
}

/* The hash the tree indexes in the store, measured on its own. */
static jsi_sidx *bench_sidx(int kind, size_t n) {
    char b[256];
    size_t h0 = heap_used(), cnt, pos = 0, got = 0;
    const char *f = bench_filter(kind);
    jsi_sidx *x = jsi_sidx_new();
    jsi_sidx_entry *e;
    volatile uintptr_t sink = 0;
    double t0 = now(), t1;

    for (size_t i = 0; i < n; i++) {
        size_t l = subject_of(kind, scramble(i, n), b);
        int created;
        if (jsi_sidx_upsert(x, b, l, &created) == NULL)
            abort();
    }
    t1 = now();
    printf("sidx upsert   %8.0f ns/op %10.0f op/s  memory(): %.1f B/subject  heap: %.1f B/subject\n",
           (t1 - t0) * 1e9 / n, n / (t1 - t0), (double)jsi_sidx_memory(x) / n,
           (double)(heap_used() - h0) / n);
    t0 = now();
    for (size_t i = 0; i < n; i++) {
        size_t l = subject_of(kind, scramble(i * 13, n), b);
        sink += (uintptr_t)jsi_sidx_get(x, b, l);
    }
    t1 = now();
    printf("sidx get      %8.0f ns/op %10.0f op/s\n", (t1 - t0) * 1e9 / n, n / (t1 - t0));
    t0 = now();
    for (cnt = 0; jsi_sidx_next(x, &pos) != NULL; cnt++)
        ;
    t1 = now();
    printf("sidx next (unordered walk, no changes allowed) %8.0f ns/key %10.0f keys/s (%zu keys)\n",
           (t1 - t0) * 1e9 / cnt, cnt / (t1 - t0), cnt);
    /* the filter by brute force: walk everything, match each */
    t0 = now();
    for (pos = 0; (e = jsi_sidx_next(x, &pos)) != NULL;)
        got += (size_t)jsi_subject_match(f, strlen(f), e->subj, e->len);
    t1 = now();
    printf("sidx filtered walk '%s' (walk all + match): %zu matches, %.0f ns per walk\n",
           f, got, (t1 - t0) * 1e9);
    (void)sink;
    return x;
}

static const char *entry_key(const void *val, size_t *len) {
    const jsi_sidx_entry *e = val;

    *len = e->len;
    return e->subj;
}

/* A literal-prefix filter with few matches, walked many times. */
static void bench_filtered(const jsi_stree *t, const char *f) {
    char last[256];
    const char *s;
    size_t len, lastlen = 0, got = 0;
    int reps = 100000;
    double t0 = now(), t1;

    for (int r = 0; r < reps; r++) {
        lastlen = 0;
        for (int first = 1; jsi_stree_next(t, f, first ? NULL : last, lastlen, &s, &len); first = 0) {
            memcpy(last, s, len);
            lastlen = len;
            got++;
        }
    }
    t1 = now();
    printf("stree filtered walk '%s': %zu matches, %.0f ns per walk, %.0f ns per next() call\n",
           f, got / reps, (t1 - t0) * 1e9 / reps, (t1 - t0) * 1e9 / (reps * (got / reps + 1)));
}

/* The tree over the hash's entries, as the message store builds it (the
 * heap figure is therefore the tree's own: the subjects are the hash's). */
static void bench_stree(int kind, size_t n, jsi_sidx *x) {
    char b[256], last[256];
    jsi_sidx_entry **es = malloc(n * sizeof(*es));
    size_t h0, lastlen = 0, cnt;
    jsi_stree *t;
    const char *s;
    size_t len;
    volatile uintptr_t sink = 0;
    double t0, t1;

    if (es == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        size_t l = subject_of(kind, scramble(i, n), b);
        if ((es[i] = jsi_sidx_get(x, b, l)) == NULL)
            abort();
    }
    h0 = heap_used();
    if ((t = jsi_stree_new(entry_key)) == NULL)
        abort();
    t0 = now();
    for (size_t i = 0; i < n; i++)
        if (jsi_stree_insert(t, es[i]->subj, es[i]->len, es[i], NULL) != 0)
            abort();
    t1 = now();
    printf("stree insert  %8.0f ns/op %10.0f op/s  memory(): %.1f B/subject  heap: %.1f B/subject\n",
           (t1 - t0) * 1e9 / n, n / (t1 - t0), (double)jsi_stree_memory(t) / n,
           (double)(heap_used() - h0) / n);
    free(es);
    t0 = now();
    for (size_t i = 0; i < n; i++) {
        size_t l = subject_of(kind, scramble(i * 13, n), b);
        sink += (uintptr_t)jsi_stree_find(t, b, l);
    }
    t1 = now();
    printf("stree find    %8.0f ns/op %10.0f op/s\n", (t1 - t0) * 1e9 / n, n / (t1 - t0));
    t0 = now();
    for (cnt = 0; jsi_stree_next(t, NULL, cnt ? last : NULL, lastlen, &s, &len); cnt++) {
        memcpy(last, s, len);
        lastlen = len;
    }
    t1 = now();
    printf("stree next (ordered walk, resumed from a copy each step) %8.0f ns/key %10.0f keys/s (%zu keys)\n",
           (t1 - t0) * 1e9 / cnt, cnt / (t1 - t0), cnt);
    bench_filtered(t, bench_filter(kind));
    jsi_stree_free(t);
    (void)sink;
}

static void bench(size_t n) {
    for (int kind = 0; kind < 2; kind++) {
        jsi_sidx *x;

        printf("== %zu subjects %s\n", n,
               kind == 0 ? "$KV.cfg.key<N>" : "sensor.site<S>.dev<D>.temp");
        x = bench_sidx(kind, n);
        bench_stree(kind, n, x);
        jsi_sidx_free(x);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "bench") == 0) {
        bench(argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 1000000);
        return 0;
    }
    int failed = tu_run_suite(stree_suite());
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
