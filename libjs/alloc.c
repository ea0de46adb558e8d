/*
 * alloc.c - the library's allocator: malloc with a fault-injection hook so
 * tests can make every allocation fail in turn.
 *
 * A zero-byte request allocates one byte, so NULL always means failure.
 */
#include <stdlib.h>

#include "util.h"

/* The hook's state. fail_at == 0: disarmed. Otherwise the seen-th
 * allocation since arming fails when seen == fail_at, or seen >= fail_at
 * with fail_forever. Updated with atomics so threads may allocate while a
 * test arms the hook. */
static uint64_t fail_at;
static int fail_forever;
static uint64_t seen;
static uint64_t failed;

void jsi_alloc_fail_at(uint64_t n, int forever) {
    __atomic_store_n(&fail_at, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&seen, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&failed, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fail_forever, forever != 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fail_at, n, __ATOMIC_SEQ_CST);
}

uint64_t jsi_alloc_seen(void) {
    return __atomic_load_n(&seen, __ATOMIC_SEQ_CST);
}

uint64_t jsi_alloc_failed(void) {
    return __atomic_load_n(&failed, __ATOMIC_SEQ_CST);
}

/* 1 if this allocation must fail. */
static int should_fail(void) {
    uint64_t at = __atomic_load_n(&fail_at, __ATOMIC_ACQUIRE);
    uint64_t k;

    if (at == 0)
        return 0;
    k = __atomic_add_fetch(&seen, 1, __ATOMIC_SEQ_CST);
    if (k == at || (k > at && __atomic_load_n(&fail_forever, __ATOMIC_SEQ_CST))) {
        __atomic_add_fetch(&failed, 1, __ATOMIC_SEQ_CST);
        return 1;
    }
    return 0;
}

void *jsi_malloc(size_t n) {
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *jsi_calloc(size_t count, size_t size) {
    if (should_fail())
        return NULL;
    if (count == 0 || size == 0)
        count = size = 1;
    else if (count > SIZE_MAX / size)
        return NULL;
    return calloc(count, size);
}

void *jsi_realloc(void *p, size_t n) {
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void jsi_free(void *p) { free(p); }

char *jsi_strndup(const char *s, size_t n) {
    const char *nul = memchr(s, '\0', n);
    size_t len = nul ? (size_t)(nul - s) : n;
    char *d = jsi_malloc(len + 1);

    if (d == NULL)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *jsi_strdup(const char *s) { return jsi_strndup(s, strlen(s)); }
