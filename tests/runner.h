/*
 * runner.h - the end every test main() shares: run a suite in the check
 * framework's normal mode and return how many of its tests failed.
 */
#ifndef JS_TEST_RUNNER_H
#define JS_TEST_RUNNER_H

#include <check.h>

static inline int tu_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}

#endif
