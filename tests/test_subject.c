/*
 * test_subject.c - subject validation, matching, overlap and subset tests,
 * name rules, and the per-subject index.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "subject.h"
#include "util.h"
#include "runner.h"

/* check records a location on every passing ck_assert (a write(2) each);
 * loops over hundreds of thousands of items use this instead, which only
 * reaches check when it fails. */
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

static int valid(const char *s, int wc) {
    return jsi_subject_valid(s, strlen(s), wc);
}

static int match(const char *f, const char *s) {
    return jsi_subject_match(f, strlen(f), s, strlen(s));
}

/* ---- validation ---------------------------------------------------------- */

typedef struct valid_case {
    const char *s;
    int literal_ok;  /* valid with wildcards disallowed */
    int filter_ok;   /* valid with wildcards allowed */
} valid_case;

static const valid_case valid_cases[] = {
    {"a", 1, 1},
    {"orders.new.eu", 1, 1},
    {"", 0, 0},
    {".", 0, 0},
    {"..", 0, 0},
    {"a..b", 0, 0},
    {".a", 0, 0},
    {"a.", 0, 0},
    {"a b", 0, 0},
    {" a", 0, 0},
    {"a ", 0, 0},
    {"a\tb", 0, 0},
    {"a\nb", 0, 0},
    {"a\rb", 0, 0},
    {"a\x01", 0, 0},
    {"a\x7f", 0, 0},
    {"*", 0, 1},
    {">", 0, 1},
    {"a.*", 0, 1},
    {"*.a", 0, 1},
    {"a.*.c", 0, 1},
    {"a.>", 0, 1},
    {"*.>", 0, 1},
    {"a.>.b", 0, 0},
    {">.a", 0, 0},
    {">.>", 0, 0},
    {"a.*.", 0, 0},
    {"a.>.", 0, 0},
    {"*a", 1, 1},
    {"a*", 1, 1},
    {"a>", 1, 1},
    {">a", 1, 1},
    {"a.**.b", 1, 1},
    {"a.>>", 1, 1},
    {"a.>>.b", 1, 1},
    {"\xc3\xbcnic\xc3\xb6" "de.\xe2\x82\xac", 1, 1},
    {"$JS.API.STREAM.INFO", 1, 1},
    {"a-b_c/d:e", 1, 1},
};

START_TEST(subject_valid_truth_table) {
    for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++) {
        const valid_case *c = &valid_cases[i];
        ck_assert_msg(valid(c->s, 0) == c->literal_ok,
                      "literal \"%s\": want %d", c->s, c->literal_ok);
        ck_assert_msg(valid(c->s, 1) == c->filter_ok,
                      "filter \"%s\": want %d", c->s, c->filter_ok);
    }
}
END_TEST

START_TEST(subject_with_nul_byte_is_invalid) {
    ck_assert_int_eq(jsi_subject_valid("a\0b", 3, 1), 0);
    ck_assert_int_eq(jsi_subject_valid("ab\0", 3, 1), 0);
    /* The length, not a NUL, bounds the subject. */
    ck_assert_int_eq(jsi_subject_valid("a.b..", 3, 0), 1);
}
END_TEST

START_TEST(subject_null_or_empty_is_invalid) {
    ck_assert_int_eq(jsi_subject_valid(NULL, 0, 1), 0);
    ck_assert_int_eq(jsi_subject_valid("abc", 0, 1), 0);
}
END_TEST

START_TEST(subject_of_max_length_is_valid_and_one_more_is_not) {
    char *s = malloc(JS_MAX_SUBJECT_LEN + 2);

    for (size_t i = 0; i < JS_MAX_SUBJECT_LEN + 1; i++)
        s[i] = (i % 2) ? '.' : 'x';
    s[JS_MAX_SUBJECT_LEN - 1] = 'x'; /* 4096 bytes ending in a token */
    ck_assert_int_eq(jsi_subject_valid(s, JS_MAX_SUBJECT_LEN, 0), 1);
    s[JS_MAX_SUBJECT_LEN] = 'x';
    ck_assert_int_eq(jsi_subject_valid(s, JS_MAX_SUBJECT_LEN + 1, 0), 0);
    memset(s, 'y', JS_MAX_SUBJECT_LEN);
    ck_assert_int_eq(jsi_subject_valid(s, JS_MAX_SUBJECT_LEN, 0), 1);
    s[JS_MAX_SUBJECT_LEN - 1] = '>';
    s[JS_MAX_SUBJECT_LEN - 2] = '.';
    ck_assert_int_eq(jsi_subject_valid(s, JS_MAX_SUBJECT_LEN, 1), 1);
    ck_assert_int_eq(jsi_subject_valid(s, JS_MAX_SUBJECT_LEN, 0), 0);
    free(s);
}
END_TEST

START_TEST(has_wildcard_only_for_whole_wildcard_tokens) {
    ck_assert_int_eq(jsi_subject_has_wildcard("a.b", 3), 0);
    ck_assert_int_eq(jsi_subject_has_wildcard("a.*", 3), 1);
    ck_assert_int_eq(jsi_subject_has_wildcard("*.a", 3), 1);
    ck_assert_int_eq(jsi_subject_has_wildcard("a.>", 3), 1);
    ck_assert_int_eq(jsi_subject_has_wildcard("*", 1), 1);
    ck_assert_int_eq(jsi_subject_has_wildcard(">", 1), 1);
    ck_assert_int_eq(jsi_subject_has_wildcard("*a.b>", 5), 0);
    ck_assert_int_eq(jsi_subject_has_wildcard("a.**", 4), 0);
}
END_TEST

/* ---- matching ------------------------------------------------------------ */

typedef struct pair_case {
    const char *a, *b;
    int want;
} pair_case;

static const pair_case match_cases[] = {
    {"a.b", "a.b", 1},      {"a.b", "a.c", 0},      {"a.b", "a.b.c", 0},
    {"a.b.c", "a.b", 0},    {"a.b", "a.bb", 0},     {"a.bb", "a.b", 0},
    {"ab", "a", 0},         {"a.*", "a.b", 1},      {"a.*", "a", 0},
    {"a.*", "a.b.c", 0},    {"*", "a", 1},          {"*", "a.b", 0},
    {"*.*", "a.b", 1},      {"a.*.c", "a.b.c", 1},  {"a.*.c", "a.b.d", 0},
    {"a.>", "a.b", 1},      {"a.>", "a.b.c.d", 1},  {"a.>", "a", 0},
    {"a.>", "b.c", 0},      {">", "a", 1},          {">", "a.b.c", 1},
    {"*.b.>", "a.b.c", 1},  {"*.b.>", "a.c.c", 0},  {"*.b.>", "a.b", 0},
    {"a.*a", "a.*a", 1},    {"a.*a", "a.ba", 0},    {"a.b*", "a.bc", 0},
    {"a.>b", "a.c", 0},     {"a.>b", "a.>b", 1},
};

START_TEST(match_truth_table) {
    for (size_t i = 0; i < sizeof match_cases / sizeof match_cases[0]; i++) {
        const pair_case *c = &match_cases[i];
        ck_assert_msg(match(c->a, c->b) == c->want, "match(%s, %s) != %d",
                      c->a, c->b, c->want);
    }
}
END_TEST

START_TEST(match_uses_lengths_not_nul) {
    ck_assert_int_eq(jsi_subject_match("a.*xyz", 3, "a.bq", 3), 1);
    ck_assert_int_eq(jsi_subject_match("a.b", 3, "a.b.c", 3), 1);
    ck_assert_int_eq(jsi_subject_match("a.b", 3, "a.b.c", 5), 0);
}
END_TEST

/* ---- collide and subset ------------------------------------------------- */

static const pair_case collide_cases[] = {
    {"a", "a", 1},           {"a", "b", 0},          {"a.>", "a", 0},
    {"a.*", "a.b.c", 0},     {"a.>", "*.b", 1},      {">", "a", 1},
    {">", "a.b.c", 1},       {">", ">", 1},          {"*", "a.b", 0},
    {"*", ">", 1},           {"*", "*", 1},          {"a.*.c", "a.b.*", 1},
    {"a.*.c", "a.b.d", 0},   {"a.b", "a.b.>", 0},    {"a.>", "a.b.>", 1},
    {"*.*", "a.>", 1},       {"*.*", "a.b.>", 0},    {"foo.*", "bar.>", 0},
    {"a.*a", "a.*", 1},      {"a.*a", "a.b", 0},     {"*.>", ">", 1},
    {"orders.*", "orders.new", 1}, {"a.b.c", "a.b", 0}, {"*.b", "a.*", 1},
};

START_TEST(collide_truth_table_both_ways) {
    for (size_t i = 0; i < sizeof collide_cases / sizeof collide_cases[0];
         i++) {
        const pair_case *c = &collide_cases[i];
        ck_assert_msg(jsi_subject_collide(c->a, c->b) == c->want,
                      "collide(%s, %s) != %d", c->a, c->b, c->want);
        ck_assert_msg(jsi_subject_collide(c->b, c->a) == c->want,
                      "collide(%s, %s) != %d", c->b, c->a, c->want);
    }
}
END_TEST

static const pair_case subset_cases[] = {
    {"a", "a", 1},         {"a", ">", 1},         {"a.b", "a.*", 1},
    {"a.*", "a.b", 0},     {"a.*", "a.*", 1},     {"a.*", "a.>", 1},
    {"a.>", "a.*", 0},     {"a.>", "a.>", 1},     {"a.>", ">", 1},
    {">", "a.>", 0},       {"a.b.c", "a.>", 1},   {"a", "a.>", 0},
    {"a.>", "*.>", 1},     {"*.>", "a.>", 0},     {"a.b", "*.*", 1},
    {"a.b.c", "*.*", 0},   {"*", ">", 1},         {">", "*", 0},
    {">", ">", 1},         {"a.*.c", "a.>", 1},   {"a.*.c", "*.*.c", 1},
    {"a.*.c", "a.b.c", 0}, {"a.*a", "a.*", 1},    {"a.*", "a.*a", 0},
    {"a.b", "a", 0},       {"*.>", "*.*", 0},     {"b.c", "a.>", 0},
};

START_TEST(subset_truth_table) {
    for (size_t i = 0; i < sizeof subset_cases / sizeof subset_cases[0]; i++) {
        const pair_case *c = &subset_cases[i];
        ck_assert_msg(jsi_subject_subset(c->a, c->b) == c->want,
                      "subset(%s, %s) != %d", c->a, c->b, c->want);
    }
}
END_TEST

/* Every filter of 1..3 tokens over {a, b, *, >}; every literal subject of
 * 1..5 tokens over {a, b, c}. A witness for a collision or for a failed
 * subset never needs more than one token past the longer filter, nor a
 * literal other than a, b and one fresh one (c). */
#define MAX_F 64
#define MAX_S 400

static size_t all_filters(char f[][16]) {
    static const char *tok[] = {"a", "b", "*", ">"};
    size_t n = 0;

    for (int len = 1; len <= 3; len++) {
        int combos = 1;
        for (int i = 0; i < len; i++)
            combos *= 4;
        for (int c = 0; c < combos; c++) {
            char buf[16] = "";
            int ok = 1, x = c;
            for (int i = 0; i < len; i++, x /= 4) {
                if (x % 4 == 3 && i != len - 1)
                    ok = 0;
                if (i > 0)
                    strcat(buf, ".");
                strcat(buf, tok[x % 4]);
            }
            if (ok)
                strcpy(f[n++], buf);
        }
    }
    return n;
}

static size_t all_subjects(char s[][16]) {
    size_t n = 0;

    for (int len = 1; len <= 5; len++) {
        int combos = 1;
        for (int i = 0; i < len; i++)
            combos *= 3;
        for (int c = 0; c < combos; c++) {
            char buf[16] = "";
            int x = c;
            for (int i = 0; i < len; i++, x /= 3) {
                if (i > 0)
                    strcat(buf, ".");
                strncat(buf, &"abc"[x % 3], 1);
            }
            strcpy(s[n++], buf);
        }
    }
    return n;
}

START_TEST(collide_and_subset_agree_with_brute_force) {
    static char f[MAX_F][16], s[MAX_S][16];
    size_t nf = all_filters(f), ns = all_subjects(s);

    ck_assert_uint_eq(nf, 4 + 12 + 36);
    ck_assert_uint_eq(ns, 3 + 9 + 27 + 81 + 243);
    for (size_t i = 0; i < nf; i++)
        for (size_t j = 0; j < nf; j++) {
            int both = 0, a_not_b = 0;
            for (size_t k = 0; k < ns; k++) {
                int ma = match(f[i], s[k]), mb = match(f[j], s[k]);
                both |= ma && mb;
                a_not_b |= ma && !mb;
            }
            ck_assert_msg(jsi_subject_collide(f[i], f[j]) == both,
                          "collide(%s, %s) != %d", f[i], f[j], both);
            ck_assert_msg(jsi_subject_subset(f[i], f[j]) == !a_not_b,
                          "subset(%s, %s) != %d", f[i], f[j], !a_not_b);
        }
}
END_TEST

/* ---- names ---------------------------------------------------------------- */

START_TEST(name_valid_accepts_ordinary_names) {
    const char *why = "unset";
    ck_assert_int_eq(jsi_name_valid("ORDERS", &why), 1);
    ck_assert_ptr_null(why);
    ck_assert_int_eq(jsi_name_valid("KV_bucket-1", NULL), 1);
    ck_assert_int_eq(jsi_name_valid("caf\xc3\xa9", NULL), 1);
}
END_TEST

START_TEST(name_valid_rejects_each_forbidden_character_with_a_reason) {
    static const char *bad[] = {"a b", "a\tb", "a\nb", "a\x01", "a\x7f",
                                "a.b", "a*",  "a>",  "a/b",  "a\\b", " a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        ck_assert_msg(jsi_name_valid(bad[i], &why) == 0, "accepted \"%s\"",
                      bad[i]);
        ck_assert_ptr_nonnull(why);
        ck_assert_uint_gt(strlen(why), 0);
    }
}
END_TEST

START_TEST(name_valid_rejects_empty_and_null) {
    const char *why = NULL;
    ck_assert_int_eq(jsi_name_valid("", &why), 0);
    ck_assert_ptr_nonnull(why);
    ck_assert_int_eq(jsi_name_valid(NULL, NULL), 0);
}
END_TEST

START_TEST(name_of_255_bytes_is_valid_and_256_is_not) {
    char n[JS_MAX_NAME_LEN + 2];
    const char *why = NULL;

    memset(n, 'N', sizeof n);
    n[JS_MAX_NAME_LEN] = '\0';
    ck_assert_int_eq(jsi_name_valid(n, NULL), 1);
    n[JS_MAX_NAME_LEN] = 'N';
    n[JS_MAX_NAME_LEN + 1] = '\0';
    ck_assert_int_eq(jsi_name_valid(n, &why), 0);
    ck_assert_ptr_nonnull(why);
}
END_TEST

/* ---- per-subject index ------------------------------------------------- */

static jsi_sidx_entry *put(jsi_sidx *x, const char *s, int *created) {
    return jsi_sidx_upsert(x, s, strlen(s), created);
}

static jsi_sidx_entry *get(jsi_sidx *x, const char *s) {
    return jsi_sidx_get(x, s, strlen(s));
}

START_TEST(sidx_new_index_is_empty) {
    jsi_sidx *x = jsi_sidx_new();
    size_t pos = 0;

    ck_assert_ptr_nonnull(x);
    ck_assert_uint_eq(jsi_sidx_size(x), 0);
    ck_assert_ptr_null(get(x, "a"));
    ck_assert_ptr_null(jsi_sidx_next(x, &pos));
    ck_assert_uint_gt(jsi_sidx_memory(x), 0);
    jsi_sidx_free(x);
    jsi_sidx_free(NULL);
}
END_TEST

START_TEST(sidx_upsert_creates_zeroed_entry_then_returns_it) {
    jsi_sidx *x = jsi_sidx_new();
    int created = -1;
    jsi_sidx_entry *e = put(x, "orders.eu", &created), *f;

    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(created, 1);
    ck_assert_uint_eq(e->count, 0);
    ck_assert_uint_eq(e->first, 0);
    ck_assert_uint_eq(e->last, 0);
    ck_assert_uint_eq(e->first_stale, 0);
    ck_assert_uint_eq(e->len, 9);
    ck_assert_str_eq(e->subj, "orders.eu");
    e->count = 5;
    f = put(x, "orders.eu", &created);
    ck_assert_ptr_eq(f, e);
    ck_assert_int_eq(created, 0);
    ck_assert_uint_eq(f->count, 5);
    ck_assert_uint_eq(jsi_sidx_size(x), 1);
    jsi_sidx_free(x);
}
END_TEST

START_TEST(sidx_keys_are_exact_bytes_of_given_length) {
    jsi_sidx *x = jsi_sidx_new();
    int created;
    jsi_sidx_entry *ab = put(x, "a.b", &created);
    jsi_sidx_entry *abc = put(x, "a.b.c", &created);

    ck_assert_ptr_ne(ab, abc);
    ck_assert_ptr_eq(jsi_sidx_get(x, "a.b.c", 3), ab);
    ck_assert_ptr_eq(jsi_sidx_get(x, "a.b.c", 5), abc);
    ck_assert_ptr_null(get(x, "a.B"));
    ck_assert_ptr_null(get(x, "a."));
    ck_assert_uint_eq(jsi_sidx_size(x), 2);
    jsi_sidx_free(x);
}
END_TEST

START_TEST(sidx_remove_forgets_only_that_subject) {
    jsi_sidx *x = jsi_sidx_new();
    int created;
    jsi_sidx_entry *a = put(x, "a", &created);

    put(x, "b", &created);
    jsi_sidx_remove(x, a);
    ck_assert_ptr_null(get(x, "a"));
    ck_assert_ptr_nonnull(get(x, "b"));
    ck_assert_uint_eq(jsi_sidx_size(x), 1);
    a = put(x, "a", &created);
    ck_assert_int_eq(created, 1);
    jsi_sidx_remove(x, NULL);
    ck_assert_uint_eq(jsi_sidx_size(x), 2);
    jsi_sidx_free(x);
}
END_TEST

START_TEST(sidx_holds_a_max_length_subject) {
    jsi_sidx *x = jsi_sidx_new();
    char *s = malloc(JS_MAX_SUBJECT_LEN + 1);
    int created;
    jsi_sidx_entry *e;

    memset(s, 'q', JS_MAX_SUBJECT_LEN);
    s[JS_MAX_SUBJECT_LEN] = '\0';
    e = put(x, s, &created);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->len, JS_MAX_SUBJECT_LEN);
    ck_assert_str_eq(e->subj, s);
    s[100] = 'r';
    ck_assert_ptr_null(get(x, s));
    free(s);
    jsi_sidx_free(x);
}
END_TEST

#define BIG_N 200000

static void subject_name(char *buf, size_t i) {
    snprintf(buf, 48, "orders.%zu.region-%zu", i, (i * 7919) % 1000);
}

/* Walk the index: each live entry carries its model index + 1 in count;
 * every live model subject is seen exactly once and nothing else is. */
static void check_walk(jsi_sidx *x, const uint8_t *live, size_t n) {
    uint8_t *seen = calloc(n, 1);
    size_t pos = 0, got = 0, want = 0;
    jsi_sidx_entry *e;
    char buf[48];

    while ((e = jsi_sidx_next(x, &pos)) != NULL) {
        size_t i = (size_t)e->count - 1;
        REQUIRE(i < n);
        REQUIRE(live[i] == 1);
        REQUIRE(seen[i] == 0);
        subject_name(buf, i);
        REQUIRE(strcmp(e->subj, buf) == 0);
        seen[i] = 1;
        got++;
    }
    for (size_t i = 0; i < n; i++)
        want += live[i];
    ck_assert_uint_eq(got, want);
    ck_assert_uint_eq(jsi_sidx_size(x), want);
    free(seen);
}

START_TEST(sidx_200k_subjects_agree_with_model) {
    jsi_sidx *x = jsi_sidx_new();
    uint8_t *live = calloc(BIG_N, 1);
    size_t entry_bytes = 0, table_bytes;
    char buf[48];
    int created;

    for (size_t i = 0; i < BIG_N; i++) {
        jsi_sidx_entry *e;
        subject_name(buf, i);
        e = put(x, buf, &created);
        REQUIRE(e != NULL);
        REQUIRE(created == 1);
        e->count = i + 1;
        live[i] = 1;
        entry_bytes += sizeof(jsi_sidx_entry) + strlen(buf) + 1;
    }
    ck_assert_uint_eq(jsi_sidx_size(x), BIG_N);
    /* Table overhead stays within a pointer and a tag per slot at a load
     * of no less than about a third. */
    ck_assert_uint_ge(jsi_sidx_memory(x), entry_bytes);
    table_bytes = jsi_sidx_memory(x) - entry_bytes;
    ck_assert_uint_le(table_bytes / BIG_N, 27);
    for (size_t i = 0; i < BIG_N; i++) {
        jsi_sidx_entry *e;
        subject_name(buf, i);
        e = get(x, buf);
        REQUIRE(e != NULL);
        REQUIRE(e->count == i + 1);
        REQUIRE(put(x, buf, &created) == e);
        REQUIRE(created == 0);
    }
    check_walk(x, live, BIG_N);

    for (size_t i = 0; i < BIG_N; i += 3) {
        subject_name(buf, i);
        jsi_sidx_remove(x, get(x, buf));
        live[i] = 0;
    }
    for (size_t i = 0; i < BIG_N; i++) {
        jsi_sidx_entry *e;
        subject_name(buf, i);
        e = get(x, buf);
        if (live[i]) {
            REQUIRE(e != NULL);
            REQUIRE(e->count == i + 1);
        } else {
            REQUIRE(e == NULL);
        }
    }
    check_walk(x, live, BIG_N);

    for (size_t i = 0; i < BIG_N; i += 3) {
        jsi_sidx_entry *e;
        subject_name(buf, i);
        e = put(x, buf, &created);
        REQUIRE(created == 1);
        REQUIRE(e->count == 0);
        e->count = i + 1;
        live[i] = 1;
    }
    check_walk(x, live, BIG_N);

    for (size_t i = 0; i < BIG_N; i++) {
        subject_name(buf, i);
        jsi_sidx_remove(x, get(x, buf));
        live[i] = 0;
    }
    check_walk(x, live, BIG_N);
    ck_assert_uint_eq(jsi_sidx_size(x), 0);
    free(live);
    jsi_sidx_free(x);
}
END_TEST

/* Heavy churn on a small set keeps clusters wrapping round the end of a
 * small table, which is where backward-shift deletion goes wrong. */
START_TEST(sidx_random_churn_agrees_with_model) {
    enum { UNIVERSE = 300, OPS = 200000 };
    jsi_sidx *x = jsi_sidx_new();
    uint8_t live[UNIVERSE] = {0};
    char buf[48];
    int created;

    rng_state = 42;
    for (int op = 0; op < OPS; op++) {
        size_t i = (size_t)(rng() % UNIVERSE);
        jsi_sidx_entry *e;
        subject_name(buf, i);
        switch (rng() % 3) {
        case 0:
            e = put(x, buf, &created);
            REQUIRE(e != NULL);
            REQUIRE(created == !live[i]);
            e->count = i + 1;
            live[i] = 1;
            break;
        case 1:
            e = get(x, buf);
            REQUIRE((e != NULL) == live[i]);
            if (e != NULL)
                jsi_sidx_remove(x, e);
            live[i] = 0;
            break;
        default:
            e = get(x, buf);
            REQUIRE((e != NULL) == live[i]);
            if (e != NULL)
                REQUIRE(e->count == i + 1);
        }
        if (op % 10000 == 0)
            check_walk(x, live, UNIVERSE);
    }
    check_walk(x, live, UNIVERSE);
    jsi_sidx_free(x);
}
END_TEST

START_TEST(sidx_upsert_failing_allocation_returns_null_and_keeps_index) {
    jsi_sidx *x = jsi_sidx_new();
    char buf[48];
    int created, failures = 0;
    size_t i = 0;

    /* Fail every allocation in turn while growing to 200 subjects. */
    for (uint64_t k = 1; i < 200; k++) {
        jsi_sidx_entry *e;
        subject_name(buf, i);
        jsi_alloc_fail_at(k % 3 + 1, 0);
        e = put(x, buf, &created);
        jsi_alloc_fail_at(0, 0);
        if (e == NULL) {
            failures++;
            ck_assert_int_eq(js_errmsg()[0] != '\0', 1);
            ck_assert_uint_eq(jsi_sidx_size(x), i);
            ck_assert_ptr_null(get(x, buf));
            continue;
        }
        ck_assert_int_eq(created, 1);
        e->count = ++i;
    }
    ck_assert_int_gt(failures, 0);
    for (size_t j = 0; j < 200; j++) {
        subject_name(buf, j);
        ck_assert_ptr_nonnull(get(x, buf));
        ck_assert_uint_eq(get(x, buf)->count, j + 1);
    }
    jsi_sidx_free(x);
}
END_TEST

START_TEST(sidx_new_failing_allocation_returns_null) {
    jsi_alloc_fail_at(1, 0);
    ck_assert_ptr_null(jsi_sidx_new());
    jsi_alloc_fail_at(0, 0);
}
END_TEST

static Suite *subject_suite(void) {
    Suite *s = suite_create("subject");
    TCase *t;

    t = tcase_create("valid");
    tcase_add_test(t, subject_valid_truth_table);
    tcase_add_test(t, subject_with_nul_byte_is_invalid);
    tcase_add_test(t, subject_null_or_empty_is_invalid);
    tcase_add_test(t, subject_of_max_length_is_valid_and_one_more_is_not);
    tcase_add_test(t, has_wildcard_only_for_whole_wildcard_tokens);
    suite_add_tcase(s, t);

    t = tcase_create("match");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, match_truth_table);
    tcase_add_test(t, match_uses_lengths_not_nul);
    tcase_add_test(t, collide_truth_table_both_ways);
    tcase_add_test(t, subset_truth_table);
    tcase_add_test(t, collide_and_subset_agree_with_brute_force);
    suite_add_tcase(s, t);

    t = tcase_create("name");
    tcase_add_test(t, name_valid_accepts_ordinary_names);
    tcase_add_test(t, name_valid_rejects_each_forbidden_character_with_a_reason);
    tcase_add_test(t, name_valid_rejects_empty_and_null);
    tcase_add_test(t, name_of_255_bytes_is_valid_and_256_is_not);
    suite_add_tcase(s, t);

    t = tcase_create("sidx");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, sidx_new_index_is_empty);
    tcase_add_test(t, sidx_upsert_creates_zeroed_entry_then_returns_it);
    tcase_add_test(t, sidx_keys_are_exact_bytes_of_given_length);
    tcase_add_test(t, sidx_remove_forgets_only_that_subject);
    tcase_add_test(t, sidx_holds_a_max_length_subject);
    tcase_add_test(t, sidx_200k_subjects_agree_with_model);
    tcase_add_test(t, sidx_random_churn_agrees_with_model);
    tcase_add_test(t, sidx_upsert_failing_allocation_returns_null_and_keeps_index);
    tcase_add_test(t, sidx_new_failing_allocation_returns_null);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    int failed = tu_run_suite(subject_suite());
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
