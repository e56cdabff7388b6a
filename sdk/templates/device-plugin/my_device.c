/*
 * my_device.c - TEMPLATE: an out-of-tree device plugin.  Copy this directory, rename
 * "my_device" and "MYDEV", and replace the bodies marked DRIVER with your driver's calls
 * (cuMemAlloc, cuMemcpyHtoDAsync, cuStreamSynchronize, ...).  sdk/guides/device-plugin.md
 * explains the contract each member must keep.
 *
 * As shipped it is a working device whose "device memory" is host memory obtained
 * separately from the core's (so every copy the core makes is real), with a memory limit
 * (MYDEV_MEMORY_MB, default 256), statistics, and one kernel, AddV2 for f32 on MYDEV, so
 * that graphs run on it.  It does not set FLOE_DEVICE_HOST_MEMORY: the core treats its
 * memory as unaddressable from the host and copies through the ops below, as it would for
 * an accelerator.
 *
 * Sections: the device (state, memory, copies, synchronisation, optional members);
 * a kernel on the device; registration.
 */
#include <floe/plugin.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- The device ------------------------------------------------------------------ */

typedef struct my_dev {
    uint64_t limit;                 /* bytes; 0: none */
    atomic_uint_fast64_t in_use;
    atomic_uint_fast64_t peak;
    atomic_uint_fast64_t allocs;
    char description[96];
} my_dev;

/* Required.  @nbytes > 0; at least 64-byte aligned; FLOE_RESOURCE_EXHAUSTED with a
 * message when it cannot be had.  Thread-safe. */
static floe_status my_alloc(void *dev, size_t nbytes, void **out) {
    my_dev *d = dev;
    *out = NULL;
    /* Reserve against the limit first, so concurrent allocations cannot overshoot it. */
    uint_fast64_t now = atomic_fetch_add(&d->in_use, nbytes) + nbytes;
    if (nbytes > SIZE_MAX / 2 || (d->limit != 0 && now > d->limit)) {
        atomic_fetch_sub(&d->in_use, nbytes);
        return floe_fail(FLOE_RESOURCE_EXHAUSTED,
                         "MYDEV: out of memory allocating %zu bytes (%llu in use, limit %llu)",
                         nbytes, (unsigned long long)(now - nbytes),
                         (unsigned long long)d->limit);
    }
    /* DRIVER: the device allocation. */
    void *p = aligned_alloc(64, (nbytes + 63) & ~(size_t)63);
    if (p == NULL) {
        atomic_fetch_sub(&d->in_use, nbytes);
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "MYDEV: out of memory allocating %zu bytes",
                         nbytes);
    }
    uint_fast64_t peak = atomic_load(&d->peak);
    while (now > peak && !atomic_compare_exchange_weak(&d->peak, &peak, now))
        ;
    atomic_fetch_add(&d->allocs, 1);
    *out = p;
    return FLOE_OK;
}

/* Required.  @ptr may be NULL; @nbytes is what was asked of alloc. */
static void my_free(void *dev, void *ptr, size_t nbytes) {
    my_dev *d = dev;
    if (ptr == NULL)
        return;
    atomic_fetch_sub(&d->in_use, nbytes);
    free(ptr); /* DRIVER: the device free (after pending work on ptr, if asynchronous). */
}

/* Required copies.  n may be 0 (zero-size tensors): a no-op returning FLOE_OK.  A copy may
 * be asynchronous on the device's queue as long as synchronize() waits for it and later
 * work on the same device sees its result; host buffers passed to copy_to_device may be
 * reused by the caller as soon as the call returns (copy them, or copy synchronously). */
static floe_status my_copy_to_device(void *dev, void *dst, const void *host_src, size_t n) {
    (void)dev;
    if (n > 0)
        memcpy(dst, host_src, n); /* DRIVER: host-to-device copy */
    return FLOE_OK;
}

/* Must have completed when it returns: the caller reads @host_dst next. */
static floe_status my_copy_from_device(void *dev, void *host_dst, const void *src, size_t n) {
    (void)dev;
    if (n > 0)
        memcpy(host_dst, src, n); /* DRIVER: device-to-host copy, then wait */
    return FLOE_OK;
}

static floe_status my_copy_on_device(void *dev, void *dst, const void *src, size_t n) {
    (void)dev;
    if (n > 0)
        memmove(dst, src, n); /* DRIVER: device-to-device copy */
    return FLOE_OK;
}

/* Required: waits for all work queued on the device; errors of asynchronous work surface
 * here (FLOE_INTERNAL / FLOE_UNAVAILABLE with the driver's message). */
static floe_status my_synchronize(void *dev) {
    (void)dev;
    return FLOE_OK; /* DRIVER: wait for the device's queues */
}

/* Optional: statistics for `floe devices` and memory tooling. */
static floe_status my_memory_stats(void *dev, floe_device_memory_stats *out) {
    my_dev *d = dev;
    if (out == NULL || out->struct_size < sizeof(*out))
        return floe_fail(FLOE_INVALID_ARGUMENT, "MYDEV: memory_stats: struct_size too small");
    out->bytes_in_use = atomic_load(&d->in_use);
    out->peak_bytes_in_use = atomic_load(&d->peak);
    out->bytes_cached = 0;
    out->bytes_limit = d->limit;
    out->num_allocs = atomic_load(&d->allocs);
    return FLOE_OK;
}

/* Optional: vendor extras by name; NULL for anything unknown. */
static void *my_proc_address(void *dev, const char *symbol) {
    (void)dev;
    (void)symbol;
    return NULL;
}

/* Optional: called at floe_context_free(), before the plugin's deinit(). */
static void my_destroy(void *dev) {
    floe_free(dev);
}

static const floe_device_ops my_ops = {
    .abi_major = FLOE_PLUGIN_ABI_MAJOR,
    .abi_minor = FLOE_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(floe_device_ops),
    .alloc = my_alloc,
    .free = my_free,
    .copy_to_device = my_copy_to_device,
    .copy_from_device = my_copy_from_device,
    .copy_on_device = my_copy_on_device,
    .synchronize = my_synchronize,
    .copy_peer = NULL,
    .proc_address = my_proc_address,
    .memory_stats = my_memory_stats,
    .destroy = my_destroy,
};

/* ---- A kernel on the device ---------------------------------------------------------- */

/* AddV2 for f32 on MYDEV with NumPy broadcasting, as the CPU kernel does: a kernel on a
 * device must accept every input the op accepts elsewhere, or placement would move a
 * working graph onto a device that fails it (`floe conformance` checks this against the
 * op on CPU:0).  Device kernels address tensors with floe_tensor_device_data():
 * floe_tensor_data() is NULL for device memory. */
static floe_status my_add_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *x = floe_kernel_input(kc, 0), *y = floe_kernel_input(kc, 1), *z = NULL;
    int64_t shape[FLOE_MAX_DIMS], xs[FLOE_MAX_DIMS], ys[FLOE_MAX_DIMS];
    int nx = floe_tensor_ndim(x), ny = floe_tensor_ndim(y), nd = nx > ny ? nx : ny;
    floe_status st;

    (void)state;
    /* Output shape and per-axis input strides (0 along broadcast axes), right-aligned. */
    int64_t sx = 1, sy = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int ix = i - (nd - nx), iy = i - (nd - ny);
        int64_t dx = ix >= 0 ? floe_tensor_dim(x, ix) : 1, dy = iy >= 0 ? floe_tensor_dim(y, iy) : 1;
        if (dx != dy && dx != 1 && dy != 1)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "MYDEV AddV2: incompatible shapes: dimension %d is %lld and %lld", i,
                             (long long)dx, (long long)dy);
        shape[i] = dx == 1 ? dy : dx;
        xs[i] = dx == 1 ? 0 : sx;
        ys[i] = dy == 1 ? 0 : sy;
        sx *= dx;
        sy *= dy;
    }
    st = floe_kernel_alloc_output(kc, 0, shape, nd, &z);
    if (st != FLOE_OK)
        return st;
    int64_t n = floe_tensor_num_elements(z);
    if (n == 0)
        return FLOE_OK;
    const float *a = floe_tensor_device_data(x), *b = floe_tensor_device_data(y);
    float *c = floe_tensor_device_data(z);
    for (int64_t i = 0; i < n; i++) { /* DRIVER: launch on the device's queue */
        int64_t rem = i, oa = 0, ob = 0;
        for (int k = nd - 1; k >= 0; k--) {
            int64_t coord = rem % shape[k];
            rem /= shape[k];
            oa += coord * xs[k];
            ob += coord * ys[k];
        }
        c[i] = a[oa] + b[ob];
    }
    return FLOE_OK;
}

static const char *const f32_only[] = {"T: {f32}", NULL};

static const floe_kernel_def my_add_kernel = {
    .struct_size = sizeof(floe_kernel_def),
    .op = "AddV2",
    .device_type = "MYDEV",
    .constraints = f32_only,
    .compute = my_add_compute,
};

/* ---- Registration --------------------------------------------------------------- */

/* Optional: can this machine run the plugin?  0 skips it, with the note as the reason
 * (`floe plugins` shows it).  DRIVER: probe for the driver and a device here. */
static int my_score(floe_plugin *self) {
    (void)self;
    return 1;
}

static floe_status my_device_init(floe_plugin *self, void **user) {
    floe_device_desc desc;
    floe_status st;
    const char *env = getenv("MYDEV_MEMORY_MB");

    *user = NULL;
    my_dev *d = floe_alloc(sizeof(*d), 0);
    if (d == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "my_device: out of memory");
    memset(d, 0, sizeof(*d));
    d->limit = (uint64_t)(env != NULL && atoi(env) > 0 ? atoi(env) : 256) << 20;
    strcpy(d->description, "MYDEV: template device (host-backed)");

    memset(&desc, 0, sizeof(desc));
    desc.struct_size = sizeof(desc);
    desc.type = "MYDEV";
    desc.index = 0;
    desc.priority = 50;     /* between CPU (0) and GPUs (100): preferred when it has the kernel */
    desc.flags = 0;         /* device memory: the core copies through the ops */
    desc.description = d->description;
    desc.memory_bytes = d->limit;
    desc.ops = &my_ops;
    desc.state = d;
    if ((st = floe_register_device(self, &desc)) != FLOE_OK ||
        (st = floe_register_kernel(self, &my_add_kernel)) != FLOE_OK) {
        floe_free(d); /* init failed: the core calls no destroy(), we free what we made */
        return st;
    }
    floe_set_note(self, "%s, %llu MiB", d->description, (unsigned long long)(d->limit >> 20));
    return FLOE_OK;
}

FLOE_PLUGIN_DEFINE_FULL(my_device, "0.1.0", "Your Name", "Apache-2.0",
                        "MYDEV (SDK device-plugin template)", NULL, my_score, my_device_init,
                        NULL)
