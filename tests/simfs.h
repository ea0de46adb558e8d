/*
 * simfs.h - a test-only storage backend that wraps posix and can lose
 * power or fail on cue.
 *
 * Every call passes through to the posix backend, so the store under test
 * sees real files; what simfs adds is bookkeeping of what a power cut could
 * take away:
 *   - for each file, the writes and truncates since its last sync, with
 *     the bytes each one overwrote (an undo log) and the bytes it wrote;
 *   - the directory changes (create, remove, rename, mkdir, rmdir) since
 *     their directory's last sync. A removed file is moved to a "grave"
 *     directory outside the store so a lost remove can bring it back.
 * Nothing is really synced (no power is really lost), so it runs at the
 * speed of the page cache.
 *
 * Power cut: sim_cut_at(fs, k) makes the k-th mutating call (write,
 * truncate, sync, sync_dir, creating open, remove, rename, mkdir, rmdir)
 * the last: a write at k still reaches the page cache (it may be torn by
 * the cut), anything else at k does not happen, and from then on every
 * call fails with JS_EIO, except close and unlock, which release. After
 * the store has been closed, sim_power_fail(fs, mode, seed) rewrites the
 * files as the disk would hold them after the cut:
 *   SIM_DROP     every unsynced write and directory change is lost;
 *   SIM_KEEP     all of them survive (a process crash);
 *   SIM_TORN     per file, a prefix of its unsynced writes survives, the
 *                next one torn part way (in 512-byte sectors); a prefix of
 *                the directory changes survives;
 *   SIM_GARBAGE  as TORN, but writes past the prefix are either lost or
 *                their bytes replaced with garbage, each by a coin toss.
 * Directory changes survive in order (a journalled file system commits
 * them in order), data writes per file in any subset.
 *
 * Faults: sim_fault(fs, classes, k, rc, forever) makes the k-th call of
 * the given classes fail with rc (JS_EIO or JS_ENOSPC) without doing it;
 * with forever, every later call of those classes fails too.
 *
 * Header-only: static functions, one simfs per test program at a time is
 * typical but not required. Thread-safe: one mutex around everything (the
 * store does I/O from publisher and dispatcher threads).
 */
#ifndef SIMFS_H
#define SIMFS_H

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jetstream.h"

enum { SIM_DROP, SIM_KEEP, SIM_TORN, SIM_GARBAGE, SIM_NMODES };

/* Fault classes (a mask). */
#define SIM_F_READ 0x001
#define SIM_F_WRITE 0x002
#define SIM_F_SYNC 0x004 /* file sync and directory sync */
#define SIM_F_RENAME 0x008
#define SIM_F_TRUNCATE 0x010
#define SIM_F_OPEN 0x020
#define SIM_F_REMOVE 0x040
#define SIM_F_MKDIR 0x080 /* mkdir and rmdir */
#define SIM_F_LIST 0x100
#define SIM_F_ALL 0x1ff

enum { SIM_OP_WRITE, SIM_OP_TRUNC };
enum { SIM_NS_CREATE, SIM_NS_REMOVE, SIM_NS_RENAME, SIM_NS_MKDIR,
       SIM_NS_RMDIR };

typedef struct sim_op {
    int kind;
    uint64_t off;      /* write offset; for a truncate, the new size */
    uint8_t *data;     /* the bytes written */
    size_t len;
    uint64_t old_size; /* the file's size before the op */
    uint8_t *old;      /* the bytes the op overwrote or cut, from off */
    size_t old_len;
} sim_op;

typedef struct sim_inode {
    char *path;  /* where the file is now (its grave if removed) */
    sim_op *ops; /* since the last sync */
    size_t nops, cap;
    int gone;    /* its creation was undone */
} sim_inode;

typedef struct sim_nsop {
    int kind;
    char *a, *b;       /* path; for a rename from a to b */
    char *grave;       /* REMOVE: where the file went; RENAME: where the
                          replaced target went (NULL if none) */
    sim_inode *ino;    /* the file created, removed or renamed */
    sim_inode *victim; /* RENAME: the replaced target's inode */
    int synced_a, synced_b;
} sim_nsop;

typedef struct simfs {
    js_vfs vfs; /* first: the registered table */
    js_vfs *base;
    char name[32];
    char *grave_dir;
    pthread_mutex_t mu;
    /* power */
    uint64_t calls; /* mutating calls so far */
    uint64_t cut_at;
    int dead;
    /* faults */
    unsigned fault_classes;
    uint64_t fault_at, fault_calls, faults;
    int fault_rc, fault_forever;
    /* what a cut could undo */
    sim_inode **inodes;
    size_t ninodes, icap;
    sim_nsop *ns;
    size_t nns, nscap;
    uint64_t graves;
} simfs;

typedef struct sim_file {
    js_vfs_file pub;
    simfs *fs;
    sim_inode *ino;
    int writable;
    /* the base backend's file object follows, max-aligned */
} sim_file;

#define SIM_FILE_HDR ((sizeof(sim_file) + 15) & ~(size_t)15)

static inline js_vfs_file *sim_base_file(js_vfs_file *f) {
    return (js_vfs_file *)((char *)f + SIM_FILE_HDR);
}

static inline void *sim_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "simfs: out of memory\n");
        abort();
    }
    return p;
}

static inline char *sim_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(sim_xmalloc(n), s, n);
}

static inline void sim_fatal(const char *what, const char *path, int rc) {
    fprintf(stderr, "simfs: %s %s: %s\n", what, path ? path : "",
            js_strerror(rc));
    abort();
}

static inline int sim_rm_cb(const char *path, const struct stat *st,
                            int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

/* rm -rf path; keep_top: empty it but keep the directory itself. */
static inline int sim_rm_tree(const char *path, int keep_top) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (!keep_top)
        return nftw(path, sim_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    int rc = nftw(path, sim_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(path, 0700); /* nftw removed it last */
    return rc;
}

/* The parent directory of path, into buf. */
static inline const char *sim_parent(const char *path, char *buf,
                                     size_t cap) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n == 0)
        n = slash ? 1 : 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, n ? path : ".", n ? n : 1);
    buf[n ? n : 1] = '\0';
    return buf;
}

static inline int sim_same_dir(const char *path, const char *dir) {
    char buf[4096];
    return strcmp(sim_parent(path, buf, sizeof buf), dir) == 0;
}

/* ---- inodes ---------------------------------------------------------- */

static inline sim_inode *sim_inode_at(simfs *fs, const char *path) {
    for (size_t i = 0; i < fs->ninodes; i++)
        if (!fs->inodes[i]->gone && strcmp(fs->inodes[i]->path, path) == 0)
            return fs->inodes[i];
    return NULL;
}

static inline sim_inode *sim_inode_new(simfs *fs, const char *path) {
    if (fs->ninodes == fs->icap) {
        fs->icap = fs->icap ? 2 * fs->icap : 16;
        fs->inodes = realloc(fs->inodes, fs->icap * sizeof *fs->inodes);
        if (!fs->inodes)
            sim_fatal("realloc", NULL, JS_ENOMEM);
    }
    sim_inode *ino = sim_xmalloc(sizeof *ino);
    memset(ino, 0, sizeof *ino);
    ino->path = sim_strdup(path);
    fs->inodes[fs->ninodes++] = ino;
    return ino;
}

static inline void sim_inode_move(sim_inode *ino, const char *to) {
    free(ino->path);
    ino->path = sim_strdup(to);
}

static inline void sim_ops_clear(sim_inode *ino) {
    for (size_t i = 0; i < ino->nops; i++) {
        free(ino->ops[i].data);
        free(ino->ops[i].old);
    }
    ino->nops = 0;
}

static inline sim_op *sim_op_push(sim_inode *ino) {
    if (ino->nops == ino->cap) {
        ino->cap = ino->cap ? 2 * ino->cap : 8;
        ino->ops = realloc(ino->ops, ino->cap * sizeof *ino->ops);
        if (!ino->ops)
            sim_fatal("realloc", NULL, JS_ENOMEM);
    }
    sim_op *op = &ino->ops[ino->nops++];
    memset(op, 0, sizeof *op);
    return op;
}

static inline sim_nsop *sim_ns_push(simfs *fs, int kind, const char *a,
                                    const char *b) {
    if (fs->nns == fs->nscap) {
        fs->nscap = fs->nscap ? 2 * fs->nscap : 16;
        fs->ns = realloc(fs->ns, fs->nscap * sizeof *fs->ns);
        if (!fs->ns)
            sim_fatal("realloc", NULL, JS_ENOMEM);
    }
    sim_nsop *op = &fs->ns[fs->nns++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->a = sim_strdup(a);
    op->b = b ? sim_strdup(b) : NULL;
    op->synced_b = b == NULL;
    return op;
}

static inline void sim_ns_free(sim_nsop *op) {
    free(op->a);
    free(op->b);
    free(op->grave);
}

static inline char *sim_grave_path(simfs *fs) {
    char buf[4200];
    snprintf(buf, sizeof buf, "%s/%llu", fs->grave_dir,
             (unsigned long long)++fs->graves);
    return sim_strdup(buf);
}

/* ---- gates: the cut and the faults ---------------------------------- */

/* Called at the start of every call (under the lock). mutating: the call
 * counts toward the cut. Returns 0 to go on, 1 to go on and then die (a
 * write at the cut), or a negative code to fail without doing anything. */
static inline int sim_gate(simfs *fs, unsigned cls, int mutating,
                           const char *path) {
    if (fs->dead)
        return JS_EIO;
    if (mutating && getenv("SIMFS_TRACE"))
        fprintf(stderr, "simfs: call %llu: class 0x%x %s\n",
                (unsigned long long)fs->calls + 1, cls, path);
    if (mutating && ++fs->calls >= fs->cut_at && fs->cut_at) {
        fs->dead = 1;
        return cls == SIM_F_WRITE ? 1 : JS_EIO;
    }
    if (fs->fault_classes & cls) {
        uint64_t n = ++fs->fault_calls;
        if (n == fs->fault_at || (fs->fault_forever && n > fs->fault_at &&
                                  fs->fault_at)) {
            fs->faults++;
            if (getenv("SIMFS_TRACE"))
                fprintf(stderr, "simfs: fault %s at call %llu of 0x%x %s\n",
                        js_strerror(fs->fault_rc), (unsigned long long)n,
                        cls, path ? path : "");
            return fs->fault_rc;
        }
    }
    return 0;
}

/* ---- file methods ------------------------------------------------------ */

static int sim_close(js_vfs_file *f);
static int sim_read(js_vfs_file *f, void *buf, size_t n, uint64_t off,
                    size_t *nread);
static int sim_write(js_vfs_file *f, const void *buf, size_t n,
                     uint64_t off);
static int sim_truncate(js_vfs_file *f, uint64_t size);
static int sim_sync(js_vfs_file *f);
static int sim_size(js_vfs_file *f, uint64_t *size);
static int sim_control(js_vfs_file *f, int op, void *arg);

static const js_vfs_io sim_io = {JS_VFS_IO_VERSION, sim_close, sim_read,
                                 sim_write, sim_truncate, sim_sync,
                                 sim_size, sim_control};

static inline simfs *sim_of(js_vfs_file *f) {
    return ((sim_file *)f)->fs;
}

static int sim_close(js_vfs_file *f) {
    js_vfs_file *b = sim_base_file(f);
    return b->io->close(b);
}

static int sim_read(js_vfs_file *f, void *buf, size_t n, uint64_t off,
                    size_t *nread) {
    simfs *fs = sim_of(f);
    js_vfs_file *b = sim_base_file(f);
    pthread_mutex_lock(&fs->mu);
    int rc = sim_gate(fs, SIM_F_READ, 0, NULL);
    if (rc == 0)
        rc = b->io->read(b, buf, n, off, nread);
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

/* Read [off, off+n) of the base file as far as it exists, into a new
 * buffer; *got gets the length. */
static inline uint8_t *sim_read_range(js_vfs_file *b, uint64_t size,
                                      uint64_t off, uint64_t n,
                                      size_t *got) {
    *got = 0;
    if (off >= size)
        return NULL;
    if (n > size - off)
        n = size - off;
    uint8_t *p = sim_xmalloc((size_t)n);
    size_t r = 0;
    int rc = b->io->read(b, p, (size_t)n, off, &r);
    if (rc != 0 || r != n)
        sim_fatal("undo read", NULL, rc ? rc : JS_EIO);
    *got = (size_t)n;
    return p;
}

static int sim_write(js_vfs_file *f, const void *buf, size_t n,
                     uint64_t off) {
    simfs *fs = sim_of(f);
    sim_file *sf = (sim_file *)f;
    js_vfs_file *b = sim_base_file(f);
    pthread_mutex_lock(&fs->mu);
    int gate = sim_gate(fs, SIM_F_WRITE, 1, sf->ino->path);
    int rc = gate < 0 ? gate : 0;
    if (rc == 0) {
        uint64_t size = 0;
        if ((rc = b->io->size(b, &size)) != 0)
            sim_fatal("size", sf->ino->path, rc);
        sim_op *op = sim_op_push(sf->ino);
        op->kind = SIM_OP_WRITE;
        op->off = off;
        op->len = n;
        op->data = memcpy(sim_xmalloc(n), buf, n);
        op->old_size = size;
        op->old = sim_read_range(b, size, off, n, &op->old_len);
        rc = b->io->write(b, buf, n, off);
        if (rc != 0)
            sim_fatal("write", sf->ino->path, rc);
        if (gate == 1)
            rc = JS_EIO;
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int sim_truncate(js_vfs_file *f, uint64_t size) {
    simfs *fs = sim_of(f);
    sim_file *sf = (sim_file *)f;
    js_vfs_file *b = sim_base_file(f);
    pthread_mutex_lock(&fs->mu);
    int rc = sim_gate(fs, SIM_F_TRUNCATE, 1, sf->ino->path);
    if (rc == 0) {
        uint64_t cur = 0;
        if ((rc = b->io->size(b, &cur)) != 0)
            sim_fatal("size", sf->ino->path, rc);
        sim_op *op = sim_op_push(sf->ino);
        op->kind = SIM_OP_TRUNC;
        op->off = size;
        op->old_size = cur;
        op->old = sim_read_range(b, cur, size, cur > size ? cur - size : 0,
                                 &op->old_len);
        if ((rc = b->io->truncate(b, size)) != 0)
            sim_fatal("truncate", sf->ino->path, rc);
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int sim_sync(js_vfs_file *f) {
    simfs *fs = sim_of(f);
    pthread_mutex_lock(&fs->mu);
    int rc = sim_gate(fs, SIM_F_SYNC, 1, ((sim_file *)f)->ino->path);
    if (rc == 0)
        sim_ops_clear(((sim_file *)f)->ino);
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int sim_size(js_vfs_file *f, uint64_t *size) {
    simfs *fs = sim_of(f);
    js_vfs_file *b = sim_base_file(f);
    pthread_mutex_lock(&fs->mu);
    int rc = sim_gate(fs, SIM_F_READ, 0, NULL);
    if (rc == 0)
        rc = b->io->size(b, size);
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int sim_control(js_vfs_file *f, int op, void *arg) {
    js_vfs_file *b = sim_base_file(f);
    return b->io->control(b, op, arg);
}

/* ---- backend methods --------------------------------------------------- */

static inline simfs *sim_fs(js_vfs *v) {
    return (simfs *)v;
}

static int sim_open(js_vfs *v, const char *path, int flags,
                    js_vfs_file *file) {
    simfs *fs = sim_fs(v);
    sim_file *sf = (sim_file *)file;
    js_vfs_file *b = sim_base_file(file);
    pthread_mutex_lock(&fs->mu);
    int creating = 0;
    if (flags & JS_VFS_CREATE) {
        int ex = 0;
        struct stat st;
        ex = stat(path, &st) == 0;
        creating = !ex;
    }
    int rc = sim_gate(fs, SIM_F_OPEN, creating, path);
    if (rc == 0) {
        /* Reads back what a write overwrites, so ask for both. */
        int bflags = flags & JS_VFS_WRITE ? flags | JS_VFS_READ : flags;
        rc = fs->base->open(fs->base, path, bflags, b);
    }
    if (rc == 0) {
        sim_inode *ino = sim_inode_at(fs, path);
        if (!ino)
            ino = sim_inode_new(fs, path);
        if (creating)
            sim_ns_push(fs, SIM_NS_CREATE, path, NULL)->ino = ino;
        sf->fs = fs;
        sf->ino = ino;
        sf->writable = (flags & JS_VFS_WRITE) != 0;
        file->io = &sim_io;
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int sim_remove(js_vfs *v, const char *path) {
    simfs *fs = sim_fs(v);
    pthread_mutex_lock(&fs->mu);
    int rc = sim_gate(fs, SIM_F_REMOVE, 1, path);
    if (rc == 0) {
        struct stat st;
        if (stat(path, &st) != 0) {
            rc = fs->base->remove(fs->base, path); /* the base's error */
        } else {
            sim_inode *ino = sim_inode_at(fs, path);
            if (!ino)
                ino = sim_inode_new(fs, path);
            char *grave = sim_grave_path(fs);
            rc = fs->base->rename(fs->base, path, grave);
            if (rc == 0) {
                sim_nsop *op = sim_ns_push(fs, SIM_NS_REMOVE, path, NULL);
                op->grave = grave;
                op->ino = ino;
                sim_inode_move(ino, grave);
            } else {
                free(grave);
            }
        }
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int sim_rename(js_vfs *v, const char *from, const char *to) {
    simfs *fs = sim_fs(v);
    pthread_mutex_lock(&fs->mu);
    int rc = sim_gate(fs, SIM_F_RENAME, 1, from);
    struct stat st;
    if (rc == 0 && (stat(from, &st) != 0 || !S_ISREG(st.st_mode))) {
        if (stat(from, &st) == 0)
            sim_fatal("rename of a directory (unsupported)", from, JS_EIO);
        rc = fs->base->rename(fs->base, from, to); /* the base's error */
    } else if (rc == 0) {
        sim_inode *ino = sim_inode_at(fs, from);
        if (!ino)
            ino = sim_inode_new(fs, from);
        sim_inode *victim = NULL;
        char *grave = NULL;
        if (stat(to, &st) == 0 && S_ISREG(st.st_mode)) {
            victim = sim_inode_at(fs, to);
            if (!victim)
                victim = sim_inode_new(fs, to);
            grave = sim_grave_path(fs);
            if ((rc = fs->base->rename(fs->base, to, grave)) != 0)
                sim_fatal("rename to grave", to, rc);
            sim_inode_move(victim, grave);
        }
        rc = fs->base->rename(fs->base, from, to);
        if (rc != 0)
            sim_fatal("rename", from, rc);
        sim_nsop *op = sim_ns_push(fs, SIM_NS_RENAME, from, to);
        op->grave = grave;
        op->ino = ino;
        op->victim = victim;
        op->synced_b = 0;
        sim_inode_move(ino, to);
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int sim_mkdir(js_vfs *v, const char *path) {
    simfs *fs = sim_fs(v);
    pthread_mutex_lock(&fs->mu);
    int rc = sim_gate(fs, SIM_F_MKDIR, 1, path);
    if (rc == 0 && (rc = fs->base->mkdir(fs->base, path)) == 0)
        sim_ns_push(fs, SIM_NS_MKDIR, path, NULL);
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int sim_rmdir(js_vfs *v, const char *path) {
    simfs *fs = sim_fs(v);
    pthread_mutex_lock(&fs->mu);
    int rc = sim_gate(fs, SIM_F_MKDIR, 1, path);
    if (rc == 0 && (rc = fs->base->rmdir(fs->base, path)) == 0)
        sim_ns_push(fs, SIM_NS_RMDIR, path, NULL);
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int sim_list(js_vfs *v, const char *dir,
                    int (*cb)(void *ctx, const char *name), void *ctx) {
    simfs *fs = sim_fs(v);
    pthread_mutex_lock(&fs->mu);
    int rc = sim_gate(fs, SIM_F_LIST, 0, dir);
    pthread_mutex_unlock(&fs->mu);
    /* Not under the lock: cb may do I/O of its own. */
    return rc ? rc : fs->base->list(fs->base, dir, cb, ctx);
}

static int sim_sync_dir(js_vfs *v, const char *dir) {
    simfs *fs = sim_fs(v);
    pthread_mutex_lock(&fs->mu);
    int rc = sim_gate(fs, SIM_F_SYNC, 1, dir);
    for (size_t i = 0; rc == 0 && i < fs->nns; i++) {
        sim_nsop *op = &fs->ns[i];
        if (sim_same_dir(op->a, dir))
            op->synced_a = 1;
        if (op->b && sim_same_dir(op->b, dir))
            op->synced_b = 1;
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int sim_lock(js_vfs *v, const char *path, void **token) {
    simfs *fs = sim_fs(v);
    pthread_mutex_lock(&fs->mu);
    int rc = sim_gate(fs, SIM_F_OPEN, 0, path);
    pthread_mutex_unlock(&fs->mu);
    return rc ? rc : fs->base->lock(fs->base, path, token);
}

static int sim_unlock(js_vfs *v, void *token) {
    simfs *fs = sim_fs(v);
    return fs->base->unlock(fs->base, token);
}

/* ---- set-up ------------------------------------------------------------ */

/* A simfs over the posix backend, registered under name (not the
 * default). Removed files go to grave_dir, which must be outside every
 * store directory and is created if needed. */
static inline simfs *sim_new(const char *name, const char *grave_dir) {
    simfs *fs = sim_xmalloc(sizeof *fs);
    memset(fs, 0, sizeof *fs);
    fs->base = js_vfs_find("posix");
    if (!fs->base)
        sim_fatal("no posix backend", NULL, JS_ENOTFOUND);
    snprintf(fs->name, sizeof fs->name, "%s", name);
    fs->grave_dir = sim_strdup(grave_dir);
    if (mkdir(grave_dir, 0700) != 0 && errno != EEXIST)
        sim_fatal("mkdir", grave_dir, JS_EIO);
    pthread_mutex_init(&fs->mu, NULL);
    js_vfs *v = &fs->vfs;
    v->version = JS_VFS_VERSION;
    v->file_size = SIM_FILE_HDR + fs->base->file_size;
    v->name = fs->name;
    v->app_data = fs;
    v->open = sim_open;
    v->remove = sim_remove;
    v->rename = sim_rename;
    v->mkdir = sim_mkdir;
    v->rmdir = sim_rmdir;
    v->list = sim_list;
    v->sync_dir = sim_sync_dir;
    v->lock = sim_lock;
    v->unlock = sim_unlock;
    if (js_vfs_register(v, 0) != 0)
        sim_fatal("register", name, JS_EINVAL);
    return fs;
}

/* Forget every pending change (they are all durable now, or undone) and
 * the grave. Inodes stay: open handles may still point at them. */
static inline void sim_forget(simfs *fs) {
    for (size_t i = 0; i < fs->nns; i++)
        sim_ns_free(&fs->ns[i]);
    fs->nns = 0;
    for (size_t i = 0; i < fs->ninodes; i++)
        sim_ops_clear(fs->inodes[i]);
}

/* Start over: no cut, no fault, nothing pending, the call counts at 0.
 * Only with no file open (inodes are freed). */
static inline void sim_reset(simfs *fs) {
    sim_forget(fs);
    for (size_t i = 0; i < fs->ninodes; i++) {
        free(fs->inodes[i]->ops);
        free(fs->inodes[i]->path);
        free(fs->inodes[i]);
    }
    fs->ninodes = 0;
    fs->calls = fs->cut_at = 0;
    fs->dead = 0;
    fs->fault_classes = 0;
    fs->fault_at = fs->fault_calls = fs->faults = 0;
    fs->fault_forever = 0;
    if (sim_rm_tree(fs->grave_dir, 1) != 0)
        sim_fatal("emptying the grave", fs->grave_dir, JS_EIO);
}

static inline void sim_free(simfs *fs) {
    if (!fs)
        return;
    sim_reset(fs);
    js_vfs_unregister(&fs->vfs);
    free(fs->inodes);
    free(fs->ns);
    rmdir(fs->grave_dir);
    free(fs->grave_dir);
    pthread_mutex_destroy(&fs->mu);
    free(fs);
}

static inline void sim_cut_at(simfs *fs, uint64_t k) {
    pthread_mutex_lock(&fs->mu);
    fs->cut_at = k;
    pthread_mutex_unlock(&fs->mu);
}

static inline void sim_fault(simfs *fs, unsigned classes, uint64_t k,
                             int rc, int forever) {
    pthread_mutex_lock(&fs->mu);
    fs->fault_classes = classes;
    fs->fault_at = k;
    fs->fault_calls = 0;
    fs->fault_rc = rc;
    fs->fault_forever = forever;
    pthread_mutex_unlock(&fs->mu);
}

/* Mutating calls so far (the range of cut points a workload reaches). */
static inline uint64_t sim_calls(simfs *fs) {
    pthread_mutex_lock(&fs->mu);
    uint64_t n = fs->calls;
    pthread_mutex_unlock(&fs->mu);
    return n;
}

/* Calls of the fault classes so far, and faults injected. */
static inline uint64_t sim_fault_calls(simfs *fs) {
    pthread_mutex_lock(&fs->mu);
    uint64_t n = fs->fault_calls;
    pthread_mutex_unlock(&fs->mu);
    return n;
}

/* ---- the power cut ----------------------------------------------------- */

static inline uint64_t sim_rand(uint64_t *s) {
    uint64_t x = *s += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline void sim_pwrite(const char *path, const void *p, size_t n,
                              uint64_t off) {
    FILE *fp = fopen(path, "r+b");
    if (!fp || fseeko(fp, (off_t)off, SEEK_SET) != 0 ||
        fwrite(p, 1, n, fp) != n || fclose(fp) != 0)
        sim_fatal("pwrite", path, JS_EIO);
}

static inline void sim_set_size(const char *path, uint64_t size) {
    if (truncate(path, (off_t)size) != 0)
        sim_fatal("truncate", path, JS_EIO);
}

/* Undo every pending op of ino, newest first: the file is then exactly as
 * at its last sync. */
static inline void sim_undo_all(sim_inode *ino) {
    for (size_t i = ino->nops; i-- > 0;) {
        sim_op *op = &ino->ops[i];
        sim_set_size(ino->path, op->old_size);
        if (op->old_len)
            sim_pwrite(ino->path, op->old, op->old_len, op->off);
    }
}

/* Apply op i of ino as the cut left it: how = 0 lost, 1 whole, 2 the first
 * `part` bytes, 3 garbage in place of its bytes. */
static inline void sim_redo(sim_inode *ino, const sim_op *op, int how,
                            size_t part, uint64_t *rng) {
    if (how == 0)
        return;
    if (op->kind == SIM_OP_TRUNC) {
        sim_set_size(ino->path, op->off);
        return;
    }
    size_t n = how == 2 ? part : op->len;
    if (n == 0)
        return;
    if (how == 3) {
        uint8_t *g = sim_xmalloc(n);
        for (size_t i = 0; i < n; i++)
            g[i] = (uint8_t)sim_rand(rng);
        sim_pwrite(ino->path, g, n, op->off);
        free(g);
    } else {
        sim_pwrite(ino->path, op->data, n, op->off);
    }
}

static inline void sim_fail_file(sim_inode *ino, int mode, uint64_t *rng) {
    if (ino->gone || ino->nops == 0 || mode == SIM_KEEP)
        return;
    sim_undo_all(ino);
    if (mode == SIM_DROP)
        return;
    size_t keep = (size_t)(sim_rand(rng) % (ino->nops + 1));
    for (size_t i = 0; i < ino->nops; i++) {
        const sim_op *op = &ino->ops[i];
        if (i < keep) {
            sim_redo(ino, op, 1, 0, rng);
        } else if (i == keep && mode == SIM_TORN) {
            size_t sectors = (op->len + 511) / 512;
            size_t part = (size_t)(sim_rand(rng) % (sectors + 1)) * 512;
            sim_redo(ino, op, 2, part < op->len ? part : op->len, rng);
        } else if (mode == SIM_GARBAGE && (sim_rand(rng) & 1)) {
            sim_redo(ino, op, 3, 0, rng);
        }
    }
}

static inline void sim_mark_gone_under(simfs *fs, const char *dir) {
    size_t n = strlen(dir);
    for (size_t i = 0; i < fs->ninodes; i++) {
        sim_inode *ino = fs->inodes[i];
        if (!ino->gone && strncmp(ino->path, dir, n) == 0 &&
            ino->path[n] == '/')
            ino->gone = 1;
    }
}

static inline void sim_undo_ns(simfs *fs, sim_nsop *op) {
    switch (op->kind) {
    case SIM_NS_CREATE:
        if (unlink(op->ino->path) != 0)
            sim_fatal("undo create", op->ino->path, JS_EIO);
        op->ino->gone = 1;
        break;
    case SIM_NS_REMOVE:
        if (rename(op->grave, op->a) != 0)
            sim_fatal("undo remove", op->a, JS_EIO);
        sim_inode_move(op->ino, op->a);
        break;
    case SIM_NS_RENAME:
        if (rename(op->b, op->a) != 0)
            sim_fatal("undo rename", op->b, JS_EIO);
        sim_inode_move(op->ino, op->a);
        if (op->grave) {
            if (rename(op->grave, op->b) != 0)
                sim_fatal("undo rename's replace", op->b, JS_EIO);
            sim_inode_move(op->victim, op->b);
        }
        break;
    case SIM_NS_MKDIR:
        /* Whatever was made inside goes with it, synced or not: the
         * directory's own entry never reached the disk. */
        sim_mark_gone_under(fs, op->a);
        if (sim_rm_tree(op->a, 0) != 0)
            sim_fatal("undo mkdir", op->a, JS_EIO);
        break;
    case SIM_NS_RMDIR:
        if (mkdir(op->a, 0700) != 0)
            sim_fatal("undo rmdir", op->a, JS_EIO);
        break;
    }
}

/* Rewrite the files as the disk holds them after the cut (see the top of
 * the file). Call with every store on this simfs closed. Then the simfs
 * is reset, ready for the next run. Returns how many directory changes
 * and files were damaged, for the statistics. */
static inline size_t sim_power_fail(simfs *fs, int mode, uint64_t seed) {
    uint64_t rng = seed * 0x2545f4914f6cdd1dull + 1;
    size_t damaged = 0;
    pthread_mutex_lock(&fs->mu);
    for (size_t i = 0; i < fs->ninodes; i++) {
        damaged += fs->inodes[i]->nops != 0 && mode != SIM_KEEP;
        sim_fail_file(fs->inodes[i], mode, &rng);
    }
    /* Directory changes survive in order, up to the first one the cut
     * takes; synced ones always survive. */
    size_t pending = 0;
    for (size_t i = 0; i < fs->nns; i++)
        pending += !(fs->ns[i].synced_a && fs->ns[i].synced_b);
    size_t keep = mode == SIM_DROP   ? 0
                  : mode == SIM_KEEP ? pending
                                     : (size_t)(sim_rand(&rng) % (pending + 1));
    size_t seen = 0;
    size_t first_lost = fs->nns;
    for (size_t i = 0; i < fs->nns; i++) {
        if (fs->ns[i].synced_a && fs->ns[i].synced_b)
            continue;
        if (seen++ == keep) {
            first_lost = i;
            break;
        }
    }
    for (size_t i = fs->nns; i-- > first_lost;) {
        if (fs->ns[i].synced_a && fs->ns[i].synced_b)
            continue;
        sim_undo_ns(fs, &fs->ns[i]);
        damaged++;
    }
    pthread_mutex_unlock(&fs->mu);
    sim_reset(fs);
    return damaged;
}

#endif
