/*
 * libs-impl.h - cuBLAS and cuDNN, opened lazily (libs.c).
 *
 * The plugin links only the CUDA runtime (statically; it opens libcuda.so.1 itself on
 * first use), so it loads, in a few milliseconds, on a machine with no driver and no
 * GPU.  cuBLAS (about 570 MB with cuBLASLt) and cuDNN are opened with dlopen only once
 * a GPU has been found; their entry points are reached through the tables below,
 * filled by dlsym from the lists DEV_CUDA__BLAS_FNS and DEV_CUDA__DNN_FNS.
 */
#ifndef FLOE_DEV_CUDA_LIBS_IMPL_H
#define FLOE_DEV_CUDA_LIBS_IMPL_H

#include <cublas_v2.h>
#include <cudnn.h>
#include <floe/plugin.h>
#include <stdbool.h>

#define DEV_CUDA__BLAS_FNS(X)                                                          \
    X(cublasCreate_v2) X(cublasDestroy_v2) X(cublasSetStream_v2) X(cublasSetMathMode)  \
    X(cublasSgemm_v2) X(cublasDgemm_v2) X(cublasSgemmStridedBatched)                   \
    X(cublasDgemmStridedBatched) X(cublasGetVersion_v2)

#define DEV_CUDA__DNN_FNS(X)                                                           \
    X(cudnnGetVersion) X(cudnnGetErrorString) X(cudnnCreate) X(cudnnDestroy)           \
    X(cudnnSetStream) X(cudnnCreateTensorDescriptor) X(cudnnSetTensor4dDescriptor)     \
    X(cudnnDestroyTensorDescriptor) X(cudnnCreateFilterDescriptor)                     \
    X(cudnnSetFilter4dDescriptor) X(cudnnDestroyFilterDescriptor)                      \
    X(cudnnCreateConvolutionDescriptor) X(cudnnSetConvolution2dDescriptor)             \
    X(cudnnSetConvolutionMathType) X(cudnnDestroyConvolutionDescriptor)                \
    X(cudnnGetConvolutionForwardAlgorithm_v7) X(cudnnGetConvolutionForwardWorkspaceSize) \
    X(cudnnConvolutionForward) X(cudnnGetConvolutionBackwardDataAlgorithm_v7)          \
    X(cudnnGetConvolutionBackwardDataWorkspaceSize) X(cudnnConvolutionBackwardData)    \
    X(cudnnGetConvolutionBackwardFilterAlgorithm_v7)                                   \
    X(cudnnGetConvolutionBackwardFilterWorkspaceSize) X(cudnnConvolutionBackwardFilter) \
    X(cudnnSoftmaxForward) X(cudnnBatchNormalizationForwardTraining)                   \
    X(cudnnBatchNormalizationForwardInference) X(cudnnBatchNormalizationBackward)

#define DEV_CUDA__FN_MEMBER(name) __typeof__(name) *name;

typedef struct dev_cuda__blas_lib {
    bool loaded;
    DEV_CUDA__BLAS_FNS(DEV_CUDA__FN_MEMBER)
} dev_cuda__blas_lib;

typedef struct dev_cuda__dnn_lib {
    bool loaded;
    DEV_CUDA__DNN_FNS(DEV_CUDA__FN_MEMBER)
} dev_cuda__dnn_lib;

extern dev_cuda__blas_lib dev_cuda__blas;
extern dev_cuda__dnn_lib dev_cuda__dnn;

/* Opens cuBLAS and cuDNN once per process (thread-safe); later calls return the first
 * outcome.  FLOE_UNAVAILABLE with the dlopen/dlsym message when one is missing.  Looks
 * for the sonames on the loader's path, then in $FLOE_CUDA_LIBDIR, then in the
 * toolkit's lib64 the plugin was built against. */
floe_status dev_cuda__libs_open(void);

#endif /* FLOE_DEV_CUDA_LIBS_IMPL_H */
