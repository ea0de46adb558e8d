/*
 * fuzz_headers.c - NATS header blocks (headers.h): validation, value
 * lookup (on any bytes: stored messages are read back without being
 * validated again), decimal parsing of values, and the public getter
 * js_msg_header() on a message carrying the block.
 *
 * Input: the header block. The keys looked up are the ones the library
 * itself reads, plus one taken from the block's first field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "headers.h"
#include "msgstore.h"
#include "util.h"

int jsi_msg_from_rec(const jsi_rec *r, js_msg **out); /* msg.c */

static const char *const keys[] = {
    "Nats-Msg-Id", "Nats-Expected-Stream", "Nats-Expected-Last-Sequence",
    "Nats-Expected-Last-Subject-Sequence", "Nats-Expected-Last-Msg-Id",
    "Nats-Rollup", "KV-Operation", "Nats-Expected-Last-Subject-Sequence-Subject",
    "Nats-TTL", "A", NULL,
};

/* A parsed number prints back as its digits without leading zeros. */
static void check_number(const char *s, size_t n, uint64_t u) {
    char buf[32];
    while (n > 1 && s[0] == '0') {
        s++;
        n--;
    }
    int k = snprintf(buf, sizeof buf, "%llu", (unsigned long long)u);
    if ((size_t)k != n || memcmp(buf, s, n) != 0)
        fuzz_fail("a parsed number is not the number written");
}

static void lookup(const uint8_t *h, size_t n, const char *key,
                   const js_msg *m) {
    const char *v;
    size_t vl;
    uint64_t u;
    if (jsi_hdr_get(h, n, key, &v, &vl)) {
        if ((const uint8_t *)v < h || (const uint8_t *)v + vl > h + n)
            fuzz_fail("a header value outside the block");
        if (jsi_parse_u64(v, vl, &u) == 0)
            check_number(v, vl, u);
    }
    const char *mv;
    size_t ml;
    int rc = js_msg_header(m, key, &mv, &ml);
    if (rc != 0 && rc != JS_ENOTFOUND)
        fuzz_fail("js_msg_header failed on a message");
}

/* The first field's key, if the block has one: a key the block holds. */
static size_t first_key(const uint8_t *h, size_t n, char *out, size_t max) {
    const uint8_t *nl = memchr(h, '\n', n);
    if (!nl)
        return 0;
    const uint8_t *k = nl + 1, *end = h + n;
    const uint8_t *colon = memchr(k, ':', (size_t)(end - k));
    size_t len = colon ? (size_t)(colon - k) : 0;
    if (!len || len > max || memchr(k, 0, len))
        return 0;
    memcpy(out, k, len);
    out[len] = 0;
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char key[256];
    js_msg *m = NULL;
    jsi_rec r = {1, 0, "s", 1, data, size, (const uint8_t *)"", 0};
    int valid = jsi_hdr_validate(data, size) == 0;
    if (jsi_msg_from_rec(&r, &m) != 0)
        return 0;
    for (size_t i = 0; keys[i]; i++)
        lookup(data, size, keys[i], m);
    if (first_key(data, size, key, sizeof key - 1)) {
        const char *v;
        size_t vl;
        if (valid && !jsi_hdr_get(data, size, key, &v, &vl))
            fuzz_fail("a valid block's first key is not found");
        lookup(data, size, key, m);
    }
    js_msg_free(m);
    uint64_t u;
    if (jsi_parse_u64((const char *)data, size, &u) == 0)
        check_number((const char *)data, size, u);
    return 0;
}
