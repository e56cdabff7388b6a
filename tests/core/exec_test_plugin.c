/*
 * exec_test_plugin.c - floe_exectest.so, a test-only plugin for the graph, session,
 * executor and variable tests (never installed).
 *
 * It lets the core's tests drive the executor without the real op plugins: ops that
 * count their executions (ExTicks reads the counters back through a graph), fail on
 * purpose, forget an output, forward their input in place, meet at a rendezvous that
 * only concurrent execution can satisfy, and touch resource variables; and a second
 * device type, TESTDEV, whose memory is not host memory (so the executor must copy
 * tensors to and from it) and whose placement priority beats the CPU's.  Every kernel
 * is a CPU kernel unless it says otherwise; the CPU device itself comes from dev_cpu.
 *
 * Counters are process-wide (tests use distinct slots): slot 60 counts copies to
 * TESTDEV, 61 copies back, 62 kernel create() calls, 63 destroy() calls.
 *
 * Sections: counters; shape functions; kernels; TESTDEV; registration.
 */
#include <floe/plugin.h>

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define NTICKS 64
#define TICK_COPY_TO 60
#define TICK_COPY_FROM 61
#define TICK_CREATE 62
#define TICK_DESTROY 63

static atomic_long ticks[NTICKS];

static void tick(const floe_kernel_ctx *kc) {
    int64_t slot = 0;
    if (floe_attrs_get_int(floe_kernel_attrs(kc), "slot", &slot) == FLOE_OK && slot > 0 &&
        slot < NTICKS)
        atomic_fetch_add(&ticks[slot], 1);
}

/* ---- Shape functions ------------------------------------------------------------ */

static floe_status same_as_input0(floe_shape_ctx *sc) {
    floe_shape s = floe_shape_input(sc, 0);
    for (int i = 0; i < floe_shape_num_outputs(sc); i++) {
        floe_status st = floe_shape_set_output(sc, i, &s);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

static floe_status const_shape(floe_shape_ctx *sc) {
    int64_t n = -1;
    floe_shape s;
    memset(&s, 0, sizeof(s));
    floe_attrs_get_int(floe_shape_attrs(sc), "n", &n);
    if (n >= 0) {
        s.ndim = 1;
        s.dims[0] = n;
    }
    return floe_shape_set_output(sc, 0, &s);
}

static floe_status add_shape(floe_shape_ctx *sc) {
    floe_shape a = floe_shape_input(sc, 0), b = floe_shape_input(sc, 1);
    if (a.ndim >= 0 && b.ndim >= 0) {
        bool same = a.ndim == b.ndim;
        for (int i = 0; same && i < a.ndim; i++)
            same = a.dims[i] < 0 || b.dims[i] < 0 || a.dims[i] == b.dims[i];
        if (!same)
            return floe_fail(FLOE_INVALID_ARGUMENT, "ExAdd needs equal shapes (ranks %d and %d)",
                             (int)a.ndim, (int)b.ndim);
    }
    return floe_shape_set_output(sc, 0, a.ndim >= 0 ? &a : &b);
}

static floe_status incr_shape(floe_shape_ctx *sc) {
    floe_shape s = floe_shape_input(sc, 0), scalar;
    memset(&scalar, 0, sizeof(scalar));
    floe_status st = floe_shape_set_output(sc, 0, &s);
    return st != FLOE_OK ? st : floe_shape_set_output(sc, 1, &scalar);
}

static floe_status placeholder_shape(floe_shape_ctx *sc) {
    floe_shape s;
    if (floe_attrs_get_shape(floe_shape_attrs(sc), "shape", &s) != FLOE_OK)
        return FLOE_OK;
    return floe_shape_set_output(sc, 0, &s);
}

/* ---- Kernels ---------------------------------------------------------------------- */

static floe_status counting_create(floe_kernel_ctx *kc, void **state) {
    atomic_fetch_add(&ticks[TICK_CREATE], 1);
    *state = floe_alloc(16, 0);
    return *state != NULL ? FLOE_OK : floe_fail(FLOE_RESOURCE_EXHAUSTED, "no memory");
}

static void counting_destroy(void *state) {
    atomic_fetch_add(&ticks[TICK_DESTROY], 1);
    floe_free(state);
}

static floe_status const_compute(floe_kernel_ctx *kc, void *state) {
    double value = 0;
    float v;
    int64_t n = -1, shape[1];
    floe_tensor *out;
    floe_status st;

    if (state == NULL)
        return floe_fail(FLOE_INTERNAL, "create() was not called");
    tick(kc);
    floe_attrs_get_float(floe_kernel_attrs(kc), "value", &v);
    value = v;
    floe_attrs_get_int(floe_kernel_attrs(kc), "n", &n);
    shape[0] = n;
    st = floe_kernel_alloc_output(kc, 0, shape, n >= 0 ? 1 : 0, &out);
    if (st != FLOE_OK)
        return st;
    float *p = floe_tensor_data(out);
    for (int64_t i = 0; i < floe_tensor_num_elements(out); i++)
        p[i] = (float)value;
    return FLOE_OK;
}

static floe_status add_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *a = floe_kernel_input(kc, 0), *b = floe_kernel_input(kc, 1), *out;
    int64_t n = floe_tensor_num_elements(a);
    floe_status st;

    tick(kc);
    if (floe_tensor_num_elements(b) != n)
        return floe_fail(FLOE_INVALID_ARGUMENT, "ExAdd: %lld and %lld elements", (long long)n,
                         (long long)floe_tensor_num_elements(b));
    st = floe_kernel_forward_or_alloc(kc, 0, 0, floe_tensor_shape(a), floe_tensor_ndim(a), &out);
    if (st != FLOE_OK)
        return st;
    if (floe_tensor_dtype(a) == FLOE_DTYPE_F32) {
        const float *x = floe_tensor_data(a), *y = floe_tensor_data(b);
        float *z = floe_tensor_data(out);
        for (int64_t i = 0; i < n; i++)
            z[i] = x[i] + y[i];
    } else {
        const double *x = floe_tensor_data(a), *y = floe_tensor_data(b);
        double *z = floe_tensor_data(out);
        for (int64_t i = 0; i < n; i++)
            z[i] = x[i] + y[i];
    }
    return FLOE_OK;
}

static floe_status addn_compute(floe_kernel_ctx *kc, void *state) {
    int k = floe_kernel_num_inputs(kc);
    floe_tensor *first = floe_kernel_input(kc, 0), *out;
    floe_status st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(first),
                                              floe_tensor_ndim(first), &out);
    if (st != FLOE_OK)
        return st;
    float *z = floe_tensor_data(out);
    int64_t n = floe_tensor_num_elements(out);
    memset(z, 0, (size_t)n * sizeof(float));
    for (int j = 0; j < k; j++) {
        floe_tensor *in = floe_kernel_input(kc, j);
        if (floe_tensor_num_elements(in) != n)
            return floe_fail(FLOE_INVALID_ARGUMENT, "ExAddN: input %d has another size", j);
        const float *x = floe_tensor_data(in);
        for (int64_t i = 0; i < n; i++)
            z[i] += x[i];
    }
    return FLOE_OK;
}

static floe_status identity_all_compute(floe_kernel_ctx *kc, void *state) {
    for (int i = 0; i < floe_kernel_num_outputs(kc); i++) {
        floe_status st = floe_kernel_set_output(kc, i, floe_kernel_input(kc, i));
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

static floe_status incr_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *x = floe_kernel_input(kc, 0), *y, *fwd;
    floe_status st;

    tick(kc);
    st = floe_kernel_forward_or_alloc(kc, 0, 0, floe_tensor_shape(x), floe_tensor_ndim(x), &y);
    if (st == FLOE_OK)
        st = floe_kernel_alloc_output(kc, 1, NULL, 0, &fwd);
    if (st != FLOE_OK)
        return st;
    const float *a = floe_tensor_data(x);
    float *b = floe_tensor_data(y);
    for (int64_t i = 0; i < floe_tensor_num_elements(x); i++)
        b[i] = a[i] + 1.0f;
    *(int32_t *)floe_tensor_data(fwd) = floe_tensor_data(y) == floe_tensor_data(x);
    return FLOE_OK;
}

static floe_status fail_compute(floe_kernel_ctx *kc, void *state) {
    int64_t code = FLOE_INVALID_ARGUMENT;
    const char *msg = "boom";
    size_t len = 4;
    floe_attrs_get_int(floe_kernel_attrs(kc), "code", &code);
    floe_attrs_get_string(floe_kernel_attrs(kc), "message", &msg, &len);
    return floe_fail((floe_status)code, "%.*s", (int)len, msg);
}

static floe_status no_output_compute(floe_kernel_ctx *kc, void *state) {
    return FLOE_OK;
}

/* Rendezvous: @count nodes with one key must be inside compute at the same time. */
static pthread_mutex_t rv_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rv_cond = PTHREAD_COND_INITIALIZER;
static long rv_arrived[8];
static long rv_generation[8];

static floe_status rendezvous_compute(floe_kernel_ctx *kc, void *state) {
    int64_t key = 0, count = 2, timeout_ms = 5000;
    struct timespec deadline;
    floe_status st = FLOE_OK;

    floe_attrs_get_int(floe_kernel_attrs(kc), "key", &key);
    floe_attrs_get_int(floe_kernel_attrs(kc), "count", &count);
    floe_attrs_get_int(floe_kernel_attrs(kc), "timeout_ms", &timeout_ms);
    if (key < 0 || key >= 8)
        return floe_fail(FLOE_INVALID_ARGUMENT, "rendezvous key %lld", (long long)key);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&rv_lock);
    long gen = rv_generation[key];
    if (++rv_arrived[key] >= count) {
        rv_arrived[key] = 0;
        rv_generation[key]++;
        pthread_cond_broadcast(&rv_cond);
    } else {
        while (rv_generation[key] == gen) {
            if (pthread_cond_timedwait(&rv_cond, &rv_lock, &deadline) == ETIMEDOUT &&
                rv_generation[key] == gen) {
                rv_arrived[key]--;
                st = floe_fail(FLOE_DEADLINE_EXCEEDED,
                               "rendezvous %lld: the other nodes never arrived", (long long)key);
                break;
            }
        }
    }
    pthread_mutex_unlock(&rv_lock);
    if (st != FLOE_OK)
        return st;
    return floe_kernel_set_output(kc, 0, floe_kernel_input(kc, 0));
}

static floe_status ticks_compute(floe_kernel_ctx *kc, void *state) {
    int64_t slot = 0;
    floe_tensor *out;
    floe_attrs_get_int(floe_kernel_attrs(kc), "slot", &slot);
    if (slot < 0 || slot >= NTICKS)
        return floe_fail(FLOE_INVALID_ARGUMENT, "tick slot %lld", (long long)slot);
    floe_status st = floe_kernel_alloc_output(kc, 0, NULL, 0, &out);
    if (st != FLOE_OK)
        return st;
    *(int64_t *)floe_tensor_data(out) = atomic_load(&ticks[slot]);
    return FLOE_OK;
}

static floe_status placeholder_compute(floe_kernel_ctx *kc, void *state) {
    return floe_fail(FLOE_INVALID_ARGUMENT, "placeholder '%s' must be fed",
                     floe_kernel_node_name(kc));
}

/* On TESTDEV: the input must have been copied into TESTDEV memory; passes it on. */
static floe_status devpass_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *x = floe_kernel_input(kc, 0);
    if (floe_tensor_device(x) != floe_kernel_device(kc))
        return floe_fail(FLOE_FAILED_PRECONDITION, "input is not in the memory of my device");
    tick(kc);
    return floe_kernel_set_output(kc, 0, x);
}

/* On CPU: the input must be readable host memory. */
static floe_status devpass_cpu_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *x = floe_kernel_input(kc, 0);
    if (floe_tensor_num_elements(x) > 0 && floe_tensor_data(x) == NULL)
        return floe_fail(FLOE_FAILED_PRECONDITION, "input is not in host memory");
    tick(kc);
    return floe_kernel_set_output(kc, 0, x);
}

/* On TESTDEV, with "n" in host memory. */
static floe_status hostarg_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *x = floe_kernel_input(kc, 0), *n = floe_kernel_input(kc, 1);
    if (floe_tensor_device(x) != floe_kernel_device(kc))
        return floe_fail(FLOE_FAILED_PRECONDITION, "x is not in the memory of my device");
    if (floe_tensor_data(n) == NULL)
        return floe_fail(FLOE_FAILED_PRECONDITION, "n is not in host memory");
    return floe_kernel_set_output(kc, 0, x);
}

static floe_status varhandle_compute(floe_kernel_ctx *kc, void *state) {
    const floe_attrs *a = floe_kernel_attrs(kc);
    const char *name = "", *container = "";
    size_t len;
    floe_dtype dt = FLOE_DTYPE_INVALID;
    floe_shape shape;
    floe_tensor *h;

    floe_attrs_get_string(a, "shared_name", &name, &len);
    floe_attrs_get_string(a, "container", &container, &len);
    floe_attrs_get_type(a, "dtype", &dt);
    floe_attrs_get_shape(a, "shape", &shape);
    floe_status st = floe_kernel_resource_handle(kc, container, name, dt, &shape, &h);
    if (st != FLOE_OK)
        return st;
    st = floe_kernel_set_output(kc, 0, h);
    floe_tensor_unref(h);
    return st;
}

static floe_status varassign_compute(floe_kernel_ctx *kc, void *state) {
    floe_variable *v;
    floe_status st = floe_kernel_variable(kc, floe_kernel_input(kc, 0), 1, &v);
    if (st != FLOE_OK)
        return st;
    floe_variable_lock(v, 1);
    st = floe_variable_assign(v, floe_kernel_input(kc, 1));
    floe_variable_unlock(v);
    return st;
}

static floe_status varread_compute(floe_kernel_ctx *kc, void *state) {
    floe_variable *v;
    floe_status st = floe_kernel_variable(kc, floe_kernel_input(kc, 0), 0, &v);
    if (st != FLOE_OK)
        return st;
    floe_variable_lock(v, 0);
    floe_tensor *val = floe_variable_value(v);
    if (val == NULL)
        st = floe_fail(FLOE_FAILED_PRECONDITION, "variable is uninitialised");
    else
        st = floe_kernel_set_output(kc, 0, val);
    floe_variable_unlock(v);
    return st;
}

static floe_status varaddone_compute(floe_kernel_ctx *kc, void *state) {
    floe_variable *v;
    floe_tensor *val;
    floe_status st = floe_kernel_variable(kc, floe_kernel_input(kc, 0), 0, &v);
    if (st != FLOE_OK)
        return st;
    if (floe_variable_dtype(v) != FLOE_DTYPE_F32)
        return floe_fail(FLOE_INVALID_ARGUMENT, "ExVarAddOne: f32 variables only");
    floe_variable_lock(v, 1);
    st = floe_variable_value_for_update(v, &val);
    if (st == FLOE_OK) {
        float *p = floe_tensor_data(val);
        for (int64_t i = 0; i < floe_tensor_num_elements(val); i++)
            p[i] += 1.0f;
    }
    floe_variable_unlock(v);
    return st;
}

/* ---- TESTDEV: device memory the core cannot read directly ---------------------------- */

static floe_status td_alloc(void *dev, size_t nbytes, void **out) {
    *out = floe_alloc(nbytes, 64);
    return *out != NULL ? FLOE_OK : floe_fail(FLOE_RESOURCE_EXHAUSTED, "TESTDEV out of memory");
}

static void td_free(void *dev, void *ptr, size_t nbytes) {
    floe_free(ptr);
}

static floe_status td_copy_to(void *dev, void *dst, const void *src, size_t n) {
    atomic_fetch_add(&ticks[TICK_COPY_TO], 1);
    memcpy(dst, src, n);
    return FLOE_OK;
}

static floe_status td_copy_from(void *dev, void *dst, const void *src, size_t n) {
    atomic_fetch_add(&ticks[TICK_COPY_FROM], 1);
    memcpy(dst, src, n);
    return FLOE_OK;
}

static floe_status td_copy_on(void *dev, void *dst, const void *src, size_t n) {
    memcpy(dst, src, n);
    return FLOE_OK;
}

static floe_status td_sync(void *dev) {
    return FLOE_OK;
}

static const floe_device_ops td_ops = {
    .abi_major = FLOE_PLUGIN_ABI_MAJOR,
    .abi_minor = FLOE_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(floe_device_ops),
    .alloc = td_alloc,
    .free = td_free,
    .copy_to_device = td_copy_to,
    .copy_from_device = td_copy_from,
    .copy_on_device = td_copy_on,
    .synchronize = td_sync,
};

/* ---- Registration ------------------------------------------------------------------ */

#define SPECS(...) ((const char *const[]){__VA_ARGS__, NULL})

typedef struct op_entry {
    const char *name;
    const char *const *inputs, *const *outputs, *const *attrs;
    floe_status (*shape_fn)(floe_shape_ctx *sc);
    uint32_t flags;
} op_entry;

static const op_entry ops[] = {
    {"ExConst", NULL, SPECS("out: f32"),
     SPECS("value: float = 0", "n: int = -1", "slot: int = 0"), const_shape, 0},
    {"ExAdd", SPECS("a: T", "b: T"), SPECS("out: T"), SPECS("T: {f32, f64}", "slot: int = 0"),
     add_shape, 0},
    {"ExAddN", SPECS("values: N * T"), SPECS("out: T"), SPECS("N: int >= 1", "T: {f32}"),
     same_as_input0, 0},
    {"ExTuple", SPECS("values: Tlist"), SPECS("out: Tlist"), SPECS("Tlist: list(type)"), NULL, 0},
    {"ExIncr", SPECS("x: f32"), SPECS("y: f32", "forwarded: int32"), SPECS("slot: int = 0"),
     incr_shape, 0},
    {"ExFail", SPECS("x: T"), SPECS("y: T"),
     SPECS("T: type", "code: int = 3", "message: string = \"boom\""), same_as_input0, 0},
    {"ExNoOutput", SPECS("x: f32"), SPECS("y: f32"), NULL, NULL, 0},
    {"ExRendezvous", SPECS("x: f32"), SPECS("y: f32"),
     SPECS("key: int", "count: int = 2", "timeout_ms: int = 5000"), same_as_input0,
     FLOE_OP_STATEFUL},
    {"ExTicks", NULL, SPECS("count: int64"), SPECS("slot: int"), NULL, FLOE_OP_STATEFUL},
    {"ExPlaceholder", NULL, SPECS("out: dtype"), SPECS("dtype: type", "shape: shape = ?"),
     placeholder_shape, 0},
    {"ExDevPass", SPECS("x: T"), SPECS("y: T"), SPECS("T: type", "slot: int = 0"),
     same_as_input0, 0},
    {"ExHostArg", SPECS("x: T", "n: int64"), SPECS("y: T"), SPECS("T: type"), same_as_input0, 0},
    {"ExVarHandle", NULL, SPECS("resource: resource"),
     SPECS("dtype: type", "shape: shape = ?", "shared_name: string = \"\"",
           "container: string = \"\""),
     NULL, FLOE_OP_STATEFUL},
    {"ExVarAssign", SPECS("resource: resource", "value: T"), NULL, SPECS("T: type"), NULL,
     FLOE_OP_STATEFUL},
    {"ExVarRead", SPECS("resource: resource"), SPECS("value: dtype"), SPECS("dtype: type"), NULL,
     FLOE_OP_STATEFUL},
    {"ExVarAddOne", SPECS("resource: resource"), NULL, NULL, NULL, FLOE_OP_STATEFUL},
};

typedef struct kernel_entry {
    const char *op, *device;
    floe_status (*compute)(floe_kernel_ctx *kc, void *state);
    bool counting;
    const char *const *host_memory;
} kernel_entry;

static const kernel_entry kernels[] = {
    {"ExConst", "CPU", const_compute, true, NULL},
    {"ExAdd", "CPU", add_compute, false, NULL},
    {"ExAddN", "CPU", addn_compute, false, NULL},
    {"ExTuple", "CPU", identity_all_compute, false, NULL},
    {"ExIncr", "CPU", incr_compute, false, NULL},
    {"ExFail", "CPU", fail_compute, false, NULL},
    {"ExNoOutput", "CPU", no_output_compute, false, NULL},
    {"ExRendezvous", "CPU", rendezvous_compute, false, NULL},
    {"ExTicks", "CPU", ticks_compute, false, NULL},
    {"ExPlaceholder", "CPU", placeholder_compute, false, NULL},
    {"ExDevPass", "CPU", devpass_cpu_compute, false, NULL},
    {"ExDevPass", "TESTDEV", devpass_compute, false, NULL},
    {"ExHostArg", "TESTDEV", hostarg_compute, false, SPECS("n")},
    {"ExVarHandle", "CPU", varhandle_compute, false, NULL},
    {"ExVarHandle", "TESTDEV", varhandle_compute, false, NULL},
    {"ExVarRead", "CPU", varread_compute, false, NULL},
    {"ExVarRead", "TESTDEV", varread_compute, false, NULL},
    {"ExVarAssign", "CPU", varassign_compute, false, NULL},
    {"ExVarAddOne", "CPU", varaddone_compute, false, NULL},
};

static floe_status exectest_init(floe_plugin *self, void **user) {
    *user = NULL;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        floe_op_def def;
        memset(&def, 0, sizeof(def));
        def.struct_size = sizeof(def);
        def.name = ops[i].name;
        def.inputs = ops[i].inputs;
        def.outputs = ops[i].outputs;
        def.attrs = ops[i].attrs;
        def.shape_fn = ops[i].shape_fn;
        def.flags = ops[i].flags;
        floe_status st = floe_register_op(self, &def);
        if (st != FLOE_OK)
            return st;
    }
    for (size_t i = 0; i < sizeof(kernels) / sizeof(kernels[0]); i++) {
        floe_kernel_def def;
        memset(&def, 0, sizeof(def));
        def.struct_size = sizeof(def);
        def.op = kernels[i].op;
        def.device_type = kernels[i].device;
        def.compute = kernels[i].compute;
        def.host_memory = kernels[i].host_memory;
        if (kernels[i].counting) {
            def.create = counting_create;
            def.destroy = counting_destroy;
        }
        floe_status st = floe_register_kernel(self, &def);
        if (st != FLOE_OK)
            return st;
    }
    for (int idx = 0; idx < 2; idx++) {
        floe_device_desc d;
        memset(&d, 0, sizeof(d));
        d.struct_size = sizeof(d);
        d.type = "TESTDEV";
        d.index = idx;
        d.priority = 10;
        d.description = "test device with its own memory";
        d.ops = &td_ops;
        floe_status st = floe_register_device(self, &d);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

FLOE_PLUGIN_DEFINE(exectest, "0.1.0", "The Floe developers", "Apache-2.0",
                   "test-only ops and the TESTDEV device for the executor tests", exectest_init,
                   NULL)
