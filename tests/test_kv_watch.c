/*
 * test_kv_watch.c - listing keys, history, purge_deletes and watchers of
 * KV buckets through the public API, checked against the header's doc
 * comments and NATS KV (ADR-8): filters, byte order, markers left out of
 * listings, listings and watches larger than a batch and under concurrent
 * writers (every key seen, the last value seen is the stored one, NATS
 * issue #4824's class), every watch option alone and combined, callback
 * watchers under js_dispatch() and dispatcher threads, TTL on a fake
 * clock, reopen, a deleted bucket, and bad arguments.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jetstream.h"
#include "kv_fixture.h"

#define MS ((int64_t)1000000)
#define MINUTE (60 * SEC)
#define WAIT (5 * SEC) /* real time allowed for an entry that must come */

#define PUT JS_KV_OP_PUT
#define DEL JS_KV_OP_DEL
#define PURGE JS_KV_OP_PURGE

#define NELEM(a) (sizeof(a) / sizeof *(a))

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* ---- writing ------------------------------------------------------------ */

static uint64_t put_kv(js_kv *kv, const char *key, const char *val) {
    uint64_t rev = 0;
    CHECK_RC(js_kv_put(kv, key, val, strlen(val), &rev), 0);
    return rev;
}

static uint64_t put(const char *key, const char *val) {
    return put_kv(KV, key, val);
}

/* The bucket's last revision: its stream's last sequence. */
static uint64_t last_rev(const char *bucket) {
    char name[300];
    js_stream *s;
    struct js_stream_info *i;
    snprintf(name, sizeof name, "KV_%s", bucket);
    CHECK_RC(js_stream_lookup(S, name, &s), 0);
    CHECK_RC(js_stream_info(s, &i), 0);
    uint64_t seq = i->state->last_seq;
    js_stream_info_free(i);
    js_stream_release(s);
    return seq;
}

static uint64_t del(const char *key) {
    CHECK_RC(js_kv_delete_key(KV, key, 0), 0);
    return last_rev("cfg");
}

static uint64_t purge(const char *key) {
    CHECK_RC(js_kv_purge_key(KV, key, 0), 0);
    return last_rev("cfg");
}

static uint64_t stored_values(js_kv *kv) {
    struct js_kv_status *st;
    CHECK_RC(js_kv_status(kv, &st), 0);
    uint64_t n = st->values;
    js_kv_status_free(st);
    return n;
}

/* ---- key listings -------------------------------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
} strv;

static void strv_push(strv *a, const char *s) {
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        ck_assert_ptr_nonnull(a->v);
    }
    a->v[a->n] = strdup(s);
    ck_assert_ptr_nonnull(a->v[a->n]);
    a->n++;
}

static void strv_free(strv *a) {
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* Every key the listing gives, in the order given. */
static strv list_keys(js_kv *kv, const char *filter) {
    js_kv_keylist *l = NULL;
    strv a = {NULL, 0, 0};
    const char *k;
    int rc;
    CHECK_RC(js_kv_keys(kv, filter, &l), 0);
    ck_assert_ptr_nonnull(l);
    while ((rc = js_kv_keys_next(l, &k)) == 1) {
        ck_assert_ptr_nonnull(k);
        strv_push(&a, k);
    }
    CHECK_RC(rc, 0);
    js_kv_keys_free(l);
    return a;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The listing for filter must be exactly want[0..n) in byte order. */
static void expect_keys(js_kv *kv, const char *filter,
                        const char *const *want, size_t n) {
    const char **w = malloc((n ? n : 1) * sizeof *w);
    if (n)
        memcpy(w, want, n * sizeof *w);
    qsort(w, n, sizeof *w, cmp_str); /* strcmp: unsigned byte order */
    strv got = list_keys(kv, filter);
    for (size_t i = 0; i < got.n && i < n; i++)
        ck_assert_msg(strcmp(got.v[i], w[i]) == 0,
                      "keys(\"%s\"): key %zu is \"%s\", want \"%s\"",
                      filter ? filter : "(NULL)", i, got.v[i], w[i]);
    ck_assert_msg(got.n == n, "keys(\"%s\"): %zu keys, want %zu",
                  filter ? filter : "(NULL)", got.n, n);
    strv_free(&got);
    free(w);
}

/* ---- watching ------------------------------------------------------------ */

typedef struct {
    const char *key;
    uint64_t rev;
    int op;
    const char *val; /* NULL for a marker */
} want_t;

#define W_HIST 1
#define W_IGN 2
#define W_META 4
#define W_UPD 8

static js_kv_watch_opts wopts(int flags) {
    js_kv_watch_opts o = JS_KV_WATCH_OPTS_INIT;
    o.include_history = !!(flags & W_HIST);
    o.ignore_deletes = !!(flags & W_IGN);
    o.meta_only = !!(flags & W_META);
    o.updates_only = !!(flags & W_UPD);
    return o;
}

static js_kv_watcher *watch_kv(js_kv *kv, const char *filter, int flags) {
    js_kv_watch_opts o = wopts(flags);
    js_kv_watcher *w = NULL;
    CHECK_RC(js_kv_watch(kv, filter, &o, &w), 0);
    ck_assert_ptr_nonnull(w);
    return w;
}

static js_kv_watcher *watch(const char *filter, int flags) {
    return watch_kv(KV, filter, flags);
}

static void check_entry(const struct js_kv_entry *e, const char *bucket,
                        const want_t *w, int meta_only) {
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(strcmp(e->key, w->key) == 0 && e->revision == w->rev,
                  "got \"%s\" revision %" PRIu64 ", want \"%s\" revision %"
                  PRIu64, e->key, e->revision, w->key, w->rev);
    ck_assert_str_eq(e->bucket, bucket);
    ck_assert_int_eq(e->op, w->op);
    if (w->val && !meta_only) {
        ck_assert_uint_eq(e->len, strlen(w->val));
        ck_assert_ptr_nonnull(e->value);
        ck_assert_int_eq(memcmp(e->value, w->val, e->len), 0);
    } else {
        ck_assert_uint_eq(e->len, 0);
        ck_assert_ptr_null(e->value);
    }
    ck_assert_int_ge(e->created, T0);
    ck_assert_int_le(e->created, tu_clock(&fake_now));
}

/* The next entry, which must come (not the marker). */
static struct js_kv_entry *wnext(js_kv_watcher *w) {
    struct js_kv_entry *e = NULL;
    CHECK_RC(js_kv_watcher_next(w, WAIT, &e), 0);
    ck_assert_msg(e != NULL, "got the end of the initial values, want an "
                             "entry");
    return e;
}

/* The next thing must be the end-of-initial-values marker. */
static void wmarker(js_kv_watcher *w, int64_t timeout) {
    struct js_kv_entry *e = NULL;
    CHECK_RC(js_kv_watcher_next(w, timeout, &e), 0);
    ck_assert_msg(e == NULL, "got \"%s\" revision %" PRIu64 ", want the end "
                  "of the initial values", e ? e->key : "",
                  e ? e->revision : 0);
}

/* Nothing is waiting. */
static void wnone(js_kv_watcher *w) {
    struct js_kv_entry *e = NULL;
    int rc = js_kv_watcher_next(w, 0, &e);
    ck_assert_msg(rc == JS_ETIMEOUT, "want nothing (JS_ETIMEOUT), got %d (%s)"
                  " with %s revision %" PRIu64, rc, js_strerror(rc),
                  rc == 0 ? (e ? e->key : "the marker") : "-",
                  rc == 0 && e ? e->revision : 0);
}

/* The next entry must be want, with delta 0 (nothing else pending). */
static void expect_update(js_kv_watcher *w, const want_t *want, int meta) {
    struct js_kv_entry *e = wnext(w);
    check_entry(e, "cfg", want, meta);
    ck_assert_uint_eq(e->delta, 0);
    js_kv_entry_free(e);
}

/* The initial values must be want[0..n), then the marker. exact_delta:
 * each delta is the number of entries after it; else the deltas fall
 * strictly and the last is 0. */
static void expect_initial_kv(js_kv_watcher *w, const char *bucket,
                              const want_t *want, size_t n, int meta,
                              int exact_delta) {
    uint64_t prev = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        struct js_kv_entry *e = wnext(w);
        check_entry(e, bucket, &want[i], meta);
        if (exact_delta)
            ck_assert_msg(e->delta == n - 1 - i, "entry %zu (\"%s\"): delta "
                          "%" PRIu64 ", want %zu", i, e->key, e->delta,
                          n - 1 - i);
        else
            ck_assert_uint_lt(e->delta, prev);
        prev = e->delta;
        js_kv_entry_free(e);
    }
    if (n)
        ck_assert_msg(prev == 0, "last initial value: delta %" PRIu64
                      ", want 0", prev);
    wmarker(w, WAIT);
}

static void expect_initial(js_kv_watcher *w, const want_t *want, size_t n,
                           int meta, int exact_delta) {
    expect_initial_kv(w, "cfg", want, n, meta, exact_delta);
}

/* The standard data: r1 a=a1, r2 b=b1, r3 a=a2, r4 c=c1, r5 c deleted,
 * r6 d=d1, r7 d purged (r6 goes), r8 e=e1. */
static void std_data(void) {
    ck_assert_uint_eq(put("a", "a1"), 1);
    ck_assert_uint_eq(put("b", "b1"), 2);
    ck_assert_uint_eq(put("a", "a2"), 3);
    ck_assert_uint_eq(put("c", "c1"), 4);
    ck_assert_uint_eq(del("c"), 5);
    ck_assert_uint_eq(put("d", "d1"), 6);
    ck_assert_uint_eq(purge("d"), 7);
    ck_assert_uint_eq(put("e", "e1"), 8);
}

static const want_t STD_LATEST[] = {{"b", 2, PUT, "b1"},
                                    {"a", 3, PUT, "a2"},
                                    {"c", 5, DEL, NULL},
                                    {"d", 7, PURGE, NULL},
                                    {"e", 8, PUT, "e1"}};
static const want_t STD_ALL[] = {{"a", 1, PUT, "a1"}, {"b", 2, PUT, "b1"},
                                 {"a", 3, PUT, "a2"}, {"c", 4, PUT, "c1"},
                                 {"c", 5, DEL, NULL}, {"d", 7, PURGE, NULL},
                                 {"e", 8, PUT, "e1"}};
static const want_t STD_LATEST_VALUES[] = {{"b", 2, PUT, "b1"},
                                           {"a", 3, PUT, "a2"},
                                           {"e", 8, PUT, "e1"}};
static const want_t STD_ALL_VALUES[] = {{"a", 1, PUT, "a1"},
                                        {"b", 2, PUT, "b1"},
                                        {"a", 3, PUT, "a2"},
                                        {"c", 4, PUT, "c1"},
                                        {"e", 8, PUT, "e1"}};

/* On the standard data, a watcher with these options gives the initial
 * values the options select, then the marker, then new entries (markers
 * only without ignore_deletes), values only without meta_only. */
static void check_options(int flags) {
    int meta = !!(flags & W_META), ign = !!(flags & W_IGN);
    js_kv_watcher *w = watch(">", flags);
    if (flags & W_UPD) {
        wmarker(w, 0); /* at once */
    } else if (flags & W_HIST) {
        if (ign)
            expect_initial(w, STD_ALL_VALUES, NELEM(STD_ALL_VALUES), meta, 0);
        else
            expect_initial(w, STD_ALL, NELEM(STD_ALL), meta, 1);
    } else {
        if (ign)
            expect_initial(w, STD_LATEST_VALUES, NELEM(STD_LATEST_VALUES),
                           meta, 0);
        else
            expect_initial(w, STD_LATEST, NELEM(STD_LATEST), meta, 1);
    }
    wnone(w);
    want_t u1 = {"a", put("a", "a3"), PUT, "a3"};
    expect_update(w, &u1, meta);
    want_t u2 = {"b", del("b"), DEL, NULL};
    if (!ign)
        expect_update(w, &u2, meta);
    want_t u3 = {"e", purge("e"), PURGE, NULL};
    if (!ign)
        expect_update(w, &u3, meta);
    want_t u4 = {"f", put("f", "f1"), PUT, "f1"};
    expect_update(w, &u4, meta);
    wnone(w);
    CHECK_RC(js_kv_watcher_stop(w), 0);
}

/* ---- keys ---------------------------------------------------------------- */

START_TEST(test_keys_are_live_keys_in_byte_order_without_markers) {
    static const char *live[] = {"b",   "a.b", "a-b", "a",  "A",
                                 "a.b.c", "a/b", "a0",  "ab", "a.c",
                                 "Z_1", "a=b", "back"};
    for (size_t i = 0; i < NELEM(live); i++)
        put(live[i], "v");
    put("a", "again"); /* a second value: still one key */
    put("gone", "v");
    del("gone");
    put("purged", "v");
    purge("purged");
    del("never-put"); /* a marker alone */
    del("back");
    put("back", "returns"); /* the latest entry is a value again */
    expect_keys(KV, NULL, live, NELEM(live));
    expect_keys(KV, ">", live, NELEM(live));
    /* The first of them in byte order, spelled out. */
    strv got = list_keys(KV, NULL);
    ck_assert_uint_ge(got.n, 6);
    ck_assert_str_eq(got.v[0], "A");
    ck_assert_str_eq(got.v[1], "Z_1");
    ck_assert_str_eq(got.v[2], "a");
    ck_assert_str_eq(got.v[3], "a-b");
    ck_assert_str_eq(got.v[4], "a.b");
    ck_assert_str_eq(got.v[5], "a.b.c");
    strv_free(&got);
    /* An empty bucket and a filter matching nothing list nothing. */
    expect_keys(KV, "nothing.>", NULL, 0);
    js_kv_config c = JS_KV_CONFIG_INIT;
    js_kv *empty;
    c.bucket = "empty";
    CHECK_RC(js_kv_create(S, &c, &empty), 0);
    expect_keys(empty, NULL, NULL, 0);
    js_kv_release(empty);
}
END_TEST

START_TEST(test_keys_filters_match_whole_tokens) {
    static const char *all[] = {"app",       "app.port", "app.host",
                                "app.tls.cert", "db",    "db.port",
                                "db.port.x", "cache.port"};
    for (size_t i = 0; i < NELEM(all); i++)
        put(all[i], "v");
    put("app.dead", "v");
    del("app.dead");
    static const char *lit[] = {"app.port"};
    expect_keys(KV, "app.port", lit, NELEM(lit));
    expect_keys(KV, "app.dead", NULL, 0);
    expect_keys(KV, "app.po", NULL, 0); /* no prefix match */
    static const char *star_port[] = {"app.port", "db.port", "cache.port"};
    expect_keys(KV, "*.port", star_port, NELEM(star_port));
    static const char *app_star[] = {"app.port", "app.host"};
    expect_keys(KV, "app.*", app_star, NELEM(app_star));
    static const char *app_gt[] = {"app.port", "app.host", "app.tls.cert"};
    expect_keys(KV, "app.>", app_gt, NELEM(app_gt));
    static const char *one_token[] = {"app", "db"};
    expect_keys(KV, "*", one_token, NELEM(one_token));
    static const char *three[] = {"app.tls.cert", "db.port.x"};
    expect_keys(KV, "*.*.*", three, NELEM(three));
    static const char *star_gt[] = {"app.port", "app.host", "app.tls.cert",
                                    "db.port", "db.port.x", "cache.port"};
    expect_keys(KV, "*.>", star_gt, NELEM(star_gt));
    static const char *db_port_gt[] = {"db.port.x"};
    expect_keys(KV, "db.port.>", db_port_gt, NELEM(db_port_gt));
    expect_keys(KV, ">", all, NELEM(all));
}
END_TEST

static void noop_cb(js_kv_watcher *w, struct js_kv_entry *e, void *ctx) {
    (void)w;
    (void)ctx;
    js_kv_entry_free(e);
}

static const char *bad_filters[] = {"",     "a..b", ".a",  "a.",  "a>",
                                    "a.>.b", ">.a", "a b", " a",  "a*",
                                    "*a",   "a.b*", "a.*b", ">>",  "a\tb",
                                    "\xc3\xa9"};

START_TEST(test_bad_filters_are_einval) {
    char accepted[1024] = "";
    put("a.b", "v");
    for (size_t i = 0; i < NELEM(bad_filters); i++) {
        const char *f = bad_filters[i];
        js_kv_keylist *l = NULL;
        js_kv_watcher *w = NULL;
        js_kv_watch_opts o = JS_KV_WATCH_OPTS_INIT;
        int rk = js_kv_keys(KV, f, &l);
        int rw = js_kv_watch(KV, f, &o, &w);
        int rn = js_kv_watch(KV, f, NULL, &w);
        int rs = js_kv_watch_subscribe(KV, f, &o, noop_cb, NULL, &w);
        if (rk != JS_EINVAL || rw != JS_EINVAL || rn != JS_EINVAL ||
            rs != JS_EINVAL) {
            size_t at = strlen(accepted);
            snprintf(accepted + at, sizeof accepted - at,
                     " \"%s\" (keys %d, watch %d, NULL opts %d, subscribe "
                     "%d);", f, rk, rw, rn, rs);
        }
        if (rk == 0)
            js_kv_keys_free(l);
        if (rw == 0 || rn == 0 || rs == 0) /* w: the last one made */
            js_kv_watcher_stop(w);
    }
    ck_assert_msg(accepted[0] == 0, "bad filters not refused with JS_EINVAL:%s",
                  accepted);
}
END_TEST

START_TEST(test_keys_more_than_a_batch_come_exactly_once_in_order) {
    enum { N = 5000 };
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k.%05d", i);
        put(key, "v");
    }
    for (int i = 0; i < N; i += 10) { /* every tenth deleted */
        snprintf(key, sizeof key, "k.%05d", i);
        CHECK_RC(js_kv_delete_key(KV, key, 0), 0);
    }
    const char *filters[] = {NULL, ">", "k.*", "k.>"};
    for (size_t f = 0; f < NELEM(filters); f++) {
        strv got = list_keys(KV, filters[f]);
        size_t j = 0;
        for (int i = 0; i < N; i++) {
            if (i % 10 == 0)
                continue;
            snprintf(key, sizeof key, "k.%05d", i);
            ck_assert_msg(j < got.n, "filter %s: listing ends after %zu keys",
                          filters[f] ? filters[f] : "NULL", got.n);
            ck_assert_msg(strcmp(got.v[j], key) == 0, "filter %s: key %zu is "
                          "\"%s\", want \"%s\"",
                          filters[f] ? filters[f] : "NULL", j, got.v[j], key);
            j++;
        }
        ck_assert_uint_eq(got.n, N - N / 10);
        strv_free(&got);
    }
}
END_TEST

/* Keys live throughout a listing appear exactly once and in byte order
 * while another thread puts new keys and deletes others. Live keys are
 * k.NNNNN; doomed k.NNNNN.d (half of them deleted by the writer); new
 * k.NNNNN.n (put by the writer), so the changes land among the listed
 * keys on both sides of the listing's position. After that the writer
 * keeps putting and deleting k.NNNNN.f keys until told to stop, so that
 * every listing runs against a writer. */
enum { CK_LIVE = 2000, CK_CHURN = 1000 };
static unsigned ck_new_done, ck_del_done, ck_writer_done, ck_stop;
static int ck_writer_rc;

static int ck_new_idx(unsigned j) { return (int)((j * 7919u + 17) % CK_LIVE); }
static int ck_del_idx(unsigned j) { return (int)((j * 4999u + 5) % CK_LIVE); }

static void *churn_writer(void *arg) {
    char key[32];
    int rc = 0;
    (void)arg;
    for (unsigned j = 0; j < CK_CHURN && rc == 0; j++) {
        snprintf(key, sizeof key, "k.%05d.n", ck_new_idx(j));
        rc = js_kv_put(KV, key, "new", 3, NULL);
        __atomic_store_n(&ck_new_done, j + 1, __ATOMIC_SEQ_CST);
        if (rc == 0) {
            snprintf(key, sizeof key, "k.%05d.d", ck_del_idx(j));
            rc = js_kv_delete_key(KV, key, 0);
            __atomic_store_n(&ck_del_done, j + 1, __ATOMIC_SEQ_CST);
        }
        sched_yield(); /* as below */
    }
    __atomic_store_n(&ck_writer_done, 1, __ATOMIC_SEQ_CST);
    for (unsigned j = 0; rc == 0 && !__atomic_load_n(&ck_stop,
                                                     __ATOMIC_SEQ_CST); j++) {
        snprintf(key, sizeof key, "k.%05u.f", (j * 7u) % CK_LIVE);
        rc = js_kv_put(KV, key, "flap", 4, NULL);
        if (rc == 0)
            rc = js_kv_delete_key(KV, key, 0);
        /* Under valgrind threads take turns by time slice, and a slice
         * that ends inside the bucket's lock starves the listing: each of
         * its thousands of lookups waited for a whole slice (46 s to
         * minutes). Giving the turn away here, outside the lock, keeps
         * the writer running against every listing without that. */
        sched_yield();
    }
    ck_writer_rc = rc;
    return NULL;
}

/* One listing while the writer runs; new_done/del_done were read before
 * it started. */
static void check_churn_listing(unsigned new_done, unsigned del_done,
                                int final) {
    static char live_seen[CK_LIVE], new_seen[CK_LIVE], doomed_seen[CK_LIVE];
    static char new_before[CK_LIVE], deleted_before[CK_LIVE];
    static char ever_deleted[CK_LIVE];
    memset(live_seen, 0, sizeof live_seen);
    memset(new_seen, 0, sizeof new_seen);
    memset(doomed_seen, 0, sizeof doomed_seen);
    memset(new_before, 0, sizeof new_before);
    memset(deleted_before, 0, sizeof deleted_before);
    for (unsigned j = 0; j < new_done; j++)
        new_before[ck_new_idx(j)] = 1;
    for (unsigned j = 0; j < del_done; j++)
        deleted_before[ck_del_idx(j)] = 1;
    for (unsigned j = 0; j < CK_CHURN; j++)
        ever_deleted[ck_del_idx(j)] = 1;
    strv got = list_keys(KV, "k.>");
    for (size_t i = 0; i < got.n; i++) {
        const char *k = got.v[i];
        if (i > 0)
            ck_assert_msg(strcmp(got.v[i - 1], k) < 0, "\"%s\" then \"%s\": "
                          "not in byte order, or twice", got.v[i - 1], k);
        int idx = -1;
        char kind = 0;
        ck_assert_msg(sscanf(k, "k.%5d.%c", &idx, &kind) >= 1 && idx >= 0 &&
                      idx < CK_LIVE, "unknown key \"%s\"", k);
        if (strlen(k) == 7)
            live_seen[idx]++;
        else if (strcmp(k + 7, ".n") == 0)
            new_seen[idx]++;
        else if (strcmp(k + 7, ".d") == 0)
            doomed_seen[idx]++;
        else if (strcmp(k + 7, ".f") == 0)
            ck_assert_msg(!final, "k.%05d.f: deleted last, listed", idx);
        else
            ck_abort_msg("unknown key \"%s\"", k);
    }
    for (int i = 0; i < CK_LIVE; i++) {
        ck_assert_msg(live_seen[i] == 1, "k.%05d: listed %d times", i,
                      live_seen[i]);
        if (new_before[i])
            ck_assert_msg(new_seen[i] == 1, "k.%05d.n, put before the "
                          "listing: listed %d times", i, new_seen[i]);
        else if (final)
            ck_assert_msg(new_seen[i] == 0, "k.%05d.n never put, listed", i);
        if (deleted_before[i])
            ck_assert_msg(doomed_seen[i] == 0, "k.%05d.d, deleted before the "
                          "listing, listed", i);
        else if (!ever_deleted[i])
            ck_assert_msg(doomed_seen[i] == 1, "k.%05d.d, never deleted: "
                          "listed %d times", i, doomed_seen[i]);
    }
    strv_free(&got);
}

START_TEST(test_keys_while_another_thread_puts_and_deletes) {
    char key[32];
    for (int i = 0; i < CK_LIVE; i++) {
        snprintf(key, sizeof key, "k.%05d", i);
        put(key, "live");
        snprintf(key, sizeof key, "k.%05d.d", i);
        put(key, "doomed");
    }
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, churn_writer, NULL), 0);
    /* At least 5 listings, all while the writer runs; at most 20, so a
     * scheduler that lets the listings starve the writer (sanitizers,
     * valgrind, a loaded machine) cannot stretch the test to minutes:
     * the writer then finishes its changes alone. */
    int listings = 0;
    while (listings < 5 ||
           (listings < 20 && !__atomic_load_n(&ck_writer_done,
                                              __ATOMIC_SEQ_CST))) {
        unsigned nd = __atomic_load_n(&ck_new_done, __ATOMIC_SEQ_CST);
        unsigned dd = __atomic_load_n(&ck_del_done, __ATOMIC_SEQ_CST);
        check_churn_listing(nd, dd, 0);
        listings++;
    }
    __atomic_store_n(&ck_stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(t, NULL);
    CHECK_RC(ck_writer_rc, 0);
    check_churn_listing(CK_CHURN, CK_CHURN, 1);
}
END_TEST

START_TEST(test_keys_watch_and_history_after_reopen) {
    uint64_t ra = put("a", "1");
    put("b", "1");
    uint64_t rb = del("b");
    uint64_t rc1 = put("c", "1");
    uint64_t rc2 = put("c", "2");
    put("d", "1");
    uint64_t rd = purge("d");
    reopen();
    static const char *live[] = {"a", "c"};
    expect_keys(KV, NULL, live, NELEM(live));
    want_t latest[] = {{"a", ra, PUT, "1"},
                       {"b", rb, DEL, NULL},
                       {"c", rc2, PUT, "2"},
                       {"d", rd, PURGE, NULL}};
    js_kv_watcher *w = watch(NULL, 0);
    expect_initial(w, latest, NELEM(latest), 0, 1);
    wnone(w);
    struct js_kv_entry **h;
    size_t n;
    CHECK_RC(js_kv_history(KV, "c", &h, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(h[0]->revision, rc1);
    ck_assert_uint_eq(h[1]->revision, rc2);
    js_kv_history_free(h, n);
    CHECK_RC(js_kv_history(KV, "d", &h, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(h[0]->op, PURGE);
    js_kv_history_free(h, n);
    /* Writes after the reopen reach the watcher and the listing. */
    want_t u = {"e", put("e", "new"), PUT, "new"};
    ck_assert_uint_eq(u.rev, rd + 1);
    expect_update(w, &u, 0);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    static const char *live2[] = {"a", "c", "e"};
    expect_keys(KV, NULL, live2, NELEM(live2));
}
END_TEST

/* ---- history ------------------------------------------------------------- */

/* The key's history is one marker: revision rev, operation op. */
static void expect_only_marker(const char *key, uint64_t rev, int op) {
    struct js_kv_entry **h;
    size_t n;
    CHECK_RC(js_kv_history(KV, key, &h, &n), 0);
    ck_assert_uint_eq(n, 1);
    want_t want = {key, rev, op, NULL};
    check_entry(h[0], "cfg", &want, 0);
    ck_assert_uint_eq(h[0]->delta, 0);
    js_kv_history_free(h, n);
}

START_TEST(test_history_is_every_entry_oldest_first_with_markers) {
    uint64_t r1 = put("k", "one");
    put("other", "x");
    tu_clock_advance(&fake_now, SEC);
    uint64_t r2 = put("k", "two");
    uint64_t r3 = del("k");
    tu_clock_advance(&fake_now, SEC);
    uint64_t r4 = put("k", "three");
    struct js_kv_entry **h = NULL;
    size_t n = 0;
    CHECK_RC(js_kv_history(KV, "k", &h, &n), 0);
    ck_assert_uint_eq(n, 4);
    want_t want[] = {{"k", r1, PUT, "one"},
                     {"k", r2, PUT, "two"},
                     {"k", r3, DEL, NULL},
                     {"k", r4, PUT, "three"}};
    int64_t created[] = {T0, T0 + SEC, T0 + SEC, T0 + 2 * SEC};
    for (size_t i = 0; i < n; i++) {
        check_entry(h[i], "cfg", &want[i], 0);
        ck_assert_uint_eq(h[i]->delta, n - 1 - i);
        ck_assert_int_eq(h[i]->created, created[i]);
    }
    js_kv_history_free(h, n);
    CHECK_RC(js_kv_history(KV, "missing", &h, &n), JS_EKEY_NOT_FOUND);
    /* A key whose only entry is a delete marker has a history. */
    expect_only_marker("marker-only", del("marker-only"), DEL);
}
END_TEST

START_TEST(test_history_after_purge_is_the_purge_marker_alone) {
    put("k", "1");
    put("k", "2");
    del("k");
    expect_only_marker("k", purge("k"), PURGE);
}
END_TEST

START_TEST(test_history_keeps_only_the_buckets_history) {
    js_kv_config c = JS_KV_CONFIG_INIT;
    js_kv *h3;
    char v[16];
    uint64_t r[5];
    c.bucket = "h3";
    c.history = 3;
    CHECK_RC(js_kv_create(S, &c, &h3), 0);
    for (int i = 0; i < 5; i++) {
        snprintf(v, sizeof v, "v%d", i);
        r[i] = put_kv(h3, "k", v);
    }
    struct js_kv_entry **h;
    size_t n;
    CHECK_RC(js_kv_history(h3, "k", &h, &n), 0);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        snprintf(v, sizeof v, "v%zu", i + 2);
        want_t want = {"k", r[i + 2], PUT, v};
        check_entry(h[i], "h3", &want, 0);
        ck_assert_uint_eq(h[i]->delta, n - 1 - i);
    }
    js_kv_history_free(h, n);
    /* An include_history watch sees the same three. */
    js_kv_watcher *w = watch_kv(h3, "k", W_HIST);
    want_t hw[] = {{"k", r[2], PUT, "v2"},
                   {"k", r[3], PUT, "v3"},
                   {"k", r[4], PUT, "v4"}};
    expect_initial_kv(w, "h3", hw, NELEM(hw), 0, 1);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    js_kv_release(h3);
}
END_TEST

/* ---- purge_deletes ------------------------------------------------------- */

static void expect_history_len(js_kv *kv, const char *key, size_t want,
                               int last_op) {
    struct js_kv_entry **h;
    size_t n;
    if (want == 0) {
        CHECK_RC(js_kv_history(kv, key, &h, &n), JS_EKEY_NOT_FOUND);
        return;
    }
    CHECK_RC(js_kv_history(kv, key, &h, &n), 0);
    ck_assert_msg(n == want, "history(\"%s\"): %zu entries, want %zu", key, n,
                  want);
    ck_assert_int_eq(h[n - 1]->op, last_op);
    js_kv_history_free(h, n);
}

START_TEST(test_purge_deletes_default_is_30_minutes) {
    put("keep", "k1");
    put("keep", "k2");
    put("d1", "x");
    put("d1", "y");
    del("d1"); /* 3 entries, marker at T0 */
    put("p1", "x");
    purge("p1"); /* the marker alone, at T0 */
    uint64_t purged = 99;
    /* 29 minutes: the markers are newer than 30 minutes and stay as their
     * keys' only entries; only the history under d1's goes. */
    tu_clock_advance(&fake_now, 29 * MINUTE);
    CHECK_RC(js_kv_purge_deletes(KV, 0, &purged), 0);
    ck_assert_uint_eq(purged, 2);
    expect_history_len(KV, "d1", 1, DEL);
    expect_history_len(KV, "p1", 1, PURGE);
    /* 31 minutes: both go; a marker made now stays, alone. */
    tu_clock_advance(&fake_now, 2 * MINUTE);
    put("d2", "x");
    del("d2");
    CHECK_RC(js_kv_purge_deletes(KV, 0, &purged), 0);
    ck_assert_uint_eq(purged, 3); /* d1's and p1's markers, d2's value */
    expect_history_len(KV, "d1", 0, 0);
    expect_history_len(KV, "p1", 0, 0);
    expect_history_len(KV, "d2", 1, DEL);
    expect_history_len(KV, "keep", 2, PUT); /* values are not touched */
    ck_assert_uint_eq(stored_values(KV), 3);
    static const char *live[] = {"keep"};
    expect_keys(KV, NULL, live, NELEM(live));
    /* Nothing left to do: nothing removed. */
    CHECK_RC(js_kv_purge_deletes(KV, 0, &purged), 0);
    ck_assert_uint_eq(purged, 0);
    /* A watch no longer sees the removed keys. */
    js_kv_watcher *w = watch(NULL, 0);
    struct js_kv_entry *e = wnext(w);
    ck_assert_str_eq(e->key, "keep");
    js_kv_entry_free(e);
    e = wnext(w);
    ck_assert_str_eq(e->key, "d2");
    ck_assert_int_eq(e->op, DEL);
    js_kv_entry_free(e);
    wmarker(w, WAIT);
    CHECK_RC(js_kv_watcher_stop(w), 0);
}
END_TEST

START_TEST(test_purge_deletes_threshold_and_negative_removes_all) {
    put("old", "x");
    del("old"); /* marker at T0 */
    tu_clock_advance(&fake_now, 15 * SEC);
    put("young", "x");
    put("young", "y");
    purge("young"); /* marker at T0+15s; the purge removed the values */
    del("young2"); /* a marker alone, at T0+15s */
    put("value", "v");
    tu_clock_advance(&fake_now, 5 * SEC); /* old: 20 s, young: 5 s */
    uint64_t purged = 0;
    CHECK_RC(js_kv_purge_deletes(KV, 10 * SEC, &purged), 0);
    ck_assert_uint_eq(purged, 2); /* old's value and marker */
    expect_history_len(KV, "old", 0, 0);
    expect_history_len(KV, "young", 1, PURGE);
    expect_history_len(KV, "young2", 1, DEL);
    /* < 0: every marker, whatever its age; NULL purged is fine. */
    CHECK_RC(js_kv_purge_deletes(KV, -1, NULL), 0);
    expect_history_len(KV, "young", 0, 0);
    expect_history_len(KV, "young2", 0, 0);
    expect_history_len(KV, "value", 1, PUT);
    ck_assert_uint_eq(stored_values(KV), 1);
    CHECK_RC(js_kv_purge_deletes(KV, -1, &purged), 0);
    ck_assert_uint_eq(purged, 0);
}
END_TEST

START_TEST(test_purge_deletes_walks_more_markers_than_a_batch) {
    enum { N = 3000 };
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "m.%05d", i);
        put(key, "v");
        CHECK_RC(js_kv_delete_key(KV, key, 0), 0);
        snprintf(key, sizeof key, "v.%05d", i);
        put(key, "v");
    }
    uint64_t purged = 0;
    CHECK_RC(js_kv_purge_deletes(KV, -1, &purged), 0);
    ck_assert_uint_eq(purged, 2 * N);
    ck_assert_uint_eq(stored_values(KV), N);
    strv got = list_keys(KV, NULL);
    ck_assert_uint_eq(got.n, N);
    strv_free(&got);
    for (int i = 0; i < N; i += 499) {
        snprintf(key, sizeof key, "m.%05d", i);
        expect_history_len(KV, key, 0, 0);
    }
}
END_TEST

/* ---- watch options --------------------------------------------------------- */

START_TEST(test_watch_default_latest_per_key_then_marker_then_updates) {
    std_data();
    check_options(0);
}
END_TEST

START_TEST(test_watch_include_history_gives_every_stored_entry) {
    std_data();
    check_options(W_HIST);
}
END_TEST

START_TEST(test_watch_ignore_deletes_leaves_out_markers) {
    std_data();
    check_options(W_IGN);
}
END_TEST

START_TEST(test_watch_meta_only_gives_entries_without_values) {
    std_data();
    check_options(W_META);
}
END_TEST

START_TEST(test_watch_updates_only_gives_marker_at_once_then_new_entries) {
    std_data();
    check_options(W_UPD);
}
END_TEST

START_TEST(test_watch_ignore_deletes_with_include_history) {
    std_data();
    check_options(W_IGN | W_HIST);
}
END_TEST

START_TEST(test_watch_meta_only_with_updates_only) {
    std_data();
    check_options(W_META | W_UPD);
}
END_TEST

/* Every combination; include_history with updates_only is refused. */
START_TEST(test_watch_every_option_combination) {
    for (int flags = 0; flags < 16; flags++) {
        if ((flags & W_HIST) && (flags & W_UPD)) {
            js_kv_watch_opts o = wopts(flags);
            js_kv_watcher *w = NULL;
            CHECK_RC(js_kv_watch(KV, NULL, &o, &w), JS_EINVAL);
            CHECK_RC(js_kv_watch_subscribe(KV, NULL, &o, noop_cb, NULL, &w),
                     JS_EINVAL);
            continue;
        }
        if (flags) { /* a fresh bucket: revisions start at 1 again */
            js_kv_config c = JS_KV_CONFIG_INIT;
            c.bucket = "cfg";
            c.history = 5;
            js_kv_release(KV);
            CHECK_RC(js_kv_delete(S, "cfg"), 0);
            CHECK_RC(js_kv_create(S, &c, &KV), 0);
        }
        std_data();
        check_options(flags);
    }
}
END_TEST

START_TEST(test_watch_of_an_empty_bucket_gives_the_marker_at_once) {
    js_kv_watcher *w = watch(NULL, 0);
    wmarker(w, 0);
    wnone(w);
    want_t u = {"k", put("k", "v"), PUT, "v"};
    expect_update(w, &u, 0);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    /* A filter matching no stored key: the marker at once too. */
    put("a", "v");
    w = watch("b.>", 0);
    wmarker(w, 0);
    wnone(w);
    CHECK_RC(js_kv_watcher_stop(w), 0);
}
END_TEST

START_TEST(test_watch_null_opts_are_all_off_and_bad_versions_einval) {
    std_data();
    js_kv_watcher *w = NULL;
    CHECK_RC(js_kv_watch(KV, NULL, NULL, &w), 0);
    expect_initial(w, STD_LATEST, NELEM(STD_LATEST), 0, 1);
    wnone(w);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    js_kv_watch_opts o = JS_KV_WATCH_OPTS_INIT;
    o.version = 0;
    CHECK_RC(js_kv_watch(KV, NULL, &o, &w), JS_EINVAL);
    o.version = JS_KV_WATCH_OPTS_VERSION + 1;
    CHECK_RC(js_kv_watch(KV, NULL, &o, &w), JS_EINVAL);
}
END_TEST

START_TEST(test_watch_filters_literal_star_and_gt) {
    uint64_t r_app = put("app", "root");
    uint64_t r_ap = put("app.port", "1");
    uint64_t r_ah = put("app.host", "h");
    uint64_t r_db = put("db.port", "2");
    uint64_t r_at = put("app.tls.cert", "c");
    uint64_t r_dbr = put("db", "x");
    struct {
        const char *filter;
        want_t initial[4];
        size_t n;
    } cases[] = {
        {"app.port", {{"app.port", r_ap, PUT, "1"}}, 1},
        {"*.port", {{"app.port", r_ap, PUT, "1"}, {"db.port", r_db, PUT, "2"}},
         2},
        {"app.>",
         {{"app.port", r_ap, PUT, "1"},
          {"app.host", r_ah, PUT, "h"},
          {"app.tls.cert", r_at, PUT, "c"}},
         3},
        {"app.*",
         {{"app.port", r_ap, PUT, "1"}, {"app.host", r_ah, PUT, "h"}},
         2},
        {"*", {{"app", r_app, PUT, "root"}, {"db", r_dbr, PUT, "x"}}, 2},
    };
    js_kv_watcher *w[NELEM(cases)], *all = watch(">", 0);
    for (size_t i = 0; i < NELEM(cases); i++) {
        w[i] = watch(cases[i].filter, 0);
        expect_initial(w[i], cases[i].initial, cases[i].n, 0, 1);
    }
    for (size_t i = 0; i < 6; i++) {
        struct js_kv_entry *e = wnext(all);
        js_kv_entry_free(e);
    }
    wmarker(all, WAIT);
    /* Updates: each watcher gets only the keys its filter matches. */
    static const char *keys[] = {"db.port", "app.tls.cert", "app", "x.port",
                                 "app.port", "app.port.x", "db"};
    uint64_t rev[NELEM(keys)];
    for (size_t k = 0; k < NELEM(keys); k++)
        rev[k] = put(keys[k], "u");
    static const int match[][NELEM(keys)] = {
        {0, 0, 0, 0, 1, 0, 0}, /* app.port */
        {1, 0, 0, 1, 1, 0, 0}, /* *.port */
        {0, 1, 0, 0, 1, 1, 0}, /* app.> */
        {0, 0, 0, 0, 1, 0, 0}, /* app.* */
        {0, 0, 1, 0, 0, 0, 1}, /* * */
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        for (size_t k = 0; k < NELEM(keys); k++) {
            if (!match[i][k])
                continue;
            struct js_kv_entry *e = wnext(w[i]);
            ck_assert_msg(strcmp(e->key, keys[k]) == 0 && e->revision == rev[k],
                          "watch(\"%s\"): got \"%s\" revision %" PRIu64
                          ", want \"%s\" revision %" PRIu64, cases[i].filter,
                          e->key, e->revision, keys[k], rev[k]);
            js_kv_entry_free(e);
        }
        wnone(w[i]);
        CHECK_RC(js_kv_watcher_stop(w[i]), 0);
    }
    for (size_t k = 0; k < NELEM(keys); k++) {
        struct js_kv_entry *e = wnext(all);
        ck_assert_uint_eq(e->revision, rev[k]);
        js_kv_entry_free(e);
    }
    wnone(all);
    CHECK_RC(js_kv_watcher_stop(all), 0);
}
END_TEST

/* A watcher reads the bucket as it is when it gets to an entry: what a
 * purge removed before then is skipped. (The purge marker, stored while
 * the initial values were being read, may come before or after the end
 * marker: as in NATS, the end comes when the watcher has caught up.) */
START_TEST(test_watch_skips_entries_removed_before_it_reads_them) {
    std_data();
    js_kv_watcher *w = watch(NULL, W_HIST);
    struct js_kv_entry *e = wnext(w);
    want_t a1 = {"a", 1, PUT, "a1"};
    check_entry(e, "cfg", &a1, 0);
    js_kv_entry_free(e);
    uint64_t rp = purge("a"); /* removes a's r3 before the watcher reads it */
    want_t rest[] = {{"b", 2, PUT, "b1"},   {"c", 4, PUT, "c1"},
                     {"c", 5, DEL, NULL},   {"d", 7, PURGE, NULL},
                     {"e", 8, PUT, "e1"},   {"a", rp, PURGE, NULL}};
    size_t i = 0, marker_at = 0;
    int markers = 0;
    while (i < NELEM(rest) || markers == 0) {
        e = NULL;
        CHECK_RC(js_kv_watcher_next(w, WAIT, &e), 0);
        if (!e) {
            markers++;
            marker_at = i;
            continue;
        }
        ck_assert_msg(i < NELEM(rest), "extra entry \"%s\" revision %"
                      PRIu64, e->key, e->revision);
        check_entry(e, "cfg", &rest[i], 0);
        js_kv_entry_free(e);
        i++;
    }
    ck_assert_int_eq(markers, 1);
    ck_assert_uint_ge(marker_at, NELEM(rest) - 1); /* after e's r8 */
    wnone(w);
    CHECK_RC(js_kv_watcher_stop(w), 0);
}
END_TEST

START_TEST(test_watch_initial_deltas_count_down_to_zero) {
    enum { N = 1000 };
    char key[32], val[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "n.%04d", (i * 7) % N);
        snprintf(val, sizeof val, "%d", i);
        put(key, val);
    }
    js_kv_watcher *w = watch(NULL, 0);
    for (int i = 0; i < N; i++) {
        struct js_kv_entry *e = wnext(w);
        ck_assert_uint_eq(e->revision, (uint64_t)i + 1);
        ck_assert_uint_eq(e->delta, (uint64_t)(N - 1 - i));
        js_kv_entry_free(e);
    }
    wmarker(w, WAIT);
    wnone(w);
    CHECK_RC(js_kv_watcher_stop(w), 0);
}
END_TEST

/* A history-1 bucket: rewriting keys the watch has listed but not yet
 * delivered removes those entries and appends new ones. The pending count
 * follows exactly (not by re-reading the list): the first delta, plus one,
 * is what arrives, and the deltas count down by one to 0; the marker comes
 * between the listed entries and the rewrites. */
START_TEST(test_watch_deltas_exact_while_listed_keys_are_rewritten) {
    enum { N = 1000, REWRITE = 300 };
    char key[32], val[32];
    js_kv *h1;
    js_kv_config c = JS_KV_CONFIG_INIT;
    c.bucket = "h1";
    c.history = 1;
    CHECK_RC(js_kv_create(S, &c, &h1), 0);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k.%04d", i);
        put_kv(h1, key, "old");
    }
    js_kv_watcher *w = watch_kv(h1, NULL, 0);
    struct js_kv_entry *e = wnext(w);
    uint64_t first_delta = e->delta;
    ck_assert_uint_eq(first_delta, N - 1);
    js_kv_entry_free(e);
    for (int i = 0; i < REWRITE; i++) { /* keys 500..799: not yet read */
        snprintf(key, sizeof key, "k.%04d", 500 + i);
        snprintf(val, sizeof val, "new%d", i);
        put_kv(h1, key, val);
    }
    /* The 699 listed entries left, the marker, then the 300 rewrites. */
    uint64_t got = 1, want = N - 2;
    for (;;) {
        e = NULL;
        CHECK_RC(js_kv_watcher_next(w, WAIT, &e), 0);
        if (!e) {
            ck_assert_uint_eq(got, N - REWRITE);
            continue;
        }
        ck_assert_msg(e->delta == want, "entry %" PRIu64 " (%s rev %" PRIu64
                      "): delta %" PRIu64 ", want %" PRIu64, got, e->key,
                      e->revision, e->delta, want);
        ck_assert_int_eq(e->revision > (uint64_t)N, got >= N - REWRITE);
        got++;
        int last = e->delta == 0;
        js_kv_entry_free(e);
        if (last)
            break;
        want--;
    }
    ck_assert_uint_eq(got, N); /* 700 listed + 300 rewritten, once each */
    wnone(w);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    js_kv_release(h1);
}
END_TEST

/* A writer that never pauses, rewriting keys the watch has listed (their
 * listed entries are removed, so fewer than the initial count arrive):
 * the marker still comes, right after the last entry stored before the
 * watch began and before any stored after it. Counting entries, or
 * waiting for a pending count of 0, would hold it back or never send it. */
static void rewrite_while_watching(int callback);

START_TEST(test_watch_marker_comes_under_a_writer_that_never_pauses) {
    rewrite_while_watching(0);
}
END_TEST

START_TEST(test_callback_watch_marker_comes_under_a_writer_that_never_pauses) {
    rewrite_while_watching(1);
}
END_TEST

typedef struct rw_seen {
    uint64_t end, entries, after_marker_old, before_marker_new;
    int marker;
} rw_seen;

static void rw_note(rw_seen *v, const struct js_kv_entry *e) {
    if (!e) {
        ck_assert_int_eq(v->marker, 0);
        v->marker = 1;
        return;
    }
    v->entries++;
    if (v->marker && e->revision <= v->end)
        v->after_marker_old++;
    if (!v->marker && e->revision > v->end)
        v->before_marker_new++;
}

static void rw_cb(js_kv_watcher *w, struct js_kv_entry *e, void *ctx) {
    (void)w;
    rw_note(ctx, e);
    js_kv_entry_free(e);
}

static void rewrite_while_watching(int callback) {
    enum { N = 200, ROUNDS = 3000 };
    char key[32];
    js_kv *h1;
    js_kv_config c = JS_KV_CONFIG_INIT;
    c.bucket = "h1";
    c.history = 1;
    CHECK_RC(js_kv_create(S, &c, &h1), 0);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k.%04d", i);
        put_kv(h1, key, "old");
    }
    rw_seen v = {0};
    v.end = last_rev("h1");
    js_kv_watcher *w = NULL;
    if (callback) {
        CHECK_RC(js_kv_watch_subscribe(h1, NULL, NULL, rw_cb, &v, &w), 0);
    } else {
        w = watch_kv(h1, NULL, 0);
    }
    uint64_t rng = 12345;
    for (int r = 0; r < ROUNDS && !v.marker; r++) {
        for (int k = 0; k < 2; k++) { /* ahead of the reader, always */
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            snprintf(key, sizeof key, "k.%04d", (int)((rng >> 33) % N));
            put_kv(h1, key, "new");
        }
        if (callback) {
            ck_assert_int_ge(js_dispatch(S, 0), 0);
        } else {
            struct js_kv_entry *e = NULL;
            CHECK_RC(js_kv_watcher_next(w, WAIT, &e), 0);
            rw_note(&v, e);
            js_kv_entry_free(e);
        }
    }
    ck_assert_msg(v.marker, "no end-of-initial-values marker after %" PRIu64
                  " entries", v.entries);
    ck_assert_uint_eq(v.before_marker_new, 0);
    ck_assert_uint_eq(v.after_marker_old, 0);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    js_kv_release(h1);
}

/* Updates stored before the watcher reads them: each delta counts what
 * the watch still has to deliver after it (NATS's num_pending). */
START_TEST(test_watch_update_deltas_count_entries_still_pending) {
    js_kv_watcher *w = watch(NULL, 0);
    wmarker(w, WAIT);
    uint64_t r[3] = {put("a", "1"), put("b", "2"), put("a", "3")};
    for (int i = 0; i < 3; i++) {
        struct js_kv_entry *e = wnext(w);
        ck_assert_uint_eq(e->revision, r[i]);
        ck_assert_msg(e->delta == (uint64_t)(2 - i), "update %d: delta %"
                      PRIu64 ", want %d", i, e->delta, 2 - i);
        js_kv_entry_free(e);
    }
    wnone(w);
    CHECK_RC(js_kv_watcher_stop(w), 0);
}
END_TEST

static void *late_put(void *arg) {
    (void)arg;
    js_kv_put(KV, "late", "v", 1, NULL);
    return NULL;
}

START_TEST(test_watcher_next_waits_for_an_entry_from_another_thread) {
    js_kv_watcher *w = watch(NULL, 0);
    wmarker(w, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, late_put, NULL), 0);
    struct js_kv_entry *e = NULL;
    CHECK_RC(js_kv_watcher_next(w, 10 * SEC, &e), 0);
    pthread_join(t, NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->key, "late");
    ck_assert_uint_eq(e->revision, 1);
    js_kv_entry_free(e);
    /* A bounded wait with nothing coming times out. */
    int64_t t0 = mono_ns();
    CHECK_RC(js_kv_watcher_next(w, 50 * MS, &e), JS_ETIMEOUT);
    ck_assert_int_ge(mono_ns() - t0, 40 * MS);
    CHECK_RC(js_kv_watcher_stop(w), 0);
}
END_TEST

/* Two threads reading one watcher take turns: between them every entry
 * and the marker come exactly once. */
enum { TR_KEYS = 2000, TR_UPDATES = 1000, TR_TOTAL = TR_KEYS + TR_UPDATES };
static js_kv_watcher *tr_w;
static unsigned char tr_seen[TR_TOTAL + 1];
static unsigned tr_entries, tr_markers, tr_bad;
static int tr_rc;

static void *tr_reader(void *arg) {
    int64_t end = mono_ns() + 20 * SEC;
    (void)arg;
    while (__atomic_load_n(&tr_entries, __ATOMIC_SEQ_CST) < TR_TOTAL &&
           mono_ns() < end) {
        struct js_kv_entry *e = NULL;
        int rc = js_kv_watcher_next(tr_w, 100 * MS, &e);
        if (rc == JS_ETIMEOUT)
            continue;
        if (rc) {
            tr_rc = rc;
            break;
        }
        if (!e) {
            __atomic_add_fetch(&tr_markers, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        if (e->revision >= 1 && e->revision <= TR_TOTAL)
            __atomic_add_fetch(&tr_seen[e->revision], 1, __ATOMIC_SEQ_CST);
        else
            __atomic_add_fetch(&tr_bad, 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&tr_entries, 1, __ATOMIC_SEQ_CST);
        js_kv_entry_free(e);
    }
    return NULL;
}

START_TEST(test_two_threads_reading_one_watcher_share_its_entries) {
    char key[32];
    for (int i = 0; i < TR_KEYS; i++) {
        snprintf(key, sizeof key, "t.%05d", i);
        put(key, "v");
    }
    tr_w = watch(NULL, 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, tr_reader, NULL), 0);
    for (int i = 0; i < TR_UPDATES; i++) {
        snprintf(key, sizeof key, "t.%05d", (i * 13) % TR_KEYS);
        put(key, "u");
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK_RC(tr_rc, 0);
    ck_assert_uint_eq(tr_bad, 0);
    ck_assert_uint_eq(tr_markers, 1);
    ck_assert_uint_eq(tr_entries, TR_TOTAL);
    for (int r = 1; r <= TR_TOTAL; r++)
        ck_assert_msg(tr_seen[r] == 1, "revision %d delivered %d times", r,
                      tr_seen[r]);
    wnone(tr_w);
    CHECK_RC(js_kv_watcher_stop(tr_w), 0);
}
END_TEST

/* A watch over 10,000 keys while another thread keeps updating them:
 * every key is seen, each key's revisions only rise, the initial values
 * come in revision order and the updates in the order stored, and once
 * the writer stops the last value seen for each key is js_kv_get's. */
enum { WK = 10000, WK_MAX_UPDATES = 20000 };
static unsigned wk_stop, wk_updates;
static int wk_rc;
static pthread_mutex_t wk_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wk_cond = PTHREAD_COND_INITIALIZER;
static int wk_started;

static void *wk_writer(void *arg) {
    uint32_t x = 2463534242u;
    char key[32], val[32];
    (void)arg;
    for (unsigned i = 0; i < WK_MAX_UPDATES &&
                         !__atomic_load_n(&wk_stop, __ATOMIC_SEQ_CST);
         i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        snprintf(key, sizeof key, "w.%05u", x % WK);
        snprintf(val, sizeof val, "u%u", i);
        int rc = js_kv_put(KV, key, val, strlen(val), NULL);
        if (rc) {
            wk_rc = rc;
            break;
        }
        __atomic_store_n(&wk_updates, i + 1, __ATOMIC_SEQ_CST);
        if (i == 200) {
            pthread_mutex_lock(&wk_mu);
            wk_started = 1;
            pthread_cond_signal(&wk_cond);
            pthread_mutex_unlock(&wk_mu);
        }
    }
    pthread_mutex_lock(&wk_mu);
    wk_started = 1; /* also when it stopped early */
    pthread_cond_signal(&wk_cond);
    pthread_mutex_unlock(&wk_mu);
    return NULL;
}

typedef struct {
    uint64_t rev;
    char val[24];
} wk_last;

/* Record e as key's latest; its revision must be above what was seen. */
static void wk_record(wk_last *last, const struct js_kv_entry *e) {
    unsigned idx;
    ck_assert_msg(sscanf(e->key, "w.%5u", &idx) == 1 && idx < WK,
                  "unexpected key \"%s\"", e->key);
    ck_assert_int_eq(e->op, PUT);
    ck_assert_msg(e->revision > last[idx].rev, "\"%s\": revision %" PRIu64
                  " after %" PRIu64, e->key, e->revision, last[idx].rev);
    ck_assert_uint_lt(e->len, sizeof last[idx].val);
    last[idx].rev = e->revision;
    memcpy(last[idx].val, e->value, e->len);
    last[idx].val[e->len] = 0;
}

START_TEST(test_watch_of_10000_keys_under_updates_sees_every_last_value) {
    char key[32];
    for (int i = 0; i < WK; i++) {
        snprintf(key, sizeof key, "w.%05d", i);
        put(key, "p");
    }
    wk_last *last = calloc(WK, sizeof *last);
    ck_assert_ptr_nonnull(last);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, wk_writer, NULL), 0);
    pthread_mutex_lock(&wk_mu);
    while (!wk_started)
        pthread_cond_wait(&wk_cond, &wk_mu);
    pthread_mutex_unlock(&wk_mu);
    js_kv_watcher *w = watch(NULL, 0);
    size_t initial = 0;
    uint64_t prev = 0;
    for (;;) {
        struct js_kv_entry *e = NULL;
        CHECK_RC(js_kv_watcher_next(w, WAIT, &e), 0);
        if (!e)
            break;
        ck_assert_msg(e->revision > prev, "initial value \"%s\" revision %"
                      PRIu64 " after %" PRIu64 ": not in revision order",
                      e->key, e->revision, prev);
        prev = e->revision;
        wk_record(last, e);
        initial++;
        js_kv_entry_free(e);
    }
    unsigned during = __atomic_load_n(&wk_updates, __ATOMIC_SEQ_CST);
    __atomic_store_n(&wk_stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(t, NULL);
    CHECK_RC(wk_rc, 0);
    /* A key rewritten past the history while listed comes after the
     * marker, as an update: every key is seen, before or after it. */
    ck_assert_uint_gt(initial, 0);
    /* The updates, up to a sentinel stored after the writer stopped. */
    uint64_t end = put("zz-end", "1"), prev_update = 0;
    for (;;) {
        struct js_kv_entry *e = wnext(w);
        ck_assert_msg(e->revision > prev_update, "update \"%s\" revision %"
                      PRIu64 " after %" PRIu64, e->key, e->revision,
                      prev_update);
        prev_update = e->revision;
        if (strcmp(e->key, "zz-end") == 0) {
            ck_assert_uint_eq(e->revision, end);
            js_kv_entry_free(e);
            break;
        }
        wk_record(last, e);
        js_kv_entry_free(e);
    }
    wnone(w);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    for (int i = 0; i < WK; i++) {
        struct js_kv_entry *e;
        snprintf(key, sizeof key, "w.%05d", i);
        ck_assert_msg(last[i].rev != 0, "\"%s\" never seen", key);
        CHECK_RC(js_kv_get(KV, key, 0, &e), 0);
        ck_assert_msg(e->revision == last[i].rev &&
                      e->len == strlen(last[i].val) &&
                      memcmp(e->value, last[i].val, e->len) == 0,
                      "\"%s\": last seen \"%s\" at %" PRIu64 ", stored \"%.*s\""
                      " at %" PRIu64 " (%u updates during the initial values)",
                      key, last[i].val, last[i].rev, (int)e->len,
                      (const char *)e->value, e->revision, during);
        js_kv_entry_free(e);
    }
    free(last);
}
END_TEST

START_TEST(test_ttl_expiry_removes_keys_from_listing_and_watch) {
    js_kv_config c = JS_KV_CONFIG_INIT;
    js_kv *t;
    c.bucket = "ttl";
    c.ttl = 10 * SEC;
    CHECK_RC(js_kv_create(S, &c, &t), 0);
    put_kv(t, "old", "1");
    tu_clock_advance(&fake_now, 5 * SEC);
    uint64_t r_young = put_kv(t, "young", "2");
    static const char *both[] = {"old", "young"};
    expect_keys(t, NULL, both, NELEM(both));
    tu_clock_advance(&fake_now, 6 * SEC); /* old is 11 s old, young 6 s */
    uint64_t r_touch = put_kv(t, "touch", "3"); /* touches the store */
    static const char *left[] = {"touch", "young"};
    expect_keys(t, NULL, left, NELEM(left));
    js_kv_watcher *w = watch_kv(t, NULL, 0);
    want_t want[] = {{"young", r_young, PUT, "2"},
                     {"touch", r_touch, PUT, "3"}};
    expect_initial_kv(w, "ttl", want, NELEM(want), 0, 1);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    w = watch_kv(t, NULL, W_HIST);
    expect_initial_kv(w, "ttl", want, NELEM(want), 0, 1);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    struct js_kv_entry **h;
    size_t n;
    CHECK_RC(js_kv_history(t, "old", &h, &n), JS_EKEY_NOT_FOUND);
    js_kv_release(t);
}
END_TEST

/* ---- callback watchers --------------------------------------------------- */

enum { REC_MAX = 4096 };

typedef struct {
    char key[24];
    uint64_t rev, delta;
    int op;
    size_t len;
    char val[24];
} rec_entry;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    rec_entry *e;
    size_t n;       /* entries recorded */
    long marker_at; /* entries before the marker; -1: none yet */
    int markers;
    size_t calls;
    int inflight, max_inflight;
    js_kv_watcher *w; /* the handle the callback was given */
    int other_w;      /* calls with another handle */
} rec_t;

static void rec_init(rec_t *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->e = calloc(REC_MAX, sizeof *r->e);
    ck_assert_ptr_nonnull(r->e);
    r->marker_at = -1;
}

static void rec_fini(rec_t *r) {
    free(r->e);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cond);
}

static void on_entry(js_kv_watcher *w, struct js_kv_entry *e, void *ctx) {
    rec_t *r = ctx;
    pthread_mutex_lock(&r->mu);
    if (++r->inflight > r->max_inflight)
        r->max_inflight = r->inflight;
    pthread_mutex_unlock(&r->mu);
    sched_yield(); /* room for a second, overlapping call to show */
    pthread_mutex_lock(&r->mu);
    r->calls++;
    if (!r->w)
        r->w = w;
    else if (r->w != w)
        r->other_w++;
    if (!e) {
        r->markers++;
        if (r->marker_at < 0)
            r->marker_at = (long)r->n;
    } else if (r->n < REC_MAX) {
        rec_entry *x = &r->e[r->n++];
        snprintf(x->key, sizeof x->key, "%s", e->key);
        x->rev = e->revision;
        x->delta = e->delta;
        x->op = e->op;
        x->len = e->len;
        if (e->value && e->len < sizeof x->val)
            memcpy(x->val, e->value, e->len);
    }
    r->inflight--;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
    js_kv_entry_free(e);
}

static int rec_reached(rec_t *r, size_t n, int marker) {
    pthread_mutex_lock(&r->mu);
    int ok = r->n >= n && (!marker || r->marker_at >= 0);
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* Run js_dispatch() in this thread until r has n entries (and the marker
 * if asked), for at most 10 s. */
static void dispatch_until(rec_t *r, size_t n, int marker) {
    int64_t end = mono_ns() + 10 * SEC;
    while (!rec_reached(r, n, marker)) {
        ck_assert_msg(mono_ns() < end, "10 s of js_dispatch(): %zu entries, "
                      "marker after %ld; want %zu%s", r->n, r->marker_at, n,
                      marker ? " and the marker" : "");
        int rc = js_dispatch(S, 100 * MS);
        ck_assert_msg(rc >= 0, "js_dispatch: %d (%s)", rc, js_strerror(rc));
    }
}

/* Wait for dispatcher threads to give r n entries (and the marker if
 * asked), for at most 10 s. */
static void wait_until(rec_t *r, size_t n, int marker) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    while (!(r->n >= n && (!marker || r->marker_at >= 0)) && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&r->cond, &r->mu, &ts);
    size_t got = r->n;
    long m = r->marker_at;
    pthread_mutex_unlock(&r->mu);
    ck_assert_msg(got >= n && (!marker || m >= 0), "after 10 s: %zu entries, "
                  "marker after %ld; want %zu%s", got, m, n,
                  marker ? " and the marker" : "");
}

static size_t rec_calls(rec_t *r) {
    pthread_mutex_lock(&r->mu);
    size_t n = r->calls;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void rec_expect(const rec_t *r, size_t i, const want_t *w,
                       uint64_t delta) {
    const rec_entry *x = &r->e[i];
    ck_assert_msg(strcmp(x->key, w->key) == 0 && x->rev == w->rev,
                  "callback entry %zu: \"%s\" revision %" PRIu64 ", want \"%s\""
                  " revision %" PRIu64, i, x->key, x->rev, w->key, w->rev);
    ck_assert_int_eq(x->op, w->op);
    ck_assert_uint_eq(x->len, w->val ? strlen(w->val) : 0);
    if (w->val)
        ck_assert_int_eq(memcmp(x->val, w->val, x->len), 0);
    ck_assert_uint_eq(x->delta, delta);
}

static js_kv_watcher *subscribe(const char *filter, int flags, rec_t *r) {
    js_kv_watch_opts o = wopts(flags);
    js_kv_watcher *w = NULL;
    CHECK_RC(js_kv_watch_subscribe(KV, filter, &o, on_entry, r, &w), 0);
    ck_assert_ptr_nonnull(w);
    return w;
}

START_TEST(test_callback_watcher_gets_the_same_sequence_through_dispatch) {
    std_data();
    rec_t r;
    rec_init(&r);
    js_kv_watcher *w = subscribe(NULL, 0, &r);
    ck_assert_uint_eq(rec_calls(&r), 0); /* only js_dispatch() calls back */
    struct js_kv_entry *e = NULL;
    CHECK_RC(js_kv_watcher_next(w, 0, &e), JS_EINVAL);
    dispatch_until(&r, NELEM(STD_LATEST), 1);
    ck_assert_int_eq(r.marker_at, (long)NELEM(STD_LATEST));
    for (size_t i = 0; i < NELEM(STD_LATEST); i++)
        rec_expect(&r, i, &STD_LATEST[i], NELEM(STD_LATEST) - 1 - i);
    want_t u[] = {{"a", put("a", "a3"), PUT, "a3"},
                  {"b", del("b"), DEL, NULL},
                  {"g", put("g", "g1"), PUT, "g1"}};
    dispatch_until(&r, NELEM(STD_LATEST) + NELEM(u), 1);
    for (size_t i = 0; i < NELEM(u); i++) /* all three stored before */
        rec_expect(&r, NELEM(STD_LATEST) + i, &u[i], NELEM(u) - 1 - i);
    ck_assert_int_ge(js_dispatch(S, 0), 0);
    ck_assert_int_eq(r.markers, 1);
    ck_assert_uint_eq(r.n, NELEM(STD_LATEST) + NELEM(u));
    ck_assert_ptr_eq(r.w, w);
    ck_assert_int_eq(r.other_w, 0);
    ck_assert_int_eq(r.max_inflight, 1);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    rec_fini(&r);
}
END_TEST

START_TEST(test_callback_watcher_options_through_dispatch) {
    std_data();
    rec_t r1, r2;
    rec_init(&r1);
    rec_init(&r2);
    js_kv_watcher *w1 = subscribe(NULL, W_IGN | W_HIST, &r1);
    js_kv_watcher *w2 = subscribe("a", W_META | W_UPD, &r2);
    dispatch_until(&r1, NELEM(STD_ALL_VALUES), 1);
    dispatch_until(&r2, 0, 1);
    ck_assert_int_eq(r1.marker_at, (long)NELEM(STD_ALL_VALUES));
    ck_assert_int_eq(r2.marker_at, 0);
    for (size_t i = 0; i < NELEM(STD_ALL_VALUES); i++) {
        const rec_entry *x = &r1.e[i];
        ck_assert_str_eq(x->key, STD_ALL_VALUES[i].key);
        ck_assert_uint_eq(x->rev, STD_ALL_VALUES[i].rev);
    }
    ck_assert_uint_eq(r1.e[NELEM(STD_ALL_VALUES) - 1].delta, 0);
    uint64_t rd = del("a");
    uint64_t ra = put("a", "a9");
    dispatch_until(&r1, NELEM(STD_ALL_VALUES) + 1, 1);
    dispatch_until(&r2, 2, 1);
    want_t a9 = {"a", ra, PUT, "a9"};
    rec_expect(&r1, NELEM(STD_ALL_VALUES), &a9, 0); /* not the DEL */
    want_t m1 = {"a", rd, DEL, NULL}, m2 = {"a", ra, PUT, NULL};
    rec_expect(&r2, 0, &m1, 1); /* the put was stored before dispatch */
    rec_expect(&r2, 1, &m2, 0); /* meta only: no value */
    CHECK_RC(js_kv_watcher_stop(w1), 0);
    CHECK_RC(js_kv_watcher_stop(w2), 0);
    ck_assert_uint_eq(r1.n, NELEM(STD_ALL_VALUES) + 1);
    ck_assert_uint_eq(r2.n, 2);
    rec_fini(&r1);
    rec_fini(&r2);
}
END_TEST

START_TEST(test_callback_watchers_under_dispatcher_threads_are_serial_in_order) {
    enum { KEYS = 100, UPDATES = 1000 };
    char key[32], val[32];
    /* Ten updates a key: keep them all, so that a watcher that falls
     * behind still has every one to deliver (removed entries are
     * skipped). */
    js_kv_config c = JS_KV_CONFIG_INIT;
    c.bucket = "cfg";
    c.history = JS_KV_MAX_HISTORY;
    CHECK_RC(js_kv_update(S, &c), 0);
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "s.%03d", i);
        put(key, "0");
    }
    rec_t r, one;
    rec_init(&r);
    rec_init(&one);
    js_kv_watcher *w = subscribe(NULL, 0, &r);
    js_kv_watcher *w1 = subscribe("s.007", 0, &one);
    CHECK_RC(js_dispatcher_start(S, 2), 0);
    wait_until(&r, KEYS, 1);
    wait_until(&one, 1, 1);
    size_t one_updates = 0;
    for (int i = 0; i < UPDATES; i++) {
        int k = (i * 37) % KEYS;
        snprintf(key, sizeof key, "s.%03d", k);
        snprintf(val, sizeof val, "%d", i + 1);
        put(key, val);
        one_updates += k == 7;
    }
    wait_until(&r, KEYS + UPDATES, 1);
    wait_until(&one, 1 + one_updates, 1);
    CHECK_RC(js_dispatcher_stop(S), 0);
    ck_assert_int_eq(r.marker_at, KEYS);
    ck_assert_int_eq(r.markers, 1);
    ck_assert_uint_eq(r.n, KEYS + UPDATES);
    for (size_t i = 0; i < r.n; i++) {
        ck_assert_msg(r.e[i].rev == i + 1, "callback %zu: revision %" PRIu64
                      ", want %zu", i, r.e[i].rev, i + 1);
        if (i < KEYS)
            ck_assert_uint_eq(r.e[i].delta, KEYS - 1 - i);
    }
    ck_assert_int_eq(r.max_inflight, 1);
    ck_assert_int_eq(one.max_inflight, 1);
    ck_assert_int_eq(one.marker_at, 1);
    ck_assert_uint_eq(one.n, 1 + one_updates);
    for (size_t i = 0; i < one.n; i++) {
        ck_assert_str_eq(one.e[i].key, "s.007");
        if (i > 0)
            ck_assert_uint_gt(one.e[i].rev, one.e[i - 1].rev);
    }
    ck_assert_int_eq(r.other_w + one.other_w, 0);
    ck_assert_ptr_eq(r.w, w);
    ck_assert_ptr_eq(one.w, w1);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    CHECK_RC(js_kv_watcher_stop(w1), 0);
    rec_fini(&r);
    rec_fini(&one);
}
END_TEST

/* Under dispatcher threads, a callback watcher that falls behind a
 * writer (history 5: entries it has not reached are removed and skipped)
 * still ends on every key's latest value. */
START_TEST(test_callback_watcher_behind_a_writer_ends_on_every_latest_value) {
    enum { KEYS = 200, UPDATES = 3000 };
    char key[32], val[32];
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "s.%03d", i);
        put(key, "0");
    }
    rec_t r;
    rec_init(&r);
    js_kv_watcher *w = subscribe("s.>", 0, &r);
    CHECK_RC(js_dispatcher_start(S, 2), 0);
    for (int i = 0; i < UPDATES; i++) {
        snprintf(key, sizeof key, "s.%03d", (i * 7) % KEYS);
        snprintf(val, sizeof val, "%d", i + 1);
        put(key, val);
    }
    /* The sentinel is the last entry stored: once it is in, all is. */
    uint64_t end = put("s.end", "end");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_mutex_lock(&r.mu);
    while (!(r.n > 0 && r.e[r.n - 1].rev == end) && r.n < REC_MAX &&
           pthread_cond_timedwait(&r.cond, &r.mu, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&r.mu);
    CHECK_RC(js_dispatcher_stop(S), 0);
    ck_assert_msg(r.n > 0 && r.e[r.n - 1].rev == end, "the sentinel (revision"
                  " %" PRIu64 ") did not arrive: %zu entries", end, r.n);
    ck_assert_int_eq(r.max_inflight, 1);
    ck_assert_int_eq(r.markers, 1);
    uint64_t last_rev_of[KEYS] = {0};
    const char *last_val_of[KEYS] = {NULL};
    for (size_t i = 0; i < r.n; i++) {
        if (i > 0 && (long)i != r.marker_at)
            ck_assert_msg(r.e[i].rev > r.e[i - 1].rev, "callback %zu: "
                          "revision %" PRIu64 " after %" PRIu64, i,
                          r.e[i].rev, r.e[i - 1].rev);
        int k;
        if (sscanf(r.e[i].key, "s.%3d", &k) == 1 && k >= 0 && k < KEYS) {
            ck_assert_uint_gt(r.e[i].rev, last_rev_of[k]);
            last_rev_of[k] = r.e[i].rev;
            last_val_of[k] = r.e[i].val;
        }
    }
    for (int k = 0; k < KEYS; k++) {
        struct js_kv_entry *e;
        snprintf(key, sizeof key, "s.%03d", k);
        CHECK_RC(js_kv_get(KV, key, 0, &e), 0);
        ck_assert_msg(last_rev_of[k] == e->revision &&
                      strlen(last_val_of[k]) == e->len &&
                      memcmp(last_val_of[k], e->value, e->len) == 0,
                      "%s: last seen revision %" PRIu64 ", stored %" PRIu64,
                      key, last_rev_of[k], e->revision);
        js_kv_entry_free(e);
    }
    CHECK_RC(js_kv_watcher_stop(w), 0);
    rec_fini(&r);
}
END_TEST

START_TEST(test_stopped_callback_watcher_is_not_called_again) {
    rec_t r;
    rec_init(&r);
    /* Stopped before any dispatch: its pending entries never arrive. */
    std_data();
    js_kv_watcher *w = subscribe(NULL, 0, &r);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    js_dispatch(S, 0);
    ck_assert_uint_eq(rec_calls(&r), 0);
    /* Stopped after some delivery, with more stored afterwards. */
    w = subscribe(NULL, 0, &r);
    dispatch_until(&r, NELEM(STD_LATEST), 1);
    put("x", "1");
    dispatch_until(&r, NELEM(STD_LATEST) + 1, 1);
    size_t calls = rec_calls(&r);
    put("y", "1"); /* stored, not yet dispatched */
    CHECK_RC(js_kv_watcher_stop(w), 0);
    put("z", "1");
    for (int i = 0; i < 3; i++)
        ck_assert_int_ge(js_dispatch(S, 0), 0);
    ck_assert_int_ge(js_dispatch(S, 20 * MS), 0);
    ck_assert_uint_eq(rec_calls(&r), calls);
    rec_fini(&r);
}
END_TEST

START_TEST(test_stopped_callback_watcher_under_dispatcher_threads) {
    rec_t a, b;
    rec_init(&a);
    rec_init(&b);
    js_kv_watcher *wa = subscribe(NULL, 0, &a);
    js_kv_watcher *wb = subscribe(NULL, 0, &b);
    CHECK_RC(js_dispatcher_start(S, 2), 0);
    wait_until(&a, 0, 1);
    wait_until(&b, 0, 1);
    put("k", "1");
    wait_until(&a, 1, 1);
    CHECK_RC(js_kv_watcher_stop(wa), 0);
    size_t calls = rec_calls(&a);
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put(key, "v");
    }
    wait_until(&b, 101, 1); /* the dispatcher had its chance with a too */
    CHECK_RC(js_dispatcher_stop(S), 0);
    ck_assert_uint_eq(rec_calls(&a), calls);
    ck_assert_uint_eq(a.n, 1);
    ck_assert_uint_eq(b.n, 101);
    CHECK_RC(js_kv_watcher_stop(wb), 0);
    rec_fini(&a);
    rec_fini(&b);
}
END_TEST

/* ---- a deleted bucket, bad arguments --------------------------------------- */

START_TEST(test_deleted_bucket_ends_listings_and_watchers_with_errors) {
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "k.%05d", i);
        put(key, "v");
    }
    js_kv_keylist *l;
    const char *k;
    CHECK_RC(js_kv_keys(KV, NULL, &l), 0);
    CHECK_RC(js_kv_keys_next(l, &k), 1);
    ck_assert_str_eq(k, "k.00000");
    js_kv_watcher *w = watch(NULL, W_UPD);
    wmarker(w, WAIT);
    CHECK_RC(js_kv_delete(S, "cfg"), 0);
    /* A listing may hand out a batch it already holds, but never ends as
     * if it were complete. */
    int rc, i = 0;
    while ((rc = js_kv_keys_next(l, &k)) == 1 && i < 3000)
        i++;
    CHECK_RC(rc, JS_ESTREAM_NOT_FOUND);
    js_kv_keys_free(l);
    struct js_kv_entry *e = NULL;
    CHECK_RC(js_kv_watcher_next(w, 0, &e), JS_ESTREAM_NOT_FOUND);
    CHECK_RC(js_kv_watcher_stop(w), 0);
}
END_TEST

START_TEST(test_null_and_bad_arguments_are_refused) {
    put("k", "v");
    js_kv_keylist *l = NULL;
    const char *k;
    struct js_kv_entry **h = NULL, *e = NULL;
    size_t n = 0;
    uint64_t purged;
    js_kv_watcher *w = NULL;
    js_kv_watch_opts o = JS_KV_WATCH_OPTS_INIT;

    CHECK_RC(js_kv_keys(NULL, NULL, &l), JS_EMISUSE);
    CHECK_RC(js_kv_keys(KV, NULL, NULL), JS_EINVAL);
    CHECK_RC(js_kv_keys_next(NULL, &k), JS_EMISUSE);
    CHECK_RC(js_kv_keys(KV, NULL, &l), 0);
    CHECK_RC(js_kv_keys_next(l, NULL), JS_EINVAL);
    js_kv_keys_free(l);
    js_kv_keys_free(NULL);

    CHECK_RC(js_kv_history(NULL, "k", &h, &n), JS_EMISUSE);
    CHECK_RC(js_kv_history(KV, NULL, &h, &n), JS_EINVAL);
    CHECK_RC(js_kv_history(KV, "k", NULL, &n), JS_EINVAL);
    CHECK_RC(js_kv_history(KV, "k", &h, NULL), JS_EINVAL);
    CHECK_RC(js_kv_history(KV, "k.*", &h, &n), JS_EINVAL); /* not a key */
    CHECK_RC(js_kv_history(KV, "a..b", &h, &n), JS_EINVAL);
    js_kv_history_free(NULL, 0);

    CHECK_RC(js_kv_purge_deletes(NULL, 0, &purged), JS_EMISUSE);

    CHECK_RC(js_kv_watch(NULL, NULL, &o, &w), JS_EMISUSE);
    CHECK_RC(js_kv_watch(KV, NULL, &o, NULL), JS_EINVAL);
    CHECK_RC(js_kv_watch_subscribe(NULL, NULL, &o, noop_cb, NULL, &w),
             JS_EMISUSE);
    CHECK_RC(js_kv_watch_subscribe(KV, NULL, &o, NULL, NULL, &w), JS_EINVAL);
    CHECK_RC(js_kv_watch_subscribe(KV, NULL, &o, noop_cb, NULL, NULL),
             JS_EINVAL);
    CHECK_RC(js_kv_watch_subscribe(KV, "a..b", &o, noop_cb, NULL, &w),
             JS_EINVAL);
    o.version = 0;
    CHECK_RC(js_kv_watch_subscribe(KV, NULL, &o, noop_cb, NULL, &w),
             JS_EINVAL);
    o.version = JS_KV_WATCH_OPTS_VERSION;

    CHECK_RC(js_kv_watcher_next(NULL, 0, &e), JS_EMISUSE);
    CHECK_RC(js_kv_watch(KV, NULL, &o, &w), 0);
    CHECK_RC(js_kv_watcher_next(w, 0, NULL), JS_EINVAL);
    CHECK_RC(js_kv_watcher_stop(w), 0);
    CHECK_RC(js_kv_watcher_stop(NULL), 0);

    /* A handle of another kind is not taken for a watcher or a listing. */
    CHECK_RC(js_kv_watcher_next((js_kv_watcher *)KV, 0, &e), JS_EMISUSE);
    CHECK_RC(js_kv_keys_next((js_kv_keylist *)KV, &k), JS_EMISUSE);
    CHECK_RC(js_kv_watcher_stop((js_kv_watcher *)KV), JS_EMISUSE);

    /* After all that, the bucket is as it was. */
    static const char *live[] = {"k"};
    expect_keys(KV, NULL, live, NELEM(live));
}
END_TEST

static void add_tests(TCase *tc) {
    tcase_add_test(tc, test_keys_are_live_keys_in_byte_order_without_markers);
    tcase_add_test(tc, test_keys_filters_match_whole_tokens);
    tcase_add_test(tc, test_bad_filters_are_einval);
    tcase_add_test(tc, test_keys_more_than_a_batch_come_exactly_once_in_order);
    tcase_add_test(tc, test_keys_while_another_thread_puts_and_deletes);
    tcase_add_test(tc, test_keys_watch_and_history_after_reopen);
    tcase_add_test(tc, test_history_is_every_entry_oldest_first_with_markers);
    tcase_add_test(tc, test_history_after_purge_is_the_purge_marker_alone);
    tcase_add_test(tc, test_history_keeps_only_the_buckets_history);
    tcase_add_test(tc, test_purge_deletes_default_is_30_minutes);
    tcase_add_test(tc, test_purge_deletes_threshold_and_negative_removes_all);
    tcase_add_test(tc, test_purge_deletes_walks_more_markers_than_a_batch);
    tcase_add_test(tc, test_watch_default_latest_per_key_then_marker_then_updates);
    tcase_add_test(tc, test_watch_include_history_gives_every_stored_entry);
    tcase_add_test(tc, test_watch_ignore_deletes_leaves_out_markers);
    tcase_add_test(tc, test_watch_meta_only_gives_entries_without_values);
    tcase_add_test(tc, test_watch_updates_only_gives_marker_at_once_then_new_entries);
    tcase_add_test(tc, test_watch_ignore_deletes_with_include_history);
    tcase_add_test(tc, test_watch_meta_only_with_updates_only);
    tcase_add_test(tc, test_watch_every_option_combination);
    tcase_add_test(tc, test_watch_of_an_empty_bucket_gives_the_marker_at_once);
    tcase_add_test(tc, test_watch_null_opts_are_all_off_and_bad_versions_einval);
    tcase_add_test(tc, test_watch_filters_literal_star_and_gt);
    tcase_add_test(tc, test_watch_skips_entries_removed_before_it_reads_them);
    tcase_add_test(tc, test_watch_initial_deltas_count_down_to_zero);
    tcase_add_test(tc, test_watch_update_deltas_count_entries_still_pending);
    tcase_add_test(tc, test_watch_deltas_exact_while_listed_keys_are_rewritten);
    tcase_add_test(tc, test_watch_marker_comes_under_a_writer_that_never_pauses);
    tcase_add_test(tc, test_callback_watch_marker_comes_under_a_writer_that_never_pauses);
    tcase_add_test(tc, test_watcher_next_waits_for_an_entry_from_another_thread);
    tcase_add_test(tc, test_two_threads_reading_one_watcher_share_its_entries);
    tcase_add_test(tc, test_watch_of_10000_keys_under_updates_sees_every_last_value);
    tcase_add_test(tc, test_ttl_expiry_removes_keys_from_listing_and_watch);
    tcase_add_test(tc, test_callback_watcher_gets_the_same_sequence_through_dispatch);
    tcase_add_test(tc, test_callback_watcher_options_through_dispatch);
    tcase_add_test(tc, test_callback_watchers_under_dispatcher_threads_are_serial_in_order);
    tcase_add_test(tc, test_callback_watcher_behind_a_writer_ends_on_every_latest_value);
    tcase_add_test(tc, test_stopped_callback_watcher_is_not_called_again);
    tcase_add_test(tc, test_stopped_callback_watcher_under_dispatcher_threads);
    tcase_add_test(tc, test_deleted_bucket_ends_listings_and_watchers_with_errors);
    tcase_add_test(tc, test_null_and_bad_arguments_are_refused);
}

int main(void) {
    return kv_main("kv_watch", 30, add_tests);
}
