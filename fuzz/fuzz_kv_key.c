/*
 * fuzz_kv_key.c - KV keys and key filters (kv.h): ADR-8's key rules and
 * filter rules in a few buckets, and the subjects they make, which must be
 * valid NATS subjects (a literal for a key, a filter for a filter) that
 * match as the key and filter do.
 *
 * Input: a byte choosing the bucket, then a string (up to the first NUL)
 * tried as a key and as a filter, then optionally a second one after the
 * NUL tried as a key against the first as a filter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "kv.h"
#include "subject.h"

static void bucket(js_kv *kv, uint8_t pick, char *prefix, size_t cap) {
    static char longest[MAX_BUCKET_LEN + 1];
    const char *names[] = {"B", "config", "a-b_C9", longest};
    if (!longest[0])
        memset(longest, 'x', MAX_BUCKET_LEN);
    memset(kv, 0, sizeof *kv);
    kv->bucket = (char *)names[pick % 4];
    snprintf(prefix, cap, SUBJ_PREFIX "%s.", kv->bucket);
    kv->prefix = prefix;
    kv->plen = strlen(prefix);
}

/* 1 and *subj (allocated) if k is a key of the bucket. */
static int key_subject(const js_kv *kv, const char *k, char **subj) {
    *subj = NULL;
    if (jsi_kv_check_key(kv, k) != 0)
        return 0;
    if (!(*subj = jsi_kv_subject(kv, k)))
        return 0;
    if (!jsi_subject_valid(*subj, strlen(*subj), 0))
        fuzz_fail("a valid key makes an invalid subject");
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char prefix[MAX_BUCKET_LEN + 16];
    js_kv kv;
    if (size == 0)
        return 0;
    bucket(&kv, data[0], prefix, sizeof prefix);
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = s[size] = 0;
    const char *k1 = s;
    size_t n1 = strlen(k1);
    const char *k2 = n1 < size - 1 ? s + n1 + 1 : NULL;
    char *subj = NULL, *filt = NULL, *subj2 = NULL;
    int is_key = key_subject(&kv, k1, &subj);
    if (jsi_kv_filter(&kv, k1, &filt) == 0) {
        if (!jsi_subject_valid(filt, strlen(filt), 1))
            fuzz_fail("a valid key filter makes an invalid subject filter");
        if (is_key && !jsi_subject_match(filt, strlen(filt), subj,
                                         strlen(subj)))
            fuzz_fail("a key does not match itself as a filter");
        if (k2 && key_subject(&kv, k2, &subj2))
            (void)jsi_subject_match(filt, strlen(filt), subj2, strlen(subj2));
    } else if (is_key) {
        fuzz_fail("a valid key is not a valid filter");
    }
    jsi_free(subj);
    jsi_free(subj2);
    jsi_free(filt);
    free(s);
    return 0;
}
