/*
 * consumer.c - consumer objects: creation and the starting position,
 * lookup, update, delete, listing, info, and their life across store
 * close and reopen. Delivery is in consumer_deliver.c, acks and the state
 * file in consumer_ack.c, push delivery in dispatch.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "consumer.h"
#include "store.h"
#include "subject.h"
#include "vfs.h"

#define CONSUMERS_DIR "consumers"

/* ---- references ---------------------------------------------------------- */

void jsi_consumer_ref(js_consumer *c) {
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

static void consumer_free(js_consumer *c) {
    js_stream *s = c->s;
    jsi_cslog_close(c->log);
    jsi_buf_free(&c->logbuf);
    jsi_free(c->done);
    jsi_ccfg_free(&c->cfg);
    jsi_pend_free(&c->pend);
    jsi_rs_free(&c->gaveup);
    jsi_free(c->lps);
    jsi_free(c->subs);
    jsi_free(c->name);
    pthread_cond_destroy(&c->cond);
    pthread_cond_destroy(&c->log_cond);
    c->magic = 0;
    jsi_free(c);
    jsi_stream_unref(s);
}

void jsi_consumer_unref(js_consumer *c) {
    if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
        consumer_free(c);
}

int jsi_consumer_enter(js_consumer *c) {
    jsi_err_clear();
    if (!c || c->magic != JSI_CONSUMER_MAGIC)
        return JSI_ERR(JS_EMISUSE, 0, "not a consumer handle");
    pthread_mutex_lock(&c->s->mu);
    if (c->gone || c->s->gone) {
        int closed = c->s->closed;
        pthread_mutex_unlock(&c->s->mu);
        return closed ? JSI_ERR(JS_EMISUSE, 0, "store closed")
                      : JSI_ERR(JS_ECONSUMER_NOT_FOUND, 10014,
                                "consumer not found (deleted)");
    }
    return 0;
}

/* ---- the list on the stream ---------------------------------------------- */

static js_consumer *find(js_stream *s, const char *name) {
    for (size_t i = 0; i < s->ncons; i++)
        if (strcmp(s->cons[i]->name, name) == 0)
            return s->cons[i];
    return NULL;
}

static int list_push(js_stream *s, js_consumer *c) {
    if (s->ncons == s->cons_cap) {
        size_t nc = s->cons_cap ? s->cons_cap * 2 : 4;
        js_consumer **n = jsi_realloc(s->cons, nc * sizeof *n);
        if (!n)
            return JSI_ERR(JS_ENOMEM, 0, "consumer");
        s->cons = n;
        s->cons_cap = nc;
    }
    s->cons[s->ncons++] = c;
    s->cons_gen++;
    return 0;
}

static void list_remove(js_stream *s, js_consumer *c) {
    for (size_t i = 0; i < s->ncons; i++)
        if (s->cons[i] == c) {
            s->cons[i] = s->cons[--s->ncons];
            s->cons_gen++;
            return;
        }
}

/* ---- creation -------------------------------------------------------------- */

static js_consumer *consumer_new(js_stream *s, const jsi_ccfg *cfg,
                                 const char *name) {
    js_consumer *c = jsi_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->magic = JSI_CONSUMER_MAGIC;
    c->refs = 1;
    c->s = s;
    jsi_stream_ref(s);
    /* Pull waits compute their deadline on CLOCK_MONOTONIC (wait_more). */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&c->log_cond, NULL);
    jsi_pend_init(&c->pend);
    c->name = jsi_strdup(name);
    if (!c->name || jsi_ccfg_copy(cfg, &c->cfg) != 0 ||
        jsi_ccfg_set_name(&c->cfg, name) != 0) {
        consumer_free(c);
        return NULL;
    }
    c->nfilters = jsi_ccfg_filters(&c->cfg, &c->filters);
    return c;
}

/* An 8-character name for an ephemeral consumer, unique in the stream. */
static void gen_name(js_stream *s, char out[9]) {
    static const char al[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static uint64_t counter;
    do {
        uint64_t x = jsi_monotonic_ns() ^ (uint64_t)(uintptr_t)s ^
                     (__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) *
                      UINT64_C(0x9E3779B97F4A7C15));
        for (int i = 0; i < 8; i++) {
            x ^= x >> 29;
            x *= UINT64_C(0xBF58476D1CE4E5B9);
            out[i] = al[(x >> 32) % (sizeof al - 1)];
        }
        out[8] = 0;
    } while (find(s, out));
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The last sequence of subject e that is <= end and > after (0: none). */
static uint64_t last_upto(jsi_ms *ms, jsi_sidx_entry *e, uint64_t after,
                          uint64_t end) {
    jsi_rec r;
    uint64_t seq = after + 1, best = 0;
    if (e->last <= end)
        return e->last > after ? e->last : 0;
    while (seq <= end && jsi_ms_next(ms, e->subj, seq, &r) == 0 &&
           r.seq <= end) {
        best = r.seq;
        seq = r.seq + 1;
    }
    return best;
}

/* last_per_subject: the last sequence of every matching subject up to
 * `end` and after `after`, sorted. At creation end is the stream's last
 * sequence and after 0; a reopened consumer rebuilds the rest of its list
 * from where it got to. */
typedef struct lps_walk {
    js_consumer *c;
    size_t cap;
    uint64_t after, end;
} lps_walk;

static int lps_count(jsi_sidx_entry *e, void *ctx) {
    lps_walk *w = ctx;
    w->cap += e->count != 0;
    return 0;
}

static int lps_add(jsi_sidx_entry *e, void *ctx) {
    lps_walk *w = ctx;
    js_consumer *c = w->c;
    if (!e->count || c->lps_n == w->cap)
        return 0;
    jsi_ms_subject_fix_last(c->s->ms, e); /* last_upto reads only last */
    uint64_t seq = last_upto(c->s->ms, e, w->after, w->end);
    if (seq)
        c->lps[c->lps_n++] = seq;
    return 0;
}

static int build_lps_range(js_consumer *c, uint64_t after, uint64_t end) {
    jsi_ms *ms = c->s->ms;
    lps_walk w = {c, 0, after, end};
    jsi_ms_subject_each(ms, c->filters, c->nfilters, lps_count, &w);
    c->lps = w.cap ? jsi_malloc(w.cap * sizeof *c->lps) : NULL;
    if (w.cap && !c->lps)
        return JSI_ERR(JS_ENOMEM, 0, "consumer");
    int rc = jsi_ms_subject_each(ms, c->filters, c->nfilters, lps_add, &w);
    if (rc)
        return rc;
    if (c->lps_n)
        qsort(c->lps, c->lps_n, sizeof *c->lps, cmp_u64);
    c->lps_end = c->lps_n ? end : 0;
    return 0;
}

/* The highest last sequence over the consumer's filters (0: none). */
static uint64_t last_matching(js_consumer *c) {
    jsi_ms *ms = c->s->ms;
    uint64_t best = 0;
    jsi_rec r;
    if (c->nfilters == 0)
        return jsi_ms_msgs(ms) ? jsi_ms_last_seq(ms) : 0;
    for (size_t i = 0; i < c->nfilters; i++)
        if (jsi_ms_last(ms, c->filters[i], &r) == 0 && r.seq > best)
            best = r.seq;
    return best;
}

/* Where delivery starts, as NATS's selectStartingSeqNo. */
static int start_position(js_consumer *c) {
    jsi_ms *ms = c->s->ms;
    const js_consumer_config *k = &c->cfg.c;
    uint64_t first = jsi_ms_first_seq(ms), end = jsi_ms_last_seq(ms) + 1;
    uint64_t next = first, m;
    switch (k->deliver_policy) {
    case JS_DELIVER_LAST:
        next = (m = last_matching(c)) ? m : end;
        break;
    case JS_DELIVER_NEW:
        next = end;
        break;
    case JS_DELIVER_BY_START_SEQUENCE:
        next = JSI_MIN(JSI_MAX(k->opt_start_seq, first), end);
        break;
    case JS_DELIVER_BY_START_TIME:
        next = jsi_ms_seq_from_time(ms, k->opt_start_time);
        break;
    case JS_DELIVER_LAST_PER_SUBJECT: {
        int rc = build_lps_range(c, 0, end - 1);
        if (rc)
            return rc;
        next = c->lps_n ? c->lps[0] : end;
        break;
    }
    default:
        break;
    }
    c->next_sseq = next;
    c->floor_sseq = c->dlv_sseq = next - 1;
    c->recount = 1;
    return 0;
}

/* ---- durable state ---------------------------------------------------------- */

static char *consumers_dir(js_stream *s) {
    return jsi_path_join(s->env.dir, CONSUMERS_DIR);
}

/* The state file's name; the config's two are jsi_ccfg_pair_names(). */
static void state_name(uint64_t id, char state[32]) {
    snprintf(state, 32, "%016" PRIx64 ".state", id);
}

/* A durable consumer's config is stored; its state too, unless
 * mem_storage is set (see persist_new). */
static int is_durable(const js_consumer *c) {
    return c->cfg.c.durable_name != NULL;
}

static int write_cfg(js_consumer *c) {
    char *dir = consumers_dir(c->s);
    int rc = dir ? jsi_vfs_mkdirs(c->s->env.vfs, dir) : JS_ENOMEM;
    if (rc == 0)
        rc = jsi_ccfg_pair_write(c->s->env.vfs, dir, c->id, c->created,
                                 &c->cfg);
    jsi_free(dir);
    return rc ? JSI_ERR(rc, 0, "consumer %s: writing its config", c->name)
              : 0;
}

/* The state a new consumer starts from: nothing delivered before next. */
static void state_of(const js_consumer *c, jsi_cstate *st);

static int open_log(js_consumer *c, jsi_cstate *st) {
    char sname[32];
    char *dir = consumers_dir(c->s);
    state_name(c->id, sname);
    int rc = dir ? jsi_cslog_open(c->s->env.vfs, dir, sname, st, &c->log)
                 : JS_ENOMEM;
    jsi_free(dir);
    return rc ? JSI_ERR(rc, 0, "consumer %s: opening its state", c->name)
              : 0;
}

static int persist_new(js_consumer *c) {
    jsi_cstate st, cur;
    int rc = write_cfg(c);
    if (rc || c->cfg.c.mem_storage)
        return rc;
    jsi_cstate_init(&st);
    jsi_cstate_init(&cur);
    rc = open_log(c, &st);
    state_of(c, &cur);
    if (rc == 0)
        rc = jsi_cslog_rewrite(c->log, &cur);
    jsi_cstate_free(&st);
    jsi_cstate_free(&cur);
    return rc;
}

/* The config goes first: a state file without one is an orphan that
 * the next open removes. While a copy of the config remains, so does the
 * state: a consumer that comes back (the delete failed) keeps its acks. */
static int remove_files(js_stream *s, uint64_t id) {
    char sname[32];
    char *dir = consumers_dir(s);
    if (!dir)
        return JSI_ERR(JS_ENOMEM, 0, "consumer files");
    state_name(id, sname);
    int rc = jsi_ccfg_pair_remove(s->env.vfs, dir, id);
    if (rc == 0)
        (void)jsi_cslog_remove(s->env.vfs, dir, sname);
    jsi_free(dir);
    return rc;
}

static void state_of(const js_consumer *c, jsi_cstate *st) {
    jsi_cstate_init(st);
    st->dlv_dseq = c->dseq;
    st->dlv_sseq = c->dlv_sseq;
    st->floor_dseq = c->floor_dseq;
    st->floor_sseq = c->floor_sseq;
    st->lps_end = c->lps_i < c->lps_n ? c->lps_end : 0;
}

/* ---- events ---------------------------------------------------------------- */

void jsi_consumer_event(js_consumer *c, int kind, uint64_t sseq,
                        uint64_t dseq, uint64_t deliveries,
                        const char *reason, int64_t ack_time) {
    js_event ev = {1, kind, NULL, NULL, 0, c->s->name, c->name, NULL,
                   sseq, dseq, deliveries, reason, ack_time};
    jsi_evq_emit(jsi_stream_events(c->s), &ev, jsi_stream_now(c->s));
}

/* ---- restoring a durable consumer at open ------------------------------------ */

static uint64_t count_of(const jsi_cstate *st, uint64_t sseq) {
    size_t lo = 0, hi = st->ncounts;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (st->counts[mid].sseq == sseq)
            return st->counts[mid].n;
        if (st->counts[mid].sseq < sseq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 1;
}

/* 1 if a last_per_subject consumer's list passed over this message: a
 * later one of its subject was in the stream when the consumer was made. */
static int lps_skipped(js_consumer *c, const jsi_cstate *st, const jsi_rec *r) {
    jsi_rec later;
    char subj[JS_MAX_SUBJECT_LEN + 1];
    if (!st->lps_end || r->seq > st->lps_end)
        return 0;
    memcpy(subj, r->subj, r->slen);
    subj[r->slen] = 0;
    uint64_t seq = r->seq;
    return jsi_ms_next(c->s->ms, subj, seq + 1, &later) == 0 &&
           later.seq <= st->lps_end;
}

/* Messages delivered before the crash and not done are pending again, due
 * at once: they are redelivered before anything new. */
static int restore_pending(js_consumer *c, const jsi_cstate *st, int64_t now) {
    jsi_rec r;
    uint64_t seq = st->floor_sseq + 1;
    if (c->cfg.c.ack_policy == JS_ACK_NONE)
        return 0;
    while (seq <= st->dlv_sseq &&
           jsi_ms_next_multi(c->s->ms, c->filters, c->nfilters, seq, &r) == 0 &&
           r.seq <= st->dlv_sseq) {
        seq = r.seq + 1;
        if (jsi_rs_contains(&st->acked, r.seq) || lps_skipped(c, st, &r))
            continue;
        jsi_pent *e = jsi_pend_add(&c->pend, r.seq);
        if (!e)
            return JSI_ERR(JS_ENOMEM, 0, "consumer %s", c->name);
        e->count = count_of(st, r.seq);
        if (e->count > 1)
            c->pend.redelivered++;
        e->dseq = st->floor_dseq;
        e->delivered = now;
        if (jsi_pend_schedule(&c->pend, e, now) != 0)
            return JSI_ERR(JS_ENOMEM, 0, "consumer %s", c->name);
    }
    return 0;
}

static int restore(js_consumer *c, const jsi_cstate *st) {
    uint64_t first = jsi_ms_first_seq(c->s->ms);
    uint64_t last = jsi_ms_last_seq(c->s->ms);
    c->dseq = st->dlv_dseq;
    c->floor_dseq = st->floor_dseq;
    /* A power cut (sync policy INTERVAL or NONE) may lose the stream's
     * tail while this state, written later, survived: the stream gives
     * those sequences out again, and they must not count as delivered. */
    c->dlv_sseq = JSI_MIN(st->dlv_sseq, last);
    c->floor_sseq = JSI_MIN(st->floor_sseq, last);
    c->next_sseq = JSI_MAX(c->dlv_sseq + 1, first);
    c->recount = 1;
    int rc = 0;
    if (c->cfg.c.deliver_policy == JS_DELIVER_LAST_PER_SUBJECT &&
        st->lps_end > c->dlv_sseq)
        rc = build_lps_range(c, c->dlv_sseq, JSI_MIN(st->lps_end, last));
    if (rc == 0)
        rc = restore_pending(c, st, jsi_stream_now(c->s));
    if (rc == 0)
        jsi_consumer_floor(c);
    return rc;
}

typedef struct load_ctx {
    js_stream *s;
    char *dir;
    uint64_t *ids;   /* of every config copy listed, either name */
    size_t nids, cap;
    int rc;
} load_ctx;

static int load_one(js_stream *s, const char *dir, uint64_t id) {
    jsi_ccfg cfg;
    int64_t created;
    int rc = jsi_ccfg_pair_load(s->env.vfs, dir, id, &created, &cfg);
    if (rc)
        return rc;
    js_consumer *c = consumer_new(s, &cfg, cfg.c.durable_name);
    jsi_ccfg_free(&cfg);
    if (!c)
        return JSI_ERR(JS_ENOMEM, 0, "consumer");
    c->id = id;
    c->created = created;
    jsi_cstate st;
    jsi_cstate_init(&st);
    if (c->cfg.c.mem_storage)
        rc = start_position(c);
    else if ((rc = open_log(c, &st)) == 0)
        rc = restore(c, &st);
    jsi_cstate_free(&st);
    if (rc == 0)
        rc = list_push(s, c);
    if (rc)
        jsi_consumer_unref(c);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Only collects: loading may rewrite a copy, which a listing in progress
 * might then show again. */
static int ids_cb(void *ctx, const char *name) {
    load_ctx *l = ctx;
    uint64_t id;
    if (!jsi_ccfg_pair_id(name, &id))
        return 0;
    if (l->nids == l->cap) {
        size_t ncap = l->cap ? 2 * l->cap : 8;
        uint64_t *n = jsi_realloc(l->ids, ncap * sizeof *n);
        if (!n) {
            l->rc = JSI_ERR(JS_ENOMEM, 0, "consumers");
            return 1;
        }
        l->ids = n;
        l->cap = ncap;
    }
    l->ids[l->nids++] = id;
    return 0;
}

/* Each consumer once (both copies are listed), in the order made. An id
 * whose copies cannot be read is not given out again: its files stay. */
static int load_all(load_ctx *l) {
    int rc = 0;
    if (l->nids)
        qsort(l->ids, l->nids, sizeof *l->ids, cmp_u64);
    for (size_t i = 0; i < l->nids && rc == 0; i++) {
        if (i && l->ids[i] == l->ids[i - 1])
            continue;
        l->s->next_cid = JSI_MAX(l->s->next_cid, l->ids[i] + 1);
        rc = load_one(l->s, l->dir, l->ids[i]);
        /* A damaged config loses that consumer, never the stream. */
        if (rc == JS_ECORRUPT)
            rc = 0;
    }
    return rc;
}

/* State files whose config is gone belong to deletes cut short. A
 * temporary file is a write cut short before its rename (the file it was
 * to replace still holds what it held): every consumer is loaded by now,
 * so none is being written. */
static int orphan_cb(void *ctx, const char *name) {
    load_ctx *l = ctx;
    uint64_t id;
    char sname[32];
    if (ends_with(name, ".tmp")) {
        char *path = jsi_path_join(l->dir, name);
        if (path)
            (void)l->s->env.vfs->remove(l->s->env.vfs, path);
        jsi_free(path);
        return 0;
    }
    if (!ends_with(name, ".state") || sscanf(name, "%16" SCNx64, &id) != 1)
        return 0;
    for (size_t i = 0; i < l->s->ncons; i++)
        if (l->s->cons[i]->id == id)
            return 0;
    state_name(id, sname);
    jsi_cslog_remove(l->s->env.vfs, l->dir, sname);
    return 0;
}

int jsi_consumers_load(js_stream *s) {
    load_ctx l = {s, consumers_dir(s), NULL, 0, 0, 0};
    if (!l.dir)
        return JSI_ERR(JS_ENOMEM, 0, "consumers");
    s->next_cid = JSI_MAX(s->next_cid, 1);
    int rc = jsi_vfs_exists(s->env.vfs, l.dir);
    if (rc == 1) {
        rc = s->env.vfs->list(s->env.vfs, l.dir, ids_cb, &l);
        if (rc >= 0 && l.rc)
            rc = l.rc;
        if (rc >= 0)
            rc = load_all(&l);
        if (rc == 0)
            s->env.vfs->list(s->env.vfs, l.dir, orphan_cb, &l);
    }
    jsi_free(l.ids);
    jsi_free(l.dir);
    return rc < 0 ? rc : 0;
}

/* ---- management ------------------------------------------------------------ */

static int stream_ctx(js_stream *s, jsi_ccfg_stream *ctx) {
    ctx->name = s->name;
    ctx->retention = s->cfg.c.retention;
    ctx->subjects = s->cfg.c.subjects;
    ctx->num_subjects = s->cfg.c.num_subjects;
    return 0;
}

static int check_wq(js_stream *s, const jsi_ccfg *cfg, const js_consumer *self) {
    const char *why = NULL;
    if (s->cfg.c.retention != JS_RETENTION_WORKQUEUE)
        return 0;
    for (size_t i = 0; i < s->ncons; i++) {
        js_consumer *o = s->cons[i];
        /* wq_conflict records the NATS error (10099 or 10100). */
        if (o != self && jsi_ccfg_wq_conflict(cfg, &o->cfg, &why))
            return JS_EINVAL;
    }
    return 0;
}

/* Under s->mu: create the consumer of a normalised config. */
static int add_locked(js_stream *s, const jsi_ccfg *cfg, js_consumer **out) {
    char gen[9];
    const char *name = cfg->c.name;
    js_consumer *c = name ? find(s, name) : NULL;
    if (c) {
        if (!jsi_ccfg_equal(&c->cfg, cfg))
            return JSI_ERR(JS_ECONSUMER_EXISTS, 10148,
                           "consumer already exists");
        jsi_consumer_ref(c);
        *out = c;
        return 0;
    }
    if (s->cfg.c.max_consumers > 0 &&
        s->ncons >= (uint64_t)s->cfg.c.max_consumers)
        return JSI_ERR(JS_EMAX_CONSUMERS, 10026,
                       "maximum consumers limit reached");
    int rc = check_wq(s, cfg, NULL);
    if (rc)
        return rc;
    if (!name) {
        gen_name(s, gen);
        name = gen;
    }
    if (!(c = consumer_new(s, cfg, name)))
        return JSI_ERR(JS_ENOMEM, 0, "consumer");
    c->created = jsi_stream_now(s);
    c->last_active = c->created;
    rc = start_position(c);
    if (rc == 0 && is_durable(c)) {
        c->id = s->next_cid++;
        rc = persist_new(c);
    }
    if (rc == 0)
        rc = list_push(s, c);
    if (rc) {
        if (c->id)
            (void)remove_files(s, c->id);
        jsi_consumer_unref(c);
        return rc;
    }
    jsi_consumer_event(c, JS_EVENT_CONSUMER_CREATED, 0, 0, 0, NULL, 0);
    jsi_consumer_ref(c);
    *out = c;
    return 0;
}

/* Import and normalise a caller's config against its stream. */
static int prepare(js_stream *s, const js_consumer_config *in, jsi_ccfg *c) {
    jsi_ccfg_stream ctx;
    int rc = jsi_ccfg_import(in, c);
    if (rc)
        return rc;
    stream_ctx(s, &ctx);
    if ((rc = jsi_ccfg_normalize(c, &ctx)) != 0)
        jsi_ccfg_free(c);
    return rc;
}

static void give(js_consumer *c, js_consumer **out) {
    if (out)
        *out = c;
    else
        jsi_consumer_unref(c);
}

JS_API int js_consumer_add(js_stream *s, const js_consumer_config *cfg,
                           js_consumer **out) {
    jsi_ccfg c;
    js_consumer *got = NULL;
    int rc = jsi_stream_enter(s);
    if (rc)
        return rc;
    jsi_consumers_tick(s, jsi_stream_now(s));
    if ((rc = prepare(s, cfg, &c)) == 0) {
        rc = add_locked(s, &c, &got);
        jsi_ccfg_free(&c);
    }
    pthread_mutex_unlock(&s->mu);
    jsi_evq_drain(jsi_stream_events(s));
    if (rc == 0)
        give(got, out);
    return rc;
}

/* Apply an updated config (already checked) to a live consumer. */
static int apply_update(js_consumer *c, const jsi_ccfg *nu) {
    jsi_ccfg copy;
    int rc = jsi_ccfg_copy(nu, &copy);
    if (rc)
        return JSI_ERR(rc, 0, "consumer update");
    jsi_ccfg old = c->cfg;
    c->cfg = copy;
    if (is_durable(c) && (rc = write_cfg(c)) != 0) {
        jsi_ccfg_free(&c->cfg);
        c->cfg = old;
        return rc;
    }
    jsi_ccfg_free(&old);
    c->nfilters = jsi_ccfg_filters(&c->cfg, &c->filters);
    c->recount = 1;
    pthread_cond_broadcast(&c->cond);
    return 0;
}

JS_API int js_consumer_update(js_stream *s, const js_consumer_config *cfg,
                              js_consumer **out) {
    jsi_ccfg c;
    int rc = jsi_stream_enter(s);
    js_consumer *k = NULL;
    if (rc)
        return rc;
    if ((rc = prepare(s, cfg, &c)) != 0) {
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    k = c.c.name ? find(s, c.c.name) : NULL;
    if (!k)
        rc = JSI_ERR(JS_ECONSUMER_NOT_FOUND, 10149, "consumer does not exist");
    else
        jsi_consumer_ref(k); /* the interest cleanup releases the lock */
    if (rc == 0)
        rc = jsi_ccfg_check_update(&k->cfg, &c);
    if (rc == 0 && k->nsubs &&
        strcmp(k->cfg.c.deliver_subject, c.c.deliver_subject) != 0)
        rc = JSI_ERR(JS_EBUSY, 10105, "deliver_subject: consumer %s is "
                     "bound to a subscription", k->name);
    if (rc == 0)
        rc = check_wq(s, &c, k);
    if (rc == 0 && !jsi_ccfg_equal(&k->cfg, &c) &&
        (rc = apply_update(k, &c)) == 0) {
        jsi_consumer_event(k, JS_EVENT_CONSUMER_UPDATED, 0, 0, 0, NULL, 0);
        if (s->cfg.c.retention == JS_RETENTION_INTEREST)
            rc = jsi_consumers_cleanup_interest(s, jsi_ms_first_seq(s->ms));
    }
    jsi_ccfg_free(&c);
    pthread_mutex_unlock(&s->mu);
    jsi_evq_drain(jsi_stream_events(s));
    if (rc == 0)
        give(k, out);
    else if (k)
        jsi_consumer_unref(k);
    return rc;
}

JS_API int js_consumer_lookup(js_stream *s, const char *name,
                              js_consumer **out) {
    if (out)
        *out = NULL; /* also on failure, as js_stream_lookup() */
    int rc = jsi_stream_enter(s);
    if (rc)
        return rc;
    jsi_consumers_tick(s, jsi_stream_now(s));
    js_consumer *c = name && out ? find(s, name) : NULL;
    if (!name || !out)
        rc = JSI_ERR(JS_EINVAL, 0, "name and out are required");
    else if (!c)
        rc = JSI_ERR(JS_ECONSUMER_NOT_FOUND, 10014, "consumer not found");
    else
        jsi_consumer_ref(c);
    pthread_mutex_unlock(&s->mu);
    if (rc == 0)
        *out = c;
    return rc;
}

JS_API void js_consumer_release(js_consumer *c) {
    if (c && c->magic == JSI_CONSUMER_MAGIC)
        jsi_consumer_unref(c);
}

/* Under s->mu: take c off its stream for good. The files' removal may
 * fail: the consumer is gone here, yet may come back at the next open, so
 * the failure is returned (the delete may not have happened). */
static int drop_locked(js_stream *s, js_consumer *c, int remove) {
    int rc = 0;
    list_remove(s, c);
    c->gone = 1;
    pthread_cond_broadcast(&c->cond);
    if (remove && c->id && (rc = remove_files(s, c->id)) != 0)
        rc = JSI_ERR(rc, 0, "consumer %s: removing its files", c->name);
    jsi_consumer_event(c, JS_EVENT_CONSUMER_DELETED, 0, 0, 0, NULL, 0);
    return rc;
}

int jsi_consumer_delete_locked(js_stream *s, js_consumer *c) {
    /* Our own reference: the lock is released below, and the list's may
     * go meanwhile. */
    jsi_consumer_ref(c);
    /* Wait out a state write in flight: its file is about to go. */
    while (c->log_busy)
        pthread_cond_wait(&c->log_cond, &s->mu);
    /* Another delete (or the stream's end) may have come first while the
     * lock was released: the stream's reference is dropped only once. */
    int rc = 0;
    if (c->gone) {
        rc = JSI_ERR(JS_ECONSUMER_NOT_FOUND, 10014, "consumer not found");
    } else {
        rc = drop_locked(s, c, 1);
        jsi_consumer_unref(c); /* the list's */
        if (s->cfg.c.retention == JS_RETENTION_INTEREST) {
            int crc = jsi_consumers_cleanup_interest(s, c->floor_sseq + 1);
            rc = rc ? rc : crc;
        }
    }
    jsi_consumer_unref(c);
    return rc;
}

JS_API int js_consumer_delete(js_stream *s, const char *name) {
    int rc = jsi_stream_enter(s);
    if (rc)
        return rc;
    js_consumer *c = name ? find(s, name) : NULL;
    if (!name)
        rc = JSI_ERR(JS_EINVAL, 0, "name: NULL");
    else if (!c)
        rc = JSI_ERR(JS_ECONSUMER_NOT_FOUND, 10014, "consumer not found");
    else
        rc = jsi_consumer_delete_locked(s, c);
    pthread_mutex_unlock(&s->mu);
    jsi_evq_drain(jsi_stream_events(s));
    return rc;
}

static const char *consumer_name(const void *ctx, size_t i) {
    return ((const js_stream *)ctx)->cons[i]->name;
}

JS_API int js_consumer_names(js_stream *s, char ***names, size_t *count) {
    int rc = jsi_stream_enter(s);
    if (rc)
        return rc;
    size_t n = s->ncons;
    char **v = names ? jsi_strv_sorted(n, consumer_name, s) : NULL;
    if (!names)
        rc = JSI_ERR(JS_EINVAL, 0, "names: NULL");
    else if (!v)
        rc = JSI_ERR(JS_ENOMEM, 0, "names");
    pthread_mutex_unlock(&s->mu);
    if (rc == 0) {
        *names = v;
        if (count)
            *count = n;
    }
    return rc;
}

/* ---- life with the stream ----------------------------------------------------- */

int jsi_consumers_close(js_stream *s) {
    int first = 0;
    pthread_mutex_lock(&s->mu);
    while (s->ncons) {
        js_consumer *c = s->cons[s->ncons - 1];
        jsi_consumer_ref(c); /* ours, while the lock is released */
        int rc = jsi_consumer_log_flush(c, 1);
        if (rc && !first)
            first = rc;
        while (c->log_busy)
            pthread_cond_wait(&c->log_cond, &s->mu);
        /* The lock was released: c may have been deleted meanwhile (its
         * list reference dropped), or no longer be last. */
        if (!c->gone) {
            list_remove(s, c);
            c->gone = 1;
            pthread_cond_broadcast(&c->cond);
            jsi_cslog_close(c->log);
            c->log = NULL;
            jsi_consumer_unref(c); /* the list's */
        }
        jsi_consumer_unref(c);
    }
    pthread_mutex_unlock(&s->mu);
    return first;
}

void jsi_consumers_kill(js_stream *s) {
    pthread_mutex_lock(&s->mu);
    while (s->ncons) {
        js_consumer *c = s->cons[--s->ncons];
        s->cons_gen++;
        while (c->log_busy)
            pthread_cond_wait(&c->log_cond, &s->mu);
        c->gone = 1;
        pthread_cond_broadcast(&c->cond);
        jsi_cslog_close(c->log);
        c->log = NULL;
        jsi_consumer_unref(c);
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- info ---------------------------------------------------------------------- */

/* Copying a config into one block: first sizes, then the copy. */
typedef struct packer {
    uint8_t *p; /* NULL while sizing */
    size_t n;
} packer;

static void *pack(packer *k, const void *src, size_t n, size_t align) {
    k->n = (k->n + align - 1) & ~(align - 1);
    void *dst = k->p ? k->p + k->n : NULL;
    if (dst && src)
        memcpy(dst, src, n);
    k->n += n;
    return dst;
}

static const char *pack_str(packer *k, const char *s) {
    return s ? pack(k, s, strlen(s) + 1, 1) : NULL;
}

static const char *const *pack_strv(packer *k, const char *const *v,
                                    size_t n) {
    if (!v || !n)
        return NULL;
    const char **out = pack(k, NULL, n * sizeof *out, sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        const char *s = pack_str(k, v[i]);
        if (out)
            out[i] = s;
    }
    return out;
}

static void pack_cfg(packer *k, const js_consumer_config *in,
                     js_consumer_config *out) {
    js_consumer_config c = *in;
    c.name = pack_str(k, in->name);
    c.durable_name = pack_str(k, in->durable_name);
    c.description = pack_str(k, in->description);
    c.backoff = in->num_backoff
                    ? pack(k, in->backoff, in->num_backoff * sizeof(int64_t),
                           sizeof(int64_t))
                    : NULL;
    c.filter_subject = pack_str(k, in->filter_subject);
    c.filter_subjects = pack_strv(k, in->filter_subjects,
                                  in->num_filter_subjects);
    c.sample_freq = pack_str(k, in->sample_freq);
    c.deliver_subject = pack_str(k, in->deliver_subject);
    c.deliver_group = pack_str(k, in->deliver_group);
    c.metadata = pack_strv(k, in->metadata, 2 * in->num_metadata);
    if (out)
        *out = c;
}

static struct js_consumer_info *info_alloc(js_consumer *c) {
    packer k = {NULL, 0};
    size_t head = sizeof(struct js_consumer_info) + sizeof(js_consumer_config);
    k.n = head;
    pack_str(&k, c->s->name);
    pack_cfg(&k, &c->cfg.c, NULL);
    uint8_t *m = jsi_calloc(1, k.n);
    if (!m)
        return NULL;
    struct js_consumer_info *info = (struct js_consumer_info *)m;
    js_consumer_config *cfg = (js_consumer_config *)(info + 1);
    k.p = m;
    k.n = head;
    info->stream = pack_str(&k, c->s->name);
    pack_cfg(&k, &c->cfg.c, cfg);
    info->config = cfg;
    info->name = cfg->name;
    return info;
}

JS_API int js_consumer_info(js_consumer *c, struct js_consumer_info **out) {
    if (!out) {
        jsi_err_clear();
        return JSI_ERR(JS_EINVAL, 0, "out: NULL");
    }
    int rc = jsi_consumer_enter(c);
    if (rc)
        return rc;
    struct js_consumer_info *info = info_alloc(c);
    if (!info) {
        pthread_mutex_unlock(&c->s->mu);
        return JSI_ERR(JS_ENOMEM, 0, "consumer info");
    }
    jsi_consumer_floor(c);
    info->created = c->created;
    info->delivered = (js_seq_pair){c->dseq, c->dlv_sseq, c->dlv_time};
    info->ack_floor = (js_seq_pair){c->floor_dseq, c->floor_sseq, c->ack_time};
    info->num_ack_pending = c->pend.n;
    info->num_redelivered = c->pend.redelivered;
    info->num_waiting = (uint64_t)c->waiting;
    info->num_pending = jsi_consumer_pending(c);
    info->push_bound = c->nsubs != 0;
    pthread_mutex_unlock(&c->s->mu);
    *out = info;
    return 0;
}

JS_API void js_consumer_info_free(struct js_consumer_info *info) {
    jsi_free(info);
}
