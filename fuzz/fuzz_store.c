/*
 * fuzz_store.c - a whole store image and a script of API calls: the
 * catalogue, every stream's blocks and checkpoint, and every consumer's
 * config and state are written to a private RAM disk, the store is opened
 * through the public API, and the script publishes, reads, deletes,
 * purges, adds and updates streams, consumes and acks, uses KV buckets
 * (puts, gets, listings, history, watchers) and closes and reopens.
 *
 * Input: an image (fuzz_util.h) whose paths are relative to the store
 * directory (catalog, streams/<id>/<no>.blk, streams/<id>/index,
 * streams/<id>/consumers/<id>.cfg and .state), and "!ops", the script.
 * Mode bit 0 fixes every checksum; bit 1 opens with JS_SYNC_NONE instead
 * of JS_SYNC_ALWAYS.
 *
 * Checked: no crash, leak, hang or undefined behaviour; and, if the image
 * held no checkpoint (see fuzz_msgstore.c for why), a store that opened
 * and closed cleanly opens again with every file stream's last sequence
 * where it was. Mode bit 2 removes the checkpoints from the image. Time
 * comes from a fake clock the script moves.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "vfs.h"

#define ROOT "/st"
#define NSLOT 4
#define NMSG 16
#define MAX_OPS 256

typedef struct fz {
    js_vfs *vfs;
    js_open_opts opts;
    js_store *st;
    js_stream *s[NSLOT];
    js_consumer *c[NSLOT];
    js_kv *kv[NSLOT];
    js_msg *m[NMSG];
    fuzz_ops o;
    char str[64]; /* the last string read from the script */
    int honest;   /* no checkpoint at the first open (fuzz_msgstore.c) */
} fz;

static const char *const names[] = {"ORDERS", "KV_B", "S", "KV_config",
                                    "T.bad", "wq"};
static const char *const subjects[] = {
    "ORDERS.new", "ORDERS.a.b", "$KV.B.k1", "$KV.B.a.b", "S", "x.y",
    "$KV.config.app", "wq.job", "ORDERS.>", "bad subject"};
static const char *const filters[] = {NULL, ">", "ORDERS.*", "ORDERS.>",
                                      "$KV.B.>", "x.y", "wq.*", "a..b"};
static const char *const keys[] = {"k1", "a.b", "app", "a", "x.y.z", "*",
                                   ".bad", "k1.>"};
static const char *const key_filters[] = {NULL, ">", "k1", "a.*", "*.b",
                                          "a.>", "a*"};

/* ---- script helpers ------------------------------------------------------ */

static uint8_t u8(fz *z) { return fuzz_u8(&z->o); }

static const char *pick(fz *z, const char *const *list, size_t n) {
    uint8_t b = u8(z);
    /* The last value: a string from the script itself. */
    if (b % (n + 1) == n) {
        fuzz_str(&z->o, z->str, sizeof z->str - 1);
        return z->str;
    }
    return list[b % (n + 1)];
}

#define PICK(z, list) pick((z), (list), sizeof(list) / sizeof(list[0]))

static void free_msg(fz *z, size_t i) {
    js_msg_free(z->m[i]);
    z->m[i] = NULL;
}

static void put_msg(fz *z, js_msg *m) {
    size_t i = u8(z) % NMSG;
    free_msg(z, i);
    z->m[i] = m;
}

static void drop_handles(fz *z) {
    for (size_t i = 0; i < NMSG; i++)
        free_msg(z, i);
    for (size_t i = 0; i < NSLOT; i++) {
        js_consumer_release(z->c[i]);
        js_stream_release(z->s[i]);
        js_kv_release(z->kv[i]);
        z->c[i] = NULL;
        z->s[i] = NULL;
        z->kv[i] = NULL;
    }
}

/* A header block: none, one the library reads, or bytes from the script. */
static size_t headers(fz *z, char *buf, size_t cap) {
    static const char *const fmt[] = {
        "NATS/1.0\r\nNats-Msg-Id: %u\r\n\r\n",
        "NATS/1.0\r\nNats-Expected-Last-Sequence: %u\r\n\r\n",
        "NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: %u\r\n\r\n",
        "NATS/1.0\r\nNats-Rollup: sub\r\nX: %u\r\n\r\n",
        "NATS/1.0\r\nNats-Rollup: all\r\nX: %u\r\n\r\n",
        "NATS/1.0\r\nKV-Operation: DEL\r\nX: %u\r\n\r\n",
        "NATS/1.0\r\nNats-Expected-Stream: ORDERS\r\nX: %u\r\n\r\n",
    };
    uint8_t b = u8(z);
    if (b % 9 == 0)
        return 0;
    if (b % 9 == 8)
        return fuzz_str(&z->o, buf, cap - 1);
    return (size_t)snprintf(buf, cap, fmt[b % 9 - 1], (unsigned)u8(z));
}

/* ---- operations --------------------------------------------------------- */

static void op_publish(fz *z) {
    char hdr[128];
    static const uint8_t data[600];
    const char *subj = PICK(z, subjects);
    size_t hl = headers(z, hdr, sizeof hdr), dl = u8(z) * 2u;
    js_pub_ack ack = JS_PUB_ACK_INIT;
    if (u8(z) & 1) {
        int rc = js_publish(z->st, subj, hl ? hdr : NULL, hl, data, dl, &ack);
        fuzz_trace("publish %s hdr %zu data %zu: %d seq %" PRIu64 "\n", subj,
                   hl, dl, rc, ack.seq);
        return;
    }
    js_pub_msg msgs[3];
    js_pub_ack acks[3];
    size_t done;
    for (int i = 0; i < 3; i++) {
        js_pub_msg pm = {subj, hl ? hdr : NULL, hl, data, dl};
        msgs[i] = pm;
        acks[i] = ack;
    }
    js_publish_batch(z->st, msgs, 3, acks, &done);
}

static void stream_cfg(fz *z, js_stream_config *c, const char **subj) {
    js_stream_config d = JS_STREAM_CONFIG_INIT;
    uint8_t f = u8(z), g = u8(z);
    *c = d;
    c->name = PICK(z, names);
    subj[0] = PICK(z, filters);
    subj[1] = PICK(z, subjects);
    c->subjects = subj[0] ? subj : NULL;
    c->num_subjects = subj[0] ? 1 + (f & 1) : 0;
    c->retention = (f >> 1) % 3;
    c->max_msgs = f & 8 ? (g % 16) : 0;
    c->max_msgs_per_subject = f & 16 ? (g % 5) : 0;
    c->max_bytes = f & 32 ? 2000 + g * 16 : 0;
    c->max_age = f & 64 ? INT64_C(1000000000) * (1 + g % 8) : 0;
    c->discard = f >> 7;
    c->storage = g & 1;
    c->duplicate_window = g & 2 ? INT64_C(500000000) : 0;
    c->allow_rollup_hdrs = (g >> 2) & 1;
    c->deny_delete = (g >> 3) & 1 && (g & 0x80);
    c->discard_new_per_subject = (g >> 4) & 1;
    c->first_seq = g & 0x20 ? g : 0;
    c->sync = (g >> 6) & 1 ? JS_SYNC_NONE : 0;
}

static void op_stream(fz *z) {
    uint8_t k = u8(z);
    size_t slot = k / 8 % NSLOT;
    js_stream_config c;
    const char *subj[2];
    struct js_stream_info *info = NULL;
    char **list = NULL;
    switch (k % 8) {
    case 0:
    case 1:
        stream_cfg(z, &c, subj);
        js_stream_release(z->s[slot]);
        z->s[slot] = NULL;
        if (k % 8 == 0)
            js_stream_add(z->st, &c, &z->s[slot]);
        else
            js_stream_update(z->st, &c);
        break;
    case 2:
        js_stream_release(z->s[slot]);
        z->s[slot] = NULL;
        js_stream_lookup(z->st, PICK(z, names), &z->s[slot]);
        break;
    case 3: js_stream_delete(z->st, PICK(z, names)); break;
    case 4:
        if (js_stream_info(z->s[slot], &info) == 0)
            js_stream_info_free(info);
        break;
    case 5:
        if (js_stream_names(z->st, &list, NULL) == 0)
            js_names_free(list);
        break;
    default: {
        js_purge_opts po = JS_PURGE_OPTS_INIT;
        po.filter = PICK(z, filters);
        po.seq = k & 0x80 ? u8(z) : 0;
        po.keep = k & 0x40 ? u8(z) % 4 : 0;
        js_stream_purge(z->s[slot], &po, NULL);
        break;
    }
    }
}

static void look_at(js_msg *m) {
    const char *v;
    size_t n;
    js_msg_header(m, "Nats-Msg-Id", &v, &n);
    js_msg_header(m, "KV-Operation", &v, &n);
    (void)js_msg_data(m, &n);
    (void)js_msg_subject(m);
}

static void op_read(fz *z) {
    uint8_t k = u8(z);
    js_stream *s = z->s[k / 8 % NSLOT];
    uint64_t seq = u8(z);
    js_msg *m = NULL;
    switch (k % 8) {
    case 0: js_msg_get(s, seq, &m); break;
    case 1: js_msg_get_last(s, PICK(z, filters), &m); break;
    case 2: js_msg_get_next(s, PICK(z, filters), seq, &m); break;
    case 3: js_msg_delete(s, seq); break;
    case 4: js_msg_erase(s, seq); break;
    default:
        for (uint64_t i = 0; i < 40 && js_msg_get_next(s, NULL, seq, &m) == 0;
             i++) {
            seq = js_msg_seq(m) + 1;
            look_at(m);
            js_msg_free(m);
            m = NULL;
        }
        break;
    }
    if (m) {
        look_at(m);
        put_msg(z, m);
    }
}

static void consumer_cfg(fz *z, js_consumer_config *c, int64_t *backoff) {
    js_consumer_config d = JS_CONSUMER_CONFIG_INIT;
    uint8_t f = u8(z), g = u8(z);
    *c = d;
    c->durable_name = PICK(z, names);
    c->deliver_policy = f % 6;
    c->opt_start_seq = c->deliver_policy == 3 ? g : 0;
    c->opt_start_time = c->deliver_policy == 4 ? fuzz_clock(NULL) - g : 0;
    c->ack_policy = (f >> 3) % 3;
    c->ack_wait = f & 0x20 ? INT64_C(1000000000) : 0;
    c->max_deliver = g % 4;
    c->filter_subject = PICK(z, filters);
    c->max_ack_pending = f & 0x40 ? 1 + g % 8 : 0;
    c->mem_storage = (f >> 7) & 1;
    backoff[0] = INT64_C(1000000000);
    backoff[1] = INT64_C(3000000000);
    c->backoff = g & 0x80 ? backoff : NULL;
    c->num_backoff = g & 0x80 ? 2 : 0;
    if (c->backoff)
        c->ack_wait = 0;
    c->max_batch = g & 0x40 ? 4 : 0;
}

static void op_consumer(fz *z) {
    uint8_t k = u8(z);
    size_t slot = k / 8 % NSLOT;
    js_stream *s = z->s[(k >> 5) % NSLOT];
    js_consumer_config c;
    int64_t backoff[2];
    struct js_consumer_info *info = NULL;
    char **list = NULL;
    switch (k % 8) {
    case 0:
    case 1:
        consumer_cfg(z, &c, backoff);
        js_consumer_release(z->c[slot]);
        z->c[slot] = NULL;
        if (k % 8 == 0)
            js_consumer_add(s, &c, &z->c[slot]);
        else
            js_consumer_update(s, &c, &z->c[slot]);
        break;
    case 2:
        js_consumer_release(z->c[slot]);
        z->c[slot] = NULL;
        js_consumer_lookup(s, PICK(z, names), &z->c[slot]);
        break;
    case 3: js_consumer_delete(s, PICK(z, names)); break;
    case 4:
        if (js_consumer_info(z->c[slot], &info) == 0)
            js_consumer_info_free(info);
        break;
    default:
        if (js_consumer_names(s, &list, NULL) == 0)
            js_names_free(list);
        break;
    }
}

static void op_fetch(fz *z) {
    uint8_t k = u8(z);
    js_consumer *c = z->c[k % NSLOT];
    js_msg *got[8];
    size_t n = 0;
    js_fetch_opts fo = JS_FETCH_OPTS_INIT;
    fo.max_bytes = k & 0x80 ? 300 : 0;
    fo.no_wait = 1;
    if (k & 0x40) {
        js_msg *m = NULL;
        if (js_consumer_next(c, 0, &m) == 0)
            put_msg(z, m);
        return;
    }
    js_consumer_fetch(c, got, 1 + (k >> 3) % 8, &fo, &n);
    for (size_t i = 0; i < n; i++)
        put_msg(z, got[i]);
}

static void op_ack(fz *z) {
    uint8_t k = u8(z);
    size_t i = (k >> 3) % NMSG;
    js_msg *m = z->m[i];
    js_msg_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.version = 1;
    switch (k % 8) {
    case 0: js_msg_ack(m); break;
    case 1: js_msg_ack_sync(m); break;
    case 2: js_msg_nak(m, k & 0x80 ? INT64_C(2000000000) : 0); break;
    case 3: js_msg_in_progress(m); break;
    case 4: js_msg_term(m, "fuzz"); break;
    case 5: js_msg_metadata(m, &meta); break;
    default: free_msg(z, i); break;
    }
}

/* ---- KV ------------------------------------------------------------------ */

static void op_bucket(fz *z) {
    uint8_t k = u8(z), g = u8(z);
    size_t slot = k / 8 % NSLOT;
    static const char *const buckets[] = {"B", "config", "bad.name"};
    js_kv_config c = JS_KV_CONFIG_INIT;
    struct js_kv_status *st = NULL;
    c.bucket = PICK(z, buckets);
    c.history = 1 + g % 5;
    c.ttl = g & 0x40 ? INT64_C(2000000000) : 0;
    c.max_value_size = g & 0x20 ? 64 : 0;
    c.storage = g >> 7;
    switch (k % 8) {
    case 0:
    case 1:
        js_kv_release(z->kv[slot]);
        z->kv[slot] = NULL;
        if (k % 8 == 0)
            js_kv_create(z->st, &c, &z->kv[slot]);
        else
            js_kv_open(z->st, c.bucket, &z->kv[slot]);
        break;
    case 2: js_kv_update(z->st, &c); break;
    case 3: js_kv_delete(z->st, c.bucket); break;
    default:
        if (js_kv_status(z->kv[slot], &st) == 0)
            js_kv_status_free(st);
        break;
    }
}

static void op_kv_write(fz *z) {
    static const char value[100];
    uint8_t k = u8(z);
    js_kv *kv = z->kv[k / 8 % NSLOT];
    const char *key = PICK(z, keys);
    uint64_t rev = u8(z), got;
    size_t len = u8(z) % sizeof value;
    switch (k % 8) {
    case 0:
    case 1: js_kv_put(kv, key, value, len, &got); break;
    case 2: js_kv_create_key(kv, key, value, len, &got); break;
    case 3: js_kv_update_key(kv, key, value, len, rev, &got); break;
    case 4: js_kv_delete_key(kv, key, k & 0x80 ? rev : 0); break;
    case 5: js_kv_purge_key(kv, key, k & 0x80 ? rev : 0); break;
    default:
        js_kv_purge_deletes(kv, k & 0x80 ? INT64_C(1000000000) : -1, &got);
        break;
    }
}

static void op_kv_read(fz *z) {
    uint8_t k = u8(z);
    js_kv *kv = z->kv[k / 8 % NSLOT];
    struct js_kv_entry *e = NULL, **hist = NULL;
    js_kv_keylist *kl = NULL;
    const char *key;
    size_t n = 0;
    switch (k % 4) {
    case 0:
        if (js_kv_get(kv, PICK(z, keys), k & 0x80 ? u8(z) : 0, &e) == 0)
            js_kv_entry_free(e);
        break;
    case 1:
        if (js_kv_history(kv, PICK(z, keys), &hist, &n) == 0)
            js_kv_history_free(hist, n);
        break;
    default:
        if (js_kv_keys(kv, PICK(z, key_filters), &kl) == 0)
            for (int i = 0; i < 64 && js_kv_keys_next(kl, &key) == 1; i++)
                ;
        js_kv_keys_free(kl);
        break;
    }
}

static void op_kv_watch(fz *z) {
    uint8_t k = u8(z);
    js_kv *kv = z->kv[k % NSLOT];
    js_kv_watch_opts wo = JS_KV_WATCH_OPTS_INIT;
    js_kv_watcher *w = NULL;
    struct js_kv_entry *e;
    wo.include_history = (k >> 2) & 1;
    wo.ignore_deletes = (k >> 3) & 1;
    wo.meta_only = (k >> 4) & 1;
    wo.updates_only = (k >> 5) & 1;
    if (js_kv_watch(kv, PICK(z, key_filters), &wo, &w) != 0)
        return;
    for (int i = 0; i < 32; i++) {
        e = NULL;
        if (js_kv_watcher_next(w, 0, &e) != 0)
            break;
        js_kv_entry_free(e);
    }
    js_kv_watcher_stop(w);
}

/* ---- the store ---------------------------------------------------------- */

/* Every file stream's last sequence, by name, into a buffer for
 * comparison. */
static void lasts(js_store *st, char *out, size_t cap) {
    char **list = NULL;
    size_t n = 0, o = 0;
    out[0] = 0;
    if (js_stream_names(st, &list, &n) != 0)
        return;
    for (size_t i = 0; i < n && o < cap; i++) {
        js_stream *s = NULL;
        struct js_stream_info *info = NULL;
        uint64_t last = 0;
        /* Memory streams start empty at every open. */
        if (js_stream_lookup(st, list[i], &s) == 0 &&
            js_stream_info(s, &info) == 0 &&
            info->config->storage == JS_STORAGE_FILE)
            last = info->state->last_seq;
        js_stream_info_free(info);
        js_stream_release(s);
        o += (size_t)snprintf(out + o, cap - o, "%s=%llu ", list[i],
                              (unsigned long long)last);
    }
    js_names_free(list);
}

/* Close and open again: a clean close must leave a store that opens, with
 * every stream's last sequence where it was. */
static void reopen(fz *z) {
    char before[2048], after[2048];
    drop_handles(z);
    lasts(z->st, before, sizeof before);
    int rc = js_close(z->st);
    z->st = NULL;
    int orc = js_open(ROOT, &z->opts, &z->st);
    fuzz_trace("reopen: close %d, open %d (%s)\n", rc, orc, js_errmsg());
    if (rc == 0 && orc != 0 && z->honest)
        fuzz_fail("a cleanly closed store does not open again");
    if (orc != 0)
        return;
    lasts(z->st, after, sizeof after);
    fuzz_trace("before: %s\nafter:  %s\n", before, after);
    if (rc == 0 && z->honest && strcmp(before, after) != 0)
        fuzz_fail("a clean close and reopen moved a stream's last sequence");
}

static void op(fz *z) {
    uint8_t k = u8(z);
    fuzz_trace("op %d (%02x) at %zu\n", k % 16, k, z->o.off);
    switch (k % 16) {
    case 0:
    case 1:
    case 2: op_publish(z); break;
    case 3: op_stream(z); break;
    case 4:
    case 5: op_read(z); break;
    case 6: op_consumer(z); break;
    case 7:
    case 8: op_fetch(z); break;
    case 9: op_ack(z); break;
    case 10: op_bucket(z); break;
    case 11: op_kv_write(z); break;
    case 12: op_kv_read(z); break;
    case 13: op_kv_watch(z); break;
    case 14:
        fuzz_clock_advance((int64_t)u8(z) * 50000000);
        js_dispatch(z->st, 0);
        break;
    default:
        if (k & 0x80)
            reopen(z);
        else
            js_flush(z->st);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_image im;
    fz z;
    js_open_opts def = JS_OPEN_OPTS_INIT;
    memset(&z, 0, sizeof z);
    fuzz_image_parse(data, size, &im);
    if (im.mode & FUZZ_MODE_FIX_CRC)
        fuzz_image_fix(&im);
    fuzz_clock_set(INT64_C(1700000000) * 1000000000);
    if (!(z.vfs = jsi_vfs_mem_new()))
        return 0;
    z.vfs->name = "fuzz-store";
    js_vfs_register(z.vfs, 0);
    z.honest = 1;
    for (size_t i = 0; i < im.n; i++)
        if (strstr(im.f[i].path, "index")) {
            if (im.mode & 4)
                im.f[i].path[0] = '!'; /* not written */
            else
                z.honest = 0;
        }
    fuzz_image_write(&im, z.vfs, ROOT);
    z.opts = def;
    z.opts.vfs = z.vfs->name;
    z.opts.sync = im.mode & 2 ? JS_SYNC_NONE : JS_SYNC_ALWAYS;
    z.opts.block_size = 4096;
    z.opts.clock = fuzz_clock;
    if (js_open(ROOT, &z.opts, &z.st) == 0) {
        fuzz_file *ops = fuzz_image_get(&im, "!ops");
        fuzz_ops o = {ops ? ops->data : NULL, ops ? ops->len : 0, 0};
        z.o = o;
        for (int i = 0; i < MAX_OPS && z.st && fuzz_ops_more(&z.o); i++) {
            op(&z);
            if (fuzz_tracing() && z.st) {
                char b[2048];
                lasts(z.st, b, sizeof b);
                fuzz_trace("   %s\n", b);
            }
        }
        if (z.st)
            reopen(&z);
        drop_handles(&z);
        js_close(z.st);
    }
    js_vfs_unregister(z.vfs);
    jsi_vfs_mem_free(z.vfs);
    fuzz_image_free(&im);
    return 0;
}
