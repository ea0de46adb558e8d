/*
 * headers.c - NATS header blocks.
 *
 * Grammar accepted by jsi_hdr_validate (every line ends in CRLF):
 *
 *   block  = "NATS/1.0" [ " " 3DIGIT [ " " desc ] ] CRLF *field CRLF
 *   field  = key ":" value CRLF
 *   key    = 1*(any byte except controls, space, DEL and ':')
 *   value  = *(any byte except NUL, CR and LF)
 *   desc   = *(any byte except NUL, CR and LF)
 *
 * Nothing may follow the terminating empty line. Values are returned with
 * surrounding spaces and tabs trimmed.
 */
#include "headers.h"
#include "util.h"

#define HDR_PREFIX "NATS/1.0"
#define HDR_PREFIX_LEN 8
#define NATS_BAD_REQUEST 10003
#define NATS_HDR_TOO_BIG 10097

#define HDR_ERR(...) JSI_ERR(JS_EBAD_HEADER, NATS_BAD_REQUEST, __VA_ARGS__)

/* A cursor over the CRLF-terminated lines of a block. */
typedef struct line_iter {
    const uint8_t *p;
    size_t n;
    size_t pos;
} line_iter;

/* The next line (without its CRLF) into *line and *len. Returns 1, 0 at the
 * end of the block, or a negative code for a line that is not properly
 * terminated (the detail recorded). */
static int line_next(line_iter *it, const uint8_t **line, size_t *len) {
    size_t start = it->pos;

    if (start >= it->n)
        return 0;
    for (size_t i = start; i < it->n; i++) {
        uint8_t c = it->p[i];
        if (c == '\0')
            return HDR_ERR("header block: NUL byte at offset %zu", i);
        if (c == '\n')
            return HDR_ERR("header block: bare LF at offset %zu", i);
        if (c != '\r')
            continue;
        if (i + 1 >= it->n || it->p[i + 1] != '\n')
            return HDR_ERR("header block: CR not followed by LF at offset %zu",
                           i);
        *line = it->p + start;
        *len = i - start;
        it->pos = i + 2;
        return 1;
    }
    return HDR_ERR("header block: missing CRLF at the end of the block");
}

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static int check_status_line(const uint8_t *l, size_t len) {
    if (len < HDR_PREFIX_LEN || memcmp(l, HDR_PREFIX, HDR_PREFIX_LEN) != 0)
        return HDR_ERR("header block: does not start with \"NATS/1.0\"");
    if (len == HDR_PREFIX_LEN)
        return 0;
    l += HDR_PREFIX_LEN;
    len -= HDR_PREFIX_LEN;
    if (len < 4 || l[0] != ' ' || !is_digit(l[1]) || !is_digit(l[2]) ||
        !is_digit(l[3]))
        return HDR_ERR("header block: \"NATS/1.0\" must be followed by "
                       "CRLF or a space and a 3-digit status code");
    if (len > 4 && l[4] != ' ')
        return HDR_ERR("header block: status code must be 3 digits");
    return 0;
}

static int check_field(const uint8_t *l, size_t len, size_t lineno) {
    const uint8_t *colon = memchr(l, ':', len);

    if (colon == NULL)
        return HDR_ERR("header block: line %zu has no ':'", lineno);
    if (colon == l)
        return HDR_ERR("header block: line %zu has an empty key", lineno);
    for (const uint8_t *k = l; k < colon; k++)
        if (*k <= 0x20 || *k == 0x7f)
            return HDR_ERR("header block: key on line %zu contains a space "
                           "or control character", lineno);
    return 0;
}

int jsi_hdr_validate(const void *h, size_t n) {
    line_iter it = {h, n, 0};
    const uint8_t *l;
    size_t len, lineno = 1;
    int rc;

    if (n == 0)
        return 0;
    if (n > JS_MAX_HDR_LEN)
        return JSI_ERR(JS_EHDR_SIZE, NATS_HDR_TOO_BIG,
                       "header block: %zu bytes, over the %d byte limit", n,
                       JS_MAX_HDR_LEN);
    if (n < HDR_PREFIX_LEN || memcmp(h, HDR_PREFIX, HDR_PREFIX_LEN) != 0)
        return HDR_ERR("header block: does not start with \"NATS/1.0\"");
    rc = line_next(&it, &l, &len);
    if (rc <= 0)
        return rc < 0 ? rc : HDR_ERR("header block: empty");
    rc = check_status_line(l, len);
    if (rc != 0)
        return rc;
    for (;;) {
        lineno++;
        rc = line_next(&it, &l, &len);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return HDR_ERR("header block: missing the terminating empty line");
        if (len == 0)
            break;
        rc = check_field(l, len, lineno);
        if (rc != 0)
            return rc;
    }
    if (it.pos != n)
        return HDR_ERR("header block: %zu bytes after the terminating empty "
                       "line", n - it.pos);
    return 0;
}

static int is_blank(uint8_t c) { return c == ' ' || c == '\t'; }

/* Scans without recording errors: the block is meant to be valid, and a
 * damaged one simply yields "not found" rather than a read past its end. */
int jsi_hdr_get(const void *h, size_t n, const char *key, const char **val,
                size_t *vlen) {
    const uint8_t *p = h;
    size_t klen = strlen(key), pos;
    const uint8_t *eol;

    if (n == 0 || klen == 0)
        return 0;
    eol = memchr(p, '\n', n);
    if (eol == NULL)
        return 0;
    pos = (size_t)(eol - p) + 1;
    while (pos < n) {
        const uint8_t *l = p + pos, *v, *end;
        size_t len;

        eol = memchr(l, '\n', n - pos);
        if (eol == NULL)
            return 0;
        len = (size_t)(eol - l);
        pos += len + 1;
        if (len > 0 && l[len - 1] == '\r')
            len--;
        if (len == 0)
            return 0;
        if (len <= klen || l[klen] != ':' || memcmp(l, key, klen) != 0)
            continue;
        v = l + klen + 1;
        end = l + len;
        while (v < end && is_blank(*v))
            v++;
        while (end > v && is_blank(end[-1]))
            end--;
        *val = (const char *)v;
        *vlen = (size_t)(end - v);
        return 1;
    }
    return 0;
}

int jsi_hdr_build(const char *const *kv, uint8_t **out, size_t *outlen) {
    static const char crlf[] = "\r\n";
    size_t total = HDR_PREFIX_LEN + 4;
    uint8_t *buf, *w;

    /* A NULL in either position ends the list, so an odd-length list
     * never makes us read past its terminator. */
    for (size_t i = 0; kv != NULL && kv[i] != NULL && kv[i + 1] != NULL;
         i += 2)
        total += strlen(kv[i]) + 2 + strlen(kv[i + 1]) + 2;
    buf = jsi_malloc(total);
    if (buf == NULL)
        return JSI_ERR(JS_ENOMEM, 0, "header block: out of memory");
    w = buf;
    memcpy(w, HDR_PREFIX "\r\n", HDR_PREFIX_LEN + 2);
    w += HDR_PREFIX_LEN + 2;
    for (size_t i = 0; kv != NULL && kv[i] != NULL && kv[i + 1] != NULL;
         i += 2) {
        size_t kl = strlen(kv[i]), vl = strlen(kv[i + 1]);
        memcpy(w, kv[i], kl);
        w += kl;
        memcpy(w, ": ", 2);
        w += 2;
        memcpy(w, kv[i + 1], vl);
        w += vl;
        memcpy(w, crlf, 2);
        w += 2;
    }
    memcpy(w, crlf, 2);
    *out = buf;
    *outlen = total;
    return 0;
}

int jsi_parse_u64(const char *s, size_t n, uint64_t *out) {
    uint64_t v = 0;

    if (n == 0)
        return JSI_ERR(JS_EINVAL, 0, "number: empty");
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - (unsigned)'0';
        if (d > 9)
            return JSI_ERR(JS_EINVAL, 0, "number: \"%.*s\" is not decimal",
                           (int)JSI_MIN(n, 64), s);
        if (v > (UINT64_MAX - d) / 10)
            return JSI_ERR(JS_EINVAL, 0, "number: \"%.*s\" is too large",
                           (int)JSI_MIN(n, 64), s);
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
