/* ms_shim.h - TEMPORARY: msgstore calls the consumer layer needs, until
 * the msgstore branch lands (then this file and ms_shim.c go). */
#ifndef JSI_MS_SHIM_H
#define JSI_MS_SHIM_H
#include "msgstore.h"
int jsi_ms_count(jsi_ms *ms, const char *const *filters, size_t nfilters,
                 uint64_t start, uint64_t *out);
typedef void (*jsi_ms_removed_fn)(void *ctx, uint64_t lo, uint64_t hi,
                                  const char *subj, size_t slen);
void jsi_ms_set_observer(jsi_ms *ms, jsi_ms_removed_fn fn, void *ctx);
int jsi_ms_next_multi(jsi_ms *ms, const char *const *filters,
                      size_t nfilters, uint64_t seq, jsi_rec *r);
#endif
