/*
 * test_iofault.c - I/O errors and allocation failures at every call of the
 * canonical workloads.
 *
 * For each workload of tests/powercut.h and each kind of call (read,
 * write, sync, rename, truncate, open, remove, mkdir, list), simfs fails
 * the k-th such call with EIO (and ENOSPC where a disk can be full), once
 * or for ever, for every k the workload reaches. Each run must end (no
 * crash, no hang), every call must return a code (the model counts a
 * failed call as MAYBE), and after a failed sync nothing more may be
 * acknowledged until the store is reopened: no ack after a failed fsync.
 * The store is then closed, reopened with the faults gone and checked
 * against the model (nothing acknowledged lost, nothing removed back,
 * sequences rising).
 *
 * The allocator hook does the same for every allocation of each
 * workload: the n-th allocation fails, once or for ever.
 */
#include <check.h>
#include <dirent.h>
#include <unistd.h>

#include "jetstream.h"
#include "powercut.h"
#include "simfs.h"
#include "testutil_fs.h"
#include "util.h"

static char *base_dir;
static simfs *sim;

typedef struct fault_kind {
    const char *name;
    unsigned classes;
    int rc;
} fault_kind;

static const fault_kind kinds[] = {
    {"read", SIM_F_READ, JS_EIO},          {"write", SIM_F_WRITE, JS_EIO},
    {"write-full", SIM_F_WRITE, JS_ENOSPC}, {"sync", SIM_F_SYNC, JS_EIO},
    {"rename", SIM_F_RENAME, JS_EIO},       {"truncate", SIM_F_TRUNCATE, JS_EIO},
    {"truncate-full", SIM_F_TRUNCATE, JS_ENOSPC},
    {"open", SIM_F_OPEN, JS_EIO},           {"open-full", SIM_F_OPEN, JS_ENOSPC},
    {"remove", SIM_F_REMOVE, JS_EIO},       {"mkdir", SIM_F_MKDIR, JS_EIO},
    {"list", SIM_F_LIST, JS_EIO},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static uint64_t sim_faults(void) {
    return sim->faults;
}

static void fresh(pc_run *r, const char *dir) {
    memset(r, 0, sizeof *r);
    r->dir = dir;
    r->vfs = sim->name;
    r->clock = 1700000000000000000LL;
}

/* After a failed sync nothing may be acknowledged: a publish and a KV put
 * on a store whose sync failed must fail too. Only when the failed sync
 * is known (the workload saw it) and the store is still open. */
static void check_fail_stop(pc_run *r) {
    int rc = pc_pub(r);
    VCHECK(rc != 0, "a publish was acknowledged after a failed sync");
    if (r->m.kv_st == PC_ACKED) {
        rc = pc_kv_op(r, 0, KV_PUT, 0);
        VCHECK(rc != 0, "a KV put was acknowledged after a failed sync");
    }
}

/* One run with the fault armed; returns 1 if the fault was reached. */
static int run_faulted(pc_run *r, workload_fn w, const fault_kind *fk,
                       uint64_t k, int forever) {
    sim_reset(sim);
    sim_fault(sim, fk->classes, k, fk->rc, forever);
    int rc = pc_open(r);
    if (rc == 0) {
        w(r);
        /* Only a failure since the store was last opened counts: a
         * workload that reopens starts afresh. */
        if (fk->classes == SIM_F_SYNC && sim->faults > r->faults_at_open &&
            r->st)
            check_fail_stop(r);
        sim_fault(sim, 0, 0, 0, 0);
        (void)js_close(r->st);
    }
    int hit = sim->faults != 0;
    sim_reset(sim); /* the page cache keeps everything: no power lost */
    return hit;
}

static uint64_t count_calls(pc_run *r, workload_fn w, unsigned classes) {
    sim_reset(sim);
    /* Armed far away so only the counting happens. */
    sim_fault(sim, classes, UINT64_MAX, JS_EIO, 0);
    if (pc_open(r) == 0) {
        w(r);
        (void)js_close(r->st);
    }
    uint64_t n = sim_fault_calls(sim);
    sim_reset(sim);
    return n;
}

static void enumerate_faults(const char *name, workload_fn w) {
    const char *only = getenv("PC_ONLY");
    if (only && strcmp(only, name) != 0)
        return;
    char *dir = tu_path("%s/%s", base_dir, name);
    pc_run r;
    uint64_t runs = 0, hits = 0;
    /* Debugging: PC_ONLY=<workload> PC_KIND=<kind> PC_K=<k> runs one kind
     * (or one run; SIMFS_TRACE=1 shows the calls and the fault). */
    const char *ekind = getenv("PC_KIND"), *ek = getenv("PC_K");
    for (size_t i = 0; i < NKINDS; i++) {
        if (ekind && strcmp(ekind, kinds[i].name) != 0)
            continue;
        fresh(&r, dir);
        uint64_t calls = count_calls(&r, w, kinds[i].classes);
        tu_rm_rf(dir);
        for (uint64_t k = 1; k <= calls; k++) {
            if ((ek && k != strtoull(ek, NULL, 10)) || pc_skip(k, calls))
                continue;
            for (int forever = 0; forever < 2; forever++) {
                snprintf(where, sizeof where,
                         "%s: %s fault at call %" PRIu64 " of %" PRIu64
                         "%s", name, kinds[i].name, k, calls,
                         forever ? ", for ever" : "");
                fresh(&r, dir);
                hits += (uint64_t)run_faulted(&r, w, &kinds[i], k, forever);
                verify(&r);
                sim_reset(sim);
                tu_rm_rf(dir);
                runs++;
            }
        }
    }
    fprintf(stderr, "iofault %-14s %5" PRIu64 " runs, %" PRIu64
            " reached their fault\n", name, runs, hits);
    free(dir);
}

/* Every allocation of the workload fails in turn, once and for ever. */
static void enumerate_allocs(const char *name, workload_fn w) {
    const char *only = getenv("PC_ONLY");
    if (only && strcmp(only, name) != 0)
        return;
    char *dir = tu_path("%s/%s", base_dir, name);
    pc_run r;
    fresh(&r, dir);
    sim_reset(sim);
    jsi_alloc_fail_at(UINT64_MAX, 0);
    if (pc_open(&r) == 0) {
        w(&r);
        (void)js_close(r.st);
    }
    uint64_t allocs = jsi_alloc_seen();
    jsi_alloc_fail_at(0, 0);
    tu_rm_rf(dir);
    const char *ek = getenv("PC_K"), *ef = getenv("PC_FOREVER");
    for (uint64_t n = 1; n <= allocs; n++) {
        if ((ek && n != strtoull(ek, NULL, 10)) || pc_skip(n, allocs))
            continue;
        for (int forever = 0; forever < 2; forever++) {
            if (ef && forever != atoi(ef))
                continue;
            snprintf(where, sizeof where,
                     "%s: allocation %" PRIu64 " of %" PRIu64 " fails%s",
                     name, n, allocs, forever ? ", for ever" : "");
            fresh(&r, dir);
            sim_reset(sim);
            jsi_alloc_fail_at(n, forever);
            if (pc_open(&r) == 0) {
                w(&r);
                (void)js_close(r.st);
            }
            jsi_alloc_fail_at(0, 0);
            verify(&r);
            sim_reset(sim);
            tu_rm_rf(dir);
        }
    }
    fprintf(stderr, "allocfail %-12s %5" PRIu64 " allocations x 2\n", name,
            allocs);
    free(dir);
}

#define WORKLOAD(name)                              \
    START_TEST(io_faults_during_##name) {           \
        enumerate_faults(#name, w_##name);          \
    }                                               \
    END_TEST                                        \
    START_TEST(alloc_failures_during_##name) {      \
        enumerate_allocs(#name, w_##name);          \
    }                                               \
    END_TEST

PC_WORKLOADS(WORKLOAD)

/* The one entry of dir whose name is 16 characters long plus suffix,
 * as a path. */
static char *find_entry(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char *found = NULL;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (strlen(e->d_name) == 16 + strlen(suffix) &&
            strcmp(e->d_name + 16, suffix) == 0) {
            ck_assert_msg(!found, "%s: two entries end in \"%s\"", dir,
                          suffix);
            found = tu_path("%s/%s", dir, e->d_name);
        }
    closedir(d);
    ck_assert_msg(found != NULL, "%s: no entry ends in \"%s\"", dir, suffix);
    return found;
}

/* Open dir with every write failing: it must fail with the write's
 * error, and the files stay as they were. */
static void open_with_writes_failing(const char *dir, const char *what) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    js_store *st = NULL;
    o.vfs = sim->name;
    sim_fault(sim, SIM_F_WRITE, 1, JS_EIO, 1);
    int rc = js_open(dir, &o, &st);
    ck_assert_msg(rc == JS_EIO, "%s: open: %s (%s)", what, js_strerror(rc),
                  js_errmsg());
    ck_assert_uint_gt(sim->faults, 0);
    sim_fault(sim, 0, 0, 0, 0);
    sim_reset(sim);
}

/* Damage the file at path (one bit of byte 12) and return what it holds
 * then. */
static uint8_t *damage(const char *path, size_t *len) {
    uint8_t *bad;
    ck_assert_int_eq(tu_flip_byte(path, 12, 0x04), 0);
    ck_assert_int_eq(tu_read_file(path, &bad, len), 0);
    return bad;
}

/* The redundant copies an open repairs (a stream's own definition, a
 * consumer's second config copy): a rewrite that fails fails the open
 * with the write's error, and the next healthy open repairs them with
 * nothing lost. */
START_TEST(failed_repairs_fail_the_open_and_the_next_open_repairs) {
    char *dir = tu_path("%s/repair", base_dir);
    js_open_opts o = JS_OPEN_OPTS_INIT;
    js_stream_config sc = JS_STREAM_CONFIG_INIT;
    js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
    js_store *st = NULL;
    js_stream *s = NULL;
    js_consumer *c = NULL;
    js_msg *m = NULL;
    o.vfs = sim->name;
    sc.name = "R";
    cc.durable_name = "D";
    sim_reset(sim);
    ck_assert_int_eq(js_open(dir, &o, &st), 0);
    ck_assert_int_eq(js_stream_add(st, &sc, &s), 0);
    ck_assert_int_eq(js_consumer_add(s, &cc, &c), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(js_publish(st, "R", NULL, 0, "x", 1, NULL), 0);
    js_consumer_release(c);
    js_stream_release(s);
    ck_assert_int_eq(js_close(st), 0);

    char *sdirs = tu_path("%s/streams", dir);
    char *sdir = find_entry(sdirs, "");
    char *sdef = tu_path("%s/config", sdir);
    char *cdir = tu_path("%s/consumers", sdir);
    char *ccfg = find_entry(cdir, ".cfg2");
    uint8_t *good_sdef, *good_ccfg, *bad_sdef, *bad_ccfg;
    size_t sdef_len, ccfg_len;
    ck_assert_int_eq(tu_read_file(sdef, &good_sdef, &sdef_len), 0);
    ck_assert_int_eq(tu_read_file(ccfg, &good_ccfg, &ccfg_len), 0);
    bad_sdef = damage(sdef, &sdef_len);
    open_with_writes_failing(dir, "stream definition damaged");
    ck_assert(tu_file_equals(sdef, bad_sdef, sdef_len));
    ck_assert(tu_file_equals(ccfg, good_ccfg, ccfg_len));
    /* With only the consumer's copy damaged (the definition restored). */
    ck_assert_int_eq(tu_flip_byte(sdef, 12, 0x04), 0);
    bad_ccfg = damage(ccfg, &ccfg_len);
    open_with_writes_failing(dir, "consumer config copy B damaged");
    ck_assert(tu_file_equals(sdef, good_sdef, sdef_len));
    ck_assert(tu_file_equals(ccfg, bad_ccfg, ccfg_len));

    /* Both damaged, then a healthy open: both repaired, nothing lost. */
    ck_assert_int_eq(tu_flip_byte(sdef, 12, 0x04), 0);
    ck_assert_int_eq(js_open(dir, &o, &st), 0);
    ck_assert_int_eq(js_stream_lookup(st, "R", &s), 0);
    ck_assert_int_eq(js_consumer_lookup(s, "D", &c), 0);
    ck_assert_int_eq(js_msg_get(s, 3, &m), 0);
    size_t len = 0;
    ck_assert_int_eq(memcmp(js_msg_data(m, &len), "x", 1), 0);
    ck_assert_uint_eq(len, 1);
    js_msg_free(m);
    ck_assert_int_eq(js_publish(st, "R", NULL, 0, "x", 1, NULL), 0);
    js_consumer_release(c);
    js_stream_release(s);
    ck_assert_int_eq(js_close(st), 0);
    ck_assert_msg(tu_file_equals(sdef, good_sdef, sdef_len),
                  "stream definition not repaired");
    ck_assert_msg(tu_file_equals(ccfg, good_ccfg, ccfg_len),
                  "consumer config copy B not repaired");
    sim_reset(sim);
    free(good_sdef);
    free(good_ccfg);
    free(bad_sdef);
    free(bad_ccfg);
    free(ccfg);
    free(cdir);
    free(sdef);
    free(sdir);
    free(sdirs);
    free(dir);
}
END_TEST

#define ADD(name)                                  \
    tcase_add_test(io, io_faults_during_##name);   \
    tcase_add_test(al, alloc_failures_during_##name);

static Suite *iofault_suite(void) {
    Suite *s = suite_create("iofault");
    TCase *io = tcase_create("io");
    TCase *al = tcase_create("alloc");
    tcase_set_timeout(io, 900);
    tcase_set_timeout(al, 900);
    PC_WORKLOADS(ADD)
    tcase_add_test(io,
                   failed_repairs_fail_the_open_and_the_next_open_repairs);
    suite_add_tcase(s, io);
    suite_add_tcase(s, al);
    return s;
}

int main(void) {
    base_dir = pc_scratch_dir("test_iofault");
    if (!base_dir)
        return 1;
    char *grave = tu_path("%s/.grave", base_dir);
    sim = sim_new("simfs", grave);
    pc_faults = sim_faults;
    SRunner *sr = srunner_create(iofault_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed)
        fprintf(stderr, "iofault: last run: %s\n", where);
    sim_free(sim);
    free(grave);
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed ? 1 : 0;
}
