/*
 * consumer_config_pair.c - a durable consumer's config, stored twice.
 *
 * consumers/<id>.cfg (copy A) and consumers/<id>.cfg2 (copy B) hold the
 * same image (consumer_config_file.c), each with its own checksum and
 * each replaced atomically (write temp, sync, rename, sync dir), so that
 * damage to either one alone loses neither the consumer nor its state.
 *
 * A is the authority: while it is readable it is the config. Every change
 * reaches A last: an add or update writes B then A, a delete removes B
 * then A, each step durable before the next. So a change happens when A
 * changes: a crash or a failed write before that leaves A as it was, the
 * last config acknowledged (also the one the consumer kept running with,
 * as a failed update is rolled back), and B ahead of it or gone. Taking
 * the newer copy by a counter would instead bring back an update the
 * caller was told had failed. A alone (B gone) is a delete cut short, or
 * damage: the consumer stays, no delete was acknowledged. B alone (A
 * gone) is an add cut short after B, or damage.
 *
 * At open, the copy that is not the config is rewritten from it when it
 * is damaged or different (an update or delete cut short), or missing
 * while the image says the store keeps two. A rewrite that fails fails
 * the load with its error (and so the open, as a stream definition's
 * repair does); nothing else has changed, and the next load tries again.
 * With neither copy readable the
 * consumer is lost, as when there was one copy, and both files are left
 * as they are.
 *
 * Stores from before the second copy: their images carry no copy count,
 * so B is not made at open, and a config gains B the next time it is
 * written (an update); until then it has the one copy it always had. An
 * open should not have to write to a store that is as it was left (one
 * synced write per consumer, which fails on read-only media), and the
 * count is what tells a B lost to damage (rewritten) from a B never
 * written (left alone). A library from before B deletes only A; the
 * consumer then comes back from B.
 */
#include <inttypes.h>
#include <stdio.h>

#include "consumer_config.h"
#include "util.h"
#include "vfs.h"

#define A_SUFFIX ".cfg"
#define B_SUFFIX ".cfg2"
#define MAX_FILE ((size_t)1 << 24)

void jsi_ccfg_pair_names(uint64_t id, char a[32], char b[32]) {
    snprintf(a, 32, "%016" PRIx64 A_SUFFIX, id);
    snprintf(b, 32, "%016" PRIx64 B_SUFFIX, id);
}

int jsi_ccfg_pair_id(const char *name, uint64_t *id) {
    uint64_t v = 0;
    int i;
    for (i = 0; i < 16; i++) {
        char ch = name[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    if (strcmp(name + i, A_SUFFIX) != 0 && strcmp(name + i, B_SUFFIX) != 0)
        return 0;
    *id = v;
    return 1;
}

int jsi_ccfg_pair_write(js_vfs *vfs, const char *dir, uint64_t id,
                        int64_t created, const jsi_ccfg *cfg) {
    char a[32], b[32];
    jsi_buf img = {0};
    jsi_ccfg_pair_names(id, a, b);
    int rc = jsi_ccfg_file_encode(id, created, cfg, &img);
    if (rc == 0)
        rc = jsi_vfs_write_atomic(vfs, dir, b, img.p, img.len);
    if (rc == 0)
        rc = jsi_vfs_write_atomic(vfs, dir, a, img.p, img.len);
    jsi_buf_free(&img);
    return rc;
}

static int remove_synced(js_vfs *vfs, const char *dir, const char *name) {
    char *path = jsi_path_join(dir, name);
    int rc = path ? vfs->remove(vfs, path) : JS_ENOMEM;
    jsi_free(path);
    if (rc == 0 || rc == JS_ENOTFOUND)
        rc = vfs->sync_dir(vfs, dir);
    return rc;
}

int jsi_ccfg_pair_remove(js_vfs *vfs, const char *dir, uint64_t id) {
    char a[32], b[32];
    jsi_ccfg_pair_names(id, a, b);
    int rc = remove_synced(vfs, dir, b);
    return rc ? rc : remove_synced(vfs, dir, a);
}

/* ---- reading at open ------------------------------------------------------ */

typedef struct copy {
    const char *name;
    jsi_buf raw;
    int rc;         /* 0, JS_ENOTFOUND, JS_ECORRUPT, or another error */
    jsi_ccfg cfg;   /* when rc is 0 */
    int64_t created;
} copy;

/* A copy naming another consumer, or none with a durable name (only
 * durable consumers are stored), is damage too. */
static int read_copy(js_vfs *vfs, const char *dir, uint64_t id, copy *c) {
    uint64_t got = 0;
    char *path = jsi_path_join(dir, c->name);
    int rc = path ? jsi_vfs_read_file(vfs, path, &c->raw, MAX_FILE)
                  : JS_ENOMEM;
    jsi_free(path);
    if (rc == 0)
        rc = jsi_ccfg_file_decode(c->raw.p, c->raw.len, &got, &c->created,
                                  &c->cfg);
    if (rc == 0 && (got != id || !c->cfg.c.durable_name)) {
        jsi_ccfg_free(&c->cfg);
        rc = JSI_ERR(JS_ECORRUPT, 0, "%s/%s: %s", dir, c->name,
                     got != id ? "another consumer's config"
                               : "no durable name");
    }
    return c->rc = rc;
}

/* Whether `other` is to be rewritten from the config `win`. A copy that
 * could not be read (an I/O error) is left alone. */
static int stale(const copy *win, const copy *other) {
    if (other->rc == JS_ECORRUPT)
        return 1;
    if (other->rc == JS_ENOTFOUND)
        return jsi_ccfg_file_copies(win->raw.p, win->raw.len) > 1;
    return other->rc == 0 && (other->raw.len != win->raw.len ||
                              memcmp(other->raw.p, win->raw.p,
                                     win->raw.len) != 0);
}

static int fatal(int rc) {
    return rc != 0 && rc != JS_ENOTFOUND && rc != JS_ECORRUPT;
}

int jsi_ccfg_pair_load(js_vfs *vfs, const char *dir, uint64_t id,
                       int64_t *created, jsi_ccfg *out) {
    char na[32], nb[32];
    copy a, b, *win = NULL;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.name = na;
    b.name = nb;
    jsi_ccfg_pair_names(id, na, nb);
    int rc = read_copy(vfs, dir, id, &a);
    /* B cannot stand in for an A that could not be read: it may be an
     * update A never took. With A read, B is only checked. */
    if (!fatal(rc))
        rc = read_copy(vfs, dir, id, &b);
    if (rc == JS_ENOMEM || fatal(a.rc) || (fatal(rc) && a.rc != 0))
        goto out;
    win = a.rc == 0 ? &a : b.rc == 0 ? &b : NULL;
    if (!win) {
        rc = JSI_ERR(JS_ECORRUPT, 0, "%s/%s: consumer config damaged, and "
                     "its copy %s too", dir, na, nb);
        goto out;
    }
    copy *other = win == &a ? &b : &a;
    if (stale(win, other)) {
        rc = jsi_vfs_write_atomic(vfs, dir, other->name, win->raw.p,
                                  win->raw.len);
        if (rc) {
            rc = JSI_ERR(rc, 0, "%s/%s: repairing consumer config copy: %s",
                         dir, other->name, js_strerror(rc));
            goto out;
        }
    }
    *created = win->created;
    *out = win->cfg;
    memset(&win->cfg, 0, sizeof win->cfg); /* moved */
    win->rc = JS_ENOTFOUND;
    rc = 0;
out:
    if (a.rc == 0)
        jsi_ccfg_free(&a.cfg);
    if (b.rc == 0)
        jsi_ccfg_free(&b.cfg);
    jsi_buf_free(&a.raw);
    jsi_buf_free(&b.raw);
    return rc;
}
