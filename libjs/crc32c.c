/*
 * crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), with
 * the SSE4.2 crc32 instruction on x86-64 CPUs that have it and a portable
 * slice-by-8 table version everywhere else. Both give identical results;
 * tests compare them.
 *
 * Convention: the register starts at ~0 and the result is inverted, so
 * that a crc of 0 means "nothing yet" and calls chain:
 * jsi_crc32c(jsi_crc32c(0, a, n), b, m) is the crc of a followed by b.
 */
#include <pthread.h>

#include "util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define JSI_CRC32C_X86 1
#include <nmmintrin.h>
#endif

/* Not in util.h on purpose: tests compare the two implementations. */
uint32_t jsi_crc32c_sw(uint32_t crc, const void *buf, size_t len);
int jsi_crc32c_hw_available(void);

#define CRC32C_POLY UINT32_C(0x82F63B78)

/* table[k][b]: the crc register after feeding byte b followed by k zero
 * bytes into a zero register. Built once by crc32c_init. */
static uint32_t table[8][256];
static uint32_t (*crc32c_impl)(uint32_t, const void *, size_t);
static int have_hw;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int i = 0; i < 8; i++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
        table[0][b] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int b = 0; b < 256; b++) {
            uint32_t prev = table[k - 1][b];
            table[k][b] = (prev >> 8) ^ table[0][prev & 0xff];
        }
}

static uint32_t crc32c_sw_raw(uint32_t c, const uint8_t *p, size_t len) {
    while (len >= 8) {
        uint32_t lo = c ^ jsi_get32(p);
        uint32_t hi = jsi_get32(p + 4);
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
            table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
            table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    return c;
}

static uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len) {
    return ~crc32c_sw_raw(~crc, buf, len);
}

#ifdef JSI_CRC32C_X86
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len) {
    const uint8_t *p = buf;
    uint64_t c = (uint32_t)~crc;
    /* Unaligned 8-byte loads cost nothing extra on x86-64; records are
     * short, so a byte loop to align would cost more than it saves. */
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    if (len >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        c = _mm_crc32_u32((uint32_t)c, w);
        p += 4;
        len -= 4;
    }
    while (len > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    return ~(uint32_t)c;
}
#endif

static void crc32c_init(void) {
    uint32_t (*impl)(uint32_t, const void *, size_t) = crc32c_sw;
    build_tables();
#ifdef JSI_CRC32C_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        have_hw = 1;
        impl = crc32c_hw;
    }
#endif
    __atomic_store_n(&crc32c_impl, impl, __ATOMIC_RELEASE);
}

uint32_t jsi_crc32c(uint32_t crc, const void *buf, size_t len) {
    /* Once set, the pointer never changes: skip pthread_once on the hot
     * path (a checksum per record). */
    uint32_t (*impl)(uint32_t, const void *, size_t) =
        __atomic_load_n(&crc32c_impl, __ATOMIC_ACQUIRE);
    if (!impl) {
        pthread_once(&crc32c_once, crc32c_init);
        impl = crc32c_impl;
    }
    return impl(crc, buf, len);
}

uint32_t jsi_crc32c_sw(uint32_t crc, const void *buf, size_t len) {
    pthread_once(&crc32c_once, crc32c_init);
    return crc32c_sw(crc, buf, len);
}

int jsi_crc32c_hw_available(void) {
    pthread_once(&crc32c_once, crc32c_init);
    return have_hw;
}
