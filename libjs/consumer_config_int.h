/*
 * consumer_config_int.h - private to consumer_config*.c: the table of a
 * consumer config's scalar and string fields, with their tags in the
 * durable config file. Copying, comparing and the codec walk it, so a
 * field appended to js_consumer_config is added here once.
 */
#ifndef JSI_CONSUMER_CONFIG_INT_H
#define JSI_CONSUMER_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "jetstream.h"

/* File tags, 1..63 (the decoder keeps a 64-bit mask of those seen). Never
 * reused or renumbered; a reader skips tags it does not know, so a later
 * version may add fields within format version 1. */
enum {
    JSI_CCFG_T_NAME = 1,
    JSI_CCFG_T_DURABLE = 2,
    JSI_CCFG_T_DESC = 3,
    JSI_CCFG_T_DELIVER_POLICY = 4,
    JSI_CCFG_T_OPT_START_SEQ = 5,
    JSI_CCFG_T_OPT_START_TIME = 6,
    JSI_CCFG_T_ACK_POLICY = 7,
    JSI_CCFG_T_ACK_WAIT = 8,
    JSI_CCFG_T_MAX_DELIVER = 9,
    JSI_CCFG_T_BACKOFF = 10,      /* every delay, 8 bytes each */
    JSI_CCFG_T_FILTER = 11,
    JSI_CCFG_T_FILTERS = 12,      /* one entry of filter_subjects each */
    JSI_CCFG_T_REPLAY_POLICY = 13,
    JSI_CCFG_T_RATE_LIMIT = 14,
    JSI_CCFG_T_SAMPLE_FREQ = 15,
    JSI_CCFG_T_MAX_WAITING = 16,
    JSI_CCFG_T_MAX_ACK_PENDING = 17,
    JSI_CCFG_T_HEADERS_ONLY = 18,
    JSI_CCFG_T_MAX_BATCH = 19,
    JSI_CCFG_T_MAX_EXPIRES = 20,
    JSI_CCFG_T_MAX_BYTES = 21,
    JSI_CCFG_T_DELIVER_SUBJECT = 22,
    JSI_CCFG_T_DELIVER_GROUP = 23,
    JSI_CCFG_T_INACTIVE = 24,
    JSI_CCFG_T_METADATA = 25,     /* one pair each: varint key length,
                                     key, value */
    JSI_CCFG_T_MEM_STORAGE = 26,
    /* Not a config field: how many copies of this file the store keeps
     * (1 byte; absent in files from before there were two: one). */
    JSI_CCFG_T_COPIES = 27,
};

enum {
    JSI_CCFG_K_STR, /* const char *, NULL when unset */
    JSI_CCFG_K_INT, /* int */
    JSI_CCFG_K_I64, /* int64_t */
    JSI_CCFG_K_U64, /* uint64_t */
};

typedef struct jsi_ccfg_field {
    unsigned tag;
    size_t off;    /* offsetof(js_consumer_config, member) */
    unsigned kind; /* JSI_CCFG_K_* */
} jsi_ccfg_field;

#define JSI_CCFG_MAX_FIELDS 32
extern const jsi_ccfg_field jsi_ccfg_fields[];
extern const size_t jsi_ccfg_num_fields;

/* Field access through the table. Numbers travel as int64_t (a uint64_t
 * as its bit pattern). */
const char *jsi_ccfg_str(const js_consumer_config *c, const jsi_ccfg_field *f);
void jsi_ccfg_set_str(js_consumer_config *c, const jsi_ccfg_field *f,
                      const char *s);
int64_t jsi_ccfg_num(const js_consumer_config *c, const jsi_ccfg_field *f);
void jsi_ccfg_set_num(js_consumer_config *c, const jsi_ccfg_field *f,
                      int64_t v);

#endif
