/*
 * msgstore_int.h - private structures of the message store, shared by
 * msgstore.c (append, commit, reads), msgstore_remove.c (removal, purge)
 * and msgstore_recover.c (open, recovery, checkpoints).
 */
#ifndef JSI_MSGSTORE_INT_H
#define JSI_MSGSTORE_INT_H

#include "msgstore.h"
#include "rangeset.h"
#include "record.h"
#include "util.h"

#define JSI_DEFAULT_BLOCK_SIZE (8u * 1024 * 1024)
#define JSI_MIN_BLOCK_SIZE (4u * 1024)
#define JSI_CACHE_BLOCKS 2               /* loaded non-tail blocks kept */
#define JSI_CKPT_BYTES (64u * 1024 * 1024) /* appended bytes between checkpoints */
#define JSI_NO_OFF UINT32_MAX
#define JSI_FRONT_REC_LEN (JSI_REC_HDR_LEN + 8)

/* sidx entry flag bits (jsi_sidx_entry.first_stale is used as flags). */
#define JSI_SUBJ_FIRST_STALE 1u
#define JSI_SUBJ_LAST_STALE 2u

/*
 * Per-block subject summary: how many live messages of subject `id` (a
 * jsi_sidx_entry's id) the block holds. Three 32-bit words so an array of
 * them packs to 12 bytes a pair and sorts in place.
 */
typedef struct jsi_sum_pair {
    uint32_t id_lo, id_hi, cnt;
} jsi_sum_pair;

static inline uint64_t jsi_sum_id(const jsi_sum_pair *p) {
    return (uint64_t)p->id_hi << 32 | p->id_lo;
}

#define JSI_FCACHE_SLOTS 8

/* The ids of the subjects matching a filter set, for skipping blocks in
 * filtered scans without walking the subject index each call. Ids only
 * ever get added (a new subject gets the next, largest id), so the array
 * stays sorted; ids of subjects since removed stay until the next rebuild
 * and are harmless (no block counts them). A filter set matching most
 * subjects keeps no ids ("dense"): nearly every block would match, and the
 * ids would cost as much memory as the index. */
typedef struct jsi_fcache {
    char **filters;          /* owned copies; NULL: slot unused */
    size_t nf;
    uint64_t *ids;
    size_t n, cap;
    int stale;               /* an update failed: rebuild before use */
    int dense;               /* no ids kept: scans skip no block */
    size_t built_s;          /* subjects in the index when built */
    uint64_t tick;           /* LRU */
} jsi_fcache;

/*
 * One block file. Blocks partition the sequence space: block i holds the
 * MSG records with sequences in [lo, hi]; lo of the next block is hi + 1 or
 * more. A block is "loaded" when buf holds its bytes [0, size) and offs maps
 * seq - lo to a record offset.
 */
typedef struct jsi_blk {
    uint64_t no;
    uint64_t lo, hi;        /* hi = lo - 1 while it holds no message */
    uint64_t msgs, bytes;   /* live messages and their bytes */
    int64_t first_ts, last_ts; /* of its MSG records, live or not */
    uint64_t with_ids;      /* MSG records carrying Nats-Msg-Id, ever */
    uint64_t size;          /* valid bytes */
    uint8_t *buf;           /* NULL unless loaded */
    size_t cap;
    uint32_t *offs;
    size_t noffs, offs_cap;
    uint64_t wr, sy;        /* bytes written to the file / synced */
    js_vfs_file *f;         /* open while it has unwritten or unsynced data */
    int created;            /* file exists (and its dir entry is synced) */
    uint64_t torn;          /* file size when its end was found torn */
    int tail_damaged;       /* the cut-off end began with a whole record
                               header that failed its checksum */
    int misplaced;          /* holds a whole record whose sequence cannot
                               belong here (skipped): never adopted as the
                               tail, since records appended after it could
                               make it look valid to a later open */
    int lo_open;            /* replay: lo not found yet: 1 no message
                               met, 2 only strays (msgstore_recover.c) */
    int walked;             /* all its records were walked since the open
                               (replayed or loaded), or it was made here:
                               misplaced is known */
    uint64_t tick;          /* LRU clock for the cache */
    /* Live messages per subject in this block. [0, nsorted) is sorted by
     * id; only the last block has an unsorted suffix [nsorted, nsum), the
     * subjects first appended since it was last sorted, each reachable
     * through its entry's hint. Pairs may hold a zero count. */
    jsi_sum_pair *sum;
    uint32_t nsum, nsorted, sum_cap;
} jsi_blk;

/* One unit of flush work, prepared under the lock, done outside it. */
typedef struct jsi_flush_job {
    jsi_blk *b;
    uint64_t from, to;
    int sync, create;
} jsi_flush_job;

struct jsi_ms {
    jsi_ms_cfg cfg;
    char *dir;
    pthread_mutex_t *mu;
    pthread_cond_t cond;     /* signalled when a flush ends */

    jsi_blk **blks;          /* ordered by number; the last is the tail */
    size_t nblks, blks_cap;
    uint64_t next_blkno;
    uint32_t block_size;

    uint64_t first, last, msgs, bytes;
    int64_t last_ts;
    jsi_rangeset deleted;    /* removed sequences in [first, last] */
    /* Sequences found damaged or missing by an open. Kept below the first
     * sequence too (NATS keeps its LostStreamData through purges): only
     * recovery changes the set, and LOST records in the blocks hold it
     * (msgstore_recover.c). */
    jsi_rangeset lost;
    uint64_t lost_msgs, lost_bytes;
    int lost_unlogged;       /* the lost set or bytes are not all in LOST
                                records yet: the next commit logs them */
    jsi_rangeset lost_known; /* open: lost sequences an open reported (the
                                checkpoint or a LOST record says so) */
    uint64_t lost_known_bytes;
    uint64_t lost_front_done; /* open: below it, lost holds only
                                 lost_known (msgstore_recover.c) */
    jsi_sidx *sidx;          /* subject -> entry (msgstore_subj.c) */
    struct jsi_stree *stree; /* the same entries in subject order */
    uint64_t next_sid;       /* the next subject id (ids are never reused) */
    jsi_fcache fcache[JSI_FCACHE_SLOTS];
    uint64_t fcache_tick;
    jsi_ms_removed_fn obs;   /* removal observer (NULL: none) */
    void *obs_ctx;

    /* removals not yet logged */
    jsi_rangeset pend_del;
    uint64_t pend_front;     /* 0: none */
    uint64_t rm_pos;         /* tail position after the last removal record */

    /* write pipeline: logical byte positions over all blocks */
    uint64_t apos, wpos, dpos;
    int flushing;            /* a thread owns the I/O (lock released) */
    int failed;              /* sticky error */
    int64_t last_sync;       /* monotonic ns */
    jsi_flush_job *jobs;
    size_t jobs_cap;
    uint64_t since_ckpt;
    uint64_t ckpt_size;      /* bytes of the last checkpoint written */
    int erasing;             /* erases in progress: no block is dropped */
    int ckpt_on_disk;        /* a checkpoint file exists for this store */
    uint64_t ckpt_first;     /* open: the first sequence it vouched for */
    uint64_t ckpt_last;      /* open: the last sequence a checkpoint that
                                decoded vouched for (0: none), kept when
                                the files proved it stale */
    uint64_t tick;
    size_t cached;           /* loaded non-tail blocks */
    int tail_adopted;        /* the last block is loaded with room to
                                append, and not counted in `cached` */
    uint8_t *spare;          /* an evicted block buffer kept for the next
                                tail, so a new block costs no page faults */
    size_t spare_cap;
    uint64_t *dead;          /* block files to unlink after the next
                                checkpoint (which no longer lists them) */
    size_t ndead, dead_cap;
};

/* msgstore.c */
int jsi_ms_blk_find(jsi_ms *ms, uint64_t seq);            /* index or -1 */
int jsi_ms_blk_load(jsi_ms *ms, jsi_blk *b);
int jsi_ms_rec_at(jsi_ms *ms, uint64_t seq, const uint8_t **p,
                  jsi_rechdr *h);
/* Fill r with views into the record at p (header h). */
void jsi_ms_rec_view(const uint8_t *p, const jsi_rechdr *h, jsi_rec *r);
int jsi_ms_flush(jsi_ms *ms, int sync);
/* JS_EFAILED (with the detail set) once this stream's writes or the
 * store's storage failed (vfs_guard.c): no more changes until reopened. */
int jsi_ms_refuse(const jsi_ms *ms);
int jsi_ms_own_io(jsi_ms *ms);     /* wait for and take the I/O token */
void jsi_ms_release_io(jsi_ms *ms);
jsi_blk *jsi_ms_blk_new(jsi_ms *ms, uint64_t no, uint64_t lo, size_t cap);
void jsi_ms_blk_free(jsi_blk *b);
int jsi_ms_offs_set(jsi_blk *b, uint64_t seq, uint32_t off);
char *jsi_ms_blk_path(jsi_ms *ms, uint64_t no);
int jsi_ms_append_raw(jsi_ms *ms, const uint8_t *rec, size_t len);
/* Encode a FRONT record (everything below `first` removed) into p. */
void jsi_ms_frame_front(jsi_ms *ms, uint8_t *p, uint64_t first);
/* Append to the tail the LOST records of the whole lost set (nothing if
 * nothing was ever lost). 0, JS_ENOMEM or a write refusal. */
int jsi_ms_log_lost(jsi_ms *ms);
int jsi_ms_drop_dead_blocks(jsi_ms *ms);
/* 1 if the filter matches every subject (NULL, "" or ">"). */
int jsi_ms_filter_is_all(const char *filter);
/* Evict least recently used loaded blocks beyond the cache size, never
 * `keep` (the block a caller is about to read). */
void jsi_ms_cache_trim(jsi_ms *ms, const jsi_blk *keep);

/* msgstore_recover.c */
int jsi_ms_recover(jsi_ms *ms, uint64_t first_seq);
int jsi_ms_parse_block(jsi_ms *ms, jsi_blk *b);
int jsi_ms_walk(jsi_ms *ms, jsi_blk *b, const uint8_t *buf, uint64_t base,
                size_t len, int index, int replay, size_t *valid_end);
int jsi_ms_reset_index(jsi_ms *ms);
int jsi_ms_blks_append(jsi_ms *ms, jsi_blk *b);

/* msgstore_sum.c: per-block subject summaries */
/* Room for one more pair in b (the last block), so that sum_add cannot
 * fail. 0 or JS_ENOMEM. */
int jsi_ms_sum_reserve(jsi_blk *b);
/* Count one more live message of e in b, which must be the last block. */
void jsi_ms_sum_add(jsi_blk *b, jsi_sidx_entry *e);
/* Count one fewer live message of e in b (any block). */
void jsi_ms_sum_sub(jsi_blk *b, const jsi_sidx_entry *e);
/* Live messages of e in b. */
uint32_t jsi_ms_sum_get(const jsi_blk *b, const jsi_sidx_entry *e);
/* Sort b's summary and drop zero counts; shrink its memory when b stops
 * being the last block. */
void jsi_ms_sum_seal(jsi_blk *b, int shrink);
/* Forget every block's summary (all messages are gone). */
void jsi_ms_sum_clear(jsi_ms *ms);
/* Sum of b's counts for the ids in ids[0..n) (sorted); with any, stop at
 * the first non-zero one. */
uint64_t jsi_ms_sum_of(const jsi_blk *b, const uint64_t *ids, size_t n,
                       int any);
/* 1 if id is in the sorted ids[0..n). */
int jsi_ms_ids_have(const uint64_t *ids, size_t n, uint64_t id);
/* For tests: 0 if every subject's count equals the sum of its block
 * counts and every block's counts add up to its msgs, else JS_ECORRUPT
 * with a detail. */
int jsi_ms_sum_check(jsi_ms *ms);

/* msgstore_subj.c: the subject index (hash and ordered tree together) */
/* The entry for subj, created zeroed if absent (*created = 1); NULL on
 * ENOMEM (nothing changed). */
jsi_sidx_entry *jsi_ms_subj_upsert(jsi_ms *ms, const char *subj, size_t len,
                                   int *created);
void jsi_ms_subj_remove(jsi_ms *ms, jsi_sidx_entry *e);
/* Replace the index with an empty one; JS_ENOMEM leaves it unchanged. */
int jsi_ms_subj_init(jsi_ms *ms);
void jsi_ms_subj_free(jsi_ms *ms);

/* msgstore_filter.c */
/* Give a new subject entry its id, and tell the filter caches. */
void jsi_ms_subject_new(jsi_ms *ms, jsi_sidx_entry *e);
/* Forget the filter caches' ids (the subject index was replaced). */
void jsi_ms_fcache_reset(jsi_ms *ms);
void jsi_ms_fcache_free(jsi_ms *ms);

/* msgstore_remove.c */
int jsi_ms_remove_seq(jsi_ms *ms, uint64_t seq, const jsi_rechdr *h,
                      const uint8_t *rec);
void jsi_ms_advance_first(jsi_ms *ms);

#endif
