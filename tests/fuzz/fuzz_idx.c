/*
 * fuzz_idx.c - libFuzzer target for the IDX reader of libfloe_keras (keras/src/data.c,
 * floe_dataset_load_idx): untrusted files, gzip-compressed or plain.
 *
 * Input format: two bytes (little-endian) give the length L of the label file, the next
 * L bytes are the label file, the rest is the image file.  Both are written to
 * temporary files, since the reader opens paths (zlib's gzopen).
 *
 * Oracle: the call returns FLOE_OK with a data set whose size is the labels' count, each
 * label in 0..255 and the example shape's product times the size equal to the image
 * payload; or FLOE_DATA_LOSS / FLOE_RESOURCE_EXHAUSTED with a NULL data set and a
 * message.  Nothing else (no crash, no leak under ASan, no other status).
 */
#include "fuzz_util.h"

#include <floe/data.h>
#include <floe/keras.h>

#include <unistd.h>

static char images_path[64], labels_path[64];

static int write_temp(char *path, const uint8_t *data, size_t len) {
    FILE *f;

    if (path[0] == '\0') {
        int fd;
        snprintf(path, 64, "/tmp/floe_fuzz_idx_XXXXXX");
        fd = mkstemp(path);
        if (fd < 0)
            return -1;
        close(fd);
    }
    f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    if (len > 0 && fwrite(data, 1, len, f) != len) {
        fclose(f);
        return -1;
    }
    return fclose(f);
}

static void cleanup(void) {
    if (images_path[0] != '\0')
        unlink(images_path);
    if (labels_path[0] != '\0')
        unlink(labels_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int registered;
    size_t llen;
    floe_dataset *ds = (floe_dataset *)&llen;
    floe_status st;

    if (size < 2)
        return 0;
    if (!registered) {
        atexit(cleanup);
        registered = 1;
    }
    llen = (size_t)data[0] | (size_t)data[1] << 8;
    if (llen > size - 2)
        llen = size - 2;
    if (write_temp(labels_path, data + 2, llen) != 0 ||
        write_temp(images_path, data + 2 + llen, size - 2 - llen) != 0)
        return 0;
    st = floe_dataset_load_idx(images_path, labels_path, 1.0f / 255.0f, &ds);
    if (st == FLOE_OK) {
        int64_t dims[FLOE_MAX_DIMS], n = floe_dataset_size(ds), elems = 1;
        int nd = floe_dataset_x_shape(ds, dims);
        FUZZ_CHECK(ds != NULL && n > 0 && nd >= 0 && nd <= 3);
        for (int i = 0; i < nd; i++)
            elems *= dims[i];
        FUZZ_CHECK(elems > 0 && elems * n <= (int64_t)size);
        for (int64_t i = 0; i < n; i++)
            FUZZ_CHECK(floe_dataset_label(ds, i) >= 0 && floe_dataset_label(ds, i) <= 255);
        FUZZ_CHECK(floe_dataset_example(ds, n - 1) != NULL);
        floe_dataset_free(ds);
    } else {
        FUZZ_CHECK(ds == NULL);
        FUZZ_CHECK(st == FLOE_DATA_LOSS || st == FLOE_RESOURCE_EXHAUSTED);
        FUZZ_CHECK(floe_keras_last_error()[0] != '\0');
    }
    return 0;
}
