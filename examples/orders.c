/*
 * orders.c - the ORDERS flow: a stream ORDERS on ORDERS.*, publish, info,
 * get, delete, purge. Run it twice: the second run finds the first run's
 * messages, because the store is durable.
 *
 *   orders [store-directory]      (default: ./orders-store)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jetstream.h>

static void die(const char *what, int rc) {
    fprintf(stderr, "orders: %s: %s (%s)\n", what, js_strerror(rc),
            js_errmsg());
    exit(1);
}

static void show_state(js_stream *orders, const char *when) {
    struct js_stream_info *info;
    int rc = js_stream_info(orders, &info);
    if (rc)
        die("info", rc);
    const js_stream_state *s = info->state;
    printf("%-22s msgs=%" PRIu64 " bytes=%" PRIu64 " first=%" PRIu64
           " last=%" PRIu64 " subjects=%" PRIu64 " deleted=%" PRIu64 "\n",
           when, s->msgs, s->bytes, s->first_seq, s->last_seq,
           s->num_subjects, s->num_deleted);
    js_stream_info_free(info);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "orders-store";
    js_store *store;
    js_stream *orders;
    int rc;

    printf("libjetstream %s, store %s\n", js_version(), dir);
    if ((rc = js_open(dir, NULL, &store)) != 0)
        die("open", rc);

    /* Creating a stream that exists with the same config returns it. */
    const char *subjects[] = {"ORDERS.*"};
    js_stream_config cfg = JS_STREAM_CONFIG_INIT;
    cfg.name = "ORDERS";
    cfg.subjects = subjects;
    cfg.num_subjects = 1;
    cfg.max_msgs_per_subject = 1000;
    if ((rc = js_stream_add(store, &cfg, &orders)) != 0)
        die("stream add", rc);
    show_state(orders, "found at open:");

    /* Publish: the stream is found by subject, as in NATS. */
    const char *kinds[] = {"ORDERS.new", "ORDERS.paid", "ORDERS.shipped"};
    js_pub_ack ack = JS_PUB_ACK_INIT;
    for (int i = 0; i < 9; i++) {
        char body[64];
        int n = snprintf(body, sizeof body, "{\"order\":%d}", 100 + i);
        if ((rc = js_publish(store, kinds[i % 3], NULL, 0, body, (size_t)n,
                             &ack)) != 0)
            die("publish", rc);
    }
    printf("published 9, last ack: stream=%s seq=%" PRIu64 "\n", ack.stream,
           ack.seq);

    /* De-duplication: the same Nats-Msg-Id twice stores one message. */
    static const char hdr[] = "NATS/1.0\r\nNats-Msg-Id: order-42\r\n\r\n";
    if ((rc = js_publish(store, "ORDERS.new", hdr, sizeof hdr - 1, "42", 2,
                         &ack)) != 0)
        die("publish with id", rc);
    printf("order-42 stored at seq %" PRIu64 " (duplicate=%d)\n", ack.seq,
           ack.duplicate);
    show_state(orders, "after publishing:");

    /* Get: by sequence and last by subject. */
    js_msg *m;
    if ((rc = js_msg_get_last(orders, "ORDERS.paid", &m)) != 0)
        die("get last", rc);
    size_t len;
    const char *data = js_msg_data(m, &len);
    printf("last ORDERS.paid: seq %" PRIu64 " %.*s\n", js_msg_seq(m),
           (int)len, data);
    uint64_t paid_seq = js_msg_seq(m);
    js_msg_free(m);

    /* Delete one message, then purge the shipped ones. */
    if ((rc = js_msg_delete(orders, paid_seq)) != 0)
        die("delete", rc);
    printf("deleted seq %" PRIu64 "\n", paid_seq);
    js_purge_opts po = JS_PURGE_OPTS_INIT;
    po.filter = "ORDERS.shipped";
    uint64_t purged;
    if ((rc = js_stream_purge(orders, &po, &purged)) != 0)
        die("purge", rc);
    printf("purged %" PRIu64 " ORDERS.shipped messages\n", purged);
    show_state(orders, "kept for the next run:");

    js_stream_release(orders);
    if ((rc = js_close(store)) != 0)
        die("close", rc);
    return 0;
}
