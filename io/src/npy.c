/*
 * npy.c - NumPy .npy reading and writing (floe/npy.h).
 *
 * Sections: dtype descriptors ("<f4" and friends); the header, a Python dict literal
 * parsed by a small tokenizer that accepts exactly the keys 'descr', 'fortran_order' and
 * 'shape'; decode (magic, version, header, byte order, data size); encode; the
 * filesystem wrappers.
 */
#include <floe/npy.h>

#include <floe/floe.h>
#include <floe/fs.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Descriptors ------------------------------------------------------------------- */

typedef struct npy_type {
    char kind;  /* numpy kind character */
    int size;
    floe_dtype dtype;
} npy_type;

static const npy_type npy_types[] = {
    {'f', 2, FLOE_DTYPE_F16}, {'f', 4, FLOE_DTYPE_F32}, {'f', 8, FLOE_DTYPE_F64},
    {'i', 1, FLOE_DTYPE_I8},  {'i', 2, FLOE_DTYPE_I16}, {'i', 4, FLOE_DTYPE_I32},
    {'i', 8, FLOE_DTYPE_I64}, {'u', 1, FLOE_DTYPE_U8},  {'u', 2, FLOE_DTYPE_U16},
    {'u', 4, FLOE_DTYPE_U32}, {'u', 8, FLOE_DTYPE_U64}, {'b', 1, FLOE_DTYPE_BOOL},
    {'c', 8, FLOE_DTYPE_COMPLEX64},
};

static bool host_is_le(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Parses a descr such as "<f4": the dtype and whether the data is big-endian. */
static floe_status descr_parse(const char *d, size_t len, floe_dtype *dt, bool *big) {
    if (len >= 3 && len <= 4 && strchr("<>|=", d[0]) != NULL) {
        char kind = d[1];
        int size = 0;
        for (size_t i = 2; i < len; i++) {
            if (d[i] < '0' || d[i] > '9')
                goto bad;
            size = size * 10 + (d[i] - '0');
        }
        for (size_t i = 0; i < sizeof(npy_types) / sizeof(npy_types[0]); i++)
            if (npy_types[i].kind == kind && npy_types[i].size == size) {
                *dt = npy_types[i].dtype;
                *big = d[0] == '>' || (d[0] == '=' && !host_is_le());
                return FLOE_OK;
            }
    }
bad:
    return floe_set_error(FLOE_INVALID_ARGUMENT,
                          ".npy: dtype '%.*s' is not supported (Floe reads f2 f4 f8, i1-i8, "
                          "u1-u8, b1 and c8)", (int)(len > 32 ? 32 : len), d);
}

static const char *descr_of(floe_dtype dt) {
    switch (dt) {
    case FLOE_DTYPE_F16: return "<f2";
    case FLOE_DTYPE_F32: return "<f4";
    case FLOE_DTYPE_F64: return "<f8";
    case FLOE_DTYPE_I8: return "|i1";
    case FLOE_DTYPE_I16: return "<i2";
    case FLOE_DTYPE_I32: return "<i4";
    case FLOE_DTYPE_I64: return "<i8";
    case FLOE_DTYPE_U8: return "|u1";
    case FLOE_DTYPE_U16: return "<u2";
    case FLOE_DTYPE_U32: return "<u4";
    case FLOE_DTYPE_U64: return "<u8";
    case FLOE_DTYPE_BOOL: return "|b1";
    case FLOE_DTYPE_COMPLEX64: return "<c8";
    default: return NULL;
    }
}

/* ---- Header ------------------------------------------------------------------------- */

typedef struct hdr_lexer {
    const char *p, *end;
} hdr_lexer;

static void skip_ws(hdr_lexer *lx) {
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' ||
                               *lx->p == '\r'))
        lx->p++;
}

static bool eat(hdr_lexer *lx, char c) {
    skip_ws(lx);
    if (lx->p < lx->end && *lx->p == c) {
        lx->p++;
        return true;
    }
    return false;
}

/* A quoted string ('...' or "..."), without escapes (numpy writes none here). */
static bool lex_string(hdr_lexer *lx, const char **s, size_t *len) {
    skip_ws(lx);
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"'))
        return false;
    char q = *lx->p++;
    const char *start = lx->p;
    while (lx->p < lx->end && *lx->p != q) {
        if (*lx->p == '\\')
            return false;
        lx->p++;
    }
    if (lx->p >= lx->end)
        return false;
    *s = start;
    *len = (size_t)(lx->p - start);
    lx->p++;
    return true;
}

static bool lex_word(hdr_lexer *lx, const char *w) {
    skip_ws(lx);
    size_t n = strlen(w);
    if ((size_t)(lx->end - lx->p) >= n && memcmp(lx->p, w, n) == 0) {
        lx->p += n;
        return true;
    }
    return false;
}

/* A non-negative integer (Python may write "3L" in old files). */
static bool lex_int(hdr_lexer *lx, int64_t *v) {
    skip_ws(lx);
    int64_t r = 0;
    const char *start = lx->p;
    while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
        if (r > (INT64_MAX - 9) / 10)
            return false;
        r = r * 10 + (*lx->p++ - '0');
    }
    if (lx->p == start)
        return false;
    if (lx->p < lx->end && *lx->p == 'L')
        lx->p++;
    *v = r;
    return true;
}

typedef struct npy_header {
    floe_dtype dtype;
    bool big;
    int64_t dims[FLOE_MAX_DIMS];
    int ndim;
} npy_header;

static floe_status hdr_bad(const char *what) {
    return floe_set_error(FLOE_INVALID_ARGUMENT, ".npy: malformed header: %s", what);
}

static floe_status header_parse(const char *text, size_t len, npy_header *h) {
    hdr_lexer lx = {text, text + len};
    bool seen_descr = false, seen_order = false, seen_shape = false;
    floe_status st;

    if (!eat(&lx, '{'))
        return hdr_bad("no '{'");
    while (!eat(&lx, '}')) {
        const char *key;
        size_t klen;
        if (!lex_string(&lx, &key, &klen) || !eat(&lx, ':'))
            return hdr_bad("expected 'key':");
        if (klen == 5 && memcmp(key, "descr", 5) == 0 && !seen_descr) {
            const char *d;
            size_t dlen;
            if (!lex_string(&lx, &d, &dlen))
                return hdr_bad("'descr' is not a string (structured dtypes are not supported)");
            if ((st = descr_parse(d, dlen, &h->dtype, &h->big)) != FLOE_OK)
                return st;
            seen_descr = true;
        } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0 && !seen_order) {
            if (lex_word(&lx, "True"))
                return floe_set_error(FLOE_INVALID_ARGUMENT,
                                      ".npy: fortran_order True is not supported (save the "
                                      "array in C order: numpy.ascontiguousarray)");
            if (!lex_word(&lx, "False"))
                return hdr_bad("'fortran_order' is not True or False");
            seen_order = true;
        } else if (klen == 5 && memcmp(key, "shape", 5) == 0 && !seen_shape) {
            if (!eat(&lx, '('))
                return hdr_bad("'shape' is not a tuple");
            h->ndim = 0;
            while (!eat(&lx, ')')) {
                int64_t v;
                if (!lex_int(&lx, &v))
                    return hdr_bad("'shape' holds something other than extents");
                if (h->ndim == FLOE_MAX_DIMS)
                    return floe_set_error(FLOE_INVALID_ARGUMENT,
                                          ".npy: rank above Floe's maximum of %d", FLOE_MAX_DIMS);
                h->dims[h->ndim++] = v;
                if (!eat(&lx, ',')) {
                    if (!eat(&lx, ')'))
                        return hdr_bad("'shape' tuple not closed");
                    break;
                }
            }
            seen_shape = true;
        } else {
            return floe_set_error(FLOE_INVALID_ARGUMENT,
                                  ".npy: malformed header: unexpected or repeated key '%.*s'",
                                  (int)(klen > 32 ? 32 : klen), key);
        }
        if (!eat(&lx, ',')) {
            if (!eat(&lx, '}'))
                return hdr_bad("expected ',' or '}'");
            break;
        }
    }
    if (!seen_descr || !seen_order || !seen_shape)
        return hdr_bad("'descr', 'fortran_order' and 'shape' are all required");
    skip_ws(&lx);
    if (lx.p != lx.end)
        return hdr_bad("bytes after the dict");
    return FLOE_OK;
}

/* ---- Decode ------------------------------------------------------------------------- */

static void swap_copy(uint8_t *dst, const uint8_t *src, size_t n, size_t esize) {
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < esize; k++)
            dst[i * esize + k] = src[i * esize + esize - 1 - k];
}

floe_status floe_npy_decode(const void *data, size_t size, floe_tensor **out) {
    const uint8_t *p = data;
    npy_header h;
    floe_status st;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || (data == NULL && size > 0))
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_npy_decode: NULL argument");
    if (size < 10 || memcmp(p, "\x93NUMPY", 6) != 0)
        return floe_set_error(FLOE_INVALID_ARGUMENT, ".npy: bad magic (not a .npy file)");
    uint8_t major = p[6], minor = p[7];
    size_t hlen, hoff;
    if (major == 1 && minor == 0) {
        hlen = (size_t)p[8] | (size_t)p[9] << 8;
        hoff = 10;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (size < 12)
            return floe_set_error(FLOE_INVALID_ARGUMENT, ".npy: truncated header length");
        hlen = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
        hoff = 12;
    } else {
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              ".npy: format version %u.%u is not supported (1.0, 2.0, 3.0 are)",
                              major, minor);
    }
    if (hlen > size - hoff)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              ".npy: header of %zu bytes runs past the end of the file", hlen);
    memset(&h, 0, sizeof(h));
    if ((st = header_parse((const char *)p + hoff, hlen, &h)) != FLOE_OK)
        return st;
    size_t esize = floe_dtype_size(h.dtype);
    uint64_t numel = 1;
    for (int i = 0; i < h.ndim; i++) {
        if (h.dims[i] != 0 && numel > (uint64_t)INT64_MAX / esize / (uint64_t)h.dims[i])
            return floe_set_error(FLOE_INVALID_ARGUMENT, ".npy: shape too large");
        numel *= (uint64_t)h.dims[i];
    }
    size_t avail = size - hoff - hlen;
    if ((uint64_t)avail != numel * esize)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              ".npy: %zu data bytes, the header's shape and dtype need %llu",
                              avail, (unsigned long long)(numel * esize));
    floe_tensor *t;
    if ((st = floe_tensor_new(h.dtype, h.dims, h.ndim, &t)) != FLOE_OK)
        return st;
    uint8_t *dst = floe_tensor_data(t);
    const uint8_t *src = p + hoff + hlen;
    size_t cs = h.dtype == FLOE_DTYPE_COMPLEX64 ? 4 : esize;
    if (numel > 0) {
        if (h.big == host_is_le() && cs > 1)
            swap_copy(dst, src, avail / cs, cs);
        else
            memcpy(dst, src, avail);
        if (h.dtype == FLOE_DTYPE_BOOL)
            for (size_t i = 0; i < avail; i++)
                dst[i] = dst[i] != 0;
    }
    *out = t;
    return FLOE_OK;
}

/* ---- Encode ------------------------------------------------------------------------- */

floe_status floe_npy_encode(const floe_tensor *t, void **data, size_t *size) {
    char header[512];

    if (data != NULL)
        *data = NULL;
    if (size != NULL)
        *size = 0;
    if (t == NULL || data == NULL || size == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_npy_encode: NULL argument");
    if (floe_tensor_device(t) != NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "floe_npy_encode: a device tensor (copy it with floe_tensor_to_host)");
    const char *descr = descr_of(floe_tensor_dtype(t));
    if (descr == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, ".npy: cannot write a %s tensor",
                              floe_dtype_name(floe_tensor_dtype(t)));
    int n = snprintf(header, sizeof(header), "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr);
    int nd = floe_tensor_ndim(t);
    for (int i = 0; i < nd; i++)
        n += snprintf(header + n, sizeof(header) - (size_t)n, "%lld%s",
                      (long long)floe_tensor_dim(t, i), nd == 1 ? "," : i + 1 < nd ? ", " : "");
    n += snprintf(header + n, sizeof(header) - (size_t)n, "), }");
    /* Pad with spaces and a newline so the data starts on a 64-byte boundary. */
    size_t total_h = 10 + (size_t)n + 1;
    size_t padded = (total_h + 63) / 64 * 64;
    size_t hlen = padded - 10;
    size_t nbytes = floe_tensor_nbytes(t);
    uint8_t *buf = malloc(padded + nbytes);
    if (buf == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, ".npy: out of memory");
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)(hlen & 0xff);
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, header, (size_t)n);
    memset(buf + 10 + n, ' ', hlen - (size_t)n - 1);
    buf[padded - 1] = '\n';
    if (nbytes > 0) {
        size_t cs = floe_tensor_dtype(t) == FLOE_DTYPE_COMPLEX64 ? 4 : floe_dtype_size(
                                                                         floe_tensor_dtype(t));
        if (!host_is_le() && cs > 1)
            swap_copy(buf + padded, floe_tensor_data(t), nbytes / cs, cs);
        else
            memcpy(buf + padded, floe_tensor_data(t), nbytes);
    }
    *data = buf;
    *size = padded + nbytes;
    return FLOE_OK;
}

/* ---- Files -------------------------------------------------------------------------- */

floe_status floe_npy_load(floe_context *ctx, const char *uri, size_t max_bytes,
                          floe_tensor **out) {
    void *data = NULL;
    size_t size = 0;

    if (out != NULL)
        *out = NULL;
    if (ctx == NULL || uri == NULL || out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_npy_load: NULL argument");
    floe_status st = floe_fs_read_all(ctx, uri, max_bytes, &data, &size);
    if (st != FLOE_OK)
        return st;
    st = floe_npy_decode(data, size, out);
    free(data);
    if (st != FLOE_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", floe_last_error());
        return floe_set_error(st, "%s: %s", uri, msg);
    }
    return FLOE_OK;
}

floe_status floe_npy_save(floe_context *ctx, const char *uri, const floe_tensor *t) {
    void *data;
    size_t size;

    if (ctx == NULL || uri == NULL || t == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_npy_save: NULL argument");
    floe_status st = floe_npy_encode(t, &data, &size);
    if (st != FLOE_OK)
        return st;
    st = floe_fs_write_all(ctx, uri, data, size);
    free(data);
    return st;
}
