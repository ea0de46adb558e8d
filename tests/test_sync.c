/*
 * test_sync.c - the durability contract of each sync policy, checked with a
 * backend that wraps "posix" and records, per file, the bytes written since
 * its last sync, and the files created since their directory's last sync.
 * "Durable" below means: nothing written or created is still unsynced.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jetstream.h"
#include "testutil.h"

/* ---- the counting backend ------------------------------------------------ */

typedef struct cfile {
    js_vfs_file base;
    js_vfs_file *inner;
    int blk; /* a block file (*.blk) */
} cfile;

static js_vfs *posix;
static js_vfs countfs;
static js_vfs_io count_io;
static pthread_mutex_t cmu = PTHREAD_MUTEX_INITIALIZER;
static long dirty_bytes;  /* written to block files, not yet synced */
static long unsynced_new; /* files created, directory not yet synced */
static long syncs, writes;

static int is_blk(const char *path) {
    size_t n = strlen(path);
    return n > 4 && strcmp(path + n - 4, ".blk") == 0;
}

static int c_close(js_vfs_file *f) {
    cfile *c = (cfile *)f;
    int rc = c->inner->io->close(c->inner);
    free(c->inner);
    return rc;
}

static int c_read(js_vfs_file *f, void *b, size_t n, uint64_t off, size_t *got) {
    cfile *c = (cfile *)f;
    return c->inner->io->read(c->inner, b, n, off, got);
}

static int c_write(js_vfs_file *f, const void *b, size_t n, uint64_t off) {
    cfile *c = (cfile *)f;
    int rc = c->inner->io->write(c->inner, b, n, off);
    pthread_mutex_lock(&cmu);
    writes++;
    if (rc == 0 && c->blk)
        dirty_bytes += (long)n;
    pthread_mutex_unlock(&cmu);
    return rc;
}

static int c_truncate(js_vfs_file *f, uint64_t size) {
    cfile *c = (cfile *)f;
    return c->inner->io->truncate(c->inner, size);
}

/* A sync makes everything this test has seen written durable. The library
 * syncs each file it wrote; one file of dirty data at a time in practice,
 * so a global counter is exact enough for "nothing left unsynced". */
static int c_sync(js_vfs_file *f) {
    cfile *c = (cfile *)f;
    int rc = c->inner->io->sync(c->inner);
    pthread_mutex_lock(&cmu);
    syncs++;
    if (rc == 0 && c->blk)
        dirty_bytes = 0;
    pthread_mutex_unlock(&cmu);
    return rc;
}

static int c_size(js_vfs_file *f, uint64_t *size) {
    cfile *c = (cfile *)f;
    return c->inner->io->size(c->inner, size);
}

static int c_control(js_vfs_file *f, int op, void *arg) {
    cfile *c = (cfile *)f;
    return c->inner->io->control(c->inner, op, arg);
}

static int c_open(js_vfs *v, const char *path, int flags, js_vfs_file *f) {
    (void)v;
    cfile *c = (cfile *)f;
    int existed = access(path, F_OK) == 0;
    c->inner = calloc(1, posix->file_size);
    if (!c->inner)
        return JS_ENOMEM;
    int rc = posix->open(posix, path, flags, c->inner);
    if (rc) {
        free(c->inner);
        return rc;
    }
    c->base.io = &count_io;
    c->blk = is_blk(path);
    if (!existed && (flags & JS_VFS_CREATE) && c->blk) {
        pthread_mutex_lock(&cmu);
        unsynced_new++;
        pthread_mutex_unlock(&cmu);
    }
    return 0;
}

static int c_remove(js_vfs *v, const char *p) { (void)v; return posix->remove(posix, p); }
static int c_rename(js_vfs *v, const char *a, const char *b) { (void)v; return posix->rename(posix, a, b); }
static int c_mkdir(js_vfs *v, const char *p) { (void)v; return posix->mkdir(posix, p); }
static int c_rmdir(js_vfs *v, const char *p) { (void)v; return posix->rmdir(posix, p); }
static int c_list(js_vfs *v, const char *d, int (*cb)(void *, const char *), void *x) {
    (void)v;
    return posix->list(posix, d, cb, x);
}
static int c_sync_dir(js_vfs *v, const char *d) {
    (void)v;
    int rc = posix->sync_dir(posix, d);
    pthread_mutex_lock(&cmu);
    if (rc == 0)
        unsynced_new = 0;
    pthread_mutex_unlock(&cmu);
    return rc;
}
static int c_lock(js_vfs *v, const char *p, void **t) { (void)v; return posix->lock(posix, p, t); }
static int c_unlock(js_vfs *v, void *t) { (void)v; return posix->unlock(posix, t); }

static void countfs_register(void) {
    posix = js_vfs_find("posix");
    count_io = (js_vfs_io){JS_VFS_IO_VERSION, c_close, c_read, c_write,
                           c_truncate, c_sync, c_size, c_control};
    countfs = (js_vfs){JS_VFS_VERSION, sizeof(cfile), "countfs", NULL,
                       c_open, c_remove, c_rename, c_mkdir, c_rmdir, c_list,
                       c_sync_dir, c_lock, c_unlock};
    ck_assert_int_eq(js_vfs_register(&countfs, 0), 0);
}

static void counters(long *dirty, long *newf, long *nsync) {
    pthread_mutex_lock(&cmu);
    *dirty = dirty_bytes;
    *newf = unsynced_new;
    *nsync = syncs;
    pthread_mutex_unlock(&cmu);
}

/* ---- fixture -------------------------------------------------------------- */

static char *base;
static int store_no; /* stores made so far: each gets base/s<n> */
static js_store *S;
static js_stream *T;

static void open_store(int policy, int64_t interval, uint32_t block_size) {
    static int registered;
    char dir[512];
    if (!registered) {
        countfs_register();
        registered = 1;
    }
    snprintf(dir, sizeof dir, "%s/s%d", base, store_no++);
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.vfs = "countfs";
    o.sync = policy;
    o.sync_interval = interval;
    o.block_size = block_size;
    ck_assert_int_eq(js_open(dir, &o, &S), 0);
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    const char *subs[] = {"t.>"};
    c.name = "T";
    c.subjects = subs;
    c.num_subjects = 1;
    ck_assert_int_eq(js_stream_add(S, &c, &T), 0);
}

static void close_store(void) {
    js_stream_release(T);
    ck_assert_int_eq(js_close(S), 0);
    S = NULL;
    T = NULL;
}

static void pub(const char *subj) {
    ck_assert_int_eq(js_publish(S, subj, NULL, 0, "payload", 7, NULL), 0);
}

/* ---- tests ---------------------------------------------------------------- */

START_TEST(always_every_publish_is_durable_when_it_returns) {
    long dirty, newf, n;
    /* Small blocks: publishes also create new block files. */
    open_store(JS_SYNC_ALWAYS, 0, 4096);
    for (int i = 0; i < 300; i++) {
        pub("t.a");
        counters(&dirty, &newf, &n);
        ck_assert_msg(dirty == 0, "publish %d returned with %ld bytes unsynced",
                      i, dirty);
        ck_assert_msg(newf == 0, "publish %d returned with a new block file "
                      "whose directory entry is not synced", i);
    }
    close_store();
}
END_TEST

START_TEST(always_deletes_and_purges_are_durable_when_they_return) {
    long dirty, newf, n;
    open_store(JS_SYNC_ALWAYS, 0, 4096);
    for (int i = 0; i < 200; i++)
        pub(i % 2 ? "t.a" : "t.b");
    ck_assert_int_eq(js_msg_delete(T, 50), 0);
    counters(&dirty, &newf, &n);
    ck_assert_int_eq(dirty, 0);
    ck_assert_int_eq(js_msg_erase(T, 60), 0);
    counters(&dirty, &newf, &n);
    ck_assert_int_eq(dirty, 0);
    js_purge_opts po = JS_PURGE_OPTS_INIT;
    po.filter = "t.a";
    ck_assert_int_eq(js_stream_purge(T, &po, NULL), 0);
    counters(&dirty, &newf, &n);
    ck_assert_int_eq(dirty, 0);
    ck_assert_int_eq(js_stream_purge(T, NULL, NULL), 0);
    counters(&dirty, &newf, &n);
    ck_assert_int_eq(dirty, 0);
    close_store();
}
END_TEST

START_TEST(always_batch_is_one_sync) {
    long dirty, newf, before, after;
    open_store(JS_SYNC_ALWAYS, 0, 0);
    js_pub_msg m[500];
    for (int i = 0; i < 500; i++)
        m[i] = (js_pub_msg){"t.batch", NULL, 0, "x", 1};
    counters(&dirty, &newf, &before);
    size_t done = 0;
    ck_assert_int_eq(js_publish_batch(S, m, 500, NULL, &done), 0);
    ck_assert_uint_eq(done, 500);
    counters(&dirty, &newf, &after);
    ck_assert_int_eq(dirty, 0);
    ck_assert_msg(after - before <= 2, "a 500-message batch took %ld syncs",
                  after - before);
    close_store();
}
END_TEST

typedef struct pubarg {
    int n;
    int rc;
} pubarg;

static void *pub_thread(void *p) {
    pubarg *a = p;
    for (int i = 0; i < a->n && a->rc == 0; i++)
        a->rc = js_publish(S, "t.thr", NULL, 0, "x", 1, NULL);
    return NULL;
}

START_TEST(always_concurrent_publishers_share_syncs) {
    long dirty, newf, before, after;
    enum { NT = 8, PER = 100 };
    open_store(JS_SYNC_ALWAYS, 0, 0);
    pthread_t th[NT];
    pubarg a[NT];
    counters(&dirty, &newf, &before);
    for (int i = 0; i < NT; i++) {
        a[i] = (pubarg){PER, 0};
        pthread_create(&th[i], NULL, pub_thread, &a[i]);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(a[i].rc, 0);
    }
    counters(&dirty, &newf, &after);
    ck_assert_int_eq(dirty, 0);
    /* Every publish returned durable, yet they shared fsyncs: with 8
     * threads waiting on each sync, far fewer syncs than publishes. */
    printf("group commit: %d durable publishes from %d threads, %ld syncs\n",
           NT * PER, NT, after - before);
    ck_assert_msg(after - before < NT * PER,
                  "%ld syncs for %d publishes: no group commit",
                  after - before, NT * PER);
    close_store();
}
END_TEST

START_TEST(none_writes_but_never_syncs_until_flush) {
    long dirty, newf, before, after;
    open_store(JS_SYNC_NONE, 0, 0);
    counters(&dirty, &newf, &before);
    for (int i = 0; i < 100; i++)
        pub("t.n");
    counters(&dirty, &newf, &after);
    ck_assert_int_eq(after, before);
    ck_assert_int_gt(dirty, 0); /* handed to the OS: written, not synced */
    ck_assert_int_eq(js_flush(S), 0);
    counters(&dirty, &newf, &after);
    ck_assert_int_eq(dirty, 0);
    ck_assert_int_eq(newf, 0);
    close_store();
}
END_TEST

START_TEST(interval_syncs_only_after_the_interval) {
    long dirty, newf, n0, n1;
    /* 2 s: the 20 publishes below fit in it even on a loaded machine. */
    open_store(JS_SYNC_INTERVAL, 2000 * 1000000LL, 0);
    pub("t.i"); /* the first call may sync: the interval starts at open */
    usleep(1000);
    counters(&dirty, &newf, &n0);
    for (int i = 0; i < 20; i++)
        pub("t.i");
    counters(&dirty, &newf, &n1);
    ck_assert_int_eq(n1, n0);   /* inside the interval: no sync */
    ck_assert_int_gt(dirty, 0); /* but written */
    usleep(2100 * 1000);
    pub("t.i"); /* the first call after the interval syncs */
    counters(&dirty, &newf, &n1);
    ck_assert_int_gt(n1, n0);
    ck_assert_int_eq(dirty, 0);
    close_store();
}
END_TEST

START_TEST(close_makes_everything_durable_under_every_policy) {
    long dirty, newf, n;
    int policies[] = {JS_SYNC_NONE, JS_SYNC_INTERVAL, JS_SYNC_ALWAYS};
    for (int p = 0; p < 3; p++) {
        open_store(policies[p], 3600LL * 1000000000LL, 4096);
        for (int i = 0; i < 100; i++)
            pub("t.c");
        close_store();
        counters(&dirty, &newf, &n);
        ck_assert_msg(dirty == 0 && newf == 0,
                      "policy %d: unsynced data after js_close", policies[p]);
    }
}
END_TEST

START_TEST(per_stream_policy_overrides_the_store) {
    long dirty, newf, n;
    open_store(JS_SYNC_NONE, 0, 0);
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    const char *subs[] = {"d.>"};
    c.name = "D";
    c.subjects = subs;
    c.num_subjects = 1;
    c.sync = JS_SYNC_ALWAYS;
    ck_assert_int_eq(js_stream_add(S, &c, NULL), 0);
    pub("t.lazy"); /* store policy NONE: left unsynced */
    counters(&dirty, &newf, &n);
    ck_assert_int_gt(dirty, 0);
    ck_assert_int_eq(js_publish(S, "d.x", NULL, 0, "y", 1, NULL), 0);
    /* Stream D syncs its own block; T's data may still be dirty, so check
     * D's durability by flushing T first and publishing to D again. */
    ck_assert_int_eq(js_flush(S), 0);
    ck_assert_int_eq(js_publish(S, "d.x", NULL, 0, "y", 1, NULL), 0);
    counters(&dirty, &newf, &n);
    ck_assert_int_eq(dirty, 0);
    close_store();
}
END_TEST

/* A checkpoint is written while the store is open, every 64 MiB of
 * records, so a store that is never closed still reopens without a full
 * replay. */
START_TEST(checkpoint_is_written_every_64_mib_without_close) {
    static char big[65536];
    char path[600];
    open_store(JS_SYNC_NONE, 0, 0);
    snprintf(path, sizeof path, "%s/s%d/streams/0000000000000001/index", base,
             store_no - 1);
    ck_assert_int_ne(access(path, F_OK), 0); /* none before */
    js_pub_msg m[64];
    for (int i = 0; i < 64; i++)
        m[i] = (js_pub_msg){"t.big", NULL, 0, big, sizeof big};
    for (int r = 0; r < 17; r++) /* 17 x 64 x 64 KiB = 68 MiB */
        ck_assert_int_eq(js_publish_batch(S, m, 64, NULL, NULL), 0);
    ck_assert_msg(access(path, F_OK) == 0,
                  "no checkpoint after 68 MiB of publishes");
    close_store();
}
END_TEST

/* A backend whose files come with an incomplete method table. */
static js_vfs_io broken_io;
static int b_open(js_vfs *v, const char *path, int flags, js_vfs_file *f) {
    int rc = c_open(v, path, flags, f);
    if (rc == 0) {
        /* Keep the real file closable by the test, hand out a table
         * without sync. */
        cfile *c = (cfile *)f;
        c->inner->io->close(c->inner);
        free(c->inner);
        broken_io = count_io;
        broken_io.sync = NULL;
        f->io = &broken_io;
    }
    return rc;
}

START_TEST(incomplete_io_table_is_refused_not_called) {
    static js_vfs broken;
    open_store(JS_SYNC_NONE, 0, 0); /* registers countfs */
    close_store();
    broken = countfs;
    broken.name = "broken";
    broken.open = b_open;
    ck_assert_int_eq(js_vfs_register(&broken, 0), 0);
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.vfs = "broken";
    char dir[512];
    snprintf(dir, sizeof dir, "%s/broken", base);
    js_store *st = NULL;
    int rc = js_open(dir, &o, &st);
    ck_assert_int_eq(rc, JS_EINVAL);
    ck_assert_ptr_null(st);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "incomplete io table"));
    ck_assert_int_eq(js_vfs_unregister(&broken), 0);
}
END_TEST

static Suite *sync_suite(void) {
    Suite *s = suite_create("sync");
    TCase *t = tcase_create("policies");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, always_every_publish_is_durable_when_it_returns);
    tcase_add_test(t, always_deletes_and_purges_are_durable_when_they_return);
    tcase_add_test(t, always_batch_is_one_sync);
    tcase_add_test(t, always_concurrent_publishers_share_syncs);
    tcase_add_test(t, none_writes_but_never_syncs_until_flush);
    tcase_add_test(t, interval_syncs_only_after_the_interval);
    tcase_add_test(t, close_makes_everything_durable_under_every_policy);
    tcase_add_test(t, per_stream_policy_overrides_the_store);
    tcase_add_test(t, incomplete_io_table_is_refused_not_called);
    tcase_add_test(t, checkpoint_is_written_every_64_mib_without_close);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    base = tu_mkdtemp("test_sync");
    SRunner *sr = srunner_create(sync_suite());
    /* The counters are process-wide: run the tests in this process, one
     * after another, registering the backend once. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tu_rm_rf(base);
    free(base);
    return failed == 0 ? 0 : 1;
}
