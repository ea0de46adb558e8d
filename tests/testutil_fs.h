/*
 * testutil_fs.h - file-system helpers for the storage tests: temporary
 * directories, recursive copy and removal, whole-file reads and writes,
 * byte surgery, and the store layout (store.c):
 *
 *   <store>/catalog
 *   <store>/streams/<16-hex id>/<16-hex blkno>.blk   block files
 *   <store>/streams/<16-hex id>/index                checkpoint
 *
 * Header-only and self-contained (POSIX and libc only); every function is
 * static inline so a test that uses a few of them stays warning-free.
 * Paths are returned malloc'd; the caller frees them.
 */
#ifndef TESTUTIL_FS_H
#define TESTUTIL_FS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* printf into a malloc'd string; aborts on ENOMEM (tests only). */
static inline char *tu_path(const char *fmt, ...) {
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    return s;
}

/* A fresh directory /tmp/<prefix>.XXXXXX. */
static inline char *tu_mkdtemp(const char *prefix) {
    char *p = tu_path("/tmp/%s.XXXXXX", prefix);
    if (!mkdtemp(p)) {
        perror("mkdtemp");
        abort();
    }
    return p;
}

static inline int tu_rm_cb(const char *path, const struct stat *st, int flag,
                           struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* rm -rf path (missing is fine). */
static inline void tu_rm_rf(const char *path) {
    nftw(path, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline int tu_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static inline int64_t tu_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* Read a whole file into a malloc'd buffer (NUL-terminated beyond *len).
 * 0 or -1. */
static inline int tu_read_file(const char *path, uint8_t **buf, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *b = malloc(n + 1);
    if (!b) {
        close(fd);
        return -1;
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r <= 0) {
            free(b);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

static inline int tu_write_all(int fd, const void *buf, size_t len) {
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Create or replace a file with these bytes (mode 0600). 0 or -1. The
 * file is overwritten and then cut to length rather than opened with
 * O_TRUNC: ext4 starts writeback at once on a truncate-to-zero of a file
 * with data, which makes tight rewrite loops slow. */
static inline int tu_write_file(const char *path, const void *buf,
                                size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = tu_write_all(fd, buf, len);
    if (rc == 0 && ftruncate(fd, (off_t)len) != 0)
        rc = -1;
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

/* Append bytes to an existing file. 0 or -1. */
static inline int tu_append(const char *path, const void *buf, size_t len) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = tu_write_all(fd, buf, len);
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

static inline int tu_truncate(const char *path, int64_t size) {
    return truncate(path, (off_t)size);
}

/* XOR the byte at off with mask (in place). 0 or -1. */
static inline int tu_flip_byte(const char *path, int64_t off, uint8_t mask) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    uint8_t c;
    if (fd < 0)
        return -1;
    int rc = pread(fd, &c, 1, (off_t)off) == 1 ? 0 : -1;
    c ^= mask;
    if (rc == 0 && pwrite(fd, &c, 1, (off_t)off) != 1)
        rc = -1;
    close(fd);
    return rc;
}

static inline int tu_copy_file(const char *from, const char *to) {
    uint8_t *b;
    size_t n;
    if (tu_read_file(from, &b, &n) != 0)
        return -1;
    int rc = tu_write_file(to, b, n);
    free(b);
    return rc;
}

/* cp -r from to: `to` must not exist. The store's LOCK file is skipped (a
 * copy never holds the lock). 0 or -1. */
static inline int tu_copy_tree(const char *from, const char *to) {
    DIR *d = opendir(from);
    if (!d)
        return -1;
    int rc = mkdir(to, 0700);
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strcmp(e->d_name, "LOCK"))
            continue;
        char *src = tu_path("%s/%s", from, e->d_name);
        char *dst = tu_path("%s/%s", to, e->d_name);
        struct stat st;
        if (lstat(src, &st) != 0)
            rc = -1;
        else if (S_ISDIR(st.st_mode))
            rc = tu_copy_tree(src, dst);
        else if (S_ISREG(st.st_mode))
            rc = tu_copy_file(src, dst);
        free(src);
        free(dst);
    }
    closedir(d);
    return rc;
}

/* 1 if the file at path holds exactly buf[0..len). */
static inline int tu_file_equals(const char *path, const uint8_t *buf,
                                 size_t len) {
    uint8_t *b;
    size_t n;
    if (tu_read_file(path, &b, &n) != 0)
        return 0;
    int eq = n == len && memcmp(b, buf, len) == 0;
    free(b);
    return eq;
}

/* Make directory `to` identical to `from` (LOCK files aside), rewriting
 * only the files that differ and removing what `from` lacks. Far cheaper
 * than rm -rf and a fresh copy on a journalling file system, where each
 * directory removal costs a journal commit. 0 or -1. */
static inline int tu_restore_tree(const char *from, const char *to) {
    DIR *d = opendir(from);
    if (!d)
        return -1;
    int rc = 0;
    if (!tu_exists(to))
        rc = mkdir(to, 0700);
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strcmp(e->d_name, "LOCK"))
            continue;
        char *src = tu_path("%s/%s", from, e->d_name);
        char *dst = tu_path("%s/%s", to, e->d_name);
        struct stat st;
        if (lstat(src, &st) != 0) {
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            rc = tu_restore_tree(src, dst);
        } else if (S_ISREG(st.st_mode)) {
            uint8_t *b;
            size_t n;
            rc = tu_read_file(src, &b, &n);
            if (rc == 0 && !tu_file_equals(dst, b, n))
                rc = tu_write_file(dst, b, n);
            if (rc == 0)
                free(b);
        }
        free(src);
        free(dst);
    }
    closedir(d);
    /* Remove what the source does not have. */
    d = rc == 0 ? opendir(to) : NULL;
    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strcmp(e->d_name, "LOCK"))
            continue;
        char *src = tu_path("%s/%s", from, e->d_name);
        char *dst = tu_path("%s/%s", to, e->d_name);
        struct stat st;
        if (lstat(src, &st) != 0)
            tu_rm_rf(dst);
        free(src);
        free(dst);
    }
    if (d)
        closedir(d);
    return rc;
}

/* Number of entries in a directory (not . and ..), or -1. */
static inline int tu_dir_count(const char *path) {
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* The directory of the store's only file-backed stream, or NULL if there
 * is not exactly one. */
static inline char *tu_stream_dir(const char *store) {
    char *sd = tu_path("%s/streams", store);
    DIR *d = opendir(sd);
    char *found = NULL;
    int n = 0;
    struct dirent *e;
    if (d) {
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            if (n++ == 0)
                found = tu_path("%s/%s", sd, e->d_name);
        }
        closedir(d);
    }
    free(sd);
    if (n != 1) {
        free(found);
        return NULL;
    }
    return found;
}

static inline int tu_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The block numbers in a stream directory, sorted; *nos is malloc'd.
 * Returns the count (or -1). */
static inline int tu_block_files(const char *sdir, uint64_t **nos) {
    DIR *d = opendir(sdir);
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    *nos = NULL;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len != 20 || strcmp(e->d_name + 16, ".blk") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = realloc(v, cap * sizeof *v);
            if (!v)
                abort();
        }
        v[n++] = strtoull(e->d_name, NULL, 16);
    }
    closedir(d);
    qsort(v, n, sizeof *v, tu_cmp_u64);
    *nos = v;
    return (int)n;
}

static inline char *tu_block_path(const char *sdir, uint64_t no) {
    return tu_path("%s/%016" PRIx64 ".blk", sdir, no);
}

/* Path of the last (highest-numbered) block file, or NULL. */
static inline char *tu_last_block(const char *sdir) {
    uint64_t *nos;
    int n = tu_block_files(sdir, &nos);
    char *p = n > 0 ? tu_block_path(sdir, nos[n - 1]) : NULL;
    free(nos);
    return p;
}

/* Monotonic time in seconds. */
static inline double tu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The process's resident set size in KiB (Linux /proc), or -1. */
static inline long tu_rss_kb(void) {
    long pages = -1, rss = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* splitmix64: a small deterministic PRNG. */
static inline uint64_t tu_rng(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

#endif
