/*
 * floe/data.h - in-memory data sets for training: IDX files (MNIST, Fashion-MNIST),
 * arrays, batches and seeded shuffling.
 *
 * A floe_dataset holds @n examples of features (u8, f32 or i32) and targets (i32 class
 * ids or f32 vectors) in their stored type: images stay uint8 (1 byte a pixel) and are
 * converted to f32 (times a scale, 1/255 for images) one batch at a time, into tensors
 * the caller reuses from step to step.
 *
 * Thread safety: a data set is immutable after it is made; any thread may read it.
 * Errors: the message of a failed call is floe_keras_last_error() (floe/keras.h).
 */
#ifndef FLOE_DATA_H
#define FLOE_DATA_H

#include <floe/floe.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef FLOE_KERAS_API
#  ifdef FLOE_BUILDING_KERAS
#    define FLOE_KERAS_API FLOE_EXPORT_
#  else
#    define FLOE_KERAS_API
#  endif
#endif

/* Where Debian's dataset-fashion-mnist package puts the four files. */
#define FLOE_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct floe_dataset floe_dataset;

/*
 * floe_dataset_load_idx: reads an IDX image (or feature) file and its IDX label file,
 * gzip-compressed or plain.  Only unsigned-byte IDX data (type 0x08) is accepted; the
 * header (magic, rank 1..4, extents) is checked against the bytes that follow, so a
 * truncated, padded or corrupt file gives FLOE_DATA_LOSS and the two files must hold the
 * same number of examples.  Labels become i32 class ids.  @scale multiplies features
 * when batches are made (1/255.0f for images).
 * Returns FLOE_NOT_FOUND for a missing file, FLOE_DATA_LOSS for bad contents,
 * FLOE_RESOURCE_EXHAUSTED, FLOE_INVALID_ARGUMENT.  *@out (transfer full) or NULL.
 */
FLOE_KERAS_API floe_status floe_dataset_load_idx(const char *images_path,
                                                 const char *labels_path, float scale,
                                                 floe_dataset **out);

/*
 * floe_dataset_load_fashion_mnist: the training (@train 1: 60000 images) or test (@train
 * 0: 10000 images) split of Fashion-MNIST from @dir (NULL: FLOE_FASHION_MNIST_DIR):
 * 28x28 u8 images scaled by 1/255 and labels 0..9.  A missing file gives FLOE_NOT_FOUND
 * and a message saying `apt-get install dataset-fashion-mnist`.  (transfer full)
 */
FLOE_KERAS_API floe_status floe_dataset_load_fashion_mnist(const char *dir, int train,
                                                           floe_dataset **out);

/*
 * The same two, reading through @ctx's filesystems (floe/fs.h), so a path may be any URI
 * a loaded plugin serves (s3://bucket/fashion-mnist).  With @ctx NULL (as the two calls
 * above do) only local paths and file:// URIs are accepted.
 */
FLOE_KERAS_API floe_status floe_dataset_load_idx_ctx(floe_context *ctx, const char *images_uri,
                                                     const char *labels_uri, float scale,
                                                     floe_dataset **out);
FLOE_KERAS_API floe_status floe_dataset_load_fashion_mnist_ctx(floe_context *ctx,
                                                               const char *dir, int train,
                                                               floe_dataset **out);

/*
 * floe_dataset_from_arrays: a data set holding copies of @n examples.
 * @x_dtype: FLOE_DTYPE_U8, F32 or I32; @x (array) n * prod(x_shape) elements, each
 *           example's shape @x_shape of rank @x_ndim (0..FLOE_MAX_DIMS-1).
 * @y_dtype: FLOE_DTYPE_I32 (class ids: @y_ndim 0) or F32 (targets of shape @y_shape);
 *           FLOE_DTYPE_INVALID with @y NULL: no targets (for predict).
 * @scale:   features are multiplied by it in f32 batches (1.0f to keep them).
 * (transfer full)
 */
FLOE_KERAS_API floe_status floe_dataset_from_arrays(
    int64_t n, floe_dtype x_dtype, const void *x, const int64_t *x_shape, int x_ndim,
    floe_dtype y_dtype, const void *y, const int64_t *y_shape, int y_ndim, float scale,
    floe_dataset **out);

/* A new data set holding a copy of examples [@begin, @begin + @count). (transfer full) */
FLOE_KERAS_API floe_status floe_dataset_slice(const floe_dataset *ds, int64_t begin,
                                              int64_t count, floe_dataset **out);

FLOE_KERAS_API void floe_dataset_free(floe_dataset *ds); /* NULL-safe */

/* Number of examples (0 for NULL). */
FLOE_KERAS_API int64_t floe_dataset_size(const floe_dataset *ds);
/* Shape of one example's features / targets: rank returned, extents in @dims (room for
 * FLOE_MAX_DIMS).  -1 for NULL. */
FLOE_KERAS_API int floe_dataset_x_shape(const floe_dataset *ds, int64_t *dims);
FLOE_KERAS_API int floe_dataset_y_shape(const floe_dataset *ds, int64_t *dims);
FLOE_KERAS_API floe_dtype floe_dataset_x_dtype(const floe_dataset *ds);
FLOE_KERAS_API floe_dtype floe_dataset_y_dtype(const floe_dataset *ds); /* INVALID: none */
/* Class id of example @i (i32 targets), or -1 when out of range or not class ids. */
FLOE_KERAS_API int32_t floe_dataset_label(const floe_dataset *ds, int64_t i);
/* (transfer none) features of example @i in the stored dtype; NULL when out of range. */
FLOE_KERAS_API const void *floe_dataset_example(const floe_dataset *ds, int64_t i);

/*
 * floe_dataset_batch: gathers examples @index[0..@count) into @x and (if not NULL) @y,
 * host tensors whose first extent is >= @count and whose other extents hold one
 * example (any shape of the same element count: 28x28 images fit [B, 784] or
 * [B, 28, 28, 1]).  @x is f32 (features converted times the scale) or, for i32 features,
 * i32; @y is i32 for class ids or f32.  @index NULL means examples @first, @first+1, ...
 * Rows past @count are left as they are.  Returns FLOE_INVALID_ARGUMENT for tensors that
 * do not fit, FLOE_OUT_OF_RANGE for an index out of range.
 */
FLOE_KERAS_API floe_status floe_dataset_batch(const floe_dataset *ds, const int64_t *index,
                                              int64_t first, int64_t count, floe_tensor *x,
                                              floe_tensor *y);

/*
 * floe_data_shuffle: fills @index with a permutation of 0..@n-1 drawn from *@rng (a
 * state seeded by the caller, advanced by the call): Fisher-Yates over splitmix64 with
 * unbiased bounded draws, so one seed gives one sequence on every platform.
 */
FLOE_KERAS_API void floe_data_shuffle(int64_t *index, int64_t n, uint64_t *rng);

/* The next 64 random bits from *@rng (splitmix64), and a float uniform in [0, 1). */
FLOE_KERAS_API uint64_t floe_rng_next(uint64_t *rng);
FLOE_KERAS_API float floe_rng_uniform(uint64_t *rng);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_DATA_H */
