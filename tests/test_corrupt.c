/*
 * test_corrupt.c - damage to every kind of file a store holds, one file
 * and one fault at a time, and what opening it must give.
 *
 * The reference store (built on a fake clock, so it is the same on every
 * run) holds every kind of file the library writes:
 *   LOCK                         empty; locked while open
 *   catalog                      the stream list (rebuilt when damaged)
 *   streams/<id>/config          a stream's own definition (redundant)
 *   streams/<id>/<n>.blk         block files of stream ORD and of the KV
 *                                bucket's stream KV_cfg
 *   streams/<id>/index           the index checkpoint (redundant)
 *   streams/<id>/consumers/<n>.cfg    a durable consumer's config
 *   streams/<id>/consumers/<n>.cfg2   its second copy (redundant)
 *   streams/<id>/consumers/<n>.state  its state log
 * (temporary *.tmp files exist only while a replacement is being written;
 * a memory stream's directory holds only its config.)
 *
 * Every damage is a bit flip, a truncation or a deletion of one file, done
 * to a fresh copy of the reference store. After it, for every outcome:
 *   - js_open succeeds and every stream is there;
 *   - a message read back is never different from what was stored;
 *   - a message whose record was not damaged reads back (blast radius:
 *     the unreadable messages are all in the damaged region);
 *   - the lost ranges name only damaged records, and (in the cases where
 *     recovery reads the records) every unreadable damaged one, below the
 *     stream's first sequence too (when every message before a damaged
 *     one was removed, the first sequence steps over it and it stays
 *     reported lost);
 *   - a publish gets last_seq + 1, above every sequence the reference
 *     store ever gave out (no acknowledged sequence is reused);
 *   - the consumer's ack floor and delivered position never move past
 *     what the reference store had, and every message it had not seen
 *     acked is still delivered (redelivery, never a skip);
 *   - damage to a redundant file (catalogue, stream definition, index
 *     checkpoint, either copy of the consumer's config) gives exactly the
 *     undamaged state, the consumer's config and ack state included; a
 *     damaged copy of the consumer's config is repaired by the open.
 * Damage to both copies of the consumer's config loses the consumer (and
 * nothing else); its name can be used again.
 *
 * The figures (flips tried, silent ones, largest blast radius, per kind)
 * are printed on one line of stderr per kind.
 */
#include <check.h>

#include "jetstream.h"
#include "record.h"
#include "check_rc.h"
#include "testutil_fs.h"

static char *base_dir;

#include "nosync_vfs.h"

/* ---- the reference store and its model ----------------------------------- */

#define T0 INT64_C(1767225600000000000) /* 2026-01-01, the fake clock */
#define NSTREAMS 2                     /* ORD and KV_cfg are checked */
#define NKEYS 6

static int64_t fake_clock(void *ctx) {
    (void)ctx;
    return T0;
}

typedef struct rmsg {
    int have, live;
    char subj[64];
    uint8_t *hdr, *data;
    size_t hlen, dlen;
} rmsg;

typedef struct rstream {
    const char *name;
    char *dir;              /* the stream's directory in the reference */
    uint64_t last;          /* last sequence ever given out */
    rmsg *m;                /* m[seq], seq 1..last */
    js_stream_state st;
} rstream;

typedef struct ref {
    char *dir;
    rstream s[NSTREAMS];
    uint64_t floor, dlv;    /* consumer C1's ack floor and delivered */
    struct js_consumer_info *ci; /* C1 as it was at the end */
    uint8_t acked[256];     /* acked[seq]: C1 acked it (above the floor) */
    uint64_t kv_rev[NKEYS]; /* latest revision per key, 0: deleted */
} ref;

static ref R;

static js_open_opts opts(void) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.vfs = "nosync";
    o.block_size = 4096;
    o.clock = fake_clock;
    return o;
}

static void pub(js_store *st, const char *subj, uint32_t i) {
    char hdr[64];
    uint8_t data[400];
    size_t hlen = 0, dlen = 40 + (i * 37u) % 260;
    if (i % 5 == 2)
        hlen = (size_t)snprintf(hdr, sizeof hdr, "NATS/1.0\r\nX-I: %u\r\n\r\n",
                                i);
    uint64_t r = i * UINT64_C(0x9E3779B97F4A7C15) + 1;
    for (size_t k = 0; k < dlen; k++)
        data[k] = (uint8_t)(tu_rng(&r) >> 24);
    CHECK_RC(js_publish(st, subj, hlen ? hdr : NULL, hlen, data, dlen, NULL),
             0);
}

/* Record every message now in the stream; with live, mark which are. */
static void snap(js_store *st, rstream *rs) {
    js_stream *s;
    struct js_stream_info *info;
    CHECK_RC(js_stream_lookup(st, rs->name, &s), 0);
    CHECK_RC(js_stream_info(s, &info), 0);
    uint64_t last = info->state->last_seq;
    rs->st = *info->state;
    js_stream_info_free(info);
    rs->m = realloc(rs->m, (last + 1) * sizeof *rs->m);
    ck_assert_ptr_nonnull(rs->m);
    memset(rs->m + rs->last + 1, 0, (last - rs->last) * sizeof *rs->m);
    rs->last = last;
    for (uint64_t q = 1; q <= last; q++) {
        rmsg *m = &rs->m[q];
        js_msg *g = NULL;
        m->live = js_msg_get(s, q, &g) == 0;
        if (!m->live || m->have) {
            js_msg_free(g);
            continue;
        }
        const void *h = js_msg_headers(g, &m->hlen);
        const void *d = js_msg_data(g, &m->dlen);
        snprintf(m->subj, sizeof m->subj, "%s", js_msg_subject(g));
        m->hdr = malloc(m->hlen + 1);
        m->data = malloc(m->dlen + 1);
        if (m->hlen) /* h is NULL without headers */
            memcpy(m->hdr, h, m->hlen);
        if (m->dlen)
            memcpy(m->data, d, m->dlen);
        m->have = 1;
        js_msg_free(g);
    }
    js_stream_release(s);
}

static js_stream *add_stream(js_store *st, const char *name, const char *subj,
                             int storage) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    const char *subs[] = {subj};
    js_stream *s;
    c.name = name;
    c.subjects = subs;
    c.num_subjects = 1;
    c.storage = storage;
    CHECK_RC(js_stream_add(st, &c, &s), 0);
    return s;
}

/* C1's config: NATS defaults but for a few fields that show in info. */
static js_consumer_config c1_config(void) {
    static const char *const meta[] = {"owner", "test_corrupt"};
    js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
    cc.durable_name = "C1";
    cc.description = "the reference consumer";
    cc.ack_wait = 45 * INT64_C(1000000000);
    cc.max_deliver = 9;
    cc.max_ack_pending = 77;
    cc.filter_subject = "ord.>";
    cc.metadata = meta;
    cc.num_metadata = 1;
    return cc;
}

/* C1 takes the first 40 messages and acks two of every three. */
static void consume(js_stream *s, js_consumer **out) {
    js_consumer_config cc = c1_config();
    js_msg *msgs[40];
    size_t n = 0;
    CHECK_RC(js_consumer_add(s, &cc, out), 0);
    CHECK_RC(js_consumer_fetch(*out, msgs, 40, NULL, &n), 0);
    ck_assert_uint_eq(n, 40);
    for (size_t i = 0; i < n; i++) {
        if (js_msg_seq(msgs[i]) % 3)
            CHECK_RC(js_msg_ack(msgs[i]), 0);
        js_msg_free(msgs[i]);
    }
}

/* Phase 0: puts; phase 1: a delete and a purge. */
static void kv_work(js_store *st, int phase) {
    js_kv_config kc = JS_KV_CONFIG_INIT;
    js_kv *kv;
    char key[16], val[64];
    kc.bucket = "cfg";
    kc.history = 3;
    if (phase == 0)
        CHECK_RC(js_kv_create(st, &kc, &kv), 0);
    else
        CHECK_RC(js_kv_open(st, "cfg", &kv), 0);
    for (int round = 0; phase == 0 && round < 4; round++)
        for (int k = 0; k < NKEYS; k++) {
            snprintf(key, sizeof key, "k%d", k);
            int n = snprintf(val, sizeof val, "value %d of key %d", round, k);
            CHECK_RC(js_kv_put(kv, key, val, (size_t)n, &R.kv_rev[k]), 0);
        }
    if (phase == 0) {
        js_kv_release(kv);
        return;
    }
    CHECK_RC(js_kv_delete_key(kv, "k1", 0), 0);
    CHECK_RC(js_kv_purge_key(kv, "k2", 0), 0);
    R.kv_rev[1] = R.kv_rev[2] = 0;
    js_kv_release(kv);
}

static void build_reference(void) {
    js_store *st;
    js_open_opts o = opts();
    js_consumer *c;
    R.dir = tu_path("%s/ref", base_dir);
    CHECK_RC(js_open(R.dir, &o, &st), 0);
    js_stream *s = add_stream(st, "ORD", "ord.>", JS_STORAGE_FILE);
    js_stream_release(add_stream(st, "MEM", "mem.>", JS_STORAGE_MEMORY));
    char subj[32];
    for (uint32_t i = 1; i <= 60; i++) {
        snprintf(subj, sizeof subj, "ord.%u", i % 4);
        pub(st, subj, i);
    }
    R.s[0].name = "ORD";
    R.s[1].name = "KV_cfg";
    kv_work(st, 0);
    snap(st, &R.s[0]); /* every message before any removal */
    snap(st, &R.s[1]);
    consume(s, &c);
    kv_work(st, 1);
    CHECK_RC(js_msg_delete(s, 7), 0);
    CHECK_RC(js_msg_delete(s, 45), 0);
    js_purge_opts po = JS_PURGE_OPTS_INIT;
    po.filter = "ord.2";
    po.keep = 3;
    CHECK_RC(js_stream_purge(s, &po, NULL), 0);
    for (uint32_t i = 61; i <= 75; i++)
        pub(st, "ord.9", i);
    struct js_consumer_info *ci;
    CHECK_RC(js_consumer_info(c, &ci), 0);
    R.floor = ci->ack_floor.stream_seq;
    R.dlv = ci->delivered.stream_seq;
    R.ci = ci;
    ck_assert_uint_gt(ci->num_ack_pending, 0);
    ck_assert_uint_gt(ci->num_pending, 0);
    for (uint64_t q = R.floor + 1; q <= 40; q++)
        R.acked[q] = q % 3 != 0;
    js_consumer_release(c);
    js_stream_release(s);
    snap(st, &R.s[0]);
    snap(st, &R.s[1]);
    CHECK_RC(js_close(st), 0);
    for (int i = 0; i < NSTREAMS; i++) {
        ck_assert_uint_gt(R.s[i].st.num_deleted, 0);
        R.s[i].dir = NULL;
    }
}

static void free_reference(void) {
    for (int i = 0; i < NSTREAMS; i++) {
        for (uint64_t q = 1; q <= R.s[i].last; q++) {
            free(R.s[i].m[q].hdr);
            free(R.s[i].m[q].data);
        }
        free(R.s[i].m);
        free(R.s[i].dir);
    }
    js_consumer_info_free(R.ci);
    free(R.dir);
    memset(&R, 0, sizeof R);
}

/* ---- the files and their records ------------------------------------------ */

enum { K_LOCK, K_CATALOG, K_SDEF, K_BLOCK, K_KVBLOCK, K_INDEX, K_CCFG,
       K_CCFG2, K_CSTATE, K_KINDS };
static const char *const kind_name[K_KINDS] = {
    "lock", "catalog", "stream config", "block (ORD)", "block (KV)",
    "index checkpoint", "consumer config", "consumer config (copy B)",
    "consumer state"};

typedef struct rec {
    size_t off, len;
    int type;
    uint64_t seq;
} rec;

typedef struct rfile {
    char *rel;      /* path relative to the store */
    int kind, stream;
    uint8_t *img;
    size_t len;
    rec *recs;      /* block files: their records */
    size_t nrecs;
} rfile;

static rfile *files;
static size_t nfiles;

static void map_block(rfile *f) {
    size_t off = JSI_BLK_HDR_LEN;
    while (off < f->len) {
        jsi_rechdr h;
        ck_assert_int_eq(jsi_rec_parse_hdr(f->img + off, f->len - off, &h), 1);
        f->recs = realloc(f->recs, (f->nrecs + 1) * sizeof *f->recs);
        f->recs[f->nrecs++] = (rec){off, h.len, h.type, h.seq};
        off += h.len;
    }
}

static void add_file(const char *rel, int kind, int stream) {
    files = realloc(files, (nfiles + 1) * sizeof *files);
    rfile *f = &files[nfiles++];
    memset(f, 0, sizeof *f);
    f->rel = strdup(rel);
    f->kind = kind;
    f->stream = stream;
    char *p = tu_path("%s/%s", R.dir, rel);
    if (kind == K_LOCK) {
        f->img = calloc(1, 1);
    } else {
        ck_assert_msg(tu_read_file(p, &f->img, &f->len) == 0, "%s", p);
    }
    free(p);
    if (kind == K_BLOCK || kind == K_KVBLOCK)
        map_block(f);
}

static int classify(const char *name, int stream) {
    size_t n = strlen(name);
    if (n > 4 && !strcmp(name + n - 4, ".blk"))
        return stream == 0 ? K_BLOCK : K_KVBLOCK;
    if (!strcmp(name, "index"))
        return K_INDEX;
    if (!strcmp(name, "config"))
        return K_SDEF;
    if (n > 4 && !strcmp(name + n - 4, ".cfg"))
        return K_CCFG;
    if (n > 5 && !strcmp(name + n - 5, ".cfg2"))
        return K_CCFG2;
    if (n > 6 && !strcmp(name + n - 6, ".state"))
        return K_CSTATE;
    return -1;
}

/* Every file under streams/<id>[/consumers]; stream ids are given in
 * creation order: 1 ORD, 2 MEM (config only), 3 KV_cfg. */
static void list_dir(const char *rel, int stream) {
    char *p = tu_path("%s/%s", R.dir, rel);
    DIR *d = opendir(p);
    struct dirent *e;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *sub = tu_path("%s/%s", rel, e->d_name);
        if (!strcmp(e->d_name, "consumers")) {
            list_dir(sub, stream);
        } else {
            int k = classify(e->d_name, stream);
            ck_assert_msg(k >= 0, "unknown file kind: %s", sub);
            add_file(sub, k, stream);
        }
        free(sub);
    }
    closedir(d);
    free(p);
}

/* The reference's one consumer config copy of that kind. */
static const rfile *cfg_copy(int kind) {
    for (size_t i = 0; i < nfiles; i++)
        if (files[i].kind == kind)
            return &files[i];
    return NULL;
}

static void map_files(void) {
    add_file("LOCK", K_LOCK, -1);
    add_file("catalog", K_CATALOG, -1);
    list_dir("streams/0000000000000001", 0);
    list_dir("streams/0000000000000002", -1);
    list_dir("streams/0000000000000003", 1);
    int seen[K_KINDS] = {0};
    for (size_t i = 0; i < nfiles; i++)
        seen[files[i].kind]++;
    for (int k = 0; k < K_KINDS; k++)
        ck_assert_msg(seen[k] > 0, "no %s file in the reference", kind_name[k]);
    ck_assert_int_ge(seen[K_BLOCK], 3);
    const rfile *a = cfg_copy(K_CCFG), *b = cfg_copy(K_CCFG2);
    ck_assert_int_eq(seen[K_CCFG], 1);
    ck_assert_int_eq(seen[K_CCFG2], 1);
    ck_assert(a->len == b->len && !memcmp(a->img, b->img, a->len));
}

static void free_files(void) {
    for (size_t i = 0; i < nfiles; i++) {
        free(files[i].rel);
        free(files[i].img);
        free(files[i].recs);
    }
    free(files);
    files = NULL;
    nfiles = 0;
}

/* ---- one damage and its checks --------------------------------------------- */

enum { OP_FLIP, OP_TRUNC, OP_DELETE };

typedef struct dmg {
    const rfile *f;
    int op;
    size_t at;             /* flip: byte; truncate: new length */
    uint8_t mask;
    const rfile *f2;       /* a second file damaged (not a block), or NULL */
    int op2;
    size_t at2;
    int no_index;          /* the stream's checkpoint removed first */
    uint8_t victim[256];   /* sequences whose record was damaged */
    int removal_hit;       /* a DEL or FRONT record was damaged */
    int tail_hdr;          /* the header of the last block's last record */
    int cut_tail;          /* the end of the last block was cut off */
    int last_blk;          /* the damage is to the stream's last block */
} dmg;

static int is_last_block(const rfile *f) {
    for (size_t i = 0; i < nfiles; i++)
        if (files[i].kind == f->kind && strcmp(files[i].rel, f->rel) > 0)
            return 0;
    return 1;
}

/* Which records the damaged bytes [a, b) touch. */
static void mark_victims(dmg *d, size_t a, size_t b) {
    const rfile *f = d->f;
    d->last_blk = is_last_block(f);
    for (size_t i = 0; i < f->nrecs; i++) {
        const rec *r = &f->recs[i];
        if (r->off >= b || r->off + r->len <= a)
            continue;
        if (r->type == JSI_REC_MSG || r->type == JSI_REC_ERASED)
            d->victim[r->seq] = 1;
        else
            d->removal_hit = 1;
        if (i == f->nrecs - 1 && d->last_blk &&
            a < r->off + JSI_REC_HDR_LEN)
            d->tail_hdr = 1;
    }
    if (d->last_blk && d->op == OP_TRUNC)
        d->cut_tail = 1;
}

/* Damage to a file that is not a block. */
static void apply_plain(const char *dir, const rfile *f, int op, size_t at,
                        uint8_t mask) {
    char *p = tu_path("%s/%s", dir, f->rel);
    if (op == OP_FLIP)
        ck_assert_int_eq(tu_flip_byte(p, (int64_t)at, mask), 0);
    else if (op == OP_TRUNC)
        ck_assert_int_eq(tu_truncate(p, (int64_t)at), 0);
    else
        ck_assert_int_eq(unlink(p), 0);
    free(p);
}

static void apply(const char *dir, dmg *d) {
    if (d->f2)
        apply_plain(dir, d->f2, d->op2, d->at2, d->mask);
    char *p = tu_path("%s/%s", dir, d->f->rel);
    int block = d->f->kind == K_BLOCK || d->f->kind == K_KVBLOCK;
    if (d->op == OP_FLIP) {
        ck_assert_int_eq(tu_flip_byte(p, (int64_t)d->at, d->mask), 0);
        if (block)
            mark_victims(d, d->at, d->at + 1);
    } else if (d->op == OP_TRUNC) {
        ck_assert_int_eq(tu_truncate(p, (int64_t)d->at), 0);
        if (block)
            mark_victims(d, d->at, d->f->len);
    } else {
        unlink(p);
        if (block)
            mark_victims(d, 0, d->f->len);
    }
    free(p);
}

typedef struct outcome {
    char why[300];         /* the first broken promise */
    unsigned radius;       /* live messages unreadable */
    unsigned lost;         /* sequences reported lost */
    int consumer_gone;
    unsigned below_first;  /* unreadable damaged ones the first passed */
} outcome;

#define FAIL(o, ...)                                                       \
    do {                                                                   \
        if (!(o)->why[0])                                                  \
            snprintf((o)->why, sizeof (o)->why, __VA_ARGS__);              \
    } while (0)

static int msg_equal(const js_msg *g, const rmsg *m) {
    size_t hl, dl;
    const void *h = js_msg_headers(g, &hl);
    const void *d = js_msg_data(g, &dl);
    return m->have && !strcmp(js_msg_subject(g), m->subj) && hl == m->hlen &&
           (!hl || !memcmp(h, m->hdr, hl)) && dl == m->dlen &&
           (!dl || !memcmp(d, m->data, dl));
}

static int in_lost(const struct js_stream_info *info, uint64_t q) {
    for (size_t i = 0; i < info->lost_len; i++)
        if (q >= info->lost[i].first && q <= info->lost[i].last)
            return 1;
    return 0;
}

/* One copy of C1's config damaged, the other intact. */
static int one_cfg_copy(const dmg *d) {
    return !d->f2 && (d->f->kind == K_CCFG || d->f->kind == K_CCFG2);
}

static int damages(const dmg *d, int stream) {
    return d->f->stream == stream &&
           (d->f->kind == K_BLOCK || d->f->kind == K_KVBLOCK);
}

/* Without a checkpoint, a shortened or missing last block looks exactly
 * like a crash before its records were synced: nothing on storage says
 * they existed. */
static int like_a_crash(const dmg *d) {
    return d->no_index && d->last_blk &&
           (d->op == OP_DELETE || (d->op == OP_TRUNC && d->cut_tail));
}

/* Must recovery report the unreadable damaged records lost? It reads
 * every record without a checkpoint. With one it reads no block but the
 * tail's end, and checks only that the listed block files exist: damage
 * inside an older block (a flip, a truncation) is found when read
 * (JS_ECORRUPT), never returned as data. */
static int must_report(const dmg *d) {
    if (like_a_crash(d))
        return 0;
    if (d->no_index || d->op == OP_DELETE)
        return 1;
    return d->op == OP_TRUNC && d->last_blk;
}

/* Returns the highest sequence still readable. */
static uint64_t check_messages(js_stream *s, const rstream *rs,
                               const dmg *d, int si,
                               const struct js_stream_info *info,
                               outcome *o) {
    int hit = damages(d, si);
    uint64_t top = 0;
    for (uint64_t q = 1; q <= rs->last; q++) {
        const rmsg *m = &rs->m[q];
        js_msg *g = NULL;
        int rc = js_msg_get(s, q, &g);
        /* A message removed before the reference was first read has no
         * recorded content: it may only come back with its removal. */
        if (rc == 0 && m->have && !msg_equal(g, m))
            FAIL(o, "%s seq %" PRIu64 " reads back WRONG", rs->name, q);
        else if (rc == 0 && !m->live && !(hit && d->removal_hit))
            FAIL(o, "%s seq %" PRIu64 " was removed and came back", rs->name,
                 q);
        js_msg_free(g);
        if (rc == 0)
            top = q;
        if (rc == 0 && m->live && hit && d->victim[q])
            FAIL(o, "%s seq %" PRIu64 ": its record was damaged, yet it "
                 "reads back as intact", rs->name, q);
        if (rc == 0 || !m->live)
            continue;
        o->radius++;
        o->below_first += q < info->state->first_seq;
        if (!hit || !d->victim[q])
            FAIL(o, "%s seq %" PRIu64 " (record intact) unreadable: %s",
                 rs->name, q, js_strerror(rc));
        else if (must_report(d) && !in_lost(info, q))
            FAIL(o, "%s seq %" PRIu64 " unreadable (%s) but not reported lost",
                 rs->name, q, js_strerror(rc));
    }
    for (size_t i = 0; i < info->lost_len; i++)
        for (uint64_t q = info->lost[i].first; q <= info->lost[i].last; q++) {
            o->lost++;
            int ok = hit && ((q <= rs->last && d->victim[q]) ||
                             (q == rs->last + 1 && d->tail_hdr));
            if (!ok)
                FAIL(o, "%s seq %" PRIu64 " reported lost, its record is "
                     "intact", rs->name, q);
        }
    return top;
}

static void check_state(const rstream *rs, const struct js_stream_info *info,
                        outcome *o) {
    const js_stream_state *a = info->state, *b = &rs->st;
    if (a->msgs != b->msgs || a->bytes != b->bytes ||
        a->first_seq != b->first_seq || a->last_seq != b->last_seq ||
        a->num_subjects != b->num_subjects ||
        a->num_deleted != b->num_deleted || a->lost_msgs || info->lost_len)
        FAIL(o, "%s: state differs from the undamaged one (msgs %" PRIu64
             "/%" PRIu64 ", last %" PRIu64 "/%" PRIu64 ", lost %" PRIu64 ")",
             rs->name, a->msgs, b->msgs, a->last_seq, b->last_seq,
             a->lost_msgs);
}

/* A publish after the damage takes the next sequence, above every one
 * the reference gave out. */
static void check_publish(js_store *st, const rstream *rs, uint64_t last,
                          uint64_t above, outcome *o) {
    js_pub_ack ack = JS_PUB_ACK_INIT;
    const char *subj = rs == &R.s[0] ? "ord.new" : "$KV.cfg.new";
    int rc = js_publish(st, subj, NULL, 0, "x", 1, &ack);
    if (rc)
        FAIL(o, "%s: publish after open: %s (%s)", rs->name, js_strerror(rc),
             js_errmsg());
    else if (ack.seq != last + 1 || ack.seq <= above)
        FAIL(o, "%s: publish got seq %" PRIu64 " (last %" PRIu64
             ", reference last %" PRIu64 ")", rs->name, ack.seq, last,
             rs->last);
}

static void check_stream(js_store *st, int si, const dmg *d, outcome *o) {
    const rstream *rs = &R.s[si];
    js_stream *s = NULL;
    struct js_stream_info *info = NULL;
    int rc = js_stream_lookup(st, rs->name, &s);
    if (rc == 0)
        rc = js_stream_info(s, &info);
    if (rc) {
        FAIL(o, "stream %s: %s", rs->name, js_strerror(rc));
        js_stream_release(s);
        return;
    }
    uint64_t above = check_messages(s, rs, d, si, info, o);
    if (!damages(d, si))
        check_state(rs, info, o);
    uint64_t last = info->state->last_seq;
    js_stream_info_free(info);
    js_stream_release(s);
    /* After a crash-like loss the lost tail's sequences may be given out
     * again (they were never durable as far as storage can tell); never
     * one a message still there holds. */
    if (!(damages(d, si) && like_a_crash(d)))
        above = rs->last;
    check_publish(st, rs, last, above, o);
}

static void check_kv(js_store *st, outcome *o) {
    js_kv *kv;
    char key[16];
    int rc = js_kv_open(st, "cfg", &kv);
    if (rc) {
        FAIL(o, "bucket cfg: %s", js_strerror(rc));
        return;
    }
    for (int k = 0; k < NKEYS; k++) {
        struct js_kv_entry *e = NULL;
        snprintf(key, sizeof key, "k%d", k);
        rc = js_kv_get(kv, key, 0, &e);
        if (R.kv_rev[k] && (rc || e->revision != R.kv_rev[k]))
            FAIL(o, "key %s: %s, revision %" PRIu64 " (want %" PRIu64 ")",
                 key, js_strerror(rc), rc ? 0 : e->revision, R.kv_rev[k]);
        else if (!R.kv_rev[k] && rc != JS_EKEY_NOT_FOUND)
            FAIL(o, "deleted key %s: %s", key, js_strerror(rc));
        js_kv_entry_free(e);
    }
    js_kv_release(kv);
}

static int str_eq(const char *a, const char *b) {
    return a == b || (a && b && !strcmp(a, b));
}

/* C1 exactly as the reference left it: config, position and acks. */
static void check_c1_exact(const struct js_consumer_info *ci, outcome *o) {
    const struct js_consumer_info *r = R.ci;
    const js_consumer_config *a = ci->config, *b = r->config;
    if (ci->created != r->created || !str_eq(a->name, b->name) ||
        !str_eq(a->durable_name, b->durable_name) ||
        !str_eq(a->description, b->description) ||
        !str_eq(a->filter_subject, b->filter_subject) ||
        a->deliver_policy != b->deliver_policy ||
        a->ack_policy != b->ack_policy || a->ack_wait != b->ack_wait ||
        a->max_deliver != b->max_deliver ||
        a->max_ack_pending != b->max_ack_pending ||
        a->max_waiting != b->max_waiting ||
        a->inactive_threshold != b->inactive_threshold ||
        a->num_metadata != 1 || b->num_metadata != 1 ||
        !str_eq(a->metadata[0], b->metadata[0]) ||
        !str_eq(a->metadata[1], b->metadata[1]))
        FAIL(o, "consumer C1's config is not the undamaged one");
    /* check_stream published one more matching message first. */
    if (ci->delivered.stream_seq != r->delivered.stream_seq ||
        ci->delivered.consumer_seq != r->delivered.consumer_seq ||
        ci->ack_floor.stream_seq != r->ack_floor.stream_seq ||
        ci->ack_floor.consumer_seq != r->ack_floor.consumer_seq ||
        ci->num_ack_pending != r->num_ack_pending ||
        ci->num_redelivered != r->num_redelivered ||
        ci->num_pending != r->num_pending + 1)
        FAIL(o, "consumer C1's state is not the undamaged one: delivered "
             "%" PRIu64 "/%" PRIu64 " (was %" PRIu64 "/%" PRIu64 "), floor "
             "%" PRIu64 "/%" PRIu64 " (was %" PRIu64 "/%" PRIu64 "), ack "
             "pending %" PRIu64 " (was %" PRIu64 "), pending %" PRIu64
             " (was %" PRIu64 " + 1)", ci->delivered.stream_seq,
             ci->delivered.consumer_seq, r->delivered.stream_seq,
             r->delivered.consumer_seq, ci->ack_floor.stream_seq,
             ci->ack_floor.consumer_seq, r->ack_floor.stream_seq,
             r->ack_floor.consumer_seq, ci->num_ack_pending,
             r->num_ack_pending, ci->num_pending, r->num_pending);
}

/* With both copies of its config gone, C1's name is free again. */
static void readd_c1(js_stream *s, outcome *o) {
    js_consumer_config cc = c1_config();
    int rc = js_consumer_add(s, &cc, NULL);
    if (rc)
        FAIL(o, "adding C1 again: %s (%s)", js_strerror(rc), js_errmsg());
}

/* After an open, both copies of C1's config are the reference's again. */
static void check_repaired(const char *work, outcome *o) {
    for (int k = K_CCFG; k <= K_CCFG2; k++) {
        const rfile *f = cfg_copy(k);
        char *p = tu_path("%s/%s", work, f->rel);
        uint8_t *img = NULL;
        size_t len = 0;
        if (tu_read_file(p, &img, &len) != 0)
            FAIL(o, "%s: not there after the open", f->rel);
        else if (len != f->len || memcmp(img, f->img, len) != 0)
            FAIL(o, "%s: not repaired by the open", f->rel);
        free(img);
        free(p);
    }
}

/* The re-added C1 (both copies were damaged) is there after a reopen. */
static void check_readded(const char *work, outcome *o) {
    js_open_opts op = opts();
    js_store *st = NULL;
    js_stream *s = NULL;
    js_consumer *c = NULL;
    int rc = js_open(work, &op, &st);
    if (rc == 0)
        rc = js_stream_lookup(st, "ORD", &s);
    if (rc == 0)
        rc = js_consumer_lookup(s, "C1", &c);
    if (rc)
        FAIL(o, "re-added C1 after a reopen: %s", js_strerror(rc));
    js_consumer_release(c);
    js_stream_release(s);
    if (st)
        CHECK_RC(js_close(st), 0);
}

/* The consumer never claims more than the reference had acked or
 * delivered, and every message the reference had not seen acked is
 * delivered again (unless its own record is the damaged one). */
static void check_consumer(js_store *st, const dmg *d, outcome *o) {
    js_stream *s;
    js_consumer *c;
    struct js_consumer_info *ci;
    js_msg *msgs[128];
    uint8_t got[256] = {0};
    if (js_stream_lookup(st, "ORD", &s) != 0)
        return; /* already reported */
    int rc = js_consumer_lookup(s, "C1", &c);
    if (rc) {
        o->consumer_gone = 1;
        if (!d->f2)
            FAIL(o, "consumer C1: %s", js_strerror(rc));
        else
            readd_c1(s, o);
        js_stream_release(s);
        return;
    }
    if (d->f2)
        FAIL(o, "consumer C1 is there with both copies of its config "
             "damaged");
    CHECK_RC(js_consumer_info(c, &ci), 0);
    if (one_cfg_copy(d))
        check_c1_exact(ci, o);
    /* The floor may step over what was acked, removed, or lost to the
     * damage (a message that cannot be read cannot be redelivered), never
     * over a readable message that was not acked. */
    for (uint64_t q = R.floor + 1; q <= ci->ack_floor.stream_seq; q++)
        if (q > R.dlv || (R.s[0].m[q].live && !R.acked[q] &&
                          !(damages(d, 0) && d->victim[q])))
            FAIL(o, "consumer C1 floor %" PRIu64 " (was %" PRIu64 ") passed "
                 "seq %" PRIu64 ", never acked", ci->ack_floor.stream_seq,
                 R.floor, q);
    if (ci->delivered.stream_seq > R.dlv)
        FAIL(o, "consumer C1 delivered %" PRIu64 " (was %" PRIu64 ")",
             ci->delivered.stream_seq, R.dlv);
    js_consumer_info_free(ci);
    js_fetch_opts fo = JS_FETCH_OPTS_INIT;
    fo.no_wait = 1;
    for (;;) {
        size_t k = 0;
        rc = js_consumer_fetch(c, msgs, 128, &fo, &k);
        for (size_t i = 0; i < k; i++) {
            uint64_t q = js_msg_seq(msgs[i]);
            if (q < sizeof got)
                got[q] = 1;
            js_msg_free(msgs[i]);
        }
        if (rc || k == 0)
            break;
    }
    if (rc && rc != JS_ETIMEOUT)
        FAIL(o, "consumer C1 fetch: %s (%s)", js_strerror(rc), js_errmsg());
    for (uint64_t q = R.floor + 1; q <= R.s[0].last; q++)
        if (R.s[0].m[q].live && !R.acked[q] && !got[q] &&
            !(damages(d, 0) && d->victim[q]))
            FAIL(o, "consumer C1 skipped seq %" PRIu64 " (not acked)", q);
    js_consumer_release(c);
    js_stream_release(s);
}

static void remove_index(const char *dir, int stream) {
    char *p = tu_path("%s/streams/%016x/index", dir, stream == 0 ? 1u : 3u);
    unlink(p);
    free(p);
}

/* Damage a fresh copy, open it, check everything, close it. */
static void run_one(const char *work, dmg *d, outcome *o) {
    js_store *st = NULL;
    js_open_opts op = opts();
    memset(o, 0, sizeof *o);
    ck_assert_int_eq(tu_restore_tree(R.dir, work), 0);
    if (d->f->kind == K_LOCK) {
        char *lk = tu_path("%s/LOCK", work);
        ck_assert_int_eq(tu_write_file(lk, "", 0), 0);
        if (d->op == OP_DELETE)
            unlink(lk);
        free(lk);
    } else {
        if (d->no_index)
            remove_index(work, d->f->stream);
        apply(work, d);
    }
    int rc = js_open(work, &op, &st);
    if (rc) {
        FAIL(o, "js_open: %s (%s)", js_strerror(rc), js_errmsg());
        return;
    }
    for (int si = 0; si < NSTREAMS; si++)
        check_stream(st, si, d, o);
    if (!damages(d, 1))
        check_kv(st, o);
    check_consumer(st, d, o);
    js_stream *mem;
    if (js_stream_lookup(st, "MEM", &mem) != 0)
        FAIL(o, "stream MEM is gone");
    else
        js_stream_release(mem);
    rc = js_close(st);
    if (rc)
        FAIL(o, "js_close: %s", js_strerror(rc));
    if (one_cfg_copy(d))
        check_repaired(work, o);
    if (d->f2 && !o->why[0])
        check_readded(work, o);
}

/* ---- the sweeps ------------------------------------------------------------ */

typedef struct stats {
    unsigned tried[3];     /* by OP_* */
    unsigned failed, visible, consumer_gone, max_radius, max_lost;
    unsigned max_flip_radius, below_first;
    char first[4][400];
} stats;

static unsigned stride_env(const char *name, unsigned def) {
    const char *e = getenv(name);
    unsigned v = e ? (unsigned)strtoul(e, NULL, 10) : 0;
    return v ? v : def;
}

static void tally(stats *t, const dmg *d, const outcome *o) {
    static const char *const opn[] = {"flip", "truncate", "delete"};
    t->tried[d->op]++;
    t->visible += o->radius > 0 || o->lost > 0;
    t->consumer_gone += o->consumer_gone;
    t->below_first += o->below_first;
    if (o->radius > t->max_radius)
        t->max_radius = o->radius;
    if (d->op == OP_FLIP && o->radius > t->max_flip_radius)
        t->max_flip_radius = o->radius;
    if (o->lost > t->max_lost)
        t->max_lost = o->lost;
    if (!o->why[0])
        return;
    char vic[64] = "";
    for (size_t q = 0, k = 0; q < sizeof d->victim && k + 8 < sizeof vic; q++)
        if (d->victim[q])
            k += (size_t)snprintf(vic + k, sizeof vic - k, " %zu", q);
    /* A report cut short is still a report: the result is only looked at
     * so that gcc's -O1 builds do not warn about the cut. */
    if (t->failed < 4 &&
        snprintf(t->first[t->failed], sizeof t->first[0],
                 "%s %s at %zu%s (damaged records:%s%s): %s", opn[d->op],
                 d->f->rel, d->at, d->no_index ? ", no checkpoint" : "",
                 vic[0] ? vic : " none", d->removal_hit ? " +removal" : "",
                 o->why) < 0)
        t->first[t->failed][0] = '\0';
    t->failed++;
}

/* Should byte `at` of f be flipped? Every byte of small files and of block
 * headers; every other byte of record headers (odd bytes in one record,
 * even in the next, so every header field is hit); every stride-th byte
 * of record bodies. */
static int pick_flip(const rfile *f, size_t at, unsigned stride) {
    if (f->kind != K_BLOCK && f->kind != K_KVBLOCK)
        return f->len <= 4096 || at % stride == 0;
    if (at < JSI_BLK_HDR_LEN)
        return 1;
    for (size_t i = 0; i < f->nrecs; i++)
        if (at >= f->recs[i].off && at < f->recs[i].off + f->recs[i].len)
            return (at - f->recs[i].off < JSI_REC_HDR_LEN &&
                    (at - f->recs[i].off + i) % 2 == 0) ||
                   (at - f->recs[i].off) % stride == 0;
    return 1;
}

static void sweep_file(const char *work, const rfile *f, int no_index,
                       stats *t) {
    unsigned fstride = stride_env("CORRUPT_FLIP_STRIDE", 31);
    unsigned tstride = stride_env("CORRUPT_TRUNC_STRIDE", 41);
    outcome o;
    dmg d;
    for (size_t at = 0; at < f->len; at++) {
        if (!pick_flip(f, at, fstride))
            continue;
        memset(&d, 0, sizeof d);
        d = (dmg){.f = f, .op = OP_FLIP, .at = at, .no_index = no_index,
                  .mask = (uint8_t)(1u << ((at * 5 + 3) % 8))};
        run_one(work, &d, &o);
        tally(t, &d, &o);
    }
    for (size_t at = 0; at < f->len; at++) {
        if (f->len > 1024 && at % tstride && at + 1 != f->len)
            continue;
        memset(&d, 0, sizeof d);
        d = (dmg){.f = f, .op = OP_TRUNC, .at = at, .no_index = no_index};
        run_one(work, &d, &o);
        tally(t, &d, &o);
    }
    memset(&d, 0, sizeof d);
    d = (dmg){.f = f, .op = OP_DELETE, .no_index = no_index};
    run_one(work, &d, &o);
    tally(t, &d, &o);
}

static void sweep_kind(int kind, int no_index) {
    stats t;
    memset(&t, 0, sizeof t);
    char *work = tu_path("%s/work-%d-%d", base_dir, kind, no_index);
    size_t bytes = 0, nf = 0;
    double t0 = tu_now();
    for (size_t i = 0; i < nfiles; i++) {
        if (files[i].kind != kind)
            continue;
        sweep_file(work, &files[i], no_index, &t);
        bytes += files[i].len;
        nf++;
    }
    fprintf(stderr,
            "corrupt: %s%s: %zu file(s), %zu bytes: %u flips, %u "
            "truncations, %u deletions in %.1f s; broken promises %u; damage "
            "visible (unreadable or reported lost) %u, consumer dropped %u; "
            "largest blast radius: of a flip %u, of any damage %u "
            "message(s); most sequences reported lost %u; damaged ones the "
            "first sequence stepped over %u\n",
            kind_name[kind], no_index ? " (no checkpoint)" : "", nf, bytes,
            t.tried[OP_FLIP], t.tried[OP_TRUNC], t.tried[OP_DELETE],
            tu_now() - t0, t.failed, t.visible, t.consumer_gone,
            t.max_flip_radius, t.max_radius, t.max_lost, t.below_first);
    for (unsigned k = 0; k < t.failed && k < 4; k++)
        fprintf(stderr, "  corrupt failure: %s\n", t.first[k]);
    tu_rm_rf(work);
    free(work);
    ck_assert_msg(t.failed == 0, "%s: %u of %u damages broke a promise; "
                  "first: %s", kind_name[kind], t.failed,
                  t.tried[0] + t.tried[1] + t.tried[2], t.first[0]);
    ck_assert_uint_le(t.max_flip_radius, 1);
}

START_TEST(every_file_kind_survives_flips_truncation_and_deletion) {
    sweep_kind(_i, 0);
}
END_TEST

/* Both copies of C1's config damaged at once, every combination of a
 * flip, a truncation and a deletion of each: the open loses C1 and
 * nothing else. */
START_TEST(both_config_copies_damaged_lose_only_the_consumer) {
    const rfile *a = cfg_copy(K_CCFG), *b = cfg_copy(K_CCFG2);
    char *work = tu_path("%s/work-both", base_dir);
    stats t;
    outcome o;
    dmg d;
    memset(&t, 0, sizeof t);
    for (size_t at = 0; at < a->len; at++) {
        memset(&d, 0, sizeof d);
        d = (dmg){.f = a, .op = (int)(at % 3), .at = at, .f2 = b,
                  .op2 = (int)(at / 3 % 3), .at2 = a->len - 1 - at,
                  .mask = (uint8_t)(1u << ((at * 5 + 3) % 8))};
        run_one(work, &d, &o);
        tally(&t, &d, &o);
    }
    fprintf(stderr, "corrupt: consumer config, both copies: %u damages; "
            "broken promises %u, consumer dropped %u\n", t.tried[0] +
            t.tried[1] + t.tried[2], t.failed, t.consumer_gone);
    for (unsigned k = 0; k < t.failed && k < 4; k++)
        fprintf(stderr, "  corrupt failure: %s\n", t.first[k]);
    tu_rm_rf(work);
    free(work);
    ck_assert_msg(t.failed == 0, "%u damages broke a promise; first: %s",
                  t.failed, t.first[0]);
    ck_assert_uint_eq(t.consumer_gone, a->len);
}
END_TEST

START_TEST(block_damage_without_checkpoint_is_reported_exactly) {
    sweep_kind(_i ? K_KVBLOCK : K_BLOCK, 1);
}
END_TEST

/* ---- main ------------------------------------------------------------------ */

static void setup(void) {
    build_reference();
    map_files();
}

static void teardown(void) {
    free_files();
    free_reference();
}

static Suite *corrupt_suite(void) {
    Suite *s = suite_create("corrupt");
    TCase *t = tcase_create("sweeps");
    tcase_set_timeout(t, 300);
    tcase_add_unchecked_fixture(t, setup, teardown);
    tcase_add_loop_test(t, every_file_kind_survives_flips_truncation_and_deletion,
                        0, K_KINDS);
    tcase_add_loop_test(t, block_damage_without_checkpoint_is_reported_exactly,
                        0, 2);
    tcase_add_test(t, both_config_copies_damaged_lose_only_the_consumer);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    nosync_register();
    base_dir = tu_mkdtemp("test_corrupt");
    SRunner *sr = srunner_create(corrupt_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
