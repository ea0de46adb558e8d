/*
 * vfs.c - the backend registry and the helpers the layers above use over
 * any js_vfs.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "vfs.h"

/* ---- registry -------------------------------------------------------- */

/* Registered backends, in registration order. reg_mu protects all of it;
 * the built-ins are added once by reg_init, before anything else can look.
 * The first slots are static, so the built-ins never need memory. */
#define REG_FIXED 8
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static js_vfs *reg_fixed[REG_FIXED];
static js_vfs **reg_v = reg_fixed;
static size_t reg_n;
static size_t reg_cap = REG_FIXED;
static js_vfs *reg_default;

static void reg_init(void) {
    reg_v[reg_n++] = jsi_vfs_posix();
    reg_v[reg_n++] = jsi_vfs_mem();
    reg_default = jsi_vfs_posix();
}

/* Lock the registry, filling it first if this is its first use. */
static void reg_start(void) {
    pthread_once(&reg_once, reg_init);
    pthread_mutex_lock(&reg_mu);
}

/* Index of the backend called name, or reg_n (caller holds reg_mu). */
static size_t reg_index(const char *name) {
    size_t i;

    for (i = 0; i < reg_n; i++)
        if (strcmp(reg_v[i]->name, name) == 0)
            break;
    return i;
}

/* Room for one more entry (caller holds reg_mu). */
static int reg_grow(void) {
    js_vfs **v;

    if (reg_n < reg_cap)
        return 0;
    v = jsi_malloc(reg_cap * 2 * sizeof *v);
    if (!v)
        return JSI_ERR(JS_ENOMEM, 0, "vfs register: out of memory");
    memcpy(v, reg_v, reg_n * sizeof *v);
    if (reg_v != reg_fixed)
        jsi_free(reg_v);
    reg_v = v;
    reg_cap *= 2;
    return 0;
}

/* JS_EINVAL, naming the fault, unless vfs is a usable table. */
static int vfs_check(const js_vfs *vfs) {
    size_t i;

    if (!vfs)
        return JSI_ERR(JS_EINVAL, 0, "vfs: NULL");
    if (!vfs->name || !vfs->name[0])
        return JSI_ERR(JS_EINVAL, 0, "vfs: no name");
    if (vfs->version < 1)
        return JSI_ERR(JS_EINVAL, 0, "vfs %s: version %u (must be >= 1)",
                       vfs->name, vfs->version);
    if (vfs->file_size < sizeof(js_vfs_file))
        return JSI_ERR(JS_EINVAL, 0,
                       "vfs %s: file_size %zu is under sizeof(js_vfs_file)",
                       vfs->name, vfs->file_size);
    {
        const struct {
            const char *what;
            int set;
        } m[] = {
            {"open", vfs->open != NULL},       {"remove", vfs->remove != NULL},
            {"rename", vfs->rename != NULL},   {"mkdir", vfs->mkdir != NULL},
            {"rmdir", vfs->rmdir != NULL},     {"list", vfs->list != NULL},
            {"sync_dir", vfs->sync_dir != NULL}, {"lock", vfs->lock != NULL},
            {"unlock", vfs->unlock != NULL},
        };
        for (i = 0; i < sizeof m / sizeof m[0]; i++)
            if (!m[i].set)
                return JSI_ERR(JS_EINVAL, 0, "vfs %s: no %s method",
                               vfs->name, m[i].what);
    }
    return 0;
}

JS_API int js_vfs_register(js_vfs *vfs, int make_default) {
    size_t i;
    int rc;

    jsi_err_clear();
    rc = vfs_check(vfs);
    if (rc != 0)
        return rc;
    reg_start();
    i = reg_index(vfs->name);
    if (i < reg_n) {
        if (reg_default == reg_v[i])
            reg_default = vfs;
        reg_v[i] = vfs;
    } else {
        rc = reg_grow();
        if (rc == 0)
            reg_v[reg_n++] = vfs;
    }
    if (rc == 0 && (make_default || !reg_default))
        reg_default = vfs;
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

JS_API int js_vfs_unregister(js_vfs *vfs) {
    size_t i;
    int rc = 0;

    jsi_err_clear();
    if (!vfs)
        return JSI_ERR(JS_EINVAL, 0, "vfs: NULL");
    reg_start();
    for (i = 0; i < reg_n && reg_v[i] != vfs; i++)
        ;
    if (i == reg_n) {
        rc = JSI_ERR(JS_ENOTFOUND, 0, "vfs %s: not registered",
                     vfs->name ? vfs->name : "(unnamed)");
    } else {
        memmove(reg_v + i, reg_v + i + 1, (reg_n - i - 1) * sizeof *reg_v);
        reg_n--;
        /* The default passes to the oldest remaining backend. */
        if (reg_default == vfs)
            reg_default = reg_n ? reg_v[0] : NULL;
    }
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

JS_API js_vfs *js_vfs_find(const char *name) {
    js_vfs *vfs = NULL;
    size_t i;

    reg_start();
    if (!name) {
        vfs = reg_default;
    } else {
        i = reg_index(name);
        if (i < reg_n)
            vfs = reg_v[i];
    }
    pthread_mutex_unlock(&reg_mu);
    return vfs;
}

/* ---- error detail across cleanup ------------------------------------- */

/* Cleanup after a failure (removing a temp file, probing) may record its
 * own failure; these keep the first failure's detail for the caller. */
typedef struct saved_err {
    char msg[512];
} saved_err;

static void err_save(saved_err *s) {
    snprintf(s->msg, sizeof s->msg, "%s", js_errmsg());
}

static int err_restore(int rc, const saved_err *s) {
    return JSI_ERR(rc, 0, "%s", s->msg);
}

/* ---- paths ----------------------------------------------------------- */

/* dir + '/' + name + suffix (no '/' after an empty dir or one ending in
 * '/'), jsi_malloc'd. */
static char *path_join3(const char *dir, const char *name,
                        const char *suffix) {
    size_t dl = dir ? strlen(dir) : 0, nl = name ? strlen(name) : 0;
    size_t sl = strlen(suffix);
    int slash = dl > 0 && dir[dl - 1] != '/';
    char *p = jsi_malloc(dl + (size_t)slash + nl + sl + 1);

    if (!p)
        return NULL;
    if (dl)
        memcpy(p, dir, dl);
    if (slash)
        p[dl] = '/';
    if (nl)
        memcpy(p + dl + slash, name, nl);
    memcpy(p + dl + slash + nl, suffix, sl + 1);
    return p;
}

char *jsi_path_join(const char *dir, const char *name) {
    return path_join3(dir, name, "");
}

/* ---- files ----------------------------------------------------------- */

/* A file's method table is complete for the version it claims. */
int jsi_vfs_io_ok(const js_vfs_io *io) {
    return io && io->version >= 1 && io->close && io->read && io->write &&
           io->truncate && io->sync && io->size && io->control;
}

int jsi_vfs_open(js_vfs *vfs, const char *path, int flags,
                 js_vfs_file **out) {
    js_vfs_file *f;
    int rc;

    if (!out)
        return JSI_ERR(JS_EINVAL, 0, "open: NULL out");
    *out = NULL;
    if (!vfs || !path)
        return JSI_ERR(JS_EINVAL, 0, "open: NULL %s", vfs ? "path" : "vfs");
    if (vfs->file_size < sizeof(js_vfs_file))
        return JSI_ERR(JS_EINVAL, 0, "open %s: vfs %s: file_size %zu too small",
                       path, vfs->name, vfs->file_size);
    f = jsi_calloc(1, vfs->file_size);
    if (!f)
        return JSI_ERR(JS_ENOMEM, 0, "open %s: out of memory", path);
    rc = vfs->open(vfs, path, flags, f);
    if (rc > 0)
        rc = JSI_ERR(JS_EIO, 0, "open %s: vfs %s returned %d", path,
                     vfs->name, rc);
    else if (rc == 0 && !jsi_vfs_io_ok(f->io)) {
        /* Unusable methods: the file cannot even be closed through them. */
        rc = JSI_ERR(JS_EINVAL, 0, "open %s: vfs %s gave an incomplete io "
                     "table", path, vfs->name);
    }
    if (rc != 0) {
        /* The contract: no close after a failed open. */
        jsi_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int jsi_vfs_close(js_vfs_file *f) {
    int rc = 0;

    if (!f)
        return 0;
    if (f->io)
        rc = f->io->close(f);
    jsi_free(f);
    return rc;
}

int jsi_vfs_read_exact(js_vfs_file *f, void *buf, size_t n, uint64_t off) {
    size_t got = 0, r;
    int rc;

    /* One call suffices for a conforming backend; the loop tolerates one
     * that returns short before end of file. */
    while (got < n) {
        r = 0;
        rc = f->io->read(f, (char *)buf + got, n - got, off + got, &r);
        if (rc != 0)
            return rc;
        if (r == 0)
            return JSI_ERR(JS_ECORRUPT, 0,
                           "short read: %zu bytes at offset %llu, file ends "
                           "after %zu",
                           n, (unsigned long long)off, got);
        got += JSI_MIN(r, n - got);
    }
    return 0;
}

/* Read the open file f (of path) into b, replacing b's contents. */
static int read_whole(js_vfs_file *f, const char *path, jsi_buf *b,
                      size_t max) {
    uint64_t size;
    int rc;

    rc = f->io->size(f, &size);
    if (rc != 0)
        return rc;
    if (size > max)
        return JSI_ERR(JS_ECORRUPT, 0, "read %s: %llu bytes, over the limit "
                       "of %zu", path, (unsigned long long)size, max);
    b->len = 0;
    rc = jsi_buf_reserve(b, (size_t)size);
    if (rc != 0)
        return JSI_ERR(rc, 0, "read %s: %s", path, js_errmsg());
    rc = jsi_vfs_read_exact(f, b->p, (size_t)size, 0);
    if (rc == JS_ECORRUPT)
        return JSI_ERR(rc, 0, "read %s: %s", path, js_errmsg());
    if (rc == 0)
        b->len = (size_t)size;
    return rc;
}

int jsi_vfs_read_file(js_vfs *vfs, const char *path, jsi_buf *b,
                      size_t max) {
    js_vfs_file *f;
    int rc;

    rc = jsi_vfs_open(vfs, path, JS_VFS_READ, &f);
    if (rc != 0)
        return rc;
    rc = read_whole(f, path, b, max);
    if (rc != 0) {
        saved_err s;
        err_save(&s);
        jsi_vfs_close(f);
        return err_restore(rc, &s);
    }
    /* Everything wanted is in b; a failure to close a file only read
     * loses nothing. */
    jsi_vfs_close(f);
    return 0;
}

/* Write data as the whole content of path and make it durable. */
static int write_synced(js_vfs *vfs, const char *path, const void *data,
                        size_t len, int *created) {
    js_vfs_file *f;
    int rc, crc;

    rc = jsi_vfs_open(vfs, path, JS_VFS_WRITE | JS_VFS_CREATE, &f);
    if (rc != 0)
        return rc;
    *created = 1;
    /* A temp file left by a crash may be longer than the new content. */
    rc = f->io->truncate(f, 0);
    if (rc == 0 && len > 0)
        rc = f->io->write(f, data, len, 0);
    if (rc == 0)
        rc = f->io->sync(f);
    if (rc != 0) {
        saved_err s;
        err_save(&s);
        jsi_vfs_close(f);
        return err_restore(rc, &s);
    }
    crc = jsi_vfs_close(f);
    return crc;
}

int jsi_vfs_write_atomic(js_vfs *vfs, const char *dir, const char *name,
                         const void *data, size_t len) {
    char *tmp = path_join3(dir, name, ".tmp");
    char *dst = jsi_path_join(dir, name);
    int rc, created = 0;

    if (!tmp || !dst) {
        rc = JSI_ERR(JS_ENOMEM, 0, "write %s/%s: out of memory", dir, name);
        goto out;
    }
    rc = write_synced(vfs, tmp, data, len, &created);
    if (rc == 0)
        rc = vfs->rename(vfs, tmp, dst);
    if (rc != 0) {
        /* The old file, if any, is untouched; leave no temp beside it. */
        if (created) {
            saved_err s;
            err_save(&s);
            (void)vfs->remove(vfs, tmp);
            err_restore(rc, &s);
        }
        goto out;
    }
    rc = vfs->sync_dir(vfs, dir);
out:
    jsi_free(tmp);
    jsi_free(dst);
    return rc;
}

/* ---- directories ----------------------------------------------------- */

/* A list callback that stops at the first entry. */
static int stop_cb(void *ctx, const char *name) {
    (void)ctx;
    (void)name;
    return 1;
}

/* 0 if path is a directory (list succeeds on it), else list's error. */
static int is_dir(js_vfs *vfs, const char *path) {
    int rc = vfs->list(vfs, path, stop_cb, NULL);

    return rc > 0 ? 0 : rc;
}

/* mkdir p and make its entry durable: until the parent is synced, a power
 * cut may take the new directory back, with everything later made and
 * synced inside it. p is cut short and restored while working. */
static int mkdir_durable(js_vfs *vfs, char *p) {
    char *cut = strrchr(p, '/');
    int rc = vfs->mkdir(vfs, p);

    if (rc != 0 || !cut)
        return rc;
    if (cut == p)
        return vfs->sync_dir(vfs, "/");
    *cut = '\0';
    rc = vfs->sync_dir(vfs, p);
    *cut = '/';
    return rc;
}

/* mkdir -p on p, which this may cut short and restore while working. */
static int mkdirs_at(js_vfs *vfs, char *p) {
    char *cut;
    int rc;

    if (p[0] == '\0' || strcmp(p, "/") == 0)
        return 0; /* the roots always exist */
    rc = mkdir_durable(vfs, p);
    if (rc == JS_EEXIST)
        return is_dir(vfs, p);
    if (rc != JS_ENOTFOUND)
        return rc;
    /* The parent is missing: make it, then try again. */
    cut = strrchr(p, '/');
    if (!cut)
        return rc;
    while (cut > p && cut[-1] == '/')
        cut--;
    if (cut == p)
        return rc;
    *cut = '\0';
    rc = mkdirs_at(vfs, p);
    *cut = '/';
    if (rc != 0)
        return rc;
    rc = mkdir_durable(vfs, p);
    return rc == JS_EEXIST ? is_dir(vfs, p) : rc;
}

int jsi_vfs_mkdirs(js_vfs *vfs, const char *path) {
    char *p = jsi_strdup(path);
    size_t n;
    int rc;

    if (!p)
        return JSI_ERR(JS_ENOMEM, 0, "mkdirs %s: out of memory", path);
    n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    rc = mkdirs_at(vfs, p);
    jsi_free(p);
    return rc;
}

typedef struct name_list {
    char **v;
    size_t n;
    size_t cap;
    const char *dir;
} name_list;

static void name_list_free(name_list *l) {
    size_t i;

    for (i = 0; i < l->n; i++)
        jsi_free(l->v[i]);
    jsi_free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int collect_cb(void *ctx, const char *name) {
    name_list *l = ctx;
    char *copy;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = jsi_realloc(l->v, cap * sizeof *v);
        if (!v)
            return JSI_ERR(JS_ENOMEM, 0, "list %s: out of memory", l->dir);
        l->v = v;
        l->cap = cap;
    }
    copy = jsi_strdup(name);
    if (!copy)
        return JSI_ERR(JS_ENOMEM, 0, "list %s: out of memory", l->dir);
    l->v[l->n++] = copy;
    return 0;
}

/* The names in dir, collected first so that removing them cannot upset
 * the walk. */
static int list_names(js_vfs *vfs, const char *dir, name_list *l) {
    int rc;

    l->dir = dir;
    rc = vfs->list(vfs, dir, collect_cb, l);
    if (rc != 0)
        name_list_free(l);
    return rc;
}

static int remove_entry(js_vfs *vfs, const char *path);

/* Remove the entries named in l from dir, then dir itself. */
static int remove_listed(js_vfs *vfs, const char *dir, name_list *l) {
    size_t i;
    int rc = 0;

    for (i = 0; rc == 0 && i < l->n; i++) {
        char *child = jsi_path_join(dir, l->v[i]);
        if (!child)
            return JSI_ERR(JS_ENOMEM, 0, "remove %s: out of memory", dir);
        rc = remove_entry(vfs, child);
        jsi_free(child);
    }
    if (rc == 0) {
        rc = vfs->rmdir(vfs, dir);
        if (rc == JS_ENOTFOUND)
            rc = 0;
    }
    return rc;
}

/* Remove path, a file or a directory tree. Files are the common case, so
 * remove is tried first; if that fails and path lists as a directory, it
 * is one. */
static int remove_entry(js_vfs *vfs, const char *path) {
    name_list l = {NULL, 0, 0, NULL};
    saved_err s;
    int rc, lrc;

    rc = vfs->remove(vfs, path);
    if (rc == 0 || rc == JS_ENOTFOUND)
        return 0;
    err_save(&s);
    lrc = list_names(vfs, path, &l);
    if (lrc == JS_ENOTFOUND)
        return 0;
    if (lrc != 0)
        return err_restore(rc, &s); /* not a directory: remove's error */
    rc = remove_listed(vfs, path, &l);
    name_list_free(&l);
    return rc;
}

int jsi_vfs_remove_tree(js_vfs *vfs, const char *path) {
    name_list l = {NULL, 0, 0, NULL};
    int rc;

    rc = list_names(vfs, path, &l);
    if (rc == JS_ENOTFOUND)
        return 0; /* as rm -rf: already gone is done */
    if (rc != 0)
        return rc;
    rc = remove_listed(vfs, path, &l);
    name_list_free(&l);
    return rc;
}

int jsi_vfs_exists(js_vfs *vfs, const char *path) {
    js_vfs_file *f;
    int rc;

    /* js_vfs has no stat: a file opens for reading, a directory lists. */
    rc = jsi_vfs_open(vfs, path, JS_VFS_READ, &f);
    if (rc == 0) {
        jsi_vfs_close(f);
        return 1;
    }
    if (rc == JS_ENOTFOUND)
        return 0;
    if (rc == JS_ENOMEM)
        return rc;
    rc = vfs->list(vfs, path, stop_cb, NULL);
    if (rc >= 0)
        return 1;
    return rc == JS_ENOTFOUND ? 0 : rc;
}
