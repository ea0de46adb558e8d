/*
 * fuzz_util.c - checksum fix-ups, images, operation streams and the clock
 * the fuzz targets share (see fuzz_util.h).
 */
#include "fuzz_util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rangeset.h"
#include "record.h"
#include "util.h"
#include "vfs.h"

/* ---- checksums ------------------------------------------------------------ */

static void put_crc(uint8_t *at, const uint8_t *p, size_t n) {
    jsi_put32(at, jsi_crc32c(0, p, n));
}

void fuzz_fix_block(uint8_t *p, size_t n) {
    if (n < JSI_BLK_HDR_LEN)
        return;
    put_crc(p + 28, p, 28);
    size_t o = JSI_BLK_HDR_LEN;
    while (o + JSI_REC_HDR_LEN <= n) {
        if (jsi_get32(p + o) != JSI_REC_MAGIC) {
            o++;
            continue;
        }
        uint32_t len = jsi_get32(p + o + 4);
        int whole = len >= JSI_REC_HDR_LEN && len <= n - o;
        if (whole)
            put_crc(p + o + 32, p + o + JSI_REC_HDR_LEN,
                    len - JSI_REC_HDR_LEN);
        /* A record running past the end keeps a valid header: a torn
         * tail as a crash leaves it. */
        put_crc(p + o + 36, p + o, 36);
        o += whole ? len : 1;
    }
}

void fuzz_fix_trailer(uint8_t *p, size_t n) {
    if (n >= 4)
        put_crc(p + n - 4, p, n - 4);
}

/* consumer_config_file.c: a 32-byte header whose last field is the body
 * length, the body, a 4-byte CRC. */
void fuzz_fix_ccfg(uint8_t *p, size_t n) {
    if (n < 36)
        return;
    jsi_put32(p + 28, (uint32_t)(n - 36));
    fuzz_fix_trailer(p, n);
}

void fuzz_fix_cstate(uint8_t *p, size_t n) {
    size_t pos = 16;
    while (pos + 9 <= n) {
        uint32_t len = jsi_get32(p + pos);
        if (len > n - pos - 9)
            return;
        put_crc(p + pos + 4, p + pos + 8, 1 + (size_t)len);
        pos += 9 + (size_t)len;
    }
}

/* Offsets of the checkpoint's tail number and size and of its tail CRC
 * (checkpoint.h): 0 if the header does not parse. */
static size_t ckpt_tail(const uint8_t *p, size_t n, uint64_t *no,
                        uint64_t *size) {
    size_t off = 16;
    uint64_t h[10];
    if (n < 20)
        return 0;
    for (int k = 0; k < 10; k++) {
        size_t used = jsi_uvarint_get(p + off, n - 4 - off, &h[k]);
        if (!used)
            return 0;
        off += used;
    }
    if (off + 4 > n - 4)
        return 0;
    *no = h[8];
    *size = h[9];
    return off;
}

uint64_t fuzz_ckpt_tail_no(const uint8_t *p, size_t n) {
    uint64_t no = 0, size = 0;
    return ckpt_tail(p, n, &no, &size) ? no : 0;
}

void fuzz_fix_ckpt(uint8_t *p, size_t n, const uint8_t *blk, size_t blk_len) {
    uint64_t no, size;
    size_t at = ckpt_tail(p, n, &no, &size);
    if (at && blk && size <= blk_len) {
        size_t end = (size_t)size;
        size_t start = end > JSI_BLK_HDR_LEN + 64 ? end - 64 : JSI_BLK_HDR_LEN;
        jsi_put32(p + at, end > start ? jsi_crc32c(0, blk + start, end - start)
                                      : 0);
    }
    fuzz_fix_trailer(p, n);
}

/* ---- images -------------------------------------------------------------- */

static int marker_at(const uint8_t *b, size_t n, size_t i) {
    return n - i >= 3 && memcmp(b + i, "@F:", 3) == 0 &&
           (i == 0 || b[i - 1] == '\n');
}

static size_t next_marker(const uint8_t *b, size_t n, size_t from) {
    for (size_t i = from; i < n; i++)
        if (marker_at(b, n, i))
            return i;
    return n;
}

void fuzz_image_parse(const uint8_t *data, size_t size, fuzz_image *im) {
    memset(im, 0, sizeof *im);
    if (size == 0)
        return;
    im->mode = data[0];
    const uint8_t *b = data + 1;
    size_t n = size - 1, i = next_marker(b, n, 0);
    while (i < n) {
        const uint8_t *nl = memchr(b + i, '\n', n - i);
        if (!nl)
            return;
        size_t plen = (size_t)(nl - (b + i)) - 3;
        size_t start = (size_t)(nl - b) + 1;
        size_t next = next_marker(b, n, start);
        size_t end = next < n ? next - 1 : n; /* the '\n' before a marker */
        if (end < start)
            end = start;
        if (plen > 0 && plen < sizeof im->f[0].path &&
            im->n < FUZZ_MAX_FILES) {
            fuzz_file *f = &im->f[im->n++];
            memcpy(f->path, b + i + 3, plen);
            f->path[plen] = 0;
            f->len = end - start;
            f->data = malloc(f->len ? f->len : 1);
            if (!f->data)
                fuzz_fail("out of memory");
            memcpy(f->data, b + start, f->len);
        }
        i = next;
    }
}

void fuzz_image_free(fuzz_image *im) {
    for (size_t i = 0; i < im->n; i++)
        free(im->f[i].data);
    im->n = 0;
}

fuzz_file *fuzz_image_get(fuzz_image *im, const char *path) {
    for (size_t i = 0; i < im->n; i++)
        if (strcmp(im->f[i].path, path) == 0)
            return &im->f[i];
    return NULL;
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void fix_ckpt_file(fuzz_image *im, fuzz_file *f) {
    char blk[300];
    size_t dlen = (size_t)(base_name(f->path) - f->path);
    uint64_t no = fuzz_ckpt_tail_no(f->data, f->len);
    snprintf(blk, sizeof blk, "%.*s%016" PRIx64 ".blk", (int)dlen, f->path,
             no);
    fuzz_file *b = fuzz_image_get(im, blk);
    fuzz_fix_ckpt(f->data, f->len, b ? b->data : NULL, b ? b->len : 0);
}

void fuzz_image_fix(fuzz_image *im) {
    for (size_t i = 0; i < im->n; i++) {
        fuzz_file *f = &im->f[i];
        if (ends_with(f->path, ".blk"))
            fuzz_fix_block(f->data, f->len);
        else if (strcmp(base_name(f->path), "catalog") == 0)
            fuzz_fix_trailer(f->data, f->len);
        else if (ends_with(f->path, ".cfg"))
            fuzz_fix_ccfg(f->data, f->len);
        else if (ends_with(f->path, ".state"))
            fuzz_fix_cstate(f->data, f->len);
    }
    for (size_t i = 0; i < im->n; i++)
        if (strcmp(base_name(im->f[i].path), "index") == 0)
            fix_ckpt_file(im, &im->f[i]);
}

static void write_one(js_vfs *vfs, const char *path, const fuzz_file *f) {
    char *slash = strrchr(path, '/');
    js_vfs_file *h = NULL;
    if (slash && slash != path) {
        *slash = 0;
        jsi_vfs_mkdirs(vfs, path);
        *slash = '/';
    }
    if (jsi_vfs_open(vfs, path, JS_VFS_WRITE | JS_VFS_CREATE, &h) != 0)
        return;
    if (f->len)
        h->io->write(h, f->data, f->len, 0);
    jsi_vfs_close(h);
}

void fuzz_image_write(const fuzz_image *im, js_vfs *vfs, const char *root) {
    char path[600];
    jsi_vfs_mkdirs(vfs, root);
    for (size_t i = 0; i < im->n; i++) {
        if (im->f[i].path[0] == '!')
            continue;
        snprintf(path, sizeof path, "%s/%s", root, im->f[i].path);
        write_one(vfs, path, &im->f[i]);
    }
}

/* ---- operations -------------------------------------------------------- */

int fuzz_ops_more(const fuzz_ops *o) { return o->off < o->n; }

uint8_t fuzz_u8(fuzz_ops *o) { return o->off < o->n ? o->p[o->off++] : 0; }

uint16_t fuzz_u16(fuzz_ops *o) {
    uint16_t v = fuzz_u8(o);
    return (uint16_t)(v | (uint16_t)fuzz_u8(o) << 8);
}

uint64_t fuzz_u64(fuzz_ops *o) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)fuzz_u8(o) << (8 * i);
    return v;
}

size_t fuzz_str(fuzz_ops *o, char *buf, size_t max) {
    size_t n = fuzz_u8(o);
    if (n > max)
        n = max;
    if (n > o->n - o->off)
        n = o->n - o->off;
    memcpy(buf, o->p + o->off, n);
    o->off += n;
    buf[n] = 0;
    return n;
}

/* ---- time -------------------------------------------------------------- */

static int64_t now_ns;

int64_t fuzz_clock(void *ctx) {
    (void)ctx;
    return now_ns;
}

void fuzz_clock_set(int64_t ns) { now_ns = ns; }

void fuzz_clock_advance(int64_t ns) {
    if (ns > 0 && now_ns <= INT64_MAX - ns)
        now_ns += ns;
}

void fuzz_fail(const char *what) {
    fprintf(stderr, "fuzz: invariant broken: %s\n", what);
    abort();
}

int fuzz_tracing(void) {
    static int on = -1;
    if (on < 0)
        on = getenv("FUZZ_DEBUG") != NULL;
    return on;
}

void fuzz_trace(const char *fmt, ...) {
    va_list ap;
    if (!fuzz_tracing())
        return;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}
