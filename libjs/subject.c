/*
 * subject.c - NATS subject rules, wildcard matching and overlap tests,
 * stream name rules, and the per-subject index.
 */
#include "subject.h"
#include "util.h"

/* ---- tokens ------------------------------------------------------------ */

/* A cursor over the '.'-separated tokens of s[0..len). */
typedef struct tok_iter {
    const char *s;
    size_t len;
    size_t pos;  /* start of the next token; > len when exhausted */
} tok_iter;

static void tok_init(tok_iter *it, const char *s, size_t len) {
    it->s = s;
    it->len = len;
    it->pos = len == 0 ? 1 : 0; /* "" has no tokens */
}

/* The next token into *t and *tlen; 0 when there are no more. */
static int tok_next(tok_iter *it, const char **t, size_t *tlen) {
    const char *dot;
    size_t n;

    if (it->pos > it->len)
        return 0;
    n = it->len - it->pos;
    *t = it->s + it->pos;
    dot = memchr(*t, '.', n);
    *tlen = dot ? (size_t)(dot - *t) : n;
    it->pos += *tlen + 1;
    return 1;
}

static int is_pwc(const char *t, size_t n) { return n == 1 && t[0] == '*'; }
static int is_fwc(const char *t, size_t n) { return n == 1 && t[0] == '>'; }

static int tok_eq(const char *a, size_t an, const char *b, size_t bn) {
    return an == bn && memcmp(a, b, an) == 0;
}

/* ---- validation and matching ---------------------------------------------- */

int jsi_subject_valid(const char *s, size_t len, int allow_wildcards) {
    size_t start = 0;

    if (s == NULL || len == 0 || len > JS_MAX_SUBJECT_LEN)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)s[i] : '.';
        size_t tlen;

        if (c <= 0x20 || c == 0x7f)
            return 0;
        if (c != '.')
            continue;
        tlen = i - start;
        if (tlen == 0)
            return 0;
        if (is_pwc(s + start, tlen) && !allow_wildcards)
            return 0;
        if (is_fwc(s + start, tlen) && (!allow_wildcards || i != len))
            return 0;
        start = i + 1;
    }
    return 1;
}

int jsi_subject_has_wildcard(const char *s, size_t len) {
    tok_iter it;
    const char *t;
    size_t n;

    tok_init(&it, s, len);
    while (tok_next(&it, &t, &n))
        if (is_pwc(t, n) || is_fwc(t, n))
            return 1;
    return 0;
}

int jsi_subject_match(const char *filter, size_t flen, const char *subj,
                      size_t slen) {
    tok_iter fi, si;
    const char *ft, *st;
    size_t fn, sn;

    tok_init(&fi, filter, flen);
    tok_init(&si, subj, slen);
    for (;;) {
        int fhas = tok_next(&fi, &ft, &fn);
        int shas = tok_next(&si, &st, &sn);

        if (!fhas || !shas)
            return fhas == shas;
        if (is_fwc(ft, fn))
            return 1;
        if (!is_pwc(ft, fn) && !tok_eq(ft, fn, st, sn))
            return 0;
    }
}

/*
 * Walk both filters token by token. A '>' facing any token means a common
 * subject exists (choose the other side's remaining tokens, wildcards made
 * literal); '*' facing anything but '>' is satisfiable for this token; two
 * literals must be equal; and both must run out together.
 */
int jsi_subject_collide(const char *a, const char *b) {
    tok_iter ai, bi;
    const char *at, *bt;
    size_t an, bn;

    tok_init(&ai, a, strlen(a));
    tok_init(&bi, b, strlen(b));
    for (;;) {
        int ahas = tok_next(&ai, &at, &an);
        int bhas = tok_next(&bi, &bt, &bn);

        if (!ahas || !bhas)
            return ahas == bhas;
        if (is_fwc(at, an) || is_fwc(bt, bn))
            return 1;
        if (is_pwc(at, an) || is_pwc(bt, bn))
            continue;
        if (!tok_eq(at, an, bt, bn))
            return 0;
    }
}

/*
 * a is a subset of b when, token by token, b's token covers a's: '>' in b
 * covers the rest of a (which has at least this token); '*' in b covers any
 * single token of a but not a's '>'; a literal in b covers only the same
 * literal.
 */
int jsi_subject_subset(const char *a, const char *b) {
    tok_iter ai, bi;
    const char *at, *bt;
    size_t an, bn;

    tok_init(&ai, a, strlen(a));
    tok_init(&bi, b, strlen(b));
    for (;;) {
        int ahas = tok_next(&ai, &at, &an);
        int bhas = tok_next(&bi, &bt, &bn);

        if (!ahas || !bhas)
            return ahas == bhas;
        if (is_fwc(bt, bn))
            return 1;
        if (is_fwc(at, an))
            return 0;
        if (is_pwc(bt, bn))
            continue;
        if (is_pwc(at, an) || !tok_eq(at, an, bt, bn))
            return 0;
    }
}

int jsi_name_valid(const char *name, const char **why) {
    const char *reason = NULL;
    size_t len;

    if (name == NULL || name[0] == '\0') {
        reason = "is empty";
        goto out;
    }
    len = strlen(name);
    if (len > JS_MAX_NAME_LEN) {
        reason = "is longer than 255 bytes";
        goto out;
    }
    for (size_t i = 0; i < len && reason == NULL; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c == 0x7f)
            reason = "contains whitespace or a control character";
        else if (c == '.' || c == '*' || c == '>')
            reason = "contains '.', '*' or '>'";
        else if (c == '/' || c == '\\')
            reason = "contains a path separator";
    }
out:
    if (why != NULL)
        *why = reason;
    return reason == NULL;
}

/* ---- per-subject index --------------------------------------------------- */
/*
 * Open addressing with linear probing over a power-of-two table of entry
 * pointers, plus one tag byte per slot (0: empty, else 0x80 | 7 hash bits).
 * Probes read only the dense tag array until a tag matches, so a probe
 * that misses costs no access to the pointer array or to an entry.
 * Deletion shifts later members of the cluster back, so there are no
 * tombstones and lookups stay short after heavy churn. The table grows
 * (doubles) before the load would exceed 7/10.
 *
 * Invariant: every entry sits at or cyclically after its home slot
 * (hash & mask) with no empty slot in between.
 */

#define SIDX_MIN_CAP 16

struct jsi_sidx {
    jsi_sidx_entry **slot;
    uint8_t *tag;   /* cap bytes, in the same allocation as slot */
    size_t cap;     /* 0 or a power of two */
    size_t n;
    size_t entry_bytes; /* sum of entry allocation sizes */
};

static uint64_t rotl64(uint64_t v, int r) { return (v << r) | (v >> (64 - r)); }

/* 8 bytes per step, then a full-avalanche finaliser, so both the low bits
 * (the slot) and the high bits (the tag) depend on every input byte. */
static uint64_t sidx_hash(const char *s, size_t len) {
    const uint64_t k1 = UINT64_C(0x9E3779B97F4A7C15);
    const uint64_t k2 = UINT64_C(0xC2B2AE3D27D4EB4F);
    uint64_t h = (uint64_t)len * k2;
    const unsigned char *p = (const unsigned char *)s;

    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = rotl64((h ^ w) * k1, 31) * k2;
        p += 8;
        len -= 8;
    }
    if (len > 0) {
        uint64_t w = 0;
        for (size_t i = 0; i < len; i++)
            w |= (uint64_t)p[i] << (8 * i);
        h = rotl64((h ^ w) * k1, 31) * k2;
    }
    h ^= h >> 33;
    h *= UINT64_C(0xFF51AFD7ED558CCD);
    h ^= h >> 33;
    h *= UINT64_C(0xC4CEB9FE1A85EC53);
    h ^= h >> 33;
    return h;
}

static uint8_t hash_tag(uint64_t h) { return (uint8_t)(0x80 | (h >> 57)); }

static size_t entry_size(size_t len) {
    return sizeof(jsi_sidx_entry) + len + 1;
}

jsi_sidx *jsi_sidx_new(void) { return jsi_calloc(1, sizeof(jsi_sidx)); }

void jsi_sidx_free(jsi_sidx *x) {
    if (x == NULL)
        return;
    for (size_t i = 0; i < x->cap; i++)
        jsi_free(x->slot[i]);
    jsi_free(x->slot);
    jsi_free(x);
}

size_t jsi_sidx_size(const jsi_sidx *x) { return x->n; }

/* The slot holding subject s, or the empty slot ending its probe. */
static size_t sidx_find(const jsi_sidx *x, const char *s, size_t len,
                        uint64_t h) {
    size_t mask = x->cap - 1;
    size_t i = (size_t)h & mask;
    uint8_t tag = hash_tag(h);

    for (;; i = (i + 1) & mask) {
        jsi_sidx_entry *e;
        if (x->tag[i] == 0)
            return i;
        if (x->tag[i] != tag)
            continue;
        e = x->slot[i];
        if (e->len == len && memcmp(e->subj, s, len) == 0)
            return i;
    }
}

jsi_sidx_entry *jsi_sidx_get(jsi_sidx *x, const char *subj, size_t len) {
    if (x->n == 0)
        return NULL;
    return x->slot[sidx_find(x, subj, len, sidx_hash(subj, len))];
}

/* Place e (hash h) in the first empty slot of its probe sequence. */
static void sidx_place(jsi_sidx_entry **slot, uint8_t *tag, size_t mask,
                       jsi_sidx_entry *e, uint64_t h) {
    size_t i = (size_t)h & mask;

    while (tag[i] != 0)
        i = (i + 1) & mask;
    slot[i] = e;
    tag[i] = hash_tag(h);
}

static int sidx_resize(jsi_sidx *x, size_t cap) {
    jsi_sidx_entry **slot;
    uint8_t *tag;

    if (cap > SIZE_MAX / (sizeof(*slot) + 1))
        return JS_ENOMEM;
    slot = jsi_calloc(cap, sizeof(*slot) + 1);
    if (slot == NULL)
        return JS_ENOMEM;
    tag = (uint8_t *)(slot + cap);
    for (size_t i = 0; i < x->cap; i++) {
        jsi_sidx_entry *e = x->slot[i];
        if (e != NULL)
            sidx_place(slot, tag, cap - 1, e, sidx_hash(e->subj, e->len));
    }
    jsi_free(x->slot);
    x->slot = slot;
    x->tag = tag;
    x->cap = cap;
    return 0;
}

/* Make room for `more` entries within the load limit. */
int jsi_sidx_reserve(jsi_sidx *x, size_t more) {
    size_t cap = x->cap ? x->cap : SIDX_MIN_CAP;

    if (more > SIZE_MAX / 10 - x->n)
        return JS_ENOMEM;
    while ((x->n + more) * 10 > cap * 7) {
        if (cap > SIZE_MAX / 2)
            return JS_ENOMEM;
        cap *= 2;
    }
    return cap == x->cap ? 0 : sidx_resize(x, cap);
}


jsi_sidx_entry *jsi_sidx_upsert(jsi_sidx *x, const char *subj, size_t len,
                                int *created) {
    jsi_sidx_entry *e;
    uint64_t h = sidx_hash(subj, len);

    if (x->n > 0) {
        e = x->slot[sidx_find(x, subj, len, h)];
        if (e != NULL) {
            *created = 0;
            return e;
        }
    }
    if (len > UINT32_MAX || len > SIZE_MAX - sizeof(jsi_sidx_entry) - 1 ||
        jsi_sidx_reserve(x, 1) != 0) {
        JSI_ERR(JS_ENOMEM, 0, "subject index: out of memory");
        return NULL;
    }
    e = jsi_calloc(1, entry_size(len));
    if (e == NULL) {
        JSI_ERR(JS_ENOMEM, 0, "subject index: out of memory");
        return NULL;
    }
    e->len = (uint32_t)len;
    memcpy(e->subj, subj, len);
    e->subj[len] = '\0';
    sidx_place(x->slot, x->tag, x->cap - 1, e, h);
    x->n++;
    x->entry_bytes += entry_size(len);
    *created = 1;
    return e;
}

/* 1 if home slot k lies cyclically in (hole, j]: the entry at j must stay. */
static int in_cyclic_range(size_t hole, size_t k, size_t j) {
    return hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);
}

void jsi_sidx_remove(jsi_sidx *x, jsi_sidx_entry *e) {
    size_t mask, hole, j;

    if (e == NULL || x->n == 0)
        return;
    mask = x->cap - 1;
    hole = (size_t)sidx_hash(e->subj, e->len) & mask;
    while (x->slot[hole] != e) {
        if (x->slot[hole] == NULL)
            return; /* not ours: leave it alone */
        hole = (hole + 1) & mask;
    }
    /* Backward shift: pull later cluster members whose home is not in
     * (hole, j] into the hole, so no probe sequence is broken. */
    for (j = (hole + 1) & mask; x->tag[j] != 0; j = (j + 1) & mask) {
        jsi_sidx_entry *m = x->slot[j];
        size_t k = (size_t)sidx_hash(m->subj, m->len) & mask;
        if (in_cyclic_range(hole, k, j))
            continue;
        x->slot[hole] = m;
        x->tag[hole] = x->tag[j];
        hole = j;
    }
    x->slot[hole] = NULL;
    x->tag[hole] = 0;
    x->n--;
    x->entry_bytes -= entry_size(e->len);
    jsi_free(e);
}

jsi_sidx_entry *jsi_sidx_next(const jsi_sidx *x, size_t *pos) {
    for (size_t i = *pos; i < x->cap; i++)
        if (x->tag[i] != 0) {
            *pos = i + 1;
            return x->slot[i];
        }
    *pos = x->cap;
    return NULL;
}

/* Requested bytes; the allocator's own per-block overhead is not counted. */
size_t jsi_sidx_memory(const jsi_sidx *x) {
    return sizeof(*x) + x->cap * (sizeof(*x->slot) + 1) + x->entry_bytes;
}
