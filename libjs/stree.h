/*
 * stree.h - an ordered map from subject (a byte string) to a caller-owned
 * pointer: a byte-wise radix (patricia) tree. It gives ordered, resumable,
 * filtered walks whose cost follows what they return: a filter with a
 * literal prefix visits only the subtree under that prefix.
 *
 * The tree is intrusive: it stores no subjects. A value carries its own
 * subject, which the tree reads through the key function given to
 * jsi_stree_new(); the leaf is the value pointer itself, so the tree costs
 * its inner nodes only. Hence values must be non-NULL and at least 2-byte
 * aligned (the low bit tags leaves), and a value's key bytes must stay
 * valid and unchanged for as long as the value is in the tree.
 *
 * Order is plain byte order (memcmp, a shorter key before its extensions),
 * so "a.b" < "a.b.c" < "a.bc". Keys are 1..JS_MAX_SUBJECT_LEN bytes; any
 * bytes are stored, but filtered walks assume valid NATS subjects.
 *
 * Not thread-safe: callers serialise changes; concurrent read-only calls
 * (find, next, size, memory) are safe if the key function is.
 */
#ifndef JSI_STREE_H
#define JSI_STREE_H

#include <stddef.h>

typedef struct jsi_stree jsi_stree;

/* The key of a value in the tree: its subject bytes, their length in *len.
 * Called often (on every node a lookup or walk compares), so it should be
 * a plain field access. */
typedef const char *(*jsi_stree_key_fn)(const void *val, size_t *len);

jsi_stree *jsi_stree_new(jsi_stree_key_fn key); /* key not NULL; NULL on ENOMEM */
void jsi_stree_free(jsi_stree *t);        /* does not free values; NULL ok */
size_t jsi_stree_size(const jsi_stree *t); /* number of subjects */

/* Map subj[0..len) to val, replacing an existing value (returned in *old
 * if old is not NULL; *old = NULL when the key is new). key(val) must be
 * the same bytes as subj[0..len) (they may be the same memory). 0,
 * JS_EINVAL (len 0 or > JS_MAX_SUBJECT_LEN; val NULL or odd; key(val)
 * differs) or JS_ENOMEM (tree unchanged). */
int jsi_stree_insert(jsi_stree *t, const char *subj, size_t len, void *val,
                     void **old);

/* The value for subj, or NULL. O(depth + len). */
void *jsi_stree_find(const jsi_stree *t, const char *subj, size_t len);

/* Remove subj; returns its value, or NULL if absent. Never allocates.
 * The caller may then free the value or change its key. */
void *jsi_stree_remove(jsi_stree *t, const char *subj, size_t len);

/* The first subject in byte order that is > after[0..after_len) (after
 * NULL: from the start) and matches filter (NUL-terminated; NULL or ">":
 * any; wildcards allowed; an invalid filter matches nothing). Returns its
 * value and, if subj/len are not NULL, its key as the key function gives
 * it (NUL-terminated only if the caller's keys are; valid while the value
 * is in the tree). NULL at the end.
 *
 * Subtrees whose prefix cannot match the filter are skipped whole, so a
 * filter with a literal prefix costs O(depth + matches). A streaming
 * iterator keeps a copy of the last subject and passes it as after; that
 * tolerates any change between calls: subjects present throughout are
 * returned exactly once. Uses a fixed 1 KiB of stack, no allocation. */
void *jsi_stree_next(const jsi_stree *t, const char *filter, const char *after,
                     size_t after_len, const char **subj, size_t *len);

/* Call fn(val, ctx) for every subject in byte order until it returns
 * non-zero (returned). Cheaper than next() for a whole walk. fn must not
 * change the tree. */
int jsi_stree_each(const jsi_stree *t, int (*fn)(void *val, void *ctx),
                   void *ctx);

/* Bytes requested from the allocator for the tree (its nodes and the
 * handle; the values and their keys are the caller's); excludes allocator
 * overhead. */
size_t jsi_stree_memory(const jsi_stree *t);

/* For tests: 0 if every invariant holds (order, node shape, reps, size,
 * memory accounting), else a negative line number of the failed check.
 * Recursive, O(size). */
int jsi_stree_check(const jsi_stree *t);

#endif
