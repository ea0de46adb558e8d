/*
 * consumer_config.h - consumer configs: copying the caller's versioned
 * struct, NATS defaults, validation in NATS's order with NATS's error
 * codes, update rules, comparison, filter helpers, the work-queue rule
 * between two consumers, and the file image of a durable consumer's config.
 */
#ifndef JSI_CONSUMER_CONFIG_H
#define JSI_CONSUMER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "jetstream.h"

/* A consumer config with every pointer inside c owned by it. Strings that
 * NATS treats as unset when empty ("") are kept as NULL. */
typedef struct jsi_ccfg {
    js_consumer_config c;
    int64_t *backoff;  /* c.backoff */
    char **filters;    /* c.filter_subjects */
    char **metadata;   /* c.metadata: 2 * c.num_metadata strings */
    int sample_pct;    /* parsed sample_freq: 0..100, or -1 for none */
} jsi_ccfg;

/* Context from the stream the consumer is on. */
typedef struct jsi_ccfg_stream {
    const char *name;            /* stream name */
    int retention;               /* JS_RETENTION_* */
    const char *const *subjects; /* stream subjects (deliver_subject cycle) */
    size_t num_subjects;
} jsi_ccfg_stream;

/* Copy a caller's config (its version-sized prefix) into an owned, zeroed
 * one. NULL, version 0 or a version from the future: JS_EINVAL. */
int jsi_ccfg_import(const js_consumer_config *in, jsi_ccfg *out);
/* Apply NATS's defaults and check every rule about one consumer, in
 * NATS's order; the first failure is JS_EINVAL with the NATS code and the
 * field named in js_errmsg(). s NULL skips the rules that need the stream
 * (deliver_subject cycle, work-queue rules). Idempotent. */
int jsi_ccfg_normalize(jsi_ccfg *c, const jsi_ccfg_stream *s);
/* NATS's update rules between an existing and a new normalised config:
 * JS_EUPDATE naming the field (NATS 10012 "... can not be updated"). */
int jsi_ccfg_check_update(const jsi_ccfg *old, const jsi_ccfg *nu);
/* 1 if two normalised configs are the same. */
int jsi_ccfg_equal(const jsi_ccfg *a, const jsi_ccfg *b);
int jsi_ccfg_copy(const jsi_ccfg *in, jsi_ccfg *out);
void jsi_ccfg_free(jsi_ccfg *c);
/* Give an ephemeral consumer the name the runtime generated for it. */
int jsi_ccfg_set_name(jsi_ccfg *c, const char *name);

/* The filters as one list (filter_subject or filter_subjects), borrowed
 * from c; returns their number, 0 meaning all subjects (*out NULL). */
size_t jsi_ccfg_filters(const jsi_ccfg *c, const char *const **out);
/* 1 if the literal subject s[0..len) passes the consumer's filters. */
int jsi_ccfg_matches(const jsi_ccfg *c, const char *subj, size_t len);

/* The work-queue rule between a new (or updated) consumer a and another
 * consumer b of the same stream: 1 if they may not coexist (a unfiltered:
 * NATS 10099; b unfiltered, or a filter of a collides with one of b:
 * 10100). Then *why (if not NULL) gets NATS's static description and the
 * calling thread's error detail is set (code and the filters at fault), so
 * the caller may return JS_EINVAL at once. 0 if they may coexist. */
int jsi_ccfg_wq_conflict(const jsi_ccfg *a, const jsi_ccfg *b,
                         const char **why);

/* The file image of a durable consumer's config:
 *   u8[4] magic "JSCC", u32 format version (1), u32 flags (0),
 *   u64 consumer id, i64 created (ns), u32 body length,
 *   body: tag-length-value of every field (consumer_config_file.c)
 *   and of the number of copies kept,
 *   u32 CRC-32C of everything before it.
 * decode checks every length against its bounds, the checksum, the
 * version and every field, and normalises the result (without stream
 * rules): any fault is JS_ECORRUPT; JS_ENOMEM if memory runs out. */
struct jsi_buf;
int jsi_ccfg_file_encode(uint64_t id, int64_t created, const jsi_ccfg *c,
                         struct jsi_buf *b);
int jsi_ccfg_file_decode(const uint8_t *p, size_t n, uint64_t *id,
                         int64_t *created, jsi_ccfg *out);

/* Every image encode writes says the store keeps it as this many copies
 * (consumer_config_pair.c). copies gives the count of an image decode
 * accepted: 1 for one written before there were two. */
#define JSI_CCFG_FILE_COPIES 2
unsigned jsi_ccfg_file_copies(const uint8_t *p, size_t n);

/* A durable consumer's config as stored in its stream's consumers
 * directory: two copies of the image, <id>.cfg (A, the authority) and
 * <id>.cfg2 (B), see consumer_config_pair.c for the order of their
 * writes and what open makes of them. */
void jsi_ccfg_pair_names(uint64_t id, char a[32], char b[32]);
/* 1 (and *id) if name is one of the two copies' file names. */
int jsi_ccfg_pair_id(const char *name, uint64_t *id);
/* Store cfg as both copies, B then A; durable on return. */
int jsi_ccfg_pair_write(js_vfs *vfs, const char *dir, uint64_t id,
                        int64_t created, const jsi_ccfg *cfg);
/* Remove both copies, B then A, each durably; a missing one is fine.
 * On failure A, and so the consumer, may remain. */
int jsi_ccfg_pair_remove(js_vfs *vfs, const char *dir, uint64_t id);
/* The config of consumer id from whichever copy stands, repairing the
 * other (best effort). JS_ECORRUPT if neither is readable; JS_ENOMEM; an
 * I/O error reading A. */
int jsi_ccfg_pair_load(js_vfs *vfs, const char *dir, uint64_t id,
                       int64_t *created, jsi_ccfg *out);

#endif
