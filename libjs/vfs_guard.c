/*
 * vfs_guard.c - the store's fail-stop layer over its backend.
 *
 * After a write, truncate or sync fails, the kernel may already have
 * dropped the dirty pages it could not write, so a later sync can succeed
 * without the data ever reaching the disk ("fsyncgate"). Nothing written
 * since the last good sync can be trusted, and nothing may be
 * acknowledged after it. So the first unexpected failure of any call that
 * changes storage latches the guard: from then on every such call fails
 * with JS_EFAILED, whichever stream, consumer or catalogue issues it, and
 * the store refuses changes until it is closed and opened again (opening
 * recovers from whatever did reach the disk). Reads pass through.
 *
 * What latches: a failed write, truncate, file or directory sync, rename,
 * or open for writing. Expected outcomes are not failures: JS_EEXIST from
 * an exclusive create, JS_ENOTFOUND from opening what is not there. A
 * failed remove, mkdir or rmdir does not latch (they are refused once
 * latched): the caller sees the error, and nothing already written
 * becomes doubtful; several callers remove on a best-effort basis (a
 * stale temporary file, an orphan) and go on.
 */
#include <stdio.h>
#include <string.h>

#include "vfs.h"

typedef struct guard {
    js_vfs vfs; /* first: the table the store uses */
    js_vfs *base;
    int failed; /* atomic: the first failure's code, 0 while healthy */
} guard;

typedef struct guard_file {
    js_vfs_file pub;
    guard *g;
    /* the base backend's file object follows, max-aligned */
} guard_file;

#define GUARD_FILE_HDR ((sizeof(guard_file) + 15) & ~(size_t)15)

static js_vfs_file *base_file(js_vfs_file *f) {
    return (js_vfs_file *)((char *)f + GUARD_FILE_HDR);
}

static int refused(guard *g) {
    int rc = __atomic_load_n(&g->failed, __ATOMIC_ACQUIRE);
    return rc ? JSI_ERR(JS_EFAILED, 0, "storage failed earlier (%s): no "
                        "changes until the store is reopened",
                        js_strerror(rc))
              : 0;
}

/* Latch the first unexpected failure of a changing call. */
static int watch(guard *g, int rc) {
    if (rc != 0 && rc != JS_EEXIST && rc != JS_ENOTFOUND) {
        int zero = 0;
        __atomic_compare_exchange_n(&g->failed, &zero, rc, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
    return rc;
}

/* ---- files ----------------------------------------------------------- */

static int g_close(js_vfs_file *f) {
    js_vfs_file *b = base_file(f);
    return b->io->close(b);
}

static int g_read(js_vfs_file *f, void *buf, size_t n, uint64_t off,
                  size_t *nread) {
    js_vfs_file *b = base_file(f);
    return b->io->read(b, buf, n, off, nread);
}

static int g_write(js_vfs_file *f, const void *buf, size_t n, uint64_t off) {
    guard *g = ((guard_file *)f)->g;
    js_vfs_file *b = base_file(f);
    int rc = refused(g);
    return rc ? rc : watch(g, b->io->write(b, buf, n, off));
}

static int g_truncate(js_vfs_file *f, uint64_t size) {
    guard *g = ((guard_file *)f)->g;
    js_vfs_file *b = base_file(f);
    int rc = refused(g);
    return rc ? rc : watch(g, b->io->truncate(b, size));
}

static int g_sync(js_vfs_file *f) {
    guard *g = ((guard_file *)f)->g;
    js_vfs_file *b = base_file(f);
    int rc = refused(g);
    return rc ? rc : watch(g, b->io->sync(b));
}

static int g_size(js_vfs_file *f, uint64_t *size) {
    js_vfs_file *b = base_file(f);
    return b->io->size(b, size);
}

static int g_control(js_vfs_file *f, int op, void *arg) {
    js_vfs_file *b = base_file(f);
    return b->io->control(b, op, arg);
}

static const js_vfs_io guard_io = {JS_VFS_IO_VERSION, g_close,    g_read,
                                   g_write,           g_truncate, g_sync,
                                   g_size,            g_control};

/* ---- the backend ------------------------------------------------------- */

static int g_open(js_vfs *v, const char *path, int flags,
                  js_vfs_file *file) {
    guard *g = (guard *)v;
    int changes = (flags & (JS_VFS_WRITE | JS_VFS_CREATE)) != 0;
    int rc = changes ? refused(g) : 0;
    if (rc == 0)
        rc = g->base->open(g->base, path, flags, base_file(file));
    if (rc == 0 && !jsi_vfs_io_ok(base_file(file)->io)) {
        /* Unusable methods: the file cannot even be closed through them. */
        return JSI_ERR(JS_EINVAL, 0, "open %s: vfs %s gave an incomplete "
                       "io table", path, g->base->name);
    }
    if (changes)
        watch(g, rc);
    if (rc == 0) {
        ((guard_file *)file)->g = g;
        file->io = &guard_io;
    }
    return rc;
}

static int g_remove(js_vfs *v, const char *path) {
    guard *g = (guard *)v;
    int rc = refused(g);
    return rc ? rc : g->base->remove(g->base, path);
}

static int g_rename(js_vfs *v, const char *from, const char *to) {
    guard *g = (guard *)v;
    int rc = refused(g);
    return rc ? rc : watch(g, g->base->rename(g->base, from, to));
}

static int g_mkdir(js_vfs *v, const char *path) {
    guard *g = (guard *)v;
    int rc = refused(g);
    return rc ? rc : g->base->mkdir(g->base, path);
}

static int g_rmdir(js_vfs *v, const char *path) {
    guard *g = (guard *)v;
    int rc = refused(g);
    return rc ? rc : g->base->rmdir(g->base, path);
}

static int g_list(js_vfs *v, const char *dir,
                  int (*cb)(void *ctx, const char *name), void *ctx) {
    guard *g = (guard *)v;
    return g->base->list(g->base, dir, cb, ctx);
}

static int g_sync_dir(js_vfs *v, const char *dir) {
    guard *g = (guard *)v;
    int rc = refused(g);
    return rc ? rc : watch(g, g->base->sync_dir(g->base, dir));
}

/* The lock is released whatever happened: it changes nothing stored. */
static int g_lock(js_vfs *v, const char *path, void **token) {
    guard *g = (guard *)v;
    return g->base->lock(g->base, path, token);
}

static int g_unlock(js_vfs *v, void *token) {
    guard *g = (guard *)v;
    return g->base->unlock(g->base, token);
}

js_vfs *jsi_vfs_guard_new(js_vfs *base) {
    guard *g = jsi_calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->base = base;
    js_vfs *v = &g->vfs;
    v->version = JS_VFS_VERSION;
    v->file_size = GUARD_FILE_HDR + base->file_size;
    v->name = base->name;
    v->app_data = g;
    v->open = g_open;
    v->remove = g_remove;
    v->rename = g_rename;
    v->mkdir = g_mkdir;
    v->rmdir = g_rmdir;
    v->list = g_list;
    v->sync_dir = g_sync_dir;
    v->lock = g_lock;
    v->unlock = g_unlock;
    return v;
}

void jsi_vfs_guard_free(js_vfs *vfs) {
    jsi_free(vfs);
}

int jsi_vfs_guard_failed(js_vfs *vfs) {
    if (!vfs || vfs->open != g_open)
        return 0;
    return refused((guard *)vfs);
}
