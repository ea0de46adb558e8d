/*
 * stree.c - the ordered subject tree: a byte-wise patricia tree with lazy
 * prefixes.
 *
 * A leaf holds the whole subject and the value. An inner node branches at
 * byte offset pos: every key below it shares the same first pos bytes (its
 * prefix) and the node has at least two entries: an optional term leaf (the
 * key that is exactly the prefix, which sorts first) and children keyed by
 * their byte at pos, kept sorted. A child node's pos is greater than its
 * parent's. Nodes do not store their prefix bytes; rep points at any leaf
 * below the node, whose first pos bytes are the prefix. Lookups therefore
 * compare whole keys once, at the leaf (as in a crit-bit tree).
 *
 * Entries are tagged pointers: low bit 1 for a leaf, 0 for a node.
 */
#include "stree.h"

#include "subject.h"
#include "util.h"

typedef uintptr_t sref;

typedef struct sleaf {
    void *val;
    uint32_t len;
    char subj[]; /* len bytes and a NUL */
} sleaf;

typedef struct snode {
    uint32_t pos;      /* branch byte offset */
    uint16_t n, cap;   /* children used, allocated (<= 256) */
    sleaf *rep;        /* any leaf below: its first pos bytes are the prefix */
    sref term;         /* leaf whose key is exactly the prefix, or 0 */
    uint8_t lab[];     /* cap labels, padded to 8, then cap children: a
                        * lookup reads the header and labels together */
} snode;

struct jsi_stree {
    sref root;
    size_t size;
    size_t mem;
};

#define IS_LEAF(r) (((r) & 1u) != 0)
#define LEAF(r) ((sleaf *)((r) & ~(sref)1))
#define NODE(r) ((snode *)(r))
#define LEAF_REF(l) ((sref)(l) | 1u)

#define LABPAD(cap) (((size_t)(cap) + 7) & ~(size_t)7)
#define KIDS(n) ((sref *)(void *)((n)->lab + LABPAD((n)->cap)))

static uint8_t *labels(const snode *n) { return (uint8_t *)n->lab; }

static size_t node_bytes(unsigned cap) {
    return sizeof(snode) + LABPAD(cap) + cap * sizeof(sref);
}

static size_t leaf_bytes(size_t len) { return offsetof(sleaf, subj) + len + 1; }

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

static sleaf *rep_of(sref r) { return IS_LEAF(r) ? LEAF(r) : NODE(r)->rep; }

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

jsi_stree *jsi_stree_new(void) {
    jsi_stree *t = jsi_calloc(1, sizeof(*t));

    if (t != NULL)
        t->mem = sizeof(*t);
    return t;
}

/* Free a subtree without recursion: pending nodes are chained through
 * their rep fields, which a dying node no longer needs. */
static void free_ref(sref r) {
    snode *stack = NULL;

    if (r != 0 && IS_LEAF(r))
        jsi_free(LEAF(r));
    else if (r != 0)
        stack = NODE(r), stack->rep = NULL;
    while (stack != NULL) {
        snode *n = stack;

        stack = (snode *)(void *)n->rep;
        if (n->term != 0)
            jsi_free(LEAF(n->term));
        for (unsigned i = 0; i < n->n; i++) {
            if (IS_LEAF(KIDS(n)[i])) {
                jsi_free(LEAF(KIDS(n)[i]));
            } else {
                snode *k = NODE(KIDS(n)[i]);
                k->rep = (sleaf *)(void *)stack;
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

static sleaf *new_leaf(jsi_stree *t, const char *s, size_t len, void *val) {
    sleaf *l = jsi_malloc(leaf_bytes(len));

    if (l == NULL)
        return NULL;
    l->val = val;
    l->len = (uint32_t)len;
    memcpy(l->subj, s, len);
    l->subj[len] = '\0';
    t->mem += leaf_bytes(len);
    return l;
}

static void free_leaf(jsi_stree *t, sleaf *l) {
    t->mem -= leaf_bytes(l->len);
    jsi_free(l);
}

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
    const sleaf *l;

    if (r == 0 || !IS_LEAF(r))
        return NULL;
    l = LEAF(r);
    return l->len == len && memcmp(l->subj, s, len) == 0 ? l->val : NULL;
}

/* Add leaf l as a child labelled c of the node in *slot, growing it. */
static int add_child(jsi_stree *t, sref *slot, sleaf *l, uint8_t c) {
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
    KIDS(n)[i] = LEAF_REF(l);
    labels(n)[i] = c;
    n->n++;
    return 0;
}

/* Replace the entry in *slot (whose keys all differ from l's at byte L, or
 * end there) with a new node at pos L holding it and l. */
static int split(jsi_stree *t, sref *slot, sleaf *l, size_t L) {
    snode *n = jsi_malloc(node_bytes(2));
    sref old = *slot, nl = LEAF_REF(l);
    const sleaf *orep = rep_of(old);

    if (n == NULL)
        return JS_ENOMEM;
    t->mem += node_bytes(2);
    n->pos = (uint32_t)L;
    n->cap = 2;
    n->rep = l;
    if (l->len == L || orep->len == L) {
        int lterm = l->len == L;
        sref kid = lterm ? old : nl;
        n->term = lterm ? nl : old;
        n->n = 1;
        KIDS(n)[0] = kid;
        labels(n)[0] = (uint8_t)rep_of(kid)->subj[L];
    } else {
        uint8_t a = (uint8_t)orep->subj[L], b = (uint8_t)l->subj[L];
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

int jsi_stree_insert(jsi_stree *t, const char *s, size_t len, void *val,
                     void **old) {
    sref r, *slot;
    sleaf *rep, *l;
    size_t L = 0, m;
    int rc;

    if (old != NULL)
        *old = NULL;
    if (len == 0 || len > JS_MAX_SUBJECT_LEN)
        return JS_EINVAL;
    if (t->root == 0) {
        if ((l = new_leaf(t, s, len, val)) == NULL)
            return JS_ENOMEM;
        t->root = LEAF_REF(l);
        t->size = 1;
        return 0;
    }
    r = descend(t->root, s, len);
    rep = rep_of(r);
    m = len < rep->len ? len : rep->len;
    while (L < m && s[L] == rep->subj[L])
        L++;
    if (L == len && L == rep->len) {
        if (old != NULL)
            *old = rep->val;
        rep->val = val;
        return 0;
    }
    /* The new key leaves the tree at byte L: below the last node with
     * pos < L, whose child for s[pos] must exist. */
    slot = &t->root;
    while (!IS_LEAF(*slot) && NODE(*slot)->pos < L) {
        snode *n = NODE(*slot);
        slot = &KIDS(n)[find_label(n, (uint8_t)s[n->pos])];
    }
    if ((l = new_leaf(t, s, len, val)) == NULL)
        return JS_ENOMEM;
    if (!IS_LEAF(*slot) && NODE(*slot)->pos == L) {
        if (L == len) {
            NODE(*slot)->term = LEAF_REF(l);
            rc = 0;
        } else {
            rc = add_child(t, slot, l, (uint8_t)s[L]);
        }
    } else {
        rc = split(t, slot, l, L);
    }
    if (rc != 0) {
        free_leaf(t, l);
        return rc;
    }
    t->size++;
    return 0;
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
 * the parent into its last entry if it has one left. Returns a leaf still
 * in the parent's former subtree. */
static sleaf *unlink_entry(jsi_stree *t, sref *pslot, sref *slot) {
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

void *jsi_stree_remove(jsi_stree *t, const char *s, size_t len) {
    sref *pslot = NULL, *slot = &t->root, r;
    sleaf *victim, *repl = NULL;
    void *val;

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
        pslot = slot;
        slot = next;
    }
    if (*slot == 0)
        return NULL;
    victim = LEAF(*slot);
    if (victim->len != len || memcmp(victim->subj, s, len) != 0)
        return NULL;
    if (pslot == NULL)
        t->root = 0;
    else
        repl = unlink_entry(t, pslot, slot);
    /* Every node whose rep was the victim is an ancestor of it, and the
     * victim's former siblings lie under all of them. */
    for (r = t->root; repl != NULL && r != 0 && !IS_LEAF(r);) {
        snode *n = NODE(r);
        int i;

        if (n->rep == victim)
            n->rep = repl;
        if (n->pos >= len || (i = find_label(n, (uint8_t)s[n->pos])) < 0)
            break;
        r = KIDS(n)[i];
    }
    val = victim->val;
    free_leaf(t, victim);
    t->size--;
    return val;
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

static int leaf_passes(const sleaf *l, const bound *B) {
    size_t m = l->len < B->len ? l->len : B->len;
    int c = memcmp(l->subj, B->b, m);

    if (c != 0)
        return c > 0;
    return !B->beyond && l->len > B->len;
}

enum { NB_SKIP, NB_FREE, NB_TERM, NB_LABEL };

/* How node n relates to the bound: skip it, walk it freely, check only its
 * term (the prefix equals b), or also compare child labels with b[pos].
 * The first known bytes of its prefix are known to equal b's; when that
 * covers the prefix, rep (a likely cache miss) is not read. */
static int node_vs_bound(const snode *n, const bound *B, size_t known) {
    size_t q = n->pos, m = q < B->len ? q : B->len;
    int c = known >= m ? 0 : memcmp(n->rep->subj + known, B->b + known, m - known);

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
    frame *f;

    if (nb != NB_FREE && (nb = node_vs_bound(n, &w->B, known)) == NB_SKIP)
        return;
    if (!all) {
        int pf = prefix_check(w->f, w->flen, n->rep->subj, n->pos, &req);
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

void *jsi_stree_next(const jsi_stree *t, const char *filter, const char *after,
                     size_t after_len, const char **subj, size_t *len) {
    walk w;
    int any;
    const snode *last = NULL;

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
                const sleaf *l = LEAF(r);
                if ((nb == NB_FREE || leaf_passes(l, &w.B)) &&
                    (all || jsi_subject_match(filter, w.flen, l->subj, l->len))) {
                    if (subj != NULL)
                        *subj = l->subj;
                    if (len != NULL)
                        *len = l->len;
                    return l->val;
                }
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
        w.B.b = last->rep->subj;
        w.B.len = last->pos;
        w.B.beyond = 1;
    }
}

/* ---- streaming iterator ------------------------------------------------ */

int jsi_stree_iter_next(jsi_stree_iter *it, const jsi_stree *t,
                        const char **subj, size_t *len, void **val) {
    const char *s;
    size_t n;
    void *v = jsi_stree_next(t, it->filter, it->started ? it->last : NULL,
                             it->len, &s, &n);

    if (v == NULL)
        return 0;
    if (n > it->cap) {
        size_t cap = n < 64 ? 64 : n;
        char *p = jsi_realloc(it->last, cap);
        if (p == NULL)
            return JS_ENOMEM;
        it->last = p;
        it->cap = cap;
    }
    memcpy(it->last, s, n);
    it->len = n;
    it->started = 1;
    if (subj != NULL)
        *subj = s;
    if (len != NULL)
        *len = n;
    *val = v;
    return 1;
}

static int each_ref(sref r, int (*fn)(void *, void *), void *ctx) {
    if (IS_LEAF(r))
        return fn(LEAF(r)->val, ctx);
    const snode *n = NODE(r);
    int rc = n->term ? fn(LEAF(n->term)->val, ctx) : 0;
    for (unsigned i = 0; rc == 0 && i < n->n; i++)
        rc = each_ref(KIDS(n)[i], fn, ctx);
    return rc;
}

int jsi_stree_each(const jsi_stree *t, int (*fn)(void *val, void *ctx),
                   void *ctx) {
    return t->root ? each_ref(t->root, fn, ctx) : 0;
}

void jsi_stree_iter_free(jsi_stree_iter *it) {
    jsi_free(it->last);
    it->last = NULL;
    it->len = it->cap = 0;
    it->started = 0;
}

/* ---- invariant check (tests) ------------------------------------------ */

typedef struct check_acc {
    size_t leaves, mem;
    const sleaf *prev; /* the previous leaf in order */
} check_acc;

#define CHECK(c)                  \
    do {                          \
        if (!(c))                 \
            return -__LINE__;     \
    } while (0)

/* Check the subtree r, all of whose keys start with pre[0..plen). */
static int check_ref(sref r, const char *pre, size_t plen, check_acc *a) {
    const snode *n;
    int rc;

    if (IS_LEAF(r)) {
        const sleaf *l = LEAF(r);
        CHECK(l->len >= plen && memcmp(l->subj, pre, plen) == 0);
        CHECK(l->len > 0 && l->subj[l->len] == '\0');
        if (a->prev != NULL) {
            size_t m = a->prev->len < l->len ? a->prev->len : l->len;
            int c = memcmp(a->prev->subj, l->subj, m);
            CHECK(c < 0 || (c == 0 && a->prev->len < l->len));
        }
        a->prev = l;
        a->leaves++;
        a->mem += leaf_bytes(l->len);
        return 0;
    }
    n = NODE(r);
    a->mem += node_bytes(n->cap);
    CHECK(n->pos >= plen && n->rep != NULL && n->rep->len >= n->pos);
    CHECK(memcmp(n->rep->subj, pre, plen) == 0);
    CHECK(n->n <= n->cap && n->cap >= 2 && n->n + (n->term != 0) >= 2);
    CHECK(n->cap == fit_cap(n->cap));
    pre = n->rep->subj; /* the node's own prefix */
    if (n->term != 0) {
        CHECK(IS_LEAF(n->term) && LEAF(n->term)->len == n->pos);
        if ((rc = check_ref(n->term, pre, n->pos, a)) != 0)
            return rc;
    }
    for (unsigned i = 0; i < n->n; i++) {
        const sleaf *rl = rep_of(KIDS(n)[i]);
        CHECK(i == 0 || labels(n)[i - 1] < labels(n)[i]);
        CHECK(rl->len > n->pos && (uint8_t)rl->subj[n->pos] == labels(n)[i]);
        CHECK(IS_LEAF(KIDS(n)[i]) || NODE(KIDS(n)[i])->pos > n->pos);
        if ((rc = check_ref(KIDS(n)[i], pre, n->pos, a)) != 0)
            return rc;
    }
    /* rep lies below: it shares the prefix and its label exists. */
    CHECK(descend(r, n->rep->subj, n->rep->len) == LEAF_REF(n->rep));
    return 0;
}

int jsi_stree_check(const jsi_stree *t) {
    check_acc a = {0, sizeof(*t), NULL};
    int rc;

    if (t->root != 0 && (rc = check_ref(t->root, "", 0, &a)) != 0)
        return rc;
    CHECK(a.leaves == t->size);
    CHECK(a.mem == t->mem);
    return 0;
}
