/* ms_shim.c - TEMPORARY brute-force versions; see ms_shim.h. */
#include "ms_shim.h"
#include "subject.h"
#include "util.h"

static int any(const char *const *f, size_t n, const jsi_rec *r) {
    if (!n)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (jsi_subject_match(f[i], strlen(f[i]), r->subj, r->slen))
            return 1;
    return 0;
}

int jsi_ms_next_multi(jsi_ms *ms, const char *const *filters,
                      size_t nfilters, uint64_t seq, jsi_rec *r) {
    int rc;
    while ((rc = jsi_ms_next(ms, NULL, seq, r)) == 0) {
        if (any(filters, nfilters, r))
            return 0;
        seq = r->seq + 1;
    }
    return rc;
}

int jsi_ms_count(jsi_ms *ms, const char *const *filters, size_t nfilters,
                 uint64_t start, uint64_t *out) {
    jsi_rec r;
    uint64_t n = 0;
    while (jsi_ms_next_multi(ms, filters, nfilters, start, &r) == 0) {
        n++;
        start = r.seq + 1;
    }
    *out = n;
    return 0;
}

void jsi_ms_set_observer(jsi_ms *ms, jsi_ms_removed_fn fn, void *ctx) {
    (void)ms, (void)fn, (void)ctx;
}
