/*
 * msgstore.c - blocks, the append path, group commit and reads.
 *
 * Append path: a record is encoded straight into the tail block's buffer
 * (allocated once per block), so a publish costs a memcpy and a checksum.
 * The buffer never moves while it is the tail, which lets one thread write
 * a range of it to the file with the stream lock released while others keep
 * appending after that range. Only the thread holding the I/O token
 * (ms->flushing) touches block files; everyone else waits on ms->cond.
 */
#include <inttypes.h>
#include <stdio.h>

#include "msgstore_int.h"
#include "vfs.h"

char *jsi_ms_blk_path(jsi_ms *ms, uint64_t no) {
    char name[40];
    snprintf(name, sizeof name, "%016" PRIx64 ".blk", no);
    return jsi_path_join(ms->dir, name);
}

jsi_blk *jsi_ms_blk_new(jsi_ms *ms, uint64_t no, uint64_t lo, size_t cap) {
    (void)ms;
    jsi_blk *b = jsi_calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->no = no;
    b->lo = lo;
    b->hi = lo - 1;
    if (cap) {
        b->buf = jsi_malloc(cap);
        if (!b->buf) {
            jsi_free(b);
            return NULL;
        }
        b->cap = cap;
    }
    return b;
}

void jsi_ms_blk_free(jsi_blk *b) {
    if (!b)
        return;
    if (b->f)
        jsi_vfs_close(b->f);
    jsi_free(b->buf);
    jsi_free(b->offs);
    jsi_free(b->sum);
    jsi_free(b);
}

int jsi_ms_offs_set(jsi_blk *b, uint64_t seq, uint32_t off) {
    if (seq < b->lo)
        return JS_ECORRUPT;
    uint64_t i = seq - b->lo;
    /* A block cannot hold more records than its bytes allow. */
    uint64_t bound = JSI_MAX(b->cap, b->size) / JSI_REC_HDR_LEN + 1;
    if (i > bound)
        return JS_ECORRUPT;
    if (i >= b->offs_cap) {
        size_t ncap = b->offs_cap ? b->offs_cap * 2 : 256;
        while (ncap <= i)
            ncap *= 2;
        uint32_t *n = jsi_realloc(b->offs, ncap * sizeof *n);
        if (!n)
            return JS_ENOMEM;
        for (size_t k = b->offs_cap; k < ncap; k++)
            n[k] = JSI_NO_OFF;
        b->offs = n;
        b->offs_cap = ncap;
    }
    b->offs[i] = off;
    if (i + 1 > b->noffs)
        b->noffs = (size_t)i + 1;
    return 0;
}

/* ---- block lookup and loading ------------------------------------------ */

int jsi_ms_blk_find(jsi_ms *ms, uint64_t seq) {
    size_t lo = 0, hi = ms->nblks;
    while (lo < hi) { /* first block with lo > seq */
        size_t mid = lo + (hi - lo) / 2;
        if (ms->blks[mid]->lo <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? -1 : (int)lo - 1;
}

void jsi_ms_cache_trim(jsi_ms *ms, const jsi_blk *keep) {
    /* Blocks are only freed while no thread is doing I/O on them. */
    while (!ms->flushing && ms->cached > JSI_CACHE_BLOCKS) {
        jsi_blk *victim = NULL;
        for (size_t i = 0; i + 1 < ms->nblks; i++) {
            jsi_blk *b = ms->blks[i];
            if (b != keep && b->buf && !b->f && b->wr == b->size &&
                (!victim || b->tick < victim->tick))
                victim = b;
        }
        if (!victim)
            return;
        if (!ms->spare && victim->cap >= ms->block_size) {
            ms->spare = victim->buf;
            ms->spare_cap = victim->cap;
        } else {
            jsi_free(victim->buf);
        }
        jsi_free(victim->offs);
        victim->buf = NULL;
        victim->offs = NULL;
        victim->cap = victim->noffs = victim->offs_cap = 0;
        ms->cached--;
    }
}

int jsi_ms_blk_load(jsi_ms *ms, jsi_blk *b) {
    b->tick = ++ms->tick;
    if (b->buf)
        return 0;
    char *path = jsi_ms_blk_path(ms, b->no);
    if (!path)
        return JS_ENOMEM;
    js_vfs_file *f = NULL;
    uint64_t have = 0;
    int rc = jsi_vfs_open(ms->cfg.vfs, path, JS_VFS_READ, &f);
    jsi_free(path);
    if (rc)
        return rc;
    /* The size may come from a checkpoint, and a damaged one could claim
     * any size: never allocate past what the file holds by more than one
     * block and one largest record (a file cut short since is the case
     * below, a claim beyond that is the size itself damaged). */
    rc = f->io->size(f, &have);
    if (rc == 0 && (b->size > SIZE_MAX / 2 ||
                    b->size > have + ms->block_size + JSI_REC_MAX_LEN))
        rc = JS_ECORRUPT;
    if (rc) {
        jsi_vfs_close(f);
        return rc;
    }
    uint8_t *buf = b->size ? jsi_malloc((size_t)b->size) : NULL;
    if (b->size && !buf) {
        jsi_vfs_close(f);
        return JS_ENOMEM;
    }
    /* A file cut shorter than recovery accepted (damage since): keep the
     * records that are still whole; the missing end reads as zeros, which
     * no record header matches, so only the records cut off fail. */
    size_t n = (size_t)JSI_MIN(have, b->size);
    if (rc == 0)
        rc = jsi_vfs_read_exact(f, buf, n, 0);
    if (rc == 0 && n < b->size)
        memset(buf + n, 0, (size_t)b->size - n);
    jsi_vfs_close(f);
    if (rc) {
        jsi_free(buf);
        return rc;
    }
    b->buf = buf;
    b->cap = (size_t)b->size;
    rc = jsi_ms_parse_block(ms, b);
    if (rc) {
        jsi_free(b->buf);
        jsi_free(b->offs);
        b->buf = NULL;
        b->offs = NULL;
        b->cap = b->noffs = b->offs_cap = 0;
        return rc;
    }
    ms->cached++;
    jsi_ms_cache_trim(ms, b);
    return 0;
}

/* The record holding live message seq: JS_EMSG_NOT_FOUND if removed,
 * JS_ECORRUPT if damaged. *p points into the block buffer. */
int jsi_ms_rec_at(jsi_ms *ms, uint64_t seq, const uint8_t **p,
                  jsi_rechdr *h) {
    if (jsi_rs_contains(&ms->lost, seq))
        return JS_ECORRUPT; /* also below first, once first stepped over */
    if (seq < ms->first || seq > ms->last || ms->msgs == 0)
        return JS_EMSG_NOT_FOUND;
    if (jsi_rs_contains(&ms->deleted, seq))
        return JS_EMSG_NOT_FOUND;
    int i = jsi_ms_blk_find(ms, seq);
    if (i < 0)
        return JS_ECORRUPT;
    jsi_blk *b = ms->blks[i];
    int rc = jsi_ms_blk_load(ms, b);
    if (rc)
        return rc;
    uint64_t k = seq - b->lo;
    if (k >= b->noffs || b->offs[k] == JSI_NO_OFF)
        return JS_ECORRUPT;
    const uint8_t *r = b->buf + b->offs[k];
    if (jsi_rec_parse_hdr(r, (size_t)(b->size - b->offs[k]), h) != 1)
        return JS_ECORRUPT;
    if (h->type != JSI_REC_MSG)
        return JS_EMSG_NOT_FOUND;
    *p = r;
    return 0;
}

void jsi_ms_rec_view(const uint8_t *p, const jsi_rechdr *h, jsi_rec *r) {
    r->seq = h->seq;
    r->ts = h->ts;
    r->subj = (const char *)p + JSI_REC_HDR_LEN;
    r->slen = h->subj_len;
    r->hdr = p + JSI_REC_HDR_LEN + h->subj_len;
    r->hlen = h->hdr_len;
    r->data = r->hdr + h->hdr_len;
    r->dlen = h->len - JSI_REC_HDR_LEN - h->subj_len - h->hdr_len;
}

int jsi_ms_load(jsi_ms *ms, uint64_t seq, jsi_rec *r) {
    const uint8_t *p;
    jsi_rechdr h;
    int rc = jsi_ms_rec_at(ms, seq, &p, &h);
    if (rc == JS_ECORRUPT)
        return JSI_ERR(JS_ECORRUPT, 0, "message %" PRIu64 " is damaged", seq);
    if (rc)
        return rc;
    if (!jsi_rec_body_ok(p, &h))
        return JSI_ERR(JS_ECORRUPT, 0,
                       "message %" PRIu64 " failed its checksum", seq);
    jsi_ms_rec_view(p, &h, r);
    return 0;
}

/* ---- subjects ----------------------------------------------------------- */

jsi_sidx *jsi_ms_sidx(jsi_ms *ms) { return ms->sidx; }

static int rec_is_subject(jsi_ms *ms, uint64_t seq, const jsi_sidx_entry *e) {
    const uint8_t *p;
    jsi_rechdr h;
    if (jsi_ms_rec_at(ms, seq, &p, &h) != 0)
        return 0;
    return h.subj_len == e->len &&
           memcmp(p + JSI_REC_HDR_LEN, e->subj, e->len) == 0;
}

/* Make the entry's last exact (reads back from it only if stale). */
void jsi_ms_subject_fix_last(jsi_ms *ms, jsi_sidx_entry *e) {
    if (e->first_stale & JSI_SUBJ_LAST_STALE) {
        uint64_t s = e->last;
        while (s > e->first && !rec_is_subject(ms, s, e))
            s--;
        e->last = s;
        e->first_stale &= ~JSI_SUBJ_LAST_STALE;
    }
}

/* Is the record of live sequence k of loaded block b one of e's? */
static int blk_rec_is(const jsi_blk *b, uint64_t k, const jsi_sidx_entry *e) {
    jsi_rechdr h;
    if (k >= b->noffs || b->offs[k] == JSI_NO_OFF)
        return 0;
    const uint8_t *r = b->buf + b->offs[k];
    return jsi_rec_parse_hdr(r, (size_t)(b->size - b->offs[k]), &h) == 1 &&
           h.type == JSI_REC_MSG && h.subj_len == e->len &&
           memcmp(r + JSI_REC_HDR_LEN, e->subj, e->len) == 0;
}

/* The first live message of e at or after seq, into *out (0: none up to
 * e->last). Reads only blocks whose summary holds e and, inside one,
 * compares subjects before asking whether a sequence was removed: the
 * next message of a key can be many thousands of records on (history
 * trimming in a large KV bucket). */
static int subject_next(jsi_ms *ms, const jsi_sidx_entry *e, uint64_t seq,
                        uint64_t *out) {
    int i = jsi_ms_blk_find(ms, seq);
    *out = 0;
    for (size_t n = i < 0 ? 0 : (size_t)i; n < ms->nblks; n++) {
        jsi_blk *b = ms->blks[n];
        if (b->lo > e->last)
            break;
        if (b->hi < b->lo || b->hi < seq || jsi_ms_sum_get(b, e) == 0)
            continue;
        int rc = jsi_ms_blk_load(ms, b);
        if (rc)
            return rc;
        for (uint64_t s = JSI_MAX(seq, b->lo); s <= b->hi && s <= e->last; s++)
            if (blk_rec_is(b, s - b->lo, e) &&
                !jsi_rs_contains(&ms->deleted, s) &&
                !jsi_rs_contains(&ms->lost, s)) {
                *out = s;
                return 0;
            }
    }
    return 0;
}

int jsi_ms_subject_fix(jsi_ms *ms, jsi_sidx_entry *e) {
    jsi_ms_subject_fix_last(ms, e);
    /* One message: first is last, with no scan (the common case of a
     * key/value bucket with history 1, whose first goes stale on every
     * update). */
    if (e->count == 1)
        e->first = e->last, e->first_stale &= ~JSI_SUBJ_FIRST_STALE;
    if (e->first_stale & JSI_SUBJ_FIRST_STALE) {
        uint64_t s;
        int rc = subject_next(ms, e, JSI_MAX(e->first, ms->first), &s);
        if (rc)
            return rc;
        if (!s)
            return JSI_ERR(JS_ECORRUPT, 0, "subject %s: first not found",
                           e->subj);
        e->first = s;
        e->first_stale &= ~JSI_SUBJ_FIRST_STALE;
    }
    return 0;
}

/* ---- scans -------------------------------------------------------------- */

int jsi_ms_filter_is_all(const char *filter) {
    return !filter || !*filter || strcmp(filter, ">") == 0;
}

int jsi_ms_next(jsi_ms *ms, const char *filter, uint64_t seq, jsi_rec *r) {
    const char *f[1] = {filter};
    return jsi_ms_next_multi(ms, f, jsi_ms_filter_is_all(filter) ? 0 : 1, seq,
                             r);
}

typedef struct last_walk {
    jsi_ms *ms;
    uint64_t best;
} last_walk;

static int highest_last(jsi_sidx_entry *e, void *ctx) {
    last_walk *w = ctx;
    jsi_ms_subject_fix_last(w->ms, e);
    if (e->last > w->best)
        w->best = e->last;
    return 0;
}

/* The highest sequence <= s that is neither removed nor lost: whole runs
 * are stepped over, so a long gap costs no more than a short one. */
static uint64_t prev_kept(const jsi_ms *ms, uint64_t s) {
    for (;;) {
        uint64_t t = jsi_rs_prev_gap(&ms->lost,
                                     jsi_rs_prev_gap(&ms->deleted, s));
        if (t == s)
            return s;
        s = t;
    }
}

int jsi_ms_last(jsi_ms *ms, const char *filter, jsi_rec *r) {
    if (ms->msgs == 0)
        return JS_EMSG_NOT_FOUND;
    if (jsi_ms_filter_is_all(filter)) {
        for (uint64_t s = prev_kept(ms, ms->last); s >= ms->first && s > 0;
             s = prev_kept(ms, s - 1))
            if (jsi_ms_load(ms, s, r) == 0)
                return 0;
        return JS_EMSG_NOT_FOUND;
    }
    size_t flen = strlen(filter);
    uint64_t best = 0;
    if (!jsi_subject_has_wildcard(filter, flen)) {
        jsi_sidx_entry *e = jsi_sidx_get(ms->sidx, filter, flen);
        if (!e)
            return JS_EMSG_NOT_FOUND;
        jsi_ms_subject_fix_last(ms, e);
        best = e->last;
    } else {
        last_walk w = {ms, 0};
        jsi_ms_subject_each(ms, &filter, 1, highest_last, &w);
        best = w.best;
        if (!best)
            return JS_EMSG_NOT_FOUND;
    }
    return jsi_ms_load(ms, best, r);
}

int64_t jsi_ms_first_ts(jsi_ms *ms) {
    jsi_rec r;
    if (ms->msgs == 0)
        return 0;
    if (jsi_ms_next(ms, NULL, ms->first, &r) != 0)
        return 0;
    return r.ts;
}

uint64_t jsi_ms_next_with_ids(jsi_ms *ms, uint64_t seq) {
    int i = jsi_ms_blk_find(ms, seq);
    for (size_t k = i < 0 ? 0 : (size_t)i; k < ms->nblks; k++) {
        jsi_blk *b = ms->blks[k];
        if (b->with_ids && b->hi >= b->lo && b->hi >= seq)
            return JSI_MAX(seq, b->lo);
    }
    return ms->last + 1;
}

uint64_t jsi_ms_seq_from_time(jsi_ms *ms, int64_t t) {
    jsi_rec r;
    size_t i = 0;
    while (i < ms->nblks && (ms->blks[i]->hi < ms->blks[i]->lo ||
                             ms->blks[i]->last_ts < t))
        i++;
    if (i == ms->nblks)
        return ms->last + 1;
    uint64_t s = JSI_MAX(ms->first, ms->blks[i]->lo);
    while (jsi_ms_next(ms, NULL, s, &r) == 0) {
        if (r.ts >= t)
            return r.seq;
        s = r.seq + 1;
    }
    return ms->last + 1;
}

/* ---- append ------------------------------------------------------------- */

int jsi_ms_blks_append(jsi_ms *ms, jsi_blk *b) {
    /* Only the last block may keep an unsorted summary. */
    if (ms->nblks)
        jsi_ms_sum_seal(ms->blks[ms->nblks - 1], 1);
    if (ms->nblks == ms->blks_cap) {
        size_t ncap = ms->blks_cap ? ms->blks_cap * 2 : 16;
        jsi_blk **n = jsi_realloc(ms->blks, ncap * sizeof *n);
        if (!n)
            return JS_ENOMEM;
        ms->blks = n;
        ms->blks_cap = ncap;
    }
    ms->blks[ms->nblks++] = b;
    return 0;
}

/* Start a new tail block able to take a record of len bytes after the
 * records every block starts with. */
static int tail_roll(jsi_ms *ms, size_t len) {
    size_t cap = JSI_MAX((size_t)ms->block_size,
                         JSI_BLK_HDR_LEN + JSI_FRONT_REC_LEN + len);
    int reuse = ms->spare && ms->spare_cap >= cap;
    jsi_blk *b = jsi_ms_blk_new(ms, ms->next_blkno, ms->last + 1,
                                reuse ? 0 : cap);
    if (!b)
        return JSI_ERR(JS_ENOMEM, 0, "new block");
    if (reuse) {
        b->buf = ms->spare;
        b->cap = ms->spare_cap;
        ms->spare = NULL;
    }
    if (jsi_ms_blks_append(ms, b) != 0) {
        jsi_ms_blk_free(b);
        return JSI_ERR(JS_ENOMEM, 0, "new block");
    }
    ms->next_blkno++;
    /* The previous tail stays loaded until flushed; then it is cache. */
    if (ms->nblks > 1 && ms->tail_adopted)
        ms->cached++;
    ms->tail_adopted = 1;
    b->walked = 1; /* its records are the ones written here */
    jsi_blkhdr_encode(b->buf, b->no);
    b->size = JSI_BLK_HDR_LEN;
    ms->apos += JSI_BLK_HDR_LEN;
    /* Every block starts by stating the stream's first sequence, so the
     * blocks left after older ones were deleted describe the stream on
     * their own: a rebuild without the checkpoint sees a purge, not a
     * gap of lost messages. */
    jsi_ms_frame_front(ms, b->buf + b->size, ms->first);
    b->size += JSI_FRONT_REC_LEN;
    ms->apos += JSI_FRONT_REC_LEN;
    ms->since_ckpt += JSI_FRONT_REC_LEN;
    return 0;
}

/* Ranges a LOST record holds at most (about 20 bytes each, at worst), so
 * a large lost set takes several records of bounded size. */
#define JSI_LOST_PER_REC 4096

/* Append to out the LOST records of the lost set: each carries the lost
 * bytes and up to JSI_LOST_PER_REC ranges. */
static int frame_lost(jsi_ms *ms, jsi_buf *out) {
    int64_t now = ms->cfg.clock(ms->cfg.clock_ctx);
    size_t i = 0;
    do {
        size_t start = out->len;
        size_t k = JSI_MIN(ms->lost.n - i, (size_t)JSI_LOST_PER_REC);
        jsi_rangeset part = {k ? ms->lost.r + i : NULL, k, k};
        int rc = jsi_buf_reserve(out, JSI_REC_HDR_LEN + 8);
        if (rc)
            return rc;
        out->len += JSI_REC_HDR_LEN;
        jsi_put64(out->p + out->len, ms->lost_bytes);
        out->len += 8;
        rc = jsi_rs_encode(&part, out);
        if (rc)
            return rc;
        uint8_t *body = out->p + start + JSI_REC_HDR_LEN;
        size_t blen = out->len - start - JSI_REC_HDR_LEN;
        jsi_rec_encode_hdr(out->p + start, (uint32_t)(JSI_REC_HDR_LEN + blen),
                           ms->last, now, JSI_REC_LOST, 0, 0, 0,
                           jsi_crc32c(0, body, blen));
        i += k;
    } while (i < ms->lost.n);
    return 0;
}

int jsi_ms_log_lost(jsi_ms *ms) {
    jsi_buf b = {0};
    int rc = 0;
    if (ms->lost.n || ms->lost_bytes)
        rc = frame_lost(ms, &b);
    if (rc == 0 && b.len)
        rc = jsi_ms_append_raw(ms, b.p, b.len);
    jsi_buf_free(&b);
    if (rc == 0)
        ms->lost_unlogged = 0;
    return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "logging lost sequences") : rc;
}

void jsi_ms_frame_front(jsi_ms *ms, uint8_t *p, uint64_t first) {
    jsi_put64(p + JSI_REC_HDR_LEN, first);
    jsi_rec_encode_hdr(p, JSI_FRONT_REC_LEN, ms->last,
                       ms->cfg.clock(ms->cfg.clock_ctx), JSI_REC_FRONT, 0, 0, 0,
                       jsi_crc32c(0, p + JSI_REC_HDR_LEN, 8));
}

/* Make the last block (left on disk by an open) the tail again: load it
 * and give it room to grow. Only small blocks are worth it; a large one is
 * left alone and a new block starts. So is one holding a misplaced record
 * (found by the load's walk if recovery did not read the block): whether
 * its sequence fits depends on the block's size, so appending would let
 * the next rebuild take it for a message and drop the newer ones. */
static int adopt_tail(jsi_ms *ms, jsi_blk *t, size_t len) {
    if (t->size < JSI_BLK_HDR_LEN || t->size >= ms->block_size / 4 ||
        t->size + len > ms->block_size || t->misplaced)
        return -1;
    int rc = jsi_ms_blk_load(ms, t);
    if (rc)
        return rc;
    if (t->misplaced)
        return -1;
    uint8_t *n = jsi_realloc(t->buf, ms->block_size);
    if (!n)
        return JS_ENOMEM;
    t->buf = n;
    t->cap = ms->block_size;
    if (t->hi < t->lo) { /* empty: its range starts at the next sequence */
        t->lo = ms->last + 1;
        t->hi = ms->last;
    }
    ms->cached--;
    ms->tail_adopted = 1;
    return 0;
}

/* Room for len more bytes at the end of the tail block. */
static int tail_reserve(jsi_ms *ms, size_t len, jsi_blk **out) {
    jsi_blk *t = ms->nblks ? ms->blks[ms->nblks - 1] : NULL;
    if (t && !ms->tail_adopted && adopt_tail(ms, t, len) != 0)
        t = NULL; /* start a new block */
    if (!t || !t->buf || t->size + len > t->cap ||
        (t->size + len > ms->block_size && t->size > JSI_BLK_HDR_LEN)) {
        int rc = tail_roll(ms, len);
        if (rc)
            return rc;
        t = ms->blks[ms->nblks - 1];
    }
    *out = t;
    return 0;
}

/* A message far past what the tail's records could reach (after a long
 * lost stretch found at open) starts a new block: a later walk would take
 * it for a stray record there (misplaced() in msgstore_recover.c, whose
 * bound this is). */
static int tail_for_seq(jsi_ms *ms, uint64_t s, size_t len, jsi_blk **t) {
    if (s - (*t)->lo <= ((*t)->size + len) / JSI_REC_HDR_LEN + 1)
        return 0;
    int rc = tail_roll(ms, len);
    if (rc == 0)
        *t = ms->blks[ms->nblks - 1];
    return rc;
}

int jsi_ms_refuse(const jsi_ms *ms) {
    if (ms->failed)
        return JSI_ERR(JS_EFAILED, 0, "store failed earlier: %s",
                       js_strerror(ms->failed));
    return jsi_vfs_guard_failed(ms->cfg.vfs);
}

int jsi_ms_append_raw(jsi_ms *ms, const uint8_t *rec, size_t len) {
    jsi_blk *t;
    int rc = jsi_ms_refuse(ms);
    if (rc == 0)
        rc = tail_reserve(ms, len, &t);
    if (rc)
        return rc;
    memcpy(t->buf + t->size, rec, len);
    t->size += len;
    ms->apos += len;
    ms->since_ckpt += len;
    return 0;
}

int jsi_ms_append(jsi_ms *ms, const char *subj, size_t slen, const void *hdr,
                  size_t hlen, const void *data, size_t dlen, int64_t ts,
                  int has_msgid, uint64_t *seq) {
    size_t len = JSI_REC_HDR_LEN + slen + hlen + dlen;
    jsi_blk *t;
    int created = 0;
    int rc = jsi_ms_refuse(ms);
    if (rc)
        return rc;
    if (len > JSI_REC_MAX_LEN)
        return JSI_ERR(JS_EMSG_SIZE, 10054, "message too large");
    /* The last sequence stays below UINT64_MAX, so last + 1 (the end of
     * every range here) never wraps to 0. */
    if (ms->last >= UINT64_MAX - 1)
        return JSI_ERR(JS_ENOSPC, 0, "sequence: the stream's sequence space "
                       "is used up (last sequence %" PRIu64 ")", ms->last);
    jsi_sidx_entry *e = jsi_ms_subj_upsert(ms, subj, slen, &created);
    if (!e)
        return JSI_ERR(JS_ENOMEM, 0, "subject index");
    rc = tail_reserve(ms, len, &t);
    uint64_t s = ms->last + 1;
    if (rc == 0)
        rc = tail_for_seq(ms, s, len, &t);
    if (rc == 0)
        rc = jsi_ms_sum_reserve(t);
    if (rc == 0)
        rc = jsi_ms_offs_set(t, s, (uint32_t)t->size);
    if (rc) {
        if (created)
            jsi_ms_subj_remove(ms, e);
        return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "append") : rc;
    }
    jsi_rec_encode_msg(t->buf + t->size, s, ts, has_msgid ? JSI_RECF_MSGID : 0,
                       subj, slen, hdr, hlen, data, dlen);
    t->size += len;
    if (t->hi < t->lo)
        t->first_ts = ts;
    t->hi = s;
    t->last_ts = ts;
    t->msgs++;
    t->with_ids += has_msgid != 0;
    t->bytes += jsi_ms_msg_size(slen, hlen, dlen);
    ms->apos += len;
    ms->since_ckpt += len;
    ms->last = s;
    ms->last_ts = ts;
    ms->msgs++;
    ms->bytes += jsi_ms_msg_size(slen, hlen, dlen);
    if (created) {
        e->first = s;
        jsi_ms_subject_new(ms, e);
    }
    e->count++;
    e->last = s;
    e->first_stale &= ~JSI_SUBJ_LAST_STALE;
    jsi_ms_sum_add(t, e);
    *seq = s;
    return 0;
}

/* ---- I/O token, flush and commit --------------------------------------- */

int jsi_ms_own_io(jsi_ms *ms) {
    while (ms->flushing)
        pthread_cond_wait(&ms->cond, ms->mu);
    ms->flushing = 1;
    return 0;
}

void jsi_ms_release_io(jsi_ms *ms) {
    ms->flushing = 0;
    pthread_cond_broadcast(&ms->cond);
}

static int jobs_reserve(jsi_ms *ms, size_t n) {
    if (n <= ms->jobs_cap)
        return 0;
    size_t ncap = JSI_MAX(n, ms->jobs_cap * 2);
    jsi_flush_job *j = jsi_realloc(ms->jobs, ncap * sizeof *j);
    if (!j)
        return JSI_ERR(JS_ENOMEM, 0, "flush");
    ms->jobs = j;
    ms->jobs_cap = ncap;
    return 0;
}

/* Write (and sync) one job; runs without the stream lock. */
static int job_run(jsi_ms *ms, jsi_flush_job *j) {
    jsi_blk *b = j->b;
    int rc = 0;
    if (!b->f) {
        char *path = jsi_ms_blk_path(ms, b->no);
        if (!path)
            return JS_ENOMEM;
        rc = jsi_vfs_open(ms->cfg.vfs, path,
                          JS_VFS_READ | JS_VFS_WRITE | JS_VFS_CREATE, &b->f);
        jsi_free(path);
        if (rc)
            return rc;
    }
    if (j->to > j->from)
        rc = b->f->io->write(b->f, b->buf + j->from, (size_t)(j->to - j->from),
                             j->from);
    if (rc == 0 && j->sync)
        rc = b->f->io->sync(b->f);
    return rc;
}

int jsi_ms_flush(jsi_ms *ms, int sync) {
    jsi_ms_own_io(ms);
    if (ms->failed) {
        jsi_ms_release_io(ms);
        return JSI_ERR(JS_EFAILED, 0, "store failed earlier: %s",
                       js_strerror(ms->failed));
    }
    uint64_t target = ms->apos;
    size_t nj = 0;
    int rc = jobs_reserve(ms, ms->nblks);
    for (size_t i = 0; rc == 0 && i < ms->nblks; i++) {
        jsi_blk *b = ms->blks[i];
        /* Unwritten bytes are always in memory; a block written but not
         * synced (policy NONE) may have left the cache: sync it by file. */
        if (b->wr == b->size && (!sync || b->sy == b->size))
            continue;
        jsi_flush_job *j = &ms->jobs[nj++];
        j->b = b;
        j->from = b->wr;
        j->to = b->size;
        j->sync = sync;
        j->create = !b->created;
    }
    pthread_mutex_unlock(ms->mu);
    int created = 0;
    for (size_t i = 0; rc == 0 && i < nj; i++) {
        rc = job_run(ms, &ms->jobs[i]);
        created |= ms->jobs[i].create;
    }
    if (rc == 0 && created && sync)
        rc = ms->cfg.vfs->sync_dir(ms->cfg.vfs, ms->dir);
    pthread_mutex_lock(ms->mu);
    if (rc) {
        ms->failed = rc;
        jsi_ms_release_io(ms);
        return JSI_ERR(rc, 0, "writing %s: %s", ms->dir, js_strerror(rc));
    }
    for (size_t i = 0; i < nj; i++) {
        jsi_blk *b = ms->jobs[i].b;
        b->wr = ms->jobs[i].to;
        if (sync) {
            b->sy = b->wr;
            b->created = 1;
        }
    }
    ms->wpos = target;
    if (sync) {
        ms->dpos = target;
        ms->last_sync = jsi_monotonic_ns();
    }
    /* Sealed blocks whose data is all out need no open file any more. */
    for (size_t i = 0; i + 1 < ms->nblks; i++) {
        jsi_blk *b = ms->blks[i];
        if (b->f && b->wr == b->size &&
            (b->sy == b->size || ms->cfg.sync == JS_SYNC_NONE)) {
            jsi_vfs_close(b->f);
            b->f = NULL;
            b->created = 1;
        }
    }
    jsi_ms_release_io(ms);
    jsi_ms_cache_trim(ms, NULL);
    return 0;
}

/* Wait until everything up to target is written (and synced). */
static int wait_pos(jsi_ms *ms, uint64_t target, int sync) {
    for (;;) {
        uint64_t have = sync ? ms->dpos : ms->wpos;
        if (have >= target)
            return 0;
        if (ms->failed)
            return JSI_ERR(JS_EFAILED, 0, "store failed: %s",
                           js_strerror(ms->failed));
        if (!ms->flushing) {
            int rc = jsi_ms_flush(ms, sync);
            if (rc)
                return rc;
        } else {
            pthread_cond_wait(&ms->cond, ms->mu);
        }
    }
}

/* Append a DEL record of the removed sequences rs to the tail. */
static int append_del(jsi_ms *ms, const jsi_rangeset *rs) {
    jsi_buf b = {0};
    int rc = jsi_buf_reserve(&b, JSI_REC_HDR_LEN);
    if (rc == 0) {
        b.len = JSI_REC_HDR_LEN;
        rc = jsi_rs_encode(rs, &b);
    }
    if (rc == 0) {
        jsi_rec_encode_hdr(b.p, (uint32_t)b.len, ms->last,
                           ms->cfg.clock(ms->cfg.clock_ctx), JSI_REC_DEL, 0,
                           0, 0,
                           jsi_crc32c(0, b.p + JSI_REC_HDR_LEN,
                                      b.len - JSI_REC_HDR_LEN));
        rc = jsi_ms_append_raw(ms, b.p, b.len);
    }
    jsi_buf_free(&b);
    return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "logging removals") : rc;
}

/* Turn pending removals into DEL / FRONT records in the tail. */
static int log_removals(jsi_ms *ms) {
    uint8_t hdr[JSI_FRONT_REC_LEN];
    if (ms->pend_front) {
        jsi_rs_remove_below(&ms->pend_del, ms->pend_front);
        jsi_ms_frame_front(ms, hdr, ms->pend_front);
        int rc = jsi_ms_append_raw(ms, hdr, sizeof hdr);
        if (rc)
            return rc;
        ms->pend_front = 0;
    }
    if (ms->pend_del.n) {
        int rc = append_del(ms, &ms->pend_del);
        if (rc)
            return rc;
        jsi_rs_clear(&ms->pend_del);
    }
    if (ms->lost_unlogged) {
        int rc = jsi_ms_log_lost(ms);
        if (rc)
            return rc;
    }
    ms->rm_pos = ms->apos;
    return 0;
}

int jsi_ms_removals_pending(const jsi_ms *ms, int sync) {
    uint64_t have = sync || ms->cfg.sync == JS_SYNC_ALWAYS ? ms->dpos
                                                             : ms->wpos;
    return ms->pend_front || ms->pend_del.n || ms->lost_unlogged ||
           ms->rm_pos > have;
}

int jsi_ms_commit(jsi_ms *ms, int force_sync) {
    int rc = log_removals(ms);
    if (rc)
        return rc;
    int sync = force_sync || ms->cfg.sync == JS_SYNC_ALWAYS;
    if (!sync && ms->cfg.sync == JS_SYNC_INTERVAL &&
        jsi_monotonic_ns() - ms->last_sync >= ms->cfg.sync_interval)
        sync = 1;
    rc = wait_pos(ms, ms->apos, sync);
    if (rc)
        return rc;
    rc = jsi_ms_drop_dead_blocks(ms);
    /* Checkpoint every JSI_CKPT_BYTES, or every four checkpoints' worth
     * when the checkpoint is large (many subjects), so rewriting it costs
     * at most a quarter of what is appended; sooner when dead block files
     * wait for one to be unlinked. */
    uint64_t every = JSI_MAX((uint64_t)JSI_CKPT_BYTES, 4 * ms->ckpt_size);
    if (rc == 0 && (ms->since_ckpt >= every ||
                    (ms->ndead && ms->since_ckpt >= ms->block_size))) {
        rc = wait_pos(ms, ms->apos, 1);
        if (rc == 0)
            rc = jsi_ms_checkpoint(ms);
    }
    return rc;
}

/*
 * Before blocks go, log again in the tail what only they may say: the
 * lost set (their LOST records, or the damage itself), and that the
 * sequences from the first one up to the first block left (lo) that are
 * not lost are no messages either (removed, by a DEL record that may be
 * in those blocks): no block holds them, so a rebuild would take them for
 * lost (the next block's FRONT record says they existed), or, with
 * damaged blocks, take stray records of them that the index skipped,
 * because records in the blocks that go put the last sequence past them,
 * for messages.
 */
static int log_before_drop(jsi_ms *ms, uint64_t lo) {
    jsi_rangeset del = JSI_RANGESET_INIT;
    int rc = 0;
    if (ms->lost.n || ms->lost_bytes)
        rc = jsi_ms_log_lost(ms);
    lo = JSI_MIN(lo, ms->last + 1);
    for (uint64_t v = jsi_rs_next_gap(&ms->lost, ms->first);
         rc == 0 && v && v < lo;) {
        uint64_t end = jsi_rs_next_member(&ms->lost, v); /* 0: none */
        uint64_t hi = end && end <= lo ? end - 1 : lo - 1;
        rc = jsi_rs_add(&del, v, hi);
        v = hi < lo - 1 ? jsi_rs_next_gap(&ms->lost, hi + 1) : 0;
    }
    if (rc == 0 && del.n)
        rc = append_del(ms, &del);
    jsi_rs_free(&del);
    return rc;
}

/* Whether block b is read the same way without the blocks before it: it
 * holds no misplaced record (msgstore_recover.c). A stray copy of an old
 * sequence is told apart from a message by the stream's last sequence as
 * the records before it left it, those of earlier blocks included, so a
 * block holding one may be read differently once they are gone (a
 * message the index has taken for a stray, or the reverse). Loads the
 * block if no walk has looked at all its records since the open: a read
 * under the lock, once per block that comes first after dead ones. A
 * failed load says no, and is tried again next time. */
static int reads_alone(jsi_ms *ms, jsi_blk *b) {
    if (!b->walked && !b->buf && jsi_ms_blk_load(ms, b) != 0)
        return 0;
    return b->walked && !b->misplaced;
}

/*
 * Forget blocks all of whose messages are below the first sequence. Their
 * files are unlinked only after the next checkpoint, which no longer lists
 * them: an open from an older checkpoint still finds every file it names,
 * and the FRONT record that killed them was logged (and, under ALWAYS,
 * synced) before this runs, so a crash never brings their messages back.
 * What else only they may hold is logged again first (log_before_drop),
 * and the checkpoint syncs it before it unlinks anything.
 */
int jsi_ms_drop_dead_blocks(jsi_ms *ms) {
    if (ms->flushing || ms->erasing)
        return 0; /* blocks may be in use by another thread: next time */
    size_t ndead = 0;
    while (ndead + 1 < ms->nblks && ms->blks[ndead]->hi < ms->first &&
           ms->blks[ndead]->msgs == 0)
        ndead++;
    if (ndead == 0)
        return 0;
    /* A block that depends on the blocks before it for its reading keeps
     * them all until it goes too: a rebuild without them could read it
     * differently (reads_alone). What a block's records leave for the
     * next (the last sequence) builds up from the first block on, so none
     * of them can go, not even those right before a block that reads
     * alone. The first block left is loaded to know, if need be; the
     * others only say what a walk found already. */
    if (!reads_alone(ms, ms->blks[ndead]))
        return 0;
    for (size_t i = ndead + 1; i < ms->nblks; i++)
        if (ms->blks[i]->walked && ms->blks[i]->misplaced)
            return 0;
    if (log_before_drop(ms, ms->blks[ndead]->lo) != 0)
        return 0; /* retried at the next commit */
    if (ms->ndead + ndead > ms->dead_cap) {
        size_t ncap = JSI_MAX(ms->dead_cap * 2, ms->ndead + ndead + 8);
        uint64_t *n = jsi_realloc(ms->dead, ncap * sizeof *n);
        if (!n)
            return 0; /* retried at the next commit */
        ms->dead = n;
        ms->dead_cap = ncap;
    }
    for (size_t i = 0; i < ndead; i++) {
        jsi_blk *b = ms->blks[i];
        ms->dead[ms->ndead++] = b->no;
        if (b->buf)
            ms->cached--;
        jsi_ms_blk_free(b);
    }
    memmove(ms->blks, ms->blks + ndead, (ms->nblks - ndead) * sizeof *ms->blks);
    ms->nblks -= ndead;
    return 0;
}

/* ---- state -------------------------------------------------------------- */

void jsi_ms_state_get(jsi_ms *ms, jsi_ms_state *st) {
    memset(st, 0, sizeof *st);
    st->msgs = ms->msgs;
    st->bytes = ms->bytes;
    st->first = ms->first;
    st->last = ms->last;
    st->first_ts = jsi_ms_first_ts(ms);
    st->last_ts = ms->msgs ? ms->last_ts : 0;
    if (ms->msgs == 0)
        st->last_ts = ms->last_ts;
    st->num_subjects = jsi_sidx_size(ms->sidx);
    st->num_deleted = ms->last >= ms->first
                          ? (ms->last - ms->first + 1) - ms->msgs
                          : 0;
    st->lost_msgs = ms->lost_msgs;
    st->lost_bytes = ms->lost_bytes;
}

const jsi_range *jsi_ms_lost(const jsi_ms *ms, size_t *n) {
    *n = ms->lost.n;
    return ms->lost.r;
}

uint64_t jsi_ms_first_seq(const jsi_ms *ms) { return ms->first; }
uint64_t jsi_ms_last_seq(const jsi_ms *ms) { return ms->last; }
uint64_t jsi_ms_msgs(const jsi_ms *ms) { return ms->msgs; }
uint64_t jsi_ms_bytes(const jsi_ms *ms) { return ms->bytes; }

void jsi_ms_set_observer(jsi_ms *ms, jsi_ms_removed_fn fn, void *ctx) {
    ms->obs = fn;
    ms->obs_ctx = ctx;
}

void jsi_ms_set_sync(jsi_ms *ms, int sync, int64_t interval) {
    ms->cfg.sync = sync;
    ms->cfg.sync_interval = interval;
}

void jsi_ms_kill(jsi_ms *ms) {
    if (!ms->failed)
        ms->failed = JS_ESTREAM_NOT_FOUND;
    pthread_cond_broadcast(&ms->cond);
    /* Let I/O already under way finish, so removing the stream's files
     * afterwards cannot race a write that would recreate one. */
    while (ms->flushing)
        pthread_cond_wait(&ms->cond, ms->mu);
}
