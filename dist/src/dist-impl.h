/*
 * dist-impl.h - libfloe_dist's private declarations: the wire (wire.c), shared by the
 * parameter server (ps.c), the worker (worker.c) and the fuzz target.
 */
#ifndef FLOE_DIST_IMPL_H
#define FLOE_DIST_IMPL_H

#include <stdbool.h>
#include <stdio.h>
#include <floe/dist.h>
#include "dist.pb-c.h"

/* Limits on what a message from the network may hold. */
#define FLOE__DIST_MAX_TENSORS 4096
#define FLOE__DIST_MAX_NAME 256
#define FLOE__DIST_MAX_DIM (INT64_C(1) << 40)

/* A tensor of a decoded message, checked: name, dtype, shape, and data of exactly the
 * shape's byte size (lent: points into the message). */
typedef struct floe__dist_tensor {
    const char *name;
    floe_dtype dtype;
    int ndim;
    int64_t dims[FLOE_MAX_DIMS];
    int64_t count;           /* elements */
    const void *data;
    size_t nbytes;
} floe__dist_tensor;

/* Unpacks and validates a Request (@len bytes of untrusted input).  On success *@out
 * (free with floe__dist_request_free) has every tensor checked and *@tensors (nullable
 * out, malloc'd, free()) their decoded views.  FLOE_INVALID_ARGUMENT with the reason. */
floe_status floe__dist_decode_request(const void *buf, size_t len, Floe__Dist__Request **out,
                                      floe__dist_tensor **tensors);
void floe__dist_request_free(Floe__Dist__Request *r);
floe_status floe__dist_decode_reply(const void *buf, size_t len, Floe__Dist__Reply **out,
                                    floe__dist_tensor **tensors);
void floe__dist_reply_free(Floe__Dist__Reply *r);
/* Checks one tensor of a message into @out. */
floe_status floe__dist_check_tensor(const Floe__Dist__Tensor *t, floe__dist_tensor *out);

/* Packs @msg into a floe_transport_alloc'd buffer. */
floe_status floe__dist_pack(const ProtobufCMessage *msg, void **buf, size_t *len);

/* cluster.c: finds the transport of @o (NULL: defaults) and applies its options. */
#include <floe/experimental/transport.h>
floe_status floe__dist_transport(floe_context *ctx, const floe_dist_options *o,
                                 floe_transport **out);

#endif
