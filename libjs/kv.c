/*
 * kv.c - key/value buckets as NATS builds them (ADR-8): a bucket is the
 * stream KV_<bucket> on $KV.<bucket>.>, a key's entries are the messages
 * on its subject, and operations are publishes with NATS's headers
 * (KV-Operation, Nats-Rollup, Nats-Expected-Last-Subject-Sequence). This
 * layer holds only those conventions; the stream layer does the rest.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "kv.h"

/* ---- names ------------------------------------------------------------------ */

static int bucket_char(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
}

static int check_bucket(const char *b) {
    if (!b || !*b)
        return JSI_ERR(JS_EINVAL, 0, "bucket: name required");
    size_t n = strlen(b);
    if (n > MAX_BUCKET_LEN)
        return JSI_ERR(JS_EINVAL, 0, "bucket: longer than %d bytes",
                       MAX_BUCKET_LEN);
    for (size_t i = 0; i < n; i++)
        if (!bucket_char(b[i]))
            return JSI_ERR(JS_EINVAL, 0, "bucket: invalid bucket name \"%s\" "
                           "(allowed: letters, digits, '_' and '-')", b);
    return 0;
}

static int key_char(char ch) {
    return bucket_char(ch) || ch == '/' || ch == '=' || ch == '.';
}

/* ADR-8: [-/_=.a-zA-Z0-9]+, not starting or ending with '.'; and, being
 * a subject, no empty token. */
int jsi_kv_check_key(const js_kv *kv, const char *k) {
    if (!k || !*k)
        return JSI_ERR(JS_EINVAL, 0, "key: empty");
    size_t n = strlen(k);
    if (n > JS_MAX_SUBJECT_LEN - kv->plen)
        return JSI_ERR(JS_EINVAL, 0, "key: longer than %zu bytes in this "
                       "bucket", JS_MAX_SUBJECT_LEN - kv->plen);
    if (k[0] == '.' || k[n - 1] == '.' || strstr(k, ".."))
        return JSI_ERR(JS_EINVAL, 0, "key: invalid key \"%s\" (empty token)",
                       k);
    for (size_t i = 0; i < n; i++)
        if (!key_char(k[i]))
            return JSI_ERR(JS_EINVAL, 0, "key: invalid key \"%s\" (allowed: "
                           "letters, digits and -/_=.)", k);
    return 0;
}

/* No empty token; '*' and '>' only as whole tokens, '>' only last. Keys
 * cannot hold either, so "a*" could only ever match nothing. */
static int wildcards_whole(const char *f, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && f[i] != '.')
            continue;
        size_t len = i - start;
        const char *t = f + start;
        if (len == 0 || (len > 1 && memchr(t, '*', len)) ||
            (len > 1 && memchr(t, '>', len)) || (t[0] == '>' && i != n))
            return 0;
        start = i + 1;
    }
    return 1;
}

/* ADR-8 filters: key characters and '*' tokens, a final '>' token, no
 * empty token. */
int jsi_kv_filter(const js_kv *kv, const char *f, char **out) {
    if (!f)
        f = ">";
    size_t n = strlen(f);
    if (n == 0 || n > JS_MAX_SUBJECT_LEN - kv->plen)
        return JSI_ERR(JS_EINVAL, 0, "key filter: empty or longer than %zu "
                       "bytes", JS_MAX_SUBJECT_LEN - kv->plen);
    for (size_t i = 0; i < n; i++)
        if (!key_char(f[i]) && f[i] != '*' && f[i] != '>')
            return JSI_ERR(JS_EINVAL, 0, "key filter: invalid \"%s\" "
                           "(allowed: letters, digits, -/_=. and the "
                           "wildcards * and >)", f);
    if (!wildcards_whole(f, n))
        return JSI_ERR(JS_EINVAL, 0, "key filter: invalid \"%s\" (empty "
                       "token, a wildcard that is not a whole token, or '>' "
                       "not last)", f);
    if (!(*out = jsi_kv_subject(kv, f)))
        return JSI_ERR(JS_ENOMEM, 0, "key filter");
    return 0;
}

char *jsi_kv_subject(const js_kv *kv, const char *key) {
    size_t n = strlen(key);
    char *s = jsi_malloc(kv->plen + n + 1);
    if (s) {
        memcpy(s, kv->prefix, kv->plen);
        memcpy(s + kv->plen, key, n + 1);
    }
    return s;
}

/* ---- buckets ------------------------------------------------------------------ */

static size_t cfg_size(unsigned v) { return v == 1 ? sizeof(js_kv_config) : 0; }

static int import_cfg(const js_kv_config *in, js_kv_config *out) {
    js_kv_config def = JS_KV_CONFIG_INIT;
    if (!in)
        return JSI_ERR(JS_EINVAL, 0, "config: NULL");
    if (!cfg_size(in->version))
        return JSI_ERR(JS_EINVAL, 0, "config: version %u unknown",
                       in->version);
    *out = def;
    memcpy(out, in, cfg_size(in->version));
    int rc = check_bucket(out->bucket);
    if (rc)
        return rc;
    if (out->history == 0)
        out->history = 1;
    if (out->history < 1 || out->history > JS_KV_MAX_HISTORY)
        return JSI_ERR(JS_EINVAL, 0, "history: must be 1..%d",
                       JS_KV_MAX_HISTORY);
    if (out->ttl < 0 || (out->ttl > 0 && out->ttl < 100 * JSI_NS_PER_MS))
        return JSI_ERR(JS_EINVAL, 10052, "ttl: must be 0 or >= 100ms");
    return 0;
}

/* The stream config `nats kv add` makes for a bucket. names[0] gets the
 * stream name and names[1] the subject, both jsi_malloc'd. */
static int stream_cfg(const js_kv_config *k, js_stream_config *c,
                      char *names[2]) {
    js_stream_config def = JS_STREAM_CONFIG_INIT;
    size_t n = strlen(k->bucket);
    names[0] = jsi_malloc(n + 4);
    names[1] = jsi_malloc(n + 7);
    if (!names[0] || !names[1]) {
        jsi_free(names[0]);
        jsi_free(names[1]);
        return JSI_ERR(JS_ENOMEM, 0, "bucket");
    }
    snprintf(names[0], n + 4, STREAM_PREFIX "%s", k->bucket);
    snprintf(names[1], n + 7, SUBJ_PREFIX "%s.>", k->bucket);
    *c = def;
    c->name = names[0];
    c->subjects = (const char *const *)&names[1];
    c->num_subjects = 1;
    c->description = k->description;
    c->max_msgs_per_subject = k->history;
    c->max_age = k->ttl;
    c->duplicate_window = k->ttl > 0 && k->ttl < DEFAULT_DUP_WINDOW
                              ? k->ttl : DEFAULT_DUP_WINDOW;
    c->max_msg_size = k->max_value_size;
    c->max_bytes = k->max_bytes;
    c->storage = k->storage;
    c->discard = JS_DISCARD_NEW;
    c->allow_rollup_hdrs = 1;
    c->deny_delete = 1;
    c->sync = k->sync;
    return 0;
}

static int kv_new(js_store *st, js_stream *s, const char *bucket,
                  js_kv **out) {
    js_kv *kv = jsi_calloc(1, sizeof *kv);
    size_t n = strlen(bucket);
    if (kv) {
        kv->bucket = jsi_strdup(bucket);
        kv->prefix = jsi_malloc(n + 6);
    }
    if (!kv || !kv->bucket || !kv->prefix) {
        if (kv) {
            jsi_free(kv->bucket);
            jsi_free(kv->prefix);
        }
        jsi_free(kv);
        js_stream_release(s);
        return JSI_ERR(JS_ENOMEM, 0, "bucket");
    }
    snprintf(kv->prefix, n + 6, SUBJ_PREFIX "%s.", bucket);
    kv->plen = n + 5;
    kv->magic = KV_MAGIC;
    kv->store = st;
    kv->s = s;
    *out = kv;
    return 0;
}

static void give(js_kv *kv, js_kv **out) {
    if (out)
        *out = kv;
    else
        js_kv_release(kv);
}

JS_API int js_kv_create(js_store *st, const js_kv_config *cfg, js_kv **out) {
    js_kv_config k;
    js_stream_config sc;
    char *names[2];
    js_stream *s = NULL;
    js_kv *kv;
    jsi_err_clear();
    int rc = import_cfg(cfg, &k);
    if (rc == 0)
        rc = stream_cfg(&k, &sc, names);
    if (rc)
        return rc;
    rc = js_stream_add(st, &sc, &s);
    jsi_free(names[0]);
    jsi_free(names[1]);
    if (rc == JS_ESTREAM_EXISTS)
        return JSI_ERR(rc, 10058, "bucket %s exists with a different "
                       "configuration", k.bucket);
    if (rc == 0 && (rc = kv_new(st, s, k.bucket, &kv)) == 0)
        give(kv, out);
    return rc;
}

/* 1 if the stream is laid out as a bucket. */
static int is_bucket(js_stream *s, const char *bucket) {
    struct js_stream_info *i;
    char want[JS_MAX_NAME_LEN + 8];
    if (js_stream_info(s, &i) != 0)
        return 0;
    snprintf(want, sizeof want, SUBJ_PREFIX "%s.>", bucket);
    int ok = i->config->num_subjects == 1 &&
             strcmp(i->config->subjects[0], want) == 0;
    js_stream_info_free(i);
    return ok;
}

JS_API int js_kv_open(js_store *st, const char *bucket, js_kv **out) {
    char name[JS_MAX_NAME_LEN + 1];
    js_stream *s;
    js_kv *kv;
    jsi_err_clear();
    int rc = check_bucket(bucket);
    if (rc == 0 && !out)
        rc = JSI_ERR(JS_EINVAL, 0, "out: NULL");
    if (rc)
        return rc;
    *out = NULL;
    snprintf(name, sizeof name, STREAM_PREFIX "%s", bucket);
    if ((rc = js_stream_lookup(st, name, &s)) != 0)
        return rc == JS_ESTREAM_NOT_FOUND
                   ? JSI_ERR(rc, 10059, "bucket %s not found", bucket) : rc;
    if (!is_bucket(s, bucket)) {
        js_stream_release(s);
        return JSI_ERR(JS_ESTREAM_NOT_FOUND, 10059, "stream %s is not a "
                       "key/value bucket", name);
    }
    if ((rc = kv_new(st, s, bucket, &kv)) == 0)
        *out = kv;
    return rc;
}

/* 0 if the bucket exists as a bucket (not some other stream KV_x). */
static int check_exists(js_store *st, const char *bucket) {
    js_kv *kv;
    int rc = js_kv_open(st, bucket, &kv);
    js_kv_release(kv);
    return rc;
}

JS_API int js_kv_update(js_store *st, const js_kv_config *cfg) {
    js_kv_config k;
    js_stream_config sc;
    char *names[2];
    jsi_err_clear();
    int rc = import_cfg(cfg, &k);
    if (rc == 0)
        rc = check_exists(st, k.bucket);
    if (rc == 0)
        rc = stream_cfg(&k, &sc, names);
    if (rc)
        return rc;
    rc = js_stream_update(st, &sc);
    jsi_free(names[0]);
    jsi_free(names[1]);
    return rc;
}

JS_API int js_kv_delete(js_store *st, const char *bucket) {
    char name[JS_MAX_NAME_LEN + 1];
    jsi_err_clear();
    int rc = check_bucket(bucket);
    if (rc == 0)
        rc = check_exists(st, bucket);
    if (rc)
        return rc;
    snprintf(name, sizeof name, STREAM_PREFIX "%s", bucket);
    return js_stream_delete(st, name);
}

JS_API void js_kv_release(js_kv *kv) {
    if (!kv || kv->magic != KV_MAGIC)
        return;
    kv->magic = 0;
    js_stream_release(kv->s);
    jsi_free(kv->bucket);
    jsi_free(kv->prefix);
    jsi_free(kv);
}

int jsi_kv_enter(js_kv *kv) {
    jsi_err_clear();
    return kv && kv->magic == KV_MAGIC
               ? 0 : JSI_ERR(JS_EMISUSE, 0, "not a bucket handle");
}

JS_API int js_kv_status(js_kv *kv, struct js_kv_status **out) {
    struct js_stream_info *i;
    int rc = jsi_kv_enter(kv);
    if (rc == 0 && !out)
        rc = JSI_ERR(JS_EINVAL, 0, "out: NULL");
    if (rc || (rc = js_stream_info(kv->s, &i)) != 0)
        return rc;
    size_t bl = strlen(kv->bucket) + 1;
    size_t dl = i->config->description ? strlen(i->config->description) + 1
                                       : 0;
    struct js_kv_status *st =
        jsi_calloc(1, sizeof *st + sizeof(js_kv_config) + bl + dl);
    if (!st) {
        js_stream_info_free(i);
        return JSI_ERR(JS_ENOMEM, 0, "status");
    }
    js_kv_config *c = (js_kv_config *)(st + 1);
    char *p = (char *)(c + 1);
    c->version = JS_KV_CONFIG_VERSION;
    c->bucket = st->bucket = memcpy(p, kv->bucket, bl);
    if (dl)
        c->description = memcpy(p + bl, i->config->description, dl);
    c->history = st->history = i->config->max_msgs_per_subject;
    c->ttl = st->ttl = i->config->max_age;
    c->max_value_size = i->config->max_msg_size;
    c->max_bytes = i->config->max_bytes;
    c->storage = st->storage = i->config->storage;
    c->sync = i->config->sync;
    st->values = i->state->msgs;
    st->bytes = i->state->bytes;
    st->config = c;
    js_stream_info_free(i);
    *out = st;
    return 0;
}

JS_API void js_kv_status_free(struct js_kv_status *status) {
    jsi_free(status);
}

/* ---- keys ---------------------------------------------------------------------- */

enum { HDR_DEL = 1, HDR_PURGE = 2, HDR_EXPECT = 4 };

/* NATS/1.0 header block for a KV operation. */
static size_t build_hdr(char *b, size_t cap, int what, uint64_t last) {
    int n = snprintf(b, cap, "NATS/1.0\r\n%s%s", 
                     what & HDR_DEL ? HDR_OP ": DEL\r\n" : "",
                     what & HDR_PURGE ? HDR_OP ": PURGE\r\nNats-Rollup: sub\r\n"
                                      : "");
    if (what & HDR_EXPECT)
        n += snprintf(b + n, cap - (size_t)n,
                      "Nats-Expected-Last-Subject-Sequence: %" PRIu64 "\r\n",
                      last);
    n += snprintf(b + n, cap - (size_t)n, "\r\n");
    return (size_t)n;
}

static int kv_publish(js_kv *kv, const char *key, int what, uint64_t last,
                      const void *value, size_t len, uint64_t *revision) {
    char hdr[160];
    js_pub_ack ack = JS_PUB_ACK_INIT;
    int rc = jsi_kv_enter(kv);
    if (rc == 0)
        rc = jsi_kv_check_key(kv, key);
    if (rc == 0 && len && !value)
        rc = JSI_ERR(JS_EINVAL, 0, "value: NULL with a length");
    if (rc == 0 && len > JS_MAX_PAYLOAD)
        rc = JSI_ERR(JS_EMSG_SIZE, 10054, "value: larger than %d bytes",
                     JS_MAX_PAYLOAD);
    if (rc)
        return rc;
    char *subj = jsi_kv_subject(kv, key);
    if (!subj)
        return JSI_ERR(JS_ENOMEM, 0, "key");
    size_t hlen = what ? build_hdr(hdr, sizeof hdr, what, last) : 0;
    /* Through the handle's own stream: a deleted bucket's handle is stale
     * even if a bucket of the same name has been made since. */
    rc = jsi_stream_publish(kv->s, subj, strlen(subj), what ? hdr : NULL,
                            hlen, value, len, &ack);
    jsi_free(subj);
    if (rc == 0 && revision)
        *revision = ack.seq;
    return rc;
}

JS_API int js_kv_put(js_kv *kv, const char *key, const void *value,
                     size_t len, uint64_t *revision) {
    return kv_publish(kv, key, 0, 0, value, len, revision);
}

JS_API int js_kv_update_key(js_kv *kv, const char *key, const void *value,
                            size_t len, uint64_t last, uint64_t *revision) {
    return kv_publish(kv, key, HDR_EXPECT, last, value, len, revision);
}

JS_API int js_kv_delete_key(js_kv *kv, const char *key, uint64_t last) {
    return kv_publish(kv, key, HDR_DEL | (last ? HDR_EXPECT : 0), last, NULL,
                      0, NULL);
}

JS_API int js_kv_purge_key(js_kv *kv, const char *key, uint64_t last) {
    return kv_publish(kv, key, HDR_PURGE | (last ? HDR_EXPECT : 0), last,
                      NULL, 0, NULL);
}

/* The operation a stored entry records. */
int jsi_kv_entry_op(const js_msg *m) {
    const char *v;
    size_t n;
    if (js_msg_header(m, HDR_OP, &v, &n) != 0)
        return JS_KV_OP_PUT;
    if (n == 3 && memcmp(v, "DEL", 3) == 0)
        return JS_KV_OP_DEL;
    if (n == 5 && memcmp(v, "PURGE", 5) == 0)
        return JS_KV_OP_PURGE;
    return JS_KV_OP_PUT;
}

/* The latest entry of a key: its revision and operation (0, 0: none). */
static int latest(js_kv *kv, const char *subj, uint64_t *rev, int *op) {
    js_msg *m;
    int rc = js_msg_get_last(kv->s, subj, &m);
    *rev = 0;
    *op = 0;
    if (rc == JS_EMSG_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    *rev = js_msg_seq(m);
    *op = jsi_kv_entry_op(m);
    js_msg_free(m);
    return 0;
}

JS_API int js_kv_create_key(js_kv *kv, const char *key, const void *value,
                            size_t len, uint64_t *revision) {
    int rc = kv_publish(kv, key, HDR_EXPECT, 0, value, len, revision);
    if (rc != JS_EWRONG_LAST_SEQ)
        return rc;
    /* A key whose latest entry is a delete or purge marker may be created
     * again: compare-and-set against that marker. */
    uint64_t rev;
    int op;
    char *subj = jsi_kv_subject(kv, key);
    if (!subj)
        return JSI_ERR(JS_ENOMEM, 0, "key");
    rc = latest(kv, subj, &rev, &op);
    jsi_free(subj);
    if (rc == 0 && rev && op != JS_KV_OP_PUT)
        rc = kv_publish(kv, key, HDR_EXPECT, rev, value, len, revision);
    else if (rc == 0)
        rc = JS_EWRONG_LAST_SEQ;
    if (rc == JS_EWRONG_LAST_SEQ)
        return JSI_ERR(JS_EKEY_EXISTS, 10071, "key %s exists", key);
    return rc;
}

int jsi_kv_make_entry(const js_kv *kv, const char *key, const js_msg *m,
                      struct js_kv_entry **out) {
    size_t len, bl = strlen(kv->bucket) + 1, kl = strlen(key) + 1;
    const void *data = js_msg_data(m, &len);
    struct js_kv_entry *e = jsi_calloc(1, sizeof *e + bl + kl + len);
    if (!e)
        return JSI_ERR(JS_ENOMEM, 0, "entry");
    char *p = (char *)(e + 1);
    e->bucket = memcpy(p, kv->bucket, bl);
    e->key = memcpy(p + bl, key, kl);
    e->op = jsi_kv_entry_op(m);
    e->value = e->op == JS_KV_OP_PUT && len ? memcpy(p + bl + kl, data, len)
                                             : NULL;
    e->len = e->op == JS_KV_OP_PUT ? len : 0;
    e->revision = js_msg_seq(m);
    e->created = js_msg_time(m);
    *out = e;
    return 0;
}

JS_API int js_kv_get(js_kv *kv, const char *key, uint64_t revision,
                     struct js_kv_entry **out) {
    js_msg *m = NULL;
    int rc = jsi_kv_enter(kv);
    if (rc == 0)
        rc = jsi_kv_check_key(kv, key);
    if (rc == 0 && !out)
        rc = JSI_ERR(JS_EINVAL, 0, "out: NULL");
    if (rc)
        return rc;
    char *subj = jsi_kv_subject(kv, key);
    if (!subj)
        return JSI_ERR(JS_ENOMEM, 0, "key");
    rc = revision ? js_msg_get(kv->s, revision, &m)
                  : js_msg_get_last(kv->s, subj, &m);
    if (rc == 0 && strcmp(js_msg_subject(m), subj) != 0)
        rc = JS_EMSG_NOT_FOUND;
    if (rc == 0 && jsi_kv_entry_op(m) != JS_KV_OP_PUT)
        rc = JS_EMSG_NOT_FOUND;
    if (rc == JS_EMSG_NOT_FOUND)
        rc = JSI_ERR(JS_EKEY_NOT_FOUND, 0, "key %s not found", key);
    if (rc == 0)
        rc = jsi_kv_make_entry(kv, key, m, out);
    js_msg_free(m);
    jsi_free(subj);
    return rc;
}

JS_API void js_kv_entry_free(struct js_kv_entry *entry) { jsi_free(entry); }
