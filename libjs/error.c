/*
 * error.c - return-code names, the library version, and the calling
 * thread's error detail (message, NATS code, where it was recorded).
 *
 * The detail is thread-local so that concurrent callers never see each
 * other's messages: js_errmsg() after a failed call describes that call.
 */
#include <stdio.h>

#include "util.h"

#define JSI_ERRMSG_MAX 512

/* The calling thread's last recorded failure. file/line say where it was
 * recorded; they are kept for debuggers, not shown to callers. */
typedef struct jsi_err_state {
    char msg[JSI_ERRMSG_MAX];
    int nats;
    int line;
    const char *file;
} jsi_err_state;

static __thread jsi_err_state err_state;

int jsi_err_set(int rc, int nats, const char *file, int line,
                const char *fmt, ...) {
    /* Format into a local first: an argument may be js_errmsg() itself,
     * as when a caller adds context to a lower layer's message. */
    char tmp[JSI_ERRMSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(tmp, sizeof tmp, fmt, ap) < 0)
        tmp[0] = '\0';
    va_end(ap);
    memcpy(err_state.msg, tmp, sizeof tmp);
    err_state.nats = nats;
    err_state.file = file;
    err_state.line = line;
    return rc;
}

void jsi_err_clear(void) {
    err_state.msg[0] = '\0';
    err_state.nats = 0;
    err_state.file = NULL;
    err_state.line = 0;
}

JS_API const char *js_version(void) { return JS_VERSION_STRING; }

JS_API const char *js_errmsg(void) { return err_state.msg; }

JS_API int js_errcode_nats(void) { return err_state.nats; }

JS_API const char *js_strerror(int rc) {
    switch (rc) {
    case JS_OK: return "success";
    case JS_EINVAL: return "invalid argument";
    case JS_ENOMEM: return "out of memory";
    case JS_EIO: return "I/O error";
    case JS_ENOSPC: return "storage full";
    case JS_ECORRUPT: return "stored data is corrupt";
    case JS_ELOCKED: return "store is locked by another user";
    case JS_EMISUSE: return "bad, stale or closed handle";
    case JS_EFAILED: return "store failed after an I/O error; reopen it";
    case JS_ENOTFOUND: return "not found";
    case JS_ESTREAM_NOT_FOUND: return "stream not found";
    case JS_EMSG_NOT_FOUND: return "message not found";
    case JS_ENO_STREAM: return "no stream matches subject";
    case JS_ESTREAM_EXISTS:
        return "stream name already in use with a different configuration";
    case JS_ESUBJECT_OVERLAP: return "subjects overlap with an existing stream";
    case JS_EUPDATE: return "stream configuration update not allowed";
    case JS_ESTREAM_MISMATCH: return "expected stream does not match";
    case JS_EWRONG_LAST_SEQ: return "wrong last sequence";
    case JS_EWRONG_LAST_MSGID: return "wrong last msg ID";
    case JS_EMAX_MSGS: return "maximum messages exceeded";
    case JS_EMAX_BYTES: return "maximum bytes exceeded";
    case JS_EMAX_MSGS_PER_SUBJECT: return "maximum messages per subject exceeded";
    case JS_EMSG_SIZE: return "message size exceeds maximum allowed";
    case JS_EHDR_SIZE: return "header size exceeds maximum allowed of 64k";
    case JS_ESEALED: return "stream is sealed";
    case JS_EDELETE_DENIED: return "message delete is denied on this stream";
    case JS_EPURGE_DENIED: return "stream purge is denied on this stream";
    case JS_EROLLUP: return "rollup not permitted";
    case JS_EMAX_CONSUMERS: return "maximum consumers limit reached";
    case JS_EBAD_HEADER: return "malformed or contradictory headers";
    case JS_ENOTSUP: return "operation not supported";
    case JS_EEXIST: return "already exists";
    case JS_ETIMEOUT: return "no message before the timeout";
    case JS_ECONSUMER_NOT_FOUND: return "consumer not found";
    case JS_ECONSUMER_EXISTS: return "consumer already exists";
    case JS_EMAX_WAITING: return "exceeded max waiting pull requests";
    case JS_EBUSY: return "in use";
    case JS_EKEY_NOT_FOUND: return "key not found";
    case JS_EKEY_EXISTS: return "key exists";
    default: return "unknown error";
    }
}
