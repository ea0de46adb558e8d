/*
 * test_consumer.c - consumers through the public API, checked against NATS
 * JetStream's semantics: management, deliver policies, filters, pull
 * delivery, acks and redelivery (ack_wait, backoff, max_deliver, nak,
 * in-progress, term), max_ack_pending, replay original, headers_only,
 * metadata, exact num_pending, durable state across reopen. Timers run on
 * a fake clock; blocking calls use real (short) timeouts.
 */
#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer_fixture.h"
#include "jetstream.h"
#include "testutil.h"
#include "runner.h"

static void setup(void) { fixture_setup(JS_SYNC_NONE); }

/* ---- management --------------------------------------------------------- */

START_TEST(test_defaults_follow_nats) {
    js_consumer_config c = durable("D");
    js_consumer *k = cadd(ST, &c);
    struct js_consumer_info *i = info(k);
    ck_assert_str_eq(i->name, "D");
    ck_assert_str_eq(i->stream, "ORDERS");
    ck_assert_int_eq(i->config->ack_policy, JS_ACK_EXPLICIT);
    ck_assert_int_eq(i->config->ack_wait, 30 * SEC);
    ck_assert_int_eq(i->config->max_deliver, -1);
    ck_assert_int_eq(i->config->max_ack_pending, 1000);
    ck_assert_int_eq(i->config->max_waiting, 512);
    ck_assert_int_eq(i->config->deliver_policy, JS_DELIVER_ALL);
    ck_assert_int_eq(i->created, T0);
    ck_assert_uint_eq(i->num_pending, 0);
    js_consumer_info_free(i);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_add_is_idempotent_and_refuses_a_different_config) {
    js_consumer_config c = durable("D");
    js_consumer *a = cadd(ST, &c), *b = cadd(ST, &c), *x = NULL;
    ck_assert_ptr_eq(a, b);
    c.ack_wait = 5 * SEC;
    CHECK_RC(js_consumer_add(ST, &c, &x), JS_ECONSUMER_EXISTS);
    CHECK_ERR(10148, "already exists");
    js_consumer_release(a);
    js_consumer_release(b);
}
END_TEST

START_TEST(test_lookup_names_delete) {
    js_consumer_config c = durable("B");
    js_consumer *b = cadd(ST, &c), *x = NULL;
    c.durable_name = "A";
    CHECK_RC(js_consumer_add(ST, &c, NULL), 0);
    char **names;
    size_t n;
    CHECK_RC(js_consumer_names(ST, &names, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(names[0], "A");
    ck_assert_str_eq(names[1], "B");
    ck_assert_ptr_null(names[2]);
    js_names_free(names);
    CHECK_RC(js_consumer_lookup(ST, "A", &x), 0);
    js_consumer_release(x);
    CHECK_RC(js_consumer_delete(ST, "B"), 0);
    CHECK_RC(js_consumer_lookup(ST, "B", &x), JS_ECONSUMER_NOT_FOUND);
    CHECK_ERR(10014, "not found");
    js_msg *m;
    CHECK_RC(js_consumer_next(b, 0, &m), JS_ECONSUMER_NOT_FOUND);
    CHECK_RC(js_consumer_delete(ST, "B"), JS_ECONSUMER_NOT_FOUND);
    js_consumer_release(b);
    struct js_stream_info *si;
    CHECK_RC(js_stream_info(ST, &si), 0);
    ck_assert_uint_eq(si->state->consumer_count, 1);
    js_stream_info_free(si);
}
END_TEST

START_TEST(test_max_consumers_is_enforced) {
    js_stream_config sc = JS_STREAM_CONFIG_INIT;
    const char *subs[] = {"lim.>"};
    js_stream *s;
    sc.name = "LIM";
    sc.subjects = subs;
    sc.num_subjects = 1;
    sc.max_consumers = 2;
    CHECK_RC(js_stream_add(S, &sc, &s), 0);
    js_consumer_config c = durable("A");
    CHECK_RC(js_consumer_add(s, &c, NULL), 0);
    c.durable_name = "B";
    CHECK_RC(js_consumer_add(s, &c, NULL), 0);
    c.durable_name = "C";
    CHECK_RC(js_consumer_add(s, &c, NULL), JS_EMAX_CONSUMERS);
    CHECK_ERR(10026, "maximum consumers");
    CHECK_RC(js_consumer_delete(s, "A"), 0);
    CHECK_RC(js_consumer_add(s, &c, NULL), 0);
    js_stream_release(s);
}
END_TEST

START_TEST(test_update_changes_only_mutable_fields) {
    js_consumer_config c = durable("D");
    js_consumer *k = cadd(ST, &c);
    c.ack_wait = 5 * SEC;
    c.description = "new";
    CHECK_RC(js_consumer_update(ST, &c, NULL), 0);
    struct js_consumer_info *i = info(k);
    ck_assert_int_eq(i->config->ack_wait, 5 * SEC);
    ck_assert_str_eq(i->config->description, "new");
    js_consumer_info_free(i);
    c.deliver_policy = JS_DELIVER_NEW;
    CHECK_RC(js_consumer_update(ST, &c, NULL), JS_EUPDATE);
    js_consumer_config m = durable("MISSING");
    CHECK_RC(js_consumer_update(ST, &m, NULL), JS_ECONSUMER_NOT_FOUND);
    CHECK_ERR(10149, "does not exist");
    js_consumer_release(k);
}
END_TEST

START_TEST(test_workqueue_consumer_rules) {
    js_stream *wq = add_stream("WQ", "jobs.>", JS_RETENTION_WORKQUEUE);
    js_consumer_config c = durable("ALL");
    CHECK_RC(js_consumer_add(wq, &c, NULL), 0);
    c.durable_name = "ALL2";
    CHECK_RC(js_consumer_add(wq, &c, NULL), JS_EINVAL);
    ck_assert_int_eq(js_errcode_nats(), 10099);
    CHECK_RC(js_consumer_delete(wq, "ALL"), 0);
    c.durable_name = "A";
    c.filter_subject = "jobs.a.>";
    CHECK_RC(js_consumer_add(wq, &c, NULL), 0);
    c.durable_name = "B";
    c.filter_subject = "jobs.*.x";
    CHECK_RC(js_consumer_add(wq, &c, NULL), JS_EINVAL);
    ck_assert_int_eq(js_errcode_nats(), 10100);
    c.filter_subject = "jobs.b.>";
    CHECK_RC(js_consumer_add(wq, &c, NULL), 0);
    c.durable_name = "N";
    c.filter_subject = "jobs.c";
    c.ack_policy = JS_ACK_NONE;
    CHECK_RC(js_consumer_add(wq, &c, NULL), JS_EINVAL);
    c.ack_policy = JS_ACK_EXPLICIT;
    c.deliver_policy = JS_DELIVER_NEW;
    CHECK_RC(js_consumer_add(wq, &c, NULL), JS_EINVAL);
    ck_assert_int_eq(js_errcode_nats(), 10101);
    js_stream_release(wq);
}
END_TEST

START_TEST(test_ephemeral_gets_a_name_and_expires_when_inactive) {
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    js_consumer *k = cadd(ST, &c), *x = NULL;
    struct js_consumer_info *i = info(k);
    ck_assert_uint_eq(strlen(i->name), 8);
    ck_assert_int_eq(i->config->inactive_threshold, 5 * SEC);
    char name[16];
    strcpy(name, i->name);
    js_consumer_info_free(i);
    advance(4 * SEC);
    CHECK_RC(js_dispatch(S, 0), 0);
    CHECK_RC(js_consumer_lookup(ST, name, &x), 0);
    js_consumer_release(x);
    advance(2 * SEC);
    js_dispatch(S, 0);
    CHECK_RC(js_consumer_lookup(ST, name, &x), JS_ECONSUMER_NOT_FOUND);
    js_msg *m;
    CHECK_RC(js_consumer_next(k, 0, &m), JS_ECONSUMER_NOT_FOUND);
    js_consumer_release(k);
}
END_TEST

/* ---- deliver policies and filters ---------------------------------------- */

static uint64_t first_delivered(js_consumer_config *c) {
    js_consumer *k = cadd(ST, c);
    js_msg *m = next(k);
    uint64_t s = js_msg_seq(m);
    js_msg_free(m);
    js_consumer_release(k);
    return s;
}

START_TEST(test_deliver_policies_choose_the_start) {
    for (int i = 0; i < 5; i++) {
        pub("orders.a", "a");
        advance(SEC);
        pub("orders.b", "b");
    } /* a: 1 3 5 7 9, b: 2 4 6 8 10 */
    js_consumer_config c = durable("ALL");
    ck_assert_uint_eq(first_delivered(&c), 1);
    c = durable("LAST");
    c.deliver_policy = JS_DELIVER_LAST;
    ck_assert_uint_eq(first_delivered(&c), 10);
    c = durable("LASTA");
    c.deliver_policy = JS_DELIVER_LAST;
    c.filter_subject = "orders.a";
    ck_assert_uint_eq(first_delivered(&c), 9);
    c = durable("SEQ");
    c.deliver_policy = JS_DELIVER_BY_START_SEQUENCE;
    c.opt_start_seq = 6;
    ck_assert_uint_eq(first_delivered(&c), 6);
    c = durable("TIME");
    c.deliver_policy = JS_DELIVER_BY_START_TIME;
    c.opt_start_time = T0 + 2 * SEC; /* seq 4 is the first at T0+2s */
    ck_assert_uint_eq(first_delivered(&c), 4);
    c = durable("NEW");
    c.deliver_policy = JS_DELIVER_NEW;
    js_consumer *k = cadd(ST, &c);
    no_next(k);
    ck_assert_uint_eq(pub("orders.c", "c"), 11);
    ck_assert_uint_eq(take_ack(k), 11);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_last_per_subject_delivers_each_subjects_last) {
    pub("orders.a", "1");
    pub("orders.b", "2");
    pub("orders.a", "3");
    pub("orders.c", "4");
    pub("orders.b", "5"); /* lasts: a 3, c 4, b 5 */
    js_consumer_config c = durable("LPS");
    c.deliver_policy = JS_DELIVER_LAST_PER_SUBJECT;
    c.filter_subject = "orders.*";
    js_consumer *k = cadd(ST, &c);
    ck_assert_uint_eq(num_pending(k), 3);
    ck_assert_uint_eq(take_ack(k), 3);
    ck_assert_uint_eq(take_ack(k), 4);
    ck_assert_uint_eq(num_pending(k), 1);
    pub("orders.a", "6");
    ck_assert_uint_eq(num_pending(k), 2);
    ck_assert_uint_eq(take_ack(k), 5);
    ck_assert_uint_eq(take_ack(k), 6);
    no_next(k);
    ck_assert_uint_eq(num_pending(k), 0);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_filters_select_messages_and_count_pending) {
    pub("orders.a.1", "x");
    pub("orders.b.1", "x");
    pub("orders.c.1", "x");
    pub("orders.a.2", "x");
    js_consumer_config c = durable("F");
    const char *fs[] = {"orders.a.*", "orders.c.>"};
    c.filter_subjects = fs;
    c.num_filter_subjects = 2;
    js_consumer *k = cadd(ST, &c);
    ck_assert_uint_eq(num_pending(k), 3);
    ck_assert_uint_eq(take_ack(k), 1);
    ck_assert_uint_eq(take_ack(k), 3);
    ck_assert_uint_eq(num_pending(k), 1);
    pub("orders.b.2", "x");
    ck_assert_uint_eq(num_pending(k), 1);
    ck_assert_uint_eq(take_ack(k), 4);
    no_next(k);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_num_pending_is_exact_after_deletes_and_purges) {
    pub_n("orders.a", 10);
    pub_n("orders.b", 10);
    js_consumer_config c = durable("P");
    c.filter_subject = "orders.a";
    js_consumer *k = cadd(ST, &c);
    ck_assert_uint_eq(num_pending(k), 10);
    take_ack(k);
    take_ack(k);
    ck_assert_uint_eq(num_pending(k), 8);
    CHECK_RC(js_msg_delete(ST, 5), 0);  /* orders.a, not yet delivered */
    CHECK_RC(js_msg_delete(ST, 15), 0); /* orders.b */
    CHECK_RC(js_msg_delete(ST, 1), 0);  /* already delivered */
    ck_assert_uint_eq(num_pending(k), 7);
    js_purge_opts po = JS_PURGE_OPTS_INIT;
    po.filter = "orders.a";
    po.keep = 3;
    uint64_t n;
    CHECK_RC(js_stream_purge(ST, &po, &n), 0);
    ck_assert_uint_eq(num_pending(k), 3);
    ck_assert_uint_eq(take_ack(k), 8);
    ck_assert_uint_eq(num_pending(k), 2);
    CHECK_RC(js_stream_purge(ST, NULL, &n), 0);
    ck_assert_uint_eq(num_pending(k), 0);
    no_next(k);
    js_consumer_release(k);
}
END_TEST

/* Matching live messages after the last delivered one, by brute force. */
static uint64_t brute_pending(js_consumer *k, const char *const *f, size_t nf) {
    struct js_consumer_info *i = info(k);
    uint64_t seq = i->delivered.stream_seq + 1, n = 0;
    js_consumer_info_free(i);
    js_msg *m;
    while (js_msg_get_next(ST, NULL, seq, &m) == 0) {
        const char *subj = js_msg_subject(m);
        int match = nf == 0;
        for (size_t j = 0; j < nf && !match; j++) {
            size_t fl = strlen(f[j]);
            /* filters here are "orders.X" literals or "orders.X.>" */
            if (fl > 2 && strcmp(f[j] + fl - 2, ".>") == 0)
                match = strncmp(subj, f[j], fl - 1) == 0;
            else
                match = strcmp(subj, f[j]) == 0;
        }
        n += match;
        seq = js_msg_seq(m) + 1;
        js_msg_free(m);
    }
    return n;
}

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

START_TEST(test_num_pending_stays_exact_under_random_operations) {
    static const char *subjects[] = {"orders.a", "orders.b", "orders.c.1",
                                     "orders.c.2", "orders.d"};
    static const char *fa[] = {"orders.c.>", "orders.a"};
    static const char *fb[] = {"orders.b"};
    js_consumer_config c = durable("ALL");
    c.ack_wait = 3600 * SEC;
    js_consumer *k[3];
    k[0] = cadd(ST, &c);
    c.durable_name = "FA";
    c.filter_subjects = fa;
    c.num_filter_subjects = 2;
    k[1] = cadd(ST, &c);
    c = durable("FB");
    c.filter_subject = "orders.b";
    c.ack_policy = JS_ACK_NONE;
    k[2] = cadd(ST, &c);
    const char *const *fs[3] = {NULL, fa, fb};
    size_t nf[3] = {0, 2, 1};
    uint64_t st = (uint64_t)_i * 7919 + 1;
    for (int step = 0; step < 3000; step++) {
        unsigned op = (unsigned)(rnd(&st) % 100);
        if (op < 50) {
            pub(subjects[rnd(&st) % 5], "x");
        } else if (op < 75) {
            js_consumer *kk = k[rnd(&st) % 3];
            js_msg *m;
            if (js_consumer_next(kk, 0, &m) == 0) {
                if (rnd(&st) % 4)
                    js_msg_ack(m);
                js_msg_free(m);
            }
        } else if (op < 88) {
            struct js_stream_info *si;
            CHECK_RC(js_stream_info(ST, &si), 0);
            uint64_t lo = si->state->first_seq, hi = si->state->last_seq;
            js_stream_info_free(si);
            if (hi >= lo && hi)
                js_msg_delete(ST, lo + rnd(&st) % (hi - lo + 1));
        } else if (op < 92) {
            js_purge_opts po = JS_PURGE_OPTS_INIT;
            po.filter = subjects[rnd(&st) % 5];
            po.keep = rnd(&st) % 3;
            CHECK_RC(js_stream_purge(ST, &po, NULL), 0);
        } else if (op < 94) {
            js_purge_opts po = JS_PURGE_OPTS_INIT;
            struct js_stream_info *si;
            CHECK_RC(js_stream_info(ST, &si), 0);
            po.seq = si->state->first_seq + rnd(&st) % 20;
            js_stream_info_free(si);
            CHECK_RC(js_stream_purge(ST, &po, NULL), 0);
        } else if (op < 96) {
            for (int i = 0; i < 3; i++)
                js_consumer_release(k[i]);
            reopen();
            CHECK_RC(js_consumer_lookup(ST, "ALL", &k[0]), 0);
            CHECK_RC(js_consumer_lookup(ST, "FA", &k[1]), 0);
            CHECK_RC(js_consumer_lookup(ST, "FB", &k[2]), 0);
        } else {
            advance(SEC);
        }
        for (int i = 0; i < 3; i++)
            ck_assert_msg(num_pending(k[i]) == brute_pending(k[i], fs[i], nf[i]),
                          "step %d consumer %d: num_pending %llu, brute %llu",
                          step, i, (unsigned long long)num_pending(k[i]),
                          (unsigned long long)brute_pending(k[i], fs[i], nf[i]));
    }
    for (int i = 0; i < 3; i++)
        js_consumer_release(k[i]);
}
END_TEST

/* ---- pull delivery --------------------------------------------------------- */

START_TEST(test_next_on_empty_stream_times_out) {
    js_consumer_config c = durable("D");
    js_consumer *k = cadd(ST, &c);
    js_msg *m = NULL;
    CHECK_RC(js_consumer_next(k, 0, &m), JS_ETIMEOUT);
    CHECK_RC(js_consumer_next(k, 20 * MS, &m), JS_ETIMEOUT);
    ck_assert_ptr_null(m);
    js_consumer_release(k);
}
END_TEST

static void *publish_later(void *arg) {
    (void)arg;
    usleep(50 * 1000);
    pub("orders.late", "late");
    return NULL;
}

START_TEST(test_next_blocks_until_another_thread_publishes) {
    js_consumer_config c = durable("D");
    js_consumer *k = cadd(ST, &c);
    pthread_t t;
    pthread_create(&t, NULL, publish_later, NULL);
    js_msg *m = NULL;
    CHECK_RC(js_consumer_next(k, 10 * SEC, &m), 0);
    ck_assert_str_eq(js_msg_subject(m), "orders.late");
    pthread_join(t, NULL);
    js_msg_free(m);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_fetch_returns_what_is_available_up_to_limits) {
    pub_n("orders.a", 10);
    js_consumer_config c = durable("D");
    js_consumer *k = cadd(ST, &c);
    js_msg *v[16];
    size_t n = 0;
    js_fetch_opts o = JS_FETCH_OPTS_INIT;
    o.timeout = SEC;
    CHECK_RC(js_consumer_fetch(k, v, 4, &o, &n), 0);
    ck_assert_uint_eq(n, 4);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(js_msg_seq(v[i]), i + 1);
        js_msg_free(v[i]);
    }
    o.max_bytes = 3 * (8 + 2); /* subject "orders.a" + "mN": three fit */
    CHECK_RC(js_consumer_fetch(k, v, 16, &o, &n), 0);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < n; i++)
        js_msg_free(v[i]);
    o.max_bytes = 0;
    CHECK_RC(js_consumer_fetch(k, v, 16, &o, &n), 0);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < n; i++)
        js_msg_free(v[i]);
    o.no_wait = 1;
    CHECK_RC(js_consumer_fetch(k, v, 16, &o, &n), JS_ETIMEOUT);
    ck_assert_uint_eq(n, 0);
    o.max_bytes = 1;
    o.no_wait = 0;
    pub("orders.a", "too big for one byte");
    CHECK_RC(js_consumer_fetch(k, v, 16, &o, &n), JS_EMSG_SIZE);
    CHECK_RC(js_consumer_fetch(k, v, 0, NULL, &n), JS_EINVAL);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_metadata_of_delivered_messages) {
    pub("orders.a", "1");
    pub("orders.a", "2");
    js_consumer_config c = durable("D");
    c.ack_wait = SEC;
    js_consumer *k = cadd(ST, &c);
    js_msg *m = next(k);
    js_msg_meta mm = meta(m);
    ck_assert_str_eq(mm.stream, "ORDERS");
    ck_assert_str_eq(mm.consumer, "D");
    ck_assert_uint_eq(mm.stream_seq, 1);
    ck_assert_uint_eq(mm.consumer_seq, 1);
    ck_assert_uint_eq(mm.num_delivered, 1);
    ck_assert_uint_eq(mm.num_pending, 1);
    ck_assert_int_eq(mm.timestamp, T0);
    js_msg_free(m);
    advance(2 * SEC);
    m = next(k); /* seq 1 again */
    mm = meta(m);
    ck_assert_uint_eq(mm.stream_seq, 1);
    ck_assert_uint_eq(mm.consumer_seq, 2);
    ck_assert_uint_eq(mm.num_delivered, 2);
    js_msg_free(m);
    js_msg *plain;
    CHECK_RC(js_msg_get(ST, 1, &plain), 0);
    CHECK_RC(js_msg_metadata(plain, &mm), JS_EINVAL);
    CHECK_RC(js_msg_ack(plain), JS_EINVAL);
    js_msg_free(plain);
    js_consumer_release(k);
}
END_TEST

/* ---- acks and redelivery ---------------------------------------------------- */

START_TEST(test_ack_moves_floor_and_unacked_is_redelivered_after_ack_wait) {
    pub_n("orders.a", 3);
    js_consumer_config c = durable("D");
    c.ack_wait = 10 * SEC;
    js_consumer *k = cadd(ST, &c);
    js_msg *m1 = next(k), *m2 = next(k), *m3 = next(k);
    CHECK_RC(js_msg_ack(m1), 0);
    CHECK_RC(js_msg_ack(m3), 0);
    struct js_consumer_info *i = info(k);
    ck_assert_uint_eq(i->num_ack_pending, 1);
    ck_assert_uint_eq(i->ack_floor.stream_seq, 1);
    ck_assert_uint_eq(i->delivered.stream_seq, 3);
    ck_assert_uint_eq(i->delivered.consumer_seq, 3);
    js_consumer_info_free(i);
    no_next(k);
    advance(10 * SEC - 1);
    no_next(k);
    advance(1);
    js_msg *r = next(k);
    ck_assert_uint_eq(js_msg_seq(r), 2);
    ck_assert_uint_eq(meta(r).num_delivered, 2);
    i = info(k);
    ck_assert_uint_eq(i->num_redelivered, 1);
    js_consumer_info_free(i);
    CHECK_RC(js_msg_ack(r), 0);
    i = info(k);
    ck_assert_uint_eq(i->ack_floor.stream_seq, 3);
    ck_assert_uint_eq(i->num_ack_pending, 0);
    ck_assert_uint_eq(i->num_redelivered, 0);
    js_consumer_info_free(i);
    CHECK_RC(js_msg_ack(m2), 0); /* acked already: ignored */
    js_msg_free(m1);
    js_msg_free(m2);
    js_msg_free(m3);
    js_msg_free(r);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_backoff_spaces_redeliveries_and_max_deliver_stops_them) {
    int64_t bo[] = {1 * SEC, 5 * SEC};
    pub("orders.a", "x");
    js_consumer_config c = durable("D");
    c.backoff = bo;
    c.num_backoff = 2;
    c.max_deliver = 3;
    js_consumer *k = cadd(ST, &c);
    js_msg_free(next(k)); /* delivery 1 */
    advance(1 * SEC - 1);
    no_next(k);
    advance(1);
    js_msg_free(next(k)); /* delivery 2, waits backoff[1] */
    advance(5 * SEC - 1);
    no_next(k);
    advance(1);
    js_msg *m = next(k);
    ck_assert_uint_eq(meta(m).num_delivered, 3);
    js_msg_free(m);
    advance(60 * SEC);
    no_next(k);
    struct js_consumer_info *i = info(k);
    ck_assert_uint_eq(i->num_ack_pending, 0);
    ck_assert_uint_eq(i->ack_floor.stream_seq, 1);
    js_consumer_info_free(i);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_nak_redelivers_now_or_after_its_delay) {
    pub("orders.a", "x");
    js_consumer_config c = durable("D");
    js_consumer *k = cadd(ST, &c);
    js_msg *m = next(k);
    CHECK_RC(js_msg_nak(m, 0), 0);
    js_msg_free(m);
    m = next(k);
    ck_assert_uint_eq(meta(m).num_delivered, 2);
    CHECK_RC(js_msg_nak(m, 3 * SEC), 0);
    js_msg_free(m);
    advance(3 * SEC - 1);
    no_next(k);
    advance(1);
    m = next(k);
    ck_assert_uint_eq(meta(m).num_delivered, 3);
    js_msg_free(m);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_in_progress_restarts_ack_wait) {
    pub("orders.a", "x");
    js_consumer_config c = durable("D");
    c.ack_wait = 10 * SEC;
    js_consumer *k = cadd(ST, &c);
    js_msg *m = next(k);
    advance(8 * SEC);
    CHECK_RC(js_msg_in_progress(m), 0);
    advance(8 * SEC);
    no_next(k);
    advance(2 * SEC);
    js_msg *r = next(k);
    js_msg_free(r);
    js_msg_free(m);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_term_stops_redelivery) {
    pub("orders.a", "x");
    js_consumer_config c = durable("D");
    c.ack_wait = SEC;
    js_consumer *k = cadd(ST, &c);
    js_msg *m = next(k);
    CHECK_RC(js_msg_term(m, "bad input"), 0);
    js_msg_free(m);
    advance(10 * SEC);
    no_next(k);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_ack_all_acks_every_earlier_message) {
    pub_n("orders.a", 5);
    js_consumer_config c = durable("D");
    c.ack_policy = JS_ACK_ALL;
    js_consumer *k = cadd(ST, &c);
    js_msg *v[5];
    for (int i = 0; i < 5; i++)
        v[i] = next(k);
    CHECK_RC(js_msg_ack(v[3]), 0);
    struct js_consumer_info *i = info(k);
    ck_assert_uint_eq(i->num_ack_pending, 1);
    ck_assert_uint_eq(i->ack_floor.stream_seq, 4);
    js_consumer_info_free(i);
    for (int j = 0; j < 5; j++)
        js_msg_free(v[j]);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_ack_none_needs_no_acks_and_refuses_them) {
    pub_n("orders.a", 3);
    js_consumer_config c = durable("D");
    c.ack_policy = JS_ACK_NONE;
    js_consumer *k = cadd(ST, &c);
    js_msg *m = next(k);
    CHECK_RC(js_msg_ack(m), JS_EINVAL);
    js_msg_free(m);
    js_msg_free(next(k));
    struct js_consumer_info *i = info(k);
    ck_assert_uint_eq(i->num_ack_pending, 0);
    ck_assert_uint_eq(i->ack_floor.stream_seq, 2);
    ck_assert_int_eq(i->config->max_ack_pending, 0);
    js_consumer_info_free(i);
    advance(60 * SEC);
    js_msg *last = next(k);
    ck_assert_uint_eq(js_msg_seq(last), 3);
    js_msg_free(last);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_max_ack_pending_stalls_delivery_until_an_ack) {
    pub_n("orders.a", 5);
    js_consumer_config c = durable("D");
    c.max_ack_pending = 2;
    js_consumer *k = cadd(ST, &c);
    js_msg *a = next(k), *b = next(k);
    no_next(k);
    CHECK_RC(js_msg_ack(a), 0);
    js_msg *d = next(k);
    ck_assert_uint_eq(js_msg_seq(d), 3);
    no_next(k);
    js_msg_free(a);
    js_msg_free(b);
    js_msg_free(d);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_replay_original_keeps_the_recorded_gaps) {
    pub("orders.a", "1");
    advance(2 * SEC);
    pub("orders.a", "2");
    advance(3 * SEC);
    pub("orders.a", "3");
    js_consumer_config c = durable("R");
    c.replay_policy = JS_REPLAY_ORIGINAL;
    js_consumer *k = cadd(ST, &c);
    ck_assert_uint_eq(take_ack(k), 1);
    advance(2 * SEC - 1);
    no_next(k);
    advance(1);
    ck_assert_uint_eq(take_ack(k), 2);
    advance(3 * SEC - 1);
    no_next(k);
    advance(1);
    ck_assert_uint_eq(take_ack(k), 3);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_headers_only_drops_the_payload) {
    const char hdr[] = "NATS/1.0\r\nX-Key: v\r\n\r\n";
    CHECK_RC(js_publish(S, "orders.h", hdr, strlen(hdr), "12345", 5, NULL),
             0);
    pub("orders.n", "abc");
    js_consumer_config c = durable("H");
    c.headers_only = 1;
    js_consumer *k = cadd(ST, &c);
    js_msg *m = next(k);
    size_t len;
    const char *v;
    js_msg_data(m, &len);
    ck_assert_uint_eq(len, 0);
    CHECK_RC(js_msg_header(m, "Nats-Msg-Size", &v, &len), 0);
    ck_assert_int_eq(strncmp(v, "5", len), 0);
    CHECK_RC(js_msg_header(m, "X-Key", &v, &len), 0);
    js_msg_free(m);
    m = next(k);
    CHECK_RC(js_msg_header(m, "Nats-Msg-Size", &v, &len), 0);
    ck_assert_int_eq(strncmp(v, "3", len), 0);
    js_msg_free(m);
    js_consumer_release(k);
}
END_TEST

static void *wait_one(void *arg) {
    js_consumer *k = arg;
    js_msg *m = NULL;
    int rc = js_consumer_next(k, 10 * SEC, &m);
    js_msg_free(m);
    return (void *)(intptr_t)rc;
}

START_TEST(test_max_waiting_bounds_waiting_pull_calls_and_info_counts_them) {
    js_consumer_config c = durable("MW");
    c.max_waiting = 1;
    js_consumer *k = cadd(ST, &c);
    pthread_t t;
    pthread_create(&t, NULL, wait_one, k);
    uint64_t waiting = 0;
    for (int i = 0; i < 500 && waiting == 0; i++) {
        struct js_consumer_info *in = info(k);
        waiting = in->num_waiting;
        js_consumer_info_free(in);
        if (!waiting)
            usleep(2000);
    }
    ck_assert_uint_eq(waiting, 1);
    js_msg *m = NULL;
    CHECK_RC(js_consumer_next(k, 100 * MS, &m), JS_EMAX_WAITING);
    CHECK_RC(js_consumer_next(k, 0, &m), JS_ETIMEOUT); /* no wait: fine */
    pub("orders.mw", "x");
    void *rc;
    pthread_join(t, &rc);
    ck_assert_int_eq((int)(intptr_t)rc, 0);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_description_and_metadata_round_trip_through_info_and_reopen) {
    const char *md[] = {"team", "billing", "tier", "gold"};
    js_consumer_config c = durable("MD");
    c.description = "invoices to print";
    c.metadata = md;
    c.num_metadata = 2;
    js_consumer *k = cadd(ST, &c);
    js_consumer_release(k);
    reopen();
    CHECK_RC(js_consumer_lookup(ST, "MD", &k), 0);
    struct js_consumer_info *i = info(k);
    ck_assert_str_eq(i->config->description, "invoices to print");
    ck_assert_uint_eq(i->config->num_metadata, 2);
    int seen = 0;
    for (size_t j = 0; j < 2; j++) {
        const char *key = i->config->metadata[2 * j];
        const char *val = i->config->metadata[2 * j + 1];
        seen += strcmp(key, "team") == 0 && strcmp(val, "billing") == 0;
        seen += strcmp(key, "tier") == 0 && strcmp(val, "gold") == 0;
    }
    ck_assert_int_eq(seen, 2);
    js_consumer_info_free(i);
    js_consumer_release(k);
}
END_TEST

/* ---- concurrency ------------------------------------------------------------ */

#define PULLERS 4
#define WORK 2000

static int seen[WORK + 1];
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;

static void *puller(void *arg) {
    js_consumer *k = arg;
    for (;;) {
        js_msg *v[10];
        size_t n = 0;
        js_fetch_opts o = JS_FETCH_OPTS_INIT;
        o.timeout = 200 * MS;
        int rc = js_consumer_fetch(k, v, 10, &o, &n);
        if (rc == JS_ETIMEOUT)
            return NULL;
        ck_assert_int_eq(rc, 0);
        for (size_t i = 0; i < n; i++) {
            pthread_mutex_lock(&seen_mu);
            seen[js_msg_seq(v[i])]++;
            pthread_mutex_unlock(&seen_mu);
            ck_assert_int_eq(js_msg_ack(v[i]), 0);
            js_msg_free(v[i]);
        }
    }
}

START_TEST(test_concurrent_pullers_share_without_duplicates) {
    js_consumer_config c = durable("W");
    c.ack_wait = 3600 * SEC;
    js_consumer *k = cadd(ST, &c);
    pthread_t t[PULLERS];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < PULLERS; i++)
        pthread_create(&t[i], NULL, puller, k);
    pub_n("orders.w", WORK);
    for (int i = 0; i < PULLERS; i++)
        pthread_join(t[i], NULL);
    for (int s = 1; s <= WORK; s++)
        ck_assert_msg(seen[s] == 1, "seq %d delivered %d times", s, seen[s]);
    struct js_consumer_info *i = info(k);
    ck_assert_uint_eq(i->ack_floor.stream_seq, WORK);
    ck_assert_uint_eq(i->num_pending, 0);
    js_consumer_info_free(i);
    js_consumer_release(k);
}
END_TEST

/* ---- durability --------------------------------------------------------------- */

START_TEST(test_durable_state_survives_reopen) {
    pub_n("orders.a", 6);
    js_consumer_config c = durable("D");
    c.ack_wait = 3600 * SEC;
    js_consumer *k = cadd(ST, &c);
    js_msg *v[4];
    for (int i = 0; i < 4; i++)
        v[i] = next(k);
    CHECK_RC(js_msg_ack(v[0]), 0);
    CHECK_RC(js_msg_ack_sync(v[2]), 0); /* 2 and 4 stay unacked */
    for (int i = 0; i < 4; i++)
        js_msg_free(v[i]);
    js_consumer_release(k);
    reopen();
    CHECK_RC(js_consumer_lookup(ST, "D", &k), 0);
    struct js_consumer_info *i = info(k);
    ck_assert_int_eq(i->config->ack_wait, 3600 * SEC);
    ck_assert_uint_eq(i->delivered.stream_seq, 4);
    ck_assert_uint_eq(i->ack_floor.stream_seq, 1);
    ck_assert_uint_eq(i->num_ack_pending, 2);
    ck_assert_uint_eq(i->num_pending, 2);
    js_consumer_info_free(i);
    /* Unacked ones first, as redeliveries, then the rest. */
    js_msg *m = next(k);
    ck_assert_uint_eq(js_msg_seq(m), 2);
    ck_assert_uint_eq(meta(m).num_delivered, 2);
    js_msg_free(m);
    ck_assert_uint_eq(take_ack(k), 4);
    ck_assert_uint_eq(take_ack(k), 5);
    ck_assert_uint_eq(take_ack(k), 6);
    no_next(k);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_deliver_new_position_survives_reopen) {
    pub_n("orders.a", 3);
    js_consumer_config c = durable("N");
    c.deliver_policy = JS_DELIVER_NEW;
    js_consumer *k = cadd(ST, &c);
    js_consumer_release(k);
    reopen();
    pub("orders.a", "after");
    CHECK_RC(js_consumer_lookup(ST, "N", &k), 0);
    ck_assert_uint_eq(take_ack(k), 4);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_deleted_consumer_stays_deleted_after_reopen) {
    js_consumer_config c = durable("X");
    CHECK_RC(js_consumer_add(ST, &c, NULL), 0);
    CHECK_RC(js_consumer_delete(ST, "X"), 0);
    reopen();
    js_consumer *k;
    CHECK_RC(js_consumer_lookup(ST, "X", &k), JS_ECONSUMER_NOT_FOUND);
}
END_TEST

/* Temporary files a crash left in the consumers' directory (a config
 * copy or a state log rewrite cut short before its rename, of a consumer
 * still there or deleted since) are removed at open; the consumers and
 * their files are untouched. */
START_TEST(test_temporary_files_left_by_a_crash_are_removed_at_open) {
    static const char *junk[] = {"0000000000000001.cfg.tmp",
                                 "0000000000000001.cfg2.tmp",
                                 "0000000000000001.state.tmp",
                                 "00000000000000aa.cfg.tmp"};
    static const char *kept[] = {"0000000000000001.cfg",
                                 "0000000000000001.cfg2",
                                 "0000000000000001.state"};
    js_consumer_config c = durable("D");
    js_consumer *k = cadd(ST, &c);
    pub_n("orders.a", 2);
    ck_assert_uint_eq(take_ack(k), 1);
    js_consumer_release(k);
    js_stream_release(ST);
    CHECK_RC(js_close(S), 0);
    char *cdir = tu_path("%s/streams/0000000000000001/consumers", store_path);
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        char *p = tu_path("%s/%s", cdir, junk[i]);
        ck_assert_int_eq(tu_write_file(p, "half", 4), 0);
        free(p);
    }
    open_store();
    CHECK_RC(js_stream_lookup(S, "ORDERS", &ST), 0);
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        char *p = tu_path("%s/%s", cdir, junk[i]);
        ck_assert_msg(!tu_exists(p), "%s still there", junk[i]);
        free(p);
    }
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
        char *p = tu_path("%s/%s", cdir, kept[i]);
        ck_assert_msg(tu_exists(p), "%s removed", kept[i]);
        free(p);
    }
    CHECK_RC(js_consumer_lookup(ST, "D", &k), 0);
    ck_assert_uint_eq(take_ack(k), 2); /* its ack of 1 kept */
    js_consumer_release(k);
    free(cdir);
}
END_TEST

START_TEST(test_ephemeral_consumers_do_not_survive_close) {
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    c.name = "EPH";
    CHECK_RC(js_consumer_add(ST, &c, NULL), 0);
    reopen();
    js_consumer *k;
    CHECK_RC(js_consumer_lookup(ST, "EPH", &k), JS_ECONSUMER_NOT_FOUND);
}
END_TEST

/* ---- retention ---------------------------------------------------------------- */


START_TEST(test_workqueue_removes_acked_messages) {
    js_stream *wq = add_stream("WQ", "jobs.>", JS_RETENTION_WORKQUEUE);
    js_consumer_config c = durable("W");
    js_consumer *k = cadd(wq, &c);
    pub_n("jobs.a", 3);
    ck_assert_uint_eq(stream_msgs(wq), 3);
    js_msg *m = next(k);
    ck_assert_uint_eq(stream_msgs(wq), 3);
    CHECK_RC(js_msg_ack_sync(m), 0);
    js_msg_free(m);
    ck_assert_uint_eq(stream_msgs(wq), 2);
    take_ack(k);
    take_ack(k);
    ck_assert_uint_eq(stream_msgs(wq), 0);
    js_consumer_release(k);
    js_stream_release(wq);
}
END_TEST

START_TEST(test_interest_keeps_messages_until_every_matching_consumer_acks) {
    js_stream *is = add_stream("IS", "ev.>", JS_RETENTION_INTEREST);
    pub("ev.a", "nobody listens");
    ck_assert_uint_eq(stream_msgs(is), 0);
    js_consumer_config c = durable("A");
    js_consumer *a = cadd(is, &c);
    c.durable_name = "B";
    c.filter_subject = "ev.b";
    js_consumer *b = cadd(is, &c);
    pub("ev.a", "only A");  /* 2 */
    pub("ev.b", "A and B"); /* 3 */
    ck_assert_uint_eq(stream_msgs(is), 2);
    ck_assert_uint_eq(take_ack(a), 2);
    ck_assert_uint_eq(stream_msgs(is), 1);
    ck_assert_uint_eq(take_ack(a), 3);
    ck_assert_uint_eq(stream_msgs(is), 1);
    ck_assert_uint_eq(take_ack(b), 3);
    ck_assert_uint_eq(stream_msgs(is), 0);
    pub("ev.b", "A and B"); /* 4 */
    ck_assert_uint_eq(take_ack(b), 4);
    ck_assert_uint_eq(stream_msgs(is), 1);
    js_consumer_release(a);
    CHECK_RC(js_consumer_delete(is, "A"), 0);
    ck_assert_uint_eq(stream_msgs(is), 0);
    js_consumer_release(b);
    js_stream_release(is);
}
END_TEST

START_TEST(test_interest_keeps_a_message_past_max_deliver_until_acked) {
    js_stream *is = add_stream("IS", "ev.>", JS_RETENTION_INTEREST);
    js_consumer_config c = durable("A");
    c.max_deliver = 1;
    c.ack_wait = SEC;
    js_consumer *a = cadd(is, &c);
    c = durable("B");
    js_consumer *b = cadd(is, &c);
    pub("ev.x", "1");
    js_msg *late = next(a); /* A's only delivery; never acked in time */
    advance(2 * SEC);
    no_next(a); /* out of deliveries */
    ck_assert_uint_eq(take_ack(b), 1);
    ck_assert_uint_eq(stream_msgs(is), 1); /* A gave up, did not ack */
    CHECK_RC(js_msg_ack(late), 0);
    js_msg_free(late);
    ck_assert_uint_eq(stream_msgs(is), 0);
    js_consumer_release(a);
    js_consumer_release(b);
    js_stream_release(is);
}
END_TEST

/* ---- push ----------------------------------------------------------------------- */

typedef struct push_rec {
    pthread_mutex_t mu;
    int n;
    uint64_t seqs[256];
} push_rec;

static void on_msg(js_consumer *c, js_msg *m, void *ctx) {
    push_rec *r = ctx;
    (void)c;
    pthread_mutex_lock(&r->mu);
    if (r->n < 256)
        r->seqs[r->n] = js_msg_seq(m);
    r->n++;
    pthread_mutex_unlock(&r->mu);
    js_msg_ack(m);
    js_msg_free(m);
}

START_TEST(test_push_delivers_through_dispatch) {
    js_consumer_config c = durable("P");
    c.deliver_subject = "deliver.p";
    js_consumer *k = cadd(ST, &c);
    js_sub *sub, *sub2;
    push_rec r = {PTHREAD_MUTEX_INITIALIZER, 0, {0}};
    js_msg *m;
    CHECK_RC(js_consumer_next(k, 0, &m), JS_EINVAL);
    CHECK_RC(js_consumer_subscribe(k, on_msg, &r, &sub), 0);
    CHECK_RC(js_consumer_subscribe(k, on_msg, &r, &sub2), JS_EBUSY);
    pub_n("orders.p", 5);
    ck_assert_int_eq(r.n, 0); /* nothing happens without a dispatch */
    ck_assert_int_eq(js_dispatch(S, 0), 5);
    ck_assert_int_eq(r.n, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(r.seqs[i], (uint64_t)i + 1);
    ck_assert_int_eq(js_dispatch(S, 0), 0);
    CHECK_RC(js_sub_unsubscribe(sub), 0);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_push_deliver_group_shares_and_dispatcher_threads_run_it) {
    js_consumer_config c = durable("G");
    c.deliver_subject = "deliver.g";
    c.deliver_group = "workers";
    js_consumer *k = cadd(ST, &c);
    push_rec r1 = {PTHREAD_MUTEX_INITIALIZER, 0, {0}};
    push_rec r2 = {PTHREAD_MUTEX_INITIALIZER, 0, {0}};
    js_sub *s1, *s2;
    CHECK_RC(js_consumer_subscribe(k, on_msg, &r1, &s1), 0);
    CHECK_RC(js_consumer_subscribe(k, on_msg, &r2, &s2), 0);
    CHECK_RC(js_dispatcher_start(S, 2), 0);
    CHECK_RC(js_dispatcher_start(S, 1), JS_EBUSY);
    pub_n("orders.g", 100);
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&r1.mu);
        pthread_mutex_lock(&r2.mu);
        int total = r1.n + r2.n;
        pthread_mutex_unlock(&r2.mu);
        pthread_mutex_unlock(&r1.mu);
        if (total >= 100)
            break;
        usleep(10 * 1000);
    }
    CHECK_RC(js_dispatcher_stop(S), 0);
    ck_assert_int_eq(r1.n + r2.n, 100);
    ck_assert_int_gt(r1.n, 0);
    ck_assert_int_gt(r2.n, 0);
    CHECK_RC(js_sub_unsubscribe(s1), 0);
    CHECK_RC(js_sub_unsubscribe(s2), 0);
    ck_assert_uint_eq(num_pending(k), 0);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_push_rate_limit_paces_delivery) {
    js_consumer_config c = durable("RL");
    c.deliver_subject = "deliver.rl";
    c.rate_limit_bps = 8000; /* 1000 bytes a second */
    js_consumer *k = cadd(ST, &c);
    push_rec r = {PTHREAD_MUTEX_INITIALIZER, 0, {0}};
    js_sub *sub;
    char data[92];
    memset(data, 'x', sizeof data);
    CHECK_RC(js_consumer_subscribe(k, on_msg, &r, &sub), 0);
    for (int i = 0; i < 40; i++) /* 8 + 92 = 100 bytes each */
        CHECK_RC(js_publish(S, "orders.r", NULL, 0, data, sizeof data, NULL),
                 0);
    js_dispatch(S, 0);
    ck_assert_int_ge(r.n, 10);
    ck_assert_int_le(r.n, 11);
    js_dispatch(S, 0);
    ck_assert_int_le(r.n, 11); /* no time passed: no more */
    advance(SEC);
    js_dispatch(S, 0);
    ck_assert_int_ge(r.n, 20);
    ck_assert_int_le(r.n, 21);
    c.deliver_subject = "deliver.other";
    CHECK_RC(js_consumer_update(ST, &c, NULL), JS_EBUSY);
    CHECK_RC(js_sub_unsubscribe(sub), 0);
    CHECK_RC(js_consumer_update(ST, &c, NULL), 0);
    js_consumer_release(k);
}
END_TEST

static int close_rc = 1, stop_rc = 1;

static void close_from_callback(js_consumer *c, js_msg *m, void *ctx) {
    (void)c;
    (void)ctx;
    __atomic_store_n(&close_rc, js_close(S), __ATOMIC_SEQ_CST);
    __atomic_store_n(&stop_rc, js_dispatcher_stop(S), __ATOMIC_SEQ_CST);
    js_msg_ack(m);
    js_msg_free(m);
}

START_TEST(test_close_from_a_dispatcher_callback_is_refused) {
    js_consumer_config c = durable("CL");
    c.deliver_subject = "deliver.cl";
    js_consumer *k = cadd(ST, &c);
    js_sub *sub;
    CHECK_RC(js_consumer_subscribe(k, close_from_callback, NULL, &sub), 0);
    CHECK_RC(js_dispatcher_start(S, 1), 0);
    pub("orders.cl", "x");
    for (int i = 0; i < 500 && __atomic_load_n(&stop_rc, __ATOMIC_SEQ_CST) == 1;
         i++)
        usleep(10 * 1000);
    ck_assert_int_eq(close_rc, JS_EMISUSE);
    ck_assert_int_eq(stop_rc, JS_EMISUSE);
    CHECK_RC(js_dispatcher_stop(S), 0);
    CHECK_RC(js_sub_unsubscribe(sub), 0);
    js_consumer_release(k);
}
END_TEST

/* ---- events ----------------------------------------------------------------------- */

typedef struct ev_log {
    int n;
    int kinds[64];
    char reason[64];
    uint64_t seq[64];
    char type[64][64];
} ev_log;

static void on_event(const js_event *ev, void *ctx) {
    ev_log *l = ctx;
    if (l->n < 64) {
        l->kinds[l->n] = ev->kind;
        l->seq[l->n] = ev->stream_seq;
        snprintf(l->type[l->n], 64, "%s", ev->type);
        if (ev->reason)
            snprintf(l->reason, sizeof l->reason, "%s", ev->reason);
    }
    l->n++;
}

START_TEST(test_events_report_lifecycle_and_deliveries) {
    ev_log l;
    memset(&l, 0, sizeof l);
    CHECK_RC(js_events_set(S, on_event, &l), 0);
    js_stream *s = add_stream("EV", "ev.>", JS_RETENTION_LIMITS);
    ck_assert_int_eq(l.n, 1);
    ck_assert_int_eq(l.kinds[0], JS_EVENT_STREAM_CREATED);
    ck_assert_str_eq(l.type[0], "io.nats.jetstream.advisory.v1.stream_action");
    js_consumer_config c = durable("E");
    c.max_deliver = 1;
    c.ack_wait = SEC;
    c.sample_freq = "100%";
    js_consumer *k = cadd(s, &c);
    ck_assert_int_eq(l.kinds[1], JS_EVENT_CONSUMER_CREATED);
    pub("ev.a", "1");
    pub("ev.a", "2");
    pub("ev.a", "3");
    js_msg *m = next(k);
    CHECK_RC(js_msg_term(m, "no thanks"), 0);
    js_msg_free(m);
    ck_assert_int_eq(l.kinds[2], JS_EVENT_MSG_TERMINATED);
    ck_assert_str_eq(l.reason, "no thanks");
    m = next(k);
    CHECK_RC(js_msg_ack(m), 0);
    js_msg_free(m);
    ck_assert_int_eq(l.kinds[3], JS_EVENT_ACK_SAMPLE);
    ck_assert_str_eq(l.type[3], "io.nats.jetstream.metric.v1.consumer_ack");
    js_msg_free(next(k)); /* 3, never acked */
    advance(2 * SEC);
    no_next(k);
    ck_assert_int_eq(l.kinds[4], JS_EVENT_MAX_DELIVERIES);
    ck_assert_uint_eq(l.seq[4], 3);
    js_consumer_release(k);
    CHECK_RC(js_consumer_delete(s, "E"), 0);
    ck_assert_int_eq(l.kinds[5], JS_EVENT_CONSUMER_DELETED);
    js_stream_release(s);
    CHECK_RC(js_stream_delete(S, "EV"), 0);
    ck_assert_int_eq(l.kinds[6], JS_EVENT_STREAM_DELETED);
    CHECK_RC(js_events_set(S, NULL, NULL), 0);
}
END_TEST

START_TEST(test_sample_freq_samples_that_share_of_acks) {
    ev_log l;
    memset(&l, 0, sizeof l);
    js_consumer_config c = durable("S");
    c.sample_freq = "50%";
    js_consumer *k = cadd(ST, &c);
    CHECK_RC(js_events_set(S, on_event, &l), 0);
    pub_n("orders.s", 10);
    for (int i = 0; i < 10; i++)
        take_ack(k);
    ck_assert_int_eq(l.n, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(l.kinds[i], JS_EVENT_ACK_SAMPLE);
    CHECK_RC(js_events_set(S, NULL, NULL), 0);
    js_consumer_release(k);
}
END_TEST

START_TEST(test_events_report_updates_with_their_action) {
    ev_log l;
    memset(&l, 0, sizeof l);
    CHECK_RC(js_events_set(S, on_event, &l), 0);
    js_consumer_config c = durable("U");
    CHECK_RC(js_consumer_add(ST, &c, NULL), 0);
    c.description = "changed";
    CHECK_RC(js_consumer_update(ST, &c, NULL), 0);
    CHECK_RC(js_consumer_update(ST, &c, NULL), 0); /* no change: no event */
    const char *subs[] = {"orders.>"};
    js_stream_config sc = JS_STREAM_CONFIG_INIT;
    sc.name = "ORDERS";
    sc.subjects = subs;
    sc.num_subjects = 1;
    sc.max_msgs = 10;
    CHECK_RC(js_stream_update(S, &sc), 0);
    ck_assert_int_eq(l.n, 3);
    ck_assert_int_eq(l.kinds[0], JS_EVENT_CONSUMER_CREATED);
    ck_assert_int_eq(l.kinds[1], JS_EVENT_CONSUMER_UPDATED);
    ck_assert_str_eq(l.type[1], "io.nats.jetstream.advisory.v1.consumer_action");
    ck_assert_int_eq(l.kinds[2], JS_EVENT_STREAM_UPDATED);
    CHECK_RC(js_events_set(S, NULL, NULL), 0);
    pub("orders.x", "no callback: not queued");
    CHECK_RC(js_consumer_delete(ST, "U"), 0);
    ck_assert_int_eq(l.n, 3);
}
END_TEST

START_TEST(test_filter_update_recounts_pending) {
    pub_n("orders.a", 4);
    pub_n("orders.b", 6);
    js_consumer_config c = durable("F");
    c.filter_subject = "orders.a";
    js_consumer *k = cadd(ST, &c);
    ck_assert_uint_eq(num_pending(k), 4);
    ck_assert_uint_eq(take_ack(k), 1);
    c.filter_subject = "orders.b";
    CHECK_RC(js_consumer_update(ST, &c, NULL), 0);
    ck_assert_uint_eq(num_pending(k), 6);
    ck_assert_uint_eq(take_ack(k), 5);
    js_consumer_release(k);
}
END_TEST

/* ---- suite --------------------------------------------------------------------- */

static Suite *consumer_suite(void) {
    Suite *s = suite_create("consumer");
    TCase *tc = tcase_create("management");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults_follow_nats);
    tcase_add_test(tc, test_add_is_idempotent_and_refuses_a_different_config);
    tcase_add_test(tc, test_lookup_names_delete);
    tcase_add_test(tc, test_max_consumers_is_enforced);
    tcase_add_test(tc, test_update_changes_only_mutable_fields);
    tcase_add_test(tc, test_workqueue_consumer_rules);
    tcase_add_test(tc, test_ephemeral_gets_a_name_and_expires_when_inactive);
    suite_add_tcase(s, tc);
    tc = tcase_create("delivery");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_deliver_policies_choose_the_start);
    tcase_add_test(tc, test_last_per_subject_delivers_each_subjects_last);
    tcase_add_test(tc, test_filters_select_messages_and_count_pending);
    tcase_add_test(tc, test_num_pending_is_exact_after_deletes_and_purges);
    tcase_add_test(tc, test_filter_update_recounts_pending);
    tcase_add_loop_test(tc, test_num_pending_stays_exact_under_random_operations, 0, 3);
    tcase_add_test(tc, test_next_on_empty_stream_times_out);
    tcase_add_test(tc, test_next_blocks_until_another_thread_publishes);
    tcase_add_test(tc, test_fetch_returns_what_is_available_up_to_limits);
    tcase_add_test(tc, test_metadata_of_delivered_messages);
    tcase_add_test(tc, test_replay_original_keeps_the_recorded_gaps);
    tcase_add_test(tc, test_headers_only_drops_the_payload);
    suite_add_tcase(s, tc);
    tc = tcase_create("acks");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_ack_moves_floor_and_unacked_is_redelivered_after_ack_wait);
    tcase_add_test(tc, test_backoff_spaces_redeliveries_and_max_deliver_stops_them);
    tcase_add_test(tc, test_nak_redelivers_now_or_after_its_delay);
    tcase_add_test(tc, test_in_progress_restarts_ack_wait);
    tcase_add_test(tc, test_term_stops_redelivery);
    tcase_add_test(tc, test_ack_all_acks_every_earlier_message);
    tcase_add_test(tc, test_ack_none_needs_no_acks_and_refuses_them);
    tcase_add_test(tc, test_max_ack_pending_stalls_delivery_until_an_ack);
    tcase_add_test(tc, test_concurrent_pullers_share_without_duplicates);
    tcase_add_test(tc, test_max_waiting_bounds_waiting_pull_calls_and_info_counts_them);
    tcase_add_test(tc, test_description_and_metadata_round_trip_through_info_and_reopen);
    suite_add_tcase(s, tc);
    tc = tcase_create("durability");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_durable_state_survives_reopen);
    tcase_add_test(tc, test_deliver_new_position_survives_reopen);
    tcase_add_test(tc, test_deleted_consumer_stays_deleted_after_reopen);
    tcase_add_test(tc, test_temporary_files_left_by_a_crash_are_removed_at_open);
    tcase_add_test(tc, test_ephemeral_consumers_do_not_survive_close);
    suite_add_tcase(s, tc);
    tc = tcase_create("retention");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_workqueue_removes_acked_messages);
    tcase_add_test(tc, test_interest_keeps_messages_until_every_matching_consumer_acks);
    tcase_add_test(tc, test_interest_keeps_a_message_past_max_deliver_until_acked);
    suite_add_tcase(s, tc);
    tc = tcase_create("push");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_push_delivers_through_dispatch);
    tcase_add_test(tc, test_push_deliver_group_shares_and_dispatcher_threads_run_it);
    tcase_add_test(tc, test_push_rate_limit_paces_delivery);
    tcase_add_test(tc, test_close_from_a_dispatcher_callback_is_refused);
    tcase_add_test(tc, test_events_report_lifecycle_and_deliveries);
    tcase_add_test(tc, test_events_report_updates_with_their_action);
    tcase_add_test(tc, test_sample_freq_samples_that_share_of_acks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    base_dir = tu_mkdtemp("test_consumer");
    int failed = tu_run_suite(consumer_suite());
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed != 0;
}
