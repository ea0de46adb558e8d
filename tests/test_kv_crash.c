/*
 * test_kv_crash.c - a key/value bucket across real process crashes. A
 * child opens the store with JS_SYNC_ALWAYS and puts, deletes and purges
 * keys, telling the parent over a pipe what it is about to do and what
 * returned. The parent SIGKILLs it at a seeded random moment, and the next
 * child goes on from what is left. After every kill the parent reopens
 * the bucket and checks, per key:
 *
 *   - its latest entry is the last acknowledged operation, or the one that
 *     was in flight at the kill;
 *   - after an acknowledged purge, no revision older than the purge comes
 *     back (nats-server #8505 lost this after a crash).
 *
 * Every other reopen first deletes the index checkpoint, so recovery
 * rebuilds from the blocks alone (the path where #8505 revived values).
 * The second test gives the bucket a ttl on a fake clock that every
 * operation moves forward (by STEP): an entry older than the ttl at the reopen must
 * stay gone, whatever the crash left unlogged.
 *
 * KV_CRASH_ITERS sets the number of children per test (default 100).
 */
#include <check.h>

#include <glob.h>

#include "jetstream.h"
#include "testutil_fs.h"
#include "crashutil.h"
#include "runner.h"

#define KEYS 8
#define CHILD_SECONDS 3
#define MS 1000000LL
#define STEP (5 * MS) /* fake time each operation takes */
#define TTL (100 * MS) /* the shortest KV ttl: 20 operations */
#define T0 (1700000000LL * 1000 * MS)

static char *base_dir;
static int with_ttl;

/* Each process's clock is its own int64_t, moved by that process only. */
static int64_t fake_clock(void *ctx) { return *(const int64_t *)ctx; }
 /* the test running: 1 for the ttl bucket */

enum { R_OPEN = 1, R_BEGIN, R_DONE };
enum { OP_PUT = 1, OP_DEL, OP_PURGE };

typedef struct rec {
    uint32_t type, key, op, pad;
    uint64_t value; /* the put's counter */
    uint64_t rev;   /* R_DONE of a put: its revision */
    int64_t ts;     /* R_BEGIN: the fake clock the operation runs at */
} rec;

static void put_rec(int fd, rec r) {
    if (tu_write_all(fd, &r, sizeof r) != 0)
        _exit(3);
}

static int open_bucket(const char *dir, int64_t *clock, js_store **st,
                       js_kv **kv) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    js_kv_config c = JS_KV_CONFIG_INIT;
    o.sync = JS_SYNC_ALWAYS;
    o.block_size = 8192;
    o.clock = fake_clock;
    o.clock_ctx = clock;
    c.bucket = "crash";
    c.history = 4;
    c.ttl = with_ttl ? TTL : 0;
    int rc = js_open(dir, &o, st);
    if (rc == 0 && (rc = js_kv_create(*st, &c, kv)) != 0)
        js_close(*st);
    return rc;
}

static void child_main(const char *dir, int fd, uint64_t seed,
                       uint64_t counter, int64_t now) {
    js_store *st;
    js_kv *kv;
    uint64_t rng = seed;
    alarm(CHILD_SECONDS);
    if (open_bucket(dir, &now, &st, &kv) != 0)
        _exit(2);
    put_rec(fd, (rec){R_OPEN, 0, 0, 0, 0, 0, 0});
    for (;;) {
        uint32_t key = (uint32_t)(tu_rng(&rng) % KEYS);
        unsigned r = (unsigned)(tu_rng(&rng) % 10);
        uint32_t op = r < 7 ? OP_PUT : r < 9 ? OP_DEL : OP_PURGE;
        char name[16], val[32];
        uint64_t rev = 0;
        int rc;
        snprintf(name, sizeof name, "k%u", key);
        snprintf(val, sizeof val, "v%" PRIu64, ++counter);
        now += STEP;
        put_rec(fd, (rec){R_BEGIN, key, op, 0, counter, 0, now});
        if (op == OP_PUT)
            rc = js_kv_put(kv, name, val, strlen(val), &rev);
        else if (op == OP_DEL)
            rc = js_kv_delete_key(kv, name, 0);
        else
            rc = js_kv_purge_key(kv, name, 0);
        if (rc != 0)
            _exit(4);
        put_rec(fd, (rec){R_DONE, key, op, 0, counter, rev, 0});
    }
}

typedef struct keystate {
    uint32_t op;          /* last acknowledged operation (0: none) */
    uint64_t value;       /* its counter */
    int64_t ts;           /* its clock */
    uint32_t fl_op;       /* in flight at the kill (0: none) */
    uint64_t fl_value;
    int64_t fl_ts;
    uint64_t revs[64];    /* acked puts since the last acked purge */
    size_t nrevs;
    uint64_t gone[64];    /* revisions an acked purge removed: never back */
    size_t ngone;
} keystate;

typedef struct model {
    keystate k[KEYS];
    uint64_t counter, kills, ops, rebuilds;
    uint64_t expired;     /* keys checked gone because the ttl passed */
    int64_t now;          /* the fake clock: the last operation's */
    char err[256];
} model;

static void apply(model *m, const rec *r) {
    keystate *k = &m->k[r->key % KEYS];
    if (r->value > m->counter)
        m->counter = r->value;
    if (r->type == R_BEGIN) {
        k->fl_op = r->op;
        k->fl_value = r->value;
        k->fl_ts = r->ts;
        m->now = r->ts;
    } else if (r->type == R_DONE) {
        m->ops++;
        k->op = r->op;
        k->value = r->value;
        k->ts = k->fl_ts;
        k->fl_op = 0;
        if (r->op == OP_PUT && k->nrevs < 64)
            k->revs[k->nrevs++] = r->rev;
        if (r->op == OP_PURGE) {
            for (size_t i = 0; i < k->nrevs; i++)
                k->gone[k->ngone++ % 64] = k->revs[i];
            k->nrevs = 0;
        }
    }
}

/* Does the key's latest entry show operation op with value v, stored at
 * ts? One the ttl has expired shows as no value. */
static int shows(const model *m, const struct js_kv_entry *e, int rc,
                 uint32_t op, uint64_t v, int64_t ts) {
    char want[32];
    if (op == 0 || op == OP_DEL || op == OP_PURGE ||
        (with_ttl && ts < m->now - TTL))
        return rc == JS_EKEY_NOT_FOUND;
    snprintf(want, sizeof want, "v%" PRIu64, v);
    return rc == 0 && e->len == strlen(want) &&
           memcmp(e->value, want, e->len) == 0;
}

/* Recovery from the blocks alone, as after a crash before any checkpoint. */
static void drop_checkpoints(model *m, const char *dir) {
    char *pat = tu_path("%s/streams/*/index", dir);
    glob_t g;
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            ck_assert_int_eq(unlink(g.gl_pathv[i]), 0);
        m->rebuilds += g.gl_pathc != 0;
        globfree(&g);
    }
    free(pat);
}

static void verify(model *m, const char *dir) {
    js_store *st;
    js_kv *kv;
    int64_t now = m->now;
    ck_assert_int_eq(open_bucket(dir, &now, &st, &kv), 0);
    for (uint32_t i = 0; i < KEYS && !m->err[0]; i++) {
        keystate *k = &m->k[i];
        char name[16];
        struct js_kv_entry *e = NULL;
        snprintf(name, sizeof name, "k%u", i);
        int rc = js_kv_get(kv, name, 0, &e);
        m->expired += with_ttl && k->op == OP_PUT && !k->fl_op &&
                      k->ts < m->now - TTL;
        int ok = shows(m, e, rc, k->op, k->value, k->ts) ||
                 (k->fl_op &&
                  shows(m, e, rc, k->fl_op, k->fl_value, k->fl_ts));
        if (!ok)
            snprintf(m->err, sizeof m->err,
                     "key %s: latest is not the last acked op (%u, v%" PRIu64
                     ") nor the one in flight (%u, v%" PRIu64 "): rc %d",
                     name, k->op, k->value, k->fl_op, k->fl_value, rc);
        js_kv_entry_free(e);
        /* What an acknowledged purge removed never comes back. */
        for (size_t j = 0; j < k->ngone && j < 64 && !m->err[0]; j++) {
            e = NULL;
            rc = js_kv_get(kv, name, k->gone[j], &e);
            js_kv_entry_free(e);
            if (rc == 0)
                snprintf(m->err, sizeof m->err,
                         "key %s: revision %" PRIu64 " came back after its "
                         "purge", name, k->gone[j]);
        }
        /* What was in flight is settled now: whichever it was stays. */
        if (k->fl_op) {
            struct js_kv_entry *f = NULL;
            rc = js_kv_get(kv, name, 0, &f);
            if (shows(m, f, rc, k->fl_op, k->fl_value, k->fl_ts) &&
                !shows(m, f, rc, k->op, k->value, k->ts)) {
                k->op = k->fl_op;
                k->value = k->fl_value;
                k->ts = k->fl_ts;
            }
            js_kv_entry_free(f);
            k->fl_op = 0;
        }
    }
    js_kv_release(kv);
    ck_assert_int_eq(js_close(st), 0);
}

typedef struct child_args {
    model *m;
    const char *dir;
    uint64_t seed;
} child_args;

static void child_run(void *ctx, int fd) {
    child_args *a = ctx;
    child_main(a->dir, fd, a->seed, a->m->counter + 1000, a->m->now);
}

static void child_rec(void *ctx, const void *r) {
    apply(((child_args *)ctx)->m, r);
}

/* One child, killed delay_us after it opened the bucket. */
static void run_child(model *m, const char *dir, uint64_t seed,
                      unsigned delay_us) {
    child_args a = {m, dir, seed};
    m->kills += (uint64_t)tu_crash_child(child_run, child_rec, &a, sizeof(rec),
                                         R_OPEN, delay_us);
}

static void crash_loop(const char *name, uint64_t seed) {
    char *dir = tu_path("%s/%s", base_dir, name);
    model *m = calloc(1, sizeof *m);
    const char *e = getenv("KV_CRASH_ITERS");
    unsigned n = e && atoi(e) > 0 ? (unsigned)atoi(e) : 100;
    uint64_t rng = seed;
    ck_assert_ptr_nonnull(m);
    m->now = T0;
    for (unsigned i = 0; i < n && !m->err[0]; i++) {
        run_child(m, dir, tu_rng(&rng), (unsigned)(tu_rng(&rng) % 15000));
        if (i % 2)
            drop_checkpoints(m, dir);
        /* Time passes while the process is down: what the child never got
         * to expire must be gone at the reopen. */
        m->now += (int64_t)(i % 3) * TTL;
        verify(m, dir);
    }
    ck_assert_msg(!m->err[0], "%s", m->err);
    ck_assert_uint_gt(m->rebuilds, 0);
    if (with_ttl)
        ck_assert_uint_gt(m->expired, 0);
    printf("%s: %u children, %" PRIu64 " kills, %" PRIu64 " rebuilds "
           "without a checkpoint, %" PRIu64 " acknowledged operations, %"
           PRIu64 " expired keys checked gone\n",
           name, n, m->kills, m->rebuilds, m->ops, m->expired);
    free(m);
    free(dir);
}

START_TEST(kill9_kv_put_delete_purge) {
    with_ttl = 0;
    crash_loop("kv", 0x6b76u);
}
END_TEST

START_TEST(kill9_kv_ttl_expiry) {
    with_ttl = 1;
    crash_loop("kv_ttl", 0x74746cu);
}
END_TEST

int main(void) {
    base_dir = tu_mkdtemp("test_kv_crash");
    Suite *s = suite_create("kv_crash");
    TCase *tc = tcase_create("kill9");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, kill9_kv_put_delete_purge);
    tcase_add_test(tc, kill9_kv_ttl_expiry);
    suite_add_tcase(s, tc);
    int failed = tu_run_suite(s);
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed != 0;
}
