/*
 * test_recovery.c - reopening a store and recovering it: a clean reopen
 * restores every message and the stream state, a torn tail is cut back to
 * the last whole record, damage to one record costs that record and no
 * other, the index checkpoint gives the same state as a full rebuild (and
 * a damaged or stale one falls back or replays), the catalogue is checked,
 * and the open time of a large store is measured.
 *
 * Everything goes through the public API except the file surgery, which
 * works on the block files (<store>/streams/<id>/<blkno>.blk, format in
 * libjs/record.h) and the checkpoint (<store>/streams/<id>/index). The
 * record codec (jsi_rec_parse_hdr) maps the files so each damaged byte is
 * tied to the message it belongs to.
 */
#include <check.h>

#include "jetstream.h"
#include "msgstore_int.h"
#include "record.h"
#include "stream.h"
#include "util.h"
#include "testutil_fs.h"

static char *base_dir; /* every store lives under it; removed by main() */

/* ---- "nosync": posix without fsync ------------------------------------ */

/*
 * Most tests run over this backend: the posix backend, real files in the
 * temporary directory, with file and directory syncs turned into no-ops.
 * Nothing here loses power, so a sync changes no outcome (the engine still
 * calls it and still orders its writes the same way); it only costs
 * milliseconds per publish and reopen, and the damage sweeps reopen a
 * store thousands of times. The tests of plain reopen, the torn tail, the
 * first sequence and the open time use the real posix backend with its
 * syncs. Registered through the public js_vfs API.
 */
#include "nosync_vfs.h"

/* ---- generated messages ---------------------------------------------- */

#define NSUBJ 5

/* A message is a function of its id: subject rec.s<id % 5>, a header block
 * on every 7th (unless gen_headers is 0), and a payload of
 * dmin + (id * 37) % dspan bytes. */
typedef struct gmsg {
    char subj[32];
    char hdr[64];
    size_t hlen;
    uint8_t data[1024];
    size_t dlen;
} gmsg;

static int gen_headers = 1; /* 0: no message gets a header block */

static void gen(uint32_t id, size_t dmin, size_t dspan, gmsg *m) {
    snprintf(m->subj, sizeof m->subj, "rec.s%u", id % NSUBJ);
    m->hlen = 0;
    if (gen_headers && id % 7 == 3)
        m->hlen = (size_t)snprintf(m->hdr, sizeof m->hdr,
                                   "NATS/1.0\r\nX-Id: %u\r\n\r\n", id);
    m->dlen = dmin + (dspan ? (id * 37u) % dspan : 0);
    ck_assert_uint_le(m->dlen, sizeof m->data);
    uint64_t st = (uint64_t)id * UINT64_C(0x100000001b3) + 7;
    for (size_t i = 0; i < m->dlen; i += 8) {
        uint64_t v = tu_rng(&st);
        size_t k = m->dlen - i < 8 ? m->dlen - i : 8;
        memcpy(m->data + i, &v, k);
    }
}

static uint64_t rec_size(const gmsg *m) {
    return 40u + strlen(m->subj) + m->hlen + m->dlen;
}

/* 1 if msg is exactly message id at seq. */
static int msg_matches(const js_msg *msg, uint64_t seq, uint32_t id,
                       size_t dmin, size_t dspan) {
    gmsg g;
    size_t hl, dl;
    gen(id, dmin, dspan, &g);
    const void *h = js_msg_headers(msg, &hl);
    const void *d = js_msg_data(msg, &dl);
    return js_msg_seq(msg) == seq && strcmp(js_msg_subject(msg), g.subj) == 0 &&
           hl == g.hlen && (hl == 0 || memcmp(h, g.hdr, hl) == 0) &&
           dl == g.dlen && memcmp(d, g.data, dl) == 0;
}

/* ---- a store under test, with a model of what it must hold ------------ */

typedef struct fx {
    char *dir;          /* store directory */
    const char *vfs;    /* backend name, NULL: posix */
    js_store *st;
    js_stream *s;
    uint32_t block_size;
    size_t dmin, dspan; /* payload sizes, see gen() */
    uint64_t first_seq; /* stream config first_seq (0: default) */
    uint32_t *ids;      /* ids[seq]: the message there, 0 if none */
    uint64_t cap, last; /* model: last sequence ever assigned */
    uint32_t next_id;
} fx;

static void fx_init(fx *f, const char *name, uint32_t block_size, size_t dmin,
                    size_t dspan) {
    memset(f, 0, sizeof *f);
    f->dir = tu_path("%s/%s", base_dir, name);
    tu_rm_rf(f->dir);
    f->vfs = "nosync";
    f->block_size = block_size;
    f->dmin = dmin;
    f->dspan = dspan;
    f->next_id = 1;
}

static void fx_free(fx *f) {
    ck_assert_ptr_null(f->st);
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f->ids);
    f->dir = NULL;
    f->ids = NULL;
}

static int fx_try_open(fx *f) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.block_size = f->block_size;
    o.vfs = f->vfs;
    return js_open(f->dir, &o, &f->st);
}

static void fx_open(fx *f) {
    int rc = fx_try_open(f);
    ck_assert_msg(rc == 0, "js_open(%s): %s (%s)", f->dir, js_strerror(rc),
                  js_errmsg());
    rc = js_stream_lookup(f->st, "R", &f->s);
    if (rc == JS_ESTREAM_NOT_FOUND) {
        const char *subs[] = {"rec.>"};
        js_stream_config c = JS_STREAM_CONFIG_INIT;
        c.name = "R";
        c.subjects = subs;
        c.num_subjects = 1;
        c.first_seq = f->first_seq;
        rc = js_stream_add(f->st, &c, &f->s);
        if (rc == 0 && f->last == 0 && f->first_seq > 1)
            f->last = f->first_seq - 1;
    }
    ck_assert_msg(rc == 0, "stream R: %s (%s)", js_strerror(rc), js_errmsg());
}

static void fx_close(fx *f) {
    js_stream_release(f->s);
    f->s = NULL;
    int rc = js_close(f->st);
    f->st = NULL;
    ck_assert_msg(rc == 0, "js_close: %s (%s)", js_strerror(rc), js_errmsg());
}

static char *fx_sdir(const fx *f) {
    char *d = tu_stream_dir(f->dir);
    ck_assert_ptr_nonnull(d);
    return d;
}

static char *fx_index(const fx *f) {
    char *d = fx_sdir(f);
    char *p = tu_path("%s/index", d);
    free(d);
    return p;
}

static void fx_rm_index(const fx *f) {
    char *p = fx_index(f);
    ck_assert_msg(tu_exists(p), "no checkpoint at %s", p);
    ck_assert_int_eq(unlink(p), 0);
    free(p);
}

static void model_set(fx *f, uint64_t seq, uint32_t id) {
    if (seq >= f->cap) {
        uint64_t ncap = f->cap ? f->cap : 1024;
        while (ncap <= seq)
            ncap *= 2;
        f->ids = realloc(f->ids, ncap * sizeof *f->ids);
        ck_assert_ptr_nonnull(f->ids);
        memset(f->ids + f->cap, 0, (ncap - f->cap) * sizeof *f->ids);
        f->cap = ncap;
    }
    f->ids[seq] = id;
    if (id && seq > f->last)
        f->last = seq;
}

static uint32_t model_id(const fx *f, uint64_t seq) {
    return seq < f->cap ? f->ids[seq] : 0;
}

/* Forget the model's sequences above `last` (a torn tail took them). */
static void model_cut(fx *f, uint64_t last) {
    for (uint64_t s = last + 1; s < f->cap; s++)
        f->ids[s] = 0;
    f->last = last;
}

static uint64_t fx_pub1(fx *f) {
    gmsg g;
    js_pub_ack ack = JS_PUB_ACK_INIT;
    uint32_t id = f->next_id++;
    gen(id, f->dmin, f->dspan, &g);
    int rc = js_publish(f->st, g.subj, g.hlen ? g.hdr : NULL, g.hlen, g.data,
                        g.dlen, &ack);
    ck_assert_msg(rc == 0, "publish id %u: %s (%s)", id, js_strerror(rc),
                  js_errmsg());
    ck_assert_msg(ack.seq == f->last + 1,
                  "publish id %u got seq %" PRIu64 ", want %" PRIu64, id,
                  ack.seq, f->last + 1);
    model_set(f, ack.seq, id);
    return ack.seq;
}

static void fx_pub(fx *f, unsigned n) {
    while (n--)
        fx_pub1(f);
}

static void fx_del(fx *f, uint64_t seq) {
    int rc = js_msg_delete(f->s, seq);
    ck_assert_msg(rc == 0, "delete %" PRIu64 ": %s (%s)", seq, js_strerror(rc),
                  js_errmsg());
    ck_assert_uint_ne(model_id(f, seq), 0);
    model_set(f, seq, 0);
}

/* Purge through the API and apply the same rule to the model: subject
 * (a literal, or NULL for all), below seq (0: no bound), keep the newest
 * `keep` matching. */
static void fx_purge(fx *f, const char *subject, uint64_t below,
                     uint64_t keep) {
    js_purge_opts o = JS_PURGE_OPTS_INIT;
    uint64_t n = 0, want = 0, matching = 0;
    o.filter = subject;
    o.seq = below;
    o.keep = keep;
    for (uint64_t s = 1; s <= f->last; s++) {
        gmsg g;
        uint32_t id = model_id(f, s);
        if (!id || (below && s >= below))
            continue;
        gen(id, f->dmin, f->dspan, &g);
        if (!subject || strcmp(g.subj, subject) == 0)
            matching++;
    }
    uint64_t drop = matching > keep ? matching - keep : 0;
    for (uint64_t s = 1; s <= f->last && want < drop; s++) {
        gmsg g;
        uint32_t id = model_id(f, s);
        if (!id || (below && s >= below))
            continue;
        gen(id, f->dmin, f->dspan, &g);
        if (subject && strcmp(g.subj, subject) != 0)
            continue;
        model_set(f, s, 0);
        want++;
    }
    int rc = js_stream_purge(f->s, &o, &n);
    ck_assert_msg(rc == 0, "purge: %s (%s)", js_strerror(rc), js_errmsg());
    ck_assert_uint_eq(n, want);
}

static struct js_stream_info *fx_info(fx *f) {
    struct js_stream_info *i = NULL;
    int rc = js_stream_info(f->s, &i);
    ck_assert_msg(rc == 0, "info: %s", js_strerror(rc));
    return i;
}

/* The store holds exactly the model: every message, nothing deleted, and
 * the state (msgs, bytes, first, last, subjects, deleted) that follows. */
/* 1 if seq is in the info's lost ranges. */
static int info_lost(const struct js_stream_info *i, uint64_t seq) {
    for (size_t k = 0; k < i->lost_len; k++)
        if (seq >= i->lost[k].first && seq <= i->lost[k].last)
            return 1;
    return 0;
}

/* The stream holds exactly the model. A sequence the model does not hold
 * may instead be reported lost: a damaged last record whose header no
 * longer says what it was, or records cut off that the checkpoint had
 * vouched for; their sequences are never given out again. */
static void fx_check(fx *f) {
    uint64_t msgs = 0, bytes = 0, first = 0, nlost = 0;
    int subj_seen[NSUBJ] = {0};
    struct js_stream_info *li = fx_info(f);
    for (uint64_t s = 1; s <= f->last + 2; s++) {
        js_msg *m = NULL;
        uint32_t id = model_id(f, s);
        int rc = js_msg_get(f->s, s, &m);
        if (id) {
            gmsg g;
            ck_assert_msg(rc == 0, "get %" PRIu64 " (id %u): %s (%s)", s, id,
                          js_strerror(rc), js_errmsg());
            ck_assert_msg(msg_matches(m, s, id, f->dmin, f->dspan),
                          "message %" PRIu64 " differs from id %u", s, id);
            gen(id, f->dmin, f->dspan, &g);
            msgs++;
            bytes += rec_size(&g);
            subj_seen[id % NSUBJ] = 1;
            if (!first)
                first = s;
        } else if (rc == JS_ECORRUPT && info_lost(li, s)) {
            nlost++;
            /* A cut-off record the checkpoint vouched for: its sequence
             * is lost, so the next publish follows it. */
            if (s == f->last + 1)
                f->last = s;
        } else {
            ck_assert_msg(rc == JS_EMSG_NOT_FOUND,
                          "get %" PRIu64 " (removed or never stored): %s", s,
                          rc ? js_strerror(rc) : "found");
        }
        js_msg_free(m);
    }
    js_stream_info_free(li);
    struct js_stream_info *i = fx_info(f);
    const js_stream_state *st = i->state;
    uint64_t nsubj = 0;
    for (int k = 0; k < NSUBJ; k++)
        nsubj += (uint64_t)subj_seen[k];
    if (!first)
        first = f->last + 1;
    if (f->last == 0 && f->first_seq <= 1)
        first = 0; /* as NATS: a stream that never held a message */
    ck_assert_uint_eq(st->msgs, msgs);
    ck_assert_uint_eq(st->bytes, bytes);
    ck_assert_uint_eq(st->last_seq, f->last);
    ck_assert_uint_eq(st->first_seq, first);
    ck_assert_uint_eq(st->num_subjects, nsubj);
    ck_assert_uint_eq(st->num_deleted,
                      f->last >= first ? f->last - first + 1 - msgs : 0);
    ck_assert_uint_eq(st->lost_msgs, nlost);
    js_stream_info_free(i);
}

/* ---- snapshots: everything a reader can see, for comparisons ---------- */

#define SNAP_LOST 16

typedef struct snap {
    js_stream_state st;
    js_seq_range lost[SNAP_LOST]; /* the first lost ranges reported */
    size_t nlost;                 /* how many there were */
    uint64_t n;            /* sequences 1..n recorded */
    int *rc;
    uint64_t *hash;
    uint64_t last_by_subj[NSUBJ];
} snap;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

static uint64_t msg_hash(const js_msg *m) {
    size_t hl, dl;
    const void *h = js_msg_headers(m, &hl);
    const void *d = js_msg_data(m, &dl);
    uint64_t seq = js_msg_seq(m);
    int64_t ts = js_msg_time(m);
    uint64_t x = UINT64_C(0xcbf29ce484222325);
    x = fnv(x, js_msg_subject(m), strlen(js_msg_subject(m)) + 1);
    x = fnv(x, &hl, sizeof hl);
    if (hl)
        x = fnv(x, h, hl);
    x = fnv(x, &dl, sizeof dl);
    x = fnv(x, d, dl);
    x = fnv(x, &seq, sizeof seq);
    return fnv(x, &ts, sizeof ts);
}

static void snap_take(js_stream *s, snap *out) {
    struct js_stream_info *i = NULL;
    memset(out, 0, sizeof *out);
    ck_assert_int_eq(js_stream_info(s, &i), 0);
    out->st = *i->state;
    out->nlost = i->lost_len;
    for (size_t k = 0; k < i->lost_len && k < SNAP_LOST; k++)
        out->lost[k] = i->lost[k];
    js_stream_info_free(i);
    out->n = out->st.last_seq + 2;
    out->rc = calloc(out->n + 1, sizeof *out->rc);
    out->hash = calloc(out->n + 1, sizeof *out->hash);
    ck_assert_ptr_nonnull(out->rc);
    ck_assert_ptr_nonnull(out->hash);
    for (uint64_t q = 1; q <= out->n; q++) {
        js_msg *m = NULL;
        out->rc[q] = js_msg_get(s, q, &m);
        if (out->rc[q] == 0)
            out->hash[q] = msg_hash(m);
        js_msg_free(m);
    }
    for (int k = 0; k < NSUBJ; k++) {
        char subj[32];
        js_msg *m = NULL;
        snprintf(subj, sizeof subj, "rec.s%d", k);
        if (js_msg_get_last(s, subj, &m) == 0)
            out->last_by_subj[k] = js_msg_seq(m);
        js_msg_free(m);
    }
}

static void snap_free(snap *s) {
    free(s->rc);
    free(s->hash);
    memset(s, 0, sizeof *s);
}

/* 0 if equal, else a description of the first difference in buf. */
static int snap_diff(const snap *a, const snap *b, char *buf, size_t len) {
    const js_stream_state *x = &a->st, *y = &b->st;
#define FIELD(f)                                                           \
    if (x->f != y->f) {                                                    \
        snprintf(buf, len, #f ": %" PRIu64 " vs %" PRIu64, (uint64_t)x->f, \
                 (uint64_t)y->f);                                          \
        return 1;                                                          \
    }
    FIELD(msgs)
    FIELD(bytes)
    FIELD(first_seq)
    FIELD(first_ts)
    FIELD(last_seq)
    FIELD(last_ts)
    FIELD(num_subjects)
    FIELD(num_deleted)
    FIELD(lost_msgs)
    FIELD(lost_bytes)
#undef FIELD
    if (a->nlost != b->nlost) {
        snprintf(buf, len, "lost ranges: %zu vs %zu", a->nlost, b->nlost);
        return 1;
    }
    for (size_t k = 0; k < a->nlost && k < SNAP_LOST; k++)
        if (a->lost[k].first != b->lost[k].first ||
            a->lost[k].last != b->lost[k].last) {
            snprintf(buf, len, "lost range %zu: %" PRIu64 "..%" PRIu64
                     " vs %" PRIu64 "..%" PRIu64, k, a->lost[k].first,
                     a->lost[k].last, b->lost[k].first, b->lost[k].last);
            return 1;
        }
    for (uint64_t q = 1; q <= a->n && q <= b->n; q++)
        if (a->rc[q] != b->rc[q] || a->hash[q] != b->hash[q]) {
            snprintf(buf, len, "message %" PRIu64 ": rc %d vs %d%s", q,
                     a->rc[q], b->rc[q],
                     a->rc[q] == b->rc[q] ? ", content differs" : "");
            return 1;
        }
    for (int k = 0; k < NSUBJ; k++)
        if (a->last_by_subj[k] != b->last_by_subj[k]) {
            snprintf(buf, len, "last of rec.s%d: %" PRIu64 " vs %" PRIu64, k,
                     a->last_by_subj[k], b->last_by_subj[k]);
            return 1;
        }
    return 0;
}

static void snap_assert_eq(const snap *a, const snap *b, const char *what) {
    char why[256];
    ck_assert_msg(!snap_diff(a, b, why, sizeof why), "%s: %s", what, why);
}

/* ---- mapping the block files ----------------------------------------- */

typedef struct recinfo {
    uint64_t blk;   /* block number */
    size_t off;     /* offset of the record in its file */
    size_t len;
    uint8_t type;
    uint64_t seq;
    int last_in_blk;
} recinfo;

/* Every record of every block file of a clean store, in file order. */
static size_t map_records(const char *sdir, recinfo **out) {
    uint64_t *nos;
    int nb = tu_block_files(sdir, &nos);
    recinfo *v = NULL;
    size_t n = 0, cap = 0;
    ck_assert_int_gt(nb, 0);
    for (int i = 0; i < nb; i++) {
        char *p = tu_block_path(sdir, nos[i]);
        uint8_t *b;
        size_t len, off = JSI_BLK_HDR_LEN;
        ck_assert_int_eq(tu_read_file(p, &b, &len), 0);
        ck_assert_int_eq(jsi_blkhdr_check(b, len, nos[i]), 0);
        while (off < len) {
            jsi_rechdr h;
            ck_assert_msg(jsi_rec_parse_hdr(b + off, len - off, &h) == 1,
                          "%s: no whole record at %zu", p, off);
            ck_assert(jsi_rec_body_ok(b + off, &h));
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                v = realloc(v, cap * sizeof *v);
                ck_assert_ptr_nonnull(v);
            }
            v[n++] = (recinfo){nos[i], off, h.len, h.type, h.seq, 0};
            off += h.len;
        }
        if (n && v[n - 1].blk == nos[i])
            v[n - 1].last_in_blk = 1;
        free(b);
        free(p);
    }
    free(nos);
    *out = v;
    return n;
}

/* ====================================================================== */
/* Reopen                                                                 */
/* ====================================================================== */

/* Deletes and purges spread over many 4 KiB blocks; then close and reopen
 * (with the checkpoint, or _i == 1 without it) and compare everything. */
START_TEST(reopen_restores_messages_state_and_removals_across_blocks) {
    fx f;
    snap before, after;
    uint64_t rng = 42;
    fx_init(&f, "reopen", 4096, 24, 280);
    f.vfs = NULL; /* real syncs */
    fx_open(&f);
    fx_pub(&f, 400);
    for (int k = 0; k < 40; k++) { /* interior deletes across blocks */
        uint64_t s = 2 + tu_rng(&rng) % 397;
        if (model_id(&f, s))
            fx_del(&f, s);
    }
    fx_del(&f, 1);                  /* the first: first_seq moves */
    fx_purge(&f, "rec.s3", 150, 0); /* one subject below 150 */
    fx_purge(&f, "rec.s1", 0, 5);   /* one subject, keep 5 */
    fx_purge(&f, NULL, 60, 0);      /* everything below 60: whole blocks */
    fx_pub(&f, 20);
    fx_del(&f, f.last);             /* the last: last_seq stays */
    fx_check(&f);
    uint64_t *nos;
    char *sdir = fx_sdir(&f);
    int nb = tu_block_files(sdir, &nos);
    free(nos);
    ck_assert_int_gt(nb, 5);
    snap_take(f.s, &before);
    fx_close(&f);

    if (_i == 1)
        fx_rm_index(&f);
    fx_open(&f);
    fx_check(&f);
    snap_take(f.s, &after);
    snap_assert_eq(&before, &after, "after reopen");
    snap_free(&after);
    fx_close(&f);

    /* Once more (a rebuild wrote a fresh checkpoint): same again, and
     * publishing continues after the deleted last message. */
    fx_open(&f);
    snap_take(f.s, &after);
    snap_assert_eq(&before, &after, "after second reopen");
    fx_pub(&f, 5);
    fx_check(&f);
    fx_close(&f);
    fx_open(&f);
    fx_check(&f);
    fx_close(&f);
    snap_free(&before);
    snap_free(&after);
    free(sdir);
    fx_free(&f);
}
END_TEST

/* Deletes whose DEL records sit in the same block as the messages they
 * remove (the common case: the tail block), and one in an older block;
 * _i == 1: reopened without the checkpoint, so the DEL records are
 * replayed. */
START_TEST(deletes_in_the_tail_block_stay_deleted_after_reopen) {
    fx f;
    fx_init(&f, "del_tail", 4096, 100, 60);
    f.vfs = NULL; /* real syncs */
    fx_open(&f);
    fx_pub(&f, 30); /* two blocks */
    fx_del(&f, 29); /* in the tail block, logged there */
    fx_del(&f, 27);
    fx_del(&f, 3);  /* in the first block, logged in the tail */
    fx_check(&f);
    fx_close(&f);
    if (_i == 1)
        fx_rm_index(&f);
    fx_open(&f);
    fx_check(&f);
    fx_close(&f);
    fx_free(&f);
}
END_TEST

/* Blocks of the stream holding their bytes in memory (internal state, read
 * under the stream's lock). */
static size_t loaded_blocks(js_stream *s, size_t *nblks) {
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->ms->nblks; i++)
        n += s->ms->blks[i]->buf != NULL;
    *nblks = s->ms->nblks;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* The block cache's count of loaded blocks (ms->cached: loaded blocks
 * other than an adopted tail) matches the blocks actually loaded. A count
 * above the truth shrinks the cache for good. */
static void check_cache_count(js_stream *s, const char *when) {
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->ms->nblks; i++)
        n += s->ms->blks[i]->buf != NULL;
    if (s->ms->tail_adopted && n)
        n--;
    size_t cached = s->ms->cached;
    pthread_mutex_unlock(&s->mu);
    ck_assert_msg(cached == n,
                  "%s: the cache counts %zu loaded blocks, the blocks say %zu",
                  when, cached, n);
}

/* Memory after an open is bounded by the block cache (JSI_CACHE_BLOCKS
 * plus the tail), not by the size of the stream, whether the open used the
 * checkpoint (_i 0), rebuilt from every block (_i 1) or replayed many
 * blocks written after an old checkpoint (_i 2). No message carries a
 * header, so the duplicate-window scan reads nothing. */
START_TEST(open_keeps_no_more_blocks_in_memory_than_the_cache_holds) {
    fx f;
    size_t nb, loaded;
    char *saved = NULL, *ix = NULL;
    gen_headers = 0;
    fx_init(&f, "cache_bound", 4096, 100, 200);
    fx_open(&f);
    fx_pub(&f, 20);
    if (_i == 2) {
        fx_close(&f);
        ix = fx_index(&f);
        saved = tu_path("%s.index", f.dir);
        ck_assert_int_eq(tu_copy_file(ix, saved), 0);
        fx_open(&f);
    }
    fx_pub(&f, 300);
    fx_close(&f);
    if (_i == 1)
        fx_rm_index(&f);
    if (_i == 2)
        ck_assert_int_eq(tu_copy_file(saved, ix), 0);
    fx_open(&f);
    check_cache_count(f.s, "after the open");
    loaded = loaded_blocks(f.s, &nb);
    ck_assert_uint_gt(nb, 10);
    ck_assert_msg(loaded <= JSI_CACHE_BLOCKS + 1,
                  "%zu of %zu blocks loaded in memory after the open (the "
                  "cache holds %d and the tail)", loaded, nb,
                  JSI_CACHE_BLOCKS);
    fx_check(&f);
    loaded = loaded_blocks(f.s, &nb);
    ck_assert_msg(loaded <= JSI_CACHE_BLOCKS + 1,
                  "%zu of %zu blocks loaded after reading every message",
                  loaded, nb);
    fx_close(&f);
    if (saved)
        unlink(saved);
    free(saved);
    free(ix);
    fx_free(&f);
}
END_TEST

START_TEST(deleting_every_message_survives_reopen_as_empty_stream) {
    fx f;
    fx_init(&f, "delall", 4096, 100, 0);
    f.vfs = NULL; /* real syncs */
    fx_open(&f);
    fx_pub(&f, 60);
    for (uint64_t s = 60; s >= 1; s--) /* newest first: no FRONT records */
        fx_del(&f, s);
    fx_check(&f);
    fx_close(&f);
    if (_i == 1)
        fx_rm_index(&f);
    fx_open(&f);
    fx_check(&f); /* msgs 0, first = last + 1 = 61 */
    ck_assert_uint_eq(fx_pub1(&f), 61);
    fx_close(&f);
    fx_open(&f);
    fx_check(&f);
    fx_close(&f);
    fx_free(&f);
}
END_TEST

/* ====================================================================== */
/* Torn tail                                                              */
/* ====================================================================== */

enum {
    TORN_CUT_BODY,      /* last record cut inside its body */
    TORN_CUT_HEADER,    /* cut inside its 40-byte header */
    TORN_CUT_MAGIC,     /* cut inside its magic */
    TORN_GARBAGE,       /* random bytes appended */
    TORN_ZEROS,         /* a zero-filled page appended */
    TORN_PARTIAL_NEXT,  /* the first 60 bytes of a valid next record */
    TORN_HEADER_NEXT,   /* the first 20 bytes of a valid next record */
    TORN_EMPTY_BLOCK,   /* a new, empty block file after the last */
    TORN_SHORT_BLOCK,   /* a new block file holding 10 header bytes */
    TORN_KINDS
};

static const char *const torn_name[TORN_KINDS] = {
    "cut in body", "cut in header", "cut in magic", "garbage appended",
    "zeros appended", "partial next record", "partial next header",
    "empty next block file", "next block file with a partial header"};

/* _i: kind * 2 + (1: checkpoint removed). */
START_TEST(torn_tail_keeps_whole_records_and_sequence_continues) {
    int kind = _i / 2, no_index = _i % 2;
    fx f;
    recinfo *r;
    fx_init(&f, "torn", 4096, 24, 280);
    f.vfs = NULL; /* real syncs */
    fx_open(&f);
    fx_pub(&f, 30);
    fx_close(&f);
    char *sdir = fx_sdir(&f);
    size_t n = map_records(sdir, &r);
    recinfo *lr = &r[n - 1];
    ck_assert_uint_eq(lr->seq, 30);
    char *blk = tu_block_path(sdir, lr->blk);
    uint8_t junk[4096];
    uint64_t rs = 99;
    for (size_t k = 0; k < sizeof junk; k += 8) {
        uint64_t v = tu_rng(&rs);
        memcpy(junk + k, &v, 8);
    }
    switch (kind) {
    case TORN_CUT_BODY:
        ck_assert_int_eq(tu_truncate(blk, (int64_t)(lr->off + 40 +
                                                    (lr->len - 40) / 2)), 0);
        break;
    case TORN_CUT_HEADER:
        ck_assert_int_eq(tu_truncate(blk, (int64_t)(lr->off + 17)), 0);
        break;
    case TORN_CUT_MAGIC:
        ck_assert_int_eq(tu_truncate(blk, (int64_t)(lr->off + 3)), 0);
        break;
    case TORN_GARBAGE:
        ck_assert_int_eq(tu_append(blk, junk, 100), 0);
        break;
    case TORN_ZEROS:
        memset(junk, 0, sizeof junk);
        ck_assert_int_eq(tu_append(blk, junk, sizeof junk), 0);
        break;
    case TORN_EMPTY_BLOCK:
    case TORN_SHORT_BLOCK: {
        /* A crash between creating the next block file and writing it. */
        char *next = tu_block_path(sdir, lr->blk + 1);
        ck_assert_int_eq(tu_write_file(next, "JSBLK\r\n\x1a\x01\x00",
                                       kind == TORN_EMPTY_BLOCK ? 0 : 10), 0);
        free(next);
        break;
    }
    default: {
        uint8_t rec[2048];
        gmsg g;
        gen(9999, 200, 0, &g);
        size_t len = jsi_rec_encode_msg(rec, 31, 1, 0, g.subj, strlen(g.subj),
                                        NULL, 0, g.data, g.dlen);
        ck_assert_uint_gt(len, 60);
        ck_assert_int_eq(tu_append(blk, rec,
                                   kind == TORN_PARTIAL_NEXT ? 60 : 20), 0);
        break;
    }
    }
    if (no_index)
        fx_rm_index(&f);
    uint64_t keep = kind <= TORN_CUT_MAGIC ? 29 : 30;
    model_cut(&f, keep);
    int rc = fx_try_open(&f);
    ck_assert_msg(rc == 0, "%s: open: %s (%s)", torn_name[kind],
                  js_strerror(rc), js_errmsg());
    ck_assert_int_eq(js_stream_lookup(f.st, "R", &f.s), 0);
    /* Every whole record is back, nothing is reported lost (the torn
     * record was never acknowledged), and the next sequence follows the
     * last whole record. */
    check_cache_count(f.s, torn_name[kind]);
    fx_check(&f);
    fx_check(&f); /* again: reads after the first pass filled the cache */
    check_cache_count(f.s, torn_name[kind]);
    ck_assert_int_eq(tu_file_size(blk) >= (int64_t)(lr->off), 1);
    fx_pub(&f, 3);
    fx_check(&f);
    fx_close(&f);
    fx_open(&f);
    fx_check(&f);
    fx_close(&f);
    fx_rm_index(&f);
    fx_open(&f);
    fx_check(&f);
    fx_close(&f);
    free(blk);
    free(sdir);
    free(r);
    fx_free(&f);
}
END_TEST

/* Cut the last block at every offset inside its last three records: the
 * records wholly before the cut survive, nothing is lost, the next publish
 * takes the next sequence. _i == 1: without the checkpoint. */
START_TEST(torn_tail_at_every_offset_of_the_last_three_records) {
    fx f;
    recinfo *r;
    fx_init(&f, "torn_every", 4096, 40, 30);
    fx_open(&f);
    fx_pub(&f, 50);
    fx_close(&f);
    char *master = tu_path("%s.master", f.dir);
    tu_rm_rf(master);
    ck_assert_int_eq(rename(f.dir, master), 0);
    char *msdir = tu_stream_dir(master);
    ck_assert_ptr_nonnull(msdir);
    size_t n = map_records(msdir, &r);
    ck_assert(n >= 3 && r[n - 3].blk == r[n - 1].blk);
    const char *id = strrchr(msdir, '/') + 1;
    unsigned cuts = 0;
    for (size_t k = n - 3; k < n; k++) {
        for (size_t cut = r[k].off; cut < r[k].off + r[k].len; cut++) {
            ck_assert_int_eq(tu_restore_tree(master, f.dir), 0);
            char *blk = tu_path("%s/streams/%s/%016" PRIx64 ".blk", f.dir, id,
                                r[k].blk);
            ck_assert_int_eq(tu_truncate(blk, (int64_t)cut), 0);
            free(blk);
            if (_i == 1)
                fx_rm_index(&f);
            /* The model: ids 1..50 at seqs 1..50; keep those before. */
            f.next_id = 1;
            model_cut(&f, 0);
            for (uint64_t s = 1; s < r[k].seq; s++)
                model_set(&f, s, f.next_id++);
            f.next_id = 51;
            fx_open(&f);
            fx_check(&f);
            /* Without a checkpoint the cut records look like a crash
             * before their sync, and their sequences are given out again.
             * The checkpoint vouched for all 50 as durable: the cut ones
             * are reported lost (fx_check) and never given out again. */
            ck_assert_uint_eq(fx_pub1(&f), _i == 1 ? r[k].seq : 51);
            fx_close(&f);
            cuts++;
        }
    }
    printf("torn tail (%s checkpoint): %u cut offsets over the last 3 "
           "records, all recovered\n", _i ? "without" : "with", cuts);
    fflush(stdout);
    free(r);
    tu_rm_rf(master);
    free(master);
    free(msdir);
    fx_free(&f);
}
END_TEST

/* ====================================================================== */
/* Damage to one record                                                   */
/* ====================================================================== */

enum { DMG_PAYLOAD, DMG_HDR_SEQ, DMG_HDR_LEN, DMG_FIRST_PAYLOAD, DMG_KINDS };
static const char *const dmg_name[DMG_KINDS] = {
    "payload", "header seq", "header len", "first message's payload"};

/* A byte of an older record (mid-block, in the second block) is damaged.
 * _i: kind * 2 + (1: checkpoint removed, forcing a full rebuild). */
START_TEST(damaged_older_record_costs_only_that_message) {
    int kind = _i / 2, no_index = _i % 2;
    fx f;
    recinfo *r;
    fx_init(&f, "damage", 4096, 24, 280);
    fx_open(&f);
    fx_pub(&f, 60);
    fx_close(&f);
    char *sdir = fx_sdir(&f);
    size_t n = map_records(sdir, &r);
    /* The third record of the second block: records before and after it
     * in the same block, and blocks before and after. Or the very first
     * message of the stream. */
    size_t t = 0;
    if (kind != DMG_FIRST_PAYLOAD) {
        while (t < n && r[t].blk == r[0].blk)
            t++;
        t += 2;
        ck_assert(t < n && r[t].blk == r[t - 2].blk);
    }
    ck_assert(!r[t].last_in_blk && r[n - 1].blk > r[t].blk);
    uint64_t victim = r[t].seq;
    char *blk = tu_block_path(sdir, r[t].blk);
    int64_t at = kind == DMG_PAYLOAD || kind == DMG_FIRST_PAYLOAD
                     ? (int64_t)(r[t].off + r[t].len - 5)
                 : kind == DMG_HDR_SEQ ? (int64_t)(r[t].off + 8)
                                       : (int64_t)(r[t].off + 4);
    ck_assert_int_eq(tu_flip_byte(blk, at, kind == DMG_HDR_LEN ? 0x04 : 0x21),
                     0);
    if (no_index)
        fx_rm_index(&f);

    fx_open(&f);
    struct js_stream_info *i = fx_info(&f);
    if (no_index)
        ck_assert_msg(i->state->lost_msgs == 1,
                      "%s damage, full rebuild: lost_msgs %" PRIu64
                      ", want 1",
                      dmg_name[kind], i->state->lost_msgs);
    else
        ck_assert_uint_le(i->state->lost_msgs, 1);
    ck_assert_uint_eq(i->state->last_seq, 60);
    js_stream_info_free(i);
    for (uint64_t s = 1; s <= 60; s++) {
        js_msg *m = NULL;
        int rc = js_msg_get(f.s, s, &m);
        if (s == victim) {
            ck_assert_msg(rc == JS_ECORRUPT, "damaged %" PRIu64 ": %s", s,
                          rc ? js_strerror(rc) : "read back");
        } else {
            ck_assert_msg(rc == 0, "%s damage to %" PRIu64 ": get %" PRIu64
                          ": %s", dmg_name[kind], victim, s, js_strerror(rc));
            ck_assert(msg_matches(m, s, model_id(&f, s), f.dmin, f.dspan));
        }
        js_msg_free(m);
    }
    /* Scans skip the damaged message and see every other one. */
    uint64_t s = 1, seen = 0;
    js_msg *m = NULL;
    while (js_msg_get_next(f.s, NULL, s, &m) == 0) {
        ck_assert_uint_ne(js_msg_seq(m), victim);
        s = js_msg_seq(m) + 1;
        seen++;
        js_msg_free(m);
    }
    ck_assert_uint_eq(seen, 59);
    /* Writing continues and everything survives another reopen. */
    ck_assert_uint_eq(fx_pub1(&f), 61);
    fx_close(&f);
    fx_open(&f);
    ck_assert_int_eq(js_msg_get(f.s, victim, &m), JS_ECORRUPT);
    model_set(&f, victim, 0);
    for (s = 1; s <= 61; s++) {
        if (!model_id(&f, s))
            continue;
        ck_assert_int_eq(js_msg_get(f.s, s, &m), 0);
        ck_assert(msg_matches(m, s, model_id(&f, s), f.dmin, f.dspan));
        js_msg_free(m);
    }
    fx_close(&f);
    free(blk);
    free(sdir);
    free(r);
    fx_free(&f);
}
END_TEST

/* The last record of the stream has a damaged header while the checkpoint
 * (which covers it) is present: the open must still succeed. */
START_TEST(damaged_header_of_last_record_does_not_stop_open) {
    fx f;
    recinfo *r;
    fx_init(&f, "damage_last", 4096, 200, 0);
    fx_open(&f);
    fx_pub(&f, 10);
    fx_close(&f);
    char *sdir = fx_sdir(&f);
    size_t n = map_records(sdir, &r);
    char *blk = tu_block_path(sdir, r[n - 1].blk);
    /* seq field: more than 64 bytes before the end of the file. */
    ck_assert_int_eq(tu_flip_byte(blk, (int64_t)(r[n - 1].off + 8), 0x01), 0);
    int rc = fx_try_open(&f);
    ck_assert_msg(rc == 0, "open with the last record's header damaged: %s "
                  "(%s)", js_strerror(rc), js_errmsg());
    ck_assert_int_eq(js_stream_lookup(f.st, "R", &f.s), 0);
    for (uint64_t s = 1; s < 10; s++) {
        js_msg *m = NULL;
        ck_assert_int_eq(js_msg_get(f.s, s, &m), 0);
        ck_assert(msg_matches(m, s, model_id(&f, s), f.dmin, f.dspan));
        js_msg_free(m);
    }
    js_msg *m = NULL;
    rc = js_msg_get(f.s, 10, &m);
    ck_assert_msg(rc == JS_ECORRUPT || rc == JS_EMSG_NOT_FOUND,
                  "damaged last message: %s", rc ? js_strerror(rc) : "read");
    fx_close(&f);
    free(blk);
    free(sdir);
    free(r);
    fx_free(&f);
}
END_TEST

/* ---- the sweep ---------------------------------------------------------- */

enum { SW_NO_INDEX, SW_CLEAN_INDEX, SW_OLD_INDEX, SW_MODES };
static const char *const sw_name[SW_MODES] = {
    "no checkpoint", "checkpoint at close", "checkpoint after 10 of 20"};

static unsigned sweep_stride(void) {
    const char *e = getenv("SWEEP_STRIDE");
    unsigned v = e ? (unsigned)strtoul(e, NULL, 10) : 0;
    return v ? v : 7;
}

/* Should the byte at off of a file be flipped? Every byte of block and
 * record headers, every stride-th byte of record bodies. */
static int sweep_pick(const recinfo *r, size_t n, uint64_t blk, size_t off,
                      unsigned stride) {
    if (off < JSI_BLK_HDR_LEN)
        return 1;
    for (size_t k = 0; k < n; k++)
        if (r[k].blk == blk && off >= r[k].off && off < r[k].off + r[k].len)
            return off - r[k].off < JSI_REC_HDR_LEN ||
                   (off - r[k].off) % stride == 0;
    return 1;
}

/* Flip one bit of one byte of the block files, on a fresh copy each time,
 * and reopen: the open succeeds, every message whose record is untouched
 * reads back intact, the damaged one (if any) is lost, JS_ECORRUPT or gone,
 * and a new publish works. _i: SW_* (how the checkpoint stands). */
START_TEST(sweep_flipped_bytes_in_block_files_have_blast_radius_one) {
    const int nmsg = 20;
    fx f;
    recinfo *r;
    unsigned stride = sweep_stride();
    fx_init(&f, "sweep", 4096, 200, 300);
    fx_open(&f);
    fx_pub(&f, _i == SW_OLD_INDEX ? 10 : (unsigned)nmsg);
    fx_close(&f);
    char *saved = NULL;
    if (_i == SW_OLD_INDEX) {
        saved = tu_path("%s.index", f.dir);
        char *ix = fx_index(&f);
        ck_assert_int_eq(tu_copy_file(ix, saved), 0);
        fx_open(&f);
        fx_pub(&f, 10);
        fx_close(&f);
        ck_assert_int_eq(tu_copy_file(saved, ix), 0);
        free(ix);
    } else if (_i == SW_NO_INDEX) {
        fx_rm_index(&f);
    }
    char *master = tu_path("%s.master", f.dir);
    tu_rm_rf(master);
    ck_assert_int_eq(rename(f.dir, master), 0);
    char *msdir = tu_stream_dir(master);
    ck_assert_ptr_nonnull(msdir);
    const char *sid = strrchr(msdir, '/') + 1;
    size_t n = map_records(msdir, &r);
    uint64_t *nos;
    int nb = tu_block_files(msdir, &nos);
    ck_assert_int_ge(nb, 2);

    unsigned flips = 0, open_fail = 0, bad = 0, max_radius = 0;
    unsigned at_open = 0, on_read = 0, torn = 0, reused = 0, harmless = 0;
    char first_bad[8][256];
    double t0 = tu_now();
    for (int b = 0; b < nb; b++) {
        char *mblk = tu_block_path(msdir, nos[b]);
        int64_t size = tu_file_size(mblk);
        free(mblk);
        for (int64_t off = 0; off < size; off++) {
            if (!sweep_pick(r, n, nos[b], (size_t)off, stride))
                continue;
            /* Which message does this byte belong to, and is it in the
             * header of the stream's last record? Damage there looks like a
             * torn write (the header no longer says a whole record is
             * there), so without a checkpoint that covers the record it
             * may be dropped as a torn tail: the one silent loss allowed. */
            uint64_t victim = 0;
            int torn_ok = 0;
            for (size_t k = 0; k < n; k++)
                if (r[k].blk == nos[b] && (size_t)off >= r[k].off &&
                    (size_t)off < r[k].off + r[k].len) {
                    victim = r[k].type == JSI_REC_MSG ? r[k].seq : 0;
                    torn_ok = k == n - 1 && _i != SW_CLEAN_INDEX &&
                              (size_t)off < r[k].off + JSI_REC_HDR_LEN;
                }
            ck_assert_int_eq(tu_restore_tree(master, f.dir), 0);
            char *blk = tu_path("%s/streams/%s/%016" PRIx64 ".blk", f.dir,
                                sid, nos[b]);
            ck_assert_int_eq(tu_flip_byte(blk, off, (uint8_t)(1u << (off % 8))),
                             0);
            free(blk);
            flips++;
            char why[256] = "";
#define SWEEP_FAIL(...)                                                   \
    do {                                                                  \
        if (!why[0]) {                                                    \
            int k_ = snprintf(why, sizeof why,                            \
                              "block %" PRIu64 " byte %" PRId64           \
                              " (message %" PRIu64 "): ",                 \
                              nos[b], off, victim);                       \
            snprintf(why + k_, sizeof why - (size_t)k_, __VA_ARGS__);     \
        }                                                                 \
    } while (0)
            int rc = fx_try_open(&f);
            if (rc != 0) {
                open_fail++;
                SWEEP_FAIL("js_open: %s (%s)", js_strerror(rc), js_errmsg());
                if (bad < 8)
                    strcpy(first_bad[bad], why);
                bad++;
                continue;
            }
            ck_assert_int_eq(js_stream_lookup(f.st, "R", &f.s), 0);
            struct js_stream_info *info = fx_info(&f);
            uint64_t lost = info->state->lost_msgs;
            uint64_t last = info->state->last_seq;
            js_stream_info_free(info);
            unsigned radius = 0;
            int victim_rc = 0;
            for (uint64_t s = 1; s <= (uint64_t)nmsg; s++) {
                js_msg *m = NULL;
                int grc = js_msg_get(f.s, s, &m);
                int ok = grc == 0 &&
                         msg_matches(m, s, (uint32_t)s, f.dmin, f.dspan);
                js_msg_free(m);
                if (grc == 0 && !ok)
                    SWEEP_FAIL("message %" PRIu64 " read back WRONG", s);
                if (ok)
                    continue;
                radius++;
                if (s == victim)
                    victim_rc = grc;
                else
                    SWEEP_FAIL("untouched message %" PRIu64 ": %s", s,
                               grc ? js_strerror(grc) : "wrong content");
            }
            if (radius > max_radius)
                max_radius = radius;
            if (lost > 1)
                SWEEP_FAIL("lost_msgs %" PRIu64 " for one damaged record",
                           lost);
            if (victim && victim_rc == JS_ECORRUPT && lost) {
                at_open++;
            } else if (victim && victim_rc == JS_ECORRUPT) {
                on_read++;
                if (_i == SW_NO_INDEX) /* every record was replayed */
                    SWEEP_FAIL("damage not reported at open (lost_msgs 0) "
                               "after a full rebuild");
            } else if (victim && victim_rc && torn_ok && !lost) {
                torn++;
            } else if (victim && victim_rc) {
                SWEEP_FAIL("damaged message: get says %s, lost_msgs %" PRIu64
                           " (want JS_ECORRUPT%s)",
                           js_strerror(victim_rc), lost,
                           _i == SW_NO_INDEX ? " and lost_msgs 1" : "");
            } else {
                harmless++;
                if (lost)
                    SWEEP_FAIL("lost_msgs %" PRIu64 " with no message "
                               "damaged", lost);
            }
            if (getenv("SWEEP_VERBOSE") && victim_rc)
                printf("  block %" PRIu64 " byte %" PRId64 ": message %" PRIu64
                       " %s, lost_msgs %" PRIu64 ", last %" PRIu64 "\n",
                       nos[b], off, victim, js_strerror(victim_rc), lost,
                       last);
            /* Writing continues after the damage, with a new sequence:
             * a damaged last record dropped as a torn tail leaves a gap,
             * so no sequence that may have been acknowledged is ever given
             * out again. */
            js_pub_ack ack = JS_PUB_ACK_INIT;
            rc = js_publish(f.st, "rec.new", NULL, 0, "x", 1, &ack);
            if (rc != 0)
                SWEEP_FAIL("publish after open: %s", js_strerror(rc));
            else if (ack.seq != last + 1)
                SWEEP_FAIL("publish got seq %" PRIu64 " after last %" PRIu64,
                           ack.seq, last);
            if (rc == 0 && ack.seq <= (uint64_t)nmsg) {
                reused++;
                SWEEP_FAIL("publish reused sequence %" PRIu64
                           "%s", ack.seq, torn_ok ? " (dropped as torn)" : "");
            }
#undef SWEEP_FAIL
            fx_close(&f);
            if (why[0]) {
                if (bad < 8)
                    strcpy(first_bad[bad], why);
                bad++;
            }
        }
    }
    printf("sweep (%s): %u single-bit flips over %d block files (stride %u) "
           "in %.1f s: open failures %u, max blast radius %u message(s); the "
           "damaged message reported lost at open %u, JS_ECORRUPT on read "
           "only %u, dropped as a torn tail %u (its sequence given out again "
           "%u), no message damaged %u; failures %u\n",
           sw_name[_i], flips, nb, stride, tu_now() - t0, open_fail,
           max_radius, at_open, on_read, torn, reused, harmless, bad);
    for (unsigned k = 0; k < bad && k < 8; k++)
        printf("  sweep (%s) failure: %s\n", sw_name[_i], first_bad[k]);
    fflush(stdout);
    ck_assert_msg(bad == 0, "sweep (%s): %u of %u flips broke the promise, "
                  "first: %s", sw_name[_i], bad, flips,
                  bad ? first_bad[0] : "");
    ck_assert_uint_le(max_radius, 1);
    free(nos);
    free(r);
    tu_rm_rf(master);
    free(master);
    free(msdir);
    if (saved) {
        unlink(saved);
        free(saved);
    }
    fx_free(&f);
}
END_TEST

/* ====================================================================== */
/* Checkpoint                                                             */
/* ====================================================================== */

/* A store with removals of every kind over many blocks, closed cleanly. */
static void build_mixed(fx *f, const char *name) {
    uint64_t rng = 7;
    fx_init(f, name, 4096, 24, 280);
    fx_open(f);
    fx_pub(f, 250);
    for (int k = 0; k < 25; k++) {
        uint64_t s = 2 + tu_rng(&rng) % 247;
        if (model_id(f, s))
            fx_del(f, s);
    }
    fx_purge(f, "rec.s2", 0, 3);
    fx_purge(f, NULL, 40, 0);
    fx_pub(f, 30);
    fx_check(f);
}

START_TEST(clean_close_writes_index_and_reopen_with_it_equals_full_rebuild) {
    fx f;
    snap a, b, c;
    build_mixed(&f, "ckpt_eq");
    snap_take(f.s, &a);
    fx_close(&f);
    char *ix = fx_index(&f);
    ck_assert_msg(tu_exists(ix), "no checkpoint after a clean close");

    fx_open(&f); /* from the checkpoint */
    fx_check(&f);
    snap_take(f.s, &b);
    fx_close(&f);
    snap_assert_eq(&a, &b, "reopen with checkpoint");

    ck_assert_int_eq(unlink(ix), 0);
    fx_open(&f); /* full rebuild, which writes a new checkpoint */
    ck_assert_msg(tu_exists(ix), "no checkpoint after a full rebuild");
    fx_check(&f);
    snap_take(f.s, &c);
    fx_close(&f);
    snap_assert_eq(&a, &c, "reopen without checkpoint");
    snap_free(&a);
    snap_free(&b);
    snap_free(&c);
    free(ix);
    fx_free(&f);
}
END_TEST

enum {
    CK_FLIP_MAGIC,
    CK_FLIP_MIDDLE,
    CK_FLIP_CRC,
    CK_TRUNC_HALF,
    CK_EMPTY,
    CK_GARBAGE,
    CK_KINDS
};

/* A damaged checkpoint is ignored: the open rebuilds from the blocks and
 * reaches the same state. */
START_TEST(corrupt_index_falls_back_to_full_rebuild_with_same_state) {
    fx f;
    snap a, b;
    build_mixed(&f, "ckpt_bad");
    snap_take(f.s, &a);
    fx_close(&f);
    char *ix = fx_index(&f);
    int64_t size = tu_file_size(ix);
    ck_assert_int_gt(size, 16);
    switch (_i) {
    case CK_FLIP_MAGIC:
        ck_assert_int_eq(tu_flip_byte(ix, 1, 0x01), 0);
        break;
    case CK_FLIP_MIDDLE:
        ck_assert_int_eq(tu_flip_byte(ix, size / 2, 0x10), 0);
        break;
    case CK_FLIP_CRC:
        ck_assert_int_eq(tu_flip_byte(ix, size - 1, 0x80), 0);
        break;
    case CK_TRUNC_HALF:
        ck_assert_int_eq(tu_truncate(ix, size / 2), 0);
        break;
    case CK_EMPTY:
        ck_assert_int_eq(tu_truncate(ix, 0), 0);
        break;
    default: {
        uint8_t junk[512];
        uint64_t rs = 5;
        for (size_t k = 0; k < sizeof junk; k++)
            junk[k] = (uint8_t)tu_rng(&rs);
        ck_assert_int_eq(tu_write_file(ix, junk, sizeof junk), 0);
    }
    }
    fx_open(&f);
    fx_check(&f);
    snap_take(f.s, &b);
    snap_assert_eq(&a, &b, "reopen with a damaged checkpoint");
    fx_pub(&f, 3);
    fx_check(&f);
    fx_close(&f);
    snap_free(&a);
    snap_free(&b);
    free(ix);
    fx_free(&f);
}
END_TEST

/* Every byte of the checkpoint, flipped in turn: same state each time. */
START_TEST(every_flipped_index_byte_gives_same_state) {
    fx f;
    snap a, b;
    fx_init(&f, "ckpt_sweep", 4096, 24, 280);
    fx_open(&f);
    fx_pub(&f, 40);
    fx_del(&f, 17);
    fx_purge(&f, NULL, 5, 0);
    fx_pub(&f, 3);
    snap_take(f.s, &a);
    fx_close(&f);
    char *master = tu_path("%s.master", f.dir);
    tu_rm_rf(master);
    ck_assert_int_eq(rename(f.dir, master), 0);
    char *msdir = tu_stream_dir(master);
    const char *sid = strrchr(msdir, '/') + 1;
    char *mix = tu_path("%s/index", msdir);
    int64_t size = tu_file_size(mix);
    ck_assert_int_gt(size, 0);
    for (int64_t off = 0; off < size; off++) {
        ck_assert_int_eq(tu_restore_tree(master, f.dir), 0);
        char *ix = tu_path("%s/streams/%s/index", f.dir, sid);
        ck_assert_int_eq(tu_flip_byte(ix, off, (uint8_t)(1u << (off % 8))), 0);
        free(ix);
        int rc = fx_try_open(&f);
        ck_assert_msg(rc == 0, "index byte %" PRId64 ": open: %s (%s)", off,
                      js_strerror(rc), js_errmsg());
        ck_assert_int_eq(js_stream_lookup(f.st, "R", &f.s), 0);
        snap_take(f.s, &b);
        char why[256];
        ck_assert_msg(!snap_diff(&a, &b, why, sizeof why),
                      "index byte %" PRId64 " flipped: %s", off, why);
        snap_free(&b);
        fx_close(&f);
    }
    printf("checkpoint sweep: %" PRId64 " single-bit flips of the index, "
           "all fell back to the same state\n", size);
    fflush(stdout);
    snap_free(&a);
    tu_rm_rf(master);
    free(master);
    free(mix);
    free(msdir);
    fx_free(&f);
}
END_TEST

enum {
    OLD_SAME_TAIL,
    OLD_NEW_BLOCKS,
    OLD_REMOVALS,
    OLD_DEAD_BLOCKS,
    OLD_EMPTY_NEXT, /* and a crash left an empty next block file */
    OLD_KINDS
};

/* The checkpoint is older than the blocks (a crash after appends but
 * before the next checkpoint): the open replays the newer records. */
START_TEST(old_index_replays_newer_records) {
    fx f;
    snap a, b;
    fx_init(&f, "ckpt_old", 4096, 24, 280);
    fx_open(&f);
    fx_pub(&f, 100);
    fx_del(&f, 50);
    fx_close(&f);
    char *ix = fx_index(&f);
    char *saved = tu_path("%s.index", f.dir);
    ck_assert_int_eq(tu_copy_file(ix, saved), 0);

    fx_open(&f);
    switch (_i) {
    case OLD_SAME_TAIL:
        fx_pub(&f, 2);
        break;
    case OLD_NEW_BLOCKS:
    case OLD_EMPTY_NEXT:
        fx_pub(&f, 100);
        break;
    case OLD_REMOVALS:
        fx_pub(&f, 60);
        fx_del(&f, 10);  /* before the checkpoint */
        fx_del(&f, 130); /* after it */
        fx_purge(&f, "rec.s4", 0, 2);
        fx_pub(&f, 5);
        break;
    default:
        fx_pub(&f, 60);
        fx_purge(&f, NULL, 120, 0); /* blocks die; files unlinked */
        fx_pub(&f, 5);
        break;
    }
    fx_check(&f);
    snap_take(f.s, &a);
    fx_close(&f);
    ck_assert_int_eq(tu_copy_file(saved, ix), 0);
    if (_i == OLD_EMPTY_NEXT) {
        char *sdir = fx_sdir(&f), *last = tu_last_block(sdir);
        uint64_t no = strtoull(strrchr(last, '/') + 1, NULL, 16);
        char *next = tu_block_path(sdir, no + 1);
        ck_assert_int_eq(tu_write_file(next, "", 0), 0);
        free(next);
        free(last);
        free(sdir);
    }

    fx_open(&f);
    fx_check(&f);
    fx_check(&f); /* again, with the cache warm */
    snap_take(f.s, &b);
    snap_assert_eq(&a, &b, "reopen from an old checkpoint");
    fx_pub(&f, 3);
    fx_check(&f);
    fx_close(&f);
    fx_open(&f);
    fx_check(&f);
    fx_close(&f);
    snap_free(&a);
    snap_free(&b);
    unlink(saved);
    free(saved);
    free(ix);
    fx_free(&f);
}
END_TEST

/* ====================================================================== */
/* First sequence and purge-all                                           */
/* ====================================================================== */

START_TEST(configured_first_seq_survives_reopen) {
    fx f;
    fx_init(&f, "first_seq", 4096, 24, 100);
    f.vfs = NULL; /* real syncs */
    f.first_seq = 1000;
    fx_open(&f);
    fx_check(&f); /* first 1000, last 999 */
    fx_close(&f);
    if (_i == 1)
        fx_rm_index(&f);
    fx_open(&f);
    fx_check(&f);
    ck_assert_uint_eq(fx_pub1(&f), 1000);
    fx_close(&f);
    if (_i == 1)
        fx_rm_index(&f);
    fx_open(&f);
    fx_check(&f);
    fx_close(&f);
    fx_free(&f);
}
END_TEST

START_TEST(purge_all_state_survives_reopen) {
    fx f;
    js_msg *m = NULL;
    fx_init(&f, "purge_all", 4096, 100, 100);
    f.vfs = NULL; /* real syncs */
    fx_open(&f);
    fx_pub(&f, 50);
    fx_purge(&f, NULL, 0, 0);
    fx_check(&f); /* msgs 0, first 51, last 50 */
    fx_close(&f);
    if (_i == 1)
        fx_rm_index(&f);
    fx_open(&f);
    fx_check(&f);
    ck_assert_int_eq(js_msg_get(f.s, 50, &m), JS_EMSG_NOT_FOUND);
    ck_assert_int_eq(js_msg_get_next(f.s, NULL, 1, &m), JS_EMSG_NOT_FOUND);
    ck_assert_int_eq(js_msg_get_last(f.s, "rec.s1", &m), JS_EMSG_NOT_FOUND);
    ck_assert_uint_eq(fx_pub1(&f), 51);
    fx_pub(&f, 9);
    fx_purge(&f, NULL, 0, 0); /* again, now with a FRONT after a FRONT */
    fx_close(&f);
    if (_i == 1)
        fx_rm_index(&f);
    fx_open(&f);
    fx_check(&f); /* first 61, last 60 */
    ck_assert_uint_eq(fx_pub1(&f), 61);
    fx_close(&f);
    if (_i == 1)
        fx_rm_index(&f);
    fx_open(&f);
    fx_check(&f);
    fx_close(&f);
    fx_free(&f);
}
END_TEST

/* The stream's first sequence sits on a lost stretch (messages the
 * checkpoint vouched for, cut off the only block), and a later block
 * starts with the FRONT record stating it; the older block is dropped.
 * A rebuild from that block alone must find the same first sequence as
 * the checkpoint: it once left it at 1, the FRONT record finding no
 * message to remove (fuzz/regress/msgstore/first-goes-back-after-rebuild).
 * _i: the reopen that damages is with (0) or without (1) the checkpoint. */
START_TEST(first_on_a_lost_stretch_survives_a_rebuild_from_a_later_block) {
    fx f;
    snap a, b, c;
    recinfo *r;
    fx_init(&f, "front_lost", 4096, 100, 0);
    fx_open(&f);
    fx_pub(&f, 10);
    fx_purge(&f, NULL, 0, 0); /* first 11 */
    fx_pub(&f, 3);            /* 11..13, in the same block */
    fx_close(&f);
    char *sdir = fx_sdir(&f);
    size_t n = map_records(sdir, &r);
    size_t k = 0;
    while (k < n && !(r[k].type == JSI_REC_MSG && r[k].seq == 11))
        k++;
    ck_assert(k < n && r[0].blk == r[k].blk && r[n - 1].blk == r[k].blk);
    char *blk = tu_block_path(sdir, r[k].blk);
    ck_assert_int_eq(tu_truncate(blk, (int64_t)r[k].off), 0);
    if (_i)
        fx_rm_index(&f);
    fx_open(&f);
    for (uint64_t q = 11; q <= 13; q++)
        model_set(&f, q, 0);
    struct js_stream_info *i = fx_info(&f);
    if (!_i) { /* the checkpoint vouched for them: lost, never reused */
        ck_assert_uint_eq(i->state->first_seq, 11);
        ck_assert_uint_eq(i->state->last_seq, 13);
        ck_assert_uint_eq(i->lost_len, 1);
        ck_assert_uint_eq(i->lost[0].first, 11);
        ck_assert_uint_eq(i->lost[0].last, 13);
    } else { /* nothing says they existed: a crash before they were */
        ck_assert_uint_eq(i->state->last_seq, 10);
        model_cut(&f, 10);
    }
    js_stream_info_free(i);
    fx_pub(&f, 30); /* new blocks; the first one is dropped */
    snap_take(f.s, &a);
    fx_close(&f);
    uint64_t *nos;
    int nb = tu_block_files(sdir, &nos);
    ck_assert_int_gt(nb, 1);
    ck_assert_uint_gt(nos[0], r[k].blk);
    free(nos);
    fx_open(&f);
    snap_take(f.s, &b);
    fx_close(&f);
    snap_assert_eq(&a, &b, "reopen with checkpoint");
    fx_rm_index(&f);
    fx_open(&f);
    snap_take(f.s, &c);
    fx_close(&f);
    snap_assert_eq(&a, &c, "reopen without checkpoint");
    snap_free(&a);
    snap_free(&b);
    snap_free(&c);
    free(blk);
    free(r);
    free(sdir);
    fx_free(&f);
}
END_TEST

/* ====================================================================== */
/* Lost sequences                                                         */
/* ====================================================================== */

/* info's lost ranges are exactly [lo, hi] (lo 0: none). */
static void assert_lost(fx *f, uint64_t lo, uint64_t hi, const char *when) {
    struct js_stream_info *i = fx_info(f);
    if (!lo) {
        ck_assert_msg(i->lost_len == 0 && i->state->lost_msgs == 0,
                      "%s: %zu lost range(s) (first %" PRIu64 "..%" PRIu64
                      "), lost_msgs %" PRIu64 ", none damaged", when,
                      i->lost_len, i->lost_len ? i->lost[0].first : 0,
                      i->lost_len ? i->lost[0].last : 0,
                      i->state->lost_msgs);
    } else {
        ck_assert_msg(i->lost_len == 1 && i->lost[0].first == lo &&
                          i->lost[0].last == hi &&
                          i->state->lost_msgs == hi - lo + 1,
                      "%s: %zu lost range(s) (first %" PRIu64 "..%" PRIu64
                      "), lost_msgs %" PRIu64 ", want %" PRIu64 "..%" PRIu64
                      " (first_seq %" PRIu64 ")", when, i->lost_len,
                      i->lost_len ? i->lost[0].first : 0,
                      i->lost_len ? i->lost[0].last : 0,
                      i->state->lost_msgs, lo, hi, i->state->first_seq);
        ck_assert_uint_gt(i->state->lost_bytes, 0);
    }
    js_stream_info_free(i);
}

enum { PAST_PURGE_BELOW, PAST_DELETES, PAST_PURGE_ALL, PAST_KINDS };
static const char *const past_name[PAST_KINDS] = {
    "purge below", "deletes of every message before it", "purge of all"};

/* A message found damaged at open stays reported lost, as NATS keeps its
 * LostStreamData, when the stream's first sequence moves past it (a
 * purge, deletes), after its block file is gone, and at every later open,
 * with the checkpoint or without it; an undamaged store reports nothing
 * through the same steps (the FRONT records of purges are not losses).
 * _i: how the first sequence moves past (PAST_*) * 2 + (1: damaged). */
START_TEST(lost_message_stays_reported_after_the_first_sequence_passes_it) {
    int how = _i / 2, damaged = _i % 2;
    fx f;
    snap a, b;
    recinfo *r;
    fx_init(&f, "lost_front", 4096, 24, 280);
    fx_open(&f);
    fx_pub(&f, 60);
    fx_close(&f);
    char *sdir = fx_sdir(&f);
    size_t n = map_records(sdir, &r);
    /* The third record of the first block: the first removals leave the
     * block (and its damage) there, the later ones drop it. */
    size_t t = 2;
    ck_assert(t < n && r[t].type == JSI_REC_MSG && !r[t].last_in_blk &&
              r[t].blk == r[0].blk);
    uint64_t victim = r[t].seq, vblk = r[t].blk, lo = 0;
    if (damaged) {
        char *blk = tu_block_path(sdir, vblk);
        ck_assert_int_eq(tu_flip_byte(blk, (int64_t)(r[t].off + r[t].len - 5),
                                      0x21), 0);
        free(blk);
        lo = victim;
    }
    fx_rm_index(&f); /* the open reads every record: the damage is found */
    fx_open(&f);
    if (damaged)
        model_set(&f, victim, 0);
    assert_lost(&f, lo, lo, "open that found it");
    if (how == PAST_PURGE_BELOW)
        fx_purge(&f, NULL, victim + 3, 0);
    else if (how == PAST_DELETES)
        for (uint64_t q = 1; q < victim; q++)
            fx_del(&f, q);
    else
        fx_purge(&f, NULL, 0, 0);
    struct js_stream_info *i = fx_info(&f);
    ck_assert_uint_ge(i->state->first_seq, victim + (uint64_t)damaged);
    js_stream_info_free(i);
    assert_lost(&f, lo, lo, past_name[how]);
    if (damaged) { /* still unreadable, and said to be */
        js_msg *m = NULL;
        ck_assert_int_eq(js_msg_get(f.s, victim, &m), JS_ECORRUPT);
    }
    /* A rebuild while the damaged record is still there, now below the
     * FRONT record of the removals. */
    fx_close(&f);
    fx_rm_index(&f);
    fx_open(&f);
    assert_lost(&f, lo, lo, "rebuild with the damaged block");
    /* More blocks, and everything in the damaged one purged: its file
     * goes at the next checkpoint. */
    fx_pub(&f, 60);
    fx_purge(&f, NULL, f.last - 5, 0);
    assert_lost(&f, lo, lo, "after a purge past its block");
    snap_take(f.s, &a);
    fx_close(&f);
    char *gone = tu_block_path(sdir, vblk);
    ck_assert_msg(!tu_exists(gone), "block %" PRIu64 " still there", vblk);
    free(gone);
    for (int k = 0; k < 4; k++) {
        /* with the checkpoint, without, with the one a rebuild wrote,
         * without again */
        if (k % 2)
            fx_rm_index(&f);
        fx_open(&f);
        assert_lost(&f, lo, lo, k % 2 ? "rebuild" : "reopen");
        fx_check(&f);
        snap_take(f.s, &b);
        fx_close(&f);
        snap_assert_eq(&a, &b, k % 2 ? "rebuild" : "reopen");
        snap_free(&b);
    }
    snap_free(&a);
    free(r);
    free(sdir);
    fx_free(&f);
}
END_TEST

/* ====================================================================== */
/* Catalogue                                                              */
/* ====================================================================== */

/* The catalogue is an index of the stream directories: every flip of
 * every byte, a truncation, an empty file, garbage or no file at all, and
 * the store opens with every message, rebuilt from streams/<id>/config,
 * and writes a good catalogue again (the next open reads it as it is). */
START_TEST(damaged_or_missing_catalog_is_rebuilt_from_stream_dirs) {
    fx f;
    fx_init(&f, "catalog", 0, 24, 100);
    fx_open(&f);
    fx_pub(&f, 5);
    fx_close(&f);
    char *cat = tu_path("%s/catalog", f.dir);
    uint8_t *good;
    size_t len;
    ck_assert_int_eq(tu_read_file(cat, &good, &len), 0);
    ck_assert_uint_gt(len, 20);
    for (size_t off = 0; off < len + 4; off++) {
        ck_assert_int_eq(tu_write_file(cat, good, len), 0);
        if (off < len)
            ck_assert_int_eq(tu_flip_byte(cat, (int64_t)off,
                                          (uint8_t)(1u << (off % 8))), 0);
        else if (off == len)
            ck_assert_int_eq(tu_truncate(cat, (int64_t)len / 2), 0);
        else if (off == len + 1)
            ck_assert_int_eq(tu_truncate(cat, 0), 0);
        else if (off == len + 2)
            ck_assert_int_eq(tu_write_file(cat, "garbage!garbage!garbage!",
                                           24), 0);
        else
            ck_assert_int_eq(unlink(cat), 0);
        fx_open(&f);
        fx_check(&f);
        fx_close(&f);
        ck_assert_msg(tu_file_equals(cat, good, len),
                      "catalog byte %zu: not rewritten as it was", off);
    }
    free(good);
    free(cat);
    fx_free(&f);
}
END_TEST

/* A stream's own definition file damaged or gone is rewritten from the
 * catalogue; with both damaged the stream cannot be named, so it is left
 * out, its directory kept as it is, and the open still succeeds. */
START_TEST(damaged_stream_definition_is_repaired_from_catalog) {
    fx f;
    fx_init(&f, "sdef", 0, 24, 100);
    fx_open(&f);
    fx_pub(&f, 5);
    fx_close(&f);
    char *sdir = fx_sdir(&f);
    char *def = tu_path("%s/config", sdir);
    char *cat = tu_path("%s/catalog", f.dir);
    uint8_t *good;
    size_t len;
    ck_assert_int_eq(tu_read_file(def, &good, &len), 0);
    for (size_t off = 0; off <= len; off++) {
        if (off < len)
            ck_assert_int_eq(tu_flip_byte(def, (int64_t)off, 0x10), 0);
        else
            ck_assert_int_eq(unlink(def), 0);
        fx_open(&f);
        fx_check(&f);
        fx_close(&f);
        ck_assert_msg(tu_file_equals(def, good, len),
                      "config byte %zu: not repaired", off);
    }
    ck_assert_int_eq(tu_flip_byte(def, 20, 0x01), 0);
    ck_assert_int_eq(tu_flip_byte(cat, 20, 0x01), 0);
    js_store *st = NULL;
    js_stream *s = NULL;
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.vfs = f.vfs;
    ck_assert_int_eq(js_open(f.dir, &o, &st), 0);
    ck_assert_int_eq(js_stream_lookup(st, "R", &s), JS_ESTREAM_NOT_FOUND);
    ck_assert_int_eq(js_close(st), 0);
    ck_assert(tu_exists(sdir));
    /* Kept at the next open too, now that the catalogue is good again. */
    ck_assert_int_eq(js_open(f.dir, &o, &st), 0);
    ck_assert_int_eq(js_close(st), 0);
    ck_assert(tu_exists(sdir));
    free(good);
    free(cat);
    free(def);
    free(sdir);
    fx_free(&f);
}
END_TEST

START_TEST(orphan_stream_directories_are_removed_at_open) {
    fx f;
    fx_init(&f, "orphans", 4096, 24, 100);
    fx_open(&f);
    fx_pub(&f, 20);
    fx_close(&f);
    char *sdir = fx_sdir(&f);
    char *orphan = tu_path("%s/streams/00000000000000aa", f.dir);
    char *junk = tu_path("%s/streams/not-a-stream", f.dir);
    ck_assert_int_eq(tu_copy_tree(sdir, orphan), 0);
    ck_assert_int_eq(mkdir(junk, 0700), 0);
    char *jf = tu_path("%s/file", junk);
    ck_assert_int_eq(tu_write_file(jf, "x", 1), 0);
    fx_open(&f);
    ck_assert_msg(!tu_exists(orphan), "orphan %s still there", orphan);
    ck_assert_msg(!tu_exists(junk), "orphan %s still there", junk);
    ck_assert(tu_exists(sdir));
    fx_check(&f);
    fx_close(&f);
    /* A deleted stream's directory goes too. */
    fx_open(&f);
    ck_assert_int_eq(js_stream_delete(f.st, "R"), 0);
    js_stream_release(f.s);
    f.s = NULL;
    ck_assert_int_eq(js_close(f.st), 0);
    f.st = NULL;
    ck_assert(!tu_exists(sdir));
    char *streams = tu_path("%s/streams", f.dir);
    ck_assert_int_eq(tu_dir_count(streams), 0);
    free(streams);
    free(jf);
    free(junk);
    free(orphan);
    free(sdir);
    fx_free(&f);
}
END_TEST

/* ====================================================================== */
/* Open time                                                              */
/* ====================================================================== */

static int64_t clock_later(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* An hour on: every message is outside the duplicate window. */
    return ((int64_t)ts.tv_sec + 3600) * 1000000000 + ts.tv_nsec;
}

/* Open, timed; *rss_kb gets the growth of the resident set across the
 * open (what the open keeps in memory). */
static double timed_open(fx *f, int later, uint64_t want_msgs, long *rss_kb) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    if (later)
        o.clock = clock_later;
    long rss0 = tu_rss_kb();
    double t0 = tu_now();
    int rc = js_open(f->dir, &o, &f->st);
    double dt = tu_now() - t0;
    *rss_kb = tu_rss_kb() - rss0;
    ck_assert_msg(rc == 0, "open: %s (%s)", js_strerror(rc), js_errmsg());
    ck_assert_int_eq(js_stream_lookup(f->st, "R", &f->s), 0);
    struct js_stream_info *i = fx_info(f);
    ck_assert_uint_eq(i->state->msgs, want_msgs);
    ck_assert_uint_eq(i->state->last_seq, want_msgs);
    js_stream_info_free(i);
    fx_close(f);
    return dt;
}

/* Publish n messages in batches of 1000 (one sync each). */
static double fx_pub_batched(fx *f, uint32_t n) {
    enum { BATCH = 1000 };
    gmsg *g = malloc(BATCH * sizeof *g);
    js_pub_msg *pm = malloc(BATCH * sizeof *pm);
    ck_assert(g && pm);
    double t0 = tu_now();
    for (uint32_t base = 0; base < n; base += BATCH) {
        size_t done = 0, k = 0;
        for (; k < BATCH && base + k < n; k++) {
            gen(base + (uint32_t)k + 1, f->dmin, f->dspan, &g[k]);
            pm[k] = (js_pub_msg){g[k].subj, g[k].hlen ? g[k].hdr : NULL,
                                 g[k].hlen, g[k].data, g[k].dlen};
        }
        ck_assert_int_eq(js_publish_batch(f->st, pm, k, NULL, &done), 0);
        ck_assert_uint_eq(done, k);
    }
    free(g);
    free(pm);
    return tu_now() - t0;
}

/* The open time of 200,000 messages of 128 B (default block size), with
 * and without the checkpoint; then the same with the clock an hour on (the
 * duplicate window holds nothing, so no message needs reading for it).
 * _i == 1: every 7th message carries a header block. Printed, not judged. */
START_TEST(open_time_of_200k_messages_with_and_without_index) {
    enum { N = 200000 };
    fx f;
    fx_init(&f, "open_time", 0, 128, 0);
    f.vfs = NULL; /* real syncs */
    gen_headers = _i;
    fx_open(&f);
    double tpub = fx_pub_batched(&f, N);
    fx_close(&f);
    char *ix = fx_index(&f);
    char *sdir = fx_sdir(&f);
    uint64_t *nos;
    int nb = tu_block_files(sdir, &nos);
    free(nos);

    long m1, m2, m3, m4;
    double with = timed_open(&f, 0, N, &m1);
    ck_assert_int_eq(unlink(ix), 0);
    double without = timed_open(&f, 0, N, &m2);
    double with_late = timed_open(&f, 1, N, &m3);
    ck_assert_int_eq(unlink(ix), 0);
    double without_late = timed_open(&f, 1, N, &m4);
    printf("open time, %d messages of 128 B%s in %d block files (published "
           "in %.2f s): with index %.1f ms (+%ld KiB resident), without index "
           "%.1f ms (+%ld KiB); with the clock past the duplicate window: with "
           "index %.1f ms (+%ld KiB), without %.1f ms (+%ld KiB)\n",
           N, _i ? ", every 7th with a header" : "", nb, tpub, with * 1e3, m1,
           without * 1e3, m2, with_late * 1e3, m3, without_late * 1e3, m4);
    fflush(stdout);
    free(ix);
    free(sdir);
    fx_free(&f);
}
END_TEST

/* ====================================================================== */

static Suite *recovery_suite(void) {
    Suite *s = suite_create("recovery");
#define TEST(fn) tcase_add_test(t, fn)
#define LOOP(fn, n) tcase_add_loop_test(t, fn, 0, n)
    TCase *t = tcase_create("reopen");
    tcase_set_timeout(t, 120);
    LOOP(reopen_restores_messages_state_and_removals_across_blocks, 2);
    LOOP(deletes_in_the_tail_block_stay_deleted_after_reopen, 2);
    LOOP(deleting_every_message_survives_reopen_as_empty_stream, 2);
    LOOP(open_keeps_no_more_blocks_in_memory_than_the_cache_holds, 3);
    suite_add_tcase(s, t);

    t = tcase_create("torn_tail");
    tcase_set_timeout(t, 120);
    LOOP(torn_tail_keeps_whole_records_and_sequence_continues, TORN_KINDS * 2);
    LOOP(torn_tail_at_every_offset_of_the_last_three_records, 2);
    suite_add_tcase(s, t);

    t = tcase_create("damage");
    tcase_set_timeout(t, 120);
    LOOP(damaged_older_record_costs_only_that_message, DMG_KINDS * 2);
    TEST(damaged_header_of_last_record_does_not_stop_open);
    LOOP(sweep_flipped_bytes_in_block_files_have_blast_radius_one, SW_MODES);
    suite_add_tcase(s, t);

    t = tcase_create("checkpoint");
    tcase_set_timeout(t, 120);
    TEST(clean_close_writes_index_and_reopen_with_it_equals_full_rebuild);
    LOOP(corrupt_index_falls_back_to_full_rebuild_with_same_state, CK_KINDS);
    TEST(every_flipped_index_byte_gives_same_state);
    LOOP(old_index_replays_newer_records, OLD_KINDS);
    suite_add_tcase(s, t);

    t = tcase_create("first_seq");
    tcase_set_timeout(t, 60);
    LOOP(configured_first_seq_survives_reopen, 2);
    LOOP(purge_all_state_survives_reopen, 2);
    LOOP(first_on_a_lost_stretch_survives_a_rebuild_from_a_later_block, 2);
    suite_add_tcase(s, t);

    t = tcase_create("lost");
    tcase_set_timeout(t, 60);
    LOOP(lost_message_stays_reported_after_the_first_sequence_passes_it,
         PAST_KINDS * 2);
    suite_add_tcase(s, t);

    t = tcase_create("catalog");
    tcase_set_timeout(t, 60);
    TEST(damaged_or_missing_catalog_is_rebuilt_from_stream_dirs);
    TEST(damaged_stream_definition_is_repaired_from_catalog);
    TEST(orphan_stream_directories_are_removed_at_open);
    suite_add_tcase(s, t);

    t = tcase_create("open_time");
    tcase_set_timeout(t, 300);
    LOOP(open_time_of_200k_messages_with_and_without_index, 2);
    suite_add_tcase(s, t);
#undef TEST
#undef LOOP
    return s;
}

int main(void) {
    base_dir = tu_mkdtemp("test_recovery");
    nosync_register();
    SRunner *sr = srunner_create(recovery_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed == 0 ? 0 : 1;
}
