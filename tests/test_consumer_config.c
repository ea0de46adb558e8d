/*
 * test_consumer_config.c - consumer configs: every rule with its NATS code
 * and the field named, NATS's check order, defaults, update rules,
 * equality, filters, the work-queue rule, and the durable config file
 * (round trip, every truncation and bit flip, hand-made bad bodies,
 * allocation failures).
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "consumer_config.h"
#include "rangeset.h"
#include "util.h"
#include "runner.h"

#define SEC JSI_NS_PER_SEC
#define MS JSI_NS_PER_MS
#define CFG(...) {.version = JS_CONSUMER_CONFIG_VERSION, __VA_ARGS__}
#define X16 "xxxxxxxxxxxxxxxx"
#define X256 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16
#define X4096 \
    X256 X256 X256 X256 X256 X256 X256 X256 X256 X256 X256 X256 X256 X256 \
    X256 X256

/* check records a location on every passing ck_assert (a write(2) each);
 * the bit-flip loops use this instead, which only reaches check on failure. */
#define REQUIRE(expr)                                          \
    do {                                                       \
        if (!(expr))                                           \
            ck_abort_msg("requirement failed: %s", #expr);     \
    } while (0)

/* ---- streams ------------------------------------------------------------ */

enum { S_LIMITS, S_WQ, S_NONE };

static const char *const stream_subjects[] = {"orders.>", "audit.*"};
static const jsi_ccfg_stream limits_stream = {"ORDERS", JS_RETENTION_LIMITS,
                                              stream_subjects, 2};
static const jsi_ccfg_stream wq_stream = {"JOBS", JS_RETENTION_WORKQUEUE,
                                          stream_subjects, 2};

static const jsi_ccfg_stream *stream_of(int s) {
    return s == S_LIMITS ? &limits_stream : s == S_WQ ? &wq_stream : NULL;
}

/* Import and normalise; on failure c is empty. */
static int load(const js_consumer_config *in, int stream, jsi_ccfg *c) {
    int rc = jsi_ccfg_import(in, c);
    if (rc == 0 && (rc = jsi_ccfg_normalize(c, stream_of(stream))) != 0)
        jsi_ccfg_free(c);
    return rc;
}

/* js_errmsg() starts with "field:". */
static int names_field(const char *field) {
    size_t n = strlen(field);
    return strncmp(js_errmsg(), field, n) == 0 && js_errmsg()[n] == ':';
}

/* ---- the rule table ------------------------------------------------------ */

static const int64_t bo_neg[] = {SEC, -1};
static const int64_t bo_three[] = {SEC, 2 * SEC, 3 * SEC};
static const int64_t bo_one[] = {2 * SEC};
static const char *const f_ab[] = {"a", "b"};
static const char *const f_empty[] = {"a", ""};
static const char *const f_null[] = {"a", NULL};
static const char *const f_subset[] = {"a.b", "a.*"};
static const char *const f_dup[] = {"a.b", "a.b"};
static const char *const f_bad[] = {"a", "a..b"};
static const char *const f_collide[] = {"a.*.c", "a.b.*"};
static const char *const f_fwc[] = {"a.b", "x.>"};
static const char *const md_dup[] = {"k", "1", "j", "2", "k", "3"};

typedef struct rule {
    const char *what;
    int stream;
    js_consumer_config c;
    int nats;          /* 0: accepted */
    const char *field; /* js_errmsg() starts with it and ':' */
    const char *text;  /* NULL or a part of js_errmsg() */
} rule;

static const rule rules[] = {
    /* names */
    {"plain pull consumer", S_LIMITS, CFG(0), 0, NULL, NULL},
    {"durable", S_LIMITS, CFG(.durable_name = "D"), 0, NULL, NULL},
    {"name dot", S_LIMITS, CFG(.name = "a.b"), 10103, "name", "'.'"},
    {"durable star", S_LIMITS, CFG(.durable_name = "a*"), 10103,
     "durable_name", NULL},
    {"name gt", S_LIMITS, CFG(.name = "a>"), 10103, "name", NULL},
    {"name slash", S_LIMITS, CFG(.name = "a/b"), 10127, "name",
     "path separators"},
    {"durable backslash", S_LIMITS, CFG(.durable_name = "a\\b"), 10127,
     "durable_name", NULL},
    {"name 255 bytes", S_LIMITS,
     CFG(.name = &X256[1]), 0, NULL, NULL},
    {"name 256 bytes", S_LIMITS, CFG(.name = X256), 10102, "name",
     "too long"},
    {"durable 256 bytes", S_LIMITS, CFG(.durable_name = X256), 10102,
     "durable_name", NULL},
    {"name space", S_LIMITS, CFG(.name = "a b"), 10052, "name",
     "whitespace"},
    {"durable tab", S_LIMITS, CFG(.durable_name = "a\tb"), 10052,
     "durable_name", NULL},
    {"name and durable differ", S_LIMITS, CFG(.name = "a", .durable_name = "b"),
     10132, "durable_name", "equal"},
    {"name and durable equal", S_LIMITS, CFG(.name = "a", .durable_name = "a"),
     0, NULL, NULL},
    /* enums */
    {"ack policy 3", S_LIMITS, CFG(.ack_policy = 3), 10181, "ack_policy",
     "ack policy invalid"},
    {"ack policy -1", S_LIMITS, CFG(.ack_policy = -1), 10181, "ack_policy",
     NULL},
    {"replay policy 2", S_LIMITS, CFG(.replay_policy = 2), 10182,
     "replay_policy", "replay policy invalid"},
    {"replay original", S_LIMITS, CFG(.replay_policy = JS_REPLAY_ORIGINAL), 0,
     NULL, NULL},
    {"deliver policy 6", S_LIMITS, CFG(.deliver_policy = 6), 10094,
     "deliver_policy", NULL},
    {"deliver policy -1", S_LIMITS, CFG(.deliver_policy = -1), 10094,
     "deliver_policy", NULL},
    /* acks and backoff */
    {"negative backoff", S_LIMITS, CFG(.backoff = bo_neg, .num_backoff = 2),
     10184, "backoff[1]", "backoff needs to be positive"},
    {"negative ack wait", S_LIMITS, CFG(.ack_wait = -1), 10183, "ack_wait",
     "ack wait needs to be positive"},
    {"negative ack wait, ack none", S_LIMITS,
     CFG(.ack_wait = -1, .ack_policy = JS_ACK_NONE), 10183, "ack_wait", NULL},
    {"negative ack wait replaced by backoff", S_LIMITS,
     CFG(.ack_wait = -5, .backoff = bo_one, .num_backoff = 1), 0, NULL, NULL},
    {"backoff longer than max deliver", S_LIMITS,
     CFG(.backoff = bo_three, .num_backoff = 3, .max_deliver = 2), 10116,
     "max_deliver", "backoff"},
    {"backoff as long as max deliver", S_LIMITS,
     CFG(.backoff = bo_three, .num_backoff = 3, .max_deliver = 3), 0, NULL,
     NULL},
    {"backoff with unlimited max deliver", S_LIMITS,
     CFG(.backoff = bo_three, .num_backoff = 3, .max_deliver = -1), 0, NULL,
     NULL},
    {"backoff with max deliver 0 (unlimited)", S_LIMITS,
     CFG(.backoff = bo_three, .num_backoff = 3), 0, NULL, NULL},
    /* description */
    {"description 4096", S_LIMITS, CFG(.description = X4096), 0, NULL, NULL},
    {"description 4097", S_LIMITS, CFG(.description = X4096 "x"), 10107,
     "description", "too long"},
    /* push */
    {"push", S_LIMITS, CFG(.deliver_subject = "deliver.me"), 0, NULL, NULL},
    {"push wildcard *", S_LIMITS, CFG(.deliver_subject = "deliver.*"), 10079,
     "deliver_subject", "wildcards"},
    {"push wildcard >", S_LIMITS, CFG(.deliver_subject = ">"), 10079,
     "deliver_subject", NULL},
    {"push empty token", S_LIMITS, CFG(.deliver_subject = "a..b"), 10112,
     "deliver_subject", "invalid push consumer deliver subject"},
    {"push space", S_LIMITS, CFG(.deliver_subject = "a b"), 10112,
     "deliver_subject", NULL},
    {"push cycle", S_LIMITS, CFG(.deliver_subject = "orders.new"), 10081,
     "deliver_subject", "orders.>"},
    {"push cycle, one token wildcard", S_LIMITS,
     CFG(.deliver_subject = "audit.x"), 10081, "deliver_subject", NULL},
    {"push beside stream", S_LIMITS, CFG(.deliver_subject = "audit.x.y"), 0,
     NULL, NULL},
    {"push without stream context", S_NONE,
     CFG(.deliver_subject = "orders.new"), 0, NULL, NULL},
    {"push max waiting", S_LIMITS,
     CFG(.deliver_subject = "d", .max_waiting = 5), 10080, "max_waiting",
     "push mode can not set max waiting"},
    {"push negative max waiting", S_LIMITS,
     CFG(.deliver_subject = "d", .max_waiting = -1), 10080, "max_waiting",
     NULL},
    {"push ack none max ack pending", S_LIMITS,
     CFG(.deliver_subject = "d", .ack_policy = JS_ACK_NONE,
         .max_ack_pending = 10),
     10082, "max_ack_pending", "requires ack policy"},
    {"push ack none max ack pending -1", S_LIMITS,
     CFG(.deliver_subject = "d", .ack_policy = JS_ACK_NONE,
         .max_ack_pending = -1),
     0, NULL, NULL},
    {"push max batch", S_LIMITS, CFG(.deliver_subject = "d", .max_batch = 5),
     10052, "max_batch", "pull"},
    {"push max expires", S_LIMITS,
     CFG(.deliver_subject = "d", .max_expires = SEC), 10052, "max_expires",
     "pull"},
    {"push max bytes", S_LIMITS, CFG(.deliver_subject = "d", .max_bytes = 5),
     10052, "max_bytes", "pull"},
    {"push rate limit and group", S_LIMITS,
     CFG(.deliver_subject = "d", .rate_limit_bps = 1000,
         .deliver_group = "g"),
     0, NULL, NULL},
    /* pull */
    {"pull rate limit", S_LIMITS, CFG(.rate_limit_bps = 1), 10086,
     "rate_limit_bps", "pull mode can not have rate limit"},
    {"pull negative max waiting", S_LIMITS, CFG(.max_waiting = -1), 10087,
     "max_waiting", "needs to be positive"},
    {"pull negative max batch", S_LIMITS, CFG(.max_batch = -1), 10114,
     "max_batch", "batch needs to be > 0"},
    {"pull max expires under 1ms", S_LIMITS, CFG(.max_expires = MS - 1),
     10115, "max_expires", ">= 1ms"},
    {"pull negative max expires", S_LIMITS, CFG(.max_expires = -1), 10115,
     "max_expires", NULL},
    {"pull max expires 1ms", S_LIMITS, CFG(.max_expires = MS), 0, NULL, NULL},
    {"pull negative max bytes", S_LIMITS, CFG(.max_bytes = -1), 10052,
     "max_bytes", "negative"},
    {"pull deliver group", S_LIMITS, CFG(.deliver_group = "g"), 10052,
     "deliver_group", "deliver_subject"},
    {"pull limits", S_LIMITS,
     CFG(.max_batch = 10, .max_expires = SEC, .max_bytes = 1024,
         .max_waiting = 3),
     0, NULL, NULL},
    {"pull ack none on limits", S_LIMITS, CFG(.ack_policy = JS_ACK_NONE), 0,
     NULL, NULL},
    /* filters */
    {"filter subject", S_LIMITS, CFG(.filter_subject = "orders.*"), 0, NULL,
     NULL},
    {"filter outside stream subjects", S_LIMITS,
     CFG(.filter_subject = "other"), 0, NULL, NULL},
    {"both filters", S_LIMITS,
     CFG(.filter_subject = "a", .filter_subjects = f_ab,
         .num_filter_subjects = 2),
     10136, "filter_subjects", "both"},
    {"bad filter subject", S_LIMITS, CFG(.filter_subject = "a..b"), 10052,
     "filter_subject", "invalid subject"},
    {"bad > position", S_LIMITS, CFG(.filter_subject = "a.>.b"), 10052,
     "filter_subject", NULL},
    {"empty filter entry", S_LIMITS,
     CFG(.filter_subjects = f_empty, .num_filter_subjects = 2), 10139,
     "filter_subjects[1]", "cannot be empty"},
    {"NULL filter entry", S_LIMITS,
     CFG(.filter_subjects = f_null, .num_filter_subjects = 2), 10139,
     "filter_subjects[1]", NULL},
    {"bad filter entry", S_LIMITS,
     CFG(.filter_subjects = f_bad, .num_filter_subjects = 2), 10052,
     "filter_subjects", "a..b"},
    {"filter subset", S_LIMITS,
     CFG(.filter_subjects = f_subset, .num_filter_subjects = 2), 10138,
     "filter_subjects", "cannot overlap"},
    {"filter duplicate", S_LIMITS,
     CFG(.filter_subjects = f_dup, .num_filter_subjects = 2), 10138,
     "filter_subjects", NULL},
    {"filters collide, neither a subset", S_LIMITS,
     CFG(.filter_subjects = f_collide, .num_filter_subjects = 2), 0, NULL,
     NULL},
    {"two filters", S_LIMITS,
     CFG(.filter_subjects = f_fwc, .num_filter_subjects = 2), 0, NULL, NULL},
    {"one filter in the list", S_LIMITS,
     CFG(.filter_subjects = f_ab, .num_filter_subjects = 1), 0, NULL, NULL},
    /* starting position */
    {"all with start seq", S_LIMITS, CFG(.opt_start_seq = 5), 10094,
     "opt_start_seq",
     "consumer delivery policy is deliver all, but optional start sequence "
     "is also set"},
    {"all with start time", S_LIMITS, CFG(.opt_start_time = 5), 10094,
     "opt_start_time",
     "consumer delivery policy is deliver all, but optional start time is "
     "also set"},
    {"last with start seq", S_LIMITS,
     CFG(.deliver_policy = JS_DELIVER_LAST, .opt_start_seq = 5), 10094,
     "opt_start_seq", "deliver last,"},
    {"new with start time", S_LIMITS,
     CFG(.deliver_policy = JS_DELIVER_NEW, .opt_start_time = 5), 10094,
     "opt_start_time", "deliver new,"},
    {"by seq without seq", S_LIMITS,
     CFG(.deliver_policy = JS_DELIVER_BY_START_SEQUENCE), 10094,
     "opt_start_seq",
     "consumer delivery policy is deliver by start sequence, but optional "
     "start sequence is not set"},
    {"by seq with time", S_LIMITS,
     CFG(.deliver_policy = JS_DELIVER_BY_START_SEQUENCE, .opt_start_seq = 1,
         .opt_start_time = 5),
     10094, "opt_start_time", "optional start time is also set"},
    {"by seq", S_LIMITS,
     CFG(.deliver_policy = JS_DELIVER_BY_START_SEQUENCE, .opt_start_seq = 7),
     0, NULL, NULL},
    {"by time without time", S_LIMITS,
     CFG(.deliver_policy = JS_DELIVER_BY_START_TIME, .opt_start_seq = 3),
     10094, "opt_start_time",
     "deliver by start time, but optional start time is not set"},
    {"by time with seq", S_LIMITS,
     CFG(.deliver_policy = JS_DELIVER_BY_START_TIME, .opt_start_seq = 3,
         .opt_start_time = 5),
     10094, "opt_start_seq",
     "deliver by start time, but optional start start sequence is also set"},
    {"by time", S_LIMITS,
     CFG(.deliver_policy = JS_DELIVER_BY_START_TIME, .opt_start_time = 5),
     0, NULL, NULL},
    {"by time before 1970", S_LIMITS,
     CFG(.deliver_policy = JS_DELIVER_BY_START_TIME, .opt_start_time = -5),
     0, NULL, NULL},
    {"last per subject unfiltered", S_LIMITS,
     CFG(.deliver_policy = JS_DELIVER_LAST_PER_SUBJECT), 10094,
     "filter_subject",
     "deliver last per subject, but optional filter subject is not set"},
    {"last per subject filtered", S_LIMITS,
     CFG(.deliver_policy = JS_DELIVER_LAST_PER_SUBJECT,
         .filter_subjects = f_ab, .num_filter_subjects = 2),
     0, NULL, NULL},
    /* sampling */
    {"sample 0", S_LIMITS, CFG(.sample_freq = "0"), 0, NULL, NULL},
    {"sample 100%", S_LIMITS, CFG(.sample_freq = "100%"), 0, NULL, NULL},
    {"sample 007", S_LIMITS, CFG(.sample_freq = "007"), 0, NULL, NULL},
    {"sample 101", S_LIMITS, CFG(.sample_freq = "101"), 10095, "sample_freq",
     "failed to parse consumer sampling configuration"},
    {"sample abc", S_LIMITS, CFG(.sample_freq = "abc"), 10095, "sample_freq",
     NULL},
    {"sample %", S_LIMITS, CFG(.sample_freq = "%"), 10095, "sample_freq",
     NULL},
    {"sample 5%%", S_LIMITS, CFG(.sample_freq = "5%%"), 10095, "sample_freq",
     NULL},
    {"sample -1", S_LIMITS, CFG(.sample_freq = "-1"), 10095, "sample_freq",
     NULL},
    {"sample trailing space", S_LIMITS, CFG(.sample_freq = "5 "), 10095,
     "sample_freq", NULL},
    {"sample huge", S_LIMITS, CFG(.sample_freq = "99999999999999999999"),
     10095, "sample_freq", NULL},
    /* metadata, inactivity */
    {"metadata duplicate key", S_LIMITS,
     CFG(.metadata = md_dup, .num_metadata = 3), 10052, "metadata",
     "duplicate key \"k\""},
    {"negative inactive threshold", S_LIMITS, CFG(.inactive_threshold = -1),
     10052, "inactive_threshold", "negative"},
    /* work queue */
    {"wq explicit all", S_WQ, CFG(0), 0, NULL, NULL},
    {"wq pull ack none", S_WQ, CFG(.ack_policy = JS_ACK_NONE), 10084,
     "ack_policy", "pull mode requires explicit ack policy on workqueue"},
    {"wq push ack none", S_WQ,
     CFG(.ack_policy = JS_ACK_NONE, .deliver_subject = "d"), 10098,
     "ack_policy", "workqueue stream requires explicit ack"},
    {"wq ack all", S_WQ, CFG(.ack_policy = JS_ACK_ALL), 10098, "ack_policy",
     NULL},
    {"wq deliver last", S_WQ, CFG(.deliver_policy = JS_DELIVER_LAST), 10101,
     "deliver_policy", "must be deliver all on workqueue"},
    {"wq deliver new", S_WQ, CFG(.deliver_policy = JS_DELIVER_NEW), 10101,
     "deliver_policy", NULL},
    {"wq without stream context", S_NONE, CFG(.ack_policy = JS_ACK_ALL), 0,
     NULL, NULL},
    /* NATS's order: the first failing rule is reported */
    {"order: names before policies", S_LIMITS,
     CFG(.name = "a.b", .ack_policy = 9), 10103, "name", NULL},
    {"order: ack policy before filters", S_LIMITS,
     CFG(.ack_policy = 9, .filter_subject = "a..b"), 10181, "ack_policy",
     NULL},
    {"order: backoff before ack wait", S_LIMITS,
     CFG(.ack_wait = -1, .backoff = bo_neg, .num_backoff = 2), 10184,
     "backoff[1]", NULL},
    {"order: ack wait before description", S_LIMITS,
     CFG(.ack_wait = -1, .description = X4096 "x",
         .ack_policy = JS_ACK_NONE),
     10183, "ack_wait", NULL},
    {"order: description before push rules", S_LIMITS,
     CFG(.description = X4096 "x", .deliver_subject = "a.*"), 10107,
     "description", NULL},
    {"order: pull wq ack none before rate limit", S_WQ,
     CFG(.ack_policy = JS_ACK_NONE, .rate_limit_bps = 5), 10084,
     "ack_policy", NULL},
    {"order: pull rules before filters", S_LIMITS,
     CFG(.rate_limit_bps = 5, .filter_subject = "a",
         .filter_subjects = f_ab, .num_filter_subjects = 2),
     10086, "rate_limit_bps", NULL},
    {"order: filters before start", S_LIMITS,
     CFG(.filter_subject = "a..b", .opt_start_seq = 4), 10052,
     "filter_subject", NULL},
    {"order: start before sampling", S_LIMITS,
     CFG(.opt_start_seq = 4, .sample_freq = "x"), 10094, "opt_start_seq",
     NULL},
    {"order: sampling before name mismatch", S_LIMITS,
     CFG(.sample_freq = "x", .name = "a", .durable_name = "b"), 10095,
     "sample_freq", NULL},
    {"order: name mismatch before metadata", S_LIMITS,
     CFG(.name = "a", .durable_name = "b", .metadata = md_dup,
         .num_metadata = 3),
     10132, "durable_name", NULL},
    {"order: single-consumer rules before wq", S_WQ,
     CFG(.ack_policy = JS_ACK_ALL, .sample_freq = "x"), 10095,
     "sample_freq", NULL},
    {"order: wq ack before deliver all", S_WQ,
     CFG(.ack_policy = JS_ACK_ALL, .deliver_policy = JS_DELIVER_NEW), 10098,
     "ack_policy", NULL},
};

START_TEST(rule_table_accepts_and_rejects_with_nats_code_and_field) {
    const rule *r = &rules[_i];
    jsi_ccfg c;
    jsi_err_clear();
    int rc = load(&r->c, r->stream, &c);
    if (r->nats == 0) {
        ck_assert_msg(rc == 0, "%s: rc %d (%s)", r->what, rc, js_errmsg());
        jsi_ccfg_free(&c);
        return;
    }
    ck_assert_msg(rc == JS_EINVAL, "%s: rc %d, want JS_EINVAL", r->what, rc);
    ck_assert_msg(js_errcode_nats() == r->nats, "%s: NATS code %d, want %d "
                  "(%s)", r->what, js_errcode_nats(), r->nats, js_errmsg());
    ck_assert_msg(names_field(r->field), "%s: message \"%s\" does not start "
                  "with \"%s:\"", r->what, js_errmsg(), r->field);
    ck_assert_msg(!r->text || strstr(js_errmsg(), r->text), "%s: message "
                  "\"%s\" lacks \"%s\"", r->what, js_errmsg(), r->text);
}
END_TEST

/* ---- import --------------------------------------------------------------- */

START_TEST(import_rejects_null_and_unknown_versions) {
    js_consumer_config in = JS_CONSUMER_CONFIG_INIT;
    jsi_ccfg c;
    ck_assert_int_eq(jsi_ccfg_import(NULL, &c), JS_EINVAL);
    in.version = 0;
    ck_assert_int_eq(jsi_ccfg_import(&in, &c), JS_EINVAL);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "version 0"));
    in.version = JS_CONSUMER_CONFIG_VERSION + 1;
    ck_assert_int_eq(jsi_ccfg_import(&in, &c), JS_EINVAL);
    ck_assert_int_eq(js_errcode_nats(), 0);
}
END_TEST

START_TEST(import_rejects_null_arrays_and_null_metadata_keys) {
    static const char *const md_nullkey[] = {"a", "1", NULL, "2"};
    js_consumer_config in = JS_CONSUMER_CONFIG_INIT;
    jsi_ccfg c;
    in.num_backoff = 1;
    ck_assert_int_eq(jsi_ccfg_import(&in, &c), JS_EINVAL);
    ck_assert(names_field("backoff"));
    in.num_backoff = 0;
    in.num_filter_subjects = 2;
    ck_assert_int_eq(jsi_ccfg_import(&in, &c), JS_EINVAL);
    ck_assert(names_field("filter_subjects"));
    in.num_filter_subjects = 0;
    in.num_metadata = 1;
    ck_assert_int_eq(jsi_ccfg_import(&in, &c), JS_EINVAL);
    ck_assert(names_field("metadata"));
    in.metadata = md_nullkey;
    in.num_metadata = 2;
    ck_assert_int_eq(jsi_ccfg_import(&in, &c), JS_EINVAL);
    ck_assert_int_eq(js_errcode_nats(), 10052);
    ck_assert(names_field("metadata"));
}
END_TEST

START_TEST(import_copies_everything_the_caller_owns) {
    char name[] = "C1", filt[] = "a.b", key[] = "k", val[] = "v";
    int64_t bo[] = {SEC, 2 * SEC};
    const char *filters[] = {filt};
    const char *md[] = {key, val};
    js_consumer_config in = JS_CONSUMER_CONFIG_INIT;
    jsi_ccfg c;
    in.durable_name = name;
    in.backoff = bo;
    in.num_backoff = 2;
    in.filter_subjects = filters;
    in.num_filter_subjects = 1;
    in.metadata = md;
    in.num_metadata = 1;
    ck_assert_int_eq(jsi_ccfg_import(&in, &c), 0);
    name[0] = filt[0] = key[0] = val[0] = 'X';
    bo[0] = 99;
    ck_assert_str_eq(c.c.durable_name, "C1");
    ck_assert_str_eq(c.c.filter_subjects[0], "a.b");
    ck_assert_str_eq(c.c.metadata[0], "k");
    ck_assert_str_eq(c.c.metadata[1], "v");
    ck_assert_int_eq(c.c.backoff[0], SEC);
    ck_assert_ptr_ne(c.c.backoff, bo);
    jsi_ccfg_free(&c);
}
END_TEST

START_TEST(import_turns_empty_strings_into_unset) {
    js_consumer_config in = CFG(.name = "", .durable_name = "",
                                .description = "", .filter_subject = "",
                                .sample_freq = "", .deliver_subject = "",
                                .deliver_group = "");
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_ptr_null(c.c.name);
    ck_assert_ptr_null(c.c.durable_name);
    ck_assert_ptr_null(c.c.description);
    ck_assert_ptr_null(c.c.filter_subject);
    ck_assert_ptr_null(c.c.sample_freq);
    ck_assert_ptr_null(c.c.deliver_subject); /* so: a pull consumer */
    ck_assert_ptr_null(c.c.deliver_group);
    ck_assert_int_eq(c.c.max_waiting, 512);
    ck_assert_int_eq(c.sample_pct, -1);
    jsi_ccfg_free(&c);
}
END_TEST

START_TEST(metadata_null_value_is_empty_string) {
    static const char *const md[] = {"k", NULL};
    js_consumer_config in = CFG(.metadata = md, .num_metadata = 1);
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_str_eq(c.c.metadata[1], "");
    jsi_ccfg_free(&c);
}
END_TEST

START_TEST(metadata_of_128k_is_accepted_and_one_byte_more_is_not) {
    size_t half = 64 * 1024;
    char *k = malloc(half + 1), *v = malloc(half + 2);
    memset(k, 'k', half);
    k[half] = '\0';
    memset(v, 'v', half + 1);
    v[half] = '\0';
    const char *md[] = {k, v};
    js_consumer_config in = CFG(.metadata = md, .num_metadata = 1);
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    jsi_ccfg_free(&c);
    v[half] = 'v';
    v[half + 1] = '\0';
    ck_assert_int_eq(load(&in, S_LIMITS, &c), JS_EINVAL);
    ck_assert_int_eq(js_errcode_nats(), 10135);
    ck_assert(names_field("metadata"));
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "128KB"));
    free(k);
    free(v);
}
END_TEST

/* ---- defaults --------------------------------------------------------------- */

START_TEST(pull_explicit_ephemeral_gets_nats_defaults) {
    js_consumer_config in = JS_CONSUMER_CONFIG_INIT;
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_ptr_null(c.c.name); /* the runtime names it */
    ck_assert_int_eq(c.c.ack_policy, JS_ACK_EXPLICIT);
    ck_assert_int_eq(c.c.ack_wait, 30 * SEC);
    ck_assert_int_eq(c.c.max_deliver, -1);
    ck_assert_int_eq(c.c.max_waiting, 512);
    ck_assert_int_eq(c.c.max_ack_pending, 1000);
    ck_assert_int_eq(c.c.inactive_threshold, 5 * SEC);
    ck_assert_int_eq(c.c.max_batch, 0);
    ck_assert_int_eq(c.c.max_expires, 0);
    ck_assert_int_eq(c.c.max_bytes, 0);
    ck_assert_int_eq(c.sample_pct, -1);
    ck_assert_uint_eq(c.c.version, JS_CONSUMER_CONFIG_VERSION);
    jsi_ccfg_free(&c);
}
END_TEST

START_TEST(durable_takes_its_name_and_no_inactivity_limit) {
    js_consumer_config in = CFG(.durable_name = "D");
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_str_eq(c.c.name, "D");
    ck_assert_int_eq(c.c.inactive_threshold, 0);
    jsi_ccfg_free(&c);
    in.inactive_threshold = 7 * SEC;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_int_eq(c.c.inactive_threshold, 7 * SEC);
    jsi_ccfg_free(&c);
}
END_TEST

START_TEST(ack_none_keeps_zero_ack_wait_and_max_ack_pending) {
    js_consumer_config in = CFG(.ack_policy = JS_ACK_NONE);
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_int_eq(c.c.ack_wait, 0);
    ck_assert_int_eq(c.c.max_ack_pending, 0);
    jsi_ccfg_free(&c);
    in.max_ack_pending = -1;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_int_eq(c.c.max_ack_pending, -1);
    jsi_ccfg_free(&c);
}
END_TEST

START_TEST(ack_all_gets_default_ack_wait) {
    js_consumer_config in = CFG(.ack_policy = JS_ACK_ALL);
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_int_eq(c.c.ack_wait, 30 * SEC);
    ck_assert_int_eq(c.c.max_ack_pending, 1000);
    jsi_ccfg_free(&c);
}
END_TEST

START_TEST(out_of_range_limits_become_unlimited) {
    js_consumer_config in = CFG(.max_deliver = -5, .max_ack_pending = -7);
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_int_eq(c.c.max_deliver, -1);
    ck_assert_int_eq(c.c.max_ack_pending, -1);
    jsi_ccfg_free(&c);
}
END_TEST

START_TEST(backoff_first_delay_becomes_ack_wait) {
    js_consumer_config in = CFG(.ack_wait = 9 * SEC, .backoff = bo_three,
                                .num_backoff = 3, .max_deliver = 5);
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_int_eq(c.c.ack_wait, SEC);
    ck_assert_int_eq(c.c.max_deliver, 5);
    jsi_ccfg_free(&c);
}
END_TEST

START_TEST(push_keeps_max_waiting_zero) {
    js_consumer_config in = CFG(.deliver_subject = "d");
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_int_eq(c.c.max_waiting, 0);
    ck_assert_int_eq(c.c.max_ack_pending, 1000);
    jsi_ccfg_free(&c);
}
END_TEST

START_TEST(sample_freq_is_parsed_into_percent) {
    static const struct {
        const char *s;
        int pct;
    } t[] = {{"0", 0}, {"5", 5}, {"5%", 5}, {"100", 100}, {"100%", 100},
             {"007%", 7}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        js_consumer_config in = CFG(.sample_freq = t[i].s);
        jsi_ccfg c;
        ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
        ck_assert_int_eq(c.sample_pct, t[i].pct);
        ck_assert_str_eq(c.c.sample_freq, t[i].s); /* kept as given */
        jsi_ccfg_free(&c);
    }
}
END_TEST

START_TEST(flags_become_zero_or_one) {
    js_consumer_config in = CFG(.headers_only = 7, .mem_storage = -2);
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_int_eq(c.c.headers_only, 1);
    ck_assert_int_eq(c.c.mem_storage, 1);
    jsi_ccfg_free(&c);
}
END_TEST

START_TEST(metadata_is_sorted_by_key) {
    static const char *const md[] = {"z", "1", "a", "2", "m", "3"};
    js_consumer_config in = CFG(.metadata = md, .num_metadata = 3);
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_str_eq(c.c.metadata[0], "a");
    ck_assert_str_eq(c.c.metadata[1], "2");
    ck_assert_str_eq(c.c.metadata[2], "m");
    ck_assert_str_eq(c.c.metadata[3], "3");
    ck_assert_str_eq(c.c.metadata[4], "z");
    ck_assert_str_eq(c.c.metadata[5], "1");
    jsi_ccfg_free(&c);
}
END_TEST

/* A config with every field away from its default. */
static const int64_t full_backoff[] = {2 * SEC, 5 * SEC, 30 * SEC};
static const char *const full_filters[] = {"orders.eu.*", "orders.us.>"};
static const char *const full_md[] = {"team", "billing", "tier", "",
                                      "owner", "ops"};
static const js_consumer_config full_cfg =
    CFG(.name = "billing", .durable_name = "billing",
        .description = "bills", .deliver_policy = JS_DELIVER_BY_START_SEQUENCE,
        .opt_start_seq = 42, .ack_policy = JS_ACK_EXPLICIT, .ack_wait = 0,
        .max_deliver = 7, .backoff = full_backoff, .num_backoff = 3,
        .filter_subjects = full_filters, .num_filter_subjects = 2,
        .replay_policy = JS_REPLAY_ORIGINAL, .rate_limit_bps = 123456,
        .sample_freq = "25%", .max_ack_pending = 77, .headers_only = 1,
        .deliver_subject = "push.billing", .deliver_group = "workers",
        .inactive_threshold = 3 * SEC, .metadata = full_md, .num_metadata = 3,
        .mem_storage = 1);

static const js_consumer_config full_pull_cfg =
    CFG(.name = "P", .deliver_policy = JS_DELIVER_BY_START_TIME,
        .opt_start_time = INT64_C(1700000000123456789),
        .ack_policy = JS_ACK_ALL, .ack_wait = 4 * SEC, .max_deliver = 3,
        .filter_subject = "orders.>", .max_waiting = 9, .max_ack_pending = -1,
        .max_batch = 100, .max_expires = 10 * SEC, .max_bytes = 1 << 20,
        .sample_freq = "3");

START_TEST(normalize_is_idempotent) {
    const js_consumer_config *cfgs[] = {&full_cfg, &full_pull_cfg};
    for (size_t i = 0; i < 2; i++) {
        jsi_ccfg a, b;
        ck_assert_int_eq(load(cfgs[i], S_LIMITS, &a), 0);
        ck_assert_int_eq(jsi_ccfg_copy(&a, &b), 0);
        ck_assert_int_eq(jsi_ccfg_normalize(&b, &limits_stream), 0);
        ck_assert_int_eq(jsi_ccfg_equal(&a, &b), 1);
        /* and importing the normalised public struct gives the same */
        jsi_ccfg c;
        ck_assert_int_eq(load(&a.c, S_LIMITS, &c), 0);
        ck_assert_int_eq(jsi_ccfg_equal(&a, &c), 1);
        jsi_ccfg_free(&a);
        jsi_ccfg_free(&b);
        jsi_ccfg_free(&c);
    }
}
END_TEST

START_TEST(set_name_names_an_ephemeral_and_checks_the_name) {
    js_consumer_config in = JS_CONSUMER_CONFIG_INIT;
    jsi_ccfg c;
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_int_eq(jsi_ccfg_set_name(&c, "a.b"), JS_EINVAL);
    ck_assert_int_eq(js_errcode_nats(), 10103);
    ck_assert_int_eq(jsi_ccfg_set_name(&c, ""), JS_EINVAL);
    ck_assert_int_eq(jsi_ccfg_set_name(&c, "Xy12Ab34"), 0);
    ck_assert_str_eq(c.c.name, "Xy12Ab34");
    ck_assert_int_eq(jsi_ccfg_set_name(&c, "Other"), 0);
    ck_assert_str_eq(c.c.name, "Other");
    jsi_ccfg_free(&c);
}
END_TEST

/* ---- updates ----------------------------------------------------------------- */

typedef struct upd {
    const char *what;
    js_consumer_config old, nu;
    const char *field; /* NULL: allowed */
} upd;

#define PUSH(...) CFG(.deliver_subject = "d", __VA_ARGS__)

static const upd updates[] = {
    {"same", CFG(.durable_name = "D"), CFG(.durable_name = "D"), NULL},
    {"description", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .description = "x"), NULL},
    {"ack wait", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .ack_wait = SEC), NULL},
    {"max deliver and backoff", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .max_deliver = 3, .backoff = bo_three,
         .num_backoff = 3),
     NULL},
    {"filters", CFG(.durable_name = "D", .filter_subject = "a"),
     CFG(.durable_name = "D", .filter_subjects = f_ab,
         .num_filter_subjects = 2),
     NULL},
    {"rate limit", PUSH(.durable_name = "D"),
     PUSH(.durable_name = "D", .rate_limit_bps = 5), NULL},
    {"sample freq", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .sample_freq = "50"), NULL},
    {"max ack pending", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .max_ack_pending = 5), NULL},
    {"headers only", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .headers_only = 1), NULL},
    {"pull limits", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .max_batch = 5, .max_expires = SEC,
         .max_bytes = 5),
     NULL},
    {"deliver group", PUSH(.durable_name = "D"),
     PUSH(.durable_name = "D", .deliver_group = "g"), NULL},
    {"push deliver subject", PUSH(.durable_name = "D"),
     CFG(.durable_name = "D", .deliver_subject = "e"), NULL},
    {"inactive threshold", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .inactive_threshold = SEC), NULL},
    {"metadata", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .metadata = full_md, .num_metadata = 3), NULL},
    {"name", CFG(.name = "A"), CFG(.name = "B"), "name"},
    {"durable to ephemeral", CFG(.durable_name = "D"), CFG(.name = "D"),
     "durable_name"},
    {"deliver policy", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .deliver_policy = JS_DELIVER_NEW),
     "deliver_policy"},
    {"mem storage", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .mem_storage = 1), "mem_storage"},
    {"start seq", 
     CFG(.durable_name = "D", .deliver_policy = JS_DELIVER_BY_START_SEQUENCE,
         .opt_start_seq = 1),
     CFG(.durable_name = "D", .deliver_policy = JS_DELIVER_BY_START_SEQUENCE,
         .opt_start_seq = 2),
     "opt_start_seq"},
    {"start time",
     CFG(.durable_name = "D", .deliver_policy = JS_DELIVER_BY_START_TIME,
         .opt_start_time = 1),
     CFG(.durable_name = "D", .deliver_policy = JS_DELIVER_BY_START_TIME,
         .opt_start_time = 2),
     "opt_start_time"},
    {"ack policy", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .ack_policy = JS_ACK_ALL), "ack_policy"},
    {"replay policy", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .replay_policy = JS_REPLAY_ORIGINAL),
     "replay_policy"},
    {"pull to push", CFG(.durable_name = "D"), PUSH(.durable_name = "D"),
     "deliver_subject"},
    {"push to pull", PUSH(.durable_name = "D"), CFG(.durable_name = "D"),
     "deliver_subject"},
    {"max waiting", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .max_waiting = 3), "max_waiting"},
    {"order: deliver policy before ack policy", CFG(.durable_name = "D"),
     CFG(.durable_name = "D", .deliver_policy = JS_DELIVER_NEW,
         .ack_policy = JS_ACK_ALL),
     "deliver_policy"},
};

START_TEST(update_table_allows_what_nats_allows) {
    const upd *u = &updates[_i];
    jsi_ccfg o, n;
    ck_assert_msg(load(&u->old, S_LIMITS, &o) == 0, "%s: old: %s", u->what,
                  js_errmsg());
    ck_assert_msg(load(&u->nu, S_LIMITS, &n) == 0, "%s: new: %s", u->what,
                  js_errmsg());
    int rc = jsi_ccfg_check_update(&o, &n);
    if (!u->field) {
        ck_assert_msg(rc == 0, "%s: rc %d (%s)", u->what, rc, js_errmsg());
    } else {
        ck_assert_msg(rc == JS_EUPDATE, "%s: rc %d", u->what, rc);
        ck_assert_int_eq(js_errcode_nats(), 10012);
        ck_assert_msg(names_field(u->field), "%s: \"%s\"", u->what,
                      js_errmsg());
        ck_assert_msg(strstr(js_errmsg(), "can not update") ||
                          strstr(js_errmsg(), "can not be updated"),
                      "%s: \"%s\"", u->what, js_errmsg());
    }
    jsi_ccfg_free(&o);
    jsi_ccfg_free(&n);
}
END_TEST

START_TEST(update_revalidates_backoff_against_max_deliver) {
    js_consumer_config nu = CFG(.durable_name = "D", .max_deliver = 2,
                                .backoff = bo_three, .num_backoff = 3);
    jsi_ccfg n;
    ck_assert_int_eq(load(&nu, S_LIMITS, &n), JS_EINVAL);
    ck_assert_int_eq(js_errcode_nats(), 10116);
}
END_TEST

/* ---- equality, copy ---------------------------------------------------------- */

START_TEST(equal_sees_every_field) {
    jsi_ccfg a, b;
    ck_assert_int_eq(load(&full_cfg, S_LIMITS, &a), 0);
    ck_assert_int_eq(load(&full_cfg, S_LIMITS, &b), 0);
    ck_assert_int_eq(jsi_ccfg_equal(&a, &b), 1);
    jsi_ccfg_free(&b);
    /* Change one field at a time in the public struct, reload, compare. */
    for (int k = 0; k < 21; k++) {
        static const int64_t bo2[] = {2 * SEC, 5 * SEC, 31 * SEC};
        static const char *const f2[] = {"orders.eu.*", "orders.uk.>"};
        static const char *const md2[] = {"team", "billing", "tier", "",
                                          "owner", "ops2"};
        js_consumer_config c = full_cfg;
        switch (k) {
        case 0: c.description = "other"; break;
        case 1: c.opt_start_seq = 43; break;
        case 2: c.ack_policy = JS_ACK_ALL; break;
        case 3: c.backoff = bo2; break;
        case 4: c.max_deliver = 8; break;
        case 5: c.num_backoff = 2; break;
        case 6: c.filter_subjects = f2; break;
        case 7: c.num_filter_subjects = 1; break;
        case 8: c.replay_policy = JS_REPLAY_INSTANT; break;
        case 9: c.rate_limit_bps = 1; break;
        case 10: c.sample_freq = "25"; break;
        case 11: c.max_ack_pending = 78; break;
        case 12: c.headers_only = 0; break;
        case 13: c.deliver_subject = "push.other"; break;
        case 14: c.deliver_group = NULL; break;
        case 15: c.inactive_threshold = 4 * SEC; break;
        case 16: c.metadata = md2; break;
        case 17: c.num_metadata = 2; break;
        case 18: c.mem_storage = 0; break;
        case 19: c.name = c.durable_name = "billing2"; break;
        case 20: c.description = NULL; break;
        }
        ck_assert_msg(load(&c, S_LIMITS, &b) == 0, "%d: %s", k, js_errmsg());
        ck_assert_msg(jsi_ccfg_equal(&a, &b) == 0, "change %d not seen", k);
        ck_assert_msg(jsi_ccfg_equal(&b, &a) == 0, "change %d not seen", k);
        jsi_ccfg_free(&b);
    }
    jsi_ccfg_free(&a);
}
END_TEST

START_TEST(equal_sees_pull_fields) {
    jsi_ccfg a, b;
    ck_assert_int_eq(load(&full_pull_cfg, S_LIMITS, &a), 0);
    for (int k = 0; k < 8; k++) {
        js_consumer_config c = full_pull_cfg;
        switch (k) {
        case 0: c.opt_start_time++; break;
        case 1: c.ack_wait++; break;
        case 2: c.filter_subject = "orders.*"; break;
        case 3: c.max_waiting++; break;
        case 4: c.max_batch++; break;
        case 5: c.max_expires++; break;
        case 6: c.max_bytes++; break;
        case 7: c.deliver_policy = JS_DELIVER_ALL, c.opt_start_time = 0; break;
        }
        ck_assert_msg(load(&c, S_LIMITS, &b) == 0, "%d: %s", k, js_errmsg());
        ck_assert_msg(jsi_ccfg_equal(&a, &b) == 0, "change %d not seen", k);
        jsi_ccfg_free(&b);
    }
    jsi_ccfg_free(&a);
}
END_TEST

START_TEST(filter_subject_and_a_one_entry_list_differ) {
    static const char *const one[] = {"a"};
    js_consumer_config x = CFG(.filter_subject = "a");
    js_consumer_config y = CFG(.filter_subjects = one,
                               .num_filter_subjects = 1);
    jsi_ccfg a, b;
    const char *const *f;
    ck_assert_int_eq(load(&x, S_LIMITS, &a), 0);
    ck_assert_int_eq(load(&y, S_LIMITS, &b), 0);
    ck_assert_int_eq(jsi_ccfg_equal(&a, &b), 0);
    ck_assert_uint_eq(jsi_ccfg_filters(&b, &f), 1);
    ck_assert_str_eq(f[0], "a");
    jsi_ccfg_free(&a);
    jsi_ccfg_free(&b);
}
END_TEST

START_TEST(metadata_order_does_not_matter) {
    static const char *const m1[] = {"a", "1", "b", "2"};
    static const char *const m2[] = {"b", "2", "a", "1"};
    js_consumer_config x = CFG(.metadata = m1, .num_metadata = 2);
    js_consumer_config y = CFG(.metadata = m2, .num_metadata = 2);
    jsi_ccfg a, b;
    ck_assert_int_eq(load(&x, S_LIMITS, &a), 0);
    ck_assert_int_eq(load(&y, S_LIMITS, &b), 0);
    ck_assert_int_eq(jsi_ccfg_equal(&a, &b), 1);
    jsi_ccfg_free(&a);
    jsi_ccfg_free(&b);
}
END_TEST

START_TEST(copy_is_deep_and_equal) {
    jsi_ccfg a, b;
    ck_assert_int_eq(load(&full_cfg, S_LIMITS, &a), 0);
    ck_assert_int_eq(jsi_ccfg_copy(&a, &b), 0);
    ck_assert_int_eq(jsi_ccfg_equal(&a, &b), 1);
    ck_assert_ptr_ne(a.c.name, b.c.name);
    ck_assert_ptr_ne(a.c.backoff, b.c.backoff);
    ck_assert_ptr_ne(a.c.filter_subjects, b.c.filter_subjects);
    ck_assert_ptr_ne(a.c.metadata[0], b.c.metadata[0]);
    ck_assert_int_eq(b.sample_pct, 25);
    jsi_ccfg_free(&a); /* b must not depend on a */
    ck_assert_str_eq(b.c.filter_subjects[1], "orders.us.>");
    ck_assert_str_eq(b.c.deliver_group, "workers");
    jsi_ccfg_free(&b);
    jsi_ccfg_free(NULL);
}
END_TEST

/* ---- filters and the work-queue rule -------------------------------------- */

START_TEST(filters_list_and_matching) {
    jsi_ccfg a, b, c;
    const char *const *f;
    js_consumer_config none = JS_CONSUMER_CONFIG_INIT;
    js_consumer_config one = CFG(.filter_subject = "orders.*");
    ck_assert_int_eq(load(&none, S_LIMITS, &a), 0);
    ck_assert_int_eq(load(&one, S_LIMITS, &b), 0);
    ck_assert_int_eq(load(&full_cfg, S_LIMITS, &c), 0);
    ck_assert_uint_eq(jsi_ccfg_filters(&a, &f), 0);
    ck_assert_ptr_null(f);
    ck_assert_int_eq(jsi_ccfg_matches(&a, "anything.at.all", 15), 1);
    ck_assert_uint_eq(jsi_ccfg_filters(&b, &f), 1);
    ck_assert_str_eq(f[0], "orders.*");
    ck_assert_int_eq(jsi_ccfg_matches(&b, "orders.1", 8), 1);
    ck_assert_int_eq(jsi_ccfg_matches(&b, "orders.1.x", 10), 0);
    ck_assert_int_eq(jsi_ccfg_matches(&b, "orders.1.x", 8), 1); /* length */
    ck_assert_uint_eq(jsi_ccfg_filters(&c, &f), 2);
    ck_assert_int_eq(jsi_ccfg_matches(&c, "orders.eu.1", 11), 1);
    ck_assert_int_eq(jsi_ccfg_matches(&c, "orders.us.1.2", 13), 1);
    ck_assert_int_eq(jsi_ccfg_matches(&c, "orders.uk.1", 11), 0);
    ck_assert_int_eq(jsi_ccfg_matches(&c, "orders.eu.1.2", 13), 0);
    jsi_ccfg_free(&a);
    jsi_ccfg_free(&b);
    jsi_ccfg_free(&c);
}
END_TEST

static void load_filtered(jsi_ccfg *c, const char *name,
                          const char *const *f, size_t n) {
    js_consumer_config in = CFG(.durable_name = name, .filter_subjects = f,
                                .num_filter_subjects = n);
    ck_assert_msg(load(&in, S_WQ, c) == 0, "%s", js_errmsg());
}

START_TEST(wq_conflict_follows_nats_partition_rules) {
    static const char *const fa[] = {"jobs.a", "jobs.b.*"};
    static const char *const fb[] = {"jobs.c", "jobs.b.x"};
    static const char *const fc[] = {"jobs.c", "jobs.d"};
    jsi_ccfg all, a, b, c;
    const char *why = NULL;
    load_filtered(&all, "ALL", NULL, 0);
    load_filtered(&a, "A", fa, 2);
    load_filtered(&b, "B", fb, 2);
    load_filtered(&c, "C", fc, 2);

    ck_assert_int_eq(jsi_ccfg_wq_conflict(&all, &a, &why), 1);
    ck_assert_int_eq(js_errcode_nats(), 10099);
    ck_assert_str_eq(why, "multiple non-filtered consumers not allowed on "
                          "workqueue stream");
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "\"A\""));
    ck_assert_int_eq(jsi_ccfg_wq_conflict(&all, &all, NULL), 1);

    ck_assert_int_eq(jsi_ccfg_wq_conflict(&a, &all, &why), 1);
    ck_assert_int_eq(js_errcode_nats(), 10100);
    ck_assert_str_eq(why, "filtered consumer not unique on workqueue stream");

    ck_assert_int_eq(jsi_ccfg_wq_conflict(&a, &b, &why), 1);
    ck_assert_int_eq(js_errcode_nats(), 10100);
    ck_assert(names_field("filter_subjects"));
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "\"jobs.b.*\" overlaps "
                                              "\"jobs.b.x\""));
    ck_assert_int_eq(jsi_ccfg_wq_conflict(&b, &a, NULL), 1);

    ck_assert_int_eq(jsi_ccfg_wq_conflict(&a, &c, &why), 0);
    ck_assert_int_eq(jsi_ccfg_wq_conflict(&c, &a, &why), 0);
    ck_assert_int_eq(jsi_ccfg_wq_conflict(&b, &c, &why), 1); /* jobs.c */
    jsi_ccfg_free(&all);
    jsi_ccfg_free(&a);
    jsi_ccfg_free(&b);
    jsi_ccfg_free(&c);
}
END_TEST

/* ---- the durable config file ------------------------------------------------- */

static void encode_cfg(const js_consumer_config *in, uint64_t id,
                       int64_t created, jsi_buf *b) {
    jsi_ccfg c;
    ck_assert_msg(load(in, S_LIMITS, &c) == 0, "%s", js_errmsg());
    ck_assert_int_eq(jsi_ccfg_file_encode(id, created, &c, b), 0);
    jsi_ccfg_free(&c);
}

START_TEST(file_round_trips_a_fully_populated_config) {
    const js_consumer_config *cfgs[] = {&full_cfg, &full_pull_cfg};
    for (size_t i = 0; i < 2; i++) {
        jsi_ccfg want, got;
        jsi_buf b = {0};
        uint64_t id = 0;
        int64_t created = 0;
        ck_assert_int_eq(load(cfgs[i], S_LIMITS, &want), 0);
        ck_assert_int_eq(jsi_ccfg_file_encode(UINT64_C(0xfedcba9876543210),
                                              -INT64_C(12345), &want, &b),
                         0);
        ck_assert_uint_gt(b.len, 36);
        ck_assert_int_eq(memcmp(b.p, "JSCC", 4), 0);
        ck_assert_int_eq(jsi_ccfg_file_decode(b.p, b.len, &id, &created,
                                              &got), 0);
        ck_assert_uint_eq(id, UINT64_C(0xfedcba9876543210));
        ck_assert_int_eq(created, -INT64_C(12345));
        ck_assert_int_eq(jsi_ccfg_equal(&want, &got), 1);
        ck_assert_int_eq(got.sample_pct, want.sample_pct);
        ck_assert_uint_eq(got.c.version, JS_CONSUMER_CONFIG_VERSION);
        jsi_ccfg_free(&want);
        jsi_ccfg_free(&got);
        jsi_buf_free(&b);
    }
}
END_TEST

START_TEST(file_encode_appends_after_existing_bytes) {
    jsi_buf b = {0};
    jsi_ccfg got;
    uint64_t id;
    int64_t created;
    ck_assert_int_eq(jsi_buf_append(&b, "prefix", 6), 0);
    encode_cfg(&full_cfg, 9, 10, &b);
    ck_assert_int_eq(jsi_ccfg_file_decode(b.p + 6, b.len - 6, &id, &created,
                                          &got), 0);
    ck_assert_uint_eq(id, 9);
    ck_assert_int_eq(created, 10);
    jsi_ccfg_free(&got);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(file_encode_needs_a_name) {
    js_consumer_config in = JS_CONSUMER_CONFIG_INIT;
    jsi_ccfg c;
    jsi_buf b = {0};
    ck_assert_int_eq(load(&in, S_LIMITS, &c), 0);
    ck_assert_int_eq(jsi_ccfg_file_encode(1, 1, &c, &b), JS_EINVAL);
    ck_assert_uint_eq(b.len, 0);
    jsi_ccfg_free(&c);
    jsi_buf_free(&b);
}
END_TEST

START_TEST(file_every_truncation_is_corrupt) {
    jsi_buf b = {0};
    encode_cfg(&full_cfg, 1, 2, &b);
    for (size_t n = 0; n < b.len; n++) {
        jsi_ccfg got;
        uint64_t id;
        int64_t created;
        /* a copy of exactly n bytes, so ASan sees any read past it */
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, b.p, n);
        REQUIRE(jsi_ccfg_file_decode(p, n, &id, &created, &got) ==
                JS_ECORRUPT);
        REQUIRE(got.c.name == NULL && got.backoff == NULL);
        free(p);
    }
    jsi_buf_free(&b);
}
END_TEST

START_TEST(file_every_single_bit_flip_is_corrupt) {
    const js_consumer_config *cfgs[] = {&full_cfg, &full_pull_cfg};
    for (size_t i = 0; i < 2; i++) {
        jsi_buf b = {0};
        encode_cfg(cfgs[i], 1, 2, &b);
        for (size_t bit = 0; bit < 8 * b.len; bit++) {
            jsi_ccfg got;
            uint64_t id;
            int64_t created;
            b.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            REQUIRE(jsi_ccfg_file_decode(b.p, b.len, &id, &created, &got) ==
                    JS_ECORRUPT);
            b.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        jsi_buf_free(&b);
    }
}
END_TEST

/* Hand-made files with a good frame and checksum around a chosen body. */
static void frame(jsi_buf *out, const uint8_t *body, size_t n,
                  uint32_t version, uint32_t flags) {
    uint8_t h[32];
    memcpy(h, "JSCC", 4);
    jsi_put32(h + 4, version);
    jsi_put32(h + 8, flags);
    jsi_put64(h + 12, 5);
    jsi_put64(h + 20, 6);
    jsi_put32(h + 28, (uint32_t)n);
    out->len = 0;
    ck_assert_int_eq(jsi_buf_append(out, h, 32), 0);
    ck_assert_int_eq(jsi_buf_append(out, body, n), 0);
    jsi_put32(h, jsi_crc32c(0, out->p, out->len));
    ck_assert_int_eq(jsi_buf_append(out, h, 4), 0);
}

static void put_tlv(jsi_buf *b, uint64_t tag, const void *v, size_t n) {
    uint8_t h[20];
    size_t k = jsi_uvarint_put(h, tag);
    k += jsi_uvarint_put(h + k, n);
    ck_assert_int_eq(jsi_buf_append(b, h, k), 0);
    ck_assert_int_eq(jsi_buf_append(b, v, n), 0);
}

static void put_num(jsi_buf *b, uint64_t tag, int64_t v) {
    uint8_t x[8];
    jsi_put64(x, (uint64_t)v);
    put_tlv(b, tag, x, 8);
}

/* The body of a valid minimal durable "D", with every number field, and
 * tag `skip` left out (0: none). */
static void minimal_body(jsi_buf *b, unsigned skip) {
    static const struct {
        unsigned tag;
        int64_t v;
    } nums[] = {{4, 0}, {5, 0}, {6, 0}, {7, 0}, {8, 30 * SEC}, {9, -1},
                {13, 0}, {14, 0}, {16, 512}, {17, 1000}, {18, 0}, {19, 0},
                {20, 0}, {21, 0}, {24, 0}, {26, 0}};
    if (skip != 1)
        put_tlv(b, 1, "D", 1);
    if (skip != 2)
        put_tlv(b, 2, "D", 1);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (nums[i].tag != skip)
            put_num(b, nums[i].tag, nums[i].v);
}

static int decode_body(const jsi_buf *body, uint32_t version,
                       uint32_t flags, jsi_ccfg *got) {
    jsi_buf f = {0};
    uint64_t id;
    int64_t created;
    frame(&f, body->p, body->len, version, flags);
    int rc = jsi_ccfg_file_decode(f.p, f.len, &id, &created, got);
    jsi_buf_free(&f);
    return rc;
}

START_TEST(file_hand_made_minimal_body_decodes) {
    jsi_buf body = {0};
    jsi_ccfg got;
    minimal_body(&body, 0);
    put_tlv(&body, 60, "future", 6); /* a later version's field: skipped */
    ck_assert_int_eq(decode_body(&body, 1, 0, &got), 0);
    ck_assert_str_eq(got.c.name, "D");
    ck_assert_int_eq(got.c.max_waiting, 512);
    jsi_ccfg_free(&got);
    jsi_buf_free(&body);
}
END_TEST

START_TEST(file_hand_made_bad_bodies_are_corrupt) {
    for (int k = 0; k < 18; k++) {
        jsi_buf body = {0};
        jsi_ccfg got;
        uint32_t version = 1, flags = 0;
        uint8_t x[16] = {0};
        switch (k) {
        case 0: minimal_body(&body, 0); version = 2; break;
        case 1: minimal_body(&body, 0); flags = 1; break;
        case 2: minimal_body(&body, 1); break;          /* no name */
        case 3: minimal_body(&body, 8); break;          /* no ack_wait */
        case 4: minimal_body(&body, 26); break;         /* no mem_storage */
        case 5: minimal_body(&body, 0); put_num(&body, 9, 3); break; /* twice */
        case 6: minimal_body(&body, 0); put_tlv(&body, 3, "a\0b", 3); break;
        case 7: minimal_body(&body, 0); put_tlv(&body, 3, "", 0); break;
        case 8: minimal_body(&body, 7); put_tlv(&body, 7, x, 4); break;
        case 9: minimal_body(&body, 7); put_num(&body, 7, INT64_C(1) << 40);
            break;
        case 10: minimal_body(&body, 0); put_tlv(&body, 10, x, 12); break;
        case 11: minimal_body(&body, 0); put_tlv(&body, 10, x, 0); break;
        case 12: minimal_body(&body, 0); x[0] = 9; /* key length 9 of 3 */
            put_tlv(&body, 25, x, 3); break;
        case 13: minimal_body(&body, 0); put_tlv(&body, 0, x, 1); break;
        case 14: minimal_body(&body, 0); put_tlv(&body, 64, x, 1); break;
        case 15: minimal_body(&body, 7); put_num(&body, 7, 9); break;
        case 16: /* a length past the end */
            minimal_body(&body, 0);
            x[0] = 3;
            x[1] = 0x7f;
            jsi_buf_append(&body, x, 3);
            break;
        case 17: /* an overlong varint tag */
            minimal_body(&body, 0);
            memset(x, 0xff, 11);
            jsi_buf_append(&body, x, 11);
            break;
        }
        ck_assert_msg(decode_body(&body, version, flags, &got) ==
                          JS_ECORRUPT, "case %d decoded", k);
        ck_assert_ptr_nonnull(strstr(js_errmsg(), "consumer config file"));
        jsi_buf_free(&body);
    }
}
END_TEST

/* Every image written says the store keeps two copies of it; one from
 * before the count (a v1 store's) reads as one copy; any count but a
 * single non-zero byte, or a repeated one, is damage. */
START_TEST(file_carries_the_number_of_copies_kept) {
    jsi_buf b = {0}, body = {0}, f = {0};
    jsi_ccfg got;
    encode_cfg(&full_cfg, 1, 2, &b);
    ck_assert_uint_eq(jsi_ccfg_file_copies(b.p, b.len), JSI_CCFG_FILE_COPIES);
    ck_assert_uint_eq(JSI_CCFG_FILE_COPIES, 2);
    minimal_body(&body, 0);
    frame(&f, body.p, body.len, 1, 0);
    ck_assert_uint_eq(jsi_ccfg_file_copies(f.p, f.len), 1);
    uint8_t three = 3;
    put_tlv(&body, 27, &three, 1); /* a later version keeping three */
    ck_assert_int_eq(decode_body(&body, 1, 0, &got), 0);
    jsi_ccfg_free(&got);
    frame(&f, body.p, body.len, 1, 0);
    ck_assert_uint_eq(jsi_ccfg_file_copies(f.p, f.len), 3);
    for (int k = 0; k < 4; k++) {
        uint8_t x[2] = {k == 3 ? 2 : 0, 2};
        body.len = 0;
        minimal_body(&body, 0);
        put_tlv(&body, 27, x, k == 0 ? 0 : k == 1 ? 1 : k == 2 ? 2 : 1);
        if (k == 3)
            put_tlv(&body, 27, x, 1); /* twice */
        ck_assert_msg(decode_body(&body, 1, 0, &got) == JS_ECORRUPT,
                      "case %d decoded", k);
    }
    jsi_buf_free(&b);
    jsi_buf_free(&body);
    jsi_buf_free(&f);
}
END_TEST

START_TEST(file_rejects_invalid_config_inside_good_frame) {
    jsi_buf body = {0};
    jsi_ccfg got;
    minimal_body(&body, 0);
    put_tlv(&body, 11, "a..b", 4); /* bad filter subject */
    ck_assert_int_eq(decode_body(&body, 1, 0, &got), JS_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "filter_subject"));
    ck_assert_int_eq(js_errcode_nats(), 0);
    jsi_buf_free(&body);
}
END_TEST

static uint64_t rng_state;

static uint64_t rng(void) {
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Past the checksum: garbled or cut bodies in a good frame decode to a
 * valid config or to JS_ECORRUPT, never anything else (ASan watches). */
START_TEST(file_garbled_bodies_in_good_frames_never_crash) {
    jsi_buf b = {0}, body = {0};
    size_t ok = 0;
    encode_cfg(&full_cfg, 1, 2, &b);
    const uint8_t *orig = b.p + 32;
    size_t olen = b.len - 36;
    rng_state = 42;
    for (int iter = 0; iter < 20000; iter++) {
        jsi_ccfg got;
        body.len = 0;
        REQUIRE(jsi_buf_append(&body, orig, olen) == 0);
        if (iter % 4 == 0)
            body.len = (size_t)(rng() % olen); /* cut */
        for (int k = (int)(rng() % 4); k >= 0; k--)
            if (body.len)
                body.p[rng() % body.len] = (uint8_t)rng();
        int rc = decode_body(&body, 1, 0, &got);
        REQUIRE(rc == 0 || rc == JS_ECORRUPT);
        if (rc == 0) {
            ok++;
            REQUIRE(got.c.name != NULL);
            jsi_ccfg_free(&got);
        }
    }
    ck_assert_uint_lt(ok, 20000); /* most are refused */
    jsi_buf_free(&body);
    jsi_buf_free(&b);
}
END_TEST

/* ---- allocation failure ------------------------------------------------------- */

static void alloc_teardown(void) { jsi_alloc_fail_at(0, 0); }

/* Copy, encode and decode a loaded config; the first failure's code. */
static int exercise(const jsi_ccfg *a, const jsi_buf *file) {
    jsi_ccfg b, d;
    jsi_buf enc = {0};
    uint64_t id;
    int64_t created;
    int rc = jsi_ccfg_copy(a, &b);
    if (rc)
        return rc;
    jsi_ccfg_free(&b);
    rc = jsi_ccfg_file_encode(3, 4, a, &enc);
    jsi_buf_free(&enc);
    if (rc)
        return rc;
    rc = jsi_ccfg_file_decode(file->p, file->len, &id, &created, &d);
    if (rc == 0)
        jsi_ccfg_free(&d);
    return rc;
}

START_TEST(every_failing_allocation_is_reported_and_leaks_nothing) {
    jsi_buf file = {0};
    encode_cfg(&full_cfg, 3, 4, &file);
    for (uint64_t n = 1;; n++) {
        jsi_ccfg a;
        jsi_alloc_fail_at(n, 0);
        int rc = load(&full_cfg, S_LIMITS, &a);
        if (rc == 0) {
            rc = exercise(&a, &file);
            jsi_ccfg_free(&a);
        }
        int failed = jsi_alloc_failed() > 0;
        jsi_alloc_fail_at(0, 0);
        if (!failed) {
            ck_assert_int_eq(rc, 0);
            break;
        }
        ck_assert_msg(rc == JS_ENOMEM, "allocation %" PRIu64 ": rc %d (%s)",
                      n, rc, js_errmsg());
    }
    jsi_buf_free(&file);
}
END_TEST

static Suite *ccfg_suite(void) {
    Suite *s = suite_create("consumer_config");
    TCase *t;

    t = tcase_create("rules");
    tcase_add_loop_test(t, rule_table_accepts_and_rejects_with_nats_code_and_field,
                        0, (int)(sizeof rules / sizeof rules[0]));
    tcase_add_test(t, import_rejects_null_and_unknown_versions);
    tcase_add_test(t, import_rejects_null_arrays_and_null_metadata_keys);
    tcase_add_test(t, import_copies_everything_the_caller_owns);
    tcase_add_test(t, import_turns_empty_strings_into_unset);
    tcase_add_test(t, metadata_null_value_is_empty_string);
    tcase_add_test(t, metadata_of_128k_is_accepted_and_one_byte_more_is_not);
    suite_add_tcase(s, t);

    t = tcase_create("defaults");
    tcase_add_test(t, pull_explicit_ephemeral_gets_nats_defaults);
    tcase_add_test(t, durable_takes_its_name_and_no_inactivity_limit);
    tcase_add_test(t, ack_none_keeps_zero_ack_wait_and_max_ack_pending);
    tcase_add_test(t, ack_all_gets_default_ack_wait);
    tcase_add_test(t, out_of_range_limits_become_unlimited);
    tcase_add_test(t, backoff_first_delay_becomes_ack_wait);
    tcase_add_test(t, push_keeps_max_waiting_zero);
    tcase_add_test(t, sample_freq_is_parsed_into_percent);
    tcase_add_test(t, flags_become_zero_or_one);
    tcase_add_test(t, metadata_is_sorted_by_key);
    tcase_add_test(t, normalize_is_idempotent);
    tcase_add_test(t, set_name_names_an_ephemeral_and_checks_the_name);
    suite_add_tcase(s, t);

    t = tcase_create("update");
    tcase_add_loop_test(t, update_table_allows_what_nats_allows, 0,
                        (int)(sizeof updates / sizeof updates[0]));
    tcase_add_test(t, update_revalidates_backoff_against_max_deliver);
    suite_add_tcase(s, t);

    t = tcase_create("equal");
    tcase_add_test(t, equal_sees_every_field);
    tcase_add_test(t, equal_sees_pull_fields);
    tcase_add_test(t, filter_subject_and_a_one_entry_list_differ);
    tcase_add_test(t, metadata_order_does_not_matter);
    tcase_add_test(t, copy_is_deep_and_equal);
    suite_add_tcase(s, t);

    t = tcase_create("filters");
    tcase_add_test(t, filters_list_and_matching);
    tcase_add_test(t, wq_conflict_follows_nats_partition_rules);
    suite_add_tcase(s, t);

    t = tcase_create("file");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, file_round_trips_a_fully_populated_config);
    tcase_add_test(t, file_encode_appends_after_existing_bytes);
    tcase_add_test(t, file_encode_needs_a_name);
    tcase_add_test(t, file_every_truncation_is_corrupt);
    tcase_add_test(t, file_every_single_bit_flip_is_corrupt);
    tcase_add_test(t, file_hand_made_minimal_body_decodes);
    tcase_add_test(t, file_hand_made_bad_bodies_are_corrupt);
    tcase_add_test(t, file_carries_the_number_of_copies_kept);
    tcase_add_test(t, file_rejects_invalid_config_inside_good_frame);
    tcase_add_test(t, file_garbled_bodies_in_good_frames_never_crash);
    suite_add_tcase(s, t);

    t = tcase_create("alloc");
    tcase_add_checked_fixture(t, NULL, alloc_teardown);
    tcase_add_test(t, every_failing_allocation_is_reported_and_leaks_nothing);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    int failed = tu_run_suite(ccfg_suite());
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
