/*
 * device.c - registered devices: memory through their ops, lookup by spec, and the
 * public device introspection of floe.h.
 *
 * Devices are registered by plugins (registry.c) and live in the context's registry in
 * registration order.  A device spec is TensorFlow's device string in any of its
 * spellings ("CPU:0", "/device:CPU:0", "/cpu:0",
 * "/job:localhost/replica:0/task:0/device:GPU:1"), parsed by floe__device_spec_parse()
 * (graph.c); types compare case-insensitively.  The job, replica and task parts are
 * ignored here: every device of a context is local.
 *
 * Sections: memory; lookup; introspection (and memory statistics).
 */
#include "core-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Memory -------------------------------------------------------------------- */

floe_status floe__device_alloc(floe_device *dev, size_t nbytes, void **out) {
    floe_status st;
    void *p = NULL;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "device alloc: NULL output");
    *out = NULL;
    if (dev == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "device alloc: NULL device");
    if (nbytes == 0)
        return FLOE_OK;
    floe__fail(FLOE_OK, "%s", ""); /* so that a plugin's silence is not a stale message */
    st = dev->ops.alloc(dev->state, nbytes, &p);
    if (st != FLOE_OK) {
        if (floe_last_error()[0] == '\0')
            floe__fail(st, "device %s could not allocate %zu bytes", dev->name, nbytes);
        else
            floe__error_prefix("device %s: ", dev->name);
        return st;
    }
    if (p == NULL)
        return floe__fail(FLOE_INTERNAL, "device %s returned OK but no memory for %zu bytes",
                          dev->name, nbytes);
    *out = p;
    return FLOE_OK;
}

void floe__device_free(floe_device *dev, void *ptr, size_t nbytes) {
    if (dev == NULL || ptr == NULL)
        return;
    dev->ops.free(dev->state, ptr, nbytes);
}

bool floe__device_is_host(const floe_device *dev) {
    return dev == NULL || (dev->flags & FLOE_DEVICE_HOST_MEMORY) != 0;
}

/* ---- Lookup -------------------------------------------------------------------- */

static floe_device *find_device(const floe_context *ctx, const char *type, int index) {
    floe_device *best = NULL;
    for (int i = 0; i < ctx->reg.ndevices; i++) {
        floe_device *d = ctx->reg.devices[i];
        if ((type[0] != '\0' && strcasecmp(d->type, type) != 0) ||
            (index >= 0 && d->index != index))
            continue;
        /* Higher priority first, then the lower index; registration order on ties. */
        if (best == NULL || d->priority > best->priority ||
            (d->priority == best->priority && d->index < best->index))
            best = d;
    }
    return best;
}

floe_device *floe__registry_find_device(const floe_context *ctx, const char *type, int index) {
    if (ctx == NULL)
        return NULL;
    return find_device(ctx, type != NULL ? type : "", index);
}

/* ---- Introspection (floe.h) ---------------------------------------------------- */

static void ctx_lock(const floe_context *ctx) {
    pthread_mutex_lock((pthread_mutex_t *)&ctx->lock);
}

static void ctx_unlock(const floe_context *ctx) {
    pthread_mutex_unlock((pthread_mutex_t *)&ctx->lock);
}

int floe_context_num_devices(const floe_context *ctx) {
    int n;
    if (ctx == NULL)
        return 0;
    ctx_lock(ctx);
    n = ctx->reg.ndevices;
    ctx_unlock(ctx);
    return n;
}

floe_status floe_context_device(const floe_context *ctx, int i, floe_device_info *info) {
    floe_device_info tmp;
    const floe_device *d = NULL;
    size_t size;

    if (info == NULL || info->struct_size < sizeof(size_t))
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_context_device: info is NULL or its "
                                                 "struct_size is not set");
    size = info->struct_size < sizeof(tmp) ? info->struct_size : sizeof(tmp);
    memset(&tmp, 0, sizeof(tmp));
    tmp.struct_size = size;
    if (ctx == NULL) {
        memcpy(info, &tmp, size);
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_context_device: NULL context");
    }
    ctx_lock(ctx);
    if (i >= 0 && i < ctx->reg.ndevices)
        d = ctx->reg.devices[i];
    if (d != NULL) {
        tmp.name = d->name;
        tmp.type = d->type;
        tmp.index = d->index;
        tmp.description = d->description;
        tmp.memory_bytes = d->memory_bytes;
        tmp.plugin = d->plugin != NULL ? d->plugin->name : "core";
    }
    ctx_unlock(ctx);
    memcpy(info, &tmp, size);
    if (d == NULL)
        return floe__fail(FLOE_OUT_OF_RANGE, "device index %d out of range [0, %d)", i,
                          floe_context_num_devices(ctx));
    return FLOE_OK;
}

floe_status floe_context_find_device(const floe_context *ctx, const char *spec, floe_device **out) {
    floe__device_spec ds;
    floe_device *d;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_context_find_device: NULL output");
    *out = NULL;
    if (ctx == NULL || spec == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_context_find_device: NULL %s",
                          ctx == NULL ? "context" : "spec");
    if (floe__device_spec_parse(spec, &ds) != FLOE_OK)
        return FLOE_INVALID_ARGUMENT; /* the message quotes the spec */
    ctx_lock(ctx);
    d = find_device(ctx, ds.type, ds.index);
    ctx_unlock(ctx);
    if (d == NULL)
        return floe__fail(FLOE_NOT_FOUND,
                          "no device matches \"%s\" (%d devices registered; "
                          "`floe devices` lists them)",
                          spec, floe_context_num_devices(ctx));
    *out = d;
    return FLOE_OK;
}

floe_status floe_device_get_memory_stats(const floe_device *dev, floe_memory_stats *out) {
    floe_device_memory_stats ds;
    floe_memory_stats tmp;
    size_t size;
    floe_status st;

    if (out == NULL || out->struct_size < sizeof(size_t))
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_device_get_memory_stats: out is NULL "
                                                 "or its struct_size is not set");
    size = out->struct_size < sizeof(tmp) ? out->struct_size : sizeof(tmp);
    memset(&tmp, 0, sizeof(tmp));
    tmp.struct_size = size;
    memcpy(out, &tmp, size);
    if (dev == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_device_get_memory_stats: NULL device");
    if (dev->ops.memory_stats == NULL)
        return floe__fail(FLOE_UNIMPLEMENTED, "device %s keeps no memory statistics", dev->name);
    memset(&ds, 0, sizeof(ds));
    ds.struct_size = sizeof(ds);
    floe__fail(FLOE_OK, "%s", "");
    st = dev->ops.memory_stats(dev->state, &ds);
    if (st != FLOE_OK)
        return floe_last_error()[0] != '\0'
                   ? st
                   : floe__fail(st, "device %s: memory_stats failed", dev->name);
    tmp.bytes_in_use = ds.bytes_in_use;
    tmp.peak_bytes_in_use = ds.peak_bytes_in_use;
    tmp.bytes_cached = ds.bytes_cached;
    tmp.bytes_limit = ds.bytes_limit;
    tmp.num_allocs = ds.num_allocs;
    memcpy(out, &tmp, size);
    return FLOE_OK;
}
