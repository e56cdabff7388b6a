/*
 * floe/tfrecord.h - TFRecord files and CRC32C.
 *
 * A TFRecord file is a sequence of records, each framed as
 *     uint64 length (little-endian)  uint32 masked_crc32c(length bytes)
 *     byte   data[length]            uint32 masked_crc32c(data)
 * optionally compressed as a whole with ZLIB or GZIP.  Every file goes through the
 * filesystem ABI (floe/fs.h).
 *
 * Thread safety: a reader or writer is used by one thread at a time.
 */
#ifndef FLOE_TFRECORD_H
#define FLOE_TFRECORD_H

#include <floe/io-api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CRC32C (Castagnoli), continuing @crc (0 to start) over @n bytes. */
FLOE_IO_API uint32_t floe_crc32c(uint32_t crc, const void *data, size_t n);
/* TFRecord's and TensorBoard's masking of a CRC32C: rotate right 15, add 0xa282ead8. */
FLOE_IO_API uint32_t floe_crc32c_mask(uint32_t crc);

typedef enum floe_compression {
    FLOE_COMPRESSION_NONE = 0,
    FLOE_COMPRESSION_ZLIB = 1,
    FLOE_COMPRESSION_GZIP = 2
} floe_compression;

typedef struct floe_tfrecord_writer floe_tfrecord_writer;
typedef struct floe_tfrecord_reader floe_tfrecord_reader;

/* Opens @uri for writing (or appending, @append 1, where the filesystem can).  The
 * records become visible at floe_tfrecord_writer_close(). (transfer full) */
FLOE_IO_API floe_status floe_tfrecord_writer_open(floe_context *ctx, const char *uri,
                                                  floe_compression compression, int append,
                                                  floe_tfrecord_writer **out);
FLOE_IO_API floe_status floe_tfrecord_write(floe_tfrecord_writer *w, const void *data,
                                            size_t n);
/* Commits the file and frees @w, also on failure.  NULL-safe. */
FLOE_IO_API floe_status floe_tfrecord_writer_close(floe_tfrecord_writer *w);
/* Discards what was written and frees @w.  NULL-safe. */
FLOE_IO_API void floe_tfrecord_writer_abort(floe_tfrecord_writer *w);

/* Opens @uri for reading. (transfer full) */
FLOE_IO_API floe_status floe_tfrecord_reader_open(floe_context *ctx, const char *uri,
                                                  floe_compression compression,
                                                  floe_tfrecord_reader **out);
/*
 * Reads the next record: *@data (transfer none) is valid until the next call on @r.
 * Returns FLOE_OUT_OF_RANGE at the clean end of the file, FLOE_DATA_LOSS for a bad
 * length or data CRC or a file cut inside a record (the message names the file and the
 * offset), never a partial record.
 */
FLOE_IO_API floe_status floe_tfrecord_read(floe_tfrecord_reader *r, const void **data,
                                           size_t *n);
FLOE_IO_API void floe_tfrecord_reader_close(floe_tfrecord_reader *r); /* NULL-safe */

/*
 * floe_tfrecord_reader_open_memory: a reader over @size bytes at @data (a whole file's
 * contents, compressed as @compression), which the caller keeps valid and unchanged until
 * the reader is closed.  @name (nullable: "<memory>") names the input in messages.
 * (transfer full)  Reads behave as for a file.
 */
FLOE_IO_API floe_status floe_tfrecord_reader_open_memory(const void *data, size_t size,
                                                         floe_compression compression,
                                                         const char *name,
                                                         floe_tfrecord_reader **out);
/* Offset of the next record in the (uncompressed) record stream; 0 for NULL. */
FLOE_IO_API uint64_t floe_tfrecord_reader_offset(const floe_tfrecord_reader *r);

/*
 * floe_tfrecord_writer_flush: hands every record written so far to the filesystem
 * (a compressed stream is sync-flushed, so a reader of the bytes so far can inflate
 * them), bounding what the writer holds in memory.  The file itself still appears under
 * its URI only at floe_tfrecord_writer_close() (floe/fs.h commits files at close).
 * A failure is sticky: later writes fail and close discards the file.
 */
FLOE_IO_API floe_status floe_tfrecord_writer_flush(floe_tfrecord_writer *w);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_TFRECORD_H */
