/*
 * golden_dump.h - the text a golden store must read back as: every stream's
 * state and every message, the durable consumer's position, and the KV
 * entries. mkgolden.c writes it beside each image as expected.txt when the
 * image is made; test_golden.c opens a copy of the image with today's
 * library and compares. Public API only.
 */
#ifndef GOLDEN_DUMP_H
#define GOLDEN_DUMP_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "jetstream.h"

#define GOLDEN_T0 INT64_C(1767225600000000000) /* the fake clock */

static int64_t golden_clock(void *ctx) {
    (void)ctx;
    return GOLDEN_T0;
}

static void golden_hex(FILE *out, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%02x", ((const unsigned char *)p)[i]);
}

static int golden_dump_stream(FILE *out, js_store *st, const char *name) {
    js_stream *s;
    struct js_stream_info *info;
    int rc = js_stream_lookup(st, name, &s);
    if (rc == 0)
        rc = js_stream_info(s, &info);
    if (rc) {
        fprintf(out, "stream %s: error %d\n", name, rc);
        return rc;
    }
    const js_stream_state *t = info->state;
    fprintf(out, "stream %s msgs %" PRIu64 " bytes %" PRIu64 " first %" PRIu64
            " last %" PRIu64 " subjects %" PRIu64 " deleted %" PRIu64
            " lost %" PRIu64 "\n", name, t->msgs, t->bytes, t->first_seq,
            t->last_seq, t->num_subjects, t->num_deleted, t->lost_msgs);
    for (uint64_t q = 1; q <= t->last_seq; q++) {
        js_msg *m;
        size_t hl, dl;
        if (js_msg_get(s, q, &m) != 0)
            continue;
        const void *h = js_msg_headers(m, &hl);
        const void *d = js_msg_data(m, &dl);
        fprintf(out, "  %" PRIu64 " %s %" PRId64 " h=", q, js_msg_subject(m),
                js_msg_time(m));
        golden_hex(out, h, hl);
        fprintf(out, " d=");
        golden_hex(out, d, dl);
        fprintf(out, "\n");
        js_msg_free(m);
    }
    js_stream_info_free(info);
    js_stream_release(s);
    return 0;
}

static int golden_dump_consumer(FILE *out, js_store *st) {
    js_stream *s;
    js_consumer *c;
    struct js_consumer_info *ci;
    int rc = js_stream_lookup(st, "ORD", &s);
    if (rc == 0 && (rc = js_consumer_lookup(s, "C1", &c)) == 0) {
        if ((rc = js_consumer_info(c, &ci)) == 0) {
            fprintf(out, "consumer C1 floor %" PRIu64 " delivered %" PRIu64
                    " ack_pending %" PRIu64 " pending %" PRIu64 "\n",
                    ci->ack_floor.stream_seq, ci->delivered.stream_seq,
                    ci->num_ack_pending, ci->num_pending);
            js_consumer_info_free(ci);
        }
        js_consumer_release(c);
    }
    if (rc == 0)
        js_stream_release(s);
    return rc;
}

static int golden_dump_kv(FILE *out, js_store *st) {
    js_kv *kv;
    char key[16];
    int rc = js_kv_open(st, "cfg", &kv);
    for (int k = 0; rc == 0 && k < 6; k++) {
        struct js_kv_entry *e;
        snprintf(key, sizeof key, "k%d", k);
        int grc = js_kv_get(kv, key, 0, &e);
        if (grc) {
            fprintf(out, "kv %s: %d\n", key, grc);
            continue;
        }
        fprintf(out, "kv %s rev %" PRIu64 " value %.*s\n", key, e->revision,
                (int)e->len, (const char *)e->value);
        js_kv_entry_free(e);
    }
    if (rc == 0)
        js_kv_release(kv);
    return rc;
}

static int golden_dump(FILE *out, js_store *st) {
    int rc = golden_dump_stream(out, st, "ORD");
    if (rc == 0)
        rc = golden_dump_stream(out, st, "KV_cfg");
    if (rc == 0)
        rc = golden_dump_consumer(out, st);
    if (rc == 0)
        rc = golden_dump_kv(out, st);
    return rc;
}

#endif
