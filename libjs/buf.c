/*
 * buf.c - the growable byte buffer and the clocks.
 */
#include <time.h>

#include <stdlib.h>

#include "util.h"

#define JSI_BUF_MIN_CAP 64

int jsi_buf_reserve(jsi_buf *b, size_t extra) {
    size_t need, cap;
    uint8_t *p;

    if (extra > SIZE_MAX - b->len)
        return JSI_ERR(JS_ENOMEM, 0, "buffer: %zu + %zu bytes overflows",
                       b->len, extra);
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : JSI_BUF_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = jsi_realloc(b->p, cap);
    if (p == NULL)
        return JSI_ERR(JS_ENOMEM, 0, "buffer: out of memory growing to %zu bytes",
                       cap);
    b->p = p;
    b->cap = cap;
    return 0;
}

int jsi_buf_append(jsi_buf *b, const void *p, size_t n) {
    int rc;

    if (n == 0)
        return 0;
    rc = jsi_buf_reserve(b, n);
    if (rc != 0)
        return rc;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void jsi_buf_free(jsi_buf *b) {
    jsi_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int64_t clock_ns(clockid_t id) {
    struct timespec ts;

    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * JSI_NS_PER_SEC + (int64_t)ts.tv_nsec;
}

int64_t jsi_wallclock_ns(void) { return clock_ns(CLOCK_REALTIME); }

int64_t jsi_monotonic_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **jsi_strv_sorted(size_t n, const char *(*get)(const void *ctx, size_t i),
                       const void *ctx) {
    size_t bytes = (n + 1) * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(get(ctx, i)) + 1;
    char **v = jsi_malloc(bytes);
    if (!v)
        return NULL;
    char *p = (char *)(v + n + 1);
    for (size_t i = 0; i < n; i++) {
        v[i] = p;
        p = stpcpy(p, get(ctx, i)) + 1;
    }
    v[n] = NULL;
    qsort(v, n, sizeof *v, cmp_str);
    return v;
}
