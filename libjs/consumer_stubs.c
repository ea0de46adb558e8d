/* consumer_stubs.c - placeholders while the consumer layer is written (branch only). */
#include "jetstream.h"

JS_API int js_consumer_add(js_stream *stream, const js_consumer_config *cfg,
                           js_consumer **out) {
    return JS_ENOTSUP;
}

JS_API int js_consumer_update(js_stream *stream,
                              const js_consumer_config *cfg,
                              js_consumer **out) {
    return JS_ENOTSUP;
}

JS_API int js_consumer_lookup(js_stream *stream, const char *name,
                              js_consumer **out) {
    return JS_ENOTSUP;
}

JS_API void js_consumer_release(js_consumer *consumer) {
    return;
}

JS_API int js_consumer_delete(js_stream *stream, const char *name) {
    return JS_ENOTSUP;
}

JS_API int js_consumer_names(js_stream *stream, char ***names,
                             size_t *count) {
    return JS_ENOTSUP;
}

JS_API int js_consumer_info(js_consumer *consumer,
                            struct js_consumer_info **out) {
    return JS_ENOTSUP;
}

JS_API void js_consumer_info_free(struct js_consumer_info *info) {
    return;
}

JS_API int js_consumer_next(js_consumer *consumer, int64_t timeout,
                            js_msg **out) {
    return JS_ENOTSUP;
}

JS_API int js_consumer_fetch(js_consumer *consumer, js_msg **msgs,
                             size_t max_msgs, const js_fetch_opts *opts,
                             size_t *n) {
    return JS_ENOTSUP;
}

JS_API int js_consumer_subscribe(js_consumer *consumer, js_msg_handler cb,
                                 void *ctx, js_sub **out) {
    return JS_ENOTSUP;
}

JS_API int js_sub_unsubscribe(js_sub *sub) {
    return JS_ENOTSUP;
}

JS_API int js_dispatch(js_store *store, int64_t timeout) {
    return JS_ENOTSUP;
}

JS_API int js_dispatcher_start(js_store *store, unsigned threads) {
    return JS_ENOTSUP;
}

JS_API int js_dispatcher_stop(js_store *store) {
    return JS_ENOTSUP;
}

JS_API int js_msg_metadata(const js_msg *msg, js_msg_meta *meta) {
    return JS_ENOTSUP;
}

JS_API int js_msg_ack(js_msg *msg) {
    return JS_ENOTSUP;
}

JS_API int js_msg_ack_sync(js_msg *msg) {
    return JS_ENOTSUP;
}

JS_API int js_msg_nak(js_msg *msg, int64_t delay) {
    return JS_ENOTSUP;
}

JS_API int js_msg_in_progress(js_msg *msg) {
    return JS_ENOTSUP;
}

JS_API int js_msg_term(js_msg *msg, const char *reason) {
    return JS_ENOTSUP;
}

JS_API int js_events_set(js_store *store, js_event_handler cb, void *ctx) {
    return JS_ENOTSUP;
}
