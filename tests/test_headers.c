/*
 * test_headers.c - NATS header block validation, lookup, building, and
 * decimal parsing.
 */
#include <check.h>
#include <stdlib.h>

#include "headers.h"
#include "util.h"
#include "runner.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static int validate(const char *h) { return jsi_hdr_validate(h, strlen(h)); }

/* Assert that h is rejected with JS_EBAD_HEADER, NATS 10003 and a detail
 * that mentions `word`. */
static void assert_bad(const char *h, size_t n, const char *word) {
    jsi_err_clear();
    ck_assert_int_eq(jsi_hdr_validate(h, n), JS_EBAD_HEADER);
    ck_assert_int_eq(js_errcode_nats(), 10003);
    ck_assert_msg(strstr(js_errmsg(), word) != NULL,
                  "detail \"%s\" does not mention \"%s\"", js_errmsg(), word);
}

/* ---- validation ---------------------------------------------------------- */

START_TEST(validate_accepts_empty_input_as_no_headers) {
    ck_assert_int_eq(jsi_hdr_validate(NULL, 0), 0);
    ck_assert_int_eq(jsi_hdr_validate("garbage", 0), 0);
}
END_TEST

START_TEST(validate_accepts_well_formed_blocks) {
    ck_assert_int_eq(validate("NATS/1.0\r\n\r\n"), 0);
    ck_assert_int_eq(validate("NATS/1.0\r\nNats-Msg-Id: 1\r\n\r\n"), 0);
    ck_assert_int_eq(validate("NATS/1.0\r\nA: 1\r\nB: two words\r\n\r\n"), 0);
    ck_assert_int_eq(validate("NATS/1.0\r\nEmpty:\r\nSp: \r\n\r\n"), 0);
    ck_assert_int_eq(validate("NATS/1.0\r\nA:no-space\r\n\r\n"), 0);
    ck_assert_int_eq(validate("NATS/1.0\r\nA: 1\r\nA: 2\r\n\r\n"), 0);
    ck_assert_int_eq(validate("NATS/1.0\r\nURL: http://x:80/a\r\n\r\n"), 0);
    ck_assert_int_eq(validate("NATS/1.0\r\nTab:\tv\t\r\n\r\n"), 0);
}
END_TEST

START_TEST(validate_accepts_status_lines) {
    ck_assert_int_eq(validate("NATS/1.0 503\r\n\r\n"), 0);
    ck_assert_int_eq(validate("NATS/1.0 404 No Messages\r\n\r\n"), 0);
    ck_assert_int_eq(validate("NATS/1.0 408 Request Timeout\r\n"
                              "Nats-Pending-Messages: 5\r\n\r\n"),
                     0);
    ck_assert_int_eq(validate("NATS/1.0 100 Idle Heartbeat\r\n\r\n"), 0);
}
END_TEST

START_TEST(validate_rejects_missing_or_wrong_prefix) {
    assert_bad(S("\r\n\r\n"), "NATS/1.0");
    assert_bad(S("NATS/1.1\r\n\r\n"), "NATS/1.0");
    assert_bad(S("nats/1.0\r\n\r\n"), "NATS/1.0");
    assert_bad(S("HTTP/1.1 200 OK\r\n\r\n"), "NATS/1.0");
    assert_bad(S("NATS"), "NATS/1.0");
    assert_bad(S("A: 1\r\n\r\n"), "NATS/1.0");
}
END_TEST

START_TEST(validate_rejects_bad_status_lines) {
    assert_bad(S("NATS/1.0x\r\n\r\n"), "status");
    assert_bad(S("NATS/1.0 \r\n\r\n"), "status");
    assert_bad(S("NATS/1.0 40\r\n\r\n"), "status");
    assert_bad(S("NATS/1.0 4040\r\n\r\n"), "status");
    assert_bad(S("NATS/1.0 abc\r\n\r\n"), "status");
}
END_TEST

START_TEST(validate_rejects_bare_lf) {
    assert_bad(S("NATS/1.0\n\r\n"), "bare LF");
    assert_bad(S("NATS/1.0\r\nA: 1\n\r\n"), "bare LF");
    assert_bad(S("NATS/1.0\r\nA: 1\r\n\n"), "bare LF");
    assert_bad(S("NATS/1.0\r\nA: x\ny\r\n\r\n"), "bare LF");
}
END_TEST

START_TEST(validate_rejects_cr_without_lf) {
    assert_bad(S("NATS/1.0\r\nA: x\ry\r\n\r\n"), "CR");
    assert_bad(S("NATS/1.0\r\nA: 1\r\n\r"), "CR");
}
END_TEST

START_TEST(validate_rejects_missing_terminator) {
    assert_bad(S("NATS/1.0\r\n"), "terminating");
    assert_bad(S("NATS/1.0\r\nA: 1\r\n"), "terminating");
    assert_bad(S("NATS/1.0"), "CRLF");
    assert_bad(S("NATS/1.0\r\nA: 1"), "CRLF");
}
END_TEST

START_TEST(validate_rejects_bytes_after_terminator) {
    assert_bad(S("NATS/1.0\r\n\r\nX"), "after");
    assert_bad(S("NATS/1.0\r\nA: 1\r\n\r\n\r\n"), "after");
}
END_TEST

START_TEST(validate_rejects_line_without_colon) {
    assert_bad(S("NATS/1.0\r\nNoColon\r\n\r\n"), "':'");
    assert_bad(S("NATS/1.0\r\nA: 1\r\n just text\r\n\r\n"), "':'");
}
END_TEST

START_TEST(validate_rejects_bad_keys) {
    assert_bad(S("NATS/1.0\r\n: v\r\n\r\n"), "empty key");
    assert_bad(S("NATS/1.0\r\nA B: v\r\n\r\n"), "key");
    assert_bad(S("NATS/1.0\r\nKey : v\r\n\r\n"), "key");
    assert_bad(S("NATS/1.0\r\n Key: v\r\n\r\n"), "key");
    assert_bad(S("NATS/1.0\r\n\tKey: v\r\n\r\n"), "key");
    assert_bad(S("NATS/1.0\r\nK\x01: v\r\n\r\n"), "key");
    assert_bad(S("NATS/1.0\r\nK\x7f: v\r\n\r\n"), "key");
}
END_TEST

START_TEST(validate_rejects_nul_bytes_anywhere) {
    assert_bad(S("NATS/1.0\r\nA: 1\0\r\n\r\n"), "NUL");
    assert_bad(S("NATS/1.0\r\nA\0: 1\r\n\r\n"), "NUL");
    assert_bad(S("NATS/1.0 404 No\0\r\n\r\n"), "NUL");
    assert_bad(S("NATS/1.0\r\n\0\r\n"), "NUL");
}
END_TEST

/* Oversized blocks get NATS's own code (10097) via JS_EHDR_SIZE, which the
 * public header defines for exactly this case. */
START_TEST(validate_rejects_blocks_over_64k_with_hdr_size) {
    size_t n = JS_MAX_HDR_LEN + 1;
    char *h = malloc(n);
    const char *start = "NATS/1.0\r\nBig: ";

    memcpy(h, start, strlen(start));
    memset(h + strlen(start), 'v', n - strlen(start) - 4);
    memcpy(h + n - 4, "\r\n\r\n", 4);
    ck_assert_int_eq(jsi_hdr_validate(h, n), JS_EHDR_SIZE);
    ck_assert_int_eq(js_errcode_nats(), 10097);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "65535"));
    /* One byte less is fine. */
    memcpy(h + n - 5, "\r\n\r\n", 4);
    ck_assert_int_eq(jsi_hdr_validate(h, n - 1), 0);
    free(h);
}
END_TEST

/* Every strict prefix of a valid block is invalid, and must be rejected
 * without reading past its end (ASan checks the latter). */
START_TEST(validate_rejects_every_truncation) {
    const char *full = "NATS/1.0 404 No Messages\r\nA: 1\r\nB-Key: two\r\n\r\n";
    size_t n = strlen(full);

    ck_assert_int_eq(jsi_hdr_validate(full, n), 0);
    for (size_t k = 1; k < n; k++) {
        char *h = malloc(k);
        memcpy(h, full, k);
        ck_assert_msg(jsi_hdr_validate(h, k) == JS_EBAD_HEADER,
                      "prefix of %zu bytes accepted", k);
        free(h);
    }
}
END_TEST

/* ---- lookup -------------------------------------------------------------- */

static int get(const char *h, const char *key, char *out, size_t cap) {
    const char *v;
    size_t n;

    if (!jsi_hdr_get(h, strlen(h), key, &v, &n))
        return 0;
    ck_assert_uint_lt(n, cap);
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

START_TEST(get_returns_value_trimmed_of_spaces_and_tabs) {
    const char *h = "NATS/1.0\r\nA:  \t one two \t \r\nB:x\r\nC:\r\n\r\n";
    char v[64];

    ck_assert_int_eq(get(h, "A", v, sizeof v), 1);
    ck_assert_str_eq(v, "one two");
    ck_assert_int_eq(get(h, "B", v, sizeof v), 1);
    ck_assert_str_eq(v, "x");
    ck_assert_int_eq(get(h, "C", v, sizeof v), 1);
    ck_assert_str_eq(v, "");
}
END_TEST

START_TEST(get_returns_first_of_duplicate_keys) {
    const char *h = "NATS/1.0\r\nNats-Msg-Id: first\r\nNats-Msg-Id: second\r\n\r\n";
    char v[64];

    ck_assert_int_eq(get(h, "Nats-Msg-Id", v, sizeof v), 1);
    ck_assert_str_eq(v, "first");
}
END_TEST

START_TEST(get_matches_keys_exactly_and_case_sensitively) {
    const char *h = "NATS/1.0\r\nNats-Msg-Id: 1\r\nNats-Msg-Id-Extra: 2\r\n\r\n";
    char v[64];

    ck_assert_int_eq(get(h, "nats-msg-id", v, sizeof v), 0);
    ck_assert_int_eq(get(h, "NATS-MSG-ID", v, sizeof v), 0);
    ck_assert_int_eq(get(h, "Nats-Msg", v, sizeof v), 0);
    ck_assert_int_eq(get(h, "Nats-Msg-Id-Extra", v, sizeof v), 1);
    ck_assert_str_eq(v, "2");
    ck_assert_int_eq(get(h, "Nats-Msg-Id", v, sizeof v), 1);
    ck_assert_str_eq(v, "1");
    ck_assert_int_eq(get(h, "Missing", v, sizeof v), 0);
    ck_assert_int_eq(get(h, "", v, sizeof v), 0);
}
END_TEST

START_TEST(get_does_not_treat_status_line_as_a_header) {
    const char *h = "NATS/1.0 404 No: Messages\r\nX: y\r\n\r\n";
    char v[64];

    ck_assert_int_eq(validate(h), 0);
    ck_assert_int_eq(get(h, "NATS/1.0 404 No", v, sizeof v), 0);
    ck_assert_int_eq(get(h, "X", v, sizeof v), 1);
    ck_assert_str_eq(v, "y");
}
END_TEST

START_TEST(get_on_empty_block_finds_nothing) {
    const char *v = NULL;
    size_t n = 99;

    ck_assert_int_eq(jsi_hdr_get(NULL, 0, "A", &v, &n), 0);
    ck_assert_int_eq(jsi_hdr_get(S("NATS/1.0\r\n\r\n"), "A", &v, &n), 0);
}
END_TEST

START_TEST(get_value_points_into_the_block) {
    const char *h = "NATS/1.0\r\nKey: Value\r\n\r\n";
    const char *v;
    size_t n;

    ck_assert_int_eq(jsi_hdr_get(h, strlen(h), "Key", &v, &n), 1);
    ck_assert_ptr_eq(v, h + 15);
    ck_assert_uint_eq(n, 5);
}
END_TEST

/* ---- build --------------------------------------------------------------- */

START_TEST(build_produces_the_canonical_block) {
    const char *kv[] = {"Nats-Msg-Id", "abc", "Nats-Rollup", "sub", NULL};
    const char *want = "NATS/1.0\r\nNats-Msg-Id: abc\r\nNats-Rollup: sub\r\n\r\n";
    uint8_t *out = NULL;
    size_t n = 0;
    char v[64];

    ck_assert_int_eq(jsi_hdr_build(kv, &out, &n), 0);
    ck_assert_uint_eq(n, strlen(want));
    ck_assert_int_eq(memcmp(out, want, n), 0);
    ck_assert_int_eq(jsi_hdr_validate(out, n), 0);
    {
        const char *pv;
        size_t pn;
        ck_assert_int_eq(jsi_hdr_get(out, n, "Nats-Rollup", &pv, &pn), 1);
        memcpy(v, pv, pn);
        v[pn] = '\0';
        ck_assert_str_eq(v, "sub");
    }
    jsi_free(out);
}
END_TEST

START_TEST(build_with_no_pairs_is_the_minimal_block) {
    const char *kv[] = {NULL};
    uint8_t *out;
    size_t n;

    ck_assert_int_eq(jsi_hdr_build(kv, &out, &n), 0);
    ck_assert_uint_eq(n, 12);
    ck_assert_int_eq(memcmp(out, "NATS/1.0\r\n\r\n", 12), 0);
    jsi_free(out);
    ck_assert_int_eq(jsi_hdr_build(NULL, &out, &n), 0);
    ck_assert_uint_eq(n, 12);
    jsi_free(out);
}
END_TEST

START_TEST(build_stops_at_a_null_value) {
    const char *kv[] = {"A", "1", "B", NULL};
    uint8_t *out;
    size_t n;

    ck_assert_int_eq(jsi_hdr_build(kv, &out, &n), 0);
    ck_assert_uint_eq(n, strlen("NATS/1.0\r\nA: 1\r\n\r\n"));
    ck_assert_int_eq(memcmp(out, "NATS/1.0\r\nA: 1\r\n\r\n", n), 0);
    jsi_free(out);
}
END_TEST

START_TEST(build_out_of_memory_is_enomem) {
    const char *kv[] = {"A", "1", NULL};
    uint8_t *out = NULL;
    size_t n = 0;

    jsi_alloc_fail_at(1, 0);
    ck_assert_int_eq(jsi_hdr_build(kv, &out, &n), JS_ENOMEM);
    jsi_alloc_fail_at(0, 0);
    ck_assert_ptr_null(out);
}
END_TEST

/* ---- numbers ------------------------------------------------------------- */

START_TEST(parse_u64_accepts_decimal_digits) {
    uint64_t v = 1;

    ck_assert_int_eq(jsi_parse_u64(S("0"), &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(jsi_parse_u64(S("42"), &v), 0);
    ck_assert_uint_eq(v, 42);
    ck_assert_int_eq(jsi_parse_u64(S("007"), &v), 0);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(jsi_parse_u64(S("18446744073709551615"), &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    /* The length bounds the number. */
    ck_assert_int_eq(jsi_parse_u64("123abc", 3, &v), 0);
    ck_assert_uint_eq(v, 123);
}
END_TEST

START_TEST(parse_u64_rejects_overflow) {
    uint64_t v = 5;

    ck_assert_int_eq(jsi_parse_u64(S("18446744073709551616"), &v), JS_EINVAL);
    ck_assert_int_eq(jsi_parse_u64(S("18446744073709551620"), &v), JS_EINVAL);
    ck_assert_int_eq(jsi_parse_u64(S("99999999999999999999"), &v), JS_EINVAL);
    ck_assert_int_eq(jsi_parse_u64(S("100000000000000000000"), &v), JS_EINVAL);
    ck_assert_uint_eq(v, 5);
}
END_TEST

START_TEST(parse_u64_rejects_empty_signs_spaces_and_letters) {
    static const char *bad[] = {"", "-1", "+1", " 1", "1 ", "1a", "0x10",
                                "1.0", "1e3", "\t5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 77;
        ck_assert_msg(jsi_parse_u64(bad[i], strlen(bad[i]), &v) == JS_EINVAL,
                      "accepted \"%s\"", bad[i]);
        ck_assert_uint_eq(v, 77);
    }
}
END_TEST

static Suite *headers_suite(void) {
    Suite *s = suite_create("headers");
    TCase *t;

    t = tcase_create("validate");
    tcase_add_test(t, validate_accepts_empty_input_as_no_headers);
    tcase_add_test(t, validate_accepts_well_formed_blocks);
    tcase_add_test(t, validate_accepts_status_lines);
    tcase_add_test(t, validate_rejects_missing_or_wrong_prefix);
    tcase_add_test(t, validate_rejects_bad_status_lines);
    tcase_add_test(t, validate_rejects_bare_lf);
    tcase_add_test(t, validate_rejects_cr_without_lf);
    tcase_add_test(t, validate_rejects_missing_terminator);
    tcase_add_test(t, validate_rejects_bytes_after_terminator);
    tcase_add_test(t, validate_rejects_line_without_colon);
    tcase_add_test(t, validate_rejects_bad_keys);
    tcase_add_test(t, validate_rejects_nul_bytes_anywhere);
    tcase_add_test(t, validate_rejects_blocks_over_64k_with_hdr_size);
    tcase_add_test(t, validate_rejects_every_truncation);
    suite_add_tcase(s, t);

    t = tcase_create("get");
    tcase_add_test(t, get_returns_value_trimmed_of_spaces_and_tabs);
    tcase_add_test(t, get_returns_first_of_duplicate_keys);
    tcase_add_test(t, get_matches_keys_exactly_and_case_sensitively);
    tcase_add_test(t, get_does_not_treat_status_line_as_a_header);
    tcase_add_test(t, get_on_empty_block_finds_nothing);
    tcase_add_test(t, get_value_points_into_the_block);
    suite_add_tcase(s, t);

    t = tcase_create("build");
    tcase_add_test(t, build_produces_the_canonical_block);
    tcase_add_test(t, build_with_no_pairs_is_the_minimal_block);
    tcase_add_test(t, build_stops_at_a_null_value);
    tcase_add_test(t, build_out_of_memory_is_enomem);
    suite_add_tcase(s, t);

    t = tcase_create("parse_u64");
    tcase_add_test(t, parse_u64_accepts_decimal_digits);
    tcase_add_test(t, parse_u64_rejects_overflow);
    tcase_add_test(t, parse_u64_rejects_empty_signs_spaces_and_letters);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    int failed = tu_run_suite(headers_suite());
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
