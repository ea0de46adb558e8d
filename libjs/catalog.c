/*
 * catalog.c - the catalogue file: every stream's id, creation time and
 * config. Replaced atomically (temp file, sync, rename, sync dir).
 *
 *   u8[8]  magic "JSCAT\r\n\x1a"
 *   u32    version (1)
 *   u32    flags (0)
 *   varint next stream id
 *   varint stream count; per stream: varint id, varint created (as u64),
 *          varint config length, config (stream_config.c TLV)
 *   u32    CRC-32C of everything before it
 */
#include "rangeset.h"
#include "store.h"
#include "util.h"

static const uint8_t cat_magic[8] = {'J', 'S', 'C', 'A', 'T', '\r', '\n', 0x1a};
#define CAT_VERSION 1

static int put_uv(jsi_buf *b, uint64_t v) {
    uint8_t t[10];
    return jsi_buf_append(b, t, jsi_uvarint_put(t, v));
}

int jsi_catalog_encode(uint64_t next_id, const jsi_cat_entry *e, size_t n,
                       jsi_buf *b) {
    uint8_t h[8];
    int rc = jsi_buf_append(b, cat_magic, 8);
    jsi_put32(h, CAT_VERSION);
    jsi_put32(h + 4, 0);
    if (rc == 0)
        rc = jsi_buf_append(b, h, 8);
    if (rc == 0)
        rc = put_uv(b, next_id);
    if (rc == 0)
        rc = put_uv(b, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        jsi_buf cfg = {0};
        rc = jsi_scfg_encode(&e[i].cfg, &cfg);
        if (rc == 0)
            rc = put_uv(b, e[i].id);
        if (rc == 0)
            rc = put_uv(b, (uint64_t)e[i].created);
        if (rc == 0)
            rc = put_uv(b, cfg.len);
        if (rc == 0)
            rc = jsi_buf_append(b, cfg.p, cfg.len);
        jsi_buf_free(&cfg);
    }
    if (rc == 0) {
        jsi_put32(h, jsi_crc32c(0, b->p, b->len));
        rc = jsi_buf_append(b, h, 4);
    }
    return rc;
}

void jsi_catalog_free(jsi_cat_entry *e, size_t n) {
    for (size_t i = 0; e && i < n; i++)
        jsi_scfg_free(&e[i].cfg);
    jsi_free(e);
}

static size_t get_uv(const uint8_t *p, size_t len, size_t *off, uint64_t *v) {
    size_t k = *off <= len ? jsi_uvarint_get(p + *off, len - *off, v) : 0;
    *off += k;
    return k;
}

static int entries_unique(const jsi_cat_entry *e, size_t n) {
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < i; k++)
            if (e[i].id == e[k].id || strcmp(e[i].cfg.c.name, e[k].cfg.c.name) == 0)
                return 0;
    return 1;
}

int jsi_catalog_decode(const uint8_t *p, size_t len, uint64_t *next_id,
                       jsi_cat_entry **entries, size_t *n) {
    uint64_t count, id, created, clen;
    *entries = NULL;
    *n = 0;
    if (len < 20 || memcmp(p, cat_magic, 8) != 0 ||
        jsi_get32(p + len - 4) != jsi_crc32c(0, p, len - 4) ||
        jsi_get32(p + 8) != CAT_VERSION || jsi_get32(p + 12) != 0)
        return JS_ECORRUPT;
    len -= 4;
    size_t off = 16;
    if (!get_uv(p, len, &off, next_id) || !get_uv(p, len, &off, &count) ||
        count > (len - off) / 4)
        return JS_ECORRUPT;
    jsi_cat_entry *e = jsi_calloc(count ? (size_t)count : 1, sizeof *e);
    if (!e)
        return JS_ENOMEM;
    int rc = 0;
    size_t i = 0;
    for (; rc == 0 && i < count; i++) {
        if (!get_uv(p, len, &off, &id) || !get_uv(p, len, &off, &created) ||
            !get_uv(p, len, &off, &clen) || clen > len - off ||
            id == 0 || id >= *next_id) {
            rc = JS_ECORRUPT;
            break;
        }
        e[i].id = id;
        e[i].created = (int64_t)created;
        rc = jsi_scfg_decode(p + off, (size_t)clen, &e[i].cfg);
        off += (size_t)clen;
    }
    if (rc == 0 && (off != len || !entries_unique(e, (size_t)count)))
        rc = JS_ECORRUPT;
    if (rc) {
        jsi_catalog_free(e, i);
        return rc == JS_ENOMEM ? rc : JS_ECORRUPT;
    }
    *entries = e;
    *n = (size_t)count;
    return 0;
}
