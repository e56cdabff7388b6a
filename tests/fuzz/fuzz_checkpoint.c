/*
 * fuzz_checkpoint.c - libFuzzer target for the checkpoint reader of libfloe_keras
 * (keras/src/checkpoint.c: floe_checkpoint_open, _tensor_info, _read_tensor): untrusted
 * checkpoint files.
 *
 * Input format: the whole input is the checkpoint file.  It is written to a temporary
 * file, since the reader goes through the filesystem ABI (floe_file_pread).
 *
 * Oracle: open returns FLOE_OK with a reader whose tensors have valid dtypes, ranks
 * 0..FLOE_MAX_DIMS, extents >= 0, names unique, sorted, findable, and whose data (read
 * and checksum-verified, or refused with FLOE_DATA_LOSS) fits in the input; or
 * FLOE_DATA_LOSS / FLOE_UNIMPLEMENTED (another format version) / FLOE_RESOURCE_EXHAUSTED
 * with a NULL reader and a message.  Nothing else (no crash, no leak under ASan).
 */
#include "fuzz_util.h"

#include <floe/checkpoint.h>
#include <floe/keras.h>

#include <string.h>
#include <unistd.h>

static char path[64];
static floe_context *ctx;

static void cleanup(void) {
    if (path[0] != '\0')
        unlink(path);
    floe_context_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    floe_checkpoint *c = (floe_checkpoint *)&size;
    floe_status st;
    FILE *f;

    if (ctx == NULL) {
        floe_context_options opts;
        int fd;
        floe_context_options_init(&opts);
        opts.no_plugins = 1;
        opts.num_threads = 1;
        if (floe_context_new(&opts, &ctx) != FLOE_OK)
            return 0;
        snprintf(path, sizeof(path), "/tmp/floe_fuzz_ckpt_XXXXXX");
        fd = mkstemp(path);
        if (fd < 0)
            return 0;
        close(fd);
        atexit(cleanup);
    }
    f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    if (size > 0 && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    if (fclose(f) != 0)
        return 0;

    st = floe_checkpoint_open(ctx, path, &c);
    if (st != FLOE_OK) {
        FUZZ_CHECK(c == NULL);
        FUZZ_CHECK(st == FLOE_DATA_LOSS || st == FLOE_UNIMPLEMENTED ||
                   st == FLOE_RESOURCE_EXHAUSTED);
        FUZZ_CHECK(floe_keras_last_error()[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(c != NULL);
    int n = floe_checkpoint_num_tensors(c);
    const char *prev = NULL;
    FUZZ_CHECK(n >= 0);
    for (int i = 0; i < n; i++) {
        const char *name = NULL;
        floe_dtype dt;
        floe_shape sh;
        floe_tensor *t = NULL;

        FUZZ_CHECK(floe_checkpoint_tensor_info(c, i, &name, &dt, &sh) == FLOE_OK);
        FUZZ_CHECK(name != NULL && name[0] != '\0');
        FUZZ_CHECK(prev == NULL || strcmp(prev, name) < 0);
        FUZZ_CHECK(floe_checkpoint_find(c, name) == i);
        FUZZ_CHECK(floe_dtype_size(dt) > 0);
        FUZZ_CHECK(sh.ndim >= 0 && sh.ndim <= FLOE_MAX_DIMS);
        for (int d = 0; d < sh.ndim; d++)
            FUZZ_CHECK(sh.dims[d] >= 0);
        prev = name;
        st = floe_checkpoint_read_tensor(c, i, &t);
        if (st == FLOE_OK) {
            FUZZ_CHECK(t != NULL && floe_tensor_dtype(t) == dt);
            FUZZ_CHECK(floe_tensor_nbytes(t) <= size);
            floe_tensor_unref(t);
        } else {
            FUZZ_CHECK(t == NULL);
            FUZZ_CHECK(st == FLOE_DATA_LOSS || st == FLOE_RESOURCE_EXHAUSTED);
        }
    }
    FUZZ_CHECK(floe_checkpoint_tensor_info(c, n, NULL, NULL, NULL) == FLOE_INVALID_ARGUMENT);
    floe_checkpoint_close(c);
    return 0;
}
