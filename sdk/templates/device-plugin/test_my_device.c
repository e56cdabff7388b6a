/*
 * test_my_device.c - TEMPLATE: the device plugin's tests, an application on the installed
 * libfloe that loads the plugin from this build (FLOE_PLUGIN_PATH, set by meson.build):
 *   the device is registered (floe_context_find_device("MYDEV:0"));
 *   AddV2 placed on it computes what the CPU computes, inputs and outputs crossing the
 *   device boundary through its copies (eager runs on "MYDEV:0" and "CPU:0");
 *   a zero-size AddV2 on it works;
 *   broadcasting works on it, incompatible shapes are an error, not a crash;
 *   a graph with no device pinned places AddV2 on MYDEV (priority 50 > CPU's 0).
 * Exits 0 on success.  `floe conformance floe_my_device.so` runs the memory battery.
 */
#include <floe/floe.h>

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

static floe_tensor *f32(const int64_t *shape, int nd, float start) {
    floe_tensor *t = NULL;
    if (floe_tensor_new(FLOE_DTYPE_F32, shape, nd, &t) != FLOE_OK)
        return NULL;
    for (int64_t i = 0; i < floe_tensor_num_elements(t); i++)
        ((float *)floe_tensor_data(t))[i] = start + 0.25f * (float)i;
    return t;
}

int main(void) {
    static const int64_t s[2] = {64, 33}, row[1] = {33}, zero[2] = {0, 5};
    floe_context *ctx = NULL;
    floe_device *dev = NULL;
    floe_tensor *x = f32(s, 2, 1.0f), *y = f32(s, 2, -3.0f), *r = f32(row, 1, 0.0f);
    floe_tensor *e = f32(zero, 2, 0.0f), *on_dev = NULL, *on_cpu = NULL, *in[2];
    floe_status st;

    if (floe_context_new(NULL, &ctx) != FLOE_OK || x == NULL || y == NULL || r == NULL ||
        e == NULL) {
        fprintf(stderr, "FAIL: setup: %s\n", floe_last_error());
        return 1;
    }
    st = floe_context_find_device(ctx, "MYDEV:0", &dev);
    EXPECT(st == FLOE_OK && dev != NULL, "MYDEV:0 not found (FLOE_PLUGIN_PATH?): %s",
           floe_last_error());

    in[0] = x;
    in[1] = y;
    st = floe_eager_run(ctx, "AddV2", "MYDEV:0", in, 2, NULL, &on_dev, 1);
    EXPECT(st == FLOE_OK, "AddV2 on MYDEV:0: %s", floe_last_error());
    st = floe_eager_run(ctx, "AddV2", "CPU:0", in, 2, NULL, &on_cpu, 1);
    EXPECT(st == FLOE_OK, "AddV2 on CPU:0: %s", floe_last_error());
    if (on_dev != NULL && on_cpu != NULL) {
        floe_tensor *h = NULL;
        EXPECT(floe_tensor_to_host(on_dev, &h) == FLOE_OK, "to_host: %s", floe_last_error());
        for (int64_t i = 0; h != NULL && i < floe_tensor_num_elements(h); i++)
            if (((float *)floe_tensor_data(h))[i] != ((float *)floe_tensor_data(on_cpu))[i]) {
                EXPECT(0, "element %lld: MYDEV %g, CPU %g", (long long)i,
                       ((float *)floe_tensor_data(h))[i], ((float *)floe_tensor_data(on_cpu))[i]);
                break;
            }
        floe_tensor_unref(h);
    }
    floe_tensor_unref(on_dev);
    on_dev = NULL;

    in[0] = e;
    in[1] = e;
    st = floe_eager_run(ctx, "AddV2", "MYDEV:0", in, 2, NULL, &on_dev, 1);
    EXPECT(st == FLOE_OK && floe_tensor_num_elements(on_dev) == 0, "zero-size on MYDEV: %s",
           floe_last_error());
    floe_tensor_unref(on_dev);
    on_dev = NULL;

    /* Broadcasting a row over x, then an incompatible shape: an error, not a crash. */
    in[0] = x;
    in[1] = r;
    st = floe_eager_run(ctx, "AddV2", "MYDEV:0", in, 2, NULL, &on_dev, 1);
    EXPECT(st == FLOE_OK, "broadcast on MYDEV: %s", floe_last_error());
    if (st == FLOE_OK) {
        floe_tensor *h = NULL;
        EXPECT(floe_tensor_to_host(on_dev, &h) == FLOE_OK, "to_host: %s", floe_last_error());
        for (int64_t i = 0; h != NULL && i < 64 * 33; i++) {
            float want = (1.0f + 0.25f * (float)i) + 0.25f * (float)(i % 33);
            if (fabsf(((float *)floe_tensor_data(h))[i] - want) > 1e-4f * (1 + fabsf(want))) {
                EXPECT(0, "broadcast element %lld: %g, want %g", (long long)i,
                       ((float *)floe_tensor_data(h))[i], want);
                break;
            }
        }
        floe_tensor_unref(h);
    }
    floe_tensor_unref(on_dev);
    on_dev = NULL;
    in[1] = e;
    st = floe_eager_run(ctx, "AddV2", "MYDEV:0", in, 2, NULL, &on_dev, 1);
    EXPECT(st == FLOE_INVALID_ARGUMENT, "[64,33] + [0,5] on MYDEV: %s: %s", floe_status_str(st),
           floe_last_error());
    floe_tensor_unref(on_dev);
    on_dev = NULL;

    /* Placement: no device requested, the device with the higher priority wins. */
    in[0] = x;
    in[1] = y;
    st = floe_eager_run(ctx, "AddV2", NULL, in, 2, NULL, &on_dev, 1);
    EXPECT(st == FLOE_OK, "AddV2 placed: %s", floe_last_error());
    EXPECT(on_dev != NULL && floe_tensor_device(on_dev) == dev,
           "AddV2 with no device was not placed on MYDEV:0");
    floe_tensor_unref(on_dev);

    floe_tensor_unref(on_cpu);
    floe_tensor_unref(x);
    floe_tensor_unref(y);
    floe_tensor_unref(r);
    floe_tensor_unref(e);
    floe_context_free(ctx);
    if (failures == 0)
        printf("PASS: MYDEV registered, AddV2 on it matches the CPU, broadcasting, zero-size, "
               "errors, placement\n");
    return failures == 0 ? 0 : 1;
}
