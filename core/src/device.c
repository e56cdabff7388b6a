/*
 * device.c - registered devices: memory through their ops, lookup by spec, and the
 * public device introspection of floe.h.
 *
 * Devices are registered by plugins (registry.c) and live in the context's registry in
 * registration order.  A device spec is TensorFlow's device string in any of its
 * spellings: "CPU:0", "/device:CPU:0", "/cpu:0",
 * "/job:localhost/replica:0/task:0/device:GPU:1"; types compare case-insensitively.
 * The job, replica and task parts are checked for form and otherwise ignored here:
 * every device of a context is local.
 *
 * Sections: memory; spec parsing; lookup; introspection.
 */
#include "core-impl.h"

#include <ctype.h>
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
    floe__fail(FLOE_OK, "%s", "");   /* so that a plugin's silence is not a stale message */
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

/* ---- Spec parsing -------------------------------------------------------------- */

/* A device constraint: type ("" any) and index (-1 any). */
typedef struct devspec {
    char type[32];
    int index;
} devspec;

/* A decimal in [0, 1e6) from @s of length @n, or -1. */
static int parse_index(const char *s, size_t n) {
    int v = 0;
    if (n == 0 || n > 6)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "TYPE", "TYPE:IDX" or "TYPE:*" (@s of length @n) into @out. */
static bool parse_type_index(const char *s, size_t n, devspec *out) {
    const char *colon = memchr(s, ':', n);
    size_t tlen = colon != NULL ? (size_t)(colon - s) : n;

    if (tlen == 0 || tlen >= sizeof(out->type))
        return false;
    for (size_t i = 0; i < tlen; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
        out->type[i] = (char)toupper((unsigned char)s[i]);
    }
    out->type[tlen] = '\0';
    out->index = -1;
    if (colon != NULL) {
        size_t ilen = n - tlen - 1;
        if (ilen == 1 && colon[1] == '*')
            return true;
        if ((out->index = parse_index(colon + 1, ilen)) < 0)
            return false;
    }
    return true;
}

/* One "/key:value" component of a full spec. */
static bool parse_component(const char *s, size_t n, devspec *out, bool *have_device) {
    if (n > 4 && strncmp(s, "job:", 4) == 0) {
        for (size_t i = 4; i < n; i++)
            if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
                return false;
        return true;
    }
    if (n > 8 && strncmp(s, "replica:", 8) == 0)
        return parse_index(s + 8, n - 8) >= 0 || (n == 9 && s[8] == '*');
    if (n > 5 && strncmp(s, "task:", 5) == 0)
        return parse_index(s + 5, n - 5) >= 0 || (n == 6 && s[5] == '*');
    if (*have_device)
        return false;
    *have_device = true;
    if (n > 7 && strncmp(s, "device:", 7) == 0)
        return parse_type_index(s + 7, n - 7, out);
    return parse_type_index(s, n, out);   /* legacy "/cpu:0" */
}

static bool devspec_parse(const char *s, devspec *out) {
    bool have_device = false;

    out->type[0] = '\0';
    out->index = -1;
    if (s[0] == '\0')
        return true;
    if (s[0] != '/')
        return parse_type_index(s, strlen(s), out);
    while (*s == '/') {
        const char *b = s + 1, *e = strchr(b, '/');
        size_t n = e != NULL ? (size_t)(e - b) : strlen(b);
        if (!parse_component(b, n, out, &have_device))
            return false;
        s = b + n;
    }
    return *s == '\0';
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

floe_status floe_context_find_device(const floe_context *ctx, const char *spec,
                                     floe_device **out) {
    devspec ds;
    floe_device *d;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_context_find_device: NULL output");
    *out = NULL;
    if (ctx == NULL || spec == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_context_find_device: NULL %s",
                          ctx == NULL ? "context" : "spec");
    if (!devspec_parse(spec, &ds))
        return floe__fail(FLOE_INVALID_ARGUMENT, "malformed device spec \"%s\": expected "
                          "\"TYPE:INDEX\", \"/device:TYPE:INDEX\" or "
                          "\"/job:NAME/replica:N/task:N/device:TYPE:INDEX\"", spec);
    ctx_lock(ctx);
    d = find_device(ctx, ds.type, ds.index);
    ctx_unlock(ctx);
    if (d == NULL)
        return floe__fail(FLOE_NOT_FOUND, "no device matches \"%s\" (%d devices registered; "
                          "`floe devices` lists them)", spec, floe_context_num_devices(ctx));
    *out = d;
    return FLOE_OK;
}
