/*
 * test_util.c - errors, allocation hook, CRC-32C, byte buffers, clocks.
 */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"
#include "runner.h"

/* Internal to crc32c.c, exposed for this test only. */
uint32_t jsi_crc32c_sw(uint32_t crc, const void *buf, size_t len);
int jsi_crc32c_hw_available(void);

static uint64_t rng_state;

static uint64_t rng(void) {
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ---- errors ----------------------------------------------------------- */

START_TEST(err_set_returns_rc_and_records_detail_and_nats_code) {
    int rc = JSI_ERR(JS_EWRONG_LAST_SEQ, 10071, "wrong last sequence: %d", 41);
    ck_assert_int_eq(rc, JS_EWRONG_LAST_SEQ);
    ck_assert_str_eq(js_errmsg(), "wrong last sequence: 41");
    ck_assert_int_eq(js_errcode_nats(), 10071);
}
END_TEST

START_TEST(err_clear_empties_message_and_zeroes_nats_code) {
    JSI_ERR(JS_EINVAL, 10003, "something");
    jsi_err_clear();
    ck_assert_str_eq(js_errmsg(), "");
    ck_assert_int_eq(js_errcode_nats(), 0);
}
END_TEST

START_TEST(errmsg_is_empty_before_any_failure) {
    ck_assert_ptr_nonnull(js_errmsg());
    ck_assert_str_eq(js_errmsg(), "");
    ck_assert_int_eq(js_errcode_nats(), 0);
}
END_TEST

START_TEST(err_long_message_is_truncated_not_overflowed) {
    char big[2048];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    JSI_ERR(JS_EINVAL, 0, "%s", big);
    ck_assert_uint_gt(strlen(js_errmsg()), 100);
    ck_assert_uint_lt(strlen(js_errmsg()), sizeof big - 1);
    ck_assert_int_eq(js_errmsg()[0], 'x');
}
END_TEST

START_TEST(err_set_can_wrap_its_own_previous_message) {
    JSI_ERR(JS_EIO, 0, "read failed");
    JSI_ERR(JS_EIO, 0, "stream ORDERS: %s", js_errmsg());
    ck_assert_str_eq(js_errmsg(), "stream ORDERS: read failed");
}
END_TEST

typedef struct err_thread_arg {
    pthread_barrier_t *bar;
    const char *msg;
    int nats;
    int ok;
} err_thread_arg;

static void *err_thread(void *p) {
    err_thread_arg *a = p;

    JSI_ERR(JS_EINVAL, a->nats, "%s", a->msg);
    /* Both threads have set their message before either checks. */
    pthread_barrier_wait(a->bar);
    a->ok = strcmp(js_errmsg(), a->msg) == 0 && js_errcode_nats() == a->nats;
    pthread_barrier_wait(a->bar);
    return NULL;
}

START_TEST(errmsg_is_thread_local) {
    pthread_barrier_t bar;
    pthread_t t1, t2;
    err_thread_arg a = {&bar, "thread one", 10001, 0};
    err_thread_arg b = {&bar, "thread two", 10002, 0};

    jsi_err_clear();
    JSI_ERR(JS_EIO, 7, "main thread");
    ck_assert_int_eq(pthread_barrier_init(&bar, NULL, 2), 0);
    ck_assert_int_eq(pthread_create(&t1, NULL, err_thread, &a), 0);
    ck_assert_int_eq(pthread_create(&t2, NULL, err_thread, &b), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&bar);
    ck_assert_int_eq(a.ok, 1);
    ck_assert_int_eq(b.ok, 1);
    ck_assert_str_eq(js_errmsg(), "main thread");
    ck_assert_int_eq(js_errcode_nats(), 7);
}
END_TEST

START_TEST(strerror_names_every_code_distinctly) {
    const char *s[64];
    for (int rc = 0; rc >= JS_EKEY_EXISTS; rc--) {
        s[-rc] = js_strerror(rc);
        ck_assert_ptr_nonnull(s[-rc]);
        ck_assert_uint_gt(strlen(s[-rc]), 0);
        ck_assert_str_ne(s[-rc], "unknown error");
        for (int j = 0; j < -rc; j++)
            ck_assert_str_ne(s[j], s[-rc]);
    }
}
END_TEST

START_TEST(strerror_of_unknown_code_is_unknown_error) {
    const int bad[] = {1, 42, JS_EKEY_EXISTS - 1, -1000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_str_eq(js_strerror(bad[i]), "unknown error");
}
END_TEST

START_TEST(version_is_the_header_version) {
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", JS_VERSION_MAJOR,
             JS_VERSION_MINOR, JS_VERSION_PATCH);
    ck_assert_str_eq(js_version(), JS_VERSION_STRING);
    ck_assert_str_eq(js_version(), want);
}
END_TEST

/* ---- allocation --------------------------------------------------------- */

static void alloc_teardown(void) { jsi_alloc_fail_at(0, 0); }

START_TEST(alloc_fail_at_1_fails_only_the_next_allocation) {
    void *p;
    jsi_alloc_fail_at(1, 0);
    ck_assert_ptr_null(jsi_malloc(16));
    p = jsi_malloc(16);
    ck_assert_ptr_nonnull(p);
    jsi_free(p);
    ck_assert_uint_eq(jsi_alloc_failed(), 1);
}
END_TEST

START_TEST(alloc_fail_at_n_fails_the_nth_of_any_kind) {
    void *a, *b, *d;
    char *c;
    jsi_alloc_fail_at(3, 0);
    a = jsi_malloc(8);
    b = jsi_calloc(2, 8);
    c = jsi_strdup("x");
    d = jsi_realloc(NULL, 8);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(jsi_alloc_failed(), 1);
    jsi_free(a);
    jsi_free(b);
    jsi_free(d);
}
END_TEST

START_TEST(alloc_fail_forever_fails_every_later_allocation) {
    void *a;
    jsi_alloc_fail_at(2, 1);
    a = jsi_malloc(8);
    ck_assert_ptr_nonnull(a);
    for (int i = 0; i < 10; i++)
        ck_assert_ptr_null(jsi_malloc(8));
    ck_assert_uint_eq(jsi_alloc_failed(), 10);
    jsi_alloc_fail_at(0, 0);
    jsi_free(a);
    a = jsi_malloc(8);
    ck_assert_ptr_nonnull(a);
    jsi_free(a);
}
END_TEST

START_TEST(alloc_fail_at_0_disables_the_hook) {
    jsi_alloc_fail_at(1, 1);
    jsi_alloc_fail_at(0, 0);
    for (int i = 0; i < 10; i++) {
        void *p = jsi_malloc(8);
        ck_assert_ptr_nonnull(p);
        jsi_free(p);
    }
    ck_assert_uint_eq(jsi_alloc_failed(), 0);
}
END_TEST

START_TEST(alloc_failed_realloc_keeps_the_old_block) {
    char *p = jsi_malloc(4), *q;
    memcpy(p, "abc", 4);
    jsi_alloc_fail_at(1, 0);
    q = jsi_realloc(p, 1 << 20);
    ck_assert_ptr_null(q);
    ck_assert_str_eq(p, "abc");
    jsi_free(p);
}
END_TEST

START_TEST(alloc_zero_bytes_returns_a_usable_pointer) {
    void *a = jsi_malloc(0), *b = jsi_calloc(0, 8), *c = jsi_realloc(NULL, 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    jsi_free(a);
    jsi_free(b);
    jsi_free(c);
}
END_TEST

START_TEST(calloc_overflow_returns_null) {
    ck_assert_ptr_null(jsi_calloc(SIZE_MAX / 2, 4));
}
END_TEST

START_TEST(free_null_is_harmless) { jsi_free(NULL); }
END_TEST

START_TEST(strndup_stops_at_n_or_at_nul) {
    char *a = jsi_strndup("abcdef", 3), *b = jsi_strndup("ab\0cd", 5);
    char *c = jsi_strdup("");
    ck_assert_str_eq(a, "abc");
    ck_assert_str_eq(b, "ab");
    ck_assert_str_eq(c, "");
    jsi_free(a);
    jsi_free(b);
    jsi_free(c);
}
END_TEST

#define ALLOC_THREADS 4
#define ALLOC_PER_THREAD 2000

static void *alloc_thread(void *p) {
    int *nulls = p;
    for (int i = 0; i < ALLOC_PER_THREAD; i++) {
        void *m = jsi_malloc(8);
        if (m == NULL)
            (*nulls)++;
        jsi_free(m);
    }
    return NULL;
}

START_TEST(alloc_hook_counts_exactly_across_threads) {
    pthread_t t[ALLOC_THREADS];
    int nulls[ALLOC_THREADS] = {0}, total = 0;

    jsi_alloc_fail_at(ALLOC_THREADS * ALLOC_PER_THREAD / 2, 0);
    for (int i = 0; i < ALLOC_THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, alloc_thread, &nulls[i]), 0);
    for (int i = 0; i < ALLOC_THREADS; i++) {
        pthread_join(t[i], NULL);
        total += nulls[i];
    }
    ck_assert_int_eq(total, 1);
    ck_assert_uint_eq(jsi_alloc_failed(), 1);
}
END_TEST

/* ---- crc32c ------------------------------------------------------------- */

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_vectors(crc_fn f) {
    uint8_t b[32];

    ck_assert_uint_eq(f(0, "123456789", 9), 0xE3069283u);
    /* RFC 3720 (iSCSI) appendix B.4. */
    memset(b, 0, sizeof b);
    ck_assert_uint_eq(f(0, b, 32), 0x8A9136AAu);
    memset(b, 0xff, sizeof b);
    ck_assert_uint_eq(f(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    ck_assert_uint_eq(f(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    ck_assert_uint_eq(f(0, b, 32), 0x113FDB5Cu);
}

START_TEST(crc32c_matches_known_vectors) { check_vectors(jsi_crc32c); }
END_TEST

START_TEST(crc32c_portable_matches_known_vectors) {
    check_vectors(jsi_crc32c_sw);
}
END_TEST

START_TEST(crc32c_of_nothing_is_the_input_crc) {
    ck_assert_uint_eq(jsi_crc32c(0, NULL, 0), 0);
    ck_assert_uint_eq(jsi_crc32c(0x12345678, "x", 0), 0x12345678);
    ck_assert_uint_eq(jsi_crc32c_sw(0xdeadbeef, NULL, 0), 0xdeadbeef);
}
END_TEST

START_TEST(crc32c_chains_across_split_points) {
    const char *s = "The quick brown fox jumps over the lazy dog, twice over.";
    size_t n = strlen(s);
    uint32_t whole = jsi_crc32c(0, s, n);
    for (size_t k = 0; k <= n; k++) {
        ck_assert_uint_eq(jsi_crc32c(jsi_crc32c(0, s, k), s + k, n - k), whole);
        ck_assert_uint_eq(jsi_crc32c_sw(jsi_crc32c(0, s, k), s + k, n - k),
                          whole);
    }
}
END_TEST

START_TEST(crc32c_uses_hardware_when_the_cpu_has_it) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    ck_assert_int_eq(jsi_crc32c_hw_available(),
                     __builtin_cpu_supports("sse4.2") ? 1 : 0);
#else
    ck_assert_int_eq(jsi_crc32c_hw_available(), 0);
#endif
}
END_TEST

START_TEST(crc32c_hw_and_portable_agree_for_every_length_and_alignment) {
    uint8_t buf[300 + 16];

    rng_state = 1;
    for (size_t len = 0; len <= 300; len++)
        for (size_t off = 0; off < 16; off++) {
            uint32_t seed = (uint32_t)rng();
            for (size_t i = 0; i < len; i++)
                buf[off + i] = (uint8_t)rng();
            ck_assert_uint_eq(jsi_crc32c(seed, buf + off, len),
                              jsi_crc32c_sw(seed, buf + off, len));
        }
}
END_TEST

START_TEST(crc32c_hw_and_portable_agree_on_a_large_buffer) {
    size_t n = (1 << 20) + 3;
    uint8_t *b = malloc(n);
    rng_state = 2;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)rng();
    ck_assert_uint_eq(jsi_crc32c(0, b + 1, n - 1), jsi_crc32c_sw(0, b + 1, n - 1));
    free(b);
}
END_TEST

typedef struct crc_thread_arg {
    uint32_t got;
} crc_thread_arg;

static void *crc_thread(void *p) {
    ((crc_thread_arg *)p)->got = jsi_crc32c(0, "123456789", 9);
    return NULL;
}

/* Runs in a fresh forked process, so this is the first use: the lazy
 * initialisation must be safe when it races. */
START_TEST(crc32c_first_use_from_many_threads_is_safe) {
    pthread_t t[8];
    crc_thread_arg a[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, crc_thread, &a[i]), 0);
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ck_assert_uint_eq(a[i].got, 0xE3069283u);
    }
}
END_TEST

/* ---- buffers ------------------------------------------------------------ */

START_TEST(buf_append_grows_and_keeps_contents) {
    jsi_buf b = {NULL, 0, 0};
    uint8_t want[5000];

    for (size_t i = 0; i < sizeof want; i++)
        want[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof want; i += 13)
        ck_assert_int_eq(jsi_buf_append(&b, want + i,
                                        JSI_MIN(13, sizeof want - i)), 0);
    ck_assert_uint_eq(b.len, sizeof want);
    ck_assert_uint_ge(b.cap, b.len);
    ck_assert_int_eq(memcmp(b.p, want, sizeof want), 0);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(buf_reserve_doubles_capacity) {
    jsi_buf b = {NULL, 0, 0};
    size_t cap;

    ck_assert_int_eq(jsi_buf_reserve(&b, 1), 0);
    cap = b.cap;
    ck_assert_uint_ge(cap, 1);
    b.len = cap;
    ck_assert_int_eq(jsi_buf_reserve(&b, 1), 0);
    ck_assert_uint_eq(b.cap, cap * 2);
    /* A request beyond double is met exactly enough, not less. */
    ck_assert_int_eq(jsi_buf_reserve(&b, cap * 10), 0);
    ck_assert_uint_ge(b.cap, b.len + cap * 10);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(buf_reserve_within_capacity_does_not_allocate) {
    jsi_buf b = {NULL, 0, 0};
    uint8_t *p;

    ck_assert_int_eq(jsi_buf_reserve(&b, 100), 0);
    p = b.p;
    jsi_alloc_fail_at(1, 1);
    ck_assert_int_eq(jsi_buf_reserve(&b, 100), 0);
    ck_assert_int_eq(jsi_buf_append(&b, "abc", 3), 0);
    jsi_alloc_fail_at(0, 0);
    ck_assert_ptr_eq(b.p, p);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(buf_reserve_overflow_is_enomem) {
    jsi_buf b = {NULL, 0, 0};
    ck_assert_int_eq(jsi_buf_append(&b, "ab", 2), 0);
    ck_assert_int_eq(jsi_buf_reserve(&b, SIZE_MAX), JS_ENOMEM);
    ck_assert_int_eq(jsi_buf_reserve(&b, SIZE_MAX - 1), JS_ENOMEM);
    ck_assert_uint_eq(b.len, 2);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(buf_alloc_failure_is_enomem_and_leaves_buffer_intact) {
    jsi_buf b = {NULL, 0, 0};
    char big[1000] = {0};

    ck_assert_int_eq(jsi_buf_append(&b, "hello", 5), 0);
    jsi_alloc_fail_at(1, 0);
    ck_assert_int_eq(jsi_buf_append(&b, big, sizeof big), JS_ENOMEM);
    ck_assert_str_ne(js_errmsg(), "");
    ck_assert_uint_eq(b.len, 5);
    ck_assert_int_eq(memcmp(b.p, "hello", 5), 0);
    ck_assert_int_eq(jsi_buf_append(&b, big, sizeof big), 0);
    ck_assert_uint_eq(b.len, 5 + sizeof big);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(buf_free_resets_and_append_of_nothing_is_ok) {
    jsi_buf b = {NULL, 0, 0};
    ck_assert_int_eq(jsi_buf_append(&b, NULL, 0), 0);
    ck_assert_int_eq(jsi_buf_append(&b, "x", 1), 0);
    jsi_buf_free(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    jsi_buf_free(&b);
}
END_TEST

/* ---- codecs, clocks --------------------------------------------------- */

START_TEST(le_codecs_round_trip_little_endian) {
    uint8_t b[8];
    jsi_put64(b, UINT64_C(0x0102030405060708));
    ck_assert_uint_eq(b[0], 0x08);
    ck_assert_uint_eq(b[7], 0x01);
    ck_assert_uint_eq(jsi_get64(b), UINT64_C(0x0102030405060708));
    jsi_put32(b, 0xfffefdfcu);
    ck_assert_uint_eq(jsi_get32(b), 0xfffefdfcu);
    jsi_put16(b, 0xbeef);
    ck_assert_uint_eq(jsi_get16(b), 0xbeef);
}
END_TEST

START_TEST(wallclock_is_nanoseconds_since_the_epoch) {
    int64_t before = (int64_t)time(NULL);
    int64_t ns = jsi_wallclock_ns();
    int64_t after = (int64_t)time(NULL);
    ck_assert_int_ge(ns / JSI_NS_PER_SEC, before);
    ck_assert_int_le(ns / JSI_NS_PER_SEC, after);
}
END_TEST

START_TEST(monotonic_clock_never_goes_back) {
    int64_t prev = jsi_monotonic_ns();
    ck_assert_int_gt(prev, 0);
    for (int i = 0; i < 10000; i++) {
        int64_t now = jsi_monotonic_ns();
        ck_assert_int_ge(now, prev);
        prev = now;
    }
}
END_TEST

static Suite *util_suite(void) {
    Suite *s = suite_create("util");
    TCase *t;

    t = tcase_create("errors");
    tcase_add_test(t, errmsg_is_empty_before_any_failure);
    tcase_add_test(t, err_set_returns_rc_and_records_detail_and_nats_code);
    tcase_add_test(t, err_clear_empties_message_and_zeroes_nats_code);
    tcase_add_test(t, err_long_message_is_truncated_not_overflowed);
    tcase_add_test(t, err_set_can_wrap_its_own_previous_message);
    tcase_add_test(t, errmsg_is_thread_local);
    tcase_add_test(t, strerror_names_every_code_distinctly);
    tcase_add_test(t, strerror_of_unknown_code_is_unknown_error);
    tcase_add_test(t, version_is_the_header_version);
    suite_add_tcase(s, t);

    t = tcase_create("alloc");
    tcase_add_checked_fixture(t, NULL, alloc_teardown);
    tcase_add_test(t, alloc_fail_at_1_fails_only_the_next_allocation);
    tcase_add_test(t, alloc_fail_at_n_fails_the_nth_of_any_kind);
    tcase_add_test(t, alloc_fail_forever_fails_every_later_allocation);
    tcase_add_test(t, alloc_fail_at_0_disables_the_hook);
    tcase_add_test(t, alloc_failed_realloc_keeps_the_old_block);
    tcase_add_test(t, alloc_zero_bytes_returns_a_usable_pointer);
    tcase_add_test(t, calloc_overflow_returns_null);
    tcase_add_test(t, free_null_is_harmless);
    tcase_add_test(t, strndup_stops_at_n_or_at_nul);
    tcase_add_test(t, alloc_hook_counts_exactly_across_threads);
    suite_add_tcase(s, t);

    t = tcase_create("crc32c");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, crc32c_first_use_from_many_threads_is_safe);
    tcase_add_test(t, crc32c_matches_known_vectors);
    tcase_add_test(t, crc32c_portable_matches_known_vectors);
    tcase_add_test(t, crc32c_of_nothing_is_the_input_crc);
    tcase_add_test(t, crc32c_chains_across_split_points);
    tcase_add_test(t, crc32c_uses_hardware_when_the_cpu_has_it);
    tcase_add_test(t, crc32c_hw_and_portable_agree_for_every_length_and_alignment);
    tcase_add_test(t, crc32c_hw_and_portable_agree_on_a_large_buffer);
    suite_add_tcase(s, t);

    t = tcase_create("buf");
    tcase_add_checked_fixture(t, NULL, alloc_teardown);
    tcase_add_test(t, buf_append_grows_and_keeps_contents);
    tcase_add_test(t, buf_reserve_doubles_capacity);
    tcase_add_test(t, buf_reserve_within_capacity_does_not_allocate);
    tcase_add_test(t, buf_reserve_overflow_is_enomem);
    tcase_add_test(t, buf_alloc_failure_is_enomem_and_leaves_buffer_intact);
    tcase_add_test(t, buf_free_resets_and_append_of_nothing_is_ok);
    suite_add_tcase(s, t);

    t = tcase_create("codecs_and_clocks");
    tcase_add_test(t, le_codecs_round_trip_little_endian);
    tcase_add_test(t, wallclock_is_nanoseconds_since_the_epoch);
    tcase_add_test(t, monotonic_clock_never_goes_back);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    int failed = tu_run_suite(util_suite());
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
