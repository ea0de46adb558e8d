/*
 * kv_fixture.h - the fixture the KV test programs share: a store on real
 * files with a fake clock (fake_now, starting at T0) and the bucket "cfg"
 * with history 5, fresh for every test; reopen() closes and opens both.
 * kv_main() runs a program's tests with it, in a scratch directory.
 */
#ifndef JS_KV_FIXTURE_H
#define JS_KV_FIXTURE_H

#include <stdio.h>
#include <unistd.h>

#include "check_rc.h"
#include "testutil.h"
#include "runner.h"

#define SEC ((int64_t)1000000000)
#define T0 ((int64_t)1700000000 * SEC)

static char *base_dir;
static char store_path[1024];
static int64_t fake_now;
static js_store *S;
static js_kv *KV; /* bucket "cfg", history 5 */

static void open_store(void) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.sync = JS_SYNC_NONE;
    o.clock = tu_clock;
    o.clock_ctx = &fake_now;
    CHECK_RC(js_open(store_path, &o, &S), 0);
}

static void setup(void) {
    static unsigned n;
    tu_clock_set(&fake_now, T0);
    snprintf(store_path, sizeof store_path, "%s/kv-%ld-%u", base_dir,
             (long)getpid(), n++);
    open_store();
    js_kv_config c = JS_KV_CONFIG_INIT;
    c.bucket = "cfg";
    c.history = 5;
    CHECK_RC(js_kv_create(S, &c, &KV), 0);
}

static void teardown(void) {
    js_kv_release(KV);
    KV = NULL;
    if (S)
        CHECK_RC(js_close(S), 0);
    S = NULL;
}

/* Close the store (real files, the default backend) and open it again. */
static void reopen(void) {
    js_kv_release(KV);
    CHECK_RC(js_close(S), 0);
    open_store();
    CHECK_RC(js_kv_open(S, "cfg", &KV), 0);
}

/* Run the tests add() puts in the suite and case `name`, with this
 * fixture, under a fresh /tmp/test_<name>.XXXXXX; main()'s exit status. */
static int kv_main(const char *name, int timeout, void (*add)(TCase *tc)) {
    char tag[64];
    snprintf(tag, sizeof tag, "test_%s", name);
    base_dir = tu_mkdtemp(tag);
    Suite *s = suite_create(name);
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, timeout);
    add(tc);
    suite_add_tcase(s, tc);
    int failed = tu_run_suite(s);
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed != 0;
}

#endif
