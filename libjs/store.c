/*
 * store.c - js_open / js_close, the catalogue of streams, stream management
 * and publish routing.
 *
 * Layout of a store directory:
 *   LOCK                  held (flock) while the store is open
 *   catalog               every stream's id and config (catalog.c)
 *   streams/<id>/         one directory per stream: `config`, the stream's
 *                         own copy of its catalogue entry (catalog_rebuild.c),
 *                         and for a file-backed stream its block files, the
 *                         index checkpoint (msgstore) and consumers/
 *   .../consumers/        per durable consumer <n>.cfg and <n>.cfg2, two
 *                         copies of its config (consumer_config_pair.c),
 *                         and <n>.state, its acks (consumer_state.c)
 * Directories are named by a number the store assigns, never by a stream
 * name, so no name can reach outside the store directory.
 *
 * Locking: store->lock (rwlock) guards the stream list and the catalogue;
 * it is taken before any stream's mutex, never after.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "headers.h"
#include "store.h"
#include "subject.h"
#include "util.h"
#include "vfs.h"

#define CATALOG_NAME "catalog"
#define DEFAULT_SYNC_INTERVAL JSI_NS_PER_SEC
/* A stream's tail block is allocated at the full block size: a larger
 * target would only reserve memory a device may not have. */
#define MAX_BLOCK_SIZE (UINT32_C(1) << 30)

static int64_t system_clock(void *ctx) {
    (void)ctx;
    return jsi_wallclock_ns();
}

/* ---- references and interned names ------------------------------------- */

void jsi_store_ref(js_store *st);
void jsi_store_unref(js_store *st);
const char *jsi_store_intern(js_store *st, const char *name);

void jsi_store_ref(js_store *st) {
    __atomic_add_fetch(&st->refs, 1, __ATOMIC_RELAXED);
}

static void store_free(js_store *st) {
    for (size_t i = 0; i < st->nnames; i++)
        jsi_free(st->names[i]);
    jsi_free(st->names);
    jsi_free(st->streams);
    jsi_free(st->path);
    if (st->memvfs)
        jsi_vfs_mem_free(st->memvfs);
    jsi_vfs_guard_free(st->vfs);
    pthread_rwlock_destroy(&st->lock);
    pthread_mutex_destroy(&st->names_mu);
    jsi_evq_free(&st->events);
    pthread_mutex_destroy(&st->disp_mu);
    pthread_mutex_destroy(&st->disp_ctl);
    pthread_cond_destroy(&st->disp_cond);
    st->magic = 0;
    jsi_free(st);
}

void jsi_store_unref(js_store *st) {
    if (st && __atomic_sub_fetch(&st->refs, 1, __ATOMIC_ACQ_REL) == 0)
        store_free(st);
}

/* Names live until the store is freed, so a js_pub_ack can borrow one. */
const char *jsi_store_intern(js_store *st, const char *name) {
    const char *r = NULL;
    pthread_mutex_lock(&st->names_mu);
    for (size_t i = 0; i < st->nnames && !r; i++)
        if (strcmp(st->names[i], name) == 0)
            r = st->names[i];
    if (!r && st->nnames == st->names_cap) {
        size_t ncap = st->names_cap ? st->names_cap * 2 : 8;
        char **n = jsi_realloc(st->names, ncap * sizeof *n);
        if (n) {
            st->names = n;
            st->names_cap = ncap;
        }
    }
    if (!r && st->nnames < st->names_cap) {
        char *c = jsi_strdup(name);
        if (c)
            r = st->names[st->nnames++] = c;
    }
    pthread_mutex_unlock(&st->names_mu);
    return r;
}

/* ---- catalogue ---------------------------------------------------------- */

/* Write the catalogue from the stream list, with `with` standing in for
 * the config of stream `replace` and `skip` left out. Durable on return. */
static int catalog_write(js_store *st, const js_stream *replace,
                         const jsi_scfg *with, const js_stream *skip) {
    jsi_cat_entry *e = jsi_calloc(st->nstreams ? st->nstreams : 1, sizeof *e);
    jsi_buf b = {0};
    size_t n = 0;
    if (!e)
        return JSI_ERR(JS_ENOMEM, 0, "catalogue");
    for (size_t i = 0; i < st->nstreams; i++) {
        js_stream *s = st->streams[i];
        if (s == skip)
            continue;
        e[n].id = s->id;
        e[n].created = s->created;
        e[n].cfg = s == replace ? *with : s->cfg; /* shallow: not freed */
        n++;
    }
    int rc = jsi_catalog_encode(st->next_id, e, n, &b);
    jsi_free(e);
    if (rc == 0)
        rc = jsi_vfs_write_atomic(st->vfs, st->path, CATALOG_NAME, b.p, b.len);
    jsi_buf_free(&b);
    return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "catalogue") : rc;
}

static char *stream_dir(js_store *st, uint64_t id, int storage) {
    char name[64];
    if (storage == JS_STORAGE_MEMORY) {
        snprintf(name, sizeof name, "/mem/%016" PRIx64, id);
        return jsi_strdup(name);
    }
    snprintf(name, sizeof name, "streams/%016" PRIx64, id);
    return jsi_path_join(st->path, name);
}

static int list_push(js_store *st, js_stream *s) {
    if (st->nstreams == st->streams_cap) {
        size_t ncap = st->streams_cap ? st->streams_cap * 2 : 8;
        js_stream **n = jsi_realloc(st->streams, ncap * sizeof *n);
        if (!n)
            return JSI_ERR(JS_ENOMEM, 0, "stream list");
        st->streams = n;
        st->streams_cap = ncap;
    }
    st->streams[st->nstreams++] = s;
    return 0;
}

static void list_remove(js_store *st, js_stream *s) {
    for (size_t i = 0; i < st->nstreams; i++)
        if (st->streams[i] == s) {
            memmove(st->streams + i, st->streams + i + 1,
                    (st->nstreams - i - 1) * sizeof *st->streams);
            st->nstreams--;
            return;
        }
}

static js_stream *find_name(js_store *st, const char *name) {
    for (size_t i = 0; i < st->nstreams; i++)
        if (strcmp(st->streams[i]->cfg.c.name, name) == 0)
            return st->streams[i];
    return NULL;
}

/* Create (or, at open, reopen) a stream's storage and object. */
static int stream_start(js_store *st, uint64_t id, int64_t created,
                        const jsi_scfg *cfg, js_stream **out) {
    int mem = cfg->c.storage == JS_STORAGE_MEMORY;
    if (mem && !st->memvfs && !(st->memvfs = jsi_vfs_mem_new()))
        return JSI_ERR(JS_ENOMEM, 0, "memory storage");
    js_vfs *vfs = mem ? st->memvfs : st->vfs;
    char *dir = stream_dir(st, id, cfg->c.storage);
    if (!dir)
        return JSI_ERR(JS_ENOMEM, 0, "stream directory");
    int rc = jsi_vfs_mkdirs(vfs, dir);
    if (rc == 0 && !mem)
        rc = st->vfs->sync_dir(st->vfs, st->path);
    jsi_stream_env env = {vfs,          dir,           st->block_size,
                          st->sync,     st->sync_interval, st->clock,
                          st->clock_ctx, &st->events};
    if (rc == 0)
        rc = jsi_stream_open(st, id, created, cfg, &env, out);
    jsi_free(dir);
    return rc;
}

/* ---- open and close ------------------------------------------------------ */

static int import_opts(const js_open_opts *in, js_open_opts *o) {
    js_open_opts def = JS_OPEN_OPTS_INIT;
    *o = def;
    if (!in)
        return 0;
    if (in->version < 1 || in->version > JS_OPEN_OPTS_VERSION)
        return JSI_ERR(JS_EINVAL, 0, "open opts: version %u unknown",
                       in->version);
    *o = *in; /* version 1 is the whole struct */
    if (o->sync < JS_SYNC_DEFAULT || o->sync > JS_SYNC_NONE)
        return JSI_ERR(JS_EINVAL, 0, "sync: invalid value %d", o->sync);
    if (o->sync_interval < 0)
        return JSI_ERR(JS_EINVAL, 0, "sync_interval: negative");
    if (o->block_size > MAX_BLOCK_SIZE)
        return JSI_ERR(JS_EINVAL, 0, "block_size: %" PRIu32 " is over the "
                       "limit of 1 GiB", o->block_size);
    return 0;
}

/* Remove stream directories the catalogue does not name (a crash between
 * creating a stream's files and writing the catalogue, or during a
 * delete). One whose definition is there but unreadable is kept: it can
 * only be a stream lost with a damaged catalogue (a delete removes the
 * definition first, a create names a number the catalogue never gave),
 * left for someone to look at rather than destroyed. */
typedef struct orphan_ctx {
    js_store *st;
    const jsi_cat_entry *e;
    size_t n;
} orphan_ctx;

static int orphan_cb(void *ctx, const char *name) {
    orphan_ctx *o = ctx;
    char *end;
    uint64_t id = strtoull(name, &end, 16);
    for (size_t i = 0; *end == 0 && i < o->n; i++)
        if (o->e[i].id == id)
            return 0;
    char rel[300];
    snprintf(rel, sizeof rel, "streams/%s", name);
    char *path = jsi_path_join(o->st->path, rel);
    if (path && *end == 0 && strlen(name) == 16 && id < o->st->next_id &&
        jsi_sdef_check(o->st->vfs, path, id) == JS_ECORRUPT) {
        jsi_free(path);
        return 0;
    }
    if (path)
        jsi_vfs_remove_tree(o->st->vfs, path);
    jsi_free(path);
    return 0;
}

/* The catalogue file: 0, JS_ENOTFOUND, JS_ECORRUPT, or an I/O error. */
static int read_catalog(js_store *st, jsi_cat_entry **e, size_t *n) {
    char *path = jsi_path_join(st->path, CATALOG_NAME);
    jsi_buf b = {0};
    if (!path)
        return JSI_ERR(JS_ENOMEM, 0, "open");
    int rc = jsi_vfs_read_file(st->vfs, path, &b, (size_t)1 << 30);
    if (rc == 0)
        rc = jsi_catalog_decode(b.p, b.len, &st->next_id, e, n);
    jsi_buf_free(&b);
    jsi_free(path);
    return rc;
}

/* With a readable catalogue: directories it does not name go, and each
 * stream's own definition is made to match it. A repair that fails fails
 * the open with its error, as a consumer's config copy does: the store
 * stays as it was, and the next open tries again. (Going on would not
 * help: the failed write latched the fail-stop guard, and the open's own
 * writes after it, a consumer's state log among them, would fail too.) */
static int tidy_dirs(js_store *st, const jsi_cat_entry *e, size_t n) {
    char *sdir = jsi_path_join(st->path, "streams");
    int rc = sdir ? jsi_vfs_mkdirs(st->vfs, sdir) : JS_ENOMEM;
    if (rc == 0) {
        orphan_ctx o = {st, e, n};
        rc = st->vfs->list(st->vfs, sdir, orphan_cb, &o);
    }
    jsi_free(sdir);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = jsi_sdef_repair(st->vfs, st->path, &e[i]);
    return rc;
}

/* The streams the store holds: from the catalogue, or, when it is missing
 * or damaged, from the stream directories (*rebuilt set: the catalogue is
 * to be written again). A missing catalogue with no stream directory is a
 * new store. */
static int find_streams(js_store *st, int no_create, jsi_cat_entry **e,
                        size_t *n, int *rebuilt) {
    int rc = read_catalog(st, e, n);
    *rebuilt = 0;
    if (rc == 0)
        return tidy_dirs(st, *e, *n);
    if (rc != JS_ENOTFOUND && rc != JS_ECORRUPT)
        return rc;
    rc = jsi_catalog_rebuild(st->vfs, st->path, &st->next_id, e, n);
    if (rc)
        return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "open") : rc;
    if (st->next_id == 1 && no_create)
        return JSI_ERR(JS_ENOTFOUND, 0, "%s: no store there", st->path);
    *rebuilt = 1;
    return 0;
}

static int load_catalog(js_store *st, int no_create) {
    jsi_cat_entry *e = NULL;
    size_t n = 0;
    int rebuilt = 0;
    int rc = find_streams(st, no_create, &e, &n, &rebuilt);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        js_stream *s;
        rc = stream_start(st, e[i].id, e[i].created, &e[i].cfg, &s);
        if (rc == 0 && (rc = list_push(st, s)) != 0) {
            /* Closed first, as close_streams() does: its consumers hold
             * references that only closing drops. */
            jsi_stream_close(s);
            jsi_stream_unref(s);
        }
    }
    jsi_catalog_free(e, n);
    if (rc == 0 && rebuilt) {
        char *sdir = jsi_path_join(st->path, "streams");
        rc = sdir ? jsi_vfs_mkdirs(st->vfs, sdir) : JS_ENOMEM;
        jsi_free(sdir);
        if (rc == 0)
            rc = catalog_write(st, NULL, NULL, NULL);
    }
    return rc;
}

static void close_streams(js_store *st, int *first_err) {
    for (size_t i = 0; i < st->nstreams; i++) {
        int rc = jsi_stream_close(st->streams[i]);
        if (rc && first_err && !*first_err)
            *first_err = rc;
    }
    /* Unref after closing all: an unref may free the store itself. */
    size_t n = st->nstreams;
    js_stream **list = st->streams;
    st->streams = NULL;
    st->nstreams = st->streams_cap = 0;
    for (size_t i = 0; i < n; i++)
        jsi_stream_unref(list[i]);
    jsi_free(list);
}

JS_API int js_open(const char *path, const js_open_opts *opts, js_store **out) {
    js_open_opts o;
    jsi_err_clear();
    if (!path || !*path || !out)
        return JSI_ERR(JS_EINVAL, 0, "path and out are required");
    *out = NULL;
    int rc = import_opts(opts, &o);
    if (rc)
        return rc;
    js_vfs *base = js_vfs_find(o.vfs);
    if (!base)
        return JSI_ERR(JS_EINVAL, 0, "vfs: no backend named \"%s\"",
                       o.vfs ? o.vfs : "(default)");
    js_store *st = jsi_calloc(1, sizeof *st);
    /* Everything the store writes goes through its fail-stop guard. */
    js_vfs *vfs = st ? jsi_vfs_guard_new(base) : NULL;
    if (!vfs) {
        jsi_free(st);
        return JSI_ERR(JS_ENOMEM, 0, "open");
    }
    st->magic = JSI_STORE_MAGIC;
    st->refs = 1;
    pthread_rwlock_init(&st->lock, NULL);
    pthread_mutex_init(&st->names_mu, NULL);
    jsi_evq_init(&st->events);
    pthread_mutex_init(&st->disp_mu, NULL);
    pthread_mutex_init(&st->disp_ctl, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->disp_cond, &ca);
    pthread_condattr_destroy(&ca);
    st->vfs = vfs;
    st->path = jsi_strdup(path);
    st->sync = o.sync ? o.sync : JS_SYNC_ALWAYS;
    st->sync_interval = o.sync_interval ? o.sync_interval : DEFAULT_SYNC_INTERVAL;
    st->block_size = o.block_size;
    st->clock = o.clock ? o.clock : system_clock;
    st->clock_ctx = o.clock_ctx;
    if (!st->path) {
        store_free(st);
        return JSI_ERR(JS_ENOMEM, 0, "open");
    }
    rc = jsi_vfs_exists(vfs, path);
    if (rc == 1 && o.no_create) {
        /* A directory with neither a catalogue nor stream directories is
         * no store: leave it as is. */
        char *cat = jsi_path_join(path, CATALOG_NAME);
        rc = cat ? jsi_vfs_exists(vfs, cat) : JS_ENOMEM;
        jsi_free(cat);
        char *sd = rc == 0 ? jsi_path_join(path, "streams") : NULL;
        if (rc == 0)
            rc = sd ? jsi_vfs_exists(vfs, sd) : JS_ENOMEM;
        jsi_free(sd);
    }
    if (rc == 0 && o.no_create)
        rc = JSI_ERR(JS_ENOTFOUND, 0, "%s: no store there", path);
    else if (rc == 0)
        rc = jsi_vfs_mkdirs(vfs, path);
    else if (rc == 1)
        rc = 0;
    char *lock = rc == 0 ? jsi_path_join(path, "LOCK") : NULL;
    if (rc == 0 && !lock)
        rc = JSI_ERR(JS_ENOMEM, 0, "open");
    if (rc == 0) {
        rc = vfs->lock(vfs, lock, &st->lock_token);
        if (rc == JS_ELOCKED)
            rc = JSI_ERR(rc, 0, "%s: the store is open elsewhere", path);
    }
    jsi_free(lock);
    if (rc == 0) {
        rc = load_catalog(st, o.no_create);
        if (rc) {
            close_streams(st, NULL);
            vfs->unlock(vfs, st->lock_token);
        }
    }
    if (rc) {
        jsi_store_unref(st);
        return rc;
    }
    *out = st;
    return 0;
}

static int store_enter(js_store *st) {
    jsi_err_clear();
    if (!st || st->magic != JSI_STORE_MAGIC)
        return JSI_ERR(JS_EMISUSE, 0, "not a store handle");
    return 0;
}

int jsi_store_enter(js_store *st) { return store_enter(st); }

/* Queue a stream advisory (created, updated, deleted). */
static void stream_event(js_store *st, int kind, const char *name) {
    js_event ev = {1, kind, NULL, NULL, 0, name, NULL, NULL,
                   0, 0, 0, NULL, 0};
    jsi_evq_emit(&st->events, &ev, st->clock(st->clock_ctx));
}

JS_API int js_close(js_store *st) {
    if (!st)
        return 0;
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (jsi_dispatch_on_own_thread(st))
        return JSI_ERR(JS_EMISUSE, 0, "js_close called from a dispatcher "
                       "thread (a callback)");
    js_dispatcher_stop(st);
    pthread_rwlock_wrlock(&st->lock);
    if (st->closed) {
        pthread_rwlock_unlock(&st->lock);
        return JSI_ERR(JS_EMISUSE, 0, "store already closed");
    }
    st->closed = 1;
    close_streams(st, &rc);
    st->vfs->unlock(st->vfs, st->lock_token);
    st->lock_token = NULL;
    pthread_rwlock_unlock(&st->lock);
    jsi_store_unref(st);
    return rc;
}

JS_API int js_flush(js_store *st) {
    int rc = store_enter(st);
    if (rc)
        return rc;
    pthread_rwlock_rdlock(&st->lock);
    if (st->closed)
        rc = JSI_ERR(JS_EMISUSE, 0, "store closed");
    for (size_t i = 0; rc == 0 && i < st->nstreams; i++)
        rc = jsi_stream_flush(st->streams[i]);
    pthread_rwlock_unlock(&st->lock);
    return rc;
}

/* ---- stream management --------------------------------------------------- */

static int check_overlap(js_store *st, const jsi_scfg *c, const js_stream *self) {
    const char *a, *b;
    for (size_t i = 0; i < st->nstreams; i++) {
        js_stream *s = st->streams[i];
        if (s != self && jsi_scfg_overlap(c, &s->cfg, &a, &b))
            return JSI_ERR(JS_ESUBJECT_OVERLAP, 10065,
                           "subjects overlap with an existing stream: \"%s\" "
                           "of %s and \"%s\"", b, s->cfg.c.name, a);
    }
    return 0;
}

/* Remove a stream's directory on the store's backend, its definition
 * first: a directory without one is never taken for a stream. */
static void remove_def_dir(js_store *st, uint64_t id) {
    char *dir = jsi_sdef_dir(st->path, id);
    if (dir && jsi_sdef_remove(st->vfs, st->path, id) == 0)
        jsi_vfs_remove_tree(st->vfs, dir);
    jsi_free(dir);
}

static int add_locked(js_store *st, const jsi_scfg *c, js_stream **out) {
    js_stream *s = find_name(st, c->c.name);
    if (s) {
        if (!jsi_scfg_equal(&s->cfg, c))
            return JSI_ERR(JS_ESTREAM_EXISTS, 10058,
                           "stream name already in use with a different "
                           "configuration");
        jsi_stream_ref(s);
        *out = s;
        return 0;
    }
    int rc = check_overlap(st, c, NULL);
    if (rc)
        return rc;
    uint64_t id = st->next_id++;
    jsi_cat_entry def = {id, st->clock(st->clock_ctx), *c};
    rc = jsi_sdef_write(st->vfs, st->path, &def);
    if (rc == 0)
        rc = stream_start(st, id, def.created, c, &s);
    if (rc) {
        remove_def_dir(st, id);
        return rc;
    }
    if ((rc = list_push(st, s)) == 0 &&
        (rc = catalog_write(st, NULL, NULL, NULL)) != 0)
        list_remove(st, s);
    if (rc) {
        /* Its directory is an orphan now; removed here or at next open. */
        jsi_stream_close(s);
        remove_def_dir(st, id);
        jsi_stream_unref(s);
        return rc;
    }
    stream_event(st, JS_EVENT_STREAM_CREATED, s->name);
    jsi_stream_ref(s);
    *out = s;
    return 0;
}

JS_API int js_stream_add(js_store *st, const js_stream_config *cfg,
                         js_stream **out) {
    jsi_scfg c;
    js_stream *s = NULL;
    int rc = store_enter(st);
    if (rc)
        return rc;
    if ((rc = jsi_scfg_import(cfg, &c)) != 0)
        return rc;
    if ((rc = jsi_scfg_normalize(&c, 1)) != 0) {
        jsi_scfg_free(&c);
        return rc;
    }
    pthread_rwlock_wrlock(&st->lock);
    rc = st->closed ? JSI_ERR(JS_EMISUSE, 0, "store closed")
                    : add_locked(st, &c, &s);
    pthread_rwlock_unlock(&st->lock);
    jsi_scfg_free(&c);
    jsi_evq_drain(&st->events);
    if (rc == 0) {
        if (out)
            *out = s;
        else
            jsi_stream_unref(s);
    }
    return rc;
}

/* The stream's own definition, then the catalogue. Should the catalogue
 * fail, the definition is put back (best effort: at the next open the
 * readable catalogue wins anyway). */
static int update_defs(js_store *st, js_stream *s, const jsi_scfg *c) {
    jsi_cat_entry def = {s->id, s->created, *c};
    int rc = jsi_sdef_write(st->vfs, st->path, &def);
    if (rc == 0 && (rc = catalog_write(st, s, c, NULL)) != 0) {
        def.cfg = s->cfg;
        jsi_sdef_write(st->vfs, st->path, &def);
    }
    return rc;
}

JS_API int js_stream_update(js_store *st, const js_stream_config *cfg) {
    jsi_scfg c;
    int rc = store_enter(st);
    if (rc)
        return rc;
    if ((rc = jsi_scfg_import(cfg, &c)) != 0)
        return rc;
    if ((rc = jsi_scfg_normalize(&c, 0)) != 0) {
        jsi_scfg_free(&c);
        return rc;
    }
    pthread_rwlock_wrlock(&st->lock);
    js_stream *s = st->closed ? NULL : find_name(st, c.c.name);
    if (st->closed)
        rc = JSI_ERR(JS_EMISUSE, 0, "store closed");
    else if (!s)
        rc = JSI_ERR(JS_ESTREAM_NOT_FOUND, 10059, "stream not found");
    if (rc == 0)
        rc = jsi_scfg_check_update(&s->cfg, &c);
    if (rc == 0)
        rc = check_overlap(st, &c, s);
    if (rc == 0)
        rc = update_defs(st, s, &c);
    if (rc == 0)
        rc = jsi_stream_update(s, &c);
    if (rc == 0)
        stream_event(st, JS_EVENT_STREAM_UPDATED, s->name);
    pthread_rwlock_unlock(&st->lock);
    jsi_scfg_free(&c);
    jsi_evq_drain(&st->events);
    return rc;
}

JS_API int js_stream_lookup(js_store *st, const char *name, js_stream **out) {
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (!name || !out)
        return JSI_ERR(JS_EINVAL, 0, "name and out are required");
    *out = NULL;
    pthread_rwlock_rdlock(&st->lock);
    js_stream *s = st->closed ? NULL : find_name(st, name);
    if (st->closed)
        rc = JSI_ERR(JS_EMISUSE, 0, "store closed");
    else if (!s)
        rc = JSI_ERR(JS_ESTREAM_NOT_FOUND, 10059, "stream not found");
    else
        jsi_stream_ref(s);
    pthread_rwlock_unlock(&st->lock);
    if (rc == 0)
        *out = s;
    return rc;
}

static const char *stream_name(const void *ctx, size_t i) {
    return ((const js_store *)ctx)->streams[i]->name;
}

JS_API int js_stream_names(js_store *st, char ***names, size_t *count) {
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (!names)
        return JSI_ERR(JS_EINVAL, 0, "names: NULL");
    pthread_rwlock_rdlock(&st->lock);
    size_t n = st->closed ? 0 : st->nstreams;
    char **v = st->closed ? NULL : jsi_strv_sorted(n, stream_name, st);
    if (st->closed)
        rc = JSI_ERR(JS_EMISUSE, 0, "store closed");
    else if (!v)
        rc = JSI_ERR(JS_ENOMEM, 0, "names");
    pthread_rwlock_unlock(&st->lock);
    if (rc == 0) {
        *names = v;
        if (count)
            *count = n;
    }
    return rc;
}

JS_API void js_names_free(char **names) { jsi_free(names); }

void jsi_stream_kill(js_stream *s); /* stream.c */

JS_API int js_stream_delete(js_store *st, const char *name) {
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (!name)
        return JSI_ERR(JS_EINVAL, 0, "name: NULL");
    pthread_rwlock_wrlock(&st->lock);
    js_stream *s = st->closed ? NULL : find_name(st, name);
    if (st->closed)
        rc = JSI_ERR(JS_EMISUSE, 0, "store closed");
    else if (!s)
        rc = JSI_ERR(JS_ESTREAM_NOT_FOUND, 10059, "stream not found");
    if (rc == 0)
        rc = catalog_write(st, NULL, NULL, s);
    if (rc == 0) {
        list_remove(st, s);
        stream_event(st, JS_EVENT_STREAM_DELETED, s->name);
        jsi_stream_kill(s);
        if (s->cfg.c.storage == JS_STORAGE_MEMORY) {
            char *dir = stream_dir(st, s->id, s->cfg.c.storage);
            if (dir)
                jsi_vfs_remove_tree(st->memvfs, dir);
            jsi_free(dir);
        }
        remove_def_dir(st, s->id);
        jsi_stream_unref(s);
    }
    pthread_rwlock_unlock(&st->lock);
    jsi_evq_drain(&st->events);
    return rc;
}

/* ---- publish ------------------------------------------------------------- */

/* Checks that need no stream: subject, header block, sizes. */
static int check_msg(const char *subj, size_t *slen, const void *hdr,
                     size_t hlen, const void *data, size_t dlen) {
    if (!subj)
        return JSI_ERR(JS_EINVAL, 0, "subject: NULL");
    *slen = strlen(subj);
    if (*slen > JS_MAX_SUBJECT_LEN || !jsi_subject_valid(subj, *slen, 0) ||
        jsi_subject_has_wildcard(subj, *slen))
        return JSI_ERR(JS_EINVAL, 0, "subject: invalid subject \"%.*s\"",
                       (int)JSI_MIN(*slen, (size_t)200), subj);
    if ((hlen && !hdr) || (dlen && !data))
        return JSI_ERR(JS_EINVAL, 0, "headers or data: NULL with a length");
    if (hlen > JS_MAX_HDR_LEN)
        return JSI_ERR(JS_EHDR_SIZE, 10097,
                       "header size exceeds maximum allowed of 64k");
    if (hlen && jsi_hdr_validate(hdr, hlen) != 0)
        return JS_EBAD_HEADER;
    if (dlen > JS_MAX_PAYLOAD || *slen + hlen + dlen > JS_MAX_PAYLOAD)
        return JSI_ERR(JS_EMSG_SIZE, 10054,
                       "message size exceeds maximum allowed");
    return 0;
}

/* The stream taking subj, referenced. */
static int route(js_store *st, const char *subj, size_t slen,
                 js_stream **out) {
    int rc = 0;
    js_stream *s = NULL;
    pthread_rwlock_rdlock(&st->lock);
    if (st->closed)
        rc = JSI_ERR(JS_EMISUSE, 0, "store closed");
    for (size_t i = 0; rc == 0 && !s && i < st->nstreams; i++)
        if (jsi_stream_takes(st->streams[i], subj, slen))
            s = st->streams[i];
    if (rc == 0 && !s)
        rc = JSI_ERR(JS_ENO_STREAM, 0, "no stream takes subject \"%s\"", subj);
    if (s)
        jsi_stream_ref(s);
    pthread_rwlock_unlock(&st->lock);
    *out = s;
    return rc;
}

JS_API int js_publish(js_store *st, const char *subject, const void *hdrs,
                      size_t hdr_len, const void *data, size_t len,
                      js_pub_ack *ack) {
    size_t slen;
    js_stream *s;
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (ack && (ack->version < 1 || ack->version > JS_PUB_ACK_VERSION))
        return JSI_ERR(JS_EINVAL, 0, "ack: version %u unknown", ack->version);
    if ((rc = check_msg(subject, &slen, hdrs, hdr_len, data, len)) != 0)
        return rc;
    if ((rc = route(st, subject, slen, &s)) != 0)
        return rc;
    rc = jsi_stream_publish(s, subject, slen, hdrs, hdr_len, data, len, ack);
    jsi_stream_unref(s);
    return rc;
}

/* Size of one element of a caller's js_pub_ack array, by its version. */
static size_t ack_size(unsigned version) {
    return version == 1 ? sizeof(js_pub_ack) : 0;
}

/* Publish a run of batch messages to one stream under one lock hold and one
 * timestamp, then commit once. Stops at a message the stream does not take
 * or at the first error; *next is the first message not known durable. */
static int publish_run(js_stream *s, const js_pub_msg *msgs, size_t i,
                       size_t n, js_pub_ack *acks, size_t stride,
                       size_t *next) {
    int rc = 0;
    size_t start = i;
    pthread_mutex_lock(&s->mu);
    int64_t now = jsi_stream_now(s);
    for (; i < n; i++) {
        const js_pub_msg *m = &msgs[i];
        size_t slen;
        js_pub_ack *ack =
            acks ? (js_pub_ack *)((uint8_t *)acks + i * stride) : NULL;
        /* The run's first message was checked by the caller to route it. */
        if (i == start)
            slen = strlen(m->subject);
        else if ((rc = check_msg(m->subject, &slen, m->hdrs, m->hdr_len,
                                 m->data, m->len)) != 0)
            break;
        if (!jsi_stream_takes(s, m->subject, slen))
            break; /* another stream's (or the config changed): route it */
        rc = jsi_stream_publish_locked(s, m->subject, slen, m->hdrs,
                                       m->hdr_len, m->data, m->len, now, ack);
        if (rc)
            break;
    }
    /* Whatever was stored becomes durable, also when a message failed. */
    int crc = jsi_stream_commit_locked(s, 0);
    pthread_mutex_unlock(&s->mu);
    *next = crc ? start : i;
    return rc ? rc : crc;
}

JS_API int js_publish_batch(js_store *st, const js_pub_msg *msgs, size_t n,
                            js_pub_ack *acks, size_t *done) {
    int rc = store_enter(st);
    size_t i = 0, stride = 0;
    if (done)
        *done = 0;
    if (rc)
        return rc;
    if (n && !msgs)
        return JSI_ERR(JS_EINVAL, 0, "msgs: NULL");
    if (acks && n && !(stride = ack_size(acks[0].version)))
        return JSI_ERR(JS_EINVAL, 0, "acks: version %u unknown",
                       acks[0].version);
    while (rc == 0 && i < n) {
        size_t slen, next;
        js_stream *s;
        const js_pub_msg *m = &msgs[i];
        if ((rc = check_msg(m->subject, &slen, m->hdrs, m->hdr_len, m->data,
                            m->len)) != 0)
            break;
        if ((rc = route(st, m->subject, slen, &s)) != 0)
            break;
        rc = publish_run(s, msgs, i, n, acks, stride, &next);
        jsi_stream_unref(s);
        i = next;
    }
    if (done)
        *done = i;
    return rc;
}
