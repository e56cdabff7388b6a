/*
 * test_fused.c - the fused op's own tests, against the installed libfloe with the plugin
 * from this build (FLOE_PLUGIN_PATH, set by meson.build):
 *   values      FusedBiasGelu against gelu(x + bias) computed here, f32 and f64, with a
 *               [2,3,4] input (bias along the last axis);
 *   gradient    floe_gradient_check (central differences) of both x and bias, f64;
 *   errors      a bias of the wrong length, a scalar x: INVALID_ARGUMENT, naming it;
 *   zero-size   x [0,4] gives y [0,4].
 * Exits 0 when all pass, 1 with a message naming the first failure.
 */
#include <floe/floe.h>
#include <floe/gradients.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define EXPECT(cond, ...)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                           \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n");                                                         \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

static double gelu(double z) {
    return 0.5 * z * (1.0 + erf(z / sqrt(2.0)));
}

static void values(floe_context *ctx, floe_dtype dt) {
    static const int64_t xs[3] = {2, 3, 4}, bs[1] = {4};
    double xv[24], bv[4];
    floe_tensor *x = NULL, *b = NULL, *in[2], *y = NULL;

    for (int i = 0; i < 24; i++)
        xv[i] = (i - 12) * 0.37;
    for (int i = 0; i < 4; i++)
        bv[i] = 0.25 * i - 0.4;
    if (floe_tensor_new(dt, xs, 3, &x) != FLOE_OK || floe_tensor_new(dt, bs, 1, &b) != FLOE_OK) {
        EXPECT(0, "tensor_new");
        goto done;
    }
    for (int i = 0; i < 24; i++) {
        if (dt == FLOE_DTYPE_F32)
            ((float *)floe_tensor_data(x))[i] = (float)xv[i];
        else
            ((double *)floe_tensor_data(x))[i] = xv[i];
    }
    for (int i = 0; i < 4; i++) {
        if (dt == FLOE_DTYPE_F32)
            ((float *)floe_tensor_data(b))[i] = (float)bv[i];
        else
            ((double *)floe_tensor_data(b))[i] = bv[i];
    }
    in[0] = x;
    in[1] = b;
    floe_status st = floe_eager_run(ctx, "FusedBiasGelu", NULL, in, 2, NULL, &y, 1);
    EXPECT(st == FLOE_OK, "FusedBiasGelu %s: %s", floe_dtype_name(dt), floe_last_error());
    if (st != FLOE_OK)
        goto done;
    EXPECT(floe_tensor_ndim(y) == 3 && floe_tensor_num_elements(y) == 24, "y shape");
    for (int i = 0; i < 24; i++) {
        double want = gelu(xv[i] + bv[i % 4]);
        double got = dt == FLOE_DTYPE_F32 ? ((const float *)floe_tensor_data(y))[i]
                                          : ((const double *)floe_tensor_data(y))[i];
        EXPECT(fabs(got - want) <= (dt == FLOE_DTYPE_F32 ? 1e-5 : 1e-12) * (1 + fabs(want)),
               "y[%d] = %.17g, want %.17g", i, got, want);
    }
done:
    floe_tensor_unref(x);
    floe_tensor_unref(b);
    floe_tensor_unref(y);
}

static void gradient(floe_context *ctx) {
    static const int64_t xs[2] = {3, 5}, bs[1] = {5};
    floe_tensor *x = NULL, *b = NULL;
    double err = -1;

    if (floe_tensor_new(FLOE_DTYPE_F64, xs, 2, &x) != FLOE_OK ||
        floe_tensor_new(FLOE_DTYPE_F64, bs, 1, &b) != FLOE_OK) {
        EXPECT(0, "tensor_new");
        goto done;
    }
    for (int i = 0; i < 15; i++)
        ((double *)floe_tensor_data(x))[i] = sin(i * 1.3) * 2.0;
    for (int i = 0; i < 5; i++)
        ((double *)floe_tensor_data(b))[i] = cos(i * 0.7);
    floe_tensor *in[2] = {x, b};
    floe_status st = floe_gradient_check(ctx, "FusedBiasGelu", in, 2, NULL, 0, 1e-6, &err);
    EXPECT(st == FLOE_OK, "gradient_check: %s", floe_last_error());
    EXPECT(err < 1e-7, "gradient error %g", err);
    printf("gradient check: max error %.3g\n", err);
done:
    floe_tensor_unref(x);
    floe_tensor_unref(b);
}

static void errors(floe_context *ctx) {
    static const int64_t xs[2] = {2, 3}, bad[1] = {4}, zs[2] = {0, 4}, four[1] = {4};
    floe_tensor *x = NULL, *b = NULL, *s = NULL, *z = NULL, *b4 = NULL, *y = NULL;

    floe_tensor_new(FLOE_DTYPE_F32, xs, 2, &x);
    floe_tensor_new(FLOE_DTYPE_F32, bad, 1, &b);
    floe_tensor_new_scalar_f32(1.0f, &s);
    floe_tensor_new(FLOE_DTYPE_F32, zs, 2, &z);
    floe_tensor_new(FLOE_DTYPE_F32, four, 1, &b4);
    if (x == NULL || b == NULL || s == NULL || z == NULL || b4 == NULL) {
        EXPECT(0, "tensor_new");
        goto done;
    }
    memset(floe_tensor_data(x), 0, floe_tensor_nbytes(x));
    memset(floe_tensor_data(b), 0, floe_tensor_nbytes(b));
    memset(floe_tensor_data(b4), 0, floe_tensor_nbytes(b4));
    floe_tensor *in[2] = {x, b};
    floe_status st = floe_eager_run(ctx, "FusedBiasGelu", NULL, in, 2, NULL, &y, 1);
    EXPECT(st == FLOE_INVALID_ARGUMENT && strstr(floe_last_error(), "bias has 4 elements"),
           "wrong bias: %s: %s", floe_status_str(st), floe_last_error());
    in[0] = s;
    in[1] = b;
    st = floe_eager_run(ctx, "FusedBiasGelu", NULL, in, 2, NULL, &y, 1);
    EXPECT(st == FLOE_INVALID_ARGUMENT && strstr(floe_last_error(), "rank >= 1"),
           "scalar x: %s: %s", floe_status_str(st), floe_last_error());
    in[0] = z;
    in[1] = b4;
    st = floe_eager_run(ctx, "FusedBiasGelu", NULL, in, 2, NULL, &y, 1);
    EXPECT(st == FLOE_OK && floe_tensor_ndim(y) == 2 && floe_tensor_dim(y, 0) == 0 &&
               floe_tensor_dim(y, 1) == 4,
           "zero-size x: %s: %s", floe_status_str(st), floe_last_error());
done:
    floe_tensor_unref(x);
    floe_tensor_unref(b);
    floe_tensor_unref(s);
    floe_tensor_unref(z);
    floe_tensor_unref(b4);
    floe_tensor_unref(y);
}

int main(void) {
    floe_context *ctx = NULL;
    if (floe_context_new(NULL, &ctx) != FLOE_OK) {
        fprintf(stderr, "FAIL: context: %s\n", floe_last_error());
        return 1;
    }
    char buf[64];
    if (floe_context_describe_op(ctx, "FusedBiasGelu", buf, sizeof(buf)) != FLOE_OK) {
        fprintf(stderr, "FAIL: FusedBiasGelu is not registered (FLOE_PLUGIN_PATH=%s)\n",
                getenv("FLOE_PLUGIN_PATH") ? getenv("FLOE_PLUGIN_PATH") : "");
        floe_context_free(ctx);
        return 1;
    }
    values(ctx, FLOE_DTYPE_F32);
    values(ctx, FLOE_DTYPE_F64);
    gradient(ctx);
    errors(ctx);
    floe_context_free(ctx);
    if (failures == 0)
        printf("PASS: FusedBiasGelu values, gradient, errors, zero-size\n");
    return failures == 0 ? 0 : 1;
}
