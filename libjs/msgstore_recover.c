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

/*
 * Lost sequences. nats-server's filestore keeps what it found damaged in
 * fs.ld (LostStreamData: the sequences and their bytes), filled by
 * addLostData when a block rebuild, a block load that fails its index or
 * checkMsgs finds records it cannot read, and reported by State() as
 * state.Lost. Nothing that moves the first sequence clears it (purge,
 * PurgeEx, Compact, Truncate, removals, limits): it goes only per
 * sequence, through removeFromLostData, when a delete tombstone for that
 * sequence is replayed at recovery (the message was removed anyway), and
 * with the process, since index.db does not hold it and the damaged end
 * of a block is truncated away once found.
 *
 * Here, likewise, a lost sequence stays reported when the first sequence
 * moves past it, and a DEL record replayed over a lost sequence makes it
 * a removed one, below the first sequence too (apply_del). Unlike NATS
 * the report also survives a reopen: the checkpoint holds the set, and so
 * do the blocks, for a rebuild, once the records that showed the damage
 * are gone with their block: the open that finds new losses logs the
 * whole set as LOST records, and so does dropping dead blocks
 * (jsi_ms_drop_dead_blocks). A LOST record wins over what a rebuild
 * replayed before it (apply_lost). And a rebuild must not report more:
 * what the walk finds lost below a FRONT record (its gap to a deleted
 * block, damage to records removed before it happened) is a loss only if
 * an open reported it, which a LOST record (or the checkpoint) then says.
 */

/* Below upto every sequence was removed: keep lost there only what an
 * open reported. Below the upto of an earlier FRONT record this is done
 * already (since then only LOST records add lost sequences below the
 * first one, and only reported ones), so only the part above it is
 * looked at: replay meets a FRONT record per purge or limit commit. */
static int keep_reported_below(jsi_ms *ms, uint64_t upto) {
    uint64_t from = JSI_MAX(ms->lost_front_done, (uint64_t)1);
    if (upto <= from)
        return 0;
    ms->lost_front_done = upto;
    if (jsi_rs_remove(&ms->lost, from, upto - 1) != 0)
        return JS_ENOMEM;
    for (uint64_t v = jsi_rs_next_member(&ms->lost_known, from);
         v && v < upto;) {
        uint64_t end = jsi_rs_next_gap(&ms->lost_known, v); /* 0: none */
        uint64_t hi = end && end <= upto ? end - 1 : upto - 1;
        if (jsi_rs_add(&ms->lost, v, hi) != 0)
            return JS_ENOMEM;
        v = hi < upto - 1 ? jsi_rs_next_member(&ms->lost_known, hi + 1) : 0;
    }
    return 0;
}

/* 1 if every member of a is one of b. */
static int rs_subset(const jsi_rangeset *a, const jsi_rangeset *b) {
    for (size_t i = 0; i < a->n; i++)
        if (jsi_rs_count_in(b, a->r[i].lo, a->r[i].hi) !=
            a->r[i].hi - a->r[i].lo + 1)
            return 0;
    return 1;
}

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
        /* An erased first message is a removed one; a damaged first
         * message stays first, so reading it reports the damage. */
        if (h->type == JSI_REC_ERASED && ms->msgs == 0 && ms->first == s)
            jsi_ms_advance_first(ms);
        return 0;
    }
    int created = 0;
    if (jsi_ms_sum_reserve(b) != 0)
        return JS_ENOMEM;
    jsi_sidx_entry *e = jsi_ms_subj_upsert(
        ms, (const char *)p + JSI_REC_HDR_LEN, h->subj_len, &created);
    if (!e)
        return JS_ENOMEM;
    if (created) {
        e->first = s;
        jsi_ms_subject_new(ms, e);
    }
    e->count++;
    e->last = s;
    jsi_ms_sum_add(b, e); /* b is the last block: replay appends */
    b->msgs++;
    b->with_ids += (h->flags & JSI_RECF_MSGID) != 0;
    b->bytes += size;
    ms->msgs++;
    ms->bytes += size;
    ms->last_ts = h->ts;
    return 0;
}

/* Decode the rangeset of a DEL or LOST record (body[0..len)), take the
 * stream's last sequence from the record, and pass each range, cut at
 * that last sequence, to fn. */
static int apply_ranges(jsi_ms *ms, const jsi_rechdr *h, const uint8_t *body,
                        size_t len,
                        int (*fn)(jsi_ms *ms, uint64_t lo, uint64_t hi)) {
    jsi_rangeset rs = JSI_RANGESET_INIT;
    size_t used;
    int rc = jsi_rs_decode(&rs, body, len, &used);
    if (rc)
        return rc;
    if (h->seq > ms->last)
        rc = note_gap(ms, h->seq + 1), ms->last = h->seq;
    for (size_t i = 0; rc == 0 && i < rs.n && rs.r[i].lo <= ms->last; i++)
        rc = fn(ms, rs.r[i].lo, JSI_MIN(rs.r[i].hi, ms->last));
    jsi_rs_free(&rs);
    return rc;
}

/* Sequences [lo, hi] of a DEL record were removed. */
static int del_range(jsi_ms *ms, uint64_t lo, uint64_t hi) {
    int rc = 0;
    /* Removed, so not lost (as nats-server's removeFromLostData for a
     * tombstone it replays), below the first sequence too. */
    if (lo < ms->first)
        rc = jsi_rs_remove(&ms->lost, lo, JSI_MIN(hi, ms->first - 1));
    for (uint64_t s = JSI_MAX(lo, ms->first); rc == 0 && s <= hi; s++) {
        if (s < ms->first) { /* the first one moved past it */
            rc = jsi_rs_remove(&ms->lost, s, s);
            continue;
        }
        if (jsi_rs_contains(&ms->lost, s)) {
            rc = jsi_rs_remove(&ms->lost, s, s);
            if (rc == 0 && s > ms->first)
                rc = jsi_rs_add(&ms->deleted, s, s);
            else if (rc == 0) { /* a removed first one, as a message */
                ms->first = s + 1;
                jsi_ms_advance_first(ms);
            }
            continue;
        }
        rc = jsi_ms_remove(ms, s, 0);
        if (rc == JS_EMSG_NOT_FOUND)
            rc = 0;
    }
    return rc;
}

static int apply_del(jsi_ms *ms, const uint8_t *p, const jsi_rechdr *h) {
    return apply_ranges(ms, h, p + JSI_REC_HDR_LEN, h->len - JSI_REC_HDR_LEN,
                        del_range);
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
        return keep_reported_below(ms, upto);
    int rc = jsi_ms_purge(ms, NULL, upto, 0, &n);
    /* With no message left below upto the purge moves nothing, yet the
     * record says where the first sequence was: on a lost stretch (which
     * the first sequence does not step over once an open found it there)
     * when the blocks before this one are gone. */
    if (rc == 0 && ms->msgs == 0 && ms->first < upto) {
        ms->first = upto;
        jsi_rs_remove_below(&ms->deleted, upto);
    }
    return rc ? rc : keep_reported_below(ms, upto);
}

/* Sequences [lo, hi] (from the first one on) were reported lost: so they
 * are, whatever the records replayed so far said (the walk normally found
 * the same damage; blocks deleted since, whose records made the index
 * skip a stray copy, can make a rebuild take one for a message). */
static int make_lost(jsi_ms *ms, uint64_t lo, uint64_t hi) {
    jsi_rec r;
    int rc = 0;
    for (uint64_t s = lo; rc == 0 && ms->msgs &&
                          jsi_ms_next(ms, NULL, s, &r) == 0 && r.seq <= hi;) {
        s = r.seq + 1;
        rc = jsi_ms_remove(ms, r.seq, 0);
        if (rc == JS_EMSG_NOT_FOUND)
            rc = 0;
    }
    if (rc == 0)
        rc = jsi_rs_remove(&ms->deleted, lo, hi);
    if (rc == 0)
        rc = jsi_rs_add(&ms->lost, lo, hi);
    return rc;
}

/* Sequences [lo, hi] of a LOST record were reported lost. Below the
 * first sequence no record can show it again; from it on, the walk found
 * the damage itself, or should have. */
static int lost_range(jsi_ms *ms, uint64_t lo, uint64_t hi) {
    int rc = jsi_rs_add(&ms->lost_known, lo, hi);
    if (rc == 0 && lo < ms->first)
        rc = jsi_rs_add(&ms->lost, lo, JSI_MIN(hi, ms->first - 1));
    lo = JSI_MAX(lo, ms->first);
    if (rc == 0 && lo <= hi &&
        jsi_rs_count_in(&ms->lost, lo, hi) != hi - lo + 1)
        rc = make_lost(ms, lo, hi);
    return rc;
}

/* A LOST record: these sequences (and bytes) were reported lost. */
static int apply_lost(jsi_ms *ms, const uint8_t *p, const jsi_rechdr *h) {
    uint64_t bytes = jsi_get64(p + JSI_REC_HDR_LEN);
    int rc = apply_ranges(ms, h, p + JSI_REC_HDR_LEN + 8,
                          h->len - JSI_REC_HDR_LEN - 8, lost_range);
    if (rc)
        return rc;
    ms->lost_known_bytes = JSI_MAX(ms->lost_known_bytes, bytes);
    ms->lost_bytes = JSI_MAX(ms->lost_bytes, bytes);
    return 0;
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
    int rc = h->type == JSI_REC_DEL     ? apply_del(ms, p, h)
             : h->type == JSI_REC_FRONT ? apply_front(ms, p, h)
                                        : apply_lost(ms, p, h);
    return rc == JS_ECORRUPT ? 0 : rc;
}

/* 1 if a whole MSG or ERASED record ending at file offset end cannot hold
 * sequence h->seq of block b: below the block's first; at or below a
 * sequence already placed (a stray copy, which must not take over the
 * offset of the record the index counted); or further from the first than
 * the records that fit before it can reach. Every sequence in a block
 * takes a record of at least JSI_REC_HDR_LEN bytes (a gap left by a
 * damaged tail is logged by a DEL or FRONT record), so that bound depends
 * only on where the record ends, never on what is appended or cut off
 * after it: every open places the same records. */
static int misplaced(const jsi_blk *b, const jsi_rechdr *h, uint64_t end) {
    return h->seq < b->lo || h->seq - b->lo < b->noffs ||
           h->seq - b->lo > end / JSI_REC_HDR_LEN + 1;
}

/*
 * Walk the records in buf[0..len), which holds a block's bytes from file
 * offset `base`. With index, record each message's offset in the block's
 * table (the block is being loaded); with replay, apply each record to the
 * store's index. Damaged stretches are skipped by resynchronising on the
 * next valid record header. *valid_end gets the offset (relative to buf)
 * after the last whole record: anything after it is a torn tail.
 */
int jsi_ms_walk(jsi_ms *ms, jsi_blk *b, const uint8_t *buf, uint64_t base,
                size_t len, int index, int replay, size_t *valid_end) {
    size_t off = 0;
    if (base == 0) {
        if (jsi_blkhdr_check(buf, len, b->no) != 0 && replay)
            ms->lost_bytes += JSI_MIN(len, (size_t)JSI_BLK_HDR_LEN);
        off = JSI_MIN(len, (size_t)JSI_BLK_HDR_LEN);
    }
    *valid_end = off;
    while (off < len) {
        jsi_rechdr h = {0};
        int r = jsi_rec_parse_hdr(buf + off, len - off, &h);
        if (r == 0)
            break; /* torn: a record cut short by a crash */
        if (r < 0) {
            size_t next = jsi_rec_resync(buf, len, off + 1);
            if (next >= len) {
                /* Garbage up to the end: torn as well. A whole header that
                 * fails its checksum (the magic is there, or its length
                 * field spans exactly to the end) may instead be a damaged
                 * record that was acknowledged: the caller then skips its
                 * sequence. */
                b->tail_damaged = len - off >= JSI_REC_HDR_LEN &&
                                  (jsi_get32(buf + off) == JSI_REC_MAGIC ||
                                   jsi_get32(buf + off + 4) == len - off);
                break;
            }
            if (replay)
                ms->lost_bytes += next - off;
            off = next;
            continue;
        }
        if (h.type == JSI_REC_MSG || h.type == JSI_REC_ERASED) {
            /* A block replayed whole starts at its first message; or,
             * when that is a stray copy at or below the stream's last
             * sequence as the records before it left it (this block's
             * FRONT record among them), right after that last sequence.
             * Judged against the last sequence when the block started
             * instead, a stray below the block's FRONT record became its
             * start once the blocks before it were deleted, and a later
             * message fell out of reach (misplaced). */
            if (b->lo_open && replay) {
                if (h.seq > ms->last) {
                    b->lo = b->lo_open == 1 ? h.seq : ms->last + 1;
                    b->hi = b->lo - 1;
                    b->lo_open = 0;
                } else {
                    b->lo_open = 2; /* strays first */
                }
            }
            if (b->lo_open || misplaced(b, &h, base + off + h.len) ||
                (index && jsi_ms_offs_set(b, h.seq, (uint32_t)(base + off)))) {
                off += h.len; /* a sequence that cannot belong here */
                *valid_end = off;
                b->misplaced = 1;
                continue;
            }
            if (h.seq > b->hi || b->hi < b->lo) {
                if (b->hi < b->lo)
                    b->first_ts = h.ts;
                b->hi = h.seq;
                b->last_ts = h.ts;
            }
        }
        if (replay) {
            int rc = apply_record(ms, b, buf + off, &h);
            if (rc)
                return rc;
        }
        off += h.len;
        *valid_end = off;
    }
    return 0;
}

/* Build a loaded block's offset table (cache load). Damage found now, in
 * a block recovery already accepted, only makes those records unreadable
 * (JS_ECORRUPT); the block keeps its size. */
int jsi_ms_parse_block(jsi_ms *ms, jsi_blk *b) {
    size_t end;
    int rc = jsi_ms_walk(ms, b, b->buf, 0, (size_t)b->size, 1, 0, &end);
    b->walked |= rc == 0;
    return rc;
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

/*
 * Replay a block file from offset `from` (0: all of it) into the index.
 * The block is loaded whole while it is replayed, because a DEL or FRONT
 * record may name messages earlier in the same block; afterwards it is
 * ordinary cache. A checkpointed tail with nothing after `from` is not
 * read at all. Sets the block's size to the end of its last whole record
 * and notes a torn end.
 */
static int replay_region(jsi_ms *ms, jsi_blk *b, uint64_t from) {
    char *path = jsi_ms_blk_path(ms, b->no);
    js_vfs_file *f = NULL;
    uint64_t size = 0;
    uint8_t *buf = NULL;
    size_t end = 0;
    if (!path)
        return JS_ENOMEM;
    int rc = jsi_vfs_open(ms->cfg.vfs, path, JS_VFS_READ, &f);
    jsi_free(path);
    if (rc == 0)
        rc = f->io->size(f, &size);
    if (rc == 0 && (size < from || size > (uint64_t)SIZE_MAX / 2))
        rc = JS_ECORRUPT;
    if (rc == 0 && from && size == from) { /* nothing after the checkpoint */
        jsi_vfs_close(f);
        return 0;
    }
    if (rc == 0 && size && !(buf = jsi_malloc((size_t)size)))
        rc = JS_ENOMEM;
    if (rc == 0 && size)
        rc = jsi_vfs_read_exact(f, buf, (size_t)size, 0);
    jsi_vfs_close(f);
    if (rc) {
        jsi_free(buf);
        return rc;
    }
    if (b->buf) {
        jsi_free(b->buf);
        ms->cached--;
    }
    b->buf = buf;
    b->cap = b->size = size;
    b->noffs = 0;
    if (buf)
        ms->cached++;
    if (from == 0) {
        b->lo = ms->last + 1;
        b->hi = ms->last;
        b->lo_open = 1; /* the walk takes it from the first message */
    } else {
        rc = jsi_ms_walk(ms, b, buf, 0, (size_t)from, 1, 0, &end);
    }
    if (rc == 0) /* buf is NULL for an empty file */
        rc = jsi_ms_walk(ms, b, buf ? buf + from : buf, from,
                         (size_t)(size - from), 1, 1, &end);
    b->lo_open = 0;
    if (rc)
        return rc;
    if (b->hi < b->lo) { /* no message: it starts after everything so far */
        b->lo = ms->last + 1;
        b->hi = ms->last;
    }
    b->size = b->wr = b->sy = from + end;
    b->walked = 1;
    b->created = 1;
    b->torn = size > b->size ? size : 0;
    return 0;
}

/* Sequences (ms->last, upto] were given out but recovery found no record
 * of them: report them lost and never give them out again. A FRONT record
 * that moves nothing carries the new last sequence, so a rebuild without
 * the checkpoint finds the same gap (apply_front notes it as lost). */
static int skip_lost_tail(jsi_ms *ms, uint64_t upto) {
    if (upto <= ms->last)
        return 0;
    if (jsi_rs_add(&ms->lost, ms->last + 1, upto) != 0)
        return JS_ENOMEM;
    ms->lost_msgs += upto - ms->last;
    ms->last = upto;
    ms->pend_front = ms->first;
    return 0;
}

/* The cut-off end may have been the last message, damaged after it was
 * acknowledged: its sequence is lost, never given to another message. */
static int skip_damaged_tail_seq(jsi_ms *ms) {
    return skip_lost_tail(ms, ms->last + 1);
}

/* The last block: cut a torn end off the file so new records follow the
 * last whole one; forget a file too short to hold even its header, and
 * then finish the block before it, which is the last one now (its torn
 * end left in place, the next append there would leave stale bytes after
 * its record for the next open to read as records). It is loaded
 * (adopted as the tail) only when something is appended. */
static int finish_tail(jsi_ms *ms) {
    jsi_blk *t;
    char *path;
    js_vfs_file *f = NULL;
    int rc = 0;
    for (;;) {
        if (ms->nblks == 0)
            return 0;
        t = ms->blks[ms->nblks - 1];
        if (!(path = jsi_ms_blk_path(ms, t->no)))
            return JS_ENOMEM;
        if (t->size >= JSI_BLK_HDR_LEN || t->hi >= t->lo)
            break;
        /* Created by a crash before its header was whole: no records. */
        rc = ms->cfg.vfs->remove(ms->cfg.vfs, path);
        jsi_free(path);
        if (t->buf)
            ms->cached--;
        jsi_ms_blk_free(t);
        ms->nblks--;
        if (rc && rc != JS_ENOTFOUND)
            return rc;
    }
    if (t->torn > t->size) {
        rc = jsi_vfs_open(ms->cfg.vfs, path, JS_VFS_READ | JS_VFS_WRITE, &f);
        if (rc == 0)
            rc = f->io->truncate(f, t->size);
        if (rc == 0)
            rc = f->io->sync(f);
        jsi_vfs_close(f);
        if (rc)
            rc = JSI_ERR(rc, 0, "truncating the torn end of %s", path);
        t->torn = 0;
        if (rc == 0 && t->tail_damaged)
            rc = skip_damaged_tail_seq(ms);
    }
    jsi_free(path);
    return rc;
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
    b->walked = 1;
    ms->apos += JSI_BLK_HDR_LEN;
    ms->tail_adopted = 1;
    if (ms->first > 1)
        ms->pend_front = ms->first;
    return jsi_ms_commit(ms, 1);
}

/* No block is left to recover from. Sequences a checkpoint vouched for
 * are lost, and new ones start after them, never reusing one. */
static int init_after_loss(jsi_ms *ms, uint64_t first_seq) {
    uint64_t from = ms->ckpt_first, to = ms->ckpt_last;
    if (to && to >= from && to >= first_seq) {
        if (jsi_rs_add(&ms->lost, from, to) != 0)
            return JS_ENOMEM;
        ms->lost_msgs = jsi_rs_total(&ms->lost);
        first_seq = to + 1;
    }
    ms->lost_unlogged = ms->lost.n || ms->lost_bytes;
    return init_empty(ms, first_seq);
}

/* Full rebuild: replay every block file in order. */
static int rebuild(jsi_ms *ms, const blk_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        jsi_blk *b = jsi_ms_blk_new(ms, l->no[i], ms->last + 1, 0);
        if (!b || jsi_ms_blks_append(ms, b) != 0) {
            jsi_ms_blk_free(b);
            return JS_ENOMEM;
        }
        int rc = replay_region(ms, b, 0);
        if (rc)
            return rc;
        jsi_ms_cache_trim(ms, NULL); /* memory: a few blocks, not all */
    }
    return 0;
}

/* Replay what was written after a checkpoint: the rest of its tail block
 * and any newer block. The next close writes a new checkpoint if there was
 * anything. */
static int replay_after_ckpt(jsi_ms *ms, const blk_list *l, uint64_t from_blk,
                             uint64_t from_off) {
    int rc = 0;
    jsi_blk *t = ms->blks[ms->nblks - 1];
    if (t->no != from_blk)
        return JS_ECORRUPT;
    rc = replay_region(ms, t, from_off);
    ms->since_ckpt = rc == 0 && t->size > from_off;
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        if (l->no[i] <= from_blk)
            continue;
        jsi_blk *b = jsi_ms_blk_new(ms, l->no[i], ms->last + 1, 0);
        if (!b || jsi_ms_blks_append(ms, b) != 0) {
            jsi_ms_blk_free(b);
            return JS_ENOMEM;
        }
        rc = replay_region(ms, b, 0);
        ms->since_ckpt = 1;
        jsi_ms_cache_trim(ms, NULL);
    }
    return rc;
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
    if (l.n)
        qsort(l.no, l.n, sizeof *l.no, cmp_u64);
    ms->next_blkno = l.n ? l.no[l.n - 1] + 1 : 1;
    ms->first = 1;
    ms->last = 0;
    if (l.n == 0) {
        /* Only a checkpoint can say whether there ever were blocks. */
        uint64_t b = 0, o = 0;
        jsi_free(l.no);
        rc = jsi_ckpt_load(ms, NULL, 0, &b, &o);
        if (rc == 0 || rc == JS_ECORRUPT || rc == JS_ENOTFOUND)
            rc = jsi_ms_reset_index(ms);
        return rc ? rc : init_after_loss(ms, first_seq);
    }
    uint64_t from_blk = 0, from_off = 0;
    int rebuilt = 0;
    rc = jsi_ckpt_load(ms, &l.no[0], l.n, &from_blk, &from_off);
    /* A checkpoint older than the newest files must not reuse numbers. */
    if (ms->next_blkno <= l.no[l.n - 1])
        ms->next_blkno = l.no[l.n - 1] + 1;
    /* What the checkpoint holds lost was reported by an earlier open. */
    for (size_t i = 0; rc == 0 && i < ms->lost.n; i++)
        rc = jsi_rs_add(&ms->lost_known, ms->lost.r[i].lo, ms->lost.r[i].hi);
    ms->lost_known_bytes = ms->lost_bytes;
    if (rc == 0)
        rc = replay_after_ckpt(ms, &l, from_blk, from_off);
    if (rc == JS_ECORRUPT || rc == JS_ENOTFOUND) {
        /* No usable checkpoint: replay every block. */
        rc = jsi_ms_reset_index(ms);
        rebuilt = 1;
        if (rc == 0)
            rc = rebuild(ms, &l);
    }
    jsi_free(l.no);
    if (rc == 0 && ms->nblks == 0)
        return init_after_loss(ms, first_seq);
    if (rc == 0) {
        ms->lost_msgs = jsi_rs_total(&ms->lost);
        /* Removals found during replay are already on disk. */
        jsi_rs_clear(&ms->pend_del);
        ms->pend_front = 0;
        rc = finish_tail(ms);
    }
    if (rc == 0 && ms->nblks == 0)
        return init_after_loss(ms, first_seq);
    /* A checkpoint the files proved stale still says which sequences had
     * been durably given out: the records behind the last one found (a
     * truncated or deleted tail block) are lost, never given out again. */
    if (rc == 0 && rebuilt)
        rc = skip_lost_tail(ms, ms->ckpt_last);
    /* Losses no LOST record holds yet are logged before the open returns,
     * so what it reports outlives the blocks that show it. */
    if (rc == 0 && (!rs_subset(&ms->lost, &ms->lost_known) ||
                    ms->lost_bytes > ms->lost_known_bytes))
        ms->lost_unlogged = 1;
    jsi_rs_free(&ms->lost_known);
    ms->lost_known_bytes = ms->lost_front_done = 0;
    /* jsi_ms_drop_dead_blocks() wants a FRONT record for the first
     * sequence logged first. Replay may have moved it past the last one
     * on disk (over lost or stray records), using records in the very
     * blocks about to go: without a FRONT, a rebuild after they are
     * unlinked would bring later messages back. */
    if (rc == 0 && ms->nblks > 1 && ms->blks[0]->hi < ms->first &&
        ms->blks[0]->msgs == 0)
        ms->pend_front = ms->first;
    if (rc == 0)
        rc = jsi_ms_drop_dead_blocks(ms);
    /* After a full rebuild, with dead files to unlink, or with a skipped
     * sequence to log, write and checkpoint now so the next open is fast. */
    if (rc == 0 && (rebuilt || ms->ndead || ms->pend_del.n ||
                    ms->pend_front || ms->lost_unlogged)) {
        rc = jsi_ms_commit(ms, 1);
        if (rc == 0)
            rc = jsi_ms_checkpoint(ms);
    }
    return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "recovering %s", ms->dir) : rc;
}

/* Forget everything a failed checkpoint load may have left. */
int jsi_ms_reset_index(jsi_ms *ms) {
    for (size_t i = 0; i < ms->nblks; i++)
        jsi_ms_blk_free(ms->blks[i]);
    ms->nblks = 0;
    ms->cached = 0;
    jsi_rs_clear(&ms->deleted);
    jsi_rs_clear(&ms->lost);
    jsi_rs_clear(&ms->lost_known);
    ms->lost_known_bytes = 0;
    ms->lost_front_done = 0;
    ms->lost_unlogged = 0;
    int rc = jsi_ms_subj_init(ms);
    ms->next_sid = 1;
    jsi_ms_fcache_free(ms);
    ms->first = 1;
    ms->last = 0;
    ms->msgs = ms->bytes = 0;
    ms->lost_bytes = 0;
    ms->last_ts = 0;
    return rc;
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
    int rc = jsi_ms_subj_init(ms);
    ms->next_sid = 1;
    ms->block_size = cfg->block_size ? cfg->block_size : JSI_DEFAULT_BLOCK_SIZE;
    if (ms->block_size < JSI_MIN_BLOCK_SIZE)
        ms->block_size = JSI_MIN_BLOCK_SIZE;
    ms->last_sync = jsi_monotonic_ns();
    if (!ms->dir || rc != 0) {
        jsi_ms_free(ms);
        return JSI_ERR(JS_ENOMEM, 0, "opening %s", cfg->dir);
    }
    pthread_cond_init(&ms->cond, NULL);
    rc = jsi_ms_recover(ms, first_seq);
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
    jsi_rs_free(&ms->lost_known);
    jsi_rs_free(&ms->pend_del);
    jsi_ms_subj_free(ms);
    jsi_ms_fcache_free(ms);
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
        /* Nothing logged since the last checkpoint: it is still exact. */
        if (rc == 0 && (ms->since_ckpt || ms->ndead))
            rc = jsi_ms_checkpoint(ms);
    }
    /* Wait for any I/O still running in another thread. */
    while (ms->flushing)
        pthread_cond_wait(&ms->cond, ms->mu);
    jsi_ms_free(ms);
    return rc;
}
