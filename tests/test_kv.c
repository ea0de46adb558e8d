/*
 * test_kv.c - key/value buckets through the public API, checked against
 * NATS KV (ADR-8): the stream a bucket maps to, names, put and get by
 * revision, create and compare-and-set (also racing threads), delete and
 * purge markers, history limits, TTL expiry on a fake clock, status, and
 * reopen.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jetstream.h"
#include "kv_fixture.h"

static uint64_t put(const char *key, const char *val) {
    uint64_t rev = 0;
    CHECK_RC(js_kv_put(KV, key, val, strlen(val), &rev), 0);
    return rev;
}

/* The key's latest value must be want (NULL: not found). */
static void expect(const char *key, const char *want) {
    struct js_kv_entry *e = NULL;
    if (!want) {
        CHECK_RC(js_kv_get(KV, key, 0, &e), JS_EKEY_NOT_FOUND);
        return;
    }
    CHECK_RC(js_kv_get(KV, key, 0, &e), 0);
    ck_assert_uint_eq(e->len, strlen(want));
    ck_assert_int_eq(memcmp(e->value, want, e->len), 0);
    ck_assert_str_eq(e->key, key);
    ck_assert_str_eq(e->bucket, "cfg");
    ck_assert_int_eq(e->op, JS_KV_OP_PUT);
    js_kv_entry_free(e);
}

START_TEST(test_bucket_is_the_stream_nats_kv_add_makes) {
    js_stream *s;
    struct js_stream_info *i;
    CHECK_RC(js_stream_lookup(S, "KV_cfg", &s), 0);
    CHECK_RC(js_stream_info(s, &i), 0);
    ck_assert_uint_eq(i->config->num_subjects, 1);
    ck_assert_str_eq(i->config->subjects[0], "$KV.cfg.>");
    ck_assert_int_eq(i->config->max_msgs_per_subject, 5);
    ck_assert_int_eq(i->config->discard, JS_DISCARD_NEW);
    ck_assert_int_eq(i->config->allow_rollup_hdrs, 1);
    ck_assert_int_eq(i->config->deny_delete, 1);
    ck_assert_int_eq(i->config->duplicate_window, 120 * SEC);
    js_stream_info_free(i);
    js_stream_release(s);
    js_kv_config c = JS_KV_CONFIG_INIT;
    c.bucket = "cfg";
    c.history = 5;
    CHECK_RC(js_kv_create(S, &c, NULL), 0); /* same config: fine */
    c.history = 6;
    CHECK_RC(js_kv_create(S, &c, NULL), JS_ESTREAM_EXISTS);
}
END_TEST

START_TEST(test_bucket_and_key_names_follow_adr8) {
    static const char *bad_buckets[] = {"", "a.b", "a b", "a*", "a>", "ä"};
    static const char *bad_keys[] = {"", ".a", "a.", "a..b", "a b", "a*",
                                     "a>", "a\tb", "é"};
    js_kv_config c = JS_KV_CONFIG_INIT;
    js_kv *kv;
    for (size_t i = 0; i < sizeof bad_buckets / sizeof *bad_buckets; i++) {
        c.bucket = bad_buckets[i];
        CHECK_RC(js_kv_create(S, &c, NULL), JS_EINVAL);
        CHECK_RC(js_kv_open(S, bad_buckets[i], &kv), JS_EINVAL);
    }
    for (size_t i = 0; i < sizeof bad_keys / sizeof *bad_keys; i++)
        CHECK_RC(js_kv_put(KV, bad_keys[i], "x", 1, NULL), JS_EINVAL);
    put("a/b=c_d-e.f", "ok");
    expect("a/b=c_d-e.f", "ok");
    c.bucket = "cfg";
    c.history = 65;
    CHECK_RC(js_kv_create(S, &c, NULL), JS_EINVAL);
    CHECK_RC(js_kv_open(S, "nope", &kv), JS_ESTREAM_NOT_FOUND);
}
END_TEST

START_TEST(test_put_get_and_get_by_revision) {
    uint64_t r1 = put("k", "one"), r2 = put("other", "x"), r3 = put("k", "two");
    ck_assert_uint_eq(r1, 1);
    ck_assert_uint_eq(r3, 3);
    expect("k", "two");
    struct js_kv_entry *e;
    CHECK_RC(js_kv_get(KV, "k", r1, &e), 0);
    ck_assert_uint_eq(e->revision, r1);
    ck_assert_int_eq(memcmp(e->value, "one", 3), 0);
    ck_assert_int_eq(e->created, T0);
    js_kv_entry_free(e);
    CHECK_RC(js_kv_get(KV, "k", r2, &e), JS_EKEY_NOT_FOUND); /* other key */
    CHECK_RC(js_kv_get(KV, "missing", 0, &e), JS_EKEY_NOT_FOUND);
    CHECK_RC(js_kv_put(KV, "empty", NULL, 0, NULL), 0);
    CHECK_RC(js_kv_get(KV, "empty", 0, &e), 0);
    ck_assert_uint_eq(e->len, 0);
    js_kv_entry_free(e);
}
END_TEST

START_TEST(test_create_only_when_absent_or_deleted) {
    uint64_t r;
    CHECK_RC(js_kv_create_key(KV, "k", "v1", 2, &r), 0);
    CHECK_RC(js_kv_create_key(KV, "k", "v2", 2, NULL), JS_EKEY_EXISTS);
    expect("k", "v1");
    CHECK_RC(js_kv_delete_key(KV, "k", 0), 0);
    expect("k", NULL);
    CHECK_RC(js_kv_create_key(KV, "k", "v3", 2, NULL), 0);
    expect("k", "v3");
    CHECK_RC(js_kv_purge_key(KV, "k", 0), 0);
    CHECK_RC(js_kv_create_key(KV, "k", "v4", 2, NULL), 0);
    expect("k", "v4");
}
END_TEST

START_TEST(test_update_is_compare_and_set_on_the_revision) {
    uint64_t r1 = put("k", "a"), r2;
    put("unrelated", "x"); /* other keys do not move k's revision */
    CHECK_RC(js_kv_update_key(KV, "k", "b", 1, r1, &r2), 0);
    CHECK_RC(js_kv_update_key(KV, "k", "c", 1, r1, NULL), JS_EWRONG_LAST_SEQ);
    ck_assert_int_eq(js_errcode_nats(), 10071);
    expect("k", "b");
    CHECK_RC(js_kv_delete_key(KV, "k", r1), JS_EWRONG_LAST_SEQ);
    CHECK_RC(js_kv_delete_key(KV, "k", r2), 0);
    expect("k", NULL);
}
END_TEST

START_TEST(test_delete_keeps_history_and_purge_removes_it) {
    uint64_t r1 = put("k", "a");
    put("k", "b");
    CHECK_RC(js_kv_delete_key(KV, "k", 0), 0);
    struct js_kv_entry *e;
    CHECK_RC(js_kv_get(KV, "k", r1, &e), 0); /* history kept */
    js_kv_entry_free(e);
    struct js_kv_status *st;
    CHECK_RC(js_kv_status(KV, &st), 0);
    ck_assert_uint_eq(st->values, 3);
    js_kv_status_free(st);
    CHECK_RC(js_kv_purge_key(KV, "k", 0), 0);
    CHECK_RC(js_kv_get(KV, "k", r1, &e), JS_EKEY_NOT_FOUND);
    CHECK_RC(js_kv_status(KV, &st), 0);
    ck_assert_uint_eq(st->values, 1); /* only the purge marker */
    js_kv_status_free(st);
}
END_TEST

START_TEST(test_history_keeps_the_newest_per_key) {
    uint64_t r[8];
    char v[16];
    for (int i = 0; i < 8; i++) {
        snprintf(v, sizeof v, "v%d", i);
        r[i] = put("k", v);
    }
    struct js_kv_entry *e;
    for (int i = 0; i < 3; i++)
        CHECK_RC(js_kv_get(KV, "k", r[i], &e), JS_EKEY_NOT_FOUND);
    for (int i = 3; i < 8; i++) {
        CHECK_RC(js_kv_get(KV, "k", r[i], &e), 0);
        js_kv_entry_free(e);
    }
    expect("k", "v7");
}
END_TEST

START_TEST(test_ttl_expires_values) {
    js_kv_config c = JS_KV_CONFIG_INIT;
    js_kv *t;
    c.bucket = "ttl";
    c.ttl = 10 * SEC;
    CHECK_RC(js_kv_create(S, &c, &t), 0);
    CHECK_RC(js_kv_put(t, "k", "v", 1, NULL), 0);
    tu_clock_advance(&fake_now, 9 * SEC);
    struct js_kv_entry *e;
    CHECK_RC(js_kv_get(t, "k", 0, &e), 0);
    js_kv_entry_free(e);
    tu_clock_advance(&fake_now, 2 * SEC);
    CHECK_RC(js_kv_put(t, "other", "v", 1, NULL), 0); /* touches the store */
    CHECK_RC(js_kv_get(t, "k", 0, &e), JS_EKEY_NOT_FOUND);
    struct js_kv_status *st;
    CHECK_RC(js_kv_status(t, &st), 0);
    ck_assert_int_eq(st->ttl, 10 * SEC);
    ck_assert_uint_eq(st->values, 1);
    js_kv_status_free(st);
    js_kv_release(t);
    /* Expired values do not come back at reopen. */
    reopen();
    CHECK_RC(js_kv_open(S, "ttl", &t), 0);
    CHECK_RC(js_kv_get(t, "k", 0, &e), JS_EKEY_NOT_FOUND);
    js_kv_release(t);
}
END_TEST

START_TEST(test_values_survive_reopen_and_update_changes_history) {
    put("a", "1");
    CHECK_RC(js_kv_delete_key(KV, "b", 0), 0);
    reopen();
    expect("a", "1");
    expect("b", NULL);
    js_kv_config c = JS_KV_CONFIG_INIT;
    c.bucket = "cfg";
    c.history = 2;
    c.description = "two";
    CHECK_RC(js_kv_update(S, &c), 0);
    struct js_kv_status *st;
    CHECK_RC(js_kv_status(KV, &st), 0);
    ck_assert_int_eq(st->history, 2);
    ck_assert_str_eq(st->bucket, "cfg");
    ck_assert_str_eq(st->config->description, "two");
    js_kv_status_free(st);
    CHECK_RC(js_kv_delete(S, "cfg"), 0);
    js_kv *x;
    CHECK_RC(js_kv_open(S, "cfg", &x), JS_ESTREAM_NOT_FOUND);
}
END_TEST

/* The compare-and-set reads the key's exact last revision even after the
 * last message was removed (its index entry then only bounds it). */
START_TEST(test_expected_last_subject_sequence_after_removing_the_last) {
    const char *subs[] = {"s.>"};
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    js_stream *s;
    c.name = "S";
    c.subjects = subs;
    c.num_subjects = 1;
    CHECK_RC(js_stream_add(S, &c, &s), 0);
    CHECK_RC(js_publish(S, "s.k", NULL, 0, "1", 1, NULL), 0); /* 1 */
    CHECK_RC(js_publish(S, "s.k", NULL, 0, "2", 1, NULL), 0); /* 2 */
    CHECK_RC(js_msg_delete(s, 2), 0);
    const char hdr[] = "NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: 1"
                       "\r\n\r\n";
    CHECK_RC(js_publish(S, "s.k", hdr, strlen(hdr), "3", 1, NULL), 0);
    js_stream_release(s);
}
END_TEST

START_TEST(test_handles_of_a_deleted_bucket_stay_stale) {
    js_kv_config c = JS_KV_CONFIG_INIT;
    js_kv *again;
    CHECK_RC(js_kv_delete(S, "cfg"), 0);
    c.bucket = "cfg";
    CHECK_RC(js_kv_create(S, &c, &again), 0);
    CHECK_RC(js_kv_put(KV, "k", "old handle", 10, NULL), JS_ESTREAM_NOT_FOUND);
    CHECK_RC(js_kv_put(again, "k", "new", 3, NULL), 0);
    struct js_kv_entry *e;
    CHECK_RC(js_kv_get(again, "k", 0, &e), 0);
    ck_assert_uint_eq(e->len, 3);
    js_kv_entry_free(e);
    js_kv_release(again);
    /* A stream named like a bucket but not laid out as one is left alone. */
    const char *subs[] = {"plain.>"};
    js_stream_config sc = JS_STREAM_CONFIG_INIT;
    sc.name = "KV_plain";
    sc.subjects = subs;
    sc.num_subjects = 1;
    CHECK_RC(js_stream_add(S, &sc, NULL), 0);
    c.bucket = "plain";
    CHECK_RC(js_kv_update(S, &c), JS_ESTREAM_NOT_FOUND);
    CHECK_RC(js_kv_delete(S, "plain"), JS_ESTREAM_NOT_FOUND);
    c.ttl = 50 * 1000000; /* under 100 ms */
    c.bucket = "short";
    CHECK_RC(js_kv_create(S, &c, NULL), JS_EINVAL);
}
END_TEST

#define RACERS 8
static int race_ok[RACERS];

static void *racer(void *arg) {
    int i = (int)(intptr_t)arg;
    char v[16];
    snprintf(v, sizeof v, "t%d", i);
    race_ok[i] = js_kv_create_key(KV, "race", v, strlen(v), NULL);
    return NULL;
}

START_TEST(test_exactly_one_of_concurrent_creates_wins) {
    for (int round = 0; round < 20; round++) {
        pthread_t t[RACERS];
        for (int i = 0; i < RACERS; i++)
            pthread_create(&t[i], NULL, racer, (void *)(intptr_t)i);
        int wins = 0;
        for (int i = 0; i < RACERS; i++) {
            pthread_join(t[i], NULL);
            if (race_ok[i] == 0)
                wins++;
            else
                ck_assert_int_eq(race_ok[i], JS_EKEY_EXISTS);
        }
        ck_assert_int_eq(wins, 1);
        CHECK_RC(js_kv_delete_key(KV, "race", 0), 0); /* next round */
    }
}
END_TEST

static void add_tests(TCase *tc) {
    tcase_add_test(tc, test_bucket_is_the_stream_nats_kv_add_makes);
    tcase_add_test(tc, test_bucket_and_key_names_follow_adr8);
    tcase_add_test(tc, test_put_get_and_get_by_revision);
    tcase_add_test(tc, test_create_only_when_absent_or_deleted);
    tcase_add_test(tc, test_update_is_compare_and_set_on_the_revision);
    tcase_add_test(tc, test_delete_keeps_history_and_purge_removes_it);
    tcase_add_test(tc, test_history_keeps_the_newest_per_key);
    tcase_add_test(tc, test_ttl_expires_values);
    tcase_add_test(tc, test_values_survive_reopen_and_update_changes_history);
    tcase_add_test(tc, test_exactly_one_of_concurrent_creates_wins);
    tcase_add_test(tc, test_handles_of_a_deleted_bucket_stay_stale);
    tcase_add_test(tc, test_expected_last_subject_sequence_after_removing_the_last);
}

int main(void) {
    return kv_main("kv", 60, add_tests);
}
