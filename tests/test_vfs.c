/*
 * test_vfs.c - the storage backend layer: one conformance list run over
 * "posix" (in a temporary directory), the process-wide "mem" and a private
 * mem instance; then the registry, the helpers, and what is particular to
 * each backend.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil_fs.h"
#include "vfs.h"
#include "runner.h"

/* ---- the backend under test ------------------------------------------ */

enum { B_POSIX, B_MEM, B_MEM_PRIVATE, B_COUNT };

static char base_dir[] = "/tmp/test_vfs.XXXXXX"; /* made by main() */
static js_vfs *V;          /* the backend of the running test */
static int V_kind;
static char root[256];     /* a fresh, empty directory on V */

/* Select backend kind for this test and give it an empty root. posix
 * roots live under base_dir, which main() removes whatever happens. */
static void begin(int kind) {
    static unsigned seq;

    V_kind = kind;
    switch (kind) {
    case B_POSIX:
        V = jsi_vfs_posix();
        snprintf(root, sizeof root, "%s/t.XXXXXX", base_dir);
        ck_assert_ptr_nonnull(mkdtemp(root));
        break;
    case B_MEM:
        V = jsi_vfs_mem();
        snprintf(root, sizeof root, "/test-%ld-%u", (long)getpid(), seq++);
        ck_assert_int_eq(V->mkdir(V, root), 0);
        break;
    default:
        V = jsi_vfs_mem_new();
        ck_assert_ptr_nonnull(V);
        snprintf(root, sizeof root, "/root");
        ck_assert_int_eq(V->mkdir(V, root), 0);
        break;
    }
}

static void end(void) {
    if (V_kind == B_MEM_PRIVATE)
        jsi_vfs_mem_free(V);
    else
        ck_assert_int_eq(jsi_vfs_remove_tree(V, root), 0);
    V = NULL;
}

/* root/rel, in one of a ring of static buffers. */
static const char *P(const char *rel) {
    static char ring[8][512];
    static unsigned k;
    char *p = ring[k++ % 8];

    snprintf(p, sizeof ring[0], "%s/%s", root, rel);
    return p;
}

static js_vfs_file *xopen(const char *rel, int flags) {
    js_vfs_file *f = NULL;

    ck_assert_int_eq(jsi_vfs_open(V, P(rel), flags, &f), 0);
    ck_assert_ptr_nonnull(f);
    return f;
}

/* Make rel hold exactly s. */
static void put(const char *rel, const char *s) {
    js_vfs_file *f = xopen(rel, JS_VFS_WRITE | JS_VFS_CREATE);

    ck_assert_int_eq(f->io->truncate(f, 0), 0);
    ck_assert_int_eq(f->io->write(f, s, strlen(s), 0), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
}

/* The content of rel as a string (static; at most 4 KiB). */
static const char *get(const char *rel) {
    static char out[4097];
    jsi_buf b = {NULL, 0, 0};

    ck_assert_int_eq(jsi_vfs_read_file(V, P(rel), &b, 4096), 0);
    if (b.len)
        memcpy(out, b.p, b.len);
    out[b.len] = '\0';
    jsi_buf_free(&b);
    return out;
}

static int exists(const char *rel) {
    return jsi_vfs_exists(V, P(rel));
}

typedef struct names {
    char *v[64];
    int n;
    int calls;
    int stop_at; /* return 7 from the stop_at-th call (1-based); 0: never */
} names;

static int names_cb(void *ctx, const char *name) {
    names *ns = ctx;

    ns->calls++;
    if (ns->n < 64)
        ns->v[ns->n++] = strdup(name);
    return ns->calls == ns->stop_at ? 7 : 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of dir rel (NULL: root), sorted and joined with ','. */
static const char *ls(const char *rel) {
    static char out[2048];
    names ns;
    int i;

    memset(&ns, 0, sizeof ns);
    ck_assert_int_eq(V->list(V, rel ? P(rel) : root, names_cb, &ns), 0);
    qsort(ns.v, (size_t)ns.n, sizeof ns.v[0], cmp_str);
    out[0] = '\0';
    for (i = 0; i < ns.n; i++) {
        if (i)
            strcat(out, ",");
        strcat(out, ns.v[i]);
        free(ns.v[i]);
    }
    return out;
}

static uint64_t fsize(js_vfs_file *f) {
    uint64_t n = UINT64_MAX;

    ck_assert_int_eq(f->io->size(f, &n), 0);
    return n;
}

#define RW (JS_VFS_READ | JS_VFS_WRITE)
#define RWC (JS_VFS_READ | JS_VFS_WRITE | JS_VFS_CREATE)

/* ---- conformance: files ---------------------------------------------- */

START_TEST(write_then_read_back) {
    js_vfs_file *f;
    char buf[32];
    size_t n = 0;

    begin(_i);
    f = xopen("f", RWC);
    ck_assert_int_eq(f->io->write(f, "hello world", 11, 0), 0);
    ck_assert_int_eq(f->io->read(f, buf, 11, 0, &n), 0);
    ck_assert_uint_eq(n, 11);
    ck_assert_mem_eq(buf, "hello world", 11);
    ck_assert_int_eq(f->io->sync(f), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);

    f = xopen("f", JS_VFS_READ);
    ck_assert_uint_eq(fsize(f), 11);
    ck_assert_int_eq(f->io->read(f, buf, 5, 6, &n), 0);
    ck_assert_uint_eq(n, 5);
    ck_assert_mem_eq(buf, "world", 5);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    end();
}
END_TEST

START_TEST(read_is_short_only_at_end_of_file) {
    js_vfs_file *f;
    char buf[16];
    size_t n = 99;

    begin(_i);
    put("f", "abcdef");
    f = xopen("f", JS_VFS_READ);
    ck_assert_int_eq(f->io->read(f, buf, sizeof buf, 2, &n), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_mem_eq(buf, "cdef", 4);
    n = 99;
    ck_assert_int_eq(f->io->read(f, buf, sizeof buf, 6, &n), 0);
    ck_assert_uint_eq(n, 0);
    n = 99;
    ck_assert_int_eq(f->io->read(f, buf, sizeof buf, 1000, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    end();
}
END_TEST

START_TEST(write_past_eof_extends_with_zeros) {
    static const char zeros[10];
    js_vfs_file *f;
    char buf[16];
    size_t n = 0;

    begin(_i);
    f = xopen("f", RWC);
    ck_assert_int_eq(f->io->write(f, "xy", 2, 10), 0);
    ck_assert_uint_eq(fsize(f), 12);
    ck_assert_int_eq(f->io->read(f, buf, sizeof buf, 0, &n), 0);
    ck_assert_uint_eq(n, 12);
    ck_assert_mem_eq(buf, zeros, 10);
    ck_assert_mem_eq(buf + 10, "xy", 2);
    /* As pwrite(2): writing nothing changes nothing. */
    ck_assert_int_eq(f->io->write(f, "", 0, 100), 0);
    ck_assert_uint_eq(fsize(f), 12);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    end();
}
END_TEST

START_TEST(truncate_shrinks_and_extends_with_zeros) {
    static const char zeros[10];
    js_vfs_file *f;
    char buf[100];
    size_t n = 0;

    begin(_i);
    f = xopen("f", RWC);
    memset(buf, 'a', sizeof buf);
    ck_assert_int_eq(f->io->write(f, buf, sizeof buf, 0), 0);
    ck_assert_int_eq(f->io->truncate(f, 10), 0);
    ck_assert_uint_eq(fsize(f), 10);
    ck_assert_int_eq(f->io->read(f, buf, 20, 5, &n), 0);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(f->io->truncate(f, 20), 0);
    ck_assert_uint_eq(fsize(f), 20);
    ck_assert_int_eq(f->io->read(f, buf, sizeof buf, 0, &n), 0);
    ck_assert_uint_eq(n, 20);
    ck_assert_int_eq(buf[9], 'a');
    ck_assert_mem_eq(buf + 10, zeros, 10);
    ck_assert_int_eq(f->io->truncate(f, 0), 0);
    ck_assert_uint_eq(fsize(f), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    end();
}
END_TEST

START_TEST(size_follows_writes_across_handles) {
    js_vfs_file *a, *b;

    begin(_i);
    a = xopen("f", RWC);
    b = xopen("f", JS_VFS_READ);
    ck_assert_uint_eq(fsize(a), 0);
    ck_assert_int_eq(a->io->write(a, "12345", 5, 0), 0);
    ck_assert_uint_eq(fsize(b), 5);
    ck_assert_int_eq(a->io->write(a, "678", 3, 5), 0);
    ck_assert_uint_eq(fsize(b), 8);
    ck_assert_int_eq(jsi_vfs_close(a), 0);
    ck_assert_int_eq(jsi_vfs_close(b), 0);
    end();
}
END_TEST

START_TEST(create_opens_existing_without_truncating) {
    js_vfs_file *f;

    begin(_i);
    put("f", "keep");
    f = xopen("f", RWC);
    ck_assert_uint_eq(fsize(f), 4);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    ck_assert_str_eq(get("f"), "keep");
    end();
}
END_TEST

START_TEST(open_missing_file_is_notfound) {
    js_vfs_file *f = (js_vfs_file *)&f;

    begin(_i);
    ck_assert_int_eq(jsi_vfs_open(V, P("nope"), JS_VFS_READ, &f),
                     JS_ENOTFOUND);
    ck_assert_ptr_null(f);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), P("nope")));
    ck_assert_int_eq(jsi_vfs_open(V, P("nope"), RW, &f), JS_ENOTFOUND);
    /* Creating does not create missing directories. */
    ck_assert_int_eq(jsi_vfs_open(V, P("nodir/f"), RWC, &f), JS_ENOTFOUND);
    ck_assert_int_eq(exists("nope"), 0);
    end();
}
END_TEST

START_TEST(excl_create_of_existing_file_is_eexist) {
    js_vfs_file *f;

    begin(_i);
    f = xopen("f", RWC | JS_VFS_EXCL);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    ck_assert_int_eq(jsi_vfs_open(V, P("f"), RWC | JS_VFS_EXCL, &f),
                     JS_EEXIST);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), P("f")));
    end();
}
END_TEST

START_TEST(bad_open_flags_are_einval) {
    js_vfs_file *f;

    begin(_i);
    ck_assert_int_eq(jsi_vfs_open(V, P("f"), 0, &f), JS_EINVAL);
    ck_assert_int_eq(jsi_vfs_open(V, P("f"), JS_VFS_WRITE | JS_VFS_EXCL, &f),
                     JS_EINVAL);
    ck_assert_int_eq(jsi_vfs_open(V, P("f"), RWC | 0x100, &f), JS_EINVAL);
    ck_assert_int_eq(exists("f"), 0);
    end();
}
END_TEST

START_TEST(read_only_handle_refuses_writes) {
    js_vfs_file *f;

    begin(_i);
    put("f", "data");
    f = xopen("f", JS_VFS_READ);
    ck_assert_int_eq(f->io->write(f, "x", 1, 0), JS_EIO);
    ck_assert_int_eq(f->io->truncate(f, 0), JS_EIO);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    ck_assert_str_eq(get("f"), "data");
    end();
}
END_TEST

START_TEST(directories_are_not_files) {
    js_vfs_file *f;

    begin(_i);
    ck_assert_int_eq(V->mkdir(V, P("d")), 0);
    put("f", "x");
    ck_assert_int_eq(jsi_vfs_open(V, P("d"), JS_VFS_READ, &f), JS_EIO);
    ck_assert_int_eq(jsi_vfs_open(V, P("d"), RW, &f), JS_EIO);
    ck_assert_int_eq(V->remove(V, P("d")), JS_EIO);
    ck_assert_int_eq(V->rmdir(V, P("f")), JS_EIO);
    /* A file in a path's middle: ENOTDIR, which is JS_EIO. */
    ck_assert_int_eq(jsi_vfs_open(V, P("f/x"), RWC, &f), JS_EIO);
    ck_assert_int_eq(V->mkdir(V, P("f/x")), JS_EIO);
    ck_assert_int_eq(exists("d"), 1);
    ck_assert_str_eq(get("f"), "x");
    end();
}
END_TEST

START_TEST(control_is_unsupported) {
    js_vfs_file *f;

    begin(_i);
    f = xopen("f", RWC);
    ck_assert_int_eq(f->io->control(f, 1, NULL), JS_ENOTSUP);
    ck_assert_int_eq(f->io->control(f, 0, &f), JS_ENOTSUP);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    end();
}
END_TEST

START_TEST(sync_and_sync_dir_succeed_on_existing) {
    js_vfs_file *f;

    begin(_i);
    f = xopen("f", RWC);
    ck_assert_int_eq(f->io->write(f, "x", 1, 0), 0);
    ck_assert_int_eq(f->io->sync(f), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    ck_assert_int_eq(V->sync_dir(V, root), 0);
    ck_assert_int_eq(V->sync_dir(V, P("missing")), JS_ENOTFOUND);
    end();
}
END_TEST

START_TEST(open_handle_survives_remove) {
    js_vfs_file *f;
    char buf[16];
    size_t n = 0;

    begin(_i);
    f = xopen("f", RWC);
    ck_assert_int_eq(f->io->write(f, "data", 4, 0), 0);
    ck_assert_int_eq(V->remove(V, P("f")), 0);
    ck_assert_int_eq(exists("f"), 0);
    ck_assert_int_eq(f->io->write(f, "more", 4, 4), 0);
    ck_assert_int_eq(f->io->read(f, buf, sizeof buf, 0, &n), 0);
    ck_assert_uint_eq(n, 8);
    ck_assert_mem_eq(buf, "datamore", 8);
    /* A new file under the old name is a different file. */
    put("f", "new");
    ck_assert_uint_eq(fsize(f), 8);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    ck_assert_str_eq(get("f"), "new");
    end();
}
END_TEST

/* ---- conformance: names ---------------------------------------------- */

START_TEST(remove_deletes_file) {
    begin(_i);
    put("f", "x");
    ck_assert_int_eq(V->remove(V, P("f")), 0);
    ck_assert_int_eq(exists("f"), 0);
    ck_assert_int_eq(V->remove(V, P("f")), JS_ENOTFOUND);
    ck_assert_str_eq(ls(NULL), "");
    end();
}
END_TEST

START_TEST(rename_replaces_target_atomically) {
    js_vfs_file *old;
    char buf[8];
    size_t n = 0;

    begin(_i);
    put("a", "old");
    put("b", "new");
    old = xopen("a", JS_VFS_READ);
    ck_assert_int_eq(V->rename(V, P("b"), P("a")), 0);
    ck_assert_str_eq(get("a"), "new");
    ck_assert_int_eq(exists("b"), 0);
    ck_assert_str_eq(ls(NULL), "a");
    /* Whoever had the old file open still reads the old file. */
    ck_assert_int_eq(old->io->read(old, buf, sizeof buf, 0, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_mem_eq(buf, "old", 3);
    ck_assert_int_eq(jsi_vfs_close(old), 0);

    ck_assert_int_eq(V->rename(V, P("b"), P("c")), JS_ENOTFOUND);
    ck_assert_int_eq(V->rename(V, P("a"), P("nodir/a")), JS_ENOTFOUND);
    ck_assert_int_eq(V->rename(V, P("a"), P("a")), 0);
    ck_assert_str_eq(get("a"), "new");
    end();
}
END_TEST

START_TEST(rename_moves_a_directory_tree) {
    begin(_i);
    ck_assert_int_eq(jsi_vfs_mkdirs(V, P("d/x")), 0);
    put("d/x/f", "deep");
    put("d/g", "top");
    ck_assert_int_eq(V->rename(V, P("d"), P("e")), 0);
    ck_assert_int_eq(exists("d"), 0);
    ck_assert_str_eq(get("e/x/f"), "deep");
    ck_assert_str_eq(get("e/g"), "top");
    ck_assert_str_eq(ls("e"), "g,x");
    /* Not over a non-empty directory, nor a file over a directory. */
    ck_assert_int_eq(V->mkdir(V, P("d")), 0);
    put("d/keep", "k");
    ck_assert_int_ne(V->rename(V, P("e"), P("d")), 0);
    ck_assert_int_ne(V->rename(V, P("d/keep"), P("e")), 0);
    ck_assert_str_eq(get("d/keep"), "k");
    ck_assert_str_eq(get("e/x/f"), "deep");
    /* Over an empty directory it replaces it. */
    ck_assert_int_eq(V->mkdir(V, P("empty")), 0);
    ck_assert_int_eq(V->rename(V, P("e"), P("empty")), 0);
    ck_assert_str_eq(get("empty/x/f"), "deep");
    ck_assert_str_eq(ls(NULL), "d,empty");
    end();
}
END_TEST

START_TEST(list_gives_direct_children_only) {
    names ns;
    int i;

    begin(_i);
    ck_assert_int_eq(V->mkdir(V, P("d")), 0);
    ck_assert_str_eq(ls("d"), "");
    put("d/a", "1");
    put("d/b", "2");
    ck_assert_int_eq(V->mkdir(V, P("d/sub")), 0);
    put("d/sub/deep", "3");
    ck_assert_str_eq(ls("d"), "a,b,sub");
    ck_assert_str_eq(ls("d/sub"), "deep");
    ck_assert_str_eq(ls(NULL), "d");

    /* A non-zero return from the callback stops the walk and is returned. */
    memset(&ns, 0, sizeof ns);
    ns.stop_at = 2;
    ck_assert_int_eq(V->list(V, P("d"), names_cb, &ns), 7);
    ck_assert_int_eq(ns.calls, 2);
    for (i = 0; i < ns.n; i++)
        free(ns.v[i]);

    memset(&ns, 0, sizeof ns);
    ck_assert_int_eq(V->list(V, P("missing"), names_cb, &ns), JS_ENOTFOUND);
    ck_assert_int_eq(V->list(V, P("d/a"), names_cb, &ns), JS_EIO);
    ck_assert_int_eq(ns.calls, 0);
    end();
}
END_TEST

START_TEST(mkdir_and_rmdir_follow_posix_rules) {
    begin(_i);
    ck_assert_int_eq(V->mkdir(V, P("d")), 0);
    ck_assert_int_eq(V->mkdir(V, P("d")), JS_EEXIST);
    put("f", "x");
    ck_assert_int_eq(V->mkdir(V, P("f")), JS_EEXIST);
    ck_assert_int_eq(V->mkdir(V, P("a/b")), JS_ENOTFOUND);
    put("d/f", "x");
    ck_assert_int_ne(V->rmdir(V, P("d")), 0);
    ck_assert_str_eq(get("d/f"), "x");
    ck_assert_int_eq(V->remove(V, P("d/f")), 0);
    ck_assert_int_eq(V->rmdir(V, P("d")), 0);
    ck_assert_int_eq(exists("d"), 0);
    ck_assert_int_eq(V->rmdir(V, P("d")), JS_ENOTFOUND);
    end();
}
END_TEST

START_TEST(exists_sees_files_and_directories) {
    begin(_i);
    ck_assert_int_eq(exists("x"), 0);
    put("x", "");
    ck_assert_int_eq(exists("x"), 1);
    ck_assert_int_eq(V->mkdir(V, P("d")), 0);
    ck_assert_int_eq(exists("d"), 1);
    ck_assert_int_eq(jsi_vfs_exists(V, root), 1);
    ck_assert_int_eq(exists("d/none"), 0);
    end();
}
END_TEST

START_TEST(lock_twice_is_elocked_until_unlocked) {
    void *t1 = NULL, *t2 = (void *)&t2;

    begin(_i);
    ck_assert_int_eq(V->lock(V, P("LOCK"), &t1), 0);
    ck_assert_ptr_nonnull(t1);
    ck_assert_int_eq(V->lock(V, P("LOCK"), &t2), JS_ELOCKED);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), P("LOCK")));
    /* The lock file is a file, as on disk. */
    ck_assert_int_eq(exists("LOCK"), 1);
    ck_assert_int_eq(V->unlock(V, t1), 0);
    ck_assert_int_eq(V->lock(V, P("LOCK"), &t2), 0);
    ck_assert_int_eq(V->lock(V, P("LOCK2"), &t1), 0);
    ck_assert_int_eq(V->unlock(V, t1), 0);
    ck_assert_int_eq(V->unlock(V, t2), 0);
    ck_assert_int_eq(V->lock(V, P("nodir/LOCK"), &t1), JS_ENOTFOUND);
    end();
}
END_TEST

/* ---- conformance: helpers -------------------------------------------- */

START_TEST(mkdirs_makes_every_level_and_remove_tree_removes_all) {
    begin(_i);
    ck_assert_int_eq(jsi_vfs_mkdirs(V, P("a/b/c")), 0);
    ck_assert_int_eq(jsi_vfs_mkdirs(V, P("a/b/c")), 0);
    ck_assert_int_eq(jsi_vfs_mkdirs(V, P("a//b/d/")), 0);
    ck_assert_str_eq(ls("a/b"), "c,d");
    put("a/f1", "1");
    put("a/b/f2", "2");
    put("a/b/c/f3", "3");
    ck_assert_int_eq(jsi_vfs_mkdirs(V, P("a/f1")), JS_EIO);
    ck_assert_int_eq(jsi_vfs_mkdirs(V, P("a/f1/x")), JS_EIO);
    ck_assert_int_eq(jsi_vfs_remove_tree(V, P("a")), 0);
    ck_assert_int_eq(exists("a"), 0);
    ck_assert_str_eq(ls(NULL), "");
    ck_assert_int_eq(jsi_vfs_remove_tree(V, P("a")), 0);
    end();
}
END_TEST

START_TEST(write_atomic_replaces_and_leaves_no_tmp) {
    begin(_i);
    ck_assert_int_eq(V->mkdir(V, P("d")), 0);
    ck_assert_int_eq(jsi_vfs_write_atomic(V, P("d"), "cat", "v1", 2), 0);
    ck_assert_str_eq(get("d/cat"), "v1");
    ck_assert_str_eq(ls("d"), "cat");
    ck_assert_int_eq(jsi_vfs_write_atomic(V, P("d"), "cat", "longer v2", 9),
                     0);
    ck_assert_str_eq(get("d/cat"), "longer v2");
    /* A longer temp left by a crash does not leak into the new content. */
    put("d/cat.tmp", "stale stale stale");
    ck_assert_int_eq(jsi_vfs_write_atomic(V, P("d"), "cat", "v3", 2), 0);
    ck_assert_str_eq(get("d/cat"), "v3");
    ck_assert_str_eq(ls("d"), "cat");
    ck_assert_int_eq(jsi_vfs_write_atomic(V, P("d"), "empty", NULL, 0), 0);
    ck_assert_str_eq(get("d/empty"), "");
    ck_assert_int_eq(jsi_vfs_write_atomic(V, P("none"), "cat", "x", 1),
                     JS_ENOTFOUND);
    ck_assert_int_eq(exists("none"), 0);
    end();
}
END_TEST

START_TEST(write_atomic_failure_keeps_old_file_and_removes_tmp) {
    begin(_i);
    ck_assert_int_eq(V->mkdir(V, P("d")), 0);
    put("d/cat", "old");
    /* Renaming a file over a directory fails after the temp is written. */
    ck_assert_int_eq(V->mkdir(V, P("d/dir")), 0);
    ck_assert_int_ne(jsi_vfs_write_atomic(V, P("d"), "dir", "new", 3), 0);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "rename"));
    ck_assert_str_eq(ls("d"), "cat,dir");
    ck_assert_str_eq(get("d/cat"), "old");
    end();
}
END_TEST

START_TEST(read_exact_and_read_file_report_short_files_as_corrupt) {
    js_vfs_file *f;
    jsi_buf b = {NULL, 0, 0};
    char buf[8];

    begin(_i);
    put("f", "abcd");
    f = xopen("f", JS_VFS_READ);
    ck_assert_int_eq(jsi_vfs_read_exact(f, buf, 4, 0), 0);
    ck_assert_mem_eq(buf, "abcd", 4);
    ck_assert_int_eq(jsi_vfs_read_exact(f, buf, 3, 2), JS_ECORRUPT);
    ck_assert_int_eq(jsi_vfs_read_exact(f, buf, 0, 100), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);

    /* read_file replaces what the buffer held. */
    ck_assert_int_eq(jsi_buf_append(&b, "junk", 4), 0);
    ck_assert_int_eq(jsi_vfs_read_file(V, P("f"), &b, 4), 0);
    ck_assert_uint_eq(b.len, 4);
    ck_assert_mem_eq(b.p, "abcd", 4);
    ck_assert_int_eq(jsi_vfs_read_file(V, P("f"), &b, 3), JS_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), P("f")));
    ck_assert_int_eq(jsi_vfs_read_file(V, P("g"), &b, 3), JS_ENOTFOUND);
    jsi_buf_free(&b);
    end();
}
END_TEST

static int count_cb(void *ctx, const char *name) {
    (void)name;
    ++*(int *)ctx;
    return 0;
}

/* Every allocation the script makes fails in turn: each run must fail
 * cleanly (no crash, no leak under ASan) with a memory or space error,
 * and leave the directory removable. */
static int alloc_script(void) {
    static const char blob[1000];
    js_vfs_file *f = NULL;
    void *tok = NULL;
    int rc, count = 0;

    if ((rc = jsi_vfs_mkdirs(V, P("a/b"))) != 0)
        return rc;
    if ((rc = jsi_vfs_open(V, P("a/b/f"), RWC, &f)) != 0)
        return rc;
    rc = f->io->write(f, blob, sizeof blob, 0);
    if (rc == 0)
        rc = f->io->write(f, blob, sizeof blob, 5000);
    jsi_vfs_close(f);
    if (rc == 0)
        rc = V->rename(V, P("a/b/f"), P("a/g"));
    if (rc == 0)
        rc = V->rename(V, P("a/b"), P("a/c"));
    if (rc == 0)
        rc = V->list(V, P("a"), count_cb, &count);
    if (rc == 0 && (rc = V->lock(V, P("a/LOCK"), &tok)) == 0)
        rc = V->unlock(V, tok);
    if (rc == 0)
        rc = jsi_vfs_write_atomic(V, P("a"), "cat", blob, 100);
    if (rc == 0) {
        rc = jsi_vfs_exists(V, P("a/cat"));
        rc = rc == 1 ? 0 : rc == 0 ? -100 : rc;
    }
    if (rc == 0)
        rc = jsi_vfs_remove_tree(V, P("a"));
    return rc;
}

START_TEST(every_allocation_failure_is_clean) {
    uint64_t n;
    int rc;

    begin(_i);
    for (n = 1;; n++) {
        jsi_alloc_fail_at(n, 0);
        rc = alloc_script();
        jsi_alloc_fail_at(0, 0);
        if (jsi_alloc_failed() == 0 && rc == 0)
            break;
        if (rc != 0 && rc != JS_ENOMEM && rc != JS_ENOSPC)
            ck_abort_msg("allocation %llu: rc %d (%s)", (unsigned long long)n,
                         rc, js_errmsg());
        ck_assert_int_eq(jsi_vfs_remove_tree(V, P("a")), 0);
        ck_assert_int_eq(exists("a"), 0);
        ck_assert_uint_lt(n, 10000);
    }
    ck_assert_uint_gt(n, 5);
    ck_assert_int_eq(exists("a"), 0);
    end();
}
END_TEST

/* ---- path join ------------------------------------------------------- */

START_TEST(path_join_puts_one_slash_between) {
    char *p;

    p = jsi_path_join("a/b", "c");
    ck_assert_str_eq(p, "a/b/c");
    jsi_free(p);
    p = jsi_path_join("/", "c");
    ck_assert_str_eq(p, "/c");
    jsi_free(p);
    p = jsi_path_join("a/", "c");
    ck_assert_str_eq(p, "a/c");
    jsi_free(p);
    p = jsi_path_join("", "c");
    ck_assert_str_eq(p, "c");
    jsi_free(p);
    jsi_alloc_fail_at(1, 0);
    ck_assert_ptr_null(jsi_path_join("a", "b"));
    jsi_alloc_fail_at(0, 0);
}
END_TEST

/* ---- registry -------------------------------------------------------- */

static int t_open(js_vfs *v, const char *p, int fl, js_vfs_file *f) {
    (void)v, (void)p, (void)fl, (void)f;
    return JS_EIO;
}
static int t_path(js_vfs *v, const char *p) {
    (void)v, (void)p;
    return JS_EIO;
}
static int t_rename(js_vfs *v, const char *a, const char *b) {
    (void)v, (void)a, (void)b;
    return JS_EIO;
}
static int t_list(js_vfs *v, const char *d, int (*cb)(void *, const char *),
                  void *ctx) {
    (void)v, (void)d, (void)cb, (void)ctx;
    return JS_EIO;
}
static int t_lock(js_vfs *v, const char *p, void **t) {
    (void)v, (void)p, (void)t;
    return JS_EIO;
}
static int t_unlock(js_vfs *v, void *t) {
    (void)v, (void)t;
    return JS_EIO;
}

static js_vfs test_table(const char *name) {
    js_vfs v = {JS_VFS_VERSION, sizeof(js_vfs_file), NULL, NULL,
                t_open, t_path, t_rename, t_path, t_path, t_list, t_path,
                t_lock, t_unlock};
    v.name = name;
    return v;
}

START_TEST(registry_has_builtins_with_posix_default) {
    ck_assert_ptr_eq(js_vfs_find(NULL), jsi_vfs_posix());
    ck_assert_ptr_eq(js_vfs_find("posix"), jsi_vfs_posix());
    ck_assert_ptr_eq(js_vfs_find("mem"), jsi_vfs_mem());
    ck_assert_ptr_null(js_vfs_find("nonesuch"));
    ck_assert_str_eq(jsi_vfs_posix()->name, "posix");
    ck_assert_str_eq(jsi_vfs_mem()->name, "mem");
}
END_TEST

START_TEST(register_find_replace_unregister) {
    js_vfs a = test_table("custom"), b = test_table("custom");
    js_vfs more[12];
    char nm[12][24];
    int i;

    ck_assert_int_eq(js_vfs_register(&a, 0), 0);
    ck_assert_ptr_eq(js_vfs_find("custom"), &a);
    ck_assert_ptr_eq(js_vfs_find(NULL), jsi_vfs_posix());
    /* The same name again replaces the entry. */
    ck_assert_int_eq(js_vfs_register(&b, 0), 0);
    ck_assert_ptr_eq(js_vfs_find("custom"), &b);
    ck_assert_int_eq(js_vfs_unregister(&a), JS_ENOTFOUND);
    ck_assert_int_eq(js_vfs_register(&b, 1), 0);
    ck_assert_ptr_eq(js_vfs_find(NULL), &b);
    /* Unregistering the default hands it to the oldest backend. */
    ck_assert_int_eq(js_vfs_unregister(&b), 0);
    ck_assert_ptr_null(js_vfs_find("custom"));
    ck_assert_ptr_eq(js_vfs_find(NULL), jsi_vfs_posix());
    ck_assert_int_eq(js_vfs_unregister(&b), JS_ENOTFOUND);

    /* More backends than the registry's first slots hold. */
    for (i = 0; i < 12; i++) {
        snprintf(nm[i], sizeof nm[i], "extra%d", i);
        more[i] = test_table(nm[i]);
        ck_assert_int_eq(js_vfs_register(&more[i], 0), 0);
    }
    for (i = 0; i < 12; i++)
        ck_assert_ptr_eq(js_vfs_find(nm[i]), &more[i]);
    for (i = 0; i < 12; i++)
        ck_assert_int_eq(js_vfs_unregister(&more[i]), 0);
    ck_assert_ptr_null(js_vfs_find("extra0"));
    ck_assert_ptr_eq(js_vfs_find("mem"), jsi_vfs_mem());
}
END_TEST

START_TEST(unregistering_builtins_and_registering_them_back) {
    ck_assert_int_eq(js_vfs_unregister(jsi_vfs_posix()), 0);
    ck_assert_ptr_eq(js_vfs_find(NULL), jsi_vfs_mem());
    ck_assert_int_eq(js_vfs_unregister(jsi_vfs_mem()), 0);
    ck_assert_ptr_null(js_vfs_find(NULL));
    ck_assert_ptr_null(js_vfs_find("posix"));
    /* An empty registry's first backend becomes the default. */
    ck_assert_int_eq(js_vfs_register(jsi_vfs_mem(), 0), 0);
    ck_assert_ptr_eq(js_vfs_find(NULL), jsi_vfs_mem());
    ck_assert_int_eq(js_vfs_register(jsi_vfs_posix(), 1), 0);
    ck_assert_ptr_eq(js_vfs_find(NULL), jsi_vfs_posix());
    ck_assert_ptr_eq(js_vfs_find("mem"), jsi_vfs_mem());
}
END_TEST

START_TEST(register_rejects_bad_tables) {
    js_vfs v;
    int k;

    ck_assert_int_eq(js_vfs_register(NULL, 0), JS_EINVAL);
    v = test_table(NULL);
    ck_assert_int_eq(js_vfs_register(&v, 0), JS_EINVAL);
    v = test_table("");
    ck_assert_int_eq(js_vfs_register(&v, 0), JS_EINVAL);
    v = test_table("bad");
    v.version = 0;
    ck_assert_int_eq(js_vfs_register(&v, 0), JS_EINVAL);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "version"));
    v = test_table("bad");
    v.file_size = sizeof(js_vfs_file) - 1;
    ck_assert_int_eq(js_vfs_register(&v, 0), JS_EINVAL);
    for (k = 0; k < 9; k++) {
        v = test_table("bad");
        switch (k) {
        case 0: v.open = NULL; break;
        case 1: v.remove = NULL; break;
        case 2: v.rename = NULL; break;
        case 3: v.mkdir = NULL; break;
        case 4: v.rmdir = NULL; break;
        case 5: v.list = NULL; break;
        case 6: v.sync_dir = NULL; break;
        case 7: v.lock = NULL; break;
        default: v.unlock = NULL; break;
        }
        ck_assert_int_eq(js_vfs_register(&v, 1), JS_EINVAL);
    }
    ck_assert_ptr_null(js_vfs_find("bad"));
    ck_assert_ptr_eq(js_vfs_find(NULL), jsi_vfs_posix());
    ck_assert_int_eq(js_vfs_unregister(NULL), JS_EINVAL);
}
END_TEST

START_TEST(failed_open_frees_the_file_without_closing) {
    js_vfs v = test_table("failing");
    js_vfs_file *f = (js_vfs_file *)&v;

    v.file_size = 4096;
    ck_assert_int_eq(jsi_vfs_open(&v, "x", JS_VFS_READ, &f), JS_EIO);
    ck_assert_ptr_null(f);
    ck_assert_int_eq(jsi_vfs_close(NULL), 0);
}
END_TEST

/* ---- posix particulars ----------------------------------------------- */

/* The descriptor this process has open on path, or -1. */
static int fd_of(const char *path) {
    struct stat want, st;
    int fd;

    if (stat(path, &want) != 0)
        return -1;
    for (fd = 0; fd < 1024; fd++)
        if (fstat(fd, &st) == 0 && st.st_dev == want.st_dev &&
            st.st_ino == want.st_ino)
            return fd;
    return -1;
}

/* In a child with stdin, stdout and stderr closed, a store file must not
 * take their place, so a stray write(1, ...) cannot reach it. */
static int std_fds_child(void) {
    js_vfs_file *f;
    void *tok;
    char buf[8];
    size_t n;
    int fd;

    close(0);
    close(1);
    close(2);
    if (jsi_vfs_open(V, P("f"), RWC, &f) != 0)
        return 10;
    if (V->lock(V, P("LOCK"), &tok) != 0)
        return 11;
    if (V->sync_dir(V, root) != 0)
        return 12;
    for (fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            return 20 + fd;
    if (write(1, "STRAY", 5) != -1 || write(2, "STRAY", 5) != -1)
        return 30;
    if (f->io->write(f, "data", 4, 0) != 0)
        return 40;
    if (f->io->read(f, buf, sizeof buf, 0, &n) != 0 || n != 4 ||
        memcmp(buf, "data", 4) != 0)
        return 41;
    if (fd_of(P("f")) < 3 || fd_of(P("LOCK")) < 3)
        return 42;
    V->unlock(V, tok);
    jsi_vfs_close(f);
    return 0;
}

START_TEST(posix_never_opens_on_fds_0_to_2) {
    int status;
    pid_t pid;

    begin(B_POSIX);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(std_fds_child());
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_str_eq(get("f"), "data");
    end();
}
END_TEST

START_TEST(posix_descriptors_are_close_on_exec) {
    js_vfs_file *f;
    void *tok;
    int fd;

    begin(B_POSIX);
    f = xopen("f", RWC);
    fd = fd_of(P("f"));
    ck_assert_int_ge(fd, 3);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ck_assert_int_eq(V->lock(V, P("LOCK"), &tok), 0);
    fd = fd_of(P("LOCK"));
    ck_assert_int_ge(fd, 3);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ck_assert_int_eq(V->unlock(V, tok), 0);
    ck_assert_int_eq(fd_of(P("LOCK")), -1);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    ck_assert_int_eq(fd_of(P("f")), -1);
    end();
}
END_TEST

START_TEST(posix_creates_files_0600_and_dirs_0700) {
    mode_t old = umask(0);
    struct stat st;
    void *tok;

    begin(B_POSIX);
    put("f", "x");
    ck_assert_int_eq(V->mkdir(V, P("d")), 0);
    ck_assert_int_eq(V->lock(V, P("LOCK"), &tok), 0);
    ck_assert_int_eq(V->unlock(V, tok), 0);
    umask(old);
    ck_assert_int_eq(stat(P("f"), &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(stat(P("d"), &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0700);
    ck_assert_int_eq(stat(P("LOCK"), &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    end();
}
END_TEST

static int lock_in_child(void) {
    int status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        void *tok;
        int rc = V->lock(V, P("LOCK"), &tok);
        _exit(rc == 0 ? 0 : rc == JS_ELOCKED ? 1 : 2);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

START_TEST(posix_lock_excludes_other_processes) {
    void *tok;

    begin(B_POSIX);
    ck_assert_int_eq(V->lock(V, P("LOCK"), &tok), 0);
    ck_assert_int_eq(lock_in_child(), 1);
    ck_assert_int_eq(V->unlock(V, tok), 0);
    ck_assert_int_eq(lock_in_child(), 0);
    end();
}
END_TEST

START_TEST(posix_errors_name_path_and_cause) {
    js_vfs_file *f;
    char want[600];

    begin(B_POSIX);
    ck_assert_int_eq(jsi_vfs_open(V, P("missing"), JS_VFS_READ, &f),
                     JS_ENOTFOUND);
    snprintf(want, sizeof want, "open %s: %s", P("missing"), strerror(ENOENT));
    ck_assert_str_eq(js_errmsg(), want);
    put("file", "x");
    ck_assert_int_eq(jsi_vfs_open(V, P("file/x"), RWC, &f), JS_EIO);
    snprintf(want, sizeof want, "open %s: %s", P("file/x"), strerror(ENOTDIR));
    ck_assert_str_eq(js_errmsg(), want);
    ck_assert_int_eq(V->rename(V, P("nope"), P("x")), JS_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), P("nope")));
    ck_assert_ptr_nonnull(strstr(js_errmsg(), strerror(ENOENT)));
    end();
}
END_TEST

START_TEST(posix_full_device_is_enospc) {
    js_vfs_file *f;

    if (access("/dev/full", W_OK) != 0)
        return; /* no /dev/full here: nothing to test */
    ck_assert_int_eq(jsi_vfs_open(jsi_vfs_posix(), "/dev/full", JS_VFS_WRITE,
                                  &f),
                     0);
    ck_assert_int_eq(f->io->write(f, "data", 4, 0), JS_ENOSPC);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "/dev/full"));
    ck_assert_ptr_nonnull(strstr(js_errmsg(), strerror(ENOSPC)));
    ck_assert_int_eq(jsi_vfs_close(f), 0);
}
END_TEST

/* ---- mem particulars ------------------------------------------------- */

START_TEST(mem_private_instances_do_not_share_files) {
    js_vfs *a = jsi_vfs_mem_new(), *b = jsi_vfs_mem_new();
    js_vfs_file *f;

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a->app_data, b->app_data);
    ck_assert_int_eq(jsi_vfs_open(a, "/only-a", RWC, &f), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    ck_assert_int_eq(jsi_vfs_exists(a, "/only-a"), 1);
    ck_assert_int_eq(jsi_vfs_exists(b, "/only-a"), 0);
    ck_assert_int_eq(jsi_vfs_exists(jsi_vfs_mem(), "/only-a"), 0);
    ck_assert_int_eq(b->mkdir(b, "/d"), 0);
    ck_assert_int_eq(a->mkdir(a, "/d"), 0);
    /* Locks are per instance too. */
    {
        void *ta, *tb;
        ck_assert_int_eq(a->lock(a, "/d/LOCK", &ta), 0);
        ck_assert_int_eq(b->lock(b, "/d/LOCK", &tb), 0);
        ck_assert_int_eq(a->unlock(a, ta), 0);
        ck_assert_int_eq(b->unlock(b, tb), 0);
    }
    jsi_vfs_mem_free(a);
    ck_assert_int_eq(jsi_vfs_exists(b, "/d"), 1);
    jsi_vfs_mem_free(b);
    jsi_vfs_mem_free(NULL);
    jsi_vfs_mem_free(jsi_vfs_mem()); /* the shared disk is never freed */
    ck_assert_ptr_eq(js_vfs_find("mem"), jsi_vfs_mem());
}
END_TEST

START_TEST(mem_normalises_paths) {
    js_vfs *m = jsi_vfs_mem_new();
    js_vfs_file *f;
    char buf[8];
    size_t n;

    ck_assert_int_eq(m->mkdir(m, "/n/"), 0);
    ck_assert_int_eq(jsi_vfs_open(m, "//n/./x/../f", RWC, &f), 0);
    ck_assert_int_eq(f->io->write(f, "same", 4, 0), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    ck_assert_int_eq(jsi_vfs_open(m, "/n/f", JS_VFS_READ, &f), 0);
    ck_assert_int_eq(f->io->read(f, buf, sizeof buf, 0, &n), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    ck_assert_int_eq(m->mkdir(m, "/n"), JS_EEXIST);
    ck_assert_int_eq(m->mkdir(m, "/"), JS_EEXIST);
    ck_assert_int_eq(m->mkdir(m, "/.."), JS_EEXIST);
    /* Relative and absolute paths are different places. */
    ck_assert_int_eq(jsi_vfs_exists(m, "n/f"), 0);
    ck_assert_int_eq(m->mkdir(m, "n"), 0);
    ck_assert_int_eq(jsi_vfs_write_atomic(m, "n", "g", "rel", 3), 0);
    ck_assert_int_eq(jsi_vfs_exists(m, "./n/g"), 1);
    ck_assert_int_eq(jsi_vfs_exists(m, "/n/g"), 0);
    ck_assert_int_eq(m->rmdir(m, "/"), JS_EIO);
    ck_assert_int_eq(m->rename(m, "/", "/x"), JS_EIO);
    jsi_vfs_mem_free(m);
}
END_TEST

START_TEST(mem_handles_and_locks_outlive_their_instance) {
    js_vfs *m = jsi_vfs_mem_new();
    js_vfs_file *f;
    void *tok;
    char buf[8];
    size_t n;

    ck_assert_int_eq(jsi_vfs_open(m, "/f", RWC, &f), 0);
    ck_assert_int_eq(f->io->write(f, "kept", 4, 0), 0);
    ck_assert_int_eq(m->lock(m, "/LOCK", &tok), 0);
    jsi_vfs_mem_free(m);
    ck_assert_int_eq(f->io->read(f, buf, sizeof buf, 0, &n), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_mem_eq(buf, "kept", 4);
    ck_assert_int_eq(f->io->write(f, "more", 4, 4), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    ck_assert_ptr_nonnull(tok);
    /* The token's unlock needs no live instance. */
    ck_assert_int_eq(jsi_vfs_mem()->unlock(jsi_vfs_mem(), tok), 0);
}
END_TEST

START_TEST(mem_lock_follows_the_file_across_rename) {
    js_vfs *m = jsi_vfs_mem_new();
    void *t1, *t2;

    ck_assert_int_eq(m->lock(m, "/L", &t1), 0);
    ck_assert_int_eq(m->rename(m, "/L", "/M"), 0);
    ck_assert_int_eq(m->lock(m, "/M", &t2), JS_ELOCKED);
    /* A new file at the old name is a different lock. */
    ck_assert_int_eq(m->lock(m, "/L", &t2), 0);
    ck_assert_int_eq(m->unlock(m, t2), 0);
    ck_assert_int_eq(m->unlock(m, t1), 0);
    ck_assert_int_eq(m->lock(m, "/M", &t2), 0);
    ck_assert_int_eq(m->unlock(m, t2), 0);
    jsi_vfs_mem_free(m);
}
END_TEST

START_TEST(mem_rename_into_own_subtree_fails) {
    js_vfs *m = jsi_vfs_mem_new();

    ck_assert_int_eq(jsi_vfs_mkdirs(m, "/a/b"), 0);
    ck_assert_int_eq(m->rename(m, "/a", "/a/b/c"), JS_EIO);
    ck_assert_int_eq(jsi_vfs_exists(m, "/a/b"), 1);
    ck_assert_int_eq(jsi_vfs_exists(m, "/a/b/c"), 0);
    jsi_vfs_mem_free(m);
}
END_TEST

typedef struct worker {
    pthread_t th;
    js_vfs *vfs;
    int id;
    int failures;
    int locked;
} worker;

static int holders; /* how many workers think they hold the lock */

static void *worker_main(void *arg) {
    worker *w = arg;
    js_vfs *m = w->vfs;
    char path[64], path2[64], rec[32], buf[32];
    js_vfs_file *f;
    size_t n;
    void *tok;
    int i;

    snprintf(path, sizeof path, "/w/f%d", w->id);
    snprintf(path2, sizeof path2, "/w/g%d", w->id);
    for (i = 0; i < 300; i++) {
        int len = snprintf(rec, sizeof rec, "t%d-i%d", w->id, i);
        if (jsi_vfs_open(m, path, RWC, &f) != 0) {
            w->failures++;
            continue;
        }
        if (f->io->write(f, rec, (size_t)len, (uint64_t)i) != 0 ||
            f->io->read(f, buf, (size_t)len, (uint64_t)i, &n) != 0 ||
            n != (size_t)len || memcmp(buf, rec, n) != 0)
            w->failures++;
        jsi_vfs_close(f);
        if (m->rename(m, path, path2) != 0 || m->remove(m, path2) != 0)
            w->failures++;
        if (m->lock(m, "/w/LOCK", &tok) == 0) {
            if (__atomic_add_fetch(&holders, 1, __ATOMIC_SEQ_CST) != 1)
                w->failures++;
            w->locked++;
            __atomic_sub_fetch(&holders, 1, __ATOMIC_SEQ_CST);
            m->unlock(m, tok);
        }
    }
    return NULL;
}

START_TEST(mem_is_safe_across_threads) {
    /* _i 0: a private instance; 1: the shared disk. */
    js_vfs *m = _i ? jsi_vfs_mem() : jsi_vfs_mem_new();
    worker w[4];
    int i, locked = 0;

    ck_assert_ptr_nonnull(m);
    for (i = 0; i < 4; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].vfs = m;
        w[i].id = i;
    }
    ck_assert_int_eq(jsi_vfs_mkdirs(m, "/w"), 0);
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&w[i].th, NULL, worker_main, &w[i]),
                         0);
    for (i = 0; i < 4; i++) {
        pthread_join(w[i].th, NULL);
        ck_assert_int_eq(w[i].failures, 0);
        locked += w[i].locked;
    }
    ck_assert_int_gt(locked, 0);
    ck_assert_int_eq(jsi_vfs_remove_tree(m, "/w"), 0);
    ck_assert_int_eq(jsi_vfs_exists(m, "/w"), 0);
    if (_i == 0)
        jsi_vfs_mem_free(m);
}
END_TEST

/* ---- suite ----------------------------------------------------------- */

static Suite *vfs_suite(void) {
    Suite *s = suite_create("vfs");
    TCase *t;

#define CONFORM(fn) tcase_add_loop_test(t, fn, 0, B_COUNT)
    t = tcase_create("conformance_files");
    CONFORM(write_then_read_back);
    CONFORM(read_is_short_only_at_end_of_file);
    CONFORM(write_past_eof_extends_with_zeros);
    CONFORM(truncate_shrinks_and_extends_with_zeros);
    CONFORM(size_follows_writes_across_handles);
    CONFORM(create_opens_existing_without_truncating);
    CONFORM(open_missing_file_is_notfound);
    CONFORM(excl_create_of_existing_file_is_eexist);
    CONFORM(bad_open_flags_are_einval);
    CONFORM(read_only_handle_refuses_writes);
    CONFORM(directories_are_not_files);
    CONFORM(control_is_unsupported);
    CONFORM(sync_and_sync_dir_succeed_on_existing);
    CONFORM(open_handle_survives_remove);
    suite_add_tcase(s, t);

    t = tcase_create("conformance_names");
    CONFORM(remove_deletes_file);
    CONFORM(rename_replaces_target_atomically);
    CONFORM(rename_moves_a_directory_tree);
    CONFORM(list_gives_direct_children_only);
    CONFORM(mkdir_and_rmdir_follow_posix_rules);
    CONFORM(exists_sees_files_and_directories);
    CONFORM(lock_twice_is_elocked_until_unlocked);
    suite_add_tcase(s, t);

    t = tcase_create("conformance_helpers");
    tcase_set_timeout(t, 60);
    CONFORM(mkdirs_makes_every_level_and_remove_tree_removes_all);
    CONFORM(write_atomic_replaces_and_leaves_no_tmp);
    CONFORM(write_atomic_failure_keeps_old_file_and_removes_tmp);
    CONFORM(read_exact_and_read_file_report_short_files_as_corrupt);
    CONFORM(every_allocation_failure_is_clean);
    tcase_add_test(t, path_join_puts_one_slash_between);
    suite_add_tcase(s, t);
#undef CONFORM

    t = tcase_create("registry");
    tcase_add_test(t, registry_has_builtins_with_posix_default);
    tcase_add_test(t, register_find_replace_unregister);
    tcase_add_test(t, unregistering_builtins_and_registering_them_back);
    tcase_add_test(t, register_rejects_bad_tables);
    tcase_add_test(t, failed_open_frees_the_file_without_closing);
    suite_add_tcase(s, t);

    t = tcase_create("posix");
    tcase_add_test(t, posix_never_opens_on_fds_0_to_2);
    tcase_add_test(t, posix_descriptors_are_close_on_exec);
    tcase_add_test(t, posix_creates_files_0600_and_dirs_0700);
    tcase_add_test(t, posix_lock_excludes_other_processes);
    tcase_add_test(t, posix_errors_name_path_and_cause);
    tcase_add_test(t, posix_full_device_is_enospc);
    suite_add_tcase(s, t);

    t = tcase_create("mem");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, mem_private_instances_do_not_share_files);
    tcase_add_test(t, mem_normalises_paths);
    tcase_add_test(t, mem_handles_and_locks_outlive_their_instance);
    tcase_add_test(t, mem_lock_follows_the_file_across_rename);
    tcase_add_test(t, mem_rename_into_own_subtree_fails);
    tcase_add_loop_test(t, mem_is_safe_across_threads, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    if (!mkdtemp(base_dir)) {
        perror("mkdtemp");
        return 1;
    }
    int failed = tu_run_suite(vfs_suite());
    tu_rm_rf(base_dir);
    return failed == 0 ? 0 : 1;
}
