/*
 * png.c - PNG encoding and decoding for image summaries (floe/summary.h), on libpng's
 * simplified API (png_image_*), which reports errors through png_image.message instead
 * of longjmp into our frames.
 *
 * Encoding takes U8 or F32/F64 ([0, 1], scaled and clamped) tensors [H, W] or
 * [H, W, C], C in 1..4.  Decoding treats its bytes as untrusted: the header is read
 * first and the pixel count bounded before any pixel buffer is allocated.  Without
 * libpng (FLOE_HAVE_PNG undefined) both calls return FLOE_UNIMPLEMENTED.
 */
#include <floe/floe.h>
#include <floe/summary.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef FLOE_HAVE_PNG
#include <png.h>

#define MAX_EXTENT 65535
#define MAX_DECODE_EXTENT 16384
#define MAX_DECODE_BYTES (256u << 20)

/* Checks @image's shape and dtype; its extents and channels. */
static floe_status image_layout(const floe_tensor *image, int64_t *h, int64_t *w, int *c) {
    int nd = floe_tensor_ndim(image);
    floe_dtype dt = floe_tensor_dtype(image);

    if (dt != FLOE_DTYPE_U8 && dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "PNG: image dtype %s; need u8, f32 or "
                              "f64", floe_dtype_name(dt));
    if (nd != 2 && nd != 3)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "PNG: image has rank %d; need [H, W] or "
                              "[H, W, C]", nd);
    *h = floe_tensor_dim(image, 0);
    *w = floe_tensor_dim(image, 1);
    int64_t ch = nd == 3 ? floe_tensor_dim(image, 2) : 1;
    if (*h < 1 || *h > MAX_EXTENT || *w < 1 || *w > MAX_EXTENT)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "PNG: image is %lld x %lld; each extent "
                              "must be 1..%d", (long long)*h, (long long)*w, MAX_EXTENT);
    if (ch < 1 || ch > 4)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "PNG: image has %lld channels; need 1 "
                              "(grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA)", (long long)ch);
    *c = (int)ch;
    return FLOE_OK;
}

static uint8_t to_u8(double v) {
    if (!(v > 0))          /* also NaN */
        return 0;
    if (v >= 1)
        return 255;
    return (uint8_t)lrint(v * 255.0);
}

floe_status floe_png_encode(const floe_tensor *image, void **png, size_t *size) {
    static const png_uint_32 formats[5] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB,
                                           PNG_FORMAT_RGBA};
    floe_tensor *host = NULL;
    png_image img;
    int64_t h = 0, w = 0;
    int c = 0;
    floe_status st;
    uint8_t *pix = NULL;
    png_alloc_size_t need = 0;

    if (png == NULL || size == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_png_encode: png or size is NULL");
    *png = NULL;
    *size = 0;
    if (image == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_png_encode: image is NULL");
    if ((st = image_layout(image, &h, &w, &c)) != FLOE_OK)
        return st;
    if ((st = floe_tensor_to_host(image, &host)) != FLOE_OK)
        return st;
    size_t n = (size_t)h * (size_t)w * (size_t)c;
    const void *data = floe_tensor_data(host);
    if (floe_tensor_dtype(image) == FLOE_DTYPE_U8) {
        pix = (uint8_t *)data;
    } else {
        pix = malloc(n);
        if (pix == NULL) {
            floe_tensor_unref(host);
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "PNG: out of memory");
        }
        for (size_t i = 0; i < n; i++)
            pix[i] = to_u8(floe_tensor_dtype(image) == FLOE_DTYPE_F32
                               ? (double)((const float *)data)[i]
                               : ((const double *)data)[i]);
    }
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = formats[c];
    st = FLOE_OK;
    if (!png_image_write_to_memory(&img, NULL, &need, 0, pix, 0, NULL)) {
        st = floe_set_error(FLOE_INTERNAL, "PNG: sizing the image: %s", img.message);
    } else if ((*png = malloc(need)) == NULL) {
        st = floe_set_error(FLOE_RESOURCE_EXHAUSTED, "PNG: out of memory");
    } else if (!png_image_write_to_memory(&img, *png, &need, 0, pix, 0, NULL)) {
        st = floe_set_error(FLOE_INTERNAL, "PNG: encoding: %s", img.message);
        free(*png);
        *png = NULL;
    } else {
        *size = need;
    }
    png_image_free(&img);
    if (pix != data)
        free(pix);
    floe_tensor_unref(host);
    return st;
}

floe_status floe_png_decode(const void *data, size_t size, floe_tensor **out) {
    png_image img;
    floe_tensor *t = NULL;
    floe_status st;

    if (out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_png_decode: out is NULL");
    *out = NULL;
    if (data == NULL || size == 0)
        return floe_set_error(FLOE_DATA_LOSS, "PNG: no data");
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, data, size)) {
        st = floe_set_error(FLOE_DATA_LOSS, "PNG: bad header: %s", img.message);
        png_image_free(&img);
        return st;
    }
    if (img.width < 1 || img.width > MAX_DECODE_EXTENT || img.height < 1 ||
        img.height > MAX_DECODE_EXTENT) {
        st = floe_set_error(FLOE_DATA_LOSS, "PNG: %u x %u pixels; at most %d x %d", img.width,
                            img.height, MAX_DECODE_EXTENT, MAX_DECODE_EXTENT);
        png_image_free(&img);
        return st;
    }
    img.format &= PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA; /* 8-bit, no colormap */
    if ((uint64_t)img.width * img.height * PNG_IMAGE_PIXEL_CHANNELS(img.format) >
        MAX_DECODE_BYTES) {
        st = floe_set_error(FLOE_DATA_LOSS, "PNG: %u x %u pixels of %u channels exceed %u MiB",
                            img.width, img.height, PNG_IMAGE_PIXEL_CHANNELS(img.format),
                            MAX_DECODE_BYTES >> 20);
        png_image_free(&img);
        return st;
    }
    int64_t shape[3] = {img.height, img.width, PNG_IMAGE_PIXEL_CHANNELS(img.format)};
    if ((st = floe_tensor_new(FLOE_DTYPE_U8, shape, 3, &t)) != FLOE_OK) {
        png_image_free(&img);
        return st;
    }
    if (!png_image_finish_read(&img, NULL, floe_tensor_data(t), 0, NULL)) {
        st = floe_set_error(FLOE_DATA_LOSS, "PNG: bad image data: %s", img.message);
        png_image_free(&img);
        floe_tensor_unref(t);
        return st;
    }
    png_image_free(&img);
    *out = t;
    return FLOE_OK;
}

#else /* !FLOE_HAVE_PNG */

floe_status floe_png_encode(const floe_tensor *image, void **png, size_t *size) {
    (void)image;
    if (png != NULL)
        *png = NULL;
    if (size != NULL)
        *size = 0;
    return floe_set_error(FLOE_UNIMPLEMENTED, "PNG: libfloe_io was built without libpng");
}

floe_status floe_png_decode(const void *data, size_t size, floe_tensor **out) {
    (void)data;
    (void)size;
    if (out != NULL)
        *out = NULL;
    return floe_set_error(FLOE_UNIMPLEMENTED, "PNG: libfloe_io was built without libpng");
}

#endif
