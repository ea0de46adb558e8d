/*
 * pending.h - a consumer's delivered-but-unacked messages: lookup by stream
 * sequence, the lowest pending sequence (the ack floor), and the earliest
 * redelivery deadline.
 *
 * Entries are added in increasing stream sequence (new deliveries move a
 * cursor forward; redeliveries reuse their entry), so an array in sequence
 * order with lazily skipped holes gives the floor in amortised O(1). A hash
 * maps sequence to entry; a min-heap orders deadlines, with stale heap items
 * (entry gone or rescheduled) dropped when they reach the top.
 */
#ifndef JSI_PENDING_H
#define JSI_PENDING_H

#include <stddef.h>
#include <stdint.h>

typedef struct jsi_pent {
    uint64_t sseq;       /* stream sequence */
    uint64_t dseq;       /* consumer sequence of the latest delivery */
    uint64_t count;      /* deliveries so far */
    int64_t delivered;   /* time of the latest delivery, ns */
    int64_t deadline;    /* redeliver at, ns; INT64_MAX: not scheduled */
    uint64_t gen;        /* bumped on every reschedule */
} jsi_pent;

typedef struct jsi_pend {
    jsi_pent *ents;          /* by slot */
    size_t cap;              /* slots (power of two) */
    size_t n;                /* live entries */
    uint64_t *order;         /* sequences in insertion order, 0 = removed */
    size_t ohead, olen, ocap;
    struct jsi_pheap { int64_t deadline; uint64_t sseq, gen; } *heap;
    size_t hn, hcap;
    uint64_t redelivered;    /* live entries with count > 1 */
} jsi_pend;

void jsi_pend_init(jsi_pend *p);
void jsi_pend_free(jsi_pend *p);
/* The entry for sseq, or NULL. Valid until the next add or del. */
jsi_pent *jsi_pend_get(jsi_pend *p, uint64_t sseq);
/* Add an entry for sseq, which must exceed every sequence added before
 * (see above). NULL on ENOMEM. */
jsi_pent *jsi_pend_add(jsi_pend *p, uint64_t sseq);
/* Remove sseq's entry; 1 if there was one. */
int jsi_pend_del(jsi_pend *p, uint64_t sseq);
/* Set an entry's deadline (INT64_MAX: none); 0, or JS_ENOMEM with the
 * entry unchanged. */
int jsi_pend_schedule(jsi_pend *p, jsi_pent *e, int64_t deadline);
/* Record a new delivery of an entry (count, dseq, time). */
void jsi_pend_delivered(jsi_pend *p, jsi_pent *e, uint64_t dseq, int64_t now);
/* The entry with the lowest sequence, or NULL if empty. */
jsi_pent *jsi_pend_first(jsi_pend *p);
/* The earliest scheduled deadline (INT64_MAX if none). */
int64_t jsi_pend_next_deadline(jsi_pend *p);
/* An entry whose deadline is <= now, earliest first, or NULL. Its deadline
 * stays set until rescheduled. */
jsi_pent *jsi_pend_due(jsi_pend *p, int64_t now);
/* Walk entries in sequence order: *pos starts at 0; NULL at the end. The
 * set must not change during the walk. */
jsi_pent *jsi_pend_next(jsi_pend *p, size_t *pos);

#endif
