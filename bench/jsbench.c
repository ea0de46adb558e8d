/*
 * jsbench - publish throughput of a file-backed stream, per sync policy,
 * single calls and batches, with a raw-file baseline measured in the same
 * run (write(2) of the same bytes, and write + fdatasync per call), so the
 * figures can be read as ratios on a noisy machine.
 *
 *   jsbench [-d dir] [-n msgs] [-s size[,size...]] [-b batch] [-r reps]
 *           [-p always,interval,none] [-m single,batch] [-t threads]
 *           [-T seconds] [-O [-u subjects]] [-C] [-K [-u keys]]
 *
 * -O instead measures js_open of a store of -n messages (on -u distinct
 * subjects), with its index checkpoint and with a full rebuild, the heap
 * memory the open store holds, and the size of the checkpoint.
 *
 * -C instead measures consuming -n messages of each size from a durable
 * pull consumer: fetch batches of -b (100 unless given) and ack each
 * message (explicit: "fetch+ack"; "ack+sync" makes the batch's last ack
 * an ack_sync, so each batch's acks are durable), or fetch with ack policy
 * none; the baseline is reading the same messages with js_msg_get_next()
 * in the same run.
 *
 * -K instead measures a key/value bucket: -n puts (100,000 unless given) of
 * -s byte values (100) over -u keys (10,000), then as many gets of random
 * keys, per sync policy; the baseline is js_publish of the same messages
 * and js_msg_get_last of the same subjects in the same run.
 *
 * Each row runs until it has published -n messages or -T seconds passed,
 * repeats -r times on a fresh store, and prints the median.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jetstream.h>

typedef struct opts {
    const char *dir;
    uint64_t n;
    size_t sizes[8];
    int nsizes;
    size_t batch;
    int reps;
    int policies[3];
    int npolicies;
    int modes[2]; /* 0 single, 1 batch */
    int nmodes;
    int threads;
    double max_secs;
    int open_mode;
    uint64_t subjects; /* -O: distinct subjects */
    int consume_mode;
    int kv_mode;
    int kv_scale;
} opts;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "jsbench: %s: %s (%s)\n", what, js_strerror(rc),
            js_errmsg());
    exit(1);
}

static void rm_rf(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "jsbench: could not remove %s\n", path);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- one run ------------------------------------------------------------ */

typedef struct run {
    const opts *o;
    js_store *store;
    size_t size;
    int batch;
    uint64_t quota; /* messages for this thread */
    uint64_t done;
    double t_end;
} run;

static void *pub_thread(void *arg) {
    run *r = arg;
    char *payload = malloc(r->size ? r->size : 1);
    memset(payload, 'x', r->size);
    size_t b = r->batch ? r->o->batch : 1;
    js_pub_msg *msgs = calloc(b, sizeof *msgs);
    for (size_t i = 0; i < b; i++) {
        msgs[i].subject = "BENCH.data";
        msgs[i].data = payload;
        msgs[i].len = r->size;
    }
    while (r->done < r->quota) {
        size_t k = b;
        if (r->quota - r->done < k)
            k = (size_t)(r->quota - r->done);
        int rc = r->batch ? js_publish_batch(r->store, msgs, k, NULL, NULL)
                          : js_publish(r->store, "BENCH.data", NULL, 0,
                                       payload, r->size, NULL);
        if (rc)
            die("publish", rc);
        r->done += k;
        if ((r->done & 63) == 0 || r->batch)
            if (now_s() > r->t_end)
                break;
    }
    free(msgs);
    free(payload);
    return NULL;
}

/* A new store in dir with the stream BENCH on BENCH.> */
static js_store *fresh_store(const char *dir, int policy) {
    js_open_opts oo = JS_OPEN_OPTS_INIT;
    oo.sync = policy;
    js_store *st;
    int rc = js_open(dir, &oo, &st);
    if (rc)
        die("open", rc);
    js_stream_config c = JS_STREAM_CONFIG_INIT;
    const char *subs[] = {"BENCH.>"};
    c.name = "BENCH";
    c.subjects = subs;
    c.num_subjects = 1;
    if ((rc = js_stream_add(st, &c, NULL)) != 0)
        die("stream add", rc);
    return st;
}

/* msgs/s of one run on a fresh store */
static double one_run(const opts *o, int policy, int batch, size_t size,
                      uint64_t *count) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/run", o->dir);
    rm_rf(dir);
    js_store *st = fresh_store(dir, policy);
    int rc;
    run rs[64];
    pthread_t th[64];
    int nt = o->threads;
    double t0 = now_s();
    for (int i = 0; i < nt; i++) {
        rs[i] = (run){o, st, size, batch, o->n / (uint64_t)nt, 0,
                      t0 + o->max_secs};
        pthread_create(&th[i], NULL, pub_thread, &rs[i]);
    }
    uint64_t total = 0;
    for (int i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        total += rs[i].done;
    }
    if (policy != JS_SYNC_ALWAYS && (rc = js_flush(st)) != 0)
        die("flush", rc);
    double dt = now_s() - t0;
    if ((rc = js_close(st)) != 0)
        die("close", rc);
    rm_rf(dir);
    *count = total;
    return (double)total / dt;
}

/* ---- baselines: the same bytes through write(2) ------------------------- */

/* Record bytes per message as the library stores them. */
static size_t rec_bytes(size_t size) { return 40 + strlen("BENCH.data") + size; }

static double raw_run(const opts *o, size_t size, int batch, int sync_each,
                      uint64_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/raw", o->dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) {
        perror("jsbench: raw");
        exit(1);
    }
    size_t rb = rec_bytes(size), per = batch ? o->batch : 1;
    size_t chunk = rb * per;
    char *buf = calloc(1, chunk);
    double t0 = now_s(), t_end = t0 + o->max_secs;
    uint64_t done = 0;
    while (done < n && now_s() < t_end) {
        if (write(fd, buf, chunk) != (ssize_t)chunk) {
            perror("jsbench: raw write");
            exit(1);
        }
        if (sync_each)
            fdatasync(fd);
        done += per;
    }
    fdatasync(fd);
    double dt = now_s() - t0;
    close(fd);
    unlink(path);
    free(buf);
    return (double)done / dt;
}

/* ---- open time and memory ----------------------------------------------- */

/* Heap bytes in use (KiB): unlike RSS, not hidden by memory the benchmark
 * freed before forking the child that measures. */
static long heap_kib(void) {
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

/* Total bytes of the files matching pattern, and how many there are. */
static uint64_t files_size(const char *pattern, size_t *count) {
    glob_t g;
    uint64_t total = 0;
    *count = 0;
    if (glob(pattern, 0, NULL, &g) != 0)
        return 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct stat st;
        if (stat(g.gl_pathv[i], &st) == 0)
            total += (uint64_t)st.st_size;
    }
    *count = g.gl_pathc;
    globfree(&g);
    return total;
}

/* Time js_open of a store holding o->n messages, with and without its
 * index checkpoint, and the memory the open store holds. */
static void open_bench(const opts *o, size_t size) {
    char dir[4096], cmd[8400];
    snprintf(dir, sizeof dir, "%s/open", o->dir);
    rm_rf(dir);
    js_open_opts oo = JS_OPEN_OPTS_INIT;
    oo.sync = JS_SYNC_NONE;
    js_store *st = fresh_store(dir, JS_SYNC_NONE);
    int rc;
    char *payload = calloc(1, size ? size : 1);
    js_pub_msg *msgs = calloc(o->batch, sizeof *msgs);
    /* o->subjects distinct subjects, round robin (KV-like keys). */
    char (*subj)[32] = calloc(o->batch, sizeof *subj);
    double pub_t0 = now_s();
    for (uint64_t done = 0; done < o->n; done += o->batch) {
        size_t k = o->n - done < o->batch ? (size_t)(o->n - done) : o->batch;
        for (size_t i = 0; i < k; i++) {
            snprintf(subj[i], sizeof subj[i], "BENCH.k%" PRIu64,
                     (done + i) % o->subjects);
            msgs[i] = (js_pub_msg){subj[i], NULL, 0, payload, size};
        }
        if ((rc = js_publish_batch(st, msgs, k, NULL, NULL)) != 0)
            die("publish", rc);
    }
    free(subj);
    if ((rc = js_close(st)) != 0)
        die("close", rc);
    double pub_s = now_s() - pub_t0;
    size_t nidx, nblk;
    snprintf(cmd, sizeof cmd, "%s/streams/*/index", dir);
    uint64_t idx = files_size(cmd, &nidx);
    snprintf(cmd, sizeof cmd, "%s/streams/*/*.blk", dir);
    uint64_t blk = files_size(cmd, &nblk);
    printf("store of %" PRIu64 " msgs of %zu B on %" PRIu64 " subjects: "
           "published and closed in %.2f s (%.0f msgs/s); %zu block files, "
           "%.1f MiB; checkpoint %.1f KiB\n", o->n, size, o->subjects, pub_s,
           (double)o->n / pub_s, nblk, (double)blk / 1048576.0,
           (double)idx / 1024.0);
    for (int with_index = 1; with_index >= 0; with_index--) {
        double t[16];
        long mem[16];
        int reps = o->reps > 16 ? 16 : o->reps;
        for (int r = 0; r < reps; r++) {
            if (!with_index) {
                snprintf(cmd, sizeof cmd, "rm -f '%s'/streams/*/index", dir);
                if (system(cmd) != 0)
                    die("rm index", JS_EIO);
            }
            /* Each open in a fresh child, so its memory is its own. */
            int fds[2];
            if (pipe(fds) != 0)
                die("pipe", JS_EIO);
            pid_t pid = fork();
            if (pid == 0) {
                long before = heap_kib();
                double t0 = now_s();
                if ((rc = js_open(dir, &oo, &st)) != 0)
                    die("reopen", rc);
                double res[2] = {now_s() - t0, (double)(heap_kib() - before)};
                if (write(fds[1], res, sizeof res) != (ssize_t)sizeof res)
                    _exit(1);
                js_close(st);
                _exit(0);
            }
            double res[2] = {0, 0};
            close(fds[1]);
            if (read(fds[0], res, sizeof res) != (ssize_t)sizeof res)
                die("child", JS_EIO);
            close(fds[0]);
            waitpid(pid, NULL, 0);
            t[r] = res[0];
            mem[r] = (long)res[1];
        }
        double rs[16];
        for (int r = 0; r < reps; r++)
            rs[r] = (double)mem[r];
        printf("open %" PRIu64 " msgs of %zu B on %" PRIu64 " subjects %-14s "
               "%8.1f ms   heap +%.0f KiB\n", o->n, size, o->subjects,
               with_index ? "(checkpoint)" : "(full rebuild)",
               median(t, reps) * 1e3, median(rs, reps));
    }
    free(msgs);
    free(payload);
    rm_rf(dir);
}

static const char *policy_name(int p) {
    return p == JS_SYNC_ALWAYS ? "always" : p == JS_SYNC_INTERVAL ? "interval"
                                                                   : "none";
}

/* ---- consume --------------------------------------------------------------- */

/* A store of n messages of size bytes, written in batches under NONE. */
static js_store *filled_store(const opts *o, const char *dir, int policy,
                              size_t size, js_stream **s) {
    js_store *st = fresh_store(dir, policy);
    char *data = calloc(1, size + 1);
    js_pub_msg batch[1000];
    int rc;
    for (size_t i = 0; i < 1000; i++)
        batch[i] = (js_pub_msg){"BENCH.data", NULL, 0, data, size};
    for (uint64_t done = 0; done < o->n;) {
        size_t k = o->n - done < 1000 ? (size_t)(o->n - done) : 1000;
        if ((rc = js_publish_batch(st, batch, k, NULL, NULL)) != 0)
            die("publish", rc);
        done += k;
    }
    free(data);
    if ((rc = js_flush(st)) != 0 || (rc = js_stream_lookup(st, "BENCH", s)))
        die("fill", rc);
    return st;
}

/* msgs/s draining the stream: mode 0 fetch + ack each, 1 ack none,
 * 2 get_next (the baseline), 3 fetch + ack each, the last with ack_sync. */
static double consume_run(const opts *o, int policy, size_t size, int mode) {
    char dir[4096];
    js_stream *s;
    js_consumer *c = NULL;
    js_msg *v[1000];
    size_t batch = o->batch > 1000 ? 1000 : o->batch;
    int rc;
    snprintf(dir, sizeof dir, "%s/consume", o->dir);
    rm_rf(dir);
    js_store *st = filled_store(o, dir, policy, size, &s);
    js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
    cc.durable_name = "BENCH";
    cc.ack_policy = mode == 1 ? JS_ACK_NONE : JS_ACK_EXPLICIT;
    cc.max_ack_pending = -1;
    if (mode != 2 && (rc = js_consumer_add(s, &cc, &c)) != 0)
        die("consumer", rc);
    uint64_t got = 0, seq = 1;
    double t0 = now_s();
    while (got < o->n) {
        size_t n = 0;
        if (mode == 2) {
            if ((rc = js_msg_get_next(s, NULL, seq, &v[0])) != 0)
                die("get_next", rc);
            seq = js_msg_seq(v[0]) + 1;
            n = 1;
        } else if ((rc = js_consumer_fetch(c, v, batch, NULL, &n)) != 0) {
            die("fetch", rc);
        }
        for (size_t i = 0; i < n; i++) {
            if (mode == 3 && i + 1 == n)
                rc = js_msg_ack_sync(v[i]);
            else if (mode == 0 || mode == 3)
                rc = js_msg_ack(v[i]);
            if (rc)
                die("ack", rc);
            js_msg_free(v[i]);
        }
        got += n;
    }
    double dt = now_s() - t0;
    js_consumer_release(c);
    js_stream_release(s);
    if ((rc = js_close(st)) != 0)
        die("close", rc);
    rm_rf(dir);
    return (double)got / dt;
}

/* Time to create a consumer starting mid-stream and read its exact
 * num_pending, on n messages over 100 subjects, by filter. */
static void pending_cost(const opts *o, size_t size) {
    static const char *filters[] = {NULL, "BENCH.s7", "BENCH.*", "*.s7"};
    char dir[4096], subj[32];
    js_stream *s;
    int rc;
    snprintf(dir, sizeof dir, "%s/pending", o->dir);
    rm_rf(dir);
    js_store *st = fresh_store(dir, JS_SYNC_NONE);
    char *data = calloc(1, size + 1);
    for (uint64_t i = 0; i < o->n; i++) {
        snprintf(subj, sizeof subj, "BENCH.s%u", (unsigned)(i % 100));
        if ((rc = js_publish(st, subj, NULL, 0, data, size, NULL)) != 0)
            die("publish", rc);
    }
    free(data);
    if ((rc = js_close(st)) != 0)
        die("close", rc);
    js_open_opts oo = JS_OPEN_OPTS_INIT;
    if ((rc = js_open(dir, &oo, &st)) != 0 ||
        (rc = js_stream_lookup(st, "BENCH", &s)) != 0)
        die("reopen", rc);
    for (int f = 0; f < 4; f++) {
        js_consumer_config cc = JS_CONSUMER_CONFIG_INIT;
        struct js_consumer_info *info = NULL;
        js_consumer *c = NULL;
        char name[16];
        snprintf(name, sizeof name, "P%d", f);
        cc.durable_name = name;
        cc.filter_subject = filters[f];
        cc.deliver_policy = JS_DELIVER_BY_START_SEQUENCE;
        cc.opt_start_seq = o->n / 2 + 1;
        double t0 = now_s();
        if ((rc = js_consumer_add(s, &cc, &c)) != 0 ||
            (rc = js_consumer_info(c, &info)) != 0)
            die("consumer", rc);
        double t1 = now_s();
        uint64_t np = info->num_pending;
        js_consumer_info_free(info);
        if ((rc = js_consumer_info(c, &info)) != 0)
            die("info", rc);
        double t2 = now_s();
        js_consumer_info_free(info);
        printf("create+info, filter %-10s from seq %" PRIu64 ": %8.0f us "
               "(num_pending %" PRIu64 "), info again %6.1f us\n",
               filters[f] ? filters[f] : "(none)", o->n / 2 + 1,
               (t1 - t0) * 1e6, np, (t2 - t1) * 1e6);
        js_consumer_release(c);
    }
    js_stream_release(s);
    if ((rc = js_close(st)) != 0)
        die("close", rc);
    rm_rf(dir);
}

static void consume_rows(const opts *o, int policy, size_t size) {
    static const char *names[] = {"fetch+ack", "ack-none", "", "ack+sync"};
    static const int modes[] = {0, 1, 3};
    double v[4][16], raw[16];
    int reps = o->reps > 16 ? 16 : o->reps;
    for (int i = 0; i < reps; i++) {
        for (int m = 0; m < 3; m++)
            v[modes[m]][i] = consume_run(o, policy, size, modes[m]);
        raw[i] = consume_run(o, policy, size, 2);
    }
    double rm = median(raw, reps);
    for (int k = 0; k < 3; k++) {
        int m = modes[k];
        double x = median(v[m], reps);
        printf("%-8s %-10s %7zu %6zu %12.0f %14.0f %6.2f\n",
               policy_name(policy), names[m], size, o->batch, x, rm, x / rm);
    }
    fflush(stdout);
}

/* ---- key/value ------------------------------------------------------------- */

/* ops/s of -n puts (mode 0) or gets (mode 1) over -u keys; base != 0
 * measures the same through the stream API instead. */
static double kv_run(const opts *o, int policy, size_t size, int get,
                     int base) {
    char dir[4096], key[32], subj[64];
    js_open_opts oo = JS_OPEN_OPTS_INIT;
    js_store *st;
    js_kv *kv;
    js_stream *s;
    int rc;
    snprintf(dir, sizeof dir, "%s/kv", o->dir);
    rm_rf(dir);
    oo.sync = policy;
    js_kv_config kc = JS_KV_CONFIG_INIT;
    kc.bucket = "BENCH";
    if ((rc = js_open(dir, &oo, &st)) != 0 ||
        (rc = js_kv_create(st, &kc, &kv)) != 0 ||
        (rc = js_stream_lookup(st, "KV_BENCH", &s)) != 0)
        die("kv open", rc);
    char *val = calloc(1, size + 1);
    uint64_t keys = o->subjects > 1 ? o->subjects : 10000, rng = 88172645463325252u;
    double t0 = 0;
    for (int phase = 0; phase < 2; phase++) {
        if (phase == get)
            t0 = now_s();
        for (uint64_t i = 0; i < o->n; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            uint64_t k = phase ? rng % keys : i % keys;
            snprintf(key, sizeof key, "k%" PRIu64, k);
            snprintf(subj, sizeof subj, "$KV.BENCH.%s", key);
            if (phase == 0) {
                rc = base ? js_publish(st, subj, NULL, 0, val, size, NULL)
                          : js_kv_put(kv, key, val, size, NULL);
            } else if (base) {
                js_msg *m;
                if ((rc = js_msg_get_last(s, subj, &m)) == 0)
                    js_msg_free(m);
            } else {
                struct js_kv_entry *e;
                if ((rc = js_kv_get(kv, key, 0, &e)) == 0)
                    js_kv_entry_free(e);
            }
            if (rc)
                die(phase ? "get" : "put", rc);
        }
        if (phase == get)
            break;
    }
    double dt = now_s() - t0;
    free(val);
    js_stream_release(s);
    js_kv_release(kv);
    if ((rc = js_close(st)) != 0)
        die("close", rc);
    rm_rf(dir);
    return (double)o->n / dt;
}

static void kv_rows(const opts *o, int policy, size_t size) {
    static const char *names[] = {"put", "get"};
    int reps = o->reps > 16 ? 16 : o->reps;
    for (int g = 0; g < 2; g++) {
        double v[16], b[16];
        for (int i = 0; i < reps; i++) {
            v[i] = kv_run(o, policy, size, g, 0);
            b[i] = kv_run(o, policy, size, g, 1);
        }
        double m = median(v, reps), mb = median(b, reps);
        printf("%-8s %-4s %7zu %8" PRIu64 " %12.0f %12.0f %6.2f\n",
               policy_name(policy), names[g], size,
               o->subjects > 1 ? o->subjects : 10000, m, mb, m / mb);
        fflush(stdout);
    }
}

/* ---- kv at scale: keys and watch over -u keys --------------------------- */

static void kv_key(char *b, size_t cap, uint64_t i) {
    snprintf(b, cap, "g%04u.k%07u", (unsigned)(i / 1000 % 10000),
             (unsigned)(i % 10000000));
}

/* Peak heap growth (KiB) seen at the samples of one measured walk. */
typedef struct walk_mem {
    long base, peak;
} walk_mem;

static void walk_sample(walk_mem *w) {
    long d = heap_kib() - w->base;
    if (d > w->peak)
        w->peak = d;
}

/* mallinfo2 walks the whole heap: sample rarely, and only in the pass
 * that measures memory (w != NULL), never in the timed one. */
#define SAMPLE_EVERY 65536

static void walk_start(walk_mem *w) {
    if (w) {
        w->base = heap_kib();
        w->peak = 0;
    }
}

static void walk_step(walk_mem *w, uint64_t n) {
    if (w && n % SAMPLE_EVERY == 0)
        walk_sample(w);
}

static double keys_walk(js_kv *kv, const char *filter, uint64_t *n,
                        walk_mem *w) {
    js_kv_keylist *l;
    const char *key;
    int rc;
    walk_start(w);
    double t0 = now_s();
    if ((rc = js_kv_keys(kv, filter, &l)) != 0)
        die("keys", rc);
    *n = 0;
    while ((rc = js_kv_keys_next(l, &key)) == 1)
        walk_step(w, ++*n);
    if (rc)
        die("keys_next", rc);
    if (w)
        walk_sample(w);
    js_kv_keys_free(l);
    return now_s() - t0;
}

static double watch_walk(js_kv *kv, const char *filter, uint64_t *n,
                         walk_mem *w) {
    js_kv_watcher *wt;
    struct js_kv_entry *e;
    int rc;
    walk_start(w);
    double t0 = now_s();
    if ((rc = js_kv_watch(kv, filter, NULL, &wt)) != 0)
        die("watch", rc);
    *n = 0;
    while ((rc = js_kv_watcher_next(wt, 0, &e)) == 0 && e) {
        js_kv_entry_free(e);
        walk_step(w, ++*n);
    }
    if (rc)
        die("watcher_next", rc);
    if (w)
        walk_sample(w);
    js_kv_watcher_stop(wt);
    return now_s() - t0;
}

/* A writer rewriting random keys while a watch reads its initial values. */
typedef struct rewriter {
    js_kv *kv;
    uint64_t keys, puts;
    volatile int stop;
} rewriter;

static void *rewrite_main(void *arg) {
    rewriter *w = arg;
    char key[40];
    uint64_t rng = 0x2545F4914F6CDD1Du;
    while (!w->stop) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        kv_key(key, sizeof key, rng % w->keys);
        if (js_kv_put(w->kv, key, "x", 1, NULL) != 0)
            break;
        w->puts++;
    }
    return NULL;
}

/* Baseline: read every message of the bucket's stream in order (what a
 * listing without a subject index has to do). */
static double scan_walk(js_stream *s, uint64_t *n) {
    js_msg *m;
    uint64_t seq = 1;
    int rc;
    double t0 = now_s();
    *n = 0;
    while ((rc = js_msg_get_next(s, NULL, seq, &m)) == 0) {
        seq = js_msg_seq(m) + 1;
        js_msg_free(m);
        ++*n;
    }
    if (rc != JS_EMSG_NOT_FOUND)
        die("scan", rc);
    return now_s() - t0;
}

/* Random gets, then random rewrites: past the block cache each one whose
 * message sits in an evicted block loads that block. */
static void random_ops(js_kv *kv, uint64_t keys) {
    enum { OPS = 2000 };
    char key[40];
    uint64_t rng = 0x9E3779B97F4A7C15u;
    for (int put = 0; put < 2; put++) {
        double t0 = now_s();
        for (int i = 0; i < OPS; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            kv_key(key, sizeof key, rng % keys);
            struct js_kv_entry *e;
            int rc = put ? js_kv_put(kv, key, "x", 1, NULL)
                         : js_kv_get(kv, key, 0, &e);
            if (rc)
                die(put ? "put" : "get", rc);
            if (!put)
                js_kv_entry_free(e);
        }
        printf("random %-19s %8d %10.1f %12.0f\n", put ? "puts" : "gets", OPS,
               (now_s() - t0) * 1e3, OPS / (now_s() - t0));
    }
}

static void kv_scale(const opts *o, size_t size) {
    char dir[4096], key[40];
    js_open_opts oo = JS_OPEN_OPTS_INIT;
    js_store *st;
    js_kv *kv;
    js_stream *s;
    int rc;
    uint64_t keys = o->subjects > 1 ? o->subjects : 1000000;
    snprintf(dir, sizeof dir, "%s/kvscale", o->dir);
    rm_rf(dir);
    oo.sync = JS_SYNC_NONE;
    js_kv_config kc = JS_KV_CONFIG_INIT;
    kc.bucket = "BENCH";
    if ((rc = js_open(dir, &oo, &st)) != 0 ||
        (rc = js_kv_create(st, &kc, NULL)) != 0)
        die("kv open", rc);
    char *val = calloc(1, size + 1);
    double t0 = now_s();
    if ((rc = js_kv_open(st, "BENCH", &kv)) != 0)
        die("kv open", rc);
    for (uint64_t i = 0; i < keys; i++) {
        kv_key(key, sizeof key, i);
        if ((rc = js_kv_put(kv, key, val, size, NULL)) != 0)
            die("put", rc);
    }
    double put_s = now_s() - t0;
    js_kv_release(kv);
    js_close(st);
    free(val);
    long h0 = heap_kib();
    t0 = now_s();
    if ((rc = js_open(dir, &oo, &st)) != 0 ||
        (rc = js_kv_open(st, "BENCH", &kv)) != 0 ||
        (rc = js_stream_lookup(st, "KV_BENCH", &s)) != 0)
        die("reopen", rc);
    printf("%" PRIu64 " keys of %zu B: put in %.2f s; reopened in %.0f ms "
           "holding %.1f MiB of heap (index included)\n", keys, size, put_s,
           (now_s() - t0) * 1e3, (double)(heap_kib() - h0) / 1024.0);
    /* ratio: the walk's time over the scan's (below 1: faster). */
    printf("%-26s %8s %10s %12s %10s %8s\n", "walk", "entries", "ms",
           "entries/s", "peak KiB", "time/scan");
    int reps = o->reps > 16 ? 16 : o->reps;
    double scan[16], t[4][16];
    long peak[4][16];
    uint64_t n[5];
    const char *names[4] = {"keys (all)", "keys g0012.>", "watch (all, to marker)",
                            "watch g0012.>"};
    const char *filters[4] = {NULL, "g0012.>", NULL, "g0012.>"};
    for (int r = 0; r < reps; r++) {
        scan[r] = scan_walk(s, &n[4]);
        for (int k = 0; k < 4; k++) {
            walk_mem w;
            uint64_t dummy;
            t[k][r] = k < 2 ? keys_walk(kv, filters[k], &n[k], NULL)
                            : watch_walk(kv, filters[k], &n[k], NULL);
            if (k < 2)
                keys_walk(kv, filters[k], &dummy, &w);
            else
                watch_walk(kv, filters[k], &dummy, &w);
            peak[k][r] = w.peak;
        }
    }
    /* A watch while another thread rewrites keys (each put removes the
     * key's previous entry, which the watch may not have read yet). */
    double wt[16], wp[16];
    /* Past the block cache, a rewrite whose old entry sits in an evicted
     * block loads that whole block to remove the entry, and the watch
     * and the writer then take turns evicting each other's blocks: that
     * measures the cache, not the watch. */
    int write_row = keys <= 100000;
    for (int r = 0; write_row && r < reps; r++) {
        rewriter rw = {kv, keys, 0, 0};
        pthread_t th;
        pthread_create(&th, NULL, rewrite_main, &rw);
        uint64_t got;
        wt[r] = watch_walk(kv, NULL, &got, NULL);
        rw.stop = 1;
        pthread_join(th, NULL);
        wp[r] = (double)rw.puts / wt[r];
    }
    double ms = median(scan, reps);
    printf("%-26s %8" PRIu64 " %10.1f %12.0f %10s %8.3f\n",
           "baseline: stream scan", n[4], ms * 1e3, (double)n[4] / ms, "-",
           1.0);
    for (int k = 0; k < 4; k++) {
        double pk[16];
        for (int r = 0; r < reps; r++)
            pk[r] = (double)peak[k][r];
        double m = median(t[k], reps);
        printf("%-26s %8" PRIu64 " %10.1f %12.0f %10.0f %8.3f\n", names[k],
               n[k], m * 1e3, (double)n[k] / m, median(pk, reps), m / ms);
    }
    double m = write_row ? median(wt, reps) : 0;
    if (!write_row)
        printf("%-26s (only up to 100000 keys: see -u)\n",
               "watch (all), writer on");
    else
        printf("%-26s %8" PRIu64 " %10.1f %12.0f %10s %8.3f   (writer: %.0f "
           "puts/s)\n", "watch (all), writer on", keys, m * 1e3,
           (double)keys / m, "-", m / ms, median(wp, reps));
    random_ops(kv, keys);
    js_stream_release(s);
    js_kv_release(kv);
    js_close(st);
    rm_rf(dir);
}

/* ---- driver ------------------------------------------------------------- */

static void row(const opts *o, int policy, int batch, size_t size) {
    double v[16], raw[16];
    uint64_t cnt = 0;
    int reps = o->reps > 16 ? 16 : o->reps;
    /* Durable single calls with one thread run ~1 fsync each: cap them. */
    opts oo = *o;
    if (!batch && policy == JS_SYNC_ALWAYS && oo.n > 20000 && oo.threads == 1)
        oo.n = 20000;
    for (int i = 0; i < reps; i++) {
        v[i] = one_run(&oo, policy, batch, size, &cnt);
        /* Baseline in the same run: the same bytes through write(2), one
         * write per call (per batch in batch mode), with an fdatasync per
         * call where the policy syncs per call. */
        int sync_each = policy == JS_SYNC_ALWAYS;
        raw[i] = raw_run(&oo, size, batch, sync_each, cnt);
    }
    double m = median(v, reps), rm = median(raw, reps);
    printf("%-8s %-6s %7zu %8d %12.0f %10.1f %12.0f %6.2f\n", policy_name(policy),
           batch ? "batch" : "single", size, o->threads, m,
           m * (double)size / 1e6, rm, m / rm);
    fflush(stdout);
}

static int parse_list(const char *s, const char *const *names, int *out,
                      int max, const int *values) {
    int n = 0;
    char *dup = strdup(s), *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t && n < max;
         t = strtok_r(NULL, ",", &save))
        for (int i = 0; names[i]; i++)
            if (strcmp(t, names[i]) == 0)
                out[n++] = values[i];
    free(dup);
    return n;
}

int main(int argc, char **argv) {
    static const char *pnames[] = {"always", "interval", "none", NULL};
    static const int pvals[] = {JS_SYNC_ALWAYS, JS_SYNC_INTERVAL, JS_SYNC_NONE};
    static const char *mnames[] = {"single", "batch", NULL};
    static const int mvals[] = {0, 1};
    opts o = {"/tmp/jsbench", 1000000, {16, 128, 1024, 65536}, 4, 1000, 3,
              {JS_SYNC_ALWAYS, JS_SYNC_INTERVAL, JS_SYNC_NONE}, 3, {0, 1}, 2,
              1, 3.0, 0, 1, 0, 0, 0};
    int c;
    int batch_set = 0;
    int n_set = 0, s_set = 0;
    while ((c = getopt(argc, argv, "d:n:s:b:r:p:m:t:T:Ou:CKWh")) != -1) {
        switch (c) {
        case 'd': o.dir = optarg; break;
        case 'n': o.n = strtoull(optarg, NULL, 10); n_set = 1; break;
        case 's': {
            s_set = 1;
            o.nsizes = 0;
            char *dup = strdup(optarg), *save = NULL;
            for (char *t = strtok_r(dup, ",", &save); t && o.nsizes < 8;
                 t = strtok_r(NULL, ",", &save))
                o.sizes[o.nsizes++] = strtoull(t, NULL, 10);
            free(dup);
            break;
        }
        case 'b': o.batch = strtoull(optarg, NULL, 10); batch_set = 1; break;
        case 'C': o.consume_mode = 1; break;
        case 'K': o.kv_mode = 1; break;
        case 'W': o.kv_scale = 1; break;
        case 'r': o.reps = atoi(optarg); break;
        case 'p': o.npolicies = parse_list(optarg, pnames, o.policies, 3, pvals); break;
        case 'm': o.nmodes = parse_list(optarg, mnames, o.modes, 2, mvals); break;
        case 't': o.threads = atoi(optarg); break;
        case 'T': o.max_secs = atof(optarg); break;
        case 'O': o.open_mode = 1; break;
        case 'u': o.subjects = strtoull(optarg, NULL, 10); break;
        default:
            fprintf(stderr,
                    "usage: jsbench [-d dir] [-n msgs] [-s sizes] [-b batch] "
                    "[-r reps] [-p always,interval,none] [-m single,batch] "
                    "[-t threads] [-T secs] [-O]\n"
                    "  -O: open time and memory of a store of -n messages\n"
                    "  -u: with -O, spread them over this many subjects\n"
                    "  -C: consume -n messages: fetch -b (100) + ack, ack "
                    "none, and js_msg_get_next as the baseline\n"
                    "  -K: kv put and get of -n (100000) values of -s (100) "
                    "bytes over -u (10000) keys\n"
                    "  -W: kv at scale: -u (1000000) keys of -s (100) bytes; "
                    "time and heap of key listings and watches against a "
                    "stream scan\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (o.threads < 1 || o.threads > 64 || o.reps < 1 || o.batch < 1 ||
        o.n < 1 || o.subjects < 1) {
        fprintf(stderr, "jsbench: bad arguments\n");
        return 2;
    }
    if (o.consume_mode && !batch_set)
        o.batch = 100;
    if (o.kv_mode && !n_set)
        o.n = 100000;
    if (o.kv_mode && !s_set) {
        o.sizes[0] = 100;
        o.nsizes = 1;
    }
    mkdir(o.dir, 0700);
    printf("libjetstream %s jsbench: n=%" PRIu64 " batch=%zu reps=%d "
           "(median) threads=%d\n", js_version(), o.n, o.batch, o.reps,
           o.threads);
    if (o.kv_scale) {
        for (int i = 0; i < (s_set ? o.nsizes : 1); i++)
            kv_scale(&o, s_set ? o.sizes[i] : 100);
        return 0;
    }
    if (o.kv_mode) {
        printf("%-8s %-4s %7s %8s %12s %12s %6s\n", "policy", "op", "size",
               "keys", "ops/s", "stream ops/s", "ratio");
        for (int s = 0; s < o.nsizes; s++)
            for (int p = 0; p < o.npolicies; p++)
                kv_rows(&o, o.policies[p], o.sizes[s]);
        return 0;
    }
    if (o.consume_mode) {
        printf("%-8s %-10s %7s %6s %12s %14s %6s\n", "policy", "mode", "size",
               "batch", "msgs/s", "get_next msg/s", "ratio");
        for (int s = 0; s < o.nsizes; s++)
            for (int p = 0; p < o.npolicies; p++)
                consume_rows(&o, o.policies[p], o.sizes[s]);
        for (int s = 0; s < o.nsizes; s++)
            pending_cost(&o, o.sizes[s]);
        return 0;
    }
    if (o.open_mode) {
        for (int s = 0; s < o.nsizes; s++)
            open_bench(&o, o.sizes[s]);
        return 0;
    }
    printf("%-8s %-6s %7s %8s %12s %10s %12s %6s\n", "policy", "mode", "size",
           "threads", "msgs/s", "MB/s", "raw msgs/s", "ratio");
    for (int s = 0; s < o.nsizes; s++)
        for (int p = 0; p < o.npolicies; p++)
            for (int m = 0; m < o.nmodes; m++)
                row(&o, o.policies[p], o.modes[m], o.sizes[s]);
    return 0;
}
