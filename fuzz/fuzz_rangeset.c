/*
 * fuzz_rangeset.c - the rangeset codec (rangeset.h) that DEL records,
 * checkpoints and consumer state all embed: decode, check the set's
 * invariants, and a round trip through encode.
 *
 * Input: the encoding itself, then (after what decode used) bytes that
 * drive a few set operations on the decoded set.
 */
#include <string.h>

#include "fuzz_util.h"
#include "rangeset.h"
#include "util.h"

/* Sorted, disjoint, non-adjacent runs, none holding 0. */
static void check_set(const jsi_rangeset *s) {
    for (size_t i = 0; i < s->n; i++) {
        if (s->r[i].lo == 0 || s->r[i].lo > s->r[i].hi)
            fuzz_fail("a run is empty or holds 0");
        if (i && s->r[i].lo <= s->r[i - 1].hi + 1)
            fuzz_fail("runs overlap, touch or are out of order");
    }
}

/* The largest non-member <= a, and every value above it up to a a
 * member. */
static void prev_gap(const jsi_rangeset *s, uint64_t a) {
    uint64_t g = jsi_rs_prev_gap(s, a);
    if (g > a || (g && jsi_rs_contains(s, g)))
        fuzz_fail("prev_gap is above v or a member");
    if (g < a && jsi_rs_count_in(s, g + 1, a) != a - g)
        fuzz_fail("prev_gap skipped a non-member");
}

static void round_trip(const jsi_rangeset *s) {
    jsi_buf b = {0};
    jsi_rangeset t = JSI_RANGESET_INIT;
    size_t used = 0;
    if (jsi_rs_encode(s, &b) != 0)
        return;
    if (jsi_rs_decode(&t, b.p, b.len, &used) != 0 || used != b.len ||
        t.n != s->n || (s->n && memcmp(t.r, s->r, s->n * sizeof *s->r) != 0))
        fuzz_fail("a decoded set does not survive encode and decode");
    jsi_rs_free(&t);
    jsi_buf_free(&b);
}

static void operate(jsi_rangeset *s, fuzz_ops *o) {
    while (fuzz_ops_more(o)) {
        uint8_t op = fuzz_u8(o);
        uint64_t a = fuzz_u64(o) | 1, span = fuzz_u16(o);
        uint64_t b = a + span < a ? UINT64_MAX : a + span;
        uint64_t before = jsi_rs_total(s);
        switch (op % 4) {
        case 0:
            if (jsi_rs_add(s, a, b) == 0 && !jsi_rs_contains(s, b))
                fuzz_fail("an added run is not contained");
            break;
        case 1:
            if (jsi_rs_remove(s, a, b) == 0 && jsi_rs_count_in(s, a, b))
                fuzz_fail("a removed run still has members");
            break;
        case 2:
            jsi_rs_remove_below(s, a);
            if (jsi_rs_total(s) > before)
                fuzz_fail("remove_below grew the set");
            break;
        default:
            if (jsi_rs_next_member(s, a) && jsi_rs_next_member(s, a) < a)
                fuzz_fail("next_member went backwards");
            /* 0: every value from a up is a member. */
            if (jsi_rs_next_gap(s, a) < a && jsi_rs_next_gap(s, a) != 0)
                fuzz_fail("next_gap went backwards");
            if (jsi_rs_next_gap(s, a) && jsi_rs_contains(s, jsi_rs_next_gap(s, a)))
                fuzz_fail("next_gap is a member");
            prev_gap(s, a);
            break;
        }
        check_set(s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    jsi_rangeset s = JSI_RANGESET_INIT;
    size_t used = 0;
    if (jsi_rs_decode(&s, data, size, &used) == 0) {
        if (used > size)
            fuzz_fail("decode used more than it was given");
        check_set(&s);
        (void)jsi_rs_total(&s);
        round_trip(&s);
        fuzz_ops o = {data + used, size - used, 0};
        operate(&s, &o);
        round_trip(&s);
    }
    jsi_rs_free(&s);
    return 0;
}
