/*
 * consumer_fixture.h - the fixture the consumer test programs share: a
 * store on a fake clock in a scratch directory, the stream ORDERS on
 * "orders.>", and small helpers that publish, create consumers and take
 * messages, failing the test with the library's own words. Header-only;
 * every function is static inline, so a program may use some of them.
 * A program sets fixture_vfs (a backend name, NULL for the default) and
 * fixture_before_teardown before its tests run, if it needs them.
 */
#ifndef CONSUMER_FIXTURE_H
#define CONSUMER_FIXTURE_H

#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "jetstream.h"
#include "check_rc.h"
#include "testutil.h"

#define SEC ((int64_t)1000000000)
#define MS ((int64_t)1000000)
#define T0 ((int64_t)1700000000 * SEC)

#define CHECK_ERR(nats, word)                                               \
    do {                                                                    \
        ck_assert_int_eq(js_errcode_nats(), (nats));                        \
        ck_assert_msg(strstr(js_errmsg(), (word)) != NULL,                  \
                      "errmsg \"%s\" does not mention \"%s\"", js_errmsg(), \
                      (word));                                              \
    } while (0)

static char *base_dir;
static char store_path[1024];
static int64_t fake_now;
static int sync_policy;
static js_store *S;
static js_stream *ST; /* stream "ORDERS", subjects "orders.>" */
static const char *fixture_vfs;              /* NULL: the default */
static void (*fixture_before_teardown)(void); /* NULL: nothing */

/* ---- fixture ------------------------------------------------------------ */

static inline void open_store(void) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.vfs = fixture_vfs;
    o.sync = sync_policy;
    o.clock = tu_clock;
    o.clock_ctx = &fake_now;
    CHECK_RC(js_open(store_path, &o, &S), 0);
}

static inline js_stream *add_stream(const char *name, const char *subj,
                             int retention) {
    const char *subs[1] = {subj};
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    js_stream *s = NULL;
    c.name = name;
    c.subjects = subs;
    c.num_subjects = 1;
    c.retention = retention;
    CHECK_RC(js_stream_add(S, &c, &s), 0);
    return s;
}

static inline void fixture_setup(int policy) {
    static unsigned n;
    tu_clock_set(&fake_now, T0);
    sync_policy = policy;
    snprintf(store_path, sizeof store_path, "%s/store-%ld-%u", base_dir,
             (long)getpid(), n++);
    open_store();
    ST = add_stream("ORDERS", "orders.>", JS_RETENTION_LIMITS);
}

static inline void teardown(void) {
    if (fixture_before_teardown)
        fixture_before_teardown();
    js_stream_release(ST);
    ST = NULL;
    if (S)
        CHECK_RC(js_close(S), 0);
    S = NULL;
}

static inline void reopen(void) {
    js_stream_release(ST);
    CHECK_RC(js_close(S), 0);
    open_store();
    CHECK_RC(js_stream_lookup(S, "ORDERS", &ST), 0);
}

static inline void advance(int64_t ns) { tu_clock_advance(&fake_now, ns); }

/* ---- helpers ------------------------------------------------------------ */

static inline uint64_t pub(const char *subj, const char *data) {
    js_pub_ack a = JS_PUB_ACK_INIT;
    CHECK_RC(js_publish(S, subj, NULL, 0, data, strlen(data), &a), 0);
    return a.seq;
}

static inline void pub_n(const char *subj, int n) {
    char buf[32];
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "m%d", i);
        pub(subj, buf);
    }
}

static inline js_consumer_config durable(const char *name) {
    js_consumer_config c = JS_CONSUMER_CONFIG_INIT;
    c.durable_name = name;
    return c;
}

static inline js_consumer *cadd(js_stream *s, const js_consumer_config *c) {
    js_consumer *k = NULL;
    CHECK_RC(js_consumer_add(s, c, &k), 0);
    ck_assert_ptr_nonnull(k);
    return k;
}

/* The next message (no waiting), which must exist. */
static inline js_msg *next(js_consumer *c) {
    js_msg *m = NULL;
    CHECK_RC(js_consumer_next(c, 0, &m), 0);
    ck_assert_ptr_nonnull(m);
    return m;
}

static inline void no_next(js_consumer *c) {
    js_msg *m = NULL;
    CHECK_RC(js_consumer_next(c, 0, &m), JS_ETIMEOUT);
    ck_assert_ptr_null(m);
}

static inline js_msg_meta meta(const js_msg *m) {
    js_msg_meta mm = JS_MSG_META_INIT;
    CHECK_RC(js_msg_metadata(m, &mm), 0);
    return mm;
}

static inline struct js_consumer_info *info(js_consumer *c) {
    struct js_consumer_info *i = NULL;
    CHECK_RC(js_consumer_info(c, &i), 0);
    return i;
}

static inline uint64_t num_pending(js_consumer *c) {
    struct js_consumer_info *i = info(c);
    uint64_t n = i->num_pending;
    js_consumer_info_free(i);
    return n;
}

/* Take and ack one message; returns its stream sequence. */
static inline uint64_t take_ack(js_consumer *c) {
    js_msg *m = next(c);
    uint64_t seq = js_msg_seq(m);
    CHECK_RC(js_msg_ack(m), 0);
    js_msg_free(m);
    return seq;
}

static inline uint64_t stream_msgs(js_stream *s) {
    struct js_stream_info *i;
    CHECK_RC(js_stream_info(s, &i), 0);
    uint64_t n = i->state->msgs;
    js_stream_info_free(i);
    return n;
}

#endif
