/*
 * test_pending.c - the pending-ack set (libjs/pending.c) against a plain
 * array model: lookups, deletes anywhere (hash backward-shift deletion
 * across wrap-around and long probe chains), the lowest pending sequence,
 * and the deadline heap with reschedules.
 */
#include <check.h>
#include <stdlib.h>

#include "pending.h"
#include "util.h"
#include "runner.h"

#define N 20000

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

typedef struct model {
    uint8_t live[N + 1];
    int64_t deadline[N + 1];
} model;

static void check_model(jsi_pend *p, const model *m, uint64_t added) {
    uint64_t n = 0, first = 0;
    for (uint64_t s = 1; s <= added; s++) {
        jsi_pent *e = jsi_pend_get(p, s);
        ck_assert_msg((e != NULL) == m->live[s], "seq %llu live %d",
                      (unsigned long long)s, m->live[s]);
        if (m->live[s]) {
            n++;
            if (!first)
                first = s;
            ck_assert_int_eq(e->deadline, m->deadline[s]);
        }
    }
    ck_assert_uint_eq(p->n, n);
    jsi_pent *f = jsi_pend_first(p);
    ck_assert_uint_eq(f ? f->sseq : 0, first);
    size_t pos = 0;
    uint64_t prev = 0, walked = 0;
    for (jsi_pent *e; (e = jsi_pend_next(p, &pos)) != NULL; walked++) {
        ck_assert_uint_gt(e->sseq, prev);
        prev = e->sseq;
    }
    ck_assert_uint_eq(walked, n);
}

START_TEST(test_random_adds_deletes_and_schedules_match_a_model) {
    static model m;
    jsi_pend p;
    uint64_t st = 0x9E3779B97F4A7C15u, added = 0;
    memset(&m, 0, sizeof m);
    jsi_pend_init(&p);
    for (int step = 0; step < 200000; step++) {
        unsigned op = (unsigned)(rng(&st) % 10);
        if (op < 4 && added < N) {
            jsi_pent *e = jsi_pend_add(&p, ++added);
            ck_assert_ptr_nonnull(e);
            m.live[added] = 1;
            int64_t d = (int64_t)(rng(&st) % 1000);
            ck_assert_int_eq(jsi_pend_schedule(&p, e, d), 0);
            m.deadline[added] = d;
        } else if (op < 7 && added) {
            uint64_t s = 1 + rng(&st) % added;
            ck_assert_int_eq(jsi_pend_del(&p, s), m.live[s]);
            m.live[s] = 0;
        } else if (added) {
            uint64_t s = 1 + rng(&st) % added;
            jsi_pent *e = jsi_pend_get(&p, s);
            if (e) {
                int64_t d = (int64_t)(rng(&st) % 1000);
                ck_assert_int_eq(jsi_pend_schedule(&p, e, d), 0);
                m.deadline[s] = d;
            }
        }
        if (step % 5000 == 0)
            check_model(&p, &m, added);
    }
    check_model(&p, &m, added);
    /* Due entries come out earliest first and only when due. */
    int64_t last = -1;
    for (int64_t now = 0; now < 1000; now += 7) {
        jsi_pent *e;
        while ((e = jsi_pend_due(&p, now)) != NULL) {
            ck_assert_int_le(e->deadline, now);
            ck_assert_int_ge(e->deadline, last);
            last = e->deadline;
            m.live[e->sseq] = 0;
            jsi_pend_del(&p, e->sseq);
        }
        int64_t nd = jsi_pend_next_deadline(&p);
        ck_assert(nd > now);
    }
    jsi_pend_free(&p);
}
END_TEST

START_TEST(test_redelivered_count_follows_deliveries_and_deletes) {
    jsi_pend p;
    jsi_pend_init(&p);
    jsi_pent *e = jsi_pend_add(&p, 5);
    jsi_pend_delivered(&p, e, 1, 0);
    ck_assert_uint_eq(p.redelivered, 0);
    jsi_pend_delivered(&p, e, 2, 0);
    jsi_pend_delivered(&p, e, 3, 0);
    ck_assert_uint_eq(p.redelivered, 1);
    ck_assert_uint_eq(e->count, 3);
    ck_assert_uint_eq(e->dseq, 3);
    jsi_pend_del(&p, 5);
    ck_assert_uint_eq(p.redelivered, 0);
    ck_assert_ptr_null(jsi_pend_first(&p));
    ck_assert_int_eq(jsi_pend_next_deadline(&p), INT64_MAX);
    jsi_pend_free(&p);
}
END_TEST

START_TEST(test_allocation_failures_leave_the_set_usable) {
    jsi_pend p;
    jsi_pend_init(&p);
    int fails = 0;
    for (uint64_t s = 1; s <= 2000; s++) {
        jsi_alloc_fail_at(s % 7 == 0 ? 1 : 0, 0);
        jsi_pent *e = jsi_pend_add(&p, s);
        jsi_alloc_fail_at(0, 0);
        if (!e) {
            fails++;
            ck_assert_ptr_null(jsi_pend_get(&p, s));
            continue;
        }
        ck_assert_ptr_nonnull(jsi_pend_get(&p, s));
    }
    ck_assert_int_gt(fails, 0);
    for (uint64_t s = 1; s <= 2000; s++)
        jsi_pend_del(&p, s);
    ck_assert_uint_eq(p.n, 0);
    jsi_pend_free(&p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("pending");
    TCase *tc = tcase_create("pending");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_random_adds_deletes_and_schedules_match_a_model);
    tcase_add_test(tc, test_redelivered_count_follows_deliveries_and_deletes);
    tcase_add_test(tc, test_allocation_failures_leave_the_set_usable);
    suite_add_tcase(s, tc);
    int failed = tu_run_suite(s);
    return failed != 0;
}
