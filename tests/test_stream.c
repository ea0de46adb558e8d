/*
 * test_stream.c - stream semantics through the public API, checked against
 * NATS JetStream's: names and config rules, updates, publish checks and
 * headers (expected-*, Nats-Msg-Id, Nats-Rollup), limits and discard
 * policies, purge, delete and secure erase, first_seq, message access and
 * batch publishing. Time-dependent rules run on a fake clock.
 */
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jetstream.h"
#include "check_rc.h"
#include "testutil.h"
#include "runner.h"

#define SEC ((int64_t)1000000000)
#define MS ((int64_t)1000000)
#define T0 ((int64_t)1700000000 * SEC)

/* Fails the test with the library's own words when rc is not want. */
/* The last failure's NATS code and a word its detail must contain. */
#define CHECK_ERR(nats, word)                                               \
    do {                                                                    \
        ck_assert_int_eq(js_errcode_nats(), (nats));                        \
        ck_assert_msg(strstr(js_errmsg(), (word)) != NULL,                  \
                      "errmsg \"%s\" does not mention \"%s\"", js_errmsg(), \
                      (word));                                              \
    } while (0)

static char *base_dir;     /* made by main(), removed at exit */
static char store_path[512];
static int64_t fake_now;
static uint32_t block_size; /* for the next open; 0: default */
static js_store *S;

/* ---- fixture ------------------------------------------------------------ */

static void open_store(void) {
    js_open_opts o = JS_OPEN_OPTS_INIT;
    o.sync = JS_SYNC_NONE;
    o.clock = tu_clock;
    o.clock_ctx = &fake_now;
    o.block_size = block_size;
    CHECK_RC(js_open(store_path, &o, &S), 0);
}

static void setup(void) {
    static unsigned n;
    tu_clock_set(&fake_now, T0);
    block_size = 0;
    snprintf(store_path, sizeof store_path, "%s/store-%ld-%u", base_dir,
             (long)getpid(), n++);
    S = NULL;
    open_store();
}

static void teardown(void) {
    if (S)
        CHECK_RC(js_close(S), 0);
    S = NULL;
}

static void reopen(void) {
    CHECK_RC(js_close(S), 0);
    S = NULL;
    open_store();
}

static void advance(int64_t ns) { tu_clock_advance(&fake_now, ns); }

/* ---- helpers ------------------------------------------------------------ */

/* A config with one subject (or none: the name); subj is kept in a ring of
 * static arrays so the config may outlive this call's caller. */
static js_stream_config mk(const char *name, const char *subj) {
    static const char *ring[32][1];
    static unsigned k;
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    c.name = name;
    if (subj) {
        const char **slot = ring[k++ % 32];
        slot[0] = subj;
        c.subjects = slot;
        c.num_subjects = 1;
    }
    return c;
}

static js_stream *add(const js_stream_config *c) {
    js_stream *s = NULL;
    CHECK_RC(js_stream_add(S, c, &s), 0);
    ck_assert_ptr_nonnull(s);
    return s;
}

static js_stream *lookup(const char *name) {
    js_stream *s = NULL;
    CHECK_RC(js_stream_lookup(S, name, &s), 0);
    return s;
}

/* A header block from key/value pairs ending in NULL, in a ring of static
 * buffers. */
static const char *H(const char *k, ...) {
    static char ring[8][2048];
    static unsigned n;
    char *b = ring[n++ % 8];
    size_t len = (size_t)snprintf(b, sizeof ring[0], "NATS/1.0\r\n");
    va_list ap;
    va_start(ap, k);
    for (const char *key = k; key; key = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        len += (size_t)snprintf(b + len, sizeof ring[0] - len, "%s: %s\r\n",
                                key, v);
    }
    va_end(ap);
    snprintf(b + len, sizeof ring[0] - len, "\r\n");
    return b;
}

static int pubh(const char *subj, const char *hdr, const char *data,
                js_pub_ack *ack) {
    return js_publish(S, subj, hdr, hdr ? strlen(hdr) : 0, data,
                      data ? strlen(data) : 0, ack);
}

/* Publish; must succeed as a new message. Returns its sequence. */
static uint64_t pub(const char *subj, const char *data) {
    js_pub_ack ack = JS_PUB_ACK_INIT;
    CHECK_RC(pubh(subj, NULL, data, &ack), 0);
    ck_assert_int_eq(ack.duplicate, 0);
    return ack.seq;
}

static uint64_t pub_h(const char *subj, const char *hdr, const char *data) {
    js_pub_ack ack = JS_PUB_ACK_INIT;
    CHECK_RC(pubh(subj, hdr, data, &ack), 0);
    ck_assert_int_eq(ack.duplicate, 0);
    return ack.seq;
}

/* A payload of n bytes (n < 4096), in a ring of static buffers. */
static const char *payload(size_t n) {
    static char ring[4][4096];
    static unsigned k;
    char *b = ring[k++ % 4];
    ck_assert_uint_lt(n, sizeof ring[0]);
    memset(b, 'p', n);
    b[n] = 0;
    return b;
}

static js_stream_state state_of(js_stream *s) {
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(s, &inf), 0);
    js_stream_state st = *inf->state;
    js_stream_info_free(inf);
    return st;
}

/* No message has ever been stored (first_seq is checked elsewhere). */
static void check_empty(js_stream *s) {
    js_stream_state st = state_of(s);
    ck_assert_uint_eq(st.msgs, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.last_seq, 0);
}

static void check_state(js_stream *s, uint64_t msgs, uint64_t first,
                        uint64_t last) {
    js_stream_state st = state_of(s);
    ck_assert_msg(st.msgs == msgs && st.first_seq == first &&
                      st.last_seq == last,
                  "state msgs %" PRIu64 " first %" PRIu64 " last %" PRIu64
                  ", want %" PRIu64 " %" PRIu64 " %" PRIu64,
                  st.msgs, st.first_seq, st.last_seq, msgs, first, last);
}

/* The stream holds exactly these sequences (walked with get_next). */
static void expect_seqs(js_stream *s, const uint64_t *want, size_t n) {
    uint64_t seq = 0;
    size_t i = 0;
    js_msg *m = NULL;
    int rc;
    while ((rc = js_msg_get_next(s, NULL, seq, &m)) == 0) {
        ck_assert_msg(i < n, "unexpected extra message %" PRIu64,
                      js_msg_seq(m));
        ck_assert_msg(js_msg_seq(m) == want[i],
                      "message %zu is seq %" PRIu64 ", want %" PRIu64, i,
                      js_msg_seq(m), want[i]);
        seq = js_msg_seq(m) + 1;
        js_msg_free(m);
        i++;
    }
    CHECK_RC(rc, JS_EMSG_NOT_FOUND);
    ck_assert_uint_eq(i, n);
    ck_assert_uint_eq(state_of(s).msgs, n);
}
#define EXPECT_SEQS(s, ...)                                                 \
    do {                                                                    \
        static const uint64_t w_[] = {__VA_ARGS__};                         \
        expect_seqs((s), w_, sizeof w_ / sizeof w_[0]);                     \
    } while (0)

static void expect_subject_at(js_stream *s, uint64_t seq, const char *subj) {
    js_msg *m = NULL;
    CHECK_RC(js_msg_get(s, seq, &m), 0);
    ck_assert_str_eq(js_msg_subject(m), subj);
    js_msg_free(m);
}

static void expect_gone(js_stream *s, uint64_t seq) {
    js_msg *m = NULL;
    CHECK_RC(js_msg_get(s, seq, &m), JS_EMSG_NOT_FOUND);
}

static uint64_t last_seq_of(js_stream *s, const char *filter) {
    js_msg *m = NULL;
    CHECK_RC(js_msg_get_last(s, filter, &m), 0);
    uint64_t seq = js_msg_seq(m);
    js_msg_free(m);
    return seq;
}

static int dir_entries(const char *path) {
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* How many regular files under dir contain needle. */
static const char *g_needle;
static int g_found, g_files;

static int grep_one(const char *path, const struct stat *sb, int type,
                    struct FTW *ftw) {
    (void)ftw;
    if (type != FTW_F || sb->st_size == 0)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 1;
    char *buf = malloc((size_t)sb->st_size);
    size_t n = buf ? fread(buf, 1, (size_t)sb->st_size, f) : 0;
    fclose(f);
    g_files++;
    if (buf && memmem(buf, n, g_needle, strlen(g_needle)))
        g_found++;
    free(buf);
    return 0;
}

static int files_containing(const char *dir, const char *needle) {
    g_needle = needle;
    g_found = g_files = 0;
    ck_assert_int_eq(nftw(dir, grep_one, 16, FTW_PHYS), 0);
    ck_assert_int_gt(g_files, 0);
    return g_found;
}

/* ---- names -------------------------------------------------------------- */

START_TEST(test_bad_stream_names_are_rejected_and_nothing_is_created) {
    char long_name[257], dir[600];
    memset(long_name, 'n', 256);
    long_name[256] = 0;
    const char *bad[] = {"",     "a.b",   "a*",    "a>",     "a/b",
                         "../x", "a\\b",  "a b",   "a\tb",   "a\rb",
                         "a\nb", "a\fb",  "a\x01", "\x1f" "b", "a\x7f",
                         ".",    "*",     ">",     long_name};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        js_stream_config c = mk(bad[i], "ok.subject");
        js_stream *s = NULL;
        int rc = js_stream_add(S, &c, &s);
        ck_assert_msg(rc == JS_EINVAL, "name #%zu \"%s\": got %d (%s)", i,
                      bad[i], rc, js_strerror(rc));
        ck_assert_msg(strstr(js_errmsg(), "name") != NULL,
                      "name #%zu: errmsg \"%s\" does not name the field", i,
                      js_errmsg());
        ck_assert_ptr_null(s);
    }
    char **names = NULL;
    size_t n = 9;
    CHECK_RC(js_stream_names(S, &names, &n), 0);
    ck_assert_uint_eq(n, 0);
    js_names_free(names);
    snprintf(dir, sizeof dir, "%s/streams", store_path);
    int entries = dir_entries(dir);
    ck_assert_msg(entries <= 0, "%d stream directories created", entries);
    /* No file escaped the store either. */
    struct stat sb;
    snprintf(dir, sizeof dir, "%s/x", store_path);
    ck_assert_int_ne(stat(dir, &sb), 0);
    reopen();
    CHECK_RC(js_stream_names(S, &names, &n), 0);
    ck_assert_uint_eq(n, 0);
    js_names_free(names);
}
END_TEST

START_TEST(test_name_of_255_bytes_is_accepted) {
    char name[256];
    memset(name, 'N', 255);
    name[255] = 0;
    js_stream_config c = mk(name, NULL);
    js_stream *s = add(&c);
    ck_assert_uint_eq(pub(name, "x"), 1);
    js_stream_release(s);
    reopen();
    s = lookup(name);
    ck_assert_uint_eq(state_of(s).msgs, 1);
    js_stream_release(s);
}
END_TEST

/* ---- config ------------------------------------------------------------- */

START_TEST(test_config_defaults_are_nats_defaults) {
    js_stream_config c = mk("DEF", NULL);
    js_stream *s = add(&c);
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(s, &inf), 0);
    const js_stream_config *k = inf->config;
    ck_assert_str_eq(k->name, "DEF");
    ck_assert_uint_eq(k->num_subjects, 1);
    ck_assert_str_eq(k->subjects[0], "DEF");
    ck_assert_int_eq(k->retention, JS_RETENTION_LIMITS);
    ck_assert_int_eq(k->max_consumers, -1);
    ck_assert_int_eq(k->max_msgs, -1);
    ck_assert_int_eq(k->max_bytes, -1);
    ck_assert_int_eq(k->max_age, 0);
    ck_assert_int_eq(k->max_msgs_per_subject, -1);
    ck_assert_int_eq(k->max_msg_size, -1);
    ck_assert_int_eq(k->discard, JS_DISCARD_OLD);
    ck_assert_int_eq(k->storage, JS_STORAGE_FILE);
    ck_assert_int_eq(k->duplicate_window, 120 * SEC);
    ck_assert_int_eq(k->sealed, 0);
    ck_assert_int_eq(k->deny_delete, 0);
    ck_assert_int_eq(k->deny_purge, 0);
    ck_assert_int_eq(k->allow_rollup_hdrs, 0);
    ck_assert_int_eq(k->discard_new_per_subject, 0);
    ck_assert_uint_eq(inf->state->msgs, 0);
    ck_assert_uint_eq(inf->state->bytes, 0);
    js_stream_info_free(inf);
    js_stream_release(s);

    /* Below -1 is unlimited too. */
    c = mk("NEG", NULL);
    c.max_msgs = -5;
    c.max_bytes = -2;
    c.max_msg_size = -9;
    s = add(&c);
    CHECK_RC(js_stream_info(s, &inf), 0);
    ck_assert_int_eq(inf->config->max_msgs, -1);
    ck_assert_int_eq(inf->config->max_bytes, -1);
    ck_assert_int_eq(inf->config->max_msg_size, -1);
    js_stream_info_free(inf);
    js_stream_release(s);
}
END_TEST

/* NATS's StreamState for a stream with no message yet: first 0, last 0. */
START_TEST(test_new_empty_stream_reports_first_and_last_seq_zero) {
    js_stream_config c = mk("EMPTY", NULL);
    js_stream *s = add(&c);
    js_stream_state st = state_of(s);
    ck_assert_uint_eq(st.msgs, 0);
    ck_assert_uint_eq(st.first_seq, 0);
    ck_assert_uint_eq(st.last_seq, 0);
    ck_assert_int_eq(st.first_ts, 0);
    ck_assert_int_eq(st.last_ts, 0);
    js_stream_release(s);
}
END_TEST

START_TEST(test_duplicate_window_defaults_to_max_age_when_smaller) {
    js_stream_config c = mk("DW1", NULL);
    c.max_age = 30 * SEC;
    js_stream *s = add(&c);
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(s, &inf), 0);
    ck_assert_int_eq(inf->config->max_age, 30 * SEC);
    ck_assert_int_eq(inf->config->duplicate_window, 30 * SEC);
    js_stream_info_free(inf);
    js_stream_release(s);

    c = mk("DW2", NULL);
    c.max_age = 600 * SEC;
    s = add(&c);
    CHECK_RC(js_stream_info(s, &inf), 0);
    ck_assert_int_eq(inf->config->duplicate_window, 120 * SEC);
    js_stream_info_free(inf);
    js_stream_release(s);

    c = mk("DW3", NULL);
    c.duplicate_window = 5 * SEC;
    s = add(&c);
    CHECK_RC(js_stream_info(s, &inf), 0);
    ck_assert_int_eq(inf->config->duplicate_window, 5 * SEC);
    js_stream_info_free(inf);
    js_stream_release(s);
}
END_TEST

START_TEST(test_max_age_below_100ms_is_rejected) {
    js_stream_config c = mk("AGE", NULL);
    c.max_age = 99 * MS;
    CHECK_RC(js_stream_add(S, &c, NULL), JS_EINVAL);
    CHECK_ERR(10052, "max_age");
    c.max_age = -1 * SEC;
    CHECK_RC(js_stream_add(S, &c, NULL), JS_EINVAL);
    CHECK_ERR(10052, "max_age");
    c.max_age = 100 * MS;
    CHECK_RC(js_stream_add(S, &c, NULL), 0);
}
END_TEST

START_TEST(test_duplicate_window_over_max_age_is_rejected) {
    js_stream_config c = mk("DWA", NULL);
    c.max_age = 10 * SEC;
    c.duplicate_window = 20 * SEC;
    CHECK_RC(js_stream_add(S, &c, NULL), JS_EINVAL);
    CHECK_ERR(10052, "duplicate_window");
    c.duplicate_window = 10 * SEC;
    CHECK_RC(js_stream_add(S, &c, NULL), 0);
}
END_TEST

START_TEST(test_deny_purge_with_rollup_headers_is_rejected) {
    js_stream_config c = mk("RP", NULL);
    c.deny_purge = 1;
    c.allow_rollup_hdrs = 1;
    CHECK_RC(js_stream_add(S, &c, NULL), JS_EINVAL);
    CHECK_ERR(10052, "rollup");
}
END_TEST

START_TEST(test_discard_new_per_subject_needs_discard_new_and_subject_limit) {
    js_stream_config c = mk("DNP", NULL);
    c.discard_new_per_subject = 1;
    c.max_msgs_per_subject = 5; /* discard old */
    CHECK_RC(js_stream_add(S, &c, NULL), JS_EINVAL);
    CHECK_ERR(10052, "discard_new_per_subject");
    c.discard = JS_DISCARD_NEW;
    c.max_msgs_per_subject = 0;
    CHECK_RC(js_stream_add(S, &c, NULL), JS_EINVAL);
    CHECK_ERR(10052, "discard_new_per_subject");
    c.max_msgs_per_subject = 5;
    CHECK_RC(js_stream_add(S, &c, NULL), 0);
}
END_TEST

START_TEST(test_sealed_on_create_is_rejected) {
    js_stream_config c = mk("SEAL", NULL);
    c.sealed = 1;
    CHECK_RC(js_stream_add(S, &c, NULL), JS_EINVAL);
    CHECK_ERR(10052, "sealed");
    js_stream *s = NULL;
    CHECK_RC(js_stream_lookup(S, "SEAL", &s), JS_ESTREAM_NOT_FOUND);
}
END_TEST

START_TEST(test_invalid_enum_and_description_values_are_rejected) {
    char desc[4098];
    js_stream_config c = mk("ENUM", NULL);
    c.retention = 3;
    CHECK_RC(js_stream_add(S, &c, NULL), JS_EINVAL);
    CHECK_ERR(10052, "retention");
    c = mk("ENUM", NULL);
    c.discard = 2;
    CHECK_RC(js_stream_add(S, &c, NULL), JS_EINVAL);
    CHECK_ERR(10052, "discard");
    c = mk("ENUM", NULL);
    c.storage = -1;
    CHECK_RC(js_stream_add(S, &c, NULL), JS_EINVAL);
    CHECK_ERR(10052, "storage");
    c = mk("ENUM", NULL);
    memset(desc, 'd', 4097);
    desc[4097] = 0;
    c.description = desc;
    CHECK_RC(js_stream_add(S, &c, NULL), JS_EINVAL);
    CHECK_ERR(10052, "description");
    desc[4096] = 0; /* 4096 bytes is the limit */
    CHECK_RC(js_stream_add(S, &c, NULL), 0);
}
END_TEST

START_TEST(test_invalid_duplicate_and_self_overlapping_subjects_are_rejected) {
    const char *invalid[] = {"", "a..b", ".a", "a.", "a.>.b", "a b", ">.a",
                             "a\tb"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        js_stream_config c = mk("SUBJ", invalid[i]);
        int rc = js_stream_add(S, &c, NULL);
        ck_assert_msg(rc == JS_EINVAL, "subject \"%s\": got %d", invalid[i],
                      rc);
        CHECK_ERR(10052, "subject");
    }
    const char *const dup[] = {"x.y", "x.z", "x.y"};
    const char *const self1[] = {"a.*", "a.b"};
    const char *const self2[] = {"a.>", "a.b.c"};
    const char *const self3[] = {"*.b", "a.*"};
    const char *const *sets[] = {dup, self1, self2, self3};
    size_t sizes[] = {3, 2, 2, 2};
    for (size_t i = 0; i < 4; i++) {
        js_stream_config c = mk("SUBJ", NULL);
        c.subjects = sets[i];
        c.num_subjects = sizes[i];
        int rc = js_stream_add(S, &c, NULL);
        ck_assert_msg(rc == JS_EINVAL, "subject set %zu: got %d", i, rc);
        CHECK_ERR(10052, "subject");
    }
    js_stream_config c = mk("SUBJ", NULL);
    const char *const fine[] = {"a.*", "b.>", "c"};
    c.subjects = fine;
    c.num_subjects = 3;
    CHECK_RC(js_stream_add(S, &c, NULL), 0);
}
END_TEST

START_TEST(test_subjects_overlapping_another_stream_are_rejected) {
    static const struct {
        const char *first, *second;
        int overlap;
    } cases[] = {
        {"a.*", "a.b", 1},   {"a.b", "a.*", 1},     {"a.>", "*.b", 1},
        {">", "x", 1},       {"a.b", "a.b", 1},     {"a.*.c", "a.b.*", 1},
        {"a.*", "a.b.c", 0}, {"a.b", "a.c", 0},     {"a.>", "b.>", 0},
        {"a.*", "a", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char n1[16], n2[16];
        snprintf(n1, sizeof n1, "O%zuA", i);
        snprintf(n2, sizeof n2, "O%zuB", i);
        js_stream_config a = mk(n1, cases[i].first);
        js_stream_config b = mk(n2, cases[i].second);
        CHECK_RC(js_stream_add(S, &a, NULL), 0);
        int rc = js_stream_add(S, &b, NULL);
        if (cases[i].overlap) {
            ck_assert_msg(rc == JS_ESUBJECT_OVERLAP, "\"%s\" vs \"%s\": %d",
                          cases[i].first, cases[i].second, rc);
            ck_assert_int_eq(js_errcode_nats(), 10065);
            js_stream *s = NULL;
            CHECK_RC(js_stream_lookup(S, n2, &s), JS_ESTREAM_NOT_FOUND);
        } else {
            ck_assert_msg(rc == 0, "\"%s\" vs \"%s\": %d", cases[i].first,
                          cases[i].second, rc);
            CHECK_RC(js_stream_delete(S, n2), 0);
        }
        CHECK_RC(js_stream_delete(S, n1), 0);
    }
}
END_TEST

START_TEST(test_identical_readd_is_idempotent_and_different_config_exists) {
    js_stream_config c = mk("IDEM", "idem.*");
    c.max_msgs = 10;
    js_stream *s1 = add(&c);
    pub("idem.a", "x");
    js_stream *s2 = add(&c);
    ck_assert_uint_eq(state_of(s2).msgs, 1);
    /* The same config spelled with explicit defaults is the same config. */
    js_stream_config e = c;
    e.max_bytes = -1;
    e.max_msgs_per_subject = -1;
    e.duplicate_window = 120 * SEC;
    e.discard = JS_DISCARD_OLD;
    js_stream *s3 = add(&e);
    ck_assert_uint_eq(state_of(s3).msgs, 1);

    js_stream_config d = c;
    d.max_msgs = 11;
    js_stream *s4 = NULL;
    CHECK_RC(js_stream_add(S, &d, &s4), JS_ESTREAM_EXISTS);
    CHECK_ERR(10058, "different configuration");
    d = c;
    d = mk("IDEM", "idem.>");
    d.max_msgs = 10;
    CHECK_RC(js_stream_add(S, &d, NULL), JS_ESTREAM_EXISTS);
    /* The existing stream is untouched. */
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(s1, &inf), 0);
    ck_assert_int_eq(inf->config->max_msgs, 10);
    ck_assert_str_eq(inf->config->subjects[0], "idem.*");
    ck_assert_uint_eq(inf->state->msgs, 1);
    js_stream_info_free(inf);
    js_stream_release(s1);
    js_stream_release(s2);
    js_stream_release(s3);
}
END_TEST

/* ---- update ------------------------------------------------------------- */

static void expect_update_rejected(const js_stream_config *c,
                                   const char *field) {
    CHECK_RC(js_stream_update(S, c), JS_EUPDATE);
    CHECK_ERR(10052, field);
}

START_TEST(test_update_cannot_change_storage) {
    js_stream_config c = mk("UPD", NULL);
    CHECK_RC(js_stream_add(S, &c, NULL), 0);
    c.storage = JS_STORAGE_MEMORY;
    expect_update_rejected(&c, "storage");
    js_stream_config m = mk("UPDM", NULL);
    m.storage = JS_STORAGE_MEMORY;
    CHECK_RC(js_stream_add(S, &m, NULL), 0);
    m.storage = JS_STORAGE_FILE;
    expect_update_rejected(&m, "storage");
}
END_TEST

START_TEST(test_update_cannot_change_retention_to_or_from_workqueue) {
    js_stream_config c = mk("RET", NULL);
    CHECK_RC(js_stream_add(S, &c, NULL), 0);
    c.retention = JS_RETENTION_WORKQUEUE;
    expect_update_rejected(&c, "retention");
    c.retention = JS_RETENTION_INTEREST;
    CHECK_RC(js_stream_update(S, &c), 0);
    c.retention = JS_RETENTION_WORKQUEUE;
    expect_update_rejected(&c, "retention");
    c.retention = JS_RETENTION_LIMITS;
    CHECK_RC(js_stream_update(S, &c), 0);

    js_stream_config w = mk("WQ", NULL);
    w.retention = JS_RETENTION_WORKQUEUE;
    CHECK_RC(js_stream_add(S, &w, NULL), 0);
    w.retention = JS_RETENTION_LIMITS;
    expect_update_rejected(&w, "retention");
    w.retention = JS_RETENTION_INTEREST;
    expect_update_rejected(&w, "retention");
}
END_TEST

START_TEST(test_update_cannot_clear_deny_flags_or_change_first_seq) {
    js_stream_config c = mk("FLAGS", NULL);
    c.deny_delete = 1;
    c.deny_purge = 1;
    c.first_seq = 10;
    CHECK_RC(js_stream_add(S, &c, NULL), 0);
    js_stream_config u = c;
    u.deny_delete = 0;
    expect_update_rejected(&u, "deny_delete");
    u = c;
    u.deny_purge = 0;
    expect_update_rejected(&u, "deny_purge");
    u = c;
    u.first_seq = 20;
    expect_update_rejected(&u, "first_seq");
    /* false -> true is allowed */
    js_stream_config f = mk("FLAGS2", NULL);
    CHECK_RC(js_stream_add(S, &f, NULL), 0);
    f.deny_delete = 1;
    f.deny_purge = 1;
    CHECK_RC(js_stream_update(S, &f), 0);
    js_stream *s = lookup("FLAGS2");
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(s, &inf), 0);
    ck_assert_int_eq(inf->config->deny_delete, 1);
    ck_assert_int_eq(inf->config->deny_purge, 1);
    js_stream_info_free(inf);
    js_stream_release(s);
}
END_TEST

START_TEST(test_sealing_makes_publish_delete_and_purge_fail_sealed) {
    js_stream_config c = mk("SEALME", "seal.>");
    c.max_age = 3600 * SEC;
    c.allow_rollup_hdrs = 1;
    js_stream *s = add(&c);
    pub("seal.a", "1");
    pub("seal.b", "2");
    pub("seal.c", "3");
    c.sealed = 1;
    CHECK_RC(js_stream_update(S, &c), 0);
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(s, &inf), 0);
    ck_assert_int_eq(inf->config->sealed, 1);
    ck_assert_int_eq(inf->config->deny_delete, 1);
    ck_assert_int_eq(inf->config->deny_purge, 1);
    ck_assert_int_eq(inf->config->discard, JS_DISCARD_NEW);
    ck_assert_int_eq(inf->config->max_age, 0);
    ck_assert_int_eq(inf->config->allow_rollup_hdrs, 0);
    js_stream_info_free(inf);

    for (int round = 0; round < 2; round++) {
        CHECK_RC(pubh("seal.a", NULL, "x", NULL), JS_ESEALED);
        ck_assert_int_eq(js_errcode_nats(), 10109);
        CHECK_RC(js_msg_delete(s, 2), JS_ESEALED);
        ck_assert_int_eq(js_errcode_nats(), 10109);
        CHECK_RC(js_msg_erase(s, 2), JS_ESEALED);
        CHECK_RC(js_stream_purge(s, NULL, NULL), JS_ESEALED);
        ck_assert_int_eq(js_errcode_nats(), 10109);
        EXPECT_SEQS(s, 1, 2, 3);
        /* Unsealing is not allowed. */
        js_stream_config u = c;
        u.sealed = 0;
        CHECK_RC(js_stream_update(S, &u), JS_EUPDATE);
        js_stream_release(s);
        reopen();
        s = lookup("SEALME");
    }
    /* A sealed stream can still be deleted. */
    js_stream_release(s);
    CHECK_RC(js_stream_delete(S, "SEALME"), 0);
}
END_TEST

START_TEST(test_update_lowering_max_msgs_trims_at_once) {
    js_stream_config c = mk("TRIM", NULL);
    js_stream *s = add(&c);
    for (int i = 0; i < 10; i++)
        pub("TRIM", "m");
    c.max_msgs = 4;
    CHECK_RC(js_stream_update(S, &c), 0);
    check_state(s, 4, 7, 10);
    EXPECT_SEQS(s, 7, 8, 9, 10);
    ck_assert_uint_eq(pub("TRIM", "n"), 11);
    check_state(s, 4, 8, 11);
    js_stream_release(s);
}
END_TEST

START_TEST(test_update_lowering_max_msgs_per_subject_trims_every_subject) {
    js_stream_config c = mk("TRIMS", "ts.*");
    js_stream *s = add(&c);
    /* ts.a: 1 4 7 10, ts.b: 2 5 8 11, ts.c: 3 6 9 12 */
    for (int i = 0; i < 4; i++) {
        pub("ts.a", "a");
        pub("ts.b", "b");
        pub("ts.c", "c");
    }
    c.max_msgs_per_subject = 2;
    CHECK_RC(js_stream_update(S, &c), 0);
    EXPECT_SEQS(s, 7, 8, 9, 10, 11, 12);
    c.max_msgs_per_subject = 1;
    CHECK_RC(js_stream_update(S, &c), 0);
    EXPECT_SEQS(s, 10, 11, 12);
    ck_assert_uint_eq(state_of(s).num_subjects, 3);
    js_stream_release(s);
}
END_TEST

START_TEST(test_update_lowering_max_bytes_trims_oldest) {
    js_stream_config c = mk("TRIMB", NULL);
    js_stream *s = add(&c);
    /* 40 + 5 ("TRIMB") + 55 = 100 bytes each */
    for (int i = 0; i < 6; i++)
        pub("TRIMB", payload(55));
    ck_assert_uint_eq(state_of(s).bytes, 600);
    c.max_bytes = 350;
    CHECK_RC(js_stream_update(S, &c), 0);
    EXPECT_SEQS(s, 4, 5, 6);
    ck_assert_uint_eq(state_of(s).bytes, 300);
    js_stream_release(s);
}
END_TEST

START_TEST(test_update_lowering_max_age_expires_old_messages_at_once) {
    js_stream_config c = mk("TRIMA", NULL);
    js_stream *s = add(&c);
    pub("TRIMA", "old");
    advance(10 * SEC);
    pub("TRIMA", "new");
    advance(1 * SEC);
    c.max_age = 5 * SEC;
    CHECK_RC(js_stream_update(S, &c), 0);
    check_state(s, 1, 2, 2);
    js_stream_release(s);
}
END_TEST

START_TEST(test_update_persists_across_reopen) {
    js_stream_config c = mk("PERSIST", "per.a");
    js_stream *s = add(&c);
    js_stream_release(s);
    const char *const subs[] = {"per.a", "per.b"};
    c.subjects = subs;
    c.num_subjects = 2;
    c.description = "updated";
    c.max_msgs = 42;
    c.max_age = 7 * SEC;
    c.deny_delete = 1;
    CHECK_RC(js_stream_update(S, &c), 0);
    ck_assert_uint_eq(pub("per.b", "routed by the new subject"), 1);
    reopen();
    s = lookup("PERSIST");
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(s, &inf), 0);
    ck_assert_str_eq(inf->config->description, "updated");
    ck_assert_int_eq(inf->config->max_msgs, 42);
    ck_assert_int_eq(inf->config->max_age, 7 * SEC);
    ck_assert_int_eq(inf->config->duplicate_window, 7 * SEC);
    ck_assert_int_eq(inf->config->deny_delete, 1);
    ck_assert_uint_eq(inf->config->num_subjects, 2);
    ck_assert_str_eq(inf->config->subjects[1], "per.b");
    ck_assert_uint_eq(inf->state->msgs, 1);
    js_stream_info_free(inf);
    ck_assert_uint_eq(pub("per.b", "still routed"), 2);
    js_stream_release(s);
}
END_TEST

START_TEST(test_update_rechecks_subjects_and_limits) {
    js_stream_config a = mk("UA", "ua.*"), b = mk("UB", "ub.*");
    CHECK_RC(js_stream_add(S, &a, NULL), 0);
    CHECK_RC(js_stream_add(S, &b, NULL), 0);
    js_stream_config u = mk("UB", "ua.x");
    CHECK_RC(js_stream_update(S, &u), JS_ESUBJECT_OVERLAP);
    ck_assert_int_eq(js_errcode_nats(), 10065);
    u = b;
    u.max_age = 50 * MS;
    CHECK_RC(js_stream_update(S, &u), JS_EINVAL);
    CHECK_ERR(10052, "max_age");
    /* Unchanged after the failures. */
    js_stream *s = lookup("UB");
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(s, &inf), 0);
    ck_assert_str_eq(inf->config->subjects[0], "ub.*");
    ck_assert_int_eq(inf->config->max_age, 0);
    js_stream_info_free(inf);
    js_stream_release(s);
    CHECK_RC(pubh("ua.x", NULL, "x", NULL), 0);
    js_pub_ack ack = JS_PUB_ACK_INIT;
    CHECK_RC(pubh("ub.x", NULL, "x", &ack), 0);
    ck_assert_str_eq(ack.stream, "UB");
}
END_TEST

/* ---- publish ------------------------------------------------------------ */

START_TEST(test_publish_rejects_wildcard_invalid_and_empty_subjects) {
    js_stream_config c = mk("PUBS", ">");
    js_stream *s = add(&c);
    const char *bad[] = {"a.*", "a.>", "*", ">", "", "a..b", ".a", "a.",
                         "a b", "a\tb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = pubh(bad[i], NULL, "x", NULL);
        ck_assert_msg(rc == JS_EINVAL, "subject \"%s\": got %d", bad[i], rc);
    }
    CHECK_RC(js_publish(S, NULL, NULL, 0, "x", 1, NULL), JS_EINVAL);
    ck_assert_uint_eq(state_of(s).msgs, 0);
    ck_assert_uint_eq(pub("a.b", "x"), 1);
    js_stream_release(s);
}
END_TEST

START_TEST(test_publish_with_no_matching_stream_is_eno_stream) {
    js_stream_config c = mk("ONLY", "only.*");
    CHECK_RC(js_stream_add(S, &c, NULL), 0);
    CHECK_RC(pubh("other", NULL, "x", NULL), JS_ENO_STREAM);
    CHECK_RC(pubh("only.a.b", NULL, "x", NULL), JS_ENO_STREAM);
    CHECK_RC(pubh("only", NULL, "x", NULL), JS_ENO_STREAM);
    CHECK_RC(pubh("only.a", NULL, "x", NULL), 0);
}
END_TEST

START_TEST(test_pub_ack_names_stream_sequence_and_duplicate_flag) {
    js_stream_config a = mk("ACKA", "acka.>"), b = mk("ACKB", "ackb");
    CHECK_RC(js_stream_add(S, &a, NULL), 0);
    CHECK_RC(js_stream_add(S, &b, NULL), 0);
    js_pub_ack ack = JS_PUB_ACK_INIT;
    for (uint64_t i = 1; i <= 3; i++) {
        ack.duplicate = 7;
        CHECK_RC(pubh("acka.x.y", NULL, "x", &ack), 0);
        ck_assert_uint_eq(ack.seq, i);
        ck_assert_int_eq(ack.duplicate, 0);
        ck_assert_str_eq(ack.stream, "ACKA");
    }
    CHECK_RC(pubh("ackb", NULL, "x", &ack), 0);
    ck_assert_uint_eq(ack.seq, 1);
    ck_assert_str_eq(ack.stream, "ACKB");
    /* Empty payload and no ack are fine. */
    CHECK_RC(js_publish(S, "ackb", NULL, 0, NULL, 0, NULL), 0);
    js_stream *s = lookup("ACKB");
    check_state(s, 2, 1, 2);
    js_msg *m = NULL;
    size_t len = 9;
    CHECK_RC(js_msg_get(s, 2, &m), 0);
    js_msg_data(m, &len);
    ck_assert_uint_eq(len, 0);
    js_msg_free(m);
    js_stream_release(s);
}
END_TEST

START_TEST(test_malformed_header_blocks_are_ebad_header) {
    js_stream_config c = mk("HDR", NULL);
    js_stream *s = add(&c);
    const char *bad[] = {
        "garbage",
        "NATS/1.0\r\n",                       /* no terminating line */
        "NATS/1.0\r\nKey Value\r\n\r\n",      /* no colon */
        "NATS/1.0\r\n: v\r\n\r\n",            /* empty key */
        "NATS/2.0\r\nA: b\r\n\r\n",           /* wrong version */
        "NATS/1.0\r\nA: b\r\n\r\ntrailing",   /* bytes after the end */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = pubh("HDR", bad[i], "x", NULL);
        ck_assert_msg(rc == JS_EBAD_HEADER, "header #%zu: got %d", i, rc);
    }
    check_empty(s);
    ck_assert_uint_eq(pub_h("HDR", "NATS/1.0\r\nA: b\r\n\r\n", "x"), 1);
    js_stream_release(s);
}
END_TEST

/* Each refusal's detail names the header or field at fault. */
START_TEST(test_publish_refusals_name_the_header_or_field) {
    js_stream_config c = mk("NAMED", "named.>");
    c.max_msgs = 1;
    c.discard = JS_DISCARD_NEW;
    js_stream *s = add(&c);
    static const char els[] = "NATS/1.0\r\nNats-Expected-Last-Sequence: 7\r\n\r\n";
    CHECK_RC(js_publish(S, "named.a", els, sizeof els - 1, "x", 1, NULL),
             JS_EWRONG_LAST_SEQ);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "Nats-Expected-Last-Sequence"));
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "wrong last sequence: 0"));
    static const char ru[] = "NATS/1.0\r\nNats-Rollup: sub\r\n\r\n";
    CHECK_RC(js_publish(S, "named.a", ru, sizeof ru - 1, "x", 1, NULL),
             JS_EROLLUP);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "Nats-Rollup"));
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "allow_rollup_hdrs"));
    CHECK_RC(js_publish(S, "named.a", NULL, 0, "x", 1, NULL), 0);
    CHECK_RC(js_publish(S, "named.a", NULL, 0, "x", 1, NULL), JS_EMAX_MSGS);
    ck_assert_ptr_nonnull(strstr(js_errmsg(), "max_msgs"));
    js_stream_release(s);
}
END_TEST

START_TEST(test_oversized_and_null_publish_arguments_are_refused) {
    js_stream_config c = mk("BIGP", NULL);
    js_stream *s = add(&c);
    /* A subject over JS_MAX_SUBJECT_LEN bytes. */
    size_t sl = JS_MAX_SUBJECT_LEN + 1;
    char *subj = malloc(sl + 1);
    ck_assert_ptr_nonnull(subj);
    memset(subj, 'a', sl);
    subj[sl] = 0;
    CHECK_RC(js_publish(S, subj, NULL, 0, "x", 1, NULL), JS_EINVAL);
    free(subj);
    /* A payload over JS_MAX_PAYLOAD bytes. */
    size_t pl = (size_t)JS_MAX_PAYLOAD + 1;
    char *big = calloc(1, pl);
    ck_assert_ptr_nonnull(big);
    CHECK_RC(js_publish(S, "BIGP", NULL, 0, big, pl, NULL), JS_EMSG_SIZE);
    ck_assert_int_eq(js_errcode_nats(), 10054);
    free(big);
    /* NULL where a length says there is data; NULL subject. */
    CHECK_RC(js_publish(S, "BIGP", NULL, 0, NULL, 5, NULL), JS_EINVAL);
    CHECK_RC(js_publish(S, "BIGP", NULL, 3, "x", 1, NULL), JS_EINVAL);
    CHECK_RC(js_publish(S, NULL, NULL, 0, "x", 1, NULL), JS_EINVAL);
    /* A NULL store, a batch without messages, an ack from the future. */
    CHECK_RC(js_publish(NULL, "BIGP", NULL, 0, "x", 1, NULL), JS_EMISUSE);
    CHECK_RC(js_publish_batch(S, NULL, 3, NULL, NULL), JS_EINVAL);
    js_pub_ack ack = JS_PUB_ACK_INIT;
    ack.version = 99;
    CHECK_RC(js_publish(S, "BIGP", NULL, 0, "x", 1, &ack), JS_EINVAL);
    /* Nothing was stored by any of them. */
    check_state(s, 0, 0, 0);
    js_stream_release(s);
}
END_TEST

START_TEST(test_header_block_over_65535_bytes_is_ehdr_size) {
    js_stream_config c = mk("BIGH", NULL);
    js_stream *s = add(&c);
    /* "NATS/1.0\r\n" (10) + "X: " (3) + value + "\r\n\r\n" (4) */
    size_t n = 65536;
    char *h = malloc(n + 1);
    ck_assert_ptr_nonnull(h);
    memcpy(h, "NATS/1.0\r\nX: ", 13);
    memset(h + 13, 'v', n - 17);
    memcpy(h + n - 4, "\r\n\r\n", 4);
    h[n] = 0;
    CHECK_RC(js_publish(S, "BIGH", h, n, "x", 1, NULL), JS_EHDR_SIZE);
    ck_assert_int_eq(js_errcode_nats(), 10097);
    /* One byte less is at the limit and fine. */
    memcpy(h + 13 + (n - 18), "\r\n\r\n", 4);
    CHECK_RC(js_publish(S, "BIGH", h + 0, n - 1, "x", 1, NULL), 0);
    free(h);
    check_state(s, 1, 1, 1);
    js_stream_release(s);
}
END_TEST

START_TEST(test_max_msg_size_counts_headers_and_payload) {
    js_stream_config c = mk("SIZE", "size.>");
    c.max_msg_size = 100;
    js_stream *s = add(&c);
    const char *h = H("A", "0123456789", NULL); /* 10+15+2 = 27 bytes */
    size_t hl = strlen(h);
    ck_assert_uint_eq(hl, 27);
    CHECK_RC(pubh("size.a", h, payload(100 - hl), NULL), 0);
    CHECK_RC(pubh("size.a", h, payload(101 - hl), NULL), JS_EMSG_SIZE);
    ck_assert_int_eq(js_errcode_nats(), 10054);
    CHECK_RC(pubh("size.a", NULL, payload(100), NULL), 0);
    CHECK_RC(pubh("size.a", NULL, payload(101), NULL), JS_EMSG_SIZE);
    /* The subject does not count. */
    CHECK_RC(pubh("size.a-very-long-subject-name-that-is-not-counted", NULL,
                  payload(100), NULL), 0);
    check_state(s, 3, 1, 3);
    js_stream_release(s);
}
END_TEST

/* ---- expected-* headers ------------------------------------------------- */

START_TEST(test_expected_stream_header_must_name_the_stream) {
    js_stream_config c = mk("EXPS", "exps.*");
    js_stream *s = add(&c);
    CHECK_RC(pubh("exps.a", H("Nats-Expected-Stream", "OTHER", NULL), "x",
                  NULL), JS_ESTREAM_MISMATCH);
    ck_assert_int_eq(js_errcode_nats(), 10060);
    CHECK_RC(pubh("exps.a", H("Nats-Expected-Stream", "exps", NULL), "x",
                  NULL), JS_ESTREAM_MISMATCH);
    check_empty(s);
    ck_assert_uint_eq(pub_h("exps.a", H("Nats-Expected-Stream", "EXPS", NULL),
                            "x"), 1);
    js_stream_release(s);
}
END_TEST

START_TEST(test_expected_last_sequence_must_equal_stream_last_seq) {
    js_stream_config c = mk("ELS", "els.*");
    js_stream *s = add(&c);
    ck_assert_uint_eq(
        pub_h("els.a", H("Nats-Expected-Last-Sequence", "0", NULL), "x"), 1);
    pub("els.b", "x");
    pub("els.a", "x");
    CHECK_RC(pubh("els.a", H("Nats-Expected-Last-Sequence", "2", NULL), "x",
                  NULL), JS_EWRONG_LAST_SEQ);
    CHECK_ERR(10071, "wrong last sequence: 3");
    CHECK_RC(pubh("els.a", H("Nats-Expected-Last-Sequence", "4", NULL), "x",
                  NULL), JS_EWRONG_LAST_SEQ);
    ck_assert_uint_eq(
        pub_h("els.b", H("Nats-Expected-Last-Sequence", "3", NULL), "x"), 4);
    /* It is the stream's last sequence even when that message is gone. */
    CHECK_RC(js_msg_delete(s, 4), 0);
    ck_assert_uint_eq(
        pub_h("els.b", H("Nats-Expected-Last-Sequence", "4", NULL), "x"), 5);
    check_state(s, 4, 1, 5);
    js_stream_release(s);
}
END_TEST

START_TEST(test_expected_last_subject_sequence_checks_the_subject) {
    js_stream_config c = mk("ELSS", "elss.*");
    c.allow_rollup_hdrs = 0;
    js_stream *s = add(&c);
    pub("elss.a", "1"); /* 1 */
    pub("elss.b", "2"); /* 2 */
    pub("elss.a", "3"); /* 3 */
    const char *h3 = H("Nats-Expected-Last-Subject-Sequence", "3", NULL);
    const char *h1 = H("Nats-Expected-Last-Subject-Sequence", "1", NULL);
    const char *h0 = H("Nats-Expected-Last-Subject-Sequence", "0", NULL);
    ck_assert_uint_eq(pub_h("elss.a", h3, "4"), 4);
    CHECK_RC(pubh("elss.a", h1, "x", NULL), JS_EWRONG_LAST_SEQ);
    CHECK_ERR(10071, "wrong last sequence: 4");
    /* 0: no message on the subject yet. */
    ck_assert_uint_eq(pub_h("elss.c", h0, "5"), 5);
    CHECK_RC(pubh("elss.c", h0, "x", NULL), JS_EWRONG_LAST_SEQ);
    CHECK_ERR(10071, "wrong last sequence: 5");
    /* The stream's last sequence does not matter, only the subject's. */
    CHECK_RC(pubh("elss.b", h3, "x", NULL), JS_EWRONG_LAST_SEQ);
    CHECK_ERR(10071, "wrong last sequence: 2");
    ck_assert_uint_eq(
        pub_h("elss.b", H("Nats-Expected-Last-Subject-Sequence", "2", NULL),
              "6"), 6);
    /* After a purge of the subject, 0 matches again. */
    js_purge_opts po = JS_PURGE_OPTS_INIT;
    po.filter = "elss.b";
    CHECK_RC(js_stream_purge(s, &po, NULL), 0);
    ck_assert_uint_eq(pub_h("elss.b", h0, "7"), 7);
    /* After deleting the subject's last message, the one before counts. */
    CHECK_RC(js_msg_delete(s, 4), 0);
    ck_assert_uint_eq(pub_h("elss.a", h3, "8"), 8);
    /* The per-subject state is the same after a reopen. */
    CHECK_RC(js_msg_delete(s, 8), 0);
    js_stream_release(s);
    reopen();
    s = lookup("ELSS");
    CHECK_RC(pubh("elss.a", h0, "x", NULL), JS_EWRONG_LAST_SEQ);
    CHECK_ERR(10071, "wrong last sequence: 3");
    CHECK_RC(pubh("elss.b", h3, "x", NULL), JS_EWRONG_LAST_SEQ);
    CHECK_ERR(10071, "wrong last sequence: 7");
    ck_assert_uint_eq(pub_h("elss.a", h3, "9"), 9);
    ck_assert_uint_eq(state_of(s).num_subjects, 3);
    js_stream_release(s);
}
END_TEST

START_TEST(test_expected_last_subject_sequence_subject_header_filters) {
    js_stream_config c = mk("ELSF", "elsf.>");
    js_stream *s = add(&c);
    pub("elsf.a.1", "1");  /* 1 */
    pub("elsf.b.1", "2");  /* 2 */
    pub("elsf.a.2", "3");  /* 3 */
    pub("elsf.b.2", "4");  /* 4 */
    /* The check uses the last message matching the filter subject. */
    ck_assert_uint_eq(
        pub_h("elsf.a.9",
              H("Nats-Expected-Last-Subject-Sequence", "3",
                "Nats-Expected-Last-Subject-Sequence-Subject", "elsf.a.*",
                NULL),
              "5"), 5);
    CHECK_RC(pubh("elsf.a.9",
                  H("Nats-Expected-Last-Subject-Sequence", "3",
                    "Nats-Expected-Last-Subject-Sequence-Subject", "elsf.a.*",
                    NULL),
                  "x", NULL), JS_EWRONG_LAST_SEQ);
    CHECK_ERR(10071, "wrong last sequence: 5");
    /* A literal subject other than the message's own. */
    ck_assert_uint_eq(
        pub_h("elsf.a.9",
              H("Nats-Expected-Last-Subject-Sequence", "4",
                "Nats-Expected-Last-Subject-Sequence-Subject", "elsf.b.2",
                NULL),
              "6"), 6);
    /* No message matches: 0. */
    ck_assert_uint_eq(
        pub_h("elsf.a.9",
              H("Nats-Expected-Last-Subject-Sequence", "0",
                "Nats-Expected-Last-Subject-Sequence-Subject", "elsf.z.*",
                NULL),
              "7"), 7);
    js_stream_release(s);
}
END_TEST

START_TEST(test_expected_last_subject_sequence_subject_alone_is_10193) {
    js_stream_config c = mk("ELSO", "elso.*");
    js_stream *s = add(&c);
    pub("elso.a", "1");
    CHECK_RC(pubh("elso.a",
                  H("Nats-Expected-Last-Subject-Sequence-Subject", "elso.a",
                    NULL),
                  "x", NULL), JS_EBAD_HEADER);
    ck_assert_int_eq(js_errcode_nats(), 10193);
    check_state(s, 1, 1, 1);
    js_stream_release(s);
}
END_TEST

START_TEST(test_expected_last_msg_id_must_equal_last_message_id) {
    js_stream_config c = mk("ELM", NULL);
    js_stream *s = add(&c);
    pub_h("ELM", H("Nats-Msg-Id", "m1", NULL), "1");
    pub_h("ELM", H("Nats-Msg-Id", "m2", NULL), "2");
    CHECK_RC(pubh("ELM", H("Nats-Expected-Last-Msg-Id", "m1", NULL), "x",
                  NULL), JS_EWRONG_LAST_MSGID);
    CHECK_ERR(10070, "wrong last msg ID: m2");
    ck_assert_uint_eq(
        pub_h("ELM", H("Nats-Expected-Last-Msg-Id", "m2", "Nats-Msg-Id", "m3",
                       NULL), "3"), 3);
    CHECK_RC(pubh("ELM", H("Nats-Expected-Last-Msg-Id", "m2", NULL), "x",
                  NULL), JS_EWRONG_LAST_MSGID);
    CHECK_ERR(10070, "m3");
    check_state(s, 3, 1, 3);
    js_stream_release(s);
}
END_TEST

/* NATS checks expected-* before de-duplication: a retried publish whose
 * expectation went stale fails instead of reporting a duplicate. */
START_TEST(test_expected_headers_are_checked_before_dedupe) {
    js_stream_config c = mk("ORDER", NULL);
    js_stream *s = add(&c);
    const char *h = H("Nats-Msg-Id", "once", "Nats-Expected-Last-Sequence",
                      "0", NULL);
    ck_assert_uint_eq(pub_h("ORDER", h, "x"), 1);
    CHECK_RC(pubh("ORDER", h, "x", NULL), JS_EWRONG_LAST_SEQ);
    js_pub_ack ack = JS_PUB_ACK_INIT;
    CHECK_RC(pubh("ORDER", H("Nats-Msg-Id", "once", NULL), "x", &ack), 0);
    ck_assert_int_eq(ack.duplicate, 1);
    ck_assert_uint_eq(ack.seq, 1);
    js_stream_release(s);
}
END_TEST

/* ---- de-duplication ----------------------------------------------------- */

START_TEST(test_duplicate_msg_id_returns_original_seq_and_stores_nothing) {
    js_stream_config c = mk("DUP", "dup.*");
    js_stream *s = add(&c);
    js_pub_ack ack = JS_PUB_ACK_INIT;
    const char *h = H("Nats-Msg-Id", "abc", NULL);
    CHECK_RC(pubh("dup.a", h, "first", &ack), 0);
    ck_assert_uint_eq(ack.seq, 1);
    ck_assert_int_eq(ack.duplicate, 0);
    pub("dup.b", "other");
    uint64_t bytes = state_of(s).bytes;
    advance(60 * SEC);
    CHECK_RC(pubh("dup.b", h, "second", &ack), 0); /* any subject */
    ck_assert_uint_eq(ack.seq, 1);
    ck_assert_int_eq(ack.duplicate, 1);
    ck_assert_str_eq(ack.stream, "DUP");
    check_state(s, 2, 1, 2);
    ck_assert_uint_eq(state_of(s).bytes, bytes);
    js_msg *m = NULL;
    size_t len = 0;
    CHECK_RC(js_msg_get(s, 1, &m), 0);
    ck_assert(memcmp(js_msg_data(m, &len), "first", 5) == 0);
    js_msg_free(m);
    /* A different id is a new message. */
    CHECK_RC(pubh("dup.a", H("Nats-Msg-Id", "abd", NULL), "x", &ack), 0);
    ck_assert_uint_eq(ack.seq, 3);
    ck_assert_int_eq(ack.duplicate, 0);
    /* An empty id is no id. */
    CHECK_RC(pubh("dup.a", H("Nats-Msg-Id", "", NULL), "x", &ack), 0);
    ck_assert_uint_eq(ack.seq, 4);
    CHECK_RC(pubh("dup.a", H("Nats-Msg-Id", "", NULL), "x", &ack), 0);
    ck_assert_uint_eq(ack.seq, 5);
    ck_assert_int_eq(ack.duplicate, 0);
    js_stream_release(s);
}
END_TEST

START_TEST(test_msg_id_is_accepted_again_after_the_duplicate_window) {
    js_stream_config c = mk("WIN", NULL);
    c.duplicate_window = 10 * SEC;
    js_stream *s = add(&c);
    const char *h = H("Nats-Msg-Id", "w", NULL);
    js_pub_ack ack = JS_PUB_ACK_INIT;
    CHECK_RC(pubh("WIN", h, "1", &ack), 0);
    ck_assert_uint_eq(ack.seq, 1);
    advance(9 * SEC);
    CHECK_RC(pubh("WIN", h, "2", &ack), 0);
    ck_assert_int_eq(ack.duplicate, 1);
    ck_assert_uint_eq(ack.seq, 1);
    advance(2 * SEC); /* 11 s after the original */
    CHECK_RC(pubh("WIN", h, "3", &ack), 0);
    ck_assert_int_eq(ack.duplicate, 0);
    ck_assert_uint_eq(ack.seq, 2);
    /* The window restarts from the new message. */
    advance(5 * SEC);
    CHECK_RC(pubh("WIN", h, "4", &ack), 0);
    ck_assert_int_eq(ack.duplicate, 1);
    ck_assert_uint_eq(ack.seq, 2);

    /* The default window is two minutes. */
    js_stream_config d = mk("WIN2", NULL);
    CHECK_RC(js_stream_add(S, &d, NULL), 0);
    const char *h2 = H("Nats-Msg-Id", "w2", NULL);
    CHECK_RC(pubh("WIN2", h2, "1", &ack), 0);
    advance(119 * SEC);
    CHECK_RC(pubh("WIN2", h2, "2", &ack), 0);
    ck_assert_int_eq(ack.duplicate, 1);
    advance(2 * SEC);
    CHECK_RC(pubh("WIN2", h2, "3", &ack), 0);
    ck_assert_int_eq(ack.duplicate, 0);
    ck_assert_uint_eq(ack.seq, 2);
    js_stream_release(s);
}
END_TEST

START_TEST(test_dedupe_state_survives_reopen) {
    js_stream_config c = mk("DDR", NULL);
    c.duplicate_window = 30 * SEC;
    CHECK_RC(js_stream_add(S, &c, NULL), 0);
    js_pub_ack ack = JS_PUB_ACK_INIT;
    CHECK_RC(pubh("DDR", H("Nats-Msg-Id", "old", NULL), "1", &ack), 0);
    advance(20 * SEC);
    CHECK_RC(pubh("DDR", H("Nats-Msg-Id", "new", NULL), "2", &ack), 0);
    advance(1 * SEC);
    reopen();
    CHECK_RC(pubh("DDR", H("Nats-Msg-Id", "new", NULL), "x", &ack), 0);
    ck_assert_int_eq(ack.duplicate, 1);
    ck_assert_uint_eq(ack.seq, 2);
    CHECK_RC(pubh("DDR", H("Nats-Msg-Id", "old", NULL), "x", &ack), 0);
    ck_assert_int_eq(ack.duplicate, 1);
    ck_assert_uint_eq(ack.seq, 1);
    /* Expected-Last-Msg-Id also remembers the last id. */
    CHECK_RC(pubh("DDR", H("Nats-Expected-Last-Msg-Id", "new", NULL), "3",
                  &ack), 0);
    ck_assert_uint_eq(ack.seq, 3);
    advance(15 * SEC); /* "old" is 36 s old now, "new" 16 s */
    reopen();
    CHECK_RC(pubh("DDR", H("Nats-Msg-Id", "old", NULL), "4", &ack), 0);
    ck_assert_int_eq(ack.duplicate, 0);
    ck_assert_uint_eq(ack.seq, 4);
    CHECK_RC(pubh("DDR", H("Nats-Msg-Id", "new", NULL), "x", &ack), 0);
    ck_assert_int_eq(ack.duplicate, 1);
    ck_assert_uint_eq(ack.seq, 2);
}
END_TEST

/* ---- limits and discard ------------------------------------------------- */

START_TEST(test_max_msgs_with_discard_old_drops_oldest) {
    js_stream_config c = mk("MM", NULL);
    c.max_msgs = 5;
    js_stream *s = add(&c);
    for (int i = 0; i < 8; i++)
        pub("MM", "x");
    check_state(s, 5, 4, 8);
    EXPECT_SEQS(s, 4, 5, 6, 7, 8);
    js_stream_release(s);
}
END_TEST

START_TEST(test_bytes_count_40_plus_subject_headers_and_payload) {
    js_stream_config c = mk("BYTES", "bytes.>");
    js_stream *s = add(&c);
    const char *h = H("K", "v", NULL);
    CHECK_RC(pubh("bytes.a", NULL, "12345", NULL), 0);       /* 40+7+5 */
    CHECK_RC(pubh("bytes.abc.d", h, "1234567890", NULL), 0); /* 40+11+h+10 */
    CHECK_RC(pubh("bytes.e", NULL, NULL, NULL), 0);          /* 40+7 */
    ck_assert_uint_eq(state_of(s).bytes, 52 + (61 + strlen(h)) + 47);
    CHECK_RC(js_msg_delete(s, 2), 0);
    ck_assert_uint_eq(state_of(s).bytes, 52 + 47);
    js_stream_release(s);
}
END_TEST

START_TEST(test_max_bytes_with_discard_old_drops_oldest) {
    js_stream_config c = mk("MB", "mb.x");
    c.max_bytes = 350;
    js_stream *s = add(&c);
    for (int i = 0; i < 5; i++)
        pub("mb.x", payload(56)); /* 40 + 4 + 56 = 100 */
    check_state(s, 3, 3, 5);
    ck_assert_uint_eq(state_of(s).bytes, 300);
    /* A bigger message pushes out as many as needed. */
    pub("mb.x", payload(156)); /* 200 */
    check_state(s, 2, 5, 6);
    ck_assert_uint_eq(state_of(s).bytes, 300);
    js_stream_release(s);
}
END_TEST

START_TEST(test_max_age_expires_messages_on_reads_and_info) {
    js_stream_config c = mk("AGE", NULL);
    c.max_age = 1 * SEC;
    js_stream *s = add(&c);
    pub("AGE", "a");                /* T0 */
    advance(500 * MS);
    pub("AGE", "b");                /* T0+0.5 */
    advance(700 * MS);              /* T0+1.2: "a" is too old */
    expect_gone(s, 1);
    js_msg *m = NULL;
    CHECK_RC(js_msg_get_next(s, NULL, 1, &m), 0);
    ck_assert_uint_eq(js_msg_seq(m), 2);
    js_msg_free(m);
    advance(400 * MS);              /* T0+1.6: "b" too */
    js_stream_state st = state_of(s);
    ck_assert_uint_eq(st.msgs, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.first_seq, 3);
    ck_assert_uint_eq(st.last_seq, 2);
    CHECK_RC(js_msg_get_last(s, "AGE", &m), JS_EMSG_NOT_FOUND);
    /* New messages live their own max_age. */
    ck_assert_uint_eq(pub("AGE", "c"), 3);
    advance(900 * MS);
    check_state(s, 1, 3, 3);
    js_stream_release(s);
}
END_TEST

START_TEST(test_max_age_expires_on_publish_before_discard_new_check) {
    js_stream_config c = mk("AGEP", NULL);
    c.max_age = 1 * SEC;
    c.max_msgs = 2;
    c.discard = JS_DISCARD_NEW;
    js_stream *s = add(&c);
    pub("AGEP", "a");
    pub("AGEP", "b");
    CHECK_RC(pubh("AGEP", NULL, "c", NULL), JS_EMAX_MSGS);
    advance(2 * SEC);
    ck_assert_uint_eq(pub("AGEP", "d"), 3);
    check_state(s, 1, 3, 3);
    js_stream_release(s);
}
END_TEST

START_TEST(test_max_age_applies_after_reopen) {
    js_stream_config c = mk("AGER", NULL);
    c.max_age = 10 * SEC;
    js_stream *s = add(&c);
    pub("AGER", "a");
    advance(6 * SEC);
    pub("AGER", "b");
    js_stream_release(s);
    advance(5 * SEC);
    reopen();
    s = lookup("AGER");
    check_state(s, 1, 2, 2);
    js_stream_release(s);
}
END_TEST

START_TEST(test_max_msgs_per_subject_with_discard_old_keeps_newest) {
    js_stream_config c = mk("MPS", "mps.*");
    c.max_msgs_per_subject = 2;
    js_stream *s = add(&c);
    pub("mps.a", "1");
    pub("mps.a", "2");
    pub("mps.b", "3");
    pub("mps.a", "4");
    EXPECT_SEQS(s, 2, 3, 4);
    check_state(s, 3, 2, 4);
    pub("mps.a", "5");
    EXPECT_SEQS(s, 3, 4, 5);
    pub("mps.b", "6");
    pub("mps.b", "7");
    EXPECT_SEQS(s, 4, 5, 6, 7);
    ck_assert_uint_eq(state_of(s).num_subjects, 2);
    js_stream_release(s);
}
END_TEST

START_TEST(test_discard_new_max_msgs_rejects_with_emax_msgs) {
    js_stream_config c = mk("DNM", NULL);
    c.max_msgs = 3;
    c.discard = JS_DISCARD_NEW;
    js_stream *s = add(&c);
    for (int i = 0; i < 3; i++)
        pub("DNM", "x");
    CHECK_RC(pubh("DNM", NULL, "x", NULL), JS_EMAX_MSGS);
    CHECK_ERR(10077, "maximum messages exceeded");
    check_state(s, 3, 1, 3);
    /* Room again after a delete. */
    CHECK_RC(js_msg_delete(s, 1), 0);
    ck_assert_uint_eq(pub("DNM", "y"), 4);
    js_stream_release(s);
}
END_TEST

START_TEST(test_discard_new_max_bytes_rejects_with_emax_bytes) {
    js_stream_config c = mk("DNB", NULL);
    c.max_bytes = 350;
    c.discard = JS_DISCARD_NEW;
    js_stream *s = add(&c);
    for (int i = 0; i < 3; i++)
        pub("DNB", payload(57)); /* 40 + 3 + 57 = 100 */
    CHECK_RC(pubh("DNB", NULL, payload(57), NULL), JS_EMAX_BYTES);
    CHECK_ERR(10077, "maximum bytes exceeded");
    check_state(s, 3, 1, 3);
    ck_assert_uint_eq(state_of(s).bytes, 300);
    js_stream_release(s);
}
END_TEST

/* NATS: with discard new, a subject already at max_msgs_per_subject still
 * takes a message (it replaces that subject's oldest); for max_bytes only if
 * dropping the oldest frees enough room. */
START_TEST(test_discard_new_accepts_message_at_subject_limit_replacing_oldest) {
    js_stream_config c = mk("DNX", "dnx.*");
    c.max_msgs = 3;
    c.max_msgs_per_subject = 1;
    c.discard = JS_DISCARD_NEW;
    js_stream *s = add(&c);
    pub("dnx.a", "1");
    pub("dnx.b", "2");
    pub("dnx.c", "3");
    CHECK_RC(pubh("dnx.d", NULL, "x", NULL), JS_EMAX_MSGS);
    ck_assert_uint_eq(pub("dnx.a", "4"), 4);
    EXPECT_SEQS(s, 2, 3, 4);
    ck_assert_uint_eq(last_seq_of(s, "dnx.a"), 4);
    js_stream_release(s);

    js_stream_config b = mk("DNY", "dny.*");
    b.max_bytes = 250;
    b.max_msgs_per_subject = 1;
    b.discard = JS_DISCARD_NEW;
    s = add(&b);
    pub("dny.a", payload(55)); /* 40 + 5 + 55 = 100 */
    pub("dny.b", payload(55));
    CHECK_RC(pubh("dny.c", NULL, payload(55), NULL), JS_EMAX_BYTES);
    ck_assert_uint_eq(pub("dny.a", payload(55)), 3); /* replaces seq 1 */
    EXPECT_SEQS(s, 2, 3);
    CHECK_RC(pubh("dny.a", NULL, payload(75), NULL), JS_EMAX_BYTES);
    EXPECT_SEQS(s, 2, 3);
    js_stream_release(s);
}
END_TEST

START_TEST(test_discard_new_per_subject_rejects_and_rollup_bypasses_it) {
    js_stream_config c = mk("DNPS", "dnps.*");
    c.discard = JS_DISCARD_NEW;
    c.max_msgs_per_subject = 2;
    c.discard_new_per_subject = 1;
    c.allow_rollup_hdrs = 1;
    js_stream *s = add(&c);
    pub("dnps.a", "1");
    pub("dnps.a", "2");
    CHECK_RC(pubh("dnps.a", NULL, "x", NULL), JS_EMAX_MSGS_PER_SUBJECT);
    CHECK_ERR(10077, "maximum messages per subject exceeded");
    ck_assert_uint_eq(pub("dnps.b", "3"), 3);
    EXPECT_SEQS(s, 1, 2, 3);
    ck_assert_uint_eq(pub_h("dnps.a", H("Nats-Rollup", "sub", NULL), "4"), 4);
    EXPECT_SEQS(s, 3, 4);
    js_stream_release(s);
}
END_TEST

/* ---- rollups ------------------------------------------------------------ */

START_TEST(test_rollup_sub_keeps_only_the_new_message_of_its_subject) {
    js_stream_config c = mk("RU", "ru.*");
    c.allow_rollup_hdrs = 1;
    js_stream *s = add(&c);
    pub("ru.a", "1");
    pub("ru.b", "2");
    pub("ru.a", "3");
    pub("ru.b", "4");
    pub("ru.a", "5");
    ck_assert_uint_eq(pub_h("ru.a", H("Nats-Rollup", "sub", NULL), "6"), 6);
    EXPECT_SEQS(s, 2, 4, 6);
    ck_assert_uint_eq(last_seq_of(s, "ru.a"), 6);
    js_stream_release(s);
}
END_TEST

START_TEST(test_rollup_all_keeps_only_the_new_message) {
    js_stream_config c = mk("RUA", "rua.*");
    c.allow_rollup_hdrs = 1;
    js_stream *s = add(&c);
    pub("rua.a", "1");
    pub("rua.b", "2");
    pub("rua.c", "3");
    ck_assert_uint_eq(pub_h("rua.b", H("Nats-Rollup", "all", NULL), "4"), 4);
    EXPECT_SEQS(s, 4);
    check_state(s, 1, 4, 4);
    ck_assert_uint_eq(state_of(s).num_subjects, 1);
    js_stream_release(s);
    reopen();
    s = lookup("RUA");
    EXPECT_SEQS(s, 4);
    js_stream_release(s);
}
END_TEST

START_TEST(test_rollup_needs_allow_rollup_hdrs) {
    js_stream_config c = mk("RUN", NULL);
    js_stream *s = add(&c);
    pub("RUN", "1");
    CHECK_RC(pubh("RUN", H("Nats-Rollup", "sub", NULL), "x", NULL),
             JS_EROLLUP);
    CHECK_ERR(10111, "rollup not permitted");
    CHECK_RC(pubh("RUN", H("Nats-Rollup", "all", NULL), "x", NULL),
             JS_EROLLUP);
    check_state(s, 1, 1, 1);
    js_stream_release(s);
}
END_TEST

START_TEST(test_rollup_with_invalid_value_is_rejected) {
    js_stream_config c = mk("RUV", NULL);
    c.allow_rollup_hdrs = 1;
    js_stream *s = add(&c);
    pub("RUV", "1");
    const char *bad[] = {"everything", "subject", "al", "1", "sub all"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = pubh("RUV", H("Nats-Rollup", bad[i], NULL), "x", NULL);
        ck_assert_msg(rc == JS_EROLLUP, "value \"%s\": got %d", bad[i], rc);
        CHECK_ERR(10111, "rollup value invalid");
    }
    check_state(s, 1, 1, 1);
    js_stream_release(s);
}
END_TEST

START_TEST(test_rollup_values_are_case_insensitive) {
    js_stream_config c = mk("RUC", "ruc.*");
    c.allow_rollup_hdrs = 1;
    js_stream *s = add(&c);
    pub("ruc.a", "1");
    pub("ruc.b", "2");
    ck_assert_uint_eq(pub_h("ruc.a", H("Nats-Rollup", "SUB", NULL), "3"), 3);
    EXPECT_SEQS(s, 2, 3);
    ck_assert_uint_eq(pub_h("ruc.c", H("Nats-Rollup", "All", NULL), "4"), 4);
    EXPECT_SEQS(s, 4);
    js_stream_release(s);
}
END_TEST

/* ---- purge -------------------------------------------------------------- */

static uint64_t purge(js_stream *s, const char *filter, uint64_t seq,
                      uint64_t keep) {
    js_purge_opts o = JS_PURGE_OPTS_INIT;
    uint64_t n = 12345;
    o.filter = filter;
    o.seq = seq;
    o.keep = keep;
    CHECK_RC(js_stream_purge(s, &o, &n), 0);
    return n;
}

START_TEST(test_purge_all_keeps_sequence_space_and_survives_reopen) {
    js_stream_config c = mk("PA", NULL);
    js_stream *s = add(&c);
    for (int i = 0; i < 5; i++)
        pub("PA", "x");
    uint64_t n = 0;
    CHECK_RC(js_stream_purge(s, NULL, &n), 0);
    ck_assert_uint_eq(n, 5);
    js_stream_state st = state_of(s);
    ck_assert_uint_eq(st.msgs, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.first_seq, 6);
    ck_assert_uint_eq(st.last_seq, 5);
    ck_assert_uint_eq(st.num_deleted, 0);
    ck_assert_uint_eq(st.num_subjects, 0);
    ck_assert_int_eq(st.first_ts, 0);
    js_stream_release(s);
    reopen();
    s = lookup("PA");
    check_state(s, 0, 6, 5);
    ck_assert_uint_eq(pub("PA", "y"), 6);
    CHECK_RC(js_stream_purge(s, NULL, NULL), 0); /* purged may be NULL */
    js_stream_release(s);
    reopen();
    s = lookup("PA");
    check_state(s, 0, 7, 6);
    /* An all-zero opts is "everything" as well. */
    pub("PA", "z");
    ck_assert_uint_eq(purge(s, NULL, 0, 0), 1);
    check_state(s, 0, 8, 7);
    js_stream_release(s);
}
END_TEST

START_TEST(test_purge_by_literal_subject_removes_only_that_subject) {
    js_stream_config c = mk("PL", "pl.*");
    js_stream *s = add(&c);
    pub("pl.a", "1");
    pub("pl.b", "2");
    pub("pl.a", "3");
    pub("pl.b", "4");
    pub("pl.a", "5");
    ck_assert_uint_eq(purge(s, "pl.a", 0, 0), 3);
    EXPECT_SEQS(s, 2, 4);
    js_stream_state st = state_of(s);
    ck_assert_uint_eq(st.first_seq, 2);
    ck_assert_uint_eq(st.last_seq, 5);
    ck_assert_uint_eq(st.num_subjects, 1);
    ck_assert_uint_eq(purge(s, "pl.zzz", 0, 0), 0);
    js_stream_release(s);
    reopen();
    s = lookup("PL");
    EXPECT_SEQS(s, 2, 4);
    js_stream_release(s);
}
END_TEST

START_TEST(test_purge_by_wildcard_subject) {
    js_stream_config c = mk("PW", ">");
    js_stream *s = add(&c);
    pub("p.a", "1");
    pub("q.c", "2");
    pub("p.b", "3");
    pub("p.a.x", "4");
    pub("p.b", "5");
    ck_assert_uint_eq(purge(s, "p.*", 0, 0), 3);
    EXPECT_SEQS(s, 2, 4);
    ck_assert_uint_eq(purge(s, "p.>", 0, 0), 1);
    EXPECT_SEQS(s, 2);
    ck_assert_uint_eq(purge(s, ">", 0, 0), 1);
    check_state(s, 0, 6, 5);
    js_stream_release(s);
}
END_TEST

START_TEST(test_purge_keep_leaves_the_newest_n) {
    js_stream_config c = mk("PK", "pk.*");
    js_stream *s = add(&c);
    for (int i = 0; i < 10; i++)
        pub(i % 2 ? "pk.b" : "pk.a", "x");
    ck_assert_uint_eq(purge(s, NULL, 0, 3), 7);
    EXPECT_SEQS(s, 8, 9, 10);
    ck_assert_uint_eq(purge(s, NULL, 0, 5), 0);
    EXPECT_SEQS(s, 8, 9, 10);
    ck_assert_uint_eq(purge(s, NULL, 0, 1), 2);
    EXPECT_SEQS(s, 10);
    js_stream_release(s);
}
END_TEST

START_TEST(test_purge_keep_with_filter_keeps_newest_of_all_matching) {
    js_stream_config c = mk("PKF", ">");
    js_stream *s = add(&c);
    pub("p.a", "1");
    pub("p.b", "2");
    pub("p.a", "3");
    pub("p.b", "4");
    pub("p.a", "5");
    pub("p.b", "6");
    pub("q.c", "7");
    /* Newest 2 of p.* combined (5, 6), not 2 per subject. */
    ck_assert_uint_eq(purge(s, "p.*", 0, 2), 4);
    EXPECT_SEQS(s, 5, 6, 7);
    ck_assert_uint_eq(purge(s, "p.a", 0, 1), 0);
    ck_assert_uint_eq(purge(s, "p.*", 0, 2), 0);
    ck_assert_uint_eq(purge(s, "p.*", 0, 1), 1);
    EXPECT_SEQS(s, 6, 7);
    js_stream_release(s);
}
END_TEST

START_TEST(test_purge_up_to_sequence_removes_everything_below_it) {
    js_stream_config c = mk("PS", "ps.*");
    js_stream *s = add(&c);
    for (int i = 0; i < 10; i++)
        pub(i % 2 ? "ps.b" : "ps.a", "x");
    ck_assert_uint_eq(purge(s, NULL, 1, 0), 0);
    ck_assert_uint_eq(purge(s, NULL, 4, 0), 3);
    check_state(s, 7, 4, 10);
    /* With a filter: matching messages below seq only.
     * ps.a: 5 7 9, ps.b: 4 6 8 10 */
    ck_assert_uint_eq(purge(s, "ps.a", 8, 0), 2);
    EXPECT_SEQS(s, 4, 6, 8, 9, 10);
    js_stream_release(s);
}
END_TEST

START_TEST(test_purge_with_seq_and_keep_together_is_einval) {
    js_stream_config c = mk("PSK", NULL);
    js_stream *s = add(&c);
    for (int i = 0; i < 3; i++)
        pub("PSK", "x");
    js_purge_opts o = JS_PURGE_OPTS_INIT;
    o.seq = 2;
    o.keep = 1;
    CHECK_RC(js_stream_purge(s, &o, NULL), JS_EINVAL);
    o.filter = "PSK";
    CHECK_RC(js_stream_purge(s, &o, NULL), JS_EINVAL);
    EXPECT_SEQS(s, 1, 2, 3);
    js_stream_release(s);
}
END_TEST

START_TEST(test_purge_is_denied_by_deny_purge) {
    js_stream_config c = mk("PD", NULL);
    c.deny_purge = 1;
    js_stream *s = add(&c);
    pub("PD", "x");
    pub("PD", "y");
    uint64_t n = 99;
    CHECK_RC(js_stream_purge(s, NULL, &n), JS_EPURGE_DENIED);
    CHECK_ERR(10110, "purge");
    ck_assert_uint_eq(n, 0);
    CHECK_RC(js_stream_purge(s, &(js_purge_opts)JS_PURGE_OPTS_INIT, NULL),
             JS_EPURGE_DENIED);
    EXPECT_SEQS(s, 1, 2);
    js_stream_release(s);
}
END_TEST

/* ---- delete and erase --------------------------------------------------- */

START_TEST(test_delete_interior_message_counts_as_deleted) {
    js_stream_config c = mk("DI", NULL);
    js_stream *s = add(&c);
    for (int i = 0; i < 5; i++)
        pub("DI", "x");
    CHECK_RC(js_msg_delete(s, 3), 0);
    js_stream_state st = state_of(s);
    ck_assert_uint_eq(st.msgs, 4);
    ck_assert_uint_eq(st.first_seq, 1);
    ck_assert_uint_eq(st.last_seq, 5);
    ck_assert_uint_eq(st.num_deleted, 1);
    expect_gone(s, 3);
    CHECK_RC(js_msg_delete(s, 4), 0);
    ck_assert_uint_eq(state_of(s).num_deleted, 2);
    EXPECT_SEQS(s, 1, 2, 5);
    js_stream_release(s);
}
END_TEST

START_TEST(test_delete_first_message_advances_first_seq) {
    js_stream_config c = mk("DF", NULL);
    js_stream *s = add(&c);
    for (int i = 0; i < 5; i++)
        pub("DF", "x");
    CHECK_RC(js_msg_delete(s, 3), 0);
    CHECK_RC(js_msg_delete(s, 1), 0);
    js_stream_state st = state_of(s);
    ck_assert_uint_eq(st.first_seq, 2);
    ck_assert_uint_eq(st.num_deleted, 1);
    CHECK_RC(js_msg_delete(s, 2), 0);
    st = state_of(s);
    ck_assert_uint_eq(st.first_seq, 4); /* past the gap at 3 */
    ck_assert_uint_eq(st.num_deleted, 0);
    ck_assert_uint_eq(st.msgs, 2);
    /* Deleting the last message keeps last_seq. */
    CHECK_RC(js_msg_delete(s, 5), 0);
    check_state(s, 1, 4, 5);
    CHECK_RC(js_msg_delete(s, 4), 0);
    check_state(s, 0, 6, 5);
    ck_assert_uint_eq(pub("DF", "y"), 6);
    js_stream_release(s);
}
END_TEST

START_TEST(test_delete_of_missing_message_is_emsg_not_found) {
    js_stream_config c = mk("DM", NULL);
    js_stream *s = add(&c);
    CHECK_RC(js_msg_delete(s, 1), JS_EMSG_NOT_FOUND);
    pub("DM", "x");
    pub("DM", "y");
    CHECK_RC(js_msg_delete(s, 0), JS_EMSG_NOT_FOUND);
    CHECK_RC(js_msg_delete(s, 3), JS_EMSG_NOT_FOUND);
    CHECK_RC(js_msg_delete(s, 99), JS_EMSG_NOT_FOUND);
    CHECK_RC(js_msg_delete(s, 2), 0);
    CHECK_RC(js_msg_delete(s, 2), JS_EMSG_NOT_FOUND);
    CHECK_RC(js_msg_erase(s, 2), JS_EMSG_NOT_FOUND);
    check_state(s, 1, 1, 2);
    js_stream_release(s);
}
END_TEST

START_TEST(test_delete_and_erase_are_denied_by_deny_delete) {
    js_stream_config c = mk("DD", NULL);
    c.deny_delete = 1;
    js_stream *s = add(&c);
    pub("DD", "x");
    CHECK_RC(js_msg_delete(s, 1), JS_EDELETE_DENIED);
    CHECK_ERR(10057, "delete");
    CHECK_RC(js_msg_erase(s, 1), JS_EDELETE_DENIED);
    EXPECT_SEQS(s, 1);
    js_stream_release(s);
}
END_TEST

static char marker[64], hmarker[64];

static void make_markers(void) {
    static unsigned n;
    snprintf(marker, sizeof marker, "ERASE-ME-%ld-%u-PAYLOAD", (long)getpid(),
             n);
    snprintf(hmarker, sizeof hmarker, "ERASE-ME-%ld-%u-HEADER", (long)getpid(),
             n++);
}

/* Erase seq and check neither marker is left in any stream file while the
 * other messages stay readable. */
static void erase_and_check(js_stream *s, uint64_t seq, const char *streams,
                            const uint64_t *keep, size_t nkeep) {
    CHECK_RC(js_flush(S), 0);
    ck_assert_int_ge(files_containing(streams, marker), 1);
    ck_assert_int_ge(files_containing(streams, hmarker), 1);
    CHECK_RC(js_msg_erase(s, seq), 0);
    ck_assert_int_eq(files_containing(streams, marker), 0);
    ck_assert_int_eq(files_containing(streams, hmarker), 0);
    expect_gone(s, seq);
    expect_seqs(s, keep, nkeep);
}

START_TEST(test_erase_overwrites_the_message_bytes_on_disk) {
    char streams[600];
    js_stream_config c = mk("ER", "er.*");
    js_stream *s = add(&c);
    make_markers();
    snprintf(streams, sizeof streams, "%s/streams", store_path);
    pub("er.a", "keep-one");
    pub_h("er.b", H("X-Secret", hmarker, NULL), marker);
    pub("er.c", "keep-three");
    static const uint64_t keep[] = {1, 3};
    erase_and_check(s, 2, streams, keep, 2);
    js_msg *m = NULL;
    size_t len = 0;
    CHECK_RC(js_msg_get(s, 3, &m), 0);
    ck_assert(memcmp(js_msg_data(m, &len), "keep-three", 10) == 0);
    js_msg_free(m);
    js_stream_release(s);
    reopen();
    ck_assert_int_eq(files_containing(streams, marker), 0);
    s = lookup("ER");
    expect_gone(s, 2);
    EXPECT_SEQS(s, 1, 3);
    ck_assert_uint_eq(state_of(s).num_deleted, 1);
    ck_assert_uint_eq(state_of(s).lost_msgs, 0);
    expect_subject_at(s, 1, "er.a");
    ck_assert_uint_eq(pub("er.d", "next"), 4);
    js_stream_release(s);
}
END_TEST

START_TEST(test_erase_in_an_older_block_overwrites_its_bytes) {
    char streams[600];
    CHECK_RC(js_close(S), 0);
    block_size = 4096;
    open_store();
    js_stream_config c = mk("ERB", "erb.*");
    js_stream *s = add(&c);
    make_markers();
    snprintf(streams, sizeof streams, "%s/streams", store_path);
    pub("erb.a", "first");
    pub_h("erb.b", H("X-Secret", hmarker, NULL), marker);
    for (int i = 0; i < 200; i++)
        pub("erb.c", payload(100));
    CHECK_RC(js_flush(S), 0);
    /* The stream now spans several block files. */
    char dir[1024];
    DIR *d = opendir(streams);
    struct dirent *e;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            snprintf(dir, sizeof dir, "%s/%s", streams, e->d_name);
    closedir(d);
    ck_assert_int_ge(dir_entries(dir), 4);
    js_stream_release(s);
    reopen(); /* the first block is no longer in memory */
    s = lookup("ERB");
    uint64_t keep[201];
    keep[0] = 1;
    for (int i = 0; i < 200; i++)
        keep[i + 1] = (uint64_t)i + 3;
    erase_and_check(s, 2, streams, keep, 201);
    js_stream_release(s);
    reopen();
    ck_assert_int_eq(files_containing(streams, marker), 0);
    s = lookup("ERB");
    expect_gone(s, 2);
    expect_seqs(s, keep, 201);
    js_stream_release(s);
}
END_TEST

START_TEST(test_deletes_survive_reopen) {
    js_stream_config c = mk("DR", NULL);
    js_stream *s = add(&c);
    for (int i = 0; i < 6; i++)
        pub("DR", "x");
    CHECK_RC(js_msg_delete(s, 1), 0);
    CHECK_RC(js_msg_delete(s, 3), 0);
    CHECK_RC(js_msg_delete(s, 6), 0);
    js_stream_state before = state_of(s);
    ck_assert_uint_eq(before.msgs, 3);
    ck_assert_uint_eq(before.first_seq, 2);
    ck_assert_uint_eq(before.last_seq, 6);
    ck_assert_uint_eq(before.num_deleted, 2);
    js_stream_release(s);
    reopen();
    s = lookup("DR");
    js_stream_state after = state_of(s);
    ck_assert_uint_eq(after.msgs, before.msgs);
    ck_assert_uint_eq(after.bytes, before.bytes);
    ck_assert_uint_eq(after.first_seq, before.first_seq);
    ck_assert_uint_eq(after.last_seq, before.last_seq);
    ck_assert_uint_eq(after.num_deleted, before.num_deleted);
    EXPECT_SEQS(s, 2, 4, 5);
    ck_assert_uint_eq(pub("DR", "y"), 7);
    js_stream_release(s);
}
END_TEST

/* A model of which sequences are present, checked against the stream. */
enum { MODEL_N = 300 };
static unsigned char model[MODEL_N + 1];

static void check_model(js_stream *s, uint64_t msg_size) {
    uint64_t want[MODEL_N], n = 0, first = 0;
    for (uint64_t q = 1; q <= MODEL_N; q++)
        if (model[q]) {
            want[n++] = q;
            if (!first)
                first = q;
        }
    expect_seqs(s, want, (size_t)n);
    js_stream_state st = state_of(s);
    ck_assert_uint_eq(st.msgs, n);
    ck_assert_uint_eq(st.bytes, n * msg_size);
    ck_assert_uint_eq(st.last_seq, MODEL_N);
    ck_assert_uint_eq(st.first_seq, n ? first : MODEL_N + 1);
    ck_assert_uint_eq(st.num_deleted, n ? (MODEL_N - first + 1) - n : 0);
}

static int count_blocks(const char *streams) {
    char dir[1024];
    DIR *d = opendir(streams);
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(dir, sizeof dir, "%s/%s", streams, e->d_name);
        DIR *sd = opendir(dir);
        struct dirent *f;
        ck_assert_ptr_nonnull(sd);
        while ((f = readdir(sd)) != NULL) {
            size_t l = strlen(f->d_name);
            if (l > 4 && strcmp(f->d_name + l - 4, ".blk") == 0)
                n++;
        }
        closedir(sd);
    }
    closedir(d);
    return n;
}

START_TEST(test_deletes_and_purges_across_many_blocks_survive_reopen) {
    char streams[600];
    CHECK_RC(js_close(S), 0);
    block_size = 4096;
    open_store();
    snprintf(streams, sizeof streams, "%s/streams", store_path);
    js_stream_config c = mk("MANY", "many.*");
    js_stream *s = add(&c);
    const uint64_t size = 40 + 6 + 100;
    for (uint64_t q = 1; q <= MODEL_N; q++) {
        ck_assert_uint_eq(pub(q % 2 ? "many.a" : "many.b", payload(100)), q);
        model[q] = 1;
    }
    CHECK_RC(js_flush(S), 0);
    int blocks = count_blocks(streams);
    ck_assert_int_ge(blocks, 8);
    /* Interior deletes. */
    const uint64_t dels[] = {5, 50, 100, 201, 202, 299};
    for (size_t i = 0; i < sizeof dels / sizeof dels[0]; i++) {
        CHECK_RC(js_msg_delete(s, dels[i]), 0);
        model[dels[i]] = 0;
    }
    check_model(s, size);
    /* many.a (odd) below 151. */
    uint64_t n = 0;
    for (uint64_t q = 1; q < 151; q += 2)
        if (model[q]) {
            model[q] = 0;
            n++;
        }
    ck_assert_uint_eq(purge(s, "many.a", 151, 0), n);
    check_model(s, size);
    /* Everything below 61. */
    n = 0;
    for (uint64_t q = 1; q < 61; q++)
        if (model[q]) {
            model[q] = 0;
            n++;
        }
    ck_assert_uint_eq(purge(s, NULL, 61, 0), n);
    check_model(s, size);
    js_stream_release(s);
    reopen();
    s = lookup("MANY");
    check_model(s, size);
    /* Keep the newest 40 of many.b. */
    uint64_t nb = 0;
    for (uint64_t q = MODEL_N; q >= 1; q--)
        if (model[q] && q % 2 == 0 && ++nb > 40)
            model[q] = 0;
    ck_assert_uint_eq(purge(s, "many.b", 0, 40), nb - 40);
    check_model(s, size);
    js_stream_release(s);
    reopen();
    s = lookup("MANY");
    check_model(s, size);
    /* Everything; the block files go with the messages. */
    memset(model, 0, sizeof model);
    CHECK_RC(js_stream_purge(s, NULL, NULL), 0);
    check_model(s, size);
    js_stream_release(s);
    reopen();
    s = lookup("MANY");
    check_model(s, size);
    ck_assert_int_le(count_blocks(streams), 2);
    ck_assert_uint_eq(pub("many.a", "x"), MODEL_N + 1);
    js_stream_release(s);
}
END_TEST

/* ---- first_seq ---------------------------------------------------------- */

START_TEST(test_first_seq_starts_a_new_stream_there_and_survives_reopen) {
    js_stream_config c = mk("FS", NULL);
    c.first_seq = 100;
    js_stream *s = add(&c);
    check_state(s, 0, 100, 99);
    js_stream_release(s);
    reopen();
    s = lookup("FS");
    check_state(s, 0, 100, 99);
    struct js_stream_info *inf = NULL;
    CHECK_RC(js_stream_info(s, &inf), 0);
    ck_assert_uint_eq(inf->config->first_seq, 100);
    js_stream_info_free(inf);
    ck_assert_uint_eq(
        pub_h("FS", H("Nats-Expected-Last-Sequence", "99", NULL), "x"), 100);
    js_stream_release(s);
    reopen();
    s = lookup("FS");
    check_state(s, 1, 100, 100);
    ck_assert_uint_eq(pub("FS", "y"), 101);
    /* Emptied by a purge, it does not fall back to first_seq. */
    CHECK_RC(js_stream_purge(s, NULL, NULL), 0);
    check_state(s, 0, 102, 101);
    js_stream_release(s);
    reopen();
    s = lookup("FS");
    check_state(s, 0, 102, 101);
    ck_assert_uint_eq(pub("FS", "z"), 102);
    js_stream_release(s);
}
END_TEST

/* ---- message access ----------------------------------------------------- */

START_TEST(test_msg_get_returns_subject_headers_payload_and_clock_time) {
    js_stream_config c = mk("GET", "get.*");
    js_stream *s = add(&c);
    const char *h = H("Foo", "bar", "X-Two", "2", NULL);
    advance(5 * SEC);
    pub_h("get.one", h, "payload");
    advance(1 * SEC);
    pub("get.two", "p2");
    js_msg *m = NULL;
    size_t len = 0;
    CHECK_RC(js_msg_get(s, 1, &m), 0);
    ck_assert_uint_eq(js_msg_seq(m), 1);
    ck_assert_str_eq(js_msg_subject(m), "get.one");
    ck_assert_int_eq(js_msg_time(m), T0 + 5 * SEC);
    const void *d = js_msg_data(m, &len);
    ck_assert_uint_eq(len, 7);
    ck_assert(memcmp(d, "payload", 7) == 0);
    const void *hb = js_msg_headers(m, &len);
    ck_assert_uint_eq(len, strlen(h));
    ck_assert(memcmp(hb, h, len) == 0);
    js_msg_free(m);
    CHECK_RC(js_msg_get(s, 2, &m), 0);
    ck_assert_int_eq(js_msg_time(m), T0 + 6 * SEC);
    len = 99;
    ck_assert_ptr_null(js_msg_headers(m, &len));
    ck_assert_uint_eq(len, 0);
    js_msg_free(m);
    expect_gone(s, 0);
    expect_gone(s, 3);
    CHECK_RC(js_msg_get(s, 3, &m), JS_EMSG_NOT_FOUND);
    ck_assert_int_eq(js_errcode_nats(), 10037);
    js_stream_state st = state_of(s);
    ck_assert_int_eq(st.first_ts, T0 + 5 * SEC);
    ck_assert_int_eq(st.last_ts, T0 + 6 * SEC);
    js_stream_release(s);
}
END_TEST

START_TEST(test_msg_header_finds_the_first_value_by_exact_name) {
    js_stream_config c = mk("HL", NULL);
    js_stream *s = add(&c);
    pub_h("HL", H("Foo", "bar", "Multi", "one", "Multi", "two", NULL), "x");
    pub("HL", "no headers");
    js_msg *m = NULL;
    const char *v = NULL;
    size_t len = 0;
    CHECK_RC(js_msg_get(s, 1, &m), 0);
    CHECK_RC(js_msg_header(m, "Foo", &v, &len), 0);
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(v, "bar", 3) == 0);
    CHECK_RC(js_msg_header(m, "Multi", &v, &len), 0);
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(v, "one", 3) == 0);
    CHECK_RC(js_msg_header(m, "foo", &v, &len), JS_ENOTFOUND);
    CHECK_RC(js_msg_header(m, "Fo", &v, &len), JS_ENOTFOUND);
    CHECK_RC(js_msg_header(m, "Missing", &v, &len), JS_ENOTFOUND);
    js_msg_free(m);
    CHECK_RC(js_msg_get(s, 2, &m), 0);
    CHECK_RC(js_msg_header(m, "Foo", &v, &len), JS_ENOTFOUND);
    js_msg_free(m);
    js_stream_release(s);
}
END_TEST

START_TEST(test_msg_get_last_by_literal_and_wildcard_subject) {
    js_stream_config c = mk("LAST", "m.>");
    js_stream *s = add(&c);
    pub("m.a", "1");
    pub("m.b", "2");
    pub("m.a", "3");
    pub("m.c.d", "4");
    ck_assert_uint_eq(last_seq_of(s, "m.a"), 3);
    ck_assert_uint_eq(last_seq_of(s, "m.b"), 2);
    ck_assert_uint_eq(last_seq_of(s, "m.*"), 3);
    ck_assert_uint_eq(last_seq_of(s, "m.>"), 4);
    ck_assert_uint_eq(last_seq_of(s, "*.c.*"), 4);
    ck_assert_uint_eq(last_seq_of(s, ">"), 4);
    js_msg *m = NULL;
    CHECK_RC(js_msg_get_last(s, "m.x", &m), JS_EMSG_NOT_FOUND);
    CHECK_RC(js_msg_get_last(s, "n.*", &m), JS_EMSG_NOT_FOUND);
    CHECK_RC(js_msg_get_last(s, "m..a", &m), JS_EINVAL);
    /* After deleting a subject's last message the one before is last. */
    CHECK_RC(js_msg_delete(s, 3), 0);
    ck_assert_uint_eq(last_seq_of(s, "m.a"), 1);
    ck_assert_uint_eq(last_seq_of(s, "m.*"), 2);
    CHECK_RC(js_msg_get_last(s, "m.a", &m), 0);
    ck_assert_str_eq(js_msg_subject(m), "m.a");
    js_msg_free(m);
    js_stream_release(s);
    reopen();
    s = lookup("LAST");
    ck_assert_uint_eq(last_seq_of(s, "m.a"), 1);
    ck_assert_uint_eq(last_seq_of(s, "m.*"), 2);
    ck_assert_uint_eq(last_seq_of(s, "m.>"), 4);
    js_stream_release(s);
}
END_TEST

START_TEST(test_msg_get_next_honours_filter_and_start_sequence) {
    js_stream_config c = mk("NEXT", "n.>");
    js_stream *s = add(&c);
    pub("n.a", "1");
    pub("n.b", "2");
    pub("n.a", "3");
    pub("n.c.d", "4");
    pub("n.b", "5");
    struct {
        const char *filter;
        uint64_t from, want; /* want 0: none */
    } cases[] = {
        {"n.b", 1, 2},   {"n.b", 3, 5},   {"n.b", 6, 0}, {NULL, 2, 2},
        {">", 3, 3},     {"n.*", 4, 5},   {"n.*.d", 1, 4}, {NULL, 0, 1},
        {"n.a", 4, 0},   {"x.*", 1, 0},   {NULL, 6, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        js_msg *m = NULL;
        int rc = js_msg_get_next(s, cases[i].filter, cases[i].from, &m);
        if (cases[i].want) {
            ck_assert_msg(rc == 0, "case %zu: rc %d", i, rc);
            ck_assert_msg(js_msg_seq(m) == cases[i].want,
                          "case %zu: seq %" PRIu64, i, js_msg_seq(m));
            js_msg_free(m);
        } else {
            ck_assert_msg(rc == JS_EMSG_NOT_FOUND, "case %zu: rc %d", i, rc);
        }
    }
    /* Deleted messages are stepped over. */
    CHECK_RC(js_msg_delete(s, 2), 0);
    js_msg *m = NULL;
    CHECK_RC(js_msg_get_next(s, NULL, 2, &m), 0);
    ck_assert_uint_eq(js_msg_seq(m), 3);
    js_msg_free(m);
    CHECK_RC(js_msg_get_next(s, "n.b", 1, &m), 0);
    ck_assert_uint_eq(js_msg_seq(m), 5);
    js_msg_free(m);
    js_stream_release(s);
}
END_TEST

/* ---- batch publish ------------------------------------------------------ */

START_TEST(test_batch_publish_stores_all_and_fills_acks) {
    js_stream_config c = mk("BA", "ba.*");
    js_stream *s = add(&c);
    js_pub_msg msgs[5];
    js_pub_ack acks[5];
    char subj[5][16], data[5][16];
    for (int i = 0; i < 5; i++) {
        snprintf(subj[i], sizeof subj[i], "ba.%c", 'a' + i);
        snprintf(data[i], sizeof data[i], "d%d", i);
        msgs[i] = (js_pub_msg){subj[i], NULL, 0, data[i], strlen(data[i])};
        acks[i] = (js_pub_ack)JS_PUB_ACK_INIT;
    }
    size_t done = 99;
    CHECK_RC(js_publish_batch(S, msgs, 5, acks, &done), 0);
    ck_assert_uint_eq(done, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_uint_eq(acks[i].seq, (uint64_t)i + 1);
        ck_assert_int_eq(acks[i].duplicate, 0);
        ck_assert_str_eq(acks[i].stream, "BA");
        expect_subject_at(s, (uint64_t)i + 1, subj[i]);
    }
    check_state(s, 5, 1, 5);
    /* Expected-last-sequence sees the batch's earlier messages, and a
     * duplicate inside a batch is acked as one. */
    js_pub_msg more[3] = {
        {"ba.a", H("Nats-Msg-Id", "b1", NULL), 0, "x", 1},
        {"ba.b", H("Nats-Expected-Last-Sequence", "6", NULL), 0, "y", 1},
        {"ba.c", H("Nats-Msg-Id", "b1", NULL), 0, "z", 1},
    };
    for (int i = 0; i < 3; i++) {
        more[i].hdr_len = strlen(more[i].hdrs);
        acks[i] = (js_pub_ack)JS_PUB_ACK_INIT;
    }
    CHECK_RC(js_publish_batch(S, more, 3, acks, &done), 0);
    ck_assert_uint_eq(done, 3);
    ck_assert_uint_eq(acks[0].seq, 6);
    ck_assert_uint_eq(acks[1].seq, 7);
    ck_assert_uint_eq(acks[2].seq, 6);
    ck_assert_int_eq(acks[2].duplicate, 1);
    check_state(s, 7, 1, 7);
    /* acks and done may be NULL; n 0 does nothing. */
    CHECK_RC(js_publish_batch(S, msgs, 2, NULL, NULL), 0);
    CHECK_RC(js_publish_batch(S, msgs, 0, NULL, &done), 0);
    ck_assert_uint_eq(done, 0);
    check_state(s, 9, 1, 9);
    js_stream_release(s);
}
END_TEST

START_TEST(test_batch_publish_stops_at_first_failure_keeping_earlier) {
    js_stream_config c = mk("BF", "bf.*");
    js_stream *s = add(&c);
    const char *bad = H("Nats-Expected-Last-Sequence", "99", NULL);
    js_pub_msg msgs[5] = {
        {"bf.a", NULL, 0, "1", 1},
        {"bf.b", NULL, 0, "2", 1},
        {"bf.c", bad, strlen(bad), "3", 1},
        {"bf.d", NULL, 0, "4", 1},
        {"bf.e", NULL, 0, "5", 1},
    };
    js_pub_ack acks[5];
    for (int i = 0; i < 5; i++)
        acks[i] = (js_pub_ack)JS_PUB_ACK_INIT;
    size_t done = 99;
    CHECK_RC(js_publish_batch(S, msgs, 5, acks, &done), JS_EWRONG_LAST_SEQ);
    ck_assert_int_eq(js_errcode_nats(), 10071);
    ck_assert_uint_eq(done, 2);
    ck_assert_uint_eq(acks[0].seq, 1);
    ck_assert_uint_eq(acks[1].seq, 2);
    EXPECT_SEQS(s, 1, 2);
    js_stream_release(s);
    reopen(); /* the kept ones were committed */
    s = lookup("BF");
    EXPECT_SEQS(s, 1, 2);

    /* A subject no stream takes, in the middle. */
    js_pub_msg m2[3] = {
        {"bf.x", NULL, 0, "1", 1},
        {"nowhere", NULL, 0, "2", 1},
        {"bf.y", NULL, 0, "3", 1},
    };
    CHECK_RC(js_publish_batch(S, m2, 3, NULL, &done), JS_ENO_STREAM);
    ck_assert_uint_eq(done, 1);
    /* Failing on the first message stores nothing. */
    m2[0].subject = "bf.*";
    CHECK_RC(js_publish_batch(S, m2, 3, NULL, &done), JS_EINVAL);
    ck_assert_uint_eq(done, 0);
    EXPECT_SEQS(s, 1, 2, 3);
    js_stream_release(s);
}
END_TEST

START_TEST(test_batch_publish_spans_streams) {
    js_stream_config a = mk("BSA", "bsa"), b = mk("BSB", "bsb");
    js_stream *sa = add(&a), *sb = add(&b);
    js_pub_msg msgs[4] = {
        {"bsa", NULL, 0, "1", 1},
        {"bsb", NULL, 0, "2", 1},
        {"bsa", NULL, 0, "3", 1},
        {"bsb", NULL, 0, "4", 1},
    };
    js_pub_ack acks[4];
    for (int i = 0; i < 4; i++)
        acks[i] = (js_pub_ack)JS_PUB_ACK_INIT;
    size_t done = 0;
    CHECK_RC(js_publish_batch(S, msgs, 4, acks, &done), 0);
    ck_assert_uint_eq(done, 4);
    ck_assert_str_eq(acks[0].stream, "BSA");
    ck_assert_str_eq(acks[1].stream, "BSB");
    ck_assert_uint_eq(acks[2].seq, 2);
    ck_assert_uint_eq(acks[3].seq, 2);
    check_state(sa, 2, 1, 2);
    check_state(sb, 2, 1, 2);
    js_stream_release(sa);
    js_stream_release(sb);
}
END_TEST

/* ---- storage=memory ----------------------------------------------------- */

/* The same rules hold for a stream whose messages live in memory. */
START_TEST(test_memory_stream_applies_limits_deletes_and_purges) {
    js_stream_config c = mk("MEMS", "mems.*");
    c.storage = JS_STORAGE_MEMORY;
    c.max_msgs = 4;
    c.max_msgs_per_subject = 3;
    c.allow_rollup_hdrs = 1;
    js_stream *s = add(&c);
    for (int i = 0; i < 4; i++)
        pub("mems.a", "a"); /* 1-4: a keeps 2 3 4 */
    pub("mems.b", "b");     /* 5 */
    pub("mems.c", "c");     /* 6: max_msgs drops 2 */
    EXPECT_SEQS(s, 3, 4, 5, 6);
    CHECK_RC(js_msg_delete(s, 4), 0);
    CHECK_RC(js_msg_erase(s, 5), 0);
    EXPECT_SEQS(s, 3, 6);
    ck_assert_uint_eq(state_of(s).num_deleted, 2);
    ck_assert_uint_eq(last_seq_of(s, "mems.a"), 3);
    ck_assert_uint_eq(
        pub_h("mems.a", H("Nats-Expected-Last-Subject-Sequence", "3", NULL),
              "a"), 7);
    ck_assert_uint_eq(purge(s, "mems.a", 0, 0), 2);
    EXPECT_SEQS(s, 6);
    ck_assert_uint_eq(pub_h("mems.d", H("Nats-Rollup", "all", NULL), "d"), 8);
    EXPECT_SEQS(s, 8);
    CHECK_RC(js_stream_purge(s, NULL, NULL), 0);
    check_state(s, 0, 9, 8);
    js_stream_release(s);
}
END_TEST

/* ---- suite -------------------------------------------------------------- */

static TCase *tcase(Suite *s, const char *name) {
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *stream_suite(void) {
    Suite *s = suite_create("stream");
    TCase *tc = tcase(s, "names");
    tcase_add_test(tc, test_bad_stream_names_are_rejected_and_nothing_is_created);
    tcase_add_test(tc, test_name_of_255_bytes_is_accepted);

    tc = tcase(s, "config");
    tcase_add_test(tc, test_config_defaults_are_nats_defaults);
    tcase_add_test(tc, test_new_empty_stream_reports_first_and_last_seq_zero);
    tcase_add_test(tc, test_duplicate_window_defaults_to_max_age_when_smaller);
    tcase_add_test(tc, test_max_age_below_100ms_is_rejected);
    tcase_add_test(tc, test_duplicate_window_over_max_age_is_rejected);
    tcase_add_test(tc, test_deny_purge_with_rollup_headers_is_rejected);
    tcase_add_test(tc, test_discard_new_per_subject_needs_discard_new_and_subject_limit);
    tcase_add_test(tc, test_sealed_on_create_is_rejected);
    tcase_add_test(tc, test_invalid_enum_and_description_values_are_rejected);
    tcase_add_test(tc, test_invalid_duplicate_and_self_overlapping_subjects_are_rejected);
    tcase_add_test(tc, test_subjects_overlapping_another_stream_are_rejected);
    tcase_add_test(tc, test_identical_readd_is_idempotent_and_different_config_exists);

    tc = tcase(s, "update");
    tcase_add_test(tc, test_update_cannot_change_storage);
    tcase_add_test(tc, test_update_cannot_change_retention_to_or_from_workqueue);
    tcase_add_test(tc, test_update_cannot_clear_deny_flags_or_change_first_seq);
    tcase_add_test(tc, test_sealing_makes_publish_delete_and_purge_fail_sealed);
    tcase_add_test(tc, test_update_lowering_max_msgs_trims_at_once);
    tcase_add_test(tc, test_update_lowering_max_msgs_per_subject_trims_every_subject);
    tcase_add_test(tc, test_update_lowering_max_bytes_trims_oldest);
    tcase_add_test(tc, test_update_lowering_max_age_expires_old_messages_at_once);
    tcase_add_test(tc, test_update_persists_across_reopen);
    tcase_add_test(tc, test_update_rechecks_subjects_and_limits);

    tc = tcase(s, "publish");
    tcase_add_test(tc, test_publish_rejects_wildcard_invalid_and_empty_subjects);
    tcase_add_test(tc, test_publish_with_no_matching_stream_is_eno_stream);
    tcase_add_test(tc, test_pub_ack_names_stream_sequence_and_duplicate_flag);
    tcase_add_test(tc, test_malformed_header_blocks_are_ebad_header);
    tcase_add_test(tc, test_header_block_over_65535_bytes_is_ehdr_size);
    tcase_add_test(tc, test_oversized_and_null_publish_arguments_are_refused);
    tcase_add_test(tc, test_publish_refusals_name_the_header_or_field);
    tcase_add_test(tc, test_max_msg_size_counts_headers_and_payload);

    tc = tcase(s, "expected");
    tcase_add_test(tc, test_expected_stream_header_must_name_the_stream);
    tcase_add_test(tc, test_expected_last_sequence_must_equal_stream_last_seq);
    tcase_add_test(tc, test_expected_last_subject_sequence_checks_the_subject);
    tcase_add_test(tc, test_expected_last_subject_sequence_subject_header_filters);
    tcase_add_test(tc, test_expected_last_subject_sequence_subject_alone_is_10193);
    tcase_add_test(tc, test_expected_last_msg_id_must_equal_last_message_id);
    tcase_add_test(tc, test_expected_headers_are_checked_before_dedupe);

    tc = tcase(s, "dedupe");
    tcase_add_test(tc, test_duplicate_msg_id_returns_original_seq_and_stores_nothing);
    tcase_add_test(tc, test_msg_id_is_accepted_again_after_the_duplicate_window);
    tcase_add_test(tc, test_dedupe_state_survives_reopen);

    tc = tcase(s, "limits");
    tcase_add_test(tc, test_max_msgs_with_discard_old_drops_oldest);
    tcase_add_test(tc, test_bytes_count_40_plus_subject_headers_and_payload);
    tcase_add_test(tc, test_max_bytes_with_discard_old_drops_oldest);
    tcase_add_test(tc, test_max_age_expires_messages_on_reads_and_info);
    tcase_add_test(tc, test_max_age_expires_on_publish_before_discard_new_check);
    tcase_add_test(tc, test_max_age_applies_after_reopen);
    tcase_add_test(tc, test_max_msgs_per_subject_with_discard_old_keeps_newest);
    tcase_add_test(tc, test_discard_new_max_msgs_rejects_with_emax_msgs);
    tcase_add_test(tc, test_discard_new_max_bytes_rejects_with_emax_bytes);
    tcase_add_test(tc, test_discard_new_accepts_message_at_subject_limit_replacing_oldest);
    tcase_add_test(tc, test_discard_new_per_subject_rejects_and_rollup_bypasses_it);

    tc = tcase(s, "rollup");
    tcase_add_test(tc, test_rollup_sub_keeps_only_the_new_message_of_its_subject);
    tcase_add_test(tc, test_rollup_all_keeps_only_the_new_message);
    tcase_add_test(tc, test_rollup_needs_allow_rollup_hdrs);
    tcase_add_test(tc, test_rollup_with_invalid_value_is_rejected);
    tcase_add_test(tc, test_rollup_values_are_case_insensitive);

    tc = tcase(s, "purge");
    tcase_add_test(tc, test_purge_all_keeps_sequence_space_and_survives_reopen);
    tcase_add_test(tc, test_purge_by_literal_subject_removes_only_that_subject);
    tcase_add_test(tc, test_purge_by_wildcard_subject);
    tcase_add_test(tc, test_purge_keep_leaves_the_newest_n);
    tcase_add_test(tc, test_purge_keep_with_filter_keeps_newest_of_all_matching);
    tcase_add_test(tc, test_purge_up_to_sequence_removes_everything_below_it);
    tcase_add_test(tc, test_purge_with_seq_and_keep_together_is_einval);
    tcase_add_test(tc, test_purge_is_denied_by_deny_purge);

    tc = tcase(s, "delete");
    tcase_add_test(tc, test_delete_interior_message_counts_as_deleted);
    tcase_add_test(tc, test_delete_first_message_advances_first_seq);
    tcase_add_test(tc, test_delete_of_missing_message_is_emsg_not_found);
    tcase_add_test(tc, test_delete_and_erase_are_denied_by_deny_delete);
    tcase_add_test(tc, test_erase_overwrites_the_message_bytes_on_disk);
    tcase_add_test(tc, test_erase_in_an_older_block_overwrites_its_bytes);
    tcase_add_test(tc, test_deletes_survive_reopen);
    tcase_add_test(tc, test_deletes_and_purges_across_many_blocks_survive_reopen);

    tc = tcase(s, "first_seq");
    tcase_add_test(tc, test_first_seq_starts_a_new_stream_there_and_survives_reopen);

    tc = tcase(s, "access");
    tcase_add_test(tc, test_msg_get_returns_subject_headers_payload_and_clock_time);
    tcase_add_test(tc, test_msg_header_finds_the_first_value_by_exact_name);
    tcase_add_test(tc, test_msg_get_last_by_literal_and_wildcard_subject);
    tcase_add_test(tc, test_msg_get_next_honours_filter_and_start_sequence);

    tc = tcase(s, "memory");
    tcase_add_test(tc, test_memory_stream_applies_limits_deletes_and_purges);

    tc = tcase(s, "batch");
    tcase_add_test(tc, test_batch_publish_stores_all_and_fills_acks);
    tcase_add_test(tc, test_batch_publish_stops_at_first_failure_keeping_earlier);
    tcase_add_test(tc, test_batch_publish_spans_streams);
    return s;
}

int main(void) {
    base_dir = tu_mkdtemp("test_stream");
    int failed = tu_run_suite(stream_suite());
    tu_rm_rf(base_dir);
    free(base_dir);
    return failed != 0;
}
