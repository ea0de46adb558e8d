/*
 * replay.c - replay a stream from a point in time. A sensor stream gets
 * readings over a (simulated) hour; an ephemeral consumer with
 * JS_DELIVER_BY_START_TIME then replays the last quarter hour, and a
 * second one replays it again at the recorded pace (JS_REPLAY_ORIGINAL,
 * here with the clock sped up so the example finishes at once).
 *
 *   replay [store-directory]      (default: ./replay-store)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jetstream.h>

#define SEC ((int64_t)1000000000)

/* The store's clock: simulated time the example moves itself. */
static int64_t now_ns = (int64_t)1767225600 * SEC; /* 2026-01-01 */
static int64_t fake_clock(void *ctx) {
    (void)ctx;
    return __atomic_load_n(&now_ns, __ATOMIC_SEQ_CST);
}

static void die(const char *what, int rc) {
    fprintf(stderr, "replay: %s: %s (%s)\n", what, js_strerror(rc),
            js_errmsg());
    exit(1);
}

static void show(const js_msg *m) {
    size_t len;
    const char *d = js_msg_data(m, &len);
    printf("  seq %3" PRIu64 "  t+%4" PRId64 "s  %s  %.*s\n", js_msg_seq(m),
           (js_msg_time(m) % (3600 * SEC)) / SEC, js_msg_subject(m),
           (int)len, d);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "replay-store";
    js_open_opts o = JS_OPEN_OPTS_INIT;
    js_store *store;
    js_stream *s;
    js_consumer *c;
    int rc;

    o.clock = fake_clock;
    if ((rc = js_open(dir, &o, &store)) != 0)
        die("open", rc);
    const char *subjects[] = {"sensor.>"};
    js_stream_config sc = JS_STREAM_CONFIG_INIT;
    sc.name = "SENSOR";
    sc.subjects = subjects;
    sc.num_subjects = 1;
    sc.storage = JS_STORAGE_MEMORY;
    if ((rc = js_stream_add(store, &sc, &s)) != 0)
        die("stream", rc);

    /* One reading a minute for an hour. */
    int64_t start = now_ns;
    for (int i = 0; i < 60; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.1f C", 20.0 + (i % 7) * 0.5);
        if ((rc = js_publish(store, "sensor.temp", NULL, 0, buf, strlen(buf),
                             NULL)) != 0)
            die("publish", rc);
        __atomic_add_fetch(&now_ns, 60 * SEC, __ATOMIC_SEQ_CST);
    }

    /* Everything from the 45th minute on, as fast as we take it. */
    js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
    cc.deliver_policy = JS_DELIVER_BY_START_TIME;
    cc.opt_start_time = start + 45 * 60 * SEC;
    cc.ack_policy = JS_ACK_NONE;
    if ((rc = js_consumer_add(s, &cc, &c)) != 0)
        die("consumer", rc);
    printf("replay from t+2700s, instant:\n");
    int n = 0;
    js_msg *m;
    while ((rc = js_consumer_next(c, 0, &m)) == 0) {
        show(m);
        js_msg_free(m);
        n++;
    }
    if (rc != JS_ETIMEOUT)
        die("next", rc);
    js_consumer_release(c);

    /* The same window at the recorded pace: each reading becomes
     * available one (simulated) minute after the previous one. */
    cc.replay_policy = JS_REPLAY_ORIGINAL;
    if ((rc = js_consumer_add(s, &cc, &c)) != 0)
        die("consumer", rc);
    printf("again, at the original pace:\n");
    int paced = 0, early = 0;
    while (paced < n) {
        if ((rc = js_consumer_next(c, 0, &m)) == 0) {
            show(m);
            js_msg_free(m);
            paced++;
        } else if (rc == JS_ETIMEOUT) {
            early++; /* not due yet: let a simulated second pass */
            __atomic_add_fetch(&now_ns, SEC, __ATOMIC_SEQ_CST);
        } else {
            die("next", rc);
        }
    }
    printf("%d readings replayed twice; the paced replay waited %d "
           "simulated seconds\n", n, early);
    js_consumer_release(c);
    js_stream_release(s);
    if ((rc = js_close(store)) != 0)
        die("close", rc);
    return n == 15 && early >= 14 * 60 - 14 ? 0 : 1;
}
