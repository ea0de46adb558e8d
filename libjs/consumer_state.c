/*
 * consumer_state.c - a durable consumer's persisted state: the state
 * itself, its record codec, replay, and the append-only log file.
 * The format and the replay rules are in consumer_state.h.
 */
#include <stdio.h>
#include <stdlib.h>

#include "consumer_state.h"
#include "vfs.h"

#define CS_CORRUPT(...) JSI_ERR(JS_ECORRUPT, 0, "consumer state: " __VA_ARGS__)
#define CS_MIN_COUNTS 8

/* ====================================================================== */
/* The state                                                              */
/* ====================================================================== */

void jsi_cstate_init(jsi_cstate *s) {
    memset(s, 0, sizeof *s);
}

void jsi_cstate_free(jsi_cstate *s) {
    if (!s)
        return;
    jsi_rs_free(&s->acked);
    jsi_free(s->counts);
    jsi_cstate_init(s);
}

/* Room for n counts in all. */
static int counts_reserve(jsi_cstate *s, size_t n) {
    size_t cap = s->counts_cap ? s->counts_cap : CS_MIN_COUNTS;
    jsi_cstate_count *c;

    if (n <= s->counts_cap)
        return 0;
    while (cap < n) {
        if (cap > SIZE_MAX / 2 / sizeof *c)
            return JSI_ERR(JS_ENOMEM, 0, "consumer state: too many counts");
        cap *= 2;
    }
    c = jsi_realloc(s->counts, cap * sizeof *c);
    if (!c)
        return JSI_ERR(JS_ENOMEM, 0, "consumer state: out of memory");
    s->counts = c;
    s->counts_cap = cap;
    return 0;
}

int jsi_cstate_copy(const jsi_cstate *in, jsi_cstate *out) {
    jsi_cstate t;
    size_t runs = in->acked.n;

    jsi_cstate_init(&t);
    t.dlv_dseq = in->dlv_dseq;
    t.dlv_sseq = in->dlv_sseq;
    t.floor_dseq = in->floor_dseq;
    t.floor_sseq = in->floor_sseq;
    t.lps_end = in->lps_end;
    if (runs) {
        t.acked.r = jsi_malloc(runs * sizeof *t.acked.r);
        if (!t.acked.r)
            return JSI_ERR(JS_ENOMEM, 0, "consumer state: out of memory");
        memcpy(t.acked.r, in->acked.r, runs * sizeof *t.acked.r);
        t.acked.n = t.acked.cap = runs;
    }
    if (counts_reserve(&t, in->ncounts) != 0) {
        jsi_cstate_free(&t);
        return JS_ENOMEM;
    }
    if (in->ncounts)
        memcpy(t.counts, in->counts, in->ncounts * sizeof *t.counts);
    t.ncounts = in->ncounts;
    jsi_cstate_free(out);
    *out = t;
    return 0;
}

/* Index of the first count with sseq >= v; s->ncounts if none. */
static size_t count_index(const jsi_cstate *s, uint64_t v) {
    size_t lo = 0, hi = s->ncounts;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->counts[mid].sseq < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int jsi_cstate_set_count(jsi_cstate *s, uint64_t sseq, uint64_t n) {
    size_t i = count_index(s, sseq);
    int found = i < s->ncounts && s->counts[i].sseq == sseq;
    int rc;

    if (sseq == 0)
        return JSI_ERR(JS_EINVAL, 0, "consumer state: count for sequence 0");
    if (found && n <= 1) {
        memmove(s->counts + i, s->counts + i + 1,
                (s->ncounts - i - 1) * sizeof *s->counts);
        s->ncounts--;
    } else if (found) {
        s->counts[i].n = n;
    } else if (n > 1) {
        rc = counts_reserve(s, s->ncounts + 1);
        if (rc != 0)
            return rc;
        memmove(s->counts + i + 1, s->counts + i,
                (s->ncounts - i) * sizeof *s->counts);
        s->counts[i].sseq = sseq;
        s->counts[i].n = n;
        s->ncounts++;
    }
    return 0;
}

/* Drop acked members <= the floor, then move the floor over a run of
 * acks that starts right above it. Runs never touch, so one step is all
 * there can be. */
static void advance_floor(jsi_cstate *s) {
    jsi_rangeset *a = &s->acked;

    if (s->floor_sseq == UINT64_MAX) {
        jsi_rs_clear(a);
        return;
    }
    jsi_rs_remove_below(a, s->floor_sseq + 1);
    if (a->n == 0 || a->r[0].lo != s->floor_sseq + 1)
        return;
    s->floor_sseq = a->r[0].hi;
    if (s->floor_sseq == UINT64_MAX)
        jsi_rs_clear(a);
    else
        jsi_rs_remove_below(a, s->floor_sseq + 1);
}

/* Keep only counts that say something: above the floor, not done, more
 * than one delivery. */
static void drop_counts(jsi_cstate *s) {
    size_t i, k = 0;

    for (i = 0; i < s->ncounts; i++) {
        const jsi_cstate_count *c = &s->counts[i];
        if (c->sseq > s->floor_sseq && c->n > 1 &&
            !jsi_rs_contains(&s->acked, c->sseq))
            s->counts[k++] = *c;
    }
    s->ncounts = k;
}

void jsi_cstate_normalise(jsi_cstate *s) {
    advance_floor(s);
    drop_counts(s);
}

/* ====================================================================== */
/* Encoding                                                               */
/* ====================================================================== */

static int put_uv(jsi_buf *b, uint64_t v) {
    int rc = jsi_buf_reserve(b, 10);

    if (rc == 0)
        b->len += jsi_uvarint_put(b->p + b->len, v);
    return rc;
}

static int put_positions(jsi_buf *b, uint64_t dd, uint64_t ds, uint64_t fd,
                         uint64_t fs) {
    int rc = put_uv(b, dd);

    if (rc == 0)
        rc = put_uv(b, ds);
    if (rc == 0)
        rc = put_uv(b, fd);
    if (rc == 0)
        rc = put_uv(b, fs);
    return rc;
}

/* Open a record at the end of b: room for its header, which rec_end
 * fills once the payload follows. */
static int rec_begin(jsi_buf *b, size_t *start) {
    int rc = jsi_buf_reserve(b, JSI_CSREC_HDR_LEN);

    *start = b->len;
    if (rc == 0)
        b->len += JSI_CSREC_HDR_LEN;
    return rc;
}

/* Close the record opened at start; on rc != 0 take it back out. */
static int rec_end(jsi_buf *b, size_t start, uint8_t type, int rc) {
    uint8_t *h;
    size_t plen;

    /* Widened: with a 32-bit size_t the test would be always false. */
    plen = b->len - start - JSI_CSREC_HDR_LEN;
    if (rc == 0 && (uint64_t)plen > UINT32_MAX)
        rc = JSI_ERR(JS_EINVAL, 0, "consumer state: record over 4 GiB");
    if (rc != 0) {
        b->len = start;
        return rc;
    }
    h = b->p + start;
    jsi_put32(h, (uint32_t)plen);
    h[8] = type;
    jsi_put32(h + 4, jsi_crc32c(0, h + 8, 1 + plen));
    return 0;
}

int jsi_cstate_enc_header(jsi_buf *b) {
    uint8_t h[JSI_CSTATE_HDR_LEN] = {0};

    memcpy(h, JSI_CSTATE_MAGIC, 4);
    jsi_put32(h + 4, JSI_CSTATE_VERSION);
    return jsi_buf_append(b, h, sizeof h);
}

/* JS_EINVAL unless counts are sorted, distinct and not 0 (a SNAP encodes
 * them as positive deltas). */
static int counts_check(const jsi_cstate *s) {
    uint64_t prev = 0;

    for (size_t i = 0; i < s->ncounts; i++) {
        if (s->counts[i].sseq <= prev)
            return JSI_ERR(JS_EINVAL, 0, "consumer state: count %zu "
                           "(sequence %llu) is 0, out of order or repeated",
                           i, (unsigned long long)s->counts[i].sseq);
        prev = s->counts[i].sseq;
    }
    return 0;
}

static int put_counts(jsi_buf *b, const jsi_cstate *s) {
    uint64_t prev = 0;
    int rc = put_uv(b, s->ncounts);

    for (size_t i = 0; rc == 0 && i < s->ncounts; i++) {
        rc = put_uv(b, s->counts[i].sseq - prev);
        if (rc == 0)
            rc = put_uv(b, s->counts[i].n);
        prev = s->counts[i].sseq;
    }
    return rc;
}

int jsi_cstate_enc_snap(const jsi_cstate *s, jsi_buf *b) {
    size_t start;
    int rc = counts_check(s);

    if (rc != 0)
        return rc;
    rc = rec_begin(b, &start);
    if (rc != 0)
        return rc;
    rc = put_positions(b, s->dlv_dseq, s->dlv_sseq, s->floor_dseq,
                       s->floor_sseq);
    if (rc == 0)
        rc = jsi_rs_encode(&s->acked, b);
    if (rc == 0)
        rc = put_counts(b, s);
    if (rc == 0)
        rc = put_uv(b, s->lps_end);
    return rec_end(b, start, JSI_CSREC_SNAP, rc);
}

static int range_cmp(const void *a, const void *b) {
    uint64_t x = ((const jsi_range *)a)->lo, y = ((const jsi_range *)b)->lo;

    return x < y ? -1 : x > y;
}

/* done[0..n) as a rangeset (runs merged, duplicates dropped), built in
 * one allocation: sort the values as one-member runs, then merge in
 * place. The caller frees rs. */
static int runs_from(const uint64_t *done, size_t n, jsi_rangeset *rs) {
    jsi_range *r;
    size_t i, k = 0;

    for (i = 0; i < n; i++)
        if (done[i] == 0)
            return JSI_ERR(JS_EINVAL, 0, "consumer state: ack of sequence 0");
    if (n == 0)
        return 0;
    if (n > SIZE_MAX / sizeof *r)
        return JSI_ERR(JS_ENOMEM, 0, "consumer state: too many acks");
    r = jsi_malloc(n * sizeof *r);
    if (!r)
        return JSI_ERR(JS_ENOMEM, 0, "consumer state: out of memory");
    for (i = 0; i < n; i++)
        r[i].lo = r[i].hi = done[i];
    qsort(r, n, sizeof *r, range_cmp);
    /* Sorted, so r[i].lo >= r[k].hi: merge a duplicate or a neighbour. */
    for (i = 1; i < n; i++) {
        if (r[i].lo - r[k].hi <= 1)
            r[k].hi = r[i].lo;
        else
            r[++k] = r[i];
    }
    rs->r = r;
    rs->n = k + 1;
    rs->cap = n;
    return 0;
}

int jsi_cstate_enc_acks(uint64_t dlv_dseq, uint64_t dlv_sseq,
                        uint64_t floor_dseq, uint64_t floor_sseq,
                        const uint64_t *done, size_t n, jsi_buf *b) {
    jsi_rangeset rs = JSI_RANGESET_INIT;
    size_t start;
    int rc = runs_from(done, n, &rs);

    if (rc == 0)
        rc = rec_begin(b, &start);
    if (rc != 0) {
        jsi_rs_free(&rs);
        return rc;
    }
    rc = put_positions(b, dlv_dseq, dlv_sseq, floor_dseq, floor_sseq);
    if (rc == 0)
        rc = jsi_rs_encode(&rs, b);
    jsi_rs_free(&rs);
    return rec_end(b, start, JSI_CSREC_ACKS, rc);
}

int jsi_cstate_enc_count(uint64_t sseq, uint64_t n, jsi_buf *b) {
    size_t start;
    int rc;

    if (sseq == 0)
        return JSI_ERR(JS_EINVAL, 0, "consumer state: count for sequence 0");
    rc = rec_begin(b, &start);
    if (rc != 0)
        return rc;
    rc = put_uv(b, sseq);
    if (rc == 0)
        rc = put_uv(b, n);
    return rec_end(b, start, JSI_CSREC_COUNT, rc);
}

/* ====================================================================== */
/* Decoding and replay                                                    */
/* ====================================================================== */
/* A record is applied whole or not at all: each decoder reads the whole
 * payload into temporaries before it touches the state, so a record that
 * fails to decode leaves the replay of the records before it. */

typedef struct cs_rd {
    const uint8_t *p;
    size_t n, pos;
} cs_rd;

static int rd_uv(cs_rd *r, uint64_t *v) {
    size_t k = jsi_uvarint_get(r->p + r->pos, r->n - r->pos, v);

    if (k == 0)
        return CS_CORRUPT("bad varint at payload offset %zu", r->pos);
    r->pos += k;
    return 0;
}

static int rd_positions(cs_rd *r, uint64_t v[4]) {
    int rc = 0;

    for (int i = 0; rc == 0 && i < 4; i++)
        rc = rd_uv(r, &v[i]);
    return rc;
}

static int rd_rangeset(cs_rd *r, jsi_rangeset *rs) {
    size_t used = 0;
    int rc = jsi_rs_decode(rs, r->p + r->pos, r->n - r->pos, &used);

    if (rc == 0)
        r->pos += used;
    return rc;
}

static int rd_end(const cs_rd *r) {
    if (r->pos != r->n)
        return CS_CORRUPT("%zu stray bytes after the payload", r->n - r->pos);
    return 0;
}

/* The counts of a SNAP into t (empty): strictly ascending, bounded by
 * the bytes left (each takes at least two). */
static int rd_counts(cs_rd *r, jsi_cstate *t) {
    uint64_t count, prev = 0, delta, n;
    int rc = rd_uv(r, &count);

    if (rc != 0)
        return rc;
    if (count > (r->n - r->pos) / 2)
        return CS_CORRUPT("%llu counts cannot fit in %zu bytes",
                          (unsigned long long)count, r->n - r->pos);
    rc = counts_reserve(t, (size_t)count);
    for (uint64_t i = 0; rc == 0 && i < count; i++) {
        rc = rd_uv(r, &delta);
        if (rc == 0)
            rc = rd_uv(r, &n);
        if (rc == 0 && (delta == 0 || delta > UINT64_MAX - prev))
            rc = CS_CORRUPT("count %llu: sequence out of order or past 2^64",
                            (unsigned long long)i);
        if (rc == 0) {
            prev += delta;
            t->counts[t->ncounts].sseq = prev;
            t->counts[t->ncounts++].n = n;
        }
    }
    return rc;
}

static int apply_snap(jsi_cstate *s, cs_rd *r) {
    jsi_cstate t;
    uint64_t v[4];
    int rc;

    jsi_cstate_init(&t);
    rc = rd_positions(r, v);
    if (rc == 0)
        rc = rd_rangeset(r, &t.acked);
    if (rc == 0)
        rc = rd_counts(r, &t);
    if (rc == 0)
        rc = rd_uv(r, &t.lps_end);
    if (rc == 0)
        rc = rd_end(r);
    if (rc != 0) {
        jsi_cstate_free(&t);
        return rc;
    }
    t.dlv_dseq = v[0];
    t.dlv_sseq = v[1];
    t.floor_dseq = v[2];
    t.floor_sseq = v[3];
    jsi_cstate_free(s);
    *s = t;
    return 0;
}

/* Positions only move forward (see the header), so taking the maximum
 * makes ACKS records commute. */
static void raise_positions(jsi_cstate *s, const uint64_t v[4]) {
    s->dlv_dseq = JSI_MAX(s->dlv_dseq, v[0]);
    s->dlv_sseq = JSI_MAX(s->dlv_sseq, v[1]);
    s->floor_dseq = JSI_MAX(s->floor_dseq, v[2]);
    s->floor_sseq = JSI_MAX(s->floor_sseq, v[3]);
}

static int apply_acks(jsi_cstate *s, cs_rd *r) {
    jsi_rangeset done = JSI_RANGESET_INIT;
    uint64_t v[4];
    int rc = rd_positions(r, v);

    if (rc == 0)
        rc = rd_rangeset(r, &done);
    if (rc == 0)
        rc = rd_end(r);
    if (rc == 0)
        raise_positions(s, v);
    /* Only JS_ENOMEM can stop the union half way; it ends the replay. */
    for (size_t i = 0; rc == 0 && i < done.n; i++)
        rc = jsi_rs_add(&s->acked, done.r[i].lo, done.r[i].hi);
    jsi_rs_free(&done);
    return rc;
}

static int apply_count(jsi_cstate *s, cs_rd *r) {
    uint64_t sseq, n;
    int rc = rd_uv(r, &sseq);

    if (rc == 0)
        rc = rd_uv(r, &n);
    if (rc == 0)
        rc = rd_end(r);
    if (rc == 0 && sseq == 0)
        rc = CS_CORRUPT("count for sequence 0");
    if (rc == 0)
        rc = jsi_cstate_set_count(s, sseq, n);
    return rc;
}

static int apply(jsi_cstate *s, uint8_t type, const uint8_t *p, size_t n) {
    cs_rd r = {p, n, 0};

    switch (type) {
    case JSI_CSREC_SNAP:
        return apply_snap(s, &r);
    case JSI_CSREC_ACKS:
        return apply_acks(s, &r);
    case JSI_CSREC_COUNT:
        return apply_count(s, &r);
    default:
        return CS_CORRUPT("unknown record type %u", (unsigned)type);
    }
}

/* Check and apply the record at p[0..n); *used gets its length.
 * JS_ECORRUPT ends the log here; JS_ENOMEM ends the replay. */
static int replay_one(jsi_cstate *s, const uint8_t *p, size_t n,
                      size_t *used) {
    uint32_t len;

    if (n < JSI_CSREC_HDR_LEN)
        return CS_CORRUPT("record header cut short (%zu bytes)", n);
    len = jsi_get32(p);
    if (len > n - JSI_CSREC_HDR_LEN)
        return CS_CORRUPT("record of %lu bytes runs past the end",
                          (unsigned long)len);
    if (jsi_crc32c(0, p + 8, 1 + (size_t)len) != jsi_get32(p + 4))
        return CS_CORRUPT("record checksum mismatch");
    *used = JSI_CSREC_HDR_LEN + (size_t)len;
    return apply(s, p[8], p + JSI_CSREC_HDR_LEN, len);
}

/* The reserved bytes are not checked: a later version may use them for
 * something an older reader can ignore. */
static int check_header(const uint8_t *p, size_t n) {
    if (n < JSI_CSTATE_HDR_LEN)
        return CS_CORRUPT("file header cut short (%zu bytes)", n);
    if (memcmp(p, JSI_CSTATE_MAGIC, 4) != 0)
        return CS_CORRUPT("bad magic");
    if (jsi_get32(p + 4) != JSI_CSTATE_VERSION)
        return CS_CORRUPT("format version %lu, not %u",
                          (unsigned long)jsi_get32(p + 4),
                          JSI_CSTATE_VERSION);
    return 0;
}

int jsi_cstate_replay(const uint8_t *p, size_t n, jsi_cstate *out,
                      size_t *good) {
    jsi_cstate t;
    size_t pos = JSI_CSTATE_HDR_LEN, used = 0;
    int rc = check_header(p, n);

    *good = 0;
    if (rc != 0) {
        jsi_cstate_free(out);
        return rc;
    }
    jsi_cstate_init(&t);
    while (pos < n) {
        rc = replay_one(&t, p + pos, n - pos, &used);
        if (rc == JS_ENOMEM) {
            jsi_cstate_free(&t);
            return rc;
        }
        if (rc != 0)
            break; /* the tail from here on is torn or damaged */
        pos += used;
    }
    jsi_cstate_normalise(&t);
    jsi_cstate_free(out);
    *out = t;
    *good = pos;
    return 0;
}

/* ====================================================================== */
/* The log file                                                           */
/* ====================================================================== */

struct jsi_cslog {
    js_vfs *vfs;
    char *dir;
    char *path;       /* dir/name */
    char *tmp;        /* dir/name.tmp, where a rewrite is built */
    js_vfs_file *f;   /* open on path */
    uint64_t size;    /* bytes written, where the next append goes */
    int failed;       /* 0, or the error that made the file untrusted */
    int damage;       /* JS_ECORRUPT if open found a damaged header */
    uint64_t cut;     /* bytes of torn tail open cut off */
};

/* Cleanup after a failure may record its own; keep the first detail. */
typedef struct cs_err {
    char msg[512];
} cs_err;

static void err_save(cs_err *e) {
    snprintf(e->msg, sizeof e->msg, "%s", js_errmsg());
}

static int err_restore(int rc, const cs_err *e) {
    return JSI_ERR(rc, 0, "%s", e->msg);
}

static void cslog_free(jsi_cslog *l) {
    if (!l)
        return;
    jsi_vfs_close(l->f);
    jsi_free(l->dir);
    jsi_free(l->path);
    jsi_free(l->tmp);
    jsi_free(l);
}

static int cslog_new(js_vfs *vfs, const char *dir, const char *name,
                     jsi_cslog **out) {
    jsi_cslog *l = jsi_calloc(1, sizeof *l);
    size_t n;

    *out = NULL;
    if (l) {
        l->vfs = vfs;
        l->dir = jsi_strdup(dir);
        l->path = jsi_path_join(dir, name);
    }
    if (l && l->path) {
        n = strlen(l->path);
        l->tmp = jsi_malloc(n + sizeof ".tmp");
        if (l->tmp) {
            memcpy(l->tmp, l->path, n);
            memcpy(l->tmp + n, ".tmp", sizeof ".tmp");
        }
    }
    if (!l || !l->dir || !l->path || !l->tmp) {
        cslog_free(l);
        return JSI_ERR(JS_ENOMEM, 0, "open %s/%s: out of memory", dir, name);
    }
    *out = l;
    return 0;
}

/* Write b as the whole of l->tmp and make it durable; *t gets the file,
 * left open (also on failure, for the caller to close). */
static int write_temp(jsi_cslog *l, const jsi_buf *b, js_vfs_file **t) {
    int rc = jsi_vfs_open(l->vfs, l->tmp,
                          JS_VFS_READ | JS_VFS_WRITE | JS_VFS_CREATE, t);

    /* A temp file left by a crash may be longer than the new content. */
    if (rc == 0)
        rc = (*t)->io->truncate(*t, 0);
    if (rc == 0)
        rc = (*t)->io->write(*t, b->p, b->len, 0);
    if (rc == 0)
        rc = (*t)->io->sync(*t);
    return rc;
}

/* Close and remove a temp file that will not be renamed; rc's detail
 * survives. */
static int drop_temp(jsi_cslog *l, js_vfs_file *t, int rc) {
    cs_err e;

    if (!t)
        return rc;
    err_save(&e);
    jsi_vfs_close(t);
    (void)l->vfs->remove(l->vfs, l->tmp);
    return err_restore(rc, &e);
}

/* Replace the file by header + SNAP(st) through the temp file. The temp
 * file's handle is kept across the rename rather than reopening the name
 * (jsi_vfs_write_atomic closes it): so there is no moment after the rename
 * when the log cannot reach its file, and a failure says exactly whether
 * the rename happened. */
static int cslog_replace(jsi_cslog *l, const jsi_cstate *st) {
    jsi_buf b = {NULL, 0, 0};
    js_vfs_file *t = NULL;
    int rc = jsi_cstate_enc_header(&b);

    if (rc == 0)
        rc = jsi_cstate_enc_snap(st, &b);
    if (rc == 0)
        rc = write_temp(l, &b, &t);
    if (rc == 0)
        rc = l->vfs->rename(l->vfs, l->tmp, l->path);
    if (rc != 0) {
        jsi_buf_free(&b);
        return drop_temp(l, t, rc); /* the old file is untouched */
    }
    jsi_vfs_close(l->f); /* the replaced file: nothing to lose */
    l->f = t;
    l->size = b.len;
    l->failed = 0;
    jsi_buf_free(&b);
    /* Until the directory is synced the rename may be undone by a crash,
     * taking later appends with it: untrusted until a rewrite succeeds. */
    rc = l->vfs->sync_dir(l->vfs, l->dir);
    if (rc != 0)
        l->failed = rc;
    return rc;
}

/* The whole file into b. */
static int read_image(jsi_cslog *l, jsi_buf *b) {
    uint64_t size;
    int rc = l->f->io->size(l->f, &size);

    if (rc != 0)
        return rc;
    if (size > SIZE_MAX)
        return JSI_ERR(JS_ENOMEM, 0, "read %s: %llu bytes do not fit in "
                       "memory", l->path, (unsigned long long)size);
    rc = jsi_buf_reserve(b, (size_t)size);
    if (rc == 0)
        rc = jsi_vfs_read_exact(l->f, b->p, (size_t)size, 0);
    /* Short means the file shrank under us: an I/O fault, not damage. */
    if (rc == JS_ECORRUPT)
        rc = JSI_ERR(JS_EIO, 0, "read %s: %s", l->path, js_errmsg());
    if (rc == 0)
        b->len = (size_t)size;
    return rc;
}

/* Cut the file to its valid prefix of good bytes, durably, so that
 * appends follow the last good record. */
static int cut_tail(jsi_cslog *l, size_t good, size_t n) {
    int rc = l->f->io->truncate(l->f, good);

    if (rc == 0)
        rc = l->f->io->sync(l->f);
    if (rc == 0) {
        l->cut = n - good;
        l->size = good;
    }
    return rc;
}

/* Replay the open file into st; repair what replay could not use.
 * A short or damaged header (a version this library does not know
 * included) leaves the empty state, which redelivers everything: safe for
 * at-least-once, where failing the open would strand the consumer. Only
 * an I/O error fails the open. The file is rewritten at once, or the
 * records appended after the bad header would be ignored by the next
 * open too. */
static int cslog_load(jsi_cslog *l, jsi_cstate *st) {
    jsi_buf img = {NULL, 0, 0};
    size_t good = 0;
    int rc = read_image(l, &img);

    if (rc == 0)
        rc = jsi_cstate_replay(img.p, img.len, st, &good);
    if (rc == JS_ECORRUPT) {
        l->damage = rc;
        rc = cslog_replace(l, st);
    } else if (rc == 0 && good < img.len) {
        rc = cut_tail(l, good, img.len);
    } else if (rc == 0) {
        l->size = good;
    }
    jsi_buf_free(&img);
    return rc;
}

int jsi_cslog_open(js_vfs *vfs, const char *dir, const char *name,
                   jsi_cstate *st, jsi_cslog **out) {
    jsi_cstate t;
    jsi_cslog *l;
    int rc;

    if (!out)
        return JSI_ERR(JS_EINVAL, 0, "consumer state open: NULL out");
    *out = NULL;
    if (!vfs || !dir || !name || !st)
        return JSI_ERR(JS_EINVAL, 0, "consumer state open: NULL argument");
    rc = cslog_new(vfs, dir, name, &l);
    if (rc != 0)
        return rc;
    jsi_cstate_init(&t);
    /* A rewrite cut short before its rename: the name still holds the
     * complete old log. Failing to remove the temp is harmless, the next
     * rewrite truncates it. */
    (void)vfs->remove(vfs, l->tmp);
    rc = jsi_vfs_open(vfs, l->path, JS_VFS_READ | JS_VFS_WRITE, &l->f);
    if (rc == JS_ENOTFOUND)
        rc = cslog_replace(l, &t); /* a new file appears whole or not */
    else if (rc == 0)
        rc = cslog_load(l, &t);
    if (rc != 0) {
        cslog_free(l);
        jsi_cstate_free(&t);
        return rc;
    }
    jsi_cstate_free(st);
    *st = t;
    *out = l;
    return 0;
}

int jsi_cslog_damage(const jsi_cslog *l, uint64_t *cut) {
    if (cut)
        *cut = l->cut;
    return l->damage;
}

static int refuse_failed(const jsi_cslog *l) {
    return JSI_ERR(JS_EFAILED, 0, "%s: an earlier write or sync failed (%s); "
                   "rewrite the log", l->path, js_strerror(l->failed));
}

int jsi_cslog_append(jsi_cslog *l, const void *p, size_t n) {
    int rc;

    if (l->failed)
        return refuse_failed(l);
    if (n == 0)
        return 0;
    /* A failed write may have left part of the data: what follows would
     * land after stray bytes, or among stale whole records. */
    rc = l->f->io->write(l->f, p, n, l->size);
    if (rc != 0) {
        l->failed = rc;
        return rc;
    }
    l->size += n;
    return 0;
}

int jsi_cslog_sync(jsi_cslog *l) {
    int rc;

    if (l->failed)
        return refuse_failed(l);
    /* After a failed sync nothing written since the last good one can be
     * trusted to be on disk (the store's rule too). */
    rc = l->f->io->sync(l->f);
    if (rc != 0)
        l->failed = rc;
    return rc;
}

uint64_t jsi_cslog_size(const jsi_cslog *l) {
    return l->size;
}

int jsi_cslog_rewrite(jsi_cslog *l, const jsi_cstate *st) {
    if (!l || !st)
        return JSI_ERR(JS_EINVAL, 0, "consumer state rewrite: NULL argument");
    return cslog_replace(l, st);
}

void jsi_cslog_close(jsi_cslog *l) {
    cslog_free(l);
}

/* Remove path; a missing file is fine. */
static int remove_if_there(js_vfs *vfs, const char *path) {
    int rc = vfs->remove(vfs, path);

    return rc == JS_ENOTFOUND ? 0 : rc;
}

int jsi_cslog_remove(js_vfs *vfs, const char *dir, const char *name) {
    jsi_cslog *l;
    int rc = cslog_new(vfs, dir, name, &l);

    if (rc != 0)
        return rc;
    rc = remove_if_there(vfs, l->tmp);
    if (rc == 0)
        rc = remove_if_there(vfs, l->path);
    if (rc == 0)
        rc = vfs->sync_dir(vfs, dir);
    cslog_free(l);
    return rc;
}
