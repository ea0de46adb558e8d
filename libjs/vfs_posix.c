/*
 * vfs_posix.c - the "posix" storage backend: files and directories through
 * POSIX system calls.
 *
 * Every descriptor is opened close-on-exec and is never 0, 1 or 2, so a
 * stray write to stdin/stdout/stderr (say, by a process that closed them
 * before opening a store) can never land in a store file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "vfs.h"

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef O_DIRECTORY
#define O_DIRECTORY 0
#endif
#ifndef F_DUPFD_CLOEXEC
#define F_DUPFD_CLOEXEC F_DUPFD
#endif
#ifndef EDQUOT
#define EDQUOT ENOSPC
#endif

#define PX_FILE_MODE 0600
#define PX_DIR_MODE 0700
#define PX_FLAGS (JS_VFS_READ | JS_VFS_WRITE | JS_VFS_CREATE | JS_VFS_EXCL)
/* Largest single read or write handed to the kernel (Linux moves at most
 * about 2 GiB per call anyway; the loops carry on from where it stopped). */
#define PX_CHUNK ((size_t)1 << 30)

typedef struct px_file {
    js_vfs_file base; /* first: the library sees only this */
    int fd;
    char *path;       /* for error details */
} px_file;

/* ---- errors ---------------------------------------------------------- */

/* strerror, without strerror()'s shared static buffer. */
static const char *px_strerror(int e, char *buf, size_t n) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(e, buf, n);
#else
    if (strerror_r(e, buf, n) != 0)
        snprintf(buf, n, "error %d", e);
    return buf;
#endif
}

static int px_code(int e) {
    switch (e) {
    case ENOSPC:
    case EDQUOT:
        return JS_ENOSPC;
    case ENOENT:
        return JS_ENOTFOUND;
    case EEXIST:
        return JS_EEXIST;
    default:
        return JS_EIO;
    }
}

/* Record errno e for "op path" and return its JS_E* code. */
static int px_fail(int e, const char *op, const char *path) {
    char msg[128];
    return JSI_ERR(px_code(e), 0, "%s %s: %s", op, path,
                   px_strerror(e, msg, sizeof msg));
}

/* ---- descriptors ----------------------------------------------------- */

/* Move fd to 3 or above so it can never be mistaken for a standard
 * stream. Returns the new fd, or -1 with errno set (fd is closed). */
static int px_raise_fd(int fd) {
    int nfd, e;

    if (fd > STDERR_FILENO)
        return fd;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    e = errno;
    close(fd);
    if (nfd < 0) {
        errno = e;
        return -1;
    }
    if (O_CLOEXEC == 0 || F_DUPFD_CLOEXEC == F_DUPFD)
        (void)fcntl(nfd, F_SETFD, FD_CLOEXEC);
    return nfd;
}

/* open(2) with EINTR retried, close-on-exec, and the result kept off
 * fds 0-2. -1 with errno set on failure. */
static int px_open_fd(const char *path, int oflags, mode_t mode) {
    int fd;

    do {
        fd = open(path, oflags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    if (O_CLOEXEC == 0)
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return px_raise_fd(fd);
}

/* "" names the current directory, as it does in a joined path. */
static const char *px_dir(const char *dir) {
    return dir[0] ? dir : ".";
}

/* ---- files ----------------------------------------------------------- */

static int px_close(js_vfs_file *file) {
    px_file *f = (px_file *)file;
    int rc = 0;

    /* Not retried on EINTR: on Linux the descriptor is gone either way. */
    if (close(f->fd) != 0 && errno != EINTR)
        rc = px_fail(errno, "close", f->path);
    f->fd = -1;
    jsi_free(f->path);
    f->path = NULL;
    return rc;
}

static int px_read(js_vfs_file *file, void *buf, size_t n, uint64_t off,
                   size_t *nread) {
    px_file *f = (px_file *)file;
    size_t got = 0;

    *nread = 0;
    if (off > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX - off)
        return JSI_ERR(JS_EINVAL, 0, "read %s: offset %llu out of range",
                       f->path, (unsigned long long)off);
    while (got < n) {
        size_t want = JSI_MIN(n - got, PX_CHUNK);
        ssize_t r = pread(f->fd, (char *)buf + got, want,
                          (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return px_fail(errno, "read", f->path);
        }
        if (r == 0)
            break; /* end of file */
        got += (size_t)r;
    }
    *nread = got;
    return 0;
}

static int px_write(js_vfs_file *file, const void *buf, size_t n,
                    uint64_t off) {
    px_file *f = (px_file *)file;
    size_t done = 0;

    if (off > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX - off)
        return JSI_ERR(JS_ENOSPC, 0, "write %s: offset %llu out of range",
                       f->path, (unsigned long long)off);
    while (done < n) {
        size_t want = JSI_MIN(n - done, PX_CHUNK);
        ssize_t r = pwrite(f->fd, (const char *)buf + done, want,
                           (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return px_fail(errno, "write", f->path);
        }
        if (r == 0) /* no progress and no error: don't spin */
            return px_fail(EIO, "write", f->path);
        done += (size_t)r;
    }
    return 0;
}

static int px_truncate(js_vfs_file *file, uint64_t size) {
    px_file *f = (px_file *)file;
    int r;

    if (size > (uint64_t)INT64_MAX)
        return JSI_ERR(JS_ENOSPC, 0, "truncate %s: size %llu out of range",
                       f->path, (unsigned long long)size);
    do {
        r = ftruncate(f->fd, (off_t)size);
    } while (r != 0 && errno == EINTR);
    return r == 0 ? 0 : px_fail(errno, "truncate", f->path);
}

/* Flush data (and the size) of fd to stable storage. */
static int px_fdsync(int fd) {
    int r;

    do {
#if defined(__APPLE__) && defined(F_FULLFSYNC)
        /* fsync on macOS does not reach the platter; F_FULLFSYNC does. */
        r = fcntl(fd, F_FULLFSYNC);
        if (r != 0 && errno != EINTR)
            r = fsync(fd);
#elif defined(_POSIX_SYNCHRONIZED_IO) && _POSIX_SYNCHRONIZED_IO > 0
        r = fdatasync(fd);
#else
        r = fsync(fd);
#endif
    } while (r != 0 && errno == EINTR);
    return r;
}

static int px_sync(js_vfs_file *file) {
    px_file *f = (px_file *)file;

    return px_fdsync(f->fd) == 0 ? 0 : px_fail(errno, "sync", f->path);
}

static int px_size(js_vfs_file *file, uint64_t *size) {
    px_file *f = (px_file *)file;
    struct stat st;

    if (fstat(f->fd, &st) != 0)
        return px_fail(errno, "stat", f->path);
    *size = (uint64_t)st.st_size;
    return 0;
}

static int px_control(js_vfs_file *file, int op, void *arg) {
    px_file *f = (px_file *)file;

    (void)arg;
    return JSI_ERR(JS_ENOTSUP, 0, "control %s: op %d not supported by posix",
                   f->path, op);
}

static const js_vfs_io px_io = {
    JS_VFS_IO_VERSION, px_close,  px_read,    px_write,
    px_truncate,       px_sync,   px_size,    px_control,
};

static int px_oflags(int flags) {
    int o = (flags & JS_VFS_WRITE) ? O_RDWR : O_RDONLY;

    if (flags & JS_VFS_CREATE)
        o |= O_CREAT;
    if (flags & JS_VFS_EXCL)
        o |= O_EXCL;
    return o;
}

static int px_open(js_vfs *vfs, const char *path, int flags,
                   js_vfs_file *file) {
    px_file *f = (px_file *)file;
    struct stat st;
    char *copy;
    int fd, e = 0;

    (void)vfs;
    if ((flags & ~PX_FLAGS) || !(flags & (JS_VFS_READ | JS_VFS_WRITE)) ||
        ((flags & JS_VFS_EXCL) && !(flags & JS_VFS_CREATE)))
        return JSI_ERR(JS_EINVAL, 0, "open %s: bad flags 0x%x", path, flags);
    copy = jsi_strdup(path);
    if (!copy)
        return JSI_ERR(JS_ENOMEM, 0, "open %s: out of memory", path);
    fd = px_open_fd(path, px_oflags(flags), PX_FILE_MODE);
    if (fd < 0)
        e = errno;
    else if (fstat(fd, &st) != 0)
        e = errno;
    else if (S_ISDIR(st.st_mode))
        /* A read-only open(2) of a directory succeeds; a store file never
         * is one, so refuse it here rather than fail on the first read. */
        e = EISDIR;
    if (e != 0) {
        if (fd >= 0)
            close(fd);
        jsi_free(copy);
        return px_fail(e, "open", path);
    }
    f->fd = fd;
    f->path = copy;
    f->base.io = &px_io;
    return 0;
}

/* ---- names and directories ------------------------------------------- */

static int px_remove(js_vfs *vfs, const char *path) {
    (void)vfs;
    return unlink(path) == 0 ? 0 : px_fail(errno, "remove", path);
}

static int px_rename(js_vfs *vfs, const char *from, const char *to) {
    char msg[128];

    (void)vfs;
    if (rename(from, to) == 0)
        return 0;
    return JSI_ERR(px_code(errno), 0, "rename %s to %s: %s", from, to,
                   px_strerror(errno, msg, sizeof msg));
}

static int px_mkdir(js_vfs *vfs, const char *path) {
    (void)vfs;
    return mkdir(path, PX_DIR_MODE) == 0 ? 0 : px_fail(errno, "mkdir", path);
}

static int px_rmdir(js_vfs *vfs, const char *path) {
    (void)vfs;
    return rmdir(path) == 0 ? 0 : px_fail(errno, "rmdir", path);
}

static int px_list(js_vfs *vfs, const char *dir,
                   int (*cb)(void *ctx, const char *name), void *ctx) {
    const char *d = px_dir(dir);
    struct dirent *de;
    DIR *dp;
    int rc = 0;

    (void)vfs;
    dp = opendir(d);
    if (!dp)
        return px_fail(errno, "list", d);
    for (;;) {
        errno = 0;
        de = readdir(dp);
        if (!de) {
            if (errno != 0)
                rc = px_fail(errno, "list", d);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = cb(ctx, de->d_name);
        if (rc != 0)
            break;
    }
    closedir(dp);
    return rc;
}

static int px_sync_dir(js_vfs *vfs, const char *dir) {
    const char *d = px_dir(dir);
    int fd, rc = 0;

    (void)vfs;
    fd = px_open_fd(d, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return px_fail(errno, "sync_dir", d);
    /* A file system that cannot sync directories says EINVAL; there is
     * nothing better to do there, so that is not a failure. */
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = px_fail(errno, "sync_dir", d);
    close(fd);
    return rc;
}

/* The token of a held lock is its descriptor plus one (so never NULL).
 * flock() locks belong to the open file description, so a second open of
 * the same path, even from this process, cannot take the lock again. */
static int px_lock(js_vfs *vfs, const char *path, void **token) {
    int fd, r;

    (void)vfs;
    *token = NULL;
    fd = px_open_fd(path, O_RDWR | O_CREAT, PX_FILE_MODE);
    if (fd < 0)
        return px_fail(errno, "lock", path);
    do {
        r = flock(fd, LOCK_EX | LOCK_NB);
    } while (r != 0 && errno == EINTR);
    if (r != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK || e == EAGAIN)
            return JSI_ERR(JS_ELOCKED, 0, "lock %s: held by another opener",
                           path);
        return px_fail(e, "lock", path);
    }
    *token = (void *)(intptr_t)(fd + 1);
    return 0;
}

static int px_unlock(js_vfs *vfs, void *token) {
    int fd = (int)((intptr_t)token - 1);

    (void)vfs;
    if (!token || fd < 0)
        return JSI_ERR(JS_EINVAL, 0, "unlock: bad token");
    /* Closing the only descriptor of the description releases the lock. */
    if (close(fd) != 0 && errno != EINTR)
        return px_fail(errno, "unlock", "lock file");
    return 0;
}

static js_vfs px_vfs = {
    JS_VFS_VERSION, sizeof(px_file), "posix",   NULL,
    px_open,        px_remove,       px_rename, px_mkdir,
    px_rmdir,       px_list,         px_sync_dir, px_lock,
    px_unlock,
};

js_vfs *jsi_vfs_posix(void) {
    return &px_vfs;
}
