/*
 * msg.c - js_msg: a message copied out of a stream, with its accessors.
 */
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
    char subj[]; /* subject, NUL, headers, payload */
};

int jsi_msg_from_rec(const jsi_rec *r, js_msg **out);

int jsi_msg_from_rec(const jsi_rec *r, js_msg **out) {
    js_msg *m = jsi_malloc(sizeof *m + r->slen + 1 + r->hlen + r->dlen);
    if (!m)
        return JSI_ERR(JS_ENOMEM, 0, "message");
    m->magic = MSG_MAGIC;
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

JS_API void js_msg_free(js_msg *m) {
    if (!ok(m))
        return;
    m->magic = 0;
    jsi_free(m);
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
