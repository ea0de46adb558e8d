/*
 * msgstore_subj.c - the message store's subject index: a hash from subject
 * to its entry (count, first, last) for the publish and lookup paths, and
 * an ordered tree over the same entries for filtered, resumable walks (KV
 * key listings, watches, wildcard counts) whose cost follows what they
 * return rather than the number of subjects.
 *
 * Both structures always hold exactly the same entries; only the
 * functions here change them.
 */
#include "msgstore_int.h"
#include "stree.h"

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
    jsi_stree *t = jsi_stree_new();
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

