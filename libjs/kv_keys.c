/*
 * kv_keys.c - reading a bucket key by key: the streaming key listing,
 * a key's history, and purge_deletes. The listing walks the stream's
 * ordered subject index a batch at a time, resuming after the last
 * subject it saw, so it holds at most one batch of keys and tolerates
 * changes between batches.
 */
#include "kv.h"

#define BATCH 256
#define KEYLIST_MAGIC 0x4a534b4cu /* "JSKL" */

typedef struct kslot {
    uint64_t last;
    size_t off, len; /* the subject in buf */
} kslot;

struct js_kv_keylist {
    uint32_t magic;
    js_kv *kv;
    char *filter;    /* subject filter */
    jsi_buf buf;     /* this batch's subjects, NUL-terminated */
    kslot slot[BATCH];
    size_t n, i;
    char *after;     /* the last subject of the previous batch */
    size_t after_len;
    int started, done;
    int markers;     /* purge_deletes: return the marked keys instead */
};

static int add_slot(const char *subj, size_t len, uint64_t last, void *ctx) {
    js_kv_keylist *l = ctx;
    kslot *k = &l->slot[l->n];
    k->off = l->buf.len;
    k->len = len;
    k->last = last;
    if (jsi_buf_append(&l->buf, subj, len + 1) != 0)
        return JS_ENOMEM;
    l->n++;
    return 0;
}

static int refill(js_kv_keylist *l) {
    l->n = l->i = 0;
    l->buf.len = 0;
    int got = jsi_stream_subjects(l->kv->s, l->filter,
                                  l->started ? l->after : NULL, l->after_len,
                                  BATCH, add_slot, l);
    if (got < 0) /* drop a part batch: a retry starts from `after` again */
        l->n = 0;
    if (got == JS_ENOMEM)
        return JSI_ERR(JS_ENOMEM, 0, "keys");
    if (got < 0)
        return got;
    l->started = 1;
    l->done = (size_t)got < BATCH;
    if (l->n) {
        kslot *k = &l->slot[l->n - 1];
        char *a = jsi_realloc(l->after, k->len + 1);
        if (!a)
            return JSI_ERR(JS_ENOMEM, 0, "keys");
        memcpy(a, (char *)l->buf.p + k->off, k->len + 1);
        l->after = a;
        l->after_len = k->len;
    }
    return 0;
}

/* The latest entry of a listed subject (0 and *m NULL: it has none now). */
static int latest_msg(js_kv_keylist *l, const kslot *k, js_msg **m) {
    const char *subj = (const char *)l->buf.p + k->off;
    int rc = js_msg_get(l->kv->s, k->last, m);
    if (rc == 0 && strcmp(js_msg_subject(*m), subj) == 0)
        return 0;
    if (rc == 0)
        js_msg_free(*m);
    else if (rc != JS_EMSG_NOT_FOUND)
        return rc;
    /* Replaced or removed since the batch was read. */
    rc = js_msg_get_last(l->kv->s, subj, m);
    if (rc == JS_EMSG_NOT_FOUND) {
        *m = NULL;
        jsi_err_clear();
        return 0;
    }
    return rc;
}

/* The next listed subject whose latest entry is a value (a marker with
 * l->markers); *m gets that entry. 1, 0 at the end, or an error. */
static int next_slot(js_kv_keylist *l, const kslot **out, js_msg **m) {
    for (;;) {
        if (l->i == l->n) {
            if (l->done)
                return 0;
            int rc = refill(l);
            if (rc)
                return rc;
            continue;
        }
        const kslot *k = &l->slot[l->i++];
        int rc = latest_msg(l, k, m);
        if (rc)
            return rc;
        if (!*m)
            continue;
        if ((jsi_kv_entry_op(*m) != JS_KV_OP_PUT) == l->markers) {
            *out = k;
            return 1;
        }
        js_msg_free(*m);
    }
}

static int list_new(js_kv *kv, const char *filter, int markers,
                    js_kv_keylist **out) {
    int rc = jsi_kv_enter(kv);
    if (rc == 0 && !out)
        rc = JSI_ERR(JS_EINVAL, 0, "out: NULL");
    if (rc)
        return rc;
    js_kv_keylist *l = jsi_calloc(1, sizeof *l);
    if (!l)
        return JSI_ERR(JS_ENOMEM, 0, "keys");
    l->magic = KEYLIST_MAGIC;
    l->kv = kv;
    l->markers = markers;
    if ((rc = jsi_kv_filter(kv, filter, &l->filter)) != 0) {
        js_kv_keys_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

JS_API int js_kv_keys(js_kv *kv, const char *filter, js_kv_keylist **out) {
    return list_new(kv, filter, 0, out);
}

JS_API int js_kv_keys_next(js_kv_keylist *l, const char **key) {
    jsi_err_clear();
    if (!l || l->magic != KEYLIST_MAGIC)
        return JSI_ERR(JS_EMISUSE, 0, "not a key listing");
    if (!key)
        return JSI_ERR(JS_EINVAL, 0, "key: NULL");
    const kslot *k;
    js_msg *m;
    int rc = next_slot(l, &k, &m);
    if (rc == 1) {
        js_msg_free(m);
        *key = (const char *)l->buf.p + k->off + l->kv->plen;
    }
    return rc;
}

JS_API void js_kv_keys_free(js_kv_keylist *l) {
    if (!l || l->magic != KEYLIST_MAGIC)
        return;
    l->magic = 0;
    jsi_free(l->filter);
    jsi_free(l->after);
    jsi_buf_free(&l->buf);
    jsi_free(l);
}

/* ---- history -------------------------------------------------------------- */

JS_API void js_kv_history_free(struct js_kv_entry **v, size_t n) {
    for (size_t i = 0; v && i < n; i++)
        js_kv_entry_free(v[i]);
    jsi_free(v);
}

static int push_entry(const js_kv *kv, const char *key, const js_msg *m,
                      struct js_kv_entry ***v, size_t *n, size_t *cap) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct js_kv_entry **nv = jsi_realloc(*v, nc * sizeof *nv);
        if (!nv)
            return JSI_ERR(JS_ENOMEM, 0, "history");
        *v = nv;
        *cap = nc;
    }
    int rc = jsi_kv_make_entry(kv, key, m, &(*v)[*n]);
    if (rc == 0)
        (*n)++;
    return rc;
}

JS_API int js_kv_history(js_kv *kv, const char *key,
                         struct js_kv_entry ***entries, size_t *count) {
    int rc = jsi_kv_enter(kv);
    if (rc == 0 && (!entries || !count))
        rc = JSI_ERR(JS_EINVAL, 0, "entries and n are required");
    if (rc == 0)
        rc = jsi_kv_check_key(kv, key);
    if (rc)
        return rc;
    char *subj = jsi_kv_subject(kv, key);
    if (!subj)
        return JSI_ERR(JS_ENOMEM, 0, "history");
    struct js_kv_entry **v = NULL;
    size_t n = 0, cap = 0;
    uint64_t seq = 1;
    js_msg *m;
    /* The summaries of blocks without this key let the walk skip them. */
    while (rc == 0 && (rc = js_msg_get_next(kv->s, subj, seq, &m)) == 0) {
        seq = js_msg_seq(m) + 1;
        rc = push_entry(kv, key, m, &v, &n, &cap);
        js_msg_free(m);
    }
    jsi_free(subj);
    if (rc == JS_EMSG_NOT_FOUND)
        rc = n ? 0 : JSI_ERR(JS_EKEY_NOT_FOUND, 0, "key %s not found", key);
    if (rc) {
        js_kv_history_free(v, n);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        v[i]->delta = n - 1 - i;
    jsi_err_clear();
    *entries = v;
    *count = n;
    return 0;
}

/* ---- purge_deletes ---------------------------------------------------------- */

#define DEFAULT_MARKER_AGE (30 * 60 * JSI_NS_PER_SEC)

/* Remove the marker m's key's entries below it, and the marker too when it
 * is older than the cut (cut INT64_MAX: every marker). Entries stored
 * after the marker are never touched. */
static int purge_marked(js_kv *kv, const js_msg *m, int64_t cut,
                        uint64_t *purged) {
    js_purge_opts o = JS_PURGE_OPTS_INIT;
    uint64_t n = 0;
    o.filter = js_msg_subject(m);
    o.seq = js_msg_seq(m) + (js_msg_time(m) < cut);
    int rc = js_stream_purge(kv->s, &o, &n);
    *purged += n;
    return rc;
}

JS_API int js_kv_purge_deletes(js_kv *kv, int64_t older_than,
                               uint64_t *purged) {
    js_kv_keylist *l;
    uint64_t total = 0;
    int rc = list_new(kv, NULL, 1, &l);
    if (rc)
        return rc;
    if (older_than == 0)
        older_than = DEFAULT_MARKER_AGE;
    int64_t cut = older_than < 0 ? INT64_MAX
                                 : jsi_stream_now(kv->s) - older_than;
    const kslot *k;
    js_msg *m;
    while ((rc = next_slot(l, &k, &m)) == 1) {
        rc = purge_marked(kv, m, cut, &total);
        js_msg_free(m);
        if (rc)
            break;
    }
    /* Success says the markers are gone for good: that holds only once
     * every removal so far is durable. A retry after a failed sync finds
     * the markers already gone from memory and removes nothing itself;
     * the commit makes it fail as any change does then (fail-stop). */
    if (rc == 0)
        rc = jsi_stream_commit(kv->s, 0);
    js_kv_keys_free(l);
    if (purged)
        *purged = total;
    return rc;
}
