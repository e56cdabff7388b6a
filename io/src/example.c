/*
 * example.c - tf.train.Example parsing and building (floe/example.h).
 *
 * Layout: a protobuf wire reader over untrusted bytes (every length checked against
 * what is left); locating the requested features in an Example (Example.features ->
 * Features.feature map entries -> key and Feature); walking one Feature's list (packed
 * or not, merged when repeated) to count its values or to store them into a tensor row;
 * the batch parser that ties these together; and the builder, which writes the wire
 * format by hand.
 *
 * The parser never builds a message: it keeps slices of the input, so parsing costs one
 * pass over the bytes plus the copies of the values requested.
 */
#include <floe/floe.h>
#include <floe/example.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Wire reader ----------------------------------------------------------------- */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };
enum { KIND_NONE = 0, KIND_BYTES = 1, KIND_FLOAT = 2, KIND_INT64 = 3 };

typedef struct wire {
    const uint8_t *p, *end;
} wire;

typedef struct field {
    uint32_t num;
    int wt;
    uint64_t ival;          /* WT_VARINT, WT_I64, WT_I32 */
    const uint8_t *val;     /* WT_LEN */
    size_t len;
    const uint8_t *at;      /* where the field's tag begins */
} field;

static bool wire_varint(wire *w, uint64_t *v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (w->p >= w->end)
            return false;
        uint8_t b = *w->p++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* Reads the next field; false for malformed bytes.  Call while w->p < w->end. */
static bool wire_field(wire *w, field *f) {
    uint64_t tag, len;
    f->at = w->p;
    if (!wire_varint(w, &tag) || tag >> 3 == 0 || tag >> 3 > UINT32_MAX)
        return false;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    switch (f->wt) {
    case WT_VARINT:
        return wire_varint(w, &f->ival);
    case WT_I64:
        if (w->end - w->p < 8)
            return false;
        memcpy(&f->ival, w->p, 8);
        w->p += 8;
        return true;
    case WT_I32: {
        if (w->end - w->p < 4)
            return false;
        uint32_t v;
        memcpy(&v, w->p, 4);
        f->ival = v;
        w->p += 4;
        return true;
    }
    case WT_LEN:
        if (!wire_varint(w, &len) || len > (uint64_t)(w->end - w->p))
            return false;
        f->val = w->p;
        f->len = (size_t)len;
        w->p += len;
        return true;
    default:
        return false; /* groups (3, 4) and 6, 7 do not occur in Examples */
    }
}

/* ---- Locating features ------------------------------------------------------------ */

typedef struct slot {
    const uint8_t *p;       /* the Feature message */
    size_t n;
    bool found;
} slot;

static const char *kind_name(int k) {
    return k == KIND_BYTES ? "bytes_list" : k == KIND_FLOAT ? "float_list"
                                          : k == KIND_INT64 ? "int64_list" : "no list";
}

/* One map entry (key = 1, value = 2): the last value wins within the entry, too. */
static bool locate_entry(const uint8_t *p, size_t n, const floe_feature_spec *specs,
                         const size_t *keylen, int nspecs, slot *slots) {
    wire w = {p, p + n};
    const uint8_t *key = NULL, *val = (const uint8_t *)"";
    size_t klen = 0, vlen = 0;
    while (w.p < w.end) {
        field f;
        if (!wire_field(&w, &f))
            return false;
        if (f.num == 1 && f.wt == WT_LEN) {
            key = f.val;
            klen = f.len;
        } else if (f.num == 2 && f.wt == WT_LEN) {
            val = f.val;
            vlen = f.len;
        } else if (f.num <= 2) {
            return false;
        }
    }
    if (key == NULL)
        key = (const uint8_t *)"";
    for (int j = 0; j < nspecs; j++) {
        if (keylen[j] == klen && memcmp(specs[j].key, key, klen) == 0) {
            slots[j].p = val;
            slots[j].n = vlen;
            slots[j].found = true;
        }
    }
    return true;
}

/* Fills slots[nspecs] for one Example; false for malformed bytes. */
static bool locate(const uint8_t *p, size_t n, const floe_feature_spec *specs,
                   const size_t *keylen, int nspecs, slot *slots) {
    wire w = {p, p + n};
    for (int j = 0; j < nspecs; j++)
        slots[j].found = false;
    while (w.p < w.end) {
        field f;
        if (!wire_field(&w, &f))
            return false;
        if (f.num != 1)
            continue;
        if (f.wt != WT_LEN)
            return false;
        /* Features: repeated occurrences merge, so each is read in turn. */
        wire fw = {f.val, f.val + f.len};
        while (fw.p < fw.end) {
            field e;
            if (!wire_field(&fw, &e))
                return false;
            if (e.num != 1)
                continue;
            if (e.wt != WT_LEN || !locate_entry(e.val, e.len, specs, keylen, nspecs, slots))
                return false;
        }
    }
    return true;
}

/* ---- Walking a Feature's list ------------------------------------------------------ */

/* The Feature's kind (the last oneof member set) and where its run of fields starts:
 * a oneof member set again merges into the list, another member replaces it. */
static bool feature_kind(const slot *s, int *kind, const uint8_t **start) {
    wire w = {s->p, s->p + s->n};
    *kind = KIND_NONE;
    *start = s->p;
    while (w.p < w.end) {
        field f;
        if (!wire_field(&w, &f))
            return false;
        if (f.num < 1 || f.num > 3)
            continue;
        if (f.wt != WT_LEN)
            return false;
        if ((int)f.num != *kind) {
            *kind = (int)f.num;
            *start = f.at;
        }
    }
    return true;
}

typedef struct sink {
    floe_dtype dtype;
    void *dst;              /* NULL: count only */
    floe_tensor *str;       /* STRING: the tensor, with elements from str_base */
    int64_t str_base;
    int64_t cap;            /* values that fit in dst */
    int64_t count;          /* values seen */
    bool range_error;       /* an int64 that does not fit an I32 */
    bool oom;
} sink;

static void sink_value(sink *k, const field *f, uint64_t bits) {
    int64_t i = k->count++;
    if (k->dst == NULL || i >= k->cap)
        return;
    switch (k->dtype) {
    case FLOE_DTYPE_F32: {
        uint32_t u = (uint32_t)bits;
        memcpy((float *)k->dst + i, &u, 4);
        break;
    }
    case FLOE_DTYPE_I64:
        ((int64_t *)k->dst)[i] = (int64_t)bits;
        break;
    case FLOE_DTYPE_I32:
        if ((int64_t)bits < INT32_MIN || (int64_t)bits > INT32_MAX)
            k->range_error = true;
        ((int32_t *)k->dst)[i] = (int32_t)(int64_t)bits;
        break;
    case FLOE_DTYPE_STRING:
        if (floe_tensor_set_string(k->str, k->str_base + i, f->val, f->len) != FLOE_OK)
            k->oom = true;
        break;
    default:
        break;
    }
}

/* A packed run of floats or varints. */
static bool sink_packed(sink *k, int kind, const field *f) {
    if (kind == KIND_FLOAT) {
        if (f->len % 4 != 0)
            return false;
        int64_t n = (int64_t)(f->len / 4);
        if (k->dst != NULL && k->count < k->cap) {
            int64_t m = n < k->cap - k->count ? n : k->cap - k->count;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            memcpy((float *)k->dst + k->count, f->val, (size_t)m * 4);
#else
            for (int64_t i = 0; i < m; i++) {
                const uint8_t *q = f->val + 4 * i;
                uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                             (uint32_t)q[3] << 24;
                memcpy((float *)k->dst + k->count + i, &u, 4);
            }
#endif
        }
        k->count += n;
        return true;
    }
    wire w = {f->val, f->val + f->len};
    while (w.p < w.end) {
        uint64_t v;
        if (!wire_varint(&w, &v))
            return false;
        sink_value(k, f, v);
    }
    return true;
}

/* Walks the list fields of @kind from @start to the end of the Feature. */
static bool walk_list(const slot *s, const uint8_t *start, int kind, sink *k) {
    wire w = {start, s->p + s->n};
    while (w.p < w.end) {
        field f;
        if (!wire_field(&w, &f))
            return false;
        if ((int)f.num != kind)
            continue;
        wire lw = {f.val, f.val + f.len};
        while (lw.p < lw.end) {
            field v;
            if (!wire_field(&lw, &v))
                return false;
            if (v.num != 1)
                continue;
            if (kind == KIND_BYTES) {
                if (v.wt != WT_LEN)
                    return false;
                sink_value(k, &v, 0);
            } else if (v.wt == WT_LEN) {
                if (!sink_packed(k, kind, &v))
                    return false;
            } else if ((kind == KIND_FLOAT && v.wt == WT_I32) ||
                       (kind == KIND_INT64 && v.wt == WT_VARINT)) {
                sink_value(k, &v, v.ival);
            } else {
                return false;
            }
        }
    }
    return true;
}

/* ---- Parsing ---------------------------------------------------------------------- */

static int want_kind(floe_dtype dt) {
    return dt == FLOE_DTYPE_STRING ? KIND_BYTES : dt == FLOE_DTYPE_F32 ? KIND_FLOAT
                                                                       : KIND_INT64;
}

static int64_t spec_elems(const floe_feature_spec *s) {
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
        n *= s->shape[d];
    return n;
}

static floe_status check_specs(const floe_feature_spec *specs, int nspecs, size_t *keylen) {
    for (int j = 0; j < nspecs; j++) {
        const floe_feature_spec *s = &specs[j];
        if (s->key == NULL)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "feature spec %d: NULL key", j);
        keylen[j] = strlen(s->key);
        if (s->dtype != FLOE_DTYPE_F32 && s->dtype != FLOE_DTYPE_I64 &&
            s->dtype != FLOE_DTYPE_I32 && s->dtype != FLOE_DTYPE_STRING)
            return floe_set_error(FLOE_INVALID_ARGUMENT,
                                  "feature '%s': dtype %s is not one of float32, int64, int32, "
                                  "string", s->key, floe_dtype_name(s->dtype));
        if (!s->var_len) {
            if (s->ndim < 0 || s->ndim >= FLOE_MAX_DIMS)
                return floe_set_error(FLOE_INVALID_ARGUMENT, "feature '%s': rank %d out of range",
                                      s->key, s->ndim);
            for (int d = 0; d < s->ndim; d++)
                if (s->shape[d] < 0 || s->shape[d] > (INT64_C(1) << 31))
                    return floe_set_error(FLOE_INVALID_ARGUMENT,
                                          "feature '%s': bad extent %" PRId64, s->key,
                                          s->shape[d]);
        }
        if (s->default_value != NULL) {
            int64_t need = s->var_len ? 1 : spec_elems(s);
            if (s->default_count != 1 && s->default_count != need)
                return floe_set_error(FLOE_INVALID_ARGUMENT,
                                      "feature '%s': the default has %" PRId64
                                      " values; the shape needs 1 or %" PRId64,
                                      s->key, s->default_count, need);
        }
    }
    return FLOE_OK;
}

static void prefix(char *buf, size_t n, int batched, int64_t b) {
    if (batched)
        snprintf(buf, n, "Example %" PRId64 ": ", b);
    else
        buf[0] = 0;
}

/* Stores the default (or zero / empty padding) in elements [from, to) of a row. */
static floe_status fill_default(const floe_feature_spec *s, floe_tensor *t, void *row,
                                int64_t row_base, int64_t from, int64_t to) {
    size_t es = floe_dtype_size(s->dtype);
    for (int64_t i = from; i < to; i++) {
        const void *src = NULL;
        if (s->default_value != NULL)
            src = (const char *)s->default_value +
                  (size_t)(s->default_count == 1 ? 0 : i) *
                      (s->dtype == FLOE_DTYPE_STRING ? sizeof(floe_tstring) : es);
        if (s->dtype == FLOE_DTYPE_STRING) {
            const floe_tstring *ts = src;
            floe_status st = floe_tensor_set_string(t, row_base + i, ts ? ts->data : "",
                                                    ts ? ts->size : 0);
            if (st != FLOE_OK)
                return st;
        } else if (src != NULL) {
            memcpy((char *)row + (size_t)i * es, src, es);
        } else {
            memset((char *)row + (size_t)i * es, 0, es);
        }
    }
    return FLOE_OK;
}

/* The kind of feature @s in slot @sl (KIND_NONE when missing), checked against the spec,
 * and where its list fields start. */
static floe_status feature_find(const floe_feature_spec *s, const slot *sl, const char *pre,
                                int *kind, const uint8_t **start) {
    *kind = KIND_NONE;
    if (!sl->found)
        return FLOE_OK;
    if (!feature_kind(sl, kind, start))
        return floe_set_error(FLOE_DATA_LOSS, "%sfeature '%s': malformed Feature", pre, s->key);
    if (*kind != KIND_NONE && *kind != want_kind(s->dtype))
        return floe_set_error(FLOE_INVALID_ARGUMENT, "%sfeature '%s' holds a %s, not the %s a %s "
                              "spec needs", pre, s->key, kind_name(*kind),
                              kind_name(want_kind(s->dtype)), floe_dtype_name(s->dtype));
    return FLOE_OK;
}

/* The number of values of feature @s in slot @sl (0 when missing); kind checked. */
static floe_status feature_count(const floe_feature_spec *s, const slot *sl, const char *pre,
                                 int64_t *count) {
    int kind;
    const uint8_t *start;
    *count = 0;
    floe_status st = feature_find(s, sl, pre, &kind, &start);
    if (st != FLOE_OK || kind == KIND_NONE)
        return st;
    sink k = {.dtype = s->dtype};
    if (!walk_list(sl, start, kind, &k))
        return floe_set_error(FLOE_DATA_LOSS, "%sfeature '%s': malformed %s", pre, s->key,
                              kind_name(kind));
    *count = k.count;
    return FLOE_OK;
}

/* Fills one row (@n values, elements from @row_base of @t) of feature @s, in one walk
 * over its list. */
static floe_status fill_row(const floe_feature_spec *s, const slot *sl, const char *pre,
                            floe_tensor *t, int64_t row_base, int64_t n) {
    size_t es = floe_dtype_size(s->dtype);
    char *base = floe_tensor_data(t); /* NULL for a tensor without elements */
    void *row = s->dtype == FLOE_DTYPE_STRING || base == NULL ? NULL
                                                              : base + (size_t)row_base * es;
    int kind;
    const uint8_t *start;
    floe_status st = feature_find(s, sl, pre, &kind, &start);
    if (st != FLOE_OK)
        return st;
    if (kind == KIND_NONE) {
        if (s->default_value == NULL && !s->var_len)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "%sfeature '%s' is missing and has no "
                                  "default", pre, s->key);
        return fill_default(s, t, row, row_base, 0, n);
    }
    /* dst only marks "store" for strings, which go through str */
    sink k = {.dtype = s->dtype, .dst = row ? row : (void *)t, .str = t, .str_base = row_base,
              .cap = n};
    if (!walk_list(sl, start, kind, &k))
        return floe_set_error(FLOE_DATA_LOSS, "%sfeature '%s': malformed %s", pre, s->key,
                              kind_name(kind));
    if (k.count != n && (!s->var_len || k.count > n))
        return floe_set_error(s->var_len ? FLOE_INTERNAL : FLOE_INVALID_ARGUMENT,
                              "%sfeature '%s' has %" PRId64 " values; its shape needs %" PRId64,
                              pre, s->key, k.count, n);
    if (k.oom)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "%sfeature '%s': out of memory", pre,
                              s->key);
    if (k.range_error)
        return floe_set_error(FLOE_OUT_OF_RANGE, "%sfeature '%s': an int64 value does not fit "
                              "int32", pre, s->key);
    return fill_default(s, t, row, row_base, k.count, n);
}

static floe_status parse_impl(const void *const *data, const size_t *sizes, int64_t batch,
                              const floe_feature_spec *specs, int nspecs, floe_tensor **out,
                              int batched) {
    floe_status st = FLOE_OK;
    size_t *keylen = calloc((size_t)nspecs + 1, sizeof *keylen);
    slot *slots = calloc((size_t)(batch * nspecs) + 1, sizeof *slots);
    int64_t *width = calloc((size_t)nspecs + 1, sizeof *width);
    char pre[48];
    if (keylen == NULL || slots == NULL || width == NULL) {
        st = floe_set_error(FLOE_RESOURCE_EXHAUSTED, "parse_example: out of memory");
        goto done;
    }
    if ((st = check_specs(specs, nspecs, keylen)) != FLOE_OK)
        goto done;
    for (int64_t b = 0; b < batch; b++) {
        if (data[b] == NULL && sizes[b] > 0) {
            st = floe_set_error(FLOE_INVALID_ARGUMENT, "Example %" PRId64 ": NULL data", b);
            goto done;
        }
        if (!locate(data[b], sizes[b], specs, keylen, nspecs, slots + b * nspecs)) {
            prefix(pre, sizeof pre, batched, b);
            st = floe_set_error(FLOE_DATA_LOSS, "%smalformed Example (%zu bytes)", pre, sizes[b]);
            goto done;
        }
    }
    /* The width of each feature's row: fixed, or the longest list for var_len. */
    for (int j = 0; j < nspecs; j++) {
        width[j] = specs[j].var_len ? 0 : spec_elems(&specs[j]);
        for (int64_t b = 0; specs[j].var_len && b < batch; b++) {
            int64_t c;
            prefix(pre, sizeof pre, batched, b);
            if ((st = feature_count(&specs[j], &slots[b * nspecs + j], pre, &c)) != FLOE_OK)
                goto done;
            width[j] = c > width[j] ? c : width[j];
        }
        int64_t shape[FLOE_MAX_DIMS + 1];
        int nd = 0;
        if (batched)
            shape[nd++] = batch;
        if (specs[j].var_len) {
            shape[nd++] = width[j];
        } else {
            for (int d = 0; d < specs[j].ndim; d++)
                shape[nd++] = specs[j].shape[d];
        }
        if ((st = floe_tensor_new(specs[j].dtype, shape, nd, &out[j])) != FLOE_OK)
            goto done;
        for (int64_t b = 0; b < batch; b++) {
            prefix(pre, sizeof pre, batched, b);
            st = fill_row(&specs[j], &slots[b * nspecs + j], pre, out[j], b * width[j], width[j]);
            if (st != FLOE_OK)
                goto done;
        }
    }
done:
    if (st != FLOE_OK)
        for (int j = 0; j < nspecs; j++) {
            floe_tensor_unref(out[j]);
            out[j] = NULL;
        }
    free(keylen);
    free(slots);
    free(width);
    return st;
}

floe_status floe_example_parse(const void *data, size_t size, const floe_feature_spec *specs,
                               int nspecs, floe_tensor **out) {
    if (out != NULL)
        for (int j = 0; j < nspecs; j++)
            out[j] = NULL;
    if ((data == NULL && size > 0) || specs == NULL || nspecs < 1 || out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_example_parse: bad argument");
    return parse_impl(&data, &size, 1, specs, nspecs, out, 0);
}

floe_status floe_example_parse_batch(const void *const *data, const size_t *sizes, int64_t batch,
                                     const floe_feature_spec *specs, int nspecs,
                                     floe_tensor **out) {
    if (out != NULL)
        for (int j = 0; j < nspecs; j++)
            out[j] = NULL;
    if ((batch > 0 && (data == NULL || sizes == NULL)) || batch < 0 || specs == NULL ||
        nspecs < 1 || out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_example_parse_batch: bad argument");
    return parse_impl(data, sizes, batch, specs, nspecs, out, 1);
}

/* ---- Builder ------------------------------------------------------------------------ */

struct floe_example_builder {
    uint8_t *body;          /* the map entries, each a Features.feature field */
    size_t len, cap;
    uint8_t *ser;           /* the serialized Example */
    size_t ser_cap;
};

static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static bool body_reserve(floe_example_builder *b, size_t more) {
    if (more > SIZE_MAX / 4 - b->len)
        return false;
    if (b->len + more <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = realloc(b->body, cap);
    if (p == NULL)
        return false;
    b->body = p;
    b->cap = cap;
    return true;
}

floe_example_builder *floe_example_builder_new(void) {
    return calloc(1, sizeof(floe_example_builder));
}

void floe_example_builder_free(floe_example_builder *b) {
    if (b == NULL)
        return;
    free(b->body);
    free(b->ser);
    free(b);
}

void floe_example_builder_clear(floe_example_builder *b) {
    if (b != NULL)
        b->len = 0;
}

/* Appends the map entry of @key whose list (the Feature's @kind member) has @list_len
 * bytes, and returns where the list's bytes go (the caller writes them). */
static uint8_t *add_entry(floe_example_builder *b, const char *key, int kind, size_t list_len) {
    size_t klen = strlen(key);
    size_t feat = 1 + varint_size(list_len) + list_len;
    size_t entry = 1 + varint_size(klen) + klen + 1 + varint_size(feat) + feat;
    if (!body_reserve(b, 1 + varint_size(entry) + entry))
        return NULL;
    uint8_t *p = b->body + b->len;
    *p++ = 0x0a;                      /* Features.feature, LEN */
    p = put_varint(p, entry);
    *p++ = 0x0a;                      /* key */
    p = put_varint(p, klen);
    memcpy(p, key, klen);
    p += klen;
    *p++ = 0x12;                      /* value: Feature */
    p = put_varint(p, feat);
    *p++ = (uint8_t)(kind << 3 | WT_LEN);
    p = put_varint(p, list_len);
    b->len = (size_t)(p - b->body) + list_len;
    return p;
}

static floe_status builder_args(floe_example_builder *b, const char *key, const void *v,
                                size_t n, const char *fn) {
    if (b == NULL || key == NULL || (v == NULL && n > 0))
        return floe_set_error(FLOE_INVALID_ARGUMENT, "%s: NULL argument", fn);
    if (n > (SIZE_MAX >> 4))
        return floe_set_error(FLOE_INVALID_ARGUMENT, "%s: too many values", fn);
    return FLOE_OK;
}

floe_status floe_example_builder_add_floats(floe_example_builder *b, const char *key,
                                            const float *v, size_t n) {
    floe_status st = builder_args(b, key, v, n, "floe_example_builder_add_floats");
    if (st != FLOE_OK)
        return st;
    size_t packed = n * 4, list = n ? 1 + varint_size(packed) + packed : 0;
    uint8_t *p = add_entry(b, key, KIND_FLOAT, list);
    if (p == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "Example feature '%s': out of memory", key);
    if (n) {
        *p++ = 0x0a;
        p = put_varint(p, packed);
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &v[i], 4);
            for (int k = 0; k < 4; k++)
                *p++ = (uint8_t)(u >> (8 * k));
        }
    }
    return FLOE_OK;
}

floe_status floe_example_builder_add_int64s(floe_example_builder *b, const char *key,
                                            const int64_t *v, size_t n) {
    floe_status st = builder_args(b, key, v, n, "floe_example_builder_add_int64s");
    if (st != FLOE_OK)
        return st;
    size_t packed = 0;
    for (size_t i = 0; i < n; i++)
        packed += varint_size((uint64_t)v[i]);
    size_t list = n ? 1 + varint_size(packed) + packed : 0;
    uint8_t *p = add_entry(b, key, KIND_INT64, list);
    if (p == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "Example feature '%s': out of memory", key);
    if (n) {
        *p++ = 0x0a;
        p = put_varint(p, packed);
        for (size_t i = 0; i < n; i++)
            p = put_varint(p, (uint64_t)v[i]);
    }
    return FLOE_OK;
}

floe_status floe_example_builder_add_bytes(floe_example_builder *b, const char *key,
                                           const void *const *v, const size_t *len, size_t n) {
    floe_status st = builder_args(b, key, v, n, "floe_example_builder_add_bytes");
    if (st != FLOE_OK)
        return st;
    if (n > 0 && len == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_example_builder_add_bytes: NULL len");
    size_t list = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == NULL && len[i] > 0)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "Example feature '%s': value %zu is "
                                  "NULL", key, i);
        if (len[i] > SIZE_MAX / 4 - list)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "Example feature '%s': too large", key);
        list += 1 + varint_size(len[i]) + len[i];
    }
    uint8_t *p = add_entry(b, key, KIND_BYTES, list);
    if (p == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "Example feature '%s': out of memory", key);
    for (size_t i = 0; i < n; i++) {
        *p++ = 0x0a;
        p = put_varint(p, len[i]);
        if (len[i])
            memcpy(p, v[i], len[i]);
        p += len[i];
    }
    return FLOE_OK;
}

floe_status floe_example_builder_serialize(floe_example_builder *b, const void **data,
                                           size_t *size) {
    if (data != NULL)
        *data = NULL;
    if (size != NULL)
        *size = 0;
    if (b == NULL || data == NULL || size == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_example_builder_serialize: NULL "
                              "argument");
    size_t need = 1 + varint_size(b->len) + b->len;
    if (need > b->ser_cap) {
        uint8_t *p = realloc(b->ser, need);
        if (p == NULL)
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "Example: out of memory");
        b->ser = p;
        b->ser_cap = need;
    }
    uint8_t *p = b->ser;
    *p++ = 0x0a;                      /* Example.features */
    p = put_varint(p, b->len);
    if (b->len)
        memcpy(p, b->body, b->len);
    *data = b->ser;
    *size = need;
    return FLOE_OK;
}
