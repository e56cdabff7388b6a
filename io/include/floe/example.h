/*
 * floe/example.h - tf.train.Example: parsing serialized Examples into tensors, and
 * building them.
 *
 * An Example (tensorflow/core/example/example.proto, Floe's copy proto/example.proto)
 * maps feature names to a list of bytes, floats or int64s.  A floe_feature_spec asks for
 * one feature as a tensor, like tf.io.FixedLenFeature: a fixed shape, a dtype, and an
 * optional default used when the Example lacks the feature.  var_len asks for the whole
 * list, whatever its length (like tf.io.FixedLenSequenceFeature with allow_missing): a
 * rank-1 tensor for one Example, and a [batch, longest] tensor padded with the default
 * (or zeros / empty strings) for a batch.
 *
 * The parser reads the protobuf wire format directly (no intermediate message is
 * built), accepts packed and unpacked lists, repeated and merged fields as protobuf
 * does (the last map entry of a key wins), skips unknown fields, and treats the bytes
 * as untrusted: any malformed input is FLOE_DATA_LOSS, never a crash.
 *
 * Errors: calls return a floe_status and leave the message in floe_last_error(); every
 * message about a feature names it (and, in a batch, the Example's index).
 * Thread safety: all calls are reentrant; a builder is used by one thread at a time.
 */
#ifndef FLOE_EXAMPLE_H
#define FLOE_EXAMPLE_H

#include <floe/io-api.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * floe_feature_spec: one feature to parse.
 * @key:     the feature's name in the Example.
 * @dtype:   FLOE_DTYPE_F32 (from a float_list), FLOE_DTYPE_I64 (from an int64_list),
 *           FLOE_DTYPE_I32 (from an int64_list, each value checked to fit) or
 *           FLOE_DTYPE_STRING (from a bytes_list).
 * @ndim, @shape: the shape of the value of one Example (0..FLOE_MAX_DIMS-1 dims); the
 *           feature must hold exactly prod(shape) values.  Ignored when @var_len.
 * @default_value: (nullable) used when the Example lacks the feature: @default_count
 *           elements of @dtype (for STRING, an array of floe_tstring), either 1 (repeated
 *           to fill the shape) or prod(shape).  NULL: a missing feature is an error.
 *           With @var_len, the padding value (1 element).
 * @var_len: 1: any number of values (see above).
 */
typedef struct floe_feature_spec {
    const char *key;
    floe_dtype dtype;
    int ndim;
    int64_t shape[FLOE_MAX_DIMS];
    const void *default_value;
    int64_t default_count;
    int var_len;
} floe_feature_spec;

/*
 * floe_example_parse: parses one serialized Example.
 * @out: (array length=nspecs) (out) (transfer full): out[i] is the value of specs[i], of
 *       shape specs[i].shape (or [count] for var_len).  All NULL on failure.
 * Returns FLOE_OK; FLOE_DATA_LOSS for malformed bytes; FLOE_INVALID_ARGUMENT for a bad
 * spec, a missing feature without default, a feature of another kind or with the wrong
 * number of values (the message names the feature); FLOE_OUT_OF_RANGE for an int64 that
 * does not fit an I32 spec; FLOE_RESOURCE_EXHAUSTED.
 */
FLOE_IO_API floe_status floe_example_parse(const void *data, size_t size,
                                           const floe_feature_spec *specs, int nspecs,
                                           floe_tensor **out);

/*
 * floe_example_parse_batch: parses @batch serialized Examples (@data[i], @sizes[i]) into
 * one tensor per spec of shape [batch, shape...] (like tf.io.parse_example).  Errors as
 * for floe_example_parse, the message naming the Example's index too.
 */
FLOE_IO_API floe_status floe_example_parse_batch(const void *const *data, const size_t *sizes,
                                                 int64_t batch, const floe_feature_spec *specs,
                                                 int nspecs, floe_tensor **out);

/* ---- Building Examples -------------------------------------------------------- */

typedef struct floe_example_builder floe_example_builder;

/* A new, empty Example under construction. (transfer full)  NULL when out of memory. */
FLOE_IO_API floe_example_builder *floe_example_builder_new(void);
FLOE_IO_API void floe_example_builder_free(floe_example_builder *b); /* NULL-safe */
/* Forgets every feature added, keeping the memory for the next Example. */
FLOE_IO_API void floe_example_builder_clear(floe_example_builder *b);

/* Adds feature @key with @n values (copied).  Adding a key twice makes two map entries,
 * of which readers keep the last.  FLOE_INVALID_ARGUMENT, FLOE_RESOURCE_EXHAUSTED. */
FLOE_IO_API floe_status floe_example_builder_add_floats(floe_example_builder *b, const char *key,
                                                        const float *v, size_t n);
FLOE_IO_API floe_status floe_example_builder_add_int64s(floe_example_builder *b, const char *key,
                                                        const int64_t *v, size_t n);
/* @v[i] points at @len[i] bytes. */
FLOE_IO_API floe_status floe_example_builder_add_bytes(floe_example_builder *b, const char *key,
                                                       const void *const *v, const size_t *len,
                                                       size_t n);

/* The serialized Example: *@data (transfer none) stays valid until the builder's next
 * call: the protobuf wire format of tf.train.Example (packed lists), as TensorFlow
 * writes it. */
FLOE_IO_API floe_status floe_example_builder_serialize(floe_example_builder *b,
                                                       const void **data, size_t *size);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_EXAMPLE_H */
