/*
 * kernels-impl.h - the launchers of Floe's own CUDA kernels (kernels.cu), callable from
 * C.  Each queues its work on @s and returns the launch's cudaError_t as an int (0 on
 * success); shapes and arguments are validated by the callers in ops.c, so the kernels
 * trust them.  Dtypes are floe_dtype values; each launcher lists those it supports and
 * returns cudaErrorInvalidValue for others.
 */
#ifndef FLOE_DEV_CUDA_KERNELS_IMPL_H
#define FLOE_DEV_CUDA_KERNELS_IMPL_H

#include "dev_cuda-impl.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Binary elementwise ops, with broadcasting. */
typedef enum dev_cuda__binop {
    DC_ADD, DC_SUB, DC_MUL, DC_DIV, DC_MAX, DC_MIN, DC_SQDIFF,
    DC_RELU_GRAD,      /* g * (x > 0) */
    DC_RELU6_GRAD,     /* g * (0 < x < 6) */
    DC_NBINOPS
} dev_cuda__binop;

/* Unary elementwise ops. */
typedef enum dev_cuda__unop {
    DC_NEG, DC_ABS, DC_EXP, DC_LOG, DC_SQRT, DC_RSQRT, DC_SQUARE, DC_RELU, DC_RELU6,
    DC_SIGMOID, DC_TANH, DC_SIGN, DC_SIN, DC_COS, DC_LOG1P, DC_SOFTPLUS, DC_NUNOPS
} dev_cuda__unop;

typedef enum dev_cuda__redop { DC_SUM, DC_MEAN, DC_PROD, DC_RMAX, DC_RMIN } dev_cuda__redop;

/* f32, f64, i32, i64 (arithmetic ops; the *_GRAD ops f32/f64 only). */
int dev_cuda__k_binary(cudaStream_t s, int op, int dtype, const dev_cuda__bcast *p,
                       const void *x, const void *y, void *z);
/* f32, f64 (NEG, ABS, SQUARE, SIGN also i32, i64). */
int dev_cuda__k_unary(cudaStream_t s, int op, int dtype, int64_t n, const void *x, void *y);
/* f32, f64, i32, i64. */
int dev_cuda__k_reduce(cudaStream_t s, int op, int dtype, const dev_cuda__reduce *p,
                       const void *x, void *y);
/* y[i] = x[i] + b[(i / inner) % c]: NHWC has inner 1. f32, f64, i32, i64. */
int dev_cuda__k_bias_add(cudaStream_t s, int dtype, int64_t n, int64_t c, int64_t inner,
                         const void *x, const void *b, void *y);
/* Between f32, f64, i32, i64, u8, bool, with Cast's rules (ops_math/cast.c): floats to
 * ints truncate and saturate, NaN gives 0; to bool: != 0; from bool: 0 or 1 whatever
 * the byte; f64 -> f32 with @truncate rounds toward zero (overflow: the largest finite). */
int dev_cuda__k_cast(cudaStream_t s, int src, int dst, int64_t n, const void *x, void *y,
                     int truncate);
/* Every element of @y (elements of @elem_size bytes: 1, 2, 4 or 8) set to *@value. */
int dev_cuda__k_fill(cudaStream_t s, size_t elem_size, int64_t n, const void *value, void *y);
int dev_cuda__k_transpose(cudaStream_t s, size_t elem_size, const dev_cuda__transpose *p,
                          const void *x, void *y);
/* y[i] = x[base + sum of coordinate_d(i) * in_stride_d]: Transpose with base 0, Slice with
 * the offset of its first element. */
int dev_cuda__k_strided_copy(cudaStream_t s, size_t elem_size, const dev_cuda__transpose *p,
                             int64_t base, const void *x, void *y);
/* GatherV2 over params viewed as [batch, outer, axis_dim, inner] and indices as
 * [batch, nidx] (i32 or i64, already checked to lie in [0, axis_dim)): y is
 * [batch, outer, nidx, inner]. */
int dev_cuda__k_gather(cudaStream_t s, size_t elem_size, int64_t batch, int64_t outer,
                       int64_t axis_dim, int64_t inner, int64_t nidx, const void *params,
                       const void *indices, int idx_i64, void *y);
/* Per row of [batch, classes] logits: loss and backprop = softmax - one_hot(label).
 * A label out of range gives NaN loss and backprop for that row (TensorFlow's GPU
 * behaviour).  f32, f64 logits; i32 or i64 labels. */
int dev_cuda__k_sparse_xent(cudaStream_t s, int dtype, int64_t batch, int64_t classes,
                            const void *logits, const void *labels, int label_i64, void *loss,
                            void *backprop);

/* RandomUniform (0), RandomStandardNormal (1), TruncatedNormal (2) into @n elements of
 * f32 or f64, exactly as ops_math/random.c draws them: Philox4x32-10 under @key, counter
 * block @start + g for output group g (4 floats or 2 doubles per group; truncated: the 256
 * blocks from @start + 256 g). */
int dev_cuda__k_random(cudaStream_t s, int dist, int dtype, int64_t n, const uint32_t key[2],
                       const uint32_t start[4], void *out);

/* Optimizers: the formulas of ops_nn/optimizers.c; scalars in op order. f32, f64. */
typedef enum dev_cuda__opt {
    DC_OPT_SGD, DC_OPT_MOMENTUM, DC_OPT_ADAM, DC_OPT_ADAGRAD, DC_OPT_RMSPROP
} dev_cuda__opt;
int dev_cuda__k_apply(cudaStream_t s, int kind, int dtype, int64_t n, void *const *slots,
                      const void *grad, const double *scalars, int flag);

/* Pooling, f32, NHWC (nchw 0) or NCHW; windows clipped to the input; avg divides by the
 * number of elements inside the input (TensorFlow's SAME). */
typedef struct dev_cuda__pool {
    int64_t n, h, w, c, oh, ow;
    int64_t kh, kw, sh, sw, pt, pl;
    int nchw;
} dev_cuda__pool;
int dev_cuda__k_maxpool(cudaStream_t s, const dev_cuda__pool *p, const float *x, float *y);
/* dx (zeroed here) += g at each window's first maximum. */
int dev_cuda__k_maxpool_grad(cudaStream_t s, const dev_cuda__pool *p, const float *x,
                             const float *g, float *dx);
int dev_cuda__k_avgpool(cudaStream_t s, const dev_cuda__pool *p, const float *x, float *y);
int dev_cuda__k_avgpool_grad(cudaStream_t s, const dev_cuda__pool *p, const float *g, float *dx);

/* NHWC zero padding: y [n, h+pt+pb, w+pl+pr, c] from x [n, h, w, c]; and the inverse
 * crop (x from y).  f32. */
int dev_cuda__k_pad_nhwc(cudaStream_t s, int64_t n, int64_t h, int64_t w, int64_t c, int64_t pt,
                         int64_t pb, int64_t pl, int64_t pr, const float *x, float *y);
int dev_cuda__k_crop_nhwc(cudaStream_t s, int64_t n, int64_t h, int64_t w, int64_t c, int64_t pt,
                          int64_t pb, int64_t pl, int64_t pr, const float *y, float *x);

/* Batch normalisation around cuDNN's (dnn.c), per channel of @c, f32.
 * train_stats: from cuDNN's saved mean and running variance (computed with factor 1, so
 * the unbiased batch variance) of @count values per channel: batch_mean/variance
 * (@bmean, @bvar; blended with @rm, @rv as (1 - factor) * r + factor * batch when factor
 * != 1), reserve_space_1/2 (@rs1 the mean, @rs2 the biased variance), as
 * ops_nn/batchnorm.c.  inv_std: inv = 1 / sqrt(var + eps).  dx_infer: the inference
 * gradient dx = scale[ch] * inv[ch] * dy over @n elements, ch = (i / inner) % c. */
int dev_cuda__k_bn_train_stats(cudaStream_t s, int64_t c, int64_t count, float factor,
                               const float *save_mean, const float *run_var, const float *rm,
                               const float *rv, float *bmean, float *bvar, float *rs1,
                               float *rs2);
int dev_cuda__k_bn_inv_std(cudaStream_t s, int64_t c, float eps, const float *var, float *inv);
int dev_cuda__k_bn_dx_infer(cudaStream_t s, int64_t n, int64_t c, int64_t inner,
                            const float *dy, const float *scale, const float *inv, float *dx);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_DEV_CUDA_KERNELS_IMPL_H */
