/*
 * fuzz_msgstore.c - a stream's message store opened from a directory of
 * mutated files: block files and the index checkpoint go through recovery
 * (msgstore_recover.c, checkpoint.c), then a script of store operations
 * runs over the result, with reopens between them.
 *
 * Input: an image (fuzz_util.h) of the stream directory: sections named
 * like 0000000000000001.blk and index, and "!ops", the script. Mode bit 0
 * fixes every checksum; bit 1 deletes the checkpoint before the first
 * open, so the same blocks are also rebuilt from scratch.
 *
 * Checked: no crash, leak or undefined behaviour; and after a clean close
 * a reopen, from the checkpoint and from the blocks alone, finds the same
 * last sequence, no lower first sequence, no message that was not there
 * before, and the same lost ranges. That holds only
 * if the first open found no checkpoint: a mutated one with fixed checksums
 * can describe other blocks than the ones beside it, which a real store
 * never sees (the checkpoint is written from the index of those blocks).
 */
#include <inttypes.h>
#include <pthread.h>
#include <string.h>

#include "fuzz_util.h"
#include "msgstore.h"
#include "rangeset.h"
#include "util.h"
#include "vfs.h"

#define DIR_ "/s"

typedef struct ctx {
    js_vfs *vfs;
    pthread_mutex_t mu;
    jsi_ms *ms;
    int honest; /* no checkpoint at the first open (see below) */
} ctx;

static const char *const subjects[] = {"a", "a.b", "a.c", "b.x.y", "kv.k1"};
static const char *const filters[] = {NULL, "a", "a.*", ">", "b.>", "*.x.*",
                                      "kv.k1", "zz"};

static int ms_open(ctx *c) {
    jsi_ms_cfg cfg = {c->vfs, DIR_, 4096, JS_SYNC_ALWAYS, 0,
                      fuzz_clock, NULL, &c->mu};
    c->ms = NULL;
    return jsi_ms_open(&cfg, 1, &c->ms);
}

/* Every live message has one subject: the subjects' counts add up. Only
 * for honest inputs (below): a checkpoint is trusted as written. */
static void check_index(ctx *c) {
    jsi_ms_state st;
    jsi_sidx_entry *e;
    size_t pos = 0;
    uint64_t total = 0;
    if (!c->honest)
        return;
    jsi_ms_state_get(c->ms, &st);
    while ((e = jsi_sidx_next(jsi_ms_sidx(c->ms), &pos)) != NULL) {
        total += e->count;
        fuzz_trace("  subject %s: %" PRIu64 " first %" PRIu64 " last %"
                   PRIu64 "\n", e->subj, e->count, e->first, e->last);
    }
    if (total != st.msgs) {
        fuzz_trace("subject counts %" PRIu64 ", messages %" PRIu64 "\n",
                   total, st.msgs);
        fuzz_fail("the subjects' counts do not add up to the messages");
    }
}

static void state(ctx *c, jsi_ms_state *st) {
    memset(st, 0, sizeof *st);
    if (c->ms)
        jsi_ms_state_get(c->ms, st);
}

/* What a reopen is compared with: the lost ranges, and the sequences
 * of the messages that could be read. */
typedef struct before {
    jsi_rangeset lost, live;
    int ok; /* 0: out of memory, nothing compared */
} before;

static void before_take(ctx *c, before *w) {
    size_t n;
    const jsi_range *r = jsi_ms_lost(c->ms, &n);
    jsi_rec m;
    memset(w, 0, sizeof *w);
    w->ok = 1;
    for (size_t i = 0; w->ok && i < n; i++)
        w->ok = jsi_rs_add(&w->lost, r[i].lo, r[i].hi) == 0;
    uint64_t s = jsi_ms_first_seq(c->ms);
    for (int i = 0; w->ok && i < 100000; i++) {
        int rc = jsi_ms_next(c->ms, NULL, s, &m);
        if (rc == JS_ECORRUPT) {
            s++;
            continue;
        }
        if (rc != 0)
            break;
        w->ok = jsi_rs_add(&w->live, m.seq, m.seq) == 0;
        s = m.seq + 1;
    }
}

static void before_free(before *w) {
    jsi_rs_free(&w->lost);
    jsi_rs_free(&w->live);
}

/* A reopen never forgets a reported loss nor makes one up: each range
 * reported before is reported after, and a sequence reported lost after
 * was lost before. */
static void check_lost(ctx *c, const before *w) {
    size_t n;
    const jsi_range *r = jsi_ms_lost(c->ms, &n);
    jsi_rangeset now = {(jsi_range *)r, n, n}; /* a view, read only */
    int bad = 0;
    for (size_t i = 0; i < n || i < w->lost.n; i++)
        fuzz_trace("  lost %zu: %" PRIu64 "..%" PRIu64 " (was %" PRIu64
                   "..%" PRIu64 ")\n", i, i < n ? r[i].lo : 0,
                   i < n ? r[i].hi : 0, i < w->lost.n ? w->lost.r[i].lo : 0,
                   i < w->lost.n ? w->lost.r[i].hi : 0);
    for (size_t i = 0; i < w->lost.n; i++)
        bad |= jsi_rs_count_in(&now, w->lost.r[i].lo, w->lost.r[i].hi) !=
               w->lost.r[i].hi - w->lost.r[i].lo + 1;
    for (size_t i = 0; i < n; i++)
        bad |= jsi_rs_count_in(&w->lost, r[i].lo, r[i].hi) !=
               r[i].hi - r[i].lo + 1;
    if (bad)
        fuzz_fail("a clean close and reopen changed the lost ranges");
}

/* Close cleanly, then reopen: the same messages must be there. */
static void reopen(ctx *c, int drop_ckpt) {
    jsi_ms_state a, b;
    before w;
    state(c, &a);
    before_take(c, &w);
    int clean = jsi_ms_close(c->ms) == 0;
    c->ms = NULL;
    if (drop_ckpt)
        c->vfs->remove(c->vfs, DIR_ "/index");
    if (ms_open(c) != 0) {
        before_free(&w);
        return;
    }
    state(c, &b);
    /* Damage found after the first open may lose messages, never add
     * any or move the sequence back. */
    fuzz_trace("reopen%s: first %" PRIu64 "->%" PRIu64 " last %" PRIu64
               "->%" PRIu64 " msgs %" PRIu64 "->%" PRIu64 "\n",
               drop_ckpt ? " without checkpoint" : "", a.first, b.first, a.last,
               b.last, a.msgs, b.msgs);
    if (clean && c->honest && (b.last != a.last || b.first < a.first || b.msgs > a.msgs))
        fuzz_fail("a clean close and reopen changed the stream");
    if (clean && c->honest && w.ok)
        check_lost(c, &w);
    before_free(&w);
}

static void read_all(ctx *c, const char *filter) {
    jsi_rec r;
    uint64_t seq = jsi_ms_first_seq(c->ms);
    for (int i = 0; i < 64; i++) {
        int rc = jsi_ms_next(c->ms, filter, seq, &r);
        if (rc == JS_ECORRUPT) {
            seq++;
            continue;
        }
        if (rc != 0)
            return;
        if (r.seq < seq)
            fuzz_fail("next returned an earlier sequence");
        seq = r.seq + 1;
    }
}

static void walk_subjects(ctx *c, const char *filter) {
    char after[JS_MAX_SUBJECT_LEN + 1];
    size_t alen = 0;
    for (int i = 0; i < 64; i++) {
        jsi_sidx_entry *e = jsi_ms_subject_next(c->ms, filter,
                                                i ? after : NULL, alen);
        if (!e)
            return;
        if (jsi_ms_subject_fix(c->ms, e) != 0)
            return;
        alen = e->len;
        memcpy(after, e->subj, alen + 1);
    }
}

static void op(ctx *c, fuzz_ops *o) {
    uint8_t k = fuzz_u8(o);
    const char *subj = subjects[fuzz_u8(o) % 5];
    const char *f = filters[fuzz_u8(o) % 8];
    uint64_t seq = jsi_ms_first_seq(c->ms) + fuzz_u8(o) - 4;
    uint64_t got, n;
    uint8_t payload[512] = {0};
    jsi_rec r;
    if (fuzz_tracing()) {
        jsi_ms_state st;
        jsi_ms_state_get(c->ms, &st);
        fuzz_trace("op %d (%02x) %s %s seq %" PRIu64 " | first %" PRIu64
                   " last %" PRIu64 " msgs %" PRIu64 "\n", k % 14, k, subj,
                   f ? f : "NULL", seq, st.first, st.last, st.msgs);
    }
    switch (k % 14) {
    case 0:
    case 1:
        n = fuzz_u8(o) + (k & 0x80 ? 256u : 0u);
        jsi_ms_append(c->ms, subj, strlen(subj), NULL, 0, payload,
                      (size_t)n, fuzz_clock(NULL), k & 0x40, &got);
        break;
    case 2: jsi_ms_remove(c->ms, seq, k & 0x80); break;
    case 3: jsi_ms_remove_first(c->ms); break;
    case 4: jsi_ms_purge(c->ms, f, k & 0x80 ? 0 : seq, k & 0x40 ? 2 : 0, &n);
        break;
    case 5: jsi_ms_load(c->ms, seq, &r); break;
    case 6: read_all(c, f); break;
    case 7: jsi_ms_last(c->ms, f ? f : ">", &r); break;
    case 8: {
        const char *fl[2] = {f ? f : ">", "b.>"};
        jsi_ms_count(c->ms, fl, f && f[0] == 'a' ? 2 : 1, seq, &n);
        jsi_ms_next_multi(c->ms, fl, f && f[0] == 'a' ? 2 : 1, seq, &r);
        break;
    }
    case 9: walk_subjects(c, f); break;
    case 10: jsi_ms_commit(c->ms, k & 0x80); break;
    case 11: if (jsi_ms_commit(c->ms, 1) == 0) jsi_ms_checkpoint(c->ms);
        break;
    case 12: reopen(c, k & 0x80); break;
    default:
        fuzz_clock_advance((int64_t)fuzz_u16(o) * 1000000);
        (void)jsi_ms_seq_from_time(c->ms, fuzz_clock(NULL) - 5000000);
        (void)jsi_ms_next_with_ids(c->ms, seq);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_image im;
    ctx c = {0};
    fuzz_image_parse(data, size, &im);
    if (im.mode & FUZZ_MODE_FIX_CRC)
        fuzz_image_fix(&im);
    fuzz_clock_set(INT64_C(1700000000) * 1000000000);
    c.vfs = jsi_vfs_mem_new();
    pthread_mutex_init(&c.mu, NULL);
    fuzz_image_write(&im, c.vfs, DIR_);
    if (im.mode & 2)
        c.vfs->remove(c.vfs, DIR_ "/index");
    c.honest = jsi_vfs_exists(c.vfs, DIR_ "/index") == 0;
    pthread_mutex_lock(&c.mu);
    if (ms_open(&c) == 0) {
        fuzz_file *ops = fuzz_image_get(&im, "!ops");
        fuzz_ops o = {ops ? ops->data : NULL, ops ? ops->len : 0, 0};
        check_index(&c);
        for (int i = 0; i < 200 && c.ms && fuzz_ops_more(&o); i++) {
            op(&c, &o);
            if (c.ms)
                check_index(&c);
        }
        if (c.ms)
            reopen(&c, 0);
        if (c.ms)
            reopen(&c, 1);
        jsi_ms_close(c.ms);
    }
    pthread_mutex_unlock(&c.mu);
    pthread_mutex_destroy(&c.mu);
    jsi_vfs_mem_free(c.vfs);
    fuzz_image_free(&im);
    return 0;
}
