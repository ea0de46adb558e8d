/*
 * check_rc.h - CHECK_RC(expr, want): assert a library call's return code,
 * naming both codes and the thread's error message when they differ.
 */
#ifndef JS_CHECK_RC_H
#define JS_CHECK_RC_H

#include <check.h>

#include "jetstream.h"

#define CHECK_RC(expr, want)                                                \
    do {                                                                    \
        int rc_ = (expr), w_ = (want);                                      \
        ck_assert_msg(rc_ == w_, "%s: got %d (%s), want %d (%s); errmsg: %s", \
                      #expr, rc_, js_strerror(rc_), w_, js_strerror(w_),    \
                      js_errmsg());                                         \
    } while (0)

#endif
