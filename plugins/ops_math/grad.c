/*
 * grad.c - gradient functions of the ops_math ops (TensorFlow's math_grad.py and
 * array_grad.py), and the helper ops they use: AddN, BroadcastGradientArgs,
 * ReducedShape, InvertPermutation, ConcatOffset, GatherGrad, ProdGrad and
 * StridedSliceGrad.
 *
 * Each gradient function reads its forward node and upstream gradient through the
 * host's grad_* services and adds nodes with grad_add_node().  Broadcasting binary
 * ops reduce their gradient back to each input's shape: statically (a Sum over
 * constant axes) when the inferred shapes settle which axes were broadcast, else
 * through BroadcastGradientArgs on the runtime shapes, as TensorFlow does.
 */
#include "ops_math-impl.h"

#include <stdio.h>

#define TRY(x)                                                                         \
    do {                                                                               \
        floe_status st_ = (x);                                                         \
        if (st_ != FLOE_OK)                                                            \
            return st_;                                                                \
    } while (0)

/* ---- Helpers for gradient functions ------------------------------------------------ */

/* Adds @op on @n inputs with optional attrs; *@out is its output 0. */
static floe_status g_op(floe_grad_ctx *gc, const char *op, const floe_output *in, int n,
                        const floe_attrs *attrs, floe_output *out) {
    floe_node *node = NULL;
    floe_status st = floe_grad_add_node(gc, op, in, n, attrs, &node);
    out->node = node;
    out->index = 0;
    out->reserved_ = 0;
    return st;
}

static floe_status g_op1(floe_grad_ctx *gc, const char *op, floe_output a, floe_output *out) {
    return g_op(gc, op, &a, 1, NULL, out);
}

static floe_status g_op2(floe_grad_ctx *gc, const char *op, floe_output a, floe_output b,
                         floe_output *out) {
    floe_output in[2] = {a, b};
    return g_op(gc, op, in, 2, NULL, out);
}

/* An op with one int/bool/type attr. */
static floe_status g_op_attr(floe_grad_ctx *gc, const char *op, const floe_output *in, int n,
                             const char *attr, int kind, int64_t v, floe_output *out) {
    floe_attrs *a = NULL;
    floe_status st = floe_attrs_new(&a);
    if (st == FLOE_OK)
        st = kind == 0   ? floe_attrs_set_int(a, attr, v)
             : kind == 1 ? floe_attrs_set_bool(a, attr, (int)v)
                         : floe_attrs_set_type(a, attr, (floe_dtype)v);
    if (st == FLOE_OK)
        st = g_op(gc, op, in, n, a, out);
    floe_attrs_free(a);
    return st;
}

/* A 1-D Const of @dt (i32 or i64) holding @v[0..n). */
static floe_status g_const_vec(floe_grad_ctx *gc, floe_dtype dt, const int64_t *v, int n,
                               floe_output *out) {
    floe_tensor *t = NULL;
    floe_attrs *a = NULL;
    int64_t dims[1] = {n};
    floe_status st = floe_tensor_new(dt, dims, 1, &t);
    if (st != FLOE_OK)
        return st;
    for (int i = 0; i < n; i++) {
        if (dt == FLOE_DTYPE_I64)
            ((int64_t *)floe_tensor_data(t))[i] = v[i];
        else
            ((int32_t *)floe_tensor_data(t))[i] = (int32_t)v[i];
    }
    st = floe_attrs_new(&a);
    if (st == FLOE_OK)
        st = floe_attrs_set_tensor(a, "value", t);
    if (st == FLOE_OK)
        st = floe_attrs_set_type(a, "dtype", dt);
    if (st == FLOE_OK)
        st = g_op(gc, "Const", NULL, 0, a, out);
    floe_attrs_free(a);
    floe_tensor_unref(t);
    return st;
}

/* Shape(@x) as @dt (i32 or i64): a Const when the static shape is fully known. */
static floe_status g_shape(floe_grad_ctx *gc, floe_output x, floe_dtype dt, floe_output *out) {
    floe_shape s = floe_grad_edge_shape(gc, x);
    bool known = s.ndim >= 0;
    for (int i = 0; i < s.ndim && known; i++)
        known = s.dims[i] >= 0;
    if (known)
        return g_const_vec(gc, dt, s.dims, s.ndim, out);
    return g_op_attr(gc, "Shape", &x, 1, "out_type", 2, dt, out);
}

/* Reshape(@g, shape of @x). */
static floe_status g_reshape_like(floe_grad_ctx *gc, floe_output g, floe_output x,
                                  floe_output *out) {
    floe_output shape;
    TRY(g_shape(gc, x, FLOE_DTYPE_I32, &shape));
    return g_op2(gc, "Reshape", g, shape, out);
}

static floe_status g_scalar(floe_grad_ctx *gc, floe_output like, double v, floe_output *out) {
    return floe_grad_const_scalar(gc, floe_grad_edge_dtype(gc, like), v, out);
}

/* Reduces @grad (the broadcast shape) back to the shape of @x.  @other is the other
 * operand of an elementwise op (its static shape helps settle the axes) or a NULL
 * node when there is none. */
static floe_status g_unbroadcast(floe_grad_ctx *gc, floe_output grad, floe_output x,
                                 floe_output other, floe_output *out) {
    floe_shape sx = floe_grad_edge_shape(gc, x);
    floe_shape sg = floe_grad_edge_shape(gc, grad);
    floe_shape so;
    int64_t axes[FLOE_MAX_DIMS];
    int naxes = 0;
    bool dynamic = sx.ndim < 0 || sg.ndim < 0 || sg.ndim < sx.ndim;

    so.ndim = -1;
    if (other.node != NULL) {
        so = floe_grad_edge_shape(gc, other);
        if (so.ndim < 0)
            dynamic = true;
    }
    for (int d = 0; d < sg.ndim && !dynamic; d++) {
        int xi = d - (sg.ndim - sx.ndim);
        /* The extent x is broadcast against: the other operand's (absent: 1), or the
         * gradient's own when there is no other operand. */
        int64_t od = sg.dims[d];
        if (other.node != NULL) {
            int oi = d - (sg.ndim - so.ndim);
            od = oi >= 0 ? so.dims[oi] : 1;
        }
        if (xi < 0) {
            axes[naxes++] = d;
            continue;
        }
        int64_t xd = sx.dims[xi];
        if (xd == 1 && od != 1)
            axes[naxes++] = d;          /* summing an axis of extent 1 is harmless */
        else if (xd < 0 && od != 1)
            dynamic = true;             /* x may or may not have been broadcast */
    }
    if (!dynamic) {
        floe_output ax, sum;
        if (naxes == 0 && sg.ndim == sx.ndim) {
            *out = grad;
            return FLOE_OK;
        }
        TRY(g_const_vec(gc, FLOE_DTYPE_I32, axes, naxes, &ax));
        TRY(g_op2(gc, "Sum", grad, ax, &sum));
        return g_reshape_like(gc, sum, x, out);
    }
    floe_output shx, shg, r, sum;
    floe_node *bga = NULL;
    TRY(g_op_attr(gc, "Shape", &x, 1, "out_type", 2, FLOE_DTYPE_I32, &shx));
    TRY(g_op_attr(gc, "Shape", &grad, 1, "out_type", 2, FLOE_DTYPE_I32, &shg));
    floe_output bin[2] = {shx, shg};
    TRY(floe_grad_add_node(gc, "BroadcastGradientArgs", bin, 2, NULL, &bga));
    r.node = bga;
    r.index = 0;
    r.reserved_ = 0;
    TRY(g_op2(gc, "Sum", grad, r, &sum));
    return g_op2(gc, "Reshape", sum, shx, out);
}

/* Shorthands for the forward node's edges. */
static floe_output in_(floe_grad_ctx *gc, int i) {
    return floe_grad_input(gc, i);
}

static floe_output up_(floe_grad_ctx *gc, int i) {
    return floe_grad_upstream(gc, i);
}

static bool is_float(floe_dtype dt) {
    return dt == FLOE_DTYPE_F32 || dt == FLOE_DTYPE_F64 || dt == FLOE_DTYPE_F16 ||
           dt == FLOE_DTYPE_BF16 || dt == FLOE_DTYPE_COMPLEX64;
}

/* The upstream gradient of output @i, or zeros like that output when none reached it. */
static floe_status up_or_zeros(floe_grad_ctx *gc, int i, floe_output *out) {
    floe_output u = up_(gc, i);
    if (u.node != NULL) {
        *out = u;
        return FLOE_OK;
    }
    return g_op1(gc, "ZerosLike", floe_grad_output(gc, i), out);
}

static floe_status g_sum_all(floe_grad_ctx *gc, floe_output x, floe_output *out);

/* ---- Elementwise ------------------------------------------------------------------- */

static floe_status identity_grad(floe_grad_ctx *gc) {
    return floe_grad_set_input_grad(gc, 0, up_(gc, 0));
}

static floe_status prevent_grad(floe_grad_ctx *gc) {
    const char *msg = NULL;
    size_t len = 0;
    floe_attrs_get_string(floe_grad_attrs(gc), "message", &msg, &len);
    return floe_fail(FLOE_INVALID_ARGUMENT, "gradient explicitly prevented on node '%s'%s%.*s",
                     floe_grad_node_name(gc), len > 0 ? ": " : "", (int)len, msg ? msg : "");
}

static floe_status add_grad(floe_grad_ctx *gc) {
    floe_output g = up_(gc, 0), x = in_(gc, 0), y = in_(gc, 1), gx, gy;
    TRY(g_unbroadcast(gc, g, x, y, &gx));
    TRY(g_unbroadcast(gc, g, y, x, &gy));
    TRY(floe_grad_set_input_grad(gc, 0, gx));
    return floe_grad_set_input_grad(gc, 1, gy);
}

static floe_status sub_grad(floe_grad_ctx *gc) {
    floe_output g = up_(gc, 0), x = in_(gc, 0), y = in_(gc, 1), gx, gy, ng;
    TRY(g_unbroadcast(gc, g, x, y, &gx));
    TRY(g_op1(gc, "Neg", g, &ng));
    TRY(g_unbroadcast(gc, ng, y, x, &gy));
    TRY(floe_grad_set_input_grad(gc, 0, gx));
    return floe_grad_set_input_grad(gc, 1, gy);
}

static floe_status mul_grad(floe_grad_ctx *gc) {
    floe_output g = up_(gc, 0), x = in_(gc, 0), y = in_(gc, 1), a, b, gx, gy;
    TRY(g_op2(gc, "Mul", g, y, &a));
    TRY(g_unbroadcast(gc, a, x, y, &gx));
    TRY(g_op2(gc, "Mul", x, g, &b));
    TRY(g_unbroadcast(gc, b, y, x, &gy));
    TRY(floe_grad_set_input_grad(gc, 0, gx));
    return floe_grad_set_input_grad(gc, 1, gy);
}

static floe_status realdiv_grad(floe_grad_ctx *gc) {
    floe_output g = up_(gc, 0), x = in_(gc, 0), y = in_(gc, 1), a, nx, q, q2, b, gx, gy;
    TRY(g_op2(gc, "RealDiv", g, y, &a));
    TRY(g_unbroadcast(gc, a, x, y, &gx));
    TRY(g_op1(gc, "Neg", x, &nx));
    TRY(g_op2(gc, "RealDiv", nx, y, &q));
    TRY(g_op2(gc, "RealDiv", q, y, &q2));
    TRY(g_op2(gc, "Mul", g, q2, &b));
    TRY(g_unbroadcast(gc, b, y, x, &gy));
    TRY(floe_grad_set_input_grad(gc, 0, gx));
    return floe_grad_set_input_grad(gc, 1, gy);
}

/* FloorMod: x - floor(x / y) y, so dx = g and dy = -g floor(x / y). */
static floe_status floormod_grad(floe_grad_ctx *gc) {
    floe_output g = up_(gc, 0), x = in_(gc, 0), y = in_(gc, 1), q, nq, b, gx, gy;
    TRY(g_unbroadcast(gc, g, x, y, &gx));
    TRY(g_op2(gc, "FloorDiv", x, y, &q));
    TRY(g_op1(gc, "Neg", q, &nq));
    TRY(g_op2(gc, "Mul", g, nq, &b));
    TRY(g_unbroadcast(gc, b, y, x, &gy));
    TRY(floe_grad_set_input_grad(gc, 0, gx));
    return floe_grad_set_input_grad(gc, 1, gy);
}

/* FloorDiv is piecewise constant: no gradient flows (TensorFlow returns None). */
static floe_status floordiv_grad(floe_grad_ctx *gc) {
    (void)gc;
    return FLOE_OK;
}

/* Maximum (ge) and Minimum (le): the gradient goes to the selected operand (x on ties). */
static floe_status minmax_grad(floe_grad_ctx *gc, const char *cmp) {
    floe_output g = up_(gc, 0), x = in_(gc, 0), y = in_(gc, 1), mask, zeros, a, b, gx, gy;
    TRY(g_op2(gc, cmp, x, y, &mask));
    TRY(g_op1(gc, "ZerosLike", g, &zeros));
    floe_output sa[3] = {mask, g, zeros}, sb[3] = {mask, zeros, g};
    TRY(g_op(gc, "SelectV2", sa, 3, NULL, &a));
    TRY(g_op(gc, "SelectV2", sb, 3, NULL, &b));
    TRY(g_unbroadcast(gc, a, x, y, &gx));
    TRY(g_unbroadcast(gc, b, y, x, &gy));
    TRY(floe_grad_set_input_grad(gc, 0, gx));
    return floe_grad_set_input_grad(gc, 1, gy);
}

static floe_status maximum_grad(floe_grad_ctx *gc) {
    return minmax_grad(gc, "GreaterEqual");
}

static floe_status minimum_grad(floe_grad_ctx *gc) {
    return minmax_grad(gc, "LessEqual");
}

/* z = x ** y: dz/dx = y x^(y-1); dz/dy = z log(x) where x > 0, else 0. */
static floe_status pow_grad(floe_grad_ctx *gc) {
    floe_output g = up_(gc, 0), x = in_(gc, 0), y = in_(gc, 1), z = floe_grad_output(gc, 0);
    floe_output one, ym1, p, a, b, gx, zero, pos, safe_x, logx, zeros, sel, c, d, gy;
    TRY(g_scalar(gc, y, 1.0, &one));
    TRY(g_op2(gc, "Sub", y, one, &ym1));
    TRY(g_op2(gc, "Pow", x, ym1, &p));
    TRY(g_op2(gc, "Mul", y, p, &a));
    TRY(g_op2(gc, "Mul", g, a, &b));
    TRY(g_unbroadcast(gc, b, x, y, &gx));
    TRY(g_scalar(gc, x, 0.0, &zero));
    TRY(g_op2(gc, "Greater", x, zero, &pos));
    TRY(g_op1(gc, "OnesLike", x, &one));
    floe_output s1[3] = {pos, x, one};
    TRY(g_op(gc, "SelectV2", s1, 3, NULL, &safe_x));
    TRY(g_op1(gc, "Log", safe_x, &logx));
    TRY(g_op1(gc, "ZerosLike", x, &zeros));
    floe_output s2[3] = {pos, logx, zeros};
    TRY(g_op(gc, "SelectV2", s2, 3, NULL, &sel));
    TRY(g_op2(gc, "Mul", z, sel, &c));
    TRY(g_op2(gc, "Mul", g, c, &d));
    TRY(g_unbroadcast(gc, d, y, x, &gy));
    TRY(floe_grad_set_input_grad(gc, 0, gx));
    return floe_grad_set_input_grad(gc, 1, gy);
}

static floe_status neg_grad(floe_grad_ctx *gc) {
    floe_output r;
    TRY(g_op1(gc, "Neg", up_(gc, 0), &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status abs_grad(floe_grad_ctx *gc) {
    floe_output s, r;
    TRY(g_op1(gc, "Sign", in_(gc, 0), &s));
    TRY(g_op2(gc, "Mul", up_(gc, 0), s, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status sign_grad(floe_grad_ctx *gc) {
    floe_output r;
    TRY(g_op1(gc, "ZerosLike", in_(gc, 0), &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status square_grad(floe_grad_ctx *gc) {
    floe_output two, a, r;
    TRY(g_scalar(gc, in_(gc, 0), 2.0, &two));
    TRY(g_op2(gc, "Mul", in_(gc, 0), two, &a));
    TRY(g_op2(gc, "Mul", up_(gc, 0), a, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status sqrt_grad(floe_grad_ctx *gc) {
    floe_output half, a, r;
    TRY(g_scalar(gc, in_(gc, 0), 0.5, &half));
    TRY(g_op2(gc, "Mul", up_(gc, 0), half, &a));
    TRY(g_op2(gc, "RealDiv", a, floe_grad_output(gc, 0), &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status rsqrt_grad(floe_grad_ctx *gc) {
    floe_output y = floe_grad_output(gc, 0), m, y2, y3, a, r;
    TRY(g_scalar(gc, y, -0.5, &m));
    TRY(g_op1(gc, "Square", y, &y2));
    TRY(g_op2(gc, "Mul", y2, y, &y3));
    TRY(g_op2(gc, "Mul", y3, m, &a));
    TRY(g_op2(gc, "Mul", up_(gc, 0), a, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status exp_grad(floe_grad_ctx *gc) {
    floe_output r;
    TRY(g_op2(gc, "Mul", up_(gc, 0), floe_grad_output(gc, 0), &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status log_grad(floe_grad_ctx *gc) {
    floe_output r;
    TRY(g_op2(gc, "RealDiv", up_(gc, 0), in_(gc, 0), &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status log1p_grad(floe_grad_ctx *gc) {
    floe_output one, d, r;
    TRY(g_scalar(gc, in_(gc, 0), 1.0, &one));
    TRY(g_op2(gc, "AddV2", in_(gc, 0), one, &d));
    TRY(g_op2(gc, "RealDiv", up_(gc, 0), d, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status tanh_grad(floe_grad_ctx *gc) {
    floe_output y = floe_grad_output(gc, 0), one, y2, d, r;
    TRY(g_scalar(gc, y, 1.0, &one));
    TRY(g_op1(gc, "Square", y, &y2));
    TRY(g_op2(gc, "Sub", one, y2, &d));
    TRY(g_op2(gc, "Mul", up_(gc, 0), d, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status sigmoid_grad(floe_grad_ctx *gc) {
    floe_output y = floe_grad_output(gc, 0), one, d, e, r;
    TRY(g_scalar(gc, y, 1.0, &one));
    TRY(g_op2(gc, "Sub", one, y, &d));
    TRY(g_op2(gc, "Mul", y, d, &e));
    TRY(g_op2(gc, "Mul", up_(gc, 0), e, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status sin_grad(floe_grad_ctx *gc) {
    floe_output c, r;
    TRY(g_op1(gc, "Cos", in_(gc, 0), &c));
    TRY(g_op2(gc, "Mul", up_(gc, 0), c, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status cos_grad(floe_grad_ctx *gc) {
    floe_output s, n, r;
    TRY(g_op1(gc, "Sin", in_(gc, 0), &s));
    TRY(g_op1(gc, "Neg", s, &n));
    TRY(g_op2(gc, "Mul", up_(gc, 0), n, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

/* Float to float only; other casts pass no gradient. */
static floe_status cast_grad(floe_grad_ctx *gc) {
    floe_dtype src = floe_grad_edge_dtype(gc, in_(gc, 0));
    floe_dtype dst = floe_grad_edge_dtype(gc, floe_grad_output(gc, 0));
    floe_output g = up_(gc, 0), r;
    if (!is_float(src) || !is_float(dst))
        return FLOE_OK;
    TRY(g_op_attr(gc, "Cast", &g, 1, "DstT", 2, src, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status select_grad(floe_grad_ctx *gc) {
    floe_output c = in_(gc, 0), t = in_(gc, 1), e = in_(gc, 2), g = up_(gc, 0), zeros, a, b;
    floe_output gt, ge;
    TRY(g_op1(gc, "ZerosLike", g, &zeros));
    floe_output sa[3] = {c, g, zeros}, sb[3] = {c, zeros, g};
    TRY(g_op(gc, "SelectV2", sa, 3, NULL, &a));
    TRY(g_op(gc, "SelectV2", sb, 3, NULL, &b));
    TRY(g_unbroadcast(gc, a, t, e, &gt));
    TRY(g_unbroadcast(gc, b, e, t, &ge));
    TRY(floe_grad_set_input_grad(gc, 1, gt));
    return floe_grad_set_input_grad(gc, 2, ge);
}

/* The gradient of the value read flows to the variable (a resource edge). */
static floe_status read_variable_grad(floe_grad_ctx *gc) {
    return floe_grad_set_input_grad(gc, 0, up_(gc, 0));
}

/* ---- Matrix products ---------------------------------------------------------------- */

static floe_status mm(floe_grad_ctx *gc, const char *op, const char *ta, const char *tb,
                      floe_output a, floe_output b, bool tra, bool trb, floe_output *out) {
    floe_attrs *at = NULL;
    floe_output in[2] = {a, b};
    floe_status st = floe_attrs_new(&at);
    if (st == FLOE_OK)
        st = floe_attrs_set_bool(at, ta, tra);
    if (st == FLOE_OK)
        st = floe_attrs_set_bool(at, tb, trb);
    if (st == FLOE_OK)
        st = g_op(gc, op, in, 2, at, out);
    floe_attrs_free(at);
    return st;
}

/* TensorFlow's _MatMulGrad for the four transpose combinations. */
static floe_status matmul_like(floe_grad_ctx *gc, const char *op, const char *ta_name,
                               const char *tb_name, floe_output *ga, floe_output *gb) {
    int ta = 0, tb = 0;
    floe_output a = in_(gc, 0), b = in_(gc, 1), g = up_(gc, 0);
    floe_attrs_get_bool(floe_grad_attrs(gc), ta_name, &ta);
    floe_attrs_get_bool(floe_grad_attrs(gc), tb_name, &tb);
    if (!ta && !tb) {
        TRY(mm(gc, op, ta_name, tb_name, g, b, false, true, ga));
        return mm(gc, op, ta_name, tb_name, a, g, true, false, gb);
    }
    if (!ta && tb) {
        TRY(mm(gc, op, ta_name, tb_name, g, b, false, false, ga));
        return mm(gc, op, ta_name, tb_name, g, a, true, false, gb);
    }
    if (ta && !tb) {
        TRY(mm(gc, op, ta_name, tb_name, b, g, false, true, ga));
        return mm(gc, op, ta_name, tb_name, a, g, false, false, gb);
    }
    TRY(mm(gc, op, ta_name, tb_name, b, g, true, true, ga));
    return mm(gc, op, ta_name, tb_name, g, a, true, true, gb);
}

static floe_status matmul_grad(floe_grad_ctx *gc) {
    floe_output ga, gb;
    TRY(matmul_like(gc, "MatMul", "transpose_a", "transpose_b", &ga, &gb));
    TRY(floe_grad_set_input_grad(gc, 0, ga));
    return floe_grad_set_input_grad(gc, 1, gb);
}

static floe_status batch_matmul_grad(floe_grad_ctx *gc) {
    floe_output ga, gb, ra, rb, none = {0};
    TRY(matmul_like(gc, "BatchMatMulV2", "adj_x", "adj_y", &ga, &gb));
    TRY(g_unbroadcast(gc, ga, in_(gc, 0), none, &ra));
    TRY(g_unbroadcast(gc, gb, in_(gc, 1), none, &rb));
    TRY(floe_grad_set_input_grad(gc, 0, ra));
    return floe_grad_set_input_grad(gc, 1, rb);
}

/* ---- Reductions ----------------------------------------------------------------------- */

/* @g (the reduction's output gradient) reshaped to the keep_dims shape. */
static floe_status keep_dims_grad(floe_grad_ctx *gc, floe_output g, floe_output *out) {
    int keep = 0;
    floe_output shx, rs;
    floe_attrs_get_bool(floe_grad_attrs(gc), "keep_dims", &keep);
    if (keep) {
        *out = g;
        return FLOE_OK;
    }
    floe_dtype tidx = floe_grad_edge_dtype(gc, in_(gc, 1));
    TRY(g_shape(gc, in_(gc, 0), tidx, &shx));
    TRY(g_op2(gc, "ReducedShape", shx, in_(gc, 1), &rs));
    return g_op2(gc, "Reshape", g, rs, out);
}

/* d(Sum)/dx: the output gradient broadcast over the reduced axes. */
static floe_status sum_dx(floe_grad_ctx *gc, floe_output *out) {
    floe_output g2, ones;
    TRY(keep_dims_grad(gc, up_(gc, 0), &g2));
    TRY(g_op1(gc, "OnesLike", in_(gc, 0), &ones));
    return g_op2(gc, "Mul", g2, ones, out);
}

static floe_status sum_grad(floe_grad_ctx *gc) {
    floe_output r;
    TRY(sum_dx(gc, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status mean_grad(floe_grad_ctx *gc) {
    floe_dtype t = floe_grad_edge_dtype(gc, in_(gc, 0));
    floe_output s, nx, ny, fx, fy, f, r, x = in_(gc, 0), y = floe_grad_output(gc, 0);
    TRY(sum_dx(gc, &s));
    TRY(g_op1(gc, "Size", x, &nx));
    TRY(g_op1(gc, "Size", y, &ny));
    TRY(g_op_attr(gc, "Cast", &nx, 1, "DstT", 2, t, &fx));
    TRY(g_op_attr(gc, "Cast", &ny, 1, "DstT", 2, t, &fy));
    TRY(g_op2(gc, "RealDiv", fx, fy, &f));
    TRY(g_op2(gc, "RealDiv", s, f, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

/* Max and Min: the gradient is shared equally among the elements equal to the
 * result. */
static floe_status reduce_minmax_grad(floe_grad_ctx *gc) {
    floe_dtype t = floe_grad_edge_dtype(gc, in_(gc, 0));
    floe_output x = in_(gc, 0), ykd, gkd, eq, mask, cnt, w, r;
    TRY(keep_dims_grad(gc, floe_grad_output(gc, 0), &ykd));
    TRY(keep_dims_grad(gc, up_(gc, 0), &gkd));
    TRY(g_op2(gc, "Equal", x, ykd, &eq));
    TRY(g_op_attr(gc, "Cast", &eq, 1, "DstT", 2, t, &mask));
    floe_output sin[2] = {mask, in_(gc, 1)};
    TRY(g_op_attr(gc, "Sum", sin, 2, "keep_dims", 1, 1, &cnt));
    TRY(g_op2(gc, "RealDiv", mask, cnt, &w));
    TRY(g_op2(gc, "Mul", w, gkd, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

/* Prod: each element's gradient is the product of the others in its group, computed
 * by ProdGrad (exact with zeros in the group). */
static floe_status prod_grad(floe_grad_ctx *gc) {
    floe_output in[3] = {in_(gc, 0), in_(gc, 1), up_(gc, 0)}, r;
    TRY(g_op(gc, "ProdGrad", in, 3, NULL, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

/* ---- Shapes and data movement ---------------------------------------------------------- */

static floe_status reshape_grad(floe_grad_ctx *gc) {
    floe_output r;
    TRY(g_reshape_like(gc, up_(gc, 0), in_(gc, 0), &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status transpose_grad(floe_grad_ctx *gc) {
    floe_output inv, r;
    TRY(g_op1(gc, "InvertPermutation", in_(gc, 1), &inv));
    TRY(g_op2(gc, "Transpose", up_(gc, 0), inv, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status pack_grad(floe_grad_ctx *gc) {
    int64_t axis = 0;
    int n = floe_grad_num_inputs(gc);
    floe_attrs *a = NULL;
    floe_node *un = NULL;
    floe_output g = up_(gc, 0);
    floe_status st;

    floe_attrs_get_int(floe_grad_attrs(gc), "axis", &axis);
    st = floe_attrs_new(&a);
    if (st == FLOE_OK)
        st = floe_attrs_set_int(a, "num", n);
    if (st == FLOE_OK)
        st = floe_attrs_set_int(a, "axis", axis);
    if (st == FLOE_OK)
        st = floe_grad_add_node(gc, "Unpack", &g, 1, a, &un);
    floe_attrs_free(a);
    for (int i = 0; i < n && st == FLOE_OK; i++) {
        floe_output o = {un, i, 0};
        st = floe_grad_set_input_grad(gc, i, o);
    }
    return st;
}

static floe_status unpack_grad(floe_grad_ctx *gc) {
    int64_t axis = 0;
    int n = floe_grad_num_outputs(gc);
    floe_output *parts, r;
    floe_status st = FLOE_OK;

    floe_attrs_get_int(floe_grad_attrs(gc), "axis", &axis);
    parts = floe_alloc((size_t)(n > 0 ? n : 1) * sizeof(*parts), 0);
    if (parts == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "Unpack gradient: out of memory");
    for (int i = 0; i < n && st == FLOE_OK; i++)
        st = up_or_zeros(gc, i, &parts[i]);
    if (st == FLOE_OK)
        st = g_op_attr(gc, "Pack", parts, n, "axis", 0, axis, &r);
    if (st == FLOE_OK)
        st = floe_grad_set_input_grad(gc, 0, r);
    floe_free(parts);
    return st;
}

static floe_status concat_grad(floe_grad_ctx *gc) {
    int n = floe_grad_num_inputs(gc) - 1;
    floe_output *in, axis = in_(gc, n), ax32, g = up_(gc, 0);
    floe_node *off = NULL;
    floe_status st = FLOE_OK;

    in = floe_alloc((size_t)(n + 1) * sizeof(*in), 0);
    if (in == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "ConcatV2 gradient: out of memory");
    if (floe_grad_edge_dtype(gc, axis) != FLOE_DTYPE_I32)
        st = g_op_attr(gc, "Cast", &axis, 1, "DstT", 2, FLOE_DTYPE_I32, &ax32);
    else
        ax32 = axis;
    in[0] = ax32;
    for (int i = 0; i < n && st == FLOE_OK; i++)
        st = g_shape(gc, in_(gc, i), FLOE_DTYPE_I32, &in[i + 1]);
    if (st == FLOE_OK)
        st = floe_grad_add_node(gc, "ConcatOffset", in, n + 1, NULL, &off);
    for (int i = 0; i < n && st == FLOE_OK; i++) {
        floe_output sl[3] = {g, {off, i, 0}, in[i + 1]}, r;
        st = g_op(gc, "Slice", sl, 3, NULL, &r);
        if (st == FLOE_OK)
            st = floe_grad_set_input_grad(gc, i, r);
    }
    floe_free(in);
    return st;
}

/* Slice: the gradient padded back with begin before and the rest after. */
static floe_status slice_grad(floe_grad_ctx *gc) {
    floe_output x = in_(gc, 0), begin = in_(gc, 1), y = floe_grad_output(gc, 0);
    floe_dtype it = floe_grad_edge_dtype(gc, begin);
    floe_output shx, shy, a, after, pads, r;
    TRY(g_op_attr(gc, "Shape", &x, 1, "out_type", 2, it, &shx));
    TRY(g_op_attr(gc, "Shape", &y, 1, "out_type", 2, it, &shy));
    TRY(g_op2(gc, "Sub", shx, begin, &a));
    TRY(g_op2(gc, "Sub", a, shy, &after));
    floe_output pk[2] = {begin, after};
    TRY(g_op_attr(gc, "Pack", pk, 2, "axis", 0, 1, &pads));
    TRY(g_op2(gc, "Pad", up_(gc, 0), pads, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

static floe_status strided_slice_grad(floe_grad_ctx *gc) {
    static const char *const masks[] = {"begin_mask", "end_mask", "ellipsis_mask",
                                        "new_axis_mask", "shrink_axis_mask"};
    floe_dtype it = floe_grad_edge_dtype(gc, in_(gc, 1));
    floe_output x = in_(gc, 0), shx, r;
    floe_attrs *a = NULL;
    floe_status st;

    TRY(g_op_attr(gc, "Shape", &x, 1, "out_type", 2, it, &shx));
    floe_output in[5] = {shx, in_(gc, 1), in_(gc, 2), in_(gc, 3), up_(gc, 0)};
    st = floe_attrs_new(&a);
    for (int i = 0; i < 5 && st == FLOE_OK; i++) {
        int64_t v = 0;
        floe_attrs_get_int(floe_grad_attrs(gc), masks[i], &v);
        st = floe_attrs_set_int(a, masks[i], v);
    }
    if (st == FLOE_OK)
        st = g_op(gc, "StridedSliceGrad", in, 5, a, &r);
    floe_attrs_free(a);
    if (st == FLOE_OK)
        st = floe_grad_set_input_grad(gc, 0, r);
    return st;
}

/* GatherV2 (batch_dims 0): the gradient rows scatter-added into zeros of params'
 * shape by GatherGrad (axis 0; other axes fail when run). */
static floe_status gather_grad(floe_grad_ctx *gc) {
    int64_t batch_dims = 0;
    floe_output params = in_(gc, 0), shp, r;
    floe_attrs_get_int(floe_grad_attrs(gc), "batch_dims", &batch_dims);
    if (batch_dims != 0)
        return floe_fail(FLOE_UNIMPLEMENTED, "GatherV2 gradient: batch_dims must be 0");
    TRY(g_shape(gc, params, FLOE_DTYPE_I64, &shp));
    floe_output in[4] = {up_(gc, 0), in_(gc, 1), shp, in_(gc, 2)};
    TRY(g_op(gc, "GatherGrad", in, 4, NULL, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

/* Fill: the value's gradient is the sum of every element's. */
static floe_status fill_grad(floe_grad_ctx *gc) {
    floe_output r;
    TRY(g_sum_all(gc, up_(gc, 0), &r));
    return floe_grad_set_input_grad(gc, 1, r);
}

/* Tile: reshape the gradient to [m0, d0, m1, d1, ...] and sum the multiples' axes. */
static floe_status tile_grad(floe_grad_ctx *gc) {
    floe_output x = in_(gc, 0), mult = in_(gc, 1), shx, pk, split, size, start, two, axes, resh;
    floe_output minus1, sum, r;
    floe_dtype it = floe_grad_edge_dtype(gc, mult);
    int64_t m1 = -1;
    TRY(g_op_attr(gc, "Shape", &x, 1, "out_type", 2, it, &shx));
    floe_output p[2] = {mult, shx};
    TRY(g_op_attr(gc, "Pack", p, 2, "axis", 0, 1, &pk));
    TRY(g_const_vec(gc, FLOE_DTYPE_I32, &m1, 1, &minus1));
    TRY(g_op2(gc, "Reshape", pk, minus1, &split));
    TRY(g_op1(gc, "Size", split, &size));
    TRY(floe_grad_const_scalar(gc, FLOE_DTYPE_I32, 0.0, &start));
    TRY(floe_grad_const_scalar(gc, FLOE_DTYPE_I32, 2.0, &two));
    floe_output rg[3] = {start, size, two};
    TRY(g_op(gc, "Range", rg, 3, NULL, &axes));
    TRY(g_op2(gc, "Reshape", up_(gc, 0), split, &resh));
    TRY(g_op2(gc, "Sum", resh, axes, &sum));
    TRY(g_op2(gc, "Reshape", sum, shx, &r));
    return floe_grad_set_input_grad(gc, 0, r);
}

/* The sum of every element of @x. */
static floe_status g_sum_all(floe_grad_ctx *gc, floe_output x, floe_output *out) {
    floe_output rank, start, delta, axes;
    TRY(g_op1(gc, "Rank", x, &rank));
    TRY(floe_grad_const_scalar(gc, FLOE_DTYPE_I32, 0.0, &start));
    TRY(floe_grad_const_scalar(gc, FLOE_DTYPE_I32, 1.0, &delta));
    floe_output rg[3] = {start, rank, delta};
    TRY(g_op(gc, "Range", rg, 3, NULL, &axes));
    return g_op2(gc, "Sum", x, axes, out);
}

/* Pad and PadV2: the gradient sliced at paddings[:, 0] to x's shape; PadV2's
 * constant_values gets the sum over the padding (all of it minus the slice). */
static floe_status pad_grad(floe_grad_ctx *gc) {
    floe_output x = in_(gc, 0), pads = in_(gc, 1), b0, sz, col, minus1, begin, shx, r;
    floe_dtype it = floe_grad_edge_dtype(gc, pads);
    int64_t zero2[2] = {0, 0}, col_size[2] = {-1, 1}, m1 = -1;
    TRY(g_const_vec(gc, it, zero2, 2, &b0));
    TRY(g_const_vec(gc, it, col_size, 2, &sz));
    floe_output sl[3] = {pads, b0, sz};
    TRY(g_op(gc, "Slice", sl, 3, NULL, &col));
    TRY(g_const_vec(gc, FLOE_DTYPE_I32, &m1, 1, &minus1));
    TRY(g_op2(gc, "Reshape", col, minus1, &begin));
    TRY(g_op_attr(gc, "Shape", &x, 1, "out_type", 2, it, &shx));
    floe_output s2[3] = {up_(gc, 0), begin, shx};
    TRY(g_op(gc, "Slice", s2, 3, NULL, &r));
    TRY(floe_grad_set_input_grad(gc, 0, r));
    if (floe_grad_num_inputs(gc) > 2) {
        floe_output all, inner, c;
        TRY(g_sum_all(gc, up_(gc, 0), &all));
        TRY(g_sum_all(gc, r, &inner));
        TRY(g_op2(gc, "Sub", all, inner, &c));
        TRY(floe_grad_set_input_grad(gc, 2, c));
    }
    return FLOE_OK;
}

/* ---- Helper ops -------------------------------------------------------------------------- */

/* Reads element @i of an i32/i64 tensor. */
static int64_t idx_at(const floe_tensor *t, int64_t i) {
    return floe_tensor_dtype(t) == FLOE_DTYPE_I64 ? ((const int64_t *)floe_tensor_data(t))[i]
                                                  : ((const int32_t *)floe_tensor_data(t))[i];
}

static void idx_put(floe_tensor *t, int64_t i, int64_t v) {
    if (floe_tensor_dtype(t) == FLOE_DTYPE_I64)
        ((int64_t *)floe_tensor_data(t))[i] = v;
    else
        ((int32_t *)floe_tensor_data(t))[i] = (int32_t)v;
}

static floe_status vector_input(floe_kernel_ctx *kc, int i, const char *op, const char *what,
                                floe_tensor **out) {
    TRY(ops_math__kernel_input(kc, i, FLOE_DTYPE_INVALID, out));
    if (floe_tensor_ndim(*out) != 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: %s must be 1-D, got rank %d", op, what,
                         floe_tensor_ndim(*out));
    return FLOE_OK;
}

typedef struct addn_job {
    floe_kernel_ctx *kc;
    int n;
    floe_dtype dt;
    void *dst;
} addn_job;

/* out[begin, end) = sum of the inputs there, one pass over the output per input. */
static void addn_range(void *arg, int64_t begin, int64_t end) {
    const addn_job *j = arg;
    for (int k = 0; k < j->n; k++) {
        const void *src = floe_tensor_data(floe_kernel_input(j->kc, k));
        switch (j->dt) {
#define ADDN_CASE(DT, T)                                                                \
    case DT: {                                                                          \
        T *d = (T *)j->dst;                                                             \
        const T *x = (const T *)src;                                                    \
        if (k == 0)                                                                     \
            memcpy(d + begin, x + begin, (size_t)(end - begin) * sizeof(T));           \
        else                                                                            \
            for (int64_t e = begin; e < end; e++)                                       \
                d[e] += x[e];                                                           \
        break;                                                                          \
    }
            ADDN_CASE(FLOE_DTYPE_F32, float)
            ADDN_CASE(FLOE_DTYPE_F64, double)
            ADDN_CASE(FLOE_DTYPE_I32, int32_t)
            ADDN_CASE(FLOE_DTYPE_I64, int64_t)
#undef ADDN_CASE
        default:
            break;
        }
    }
}

static floe_status addn_compute(floe_kernel_ctx *kc, void *state) {
    int n = floe_kernel_num_inputs(kc);
    floe_tensor *first, *out;
    (void)state;
    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &first));
    floe_dtype dt = floe_tensor_dtype(first);
    int64_t count = floe_tensor_num_elements(first);
    for (int k = 1; k < n; k++) {
        floe_tensor *t;
        TRY(ops_math__kernel_input(kc, k, dt, &t));
        if (floe_tensor_ndim(t) != floe_tensor_ndim(first) ||
            memcmp(floe_tensor_shape(t), floe_tensor_shape(first),
                   (size_t)floe_tensor_ndim(t) * sizeof(int64_t)) != 0) {
            char a[128], b[128];
            ops_math__format_dims(floe_tensor_shape(first), floe_tensor_ndim(first), a, sizeof(a));
            ops_math__format_dims(floe_tensor_shape(t), floe_tensor_ndim(t), b, sizeof(b));
            return floe_fail(FLOE_INVALID_ARGUMENT, "AddN: inputs must have one shape: %s vs. %s",
                             a, b);
        }
    }
    TRY(floe_kernel_alloc_output(kc, 0, floe_tensor_shape(first), floe_tensor_ndim(first), &out));
    if (dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64 && dt != FLOE_DTYPE_I32 &&
        dt != FLOE_DTYPE_I64)
        return floe_fail(FLOE_UNIMPLEMENTED, "AddN: dtype %s", floe_dtype_name(dt));
    addn_job j = {kc, n, dt, floe_tensor_data(out)};
    ops_math__parallel(floe_kernel_threadpool(kc), count, OPS_MATH_GRAIN, addn_range, &j);
    return FLOE_OK;
}

static floe_status addn_shape_fn(floe_shape_ctx *sc) {
    floe_shape s = floe_shape_input(sc, 0);
    for (int k = 1; k < floe_shape_num_inputs(sc); k++) {
        floe_shape t = floe_shape_input(sc, k);
        if (s.ndim < 0) {
            s = t;
            continue;
        }
        if (t.ndim < 0)
            continue;
        if (t.ndim != s.ndim)
            return floe_fail(FLOE_INVALID_ARGUMENT, "AddN: inputs of ranks %d and %d", s.ndim,
                             t.ndim);
        for (int d = 0; d < s.ndim; d++) {
            if (s.dims[d] < 0)
                s.dims[d] = t.dims[d];
            else if (t.dims[d] >= 0 && t.dims[d] != s.dims[d])
                return floe_fail(FLOE_INVALID_ARGUMENT,
                                 "AddN: inputs differ in dimension %d (%lld vs. %lld)", d,
                                 (long long)s.dims[d], (long long)t.dims[d]);
        }
    }
    return floe_shape_set_output(sc, 0, &s);
}

/* r0, r1: the axes along which s0 and s1 were broadcast to their common shape. */
static floe_status bga_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *s[2], *r[2];
    int64_t dims[2][FLOE_MAX_DIMS], axes[2][FLOE_MAX_DIMS];
    int rank[2], n[2] = {0, 0}, R;
    (void)state;
    for (int k = 0; k < 2; k++) {
        TRY(vector_input(kc, k, "BroadcastGradientArgs", k == 0 ? "s0" : "s1", &s[k]));
        rank[k] = (int)floe_tensor_num_elements(s[k]);
        if (rank[k] > FLOE_MAX_DIMS)
            return floe_fail(FLOE_INVALID_ARGUMENT, "BroadcastGradientArgs: rank %d", rank[k]);
        for (int i = 0; i < rank[k]; i++)
            dims[k][i] = idx_at(s[k], i);
    }
    R = rank[0] > rank[1] ? rank[0] : rank[1];
    for (int d = 0; d < R; d++) {
        int64_t e[2];
        for (int k = 0; k < 2; k++) {
            int i = d - (R - rank[k]);
            e[k] = i >= 0 ? dims[k][i] : -1;       /* -1: absent */
        }
        if (e[0] >= 0 && e[1] >= 0 && e[0] != e[1] && e[0] != 1 && e[1] != 1)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "BroadcastGradientArgs: incompatible extents %lld and %lld",
                             (long long)e[0], (long long)e[1]);
        for (int k = 0; k < 2; k++) {
            int64_t other = e[1 - k] < 0 ? 1 : e[1 - k];
            if (e[k] < 0 || (e[k] == 1 && other != 1))
                axes[k][n[k]++] = d;
        }
    }
    for (int k = 0; k < 2; k++) {
        int64_t len = n[k];
        TRY(floe_kernel_alloc_output(kc, k, &len, 1, &r[k]));
        for (int i = 0; i < n[k]; i++)
            idx_put(r[k], i, axes[k][i]);
    }
    return FLOE_OK;
}

static floe_status vector_unknown_shape_fn(floe_shape_ctx *sc) {
    floe_shape s;
    memset(&s, 0, sizeof(s));
    s.ndim = 1;
    s.dims[0] = -1;
    for (int i = 0; i < floe_shape_num_outputs(sc); i++)
        TRY(floe_shape_set_output(sc, i, &s));
    return FLOE_OK;
}

/* Output i of ReducedShape/InvertPermutation has input 0's length. */
static floe_status same_length_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), s;
    memset(&s, 0, sizeof(s));
    s.ndim = 1;
    s.dims[0] = in.ndim == 1 ? in.dims[0] : -1;
    return floe_shape_set_output(sc, 0, &s);
}

/* input_shape with every axis in axes set to 1 (TensorFlow's reduced_shape). */
static floe_status reduced_shape_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *shape, *axes, *out;
    (void)state;
    TRY(vector_input(kc, 0, "ReducedShape", "input_shape", &shape));
    TRY(ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &axes));
    int64_t r = floe_tensor_num_elements(shape);
    TRY(floe_kernel_alloc_output(kc, 0, &r, 1, &out));
    for (int64_t i = 0; i < r; i++)
        idx_put(out, i, idx_at(shape, i));
    for (int64_t k = 0; k < floe_tensor_num_elements(axes); k++) {
        int ax;
        TRY(ops_math__axis(idx_at(axes, k), (int)r, "ReducedShape: axis", &ax));
        idx_put(out, ax, 1);
    }
    return FLOE_OK;
}

static floe_status invert_permutation_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *p, *out;
    (void)state;
    TRY(vector_input(kc, 0, "InvertPermutation", "x", &p));
    int64_t n = floe_tensor_num_elements(p);
    TRY(floe_kernel_alloc_output(kc, 0, &n, 1, &out));
    for (int64_t i = 0; i < n; i++)
        idx_put(out, i, -1);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = idx_at(p, i);
        if (v < 0 || v >= n || idx_at(out, v) != -1)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "InvertPermutation: x is not a permutation of 0..%lld",
                             (long long)(n - 1));
        idx_put(out, v, i);
    }
    return FLOE_OK;
}

/* offset[i]: where input i of a concatenation along concat_dim starts. */
static floe_status concat_offset_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *axis_t, *s0;
    int64_t axis_v, acc = 0;
    int n = floe_kernel_num_inputs(kc) - 1, axis;
    (void)state;
    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_I32, &axis_t));
    TRY(ops_math__index_scalar(axis_t, "ConcatOffset: concat_dim", &axis_v));
    TRY(vector_input(kc, 1, "ConcatOffset", "shape", &s0));
    int64_t r = floe_tensor_num_elements(s0);
    TRY(ops_math__axis(axis_v, (int)r, "ConcatOffset: concat_dim", &axis));
    for (int i = 0; i < n; i++) {
        floe_tensor *s, *out;
        TRY(vector_input(kc, i + 1, "ConcatOffset", "shape", &s));
        if (floe_tensor_num_elements(s) != r)
            return floe_fail(FLOE_INVALID_ARGUMENT, "ConcatOffset: shapes of different ranks");
        TRY(floe_kernel_alloc_output(kc, i, &r, 1, &out));
        for (int64_t d = 0; d < r; d++)
            idx_put(out, d, d == axis ? acc : 0);
        acc += idx_at(s, axis);
    }
    return FLOE_OK;
}

/* output = zeros(params_shape); output[indices[i], ...] += grad[i, ...] (the gradient
 * of GatherV2 along axis 0, TensorFlow's UnsortedSegmentSum on the gathered rows). */
static floe_status gather_grad_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *data, *ids, *shape_t, *axis_t, *out;
    int64_t shape[FLOE_MAX_DIMS], axis;
    int r;
    (void)state;
    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &data));
    TRY(ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &ids));
    TRY(vector_input(kc, 2, "GatherGrad", "params_shape", &shape_t));
    TRY(ops_math__kernel_input(kc, 3, FLOE_DTYPE_INVALID, &axis_t));
    TRY(ops_math__index_scalar(axis_t, "GatherGrad: axis", &axis));
    TRY(ops_math__index_values(shape_t, "GatherGrad: params_shape", shape, FLOE_MAX_DIMS, &r));
    if (axis != 0 && axis != -(int64_t)r)
        return floe_fail(FLOE_UNIMPLEMENTED,
                         "GatherV2 gradient: only axis 0 is supported (got %lld)",
                         (long long)axis);
    int kr = floe_tensor_ndim(ids), dr = floe_tensor_ndim(data);
    bool ok = r >= 1 && dr == kr + r - 1 &&
              memcmp(floe_tensor_shape(ids), floe_tensor_shape(data),
                     (size_t)kr * sizeof(int64_t)) == 0;
    for (int d = 1; d < r && ok; d++)
        ok = floe_tensor_dim(data, kr + d - 1) == shape[d] && shape[d] >= 0;
    if (!ok || shape[0] < 0)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "GatherGrad: grad's shape must be indices' shape + params_shape[1:]");
    int64_t inner = 1, nseg = shape[0];
    for (int d = 1; d < r; d++)
        inner *= shape[d];
    TRY(floe_kernel_alloc_output(kc, 0, shape, r, &out));
    floe_dtype dt = floe_tensor_dtype(data);
    if (floe_tensor_nbytes(out) > 0)
        memset(floe_tensor_data(out), 0, floe_tensor_nbytes(out));
    int64_t rows = floe_tensor_num_elements(ids);
    for (int64_t i = 0; i < rows; i++) {
        int64_t s = idx_at(ids, i);
        if (s < 0 || s >= nseg)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "GatherGrad: index %lld out of range [0, %lld)", (long long)s,
                             (long long)nseg);
        if (dt == FLOE_DTYPE_F64) {
            double *o = (double *)floe_tensor_data(out) + s * inner;
            const double *x = (const double *)floe_tensor_data(data) + i * inner;
            for (int64_t e = 0; e < inner; e++)
                o[e] += x[e];
        } else {
            float *o = (float *)floe_tensor_data(out) + s * inner;
            const float *x = (const float *)floe_tensor_data(data) + i * inner;
            for (int64_t e = 0; e < inner; e++)
                o[e] += x[e];
        }
    }
    return FLOE_OK;
}

/* dx[e] = grad[group(e)] * product of the other elements of e's group, where a group
 * is the set of elements Prod(x, axes) reduces together: the product of the nonzero
 * elements divided by x[e] when the group has no zero, that product at its only zero,
 * and 0 elsewhere. */
static floe_status prod_grad_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *x, *axes, *g, *out;
    int64_t strides[FLOE_MAX_DIMS], gdims[FLOE_MAX_DIMS], gstrides[FLOE_MAX_DIMS];
    bool reduced[FLOE_MAX_DIMS] = {false};
    (void)state;
    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &x));
    TRY(ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &axes));
    TRY(ops_math__kernel_input(kc, 2, floe_tensor_dtype(x), &g));
    int r = floe_tensor_ndim(x);
    int64_t ngroups = 1, n = floe_tensor_num_elements(x);
    for (int64_t k = 0; k < floe_tensor_num_elements(axes); k++) {
        int ax;
        TRY(ops_math__axis(idx_at(axes, k), r, "ProdGrad: axis", &ax));
        reduced[ax] = true;
    }
    for (int d = 0; d < r; d++) {
        gdims[d] = reduced[d] ? 1 : floe_tensor_dim(x, d);
        ngroups *= gdims[d];
    }
    if (floe_tensor_num_elements(g) != ngroups)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "ProdGrad: grad has %lld elements, the reduction %lld",
                         (long long)floe_tensor_num_elements(g), (long long)ngroups);
    ops_math__strides(floe_tensor_shape(x), r, strides);
    ops_math__strides(gdims, r, gstrides);
    TRY(floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), r, &out));
    double *prod = floe_alloc((size_t)(ngroups > 0 ? ngroups : 1) * sizeof(double), 0);
    int64_t *zeros = floe_alloc((size_t)(ngroups > 0 ? ngroups : 1) * sizeof(int64_t), 0);
    if (prod == NULL || zeros == NULL) {
        floe_free(prod);
        floe_free(zeros);
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "ProdGrad: out of memory");
    }
    bool f64 = floe_tensor_dtype(x) == FLOE_DTYPE_F64;
    const void *xd = floe_tensor_data(x), *gd = floe_tensor_data(g);
    void *od = floe_tensor_data(out);
    for (int64_t k = 0; k < ngroups; k++) {
        prod[k] = 1.0;
        zeros[k] = 0;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int64_t e = 0; e < n; e++) {
            int64_t grp = 0, rem = e;
            for (int d = 0; d < r; d++) {
                int64_t i = rem / strides[d];
                rem -= i * strides[d];
                if (!reduced[d])
                    grp += i * gstrides[d];
            }
            double v = f64 ? ((const double *)xd)[e] : ((const float *)xd)[e];
            if (pass == 0) {
                if (v == 0.0)
                    zeros[grp]++;
                else
                    prod[grp] *= v;
                continue;
            }
            double gv = f64 ? ((const double *)gd)[grp] : ((const float *)gd)[grp];
            double res = zeros[grp] == 0 ? prod[grp] / v
                         : (zeros[grp] == 1 && v == 0.0) ? prod[grp] : 0.0;
            if (f64)
                ((double *)od)[e] = gv * res;
            else
                ((float *)od)[e] = (float)(gv * res);
        }
    floe_free(prod);
    floe_free(zeros);
    return FLOE_OK;
}

/* ---- StridedSliceGrad ------------------------------------------------------------------- */

/* Decodes a strided slice of @shape (rank r) into per-dimension begin, stride and
 * extent (TensorFlow's ValidateStridedSliceOp, without new-axis output dims). */
static floe_status ssg_decode(const int64_t *shape, int r, const int64_t *b, const int64_t *e,
                              const int64_t *s, int n, const int64_t masks[5], int64_t *begin,
                              int64_t *stride, int64_t *extent) {
    int d = 0;
    for (int i = 0; i < r; i++) {
        begin[i] = 0;
        stride[i] = 1;
        extent[i] = shape[i];
    }
    for (int k = 0; k < n; k++) {
        if (masks[2] & (1 << k)) {
            int rest = 0;
            for (int j = k + 1; j < n; j++)
                if (!(masks[3] & (1 << j)))
                    rest++;
            d = r - rest;
            continue;
        }
        if (masks[3] & (1 << k))
            continue;
        if (d >= r)
            return floe_fail(FLOE_INVALID_ARGUMENT, "StridedSliceGrad: index %d past rank %d",
                             k, r);
        int64_t dim = shape[d], st = s[k], lo, hi;
        if (st == 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "StridedSliceGrad: stride 0");
        if (masks[4] & (1 << k)) {
            int64_t x = b[k] < 0 ? b[k] + dim : b[k];
            if (x < 0 || x >= dim)
                return floe_fail(FLOE_INVALID_ARGUMENT, "StridedSliceGrad: index out of range");
            begin[d] = x;
            stride[d] = 1;
            extent[d] = 1;
            d++;
            continue;
        }
        if (st > 0) {
            lo = (masks[0] & (1 << k)) ? 0 : b[k];
            hi = (masks[1] & (1 << k)) ? dim : e[k];
            if (lo < 0) lo += dim;
            if (hi < 0) hi += dim;
            lo = lo < 0 ? 0 : lo > dim ? dim : lo;
            hi = hi < 0 ? 0 : hi > dim ? dim : hi;
            extent[d] = hi > lo ? (hi - lo + st - 1) / st : 0;
        } else {
            lo = (masks[0] & (1 << k)) ? dim - 1 : b[k];
            hi = (masks[1] & (1 << k)) ? -1 : e[k];
            if (!(masks[0] & (1 << k)) && lo < 0) lo += dim;
            if (!(masks[1] & (1 << k)) && hi < 0) hi += dim;
            lo = lo < -1 ? -1 : lo > dim - 1 ? dim - 1 : lo;
            hi = hi < -1 ? -1 : hi > dim - 1 ? dim - 1 : hi;
            extent[d] = lo > hi ? (lo - hi - st - 1) / (-st) : 0;
        }
        begin[d] = lo;
        stride[d] = st;
        d++;
    }
    return FLOE_OK;
}

static floe_status strided_slice_grad_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *sh, *bt, *et, *stt, *dy, *out;
    int64_t shape[FLOE_MAX_DIMS], b[FLOE_MAX_DIMS * 2], e[FLOE_MAX_DIMS * 2], s[FLOE_MAX_DIMS * 2];
    int64_t begin[FLOE_MAX_DIMS], stride[FLOE_MAX_DIMS], extent[FLOE_MAX_DIMS], masks[5];
    static const char *const names[] = {"begin_mask", "end_mask", "ellipsis_mask",
                                        "new_axis_mask", "shrink_axis_mask"};
    int r, n, nb;
    (void)state;
    TRY(vector_input(kc, 0, "StridedSliceGrad", "shape", &sh));
    TRY(vector_input(kc, 1, "StridedSliceGrad", "begin", &bt));
    TRY(vector_input(kc, 2, "StridedSliceGrad", "end", &et));
    TRY(vector_input(kc, 3, "StridedSliceGrad", "strides", &stt));
    TRY(ops_math__kernel_input(kc, 4, FLOE_DTYPE_INVALID, &dy));
    TRY(ops_math__index_values(sh, "StridedSliceGrad: shape", shape, FLOE_MAX_DIMS, &r));
    TRY(ops_math__index_values(bt, "StridedSliceGrad: begin", b, FLOE_MAX_DIMS * 2, &n));
    TRY(ops_math__index_values(et, "StridedSliceGrad: end", e, FLOE_MAX_DIMS * 2, &nb));
    if (nb != n)
        return floe_fail(FLOE_INVALID_ARGUMENT, "StridedSliceGrad: begin and end differ");
    TRY(ops_math__index_values(stt, "StridedSliceGrad: strides", s, FLOE_MAX_DIMS * 2, &nb));
    if (nb != n)
        return floe_fail(FLOE_INVALID_ARGUMENT, "StridedSliceGrad: begin and strides differ");
    for (int i = 0; i < 5; i++) {
        masks[i] = 0;
        floe_attrs_get_int(floe_kernel_attrs(kc), names[i], &masks[i]);
    }
    TRY(ssg_decode(shape, r, b, e, s, n, masks, begin, stride, extent));
    int64_t count = 1;
    for (int i = 0; i < r; i++)
        count *= extent[i];
    if (count != floe_tensor_num_elements(dy))
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "StridedSliceGrad: dy has %lld elements, the slice %lld",
                         (long long)floe_tensor_num_elements(dy), (long long)count);
    TRY(floe_kernel_alloc_output(kc, 0, shape, r, &out));
    memset(floe_tensor_data(out), 0, floe_tensor_nbytes(out));
    int64_t strides[FLOE_MAX_DIMS], pos[FLOE_MAX_DIMS] = {0};
    ops_math__strides(shape, r, strides);
    size_t es = floe_dtype_size(floe_tensor_dtype(dy));
    for (int64_t k = 0; k < count; k++) {
        int64_t off = 0;
        for (int i = 0; i < r; i++)
            off += (begin[i] + pos[i] * stride[i]) * strides[i];
        memcpy((char *)floe_tensor_data(out) + (size_t)off * es,
               (const char *)floe_tensor_data(dy) + (size_t)k * es, es);
        for (int i = r - 1; i >= 0; i--) {
            if (++pos[i] < extent[i])
                break;
            pos[i] = 0;
        }
    }
    return FLOE_OK;
}

/* Output 0's shape is the value of constant input @i when known. */
static floe_status shape_from_input(floe_shape_ctx *sc, int i) {
    floe_tensor *v = floe_shape_input_value(sc, i);
    floe_shape s;
    memset(&s, 0, sizeof(s));
    s.ndim = -1;
    if (v != NULL && floe_tensor_ndim(v) == 1 &&
        floe_tensor_num_elements(v) <= FLOE_MAX_DIMS) {
        s.ndim = (int)floe_tensor_num_elements(v);
        for (int k = 0; k < s.ndim; k++)
            s.dims[k] = idx_at(v, k);
    }
    return floe_shape_set_output(sc, 0, &s);
}

static floe_status shape_from_input0_fn(floe_shape_ctx *sc) {
    return shape_from_input(sc, 0);
}

static floe_status shape_from_input2_fn(floe_shape_ctx *sc) {
    return shape_from_input(sc, 2);
}

/* ---- Registration ----------------------------------------------------------------------- */

#define S(...) ((const char *const[]){__VA_ARGS__, NULL})
#define IDX "{i32, i64}"

static const floe_op_def grad_ops[] = {
    {sizeof(floe_op_def), "AddN", S("inputs: N * T"), S("sum: T"),
     S("N: int >= 1", "T: {f32, f64, i32, i64}"), addn_shape_fn, 0,
     "Adds N tensors of one shape elementwise."},
    {sizeof(floe_op_def), "BroadcastGradientArgs", S("s0: T", "s1: T"), S("r0: T", "r1: T"),
     S("T: " IDX " = i32"), vector_unknown_shape_fn, FLOE_OP_NO_GRADIENT,
     "The axes to sum a broadcast result's gradient over for each of two shapes."},
    {sizeof(floe_op_def), "ReducedShape", S("input_shape: T", "axes: Tidx"), S("output: T"),
     S("T: " IDX " = i32", "Tidx: " IDX " = i32"), same_length_shape_fn, FLOE_OP_NO_GRADIENT,
     "input_shape with the reduced axes set to 1 (a reduction's keep_dims shape)."},
    {sizeof(floe_op_def), "InvertPermutation", S("x: T"), S("y: T"), S("T: " IDX " = i32"),
     same_length_shape_fn, FLOE_OP_NO_GRADIENT, "The inverse permutation: y[x[i]] = i."},
    {sizeof(floe_op_def), "ConcatOffset", S("concat_dim: i32", "shape: N * i32"),
     S("offset: N * i32"), S("N: int >= 2"), vector_unknown_shape_fn, FLOE_OP_NO_GRADIENT,
     "Offsets of the inputs of a concatenation along concat_dim."},
    {sizeof(floe_op_def), "GatherGrad",
     S("grad: T", "indices: Tindices", "params_shape: Tshape", "axis: Taxis"), S("output: T"),
     S("T: {f32, f64}", "Tindices: " IDX, "Tshape: " IDX " = i64", "Taxis: " IDX " = i32"),
     shape_from_input2_fn, FLOE_OP_NO_GRADIENT,
     "The gradient of GatherV2 along axis 0: grad's rows summed into zeros of "
     "params_shape at indices."},
    {sizeof(floe_op_def), "ProdGrad", S("x: T", "axes: Tidx", "grad: T"), S("output: T"),
     S("T: {f32, f64}", "Tidx: " IDX " = i32"), ops_math__unchanged_shape_fn, FLOE_OP_NO_GRADIENT,
     "The gradient of Prod(x, axes): grad times the product of the other elements of each "
     "element's group."},
    {sizeof(floe_op_def), "StridedSliceGrad",
     S("shape: Index", "begin: Index", "end: Index", "strides: Index", "dy: T"), S("output: T"),
     S("T: type", "Index: " IDX, "begin_mask: int = 0", "end_mask: int = 0",
       "ellipsis_mask: int = 0", "new_axis_mask: int = 0", "shrink_axis_mask: int = 0"),
     shape_from_input0_fn, 0,
     "Zeros of shape with dy scattered where StridedSlice with these arguments reads."},
};

#define K(op, fn, ...) {sizeof(floe_kernel_def), op, "CPU", NULL, 0, NULL, fn, NULL, __VA_ARGS__}

static const floe_kernel_def grad_kernels[] = {
    K("AddN", addn_compute, NULL),
    K("BroadcastGradientArgs", bga_compute, S("s0", "s1", "r0", "r1")),
    K("ReducedShape", reduced_shape_compute, S("input_shape", "axes", "output")),
    K("InvertPermutation", invert_permutation_compute, S("x", "y")),
    K("ConcatOffset", concat_offset_compute, S("concat_dim", "shape", "offset")),
    K("GatherGrad", gather_grad_compute, S("params_shape", "axis")),
    K("ProdGrad", prod_grad_compute, S("axes")),
    {sizeof(floe_kernel_def), "StridedSliceGrad", "CPU", S("T: {f32, f64, i32, i64}"), 0, NULL,
     strided_slice_grad_compute, NULL, S("shape", "begin", "end", "strides")},
};

static floe_status addn_grad(floe_grad_ctx *gc) {
    for (int i = 0; i < floe_grad_num_inputs(gc); i++)
        TRY(floe_grad_set_input_grad(gc, i, up_(gc, 0)));
    return FLOE_OK;
}

static const struct {
    const char *op;
    floe_grad_fn fn;
} grad_fns[] = {
    {"Identity", identity_grad},
    {"PreventGradient", prevent_grad},
    {"AddN", addn_grad},
    {"AddV2", add_grad},
    {"Add", add_grad},
    {"Sub", sub_grad},
    {"Mul", mul_grad},
    {"RealDiv", realdiv_grad},
    {"FloorMod", floormod_grad},
    {"FloorDiv", floordiv_grad},
    {"Maximum", maximum_grad},
    {"Minimum", minimum_grad},
    {"Pow", pow_grad},
    {"Neg", neg_grad},
    {"Abs", abs_grad},
    {"Sign", sign_grad},
    {"Square", square_grad},
    {"Sqrt", sqrt_grad},
    {"Rsqrt", rsqrt_grad},
    {"Exp", exp_grad},
    {"Log", log_grad},
    {"Log1p", log1p_grad},
    {"Tanh", tanh_grad},
    {"Sigmoid", sigmoid_grad},
    {"Sin", sin_grad},
    {"Cos", cos_grad},
    {"Cast", cast_grad},
    {"SelectV2", select_grad},
    {"ReadVariableOp", read_variable_grad},
    {"MatMul", matmul_grad},
    {"BatchMatMulV2", batch_matmul_grad},
    {"Sum", sum_grad},
    {"Mean", mean_grad},
    {"Max", reduce_minmax_grad},
    {"Min", reduce_minmax_grad},
    {"Prod", prod_grad},
    {"Reshape", reshape_grad},
    {"ExpandDims", reshape_grad},
    {"Squeeze", reshape_grad},
    {"Transpose", transpose_grad},
    {"Pack", pack_grad},
    {"Unpack", unpack_grad},
    {"ConcatV2", concat_grad},
    {"Slice", slice_grad},
    {"StridedSlice", strided_slice_grad},
    {"GatherV2", gather_grad},
    {"Fill", fill_grad},
    {"Tile", tile_grad},
    {"Pad", pad_grad},
    {"PadV2", pad_grad},
};

floe_status ops_math__register_grad(floe_plugin *self) {
    for (size_t i = 0; i < sizeof(grad_ops) / sizeof(grad_ops[0]); i++)
        TRY(floe_register_op(self, &grad_ops[i]));
    for (size_t i = 0; i < sizeof(grad_kernels) / sizeof(grad_kernels[0]); i++)
        TRY(floe_register_kernel(self, &grad_kernels[i]));
    for (size_t i = 0; i < sizeof(grad_fns) / sizeof(grad_fns[0]); i++)
        TRY(floe_register_gradient(self, grad_fns[i].op, grad_fns[i].fn));
    return FLOE_OK;
}
