/*
 * fuzz_event.c - libFuzzer target for TensorBoard event files (io/src/summary.c:
 * floe_event_reader_*, floe_event_decode; io/src/png.c: floe_png_decode).
 *
 * Input format: the whole input is an event file (TFRecord framing of serialized
 * Events), read with floe_event_reader_open_memory; the input is also decoded as one
 * bare Event record with floe_event_decode.
 *
 * Oracle: every read returns FLOE_OK with a well-formed event (a known kind; a summary
 * has its values, each with a tag, a known kind, histogram bucket arrays present when
 * counted; a graph or image's bytes inside the input), or ends with FLOE_OUT_OF_RANGE /
 * FLOE_DATA_LOSS (with a message); image bytes decode to a U8 [H, W, 1..4] tensor or
 * give FLOE_DATA_LOSS.  Nothing else (no crash, no leak under ASan).
 */
#include "fuzz_util.h"

#include <floe/floe.h>
#include <floe/summary.h>

/* The invariants of one decoded event (ASan checks that its arrays are as long as said). */
static void check_event(const floe_event *ev) {
    FUZZ_CHECK(ev != NULL);
    FUZZ_CHECK(ev->kind >= FLOE_EVENT_EMPTY && ev->kind <= FLOE_EVENT_OTHER);
    if (ev->kind == FLOE_EVENT_FILE_VERSION)
        FUZZ_CHECK(ev->file_version != NULL);
    if (ev->kind == FLOE_EVENT_GRAPH)
        FUZZ_CHECK(ev->graph_def != NULL || ev->graph_def_size == 0);
    FUZZ_CHECK(ev->kind == FLOE_EVENT_SUMMARY || ev->nvalues == 0);
    FUZZ_CHECK(ev->nvalues == 0 || ev->values != NULL);
    for (size_t i = 0; i < ev->nvalues; i++) {
        const floe_summary_value *v = &ev->values[i];
        FUZZ_CHECK(v->tag != NULL && v->plugin_name != NULL);
        FUZZ_CHECK(v->kind >= FLOE_SUMMARY_SCALAR && v->kind <= FLOE_SUMMARY_OTHER);
        if (v->kind == FLOE_SUMMARY_HISTOGRAM && v->nbuckets > 0) {
            volatile double s = 0;
            FUZZ_CHECK(v->bucket_limit != NULL && v->bucket != NULL);
            for (size_t b = 0; b < v->nbuckets; b++)
                s += v->bucket_limit[b] + v->bucket[b]; /* ASan checks the extent */
            (void)s;
        }
        if (v->kind == FLOE_SUMMARY_IMAGE && v->encoded_size > 0) {
            floe_tensor *t = (floe_tensor *)&t;
            floe_status st;
            FUZZ_CHECK(v->encoded != NULL);
            st = floe_png_decode(v->encoded, v->encoded_size, &t);
            if (st == FLOE_OK) {
                FUZZ_CHECK(floe_tensor_dtype(t) == FLOE_DTYPE_U8 && floe_tensor_ndim(t) == 3);
                FUZZ_CHECK(floe_tensor_dim(t, 0) >= 1 && floe_tensor_dim(t, 1) >= 1);
                FUZZ_CHECK(floe_tensor_dim(t, 2) >= 1 && floe_tensor_dim(t, 2) <= 4);
                floe_tensor_unref(t);
            } else {
                FUZZ_CHECK(st == FLOE_DATA_LOSS || st == FLOE_UNIMPLEMENTED ||
                           st == FLOE_RESOURCE_EXHAUSTED);
                FUZZ_CHECK(t == NULL && floe_last_error()[0] != '\0');
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    floe_event_reader *r = (floe_event_reader *)&size;
    floe_event *one = (floe_event *)&size;
    const floe_event *ev;
    floe_status st, file_st;
    int n = 0;

    /* The input as an event file. */
    st = floe_event_reader_open_memory(data, size, "fuzz", &r);
    FUZZ_CHECK(st == FLOE_OK && r != NULL);
    while ((st = floe_event_reader_next(r, &ev)) == FLOE_OK) {
        check_event(ev);
        n++;
    }
    FUZZ_CHECK(st == FLOE_OUT_OF_RANGE || st == FLOE_DATA_LOSS);
    FUZZ_CHECK(ev == NULL);
    if (st == FLOE_DATA_LOSS)
        FUZZ_CHECK(floe_last_error()[0] != '\0');
    /* Errors are sticky: the next read reports the same end. */
    FUZZ_CHECK(floe_event_reader_next(r, &ev) == st);
    floe_event_reader_close(r);
    file_st = st;

    /* The input as one bare Event. */
    st = floe_event_decode(data, size, &one);
    if (st == FLOE_OK) {
        check_event(one);
        floe_event_free(one);
    } else {
        FUZZ_CHECK(st == FLOE_DATA_LOSS && one == NULL);
        FUZZ_CHECK(floe_last_error()[0] != '\0');
    }
    if (fuzz_verbose())
        fprintf(stderr, "%zu bytes: %d events, then %s; as one event: %s\n", size, n,
                floe_status_str(file_st), floe_status_str(st));
    return 0;
}
