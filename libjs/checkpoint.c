/*
 * checkpoint.c - writing and loading the index checkpoint (checkpoint.h).
 */
#include <inttypes.h>
#include <stdio.h>

#include "checkpoint.h"
#include "stree.h"
#include "msgstore_int.h"
#include "vfs.h"

static const uint8_t ckpt_magic[8] = {'J', 'S', 'I', 'D', 'X', '\r', '\n', 0x1a};
#define CKPT_VERSION 2
/* flags: every lost sequence and byte is in the blocks' LOST records too
 * (written only when something was lost, so a checkpoint of a store that
 * lost nothing stays readable by versions before LOST records) */
#define CKPT_LOST_LOGGED 1u
#define CKPT_NAME "index"
#define CKPT_TAIL_WINDOW 64
/* Bound on a checkpoint file: generous, but never an unbounded read. */
#define CKPT_MAX_BYTES ((size_t)1 << 31)

/* ---- encoding ----------------------------------------------------------- */

static int put_uv(jsi_buf *b, uint64_t v) {
    int rc = jsi_buf_reserve(b, 10);
    if (rc)
        return rc;
    b->len += jsi_uvarint_put(b->p + b->len, v);
    return 0;
}

static int put_u32(jsi_buf *b, uint32_t v) {
    int rc = jsi_buf_reserve(b, 4);
    if (rc)
        return rc;
    jsi_put32(b->p + b->len, v);
    b->len += 4;
    return 0;
}

static int put_list(jsi_buf *b, const uint64_t *v, size_t n) {
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = put_uv(b, v[i]);
    return rc;
}

/* The CRC of the tail block's last bytes [max(32, size-64), size), from
 * memory when the block is loaded, else from its file. */
static int tail_crc(jsi_ms *ms, const jsi_blk *t, uint32_t *crc) {
    size_t end = (size_t)t->size;
    size_t start = end > JSI_BLK_HDR_LEN + CKPT_TAIL_WINDOW
                       ? end - CKPT_TAIL_WINDOW
                       : JSI_BLK_HDR_LEN;
    uint8_t win[CKPT_TAIL_WINDOW];
    *crc = 0;
    if (end <= start)
        return 0;
    if (t->buf) {
        *crc = jsi_crc32c(0, t->buf + start, end - start);
        return 0;
    }
    char *path = jsi_ms_blk_path(ms, t->no);
    js_vfs_file *f = NULL;
    if (!path)
        return JS_ENOMEM;
    int rc = jsi_vfs_open(ms->cfg.vfs, path, JS_VFS_READ, &f);
    jsi_free(path);
    if (rc == 0)
        rc = jsi_vfs_read_exact(f, win, end - start, start);
    jsi_vfs_close(f);
    if (rc == 0)
        *crc = jsi_crc32c(0, win, end - start);
    return rc;
}

/* A block's subject summary: the pairs with a count, ids ascending and
 * delta-coded (consecutive new subjects cost a byte each). */
static int encode_summary(const jsi_blk *k, jsi_buf *b) {
    uint64_t n = 0, prev = 0;
    for (uint32_t j = 0; j < k->nsum; j++)
        n += k->sum[j].cnt != 0;
    int rc = put_uv(b, n);
    for (uint32_t j = 0; rc == 0 && j < k->nsum; j++) {
        if (!k->sum[j].cnt)
            continue;
        uint64_t id = jsi_sum_id(&k->sum[j]);
        rc = put_uv(b, id - prev);
        if (rc == 0)
            rc = put_uv(b, k->sum[j].cnt);
        prev = id;
    }
    return rc;
}

static int encode_blocks(jsi_ms *ms, jsi_buf *b) {
    int rc = put_uv(b, ms->nblks);
    /* The tail's summary may have an unsorted end: sort it (appends find
     * their pairs again by binary search). */
    jsi_ms_sum_seal(ms->blks[ms->nblks - 1], 0);
    for (size_t i = 0; rc == 0 && i < ms->nblks; i++) {
        jsi_blk *k = ms->blks[i];
        uint64_t v[9] = {k->no,        k->lo,
                         k->hi + 1 - k->lo, k->msgs,
                         k->bytes,     (uint64_t)k->first_ts,
                         (uint64_t)k->last_ts, k->size, k->with_ids};
        rc = put_list(b, v, 9);
        if (rc == 0)
            rc = encode_summary(k, b);
    }
    return rc;
}

static int encode_subject(void *val, void *ctx) {
    const jsi_sidx_entry *e = val;
    jsi_buf *b = ctx;
    int rc = put_uv(b, e->len);
    if (rc == 0)
        rc = jsi_buf_append(b, e->subj, e->len);
    uint64_t v[5] = {e->count, e->first, e->last, e->first_stale, e->id};
    if (rc == 0)
        rc = put_list(b, v, 5);
    return rc;
}

/* In subject order: loading inserts them into the ordered index in
 * order, which keeps its working set small (random order made a load of
 * a million subjects several times slower). */
static int encode_subjects(jsi_ms *ms, jsi_buf *b) {
    int rc = put_uv(b, jsi_sidx_size(ms->sidx));
    return rc ? rc : jsi_stree_each(ms->stree, encode_subject, b);
}

static int encode(jsi_ms *ms, jsi_buf *b) {
    jsi_blk *t = ms->blks[ms->nblks - 1];
    int rc = jsi_buf_append(b, ckpt_magic, 8);
    int logged = (ms->lost.n || ms->lost_bytes) && !ms->lost_unlogged;
    if (rc == 0)
        rc = put_u32(b, CKPT_VERSION);
    if (rc == 0)
        rc = put_u32(b, logged ? CKPT_LOST_LOGGED : 0);
    uint64_t h[10] = {ms->first, ms->last, ms->msgs, ms->bytes,
                      (uint64_t)ms->last_ts, ms->lost_bytes, ms->next_blkno,
                      ms->next_sid, t->no, t->size};
    if (rc == 0)
        rc = put_list(b, h, 10);
    uint32_t crc = 0;
    if (rc == 0)
        rc = tail_crc(ms, t, &crc);
    if (rc == 0)
        rc = put_u32(b, crc);
    if (rc == 0)
        rc = encode_blocks(ms, b);
    if (rc == 0)
        rc = jsi_rs_encode(&ms->deleted, b);
    if (rc == 0)
        rc = jsi_rs_encode(&ms->lost, b);
    if (rc == 0)
        rc = encode_subjects(ms, b);
    if (rc == 0)
        rc = put_u32(b, jsi_crc32c(0, b->p, b->len));
    return rc;
}

/* Unlink block files that the checkpoint just written no longer names. */
static void unlink_dead(jsi_ms *ms, const uint64_t *dead, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char *path = jsi_ms_blk_path(ms, dead[i]);
        if (path)
            ms->cfg.vfs->remove(ms->cfg.vfs, path);
        jsi_free(path);
    }
}

int jsi_ms_checkpoint(jsi_ms *ms) {
    if (ms->failed)
        return JSI_ERR(JS_EFAILED, 0, "store failed earlier");
    /* The snapshot must describe only durable records. */
    for (int tries = 0; ms->dpos != ms->apos || ms->flushing; tries++) {
        if (tries == 3)
            return 0; /* busy publishers: try at a later commit */
        int rc = jsi_ms_flush(ms, 1);
        if (rc)
            return rc;
    }
    jsi_ms_own_io(ms);
    jsi_buf img = {0};
    int rc = encode(ms, &img);
    /* Appends made while the lock is released below are not covered. */
    uint64_t covered = ms->since_ckpt;
    size_t ndead = ms->ndead;
    uint64_t *dead = ndead ? jsi_malloc(ndead * sizeof *dead) : NULL;
    if (ndead && !dead)
        rc = JS_ENOMEM;
    if (rc) {
        jsi_buf_free(&img);
        jsi_free(dead);
        jsi_ms_release_io(ms);
        return JSI_ERR(rc, 0, "checkpoint of %s", ms->dir);
    }
    if (ndead)
        memcpy(dead, ms->dead, ndead * sizeof *dead);
    pthread_mutex_unlock(ms->mu);
    rc = jsi_vfs_write_atomic(ms->cfg.vfs, ms->dir, CKPT_NAME, img.p, img.len);
    if (rc == 0)
        unlink_dead(ms, dead, ndead);
    pthread_mutex_lock(ms->mu);
    if (rc == 0) {
        /* Only the entries this checkpoint covered; more may have come. */
        if (ms->ndead > ndead)
            memmove(ms->dead, ms->dead + ndead,
                    (ms->ndead - ndead) * sizeof *ms->dead);
        ms->ndead -= ndead;
        ms->since_ckpt -= JSI_MIN(ms->since_ckpt, covered);
        ms->ckpt_size = img.len;
        ms->ckpt_on_disk = 1;
    }
    jsi_ms_release_io(ms);
    jsi_buf_free(&img);
    jsi_free(dead);
    /* A failed checkpoint costs a slower open, never data: not fatal. */
    return 0;
}

/* ---- decoding ----------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p;
    size_t n, off;
    int bad;
} rd;

static uint64_t get_uv(rd *r) {
    uint64_t v = 0;
    size_t k = r->bad ? 0 : jsi_uvarint_get(r->p + r->off, r->n - r->off, &v);
    if (!k)
        r->bad = 1;
    r->off += k;
    return v;
}

static uint32_t get_u32(rd *r) {
    if (r->bad || r->n - r->off < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = jsi_get32(r->p + r->off);
    r->off += 4;
    return v;
}

/* A block's summary: ids strictly ascending and below next_sid, counts
 * non-zero and together no more than the block's sequence span. */
static int decode_summary(jsi_ms *ms, jsi_blk *b, rd *r) {
    uint64_t n = get_uv(r), prev = 0, total = 0;
    if (r->bad || n > (r->n - r->off) / 2 || n > b->hi + 1 - b->lo)
        return JS_ECORRUPT;
    if (n == 0)
        return 0;
    b->sum = jsi_malloc((size_t)n * sizeof *b->sum);
    if (!b->sum)
        return JS_ENOMEM;
    b->sum_cap = (uint32_t)n;
    for (uint64_t j = 0; j < n; j++) {
        uint64_t d = get_uv(r), cnt = get_uv(r);
        if (r->bad || d == 0 || d >= ms->next_sid - prev || cnt == 0 ||
            cnt > UINT32_MAX || cnt > b->hi + 1 - b->lo - total)
            return JS_ECORRUPT;
        prev += d;
        total += cnt;
        jsi_sum_pair *p = &b->sum[j];
        p->id_lo = (uint32_t)prev;
        p->id_hi = (uint32_t)(prev >> 32);
        p->cnt = (uint32_t)cnt;
    }
    b->nsum = b->nsorted = (uint32_t)n;
    return 0;
}

static int decode_blocks(jsi_ms *ms, rd *r) {
    uint64_t n = get_uv(r);
    if (r->bad || n == 0 || n > (r->n - r->off) / 8)
        return JS_ECORRUPT;
    uint64_t prev_no = 0, prev_hi = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v[9];
        for (int k = 0; k < 9; k++)
            v[k] = get_uv(r);
        if (r->bad || v[0] <= prev_no || v[1] == 0 || v[1] <= prev_hi ||
            v[2] > UINT64_MAX - v[1] || v[7] < JSI_BLK_HDR_LEN ||
            v[3] > v[2] || v[0] >= ms->next_blkno)
            return JS_ECORRUPT;
        jsi_blk *b = jsi_ms_blk_new(ms, v[0], v[1], 0);
        if (!b || jsi_ms_blks_append(ms, b) != 0) {
            jsi_ms_blk_free(b);
            return JS_ENOMEM;
        }
        b->hi = v[1] + v[2] - 1;
        b->msgs = v[3];
        b->bytes = v[4];
        b->first_ts = (int64_t)v[5];
        b->last_ts = (int64_t)v[6];
        b->size = b->wr = b->sy = v[7];
        b->with_ids = v[8];
        b->created = 1;
        int rc = decode_summary(ms, b, r);
        if (rc)
            return rc;
        prev_no = v[0];
        prev_hi = b->hi >= b->lo ? b->hi : b->lo - 1;
    }
    return 0;
}

static int decode_subjects(jsi_ms *ms, rd *r) {
    uint64_t n = get_uv(r);
    if (r->bad || n > (r->n - r->off) / 6)
        return JS_ECORRUPT;
    if (jsi_sidx_reserve(ms->sidx, (size_t)n) != 0)
        return JS_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = get_uv(r);
        if (r->bad || len == 0 || len > JS_MAX_SUBJECT_LEN ||
            len > r->n - r->off)
            return JS_ECORRUPT;
        const char *s = (const char *)r->p + r->off;
        r->off += len;
        uint64_t count = get_uv(r), first = get_uv(r), last = get_uv(r),
                 flags = get_uv(r), id = get_uv(r);
        if (r->bad || count == 0 || first > last || last > ms->last ||
            flags > 3 || id == 0 || id >= ms->next_sid ||
            !jsi_subject_valid(s, (size_t)len, 0))
            return JS_ECORRUPT;
        int created = 0;
        jsi_sidx_entry *e = jsi_ms_subj_upsert(ms, s, (size_t)len, &created);
        if (!e)
            return JS_ENOMEM;
        if (!created)
            return JS_ECORRUPT;
        e->count = count;
        e->first = first;
        e->last = last;
        e->first_stale = (uint32_t)flags;
        e->id = id;
    }
    return 0;
}

int jsi_ckpt_decode(jsi_ms *ms, const uint8_t *p, size_t len,
                    uint64_t *tail_no, uint64_t *tail_size,
                    uint32_t *tcrc) {
    if (len < 8 + 8 + 4 || memcmp(p, ckpt_magic, 8) != 0)
        return JS_ECORRUPT;
    if (jsi_get32(p + len - 4) != jsi_crc32c(0, p, len - 4))
        return JS_ECORRUPT;
    rd r = {p, len - 4, 8, 0};
    if (get_u32(&r) != CKPT_VERSION)
        return JS_ECORRUPT;
    uint32_t flags = get_u32(&r);
    if (flags & ~CKPT_LOST_LOGGED)
        return JS_ECORRUPT;
    uint64_t h[10];
    for (int k = 0; k < 10; k++)
        h[k] = get_uv(&r);
    *tcrc = get_u32(&r);
    if (r.bad || h[0] == 0 || h[0] > h[1] + 1 || h[2] > h[1] + 1 - h[0] ||
        h[7] == 0 || h[7] > UINT64_MAX / 2)
        return JS_ECORRUPT;
    ms->first = h[0];
    ms->last = h[1];
    ms->msgs = h[2];
    ms->bytes = h[3];
    ms->last_ts = (int64_t)h[4];
    ms->lost_bytes = h[5];
    ms->next_blkno = h[6];
    ms->next_sid = h[7];
    *tail_no = h[8];
    *tail_size = h[9];
    int rc = decode_blocks(ms, &r);
    size_t used = 0;
    if (rc == 0)
        rc = jsi_rs_decode(&ms->deleted, r.p + r.off, r.n - r.off, &used);
    r.off += used;
    used = 0;
    if (rc == 0)
        rc = jsi_rs_decode(&ms->lost, r.p + r.off, r.n - r.off, &used);
    r.off += used;
    if (rc == 0)
        rc = decode_subjects(ms, &r);
    if (rc == 0 && (r.bad || r.off != r.n))
        rc = JS_ECORRUPT;
    if (rc == 0 && ms->blks[ms->nblks - 1]->no != *tail_no)
        rc = JS_ECORRUPT;
    /* Written before LOST records were: log the lost set at this open. */
    if (rc == 0 && !(flags & CKPT_LOST_LOGGED))
        ms->lost_unlogged = ms->lost.n || ms->lost_bytes;
    return rc == JS_ENOMEM ? rc : (rc ? JS_ECORRUPT : 0);
}

/* 1 if the number is among the files found. */
static int have_file(const uint64_t *nos, size_t n, uint64_t no) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (nos[mid] == no)
            return 1;
        if (nos[mid] < no)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* The tail block file must still hold what the checkpoint saw. */
static int check_tail(jsi_ms *ms, uint64_t no, uint64_t size, uint32_t crc) {
    char *path = jsi_ms_blk_path(ms, no);
    js_vfs_file *f = NULL;
    uint64_t have = 0;
    uint8_t win[CKPT_TAIL_WINDOW];
    if (!path)
        return JS_ENOMEM;
    int rc = jsi_vfs_open(ms->cfg.vfs, path, JS_VFS_READ, &f);
    jsi_free(path);
    if (rc == 0)
        rc = f->io->size(f, &have);
    size_t start = size > JSI_BLK_HDR_LEN + CKPT_TAIL_WINDOW
                       ? (size_t)size - CKPT_TAIL_WINDOW
                       : JSI_BLK_HDR_LEN;
    size_t n = size > start ? (size_t)size - start : 0;
    if (rc == 0 && have < size)
        rc = JS_ECORRUPT;
    if (rc == 0 && n)
        rc = jsi_vfs_read_exact(f, win, n, start);
    if (rc == 0 && (n ? jsi_crc32c(0, win, n) : 0) != crc)
        rc = JS_ECORRUPT;
    jsi_vfs_close(f);
    return rc == JS_ENOMEM ? rc : (rc ? JS_ECORRUPT : 0);
}

int jsi_ckpt_remove(jsi_ms *ms) {
    char *path = jsi_path_join(ms->dir, CKPT_NAME);
    if (!path)
        return JS_ENOMEM;
    int rc = ms->cfg.vfs->remove(ms->cfg.vfs, path);
    jsi_free(path);
    if (rc == JS_ENOTFOUND)
        rc = 0;
    if (rc == 0)
        rc = ms->cfg.vfs->sync_dir(ms->cfg.vfs, ms->dir);
    return rc;
}

int jsi_ckpt_load(jsi_ms *ms, const uint64_t *nos, size_t n, uint64_t *blk,
                  uint64_t *off) {
    char *path = jsi_path_join(ms->dir, CKPT_NAME);
    jsi_buf img = {0};
    uint32_t tcrc = 0;
    if (!path)
        return JS_ENOMEM;
    int rc = jsi_vfs_read_file(ms->cfg.vfs, path, &img, CKPT_MAX_BYTES);
    jsi_free(path);
    if (rc == JS_ENOTFOUND)
        return rc;
    if (rc == 0)
        rc = jsi_ckpt_decode(ms, img.p, img.len, blk, off, &tcrc);
    jsi_buf_free(&img);
    if (rc == 0) {
        ms->ckpt_first = ms->first;
        ms->ckpt_last = ms->last;
    }
    for (size_t i = 0; rc == 0 && i < ms->nblks; i++)
        if (!have_file(nos, n, ms->blks[i]->no))
            rc = JS_ECORRUPT;
    if (rc == 0)
        rc = check_tail(ms, *blk, *off, tcrc);
    if (rc == 0)
        ms->ckpt_on_disk = 1;
    if (rc == 0) {
        /* Files older than the tail that it does not list are dead blocks
         * whose unlink did not happen. */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (nos[i] >= *blk)
                break;
            while (k < ms->nblks && ms->blks[k]->no < nos[i])
                k++;
            if (k < ms->nblks && ms->blks[k]->no == nos[i])
                continue;
            unlink_dead(ms, &nos[i], 1);
        }
    }
    return rc == JS_ENOMEM || rc == 0 || rc == JS_ENOTFOUND ? rc : JS_ECORRUPT;
}
