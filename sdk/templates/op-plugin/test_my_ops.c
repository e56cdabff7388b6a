/*
 * test_my_ops.c - TEMPLATE: the op plugin's tests, an application on the installed
 * libfloe (`pkg-config floe`) that loads the plugin from this build (FLOE_PLUGIN_PATH,
 * set by meson.build).  Checks values, the error on mismatched shapes, a zero-size input,
 * and the gradient with floe_gradient_check (finite differences).  Exits 0 on success.
 */
#include <floe/floe.h>
#include <floe/gradients.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static int failures;
#define EXPECT(cond, ...)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "FAIL line %d: ", __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n");                                                         \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

static floe_tensor *f64(const int64_t *shape, int nd, double start) {
    floe_tensor *t = NULL;
    if (floe_tensor_new(FLOE_DTYPE_F64, shape, nd, &t) != FLOE_OK)
        return NULL;
    for (int64_t i = 0; i < floe_tensor_num_elements(t); i++)
        ((double *)floe_tensor_data(t))[i] = start + 0.5 * (double)i;
    return t;
}

int main(void) {
    static const int64_t s23[2] = {2, 3}, s32[2] = {3, 2}, s04[2] = {0, 4};
    floe_context *ctx = NULL;
    floe_attrs *attrs = NULL;
    floe_tensor *x = f64(s23, 2, 1.0), *y = f64(s23, 2, -2.0), *w = f64(s32, 2, 0.0);
    floe_tensor *e1 = f64(s04, 2, 0), *e2 = f64(s04, 2, 0), *z = NULL, *in[2];
    floe_status st;

    if (floe_context_new(NULL, &ctx) != FLOE_OK || floe_attrs_new(&attrs) != FLOE_OK ||
        x == NULL || y == NULL || w == NULL || e1 == NULL || e2 == NULL) {
        fprintf(stderr, "FAIL: setup: %s\n", floe_last_error());
        return 1;
    }
    floe_attrs_set_float(attrs, "alpha", 3.0f);

    in[0] = x;
    in[1] = y;
    st = floe_eager_run(ctx, "MyScaledAdd", NULL, in, 2, attrs, &z, 1);
    EXPECT(st == FLOE_OK, "MyScaledAdd: %s (is the plugin on FLOE_PLUGIN_PATH?)",
           floe_last_error());
    for (int i = 0; st == FLOE_OK && i < 6; i++) {
        double want = (1.0 + 0.5 * i) + 3.0 * (-2.0 + 0.5 * i);
        EXPECT(fabs(((double *)floe_tensor_data(z))[i] - want) < 1e-12, "z[%d] = %g, want %g", i,
               ((double *)floe_tensor_data(z))[i], want);
    }
    floe_tensor_unref(z);
    z = NULL;

    in[1] = w;
    st = floe_eager_run(ctx, "MyScaledAdd", NULL, in, 2, attrs, &z, 1);
    EXPECT(st == FLOE_INVALID_ARGUMENT && strstr(floe_last_error(), "same shape") != NULL,
           "mismatched shapes: %s: %s", floe_status_str(st), floe_last_error());

    in[0] = e1;
    in[1] = e2;
    st = floe_eager_run(ctx, "MyScaledAdd", NULL, in, 2, attrs, &z, 1);
    EXPECT(st == FLOE_OK && floe_tensor_num_elements(z) == 0 && floe_tensor_dim(z, 1) == 4,
           "zero-size: %s: %s", floe_status_str(st), floe_last_error());
    floe_tensor_unref(z);

    double err = -1;
    in[0] = x;
    in[1] = y;
    st = floe_gradient_check(ctx, "MyScaledAdd", in, 2, attrs, 0, 1e-6, &err);
    EXPECT(st == FLOE_OK && err < 1e-8, "gradient check: %s, error %g", floe_last_error(), err);

    floe_tensor_unref(x);
    floe_tensor_unref(y);
    floe_tensor_unref(w);
    floe_tensor_unref(e1);
    floe_tensor_unref(e2);
    floe_attrs_free(attrs);
    floe_context_free(ctx);
    if (failures == 0)
        printf("PASS: MyScaledAdd values, errors, zero-size, gradient (error %.2g)\n", err);
    return failures == 0 ? 0 : 1;
}
