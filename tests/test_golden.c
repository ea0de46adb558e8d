/*
 * test_golden.c - every committed golden store image (tests/golden/vN,
 * see tests/golden/README) opens with this library and reads back exactly
 * as it did when it was made: every message, the consumer's position and
 * the KV entries. The images are copied first: opening may rewrite
 * catalogue, definitions and checkpoints, and must never touch the
 * committed files.
 *
 * v1 stores keep one copy of a durable consumer's config where later ones
 * keep two: opening leaves the one as it is, the next update writes both.
 */
#include <check.h>
#include <sys/stat.h>

#include "golden/golden_dump.h"
#include "consumer_config.h"
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

#define V1_CCFG "streams/0000000000000001/consumers/0000000000000001.cfg"

static int exists(const char *dir, const char *rel) {
    struct stat sb;
    char *p = tu_path("%s/%s", dir, rel);
    int r = stat(p, &sb) == 0;
    free(p);
    return r;
}

static void read_rel(const char *dir, const char *rel, uint8_t **img,
                     size_t *len) {
    char *p = tu_path("%s/%s", dir, rel);
    ck_assert_msg(tu_read_file(p, img, len) == 0, "%s", p);
    free(p);
}

/* Open work, then update C1's description (desc NULL: only open). */
static void open_update(const char *work, const char *desc) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    js_store *st;
    js_stream *s;
    o.clock = golden_clock;
    o.no_create = 1;
    CHECK_RC(js_open(work, &o, &st), 0);
    if (desc) {
        js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
        cc.durable_name = "C1";
        cc.description = desc;
        CHECK_RC(js_stream_lookup(st, "ORD", &s), 0);
        CHECK_RC(js_consumer_update(s, &cc, NULL), 0);
        js_stream_release(s);
    }
    CHECK_RC(js_close(st), 0);
}

static void check_description(const char *work, const char *desc) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    js_store *st;
    js_stream *s;
    js_consumer *c;
    struct js_consumer_info *ci;
    o.clock = golden_clock;
    o.no_create = 1;
    CHECK_RC(js_open(work, &o, &st), 0);
    CHECK_RC(js_stream_lookup(st, "ORD", &s), 0);
    CHECK_RC(js_consumer_lookup(s, "C1", &c), 0);
    CHECK_RC(js_consumer_info(c, &ci), 0);
    ck_assert_str_eq(ci->config->description, desc);
    js_consumer_info_free(ci);
    js_consumer_release(c);
    js_stream_release(s);
    CHECK_RC(js_close(st), 0);
}

START_TEST(golden_v1_consumer_config_gains_its_second_copy_on_update) {
    char *src = golden_path("v1", "store");
    char *work = tu_path("%s/v1-copies", base_dir);
    uint8_t *before, *after, *b;
    size_t nbefore, nafter, nb;
    tu_rm_rf(work);
    ck_assert_int_eq(tu_copy_tree(src, work), 0);
    read_rel(work, V1_CCFG, &before, &nbefore);
    ck_assert_uint_eq(jsi_ccfg_file_copies(before, nbefore), 1);
    open_update(work, NULL);
    ck_assert(!exists(work, V1_CCFG "2"));
    read_rel(work, V1_CCFG, &after, &nafter);
    ck_assert(nafter == nbefore && !memcmp(after, before, nbefore));
    free(after);
    open_update(work, "updated");
    read_rel(work, V1_CCFG, &after, &nafter);
    read_rel(work, V1_CCFG "2", &b, &nb);
    ck_assert(nafter == nb && !memcmp(after, b, nb));
    ck_assert_uint_eq(jsi_ccfg_file_copies(after, nafter), 2);
    /* And now either copy stands in for the other. */
    char *a_path = tu_path("%s/%s", work, V1_CCFG);
    ck_assert_int_eq(unlink(a_path), 0);
    check_description(work, "updated");
    ck_assert(exists(work, V1_CCFG));
    free(a_path);
    free(before);
    free(after);
    free(b);
    free(src);
    free(work);
}
END_TEST

int main(void) {
    base_dir = tu_mkdtemp("test_golden");
    Suite *s = suite_create("golden");
    TCase *t = tcase_create("golden");
    tcase_add_loop_test(t, golden_store_opens_with_exact_contents, 0,
                        (int)NVERSIONS);
    tcase_add_test(t, golden_v1_consumer_config_gains_its_second_copy_on_update);
    suite_add_tcase(s, t);
    int failed = tu_run_suite(s);
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
