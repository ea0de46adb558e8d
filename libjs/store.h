/*
 * store.h - the top handle: the catalogue of streams, the lock file, open
 * options, publish routing.
 */
#ifndef JSI_STORE_H
#define JSI_STORE_H

#include <pthread.h>

#include "events.h"
#include "jetstream.h"
#include "stream.h"

#define JSI_STORE_MAGIC 0x4a535354u /* "JSST" */

struct js_store {
    uint32_t magic;
    int refs;                 /* atomic: 1 while open + 1 per stream object */
    pthread_rwlock_t lock;    /* the stream list and the catalogue */
    int closed;
    js_vfs *vfs;
    char *path;
    void *lock_token;
    int sync;
    int64_t sync_interval;
    uint32_t block_size;
    int64_t (*clock)(void *ctx);
    void *clock_ctx;
    js_stream **streams;
    size_t nstreams, streams_cap;
    uint64_t next_id;
    pthread_mutex_t names_mu; /* interned names (acks borrow them) */
    char **names;
    size_t nnames, names_cap;
    js_vfs *memvfs;           /* storage=memory streams */
    jsi_evq events;           /* queued advisories (events.c) */
    /* push dispatch (dispatch.c) */
    pthread_mutex_t disp_mu;  /* disp_gen, disp_stop, disp_cond */
    pthread_cond_t disp_cond; /* work arrived (CLOCK_MONOTONIC) */
    uint64_t disp_gen;
    int disp_stop;
    pthread_mutex_t disp_ctl; /* start/stop of the threads */
    pthread_t *disp_threads;
    unsigned ndisp;
};

/* Check a store handle (and clear the thread's error): 0 or JS_EMISUSE. */
int jsi_store_enter(js_store *st);
/* 1 if the calling thread is one of the store's dispatcher threads. */
int jsi_dispatch_on_own_thread(js_store *st);

/* One catalogue entry as stored. */
typedef struct jsi_cat_entry {
    uint64_t id;
    int64_t created;
    jsi_scfg cfg;
} jsi_cat_entry;

/* The catalogue codec (catalog.c). encode appends to b; decode fills
 * *entries (jsi_malloc'd array, free each cfg then the array). */
struct jsi_buf;
int jsi_catalog_encode(uint64_t next_id, const jsi_cat_entry *e, size_t n,
                       struct jsi_buf *b);
int jsi_catalog_decode(const uint8_t *p, size_t len, uint64_t *next_id,
                       jsi_cat_entry **entries, size_t *n);
void jsi_catalog_free(jsi_cat_entry *e, size_t n);

/* Each stream's own definition file, streams/<id>/config on the store's
 * backend (catalog_rebuild.c). */
char *jsi_sdef_dir(const char *store_path, uint64_t id);
int jsi_sdef_write(js_vfs *vfs, const char *store_path,
                   const jsi_cat_entry *e);
/* The definition in directory sdir: 0 if it is there and names stream
 * id, JS_ENOTFOUND, JS_ECORRUPT, or an I/O error. */
int jsi_sdef_check(js_vfs *vfs, const char *sdir, uint64_t id);
/* Rewrite the file unless it already holds exactly e. */
int jsi_sdef_repair(js_vfs *vfs, const char *store_path,
                    const jsi_cat_entry *e);
/* Remove the file (absent is fine) and sync its directory. */
int jsi_sdef_remove(js_vfs *vfs, const char *store_path, uint64_t id);
/* The catalogue as the stream directories describe it; next_id is above
 * every numbered directory, readable or not. */
int jsi_catalog_rebuild(js_vfs *vfs, const char *store_path,
                        uint64_t *next_id, jsi_cat_entry **entries,
                        size_t *n);

#endif
