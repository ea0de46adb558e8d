/*
 * rangeset.h - a set of 64-bit sequence numbers kept as sorted, disjoint,
 * non-adjacent inclusive runs. Memory grows with the number of runs, not
 * with the number of members.
 */
#ifndef JSI_RANGESET_H
#define JSI_RANGESET_H

#include <stddef.h>
#include <stdint.h>

typedef struct jsi_range {
    uint64_t lo, hi; /* inclusive */
} jsi_range;

typedef struct jsi_rangeset {
    jsi_range *r;
    size_t n, cap;
} jsi_rangeset;

#define JSI_RANGESET_INIT {NULL, 0, 0}

/* Add [lo, hi] (lo <= hi), merging runs. 0 or JS_ENOMEM (set unchanged). */
int jsi_rs_add(jsi_rangeset *s, uint64_t lo, uint64_t hi);
/* 1 if v is a member. O(log runs). */
int jsi_rs_contains(const jsi_rangeset *s, uint64_t v);
/* Remove every member < v. */
void jsi_rs_remove_below(jsi_rangeset *s, uint64_t v);
/* Remove every member in [lo, hi]; 0 or JS_ENOMEM (splitting a run). */
int jsi_rs_remove(jsi_rangeset *s, uint64_t lo, uint64_t hi);
/* Number of members in [lo, hi]. */
uint64_t jsi_rs_count_in(const jsi_rangeset *s, uint64_t lo, uint64_t hi);
/* Total number of members. */
uint64_t jsi_rs_total(const jsi_rangeset *s);
/* The smallest member >= v, or 0 if none (members are never 0). */
uint64_t jsi_rs_next_member(const jsi_rangeset *s, uint64_t v);
/* The smallest non-member >= v. */
uint64_t jsi_rs_next_gap(const jsi_rangeset *s, uint64_t v);
/* The largest non-member <= v (0 if every value from 1 to v is one: 0 is
 * never a member). O(log runs). */
uint64_t jsi_rs_prev_gap(const jsi_rangeset *s, uint64_t v);
void jsi_rs_clear(jsi_rangeset *s);
void jsi_rs_free(jsi_rangeset *s);

/* Serialise as varints (count, then lo and hi-lo deltas) appended to b;
 * decode checks every bound and returns JS_ECORRUPT on bad input. */
struct jsi_buf;
int jsi_rs_encode(const jsi_rangeset *s, struct jsi_buf *b);
int jsi_rs_decode(jsi_rangeset *s, const uint8_t *p, size_t n,
                  size_t *used);

/* Varints (LEB128, unsigned): put returns bytes written (<= 10); get
 * returns bytes read, or 0 on truncated/overlong input. */
size_t jsi_uvarint_put(uint8_t *p, uint64_t v);
size_t jsi_uvarint_get(const uint8_t *p, size_t n, uint64_t *v);

#endif
