/*
 * floe/npy.h - NumPy .npy files.
 *
 * Reads format versions 1.0, 2.0 and 3.0 (header length of 2 or 4 bytes; 3.0's UTF-8
 * header), little- and big-endian data, C order only, and the dtypes Floe has:
 * f2 f4 f8, i1 i2 i4 i8, u1 u2 u4 u8, b1 (bool), c8 (complex64).  Writes version 1.0
 * (Floe's rank limit keeps the header short), little-endian, C order, data aligned to
 * 64 bytes, readable by numpy.load.  Files go through the filesystem ABI (floe/fs.h), so a URI works as well
 * as a path.  The bytes are untrusted: a bad magic, header, dtype, shape or data size is
 * FLOE_INVALID_ARGUMENT with a message naming what was wrong, never a crash.
 *
 * Errors: calls return a floe_status and leave the message in floe_last_error().
 * Thread safety: every call is safe from any thread.
 */
#ifndef FLOE_NPY_H
#define FLOE_NPY_H

#include <floe/io-api.h>
#include <floe/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * floe_npy_decode: parses the .npy bytes at @data (@size bytes).
 * @out: (out) (transfer full): a new host tensor; NULL on failure.
 * Returns FLOE_OK; FLOE_INVALID_ARGUMENT for malformed or truncated bytes, a Fortran-
 * order array ("fortran_order True is not supported"), a dtype Floe lacks (the message
 * quotes the descr), a rank above FLOE_MAX_DIMS, or data of the wrong size;
 * FLOE_RESOURCE_EXHAUSTED.
 */
FLOE_IO_API floe_status floe_npy_decode(const void *data, size_t size, floe_tensor **out);

/*
 * floe_npy_encode: serializes host tensor @t.
 * @data: (out) (transfer full): freed with free(); NULL on failure.   @size: (out).
 * Returns FLOE_INVALID_ARGUMENT for a NULL or device tensor or a dtype .npy cannot hold
 * in a form Floe reads back (string, bfloat16, resource); FLOE_RESOURCE_EXHAUSTED.
 */
FLOE_IO_API floe_status floe_npy_encode(const floe_tensor *t, void **data, size_t *size);

/*
 * floe_npy_load: reads and decodes the .npy file at @uri.
 * @max_bytes: refuse a larger file (FLOE_OUT_OF_RANGE) before reading it; 0: no cap.
 * @out: (out) (transfer full).  File errors carry the filesystem's status and message.
 */
FLOE_IO_API floe_status floe_npy_load(floe_context *ctx, const char *uri, size_t max_bytes,
                                      floe_tensor **out);

/* floe_npy_save: encodes @t and writes it to @uri (atomically where the filesystem can). */
FLOE_IO_API floe_status floe_npy_save(floe_context *ctx, const char *uri, const floe_tensor *t);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_NPY_H */
