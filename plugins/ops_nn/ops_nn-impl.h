/*
 * ops_nn-impl.h - shared declarations of the ops_nn plugin (not installed).
 *
 * Each source file registers its ops, CPU kernels and gradient functions through one
 * function called by plugin.c.
 */
#ifndef FLOE_OPS_NN_IMPL_H
#define FLOE_OPS_NN_IMPL_H

#include <floe/plugin.h>
#include <stdbool.h>
#include <string.h>

floe_status ops_nn__register_conv(floe_plugin *self);        /* conv.c: Conv2D, backprops, depthwise */
floe_status ops_nn__register_pool(floe_plugin *self);        /* pool.c: MaxPool, AvgPool, grads */
floe_status ops_nn__register_batchnorm(floe_plugin *self);   /* batchnorm.c: FusedBatchNormV3, grad */
floe_status ops_nn__register_activation(floe_plugin *self);  /* activation.c: Relu ... Softsign, grads */
floe_status ops_nn__register_softmax(floe_plugin *self);     /* softmax.c: Softmax, LogSoftmax */
floe_status ops_nn__register_loss(floe_plugin *self);        /* loss.c: cross-entropies, L2Loss */
floe_status ops_nn__register_bias(floe_plugin *self);        /* bias.c: BiasAdd, BiasAddGrad */
floe_status ops_nn__register_misc(floe_plugin *self);        /* misc.c: dropout, ResourceGather, InTopK */
floe_status ops_nn__register_optimizers(floe_plugin *self);  /* optimizers.c: ResourceApply* */

#endif /* FLOE_OPS_NN_IMPL_H */
