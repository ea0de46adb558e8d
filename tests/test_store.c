/*
 * test_store.c - the store as a whole, through the public API: open, close
 * and reopen (posix and the "mem" backend), the lock, argument checks,
 * stale and deleted handles, stream names, stream deletion, memory-storage
 * streams, and concurrent publishers and readers.
 */
#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jetstream.h"
#include "check_rc.h"
#include "testutil.h"
#include "runner.h"

#define SEC ((int64_t)1000000000)
#define MS ((int64_t)1000000)
#define T0 ((int64_t)1700000000 * SEC)

/* Fails the test with the library's own words when rc is not want. */
static char *base_dir;     /* made by main(), removed at exit */
static char store_path[512];
static int64_t fake_now;
static js_store *S;

static js_open_opts test_opts(int sync) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.sync = sync;
    o.clock = tu_clock;
    o.clock_ctx = &fake_now;
    return o;
}

/* A fresh (not yet existing) store path for each test. */
static void new_path(void) {
    static unsigned n;
    snprintf(store_path, sizeof store_path, "%s/store-%ld-%u", base_dir,
             (long)getpid(), n++);
}

static void open_store(int sync) {
    js_open_opts o = test_opts(sync);
    CHECK_RC(js_open(store_path, &o, &S), 0);
    ck_assert_ptr_nonnull(S);
}

static void setup(void) {
    tu_clock_set(&fake_now, T0);
    new_path();
    S = NULL;
}

static void teardown(void) {
    if (S)
        CHECK_RC(js_close(S), 0);
    S = NULL;
}

static void reopen(int sync) {
    CHECK_RC(js_close(S), 0);
    S = NULL;
    open_store(sync);
}

static js_stream *add(const js_stream_config *c) {
    js_stream *s = NULL;
    CHECK_RC(js_stream_add(S, c, &s), 0);
    ck_assert_ptr_nonnull(s);
    return s;
}

static js_stream *lookup(const char *name) {
    js_stream *s = NULL;
    CHECK_RC(js_stream_lookup(S, name, &s), 0);
    ck_assert_ptr_nonnull(s);
    return s;
}

static uint64_t pub(const char *subj, const char *data) {
    js_pub_ack ack = JS_PUB_ACK_INIT;
    CHECK_RC(js_publish(S, subj, NULL, 0, data, strlen(data), &ack), 0);
    ck_assert_int_eq(ack.duplicate, 0);
    return ack.seq;
}

static js_stream_state state_of(js_stream *s) {
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(s, &inf), 0);
    js_stream_state st = *inf->state;
    js_stream_info_free(inf);
    return st;
}

/* Number of entries in a directory (-1 if it cannot be read). */
static int dir_entries(const char *path) {
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void expect_msg(js_stream *s, uint64_t seq, const char *subj,
                       const char *data, int64_t ts) {
    js_msg *m = NULL;
    size_t len = 0;
    CHECK_RC(js_msg_get(s, seq, &m), 0);
    ck_assert_uint_eq(js_msg_seq(m), seq);
    ck_assert_str_eq(js_msg_subject(m), subj);
    const char *d = js_msg_data(m, &len);
    ck_assert_uint_eq(len, strlen(data));
    ck_assert(memcmp(d, data, len) == 0);
    if (ts)
        ck_assert_int_eq(js_msg_time(m), ts);
    js_msg_free(m);
}

/* ---- open, close, reopen ------------------------------------------------ */

static const char *const orders_subjects[] = {"orders.*", "returns.>"};

static js_stream_config orders_config(void) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "ORDERS";
    c.description = "orders and returns";
    c.subjects = orders_subjects;
    c.num_subjects = 2;
    c.max_consumers = 7;
    c.max_msgs = 1000;
    c.max_bytes = 1 << 20;
    c.max_age = 3600 * SEC;
    c.max_msgs_per_subject = 50;
    c.max_msg_size = 4096;
    c.discard = JS_DISCARD_NEW;
    c.duplicate_window = 60 * SEC;
    c.deny_delete = 1;
    c.allow_rollup_hdrs = 1;
    return c;
}

static void check_orders_config(const js_stream_config *c) {
    ck_assert_str_eq(c->name, "ORDERS");
    ck_assert_ptr_nonnull(c->description);
    ck_assert_str_eq(c->description, "orders and returns");
    ck_assert_uint_eq(c->num_subjects, 2);
    ck_assert_str_eq(c->subjects[0], "orders.*");
    ck_assert_str_eq(c->subjects[1], "returns.>");
    ck_assert_int_eq(c->max_consumers, 7);
    ck_assert_int_eq(c->max_msgs, 1000);
    ck_assert_int_eq(c->max_bytes, 1 << 20);
    ck_assert_int_eq(c->max_age, 3600 * SEC);
    ck_assert_int_eq(c->max_msgs_per_subject, 50);
    ck_assert_int_eq(c->max_msg_size, 4096);
    ck_assert_int_eq(c->discard, JS_DISCARD_NEW);
    ck_assert_int_eq(c->storage, JS_STORAGE_FILE);
    ck_assert_int_eq(c->retention, JS_RETENTION_LIMITS);
    ck_assert_int_eq(c->duplicate_window, 60 * SEC);
    ck_assert_int_eq(c->deny_delete, 1);
    ck_assert_int_eq(c->deny_purge, 0);
    ck_assert_int_eq(c->allow_rollup_hdrs, 1);
    ck_assert_int_eq(c->sealed, 0);
}

static const char msgid_hdr[] = "NATS/1.0\r\nNats-Msg-Id: order-1\r\n"
                                "Trace: abc\r\n\r\n";

/* Three streams with distinct configs and messages (one with headers, one
 * interior gap, one starting at first_seq 50). */
static void populate(void) {
    js_stream_config oc = orders_config();
    js_stream_config ec = JS_STREAM_CONFIG_INIT;
    js_stream_config lc = JS_STREAM_CONFIG_INIT;
    ec.name = "EVENTS";
    lc.name = "LOGS";
    lc.first_seq = 50;
    lc.deny_purge = 1;
    lc.sync = JS_SYNC_ALWAYS;
    js_stream *o = add(&oc), *e = add(&ec), *l = add(&lc);
    js_pub_ack ack = JS_PUB_ACK_INIT;

    tu_clock_set(&fake_now, T0 + 1 * SEC);
    CHECK_RC(js_publish(S, "orders.new", msgid_hdr, strlen(msgid_hdr), "o1",
                        2, &ack), 0);
    ck_assert_uint_eq(ack.seq, 1);
    tu_clock_set(&fake_now, T0 + 2 * SEC);
    ck_assert_uint_eq(pub("returns.eu.fr", "r1"), 2);
    for (int i = 0; i < 10; i++) {
        char d[16];
        snprintf(d, sizeof d, "e%d", i);
        tu_clock_set(&fake_now, T0 + (10 + i) * SEC);
        ck_assert_uint_eq(pub("EVENTS", d), (uint64_t)i + 1);
    }
    CHECK_RC(js_msg_delete(e, 5), 0);
    tu_clock_set(&fake_now, T0 + 30 * SEC);
    ck_assert_uint_eq(pub("LOGS", "l50"), 50);
    ck_assert_uint_eq(pub("LOGS", "l51"), 51);
    js_stream_release(o);
    js_stream_release(e);
    js_stream_release(l);
}

static void check_populated(void) {
    char **names = NULL;
    size_t n = 0;
    CHECK_RC(js_stream_names(S, &names, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(names[0], "EVENTS");
    ck_assert_str_eq(names[1], "LOGS");
    ck_assert_str_eq(names[2], "ORDERS");
    ck_assert_ptr_null(names[3]);
    js_names_free(names);

    js_stream *o = lookup("ORDERS"), *e = lookup("EVENTS"), *l = lookup("LOGS");
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(o, &inf), 0);
    check_orders_config(inf->config);
    ck_assert_uint_eq(inf->state->msgs, 2);
    ck_assert_uint_eq(inf->state->first_seq, 1);
    ck_assert_uint_eq(inf->state->last_seq, 2);
    ck_assert_uint_eq(inf->state->num_subjects, 2);
    ck_assert_uint_eq(inf->state->bytes,
                      (40 + 10 + strlen(msgid_hdr) + 2) + (40 + 13 + 2));
    ck_assert_int_eq(inf->state->first_ts, T0 + 1 * SEC);
    ck_assert_int_eq(inf->state->last_ts, T0 + 2 * SEC);
    js_stream_info_free(inf);
    expect_msg(o, 1, "orders.new", "o1", T0 + 1 * SEC);
    expect_msg(o, 2, "returns.eu.fr", "r1", T0 + 2 * SEC);
    js_msg *m = NULL;
    size_t hl = 0;
    CHECK_RC(js_msg_get(o, 1, &m), 0);
    const void *h = js_msg_headers(m, &hl);
    ck_assert_uint_eq(hl, strlen(msgid_hdr));
    ck_assert(memcmp(h, msgid_hdr, hl) == 0);
    js_msg_free(m);

    CHECK_RC(js_stream_info(e, &inf), 0);
    ck_assert_str_eq(inf->config->name, "EVENTS");
    ck_assert_uint_eq(inf->config->num_subjects, 1);
    ck_assert_str_eq(inf->config->subjects[0], "EVENTS");
    ck_assert_int_eq(inf->config->max_msgs, -1);
    ck_assert_uint_eq(inf->state->msgs, 9);
    ck_assert_uint_eq(inf->state->first_seq, 1);
    ck_assert_uint_eq(inf->state->last_seq, 10);
    ck_assert_uint_eq(inf->state->num_deleted, 1);
    js_stream_info_free(inf);
    for (int i = 0; i < 10; i++) {
        char d[16];
        snprintf(d, sizeof d, "e%d", i);
        if (i + 1 == 5) {
            CHECK_RC(js_msg_get(e, 5, &m), JS_EMSG_NOT_FOUND);
            continue;
        }
        expect_msg(e, (uint64_t)i + 1, "EVENTS", d, T0 + (10 + i) * SEC);
    }

    CHECK_RC(js_stream_info(l, &inf), 0);
    ck_assert_int_eq(inf->config->deny_purge, 1);
    ck_assert_int_eq(inf->config->sync, JS_SYNC_ALWAYS);
    ck_assert_uint_eq(inf->config->first_seq, 50);
    ck_assert_uint_eq(inf->state->msgs, 2);
    ck_assert_uint_eq(inf->state->first_seq, 50);
    ck_assert_uint_eq(inf->state->last_seq, 51);
    js_stream_info_free(inf);
    expect_msg(l, 50, "LOGS", "l50", T0 + 30 * SEC);
    expect_msg(l, 51, "LOGS", "l51", T0 + 30 * SEC);
    js_stream_release(o);
    js_stream_release(e);
    js_stream_release(l);
}

START_TEST(test_reopen_restores_every_stream_config_and_message) {
    open_store(JS_SYNC_NONE);
    populate();
    check_populated();
    tu_clock_set(&fake_now, T0 + 40 * SEC);
    reopen(JS_SYNC_NONE);
    check_populated();
    /* A second cycle: what the reopened store writes back is still whole. */
    reopen(JS_SYNC_ALWAYS);
    check_populated();
    /* And sequences continue where they were. */
    ck_assert_uint_eq(pub("EVENTS", "e10"), 11);
    ck_assert_uint_eq(pub("LOGS", "l52"), 52);
}
END_TEST

START_TEST(test_reopen_on_mem_vfs_within_process_sees_data) {
    static unsigned n;
    char path[128];
    js_open_opts o = test_opts(JS_SYNC_NONE);
    o.vfs = "mem";
    snprintf(path, sizeof path, "/test_store/mem-%ld-%u", (long)getpid(), n++);
    CHECK_RC(js_open(path, &o, &S), 0);
    populate();
    check_populated();
    js_store *again = NULL;
    CHECK_RC(js_open(path, &o, &again), JS_ELOCKED);
    CHECK_RC(js_close(S), 0);
    S = NULL;
    /* Nothing of it reached the real file system. */
    struct stat sb;
    ck_assert_int_ne(stat(path, &sb), 0);
    CHECK_RC(js_open(path, &o, &S), 0);
    check_populated();
}
END_TEST

START_TEST(test_memory_storage_stream_keeps_config_but_not_messages) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "MEM";
    c.storage = JS_STORAGE_MEMORY;
    c.max_msgs = 77;
    c.description = "volatile";
    open_store(JS_SYNC_NONE);
    js_stream *s = add(&c);
    ck_assert_uint_eq(pub("MEM", "a"), 1);
    ck_assert_uint_eq(pub("MEM", "b"), 2);
    ck_assert_uint_eq(state_of(s).msgs, 2);
    expect_msg(s, 2, "MEM", "b", 0);
    js_stream_release(s);
    /* No block file of a memory stream lands in the store directory: its
     * directory there holds only its definition (streams/<id>/config). */
    char dir[600], def[700];
    snprintf(dir, sizeof dir, "%s/streams", store_path);
    ck_assert_int_eq(dir_entries(dir), 1);
    snprintf(def, sizeof def, "%s/%016x", dir, 1u);
    ck_assert_int_eq(dir_entries(def), 1);
    snprintf(def, sizeof def, "%s/%016x/config", dir, 1u);
    struct stat sb;
    ck_assert_int_eq(stat(def, &sb), 0);

    reopen(JS_SYNC_NONE);
    s = lookup("MEM");
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(s, &inf), 0);
    ck_assert_int_eq(inf->config->storage, JS_STORAGE_MEMORY);
    ck_assert_int_eq(inf->config->max_msgs, 77);
    ck_assert_str_eq(inf->config->description, "volatile");
    ck_assert_uint_eq(inf->state->msgs, 0);
    ck_assert_uint_eq(inf->state->bytes, 0);
    ck_assert_uint_eq(inf->state->last_seq, 0);
    js_stream_info_free(inf);
    js_msg *m = NULL;
    CHECK_RC(js_msg_get(s, 1, &m), JS_EMSG_NOT_FOUND);
    ck_assert_uint_eq(pub("MEM", "c"), 1);
    js_stream_release(s);
}
END_TEST

START_TEST(test_second_open_of_same_store_is_locked_until_close) {
    js_store *second = NULL;
    open_store(JS_SYNC_NONE);
    js_open_opts o = test_opts(JS_SYNC_NONE);
    CHECK_RC(js_open(store_path, &o, &second), JS_ELOCKED);
    CHECK_RC(js_open(store_path, NULL, &second), JS_ELOCKED);

    /* Another process is refused too. Its result comes back through a
     * pipe: under valgrind the exit status of a child is not its own. */
    int fds[2], child_rc = 1;
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        js_store *x = NULL;
        int rc = js_open(store_path, NULL, &x);
        ssize_t w = write(fds[1], &rc, sizeof rc);
        _exit(w == (ssize_t)sizeof rc ? 0 : 1);
    }
    close(fds[1]);
    ck_assert_int_eq(read(fds[0], &child_rc, sizeof child_rc),
                     (ssize_t)sizeof child_rc);
    close(fds[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(child_rc == JS_ELOCKED,
                  "js_open in another process returned %d (%s)", child_rc,
                  js_strerror(child_rc));

    CHECK_RC(js_close(S), 0);
    S = NULL;
    CHECK_RC(js_open(store_path, &o, &second), 0);
    ck_assert_ptr_nonnull(second);
    CHECK_RC(js_close(second), 0);
}
END_TEST

START_TEST(test_no_create_on_missing_directory_is_enotfound) {
    js_open_opts o = test_opts(JS_SYNC_NONE);
    struct stat sb;
    o.no_create = 1;
    CHECK_RC(js_open(store_path, &o, &S), JS_ENOTFOUND);
    S = NULL;
    ck_assert_int_ne(stat(store_path, &sb), 0); /* nothing created */
    /* Once the store exists, no_create opens it. */
    open_store(JS_SYNC_NONE);
    CHECK_RC(js_close(S), 0);
    S = NULL;
    CHECK_RC(js_open(store_path, &o, &S), 0);
}
END_TEST

/* An existing but empty directory holds no store either. */
START_TEST(test_no_create_on_existing_empty_directory_is_enotfound) {
    js_open_opts o = test_opts(JS_SYNC_NONE);
    o.no_create = 1;
    ck_assert_int_eq(mkdir(store_path, 0700), 0);
    CHECK_RC(js_open(store_path, &o, &S), JS_ENOTFOUND);
    S = NULL;
    ck_assert_int_eq(dir_entries(store_path), 0); /* nothing written */
}
END_TEST

START_TEST(test_open_rejects_bad_arguments_with_einval) {
    js_open_opts o = test_opts(JS_SYNC_NONE);
    js_store *st = NULL;
    CHECK_RC(js_open(NULL, &o, &st), JS_EINVAL);
    CHECK_RC(js_open("", &o, &st), JS_EINVAL);
    CHECK_RC(js_open(store_path, &o, NULL), JS_EINVAL);
    o.version = 0;
    CHECK_RC(js_open(store_path, &o, &st), JS_EINVAL);
    o.version = 99;
    CHECK_RC(js_open(store_path, &o, &st), JS_EINVAL);
    o = test_opts(JS_SYNC_NONE);
    o.vfs = "no-such-backend";
    CHECK_RC(js_open(store_path, &o, &st), JS_EINVAL);
    o = test_opts(42);
    CHECK_RC(js_open(store_path, &o, &st), JS_EINVAL);
    struct stat sb;
    ck_assert_int_ne(stat(store_path, &sb), 0);
}
END_TEST

START_TEST(test_api_rejects_null_and_unknown_struct_versions_with_einval) {
    open_store(JS_SYNC_NONE);
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    js_stream *s = NULL;
    c.name = "ARGS";
    CHECK_RC(js_stream_add(S, NULL, &s), JS_EINVAL);
    c.version = 0;
    CHECK_RC(js_stream_add(S, &c, &s), JS_EINVAL);
    c.version = 99;
    CHECK_RC(js_stream_add(S, &c, &s), JS_EINVAL);
    c.version = JS_STREAM_CONFIG_VERSION;
    c.name = NULL;
    CHECK_RC(js_stream_add(S, &c, &s), JS_EINVAL);
    c.name = "ARGS";
    c.num_subjects = 2; /* subjects NULL */
    CHECK_RC(js_stream_add(S, &c, &s), JS_EINVAL);
    c.num_subjects = 0;
    ck_assert_ptr_null(s);
    CHECK_RC(js_stream_update(S, NULL), JS_EINVAL);
    c.version = 0;
    CHECK_RC(js_stream_update(S, &c), JS_EINVAL);
    c.version = 99;
    CHECK_RC(js_stream_update(S, &c), JS_EINVAL);
    c.version = JS_STREAM_CONFIG_VERSION;

    s = add(&c);
    CHECK_RC(js_stream_lookup(S, NULL, &s), JS_EINVAL);
    CHECK_RC(js_stream_lookup(S, "ARGS", NULL), JS_EINVAL);
    CHECK_RC(js_stream_names(S, NULL, NULL), JS_EINVAL);
    CHECK_RC(js_stream_info(s, NULL), JS_EINVAL);
    CHECK_RC(js_stream_delete(S, NULL), JS_EINVAL);

    js_pub_ack ack = JS_PUB_ACK_INIT;
    ack.version = 0;
    CHECK_RC(js_publish(S, "ARGS", NULL, 0, "x", 1, &ack), JS_EINVAL);
    ack.version = 99;
    CHECK_RC(js_publish(S, "ARGS", NULL, 0, "x", 1, &ack), JS_EINVAL);
    CHECK_RC(js_publish(S, "ARGS", NULL, 0, NULL, 5, NULL), JS_EINVAL);
    CHECK_RC(js_publish(S, "ARGS", NULL, 5, "x", 1, NULL), JS_EINVAL);
    js_pub_msg pm = {"ARGS", NULL, 0, "x", 1};
    js_pub_ack acks[1] = {JS_PUB_ACK_INIT};
    size_t done = 9;
    acks[0].version = 0;
    CHECK_RC(js_publish_batch(S, &pm, 1, acks, &done), JS_EINVAL);
    ck_assert_uint_eq(done, 0);
    CHECK_RC(js_publish_batch(S, NULL, 1, NULL, &done), JS_EINVAL);

    js_purge_opts po = JS_PURGE_OPTS_INIT;
    po.version = 0;
    CHECK_RC(js_stream_purge(s, &po, NULL), JS_EINVAL);
    po.version = 99;
    CHECK_RC(js_stream_purge(s, &po, NULL), JS_EINVAL);

    CHECK_RC(js_msg_get(s, 1, NULL), JS_EINVAL);
    /* None of it stored anything. */
    ck_assert_uint_eq(state_of(s).msgs, 0);
    ck_assert_uint_eq(state_of(s).last_seq, 0);

    /* Not a handle at all. */
    CHECK_RC(js_stream_add(NULL, &c, &s), JS_EMISUSE);
    CHECK_RC(js_publish(NULL, "ARGS", NULL, 0, "x", 1, NULL), JS_EMISUSE);
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(NULL, &inf), JS_EMISUSE);
    js_stream_release(s);
}
END_TEST

START_TEST(test_free_and_close_functions_accept_null) {
    CHECK_RC(js_close(NULL), 0);
    js_stream_release(NULL);
    js_stream_info_free(NULL);
    js_names_free(NULL);
    js_msg_free(NULL);
}
END_TEST

START_TEST(test_stream_handles_are_stale_after_close) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "STALE";
    c.description = "kept by the info";
    open_store(JS_SYNC_NONE);
    js_stream *s = add(&c);
    ck_assert_uint_eq(pub("STALE", "x"), 1);
    struct js_stream_info *kept = NULL;
    js_msg *kept_msg = NULL;
    CHECK_RC(js_stream_info(s, &kept), 0);
    CHECK_RC(js_msg_get(s, 1, &kept_msg), 0);
    CHECK_RC(js_close(S), 0);
    S = NULL;
    /* What the library returned lives on by itself. */
    ck_assert_str_eq(kept->config->name, "STALE");
    ck_assert_str_eq(kept->config->description, "kept by the info");
    ck_assert_str_eq(kept->config->subjects[0], "STALE");
    ck_assert_uint_eq(kept->state->msgs, 1);
    js_stream_info_free(kept);
    size_t len = 0;
    ck_assert_str_eq(js_msg_subject(kept_msg), "STALE");
    ck_assert(memcmp(js_msg_data(kept_msg, &len), "x", 1) == 0);
    js_msg_free(kept_msg);
    struct js_stream_info *inf = NULL;
    js_msg *m = NULL;
    CHECK_RC(js_stream_info(s, &inf), JS_EMISUSE);
    CHECK_RC(js_msg_get(s, 1, &m), JS_EMISUSE);
    CHECK_RC(js_msg_get_last(s, "STALE", &m), JS_EMISUSE);
    CHECK_RC(js_msg_get_next(s, NULL, 1, &m), JS_EMISUSE);
    CHECK_RC(js_msg_delete(s, 1), JS_EMISUSE);
    CHECK_RC(js_msg_erase(s, 1), JS_EMISUSE);
    CHECK_RC(js_stream_purge(s, NULL, NULL), JS_EMISUSE);
    js_stream_release(s);
    /* The store reopens with the message the stale handle could not touch. */
    open_store(JS_SYNC_NONE);
    s = lookup("STALE");
    expect_msg(s, 1, "STALE", "x", T0);
    js_stream_release(s);
}
END_TEST

/* The clock hook is the store's time source: creation times come from it
 * as message times do. */
START_TEST(test_stream_created_time_comes_from_the_clock_hook) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "CLOCK";
    tu_clock_set(&fake_now, T0 + 123 * SEC);
    open_store(JS_SYNC_NONE);
    js_stream *s = add(&c);
    tu_clock_set(&fake_now, T0 + 200 * SEC);
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(s, &inf), 0);
    ck_assert_int_eq(inf->created, T0 + 123 * SEC);
    js_stream_info_free(inf);
    js_stream_release(s);
    reopen(JS_SYNC_NONE);
    s = lookup("CLOCK");
    CHECK_RC(js_stream_info(s, &inf), 0);
    ck_assert_int_eq(inf->created, T0 + 123 * SEC);
    js_stream_info_free(inf);
    js_stream_release(s);
}
END_TEST

START_TEST(test_stream_names_are_sorted) {
    const char *order[] = {"zeta", "alpha", "Mid", "beta", "alpha2", "_x"};
    const char *want[] = {"Mid", "_x", "alpha", "alpha2", "beta", "zeta"};
    char **names = NULL;
    size_t n = 99;
    open_store(JS_SYNC_NONE);
    CHECK_RC(js_stream_names(S, &names, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_nonnull(names);
    ck_assert_ptr_null(names[0]);
    js_names_free(names);
    for (size_t i = 0; i < 6; i++) {
        js_stream_config c = JS_STREAM_CONFIG_INIT;
        c.name = order[i];
        CHECK_RC(js_stream_add(S, &c, NULL), 0);
    }
    for (int round = 0; round < 2; round++) {
        CHECK_RC(js_stream_names(S, &names, &n), 0);
        ck_assert_uint_eq(n, 6);
        for (size_t i = 0; i < 6; i++)
            ck_assert_str_eq(names[i], want[i]);
        ck_assert_ptr_null(names[6]);
        js_names_free(names);
        reopen(JS_SYNC_NONE);
    }
    /* count may be NULL */
    CHECK_RC(js_stream_names(S, &names, NULL), 0);
    ck_assert_str_eq(names[0], "Mid");
    js_names_free(names);
}
END_TEST

START_TEST(test_lookup_and_delete_of_missing_stream_is_not_found) {
    js_stream *s = NULL;
    open_store(JS_SYNC_NONE);
    CHECK_RC(js_stream_lookup(S, "NOPE", &s), JS_ESTREAM_NOT_FOUND);
    ck_assert_int_eq(js_errcode_nats(), 10059);
    CHECK_RC(js_stream_delete(S, "NOPE"), JS_ESTREAM_NOT_FOUND);
    ck_assert_int_eq(js_errcode_nats(), 10059);
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "NOPE";
    CHECK_RC(js_stream_update(S, &c), JS_ESTREAM_NOT_FOUND);
    /* A name differing only in case is another name. */
    c.name = "nope";
    CHECK_RC(js_stream_add(S, &c, NULL), 0);
    CHECK_RC(js_stream_lookup(S, "NOPE", &s), JS_ESTREAM_NOT_FOUND);
}
END_TEST

START_TEST(test_delete_then_readd_same_name_starts_empty) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "AGAIN";
    open_store(JS_SYNC_NONE);
    js_stream *s = add(&c);
    for (int i = 0; i < 5; i++)
        pub("AGAIN", "old");
    js_stream_release(s);
    CHECK_RC(js_stream_delete(S, "AGAIN"), 0);
    js_stream *gone = NULL;
    CHECK_RC(js_stream_lookup(S, "AGAIN", &gone), JS_ESTREAM_NOT_FOUND);
    CHECK_RC(js_publish(S, "AGAIN", NULL, 0, "x", 1, NULL), JS_ENO_STREAM);

    s = add(&c);
    js_stream_state st = state_of(s);
    ck_assert_uint_eq(st.msgs, 0);
    ck_assert_uint_eq(st.last_seq, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(pub("AGAIN", "new"), 1);
    js_stream_release(s);
    reopen(JS_SYNC_NONE);
    s = lookup("AGAIN");
    st = state_of(s);
    ck_assert_uint_eq(st.msgs, 1);
    ck_assert_uint_eq(st.first_seq, 1);
    ck_assert_uint_eq(st.last_seq, 1);
    expect_msg(s, 1, "AGAIN", "new", 0);
    js_stream_release(s);
}
END_TEST

START_TEST(test_deleted_stream_handles_report_stream_not_found) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "DOOMED";
    open_store(JS_SYNC_NONE);
    js_stream *s = add(&c), *s2 = lookup("DOOMED");
    js_pub_ack ack = JS_PUB_ACK_INIT;
    CHECK_RC(js_publish(S, "DOOMED", NULL, 0, "x", 1, &ack), 0);
    CHECK_RC(js_stream_delete(S, "DOOMED"), 0);
    /* The ack's stream name is borrowed until js_close, not until delete. */
    ck_assert_str_eq(ack.stream, "DOOMED");
    struct js_stream_info *inf = NULL;
    js_msg *m = NULL;
    CHECK_RC(js_stream_info(s, &inf), JS_ESTREAM_NOT_FOUND);
    ck_assert_int_eq(js_errcode_nats(), 10059);
    CHECK_RC(js_stream_info(s2, &inf), JS_ESTREAM_NOT_FOUND);
    CHECK_RC(js_msg_get(s, 1, &m), JS_ESTREAM_NOT_FOUND);
    CHECK_RC(js_msg_get_last(s, "DOOMED", &m), JS_ESTREAM_NOT_FOUND);
    CHECK_RC(js_msg_delete(s, 1), JS_ESTREAM_NOT_FOUND);
    CHECK_RC(js_stream_purge(s, NULL, NULL), JS_ESTREAM_NOT_FOUND);
    CHECK_RC(js_stream_delete(S, "DOOMED"), JS_ESTREAM_NOT_FOUND);
    /* A new stream of that name is not reachable through old handles. */
    js_stream *fresh = add(&c);
    CHECK_RC(js_stream_info(s, &inf), JS_ESTREAM_NOT_FOUND);
    js_stream_release(fresh);
    js_stream_release(s);
    js_stream_release(s2);
}
END_TEST

START_TEST(test_delete_removes_stream_files_and_survives_reopen) {
    js_stream_config a = JS_STREAM_CONFIG_INIT, b = JS_STREAM_CONFIG_INIT;
    char dir[600];
    a.name = "KEEP";
    b.name = "DROP";
    open_store(JS_SYNC_NONE);
    CHECK_RC(js_stream_add(S, &a, NULL), 0);
    CHECK_RC(js_stream_add(S, &b, NULL), 0);
    pub("KEEP", "k");
    pub("DROP", "d");
    CHECK_RC(js_flush(S), 0);
    snprintf(dir, sizeof dir, "%s/streams", store_path);
    ck_assert_int_eq(dir_entries(dir), 2);
    CHECK_RC(js_stream_delete(S, "DROP"), 0);
    ck_assert_int_eq(dir_entries(dir), 1);
    reopen(JS_SYNC_NONE);
    ck_assert_int_eq(dir_entries(dir), 1);
    char **names = NULL;
    size_t n = 0;
    CHECK_RC(js_stream_names(S, &names, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(names[0], "KEEP");
    js_names_free(names);
    js_stream *s = lookup("KEEP");
    expect_msg(s, 1, "KEEP", "k", 0);
    js_stream_release(s);
}
END_TEST

/* ---- concurrency -------------------------------------------------------- */

/* Under JS_SYNC_ALWAYS every publish waits for an fsync (shared by the
 * publishers that commit together): that run takes seconds on a plain
 * disk, so lower its count here if it gets in the way. */
enum { NPUB = 4, MAX_PER_PUB = 5000, NREAD = 2 };

typedef struct pub_arg {
    int id;
    int count;   /* messages to publish */
    int rc;      /* first failure */
    int bad_ack; /* acks out of order for this thread */
} pub_arg;

typedef struct read_arg {
    js_stream *s;
    int *stop;
    int rc;      /* first unexpected result */
    uint64_t bad_seq;
    unsigned long reads;
} read_arg;

static void *publisher(void *p) {
    pub_arg *a = p;
    char subj[16], data[32];
    uint64_t prev = 0;
    snprintf(subj, sizeof subj, "conc.%d", a->id);
    for (int i = 0; i < a->count; i++) {
        js_pub_ack ack = JS_PUB_ACK_INIT;
        int n = snprintf(data, sizeof data, "%d:%d", a->id, i);
        int rc = js_publish(S, subj, NULL, 0, data, (size_t)n, &ack);
        if (rc) {
            a->rc = rc;
            return NULL;
        }
        if (ack.seq <= prev || ack.duplicate)
            a->bad_ack++;
        prev = ack.seq;
    }
    return NULL;
}

/* Reads random sequences at or below the current last one: each must be
 * there, whole, with a subject and payload of the same publisher. */
static void *reader(void *p) {
    read_arg *a = p;
    unsigned seed = (unsigned)(uintptr_t)a;
    while (!__atomic_load_n(a->stop, __ATOMIC_SEQ_CST)) {
        struct js_stream_info *inf = NULL;
        int rc = js_stream_info(a->s, &inf);
        if (rc) {
            a->rc = rc;
            return NULL;
        }
        uint64_t last = inf->state->last_seq;
        js_stream_info_free(inf);
        if (last == 0)
            continue;
        uint64_t seq = 1 + (uint64_t)rand_r(&seed) % last;
        js_msg *m = NULL;
        rc = js_msg_get(a->s, seq, &m);
        if (rc) {
            a->rc = rc;
            a->bad_seq = seq;
            return NULL;
        }
        size_t len = 0;
        const char *d = js_msg_data(m, &len);
        int id = -1, k = -1;
        char buf[32];
        if (len < sizeof buf) {
            memcpy(buf, d, len);
            buf[len] = 0;
            sscanf(buf, "%d:%d", &id, &k);
        }
        char want[16];
        snprintf(want, sizeof want, "conc.%d", id);
        if (js_msg_seq(m) != seq || id < 0 || k < 0 ||
            strcmp(js_msg_subject(m), want) != 0) {
            a->rc = -1000;
            a->bad_seq = seq;
        }
        js_msg_free(m);
        if (a->rc)
            return NULL;
        a->reads++;
    }
    return NULL;
}

/* Every sequence 1..NPUB*per_pub exactly once, and each publisher's
 * messages in its own order. */
static void verify_concurrent_result(js_stream *s, int per_pub) {
    static unsigned char seen[NPUB][MAX_PER_PUB];
    uint64_t total = (uint64_t)NPUB * (uint64_t)per_pub;
    int next[NPUB] = {0};
    memset(seen, 0, sizeof seen);
    js_stream_state st = state_of(s);
    ck_assert_uint_eq(st.msgs, total);
    ck_assert_uint_eq(st.first_seq, 1);
    ck_assert_uint_eq(st.last_seq, total);
    ck_assert_uint_eq(st.num_deleted, 0);
    ck_assert_uint_eq(st.num_subjects, NPUB);
    for (uint64_t seq = 1; seq <= total; seq++) {
        js_msg *m = NULL;
        CHECK_RC(js_msg_get(s, seq, &m), 0);
        size_t len = 0;
        const char *d = js_msg_data(m, &len);
        char buf[32];
        int id = -1, k = -1;
        ck_assert_uint_lt(len, sizeof buf);
        memcpy(buf, d, len);
        buf[len] = 0;
        ck_assert_int_eq(sscanf(buf, "%d:%d", &id, &k), 2);
        ck_assert(id >= 0 && id < NPUB && k >= 0 && k < per_pub);
        ck_assert_msg(!seen[id][k], "%s stored twice", buf);
        seen[id][k] = 1;
        ck_assert_msg(k == next[id], "seq %" PRIu64 ": %s out of order", seq,
                      buf);
        next[id]++;
        char want[16];
        snprintf(want, sizeof want, "conc.%d", id);
        ck_assert_str_eq(js_msg_subject(m), want);
        js_msg_free(m);
    }
    for (int i = 0; i < NPUB; i++)
        ck_assert_int_eq(next[i], per_pub);
}

static void run_concurrent(int sync, int per_pub) {
    static const char *const subjects[] = {"conc.*"};
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "CONC";
    c.subjects = subjects;
    c.num_subjects = 1;
    open_store(sync);
    js_stream *s = add(&c);
    pthread_t pt[NPUB], rt[NREAD];
    pub_arg pa[NPUB];
    read_arg ra[NREAD];
    int stop = 0;
    for (int i = 0; i < NREAD; i++) {
        ra[i] = (read_arg){s, &stop, 0, 0, 0};
        ck_assert_int_eq(pthread_create(&rt[i], NULL, reader, &ra[i]), 0);
    }
    for (int i = 0; i < NPUB; i++) {
        pa[i] = (pub_arg){i, per_pub, 0, 0};
        ck_assert_int_eq(pthread_create(&pt[i], NULL, publisher, &pa[i]), 0);
    }
    for (int i = 0; i < NPUB; i++)
        ck_assert_int_eq(pthread_join(pt[i], NULL), 0);
    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < NREAD; i++)
        ck_assert_int_eq(pthread_join(rt[i], NULL), 0);
    for (int i = 0; i < NPUB; i++) {
        ck_assert_msg(pa[i].rc == 0, "publisher %d: %s", i,
                      js_strerror(pa[i].rc));
        ck_assert_int_eq(pa[i].bad_ack, 0);
    }
    for (int i = 0; i < NREAD; i++)
        ck_assert_msg(ra[i].rc == 0, "reader %d: rc %d at seq %" PRIu64, i,
                      ra[i].rc, ra[i].bad_seq);
    verify_concurrent_result(s, per_pub);
    js_stream_release(s);
    reopen(sync);
    s = lookup("CONC");
    verify_concurrent_result(s, per_pub);
    js_stream_release(s);
}

START_TEST(test_concurrent_publishers_and_readers_sync_always) {
    run_concurrent(JS_SYNC_ALWAYS, MAX_PER_PUB);
}
END_TEST

START_TEST(test_concurrent_publishers_and_readers_sync_none) {
    run_concurrent(JS_SYNC_NONE, MAX_PER_PUB);
}
END_TEST

static Suite *store_suite(void) {
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_reopen_restores_every_stream_config_and_message);
    tcase_add_test(tc, test_reopen_on_mem_vfs_within_process_sees_data);
    tcase_add_test(tc, test_memory_storage_stream_keeps_config_but_not_messages);
    tcase_add_test(tc, test_second_open_of_same_store_is_locked_until_close);
    tcase_add_test(tc, test_no_create_on_missing_directory_is_enotfound);
    tcase_add_test(tc, test_no_create_on_existing_empty_directory_is_enotfound);
    tcase_add_test(tc, test_open_rejects_bad_arguments_with_einval);
    tcase_add_test(tc, test_api_rejects_null_and_unknown_struct_versions_with_einval);
    tcase_add_test(tc, test_free_and_close_functions_accept_null);
    tcase_add_test(tc, test_stream_handles_are_stale_after_close);
    tcase_add_test(tc, test_stream_created_time_comes_from_the_clock_hook);
    tcase_add_test(tc, test_stream_names_are_sorted);
    tcase_add_test(tc, test_lookup_and_delete_of_missing_stream_is_not_found);
    tcase_add_test(tc, test_delete_then_readd_same_name_starts_empty);
    tcase_add_test(tc, test_deleted_stream_handles_report_stream_not_found);
    tcase_add_test(tc, test_delete_removes_stream_files_and_survives_reopen);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_concurrent_publishers_and_readers_sync_always);
    tcase_add_test(tc, test_concurrent_publishers_and_readers_sync_none);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    base_dir = tu_mkdtemp("test_store");
    int failed = tu_run_suite(store_suite());
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed != 0;
}
