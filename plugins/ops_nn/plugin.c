/*
 * plugin.c - the ops_nn plugin's entry point: registers the neural-network and training
 * ops, their CPU kernels and gradients, one source file at a time.  A part whose source
 * file is not in this build is left out by meson (plugins/ops_nn/meson.build) and weakly
 * referenced here, so the plugin grows file by file.
 */
#include "ops_nn-impl.h"

#define OPS_NN_WEAK __attribute__((weak))
OPS_NN_WEAK floe_status ops_nn__register_conv(floe_plugin *self);
OPS_NN_WEAK floe_status ops_nn__register_pool(floe_plugin *self);
OPS_NN_WEAK floe_status ops_nn__register_batchnorm(floe_plugin *self);
OPS_NN_WEAK floe_status ops_nn__register_activation(floe_plugin *self);
OPS_NN_WEAK floe_status ops_nn__register_softmax(floe_plugin *self);
OPS_NN_WEAK floe_status ops_nn__register_loss(floe_plugin *self);
OPS_NN_WEAK floe_status ops_nn__register_bias(floe_plugin *self);
OPS_NN_WEAK floe_status ops_nn__register_misc(floe_plugin *self);
OPS_NN_WEAK floe_status ops_nn__register_optimizers(floe_plugin *self);

static floe_status ops_nn_init(floe_plugin *self, void **user) {
    floe_status (*const parts[])(floe_plugin *) = {
        ops_nn__register_activation, ops_nn__register_bias,    ops_nn__register_softmax,
        ops_nn__register_loss,       ops_nn__register_conv,    ops_nn__register_pool,
        ops_nn__register_batchnorm,  ops_nn__register_misc,    ops_nn__register_optimizers,
    };
    *user = NULL;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (parts[i] == NULL)
            continue;
        floe_status st = parts[i](self);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

FLOE_PLUGIN_DEFINE(ops_nn, "0.1.0", "The Floe developers", "Apache-2.0",
                   "TensorFlow neural-network and training ops with CPU kernels (oneDNN)",
                   ops_nn_init, NULL)
