/*
 * consumer_config.c - consumer configs: copying the caller's versioned
 * struct, NATS defaults, validation in NATS's order, update rules,
 * comparison, filters and the work-queue rule between consumers.
 * The file image of a durable config is in consumer_config_file.c.
 *
 * NATS reference: nats-server server/consumer.go, setConsumerConfigDefaults
 * (defaults), checkConsumerCfg (single-consumer rules, in the order kept
 * here), addConsumerWithAssignment (work-queue rules, name length) and
 * checkNewConsumerConfig (update rules).
 *
 * Where this file differs from NATS on purpose:
 * - A negative max_waiting, max_batch, max_expires, max_bytes or
 *   inactive_threshold is rejected, not silently rewritten to 0 (NATS
 *   rewrites outside pedantic mode). A negative is a caller's bug; the
 *   NATS check that would catch it (10087, 10114, 10115) is reported, or
 *   10052 where NATS has none.
 * - max_batch, max_expires and max_bytes are pull settings: a push
 *   consumer that sets one is refused (10052); NATS ignores them. The same
 *   for deliver_group on a pull consumer.
 * - Names are checked first, all at once: path separators 10127 (NATS's
 *   API checks these first), '.', '*', '>' 10103, longer than 255 bytes
 *   10102, whitespace or control bytes 10052.
 * - sample_freq is digits with an optional '%', 0..100; NATS takes any
 *   Atoi() >= 0, but a share above 100% means nothing.
 * - An invalid deliver_policy is 10094 (NATS fails to parse the JSON).
 * - A bad filter subject is 10052, as NATS reports it
 *   (JSStreamInvalidConfigError(ErrBadSubject)); 10093 is a pre-2.10 rule
 *   NATS no longer applies.
 * - filter_subjects with one entry is kept as given: NATS's server does
 *   not fold it into filter_subject (only its stream-sourcing client does),
 *   so {filter_subject "a"} and {filter_subjects ["a"]} are different
 *   configs, as they are for NATS's reflect.DeepEqual.
 * - Metadata keys are unique (a Go map) and kept sorted by key, so equal
 *   maps compare equal; a NULL value is "".
 */
#include <inttypes.h>
#include <stdlib.h>

#include "consumer_config.h"
#include "consumer_config_int.h"
#include "subject.h"
#include "util.h"

#define DEFAULT_ACK_WAIT (30 * JSI_NS_PER_SEC)      /* JsAckWaitDefault */
#define DEFAULT_MAX_WAITING 512                   /* JSWaitQueueDefaultMax */
#define DEFAULT_MAX_ACK_PENDING 1000              /* JsDefaultMaxAckPending */
#define DEFAULT_INACTIVE (5 * JSI_NS_PER_SEC)     /* JsDeleteWaitTimeDefault */
#define MAX_METADATA_LEN (128 * 1024)             /* JSMaxMetadataLen */

/* NATS API error codes (server/errors.json). */
enum {
    E_CREATE = 10012,
    E_INVALID_CONFIG = 10052,
    E_DELIVER_WILDCARDS = 10079,
    E_PUSH_MAX_WAITING = 10080,
    E_DELIVER_CYCLE = 10081,
    E_ACK_NONE_MAX_PENDING = 10082,
    E_PULL_WQ_ACK = 10084,
    E_PULL_RATE = 10086,
    E_MAX_WAITING_NEG = 10087,
    E_POLICY = 10094,
    E_SAMPLING = 10095,
    E_WQ_EXPLICIT = 10098,
    E_WQ_UNFILTERED = 10099,
    E_WQ_NOT_UNIQUE = 10100,
    E_WQ_DELIVER_ALL = 10101,
    E_NAME_LONG = 10102,
    E_NAME_CHARS = 10103,
    E_DESC_LONG = 10107,
    E_DELIVER_INVALID = 10112,
    E_BATCH_NEG = 10114,
    E_EXPIRES_SMALL = 10115,
    E_BACKOFF_MAX_DELIVER = 10116,
    E_NAME_PATH = 10127,
    E_NAME_MISMATCH = 10132,
    E_METADATA_LEN = 10135,
    E_FILTER_BOTH = 10136,
    E_FILTER_OVERLAP = 10138,
    E_FILTER_EMPTY = 10139,
    E_ACK_POLICY = 10181,
    E_REPLAY_POLICY = 10182,
    E_ACK_WAIT_NEG = 10183,
    E_BACKOFF_NEG = 10184,
};

/* ---- the scalar and string fields, for copy, compare and the codec ----- */

#define F(tag, member, kind) {tag, offsetof(js_consumer_config, member), kind}
const jsi_ccfg_field jsi_ccfg_fields[] = {
    F(JSI_CCFG_T_NAME, name, JSI_CCFG_K_STR),
    F(JSI_CCFG_T_DURABLE, durable_name, JSI_CCFG_K_STR),
    F(JSI_CCFG_T_DESC, description, JSI_CCFG_K_STR),
    F(JSI_CCFG_T_DELIVER_POLICY, deliver_policy, JSI_CCFG_K_INT),
    F(JSI_CCFG_T_OPT_START_SEQ, opt_start_seq, JSI_CCFG_K_U64),
    F(JSI_CCFG_T_OPT_START_TIME, opt_start_time, JSI_CCFG_K_I64),
    F(JSI_CCFG_T_ACK_POLICY, ack_policy, JSI_CCFG_K_INT),
    F(JSI_CCFG_T_ACK_WAIT, ack_wait, JSI_CCFG_K_I64),
    F(JSI_CCFG_T_MAX_DELIVER, max_deliver, JSI_CCFG_K_I64),
    F(JSI_CCFG_T_FILTER, filter_subject, JSI_CCFG_K_STR),
    F(JSI_CCFG_T_REPLAY_POLICY, replay_policy, JSI_CCFG_K_INT),
    F(JSI_CCFG_T_RATE_LIMIT, rate_limit_bps, JSI_CCFG_K_U64),
    F(JSI_CCFG_T_SAMPLE_FREQ, sample_freq, JSI_CCFG_K_STR),
    F(JSI_CCFG_T_MAX_WAITING, max_waiting, JSI_CCFG_K_I64),
    F(JSI_CCFG_T_MAX_ACK_PENDING, max_ack_pending, JSI_CCFG_K_I64),
    F(JSI_CCFG_T_HEADERS_ONLY, headers_only, JSI_CCFG_K_INT),
    F(JSI_CCFG_T_MAX_BATCH, max_batch, JSI_CCFG_K_I64),
    F(JSI_CCFG_T_MAX_EXPIRES, max_expires, JSI_CCFG_K_I64),
    F(JSI_CCFG_T_MAX_BYTES, max_bytes, JSI_CCFG_K_I64),
    F(JSI_CCFG_T_DELIVER_SUBJECT, deliver_subject, JSI_CCFG_K_STR),
    F(JSI_CCFG_T_DELIVER_GROUP, deliver_group, JSI_CCFG_K_STR),
    F(JSI_CCFG_T_INACTIVE, inactive_threshold, JSI_CCFG_K_I64),
    F(JSI_CCFG_T_MEM_STORAGE, mem_storage, JSI_CCFG_K_INT),
};
#undef F
#define NUM_FIELDS (sizeof jsi_ccfg_fields / sizeof jsi_ccfg_fields[0])
const size_t jsi_ccfg_num_fields = NUM_FIELDS;
/* own_strings() keeps a JSI_CCFG_MAX_FIELDS array (C99 static assert). */
typedef char jsi_ccfg_fields_fit[NUM_FIELDS <= JSI_CCFG_MAX_FIELDS ? 1 : -1];

const char *jsi_ccfg_str(const js_consumer_config *c, const jsi_ccfg_field *f) {
    const char *s;
    memcpy(&s, (const char *)c + f->off, sizeof s);
    return s;
}

void jsi_ccfg_set_str(js_consumer_config *c, const jsi_ccfg_field *f,
                      const char *s) {
    memcpy((char *)c + f->off, &s, sizeof s);
}

int64_t jsi_ccfg_num(const js_consumer_config *c, const jsi_ccfg_field *f) {
    const char *p = (const char *)c + f->off;
    if (f->kind == JSI_CCFG_K_INT) {
        int v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    int64_t v; /* uint64_t fields travel as their bit pattern */
    memcpy(&v, p, sizeof v);
    return v;
}

void jsi_ccfg_set_num(js_consumer_config *c, const jsi_ccfg_field *f,
                      int64_t v) {
    char *p = (char *)c + f->off;
    if (f->kind == JSI_CCFG_K_INT) {
        int i = (int)v;
        memcpy(p, &i, sizeof i);
    } else {
        memcpy(p, &v, sizeof v);
    }
}

/* ---- ownership --------------------------------------------------------- */

static void free_strv(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++)
        jsi_free(v[i]);
    jsi_free(v);
}

void jsi_ccfg_free(jsi_ccfg *c) {
    if (!c)
        return;
    for (size_t i = 0; i < jsi_ccfg_num_fields; i++)
        if (jsi_ccfg_fields[i].kind == JSI_CCFG_K_STR)
            jsi_free((char *)jsi_ccfg_str(&c->c, &jsi_ccfg_fields[i]));
    jsi_free(c->backoff);
    free_strv(c->filters, c->c.num_filter_subjects);
    free_strv(c->metadata, 2 * c->c.num_metadata);
    memset(c, 0, sizeof *c);
    c->sample_pct = -1;
}

/* Replace each string of c->c (pointing at someone else's memory) by an
 * owned copy; "" becomes NULL, as NATS treats an empty string as unset.
 * Every field is cleared first, so a failure leaves only owned strings. */
static int own_strings(js_consumer_config *c) {
    const char *src[JSI_CCFG_MAX_FIELDS];
    for (size_t i = 0; i < jsi_ccfg_num_fields; i++) {
        const jsi_ccfg_field *f = &jsi_ccfg_fields[i];
        src[i] = f->kind == JSI_CCFG_K_STR ? jsi_ccfg_str(c, f) : NULL;
        if (f->kind == JSI_CCFG_K_STR)
            jsi_ccfg_set_str(c, f, NULL);
    }
    for (size_t i = 0; i < jsi_ccfg_num_fields; i++) {
        char *d;
        if (!src[i] || !*src[i])
            continue;
        if (!(d = jsi_strdup(src[i])))
            return JS_ENOMEM;
        jsi_ccfg_set_str(c, &jsi_ccfg_fields[i], d);
    }
    return 0;
}

static int own_backoff(jsi_ccfg *cfg) {
    js_consumer_config *c = &cfg->c;
    const int64_t *src = c->backoff;
    size_t n = c->num_backoff;
    c->backoff = NULL;
    c->num_backoff = 0;
    if (n && !src)
        return JSI_ERR(JS_EINVAL, E_INVALID_CONFIG,
                       "backoff: NULL with num_backoff %zu", n);
    if (n > SIZE_MAX / sizeof *src)
        return JSI_ERR(JS_EINVAL, E_INVALID_CONFIG,
                       "backoff: num_backoff %zu is too large", n);
    if (!n)
        return 0;
    if (!(cfg->backoff = jsi_malloc(n * sizeof *src)))
        return JS_ENOMEM;
    memcpy(cfg->backoff, src, n * sizeof *src);
    c->backoff = cfg->backoff;
    c->num_backoff = n;
    return 0;
}

/* An owned copy of n strings, a NULL entry copied as "" (the checks then
 * report it where NATS would). *dst gets the array as soon as it exists,
 * so that jsi_ccfg_free() releases a partial copy. */
static int own_strv(char ***dst, size_t *count, const char *const *src,
                    size_t n, const char *what) {
    *dst = NULL;
    *count = 0;
    if (n && !src)
        return JSI_ERR(JS_EINVAL, E_INVALID_CONFIG, "%s: NULL with %zu "
                       "entries", what, n);
    if (!n)
        return 0;
    if (!(*dst = jsi_calloc(n, sizeof **dst)))
        return JS_ENOMEM;
    *count = n;
    for (size_t i = 0; i < n; i++)
        if (!((*dst)[i] = jsi_strdup(src[i] ? src[i] : "")))
            return JS_ENOMEM;
    return 0;
}

static int own_filters(jsi_ccfg *cfg) {
    js_consumer_config *c = &cfg->c;
    const char *const *src = c->filter_subjects;
    size_t n = c->num_filter_subjects;
    c->filter_subjects = NULL;
    int rc = own_strv(&cfg->filters, &c->num_filter_subjects, src, n,
                      "filter_subjects");
    c->filter_subjects = (const char *const *)cfg->filters;
    return rc;
}

/* Metadata keys must not be NULL; a NULL value is "". */
static int own_metadata(jsi_ccfg *cfg) {
    js_consumer_config *c = &cfg->c;
    const char *const *src = c->metadata;
    size_t pairs = c->num_metadata, n2 = 0;
    c->metadata = NULL;
    c->num_metadata = 0;
    if (pairs > SIZE_MAX / 2)
        return JSI_ERR(JS_EINVAL, E_INVALID_CONFIG,
                       "metadata: num_metadata %zu is too large", pairs);
    for (size_t i = 0; src && i < pairs; i++)
        if (!src[2 * i])
            return JSI_ERR(JS_EINVAL, E_INVALID_CONFIG,
                           "metadata: key of pair %zu is NULL", i);
    int rc = own_strv(&cfg->metadata, &n2, src, 2 * pairs, "metadata");
    c->num_metadata = n2 / 2;
    c->metadata = (const char *const *)cfg->metadata;
    return rc;
}

/* Deep-copy everything c->c points at. jsi_ccfg_free() releases only the
 * owned arrays (cfg->backoff, ...), so pointers a failure leaves behind in
 * c->c are never freed. */
static int own_all(jsi_ccfg *cfg) {
    cfg->backoff = NULL;
    cfg->filters = NULL;
    cfg->metadata = NULL;
    int rc = own_strings(&cfg->c);
    if (rc == 0)
        rc = own_backoff(cfg);
    if (rc == 0)
        rc = own_filters(cfg);
    if (rc == 0)
        rc = own_metadata(cfg);
    return rc;
}

/* Bytes of js_consumer_config per version (the struct only grows). */
static size_t cfg_size(unsigned version) {
    switch (version) {
    case 1:
        return sizeof(js_consumer_config);
    default:
        return 0;
    }
}

int jsi_ccfg_import(const js_consumer_config *in, jsi_ccfg *out) {
    memset(out, 0, sizeof *out);
    out->sample_pct = -1;
    if (!in)
        return JSI_ERR(JS_EINVAL, 0, "config: NULL");
    size_t n = cfg_size(in->version);
    if (!n)
        return JSI_ERR(JS_EINVAL, 0,
                       "config: version %u unknown (this library: 1..%u)",
                       in->version, JS_CONSUMER_CONFIG_VERSION);
    memcpy(&out->c, in, n);
    int rc = own_all(out);
    if (rc) {
        jsi_ccfg_free(out);
        return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "config") : rc;
    }
    return 0;
}

int jsi_ccfg_copy(const jsi_ccfg *in, jsi_ccfg *out) {
    *out = *in;
    int rc = own_all(out);
    if (rc) {
        jsi_ccfg_free(out);
        return JSI_ERR(rc, 0, "config");
    }
    return 0;
}

/* ---- defaults (setConsumerConfigDefaults) ------------------------------ */

static int is_push(const js_consumer_config *c) {
    return c->deliver_subject != NULL;
}

static void apply_defaults(js_consumer_config *c) {
    if (c->max_deliver == 0 || c->max_deliver < -1)
        c->max_deliver = -1;
    if (c->max_ack_pending < -1)
        c->max_ack_pending = -1;
    if (!is_push(c) && c->max_waiting == 0)
        c->max_waiting = DEFAULT_MAX_WAITING;
    if (c->ack_wait == 0 &&
        (c->ack_policy == JS_ACK_EXPLICIT || c->ack_policy == JS_ACK_ALL))
        c->ack_wait = DEFAULT_ACK_WAIT;
    if (c->num_backoff > 0)
        c->ack_wait = c->backoff[0];
    if (c->max_ack_pending == 0 && c->ack_policy != JS_ACK_NONE)
        c->max_ack_pending = DEFAULT_MAX_ACK_PENDING;
}

/* ---- checks (checkConsumerCfg order) ----------------------------------- */

static int check_name(const char *field, const char *v) {
    const char *why = NULL;
    if (!v || jsi_name_valid(v, &why))
        return 0;
    if (strpbrk(v, "/\\"))
        return JSI_ERR(JS_EINVAL, E_NAME_PATH,
                       "%s: consumer name can not contain path separators",
                       field);
    if (strpbrk(v, ".*>"))
        return JSI_ERR(JS_EINVAL, E_NAME_CHARS,
                       "%s: consumer name can not contain '.', '*', '>'",
                       field);
    if (strlen(v) > JS_MAX_NAME_LEN)
        return JSI_ERR(JS_EINVAL, E_NAME_LONG,
                       "%s: consumer name is too long, maximum allowed is %d",
                       field, JS_MAX_NAME_LEN);
    return JSI_ERR(JS_EINVAL, E_INVALID_CONFIG, "%s: consumer name %s",
                   field, why);
}

static int check_names(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    int rc = check_name("name", cfg->c.name);
    return rc ? rc : check_name("durable_name", cfg->c.durable_name);
}

static int check_policies(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    const js_consumer_config *c = &cfg->c;
    if (c->ack_policy < JS_ACK_EXPLICIT || c->ack_policy > JS_ACK_ALL)
        return JSI_ERR(JS_EINVAL, E_ACK_POLICY,
                       "ack_policy: consumer ack policy invalid (%d)",
                       c->ack_policy);
    if (c->replay_policy != JS_REPLAY_INSTANT &&
        c->replay_policy != JS_REPLAY_ORIGINAL)
        return JSI_ERR(JS_EINVAL, E_REPLAY_POLICY,
                       "replay_policy: consumer replay policy invalid (%d)",
                       c->replay_policy);
    return 0;
}

static int check_acks(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    const js_consumer_config *c = &cfg->c;
    for (size_t i = 0; i < c->num_backoff; i++)
        if (c->backoff[i] < 0)
            return JSI_ERR(JS_EINVAL, E_BACKOFF_NEG,
                           "backoff[%zu]: consumer backoff needs to be "
                           "positive", i);
    if (c->ack_wait < 0)
        return JSI_ERR(JS_EINVAL, E_ACK_WAIT_NEG,
                       "ack_wait: consumer ack wait needs to be positive");
    /* NATS's message says ">", but equal lengths are accepted. */
    if (c->num_backoff > 0 && c->max_deliver != -1 &&
        c->num_backoff > (uint64_t)c->max_deliver)
        return JSI_ERR(JS_EINVAL, E_BACKOFF_MAX_DELIVER,
                       "max_deliver: max deliver is required to be > length "
                       "of backoff values (%" PRId64 " < %zu)",
                       c->max_deliver, c->num_backoff);
    return 0;
}

static int check_description(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    const char *d = cfg->c.description;
    if (d && strlen(d) > JS_MAX_DESCRIPTION_LEN)
        return JSI_ERR(JS_EINVAL, E_DESC_LONG,
                       "description: consumer description is too long, "
                       "maximum allowed is %d", JS_MAX_DESCRIPTION_LEN);
    return 0;
}

/* The deliver subject is literal, so "collides" is "matches". */
static const char *delivery_cycle(const char *d, const jsi_ccfg_stream *s) {
    for (size_t i = 0; s && i < s->num_subjects; i++)
        if (s->subjects[i] && jsi_subject_match(s->subjects[i],
                                                strlen(s->subjects[i]), d,
                                                strlen(d)))
            return s->subjects[i];
    return NULL;
}

static int pull_only(const char *field) {
    return JSI_ERR(JS_EINVAL, E_INVALID_CONFIG,
                   "%s: only for pull consumers (deliver_subject is set)",
                   field);
}

static int check_push(const js_consumer_config *c, const jsi_ccfg_stream *s) {
    const char *d = c->deliver_subject, *cycle;
    if (jsi_subject_has_wildcard(d, strlen(d)))
        return JSI_ERR(JS_EINVAL, E_DELIVER_WILDCARDS,
                       "deliver_subject: consumer deliver subject has "
                       "wildcards");
    if (!jsi_subject_valid(d, strlen(d), 0))
        return JSI_ERR(JS_EINVAL, E_DELIVER_INVALID,
                       "deliver_subject: invalid push consumer deliver "
                       "subject");
    if ((cycle = delivery_cycle(d, s)) != NULL)
        return JSI_ERR(JS_EINVAL, E_DELIVER_CYCLE,
                       "deliver_subject: consumer deliver subject forms a "
                       "cycle (stream subject \"%s\")", cycle);
    if (c->max_waiting != 0)
        return JSI_ERR(JS_EINVAL, E_PUSH_MAX_WAITING,
                       "max_waiting: consumer in push mode can not set max "
                       "waiting");
    if (c->max_ack_pending > 0 && c->ack_policy == JS_ACK_NONE)
        return JSI_ERR(JS_EINVAL, E_ACK_NONE_MAX_PENDING,
                       "max_ack_pending: consumer requires ack policy for "
                       "max ack pending");
    if (c->max_batch != 0)
        return pull_only("max_batch");
    if (c->max_expires != 0)
        return pull_only("max_expires");
    return c->max_bytes != 0 ? pull_only("max_bytes") : 0;
}

static int check_pull(const js_consumer_config *c, const jsi_ccfg_stream *s) {
    if (c->ack_policy == JS_ACK_NONE && s &&
        s->retention == JS_RETENTION_WORKQUEUE)
        return JSI_ERR(JS_EINVAL, E_PULL_WQ_ACK,
                       "ack_policy: consumer in pull mode requires explicit "
                       "ack policy on workqueue stream");
    if (c->rate_limit_bps > 0)
        return JSI_ERR(JS_EINVAL, E_PULL_RATE,
                       "rate_limit_bps: consumer in pull mode can not have "
                       "rate limit set");
    if (c->max_waiting < 0)
        return JSI_ERR(JS_EINVAL, E_MAX_WAITING_NEG,
                       "max_waiting: consumer max waiting needs to be "
                       "positive");
    if (c->max_batch < 0)
        return JSI_ERR(JS_EINVAL, E_BATCH_NEG,
                       "max_batch: consumer max request batch needs to be "
                       "> 0");
    if (c->max_expires != 0 && c->max_expires < JSI_NS_PER_MS)
        return JSI_ERR(JS_EINVAL, E_EXPIRES_SMALL,
                       "max_expires: consumer max request expires needs to "
                       "be >= 1ms");
    if (c->max_bytes < 0)
        return JSI_ERR(JS_EINVAL, E_INVALID_CONFIG,
                       "max_bytes: can not be negative");
    if (c->deliver_group)
        return JSI_ERR(JS_EINVAL, E_INVALID_CONFIG,
                       "deliver_group: needs deliver_subject (a push "
                       "consumer)");
    return 0;
}

static int check_mode(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    return is_push(&cfg->c) ? check_push(&cfg->c, s) : check_pull(&cfg->c, s);
}

static int check_filter_list(const char *field, const char *const *f,
                             size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!jsi_subject_valid(f[i], strlen(f[i]), 1))
            return JSI_ERR(JS_EINVAL, E_INVALID_CONFIG,
                           "%s: invalid subject \"%s\"", field, f[i]);
        for (size_t k = 0; k < n; k++)
            if (k != i && jsi_subject_subset(f[i], f[k]))
                return JSI_ERR(JS_EINVAL, E_FILTER_OVERLAP,
                               "%s: consumer subject filters cannot overlap "
                               "(\"%s\" is within \"%s\")", field, f[i],
                               f[k]);
    }
    return 0;
}

static int check_filters(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    const js_consumer_config *c = &cfg->c;
    if (c->filter_subject && c->num_filter_subjects > 0)
        return JSI_ERR(JS_EINVAL, E_FILTER_BOTH,
                       "filter_subjects: consumer cannot have both "
                       "filter_subject and filter_subjects specified");
    if (c->filter_subject)
        return check_filter_list("filter_subject", &c->filter_subject, 1);
    for (size_t i = 0; i < c->num_filter_subjects; i++)
        if (!*c->filter_subjects[i])
            return JSI_ERR(JS_EINVAL, E_FILTER_EMPTY,
                           "filter_subjects[%zu]: consumer filter in "
                           "filter_subjects cannot be empty", i);
    return check_filter_list("filter_subjects", c->filter_subjects,
                             c->num_filter_subjects);
}

static const char *const deliver_names[] = {
    "all", "last", "new", "by start sequence", "by start time",
    "last per subject",
};

static int start_not_set(int dp, const char *field, const char *what) {
    return JSI_ERR(JS_EINVAL, E_POLICY,
                   "%s: consumer delivery policy is deliver %s, but "
                   "optional %s is not set", field, deliver_names[dp], what);
}

static int start_also_set(int dp, const char *field, const char *what) {
    return JSI_ERR(JS_EINVAL, E_POLICY,
                   "%s: consumer delivery policy is deliver %s, but "
                   "optional start %s is also set", field, deliver_names[dp],
                   what);
}

/* opt_start_time 0 is "unset" (NATS: a nil *time.Time). */
static int check_start(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    const js_consumer_config *c = &cfg->c;
    int dp = c->deliver_policy;
    if (dp < JS_DELIVER_ALL || dp > JS_DELIVER_LAST_PER_SUBJECT)
        return JSI_ERR(JS_EINVAL, E_POLICY,
                       "deliver_policy: invalid value %d", dp);
    int want_seq = dp == JS_DELIVER_BY_START_SEQUENCE;
    int want_time = dp == JS_DELIVER_BY_START_TIME;
    if (want_seq && c->opt_start_seq == 0)
        return start_not_set(dp, "opt_start_seq", "start sequence");
    if (want_time && c->opt_start_time == 0)
        return start_not_set(dp, "opt_start_time", "start time");
    if (!want_seq && c->opt_start_seq != 0)
        return start_also_set(dp, "opt_start_seq",
                              want_time ? "start sequence" : "sequence");
    if (!want_time && c->opt_start_time != 0)
        return start_also_set(dp, "opt_start_time", "time");
    if (dp == JS_DELIVER_LAST_PER_SUBJECT && !jsi_ccfg_filters(cfg, NULL))
        return start_not_set(dp, "filter_subject", "filter subject");
    return 0;
}

/* "N" or "N%", N decimal digits, 0..100: the percentage, else -1. */
static int parse_sample(const char *s) {
    int v = 0;
    size_t i = 0;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    for (; s[i] >= '0' && s[i] <= '9'; i++)
        if ((v = v * 10 + (s[i] - '0')) > 100)
            return -1;
    if (s[i] == '%')
        i++;
    return s[i] ? -1 : v;
}

static int check_sampling(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    const char *f = cfg->c.sample_freq;
    if (f && parse_sample(f) < 0)
        return JSI_ERR(JS_EINVAL, E_SAMPLING,
                       "sample_freq: failed to parse consumer sampling "
                       "configuration: \"%s\" is not N or N%% with N in "
                       "0..100", f);
    return 0;
}

static int check_identity(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    const js_consumer_config *c = &cfg->c;
    if (c->name && c->durable_name && strcmp(c->name, c->durable_name) != 0)
        return JSI_ERR(JS_EINVAL, E_NAME_MISMATCH,
                       "durable_name: consumer durable and name have to be "
                       "equal if both are provided");
    return 0;
}

typedef struct md_pair {
    char *k, *v;
} md_pair;

static int md_cmp(const void *a, const void *b) {
    return strcmp(((const md_pair *)a)->k, ((const md_pair *)b)->k);
}

/* Sort the pairs by key (a Go map has no order; sorted, equal maps compare
 * equal and encode alike). */
static int sort_metadata(jsi_ccfg *cfg) {
    size_t n = cfg->c.num_metadata;
    if (n < 2)
        return 0;
    md_pair *p = jsi_calloc(n, sizeof *p);
    if (!p)
        return JSI_ERR(JS_ENOMEM, 0, "metadata");
    for (size_t i = 0; i < n; i++)
        p[i] = (md_pair){cfg->metadata[2 * i], cfg->metadata[2 * i + 1]};
    qsort(p, n, sizeof *p, md_cmp);
    for (size_t i = 0; i < n; i++) {
        cfg->metadata[2 * i] = p[i].k;
        cfg->metadata[2 * i + 1] = p[i].v;
    }
    jsi_free(p);
    return 0;
}

static int check_metadata(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    size_t total = 0, n = cfg->c.num_metadata;
    for (size_t i = 0; i < 2 * n; i++)
        total += strlen(cfg->metadata[i]);
    if (total > MAX_METADATA_LEN)
        return JSI_ERR(JS_EINVAL, E_METADATA_LEN,
                       "metadata: consumer metadata exceeds maximum size of "
                       "%dKB", MAX_METADATA_LEN / 1024);
    int rc = sort_metadata(cfg);
    for (size_t i = 1; rc == 0 && i < n; i++)
        if (strcmp(cfg->metadata[2 * i], cfg->metadata[2 * i - 2]) == 0)
            rc = JSI_ERR(JS_EINVAL, E_INVALID_CONFIG,
                         "metadata: duplicate key \"%s\"",
                         cfg->metadata[2 * i]);
    return rc;
}

static int check_inactive(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    if (cfg->c.inactive_threshold < 0)
        return JSI_ERR(JS_EINVAL, E_INVALID_CONFIG,
                       "inactive_threshold: can not be negative");
    return 0;
}

/* addConsumerWithAssignment, after checkConsumerCfg. */
static int check_workqueue(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    const js_consumer_config *c = &cfg->c;
    if (!s || s->retention != JS_RETENTION_WORKQUEUE)
        return 0;
    if (c->ack_policy != JS_ACK_EXPLICIT)
        return JSI_ERR(JS_EINVAL, E_WQ_EXPLICIT,
                       "ack_policy: workqueue stream requires explicit ack");
    if (c->deliver_policy != JS_DELIVER_ALL)
        return JSI_ERR(JS_EINVAL, E_WQ_DELIVER_ALL,
                       "deliver_policy: consumer must be deliver all on "
                       "workqueue stream");
    return 0;
}

/* What NATS sets once the checks pass: the name (the durable's name, or
 * later the runtime's for an ephemeral) and an ephemeral's inactivity
 * limit (updateInactiveThreshold stamps 5 s into the config). */
static int finish(jsi_ccfg *cfg) {
    js_consumer_config *c = &cfg->c;
    if (!c->name && c->durable_name &&
        !(c->name = jsi_strdup(c->durable_name)))
        return JSI_ERR(JS_ENOMEM, 0, "name");
    if (!c->durable_name && c->inactive_threshold == 0)
        c->inactive_threshold = DEFAULT_INACTIVE;
    c->headers_only = !!c->headers_only;
    c->mem_storage = !!c->mem_storage;
    cfg->sample_pct = c->sample_freq ? parse_sample(c->sample_freq) : -1;
    c->version = JS_CONSUMER_CONFIG_VERSION;
    return 0;
}

typedef int (*check_fn)(jsi_ccfg *, const jsi_ccfg_stream *);

int jsi_ccfg_normalize(jsi_ccfg *cfg, const jsi_ccfg_stream *s) {
    static const check_fn checks[] = {
        check_names, check_policies, check_acks, check_description,
        check_mode, check_filters,
        check_start, check_sampling, check_identity, check_metadata,
        check_inactive, check_workqueue,
    };
    apply_defaults(&cfg->c);
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        int rc = checks[i](cfg, s);
        if (rc)
            return rc;
    }
    return finish(cfg);
}

int jsi_ccfg_set_name(jsi_ccfg *cfg, const char *name) {
    if (!name || !*name)
        return JSI_ERR(JS_EINVAL, E_INVALID_CONFIG, "name: empty");
    int rc = check_name("name", name);
    if (rc)
        return rc;
    char *d = jsi_strdup(name);
    if (!d)
        return JSI_ERR(JS_ENOMEM, 0, "name");
    jsi_free((char *)cfg->c.name);
    cfg->c.name = d;
    return 0;
}

/* ---- updates (checkNewConsumerConfig) ---------------------------------- */

static int str_eq(const char *a, const char *b) {
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int frozen(const char *field, const char *what) {
    return JSI_ERR(JS_EUPDATE, E_CREATE, "%s: %s can not be updated", field,
                   what);
}

int jsi_ccfg_check_update(const jsi_ccfg *old, const jsi_ccfg *nu) {
    const js_consumer_config *o = &old->c, *n = &nu->c;
    if (!str_eq(o->name, n->name))
        return frozen("name", "consumer name");
    if (!str_eq(o->durable_name, n->durable_name))
        return frozen("durable_name", "durable name");
    if (o->deliver_policy != n->deliver_policy)
        return frozen("deliver_policy", "deliver policy");
    if (o->mem_storage != n->mem_storage)
        return frozen("mem_storage", "storage type");
    if (o->opt_start_seq != n->opt_start_seq)
        return frozen("opt_start_seq", "start sequence");
    if (o->opt_start_time != n->opt_start_time)
        return frozen("opt_start_time", "start time");
    if (o->ack_policy != n->ack_policy)
        return frozen("ack_policy", "ack policy");
    if (o->replay_policy != n->replay_policy)
        return frozen("replay_policy", "replay policy");
    /* A push consumer's deliver_subject may change (NATS allows it while
     * no subscriber is bound; the runtime checks that). */
    if (is_push(o) != is_push(n))
        return JSI_ERR(JS_EUPDATE, E_CREATE,
                       "deliver_subject: can not update %s consumer to %s "
                       "based", is_push(o) ? "push" : "pull",
                       is_push(o) ? "pull" : "push");
    if (o->max_waiting != n->max_waiting)
        return frozen("max_waiting", "max waiting");
    return 0;
}

/* ---- comparison and filters -------------------------------------------- */

static int strv_eq(const char *const *a, const char *const *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

int jsi_ccfg_equal(const jsi_ccfg *x, const jsi_ccfg *y) {
    const js_consumer_config *a = &x->c, *b = &y->c;
    for (size_t i = 0; i < jsi_ccfg_num_fields; i++) {
        const jsi_ccfg_field *f = &jsi_ccfg_fields[i];
        if (f->kind == JSI_CCFG_K_STR
                ? !str_eq(jsi_ccfg_str(a, f), jsi_ccfg_str(b, f))
                : jsi_ccfg_num(a, f) != jsi_ccfg_num(b, f))
            return 0;
    }
    if (a->num_backoff != b->num_backoff ||
        a->num_filter_subjects != b->num_filter_subjects ||
        a->num_metadata != b->num_metadata)
        return 0;
    for (size_t i = 0; i < a->num_backoff; i++)
        if (a->backoff[i] != b->backoff[i])
            return 0;
    return strv_eq(a->filter_subjects, b->filter_subjects,
                   a->num_filter_subjects) &&
           strv_eq(a->metadata, b->metadata, 2 * a->num_metadata);
}

size_t jsi_ccfg_filters(const jsi_ccfg *cfg, const char *const **out) {
    const js_consumer_config *c = &cfg->c;
    const char *const *list = NULL;
    size_t n = 0;
    if (c->filter_subject) {
        list = &c->filter_subject;
        n = 1;
    } else if (c->num_filter_subjects > 0) {
        list = c->filter_subjects;
        n = c->num_filter_subjects;
    }
    if (out)
        *out = list;
    return n;
}

int jsi_ccfg_matches(const jsi_ccfg *cfg, const char *subj, size_t len) {
    const char *const *f;
    size_t n = jsi_ccfg_filters(cfg, &f);
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (jsi_subject_match(f[i], strlen(f[i]), subj, len))
            return 1;
    return 0;
}

/* ---- work-queue streams (partitionUnique) ------------------------------ */

static const char wq_unfiltered[] =
    "multiple non-filtered consumers not allowed on workqueue stream";
static const char wq_not_unique[] =
    "filtered consumer not unique on workqueue stream";

/* Record the clash as the calling thread's error and report it. */
static int wq_clash(const jsi_ccfg *a, const jsi_ccfg *b, const char *fa,
                    const char *fb, const char **why) {
    const char *field = a->c.filter_subject ? "filter_subject"
                                            : "filter_subjects";
    const char *bname = b->c.name ? b->c.name : "(unnamed)";
    const char *what = fa ? wq_not_unique : wq_unfiltered;
    if (!fa)
        JSI_ERR(JS_EINVAL, E_WQ_UNFILTERED, "%s: %s (consumer \"%s\" "
                "exists)", field, what, bname);
    else
        JSI_ERR(JS_EINVAL, E_WQ_NOT_UNIQUE, "%s: %s (\"%s\" overlaps "
                "\"%s\" of consumer \"%s\")", field, what, fa, fb, bname);
    if (why)
        *why = what;
    return 1;
}

int jsi_ccfg_wq_conflict(const jsi_ccfg *a, const jsi_ccfg *b,
                         const char **why) {
    const char *const *fa, *const *fb;
    size_t na = jsi_ccfg_filters(a, &fa), nb = jsi_ccfg_filters(b, &fb);
    if (na == 0)
        return wq_clash(a, b, NULL, NULL, why);
    if (nb == 0) /* b takes every subject */
        return wq_clash(a, b, fa[0], ">", why);
    for (size_t i = 0; i < na; i++)
        for (size_t k = 0; k < nb; k++)
            if (jsi_subject_collide(fa[i], fb[k]))
                return wq_clash(a, b, fa[i], fb[k], why);
    return 0;
}
