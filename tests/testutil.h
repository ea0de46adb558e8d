/*
 * testutil.h - a fake clock for js_open_opts.clock, and (from
 * testutil_fs.h) scratch directories and recursive removal. Header-only and
 * libc-only, so any test may include it.
 */
#ifndef JS_TESTUTIL_H
#define JS_TESTUTIL_H

#include <stdint.h>

#include "testutil_fs.h"

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
