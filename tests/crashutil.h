/*
 * crashutil.h - the process-crash harness the crash tests share: fork a
 * child that works on a store and reports each step as a fixed-size
 * record on a pipe, feed the records to the parent's model as they come,
 * and SIGKILL the child a given time after it reports that it opened the
 * store. Header-only; needs check.h and testutil_fs.h (tu_now).
 */
#ifndef CRASHUTIL_H
#define CRASHUTIL_H

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define TU_CRASH_REC_MAX 256

/*
 * Run child(ctx, fd) in a forked process; it writes records of rsz bytes
 * (<= TU_CRASH_REC_MAX), each starting with a uint32_t type, to fd. The
 * parent passes each to on_rec(ctx, rec) in order. delay_us after the
 * first record of type open_type the child is killed. Returns 1 if the
 * kill happened while it ran, 0 if it ended first.
 */
static inline int tu_crash_child(void (*child)(void *ctx, int fd),
                                 void (*on_rec)(void *ctx, const void *rec),
                                 void *ctx, size_t rsz, uint32_t open_type,
                                 unsigned delay_us) {
    uint8_t rec[TU_CRASH_REC_MAX];
    int fds[2], opened = 0, killed = 0;
    double kill_at = 0;
    ck_assert_uint_le(rsz, sizeof rec);
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        child(ctx, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    for (;;) {
        if (opened && !killed && tu_now() >= kill_at) {
            kill(pid, SIGKILL);
            killed = 1;
        }
        ssize_t got = read(fds[0], rec, rsz);
        if (got == 0)
            break;
        ck_assert_int_eq(got, (ssize_t)rsz);
        uint32_t type;
        memcpy(&type, rec, sizeof type);
        if (type == open_type && !opened) {
            opened = 1;
            kill_at = tu_now() + delay_us / 1e6;
        }
        on_rec(ctx, rec);
    }
    if (!killed)
        kill(pid, SIGKILL);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return killed;
}

#endif
