/*
 * test_golden.c - every committed golden store image (tests/golden/vN,
 * see tests/golden/README) opens with this library and reads back exactly
 * as it did when it was made: every message, the consumer's position and
 * the KV entries. The images are copied first: opening may rewrite
 * catalogue, definitions and checkpoints, and must never touch the
 * committed files.
 */
#include <check.h>

#include "golden/golden_dump.h"
#include "check_rc.h"
#include "testutil_fs.h"
#include "runner.h"

/* Every golden version; a new format adds its directory here. */
static const char *const versions[] = {"v1"};
#define NVERSIONS (sizeof versions / sizeof versions[0])

static char *base_dir;

/* tests/golden from the source tree: make runs the tests from its root. */
static char *golden_path(const char *v, const char *what) {
    return tu_path("tests/golden/%s/%s", v, what);
}

START_TEST(golden_store_opens_with_exact_contents) {
    const char *v = versions[_i];
    char *src = golden_path(v, "store"), *exp = golden_path(v, "expected.txt");
    char *work = tu_path("%s/%s", base_dir, v);
    uint8_t *want;
    size_t wlen;
    ck_assert_msg(tu_read_file(exp, &want, &wlen) == 0,
                  "%s: run the tests from the source tree's root", exp);
    tu_rm_rf(work);
    ck_assert_int_eq(tu_copy_tree(src, work), 0);
    for (int pass = 0; pass < 2; pass++) {
        /* The second pass reads what the first open left behind. */
        js_open_opts o = JS_OPEN_OPTS_INIT;
        js_store *st;
        char *got = NULL;
        size_t glen = 0;
        o.clock = golden_clock;
        o.no_create = 1;
        CHECK_RC(js_open(work, &o, &st), 0);
        FILE *out = open_memstream(&got, &glen);
        ck_assert_ptr_nonnull(out);
        CHECK_RC(golden_dump(out, st), 0);
        fclose(out);
        CHECK_RC(js_close(st), 0);
        ck_assert_msg(glen == wlen && memcmp(got, want, wlen) == 0,
                      "golden %s (pass %d) reads back differently:\n%s", v,
                      pass, got);
        free(got);
    }
    free(want);
    free(src);
    free(exp);
    free(work);
}
END_TEST

int main(void) {
    base_dir = tu_mkdtemp("test_golden");
    Suite *s = suite_create("golden");
    TCase *t = tcase_create("golden");
    tcase_add_loop_test(t, golden_store_opens_with_exact_contents, 0,
                        (int)NVERSIONS);
    suite_add_tcase(s, t);
    int failed = tu_run_suite(s);
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
