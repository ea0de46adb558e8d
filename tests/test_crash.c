/*
 * test_crash.c - real process crashes. A child process opens the store
 * with JS_SYNC_ALWAYS and works on it (publishes, batches and, in some
 * iterations, deletes and purges), telling the parent over a pipe what it
 * is about to do and, after each call returns, what was acknowledged. The
 * parent SIGKILLs it at a random moment (seeded; from 0 to a few ms, so
 * some kills land inside js_open's own recovery), reopens the store and
 * checks it against a model built from the pipe:
 *
 *   - every acknowledged message is there, byte for byte, at the
 *     sequence its ack gave;
 *   - nothing whose removal was acknowledged came back;
 *   - sequences are never given out twice and grow with each publisher's
 *     order;
 *   - any message not acknowledged is one whose publish was in flight at
 *     the kill (no message exists that was never published);
 *   - nothing is reported lost, the state (msgs, bytes, first, last,
 *     subjects) matches the messages, and publishing continues.
 *
 * The store carries over from one iteration to the next, so each child also
 * recovers what the previous kill left. CRASH_ITERS sets the number of
 * iterations of each test (default 150).
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "jetstream.h"
#include "testutil_fs.h"
#include "runner.h"

static char *base_dir; /* removed by main() */

#define STREAM "C"
#define PARENT_THREAD 255 /* the publisher id of the parent's messages */
#define MAX_THREADS 4
#define CHILD_SECONDS 3 /* a child never outlives this, killed or not */

/* ---- messages: self-describing payloads -------------------------------- */

/* A message is identified by who published it: the iteration, the
 * publisher (a child thread, or the parent) and that publisher's counter.
 * Its subject and payload follow from the id, and the payload starts with
 * the id, so any message found can be traced to the publish that made it. */
typedef struct mid {
    uint32_t iter;
    uint32_t thread;
    uint64_t k;
} mid;

#define MSG_MAGIC 0x48535243u /* "CRSH" */
#define MSG_HDR 24
#define MSG_MAX (MSG_HDR + 256)

static uint64_t mid_seed(mid id) {
    return ((uint64_t)id.iter << 40) ^ ((uint64_t)id.thread << 32) ^
           (id.k * UINT64_C(0x9E3779B97F4A7C15));
}

static void msg_subject(mid id, char *subj, size_t n) {
    snprintf(subj, n, "crash.t%u.s%u", id.thread, (unsigned)(id.k % 3));
}

/* Build the payload of message id into buf (MSG_MAX bytes); its length. */
static size_t msg_payload(mid id, uint8_t *buf) {
    uint64_t st = mid_seed(id);
    size_t len = MSG_HDR + (size_t)(tu_rng(&st) % 200);
    uint32_t w[2] = {MSG_MAGIC, id.iter};
    memcpy(buf, w, 8);
    memcpy(buf + 8, &id.thread, 4);
    memcpy(buf + 12, &id.k, 8);
    uint32_t l32 = (uint32_t)len;
    memcpy(buf + 20, &l32, 4);
    for (size_t i = MSG_HDR; i < len; i += 8) {
        uint64_t v = tu_rng(&st);
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
    return len;
}

/* 1 if msg is exactly a message this test published; *id gets its id. */
static int msg_decode(const js_msg *msg, mid *id) {
    size_t len;
    const uint8_t *d = js_msg_data(msg, &len);
    uint8_t want[MSG_MAX];
    char subj[64];
    uint32_t magic;
    size_t hl;
    if (len < MSG_HDR)
        return 0;
    memcpy(&magic, d, 4);
    memcpy(&id->iter, d + 4, 4);
    memcpy(&id->thread, d + 8, 4);
    memcpy(&id->k, d + 12, 8);
    if (magic != MSG_MAGIC)
        return 0;
    msg_subject(*id, subj, sizeof subj);
    return msg_payload(*id, want) == len && memcmp(want, d, len) == 0 &&
           strcmp(js_msg_subject(msg), subj) == 0 &&
           js_msg_headers(msg, &hl) == NULL && hl == 0;
}

static int mid_eq(mid a, mid b) {
    return a.iter == b.iter && a.thread == b.thread && a.k == b.k;
}

static uint64_t msg_bytes(mid id) {
    uint8_t buf[MSG_MAX];
    char subj[64];
    msg_subject(id, subj, sizeof subj);
    return 40u + strlen(subj) + msg_payload(id, buf);
}

/* ---- the pipe ----------------------------------------------------------- */

enum { R_OPENED = 1, R_OPEN_FAILED, R_INTENT, R_ACK };
enum { OP_PUB = 1, OP_BATCH, OP_DEL, OP_PURGE_BELOW, OP_PURGE_SUBJ };

/* One record; 40 bytes, so each write(2) to the pipe is atomic. */
typedef struct prec {
    uint8_t kind, op, thread, pad;
    int32_t rc;
    uint64_t k;   /* PUB: the counter; BATCH: the message's counter */
    uint64_t arg; /* DEL: seq; PURGE_BELOW: below; PURGE_SUBJ: subject
                     number | keep << 8; BATCH intent: count */
    uint64_t seq; /* PUB/BATCH ack: the sequence; PURGE ack: purged */
} prec;

typedef struct child_ctx {
    const char *dir;
    uint32_t iter;
    uint64_t seed;
    int threads;
    int removals; /* this iteration also deletes and purges */
    int fd;
    js_store *st;
    js_stream *s;
    double deadline;
} child_ctx;

static void put(int fd, const prec *r) {
    if (write(fd, r, sizeof *r) != (ssize_t)sizeof *r)
        _exit(7); /* the parent is gone */
}

/* ---- the child ---------------------------------------------------------- */

static void child_pub(child_ctx *c, int thread, uint64_t *k, uint64_t *rng) {
    uint8_t buf[MSG_MAX];
    char subj[64];
    int batch = tu_rng(rng) % 8 == 0;
    if (!batch) {
        mid id = {c->iter, (uint32_t)thread, (*k)++};
        msg_subject(id, subj, sizeof subj);
        size_t len = msg_payload(id, buf);
        prec r = {R_INTENT, OP_PUB, (uint8_t)thread, 0, 0, id.k, 0, 0};
        js_pub_ack ack = JS_PUB_ACK_INIT;
        put(c->fd, &r);
        r.kind = R_ACK;
        r.rc = js_publish(c->st, subj, NULL, 0, buf, len, &ack);
        r.seq = ack.seq;
        put(c->fd, &r);
        return;
    }
    enum { NB = 6 };
    size_t n = 2 + (size_t)(tu_rng(rng) % (NB - 1)), done = 0;
    uint8_t bufs[NB][MSG_MAX];
    char subjs[NB][64];
    js_pub_msg m[NB];
    js_pub_ack acks[NB];
    uint64_t k0 = *k;
    for (size_t i = 0; i < n; i++) {
        mid id = {c->iter, (uint32_t)thread, (*k)++};
        msg_subject(id, subjs[i], sizeof subjs[i]);
        m[i] = (js_pub_msg){subjs[i], NULL, 0, bufs[i],
                            msg_payload(id, bufs[i])};
        acks[i] = (js_pub_ack)JS_PUB_ACK_INIT;
    }
    prec r = {R_INTENT, OP_BATCH, (uint8_t)thread, 0, 0, k0, n, 0};
    put(c->fd, &r);
    int rc = js_publish_batch(c->st, m, n, acks, &done);
    for (size_t i = 0; i < done; i++) {
        prec a = {R_ACK, OP_BATCH, (uint8_t)thread, 0, 0, k0 + i, n, 0};
        a.seq = acks[i].seq;
        put(c->fd, &a);
    }
    if (rc) { /* reported, so the parent fails the iteration */
        prec a = {R_ACK, OP_BATCH, (uint8_t)thread, 0, rc, k0 + done, n, 0};
        put(c->fd, &a);
    }
}

static void child_remove(child_ctx *c, uint64_t *rng) {
    struct js_stream_info *info = NULL;
    if (js_stream_info(c->s, &info) != 0)
        _exit(8);
    uint64_t first = info->state->first_seq, last = info->state->last_seq;
    uint64_t msgs = info->state->msgs;
    js_stream_info_free(info);
    if (last < first)
        return;
    unsigned pick = (unsigned)(tu_rng(rng) % 10);
    prec r = {R_INTENT, 0, 0, 0, 0, 0, 0, 0};
    if (pick < 7) {
        r.op = OP_DEL;
        r.arg = first + tu_rng(rng) % (last - first + 1);
        put(c->fd, &r);
        r.rc = js_msg_delete(c->s, r.arg);
    } else {
        js_purge_opts o = JS_PURGE_OPTS_INIT;
        uint64_t purged = 0;
        char subj[64];
        if (pick < 9) { /* a few of the oldest */
            r.op = OP_PURGE_BELOW;
            r.arg = first + 1 + tu_rng(rng) % (msgs / 8 + 2);
            o.seq = r.arg;
        } else { /* one subject, keeping its newest 0..2 */
            r.op = OP_PURGE_SUBJ;
            uint64_t sn = tu_rng(rng) % 3, keep = tu_rng(rng) % 3;
            r.arg = sn | keep << 8;
            snprintf(subj, sizeof subj, "crash.t0.s%u", (unsigned)sn);
            o.filter = subj;
            o.keep = keep;
        }
        put(c->fd, &r);
        r.rc = js_stream_purge(c->s, &o, &purged);
        r.seq = purged;
    }
    r.kind = R_ACK;
    put(c->fd, &r);
}

typedef struct thr_arg {
    child_ctx *c;
    int thread;
} thr_arg;

static void *child_thread(void *p) {
    thr_arg *a = p;
    uint64_t rng = a->c->seed ^ (uint64_t)(a->thread + 1) * 0x51ed27;
    uint64_t k = 0;
    while (tu_now() < a->c->deadline) {
        if (a->c->removals && tu_rng(&rng) % 100 < 35)
            child_remove(a->c, &rng);
        else
            child_pub(a->c, a->thread, &k, &rng);
    }
    return NULL;
}

static void child_main(child_ctx *c) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.sync = JS_SYNC_ALWAYS;
    o.block_size = 4096;
    c->deadline = tu_now() + CHILD_SECONDS;
    int rc = js_open(c->dir, &o, &c->st);
    if (rc == 0)
        rc = js_stream_lookup(c->st, STREAM, &c->s);
    prec r = {rc ? R_OPEN_FAILED : R_OPENED, 0, 0, 0, rc, 0, 0, 0};
    put(c->fd, &r);
    if (rc)
        _exit(3);
    if (c->threads == 1) {
        thr_arg a = {c, 0};
        child_thread(&a);
    } else {
        pthread_t t[MAX_THREADS];
        thr_arg a[MAX_THREADS];
        for (int i = 0; i < c->threads; i++) {
            a[i] = (thr_arg){c, i};
            if (pthread_create(&t[i], NULL, child_thread, &a[i]) != 0)
                _exit(9);
        }
        for (int i = 0; i < c->threads; i++)
            pthread_join(t[i], NULL);
    }
    _exit(0); /* no close: as abrupt as a kill */
}

/* ---- the parent's model ------------------------------------------------- */

enum { S_NONE = 0, S_PRESENT, S_ABSENT, S_EITHER };

typedef struct slot {
    uint8_t st;
    mid id;
} slot;

typedef struct model {
    slot *v;
    uint64_t cap;
    uint64_t max_seq;              /* highest sequence acknowledged/seen */
    uint64_t base_last;            /* the store's last at iteration start */
    uint64_t thr_seq[MAX_THREADS]; /* each publisher's last acked seq */
    mid pending[64];               /* publishes in flight at the kill */
    int npending;
    /* totals for the summary */
    uint64_t acked, deletes, purges, inflight_found, inflight_gone;
    uint64_t kills_in_open, either_kept, either_gone;
    double max_open;
    char err[512];
    unsigned fail_iter, fail_delay;
    int fail_after_open;
} model;

static slot *slot_at(model *m, uint64_t seq) {
    if (seq >= m->cap) {
        uint64_t ncap = m->cap ? m->cap : 4096;
        while (ncap <= seq)
            ncap *= 2;
        m->v = realloc(m->v, ncap * sizeof *m->v);
        ck_assert_ptr_nonnull(m->v);
        memset(m->v + m->cap, 0, (ncap - m->cap) * sizeof *m->v);
        m->cap = ncap;
    }
    return &m->v[seq];
}

#define MFAIL(m, ...)                                               \
    do {                                                            \
        if (!(m)->err[0])                                           \
            snprintf((m)->err, sizeof (m)->err, __VA_ARGS__);       \
    } while (0)

static void note_ack(model *m, mid id, uint64_t seq) {
    slot *sl = slot_at(m, seq);
    if (sl->st != S_NONE || seq <= m->base_last)
        MFAIL(m, "ack of sequence %" PRIu64 " (thread %u k %" PRIu64
              ") reuses a sequence given out before", seq, id.thread, id.k);
    if (id.thread < MAX_THREADS && seq <= m->thr_seq[id.thread])
        MFAIL(m, "thread %u: ack of sequence %" PRIu64 " after %" PRIu64,
              id.thread, seq, m->thr_seq[id.thread]);
    if (id.thread < MAX_THREADS)
        m->thr_seq[id.thread] = seq;
    sl->st = S_PRESENT;
    sl->id = id;
    if (seq > m->max_seq)
        m->max_seq = seq;
    m->acked++;
    for (int i = 0; i < m->npending; i++)
        if (mid_eq(m->pending[i], id)) {
            m->pending[i] = m->pending[--m->npending];
            break;
        }
}

static void add_pending(model *m, mid id) {
    if (m->npending < (int)(sizeof m->pending / sizeof m->pending[0]))
        m->pending[m->npending++] = id;
    else
        MFAIL(m, "too many publishes in flight");
}

/* The present messages a purge takes, as the engine must choose them. */
static uint64_t purge_set(model *m, int op, uint64_t arg, int mark) {
    uint64_t n = 0, matching = 0, keep = 0;
    char want[64] = "";
    if (op == OP_PURGE_SUBJ) {
        snprintf(want, sizeof want, "crash.t0.s%u", (unsigned)(arg & 0xff));
        keep = arg >> 8;
    }
    for (uint64_t s = 1; s <= m->max_seq; s++) {
        slot *sl = slot_at(m, s);
        char subj[64];
        if (sl->st != S_PRESENT)
            continue;
        msg_subject(sl->id, subj, sizeof subj);
        if (op == OP_PURGE_BELOW ? s < arg : strcmp(subj, want) == 0)
            matching++;
    }
    uint64_t drop = matching > keep ? matching - keep : 0;
    for (uint64_t s = 1; s <= m->max_seq && n < drop; s++) {
        slot *sl = slot_at(m, s);
        char subj[64];
        if (sl->st != S_PRESENT)
            continue;
        msg_subject(sl->id, subj, sizeof subj);
        if (op == OP_PURGE_BELOW ? s >= arg : strcmp(subj, want) != 0)
            continue;
        if (mark)
            sl->st = mark;
        n++;
    }
    return n;
}

/* Apply what the child reported, in order. */
static void apply_log(model *m, const prec *r, size_t n, uint32_t iter,
                      int *opened) {
    const prec *open_op[MAX_THREADS] = {NULL};
    *opened = 0;
    for (size_t i = 0; i < n; i++) {
        const prec *p = &r[i];
        mid id = {iter, p->thread, p->k};
        if (p->kind == R_OPENED) {
            *opened = 1;
        } else if (p->kind == R_OPEN_FAILED) {
            MFAIL(m, "the child's js_open failed: %s", js_strerror(p->rc));
        } else if (p->kind == R_INTENT) {
            if (p->thread >= MAX_THREADS) {
                MFAIL(m, "bad pipe record");
                continue;
            }
            if (p->op == OP_PUB)
                add_pending(m, id);
            else if (p->op == OP_BATCH)
                for (uint64_t j = 0; j < p->arg; j++)
                    add_pending(m, (mid){iter, p->thread, p->k + j});
            else
                open_op[p->thread] = p;
        } else if (p->kind == R_ACK) {
            if (p->op == OP_PUB || p->op == OP_BATCH) {
                if (p->rc)
                    MFAIL(m, "publish (thread %u k %" PRIu64 ") failed: %s",
                          p->thread, p->k, js_strerror(p->rc));
                else
                    note_ack(m, id, p->seq);
                continue;
            }
            open_op[p->thread] = NULL;
            if (p->op == OP_DEL) {
                slot *sl = slot_at(m, p->arg);
                if (p->rc == 0 && sl->st != S_PRESENT)
                    MFAIL(m, "delete of %" PRIu64 " succeeded but the model "
                          "has no message there", p->arg);
                else if (p->rc == JS_EMSG_NOT_FOUND && sl->st == S_PRESENT)
                    MFAIL(m, "delete of %" PRIu64 ": not found, but message "
                          "(thread %u k %" PRIu64 ") is there", p->arg,
                          sl->id.thread, sl->id.k);
                else if (p->rc && p->rc != JS_EMSG_NOT_FOUND)
                    MFAIL(m, "delete of %" PRIu64 ": %s", p->arg,
                          js_strerror(p->rc));
                if (p->rc == 0) {
                    sl->st = S_ABSENT;
                    m->deletes++;
                }
            } else {
                if (p->rc)
                    MFAIL(m, "purge: %s", js_strerror(p->rc));
                uint64_t want = purge_set(m, p->op, p->arg, 0);
                if (p->rc == 0 && want != p->seq)
                    MFAIL(m, "purge (op %d arg %" PRIu64 ") removed %" PRIu64
                          ", the model says %" PRIu64, p->op, p->arg, p->seq,
                          want);
                purge_set(m, p->op, p->arg, S_ABSENT);
                m->purges++;
            }
        }
    }
    /* Removals in flight at the kill: done or not, each message either. */
    for (int t = 0; t < MAX_THREADS; t++) {
        const prec *p = open_op[t];
        if (!p)
            continue;
        if (p->op == OP_DEL) {
            slot *sl = slot_at(m, p->arg);
            if (sl->st == S_PRESENT)
                sl->st = S_EITHER;
        } else {
            purge_set(m, p->op, p->arg, S_EITHER);
        }
    }
}

/* Check the reopened store against the model, then make the model exact
 * (in-flight outcomes resolved). */
static void verify(model *m, js_stream *s, const char *when) {
    struct js_stream_info *info = NULL;
    int rc = js_stream_info(s, &info);
    if (rc) {
        MFAIL(m, "%s: info: %s", when, js_strerror(rc));
        return;
    }
    js_stream_state st = *info->state;
    js_stream_info_free(info);
    if (st.lost_msgs)
        MFAIL(m, "%s: %" PRIu64 " messages reported lost after a process "
              "crash", when, st.lost_msgs);
    if (st.last_seq < m->max_seq)
        MFAIL(m, "%s: last sequence %" PRIu64 " below the acknowledged %"
              PRIu64, when, st.last_seq, m->max_seq);
    uint64_t hi = (st.last_seq > m->max_seq ? st.last_seq : m->max_seq) + 3;
    uint64_t msgs = 0, bytes = 0, first = 0, subjects = 0;
    /* Each publisher's last message so far, in sequence order. */
    mid prev[MAX_THREADS + 1];
    int have[MAX_THREADS + 1] = {0};
    int seen_subj[MAX_THREADS + 1][3];
    memset(seen_subj, 0, sizeof seen_subj);
    for (uint64_t q = 1; q <= hi && !m->err[0]; q++) {
        js_msg *msg = NULL;
        mid id;
        slot *sl = slot_at(m, q);
        rc = js_msg_get(s, q, &msg);
        int intact = rc == 0 && msg_decode(msg, &id);
        js_msg_free(msg);
        if (rc && rc != JS_EMSG_NOT_FOUND) {
            MFAIL(m, "%s: get %" PRIu64 ": %s (%s)", when, q, js_strerror(rc),
                  js_errmsg());
            break;
        }
        if (rc == 0 && !intact) {
            MFAIL(m, "%s: message %" PRIu64 " is not one this test "
                  "published (damaged or foreign)", when, q);
            break;
        }
        switch (sl->st) {
        case S_PRESENT:
            if (rc)
                MFAIL(m, "%s: acknowledged message %" PRIu64 " (iter %u "
                      "thread %u k %" PRIu64 ") is missing", when, q,
                      sl->id.iter, sl->id.thread, sl->id.k);
            else if (!mid_eq(id, sl->id))
                MFAIL(m, "%s: message %" PRIu64 " is (iter %u thread %u k %"
                      PRIu64 "), acknowledged as (iter %u thread %u k %"
                      PRIu64 ")", when, q, id.iter, id.thread, id.k,
                      sl->id.iter, sl->id.thread, sl->id.k);
            break;
        case S_ABSENT:
            if (rc == 0)
                MFAIL(m, "%s: message %" PRIu64 " (thread %u k %" PRIu64
                      ") came back after its removal or was never "
                      "acknowledged", when, q, id.thread, id.k);
            break;
        case S_EITHER:
            if (rc == 0 && !mid_eq(id, sl->id))
                MFAIL(m, "%s: message %" PRIu64 " changed under an "
                      "unfinished removal", when, q);
            if (rc == 0)
                m->either_kept++;
            else
                m->either_gone++;
            sl->st = rc == 0 ? S_PRESENT : S_ABSENT;
            break;
        default: /* no acknowledged message here */
            if (rc == 0) {
                int found = -1;
                for (int i = 0; i < m->npending; i++)
                    if (mid_eq(m->pending[i], id))
                        found = i;
                if (found < 0) {
                    MFAIL(m, "%s: message %" PRIu64 " (iter %u thread %u k %"
                          PRIu64 ") was never published or was "
                          "acknowledged elsewhere", when, q, id.iter,
                          id.thread, id.k);
                    break;
                }
                if (q <= m->base_last ||
                    (id.thread < MAX_THREADS && q <= m->thr_seq[id.thread]))
                    MFAIL(m, "%s: in-flight message (thread %u k %" PRIu64
                          ") at sequence %" PRIu64 ", below one given out "
                          "before it", when, id.thread, id.k, q);
                m->pending[found] = m->pending[--m->npending];
                sl->st = S_PRESENT;
                sl->id = id;
                m->inflight_found++;
            } else if (q <= st.last_seq) {
                sl->st = S_ABSENT; /* given out, not kept: never reused */
            }
            break;
        }
        if (rc == 0) {
            unsigned t = id.thread < MAX_THREADS ? id.thread : MAX_THREADS;
            if (have[t] && (id.iter < prev[t].iter ||
                            (id.iter == prev[t].iter && id.k <= prev[t].k)))
                MFAIL(m, "%s: publisher %u's messages out of order at %"
                      PRIu64, when, id.thread, q);
            have[t] = 1;
            prev[t] = id;
            msgs++;
            bytes += msg_bytes(id);
            if (!first)
                first = q;
            if (!seen_subj[t][id.k % 3]++)
                subjects++;
            if (q > m->max_seq)
                m->max_seq = q;
        }
    }
    if (m->err[0])
        return;
    if (st.last_seq > m->max_seq)
        m->max_seq = st.last_seq; /* removed or torn: never given out again */
    if (!first)
        first = st.last_seq + 1;
    if (st.msgs != msgs || st.bytes != bytes || st.first_seq != first ||
        st.num_subjects != subjects)
        MFAIL(m, "%s: state msgs %" PRIu64 " bytes %" PRIu64 " first %" PRIu64
              " subjects %" PRIu64 ", the messages say %" PRIu64 " %" PRIu64
              " %" PRIu64 " %" PRIu64,
              when, st.msgs, st.bytes, st.first_seq, st.num_subjects, msgs,
              bytes, first, subjects);
    m->inflight_gone += (uint64_t)m->npending;
    m->npending = 0;
}

/* ---- the loop ----------------------------------------------------------- */

static unsigned crash_iters(void) {
    const char *e = getenv("CRASH_ITERS");
    unsigned v = e ? (unsigned)strtoul(e, NULL, 10) : 0;
    return v ? v : 150;
}

static int parent_open(const char *dir, js_store **st, js_stream **s,
                       double *took) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.sync = JS_SYNC_ALWAYS;
    o.block_size = 4096;
    double t0 = tu_now();
    int rc = js_open(dir, &o, st);
    *took = tu_now() - t0;
    if (rc == 0)
        rc = js_stream_lookup(*st, STREAM, s);
    return rc;
}

static void parent_close(js_store *st, js_stream *s) {
    js_stream_release(s);
    int rc = js_close(st);
    ck_assert_msg(rc == 0, "js_close: %s (%s)", js_strerror(rc), js_errmsg());
}

/* Publish two messages as the parent: they take the next sequences. */
static void parent_publish(model *m, js_store *st, uint32_t iter,
                           uint64_t last) {
    for (uint64_t j = 0; j < 2 && !m->err[0]; j++) {
        mid id = {iter, PARENT_THREAD, j};
        uint8_t buf[MSG_MAX];
        char subj[64];
        js_pub_ack ack = JS_PUB_ACK_INIT;
        msg_subject(id, subj, sizeof subj);
        int rc = js_publish(st, subj, NULL, 0, buf, msg_payload(id, buf), &ack);
        if (rc)
            MFAIL(m, "parent publish after recovery: %s (%s)",
                  js_strerror(rc), js_errmsg());
        else if (ack.seq != last + 1 + j)
            MFAIL(m, "parent publish after recovery got %" PRIu64
                  ", want %" PRIu64, ack.seq, last + 1 + j);
        else {
            slot *sl = slot_at(m, ack.seq);
            sl->st = S_PRESENT;
            sl->id = id;
            if (ack.seq > m->max_seq)
                m->max_seq = ack.seq;
        }
    }
}

static void run_crashes(int threads, uint64_t seed, const char *name) {
    char *dir = tu_path("%s/%s", base_dir, name);
    unsigned iters = crash_iters();
    uint64_t rng = seed;
    model *m = calloc(1, sizeof *m);
    js_store *st;
    js_stream *s;
    double took;
    ck_assert_ptr_nonnull(m);

    /* The stream, and the first of the parent's messages. */
    {
        const char *subs[] = {"crash.>"};
        js_stream_config c = JS_STREAM_CONFIG_INIT;
        js_open_opts o = JS_OPEN_OPTS_INIT;
        o.block_size = 4096;
        c.name = STREAM;
        c.subjects = subs;
        c.num_subjects = 1;
        ck_assert_int_eq(js_open(dir, &o, &st), 0);
        ck_assert_int_eq(js_stream_add(st, &c, &s), 0);
        parent_publish(m, st, 0, 0);
        parent_close(st, s);
    }
    double t0 = tu_now();
    uint64_t kill_sum_us = 0;
    uint32_t done = 0;
    for (uint32_t iter = 1; iter <= iters && !m->err[0]; iter++) {
        done = iter;
        int fds[2];
        unsigned r = (unsigned)(tu_rng(&rng) % 100);
        /* A fifth of the kills count from the fork, 0 to 3 ms: they land
         * in the child's js_open, that is, in the middle of its recovery.
         * The rest count from the child's report that it opened the
         * store: at once, within 5 ms, or (a quarter) up to 30 ms, long
         * enough for a run of synced publishes and removals. */
        int after_open = r >= 20;
        unsigned delay_us = !after_open ? (unsigned)(tu_rng(&rng) % 3000)
                            : r < 28   ? 0
                            : r < 75   ? (unsigned)(tu_rng(&rng) % 5000)
                                       : (unsigned)(tu_rng(&rng) % 30000);
        child_ctx c = {dir, iter, tu_rng(&rng), threads,
                       threads == 1 && iter % 3 == 0, -1, NULL, NULL, 0};
        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
        m->base_last = m->max_seq;
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            c.fd = fds[1];
            child_main(&c);
        }
        close(fds[1]);
        prec first_rec;
        size_t have_first = 0;
        if (after_open) { /* wait for the child's first report */
            struct pollfd pf = {fds[0], POLLIN, 0};
            if (poll(&pf, 1, 5000) == 1 &&
                read(fds[0], &first_rec, sizeof first_rec) ==
                    (ssize_t)sizeof first_rec)
                have_first = 1;
        }
        if (delay_us)
            usleep(delay_us);
        kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        kill_sum_us += delay_us;
        /* Everything the child said before it died. */
        prec *log = NULL;
        size_t n = 0, cap = 0;
        if (have_first) {
            cap = 256;
            log = malloc(cap * sizeof *log);
            ck_assert_ptr_nonnull(log);
            log[n++] = first_rec;
        }
        for (;;) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                log = realloc(log, cap * sizeof *log);
                ck_assert_ptr_nonnull(log);
            }
            ssize_t got = read(fds[0], &log[n], sizeof *log);
            if (got <= 0)
                break;
            ck_assert_int_eq(got, (ssize_t)sizeof *log);
            n++;
        }
        close(fds[0]);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) &&
            !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            MFAIL(m, "child ended with status 0x%x", status);
        int opened;
        apply_log(m, log, n, iter, &opened);
        free(log);
        if (!opened)
            m->kills_in_open++;

        /* Recover and check. */
        int rc = parent_open(dir, &st, &s, &took);
        if (rc) {
            MFAIL(m, "reopen after the kill: %s (%s)", js_strerror(rc),
                  js_errmsg());
            break;
        }
        if (took > m->max_open)
            m->max_open = took;
        verify(m, s, "after the kill");
        struct js_stream_info *info = NULL;
        if (!m->err[0] && js_stream_info(s, &info) == 0) {
            parent_publish(m, st, iter, info->state->last_seq);
            js_stream_info_free(info);
        }
        parent_close(st, s);
        /* Every fourth time, also from the blocks alone. */
        if (!m->err[0] && iter % 4 == 0) {
            char *sdir = tu_stream_dir(dir);
            ck_assert_ptr_nonnull(sdir);
            char *ix = tu_path("%s/index", sdir);
            unlink(ix);
            free(ix);
            free(sdir);
            rc = parent_open(dir, &st, &s, &took);
            if (rc) {
                MFAIL(m, "reopen without the checkpoint: %s (%s)",
                      js_strerror(rc), js_errmsg());
                break;
            }
            verify(m, s, "full rebuild");
            parent_close(st, s);
        }
        if (m->err[0]) {
            m->fail_iter = iter;
            m->fail_delay = delay_us;
            m->fail_after_open = after_open;
        }
    }
    printf("crash (%s): %u kills in %.1f s (mean delay %.1f ms), %" PRIu64
           " kills inside js_open; %" PRIu64 " acknowledged publishes, %"
           PRIu64 " deletes, %" PRIu64 " purges; in-flight publishes found "
           "%" PRIu64 ", gone %" PRIu64 "; in-flight removals kept %" PRIu64
           ", done %" PRIu64 "; slowest recovery %.1f ms, last seq %" PRIu64
           "\n",
           name, done, tu_now() - t0, kill_sum_us / 1e3 / (done ? done : 1),
           m->kills_in_open, m->acked, m->deletes, m->purges,
           m->inflight_found, m->inflight_gone, m->either_kept,
           m->either_gone, m->max_open * 1e3, m->max_seq);
    if (m->err[0])
        printf("crash (%s): FAILED at iteration %u (kill %u us after %s): "
               "%s\n", name, m->fail_iter, m->fail_delay,
               m->fail_after_open ? "the child's open" : "fork", m->err);
    fflush(stdout);
    ck_assert_msg(!m->err[0], "iteration %u (kill %u us after %s): %s",
                  m->fail_iter, m->fail_delay,
                  m->fail_after_open ? "the child's open" : "fork", m->err);
    free(m->v);
    free(m);
    tu_rm_rf(dir);
    free(dir);
}

START_TEST(kill9_single_publisher_with_removals) {
    run_crashes(1, UINT64_C(0xC0FFEE), "single");
}
END_TEST

START_TEST(kill9_four_publisher_threads) {
    run_crashes(4, UINT64_C(0xBADCAB1E), "threads");
}
END_TEST

static Suite *crash_suite(void) {
    Suite *s = suite_create("crash");
    TCase *t = tcase_create("kill9");
    tcase_set_timeout(t, 60 + crash_iters() * 2.0);
    tcase_add_test(t, kill9_single_publisher_with_removals);
    tcase_add_test(t, kill9_four_publisher_threads);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    base_dir = tu_mkdtemp("test_crash");
    int failed = tu_run_suite(crash_suite());
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed == 0 ? 0 : 1;
}
