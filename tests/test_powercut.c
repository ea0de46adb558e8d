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
static uint64_t total_cuts, total_damaged;
/* The run in progress, printed when a check fails (run with CK_FORK=no
 * to see it). */
static char where[128];

#define VCHECK(cond, ...)                                                 \
    do {                                                                  \
        if (!(cond))                                                      \
            fprintf(stderr, "powercut: failed in %s\n", where);           \
        ck_assert_msg(cond, __VA_ARGS__);                                 \
    } while (0)

typedef void (*workload_fn)(pc_run *r);

/* ---- verification ------------------------------------------------------ */

/* Reopens through simfs with no cut armed: posix without syncs (nothing
 * here loses power; a real fsync per reopen would triple the run time). */
static js_store *open_plain(const char *dir, int64_t *clock) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.vfs = sim->name;
    o.block_size = 4096;
    o.clock = pc_clock;
    o.clock_ctx = clock;
    js_store *st = NULL;
    int rc = js_open(dir, &o, &st);
    VCHECK(rc == 0, "reopen after the cut: %s (%s)", js_strerror(rc),
                  js_errmsg());
    return st;
}

static int payload_id(const js_msg *msg) {
    size_t len = 0;
    const char *d = js_msg_data(msg, &len);
    int id = 0;
    VCHECK(len > 3 && sscanf(d, "id=%d;", &id) == 1 && id > 0 &&
                      id <= PC_MAXID,
                  "seq %" PRIu64 ": a message nobody wrote",
                  js_msg_seq(msg));
    return id;
}

static void check_intact(const js_msg *msg, int id) {
    char subj[16], want[512];
    size_t len = 0, n = pc_payload(id, want);
    pc_subject(id, subj);
    const void *d = js_msg_data(msg, &len);
    VCHECK(len == n && memcmp(d, want, n) == 0 &&
                      strcmp(js_msg_subject(msg), subj) == 0,
                  "seq %" PRIu64 " (id %d) is damaged", js_msg_seq(msg), id);
}

/* Walks the stream; present[seq] = 1 for each message found. */
static void verify_stream(pc_run *r, js_stream *s, uint8_t *present) {
    pc_model *m = &r->m;
    int last_id = 0;
    uint64_t seq = 1;
    js_msg *msg = NULL;
    int rc;
    while ((rc = js_msg_get_next(s, NULL, seq, &msg)) == 0) {
        uint64_t q = js_msg_seq(msg);
        int id = payload_id(msg);
        VCHECK(m->pub[id] != PC_NONE, "id %d was never published",
                      id);
        check_intact(msg, id);
        VCHECK(m->pub[id] != PC_ACKED || m->seq[id] == q,
                      "id %d acked at %" PRIu64 ", found at %" PRIu64, id,
                      m->seq[id], q);
        VCHECK(q >= PC_MAXSEQ || m->rm[q] != PC_ACKED,
                      "seq %" PRIu64 " was removed and came back", q);
        VCHECK(id > last_id, "id %d after id %d", id, last_id);
        last_id = id;
        if (q < PC_MAXSEQ)
            present[q] = 1;
        js_msg_free(msg);
        seq = q + 1;
    }
    ck_assert_int_eq(rc, JS_EMSG_NOT_FOUND);
    for (int id = 1; id <= m->next_id; id++) {
        if (m->pub[id] != PC_ACKED || m->rm[m->seq[id]] != PC_NONE)
            continue;
        VCHECK(present[m->seq[id]], "acked id %d (seq %" PRIu64
                      ") was lost", id, m->seq[id]);
    }
}

static void verify_sequence_rises(pc_run *r, js_store *st) {
    char data[512];
    size_t n = pc_payload(PC_MAXID, data);
    js_pub_ack a = JS_PUB_ACK_INIT;
    CHECK_RC(js_publish(st, "s.0", NULL, 0, data, n, &a), 0);
    VCHECK(a.seq > r->m.max_seq,
                  "new publish got seq %" PRIu64 ", but %" PRIu64
                  " was acknowledged",
                  a.seq, r->m.max_seq);
}

static void verify_consumer(pc_run *r, js_stream *s, const uint8_t *present) {
    pc_model *m = &r->m;
    js_consumer *c = NULL;
    int rc = js_consumer_lookup(s, "C", &c);
    if (m->cons_st != PC_ACKED && rc == JS_ECONSUMER_NOT_FOUND)
        return;
    VCHECK(rc == 0, "consumer: %s", js_strerror(rc));
    uint8_t got[PC_MAXSEQ] = {0};
    for (;;) {
        js_msg *msgs[32];
        size_t n = 0;
        rc = js_consumer_fetch(c, msgs, 32, NULL, &n);
        VCHECK(rc == 0 || rc == JS_ETIMEOUT, "fetch: %s",
                      js_strerror(rc));
        for (size_t i = 0; i < n; i++) {
            uint64_t q = js_msg_seq(msgs[i]);
            VCHECK(m->ack[q] != PC_ACKED,
                          "seq %" PRIu64 " redelivered after a durable ack",
                          q);
            got[q] = 1;
            CHECK_RC(js_msg_ack(msgs[i]), 0);
            js_msg_free(msgs[i]);
        }
        if (n == 0)
            break;
    }
    for (uint64_t q = 1; q < PC_MAXSEQ; q++)
        VCHECK(!present[q] || m->ack[q] != PC_NONE || got[q],
                      "seq %" PRIu64 " present, unacked, never delivered",
                      q);
    js_consumer_release(c);
}

/* The latest entry of key k is the last acked op or a MAYBE one after it;
 * no value an acked purge removed is in its history. */
static void verify_key(pc_run *r, js_kv *kv, int k) {
    pc_model *m = &r->m;
    char key[8];
    snprintf(key, sizeof key, "k%d", k);
    int last = -1, purge = -1;
    for (int i = 0; i < m->nkv[k]; i++)
        if (m->kv[k][i].st == PC_ACKED) {
            last = i;
            if (m->kv[k][i].kind == KV_PURGE)
                purge = i;
        }
    struct js_kv_entry *e = NULL;
    int rc = js_kv_get(kv, key, 0, &e);
    VCHECK(rc == 0 || rc == JS_EKEY_NOT_FOUND, "get %s: %s", key,
                  js_strerror(rc));
    int ok = 0;
    for (int i = last < 0 ? 0 : last; i < m->nkv[k] && !ok; i++) {
        const pc_kvop *op = &m->kv[k][i];
        if (i != last && op->st != PC_MAYBE)
            continue;
        if (op->kind != KV_PUT) {
            ok = rc == JS_EKEY_NOT_FOUND;
            continue;
        }
        char val[64];
        size_t len;
        pc_kv_value(op->val, val, &len);
        ok = rc == 0 && e->len == len && memcmp(e->value, val, len) == 0 &&
             (op->st != PC_ACKED || e->revision == op->rev);
    }
    if (last < 0 && rc == JS_EKEY_NOT_FOUND)
        ok = 1;
    VCHECK(ok, "key %s: latest entry is not the last acked op (%d)",
                  key, last);
    js_kv_entry_free(e);
    struct js_kv_entry **h = NULL;
    size_t n = 0;
    rc = js_kv_history(kv, key, &h, &n);
    VCHECK(rc == 0 || rc == JS_EKEY_NOT_FOUND, "history: %s",
                  js_strerror(rc));
    for (size_t j = 0; j < n; j++) {
        if (h[j]->op != JS_KV_OP_PUT)
            continue;
        int v = 0;
        ck_assert(sscanf(h[j]->value, "value-%d-", &v) == 1);
        for (int i = 0; i < purge; i++)
            VCHECK(m->kv[k][i].kind != KV_PUT || m->kv[k][i].val != v,
                          "key %s: value %d came back after a purge", key,
                          v);
    }
    js_kv_history_free(h, n);
}

static void verify_kv(pc_run *r, js_store *st) {
    js_kv *kv = NULL;
    int rc = js_kv_open(st, "kv", &kv);
    if (r->m.kv_st != PC_ACKED && rc == JS_ESTREAM_NOT_FOUND)
        return;
    VCHECK(rc == 0, "kv open: %s", js_strerror(rc));
    for (int k = 0; k < PC_KEYS; k++)
        verify_key(r, kv, k);
    js_kv_release(kv);
}

static void verify_catalogue(pc_run *r, js_store *st) {
    js_stream *t = NULL;
    int rc = js_stream_lookup(st, "T", &t);
    js_stream_release(t);
    if (r->m.t_del == PC_ACKED)
        VCHECK(rc == JS_ESTREAM_NOT_FOUND, "deleted T is back");
    else if (r->m.t_st == PC_ACKED && r->m.t_del == PC_NONE)
        VCHECK(rc == 0, "stream T lost: %s", js_strerror(rc));
}

static void verify(pc_run *r) {
    js_store *st = open_plain(r->dir, &r->clock);
    js_stream *s = NULL;
    int rc = js_stream_lookup(st, "S", &s);
    if (rc == 0) {
        uint8_t present[PC_MAXSEQ] = {0};
        verify_stream(r, s, present);
        verify_consumer(r, s, present);
        verify_sequence_rises(r, st);
        js_stream_release(s);
    } else {
        VCHECK(r->m.stream_st != PC_ACKED, "stream S lost: %s",
                      js_strerror(rc));
    }
    verify_kv(r, st);
    verify_catalogue(r, st);
    CHECK_RC(js_close(st), 0);
    sim_reset(sim);
}

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
    run_workload(&r, w);
    uint64_t calls = sim_calls(sim);
    verify(&r);
    tu_rm_rf(dir);
    ck_assert_uint_gt(calls, 0);
    uint64_t cuts = 0;
    for (uint64_t k = 1; k <= calls; k++) {
        if (ek && k != strtoull(ek, NULL, 10))
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
            total_damaged += sim_power_fail(sim, mode, k);
            verify(&r);
            tu_rm_rf(dir);
            cuts++;
        }
    }
    total_cuts += cuts;
    fprintf(stderr, "powercut %-12s %4" PRIu64 " cut points x %d modes\n",
            name, calls, SIM_NMODES);
    free(dir);
}

/* ---- workloads --------------------------------------------------------- */

static void w_publish(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0)
        return;
    for (int i = 0; i < 30; i++)
        pc_pub(r);
}

static void w_batch(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0)
        return;
    pc_pub_batch(r, 8);
    pc_pub_batch(r, 5);
    pc_pub_batch(r, 16);
}

static void w_delete(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0)
        return;
    for (int i = 0; i < 14; i++)
        pc_pub(r);
    pc_delete(r, 2, 0);
    pc_delete(r, 5, 0);
    pc_delete(r, 3, 1);
    pc_delete(r, 14, 1); /* the last: its sequence must not come back */
    pc_delete(r, 1, 0);  /* the first */
    for (int i = 0; i < 3; i++)
        pc_pub(r);
    pc_delete(r, 16, 0);
}

static void w_purge(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0)
        return;
    for (int i = 0; i < 18; i++)
        pc_pub(r);
    pc_purge(r, "s.1", 0, 0);
    pc_purge(r, NULL, 8, 0);
    pc_purge(r, NULL, 0, 3);
    for (int i = 0; i < 3; i++)
        pc_pub(r);
    pc_purge(r, NULL, 0, 0);
    pc_pub(r);
}

static void w_limits(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 5) != 0)
        return;
    for (int i = 0; i < 30; i++)
        pc_pub(r);
}

static void w_acks(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0 || pc_consumer(r) != 0)
        return;
    for (int i = 0; i < 16; i++)
        pc_pub(r);
    pc_fetch_ack(r, 4, 1); /* ack_sync */
    pc_fetch_ack(r, 4, 0); /* plain, made durable by the next fetch */
    pc_fetch_ack(r, 4, 2); /* nak: redelivered next */
    pc_fetch_ack(r, 8, 3); /* alternate */
    pc_flush(r);
    pc_fetch_ack(r, 4, 0);
}

static void w_workqueue(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_WORKQUEUE, 0) != 0 ||
        pc_consumer(r) != 0)
        return;
    for (int i = 0; i < 14; i++)
        pc_pub(r);
    pc_fetch_ack(r, 5, 1);
    pc_fetch_ack(r, 5, 0);
    pc_flush(r);
    pc_fetch_ack(r, 4, 3);
}

/* The state log is rewritten as a snapshot every few acks. */
static void w_consumer_state(pc_run *r) {
    uint64_t saved = jsi_consumer_log_min_rewrite;
    jsi_consumer_log_min_rewrite = 256;
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) == 0 && pc_consumer(r) == 0) {
        for (int i = 0; i < 24; i++)
            pc_pub(r);
        for (int i = 0; i < 6; i++)
            pc_fetch_ack(r, 4, i % 2 ? 1 : 3);
    }
    jsi_consumer_log_min_rewrite = saved;
}

static void w_catalogue(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0)
        return;
    pc_pub(r);
    if (pc_stream_t(r, 0) != 0 || pc_consumer(r) != 0 ||
        pc_kv_bucket(r, 1) != 0)
        return;
    pc_pub(r);
    pc_stream_t(r, 1);
    pc_pub(r);
}

static void w_kv(pc_run *r) {
    if (pc_kv_bucket(r, 3) != 0)
        return;
    for (int k = 0; k < PC_KEYS; k++)
        pc_kv_op(r, k, KV_PUT, 0);
    pc_kv_op(r, 0, KV_PUT, 1);
    pc_kv_op(r, 1, KV_DEL, 0);
    pc_kv_op(r, 2, KV_PURGE, 0);
    pc_kv_op(r, 0, KV_PUT, 0);
    pc_kv_op(r, 0, KV_PUT, 1);
    pc_kv_op(r, 3, KV_DEL, 1);
    pc_kv_op(r, 0, KV_PURGE, 1);
    pc_kv_op(r, 1, KV_PUT, 1);
    pc_kv_op(r, 2, KV_PUT, 0);
}

/* Reopens in the middle: index checkpoints written at close, then
 * removals and publishes past them. */
static void w_reopen(pc_run *r) {
    if (pc_stream(r, JS_RETENTION_LIMITS, 0) != 0 || pc_consumer(r) != 0)
        return;
    for (int i = 0; i < 12; i++)
        pc_pub(r);
    pc_fetch_ack(r, 3, 0);
    if (pc_reopen(r) != 0)
        return;
    pc_delete(r, 4, 0);
    pc_delete(r, 12, 0);
    pc_fetch_ack(r, 3, 1);
    pc_pub(r);
    if (pc_reopen(r) != 0)
        return;
    pc_purge(r, NULL, 6, 0);
    pc_pub(r);
}

#define WORKLOAD(name)                       \
    START_TEST(power_cut_during_##name) {    \
        enumerate(#name, w_##name);          \
    }                                        \
    END_TEST

WORKLOAD(publish)
WORKLOAD(batch)
WORKLOAD(delete)
WORKLOAD(purge)
WORKLOAD(limits)
WORKLOAD(acks)
WORKLOAD(workqueue)
WORKLOAD(consumer_state)
WORKLOAD(catalogue)
WORKLOAD(kv)
WORKLOAD(reopen)

static Suite *powercut_suite(void) {
    Suite *s = suite_create("powercut");
    TCase *tc = tcase_create("workloads");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, power_cut_during_publish);
    tcase_add_test(tc, power_cut_during_batch);
    tcase_add_test(tc, power_cut_during_delete);
    tcase_add_test(tc, power_cut_during_purge);
    tcase_add_test(tc, power_cut_during_limits);
    tcase_add_test(tc, power_cut_during_acks);
    tcase_add_test(tc, power_cut_during_workqueue);
    tcase_add_test(tc, power_cut_during_consumer_state);
    tcase_add_test(tc, power_cut_during_catalogue);
    tcase_add_test(tc, power_cut_during_kv);
    tcase_add_test(tc, power_cut_during_reopen);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    /* RAM-backed when there is one: the runs make and remove thousands of
     * small files, and nothing here needs a real disk (simfs never syncs). */
    base_dir = tu_path("%s/test_powercut.XXXXXX",
                       access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(base_dir)) {
        perror("mkdtemp");
        return 1;
    }
    char *grave = tu_path("%s/.grave", base_dir);
    sim = sim_new("simfs", grave);
    SRunner *sr = srunner_create(powercut_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed)
        fprintf(stderr, "powercut: last run: %s\n", where);
    fprintf(stderr, "powercut: %" PRIu64 " power cuts, %" PRIu64
            " files or directory changes damaged\n",
            total_cuts, total_damaged);
    sim_free(sim);
    free(grave);
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed ? 1 : 0;
}
