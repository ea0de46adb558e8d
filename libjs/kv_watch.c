/*
 * kv_watch.c - watchers: an ephemeral consumer on the bucket's stream
 * (ack none; last per subject, all, or new; headers only for meta_only),
 * as NATS clients build them, read either by js_kv_watcher_next() or by a
 * subscription the dispatcher runs. The initial values of a last-per-
 * subject consumer come from the subject index, never from a scan.
 *
 * The initial values are the entries stored up to the stream's last
 * sequence when the watch began (end_seq). The marker goes before the
 * first entry past end_seq, after an entry with nothing pending behind
 * it, or as soon as the watcher finds nothing to deliver. Counting entries
 * against the initial num_pending, as NATS clients do, holds the marker
 * back for good when listed entries are removed unread while a writer
 * keeps the count above 0.
 */
#include <inttypes.h>
#include <stdio.h>

#include "consumer.h"
#include "kv.h"

#define WATCHER_MAGIC 0x4a534b57u /* "JSKW" */
/* A watcher's consumer lives until the watcher stops, however long the
 * application leaves it unread (an ephemeral's default is 5 s). */
#define WATCH_INACTIVE (INT64_C(100) * 365 * 24 * 3600 * JSI_NS_PER_SEC)

struct js_kv_watcher {
    uint32_t magic;
    js_kv *kv;
    js_consumer *c;
    js_sub *sub;          /* callback form */
    js_kv_watch_handler cb;
    void *ctx;
    js_kv_watch_opts o;
    pthread_mutex_t mu;   /* pull form: one reader at a time */
    uint64_t end_seq;     /* the last initial value's sequence, at most */
    int init_done;        /* the marker has been given (or is due) */
    int marker_due;       /* pull: the marker is owed before the next entry */
    struct js_kv_entry *held; /* pull: an entry owed after the marker */
};

static int import_opts(const js_kv_watch_opts *in, js_kv_watch_opts *o) {
    js_kv_watch_opts def = JS_KV_WATCH_OPTS_INIT;
    *o = def;
    if (!in)
        return 0;
    if (in->version != JS_KV_WATCH_OPTS_VERSION)
        return JSI_ERR(JS_EINVAL, 0, "watch opts: unknown version %u",
                       in->version);
    *o = *in;
    if (o->include_history && o->updates_only)
        return JSI_ERR(JS_EINVAL, 0, "watch opts: include_history can not be "
                       "used with updates_only");
    return 0;
}

static int make_consumer(js_kv_watcher *w, const char *filter, int push) {
    js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
    char inbox[64];
    cc.deliver_policy = w->o.updates_only      ? JS_DELIVER_NEW
                        : w->o.include_history ? JS_DELIVER_ALL
                                               : JS_DELIVER_LAST_PER_SUBJECT;
    cc.ack_policy = JS_ACK_NONE;
    cc.filter_subject = filter;
    cc.headers_only = w->o.meta_only;
    cc.inactive_threshold = WATCH_INACTIVE;
    if (push) {
        /* Unique among live watchers; kept for NATS tools and bridges. */
        snprintf(inbox, sizeof inbox, "_INBOX.kvwatch.%" PRIxPTR,
                 (uintptr_t)w);
        cc.deliver_subject = inbox;
    }
    int rc = js_consumer_add(w->kv->s, &cc, &w->c);
    if (rc)
        return rc;
    /* Read after the consumer took its snapshot: entries stored in
     * between count as initial values, which is allowed (they may come
     * before the marker); the reverse would not be. */
    if ((rc = jsi_stream_enter(w->kv->s)) != 0)
        return rc;
    w->end_seq = jsi_ms_last_seq(w->kv->s->ms);
    pthread_mutex_unlock(&w->kv->s->mu);
    return 0;
}

static void watcher_free(js_kv_watcher *w) {
    if (w->c) {
        /* The name lives as long as our reference. */
        js_consumer_delete(w->kv->s, w->c->name);
        js_consumer_release(w->c);
    }
    pthread_mutex_destroy(&w->mu);
    js_kv_entry_free(w->held);
    w->magic = 0;
    jsi_free(w);
}

static void on_msg(js_consumer *c, js_msg *m, void *ctx);

static int watch_new(js_kv *kv, const char *filter,
                     const js_kv_watch_opts *opts, js_kv_watch_handler cb,
                     void *ctx, js_kv_watcher **out) {
    char *subj = NULL;
    int rc = jsi_kv_enter(kv);
    if (rc == 0 && !out)
        rc = JSI_ERR(JS_EINVAL, 0, "out: NULL");
    js_kv_watcher *w = rc ? NULL : jsi_calloc(1, sizeof *w);
    if (rc == 0 && !w)
        rc = JSI_ERR(JS_ENOMEM, 0, "watch");
    if (rc)
        return rc;
    pthread_mutex_init(&w->mu, NULL);
    w->magic = WATCHER_MAGIC;
    w->kv = kv;
    w->cb = cb;
    w->ctx = ctx;
    rc = import_opts(opts, &w->o);
    if (rc == 0)
        rc = jsi_kv_filter(kv, filter, &subj);
    if (rc == 0)
        rc = make_consumer(w, subj, cb != NULL);
    jsi_free(subj);
    if (rc == 0 && cb)
        rc = jsi_consumer_subscribe(w->c, on_msg, w, 1, &w->sub);
    if (rc) {
        watcher_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

JS_API int js_kv_watch(js_kv *kv, const char *filter,
                       const js_kv_watch_opts *opts, js_kv_watcher **out) {
    return watch_new(kv, filter, opts, NULL, NULL, out);
}

JS_API int js_kv_watch_subscribe(js_kv *kv, const char *filter,
                                 const js_kv_watch_opts *opts,
                                 js_kv_watch_handler cb, void *ctx,
                                 js_kv_watcher **out) {
    if (!cb)
        return JSI_ERR(JS_EINVAL, 0, "cb: NULL");
    return watch_new(kv, filter, opts, cb, ctx, out);
}

enum { MARK_NONE, MARK_BEFORE, MARK_AFTER };

/* Turn a delivered message into the entry to hand out (*e NULL when
 * ignore_deletes drops it); *mark says where the marker goes, if here. */
static int take(js_kv_watcher *w, js_msg *m, struct js_kv_entry **e,
                int *mark) {
    js_msg_meta md = JS_MSG_META_INIT;
    int rc = js_msg_metadata(m, &md);
    int op = jsi_kv_entry_op(m);
    *e = NULL;
    *mark = MARK_NONE;
    if (rc == 0 && !(w->o.ignore_deletes && op != JS_KV_OP_PUT)) {
        rc = jsi_kv_make_entry(w->kv, js_msg_subject(m) + w->kv->plen, m, e);
        if (rc == 0)
            (*e)->delta = md.num_pending;
    }
    if (!w->init_done && md.stream_seq > w->end_seq)
        *mark = MARK_BEFORE;
    else if (!w->init_done && md.num_pending == 0)
        *mark = MARK_AFTER;
    w->init_done |= *mark != MARK_NONE;
    js_msg_free(m);
    return rc;
}

/* Dispatcher callbacks for one watcher run one at a time, in order. */
static void on_msg(js_consumer *c, js_msg *m, void *ctx) {
    js_kv_watcher *w = ctx;
    struct js_kv_entry *e = NULL;
    int mark = MARK_NONE;
    if (!m) { /* nothing left to deliver */
        if (!w->init_done) {
            w->init_done = 1;
            w->cb(w, NULL, w->ctx);
        }
        return;
    }
    /* An entry that cannot be made (out of memory) is skipped: the
     * watcher goes on with the next. */
    take(w, m, &e, &mark);
    if (mark == MARK_BEFORE)
        w->cb(w, NULL, w->ctx);
    if (e)
        w->cb(w, e, w->ctx);
    if (mark == MARK_AFTER)
        w->cb(w, NULL, w->ctx);
}

static int64_t remaining(int64_t timeout, int64_t end) {
    if (timeout <= 0)
        return timeout;
    int64_t left = end - jsi_monotonic_ns();
    return left > 0 ? left : 0;
}

static int next_locked(js_kv_watcher *w, int64_t timeout,
                       struct js_kv_entry **entry) {
    int64_t end =
        timeout > 0 ? jsi_time_add(jsi_monotonic_ns(), timeout) : 0;
    for (;;) {
        if (w->marker_due) {
            w->marker_due = 0;
            return 0;
        }
        if (w->held) {
            *entry = w->held;
            w->held = NULL;
            return 0;
        }
        /* Until the marker is given, first look without waiting: finding
         * nothing means the initial values are all delivered. */
        js_msg *m;
        int rc = js_consumer_next(w->c, w->init_done ? remaining(timeout, end)
                                                     : 0, &m);
        if (rc == JS_ETIMEOUT && !w->init_done) {
            jsi_err_clear();
            w->init_done = 1;
            return 0;
        }
        if (rc == JS_ECONSUMER_NOT_FOUND) /* removed with its stream */
            return JSI_ERR(JS_ESTREAM_NOT_FOUND, 10059, "bucket %s deleted",
                           w->kv->bucket);
        int mark;
        if (rc == 0)
            rc = take(w, m, entry, &mark);
        if (rc)
            return rc;
        if (mark == MARK_BEFORE) {
            w->held = *entry;
            *entry = NULL;
            return 0;
        }
        w->marker_due = mark == MARK_AFTER;
        if (*entry)
            return 0;
    }
}

JS_API int js_kv_watcher_next(js_kv_watcher *w, int64_t timeout,
                              struct js_kv_entry **entry) {
    jsi_err_clear();
    if (!w || w->magic != WATCHER_MAGIC)
        return JSI_ERR(JS_EMISUSE, 0, "not a watcher");
    if (!entry)
        return JSI_ERR(JS_EINVAL, 0, "entry: NULL");
    *entry = NULL;
    if (w->cb)
        return JSI_ERR(JS_EINVAL, 0, "the watcher delivers to a callback");
    pthread_mutex_lock(&w->mu);
    int rc = next_locked(w, timeout, entry);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

JS_API int js_kv_watcher_stop(js_kv_watcher *w) {
    jsi_err_clear();
    if (!w)
        return 0;
    if (w->magic != WATCHER_MAGIC)
        return JSI_ERR(JS_EMISUSE, 0, "not a watcher");
    js_sub_unsubscribe(w->sub); /* ours: cannot fail */
    watcher_free(w);
    return 0;
}
