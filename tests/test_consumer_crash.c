/*
 * test_consumer_crash.c - a durable consumer across real process crashes.
 * A child opens the store with JS_SYNC_ALWAYS, publishes now and then,
 * fetches from a durable consumer and acks each message with ack_sync,
 * a plain ack, a nak, or not at all, telling the parent over a pipe what
 * was delivered and which acks returned. The parent SIGKILLs it at a
 * seeded random moment and starts the next child on what is left. It
 * checks, in pipe order:
 *
 *   - a message whose ack_sync returned is never delivered again, by this
 *     child or any later one;
 *   - at the end every stored message was acked (sync or plain), or was
 *     being acked when its child was killed, or is delivered by a final
 *     drain: nothing is lost;
 *   - every acknowledged publish is in the stream.
 *
 * The same runs on a work-queue stream, where an ack_sync also removes the
 * message: it must never come back. CONSUMER_CRASH_ITERS sets the number
 * of children per test (default 120).
 */
#include <check.h>

#include "jetstream.h"
#include "testutil_fs.h"
#include "crashutil.h"
#include "runner.h"

#define MAXSEQ 200000
#define CHILD_SECONDS 3

static char *base_dir;

enum { R_OPEN = 1, R_DLV, R_SYNCED, R_ACKED, R_PUB };

typedef struct rec {
    uint32_t type;
    uint32_t pad;
    uint64_t seq;
} rec;

static void put(int fd, uint32_t type, uint64_t seq) {
    rec r = {type, 0, seq};
    if (tu_write_all(fd, &r, sizeof r) != 0)
        _exit(3);
}

static int open_store(const char *dir, int retention, js_store **st,
                      js_stream **s, js_consumer **c) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    js_stream_config sc = JS_STREAM_CONFIG_INIT;
    js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
    const char *subs[] = {"cc.>"};
    o.sync = JS_SYNC_ALWAYS;
    o.block_size = 8192;
    sc.name = "CC";
    sc.subjects = subs;
    sc.num_subjects = 1;
    sc.retention = retention;
    cc.durable_name = "D";
    cc.ack_wait = 3600 * (int64_t)1000000000;
    cc.max_ack_pending = -1;
    int rc = js_open(dir, &o, st);
    if (rc == 0 && (rc = js_stream_add(*st, &sc, s)) == 0 &&
        (rc = js_consumer_add(*s, &cc, c)) != 0)
        js_stream_release(*s);
    if (rc && *st)
        js_close(*st);
    return rc;
}

/* The child: work until killed (or CHILD_SECONDS pass). */
static void child_main(const char *dir, int retention, int fd, uint64_t seed) {
    js_store *st = NULL;
    js_stream *s;
    js_consumer *c;
    uint64_t rng = seed;
    alarm(CHILD_SECONDS);
    if (open_store(dir, retention, &st, &s, &c) != 0)
        _exit(2);
    put(fd, R_OPEN, 0);
    for (;;) {
        if (tu_rng(&rng) % 4 == 0) {
            js_pub_ack a = JS_PUB_ACK_INIT;
            if (js_publish(st, "cc.x", NULL, 0, "data", 4, &a) != 0)
                _exit(4);
            put(fd, R_PUB, a.seq);
        }
        js_msg *v[8];
        size_t n = 0;
        int rc = js_consumer_fetch(c, v, 1 + tu_rng(&rng) % 8, NULL, &n);
        if (rc != 0 && rc != JS_ETIMEOUT)
            _exit(5);
        for (size_t i = 0; i < n; i++) {
            uint64_t seq = js_msg_seq(v[i]);
            put(fd, R_DLV, seq);
            unsigned what = (unsigned)(tu_rng(&rng) % 10);
            if (what < 5) {
                if (js_msg_ack_sync(v[i]) != 0)
                    _exit(6);
                put(fd, R_SYNCED, seq);
            } else if (what < 8) {
                if (js_msg_ack(v[i]) != 0)
                    _exit(7);
                put(fd, R_ACKED, seq);
            } else if (what < 9) {
                js_msg_nak(v[i], 0);
            }
            js_msg_free(v[i]);
        }
    }
}

typedef struct model {
    uint8_t synced[MAXSEQ];  /* ack_sync returned */
    uint8_t acked[MAXSEQ];   /* plain ack returned */
    uint8_t published[MAXSEQ];
    uint8_t maybe[MAXSEQ];   /* its ack was in flight at a kill */
    uint64_t inflight;       /* the child's last delivery, not yet acked */
    char err[256];
    uint64_t dlv, syncs, kills;
} model;

static void apply(model *m, const rec *r) {
    if (r->seq >= MAXSEQ) {
        snprintf(m->err, sizeof m->err, "seq %" PRIu64 " too large", r->seq);
        return;
    }
    switch (r->type) {
    case R_DLV:
        m->dlv++;
        m->inflight = r->seq;
        if (m->synced[r->seq] && !m->err[0])
            snprintf(m->err, sizeof m->err,
                     "seq %" PRIu64 " delivered after its ack_sync returned",
                     r->seq);
        break;
    case R_SYNCED:
        m->inflight = 0;
        m->synced[r->seq] = 1;
        m->syncs++;
        break;
    case R_ACKED:
        m->inflight = 0;
        m->acked[r->seq] = 1;
        break;
    case R_PUB:
        m->published[r->seq] = 1;
        break;
    default:
        break;
    }
}

typedef struct child_args {
    model *m;
    const char *dir;
    int retention;
    uint64_t seed;
} child_args;

static void child_run(void *ctx, int fd) {
    child_args *a = ctx;
    child_main(a->dir, a->retention, fd, a->seed);
}

static void child_rec(void *ctx, const void *r) {
    apply(((child_args *)ctx)->m, r);
}

/* One child, killed delay_us after it opened the store. */
static void run_child(model *m, const char *dir, int retention,
                      uint64_t seed, unsigned delay_us) {
    child_args a = {m, dir, retention, seed};
    m->kills += (uint64_t)tu_crash_child(child_run, child_rec, &a, sizeof(rec),
                                         R_OPEN, delay_us);
    /* An ack that returned just before the kill was never reported. */
    m->maybe[m->inflight] = 1;
    m->inflight = 0;
}

/* Drain everything left and check nothing is lost. */
static void final_check(model *m, const char *dir, int retention) {
    js_store *st;
    js_stream *s;
    js_consumer *c;
    static uint8_t drained[MAXSEQ];
    memset(drained, 0, sizeof drained);
    ck_assert_int_eq(open_store(dir, retention, &st, &s, &c), 0);
    for (;;) {
        js_msg *v[64];
        size_t n = 0;
        int rc = js_consumer_fetch(c, v, 64, NULL, &n);
        if (rc == JS_ETIMEOUT)
            break;
        ck_assert_int_eq(rc, 0);
        for (size_t i = 0; i < n; i++) {
            uint64_t seq = js_msg_seq(v[i]);
            ck_assert_msg(!m->synced[seq],
                          "final drain: seq %" PRIu64 " was ack_synced", seq);
            drained[seq] = 1;
            ck_assert_int_eq(js_msg_ack(v[i]), 0);
            js_msg_free(v[i]);
        }
    }
    struct js_stream_info *si;
    ck_assert_int_eq(js_stream_info(s, &si), 0);
    uint64_t last = si->state->last_seq;
    js_stream_info_free(si);
    ck_assert_uint_lt(last, MAXSEQ);
    for (uint64_t q = 1; q <= last; q++) {
        js_msg *msg = NULL;
        int rc = js_msg_get(s, q, &msg);
        js_msg_free(msg);
        if (m->published[q] && retention == JS_RETENTION_LIMITS)
            ck_assert_msg(rc == 0, "published seq %" PRIu64 " missing", q);
        if (rc == 0)
            ck_assert_msg(m->synced[q] || m->acked[q] || drained[q] ||
                              m->maybe[q],
                          "seq %" PRIu64 " stored but never delivered", q);
        if (retention == JS_RETENTION_WORKQUEUE && m->synced[q])
            ck_assert_msg(rc == JS_EMSG_NOT_FOUND,
                          "work-queue seq %" PRIu64 " acked but still there",
                          q);
    }
    js_consumer_release(c);
    js_stream_release(s);
    ck_assert_int_eq(js_close(st), 0);
}

static unsigned iters(void) {
    const char *e = getenv("CONSUMER_CRASH_ITERS");
    return e && atoi(e) > 0 ? (unsigned)atoi(e) : 120;
}

static void run(int retention, uint64_t seed, const char *name) {
    char *dir = tu_path("%s/%s", base_dir, name);
    model *m = calloc(1, sizeof *m);
    uint64_t rng = seed;
    js_store *st;
    js_stream *s;
    js_consumer *c;
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(open_store(dir, retention, &st, &s, &c), 0);
    for (int i = 0; i < 300; i++) {
        js_pub_ack a = JS_PUB_ACK_INIT;
        ck_assert_int_eq(js_publish(st, "cc.init", NULL, 0, "x", 1, &a), 0);
        m->published[a.seq] = 1;
    }
    js_consumer_release(c);
    js_stream_release(s);
    ck_assert_int_eq(js_close(st), 0);
    unsigned n = iters();
    for (unsigned i = 0; i < n && !m->err[0]; i++)
        run_child(m, dir, retention, tu_rng(&rng),
                  (unsigned)(tu_rng(&rng) % 20000));
    ck_assert_msg(!m->err[0], "%s", m->err);
    final_check(m, dir, retention);
    printf("%s: %u children, %" PRIu64 " kills, %" PRIu64
           " deliveries, %" PRIu64 " ack_syncs\n",
           name, n, m->kills, m->dlv, m->syncs);
    free(m);
    free(dir);
}

START_TEST(kill9_durable_consumer_on_limits_stream) {
    run(JS_RETENTION_LIMITS, 0x5eed1u, "limits");
}
END_TEST

START_TEST(kill9_durable_consumer_on_workqueue_stream) {
    run(JS_RETENTION_WORKQUEUE, 0x5eed2u, "workqueue");
}
END_TEST

int main(void) {
    base_dir = tu_mkdtemp("test_consumer_crash");
    Suite *s = suite_create("consumer_crash");
    TCase *tc = tcase_create("kill9");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, kill9_durable_consumer_on_limits_stream);
    tcase_add_test(tc, kill9_durable_consumer_on_workqueue_stream);
    suite_add_tcase(s, tc);
    int failed = tu_run_suite(s);
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed != 0;
}
