/*
 * kv.h - what the key/value files share: the bucket handle and the
 * conventions of keys, subjects and entries (kv.c), used by the listing,
 * history and purge code (kv_keys.c) and watchers (kv_watch.c).
 */
#ifndef JSI_KV_H
#define JSI_KV_H

#include "stream.h"
#include "util.h"

#define KV_MAGIC 0x4a534b56u /* "JSKV" */
#define STREAM_PREFIX "KV_"
#define SUBJ_PREFIX "$KV."
#define HDR_OP "KV-Operation"
#define DEFAULT_DUP_WINDOW (120 * JSI_NS_PER_SEC)
#define MAX_BUCKET_LEN (JS_MAX_NAME_LEN - 3)

struct js_kv {
    uint32_t magic;
    js_store *store;
    js_stream *s;        /* referenced */
    char *bucket;
    char *prefix;        /* "$KV.<bucket>." */
    size_t plen;
};

/* Clear the thread's error and check the handle: 0 or JS_EMISUSE. */
int jsi_kv_enter(js_kv *kv);
/* ADR-8 key rules, with an error naming the problem. */
int jsi_kv_check_key(const js_kv *kv, const char *k);
/* The subject filter (allocated) for a key filter (NULL or ">": every
 * key), checked as ADR-8 checks watch and keys filters. */
int jsi_kv_filter(const js_kv *kv, const char *filter, char **out);
/* "$KV.<bucket>.<key>", allocated; NULL on ENOMEM. */
char *jsi_kv_subject(const js_kv *kv, const char *key);
/* The JS_KV_OP_* an entry records. */
int jsi_kv_entry_op(const js_msg *m);
/* A library-allocated entry for the message m of key. */
int jsi_kv_make_entry(const js_kv *kv, const char *key, const js_msg *m,
                      struct js_kv_entry **out);

#endif
