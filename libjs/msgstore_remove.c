/*
 * msgstore_remove.c - removing messages: single deletes, secure erase, the
 * oldest message (limits), and purges. Removals change the in-memory index
 * at once and are logged (DEL / FRONT records) by the next commit.
 */
#include <inttypes.h>

#include "checkpoint.h"
#include "msgstore_int.h"
#include "vfs.h"

static void subject_unlink(jsi_ms *ms, jsi_sidx_entry *e, uint64_t seq) {
    if (!e)
        return;
    if (e->count <= 1) {
        jsi_ms_subj_remove(ms, e);
        return;
    }
    e->count--;
    if (seq == e->first) {
        e->first = seq + 1;
        e->first_stale |= JSI_SUBJ_FIRST_STALE;
    } else if (seq == e->last) {
        e->first_stale |= JSI_SUBJ_LAST_STALE;
    }
    /* One message left: whichever end is exact gives the other for free,
     * so a key with history 1 never needs a scan for its first. */
    if (e->count == 1 && !(e->first_stale & JSI_SUBJ_LAST_STALE))
        e->first = e->last, e->first_stale = 0;
    else if (e->count == 1 && !(e->first_stale & JSI_SUBJ_FIRST_STALE))
        e->last = e->first, e->first_stale = 0;
}

/* Move first past removed and lost sequences after its message went.
 * The lost ones stay reported (ms->lost keeps them below first). */
void jsi_ms_advance_first(jsi_ms *ms) {
    if (ms->msgs == 0) {
        ms->first = ms->last + 1;
    } else {
        uint64_t s = ms->first;
        for (;;) {
            uint64_t g = jsi_rs_next_gap(&ms->deleted, s);
            uint64_t l = jsi_rs_next_gap(&ms->lost, g);
            if (l == g) {
                s = g;
                break;
            }
            s = l;
        }
        ms->first = s;
    }
    jsi_rs_remove_below(&ms->deleted, ms->first);
    ms->pend_front = ms->first;
}

/* Account for removing live message seq whose record is h/rec. */
int jsi_ms_remove_seq(jsi_ms *ms, uint64_t seq, const jsi_rechdr *h,
                      const uint8_t *rec) {
    const char *subj = (const char *)rec + JSI_REC_HDR_LEN;
    uint64_t size = jsi_ms_msg_size(h->subj_len, h->hdr_len,
                                    h->len - JSI_REC_HDR_LEN - h->subj_len -
                                        h->hdr_len);
    if (seq != ms->first) {
        if (jsi_rs_add(&ms->deleted, seq, seq) != 0 ||
            jsi_rs_add(&ms->pend_del, seq, seq) != 0)
            return JSI_ERR(JS_ENOMEM, 0, "removing %" PRIu64, seq);
    }
    int i = jsi_ms_blk_find(ms, seq);
    jsi_sidx_entry *e = jsi_sidx_get(ms->sidx, subj, h->subj_len);
    if (i >= 0) {
        jsi_blk *b = ms->blks[i];
        b->msgs--;
        b->bytes -= size;
        if (e)
            jsi_ms_sum_sub(b, e);
    }
    subject_unlink(ms, e, seq);
    ms->msgs--;
    ms->bytes -= size;
    if (seq == ms->first) {
        ms->first = seq + 1;
        jsi_ms_advance_first(ms);
    }
    if (ms->obs)
        ms->obs(ms->obs_ctx, seq, seq, subj, h->subj_len);
    return 0;
}

/* Overwrite a message's record with an ERASED record of the same length,
 * in memory and on storage, then sync. Holds the I/O token throughout. */
static int erase_record(jsi_ms *ms, uint64_t seq) {
    int i = jsi_ms_blk_find(ms, seq);
    if (i < 0)
        return JS_EMSG_NOT_FOUND;
    jsi_blk *b = ms->blks[i];
    int rc = jsi_ms_flush(ms, 0); /* so the file has every byte */
    if (rc)
        return rc;
    jsi_ms_own_io(ms);
    /* The cache may have dropped b's buffer while we waited for the token
     * (b itself stays: ms->erasing keeps dead blocks from being dropped).
     * Holding the token, nothing evicts it now. */
    uint64_t k = seq - b->lo;
    rc = jsi_ms_blk_load(ms, b);
    if (rc == 0 && (k >= b->noffs || b->offs[k] == JSI_NO_OFF))
        rc = JS_ECORRUPT;
    if (rc) {
        jsi_ms_release_io(ms);
        return rc;
    }
    uint32_t off = b->offs[k];
    uint8_t *p = b->buf + off;
    jsi_rechdr h;
    if (jsi_rec_parse_hdr(p, (size_t)(b->size - off), &h) != 1) {
        jsi_ms_release_io(ms);
        return JS_ECORRUPT;
    }
    size_t body = h.len - JSI_REC_HDR_LEN;
    /* The bytes to write go from a private copy: once the lock is released
     * the block's buffer may move (a publish adopting it as the tail). */
    uint8_t *copy = jsi_malloc(h.len);
    if (!copy) {
        jsi_ms_release_io(ms);
        return JSI_ERR(JS_ENOMEM, 0, "erasing %" PRIu64, seq);
    }
    memset(p + JSI_REC_HDR_LEN, 0, body);
    jsi_rec_encode_hdr(p, h.len, seq, 0, JSI_REC_ERASED, 0, 0, 0,
                       jsi_crc32c(0, p + JSI_REC_HDR_LEN, body));
    memcpy(copy, p, h.len);
    uint64_t wr = b->wr;
    /* A checkpoint counts the message as live, and replaying the DEL
     * record against an erased record cannot uncount it: retire the
     * checkpoint first (the next open rebuilds; the next close writes a
     * new one). */
    int drop_ckpt = ms->ckpt_on_disk;
    ms->ckpt_on_disk = 0;
    ms->since_ckpt++;
    pthread_mutex_unlock(ms->mu);
    if (drop_ckpt)
        rc = jsi_ckpt_remove(ms);
    js_vfs_file *f = b->f;
    if (rc == 0 && !f) {
        char *path = jsi_ms_blk_path(ms, b->no);
        rc = path ? jsi_vfs_open(ms->cfg.vfs, path, JS_VFS_READ | JS_VFS_WRITE,
                                 &f)
                  : JS_ENOMEM;
        jsi_free(path);
    }
    if (rc == 0 && wr > off)
        rc = f->io->write(f, copy, (size_t)JSI_MIN((uint64_t)h.len, wr - off),
                          off);
    if (rc == 0)
        rc = f->io->sync(f);
    if (f && f != b->f)
        jsi_vfs_close(f);
    jsi_free(copy);
    pthread_mutex_lock(ms->mu);
    if (rc)
        ms->failed = rc;
    jsi_ms_release_io(ms);
    return rc ? JSI_ERR(rc, 0, "erasing %" PRIu64 ": %s", seq,
                        js_strerror(rc))
              : 0;
}

int jsi_ms_remove(jsi_ms *ms, uint64_t seq, int erase) {
    const uint8_t *p;
    jsi_rechdr h;
    int rc = jsi_ms_refuse(ms);
    if (rc == 0)
        rc = jsi_ms_rec_at(ms, seq, &p, &h);
    if (rc == JS_ECORRUPT) /* unreadable: nothing the caller can remove */
        rc = JS_EMSG_NOT_FOUND;
    if (rc)
        return rc == JS_EMSG_NOT_FOUND
                   ? JSI_ERR(rc, 10037, "no message found: %" PRIu64, seq)
                   : rc;
    rc = jsi_ms_remove_seq(ms, seq, &h, p);
    if (rc == 0 && erase) {
        ms->erasing++;
        rc = erase_record(ms, seq);
        ms->erasing--;
    }
    return rc;
}

/* A lost sequence at the front was never counted as a message: step over
 * it (it stays reported). */
static void skip_lost_front(jsi_ms *ms) {
    while (ms->msgs && jsi_rs_contains(&ms->lost, ms->first)) {
        ms->first++;
        jsi_ms_advance_first(ms);
    }
}

int jsi_ms_remove_first(jsi_ms *ms) {
    if (ms->msgs == 0)
        return JS_EMSG_NOT_FOUND;
    const uint8_t *p;
    jsi_rechdr h;
    skip_lost_front(ms);
    int rc = jsi_ms_rec_at(ms, ms->first, &p, &h);
    if (rc == JS_ECORRUPT) {
        /* Damaged where a checkpoint vouched for it: its subject and size
         * are unknown, but a limit or a purge must still get past it (else
         * purged messages would come back). Counted out as a message; its
         * subject's count keeps it until that subject is next fixed. */
        uint64_t seq = ms->first;
        int i = jsi_ms_blk_find(ms, seq);
        if (i >= 0 && ms->blks[i]->msgs)
            ms->blks[i]->msgs--;
        ms->msgs--;
        ms->first++;
        jsi_ms_advance_first(ms);
        if (ms->obs)
            ms->obs(ms->obs_ctx, seq, seq, NULL, 0);
        return 0;
    }
    if (rc)
        return rc == JS_EMSG_NOT_FOUND
                   ? JSI_ERR(JS_ECORRUPT, 0, "first message %" PRIu64
                             " of %s is missing", ms->first, ms->dir)
                   : rc;
    return jsi_ms_remove_seq(ms, ms->first, &h, p);
}

static int purge_front(jsi_ms *ms, uint64_t upto, uint64_t *purged) {
    if (upto > ms->last && ms->sidx) {
        if (jsi_ms_subj_init(ms) != 0)
            return JSI_ERR(JS_ENOMEM, 0, "purge");
        uint64_t lo = ms->first, hi = ms->last, had = ms->msgs;
        jsi_ms_sum_clear(ms);
        jsi_ms_fcache_reset(ms);
        *purged += ms->msgs;
        ms->msgs = 0;
        ms->bytes = 0;
        for (size_t i = 0; i < ms->nblks; i++) {
            ms->blks[i]->msgs = 0;
            ms->blks[i]->bytes = 0;
        }
        ms->first = ms->last + 1;
        jsi_ms_advance_first(ms);
        if (had && ms->obs)
            ms->obs(ms->obs_ctx, lo, hi, NULL, 0);
        return 0;
    }
    for (;;) {
        skip_lost_front(ms);
        if (!ms->msgs || ms->first >= upto)
            break;
        int rc = jsi_ms_remove_first(ms);
        if (rc)
            return rc;
        (*purged)++;
    }
    return 0;
}

/* Count the messages matching filter (from the subject index). */
static uint64_t matching_total(jsi_ms *ms, const char *filter) {
    size_t flen = strlen(filter), pos = 0;
    uint64_t n = 0;
    jsi_sidx_entry *e;
    if (!jsi_subject_has_wildcard(filter, flen)) {
        e = jsi_sidx_get(ms->sidx, filter, flen);
        return e ? e->count : 0;
    }
    while ((e = jsi_sidx_next(ms->sidx, &pos)) != NULL)
        if (jsi_subject_match(filter, flen, e->subj, e->len))
            n += e->count;
    return n;
}

int jsi_ms_purge(jsi_ms *ms, const char *filter, uint64_t seq, uint64_t keep,
                 uint64_t *purged) {
    uint64_t n = 0;
    int rc = jsi_ms_refuse(ms);
    if (rc)
        return rc;
    int all = !filter || !*filter || strcmp(filter, ">") == 0;
    if (all) {
        uint64_t upto = ms->last + 1;
        if (seq)
            upto = JSI_MIN(seq, upto);
        if (keep) {
            if (keep >= ms->msgs)
                upto = ms->first;
            else
                for (uint64_t drop = ms->msgs - keep; drop && rc == 0; drop--, n++)
                    rc = jsi_ms_remove_first(ms);
            *purged = n;
            return rc;
        }
        rc = purge_front(ms, upto, &n);
        *purged = n;
        return rc;
    }
    uint64_t limit = seq ? seq : UINT64_MAX;
    uint64_t drop = UINT64_MAX;
    if (keep) {
        uint64_t total = matching_total(ms, filter);
        drop = total > keep ? total - keep : 0;
    }
    uint64_t s = ms->first;
    jsi_rec r;
    while (drop && (rc = jsi_ms_next(ms, filter, s, &r)) == 0 &&
           r.seq < limit) {
        s = r.seq + 1;
        rc = jsi_ms_remove(ms, r.seq, 0);
        if (rc)
            break;
        n++;
        drop--;
    }
    if (rc == JS_EMSG_NOT_FOUND)
        rc = 0;
    *purged = n;
    return rc;
}
