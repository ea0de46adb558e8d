/*
 * install-smoke.c - an out-of-tree program built by scripts/check-install.sh
 * against an installed libjetstream using only `pkg-config jetstream`.
 *
 *   install-smoke <store-dir>
 *
 * Prints the run-time version, checks it matches the header it was compiled
 * with, and opens and closes a store in <store-dir>.
 */
#include <stdio.h>
#include <string.h>

#include <jetstream.h>

int main(int argc, char **argv)
{
    js_store *store = NULL;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: %s <store-dir>\n", argv[0]);
        return 2;
    }
    printf("libjetstream %s\n", js_version());
    if (strcmp(js_version(), JS_VERSION_STRING) != 0) {
        fprintf(stderr, "install-smoke: header says %s, library says %s\n",
                JS_VERSION_STRING, js_version());
        return 1;
    }
    rc = js_open(argv[1], NULL, &store);
    if (rc != 0) {
        fprintf(stderr, "install-smoke: js_open(%s): %s: %s\n", argv[1],
                js_strerror(rc), js_errmsg());
        return 1;
    }
    rc = js_close(store);
    if (rc != 0) {
        fprintf(stderr, "install-smoke: js_close: %s\n", js_strerror(rc));
        return 1;
    }
    printf("opened and closed a store in %s\n", argv[1]);
    return 0;
}
