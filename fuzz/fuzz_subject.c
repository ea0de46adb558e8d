/*
 * fuzz_subject.c - subjects and names (subject.h): validation with and
 * without wildcards, matching, collision and subset tests between two
 * subjects, and the stream/consumer name rules; with the relations that
 * must hold between them.
 *
 * Input: two strings separated by the first NUL byte (the second may be
 * empty); the first is also tried as a name.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "subject.h"

static void one(const char *s, size_t n) {
    int lit = jsi_subject_valid(s, n, 0), wild = jsi_subject_valid(s, n, 1);
    if (lit && !wild)
        fuzz_fail("a valid literal subject is not a valid filter");
    if (lit && jsi_subject_has_wildcard(s, n))
        fuzz_fail("a literal subject has a wildcard");
    if (lit && !jsi_subject_match(s, n, s, n))
        fuzz_fail("a literal subject does not match itself");
    if (wild && (!jsi_subject_collide(s, s) || !jsi_subject_subset(s, s)))
        fuzz_fail("a filter does not collide with or contain itself");
}

/* a and b valid filters (NUL-terminated, no NUL inside). */
static void pair(const char *a, size_t an, const char *b, size_t bn) {
    int ab = jsi_subject_collide(a, b);
    if (ab != jsi_subject_collide(b, a))
        fuzz_fail("collide is not symmetric");
    if (jsi_subject_subset(a, b) && !ab)
        fuzz_fail("a subset does not collide with its superset");
    if (jsi_subject_subset(a, b) && jsi_subject_subset(b, a) &&
        (an != bn || memcmp(a, b, an) != 0) && jsi_subject_valid(a, an, 0))
        fuzz_fail("two different literals contain each other");
    if (!jsi_subject_valid(b, bn, 0) || !jsi_subject_match(a, an, b, bn))
        return;
    if (!ab)
        fuzz_fail("a filter matches a subject it does not collide with");
    if (!jsi_subject_subset(b, a))
        fuzz_fail("a matched literal is not a subset of the filter");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 2);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = 0;
    const char *a = buf;
    size_t an = strlen(a);
    const char *b = an < size ? buf + an + 1 : buf + size;
    size_t bn = strlen(b);
    one(a, an);
    one(b, bn);
    if (jsi_subject_valid(a, an, 1) && jsi_subject_valid(b, bn, 1)) {
        pair(a, an, b, bn);
        pair(b, bn, a, an);
    }
    const char *why = NULL;
    if (!jsi_name_valid(a, &why) && !why)
        fuzz_fail("an invalid name without a reason");
    free(buf);
    return 0;
}
