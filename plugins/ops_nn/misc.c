/*
 * misc.c - Dropout, ResourceGather (embedding lookup) with its dense gradient op, and
 * InTopK / InTopKV2, on CPU.
 *
 * Dropout(x; rate, seed) -> (output, mask), x f32 or f64.  TensorFlow's tf.nn.dropout is
 *   a composition (RandomUniform, GreaterEqual, Select, Mul); here it is one fused op:
 *   each element is kept with probability 1 - rate, mask = 1 / (1 - rate) where kept and
 *   0 elsewhere, output = x * mask.  rate must lie in [0, 1).  The random bits are a
 *   counter-based hash of (seed, run number, element index), so a run is the same on
 *   any number of threads and a seeded node repeats its sequence of masks in a new
 *   session; seed 0 (the default) draws a seed per kernel from the clock.  The op is
 *   stateful (a new mask every run).  Gradient: upstream * mask (Mul of ops_math).
 *
 * ResourceGather(resource, indices; dtype, batch_dims = 0, validate_indices) -> the rows
 *   params[indices] of the variable, shape indices.shape + params.shape[1:]
 *   (TensorFlow's op; batch_dims other than 0 is UNIMPLEMENTED).  Every index must lie
 *   in [0, params.shape[0]): the error names the first bad one.  The variable is read
 *   under its shared lock.  Gradient: TensorFlow produces IndexedSlices; Floe has only
 *   dense tensors, so the gradient of the variable is the fused op
 *   ResourceGatherGrad(resource, indices, grad) -> zeros of the variable's shape with
 *   each row of grad added at its index (a scatter-add; repeated indices sum).
 *
 * InTopKV2(predictions f32 [batch, classes], targets [batch], k) -> bool [batch]: whether
 *   the target's prediction is among the k largest (fewer than k classes strictly
 *   larger; ties count in its favour).  A target out of range or a non-finite
 *   prediction in the row gives false, as TensorFlow.  InTopK takes k as an attr.
 *
 * Sections: Dropout; ResourceGather and ResourceGatherGrad; InTopK; definitions and
 * registration.
 */
#include "ops_nn-impl.h"

#include <stdatomic.h>
#include <time.h>

/* ---- Dropout ------------------------------------------------------------------------- */

typedef struct dropout_state {
    float rate;
    uint64_t seed;
    _Atomic uint64_t runs;         /* runs of this kernel so far: the hash's counter */
} dropout_state;

/* Chris Wellons' lowbias32: a 32-bit integer hash with good avalanche. */
static inline uint32_t hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static floe_status read_rate(const floe_attrs *a, float *rate) {
    floe_status st = floe_attrs_get_float(a, "rate", rate);
    if (st != FLOE_OK)
        return st;
    if (!(*rate >= 0.0f && *rate < 1.0f))
        return floe_fail(FLOE_INVALID_ARGUMENT, "Dropout: rate must be in [0, 1), got %g",
                         (double)*rate);
    return FLOE_OK;
}

static floe_status dropout_create(floe_kernel_ctx *kc, void **state) {
    static _Atomic uint64_t instances;
    const floe_attrs *a = floe_kernel_attrs(kc);
    int64_t seed = 0;
    float rate = 0;
    floe_status st;

    *state = NULL;
    if ((st = read_rate(a, &rate)) != FLOE_OK ||
        (a != NULL && floe_attrs_type(a, "seed") == FLOE_ATTR_INT &&
         (st = floe_attrs_get_int(a, "seed", &seed)) != FLOE_OK))
        return st;
    dropout_state *s = floe_alloc(sizeof(*s), 0);
    if (s == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "Dropout: out of memory");
    s->rate = rate;
    if (seed != 0) {
        s->seed = mix64((uint64_t)seed);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s->seed = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                        mix64(atomic_fetch_add(&instances, 1) + (uintptr_t)s));
    }
    atomic_init(&s->runs, 0);
    *state = s;
    return FLOE_OK;
}

static void dropout_destroy(void *state) {
    floe_free(state);
}

typedef struct dropout_args {
    floe_dtype dt;
    char *y, *mask;
    const char *x;
    uint64_t key;
    uint32_t threshold;            /* keep when the hash's top 24 bits >= threshold */
    double scale;
} dropout_args;

#define DROPOUT_ROWS(SFX, T)                                                             \
    static void dropout_##SFX(const dropout_args *p, int64_t begin, int64_t end) {       \
        T *y = (T *)(void *)p->y, *mask = (T *)(void *)p->mask;                          \
        const T *x = (const T *)(const void *)p->x;                                      \
        const T scale = (T)p->scale;                                                     \
        const uint32_t k0 = (uint32_t)p->key, k1 = (uint32_t)(p->key >> 32);             \
        const uint32_t th = p->threshold;                                                \
        for (int64_t i = begin; i < end; i++) {                                          \
            uint32_t h = hash32(hash32((uint32_t)i ^ k0) + ((uint32_t)((uint64_t)i >> 32) ^ k1)); \
            const bool keep = (h >> 8) >= th;                                            \
            mask[i] = keep ? scale : (T)0;                                               \
            y[i] = keep ? x[i] * scale : (T)0;  /* 0, not NaN, for a dropped inf */      \
        }                                                                                \
    }
DROPOUT_ROWS(f32, float)
DROPOUT_ROWS(f64, double)

static void dropout_range(void *arg, int64_t begin, int64_t end) {
    const dropout_args *p = arg;
    if (p->dt == FLOE_DTYPE_F32)
        dropout_f32(p, begin, end);
    else
        dropout_f64(p, begin, end);
}

static floe_status dropout_compute(floe_kernel_ctx *kc, void *state) {
    dropout_state *s = state;
    floe_tensor *x, *y = NULL, *mask = NULL;
    floe_status st;

    if (s == NULL)
        return floe_fail(FLOE_INTERNAL, "Dropout: kernel was not created");
    if ((st = ops_nn__input(kc, 0, FLOE_DTYPE_INVALID, &x)) != FLOE_OK)
        return st;
    floe_dtype dt = floe_tensor_dtype(x);
    if (dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64)
        return floe_fail(FLOE_UNIMPLEMENTED, "Dropout: no CPU kernel for dtype %s",
                         floe_dtype_name(dt));
    const int64_t *shape = floe_tensor_shape(x);
    int nd = floe_tensor_ndim(x);
    if ((st = floe_kernel_alloc_output(kc, 1, shape, nd, &mask)) != FLOE_OK ||
        (st = floe_kernel_forward_or_alloc(kc, 0, 0, shape, nd, &y)) != FLOE_OK)
        return st;
    uint64_t run = atomic_fetch_add(&s->runs, 1);
    int64_t n = floe_tensor_num_elements(x);
    if (n == 0)
        return FLOE_OK;
    dropout_args args = {dt, floe_tensor_data(y), floe_tensor_data(mask), floe_tensor_data(x),
                         mix64(s->seed ^ mix64(run)),
                         (uint32_t)((double)s->rate * 16777216.0), 1.0 / (1.0 - s->rate)};
    if (args.y == NULL || args.mask == NULL)
        return floe_fail(FLOE_INTERNAL, "Dropout: outputs are not in host memory");
    ops_nn__parallel(floe_kernel_threadpool(kc), n, OPS_NN_GRAIN, dropout_range, &args);
    return FLOE_OK;
}

static floe_status dropout_gradient(floe_grad_ctx *gc) {
    floe_output up = floe_grad_upstream(gc, 0), g;
    if (up.node == NULL)
        return FLOE_OK;
    floe_output in[2] = {up, floe_grad_output(gc, 1)};
    floe_status st = ops_nn__grad_node(gc, "Mul", in, 2, NULL, &g);
    if (st == FLOE_OK)
        st = floe_grad_set_input_grad(gc, 0, g);
    return st;
}

static floe_status dropout_shape_fn(floe_shape_ctx *sc) {
    float rate = 0;
    floe_status st = read_rate(floe_shape_attrs(sc), &rate);
    floe_shape x = floe_shape_input(sc, 0);
    if (st == FLOE_OK)
        st = floe_shape_set_output(sc, 0, &x);
    if (st == FLOE_OK)
        st = floe_shape_set_output(sc, 1, &x);
    return st;
}

/* ---- ResourceGather and ResourceGatherGrad ------------------------------------------- */

/* Checks every index of @idx against [0, @limit); the error names the first bad one. */
static floe_status check_indices(const char *op, const floe_tensor *idx, int64_t limit) {
    int64_t n = floe_tensor_num_elements(idx);
    const void *p = floe_tensor_data(idx);
    bool wide = floe_tensor_dtype(idx) == FLOE_DTYPE_I64;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = wide ? ((const int64_t *)p)[i] : ((const int32_t *)p)[i];
        if (v < 0 || v >= limit)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: indices[%lld] = %lld is not in "
                             "[0, %lld)", op, (long long)i, (long long)v, (long long)limit);
    }
    return FLOE_OK;
}

static inline int64_t index_at(const void *p, bool wide, int64_t i) {
    return wide ? ((const int64_t *)p)[i] : ((const int32_t *)p)[i];
}

/* Checks a variable's value for a gather: dtype @dt, rank >= 1, host memory. */
static floe_status check_params(const char *op, floe_dtype dt, const floe_tensor *t) {
    if (floe_tensor_dtype(t) != dt)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: the variable has dtype %s, the op %s", op,
                         floe_dtype_name(floe_tensor_dtype(t)), floe_dtype_name(dt));
    if (floe_tensor_ndim(t) < 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: params must be at least 1-D, the "
                         "variable is a scalar", op);
    if (floe_tensor_num_elements(t) > 0 && floe_tensor_data(t) == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: the variable is not in host memory", op);
    return FLOE_OK;
}

/* The variable behind input 0 and its value (checked by check_params), locked on
 * FLOE_OK: the caller unlocks.  A variable never assigned is FAILED_PRECONDITION
 * naming it. */
static floe_status lock_params(floe_kernel_ctx *kc, const char *op, floe_dtype dt,
                               floe_variable **var, floe_tensor **value) {
    floe_tensor *h, *t;
    floe_variable *v = NULL;
    floe_status st;

    *var = NULL;
    *value = NULL;
    if ((st = ops_nn__input(kc, 0, FLOE_DTYPE_RESOURCE, &h)) != FLOE_OK ||
        (st = floe_kernel_variable(kc, h, 1, &v)) != FLOE_OK)
        return st;
    floe_variable_lock(v, 0);
    t = floe_variable_value(v);
    if (t == NULL) {
        /* The host has no member giving a variable's name, but value_for_update() of an
         * uninitialised variable fails with a message naming it (under the exclusive
         * lock it needs); if another run assigned it meanwhile, read that value. */
        floe_variable_unlock(v);
        floe_variable_lock(v, 1);
        st = floe_variable_value_for_update(v, &t);
        if (st == FLOE_OK && t == NULL)
            st = floe_fail(FLOE_FAILED_PRECONDITION, "%s: the variable is uninitialised", op);
    }
    if (st == FLOE_OK)
        st = check_params(op, dt, t);
    if (st != FLOE_OK) {
        floe_variable_unlock(v);
        return st;
    }
    *var = v;
    *value = t;
    return FLOE_OK;
}

/* indices.shape + params.shape[1:] into @out; *@nd (out) its rank. */
static floe_status gathered_shape(const char *op, const floe_tensor *idx,
                                  const floe_tensor *params, int64_t *out, int *nd) {
    int ni = floe_tensor_ndim(idx), np = floe_tensor_ndim(params);
    *nd = 0;
    if (ni + np - 1 > FLOE_MAX_DIMS)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: result rank %d exceeds %d", op,
                         ni + np - 1, FLOE_MAX_DIMS);
    for (int d = 0; d < ni; d++)
        out[d] = floe_tensor_dim(idx, d);
    for (int d = 1; d < np; d++)
        out[ni + d - 1] = floe_tensor_dim(params, d);
    *nd = ni + np - 1;
    return FLOE_OK;
}

typedef struct gather_args {
    char *out;
    const char *params;
    const void *idx;
    bool wide;
    size_t row_bytes;
} gather_args;

static void gather_range(void *arg, int64_t begin, int64_t end) {
    const gather_args *p = arg;
    for (int64_t i = begin; i < end; i++)
        memcpy(p->out + (size_t)i * p->row_bytes,
               p->params + (size_t)index_at(p->idx, p->wide, i) * p->row_bytes, p->row_bytes);
}

static floe_status resource_gather_compute(floe_kernel_ctx *kc, void *state) {
    const floe_attrs *a = floe_kernel_attrs(kc);
    floe_dtype dt = floe_kernel_output_dtype(kc, 0);
    int64_t batch_dims = 0, shape[FLOE_MAX_DIMS];
    floe_tensor *idx, *params, *out = NULL;
    floe_variable *v;
    floe_status st;
    int nd;

    if (a != NULL && floe_attrs_type(a, "batch_dims") == FLOE_ATTR_INT &&
        (st = floe_attrs_get_int(a, "batch_dims", &batch_dims)) != FLOE_OK)
        return st;
    if (batch_dims != 0)
        return floe_fail(FLOE_UNIMPLEMENTED, "ResourceGather: batch_dims %lld (only 0 is "
                         "supported)", (long long)batch_dims);
    if ((st = ops_nn__input(kc, 1, FLOE_DTYPE_INVALID, &idx)) != FLOE_OK)
        return st;
    if ((st = lock_params(kc, "ResourceGather", dt, &v, &params)) != FLOE_OK)
        return st;
    int64_t rows = floe_tensor_dim(params, 0);
    if ((st = check_indices("ResourceGather", idx, rows)) == FLOE_OK &&
        (st = gathered_shape("ResourceGather", idx, params, shape, &nd)) == FLOE_OK)
        st = floe_kernel_alloc_output(kc, 0, shape, nd, &out);
    int64_t n = floe_tensor_num_elements(idx);
    size_t row_bytes = rows > 0 ? floe_tensor_nbytes(params) / (size_t)rows : 0;
    if (st == FLOE_OK && n > 0 && row_bytes > 0) {
        gather_args args = {floe_tensor_data(out), floe_tensor_data(params),
                            floe_tensor_data(idx), floe_tensor_dtype(idx) == FLOE_DTYPE_I64,
                            row_bytes};
        if (args.out == NULL) {
            st = floe_fail(FLOE_INTERNAL, "ResourceGather: output is not in host memory");
        } else {
            int64_t grain = (int64_t)(256 * 1024 / row_bytes);
            ops_nn__parallel(floe_kernel_threadpool(kc), n, grain < 1 ? 1 : grain,
                             gather_range, &args);
        }
    }
    floe_variable_unlock(v);
    return st;
}

#define SCATTER_ROWS(SFX, T)                                                             \
    static void scatter_add_##SFX(T *out, const T *g, const void *idx, bool wide,        \
                                  int64_t n, int64_t inner) {                            \
        for (int64_t i = 0; i < n; i++) {                                                \
            T *o = out + index_at(idx, wide, i) * inner;                                 \
            const T *gi = g + i * inner;                                                 \
            OPS_NN_IVDEP                                                                 \
            for (int64_t j = 0; j < inner; j++)                                          \
                o[j] += gi[j];                                                           \
        }                                                                                \
    }
SCATTER_ROWS(f32, float)
SCATTER_ROWS(f64, double)

static floe_status resource_gather_grad_compute(floe_kernel_ctx *kc, void *state) {
    floe_dtype dt = floe_kernel_output_dtype(kc, 0);
    int64_t shape[FLOE_MAX_DIMS], vshape[FLOE_MAX_DIMS];
    floe_tensor *idx, *g, *params, *out = NULL;
    floe_variable *v;
    floe_status st;
    int nd, vnd;

    if ((st = ops_nn__input(kc, 1, FLOE_DTYPE_INVALID, &idx)) != FLOE_OK ||
        (st = ops_nn__input(kc, 2, dt, &g)) != FLOE_OK)
        return st;
    if ((st = lock_params(kc, "ResourceGatherGrad", dt, &v, &params)) != FLOE_OK)
        return st;
    /* only the variable's shape is needed: copy it and let go of the lock */
    vnd = floe_tensor_ndim(params);
    for (int d = 0; d < vnd; d++)
        vshape[d] = floe_tensor_dim(params, d);
    st = gathered_shape("ResourceGatherGrad", idx, params, shape, &nd);
    floe_variable_unlock(v);
    if (st != FLOE_OK)
        return st;
    bool match = floe_tensor_ndim(g) == nd;
    for (int d = 0; match && d < nd; d++)
        match = floe_tensor_dim(g, d) == shape[d];
    if (!match) {
        char sg[128], se[128];
        ops_nn__format_dims(floe_tensor_shape(g), floe_tensor_ndim(g), sg, sizeof(sg));
        ops_nn__format_dims(shape, nd, se, sizeof(se));
        return floe_fail(FLOE_INVALID_ARGUMENT, "ResourceGatherGrad: grad has shape %s, "
                         "expected indices.shape + params.shape[1:] = %s", sg, se);
    }
    if ((st = check_indices("ResourceGatherGrad", idx, vshape[0])) != FLOE_OK ||
        (st = floe_kernel_alloc_output(kc, 0, vshape, vnd, &out)) != FLOE_OK)
        return st;
    if (floe_tensor_nbytes(out) == 0)
        return FLOE_OK;
    void *o = floe_tensor_data(out);
    if (o == NULL)
        return floe_fail(FLOE_INTERNAL, "ResourceGatherGrad: output is not in host memory");
    memset(o, 0, floe_tensor_nbytes(out));
    int64_t n = floe_tensor_num_elements(idx);
    int64_t inner = vshape[0] > 0 ? floe_tensor_num_elements(out) / vshape[0] : 0;
    const void *ip = floe_tensor_data(idx);
    bool wide = floe_tensor_dtype(idx) == FLOE_DTYPE_I64;
    if (n == 0 || inner == 0)
        return FLOE_OK;
    if (dt == FLOE_DTYPE_F32)
        scatter_add_f32(o, floe_tensor_data(g), ip, wide, n, inner);
    else
        scatter_add_f64(o, floe_tensor_data(g), ip, wide, n, inner);
    return FLOE_OK;
}

static floe_status resource_gather_gradient(floe_grad_ctx *gc) {
    floe_output up = floe_grad_upstream(gc, 0), g;
    if (up.node == NULL)
        return FLOE_OK;
    floe_output in[3] = {floe_grad_input(gc, 0), floe_grad_input(gc, 1), up};
    floe_dtype dt = floe_grad_edge_dtype(gc, up);
    floe_attrs *attrs = NULL;
    floe_status st = floe_attrs_new(&attrs);
    if (st == FLOE_OK)
        st = floe_attrs_set_type(attrs, "dtype", dt);
    if (st == FLOE_OK)
        st = ops_nn__grad_node(gc, "ResourceGatherGrad", in, 3, attrs, &g);
    floe_attrs_free(attrs);
    if (st == FLOE_OK)
        st = floe_grad_set_input_grad(gc, 0, g);
    return st;
}

/* Unknown shape: the variable's shape is not known when the graph is built. */
static floe_status unknown_shape_fn(floe_shape_ctx *sc) {
    floe_shape s;
    memset(&s, 0, sizeof(s));
    s.ndim = -1;
    return floe_shape_set_output(sc, 0, &s);
}

/* ---- InTopK -------------------------------------------------------------------------- */

static floe_status in_top_k_common(floe_kernel_ctx *kc, int64_t k, const char *op) {
    floe_tensor *pred, *targets, *out = NULL;
    floe_status st;

    if ((st = ops_nn__input(kc, 0, FLOE_DTYPE_F32, &pred)) != FLOE_OK ||
        (st = ops_nn__input(kc, 1, FLOE_DTYPE_INVALID, &targets)) != FLOE_OK)
        return st;
    if (floe_tensor_ndim(pred) != 2)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: predictions must be 2-dimensional, got "
                         "rank %d", op, floe_tensor_ndim(pred));
    int64_t batch = floe_tensor_dim(pred, 0), classes = floe_tensor_dim(pred, 1);
    if (floe_tensor_ndim(targets) != 1 || floe_tensor_dim(targets, 0) != batch)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: targets must be 1-D with the %lld rows "
                         "of predictions", op, (long long)batch);
    if ((st = floe_kernel_alloc_output(kc, 0, &batch, 1, &out)) != FLOE_OK)
        return st;
    if (batch == 0)
        return FLOE_OK;
    uint8_t *o = floe_tensor_data(out);
    const float *p = floe_tensor_data(pred);
    const void *t = floe_tensor_data(targets);
    bool wide = floe_tensor_dtype(targets) == FLOE_DTYPE_I64;
    if (o == NULL)
        return floe_fail(FLOE_INTERNAL, "%s: output is not in host memory", op);
    for (int64_t b = 0; b < batch; b++) {
        const float *row = p + b * classes;
        int64_t target = index_at(t, wide, b), larger = 0;
        bool unknown = target < 0 || target >= classes;
        const float tp = unknown ? 0.0f : row[target];
        unknown = unknown || !(tp - tp == 0.0f);
        for (int64_t j = 0; !unknown && j < classes; j++) {
            unknown = !(row[j] - row[j] == 0.0f);   /* inf or NaN */
            larger += row[j] > tp;
        }
        o[b] = !unknown && larger < k;
    }
    return FLOE_OK;
}

static floe_status in_top_k_v2_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *kt;
    floe_status st = ops_nn__input(kc, 2, FLOE_DTYPE_INVALID, &kt);
    if (st != FLOE_OK)
        return st;
    if (floe_tensor_num_elements(kt) != 1 || floe_tensor_ndim(kt) > 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "InTopKV2: k must be a scalar");
    int64_t k = index_at(floe_tensor_data(kt), floe_tensor_dtype(kt) == FLOE_DTYPE_I64, 0);
    return in_top_k_common(kc, k, "InTopKV2");
}

static floe_status in_top_k_compute(floe_kernel_ctx *kc, void *state) {
    int64_t k = 0;
    floe_status st = floe_attrs_get_int(floe_kernel_attrs(kc), "k", &k);
    return st != FLOE_OK ? st : in_top_k_common(kc, k, "InTopK");
}

static floe_status in_top_k_shape_fn(floe_shape_ctx *sc) {
    floe_shape p = floe_shape_input(sc, 0), t = floe_shape_input(sc, 1), out;
    if (p.ndim >= 0 && p.ndim != 2)
        return floe_fail(FLOE_INVALID_ARGUMENT, "predictions must be 2-dimensional, got "
                         "rank %d", p.ndim);
    if (t.ndim >= 0 && t.ndim != 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "targets must be 1-dimensional, got rank %d",
                         t.ndim);
    memset(&out, 0, sizeof(out));
    out.ndim = 1;
    out.dims[0] = p.ndim == 2 ? p.dims[0] : -1;
    if (t.ndim == 1 && out.dims[0] >= 0 && t.dims[0] >= 0 && t.dims[0] != out.dims[0])
        return floe_fail(FLOE_INVALID_ARGUMENT, "targets have %lld rows, predictions %lld",
                         (long long)t.dims[0], (long long)out.dims[0]);
    if (out.dims[0] < 0 && t.ndim == 1)
        out.dims[0] = t.dims[0];
    return floe_shape_set_output(sc, 0, &out);
}

/* ---- Definitions and registration -------------------------------------------------- */

#define S(...) ((const char *const[]){__VA_ARGS__, NULL})
#define GATHER_TYPES "{f32, f64, f16, bf16, i8, i16, i32, i64, u8, u16, u32, u64, bool}"

static const floe_op_def op_defs[] = {
    {sizeof(floe_op_def), "Dropout", S("x: T"), S("output: T", "mask: T"),
     S("rate: float", "seed: int = 0", "T: {bf16, f16, f32, f64}"), dropout_shape_fn,
     FLOE_OP_STATEFUL,
     "Keeps each element with probability 1 - rate, scaled by 1 / (1 - rate); mask holds "
     "the factor (0 or 1 / (1 - rate)).  seed 0: a seed from the clock."},
    {sizeof(floe_op_def), "ResourceGather", S("resource: resource", "indices: Tindices"),
     S("output: dtype"),
     S("batch_dims: int = 0", "validate_indices: bool = true", "dtype: " GATHER_TYPES,
       "Tindices: {i32, i64}"),
     unknown_shape_fn, FLOE_OP_STATEFUL,
     "Rows params[indices] of a resource variable: indices.shape + params.shape[1:]."},
    {sizeof(floe_op_def), "ResourceGatherGrad",
     S("resource: resource", "indices: Tindices", "grad: dtype"), S("output: dtype"),
     S("dtype: {bf16, f16, f32, f64}", "Tindices: {i32, i64}"), unknown_shape_fn,
     FLOE_OP_NO_GRADIENT,
     "Dense gradient of ResourceGather for the variable: zeros of its shape with each row "
     "of grad added at its index."},
    {sizeof(floe_op_def), "InTopKV2", S("predictions: f32", "targets: T", "k: T"),
     S("precision: bool"), S("T: {i32, i64} = i32"), in_top_k_shape_fn, FLOE_OP_NO_GRADIENT,
     "Whether targets are among the k largest predictions of their row."},
    {sizeof(floe_op_def), "InTopK", S("predictions: f32", "targets: T"), S("precision: bool"),
     S("k: int", "T: {i32, i64} = i32"), in_top_k_shape_fn, FLOE_OP_NO_GRADIENT,
     "Whether targets are among the k largest predictions of their row."},
};

#define KDEF(OP, CONSTRAINTS, CREATE, COMPUTE, DESTROY, HOSTMEM)                         \
    {sizeof(floe_kernel_def), OP, "CPU", CONSTRAINTS, 0, CREATE, COMPUTE, DESTROY, HOSTMEM}

static const floe_kernel_def kernel_defs[] = {
    KDEF("Dropout", S("T: {f32, f64}"), dropout_create, dropout_compute, dropout_destroy,
         NULL),
    KDEF("ResourceGather", NULL, NULL, resource_gather_compute, NULL, NULL),
    KDEF("ResourceGatherGrad", S("dtype: {f32, f64}"), NULL, resource_gather_grad_compute,
         NULL, NULL),
    KDEF("InTopKV2", NULL, NULL, in_top_k_v2_compute, NULL, NULL),
    KDEF("InTopK", NULL, NULL, in_top_k_compute, NULL, NULL),
};

floe_status ops_nn__register_misc(floe_plugin *self) {
    floe_status st = FLOE_OK;
    for (size_t i = 0; st == FLOE_OK && i < sizeof(op_defs) / sizeof(op_defs[0]); i++) {
        st = floe_register_op(self, &op_defs[i]);
        if (st == FLOE_OK)
            st = floe_register_kernel(self, &kernel_defs[i]);
    }
    if (st == FLOE_OK)
        st = floe_register_gradient(self, "Dropout", dropout_gradient);
    if (st == FLOE_OK)
        st = floe_register_gradient(self, "ResourceGather", resource_gather_gradient);
    return st;
}
