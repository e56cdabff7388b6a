/*
 * variable.c - resource handles, the per-session resource manager and resource
 * variables.
 *
 * A resource handle is a scalar RESOURCE tensor in host memory whose one element is a
 * pointer to a floe_variable record of the session that made it; the record names the
 * container, the shared name, the dtype and the shape the handle declared.  Records
 * are kept by the session's resource manager, keyed by container and name, and live
 * until the session is freed, so variables persist across runs.  The manager also
 * indexes records by address: a handle is only dereferenced after the manager has
 * confirmed it is one of its own, so a handle fed from another (perhaps freed)
 * session is rejected instead of followed.
 *
 * A variable's value is guarded by a reader-writer lock that kernels take through
 * host->variable_lock.  value_for_update copies a value that others still reference
 * (copy on write), so a reader holding the old tensor keeps seeing the old values.
 *
 * Sections: the resource manager; handles and lookups (kernel ctx members); variable
 * members.
 */
#include "exec-impl.h"

#include <stdio.h>
#include <string.h>

/* ---- The resource manager ---------------------------------------------------------- */

static uint64_t key_hash(const char *container, const char *name) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = container; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull;
    for (const char *p = name; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static uint64_t ptr_hash(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

floe_status floe__resource_mgr_init(floe__resource_mgr *rm) {
    memset(rm, 0, sizeof(*rm));
    if (pthread_mutex_init(&rm->lock, NULL) != 0)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "cannot create a mutex");
    return FLOE_OK;
}

static void variable_free(floe_variable *v) {
    floe_tensor_unref(v->value);
    pthread_rwlock_destroy(&v->lock);
    floe__free(v->container);
    floe__free(v->name);
    floe__free(v);
}

void floe__resource_mgr_deinit(floe__resource_mgr *rm) {
    for (int i = 0; i < rm->cap; i++)
        if (rm->by_ptr[i] != NULL)
            variable_free(rm->by_ptr[i]);
    floe__free(rm->by_name);
    floe__free(rm->by_ptr);
    pthread_mutex_destroy(&rm->lock);
    memset(rm, 0, sizeof(*rm));
}

static void put_name(floe_variable **table, int cap, floe_variable *v) {
    unsigned mask = (unsigned)cap - 1;
    unsigned i = (unsigned)key_hash(v->container, v->name) & mask;
    while (table[i] != NULL)
        i = (i + 1) & mask;
    table[i] = v;
}

static void put_ptr(floe_variable **table, int cap, floe_variable *v) {
    unsigned mask = (unsigned)cap - 1;
    unsigned i = (unsigned)ptr_hash(v) & mask;
    while (table[i] != NULL)
        i = (i + 1) & mask;
    table[i] = v;
}

/* Under rm->lock. */
static floe_variable *find_name(const floe__resource_mgr *rm, const char *container,
                                const char *name) {
    if (rm->cap == 0)
        return NULL;
    unsigned mask = (unsigned)rm->cap - 1;
    for (unsigned i = (unsigned)key_hash(container, name) & mask;; i = (i + 1) & mask) {
        floe_variable *v = rm->by_name[i];
        if (v == NULL)
            return NULL;
        if (strcmp(v->name, name) == 0 && strcmp(v->container, container) == 0)
            return v;
    }
}

/* Under rm->lock.  Only compares addresses: @p may be dangling. */
static bool has_ptr(const floe__resource_mgr *rm, const void *p) {
    if (rm->cap == 0)
        return false;
    unsigned mask = (unsigned)rm->cap - 1;
    for (unsigned i = (unsigned)ptr_hash(p) & mask;; i = (i + 1) & mask) {
        if (rm->by_ptr[i] == NULL)
            return false;
        if ((const void *)rm->by_ptr[i] == p)
            return true;
    }
}

/* Under rm->lock: inserts @v, growing both tables (load <= 1/2). */
static floe_status insert(floe__resource_mgr *rm, floe_variable *v) {
    if ((rm->count + 1) * 2 > rm->cap) {
        int cap = rm->cap != 0 ? rm->cap * 2 : 16;
        floe_variable **bn = floe__calloc((size_t)cap, sizeof(*bn));
        floe_variable **bp = floe__calloc((size_t)cap, sizeof(*bp));
        if (bn == NULL || bp == NULL) {
            floe__free(bn);
            floe__free(bp);
            return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
        }
        for (int i = 0; i < rm->cap; i++) {
            if (rm->by_ptr[i] != NULL) {
                put_name(bn, cap, rm->by_ptr[i]);
                put_ptr(bp, cap, rm->by_ptr[i]);
            }
        }
        floe__free(rm->by_name);
        floe__free(rm->by_ptr);
        rm->by_name = bn;
        rm->by_ptr = bp;
        rm->cap = cap;
    }
    put_name(rm->by_name, rm->cap, v);
    put_ptr(rm->by_ptr, rm->cap, v);
    rm->count++;
    return FLOE_OK;
}

static floe_status variable_new(struct floe_session *s, const char *container, const char *name,
                                floe_dtype dtype, const floe_shape *shape, floe_variable **out) {
    floe_variable *v = floe__calloc(1, sizeof(*v));

    *out = NULL;
    if (v == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    v->container = floe__strdup(container);
    v->name = floe__strdup(name);
    if (v->container == NULL || v->name == NULL)
        goto fail_free;
    if (pthread_rwlock_init(&v->lock, NULL) != 0)
        goto fail_free;
    v->dtype = dtype;
    v->shape = *shape;
    v->session = s;
    *out = v;
    return FLOE_OK;

fail_free:
    floe__free(v->container);
    floe__free(v->name);
    floe__free(v);
    return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
}

/* ---- Handles and lookups ---------------------------------------------------------- */

static bool shapes_compatible(const floe_shape *a, const floe_shape *b) {
    if (a->ndim < 0 || b->ndim < 0)
        return true;
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] >= 0 && b->dims[i] >= 0 && a->dims[i] != b->dims[i])
            return false;
    return true;
}

/* Finds or makes the record for (@container, @name), checking the declared type. */
static floe_status lookup_record(struct floe_session *s, const char *container, const char *name,
                                 floe_dtype dtype, const floe_shape *shape, floe_variable **out) {
    floe__resource_mgr *rm = &s->resources;
    floe_variable *v;
    floe_status st = FLOE_OK;

    pthread_mutex_lock(&rm->lock);
    v = find_name(rm, container, name);
    if (v != NULL) {
        if (v->dtype != dtype || !shapes_compatible(&v->shape, shape))
            st = floe__fail(FLOE_INVALID_ARGUMENT,
                            "resource '%s' in container '%s' was declared with dtype %s; this "
                            "handle declares %s or an incompatible shape",
                            name, container, floe_dtype_name(v->dtype), floe_dtype_name(dtype));
    } else {
        st = variable_new(s, container, name, dtype, shape, &v);
        if (st == FLOE_OK) {
            st = insert(rm, v);
            if (st != FLOE_OK) {
                variable_free(v);
                v = NULL;
            }
        }
    }
    pthread_mutex_unlock(&rm->lock);
    *out = st == FLOE_OK ? v : NULL;
    return st;
}

floe_status floe__kernel_resource_handle(floe_kernel_ctx *kc, const char *container,
                                         const char *shared_name, floe_dtype dtype,
                                         const floe_shape *shape, floe_tensor **out) {
    floe_shape sh;
    floe_variable *v;
    floe_tensor *t;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "resource_handle: out is NULL");
    *out = NULL;
    if (kc == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "resource_handle: kernel context is NULL");
    if (!floe__dtype_valid(dtype) || dtype == FLOE_DTYPE_INVALID)
        return floe__fail(FLOE_INVALID_ARGUMENT, "resource_handle: invalid dtype %d", (int)dtype);
    memset(&sh, 0, sizeof(sh));
    sh.ndim = -1;
    if (shape != NULL) {
        if (shape->ndim < -1 || shape->ndim > FLOE_MAX_DIMS)
            return floe__fail(FLOE_INVALID_ARGUMENT, "resource_handle: bad rank %d",
                              (int)shape->ndim);
        sh.ndim = shape->ndim;
        for (int i = 0; i < shape->ndim; i++)
            sh.dims[i] = shape->dims[i];
    }
    if (container == NULL)
        container = "";
    if (shared_name == NULL || shared_name[0] == '\0')
        shared_name = kc->node->name;
    st = lookup_record(kc->session, container, shared_name, dtype, &sh, &v);
    if (st != FLOE_OK)
        return st;
    st = floe__tensor_new_on(NULL, FLOE_DTYPE_RESOURCE, NULL, 0, &t);
    if (st != FLOE_OK)
        return st;
    memcpy(t->data, &v, sizeof(v));
    *out = t;
    return FLOE_OK;
}

floe_status floe__kernel_variable(floe_kernel_ctx *kc, const floe_tensor *handle, int create,
                                  floe_variable **out) {
    floe__resource_mgr *rm;
    floe_variable *v;
    floe_status st = FLOE_OK;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "variable: out is NULL");
    *out = NULL;
    if (kc == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "variable: kernel context is NULL");
    if (handle == NULL || handle->dtype != FLOE_DTYPE_RESOURCE || handle->num_elements != 1 ||
        handle->data == NULL || (handle->buf != NULL && !floe__device_is_host(handle->buf->device)))
        return floe__fail(FLOE_INVALID_ARGUMENT, "not a resource handle (dtype %s)",
                          floe_dtype_name(handle != NULL ? handle->dtype : FLOE_DTYPE_INVALID));
    memcpy(&v, handle->data, sizeof(v));
    rm = &kc->session->resources;
    pthread_mutex_lock(&rm->lock);
    if (!has_ptr(rm, v)) {
        st = floe__fail(FLOE_INVALID_ARGUMENT,
                        "resource handle does not belong to this session");
    } else if (!v->created) {
        if (create)
            v->created = true;
        else
            st = floe__fail(FLOE_NOT_FOUND, "variable '%s' (container '%s') does not exist",
                            v->name, v->container);
    }
    pthread_mutex_unlock(&rm->lock);
    if (st == FLOE_OK)
        *out = v;
    return st;
}

/* ---- Variables ------------------------------------------------------------------------- */

void floe__variable_lock(floe_variable *v, int exclusive) {
    if (v == NULL)
        return;
    if (exclusive)
        pthread_rwlock_wrlock(&v->lock);
    else
        pthread_rwlock_rdlock(&v->lock);
}

void floe__variable_unlock(floe_variable *v) {
    if (v != NULL)
        pthread_rwlock_unlock(&v->lock);
}

floe_tensor *floe__variable_value(floe_variable *v) {
    return v != NULL ? v->value : NULL;
}

/* True when @t fits the declared shape @s (unknown rank or extents match anything). */
static bool shape_compatible(const floe_shape *s, const floe_tensor *t) {
    if (s->ndim < 0)
        return true;
    if (s->ndim != t->ndim)
        return false;
    for (int i = 0; i < s->ndim; i++)
        if (s->dims[i] >= 0 && s->dims[i] != t->dims[i])
            return false;
    return true;
}

static void shape_format(const floe_shape *s, char *buf, size_t len) {
    size_t pos = 0;
    if (s->ndim < 0) {
        snprintf(buf, len, "<unknown>");
        return;
    }
    pos += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < s->ndim && pos < len; i++) {
        if (s->dims[i] < 0)
            pos += (size_t)snprintf(buf + pos, len - pos, "%s?", i ? "," : "");
        else
            pos += (size_t)snprintf(buf + pos, len - pos, "%s%lld", i ? "," : "",
                                    (long long)s->dims[i]);
    }
    if (pos < len)
        snprintf(buf + pos, len - pos, "]");
}

floe_status floe__variable_assign(floe_variable *v, floe_tensor *value) {
    if (v == NULL || value == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "variable_assign: NULL argument");
    if (value->dtype != v->dtype)
        return floe__fail(FLOE_INVALID_ARGUMENT, "variable '%s' has dtype %s; cannot assign %s",
                          v->name, floe_dtype_name(v->dtype), floe_dtype_name(value->dtype));
    if (!shape_compatible(&v->shape, value)) {
        char want[160], got[160];
        shape_format(&v->shape, want, sizeof(want));
        floe_shape vs = floe__tensor_fshape(value);
        shape_format(&vs, got, sizeof(got));
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "variable '%s' was declared with shape %s; cannot assign a value of "
                          "shape %s", v->name, want, got);
    }
    floe_tensor_ref(value);
    floe_tensor_unref(v->value);
    v->value = value;
    return FLOE_OK;
}

floe_status floe__variable_value_for_update(floe_variable *v, floe_tensor **out) {
    floe_tensor *copy;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "variable_value_for_update: out is NULL");
    *out = NULL;
    if (v == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "variable_value_for_update: variable is NULL");
    if (v->value == NULL)
        return floe__fail(FLOE_FAILED_PRECONDITION, "variable '%s' (container '%s') is uninitialised",
                          v->name, v->container);
    if (!floe__tensor_is_exclusive(v->value)) {
        st = floe__tensor_copy_to(v->value, v->value->buf != NULL ? v->value->buf->device : NULL,
                                  &copy);
        if (st != FLOE_OK)
            return st;
        floe_tensor_unref(v->value);
        v->value = copy;
    }
    *out = v->value;
    return FLOE_OK;
}

floe_dtype floe__variable_dtype(const floe_variable *v) {
    return v != NULL ? v->dtype : FLOE_DTYPE_INVALID;
}
