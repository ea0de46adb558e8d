/*
 * fuzz_util.h - what the fuzz targets share.
 *
 * Most on-disk formats carry CRC-32C checksums, which a mutating fuzzer
 * almost never gets right, so it would only ever test the checksum check.
 * The fix-up functions here recompute every checksum of an image in place,
 * the way a correct writer would have, so mutations reach the decoders
 * behind them. A target applies them when bit 0 of its input's first byte
 * (the mode byte) is set, and leaves the image alone otherwise, so damaged
 * checksums stay covered too.
 *
 * Multi-file inputs (a stream directory, a whole store) are "images": after
 * the mode byte, sections that each start with "@F:" path "\n" at the start
 * of the input or of a line; the section's bytes run to the next such
 * marker. A path starting with '!' is not a file but a script for the
 * target (e.g. "!ops").
 *
 * Everything here is deterministic: a target that runs twice on the same
 * input does the same things.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "jetstream.h"

/* The libFuzzer entry point every target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MODE_FIX_CRC 0x01u

/* ---- checksums --------------------------------------------------------- */

/* Block file: the header's CRC, and each record's body and header CRCs
 * wherever a record's magic starts and its length fits. */
void fuzz_fix_block(uint8_t *p, size_t n);
/* Files whose last 4 bytes are the CRC-32C of everything before them
 * (catalogue, checkpoint, consumer config). */
void fuzz_fix_trailer(uint8_t *p, size_t n);
/* A consumer config file: its body length field, then its trailer. */
void fuzz_fix_ccfg(uint8_t *p, size_t n);
/* A consumer state log: each record's CRC while the records fit. */
void fuzz_fix_cstate(uint8_t *p, size_t n);
/* A checkpoint: the tail-window CRC it keeps of the tail block (whose
 * bytes are blk[0..blk_len), or NULL if there is no such file), then its
 * trailer. */
void fuzz_fix_ckpt(uint8_t *p, size_t n, const uint8_t *blk, size_t blk_len);
/* The tail block number a checkpoint names (0 if it does not parse). */
uint64_t fuzz_ckpt_tail_no(const uint8_t *p, size_t n);

/* ---- images -------------------------------------------------------------- */

typedef struct fuzz_file {
    char path[256];
    uint8_t *data; /* malloc'd copy, may be fixed up */
    size_t len;
} fuzz_file;

#define FUZZ_MAX_FILES 64

typedef struct fuzz_image {
    unsigned mode;
    size_t n;
    fuzz_file f[FUZZ_MAX_FILES];
} fuzz_image;

/* Split an input into its sections (see above); files past
 * FUZZ_MAX_FILES, and paths too long, are dropped. */
void fuzz_image_parse(const uint8_t *data, size_t size, fuzz_image *im);
void fuzz_image_free(fuzz_image *im);
/* The section with that path (exact), or NULL. */
fuzz_file *fuzz_image_get(fuzz_image *im, const char *path);
/* Fix every file's checksums by its name: *.blk, index, catalog, *.cfg,
 * *.state. Checkpoints last: they hold a CRC of their tail block. */
void fuzz_image_fix(fuzz_image *im);
/* Write every file (not the '!' sections) under root on vfs, creating
 * directories as needed. Paths are relative to root. */
void fuzz_image_write(const fuzz_image *im, js_vfs *vfs, const char *root);

/* ---- a byte stream of operations ---------------------------------------- */

typedef struct fuzz_ops {
    const uint8_t *p;
    size_t n, off;
} fuzz_ops;

int fuzz_ops_more(const fuzz_ops *o);
uint8_t fuzz_u8(fuzz_ops *o);   /* 0 past the end */
uint16_t fuzz_u16(fuzz_ops *o);
uint64_t fuzz_u64(fuzz_ops *o);
/* Up to max bytes as a NUL-terminated string into buf (size max + 1):
 * a length byte, then the bytes. */
size_t fuzz_str(fuzz_ops *o, char *buf, size_t max);

/* ---- time ------------------------------------------------------------- */

/* A clock the target moves: js_open_opts.clock / jsi_ms_cfg.clock. */
int64_t fuzz_clock(void *ctx);
void fuzz_clock_set(int64_t ns);
void fuzz_clock_advance(int64_t ns);

/* Abort with a message: a broken invariant is a crash to the fuzzer. */
void fuzz_fail(const char *what);
/* printf to stderr when FUZZ_DEBUG is set in the environment: a trace of
 * the operations for triage (FUZZ_DEBUG=1 build-fuzz-replay/fuzz/fuzz_X
 * crash-file). */
void fuzz_trace(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
int fuzz_tracing(void);

#endif
