/*
 * mkgolden.c - make a golden store image: mkgolden <dir> writes a store at
 * <dir>/store (deterministic: a fake clock, fixed content) and the text it
 * reads back as at <dir>/expected.txt. Not part of the library or of
 * `make`; build it by hand against the library of the format version it
 * captures:
 *   cc -std=c99 -Iinclude -Itests/golden tests/golden/mkgolden.c \
 *      build/libjetstream.a -lz -lsodium -pthread -o mkgolden
 * Golden directories are never regenerated, only added (see README).
 */
#include <stdlib.h>
#include <unistd.h>

#include "golden_dump.h"

#define CK(x)                                                             \
    do {                                                                  \
        int rc_ = (x);                                                    \
        if (rc_) {                                                        \
            fprintf(stderr, "%s: %s (%s)\n", #x, js_strerror(rc_),        \
                    js_errmsg());                                         \
            exit(1);                                                      \
        }                                                                 \
    } while (0)

static void orders(js_store *st) {
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    const char *subs[] = {"ord.>"};
    js_stream *s;
    js_consumer *con;
    js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
    js_msg *msgs[20];
    size_t n;
    char subj[32], data[64];
    c.name = "ORD";
    c.subjects = subs;
    c.num_subjects = 1;
    CK(js_stream_add(st, &c, &s));
    for (int i = 1; i <= 40; i++) {
        const char *hdr = i % 5 == 2 ? "NATS/1.0\r\nX-I: golden\r\n\r\n" : NULL;
        snprintf(subj, sizeof subj, "ord.%d", i % 4);
        int len = snprintf(data, sizeof data, "order %d of the golden store", i);
        CK(js_publish(st, subj, hdr, hdr ? strlen(hdr) : 0, data,
                      (size_t)len, NULL));
    }
    cc.durable_name = "C1";
    CK(js_consumer_add(s, &cc, &con));
    CK(js_consumer_fetch(con, msgs, 20, NULL, &n));
    for (size_t i = 0; i < n; i++) {
        if (js_msg_seq(msgs[i]) % 3)
            CK(js_msg_ack(msgs[i]));
        js_msg_free(msgs[i]);
    }
    CK(js_msg_delete(s, 7));
    CK(js_msg_delete(s, 33));
    js_purge_opts po = JS_PURGE_OPTS_INIT;
    po.filter = "ord.2";
    po.keep = 2;
    CK(js_stream_purge(s, &po, NULL));
    js_consumer_release(con);
    js_stream_release(s);
}

static void bucket(js_store *st) {
    js_kv_config kc = JS_KV_CONFIG_INIT;
    js_kv *kv;
    char key[16], val[64];
    kc.bucket = "cfg";
    kc.history = 3;
    CK(js_kv_create(st, &kc, &kv));
    for (int round = 0; round < 4; round++)
        for (int k = 0; k < 6; k++) {
            snprintf(key, sizeof key, "k%d", k);
            int n = snprintf(val, sizeof val, "value %d of key %d", round, k);
            CK(js_kv_put(kv, key, val, (size_t)n, NULL));
        }
    CK(js_kv_delete_key(kv, "k1", 0));
    CK(js_kv_purge_key(kv, "k2", 0));
    js_kv_release(kv);
}

int main(int argc, char **argv) {
    char path[4096];
    js_open_opts o = JS_OPEN_OPTS_INIT;
    js_store *st;
    if (argc != 2) {
        fprintf(stderr, "usage: mkgolden <dir>\n");
        return 2;
    }
    o.clock = golden_clock;
    o.block_size = 4096;
    snprintf(path, sizeof path, "%s/store", argv[1]);
    CK(js_open(path, &o, &st));
    orders(st);
    bucket(st);
    CK(js_close(st)); /* writes the index checkpoints */
    CK(js_open(path, &o, &st));
    snprintf(path, sizeof path, "%s/expected.txt", argv[1]);
    FILE *out = fopen(path, "w");
    if (!out || golden_dump(out, st) != 0 || fclose(out) != 0)
        return 1;
    CK(js_close(st));
    snprintf(path, sizeof path, "%s/store/LOCK", argv[1]);
    unlink(path); /* a copy never holds the lock */
    return 0;
}
