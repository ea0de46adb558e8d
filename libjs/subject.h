/*
 * subject.h - NATS subjects: validation, wildcard matching, overlap tests,
 * name validation, and the per-subject index (count, first and last
 * sequence per literal subject).
 *
 * Subject rules (NATS): tokens separated by '.', no empty token, no
 * whitespace or control bytes, at most JS_MAX_SUBJECT_LEN bytes. A token
 * that is exactly "*" matches one token; ">" matches one or more tokens and
 * must be the last token. Any other token containing '*' or '>' is literal.
 */
#ifndef JSI_SUBJECT_H
#define JSI_SUBJECT_H

#include <stddef.h>
#include <stdint.h>

/* 1 if s[0..len) is a valid subject (wildcards allowed when
 * allow_wildcards), else 0. */
int jsi_subject_valid(const char *s, size_t len, int allow_wildcards);

/* 1 if s has a "*" or ">" wildcard token. s must be valid. */
int jsi_subject_has_wildcard(const char *s, size_t len);

/* 1 if the literal subject matches filter (which may have wildcards). */
int jsi_subject_match(const char *filter, size_t flen, const char *subj,
                      size_t slen);

/* 1 if some literal subject matches both filters (NATS SubjectsCollide). */
int jsi_subject_collide(const char *a, const char *b);

/* 1 if every subject matched by a is matched by b (a is a subset of b). */
int jsi_subject_subset(const char *a, const char *b);

/* Stream/consumer name rules: non-empty, <= JS_MAX_NAME_LEN bytes, none of
 * whitespace, control bytes (< 0x20, 0x7f), '.', '*', '>', '/', '\\'.
 * Returns 1 if valid; else 0 and *why (if not NULL) gets a static reason. */
int jsi_name_valid(const char *name, const char **why);

/* ---- per-subject index ------------------------------------------------ */

typedef struct jsi_sidx_entry {
    uint64_t count;  /* live messages on this subject */
    uint64_t first;  /* lowest live sequence (see first_stale) */
    uint64_t last;   /* highest live sequence */
    uint64_t id;     /* owner's stable id for the entry; zeroed on create */
    uint32_t first_stale; /* 1: `first` is a lower bound, not exact */
    uint32_t len;    /* subject length */
    uint32_t hint;   /* owner's cache (a position); zeroed on create */
    char subj[];     /* the subject, NUL-terminated */
} jsi_sidx_entry;

typedef struct jsi_sidx jsi_sidx;

jsi_sidx *jsi_sidx_new(void);                 /* NULL on ENOMEM */
void jsi_sidx_free(jsi_sidx *x);
size_t jsi_sidx_size(const jsi_sidx *x);      /* number of subjects */
/* The entry for a literal subject, or NULL. */
jsi_sidx_entry *jsi_sidx_get(jsi_sidx *x, const char *subj, size_t len);
/* The entry, created zeroed if absent (*created = 1). NULL on ENOMEM. */
jsi_sidx_entry *jsi_sidx_upsert(jsi_sidx *x, const char *subj, size_t len,
                                int *created);
/* Room for `more` new entries without growing (0 or JS_ENOMEM): a loader
 * that knows the count saves the rehashes. */
int jsi_sidx_reserve(jsi_sidx *x, size_t more);
/* Remove and free an entry obtained from this index. */
void jsi_sidx_remove(jsi_sidx *x, jsi_sidx_entry *e);
/* Iterate: *pos starts at 0; returns the next entry or NULL at the end.
 * The index must not change during a walk. Order is unspecified. */
jsi_sidx_entry *jsi_sidx_next(const jsi_sidx *x, size_t *pos);
/* Memory used by the index, bytes (for reports). */
size_t jsi_sidx_memory(const jsi_sidx *x);

#endif
