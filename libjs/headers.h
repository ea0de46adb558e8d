/*
 * headers.h - NATS header blocks: "NATS/1.0[ status[ desc]]\r\n", then
 * "Key: Value\r\n" lines, then "\r\n". Keys are matched exactly (as
 * nats-server does); values are trimmed of surrounding spaces and tabs.
 */
#ifndef JSI_HEADERS_H
#define JSI_HEADERS_H

#include <stddef.h>
#include <stdint.h>

/* 0 if h[0..n) is a well-formed header block, else JS_EBAD_HEADER with the
 * detail recorded (JSI_ERR). n == 0 is valid (no headers). */
int jsi_hdr_validate(const void *h, size_t n);

/* Find the first value of key in a valid block. Returns 1 and sets
 * *val and *vlen (pointing into h) if found, else 0. */
int jsi_hdr_get(const void *h, size_t n, const char *key, const char **val,
                size_t *vlen);

/* Build a header block from key/value pairs into a malloc'd buffer
 * (jsi_malloc); for the library's own markers and for tests.
 * kv = {k1, v1, k2, v2, ..., NULL}. Returns 0 or JS_ENOMEM. */
int jsi_hdr_build(const char *const *kv, uint8_t **out, size_t *outlen);

/* Parse an unsigned decimal value (no sign, no spaces, no overflow).
 * Returns 0 and sets *out, or JS_EINVAL (*out untouched): test it with
 * `!= 0`, not `!`, as with every fallible function. */
int jsi_parse_u64(const char *s, size_t n, uint64_t *out);

#endif
