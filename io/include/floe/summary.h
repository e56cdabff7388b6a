/*
 * floe/summary.h - TensorBoard event files: a summary writer and an event reader.
 *
 * An event file is a TFRecord file (floe/tfrecord.h framing: length, masked CRC32C of
 * the length, data, masked CRC32C of the data) whose records are serialized
 * tensorflow.Event messages (proto/event.proto).  The first record carries
 * file_version "brain.Event:2"; the others a Summary (scalars, histograms, images),
 * a serialized GraphDef, or a SessionLog.  The writer names its file as TensorFlow and
 * TensorBoard do, LOGDIR/events.out.tfevents.<seconds>.<host>.<pid>.<n>, and writes
 * the TensorFlow 1.x value forms that every TensorBoard reads (and migrates to its
 * plugins' tensor forms): Summary.Value.simple_value for scalars, HistogramProto for
 * histograms, Summary.Image (PNG) for images.  The reader also decodes TensorFlow 2's
 * scalar form (a scalar float tensor with the "scalars" plugin's metadata).
 *
 * Visibility while training runs.  Events are framed into a memory buffer; a flush
 * (floe_summary_flush(), every @flush_secs seconds or 1 MiB of buffered events, and at
 * close) makes them visible under the file's URI.  Where the filesystem can append
 * (FLOE_FS_CAP_APPEND: the local filesystem) a flush opens the file in append mode,
 * writes the new records and closes it, so a reader such as TensorBoard, which
 * re-reads a growing file from where it stopped, sees whole records only.  On a
 * filesystem without append (object stores such as s3://) a flush rewrites the whole
 * object (floe_fs_write_all: each version complete), as TensorFlow's S3 file does on
 * Flush; past 64 MiB in one object the writer starts a new file (n + 1), which
 * TensorBoard's directory loader picks up after the previous one.
 *
 * Errors: calls return a floe_status and leave the message in floe_last_error().
 * Thread safety: one writer or reader is used by one thread at a time; different
 * objects are independent.
 */
#ifndef FLOE_SUMMARY_H
#define FLOE_SUMMARY_H

#include <floe/io-api.h>
#include <floe/graph.h>
#include <floe/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Writer ---------------------------------------------------------------------------- */

typedef struct floe_summary_writer floe_summary_writer;

/*
 * floe_summary_writer_new: creates @logdir (and its parents) if needed and a new event
 * file in it, whose first record (file_version "brain.Event:2") is flushed at once.
 * @flush_secs: seconds between automatic flushes (0: 120, as TensorFlow; < 0: only
 * explicit flushes, close and the 1 MiB buffer limit).
 * @out (out) (transfer full): free with floe_summary_writer_close().
 * Returns FLOE_OK, FLOE_INVALID_ARGUMENT (NULL or empty @logdir, NULL @out), or the
 * filesystem's error (naming the path).
 */
FLOE_IO_API floe_status floe_summary_writer_new(floe_context *ctx, const char *logdir,
                                                double flush_secs, floe_summary_writer **out);

/* The URI of the file being written (transfer none, valid until close; it changes
 * when the writer starts a new file on a filesystem without append). */
FLOE_IO_API const char *floe_summary_writer_path(const floe_summary_writer *w);

/* A scalar: Summary.Value{tag, simple_value} at @step (a float, as TensorBoard keeps it).
 * FLOE_INVALID_ARGUMENT for a NULL/empty @tag. */
FLOE_IO_API floe_status floe_summary_scalar(floe_summary_writer *w, const char *tag,
                                            double value, int64_t step);

/*
 * floe_summary_histogram: a HistogramProto of the elements of @values (any real dtype:
 * F32, F64, F16, BF16, integers, BOOL; any shape, host or device) with TensorFlow's
 * bucket boundaries (+-1e-12 * 1.1^k up to 1e20, 0, +-DBL_MAX), runs of empty buckets
 * merged as TensorFlow's Histogram::EncodeToProto does.  A NaN or infinite element is
 * FLOE_INVALID_ARGUMENT naming the tag and the index (TensorFlow's HistogramSummary
 * refuses them too).  An empty tensor gives an empty histogram.
 */
FLOE_IO_API floe_status floe_summary_histogram(floe_summary_writer *w, const char *tag,
                                               const floe_tensor *values, int64_t step);
/* The same over @n doubles (@values nullable when @n is 0). */
FLOE_IO_API floe_status floe_summary_histogram_f64(floe_summary_writer *w, const char *tag,
                                                   const double *values, size_t n,
                                                   int64_t step);

/*
 * floe_summary_image: an image (Summary.Image, PNG-encoded) from @image, a tensor of
 * shape [height, width, channels] or [height, width] (1 channel), channels 1 (grey),
 * 2 (grey+alpha), 3 (RGB) or 4 (RGBA); U8 as is, F32/F64 in [0, 1] scaled by 255 and
 * clamped (NaN becomes 0).  Each extent 1..65535.  FLOE_UNIMPLEMENTED when libfloe_io
 * was built without libpng.
 */
FLOE_IO_API floe_status floe_summary_image(floe_summary_writer *w, const char *tag,
                                           const floe_tensor *image, int64_t step);

/* The graph: Event.graph_def = floe_graphdef_export(@g), at step 0. */
FLOE_IO_API floe_status floe_summary_graph(floe_summary_writer *w, const floe_graph *g);

/* Makes every event written so far visible under floe_summary_writer_path(). */
FLOE_IO_API floe_status floe_summary_flush(floe_summary_writer *w);

/* Flushes and frees @w, also when the flush fails (its status is returned).  NULL-safe. */
FLOE_IO_API floe_status floe_summary_writer_close(floe_summary_writer *w);

/* ---- Events, decoded ---------------------------------------------------------------- */

typedef enum floe_event_kind {
    FLOE_EVENT_EMPTY = 0,        /* no "what" (wall time and step only) */
    FLOE_EVENT_FILE_VERSION = 1, /* file_version */
    FLOE_EVENT_GRAPH = 2,        /* graph_def */
    FLOE_EVENT_SUMMARY = 3,      /* summary: values */
    FLOE_EVENT_SESSION_LOG = 4,
    FLOE_EVENT_OTHER = 5         /* log_message, run metadata, meta graph: not decoded */
} floe_event_kind;

typedef enum floe_summary_kind {
    FLOE_SUMMARY_SCALAR = 1,    /* simple_value, or a scalar F32/F64 tensor ("scalars") */
    FLOE_SUMMARY_HISTOGRAM = 2, /* histo */
    FLOE_SUMMARY_IMAGE = 3,     /* image */
    FLOE_SUMMARY_OTHER = 4      /* a tensor of another plugin, audio, ... */
} floe_summary_kind;

/* One Summary.Value.  Pointers (transfer none) live as long as the event holding it. */
typedef struct floe_summary_value {
    const char *tag;
    const char *plugin_name;       /* metadata's plugin, "" without */
    floe_summary_kind kind;
    double scalar;                 /* SCALAR */
    /* HISTOGRAM: statistics and nbuckets (limit, count) pairs. */
    double min, max, num, sum, sum_squares;
    const double *bucket_limit, *bucket;
    size_t nbuckets;
    /* IMAGE: the encoded bytes (PNG) and what the event declares. */
    int height, width, colorspace;
    const uint8_t *encoded;
    size_t encoded_size;
} floe_summary_value;

typedef struct floe_event {
    double wall_time;
    int64_t step;
    floe_event_kind kind;
    const char *file_version;      /* FILE_VERSION, else NULL */
    const uint8_t *graph_def;      /* GRAPH: the serialized GraphDef */
    size_t graph_def_size;
    int session_status;            /* SESSION_LOG: 1 START, 2 STOP, 3 CHECKPOINT */
    const floe_summary_value *values; /* SUMMARY */
    size_t nvalues;
} floe_event;

/*
 * floe_event_decode: decodes one serialized Event (one record's data).  The input is
 * untrusted: anything that is not an Event is FLOE_DATA_LOSS, never a crash; values
 * with an unknown form decode as FLOE_SUMMARY_OTHER; a histogram whose bucket_limit
 * and bucket counts differ is FLOE_DATA_LOSS.
 * @out (out) (transfer full): free with floe_event_free(); NULL on failure.
 */
FLOE_IO_API floe_status floe_event_decode(const void *data, size_t size, floe_event **out);
FLOE_IO_API void floe_event_free(floe_event *ev); /* NULL-safe */

/* ---- Reader ------------------------------------------------------------------------------ */

typedef struct floe_event_reader floe_event_reader;

/* Opens the event file @uri (records read with floe/tfrecord.h's reader).
 * (transfer full): close with floe_event_reader_close(). */
FLOE_IO_API floe_status floe_event_reader_open(floe_context *ctx, const char *uri,
                                               floe_event_reader **out);
/* A reader over an event file's @size bytes at @data, which the caller keeps valid until
 * the reader is closed.  @name (nullable) names the input in messages. */
FLOE_IO_API floe_status floe_event_reader_open_memory(const void *data, size_t size,
                                                      const char *name,
                                                      floe_event_reader **out);
/*
 * The next event: *@ev (transfer none) stays valid until the next call on @r.
 * FLOE_OUT_OF_RANGE at the clean end of the file, FLOE_DATA_LOSS for a corrupt record
 * or event (the message names the file and the offset).  Both are sticky: later calls
 * return them again.
 */
FLOE_IO_API floe_status floe_event_reader_next(floe_event_reader *r, const floe_event **ev);
FLOE_IO_API void floe_event_reader_close(floe_event_reader *r); /* NULL-safe */

/* ---- PNG ------------------------------------------------------------------------------- */

/* Encodes @image (shape and dtypes as floe_summary_image) as PNG: *@png (transfer full)
 * freed with free().  FLOE_UNIMPLEMENTED without libpng. */
FLOE_IO_API floe_status floe_png_encode(const floe_tensor *image, void **png, size_t *size);
/* Decodes a PNG (untrusted bytes; at most 16384 x 16384 pixels, 256 MiB) into a U8 tensor
 * [height, width, channels] with the file's channels (1-4, 16-bit samples reduced to
 * 8).  FLOE_DATA_LOSS for a bad PNG.  (transfer full) */
FLOE_IO_API floe_status floe_png_decode(const void *png, size_t size, floe_tensor **out);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_SUMMARY_H */
