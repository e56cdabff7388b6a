/*
 * fuzz_dist_msg.c - libFuzzer target for the message decoder of the distributed runtime
 * (dist/src/wire.c: floe__dist_decode_request, floe__dist_decode_reply), which parameter
 * servers and workers run on every byte that arrives from the network.
 *
 * Input: the first byte picks the message (even: Request, odd: Reply), the rest is
 * the message.
 *
 * Oracle: FLOE_OK with every tensor checked (a known fixed-size dtype, rank <= 8, no
 * negative extent, data of exactly count * element size bytes, a printable name) and
 * every Request name printable; or FLOE_INVALID_ARGUMENT / FLOE_RESOURCE_EXHAUSTED with a
 * NULL message and a reason.  No crash, no leak.
 */
#include "fuzz_util.h"

#include "dist-impl.h"

static void check_views(const floe__dist_tensor *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t es = floe_dtype_size(t[i].dtype);
        int64_t count = 1;
        FUZZ_CHECK(es > 0 && t[i].dtype != FLOE_DTYPE_STRING);
        FUZZ_CHECK(t[i].ndim >= 0 && t[i].ndim <= FLOE_MAX_DIMS);
        for (int d = 0; d < t[i].ndim; d++) {
            FUZZ_CHECK(t[i].dims[d] >= 0);
            count *= t[i].dims[d];
        }
        FUZZ_CHECK(count == t[i].count);
        FUZZ_CHECK(t[i].nbytes == (size_t)count * es);
        FUZZ_CHECK(t[i].name != NULL && strlen(t[i].name) > 0);
        if (t[i].nbytes > 0) {   /* touch every byte: ASan checks the bounds */
            volatile uint8_t sum = 0;
            for (size_t b = 0; b < t[i].nbytes; b++)
                sum ^= ((const uint8_t *)t[i].data)[b];
            (void)sum;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    floe__dist_tensor *t = NULL;
    floe_status st;

    if (size < 1)
        return 0;
    if (data[0] % 2 == 0) {
        Floe__Dist__Request *r = NULL;
        st = floe__dist_decode_request(data + 1, size - 1, &r, &t);
        FUZZ_CHECK(st == FLOE_OK || st == FLOE_INVALID_ARGUMENT || st == FLOE_RESOURCE_EXHAUSTED);
        if (st == FLOE_OK) {
            FUZZ_CHECK(r != NULL && r->step >= 0);
            check_views(t, r->n_tensors);
            for (size_t i = 0; i < r->n_names; i++)
                FUZZ_CHECK(r->names[i][0] != '\0');
        } else {
            FUZZ_CHECK(r == NULL && t == NULL && floe_last_error()[0] != '\0');
        }
        floe__dist_request_free(r);
    } else {
        Floe__Dist__Reply *r = NULL;
        st = floe__dist_decode_reply(data + 1, size - 1, &r, &t);
        FUZZ_CHECK(st == FLOE_OK || st == FLOE_INVALID_ARGUMENT || st == FLOE_RESOURCE_EXHAUSTED);
        if (st == FLOE_OK)
            check_views(t, r->n_tensors);
        else
            FUZZ_CHECK(r == NULL && t == NULL && floe_last_error()[0] != '\0');
        floe__dist_reply_free(r);
    }
    free(t);
    return 0;
}
