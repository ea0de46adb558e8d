/*
 * jetstream.h - libjetstream public API.
 *
 * libjetstream gives an application NATS JetStream's streams in-process,
 * durable, with no broker. This header is the whole public API: anything not
 * declared here is not API.
 *
 * Conventions
 * -----------
 * - Every fallible function returns int: 0 on success or a negative JS_E*
 *   code. js_strerror() names a code; js_errmsg() gives the calling thread's
 *   detail for its last failure; js_errcode_nats() gives the NATS JetStream
 *   API error code (err_code) for that failure where NATS has one.
 * - Config and option structs start with `unsigned version` and have an
 *   initializer macro (JS_X_INIT). Zero means "the NATS default". The
 *   library copies only the caller's version-sized prefix, so code compiled
 *   against an older header keeps working.
 * - Inputs are copied before a call returns. Anything the library returns is
 *   freed with the matching js_*_free() / js_*_release().
 * - Timestamps are nanoseconds since the Unix epoch (UTC); durations are
 *   nanoseconds, as in NATS's JSON. A duration or timeout whose deadline
 *   would pass INT64_MAX means "never" (it does not wrap).
 *
 * Threads
 * -------
 * Every handle may be used from several threads at once. The library starts
 * no threads of its own accord: timers (max_age, the duplicate window,
 * INTERVAL syncs, ack_wait, inactive_threshold) are applied when the store
 * is touched, and push delivery runs in js_dispatch() or in the dispatcher
 * threads the application asks for with js_dispatcher_start(). Calls that
 * write may block on disk I/O; reads block only on the locks of the stream
 * they read. Callbacks are never called with a library lock held.
 *
 * Licensed under the Apache License, Version 2.0; see COPYING.
 */
#ifndef JETSTREAM_H
#define JETSTREAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The one export macro: public symbols have default visibility, all else is
 * hidden (the library builds with -fvisibility=hidden). */
#if defined(_WIN32)
#define JS_API __declspec(dllexport)
#elif defined(__GNUC__)
#define JS_API __attribute__((visibility("default")))
#else
#define JS_API
#endif

/* The library version; the Makefile reads it from these lines. */
#define JS_VERSION_MAJOR 1
#define JS_VERSION_MINOR 1
#define JS_VERSION_PATCH 0
#define JS_VERSION_STRING "1.1.0"
#define JS_VERSION_NUMBER \
    (JS_VERSION_MAJOR * 10000 + JS_VERSION_MINOR * 100 + JS_VERSION_PATCH)

/*
 * Return codes. Values are fixed forever; new ones are only appended.
 */
#define JS_OK 0
#define JS_EINVAL (-1)              /* bad argument or configuration */
#define JS_ENOMEM (-2)              /* out of memory */
#define JS_EIO (-3)                 /* I/O error from the storage backend */
#define JS_ENOSPC (-4)              /* storage full */
#define JS_ECORRUPT (-5)            /* stored data failed its checksum */
#define JS_ELOCKED (-6)             /* store is open elsewhere */
#define JS_EMISUSE (-7)             /* bad, stale or closed handle */
#define JS_EFAILED (-8)             /* the store stopped writing after an I/O
                                       failure; close and reopen the store */
#define JS_ENOTFOUND (-9)           /* file or item not found */
#define JS_ESTREAM_NOT_FOUND (-10)  /* no such stream (NATS 10059) */
#define JS_EMSG_NOT_FOUND (-11)     /* no such message (NATS 10037; 10043
                                       from deletes) */
#define JS_ENO_STREAM (-12)         /* no stream takes this subject */
#define JS_ESTREAM_EXISTS (-13)     /* name in use, different config (10058) */
#define JS_ESUBJECT_OVERLAP (-14)   /* subjects overlap another stream (10065) */
#define JS_EUPDATE (-15)            /* field may not change on update (10052;
                                       consumers 10012) */
#define JS_ESTREAM_MISMATCH (-16)   /* Nats-Expected-Stream differs (10060) */
#define JS_EWRONG_LAST_SEQ (-17)    /* an expected last sequence differs (10071) */
#define JS_EWRONG_LAST_MSGID (-18)  /* Nats-Expected-Last-Msg-Id differs (10070) */
#define JS_EMAX_MSGS (-19)          /* discard new: max_msgs reached (10077) */
#define JS_EMAX_BYTES (-20)         /* discard new: max_bytes reached (10077) */
#define JS_EMAX_MSGS_PER_SUBJECT (-21) /* discard new per subject (10077) */
#define JS_EMSG_SIZE (-22)          /* message over max_msg_size (10054) */
#define JS_EHDR_SIZE (-23)          /* header block over 64 KiB (10097) */
#define JS_ESEALED (-24)            /* stream is sealed (10109) */
#define JS_EDELETE_DENIED (-25)     /* deny_delete is set (10057) */
#define JS_EPURGE_DENIED (-26)      /* deny_purge is set (10110) */
#define JS_EROLLUP (-27)            /* rollup not permitted or invalid (10111) */
#define JS_EMAX_CONSUMERS (-28)     /* max_consumers reached (10026) */
#define JS_EBAD_HEADER (-29)        /* malformed or contradictory headers */
#define JS_ENOTSUP (-30)            /* operation not supported (e.g. by a VFS) */
#define JS_EEXIST (-31)             /* file or item already exists */
#define JS_ETIMEOUT (-32)           /* nothing arrived before the timeout
                                       (NATS 408/404 on a pull request) */
#define JS_ECONSUMER_NOT_FOUND (-33) /* no such consumer (10014; 10149 from
                                        js_consumer_update) */
#define JS_ECONSUMER_EXISTS (-34)   /* name in use, different config (10148) */
#define JS_EMAX_WAITING (-35)       /* max_waiting pull calls already waiting
                                       (NATS 409 Exceeded MaxWaiting) */
#define JS_EBUSY (-36)              /* in use: a push consumer's subscriber,
                                       dispatcher already running (10105) */
#define JS_EKEY_NOT_FOUND (-37)     /* KV: no such key, or it is deleted */
#define JS_EKEY_EXISTS (-38)        /* KV: create of a key that has a value */

/* Sync policies: when a write is durable. */
#define JS_SYNC_DEFAULT 0  /* stream: the store's policy; store: ALWAYS */
#define JS_SYNC_ALWAYS 1   /* a call returns once its data is on stable
                              storage; concurrent callers share one sync */
#define JS_SYNC_INTERVAL 2 /* data handed to the OS before a call returns,
                              synced by the first call after sync_interval,
                              by js_flush() and by js_close() */
#define JS_SYNC_NONE 3     /* data handed to the OS; the OS syncs it */

/* Stream retention, discard and storage (NATS enum order). */
#define JS_RETENTION_LIMITS 0
#define JS_RETENTION_INTEREST 1
#define JS_RETENTION_WORKQUEUE 2
#define JS_DISCARD_OLD 0
#define JS_DISCARD_NEW 1
#define JS_STORAGE_FILE 0
#define JS_STORAGE_MEMORY 1

/* Hard limits. */
#define JS_MAX_NAME_LEN 255        /* stream names, bytes */
#define JS_MAX_SUBJECT_LEN 4096    /* subjects, bytes */
#define JS_MAX_HDR_LEN 65535       /* header block, bytes */
#define JS_MAX_PAYLOAD (32 * 1024 * 1024) /* subject+headers+data, bytes */
#define JS_MAX_DESCRIPTION_LEN 4096

/* Opaque handles. */
typedef struct js_store js_store;
typedef struct js_stream js_stream;
typedef struct js_msg js_msg;
typedef struct js_consumer js_consumer;
typedef struct js_sub js_sub;

/* ------------------------------------------------------------------ */
/* Library                                                             */
/* ------------------------------------------------------------------ */

/* The run-time library version, "MAJOR.MINOR.PATCH". Never fails. */
JS_API const char *js_version(void);

/* A static, human-readable name for a return code. Never NULL. */
JS_API const char *js_strerror(int rc);

/* The calling thread's detail message for its last failed call: which
 * field, header or file was at fault. Meaningful right after a call failed;
 * every call that returns an int code resets it on entry (js_strerror(),
 * js_version() and the js_msg_* accessors leave it alone). Borrowed; valid
 * until the thread's next call into the library. Never NULL. */
JS_API const char *js_errmsg(void);

/* The NATS JetStream API error code (e.g. 10071 for a wrong last sequence)
 * for the calling thread's last failed call, or 0 where NATS has none. */
JS_API int js_errcode_nats(void);

/* ------------------------------------------------------------------ */
/* Storage backends (VFS)                                              */
/* ------------------------------------------------------------------ */
/*
 * Everything the library stores goes through a js_vfs, modelled on SQLite's
 * sqlite3_vfs. "posix" (the default) and "mem" (a process-wide RAM disk,
 * keyed by path) are built in; an application may register its own.
 *
 * Paths are '/'-separated strings the library builds from the store path.
 * Every function returns 0 or a negative JS_E* code: JS_ENOTFOUND for a
 * missing file or directory (also from mkdir when the parent is missing),
 * JS_EEXIST where a file exists and JS_VFS_EXCL was asked, JS_ENOSPC when
 * full, JS_ELOCKED from lock, JS_ENOTSUP from control, JS_EINVAL for bad
 * flags, JS_ENOMEM, JS_EIO otherwise. Opening a directory as a file and
 * listing a file fail. Tables only grow at the end; the library checks
 * `version` before using a later member. Methods are called without any
 * library lock that the backend could deadlock on, but they must not call
 * back into the library.
 */
typedef struct js_vfs js_vfs;
typedef struct js_vfs_file js_vfs_file;
typedef struct js_vfs_io js_vfs_io;

/* Open flags. */
#define JS_VFS_READ 0x01
#define JS_VFS_WRITE 0x02
#define JS_VFS_CREATE 0x04
#define JS_VFS_EXCL 0x08

/* The first member of every open file; the backend fills `io` on a
 * successful open. The library allocates vfs->file_size bytes for the
 * file object, so a backend extends this struct with its own state. */
struct js_vfs_file {
    const js_vfs_io *io;
};

#define JS_VFS_IO_VERSION 1
struct js_vfs_io {
    unsigned version;
    /* Release the file. Called once per successful open, never after a
     * failed one. */
    int (*close)(js_vfs_file *f);
    /* Read up to n bytes at off into buf; *nread gets the count, which is
     * short only at end of file. */
    int (*read)(js_vfs_file *f, void *buf, size_t n, uint64_t off,
                size_t *nread);
    /* Write all n bytes at off, extending the file if needed. Not durable
     * until sync returns 0. */
    int (*write)(js_vfs_file *f, const void *buf, size_t n, uint64_t off);
    /* Set the file's size. */
    int (*truncate)(js_vfs_file *f, uint64_t size);
    /* Make every write and truncate before it durable (data and size).
     * After a failed sync the library never trusts the file again. */
    int (*sync)(js_vfs_file *f);
    /* The file's current size. */
    int (*size)(js_vfs_file *f, uint64_t *size);
    /* Escape hatch for backend-specific operations: JS_ENOTSUP for any op
     * the backend does not know. */
    int (*control)(js_vfs_file *f, int op, void *arg);
};

#define JS_VFS_VERSION 1
struct js_vfs {
    unsigned version;
    size_t file_size;  /* bytes for a file object, >= sizeof(js_vfs_file) */
    const char *name;  /* registry name */
    void *app_data;    /* the backend's own */
    /* Open (and with JS_VFS_CREATE create) a file. On failure the file
     * object is not closed. */
    int (*open)(js_vfs *vfs, const char *path, int flags, js_vfs_file *file);
    /* Remove a file. */
    int (*remove)(js_vfs *vfs, const char *path);
    /* Atomically replace `to` with `from`. */
    int (*rename)(js_vfs *vfs, const char *from, const char *to);
    /* Create a directory; JS_EEXIST if it exists. */
    int (*mkdir)(js_vfs *vfs, const char *path);
    /* Remove an empty directory. */
    int (*rmdir)(js_vfs *vfs, const char *path);
    /* Call cb once per entry of a directory (not "." or ".."); a non-zero
     * return from cb stops the walk and is returned. */
    int (*list)(js_vfs *vfs, const char *dir,
                int (*cb)(void *ctx, const char *name), void *ctx);
    /* Make the directory's entries (creates, removes, renames) durable. */
    int (*sync_dir)(js_vfs *vfs, const char *dir);
    /* Take an exclusive lock named by path, held until unlock; JS_ELOCKED
     * if anyone, in this process or another, holds it. */
    int (*lock)(js_vfs *vfs, const char *path, void **token);
    int (*unlock)(js_vfs *vfs, void *token);
};

/* Register a backend under vfs->name (copied by reference: the struct must
 * outlive its registration). Registering a name again replaces the entry.
 * make_default != 0 makes it the default. JS_EINVAL for a bad table. */
JS_API int js_vfs_register(js_vfs *vfs, int make_default);

/* Remove a backend from the registry (JS_ENOTFOUND if it is not there).
 * Stores already open on it keep using it. If it was the default, the
 * oldest remaining backend becomes the default. */
JS_API int js_vfs_unregister(js_vfs *vfs);

/* The registered backend of that name, or the default for NULL; NULL if
 * there is none. */
JS_API js_vfs *js_vfs_find(const char *name);

/* ------------------------------------------------------------------ */
/* Store                                                               */
/* ------------------------------------------------------------------ */

#define JS_OPEN_OPTS_VERSION 1
typedef struct js_open_opts {
    unsigned version;
    const char *vfs;       /* backend name; NULL: the default ("posix") */
    int sync;              /* JS_SYNC_*; 0: ALWAYS */
    int64_t sync_interval; /* ns, for JS_SYNC_INTERVAL; 0: 1 second */
    int no_create;         /* fail with JS_ENOTFOUND if the store is absent */
    uint32_t block_size;   /* target block file size in bytes; 0: default
                              (8 MiB); under 4 KiB: 4 KiB; over 1 GiB:
                              JS_EINVAL */
    /* Time source, ns since the epoch; NULL: the system clock. For tests
     * and for devices whose clock comes from elsewhere. */
    int64_t (*clock)(void *ctx);
    void *clock_ctx;
} js_open_opts;
#define JS_OPEN_OPTS_INIT {JS_OPEN_OPTS_VERSION, NULL, 0, 0, 0, 0, NULL, NULL}

/*
 * Open (creating if needed) the store in directory `path` and return its
 * handle in *out. opts may be NULL for the defaults. A second open of the
 * same store, in this process or another, fails with JS_ELOCKED. Opening
 * recovers from any earlier crash; data found damaged is reported in each
 * stream's info (lost_msgs, lost) and never stops the open. A missing or
 * damaged catalogue is rebuilt from the stream directories (each holds its
 * own copy of its definition); only a stream whose two copies are both
 * unreadable is left out, its directory kept. Once a write, truncate,
 * sync, rename or open for writing fails, the store is fail-stop: every
 * later change (publish, ack, delete, create...) fails with JS_EFAILED
 * until the store is closed and opened again, so nothing is ever
 * acknowledged after a failed sync; reads go on working.
 * Errors: JS_EINVAL, JS_ENOTFOUND (no_create), JS_ELOCKED, JS_EIO,
 * JS_ENOSPC, JS_ENOMEM.
 */
JS_API int js_open(const char *path, const js_open_opts *opts,
                   js_store **out);

/*
 * Flush and sync everything, write index checkpoints and release the store.
 * Stream handles still held become stale (calls on them fail with
 * JS_EMISUSE) and must still be released. NULL is accepted. Returns the
 * first I/O error met while flushing; the store is released regardless.
 */
JS_API int js_close(js_store *store);

/* Make every write so far durable, whatever the sync policy. May block. */
JS_API int js_flush(js_store *store);

/* ------------------------------------------------------------------ */
/* Streams                                                             */
/* ------------------------------------------------------------------ */

#define JS_STREAM_CONFIG_VERSION 1
typedef struct js_stream_config {
    unsigned version;
    const char *name;        /* required; NATS name rules, <= 255 bytes */
    const char *description; /* optional, <= 4096 bytes */
    const char *const *subjects; /* NULL/0: the stream's name */
    size_t num_subjects;
    int retention;           /* JS_RETENTION_* */
    int64_t max_consumers;   /* 0 or < 0: unlimited */
    int64_t max_msgs;        /* 0 or < 0: unlimited */
    int64_t max_bytes;       /* 0 or < 0: unlimited; counts stored record
                                bytes (payload + subject + headers + 40) */
    int64_t max_age;         /* ns; 0: unlimited; else >= 100 ms */
    int64_t max_msgs_per_subject; /* 0 or < 0: unlimited */
    int32_t max_msg_size;    /* 0 or < 0: unlimited (JS_MAX_PAYLOAD) */
    int discard;             /* JS_DISCARD_* */
    int storage;             /* JS_STORAGE_*; fixed at creation */
    int64_t duplicate_window; /* ns; 0: 2 min, or max_age if smaller */
    uint64_t first_seq;      /* first sequence of a new stream; 0: 1 */
    int discard_new_per_subject; /* needs discard new and a per-subject max */
    int sealed;              /* update only, false->true only */
    int deny_delete;         /* false->true only */
    int deny_purge;          /* false->true only */
    int allow_rollup_hdrs;   /* honour Nats-Rollup; needs purge allowed */
    int sync;                /* JS_SYNC_*; 0: the store's policy */
} js_stream_config;
#define JS_STREAM_CONFIG_INIT                                             \
    {JS_STREAM_CONFIG_VERSION, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, \
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/* A stream's state, as NATS's StreamState. */
typedef struct js_stream_state {
    uint64_t msgs;
    uint64_t bytes;          /* stored record bytes, see max_bytes */
    uint64_t first_seq;
    int64_t first_ts;
    uint64_t last_seq;
    int64_t last_ts;
    uint64_t num_subjects;
    uint64_t num_deleted;    /* interior gaps between first and last */
    uint64_t consumer_count;
    uint64_t lost_msgs;      /* sequences in the info's lost ranges */
    uint64_t lost_bytes;
} js_stream_state;

/* An inclusive range of stream sequences, first <= last. */
typedef struct js_seq_range {
    uint64_t first, last;
} js_seq_range;

/* Library-allocated; freed with js_stream_info_free(). May grow at the end
 * in later versions. Every pointer inside lives as long as the info. Like
 * POSIX's struct stat, the type shares its name with the function that
 * fills it, so it is always written `struct js_stream_info`. */
struct js_stream_info {
    const js_stream_config *config; /* normalised: NATS defaults applied,
                                       unlimited limits reported as -1 */
    const js_stream_state *state;
    int64_t created;
    /* Since 1.1. The sequences of messages that recovery found damaged or
     * missing (reading one gives JS_ECORRUPT): lost_len ascending,
     * disjoint ranges, NULL when there are none. As NATS's lost data,
     * they stay reported when the stream's first sequence moves past
     * them (a delete, purge or limit), and, unlike NATS, at every later
     * open, with the index checkpoint or without it. state->lost_msgs
     * counts them. */
    const js_seq_range *lost;
    size_t lost_len;
};

/*
 * Create a stream. If one of that name exists with an identical config this
 * succeeds and returns it; with a different config it fails with
 * JS_ESTREAM_EXISTS. On success *out (if out is not NULL) gets a handle to
 * release with js_stream_release(). The catalogue change is durable when
 * the call returns.
 * Errors: JS_EINVAL (the field is named in js_errmsg()),
 * JS_ESTREAM_EXISTS, JS_ESUBJECT_OVERLAP, JS_EIO, JS_ENOMEM, JS_EMISUSE.
 */
JS_API int js_stream_add(js_store *store, const js_stream_config *cfg,
                         js_stream **out);

/*
 * Change a stream's config under NATS's update rules: name and storage never
 * change; retention not to or from workqueue; sealed, deny_delete and
 * deny_purge only from false to true. Lowering a limit applies it at once.
 * Errors: JS_ESTREAM_NOT_FOUND, JS_EUPDATE, JS_EINVAL, JS_ESUBJECT_OVERLAP,
 * JS_EIO.
 */
JS_API int js_stream_update(js_store *store, const js_stream_config *cfg);

/* A handle to the stream of that name. JS_ESTREAM_NOT_FOUND if none. */
JS_API int js_stream_lookup(js_store *store, const char *name,
                            js_stream **out);

/* Release a stream handle. NULL is accepted. */
JS_API void js_stream_release(js_stream *stream);

/* The stream's config and state. Free with js_stream_info_free(). */
JS_API int js_stream_info(js_stream *stream, struct js_stream_info **out);
JS_API void js_stream_info_free(struct js_stream_info *info);

/*
 * The names of all streams, sorted, as a NULL-terminated array; *count (if
 * not NULL) gets their number. Free with js_names_free().
 */
JS_API int js_stream_names(js_store *store, char ***names, size_t *count);
JS_API void js_names_free(char **names);

/* Delete a stream and all its messages. Handles to it become stale
 * (JS_ESTREAM_NOT_FOUND). Errors: JS_ESTREAM_NOT_FOUND, JS_EIO. */
JS_API int js_stream_delete(js_store *store, const char *name);

#define JS_PURGE_OPTS_VERSION 1
typedef struct js_purge_opts {
    unsigned version;
    const char *filter; /* only subjects matching this (wildcards allowed);
                           NULL or "": all */
    uint64_t seq;       /* only messages below this sequence */
    uint64_t keep;      /* keep the newest `keep` matching messages */
} js_purge_opts;
#define JS_PURGE_OPTS_INIT {JS_PURGE_OPTS_VERSION, NULL, 0, 0}

/*
 * Remove messages as NATS's STREAM.PURGE does: opts NULL (or all zero)
 * removes everything, keeping the sequence space. seq and keep together are
 * JS_EINVAL. *purged (if not NULL) gets the count removed. Durable on
 * return under JS_SYNC_ALWAYS.
 * Errors: JS_EINVAL, JS_ESEALED, JS_EPURGE_DENIED, JS_EIO.
 */
JS_API int js_stream_purge(js_stream *stream, const js_purge_opts *opts,
                           uint64_t *purged);

/* ------------------------------------------------------------------ */
/* Publishing                                                          */
/* ------------------------------------------------------------------ */

#define JS_PUB_ACK_VERSION 1
typedef struct js_pub_ack {
    unsigned version;
    uint64_t seq;       /* the message's sequence (the original's for a
                           duplicate) */
    int duplicate;      /* 1 if Nats-Msg-Id matched within the window */
    const char *stream; /* borrowed; valid until js_close() */
} js_pub_ack;
#define JS_PUB_ACK_INIT {JS_PUB_ACK_VERSION, 0, 0, NULL}

/*
 * Store a message in the stream whose subjects match `subject`.
 * hdrs/hdr_len: an optional NATS header block ("NATS/1.0\r\nKey: Value\r\n
 * \r\n"); NULL/0 for none. The library honours Nats-Msg-Id,
 * Nats-Expected-Stream, Nats-Expected-Last-Sequence,
 * Nats-Expected-Last-Subject-Sequence(-Subject), Nats-Expected-Last-Msg-Id
 * and Nats-Rollup as NATS does. ack (may be NULL) gets the result.
 * The subject is literal, tokens split by '.', none empty, at most
 * JS_MAX_SUBJECT_LEN bytes, with no whitespace or control bytes (<= 0x20,
 * 0x7f); other bytes, UTF-8 or not, are taken as they are (as NATS does).
 * Under JS_SYNC_ALWAYS the message is durable when this returns.
 * Errors: JS_EINVAL (bad subject, NULL data or hdrs with a length, ack
 * version), JS_ENO_STREAM, JS_EBAD_HEADER, JS_EHDR_SIZE, JS_EMSG_SIZE, and
 * the stream's rule codes (JS_EWRONG_LAST_SEQ, JS_EMAX_MSGS, ...),
 * JS_ENOSPC (also: the stream's sequences are used up; the last a message
 * may take is UINT64_MAX - 1), JS_EMISUSE, JS_EIO, JS_EFAILED.
 */
JS_API int js_publish(js_store *store, const char *subject, const void *hdrs,
                      size_t hdr_len, const void *data, size_t len,
                      js_pub_ack *ack);

/* One message of a batch. This struct is fixed: it will never grow. */
typedef struct js_pub_msg {
    const char *subject;
    const void *hdrs;
    size_t hdr_len;
    const void *data;
    size_t len;
} js_pub_msg;

/*
 * Publish n messages in order with one durability point per run of
 * consecutive messages to the same stream: under JS_SYNC_ALWAYS all are
 * durable when the call returns. A run is stored under one lock hold, with
 * consecutive sequences and one timestamp. Each message is checked as
 * js_publish() checks it; at the first failure the batch stops, the
 * messages before it are kept (and made durable), and that error is
 * returned. *done (if not NULL) gets the number stored and durable. acks
 * (may be NULL) is an array of n js_pub_ack whose first element's version
 * gives the element size.
 */
JS_API int js_publish_batch(js_store *store, const js_pub_msg *msgs,
                            size_t n, js_pub_ack *acks, size_t *done);

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/* The message with sequence seq. JS_EMSG_NOT_FOUND if absent or deleted,
 * JS_ECORRUPT if it was stored but is damaged. Free with js_msg_free(). */
JS_API int js_msg_get(js_stream *stream, uint64_t seq, js_msg **out);

/* The last message whose subject matches `subject` (wildcards allowed). */
JS_API int js_msg_get_last(js_stream *stream, const char *subject,
                           js_msg **out);

/* The first message with sequence >= seq whose subject matches filter
 * (NULL, "" or ">" for any). JS_EMSG_NOT_FOUND if none. */
JS_API int js_msg_get_next(js_stream *stream, const char *filter,
                           uint64_t seq, js_msg **out);

/* Remove one message, leaving a gap in the sequence. The removal is durable
 * on return under JS_SYNC_ALWAYS.
 * Errors: JS_EMSG_NOT_FOUND (NATS 10043: absent, already removed, or found
 * damaged), JS_EDELETE_DENIED, JS_ESEALED, JS_EIO. */
JS_API int js_msg_delete(js_stream *stream, uint64_t seq);

/* As js_msg_delete(), and the message's bytes on storage are overwritten
 * before the call returns (a secure erase). */
JS_API int js_msg_erase(js_stream *stream, uint64_t seq);

JS_API void js_msg_free(js_msg *msg);

/* Accessors. Borrowed pointers live as long as the message. Given NULL
 * or a handle that is not a message they return NULL or 0 (and *len 0);
 * len may be NULL. */
JS_API const char *js_msg_subject(const js_msg *msg);
JS_API uint64_t js_msg_seq(const js_msg *msg);
JS_API int64_t js_msg_time(const js_msg *msg);
JS_API const void *js_msg_data(const js_msg *msg, size_t *len);
/* The raw header block (NULL, *len 0 if none). */
JS_API const void *js_msg_headers(const js_msg *msg, size_t *len);
/* The first value of header `name` (exact match); JS_ENOTFOUND if absent.
 * *value is not NUL-terminated. */
JS_API int js_msg_header(const js_msg *msg, const char *name,
                         const char **value, size_t *len);

/* ------------------------------------------------------------------ */
/* Consumers                                                           */
/* ------------------------------------------------------------------ */
/*
 * A consumer is a cursor over one stream with at-least-once delivery, as in
 * NATS JetStream. A consumer with a durable_name is durable: its config and
 * its acks are stored and survive close, crashes and reopen. One without is
 * ephemeral: it lives in memory until it has been unused for
 * inactive_threshold, its stream is deleted, or the store is closed.
 * A consumer is pull (the application calls js_consumer_next() or
 * js_consumer_fetch()) unless deliver_subject is set, which makes it push
 * (messages go to the callbacks of js_consumer_subscribe()).
 * The enum values are those of the official NATS C client.
 */
#define JS_DELIVER_ALL 0
#define JS_DELIVER_LAST 1
#define JS_DELIVER_NEW 2
#define JS_DELIVER_BY_START_SEQUENCE 3
#define JS_DELIVER_BY_START_TIME 4
#define JS_DELIVER_LAST_PER_SUBJECT 5

#define JS_ACK_EXPLICIT 0 /* each message acked by itself (the default) */
#define JS_ACK_NONE 1     /* delivered means acked */
#define JS_ACK_ALL 2      /* an ack covers every earlier message too */

#define JS_REPLAY_INSTANT 0  /* as fast as the application takes them */
#define JS_REPLAY_ORIGINAL 1 /* with the gaps between their timestamps */

#define JS_CONSUMER_CONFIG_VERSION 1
typedef struct js_consumer_config {
    unsigned version;
    const char *name;         /* NULL: durable_name, or generated (8 chars)
                                 for an ephemeral; NATS name rules */
    const char *durable_name; /* set: durable; must equal name if both */
    const char *description;  /* <= 4096 bytes */
    int deliver_policy;       /* JS_DELIVER_* */
    uint64_t opt_start_seq;   /* for JS_DELIVER_BY_START_SEQUENCE */
    int64_t opt_start_time;   /* for JS_DELIVER_BY_START_TIME, ns */
    int ack_policy;           /* JS_ACK_* */
    int64_t ack_wait;         /* ns; 0: 30 s (backoff[0] if backoff set) */
    int64_t max_deliver;      /* 0 or < 0: unlimited */
    const int64_t *backoff;   /* redelivery delays, ns; the n-th redelivery
                                 waits backoff[min(n-1, num_backoff-1)] */
    size_t num_backoff;
    const char *filter_subject;          /* one filter, or NULL */
    const char *const *filter_subjects;  /* several; none a subset of
                                            another */
    size_t num_filter_subjects;
    int replay_policy;        /* JS_REPLAY_* */
    uint64_t rate_limit_bps;  /* push only; 0: unlimited */
    const char *sample_freq;  /* "N" or "N%": share of acks sampled as
                                 JS_EVENT_ACK_SAMPLE events; NULL: none */
    int64_t max_waiting;      /* pull: most calls waiting at once; 0: 512 */
    int64_t max_ack_pending;  /* 0: 1000 (none for JS_ACK_NONE);
                                 < 0: unlimited */
    int headers_only;         /* deliver headers and Nats-Msg-Size only */
    int64_t max_batch;        /* pull: largest fetch; 0: no limit */
    int64_t max_expires;      /* pull: longest wait, ns; 0: no limit */
    int64_t max_bytes;        /* pull: largest fetch max_bytes; 0: none */
    const char *deliver_subject; /* set: push consumer (a literal subject,
                                    kept for NATS tools and bridges) */
    const char *deliver_group;   /* push: subscribers share the messages */
    int64_t inactive_threshold;  /* ns; ephemerals 0: 5 s; durables 0:
                                    never removed */
    const char *const *metadata; /* key, value, key, value, ... */
    size_t num_metadata;         /* number of key/value pairs */
    int mem_storage;          /* durable: config stored, acks kept in
                                 memory only */
} js_consumer_config;
#define JS_CONSUMER_CONFIG_INIT                                          \
    {JS_CONSUMER_CONFIG_VERSION, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0,     \
     NULL, 0, NULL, NULL, 0, 0, 0, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0, \
     NULL, 0, 0}

/* A position in the consumer's and the stream's sequences. */
typedef struct js_seq_pair {
    uint64_t consumer_seq;
    uint64_t stream_seq;
    int64_t last_active; /* ns since the epoch; 0: never */
} js_seq_pair;

/* Library-allocated; freed with js_consumer_info_free(). Grows only at the
 * end. The fields are NATS's ConsumerInfo. */
struct js_consumer_info {
    const char *stream;
    const char *name;
    int64_t created;
    const js_consumer_config *config; /* normalised, NATS defaults applied */
    js_seq_pair delivered;  /* last delivered (redeliveries included) */
    js_seq_pair ack_floor;  /* everything up to here acked */
    uint64_t num_ack_pending; /* delivered, not yet acked */
    uint64_t num_redelivered; /* pending messages delivered more than once */
    uint64_t num_waiting;     /* pull calls waiting */
    uint64_t num_pending;     /* matching messages not yet delivered */
    int push_bound;           /* push: a subscriber is attached */
};

/*
 * Create a consumer on `stream`. If one of that name exists with an
 * identical config this succeeds and returns it; with a different config it
 * fails with JS_ECONSUMER_EXISTS. *out (if not NULL) gets a handle to
 * release with js_consumer_release(). A durable consumer's config is
 * durable when the call returns. The stream's max_consumers and, for
 * work-queue streams, NATS's filter rules are enforced.
 * Errors: JS_EINVAL (field named in js_errmsg(), NATS code in
 * js_errcode_nats()), JS_ECONSUMER_EXISTS, JS_EMAX_CONSUMERS,
 * JS_ESTREAM_NOT_FOUND, JS_EIO, JS_ENOMEM, JS_EMISUSE.
 */
JS_API int js_consumer_add(js_stream *stream, const js_consumer_config *cfg,
                           js_consumer **out);

/*
 * Change an existing consumer's config; the consumer is the one named by
 * cfg->name (or durable_name). Only what NATS lets change may
 * differ: description, ack_wait, max_deliver, backoff, filters,
 * rate_limit_bps, sample_freq, max_ack_pending, headers_only, max_batch,
 * max_expires, max_bytes, deliver_group, inactive_threshold, metadata.
 * *out (if not NULL) gets a handle to the consumer.
 * Errors: JS_ECONSUMER_NOT_FOUND, JS_EUPDATE (the field is named),
 * JS_EINVAL, JS_EIO.
 */
JS_API int js_consumer_update(js_stream *stream,
                              const js_consumer_config *cfg,
                              js_consumer **out);

/* A handle to the consumer of that name. JS_ECONSUMER_NOT_FOUND if none.
 * On failure *out (if out is not NULL) is NULL. */
JS_API int js_consumer_lookup(js_stream *stream, const char *name,
                              js_consumer **out);

/* Release a consumer handle. NULL is accepted. Messages delivered through
 * it may still be acked after it is released. */
JS_API void js_consumer_release(js_consumer *consumer);

/* Delete a consumer and its stored state. Its handles become stale
 * (JS_ECONSUMER_NOT_FOUND); pull calls waiting on it return that code.
 * Errors: JS_ECONSUMER_NOT_FOUND, JS_EIO, JS_ENOSPC, JS_EFAILED, JS_ENOMEM;
 * after the last four the consumer is gone from the open store but, if its
 * files could not be removed, back with its state at the next open. */
JS_API int js_consumer_delete(js_stream *stream, const char *name);

/* The names of the stream's consumers, sorted, NULL-terminated; free with
 * js_names_free(). *count (if not NULL) gets their number. */
JS_API int js_consumer_names(js_stream *stream, char ***names,
                             size_t *count);

/* The consumer's config and state. Costs no scan of the stream. Free with
 * js_consumer_info_free(). */
JS_API int js_consumer_info(js_consumer *consumer,
                            struct js_consumer_info **out);
JS_API void js_consumer_info_free(struct js_consumer_info *info);

/* ---- pull ---------------------------------------------------------- */

/*
 * The next message for this pull consumer: a due redelivery first, else
 * the next new message matching the filters. Waits up to `timeout` ns for
 * one (0: do not wait; < 0: wait without limit) while other threads
 * publish; several threads may wait on one consumer and each message goes
 * to one of them. Free the message with js_msg_free() after acking it.
 * On failure *out is NULL.
 * Errors: JS_ETIMEOUT, JS_EMAX_WAITING, JS_ECONSUMER_NOT_FOUND (deleted
 * meanwhile), JS_EINVAL (a push consumer), JS_EIO, JS_ECORRUPT.
 */
JS_API int js_consumer_next(js_consumer *consumer, int64_t timeout,
                            js_msg **out);

#define JS_FETCH_OPTS_VERSION 1
typedef struct js_fetch_opts {
    unsigned version;
    int64_t max_bytes; /* stop before the batch's data passes this; 0: none */
    int64_t timeout;   /* ns to wait for the first message; 0: do not wait;
                          < 0: no limit */
    int no_wait;       /* return at once, even with a timeout set */
} js_fetch_opts;
#define JS_FETCH_OPTS_INIT {JS_FETCH_OPTS_VERSION, 0, 0, 0}

/*
 * Up to max_msgs messages into msgs[0..*n). Waits (per opts) until at least
 * one is available, then returns every message available at once, up to
 * max_msgs and max_bytes. opts may be NULL (no wait, no byte limit).
 * Each message is freed with js_msg_free(). msgs and n are required.
 * The caller owns msgs[0..*n) whatever the return value.
 * Errors: as js_consumer_next(); JS_EINVAL when msgs or n is NULL,
 * max_msgs is 0 or passes the consumer's max_batch, or max_bytes or
 * timeout pass max_bytes or max_expires; JS_EMSG_SIZE when the first
 * message alone is larger than max_bytes (NATS 409 Message Size Exceeds
 * MaxBytes); JS_EFAILED, JS_EMISUSE.
 */
JS_API int js_consumer_fetch(js_consumer *consumer, js_msg **msgs,
                             size_t max_msgs, const js_fetch_opts *opts,
                             size_t *n);

/* ---- push ---------------------------------------------------------- */

/* Called with a delivered message that it then owns (free it with
 * js_msg_free()). Called with no library lock held, from js_dispatch() or a
 * dispatcher thread. */
typedef void (*js_msg_handler)(js_consumer *consumer, js_msg *msg,
                               void *ctx);

/*
 * Attach a callback to a push consumer. Without a deliver_group a push
 * consumer takes one subscriber (a second gets JS_EBUSY); with one, its
 * subscribers share the messages, each message going to one of them.
 * Delivery happens in js_dispatch() or a dispatcher thread, never inside
 * this call. *out gets a handle for js_sub_unsubscribe().
 * Errors: JS_EINVAL (a pull consumer), JS_EBUSY, JS_ECONSUMER_NOT_FOUND.
 */
JS_API int js_consumer_subscribe(js_consumer *consumer, js_msg_handler cb,
                                 void *ctx, js_sub **out);

/* Detach and free a subscription; once it returns the callback is not
 * running and will not be called again. Messages it held unacked are
 * redelivered after ack_wait. NULL is accepted. Must not be called from
 * the subscription's own callback. */
JS_API int js_sub_unsubscribe(js_sub *sub);

/*
 * Do the store's pending work in the calling thread: deliver due messages
 * to push subscribers (redeliveries after ack_wait, replay pacing,
 * rate limits), remove inactive consumers, deliver events. Waits up to
 * `timeout` ns (0: do not wait; < 0: no limit) for work if there is none.
 * Returns the number of callbacks made, message and event callbacks
 * together (>= 0), or a negative JS_E* code. For single-threaded programs
 * and firmware loops. (Pull calls and consumer management also remove
 * inactive consumers of their stream.)
 */
JS_API int js_dispatch(js_store *store, int64_t timeout);

/* Start `threads` (1..64) dispatcher threads that run js_dispatch() until
 * js_dispatcher_stop() or js_close(). JS_EBUSY if already started. */
JS_API int js_dispatcher_start(js_store *store, unsigned threads);

/* Stop and join the dispatcher threads. Returns 0 if none were running;
 * JS_EMISUSE when called from a dispatcher thread (a callback), as is
 * js_close() there. */
JS_API int js_dispatcher_stop(js_store *store);

/* ---- delivered messages -------------------------------------------- */

#define JS_MSG_META_VERSION 1
typedef struct js_msg_meta {
    unsigned version;
    const char *stream;    /* borrowed; lives as long as the message */
    const char *consumer;  /* borrowed; lives as long as the message */
    uint64_t stream_seq;
    uint64_t consumer_seq;
    uint64_t num_delivered; /* 1 on the first delivery */
    uint64_t num_pending;   /* matching messages still to deliver */
    int64_t timestamp;      /* when the message was stored, ns */
} js_msg_meta;
#define JS_MSG_META_INIT {JS_MSG_META_VERSION, NULL, NULL, 0, 0, 0, 0, 0}

/* The delivery metadata NATS puts in a message's reply subject. Fills the
 * caller's version-sized prefix of *meta. JS_EINVAL if the message was not
 * delivered by a consumer (js_msg_get() and friends). */
JS_API int js_msg_metadata(const js_msg *msg, js_msg_meta *meta);

/*
 * Acknowledgements, NATS's +ACK, -NAK, +WPI and +TERM. Each applies to the
 * consumer that delivered msg, which must not have been freed; the consumer
 * handle may have been released. An ack of a message already acked is
 * ignored (returns 0), and so is a nak or in-progress of a delivery that
 * has been superseded by a redelivery; an ack or term of one still acks
 * or terminates the message.
 * js_msg_ack() records the ack in memory; it is stored with the next
 * ack_sync, fetch, js_flush() or js_close(), and an ack lost in a crash
 * means one redelivery. js_msg_ack_sync() returns once the ack is as durable as the
 * stream's sync policy promises a publish (under JS_SYNC_ALWAYS: on stable
 * storage), so the message is never delivered again. js_msg_nak()
 * redelivers after `delay` ns (0 or < 0: at once). js_msg_in_progress()
 * restarts the ack_wait timer (with backoff: the delay for the deliveries
 * so far). js_msg_term() stops redelivery and reports reason (may be NULL)
 * in a JS_EVENT_MSG_TERMINATED event.
 * Errors: JS_EMISUSE (msg is not a message, or its store is closed),
 * JS_EINVAL (msg not from a consumer, or the consumer's ack policy is
 * none), JS_ECONSUMER_NOT_FOUND, JS_EIO, JS_EFAILED.
 */
JS_API int js_msg_ack(js_msg *msg);
JS_API int js_msg_ack_sync(js_msg *msg);
JS_API int js_msg_nak(js_msg *msg, int64_t delay);
JS_API int js_msg_in_progress(js_msg *msg);
JS_API int js_msg_term(js_msg *msg, const char *reason);

/* ---- events --------------------------------------------------------- */

/* The events, with NATS's advisory and metric types. */
#define JS_EVENT_STREAM_CREATED 1   /* io.nats.jetstream.advisory.v1.stream_action */
#define JS_EVENT_STREAM_UPDATED 2
#define JS_EVENT_STREAM_DELETED 3
#define JS_EVENT_CONSUMER_CREATED 4 /* ...advisory.v1.consumer_action */
#define JS_EVENT_CONSUMER_UPDATED 5
#define JS_EVENT_CONSUMER_DELETED 6
#define JS_EVENT_MAX_DELIVERIES 7   /* ...advisory.v1.max_deliver */
#define JS_EVENT_MSG_TERMINATED 8   /* ...advisory.v1.terminated */
#define JS_EVENT_MSG_NAKED 9        /* ...advisory.v1.nak */
#define JS_EVENT_ACK_SAMPLE 10      /* io.nats.jetstream.metric.v1.consumer_ack */

/* One event. Every pointer is borrowed for the duration of the callback.
 * Fields that an event's NATS advisory does not carry are 0 or NULL. */
typedef struct js_event {
    unsigned version;       /* 1 */
    int kind;               /* JS_EVENT_* */
    const char *type;       /* NATS type, e.g.
                               "io.nats.jetstream.advisory.v1.max_deliver" */
    const char *id;         /* unique per event */
    int64_t timestamp;      /* ns since the epoch */
    const char *stream;
    const char *consumer;   /* consumer events */
    const char *action;     /* "create", "modify" or "delete" */
    uint64_t stream_seq;
    uint64_t consumer_seq;
    uint64_t deliveries;
    const char *reason;     /* JS_EVENT_MSG_TERMINATED */
    int64_t ack_time;       /* JS_EVENT_ACK_SAMPLE: delivery to ack, ns */
} js_event;

typedef void (*js_event_handler)(const js_event *ev, void *ctx);

/*
 * Register the store's event callback (NULL removes it). While one is
 * registered, events are queued as they happen and delivered, in order and
 * one at a time, at the end of the library call that caused them (in its
 * thread, with no lock held, unless another thread is delivering events
 * then: that thread delivers them) or by js_dispatch(). At most 65536 wait
 * in the queue; beyond that the oldest are dropped. Event ids are unique
 * within one js_open() of the store.
 */
JS_API int js_events_set(js_store *store, js_event_handler cb, void *ctx);

/* ------------------------------------------------------------------ */
/* Key/value buckets                                                   */
/* ------------------------------------------------------------------ */
/*
 * A bucket is NATS KV (ADR-8) over a stream, made as `nats kv add` makes
 * it: the stream KV_<bucket> on subjects $KV.<bucket>.>, history as
 * max_msgs_per_subject, ttl as max_age, rollups allowed, deletes denied,
 * discard new. A key is the subject $KV.<bucket>.<key>; its revision is
 * the stream sequence of its latest entry. Bucket names match
 * [a-zA-Z0-9_-]+ (at most 252 bytes); keys match [-/_=.a-zA-Z0-9]+, do not
 * start or end with '.', have no "..", and with the bucket's prefix make a
 * subject of at most JS_MAX_SUBJECT_LEN bytes. max_value_size counts the
 * entry's header block too, as NATS's max_msg_size does.
 */
typedef struct js_kv js_kv;

#define JS_KV_MAX_HISTORY 64

#define JS_KV_OP_PUT 1   /* a value */
#define JS_KV_OP_DEL 2   /* a delete marker (KV-Operation: DEL) */
#define JS_KV_OP_PURGE 3 /* a purge marker (KV-Operation: PURGE) */

#define JS_KV_CONFIG_VERSION 1
typedef struct js_kv_config {
    unsigned version;
    const char *bucket;      /* required */
    const char *description; /* optional, <= 4096 bytes */
    int64_t history;         /* values kept per key, 1..64; 0: 1 */
    int64_t ttl;             /* ns a value lives; 0: for ever, else
                                >= 100 ms */
    int32_t max_value_size;  /* bytes; 0 or < 0: unlimited */
    int64_t max_bytes;       /* the bucket's size; 0 or < 0: unlimited */
    int storage;             /* JS_STORAGE_* */
    int sync;                /* JS_SYNC_*; 0: the store's policy */
} js_kv_config;
#define JS_KV_CONFIG_INIT {JS_KV_CONFIG_VERSION, NULL, NULL, 0, 0, 0, 0, 0, 0}

/* One entry of a key, as NATS's KeyValueEntry. Library-allocated, freed
 * with js_kv_entry_free(); grows only at the end. */
struct js_kv_entry {
    const char *bucket;
    const char *key;
    const void *value;   /* NULL, len 0 for DEL and PURGE markers */
    size_t len;
    uint64_t revision;   /* the entry's stream sequence */
    int64_t created;     /* ns since the epoch */
    uint64_t delta;      /* watch/history: entries still to come */
    int op;              /* JS_KV_OP_* */
};

/* The bucket's state, as NATS's KeyValueStatus. Free with
 * js_kv_status_free(). Grows only at the end. */
struct js_kv_status {
    const char *bucket;
    uint64_t values;     /* entries stored, markers and history included */
    int64_t history;
    int64_t ttl;
    uint64_t bytes;
    int storage;
    const js_kv_config *config;
};

/*
 * Create a bucket, or return the existing one when its config is the
 * same; a different config is JS_ESTREAM_EXISTS. *out (may be NULL) gets
 * a handle to release with js_kv_release().
 * Errors: JS_EINVAL (field named), JS_ESTREAM_EXISTS, JS_ESUBJECT_OVERLAP,
 * JS_EIO, JS_ENOMEM, JS_EMISUSE.
 */
JS_API int js_kv_create(js_store *store, const js_kv_config *cfg,
                        js_kv **out);
/* A handle to an existing bucket. JS_ESTREAM_NOT_FOUND if there is none
 * (or its stream is not a KV bucket). */
JS_API int js_kv_open(js_store *store, const char *bucket, js_kv **out);
/* Change a bucket's description, history, ttl, max_value_size, max_bytes
 * or sync (storage is fixed). JS_ESTREAM_NOT_FOUND, JS_EINVAL, JS_EUPDATE. */
JS_API int js_kv_update(js_store *store, const js_kv_config *cfg);
/* Delete a bucket and every key in it. Handles become stale. */
JS_API int js_kv_delete(js_store *store, const char *bucket);
/* Release a bucket handle. NULL is accepted. */
JS_API void js_kv_release(js_kv *kv);

/* The bucket's config and state. Free with js_kv_status_free().
 * Errors: JS_EMISUSE, JS_ESTREAM_NOT_FOUND (deleted), JS_ENOMEM. */
JS_API int js_kv_status(js_kv *kv, struct js_kv_status **out);
JS_API void js_kv_status_free(struct js_kv_status *status);

/*
 * Store a value under key; *revision (may be NULL) gets its revision.
 * Durable on return as a publish is (see js_open()).
 * Errors: JS_EINVAL (bad key), JS_EMSG_SIZE (max_value_size),
 * JS_EMAX_BYTES (bucket full), JS_ESTREAM_NOT_FOUND (the bucket was
 * deleted), JS_EMISUSE, JS_EIO, JS_EFAILED.
 */
JS_API int js_kv_put(js_kv *kv, const char *key, const void *value,
                     size_t len, uint64_t *revision);
/* Store a value only if the key has none: absent, or its latest entry is
 * a delete or purge marker. Of concurrent creates exactly one succeeds.
 * Errors: as js_kv_put(), and JS_EKEY_EXISTS. */
JS_API int js_kv_create_key(js_kv *kv, const char *key, const void *value,
                            size_t len, uint64_t *revision);
/* Store a value only if the key's latest revision is `last`
 * (compare-and-set; 0: the key has no entry). Errors: as js_kv_put(), and
 * JS_EWRONG_LAST_SEQ (NATS 10071) when the revision differs. */
JS_API int js_kv_update_key(js_kv *kv, const char *key, const void *value,
                            size_t len, uint64_t last, uint64_t *revision);
/* Mark the key deleted (a KV-Operation: DEL entry; history is kept).
 * last != 0: only if the key's latest revision is last (else
 * JS_EWRONG_LAST_SEQ). Errors: as js_kv_put(). */
JS_API int js_kv_delete_key(js_kv *kv, const char *key, uint64_t last);
/* Mark the key purged and remove its history (a KV-Operation: PURGE entry
 * with Nats-Rollup: sub). last as for js_kv_delete_key(). */
JS_API int js_kv_purge_key(js_kv *kv, const char *key, uint64_t last);

/*
 * The key's latest entry (revision 0) or the entry with that revision,
 * read through the subject index (no scan). A key whose latest entry is a
 * marker, or a revision that is not this key's, is JS_EKEY_NOT_FOUND.
 * Free with js_kv_entry_free().
 */
JS_API int js_kv_get(js_kv *kv, const char *key, uint64_t revision,
                     struct js_kv_entry **out);
JS_API void js_kv_entry_free(struct js_kv_entry *entry);

/* ---- keys, history, watch ------------------------------------------ */
/*
 * A key filter is a key in which a token (the text between dots) may be
 * '*' (any one token) or a final '>' (one or more tokens): "config.>",
 * "*.port". NULL or ">" is every key. A bad filter is JS_EINVAL.
 */

/* A streaming listing of keys; see js_kv_keys(). */
typedef struct js_kv_keylist js_kv_keylist;

/*
 * List the keys matching filter whose latest entry is a value (keys whose
 * latest entry is a delete or purge marker are left out), in byte order.
 * The listing reads the subject index a batch at a time and never holds
 * every key at once. Keys present and live for the whole listing appear
 * exactly once; keys put or deleted meanwhile may or may not. The bucket
 * handle must outlive the listing. Free it with js_kv_keys_free().
 * Errors: JS_EINVAL (bad filter), JS_EMISUSE, JS_ENOMEM.
 */
JS_API int js_kv_keys(js_kv *kv, const char *filter, js_kv_keylist **out);
/* The next key: 1 with *key set (valid until the next call on the
 * listing), 0 at the end, or a negative JS_E* code (JS_ESTREAM_NOT_FOUND
 * once the bucket is deleted, JS_EINVAL, JS_EMISUSE, JS_EIO, JS_ENOMEM). */
JS_API int js_kv_keys_next(js_kv_keylist *keys, const char **key);
/* NULL, or a handle that is not a listing, is ignored. */
JS_API void js_kv_keys_free(js_kv_keylist *keys);

/*
 * Every stored entry of key, oldest first, delete and purge markers
 * included, in (*entries)[0..*n); each entry's delta is the number of
 * entries after it. Free with js_kv_history_free() (NULL is accepted).
 * Errors: JS_EKEY_NOT_FOUND (the key has no entry), JS_EINVAL (bad key),
 * JS_EMISUSE, JS_ESTREAM_NOT_FOUND, JS_ENOMEM, JS_EIO.
 */
JS_API int js_kv_history(js_kv *kv, const char *key,
                         struct js_kv_entry ***entries, size_t *n);
JS_API void js_kv_history_free(struct js_kv_entry **entries, size_t n);

/*
 * Remove delete and purge markers and whatever history remains under
 * them. Markers older than older_than ns go entirely; newer ones stay as
 * the key's only entry. older_than 0 means 30 minutes (NATS's default);
 * < 0 removes every marker whatever its age. *purged (may be NULL) gets
 * the number of entries removed, also when an error stops the walk part
 * way. The keys whose latest entry is a marker are found through the
 * subject index, a batch at a time; entries stored after a marker while
 * this runs are never removed.
 * Errors: JS_EMISUSE, JS_ESTREAM_NOT_FOUND, JS_ENOMEM, JS_EIO.
 */
JS_API int js_kv_purge_deletes(js_kv *kv, int64_t older_than,
                               uint64_t *purged);

#define JS_KV_WATCH_OPTS_VERSION 1
typedef struct js_kv_watch_opts {
    unsigned version;
    int include_history; /* every stored entry, not just the latest */
    int ignore_deletes;  /* leave out delete and purge markers */
    int meta_only;       /* entries without their values (value NULL,
                            len 0) */
    int updates_only;    /* only entries stored after the watch starts
                            (not with include_history) */
} js_kv_watch_opts;
#define JS_KV_WATCH_OPTS_INIT {JS_KV_WATCH_OPTS_VERSION, 0, 0, 0, 0}

/* A watch on a bucket; see js_kv_watch(). */
typedef struct js_kv_watcher js_kv_watcher;

/*
 * Watch the keys matching filter. First come the initial values: the
 * latest entry of every matching key (with include_history, every stored
 * entry), in revision order, read through the subject index; then one
 * NULL entry, the marker that the initial values are all delivered (at
 * once when there are none, or with updates_only); then every new entry
 * as it is stored. The marker falls between the entries stored before
 * the watch began and those stored after (one stored while js_kv_watch()
 * runs may come before it); it comes even while writers never pause,
 * where NATS clients' counting can hold it back. Each entry's delta is the number of matching entries
 * the watch had still to deliver after it (NATS's num_pending). As in
 * NATS, a watcher reads the bucket as it is when it gets to an entry:
 * entries removed before then (history limit, ttl, purges) are skipped,
 * and a watcher holds no copies of its own. opts may be NULL (all options
 * off).
 *
 * A watcher made here is read with js_kv_watcher_next(): no thread is
 * started. js_kv_watch_subscribe() makes one whose entries go to a
 * callback instead. Stop either with js_kv_watcher_stop(), before the
 * bucket handle is released.
 * Errors: JS_EINVAL (bad filter or opts, include_history with
 * updates_only), JS_EMISUSE, JS_ESTREAM_NOT_FOUND, JS_ENOMEM, JS_EIO.
 */
JS_API int js_kv_watch(js_kv *kv, const char *filter,
                       const js_kv_watch_opts *opts, js_kv_watcher **out);

/* The next entry, waiting up to timeout ns (0: do not wait; < 0: no
 * limit). 0 with *entry set, or with *entry NULL for the end of the
 * initial values; free entries with js_kv_entry_free(). Threads calling
 * it on one watcher at once take turns.
 * Errors: JS_ETIMEOUT, JS_EINVAL (a callback watcher), JS_EMISUSE,
 * JS_ESTREAM_NOT_FOUND (the bucket was deleted), JS_EIO. */
JS_API int js_kv_watcher_next(js_kv_watcher *w, int64_t timeout,
                              struct js_kv_entry **entry);

/* Called with an entry it then owns (free with js_kv_entry_free()), or
 * with NULL for the end of the initial values. Runs with no library lock
 * held, in js_dispatch() or a dispatcher thread, one call at a time per
 * watcher and in order. */
typedef void (*js_kv_watch_handler)(js_kv_watcher *w,
                                    struct js_kv_entry *entry, void *ctx);

/* As js_kv_watch(), with the entries going to cb (see js_dispatch() and
 * js_dispatcher_start()). A NULL cb is JS_EINVAL. */
JS_API int js_kv_watch_subscribe(js_kv *kv, const char *filter,
                                 const js_kv_watch_opts *opts,
                                 js_kv_watch_handler cb, void *ctx,
                                 js_kv_watcher **out);

/* Stop a watcher and free it; once it returns its callback is not running
 * and will not be called again. Must not be called from its own callback,
 * nor while another thread is in js_kv_watcher_next() on it. NULL is
 * accepted; JS_EMISUSE for a handle that is not a watcher. */
JS_API int js_kv_watcher_stop(js_kv_watcher *w);

#ifdef __cplusplus
}
#endif
#endif /* JETSTREAM_H */
