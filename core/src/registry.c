/*
 * registry.c - ops, kernels, gradients, devices, filesystems and transports.
 *
 * A plugin's init() registers through the host table (floe__host_register_*); each
 * definition is validated and copied into the plugin's pending registry at once, so a
 * malformed one fails the call that made it.  When init() returns FLOE_OK the loader
 * commits the pending registry into the context's with one deterministic policy: the
 * first plugin loaded wins.  A later plugin that defines an op, a device (type, index),
 * a filesystem scheme or a transport name already taken, gives a kernel the same (op,
 * device type, priority) as another plugin's, or a gradient to an op that has one, is
 * rejected as a whole, with a reason naming the thing and its owner; nothing of it
 * takes effect.  Kernels and gradients may target other plugins' ops, resolved at
 * commit; an unknown op is reported as FLOE_NOT_FOUND, on which the loader lets a
 * plugin of a discovery pass wait for the pass's later plugins (loader.c), its names
 * claimed meanwhile.
 *
 * The registry changes only while plugins load (floe_context_new(), and
 * floe_context_load_plugin() under the context's lock).  The public introspection
 * calls take the lock; the floe__registry_find_* lookups of graph building do not, so
 * an application loads plugins before building graphs on other threads.
 *
 * Sections: helpers; registration; commit; lookups; introspection (floe.h).
 */
#include "core-impl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Smallest struct sizes accepted: up to the last required member of minor 0; the
 * optional members after it are zero-filled when a plugin's struct ends earlier. */
#define END_OF(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))
#define KERNEL_DEF_MIN_SIZE END_OF(floe_kernel_def, compute)
#define DEVICE_DESC_MIN_SIZE END_OF(floe_device_desc, ops)
#define DEVICE_OPS_MIN_SIZE END_OF(floe_device_ops, synchronize)
#define FS_OPS_MIN_SIZE END_OF(floe_fs_ops, rename)
#define TRANSPORT_OPS_MIN_SIZE END_OF(floe_transport_ops, shutdown)
#define TABLE_HEADER_SIZE END_OF(floe_device_ops, struct_size)

#define MAX_SPECS 4096

/* A kernel as the registry stores it: the op is named until commit resolves it. */
typedef struct kernel_rec {
    floe__kernel k; /* first: registries hold &rec->k */
    char *op_name;
} kernel_rec;

static kernel_rec *rec_of(const floe__kernel *k) {
    return (kernel_rec *)(void *)k;
}

/* ---- Helpers ------------------------------------------------------------------- */

/* Grows *@arr (elements of @elsz) to hold at least @need. */
static bool grow(void *arr, int *cap, int need, size_t elsz) {
    void **p = arr;
    int ncap;
    void *n;

    if (need <= *cap)
        return true;
    ncap = *cap > 0 ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    if ((n = floe__realloc(*p, (size_t)ncap * elsz)) == NULL)
        return false;
    *p = n;
    *cap = ncap;
    return true;
}

/* "[A-Z][A-Z0-9_]*" (@upper) or "[a-z][a-z0-9_]*" plus @extra characters. */
static bool name_ok(const char *s, size_t maxlen, bool upper, const char *extra) {
    size_t n;
    if (s == NULL || !(upper ? isupper((unsigned char)s[0]) : islower((unsigned char)s[0])))
        return false;
    for (n = 0; s[n] != '\0'; n++) {
        unsigned char ch = (unsigned char)s[n];
        bool ok = isdigit(ch) || ch == '_' || (upper ? isupper(ch) : islower(ch)) ||
                  (extra != NULL && strchr(extra, ch) != NULL);
        if (!ok || n + 1 >= maxlen)
            return false;
    }
    return true;
}

static int count_specs(const char *const *specs) {
    int n = 0;
    if (specs != NULL)
        while (specs[n] != NULL && n <= MAX_SPECS)
            n++;
    return n;
}

/* The plugin in init() that may register, or an error. */
static floe_status check_registering(const floe_plugin *self, const char *what) {
    if (self == NULL || self->ctx == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "register_%s: NULL plugin handle", what);
    if (self->state != FLOE__PLUGIN_LOADING || self->inited)
        return floe__fail(FLOE_FAILED_PRECONDITION,
                          "plugin '%s': register_%s is allowed "
                          "only during init()",
                          self->name ? self->name : "?", what);
    return FLOE_OK;
}

/* Checks the header of a versioned ops table and copies it into @dst (of @dst_size
 * bytes), zero-filling what the plugin's older table lacks. */
static floe_status copy_table(const char *what, const void *src, uint32_t major, uint32_t max_minor,
                              size_t min_size, void *dst, size_t dst_size) {
    const floe_device_ops *h = src; /* every table starts with the same header */
    if (src == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "%s: NULL ops table", what);
    if (h->abi_major != major)
        return floe__fail(FLOE_FAILED_PRECONDITION,
                          "%s: ops table built for ABI %u.%u, "
                          "this core supports major %u",
                          what, h->abi_major, h->abi_minor, major);
    if (h->abi_minor > max_minor)
        return floe__fail(FLOE_FAILED_PRECONDITION,
                          "%s: ops table built for ABI %u.%u, "
                          "newer than this core's %u.%u",
                          what, h->abi_major, h->abi_minor, major, max_minor);
    if (h->struct_size < min_size)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "%s: ops table struct_size %zu is smaller "
                          "than its required members (%zu bytes)",
                          what, h->struct_size, min_size);
    memset(dst, 0, dst_size);
    memcpy(dst, src, h->struct_size < dst_size ? h->struct_size : dst_size);
    return FLOE_OK;
}

/* "plugin 'x' (/path)" or "the core", for conflict messages. */
static void describe_owner(const floe_plugin *p, char *buf, size_t len) {
    if (p == NULL)
        snprintf(buf, len, "the core");
    else
        snprintf(buf, len, "plugin '%s' (%s)", p->name ? p->name : "?", p->path ? p->path : "?");
}

static void kernel_free(floe__kernel *k) {
    kernel_rec *r;
    if (k == NULL)
        return;
    r = rec_of(k);
    for (int i = 0; i < k->nconstraints; i++)
        floe__free(k->constraints[i].attr);
    floe__free(k->constraints);
    for (int i = 0; i < k->nhost_memory; i++)
        floe__free(k->host_memory[i]);
    floe__free(k->host_memory);
    floe__free(k->device_type);
    floe__free(r->op_name);
    floe__free(r);
}

static void op_free(floe__op_def *op) {
    floe__op_def_deinit(op);
    floe__free(op);
}

static void device_free(floe_device *d) {
    if (d == NULL)
        return;
    floe__free(d->description);
    floe__free(d);
}

void floe__registry_deinit(floe__registry *reg) {
    if (reg == NULL)
        return;
    for (int i = 0; i < reg->nkernels; i++)
        kernel_free(reg->kernels[i]);
    for (int i = 0; i < reg->nops; i++)
        op_free(reg->ops[i]);
    for (int i = 0; i < reg->ndevices; i++)
        device_free(reg->devices[i]);
    for (int i = 0; i < reg->nfilesystems; i++)
        floe__free(reg->filesystems[i]);
    for (int i = 0; i < reg->ntransports; i++)
        floe__free(reg->transports[i]);
    for (int i = 0; i < reg->ngrads; i++)
        floe__free(reg->grads[i].op);
    floe__free(reg->kernels);
    floe__free(reg->ops);
    floe__free(reg->devices);
    floe__free(reg->filesystems);
    floe__free(reg->transports);
    floe__free(reg->grads);
    memset(reg, 0, sizeof(*reg));
}

/* ---- Registration -------------------------------------------------------------- */

static floe__op_def *find_op_in(const floe__registry *reg, const char *name) {
    int lo = 0, hi = reg->nops - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(reg->ops[mid]->name, name);
        if (c == 0)
            return reg->ops[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

/* Pending ops are kept unsorted: a linear search. */
static floe__op_def *find_pending_op(const floe__registry *reg, const char *name) {
    for (int i = 0; i < reg->nops; i++)
        if (strcmp(reg->ops[i]->name, name) == 0)
            return reg->ops[i];
    return NULL;
}

floe_status floe__host_register_op(floe_plugin *self, const floe_op_def *def) {
    floe__op_def *op;
    floe_status st;

    if ((st = check_registering(self, "op")) != FLOE_OK)
        return st;
    if ((op = floe__calloc(1, sizeof(*op))) == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_op: out of memory");
    if ((st = floe__op_def_parse(def, op)) != FLOE_OK)
        goto fail_free;
    if (find_pending_op(&self->pending, op->name) != NULL) {
        st = floe__fail(FLOE_ALREADY_EXISTS, "op '%s' registered twice by plugin '%s'", op->name,
                        self->name);
        goto fail_deinit;
    }
    if (!grow(&self->pending.ops, &self->pending.cap_ops, self->pending.nops + 1,
              sizeof(*self->pending.ops))) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_op '%s': out of memory", op->name);
        goto fail_deinit;
    }
    op->plugin = self;
    self->pending.ops[self->pending.nops++] = op;
    return FLOE_OK;

fail_deinit:
    floe__op_def_deinit(op);
fail_free:
    floe__free(op);
    return st;
}

/* "T: {f32, f64}" into constraint @i of @k. */
static floe_status parse_constraint(floe__kernel *k, const char *op, int i, const char *spec) {
    const char *colon = spec != NULL ? strchr(spec, ':') : NULL;
    const char *b = spec, *e;
    floe_status st;

    if (colon == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "kernel for op '%s': constraint \"%s\" is "
                          "not \"ATTR: {dtype, ...}\"",
                          op, spec ? spec : "(null)");
    while (*b == ' ')
        b++;
    for (e = colon; e > b && e[-1] == ' '; e--)
        ;
    if (e == b)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "kernel for op '%s': constraint \"%s\" "
                          "names no attr",
                          op, spec);
    if ((k->constraints[i].attr = floe__strndup(b, (size_t)(e - b))) == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_kernel: out of memory");
    k->nconstraints = i + 1;
    for (const char *q = k->constraints[i].attr; *q != '\0'; q++)
        if (!isalnum((unsigned char)*q) && *q != '_')
            return floe__fail(FLOE_INVALID_ARGUMENT,
                              "kernel for op '%s': constraint \"%s\" "
                              "names no attr",
                              op, spec);
    if ((st = floe__parse_type_set(colon + 1, &k->constraints[i].mask)) != FLOE_OK)
        floe__error_prefix("kernel for op '%s': constraint \"%s\": ", op, spec);
    return st;
}

static floe_status kernel_fill(floe__kernel *k, const floe_kernel_def *def) {
    int nc = count_specs(def->constraints), nh = count_specs(def->host_memory);
    floe_status st;

    if (nc > MAX_SPECS || nh > MAX_SPECS)
        return floe__fail(FLOE_INVALID_ARGUMENT, "kernel for op '%s': too many constraints",
                          def->op);
    if ((k->device_type = floe__strdup(def->device_type)) == NULL ||
        (nc > 0 && (k->constraints = floe__calloc((size_t)nc, sizeof(*k->constraints))) == NULL) ||
        (nh > 0 && (k->host_memory = floe__calloc((size_t)nh, sizeof(char *))) == NULL))
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_kernel: out of memory");
    for (int i = 0; i < nc; i++)
        if ((st = parse_constraint(k, def->op, i, def->constraints[i])) != FLOE_OK)
            return st;
    for (int i = 0; i < nh; i++) {
        if ((k->host_memory[i] = floe__strdup(def->host_memory[i])) == NULL)
            return floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_kernel: out of memory");
        k->nhost_memory = i + 1;
    }
    k->priority = def->priority;
    k->create = def->create;
    k->compute = def->compute;
    k->destroy = def->destroy;
    return FLOE_OK;
}

floe_status floe__host_register_kernel(floe_plugin *self, const floe_kernel_def *user_def) {
    floe_kernel_def def;
    kernel_rec *r;
    floe_status st;

    if ((st = check_registering(self, "kernel")) != FLOE_OK)
        return st;
    if (user_def == NULL || user_def->struct_size < KERNEL_DEF_MIN_SIZE)
        return floe__fail(FLOE_INVALID_ARGUMENT, "plugin '%s': kernel definition %s", self->name,
                          user_def == NULL ? "is NULL" : "has a too small struct_size");
    memset(&def, 0, sizeof(def));
    memcpy(&def, user_def,
           user_def->struct_size < sizeof(def) ? user_def->struct_size : sizeof(def));
    if (def.op == NULL || def.compute == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "plugin '%s': kernel definition without %s",
                          self->name, def.op == NULL ? "an op name" : "compute()");
    if (!name_ok(def.device_type, sizeof(((floe_device *)0)->type), true, NULL))
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "kernel for op '%s': device type '%s' is "
                          "malformed: expected [A-Z][A-Z0-9_]*",
                          def.op, def.device_type ? def.device_type : "(null)");
    if ((r = floe__calloc(1, sizeof(*r))) == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_kernel: out of memory");
    r->k.plugin = self;
    if ((r->op_name = floe__strdup(def.op)) == NULL) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_kernel: out of memory");
        goto fail;
    }
    if ((st = kernel_fill(&r->k, &def)) != FLOE_OK)
        goto fail;
    if (!grow(&self->pending.kernels, &self->pending.cap_kernels, self->pending.nkernels + 1,
              sizeof(*self->pending.kernels))) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_kernel: out of memory");
        goto fail;
    }
    self->pending.kernels[self->pending.nkernels++] = &r->k;
    return FLOE_OK;

fail:
    kernel_free(&r->k);
    return st;
}

floe_status floe__host_register_gradient(floe_plugin *self, const char *op, floe_grad_fn fn) {
    floe__registry *pend;
    floe_status st;
    char *name;

    if ((st = check_registering(self, "gradient")) != FLOE_OK)
        return st;
    if (op == NULL || fn == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "plugin '%s': register_gradient needs an op "
                          "name and a function",
                          self->name);
    pend = &self->pending;
    for (int i = 0; i < pend->ngrads; i++)
        if (strcmp(pend->grads[i].op, op) == 0)
            return floe__fail(FLOE_ALREADY_EXISTS,
                              "gradient of op '%s' registered twice by "
                              "plugin '%s'",
                              op, self->name);
    if ((name = floe__strdup(op)) == NULL ||
        !grow(&pend->grads, &pend->cap_grads, pend->ngrads + 1, sizeof(*pend->grads))) {
        floe__free(name);
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_gradient: out of memory");
    }
    pend->grads[pend->ngrads].op = name;
    pend->grads[pend->ngrads].fn = fn;
    pend->ngrads++;
    return FLOE_OK;
}

static floe_status check_device_desc(const floe_plugin *self, const floe_device_desc *d) {
    if (!name_ok(d->type, sizeof(((floe_device *)0)->type), true, NULL))
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "plugin '%s': device type '%s' is malformed: "
                          "expected [A-Z][A-Z0-9_]* of at most 31 characters",
                          self->name, d->type ? d->type : "(null)");
    if (d->index < 0 || d->index > 9999)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "plugin '%s': device %s index %d out of "
                          "range [0, 9999]",
                          self->name, d->type, (int)d->index);
    if ((d->flags & ~FLOE_DEVICE_HOST_MEMORY) != 0)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "plugin '%s': device %s:%d has unknown flags "
                          "0x%x",
                          self->name, d->type, (int)d->index, (unsigned)d->flags);
    for (int i = 0; i < self->pending.ndevices; i++) {
        const floe_device *o = self->pending.devices[i];
        if (strcmp(o->type, d->type) == 0 && o->index == d->index)
            return floe__fail(FLOE_ALREADY_EXISTS, "plugin '%s': device %s:%d registered twice",
                              self->name, d->type, (int)d->index);
    }
    return FLOE_OK;
}

static floe_status check_device_ops(const floe_plugin *self, const floe_device *dev) {
    const floe_device_ops *o = &dev->ops;
    const char *missing = o->alloc == NULL              ? "alloc"
                          : o->free == NULL             ? "free"
                          : o->copy_to_device == NULL   ? "copy_to_device"
                          : o->copy_from_device == NULL ? "copy_from_device"
                          : o->copy_on_device == NULL   ? "copy_on_device"
                          : o->synchronize == NULL      ? "synchronize"
                                                        : NULL;
    if (missing != NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "plugin '%s': device %s:%d: required ops "
                          "member '%s' is NULL",
                          self->name, dev->type, dev->index, missing);
    return FLOE_OK;
}

floe_status floe__host_register_device(floe_plugin *self, const floe_device_desc *user_desc) {
    floe_device_desc d;
    floe_device *dev;
    floe_status st;
    char what[96];

    if ((st = check_registering(self, "device")) != FLOE_OK)
        return st;
    if (user_desc == NULL || user_desc->struct_size < DEVICE_DESC_MIN_SIZE)
        return floe__fail(FLOE_INVALID_ARGUMENT, "plugin '%s': device description %s", self->name,
                          user_desc == NULL ? "is NULL" : "has a too small struct_size");
    memset(&d, 0, sizeof(d));
    memcpy(&d, user_desc, user_desc->struct_size < sizeof(d) ? user_desc->struct_size : sizeof(d));
    if ((st = check_device_desc(self, &d)) != FLOE_OK)
        return st;
    if ((dev = floe__calloc(1, sizeof(*dev))) == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_device: out of memory");
    snprintf(what, sizeof(what), "plugin '%s': device %s:%d", self->name, d.type, (int)d.index);
    if ((st = copy_table(what, d.ops, FLOE_PLUGIN_ABI_MAJOR, FLOE_PLUGIN_ABI_MINOR,
                         DEVICE_OPS_MIN_SIZE, &dev->ops, sizeof(dev->ops))) != FLOE_OK)
        goto fail;
    snprintf(dev->type, sizeof(dev->type), "%s", d.type);
    dev->index = d.index;
    if ((st = check_device_ops(self, dev)) != FLOE_OK)
        goto fail;
    dev->ctx = self->ctx;
    dev->plugin = self;
    dev->priority = d.priority;
    dev->flags = d.flags;
    snprintf(dev->name, sizeof(dev->name), "/device:%s:%d", d.type, (int)d.index);
    dev->memory_bytes = d.memory_bytes;
    dev->state = d.state;
    if ((dev->description = floe__strdup(d.description ? d.description : "")) == NULL ||
        !grow(&self->pending.devices, &self->pending.cap_devices, self->pending.ndevices + 1,
              sizeof(*self->pending.devices))) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_device: out of memory");
        goto fail;
    }
    self->pending.devices[self->pending.ndevices++] = dev;
    return FLOE_OK;

fail:
    device_free(dev);
    return st;
}

static const char *fs_missing_member(const floe_fs_ops *o) {
    return o->open_read == NULL     ? "open_read"
           : o->pread == NULL       ? "pread"
           : o->close_read == NULL  ? "close_read"
           : o->open_write == NULL  ? "open_write"
           : o->write == NULL       ? "write"
           : o->close_write == NULL ? "close_write"
           : o->stat == NULL        ? "stat"
           : o->list == NULL        ? "list"
           : o->remove == NULL      ? "remove"
           : o->mkdir == NULL       ? "mkdir"
           : o->rename == NULL      ? "rename"
                                    : NULL;
}

floe_status floe__host_register_filesystem(floe_plugin *self, const floe_fs_ops *ops) {
    floe__filesystem *fs;
    floe__registry *pend;
    const char *missing;
    floe_status st;
    char what[96];

    if ((st = check_registering(self, "filesystem")) != FLOE_OK)
        return st;
    if ((fs = floe__calloc(1, sizeof(*fs))) == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_filesystem: out of memory");
    snprintf(what, sizeof(what), "plugin '%s': filesystem", self->name);
    if ((st = copy_table(what, ops, FLOE_PLUGIN_ABI_MAJOR, FLOE_PLUGIN_ABI_MINOR, FS_OPS_MIN_SIZE,
                         &fs->ops, sizeof(fs->ops))) != FLOE_OK)
        goto fail;
    if (!name_ok(fs->ops.scheme, 32, false, "+.-")) {
        st = floe__fail(FLOE_INVALID_ARGUMENT,
                        "plugin '%s': filesystem scheme '%s' is "
                        "malformed: expected [a-z][a-z0-9+.-]* without \"://\"",
                        self->name, fs->ops.scheme ? fs->ops.scheme : "(null)");
        goto fail;
    }
    if ((missing = fs_missing_member(&fs->ops)) != NULL) {
        st = floe__fail(FLOE_INVALID_ARGUMENT,
                        "plugin '%s': filesystem '%s': required ops "
                        "member '%s' is NULL",
                        self->name, fs->ops.scheme, missing);
        goto fail;
    }
    pend = &self->pending;
    for (int i = 0; i < pend->nfilesystems; i++) {
        if (strcmp(pend->filesystems[i]->ops.scheme, fs->ops.scheme) == 0) {
            st = floe__fail(FLOE_ALREADY_EXISTS, "plugin '%s': filesystem '%s' registered twice",
                            self->name, fs->ops.scheme);
            goto fail;
        }
    }
    if (!grow(&pend->filesystems, &pend->cap_filesystems, pend->nfilesystems + 1,
              sizeof(*pend->filesystems))) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_filesystem: out of memory");
        goto fail;
    }
    fs->plugin = self;
    pend->filesystems[pend->nfilesystems++] = fs;
    return FLOE_OK;

fail:
    floe__free(fs);
    return st;
}

floe_status floe__host_register_transport(floe_plugin *self, const floe_transport_ops *ops) {
    floe__transport *tp;
    floe__registry *pend;
    const floe_transport_ops *o;
    floe_status st;
    char what[96];

    if ((st = check_registering(self, "transport")) != FLOE_OK)
        return st;
    if ((tp = floe__calloc(1, sizeof(*tp))) == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_transport: out of memory");
    snprintf(what, sizeof(what), "plugin '%s': transport (experimental ABI)", self->name);
    if ((st = copy_table(what, ops, FLOE_TRANSPORT_ABI_MAJOR, FLOE_TRANSPORT_ABI_MINOR,
                         TRANSPORT_OPS_MIN_SIZE, &tp->ops, sizeof(tp->ops))) != FLOE_OK)
        goto fail;
    o = &tp->ops;
    if (!name_ok(o->name, 32, false, NULL)) {
        st = floe__fail(FLOE_INVALID_ARGUMENT,
                        "plugin '%s': transport name '%s' is malformed: "
                        "expected [a-z][a-z0-9_]*",
                        self->name, o->name ? o->name : "(null)");
        goto fail;
    }
    if (o->connect == NULL || o->disconnect == NULL || o->call == NULL || o->serve == NULL ||
        o->shutdown == NULL) {
        st = floe__fail(FLOE_INVALID_ARGUMENT,
                        "plugin '%s': transport '%s': connect, "
                        "disconnect, call, serve and shutdown are required",
                        self->name, o->name);
        goto fail;
    }
    pend = &self->pending;
    for (int i = 0; i < pend->ntransports; i++) {
        if (strcmp(pend->transports[i]->ops.name, o->name) == 0) {
            st = floe__fail(FLOE_ALREADY_EXISTS, "plugin '%s': transport '%s' registered twice",
                            self->name, o->name);
            goto fail;
        }
    }
    if (!grow(&pend->transports, &pend->cap_transports, pend->ntransports + 1,
              sizeof(*pend->transports))) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "register_transport: out of memory");
        goto fail;
    }
    tp->plugin = self;
    pend->transports[pend->ntransports++] = tp;
    return FLOE_OK;

fail:
    floe__free(tp);
    return st;
}

/* ---- Commit -------------------------------------------------------------------- */

typedef struct conflict {
    floe_status code;
    char msg[512];
} conflict;

static bool conflict_set(conflict *c, floe_status code, const char *fmt, ...) FLOE_PRINTF(3, 4);
static bool conflict_set(conflict *c, floe_status code, const char *fmt, ...) {
    va_list ap;
    c->code = code;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
    va_end(ap);
    return false;
}

/* The op a pending kernel or gradient targets: the plugin's own first. */
static floe__op_def *resolve_op(const floe_context *ctx, const floe_plugin *p, const char *name) {
    floe__op_def *op = find_pending_op(&p->pending, name);
    return op != NULL ? op : find_op_in(&ctx->reg, name);
}

static bool op_has_arg(const floe__op_def *op, const char *name) {
    for (int i = 0; i < op->ninputs; i++)
        if (strcmp(op->inputs[i].name, name) == 0)
            return true;
    for (int i = 0; i < op->noutputs; i++)
        if (strcmp(op->outputs[i].name, name) == 0)
            return true;
    return false;
}

/* A kernel's constraints and host-memory names must fit its op. */
static bool check_kernel_fits(const floe__kernel *k, const floe__op_def *op, conflict *c) {
    for (int i = 0; i < k->nconstraints; i++) {
        const floe__attr_def *ad = floe__op_def_find_attr(op, k->constraints[i].attr);
        if (ad == NULL || (ad->type != FLOE_ATTR_TYPE && ad->type != FLOE_ATTR_LIST_TYPE))
            return conflict_set(c, FLOE_INVALID_ARGUMENT,
                                "kernel for op '%s' on %s constrains "
                                "'%s', which is not a type attr of the op",
                                op->name, k->device_type, k->constraints[i].attr);
        if (ad->allowed_types != 0 && (ad->allowed_types & k->constraints[i].mask) == 0)
            return conflict_set(c, FLOE_INVALID_ARGUMENT,
                                "kernel for op '%s' on %s allows no "
                                "dtype of attr '%s' that the op allows",
                                op->name, k->device_type, ad->name);
    }
    for (int i = 0; i < k->nhost_memory; i++)
        if (!op_has_arg(op, k->host_memory[i]))
            return conflict_set(c, FLOE_INVALID_ARGUMENT,
                                "kernel for op '%s' on %s: host_memory "
                                "names '%s', which is not an argument of the op",
                                op->name, k->device_type, k->host_memory[i]);
    return true;
}

static bool check_kernels(floe_context *ctx, floe_plugin *p, conflict *c) {
    char owner[600];
    for (int i = 0; i < p->pending.nkernels; i++) {
        floe__kernel *k = p->pending.kernels[i];
        floe__op_def *op = resolve_op(ctx, p, rec_of(k)->op_name);
        if (op == NULL)
            return conflict_set(c, FLOE_NOT_FOUND,
                                "kernel for unknown op '%s' on %s (no loaded "
                                "plugin defines the op)",
                                rec_of(k)->op_name, k->device_type);
        k->op = op;
        if (!check_kernel_fits(k, op, c))
            return false;
        for (int j = 0; j < op->nkernels; j++) {
            const floe__kernel *o = op->kernels[j];
            if (o->plugin != p && o->priority == k->priority &&
                strcmp(o->device_type, k->device_type) == 0) {
                describe_owner(o->plugin, owner, sizeof(owner));
                return conflict_set(c, FLOE_ALREADY_EXISTS,
                                    "kernel for op '%s' on %s with "
                                    "priority %d is already registered by %s",
                                    op->name, k->device_type, (int)k->priority, owner);
            }
        }
    }
    return true;
}

static bool check_grads(floe_context *ctx, floe_plugin *p, conflict *c) {
    char owner[600];
    for (int i = 0; i < p->pending.ngrads; i++) {
        const floe__op_def *op = resolve_op(ctx, p, p->pending.grads[i].op);
        if (op == NULL)
            return conflict_set(c, FLOE_NOT_FOUND, "gradient for unknown op '%s'",
                                p->pending.grads[i].op);
        if (op->flags & FLOE_OP_NO_GRADIENT)
            return conflict_set(c, FLOE_INVALID_ARGUMENT,
                                "gradient for op '%s', which its "
                                "definition marks FLOE_OP_NO_GRADIENT",
                                op->name);
        if (op->grad_fn != NULL) {
            describe_owner(op->grad_plugin, owner, sizeof(owner));
            return conflict_set(c, FLOE_ALREADY_EXISTS,
                                "gradient of op '%s' is already "
                                "registered by %s",
                                op->name, owner);
        }
    }
    return true;
}

/* The names @p claims that @o, earlier in load order and waiting to commit
 * (loader.c), claims first. */
static bool check_claims(const floe_plugin *o, const floe_plugin *p, conflict *c) {
    const floe__registry *a = &o->pending, *b = &p->pending;
    const char *what = NULL, *name = NULL;
    char owner[600];

    for (int i = 0; i < b->nops && what == NULL; i++)
        if (find_pending_op(a, b->ops[i]->name) != NULL)
            what = "op", name = b->ops[i]->name;
    for (int i = 0; i < b->ndevices && what == NULL; i++)
        for (int j = 0; j < a->ndevices && what == NULL; j++)
            if (strcmp(a->devices[j]->type, b->devices[i]->type) == 0 &&
                a->devices[j]->index == b->devices[i]->index)
                what = "device", name = b->devices[i]->name;
    for (int i = 0; i < b->nfilesystems && what == NULL; i++)
        for (int j = 0; j < a->nfilesystems && what == NULL; j++)
            if (strcasecmp(a->filesystems[j]->ops.scheme, b->filesystems[i]->ops.scheme) == 0)
                what = "filesystem scheme", name = b->filesystems[i]->ops.scheme;
    for (int i = 0; i < b->ntransports && what == NULL; i++)
        for (int j = 0; j < a->ntransports && what == NULL; j++)
            if (strcmp(a->transports[j]->ops.name, b->transports[i]->ops.name) == 0)
                what = "transport", name = b->transports[i]->ops.name;
    if (what == NULL)
        return true;
    describe_owner(o, owner, sizeof(owner));
    return conflict_set(c, FLOE_ALREADY_EXISTS,
                        "%s '%s' is already claimed by %s, loaded "
                        "earlier and waiting for the ops of later plugins",
                        what, name, owner);
}

static bool check_names(floe_context *ctx, floe_plugin *p, conflict *c) {
    const floe__registry *pend = &p->pending, *reg = &ctx->reg;
    char owner[600];

    /* First loaded wins, also against a plugin still waiting to commit. */
    for (int i = 0; i < ctx->nplugins && ctx->plugins[i] != p; i++) {
        const floe_plugin *o = ctx->plugins[i];
        if (o->state == FLOE__PLUGIN_LOADING && o->inited && !check_claims(o, p, c))
            return false;
    }

    for (int i = 0; i < pend->nops; i++) {
        const floe__op_def *o = find_op_in(reg, pend->ops[i]->name);
        if (o != NULL) {
            describe_owner(o->plugin, owner, sizeof(owner));
            return conflict_set(c, FLOE_ALREADY_EXISTS, "op '%s' is already registered by %s",
                                o->name, owner);
        }
    }
    for (int i = 0; i < pend->ndevices; i++) {
        const floe_device *d = pend->devices[i];
        for (int j = 0; j < reg->ndevices; j++) {
            if (strcmp(reg->devices[j]->type, d->type) == 0 && reg->devices[j]->index == d->index) {
                describe_owner(reg->devices[j]->plugin, owner, sizeof(owner));
                return conflict_set(c, FLOE_ALREADY_EXISTS,
                                    "device %s:%d is already "
                                    "registered by %s",
                                    d->type, d->index, owner);
            }
        }
    }
    for (int i = 0; i < pend->nfilesystems; i++) {
        const char *scheme = pend->filesystems[i]->ops.scheme;
        const floe__filesystem *o = floe__registry_find_fs(ctx, scheme);
        if (o != NULL) {
            describe_owner(o->plugin, owner, sizeof(owner));
            return conflict_set(c, FLOE_ALREADY_EXISTS,
                                "filesystem scheme '%s' is already "
                                "registered by %s",
                                scheme, owner);
        }
    }
    for (int i = 0; i < pend->ntransports; i++) {
        const char *name = pend->transports[i]->ops.name;
        for (int j = 0; j < reg->ntransports; j++) {
            if (strcmp(reg->transports[j]->ops.name, name) == 0) {
                describe_owner(reg->transports[j]->plugin, owner, sizeof(owner));
                return conflict_set(c, FLOE_ALREADY_EXISTS,
                                    "transport '%s' is already "
                                    "registered by %s",
                                    name, owner);
            }
        }
    }
    return true;
}

/* Makes room for everything the commit adds, so that applying it cannot fail half way. */
static bool reserve(floe_context *ctx, floe_plugin *p) {
    floe__registry *reg = &ctx->reg, *pend = &p->pending;

    if (!grow(&reg->ops, &reg->cap_ops, reg->nops + pend->nops, sizeof(*reg->ops)) ||
        !grow(&reg->kernels, &reg->cap_kernels, reg->nkernels + pend->nkernels,
              sizeof(*reg->kernels)) ||
        !grow(&reg->devices, &reg->cap_devices, reg->ndevices + pend->ndevices,
              sizeof(*reg->devices)) ||
        !grow(&reg->filesystems, &reg->cap_filesystems, reg->nfilesystems + pend->nfilesystems,
              sizeof(*reg->filesystems)) ||
        !grow(&reg->transports, &reg->cap_transports, reg->ntransports + pend->ntransports,
              sizeof(*reg->transports)))
        return false;
    for (int i = 0; i < pend->nkernels; i++) {
        floe__op_def *op = pend->kernels[i]->op;
        int count = 0;
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = pend->kernels[j]->op == op;
        if (seen)
            continue;
        for (int j = i; j < pend->nkernels; j++)
            count += pend->kernels[j]->op == op;
        /* Exact size: op->kernels has no capacity field; extra room is harmless. */
        void *n = floe__realloc(op->kernels, (size_t)(op->nkernels + count) * sizeof(*op->kernels));
        if (n == NULL)
            return false;
        op->kernels = n;
    }
    return true;
}

static int op_cmp(const void *a, const void *b) {
    const floe__op_def *x = *(floe__op_def *const *)a, *y = *(floe__op_def *const *)b;
    return strcmp(x->name, y->name);
}

static void apply(floe_context *ctx, floe_plugin *p) {
    floe__registry *reg = &ctx->reg, *pend = &p->pending;

    for (int i = 0; i < pend->nops; i++)
        reg->ops[reg->nops++] = pend->ops[i];
    if (pend->nops > 0)
        qsort(reg->ops, (size_t)reg->nops, sizeof(*reg->ops), op_cmp);
    for (int i = 0; i < pend->nkernels; i++) {
        floe__kernel *k = pend->kernels[i];
        reg->kernels[reg->nkernels++] = k;
        k->op->kernels[k->op->nkernels++] = k;
    }
    for (int i = 0; i < pend->ndevices; i++)
        reg->devices[reg->ndevices++] = pend->devices[i];
    for (int i = 0; i < pend->nfilesystems; i++)
        reg->filesystems[reg->nfilesystems++] = pend->filesystems[i];
    for (int i = 0; i < pend->ntransports; i++)
        reg->transports[reg->ntransports++] = pend->transports[i];
    for (int i = 0; i < pend->ngrads; i++) {
        floe__op_def *op = resolve_op(ctx, p, pend->grads[i].op);
        op->grad_fn = pend->grads[i].fn;
        op->grad_plugin = p;
    }
    p->num_ops = pend->nops;
    p->num_kernels = pend->nkernels;
    p->num_devices = pend->ndevices;
    p->num_filesystems = pend->nfilesystems;
    p->num_transports = pend->ntransports;
    /* Everything moved: only the pending arrays (and gradient names) are left. */
    pend->nops = pend->nkernels = pend->ndevices = pend->nfilesystems = pend->ntransports = 0;
    floe__registry_deinit(pend);
}

floe_status floe__registry_commit(floe_context *ctx, floe_plugin *p, char **reason) {
    conflict c = {FLOE_OK, ""};

    if (reason != NULL)
        *reason = NULL;
    if (ctx == NULL || p == NULL || reason == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "registry commit: NULL argument");
    /* Ops first: a kernel conflict report then never hides a duplicate op. */
    if (!check_names(ctx, p, &c) || !check_kernels(ctx, p, &c) || !check_grads(ctx, p, &c)) {
        *reason = floe__strdup(c.msg);
        return floe__fail(c.code, "%s", c.msg);
    }
    if (!reserve(ctx, p)) {
        *reason = floe__strdup("out of memory while committing the registrations");
        return floe__fail(FLOE_RESOURCE_EXHAUSTED,
                          "out of memory while committing the "
                          "registrations of plugin '%s'",
                          p->name);
    }
    apply(ctx, p);
    return FLOE_OK;
}

/* ---- Lookups ------------------------------------------------------------------- */

const floe__op_def *floe__registry_find_op(const floe_context *ctx, const char *name) {
    if (ctx == NULL || name == NULL)
        return NULL;
    return find_op_in(&ctx->reg, name);
}

static bool kernel_matches(const floe__kernel *k, const floe_attrs *attrs) {
    for (int i = 0; i < k->nconstraints; i++) {
        const floe__attr_value *v =
            attrs != NULL ? floe__attrs_find(attrs, k->constraints[i].attr) : NULL;
        uint64_t mask = k->constraints[i].mask;
        if (v == NULL)
            return false;
        if (v->type == FLOE_ATTR_TYPE) {
            if ((mask & FLOE__DTYPE_MASK(v->u.type)) == 0)
                return false;
        } else if (v->type == FLOE_ATTR_LIST_TYPE) {
            const floe_dtype *ts = v->u.list.items;
            for (int j = 0; j < v->u.list.n; j++)
                if ((mask & FLOE__DTYPE_MASK(ts[j])) == 0)
                    return false;
        } else {
            return false;
        }
    }
    return true;
}

const floe__kernel *floe__registry_find_kernel(const floe_context *ctx, const floe__op_def *op,
                                               const char *device_type, const floe_attrs *attrs) {
    const floe__kernel *best = NULL;
    if (ctx == NULL || op == NULL || device_type == NULL)
        return NULL;
    /* Ties keep the first registered: load order decides, deterministically. */
    for (int i = 0; i < op->nkernels; i++) {
        const floe__kernel *k = op->kernels[i];
        if (strcasecmp(k->device_type, device_type) != 0 || !kernel_matches(k, attrs))
            continue;
        if (best == NULL || k->priority > best->priority)
            best = k;
    }
    return best;
}

const floe__filesystem *floe__registry_find_fs(floe_context *ctx, const char *scheme) {
    if (ctx == NULL || scheme == NULL)
        return NULL;
    if (ctx->local_fs.ops.scheme != NULL && strcasecmp(ctx->local_fs.ops.scheme, scheme) == 0)
        return &ctx->local_fs;
    for (int i = 0; i < ctx->reg.nfilesystems; i++)
        if (strcasecmp(ctx->reg.filesystems[i]->ops.scheme, scheme) == 0)
            return ctx->reg.filesystems[i];
    return NULL;
}

/* ---- Introspection (floe.h) ---------------------------------------------------- */

typedef struct strbuf {
    char *buf;
    size_t len, pos;
} strbuf;

static void sb_printf(strbuf *sb, const char *fmt, ...) FLOE_PRINTF(2, 3);
static void sb_printf(strbuf *sb, const char *fmt, ...) {
    va_list ap;
    int n;
    if (sb->pos + 1 >= sb->len)
        return;
    va_start(ap, fmt);
    n = vsnprintf(sb->buf + sb->pos, sb->len - sb->pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb->pos = sb->pos + (size_t)n < sb->len ? sb->pos + (size_t)n : sb->len - 1;
}

/* "{f32, f64}", or a set's name when the mask is exactly one. */
static void sb_type_set(strbuf *sb, uint64_t mask) {
    static const char *const sets[] = {"alltypes", "numbertype", "realnumbertype", "floattype",
                                       "inttype"};
    bool first = true;
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        uint64_t m;
        if (floe__parse_type_set(sets[i], &m) == FLOE_OK && m == mask) {
            sb_printf(sb, "%s", sets[i]);
            return;
        }
    }
    sb_printf(sb, "{");
    for (int dt = 1; dt < 64; dt++) {
        if ((mask & FLOE__DTYPE_MASK(dt)) != 0 && floe__dtype_valid((floe_dtype)dt)) {
            sb_printf(sb, "%s%s", first ? "" : ", ", floe_dtype_name((floe_dtype)dt));
            first = false;
        }
    }
    sb_printf(sb, "}");
}

static const char *attr_kind_name(floe_attr_type t) {
    static const char *const names[] = {"none",       "int",         "float",       "bool",
                                        "string",     "type",        "shape",       "tensor",
                                        "list(int)",  "list(float)", "list(bool)",  "list(string)",
                                        "list(type)", "list(shape)", "list(tensor)"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

static void sb_arg(strbuf *sb, const floe__arg_def *a) {
    sb_printf(sb, "    %s: ", a->name);
    if (a->number_attr != NULL)
        sb_printf(sb, "%s * ", a->number_attr);
    if (a->fixed_type != FLOE_DTYPE_INVALID)
        sb_printf(sb, "%s\n", floe_dtype_name(a->fixed_type));
    else
        sb_printf(sb, "%s\n", a->type_attr != NULL ? a->type_attr : a->type_list_attr);
}

static void sb_attr(strbuf *sb, const floe__attr_def *a) {
    sb_printf(sb, "    %s: ", a->name);
    if (a->allowed_types != 0) {
        bool list = a->type == FLOE_ATTR_LIST_TYPE;
        sb_printf(sb, "%s", list ? "list(" : "");
        sb_type_set(sb, a->allowed_types);
        sb_printf(sb, "%s", list ? ")" : "");
    } else {
        sb_printf(sb, "%s", attr_kind_name(a->type));
    }
    if (a->has_min)
        sb_printf(sb, " >= %lld", (long long)a->min);
    if (a->has_default) {
        char val[256];
        floe__attr_value_format(&a->default_value, val, sizeof(val));
        sb_printf(sb, " = %s", val);
    }
    sb_printf(sb, "\n");
}

static void sb_kernels(strbuf *sb, const floe__op_def *op) {
    /* Grouped by device type (first appearance), best priority first within a type. */
    for (int i = 0; i < op->nkernels; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(op->kernels[j]->device_type, op->kernels[i]->device_type) == 0;
        if (seen)
            continue;
        sb_printf(sb, "    %s:\n", op->kernels[i]->device_type);
        for (int pass = 0; pass < op->nkernels; pass++) {
            /* Selection by descending priority, keeping registration order on ties. */
            const floe__kernel *k = NULL;
            int rank = 0;
            for (int j = 0; j < op->nkernels; j++) {
                const floe__kernel *c = op->kernels[j];
                if (strcmp(c->device_type, op->kernels[i]->device_type) != 0)
                    continue;
                int before = 0;
                for (int m = 0; m < op->nkernels; m++) {
                    const floe__kernel *o = op->kernels[m];
                    if (strcmp(o->device_type, c->device_type) == 0 &&
                        (o->priority > c->priority || (o->priority == c->priority && m < j)))
                        before++;
                }
                if (before == pass) {
                    k = c;
                    rank = before;
                }
            }
            if (k == NULL)
                break;
            sb_printf(sb, "      priority %d%s, plugin %s", (int)k->priority,
                      rank == 0 ? " (preferred)" : "", k->plugin ? k->plugin->name : "core");
            for (int c = 0; c < k->nconstraints; c++) {
                sb_printf(sb, "%s%s: ", c == 0 ? ", for " : "; ", k->constraints[c].attr);
                sb_type_set(sb, k->constraints[c].mask);
            }
            sb_printf(sb, "\n");
        }
    }
}

static void describe(const floe__op_def *op, strbuf *sb) {
    const floe_plugin *p = op->plugin;
    sb_printf(sb, "op %s\n  defined by: %s", op->name, p ? p->name : "the core");
    if (p != NULL)
        sb_printf(sb, " %s (%s)", p->desc_copy.version ? p->desc_copy.version : "",
                  p->path ? p->path : "");
    sb_printf(sb, "\n");
    if (op->flags != 0)
        sb_printf(sb, "  flags:%s%s\n", (op->flags & FLOE_OP_STATEFUL) ? " stateful" : "",
                  (op->flags & FLOE_OP_NO_GRADIENT) ? " no-gradient" : "");
    if (op->doc != NULL)
        sb_printf(sb, "  %s\n", op->doc);
    sb_printf(sb, "  inputs:%s\n", op->ninputs == 0 ? " none" : "");
    for (int i = 0; i < op->ninputs; i++)
        sb_arg(sb, &op->inputs[i]);
    sb_printf(sb, "  outputs:%s\n", op->noutputs == 0 ? " none" : "");
    for (int i = 0; i < op->noutputs; i++)
        sb_arg(sb, &op->outputs[i]);
    sb_printf(sb, "  attrs:%s\n", op->nattrs == 0 ? " none" : "");
    for (int i = 0; i < op->nattrs; i++)
        sb_attr(sb, &op->attrs[i]);
    sb_printf(sb, "  gradient: %s\n",
              op->grad_fn != NULL ? (op->grad_plugin ? op->grad_plugin->name : "the core")
              : (op->flags & FLOE_OP_NO_GRADIENT) ? "none (by design)"
                                                  : "none");
    sb_printf(sb, "  kernels:%s\n", op->nkernels == 0 ? " none" : "");
    sb_kernels(sb, op);
}

static void ctx_lock(const floe_context *ctx) {
    pthread_mutex_lock((pthread_mutex_t *)&ctx->lock);
}

static void ctx_unlock(const floe_context *ctx) {
    pthread_mutex_unlock((pthread_mutex_t *)&ctx->lock);
}

int floe_context_num_ops(const floe_context *ctx) {
    int n;
    if (ctx == NULL)
        return 0;
    ctx_lock(ctx);
    n = ctx->reg.nops;
    ctx_unlock(ctx);
    return n;
}

const char *floe_context_op_name(const floe_context *ctx, int i) {
    const char *name = NULL;
    if (ctx == NULL)
        return NULL;
    ctx_lock(ctx);
    if (i >= 0 && i < ctx->reg.nops)
        name = ctx->reg.ops[i]->name;
    ctx_unlock(ctx);
    return name;
}

floe_status floe_context_describe_op(const floe_context *ctx, const char *name, char *buf,
                                     size_t len) {
    const floe__op_def *op;
    strbuf sb = {buf, len, 0};

    if (buf != NULL && len > 0)
        buf[0] = '\0';
    if (ctx == NULL || name == NULL || buf == NULL || len == 0)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_context_describe_op: NULL context, "
                                                 "name or buffer");
    ctx_lock(ctx);
    op = find_op_in(&ctx->reg, name);
    if (op != NULL)
        describe(op, &sb);
    ctx_unlock(ctx);
    if (op == NULL)
        return floe__fail(FLOE_NOT_FOUND, "no op named '%s' is registered", name);
    return FLOE_OK;
}
