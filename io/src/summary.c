/*
 * summary.c - TensorBoard event files (floe/summary.h): the summary writer, the event
 * decoder and the event reader.
 *
 * The writer packs each Event (proto/event.proto, protobuf-c) and frames it as a
 * TFRecord record into a memory buffer.  A flush makes the buffer visible: on a
 * filesystem that appends (the local one) it opens the file in append mode, writes
 * the new records and closes it (committing them; a failed write is aborted, which
 * truncates the file back, so a reader never sees part of a record); elsewhere (object
 * stores) the buffer holds the whole file and a flush rewrites the object with
 * floe_fs_write_all, starting a new file past ROLL_BYTES.  Why: floe/fs.h makes written
 * data visible only at close, and TensorBoard follows a growing file by re-reading it
 * from its last offset, so per-flush append (or whole rewrite) is what lets it show
 * training while it runs.
 *
 * The decoder unpacks an Event with protobuf-c (untrusted bytes: any failure is
 * DATA_LOSS) into the flat floe_event view; the reader reads records with floe/
 * tfrecord.h's reader and decodes each.
 *
 * Sections: helpers; TensorFlow's histogram buckets; the writer (naming, framing,
 * flushing, the summary kinds); decoding; the reader.
 */
#include <floe/floe.h>
#include <floe/fs.h>
#include <floe/graphdef.h>
#include <floe/summary.h>
#include <floe/tfrecord.h>

#include "event.pb-c.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUFFER_FLUSH_BYTES (1u << 20) /* automatic flush past this many pending bytes */
#define ROLL_BYTES (64u << 20)        /* rewrite mode: a new file past this size */
#define DEFAULT_FLUSH_SECS 120.0

/* ---- Helpers ------------------------------------------------------------------------- */

static double now_realtime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now_monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static floe_status check_tag(const char *what, const char *tag) {
    if (tag == NULL || tag[0] == '\0')
        return floe_set_error(FLOE_INVALID_ARGUMENT, "%s: the tag is NULL or empty", what);
    return FLOE_OK;
}

/* ---- TensorFlow's histogram buckets ----------------------------------------------------- */

/* tensorflow/core/lib/histogram/histogram.cc, InitDefaultBucketsInner: -DBL_MAX, the
 * negated powers, 0, the powers 1e-12 * 1.1^k below 1e20, DBL_MAX. */
#define MAX_LIMITS 1600
static double bucket_limits[MAX_LIMITS];
static size_t num_limits;
static double pos_limits[MAX_LIMITS / 2]; /* the positive half: 1e-12 ... DBL_MAX */
static size_t num_pos;
static pthread_once_t limits_once = PTHREAD_ONCE_INIT;

static void limits_init(void) {
    double *pos = pos_limits;
    size_t np = 0, k = 0;

    for (double v = 1.0e-12; v < 1.0e20 && np < MAX_LIMITS / 2 - 1; v *= 1.1)
        pos[np++] = v;
    pos[np++] = DBL_MAX;
    for (size_t i = np; i-- > 0;)
        bucket_limits[k++] = -pos[i];
    bucket_limits[k++] = 0.0;
    for (size_t i = 0; i < np; i++)
        bucket_limits[k++] = pos[i];
    num_limits = k;
    num_pos = np;
}

/* Index of the first positive limit > @a (@ge 0) or >= @a (@ge 1), for a finite a >= 0.
 * The limits grow by 1.1, so log_1.1(a / 1e-12) lands within a step or two of the
 * answer; the loops correct the guess against the table itself (the table was built
 * by repeated multiplication, which drifts from the closed form), so the result is
 * exactly a binary search's, in a few operations instead of eleven probes. */
static size_t pos_search(double a, int ge) {
    size_t j = 0;
    if (a > 1.0e-12) {
        double g = floor(log(a / 1.0e-12) / log(1.1)) + 1;
        j = g < 0 ? 0 : g > (double)(num_pos - 1) ? num_pos - 1 : (size_t)g;
    }
    /* Move to the first j whose limit passes a (>, or >= with @ge). */
    while (j > 0 && (ge ? pos_limits[j - 1] >= a : pos_limits[j - 1] > a))
        j--;
    while (j < num_pos - 1 && (ge ? pos_limits[j] < a : pos_limits[j] <= a))
        j++;
    return j;
}

/* Index of the first limit > @v (std::upper_bound over bucket_limits), @v finite. */
static size_t bucket_of(double v) {
    size_t np = num_pos;
    if (v >= 0)
        return np + 1 + pos_search(v, 0);
    /* limits[i] = -pos[np - 1 - i] > v  <=>  pos[np - 1 - i] < -v: the first such i
     * comes from the last pos index below -v; none below: the limit 0. */
    size_t j = pos_search(-v, 1); /* first pos >= -v */
    if (j == 0)
        return np;
    return np - 1 - (j - 1);
}

typedef struct histo_acc {
    double min, max, num, sum, sum_squares;
    double *counts; /* num_limits */
} histo_acc;

static floe_status histo_begin(histo_acc *h) {
    pthread_once(&limits_once, limits_init);
    h->min = DBL_MAX;
    h->max = -DBL_MAX;
    h->num = h->sum = h->sum_squares = 0;
    h->counts = calloc(num_limits, sizeof(double));
    if (h->counts == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "histogram: out of memory");
    return FLOE_OK;
}

static void histo_add(histo_acc *h, double v) {
    h->counts[bucket_of(v)] += 1;
    h->min = v < h->min ? v : h->min;
    h->max = v > h->max ? v : h->max;
    h->num += 1;
    h->sum += v;
    h->sum_squares += v * v;
}

/* Histogram::EncodeToProto(preserve_zero_buckets = false): each non-empty bucket, a run
 * of empty ones as one entry with the run's last limit; at least one entry.  @limits
 * and @counts have room for num_limits entries. */
static size_t histo_encode(const histo_acc *h, double *limits, double *counts) {
    size_t n = 0;
    for (size_t i = 0; i < num_limits;) {
        double end = bucket_limits[i], count = h->counts[i];
        i++;
        if (count <= 0.0) {
            while (i < num_limits && h->counts[i] <= 0.0) {
                end = bucket_limits[i];
                count = h->counts[i];
                i++;
            }
        }
        limits[n] = end;
        counts[n] = count;
        n++;
    }
    if (n == 0) {
        limits[0] = DBL_MAX;
        counts[0] = 0;
        n = 1;
    }
    return n;
}

/* ---- Writer: naming and framing -------------------------------------------------------- */

struct floe_summary_writer {
    floe_context *ctx;
    char *logdir;
    char *path;
    int append;              /* the filesystem appends: flush appends the new records */
    uint8_t *buf;            /* pending records (append) or the whole file (rewrite) */
    size_t len, cap;
    size_t flushed;          /* rewrite: bytes of buf already in the object */
    double flush_secs, last_flush;
    floe_status sticky;      /* a failed flush: later calls fail the same way */
};

static atomic_uint file_counter;

/* A fresh LOGDIR/events.out.tfevents.<secs>.<host>.<pid>.<n> that does not exist yet. */
static floe_status writer_name(floe_summary_writer *w) {
    char host[256];
    floe_file_info info;

    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    for (char *p = host; *p != '\0'; p++)
        if (*p == '/')
            *p = '_';
    for (int tries = 0; tries < 1000; tries++) {
        size_t need = strlen(w->logdir) + strlen(host) + 96;
        char *path = malloc(need);
        if (path == NULL)
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "summary writer: out of memory");
        snprintf(path, need, "%s%sevents.out.tfevents.%010lld.%s.%ld.%u", w->logdir,
                 w->logdir[strlen(w->logdir) - 1] == '/' ? "" : "/",
                 (long long)time(NULL), host, (long)getpid(),
                 atomic_fetch_add(&file_counter, 1));
        floe_status st = floe_fs_stat(w->ctx, path, &info);
        if (st == FLOE_NOT_FOUND) {
            free(w->path);
            w->path = path;
            floe_set_error(FLOE_OK, "%s", "");
            return FLOE_OK;
        }
        free(path);
        if (st != FLOE_OK)
            return st; /* the filesystem's message names the path */
    }
    return floe_set_error(FLOE_ALREADY_EXISTS, "summary writer: no free event file name in '%s'",
                          w->logdir);
}

static floe_status buf_reserve(floe_summary_writer *w, size_t more) {
    if (more > SIZE_MAX / 2 - w->len)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "summary writer: event too large");
    if (w->len + more <= w->cap)
        return FLOE_OK;
    size_t cap = w->cap > 0 ? w->cap : 4096;
    while (cap < w->len + more)
        cap *= 2;
    uint8_t *b = realloc(w->buf, cap);
    if (b == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "summary writer: out of memory "
                              "(%zu bytes of events)", cap);
    w->buf = b;
    w->cap = cap;
    return FLOE_OK;
}

/* Packs @ev and appends it to the buffer as one TFRecord record. */
static floe_status write_event(floe_summary_writer *w, Floe__Tf__Event *ev) {
    size_t n = floe__tf__event__get_packed_size(ev);
    floe_status st = buf_reserve(w, n + 16);
    if (st != FLOE_OK)
        return st;
    uint8_t *p = w->buf + w->len;
    put_le64(p, (uint64_t)n);
    put_le32(p + 8, floe_crc32c_mask(floe_crc32c(0, p, 8)));
    floe__tf__event__pack(ev, p + 12);
    put_le32(p + 12 + n, floe_crc32c_mask(floe_crc32c(0, p + 12, n)));
    w->len += n + 16;
    return FLOE_OK;
}

static floe_status write_file_version(floe_summary_writer *w) {
    Floe__Tf__Event ev = FLOE__TF__EVENT__INIT;
    Floe__Tf__SourceMetadata src = FLOE__TF__SOURCE_METADATA__INIT;

    ev.wall_time = now_realtime();
    ev.what_case = FLOE__TF__EVENT__WHAT_FILE_VERSION;
    ev.file_version = (char *)"brain.Event:2";
    src.writer = (char *)"floe";
    ev.source_metadata = &src;
    return write_event(w, &ev);
}

/* ---- Writer: flushing ------------------------------------------------------------------ */

static floe_status flush_append(floe_summary_writer *w) {
    floe_file *f = NULL;
    floe_status st;

    if (w->len == 0)
        return FLOE_OK;
    st = floe_file_open_write(w->ctx, w->path, 1, &f);
    if (st == FLOE_OK && (st = floe_file_write(f, w->buf, w->len)) != FLOE_OK)
        floe_file_abort(f);
    else if (st == FLOE_OK)
        st = floe_file_close(f);
    if (st == FLOE_OK)
        w->len = 0;
    return st;
}

static floe_status flush_rewrite(floe_summary_writer *w) {
    floe_status st;

    if (w->len == w->flushed)
        return FLOE_OK;
    st = floe_fs_write_all(w->ctx, w->path, w->buf, w->len);
    if (st != FLOE_OK)
        return st;
    w->flushed = w->len;
    if (w->len < ROLL_BYTES)
        return FLOE_OK;
    /* Start the next file: TensorBoard moves on to it once it appears. */
    w->len = w->flushed = 0;
    if ((st = writer_name(w)) != FLOE_OK || (st = write_file_version(w)) != FLOE_OK)
        return st;
    return flush_rewrite(w);
}

floe_status floe_summary_flush(floe_summary_writer *w) {
    floe_status st;

    if (w == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_summary_flush: writer is NULL");
    if (w->sticky != FLOE_OK)
        return floe_set_error(w->sticky, "summary writer '%s': an earlier flush failed",
                              w->path);
    st = w->append ? flush_append(w) : flush_rewrite(w);
    w->last_flush = now_monotonic();
    if (st != FLOE_OK) {
        w->sticky = st;
        return floe_set_error(st, "summary writer: flushing '%s': %s", w->path,
                              floe_last_error());
    }
    return FLOE_OK;
}

/* After each event: flush when the buffer or the time says so. */
static floe_status maybe_flush(floe_summary_writer *w) {
    size_t pending = w->len - (w->append ? 0 : w->flushed);
    if (pending >= BUFFER_FLUSH_BYTES ||
        (w->flush_secs >= 0 && now_monotonic() - w->last_flush >= w->flush_secs))
        return floe_summary_flush(w);
    return FLOE_OK;
}

floe_status floe_summary_writer_new(floe_context *ctx, const char *logdir, double flush_secs,
                                    floe_summary_writer **out) {
    floe_summary_writer *w;
    uint32_t caps = 0;
    floe_status st;

    if (out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_summary_writer_new: out is NULL");
    *out = NULL;
    if (logdir == NULL || logdir[0] == '\0')
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_summary_writer_new: no log "
                              "directory");
    if ((st = floe_fs_caps(ctx, logdir, &caps)) != FLOE_OK)
        return st;
    if ((st = floe_fs_mkdir(ctx, logdir)) != FLOE_OK)
        return floe_set_error(st, "summary writer: creating '%s': %s", logdir,
                              floe_last_error());
    w = calloc(1, sizeof(*w));
    if (w == NULL || (w->logdir = strdup(logdir)) == NULL) {
        free(w);
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "summary writer: out of memory");
    }
    w->ctx = ctx;
    w->append = (caps & FLOE_FS_CAP_APPEND) != 0;
    w->flush_secs = flush_secs == 0 ? DEFAULT_FLUSH_SECS : flush_secs;
    if ((st = writer_name(w)) == FLOE_OK && (st = write_file_version(w)) == FLOE_OK)
        st = floe_summary_flush(w);
    if (st != FLOE_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", floe_last_error());
        free(w->buf);
        free(w->path);
        free(w->logdir);
        free(w);
        return floe_set_error(st, "%s", msg);
    }
    *out = w;
    return FLOE_OK;
}

const char *floe_summary_writer_path(const floe_summary_writer *w) {
    return w != NULL ? w->path : NULL;
}

floe_status floe_summary_writer_close(floe_summary_writer *w) {
    floe_status st;

    if (w == NULL)
        return FLOE_OK;
    st = w->sticky != FLOE_OK ? FLOE_OK : floe_summary_flush(w);
    if (w->sticky != FLOE_OK && st == FLOE_OK)
        st = floe_set_error(w->sticky, "summary writer '%s': an earlier flush failed; "
                            "events were lost", w->path);
    free(w->buf);
    free(w->path);
    free(w->logdir);
    free(w);
    return st;
}

/* ---- Writer: the summary kinds --------------------------------------------------------- */

/* Writes one Summary event holding @v at @step. */
static floe_status write_value(floe_summary_writer *w, Floe__Tf__Summary__Value *v,
                               int64_t step) {
    Floe__Tf__Event ev = FLOE__TF__EVENT__INIT;
    Floe__Tf__Summary sum = FLOE__TF__SUMMARY__INIT;
    floe_status st;

    if (w->sticky != FLOE_OK)
        return floe_set_error(w->sticky, "summary writer '%s': an earlier flush failed",
                              w->path);
    sum.n_value = 1;
    sum.value = &v;
    ev.wall_time = now_realtime();
    ev.step = step;
    ev.what_case = FLOE__TF__EVENT__WHAT_SUMMARY;
    ev.summary = &sum;
    if ((st = write_event(w, &ev)) != FLOE_OK)
        return st;
    return maybe_flush(w);
}

floe_status floe_summary_scalar(floe_summary_writer *w, const char *tag, double value,
                                int64_t step) {
    Floe__Tf__Summary__Value v = FLOE__TF__SUMMARY__VALUE__INIT;
    floe_status st;

    if (w == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_summary_scalar: writer is NULL");
    if ((st = check_tag("floe_summary_scalar", tag)) != FLOE_OK)
        return st;
    v.tag = (char *)tag;
    v.value_case = FLOE__TF__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    v.simple_value = (float)value;
    return write_value(w, &v, step);
}

/* Writes the histogram @h under @tag. */
static floe_status write_histo(floe_summary_writer *w, const char *tag, const histo_acc *h,
                               int64_t step) {
    Floe__Tf__Summary__Value v = FLOE__TF__SUMMARY__VALUE__INIT;
    Floe__Tf__HistogramProto hp = FLOE__TF__HISTOGRAM_PROTO__INIT;
    double *limits = malloc(2 * num_limits * sizeof(double));
    floe_status st;

    if (limits == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "histogram '%s': out of memory", tag);
    hp.n_bucket_limit = hp.n_bucket = histo_encode(h, limits, limits + num_limits);
    hp.bucket_limit = limits;
    hp.bucket = limits + num_limits;
    hp.num = h->num;
    hp.min = h->num > 0 ? h->min : 0;
    hp.max = h->num > 0 ? h->max : 0;
    hp.sum = h->sum;
    hp.sum_squares = h->sum_squares;
    v.tag = (char *)tag;
    v.value_case = FLOE__TF__SUMMARY__VALUE__VALUE_HISTO;
    v.histo = &hp;
    st = write_value(w, &v, step);
    free(limits);
    return st;
}

floe_status floe_summary_histogram_f64(floe_summary_writer *w, const char *tag,
                                       const double *values, size_t n, int64_t step) {
    histo_acc h;
    floe_status st;

    if (w == NULL || (values == NULL && n > 0))
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_summary_histogram: writer or "
                              "values is NULL");
    if ((st = check_tag("floe_summary_histogram", tag)) != FLOE_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(values[i]))
            return floe_set_error(FLOE_INVALID_ARGUMENT, "histogram '%s': element %zu is %s",
                                  tag, i, isnan(values[i]) ? "NaN" : "infinite");
    if ((st = histo_begin(&h)) != FLOE_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        histo_add(&h, values[i]);
    st = write_histo(w, tag, &h, step);
    free(h.counts);
    return st;
}

static double half_to_double(uint16_t h) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
}

static int dtype_is_real(floe_dtype dt) {
    switch (dt) {
    case FLOE_DTYPE_F32: case FLOE_DTYPE_F64: case FLOE_DTYPE_F16: case FLOE_DTYPE_BF16:
    case FLOE_DTYPE_I8: case FLOE_DTYPE_U8: case FLOE_DTYPE_BOOL: case FLOE_DTYPE_I16:
    case FLOE_DTYPE_U16: case FLOE_DTYPE_I32: case FLOE_DTYPE_U32: case FLOE_DTYPE_I64:
    case FLOE_DTYPE_U64:
        return 1;
    default:
        return 0;
    }
}

/* Element @i of host data @p of @dt (dtype_is_real) as a double. */
static double elem_f64(const void *p, floe_dtype dt, int64_t i) {
    switch (dt) {
    case FLOE_DTYPE_F32: return ((const float *)p)[i];
    case FLOE_DTYPE_F64: return ((const double *)p)[i];
    case FLOE_DTYPE_F16: return half_to_double(((const uint16_t *)p)[i]);
    case FLOE_DTYPE_BF16: {
        uint32_t b = (uint32_t)((const uint16_t *)p)[i] << 16;
        float f;
        memcpy(&f, &b, sizeof(f));
        return f;
    }
    case FLOE_DTYPE_I8: return ((const int8_t *)p)[i];
    case FLOE_DTYPE_U8: return ((const uint8_t *)p)[i];
    case FLOE_DTYPE_BOOL: return ((const uint8_t *)p)[i] != 0;
    case FLOE_DTYPE_I16: return ((const int16_t *)p)[i];
    case FLOE_DTYPE_U16: return ((const uint16_t *)p)[i];
    case FLOE_DTYPE_I32: return ((const int32_t *)p)[i];
    case FLOE_DTYPE_U32: return ((const uint32_t *)p)[i];
    case FLOE_DTYPE_I64: return (double)((const int64_t *)p)[i];
    case FLOE_DTYPE_U64: return (double)((const uint64_t *)p)[i];
    default: return 0;
    }
}

floe_status floe_summary_histogram(floe_summary_writer *w, const char *tag,
                                   const floe_tensor *values, int64_t step) {
    floe_tensor *host = NULL;
    histo_acc h;
    floe_status st;

    if (w == NULL || values == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_summary_histogram: writer or "
                              "values is NULL");
    if ((st = check_tag("floe_summary_histogram", tag)) != FLOE_OK)
        return st;
    int64_t n = floe_tensor_num_elements(values);
    floe_dtype dt = floe_tensor_dtype(values);
    if (!dtype_is_real(dt))
        return floe_set_error(FLOE_INVALID_ARGUMENT, "histogram '%s': dtype %s is not real",
                              tag, floe_dtype_name(dt));
    if (n > 0 && (st = floe_tensor_to_host(values, &host)) != FLOE_OK)
        return floe_set_error(st, "histogram '%s': %s", tag, floe_last_error());
    const void *p = host != NULL ? floe_tensor_data(host) : NULL;
    for (int64_t i = 0; i < n; i++) {
        double v = elem_f64(p, dt, i);
        if (!isfinite(v)) {
            floe_tensor_unref(host);
            return floe_set_error(FLOE_INVALID_ARGUMENT, "histogram '%s': element %" PRId64
                                  " is %s", tag, i, isnan(v) ? "NaN" : "infinite");
        }
    }
    if ((st = histo_begin(&h)) == FLOE_OK) {
        for (int64_t i = 0; i < n; i++)
            histo_add(&h, elem_f64(p, dt, i));
        st = write_histo(w, tag, &h, step);
        free(h.counts);
    }
    floe_tensor_unref(host);
    return st;
}

floe_status floe_summary_image(floe_summary_writer *w, const char *tag,
                               const floe_tensor *image, int64_t step) {
    Floe__Tf__Summary__Value v = FLOE__TF__SUMMARY__VALUE__INIT;
    Floe__Tf__Summary__Image img = FLOE__TF__SUMMARY__IMAGE__INIT;
    void *png = NULL;
    size_t size = 0;
    floe_status st;

    if (w == NULL || image == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_summary_image: writer or image is "
                              "NULL");
    if ((st = check_tag("floe_summary_image", tag)) != FLOE_OK)
        return st;
    if ((st = floe_png_encode(image, &png, &size)) != FLOE_OK)
        return floe_set_error(st, "image '%s': %s", tag, floe_last_error());
    img.height = (int32_t)floe_tensor_dim(image, 0);
    img.width = (int32_t)floe_tensor_dim(image, 1);
    img.colorspace = floe_tensor_ndim(image) == 3 ? (int32_t)floe_tensor_dim(image, 2) : 1;
    img.encoded_image_string.data = png;
    img.encoded_image_string.len = size;
    v.tag = (char *)tag;
    v.value_case = FLOE__TF__SUMMARY__VALUE__VALUE_IMAGE;
    v.image = &img;
    st = write_value(w, &v, step);
    free(png);
    return st;
}

floe_status floe_summary_graph(floe_summary_writer *w, const floe_graph *g) {
    Floe__Tf__Event ev = FLOE__TF__EVENT__INIT;
    void *data = NULL;
    size_t size = 0;
    floe_status st;

    if (w == NULL || g == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_summary_graph: writer or graph is "
                              "NULL");
    if (w->sticky != FLOE_OK)
        return floe_set_error(w->sticky, "summary writer '%s': an earlier flush failed",
                              w->path);
    if ((st = floe_graphdef_export(g, &data, &size)) != FLOE_OK)
        return floe_set_error(st, "summary graph: %s", floe_last_error());
    ev.wall_time = now_realtime();
    ev.what_case = FLOE__TF__EVENT__WHAT_GRAPH_DEF;
    ev.graph_def.data = data;
    ev.graph_def.len = size;
    st = write_event(w, &ev);
    free(data);
    return st != FLOE_OK ? st : maybe_flush(w);
}

/* ---- Decoding ----------------------------------------------------------------------------- */

/* A decoded event and what its pointers point into. */
typedef struct event_box {
    floe_event ev;            /* first: floe_event_free casts back */
    Floe__Tf__Event *msg;
    floe_summary_value *values;
} event_box;

/* A scalar F32/F64 tensor's value (TensorFlow 2's tf.summary.scalar); 0 if not one. */
static int tensor_scalar(const Floe__Tf__TensorProto *t, double *out) {
    size_t elems = 1;
    if (t->tensor_shape != NULL)
        for (size_t i = 0; i < t->tensor_shape->n_dim; i++)
            if (t->tensor_shape->dim[i] == NULL || t->tensor_shape->dim[i]->size != 1)
                return 0;
    if (t->dtype == FLOE__TF__DATA_TYPE__DT_FLOAT) {
        float f;
        if (t->n_float_val == elems) {
            *out = t->float_val[0];
            return 1;
        }
        if (t->tensor_content.len == sizeof(f)) {
            memcpy(&f, t->tensor_content.data, sizeof(f));
            *out = f;
            return 1;
        }
    } else if (t->dtype == FLOE__TF__DATA_TYPE__DT_DOUBLE) {
        if (t->n_double_val == elems) {
            *out = t->double_val[0];
            return 1;
        }
        if (t->tensor_content.len == sizeof(double)) {
            memcpy(out, t->tensor_content.data, sizeof(double));
            return 1;
        }
    }
    return 0;
}

static floe_status decode_value(const Floe__Tf__Summary__Value *pv, floe_summary_value *v) {
    memset(v, 0, sizeof(*v));
    v->tag = pv->tag != NULL ? pv->tag : "";
    v->plugin_name = "";
    if (pv->metadata != NULL && pv->metadata->plugin_data != NULL &&
        pv->metadata->plugin_data->plugin_name != NULL)
        v->plugin_name = pv->metadata->plugin_data->plugin_name;
    v->kind = FLOE_SUMMARY_OTHER;
    switch (pv->value_case) {
    case FLOE__TF__SUMMARY__VALUE__VALUE_SIMPLE_VALUE:
        v->kind = FLOE_SUMMARY_SCALAR;
        v->scalar = pv->simple_value;
        break;
    case FLOE__TF__SUMMARY__VALUE__VALUE_HISTO: {
        const Floe__Tf__HistogramProto *h = pv->histo;
        if (h->n_bucket != h->n_bucket_limit)
            return floe_set_error(FLOE_DATA_LOSS, "histogram '%s': %zu bucket limits but %zu "
                                  "buckets", v->tag, h->n_bucket_limit, h->n_bucket);
        v->kind = FLOE_SUMMARY_HISTOGRAM;
        v->min = h->min;
        v->max = h->max;
        v->num = h->num;
        v->sum = h->sum;
        v->sum_squares = h->sum_squares;
        v->bucket_limit = h->bucket_limit;
        v->bucket = h->bucket;
        v->nbuckets = h->n_bucket;
        break;
    }
    case FLOE__TF__SUMMARY__VALUE__VALUE_IMAGE:
        v->kind = FLOE_SUMMARY_IMAGE;
        v->height = pv->image->height;
        v->width = pv->image->width;
        v->colorspace = pv->image->colorspace;
        v->encoded = pv->image->encoded_image_string.data;
        v->encoded_size = pv->image->encoded_image_string.len;
        break;
    case FLOE__TF__SUMMARY__VALUE__VALUE_TENSOR:
        if (strcmp(v->plugin_name, "scalars") == 0 && tensor_scalar(pv->tensor, &v->scalar))
            v->kind = FLOE_SUMMARY_SCALAR;
        break;
    default:
        break;
    }
    return FLOE_OK;
}

/* Fills the floe_event view of @b->msg. */
static floe_status decode_view(event_box *b) {
    const Floe__Tf__Event *m = b->msg;
    floe_event *ev = &b->ev;

    ev->wall_time = m->wall_time;
    ev->step = m->step;
    switch (m->what_case) {
    case FLOE__TF__EVENT__WHAT__NOT_SET:
        ev->kind = FLOE_EVENT_EMPTY;
        break;
    case FLOE__TF__EVENT__WHAT_FILE_VERSION:
        ev->kind = FLOE_EVENT_FILE_VERSION;
        ev->file_version = m->file_version != NULL ? m->file_version : "";
        break;
    case FLOE__TF__EVENT__WHAT_GRAPH_DEF:
        ev->kind = FLOE_EVENT_GRAPH;
        ev->graph_def = m->graph_def.data;
        ev->graph_def_size = m->graph_def.len;
        break;
    case FLOE__TF__EVENT__WHAT_SESSION_LOG:
        ev->kind = FLOE_EVENT_SESSION_LOG;
        ev->session_status = (int)m->session_log->status;
        break;
    case FLOE__TF__EVENT__WHAT_SUMMARY: {
        const Floe__Tf__Summary *s = m->summary;
        ev->kind = FLOE_EVENT_SUMMARY;
        if (s->n_value == 0)
            break;
        b->values = calloc(s->n_value, sizeof(*b->values));
        if (b->values == NULL)
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "event: out of memory");
        for (size_t i = 0; i < s->n_value; i++) {
            floe_status st = decode_value(s->value[i], &b->values[i]);
            if (st != FLOE_OK)
                return st;
        }
        ev->values = b->values;
        ev->nvalues = s->n_value;
        break;
    }
    default:
        ev->kind = FLOE_EVENT_OTHER;
        break;
    }
    return FLOE_OK;
}

void floe_event_free(floe_event *ev) {
    event_box *b = (event_box *)ev;
    if (b == NULL)
        return;
    floe__tf__event__free_unpacked(b->msg, NULL);
    free(b->values);
    free(b);
}

floe_status floe_event_decode(const void *data, size_t size, floe_event **out) {
    event_box *b;
    floe_status st;

    if (out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_event_decode: out is NULL");
    *out = NULL;
    if (data == NULL && size > 0)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_event_decode: data is NULL");
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "event: out of memory");
    b->msg = floe__tf__event__unpack(NULL, size, size > 0 ? data : (const uint8_t *)"");
    if (b->msg == NULL) {
        free(b);
        return floe_set_error(FLOE_DATA_LOSS, "event: %zu bytes are not a tensorflow.Event",
                              size);
    }
    if ((st = decode_view(b)) != FLOE_OK) {
        floe_event_free(&b->ev);
        return st;
    }
    *out = &b->ev;
    return FLOE_OK;
}

/* ---- Reader ------------------------------------------------------------------------------- */

struct floe_event_reader {
    floe_tfrecord_reader *rec;
    floe_event *ev;       /* the last event returned */
    char *name;
    floe_status sticky;   /* a record that was no Event: every later read fails so */
    char *sticky_msg;
};

static floe_status reader_wrap(floe_tfrecord_reader *rec, const char *name,
                               floe_event_reader **out) {
    floe_event_reader *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->name = strdup(name)) == NULL) {
        free(r);
        floe_tfrecord_reader_close(rec);
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "event reader: out of memory");
    }
    r->rec = rec;
    *out = r;
    return FLOE_OK;
}

floe_status floe_event_reader_open(floe_context *ctx, const char *uri, floe_event_reader **out) {
    floe_tfrecord_reader *rec = NULL;
    floe_status st;

    if (out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_event_reader_open: out is NULL");
    *out = NULL;
    if (uri == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_event_reader_open: uri is NULL");
    if ((st = floe_tfrecord_reader_open(ctx, uri, FLOE_COMPRESSION_NONE, &rec)) != FLOE_OK)
        return st;
    return reader_wrap(rec, uri, out);
}

floe_status floe_event_reader_open_memory(const void *data, size_t size, const char *name,
                                          floe_event_reader **out) {
    floe_tfrecord_reader *rec = NULL;
    floe_status st;

    if (out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_event_reader_open_memory: out is "
                              "NULL");
    *out = NULL;
    if (name == NULL)
        name = "<memory>";
    st = floe_tfrecord_reader_open_memory(data, size, FLOE_COMPRESSION_NONE, name, &rec);
    if (st != FLOE_OK)
        return st;
    return reader_wrap(rec, name, out);
}

floe_status floe_event_reader_next(floe_event_reader *r, const floe_event **ev) {
    const void *data;
    size_t n;
    floe_status st;

    if (ev != NULL)
        *ev = NULL;
    if (r == NULL || ev == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_event_reader_next: reader or ev is "
                              "NULL");
    floe_event_free(r->ev);
    r->ev = NULL;
    if (r->sticky != FLOE_OK)
        return floe_set_error(r->sticky, "%s", r->sticky_msg != NULL ? r->sticky_msg : "");
    uint64_t off = floe_tfrecord_reader_offset(r->rec);
    if ((st = floe_tfrecord_read(r->rec, &data, &n)) != FLOE_OK)
        return st;
    if ((st = floe_event_decode(data, n, &r->ev)) != FLOE_OK) {
        floe_set_error(st, "%s: record at offset %" PRIu64 ": %s", r->name, off,
                       floe_last_error());
        r->sticky = st;
        r->sticky_msg = strdup(floe_last_error()); /* NULL: an empty message later */
        return st;
    }
    *ev = r->ev;
    return FLOE_OK;
}

void floe_event_reader_close(floe_event_reader *r) {
    if (r == NULL)
        return;
    floe_event_free(r->ev);
    floe_tfrecord_reader_close(r->rec);
    free(r->sticky_msg);
    free(r->name);
    free(r);
}
