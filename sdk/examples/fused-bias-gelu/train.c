/*
 * train.c - trains a one-layer model through the out-of-tree FusedBiasGelu op, with an
 * unmodified, installed libfloe: the op comes from FLOE_PLUGIN_PATH, the gradients from
 * floe_gradients() (which calls the plugin's gradient function), the update is plain SGD.
 *
 *   y = FusedBiasGelu(MatMul(x, W), b),  loss = Mean((y - t)^2)
 *
 * The targets t come from a hidden teacher (W*, b*) through the same formula, computed
 * here in C, so the model can fit them.  Prints the loss every 50 steps; exits 0 when the
 * final loss is below 1/20 of the first, 1 otherwise (or on any error, with the message).
 *
 * Usage: train [STEPS]   (default 300)
 */
#include <floe/floe.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 64, IN = 4, OUT = 3 };

#define CHECK(call)                                                                        \
    do {                                                                                   \
        floe_status st_ = (call);                                                          \
        if (st_ != FLOE_OK) {                                                              \
            fprintf(stderr, "train: %s: %s: %s\n", #call, floe_status_str(st_),            \
                    floe_last_error());                                                    \
            goto done;                                                                     \
        }                                                                                  \
    } while (0)

static floe_status placeholder(floe_graph *g, const char *name, const int64_t *shape, int nd,
                               floe_node **out) {
    floe_node_builder *b;
    floe_status st = floe_node_builder_new(g, "Placeholder", name, &b);
    if (st != FLOE_OK)
        return st;
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", shape, nd);
    return floe_node_builder_finish(b, out);
}

static floe_status op2(floe_graph *g, const char *op, const char *name, floe_output a,
                       floe_output c, floe_node **out) {
    floe_node_builder *b;
    floe_status st = floe_node_builder_new(g, op, name, &b);
    if (st != FLOE_OK)
        return st;
    floe_node_builder_add_input(b, a);
    floe_node_builder_add_input(b, c);
    return floe_node_builder_finish(b, out);
}

static floe_status axes_const(floe_graph *g, floe_node **out) {
    static const int32_t axes[2] = {0, 1};
    static const int64_t shape[1] = {2};
    floe_tensor *t = NULL;
    floe_node_builder *b;
    floe_status st = floe_tensor_new_copy(FLOE_DTYPE_I32, shape, 1, axes, sizeof(axes), &t);
    if (st != FLOE_OK)
        return st;
    st = floe_node_builder_new(g, "Const", "axes", &b);
    if (st == FLOE_OK) {
        floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_I32);
        floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", t);
        st = floe_node_builder_finish(b, out);
    }
    floe_tensor_unref(t);
    return st;
}

static double gelu(double z) {
    return 0.5 * z * (1.0 + erf(z / sqrt(2.0)));
}

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xFFFF) / 65536.0f * 2.0f - 1.0f;
}

int main(int argc, char **argv) {
    static const int64_t xs[2] = {N, IN}, ts[2] = {N, OUT}, ws[2] = {IN, OUT}, bs[1] = {OUT};
    float x[N * IN], t[N * OUT], w[IN * OUT], b[OUT], wt[IN * OUT], bt[OUT];
    floe_context *ctx = NULL;
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_node *nx, *nt, *nw, *nb, *nm, *ny, *nd, *nsq, *nax, *nl;
    floe_output grads[2];
    int steps = argc > 1 ? atoi(argv[1]) : 300, ok = 0;
    double first = -1, loss = -1;
    unsigned seed = 12345;

    if (steps < 1 || steps > 100000) {
        fprintf(stderr, "usage: train [STEPS]  (1 to 100000)\n");
        return 2;
    }
    for (int i = 0; i < N * IN; i++)
        x[i] = frand(&seed) * 2.0f;
    for (int i = 0; i < IN * OUT; i++) {
        wt[i] = frand(&seed);
        w[i] = 0.1f * frand(&seed);
    }
    for (int i = 0; i < OUT; i++) {
        bt[i] = 0.5f * frand(&seed);
        b[i] = 0.0f;
    }
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            double z = bt[o];
            for (int k = 0; k < IN; k++)
                z += (double)x[n * IN + k] * wt[k * OUT + o];
            t[n * OUT + o] = (float)gelu(z);
        }

    CHECK(floe_context_new(NULL, &ctx));
    CHECK(floe_graph_new(ctx, &g));
    CHECK(placeholder(g, "x", xs, 2, &nx));
    CHECK(placeholder(g, "t", ts, 2, &nt));
    CHECK(placeholder(g, "W", ws, 2, &nw));
    CHECK(placeholder(g, "b", bs, 1, &nb));
    CHECK(op2(g, "MatMul", "h", floe_out(nx, 0), floe_out(nw, 0), &nm));
    CHECK(op2(g, "FusedBiasGelu", "y", floe_out(nm, 0), floe_out(nb, 0), &ny));
    CHECK(op2(g, "Sub", "d", floe_out(ny, 0), floe_out(nt, 0), &nd));
    CHECK(op2(g, "Mul", "sq", floe_out(nd, 0), floe_out(nd, 0), &nsq));
    CHECK(axes_const(g, &nax));
    CHECK(op2(g, "Mean", "loss", floe_out(nsq, 0), floe_out(nax, 0), &nl));
    floe_output loss_out = floe_out(nl, 0);
    floe_output params[2] = {floe_out(nw, 0), floe_out(nb, 0)};
    CHECK(floe_gradients(g, &loss_out, 1, params, 2, NULL, grads));
    if (grads[0].node == NULL || grads[1].node == NULL) {
        fprintf(stderr, "train: no gradient reaches W or b\n");
        goto done;
    }
    CHECK(floe_session_new(g, NULL, &s));

    floe_output feeds[4] = {floe_out(nx, 0), floe_out(nt, 0), floe_out(nw, 0), floe_out(nb, 0)};
    floe_output fetches[3] = {loss_out, grads[0], grads[1]};
    for (int step = 0; step < steps; step++) {
        floe_tensor *in[4] = {NULL, NULL, NULL, NULL}, *out[3] = {NULL, NULL, NULL};
        floe_status st = floe_tensor_new_copy(FLOE_DTYPE_F32, xs, 2, x, sizeof(x), &in[0]);
        if (st == FLOE_OK)
            st = floe_tensor_new_copy(FLOE_DTYPE_F32, ts, 2, t, sizeof(t), &in[1]);
        if (st == FLOE_OK)
            st = floe_tensor_new_copy(FLOE_DTYPE_F32, ws, 2, w, sizeof(w), &in[2]);
        if (st == FLOE_OK)
            st = floe_tensor_new_copy(FLOE_DTYPE_F32, bs, 1, b, sizeof(b), &in[3]);
        if (st == FLOE_OK)
            st = floe_session_run(s, feeds, in, 4, fetches, 3, NULL, 0, out);
        for (int i = 0; i < 4; i++)
            floe_tensor_unref(in[i]);
        if (st != FLOE_OK) {
            fprintf(stderr, "train: step %d: %s: %s\n", step, floe_status_str(st),
                    floe_last_error());
            goto done;
        }
        const float *dw = floe_tensor_data(out[1]), *db = floe_tensor_data(out[2]);
        loss = *(const float *)floe_tensor_data(out[0]);
        for (int i = 0; i < IN * OUT; i++)
            w[i] -= 0.5f * dw[i];
        for (int i = 0; i < OUT; i++)
            b[i] -= 0.5f * db[i];
        for (int i = 0; i < 3; i++)
            floe_tensor_unref(out[i]);
        if (first < 0)
            first = loss;
        if (step % 50 == 0 || step == steps - 1)
            printf("step %4d  loss %.6f\n", step, loss);
    }
    ok = loss < first / 20.0;
    printf("loss %.6f -> %.6f (%s)\n", first, loss, ok ? "trained" : "did not train");

done:
    floe_session_free(s);
    floe_graph_free(g);
    floe_context_free(ctx);
    return ok ? 0 : 1;
}
