/*
 * test_consumer_state.c - a durable consumer's persisted state: the
 * record codec and replay rules against a bitmap model, then the log file
 * over a private "mem" disk (torn tails at every offset, every single-bit
 * flip, damaged headers, rewrites cut short), I/O and allocation faults
 * made to happen, and a real crash on "posix".
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "consumer_state.h"
#include "testutil.h"
#include "vfs.h"
#include "runner.h"

#define DIR_ "/d"
#define NAME "c1"
#define PATH DIR_ "/" NAME
#define TMP PATH ".tmp"

static js_vfs *V; /* a private mem disk per test, holding DIR_ */

static void setup(void) {
    V = jsi_vfs_mem_new();
    ck_assert_ptr_nonnull(V);
    ck_assert_int_eq(V->mkdir(V, DIR_), 0);
}

static void teardown(void) {
    jsi_alloc_fail_at(0, 0);
    jsi_vfs_mem_free(V);
    V = NULL;
}

/* ---- small helpers ----------------------------------------------------- */

static uint64_t rng;

static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void file_put(js_vfs *vfs, const char *path, const void *p, size_t n) {
    js_vfs_file *f = NULL;

    ck_assert_int_eq(jsi_vfs_open(vfs, path, JS_VFS_WRITE | JS_VFS_CREATE, &f),
                     0);
    ck_assert_int_eq(f->io->truncate(f, 0), 0);
    if (n)
        ck_assert_int_eq(f->io->write(f, p, n, 0), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
}

/* The file's bytes into b (emptied first). */
static void file_get(js_vfs *vfs, const char *path, jsi_buf *b) {
    b->len = 0;
    ck_assert_int_eq(jsi_vfs_read_file(vfs, path, b, 1 << 30), 0);
}

static int file_exists(js_vfs *vfs, const char *path) {
    return jsi_vfs_exists(vfs, path);
}

/* Equal states, or a description of the first difference. */
static const char *st_diff(const jsi_cstate *a, const jsi_cstate *b) {
    static char msg[256];

    if (a->dlv_dseq != b->dlv_dseq || a->dlv_sseq != b->dlv_sseq ||
        a->floor_dseq != b->floor_dseq || a->floor_sseq != b->floor_sseq) {
        snprintf(msg, sizeof msg, "positions %llu %llu %llu %llu vs %llu "
                 "%llu %llu %llu", (unsigned long long)a->dlv_dseq,
                 (unsigned long long)a->dlv_sseq,
                 (unsigned long long)a->floor_dseq,
                 (unsigned long long)a->floor_sseq,
                 (unsigned long long)b->dlv_dseq,
                 (unsigned long long)b->dlv_sseq,
                 (unsigned long long)b->floor_dseq,
                 (unsigned long long)b->floor_sseq);
        return msg;
    }
    if (a->acked.n != b->acked.n ||
        (a->acked.n && memcmp(a->acked.r, b->acked.r,
                              a->acked.n * sizeof *a->acked.r) != 0)) {
        snprintf(msg, sizeof msg, "acked: %zu runs vs %zu", a->acked.n,
                 b->acked.n);
        return msg;
    }
    if (a->ncounts != b->ncounts ||
        (a->ncounts && memcmp(a->counts, b->counts,
                              a->ncounts * sizeof *a->counts) != 0)) {
        snprintf(msg, sizeof msg, "counts: %zu vs %zu", a->ncounts,
                 b->ncounts);
        return msg;
    }
    return NULL;
}

#define ST_EQ(a, b)                                                        \
    do {                                                                   \
        const char *d_ = st_diff((a), (b));                                \
        ck_assert_msg(d_ == NULL, "states differ: %s", d_);                \
    } while (0)

static void st_assert_empty(const jsi_cstate *s) {
    jsi_cstate e;

    jsi_cstate_init(&e);
    ST_EQ(s, &e);
}

/* Bytes of the header and a SNAP of the empty state: a new or repaired
 * file. */
static size_t empty_file_len(void) {
    jsi_buf b = {NULL, 0, 0};
    jsi_cstate e;
    size_t n;

    jsi_cstate_init(&e);
    ck_assert_int_eq(jsi_cstate_enc_header(&b), 0);
    ck_assert_int_eq(jsi_cstate_enc_snap(&e, &b), 0);
    n = b.len;
    jsi_buf_free(&b);
    return n;
}

/* ---- the model --------------------------------------------------------- */
/* What is done is a bitmap; positions are maxima; counts an array. The
 * canonical state derived from it is what a replay must give. */

#define MS 400 /* sequences 1..MS */

typedef struct model {
    uint64_t dd, ds, fd, fs;
    unsigned char done[MS + 2];
    uint64_t cnt[MS + 2];
} model;

static void model_state(const model *m, jsi_cstate *out) {
    uint64_t f = m->fs, s;

    jsi_cstate_free(out);
    while (f < MS && m->done[f + 1])
        f++;
    out->dlv_dseq = m->dd;
    out->dlv_sseq = m->ds;
    out->floor_dseq = m->fd;
    out->floor_sseq = f;
    for (s = f + 1; s <= MS; s++) {
        if (m->done[s])
            ck_assert_int_eq(jsi_rs_add(&out->acked, s, s), 0);
        else if (m->cnt[s] > 1)
            ck_assert_int_eq(jsi_cstate_set_count(out, s, m->cnt[s]), 0);
    }
}

/* The model becomes exactly s, as a SNAP replaces. */
static void model_set(model *m, const jsi_cstate *s) {
    memset(m, 0, sizeof *m);
    m->dd = s->dlv_dseq;
    m->ds = s->dlv_sseq;
    m->fd = s->floor_dseq;
    m->fs = s->floor_sseq;
    for (size_t i = 0; i < s->acked.n; i++)
        for (uint64_t v = s->acked.r[i].lo; v <= s->acked.r[i].hi; v++)
            m->done[v] = 1;
    for (size_t i = 0; i < s->ncounts; i++)
        m->cnt[s->counts[i].sseq] = s->counts[i].n;
}

/* A random, not normalised state within 1..MS: acks below the floor,
 * counts of 0 or 1, counts of done messages. Counts are added raw (in
 * order) so that n <= 1 entries survive into the SNAP. */
static void random_state(jsi_cstate *s) {
    uint64_t seq = 0;

    jsi_cstate_free(s);
    s->floor_sseq = rnd() % (MS / 2);
    s->floor_dseq = rnd() % 300;
    s->dlv_sseq = s->floor_sseq + rnd() % (MS / 2);
    s->dlv_dseq = s->floor_dseq + rnd() % 300;
    for (int i = rnd() % 30; i > 0; i--) {
        uint64_t lo = 1 + rnd() % (MS - 10);
        ck_assert_int_eq(jsi_rs_add(&s->acked, lo, lo + rnd() % 8), 0);
    }
    s->counts = jsi_calloc(MS, sizeof *s->counts);
    s->counts_cap = MS;
    for (;;) {
        seq += 1 + rnd() % 25;
        if (seq > MS)
            break;
        s->counts[s->ncounts].sseq = seq;
        s->counts[s->ncounts++].n = rnd() % 6;
    }
}

/* ---- a generated log ----------------------------------------------------- */

#define MAXREC 64

typedef struct glog {
    jsi_buf img;              /* header and records */
    size_t nrec;
    size_t ends[MAXREC + 1];  /* ends[i]: end of record i (ends[0]: header) */
    jsi_cstate st[MAXREC + 1]; /* the state after i records */
    model m;                  /* after all of them */
} glog;

static void gen_acks(model *m, jsi_buf *b) {
    uint64_t v[4], done[12];
    size_t n = rnd() % 12;

    /* Mostly forward, now and then an older (lower) position. */
    v[0] = rnd() % 5 ? m->dd + rnd() % 7 : rnd() % (m->dd + 1);
    v[1] = rnd() % 5 ? JSI_MIN(MS, m->ds + rnd() % 9) : rnd() % (m->ds + 1);
    v[2] = rnd() % 5 ? m->fd + rnd() % 3 : rnd() % (m->fd + 1);
    v[3] = rnd() % 5 ? JSI_MIN(MS, m->fs + rnd() % 3) : rnd() % (m->fs + 1);
    for (size_t i = 0; i < n; i++)
        done[i] = i && rnd() % 4 == 0 ? done[i - 1]
                                      : 1 + (m->fs + rnd() % 40) % MS;
    ck_assert_int_eq(jsi_cstate_enc_acks(v[0], v[1], v[2], v[3], done, n, b),
                     0);
    m->dd = JSI_MAX(m->dd, v[0]);
    m->ds = JSI_MAX(m->ds, v[1]);
    m->fd = JSI_MAX(m->fd, v[2]);
    m->fs = JSI_MAX(m->fs, v[3]);
    for (size_t i = 0; i < n; i++)
        m->done[done[i]] = 1;
}

static void gen_count(model *m, jsi_buf *b) {
    uint64_t s = 1 + (m->fs + rnd() % 50) % MS, n = rnd() % 6;

    ck_assert_int_eq(jsi_cstate_enc_count(s, n, b), 0);
    m->cnt[s] = n;
}

static void gen_snap(model *m, jsi_buf *b) {
    jsi_cstate s;

    jsi_cstate_init(&s);
    random_state(&s);
    ck_assert_int_eq(jsi_cstate_enc_snap(&s, b), 0);
    model_set(m, &s);
    jsi_cstate_free(&s);
}

/* nrec records of every kind, with the state expected after each. */
static void glog_make(glog *g, uint64_t seed, size_t nrec) {
    memset(g, 0, sizeof *g);
    rng = seed;
    ck_assert_uint_le(nrec, MAXREC);
    ck_assert_int_eq(jsi_cstate_enc_header(&g->img), 0);
    g->ends[0] = g->img.len;
    model_state(&g->m, &g->st[0]);
    for (size_t i = 1; i <= nrec; i++) {
        unsigned k = rnd() % 10;
        if (k < 6)
            gen_acks(&g->m, &g->img);
        else if (k < 9)
            gen_count(&g->m, &g->img);
        else
            gen_snap(&g->m, &g->img);
        g->ends[i] = g->img.len;
        model_state(&g->m, &g->st[i]);
    }
    g->nrec = nrec;
}

static void glog_free(glog *g) {
    jsi_buf_free(&g->img);
    for (size_t i = 0; i <= g->nrec; i++)
        jsi_cstate_free(&g->st[i]);
}

/* Records wholly within the first n bytes. */
static size_t glog_whole(const glog *g, size_t n) {
    size_t k = 0;

    while (k < g->nrec && g->ends[k + 1] <= n)
        k++;
    return k;
}

/* Open PATH on vfs and compare with want. */
static jsi_cslog *open_expect(js_vfs *vfs, const jsi_cstate *want) {
    jsi_cstate st;
    jsi_cslog *l = NULL;

    jsi_cstate_init(&st);
    ck_assert_int_eq(jsi_cslog_open(vfs, DIR_, NAME, &st, &l), 0);
    ck_assert_ptr_nonnull(l);
    ST_EQ(&st, want);
    jsi_cstate_free(&st);
    return l;
}

/* ====================================================================== */
/* Codec                                                                  */
/* ====================================================================== */

static void round_trip(const jsi_cstate *s) {
    jsi_buf b = {NULL, 0, 0};
    jsi_cstate out;
    size_t good = 1;

    jsi_cstate_init(&out);
    ck_assert_int_eq(jsi_cstate_enc_header(&b), 0);
    ck_assert_int_eq(jsi_cstate_enc_snap(s, &b), 0);
    ck_assert_int_eq(jsi_cstate_replay(b.p, b.len, &out, &good), 0);
    ck_assert_uint_eq(good, b.len);
    ST_EQ(&out, s);
    jsi_cstate_free(&out);
    jsi_buf_free(&b);
}

START_TEST(snap_round_trips_empty_and_small_states) {
    jsi_cstate s;

    jsi_cstate_init(&s);
    round_trip(&s);
    s.dlv_dseq = 12;
    s.dlv_sseq = 40;
    s.floor_dseq = 7;
    s.floor_sseq = 20;
    ck_assert_int_eq(jsi_rs_add(&s.acked, 22, 25), 0);
    ck_assert_int_eq(jsi_rs_add(&s.acked, 30, 30), 0);
    ck_assert_int_eq(jsi_cstate_set_count(&s, 21, 3), 0);
    ck_assert_int_eq(jsi_cstate_set_count(&s, 40, 2), 0);
    round_trip(&s);
    jsi_cstate_free(&s);
}
END_TEST

/* 20,000 runs and 10,000 counts spread up to 2^64 - 1, positions at the
 * top of the range: every varint width. */
START_TEST(snap_round_trips_large_rangesets_and_counts) {
    jsi_cstate s;
    uint64_t v = 1001; /* not floor + 1, which the floor would absorb */

    jsi_cstate_init(&s);
    s.dlv_dseq = UINT64_MAX;
    s.dlv_sseq = UINT64_MAX;
    s.floor_dseq = UINT64_MAX - 1;
    s.floor_sseq = 999;
    for (int i = 0; i < 20000; i++) {
        uint64_t step = (uint64_t)1 << (i % 40);
        ck_assert_int_eq(jsi_rs_add(&s.acked, v, v + i % 5), 0);
        if (i % 2 == 0 && s.ncounts < 10000)
            ck_assert_int_eq(jsi_cstate_set_count(&s, v + i % 5 + 1,
                                                  2 + ((uint64_t)i << 40)), 0);
        v += i % 5 + 2 + step;
    }
    ck_assert_int_eq(jsi_rs_add(&s.acked, UINT64_MAX - 3, UINT64_MAX), 0);
    ck_assert_uint_eq(s.acked.n, 20001);
    ck_assert_uint_eq(s.ncounts, 10000);
    round_trip(&s);
    jsi_cstate_free(&s);
}
END_TEST

/* The done list may come in any order, with repeats; it is stored as
 * merged runs. */
START_TEST(acks_encoder_sorts_merges_and_drops_repeats) {
    const uint64_t done[] = {5, 3, 4, 4, 10, 9, 100, UINT64_MAX,
                             UINT64_MAX - 1, 3};
    jsi_buf b = {NULL, 0, 0};
    jsi_rangeset rs = JSI_RANGESET_INIT;
    jsi_cstate out;
    size_t good, used;
    uint64_t v;

    jsi_cstate_init(&out);
    ck_assert_int_eq(jsi_cstate_enc_header(&b), 0);
    ck_assert_int_eq(jsi_cstate_enc_acks(1, 2, 0, 0, done, 10, &b), 0);
    ck_assert_uint_eq(b.p[16 + 8], JSI_CSREC_ACKS);
    /* Payload: four one-byte positions, then the runs. */
    ck_assert_int_eq(jsi_rs_decode(&rs, b.p + 16 + 9 + 4, b.len - 29, &used),
                     0);
    ck_assert_uint_eq(used, b.len - 29);
    ck_assert_uint_eq(rs.n, 4);
    ck_assert_uint_eq(jsi_rs_total(&rs), 3 + 2 + 1 + 2);
    ck_assert_int_eq(jsi_cstate_replay(b.p, b.len, &out, &good), 0);
    ck_assert_uint_eq(good, b.len);
    ck_assert_uint_eq(out.acked.n, 4);
    ck_assert_uint_eq(out.acked.r[0].lo, 3);
    ck_assert_uint_eq(out.acked.r[0].hi, 5);
    ck_assert_uint_eq(out.acked.r[3].lo, UINT64_MAX - 1);
    ck_assert_uint_eq(out.acked.r[3].hi, UINT64_MAX);
    ck_assert_uint_eq(jsi_uvarint_get(b.p + 25, 1, &v), 1);
    ck_assert_uint_eq(v, 1);
    jsi_rs_free(&rs);
    jsi_cstate_free(&out);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(encoders_refuse_sequence_zero_and_leave_the_buffer) {
    const uint64_t done[] = {4, 0};
    jsi_buf b = {NULL, 0, 0};
    jsi_cstate s;

    jsi_cstate_init(&s);
    ck_assert_int_eq(jsi_cstate_enc_header(&b), 0);
    ck_assert_int_eq(jsi_cstate_enc_acks(1, 1, 0, 0, done, 2, &b), JS_EINVAL);
    ck_assert_int_eq(jsi_cstate_enc_count(0, 3, &b), JS_EINVAL);
    ck_assert_int_eq(jsi_cstate_set_count(&s, 0, 3), JS_EINVAL);
    /* Counts out of order (built by hand) cannot be encoded as deltas. */
    s.counts = jsi_calloc(2, sizeof *s.counts);
    s.counts_cap = 2;
    s.ncounts = 2;
    s.counts[0].sseq = 9;
    s.counts[1].sseq = 9;
    ck_assert_int_eq(jsi_cstate_enc_snap(&s, &b), JS_EINVAL);
    ck_assert_uint_eq(b.len, JSI_CSTATE_HDR_LEN);
    /* An empty done list is a positions-only record. */
    ck_assert_int_eq(jsi_cstate_enc_acks(1, 1, 0, 0, NULL, 0, &b), 0);
    jsi_cstate_free(&s);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(set_count_keeps_counts_sorted_and_copy_is_deep) {
    jsi_cstate s, c;
    uint64_t order[] = {50, 10, 30, 20, 40, 10, 60};

    jsi_cstate_init(&s);
    jsi_cstate_init(&c);
    for (size_t i = 0; i < 7; i++)
        ck_assert_int_eq(jsi_cstate_set_count(&s, order[i], i + 2), 0);
    ck_assert_uint_eq(s.ncounts, 6);
    for (size_t i = 0; i < 6; i++)
        ck_assert_uint_eq(s.counts[i].sseq, 10 * (i + 1));
    ck_assert_uint_eq(s.counts[0].n, 7); /* the second set of 10 */
    ck_assert_int_eq(jsi_cstate_set_count(&s, 30, 1), 0);
    ck_assert_int_eq(jsi_cstate_set_count(&s, 35, 0), 0);
    ck_assert_uint_eq(s.ncounts, 5);
    ck_assert_uint_eq(s.counts[2].sseq, 40);
    ck_assert_int_eq(jsi_rs_add(&s.acked, 7, 9), 0);
    ck_assert_int_eq(jsi_cstate_copy(&s, &c), 0);
    ST_EQ(&c, &s);
    ck_assert_ptr_ne(c.counts, s.counts);
    ck_assert_ptr_ne(c.acked.r, s.acked.r);
    jsi_cstate_free(&s);
    ck_assert_uint_eq(c.acked.r[0].lo, 7);
    jsi_cstate_free(&c);
    jsi_cstate_free(NULL);
}
END_TEST

/* ====================================================================== */
/* Replay rules                                                           */
/* ====================================================================== */

/* Replay b (header included) and demand it is valid throughout. */
static void replay_all(const jsi_buf *b, jsi_cstate *out) {
    size_t good = 0;

    ck_assert_int_eq(jsi_cstate_replay(b->p, b->len, out, &good), 0);
    ck_assert_uint_eq(good, b->len);
}

START_TEST(acks_unite_and_positions_keep_their_largest_value) {
    const uint64_t a[] = {10, 12}, b2[] = {11, 20};
    jsi_buf b = {NULL, 0, 0};
    jsi_cstate s;

    jsi_cstate_init(&s);
    ck_assert_int_eq(jsi_cstate_enc_header(&b), 0);
    ck_assert_int_eq(jsi_cstate_enc_acks(30, 25, 4, 5, a, 2, &b), 0);
    /* An older record arriving later moves nothing back. */
    ck_assert_int_eq(jsi_cstate_enc_acks(28, 21, 3, 2, b2, 2, &b), 0);
    replay_all(&b, &s);
    ck_assert_uint_eq(s.dlv_dseq, 30);
    ck_assert_uint_eq(s.dlv_sseq, 25);
    ck_assert_uint_eq(s.floor_dseq, 4);
    ck_assert_uint_eq(s.floor_sseq, 5);
    ck_assert_uint_eq(s.acked.n, 2);
    ck_assert_uint_eq(s.acked.r[0].lo, 10);
    ck_assert_uint_eq(s.acked.r[0].hi, 12);
    ck_assert_uint_eq(s.acked.r[1].lo, 20);
    jsi_cstate_free(&s);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(snap_replaces_everything_before_it) {
    const uint64_t a[] = {3, 8};
    jsi_buf b = {NULL, 0, 0};
    jsi_cstate s, snap;

    jsi_cstate_init(&s);
    jsi_cstate_init(&snap);
    snap.dlv_dseq = 2;
    snap.dlv_sseq = 9;
    snap.floor_sseq = 1;
    ck_assert_int_eq(jsi_rs_add(&snap.acked, 5, 5), 0);
    ck_assert_int_eq(jsi_cstate_enc_header(&b), 0);
    ck_assert_int_eq(jsi_cstate_enc_acks(90, 90, 80, 80, a, 2, &b), 0);
    ck_assert_int_eq(jsi_cstate_enc_count(85, 4, &b), 0);
    ck_assert_int_eq(jsi_cstate_enc_snap(&snap, &b), 0);
    replay_all(&b, &s);
    ST_EQ(&s, &snap); /* lower positions than the ACKS: a reset */
    ck_assert_int_eq(jsi_cstate_enc_count(7, 3, &b), 0);
    replay_all(&b, &s);
    ck_assert_uint_eq(s.ncounts, 1);
    ck_assert_uint_eq(s.counts[0].sseq, 7);
    jsi_cstate_free(&s);
    jsi_cstate_free(&snap);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(load_advances_the_floor_and_drops_what_it_covers) {
    jsi_buf b = {NULL, 0, 0};
    jsi_cstate s;
    uint64_t done[] = {11, 12, 13, 15, 4};

    jsi_cstate_init(&s);
    ck_assert_int_eq(jsi_cstate_enc_header(&b), 0);
    ck_assert_int_eq(jsi_cstate_enc_count(4, 5, &b), 0);  /* <= floor */
    ck_assert_int_eq(jsi_cstate_enc_count(12, 2, &b), 0); /* done */
    ck_assert_int_eq(jsi_cstate_enc_count(14, 3, &b), 0); /* kept */
    ck_assert_int_eq(jsi_cstate_enc_count(16, 1, &b), 0); /* once: implied */
    ck_assert_int_eq(jsi_cstate_enc_acks(20, 20, 6, 10, done, 5, &b), 0);
    replay_all(&b, &s);
    ck_assert_uint_eq(s.floor_sseq, 13);
    ck_assert_uint_eq(s.floor_dseq, 6); /* which dseq is unknown: kept */
    ck_assert_uint_eq(s.acked.n, 1);
    ck_assert_uint_eq(s.acked.r[0].lo, 15);
    ck_assert_uint_eq(s.ncounts, 1);
    ck_assert_uint_eq(s.counts[0].sseq, 14);
    ck_assert_uint_eq(s.counts[0].n, 3);
    /* 14 done too: the floor runs through 15. */
    done[0] = 14;
    ck_assert_int_eq(jsi_cstate_enc_acks(20, 20, 6, 10, done, 1, &b), 0);
    replay_all(&b, &s);
    ck_assert_uint_eq(s.floor_sseq, 15);
    ck_assert_uint_eq(s.acked.n, 0);
    ck_assert_uint_eq(s.ncounts, 0);
    jsi_cstate_free(&s);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(floor_reaches_the_last_sequence) {
    const uint64_t done[] = {UINT64_MAX};
    jsi_buf b = {NULL, 0, 0};
    jsi_cstate s;

    jsi_cstate_init(&s);
    ck_assert_int_eq(jsi_cstate_enc_header(&b), 0);
    ck_assert_int_eq(jsi_cstate_enc_acks(1, 1, 1, UINT64_MAX - 1, done, 1,
                                         &b), 0);
    replay_all(&b, &s);
    ck_assert_uint_eq(s.floor_sseq, UINT64_MAX);
    ck_assert_uint_eq(s.acked.n, 0);
    ck_assert_int_eq(jsi_cstate_enc_acks(1, 1, 1, UINT64_MAX, NULL, 0, &b), 0);
    replay_all(&b, &s);
    ck_assert_uint_eq(s.floor_sseq, UINT64_MAX);
    jsi_cstate_free(&s);
    jsi_buf_free(&b);
}
END_TEST

/* Replace the last record's payload (from offset `at` of b) with p[0..n)
 * and a valid length and CRC: well-formed framing around bad content. */
static void reframe(jsi_buf *b, size_t at, uint8_t type, const void *p,
                    size_t n) {
    b->len = at;
    ck_assert_int_eq(jsi_buf_reserve(b, JSI_CSREC_HDR_LEN + n), 0);
    jsi_put32(b->p + at, (uint32_t)n);
    b->p[at + 8] = type;
    memcpy(b->p + at + 9, p, n);
    jsi_put32(b->p + at + 4, jsi_crc32c(0, b->p + at + 8, 1 + n));
    b->len = at + JSI_CSREC_HDR_LEN + n;
}

/* Records with a valid CRC but content that does not decode end the log
 * just as damage does. */
START_TEST(well_framed_nonsense_ends_the_log) {
    static const struct {
        uint8_t type;
        uint8_t len;
        uint8_t p[16];
    } bad[] = {
        {9, 2, {5, 5}},                       /* unknown type */
        {JSI_CSREC_COUNT, 3, {5, 5, 0}},      /* a stray byte */
        {JSI_CSREC_COUNT, 2, {0, 5}},         /* sequence 0 */
        {JSI_CSREC_COUNT, 3, {0x85, 0, 5}},   /* non-minimal varint */
        {JSI_CSREC_COUNT, 1, {5}},            /* cut short */
        {JSI_CSREC_ACKS, 5, {1, 1, 1, 1, 0x80}}, /* bad run count */
        {JSI_CSREC_ACKS, 7, {1, 1, 1, 1, 1, 0, 0}}, /* run from 0 */
        {JSI_CSREC_ACKS, 9, {1, 1, 1, 1, 2, 1, 1, 1, 0}}, /* touching */
        {JSI_CSREC_SNAP, 6, {1, 1, 1, 1, 0, 9}}, /* 9 counts, no room */
        {JSI_CSREC_SNAP, 8, {1, 1, 1, 1, 0, 1, 0, 2}}, /* count at 0 */
        {JSI_CSREC_SNAP, 10, {1, 1, 1, 1, 0, 2, 3, 2, 0, 2}}, /* repeat */
        {JSI_CSREC_SNAP, 0, {0}},             /* empty */
    };
    jsi_buf b = {NULL, 0, 0};
    jsi_cstate s, want;
    size_t at, good;

    jsi_cstate_init(&s);
    jsi_cstate_init(&want);
    ck_assert_int_eq(jsi_cstate_enc_header(&b), 0);
    ck_assert_int_eq(jsi_cstate_enc_count(3, 4, &b), 0);
    at = b.len;
    ck_assert_int_eq(jsi_cstate_set_count(&want, 3, 4), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reframe(&b, at, bad[i].type, bad[i].p, bad[i].len);
        ck_assert_int_eq(jsi_cstate_enc_count(4, 4, &b), 0); /* after it */
        ck_assert_int_eq(jsi_cstate_replay(b.p, b.len, &s, &good), 0);
        ck_assert_msg(good == at, "case %zu: good %zu, want %zu", i, good, at);
        ST_EQ(&s, &want);
    }
    /* The same framing with good content is accepted (the cases above
     * fail for their content, not their framing). */
    reframe(&b, at, JSI_CSREC_COUNT, (const uint8_t[]){5, 5}, 2);
    ck_assert_int_eq(jsi_cstate_replay(b.p, b.len, &s, &good), 0);
    ck_assert_uint_eq(good, b.len);
    jsi_cstate_free(&s);
    jsi_cstate_free(&want);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(a_bad_header_replays_as_the_empty_state) {
    jsi_buf b = {NULL, 0, 0};
    jsi_cstate s;
    size_t good = 99;

    jsi_cstate_init(&s);
    ck_assert_int_eq(jsi_cstate_enc_header(&b), 0);
    replay_all(&b, &s);
    st_assert_empty(&s);
    ck_assert_int_eq(jsi_cstate_enc_count(3, 4, &b), 0);
    replay_all(&b, &s);
    ck_assert_uint_eq(s.ncounts, 1);
    b.p[1] ^= 1; /* magic */
    ck_assert_int_eq(jsi_cstate_replay(b.p, b.len, &s, &good), JS_ECORRUPT);
    ck_assert_uint_eq(good, 0);
    st_assert_empty(&s);
    b.p[1] ^= 1;
    b.p[4] = 2; /* a version from the future */
    ck_assert_int_eq(jsi_cstate_replay(b.p, b.len, &s, &good), JS_ECORRUPT);
    b.p[4] = 1;
    b.p[12] = 0xff; /* reserved: ignored */
    replay_all(&b, &s);
    ck_assert_uint_eq(s.ncounts, 1);
    ck_assert_int_eq(jsi_cstate_replay(b.p, 15, &s, &good), JS_ECORRUPT);
    ck_assert_int_eq(jsi_cstate_replay(NULL, 0, &s, &good), JS_ECORRUPT);
    st_assert_empty(&s);
    jsi_cstate_free(&s);
    jsi_buf_free(&b);
}
END_TEST

/* The model and the replay agree after every record of many logs, and a
 * replay of the records in any split gives the same state. */
START_TEST(replay_matches_the_model_record_by_record) {
    glog g;
    jsi_cstate s;

    jsi_cstate_init(&s);
    for (uint64_t seed = 1; seed <= 40; seed++) {
        glog_make(&g, seed * 0x9E3779B97F4A7C15ull, MAXREC);
        for (size_t i = 0; i <= g.nrec; i++) {
            size_t good;
            ck_assert_int_eq(jsi_cstate_replay(g.img.p, g.ends[i], &s, &good),
                             0);
            ck_assert_uint_eq(good, g.ends[i]);
            ST_EQ(&s, &g.st[i]);
        }
        glog_free(&g);
    }
    jsi_cstate_free(&s);
}
END_TEST

/* Every single-bit flip in every record: the replay is exactly the
 * records before the damaged one (CRC-32C catches every one-bit error;
 * a flipped length makes the CRC cover other bytes). */
START_TEST(every_bit_flip_in_a_record_gives_a_prefix_state) {
    glog g;
    jsi_cstate s;
    uint8_t *copy;

    jsi_cstate_init(&s);
    glog_make(&g, 7, 40);
    copy = malloc(g.img.len);
    for (size_t off = g.ends[0]; off < g.img.len; off++) {
        size_t k = glog_whole(&g, off), good;
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, g.img.p, g.img.len);
            copy[off] ^= (uint8_t)(1u << bit);
            ck_assert_int_eq(jsi_cstate_replay(copy, g.img.len, &s, &good), 0);
            ck_assert_msg(good == g.ends[k], "flip %zu.%d: good %zu, want %zu",
                          off, bit, good, g.ends[k]);
            ST_EQ(&s, &g.st[k]);
        }
    }
    free(copy);
    glog_free(&g);
    jsi_cstate_free(&s);
}
END_TEST

/* ====================================================================== */
/* The log file                                                           */
/* ====================================================================== */

START_TEST(a_new_log_is_created_whole_and_reopens_empty) {
    jsi_cstate e;
    jsi_cslog *l;
    uint64_t cut = 9;

    jsi_cstate_init(&e);
    ck_assert_int_eq(file_exists(V, PATH), 0);
    l = open_expect(V, &e);
    ck_assert_int_eq(jsi_cslog_damage(l, &cut), 0);
    ck_assert_uint_eq(cut, 0);
    ck_assert_uint_eq(jsi_cslog_size(l), empty_file_len());
    jsi_cslog_close(l);
    ck_assert_int_eq(file_exists(V, PATH), 1);
    ck_assert_int_eq(file_exists(V, TMP), 0);
    l = open_expect(V, &e);
    ck_assert_int_eq(jsi_cslog_damage(l, NULL), 0);
    jsi_cslog_close(l);
    jsi_cslog_close(NULL);
}
END_TEST

START_TEST(open_needs_an_existing_directory_and_arguments) {
    jsi_cstate s;
    jsi_cslog *l = (jsi_cslog *)&s;

    jsi_cstate_init(&s);
    ck_assert_int_eq(jsi_cslog_open(V, "/nodir", NAME, &s, &l), JS_ENOTFOUND);
    ck_assert_ptr_null(l);
    ck_assert_int_eq(jsi_cslog_open(NULL, DIR_, NAME, &s, &l), JS_EINVAL);
    ck_assert_int_eq(jsi_cslog_open(V, DIR_, NAME, NULL, &l), JS_EINVAL);
    ck_assert_int_eq(jsi_cslog_open(V, DIR_, NAME, &s, NULL), JS_EINVAL);
}
END_TEST

/* Appends in batches of a few records, synced, closed, reopened: the
 * same state, and no bytes cut. */
START_TEST(appended_records_survive_a_reopen) {
    glog g;
    jsi_cstate st;
    jsi_cslog *l;
    size_t at;
    uint64_t cut;

    jsi_cstate_init(&st);
    glog_make(&g, 11, MAXREC);
    ck_assert_int_eq(jsi_cslog_open(V, DIR_, NAME, &st, &l), 0);
    at = g.ends[0];
    for (size_t i = 3; i <= g.nrec + 2; i += 3) {
        size_t end = g.ends[JSI_MIN(i, g.nrec)];
        ck_assert_int_eq(jsi_cslog_append(l, g.img.p + at, end - at), 0);
        ck_assert_int_eq(jsi_cslog_sync(l), 0);
        at = end;
    }
    ck_assert_int_eq(jsi_cslog_append(l, "", 0), 0);
    ck_assert_uint_eq(jsi_cslog_size(l),
                      empty_file_len() + g.img.len - g.ends[0]);
    jsi_cslog_close(l);
    l = open_expect(V, &g.st[g.nrec]);
    ck_assert_int_eq(jsi_cslog_damage(l, &cut), 0);
    ck_assert_uint_eq(cut, 0);
    jsi_cslog_close(l);
    jsi_cstate_free(&st);
    glog_free(&g);
}
END_TEST

/* The file cut at every byte offset: open succeeds with the records
 * wholly before the cut, the file is truncated to them, and appends go on
 * from there. A cut inside the header is a damaged header. */
START_TEST(a_torn_tail_is_cut_at_every_offset) {
    jsi_buf got = {NULL, 0, 0};
    jsi_buf rec = {NULL, 0, 0};
    jsi_cstate want;
    jsi_cslog *l;
    glog g;
    uint64_t cut;

    jsi_cstate_init(&want);
    glog_make(&g, 23, 48);
    ck_assert_int_eq(jsi_cstate_enc_count(MS + 1, 9, &rec), 0);
    for (size_t n = 0; n <= g.img.len; n++) {
        size_t k = glog_whole(&g, n);
        int hdr = n < g.ends[0];
        file_put(V, PATH, g.img.p, n);
        l = open_expect(V, &g.st[hdr ? 0 : k]);
        ck_assert_int_eq(jsi_cslog_damage(l, &cut), hdr ? JS_ECORRUPT : 0);
        ck_assert_uint_eq(cut, hdr ? 0 : n - g.ends[k]);
        file_get(V, PATH, &got);
        if (hdr) {
            ck_assert_uint_eq(got.len, empty_file_len());
        } else {
            ck_assert_uint_eq(got.len, g.ends[k]);
            ck_assert_int_eq(memcmp(got.p, g.img.p, got.len), 0);
        }
        ck_assert_uint_eq(jsi_cslog_size(l), got.len);
        /* An append after the cut is read back after the good records. */
        ck_assert_int_eq(jsi_cslog_append(l, rec.p, rec.len), 0);
        jsi_cslog_close(l);
        ck_assert_int_eq(jsi_cstate_copy(&g.st[hdr ? 0 : k], &want), 0);
        ck_assert_int_eq(jsi_cstate_set_count(&want, MS + 1, 9), 0);
        jsi_cslog_close(open_expect(V, &want));
    }
    jsi_buf_free(&got);
    jsi_buf_free(&rec);
    jsi_cstate_free(&want);
    glog_free(&g);
}
END_TEST

/* Every bit flip in every record of a file: open gives the prefix state
 * and cuts the file there, and a reopen agrees. */
START_TEST(every_bit_flip_in_a_file_opens_as_a_prefix) {
    jsi_buf img = {NULL, 0, 0};
    jsi_cslog *l;
    glog g;
    uint64_t cut;

    glog_make(&g, 31, 24);
    ck_assert_int_eq(jsi_buf_append(&img, g.img.p, g.img.len), 0);
    for (size_t off = g.ends[0]; off < g.img.len; off++) {
        size_t k = glog_whole(&g, off);
        for (int bit = 0; bit < 8; bit++) {
            img.p[off] ^= (uint8_t)(1u << bit);
            file_put(V, PATH, img.p, img.len);
            img.p[off] ^= (uint8_t)(1u << bit);
            l = open_expect(V, &g.st[k]);
            ck_assert_int_eq(jsi_cslog_damage(l, &cut), 0);
            ck_assert_uint_eq(cut, g.img.len - g.ends[k]);
            ck_assert_uint_eq(jsi_cslog_size(l), g.ends[k]);
            jsi_cslog_close(l);
        }
    }
    jsi_cslog_close(open_expect(V, &g.st[g.nrec - 1]));
    jsi_buf_free(&img);
    glog_free(&g);
}
END_TEST

/* A flip in the magic or the version: the open succeeds with the empty
 * state, reports JS_ECORRUPT, and leaves a good empty file behind. A flip
 * in the reserved bytes changes nothing. */
START_TEST(a_damaged_header_opens_empty_and_is_repaired) {
    jsi_buf img = {NULL, 0, 0};
    jsi_cstate e;
    jsi_cslog *l;
    glog g;

    jsi_cstate_init(&e);
    glog_make(&g, 5, 12);
    for (size_t off = 0; off < JSI_CSTATE_HDR_LEN; off++) {
        for (int bit = 0; bit < 8; bit++) {
            int reserved = off >= 8;
            img.len = 0;
            ck_assert_int_eq(jsi_buf_append(&img, g.img.p, g.img.len), 0);
            img.p[off] ^= (uint8_t)(1u << bit);
            file_put(V, PATH, img.p, img.len);
            l = open_expect(V, reserved ? &g.st[g.nrec] : &e);
            ck_assert_int_eq(jsi_cslog_damage(l, NULL),
                             reserved ? 0 : JS_ECORRUPT);
            ck_assert_uint_eq(jsi_cslog_size(l),
                              reserved ? g.img.len : empty_file_len());
            jsi_cslog_close(l);
            l = open_expect(V, reserved ? &g.st[g.nrec] : &e);
            ck_assert_int_eq(jsi_cslog_damage(l, NULL), 0);
            jsi_cslog_close(l);
        }
    }
    jsi_buf_free(&img);
    glog_free(&g);
}
END_TEST

START_TEST(rewrite_then_append_then_reopen) {
    jsi_cstate st, want;
    jsi_buf b = {NULL, 0, 0}, got = {NULL, 0, 0};
    jsi_cslog *l;
    glog g;
    const uint64_t more[] = {MS + 3, MS + 4};

    jsi_cstate_init(&st);
    jsi_cstate_init(&want);
    glog_make(&g, 41, MAXREC);
    ck_assert_int_eq(jsi_cslog_open(V, DIR_, NAME, &st, &l), 0);
    ck_assert_int_eq(jsi_cslog_append(l, g.img.p + g.ends[0],
                                      g.img.len - g.ends[0]), 0);
    ck_assert_int_eq(jsi_cslog_rewrite(l, &g.st[g.nrec]), 0);
    ck_assert_int_eq(file_exists(V, TMP), 0);
    ck_assert_int_eq(jsi_cstate_enc_header(&b), 0);
    ck_assert_int_eq(jsi_cstate_enc_snap(&g.st[g.nrec], &b), 0);
    ck_assert_uint_eq(jsi_cslog_size(l), b.len);
    file_get(V, PATH, &got);
    ck_assert_uint_eq(got.len, b.len);
    ck_assert_int_eq(memcmp(got.p, b.p, b.len), 0);
    b.len = 0;
    ck_assert_int_eq(jsi_cstate_enc_acks(g.m.dd + 1, MS + 5, g.m.fd, 0, more,
                                         2, &b), 0);
    ck_assert_int_eq(jsi_cslog_append(l, b.p, b.len), 0);
    ck_assert_int_eq(jsi_cslog_sync(l), 0);
    jsi_cslog_close(l);
    ck_assert_int_eq(jsi_cstate_copy(&g.st[g.nrec], &want), 0);
    want.dlv_dseq = g.m.dd + 1;
    want.dlv_sseq = MS + 5;
    ck_assert_int_eq(jsi_rs_add(&want.acked, MS + 3, MS + 4), 0);
    l = open_expect(V, &want);
    ck_assert_int_eq(jsi_cslog_damage(l, NULL), 0);
    jsi_cslog_close(l);
    jsi_cstate_free(&st);
    jsi_cstate_free(&want);
    jsi_buf_free(&b);
    jsi_buf_free(&got);
    glog_free(&g);
}
END_TEST

/* A crash after the rewrite's temp file was written (whole, or in part)
 * but before the rename: the name still holds the old log, which is what
 * opens; the temp file goes. */
START_TEST(a_temp_file_left_by_a_crashed_rewrite_is_ignored_and_removed) {
    jsi_buf tmp = {NULL, 0, 0};
    jsi_cstate other;
    jsi_cslog *l;
    glog g;

    jsi_cstate_init(&other);
    glog_make(&g, 43, 30);
    file_put(V, PATH, g.img.p, g.img.len);
    rng = 99;
    random_state(&other);
    jsi_cstate_normalise(&other);
    ck_assert_int_eq(jsi_cstate_enc_header(&tmp), 0);
    ck_assert_int_eq(jsi_cstate_enc_snap(&other, &tmp), 0);
    for (int whole = 1; whole >= 0; whole--) {
        file_put(V, TMP, tmp.p, whole ? tmp.len : tmp.len / 2);
        l = open_expect(V, &g.st[g.nrec]);
        ck_assert_int_eq(file_exists(V, TMP), 0);
        ck_assert_uint_eq(jsi_cslog_size(l), g.img.len);
        /* A later rewrite over a stale temp file of the same name. */
        file_put(V, TMP, tmp.p, tmp.len);
        ck_assert_int_eq(jsi_cslog_rewrite(l, &g.st[3]), 0);
        jsi_cslog_close(l);
        jsi_cslog_close(open_expect(V, &g.st[3]));
        file_put(V, PATH, g.img.p, g.img.len);
    }
    jsi_cstate_free(&other);
    jsi_buf_free(&tmp);
    glog_free(&g);
}
END_TEST

START_TEST(remove_deletes_the_log_and_its_temp_file) {
    jsi_cstate st;
    jsi_cslog *l;

    jsi_cstate_init(&st);
    ck_assert_int_eq(jsi_cslog_remove(V, DIR_, NAME), 0); /* none: fine */
    ck_assert_int_eq(jsi_cslog_open(V, DIR_, NAME, &st, &l), 0);
    jsi_cslog_close(l);
    file_put(V, TMP, "x", 1);
    ck_assert_int_eq(jsi_cslog_remove(V, DIR_, NAME), 0);
    ck_assert_int_eq(file_exists(V, PATH), 0);
    ck_assert_int_eq(file_exists(V, TMP), 0);
    jsi_cstate_free(&st);
}
END_TEST

/* ====================================================================== */
/* Faults                                                                 */
/* ====================================================================== */
/* "fault": a js_vfs over another that fails its fv_fail_at-th call (a
 * failed write first writes half its bytes, as a torn write would), or
 * with fv_die set, ends the process at that call instead (a crash). */

typedef struct fv_file {
    js_vfs_file base;
    js_vfs_file *in;
} fv_file;

static js_vfs *fv_inner;
static long fv_calls, fv_fail_at;
static int fv_die;
static const char *fv_failed; /* the call that failed, NULL if none */
static js_vfs_io fv_io;
static js_vfs FV;

static int fv_hit(const char *what) {
    if (fv_fail_at == 0 || ++fv_calls != fv_fail_at)
        return 0;
    if (fv_die)
        _exit(0);
    fv_failed = what;
    return 1;
}

static js_vfs_file *fv_in(js_vfs_file *f) { return ((fv_file *)f)->in; }

static int fv_close(js_vfs_file *f) { return jsi_vfs_close(fv_in(f)); }

static int fv_read(js_vfs_file *f, void *buf, size_t n, uint64_t off,
                   size_t *got) {
    return fv_hit("read") ? JS_EIO : fv_in(f)->io->read(fv_in(f), buf, n, off, got);
}

static int fv_write(js_vfs_file *f, const void *buf, size_t n, uint64_t off) {
    if (fv_hit("write")) {
        (void)fv_in(f)->io->write(fv_in(f), buf, n / 2, off);
        return JS_EIO;
    }
    return fv_in(f)->io->write(fv_in(f), buf, n, off);
}

static int fv_truncate(js_vfs_file *f, uint64_t size) {
    return fv_hit("truncate") ? JS_EIO : fv_in(f)->io->truncate(fv_in(f), size);
}

static int fv_sync(js_vfs_file *f) {
    return fv_hit("sync") ? JS_EIO : fv_in(f)->io->sync(fv_in(f));
}

static int fv_size(js_vfs_file *f, uint64_t *size) {
    return fv_hit("size") ? JS_EIO : fv_in(f)->io->size(fv_in(f), size);
}

static int fv_control(js_vfs_file *f, int op, void *arg) {
    return fv_in(f)->io->control(fv_in(f), op, arg);
}

static int fv_open(js_vfs *vfs, const char *path, int flags,
                   js_vfs_file *file) {
    fv_file *f = (fv_file *)file;
    int rc;

    (void)vfs;
    if (fv_hit("open"))
        return JS_EIO;
    rc = jsi_vfs_open(fv_inner, path, flags, &f->in);
    if (rc == 0)
        f->base.io = &fv_io;
    return rc;
}

static int fv_remove(js_vfs *vfs, const char *path) {
    (void)vfs;
    return fv_hit("remove") ? JS_EIO : fv_inner->remove(fv_inner, path);
}

static int fv_rename(js_vfs *vfs, const char *from, const char *to) {
    (void)vfs;
    return fv_hit("rename") ? JS_EIO : fv_inner->rename(fv_inner, from, to);
}

static int fv_mkdir(js_vfs *vfs, const char *path) {
    (void)vfs;
    return fv_inner->mkdir(fv_inner, path);
}

static int fv_rmdir(js_vfs *vfs, const char *path) {
    (void)vfs;
    return fv_inner->rmdir(fv_inner, path);
}

static int fv_list(js_vfs *vfs, const char *dir,
                   int (*cb)(void *ctx, const char *name), void *ctx) {
    (void)vfs;
    return fv_inner->list(fv_inner, dir, cb, ctx);
}

static int fv_sync_dir(js_vfs *vfs, const char *dir) {
    (void)vfs;
    return fv_hit("sync_dir") ? JS_EIO : fv_inner->sync_dir(fv_inner, dir);
}

static int fv_lock(js_vfs *vfs, const char *path, void **token) {
    (void)vfs;
    return fv_inner->lock(fv_inner, path, token);
}

static int fv_unlock(js_vfs *vfs, void *token) {
    (void)vfs;
    return fv_inner->unlock(fv_inner, token);
}

/* The fault VFS over inner, failing nothing yet. */
static js_vfs *fv_over(js_vfs *inner) {
    fv_io = (js_vfs_io){JS_VFS_IO_VERSION, fv_close, fv_read, fv_write,
                        fv_truncate, fv_sync, fv_size, fv_control};
    FV = (js_vfs){JS_VFS_VERSION, sizeof(fv_file), "fault", NULL, fv_open,
                  fv_remove, fv_rename, fv_mkdir, fv_rmdir, fv_list,
                  fv_sync_dir, fv_lock, fv_unlock};
    fv_inner = inner;
    fv_calls = fv_fail_at = 0;
    fv_die = 0;
    return &FV;
}

static void fv_arm(long at) {
    fv_calls = 0;
    fv_fail_at = at;
    fv_failed = NULL;
}

/* The three kinds of open that must write: creating, cutting a torn
 * tail, repairing a header. */
enum { OF_CREATE, OF_TORN, OF_HEADER, OF_KINDS };

static void open_fault_file(int kind, const glog *g) {
    (void)V->remove(V, PATH);
    if (kind == OF_TORN)
        file_put(V, PATH, g->img.p, g->img.len - 3);
    if (kind == OF_HEADER) {
        file_put(V, PATH, "JSCX", 4); /* a short file */
    }
}

/* An I/O failure at each call an open makes: the open fails cleanly
 * (and then a clean open still finds the right state), or succeeds with
 * the right state. */
START_TEST(open_survives_an_io_failure_at_every_call) {
    js_vfs *fv = fv_over(V);
    const jsi_cstate *want;
    jsi_cstate st, e;
    jsi_cslog *l;
    glog g;
    long calls;
    int rc;

    jsi_cstate_init(&st);
    jsi_cstate_init(&e);
    glog_make(&g, 47, 20);
    want = _i == OF_TORN ? &g.st[g.nrec - 1] : &e;
    ck_assert_uint_eq(glog_whole(&g, g.img.len - 3), g.nrec - 1);
    for (long at = 1;; at++) {
        open_fault_file(_i, &g);
        fv_arm(at);
        rc = jsi_cslog_open(fv, DIR_, NAME, &st, &l);
        calls = fv_calls;
        fv_arm(0);
        if (rc == 0) {
            ST_EQ(&st, want);
            jsi_cslog_close(l);
        } else {
            ck_assert_int_eq(rc, JS_EIO);
            ck_assert_ptr_null(l);
        }
        jsi_cslog_close(open_expect(V, want));
        if (calls < at)
            break; /* the open made fewer calls: all were tried */
    }
    ck_assert_int_eq(file_exists(V, TMP), 0);
    jsi_cstate_free(&st);
    glog_free(&g);
}
END_TEST

/* An I/O failure at each call a rewrite makes. Before the rename the old
 * file stays in use; after it the new one; if the directory sync failed
 * the log refuses appends until a rewrite succeeds. Either way nothing
 * written is lost. */
START_TEST(rewrite_survives_an_io_failure_at_every_call) {
    js_vfs *fv = fv_over(V);
    jsi_buf rec = {NULL, 0, 0};
    jsi_cstate st, want;
    jsi_cslog *l;
    glog g;
    const char *failed;
    long calls = 0;
    int rc;

    jsi_cstate_init(&st);
    jsi_cstate_init(&want);
    glog_make(&g, 53, 30);
    ck_assert_int_eq(jsi_cstate_enc_count(MS + 1, 5, &rec), 0);
    ck_assert_int_eq(jsi_cstate_copy(&g.st[g.nrec], &want), 0);
    ck_assert_int_eq(jsi_cstate_set_count(&want, MS + 1, 5), 0);
    for (long at = 1; calls >= at - 1; at++) {
        file_put(V, PATH, g.img.p, g.img.len);
        ck_assert_int_eq(jsi_cslog_open(fv, DIR_, NAME, &st, &l), 0);
        fv_arm(at);
        rc = jsi_cslog_rewrite(l, &st);
        calls = fv_calls;
        failed = fv_failed;
        fv_arm(0);
        if (!failed) {
            ck_assert_int_eq(rc, 0);
        } else if (strcmp(failed, "sync_dir") != 0) {
            ck_assert_int_eq(rc, JS_EIO); /* before the rename: old file */
            ck_assert_uint_eq(jsi_cslog_size(l), g.img.len);
        } else {
            ck_assert_int_eq(rc, JS_EIO); /* renamed: the new file, failed */
            ck_assert_uint_lt(jsi_cslog_size(l), g.img.len);
        }
        rc = jsi_cslog_append(l, rec.p, rec.len);
        ck_assert_int_eq(rc == JS_EFAILED,
                         failed && strcmp(failed, "sync_dir") == 0);
        if (rc == JS_EFAILED) {
            ck_assert_int_eq(jsi_cslog_sync(l), JS_EFAILED);
            ck_assert_int_eq(jsi_cslog_rewrite(l, &st), 0);
            rc = jsi_cslog_append(l, rec.p, rec.len);
        }
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(jsi_cslog_sync(l), 0);
        jsi_cslog_close(l);
        ck_assert_int_eq(file_exists(V, TMP), 0);
        jsi_cslog_close(open_expect(V, &want));
    }
    jsi_cstate_free(&st);
    jsi_cstate_free(&want);
    jsi_buf_free(&rec);
    glog_free(&g);
}
END_TEST

/* A failed (torn) append or a failed sync: the log refuses more until a
 * rewrite, which brings back everything the state holds. */
START_TEST(a_failed_append_or_sync_refuses_until_a_rewrite) {
    js_vfs *fv = fv_over(V);
    jsi_buf rec = {NULL, 0, 0};
    jsi_cstate st, want;
    jsi_cslog *l;

    jsi_cstate_init(&st);
    jsi_cstate_init(&want);
    ck_assert_int_eq(jsi_cstate_enc_count(8, 5, &rec), 0);
    ck_assert_int_eq(jsi_cstate_set_count(&want, 8, 5), 0);
    for (int sync = 0; sync < 2; sync++) {
        ck_assert_int_eq(jsi_cslog_open(fv, DIR_, NAME, &st, &l), 0);
        fv_arm(sync ? 2 : 1);
        if (sync) {
            ck_assert_int_eq(jsi_cslog_append(l, rec.p, rec.len), 0);
            ck_assert_int_eq(jsi_cslog_sync(l), JS_EIO);
        } else {
            ck_assert_int_eq(jsi_cslog_append(l, rec.p, rec.len), JS_EIO);
        }
        fv_arm(0);
        ck_assert_int_eq(jsi_cslog_append(l, rec.p, rec.len), JS_EFAILED);
        ck_assert_int_eq(jsi_cslog_sync(l), JS_EFAILED);
        ck_assert_ptr_nonnull(strstr(js_errmsg(), "rewrite"));
        ck_assert_int_eq(jsi_cslog_rewrite(l, &want), 0);
        ck_assert_int_eq(jsi_cslog_append(l, rec.p, rec.len), 0);
        ck_assert_int_eq(jsi_cslog_sync(l), 0);
        jsi_cslog_close(l);
        jsi_cslog_close(open_expect(V, &want));
        ck_assert_int_eq(jsi_cslog_remove(V, DIR_, NAME), 0);
    }
    jsi_cstate_free(&st);
    jsi_cstate_free(&want);
    jsi_buf_free(&rec);
}
END_TEST

/* The k-th allocation fails during f(): 1 if it was reached. */
#define WITH_ALLOC_FAIL(k, call)                                           \
    (jsi_alloc_fail_at((k), 0), (call), alloc_reached())

static int alloc_reached(void) {
    int hit = jsi_alloc_failed() > 0;

    jsi_alloc_fail_at(0, 0);
    return hit;
}

static int alloc_replay(const glog *g, const jsi_cstate *keep, jsi_cstate *st,
                        uint64_t k) {
    size_t good = 0;
    int rc = 0, hit;

    ck_assert_int_eq(jsi_cstate_copy(keep, st), 0);
    hit = WITH_ALLOC_FAIL(k, rc = jsi_cstate_replay(g->img.p, g->img.len, st,
                                                    &good));
    if (rc == 0) {
        ST_EQ(st, &g->st[g->nrec]);
    } else {
        ck_assert_int_eq(rc, JS_ENOMEM);
        ST_EQ(st, keep);
    }
    return hit;
}

/* A log with a torn last record. */
static int alloc_open(const glog *g, const jsi_cstate *keep, jsi_cstate *st,
                      uint64_t k) {
    const jsi_cstate *want = &g->st[g->nrec - 1];
    jsi_cslog *l = NULL;
    int rc = 0, hit;

    file_put(V, PATH, g->img.p, g->img.len - 1);
    ck_assert_int_eq(jsi_cstate_copy(keep, st), 0);
    hit = WITH_ALLOC_FAIL(k, rc = jsi_cslog_open(V, DIR_, NAME, st, &l));
    if (rc == 0) {
        ST_EQ(st, want);
        jsi_cslog_close(l);
    } else {
        ck_assert_int_eq(rc, JS_ENOMEM);
        ck_assert_ptr_null(l);
        ST_EQ(st, keep);
    }
    jsi_cslog_close(open_expect(V, want));
    return hit;
}

static int alloc_encode(const glog *g, jsi_buf *b, uint64_t k) {
    const uint64_t done[] = {9, 7};
    jsi_cstate c;
    size_t len;
    int rc = 0, hit;

    jsi_cstate_init(&c);
    b->len = 0;
    hit = WITH_ALLOC_FAIL(k, rc = jsi_cstate_enc_snap(&g->st[g->nrec], b));
    ck_assert(rc == 0 || (rc == JS_ENOMEM && b->len == 0));
    len = b->len;
    hit |= WITH_ALLOC_FAIL(k, rc = jsi_cstate_enc_acks(1, 2, 3, 4, done, 2, b));
    ck_assert(rc == 0 || (rc == JS_ENOMEM && b->len == len));
    hit |= WITH_ALLOC_FAIL(k, rc = jsi_cstate_copy(&g->st[g->nrec], &c));
    ck_assert(rc == 0 || (rc == JS_ENOMEM && c.ncounts == 0 && c.acked.n == 0));
    jsi_cstate_free(&c);
    return hit;
}

/* The k-th allocation fails, for every k: replay, open (of a log with a
 * torn tail), the encoders and copy return JS_ENOMEM with their outputs
 * as they were, and an ENOMEM is never taken for damage (the file keeps
 * every record). Leaks show under the sanitizer build. */
START_TEST(every_allocation_failure_is_clean) {
    jsi_buf b = {NULL, 0, 0};
    jsi_cstate st, keep;
    glog g;
    int hit = 1;

    jsi_cstate_init(&st);
    jsi_cstate_init(&keep);
    glog_make(&g, 59, 40);
    keep.dlv_dseq = 77;
    /* Until the k-th allocation is never reached by any of them. */
    for (uint64_t k = 1; hit; k++) {
        hit = alloc_replay(&g, &keep, &st, k);
        hit |= alloc_open(&g, &keep, &st, k);
        hit |= alloc_encode(&g, &b, k);
    }
    jsi_cstate_free(&st);
    jsi_cstate_free(&keep);
    jsi_buf_free(&b);
    glog_free(&g);
}
END_TEST

/* ====================================================================== */
/* posix                                                                  */
/* ====================================================================== */

static char *pdir; /* a fresh /tmp directory for the posix tests */

static void posix_setup(void) {
    pdir = tu_mkdtemp("test_consumer_state");
    ck_assert_ptr_nonnull(pdir);
}

static void posix_teardown(void) {
    tu_rm_rf(pdir);
    free(pdir);
}

/* A real process dies at each VFS call of a rewrite on posix (before
 * the call is made). The reopened log holds the same state either way
 * (the rewrite was of that state): the old file before the rename, the
 * new one after it, and no temp file. */
START_TEST(a_crash_at_every_step_of_a_rewrite_loses_nothing) {
    js_vfs *fv = fv_over(jsi_vfs_posix());
    jsi_cstate st;
    jsi_cslog *l;
    glog g;
    int crashed = 1;

    jsi_cstate_init(&st);
    glog_make(&g, 61, 30);
    for (long at = 1; crashed; at++) {
        char *path = jsi_path_join(pdir, NAME), tmp[512];
        pid_t pid;
        int status;

        file_put(jsi_vfs_posix(), path, g.img.p, g.img.len);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            if (jsi_cslog_open(fv, pdir, NAME, &st, &l) != 0)
                _exit(2);
            fv_die = 1;
            fv_arm(at);
            _exit(jsi_cslog_rewrite(l, &st) == 0 ? 3 : 4);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        crashed = WEXITSTATUS(status) == 0;
        ck_assert_int_eq(WEXITSTATUS(status), crashed ? 0 : 3);
        ck_assert_int_eq(jsi_cslog_open(jsi_vfs_posix(), pdir, NAME, &st, &l),
                         0);
        ST_EQ(&st, &g.st[g.nrec]);
        ck_assert_int_eq(jsi_cslog_damage(l, NULL), 0);
        jsi_cslog_close(l);
        ck_assert_int_eq(access(path, F_OK), 0);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        ck_assert_int_ne(access(tmp, F_OK), 0);
        jsi_free(path);
    }
    jsi_cstate_free(&st);
    glog_free(&g);
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

static Suite *cstate_suite(void) {
    Suite *s = suite_create("consumer_state");
    TCase *t;

    t = tcase_create("codec");
    tcase_add_test(t, snap_round_trips_empty_and_small_states);
    tcase_add_test(t, snap_round_trips_large_rangesets_and_counts);
    tcase_add_test(t, acks_encoder_sorts_merges_and_drops_repeats);
    tcase_add_test(t, encoders_refuse_sequence_zero_and_leave_the_buffer);
    tcase_add_test(t, set_count_keeps_counts_sorted_and_copy_is_deep);
    suite_add_tcase(s, t);

    t = tcase_create("replay");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, acks_unite_and_positions_keep_their_largest_value);
    tcase_add_test(t, snap_replaces_everything_before_it);
    tcase_add_test(t, load_advances_the_floor_and_drops_what_it_covers);
    tcase_add_test(t, floor_reaches_the_last_sequence);
    tcase_add_test(t, well_framed_nonsense_ends_the_log);
    tcase_add_test(t, a_bad_header_replays_as_the_empty_state);
    tcase_add_test(t, replay_matches_the_model_record_by_record);
    tcase_add_test(t, every_bit_flip_in_a_record_gives_a_prefix_state);
    suite_add_tcase(s, t);

    t = tcase_create("log");
    tcase_set_timeout(t, 60);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, a_new_log_is_created_whole_and_reopens_empty);
    tcase_add_test(t, open_needs_an_existing_directory_and_arguments);
    tcase_add_test(t, appended_records_survive_a_reopen);
    tcase_add_test(t, a_torn_tail_is_cut_at_every_offset);
    tcase_add_test(t, every_bit_flip_in_a_file_opens_as_a_prefix);
    tcase_add_test(t, a_damaged_header_opens_empty_and_is_repaired);
    tcase_add_test(t, rewrite_then_append_then_reopen);
    tcase_add_test(t,
                   a_temp_file_left_by_a_crashed_rewrite_is_ignored_and_removed);
    tcase_add_test(t, remove_deletes_the_log_and_its_temp_file);
    suite_add_tcase(s, t);

    t = tcase_create("faults");
    tcase_set_timeout(t, 60);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_loop_test(t, open_survives_an_io_failure_at_every_call, 0,
                        OF_KINDS);
    tcase_add_test(t, rewrite_survives_an_io_failure_at_every_call);
    tcase_add_test(t, a_failed_append_or_sync_refuses_until_a_rewrite);
    tcase_add_test(t, every_allocation_failure_is_clean);
    suite_add_tcase(s, t);

    t = tcase_create("posix");
    tcase_set_timeout(t, 60);
    tcase_add_checked_fixture(t, posix_setup, posix_teardown);
    tcase_add_test(t, a_crash_at_every_step_of_a_rewrite_loses_nothing);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    int failed = tu_run_suite(cstate_suite());
    return failed == 0 ? 0 : 1;
}
