/*
 * floe/pipeline.h - input pipelines in the spirit of tf.data.
 *
 * A floe_pipeline yields elements, each a tuple of 1..FLOE_PIPELINE_MAX_TUPLE host
 * tensors, one after the other until FLOE_OUT_OF_RANGE.  A pipeline is built from a
 * source (tensors sliced along their first dimension, TFRecord files, a generator
 * callback) and transformations, each taking ownership of its input pipeline:
 *
 *     floe_pipeline *p;
 *     floe_pipeline_from_tfrecord(ctx, files, 4, FLOE_COMPRESSION_NONE, 2, &p);
 *     floe_pipeline_shuffle(p, 10000, 42, &p);
 *     floe_pipeline_batch(p, 128, 0, &p);
 *     floe_pipeline_parse_example(p, specs, 2, &p);
 *     floe_pipeline_map(p, normalize, NULL, ctx, 4, &p);
 *     floe_pipeline_prefetch(p, 2, &p);
 *     while (floe_pipeline_next(p, t, &n) == FLOE_OK) { ... unref t[0..n) ... }
 *     floe_pipeline_free(p);
 *
 * Every transform's @input is (transfer full): the new pipeline owns it, and on failure
 * the transform frees it, so a chain of calls needs one check per call and no cleanup.
 * Passing the same variable as @input and @out is fine.
 *
 * Order: every pipeline is deterministic.  Parallel map keeps the input order;
 * interleave takes records from its open files in turn; shuffle draws from a seeded
 * generator, a new order each pass (each repeat) that only the seed decides.
 *
 * Memory is bounded by the buffers asked for (shuffle's buffer, prefetch's depth, the
 * map's 2 x num_parallel elements in flight, one batch), except for cache, which keeps
 * one whole pass.
 *
 * Threads: one thread at a time calls into a pipeline.  Prefetch runs its input on a
 * background thread; parallel map runs the callback on its own worker threads, so the
 * callback must be thread-safe.
 *
 * Errors: floe_status with the message in floe_last_error(); an error inside the
 * pipeline (a corrupt record, a failing map callback, even on a map worker or prefetch
 * thread) reaches floe_pipeline_next() with its message, and the pipeline then stays
 * failed: every later call returns the same error.
 */
#ifndef FLOE_PIPELINE_H
#define FLOE_PIPELINE_H

#include <floe/io-api.h>
#include <floe/example.h>
#include <floe/tfrecord.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most tensors in one element. */
#define FLOE_PIPELINE_MAX_TUPLE 16

typedef struct floe_pipeline floe_pipeline;

/* ---- Consuming ---------------------------------------------------------------------- */

/*
 * floe_pipeline_next: the next element.
 * @out: room for FLOE_PIPELINE_MAX_TUPLE tensors; (out) (transfer full) out[0..*@n).
 * Returns FLOE_OK, FLOE_OUT_OF_RANGE at the end (*@n 0), or the pipeline's error.
 */
FLOE_IO_API floe_status floe_pipeline_next(floe_pipeline *p, floe_tensor **out, int *n);

/* Starts the pipeline over from the beginning (what repeat does between passes): the
 * sources rewind, shuffle draws a new order, cache replays.  Clears nothing of a failed
 * pipeline: its error stays. */
FLOE_IO_API floe_status floe_pipeline_reset(floe_pipeline *p);

/* Frees the pipeline and its inputs, stopping background threads first (also in the
 * middle of a pass).  NULL-safe. */
FLOE_IO_API void floe_pipeline_free(floe_pipeline *p);

/* ---- Sources ------------------------------------------------------------------------ */

/*
 * floe_pipeline_from_tensors: the slices of @n tensors along their first dimension
 * (tf.data.Dataset.from_tensor_slices): element i is (t[0][i], ..., t[n-1][i]).  All
 * must have rank >= 1 and the same first extent.  The tensors are referenced, not
 * copied (transfer none: the pipeline takes its own references).
 */
FLOE_IO_API floe_status floe_pipeline_from_tensors(floe_tensor *const *t, int n,
                                                   floe_pipeline **out);

/*
 * floe_pipeline_from_tfrecord: the records of @nfiles TFRecord files, each element one
 * scalar STRING tensor.  @cycle_length files are open at once and give one record each
 * in turn (tf.data's interleave with block_length 1); 1 reads the files one after the
 * other.  Files go through the filesystem ABI (@ctx may be NULL for local paths).
 * The file names are copied.  A damaged file ends the pipeline with its DATA_LOSS.
 */
FLOE_IO_API floe_status floe_pipeline_from_tfrecord(floe_context *ctx,
                                                    const char *const *files, int nfiles,
                                                    floe_compression compression,
                                                    int cycle_length, floe_pipeline **out);

/*
 * A generator source.  @next fills out[0..*n) (transfer full) and returns FLOE_OK, or
 * FLOE_OUT_OF_RANGE at the end, or an error (with floe_set_error); @reset (nullable:
 * the source cannot restart, and reset fails) rewinds it; @free_arg (nullable) runs
 * once when the pipeline is freed (also when this call fails).
 */
typedef struct floe_pipeline_source {
    floe_status (*next)(void *arg, floe_tensor **out, int *n);
    floe_status (*reset)(void *arg);
    void (*free_arg)(void *arg);
    void *arg;
} floe_pipeline_source;

FLOE_IO_API floe_status floe_pipeline_from_source(const floe_pipeline_source *src,
                                                  floe_pipeline **out);

/* ---- Transformations (each: @input transfer full, freed on failure) ------------------ */

/*
 * A map callback: reads in[0..nin) (transfer none) and writes out[0..*nout) (transfer
 * full, *nout <= FLOE_PIPELINE_MAX_TUPLE).  Returns FLOE_OK or an error set with
 * floe_set_error; may be called from several threads at once when num_parallel > 1.
 */
typedef floe_status (*floe_map_fn)(void *arg, floe_tensor *const *in, int nin,
                                   floe_tensor **out, int *nout);

/*
 * floe_pipeline_map: applies @fn to every element.  @num_parallel <= 1 runs it on the
 * calling thread; more runs it on that many worker threads of the map's own (at most
 * 64), with up to 2 x num_parallel elements in flight, still yielding them in input
 * order (like tf.data's map with num_parallel_calls and deterministic order).  Workers
 * never wait for one another: a slow element delays only the hand-out of the ones
 * after it.  @ctx: (nullable) unused today, kept for running on its pool later.
 */
FLOE_IO_API floe_status floe_pipeline_map(floe_pipeline *input, floe_map_fn fn, void *arg,
                                          floe_context *ctx, int num_parallel,
                                          floe_pipeline **out);

/*
 * floe_pipeline_parse_example: a map parsing serialized tf.train.Examples: the element's
 * first tensor, a STRING scalar (one Example: floe_example_parse) or vector (a batch:
 * floe_example_parse_batch), becomes one tensor per spec; any further tensors of the
 * element follow unchanged.  The specs (keys, defaults) are copied.
 */
FLOE_IO_API floe_status floe_pipeline_parse_example(floe_pipeline *input,
                                                    const floe_feature_spec *specs, int nspecs,
                                                    floe_context *ctx, int num_parallel,
                                                    floe_pipeline **out);

/* Shuffles through a buffer of @buffer_size elements (tf.data's shuffle), with a
 * generator seeded by @seed; each pass (reset) draws a new order. */
FLOE_IO_API floe_status floe_pipeline_shuffle(floe_pipeline *input, int64_t buffer_size,
                                              uint64_t seed, floe_pipeline **out);

/* Stacks @batch_size consecutive elements into one (each tensor gains a first dimension);
 * the last, smaller batch is dropped when @drop_remainder.  Elements of one batch must
 * agree in arity, dtypes and shapes (else FLOE_INVALID_ARGUMENT naming the component). */
FLOE_IO_API floe_status floe_pipeline_batch(floe_pipeline *input, int64_t batch_size,
                                            int drop_remainder, floe_pipeline **out);

/* Goes through @input @count times (-1: forever), resetting it between passes.  An
 * input that yields nothing in a pass ends the repeat. */
FLOE_IO_API floe_status floe_pipeline_repeat(floe_pipeline *input, int64_t count,
                                             floe_pipeline **out);

/* Runs @input on a background thread that keeps up to @depth elements ready (>= 1). */
FLOE_IO_API floe_status floe_pipeline_prefetch(floe_pipeline *input, int depth,
                                               floe_pipeline **out);

/* Keeps the elements of the first complete pass in memory and replays them on later
 * passes instead of running @input again. */
FLOE_IO_API floe_status floe_pipeline_cache(floe_pipeline *input, floe_pipeline **out);

/*
 * floe_pipeline_cache_file: cache in the file @uri (through the filesystem ABI; @ctx may
 * be NULL for local paths) instead of memory.  The first complete pass writes it and
 * commits it at its end; when @uri exists, it is read instead of running @input at all,
 * also by a later process (delete the file when the input changes).  A pass stopped
 * early (reset) leaves no file.  Element tensors must be in host memory.  A damaged
 * file ends the pipeline with FLOE_DATA_LOSS.
 */
FLOE_IO_API floe_status floe_pipeline_cache_file(floe_pipeline *input, floe_context *ctx,
                                                 const char *uri, floe_pipeline **out);

/* The first @count elements / all but the first @count. */
FLOE_IO_API floe_status floe_pipeline_take(floe_pipeline *input, int64_t count,
                                           floe_pipeline **out);
FLOE_IO_API floe_status floe_pipeline_skip(floe_pipeline *input, int64_t count,
                                           floe_pipeline **out);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_PIPELINE_H */
