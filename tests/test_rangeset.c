/*
 * test_rangeset.c - range sets against a bitmap model, edge values, the
 * varint codec, and decoding of truncated and garbled input.
 */
#include <check.h>
#include <stdlib.h>

#include "rangeset.h"
#include "util.h"
#include "runner.h"

/* check records a location on every passing ck_assert (a write(2) each);
 * the model loops use this instead, which only reaches check on failure. */
#define REQUIRE(expr)                                          \
    do {                                                       \
        if (!(expr))                                           \
            ck_abort_msg("requirement failed: %s", #expr);     \
    } while (0)

static uint64_t rng_state;

static uint64_t rng(void) {
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* The representation invariant: sorted, disjoint, non-adjacent, lo >= 1. */
static int well_formed(const jsi_rangeset *s) {
    if (s->n > s->cap)
        return 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->r[i].lo == 0 || s->r[i].lo > s->r[i].hi)
            return 0;
        if (i > 0 && s->r[i - 1].hi + 1 >= s->r[i].lo)
            return 0;
    }
    return 1;
}

static void assert_runs(const jsi_rangeset *s, const uint64_t *want,
                        size_t nruns) {
    ck_assert_int_eq(well_formed(s), 1);
    ck_assert_uint_eq(s->n, nruns);
    for (size_t i = 0; i < nruns; i++) {
        ck_assert_uint_eq(s->r[i].lo, want[2 * i]);
        ck_assert_uint_eq(s->r[i].hi, want[2 * i + 1]);
    }
}

/* ---- basic operations ---------------------------------------------------- */

START_TEST(add_merges_overlapping_and_adjacent_runs) {
    jsi_rangeset s = JSI_RANGESET_INIT;

    ck_assert_int_eq(jsi_rs_add(&s, 1, 3), 0);
    ck_assert_int_eq(jsi_rs_add(&s, 4, 5), 0);
    assert_runs(&s, (const uint64_t[]){1, 5}, 1);
    ck_assert_int_eq(jsi_rs_add(&s, 10, 12), 0);
    ck_assert_int_eq(jsi_rs_add(&s, 7, 7), 0);
    assert_runs(&s, (const uint64_t[]){1, 5, 7, 7, 10, 12}, 3);
    ck_assert_int_eq(jsi_rs_add(&s, 6, 6), 0);
    assert_runs(&s, (const uint64_t[]){1, 7, 10, 12}, 2);
    ck_assert_int_eq(jsi_rs_add(&s, 9, 9), 0);
    assert_runs(&s, (const uint64_t[]){1, 7, 9, 12}, 2);
    ck_assert_int_eq(jsi_rs_add(&s, 3, 20), 0);
    assert_runs(&s, (const uint64_t[]){1, 20}, 1);
    ck_assert_int_eq(jsi_rs_add(&s, 5, 6), 0);
    assert_runs(&s, (const uint64_t[]){1, 20}, 1);
    jsi_rs_free(&s);
}
END_TEST

START_TEST(add_spanning_many_runs_collapses_them) {
    jsi_rangeset s = JSI_RANGESET_INIT;

    for (uint64_t v = 10; v <= 100; v += 10)
        ck_assert_int_eq(jsi_rs_add(&s, v, v + 1), 0);
    ck_assert_uint_eq(s.n, 10);
    /* Touches [20, 21] on the left and [80, 81] on the right. */
    ck_assert_int_eq(jsi_rs_add(&s, 22, 79), 0);
    assert_runs(&s, (const uint64_t[]){10, 11, 20, 81, 90, 91, 100, 101}, 4);
    ck_assert_int_eq(jsi_rs_add(&s, 13, 88), 0);
    assert_runs(&s, (const uint64_t[]){10, 11, 13, 88, 90, 91, 100, 101}, 4);
    jsi_rs_free(&s);
}
END_TEST

START_TEST(add_rejects_zero_and_inverted_runs) {
    jsi_rangeset s = JSI_RANGESET_INIT;

    ck_assert_int_eq(jsi_rs_add(&s, 5, 6), 0);
    ck_assert_int_eq(jsi_rs_add(&s, 0, 3), JS_EINVAL);
    ck_assert_int_eq(jsi_rs_add(&s, 9, 8), JS_EINVAL);
    assert_runs(&s, (const uint64_t[]){5, 6}, 1);
    jsi_rs_free(&s);
}
END_TEST

START_TEST(contains_is_exact_at_run_edges) {
    jsi_rangeset s = JSI_RANGESET_INIT;

    jsi_rs_add(&s, 5, 8);
    jsi_rs_add(&s, 20, 20);
    ck_assert_int_eq(jsi_rs_contains(&s, 0), 0);
    ck_assert_int_eq(jsi_rs_contains(&s, 4), 0);
    ck_assert_int_eq(jsi_rs_contains(&s, 5), 1);
    ck_assert_int_eq(jsi_rs_contains(&s, 8), 1);
    ck_assert_int_eq(jsi_rs_contains(&s, 9), 0);
    ck_assert_int_eq(jsi_rs_contains(&s, 19), 0);
    ck_assert_int_eq(jsi_rs_contains(&s, 20), 1);
    ck_assert_int_eq(jsi_rs_contains(&s, 21), 0);
    ck_assert_int_eq(jsi_rs_contains(&s, UINT64_MAX), 0);
    jsi_rs_free(&s);
}
END_TEST

START_TEST(remove_splits_trims_and_drops_runs) {
    jsi_rangeset s = JSI_RANGESET_INIT;

    jsi_rs_add(&s, 1, 10);
    ck_assert_int_eq(jsi_rs_remove(&s, 4, 6), 0);
    assert_runs(&s, (const uint64_t[]){1, 3, 7, 10}, 2);
    ck_assert_int_eq(jsi_rs_remove(&s, 3, 7), 0);
    assert_runs(&s, (const uint64_t[]){1, 2, 8, 10}, 2);
    ck_assert_int_eq(jsi_rs_remove(&s, 1, 1), 0);
    assert_runs(&s, (const uint64_t[]){2, 2, 8, 10}, 2);
    ck_assert_int_eq(jsi_rs_remove(&s, 10, 50), 0);
    assert_runs(&s, (const uint64_t[]){2, 2, 8, 9}, 2);
    ck_assert_int_eq(jsi_rs_remove(&s, 3, 7), 0);
    assert_runs(&s, (const uint64_t[]){2, 2, 8, 9}, 2);
    ck_assert_int_eq(jsi_rs_remove(&s, 9, 5), 0); /* empty range: no-op */
    assert_runs(&s, (const uint64_t[]){2, 2, 8, 9}, 2);
    ck_assert_int_eq(jsi_rs_remove(&s, 0, UINT64_MAX), 0);
    ck_assert_uint_eq(s.n, 0);
    jsi_rs_free(&s);
}
END_TEST

START_TEST(remove_below_drops_and_trims_leading_runs) {
    jsi_rangeset s = JSI_RANGESET_INIT;

    jsi_rs_add(&s, 1, 3);
    jsi_rs_add(&s, 5, 9);
    jsi_rs_add(&s, 20, 30);
    jsi_rs_remove_below(&s, 0);
    jsi_rs_remove_below(&s, 1);
    assert_runs(&s, (const uint64_t[]){1, 3, 5, 9, 20, 30}, 3);
    jsi_rs_remove_below(&s, 7);
    assert_runs(&s, (const uint64_t[]){7, 9, 20, 30}, 2);
    jsi_rs_remove_below(&s, 10);
    assert_runs(&s, (const uint64_t[]){20, 30}, 1);
    jsi_rs_remove_below(&s, 31);
    ck_assert_uint_eq(s.n, 0);
    jsi_rs_free(&s);
}
END_TEST

START_TEST(counts_next_member_and_next_gap) {
    jsi_rangeset s = JSI_RANGESET_INIT;

    jsi_rs_add(&s, 5, 8);
    jsi_rs_add(&s, 12, 12);
    ck_assert_uint_eq(jsi_rs_total(&s), 5);
    ck_assert_uint_eq(jsi_rs_count_in(&s, 0, UINT64_MAX), 5);
    ck_assert_uint_eq(jsi_rs_count_in(&s, 6, 12), 4);
    ck_assert_uint_eq(jsi_rs_count_in(&s, 9, 11), 0);
    ck_assert_uint_eq(jsi_rs_count_in(&s, 12, 5), 0);
    ck_assert_uint_eq(jsi_rs_next_member(&s, 0), 5);
    ck_assert_uint_eq(jsi_rs_next_member(&s, 7), 7);
    ck_assert_uint_eq(jsi_rs_next_member(&s, 9), 12);
    ck_assert_uint_eq(jsi_rs_next_member(&s, 13), 0);
    ck_assert_uint_eq(jsi_rs_next_gap(&s, 1), 1);
    ck_assert_uint_eq(jsi_rs_next_gap(&s, 5), 9);
    ck_assert_uint_eq(jsi_rs_next_gap(&s, 8), 9);
    ck_assert_uint_eq(jsi_rs_next_gap(&s, 12), 13);
    ck_assert_uint_eq(jsi_rs_next_gap(&s, 100), 100);
    jsi_rs_free(&s);
}
END_TEST

START_TEST(empty_set_answers_every_query) {
    jsi_rangeset s = JSI_RANGESET_INIT;

    ck_assert_int_eq(jsi_rs_contains(&s, 1), 0);
    ck_assert_uint_eq(jsi_rs_total(&s), 0);
    ck_assert_uint_eq(jsi_rs_count_in(&s, 1, 100), 0);
    ck_assert_uint_eq(jsi_rs_next_member(&s, 1), 0);
    ck_assert_uint_eq(jsi_rs_next_gap(&s, 7), 7);
    jsi_rs_remove_below(&s, 10);
    ck_assert_int_eq(jsi_rs_remove(&s, 1, 10), 0);
    jsi_rs_clear(&s);
    jsi_rs_free(&s);
    jsi_rs_free(&s);
}
END_TEST

START_TEST(runs_reaching_uint64_max_do_not_overflow) {
    jsi_rangeset s = JSI_RANGESET_INIT;
    const uint64_t M = UINT64_MAX;

    ck_assert_int_eq(jsi_rs_add(&s, M - 1, M), 0);
    ck_assert_int_eq(jsi_rs_add(&s, M - 5, M - 2), 0);
    assert_runs(&s, (const uint64_t[]){M - 5, M}, 1);
    ck_assert_int_eq(jsi_rs_contains(&s, M), 1);
    ck_assert_uint_eq(jsi_rs_next_gap(&s, M - 3), 0);
    ck_assert_uint_eq(jsi_rs_next_member(&s, M), M);
    ck_assert_uint_eq(jsi_rs_count_in(&s, M - 10, M), 6);
    ck_assert_int_eq(jsi_rs_remove(&s, M, M), 0);
    assert_runs(&s, (const uint64_t[]){M - 5, M - 1}, 1);
    ck_assert_uint_eq(jsi_rs_next_gap(&s, M - 3), M);
    ck_assert_int_eq(jsi_rs_remove(&s, M - 3, M - 3), 0);
    assert_runs(&s, (const uint64_t[]){M - 5, M - 4, M - 2, M - 1}, 2);
    ck_assert_int_eq(jsi_rs_add(&s, 1, M), 0);
    assert_runs(&s, (const uint64_t[]){1, M}, 1);
    ck_assert_uint_eq(jsi_rs_total(&s), M);
    ck_assert_uint_eq(jsi_rs_count_in(&s, 0, M), M);
    jsi_rs_remove_below(&s, M);
    assert_runs(&s, (const uint64_t[]){M, M}, 1);
    jsi_rs_free(&s);
}
END_TEST

START_TEST(clear_empties_but_keeps_the_set_usable) {
    jsi_rangeset s = JSI_RANGESET_INIT;

    jsi_rs_add(&s, 1, 2);
    jsi_rs_add(&s, 4, 5);
    jsi_rs_clear(&s);
    ck_assert_uint_eq(s.n, 0);
    ck_assert_uint_eq(jsi_rs_total(&s), 0);
    ck_assert_int_eq(jsi_rs_add(&s, 9, 9), 0);
    assert_runs(&s, (const uint64_t[]){9, 9}, 1);
    jsi_rs_free(&s);
    ck_assert_ptr_null(s.r);
    ck_assert_uint_eq(s.cap, 0);
}
END_TEST

/* ---- allocation failure -------------------------------------------------- */

static void alloc_teardown(void) { jsi_alloc_fail_at(0, 0); }

static void fill_to_capacity(jsi_rangeset *s) {
    uint64_t v = 1;
    do {
        ck_assert_int_eq(jsi_rs_add(s, v, v), 0);
        v += 10;
    } while (s->n < s->cap);
}

START_TEST(add_out_of_memory_leaves_set_unchanged) {
    jsi_rangeset s = JSI_RANGESET_INIT;
    jsi_range before[64];
    size_t n;

    fill_to_capacity(&s);
    n = s.n;
    ck_assert_uint_le(n, 64);
    memcpy(before, s.r, n * sizeof(jsi_range));
    jsi_alloc_fail_at(1, 1);
    ck_assert_int_eq(jsi_rs_add(&s, 5, 5), JS_ENOMEM);
    ck_assert_uint_eq(s.n, n);
    ck_assert_int_eq(memcmp(s.r, before, n * sizeof(jsi_range)), 0);
    /* Growing an existing run needs no memory. */
    ck_assert_int_eq(jsi_rs_add(&s, 2, 3), 0);
    ck_assert_int_eq(jsi_rs_contains(&s, 3), 1);
    jsi_alloc_fail_at(0, 0);
    jsi_rs_free(&s);
}
END_TEST

START_TEST(remove_split_out_of_memory_leaves_set_unchanged) {
    jsi_rangeset s = JSI_RANGESET_INIT;
    size_t n;

    fill_to_capacity(&s);
    ck_assert_int_eq(jsi_rs_add(&s, 2, 9), 0); /* merges into [1, 9] */
    ck_assert_uint_eq(s.r[0].hi, 9);
    fill_to_capacity(&s);
    n = s.n;
    jsi_alloc_fail_at(1, 1);
    ck_assert_int_eq(jsi_rs_remove(&s, 4, 5), JS_ENOMEM);
    ck_assert_uint_eq(s.n, n);
    ck_assert_uint_eq(jsi_rs_count_in(&s, 1, 9), 9);
    /* Trimming or dropping runs needs no memory. */
    ck_assert_int_eq(jsi_rs_remove(&s, 8, 9), 0);
    ck_assert_int_eq(jsi_rs_remove(&s, 11, 11), 0);
    ck_assert_uint_eq(s.n, n - 1);
    jsi_alloc_fail_at(0, 0);
    ck_assert_int_eq(jsi_rs_remove(&s, 4, 5), 0);
    ck_assert_uint_eq(s.n, n);
    jsi_rs_free(&s);
}
END_TEST

/* ---- against a bitmap model ---------------------------------------------- */

#define U 1500 /* the model covers 1..U; ops reach a little beyond */

static uint64_t model_next(const uint8_t *m, uint64_t v, int want) {
    for (uint64_t i = v; i <= U + 64; i++)
        if (m[i] == want)
            return i;
    return want ? 0 : U + 65;
}

static void check_against_model(const jsi_rangeset *s, const uint8_t *m) {
    uint64_t total = 0;

    REQUIRE(well_formed(s));
    for (uint64_t v = 1; v <= U + 64; v++) {
        REQUIRE(jsi_rs_contains(s, v) == m[v]);
        total += m[v];
    }
    REQUIRE(jsi_rs_total(s) == total);
    REQUIRE(s->n == 0 || s->r[s->n - 1].hi <= U + 64);
}

static void check_queries(const jsi_rangeset *s, const uint8_t *m) {
    for (int q = 0; q < 20; q++) {
        uint64_t a = 1 + rng() % (U + 60), b = a + rng() % 300, c = 0;
        if (b > U + 64)
            b = U + 64;
        for (uint64_t v = a; v <= b; v++)
            c += m[v];
        REQUIRE(jsi_rs_count_in(s, a, b) == c);
        REQUIRE(jsi_rs_next_member(s, a) == model_next(m, a, 1));
        REQUIRE(jsi_rs_next_gap(s, a) == model_next(m, a, 0));
    }
}

START_TEST(random_operations_agree_with_bitmap_model) {
    static uint8_t m[U + 66];
    jsi_rangeset s = JSI_RANGESET_INIT;

    rng_state = (uint64_t)_i * 1000 + 7;
    memset(m, 0, sizeof m);
    for (int op = 0; op < 4000; op++) {
        uint64_t lo = 1 + rng() % U;
        uint64_t len = rng() % 8 == 0 ? rng() % 200 : rng() % 4;
        uint64_t hi = JSI_MIN(lo + len, U + 64);
        switch (rng() % 10) {
        case 0: case 1: case 2: case 3: case 4:
            REQUIRE(jsi_rs_add(&s, lo, hi) == 0);
            for (uint64_t v = lo; v <= hi; v++)
                m[v] = 1;
            break;
        case 5: case 6: case 7:
            REQUIRE(jsi_rs_remove(&s, lo, hi) == 0);
            for (uint64_t v = lo; v <= hi; v++)
                m[v] = 0;
            break;
        case 8:
            if (rng() % 8 == 0) {
                lo = rng() % 100;
                jsi_rs_remove_below(&s, lo);
                for (uint64_t v = 0; v < lo; v++)
                    m[v] = 0;
            }
            break;
        default:
            check_queries(&s, m);
        }
        check_against_model(&s, m);
    }
    jsi_rs_free(&s);
}
END_TEST

/* ---- varints ------------------------------------------------------------- */

START_TEST(uvarint_round_trips_edge_values) {
    const uint64_t vals[] = {0,          1,          127,
                             128,        16383,      16384,
                             UINT32_MAX, UINT64_C(1) << 35,
                             UINT64_C(1) << 63,      UINT64_MAX - 1,
                             UINT64_MAX};
    const size_t lens[] = {1, 1, 1, 2, 2, 3, 5, 6, 10, 10, 10};
    uint8_t b[16];

    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint64_t got = 12345;
        size_t n = jsi_uvarint_put(b, vals[i]);
        ck_assert_uint_eq(n, lens[i]);
        ck_assert_uint_eq(jsi_uvarint_get(b, n, &got), n);
        ck_assert_uint_eq(got, vals[i]);
        /* Extra bytes after it are not consumed. */
        b[n] = 0x7f;
        ck_assert_uint_eq(jsi_uvarint_get(b, n + 1, &got), n);
        /* Every truncation is refused. */
        for (size_t k = 0; k < n; k++)
            ck_assert_uint_eq(jsi_uvarint_get(b, k, &got), 0);
    }
}
END_TEST

START_TEST(uvarint_get_rejects_overlong_and_oversized) {
    uint64_t v;
    const uint8_t nonminimal[] = {0x80, 0x00};
    const uint8_t nonminimal2[] = {0xff, 0x80, 0x00};
    const uint8_t eleven[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                              0xff, 0xff, 0xff, 0x81, 0x00};
    const uint8_t too_big[] = {0xff, 0xff, 0xff, 0xff, 0xff,
                               0xff, 0xff, 0xff, 0xff, 0x02};
    const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0xff,
                           0xff, 0xff, 0xff, 0xff, 0x01};

    ck_assert_uint_eq(jsi_uvarint_get(nonminimal, 2, &v), 0);
    ck_assert_uint_eq(jsi_uvarint_get(nonminimal2, 3, &v), 0);
    ck_assert_uint_eq(jsi_uvarint_get(eleven, 11, &v), 0);
    ck_assert_uint_eq(jsi_uvarint_get(too_big, 10, &v), 0);
    ck_assert_uint_eq(jsi_uvarint_get(max, 10, &v), 10);
    ck_assert_uint_eq(v, UINT64_MAX);
}
END_TEST

START_TEST(uvarint_round_trips_random_values) {
    uint8_t b[10];

    rng_state = 99;
    for (int i = 0; i < 100000; i++) {
        uint64_t x = rng() >> (rng() % 64), got;
        size_t n = jsi_uvarint_put(b, x);
        REQUIRE(jsi_uvarint_get(b, n, &got) == n);
        REQUIRE(got == x);
    }
}
END_TEST

/* ---- encode and decode --------------------------------------------------- */

static void random_set(jsi_rangeset *s, int runs) {
    uint64_t v = rng() % 1000;
    for (int i = 0; i < runs; i++) {
        uint64_t len = rng() % 3 == 0 ? rng() % 100000 : rng() % 5;
        v += 1 + rng() % (rng() % 2 ? 3 : 1000000);
        ck_assert_int_eq(jsi_rs_add(s, v, v + len), 0);
        v += len;
    }
}

static int sets_equal(const jsi_rangeset *a, const jsi_rangeset *b) {
    return a->n == b->n &&
           (a->n == 0 || memcmp(a->r, b->r, a->n * sizeof(jsi_range)) == 0);
}

START_TEST(encode_decode_round_trips) {
    jsi_rangeset a = JSI_RANGESET_INIT, b = JSI_RANGESET_INIT;
    jsi_buf buf = {NULL, 0, 0};
    size_t used;

    rng_state = 5;
    for (int trial = 0; trial < 50; trial++) {
        jsi_rs_clear(&a);
        random_set(&a, (int)(rng() % 200));
        buf.len = 0;
        ck_assert_int_eq(jsi_buf_append(&buf, "pre", 3), 0);
        ck_assert_int_eq(jsi_rs_encode(&a, &buf), 0);
        ck_assert_int_eq(jsi_buf_append(&buf, "post", 4), 0);
        used = 0;
        ck_assert_int_eq(jsi_rs_decode(&b, buf.p + 3, buf.len - 3, &used), 0);
        ck_assert_uint_eq(used, buf.len - 7);
        ck_assert_int_eq(well_formed(&b), 1);
        ck_assert_int_eq(sets_equal(&a, &b), 1);
    }
    jsi_buf_free(&buf);
    jsi_rs_free(&a);
    jsi_rs_free(&b);
}
END_TEST

START_TEST(encode_of_extreme_runs_round_trips) {
    jsi_rangeset a = JSI_RANGESET_INIT, b = JSI_RANGESET_INIT;
    jsi_buf buf = {NULL, 0, 0};

    jsi_rs_add(&a, 1, 1);
    jsi_rs_add(&a, 3, UINT64_MAX - 2);
    jsi_rs_add(&a, UINT64_MAX, UINT64_MAX);
    ck_assert_int_eq(jsi_rs_encode(&a, &buf), 0);
    ck_assert_int_eq(jsi_rs_decode(&b, buf.p, buf.len, NULL), 0);
    ck_assert_int_eq(sets_equal(&a, &b), 1);
    jsi_buf_free(&buf);
    jsi_rs_free(&a);
    jsi_rs_free(&b);
}
END_TEST

START_TEST(empty_set_encodes_as_one_zero_byte) {
    jsi_rangeset a = JSI_RANGESET_INIT, b = JSI_RANGESET_INIT;
    jsi_buf buf = {NULL, 0, 0};
    size_t used = 99;

    jsi_rs_add(&b, 4, 4);
    ck_assert_int_eq(jsi_rs_encode(&a, &buf), 0);
    ck_assert_uint_eq(buf.len, 1);
    ck_assert_uint_eq(buf.p[0], 0);
    ck_assert_int_eq(jsi_rs_decode(&b, buf.p, buf.len, &used), 0);
    ck_assert_uint_eq(used, 1);
    ck_assert_uint_eq(b.n, 0);
    jsi_buf_free(&buf);
    jsi_rs_free(&b);
}
END_TEST

START_TEST(decode_replaces_existing_contents) {
    jsi_rangeset a = JSI_RANGESET_INIT, b = JSI_RANGESET_INIT;
    jsi_buf buf = {NULL, 0, 0};

    jsi_rs_add(&a, 10, 20);
    jsi_rs_add(&b, 1, 5);
    jsi_rs_add(&b, 30, 40);
    ck_assert_int_eq(jsi_rs_encode(&a, &buf), 0);
    ck_assert_int_eq(jsi_rs_decode(&b, buf.p, buf.len, NULL), 0);
    assert_runs(&b, (const uint64_t[]){10, 20}, 1);
    jsi_buf_free(&buf);
    jsi_rs_free(&a);
    jsi_rs_free(&b);
}
END_TEST

static void assert_corrupt(const uint8_t *p, size_t n) {
    jsi_rangeset s = JSI_RANGESET_INIT;

    jsi_rs_add(&s, 7, 8);
    ck_assert_int_eq(jsi_rs_decode(&s, p, n, NULL), JS_ECORRUPT);
    ck_assert_str_ne(js_errmsg(), "");
    assert_runs(&s, (const uint64_t[]){7, 8}, 1);
    jsi_rs_free(&s);
}

START_TEST(decode_rejects_each_invariant_violation) {
    /* count, then (lo - prev_hi, hi - lo) per run */
    const uint8_t first_lo_zero[] = {1, 0, 0};
    const uint8_t adjacent[] = {2, 1, 0, 1, 0};      /* [1,1] [2,2] */
    const uint8_t overlapping[] = {2, 5, 3, 0, 0};   /* [5,8] [8,8] */
    const uint8_t count_too_big[] = {3, 1, 0, 2, 0};
    const uint8_t hi_overflows[] = {1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0x01, 2};
    const uint8_t lo_overflows[] = {2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0x01, 0, 2, 0};
    const uint8_t overlong_count[] = {0x81, 0x00, 1, 0};
    const uint8_t huge_count[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0x01, 1, 0};

    assert_corrupt(first_lo_zero, sizeof first_lo_zero);
    assert_corrupt(adjacent, sizeof adjacent);
    assert_corrupt(overlapping, sizeof overlapping);
    assert_corrupt(count_too_big, sizeof count_too_big);
    assert_corrupt(hi_overflows, sizeof hi_overflows);
    assert_corrupt(lo_overflows, sizeof lo_overflows);
    assert_corrupt(overlong_count, sizeof overlong_count);
    assert_corrupt(huge_count, sizeof huge_count);
    assert_corrupt(NULL, 0);
}
END_TEST

START_TEST(decode_rejects_every_truncation) {
    jsi_rangeset a = JSI_RANGESET_INIT;
    jsi_buf buf = {NULL, 0, 0};

    rng_state = 11;
    random_set(&a, 40);
    ck_assert_int_eq(jsi_rs_encode(&a, &buf), 0);
    for (size_t k = 0; k < buf.len; k++) {
        /* A copy of exactly k bytes, so ASan catches any overread. */
        uint8_t *p = malloc(k ? k : 1);
        jsi_rangeset s = JSI_RANGESET_INIT;
        memcpy(p, buf.p, k);
        REQUIRE(jsi_rs_decode(&s, p, k, NULL) == JS_ECORRUPT);
        REQUIRE(s.n == 0);
        free(p);
    }
    jsi_buf_free(&buf);
    jsi_rs_free(&a);
}
END_TEST

/* Random damage never crashes; whatever decodes is well formed and is the
 * unique (canonical) decoding of the bytes it consumed. */
START_TEST(decode_of_garbled_input_is_safe_and_canonical) {
    jsi_rangeset a = JSI_RANGESET_INIT;
    jsi_buf buf = {NULL, 0, 0}, again = {NULL, 0, 0};
    int accepted = 0, rejected = 0;

    rng_state = 12;
    random_set(&a, 30);
    ck_assert_int_eq(jsi_rs_encode(&a, &buf), 0);
    for (int trial = 0; trial < 20000; trial++) {
        uint8_t *p = malloc(buf.len);
        jsi_rangeset s = JSI_RANGESET_INIT;
        size_t used = 0;
        int flips = 1 + (int)(rng() % 4), rc;

        memcpy(p, buf.p, buf.len);
        for (int f = 0; f < flips; f++)
            p[rng() % buf.len] ^= (uint8_t)(1u << (rng() % 8));
        rc = jsi_rs_decode(&s, p, buf.len, &used);
        REQUIRE(rc == 0 || rc == JS_ECORRUPT);
        if (rc == 0) {
            accepted++;
            REQUIRE(well_formed(&s));
            REQUIRE(used <= buf.len);
            again.len = 0;
            REQUIRE(jsi_rs_encode(&s, &again) == 0);
            REQUIRE(again.len == used);
            REQUIRE(memcmp(again.p, p, used) == 0);
        } else {
            rejected++;
        }
        jsi_rs_free(&s);
        free(p);
    }
    ck_assert_int_gt(accepted, 0);
    ck_assert_int_gt(rejected, 0);
    jsi_buf_free(&buf);
    jsi_buf_free(&again);
    jsi_rs_free(&a);
}
END_TEST

START_TEST(decode_out_of_memory_is_enomem) {
    jsi_rangeset a = JSI_RANGESET_INIT, b = JSI_RANGESET_INIT;
    jsi_buf buf = {NULL, 0, 0};

    jsi_rs_add(&a, 3, 4);
    jsi_rs_add(&b, 9, 9);
    ck_assert_int_eq(jsi_rs_encode(&a, &buf), 0);
    jsi_alloc_fail_at(1, 0);
    ck_assert_int_eq(jsi_rs_decode(&b, buf.p, buf.len, NULL), JS_ENOMEM);
    jsi_alloc_fail_at(0, 0);
    assert_runs(&b, (const uint64_t[]){9, 9}, 1);
    jsi_buf_free(&buf);
    jsi_rs_free(&a);
    jsi_rs_free(&b);
}
END_TEST

START_TEST(encode_out_of_memory_leaves_buffer_unchanged) {
    jsi_rangeset a = JSI_RANGESET_INIT;
    jsi_buf buf = {NULL, 0, 0};

    jsi_rs_add(&a, 3, 4);
    ck_assert_int_eq(jsi_buf_append(&buf, "x", 1), 0);
    buf.cap = buf.len; /* Force the encoder to grow the buffer. */
    jsi_alloc_fail_at(1, 0);
    ck_assert_int_eq(jsi_rs_encode(&a, &buf), JS_ENOMEM);
    jsi_alloc_fail_at(0, 0);
    ck_assert_uint_eq(buf.len, 1);
    jsi_buf_free(&buf);
    jsi_rs_free(&a);
}
END_TEST

static Suite *rangeset_suite(void) {
    Suite *s = suite_create("rangeset");
    TCase *t;

    t = tcase_create("ops");
    tcase_add_test(t, add_merges_overlapping_and_adjacent_runs);
    tcase_add_test(t, add_spanning_many_runs_collapses_them);
    tcase_add_test(t, add_rejects_zero_and_inverted_runs);
    tcase_add_test(t, contains_is_exact_at_run_edges);
    tcase_add_test(t, remove_splits_trims_and_drops_runs);
    tcase_add_test(t, remove_below_drops_and_trims_leading_runs);
    tcase_add_test(t, counts_next_member_and_next_gap);
    tcase_add_test(t, empty_set_answers_every_query);
    tcase_add_test(t, runs_reaching_uint64_max_do_not_overflow);
    tcase_add_test(t, clear_empties_but_keeps_the_set_usable);
    suite_add_tcase(s, t);

    t = tcase_create("alloc");
    tcase_add_checked_fixture(t, NULL, alloc_teardown);
    tcase_add_test(t, add_out_of_memory_leaves_set_unchanged);
    tcase_add_test(t, remove_split_out_of_memory_leaves_set_unchanged);
    tcase_add_test(t, decode_out_of_memory_is_enomem);
    tcase_add_test(t, encode_out_of_memory_leaves_buffer_unchanged);
    suite_add_tcase(s, t);

    t = tcase_create("model");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, random_operations_agree_with_bitmap_model, 0, 4);
    suite_add_tcase(s, t);

    t = tcase_create("codec");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, uvarint_round_trips_edge_values);
    tcase_add_test(t, uvarint_get_rejects_overlong_and_oversized);
    tcase_add_test(t, uvarint_round_trips_random_values);
    tcase_add_test(t, encode_decode_round_trips);
    tcase_add_test(t, encode_of_extreme_runs_round_trips);
    tcase_add_test(t, empty_set_encodes_as_one_zero_byte);
    tcase_add_test(t, decode_replaces_existing_contents);
    tcase_add_test(t, decode_rejects_each_invariant_violation);
    tcase_add_test(t, decode_rejects_every_truncation);
    tcase_add_test(t, decode_of_garbled_input_is_safe_and_canonical);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    int failed = tu_run_suite(rangeset_suite());
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
