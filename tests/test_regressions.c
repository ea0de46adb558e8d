/*
 * test_regressions.c - bugs found by review in the message store's crash
 * recovery and I/O-token concurrency, each pinned by a test that failed
 * while the bug was there:
 *
 *  - a secure erase overwrites a record that an existing checkpoint already
 *    counts; replaying the DEL / FRONT records written after that
 *    checkpoint then finds an ERASED record and skips the removal, so the
 *    counts are wrong and a purge below the erased first message is undone
 *    (purged messages come back) after a crash;
 *  - under JS_SYNC_NONE, js_flush() and js_close() ("make every write
 *    durable") never sync a sealed block the cache has evicted: its data
 *    stays unsynced while the checkpoint written at close lists it;
 *  - an erase in the tail block left by an open writes from the block's
 *    buffer with the stream lock released; a concurrent publish adopts the
 *    tail and realloc()s that buffer under it (use after free);
 *  - a new block was sized for its header and the record that did not
 *    fit the old one, forgetting the FRONT record every block starts
 *    with: a message (or DEL record) within 80 bytes of the block size,
 *    or larger than a block, was written up to 48 bytes past the end of
 *    the buffer (heap overflow; 8 MiB messages with the default blocks).
 *
 * "Crash" here is a copy of the store directory taken while the store is
 * open, under JS_SYNC_ALWAYS (everything acknowledged is in the files),
 * then opened in place of the original.
 *
 * Then bugs the fuzz targets found (fuzz/; their inputs are in
 * fuzz/regress/<target>/), each reduced to a small test:
 *
 *  - a block holding a whole, checksummed record whose sequence cannot
 *    belong there (skipped as damage) was still adopted as the tail; once
 *    enough was appended after it, a rebuild took it for a message and
 *    dropped every newer one as out of order (fuzz_msgstore);
 *  - a stray copy of an earlier sequence later in a block took over that
 *    sequence's offset: reading it returned another message than the one
 *    the index counted, and removing it uncounted the wrong subject, until
 *    a per-subject limit met a subject whose count never went down and
 *    every open failed (fuzz_store, then fuzz_msgstore);
 *  - loading a block allocated the size its checkpoint claimed before
 *    looking at the file: a damaged checkpoint could ask for terabytes
 *    (fuzz_checkpoint);
 *  - an open whose replay moved the first sequence using records in
 *    blocks it then found dead unlinked them without logging a FRONT
 *    record, so the next rebuild brought removed messages back
 *    (fuzz_msgstore);
 *  - whether a record's sequence could belong in its block was judged
 *    against the block file's size: cutting a torn tail off made the next
 *    open drop a message the previous one had counted, and the stream's
 *    last sequence went back (fuzz_store);
 *  - the last message of any subject was looked for one sequence at a
 *    time from the stream's last, through every removed or lost one: a
 *    long gap made js_msg_get_last() run for ever (fuzz_msgstore);
 *  - after an open found a long lost stretch, a publish appended its
 *    message to the tail block where the next rebuild took it for a
 *    stray record: acknowledged, then gone (fuzz_store);
 *  - a stored consumer config without a durable name (checksum intact)
 *    made the open pass a NULL name to strdup() (fuzz_store);
 *  - a block replayed whole started at the first message in its file
 *    unless that was at or below the stream's last so far: a stray copy
 *    below its FRONT record was skipped while older blocks were there,
 *    but once they were deleted it became the block's start, and a
 *    message beyond what the records after it could reach was dropped
 *    as misplaced (fuzz_msgstore, by its check that a reopen keeps the
 *    lost ranges);
 *  - a sequence in a lost stretch that a DEL record had made a removed
 *    one came back as lost in a rebuild once the block holding that
 *    record was deleted (fuzz_msgstore, the same check);
 *  - a stray copy of a lost sequence, skipped by the open because older
 *    blocks' records put the last sequence past it, was taken for a
 *    message by a rebuild once those blocks were deleted (fuzz_msgstore,
 *    by its check that a clean reopen finds no message that was not
 *    there; the same failure before the lost ranges were kept);
 *  - a DEL record over the lost sequence at the front (a block cut short
 *    before the next one's FRONT record) made it a removed one without
 *    moving the first sequence past it: once the older block was
 *    deleted, a rebuild reported first sequence 1 where the index had 36
 *    (fuzz_msgstore, by its check that the first sequence never goes
 *    back);
 *  - an open that removed a last block file too short for its header
 *    left the torn end of the block before it, the last one now, in
 *    place: the next append there wrote over part of it, and the next
 *    open read what was left after the new record as records (here a
 *    message that was never published) (fuzz_msgstore, once an open
 *    logged its lost bytes there);
 *  - a block whose own FRONT record is damaged, read by the open after
 *    the blocks whose records told its stray copies of old sequences
 *    from its messages, was read differently by a rebuild once those
 *    blocks were deleted as dead: a message the index had was reported
 *    lost (fuzz_msgstore, by its check that a reopen keeps the lost
 *    ranges; the same failure before the lost ranges were kept).
 *
 * Then bugs the power-cut battery (tests/test_powercut.c) found:
 *
 *  - js_kv_purge_deletes() whose sync failed had already removed the
 *    markers in memory; a retry found nothing left to remove, wrote
 *    nothing and returned 0, acknowledging removals that a power cut then
 *    undid (the store was fail-stop: every change must fail).
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>

#include "consumer_config.h"
#include "jetstream.h"
#include "msgstore_int.h"
#include "record.h"
#include "simfs.h"
#include "stream.h"
#include "util.h"
#include "vfs.h"
#include "testutil_fs.h"
#include "runner.h"

static char *base_dir; /* removed by main() */
static int store_no;

static char *new_store_dir(const char *tag) {
    return tu_path("%s/%s%d", base_dir, tag, store_no++);
}

static void open_store(const char *dir, const char *vfs, int sync,
                       uint32_t block_size, js_store **st, js_stream **s) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.vfs = vfs;
    o.sync = sync;
    o.block_size = block_size;
    int rc = js_open(dir, &o, st);
    ck_assert_msg(rc == 0, "js_open(%s): %s (%s)", dir, js_strerror(rc),
                  js_errmsg());
    rc = js_stream_lookup(*st, "R", s);
    if (rc == JS_ESTREAM_NOT_FOUND) {
        const char *subs[] = {"r.>"};
        js_stream_config c = JS_STREAM_CONFIG_INIT;
        c.name = "R";
        c.subjects = subs;
        c.num_subjects = 1;
        rc = js_stream_add(*st, &c, s);
    }
    ck_assert_msg(rc == 0, "stream R: %s (%s)", js_strerror(rc), js_errmsg());
}

static void close_store(js_store *st, js_stream *s) {
    js_stream_release(s);
    int rc = js_close(st);
    ck_assert_msg(rc == 0, "js_close: %s (%s)", js_strerror(rc), js_errmsg());
}

static void pub_n(js_store *st, int n, size_t len) {
    static uint8_t data[4096];
    for (int i = 0; i < n; i++) {
        memset(data, 'a' + i % 26, len);
        int rc = js_publish(st, i % 2 ? "r.odd" : "r.even", NULL, 0, data,
                            len, NULL);
        ck_assert_msg(rc == 0, "publish %d: %s (%s)", i, js_strerror(rc),
                      js_errmsg());
    }
}

static js_stream_state get_state(js_stream *s) {
    struct js_stream_info *info = NULL;
    int rc = js_stream_info(s, &info);
    ck_assert_msg(rc == 0, "info: %s", js_strerror(rc));
    js_stream_state st = *info->state;
    js_stream_info_free(info);
    return st;
}

static int msg_exists(js_stream *s, uint64_t seq) {
    js_msg *m = NULL;
    int rc = js_msg_get(s, seq, &m);
    js_msg_free(m);
    ck_assert_msg(rc == 0 || rc == JS_EMSG_NOT_FOUND, "get %llu: %s",
                  (unsigned long long)seq, js_strerror(rc));
    return rc == 0;
}

/* Open a copy of a (possibly open) store as a crash would leave it. */
static void open_crash_copy(const char *dir, const char *copy, js_store **st,
                            js_stream **s) {
    ck_assert_int_eq(tu_copy_tree(dir, copy), 0);
    open_store(copy, NULL, JS_SYNC_ALWAYS, 0, st, s);
}

/* ---- erase after a checkpoint, then a crash ------------------------------ */

/*
 * Ten messages, a clean close (checkpoint covering all of them), reopen,
 * erase message 3, crash. The checkpoint still counts message 3; the DEL
 * record logged after it names 3, but replay finds the ERASED record there
 * and jsi_ms_remove() answers "not found", so the removal is dropped: the
 * reopened stream reports 10 messages although 9 can be read. A full
 * rebuild of the same files (no index) reports 9.
 */
START_TEST(erase_after_checkpoint_is_counted_as_removed_after_crash) {
    char *dir = new_store_dir("erase_ckpt");
    char *copy = tu_path("%s.crash", dir);
    js_store *st;
    js_stream *s;
    open_store(dir, NULL, JS_SYNC_ALWAYS, 0, &st, &s);
    pub_n(st, 10, 100);
    close_store(st, s);

    open_store(dir, NULL, JS_SYNC_ALWAYS, 0, &st, &s);
    ck_assert_int_eq(js_msg_erase(s, 3), 0);
    js_stream_state before = get_state(s);
    ck_assert_uint_eq(before.msgs, 9);
    ck_assert_uint_eq(before.num_deleted, 1);

    js_store *cst;
    js_stream *cs;
    open_crash_copy(dir, copy, &cst, &cs);
    js_stream_state after = get_state(cs);
    ck_assert_int_eq(msg_exists(cs, 3), 0);
    ck_assert_msg(after.msgs == before.msgs && after.bytes == before.bytes &&
                      after.num_deleted == before.num_deleted,
                  "after crash: msgs %llu bytes %llu deleted %llu, before: "
                  "msgs %llu bytes %llu deleted %llu",
                  (unsigned long long)after.msgs,
                  (unsigned long long)after.bytes,
                  (unsigned long long)after.num_deleted,
                  (unsigned long long)before.msgs,
                  (unsigned long long)before.bytes,
                  (unsigned long long)before.num_deleted);
    close_store(cst, cs);
    close_store(st, s);
    free(copy);
    free(dir);
}
END_TEST

/*
 * Erase the first message, then purge everything below 5 (messages 2..4),
 * both acknowledged under JS_SYNC_ALWAYS, then crash. Replaying the FRONT
 * records after the checkpoint calls remove_first(), which meets the
 * ERASED record of message 1, fails, and abandons the whole FRONT: the
 * purged messages 2, 3 and 4 are readable again after the crash.
 */
START_TEST(purge_below_an_erased_first_message_stays_purged_after_crash) {
    char *dir = new_store_dir("erase_front");
    char *copy = tu_path("%s.crash", dir);
    js_store *st;
    js_stream *s;
    open_store(dir, NULL, JS_SYNC_ALWAYS, 0, &st, &s);
    pub_n(st, 10, 100);
    close_store(st, s);

    open_store(dir, NULL, JS_SYNC_ALWAYS, 0, &st, &s);
    ck_assert_int_eq(js_msg_erase(s, 1), 0);
    js_purge_opts po = JS_PURGE_OPTS_INIT;
    uint64_t purged = 0;
    po.seq = 5;
    ck_assert_int_eq(js_stream_purge(s, &po, &purged), 0);
    ck_assert_uint_eq(purged, 3);
    js_stream_state before = get_state(s);
    ck_assert_uint_eq(before.msgs, 6);
    ck_assert_uint_eq(before.first_seq, 5);

    js_store *cst;
    js_stream *cs;
    open_crash_copy(dir, copy, &cst, &cs);
    js_stream_state after = get_state(cs);
    for (uint64_t q = 1; q < 5; q++)
        ck_assert_msg(!msg_exists(cs, q),
                      "message %llu, purged before the crash, is back",
                      (unsigned long long)q);
    ck_assert_uint_eq(after.msgs, before.msgs);
    ck_assert_uint_eq(after.first_seq, before.first_seq);
    close_store(cst, cs);
    close_store(st, s);
    free(copy);
    free(dir);
}
END_TEST

/* ---- "trackfs": posix that remembers, per block file, what is unsynced -- */

#define TRACK_MAX 256

typedef struct tfile {
    js_vfs_file base;
    js_vfs_file *inner;
    int slot; /* index in track[], -1 for files other than *.blk */
} tfile;

typedef struct track_ent {
    char path[512];
    long dirty;   /* bytes written since the file's last sync */
    int new_file; /* created, directory not synced since */
    int gone;     /* removed */
} track_ent;

static js_vfs *posix;
static js_vfs trackfs;
static js_vfs_io track_io;
static pthread_mutex_t tmu = PTHREAD_MUTEX_INITIALIZER;
static track_ent track[TRACK_MAX];
static int ntrack;

static int is_blk(const char *path) {
    size_t n = strlen(path);
    return n > 4 && strcmp(path + n - 4, ".blk") == 0;
}

/* The slot of a path (created on first sight); -1 if full. */
static int track_slot(const char *path) {
    for (int i = 0; i < ntrack; i++)
        if (strcmp(track[i].path, path) == 0)
            return i;
    if (ntrack == TRACK_MAX)
        return -1;
    snprintf(track[ntrack].path, sizeof track[ntrack].path, "%s", path);
    track[ntrack].dirty = track[ntrack].new_file = track[ntrack].gone = 0;
    return ntrack++;
}

static int t_close(js_vfs_file *f) {
    tfile *t = (tfile *)f;
    int rc = t->inner->io->close(t->inner);
    free(t->inner);
    return rc;
}

static int t_read(js_vfs_file *f, void *b, size_t n, uint64_t off,
                  size_t *got) {
    tfile *t = (tfile *)f;
    return t->inner->io->read(t->inner, b, n, off, got);
}

static int t_write(js_vfs_file *f, const void *b, size_t n, uint64_t off) {
    tfile *t = (tfile *)f;
    int rc = t->inner->io->write(t->inner, b, n, off);
    if (rc == 0 && t->slot >= 0) {
        pthread_mutex_lock(&tmu);
        track[t->slot].dirty += (long)n;
        pthread_mutex_unlock(&tmu);
    }
    return rc;
}

static int t_truncate(js_vfs_file *f, uint64_t size) {
    tfile *t = (tfile *)f;
    return t->inner->io->truncate(t->inner, size);
}

static int t_sync(js_vfs_file *f) {
    tfile *t = (tfile *)f;
    int rc = t->inner->io->sync(t->inner);
    if (rc == 0 && t->slot >= 0) {
        pthread_mutex_lock(&tmu);
        track[t->slot].dirty = 0;
        pthread_mutex_unlock(&tmu);
    }
    return rc;
}

static int t_size(js_vfs_file *f, uint64_t *size) {
    tfile *t = (tfile *)f;
    return t->inner->io->size(t->inner, size);
}

static int t_control(js_vfs_file *f, int op, void *arg) {
    tfile *t = (tfile *)f;
    return t->inner->io->control(t->inner, op, arg);
}

static int t_open(js_vfs *v, const char *path, int flags, js_vfs_file *f) {
    (void)v;
    tfile *t = (tfile *)f;
    int existed = access(path, F_OK) == 0;
    t->inner = calloc(1, posix->file_size);
    if (!t->inner)
        return JS_ENOMEM;
    int rc = posix->open(posix, path, flags, t->inner);
    if (rc) {
        free(t->inner);
        return rc;
    }
    t->base.io = &track_io;
    t->slot = -1;
    if (is_blk(path)) {
        pthread_mutex_lock(&tmu);
        t->slot = track_slot(path);
        if (t->slot >= 0 && !existed && (flags & JS_VFS_CREATE)) {
            track[t->slot].new_file = 1;
            track[t->slot].gone = 0;
        }
        pthread_mutex_unlock(&tmu);
    }
    return 0;
}

static int t_remove(js_vfs *v, const char *p) {
    (void)v;
    int rc = posix->remove(posix, p);
    if (rc == 0 && is_blk(p)) {
        pthread_mutex_lock(&tmu);
        int i = track_slot(p);
        if (i >= 0)
            track[i].gone = 1;
        pthread_mutex_unlock(&tmu);
    }
    return rc;
}

static int t_rename(js_vfs *v, const char *a, const char *b) {
    (void)v;
    return posix->rename(posix, a, b);
}
static int t_mkdir(js_vfs *v, const char *p) {
    (void)v;
    return posix->mkdir(posix, p);
}
static int t_rmdir(js_vfs *v, const char *p) {
    (void)v;
    return posix->rmdir(posix, p);
}
static int t_list(js_vfs *v, const char *d, int (*cb)(void *, const char *),
                  void *x) {
    (void)v;
    return posix->list(posix, d, cb, x);
}

/* A directory sync makes the entries of the files directly in it durable. */
static int t_sync_dir(js_vfs *v, const char *d) {
    (void)v;
    int rc = posix->sync_dir(posix, d);
    size_t n = strlen(d);
    pthread_mutex_lock(&tmu);
    for (int i = 0; rc == 0 && i < ntrack; i++)
        if (strncmp(track[i].path, d, n) == 0 && track[i].path[n] == '/' &&
            !strchr(track[i].path + n + 1, '/'))
            track[i].new_file = 0;
    pthread_mutex_unlock(&tmu);
    return rc;
}

static int t_lock(js_vfs *v, const char *p, void **tok) {
    (void)v;
    return posix->lock(posix, p, tok);
}
static int t_unlock(js_vfs *v, void *tok) {
    (void)v;
    return posix->unlock(posix, tok);
}

static void trackfs_register(void) {
    posix = js_vfs_find("posix");
    ck_assert_ptr_nonnull(posix);
    track_io = (js_vfs_io){JS_VFS_IO_VERSION, t_close, t_read, t_write,
                           t_truncate, t_sync, t_size, t_control};
    trackfs = (js_vfs){JS_VFS_VERSION, sizeof(tfile), "trackfs", NULL,
                       t_open, t_remove, t_rename, t_mkdir, t_rmdir, t_list,
                       t_sync_dir, t_lock, t_unlock};
    ck_assert_int_eq(js_vfs_register(&trackfs, 0), 0);
    ntrack = 0;
}

/* Describe the first block file left with unsynced data or an unsynced
 * directory entry into buf; 0 if every block file is durable. */
static int track_unsynced(char *buf, size_t len) {
    int bad = 0;
    pthread_mutex_lock(&tmu);
    for (int i = 0; i < ntrack && !bad; i++) {
        if (track[i].gone || (!track[i].dirty && !track[i].new_file))
            continue;
        snprintf(buf, len, "%s: %ld bytes unsynced%s", track[i].path,
                 track[i].dirty,
                 track[i].new_file ? ", directory entry unsynced" : "");
        bad = 1;
    }
    pthread_mutex_unlock(&tmu);
    return bad;
}

/*
 * JS_SYNC_NONE, 4 KiB blocks, about eight blocks of messages. js_flush()
 * promises every write so far durable "whatever the sync policy", and
 * js_close() to "flush and sync everything". But under NONE a sealed block
 * whose bytes are all written gets its file closed (jsi_ms_flush) and so
 * becomes evictable (jsi_ms_cache_trim); the sync flush then skips it (it
 * has no buffer), and its data is never synced.
 */
START_TEST(none_flush_and_close_sync_every_block_file) {
    char msg[256];
    trackfs_register();
    char *dir = new_store_dir("none");
    js_store *st;
    js_stream *s;
    open_store(dir, "trackfs", JS_SYNC_NONE, 4096, &st, &s);
    pub_n(st, 300, 60);
    ck_assert_int_gt(ntrack, 4); /* several block files */
    ck_assert_int_eq(js_flush(st), 0);
    int bad_flush = track_unsynced(msg, sizeof msg);
    ck_assert_msg(!bad_flush, "after js_flush: %s", msg);
    pub_n(st, 300, 60);
    close_store(st, s);
    ck_assert_msg(!track_unsynced(msg, sizeof msg), "after js_close: %s",
                  msg);
    free(dir);
}
END_TEST

/* ---- erase in an unadopted tail vs a concurrent publish ------------------ */

/*
 * A backend whose first block-file write after arming stops inside the
 * write (the erase's, made with the stream lock released and the I/O token
 * held), lets a publisher thread run until it has appended and gone to
 * sleep waiting for the token, and then checks that the buffer it was
 * asked to write from is still the tail block's buffer.
 */
static js_vfs gatefs;
static js_vfs_io gate_io;
static int gate_armed;
static js_stream *gate_stream;
static uint64_t gate_last;       /* stream's last seq when the erase began */
static int gate_checked, gate_src_live, gate_pub_seen;
static pthread_mutex_t gmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gcond = PTHREAD_COND_INITIALIZER;
static int gate_go;
static void *gate_fence;

static int g_write(js_vfs_file *f, const void *b, size_t n, uint64_t off) {
    tfile *t = (tfile *)f;
    if (t->slot >= 0 && __atomic_exchange_n(&gate_armed, 0, __ATOMIC_SEQ_CST)) {
        /* Something allocated after the block buffer (which this thread
         * has just loaded), so a realloc cannot grow it in place. */
        gate_fence = malloc(100000);
        if (gate_fence)
            memset(gate_fence, 1, 100000);
        /* The block buffer as it is now (the last block, being erased). */
        js_stream *s0 = gate_stream;
        const uint8_t *old_buf = NULL;
        size_t old_cap = 0;
        for (int i = 0; i < 5000 && !old_buf; i++) {
            if (pthread_mutex_trylock(&s0->mu) == 0) {
                jsi_blk *tail = s0->ms->blks[s0->ms->nblks - 1];
                old_buf = tail->buf;
                old_cap = tail->cap;
                pthread_mutex_unlock(&s0->mu);
            } else {
                usleep(1000);
            }
        }
        pthread_mutex_lock(&gmu);
        gate_go = 1;
        pthread_cond_broadcast(&gcond);
        pthread_mutex_unlock(&gmu);
        /* Wait (up to 5 s) until the publisher has appended and released
         * the stream lock (it then sleeps waiting for the I/O token). */
        js_stream *s = gate_stream;
        for (int i = 0; i < 5000; i++) {
            if (pthread_mutex_trylock(&s->mu) == 0) {
                jsi_ms *ms = s->ms;
                if (ms->last > gate_last) {
                    jsi_blk *tail = ms->blks[ms->nblks - 1];
                    const uint8_t *p = b;
                    gate_pub_seen = 1;
                    /* Writing from the old buffer after it moved is a
                                     * use after free; a private copy, or
                                     * a buffer that did not move, is fine. */
                    int in_old = old_buf && p >= old_buf &&
                                 p + n <= old_buf + old_cap;
                    gate_src_live = !(in_old && tail->buf != old_buf);
                    gate_checked = 1;
                    pthread_mutex_unlock(&s->mu);
                    break;
                }
                pthread_mutex_unlock(&s->mu);
            }
            usleep(1000);
        }
    }
    return t->inner->io->write(t->inner, b, n, off);
}

static int g_open(js_vfs *v, const char *path, int flags, js_vfs_file *f) {
    int rc = t_open(v, path, flags, f);
    if (rc == 0)
        f->io = &gate_io;
    return rc;
}

static void gatefs_register(void) {
    trackfs_register();
    gate_io = track_io;
    gate_io.write = g_write;
    gatefs = trackfs;
    gatefs.name = "gatefs";
    gatefs.open = g_open;
    ck_assert_int_eq(js_vfs_register(&gatefs, 0), 0);
}

typedef struct pubctx {
    js_store *st;
    int rc;
} pubctx;

static void *late_publisher(void *p) {
    pubctx *c = p;
    pthread_mutex_lock(&gmu);
    while (!gate_go)
        pthread_cond_wait(&gcond, &gmu);
    pthread_mutex_unlock(&gmu);
    c->rc = js_publish(c->st, "r.late", NULL, 0, "late", 4, NULL);
    return NULL;
}

/*
 * After a reopen the last block is not yet the tail (tail_adopted == 0).
 * js_msg_erase() on a message in it loads it and writes the ERASED record
 * from b->buf with the lock released (erase_record). A publish arriving
 * meanwhile calls adopt_tail(), which realloc()s b->buf to the block size:
 * the erase then writes from freed memory (ASan: heap-use-after-free in
 * erase_record's write). Blocks are only freed or moved while no thread
 * holds the I/O token; adopt_tail does not check it.
 */
START_TEST(erase_in_unadopted_tail_is_not_moved_by_concurrent_publish) {
    gatefs_register();
    char *dir = new_store_dir("erase_race");
    js_store *st;
    js_stream *s;
    open_store(dir, "gatefs", JS_SYNC_ALWAYS, 0, &st, &s);
    pub_n(st, 10, 200);
    close_store(st, s);

    open_store(dir, "gatefs", JS_SYNC_ALWAYS, 0, &st, &s);
    ck_assert_int_eq(s->ms->tail_adopted, 0);
    gate_stream = s;
    gate_last = 10;
    pubctx pc = {st, -1};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, late_publisher, &pc), 0);
    __atomic_store_n(&gate_armed, 1, __ATOMIC_SEQ_CST);
    int rc = js_msg_erase(s, 5);
    pthread_join(th, NULL);
    ck_assert_msg(rc == 0, "erase: %s (%s)", js_strerror(rc), js_errmsg());
    ck_assert_int_eq(pc.rc, 0);
    ck_assert_msg(gate_checked && gate_pub_seen,
                  "the publisher did not get to append during the erase");
    ck_assert_msg(gate_src_live,
                  "the erase wrote from a buffer the concurrent publish had "
                  "realloc()ed away (adopt_tail during erase_record)");
    close_store(st, s);
    free(gate_fence);
    free(dir);
}
END_TEST

/* ---- found by the fuzz targets --------------------------------------------- */

static int64_t fixed_clock(void *ctx) {
    (void)ctx;
    return INT64_C(1700000000000000000);
}

/* The "fuzz" test case's fixture: an in-memory backend, and the store's
 * mutex held, as the store's callers hold it. */
static js_vfs *fx_vfs;
static pthread_mutex_t fx_mu = PTHREAD_MUTEX_INITIALIZER;

static void fx_setup(void) {
    fx_vfs = jsi_vfs_mem_new();
    ck_assert_ptr_nonnull(fx_vfs);
    pthread_mutex_lock(&fx_mu);
}

static void fx_teardown(void) {
    pthread_mutex_unlock(&fx_mu);
    jsi_vfs_mem_free(fx_vfs);
    fx_vfs = NULL;
}

static void ms_open_on(js_vfs *vfs, pthread_mutex_t *mu, jsi_ms **ms) {
    jsi_ms_cfg cfg = {vfs, "/s", 4096, JS_SYNC_ALWAYS, 0, fixed_clock, NULL,
                      mu};
    int rc = jsi_ms_open(&cfg, 1, ms);
    ck_assert_msg(rc == 0, "jsi_ms_open: %s (%s)", js_strerror(rc),
                  js_errmsg());
}

/* Open the fixture's store ("/s", 4 KiB blocks). */
static void fx_open(jsi_ms **ms) {
    ms_open_on(fx_vfs, &fx_mu, ms);
}

/* Open it without its checkpoint (a rebuild from the blocks alone), and
 * get its state. */
static void fx_rebuild(jsi_ms **ms, jsi_ms_state *st) {
    fx_vfs->remove(fx_vfs, "/s/index");
    fx_open(ms);
    jsi_ms_state_get(*ms, st);
}

START_TEST(misplaced_record_never_hides_later_messages) {
    uint8_t blk[JSI_BLK_HDR_LEN + 2 * (JSI_REC_HDR_LEN + 2)];
    js_vfs_file *f = NULL;
    jsi_ms *ms = NULL;
    jsi_ms_state st;
    uint64_t seq;
    /* Message 1, then a valid record of sequence 8 where at most 3 records
     * fit: recovery skips it as misplaced. */
    jsi_blkhdr_encode(blk, 1);
    size_t n = JSI_BLK_HDR_LEN;
    n += jsi_rec_encode_msg(blk + n, 1, 1, 0, "a", 1, NULL, 0, "x", 1);
    n += jsi_rec_encode_msg(blk + n, 8, 1, 0, "a", 1, NULL, 0, "y", 1);
    ck_assert_int_eq(fx_vfs->mkdir(fx_vfs, "/s"), 0);
    ck_assert_int_eq(jsi_vfs_open(fx_vfs, "/s/0000000000000001.blk",
                                  JS_VFS_WRITE | JS_VFS_CREATE, &f), 0);
    ck_assert_int_eq(f->io->write(f, blk, n, 0), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    fx_open(&ms);
    ck_assert_uint_eq(jsi_ms_last_seq(ms), 1);
    /* Enough appends that a block holding them could hold sequence 8. */
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(jsi_ms_append(ms, "a", 1, NULL, 0, "z", 1, 1, 0,
                                       &seq), 0);
    ck_assert_int_eq(jsi_ms_close(ms), 0);
    /* A rebuild from the blocks alone must find the same messages. */
    ck_assert_int_eq(fx_vfs->remove(fx_vfs, "/s/index"), 0);
    fx_open(&ms);
    jsi_ms_state_get(ms, &st);
    ck_assert_uint_eq(st.last, 7);
    ck_assert_uint_eq(st.msgs, 7);
    ck_assert_int_eq(jsi_ms_close(ms), 0);
}
END_TEST

/* Block file no in /s holding recs[0..n) after its header. */
static void put_block(js_vfs *vfs, unsigned no, const uint8_t *recs,
                      size_t n) {
    uint8_t blk[4096];
    char path[64];
    ck_assert_uint_le(n, sizeof blk - JSI_BLK_HDR_LEN);
    js_vfs_file *f = NULL;
    jsi_blkhdr_encode(blk, no);
    memcpy(blk + JSI_BLK_HDR_LEN, recs, n);
    snprintf(path, sizeof path, "/s/%016x.blk", no);
    ck_assert_int_ge(jsi_vfs_mkdirs(vfs, "/s"), 0);
    ck_assert_int_eq(jsi_vfs_open(vfs, path, JS_VFS_WRITE | JS_VFS_CREATE,
                                  &f), 0);
    ck_assert_int_eq(f->io->write(f, blk, JSI_BLK_HDR_LEN + n, 0), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
}

START_TEST(stray_copy_of_a_sequence_never_replaces_it) {
    uint8_t recs[512];
    jsi_ms *ms = NULL;
    jsi_rec r;
    uint64_t purged;
    size_t n = 0;
    n += jsi_rec_encode_msg(recs + n, 1, 1, 0, "a", 1, NULL, 0, "1", 1);
    n += jsi_rec_encode_msg(recs + n, 2, 1, 0, "b", 1, NULL, 0, "2", 1);
    n += jsi_rec_encode_msg(recs + n, 3, 1, 0, "a", 1, NULL, 0, "3", 1);
    n += jsi_rec_encode_msg(recs + n, 2, 1, 0, "zz", 2, NULL, 0, "x", 1);
    put_block(fx_vfs, 1, recs, n);
    fx_open(&ms);
    ck_assert_uint_eq(jsi_ms_msgs(ms), 3);
    ck_assert_int_eq(jsi_ms_load(ms, 2, &r), 0);
    ck_assert_int_eq((int)r.slen, 1);
    ck_assert_int_eq(r.subj[0], 'b');
    /* Removing everything must uncount every subject. */
    ck_assert_int_eq(jsi_ms_purge(ms, NULL, 0, 0, &purged), 0);
    ck_assert_uint_eq(purged, 3);
    ck_assert_uint_eq(jsi_sidx_size(jsi_ms_sidx(ms)), 0);
    ck_assert_int_eq(jsi_ms_close(ms), 0);
}
END_TEST

START_TEST(block_load_allocates_no_more_than_the_file_holds) {
    char data[600] = {0};
    jsi_ms *ms = NULL;
    jsi_rec r;
    uint64_t seq;
    ck_assert_int_eq(fx_vfs->mkdir(fx_vfs, "/s"), 0);
    fx_open(&ms);
    for (int i = 0; i < 12; i++) /* two blocks of 4 KiB */
        ck_assert_int_eq(jsi_ms_append(ms, "a", 1, NULL, 0, data,
                                       sizeof data, 1, 0, &seq), 0);
    ck_assert_int_eq(jsi_ms_close(ms), 0);
    fx_open(&ms); /* from the checkpoint: nothing loaded */
    ck_assert_uint_ge(ms->nblks, 2);
    ck_assert_ptr_null(ms->blks[0]->buf);
    /* What a damaged checkpoint could say about the first block. */
    ms->blks[0]->size = (uint64_t)1 << 42;
    ck_assert_int_eq(jsi_ms_load(ms, 1, &r), JS_ECORRUPT);
    jsi_ms_free(ms);
}
END_TEST

START_TEST(dead_blocks_dropped_at_open_leave_a_front_record) {
    uint8_t recs[256], front[8];
    jsi_ms *ms = NULL;
    jsi_ms_state st;
    size_t n = 0;
    /* Block 1: message 1, then everything below 5 removed, the stream's
     * last being 4. Block 2: stray copies of 3 and 4, skipped. */
    n += jsi_rec_encode_msg(recs, 1, 1, 0, "a", 1, NULL, 0, "1", 1);
    jsi_put64(front, 5);
    jsi_rec_encode_hdr(recs + n, JSI_REC_HDR_LEN + 8, 4, 1, JSI_REC_FRONT, 0,
                       0, 0, jsi_crc32c(0, front, 8));
    memcpy(recs + n + JSI_REC_HDR_LEN, front, 8);
    n += JSI_REC_HDR_LEN + 8;
    put_block(fx_vfs, 1, recs, n);
    n = jsi_rec_encode_msg(recs, 3, 1, 0, "a", 1, NULL, 0, "3", 1);
    n += jsi_rec_encode_msg(recs + n, 4, 1, 0, "a", 1, NULL, 0, "4", 1);
    put_block(fx_vfs, 2, recs, n);
    /* Each open rebuilds from the blocks: the first drops block 1 as
     * dead; none may find messages the one before did not. */
    for (int i = 0; i < 2; i++) {
        fx_rebuild(&ms, &st);
        ck_assert_uint_eq(st.msgs, 0);
        ck_assert_uint_eq(st.first, 5);
        ck_assert_uint_eq(st.last, 4);
        ck_assert_int_eq(jsi_ms_close(ms), 0);
    }
}
END_TEST

START_TEST(cutting_a_torn_tail_never_drops_a_counted_message) {
    uint8_t recs[700] = {0};
    jsi_ms *ms = NULL;
    uint64_t last[2];
    /* Message 1, then sequence 9 where only a few records fit, then a
     * torn tail long enough that the whole file could hold 9. */
    size_t n = jsi_rec_encode_msg(recs, 1, 1, 0, "a", 1, NULL, 0, "1", 1);
    n += jsi_rec_encode_msg(recs + n, 9, 1, 0, "a", 1, NULL, 0, "9", 1);
    put_block(fx_vfs, 1, recs, n + 500); /* zeros: torn */
    for (int i = 0; i < 2; i++) {
        fx_vfs->remove(fx_vfs, "/s/index");
        fx_open(&ms);
        last[i] = jsi_ms_last_seq(ms);
        ck_assert_int_eq(jsi_ms_close(ms), 0);
    }
    ck_assert_uint_eq(last[1], last[0]);
}
END_TEST

/* Block 1: message 1, then a DEL record (of sequence 2) logged when the
 * stream's last sequence was `last`: 2..last never turned up. */
static void put_lost_stretch(js_vfs *vfs, uint64_t last) {
    uint8_t recs[256];
    jsi_buf del = {0};
    jsi_rangeset two = JSI_RANGESET_INIT;
    size_t n = jsi_rec_encode_msg(recs, 1, 1, 0, "a", 1, NULL, 0, "1", 1);
    ck_assert_int_eq(jsi_rs_add(&two, 2, 2), 0);
    ck_assert_int_eq(jsi_rs_encode(&two, &del), 0);
    jsi_rec_encode_hdr(recs + n, (uint32_t)(JSI_REC_HDR_LEN + del.len), last,
                       1, JSI_REC_DEL, 0, 0, 0, jsi_crc32c(0, del.p, del.len));
    memcpy(recs + n + JSI_REC_HDR_LEN, del.p, del.len);
    n += JSI_REC_HDR_LEN + del.len;
    put_block(vfs, 1, recs, n);
    jsi_rs_free(&two);
    jsi_buf_free(&del);
}

START_TEST(last_message_steps_over_long_gaps_at_once) {
    jsi_ms *ms = NULL;
    jsi_rec r;
    put_lost_stretch(fx_vfs, (uint64_t)1 << 50);
    fx_open(&ms);
    ck_assert_uint_eq(jsi_ms_last_seq(ms), (uint64_t)1 << 50);
    ck_assert_int_eq(jsi_ms_last(ms, NULL, &r), 0);
    ck_assert_uint_eq(r.seq, 1);
    ck_assert_int_eq(jsi_ms_close(ms), 0);
}
END_TEST

START_TEST(message_after_a_lost_stretch_survives_a_rebuild) {
    jsi_ms *ms = NULL;
    jsi_ms_state st;
    uint64_t seq;
    put_lost_stretch(fx_vfs, 53);
    fx_open(&ms);
    ck_assert_uint_eq(jsi_ms_last_seq(ms), 53);
    ck_assert_int_eq(jsi_ms_append(ms, "a", 1, NULL, 0, "x", 1, 1, 0, &seq),
                     0);
    ck_assert_uint_eq(seq, 54);
    ck_assert_int_eq(jsi_ms_close(ms), 0);
    ck_assert_int_eq(fx_vfs->remove(fx_vfs, "/s/index"), 0);
    fx_open(&ms);
    jsi_ms_state_get(ms, &st);
    ck_assert_uint_eq(st.last, 54);
    ck_assert_uint_eq(st.msgs, 2);
    ck_assert_int_eq(jsi_ms_close(ms), 0);
}
END_TEST

START_TEST(a_record_as_large_as_a_block_fits_the_block_it_starts) {
    js_vfs *vfs = jsi_vfs_mem_new();
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static uint8_t data[10000];
    static const size_t lens[] = {3000, 3990, 4000, 4020, 4060, 4090,
                                  5000, 9000, 100};
    size_t nl = sizeof lens / sizeof lens[0];
    jsi_ms *ms = NULL;
    jsi_rec r;
    uint64_t seq;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    ck_assert_int_eq(vfs->mkdir(vfs, "/s"), 0);
    pthread_mutex_lock(&mu);
    ms_open_on(vfs, &mu, &ms); /* 4 KiB blocks */
    for (size_t i = 0; i < nl; i++) {
        ck_assert_int_eq(jsi_ms_append(ms, "a", 1, NULL, 0, data, lens[i], 1,
                                       0, &seq), 0);
        jsi_blk *t = ms->blks[ms->nblks - 1];
        ck_assert_msg(t->size <= t->cap, "record of %zu bytes: block %"
                      PRIu64 " holds %" PRIu64 " bytes in a buffer of %zu",
                      lens[i], t->no, t->size, t->cap);
    }
    ck_assert_int_eq(jsi_ms_close(ms), 0);
    ck_assert_int_eq(vfs->remove(vfs, "/s/index"), 0);
    ms_open_on(vfs, &mu, &ms);
    for (size_t i = 0; i < nl; i++) {
        ck_assert_int_eq(jsi_ms_load(ms, i + 1, &r), 0);
        ck_assert_uint_eq(r.dlen, lens[i]);
        ck_assert_int_eq(memcmp(r.data, data, lens[i]), 0);
    }
    ck_assert_int_eq(jsi_ms_close(ms), 0);
    pthread_mutex_unlock(&mu);
    jsi_vfs_mem_free(vfs);
}
END_TEST

/* A FRONT record (everything below upto removed, the stream's last
 * being `last`) into p; returns its length. */
static size_t put_front(uint8_t *p, uint64_t last, uint64_t upto) {
    uint8_t body[8];
    jsi_put64(body, upto);
    jsi_rec_encode_hdr(p, JSI_REC_HDR_LEN + 8, last, 1, JSI_REC_FRONT, 0, 0,
                       0, jsi_crc32c(0, body, 8));
    memcpy(p + JSI_REC_HDR_LEN, body, 8);
    return JSI_REC_HDR_LEN + 8;
}

START_TEST(stray_record_below_the_front_never_moves_a_block_start) {
    uint8_t recs[512];
    jsi_ms *ms = NULL;
    jsi_ms_state st;
    jsi_rec r;
    /* Block 1: message 1, then everything below 40 removed (the last
     * being 39). Block 2: its FRONT record, a stray copy of message 1,
     * then messages 40 and 41. */
    size_t n = jsi_rec_encode_msg(recs, 1, 1, 0, "a", 1, NULL, 0, "1", 1);
    n += put_front(recs + n, 39, 40);
    put_block(fx_vfs, 1, recs, n);
    n = put_front(recs, 39, 40);
    n += jsi_rec_encode_msg(recs + n, 1, 1, 0, "a", 1, NULL, 0, "1", 1);
    n += jsi_rec_encode_msg(recs + n, 40, 1, 0, "a", 1, NULL, 0, "40", 2);
    n += jsi_rec_encode_msg(recs + n, 41, 1, 0, "a", 1, NULL, 0, "41", 2);
    put_block(fx_vfs, 2, recs, n);
    /* Block 1 is dead, but stays while block 2 holds a misplaced record
     * (the stray); the second open rebuilds from block 2 alone (block 1
     * deleted here, as by a version that dropped it) and must place its
     * messages the same way. */
    for (int i = 0; i < 2; i++) {
        fx_rebuild(&ms, &st);
        ck_assert_uint_eq(st.first, 40);
        ck_assert_uint_eq(st.last, 41);
        ck_assert_msg(st.msgs == 2, "open %d: %" PRIu64 " messages", i,
                      st.msgs);
        ck_assert_int_eq(jsi_ms_load(ms, 40, &r), 0);
        ck_assert_int_eq(jsi_ms_load(ms, 41, &r), 0);
        ck_assert_int_eq(jsi_ms_close(ms), 0);
        if (i == 0)
            ck_assert_int_eq(
                fx_vfs->remove(fx_vfs, "/s/0000000000000001.blk"), 0);
    }
}
END_TEST

/* Block 1: message 1, then everything below 50 removed (the last being
 * 49). Block 2: its FRONT record with a damaged body, a stray copy of
 * message 1, then messages 50 and 51. The open places 50 and 51 after
 * the last sequence block 1 left; block 1 is dead, but a rebuild without
 * it would take the stray for block 2's start (message 1 back, 50 and 51
 * out of its reach): as long as block 2 holds a misplaced record, block 1
 * stays. */
START_TEST(dead_block_stays_while_the_next_front_record_is_damaged) {
    uint8_t recs[512];
    jsi_ms *ms = NULL;
    jsi_ms_state st;
    jsi_rec r;
    uint64_t seq, n_purged;
    size_t n = jsi_rec_encode_msg(recs, 1, 1, 0, "a", 1, NULL, 0, "1", 1);
    n += put_front(recs + n, 49, 50);
    put_block(fx_vfs, 1, recs, n);
    n = put_front(recs, 49, 50);
    recs[JSI_REC_HDR_LEN] ^= 0x40; /* its body: the header still parses */
    n += jsi_rec_encode_msg(recs + n, 1, 1, 0, "a", 1, NULL, 0, "1", 1);
    n += jsi_rec_encode_msg(recs + n, 50, 1, 0, "a", 1, NULL, 0, "50", 2);
    n += jsi_rec_encode_msg(recs + n, 51, 1, 0, "a", 1, NULL, 0, "51", 2);
    put_block(fx_vfs, 2, recs, n);
    for (int i = 0; i < 3; i++) { /* every open rebuilds */
        fx_rebuild(&ms, &st);
        ck_assert_uint_eq(st.first, 50);
        ck_assert_uint_eq(st.last, 51);
        ck_assert_msg(st.msgs == 2, "open %d: %" PRIu64 " messages", i,
                      st.msgs);
        ck_assert_int_eq(jsi_ms_load(ms, 50, &r), 0);
        ck_assert_int_eq(jsi_ms_load(ms, 51, &r), 0);
        ck_assert_int_eq(jsi_ms_load(ms, 1, &r), JS_EMSG_NOT_FOUND);
        ck_assert_int_eq(jsi_ms_close(ms), 0);
        ck_assert_int_eq(jsi_vfs_exists(fx_vfs, "/s/0000000000000001.blk"), 1);
    }
    /* Once block 2 is dead as well, both go: the block after them (a new
     * tail, its FRONT record intact) says where it starts. */
    fx_open(&ms);
    ck_assert_int_eq(jsi_ms_append(ms, "a", 1, NULL, 0, "52", 2, 1, 0, &seq),
                     0);
    ck_assert_uint_eq(seq, 52);
    ck_assert_int_eq(jsi_ms_purge(ms, NULL, 52, 0, &n_purged), 0);
    ck_assert_uint_eq(n_purged, 2);
    ck_assert_int_eq(jsi_ms_commit(ms, 1), 0);
    ck_assert_int_eq(jsi_ms_close(ms), 0);
    ck_assert_int_eq(jsi_vfs_exists(fx_vfs, "/s/0000000000000001.blk"), 0);
    ck_assert_int_eq(jsi_vfs_exists(fx_vfs, "/s/0000000000000002.blk"), 0);
    ck_assert_int_eq(fx_vfs->remove(fx_vfs, "/s/index"), 0);
    fx_open(&ms);
    jsi_ms_state_get(ms, &st);
    ck_assert_uint_eq(st.first, 52);
    ck_assert_uint_eq(st.last, 52);
    ck_assert_uint_eq(st.msgs, 1);
    ck_assert_int_eq(jsi_ms_load(ms, 52, &r), 0);
    ck_assert_int_eq(jsi_ms_close(ms), 0);
}
END_TEST

/* The lost ranges of ms as a string, for comparisons. */
static void lost_str(jsi_ms *ms, char *buf, size_t len) {
    size_t n, k = 0;
    const jsi_range *r = jsi_ms_lost(ms, &n);
    buf[0] = 0;
    for (size_t i = 0; i < n && k + 44 < len; i++)
        k += (size_t)snprintf(buf + k, len - k, " %" PRIu64 "..%" PRIu64,
                              r[i].lo, r[i].hi);
}

START_TEST(removed_sequence_in_a_lost_stretch_stays_removed_after_its_block_goes) {
    static uint8_t recs[2048], big[600];
    jsi_ms *ms = NULL;
    jsi_ms_state a, b;
    jsi_rangeset four = JSI_RANGESET_INIT;
    jsi_buf del = {0};
    jsi_rec r;
    char la[128], lb[128];
    uint64_t seq;
    /* Block 1 (too large to take more): messages 1 and 2, all below 3
     * removed, then a DEL record of 4 logged when the last was 5: 3..5
     * never turned up (lost), 4 was removed. */
    size_t n = jsi_rec_encode_msg(recs, 1, 1, 0, "a", 1, NULL, 0, big,
                                  sizeof big);
    n += jsi_rec_encode_msg(recs + n, 2, 1, 0, "a", 1, NULL, 0, big,
                            sizeof big);
    n += put_front(recs + n, 2, 3);
    ck_assert_int_eq(jsi_rs_add(&four, 4, 4), 0);
    ck_assert_int_eq(jsi_rs_encode(&four, &del), 0);
    jsi_rec_encode_hdr(recs + n, (uint32_t)(JSI_REC_HDR_LEN + del.len), 5, 1,
                       JSI_REC_DEL, 0, 0, 0, jsi_crc32c(0, del.p, del.len));
    memcpy(recs + n + JSI_REC_HDR_LEN, del.p, del.len);
    n += JSI_REC_HDR_LEN + del.len;
    put_block(fx_vfs, 1, recs, n);
    fx_open(&ms);
    /* Messages in a new block; block 1 (all below the first) goes. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(jsi_ms_append(ms, "a", 1, NULL, 0, "x", 1, 1, 0,
                                       &seq), 0);
    ck_assert_int_eq(jsi_ms_commit(ms, 1), 0);
    jsi_ms_state_get(ms, &a);
    lost_str(ms, la, sizeof la);
    ck_assert_str_eq(la, " 3..3 5..5");
    ck_assert_int_eq(jsi_ms_close(ms), 0);
    ck_assert_int_eq(jsi_vfs_exists(fx_vfs, "/s/0000000000000001.blk"), 0);
    for (int i = 0; i < 2; i++) { /* with the checkpoint, then without */
        if (i)
            ck_assert_int_eq(fx_vfs->remove(fx_vfs, "/s/index"), 0);
        fx_open(&ms);
        jsi_ms_state_get(ms, &b);
        lost_str(ms, lb, sizeof lb);
        ck_assert_str_eq(lb, la);
        ck_assert_uint_eq(b.first, a.first);
        ck_assert_uint_eq(b.last, a.last);
        ck_assert_uint_eq(b.msgs, a.msgs);
        ck_assert_uint_eq(b.lost_msgs, 2);
        ck_assert_int_eq(jsi_ms_load(ms, 4, &r), JS_EMSG_NOT_FOUND);
        ck_assert_int_eq(jsi_ms_load(ms, 5, &r), JS_ECORRUPT);
        ck_assert_int_eq(jsi_ms_close(ms), 0);
    }
    jsi_rs_free(&four);
    jsi_buf_free(&del);
}
END_TEST

/* A DEL record of [lo, hi] logged when the last sequence was `last`. */
static size_t put_del(uint8_t *p, uint64_t last, uint64_t lo, uint64_t hi) {
    jsi_rangeset rs = JSI_RANGESET_INIT;
    jsi_buf b = {0};
    ck_assert_int_eq(jsi_rs_add(&rs, lo, hi), 0);
    ck_assert_int_eq(jsi_rs_encode(&rs, &b), 0);
    jsi_rec_encode_hdr(p, (uint32_t)(JSI_REC_HDR_LEN + b.len), last, 1,
                       JSI_REC_DEL, 0, 0, 0, jsi_crc32c(0, b.p, b.len));
    memcpy(p + JSI_REC_HDR_LEN, b.p, b.len);
    size_t n = JSI_REC_HDR_LEN + b.len;
    jsi_rs_free(&rs);
    jsi_buf_free(&b);
    return n;
}

/* Block 1: message 1, then a DEL record of it logged when the last
 * sequence was 53 (damage: block 2 says the last was 35). Block 2: its
 * FRONT record (first 36, last 35), message 36, then message 56. The open
 * reads block 2 after block 1: 36 is at or below the last so far, a stray,
 * and 56 a message. Without block 1 a rebuild would take 36 for block 2's
 * start and 56 for a record out of its reach: block 1 stays while block 2
 * holds that misplaced record, and every rebuild reads the same. */
START_TEST(dead_block_stays_while_the_next_one_holds_a_stray_it_explains) {
    uint8_t recs[512];
    jsi_ms *ms = NULL;
    jsi_ms_state a, b;
    jsi_rec r;
    char la[128], lb[128];
    size_t n = jsi_rec_encode_msg(recs, 1, 1, 0, "a", 1, NULL, 0, "1", 1);
    n += put_del(recs + n, 53, 1, 1);
    put_block(fx_vfs, 1, recs, n);
    n = put_front(recs, 35, 36);
    n += jsi_rec_encode_msg(recs + n, 36, 1, 0, "a", 1, NULL, 0, "36", 2);
    n += jsi_rec_encode_msg(recs + n, 56, 1, 0, "a", 1, NULL, 0, "56", 2);
    put_block(fx_vfs, 2, recs, n);
    for (int i = 0; i < 3; i++) { /* every open rebuilds */
        fx_rebuild(&ms, &b);
        lost_str(ms, lb, sizeof lb);
        ck_assert_uint_eq(b.msgs, 1);
        ck_assert_uint_eq(b.last, 56);
        ck_assert_int_eq(jsi_ms_load(ms, 56, &r), 0);
        ck_assert_int_ne(jsi_ms_load(ms, 36, &r), 0);
        if (i) {
            ck_assert_uint_eq(b.first, a.first);
            ck_assert_str_eq(lb, la);
        }
        a = b;
        memcpy(la, lb, sizeof la);
        ck_assert_int_eq(jsi_ms_close(ms), 0);
        ck_assert_int_eq(jsi_vfs_exists(fx_vfs, "/s/0000000000000001.blk"),
                         1);
    }
}
END_TEST

/* Block 1: messages 1 and 2. Block 2: no record. Block 3: a stray copy
 * of message 1, then everything below 10 removed (the last being 9), then
 * message 10. The open finds the stray at or below the last sequence
 * block 1 left. Blocks 1 and 2 are dead; block 2 reads alone, but the
 * last sequence block 3 is read against comes from block 1 through it:
 * with block 3 holding a misplaced record, neither goes. */
START_TEST(no_dead_block_goes_while_a_later_one_holds_a_stray) {
    uint8_t recs[512];
    jsi_ms *ms = NULL;
    jsi_ms_state st;
    jsi_rec r;
    size_t n = jsi_rec_encode_msg(recs, 1, 1, 0, "a", 1, NULL, 0, "1", 1);
    n += jsi_rec_encode_msg(recs + n, 2, 1, 0, "a", 1, NULL, 0, "2", 1);
    put_block(fx_vfs, 1, recs, n);
    put_block(fx_vfs, 2, recs, 0);
    n = jsi_rec_encode_msg(recs, 1, 1, 0, "a", 1, NULL, 0, "1", 1);
    n += put_front(recs + n, 9, 10);
    n += jsi_rec_encode_msg(recs + n, 10, 1, 0, "a", 1, NULL, 0, "10", 2);
    put_block(fx_vfs, 3, recs, n);
    for (int i = 0; i < 3; i++) { /* every open rebuilds */
        fx_rebuild(&ms, &st);
        ck_assert_uint_eq(st.first, 10);
        ck_assert_uint_eq(st.last, 10);
        ck_assert_msg(st.msgs == 1, "open %d: %" PRIu64 " messages", i,
                      st.msgs);
        ck_assert_int_eq(jsi_ms_load(ms, 10, &r), 0);
        ck_assert_int_eq(jsi_ms_close(ms), 0);
        ck_assert_int_eq(jsi_vfs_exists(fx_vfs, "/s/0000000000000001.blk"),
                         1);
    }
}
END_TEST

START_TEST(stray_copy_of_a_lost_sequence_stays_lost_after_older_blocks_go) {
    static uint8_t recs[2048], big[600];
    jsi_ms *ms = NULL;
    jsi_ms_state a, b;
    char la[128], lb[128];
    uint64_t seq;
    /* Block 1 (too large to take more): messages 1 and 2, all below 3
     * removed, then 3 removed when the last was 5 (4 and 5 never turned
     * up: lost). Block 2, damaged: a FRONT record saying the last was 2,
     * a stray copy of 5, then message 6. */
    size_t n = jsi_rec_encode_msg(recs, 1, 1, 0, "a", 1, NULL, 0, big,
                                  sizeof big);
    n += jsi_rec_encode_msg(recs + n, 2, 1, 0, "a", 1, NULL, 0, big,
                            sizeof big);
    n += put_front(recs + n, 2, 3);
    n += put_del(recs + n, 5, 3, 3);
    put_block(fx_vfs, 1, recs, n);
    n = put_front(recs, 2, 3);
    n += jsi_rec_encode_msg(recs + n, 5, 1, 0, "a", 1, NULL, 0, "5", 1);
    n += jsi_rec_encode_msg(recs + n, 6, 1, 0, "a", 1, NULL, 0, "6", 1);
    put_block(fx_vfs, 2, recs, n);
    fx_open(&ms);
    jsi_ms_state_get(ms, &a);
    lost_str(ms, la, sizeof la);
    ck_assert_str_eq(la, " 4..5");
    ck_assert_uint_eq(a.msgs, 1);
    /* A new block; block 1 (all below the first) stays while block 2
     * holds a misplaced record; deleted here, as by a version that
     * dropped it, and the reading must not change. */
    ck_assert_int_eq(jsi_ms_append(ms, "a", 1, NULL, 0, big, sizeof big, 1,
                                   0, &seq), 0);
    ck_assert_int_eq(jsi_ms_append(ms, "a", 1, NULL, 0, big, sizeof big, 1,
                                   0, &seq), 0);
    ck_assert_int_eq(jsi_ms_commit(ms, 1), 0);
    jsi_ms_state_get(ms, &a);
    ck_assert_int_eq(jsi_ms_close(ms), 0);
    ck_assert_int_eq(fx_vfs->remove(fx_vfs, "/s/0000000000000001.blk"), 0);
    for (int i = 0; i < 2; i++) { /* with the checkpoint, then without */
        if (i)
            ck_assert_int_eq(fx_vfs->remove(fx_vfs, "/s/index"), 0);
        fx_open(&ms);
        jsi_ms_state_get(ms, &b);
        lost_str(ms, lb, sizeof lb);
        ck_assert_str_eq(lb, la);
        ck_assert_msg(b.msgs == a.msgs, "open %d: %" PRIu64 " messages, "
                      "want %" PRIu64, i, b.msgs, a.msgs);
        ck_assert_uint_eq(b.last, a.last);
        ck_assert_int_eq(jsi_ms_close(ms), 0);
    }
}
END_TEST

START_TEST(first_removed_over_a_lost_stretch_stays_after_older_blocks_go) {
    static uint8_t recs[2048], big[600];
    jsi_ms *ms = NULL;
    jsi_ms_state a, b;
    char la[128], lb[128];
    uint64_t seq;
    /* Block 1, cut short (too large to take more): messages 1 to 3 of 35.
     * Block 2: its FRONT record (first 1, last 35), message 36, then
     * 1..17 removed, then messages 37 and 38. */
    size_t n = 0;
    for (uint64_t q = 1; q <= 3; q++)
        n += jsi_rec_encode_msg(recs + n, q, 1, 0, "a", 1, NULL, 0, big,
                                sizeof big / 2);
    put_block(fx_vfs, 1, recs, n);
    n = put_front(recs, 35, 1);
    n += jsi_rec_encode_msg(recs + n, 36, 1, 0, "a", 1, NULL, 0, "x", 1);
    n += put_del(recs + n, 36, 1, 17);
    n += jsi_rec_encode_msg(recs + n, 37, 1, 0, "a", 1, NULL, 0, "x", 1);
    n += jsi_rec_encode_msg(recs + n, 38, 1, 0, "a", 1, NULL, 0, "x", 1);
    put_block(fx_vfs, 2, recs, n);
    fx_open(&ms);
    jsi_ms_state_get(ms, &a);
    lost_str(ms, la, sizeof la);
    ck_assert_str_eq(la, " 18..35");
    ck_assert_uint_eq(a.first, 36);
    ck_assert_uint_eq(a.msgs, 3);
    ck_assert_int_eq(jsi_ms_append(ms, "a", 1, NULL, 0, "y", 1, 1, 0, &seq),
                     0);
    ck_assert_int_eq(jsi_ms_commit(ms, 1), 0);
    jsi_ms_state_get(ms, &a);
    ck_assert_int_eq(jsi_ms_close(ms), 0);
    ck_assert_int_eq(jsi_vfs_exists(fx_vfs, "/s/0000000000000001.blk"), 0);
    for (int i = 0; i < 2; i++) { /* with the checkpoint, then without */
        if (i)
            ck_assert_int_eq(fx_vfs->remove(fx_vfs, "/s/index"), 0);
        fx_open(&ms);
        jsi_ms_state_get(ms, &b);
        lost_str(ms, lb, sizeof lb);
        ck_assert_str_eq(lb, la);
        ck_assert_msg(b.first == a.first, "open %d: first %" PRIu64
                      ", want %" PRIu64, i, b.first, a.first);
        ck_assert_uint_eq(b.msgs, a.msgs);
        ck_assert_uint_eq(b.last, a.last);
        ck_assert_int_eq(jsi_ms_close(ms), 0);
    }
}
END_TEST

START_TEST(torn_end_of_a_block_that_becomes_the_last_is_cut_off) {
    static uint8_t recs[1024], whole[512], payload[360];
    jsi_ms *ms = NULL;
    jsi_ms_state st;
    jsi_rec r;
    uint64_t seq;
    /* Block 1: messages 1 to 3, then message 4 cut short by a crash (its
     * payload held what reads as a whole record of 5). Block 2: a file
     * whose header the crash cut short. */
    size_t n = 0;
    for (uint64_t q = 1; q <= 3; q++)
        n += jsi_rec_encode_msg(recs + n, q, 1, 0, "a", 1, NULL, 0, "x", 1);
    size_t k = jsi_rec_encode_msg(payload + 60, 5, 1, 0, "a", 1, NULL, 0,
                                  "5", 1);
    ck_assert_uint_lt(k + 60, sizeof payload);
    size_t w = jsi_rec_encode_msg(whole, 4, 1, 0, "a", 1, NULL, 0, payload,
                                  sizeof payload);
    memcpy(recs + n, whole, w - 50);
    n += w - 50;
    put_block(fx_vfs, 1, recs, n);
    js_vfs_file *f = NULL;
    ck_assert_int_eq(jsi_vfs_open(fx_vfs, "/s/0000000000000002.blk",
                                  JS_VFS_WRITE | JS_VFS_CREATE, &f), 0);
    ck_assert_int_eq(f->io->write(f, "JSBLK", 5, 0), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    fx_open(&ms);
    ck_assert_uint_eq(jsi_ms_msgs(ms), 3);
    /* Appended to block 1, the last block now. */
    ck_assert_int_eq(jsi_ms_append(ms, "a", 1, NULL, 0, "y", 1, 1, 0, &seq),
                     0);
    ck_assert_uint_eq(seq, 4);
    ck_assert_int_eq(jsi_ms_close(ms), 0);
    for (int i = 0; i < 2; i++) { /* with the checkpoint, then without */
        if (i)
            ck_assert_int_eq(fx_vfs->remove(fx_vfs, "/s/index"), 0);
        fx_open(&ms);
        jsi_ms_state_get(ms, &st);
        ck_assert_msg(st.msgs == 4 && st.last == 4, "open %d: %" PRIu64
                      " messages, last %" PRIu64, i, st.msgs, st.last);
        ck_assert_int_eq(jsi_ms_load(ms, 4, &r), 0);
        ck_assert_int_eq((int)r.dlen, 1);
        ck_assert_int_eq(r.data[0], 'y');
        ck_assert_int_eq(jsi_ms_close(ms), 0);
    }
}
END_TEST

START_TEST(stored_consumer_config_without_durable_name_is_skipped) {
    js_vfs *vfs = jsi_vfs_mem_new();
    js_open_opts o = JS_OPEN_OPTS_INIT;
    js_stream_config sc = JS_STREAM_CONFIG_INIT;
    js_consumer_config in = JS_CONSUMER_CONFIG_INIT;
    js_store *st;
    js_stream *s;
    js_vfs_file *f = NULL;
    jsi_ccfg c;
    jsi_buf b = {0};
    size_t count = 9;
    char **names;
    vfs->name = "regress-cfg";
    ck_assert_int_eq(js_vfs_register(vfs, 0), 0);
    o.vfs = vfs->name;
    sc.name = "S";
    ck_assert_int_eq(js_open("/st", &o, &st), 0);
    ck_assert_int_eq(js_stream_add(st, &sc, NULL), 0);
    ck_assert_int_eq(js_close(st), 0);
    /* A config file, checksum intact, of a consumer that is not durable. */
    in.name = "eph";
    ck_assert_int_eq(jsi_ccfg_import(&in, &c), 0);
    ck_assert_int_eq(jsi_ccfg_normalize(&c, NULL), 0);
    ck_assert_int_eq(jsi_ccfg_file_encode(1, 1, &c, &b), 0);
    ck_assert_int_eq(jsi_vfs_mkdirs(vfs, "/st/streams/0000000000000001/"
                                         "consumers"), 0);
    ck_assert_int_eq(jsi_vfs_open(vfs, "/st/streams/0000000000000001/"
                                       "consumers/0000000000000001.cfg",
                                  JS_VFS_WRITE | JS_VFS_CREATE, &f), 0);
    ck_assert_int_eq(f->io->write(f, b.p, b.len, 0), 0);
    ck_assert_int_eq(jsi_vfs_close(f), 0);
    /* The open loses that consumer, never the stream or the store. */
    ck_assert_int_eq(js_open("/st", &o, &st), 0);
    ck_assert_int_eq(js_stream_lookup(st, "S", &s), 0);
    ck_assert_int_eq(js_consumer_names(s, &names, &count), 0);
    ck_assert_uint_eq(count, 0);
    js_names_free(names);
    js_stream_release(s);
    ck_assert_int_eq(js_close(st), 0);
    jsi_ccfg_free(&c);
    jsi_buf_free(&b);
    js_vfs_unregister(vfs);
    jsi_vfs_mem_free(vfs);
}
END_TEST

/* ---- found by the power-cut battery ------------------------------------- */

static size_t history_len(js_kv *kv, const char *key) {
    struct js_kv_entry **h = NULL;
    size_t n = 0;
    int rc = js_kv_history(kv, key, &h, &n);
    ck_assert_msg(rc == 0 || rc == JS_EKEY_NOT_FOUND, "history: %s",
                  js_strerror(rc));
    js_kv_history_free(h, n);
    return n;
}

/*
 * A value and its delete marker; purge_deletes fails on its sync (the
 * removal is done in memory, not on the disk). A retry finds no marker
 * left: it must still fail (JS_EFAILED, as every change after a failed
 * sync), since the power cut that follows brings the marker and the value
 * back.
 */
START_TEST(purge_deletes_retried_after_a_failed_sync_is_refused) {
    char *dir = new_store_dir("pd");
    char *grave = tu_path("%s/.grave-pd", base_dir);
    simfs *sim = sim_new("regress-simfs", grave);
    js_open_opts o = JS_OPEN_OPTS_INIT;
    js_kv_config c = JS_KV_CONFIG_INIT;
    js_store *st;
    js_kv *kv;
    uint64_t n = 99;
    o.vfs = sim->name;
    c.bucket = "b";
    c.history = 5;
    ck_assert_int_eq(js_open(dir, &o, &st), 0);
    ck_assert_int_eq(js_kv_create(st, &c, &kv), 0);
    ck_assert_int_eq(js_kv_put(kv, "k", "v", 1, NULL), 0);
    ck_assert_int_eq(js_kv_delete_key(kv, "k", 0), 0);
    sim_fault(sim, SIM_F_SYNC, 1, JS_EIO, 0); /* the next sync, once */
    ck_assert_int_eq(js_kv_purge_deletes(kv, -1, &n), JS_EIO);
    ck_assert_uint_eq(history_len(kv, "k"), 0); /* gone from memory */
    ck_assert_int_eq(js_kv_purge_deletes(kv, -1, &n), JS_EFAILED);
    ck_assert_uint_eq(n, 0);
    js_kv_release(kv);
    (void)js_close(st);
    sim_power_fail(sim, SIM_DROP, 1);
    o.vfs = NULL;
    ck_assert_int_eq(js_open(dir, &o, &st), 0);
    ck_assert_int_eq(js_kv_open(st, "b", &kv), 0);
    ck_assert_uint_eq(history_len(kv, "k"), 2); /* value and marker */
    js_kv_release(kv);
    ck_assert_int_eq(js_close(st), 0);
    sim_free(sim);
    free(grave);
    free(dir);
}
END_TEST

static Suite *review_suite(void) {
    Suite *s = suite_create("regressions");
    TCase *t = tcase_create("recovery");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, erase_after_checkpoint_is_counted_as_removed_after_crash);
    tcase_add_test(t,
                   purge_below_an_erased_first_message_stays_purged_after_crash);
    suite_add_tcase(s, t);
    t = tcase_create("durability");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, none_flush_and_close_sync_every_block_file);
    suite_add_tcase(s, t);
    t = tcase_create("concurrency");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, erase_in_unadopted_tail_is_not_moved_by_concurrent_publish);
    suite_add_tcase(s, t);
    t = tcase_create("blocks");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, a_record_as_large_as_a_block_fits_the_block_it_starts);
    suite_add_tcase(s, t);
    t = tcase_create("fuzz");
    tcase_add_checked_fixture(t, fx_setup, fx_teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, misplaced_record_never_hides_later_messages);
    tcase_add_test(t, stray_copy_of_a_sequence_never_replaces_it);
    tcase_add_test(t, block_load_allocates_no_more_than_the_file_holds);
    tcase_add_test(t, dead_blocks_dropped_at_open_leave_a_front_record);
    tcase_add_test(t, cutting_a_torn_tail_never_drops_a_counted_message);
    tcase_add_test(t, last_message_steps_over_long_gaps_at_once);
    tcase_add_test(t, message_after_a_lost_stretch_survives_a_rebuild);
    tcase_add_test(t, stored_consumer_config_without_durable_name_is_skipped);
    tcase_add_test(t, stray_record_below_the_front_never_moves_a_block_start);
    tcase_add_test(t, dead_block_stays_while_the_next_front_record_is_damaged);
    tcase_add_test(t,
                   dead_block_stays_while_the_next_one_holds_a_stray_it_explains);
    tcase_add_test(t, no_dead_block_goes_while_a_later_one_holds_a_stray);
    tcase_add_test(
        t, removed_sequence_in_a_lost_stretch_stays_removed_after_its_block_goes);
    tcase_add_test(
        t, stray_copy_of_a_lost_sequence_stays_lost_after_older_blocks_go);
    tcase_add_test(
        t, first_removed_over_a_lost_stretch_stays_after_older_blocks_go);
    tcase_add_test(t, torn_end_of_a_block_that_becomes_the_last_is_cut_off);
    suite_add_tcase(s, t);
    t = tcase_create("powercut");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, purge_deletes_retried_after_a_failed_sync_is_refused);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    base_dir = tu_mkdtemp("test_regressions");
    int failed = tu_run_suite(review_suite());
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed == 0 ? 0 : 1;
}
