/*
 * util.h - shared internal helpers: errors, allocation, checksums, buffers,
 * little-endian codecs, time and locking shorthands. Every layer may use it.
 */
#ifndef JSI_UTIL_H
#define JSI_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "jetstream.h"

/* ---- errors ---------------------------------------------------------- */

/* Record the calling thread's detail message and NATS code for a failure
 * and return rc, so a failure is one line: return JSI_ERR(JS_EINVAL, 0,
 * "max_age: must be >= 100ms"). */
int jsi_err_set(int rc, int nats, const char *file, int line,
                const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define JSI_ERR(rc, nats, ...) \
    jsi_err_set((rc), (nats), __FILE__, __LINE__, __VA_ARGS__)

/* Clear the calling thread's error state (start of each public call). */
void jsi_err_clear(void);

/* ---- allocation ------------------------------------------------------ */
/* All library allocations go through these, so tests can fail the n-th
 * one. They never abort. */
void *jsi_malloc(size_t n);
void *jsi_calloc(size_t count, size_t size);
void *jsi_realloc(void *p, size_t n);
void jsi_free(void *p);
char *jsi_strdup(const char *s);
char *jsi_strndup(const char *s, size_t n);

/* Test hook: make the n-th allocation from now fail (n >= 1); 0 disables.
 * With forever != 0 every allocation after it fails too. Returns how many
 * allocations have failed since it was set. */
void jsi_alloc_fail_at(uint64_t n, int forever);
uint64_t jsi_alloc_failed(void);
/* Allocations counted since the hook was last armed. */
uint64_t jsi_alloc_seen(void);

/* ---- checksums ------------------------------------------------------- */
/* CRC-32C (Castagnoli), hardware instruction where available. Chainable:
 * jsi_crc32c(jsi_crc32c(0, a, n), b, m) == crc of a||b. */
uint32_t jsi_crc32c(uint32_t crc, const void *buf, size_t len);

/* ---- growable byte buffer ------------------------------------------- */
typedef struct jsi_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
} jsi_buf;
int jsi_buf_reserve(jsi_buf *b, size_t extra); /* JS_ENOMEM */
int jsi_buf_append(jsi_buf *b, const void *p, size_t n);
void jsi_buf_free(jsi_buf *b);

/* A sorted, NULL-terminated copy of n strings in one allocation (freed
 * with jsi_free, i.e. js_names_free); get(ctx, i) gives the i-th. NULL on
 * ENOMEM. */
char **jsi_strv_sorted(size_t n, const char *(*get)(const void *ctx, size_t i),
                       const void *ctx);

/* ---- little-endian codecs -------------------------------------------- */
static inline void jsi_put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void jsi_put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void jsi_put64(uint8_t *p, uint64_t v) {
    jsi_put32(p, (uint32_t)v);
    jsi_put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t jsi_get16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t jsi_get32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint64_t jsi_get64(const uint8_t *p) {
    return (uint64_t)jsi_get32(p) | ((uint64_t)jsi_get32(p + 4) << 32);
}

/* ---- time ------------------------------------------------------------ */
int64_t jsi_wallclock_ns(void);  /* CLOCK_REALTIME */
int64_t jsi_monotonic_ns(void);  /* CLOCK_MONOTONIC */

/* ---- misc ------------------------------------------------------------ */
#define JSI_MIN(a, b) ((a) < (b) ? (a) : (b))
#define JSI_MAX(a, b) ((a) > (b) ? (a) : (b))
#define JSI_NS_PER_MS INT64_C(1000000)
#define JSI_NS_PER_SEC INT64_C(1000000000)

/* t + d, held at INT64_MIN / INT64_MAX instead of overflowing: a
 * duration up to INT64_MAX then means "never", not a deadline wrapped
 * into the past. */
static inline int64_t jsi_time_add(int64_t t, int64_t d) {
    if (d > 0 && t > INT64_MAX - d)
        return INT64_MAX;
    if (d < 0 && t < INT64_MIN - d)
        return INT64_MIN;
    return t + d;
}

/* FNV-1a, for hash tables keyed by short strings. */
static inline uint64_t jsi_hash(const void *p, size_t n) {
    const uint8_t *s = (const uint8_t *)p;
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

#endif
