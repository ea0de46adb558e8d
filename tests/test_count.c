/*
 * test_count.c - the message store's filtered reads: exact counts
 * (jsi_ms_count), the next match (jsi_ms_next_multi) and the removal
 * observer. Every answer is checked against brute force (each sequence
 * loaded and matched), and the set of live messages against a shadow model
 * that learns of removals only through the observer, over seeded random
 * workloads on 4 KiB blocks (many blocks), across reopens with a
 * checkpoint, without one (full rebuild) and with one older than the last
 * records (replay after it). A counting backend checks which block files
 * a count or a scan reads.
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jetstream.h"
#include "msgstore_int.h"
#include "stream.h"
#include "testutil_fs.h"
#include "runner.h"

static char *base_dir; /* removed by main() */

/* ck_assert records every passing check (a write(2) each): in loops that
 * run millions of times, only failures may reach check. */
#define REQUIRE(cond, ...)              \
    do {                                \
        if (!(cond))                    \
            ck_abort_msg(__VA_ARGS__);  \
    } while (0)

/* ---- a backend that records which block files are opened for reading ---- */

#define MAX_READS 64
static js_vfs *posix;
static js_vfs countfs;
static uint64_t reads[MAX_READS];
static int nreads;

static int is_blk(const char *path) {
    size_t n = strlen(path);
    return n > 4 && strcmp(path + n - 4, ".blk") == 0;
}

/* Block loads open the file read-only; appends and flushes open it for
 * writing. */
static int c_open(js_vfs *v, const char *path, int flags, js_vfs_file *f) {
    (void)v;
    if (is_blk(path) && !(flags & JS_VFS_WRITE) && nreads < MAX_READS) {
        const char *base = strrchr(path, '/');
        reads[nreads++] = strtoull(base ? base + 1 : path, NULL, 16);
    }
    return posix->open(posix, path, flags, f);
}

static void countfs_init(void) {
    posix = js_vfs_find("posix");
    if (!posix)
        abort();
    countfs = *posix;
    countfs.name = "countfs";
    countfs.open = c_open;
}

/* ---- a store opened directly ---------------------------------------------- */

typedef struct tstore {
    char *dir;
    pthread_mutex_t mu; /* held for the whole test: the store's callers */
    int64_t clock;
    jsi_ms *ms;
} tstore;

static int64_t fake_clock(void *ctx) { return *(int64_t *)ctx; }

static void ts_open(tstore *t) {
    jsi_ms_cfg c = {&countfs, t->dir, 4096, JS_SYNC_NONE, 0,
                    fake_clock, &t->clock, &t->mu};
    int rc = jsi_ms_open(&c, 1, &t->ms);
    ck_assert_msg(rc == 0, "open %s: %s (%s)", t->dir, js_strerror(rc),
                  js_errmsg());
    rc = jsi_ms_sum_check(t->ms);
    ck_assert_msg(rc == 0, "after open: %s", js_errmsg());
}

static void ts_init(tstore *t) {
    memset(t, 0, sizeof *t);
    t->dir = tu_path("%s/s.XXXXXX", base_dir);
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_lock(&t->mu);
    t->clock = (int64_t)1700000000 * 1000000000;
    ts_open(t);
}

static void ts_close(tstore *t) {
    int rc = jsi_ms_close(t->ms);
    ck_assert_msg(rc == 0, "close: %s (%s)", js_strerror(rc), js_errmsg());
    t->ms = NULL;
}

static void ts_done(tstore *t) {
    if (t->ms)
        ts_close(t);
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_destroy(&t->mu);
    tu_rm_rf(t->dir);
    free(t->dir);
}

static char *index_path(const tstore *t) { return tu_path("%s/index", t->dir); }

/* Forget every loaded block but the tail (as the cache would under
 * pressure), so that any block a call needs shows up as a read. */
static void drop_cache(jsi_ms *ms) {
    for (size_t i = 0; i + 1 < ms->nblks; i++) {
        jsi_blk *b = ms->blks[i];
        if (!b->buf || b->f || b->wr != b->size)
            continue;
        jsi_free(b->buf);
        jsi_free(b->offs);
        b->buf = NULL;
        b->offs = NULL;
        b->cap = b->noffs = b->offs_cap = 0;
        ms->cached--;
    }
    nreads = 0;
}

static uint64_t blk_holding(jsi_ms *ms, uint64_t seq) {
    int i = jsi_ms_blk_find(ms, seq);
    return i < 0 ? 0 : ms->blks[i]->no;
}

/* ---- seeded randomness ----------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

/* ---- subjects and filters ----------------------------------------------- */

#define MAX_SEQ 40000
#define MAX_NAMES 8192
#define NAME_SLOTS (4 * MAX_NAMES)
static char *names[MAX_NAMES];
static int nnames;
static int name_slot[NAME_SLOTS]; /* id + 1, 0: empty */

/* The id of a subject name, interned on first sight. */
static int name_id(const char *s) {
    size_t i = (size_t)jsi_hash(s, strlen(s)) % NAME_SLOTS;
    for (; name_slot[i]; i = (i + 1) % NAME_SLOTS)
        if (strcmp(names[name_slot[i] - 1], s) == 0)
            return name_slot[i] - 1;
    REQUIRE(nnames < MAX_NAMES, "too many subjects");
    names[nnames] = strdup(s);
    name_slot[i] = ++nnames;
    return nnames - 1;
}

static void names_free(void) {
    for (int i = 0; i < nnames; i++)
        free(names[i]);
    nnames = 0;
    memset(name_slot, 0, sizeof name_slot);
}

/* s.<a>.<b> skewed towards a few, sometimes a fresh u.<n>, rarely r.<n>. */
static int pick_subject(void) {
    static unsigned fresh;
    char buf[32];
    uint64_t r = rnd_below(100);
    if (r < 12)
        snprintf(buf, sizeof buf, "u.%u", fresh++);
    else if (r < 14)
        snprintf(buf, sizeof buf, "r.%u", (unsigned)rnd_below(3));
    else if (r < 50)
        snprintf(buf, sizeof buf, "s.%u.%u", (unsigned)rnd_below(2),
                 (unsigned)rnd_below(3));
    else
        snprintf(buf, sizeof buf, "s.%u.%u", (unsigned)rnd_below(8),
                 (unsigned)rnd_below(8));
    return name_id(buf);
}

typedef struct fset {
    const char *f[4];
    size_t n;
} fset;

/* Valid filters, none a subset of another in its set (some overlap). */
static const fset FSETS[] = {
    {{NULL}, 0},
    {{">"}, 1},
    {{"s.3.*"}, 1},
    {{"s.*.5"}, 1},
    {{"s.0.1"}, 1},
    {{"s.>"}, 1},
    {{"u.>"}, 1},
    {{"r.*"}, 1},
    {{"s.1.*", "s.2.>"}, 2},
    {{"s.0.1", "s.7.*", "u.*"}, 3},
    {{"*.*.6", "s.2.*"}, 2},
    {{"s.4.4", "s.4.5", "s.6.0", "r.1"}, 4},
    {{"nope.>"}, 1},
    {{"nope", "s.9.9"}, 2},
};
#define NFSETS (sizeof FSETS / sizeof FSETS[0])

static int fset_match(const fset *fs, const char *subj) {
    if (fs->n == 0)
        return 1;
    for (size_t i = 0; i < fs->n; i++)
        if (jsi_subject_match(fs->f[i], strlen(fs->f[i]), subj, strlen(subj)))
            return 1;
    return 0;
}

/* ---- the shadow model, told of removals by the observer ------------------ */

static int model[MAX_SEQ + 1]; /* name id of a live message, or -1 */
static uint64_t obs_calls;
static char obs_err[256];

static void on_removed(void *ctx, uint64_t lo, uint64_t hi, const char *subj,
                       size_t slen) {
    (void)ctx;
    obs_calls++;
    if (obs_err[0])
        return;
    if (hi < lo || hi > MAX_SEQ || (subj && lo != hi)) {
        snprintf(obs_err, sizeof obs_err, "bad range [%" PRIu64 ", %" PRIu64
                 "]", lo, hi);
        return;
    }
    for (uint64_t s = lo; s <= hi; s++) {
        if (subj && model[s] < 0)
            snprintf(obs_err, sizeof obs_err, "%" PRIu64 " reported but "
                     "not live", s);
        else if (subj && (strlen(names[model[s]]) != slen ||
                          memcmp(names[model[s]], subj, slen) != 0))
            snprintf(obs_err, sizeof obs_err, "%" PRIu64 " reported as %.*s,"
                     " is %s", s, (int)slen, subj, names[model[s]]);
        model[s] = -1;
    }
}

static void model_reset(void) {
    for (size_t i = 0; i <= MAX_SEQ; i++)
        model[i] = -1;
    obs_err[0] = 0;
    obs_calls = 0;
}

/* ---- brute force ----------------------------------------------------------- */

/* The subject (name id) of every loadable message in [first, last], -1
 * elsewhere; with use_model, also checks the store against the model. */
static void brute_subjects(jsi_ms *ms, int *subj, int use_model) {
    uint64_t first = jsi_ms_first_seq(ms), last = jsi_ms_last_seq(ms);
    REQUIRE(last <= MAX_SEQ, "last %" PRIu64, last);
    for (uint64_t s = 0; s <= MAX_SEQ; s++) {
        jsi_rec r;
        char buf[300];
        subj[s] = -1;
        if (s < first || s > last || jsi_ms_load(ms, s, &r) != 0) {
            REQUIRE(!use_model || model[s] < 0 || s > last,
                          "%" PRIu64 " is live in the model, not in the store",
                          s);
            continue;
        }
        snprintf(buf, sizeof buf, "%.*s", (int)r.slen, r.subj);
        subj[s] = name_id(buf);
        REQUIRE(!use_model || model[s] == subj[s],
                      "%" PRIu64 ": store has %s, model %s", s, buf,
                      model[s] < 0 ? "nothing" : names[model[s]]);
    }
}

/* Per sequence s, for one filter set: matches at or after s, and the
 * first matching sequence at or after s (0: none). */
static int brute[MAX_SEQ + 2];
static uint64_t brute_next[MAX_SEQ + 2];

/* The starts worth asking about: the ends, random ones, block edges. */
static size_t pick_starts(jsi_ms *ms, uint64_t *st, size_t max) {
    uint64_t first = jsi_ms_first_seq(ms), last = jsi_ms_last_seq(ms);
    size_t n = 0;
    st[n++] = 0;
    st[n++] = first;
    st[n++] = first + 1;
    st[n++] = last;
    st[n++] = last + 1;
    while (n < max / 2)
        st[n++] = first + rnd_below(last - first + 2);
    for (size_t i = 0; i < ms->nblks && n + 2 <= max; i += 1 + rnd_below(8)) {
        st[n++] = ms->blks[i]->lo;
        st[n++] = ms->blks[i]->lo + 1;
    }
    return n;
}

/* Every filter set from several starts: count == brute force, reading at
 * most the block holding the start; next_multi == the first brute match. */
static void check_counts(jsi_ms *ms, int use_model) {
    static int subj[MAX_SEQ + 1];
    int rc = jsi_ms_sum_check(ms);
    REQUIRE(rc == 0, "summaries: %s", js_errmsg());
    REQUIRE(!obs_err[0], "observer: %s", obs_err);
    brute_subjects(ms, subj, use_model);
    uint64_t st[24];
    size_t nst = pick_starts(ms, st, 24);
    uint64_t first = jsi_ms_first_seq(ms);
    for (size_t k = 0; k < NFSETS; k++) {
        const fset *fs = &FSETS[k];
        brute[MAX_SEQ + 1] = 0;
        brute_next[MAX_SEQ + 1] = 0;
        for (int64_t s = MAX_SEQ; s >= 0; s--) {
            int m = subj[s] >= 0 && fset_match(fs, names[subj[s]]);
            brute[s] = brute[s + 1] + m;
            brute_next[s] = m ? (uint64_t)s : brute_next[s + 1];
        }
        for (size_t i = 0; i < nst; i++) {
            uint64_t s = st[i], got = 0, from = JSI_MAX(s, first);
            drop_cache(ms);
            rc = jsi_ms_count(ms, fs->f, fs->n, s, &got);
            REQUIRE(rc == 0, "count: %s", js_errmsg());
            uint64_t want = s > MAX_SEQ ? 0 : (uint64_t)brute[s];
            REQUIRE(got == want, "count(set %zu, from %" PRIu64
                          ") = %" PRIu64 ", brute force %" PRIu64, k, s, got,
                          want);
            REQUIRE(nreads == 0 || (nreads == 1 &&
                                          reads[0] == blk_holding(ms, from)),
                          "count(set %zu, from %" PRIu64 ") read %d blocks,"
                          " first %" PRIx64, k, s, nreads, reads[0]);
            jsi_rec r;
            rc = jsi_ms_next_multi(ms, fs->f, fs->n, s, &r);
            uint64_t want_seq = s > MAX_SEQ ? 0 : brute_next[s];
            REQUIRE(want_seq ? rc == 0 && r.seq == want_seq
                                   : rc == JS_EMSG_NOT_FOUND,
                          "next(set %zu, from %" PRIu64 "): rc %d seq %" PRIu64
                          ", want %" PRIu64, k, s, rc, rc ? 0 : r.seq,
                          want_seq);
        }
    }
}

/* ---- the random workload --------------------------------------------------- */

typedef struct wl {
    tstore t;
    int limits;              /* emulate max_msgs / max_msgs_per_subject */
    uint8_t *saved_index;    /* an older checkpoint, for replay tests */
    size_t saved_len;
    int erased_since_save;   /* an erase retires older checkpoints */
    int nreopen, reopens[4];
} wl;

static void observe(wl *w) { jsi_ms_set_observer(w->t.ms, on_removed, NULL); }

static void do_append(wl *w) {
    static uint8_t data[300];
    int id = pick_subject();
    size_t len = rnd_below(sizeof data);
    uint64_t seq = 0;
    memset(data, 'a' + id % 26, len);
    int rc = jsi_ms_append(w->t.ms, names[id], strlen(names[id]), NULL, 0,
                           data, len, w->t.clock++, 0, &seq);
    ck_assert_msg(rc == 0, "append: %s", js_errmsg());
    ck_assert_uint_le(seq, MAX_SEQ);
    model[seq] = id;
    if (!w->limits)
        return;
    /* As the stream layer does: per subject 3, then 400 in all. */
    jsi_sidx_entry *e = jsi_sidx_get(jsi_ms_sidx(w->t.ms), names[id],
                                     strlen(names[id]));
    while (e && e->count > 3) {
        ck_assert_int_eq(jsi_ms_subject_fix(w->t.ms, e), 0);
        ck_assert_int_eq(jsi_ms_remove(w->t.ms, e->first, 0), 0);
        e = jsi_sidx_get(jsi_ms_sidx(w->t.ms), names[id], strlen(names[id]));
    }
    while (jsi_ms_msgs(w->t.ms) > 400)
        ck_assert_int_eq(jsi_ms_remove_first(w->t.ms), 0);
}

static void do_remove(wl *w) {
    jsi_ms *ms = w->t.ms;
    uint64_t first = jsi_ms_first_seq(ms), last = jsi_ms_last_seq(ms);
    if (last < first)
        return;
    uint64_t s = first + rnd_below(last - first + 1);
    int erase = rnd_below(12) == 0;
    int live = model[s] >= 0;
    int rc = jsi_ms_remove(ms, s, erase);
    ck_assert_msg(rc == (live ? 0 : JS_EMSG_NOT_FOUND),
                  "remove %" PRIu64 ": %d", s, rc);
    w->erased_since_save |= erase && live;
}

static void do_purge(wl *w) {
    static const char *const filters[] = {NULL, "s.3.*", "s.*.1", "u.>",
                                          "s.2.2", "r.*"};
    jsi_ms *ms = w->t.ms;
    const char *f = filters[rnd_below(6)];
    uint64_t seq = 0, keep = 0, n = 0;
    if (rnd_below(2))
        seq = jsi_ms_first_seq(ms) +
              rnd_below(jsi_ms_last_seq(ms) - jsi_ms_first_seq(ms) + 2);
    else if (rnd_below(2))
        keep = 1 + rnd_below(20);
    if (!f && !seq && !keep && rnd_below(4))
        keep = 50; /* a full purge now and then, not every time */
    int rc = jsi_ms_purge(ms, f, seq, keep, &n);
    ck_assert_msg(rc == 0, "purge: %s", js_errmsg());
}

static void save_index(wl *w) {
    char *p = index_path(&w->t);
    free(w->saved_index);
    w->saved_index = NULL;
    if (tu_read_file(p, &w->saved_index, &w->saved_len) == 0)
        w->erased_since_save = 0;
    free(p);
}

/* Reopen one of four ways: clean close (checkpoint), close and lose the
 * checkpoint (full rebuild), crash after a sync (replay after the last
 * checkpoint), close and put back an older checkpoint (replay after it). */
static void do_reopen(wl *w) {
    int how = w->nreopen++ % 4;
    char *p = index_path(&w->t);
    if (how == 2) {
        ck_assert_int_eq(jsi_ms_commit(w->t.ms, 1), 0);
        jsi_ms_free(w->t.ms);
        w->t.ms = NULL;
    } else {
        ts_close(&w->t);
    }
    if (how == 1)
        remove(p);
    if (how == 3 && w->saved_index && !w->erased_since_save)
        ck_assert_int_eq(tu_write_file(p, w->saved_index, w->saved_len), 0);
    free(p);
    w->reopens[how]++;
    ts_open(&w->t);
    observe(w);
}

static void run_workload(uint64_t seed, int limits, int steps) {
    wl w;
    memset(&w, 0, sizeof w);
    rng_state = seed;
    model_reset();
    ts_init(&w.t);
    w.limits = limits;
    observe(&w);
    for (int i = 1; i <= steps; i++) {
        uint64_t r = rnd_below(1000);
        if (r < 600)
            do_append(&w);
        else if (r < 760)
            do_remove(&w);
        else if (r < 800 && jsi_ms_msgs(w.t.ms))
            ck_assert_int_eq(jsi_ms_remove_first(w.t.ms), 0);
        else if (r < 815)
            do_purge(&w);
        else if (r < 900)
            ck_assert_int_eq(jsi_ms_commit(w.t.ms, 0), 0);
        else if (r < 905) {
            ck_assert_int_eq(jsi_ms_commit(w.t.ms, 1), 0);
            ck_assert_int_eq(jsi_ms_checkpoint(w.t.ms), 0);
            save_index(&w);
        } else if (r < 908) {
            do_reopen(&w);
        }
        if (i % 40 == 0)
            check_counts(w.t.ms, 1);
    }
    check_counts(w.t.ms, 1);
    ck_assert_msg(obs_calls > 0, "no removal was observed");
    for (int how = 0; how < 4; how++) {
        ck_assert_msg(w.reopens[how] > 0, "reopen kind %d never ran", how);
    }
    free(w.saved_index);
    ts_done(&w.t);
    names_free();
}

START_TEST(count_and_next_match_brute_force_over_random_workloads) {
    run_workload(UINT64_C(0x9E3779B97F4A7C15) + (uint64_t)_i * 7919, 0, 5000);
}
END_TEST

START_TEST(count_and_next_match_brute_force_under_limits) {
    run_workload(UINT64_C(0xC2B2AE3D27D4EB4F) + (uint64_t)_i * 104729, 1,
                 3500);
}
END_TEST

/* ---- damaged records ------------------------------------------------------- */

/* Flip a payload byte of every k-th MSG record above sequence min in a
 * block file. */
static int damage_block(const char *path, int k, uint64_t min) {
    uint8_t *b;
    size_t n, off = JSI_BLK_HDR_LEN;
    int hit = 0, i = 0;
    ck_assert_int_eq(tu_read_file(path, &b, &n), 0);
    while (off + JSI_REC_HDR_LEN <= n) {
        jsi_rechdr h;
        if (jsi_rec_parse_hdr(b + off, n - off, &h) != 1)
            break;
        if (h.type == JSI_REC_MSG && h.seq > min &&
            h.len > JSI_REC_HDR_LEN + (uint32_t)h.subj_len && i++ % k == 0) {
            b[off + h.len - 1] ^= 0x20;
            hit++;
        }
        off += h.len;
    }
    ck_assert_int_eq(tu_write_file(path, b, n), 0);
    free(b);
    return hit;
}

/* n messages on random subjects, with some interior removals. */
static void publish_some(tstore *t, int n, int removes) {
    for (int i = 0; i < n; i++) {
        int id = pick_subject();
        uint64_t seq;
        ck_assert_int_eq(jsi_ms_append(t->ms, names[id], strlen(names[id]),
                                       NULL, 0, "payload", 7, t->clock++, 0,
                                       &seq),
                         0);
        if (removes && rnd_below(10) == 0) {
            int rc = jsi_ms_remove(t->ms, seq - rnd_below(5), 0);
            ck_assert(rc == 0 || rc == JS_EMSG_NOT_FOUND);
        }
    }
    ck_assert_int_eq(jsi_ms_commit(t->ms, 1), 0);
}

START_TEST(counts_exclude_records_found_damaged_at_open) {
    tstore t;
    rng_state = 12345;
    model_reset();
    ts_init(&t);
    publish_some(&t, 600, 1);
    ts_close(&t);
    /* Damage before the checkpoint is not seen at open (the checkpoint
     * vouches for those blocks): lose it, so the rebuild reads them. */
    char *p = index_path(&t);
    ck_assert_int_eq(remove(p), 0);
    int hit = 0;
    for (uint64_t no = 2; no < 6; no++) {
        char *bp = tu_path("%s/%016" PRIx64 ".blk", t.dir, no);
        hit += damage_block(bp, 3, 0);
        free(bp);
    }
    ck_assert_int_gt(hit, 5);
    ts_open(&t);
    jsi_ms_state st;
    jsi_ms_state_get(t.ms, &st);
    /* Some damaged ones had been removed: not lost. */
    ck_assert_uint_gt(st.lost_msgs, 0);
    ck_assert_uint_le(st.lost_msgs, (uint64_t)hit);
    check_counts(t.ms, 0);
    /* Damage after the checkpoint (the rebuild wrote one) is found by the
     * replay after it. */
    uint64_t ckpt_last = jsi_ms_last_seq(t.ms);
    publish_some(&t, 300, 1);
    jsi_ms_free(t.ms);
    t.ms = NULL;
    uint64_t last_no = 0;
    for (uint64_t no = 1; no < 1000; no++) {
        char *bp = tu_path("%s/%016" PRIx64 ".blk", t.dir, no);
        if (tu_exists(bp))
            last_no = no;
        free(bp);
    }
    char *bp = tu_path("%s/%016" PRIx64 ".blk", t.dir, last_no);
    hit = damage_block(bp, 2, ckpt_last);
    free(bp);
    ck_assert_int_gt(hit, 0);
    ts_open(&t);
    jsi_ms_state_get(t.ms, &st);
    ck_assert_uint_gt(st.lost_msgs, 0);
    check_counts(t.ms, 0);
    free(p);
    ts_done(&t);
    names_free();
}
END_TEST

/* ---- old checkpoints --------------------------------------------------------- */

/* A version 1 checkpoint (no summaries) is not trusted: the open rebuilds
 * and the counts are right. */
START_TEST(an_older_checkpoint_version_falls_back_to_a_rebuild) {
    tstore t;
    rng_state = 777;
    model_reset();
    ts_init(&t);
    publish_some(&t, 400, 1);
    ts_close(&t);
    char *p = index_path(&t);
    uint8_t *b;
    size_t n;
    ck_assert_int_eq(tu_read_file(p, &b, &n), 0);
    ck_assert_uint_eq(jsi_get32(b + 8), 2);
    jsi_put32(b + 8, 1);
    jsi_put32(b + n - 4, jsi_crc32c(0, b, n - 4));
    ck_assert_int_eq(tu_write_file(p, b, n), 0);
    nreads = 0;
    ts_open(&t);
    ck_assert_int_gt(nreads, 4); /* every block was read */
    check_counts(t.ms, 0);
    ts_close(&t);
    /* The rebuild wrote a version 2 checkpoint: the next open reads none. */
    free(b);
    ck_assert_int_eq(tu_read_file(p, &b, &n), 0);
    ck_assert_uint_eq(jsi_get32(b + 8), 2);
    nreads = 0;
    ts_open(&t);
    /* Only the tail's end, which the checkpoint checks. */
    for (int i = 0; i < nreads; i++)
        ck_assert_uint_eq(reads[i], t.ms->blks[t.ms->nblks - 1]->no);
    ck_assert_int_le(nreads, 2);
    check_counts(t.ms, 0);
    free(b);
    free(p);
    ts_done(&t);
    names_free();
}
END_TEST

/* ---- reads -------------------------------------------------------------------- */

/* Bulk traffic with a rare subject every 400 messages: a filtered scan
 * reads only the blocks holding a rare message, a count at most one. */
START_TEST(sparse_filters_read_only_blocks_holding_their_subjects) {
    tstore t;
    static uint8_t data[100];
    rng_state = 99;
    model_reset();
    ts_init(&t);
    uint64_t rare[16];
    int nrare = 0;
    for (int i = 1; i <= 6000; i++) {
        char subj[32];
        int is_rare = i % 400 == 0;
        if (is_rare)
            snprintf(subj, sizeof subj, "rare.%d", nrare % 3);
        else
            snprintf(subj, sizeof subj, "bulk.%d", i % 7);
        uint64_t seq;
        ck_assert_int_eq(jsi_ms_append(t.ms, subj, strlen(subj), NULL, 0, data,
                                       sizeof data, t.clock++, 0, &seq),
                         0);
        if (is_rare)
            rare[nrare++] = seq;
    }
    ts_close(&t);
    ts_open(&t);
    ck_assert_uint_gt(t.ms->nblks, 100);
    const char *const wild[] = {"rare.*"};
    const char *const two[] = {"rare.1", "rare.2"};
    jsi_rec r;
    for (int pass = 0; pass < 2; pass++) {
        const char *const *f = pass ? two : wild;
        size_t nf = pass ? 2 : 1;
        uint64_t s = 0;
        for (int k = 0; k < nrare; k++) {
            if (pass && k % 3 == 0)
                continue; /* rare.0 is not asked for */
            drop_cache(t.ms);
            ck_assert_int_eq(jsi_ms_next_multi(t.ms, f, nf, s, &r), 0);
            ck_assert_uint_eq(r.seq, rare[k]);
            /* The block holding the result, and the one holding the start
             * if it has an earlier match (summaries say "holds one", not
             * where). */
            for (int i = 0; i < nreads; i++)
                ck_assert_msg(reads[i] == blk_holding(t.ms, r.seq) ||
                                  reads[i] == blk_holding(t.ms, s),
                              "next from %" PRIu64 " read block %" PRIx64, s,
                              reads[i]);
            ck_assert_int_le(nreads, 2);
            uint64_t c;
            drop_cache(t.ms);
            ck_assert_int_eq(jsi_ms_count(t.ms, f, nf, s + 1, &c), 0);
            ck_assert_int_le(nreads, 1);
            s = r.seq + 1;
        }
        drop_cache(t.ms);
        ck_assert_int_eq(jsi_ms_next_multi(t.ms, f, nf, s, &r),
                         JS_EMSG_NOT_FOUND);
        ck_assert_int_eq(nreads, 0);
    }
    /* jsi_ms_next (single filter) goes the same way. */
    drop_cache(t.ms);
    ck_assert_int_eq(jsi_ms_next(t.ms, "rare.2", rare[3], &r), 0);
    ck_assert_uint_eq(r.seq, rare[5]);
    ck_assert_int_eq(nreads, 1);
    ts_done(&t);
}
END_TEST

/* ---- the observer -------------------------------------------------------------- */

typedef struct obs_log {
    uint64_t lo[64], hi[64];
    int named[64];
    int n;
} obs_log;

static void log_removed(void *ctx, uint64_t lo, uint64_t hi,
                        const char *subj, size_t slen) {
    obs_log *l = ctx;
    (void)slen;
    if (l->n < 64) {
        l->lo[l->n] = lo;
        l->hi[l->n] = hi;
        l->named[l->n] = subj != NULL;
        l->n++;
    }
}

/* A full purge is one unnamed range; removals replayed at open are not
 * reported (the reopened store has no observer until one is set). */
START_TEST(full_purge_is_reported_as_one_unnamed_range) {
    tstore t;
    obs_log l = {{0}, {0}, {0}, 0};
    rng_state = 5;
    model_reset();
    ts_init(&t);
    publish_some(&t, 50, 1);
    jsi_ms_set_observer(t.ms, log_removed, &l);
    uint64_t first = jsi_ms_first_seq(t.ms), last = jsi_ms_last_seq(t.ms), n;
    ck_assert_int_eq(jsi_ms_purge(t.ms, NULL, 0, 0, &n), 0);
    ck_assert_int_eq(l.n, 1);
    ck_assert_uint_eq(l.lo[0], first);
    ck_assert_uint_eq(l.hi[0], last);
    ck_assert_int_eq(l.named[0], 0);
    uint64_t c = 1;
    ck_assert_int_eq(jsi_ms_count(t.ms, NULL, 0, 0, &c), 0);
    ck_assert_uint_eq(c, 0);
    /* Subjects come back with new ids; their counts start over. */
    publish_some(&t, 30, 0);
    ck_assert_int_eq(jsi_ms_sum_check(t.ms), 0);
    ck_assert_int_eq(jsi_ms_count(t.ms, NULL, 0, 0, &c), 0);
    ck_assert_uint_eq(c, jsi_ms_msgs(t.ms));
    ck_assert_int_eq(jsi_ms_remove(t.ms, jsi_ms_last_seq(t.ms), 0), 0);
    ck_assert_int_eq(l.n, 2);
    ck_assert_int_eq(l.named[1], 1);
    ts_close(&t);
    ts_open(&t);
    ck_assert_int_eq(l.n, 2);
    ts_done(&t);
    names_free();
}
END_TEST

/* ---- allocation failures ---------------------------------------------------- */

/* Every allocation in turn fails inside count, next_multi (filter cache
 * builds, with more filter sets than cache slots) and append: each answers
 * JS_ENOMEM or the right thing, and the summaries stay exact. */
START_TEST(allocation_failures_leave_counts_exact) {
    tstore t;
    rng_state = 31337;
    model_reset();
    ts_init(&t);
    publish_some(&t, 400, 1);
    int enomem = 0;
    for (uint64_t n = 1; n <= 60; n++) {
        char f0[16], f1[16];
        snprintf(f0, sizeof f0, "s.%u.*", (unsigned)(n % 11));
        snprintf(f1, sizeof f1, "u.%u", (unsigned)n);
        const char *const fs[] = {f0, f1};
        uint64_t start = jsi_ms_first_seq(t.ms) + n * 3, got = 0, want = 0;
        jsi_rec r;
        uint64_t rseq;
        ck_assert_int_eq(jsi_ms_count(t.ms, fs, 2, start, &want), 0);
        int rc = jsi_ms_next_multi(t.ms, fs, 2, start, &r);
        rseq = rc == 0 ? r.seq : 0;
        for (int step = 0; step < 3; step++) {
            jsi_alloc_fail_at(n % 3 + 1, 1);
            if (step == 0)
                rc = jsi_ms_count(t.ms, fs, 2, start, &got);
            else if (step == 1)
                rc = jsi_ms_next_multi(t.ms, fs, 2, start, &r);
            else
                rc = jsi_ms_append(t.ms, "u.new", 5, NULL, 0, "x", 1,
                                   t.clock++, 0, &got);
            enomem += jsi_alloc_failed() > 0;
            jsi_alloc_fail_at(0, 0);
            ck_assert_msg(rc == 0 || rc == JS_ENOMEM ||
                              (step == 1 && rc == JS_EMSG_NOT_FOUND),
                          "step %d: %d", step, rc);
            if (rc == 0 && step == 0)
                ck_assert_uint_eq(got, want);
            if (rc == 0 && step == 1)
                ck_assert_uint_eq(r.seq, rseq);
            if (rc == JS_EMSG_NOT_FOUND)
                ck_assert_uint_eq(rseq, 0);
        }
        ck_assert_int_eq(jsi_ms_sum_check(t.ms), 0);
    }
    ck_assert_int_gt(enomem, 10);
    ts_close(&t);
    ts_open(&t);
    ts_done(&t);
    names_free();
}
END_TEST

/* ---- through the stream layer ----------------------------------------------- */

static int brute_count(jsi_ms *ms, const char *f, uint64_t start) {
    int n = 0;
    for (uint64_t s = JSI_MAX(start, jsi_ms_first_seq(ms));
         s <= jsi_ms_last_seq(ms); s++) {
        jsi_rec r;
        if (jsi_ms_load(ms, s, &r) == 0 &&
            (!f || jsi_subject_match(f, strlen(f), r.subj, r.slen)))
            n++;
    }
    return n;
}

static void stream_check(js_stream *s) {
    static const char *const fs[] = {NULL, "l.3.*", "l.*.2", "l.1.1", "l.>"};
    pthread_mutex_lock(&s->mu);
    ck_assert_int_eq(jsi_ms_sum_check(s->ms), 0);
    uint64_t first = jsi_ms_first_seq(s->ms), last = jsi_ms_last_seq(s->ms);
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < 6; i++) {
            uint64_t start = first + rnd_below(last - first + 2), c;
            ck_assert_int_eq(
                jsi_ms_count(s->ms, fs[k] ? &fs[k] : NULL, fs[k] ? 1 : 0,
                             start, &c),
                0);
            ck_assert_uint_eq(c, (uint64_t)brute_count(s->ms, fs[k], start));
        }
    pthread_mutex_unlock(&s->mu);
}

static void stream_open(const char *dir, js_store **st, js_stream **s) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.sync = JS_SYNC_NONE;
    o.block_size = 4096;
    ck_assert_int_eq(js_open(dir, &o, st), 0);
    if (js_stream_lookup(*st, "L", s) == 0)
        return;
    const char *subs[] = {"l.>"};
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "L";
    c.subjects = subs;
    c.num_subjects = 1;
    c.max_msgs = 300;
    c.max_msgs_per_subject = 4;
    ck_assert_int_eq(js_stream_add(*st, &c, s), 0);
}

/* The stream's own limits, deletes and purges keep the counts exact. */
START_TEST(stream_limits_and_purges_keep_counts_exact) {
    char *dir = tu_path("%s/stream", base_dir);
    js_store *st;
    js_stream *s;
    rng_state = 4242;
    stream_open(dir, &st, &s);
    for (int i = 1; i <= 2500; i++) {
        char subj[32];
        snprintf(subj, sizeof subj, "l.%u.%u", (unsigned)rnd_below(6),
                 (unsigned)rnd_below(6));
        js_pub_ack ack = JS_PUB_ACK_INIT;
        ck_assert_int_eq(js_publish(st, subj, NULL, 0, "x", 1, &ack), 0);
        if (rnd_below(8) == 0)
            (void)js_msg_delete(s, ack.seq - rnd_below(30));
        if (i % 500 == 0) {
            js_purge_opts po = JS_PURGE_OPTS_INIT;
            po.filter = "l.2.*";
            po.keep = 2;
            ck_assert_int_eq(js_stream_purge(s, &po, NULL), 0);
        }
        if (i % 250 == 0)
            stream_check(s);
        if (i % 800 == 0) {
            js_stream_release(s);
            ck_assert_int_eq(js_close(st), 0);
            if (i % 1600 == 0) {
                char *p = tu_path("%s/streams", dir);
                char cmd[600];
                snprintf(cmd, sizeof cmd, "rm -f %s/*/index", p);
                ck_assert_int_eq(system(cmd), 0);
                free(p);
            }
            stream_open(dir, &st, &s);
            stream_check(s);
        }
    }
    js_stream_release(s);
    ck_assert_int_eq(js_close(st), 0);
    free(dir);
}
END_TEST

static Suite *count_suite(void) {
    Suite *s = suite_create("count");
    TCase *t = tcase_create("random");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, count_and_next_match_brute_force_over_random_workloads,
                        0, 4);
    tcase_add_loop_test(t, count_and_next_match_brute_force_under_limits, 0, 2);
    suite_add_tcase(s, t);
    t = tcase_create("recovery");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, counts_exclude_records_found_damaged_at_open);
    tcase_add_test(t, an_older_checkpoint_version_falls_back_to_a_rebuild);
    suite_add_tcase(s, t);
    t = tcase_create("reads");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, sparse_filters_read_only_blocks_holding_their_subjects);
    suite_add_tcase(s, t);
    t = tcase_create("alloc");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, allocation_failures_leave_counts_exact);
    suite_add_tcase(s, t);
    t = tcase_create("observer");
    tcase_add_test(t, full_purge_is_reported_as_one_unnamed_range);
    suite_add_tcase(s, t);
    t = tcase_create("stream");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, stream_limits_and_purges_keep_counts_exact);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    /* RAM-backed when there is one: the store syncs at every checkpoint,
     * and 4 KiB blocks make many. */
    base_dir = tu_path("/dev/shm/test_count.XXXXXX");
    if (!mkdtemp(base_dir)) {
        free(base_dir);
        base_dir = tu_mkdtemp("test_count");
    }
    countfs_init();
    int failed = tu_run_suite(count_suite());
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed == 0 ? 0 : 1;
}
