/*
 * fuzz_npy.c - libFuzzer target for the .npy reader (io/src/npy.c: magic, version,
 * header length, the header dict's tokenizer, descr, shape, data size, byte order).
 *
 * Input: the bytes of a .npy file.
 * Oracle: decode returns OK or INVALID_ARGUMENT (RESOURCE_EXHAUSTED only for a tensor
 * too large to allocate) with a message and a NULL tensor on failure.  A decoded tensor
 * has exactly the data bytes the input held; encoding it and decoding the result gives
 * the same dtype, shape and bytes, and encoding that gives the same file again.
 */
#include "fuzz_util.h"

#include <floe/floe.h>
#include <floe/npy.h>
#include <floe/tensor.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    floe_tensor *t = (floe_tensor *)&size, *u = NULL;
    void *d1 = NULL, *d2 = NULL;
    size_t n1 = 0, n2 = 0;

    floe_status st = floe_npy_decode(data, size, &t);
    if (fuzz_verbose())
        fprintf(stderr, "decode: %d %s\n", st, st == FLOE_OK ? "" : floe_last_error());
    if (st != FLOE_OK) {
        FUZZ_CHECK(st == FLOE_INVALID_ARGUMENT || st == FLOE_RESOURCE_EXHAUSTED);
        FUZZ_CHECK(t == NULL);
        FUZZ_CHECK(floe_last_error()[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(t != NULL);
    FUZZ_CHECK(floe_tensor_nbytes(t) <= size);
    FUZZ_CHECK(floe_npy_encode(t, &d1, &n1) == FLOE_OK);
    FUZZ_CHECK(floe_npy_decode(d1, n1, &u) == FLOE_OK);
    FUZZ_CHECK(floe_tensor_dtype(u) == floe_tensor_dtype(t));
    FUZZ_CHECK(floe_tensor_ndim(u) == floe_tensor_ndim(t));
    for (int i = 0; i < floe_tensor_ndim(t); i++)
        FUZZ_CHECK(floe_tensor_dim(u, i) == floe_tensor_dim(t, i));
    FUZZ_CHECK(floe_tensor_nbytes(u) == floe_tensor_nbytes(t));
    if (floe_tensor_nbytes(t) > 0)
        FUZZ_CHECK(memcmp(floe_tensor_data(u), floe_tensor_data(t), floe_tensor_nbytes(t)) == 0);
    FUZZ_CHECK(floe_npy_encode(u, &d2, &n2) == FLOE_OK);
    FUZZ_CHECK(n1 == n2 && memcmp(d1, d2, n1) == 0);
    free(d1);
    free(d2);
    floe_tensor_unref(t);
    floe_tensor_unref(u);
    return 0;
}
