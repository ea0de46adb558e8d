/*
 * consumer_config_file.c - the file image of a durable consumer's config.
 *
 *   u8[4]  magic "JSCC"
 *   u32    format version (1)
 *   u32    flags (0)
 *   u64    consumer id
 *   i64    created, ns since the epoch
 *   u32    body length
 *   body   one field after another: varint tag, varint length, value.
 *          Strings are their bytes (no NUL), present only when set;
 *          numbers are 8 bytes; tags and the array fields are listed in
 *          consumer_config_int.h. Every number field is required; a tag
 *          this version does not know is skipped. Last, the number of
 *          copies the store keeps of the file (JSI_CCFG_FILE_COPIES;
 *          files from before the second copy have none: one).
 *   u32    CRC-32C of everything before it
 *
 * Integers are little-endian. Nothing read is trusted: the frame, the
 * checksum, every length and every field are checked, then the config is
 * normalised again; any fault is JS_ECORRUPT.
 */
#include <inttypes.h>
#include <limits.h>

#include "consumer_config.h"
#include "consumer_config_int.h"
#include "rangeset.h"
#include "util.h"

#define FILE_VERSION 1
#define HDR_LEN 32     /* magic, version, flags, id, created, body length */
#define TRAILER_LEN 4  /* CRC-32C */

static const uint8_t file_magic[4] = {'J', 'S', 'C', 'C'};

/* ---- encode ------------------------------------------------------------ */

static int put_head(jsi_buf *b, unsigned tag, size_t n) {
    uint8_t h[20];
    size_t k = jsi_uvarint_put(h, tag);
    k += jsi_uvarint_put(h + k, n);
    return jsi_buf_append(b, h, k);
}

static int put_tlv(jsi_buf *b, unsigned tag, const void *v, size_t n) {
    int rc = put_head(b, tag, n);
    return rc ? rc : jsi_buf_append(b, v, n);
}

static int put_num(jsi_buf *b, unsigned tag, int64_t v) {
    uint8_t x[8];
    jsi_put64(x, (uint64_t)v);
    return put_tlv(b, tag, x, 8);
}

static int put_fields(jsi_buf *b, const js_consumer_config *c) {
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < jsi_ccfg_num_fields; i++) {
        const jsi_ccfg_field *f = &jsi_ccfg_fields[i];
        const char *s = f->kind == JSI_CCFG_K_STR ? jsi_ccfg_str(c, f) : NULL;
        if (f->kind != JSI_CCFG_K_STR)
            rc = put_num(b, f->tag, jsi_ccfg_num(c, f));
        else if (s)
            rc = put_tlv(b, f->tag, s, strlen(s));
    }
    return rc;
}

static int put_backoff(jsi_buf *b, const js_consumer_config *c) {
    int rc = c->num_backoff ? put_head(b, JSI_CCFG_T_BACKOFF,
                                       8 * c->num_backoff) : 0;
    for (size_t i = 0; rc == 0 && i < c->num_backoff; i++) {
        uint8_t x[8];
        jsi_put64(x, (uint64_t)c->backoff[i]);
        rc = jsi_buf_append(b, x, 8);
    }
    return rc;
}

static int put_meta(jsi_buf *b, const char *k, const char *v) {
    uint8_t h[10];
    size_t kl = strlen(k), vl = strlen(v), hl = jsi_uvarint_put(h, kl);
    int rc = put_head(b, JSI_CCFG_T_METADATA, hl + kl + vl);
    if (rc == 0)
        rc = jsi_buf_append(b, h, hl);
    if (rc == 0)
        rc = jsi_buf_append(b, k, kl);
    return rc ? rc : jsi_buf_append(b, v, vl);
}

static int put_arrays(jsi_buf *b, const js_consumer_config *c) {
    int rc = put_backoff(b, c);
    for (size_t i = 0; rc == 0 && i < c->num_filter_subjects; i++)
        rc = put_tlv(b, JSI_CCFG_T_FILTERS, c->filter_subjects[i],
                     strlen(c->filter_subjects[i]));
    for (size_t i = 0; rc == 0 && i < c->num_metadata; i++)
        rc = put_meta(b, c->metadata[2 * i], c->metadata[2 * i + 1]);
    return rc;
}

/* A body field, not a config field, so a reader of format version 1 that
 * predates it skips it and still reads the file. */
static int put_copies(jsi_buf *b) {
    uint8_t n = JSI_CCFG_FILE_COPIES;
    return put_tlv(b, JSI_CCFG_T_COPIES, &n, 1);
}

static int put_header(jsi_buf *b, uint64_t id, int64_t created) {
    uint8_t h[HDR_LEN];
    memcpy(h, file_magic, 4);
    jsi_put32(h + 4, FILE_VERSION);
    jsi_put32(h + 8, 0);
    jsi_put64(h + 12, id);
    jsi_put64(h + 20, (uint64_t)created);
    jsi_put32(h + 28, 0); /* body length, set once known */
    return jsi_buf_append(b, h, HDR_LEN);
}

int jsi_ccfg_file_encode(uint64_t id, int64_t created, const jsi_ccfg *cfg,
                         jsi_buf *b) {
    size_t start = b->len;
    if (!cfg->c.name)
        return JSI_ERR(JS_EINVAL, 0, "name: a stored consumer config needs "
                       "its name");
    int rc = put_header(b, id, created);
    if (rc == 0)
        rc = put_fields(b, &cfg->c);
    if (rc == 0)
        rc = put_arrays(b, &cfg->c);
    if (rc == 0)
        rc = put_copies(b);
    if (rc == 0 && b->len - start - HDR_LEN > UINT32_MAX)
        rc = JSI_ERR(JS_EINVAL, 0, "config: too large to store");
    if (rc == 0) {
        uint8_t x[4];
        jsi_put32(b->p + start + 28, (uint32_t)(b->len - start - HDR_LEN));
        jsi_put32(x, jsi_crc32c(0, b->p + start, b->len - start));
        rc = jsi_buf_append(b, x, 4);
    }
    if (rc)
        b->len = start;
    return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "consumer config file") : rc;
}

/* ---- decode ------------------------------------------------------------ */

static int corrupt(const char *why) {
    return JSI_ERR(JS_ECORRUPT, 0, "consumer config file: %s", why);
}

/* An owned copy of v[0..n) as a string (a NUL inside is corruption). */
static int take_str(const uint8_t *v, size_t n, char **s) {
    *s = NULL;
    if (n && memchr(v, 0, n))
        return corrupt("NUL byte in a string");
    return (*s = jsi_strndup((const char *)v, n)) ? 0 : JS_ENOMEM;
}

static const jsi_ccfg_field *field_of(unsigned tag) {
    for (size_t i = 0; i < jsi_ccfg_num_fields; i++)
        if (jsi_ccfg_fields[i].tag == tag)
            return &jsi_ccfg_fields[i];
    return NULL;
}

static int dec_field(js_consumer_config *c, const jsi_ccfg_field *f,
                     const uint8_t *v, size_t n) {
    if (f->kind == JSI_CCFG_K_STR) {
        char *s;
        int rc = n ? take_str(v, n, &s) : corrupt("empty string field");
        if (rc == 0)
            jsi_ccfg_set_str(c, f, s);
        return rc;
    }
    if (n != 8)
        return corrupt("number field of the wrong size");
    int64_t x = (int64_t)jsi_get64(v);
    if (f->kind == JSI_CCFG_K_INT && (x < INT_MIN || x > INT_MAX))
        return corrupt("number out of range");
    jsi_ccfg_set_num(c, f, x);
    return 0;
}

static int dec_backoff(jsi_ccfg *cfg, const uint8_t *v, size_t n) {
    if (n == 0 || n % 8)
        return corrupt("backoff of the wrong size");
    if (!(cfg->backoff = jsi_malloc(n)))
        return JS_ENOMEM;
    for (size_t i = 0; i < n / 8; i++)
        cfg->backoff[i] = (int64_t)jsi_get64(v + 8 * i);
    cfg->c.backoff = cfg->backoff;
    cfg->c.num_backoff = n / 8;
    return 0;
}

/* Grow an owned string array by `more` NULL entries. */
static int grow(char ***v, size_t have, size_t more) {
    char **nv = jsi_realloc(*v, (have + more) * sizeof *nv);
    if (!nv)
        return JS_ENOMEM;
    for (size_t i = 0; i < more; i++)
        nv[have + i] = NULL;
    *v = nv;
    return 0;
}

static int dec_filter(jsi_ccfg *cfg, const uint8_t *v, size_t n) {
    js_consumer_config *c = &cfg->c;
    int rc = grow(&cfg->filters, c->num_filter_subjects, 1);
    if (rc)
        return rc;
    c->filter_subjects = (const char *const *)cfg->filters;
    rc = take_str(v, n, &cfg->filters[c->num_filter_subjects]);
    if (rc == 0)
        c->num_filter_subjects++;
    return rc;
}

static int dec_meta(jsi_ccfg *cfg, const uint8_t *v, size_t n) {
    js_consumer_config *c = &cfg->c;
    uint64_t kl;
    size_t k = jsi_uvarint_get(v, n, &kl);
    if (!k || kl > n - k)
        return corrupt("metadata key length out of bounds");
    int rc = grow(&cfg->metadata, 2 * c->num_metadata, 2);
    if (rc)
        return rc;
    c->metadata = (const char *const *)cfg->metadata;
    char **pair = cfg->metadata + 2 * c->num_metadata;
    c->num_metadata++; /* the pair is NULL until filled: freed either way */
    rc = take_str(v + k, (size_t)kl, &pair[0]);
    return rc ? rc : take_str(v + k + kl, n - k - (size_t)kl, &pair[1]);
}

/* Tags 1..63 that may appear once; seen marks them. */
static int once(uint64_t *seen, unsigned tag) {
    uint64_t bit = UINT64_C(1) << tag;
    if (*seen & bit)
        return corrupt("field repeated");
    *seen |= bit;
    return 0;
}

static int dec_tag(jsi_ccfg *cfg, uint64_t *seen, unsigned tag,
                   const uint8_t *v, size_t n) {
    const jsi_ccfg_field *f = field_of(tag);
    int rc = 0;
    if (f || tag == JSI_CCFG_T_BACKOFF || tag == JSI_CCFG_T_COPIES)
        rc = once(seen, tag);
    if (rc)
        return rc;
    if (f)
        return dec_field(&cfg->c, f, v, n);
    switch (tag) {
    case JSI_CCFG_T_BACKOFF: return dec_backoff(cfg, v, n);
    case JSI_CCFG_T_FILTERS: return dec_filter(cfg, v, n);
    case JSI_CCFG_T_METADATA: return dec_meta(cfg, v, n);
    case JSI_CCFG_T_COPIES:
        return n == 1 && v[0] ? 0 : corrupt("bad number of copies");
    default: return 0; /* a later version's field */
    }
}

static int dec_body(const uint8_t *p, size_t n, jsi_ccfg *out,
                    uint64_t *seen) {
    size_t off = 0;
    int rc = 0;
    while (rc == 0 && off < n) {
        uint64_t tag, len;
        size_t k = jsi_uvarint_get(p + off, n - off, &tag);
        size_t k2 = k ? jsi_uvarint_get(p + off + k, n - off - k, &len) : 0;
        if (!k || !k2 || len > n - off - k - k2)
            return corrupt("field length out of bounds");
        if (tag == 0 || tag > 63)
            return corrupt("bad field tag");
        off += k + k2;
        rc = dec_tag(out, seen, (unsigned)tag, p + off, (size_t)len);
        off += (size_t)len;
    }
    return rc;
}

static int check_frame(const uint8_t *p, size_t n) {
    if (n < HDR_LEN + TRAILER_LEN)
        return corrupt("truncated");
    if (memcmp(p, file_magic, 4) != 0)
        return corrupt("bad magic");
    if (jsi_get32(p + 28) != n - HDR_LEN - TRAILER_LEN)
        return corrupt("length does not match the file size");
    if (jsi_get32(p + n - 4) != jsi_crc32c(0, p, n - 4))
        return corrupt("checksum mismatch");
    if (jsi_get32(p + 4) != FILE_VERSION || jsi_get32(p + 8) != 0)
        return corrupt("unknown format version or flags");
    return 0;
}

/* Every number field was present, the name too, and the rules hold. */
static int check_decoded(jsi_ccfg *out, uint64_t seen) {
    for (size_t i = 0; i < jsi_ccfg_num_fields; i++)
        if (jsi_ccfg_fields[i].kind != JSI_CCFG_K_STR &&
            !(seen & (UINT64_C(1) << jsi_ccfg_fields[i].tag)))
            return corrupt("a number field is missing");
    if (!out->c.name)
        return corrupt("no consumer name");
    int rc = jsi_ccfg_normalize(out, NULL);
    if (rc && rc != JS_ENOMEM)
        rc = JSI_ERR(JS_ECORRUPT, 0, "consumer config file: invalid config "
                     "(%s)", js_errmsg());
    return rc;
}

int jsi_ccfg_file_decode(const uint8_t *p, size_t n, uint64_t *id,
                         int64_t *created, jsi_ccfg *out) {
    uint64_t seen = 0;
    memset(out, 0, sizeof *out);
    out->sample_pct = -1;
    out->c.version = JS_CONSUMER_CONFIG_VERSION;
    int rc = check_frame(p, n);
    if (rc == 0)
        rc = dec_body(p + HDR_LEN, n - HDR_LEN - TRAILER_LEN, out, &seen);
    if (rc == 0)
        rc = check_decoded(out, seen);
    if (rc) {
        jsi_ccfg_free(out);
        return rc == JS_ENOMEM ? JSI_ERR(rc, 0, "consumer config file") : rc;
    }
    *id = jsi_get64(p + 12);
    *created = (int64_t)jsi_get64(p + 20);
    return 0;
}

unsigned jsi_ccfg_file_copies(const uint8_t *p, size_t n) {
    size_t off = HDR_LEN, end = n >= HDR_LEN + TRAILER_LEN ? n - TRAILER_LEN
                                                           : 0;
    while (off < end) {
        uint64_t tag, len;
        size_t k = jsi_uvarint_get(p + off, end - off, &tag);
        size_t k2 = k ? jsi_uvarint_get(p + off + k, end - off - k, &len) : 0;
        if (!k || !k2 || len > end - off - k - k2)
            break;
        off += k + k2;
        if (tag == JSI_CCFG_T_COPIES && len == 1)
            return p[off];
        off += (size_t)len;
    }
    return 1;
}
