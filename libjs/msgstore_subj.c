/*
 * msgstore_subj.c - the message store's subject index: a hash from subject
 * to its entry (count, first, last) for the publish and lookup paths, and
 * an ordered tree over the same entries for filtered, resumable walks (KV
 * key listings, watches, wildcard counts) whose cost follows what they
 * return rather than the number of subjects.
 *
 * Both structures always hold exactly the same entries; only the
 * functions here change them. The tree is intrusive: its leaves are the
 * hash's entries and it reads their inline subjects, so the subjects are
 * stored once. That is sound because an entry's subject never changes and
 * an entry leaves the tree before the hash frees it.
 */
#include "msgstore_int.h"
#include "stree.h"

static const char *entry_key(const void *val, size_t *len) {
    const jsi_sidx_entry *e = val;

    *len = e->len;
    return e->subj;
}

jsi_sidx_entry *jsi_ms_subj_upsert(jsi_ms *ms, const char *subj, size_t len,
                                   int *created) {
    int fresh = 0;
    jsi_sidx_entry *e = jsi_sidx_upsert(ms->sidx, subj, len, &fresh);
    if (e && fresh &&
        jsi_stree_insert(ms->stree, e->subj, e->len, e, NULL) != 0) {
        jsi_sidx_remove(ms->sidx, e);
        e = NULL;
        fresh = 0;
    }
    *created = fresh;
    return e;
}

void jsi_ms_subj_remove(jsi_ms *ms, jsi_sidx_entry *e) {
    jsi_stree_remove(ms->stree, e->subj, e->len);
    jsi_sidx_remove(ms->sidx, e);
}

int jsi_ms_subj_init(jsi_ms *ms) {
    jsi_sidx *x = jsi_sidx_new();
    jsi_stree *t = jsi_stree_new(entry_key);
    if (!x || !t) {
        jsi_sidx_free(x);
        jsi_stree_free(t);
        return JS_ENOMEM;
    }
    jsi_ms_subj_free(ms);
    ms->sidx = x;
    ms->stree = t;
    return 0;
}

void jsi_ms_subj_free(jsi_ms *ms) {
    jsi_stree_free(ms->stree);
    jsi_sidx_free(ms->sidx);
    ms->stree = NULL;
    ms->sidx = NULL;
}

jsi_sidx_entry *jsi_ms_subject_next(jsi_ms *ms, const char *filter,
                                    const char *after, size_t after_len) {
    return jsi_stree_next(ms->stree, filter, after, after_len, NULL, NULL);
}

/* A filter whose first token is a wildcard gains little from the tree:
 * walking the hash is cheaper then. */
static int leading_wild(const char *f) {
    return (f[0] == '*' || f[0] == '>') && (f[1] == '.' || f[1] == '\0');
}

/* 1 if e matches one of f[0..n). */
static int match_any(const char *const *f, size_t n,
                     const jsi_sidx_entry *e) {
    for (size_t k = 0; k < n; k++)
        if (jsi_subject_match(f[k], strlen(f[k]), e->subj, e->len))
            return 1;
    return 0;
}

int jsi_ms_subject_each(jsi_ms *ms, const char *const *f, size_t nf,
                        jsi_subj_fn fn, void *ctx) {
    int hash_walk = nf == 0;
    for (size_t i = 0; i < nf; i++)
        hash_walk |= leading_wild(f[i]);
    int rc = 0;
    if (hash_walk) {
        size_t pos = 0;
        jsi_sidx_entry *e;
        while (rc == 0 && (e = jsi_sidx_next(ms->sidx, &pos)) != NULL)
            if (nf == 0 || match_any(f, nf, e))
                rc = fn(e, ctx);
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < nf; i++) {
        jsi_sidx_entry *e = jsi_ms_subject_next(ms, f[i], NULL, 0);
        for (; rc == 0 && e;
             e = jsi_ms_subject_next(ms, f[i], e->subj, e->len))
            if (!match_any(f, i, e)) /* overlapping filters: once */
                rc = fn(e, ctx);
    }
    return rc;
}
