/*
 * plugin.c - the ops_math plugin's entry point: registers every op definition and CPU
 * kernel of the plugin, one source file at a time.
 */
#include "ops_math-impl.h"

static floe_status ops_math_init(floe_plugin *self, void **user) {
    static floe_status (*const parts[])(floe_plugin *) = {
        ops_math__register_basic,   ops_math__register_elementwise, ops_math__register_cast,
        ops_math__register_reduce,  ops_math__register_select,      ops_math__register_matmul,
        ops_math__register_array,   ops_math__register_slice,       ops_math__register_gather,
        ops_math__register_random,  ops_math__register_variable,     ops_math__register_grad,
    };
    *user = NULL;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        floe_status st = parts[i](self);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

FLOE_PLUGIN_DEFINE(ops_math, "0.1.0", "The Floe developers", "Apache-2.0",
                   "TensorFlow math, array, random and variable ops with CPU kernels",
                   ops_math_init, NULL)
