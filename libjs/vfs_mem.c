/*
 * vfs_mem.c - the "mem" storage backend: a RAM disk keyed by normalised
 * path, with POSIX-like semantics so code above behaves the same on it as
 * on "posix".
 *
 * The registered "mem" is one process-wide disk; jsi_vfs_mem_new() makes
 * private ones (same code, separate state reached through app_data).
 *
 * Model: a hash table maps each normalised path to an entry, a directory
 * or a file. A file's contents live in a node that the entry, every open
 * handle and a held lock each count a reference on, so removing or
 * replacing a name leaves open handles reading the old contents, as POSIX
 * does. Locks belong to the node (as flock() locks belong to the file),
 * so renaming a locked file keeps it locked.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vfs.h"

#define MEM_FLAGS (JS_VFS_READ | JS_VFS_WRITE | JS_VFS_CREATE | JS_VFS_EXCL)
#define MEM_TAB_MIN 64
#define MEM_CAP_MIN 64

/* A file's contents. */
typedef struct mem_node {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t refs; /* its directory entry (if any), open handles, lock */
    int locked;
} mem_node;

/* A name: a directory (node NULL) or a file. */
typedef struct mem_entry {
    struct mem_entry *next; /* hash chain */
    uint64_t hash;
    char *path;             /* normalised */
    mem_node *node;
} mem_entry;

/* One disk. mu protects everything in it and in its nodes. The disk lives
 * while its js_vfs exists or any handle or lock on it is open (refs). The
 * root directories "" and "/" always exist and are not in the table. */
typedef struct mem_state {
    pthread_mutex_t mu;
    mem_entry **tab;
    size_t ntab; /* 0 or a power of two */
    size_t count;
    size_t refs;
} mem_state;

typedef struct mem_file {
    js_vfs_file base; /* first: the library sees only this */
    mem_state *st;
    mem_node *node;
    char *path;       /* as opened, for error details */
    int writable;
} mem_file;

typedef struct mem_lock {
    mem_state *st;
    mem_node *node;
} mem_lock;

/* ---- paths ----------------------------------------------------------- */

static int mem_is_root(const char *p) {
    return p[0] == '\0' || (p[0] == '/' && p[1] == '\0');
}

/* Drop the last component of out[0..*o), out[0..base) being the root. */
static void mem_pop(char *out, size_t base, size_t *o) {
    size_t i = *o;

    while (i > base && out[i - 1] != '/')
        i--;
    *o = i > base ? i - 1 : base;
}

/* Whether out[0..o) ends in a component that ".." can remove. */
static int mem_can_pop(const char *out, size_t base, size_t o) {
    size_t i = o;

    if (o == base)
        return 0;
    while (i > base && out[i - 1] != '/')
        i--;
    return !(o - i == 2 && out[i] == '.' && out[i + 1] == '.');
}

/* The normalised form of path, jsi_malloc'd (NULL on ENOMEM): empty and
 * "." components dropped, ".." removing the component before it. "/" is
 * the absolute root and "" the relative one. */
static char *mem_norm(const char *path) {
    size_t n = strlen(path), base = path[0] == '/' ? 1 : 0, o = base;
    char *out = jsi_malloc(n + 2);
    const char *p = path;

    if (!out)
        return NULL;
    out[0] = '/';
    while (*p) {
        const char *s;
        size_t l;

        while (*p == '/')
            p++;
        s = p;
        while (*p && *p != '/')
            p++;
        l = (size_t)(p - s);
        if (l == 0 || (l == 1 && s[0] == '.'))
            continue;
        if (l == 2 && s[0] == '.' && s[1] == '.') {
            if (mem_can_pop(out, base, o)) {
                mem_pop(out, base, &o);
                continue;
            }
            if (base) /* "/.." is "/" */
                continue;
        }
        if (o > base)
            out[o++] = '/';
        memcpy(out + o, s, l);
        o += l;
    }
    out[o] = '\0';
    return out;
}

/* If p lies under directory dir, the part of p after "dir/", else NULL.
 * With direct set, only an immediate child counts. */
static const char *mem_under(const char *p, const char *dir, int direct) {
    size_t dl = strlen(dir);
    const char *rest;

    if (dl == 0) /* the relative root holds every relative path */
        rest = p[0] != '/' ? p : NULL;
    else if (dl == 1 && dir[0] == '/')
        rest = p[0] == '/' ? p + 1 : NULL;
    else
        rest = strncmp(p, dir, dl) == 0 && p[dl] == '/' ? p + dl + 1 : NULL;
    if (!rest || rest[0] == '\0')
        return NULL;
    if (direct && strchr(rest, '/'))
        return NULL;
    return rest;
}

/* The parent of a normalised, non-root path, written into buf (which has
 * room for the path). */
static const char *mem_parent(const char *p, char *buf) {
    const char *slash = strrchr(p, '/');

    if (!slash)
        return "";
    if (slash == p)
        return "/";
    memcpy(buf, p, (size_t)(slash - p));
    buf[slash - p] = '\0';
    return buf;
}

/* ---- the table (caller holds mu) ------------------------------------- */

static uint64_t mem_hash(const char *p) {
    return jsi_hash(p, strlen(p));
}

static mem_entry *tab_find(mem_state *st, const char *p) {
    uint64_t h = mem_hash(p);
    mem_entry *e;

    if (st->ntab == 0)
        return NULL;
    for (e = st->tab[h & (st->ntab - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->path, p) == 0)
            return e;
    return NULL;
}

static void tab_link(mem_state *st, mem_entry *e) {
    size_t i = e->hash & (st->ntab - 1);

    e->next = st->tab[i];
    st->tab[i] = e;
    st->count++;
}

static void tab_unlink(mem_state *st, mem_entry *e) {
    mem_entry **pp = &st->tab[e->hash & (st->ntab - 1)];

    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    e->next = NULL;
    st->count--;
}

/* Make room for one more entry. Growing is best effort: a full table
 * only gets longer chains. JS_ENOMEM only if there is no table at all. */
static int tab_reserve(mem_state *st, const char *op, const char *path) {
    mem_entry **nt;
    size_t n, i;

    if (st->ntab != 0 && st->count < st->ntab)
        return 0;
    n = st->ntab ? st->ntab * 2 : MEM_TAB_MIN;
    nt = jsi_calloc(n, sizeof *nt);
    if (!nt) {
        if (st->ntab != 0)
            return 0;
        return JSI_ERR(JS_ENOMEM, 0, "%s %s: out of memory", op, path);
    }
    for (i = 0; i < st->ntab; i++) {
        mem_entry *e = st->tab[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = nt[e->hash & (n - 1)];
            nt[e->hash & (n - 1)] = e;
        }
    }
    jsi_free(st->tab);
    st->tab = nt;
    st->ntab = n;
    return 0;
}

/* Give e the path p (taking ownership) and rehash it. */
static void tab_rekey(mem_state *st, mem_entry *e, char *p) {
    tab_unlink(st, e);
    jsi_free(e->path);
    e->path = p;
    e->hash = mem_hash(p);
    tab_link(st, e);
}

static void node_unref(mem_node *node) {
    if (--node->refs > 0)
        return;
    jsi_free(node->data);
    jsi_free(node);
}

static void entry_free(mem_entry *e) {
    if (e->node)
        node_unref(e->node);
    jsi_free(e->path);
    jsi_free(e);
}

static int mem_has_children(mem_state *st, const char *dir) {
    size_t i;
    mem_entry *e;

    for (i = 0; i < st->ntab; i++)
        for (e = st->tab[i]; e; e = e->next)
            if (mem_under(e->path, dir, 0))
                return 1;
    return 0;
}

/* 0 if the directory that would hold p exists, else the error, reported
 * against the caller's spelling of the path. */
static int mem_check_parent(mem_state *st, const char *p, const char *op,
                            const char *path) {
    char *buf = jsi_malloc(strlen(p) + 1);
    const char *parent;
    mem_entry *e;
    int rc = 0;

    if (!buf)
        return JSI_ERR(JS_ENOMEM, 0, "%s %s: out of memory", op, path);
    parent = mem_parent(p, buf);
    if (!mem_is_root(parent)) {
        e = tab_find(st, parent);
        if (!e)
            rc = JSI_ERR(JS_ENOTFOUND, 0,
                         "%s %s: No such file or directory", op, path);
        else if (e->node)
            rc = JSI_ERR(JS_EIO, 0, "%s %s: Not a directory", op, path);
    }
    jsi_free(buf);
    return rc;
}

/* Add an entry for *p (ownership taken on success: *p becomes NULL), a
 * new empty file if file is set, else a directory. */
static int mem_add(mem_state *st, char **p, int file, const char *op,
                   const char *path, mem_entry **out) {
    mem_node *node = NULL;
    mem_entry *e;
    int rc;

    rc = mem_check_parent(st, *p, op, path);
    if (rc == 0)
        rc = tab_reserve(st, op, path);
    if (rc != 0)
        return rc;
    e = jsi_calloc(1, sizeof *e);
    if (file)
        node = jsi_calloc(1, sizeof *node);
    if (!e || (file && !node)) {
        jsi_free(e);
        jsi_free(node);
        return JSI_ERR(JS_ENOMEM, 0, "%s %s: out of memory", op, path);
    }
    if (node)
        node->refs = 1;
    e->node = node;
    e->path = *p;
    e->hash = mem_hash(*p);
    *p = NULL;
    tab_link(st, e);
    *out = e;
    return 0;
}

/* The file node at p, created if create is set and it is missing. */
static int mem_get_file(mem_state *st, char **p, int create, int excl,
                        const char *op, const char *path, mem_node **out) {
    mem_entry *e;
    int rc;

    if (mem_is_root(*p))
        return JSI_ERR(JS_EIO, 0, "%s %s: Is a directory", op, path);
    e = tab_find(st, *p);
    if (e && !e->node)
        return JSI_ERR(JS_EIO, 0, "%s %s: Is a directory", op, path);
    if (e && excl)
        return JSI_ERR(JS_EEXIST, 0, "%s %s: File exists", op, path);
    if (!e && !create)
        return JSI_ERR(JS_ENOTFOUND, 0, "%s %s: No such file or directory",
                       op, path);
    if (!e) {
        rc = mem_add(st, p, 1, op, path, &e);
        if (rc != 0)
            return rc;
    }
    *out = e->node;
    return 0;
}

/* ---- the disk's lifetime --------------------------------------------- */

/* Drop every name; nodes still open live on until closed. */
static void mem_clear(mem_state *st) {
    size_t i;
    mem_entry *e, *next;

    for (i = 0; i < st->ntab; i++)
        for (e = st->tab[i]; e; e = next) {
            next = e->next;
            entry_free(e);
        }
    jsi_free(st->tab);
    st->tab = NULL;
    st->ntab = 0;
    st->count = 0;
}

static void state_ref(mem_state *st) {
    st->refs++; /* caller holds mu */
}

static void state_unref(mem_state *st) {
    size_t left;

    pthread_mutex_lock(&st->mu);
    left = --st->refs;
    pthread_mutex_unlock(&st->mu);
    if (left > 0)
        return;
    /* Nothing else can reach st any more. */
    mem_clear(st);
    pthread_mutex_destroy(&st->mu);
    jsi_free(st);
}

/* ---- files ----------------------------------------------------------- */

static int mem_close(js_vfs_file *file) {
    mem_file *f = (mem_file *)file;

    pthread_mutex_lock(&f->st->mu);
    node_unref(f->node);
    pthread_mutex_unlock(&f->st->mu);
    state_unref(f->st);
    jsi_free(f->path);
    f->node = NULL;
    f->st = NULL;
    f->path = NULL;
    return 0;
}

static int mem_read(js_vfs_file *file, void *buf, size_t n, uint64_t off,
                    size_t *nread) {
    mem_file *f = (mem_file *)file;
    mem_node *node = f->node;
    size_t got = 0;

    pthread_mutex_lock(&f->st->mu);
    if (off < node->len) {
        got = JSI_MIN(n, node->len - (size_t)off);
        memcpy(buf, node->data + off, got);
    }
    pthread_mutex_unlock(&f->st->mu);
    *nread = got;
    return 0;
}

/* Make room for size bytes in node (caller holds mu). */
static int mem_grow(mem_node *node, size_t size) {
    size_t cap;
    uint8_t *p;

    if (size <= node->cap)
        return 0;
    cap = node->cap > SIZE_MAX / 2 ? SIZE_MAX : node->cap * 2;
    cap = JSI_MAX(JSI_MAX(cap, size), (size_t)MEM_CAP_MIN);
    p = jsi_realloc(node->data, cap);
    if (!p && cap > size) {
        cap = size;
        p = jsi_realloc(node->data, cap);
    }
    if (!p)
        return -1;
    node->data = p;
    node->cap = cap;
    return 0;
}

/* Set node's length to size, zero-filling any gap (caller holds mu). */
static int mem_resize(mem_node *node, size_t size) {
    if (size > node->len) {
        if (mem_grow(node, size) != 0)
            return -1;
        memset(node->data + node->len, 0, size - node->len);
    }
    node->len = size;
    return 0;
}

static int mem_check_write(mem_file *f, const char *op, uint64_t end_hi,
                           uint64_t end_lo) {
    if (!f->writable)
        return JSI_ERR(JS_EIO, 0, "%s %s: Bad file descriptor", op, f->path);
    if (end_hi > SIZE_MAX || end_lo > SIZE_MAX - end_hi)
        return JSI_ERR(JS_ENOSPC, 0, "%s %s: File too large", op, f->path);
    return 0;
}

static int mem_write(js_vfs_file *file, const void *buf, size_t n,
                     uint64_t off) {
    mem_file *f = (mem_file *)file;
    mem_node *node = f->node;
    size_t end;
    int rc = mem_check_write(f, "write", off, n);

    if (rc != 0 || n == 0) /* as pwrite(2): writing nothing never extends */
        return rc;
    end = (size_t)off + n;
    pthread_mutex_lock(&f->st->mu);
    /* A RAM disk out of memory is full. */
    if (end > node->len && mem_resize(node, end) != 0)
        rc = JSI_ERR(JS_ENOSPC, 0, "write %s: No space left (out of memory)",
                     f->path);
    else
        memcpy(node->data + off, buf, n);
    pthread_mutex_unlock(&f->st->mu);
    return rc;
}

static int mem_truncate(js_vfs_file *file, uint64_t size) {
    mem_file *f = (mem_file *)file;
    mem_node *node = f->node;
    int rc = mem_check_write(f, "truncate", size, 0);

    if (rc != 0)
        return rc;
    pthread_mutex_lock(&f->st->mu);
    if (mem_resize(node, (size_t)size) != 0) {
        rc = JSI_ERR(JS_ENOSPC, 0,
                     "truncate %s: No space left (out of memory)", f->path);
    } else if (node->len <= node->cap / 4) {
        /* Give back most of a file that shrank a lot; best effort. */
        if (node->len == 0) {
            jsi_free(node->data);
            node->data = NULL;
            node->cap = 0;
        } else {
            uint8_t *p = jsi_realloc(node->data, node->len);
            if (p) {
                node->data = p;
                node->cap = node->len;
            }
        }
    }
    pthread_mutex_unlock(&f->st->mu);
    return rc;
}

static int mem_sync(js_vfs_file *file) {
    (void)file;
    return 0;
}

static int mem_size(js_vfs_file *file, uint64_t *size) {
    mem_file *f = (mem_file *)file;

    pthread_mutex_lock(&f->st->mu);
    *size = f->node->len;
    pthread_mutex_unlock(&f->st->mu);
    return 0;
}

static int mem_control(js_vfs_file *file, int op, void *arg) {
    mem_file *f = (mem_file *)file;

    (void)arg;
    return JSI_ERR(JS_ENOTSUP, 0, "control %s: op %d not supported by mem",
                   f->path, op);
}

static const js_vfs_io mem_io = {
    JS_VFS_IO_VERSION, mem_close, mem_read, mem_write,
    mem_truncate,      mem_sync,  mem_size, mem_control,
};

static int mem_open(js_vfs *vfs, const char *path, int flags,
                    js_vfs_file *file) {
    mem_state *st = vfs->app_data;
    mem_file *f = (mem_file *)file;
    mem_node *node = NULL;
    char *p, *copy;
    int rc;

    if ((flags & ~MEM_FLAGS) || !(flags & (JS_VFS_READ | JS_VFS_WRITE)) ||
        ((flags & JS_VFS_EXCL) && !(flags & JS_VFS_CREATE)))
        return JSI_ERR(JS_EINVAL, 0, "open %s: bad flags 0x%x", path, flags);
    p = mem_norm(path);
    copy = jsi_strdup(path);
    if (!p || !copy) {
        jsi_free(p);
        jsi_free(copy);
        return JSI_ERR(JS_ENOMEM, 0, "open %s: out of memory", path);
    }
    pthread_mutex_lock(&st->mu);
    rc = mem_get_file(st, &p, flags & JS_VFS_CREATE, flags & JS_VFS_EXCL,
                      "open", path, &node);
    if (rc == 0) {
        node->refs++;
        state_ref(st);
    }
    pthread_mutex_unlock(&st->mu);
    jsi_free(p);
    if (rc != 0) {
        jsi_free(copy);
        return rc;
    }
    f->st = st;
    f->node = node;
    f->path = copy;
    f->writable = (flags & JS_VFS_WRITE) != 0;
    f->base.io = &mem_io;
    return 0;
}

/* ---- names and directories ------------------------------------------- */

static int mem_remove(js_vfs *vfs, const char *path) {
    mem_state *st = vfs->app_data;
    char *p = mem_norm(path);
    mem_entry *e;
    int rc = 0;

    if (!p)
        return JSI_ERR(JS_ENOMEM, 0, "remove %s: out of memory", path);
    pthread_mutex_lock(&st->mu);
    e = mem_is_root(p) ? NULL : tab_find(st, p);
    if (mem_is_root(p) || (e && !e->node))
        rc = JSI_ERR(JS_EIO, 0, "remove %s: Is a directory", path);
    else if (!e)
        rc = JSI_ERR(JS_ENOTFOUND, 0, "remove %s: No such file or directory",
                     path);
    else {
        tab_unlink(st, e);
        entry_free(e);
    }
    pthread_mutex_unlock(&st->mu);
    jsi_free(p);
    return rc;
}

static int mem_mkdir(js_vfs *vfs, const char *path) {
    mem_state *st = vfs->app_data;
    char *p = mem_norm(path);
    mem_entry *e;
    int rc;

    if (!p)
        return JSI_ERR(JS_ENOMEM, 0, "mkdir %s: out of memory", path);
    pthread_mutex_lock(&st->mu);
    if (mem_is_root(p) || tab_find(st, p))
        rc = JSI_ERR(JS_EEXIST, 0, "mkdir %s: File exists", path);
    else
        rc = mem_add(st, &p, 0, "mkdir", path, &e);
    pthread_mutex_unlock(&st->mu);
    jsi_free(p);
    return rc;
}

static int mem_rmdir(js_vfs *vfs, const char *path) {
    mem_state *st = vfs->app_data;
    char *p = mem_norm(path);
    mem_entry *e;
    int rc = 0;

    if (!p)
        return JSI_ERR(JS_ENOMEM, 0, "rmdir %s: out of memory", path);
    pthread_mutex_lock(&st->mu);
    e = mem_is_root(p) ? NULL : tab_find(st, p);
    if (mem_is_root(p))
        rc = JSI_ERR(JS_EIO, 0, "rmdir %s: Device or resource busy", path);
    else if (!e)
        rc = JSI_ERR(JS_ENOTFOUND, 0, "rmdir %s: No such file or directory",
                     path);
    else if (e->node)
        rc = JSI_ERR(JS_EIO, 0, "rmdir %s: Not a directory", path);
    else if (mem_has_children(st, p))
        rc = JSI_ERR(JS_EIO, 0, "rmdir %s: Directory not empty", path);
    else {
        tab_unlink(st, e);
        entry_free(e);
    }
    pthread_mutex_unlock(&st->mu);
    jsi_free(p);
    return rc;
}

/* 0 if p is an existing directory, else the error for "op path". */
static int mem_check_dir(mem_state *st, const char *p, const char *op,
                         const char *path) {
    mem_entry *e;

    if (mem_is_root(p))
        return 0;
    e = tab_find(st, p);
    if (!e)
        return JSI_ERR(JS_ENOTFOUND, 0, "%s %s: No such file or directory",
                       op, path);
    if (e->node)
        return JSI_ERR(JS_EIO, 0, "%s %s: Not a directory", op, path);
    return 0;
}

typedef struct mem_names {
    char **v;
    size_t n;
    size_t cap;
} mem_names;

static void names_free(mem_names *ns) {
    size_t i;

    for (i = 0; i < ns->n; i++)
        jsi_free(ns->v[i]);
    jsi_free(ns->v);
}

static int names_add(mem_names *ns, const char *name) {
    char *copy;

    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 16;
        char **v = jsi_realloc(ns->v, cap * sizeof *v);
        if (!v)
            return -1;
        ns->v = v;
        ns->cap = cap;
    }
    copy = jsi_strdup(name);
    if (!copy)
        return -1;
    ns->v[ns->n++] = copy;
    return 0;
}

/* The names directly in directory p (caller holds mu). */
static int mem_collect(mem_state *st, const char *p, const char *path,
                       mem_names *ns) {
    size_t i;
    mem_entry *e;
    const char *name;
    int rc = mem_check_dir(st, p, "list", path);

    for (i = 0; rc == 0 && i < st->ntab; i++)
        for (e = st->tab[i]; rc == 0 && e; e = e->next)
            if ((name = mem_under(e->path, p, 1)) && names_add(ns, name))
                rc = JSI_ERR(JS_ENOMEM, 0, "list %s: out of memory", path);
    return rc;
}

static int names_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names are copied out under the lock and handed to cb after it is
 * released (in sorted order, for determinism), so cb may call back into
 * the disk. */
static int mem_list(js_vfs *vfs, const char *dir,
                    int (*cb)(void *ctx, const char *name), void *ctx) {
    mem_state *st = vfs->app_data;
    mem_names ns = {NULL, 0, 0};
    char *p = mem_norm(dir);
    size_t i;
    int rc;

    if (!p)
        return JSI_ERR(JS_ENOMEM, 0, "list %s: out of memory", dir);
    pthread_mutex_lock(&st->mu);
    rc = mem_collect(st, p, dir, &ns);
    pthread_mutex_unlock(&st->mu);
    jsi_free(p);
    if (rc == 0 && ns.n > 1)
        qsort(ns.v, ns.n, sizeof *ns.v, names_cmp);
    for (i = 0; rc == 0 && i < ns.n; i++)
        rc = cb(ctx, ns.v[i]);
    names_free(&ns);
    return rc;
}

static int mem_sync_dir(js_vfs *vfs, const char *dir) {
    mem_state *st = vfs->app_data;
    char *p = mem_norm(dir);
    int rc;

    if (!p)
        return JSI_ERR(JS_ENOMEM, 0, "sync_dir %s: out of memory", dir);
    pthread_mutex_lock(&st->mu);
    rc = mem_check_dir(st, p, "sync_dir", dir);
    pthread_mutex_unlock(&st->mu);
    jsi_free(p);
    return rc;
}

/* ---- rename ---------------------------------------------------------- */

typedef struct mem_move {
    const char *from; /* the caller's spelling, for errors */
    const char *to;
    char *nf;         /* normalised */
    char *nt;
} mem_move;

static int move_fail(const mem_move *m, int rc, const char *why) {
    return JSI_ERR(rc, 0, "rename %s to %s: %s", m->from, m->to, why);
}

/* Rename file entry ef, replacing a file at the target if there is one. */
static int move_file(mem_state *st, mem_move *m, mem_entry *ef,
                     mem_entry *et) {
    if (et && !et->node)
        return move_fail(m, JS_EIO, "Is a directory");
    if (et) {
        /* The target's entry takes over the source's node. */
        node_unref(et->node);
        et->node = ef->node;
        ef->node = NULL;
        tab_unlink(st, ef);
        entry_free(ef);
        return 0;
    }
    tab_rekey(st, ef, m->nt);
    m->nt = NULL;
    return 0;
}

/* The entries under directory m->nf and their paths under m->nt. */
typedef struct mem_subtree {
    size_t n;
    mem_entry **e;
    char **paths;
} mem_subtree;

static void subtree_free(mem_subtree *t) {
    size_t i;

    for (i = 0; t->paths && i < t->n; i++)
        jsi_free(t->paths[i]);
    jsi_free(t->paths);
    jsi_free(t->e);
}

static char *move_path(const mem_move *m, const char *rest) {
    size_t ntl = strlen(m->nt), rl = strlen(rest);
    char *p = jsi_malloc(ntl + rl + 2);

    if (p) {
        memcpy(p, m->nt, ntl);
        p[ntl] = '/';
        memcpy(p + ntl + 1, rest, rl + 1);
    }
    return p;
}

static int subtree_collect(mem_state *st, const mem_move *m,
                           mem_subtree *t) {
    size_t i, k = 0;
    mem_entry *e;

    for (i = 0; i < st->ntab; i++)
        for (e = st->tab[i]; e; e = e->next)
            t->n += mem_under(e->path, m->nf, 0) != NULL;
    if (t->n == 0)
        return 0;
    t->e = jsi_calloc(t->n, sizeof *t->e);
    t->paths = jsi_calloc(t->n, sizeof *t->paths);
    if (!t->e || !t->paths)
        return move_fail(m, JS_ENOMEM, "out of memory");
    for (i = 0; i < st->ntab; i++)
        for (e = st->tab[i]; e; e = e->next) {
            const char *rest = mem_under(e->path, m->nf, 0);
            if (!rest)
                continue;
            t->e[k] = e;
            t->paths[k] = move_path(m, rest);
            if (!t->paths[k++])
                return move_fail(m, JS_ENOMEM, "out of memory");
        }
    return 0;
}

/* Rename directory entry ef and everything under it, replacing an empty
 * directory at the target if there is one. All memory is allocated before
 * anything changes, so it happens entirely or not at all. */
static int move_dir(mem_state *st, mem_move *m, mem_entry *ef,
                    mem_entry *et) {
    mem_subtree t = {0, NULL, NULL};
    size_t i;
    int rc;

    if (et && et->node)
        return move_fail(m, JS_EIO, "Not a directory");
    if (mem_under(m->nt, m->nf, 0))
        return move_fail(m, JS_EIO, "Invalid argument");
    if (et && mem_has_children(st, m->nt))
        return move_fail(m, JS_EIO, "Directory not empty");
    rc = subtree_collect(st, m, &t);
    if (rc == 0) {
        if (et) {
            tab_unlink(st, et);
            entry_free(et);
        }
        tab_rekey(st, ef, m->nt);
        m->nt = NULL;
        for (i = 0; i < t.n; i++) {
            tab_rekey(st, t.e[i], t.paths[i]);
            t.paths[i] = NULL;
        }
    }
    subtree_free(&t);
    return rc;
}

static int mem_move_locked(mem_state *st, mem_move *m) {
    mem_entry *ef, *et;
    int rc;

    if (mem_is_root(m->nf) || mem_is_root(m->nt))
        return move_fail(m, JS_EIO, "Device or resource busy");
    ef = tab_find(st, m->nf);
    if (!ef)
        return move_fail(m, JS_ENOTFOUND, "No such file or directory");
    if (strcmp(m->nf, m->nt) == 0)
        return 0;
    rc = mem_check_parent(st, m->nt, "rename", m->to);
    if (rc != 0)
        return rc;
    et = tab_find(st, m->nt);
    return ef->node ? move_file(st, m, ef, et) : move_dir(st, m, ef, et);
}

static int mem_rename(js_vfs *vfs, const char *from, const char *to) {
    mem_state *st = vfs->app_data;
    mem_move m;
    int rc;

    m.from = from;
    m.to = to;
    m.nf = mem_norm(from);
    m.nt = mem_norm(to);
    if (!m.nf || !m.nt)
        rc = move_fail(&m, JS_ENOMEM, "out of memory");
    else {
        pthread_mutex_lock(&st->mu);
        rc = mem_move_locked(st, &m);
        pthread_mutex_unlock(&st->mu);
    }
    jsi_free(m.nf);
    jsi_free(m.nt);
    return rc;
}

/* ---- locks ----------------------------------------------------------- */

/* As with flock(), the lock file is created if missing and the lock
 * belongs to the file, not the name. */
static int mem_lock_file(js_vfs *vfs, const char *path, void **token) {
    mem_state *st = vfs->app_data;
    mem_lock *tok = jsi_malloc(sizeof *tok);
    char *p = mem_norm(path);
    mem_node *node = NULL;
    int rc;

    *token = NULL;
    if (!tok || !p) {
        jsi_free(tok);
        jsi_free(p);
        return JSI_ERR(JS_ENOMEM, 0, "lock %s: out of memory", path);
    }
    pthread_mutex_lock(&st->mu);
    rc = mem_get_file(st, &p, 1, 0, "lock", path, &node);
    if (rc == 0 && node->locked)
        rc = JSI_ERR(JS_ELOCKED, 0, "lock %s: held by another opener", path);
    if (rc == 0) {
        node->locked = 1;
        node->refs++;
        state_ref(st);
    }
    pthread_mutex_unlock(&st->mu);
    jsi_free(p);
    if (rc != 0) {
        jsi_free(tok);
        return rc;
    }
    tok->st = st;
    tok->node = node;
    *token = tok;
    return 0;
}

static int mem_unlock(js_vfs *vfs, void *token) {
    mem_lock *tok = token;

    (void)vfs;
    if (!tok)
        return JSI_ERR(JS_EINVAL, 0, "unlock: bad token");
    pthread_mutex_lock(&tok->st->mu);
    tok->node->locked = 0;
    node_unref(tok->node);
    pthread_mutex_unlock(&tok->st->mu);
    state_unref(tok->st);
    jsi_free(tok);
    return 0;
}

/* ---- instances ------------------------------------------------------- */

static mem_state mem_global = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .refs = 1, /* the registered js_vfs, never released */
};

static js_vfs mem_vfs = {
    JS_VFS_VERSION, sizeof(mem_file), "mem",        &mem_global,
    mem_open,       mem_remove,       mem_rename,   mem_mkdir,
    mem_rmdir,      mem_list,         mem_sync_dir, mem_lock_file,
    mem_unlock,
};

js_vfs *jsi_vfs_mem(void) {
    return &mem_vfs;
}

js_vfs *jsi_vfs_mem_new(void) {
    js_vfs *vfs = jsi_malloc(sizeof *vfs);
    mem_state *st = jsi_calloc(1, sizeof *st);

    if (!vfs || !st || pthread_mutex_init(&st->mu, NULL) != 0) {
        jsi_free(vfs);
        jsi_free(st);
        return NULL;
    }
    st->refs = 1;
    *vfs = mem_vfs;
    vfs->app_data = st;
    return vfs;
}

void jsi_vfs_mem_free(js_vfs *vfs) {
    mem_state *st;

    /* Only private instances are ever freed. */
    if (!vfs || vfs == &mem_vfs || vfs->open != mem_open)
        return;
    st = vfs->app_data;
    pthread_mutex_lock(&st->mu);
    mem_clear(st);
    pthread_mutex_unlock(&st->mu);
    state_unref(st);
    jsi_free(vfs);
}
