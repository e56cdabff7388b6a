/*
 * tensor.c - refcounted buffers and tensors.
 *
 * Memory layout.  A tensor is made with one allocation, a "block" holding the tensor,
 * its buffer and, for host tensors, the data itself at the next 64-byte boundary:
 *
 *     [ floe_tensor | floe__buffer | pad to 64 | data ... ]
 *
 * The block comes from plain floe__malloc (padded by 63 bytes) rather than an aligned
 * allocator: small mallocs hit the C library's per-thread cache, which makes a tensor
 * for every node output of every run cheap (posix_memalign costs several times more).
 *
 * The block belongs to its buffer: the tensor that made it (the "owner", recognised by
 * t->buf pointing just behind t inside the same block) only drops its buffer reference
 * when it dies, and the buffer frees the whole block when its last reference goes.
 * Views that share a buffer (reshapes, floe__tensor_new_view) are small separate
 * allocations holding a buffer reference.  Device tensors keep the data in device
 * memory (floe__device_alloc) and only the header in the block; wrapped and DLPack
 * tensors keep foreign data released through buf->dealloc.  STRING buffers own the
 * bytes of their elements and free them first.
 *
 * Sections: blocks and buffers, construction, references and getters, strings,
 * copies and reshapes.
 */
#include "core-impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define FLOE__TENSOR_ALIGN 64
/* Host-device tensors of at least this size use the device's allocator. */
#define FLOE__DEVICE_POOL_MIN_BYTES ((size_t)64 * 1024)

typedef struct tensor_block {
    struct floe_tensor t;
    floe__buffer b;
} tensor_block;

/* ---- Blocks and buffers ------------------------------------------------------------- */

static inline bool tensor_owns_block(const floe_tensor *t) {
    return (uintptr_t)t->buf == (uintptr_t)t + offsetof(tensor_block, b);
}

static void buffer_free_strings(floe__buffer *b) {
    floe_tstring *s = b->data;
    size_t n = b->nbytes / sizeof(floe_tstring);
    if (s == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        floe__free((void *)s[i].data);
}

static void buffer_release(floe__buffer *b) {
    if (atomic_fetch_sub_explicit(&b->refcount, 1, memory_order_acq_rel) != 1)
        return;
    if (b->dtype == FLOE_DTYPE_STRING)
        buffer_free_strings(b);
    if (b->device != NULL)
        floe__device_free(b->device, b->data, b->nbytes);
    else if (b->dealloc != NULL)
        b->dealloc(b->data, b->nbytes, b->dealloc_arg);
    /* Every buffer lives in the block of the tensor that created it. */
    floe__free((char *)b - offsetof(tensor_block, b));
}

static void format_shape(char *buf, size_t len, const int64_t *shape, int ndim) {
    size_t pos = 0;
    int n;

    if (len == 0)
        return;
    buf[0] = '\0';
    if (ndim < 0 || (ndim > 0 && shape == NULL)) {
        snprintf(buf, len, "<unknown>");
        return;
    }
    n = snprintf(buf, len, "[");
    pos = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < ndim && i < FLOE_MAX_DIMS && pos < len; i++) {
        n = snprintf(buf + pos, len - pos, "%s%" PRId64, i > 0 ? ", " : "", shape[i]);
        if (n < 0)
            return;
        pos += (size_t)n;
    }
    if (pos < len)
        snprintf(buf + pos, len - pos, "]");
}

static void tensor_init_header(floe_tensor *t, floe__buffer *buf, floe_dtype dtype,
                               const int64_t *shape, int ndim, int64_t num_elements,
                               size_t nbytes) {
    atomic_init(&t->refcount, 1);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->dims[i] = shape[i];
    for (int i = ndim; i < FLOE_MAX_DIMS; i++)
        t->dims[i] = 0;
    t->num_elements = num_elements;
    t->nbytes = nbytes;
    t->buf = buf;
    t->data = num_elements > 0 ? buf->data : NULL;
}

/*
 * Allocates a block for a tensor of the checked shape; @inline_bytes of data are
 * placed in the block (0 for none).  The buffer's data, device and dealloc are left
 * for the caller to set before the tensor header is initialised.
 */
static tensor_block *block_alloc(size_t inline_bytes) {
    size_t size = sizeof(tensor_block);
    if (inline_bytes > 0) {
        if (inline_bytes > SIZE_MAX - size - (FLOE__TENSOR_ALIGN - 1))
            return NULL;
        size += (FLOE__TENSOR_ALIGN - 1) + inline_bytes;
    }
    tensor_block *blk = floe__malloc(size);
    if (blk == NULL)
        return NULL;
    atomic_init(&blk->b.refcount, 1);
    blk->b.data = NULL;
    if (inline_bytes > 0) {
        uintptr_t p = (uintptr_t)(blk + 1);
        p = (p + FLOE__TENSOR_ALIGN - 1) & ~(uintptr_t)(FLOE__TENSOR_ALIGN - 1);
        blk->b.data = (void *)p;
    }
    blk->b.nbytes = inline_bytes;
    blk->b.device = NULL;
    blk->b.dealloc = NULL;
    blk->b.dealloc_arg = NULL;
    blk->b.dtype = FLOE_DTYPE_INVALID;
    return blk;
}

static floe_status fail_oom_bytes(size_t nbytes) {
    return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory allocating a tensor of %zu bytes",
                      nbytes);
}

/* A host tensor in core memory; zero-filled when @zero or for STRING. */
static floe_status tensor_new_host(floe_dtype dtype, const int64_t *shape, int ndim, bool zero,
                                   floe_tensor **out) {
    int64_t count;
    size_t nbytes;
    floe_status st = floe__shape_check(dtype, shape, ndim, &count, &nbytes);
    if (st != FLOE_OK)
        return st;
    tensor_block *blk = block_alloc(nbytes);
    if (blk == NULL)
        return fail_oom_bytes(nbytes);
    blk->b.dtype = dtype;
    if ((zero || dtype == FLOE_DTYPE_STRING) && nbytes > 0)
        memset(blk->b.data, 0, nbytes);
    tensor_init_header(&blk->t, &blk->b, dtype, shape, ndim, count, nbytes);
    *out = &blk->t;
    return FLOE_OK;
}

/* A tensor whose data lives in device memory. */
static floe_status tensor_new_device(floe_device *dev, floe_dtype dtype, const int64_t *shape,
                                     int ndim, floe_tensor **out) {
    int64_t count;
    size_t nbytes;
    void *data = NULL;
    floe_status st = floe__shape_check(dtype, shape, ndim, &count, &nbytes);
    if (st != FLOE_OK)
        return st;
    if (dtype == FLOE_DTYPE_STRING)
        return floe__fail(FLOE_INVALID_ARGUMENT, "string tensors cannot live on device %s",
                          dev->name);
    tensor_block *blk = block_alloc(0);
    if (blk == NULL)
        return fail_oom_bytes(sizeof(tensor_block));
    if (nbytes > 0) {
        st = floe__device_alloc(dev, nbytes, &data);
        if (st != FLOE_OK)
            goto fail_free_block;
    }
    blk->b.data = data;
    blk->b.nbytes = nbytes;
    blk->b.device = dev;   /* also without elements: the tensor still reports its device */
    blk->b.dtype = dtype;
    tensor_init_header(&blk->t, &blk->b, dtype, shape, ndim, count, nbytes);
    *out = &blk->t;
    return FLOE_OK;

fail_free_block:
    floe__free(blk);
    return st;
}

/* ---- Construction ------------------------------------------------------------------ */

floe_status floe__tensor_new_on(floe_device *dev, floe_dtype dtype, const int64_t *shape,
                                int ndim, floe_tensor **out) {
    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (dev == NULL)
        return tensor_new_host(dtype, shape, ndim, false, out);
    if (floe__device_is_host(dev)) {
        /* Small host tensors live in one malloc'd block with their header (cheapest for
         * the executor's tiny outputs); large ones come from the device's caching pool,
         * so a training step does not page-fault fresh memory for every activation. */
        int64_t count;
        size_t nbytes;
        if (dtype == FLOE_DTYPE_STRING ||
            floe__shape_check(dtype, shape, ndim, &count, &nbytes) != FLOE_OK ||
            nbytes < FLOE__DEVICE_POOL_MIN_BYTES)
            return tensor_new_host(dtype, shape, ndim, false, out);
    }
    return tensor_new_device(dev, dtype, shape, ndim, out);
}

floe_status floe_tensor_new(floe_dtype dtype, const int64_t *shape, int ndim, floe_tensor **out) {
    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_new: out is NULL");
    *out = NULL;
    if (dtype == FLOE_DTYPE_RESOURCE)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "floe_tensor_new: resource tensors are made by the runtime only");
    return tensor_new_host(dtype, shape, ndim, true, out);
}

floe_status floe_tensor_wrap(floe_dtype dtype, const int64_t *shape, int ndim, void *data,
                             size_t nbytes, floe_deallocator dealloc, void *arg,
                             floe_tensor **out) {
    int64_t count;
    size_t need;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_wrap: out is NULL");
    *out = NULL;
    if (dtype == FLOE_DTYPE_STRING || dtype == FLOE_DTYPE_RESOURCE)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_wrap: cannot wrap %s tensors",
                          floe_dtype_name(dtype));
    st = floe__shape_check(dtype, shape, ndim, &count, &need);
    if (st != FLOE_OK) {
        floe__error_prefix("floe_tensor_wrap: ");
        return st;
    }
    if (data == NULL && need > 0)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_wrap: data is NULL for %zu bytes",
                          need);
    if (nbytes < need) {
        char s[128];
        format_shape(s, sizeof(s), shape, ndim);
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "floe_tensor_wrap: nbytes %zu is less than the %zu bytes of %s %s",
                          nbytes, need, floe_dtype_name(dtype), s);
    }
    tensor_block *blk = block_alloc(0);
    if (blk == NULL)
        return fail_oom_bytes(sizeof(tensor_block));
    blk->b.data = data;
    blk->b.nbytes = nbytes;
    blk->b.dealloc = dealloc;
    blk->b.dealloc_arg = arg;
    blk->b.dtype = dtype;
    tensor_init_header(&blk->t, &blk->b, dtype, shape, ndim, count, need);
    *out = &blk->t;
    return FLOE_OK;
}

floe_status floe_tensor_new_copy(floe_dtype dtype, const int64_t *shape, int ndim,
                                 const void *src, size_t nbytes, floe_tensor **out) {
    floe_tensor *t = NULL;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_new_copy: out is NULL");
    *out = NULL;
    if (dtype == FLOE_DTYPE_STRING || dtype == FLOE_DTYPE_RESOURCE)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "floe_tensor_new_copy: cannot copy raw bytes into a %s tensor",
                          floe_dtype_name(dtype));
    st = tensor_new_host(dtype, shape, ndim, false, &t);
    if (st != FLOE_OK)
        return st;
    if (nbytes != t->nbytes) {
        char s[128];
        format_shape(s, sizeof(s), shape, ndim);
        st = floe__fail(FLOE_INVALID_ARGUMENT,
                        "floe_tensor_new_copy: %zu bytes given for %s %s of %zu bytes", nbytes,
                        floe_dtype_name(dtype), s, t->nbytes);
        goto fail_unref;
    }
    if (nbytes > 0) {
        if (src == NULL) {
            st = floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_new_copy: src is NULL");
            goto fail_unref;
        }
        memcpy(t->data, src, nbytes);
    }
    *out = t;
    return FLOE_OK;

fail_unref:
    floe_tensor_unref(t);
    return st;
}

floe_status floe_tensor_new_scalar_f32(float v, floe_tensor **out) {
    return floe_tensor_new_copy(FLOE_DTYPE_F32, NULL, 0, &v, sizeof(v), out);
}

floe_status floe_tensor_new_scalar_i32(int32_t v, floe_tensor **out) {
    return floe_tensor_new_copy(FLOE_DTYPE_I32, NULL, 0, &v, sizeof(v), out);
}

floe_status floe_tensor_new_scalar_i64(int64_t v, floe_tensor **out) {
    return floe_tensor_new_copy(FLOE_DTYPE_I64, NULL, 0, &v, sizeof(v), out);
}

floe_status floe__tensor_new_view(floe__buffer *buf, floe_dtype dtype, const int64_t *shape,
                                  int ndim, floe_tensor **out) {
    int64_t count;
    size_t nbytes;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (buf == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "buffer is NULL");
    st = floe__shape_check(dtype, shape, ndim, &count, &nbytes);
    if (st != FLOE_OK)
        return st;
    if ((dtype == FLOE_DTYPE_STRING) != (buf->dtype == FLOE_DTYPE_STRING))
        return floe__fail(FLOE_INVALID_ARGUMENT, "cannot view a %s buffer as %s",
                          floe_dtype_name(buf->dtype), floe_dtype_name(dtype));
    if (nbytes > buf->nbytes)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "a view of %zu bytes does not fit in a buffer of %zu bytes", nbytes,
                          buf->nbytes);
    floe_tensor *t = floe__malloc(sizeof(*t));
    if (t == NULL)
        return fail_oom_bytes(sizeof(*t));
    atomic_fetch_add_explicit(&buf->refcount, 1, memory_order_relaxed);
    tensor_init_header(t, buf, dtype, shape, ndim, count, nbytes);
    *out = t;
    return FLOE_OK;
}

/* ---- References and getters ---------------------------------------------------------- */

floe_tensor *floe_tensor_ref(floe_tensor *t) {
    if (t != NULL)
        atomic_fetch_add_explicit(&t->refcount, 1, memory_order_relaxed);
    return t;
}

void floe_tensor_unref(floe_tensor *t) {
    if (t == NULL)
        return;
    if (atomic_fetch_sub_explicit(&t->refcount, 1, memory_order_acq_rel) != 1)
        return;
    if (tensor_owns_block(t)) {
        buffer_release(t->buf);   /* may free t itself */
    } else {
        floe__buffer *b = t->buf;
        floe__free(t);
        buffer_release(b);
    }
}

int floe__tensor_is_exclusive(const floe_tensor *t) {
    if (t == NULL)
        return 0;
    return atomic_load_explicit(&((floe_tensor *)t)->refcount, memory_order_acquire) == 1 &&
           atomic_load_explicit(&t->buf->refcount, memory_order_acquire) == 1;
}

floe_dtype floe_tensor_dtype(const floe_tensor *t) {
    return t != NULL ? t->dtype : FLOE_DTYPE_INVALID;
}

int floe_tensor_ndim(const floe_tensor *t) {
    return t != NULL ? t->ndim : 0;
}

int64_t floe_tensor_dim(const floe_tensor *t, int i) {
    if (t == NULL)
        return 0;
    if (i < 0)
        i += t->ndim;
    if (i < 0 || i >= t->ndim)
        return 0;
    return t->dims[i];
}

const int64_t *floe_tensor_shape(const floe_tensor *t) {
    return t != NULL ? t->dims : NULL;
}

int64_t floe_tensor_num_elements(const floe_tensor *t) {
    return t != NULL ? t->num_elements : 0;
}

size_t floe_tensor_nbytes(const floe_tensor *t) {
    return t != NULL ? t->nbytes : 0;
}

void *floe_tensor_data(const floe_tensor *t) {
    if (t == NULL || !floe__device_is_host(t->buf->device))
        return NULL;
    return t->data;
}

void *floe__tensor_device_data(const floe_tensor *t) {
    return t != NULL ? t->data : NULL;
}

floe_device *floe_tensor_device(const floe_tensor *t) {
    return t != NULL ? t->buf->device : NULL;
}

floe_shape floe__tensor_fshape(const floe_tensor *t) {
    floe_shape s;
    memset(&s, 0, sizeof(s));
    if (t == NULL) {
        s.ndim = -1;
        return s;
    }
    s.ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++)
        s.dims[i] = t->dims[i];
    return s;
}

/* ---- Strings ------------------------------------------------------------------------ */

static floe_status string_check(const floe_tensor *t, int64_t index, const char *fn) {
    if (t == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "%s: tensor is NULL", fn);
    if (t->dtype != FLOE_DTYPE_STRING)
        return floe__fail(FLOE_INVALID_ARGUMENT, "%s: tensor is %s, not string", fn,
                          floe_dtype_name(t->dtype));
    if (index < 0 || index >= t->num_elements)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "%s: index %" PRId64 " out of range for %" PRId64 " elements", fn, index,
                          t->num_elements);
    return FLOE_OK;
}

floe_status floe_tensor_set_string(floe_tensor *t, int64_t index, const void *bytes, size_t size) {
    floe_status st = string_check(t, index, "floe_tensor_set_string");
    char *copy = NULL;

    if (st != FLOE_OK)
        return st;
    if (bytes == NULL && size > 0)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_set_string: bytes is NULL");
    if (size > 0) {
        copy = floe__malloc(size);
        if (copy == NULL)
            return floe__fail(FLOE_RESOURCE_EXHAUSTED,
                              "floe_tensor_set_string: out of memory for %zu bytes", size);
        memcpy(copy, bytes, size);
    }
    floe_tstring *s = (floe_tstring *)t->data + index;
    floe__free((void *)s->data);
    s->data = copy;
    s->size = size;
    return FLOE_OK;
}

floe_status floe_tensor_get_string(const floe_tensor *t, int64_t index, const char **bytes,
                                   size_t *size) {
    if (bytes != NULL)
        *bytes = NULL;
    if (size != NULL)
        *size = 0;
    floe_status st = string_check(t, index, "floe_tensor_get_string");
    if (st != FLOE_OK)
        return st;
    if (bytes == NULL || size == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_get_string: bytes or size is NULL");
    const floe_tstring *s = (const floe_tstring *)t->data + index;
    *bytes = s->data != NULL ? s->data : "";
    *size = s->size;
    return FLOE_OK;
}

/* ---- Copies and reshapes --------------------------------------------------------------- */

/* Deep copy of the elements of a host STRING tensor into fresh host tensor @dst. */
static floe_status copy_strings(const floe_tensor *src, floe_tensor *dst) {
    const floe_tstring *s = src->data;
    for (int64_t i = 0; i < src->num_elements; i++) {
        floe_status st = floe_tensor_set_string(dst, i, s[i].data, s[i].size);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

static floe_status copy_bytes(const floe_tensor *src, floe_tensor *dst) {
    floe_device *sd = src->buf->device, *dd = dst->buf->device;
    size_t n = src->nbytes;
    floe_status st;

    if (n == 0)
        return FLOE_OK;
    if (floe__device_is_host(sd) && floe__device_is_host(dd)) {
        memcpy(dst->data, src->data, n);
        return FLOE_OK;
    }
    if (floe__device_is_host(sd))
        sd = NULL;
    if (floe__device_is_host(dd))
        dd = NULL;
    if (sd == NULL) {
        st = dd->ops.copy_to_device(dd->state, dst->data, src->data, n);
    } else if (dd == NULL) {
        st = sd->ops.copy_from_device(sd->state, dst->data, src->data, n);
    } else if (sd == dd) {
        st = sd->ops.copy_on_device(sd->state, dst->data, src->data, n);
    } else if (sd->plugin == dd->plugin && sd->ops.copy_peer != NULL) {
        st = sd->ops.copy_peer(dd->state, dst->data, sd->state, src->data, n);
    } else {
        /* Different plugins: through a host staging buffer. */
        void *tmp = floe__alloc_aligned(n, 0);
        if (tmp == NULL)
            return fail_oom_bytes(n);
        st = sd->ops.copy_from_device(sd->state, tmp, src->data, n);
        if (st == FLOE_OK)
            st = dd->ops.copy_to_device(dd->state, dst->data, tmp, n);
        floe__free_aligned(tmp);
    }
    if (st != FLOE_OK)
        floe__error_prefix("copying %zu bytes from %s to %s: ", n, sd ? sd->name : "host",
                           dd ? dd->name : "host");
    return st;
}

floe_status floe__tensor_copy_to(const floe_tensor *src, floe_device *dst_dev, floe_tensor **out) {
    floe_tensor *dst = NULL;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (src == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "source tensor is NULL");
    st = floe__tensor_new_on(dst_dev, src->dtype, src->dims, src->ndim, &dst);
    if (st != FLOE_OK)
        return st;
    if (src->dtype == FLOE_DTYPE_STRING) {
        if (src->buf->device != NULL) {
            st = floe__fail(FLOE_INTERNAL, "string tensor in device memory");
            goto fail_unref;
        }
        st = copy_strings(src, dst);
    } else {
        st = copy_bytes(src, dst);
    }
    if (st != FLOE_OK)
        goto fail_unref;
    *out = dst;
    return FLOE_OK;

fail_unref:
    floe_tensor_unref(dst);
    return st;
}

floe_status floe_tensor_to_host(const floe_tensor *t, floe_tensor **out) {
    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_to_host: out is NULL");
    *out = NULL;
    if (t == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_to_host: tensor is NULL");
    return floe__tensor_copy_to(t, NULL, out);
}

floe_status floe_tensor_reshape(floe_tensor *t, const int64_t *shape, int ndim, floe_tensor **out) {
    int64_t count;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_reshape: out is NULL");
    *out = NULL;
    if (t == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_reshape: tensor is NULL");
    st = floe__shape_check(t->dtype, shape, ndim, &count, NULL);
    if (st != FLOE_OK) {
        floe__error_prefix("floe_tensor_reshape: ");
        return st;
    }
    if (count != t->num_elements) {
        char from[128], to[128];
        format_shape(from, sizeof(from), t->dims, t->ndim);
        format_shape(to, sizeof(to), shape, ndim);
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "floe_tensor_reshape: cannot reshape %s (%" PRId64
                          " elements) to %s (%" PRId64 " elements)",
                          from, t->num_elements, to, count);
    }
    return floe__tensor_new_view(t->buf, t->dtype, shape, ndim, out);
}
