/*
 * workqueue.c - a pool of worker threads draining a work-queue stream.
 * A producer publishes jobs to JOBS (retention workqueue); four workers
 * share one durable pull consumer, each fetching a batch at a time,
 * "processing" each job and acking it, which also removes it from the
 * stream; one js_msg_ack_sync() per batch makes the batch's acks durable. At the end every job was processed exactly
 * once and the stream is empty.
 *
 *   workqueue [store-directory] [jobs]   (default: ./workqueue-store 10000)
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jetstream.h>

#define WORKERS 4
#define NS_PER_MS ((int64_t)1000000)

static int jobs;
static unsigned char *done;        /* times each job was processed */
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;

static void die(const char *what, int rc) {
    fprintf(stderr, "workqueue: %s: %s (%s)\n", what, js_strerror(rc),
            js_errmsg());
    exit(1);
}

/* A job's payload is its number; "processing" records it. */
static void process(const js_msg *m) {
    size_t len;
    const char *data = js_msg_data(m, &len);
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < 31 ? len : 31), data);
    int job = atoi(buf);
    pthread_mutex_lock(&done_mu);
    if (job >= 0 && job < jobs)
        done[job]++;
    pthread_mutex_unlock(&done_mu);
}

static void *worker(void *arg) {
    js_consumer *c = arg;
    js_fetch_opts o = JS_FETCH_OPTS_INIT;
    o.timeout = 500 * NS_PER_MS; /* idle this long: the queue is drained */
    for (;;) {
        js_msg *batch[50];
        size_t n;
        int rc = js_consumer_fetch(c, batch, 50, &o, &n);
        if (rc == JS_ETIMEOUT)
            return NULL;
        if (rc)
            die("fetch", rc);
        /* Plain acks are queued in memory; the ack_sync of the batch's
         * last job makes them all durable with one write and sync. */
        for (size_t i = 0; i < n; i++) {
            process(batch[i]);
            rc = i + 1 < n ? js_msg_ack(batch[i]) : js_msg_ack_sync(batch[i]);
            if (rc)
                die("ack", rc);
            js_msg_free(batch[i]);
        }
    }
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "workqueue-store";
    jobs = argc > 2 ? atoi(argv[2]) : 10000;
    js_store *store;
    js_stream *q;
    js_consumer *c;
    int rc;

    if (jobs <= 0 || !(done = calloc((size_t)jobs, 1)))
        return 1;
    if ((rc = js_open(dir, NULL, &store)) != 0)
        die("open", rc);
    const char *subjects[] = {"jobs.>"};
    js_stream_config sc = JS_STREAM_CONFIG_INIT;
    sc.name = "JOBS";
    sc.subjects = subjects;
    sc.num_subjects = 1;
    sc.retention = JS_RETENTION_WORKQUEUE;
    if ((rc = js_stream_add(store, &sc, &q)) != 0)
        die("stream", rc);
    js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
    cc.durable_name = "WORKERS";
    if ((rc = js_consumer_add(q, &cc, &c)) != 0)
        die("consumer", rc);

    /* Jobs go in batches: one durable write per batch. */
    js_pub_msg batch[100];
    char payload[100][16];
    for (int i = 0; i < jobs; i += 100) {
        size_t n = 0;
        for (int k = i; k < jobs && k < i + 100; k++, n++) {
            snprintf(payload[n], sizeof payload[n], "%d", k);
            batch[n] = (js_pub_msg){"jobs.resize", NULL, 0, payload[n],
                                    strlen(payload[n])};
        }
        if ((rc = js_publish_batch(store, batch, n, NULL, NULL)) != 0)
            die("publish", rc);
    }
    printf("published %d jobs\n", jobs);

    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&t[i], NULL, worker, c);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);

    int once = 0, twice = 0, never = 0;
    for (int i = 0; i < jobs; i++)
        done[i] == 1 ? once++ : done[i] == 0 ? never++ : twice++;
    struct js_stream_info *si;
    if ((rc = js_stream_info(q, &si)) != 0)
        die("info", rc);
    printf("processed once: %d, more than once: %d, never: %d; "
           "left in the stream: %" PRIu64 "\n",
           once, twice, never, si->state->msgs);
    int ok = once == jobs && si->state->msgs == 0;
    js_stream_info_free(si);
    js_consumer_release(c);
    js_stream_release(q);
    free(done);
    if ((rc = js_close(store)) != 0)
        die("close", rc);
    return ok ? 0 : 1;
}
