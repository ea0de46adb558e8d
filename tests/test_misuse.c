/*
 * test_misuse.c - API misuse (issue 5): every public function given NULL
 * handles and pointers, handles of the wrong kind, handles whose object
 * was deleted or whose store was closed, oversized or malformed subjects,
 * headers, payloads, names and keys, negative or absurd limits, unknown
 * enum values and struct versions. Each refusal must carry the documented
 * code, a detail message naming what was wrong, and leave the store's
 * files exactly as they were: every rejected call runs between two
 * snapshots of the store directory (path, type, size, inode, mtime and a
 * hash of the bytes of every file) that must be equal.
 *
 * Functions covered (all of include/jetstream.h):
 *   library   js_version js_strerror js_errmsg js_errcode_nats
 *   vfs       js_vfs_register js_vfs_unregister js_vfs_find
 *   store     js_open js_close js_flush
 *   streams   js_stream_add js_stream_update js_stream_lookup
 *             js_stream_release js_stream_info js_stream_info_free
 *             js_stream_names js_names_free js_stream_delete
 *             js_stream_purge
 *   publish   js_publish js_publish_batch
 *   messages  js_msg_get js_msg_get_last js_msg_get_next js_msg_delete
 *             js_msg_erase js_msg_free js_msg_subject js_msg_seq
 *             js_msg_time js_msg_data js_msg_headers js_msg_header
 *             js_msg_metadata
 *   consumers js_consumer_add js_consumer_update js_consumer_lookup
 *             js_consumer_release js_consumer_delete js_consumer_names
 *             js_consumer_info js_consumer_info_free js_consumer_next
 *             js_consumer_fetch js_consumer_subscribe js_sub_unsubscribe
 *             js_dispatch js_dispatcher_start js_dispatcher_stop
 *             js_msg_ack js_msg_ack_sync js_msg_nak js_msg_in_progress
 *             js_msg_term js_events_set
 *   kv        js_kv_create js_kv_open js_kv_update js_kv_delete
 *             js_kv_release js_kv_status js_kv_status_free js_kv_put
 *             js_kv_create_key js_kv_update_key js_kv_delete_key
 *             js_kv_purge_key js_kv_get js_kv_entry_free js_kv_keys
 *             js_kv_keys_next js_kv_keys_free js_kv_history
 *             js_kv_history_free js_kv_purge_deletes js_kv_watch
 *             js_kv_watch_subscribe js_kv_watcher_next js_kv_watcher_stop
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jetstream.h"
#include "check_rc.h"
#include "testutil.h"
#include "runner.h"

#define SEC ((int64_t)1000000000)
#define MS ((int64_t)1000000)
#define T0 ((int64_t)1700000000 * SEC)

static char *base_dir;
static char store_path[512];
static int64_t fake_now;
static js_store *S;

/* ---- snapshots of a directory tree -------------------------------------- */

/* One file or directory: enough to see any write, truncate, create,
 * remove or atomic replacement (a rename changes the inode). */
typedef struct snap_ent {
    char *path;
    int dir;
    int64_t size;
    uint64_t ino;
    int64_t mtime_ns;
    uint64_t hash;
} snap_ent;

typedef struct snap {
    snap_ent *v;
    size_t n, cap;
} snap;

/* FNV-1a, 64 bits: a cheap fingerprint of a file's bytes. */
static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static uint64_t hash_file(const char *path) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    unsigned char buf[65536];
    ssize_t r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "snapshot: cannot open %s", path);
    while ((r = read(fd, buf, sizeof buf)) > 0)
        h = fnv1a(h, buf, (size_t)r);
    close(fd);
    return h;
}

static void snap_add(snap *s, const char *path, const struct stat *st) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 32;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        ck_assert_ptr_nonnull(s->v);
    }
    snap_ent *e = &s->v[s->n++];
    e->path = strdup(path);
    e->dir = S_ISDIR(st->st_mode);
    e->size = e->dir ? 0 : (int64_t)st->st_size;
    e->ino = (uint64_t)st->st_ino;
    e->mtime_ns = e->dir ? 0 : (int64_t)st->st_mtim.tv_sec * SEC +
                                   st->st_mtim.tv_nsec;
    e->hash = e->dir ? 0 : hash_file(path);
}

static void snap_walk(snap *s, const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return; /* an absent root is an empty snapshot */
    snap_add(s, path, &st);
    if (!S_ISDIR(st.st_mode))
        return;
    DIR *d = opendir(path);
    ck_assert_msg(d != NULL, "snapshot: cannot list %s", path);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        snap_walk(s, sub);
    }
    closedir(d);
}

static int ent_cmp(const void *a, const void *b) {
    return strcmp(((const snap_ent *)a)->path, ((const snap_ent *)b)->path);
}

static void snap_take(snap *s, const char *root) {
    memset(s, 0, sizeof *s);
    snap_walk(s, root);
    qsort(s->v, s->n, sizeof *s->v, ent_cmp);
}

static void snap_free(snap *s) {
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].path);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* The first difference between two snapshots, or NULL. */
static const char *snap_diff(const snap *a, const snap *b, char *why,
                             size_t len) {
    size_t i = 0;
    for (; i < a->n && i < b->n; i++) {
        const snap_ent *x = &a->v[i], *y = &b->v[i];
        if (strcmp(x->path, y->path) != 0) {
            snprintf(why, len, "%s appeared or vanished",
                     strcmp(x->path, y->path) < 0 ? x->path : y->path);
            return why;
        }
        if (x->dir != y->dir || x->size != y->size || x->ino != y->ino ||
            x->mtime_ns != y->mtime_ns || x->hash != y->hash) {
            snprintf(why, len, "%s changed (size %lld -> %lld)", x->path,
                     (long long)x->size, (long long)y->size);
            return why;
        }
    }
    if (i < a->n || i < b->n) {
        snprintf(why, len, "%s %s", i < a->n ? a->v[i].path : b->v[i].path,
                 i < a->n ? "vanished" : "appeared");
        return why;
    }
    return NULL;
}

static void snap_expect_same(const snap *a, const snap *b, const char *call) {
    char why[1200];
    const char *d = snap_diff(a, b, why, sizeof why);
    ck_assert_msg(d == NULL, "%s changed the store on disk: %s", call, d);
}

/* The detail of the last failure is not empty and names `word` (NULL:
 * any non-empty detail). */
static void expect_errmsg(const char *call, const char *word) {
    const char *m = js_errmsg();
    ck_assert_msg(m != NULL && *m, "%s: empty js_errmsg()", call);
    ck_assert_msg(!word || strstr(m, word),
                  "%s: errmsg \"%s\" does not mention \"%s\"", call, m, word);
}

/* A refused call under `root`: the code, the detail, and no change on
 * disk. */
#define REJECT_IN(root, expr, want, word)                                   \
    do {                                                                    \
        snap b_, a_;                                                        \
        snap_take(&b_, (root));                                             \
        CHECK_RC((expr), (want));                                           \
        expect_errmsg(#expr, (word));                                       \
        snap_take(&a_, (root));                                             \
        snap_expect_same(&b_, &a_, #expr);                                  \
        snap_free(&b_);                                                     \
        snap_free(&a_);                                                     \
    } while (0)

#define REJECT(expr, want, word) REJECT_IN(store_path, expr, want, word)

/* An enum field of cfg one below its first value and one above its last
 * (top): call is refused naming the field; the field is left at 0. */
#define BAD_ENUM(cfg, field, top, call)                                     \
    do {                                                                    \
        (cfg).field = -1;                                                   \
        REJECT(call, JS_EINVAL, #field);                                    \
        (cfg).field = (top) + 1;                                            \
        REJECT(call, JS_EINVAL, #field);                                    \
        (cfg).field = 0;                                                    \
    } while (0)

/* ---- fixture -------------------------------------------------------------- */

static void open_store(void) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.sync = JS_SYNC_NONE;
    o.clock = tu_clock;
    o.clock_ctx = &fake_now;
    CHECK_RC(js_open(store_path, &o, &S), 0);
}

static void setup(void) {
    static unsigned n;
    tu_clock_set(&fake_now, T0);
    snprintf(store_path, sizeof store_path, "%s/store-%ld-%u", base_dir,
             (long)getpid(), n++);
    open_store();
}

static void teardown(void) {
    if (S)
        CHECK_RC(js_close(S), 0);
    S = NULL;
}

/* A string of n copies of c (n < 70000), in one of four rotating static
 * buffers. */
static const char *rep(char c, size_t n) {
    static char buf[4][70000];
    static int k;
    char *b = buf[k++ % 4];
    ck_assert_uint_lt(n, sizeof buf[0]);
    memset(b, c, n);
    b[n] = 0;
    return b;
}

static js_stream *add_stream(const char *name, const char *subject) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    const char *subs[1] = {subject};
    js_stream *s;
    c.name = name;
    c.subjects = subs;
    c.num_subjects = 1;
    CHECK_RC(js_stream_add(S, &c, &s), 0);
    return s;
}

static void pub(const char *subject, const char *data) {
    CHECK_RC(js_publish(S, subject, NULL, 0, data, strlen(data), NULL), 0);
}

/* A pull consumer, durable if name is given. */
static js_consumer *add_pull(js_stream *s, const char *durable) {
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    js_consumer *k;
    c.durable_name = durable;
    CHECK_RC(js_consumer_add(s, &c, &k), 0);
    return k;
}

static js_kv *add_kv(const char *bucket) {
    js_kv_config c = JS_KV_CONFIG_INIT;
    js_kv *kv;
    c.bucket = bucket;
    c.history = 5;
    CHECK_RC(js_kv_create(S, &c, &kv), 0);
    return kv;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Everything so far on disk, so a snapshot sees a quiet store. */
static void settle(void) { CHECK_RC(js_flush(S), 0); }

/* ---- library -------------------------------------------------------------- */

START_TEST(test_version_and_strerror_never_fail) {
    ck_assert_str_eq(js_version(), JS_VERSION_STRING);
    static const int odd[] = {1, 12345, -39, -9999, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        ck_assert_ptr_nonnull(js_strerror(odd[i]));
        ck_assert_str_eq(js_strerror(odd[i]), "unknown error");
    }
    /* Every code has its own name. */
    for (int a = JS_EKEY_EXISTS; a <= JS_OK; a++) {
        ck_assert_str_ne(js_strerror(a), "unknown error");
        for (int b = JS_EKEY_EXISTS; b < a; b++)
            ck_assert_str_ne(js_strerror(a), js_strerror(b));
    }
}
END_TEST

START_TEST(test_errmsg_is_reset_by_the_next_call_and_kept_by_strerror) {
    struct js_stream_info *i;
    ck_assert_ptr_nonnull(js_errmsg());
    CHECK_RC(js_stream_info(NULL, &i), JS_EMISUSE);
    ck_assert_str_ne(js_errmsg(), "");
    /* Naming the code must not lose the detail. */
    (void)js_strerror(JS_EMISUSE);
    (void)js_version();
    ck_assert_str_ne(js_errmsg(), "");
    CHECK_RC(js_flush(S), 0);
    ck_assert_str_eq(js_errmsg(), "");
    ck_assert_int_eq(js_errcode_nats(), 0);
}
END_TEST

START_TEST(test_errcode_nats_follows_the_last_failure) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "a.b";
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "name");
    ck_assert_int_eq(js_errcode_nats(), 10052);
    REJECT(js_flush(NULL), JS_EMISUSE, "store");
    ck_assert_int_eq(js_errcode_nats(), 0);
}
END_TEST

/* ---- vfs ------------------------------------------------------------------ */

static int v_open(js_vfs *v, const char *p, int f, js_vfs_file *file) {
    return JS_EIO;
}
static int v_path(js_vfs *v, const char *p) { return JS_EIO; }
static int v_rename(js_vfs *v, const char *a, const char *b) { return JS_EIO; }
static int v_list(js_vfs *v, const char *d, int (*cb)(void *, const char *),
                  void *ctx) {
    return JS_EIO;
}
static int v_lock(js_vfs *v, const char *p, void **t) { return JS_EIO; }
static int v_unlock(js_vfs *v, void *t) { return JS_EIO; }

static js_vfs good_vfs(const char *name) {
    js_vfs v = {JS_VFS_VERSION, sizeof(js_vfs_file), name, NULL, v_open,
                v_path, v_rename, v_path, v_path, v_list, v_path, v_lock,
                v_unlock};
    return v;
}

START_TEST(test_vfs_register_refuses_null_and_bad_tables) {
    static js_vfs bad[8];
    CHECK_RC(js_vfs_register(NULL, 0), JS_EINVAL);
    expect_errmsg("js_vfs_register(NULL)", NULL);
    for (int i = 0; i < 8; i++)
        bad[i] = good_vfs("misuse-bad");
    bad[0].version = 0;
    bad[1].unlock = NULL;
    bad[2].name = NULL;
    bad[3].name = "";
    bad[4].file_size = sizeof(js_vfs_file) - 1;
    bad[5].open = NULL;
    bad[6].lock = NULL;
    bad[7].list = NULL;
    for (int i = 0; i < 8; i++) {
        CHECK_RC(js_vfs_register(&bad[i], 1), JS_EINVAL);
        expect_errmsg("js_vfs_register(bad)", NULL);
        ck_assert_ptr_null(js_vfs_find("misuse-bad"));
    }
    /* The default is untouched by the refusals. */
    ck_assert_str_eq(js_vfs_find(NULL)->name, "posix");
    /* A table from a later header is fine: only the members this library
     * knows are used. */
    bad[0] = good_vfs("misuse-later");
    bad[0].version = JS_VFS_VERSION + 1;
    CHECK_RC(js_vfs_register(&bad[0], 0), 0);
    CHECK_RC(js_vfs_unregister(&bad[0]), 0);
}
END_TEST

START_TEST(test_vfs_unregister_and_find_of_unknown_names) {
    static js_vfs v;
    v = good_vfs("misuse-never");
    CHECK_RC(js_vfs_unregister(NULL), JS_EINVAL);
    expect_errmsg("js_vfs_unregister(NULL)", NULL);
    CHECK_RC(js_vfs_unregister(&v), JS_ENOTFOUND);
    expect_errmsg("js_vfs_unregister(unknown)", NULL);
    ck_assert_ptr_null(js_vfs_find("misuse-never"));
    ck_assert_ptr_null(js_vfs_find(""));
    ck_assert_ptr_null(js_vfs_find(rep('v', 5000)));
    ck_assert_ptr_nonnull(js_vfs_find("mem"));
    /* Registered and removed again: gone, and a second removal fails. */
    CHECK_RC(js_vfs_register(&v, 0), 0);
    ck_assert_ptr_eq(js_vfs_find("misuse-never"), &v);
    CHECK_RC(js_vfs_unregister(&v), 0);
    CHECK_RC(js_vfs_unregister(&v), JS_ENOTFOUND);
    ck_assert_str_eq(js_vfs_find(NULL)->name, "posix");
}
END_TEST

/* ---- store ---------------------------------------------------------------- */

START_TEST(test_open_refuses_null_and_empty_arguments) {
    js_store *st = (js_store *)&st;
    char p[600];
    snprintf(p, sizeof p, "%s/never", base_dir);
    REJECT_IN(base_dir, js_open(NULL, NULL, &st), JS_EINVAL, "path");
    REJECT_IN(base_dir, js_open("", NULL, &st), JS_EINVAL, "path");
    REJECT_IN(base_dir, js_open(p, NULL, NULL), JS_EINVAL, "out");
    ck_assert(!exists(p));
}
END_TEST

START_TEST(test_open_refuses_bad_options_before_touching_disk) {
    char p[600];
    js_store *st = NULL;
    snprintf(p, sizeof p, "%s/never", base_dir);
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.version = 0;
    REJECT_IN(base_dir, js_open(p, &o, &st), JS_EINVAL, "version");
    ck_assert_ptr_null(st);
    o.version = JS_OPEN_OPTS_VERSION + 1;
    REJECT_IN(base_dir, js_open(p, &o, &st), JS_EINVAL, "version");
    o.version = JS_OPEN_OPTS_VERSION;
    o.sync = -1;
    REJECT_IN(base_dir, js_open(p, &o, &st), JS_EINVAL, "sync");
    o.sync = JS_SYNC_NONE + 1;
    REJECT_IN(base_dir, js_open(p, &o, &st), JS_EINVAL, "sync");
    o.sync = 0;
    o.sync_interval = -1;
    REJECT_IN(base_dir, js_open(p, &o, &st), JS_EINVAL, "sync_interval");
    o.sync_interval = 0;
    o.vfs = "no-such-backend";
    REJECT_IN(base_dir, js_open(p, &o, &st), JS_EINVAL, "vfs");
    o.vfs = NULL;
    o.no_create = 1;
    REJECT_IN(base_dir, js_open(p, &o, &st), JS_ENOTFOUND, "no store");
    ck_assert_ptr_null(st);
    ck_assert(!exists(p));
}
END_TEST

START_TEST(test_open_of_a_directory_without_catalogue_and_no_create) {
    js_store *st = NULL;
    js_open_opts o = JS_OPEN_OPTS_INIT;
    char p[600];
    snprintf(p, sizeof p, "%s/empty-dir", base_dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    o.no_create = 1;
    REJECT_IN(p, js_open(p, &o, &st), JS_ENOTFOUND, "no store");
    snap after;
    snap_take(&after, p);
    ck_assert_uint_eq(after.n, 1); /* the directory alone */
    snap_free(&after);
    rmdir(p);
}
END_TEST

START_TEST(test_open_of_a_regular_file_fails_and_leaves_it) {
    js_store *st = NULL;
    char p[600];
    snprintf(p, sizeof p, "%s/a-file", base_dir);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a store", f);
    fclose(f);
    snap b, a;
    snap_take(&b, p);
    int rc = js_open(p, NULL, &st);
    ck_assert_msg(rc < 0, "open of a file: %d", rc);
    expect_errmsg("js_open(file)", NULL);
    ck_assert_ptr_null(st);
    snap_take(&a, p);
    snap_expect_same(&b, &a, "js_open(file)");
    snap_free(&b);
    snap_free(&a);
    unlink(p);
}
END_TEST

START_TEST(test_second_open_is_elocked_and_changes_nothing) {
    js_store *st = NULL;
    settle();
    REJECT(js_open(store_path, NULL, &st), JS_ELOCKED, store_path);
    ck_assert_ptr_null(st);
}
END_TEST

START_TEST(test_close_and_flush_of_null_and_wrong_handles) {
    js_stream *s = add_stream("A", "a");
    settle();
    CHECK_RC(js_close(NULL), 0);
    REJECT(js_flush(NULL), JS_EMISUSE, "store");
    REJECT(js_flush((js_store *)s), JS_EMISUSE, "store");
    REJECT(js_close((js_store *)s), JS_EMISUSE, "store");
    /* The stream survived the wrong-handle calls. */
    CHECK_RC(js_publish(S, "a", NULL, 0, "x", 1, NULL), 0);
    js_stream_release(s);
}
END_TEST

/* block_size is a target: tiny ones are raised to a minimum; the largest
 * is 1 GiB (the tail block is allocated whole). */
START_TEST(test_absurd_block_sizes_are_raised_or_refused) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    js_store *bad = NULL;
    char p[600];
    snprintf(p, sizeof p, "%s/never", base_dir);
    o.block_size = (UINT32_C(1) << 30) + 1;
    REJECT_IN(base_dir, js_open(p, &o, &bad), JS_EINVAL, "block_size");
    o.block_size = UINT32_MAX;
    REJECT_IN(base_dir, js_open(p, &o, &bad), JS_EINVAL, "block_size");
    ck_assert_ptr_null(bad);
    /* Tiny targets work, raised to the minimum. */
    js_store *st;
    js_stream *s;
    js_msg *m;
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    snprintf(p, sizeof p, "%s/bs-%ld", base_dir, (long)getpid());
    o.sync = JS_SYNC_NONE;
    o.block_size = 1;
    CHECK_RC(js_open(p, &o, &st), 0);
    c.name = "B";
    CHECK_RC(js_stream_add(st, &c, &s), 0);
    for (int k = 0; k < 20; k++)
        CHECK_RC(js_publish(st, "B", NULL, 0, rep('p', 1000), 1000, NULL), 0);
    CHECK_RC(js_msg_get(s, 20, &m), 0);
    js_msg_free(m);
    js_stream_release(s);
    CHECK_RC(js_close(st), 0);
    tu_rm_rf(p);
}
END_TEST

/* ---- streams: names and configs ------------------------------------------ */

/* Names no stream, consumer or bucket may have. */
static const char *const bad_names[] = {
    "a/b", "/", "a\\b", "\\", ".", "..", "../x", "a.b", "a b", " ",
    "a\tb", "a\nb", "a\rb", "a\x01", "\x7f", "*", ">", "a*", "a>",
};
#define NBAD (sizeof bad_names / sizeof bad_names[0])

START_TEST(test_stream_add_refuses_null_store_and_config) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    js_stream *s = (js_stream *)&s;
    c.name = "OK";
    REJECT(js_stream_add(NULL, &c, &s), JS_EMISUSE, "store");
    REJECT(js_stream_add(S, NULL, &s), JS_EINVAL, "config");
    js_stream *k = add_stream("K", "k");
    js_consumer *con = add_pull(k, NULL);
    settle();
    REJECT(js_stream_add((js_store *)k, &c, &s), JS_EMISUSE, "store");
    REJECT(js_stream_add((js_store *)con, &c, &s), JS_EMISUSE, "store");
    js_consumer_release(con);
    js_stream_release(k);
}
END_TEST

START_TEST(test_stream_add_refuses_unknown_config_versions) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "OK";
    c.version = 0;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "version");
    c.version = JS_STREAM_CONFIG_VERSION + 1;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "version");
    c.version = UINT_MAX;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "version");
}
END_TEST

START_TEST(test_stream_add_refuses_bad_names) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    const char *sub[1] = {"ok"};
    c.subjects = sub;
    c.num_subjects = 1;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "name");
    for (size_t i = 0; i < NBAD; i++) {
        c.name = bad_names[i];
        REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "name");
    }
    c.name = "";
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "name");
    c.name = rep('N', JS_MAX_NAME_LEN + 1);
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "name");
    c.name = rep('N', JS_MAX_NAME_LEN); /* the longest allowed */
    CHECK_RC(js_stream_add(S, &c, NULL), 0);
}
END_TEST

START_TEST(test_stream_add_refuses_bad_subjects) {
    static const char *const bad[] = {
        "", ".", "a.", ".a", "a..b", "a b", "a\tb", "a\x01", "a.>.b",
        "a.>.>", "\x7f", "a.*.>.>",
    };
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    const char *sub[2] = {"ok", NULL};
    c.name = "S";
    c.subjects = sub;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sub[0] = bad[i];
        c.num_subjects = 1;
        REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "subjects");
    }
    sub[0] = rep('s', JS_MAX_SUBJECT_LEN + 1);
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "subjects");
    sub[0] = "ok";
    c.num_subjects = 2; /* subjects[1] is NULL */
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "subjects[1]");
    sub[1] = "ok";
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "duplicate");
    sub[1] = "*";
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "overlap");
    c.subjects = NULL;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "subjects");
    /* Overlap with another stream is its own code. */
    js_stream *o = add_stream("O", "o.>");
    c.subjects = sub;
    c.num_subjects = 1;
    sub[0] = "o.x";
    settle();
    REJECT(js_stream_add(S, &c, NULL), JS_ESUBJECT_OVERLAP, "o.>");
    js_stream_release(o);
}
END_TEST

START_TEST(test_stream_add_refuses_unknown_enum_values) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "E";
    BAD_ENUM(c, retention, JS_RETENTION_WORKQUEUE, js_stream_add(S, &c, NULL));
    BAD_ENUM(c, discard, JS_DISCARD_NEW, js_stream_add(S, &c, NULL));
    BAD_ENUM(c, storage, JS_STORAGE_MEMORY, js_stream_add(S, &c, NULL));
    BAD_ENUM(c, sync, JS_SYNC_NONE, js_stream_add(S, &c, NULL));
    c.sync = INT_MIN;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "sync");
}
END_TEST

START_TEST(test_stream_add_refuses_bad_durations_and_flags) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "D";
    c.max_age = -1;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "max_age");
    c.max_age = INT64_MIN;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "max_age");
    c.max_age = 1;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "max_age");
    c.max_age = 0;
    c.duplicate_window = -1;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "duplicate_window");
    c.duplicate_window = 1;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "duplicate_window");
    c.max_age = SEC;
    c.duplicate_window = 2 * SEC;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "duplicate_window");
    c.max_age = c.duplicate_window = 0;
    c.description = rep('d', JS_MAX_DESCRIPTION_LEN + 1);
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "description");
    c.description = NULL;
    c.sealed = 1;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "sealed");
    c.sealed = 0;
    c.deny_purge = c.allow_rollup_hdrs = 1;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "allow_rollup_hdrs");
    c.deny_purge = c.allow_rollup_hdrs = 0;
    c.discard_new_per_subject = 1;
    REJECT(js_stream_add(S, &c, NULL), JS_EINVAL, "discard_new_per_subject");
}
END_TEST

/* NATS rewrites every limit below -1 to -1 (unlimited) rather than
 * refusing it; so does the library, and the info says -1. */
START_TEST(test_stream_limits_below_minus_one_mean_unlimited) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    js_stream *s;
    struct js_stream_info *i;
    c.name = "L";
    c.max_consumers = c.max_msgs = c.max_bytes = INT64_MIN;
    c.max_msgs_per_subject = -7;
    c.max_msg_size = INT32_MIN;
    CHECK_RC(js_stream_add(S, &c, &s), 0);
    CHECK_RC(js_stream_info(s, &i), 0);
    ck_assert_int_eq(i->config->max_consumers, -1);
    ck_assert_int_eq(i->config->max_msgs, -1);
    ck_assert_int_eq(i->config->max_bytes, -1);
    ck_assert_int_eq(i->config->max_msgs_per_subject, -1);
    ck_assert_int_eq(i->config->max_msg_size, -1);
    js_stream_info_free(i);
    pub("L", "x");
    js_stream_release(s);
}
END_TEST

/* A first_seq at the top of the sequence space: the stream refuses the
 * message that would wrap (the last sequence a message may have is
 * UINT64_MAX - 1) rather than store sequence 0. */
START_TEST(test_sequence_space_does_not_wrap) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    js_stream *s, *t;
    js_pub_ack a = JS_PUB_ACK_INIT;
    js_msg *m;
    c.name = "W";
    c.first_seq = UINT64_MAX - 1;
    CHECK_RC(js_stream_add(S, &c, &s), 0);
    CHECK_RC(js_publish(S, "W", NULL, 0, "x", 1, &a), 0);
    ck_assert_uint_eq(a.seq, UINT64_MAX - 1);
    settle();
    REJECT(js_publish(S, "W", NULL, 0, "y", 1, &a), JS_ENOSPC, "sequence");
    js_pub_msg b[1] = {{"W", NULL, 0, "z", 1}};
    size_t done = 9;
    REJECT(js_publish_batch(S, b, 1, NULL, &done), JS_ENOSPC, "sequence");
    ck_assert_uint_eq(done, 0);
    CHECK_RC(js_msg_get(s, UINT64_MAX - 1, &m), 0);
    js_msg_free(m);
    c.name = "W2";
    c.first_seq = UINT64_MAX;
    CHECK_RC(js_stream_add(S, &c, &t), 0);
    settle();
    REJECT(js_publish(S, "W2", NULL, 0, "y", 1, &a), JS_ENOSPC, "sequence");
    js_stream_release(t);
    js_stream_release(s);
}
END_TEST

START_TEST(test_stream_update_refusals_change_nothing) {
    js_stream *s = add_stream("U", "u.>");
    pub("u.1", "x");
    settle();
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    const char *sub[1] = {"u.>"};
    c.name = "U";
    c.subjects = sub;
    c.num_subjects = 1;
    REJECT(js_stream_update(NULL, &c), JS_EMISUSE, "store");
    REJECT(js_stream_update((js_store *)s, &c), JS_EMISUSE, "store");
    REJECT(js_stream_update(S, NULL), JS_EINVAL, "config");
    c.version = 0;
    REJECT(js_stream_update(S, &c), JS_EINVAL, "version");
    c.version = JS_STREAM_CONFIG_VERSION + 1;
    REJECT(js_stream_update(S, &c), JS_EINVAL, "version");
    c.version = JS_STREAM_CONFIG_VERSION;
    c.name = "../U";
    REJECT(js_stream_update(S, &c), JS_EINVAL, "name");
    c.name = "NOPE";
    REJECT(js_stream_update(S, &c), JS_ESTREAM_NOT_FOUND, "not found");
    c.name = "U";
    c.storage = JS_STORAGE_MEMORY;
    REJECT(js_stream_update(S, &c), JS_EUPDATE, "storage");
    c.storage = 7;
    REJECT(js_stream_update(S, &c), JS_EINVAL, "storage");
    c.storage = 0;
    c.first_seq = 5;
    REJECT(js_stream_update(S, &c), JS_EUPDATE, "first_seq");
    c.first_seq = 0;
    c.max_age = -SEC;
    REJECT(js_stream_update(S, &c), JS_EINVAL, "max_age");
    c.max_age = 0;
    sub[0] = "u..x";
    REJECT(js_stream_update(S, &c), JS_EINVAL, "subjects");
    js_stream_release(s);
}
END_TEST

START_TEST(test_stream_lookup_names_and_delete_refusals) {
    js_stream *s = add_stream("Q", "q");
    js_stream *out = (js_stream *)&out;
    char **names = NULL;
    settle();
    REJECT(js_stream_lookup(NULL, "Q", &out), JS_EMISUSE, "store");
    REJECT(js_stream_lookup((js_store *)s, "Q", &out), JS_EMISUSE, "store");
    REJECT(js_stream_lookup(S, NULL, &out), JS_EINVAL, "name");
    REJECT(js_stream_lookup(S, "Q", NULL), JS_EINVAL, "out");
    for (size_t i = 0; i < NBAD; i++) {
        REJECT(js_stream_lookup(S, bad_names[i], &out), JS_ESTREAM_NOT_FOUND,
               "not found");
        ck_assert_ptr_null(out);
    }
    REJECT(js_stream_names(NULL, &names, NULL), JS_EMISUSE, "store");
    REJECT(js_stream_names((js_store *)s, &names, NULL), JS_EMISUSE, "store");
    REJECT(js_stream_names(S, NULL, NULL), JS_EINVAL, "names");
    js_names_free(NULL);
    REJECT(js_stream_delete(NULL, "Q"), JS_EMISUSE, "store");
    REJECT(js_stream_delete((js_store *)s, "Q"), JS_EMISUSE, "store");
    REJECT(js_stream_delete(S, NULL), JS_EINVAL, "name");
    REJECT(js_stream_delete(S, ""), JS_ESTREAM_NOT_FOUND, "not found");
    for (size_t i = 0; i < NBAD; i++)
        REJECT(js_stream_delete(S, bad_names[i]), JS_ESTREAM_NOT_FOUND,
               "not found");
    REJECT(js_stream_delete(S, "q"), JS_ESTREAM_NOT_FOUND, "not found");
    CHECK_RC(js_stream_names(S, &names, NULL), 0);
    ck_assert_str_eq(names[0], "Q");
    ck_assert_ptr_null(names[1]);
    js_names_free(names);
    js_stream_release(s);
}
END_TEST

START_TEST(test_stream_info_and_release_of_null_and_wrong_handles) {
    js_stream *s = add_stream("I", "i");
    js_consumer *c = add_pull(s, "d");
    js_kv *kv = add_kv("b");
    struct js_stream_info *info = (struct js_stream_info *)&info;
    settle();
    REJECT(js_stream_info(NULL, &info), JS_EMISUSE, "stream");
    REJECT(js_stream_info(s, NULL), JS_EINVAL, "out");
    REJECT(js_stream_info((js_stream *)c, &info), JS_EMISUSE, "stream");
    REJECT(js_stream_info((js_stream *)kv, &info), JS_EMISUSE, "stream");
    REJECT(js_stream_info((js_stream *)S, &info), JS_EMISUSE, "stream");
    js_stream_info_free(NULL);
    /* Releasing something that is not a stream handle does nothing. */
    js_stream_release(NULL);
    js_stream_release((js_stream *)c);
    js_stream_release((js_stream *)kv);
    js_stream_release((js_stream *)S);
    CHECK_RC(js_stream_info(s, &info), 0);
    js_stream_info_free(info);
    js_consumer_release(c);
    js_kv_release(kv);
    js_stream_release(s);
}
END_TEST

START_TEST(test_purge_refusals_change_nothing) {
    js_stream *s = add_stream("P", "p.>");
    js_consumer *c = add_pull(s, NULL);
    js_purge_opts o = JS_PURGE_OPTS_INIT;
    uint64_t n = 99;
    pub("p.1", "x");
    pub("p.2", "y");
    settle();
    REJECT(js_stream_purge(NULL, NULL, &n), JS_EMISUSE, "stream");
    REJECT(js_stream_purge((js_stream *)c, NULL, &n), JS_EMISUSE, "stream");
    REJECT(js_stream_purge((js_stream *)S, NULL, &n), JS_EMISUSE, "stream");
    o.version = 0;
    REJECT(js_stream_purge(s, &o, &n), JS_EINVAL, "version");
    o.version = JS_PURGE_OPTS_VERSION + 1;
    REJECT(js_stream_purge(s, &o, &n), JS_EINVAL, "version");
    o.version = JS_PURGE_OPTS_VERSION;
    o.seq = 2;
    o.keep = 1;
    REJECT(js_stream_purge(s, &o, &n), JS_EINVAL, "keep");
    o.seq = o.keep = 0;
    /* An empty filter is no filter, as in NATS. */
    static const char *const bad[] = {"p..1", "p.>.x", "p 1", "p.\x01", "."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.filter = bad[i];
        REJECT(js_stream_purge(s, &o, &n), JS_EINVAL, "filter");
    }
    o.filter = rep('p', JS_MAX_SUBJECT_LEN + 1);
    REJECT(js_stream_purge(s, &o, &n), JS_EINVAL, "filter");
    CHECK_RC(js_stream_purge(s, NULL, &n), 0);
    ck_assert_uint_eq(n, 2);
    js_consumer_release(c);
    js_stream_release(s);
}
END_TEST
/* ---- publish -------------------------------------------------------------- */

START_TEST(test_publish_refuses_null_store_and_bad_subjects) {
    static const char *const bad[] = {
        "", ".", "a.", ".a", "a..b", "a b", " a", "a\t", "a\x01", "a\x7f",
        "a.*", "*", ">", "a.>", "a.*.b",
    };
    js_stream *s = add_stream("PUB", "a.>");
    settle();
    REJECT(js_publish(NULL, "a.b", NULL, 0, "x", 1, NULL), JS_EMISUSE,
           "store");
    REJECT(js_publish((js_store *)s, "a.b", NULL, 0, "x", 1, NULL),
           JS_EMISUSE, "store");
    REJECT(js_publish(S, NULL, NULL, 0, "x", 1, NULL), JS_EINVAL, "subject");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        REJECT(js_publish(S, bad[i], NULL, 0, "x", 1, NULL), JS_EINVAL,
               "subject");
    /* Longer than JS_MAX_SUBJECT_LEN, though the stream would take it. */
    char *big = malloc(JS_MAX_SUBJECT_LEN + 2);
    memcpy(big, "a.", 2);
    memset(big + 2, 'z', JS_MAX_SUBJECT_LEN - 1);
    big[JS_MAX_SUBJECT_LEN + 1] = 0;
    REJECT(js_publish(S, big, NULL, 0, "x", 1, NULL), JS_EINVAL, "subject");
    big[JS_MAX_SUBJECT_LEN] = 0; /* exactly the limit: accepted */
    CHECK_RC(js_publish(S, big, NULL, 0, "x", 1, NULL), 0);
    free(big);
    settle();
    REJECT(js_publish(S, "b", NULL, 0, "x", 1, NULL), JS_ENO_STREAM, "b");
    js_stream_release(s);
}
END_TEST

/* NATS checks subjects for whitespace and token structure only: bytes of
 * 0x80 and above, valid UTF-8 or not, are stored as they are. */
START_TEST(test_publish_takes_non_ascii_subject_bytes_as_they_are) {
    js_stream *s = add_stream("U8", "u.>");
    js_msg *m;
    pub("u.\xc3\xa9t\xc3\xa9", "utf8");
    pub("u.\xff\xfe", "not utf8");
    CHECK_RC(js_msg_get(s, 2, &m), 0);
    ck_assert_str_eq(js_msg_subject(m), "u.\xff\xfe");
    js_msg_free(m);
    js_stream_release(s);
}
END_TEST

START_TEST(test_publish_refuses_bad_pointers_sizes_and_headers) {
    js_stream *s = add_stream("PS", "ps");
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    js_pub_ack ack = JS_PUB_ACK_INIT;
    const char hdr[] = "NATS/1.0\r\nA: b\r\n\r\n";
    settle();
    REJECT(js_publish(S, "ps", NULL, 5, "x", 1, NULL), JS_EINVAL, "headers");
    REJECT(js_publish(S, "ps", NULL, 0, NULL, 1, NULL), JS_EINVAL, "data");
    REJECT(js_publish(S, "ps", "garbage", 7, "x", 1, NULL), JS_EBAD_HEADER,
           NULL);
    REJECT(js_publish(S, "ps", "NATS/1.0\r\n", 10, "x", 1, NULL),
           JS_EBAD_HEADER, NULL);
    /* The size checks come before any byte is read. */
    char *big = calloc(1, JS_MAX_PAYLOAD + 2);
    ck_assert_ptr_nonnull(big);
    memcpy(big, "NATS/1.0\r\n", 10);
    REJECT(js_publish(S, "ps", big, JS_MAX_HDR_LEN + 1, "x", 1, NULL),
           JS_EHDR_SIZE, "header");
    REJECT(js_publish(S, "ps", NULL, 0, big, JS_MAX_PAYLOAD + 1, NULL),
           JS_EMSG_SIZE, "size");
    /* Subject + headers + data together past the limit. */
    REJECT(js_publish(S, "ps", hdr, sizeof hdr - 1, big,
                      JS_MAX_PAYLOAD - sizeof hdr, NULL),
           JS_EMSG_SIZE, "size");
    REJECT(js_publish(S, "ps", NULL, 0, big, SIZE_MAX, NULL), JS_EMSG_SIZE,
           "size");
    REJECT(js_publish(S, "ps", big, SIZE_MAX, "x", 1, NULL), JS_EHDR_SIZE,
           "header");
    free(big);
    ack.version = 0;
    REJECT(js_publish(S, "ps", NULL, 0, "x", 1, &ack), JS_EINVAL, "ack");
    ack.version = JS_PUB_ACK_VERSION + 1;
    REJECT(js_publish(S, "ps", NULL, 0, "x", 1, &ack), JS_EINVAL, "ack");
    /* Past the stream's own max_msg_size, headers counted. */
    const char *sub[1] = {"ps"};
    c.name = "PS";
    c.subjects = sub;
    c.num_subjects = 1;
    c.max_msg_size = 20;
    CHECK_RC(js_stream_update(S, &c), 0);
    settle();
    REJECT(js_publish(S, "ps", NULL, 0, rep('d', 21), 21, NULL), JS_EMSG_SIZE,
           NULL);
    REJECT(js_publish(S, "ps", hdr, sizeof hdr - 1, "abcd", 4, NULL),
           JS_EMSG_SIZE, NULL);
    CHECK_RC(js_publish(S, "ps", NULL, 0, NULL, 0, NULL), 0);
    js_stream_release(s);
}
END_TEST

START_TEST(test_publish_batch_refusals) {
    js_stream *s = add_stream("PB", "pb.>");
    js_pub_msg m[3] = {{"pb.1", NULL, 0, "a", 1},
                       {"pb..2", NULL, 0, "b", 1},
                       {"pb.3", NULL, 0, "c", 1}};
    js_pub_ack acks[3] = {JS_PUB_ACK_INIT, JS_PUB_ACK_INIT, JS_PUB_ACK_INIT};
    size_t done = 99;
    settle();
    REJECT(js_publish_batch(NULL, m, 1, NULL, &done), JS_EMISUSE, "store");
    ck_assert_uint_eq(done, 0);
    REJECT(js_publish_batch((js_store *)s, m, 1, NULL, &done), JS_EMISUSE,
           "store");
    REJECT(js_publish_batch(S, NULL, 2, NULL, &done), JS_EINVAL, "msgs");
    acks[0].version = 0;
    REJECT(js_publish_batch(S, m, 1, acks, &done), JS_EINVAL, "acks");
    acks[0].version = JS_PUB_ACK_VERSION + 1;
    REJECT(js_publish_batch(S, m, 1, acks, &done), JS_EINVAL, "acks");
    acks[0].version = JS_PUB_ACK_VERSION;
    REJECT(js_publish_batch(S, m + 1, 2, acks, &done), JS_EINVAL, "subject");
    ck_assert_uint_eq(done, 0);
    m[1].subject = NULL;
    REJECT(js_publish_batch(S, m + 1, 1, NULL, &done), JS_EINVAL, "subject");
    m[1].subject = "pb.2";
    m[1].data = NULL;
    REJECT(js_publish_batch(S, m + 1, 1, NULL, &done), JS_EINVAL, "data");
    m[1].data = "b";
    m[1].hdrs = "bad";
    m[1].hdr_len = 3;
    REJECT(js_publish_batch(S, m + 1, 1, NULL, &done), JS_EBAD_HEADER, NULL);
    /* n = 0 with no array is an empty batch. */
    CHECK_RC(js_publish_batch(S, NULL, 0, NULL, &done), 0);
    ck_assert_uint_eq(done, 0);
    /* A failure part way keeps what came before it. */
    CHECK_RC(js_publish_batch(S, m, 3, acks, &done), JS_EBAD_HEADER);
    ck_assert_uint_eq(done, 1);
    ck_assert_uint_eq(acks[0].seq, 1);
    js_stream_release(s);
}
END_TEST

/* ---- messages ------------------------------------------------------------- */

START_TEST(test_msg_reads_refuse_null_wrong_and_absent) {
    js_stream *s = add_stream("M", "m.>");
    js_consumer *c = add_pull(s, NULL);
    js_msg *m = (js_msg *)&m;
    pub("m.1", "x");
    settle();
    REJECT(js_msg_get(NULL, 1, &m), JS_EMISUSE, "stream");
    REJECT(js_msg_get((js_stream *)c, 1, &m), JS_EMISUSE, "stream");
    REJECT(js_msg_get(s, 1, NULL), JS_EINVAL, "out");
    REJECT(js_msg_get(s, 0, &m), JS_EMSG_NOT_FOUND, NULL);
    ck_assert_ptr_null(m);
    REJECT(js_msg_get(s, UINT64_MAX, &m), JS_EMSG_NOT_FOUND, NULL);
    REJECT(js_msg_get_last(NULL, "m.1", &m), JS_EMISUSE, "stream");
    REJECT(js_msg_get_last((js_stream *)c, "m.1", &m), JS_EMISUSE, "stream");
    REJECT(js_msg_get_last(s, NULL, &m), JS_EINVAL, "subject");
    REJECT(js_msg_get_last(s, "m.1", NULL), JS_EINVAL, "out");
    REJECT(js_msg_get_last(s, "", &m), JS_EINVAL, "subject");
    REJECT(js_msg_get_last(s, "m..1", &m), JS_EINVAL, "subject");
    REJECT(js_msg_get_last(s, "m.>.x", &m), JS_EINVAL, "subject");
    REJECT(js_msg_get_last(s, rep('m', JS_MAX_SUBJECT_LEN + 1), &m),
           JS_EINVAL, "subject");
    REJECT(js_msg_get_last(s, "m.2", &m), JS_EMSG_NOT_FOUND, NULL);
    REJECT(js_msg_get_next(NULL, NULL, 1, &m), JS_EMISUSE, "stream");
    REJECT(js_msg_get_next((js_stream *)S, NULL, 1, &m), JS_EMISUSE, "stream");
    REJECT(js_msg_get_next(s, NULL, 1, NULL), JS_EINVAL, "out");
    REJECT(js_msg_get_next(s, "m 1", 1, &m), JS_EINVAL, "filter");
    /* An empty filter is no filter. */
    CHECK_RC(js_msg_get_next(s, "", 1, &m), 0);
    js_msg_free(m);
    REJECT(js_msg_get_next(s, NULL, 2, &m), JS_EMSG_NOT_FOUND, NULL);
    REJECT(js_msg_get_next(s, NULL, UINT64_MAX, &m), JS_EMSG_NOT_FOUND, NULL);
    js_consumer_release(c);
    js_stream_release(s);
}
END_TEST

START_TEST(test_msg_delete_and_erase_refusals_change_nothing) {
    js_stream *s = add_stream("MD", "md");
    js_consumer *c = add_pull(s, "dur");
    pub("md", "x");
    settle();
    REJECT(js_msg_delete(NULL, 1), JS_EMISUSE, "stream");
    REJECT(js_msg_delete((js_stream *)c, 1), JS_EMISUSE, "stream");
    REJECT(js_msg_delete(s, 0), JS_EMSG_NOT_FOUND, NULL);
    REJECT(js_msg_delete(s, 2), JS_EMSG_NOT_FOUND, NULL);
    REJECT(js_msg_delete(s, UINT64_MAX), JS_EMSG_NOT_FOUND, NULL);
    REJECT(js_msg_erase(NULL, 1), JS_EMISUSE, "stream");
    REJECT(js_msg_erase((js_stream *)c, 1), JS_EMISUSE, "stream");
    REJECT(js_msg_erase(s, 0), JS_EMSG_NOT_FOUND, NULL);
    REJECT(js_msg_erase(s, UINT64_MAX), JS_EMSG_NOT_FOUND, NULL);
    CHECK_RC(js_msg_delete(s, 1), 0);
    settle();
    REJECT(js_msg_delete(s, 1), JS_EMSG_NOT_FOUND, NULL);
    REJECT(js_msg_erase(s, 1), JS_EMSG_NOT_FOUND, NULL);
    js_consumer_release(c);
    js_stream_release(s);
}
END_TEST

START_TEST(test_msg_accessors_of_null_and_wrong_handles) {
    js_stream *s = add_stream("MA", "ma");
    const char hdr[] = "NATS/1.0\r\nK: v\r\n\r\n";
    const char *v = "unset";
    size_t len = 99;
    js_msg *m;
    CHECK_RC(js_publish(S, "ma", hdr, sizeof hdr - 1, "x", 1, NULL), 0);
    CHECK_RC(js_msg_get(s, 1, &m), 0);
    js_msg *wrong = (js_msg *)s;
    for (int k = 0; k < 2; k++) {
        js_msg *x = k ? wrong : NULL;
        ck_assert_ptr_null(js_msg_subject(x));
        ck_assert_uint_eq(js_msg_seq(x), 0);
        ck_assert_int_eq(js_msg_time(x), 0);
        len = 99;
        ck_assert_ptr_null(js_msg_data(x, &len));
        ck_assert_uint_eq(len, 0);
        len = 99;
        ck_assert_ptr_null(js_msg_headers(x, &len));
        ck_assert_uint_eq(len, 0);
        ck_assert_ptr_null(js_msg_data(x, NULL));
        REJECT(js_msg_header(x, "K", &v, &len), JS_EMISUSE, "message");
        js_msg_free(x); /* not a message: ignored */
    }
    /* A valid message with NULL out-pointers. */
    ck_assert_ptr_nonnull(js_msg_data(m, NULL));
    ck_assert_ptr_nonnull(js_msg_headers(m, NULL));
    REJECT(js_msg_header(m, NULL, &v, &len), JS_EINVAL, "name");
    REJECT(js_msg_header(m, "K", NULL, &len), JS_EINVAL, "value");
    REJECT(js_msg_header(m, "K", &v, NULL), JS_EINVAL, "len");
    REJECT(js_msg_header(m, "", &v, &len), JS_ENOTFOUND, NULL);
    REJECT(js_msg_header(m, "k ", &v, &len), JS_ENOTFOUND, NULL);
    CHECK_RC(js_msg_header(m, "K", &v, &len), 0);
    ck_assert_uint_eq(len, 1);
    js_msg_free(m);
    js_stream_release(s);
}
END_TEST
/* ---- consumers: configs ---------------------------------------------------- */

/* A consumer config refused with `want`, the detail naming `word`, and
 * the store unchanged. */
#define CREJECT(s, cfg, want, word) \
    REJECT(js_consumer_add((s), (cfg), NULL), (want), (word))

START_TEST(test_consumer_add_refuses_null_and_wrong_handles) {
    js_stream *s = add_stream("C", "c.>");
    js_consumer *k = add_pull(s, "k");
    js_kv *kv = add_kv("b");
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    js_consumer *out = (js_consumer *)&out;
    c.durable_name = "d";
    settle();
    REJECT(js_consumer_add(NULL, &c, &out), JS_EMISUSE, "stream");
    REJECT(js_consumer_add((js_stream *)k, &c, &out), JS_EMISUSE, "stream");
    REJECT(js_consumer_add((js_stream *)kv, &c, &out), JS_EMISUSE, "stream");
    REJECT(js_consumer_add((js_stream *)S, &c, &out), JS_EMISUSE, "stream");
    REJECT(js_consumer_add(s, NULL, &out), JS_EINVAL, "config");
    c.version = 0;
    REJECT(js_consumer_add(s, &c, &out), JS_EINVAL, "version");
    c.version = JS_CONSUMER_CONFIG_VERSION + 1;
    REJECT(js_consumer_add(s, &c, &out), JS_EINVAL, "version");
    js_kv_release(kv);
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_consumer_add_refuses_bad_names) {
    js_stream *s = add_stream("CN", "cn.>");
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    settle();
    for (size_t i = 0; i < NBAD; i++) {
        c.name = bad_names[i];
        c.durable_name = NULL;
        CREJECT(s, &c, JS_EINVAL, "name");
        c.name = NULL;
        c.durable_name = bad_names[i];
        CREJECT(s, &c, JS_EINVAL, "durable_name");
    }
    c.name = NULL;
    c.durable_name = rep('n', JS_MAX_NAME_LEN + 1);
    CREJECT(s, &c, JS_EINVAL, "durable_name");
    c.name = "one";
    c.durable_name = "two";
    CREJECT(s, &c, JS_EINVAL, "durable_name");
    js_stream_release(s);
}
END_TEST

/* NATS takes an empty name as no name: "" is NULL, an ephemeral with a
 * generated name, and no file is written for it. */
START_TEST(test_consumer_empty_names_are_no_names) {
    js_stream *s = add_stream("CZ", "cz");
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    js_consumer *k;
    struct js_consumer_info *i;
    settle();
    c.name = "";
    c.durable_name = "";
    snap b, a;
    snap_take(&b, store_path);
    CHECK_RC(js_consumer_add(s, &c, &k), 0);
    snap_take(&a, store_path);
    snap_expect_same(&b, &a, "ephemeral consumer add");
    snap_free(&b);
    snap_free(&a);
    CHECK_RC(js_consumer_info(k, &i), 0);
    ck_assert_uint_eq(strlen(i->name), 8);
    ck_assert_ptr_null(i->config->durable_name);
    js_consumer_info_free(i);
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_consumer_add_refuses_unknown_enum_values) {
    js_stream *s = add_stream("CE", "ce.>");
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    c.durable_name = "d";
    settle();
    BAD_ENUM(c, deliver_policy, JS_DELIVER_LAST_PER_SUBJECT,
             js_consumer_add(s, &c, NULL));
    BAD_ENUM(c, ack_policy, JS_ACK_ALL, js_consumer_add(s, &c, NULL));
    BAD_ENUM(c, replay_policy, JS_REPLAY_ORIGINAL,
             js_consumer_add(s, &c, NULL));
    js_stream_release(s);
}
END_TEST

START_TEST(test_consumer_add_refuses_negative_and_absurd_limits) {
    js_stream *s = add_stream("CL", "cl.>");
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    int64_t neg[2] = {SEC, -1};
    int64_t three[3] = {SEC, SEC, SEC};
    c.durable_name = "d";
    settle();
    c.ack_wait = -1;
    CREJECT(s, &c, JS_EINVAL, "ack_wait");
    c.ack_wait = INT64_MIN;
    CREJECT(s, &c, JS_EINVAL, "ack_wait");
    c.ack_wait = 0;
    c.backoff = neg;
    c.num_backoff = 2;
    CREJECT(s, &c, JS_EINVAL, "backoff[1]");
    c.backoff = NULL;
    CREJECT(s, &c, JS_EINVAL, "backoff");
    c.backoff = three;
    c.num_backoff = 3;
    c.max_deliver = 2;
    CREJECT(s, &c, JS_EINVAL, "max_deliver");
    c.backoff = NULL;
    c.num_backoff = 0;
    c.max_deliver = 0;
    c.max_waiting = -1;
    CREJECT(s, &c, JS_EINVAL, "max_waiting");
    c.max_waiting = 0;
    c.max_batch = -1;
    CREJECT(s, &c, JS_EINVAL, "max_batch");
    c.max_batch = 0;
    c.max_expires = -1;
    CREJECT(s, &c, JS_EINVAL, "max_expires");
    c.max_expires = 1; /* under NATS's 1 ms minimum */
    CREJECT(s, &c, JS_EINVAL, "max_expires");
    c.max_expires = 0;
    c.max_bytes = -1;
    CREJECT(s, &c, JS_EINVAL, "max_bytes");
    c.max_bytes = 0;
    c.inactive_threshold = -1;
    CREJECT(s, &c, JS_EINVAL, "inactive_threshold");
    c.inactive_threshold = 0;
    c.rate_limit_bps = 1; /* push only */
    CREJECT(s, &c, JS_EINVAL, "rate_limit");
    c.rate_limit_bps = 0;
    c.description = rep('d', JS_MAX_DESCRIPTION_LEN + 1);
    CREJECT(s, &c, JS_EINVAL, "description");
    c.description = NULL;
    c.sample_freq = "abc";
    CREJECT(s, &c, JS_EINVAL, "sample_freq");
    c.sample_freq = "101%";
    CREJECT(s, &c, JS_EINVAL, "sample_freq");
    c.sample_freq = "-1";
    CREJECT(s, &c, JS_EINVAL, "sample_freq");
    c.sample_freq = NULL;
    c.num_metadata = 1; /* metadata NULL */
    CREJECT(s, &c, JS_EINVAL, "metadata");
    const char *md[4] = {"k", "v", "k", "w"};
    c.metadata = md;
    c.num_metadata = 2;
    CREJECT(s, &c, JS_EINVAL, "metadata");
    const char *mdnull[2] = {NULL, "v"};
    c.metadata = mdnull;
    c.num_metadata = 1;
    CREJECT(s, &c, JS_EINVAL, "metadata");
    c.metadata = NULL;
    c.num_metadata = 0;
    c.deliver_policy = JS_DELIVER_BY_START_SEQUENCE;
    CREJECT(s, &c, JS_EINVAL, "opt_start_seq");
    c.deliver_policy = JS_DELIVER_BY_START_TIME;
    CREJECT(s, &c, JS_EINVAL, "opt_start_time");
    c.deliver_policy = JS_DELIVER_ALL;
    c.opt_start_seq = 5;
    CREJECT(s, &c, JS_EINVAL, "opt_start_seq");
    c.opt_start_seq = 0;
    c.deliver_policy = JS_DELIVER_LAST_PER_SUBJECT;
    CREJECT(s, &c, JS_EINVAL, "filter_subject");
    /* Negative counts NATS rewrites to -1 (unlimited): accepted. */
    c.deliver_policy = 0;
    c.max_deliver = INT64_MIN;
    c.max_ack_pending = -5;
    js_consumer *k;
    struct js_consumer_info *i;
    CHECK_RC(js_consumer_add(s, &c, &k), 0);
    CHECK_RC(js_consumer_info(k, &i), 0);
    ck_assert_int_eq(i->config->max_deliver, -1);
    ck_assert_int_eq(i->config->max_ack_pending, -1);
    js_consumer_info_free(i);
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_consumer_add_refuses_bad_filters_and_deliver_subjects) {
    static const char *const bad[] = {"cf..x", "cf x", "cf.>.x", "\x01", "."};
    js_stream *s = add_stream("CF", "cf.>");
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    const char *fs[2] = {"cf.a", "cf.*"};
    c.durable_name = "d";
    settle();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c.filter_subject = bad[i];
        CREJECT(s, &c, JS_EINVAL, "filter");
    }
    c.filter_subject = rep('f', JS_MAX_SUBJECT_LEN + 1);
    CREJECT(s, &c, JS_EINVAL, "filter");
    c.filter_subject = "cf.a";
    c.filter_subjects = fs;
    c.num_filter_subjects = 1;
    CREJECT(s, &c, JS_EINVAL, "filter");
    c.filter_subject = NULL;
    c.num_filter_subjects = 2; /* overlapping */
    CREJECT(s, &c, JS_EINVAL, "filter");
    c.filter_subjects = NULL;
    CREJECT(s, &c, JS_EINVAL, "filter_subjects");
    c.num_filter_subjects = 0;
    c.deliver_subject = "push.*";
    CREJECT(s, &c, JS_EINVAL, "deliver_subject");
    c.deliver_subject = "push..x";
    CREJECT(s, &c, JS_EINVAL, "deliver_subject");
    c.deliver_subject = "cf.loop"; /* would deliver into its own stream */
    CREJECT(s, &c, JS_EINVAL, "deliver_subject");
    c.deliver_subject = "push";
    c.max_waiting = 5; /* pull only */
    CREJECT(s, &c, JS_EINVAL, "max_waiting");
    js_stream_release(s);
}
END_TEST

START_TEST(test_consumer_update_refusals_change_nothing) {
    js_stream *s = add_stream("CU", "cu.>");
    js_consumer *k = add_pull(s, "dur");
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    js_consumer *out = (js_consumer *)&out;
    c.durable_name = "dur";
    settle();
    REJECT(js_consumer_update(NULL, &c, &out), JS_EMISUSE, "stream");
    REJECT(js_consumer_update((js_stream *)k, &c, &out), JS_EMISUSE,
           "stream");
    REJECT(js_consumer_update(s, NULL, &out), JS_EINVAL, "config");
    c.version = 0;
    REJECT(js_consumer_update(s, &c, &out), JS_EINVAL, "version");
    c.version = JS_CONSUMER_CONFIG_VERSION;
    c.durable_name = "nope";
    REJECT(js_consumer_update(s, &c, &out), JS_ECONSUMER_NOT_FOUND, NULL);
    c.durable_name = NULL; /* names no consumer (NATS 10149) */
    REJECT(js_consumer_update(s, &c, &out), JS_ECONSUMER_NOT_FOUND, NULL);
    c.durable_name = "../dur";
    REJECT(js_consumer_update(s, &c, &out), JS_EINVAL, "durable_name");
    c.durable_name = "dur";
    c.deliver_policy = JS_DELIVER_NEW;
    REJECT(js_consumer_update(s, &c, &out), JS_EUPDATE, "deliver_policy");
    c.deliver_policy = 0;
    c.ack_wait = -1;
    REJECT(js_consumer_update(s, &c, &out), JS_EINVAL, "ack_wait");
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_consumer_lookup_delete_names_refusals) {
    js_stream *s = add_stream("CD", "cd");
    js_consumer *k = add_pull(s, "dur");
    js_consumer *out = (js_consumer *)&out;
    char **names;
    settle();
    REJECT(js_consumer_lookup(NULL, "dur", &out), JS_EMISUSE, "stream");
    REJECT(js_consumer_lookup((js_stream *)k, "dur", &out), JS_EMISUSE,
           "stream");
    REJECT(js_consumer_lookup(s, NULL, &out), JS_EINVAL, "name");
    REJECT(js_consumer_lookup(s, "dur", NULL), JS_EINVAL, "out");
    for (size_t i = 0; i < NBAD; i++) {
        REJECT(js_consumer_lookup(s, bad_names[i], &out),
               JS_ECONSUMER_NOT_FOUND, NULL);
        ck_assert_ptr_null(out);
    }
    REJECT(js_consumer_delete(NULL, "dur"), JS_EMISUSE, "stream");
    REJECT(js_consumer_delete((js_stream *)k, "dur"), JS_EMISUSE, "stream");
    REJECT(js_consumer_delete(s, NULL), JS_EINVAL, "name");
    REJECT(js_consumer_delete(s, ""), JS_ECONSUMER_NOT_FOUND, NULL);
    for (size_t i = 0; i < NBAD; i++)
        REJECT(js_consumer_delete(s, bad_names[i]), JS_ECONSUMER_NOT_FOUND,
               NULL);
    REJECT(js_consumer_names(NULL, &names, NULL), JS_EMISUSE, "stream");
    REJECT(js_consumer_names((js_stream *)k, &names, NULL), JS_EMISUSE,
           "stream");
    REJECT(js_consumer_names(s, NULL, NULL), JS_EINVAL, "names");
    js_consumer_release(NULL);
    js_consumer_release((js_consumer *)s);
    js_consumer_release((js_consumer *)S);
    js_consumer_info_free(NULL);
    CHECK_RC(js_consumer_names(s, &names, NULL), 0);
    ck_assert_str_eq(names[0], "dur");
    js_names_free(names);
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

/* ---- consumers: delivery ---------------------------------------------------- */

static void on_msg(js_consumer *c, js_msg *m, void *ctx) {
    (*(int *)ctx)++;
    js_msg_free(m);
}

START_TEST(test_pull_calls_refuse_null_wrong_and_push_handles) {
    js_stream *s = add_stream("PL", "pl");
    js_consumer *k = add_pull(s, "dur");
    js_consumer_config pc = JS_CONSUMER_CONFIG_INIT;
    js_consumer *push;
    js_msg *m = (js_msg *)&m, *v[4];
    size_t n = 99;
    js_fetch_opts o = JS_FETCH_OPTS_INIT;
    pc.durable_name = "push";
    pc.deliver_subject = "deliver.here";
    CHECK_RC(js_consumer_add(s, &pc, &push), 0);
    pub("pl", "x");
    settle();
    REJECT(js_consumer_next(NULL, 0, &m), JS_EMISUSE, "consumer");
    REJECT(js_consumer_next((js_consumer *)s, 0, &m), JS_EMISUSE, "consumer");
    REJECT(js_consumer_next(k, 0, NULL), JS_EINVAL, "out");
    REJECT(js_consumer_next(push, 0, &m), JS_EINVAL, "push");
    ck_assert_ptr_null(m);
    REJECT(js_consumer_fetch(NULL, v, 4, NULL, &n), JS_EMISUSE, "consumer");
    ck_assert_uint_eq(n, 0);
    REJECT(js_consumer_fetch((js_consumer *)S, v, 4, NULL, &n), JS_EMISUSE,
           "consumer");
    REJECT(js_consumer_fetch(k, NULL, 4, NULL, &n), JS_EINVAL, "msgs");
    REJECT(js_consumer_fetch(k, v, 4, NULL, NULL), JS_EINVAL, "n");
    REJECT(js_consumer_fetch(k, v, 0, NULL, &n), JS_EINVAL, "max_msgs");
    REJECT(js_consumer_fetch(push, v, 4, NULL, &n), JS_EINVAL, "push");
    o.version = 0;
    REJECT(js_consumer_fetch(k, v, 4, &o, &n), JS_EINVAL, "version");
    o.version = JS_FETCH_OPTS_VERSION + 1;
    REJECT(js_consumer_fetch(k, v, 4, &o, &n), JS_EINVAL, "version");
    o.version = JS_FETCH_OPTS_VERSION;
    o.max_bytes = -1;
    REJECT(js_consumer_fetch(k, v, 4, &o, &n), JS_EINVAL, "max_bytes");
    ck_assert_uint_eq(n, 0);
    /* Nothing was delivered by the refusals. */
    CHECK_RC(js_consumer_next(k, 0, &m), 0);
    ck_assert_uint_eq(js_msg_seq(m), 1);
    CHECK_RC(js_msg_ack_sync(m), 0);
    js_msg_free(m);
    js_consumer_release(push);
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_fetch_past_the_consumer_limits_is_einval) {
    js_stream *s = add_stream("FL", "fl");
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    js_consumer *k;
    js_msg *v[8];
    size_t n;
    js_fetch_opts o = JS_FETCH_OPTS_INIT;
    c.durable_name = "d";
    c.max_batch = 2;
    c.max_bytes = 100;
    c.max_expires = SEC;
    CHECK_RC(js_consumer_add(s, &c, &k), 0);
    pub("fl", "x");
    settle();
    REJECT(js_consumer_fetch(k, v, 3, NULL, &n), JS_EINVAL, "MaxRequestBatch");
    o.max_bytes = 101;
    REJECT(js_consumer_fetch(k, v, 2, &o, &n), JS_EINVAL,
           "MaxRequestMaxBytes");
    o.max_bytes = 0;
    o.timeout = 2 * SEC;
    REJECT(js_consumer_fetch(k, v, 2, &o, &n), JS_EINVAL,
           "MaxRequestExpires");
    o.timeout = -1; /* no limit: past any max_expires */
    REJECT(js_consumer_fetch(k, v, 2, &o, &n), JS_EINVAL,
           "MaxRequestExpires");
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_subscribe_and_dispatch_refusals) {
    js_stream *s = add_stream("SB", "sb");
    js_consumer *pull = add_pull(s, "pull");
    js_consumer_config pc = JS_CONSUMER_CONFIG_INIT;
    js_consumer *push;
    js_sub *sub = (js_sub *)&sub;
    int got = 0;
    pc.durable_name = "push";
    pc.deliver_subject = "deliver.sb";
    CHECK_RC(js_consumer_add(s, &pc, &push), 0);
    settle();
    REJECT(js_consumer_subscribe(NULL, on_msg, &got, &sub), JS_EMISUSE,
           "consumer");
    REJECT(js_consumer_subscribe((js_consumer *)s, on_msg, &got, &sub),
           JS_EMISUSE, "consumer");
    REJECT(js_consumer_subscribe(push, NULL, &got, &sub), JS_EINVAL, "cb");
    REJECT(js_consumer_subscribe(push, on_msg, &got, NULL), JS_EINVAL, "out");
    REJECT(js_consumer_subscribe(pull, on_msg, &got, &sub), JS_EINVAL,
           "pull");
    CHECK_RC(js_sub_unsubscribe(NULL), 0);
    REJECT(js_sub_unsubscribe((js_sub *)push), JS_EMISUSE, "subscription");
    CHECK_RC(js_consumer_subscribe(push, on_msg, &got, &sub), 0);
    REJECT(js_consumer_subscribe(push, on_msg, &got, &sub), JS_EBUSY, NULL);
    REJECT(js_dispatch(NULL, 0), JS_EMISUSE, "store");
    REJECT(js_dispatch((js_store *)sub, 0), JS_EMISUSE, "store");
    REJECT(js_dispatcher_start(NULL, 1), JS_EMISUSE, "store");
    REJECT(js_dispatcher_start((js_store *)s, 1), JS_EMISUSE, "store");
    REJECT(js_dispatcher_start(S, 0), JS_EINVAL, "threads");
    REJECT(js_dispatcher_start(S, 65), JS_EINVAL, "threads");
    REJECT(js_dispatcher_start(S, UINT_MAX), JS_EINVAL, "threads");
    REJECT(js_dispatcher_stop(NULL), JS_EMISUSE, "store");
    REJECT(js_dispatcher_stop((js_store *)s), JS_EMISUSE, "store");
    CHECK_RC(js_dispatcher_stop(S), 0);
    REJECT(js_events_set(NULL, NULL, NULL), JS_EMISUSE, "store");
    REJECT(js_events_set((js_store *)push, NULL, NULL), JS_EMISUSE, "store");
    CHECK_RC(js_events_set(S, NULL, NULL), 0);
    pub("sb", "x");
    ck_assert_int_ge(js_dispatch(S, 0), 1);
    ck_assert_int_eq(got, 1);
    CHECK_RC(js_sub_unsubscribe(sub), 0);
    js_consumer_release(push);
    js_consumer_release(pull);
    js_stream_release(s);
}
END_TEST

START_TEST(test_acks_and_metadata_refusals) {
    js_stream *s = add_stream("AK", "ak");
    js_consumer *k = add_pull(s, "dur");
    js_consumer_config nc = JS_CONSUMER_CONFIG_INIT;
    js_consumer *none;
    js_msg *m, *got, *wrong = (js_msg *)k;
    js_msg_meta meta = JS_MSG_META_INIT;
    nc.durable_name = "none";
    nc.ack_policy = JS_ACK_NONE;
    CHECK_RC(js_consumer_add(s, &nc, &none), 0);
    pub("ak", "x");
    CHECK_RC(js_msg_get(s, 1, &got), 0);
    CHECK_RC(js_consumer_next(k, 0, &m), 0);
    settle();
    for (int i = 0; i < 2; i++) {
        js_msg *x = i ? wrong : NULL;
        REJECT(js_msg_ack(x), JS_EMISUSE, "message");
        REJECT(js_msg_ack_sync(x), JS_EMISUSE, "message");
        REJECT(js_msg_nak(x, 0), JS_EMISUSE, "message");
        REJECT(js_msg_in_progress(x), JS_EMISUSE, "message");
        REJECT(js_msg_term(x, NULL), JS_EMISUSE, "message");
        REJECT(js_msg_metadata(x, &meta), JS_EMISUSE, "message");
    }
    /* A message read with js_msg_get() came from no consumer. */
    REJECT(js_msg_ack(got), JS_EINVAL, "consumer");
    REJECT(js_msg_ack_sync(got), JS_EINVAL, "consumer");
    REJECT(js_msg_nak(got, 0), JS_EINVAL, "consumer");
    REJECT(js_msg_in_progress(got), JS_EINVAL, "consumer");
    REJECT(js_msg_term(got, "r"), JS_EINVAL, "consumer");
    REJECT(js_msg_metadata(got, &meta), JS_EINVAL, "consumer");
    REJECT(js_msg_metadata(m, NULL), JS_EINVAL, "meta");
    meta.version = 0;
    REJECT(js_msg_metadata(m, &meta), JS_EINVAL, "meta");
    meta.version = JS_MSG_META_VERSION + 1;
    REJECT(js_msg_metadata(m, &meta), JS_EINVAL, "meta");
    js_msg *nm;
    CHECK_RC(js_consumer_next(none, 0, &nm), 0);
    settle();
    REJECT(js_msg_ack(nm), JS_EINVAL, "ack policy");
    REJECT(js_msg_nak(nm, 0), JS_EINVAL, "ack policy");
    js_msg_free(nm);
    /* A negative nak delay is no delay, as NATS takes it. */
    CHECK_RC(js_msg_nak(m, INT64_MIN), 0);
    js_msg_free(m);
    CHECK_RC(js_consumer_next(k, 0, &m), 0);
    ck_assert_uint_eq(js_msg_seq(m), 1);
    CHECK_RC(js_msg_ack_sync(m), 0);
    js_msg_free(m);
    js_msg_free(got);
    js_consumer_release(none);
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_consumer_info_refusals) {
    js_stream *s = add_stream("CI", "ci");
    js_consumer *k = add_pull(s, "dur");
    struct js_consumer_info *i = (struct js_consumer_info *)&i;
    settle();
    REJECT(js_consumer_info(NULL, &i), JS_EMISUSE, "consumer");
    REJECT(js_consumer_info((js_consumer *)s, &i), JS_EMISUSE, "consumer");
    REJECT(js_consumer_info(k, NULL), JS_EINVAL, "out");
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST
/* ---- deleted objects and closed stores ------------------------------------ */

START_TEST(test_handles_of_a_deleted_stream_are_stream_not_found) {
    js_stream *s = add_stream("DEL", "del.>");
    js_consumer *k = add_pull(s, "dur");
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    js_msg *m, *none, *v[2];
    size_t n;
    struct js_stream_info *si;
    struct js_consumer_info *ci;
    char **names;
    js_purge_opts po = JS_PURGE_OPTS_INIT;
    pub("del.1", "x");
    CHECK_RC(js_consumer_next(k, 0, &m), 0);
    CHECK_RC(js_stream_delete(S, "DEL"), 0);
    settle();
    c.durable_name = "new";
    REJECT(js_stream_info(s, &si), JS_ESTREAM_NOT_FOUND, "deleted");
    REJECT(js_stream_purge(s, &po, NULL), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_msg_get(s, 1, &none), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_msg_get_last(s, "del.1", &none), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_msg_get_next(s, NULL, 1, &none), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_msg_delete(s, 1), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_msg_erase(s, 1), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_consumer_add(s, &c, NULL), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_consumer_update(s, &c, NULL), JS_ESTREAM_NOT_FOUND, NULL);
    js_consumer *other = (js_consumer *)&other;
    REJECT(js_consumer_lookup(s, "dur", &other), JS_ESTREAM_NOT_FOUND, NULL);
    ck_assert_ptr_null(other);
    REJECT(js_consumer_delete(s, "dur"), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_consumer_names(s, &names, NULL), JS_ESTREAM_NOT_FOUND, NULL);
    /* Its consumers went with it. */
    REJECT(js_consumer_info(k, &ci), JS_ECONSUMER_NOT_FOUND, NULL);
    REJECT(js_consumer_next(k, 0, &none), JS_ECONSUMER_NOT_FOUND, NULL);
    REJECT(js_msg_ack(m), JS_ECONSUMER_NOT_FOUND, NULL);
    REJECT(js_consumer_fetch(k, v, 2, NULL, &n), JS_ECONSUMER_NOT_FOUND,
           NULL);
    js_msg_free(m);
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_handles_of_a_deleted_consumer_are_consumer_not_found) {
    js_stream *s = add_stream("DC", "dc");
    js_consumer *k = add_pull(s, "dur");
    js_consumer_config pc = JS_CONSUMER_CONFIG_INIT;
    js_consumer *push;
    js_msg *m, *none, *v[2];
    size_t n;
    struct js_consumer_info *ci;
    js_sub *sub;
    int got = 0;
    pc.durable_name = "push";
    pc.deliver_subject = "deliver.dc";
    CHECK_RC(js_consumer_add(s, &pc, &push), 0);
    pub("dc", "x");
    CHECK_RC(js_consumer_next(k, 0, &m), 0);
    CHECK_RC(js_consumer_delete(s, "dur"), 0);
    CHECK_RC(js_consumer_delete(s, "push"), 0);
    settle();
    REJECT(js_consumer_info(k, &ci), JS_ECONSUMER_NOT_FOUND, "deleted");
    REJECT(js_consumer_next(k, 0, &none), JS_ECONSUMER_NOT_FOUND, NULL);
    ck_assert_ptr_null(none);
    REJECT(js_consumer_fetch(k, v, 2, NULL, &n), JS_ECONSUMER_NOT_FOUND,
           NULL);
    REJECT(js_consumer_subscribe(push, on_msg, &got, &sub),
           JS_ECONSUMER_NOT_FOUND, NULL);
    REJECT(js_msg_ack(m), JS_ECONSUMER_NOT_FOUND, NULL);
    REJECT(js_msg_ack_sync(m), JS_ECONSUMER_NOT_FOUND, NULL);
    REJECT(js_msg_nak(m, 0), JS_ECONSUMER_NOT_FOUND, NULL);
    REJECT(js_msg_in_progress(m), JS_ECONSUMER_NOT_FOUND, NULL);
    REJECT(js_msg_term(m, NULL), JS_ECONSUMER_NOT_FOUND, NULL);
    REJECT(js_consumer_delete(s, "dur"), JS_ECONSUMER_NOT_FOUND, NULL);
    /* The message itself is still readable. */
    ck_assert_uint_eq(js_msg_seq(m), 1);
    js_msg_free(m);
    js_consumer_release(push);
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_handles_after_close_are_emisuse_and_still_released) {
    js_stream *s = add_stream("CL", "cl.>");
    js_consumer *k = add_pull(s, "dur");
    js_kv *kv = add_kv("bk");
    js_kv_keylist *keys;
    js_kv_watcher *w;
    js_msg *m, *none, *v[2];
    size_t n;
    struct js_stream_info *si;
    struct js_consumer_info *ci;
    struct js_kv_entry *e;
    const char *key;
    pub("cl.1", "x");
    CHECK_RC(js_kv_put(kv, "k", "v", 1, NULL), 0);
    CHECK_RC(js_kv_keys(kv, NULL, &keys), 0);
    CHECK_RC(js_kv_watch(kv, NULL, NULL, &w), 0);
    CHECK_RC(js_consumer_next(k, 0, &m), 0);
    CHECK_RC(js_close(S), 0);
    S = NULL;
    REJECT(js_stream_info(s, &si), JS_EMISUSE, "closed");
    REJECT(js_msg_get(s, 1, &none), JS_EMISUSE, "closed");
    REJECT(js_msg_delete(s, 1), JS_EMISUSE, "closed");
    REJECT(js_stream_purge(s, NULL, NULL), JS_EMISUSE, "closed");
    REJECT(js_consumer_add(s, NULL, NULL), JS_EMISUSE, NULL);
    REJECT(js_consumer_info(k, &ci), JS_EMISUSE, "closed");
    REJECT(js_consumer_next(k, 0, &none), JS_EMISUSE, "closed");
    REJECT(js_consumer_fetch(k, v, 2, NULL, &n), JS_EMISUSE, "closed");
    REJECT(js_msg_ack(m), JS_EMISUSE, "closed");
    REJECT(js_msg_ack_sync(m), JS_EMISUSE, "closed");
    REJECT(js_msg_nak(m, 0), JS_EMISUSE, "closed");
    REJECT(js_kv_put(kv, "k", "v", 1, NULL), JS_EMISUSE, "closed");
    REJECT(js_kv_get(kv, "k", 0, &e), JS_EMISUSE, "closed");
    REJECT(js_kv_keys_next(keys, &key), JS_EMISUSE, "closed");
    REJECT(js_kv_watcher_next(w, 0, &e), JS_EMISUSE, "closed");
    CHECK_RC(js_kv_watcher_stop(w), 0);
    js_kv_keys_free(keys);
    js_msg_free(m);
    js_kv_release(kv);
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_handles_of_a_deleted_bucket_are_stream_not_found) {
    js_kv *kv = add_kv("gone");
    js_kv_keylist *keys;
    js_kv_watcher *w;
    struct js_kv_entry *e, **h;
    struct js_kv_status *st;
    const char *key;
    uint64_t rev, purged;
    size_t n;
    CHECK_RC(js_kv_put(kv, "k", "v", 1, NULL), 0);
    CHECK_RC(js_kv_keys(kv, NULL, &keys), 0);
    CHECK_RC(js_kv_watch(kv, NULL, NULL, &w), 0);
    CHECK_RC(js_kv_delete(S, "gone"), 0);
    settle();
    REJECT(js_kv_status(kv, &st), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_kv_put(kv, "k", "v", 1, &rev), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_kv_create_key(kv, "n", "v", 1, &rev), JS_ESTREAM_NOT_FOUND,
           NULL);
    REJECT(js_kv_update_key(kv, "k", "v", 1, 1, &rev), JS_ESTREAM_NOT_FOUND,
           NULL);
    REJECT(js_kv_delete_key(kv, "k", 0), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_kv_purge_key(kv, "k", 0), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_kv_get(kv, "k", 0, &e), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_kv_history(kv, "k", &h, &n), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_kv_purge_deletes(kv, -1, &purged), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_kv_keys_next(keys, &key), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_kv_watcher_next(w, 0, &e), JS_ESTREAM_NOT_FOUND, NULL);
    js_kv_keylist *k2;
    js_kv_watcher *w2;
    /* A listing starts lazily: the first step finds the bucket gone. */
    CHECK_RC(js_kv_keys(kv, NULL, &k2), 0);
    REJECT(js_kv_keys_next(k2, &key), JS_ESTREAM_NOT_FOUND, NULL);
    js_kv_keys_free(k2);
    REJECT(js_kv_watch(kv, NULL, NULL, &w2), JS_ESTREAM_NOT_FOUND, NULL);
    REJECT(js_kv_delete(S, "gone"), JS_ESTREAM_NOT_FOUND, NULL);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    js_kv_keys_free(keys);
    js_kv_release(kv);
}
END_TEST
/* ---- key/value ------------------------------------------------------------- */

static const char *const bad_buckets[] = {
    "a.b", "a/b", "a\\b", ".", "..", "a b", "a\x01", "*", ">", "a*",
    "\xc3\xa9", "a=b",
};

START_TEST(test_kv_create_refuses_bad_configs) {
    js_kv_config c = JS_KV_CONFIG_INIT;
    js_kv *kv = (js_kv *)&kv;
    js_stream *s = add_stream("X", "x");
    settle();
    c.bucket = "b";
    REJECT(js_kv_create(NULL, &c, &kv), JS_EMISUSE, "store");
    REJECT(js_kv_create((js_store *)s, &c, &kv), JS_EMISUSE, "store");
    REJECT(js_kv_create(S, NULL, &kv), JS_EINVAL, "config");
    c.version = 0;
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "version");
    c.version = JS_KV_CONFIG_VERSION + 1;
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "version");
    c.version = JS_KV_CONFIG_VERSION;
    c.bucket = NULL;
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "bucket");
    c.bucket = "";
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "bucket");
    for (size_t i = 0; i < sizeof bad_buckets / sizeof bad_buckets[0]; i++) {
        c.bucket = bad_buckets[i];
        REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "bucket");
    }
    c.bucket = rep('b', JS_MAX_NAME_LEN - 2); /* KV_ + it: too long */
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "bucket");
    c.bucket = "b";
    c.history = -1;
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "history");
    c.history = JS_KV_MAX_HISTORY + 1;
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "history");
    c.history = INT64_MAX;
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "history");
    c.history = INT64_MIN;
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "history");
    c.history = 0;
    c.ttl = -1;
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "ttl");
    c.ttl = 1;
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "ttl");
    c.ttl = 0;
    c.storage = 2;
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "storage");
    c.storage = -1;
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "storage");
    c.storage = 0;
    c.sync = JS_SYNC_NONE + 1;
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "sync");
    c.sync = 0;
    c.description = rep('d', JS_MAX_DESCRIPTION_LEN + 1);
    REJECT(js_kv_create(S, &c, &kv), JS_EINVAL, "description");
    c.description = NULL;
    /* The longest name fits; negative sizes mean unlimited, as NATS. */
    c.bucket = rep('b', JS_MAX_NAME_LEN - 3);
    c.max_value_size = INT32_MIN;
    c.max_bytes = INT64_MIN;
    CHECK_RC(js_kv_create(S, &c, &kv), 0);
    struct js_kv_status *st;
    CHECK_RC(js_kv_status(kv, &st), 0);
    ck_assert_int_eq(st->config->max_value_size, -1);
    ck_assert_int_eq(st->config->max_bytes, -1);
    js_kv_status_free(st);
    js_kv_release(kv);
    js_stream_release(s);
}
END_TEST

START_TEST(test_kv_open_update_delete_refusals) {
    js_kv *kv = add_kv("b");
    js_kv *out = (js_kv *)&out;
    js_kv_config c = JS_KV_CONFIG_INIT;
    js_stream *fake = add_stream("KV_fake", "fake.>");
    settle();
    REJECT(js_kv_open(NULL, "b", &out), JS_EMISUSE, "store");
    REJECT(js_kv_open((js_store *)kv, "b", &out), JS_EMISUSE, "store");
    REJECT(js_kv_open(S, NULL, &out), JS_EINVAL, "bucket");
    REJECT(js_kv_open(S, "b", NULL), JS_EINVAL, "out");
    for (size_t i = 0; i < sizeof bad_buckets / sizeof bad_buckets[0]; i++)
        REJECT(js_kv_open(S, bad_buckets[i], &out), JS_EINVAL, "bucket");
    REJECT(js_kv_open(S, "none", &out), JS_ESTREAM_NOT_FOUND, "none");
    REJECT(js_kv_open(S, "fake", &out), JS_ESTREAM_NOT_FOUND, "KV_fake");
    c.bucket = "b";
    REJECT(js_kv_update(NULL, &c), JS_EMISUSE, "store");
    REJECT(js_kv_update((js_store *)kv, &c), JS_EMISUSE, "store");
    REJECT(js_kv_update(S, NULL), JS_EINVAL, "config");
    c.version = 0;
    REJECT(js_kv_update(S, &c), JS_EINVAL, "version");
    c.version = JS_KV_CONFIG_VERSION;
    c.history = 65;
    REJECT(js_kv_update(S, &c), JS_EINVAL, "history");
    c.history = 5;
    c.storage = JS_STORAGE_MEMORY;
    REJECT(js_kv_update(S, &c), JS_EUPDATE, "storage");
    c.storage = 0;
    c.bucket = "none";
    REJECT(js_kv_update(S, &c), JS_ESTREAM_NOT_FOUND, "none");
    c.bucket = "fake";
    REJECT(js_kv_update(S, &c), JS_ESTREAM_NOT_FOUND, "KV_fake");
    c.bucket = "a/b";
    REJECT(js_kv_update(S, &c), JS_EINVAL, "bucket");
    REJECT(js_kv_delete(NULL, "b"), JS_EMISUSE, "store");
    REJECT(js_kv_delete((js_store *)kv, "b"), JS_EMISUSE, "store");
    REJECT(js_kv_delete(S, NULL), JS_EINVAL, "bucket");
    for (size_t i = 0; i < sizeof bad_buckets / sizeof bad_buckets[0]; i++)
        REJECT(js_kv_delete(S, bad_buckets[i]), JS_EINVAL, "bucket");
    REJECT(js_kv_delete(S, "none"), JS_ESTREAM_NOT_FOUND, "none");
    REJECT(js_kv_delete(S, "fake"), JS_ESTREAM_NOT_FOUND, "KV_fake");
    js_kv_release(NULL);
    js_kv_release((js_kv *)fake);
    js_kv_release((js_kv *)S);
    js_stream_release(fake);
    js_kv_release(kv);
}
END_TEST

static const char *const bad_keys[] = {
    "", ".", ".a", "a.", "a..b", "a b", " ", "a\tb", "a\x01", "a*", "*",
    "a>", ">", "a.*", "\xc3\xa9", "a\\b", "a:b", "a$b",
};
#define NBADKEY (sizeof bad_keys / sizeof bad_keys[0])

START_TEST(test_kv_writes_refuse_bad_keys_values_and_handles) {
    js_kv *kv = add_kv("w");
    js_stream *s = add_stream("WS", "ws");
    js_kv *wrong = (js_kv *)s;
    uint64_t rev = 77;
    CHECK_RC(js_kv_put(kv, "k", "v", 1, &rev), 0);
    settle();
    for (int i = 0; i < 2; i++) {
        js_kv *x = i ? wrong : NULL;
        REJECT(js_kv_put(x, "k", "v", 1, &rev), JS_EMISUSE, "bucket");
        REJECT(js_kv_create_key(x, "k", "v", 1, &rev), JS_EMISUSE, "bucket");
        REJECT(js_kv_update_key(x, "k", "v", 1, 1, &rev), JS_EMISUSE,
               "bucket");
        REJECT(js_kv_delete_key(x, "k", 0), JS_EMISUSE, "bucket");
        REJECT(js_kv_purge_key(x, "k", 0), JS_EMISUSE, "bucket");
    }
    REJECT(js_kv_put(kv, NULL, "v", 1, &rev), JS_EINVAL, "key");
    REJECT(js_kv_create_key(kv, NULL, "v", 1, &rev), JS_EINVAL, "key");
    REJECT(js_kv_update_key(kv, NULL, "v", 1, 1, &rev), JS_EINVAL, "key");
    REJECT(js_kv_delete_key(kv, NULL, 0), JS_EINVAL, "key");
    REJECT(js_kv_purge_key(kv, NULL, 0), JS_EINVAL, "key");
    for (size_t i = 0; i < NBADKEY; i++) {
        const char *k = bad_keys[i];
        REJECT(js_kv_put(kv, k, "v", 1, &rev), JS_EINVAL, "key");
        REJECT(js_kv_create_key(kv, k, "v", 1, &rev), JS_EINVAL, "key");
        REJECT(js_kv_update_key(kv, k, "v", 1, 1, &rev), JS_EINVAL, "key");
        REJECT(js_kv_delete_key(kv, k, 0), JS_EINVAL, "key");
        REJECT(js_kv_purge_key(kv, k, 0), JS_EINVAL, "key");
    }
    /* $KV.w. is 6 bytes: a key may have the rest of the subject limit. */
    const char *lng = rep('k', JS_MAX_SUBJECT_LEN - 6 + 1);
    REJECT(js_kv_put(kv, lng, "v", 1, &rev), JS_EINVAL, "key");
    REJECT(js_kv_put(kv, "k", NULL, 1, &rev), JS_EINVAL, "value");
    REJECT(js_kv_create_key(kv, "n", NULL, 1, &rev), JS_EINVAL, "value");
    REJECT(js_kv_update_key(kv, "k", NULL, 1, 1, &rev), JS_EINVAL, "value");
    char *big = calloc(1, JS_MAX_PAYLOAD + 1);
    REJECT(js_kv_put(kv, "k", big, JS_MAX_PAYLOAD + 1, &rev), JS_EMSG_SIZE,
           NULL);
    REJECT(js_kv_put(kv, "k", big, SIZE_MAX, &rev), JS_EMSG_SIZE, NULL);
    free(big);
    ck_assert_uint_eq(rev, 1);
    CHECK_RC(js_kv_put(kv, rep('k', JS_MAX_SUBJECT_LEN - 6), "v", 1, &rev),
             0);
    js_stream_release(s);
    js_kv_release(kv);
}
END_TEST

START_TEST(test_kv_value_size_limit_refuses_and_changes_nothing) {
    js_kv_config c = JS_KV_CONFIG_INIT;
    js_kv *kv;
    c.bucket = "small";
    c.max_value_size = 8;
    CHECK_RC(js_kv_create(S, &c, &kv), 0);
    CHECK_RC(js_kv_put(kv, "k", "12345678", 8, NULL), 0);
    settle();
    REJECT(js_kv_put(kv, "k", "123456789", 9, NULL), JS_EMSG_SIZE, NULL);
    REJECT(js_kv_create_key(kv, "n", "123456789", 9, NULL), JS_EMSG_SIZE,
           NULL);
    REJECT(js_kv_update_key(kv, "k", "123456789", 9, 1, NULL), JS_EMSG_SIZE,
           NULL);
    js_kv_release(kv);
}
END_TEST

START_TEST(test_kv_reads_refuse_bad_keys_and_handles) {
    js_kv *kv = add_kv("r");
    js_stream *s = add_stream("RS", "rs");
    struct js_kv_entry *e = (struct js_kv_entry *)&e, **h;
    struct js_kv_status *st;
    size_t n;
    uint64_t purged;
    CHECK_RC(js_kv_put(kv, "k", "v", 1, NULL), 0);
    settle();
    for (int i = 0; i < 2; i++) {
        js_kv *x = i ? (js_kv *)s : NULL;
        REJECT(js_kv_get(x, "k", 0, &e), JS_EMISUSE, "bucket");
        REJECT(js_kv_status(x, &st), JS_EMISUSE, "bucket");
        REJECT(js_kv_history(x, "k", &h, &n), JS_EMISUSE, "bucket");
        REJECT(js_kv_purge_deletes(x, -1, &purged), JS_EMISUSE, "bucket");
    }
    REJECT(js_kv_get(kv, NULL, 0, &e), JS_EINVAL, "key");
    REJECT(js_kv_get(kv, "k", 0, NULL), JS_EINVAL, "out");
    REJECT(js_kv_status(kv, NULL), JS_EINVAL, "out");
    REJECT(js_kv_history(kv, NULL, &h, &n), JS_EINVAL, "key");
    REJECT(js_kv_history(kv, "k", NULL, &n), JS_EINVAL, "entries");
    REJECT(js_kv_history(kv, "k", &h, NULL), JS_EINVAL, "n");
    for (size_t i = 0; i < NBADKEY; i++) {
        REJECT(js_kv_get(kv, bad_keys[i], 0, &e), JS_EINVAL, "key");
        REJECT(js_kv_history(kv, bad_keys[i], &h, &n), JS_EINVAL, "key");
    }
    REJECT(js_kv_get(kv, "nokey", 0, &e), JS_EKEY_NOT_FOUND, NULL);
    REJECT(js_kv_get(kv, "k", UINT64_MAX, &e), JS_EKEY_NOT_FOUND, NULL);
    REJECT(js_kv_history(kv, "nokey", &h, &n), JS_EKEY_NOT_FOUND, NULL);
    js_kv_entry_free(NULL);
    js_kv_status_free(NULL);
    js_kv_history_free(NULL, 0);
    js_kv_history_free(NULL, 5);
    js_stream_release(s);
    js_kv_release(kv);
}
END_TEST

static const char *const bad_filters[] = {
    "", ".", "a.", ".a", "a..b", "a b", "a*", "*a", "a>", ">.a", "a.>.b",
    "a\x01", "\xc3\xa9",
};

static void on_entry(js_kv_watcher *w, struct js_kv_entry *e, void *ctx) {
    js_kv_entry_free(e);
}

START_TEST(test_kv_keys_and_watch_refusals) {
    js_kv *kv = add_kv("kw");
    js_stream *s = add_stream("KS", "ks");
    js_kv_keylist *keys = (js_kv_keylist *)&keys;
    js_kv_watcher *w = (js_kv_watcher *)&w;
    js_kv_watch_opts o = JS_KV_WATCH_OPTS_INIT;
    struct js_kv_entry *e;
    const char *key;
    CHECK_RC(js_kv_put(kv, "k", "v", 1, NULL), 0);
    settle();
    REJECT(js_kv_keys(NULL, NULL, &keys), JS_EMISUSE, "bucket");
    REJECT(js_kv_keys((js_kv *)s, NULL, &keys), JS_EMISUSE, "bucket");
    REJECT(js_kv_keys(kv, NULL, NULL), JS_EINVAL, "out");
    REJECT(js_kv_watch(NULL, NULL, NULL, &w), JS_EMISUSE, "bucket");
    REJECT(js_kv_watch((js_kv *)s, NULL, NULL, &w), JS_EMISUSE, "bucket");
    REJECT(js_kv_watch(kv, NULL, NULL, NULL), JS_EINVAL, "out");
    REJECT(js_kv_watch_subscribe(NULL, NULL, NULL, on_entry, NULL, &w),
           JS_EMISUSE, "bucket");
    REJECT(js_kv_watch_subscribe(kv, NULL, NULL, NULL, NULL, &w), JS_EINVAL,
           "cb");
    REJECT(js_kv_watch_subscribe(kv, NULL, NULL, on_entry, NULL, NULL),
           JS_EINVAL, "out");
    for (size_t i = 0; i < sizeof bad_filters / sizeof bad_filters[0]; i++) {
        REJECT(js_kv_keys(kv, bad_filters[i], &keys), JS_EINVAL, "filter");
        REJECT(js_kv_watch(kv, bad_filters[i], NULL, &w), JS_EINVAL,
               "filter");
    }
    o.version = 0;
    REJECT(js_kv_watch(kv, NULL, &o, &w), JS_EINVAL, "version");
    o.version = JS_KV_WATCH_OPTS_VERSION + 1;
    REJECT(js_kv_watch(kv, NULL, &o, &w), JS_EINVAL, "version");
    o.version = JS_KV_WATCH_OPTS_VERSION;
    o.include_history = o.updates_only = 1;
    REJECT(js_kv_watch(kv, NULL, &o, &w), JS_EINVAL, "updates_only");
    REJECT(js_kv_watch_subscribe(kv, NULL, &o, on_entry, NULL, &w),
           JS_EINVAL, "updates_only");
    /* Listings and watchers given the wrong handles. */
    CHECK_RC(js_kv_keys(kv, NULL, &keys), 0);
    CHECK_RC(js_kv_watch_subscribe(kv, NULL, NULL, on_entry, NULL, &w), 0);
    REJECT(js_kv_keys_next(NULL, &key), JS_EMISUSE, "listing");
    REJECT(js_kv_keys_next((js_kv_keylist *)kv, &key), JS_EMISUSE,
           "listing");
    REJECT(js_kv_keys_next((js_kv_keylist *)w, &key), JS_EMISUSE, "listing");
    REJECT(js_kv_keys_next(keys, NULL), JS_EINVAL, "key");
    REJECT(js_kv_watcher_next(NULL, 0, &e), JS_EMISUSE, "watcher");
    REJECT(js_kv_watcher_next((js_kv_watcher *)keys, 0, &e), JS_EMISUSE,
           "watcher");
    REJECT(js_kv_watcher_next(w, 0, &e), JS_EINVAL, "callback");
    CHECK_RC(js_kv_watcher_stop(NULL), 0);
    REJECT(js_kv_watcher_stop((js_kv_watcher *)keys), JS_EMISUSE, "watcher");
    REJECT(js_kv_watcher_stop((js_kv_watcher *)kv), JS_EMISUSE, "watcher");
    js_kv_keys_free(NULL);
    js_kv_keys_free((js_kv_keylist *)w); /* not a listing: ignored */
    CHECK_RC(js_kv_watcher_stop(w), 0);
    CHECK_RC(js_kv_watch(kv, NULL, NULL, &w), 0);
    REJECT(js_kv_watcher_next(w, 0, NULL), JS_EINVAL, "entry");
    CHECK_RC(js_kv_watcher_stop(w), 0);
    CHECK_RC(js_kv_keys_next(keys, &key), 1);
    ck_assert_str_eq(key, "k");
    js_kv_keys_free(keys);
    js_stream_release(s);
    js_kv_release(kv);
}
END_TEST

/* ---- conflicts and denials ---------------------------------------------------- */

START_TEST(test_conflicting_creates_change_nothing) {
    js_stream *s = add_stream("CF", "cf.>");
    js_consumer *k = add_pull(s, "dur");
    js_kv *kv = add_kv("cfb");
    js_stream_config sc = JS_STREAM_CONFIG_INIT;
    js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
    js_kv_config kc = JS_KV_CONFIG_INIT;
    const char *sub[1] = {"cf.>"};
    settle();
    sc.name = "CF";
    sc.subjects = sub;
    sc.num_subjects = 1;
    sc.max_msgs = 10;
    REJECT(js_stream_add(S, &sc, NULL), JS_ESTREAM_EXISTS, "different");
    sc.name = "OTHER";
    sub[0] = "cf.x.>";
    REJECT(js_stream_add(S, &sc, NULL), JS_ESUBJECT_OVERLAP, "overlap");
    sc.name = "CF";
    sub[0] = "$KV.cfb.x";
    REJECT(js_stream_update(S, &sc), JS_ESUBJECT_OVERLAP, "overlap");
    cc.durable_name = "dur";
    cc.ack_wait = 5 * SEC;
    REJECT(js_consumer_add(s, &cc, NULL), JS_ECONSUMER_EXISTS, NULL);
    kc.bucket = "cfb";
    kc.history = 2;
    REJECT(js_kv_create(S, &kc, NULL), JS_ESTREAM_EXISTS, "cfb");
    js_kv_release(kv);
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_max_consumers_and_denials_change_nothing) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
    js_stream *s;
    js_consumer *k;
    c.name = "MC";
    c.max_consumers = 1;
    c.deny_delete = 1;
    c.deny_purge = 1;
    CHECK_RC(js_stream_add(S, &c, &s), 0);
    k = add_pull(s, "one");
    pub("MC", "x");
    settle();
    cc.durable_name = "two";
    REJECT(js_consumer_add(s, &cc, NULL), JS_EMAX_CONSUMERS, NULL);
    REJECT(js_msg_delete(s, 1), JS_EDELETE_DENIED, NULL);
    REJECT(js_msg_erase(s, 1), JS_EDELETE_DENIED, NULL);
    REJECT(js_stream_purge(s, NULL, NULL), JS_EPURGE_DENIED, NULL);
    c.deny_delete = 0;
    REJECT(js_stream_update(S, &c), JS_EUPDATE, "deny_delete");
    c.deny_delete = 1;
    c.sealed = 1;
    CHECK_RC(js_stream_update(S, &c), 0);
    settle();
    REJECT(js_publish(S, "MC", NULL, 0, "y", 1, NULL), JS_ESEALED, "sealed");
    REJECT(js_msg_delete(s, 1), JS_ESEALED, NULL);
    c.sealed = 0;
    REJECT(js_stream_update(S, &c), JS_EUPDATE, "sealed");
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

/* KV keys may hold '/', but a key is a subject, never a path: no file
 * is named after one. */
START_TEST(test_kv_keys_with_slashes_never_become_paths) {
    js_kv *kv = add_kv("paths");
    static const char *const keys[] = {"etc/passwd", "/abs", "a/./b", "x/"};
    struct js_kv_entry *e;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK_RC(js_kv_put(kv, keys[i], "v", 1, NULL), 0);
    settle();
    snap sn;
    snap_take(&sn, base_dir);
    for (size_t i = 0; i < sn.n; i++)
        ck_assert_msg(!strstr(sn.v[i].path, "passwd") &&
                          !strstr(sn.v[i].path, "abs"),
                      "a key became a path: %s", sn.v[i].path);
    snap_free(&sn);
    CHECK_RC(js_kv_get(kv, "etc/passwd", 0, &e), 0);
    ck_assert_str_eq(e->key, "etc/passwd");
    js_kv_entry_free(e);
    js_kv_release(kv);
}
END_TEST

/* ---- the dispatcher ------------------------------------------------------------ */

typedef struct cb_probe {
    int stop_rc, close_rc, calls;
} cb_probe;

static void probing_cb(js_consumer *c, js_msg *m, void *ctx) {
    cb_probe *p = ctx;
    if (!m)
        return;
    /* A callback may not stop the threads running it, nor close. */
    p->stop_rc = js_dispatcher_stop(S);
    p->close_rc = js_close(S);
    js_msg_free(m);
    __atomic_add_fetch(&p->calls, 1, __ATOMIC_SEQ_CST);
}

START_TEST(test_dispatcher_misuse_from_callbacks_and_twice) {
    js_stream *s = add_stream("DS", "ds");
    js_consumer_config pc = JS_CONSUMER_CONFIG_INIT;
    js_consumer *push;
    js_sub *sub;
    cb_probe p = {1, 1, 0};
    pc.durable_name = "push";
    pc.deliver_subject = "deliver.ds";
    pc.ack_policy = JS_ACK_NONE;
    CHECK_RC(js_consumer_add(s, &pc, &push), 0);
    CHECK_RC(js_consumer_subscribe(push, probing_cb, &p, &sub), 0);
    CHECK_RC(js_dispatcher_start(S, 2), 0);
    REJECT(js_dispatcher_start(S, 1), JS_EBUSY, "already");
    pub("ds", "x");
    for (int i = 0; i < 5000 && !__atomic_load_n(&p.calls, __ATOMIC_SEQ_CST);
         i++)
        usleep(1000);
    ck_assert_int_eq(__atomic_load_n(&p.calls, __ATOMIC_SEQ_CST), 1);
    CHECK_RC(p.stop_rc, JS_EMISUSE);
    CHECK_RC(p.close_rc, JS_EMISUSE);
    CHECK_RC(js_dispatcher_stop(S), 0);
    CHECK_RC(js_dispatcher_stop(S), 0);
    CHECK_RC(js_sub_unsubscribe(sub), 0);
    js_consumer_release(push);
    js_stream_release(s);
}
END_TEST

/* ---- absurd durations ------------------------------------------------------------ */

/* Durations and timeouts up to INT64_MAX mean "practically never": no
 * deadline may wrap into the past (and so fire at once). */
START_TEST(test_huge_ack_wait_and_nak_delay_do_not_wrap) {
    js_stream *s = add_stream("HW", "hw");
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    js_consumer *k, *b;
    js_msg *m, *none;
    int64_t backoff[1] = {INT64_MAX};
    c.durable_name = "wait";
    c.ack_wait = INT64_MAX;
    c.inactive_threshold = INT64_MAX;
    CHECK_RC(js_consumer_add(s, &c, &k), 0);
    c.durable_name = "backoff";
    c.ack_wait = 0;
    c.backoff = backoff;
    c.num_backoff = 1;
    CHECK_RC(js_consumer_add(s, &c, &b), 0);
    pub("hw", "x");
    CHECK_RC(js_consumer_next(k, INT64_MAX, &m), 0);
    js_msg_free(m);
    CHECK_RC(js_consumer_next(b, INT64_MAX, &m), 0);
    tu_clock_advance(&fake_now, 3600 * SEC);
    CHECK_RC(js_consumer_next(k, 0, &none), JS_ETIMEOUT);
    CHECK_RC(js_consumer_next(b, 0, &none), JS_ETIMEOUT);
    CHECK_RC(js_msg_nak(m, INT64_MAX), 0);
    js_msg_free(m);
    tu_clock_advance(&fake_now, 3600 * SEC);
    CHECK_RC(js_consumer_next(b, 0, &none), JS_ETIMEOUT);
    CHECK_RC(js_dispatch(S, 0), 0);
    js_consumer_release(b);
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_huge_inactive_threshold_keeps_an_ephemeral) {
    js_stream *s = add_stream("HI", "hi");
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    js_consumer *k;
    char **names;
    size_t n;
    c.inactive_threshold = INT64_MAX;
    CHECK_RC(js_consumer_add(s, &c, &k), 0);
    tu_clock_advance(&fake_now, 24 * 3600 * SEC);
    CHECK_RC(js_dispatch(S, 0), 0);
    CHECK_RC(js_consumer_names(s, &names, &n), 0);
    ck_assert_uint_eq(n, 1);
    js_names_free(names);
    js_consumer_release(k);
    js_stream_release(s);
}
END_TEST

START_TEST(test_huge_stream_durations_keep_messages) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    js_stream *s;
    struct js_stream_info *i;
    const char hdr[] = "NATS/1.0\r\nNats-Msg-Id: a\r\n\r\n";
    js_pub_ack a = JS_PUB_ACK_INIT;
    c.name = "HD";
    c.max_age = INT64_MAX;
    c.duplicate_window = INT64_MAX;
    CHECK_RC(js_stream_add(S, &c, &s), 0);
    CHECK_RC(js_publish(S, "HD", hdr, sizeof hdr - 1, "x", 1, &a), 0);
    tu_clock_advance(&fake_now, 365 * 24 * 3600 * SEC);
    CHECK_RC(js_publish(S, "HD", hdr, sizeof hdr - 1, "x", 1, &a), 0);
    ck_assert_int_eq(a.duplicate, 1);
    CHECK_RC(js_stream_info(s, &i), 0);
    ck_assert_uint_eq(i->state->msgs, 1);
    js_stream_info_free(i);
    js_stream_release(s);
}
END_TEST

START_TEST(test_huge_timeouts_return_what_is_there) {
    js_kv *kv = add_kv("ht");
    js_kv_watcher *w;
    struct js_kv_entry *e;
    js_stream *s = add_stream("HT", "ht");
    js_consumer_config pc = JS_CONSUMER_CONFIG_INIT;
    js_consumer *push;
    js_sub *sub;
    int got = 0;
    js_fetch_opts o = JS_FETCH_OPTS_INIT;
    js_msg *v[2];
    size_t n;
    CHECK_RC(js_kv_put(kv, "k", "v", 1, NULL), 0);
    CHECK_RC(js_kv_watch(kv, NULL, NULL, &w), 0);
    CHECK_RC(js_kv_watcher_next(w, INT64_MAX, &e), 0);
    ck_assert_ptr_nonnull(e);
    js_kv_entry_free(e);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    pc.durable_name = "push";
    pc.deliver_subject = "deliver.ht";
    pc.ack_policy = JS_ACK_NONE;
    CHECK_RC(js_consumer_add(s, &pc, &push), 0);
    CHECK_RC(js_consumer_subscribe(push, on_msg, &got, &sub), 0);
    pub("ht", "x");
    ck_assert_int_ge(js_dispatch(S, INT64_MAX), 1);
    ck_assert_int_eq(got, 1);
    js_consumer *pull = add_pull(s, "pull");
    o.timeout = INT64_MAX;
    CHECK_RC(js_consumer_fetch(pull, v, 2, &o, &n), 0);
    ck_assert_uint_eq(n, 1);
    js_msg_free(v[0]);
    js_consumer_release(pull);
    CHECK_RC(js_sub_unsubscribe(sub), 0);
    js_consumer_release(push);
    js_stream_release(s);
    js_kv_release(kv);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *misuse_suite(void) {
    Suite *s = suite_create("misuse");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_version_and_strerror_never_fail);
    tcase_add_test(tc, test_errmsg_is_reset_by_the_next_call_and_kept_by_strerror);
    tcase_add_test(tc, test_errcode_nats_follows_the_last_failure);
    tcase_add_test(tc, test_vfs_register_refuses_null_and_bad_tables);
    tcase_add_test(tc, test_vfs_unregister_and_find_of_unknown_names);
    tcase_add_test(tc, test_open_refuses_null_and_empty_arguments);
    tcase_add_test(tc, test_open_refuses_bad_options_before_touching_disk);
    tcase_add_test(tc, test_open_of_a_directory_without_catalogue_and_no_create);
    tcase_add_test(tc, test_open_of_a_regular_file_fails_and_leaves_it);
    tcase_add_test(tc, test_second_open_is_elocked_and_changes_nothing);
    tcase_add_test(tc, test_close_and_flush_of_null_and_wrong_handles);
    tcase_add_test(tc, test_absurd_block_sizes_are_raised_or_refused);
    tcase_add_test(tc, test_stream_add_refuses_null_store_and_config);
    tcase_add_test(tc, test_stream_add_refuses_unknown_config_versions);
    tcase_add_test(tc, test_stream_add_refuses_bad_names);
    tcase_add_test(tc, test_stream_add_refuses_bad_subjects);
    tcase_add_test(tc, test_stream_add_refuses_unknown_enum_values);
    tcase_add_test(tc, test_stream_add_refuses_bad_durations_and_flags);
    tcase_add_test(tc, test_stream_limits_below_minus_one_mean_unlimited);
    tcase_add_test(tc, test_sequence_space_does_not_wrap);
    tcase_add_test(tc, test_stream_update_refusals_change_nothing);
    tcase_add_test(tc, test_stream_lookup_names_and_delete_refusals);
    tcase_add_test(tc, test_stream_info_and_release_of_null_and_wrong_handles);
    tcase_add_test(tc, test_purge_refusals_change_nothing);
    tcase_add_test(tc, test_publish_refuses_null_store_and_bad_subjects);
    tcase_add_test(tc, test_publish_takes_non_ascii_subject_bytes_as_they_are);
    tcase_add_test(tc, test_publish_refuses_bad_pointers_sizes_and_headers);
    tcase_add_test(tc, test_publish_batch_refusals);
    tcase_add_test(tc, test_msg_reads_refuse_null_wrong_and_absent);
    tcase_add_test(tc, test_msg_delete_and_erase_refusals_change_nothing);
    tcase_add_test(tc, test_msg_accessors_of_null_and_wrong_handles);
    tcase_add_test(tc, test_consumer_add_refuses_null_and_wrong_handles);
    tcase_add_test(tc, test_consumer_add_refuses_bad_names);
    tcase_add_test(tc, test_consumer_empty_names_are_no_names);
    tcase_add_test(tc, test_consumer_add_refuses_unknown_enum_values);
    tcase_add_test(tc, test_consumer_add_refuses_negative_and_absurd_limits);
    tcase_add_test(tc, test_consumer_add_refuses_bad_filters_and_deliver_subjects);
    tcase_add_test(tc, test_consumer_update_refusals_change_nothing);
    tcase_add_test(tc, test_consumer_lookup_delete_names_refusals);
    tcase_add_test(tc, test_pull_calls_refuse_null_wrong_and_push_handles);
    tcase_add_test(tc, test_fetch_past_the_consumer_limits_is_einval);
    tcase_add_test(tc, test_subscribe_and_dispatch_refusals);
    tcase_add_test(tc, test_acks_and_metadata_refusals);
    tcase_add_test(tc, test_consumer_info_refusals);
    tcase_add_test(tc, test_handles_of_a_deleted_stream_are_stream_not_found);
    tcase_add_test(tc, test_handles_of_a_deleted_consumer_are_consumer_not_found);
    tcase_add_test(tc, test_handles_after_close_are_emisuse_and_still_released);
    tcase_add_test(tc, test_handles_of_a_deleted_bucket_are_stream_not_found);
    tcase_add_test(tc, test_kv_create_refuses_bad_configs);
    tcase_add_test(tc, test_kv_open_update_delete_refusals);
    tcase_add_test(tc, test_kv_writes_refuse_bad_keys_values_and_handles);
    tcase_add_test(tc, test_kv_value_size_limit_refuses_and_changes_nothing);
    tcase_add_test(tc, test_kv_reads_refuse_bad_keys_and_handles);
    tcase_add_test(tc, test_kv_keys_and_watch_refusals);
    tcase_add_test(tc, test_conflicting_creates_change_nothing);
    tcase_add_test(tc, test_max_consumers_and_denials_change_nothing);
    tcase_add_test(tc, test_kv_keys_with_slashes_never_become_paths);
    tcase_add_test(tc, test_dispatcher_misuse_from_callbacks_and_twice);
    tcase_add_test(tc, test_huge_ack_wait_and_nak_delay_do_not_wrap);
    tcase_add_test(tc, test_huge_inactive_threshold_keeps_an_ephemeral);
    tcase_add_test(tc, test_huge_stream_durations_keep_messages);
    tcase_add_test(tc, test_huge_timeouts_return_what_is_there);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    base_dir = tu_mkdtemp("test_misuse");
    int failed = tu_run_suite(misuse_suite());
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed != 0;
}
