/*
 * test_powercut.c - simulated power loss at every I/O call of the
 * canonical workloads.
 *
 * Each workload runs on simfs (tests/simfs.h) over real files, sync
 * ALWAYS. For k = 1, 2, ... the k-th mutating I/O call is the last one
 * before the power goes; the disk then keeps what simfs's damage mode
 * says of everything not yet synced (all lost, all kept, a torn prefix, or
 * garbage), the store is reopened on plain posix and the model in
 * tests/powercut.h checks that nothing acknowledged was lost, nothing
 * removed came back, nothing was invented and sequences only rise. The
 * loop ends at the first k the workload completes without reaching.
 * Every k runs with every damage mode, each seeded with k.
 *
 * Compound failures: after a torn cut at each k, the power fails again at
 * every mutating call of the recovery (the open and close that follow),
 * and the store must still hold everything acknowledged before the first
 * cut.
 */
#include <check.h>
#include <unistd.h>

#include "consumer.h"
#include "jetstream.h"
#include "powercut.h"
#include "simfs.h"
#include "testutil_fs.h"

static char *base_dir;
static simfs *sim;

/* ---- the loop ---------------------------------------------------------- */

static void run_workload(pc_run *r, workload_fn w) {
    r->vfs = sim->name;
    if (pc_open(r) == 0) {
        w(r);
        (void)js_close(r->st); /* after the cut it fails; it must free */
    }
}

/* Runs w once with no cut (the number of cut points), then cuts at every
 * call in every damage mode. */
static void enumerate(const char *name, workload_fn w) {
    /* Debugging: PC_ONLY=<workload> PC_K=<cut> PC_MODE=<mode> runs one
     * (SIMFS_TRACE=1 lists the calls). */
    const char *only = getenv("PC_ONLY"), *ek = getenv("PC_K"),
               *em = getenv("PC_MODE");
    if (only && strcmp(only, name) != 0)
        return;
    char *dir = tu_path("%s/%s", base_dir, name);
    pc_run r;
    memset(&r, 0, sizeof r);
    r.dir = dir;
    r.clock = 1700000000000000000LL;
    sim_reset(sim);
    snprintf(where, sizeof where, "%s: no cut", name);
    run_workload(&r, w);
    uint64_t calls = sim_calls(sim);
    verify(&r);
    tu_rm_rf(dir);
    ck_assert_uint_gt(calls, 0);
    uint64_t damaged = 0;
    for (uint64_t k = 1; k <= calls; k++) {
        if ((ek && k != strtoull(ek, NULL, 10)) || pc_skip(k, calls))
            continue;
        for (int mode = 0; mode < SIM_NMODES; mode++) {
            if (em && mode != atoi(em))
                continue;
            memset(&r, 0, sizeof r);
            r.dir = dir;
            r.clock = 1700000000000000000LL;
            sim_reset(sim);
            sim_cut_at(sim, k);
            snprintf(where, sizeof where, "%s: cut at call %" PRIu64
                     " of %" PRIu64 ", damage mode %d", name, k, calls, mode);
            run_workload(&r, w);
            damaged += sim_power_fail(sim, mode, k);
            verify(&r);
            tu_rm_rf(dir);
        }
    }
    fprintf(stderr, "powercut %-14s %4" PRIu64 " cut points x %d modes, "
            "%" PRIu64 " files or directory changes damaged\n",
            name, calls, SIM_NMODES, damaged);
    free(dir);
}

/* The disk as a cut at call k in damage mode TORN leaves it (the workload
 * run again: it is deterministic); the model of what was acknowledged in
 * r. */
static void crash_at(pc_run *r, const char *dir, workload_fn w, uint64_t k) {
    memset(r, 0, sizeof *r);
    r->dir = dir;
    r->clock = 1700000000000000000LL;
    sim_reset(sim);
    sim_cut_at(sim, k);
    run_workload(r, w);
    sim_power_fail(sim, SIM_TORN, k);
}

/* Mutating calls of one recovery: open and close on the damaged disk. */
static uint64_t recovery_calls(pc_run *r) {
    js_store *st = NULL;
    sim_reset(sim);
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.vfs = sim->name;
    o.block_size = 4096;
    o.clock = pc_clock;
    o.clock_ctx = &r->clock;
    if (js_open(r->dir, &o, &st) == 0)
        (void)js_close(st);
    uint64_t n = sim_calls(sim);
    sim_reset(sim);
    return n;
}

/* Compound failures: the power fails again during the recovery from a
 * power cut, at every call of the recovery (itself torn), and the store
 * still opens and holds everything acknowledged before the first cut. */
static void enumerate_recovery(const char *name, workload_fn w) {
    const char *only = getenv("PC_ONLY");
    if (only && strcmp(only, name) != 0)
        return;
    char *dir = tu_path("%s/%s-recovery", base_dir, name);
    pc_run r;
    memset(&r, 0, sizeof r);
    r.dir = dir;
    r.clock = 1700000000000000000LL;
    sim_reset(sim);
    run_workload(&r, w);
    uint64_t calls = sim_calls(sim), runs = 0;
    tu_rm_rf(dir);
    for (uint64_t k = 1; k <= calls; k++) {
        if (pc_skip(k, calls))
            continue;
        crash_at(&r, dir, w, k);
        uint64_t rcalls = recovery_calls(&r);
        tu_rm_rf(dir);
        for (uint64_t j = 1; j <= rcalls; j++) {
            snprintf(where, sizeof where, "%s: cut at call %" PRIu64
                     ", then at recovery call %" PRIu64 " of %" PRIu64, name,
                     k, j, rcalls);
            crash_at(&r, dir, w, k);
            sim_cut_at(sim, j);
            js_store *st = NULL;
            js_open_opts o = JS_OPEN_OPTS_INIT;
            o.vfs = sim->name;
            o.block_size = 4096;
            o.clock = pc_clock;
            o.clock_ctx = &r.clock;
            if (js_open(dir, &o, &st) == 0)
                (void)js_close(st);
            sim_power_fail(sim, SIM_TORN, k * 1000 + j);
            verify(&r);
            tu_rm_rf(dir);
            runs++;
        }
    }
    fprintf(stderr, "powercut %-14s %4" PRIu64 " cuts during recovery\n",
            name, runs);
    free(dir);
}

#define WORKLOAD(name)                    \
    START_TEST(power_cut_during_##name) { \
        enumerate(#name, w_##name);       \
    }                                     \
    END_TEST
PC_WORKLOADS(WORKLOAD)

#define RECOVERY(name)                          \
    START_TEST(power_cut_during_recovery_##name) { \
        enumerate_recovery(#name, w_##name);     \
    }                                           \
    END_TEST
PC_WORKLOADS(RECOVERY)

static Suite *powercut_suite(void) {
    Suite *s = suite_create("powercut");
    TCase *tc = tcase_create("workloads");
    tcase_set_timeout(tc, 600);
#define ADD(name) tcase_add_test(tc, power_cut_during_##name);
    PC_WORKLOADS(ADD)
#define ADD_RECOVERY(name) \
    tcase_add_test(tc, power_cut_during_recovery_##name);
    PC_WORKLOADS(ADD_RECOVERY)
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    base_dir = pc_scratch_dir("test_powercut");
    if (!base_dir)
        return 1;
    char *grave = tu_path("%s/.grave", base_dir);
    sim = sim_new("simfs", grave);
    SRunner *sr = srunner_create(powercut_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed)
        fprintf(stderr, "powercut: last run: %s\n", where);
    sim_free(sim);
    free(grave);
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed ? 1 : 0;
}
