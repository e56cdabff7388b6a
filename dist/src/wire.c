/*
 * wire.c - the runtime's messages (dist.proto) on the wire: packing, and unpacking with
 * every field checked as untrusted input (counts, names, dtypes, shapes, byte sizes),
 * so nothing later trusts a length it did not check.  The fuzz target
 * tests/fuzz/fuzz_dist_msg.c drives the decoders.
 */
#include <string.h>
#include <stdlib.h>

#include <floe/experimental/transport.h>
#include "dist-impl.h"

static bool name_ok(const char *s) {
    size_t n = 0;
    if (s == NULL || s[0] == '\0')
        return false;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e || n >= FLOE__DIST_MAX_NAME)
            return false;
    return true;
}

floe_status floe__dist_check_tensor(const Floe__Dist__Tensor *t, floe__dist_tensor *out) {
    int64_t count = 1;
    size_t esize;

    memset(out, 0, sizeof(*out));
    if (!name_ok(t->name))
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "tensor name is empty, too long or not printable ASCII");
    out->name = t->name;
    out->dtype = t->dtype ? floe_dtype_from_name(t->dtype) : FLOE_DTYPE_INVALID;
    esize = floe_dtype_size(out->dtype);
    if (out->dtype == FLOE_DTYPE_INVALID || out->dtype == FLOE_DTYPE_STRING ||
        out->dtype == FLOE_DTYPE_RESOURCE || esize == 0)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "tensor '%s': dtype '%.32s' is not a "
                              "fixed-size numeric type", t->name, t->dtype ? t->dtype : "");
    if (t->n_dims > FLOE_MAX_DIMS)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "tensor '%s': rank %zu > %d", t->name,
                              t->n_dims, FLOE_MAX_DIMS);
    out->ndim = (int)t->n_dims;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || t->dims[i] > FLOE__DIST_MAX_DIM)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "tensor '%s': extent %lld of axis %zu "
                                  "out of range", t->name, (long long)t->dims[i], i);
        out->dims[i] = t->dims[i];
        if (t->dims[i] != 0 && count > INT64_MAX / 16 / t->dims[i])
            return floe_set_error(FLOE_INVALID_ARGUMENT, "tensor '%s': element count overflows",
                                  t->name);
        count *= t->dims[i];
    }
    out->count = count;
    out->nbytes = (size_t)count * esize;
    if (t->data.len != out->nbytes)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "tensor '%s': %zu data bytes for shape of "
                              "%lld %s elements (%zu bytes)", t->name, t->data.len,
                              (long long)count, floe_dtype_name(out->dtype), out->nbytes);
    out->data = t->data.data;
    return FLOE_OK;
}

static floe_status check_tensors(Floe__Dist__Tensor **ts, size_t n, floe__dist_tensor **views) {
    floe__dist_tensor *v;
    floe_status st;

    if (views)
        *views = NULL;
    if (n > FLOE__DIST_MAX_TENSORS)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "%zu tensors in one message (limit %d)", n,
                              FLOE__DIST_MAX_TENSORS);
    if ((v = calloc(n ? n : 1, sizeof(*v))) == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if ((st = floe__dist_check_tensor(ts[i], &v[i])) != FLOE_OK) {
            free(v);
            return st;
        }
    }
    if (views)
        *views = v;
    else
        free(v);
    return FLOE_OK;
}

floe_status floe__dist_decode_request(const void *buf, size_t len, Floe__Dist__Request **out,
                                      floe__dist_tensor **tensors) {
    Floe__Dist__Request *r;
    floe_status st;

    *out = NULL;
    if (tensors)
        *tensors = NULL;
    r = floe__dist__request__unpack(NULL, len, buf);
    if (r == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "malformed request (%zu bytes): not a "
                              "floe.dist.Request", len);
    if (r->step < 0 || r->worker < 0 || r->worker > 65535) {
        st = floe_set_error(FLOE_INVALID_ARGUMENT, "request: step %lld or worker %d out of range",
                            (long long)r->step, r->worker);
        goto fail;
    }
    if (r->n_names > FLOE__DIST_MAX_TENSORS) {
        st = floe_set_error(FLOE_INVALID_ARGUMENT, "request: %zu names (limit %d)", r->n_names,
                            FLOE__DIST_MAX_TENSORS);
        goto fail;
    }
    for (size_t i = 0; i < r->n_names; i++) {
        if (!name_ok(r->names[i])) {
            st = floe_set_error(FLOE_INVALID_ARGUMENT, "request: name %zu is malformed", i);
            goto fail;
        }
    }
    if ((st = check_tensors(r->tensors, r->n_tensors, tensors)) != FLOE_OK)
        goto fail;
    *out = r;
    return FLOE_OK;

fail:
    floe__dist__request__free_unpacked(r, NULL);
    return st;
}

void floe__dist_request_free(Floe__Dist__Request *r) {
    if (r)
        floe__dist__request__free_unpacked(r, NULL);
}

floe_status floe__dist_decode_reply(const void *buf, size_t len, Floe__Dist__Reply **out,
                                    floe__dist_tensor **tensors) {
    Floe__Dist__Reply *r;
    floe_status st;

    *out = NULL;
    if (tensors)
        *tensors = NULL;
    r = floe__dist__reply__unpack(NULL, len, buf);
    if (r == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "malformed reply (%zu bytes)", len);
    if (r->step < 0) {
        floe__dist__reply__free_unpacked(r, NULL);
        return floe_set_error(FLOE_INVALID_ARGUMENT, "reply: negative step");
    }
    if ((st = check_tensors(r->tensors, r->n_tensors, tensors)) != FLOE_OK) {
        floe__dist__reply__free_unpacked(r, NULL);
        return st;
    }
    *out = r;
    return FLOE_OK;
}

void floe__dist_reply_free(Floe__Dist__Reply *r) {
    if (r)
        floe__dist__reply__free_unpacked(r, NULL);
}

floe_status floe__dist_pack(const ProtobufCMessage *msg, void **buf, size_t *len) {
    size_t n = protobuf_c_message_get_packed_size(msg);
    *buf = floe_transport_alloc(n);
    *len = 0;
    if (*buf == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "out of memory for a %zu-byte message", n);
    *len = protobuf_c_message_pack(msg, *buf);
    return FLOE_OK;
}
