/*
 * testutil.h - small helpers shared by the test programs: scratch
 * directories under /tmp, recursive removal, a fake clock for
 * js_open_opts.clock. Header-only and libc-only, so any test may include it.
 * Needs _GNU_SOURCE or _XOPEN_SOURCE >= 700 (the Makefile passes
 * -D_GNU_SOURCE) for mkdtemp() and nftw().
 */
#ifndef JS_TESTUTIL_H
#define JS_TESTUTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Make a fresh, empty directory /tmp/<tag>.XXXXXX. Returns its path
 * (free() it) or NULL. */
static inline char *tu_mkdtemp(const char *tag) {
    size_t n = strlen("/tmp/") + strlen(tag) + strlen(".XXXXXX") + 1;
    char *p = malloc(n);

    if (p == NULL)
        return NULL;
    snprintf(p, n, "/tmp/%s.XXXXXX", tag);
    if (mkdtemp(p) == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

static inline int tu_rm_one(const char *path, const struct stat *sb, int type,
                            struct FTW *ftw) {
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* Remove path and everything under it (symlinks are not followed).
 * 0 on success or if path does not exist, -1 otherwise. */
static inline int tu_rmtree(const char *path) {
    struct stat sb;

    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* A fake clock for js_open_opts.clock: clock_ctx points at an int64_t
 * holding the time in ns; the test moves it with tu_clock_set/advance.
 * Atomic so threads may read it while the test thread moves it. */
static inline int64_t tu_clock(void *ctx) {
    return __atomic_load_n((int64_t *)ctx, __ATOMIC_SEQ_CST);
}

static inline void tu_clock_set(int64_t *clk, int64_t ns) {
    __atomic_store_n(clk, ns, __ATOMIC_SEQ_CST);
}

static inline void tu_clock_advance(int64_t *clk, int64_t ns) {
    __atomic_add_fetch(clk, ns, __ATOMIC_SEQ_CST);
}

#endif
