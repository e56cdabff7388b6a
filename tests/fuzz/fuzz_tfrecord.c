/*
 * fuzz_tfrecord.c - libFuzzer target for the TFRecord reader of libfloe_io
 * (io/src/tfrecord.c): untrusted framing, plain or inflated by zlib.
 *
 * Input format: the first byte's low two bits pick the compression (0 NONE, 1 ZLIB,
 * 2 GZIP, 3 NONE); the rest is the file, read through floe_tfrecord_reader_open_memory.
 *
 * Oracle: every record returned has a data CRC that matches (checked again here) and
 * lies inside the input for plain files; the reader ends with FLOE_OUT_OF_RANGE or
 * FLOE_DATA_LOSS (with a message naming the input and an offset) and then keeps
 * returning the same status; nothing else (no crash, no leak, no other status).
 */
#include "fuzz_util.h"

#include <floe/floe.h>
#include <floe/tfrecord.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    floe_compression c = (floe_compression)(data[0] & 3);
    if (c == 3)
        c = FLOE_COMPRESSION_NONE;
    floe_tfrecord_reader *r = NULL;
    FUZZ_CHECK(floe_tfrecord_reader_open_memory(data + 1, size - 1, c, "fuzz", &r) == FLOE_OK);
    uint64_t total = 0;
    floe_status st;
    for (;;) {
        const void *rec;
        size_t n;
        st = floe_tfrecord_read(r, &rec, &n);
        if (st != FLOE_OK) {
            FUZZ_CHECK(rec == NULL && n == 0);
            break;
        }
        FUZZ_CHECK(rec != NULL || n == 0);
        total += 16 + n;
        if (c == FLOE_COMPRESSION_NONE)
            FUZZ_CHECK(total <= size - 1);
        FUZZ_CHECK(floe_tfrecord_reader_offset(r) == total);
        /* the stored data CRC follows the record in the reader's buffer */
        const uint8_t *p = (const uint8_t *)rec + n;
        uint32_t stored = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                          (uint32_t)p[3] << 24;
        FUZZ_CHECK(floe_crc32c_mask(floe_crc32c(0, rec, n)) == stored);
    }
    FUZZ_CHECK(st == FLOE_OUT_OF_RANGE || st == FLOE_DATA_LOSS);
    if (st == FLOE_DATA_LOSS)
        FUZZ_CHECK(strstr(floe_last_error(), "fuzz") != NULL &&
                   strstr(floe_last_error(), "offset") != NULL);
    const void *rec;
    size_t n;
    FUZZ_CHECK(floe_tfrecord_read(r, &rec, &n) == st);
    if (fuzz_verbose())
        fprintf(stderr, "%s after %llu bytes of records: %s\n", floe_status_str(st),
                (unsigned long long)total, floe_last_error());
    floe_tfrecord_reader_close(r);
    return 0;
}
