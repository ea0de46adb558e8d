/*
 * stree.c - the ordered subject tree: a byte-wise patricia tree with lazy
 * prefixes.
 *
 * A leaf is the caller's value; its key is read through the tree's key
 * function, so a leaf costs no allocation of its own. An inner node
 * branches at byte offset pos: every key below it shares the same first
 * pos bytes (its prefix) and the node has at least two entries: an
 * optional term leaf (the key that is exactly the prefix, which sorts
 * first) and children keyed by their byte at pos, kept sorted. A child
 * node's pos is greater than its parent's. Nodes do not store their prefix
 * bytes; rep is any value below the node, whose key's first pos bytes are
 * the prefix. Lookups therefore compare whole keys once, at the leaf (as
 * in a crit-bit tree).
 *
 * Entries are tagged pointers: low bit 1 for a leaf (the value's address
 * plus one, hence values are at least 2-byte aligned), 0 for a node.
 */
#include "stree.h"

#include "subject.h"
#include "util.h"

typedef uintptr_t sref;

typedef struct snode {
    uint32_t pos;      /* branch byte offset */
    uint16_t n, cap;   /* children used, allocated (<= 256) */
    void *rep;         /* any value below: its key's first pos bytes are
                        * the prefix */
    sref term;         /* leaf whose key is exactly the prefix, or 0 */
    uint8_t lab[];     /* cap labels, padded to 8, then cap children: a
                        * lookup reads the header and labels together */
} snode;

struct jsi_stree {
    sref root;
    size_t size;
    size_t mem;
    jsi_stree_key_fn key;
};

#define IS_LEAF(r) (((r) & 1u) != 0)
#define VAL(r) ((void *)((r) & ~(sref)1))
#define NODE(r) ((snode *)(r))
#define LEAF_REF(v) ((sref)(v) | 1u)

#define LABPAD(cap) (((size_t)(cap) + 7) & ~(size_t)7)
#define KIDS(n) ((sref *)(void *)((n)->lab + LABPAD((n)->cap)))

static uint8_t *labels(const snode *n) { return (uint8_t *)n->lab; }

static size_t node_bytes(unsigned cap) {
    return sizeof(snode) + LABPAD(cap) + cap * sizeof(sref);
}

/* Capacity steps: tight for the small fan-outs that dominate real trees. */
static unsigned grow_cap(unsigned cap) {
    unsigned c = cap < 8 ? cap + 2 : cap + cap / 2;
    return c > 256 ? 256 : c;
}

static unsigned fit_cap(unsigned n) {
    unsigned c = 2;
    while (c < n)
        c = grow_cap(c);
    return c;
}

static void *rep_of(sref r) { return IS_LEAF(r) ? VAL(r) : NODE(r)->rep; }

static int key_is(const jsi_stree *t, const void *v, const char *s,
                  size_t len) {
    size_t kl;
    const char *k = t->key(v, &kl);

    return kl == len && memcmp(k, s, len) == 0;
}

/* First index whose label is >= c. */
static unsigned lower_bound(const snode *n, uint8_t c) {
    const uint8_t *lab = labels(n);
    unsigned lo = 0, hi = n->n;

    if (n->n <= 8) {
        while (lo < hi && lab[lo] < c)
            lo++;
        return lo;
    }
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (lab[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int find_label(const snode *n, uint8_t c) {
    unsigned i = lower_bound(n, c);
    return i < n->n && labels(n)[i] == c ? (int)i : -1;
}

jsi_stree *jsi_stree_new(jsi_stree_key_fn key) {
    jsi_stree *t = jsi_calloc(1, sizeof(*t));

    if (t != NULL) {
        t->mem = sizeof(*t);
        t->key = key;
    }
    return t;
}

/* Free a subtree without recursion: pending nodes are chained through
 * their rep fields, which a dying node no longer needs. */
static void free_ref(sref r) {
    snode *stack = NULL;

    if (r != 0 && !IS_LEAF(r))
        stack = NODE(r), stack->rep = NULL;
    while (stack != NULL) {
        snode *n = stack;

        stack = n->rep;
        for (unsigned i = 0; i < n->n; i++) {
            if (!IS_LEAF(KIDS(n)[i])) {
                snode *k = NODE(KIDS(n)[i]);
                k->rep = stack;
                stack = k;
            }
        }
        jsi_free(n);
    }
}

void jsi_stree_free(jsi_stree *t) {
    if (t == NULL)
        return;
    free_ref(t->root);
    jsi_free(t);
}

size_t jsi_stree_size(const jsi_stree *t) { return t->size; }

size_t jsi_stree_memory(const jsi_stree *t) { return t->mem; }

/* Follow s as far as the tree goes (without checking skipped bytes); the
 * entry reached. Its rep shares with s at least as many leading bytes as
 * any key in the tree does (the crit-bit argument). */
static sref descend(sref r, const char *s, size_t len) {
    while (r != 0 && !IS_LEAF(r)) {
        const snode *n = NODE(r);
        sref next = 0;

        if (n->pos < len) {
            int i = find_label(n, (uint8_t)s[n->pos]);
            if (i >= 0)
                next = KIDS(n)[i];
        } else if (n->pos == len) {
            next = n->term;
        }
        if (next == 0)
            break;
        r = next;
    }
    return r;
}

void *jsi_stree_find(const jsi_stree *t, const char *s, size_t len) {
    sref r = descend(t->root, s, len);

    return r != 0 && IS_LEAF(r) && key_is(t, VAL(r), s, len) ? VAL(r) : NULL;
}

/* Add leaf l as a child labelled c of the node in *slot, growing it. */
static int add_child(jsi_stree *t, sref *slot, sref l, uint8_t c) {
    snode *n = NODE(*slot);
    unsigned i;

    if (n->n == n->cap) {
        unsigned oldcap = n->cap, cap = grow_cap(oldcap);
        snode *g = jsi_realloc(n, node_bytes(cap));

        if (g == NULL)
            return JS_ENOMEM;
        t->mem += node_bytes(cap) - node_bytes(oldcap);
        memmove(g->lab + LABPAD(cap), g->lab + LABPAD(oldcap), g->n * sizeof(sref));
        g->cap = (uint16_t)cap;
        *slot = (sref)g;
        n = g;
    }
    i = lower_bound(n, c);
    memmove(KIDS(n) + i + 1, KIDS(n) + i, (n->n - i) * sizeof(sref));
    memmove(labels(n) + i + 1, labels(n) + i, n->n - i);
    KIDS(n)[i] = l;
    labels(n)[i] = c;
    n->n++;
    return 0;
}

/* Replace the entry in *slot (whose keys all differ from s's at byte L, or
 * end there) with a new node at pos L holding it and val, whose key is s. */
static int split(jsi_stree *t, sref *slot, void *val, const char *s,
                 size_t len, size_t L) {
    snode *n = jsi_malloc(node_bytes(2));
    sref old = *slot, nl = LEAF_REF(val);
    size_t olen;
    const char *okey = t->key(rep_of(old), &olen);

    if (n == NULL)
        return JS_ENOMEM;
    t->mem += node_bytes(2);
    n->pos = (uint32_t)L;
    n->cap = 2;
    n->rep = val;
    if (len == L || olen == L) {
        int lterm = len == L;
        n->term = lterm ? nl : old;
        n->n = 1;
        KIDS(n)[0] = lterm ? old : nl;
        labels(n)[0] = (uint8_t)(lterm ? okey[L] : s[L]);
    } else {
        uint8_t a = (uint8_t)okey[L], b = (uint8_t)s[L];
        n->term = 0;
        n->n = 2;
        KIDS(n)[a < b ? 0 : 1] = old;
        KIDS(n)[a < b ? 1 : 0] = nl;
        labels(n)[0] = a < b ? a : b;
        labels(n)[1] = a < b ? b : a;
    }
    *slot = (sref)n;
    return 0;
}

/* Walk s's path from the root and point every rep on it that is `from` at
 * `to` instead: a value that leaves the tree, or is replaced, may be freed
 * by the caller, so no node may keep reading its key. Returns the slot the
 * path ends in: s's leaf if s is in the tree. */
static sref *repoint(jsi_stree *t, const char *s, size_t len,
                     const void *from, void *to) {
    sref *slot = &t->root;

    while (*slot != 0 && !IS_LEAF(*slot)) {
        snode *n = NODE(*slot);
        int i;

        if (n->rep == from)
            n->rep = to;
        if (n->pos == len)
            slot = &n->term;
        else if (n->pos > len || (i = find_label(n, (uint8_t)s[n->pos])) < 0)
            break;
        else
            slot = &KIDS(n)[i];
    }
    return slot;
}

/* Values are leaves in place, so they must leave the tag bit free, and
 * their key is what the tree will compare from now on. */
static int value_ok(const jsi_stree *t, const void *val, const char *s,
                    size_t len) {
    return val != NULL && ((uintptr_t)val & 1u) == 0 && key_is(t, val, s, len);
}

/* Hang the leaf val (key s, new to the tree) where its key leaves the
 * tree at byte L: below the last node with pos < L, whose child for
 * s[pos] must exist. */
static int attach(jsi_stree *t, void *val, const char *s, size_t len,
                  size_t L) {
    sref *slot = &t->root;

    while (!IS_LEAF(*slot) && NODE(*slot)->pos < L) {
        snode *n = NODE(*slot);
        slot = &KIDS(n)[find_label(n, (uint8_t)s[n->pos])];
    }
    if (IS_LEAF(*slot) || NODE(*slot)->pos != L)
        return split(t, slot, val, s, len, L);
    if (L < len)
        return add_child(t, slot, LEAF_REF(val), (uint8_t)s[L]);
    NODE(*slot)->term = LEAF_REF(val);
    return 0;
}

int jsi_stree_insert(jsi_stree *t, const char *s, size_t len, void *val,
                     void **old) {
    void *rep;
    const char *rk;
    size_t L = 0, m, rlen;
    int rc;

    if (old != NULL)
        *old = NULL;
    if (len == 0 || len > JS_MAX_SUBJECT_LEN || !value_ok(t, val, s, len))
        return JS_EINVAL;
    if (t->root == 0) {
        t->root = LEAF_REF(val);
        t->size = 1;
        return 0;
    }
    rep = rep_of(descend(t->root, s, len));
    rk = t->key(rep, &rlen);
    m = len < rlen ? len : rlen;
    while (L < m && s[L] == rk[L])
        L++;
    if (L == len && L == rlen) { /* descend() reached s's own leaf */
        *repoint(t, s, len, rep, val) = LEAF_REF(val);
        if (old != NULL)
            *old = rep;
        return 0;
    }
    if ((rc = attach(t, val, s, len, L)) == 0)
        t->size++;
    return rc;
}

/* Shrink n (in *slot) after a removal, if that saves memory. A failed
 * realloc leaves it as it was. */
static void maybe_shrink(jsi_stree *t, sref *slot) {
    snode *n = NODE(*slot), *g;
    unsigned oldcap = n->cap, cap = fit_cap(n->n);

    if (cap >= oldcap || n->n > oldcap / 2)
        return;
    memmove(n->lab + LABPAD(cap), n->lab + LABPAD(oldcap), n->n * sizeof(sref));
    g = jsi_realloc(n, node_bytes(cap));
    if (g == NULL) {
        memmove(n->lab + LABPAD(oldcap), n->lab + LABPAD(cap), n->n * sizeof(sref));
        return;
    }
    g->cap = (uint16_t)cap;
    t->mem -= node_bytes(oldcap) - node_bytes(cap);
    *slot = (sref)g;
}

/* Take the entry in *slot out of its parent node (in *pslot); collapse
 * the parent into its last entry if it has one left. Returns a value still
 * in the parent's former subtree. */
static void *unlink_entry(jsi_stree *t, sref *pslot, sref *slot) {
    snode *p = NODE(*pslot);
    sref rest;

    if (slot == &p->term) {
        p->term = 0;
    } else {
        unsigned i = (unsigned)(slot - KIDS(p));
        memmove(KIDS(p) + i, KIDS(p) + i + 1, (p->n - i - 1) * sizeof(sref));
        memmove(labels(p) + i, labels(p) + i + 1, p->n - i - 1);
        p->n--;
    }
    rest = p->term != 0 ? p->term : KIDS(p)[0];
    if (p->n + (p->term != 0) == 1) {
        *pslot = rest;
        t->mem -= node_bytes(p->cap);
        jsi_free(p);
    } else if (slot != &p->term) {
        maybe_shrink(t, pslot);
    }
    return rep_of(rest);
}

/* The slot of s's leaf, and in *pslot its parent's (NULL at the root);
 * NULL if s is not in the tree. */
static sref *find_slot(jsi_stree *t, const char *s, size_t len,
                       sref **pslot) {
    sref *slot = &t->root;

    *pslot = NULL;
    while (*slot != 0 && !IS_LEAF(*slot)) {
        snode *n = NODE(*slot);
        sref *next = NULL;

        if (n->pos < len) {
            int i = find_label(n, (uint8_t)s[n->pos]);
            if (i >= 0)
                next = &KIDS(n)[i];
        } else if (n->pos == len && n->term != 0) {
            next = &n->term;
        }
        if (next == NULL)
            return NULL;
        *pslot = slot;
        slot = next;
    }
    return *slot != 0 && key_is(t, VAL(*slot), s, len) ? slot : NULL;
}

void *jsi_stree_remove(jsi_stree *t, const char *s, size_t len) {
    sref *pslot, *slot = find_slot(t, s, len, &pslot);
    void *victim;

    if (slot == NULL)
        return NULL;
    victim = VAL(*slot);
    if (pslot == NULL) {
        t->root = 0;
    } else {
        /* Every node whose rep was the victim is an ancestor of it, and
         * the victim's former siblings lie under all of them. */
        void *repl = unlink_entry(t, pslot, slot);
        repoint(t, s, len, victim, repl);
    }
    t->size--;
    return victim;
}

/* ---- ordered, filtered walk ------------------------------------------- */

/* What a filter allows below a prefix. */
enum { PF_NONE, PF_MAYBE, PF_ALL };
#define REQ_ANY (-1) /* any next byte */
#define REQ_END (-2) /* only the key that is exactly the prefix */

/* Can some subject starting with q[0..qlen) match filter f? PF_ALL if
 * every one does (a '>' reached). For PF_MAYBE, *req is the byte that
 * must follow the prefix, REQ_ANY or REQ_END. */
static int prefix_check(const char *f, size_t flen, const char *q,
                        size_t qlen, int *req) {
    size_t fi = 0, qi = 0;

    *req = REQ_ANY;
    for (;;) {
        size_t fe = fi, qe = qi, ftl;
        const char *dot;

        if (fi >= flen)
            return PF_NONE; /* the subject has a token the filter lacks */
        while (fe < flen && f[fe] != '.')
            fe++;
        ftl = fe - fi;
        if (ftl == 1 && f[fi] == '>')
            return PF_ALL;
        dot = qi < qlen ? memchr(q + qi, '.', qlen - qi) : NULL;
        qe = dot != NULL ? (size_t)(dot - q) : qlen;
        if (ftl == 1 && f[fi] == '*') {
            if (dot == NULL)
                return PF_MAYBE;
        } else if (dot == NULL) { /* partial last token: a prefix of f's */
            size_t pl = qlen - qi;
            if (pl > ftl || memcmp(q + qi, f + fi, pl) != 0)
                return PF_NONE;
            if (pl < ftl)
                *req = (uint8_t)f[fi + pl];
            else
                *req = fe < flen ? '.' : REQ_END;
            return PF_MAYBE;
        } else if (qe - qi != ftl || memcmp(q + qi, f + fi, ftl) != 0) {
            return PF_NONE;
        }
        qi = qe + 1;
        fi = fe + 1;
    }
}

/* The lower bound of a walk: keys > b (mode 0) or keys greater than every
 * key that starts with b (mode 1). */
typedef struct bound {
    const char *b;
    size_t len;
    int beyond;
} bound;

static int leaf_passes(const char *k, size_t kl, const bound *B) {
    size_t m = kl < B->len ? kl : B->len;
    int c = memcmp(k, B->b, m);

    if (c != 0)
        return c > 0;
    return !B->beyond && kl > B->len;
}

enum { NB_SKIP, NB_FREE, NB_TERM, NB_LABEL };

/* How node n relates to the bound: skip it, walk it freely, check only its
 * term (the prefix equals b), or also compare child labels with b[pos].
 * The first known bytes of its prefix are known to equal b's; when that
 * covers the prefix, rep (a likely cache miss) is not read. */
static int node_vs_bound(const snode *n, const bound *B, size_t known,
                         jsi_stree_key_fn key) {
    size_t q = n->pos, m = q < B->len ? q : B->len, kl;
    int c = known >= m ? 0 : memcmp(key(n->rep, &kl) + known, B->b + known, m - known);

    if (c != 0)
        return c < 0 ? NB_SKIP : NB_FREE;
    if (q < B->len)
        return NB_LABEL;
    if (B->beyond)
        return NB_SKIP;
    return q == B->len ? NB_TERM : NB_FREE;
}

typedef struct frame {
    const snode *n;
    int i;          /* next entry: -1 the term, else a child index */
    uint8_t nb;     /* NB_* */
    uint8_t all;    /* every key below matches the filter */
    int16_t req;    /* REQ_* or the byte the filter needs at pos */
} frame;

#ifndef STACK_FRAMES /* tests build with a tiny stack to exercise the restart */
#define STACK_FRAMES 64
#endif

/* The walk state of one jsi_stree_next call. */
typedef struct walk {
    jsi_stree_key_fn key;
    const char *f;
    size_t flen;
    bound B;
    frame stk[STACK_FRAMES];
    int sp;
    int dropped; /* frames fell off the bottom: restart when emptied */
} walk;

/* Push node n (reached with bound state nb and filter state all) unless
 * it can be skipped. */
static void push_node(walk *w, const snode *n, int nb, int all, size_t known) {
    int req = REQ_ANY;
    size_t kl;
    frame *f;

    if (nb != NB_FREE && (nb = node_vs_bound(n, &w->B, known, w->key)) == NB_SKIP)
        return;
    if (!all) {
        int pf = prefix_check(w->f, w->flen, w->key(n->rep, &kl), n->pos, &req);
        if (pf == PF_NONE)
            return;
        if (pf == PF_ALL) {
            all = 1;
            req = REQ_ANY;
        }
    }
    if (w->sp == STACK_FRAMES) {
        memmove(w->stk, w->stk + 1, (STACK_FRAMES - 1) * sizeof(frame));
        w->sp--;
        w->dropped = 1;
    }
    f = &w->stk[w->sp++];
    f->n = n;
    f->i = -1;
    f->nb = (uint8_t)nb;
    f->all = (uint8_t)all;
    f->req = (int16_t)req;
}

/* Index of the first child the frame may visit. */
static int first_child(const walk *w, const frame *f) {
    const snode *n = f->n;
    unsigned lo = 0;

    if (f->req == REQ_END)
        return n->n;
    if (f->nb == NB_LABEL)
        lo = lower_bound(n, (uint8_t)w->B.b[n->pos]);
    if (f->req >= 0) {
        unsigned r = lower_bound(n, (uint8_t)f->req);
        if (r > lo)
            lo = r;
    }
    return (int)lo;
}

/* Step the top frame: the next entry to consider (0 when it is done),
 * with its bound and filter states in *nb and *all, and in *known how many
 * of its leading bytes are known to equal the bound's. */
static sref step(walk *w, int *nb, int *all, size_t *known) {
    frame *f = &w->stk[w->sp - 1];
    const snode *n = f->n;

    *all = f->all;
    *known = 0;
    if (f->i < 0) {
        f->i = first_child(w, f);
        if (n->term != 0 && f->req < 0) {
            *nb = f->nb == NB_FREE ? NB_FREE : NB_TERM;
            return n->term;
        }
    }
    if (f->i < n->n) {
        uint8_t c = labels(n)[f->i];
        sref r = KIDS(n)[f->i++];
        if (f->req >= 0 && c != f->req) {
            f->i = n->n; /* the filter allows only label req */
            return 0;
        }
        *nb = f->nb == NB_LABEL && c == (uint8_t)w->B.b[n->pos] ? NB_LABEL
                                                                 : NB_FREE;
        if (*nb == NB_LABEL)
            *known = n->pos + 1;
        return r;
    }
    return 0;
}

/* Leaf r's value if it passes the bound (unless nb says it is free) and
 * the filter (unless all), with its key in *subj, *len; else NULL. */
static void *leaf_hit(const walk *w, sref r, int nb, int all,
                      const char **subj, size_t *len) {
    size_t kl;
    const char *k = w->key(VAL(r), &kl);

    if (nb != NB_FREE && !leaf_passes(k, kl, &w->B))
        return NULL;
    if (!all && !jsi_subject_match(w->f, w->flen, k, kl))
        return NULL;
    if (subj != NULL)
        *subj = k;
    if (len != NULL)
        *len = kl;
    return VAL(r);
}

void *jsi_stree_next(const jsi_stree *t, const char *filter, const char *after,
                     size_t after_len, const char **subj, size_t *len) {
    walk w;
    int any;
    const snode *last = NULL;
    size_t klen;
    void *v;

    w.key = t->key;
    w.f = filter;
    w.flen = filter != NULL ? strlen(filter) : 0;
    any = filter == NULL || (w.flen == 1 && filter[0] == '>');
    if (!any && !jsi_subject_valid(filter, w.flen, 1))
        return NULL;
    w.B.b = after;
    w.B.len = after != NULL ? after_len : 0;
    w.B.beyond = 0;
    for (;;) { /* once, or again from the root after a deep walk */
        sref r = t->root;
        int nb = after != NULL || last != NULL ? NB_TERM : NB_FREE;
        int all = any;
        size_t known = 0;

        w.sp = 0;
        w.dropped = 0;
        for (;;) {
            if (r != 0 && IS_LEAF(r)) {
                if ((v = leaf_hit(&w, r, nb, all, subj, len)) != NULL)
                    return v;
            } else if (r != 0) {
                push_node(&w, NODE(r), nb, all, known);
            }
            r = 0;
            while (w.sp > 0 && (r = step(&w, &nb, &all, &known)) == 0)
                last = w.stk[--w.sp].n;
            if (w.sp == 0 && r == 0)
                break;
        }
        if (!w.dropped)
            return NULL;
        /* Frames above the stack's depth were dropped: continue from the
         * root past everything under the last finished node. */
        w.B.b = t->key(last->rep, &klen);
        w.B.len = last->pos;
        w.B.beyond = 1;
    }
}

/* ---- whole walk --------------------------------------------------------- */

static int each_ref(sref r, int (*fn)(void *, void *), void *ctx) {
    if (IS_LEAF(r))
        return fn(VAL(r), ctx);
    const snode *n = NODE(r);
    int rc = n->term ? fn(VAL(n->term), ctx) : 0;
    for (unsigned i = 0; rc == 0 && i < n->n; i++)
        rc = each_ref(KIDS(n)[i], fn, ctx);
    return rc;
}

int jsi_stree_each(const jsi_stree *t, int (*fn)(void *val, void *ctx),
                   void *ctx) {
    return t->root ? each_ref(t->root, fn, ctx) : 0;
}

/* ---- invariant check (tests) ------------------------------------------ */

typedef struct check_acc {
    const jsi_stree *t;
    size_t leaves, mem;
    const char *prev; /* the previous leaf's key in order, and its length */
    size_t prevlen;
} check_acc;

#define CHECK(c)                  \
    do {                          \
        if (!(c))                 \
            return -__LINE__;     \
    } while (0)

static int check_ref(sref r, const char *pre, size_t plen, check_acc *a);

/* Check leaf r, whose key starts with pre[0..plen) and follows a->prev. */
static int check_leaf(sref r, const char *pre, size_t plen, check_acc *a) {
    size_t kl;
    const char *k = a->t->key(VAL(r), &kl);

    CHECK(VAL(r) != NULL && k != NULL);
    CHECK(kl > 0 && kl <= JS_MAX_SUBJECT_LEN);
    CHECK(kl >= plen && memcmp(k, pre, plen) == 0);
    if (a->prev != NULL) {
        size_t m = a->prevlen < kl ? a->prevlen : kl;
        int c = memcmp(a->prev, k, m);
        CHECK(c < 0 || (c == 0 && a->prevlen < kl));
    }
    a->prev = k;
    a->prevlen = kl;
    a->leaves++;
    return 0;
}

/* Check the entries of node n, whose prefix is pre[0..n->pos). */
static int check_entries(const snode *n, const char *pre, check_acc *a) {
    int rc;

    if (n->term != 0) {
        size_t tl;
        CHECK(IS_LEAF(n->term));
        CHECK(a->t->key(VAL(n->term), &tl) != NULL && tl == n->pos);
        if ((rc = check_leaf(n->term, pre, n->pos, a)) != 0)
            return rc;
    }
    for (unsigned i = 0; i < n->n; i++) {
        size_t rl;
        const char *rk = a->t->key(rep_of(KIDS(n)[i]), &rl);
        CHECK(i == 0 || labels(n)[i - 1] < labels(n)[i]);
        CHECK(rl > n->pos && (uint8_t)rk[n->pos] == labels(n)[i]);
        CHECK(IS_LEAF(KIDS(n)[i]) || NODE(KIDS(n)[i])->pos > n->pos);
        if ((rc = check_ref(KIDS(n)[i], pre, n->pos, a)) != 0)
            return rc;
    }
    return 0;
}

/* Check the subtree r, all of whose keys start with pre[0..plen). */
static int check_ref(sref r, const char *pre, size_t plen, check_acc *a) {
    const snode *n;
    const char *rk;
    size_t rl;
    int rc;

    if (IS_LEAF(r))
        return check_leaf(r, pre, plen, a);
    n = NODE(r);
    a->mem += node_bytes(n->cap);
    CHECK(n->rep != NULL && ((uintptr_t)n->rep & 1u) == 0);
    rk = a->t->key(n->rep, &rl);
    CHECK(n->pos >= plen && rl >= n->pos && memcmp(rk, pre, plen) == 0);
    CHECK(n->n <= n->cap && n->cap >= 2 && n->n + (n->term != 0) >= 2);
    CHECK(n->cap == fit_cap(n->cap));
    if ((rc = check_entries(n, rk, a)) != 0) /* rk: the node's own prefix */
        return rc;
    /* rep lies below: it shares the prefix and its label exists. */
    CHECK(descend(r, rk, rl) == LEAF_REF(n->rep));
    return 0;
}

int jsi_stree_check(const jsi_stree *t) {
    check_acc a = {t, 0, sizeof(*t), NULL, 0};
    int rc;

    if (t->root != 0 && (rc = check_ref(t->root, "", 0, &a)) != 0)
        return rc;
    CHECK(a.leaves == t->size);
    CHECK(a.mem == t->mem);
    return 0;
}
