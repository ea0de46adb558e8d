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

typedef void (*workload_fn)(pc_run *r);

/* ---- verification ------------------------------------------------------ */

static js_store *open_plain(const char *dir, int64_t *clock) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.block_size = 4096;
    o.clock = pc_clock;
    o.clock_ctx = clock;
    js_store *st = NULL;
    int rc = js_open(dir, &o, &st);
    ck_assert_msg(rc == 0, "reopen after the cut: %s (%s)", js_strerror(rc),
                  js_errmsg());
    return st;
}

static int payload_id(const js_msg *msg) {
    size_t len = 0;
    const char *d = js_msg_data(msg, &len);
    int id = 0;
    ck_assert_msg(len > 3 && sscanf(d, "id=%d;", &id) == 1 && id > 0 &&
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
    ck_assert_msg(len == n && memcmp(d, want, n) == 0 &&
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
        ck_assert_msg(m->pub[id] != PC_NONE, "id %d was never published",
                      id);
        check_intact(msg, id);
        ck_assert_msg(m->pub[id] != PC_ACKED || m->seq[id] == q,
                      "id %d acked at %" PRIu64 ", found at %" PRIu64, id,
                      m->seq[id], q);
        ck_assert_msg(q >= PC_MAXSEQ || m->rm[q] != PC_ACKED,
                      "seq %" PRIu64 " was removed and came back", q);
        ck_assert_msg(id > last_id, "id %d after id %d", id, last_id);
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
        ck_assert_msg(present[m->seq[id]], "acked id %d (seq %" PRIu64
                      ") was lost", id, m->seq[id]);
    }
}

static void verify_sequence_rises(pc_run *r, js_store *st) {
    char data[512];
    size_t n = pc_payload(PC_MAXID, data);
    js_pub_ack a = JS_PUB_ACK_INIT;
    CHECK_RC(js_publish(st, "s.0", NULL, 0, data, n, &a), 0);
    ck_assert_msg(a.seq > r->m.max_seq,
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
    ck_assert_msg(rc == 0, "consumer: %s", js_strerror(rc));
    uint8_t got[PC_MAXSEQ] = {0};
    for (;;) {
        js_msg *msgs[32];
        size_t n = 0;
        rc = js_consumer_fetch(c, msgs, 32, NULL, &n);
        ck_assert_msg(rc == 0 || rc == JS_ETIMEOUT, "fetch: %s",
                      js_strerror(rc));
        for (size_t i = 0; i < n; i++) {
            uint64_t q = js_msg_seq(msgs[i]);
            ck_assert_msg(m->ack[q] != PC_ACKED,
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
        ck_assert_msg(!present[q] || m->ack[q] != PC_NONE || got[q],
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
    ck_assert_msg(rc == 0 || rc == JS_EKEY_NOT_FOUND, "get %s: %s", key,
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
    ck_assert_msg(ok, "key %s: latest entry is not the last acked op (%d)",
                  key, last);
    js_kv_entry_free(e);
    struct js_kv_entry **h = NULL;
    size_t n = 0;
    rc = js_kv_history(kv, key, &h, &n);
    ck_assert_msg(rc == 0 || rc == JS_EKEY_NOT_FOUND, "history: %s",
                  js_strerror(rc));
    for (size_t j = 0; j < n; j++) {
        if (h[j]->op != JS_KV_OP_PUT)
            continue;
        int v = 0;
        ck_assert(sscanf(h[j]->value, "value-%d-", &v) == 1);
        for (int i = 0; i < purge; i++)
            ck_assert_msg(m->kv[k][i].kind != KV_PUT || m->kv[k][i].val != v,
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
    ck_assert_msg(rc == 0, "kv open: %s", js_strerror(rc));
    for (int k = 0; k < PC_KEYS; k++)
        verify_key(r, kv, k);
    js_kv_release(kv);
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
        ck_assert_msg(r->m.stream_st != PC_ACKED, "stream S lost: %s",
                      js_strerror(rc));
    }
    verify_kv(r, st);
    CHECK_RC(js_close(st), 0);
}

/* ---- the loop ---------------------------------------------------------- */

static void run_workload(pc_run *r, workload_fn w) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.vfs = sim->name;
    o.block_size = 4096;
    o.clock = pc_clock;
    o.clock_ctx = &r->clock;
    int rc = js_open(r->dir, &o, &r->st);
    if (rc == 0) {
        w(r);
        (void)js_close(r->st); /* after the cut it fails; it must free */
    }
}

/* Runs w once with no cut (the number of cut points), then cuts at every
 * call in every damage mode. */
static void enumerate(const char *name, workload_fn w) {
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
        for (int mode = 0; mode < SIM_NMODES; mode++) {
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

START_TEST(power_cut_during_publish) {
    enumerate("publish", w_publish);
}
END_TEST

static Suite *powercut_suite(void) {
    Suite *s = suite_create("powercut");
    TCase *tc = tcase_create("workloads");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, power_cut_during_publish);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    base_dir = tu_mkdtemp("test_powercut");
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
