/*
 * stream_config.c - stream configs: copying the caller's versioned struct,
 * NATS defaults, validation in NATS's order, update rules, comparison and
 * the catalogue encoding.
 */
#include <inttypes.h>

#include "rangeset.h"
#include "stream.h"
#include "subject.h"
#include "util.h"

#define NATS_INVALID_CONFIG 10052
#define MIN_DURATION (100 * JSI_NS_PER_MS)
#define DEFAULT_DUPLICATE_WINDOW (120 * JSI_NS_PER_SEC)

/* Bytes of js_stream_config per version (the struct only grows). */
static size_t cfg_size(unsigned version) {
    switch (version) {
    case 1:
        return sizeof(js_stream_config);
    default:
        return 0;
    }
}

void jsi_scfg_free(jsi_scfg *c) {
    if (!c)
        return;
    jsi_free((char *)c->c.name);
    jsi_free((char *)c->c.description);
    for (size_t i = 0; c->subjects && i < c->c.num_subjects; i++)
        jsi_free(c->subjects[i]);
    jsi_free(c->subjects);
    memset(c, 0, sizeof *c);
}

static int set_subjects(jsi_scfg *c, const char *const *subs, size_t n) {
    c->subjects = n ? jsi_calloc(n, sizeof *c->subjects) : NULL;
    if (n && !c->subjects)
        return JS_ENOMEM;
    c->c.num_subjects = n;
    for (size_t i = 0; i < n; i++) {
        if (!subs[i])
            return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                           "subjects[%zu]: NULL", i);
        c->subjects[i] = jsi_strdup(subs[i]);
        if (!c->subjects[i])
            return JS_ENOMEM;
    }
    c->c.subjects = (const char *const *)c->subjects;
    return 0;
}

/* Deep-copy the strings of c->c (which point at the caller's memory). */
static int own_strings(jsi_scfg *c) {
    const char *name = c->c.name, *desc = c->c.description;
    const char *const *subs = c->c.subjects;
    size_t n = c->c.num_subjects;
    c->c.name = NULL;
    c->c.description = NULL;
    c->c.subjects = NULL;
    c->c.num_subjects = 0;
    if (n && !subs)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "subjects: NULL with num_subjects %zu", n);
    if (name && !(c->c.name = jsi_strdup(name)))
        return JS_ENOMEM;
    if (desc && !(c->c.description = jsi_strdup(desc)))
        return JS_ENOMEM;
    return set_subjects(c, subs, n);
}

int jsi_scfg_import(const js_stream_config *in, jsi_scfg *out) {
    memset(out, 0, sizeof *out);
    if (!in)
        return JSI_ERR(JS_EINVAL, 0, "config: NULL");
    size_t n = cfg_size(in->version);
    if (!n)
        return JSI_ERR(JS_EINVAL, 0,
                       "config: version %u unknown (this library: 1..%u)",
                       in->version, JS_STREAM_CONFIG_VERSION);
    memcpy(&out->c, in, n);
    int rc = own_strings(out);
    if (rc) {
        jsi_scfg_free(out);
        return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "config") : rc;
    }
    return 0;
}

int jsi_scfg_copy(const jsi_scfg *in, jsi_scfg *out) {
    *out = *in;
    out->subjects = NULL;
    int rc = own_strings(out);
    if (rc)
        jsi_scfg_free(out);
    return rc;
}

/* ---- defaults and validation ------------------------------------------- */

static void limit_default(int64_t *v) {
    if (*v == 0 || *v < -1)
        *v = -1;
}

static int check_name(const jsi_scfg *c) {
    const char *why = NULL;
    if (!c->c.name || !*c->c.name)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "name: stream name is required");
    if (!jsi_name_valid(c->c.name, &why))
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG, "name: %s", why);
    return 0;
}

static int check_enums(const js_stream_config *c) {
    if (c->retention < JS_RETENTION_LIMITS ||
        c->retention > JS_RETENTION_WORKQUEUE)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "retention: invalid value %d", c->retention);
    if (c->discard != JS_DISCARD_OLD && c->discard != JS_DISCARD_NEW)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "discard: invalid value %d", c->discard);
    if (c->storage != JS_STORAGE_FILE && c->storage != JS_STORAGE_MEMORY)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "storage: invalid value %d", c->storage);
    if (c->sync < JS_SYNC_DEFAULT || c->sync > JS_SYNC_NONE)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "sync: invalid value %d", c->sync);
    return 0;
}

static int check_durations(js_stream_config *c) {
    if (c->max_age < 0)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "max_age: can not be negative");
    if (c->max_age && c->max_age < MIN_DURATION)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "max_age: must be at least 100ms");
    if (c->duplicate_window < 0)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "duplicate_window: can not be negative");
    if (c->duplicate_window == 0) {
        c->duplicate_window = DEFAULT_DUPLICATE_WINDOW;
        if (c->max_age && c->max_age < c->duplicate_window)
            c->duplicate_window = c->max_age;
    }
    if (c->max_age && c->duplicate_window > c->max_age)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "duplicate_window: can not be larger than max_age");
    if (c->duplicate_window < MIN_DURATION)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "duplicate_window: must be at least 100ms");
    return 0;
}

static int check_subjects(jsi_scfg *c) {
    if (c->c.num_subjects == 0) {
        const char *self[1] = {c->c.name};
        int rc = set_subjects(c, self, 1);
        if (rc)
            return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "subjects") : rc;
    }
    for (size_t i = 0; i < c->c.num_subjects; i++) {
        const char *s = c->subjects[i];
        if (!jsi_subject_valid(s, strlen(s), 1))
            return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                           "subjects: invalid subject \"%s\"", s);
        for (size_t k = 0; k < i; k++) {
            if (strcmp(s, c->subjects[k]) == 0)
                return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                               "subjects: duplicate subject \"%s\"", s);
            if (jsi_subject_collide(s, c->subjects[k]))
                return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                               "subjects: subject \"%s\" overlaps with \"%s\"",
                               s, c->subjects[k]);
        }
    }
    return 0;
}

int jsi_scfg_normalize(jsi_scfg *cfg, int is_create) {
    js_stream_config *c = &cfg->c;
    int rc = check_name(cfg);
    if (rc)
        return rc;
    if (c->description && strlen(c->description) > JS_MAX_DESCRIPTION_LEN)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "description: longer than %d bytes",
                       JS_MAX_DESCRIPTION_LEN);
    if ((rc = check_enums(c)) != 0)
        return rc;
    limit_default(&c->max_consumers);
    limit_default(&c->max_msgs);
    limit_default(&c->max_bytes);
    limit_default(&c->max_msgs_per_subject);
    if (c->max_msg_size == 0 || c->max_msg_size < -1)
        c->max_msg_size = -1;
    if ((rc = check_durations(c)) != 0)
        return rc;
    if (c->deny_purge && c->allow_rollup_hdrs)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "allow_rollup_hdrs: roll-ups require the purge "
                       "permission (deny_purge is set)");
    if (c->discard_new_per_subject &&
        (c->discard != JS_DISCARD_NEW || c->max_msgs_per_subject <= 0))
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "discard_new_per_subject: requires discard new and "
                       "max_msgs_per_subject");
    if ((rc = check_subjects(cfg)) != 0)
        return rc;
    if (is_create && c->sealed)
        return JSI_ERR(JS_EINVAL, NATS_INVALID_CONFIG,
                       "sealed: stream configuration for create can not be "
                       "sealed");
    if (c->sealed) {
        /* Sealing freezes the stream as NATS does. */
        c->max_age = 0;
        c->discard = JS_DISCARD_NEW;
        c->deny_delete = c->deny_purge = 1;
        c->allow_rollup_hdrs = 0;
    }
    c->sealed = !!c->sealed;
    c->deny_delete = !!c->deny_delete;
    c->deny_purge = !!c->deny_purge;
    c->allow_rollup_hdrs = !!c->allow_rollup_hdrs;
    c->discard_new_per_subject = !!c->discard_new_per_subject;
    c->version = JS_STREAM_CONFIG_VERSION;
    return 0;
}

int jsi_scfg_check_update(const jsi_scfg *old, const jsi_scfg *nu) {
    const js_stream_config *o = &old->c, *n = &nu->c;
    if (n->storage != o->storage)
        return JSI_ERR(JS_EUPDATE, NATS_INVALID_CONFIG,
                       "storage: stream configuration update can not change "
                       "storage type");
    if (n->retention != o->retention &&
        (n->retention == JS_RETENTION_WORKQUEUE ||
         o->retention == JS_RETENTION_WORKQUEUE))
        return JSI_ERR(JS_EUPDATE, NATS_INVALID_CONFIG,
                       "retention: stream configuration update can not change "
                       "retention policy to/from workqueue");
    if (o->sealed && !n->sealed)
        return JSI_ERR(JS_EUPDATE, NATS_INVALID_CONFIG,
                       "sealed: stream configuration update can not unseal a "
                       "sealed stream");
    if (o->deny_delete && !n->deny_delete)
        return JSI_ERR(JS_EUPDATE, NATS_INVALID_CONFIG,
                       "deny_delete: stream configuration update can not "
                       "cancel deny message deletes");
    if (o->deny_purge && !n->deny_purge)
        return JSI_ERR(JS_EUPDATE, NATS_INVALID_CONFIG,
                       "deny_purge: stream configuration update can not "
                       "cancel deny purge");
    if (n->first_seq != o->first_seq)
        return JSI_ERR(JS_EUPDATE, NATS_INVALID_CONFIG,
                       "first_seq: can only be set when the stream is "
                       "created");
    return 0;
}

static int str_eq(const char *a, const char *b) {
    if (!a || !*a)
        return !b || !*b;
    return b && strcmp(a, b) == 0;
}

int jsi_scfg_equal(const jsi_scfg *x, const jsi_scfg *y) {
    const js_stream_config *a = &x->c, *b = &y->c;
    if (!str_eq(a->name, b->name) || !str_eq(a->description, b->description) ||
        a->num_subjects != b->num_subjects)
        return 0;
    for (size_t i = 0; i < a->num_subjects; i++)
        if (strcmp(x->subjects[i], y->subjects[i]) != 0)
            return 0;
    return a->retention == b->retention &&
           a->max_consumers == b->max_consumers &&
           a->max_msgs == b->max_msgs && a->max_bytes == b->max_bytes &&
           a->max_age == b->max_age &&
           a->max_msgs_per_subject == b->max_msgs_per_subject &&
           a->max_msg_size == b->max_msg_size && a->discard == b->discard &&
           a->storage == b->storage &&
           a->duplicate_window == b->duplicate_window &&
           a->first_seq == b->first_seq &&
           a->discard_new_per_subject == b->discard_new_per_subject &&
           a->sealed == b->sealed && a->deny_delete == b->deny_delete &&
           a->deny_purge == b->deny_purge &&
           a->allow_rollup_hdrs == b->allow_rollup_hdrs && a->sync == b->sync;
}

int jsi_scfg_overlap(const jsi_scfg *a, const jsi_scfg *b, const char **sa,
                     const char **sb) {
    for (size_t i = 0; i < a->c.num_subjects; i++)
        for (size_t k = 0; k < b->c.num_subjects; k++)
            if (jsi_subject_collide(a->subjects[i], b->subjects[k])) {
                *sa = a->subjects[i];
                *sb = b->subjects[k];
                return 1;
            }
    return 0;
}

/* ---- catalogue encoding: tag, length, value ------------------------------
 * Tags are never reused; a reader skips tags it does not know, so a later
 * version can add fields and an older one still opens the store. */

enum {
    T_NAME = 1, T_DESC = 2, T_SUBJECT = 3, T_RETENTION = 4,
    T_MAX_CONSUMERS = 5, T_MAX_MSGS = 6, T_MAX_BYTES = 7, T_MAX_AGE = 8,
    T_MAX_PER_SUBJECT = 9, T_MAX_MSG_SIZE = 10, T_DISCARD = 11,
    T_STORAGE = 12, T_DUP_WINDOW = 13, T_FIRST_SEQ = 14,
    T_DISCARD_NEW_PER = 15, T_SEALED = 16, T_DENY_DELETE = 17,
    T_DENY_PURGE = 18, T_ROLLUP = 19, T_SYNC = 20,
};

static int tlv(jsi_buf *b, unsigned tag, const void *v, size_t n) {
    uint8_t h[20];
    size_t k = jsi_uvarint_put(h, tag);
    k += jsi_uvarint_put(h + k, n);
    int rc = jsi_buf_append(b, h, k);
    return rc ? rc : jsi_buf_append(b, v, n);
}

static int tlv_i64(jsi_buf *b, unsigned tag, int64_t v) {
    uint8_t x[8];
    jsi_put64(x, (uint64_t)v);
    return tlv(b, tag, x, 8);
}

int jsi_scfg_encode(const jsi_scfg *cfg, jsi_buf *b) {
    const js_stream_config *c = &cfg->c;
    int rc = tlv(b, T_NAME, c->name, strlen(c->name));
    if (rc == 0 && c->description)
        rc = tlv(b, T_DESC, c->description, strlen(c->description));
    for (size_t i = 0; rc == 0 && i < c->num_subjects; i++)
        rc = tlv(b, T_SUBJECT, cfg->subjects[i], strlen(cfg->subjects[i]));
    const struct {
        unsigned tag;
        int64_t v;
    } nums[] = {
        {T_RETENTION, c->retention},
        {T_MAX_CONSUMERS, c->max_consumers},
        {T_MAX_MSGS, c->max_msgs},
        {T_MAX_BYTES, c->max_bytes},
        {T_MAX_AGE, c->max_age},
        {T_MAX_PER_SUBJECT, c->max_msgs_per_subject},
        {T_MAX_MSG_SIZE, c->max_msg_size},
        {T_DISCARD, c->discard},
        {T_STORAGE, c->storage},
        {T_DUP_WINDOW, c->duplicate_window},
        {T_FIRST_SEQ, (int64_t)c->first_seq},
        {T_DISCARD_NEW_PER, c->discard_new_per_subject},
        {T_SEALED, c->sealed},
        {T_DENY_DELETE, c->deny_delete},
        {T_DENY_PURGE, c->deny_purge},
        {T_ROLLUP, c->allow_rollup_hdrs},
        {T_SYNC, c->sync},
    };
    for (size_t i = 0; rc == 0 && i < sizeof nums / sizeof nums[0]; i++)
        rc = tlv_i64(b, nums[i].tag, nums[i].v);
    return rc;
}

static char *dup_field(const uint8_t *v, size_t n) {
    if (memchr(v, 0, n))
        return NULL;
    return jsi_strndup((const char *)v, n);
}

static int decode_num(js_stream_config *c, unsigned tag, int64_t x) {
    switch (tag) {
    case T_RETENTION: c->retention = (int)x; break;
    case T_MAX_CONSUMERS: c->max_consumers = x; break;
    case T_MAX_MSGS: c->max_msgs = x; break;
    case T_MAX_BYTES: c->max_bytes = x; break;
    case T_MAX_AGE: c->max_age = x; break;
    case T_MAX_PER_SUBJECT: c->max_msgs_per_subject = x; break;
    case T_MAX_MSG_SIZE: c->max_msg_size = (int32_t)x; break;
    case T_DISCARD: c->discard = (int)x; break;
    case T_STORAGE: c->storage = (int)x; break;
    case T_DUP_WINDOW: c->duplicate_window = x; break;
    case T_FIRST_SEQ: c->first_seq = (uint64_t)x; break;
    case T_DISCARD_NEW_PER: c->discard_new_per_subject = (int)x; break;
    case T_SEALED: c->sealed = (int)x; break;
    case T_DENY_DELETE: c->deny_delete = (int)x; break;
    case T_DENY_PURGE: c->deny_purge = (int)x; break;
    case T_ROLLUP: c->allow_rollup_hdrs = (int)x; break;
    case T_SYNC: c->sync = (int)x; break;
    default: break; /* a later version's field */
    }
    return 0;
}

static int decode_field(jsi_scfg *out, unsigned tag, const uint8_t *v,
                        size_t n) {
    js_stream_config *c = &out->c;
    if (tag == T_NAME || tag == T_DESC) {
        char *s = dup_field(v, n);
        if (!s)
            return JS_ECORRUPT;
        jsi_free((char *)(tag == T_NAME ? c->name : c->description));
        if (tag == T_NAME)
            c->name = s;
        else
            c->description = s;
        return 0;
    }
    if (tag == T_SUBJECT) {
        char **ns = jsi_realloc(out->subjects,
                                (c->num_subjects + 1) * sizeof *ns);
        if (!ns)
            return JS_ENOMEM;
        out->subjects = ns;
        if (!(ns[c->num_subjects] = dup_field(v, n)))
            return JS_ECORRUPT;
        c->num_subjects++;
        c->subjects = (const char *const *)ns;
        return 0;
    }
    if (tag <= T_SYNC && n != 8)
        return JS_ECORRUPT;
    return n == 8 ? decode_num(c, tag, (int64_t)jsi_get64(v)) : 0;
}

int jsi_scfg_decode(const uint8_t *p, size_t n, jsi_scfg *out) {
    memset(out, 0, sizeof *out);
    out->c.version = JS_STREAM_CONFIG_VERSION;
    size_t off = 0;
    int rc = 0;
    while (rc == 0 && off < n) {
        uint64_t tag, len;
        size_t k = jsi_uvarint_get(p + off, n - off, &tag);
        size_t k2 = k ? jsi_uvarint_get(p + off + k, n - off - k, &len) : 0;
        if (!k || !k2 || len > n - off - k - k2 || tag > UINT32_MAX) {
            rc = JS_ECORRUPT;
            break;
        }
        off += k + k2;
        rc = decode_field(out, (unsigned)tag, p + off, (size_t)len);
        off += (size_t)len;
    }
    if (rc == 0 && !out->c.name)
        rc = JS_ECORRUPT;
    if (rc == 0)
        rc = jsi_scfg_normalize(out, 0);
    if (rc)
        jsi_scfg_free(out);
    return rc == JS_ENOMEM ? rc : (rc ? JS_ECORRUPT : 0);
}
