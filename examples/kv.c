/*
 * kv.c - a configuration store on a key/value bucket. The bucket "config"
 * holds settings such as app.port and db.url. The main thread watches the
 * app.* settings: it prints their current values, then every change a
 * writer thread makes, reading the watcher itself (js_kv_watcher_next: the
 * library starts no thread). At the end it lists the keys and prints one
 * key's history. Run it twice: the second run starts from the first run's
 * settings, because the store is durable.
 *
 *   kv [store-directory]      (default: ./kv-store)
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jetstream.h>

#define NS_PER_SEC ((int64_t)1000000000)
#define WAIT (10 * NS_PER_SEC) /* the longest wait for the next entry */

static void die(const char *what, int rc) {
    fprintf(stderr, "kv: %s: %s (%s)\n", what, js_strerror(rc), js_errmsg());
    exit(1);
}

/* The writer's changes, in order; a NULL value deletes the key. */
static const struct change {
    const char *key;
    const char *value;
} changes[] = {
    {"app.port", "8080"},
    {"app.log_level", "info"},
    {"db.url", "postgres://localhost/app"},
    {"app.port", "8081"},
    {"app.log_level", "debug"},
    {"db.url", "postgres://db.internal/app"},
    {"app.port", "8443"},
    {"app.log_level", NULL},
    {"app.done", "yes"}, /* last: tells the watcher the writer is done */
};
#define NCHANGES (sizeof changes / sizeof changes[0])

/* A bucket handle may be used from several threads at once. */
static void *writer(void *arg) {
    js_kv *kv = arg;
    for (size_t i = 0; i < NCHANGES; i++) {
        const struct change *c = &changes[i];
        int rc = c->value ? js_kv_put(kv, c->key, c->value,
                                      strlen(c->value), NULL)
                          : js_kv_delete_key(kv, c->key, 0);
        if (rc)
            die(c->value ? "put" : "delete", rc);
    }
    return NULL;
}

/* One entry: a value, or a delete or purge marker (which has no value). */
static void show(const char *label, const struct js_kv_entry *e) {
    if (e->op == JS_KV_OP_PUT)
        printf("  %-8s %s = %.*s (revision %" PRIu64 ")\n", label, e->key,
               (int)e->len, e->len ? (const char *)e->value : "",
               e->revision);
    else
        printf("  %-8s %s %s (revision %" PRIu64 ")\n", label, e->key,
               e->op == JS_KV_OP_DEL ? "deleted" : "purged", e->revision);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "kv-store";
    js_store *store;
    js_kv *kv;
    js_kv_watcher *w;
    struct js_kv_entry *e;
    int rc;

    printf("libjetstream %s, store %s\n", js_version(), dir);
    if ((rc = js_open(dir, NULL, &store)) != 0)
        die("open", rc);

    /* Creating a bucket that exists with the same config returns it. */
    js_kv_config cfg = JS_KV_CONFIG_INIT;
    cfg.bucket = "config";
    cfg.history = 5; /* keep each key's last five entries */
    if ((rc = js_kv_create(store, &cfg, &kv)) != 0)
        die("create bucket", rc);

    /* Watch app.*: first the latest entry of each key (the initial
     * values), then one NULL entry, then every change as it is stored.
     * db.url is not under app.>, so its changes are not seen. */
    if ((rc = js_kv_watch(kv, "app.>", NULL, &w)) != 0)
        die("watch", rc);
    printf("current app.> settings:\n");
    for (;;) {
        if ((rc = js_kv_watcher_next(w, WAIT, &e)) != 0)
            die("watch", rc);
        if (e == NULL)
            break; /* the end of the initial values */
        show("initial", e);
        js_kv_entry_free(e);
    }
    printf("-- end of initial values --\n");

    /* Only now start the writer, so that each of its changes comes as an
     * update, and an app.done left by an earlier run is an initial value. */
    pthread_t t;
    if ((rc = pthread_create(&t, NULL, writer, kv)) != 0) {
        fprintf(stderr, "kv: pthread_create: %s\n", strerror(rc));
        return 1;
    }
    uint64_t last = 0;
    for (int done = 0; !done;) {
        if ((rc = js_kv_watcher_next(w, WAIT, &e)) != 0)
            die("watch", rc);
        /* Updates come in the order they were stored. */
        if (e == NULL || e->revision <= last) {
            fprintf(stderr, "kv: watch: update out of order\n");
            return 1;
        }
        last = e->revision;
        show("update", e);
        done = e->op == JS_KV_OP_PUT && strcmp(e->key, "app.done") == 0;
        js_kv_entry_free(e);
    }
    if ((rc = pthread_join(t, NULL)) != 0) {
        fprintf(stderr, "kv: pthread_join: %s\n", strerror(rc));
        return 1;
    }
    /* Stop every watcher before releasing the bucket handle. */
    if ((rc = js_kv_watcher_stop(w)) != 0)
        die("stop watch", rc);

    /* Keys whose latest entry is a value, in byte order: a deleted key
     * is left out. The listing reads the keys a batch at a time. */
    js_kv_keylist *keys;
    const char *key;
    if ((rc = js_kv_keys(kv, NULL, &keys)) != 0)
        die("keys", rc);
    printf("keys:\n");
    while ((rc = js_kv_keys_next(keys, &key)) == 1)
        printf("  %s\n", key);
    if (rc < 0)
        die("keys", rc);
    js_kv_keys_free(keys);

    /* Every stored entry of a key, oldest first, markers included. */
    struct js_kv_entry **hist;
    size_t n;
    if ((rc = js_kv_history(kv, "app.log_level", &hist, &n)) != 0)
        die("history", rc);
    printf("history of app.log_level (at most %d entries kept):\n",
           (int)cfg.history);
    for (size_t i = 0; i < n; i++)
        show("stored", hist[i]);
    js_kv_history_free(hist, n);

    js_kv_release(kv);
    if ((rc = js_close(store)) != 0)
        die("close", rc);
    return 0;
}
