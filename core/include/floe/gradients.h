/*
 * floe/gradients.h - automatic differentiation: symbolic gradients of a graph
 * (TensorFlow's tf.gradients) and a finite-difference checker for gradient functions.
 *
 * floe_gradients() adds the backward graph to a graph: for every op on a path from
 * the xs to the ys it calls the gradient function the op's plugin registered
 * (host->register_gradient), summing the gradients of tensors used several times.
 * Only floating-point edges (f16, bf16, f32, f64, complex64) and resource edges (a
 * variable read by ReadVariableOp) carry gradients.  Ops flagged FLOE_OP_NO_GRADIENT
 * (Shape, ArgMax, StopGradient, ...) block the gradient; any other op on a path with
 * no gradient function is an error naming it.
 *
 * The added nodes are named after TensorFlow's: "gradients/<node>_grad/<Op>"
 * ("gradients_1/..." for a second call on the same graph, "_1", "_2" suffixes when a
 * name is taken).  They use the standard ops OnesLike (default grad_ys), AddN (or
 * AddV2) for sums, and whatever the gradient functions use, so the plugins defining
 * them (ops_math) must be loaded.
 *
 * Thread safety: like any node addition, must not race with other uses of the graph.
 */
#ifndef FLOE_GRADIENTS_H
#define FLOE_GRADIENTS_H

#include <floe/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * floe_gradients: adds nodes computing d(sum of ys)/d(xs) to @g.
 * @ys:      (array length=ny) outputs to differentiate, ny >= 1.
 * @xs:      (array length=nx) outputs to differentiate against, nx >= 1.  Any output:
 *           a Placeholder's, a ReadVariableOp's (the usual training case), a
 *           VarHandleOp's (the gradient of the variable's value), an intermediate one
 *           (the gradient then stops there: what feeds it is not differentiated).
 * @grad_ys: (array length=ny) (nullable): the gradient flowing into each y, of its
 *           dtype and shape; NULL (or an entry with .node NULL): ones like y.
 * @dxs:     (out) (array length=nx): the gradient of each x, of x's dtype and shape,
 *           or .node NULL when x does not affect the ys through differentiable
 *           edges.  All entries are set on every path (all NULL on failure).
 *
 * Returns FLOE_INVALID_ARGUMENT for bad arguments (NULL, counts, outputs of another
 * graph or out of range, a grad_y of another dtype than its y), FLOE_UNIMPLEMENTED
 * "no gradient registered for op 'X' (node 'n')" when an op on a path has no gradient
 * function and is not flagged FLOE_OP_NO_GRADIENT, FLOE_NOT_FOUND when an op the
 * backward graph needs is not registered, or the error of a gradient function
 * (prefixed "gradient of node 'n' (Op): ").  After an error the graph stays valid and
 * usable, but nodes added before the error remain in it (unused by the forward graph).
 */
FLOE_API floe_status floe_gradients(floe_graph *g, const floe_output *ys, int ny,
                                    const floe_output *xs, int nx, const floe_output *grad_ys,
                                    floe_output *dxs);

/*
 * floe_gradient_check: checks an op's registered gradient against central finite
 * differences, for plugin authors' tests.
 *
 * Builds a graph running @op on @inputs (f32 and f64 inputs as Placeholders, the
 * others, indices, axes and masks, as Consts), takes as loss the sum of output
 * @output_index (f32 or f64) weighted by fixed pseudo-random weights in [0.5, 1.5),
 * and compares floe_gradients' gradient of the loss for every element of every f32
 * and f64 input with (loss(x + delta) - loss(x - delta)) / (2 delta), the loss summed
 * in double.  Use f64 inputs for tight tolerances (errors near 1e-10 with
 * delta 1e-6); f32 ones need a delta and a tolerance near 1e-2.
 *
 * @inputs:    (array length=ninputs) (transfer none) host tensors, flattened in
 *             op-definition order (a list argument takes the extra inputs).
 * @attrs:     (nullable) the op's attrs (type attrs are inferred from the inputs).
 * @delta:     the finite-difference step (> 0; 1e-6 suits f64).
 * @max_error: (out) the largest |symbolic - numeric| / max(1, |numeric|) over all
 *             checked elements (0 when there are none); set on every path (HUGE_VAL
 *             on failure).  A float input the output does not depend on counts as a
 *             symbolic gradient of zero.
 *
 * Returns FLOE_OK when everything ran (the caller compares *@max_error with its
 * tolerance), FLOE_INVALID_ARGUMENT for bad arguments, or the error of building or
 * running the graph (for example FLOE_UNIMPLEMENTED when @op has no gradient).
 */
FLOE_API floe_status floe_gradient_check(floe_context *ctx, const char *op,
                                         floe_tensor *const *inputs, int ninputs,
                                         const floe_attrs *attrs, int output_index,
                                         double delta, double *max_error);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_GRADIENTS_H */
