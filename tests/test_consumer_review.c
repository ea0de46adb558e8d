/*
 * test_consumer_review.c - regressions found reviewing the consumer layer:
 * each test pins one scenario that lost, repeated or stalled a delivery,
 * raced, or left state inconsistent after a failure. Timers run on a fake
 * clock. The store sits on "gatefs", the posix backend with a gate that a
 * test can close on a consumer's state file, so a state write can be held
 * in flight (s->mu released, the I/O token held) while other threads act.
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "consumer.h"
#include "consumer_fixture.h"
#include "jetstream.h"
#include "testutil.h"
#include "util.h"
#include "runner.h"

/* ---- gatefs: posix with a gate on *.state writes and syncs ---------------- */

typedef struct gfile {
    js_vfs_file base;
    js_vfs_file *inner;
    int state; /* a consumer state file (*.state) */
} gfile;

static js_vfs *posix;
static js_vfs gatefs;
static js_vfs_io gate_io;
static pthread_mutex_t gmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gcond = PTHREAD_COND_INITIALIZER;
enum { GATE_WRITE = 1, GATE_SYNC = 2 };
static int gate_ops;      /* which state-file operations stop at the gate */
static int gate_armed;    /* how many more of them stop */
static int gate_held;     /* how many have stopped (their tickets) */
static int gate_released; /* tickets let through */
static int state_fail;    /* state writes and syncs fail with JS_EIO */

static void gate_pass(gfile *g, int op) {
    if (!g->state)
        return;
    pthread_mutex_lock(&gmu);
    if (gate_armed > 0 && (gate_ops & op)) {
        gate_armed--;
        int ticket = ++gate_held;
        pthread_cond_broadcast(&gcond);
        while (gate_released < ticket)
            pthread_cond_wait(&gcond, &gmu);
    }
    pthread_mutex_unlock(&gmu);
}

/* Stop the next n state-file operations of the kinds in ops. */
static void gate_arm_n(int ops, int n) {
    pthread_mutex_lock(&gmu);
    gate_ops = ops;
    gate_armed = n;
    gate_held = gate_released = 0;
    pthread_mutex_unlock(&gmu);
}

static void gate_arm(void) { gate_arm_n(GATE_WRITE | GATE_SYNC, 1); }

/* Wait until k operations have stopped at the gate. */
static void gate_wait_held_n(int k) {
    pthread_mutex_lock(&gmu);
    while (gate_held < k)
        pthread_cond_wait(&gcond, &gmu);
    pthread_mutex_unlock(&gmu);
}

static void gate_wait_held(void) { gate_wait_held_n(1); }

/* Let the earliest stopped operation through. */
static void gate_release(void) {
    pthread_mutex_lock(&gmu);
    gate_released++;
    pthread_cond_broadcast(&gcond);
    pthread_mutex_unlock(&gmu);
}

static int g_close(js_vfs_file *f) {
    gfile *g = (gfile *)f;
    int rc = g->inner->io->close(g->inner);
    free(g->inner);
    return rc;
}
static int g_read(js_vfs_file *f, void *b, size_t n, uint64_t off,
                  size_t *got) {
    gfile *g = (gfile *)f;
    return g->inner->io->read(g->inner, b, n, off, got);
}
static int g_write(js_vfs_file *f, const void *b, size_t n, uint64_t off) {
    gfile *g = (gfile *)f;
    gate_pass(g, GATE_WRITE);
    if (g->state && __atomic_load_n(&state_fail, __ATOMIC_SEQ_CST))
        return JS_EIO;
    return g->inner->io->write(g->inner, b, n, off);
}
static int g_truncate(js_vfs_file *f, uint64_t size) {
    gfile *g = (gfile *)f;
    return g->inner->io->truncate(g->inner, size);
}
static int g_sync(js_vfs_file *f) {
    gfile *g = (gfile *)f;
    gate_pass(g, GATE_SYNC);
    if (g->state && __atomic_load_n(&state_fail, __ATOMIC_SEQ_CST))
        return JS_EIO;
    return g->inner->io->sync(g->inner);
}
static int g_size(js_vfs_file *f, uint64_t *size) {
    gfile *g = (gfile *)f;
    return g->inner->io->size(g->inner, size);
}
static int g_control(js_vfs_file *f, int op, void *arg) {
    gfile *g = (gfile *)f;
    return g->inner->io->control(g->inner, op, arg);
}
static int g_open(js_vfs *v, const char *path, int flags, js_vfs_file *f) {
    (void)v;
    gfile *g = (gfile *)f;
    size_t n = strlen(path);
    g->inner = calloc(1, posix->file_size);
    if (!g->inner)
        return JS_ENOMEM;
    int rc = posix->open(posix, path, flags, g->inner);
    if (rc) {
        free(g->inner);
        return rc;
    }
    g->base.io = &gate_io;
    /* A state log goes on in the file its last rewrite opened as .tmp. */
    g->state = (n > 6 && strcmp(path + n - 6, ".state") == 0) ||
               (n > 10 && strcmp(path + n - 10, ".state.tmp") == 0);
    return 0;
}
static int g_remove(js_vfs *v, const char *p) { (void)v; return posix->remove(posix, p); }
static int g_rename(js_vfs *v, const char *a, const char *b) { (void)v; return posix->rename(posix, a, b); }
static int g_mkdir(js_vfs *v, const char *p) { (void)v; return posix->mkdir(posix, p); }
static int g_rmdir(js_vfs *v, const char *p) { (void)v; return posix->rmdir(posix, p); }
static int g_list(js_vfs *v, const char *d, int (*cb)(void *, const char *),
                  void *x) {
    (void)v;
    return posix->list(posix, d, cb, x);
}
static int g_sync_dir(js_vfs *v, const char *d) { (void)v; return posix->sync_dir(posix, d); }
static int g_lock(js_vfs *v, const char *p, void **t) { (void)v; return posix->lock(posix, p, t); }
static int g_unlock(js_vfs *v, void *t) { (void)v; return posix->unlock(posix, t); }

static void gatefs_register(void) {
    static int done;
    if (done)
        return;
    done = 1;
    posix = js_vfs_find("posix");
    gate_io = (js_vfs_io){JS_VFS_IO_VERSION, g_close, g_read, g_write,
                          g_truncate, g_sync, g_size, g_control};
    gatefs = (js_vfs){JS_VFS_VERSION, sizeof(gfile), "gatefs", NULL,
                      g_open, g_remove, g_rename, g_mkdir, g_rmdir, g_list,
                      g_sync_dir, g_lock, g_unlock};
    ck_assert_int_eq(js_vfs_register(&gatefs, 0), 0);
}

/* ---- fixture (consumer_fixture.h) on gatefs ---------------------------------- */

static void review_teardown(void) {
    jsi_alloc_fail_at(0, 0);
    __atomic_store_n(&state_fail, 0, __ATOMIC_SEQ_CST);
}

static void setup_with(int policy) {
    gatefs_register();
    fixture_vfs = "gatefs";
    fixture_before_teardown = review_teardown;
    fixture_setup(policy);
}

static void setup(void) { setup_with(JS_SYNC_NONE); }
static void setup_always(void) { setup_with(JS_SYNC_ALWAYS); }

static int64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* ---- pull waits ---------------------------------------------------------------- */

/* A pull call with a timeout waits on a condition variable; it must sleep,
 * not spin through the wait (the wait's deadline is computed on
 * CLOCK_MONOTONIC, so the condition variable must use that clock). */
START_TEST(test_next_with_a_timeout_sleeps_instead_of_spinning) {
    js_consumer_config c = durable("D");
    js_consumer *k = cadd(ST, &c);
    js_msg *m = NULL;
    int64_t cpu0 = thread_cpu_ns();
    CHECK_RC(js_consumer_next(k, 300 * MS, &m), JS_ETIMEOUT);
    int64_t used = thread_cpu_ns() - cpu0;
    ck_assert_msg(used < 60 * MS,
                  "a 300 ms pull wait used %" PRId64 " ms of CPU", used / MS);
    js_consumer_release(k);
}
END_TEST

/* ---- deletes racing a state write ------------------------------------------------ */

typedef struct del_arg {
    js_stream *s;
    const char *name;
    int rc;
} del_arg;

static void *deleter(void *arg) {
    del_arg *d = arg;
    d->rc = js_consumer_delete(d->s, d->name);
    return NULL;
}

static void *ack_syncer(void *arg) {
    js_msg *m = arg;
    js_msg_ack_sync(m);
    return NULL;
}

/* Two deletes of one durable consumer that both arrive while its state
 * file is being written both wait for the write; only one may drop the
 * stream's reference to it (the other finds it gone). */
START_TEST(test_two_deletes_during_a_state_write_drop_one_reference) {
    pub("orders.a", "x");
    js_consumer_config c = durable("D");
    js_consumer *k = cadd(ST, &c);
    js_msg *m = next(k);
    gate_arm();
    pthread_t ta, tb, tc;
    pthread_create(&ta, NULL, ack_syncer, m);
    gate_wait_held(); /* the ack's state write is in flight, log_busy set */
    del_arg b = {ST, "D", 1}, d = {ST, "D", 1};
    pthread_create(&tb, NULL, deleter, &b);
    pthread_create(&tc, NULL, deleter, &d);
    usleep(200 * 1000); /* both deletes reach their wait for the write */
    gate_release();
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_join(tc, NULL);
    ck_assert_msg((b.rc == 0) != (d.rc == 0),
                  "deletes returned %d and %d: exactly one should succeed",
                  b.rc, d.rc);
    ck_assert_int_eq(b.rc ? b.rc : d.rc, JS_ECONSUMER_NOT_FOUND);
    /* Left: the handle k and the message m. */
    ck_assert_int_eq(__atomic_load_n(&k->refs, __ATOMIC_SEQ_CST), 2);
    js_msg_free(m);
    js_consumer_release(k);
}
END_TEST

static void *flusher(void *arg) {
    int *rc = arg;
    *rc = js_flush(S);
    return NULL;
}

static int synced(js_consumer *c) {
    pthread_mutex_lock(&c->s->mu);
    int ok = c->log_synced_gen == c->log_gen && c->ndone == 0;
    pthread_mutex_unlock(&c->s->mu);
    return ok;
}

/* js_flush syncs every consumer's state even when a consumer is deleted
 * while the flush is writing another's (the delete moves the last consumer
 * of the list into the freed slot). */
START_TEST(test_flush_syncs_every_consumer_while_one_is_deleted) {
    pub("orders.a", "x");
    const char *names[3] = {"A", "B", "C"};
    js_consumer *k[3];
    for (int i = 0; i < 3; i++) {
        js_consumer_config c = durable(names[i]);
        k[i] = cadd(ST, &c);
        js_msg *m = next(k[i]);
        CHECK_RC(js_msg_ack(m), 0); /* in memory until a flush */
        js_msg_free(m);
    }
    ck_assert(!synced(k[2]));
    gate_arm_n(GATE_SYNC, 2);
    pthread_t tf, td;
    int frc = 1;
    del_arg d = {ST, "A", 1};
    pthread_create(&tf, NULL, flusher, &frc);
    gate_wait_held_n(1); /* the flush is syncing A's state */
    pthread_create(&td, NULL, deleter, &d);
    gate_release();
    gate_wait_held_n(2); /* ... now B's, with the lock free */
    pthread_join(td, NULL); /* A is gone: C moved into its slot */
    CHECK_RC(d.rc, 0);
    gate_release();
    pthread_join(tf, NULL);
    CHECK_RC(frc, 0);
    ck_assert(synced(k[1]));
    ck_assert_msg(synced(k[2]), "js_flush returned with C's ack unsynced");
    for (int i = 0; i < 3; i++)
        js_consumer_release(k[i]);
}
END_TEST

/* As test_two_deletes_during_a_state_write_drop_one_reference, but nobody
 * holds a handle: the list's reference is the only one, and the delete
 * that comes second must not touch the freed consumer (ASan). */
START_TEST(test_two_deletes_of_an_unreferenced_consumer_during_a_flush) {
    pub("orders.a", "x");
    js_consumer_config c = durable("D");
    js_consumer *k = cadd(ST, &c);
    js_msg *m = next(k); /* positions written, not synced */
    js_msg_free(m);
    js_consumer_release(k); /* only the stream's list holds it now */
    gate_arm_n(GATE_SYNC, 1);
    pthread_t tf, t1, t2;
    int frc = 1;
    del_arg d1 = {ST, "D", 1}, d2 = {ST, "D", 1};
    pthread_create(&tf, NULL, flusher, &frc);
    gate_wait_held();
    pthread_create(&t1, NULL, deleter, &d1);
    pthread_create(&t2, NULL, deleter, &d2);
    usleep(200 * 1000); /* both deletes reach their wait for the write */
    gate_release();
    pthread_join(tf, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_RC(frc, 0);
    ck_assert_msg((d1.rc == 0) != (d2.rc == 0),
                  "deletes returned %d and %d", d1.rc, d2.rc);
}
END_TEST

static void *ack_syncer_rc(void *arg) {
    js_msg *m = arg;
    CHECK_RC(js_msg_ack_sync(m), 0);
    return NULL;
}

static uint64_t log_size(js_consumer *c) {
    pthread_mutex_lock(&c->s->mu);
    uint64_t n = jsi_cslog_size(c->log);
    pthread_mutex_unlock(&c->s->mu);
    return n;
}

/* "A state file never says 'done' for a message the stream still holds"
 * (consumer_ack.c): also not when a write compacts the file into a
 * snapshot that holds an ack made while the write was in flight. Here the
 * process dies (the store's files are copied) right after such a
 * compaction: the work-queue message acked meanwhile must not be left in
 * the stream with a consumer that will never deliver it again. */
START_TEST(test_compaction_never_records_an_ack_the_stream_has_not_seen) {
    js_stream *wq = add_stream("WQ", "jobs.>", JS_RETENTION_WORKQUEUE);
    js_consumer_config c = durable("W");
    c.ack_wait = 3600 * SEC;
    c.max_ack_pending = -1;
    js_consumer *k = cadd(wq, &c);
    /* Grow the state file to just under the compaction threshold. */
    while (log_size(k) < 64 * 1024 - 600) {
        pub("jobs.a", "x");
        js_msg *m = next(k);
        CHECK_RC(js_msg_ack_sync(m), 0);
        js_msg_free(m);
    }
    /* One fetch of 1200 (one small record), every other one acked in
     * memory: the next record lists 600 separate sequences and crosses
     * the threshold. m1 and m2 are among the others. */
    enum { N = 1200 };
    static js_msg *v[N];
    size_t n = 0;
    for (int i = 0; i < N; i++)
        pub("jobs.a", "y");
    js_fetch_opts fo = JS_FETCH_OPTS_INIT;
    CHECK_RC(js_consumer_fetch(k, v, N, &fo, &n), 0);
    ck_assert_uint_eq(n, N);
    ck_assert_uint_lt(log_size(k), 64 * 1024);
    for (size_t i = 0; i < N; i += 2)
        CHECK_RC(js_msg_ack(v[i]), 0);
    js_msg *m1 = v[1], *m2 = v[3];
    uint64_t s1 = js_msg_seq(m1), before = log_size(k);
    gate_arm_n(GATE_WRITE, 1);
    pthread_t t;
    pthread_create(&t, NULL, ack_syncer_rc, m2);
    gate_wait_held(); /* m2's ack is being written, the lock is free */
    CHECK_RC(js_msg_ack(m1), 0); /* removed from the stream in memory */
    gate_release();
    pthread_join(t, NULL); /* the write went past the threshold: compacted */
    ck_assert_uint_lt(log_size(k), before);
    /* The process dies here: nothing else has been written. */
    char copy[1100], cmd[2300];
    snprintf(copy, sizeof copy, "%s-crash", store_path);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", store_path, copy);
    ck_assert_int_eq(system(cmd), 0);
    for (size_t i = 0; i < N; i++)
        js_msg_free(v[i]);
    js_consumer_release(k);
    js_stream_release(wq);
    js_store *st2;
    js_stream *wq2;
    js_consumer *k2;
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.vfs = "gatefs";
    o.sync = sync_policy;
    o.clock = tu_clock;
    o.clock_ctx = &fake_now;
    CHECK_RC(js_open(copy, &o, &st2), 0);
    CHECK_RC(js_stream_lookup(st2, "WQ", &wq2), 0);
    CHECK_RC(js_consumer_lookup(wq2, "W", &k2), 0);
    uint64_t left = stream_msgs(wq2), delivered = 0;
    js_msg *m;
    while (js_consumer_next(k2, 0, &m) == 0) {
        delivered++;
        js_msg_free(m);
    }
    ck_assert_msg(delivered == left, "the work queue holds %" PRIu64
                  " messages after the crash, the consumer delivers %"
                  PRIu64 " (message %" PRIu64 " is stuck)", left,
                  delivered, s1);
    js_consumer_release(k2);
    js_stream_release(wq2);
    CHECK_RC(js_close(st2), 0);
}
END_TEST

/* ---- restore ------------------------------------------------------------------------------ */

static void sh(const char *fmt, const char *a, const char *b) {
    char cmd[4608];
    snprintf(cmd, sizeof cmd, fmt, a, b, a, b);
    ck_assert_msg(system(cmd) == 0, "%s", cmd);
}

/* Under JS_SYNC_INTERVAL or NONE a power cut may lose the stream's tail
 * while the consumer's state, written after it, survives (the OS wrote
 * it first). The stream then gives those sequences out again: the
 * consumer must deliver the new messages, not skip them as delivered.
 * The cut is staged with copies: the stream as it was before the tail,
 * the consumer state as it was after. */
START_TEST(test_state_past_a_lost_stream_tail_skips_no_new_message) {
    char old[1100];
    pub_n("orders.a", 2);
    js_consumer_config c = durable("D");
    CHECK_RC(js_consumer_add(ST, &c, NULL), 0);
    js_stream_release(ST);
    CHECK_RC(js_close(S), 0);
    snprintf(old, sizeof old, "%s-before", store_path);
    sh("cp -r '%s' '%s'", store_path, old);
    open_store();
    CHECK_RC(js_stream_lookup(S, "ORDERS", &ST), 0);
    pub_n("orders.a", 3); /* 3..5: the tail the cut will lose */
    js_consumer *k;
    CHECK_RC(js_consumer_lookup(ST, "D", &k), 0);
    for (uint64_t i = 1; i <= 5; i++)
        ck_assert_uint_eq(take_ack(k), i);
    js_consumer_release(k);
    js_stream_release(ST);
    CHECK_RC(js_close(S), 0);
    S = NULL;
    ST = NULL;
    /* After the cut: the old stream, the new consumer state. */
    sh("cp %s/streams/*/consumers/*.state %s/streams/*/consumers/ "
       "# %s %s", store_path, old);
    ck_assert_uint_lt(strlen(old), sizeof store_path);
    strcpy(store_path, old);
    open_store();
    CHECK_RC(js_stream_lookup(S, "ORDERS", &ST), 0);
    ck_assert_uint_eq(stream_msgs(ST), 2);
    CHECK_RC(js_consumer_lookup(ST, "D", &k), 0);
    ck_assert_uint_eq(pub("orders.a", "new 3"), 3);
    ck_assert_uint_eq(pub("orders.a", "new 4"), 4);
    js_msg *m = NULL;
    CHECK_RC(js_consumer_next(k, 0, &m), 0);
    ck_assert_uint_eq(js_msg_seq(m), 3);
    js_msg_free(m);
    struct js_consumer_info *i;
    CHECK_RC(js_consumer_info(k, &i), 0);
    ck_assert_uint_eq(i->num_pending, 1);
    js_consumer_info_free(i);
    js_consumer_release(k);
}
END_TEST

/* ---- allocation failures ------------------------------------------------------------ */

/* Whichever allocation of a delivery fails, the message is not lost: it is
 * delivered by a later call (at once, or as a redelivery after ack_wait). */
START_TEST(test_a_failed_allocation_in_a_delivery_loses_no_message) {
    pub("orders.a", "x");
    int failures = 0;
    for (uint64_t k = 1; k < 200; k++) {
        char name[16];
        snprintf(name, sizeof name, "E%" PRIu64, k);
        js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
        c.name = name;
        js_consumer *e = cadd(ST, &c);
        js_msg *m = NULL;
        jsi_alloc_fail_at(k, 0);
        int rc = js_consumer_next(e, 0, &m);
        uint64_t failed = jsi_alloc_failed();
        jsi_alloc_fail_at(0, 0);
        if (failed == 0) {
            CHECK_RC(rc, 0);
            js_msg_free(m);
            js_consumer_release(e);
            CHECK_RC(js_consumer_delete(ST, name), 0);
            break;
        }
        if (rc == 0) {
            js_msg_free(m);
        } else {
            failures++;
            ck_assert_ptr_null(m);
            advance(31 * SEC); /* past ack_wait */
            rc = js_consumer_next(e, 0, &m);
            ck_assert_msg(rc == 0, "allocation %" PRIu64 " failed a delivery "
                          "(%s); afterwards the message is never delivered "
                          "(%d %s)", k, js_strerror(JS_ENOMEM), rc, js_strerror(rc));
            ck_assert_uint_eq(js_msg_seq(m), 1);
            js_msg_free(m);
        }
        js_consumer_release(e);
        CHECK_RC(js_consumer_delete(ST, name), 0);
    }
    ck_assert_int_gt(failures, 0);
}
END_TEST

/* The same for a redelivery after ack_wait (here a heap that must grow:
 * many messages are pending). */
START_TEST(test_a_failed_allocation_in_a_redelivery_loses_no_message) {
    pub_n("orders.a", 40);
    int failures = 0;
    for (uint64_t k = 1; k < 200; k++) {
        char name[16];
        snprintf(name, sizeof name, "R%" PRIu64, k);
        js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
        c.name = name;
        js_consumer *e = cadd(ST, &c);
        js_msg *v[40];
        size_t n = 0;
        CHECK_RC(js_consumer_fetch(e, v, 40, NULL, &n), 0);
        ck_assert_uint_eq(n, 40);
        for (size_t i = 0; i < n; i++)
            js_msg_free(v[i]);
        advance(31 * SEC); /* all 40 are due again */
        js_msg *m = NULL;
        jsi_alloc_fail_at(k, 0);
        int rc = js_consumer_next(e, 0, &m);
        uint64_t failed = jsi_alloc_failed();
        jsi_alloc_fail_at(0, 0);
        if (rc == 0)
            js_msg_free(m);
        else
            failures++;
        /* Every message comes again: the 40 (or 39) still due now. */
        n = 0;
        CHECK_RC(js_consumer_fetch(e, v, 40, NULL, &n), 0);
        ck_assert_msg(n == (rc == 0 ? 39u : 40u), "allocation %" PRIu64
                      " failed (rc %d); then %zu redelivered", k, rc, n);
        for (size_t i = 0; i < n; i++)
            js_msg_free(v[i]);
        js_consumer_release(e);
        CHECK_RC(js_consumer_delete(ST, name), 0);
        if (failed == 0)
            break;
    }
    ck_assert_int_gt(failures, 0);
}
END_TEST

/* An ack whose state record cannot be queued fails and changes nothing, so
 * that retrying it works: the retried ack_sync makes it durable and, on a
 * work-queue stream, removes the message. */
START_TEST(test_an_ack_that_could_not_be_recorded_can_be_retried) {
    js_stream *wq = add_stream("WQ", "jobs.>", JS_RETENTION_WORKQUEUE);
    js_consumer_config c = durable("W");
    c.ack_wait = 3600 * SEC;
    js_consumer *k = cadd(wq, &c);
    pub("jobs.a", "1");
    pub("jobs.a", "2");
    js_msg *m1 = next(k), *m2 = next(k);
    ck_assert_uint_eq(js_msg_seq(m2), 2);
    jsi_alloc_fail_at(1, 0); /* the ack's queue of done sequences */
    int rc = js_msg_ack(m2);
    ck_assert_uint_eq(jsi_alloc_failed(), 1);
    jsi_alloc_fail_at(0, 0);
    CHECK_RC(rc, JS_ENOMEM);
    CHECK_RC(js_msg_ack_sync(m2), 0); /* the application retries */
    ck_assert_uint_eq(stream_msgs(wq), 1); /* 2 is gone, 1 is not acked */
    js_msg_free(m1);
    js_msg_free(m2);
    js_consumer_release(k);
    js_stream_release(wq);
    reopen();
    CHECK_RC(js_stream_lookup(S, "WQ", &wq), 0);
    CHECK_RC(js_consumer_lookup(wq, "W", &k), 0);
    js_msg *m = next(k);
    ck_assert_uint_eq(js_msg_seq(m), 1);
    js_msg_free(m);
    no_next(k); /* 2, acked with ack_sync, never comes back */
    js_consumer_release(k);
    js_stream_release(wq);
}
END_TEST

/* ---- acks of superseded deliveries ---------------------------------------------- */

static uint64_t ack_pending(js_consumer *c) {
    struct js_consumer_info *i;
    CHECK_RC(js_consumer_info(c, &i), 0);
    uint64_t n = i->num_ack_pending;
    js_consumer_info_free(i);
    return n;
}

/* jetstream.h: a nak or in-progress of a delivery superseded by a
 * redelivery is ignored: a late nak from the first receiver must not
 * redeliver the message while the second is working on it. An ack of it
 * still counts (an ack_sync that returned means never delivered again). */
START_TEST(test_nak_of_a_superseded_delivery_is_ignored) {
    pub("orders.a", "x");
    js_consumer_config c = durable("D");
    c.ack_wait = 10 * SEC;
    js_consumer *k = cadd(ST, &c);
    js_msg *m1 = next(k);
    advance(11 * SEC);
    js_msg *m2 = next(k); /* the redelivery, to another worker */
    ck_assert_uint_eq(meta(m2).num_delivered, 2);
    CHECK_RC(js_msg_nak(m1, 0), 0);
    no_next(k); /* m2 is being worked on: not redelivered at once */
    CHECK_RC(js_msg_in_progress(m1), 0);
    ck_assert_uint_eq(ack_pending(k), 1);
    CHECK_RC(js_msg_ack_sync(m1), 0); /* the first worker did finish it */
    ck_assert_uint_eq(ack_pending(k), 0);
    advance(11 * SEC);
    no_next(k);
    CHECK_RC(js_msg_ack(m2), 0);
    js_msg_free(m1);
    js_msg_free(m2);
    js_consumer_release(k);
}
END_TEST

/* ---- push ---------------------------------------------------------------------------- */

typedef struct peer {
    js_sub *self, *other;
    struct peer *other_peer;
    int calls;
    int unsub_rc;
} peer;

/* The first callback to run unsubscribes the other subscription. */
static void unsub_other(js_consumer *c, js_msg *m, void *ctx) {
    peer *p = ctx;
    (void)c;
    p->calls++;
    if (p->other) {
        p->other_peer->other = NULL;
        p->unsub_rc = js_sub_unsubscribe(p->other);
        p->other = NULL;
    }
    js_msg_free(m);
}

/* A callback may unsubscribe a subscription other than its own (only its
 * own is forbidden), even one with a delivery queued in the same round:
 * that delivery must not be made, nor wait for. */
START_TEST(test_a_callback_may_unsubscribe_another_subscription) {
    js_consumer_config c = durable("P1");
    c.deliver_subject = "deliver.p1";
    js_consumer *k1 = cadd(ST, &c);
    c.durable_name = "P2";
    c.deliver_subject = "deliver.p2";
    js_consumer *k2 = cadd(ST, &c);
    peer p1 = {0}, p2 = {0};
    CHECK_RC(js_consumer_subscribe(k1, unsub_other, &p1, &p1.self), 0);
    CHECK_RC(js_consumer_subscribe(k2, unsub_other, &p2, &p2.self), 0);
    p1.other = p2.self;
    p1.other_peer = &p2;
    p2.other = p1.self;
    p2.other_peer = &p1;
    pub("orders.a", "x"); /* one delivery for each subscription */
    int n = js_dispatch(S, 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(p1.calls + p2.calls, 1);
    ck_assert_int_eq(p1.unsub_rc, 0);
    ck_assert_int_eq(p2.unsub_rc, 0);
    CHECK_RC(js_sub_unsubscribe(p1.calls ? p1.self : p2.self), 0);
    js_consumer_release(k1);
    js_consumer_release(k2);
}
END_TEST

/* ---- retention ----------------------------------------------------------------------- */

/* Interest retention: a last_per_subject consumer never delivers the
 * messages that were not their subject's last when it was created, so it
 * must not hold them in the stream once every other consumer is done. */
START_TEST(test_interest_does_not_keep_what_last_per_subject_skips) {
    js_stream *is = add_stream("IS", "ev.>", JS_RETENTION_INTEREST);
    js_consumer_config c = durable("A");
    js_consumer *a = cadd(is, &c);
    pub("ev.b", "b1"); /* 1 */
    pub("ev.a", "a1"); /* 2: not its subject's last */
    pub("ev.c", "c1"); /* 3 */
    pub("ev.a", "a2"); /* 4 */
    c.durable_name = "L";
    c.deliver_policy = JS_DELIVER_LAST_PER_SUBJECT;
    c.filter_subject = "ev.>";
    js_consumer *l = cadd(is, &c);
    for (uint64_t i = 1; i <= 4; i++)
        ck_assert_uint_eq(take_ack(a), i);
    ck_assert_uint_eq(take_ack(l), 1);
    ck_assert_uint_eq(take_ack(l), 3);
    ck_assert_uint_eq(take_ack(l), 4);
    no_next(l);
    ck_assert_uint_eq(stream_msgs(is), 0);
    js_consumer_release(a);
    js_consumer_release(l);
    js_stream_release(is);
}
END_TEST

/* Work queue: a message that reached max_deliver stays in the stream (as
 * in NATS, PR #7845) until it is acked, purged or removed by limits; a late
 * ack of its last delivery must still remove it. */
START_TEST(test_workqueue_late_ack_after_max_deliver_removes_the_message) {
    js_stream *wq = add_stream("WQ", "jobs.>", JS_RETENTION_WORKQUEUE);
    js_consumer_config c = durable("W");
    c.ack_wait = 10 * SEC;
    c.max_deliver = 2;
    js_consumer *k = cadd(wq, &c);
    pub("jobs.a", "slow job");
    js_msg *m1 = next(k);
    advance(11 * SEC);
    js_msg *m2 = next(k);
    ck_assert_uint_eq(meta(m2).num_delivered, 2);
    advance(11 * SEC);
    no_next(k); /* max_deliver reached: no third delivery */
    ck_assert_uint_eq(stream_msgs(wq), 1);
    CHECK_RC(js_msg_ack(m2), 0); /* the slow worker finishes */
    ck_assert_uint_eq(stream_msgs(wq), 0);
    js_msg_free(m1);
    js_msg_free(m2);
    js_consumer_release(k);
    js_stream_release(wq);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

/* js_strerror names every code, the consumer layer's too. */
START_TEST(test_strerror_names_the_consumer_codes) {
    int codes[] = {JS_ETIMEOUT, JS_ECONSUMER_NOT_FOUND, JS_ECONSUMER_EXISTS,
                   JS_EMAX_WAITING, JS_EBUSY};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        ck_assert_msg(strcmp(js_strerror(codes[i]), "unknown error") != 0,
                      "js_strerror(%d) is \"unknown error\"", codes[i]);
}
END_TEST

/* js_consumer_next: "On failure *out is NULL." A state write that fails
 * after the message was taken must not hand it out with the error. */
START_TEST(test_next_that_fails_returns_no_message) {
    pub_n("orders.a", 2);
    js_consumer_config c = durable("D");
    js_consumer *k = cadd(ST, &c);
    js_msg *m = next(k);
    js_msg_free(m);
    __atomic_store_n(&state_fail, 1, __ATOMIC_SEQ_CST);
    m = NULL;
    int rc = js_consumer_next(k, 0, &m);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(m == NULL, "js_consumer_next returned %d (%s) and a "
                  "message", rc, js_strerror(rc));
    js_msg_free(m);
    __atomic_store_n(&state_fail, 0, __ATOMIC_SEQ_CST);
    js_consumer_release(k);
    js_stream_release(ST);
    ST = NULL;
    js_close(S); /* the failed state reports its error; not checked here */
    S = NULL;
}
END_TEST

/* Interest retention: an ephemeral consumer does not survive close, so
 * what only it still needed must not stay in the stream for good after a
 * reopen (NATS checks the interest state when a stream is recovered). */
START_TEST(test_interest_lets_go_of_what_only_a_closed_ephemeral_needed) {
    js_stream *is = add_stream("IS", "ev.>", JS_RETENTION_INTEREST);
    js_consumer_config c = durable("A");
    js_consumer *a = cadd(is, &c);
    js_consumer_config e = JS_CONSUMER_CONFIG_INIT;
    e.name = "EPH";
    CHECK_RC(js_consumer_add(is, &e, NULL), 0);
    pub("ev.a", "x");
    ck_assert_uint_eq(take_ack(a), 1);
    ck_assert_uint_eq(stream_msgs(is), 1); /* EPH has not taken it */
    js_consumer_release(a);
    js_stream_release(is);
    reopen();
    CHECK_RC(js_stream_lookup(S, "IS", &is), 0);
    ck_assert_uint_eq(stream_msgs(is), 0);
    js_stream_release(is);
}
END_TEST

typedef struct serial_rec {
    pthread_mutex_t mu;
    int inflight, max_inflight, n, out_of_order;
    uint64_t last;
} serial_rec;

static void serial_cb(js_consumer *c, js_msg *m, void *ctx) {
    serial_rec *r = ctx;
    (void)c;
    pthread_mutex_lock(&r->mu);
    if (++r->inflight > r->max_inflight)
        r->max_inflight = r->inflight;
    if (js_msg_seq(m) < r->last)
        r->out_of_order++;
    r->last = js_msg_seq(m);
    pthread_mutex_unlock(&r->mu);
    usleep(100);
    pthread_mutex_lock(&r->mu);
    r->inflight--;
    r->n++;
    pthread_mutex_unlock(&r->mu);
    js_msg_ack(m);
    js_msg_free(m);
}

/* A push consumer without a deliver_group has one subscriber; with
 * several dispatcher threads its callback must still be called one
 * message at a time and in stream order, as a NATS subscription's is.
 * (Each thread takes its own round for the consumer and calls back
 * concurrently with the others.) */
START_TEST(test_dispatcher_threads_call_one_subscription_serially) {
    js_consumer_config c = durable("P");
    c.deliver_subject = "deliver.p";
    c.max_ack_pending = -1;
    js_consumer *k = cadd(ST, &c);
    serial_rec r = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0};
    js_sub *sub;
    CHECK_RC(js_consumer_subscribe(k, serial_cb, &r, &sub), 0);
    CHECK_RC(js_dispatcher_start(S, 4), 0);
    for (int i = 0; i < 1000; i++) {
        pub("orders.a", "x");
        if (i % 50 == 0)
            usleep(1000);
    }
    for (;;) {
        pthread_mutex_lock(&r.mu);
        int n = r.n;
        pthread_mutex_unlock(&r.mu);
        if (n >= 1000)
            break;
        usleep(10 * 1000);
    }
    CHECK_RC(js_dispatcher_stop(S), 0);
    CHECK_RC(js_sub_unsubscribe(sub), 0);
    js_consumer_release(k);
    ck_assert_int_eq(r.max_inflight, 1);
    ck_assert_int_eq(r.out_of_order, 0);
}
END_TEST

/* A durable last_per_subject consumer reopened before it has delivered its
 * whole list must go on with the list, not deliver every message after the
 * last one it delivered (the list is not in its stored state). */
START_TEST(test_last_per_subject_resumes_its_list_after_reopen) {
    pub("orders.b", "b1"); /* 1 */
    pub("orders.a", "a1"); /* 2: not its subject's last */
    pub("orders.c", "c1"); /* 3 */
    pub("orders.a", "a2"); /* 4 */
    js_consumer_config c = durable("L");
    c.deliver_policy = JS_DELIVER_LAST_PER_SUBJECT;
    c.filter_subject = "orders.>";
    js_consumer *l = cadd(ST, &c);
    js_msg *m = next(l);
    ck_assert_uint_eq(js_msg_seq(m), 1);
    CHECK_RC(js_msg_ack_sync(m), 0);
    js_msg_free(m);
    pub("orders.a", "a3"); /* 5: after the list was made: delivered */
    js_consumer_release(l);
    reopen();
    CHECK_RC(js_consumer_lookup(ST, "L", &l), 0);
    ck_assert_uint_eq(take_ack(l), 3);
    ck_assert_uint_eq(take_ack(l), 4);
    ck_assert_uint_eq(take_ack(l), 5);
    no_next(l);
    js_consumer_release(l);
}
END_TEST

/* ---- suite ---------------------------------------------------------------------- */

static Suite *review_suite(void) {
    Suite *s = suite_create("consumer_review");
    TCase *tc = tcase_create("pull");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_next_with_a_timeout_sleeps_instead_of_spinning);
    suite_add_tcase(s, tc);
    tc = tcase_create("acks");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_nak_of_a_superseded_delivery_is_ignored);
    suite_add_tcase(s, tc);
    tc = tcase_create("push");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_a_callback_may_unsubscribe_another_subscription);
    suite_add_tcase(s, tc);
    tc = tcase_create("retention");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_interest_does_not_keep_what_last_per_subject_skips);
    tcase_add_test(tc, test_workqueue_late_ack_after_max_deliver_removes_the_message);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_strerror_names_the_consumer_codes);
    suite_add_tcase(s, tc);
    tc = tcase_create("io_errors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_next_that_fails_returns_no_message);
    suite_add_tcase(s, tc);
    tc = tcase_create("restore");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_state_past_a_lost_stream_tail_skips_no_new_message);
    suite_add_tcase(s, tc);
    tc = tcase_create("races");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_two_deletes_during_a_state_write_drop_one_reference);
    tcase_add_test(tc, test_flush_syncs_every_consumer_while_one_is_deleted);
    tcase_add_test(tc, test_two_deletes_of_an_unreferenced_consumer_during_a_flush);
    tcase_add_test(tc, test_compaction_never_records_an_ack_the_stream_has_not_seen);
    suite_add_tcase(s, tc);
    tc = tcase_create("failures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_a_failed_allocation_in_a_delivery_loses_no_message);
    tcase_add_test(tc, test_a_failed_allocation_in_a_redelivery_loses_no_message);
    tcase_add_test(tc, test_an_ack_that_could_not_be_recorded_can_be_retried);
    tcase_add_test(tc, test_interest_lets_go_of_what_only_a_closed_ephemeral_needed);
    tcase_add_test(tc, test_dispatcher_threads_call_one_subscription_serially);
    tcase_add_test(tc, test_last_per_subject_resumes_its_list_after_reopen);
    suite_add_tcase(s, tc);
    (void)setup_always;
    (void)reopen;
    (void)advance;
    (void)pub_n;
    (void)no_next;
    (void)meta;
    (void)stream_msgs;
    (void)take_ack;
    (void)gate_arm;
    (void)gate_wait_held;
    (void)gate_release;
    return s;
}

int main(void) {
    base_dir = tu_mkdtemp("test_consumer_review");
    int failed = tu_run_suite(review_suite());
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed != 0;
}
