/*
 * nosync_vfs.h - "nosync": the posix backend with file and directory syncs
 * turned into no-ops, registered through the public js_vfs API. For tests
 * where nothing loses power and a store is reopened thousands of times:
 * the engine still calls sync and orders its writes the same way, it only
 * stops costing milliseconds per call.
 */
#ifndef NOSYNC_VFS_H
#define NOSYNC_VFS_H

#include <stdlib.h>

#include "jetstream.h"

static js_vfs nosync_vfs;
static js_vfs_io nosync_io;

static int nosync_file_sync(js_vfs_file *f) {
    (void)f;
    return 0;
}

static int nosync_sync_dir(js_vfs *vfs, const char *dir) {
    (void)vfs, (void)dir;
    return 0;
}

static int nosync_open(js_vfs *vfs, const char *path, int flags,
                       js_vfs_file *file) {
    js_vfs *px = js_vfs_find("posix");
    (void)vfs;
    int rc = px->open(px, path, flags, file);
    if (rc == 0) {
        if (!nosync_io.version) {
            nosync_io = *file->io;
            nosync_io.sync = nosync_file_sync;
        }
        file->io = &nosync_io;
    }
    return rc;
}

static void nosync_register(void) {
    js_vfs *px = js_vfs_find("posix");
    if (!px)
        abort();
    nosync_vfs = *px;
    nosync_vfs.name = "nosync";
    nosync_vfs.open = nosync_open;
    nosync_vfs.sync_dir = nosync_sync_dir;
    if (js_vfs_register(&nosync_vfs, 0) != 0)
        abort();
}

#endif
