/*
 * cudnn.c - the cuDNN 9 entry points dev_cuda uses (libs-impl.h, DEV_CUDA__DNN_FNS),
 * emulated on the host with reference loops (see emu.h).
 *
 * Emulated: handles with a stream; 4-d tensor descriptors (NCHW, NHWC; float, double)
 * and filter descriptors (KCRS as NCHW, KRSC as NHWC); 2-d convolution descriptors
 * (padding, stride, dilation, CUDNN_CROSS_CORRELATION or CUDNN_CONVOLUTION's flipped
 * kernel, compute type, math type stored); one algorithm (0) per convolution direction
 * with a small workspace, so callers' workspace paths run; forward, backward-data and
 * backward-filter convolution with double accumulation; softmax (FAST, ACCURATE, LOG;
 * INSTANCE and CHANNEL modes); batch normalisation forward (training, inference) and
 * backward in PER_ACTIVATION and SPATIAL modes (SPATIAL_PERSISTENT as SPATIAL).  Every
 * result is blended as y = alpha * result + beta * y, and beta == 0 never reads y.
 *
 * Checked at the call (CUDNN_STATUS_BAD_PARAM or NOT_SUPPORTED, with a "cuda-emu: "
 * message): descriptor extents against what the convolution implies, data and compute
 * types, workspace size, and that every tensor's span and the workspace lie inside one
 * live cudaMalloc block.  The work then runs in stream order (floe_cuda_emu_enqueue);
 * descriptors and host scalars are copied at the call, so callers may destroy them.
 *
 * Not emulated: grouped convolutions, Nd descriptors, half/bf16/int8 data, tensor-core
 * (TF32) rounding, the backend (graph) API and every other entry point.
 */
#include "emu.h"

#include <cudnn.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* What every algorithm reports it needs: small, but non-zero so that callers allocate. */
#define EMU_WORKSPACE_BYTES 256

struct cudnnContext {
    cudaStream_t stream;
};

/* Element strides of a 4-d tensor, in elements; dims in logical NCHW order. */
struct cudnnTensorStruct {
    bool set;
    cudnnDataType_t type;
    int dim[4];
    int64_t stride[4];
};

struct cudnnFilterStruct {
    bool set;
    cudnnDataType_t type;
    cudnnTensorFormat_t format;
    int k, c, r, s;
};

struct cudnnConvolutionStruct {
    bool set;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute;
    cudnnMathType_t math;
};

typedef struct cudnnTensorStruct tensor;
typedef struct cudnnFilterStruct filter;
typedef struct cudnnConvolutionStruct conv;

/* ---- Handles, versions, errors ---------------------------------------------------------- */

size_t cudnnGetVersion(void) {
    return CUDNN_VERSION;
}

const char *cudnnGetErrorString(cudnnStatus_t status) {
    switch (status) {
#define EMU_NAME(s) case s: return #s;
    EMU_NAME(CUDNN_STATUS_SUCCESS)
    EMU_NAME(CUDNN_STATUS_NOT_INITIALIZED)
    EMU_NAME(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH)
    EMU_NAME(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH)
    EMU_NAME(CUDNN_STATUS_DEPRECATED)
    EMU_NAME(CUDNN_STATUS_LICENSE_ERROR)
    EMU_NAME(CUDNN_STATUS_RUNTIME_IN_PROGRESS)
    EMU_NAME(CUDNN_STATUS_RUNTIME_FP_OVERFLOW)
    EMU_NAME(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED)
    EMU_NAME(CUDNN_STATUS_BAD_PARAM)
    EMU_NAME(CUDNN_STATUS_BAD_PARAM_NULL_POINTER)
    EMU_NAME(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER)
    EMU_NAME(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED)
    EMU_NAME(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND)
    EMU_NAME(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT)
    EMU_NAME(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH)
    EMU_NAME(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH)
    EMU_NAME(CUDNN_STATUS_NOT_SUPPORTED)
    EMU_NAME(CUDNN_STATUS_NOT_SUPPORTED_SHAPE)
    EMU_NAME(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE)
    EMU_NAME(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT)
    EMU_NAME(CUDNN_STATUS_INTERNAL_ERROR)
    EMU_NAME(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED)
    EMU_NAME(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    EMU_NAME(CUDNN_STATUS_EXECUTION_FAILED)
    EMU_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDART)
#undef EMU_NAME
    default:
        return "CUDNN_STATUS_UNKNOWN (emulation)";
    }
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *handle) {
    if (handle == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    *handle = calloc(1, sizeof(**handle));
    return *handle ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
    free(handle);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
    if (handle == NULL)
        return CUDNN_STATUS_NOT_INITIALIZED;
    handle->stream = streamId;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- Descriptors ------------------------------------------------------------------------ */

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *tensorDesc) {
    if (tensorDesc == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    *tensorDesc = calloc(1, sizeof(**tensorDesc));
    return *tensorDesc ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc) {
    free(tensorDesc);
    return CUDNN_STATUS_SUCCESS;
}

static bool type_supported(cudnnDataType_t t, const char *who) {
    if (t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_DOUBLE)
        return true;
    floe_cuda_emu_fail("%s: data type %d is not emulated (float and double only)", who, (int)t);
    return false;
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc,
                                         cudnnTensorFormat_t format, cudnnDataType_t dataType,
                                         int n, int c, int h, int w) {
    const char *who = "cudnnSetTensor4dDescriptor";
    if (tensorDesc == NULL || n <= 0 || c <= 0 || h <= 0 || w <= 0) {
        floe_cuda_emu_fail("%s: bad extents [%d, %d, %d, %d] (all must be > 0)", who, n, c, h, w);
        return CUDNN_STATUS_BAD_PARAM;
    }
    if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) {
        floe_cuda_emu_fail("%s: format %d is not emulated (NCHW, NHWC)", who, (int)format);
        return CUDNN_STATUS_NOT_SUPPORTED;
    }
    if (!type_supported(dataType, who))
        return CUDNN_STATUS_NOT_SUPPORTED;
    tensor *t = tensorDesc;
    t->type = dataType;
    t->dim[0] = n, t->dim[1] = c, t->dim[2] = h, t->dim[3] = w;
    if (format == CUDNN_TENSOR_NCHW) {
        t->stride[3] = 1, t->stride[2] = w, t->stride[1] = (int64_t)h * w;
        t->stride[0] = (int64_t)c * h * w;
    } else {
        t->stride[1] = 1, t->stride[3] = c, t->stride[2] = (int64_t)w * c;
        t->stride[0] = (int64_t)h * w * c;
    }
    t->set = true;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *filterDesc) {
    if (filterDesc == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    *filterDesc = calloc(1, sizeof(**filterDesc));
    return *filterDesc ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
}

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc) {
    free(filterDesc);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc,
                                         cudnnDataType_t dataType, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
    const char *who = "cudnnSetFilter4dDescriptor";
    if (filterDesc == NULL || k <= 0 || c <= 0 || h <= 0 || w <= 0) {
        floe_cuda_emu_fail("%s: bad extents [%d, %d, %d, %d] (all must be > 0)", who, k, c, h, w);
        return CUDNN_STATUS_BAD_PARAM;
    }
    if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) {
        floe_cuda_emu_fail("%s: format %d is not emulated (NCHW = KCRS, NHWC = KRSC)", who,
                           (int)format);
        return CUDNN_STATUS_NOT_SUPPORTED;
    }
    if (!type_supported(dataType, who))
        return CUDNN_STATUS_NOT_SUPPORTED;
    filter *f = filterDesc;
    f->type = dataType, f->format = format;
    f->k = k, f->c = c, f->r = h, f->s = w;
    f->set = true;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *convDesc) {
    if (convDesc == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    *convDesc = calloc(1, sizeof(**convDesc));
    return *convDesc ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
}

cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc) {
    free(convDesc);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h,
                                              int pad_w, int u, int v, int dilation_h,
                                              int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
    const char *who = "cudnnSetConvolution2dDescriptor";
    if (convDesc == NULL || pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dilation_h <= 0 ||
        dilation_w <= 0 || (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION)) {
        floe_cuda_emu_fail("%s: bad pad (%d, %d), stride (%d, %d), dilation (%d, %d) or mode %d",
                           who, pad_h, pad_w, u, v, dilation_h, dilation_w, (int)mode);
        return CUDNN_STATUS_BAD_PARAM;
    }
    if (!type_supported(computeType, who))
        return CUDNN_STATUS_NOT_SUPPORTED;
    conv *cv = convDesc;
    cv->pad_h = pad_h, cv->pad_w = pad_w, cv->u = u, cv->v = v;
    cv->dil_h = dilation_h, cv->dil_w = dilation_w;
    cv->mode = mode, cv->compute = computeType;
    cv->set = true;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc,
                                          cudnnMathType_t mathType) {
    if (convDesc == NULL || mathType < CUDNN_DEFAULT_MATH || mathType > CUDNN_FMA_MATH)
        return CUDNN_STATUS_BAD_PARAM;
    convDesc->math = mathType;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- Element access and checks ---------------------------------------------------------- */

static size_t type_size(cudnnDataType_t t) {
    return t == CUDNN_DATA_DOUBLE ? sizeof(double) : sizeof(float);
}

static double load(const void *p, cudnnDataType_t t, int64_t i) {
    return t == CUDNN_DATA_DOUBLE ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static void store(void *p, cudnnDataType_t t, int64_t i, double v) {
    if (t == CUDNN_DATA_DOUBLE)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

/* y[i] = alpha * v + beta * y[i], not reading y when beta == 0 (it may be garbage). */
static void blend(void *p, cudnnDataType_t t, int64_t i, double alpha, double beta, double v) {
    store(p, t, i, beta == 0.0 ? alpha * v : alpha * v + beta * load(p, t, i));
}

/* Host scalars: double for double tensors, float otherwise (cuDNN's rule). */
static double scalar(const void *p, cudnnDataType_t t) {
    return t == CUDNN_DATA_DOUBLE ? *(const double *)p : (double)*(const float *)p;
}

static int64_t tensor_off(const tensor *t, int64_t n, int64_t c, int64_t h, int64_t w) {
    return n * t->stride[0] + c * t->stride[1] + h * t->stride[2] + w * t->stride[3];
}

static int64_t tensor_count(const tensor *t) {
    return (int64_t)t->dim[0] * t->dim[1] * t->dim[2] * t->dim[3];
}

static size_t tensor_bytes(const tensor *t) {
    int64_t last = tensor_off(t, t->dim[0] - 1, t->dim[1] - 1, t->dim[2] - 1, t->dim[3] - 1);
    return (size_t)(last + 1) * type_size(t->type);
}

static int64_t filter_off(const filter *f, int64_t k, int64_t c, int64_t r, int64_t s) {
    if (f->format == CUDNN_TENSOR_NCHW)
        return ((k * f->c + c) * f->r + r) * f->s + s;
    return ((k * f->r + r) * f->s + s) * f->c + c;
}

static size_t filter_bytes(const filter *f) {
    return (size_t)f->k * (size_t)f->c * (size_t)f->r * (size_t)f->s * type_size(f->type);
}

static bool device_ok(const char *who, const char *name, const void *p, size_t n) {
    if (floe_cuda_emu_is_device(p, n))
        return true;
    floe_cuda_emu_fail("%s: %s = %p: its %zu bytes are not inside one device allocation", who,
                       name, p, n);
    return false;
}

static bool desc_ok(const char *who, const char *name, const void *d, bool set) {
    if (d != NULL && set)
        return true;
    floe_cuda_emu_fail("%s: descriptor %s is %s", who, name, d ? "not set" : "NULL");
    return false;
}

/* ---- Convolutions ----------------------------------------------------------------------- */

typedef enum { CONV_FWD, CONV_BWD_DATA, CONV_BWD_FILTER } conv_kind;

static const char *const CONV_NAME[] = {"cudnnConvolutionForward",
                                        "cudnnConvolutionBackwardData",
                                        "cudnnConvolutionBackwardFilter"};

/* One convolution as queued: descriptors by value, so callers may destroy theirs. */
typedef struct conv_job {
    conv_kind kind;
    tensor x, y;
    filter w;
    conv cv;
    const void *in1, *in2;   /* fwd: x, w; bwd data: w, dy; bwd filter: x, dy */
    void *out;               /* y, dx or dw */
    double alpha, beta;
} conv_job;

static int out_extent(int in, int pad, int k, int dil, int stride) {
    int span = in + 2 * pad - ((k - 1) * dil + 1);
    return span < 0 ? 0 : span / stride + 1;
}

/* The descriptors agree with each other: same types, channels, and y's extents are those
 * the convolution gives x and w. */
static cudnnStatus_t conv_check(const char *who, const tensor *x, const filter *w, const conv *cv,
                                const tensor *y) {
    if (!desc_ok(who, "x", x, x && x->set) || !desc_ok(who, "y", y, y && y->set) ||
        !desc_ok(who, "w", w, w && w->set) || !desc_ok(who, "conv", cv, cv && cv->set))
        return CUDNN_STATUS_BAD_PARAM;
    if (x->type != y->type || x->type != w->type || cv->compute != x->type) {
        floe_cuda_emu_fail("%s: data types differ: x %d, y %d, w %d, compute %d (emulated: all "
                           "float or all double)", who, (int)x->type, (int)y->type,
                           (int)w->type, (int)cv->compute);
        return CUDNN_STATUS_NOT_SUPPORTED;
    }
    int oh = out_extent(x->dim[2], cv->pad_h, w->r, cv->dil_h, cv->u);
    int ow = out_extent(x->dim[3], cv->pad_w, w->s, cv->dil_w, cv->v);
    if (w->c != x->dim[1] || y->dim[0] != x->dim[0] || y->dim[1] != w->k || y->dim[2] != oh ||
        y->dim[3] != ow) {
        floe_cuda_emu_fail("%s: x [%d, %d, %d, %d] with filter [k %d, c %d, %d, %d] gives "
                           "[%d, %d, %d, %d], but y is [%d, %d, %d, %d] (NCHW order)", who,
                           x->dim[0], x->dim[1], x->dim[2], x->dim[3], w->k, w->c, w->r, w->s,
                           x->dim[0], w->k, oh, ow, y->dim[0], y->dim[1], y->dim[2], y->dim[3]);
        return CUDNN_STATUS_BAD_PARAM;
    }
    return CUDNN_STATUS_SUCCESS;
}

/* The work runs on dense double copies in n-h-w-c (tensors) and k-r-s-c (filters, taps
 * already flipped for CUDNN_CONVOLUTION) order, so the innermost loop is a contiguous
 * dot product over channels; results are blended back through the descriptors. */

static double *tensor_gather(const tensor *t, const void *p) {
    const int *d = t->dim;
    double *out = malloc((size_t)tensor_count(t) * sizeof(double)), *o = out;
    if (out != NULL && p != NULL)
        for (int n = 0; n < d[0]; n++)
            for (int h = 0; h < d[2]; h++)
                for (int w = 0; w < d[3]; w++)
                    for (int c = 0; c < d[1]; c++)
                        *o++ = load(p, t->type, tensor_off(t, n, c, h, w));
    return out;
}

static void tensor_scatter(const tensor *t, void *p, const double *v, double alpha, double beta) {
    const int *d = t->dim;
    for (int n = 0; n < d[0]; n++)
        for (int h = 0; h < d[2]; h++)
            for (int w = 0; w < d[3]; w++)
                for (int c = 0; c < d[1]; c++)
                    blend(p, t->type, tensor_off(t, n, c, h, w), alpha, beta, *v++);
}

/* Filter tap (r, s) as stored: flipped for a true convolution. */
static int64_t filter_tap(const conv_job *j, int64_t k, int64_t c, int64_t r, int64_t s) {
    const filter *f = &j->w;
    if (j->cv.mode == CUDNN_CONVOLUTION)
        r = f->r - 1 - r, s = f->s - 1 - s;
    return filter_off(f, k, c, r, s);
}

static double *filter_gather(const conv_job *j, const void *p) {
    const filter *f = &j->w;
    double *out = malloc((size_t)f->k * f->r * f->s * f->c * sizeof(double)), *o = out;
    if (out != NULL && p != NULL)
        for (int k = 0; k < f->k; k++)
            for (int r = 0; r < f->r; r++)
                for (int s = 0; s < f->s; s++)
                    for (int c = 0; c < f->c; c++)
                        *o++ = load(p, f->type, filter_tap(j, k, c, r, s));
    return out;
}

static void filter_scatter(const conv_job *j, const double *v) {
    const filter *f = &j->w;
    for (int k = 0; k < f->k; k++)
        for (int r = 0; r < f->r; r++)
            for (int s = 0; s < f->s; s++)
                for (int c = 0; c < f->c; c++)
                    blend(j->out, f->type, filter_tap(j, k, c, r, s), j->alpha, j->beta, *v++);
}

/* Dense copies of one job: x, w and y (or dx, dw, dy), each n-h-w-c / k-r-s-c. */
typedef struct conv_bufs {
    double *x, *w, *y;
} conv_bufs;

/* Visits every (output position, in-range tap, output channel) and adds the product of
 * the two inputs' channel rows into the result: y (forward), x (backward data) or w
 * (backward filter). */
static void conv_loop(const conv_job *j, conv_bufs *b) {
    const tensor *x = &j->x, *y = &j->y;
    int C = x->dim[1], H = x->dim[2], W = x->dim[3], K = y->dim[1];
    int R = j->w.r, S = j->w.s;
    size_t kstride = (size_t)R * S * C;
    for (int n = 0; n < y->dim[0]; n++)
        for (int oh = 0; oh < y->dim[2]; oh++)
            for (int ow = 0; ow < y->dim[3]; ow++) {
                double *yr = b->y + (((size_t)n * y->dim[2] + oh) * y->dim[3] + ow) * K;
                for (int r = 0; r < R; r++) {
                    int ih = oh * j->cv.u - j->cv.pad_h + r * j->cv.dil_h;
                    for (int s = 0; s < S && ih >= 0 && ih < H; s++) {
                        int iw = ow * j->cv.v - j->cv.pad_w + s * j->cv.dil_w;
                        if (iw < 0 || iw >= W)
                            continue;
                        double *xr = b->x + (((size_t)n * H + ih) * W + iw) * C;
                        double *wr = b->w + ((size_t)r * S + s) * C;
                        for (int k = 0; k < K; k++, wr += kstride) {
                            if (j->kind == CONV_FWD) {
                                double acc = 0.0;
                                for (int c = 0; c < C; c++)
                                    acc += xr[c] * wr[c];
                                yr[k] += acc;
                            } else if (j->kind == CONV_BWD_DATA) {
                                for (int c = 0; c < C; c++)
                                    xr[c] += yr[k] * wr[c];
                            } else {
                                for (int c = 0; c < C; c++)
                                    wr[c] += yr[k] * xr[c];
                            }
                        }
                    }
                }
            }
}

static void conv_run(void *arg) {
    const conv_job *j = arg;
    size_t nx = (size_t)tensor_count(&j->x), ny = (size_t)tensor_count(&j->y);
    size_t nw = (size_t)j->w.k * j->w.c * j->w.r * j->w.s;
    /* the result starts at zero; the inputs are gathered from the caller's tensors */
    conv_bufs b = {
        j->kind == CONV_BWD_DATA ? calloc(nx, sizeof(double)) : tensor_gather(&j->x, j->in1),
        j->kind == CONV_BWD_FILTER ? calloc(nw, sizeof(double))
                                   : filter_gather(j, j->kind == CONV_FWD ? j->in2 : j->in1),
        j->kind == CONV_FWD ? calloc(ny, sizeof(double)) : tensor_gather(&j->y, j->in2)};
    if (b.x == NULL || b.w == NULL || b.y == NULL) {
        floe_cuda_emu_fail("%s: out of host memory for %zu + %zu + %zu doubles",
                           CONV_NAME[j->kind], nx, nw, ny);
    } else {
        conv_loop(j, &b);
        if (j->kind == CONV_FWD)
            tensor_scatter(&j->y, j->out, b.y, j->alpha, j->beta);
        else if (j->kind == CONV_BWD_DATA)
            tensor_scatter(&j->x, j->out, b.x, j->alpha, j->beta);
        else
            filter_scatter(j, b.w);
    }
    free(b.x);
    free(b.w);
    free(b.y);
}

/* Checks the descriptors, workspace and every span, then queues the convolution. */
static cudnnStatus_t conv_submit(cudnnHandle_t h, conv_job *j, const tensor *x, const filter *w,
                                 const conv *cv, const tensor *y, const void *alpha,
                                 const void *beta, const void *ws, size_t ws_bytes) {
    const char *who = CONV_NAME[j->kind];
    static const char *const NAMES[3][3] = {
        {"x", "w", "y"}, {"w", "dy", "dx"}, {"x", "dy", "dw"}};
    cudnnStatus_t st;
    if (h == NULL)
        return CUDNN_STATUS_NOT_INITIALIZED;
    if ((st = conv_check(who, x, w, cv, y)) != CUDNN_STATUS_SUCCESS)
        return st;
    if (alpha == NULL || beta == NULL) {
        floe_cuda_emu_fail("%s: alpha or beta is NULL", who);
        return CUDNN_STATUS_BAD_PARAM;
    }
    if (ws_bytes < EMU_WORKSPACE_BYTES) {
        floe_cuda_emu_fail("%s: workspace of %zu bytes, algorithm 0 needs %d", who, ws_bytes,
                           EMU_WORKSPACE_BYTES);
        return CUDNN_STATUS_BAD_PARAM;
    }
    j->x = *x, j->y = *y, j->w = *w, j->cv = *cv;
    j->alpha = scalar(alpha, x->type), j->beta = scalar(beta, x->type);
    size_t xb = tensor_bytes(x), yb = tensor_bytes(y), wb = filter_bytes(w);
    size_t sizes[3][3] = {{xb, wb, yb}, {wb, yb, xb}, {xb, yb, wb}};
    const void *ptrs[3] = {j->in1, j->in2, j->out};
    for (int i = 0; i < 3; i++)
        if (!device_ok(who, NAMES[j->kind][i], ptrs[i], sizes[j->kind][i]))
            return CUDNN_STATUS_BAD_PARAM;
    if (!device_ok(who, "workSpace", ws, ws_bytes))
        return CUDNN_STATUS_BAD_PARAM;
    if (floe_cuda_emu_enqueue(h->stream, conv_run, j, sizeof(*j)) != cudaSuccess)
        return CUDNN_STATUS_EXECUTION_FAILED;
    return CUDNN_STATUS_SUCCESS;
}

/* The one algorithm: 0, deterministic, EMU_WORKSPACE_BYTES of workspace.  The three perf
 * structs share this layout. */
#define EMU_PERF_FILL(perf, requested, returned, cv)                                          \
    do {                                                                                      \
        *(returned) = (requested) > 0 ? 1 : 0;                                                \
        if ((requested) > 0) {                                                                \
            memset(&(perf)[0], 0, sizeof((perf)[0]));                                        \
            (perf)[0].algo = 0;                                                               \
            (perf)[0].status = CUDNN_STATUS_SUCCESS;                                          \
            (perf)[0].time = 0.0f;                                                            \
            (perf)[0].memory = EMU_WORKSPACE_BYTES;                                           \
            (perf)[0].determinism = CUDNN_DETERMINISTIC;                                      \
            (perf)[0].mathType = (cv)->math;                                                  \
        }                                                                                     \
    } while (0)

static cudnnStatus_t algo_check(const char *who, cudnnHandle_t h, const tensor *x,
                                const filter *w, const conv *cv, const tensor *y, int requested,
                                const int *returned, const void *perf) {
    if (h == NULL)
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (requested < 0 || returned == NULL || (requested > 0 && perf == NULL)) {
        floe_cuda_emu_fail("%s: bad requestedAlgoCount %d or NULL results", who, requested);
        return CUDNN_STATUS_BAD_PARAM;
    }
    return conv_check(who, x, w, cv, y);
}

static cudnnStatus_t workspace_size(const char *who, cudnnHandle_t h, const tensor *x,
                                    const filter *w, const conv *cv, const tensor *y, int algo,
                                    size_t *size) {
    cudnnStatus_t st;
    if (h == NULL)
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (size == NULL || (st = conv_check(who, x, w, cv, y)) != CUDNN_STATUS_SUCCESS)
        return size == NULL ? CUDNN_STATUS_BAD_PARAM : st;
    if (algo != 0) {
        floe_cuda_emu_fail("%s: algorithm %d is not emulated (only 0)", who, algo);
        return CUDNN_STATUS_NOT_SUPPORTED;
    }
    *size = EMU_WORKSPACE_BYTES;
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t algo_id_check(const char *who, int algo) {
    if (algo == 0)
        return CUDNN_STATUS_SUCCESS;
    floe_cuda_emu_fail("%s: algorithm %d is not emulated (only 0)", who, algo);
    return CUDNN_STATUS_NOT_SUPPORTED;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnFilterDescriptor_t filterDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t destDesc, const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionFwdAlgoPerf_t *perfResults) {
    cudnnStatus_t st = algo_check("cudnnGetConvolutionForwardAlgorithm_v7", handle, srcDesc,
                                  filterDesc, convDesc, destDesc, requestedAlgoCount,
                                  returnedAlgoCount, perfResults);
    if (st == CUDNN_STATUS_SUCCESS)
        EMU_PERF_FILL(perfResults, requestedAlgoCount, returnedAlgoCount, convDesc);
    return st;
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle,
                                                      const cudnnTensorDescriptor_t xDesc,
                                                      const cudnnFilterDescriptor_t wDesc,
                                                      const cudnnConvolutionDescriptor_t convDesc,
                                                      const cudnnTensorDescriptor_t yDesc,
                                                      cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *sizeInBytes) {
    return workspace_size("cudnnGetConvolutionForwardWorkspaceSize", handle, xDesc, wDesc,
                          convDesc, yDesc, (int)algo, sizeInBytes);
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha,
                                      const cudnnTensorDescriptor_t xDesc, const void *x,
                                      const cudnnFilterDescriptor_t wDesc, const void *w,
                                      const cudnnConvolutionDescriptor_t convDesc,
                                      cudnnConvolutionFwdAlgo_t algo, void *workSpace,
                                      size_t workSpaceSizeInBytes, const void *beta,
                                      const cudnnTensorDescriptor_t yDesc, void *y) {
    conv_job j = {.kind = CONV_FWD, .in1 = x, .in2 = w, .out = y};
    cudnnStatus_t st = algo_id_check(CONV_NAME[CONV_FWD], (int)algo);
    return st ? st : conv_submit(handle, &j, xDesc, wDesc, convDesc, yDesc, alpha, beta,
                                 workSpace, workSpaceSizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t filterDesc,
    const cudnnTensorDescriptor_t diffDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t gradDesc, const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t *perfResults) {
    cudnnStatus_t st = algo_check("cudnnGetConvolutionBackwardDataAlgorithm_v7", handle, gradDesc,
                                  filterDesc, convDesc, diffDesc, requestedAlgoCount,
                                  returnedAlgoCount, perfResults);
    if (st == CUDNN_STATUS_SUCCESS)
        EMU_PERF_FILL(perfResults, requestedAlgoCount, returnedAlgoCount, convDesc);
    return st;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
    const cudnnTensorDescriptor_t dyDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t dxDesc, cudnnConvolutionBwdDataAlgo_t algo,
    size_t *sizeInBytes) {
    return workspace_size("cudnnGetConvolutionBackwardDataWorkspaceSize", handle, dxDesc, wDesc,
                          convDesc, dyDesc, (int)algo, sizeInBytes);
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha,
                                           const cudnnFilterDescriptor_t wDesc, const void *w,
                                           const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *workSpace,
                                           size_t workSpaceSizeInBytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxDesc, void *dx) {
    conv_job j = {.kind = CONV_BWD_DATA, .in1 = w, .in2 = dy, .out = dx};
    cudnnStatus_t st = algo_id_check(CONV_NAME[CONV_BWD_DATA], (int)algo);
    return st ? st : conv_submit(handle, &j, dxDesc, wDesc, convDesc, dyDesc, alpha, beta,
                                 workSpace, workSpaceSizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnTensorDescriptor_t diffDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnFilterDescriptor_t gradDesc, const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t *perfResults) {
    cudnnStatus_t st = algo_check("cudnnGetConvolutionBackwardFilterAlgorithm_v7", handle,
                                  srcDesc, gradDesc, convDesc, diffDesc, requestedAlgoCount,
                                  returnedAlgoCount, perfResults);
    if (st == CUDNN_STATUS_SUCCESS)
        EMU_PERF_FILL(perfResults, requestedAlgoCount, returnedAlgoCount, convDesc);
    return st;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
    const cudnnTensorDescriptor_t dyDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnFilterDescriptor_t gradDesc, cudnnConvolutionBwdFilterAlgo_t algo,
    size_t *sizeInBytes) {
    return workspace_size("cudnnGetConvolutionBackwardFilterWorkspaceSize", handle, xDesc,
                          gradDesc, convDesc, dyDesc, (int)algo, sizeInBytes);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void *x,
                                             const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo,
                                             void *workSpace, size_t workSpaceSizeInBytes,
                                             const void *beta,
                                             const cudnnFilterDescriptor_t dwDesc, void *dw) {
    conv_job j = {.kind = CONV_BWD_FILTER, .in1 = x, .in2 = dy, .out = dw};
    cudnnStatus_t st = algo_id_check(CONV_NAME[CONV_BWD_FILTER], (int)algo);
    return st ? st : conv_submit(handle, &j, xDesc, dwDesc, convDesc, dyDesc, alpha, beta,
                                 workSpace, workSpaceSizeInBytes);
}

/* ---- Softmax ---------------------------------------------------------------------------- */

typedef struct softmax_job {
    cudnnSoftmaxAlgorithm_t algo;
    cudnnSoftmaxMode_t mode;
    tensor x, y;
    const void *xp;
    void *yp;
    double alpha, beta;
} softmax_job;

/* Element @i of softmax group @g: groups are n (INSTANCE, over c, h, w) or (n, h, w)
 * (CHANNEL, over c); returns the logical (n, c, h, w) as offsets into x and y. */
static void softmax_elem(const softmax_job *j, int64_t g, int64_t i, int64_t *xo, int64_t *yo) {
    const int *d = j->x.dim;
    int64_t n, c, h, w;
    if (j->mode == CUDNN_SOFTMAX_MODE_INSTANCE) {
        n = g, c = i / ((int64_t)d[2] * d[3]), h = i / d[3] % d[2], w = i % d[3];
    } else {
        n = g / ((int64_t)d[2] * d[3]), h = g / d[3] % d[2], w = g % d[3], c = i;
    }
    *xo = tensor_off(&j->x, n, c, h, w);
    *yo = tensor_off(&j->y, n, c, h, w);
}

static void softmax_run(void *arg) {
    const softmax_job *j = arg;
    const int *d = j->x.dim;
    bool inst = j->mode == CUDNN_SOFTMAX_MODE_INSTANCE;
    int64_t groups = inst ? d[0] : (int64_t)d[0] * d[2] * d[3];
    int64_t size = inst ? (int64_t)d[1] * d[2] * d[3] : d[1];
    cudnnDataType_t t = j->x.type;
    int64_t xo, yo;
    for (int64_t g = 0; g < groups; g++) {
        double max = -INFINITY, sum = 0.0;
        if (j->algo != CUDNN_SOFTMAX_FAST) /* FAST does not subtract the maximum */
            for (int64_t i = 0; i < size; i++) {
                softmax_elem(j, g, i, &xo, &yo);
                max = fmax(max, load(j->xp, t, xo));
            }
        else
            max = 0.0;
        for (int64_t i = 0; i < size; i++) {
            softmax_elem(j, g, i, &xo, &yo);
            sum += exp(load(j->xp, t, xo) - max);
        }
        for (int64_t i = 0; i < size; i++) {
            softmax_elem(j, g, i, &xo, &yo);
            double v = load(j->xp, t, xo) - max;
            v = j->algo == CUDNN_SOFTMAX_LOG ? v - log(sum) : exp(v) / sum;
            blend(j->yp, j->y.type, yo, j->alpha, j->beta, v);
        }
    }
}

cudnnStatus_t cudnnSoftmaxForward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                  cudnnSoftmaxMode_t mode, const void *alpha,
                                  const cudnnTensorDescriptor_t xDesc, const void *x,
                                  const void *beta, const cudnnTensorDescriptor_t yDesc, void *y) {
    const char *who = "cudnnSoftmaxForward";
    if (handle == NULL)
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (!desc_ok(who, "x", xDesc, xDesc && xDesc->set) ||
        !desc_ok(who, "y", yDesc, yDesc && yDesc->set))
        return CUDNN_STATUS_BAD_PARAM;
    if (memcmp(xDesc->dim, yDesc->dim, sizeof(xDesc->dim)) != 0 || xDesc->type != yDesc->type ||
        algo < CUDNN_SOFTMAX_FAST || algo > CUDNN_SOFTMAX_LOG ||
        (mode != CUDNN_SOFTMAX_MODE_INSTANCE && mode != CUDNN_SOFTMAX_MODE_CHANNEL) ||
        alpha == NULL || beta == NULL) {
        floe_cuda_emu_fail("%s: x and y differ in extents or type, or bad algo %d / mode %d, or "
                           "NULL alpha/beta", who, (int)algo, (int)mode);
        return CUDNN_STATUS_BAD_PARAM;
    }
    if (!device_ok(who, "x", x, tensor_bytes(xDesc)) ||
        !device_ok(who, "y", y, tensor_bytes(yDesc)))
        return CUDNN_STATUS_BAD_PARAM;
    softmax_job j = {algo, mode, *xDesc, *yDesc, x, y, scalar(alpha, xDesc->type),
                     scalar(beta, xDesc->type)};
    if (floe_cuda_emu_enqueue(handle->stream, softmax_run, &j, sizeof(j)) != cudaSuccess)
        return CUDNN_STATUS_EXECUTION_FAILED;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- Batch normalisation ---------------------------------------------------------------- */

typedef enum { BN_TRAIN, BN_INFER, BN_BACKWARD } bn_kind;

static const char *const BN_NAME[] = {"cudnnBatchNormalizationForwardTraining",
                                      "cudnnBatchNormalizationForwardInference",
                                      "cudnnBatchNormalizationBackward"};

/* One batch-norm call as queued.  The statistics are per group: a channel (SPATIAL,
 * over n, h, w) or a (c, h, w) position (PER_ACTIVATION, over n). */
typedef struct bn_job {
    bn_kind kind;
    bool spatial;
    tensor x, dy, y, p;             /* y is dx for the backward pass; p the parameters' */
    const void *xp, *dyp, *scale, *bias, *mean_in, *var_in;
    void *yp, *run_mean, *run_var, *save_mean, *save_inv, *dscale, *dbias;
    double alpha, beta, alpha_p, beta_p, factor, eps;
} bn_job;

static int64_t bn_groups(const bn_job *j) {
    return j->spatial ? j->x.dim[1] : (int64_t)j->x.dim[1] * j->x.dim[2] * j->x.dim[3];
}

static int64_t bn_members(const bn_job *j) {
    return j->spatial ? (int64_t)j->x.dim[0] * j->x.dim[2] * j->x.dim[3] : j->x.dim[0];
}

/* Logical (n, c, h, w) of member @m of group @g. */
static void bn_elem(const bn_job *j, int64_t g, int64_t m, int64_t *nchw) {
    const int *d = j->x.dim;
    int64_t hw = (int64_t)d[2] * d[3];
    if (j->spatial) {
        nchw[0] = m / hw, nchw[1] = g, nchw[2] = m / d[3] % d[2], nchw[3] = m % d[3];
    } else {
        nchw[0] = m, nchw[1] = g / hw, nchw[2] = g / d[3] % d[2], nchw[3] = g % d[3];
    }
}

static int64_t bn_off(const tensor *t, const int64_t *e) {
    return tensor_off(t, e[0], e[1], e[2], e[3]);
}

/* Offset of group @g's parameters in the [1, C, 1, 1] or [1, C, H, W] tensor. */
static int64_t bn_param(const bn_job *j, int64_t g) {
    int64_t e[4];
    bn_elem(j, g, 0, e);
    return j->spatial ? tensor_off(&j->p, 0, e[1], 0, 0) : tensor_off(&j->p, 0, e[1], e[2], e[3]);
}

static void bn_moments(const bn_job *j, int64_t g, double *mean, double *var) {
    int64_t m = bn_members(j), e[4];
    double s = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < m; i++) {
        bn_elem(j, g, i, e);
        s += load(j->xp, j->x.type, bn_off(&j->x, e));
    }
    *mean = s / (double)m;
    for (int64_t i = 0; i < m; i++) {
        bn_elem(j, g, i, e);
        double d = load(j->xp, j->x.type, bn_off(&j->x, e)) - *mean;
        s2 += d * d;
    }
    *var = s2 / (double)m;
}

/* y = alpha * (scale * (x - mean) * inv + bias) + beta * y over group @g. */
static void bn_normalise(const bn_job *j, int64_t g, double mean, double inv) {
    cudnnDataType_t pt = j->p.type;
    int64_t po = bn_param(j, g), e[4];
    double sc = load(j->scale, pt, po), bi = load(j->bias, pt, po);
    for (int64_t i = 0; i < bn_members(j); i++) {
        bn_elem(j, g, i, e);
        double x = load(j->xp, j->x.type, bn_off(&j->x, e));
        blend(j->yp, j->y.type, bn_off(&j->y, e), j->alpha, j->beta, sc * (x - mean) * inv + bi);
    }
}

/* Running averages blend with the unbiased variance, as cuDNN's documentation says. */
static void bn_train_group(const bn_job *j, int64_t g) {
    cudnnDataType_t pt = j->p.type;
    int64_t po = bn_param(j, g), m = bn_members(j);
    double mean, var, inv, f = j->factor;
    bn_moments(j, g, &mean, &var);
    inv = 1.0 / sqrt(var + j->eps);
    bn_normalise(j, g, mean, inv);
    if (j->run_mean != NULL) {
        double unbiased = m > 1 ? var * (double)m / (double)(m - 1) : var;
        store(j->run_mean, pt, po, f * mean + (1.0 - f) * load(j->run_mean, pt, po));
        store(j->run_var, pt, po, f * unbiased + (1.0 - f) * load(j->run_var, pt, po));
    }
    if (j->save_mean != NULL) {
        store(j->save_mean, pt, po, mean);
        store(j->save_inv, pt, po, inv);
    }
}

static void bn_infer_group(const bn_job *j, int64_t g) {
    cudnnDataType_t pt = j->p.type;
    int64_t po = bn_param(j, g);
    double mean = load(j->mean_in, pt, po), var = load(j->var_in, pt, po);
    bn_normalise(j, g, mean, 1.0 / sqrt(var + j->eps));
}

/* dx = scale * inv / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)); the parameter
 * gradients are sum(dy * xhat) and sum(dy). */
static void bn_backward_group(const bn_job *j, int64_t g) {
    cudnnDataType_t pt = j->p.type, xt = j->x.type;
    int64_t po = bn_param(j, g), m = bn_members(j), e[4];
    double mean, inv, sum_dy = 0.0, sum_dyx = 0.0, sc = load(j->scale, pt, po);
    if (j->mean_in != NULL) {
        mean = load(j->mean_in, pt, po);
        inv = load(j->var_in, pt, po);
    } else {
        double var;
        bn_moments(j, g, &mean, &var);
        inv = 1.0 / sqrt(var + j->eps);
    }
    for (int64_t i = 0; i < m; i++) {
        bn_elem(j, g, i, e);
        double dy = load(j->dyp, j->dy.type, bn_off(&j->dy, e));
        sum_dy += dy;
        sum_dyx += dy * (load(j->xp, xt, bn_off(&j->x, e)) - mean) * inv;
    }
    for (int64_t i = 0; i < m; i++) {
        bn_elem(j, g, i, e);
        double dy = load(j->dyp, j->dy.type, bn_off(&j->dy, e));
        double xhat = (load(j->xp, xt, bn_off(&j->x, e)) - mean) * inv;
        double dx = sc * inv / (double)m * ((double)m * dy - sum_dy - xhat * sum_dyx);
        blend(j->yp, j->y.type, bn_off(&j->y, e), j->alpha, j->beta, dx);
    }
    blend(j->dscale, pt, po, j->alpha_p, j->beta_p, sum_dyx);
    blend(j->dbias, pt, po, j->alpha_p, j->beta_p, sum_dy);
}

static void bn_run(void *arg) {
    const bn_job *j = arg;
    for (int64_t g = 0; g < bn_groups(j); g++) {
        if (j->kind == BN_TRAIN)
            bn_train_group(j, g);
        else if (j->kind == BN_INFER)
            bn_infer_group(j, g);
        else
            bn_backward_group(j, g);
    }
}

/* Mode, descriptors and epsilon; fills j's mode and descriptor copies. */
static cudnnStatus_t bn_check(bn_job *j, cudnnBatchNormMode_t mode, const tensor *x,
                              const tensor *y, const tensor *dy, const tensor *p, double eps) {
    const char *who = BN_NAME[j->kind];
    if (mode != CUDNN_BATCHNORM_PER_ACTIVATION && mode != CUDNN_BATCHNORM_SPATIAL &&
        mode != CUDNN_BATCHNORM_SPATIAL_PERSISTENT) {
        floe_cuda_emu_fail("%s: mode %d is not a batch-norm mode", who, (int)mode);
        return CUDNN_STATUS_BAD_PARAM;
    }
    if (!desc_ok(who, "x", x, x && x->set) || !desc_ok(who, "y/dx", y, y && y->set) ||
        !desc_ok(who, "dy", dy, dy && dy->set) ||
        !desc_ok(who, "bnScaleBiasMeanVar", p, p && p->set))
        return CUDNN_STATUS_BAD_PARAM;
    j->spatial = mode != CUDNN_BATCHNORM_PER_ACTIVATION;
    int want[4] = {1, x->dim[1], j->spatial ? 1 : x->dim[2], j->spatial ? 1 : x->dim[3]};
    cudnnDataType_t pt = x->type == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    if (memcmp(x->dim, y->dim, sizeof(x->dim)) != 0 || memcmp(x->dim, dy->dim, sizeof(x->dim)) ||
        x->type != y->type || x->type != dy->type) {
        floe_cuda_emu_fail("%s: x [%d, %d, %d, %d] and the other data tensors differ in extents "
                           "or type", who, x->dim[0], x->dim[1], x->dim[2], x->dim[3]);
        return CUDNN_STATUS_BAD_PARAM;
    }
    if (memcmp(p->dim, want, sizeof(want)) != 0 || p->type != pt) {
        floe_cuda_emu_fail("%s: the parameter descriptor is [%d, %d, %d, %d] type %d; this mode "
                           "needs [%d, %d, %d, %d] type %d", who, p->dim[0], p->dim[1], p->dim[2],
                           p->dim[3], (int)p->type, want[0], want[1], want[2], want[3], (int)pt);
        return CUDNN_STATUS_BAD_PARAM;
    }
    if (!(eps >= CUDNN_BN_MIN_EPSILON)) {
        floe_cuda_emu_fail("%s: epsilon %g is below CUDNN_BN_MIN_EPSILON %g", who, eps,
                           (double)CUDNN_BN_MIN_EPSILON);
        return CUDNN_STATUS_BAD_PARAM;
    }
    j->x = *x, j->y = *y, j->dy = *dy, j->p = *p, j->eps = eps;
    return CUDNN_STATUS_SUCCESS;
}

/* Checks that each (name, pointer) that must be (or, when optional, is) non-NULL lies
 * in device memory with the size of its descriptor, then queues the job. */
typedef struct bn_span {
    const char *name;
    const void *p;
    const tensor *t;
    bool optional;
} bn_span;

static cudnnStatus_t bn_submit(cudnnHandle_t h, const bn_job *j, const bn_span *sp, int n) {
    const char *who = BN_NAME[j->kind];
    for (int i = 0; i < n; i++) {
        if (sp[i].p == NULL && sp[i].optional)
            continue;
        if (sp[i].p == NULL) {
            floe_cuda_emu_fail("%s: %s is NULL", who, sp[i].name);
            return CUDNN_STATUS_BAD_PARAM;
        }
        if (!device_ok(who, sp[i].name, sp[i].p, tensor_bytes(sp[i].t)))
            return CUDNN_STATUS_BAD_PARAM;
    }
    if (floe_cuda_emu_enqueue(h->stream, bn_run, j, sizeof(*j)) != cudaSuccess)
        return CUDNN_STATUS_EXECUTION_FAILED;
    return CUDNN_STATUS_SUCCESS;
}

static bool pair_ok(const char *who, const char *a, const void *pa, const char *b,
                    const void *pb) {
    if ((pa == NULL) == (pb == NULL))
        return true;
    floe_cuda_emu_fail("%s: %s and %s must both be NULL or both be given", who, a, b);
    return false;
}

cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
    const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t yDesc,
    void *y, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void *bnScale,
    const void *bnBias, double exponentialAverageFactor, void *resultRunningMean,
    void *resultRunningVariance, double epsilon, void *resultSaveMean,
    void *resultSaveInvVariance) {
    const char *who = BN_NAME[BN_TRAIN];
    const tensor *p = bnScaleBiasMeanVarDesc;
    bn_job j = {.kind = BN_TRAIN, .xp = x, .yp = y, .scale = bnScale, .bias = bnBias,
                .run_mean = resultRunningMean, .run_var = resultRunningVariance,
                .save_mean = resultSaveMean, .save_inv = resultSaveInvVariance,
                .factor = exponentialAverageFactor};
    cudnnStatus_t st;
    if (handle == NULL)
        return CUDNN_STATUS_NOT_INITIALIZED;
    if ((st = bn_check(&j, mode, xDesc, yDesc, xDesc, p, epsilon)) != CUDNN_STATUS_SUCCESS)
        return st;
    if (alpha == NULL || beta == NULL) {
        floe_cuda_emu_fail("%s: alpha or beta is NULL", who);
        return CUDNN_STATUS_BAD_PARAM;
    }
    if (!pair_ok(who, "resultRunningMean", resultRunningMean, "resultRunningVariance",
                 resultRunningVariance) ||
        !pair_ok(who, "resultSaveMean", resultSaveMean, "resultSaveInvVariance",
                 resultSaveInvVariance))
        return CUDNN_STATUS_BAD_PARAM;
    j.alpha = scalar(alpha, xDesc->type), j.beta = scalar(beta, xDesc->type);
    const bn_span sp[] = {
        {"x", x, xDesc, false},       {"y", y, yDesc, false},
        {"bnScale", bnScale, p, false}, {"bnBias", bnBias, p, false},
        {"resultRunningMean", resultRunningMean, p, true},
        {"resultRunningVariance", resultRunningVariance, p, true},
        {"resultSaveMean", resultSaveMean, p, true},
        {"resultSaveInvVariance", resultSaveInvVariance, p, true}};
    return bn_submit(handle, &j, sp, (int)(sizeof(sp) / sizeof(sp[0])));
}

cudnnStatus_t cudnnBatchNormalizationForwardInference(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
    const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t yDesc,
    void *y, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void *bnScale,
    const void *bnBias, const void *estimatedMean, const void *estimatedVariance,
    double epsilon) {
    const tensor *p = bnScaleBiasMeanVarDesc;
    bn_job j = {.kind = BN_INFER, .xp = x, .yp = y, .scale = bnScale, .bias = bnBias,
                .mean_in = estimatedMean, .var_in = estimatedVariance};
    cudnnStatus_t st;
    if (handle == NULL)
        return CUDNN_STATUS_NOT_INITIALIZED;
    if ((st = bn_check(&j, mode, xDesc, yDesc, xDesc, p, epsilon)) != CUDNN_STATUS_SUCCESS)
        return st;
    if (alpha == NULL || beta == NULL) {
        floe_cuda_emu_fail("%s: alpha or beta is NULL", BN_NAME[BN_INFER]);
        return CUDNN_STATUS_BAD_PARAM;
    }
    j.alpha = scalar(alpha, xDesc->type), j.beta = scalar(beta, xDesc->type);
    const bn_span sp[] = {{"x", x, xDesc, false},
                          {"y", y, yDesc, false},
                          {"bnScale", bnScale, p, false},
                          {"bnBias", bnBias, p, false},
                          {"estimatedMean", estimatedMean, p, false},
                          {"estimatedVariance", estimatedVariance, p, false}};
    return bn_submit(handle, &j, sp, (int)(sizeof(sp) / sizeof(sp[0])));
}

cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alphaDataDiff,
    const void *betaDataDiff, const void *alphaParamDiff, const void *betaParamDiff,
    const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t dyDesc,
    const void *dy, const cudnnTensorDescriptor_t dxDesc, void *dx,
    const cudnnTensorDescriptor_t dBnScaleBiasDesc, const void *bnScale, void *dBnScaleResult,
    void *dBnBiasResult, double epsilon, const void *savedMean, const void *savedInvVariance) {
    const char *who = BN_NAME[BN_BACKWARD];
    const tensor *p = dBnScaleBiasDesc;
    bn_job j = {.kind = BN_BACKWARD, .xp = x, .dyp = dy, .yp = dx, .scale = bnScale,
                .dscale = dBnScaleResult, .dbias = dBnBiasResult, .mean_in = savedMean,
                .var_in = savedInvVariance};
    cudnnStatus_t st;
    if (handle == NULL)
        return CUDNN_STATUS_NOT_INITIALIZED;
    if ((st = bn_check(&j, mode, xDesc, dxDesc, dyDesc, p, epsilon)) != CUDNN_STATUS_SUCCESS)
        return st;
    if (alphaDataDiff == NULL || betaDataDiff == NULL || alphaParamDiff == NULL ||
        betaParamDiff == NULL || !pair_ok(who, "savedMean", savedMean, "savedInvVariance",
                                          savedInvVariance)) {
        floe_cuda_emu_fail("%s: NULL alpha/beta or only one of savedMean/savedInvVariance", who);
        return CUDNN_STATUS_BAD_PARAM;
    }
    cudnnDataType_t t = xDesc->type;
    j.alpha = scalar(alphaDataDiff, t), j.beta = scalar(betaDataDiff, t);
    j.alpha_p = scalar(alphaParamDiff, t), j.beta_p = scalar(betaParamDiff, t);
    const bn_span sp[] = {{"x", x, xDesc, false},
                          {"dy", dy, dyDesc, false},
                          {"dx", dx, dxDesc, false},
                          {"bnScale", bnScale, p, false},
                          {"dBnScaleResult", dBnScaleResult, p, false},
                          {"dBnBiasResult", dBnBiasResult, p, false},
                          {"savedMean", savedMean, p, true},
                          {"savedInvVariance", savedInvVariance, p, true}};
    return bn_submit(handle, &j, sp, (int)(sizeof(sp) / sizeof(sp[0])));
}
