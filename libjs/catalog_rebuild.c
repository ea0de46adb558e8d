/*
 * catalog_rebuild.c - each stream's own copy of its definition, and the
 * catalogue rebuilt from those copies when the catalogue file is missing
 * or damaged.
 *
 * Every stream, whatever its storage, has a directory streams/<id>/ on
 * the store's backend holding `config`: a catalogue of one entry (the
 * catalog.c format, next id = id + 1), replaced atomically. It is written
 * before the catalogue names the stream and removed first when the stream
 * is deleted, so the directories alone say which streams exist. The
 * catalogue stays the authority while it is readable (a directory it does
 * not name is an unfinished create or delete); when it is not, js_open
 * rebuilds it from the directories instead of refusing to open, as an
 * index is rebuilt from the records it indexes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "store.h"
#include "util.h"
#include "vfs.h"

#define SDEF_NAME "config"
#define SDEF_MAX_BYTES ((size_t)1 << 24)

char *jsi_sdef_dir(const char *store_path, uint64_t id) {
    char name[64];
    snprintf(name, sizeof name, "streams/%016" PRIx64, id);
    return jsi_path_join(store_path, name);
}

static int sdef_encode(const jsi_cat_entry *e, jsi_buf *b) {
    return jsi_catalog_encode(e->id + 1, e, 1, b);
}

int jsi_sdef_write(js_vfs *vfs, const char *store_path,
                   const jsi_cat_entry *e) {
    jsi_buf b = {0};
    char *dir = jsi_sdef_dir(store_path, e->id);
    int rc = dir ? jsi_vfs_mkdirs(vfs, dir) : JS_ENOMEM;
    if (rc == 0)
        rc = sdef_encode(e, &b);
    if (rc == 0)
        rc = jsi_vfs_write_atomic(vfs, dir, SDEF_NAME, b.p, b.len);
    jsi_buf_free(&b);
    jsi_free(dir);
    return rc;
}

int jsi_sdef_remove(js_vfs *vfs, const char *store_path, uint64_t id) {
    char *dir = jsi_sdef_dir(store_path, id);
    char *path = dir ? jsi_path_join(dir, SDEF_NAME) : NULL;
    int rc = path ? vfs->remove(vfs, path) : JS_ENOMEM;
    if (rc == 0)
        rc = vfs->sync_dir(vfs, dir);
    jsi_free(path);
    jsi_free(dir);
    return rc == JS_ENOTFOUND ? 0 : rc;
}

/* Read and decode streams/<dir name>/config: 0, JS_ENOTFOUND, JS_ECORRUPT
 * (also when the entry's id is not the directory's), or an I/O error. */
static int sdef_read(js_vfs *vfs, const char *sdir, uint64_t id,
                     jsi_cat_entry **e, jsi_buf *raw) {
    char *path = jsi_path_join(sdir, SDEF_NAME);
    uint64_t next;
    size_t n = 0;
    if (!path)
        return JS_ENOMEM;
    int rc = jsi_vfs_read_file(vfs, path, raw, SDEF_MAX_BYTES);
    jsi_free(path);
    if (rc == 0)
        rc = jsi_catalog_decode(raw->p, raw->len, &next, e, &n);
    if (rc == 0 && (n != 1 || (*e)[0].id != id)) {
        jsi_catalog_free(*e, n);
        *e = NULL;
        rc = JS_ECORRUPT;
    }
    return rc;
}

int jsi_sdef_check(js_vfs *vfs, const char *sdir, uint64_t id) {
    jsi_cat_entry *e = NULL;
    jsi_buf raw = {0};
    int rc = sdef_read(vfs, sdir, id, &e, &raw);
    jsi_buf_free(&raw);
    jsi_catalog_free(e, e ? 1 : 0);
    return rc;
}

int jsi_sdef_repair(js_vfs *vfs, const char *store_path,
                    const jsi_cat_entry *e) {
    jsi_buf want = {0}, have = {0};
    char *dir = jsi_sdef_dir(store_path, e->id);
    char *path = dir ? jsi_path_join(dir, SDEF_NAME) : NULL;
    int rc = path ? sdef_encode(e, &want) : JS_ENOMEM;
    if (rc == 0)
        rc = jsi_vfs_read_file(vfs, path, &have, SDEF_MAX_BYTES);
    int same = rc == 0 && have.len == want.len &&
               memcmp(have.p, want.p, want.len) == 0;
    if (rc == 0 || rc == JS_ENOTFOUND || rc == JS_ECORRUPT)
        rc = same ? 0 : jsi_sdef_write(vfs, store_path, e);
    jsi_buf_free(&want);
    jsi_buf_free(&have);
    jsi_free(path);
    jsi_free(dir);
    return rc;
}

/* ---- rebuilding the catalogue ------------------------------------------- */

typedef struct scan {
    js_vfs *vfs;
    const char *sdirs;     /* <store>/streams */
    jsi_cat_entry *e;
    size_t n, cap;
    uint64_t max_id;       /* of every numbered directory, readable or not */
    int rc;
} scan;

static int scan_push(scan *s, jsi_cat_entry *e) {
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        jsi_cat_entry *ne = jsi_realloc(s->e, ncap * sizeof *ne);
        if (!ne)
            return JS_ENOMEM;
        s->e = ne;
        s->cap = ncap;
    }
    s->e[s->n++] = *e;
    return 0;
}

static int scan_cb(void *ctx, const char *name) {
    scan *s = ctx;
    char *end;
    uint64_t id = strtoull(name, &end, 16);
    if (strlen(name) != 16 || *end || id == 0)
        return 0;
    s->max_id = JSI_MAX(s->max_id, id);
    jsi_cat_entry *e = NULL;
    jsi_buf raw = {0};
    char *sdir = jsi_path_join(s->sdirs, name);
    int rc = sdir ? sdef_read(s->vfs, sdir, id, &e, &raw) : JS_ENOMEM;
    jsi_free(sdir);
    jsi_buf_free(&raw);
    if (rc == 0) {
        rc = scan_push(s, e);
        if (rc)
            jsi_catalog_free(e, 1);
        else
            jsi_free(e); /* the entry was moved into the list */
    }
    /* A directory without a readable definition is left as it is. */
    if (rc == JS_ENOTFOUND || rc == JS_ECORRUPT)
        rc = 0;
    if (rc) {
        s->rc = rc;
        return 1;
    }
    return 0;
}

static int cmp_id_desc(const void *a, const void *b) {
    uint64_t x = ((const jsi_cat_entry *)a)->id;
    uint64_t y = ((const jsi_cat_entry *)b)->id;
    return x > y ? -1 : x < y;
}

/* Two definitions that cannot both stand (the same name, or overlapping
 * subjects) come from a delete whose directory outlived it: the newer
 * (higher id) one stays, the older is dropped from the list (its
 * directory is kept). */
static void drop_conflicts(scan *s) {
    const char *a, *b;
    size_t kept = 0;
    if (s->n) /* a new store has none, and no array (NULL) */
        qsort(s->e, s->n, sizeof *s->e, cmp_id_desc);
    for (size_t i = 0; i < s->n; i++) {
        int clash = 0;
        for (size_t k = 0; k < kept && !clash; k++)
            clash = strcmp(s->e[i].cfg.c.name, s->e[k].cfg.c.name) == 0 ||
                    jsi_scfg_overlap(&s->e[i].cfg, &s->e[k].cfg, &a, &b);
        if (clash)
            jsi_scfg_free(&s->e[i].cfg);
        else
            s->e[kept++] = s->e[i];
    }
    s->n = kept;
}

int jsi_catalog_rebuild(js_vfs *vfs, const char *store_path,
                        uint64_t *next_id, jsi_cat_entry **entries,
                        size_t *n) {
    scan s = {vfs, NULL, NULL, 0, 0, 0, 0};
    char *sdirs = jsi_path_join(store_path, "streams");
    *entries = NULL;
    *n = 0;
    if (!sdirs)
        return JS_ENOMEM;
    s.sdirs = sdirs;
    int rc = vfs->list(vfs, sdirs, scan_cb, &s);
    jsi_free(sdirs);
    if (rc == JS_ENOTFOUND)
        rc = 0;
    if (rc == 0 || rc == 1)
        rc = s.rc;
    if (rc) {
        jsi_catalog_free(s.e, s.n);
        return rc;
    }
    drop_conflicts(&s);
    for (size_t i = 0; i < s.n / 2; i++) { /* ascending, as created */
        jsi_cat_entry t = s.e[i];
        s.e[i] = s.e[s.n - 1 - i];
        s.e[s.n - 1 - i] = t;
    }
    *next_id = s.max_id + 1;
    *entries = s.e;
    *n = s.n;
    return 0;
}
