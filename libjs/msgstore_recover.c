/*
 * msgstore_recover.c - opening a message store: find the block files,
 * restore the index from the checkpoint when it is valid, replay the
 * records written after it (or every record when it is not), drop a torn
 * tail, and record damaged records as lost instead of giving up on the
 * records after them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "checkpoint.h"
#include "msgstore_int.h"
#include "vfs.h"

static int64_t system_clock(void *ctx) {
    (void)ctx;
    return jsi_wallclock_ns();
}

/* ---- applying records during replay ------------------------------------- */

/* Sequences between the last one seen and s never turned up: lost, unless
 * a later DEL or FRONT record says they were removed. */
static int note_gap(jsi_ms *ms, uint64_t s) {
    if (s > ms->last + 1 && ms->last + 1 >= ms->first)
        if (jsi_rs_add(&ms->lost, ms->last + 1, s - 1) != 0)
            return JS_ENOMEM;
    if (s > ms->last)
        ms->last = s;
    return 0;
}

static int apply_msg(jsi_ms *ms, jsi_blk *b, const uint8_t *p,
                     const jsi_rechdr *h) {
    uint64_t s = h->seq;
    if (s <= ms->last && ms->last >= ms->first)
        return 0; /* duplicate or out of order: damage, ignore */
    if (s < ms->first)
        return 0; /* below a FRONT seen earlier (cannot happen in order) */
    int rc = note_gap(ms, s);
    if (rc)
        return rc;
    size_t dlen = h->len - JSI_REC_HDR_LEN - h->subj_len - h->hdr_len;
    uint64_t size = jsi_ms_msg_size(h->subj_len, h->hdr_len, dlen);
    if (h->type == JSI_REC_ERASED || !jsi_rec_body_ok(p, h)) {
        if (h->type == JSI_REC_ERASED) {
            if (jsi_rs_add(&ms->deleted, s, s))
                return JS_ENOMEM;
        } else {
            if (jsi_rs_add(&ms->lost, s, s))
                return JS_ENOMEM;
            ms->lost_bytes += h->len;
        }
        if (ms->msgs == 0 && ms->first == s)
            jsi_ms_advance_first(ms);
        return 0;
    }
    int created = 0;
    jsi_sidx_entry *e = jsi_sidx_upsert(
        ms->sidx, (const char *)p + JSI_REC_HDR_LEN, h->subj_len, &created);
    if (!e)
        return JS_ENOMEM;
    if (created)
        e->first = s;
    e->count++;
    e->last = s;
    b->msgs++;
    b->bytes += size;
    ms->msgs++;
    ms->bytes += size;
    ms->last_ts = h->ts;
    return 0;
}

static int apply_del(jsi_ms *ms, const uint8_t *p, const jsi_rechdr *h) {
    jsi_rangeset rs = JSI_RANGESET_INIT;
    size_t used;
    int rc = jsi_rs_decode(&rs, p + JSI_REC_HDR_LEN, h->len - JSI_REC_HDR_LEN,
                           &used);
    if (rc)
        return rc;
    if (h->seq > ms->last)
        rc = note_gap(ms, h->seq + 1), ms->last = h->seq;
    for (size_t i = 0; rc == 0 && i < rs.n; i++) {
        for (uint64_t s = rs.r[i].lo; rc == 0 && s <= rs.r[i].hi; s++) {
            if (s < ms->first || s > ms->last)
                continue;
            if (jsi_rs_contains(&ms->lost, s)) {
                rc = jsi_rs_remove(&ms->lost, s, s);
                if (rc == 0)
                    rc = jsi_rs_add(&ms->deleted, s, s);
                continue;
            }
            rc = jsi_ms_remove(ms, s, 0);
            if (rc == JS_EMSG_NOT_FOUND)
                rc = 0;
        }
    }
    jsi_rs_free(&rs);
    return rc;
}

static int apply_front(jsi_ms *ms, const uint8_t *p, const jsi_rechdr *h) {
    uint64_t upto = jsi_get64(p + JSI_REC_HDR_LEN), n = 0;
    if (h->seq > ms->last) {
        /* Everything up to the logged last sequence existed. */
        if (upto <= h->seq && note_gap(ms, h->seq + 1) != 0)
            return JS_ENOMEM;
        ms->last = h->seq;
    }
    if (upto > ms->last + 1)
        upto = ms->last + 1;
    if (upto <= ms->first)
        return 0;
    return jsi_ms_purge(ms, NULL, upto, 0, &n);
}

/* ---- walking a block ---------------------------------------------------- */

static int apply_record(jsi_ms *ms, jsi_blk *b, const uint8_t *p,
                        const jsi_rechdr *h) {
    if (h->type == JSI_REC_MSG || h->type == JSI_REC_ERASED)
        return apply_msg(ms, b, p, h);
    if (!jsi_rec_body_ok(p, h)) {
        ms->lost_bytes += h->len;
        return 0;
    }
    int rc = h->type == JSI_REC_DEL ? apply_del(ms, p, h)
                                    : apply_front(ms, p, h);
    return rc == JS_ECORRUPT ? 0 : rc;
}

/*
 * Walk the records of a loaded block from offset `from` (0: the start),
 * building its offset table; with replay, apply each record to the index.
 * b->size is cut back to the end of the last whole record when the block
 * ends in a torn (partial) record.
 */
int jsi_ms_parse_block(jsi_ms *ms, jsi_blk *b, int replay, uint64_t from) {
    size_t off = from ? (size_t)from : JSI_BLK_HDR_LEN;
    size_t size = (size_t)b->size;
    if (!from && jsi_blkhdr_check(b->buf, size, b->no) != 0 && replay)
        ms->lost_bytes += JSI_MIN(size, (size_t)JSI_BLK_HDR_LEN);
    while (off < size) {
        jsi_rechdr h;
        int r = jsi_rec_parse_hdr(b->buf + off, size - off, &h);
        if (r == 0) { /* torn: a record cut short by a crash */
            b->size = off;
            break;
        }
        if (r < 0) {
            size_t next = jsi_rec_resync(b->buf, size, off + 1);
            if (next >= size) { /* garbage up to the end: torn as well */
                if (replay)
                    ms->lost_bytes += 0;
                b->size = off;
                break;
            }
            if (replay)
                ms->lost_bytes += next - off;
            off = next;
            continue;
        }
        if (h.type == JSI_REC_MSG || h.type == JSI_REC_ERASED) {
            if (jsi_ms_offs_set(b, h.seq, (uint32_t)off) != 0) {
                /* A sequence that cannot belong here: skip it. */
                off += h.len;
                continue;
            }
            if (h.seq > b->hi) {
                if (b->hi < b->lo)
                    b->first_ts = h.ts;
                b->hi = h.seq;
                b->last_ts = h.ts;
            }
        }
        if (replay) {
            int rc = apply_record(ms, b, b->buf + off, &h);
            if (rc)
                return rc;
        }
        off += h.len;
    }
    return 0;
}

/* ---- finding block files ------------------------------------------------ */

typedef struct blk_list {
    uint64_t *no;
    size_t n, cap;
    int err;
} blk_list;

static int list_cb(void *ctx, const char *name) {
    blk_list *l = ctx;
    size_t len = strlen(name);
    if (len != 20 || strcmp(name + 16, ".blk") != 0)
        return 0;
    char *end;
    uint64_t no = strtoull(name, &end, 16);
    if (end != name + 16)
        return 0;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        uint64_t *n = jsi_realloc(l->no, ncap * sizeof *n);
        if (!n) {
            l->err = JS_ENOMEM;
            return 1;
        }
        l->no = n;
        l->cap = ncap;
    }
    l->no[l->n++] = no;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Read a block file whole into b (which knows its number). */
static int blk_read(jsi_ms *ms, jsi_blk *b) {
    char *path = jsi_ms_blk_path(ms, b->no);
    if (!path)
        return JS_ENOMEM;
    jsi_buf buf = {0};
    int rc = jsi_vfs_read_file(ms->cfg.vfs, path, &buf,
                               (size_t)JSI_MAX(ms->block_size, JSI_REC_MAX_LEN) * 2);
    jsi_free(path);
    if (rc)
        return rc;
    b->buf = buf.p;
    b->cap = buf.cap;
    b->size = buf.len;
    return 0;
}

/* Lowest sequence of a MSG/ERASED record in the block, or 0. */
static uint64_t blk_first_seq(const jsi_blk *b) {
    size_t off = JSI_BLK_HDR_LEN, size = (size_t)b->size;
    while (off < size) {
        jsi_rechdr h;
        int r = jsi_rec_parse_hdr(b->buf + off, size - off, &h);
        if (r == 0)
            return 0;
        if (r < 0) {
            off = jsi_rec_resync(b->buf, size, off + 1);
            continue;
        }
        if (h.type == JSI_REC_MSG || h.type == JSI_REC_ERASED)
            return h.seq;
        off += h.len;
    }
    return 0;
}

/* Replay one block file from `from` (0: whole file) into the index. */
static int replay_block(jsi_ms *ms, jsi_blk *b, uint64_t from) {
    uint64_t disk_size;
    int rc = 0;
    if (!b->buf) {
        rc = blk_read(ms, b);
        if (rc)
            return rc;
        ms->cached++;
    }
    disk_size = b->size;
    if (from) {
        /* Index the records the checkpoint already accounted for. */
        rc = jsi_ms_parse_block(ms, b, 0, 0);
        if (rc)
            return rc;
        if (b->size < from)
            return JS_ECORRUPT;
        b->size = disk_size;
    } else {
        uint64_t f = blk_first_seq(b);
        b->lo = f && f > ms->last ? f : ms->last + 1;
        b->hi = b->lo - 1;
    }
    rc = jsi_ms_parse_block(ms, b, 1, from);
    b->wr = b->sy = b->size;
    b->created = 1;
    if (rc == 0 && b->size < disk_size)
        b->torn = disk_size; /* cut back later if it is the tail */
    return rc;
}

/* Make the last block the tail: loaded, with room to append, torn bytes
 * cut off the file. */
static int setup_tail(jsi_ms *ms) {
    jsi_blk *t = ms->blks[ms->nblks - 1];
    int rc = 0;
    if (!t->buf) {
        rc = blk_read(ms, t);
        if (rc)
            return rc;
        ms->cached++;
        uint64_t disk = t->size;
        rc = jsi_ms_parse_block(ms, t, 0, 0);
        if (rc)
            return rc;
        if (t->size < disk)
            t->torn = disk;
    }
    ms->cached--; /* the tail is not cache */
    size_t cap = JSI_MAX((size_t)ms->block_size, (size_t)t->size);
    if (t->cap < cap) {
        uint8_t *n = jsi_realloc(t->buf, cap);
        if (!n)
            return JS_ENOMEM;
        t->buf = n;
        t->cap = cap;
    }
    t->wr = t->sy = t->size;
    if (t->torn > t->size) {
        /* Drop the torn end so new records follow the last whole one. */
        char *path = jsi_ms_blk_path(ms, t->no);
        if (!path)
            return JS_ENOMEM;
        rc = jsi_vfs_open(ms->cfg.vfs, path, JS_VFS_READ | JS_VFS_WRITE, &t->f);
        jsi_free(path);
        if (rc == 0)
            rc = t->f->io->truncate(t->f, t->size);
        if (rc == 0)
            rc = t->f->io->sync(t->f);
        if (rc)
            return JSI_ERR(rc, 0, "truncating the torn end of %s",
                           ms->dir);
        t->torn = 0;
    }
    if (t->size < JSI_BLK_HDR_LEN) {
        /* Not even a whole block header: rewrite it. */
        jsi_blkhdr_encode(t->buf, t->no);
        t->size = JSI_BLK_HDR_LEN;
        t->wr = t->sy = 0;
        ms->apos += JSI_BLK_HDR_LEN;
    }
    return 0;
}

/* A brand-new store: one block, and a FRONT record if it starts above 1. */
static int init_empty(jsi_ms *ms, uint64_t first_seq) {
    ms->first = first_seq ? first_seq : 1;
    ms->last = ms->first - 1;
    jsi_blk *b = jsi_ms_blk_new(ms, ms->next_blkno++, ms->first,
                                ms->block_size);
    if (!b || jsi_ms_blks_append(ms, b) != 0) {
        jsi_ms_blk_free(b);
        return JS_ENOMEM;
    }
    jsi_blkhdr_encode(b->buf, b->no);
    b->size = JSI_BLK_HDR_LEN;
    ms->apos += JSI_BLK_HDR_LEN;
    if (ms->first > 1)
        ms->pend_front = ms->first;
    return jsi_ms_commit(ms, 1);
}

/* Full rebuild: replay every block file in order. */
static int rebuild(jsi_ms *ms, const blk_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        jsi_blk *b = jsi_ms_blk_new(ms, l->no[i], ms->last + 1, 0);
        if (!b || jsi_ms_blks_append(ms, b) != 0) {
            jsi_ms_blk_free(b);
            return JS_ENOMEM;
        }
        int rc = replay_block(ms, b, 0);
        if (rc)
            return rc;
        /* Keep memory bounded: earlier blocks become plain cache. */
        jsi_ms_cache_trim(ms);
    }
    return 0;
}

int jsi_ms_recover(jsi_ms *ms, uint64_t first_seq) {
    blk_list l = {0};
    int rc = ms->cfg.vfs->list(ms->cfg.vfs, ms->dir, list_cb, &l);
    if (rc == 0 && l.err)
        rc = l.err;
    if (rc) {
        jsi_free(l.no);
        return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "listing %s", ms->dir)
                               : JSI_ERR(rc, 0, "listing %s: %s", ms->dir,
                                         js_strerror(rc));
    }
    qsort(l.no, l.n, sizeof *l.no, cmp_u64);
    ms->next_blkno = l.n ? l.no[l.n - 1] + 1 : 1;
    ms->first = 1;
    ms->last = 0;
    if (l.n == 0) {
        jsi_free(l.no);
        return init_empty(ms, first_seq);
    }
    uint64_t from_blk = 0, from_off = 0;
    int rebuilt = 0;
    rc = jsi_ckpt_load(ms, &l.no[0], l.n, &from_blk, &from_off);
    if (rc == 0) {
        /* Replay what was written after the checkpoint. */
        for (size_t i = 0; rc == 0 && i < ms->nblks; i++) {
            jsi_blk *b = ms->blks[i];
            if (b->no == from_blk)
                rc = replay_block(ms, b, from_off);
        }
        for (size_t i = 0; rc == 0 && i < l.n; i++) {
            if (l.no[i] <= from_blk)
                continue;
            jsi_blk *b = jsi_ms_blk_new(ms, l.no[i], ms->last + 1, 0);
            if (!b || jsi_ms_blks_append(ms, b) != 0) {
                jsi_ms_blk_free(b);
                rc = JS_ENOMEM;
                break;
            }
            rc = replay_block(ms, b, 0);
            jsi_ms_cache_trim(ms);
        }
    } else if (rc == JS_ECORRUPT || rc == JS_ENOTFOUND) {
        jsi_ms_reset_index(ms);
        rebuilt = 1;
        rc = rebuild(ms, &l);
    }
    jsi_free(l.no);
    if (rc == 0 && ms->nblks == 0)
        return init_empty(ms, first_seq);
    if (rc == 0)
        rc = setup_tail(ms);
    if (rc == 0) {
        ms->lost_msgs = jsi_rs_total(&ms->lost);
        /* Removals found during replay are already on disk. */
        jsi_rs_clear(&ms->pend_del);
        ms->pend_front = 0;
        rc = jsi_ms_drop_dead_blocks(ms);
    }
    /* After a full rebuild, or with dead files to unlink, checkpoint now
     * so the next open is fast. */
    if (rc == 0 && (rebuilt || ms->ndead)) {
        rc = jsi_ms_commit(ms, 1);
        if (rc == 0)
            rc = jsi_ms_checkpoint(ms);
    }
    return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "recovering %s", ms->dir) : rc;
}

/* Forget everything a failed checkpoint load may have left. */
void jsi_ms_reset_index(jsi_ms *ms) {
    for (size_t i = 0; i < ms->nblks; i++)
        jsi_ms_blk_free(ms->blks[i]);
    ms->nblks = 0;
    ms->cached = 0;
    jsi_rs_clear(&ms->deleted);
    jsi_rs_clear(&ms->lost);
    jsi_sidx_free(ms->sidx);
    ms->sidx = jsi_sidx_new();
    ms->first = 1;
    ms->last = 0;
    ms->msgs = ms->bytes = 0;
    ms->lost_bytes = 0;
    ms->last_ts = 0;
}

/* ---- open / close ------------------------------------------------------- */

int jsi_ms_open(const jsi_ms_cfg *cfg, uint64_t first_seq, jsi_ms **out) {
    jsi_ms *ms = jsi_calloc(1, sizeof *ms);
    if (!ms)
        return JSI_ERR(JS_ENOMEM, 0, "opening %s", cfg->dir);
    ms->cfg = *cfg;
    if (!ms->cfg.clock)
        ms->cfg.clock = system_clock;
    ms->dir = jsi_strdup(cfg->dir);
    ms->cfg.dir = ms->dir;
    ms->mu = cfg->mu;
    ms->sidx = jsi_sidx_new();
    ms->block_size = cfg->block_size ? cfg->block_size : JSI_DEFAULT_BLOCK_SIZE;
    if (ms->block_size < JSI_MIN_BLOCK_SIZE)
        ms->block_size = JSI_MIN_BLOCK_SIZE;
    ms->last_sync = jsi_monotonic_ns();
    if (!ms->dir || !ms->sidx) {
        jsi_ms_free(ms);
        return JSI_ERR(JS_ENOMEM, 0, "opening %s", cfg->dir);
    }
    pthread_cond_init(&ms->cond, NULL);
    int rc = jsi_ms_recover(ms, first_seq);
    if (rc) {
        jsi_ms_free(ms);
        return rc;
    }
    *out = ms;
    return 0;
}

void jsi_ms_free(jsi_ms *ms) {
    if (!ms)
        return;
    for (size_t i = 0; i < ms->nblks; i++)
        jsi_ms_blk_free(ms->blks[i]);
    jsi_free(ms->blks);
    jsi_free(ms->jobs);
    jsi_free(ms->spare);
    jsi_free(ms->dead);
    jsi_rs_free(&ms->deleted);
    jsi_rs_free(&ms->lost);
    jsi_rs_free(&ms->pend_del);
    jsi_sidx_free(ms->sidx);
    jsi_free(ms->dir);
    if (ms->mu)
        pthread_cond_destroy(&ms->cond);
    jsi_free(ms);
}

int jsi_ms_close(jsi_ms *ms) {
    if (!ms)
        return 0;
    int rc = 0;
    if (!ms->failed) {
        rc = jsi_ms_commit(ms, 1);
        if (rc == 0)
            rc = jsi_ms_checkpoint(ms);
    }
    /* Wait for any I/O still running in another thread. */
    while (ms->flushing)
        pthread_cond_wait(&ms->cond, ms->mu);
    jsi_ms_free(ms);
    return rc;
}
