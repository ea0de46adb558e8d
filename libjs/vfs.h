/*
 * vfs.h - the storage backend layer as the rest of the library uses it:
 * the registry, the built-in backends, and helpers over js_vfs.
 */
#ifndef JSI_VFS_H
#define JSI_VFS_H

#include "jetstream.h"
#include "util.h"

/* The built-in backends, registered on first use of the registry. */
js_vfs *jsi_vfs_posix(void);
js_vfs *jsi_vfs_mem(void);

/* A private, unregistered RAM backend (for storage=memory streams): files
 * live until the backend is freed. NULL on ENOMEM. */
js_vfs *jsi_vfs_mem_new(void);
void jsi_vfs_mem_free(js_vfs *vfs);

/* The store's fail-stop layer over base (vfs_guard.c): after the first
 * unexpected failure of a call that changes storage, every such call
 * fails with JS_EFAILED. NULL on ENOMEM. */
js_vfs *jsi_vfs_guard_new(js_vfs *base);
void jsi_vfs_guard_free(js_vfs *vfs);
/* 0, or JS_EFAILED with the detail set if vfs is a guard that has
 * latched a failure. */
int jsi_vfs_guard_failed(js_vfs *vfs);

/* 1 if a file's method table is complete for the version it claims. */
int jsi_vfs_io_ok(const js_vfs_io *io);

/* Open a file: allocates vfs->file_size bytes, calls vfs->open, and frees
 * the object again on failure. */
int jsi_vfs_open(js_vfs *vfs, const char *path, int flags, js_vfs_file **out);
/* Close and free; NULL accepted. */
int jsi_vfs_close(js_vfs_file *f);

/* Read exactly n bytes at off: JS_ECORRUPT if the file is shorter. */
int jsi_vfs_read_exact(js_vfs_file *f, void *buf, size_t n, uint64_t off);

/* Read a whole file (at most max bytes, else JS_ECORRUPT) into b. */
int jsi_vfs_read_file(js_vfs *vfs, const char *path, jsi_buf *b, size_t max);

/* Replace dir/name atomically and durably: write dir/name.tmp, sync it,
 * rename over dir/name, sync dir. */
int jsi_vfs_write_atomic(js_vfs *vfs, const char *dir, const char *name,
                         const void *data, size_t len);

/* mkdir -p (JS_EEXIST is not an error). Each directory it makes is durable
 * on return: its parent is synced after the mkdir. */
int jsi_vfs_mkdirs(js_vfs *vfs, const char *path);

/* Remove a directory and everything under it (depth first). */
int jsi_vfs_remove_tree(js_vfs *vfs, const char *path);

/* 1 if path exists (as a file or a directory), 0 if not, <0 on error. */
int jsi_vfs_exists(js_vfs *vfs, const char *path);

/* Join dir and name with '/' into a jsi_malloc'd string (NULL on ENOMEM). */
char *jsi_path_join(const char *dir, const char *name);

#endif
