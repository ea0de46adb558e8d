/*
 * make_seeds.c - build the fuzz targets' seed corpora from real stores.
 *
 *   make_seeds OUTDIR        (make fuzz-seeds: OUTDIR is fuzz/corpus)
 *
 * Makes stores on a private RAM disk through the public API (streams with
 * removals and purges, a work queue, a memory stream, durable consumers
 * with acks and redeliveries, KV buckets with history and deletes), on a
 * fake clock so every run writes the same bytes, then writes each file
 * where the target that parses it finds it: OUTDIR/<target>/<name>. The
 * single-file targets get the mode byte with the fix-checksums bit set;
 * fuzz_store and fuzz_msgstore get images (fuzz_util.h) with a few
 * operation scripts each.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "rangeset.h"
#include "store.h"
#include "util.h"
#include "vfs.h"

#define ROOT "/st"

static const char *outdir;
static js_vfs *disk;
static int64_t now = INT64_C(1700000000) * 1000000000;

static int64_t clock_fn(void *ctx) {
    (void)ctx;
    return now;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "make_seeds: %s: %s (%s)\n", what, js_strerror(rc),
            js_errmsg());
    exit(1);
}

#define CHECK(call)                  \
    do {                             \
        int rc_ = (call);            \
        if (rc_ != 0)                \
            die(#call, rc_);         \
    } while (0)

/* ---- output ------------------------------------------------------------ */

static void write_seed(const char *target, const char *name, int mode,
                       const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", outdir, target);
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST)
        die(outdir, JS_EIO);
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        die(path, JS_EIO);
    snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (mode >= 0 && fputc(mode, f) == EOF) ||
        (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
        die(path, JS_EIO);
}

/* ---- reading the disk back ---------------------------------------------- */

typedef struct file_list {
    char *path[256];
    size_t n;
} file_list;

typedef struct walk_ctx {
    const char *dir;
    file_list *out;
} walk_ctx;

static void walk(const char *dir, file_list *out);

static int nop_cb(void *ctx, const char *name) {
    (void)ctx;
    (void)name;
    return 0;
}

/* Listing a file fails: that tells files from directories. */
static int walk_cb(void *ctx, const char *name) {
    walk_ctx *w = ctx;
    char *p = jsi_path_join(w->dir, name);
    if (!p)
        die("walk", JS_ENOMEM);
    if (disk->list(disk, p, nop_cb, NULL) == 0) {
        walk(p, w->out);
        jsi_free(p);
    } else if (w->out->n < 256) {
        w->out->path[w->out->n++] = p;
    } else {
        jsi_free(p);
    }
    return 0;
}

static void walk(const char *dir, file_list *out) {
    walk_ctx w = {dir, out};
    disk->list(disk, dir, walk_cb, &w);
}

static void read_all(const char *path, jsi_buf *b) {
    b->len = 0;
    CHECK(jsi_vfs_read_file(disk, path, b, (size_t)1 << 26));
}

static void free_list(file_list *l) {
    for (size_t i = 0; i < l->n; i++)
        jsi_free(l->path[i]);
    l->n = 0;
}

/* ---- images ------------------------------------------------------------- */

static void add_section(jsi_buf *img, const char *name, const void *p,
                        size_t n) {
    if (img->len > 1)
        jsi_buf_append(img, "\n", 1);
    jsi_buf_append(img, "@F:", 3);
    jsi_buf_append(img, name, strlen(name));
    jsi_buf_append(img, "\n", 1);
    if (n)
        jsi_buf_append(img, p, n);
}

/* Every file under dir as a section named relative to dir. */
static void add_tree(jsi_buf *img, const char *dir, const char *skip) {
    file_list l = {{0}, 0};
    jsi_buf b = {0};
    size_t dl = strlen(dir) + 1;
    walk(dir, &l);
    for (size_t i = 0; i < l.n; i++) {
        const char *rel = l.path[i] + dl;
        if (skip && strstr(rel, skip))
            continue;
        read_all(l.path[i], &b);
        add_section(img, rel, b.p, b.len);
    }
    jsi_buf_free(&b);
    free_list(&l);
}

/* A deterministic pseudo-random script: the mutator starts from many
 * kinds of calls instead of discovering each one. */
static void script(uint8_t *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        p[i] = (uint8_t)seed;
    }
}

static void image_seeds(const char *target, const char *name,
                        const char *dir, const char *skip, int mode) {
    uint8_t ops[3][160];
    char full[128];
    for (int k = 0; k < 3; k++) {
        jsi_buf img = {0};
        uint8_t m = (uint8_t)mode;
        jsi_buf_append(&img, &m, 1);
        add_tree(&img, dir, skip);
        if (k) {
            script(ops[k], sizeof ops[k], 0x9e3779b97f4a7c15u * (uint64_t)k);
            add_section(&img, "!ops", ops[k], sizeof ops[k]);
        }
        snprintf(full, sizeof full, "%s-%d", name, k);
        write_seed(target, full, -1, img.p, img.len);
        jsi_buf_free(&img);
    }
}

/* ---- the stores --------------------------------------------------------- */

static js_store *open_store(void) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    js_store *st;
    o.vfs = disk->name;
    o.block_size = 4096;
    o.clock = clock_fn;
    CHECK(js_open(ROOT, &o, &st));
    return st;
}

static void publish_orders(js_store *st, js_stream **out) {
    const char *subj[] = {"ORDERS.*"};
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    char hdr[64], data[200] = {0};
    c.name = "ORDERS";
    c.subjects = subj;
    c.num_subjects = 1;
    c.max_msgs_per_subject = 20;
    c.allow_rollup_hdrs = 1;
    CHECK(js_stream_add(st, &c, out));
    for (int i = 0; i < 60; i++) {
        int hl = snprintf(hdr, sizeof hdr, "NATS/1.0\r\nNats-Msg-Id: m%d\r\n\r\n",
                          i);
        now += 1000000;
        CHECK(js_publish(st, i % 3 ? "ORDERS.new" : "ORDERS.paid",
                         i % 4 ? NULL : hdr, i % 4 ? 0 : (size_t)hl, data,
                         (size_t)(i * 3 % 200), NULL));
    }
    CHECK(js_msg_delete(*out, 45));
    CHECK(js_msg_delete(*out, 47));
    CHECK(js_msg_erase(*out, 50));
    js_purge_opts po = JS_PURGE_OPTS_INIT;
    po.filter = "ORDERS.paid";
    po.seq = 30;
    CHECK(js_stream_purge(*out, &po, NULL));
}

static void consume(js_stream *s) {
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    js_consumer *con;
    js_msg *m[10];
    size_t n;
    c.durable_name = "WORKERS";
    c.filter_subject = "ORDERS.new";
    c.ack_wait = INT64_C(1000000000);
    c.max_deliver = 5;
    CHECK(js_consumer_add(s, &c, &con));
    CHECK(js_consumer_fetch(con, m, 10, NULL, &n));
    for (size_t i = 0; i < n; i++) {
        if (i % 3 == 0)
            js_msg_nak(m[i], 0);
        else if (i != 4)
            js_msg_ack_sync(m[i]);
        js_msg_free(m[i]);
    }
    now += INT64_C(2000000000);
    if (js_consumer_fetch(con, m, 10, NULL, &n) == 0)
        for (size_t i = 0; i < n; i++) {
            js_msg_ack(m[i]);
            js_msg_free(m[i]);
        }
    js_consumer_release(con);
}

static void work_queue(js_store *st) {
    const char *subj[] = {"wq.*"};
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
    js_stream *s;
    js_consumer *con;
    js_msg *m = NULL;
    c.name = "wq";
    c.subjects = subj;
    c.num_subjects = 1;
    c.retention = JS_RETENTION_WORKQUEUE;
    CHECK(js_stream_add(st, &c, &s));
    cc.durable_name = "w";
    cc.max_ack_pending = 3;
    CHECK(js_consumer_add(s, &cc, &con));
    for (int i = 0; i < 8; i++)
        CHECK(js_publish(st, "wq.job", NULL, 0, "job", 3, NULL));
    for (int i = 0; i < 5 && js_consumer_next(con, 0, &m) == 0; i++) {
        if (i == 3)
            js_msg_ack(m);
        js_msg_free(m);
    }
    js_consumer_release(con);
    js_stream_release(s);
}

static void memory_stream(js_store *st) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = "MEM";
    c.storage = JS_STORAGE_MEMORY;
    c.max_age = INT64_C(60000000000);
    CHECK(js_stream_add(st, &c, NULL));
    CHECK(js_publish(st, "MEM", NULL, 0, "x", 1, NULL));
}

static void bucket(js_store *st) {
    js_kv_config c = JS_KV_CONFIG_INIT;
    js_kv *kv;
    char key[16];
    c.bucket = "B";
    c.history = 3;
    CHECK(js_kv_create(st, &c, &kv));
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof key, "k%d", i % 7);
        now += 1000000;
        CHECK(js_kv_put(kv, key, "value", 1 + (size_t)i % 5, NULL));
    }
    CHECK(js_kv_put(kv, "a.b", "v", 1, NULL));
    CHECK(js_kv_delete_key(kv, "k1", 0));
    CHECK(js_kv_purge_key(kv, "k2", 0));
    js_kv_release(kv);
}

/* One store; images of it while open (no checkpoint yet, as after a crash)
 * and after a clean close. */
static void store_seeds(void) {
    js_store *st = open_store();
    js_stream *orders;
    publish_orders(st, &orders);
    consume(orders);
    js_stream_release(orders);
    work_queue(st);
    memory_stream(st);
    bucket(st);
    CHECK(js_flush(st));
    image_seeds("store", "open", ROOT, "LOCK", 1);
    CHECK(js_close(st));
    image_seeds("store", "closed", ROOT, "LOCK", 1);
    image_seeds("store", "nockpt", ROOT, "index", 1);
}

/* ---- per-file seeds from the closed store -------------------------------- */

static const char *base(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void stream_config_seeds(const jsi_buf *cat) {
    uint64_t next;
    jsi_cat_entry *e;
    size_t n;
    char name[32];
    CHECK(jsi_catalog_decode(cat->p, cat->len, &next, &e, &n));
    for (size_t i = 0; i < n; i++) {
        jsi_buf b = {0};
        CHECK(jsi_scfg_encode(&e[i].cfg, &b));
        snprintf(name, sizeof name, "stream-%zu", i);
        write_seed("stream_config", name, -1, b.p, b.len);
        jsi_buf_free(&b);
    }
    jsi_catalog_free(e, n);
}

/* A name for a file's seed: its path under the store, '/' made '-'. */
static void seed_name(const char *path, char *out, size_t cap) {
    snprintf(out, cap, "%s", path + strlen(ROOT) + 1);
    for (char *p = out; *p; p++)
        if (*p == '/')
            *p = '-';
}

static void file_seeds(void) {
    file_list l = {{0}, 0};
    jsi_buf b = {0};
    char name[300];
    walk(ROOT, &l);
    for (size_t i = 0; i < l.n; i++) {
        const char *p = l.path[i], *bn = base(p);
        const char *target = NULL;
        read_all(p, &b);
        seed_name(p, name, sizeof name);
        if (strstr(bn, ".blk"))
            target = "record";
        else if (strcmp(bn, "index") == 0)
            target = "checkpoint";
        else if (strcmp(bn, "catalog") == 0)
            target = "catalog";
        else if (strstr(bn, ".cfg"))
            target = "consumer_config";
        else if (strstr(bn, ".state"))
            target = "consumer_state";
        if (target)
            write_seed(target, name, FUZZ_MODE_FIX_CRC, b.p, b.len);
        if (strcmp(bn, "catalog") == 0)
            stream_config_seeds(&b);
    }
    jsi_buf_free(&b);
    free_list(&l);
}

static void msgstore_seeds(void) {
    file_list l = {{0}, 0};
    char name[64];
    walk(ROOT "/streams", &l);
    /* Each stream directory once: the directory of its index file. */
    for (size_t i = 0; i < l.n; i++) {
        if (strcmp(base(l.path[i]), "index") != 0)
            continue;
        char *dir = jsi_strndup(l.path[i], strlen(l.path[i]) - 6);
        snprintf(name, sizeof name, "stream%zu", i);
        image_seeds("msgstore", name, dir, "consumers", 1);
        snprintf(name, sizeof name, "stream%zu-rebuild", i);
        image_seeds("msgstore", name, dir, "consumers", 3);
        jsi_free(dir);
    }
    free_list(&l);
}

/* ---- seeds for the parsers of caller bytes -------------------------------- */

static void text_seeds(const char *target, const char *const *v) {
    char name[32];
    for (size_t i = 0; v[i]; i++) {
        snprintf(name, sizeof name, "%s-%zu", target, i);
        /* Pairs are written "first\0second" as the target splits them. */
        const char *bar = strchr(v[i], '|');
        size_t n = strlen(v[i]);
        char buf[256];
        memcpy(buf, v[i], n + 1);
        if (bar)
            buf[bar - v[i]] = 0;
        write_seed(target, name, -1, buf, n);
    }
}

static void caller_seeds(void) {
    static const char *const hdrs[] = {
        "NATS/1.0\r\n\r\n",
        "NATS/1.0\r\nNats-Msg-Id: abc\r\n\r\n",
        "NATS/1.0 503 No Responders\r\n\r\n",
        "NATS/1.0\r\nNats-Expected-Last-Sequence: 0042\r\nA:  v \r\n\r\n",
        "NATS/1.0\r\nKV-Operation: PURGE\r\nNats-Rollup: sub\r\n\r\n",
        "18446744073709551615", NULL};
    static const char *const subjects[] = {
        "a.b.c|a.*.c", "foo.>|foo.bar.baz", "*.*|a.b", ">|$KV.B.k",
        "a.b|a.b.c", "ORDERS.*|ORDERS.new", "a..b|a", "a.*b.c|a.*b.c",
        "*.b.>|a.*.c", NULL};
    static const char *const keys[] = {
        "\001k1", "\002a.b.c", "\004app.port|app.>", "\001*.b|a.b",
        "\003>", "\001a=b/c_d-e", "\002.bad", NULL};
    text_seeds("headers", hdrs);
    text_seeds("subject", subjects);
    text_seeds("kv_key", keys);
}

static void rangeset_seeds(void) {
    static const uint64_t runs[][2] = {{1, 1}, {3, 9}, {20, 1000},
                                       {UINT64_MAX - 5, UINT64_MAX}};
    jsi_rangeset s = JSI_RANGESET_INIT;
    for (int k = 0; k < 4; k++) {
        jsi_buf b = {0};
        char name[16];
        CHECK(jsi_rs_add(&s, runs[k][0], runs[k][1]));
        CHECK(jsi_rs_encode(&s, &b));
        /* Then operations: add 5..(5+16), remove below 4. */
        const uint8_t ops[] = {0, 5, 0, 0, 0, 0, 0, 0, 0, 16, 0,
                               2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        jsi_buf_append(&b, ops, sizeof ops);
        snprintf(name, sizeof name, "set-%d", k);
        write_seed("rangeset", name, -1, b.p, b.len);
        jsi_buf_free(&b);
    }
    jsi_rs_free(&s);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    if (!(disk = jsi_vfs_mem_new()))
        die("disk", JS_ENOMEM);
    disk->name = "seeds";
    CHECK(js_vfs_register(disk, 0));
    store_seeds();
    file_seeds();
    msgstore_seeds();
    caller_seeds();
    rangeset_seeds();
    js_vfs_unregister(disk);
    jsi_vfs_mem_free(disk);
    return 0;
}
