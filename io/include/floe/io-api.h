/*
 * floe/io-api.h - FLOE_IO_API, the export marker of libfloe_io.
 *
 * libfloe_io holds Floe's file formats and input pipeline, built on libfloe's public
 * API: GraphDef import/export (graphdef.h), .npy (npy.h), TFRecord and CRC32C
 * (tfrecord.h), tf.train.Example (example.h), the tf.data-style pipeline (pipeline.h)
 * and TensorBoard event files (summary.h).  Every file goes through the filesystem ABI
 * (floe/fs.h), so every path may be a URI (s3://bucket/key).
 *
 * Errors: calls return a floe_status and leave the message in floe_last_error().
 */
#ifndef FLOE_IO_API_H
#define FLOE_IO_API_H

#include <floe/types.h>

#ifdef FLOE_BUILDING_IO
#  define FLOE_IO_API FLOE_EXPORT_
#else
#  define FLOE_IO_API
#endif

#endif /* FLOE_IO_API_H */
