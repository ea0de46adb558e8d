/*
 * msg.c - js_msg: a message copied out of a stream, with its accessors.
 */
#include "consumer.h"
#include "headers.h"
#include "msgstore.h"
#include "util.h"

#define MSG_MAGIC 0x4a534d47u /* "JSMG" */

struct js_msg {
    uint32_t magic;
    uint64_t seq;
    int64_t ts;
    size_t slen, hlen, dlen;
    const uint8_t *hdr, *data;
    /* set when a consumer delivered it (it then holds a reference) */
    js_consumer *cons;
    uint64_t dseq, count, pending;
    char subj[]; /* subject, NUL, headers, payload */
};

int jsi_msg_from_rec(const jsi_rec *r, js_msg **out) {
    js_msg *m = jsi_malloc(sizeof *m + r->slen + 1 + r->hlen + r->dlen);
    if (!m)
        return JSI_ERR(JS_ENOMEM, 0, "message");
    m->magic = MSG_MAGIC;
    m->cons = NULL;
    m->dseq = m->count = m->pending = 0;
    m->seq = r->seq;
    m->ts = r->ts;
    m->slen = r->slen;
    m->hlen = r->hlen;
    m->dlen = r->dlen;
    memcpy(m->subj, r->subj, r->slen);
    m->subj[r->slen] = 0;
    uint8_t *p = (uint8_t *)m->subj + r->slen + 1;
    if (r->hlen)
        memcpy(p, r->hdr, r->hlen);
    m->hdr = r->hlen ? p : NULL;
    if (r->dlen)
        memcpy(p + r->hlen, r->data, r->dlen);
    m->data = p + r->hlen;
    *out = m;
    return 0;
}

static int ok(const js_msg *m) { return m && m->magic == MSG_MAGIC; }

int jsi_msg_valid(const js_msg *m) { return ok(m); }

JS_API void js_msg_free(js_msg *m) {
    if (!ok(m))
        return;
    m->magic = 0;
    if (m->cons)
        jsi_consumer_unref(m->cons);
    jsi_free(m);
}

void jsi_msg_set_delivery(js_msg *m, js_consumer *c, uint64_t dseq,
                          uint64_t count, uint64_t pending) {
    jsi_consumer_ref(c);
    m->cons = c;
    m->dseq = dseq;
    m->count = count;
    m->pending = pending;
}

js_consumer *jsi_msg_consumer(const js_msg *m, uint64_t *dseq) {
    if (!ok(m) || !m->cons)
        return NULL;
    if (dseq)
        *dseq = m->dseq;
    return m->cons;
}

size_t jsi_msg_size(const js_msg *m) { return m->slen + m->hlen + m->dlen; }

static size_t meta_size(unsigned v) {
    return v == 1 ? sizeof(js_msg_meta) : 0;
}

JS_API int js_msg_metadata(const js_msg *m, js_msg_meta *meta) {
    jsi_err_clear();
    if (!ok(m))
        return JSI_ERR(JS_EMISUSE, 0, "not a message");
    if (!meta || !meta_size(meta->version))
        return JSI_ERR(JS_EINVAL, 0, "meta: NULL or unknown version");
    if (!m->cons)
        return JSI_ERR(JS_EINVAL, 0, "the message was not delivered by a "
                       "consumer");
    js_msg_meta v = {1, m->cons->s->name, m->cons->name, m->seq, m->dseq,
                     m->count, m->pending, m->ts};
    v.version = meta->version;
    memcpy(meta, &v, meta_size(meta->version));
    return 0;
}

JS_API const char *js_msg_subject(const js_msg *m) {
    return ok(m) ? m->subj : NULL;
}

JS_API uint64_t js_msg_seq(const js_msg *m) { return ok(m) ? m->seq : 0; }

JS_API int64_t js_msg_time(const js_msg *m) { return ok(m) ? m->ts : 0; }

JS_API const void *js_msg_data(const js_msg *m, size_t *len) {
    if (len)
        *len = ok(m) ? m->dlen : 0;
    return ok(m) ? m->data : NULL;
}

JS_API const void *js_msg_headers(const js_msg *m, size_t *len) {
    if (len)
        *len = ok(m) ? m->hlen : 0;
    return ok(m) ? m->hdr : NULL;
}

JS_API int js_msg_header(const js_msg *m, const char *name, const char **value,
                         size_t *len) {
    jsi_err_clear();
    if (!ok(m))
        return JSI_ERR(JS_EMISUSE, 0, "not a message");
    if (!name || !value || !len)
        return JSI_ERR(JS_EINVAL, 0, "name, value and len are required");
    if (!m->hlen || !jsi_hdr_get(m->hdr, m->hlen, name, value, len))
        return JSI_ERR(JS_ENOTFOUND, 0, "no header %s", name);
    return 0;
}
