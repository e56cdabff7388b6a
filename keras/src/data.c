/*
 * data.c - in-memory data sets (floe/data.h): the IDX reader for MNIST-style files,
 * data sets from arrays, batches converted on the fly, and seeded shuffling.
 *
 * IDX files are untrusted bytes: read through the filesystem ABI (so any URI, s3://...)
 * and inflated with zlib when gzip-compressed, capped in size,
 * and accepted only when the header (two zero bytes, type 0x08, rank 1..4, big-endian
 * u32 extents) describes exactly the bytes that follow.  Features keep their stored
 * type (images stay u8) and are converted into the caller's batch tensors.
 *
 * Sections: the data set object; IDX files; batches; random numbers.
 */
#include "keras-impl.h"

#include <floe/data.h>
#include <floe/fs.h>
#include <floe/keras.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef __SSE2__
#  include <emmintrin.h>
#endif

/* Largest IDX payload read (uncompressed): 1 GiB, well above MNIST's 47 MB. */
#define IDX_MAX_BYTES ((size_t)1 << 30)

struct floe_dataset {
    int64_t n;
    floe_dtype x_dtype, y_dtype;
    int x_ndim, y_ndim;
    int64_t x_dims[FLOE_MAX_DIMS], y_dims[FLOE_MAX_DIMS];
    int64_t x_elems, y_elems; /* elements per example */
    float scale;
    void *x, *y;
};

/* ---- The data set object ------------------------------------------------------------ */

static int64_t dims_product(const int64_t *dims, int ndim) {
    int64_t p = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] <= 0 || p > INT64_MAX / dims[i])
            return -1;
        p *= dims[i];
    }
    return p;
}

void floe_dataset_free(floe_dataset *ds) {
    if (ds == NULL)
        return;
    free(ds->x);
    free(ds->y);
    free(ds);
}

/* An empty data set of @n examples with buffers for the given layout; @x_buf (nullable)
 * is adopted as the feature buffer when the call succeeds. */
static floe_status dataset_alloc(int64_t n, floe_dtype x_dtype, const int64_t *x_shape,
                                 int x_ndim, floe_dtype y_dtype, const int64_t *y_shape,
                                 int y_ndim, float scale, void *x_buf, floe_dataset **out) {
    floe_dataset *ds;
    size_t xbytes, ybytes;

    ds = calloc(1, sizeof(*ds));
    if (ds == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "data set: out of memory");
    ds->n = n;
    ds->x_dtype = x_dtype;
    ds->y_dtype = y_dtype;
    ds->x_ndim = x_ndim;
    ds->y_ndim = y_ndim;
    ds->scale = scale;
    if (x_ndim > 0)
        memcpy(ds->x_dims, x_shape, (size_t)x_ndim * sizeof(int64_t));
    if (y_ndim > 0)
        memcpy(ds->y_dims, y_shape, (size_t)y_ndim * sizeof(int64_t));
    ds->x_elems = dims_product(x_shape, x_ndim);
    ds->y_elems = y_dtype == FLOE_DTYPE_INVALID ? 0 : dims_product(y_shape, y_ndim);
    if (ds->x_elems < 0 || ds->y_elems < 0 || ds->x_elems > INT64_MAX / (n > 0 ? n : 1) ||
        (ds->y_elems > 0 && ds->y_elems > INT64_MAX / (n > 0 ? n : 1))) {
        free(ds);
        return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                "data set: extents must be > 0 and the size must fit int64");
    }
    xbytes = (size_t)(n * ds->x_elems) * floe_dtype_size(x_dtype);
    ybytes = (size_t)(n * ds->y_elems) * (y_dtype == FLOE_DTYPE_INVALID ? 0 : 4);
    ds->x = x_buf != NULL ? x_buf : malloc(xbytes > 0 ? xbytes : 1);
    ds->y = ybytes > 0 ? malloc(ybytes) : NULL;
    if (ds->x == NULL || (ybytes > 0 && ds->y == NULL)) {
        if (ds->x == x_buf)
            ds->x = NULL;
        floe_dataset_free(ds);
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "data set: out of memory for %lld "
                                "examples", (long long)n);
    }
    *out = ds;
    return FLOE_OK;
}

static size_t x_example_bytes(const floe_dataset *ds) {
    return (size_t)ds->x_elems * floe_dtype_size(ds->x_dtype);
}

static size_t y_example_bytes(const floe_dataset *ds) {
    return ds->y_dtype == FLOE_DTYPE_INVALID ? 0 : (size_t)ds->y_elems * 4;
}

floe_status floe_dataset_from_arrays(int64_t n, floe_dtype x_dtype, const void *x,
                                     const int64_t *x_shape, int x_ndim, floe_dtype y_dtype,
                                     const void *y, const int64_t *y_shape, int y_ndim,
                                     float scale, floe_dataset **out) {
    floe_dataset *ds;
    floe_status st;

    if (out == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_dataset_from_arrays: out is NULL");
    *out = NULL;
    if (n <= 0 || x == NULL || x_ndim < 0 || x_ndim >= FLOE_MAX_DIMS ||
        (x_ndim > 0 && x_shape == NULL))
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_dataset_from_arrays: need n > 0 "
                                "examples, features and a feature shape of rank 0..%d",
                                FLOE_MAX_DIMS - 1);
    if (x_dtype != FLOE_DTYPE_U8 && x_dtype != FLOE_DTYPE_F32 && x_dtype != FLOE_DTYPE_I32)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_dataset_from_arrays: features "
                                "must be u8, f32 or i32, not %s", floe_dtype_name(x_dtype));
    if (!(y_dtype == FLOE_DTYPE_INVALID && y == NULL) &&
        !(y_dtype == FLOE_DTYPE_I32 && y != NULL && y_ndim == 0) &&
        !(y_dtype == FLOE_DTYPE_F32 && y != NULL && y_ndim >= 0 && y_ndim < FLOE_MAX_DIMS &&
          (y_ndim == 0 || y_shape != NULL)))
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_dataset_from_arrays: targets must "
                                "be i32 class ids (rank 0), f32, or absent (INVALID, NULL)");
    st = dataset_alloc(n, x_dtype, x_shape, x_ndim, y_dtype, y_shape,
                       y_dtype == FLOE_DTYPE_F32 ? y_ndim : 0, scale, NULL, &ds);
    if (st != FLOE_OK)
        return st;
    memcpy(ds->x, x, (size_t)n * x_example_bytes(ds));
    if (ds->y != NULL)
        memcpy(ds->y, y, (size_t)n * y_example_bytes(ds));
    *out = ds;
    return FLOE_OK;
}

floe_status floe_dataset_slice(const floe_dataset *ds, int64_t begin, int64_t count,
                               floe_dataset **out) {
    floe_dataset *s;
    floe_status st;

    if (out == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_dataset_slice: out is NULL");
    *out = NULL;
    if (ds == NULL || begin < 0 || count <= 0 || begin > ds->n || count > ds->n - begin)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_dataset_slice: [%lld, +%lld) is "
                                "not a non-empty range of the %lld examples",
                                (long long)begin, (long long)count,
                                (long long)(ds != NULL ? ds->n : 0));
    st = dataset_alloc(count, ds->x_dtype, ds->x_dims, ds->x_ndim, ds->y_dtype, ds->y_dims,
                       ds->y_ndim, ds->scale, NULL, &s);
    if (st != FLOE_OK)
        return st;
    memcpy(s->x, (const char *)ds->x + (size_t)begin * x_example_bytes(ds),
           (size_t)count * x_example_bytes(ds));
    if (s->y != NULL)
        memcpy(s->y, (const char *)ds->y + (size_t)begin * y_example_bytes(ds),
               (size_t)count * y_example_bytes(ds));
    *out = s;
    return FLOE_OK;
}

int64_t floe_dataset_size(const floe_dataset *ds) {
    return ds != NULL ? ds->n : 0;
}

int floe_dataset_x_shape(const floe_dataset *ds, int64_t *dims) {
    if (ds == NULL)
        return -1;
    if (dims != NULL && ds->x_ndim > 0)
        memcpy(dims, ds->x_dims, (size_t)ds->x_ndim * sizeof(int64_t));
    return ds->x_ndim;
}

int floe_dataset_y_shape(const floe_dataset *ds, int64_t *dims) {
    if (ds == NULL)
        return -1;
    if (dims != NULL && ds->y_ndim > 0)
        memcpy(dims, ds->y_dims, (size_t)ds->y_ndim * sizeof(int64_t));
    return ds->y_ndim;
}

floe_dtype floe_dataset_x_dtype(const floe_dataset *ds) {
    return ds != NULL ? ds->x_dtype : FLOE_DTYPE_INVALID;
}

floe_dtype floe_dataset_y_dtype(const floe_dataset *ds) {
    return ds != NULL ? ds->y_dtype : FLOE_DTYPE_INVALID;
}

int32_t floe_dataset_label(const floe_dataset *ds, int64_t i) {
    if (ds == NULL || ds->y_dtype != FLOE_DTYPE_I32 || i < 0 || i >= ds->n)
        return -1;
    return ((const int32_t *)ds->y)[i];
}

const void *floe_dataset_example(const floe_dataset *ds, int64_t i) {
    if (ds == NULL || i < 0 || i >= ds->n)
        return NULL;
    return (const char *)ds->x + (size_t)i * x_example_bytes(ds);
}

/* ---- IDX files --------------------------------------------------------------------- */

typedef struct idx_file {
    int ndim;
    int64_t dims[4];
    unsigned char *payload; /* malloc'ed, exactly the announced size */
    size_t size;
} idx_file;

/* An IDX file being read through the filesystem ABI (any URI: s3://...), inflated on the
 * fly when it starts with gzip's magic bytes, read as it is otherwise. */
typedef struct idx_src {
    floe_file *f;
    const char *path;
    uint64_t off;              /* next file offset to read */
    int gz;                    /* gzip: inflating through z */
    int eof;                   /* the file has no more bytes */
    int zinit;
    z_stream z;
    unsigned char in[1 << 17];
} idx_src;

static floe_status src_open(floe_context *ctx, const char *path, idx_src *src) {
    unsigned char magic[2];
    size_t nr = 0;
    floe_status st;

    memset(src, 0, sizeof(*src));
    src->path = path;
    st = floe_file_open_read(ctx, path, &src->f);
    if (st != FLOE_OK)
        return floe__keras_fail(st, "cannot open '%s': %s", path, floe_last_error());
    st = floe_file_pread(src->f, 0, magic, 2, &nr);
    if (st != FLOE_OK) {
        floe__keras_fail(st, "reading '%s': %s", path, floe_last_error());
        floe_file_close(src->f);
        src->f = NULL;
        return st;
    }
    if (nr == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        src->gz = 1;
        if (inflateInit2(&src->z, 15 + 16) != Z_OK) {
            floe_file_close(src->f);
            src->f = NULL;
            return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "reading '%s': out of memory",
                                    path);
        }
        src->zinit = 1;
    }
    return FLOE_OK;
}

static void src_close(idx_src *src) {
    if (src->zinit)
        inflateEnd(&src->z);
    floe_file_close(src->f);
    src->f = NULL;
}

/* Reads up to @n raw bytes of the file at src->off; *@nr 0 at its end. */
static floe_status src_pread(idx_src *src, void *buf, size_t n, size_t *nr) {
    floe_status st = floe_file_pread(src->f, src->off, buf, n, nr);
    if (st != FLOE_OK)
        return floe__keras_fail(st, "reading '%s' at offset %llu: %s", src->path,
                                (unsigned long long)src->off, floe_last_error());
    src->off += *nr;
    return FLOE_OK;
}

/* When the compressed input is used up and the file goes on, reads its next chunk;
 * src->eof once there is none.  FLOE_OK or the read's failure (message set). */
static floe_status src_refill(idx_src *src) {
    size_t nr;
    if (src->z.avail_in != 0 || src->eof)
        return FLOE_OK;
    if (src_pread(src, src->in, sizeof(src->in), &nr) != FLOE_OK)
        return FLOE_DATA_LOSS;
    src->eof = nr == 0;
    src->z.next_in = src->in;
    src->z.avail_in = (uInt)nr;
    return FLOE_OK;
}

/* Reads up to @n bytes; the count read (less than @n only at the end of the data), or -1
 * (message set) for a corrupt stream or a failed read. */
static int64_t src_read_full(idx_src *src, unsigned char *buf, size_t n) {
    size_t got = 0, nr;

    if (!src->gz) {
        while (got < n) {
            if (src_pread(src, buf + got, n - got, &nr) != FLOE_OK)
                return -1;
            if (nr == 0)
                break;
            got += nr;
        }
        return (int64_t)got;
    }
    while (got < n) {
        if (src_refill(src) != FLOE_OK)
            return -1;
        if (src->z.avail_in == 0 && src->eof)
            break;                                /* the data ends here (maybe too early) */
        size_t chunk = n - got < (1u << 30) ? n - got : 1u << 30;
        src->z.next_out = buf + got;
        src->z.avail_out = (uInt)chunk;
        int r = inflate(&src->z, Z_NO_FLUSH);
        got += chunk - src->z.avail_out;
        if (r == Z_STREAM_END) {
            /* Another gzip member may follow (as gzread allows); else the data ends. */
            if (src_refill(src) != FLOE_OK)
                return -1;
            if (src->z.avail_in == 0)
                break;
            inflateReset(&src->z);
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
            floe__keras_fail(FLOE_DATA_LOSS, "'%s' is corrupt: %s", src->path,
                             src->z.msg != NULL ? src->z.msg : "bad gzip data");
            return -1;
        }
    }
    return (int64_t)got;
}

/* Checks the header (two zero bytes, type 0x08, rank 1..4, non-zero extents whose
 * product fits IDX_MAX_BYTES); sets f->ndim, f->dims, f->size. */
static floe_status idx_header(idx_src *src, const char *path, idx_file *f) {
    unsigned char h[4 + 16];
    int64_t got = src_read_full(src, h, 4);
    size_t expect = 1;

    if (got < 0)
        return FLOE_DATA_LOSS;
    if (got < 4 || h[0] != 0 || h[1] != 0)
        return floe__keras_fail(FLOE_DATA_LOSS, "'%s' is not an IDX file (bad magic number)",
                                path);
    if (h[2] != 0x08)
        return floe__keras_fail(FLOE_DATA_LOSS, "'%s': IDX element type 0x%02x is not "
                                "supported (only unsigned bytes, 0x08)", path, h[2]);
    f->ndim = h[3];
    if (f->ndim < 1 || f->ndim > 4)
        return floe__keras_fail(FLOE_DATA_LOSS, "'%s': IDX rank %d is not in 1..4", path,
                                f->ndim);
    got = src_read_full(src, h + 4, 4 * (size_t)f->ndim);
    if (got < 0)
        return FLOE_DATA_LOSS;
    if (got < 4 * f->ndim)
        return floe__keras_fail(FLOE_DATA_LOSS, "'%s' is truncated: %lld bytes, the IDX "
                                "header needs %d", path, (long long)(4 + got), 4 + 4 * f->ndim);
    for (int i = 0; i < f->ndim; i++) {
        const unsigned char *p = h + 4 + 4 * i;
        uint32_t d = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (d == 0 || expect > IDX_MAX_BYTES / d)
            return floe__keras_fail(FLOE_DATA_LOSS, "'%s': IDX extent %d is %u: empty or "
                                    "too large", path, i, d);
        f->dims[i] = d;
        expect *= d;
    }
    f->size = expect;
    return FLOE_OK;
}

/* Reads an IDX file, gzip or plain, straight into a buffer of the announced size; the
 * data must end exactly there. */
static floe_status idx_read(floe_context *ctx, const char *path, idx_file *f) {
    unsigned char extra;
    floe_status st;
    int64_t got;
    idx_src *src;

    memset(f, 0, sizeof(*f));
    src = malloc(sizeof(*src));
    if (src == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "reading '%s': out of memory", path);
    st = src_open(ctx, path, src);
    if (st != FLOE_OK) {
        free(src);
        return st;
    }
    st = idx_header(src, path, f);
    if (st != FLOE_OK)
        goto fail_close;
    f->payload = malloc(f->size);
    if (f->payload == NULL) {
        st = floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "reading '%s': out of memory for %zu "
                              "bytes", path, f->size);
        goto fail_close;
    }
    got = src_read_full(src, f->payload, f->size);
    if (got >= 0 && (size_t)got == f->size) {
        int64_t more = src_read_full(src, &extra, 1);
        got = more == 0 ? (int64_t)f->size : more < 0 ? -1 : -2;
    }
    if (got == -1) {
        st = FLOE_DATA_LOSS;
    } else if (got != (int64_t)f->size) {
        st = floe__keras_fail(FLOE_DATA_LOSS, "'%s' is %s: the IDX header announces %zu data "
                              "bytes, the file has %s", path,
                              got == -2 ? "too long" : "truncated", f->size,
                              got == -2 ? "more" : "fewer");
    }
    if (st != FLOE_OK)
        goto fail_free;
    src_close(src);
    free(src);
    return FLOE_OK;

fail_free:
    free(f->payload);
    f->payload = NULL;
fail_close:
    src_close(src);
    free(src);
    return st;
}

floe_status floe_dataset_load_idx(const char *images_path, const char *labels_path,
                                  float scale, floe_dataset **out) {
    return floe_dataset_load_idx_ctx(NULL, images_path, labels_path, scale, out);
}

floe_status floe_dataset_load_idx_ctx(floe_context *ctx, const char *images_path,
                                      const char *labels_path, float scale,
                                      floe_dataset **out) {
    idx_file im, lb;
    floe_dataset *ds;
    floe_status st;

    if (out == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_dataset_load_idx: out is NULL");
    *out = NULL;
    if (images_path == NULL || labels_path == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_dataset_load_idx: a path is NULL");
    st = idx_read(ctx, images_path, &im);
    if (st != FLOE_OK)
        return st;
    st = idx_read(ctx, labels_path, &lb);
    if (st != FLOE_OK)
        goto fail_free_images;
    if (lb.ndim != 1 || im.dims[0] != lb.dims[0]) {
        st = floe__keras_fail(FLOE_DATA_LOSS, "'%s' holds %lld examples but '%s' %s %lld "
                              "labels", images_path, (long long)im.dims[0], labels_path,
                              lb.ndim != 1 ? "is not a rank-1 list of" : "holds",
                              (long long)lb.dims[0]);
        goto fail_free_labels;
    }
    /* The images' buffer becomes the data set's: no second copy of 47 MB. */
    st = dataset_alloc(im.dims[0], FLOE_DTYPE_U8, im.dims + 1, im.ndim - 1, FLOE_DTYPE_I32,
                       NULL, 0, scale, im.payload, &ds);
    if (st != FLOE_OK)
        goto fail_free_labels;
    for (int64_t i = 0; i < ds->n; i++)
        ((int32_t *)ds->y)[i] = lb.payload[i];
    free(lb.payload);
    *out = ds;
    return FLOE_OK;

fail_free_labels:
    free(lb.payload);
fail_free_images:
    free(im.payload);
    return st;
}

floe_status floe_dataset_load_fashion_mnist(const char *dir, int train, floe_dataset **out) {
    return floe_dataset_load_fashion_mnist_ctx(NULL, dir, train, out);
}

floe_status floe_dataset_load_fashion_mnist_ctx(floe_context *ctx, const char *dir, int train,
                                                floe_dataset **out) {
    const char *prefix = train ? "train" : "t10k";
    char images[4096], labels[4096];
    floe_status st;

    if (out == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                "floe_dataset_load_fashion_mnist: out is NULL");
    *out = NULL;
    if (dir == NULL)
        dir = FLOE_FASHION_MNIST_DIR;
    if ((size_t)snprintf(images, sizeof(images), "%s/%s-images-idx3-ubyte.gz", dir, prefix) >=
            sizeof(images) ||
        (size_t)snprintf(labels, sizeof(labels), "%s/%s-labels-idx1-ubyte.gz", dir, prefix) >=
            sizeof(labels))
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "Fashion-MNIST: directory name too long");
    st = floe_dataset_load_idx_ctx(ctx, images, labels, 1.0f / 255.0f, out);
    if (st == FLOE_NOT_FOUND) {
        char msg[4200];
        snprintf(msg, sizeof(msg), "%s", floe_keras_last_error());
        return floe__keras_fail(st, "%s; Fashion-MNIST is not installed there (install it "
                                "with `apt-get install dataset-fashion-mnist`, or give the "
                                "directory holding the four IDX files)", msg);
    }
    if (st == FLOE_DATA_LOSS) {
        char msg[4200];
        snprintf(msg, sizeof(msg), "%s", floe_keras_last_error());
        return floe__keras_fail(st, "%s (reinstall with `apt-get install --reinstall "
                                "dataset-fashion-mnist`)", msg);
    }
    if (st == FLOE_OK && (floe_dataset_x_shape(*out, NULL) != 2 || (*out)->x_dims[0] != 28 ||
                          (*out)->x_dims[1] != 28)) {
        floe_dataset_free(*out);
        *out = NULL;
        return floe__keras_fail(FLOE_DATA_LOSS, "'%s' does not hold 28x28 images", images);
    }
    return st;
}

/* ---- Batches ------------------------------------------------------------------------- */

static int batch_fits(const floe_tensor *t, int64_t count, int64_t elems) {
    int64_t rows = floe_tensor_ndim(t) > 0 ? floe_tensor_dim(t, 0) : 0;
    return rows >= count && rows > 0 && floe_tensor_num_elements(t) == rows * elems &&
           floe_tensor_data(t) != NULL;
}

static void prefetch_example(const floe_dataset *ds, int64_t i) {
    const char *p;
    size_t bytes = x_example_bytes(ds);

    if (i < 0 || i >= ds->n)
        return;
    p = (const char *)ds->x + (size_t)i * bytes;
    for (size_t off = 0; off < bytes; off += 64)
        __builtin_prefetch(p + off);
}

static void copy_features(const floe_dataset *ds, int64_t src, void *dst_rows, int64_t row,
                          floe_dtype dst_dtype) {
    const int64_t e = ds->x_elems;

    if (dst_dtype == FLOE_DTYPE_I32) {
        int32_t *d = (int32_t *)dst_rows + row * e;
        if (ds->x_dtype == FLOE_DTYPE_I32) {
            memcpy(d, (const int32_t *)ds->x + src * e, (size_t)e * 4);
        } else if (ds->x_dtype == FLOE_DTYPE_U8) {
            const uint8_t *s = (const uint8_t *)ds->x + src * e;
            for (int64_t k = 0; k < e; k++)
                d[k] = s[k];
        } else {
            const float *s = (const float *)ds->x + src * e;
            for (int64_t k = 0; k < e; k++)
                d[k] = (int32_t)s[k];
        }
        return;
    }
    float *d = (float *)dst_rows + row * e;
    const float scale = ds->scale;
    if (ds->x_dtype == FLOE_DTYPE_U8) {
        const uint8_t *s = (const uint8_t *)ds->x + src * e;
        int64_t k = 0;
#ifdef __SSE2__
        /* 16 pixels a step: widen u8 -> i32, convert, scale (the baseline x86-64 build
         * does not vectorise the plain loop). */
        const __m128i zero = _mm_setzero_si128();
        const __m128 vs = _mm_set1_ps(scale);
        for (; k + 16 <= e; k += 16) {
            __m128i b = _mm_loadu_si128((const __m128i *)(s + k));
            __m128i lo = _mm_unpacklo_epi8(b, zero), hi = _mm_unpackhi_epi8(b, zero);
            _mm_storeu_ps(d + k, _mm_mul_ps(_mm_cvtepi32_ps(_mm_unpacklo_epi16(lo, zero)), vs));
            _mm_storeu_ps(d + k + 4,
                          _mm_mul_ps(_mm_cvtepi32_ps(_mm_unpackhi_epi16(lo, zero)), vs));
            _mm_storeu_ps(d + k + 8,
                          _mm_mul_ps(_mm_cvtepi32_ps(_mm_unpacklo_epi16(hi, zero)), vs));
            _mm_storeu_ps(d + k + 12,
                          _mm_mul_ps(_mm_cvtepi32_ps(_mm_unpackhi_epi16(hi, zero)), vs));
        }
#endif
        for (; k < e; k++)
            d[k] = (float)s[k] * scale;
    } else if (ds->x_dtype == FLOE_DTYPE_F32) {
        const float *s = (const float *)ds->x + src * e;
        for (int64_t k = 0; k < e; k++)
            d[k] = s[k] * scale;
    } else {
        const int32_t *s = (const int32_t *)ds->x + src * e;
        for (int64_t k = 0; k < e; k++)
            d[k] = (float)s[k] * scale;
    }
}

floe_status floe_dataset_batch(const floe_dataset *ds, const int64_t *index, int64_t first,
                               int64_t count, floe_tensor *x, floe_tensor *y) {
    floe_dtype xd = floe_tensor_dtype(x);

    if (ds == NULL || x == NULL || count <= 0)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_dataset_batch: need a data set, "
                                "a feature tensor and count > 0");
    if ((xd != FLOE_DTYPE_F32 && xd != FLOE_DTYPE_I32) || !batch_fits(x, count, ds->x_elems))
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_dataset_batch: the feature tensor "
                                "must be a host f32 or i32 tensor of >= %lld rows of %lld "
                                "elements", (long long)count, (long long)ds->x_elems);
    if (y != NULL && (ds->y_dtype == FLOE_DTYPE_INVALID ||
                      floe_tensor_dtype(y) != ds->y_dtype ||
                      !batch_fits(y, count, ds->y_elems)))
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_dataset_batch: the target tensor "
                                "must be a host %s tensor of >= %lld rows of %lld elements",
                                floe_dtype_name(ds->y_dtype), (long long)count,
                                (long long)ds->y_elems);
    for (int64_t r = 0; r < count; r++) {
        int64_t src = index != NULL ? index[r] : first + r;
        if (src < 0 || src >= ds->n)
            return floe__keras_fail(FLOE_OUT_OF_RANGE, "floe_dataset_batch: example %lld of "
                                    "%lld", (long long)src, (long long)ds->n);
        /* Shuffled rows are scattered over the whole set: fetch the next ones' lines
         * while this one converts (the copy was bound on memory latency). */
        for (int64_t a = 1; a <= 2 && index != NULL && r + a < count; a++)
            prefetch_example(ds, index[r + a]);
        copy_features(ds, src, floe_tensor_data(x), r, xd);
        if (y != NULL)
            memcpy((char *)floe_tensor_data(y) + (size_t)r * y_example_bytes(ds),
                   (const char *)ds->y + (size_t)src * y_example_bytes(ds),
                   y_example_bytes(ds));
    }
    return FLOE_OK;
}

/* ---- Random numbers ------------------------------------------------------------------ */

uint64_t floe_rng_next(uint64_t *rng) {
    uint64_t z = (*rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float floe_rng_uniform(uint64_t *rng) {
    return (float)(floe_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform in [0, @bound) without modulo bias (Lemire's method with rejection). */
static uint64_t rng_below(uint64_t *rng, uint64_t bound) {
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t r = floe_rng_next(rng);
        if (r >= threshold)
            return r % bound;
    }
}

void floe_data_shuffle(int64_t *index, int64_t n, uint64_t *rng) {
    if (index == NULL || rng == NULL || n <= 0)
        return;
    for (int64_t i = 0; i < n; i++)
        index[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(rng, (uint64_t)i + 1);
        int64_t t = index[i];
        index[i] = index[j];
        index[j] = t;
    }
}
