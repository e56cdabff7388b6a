/*
 * status.c - errors of the CUDA runtime, cuBLAS and cuDNN as Floe statuses.
 *
 * Each library's codes map to the floe_status a caller can act on: out of memory is
 * RESOURCE_EXHAUSTED (retry smaller, free caches), a bad value INVALID_ARGUMENT, a
 * missing driver or device UNAVAILABLE, an unsupported configuration UNIMPLEMENTED;
 * everything else (launch failures, illegal addresses, library bugs) is INTERNAL.  The
 * message keeps the library's own name and text for the code.  The CUDA runtime's
 * strings come from cudart (linked statically, callable without a driver); cuDNN's
 * from cudnnGetErrorString once libs.c has opened it.
 */
#include "dev_cuda-impl.h"
#include "libs-impl.h"

#include <cuda_runtime_api.h>
#include <stdio.h>

/* ---- CUDA runtime ----------------------------------------------------------------- */

floe_status dev_cuda__status_cuda(int err) {
    switch ((cudaError_t)err) {
    case cudaSuccess:
        return FLOE_OK;
    case cudaErrorMemoryAllocation:
        return FLOE_RESOURCE_EXHAUSTED;
    case cudaErrorInvalidValue:
    case cudaErrorInvalidDevicePointer:
    case cudaErrorInvalidMemcpyDirection:
    case cudaErrorInvalidPitchValue:
    case cudaErrorInvalidConfiguration:
    case cudaErrorInvalidDevice:
    case cudaErrorInvalidResourceHandle:
        return FLOE_INVALID_ARGUMENT;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
        return FLOE_UNAVAILABLE;
    case cudaErrorNotSupported:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
        return FLOE_UNIMPLEMENTED;
    case cudaErrorNotReady:
        return FLOE_UNAVAILABLE;
    default:
        return FLOE_INTERNAL;
    }
}

floe_status dev_cuda__fail_cuda(int err, const char *what) {
    if (err == 0)
        return FLOE_OK;
    return floe_fail(dev_cuda__status_cuda(err), "%s: %s: %s (CUDA error %d)", what,
                     cudaGetErrorName((cudaError_t)err), cudaGetErrorString((cudaError_t)err), err);
}

/* ---- cuBLAS (codes from cublas_api.h, stable since CUDA 6) -------------------------- */

floe_status dev_cuda__status_cublas(int st) {
    switch (st) {
    case 0:  return FLOE_OK;
    case 3:  return FLOE_RESOURCE_EXHAUSTED;   /* ALLOC_FAILED */
    case 7:  return FLOE_INVALID_ARGUMENT;     /* INVALID_VALUE */
    case 8:  return FLOE_UNIMPLEMENTED;        /* ARCH_MISMATCH */
    case 15: return FLOE_UNIMPLEMENTED;        /* NOT_SUPPORTED */
    case 1:  return FLOE_FAILED_PRECONDITION;  /* NOT_INITIALIZED */
    default: return FLOE_INTERNAL;             /* MAPPING, EXECUTION, INTERNAL, LICENSE */
    }
}

const char *dev_cuda__cublas_name(int st) {
    switch (st) {
    case 0:  return "CUBLAS_STATUS_SUCCESS";
    case 1:  return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3:  return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7:  return "CUBLAS_STATUS_INVALID_VALUE";
    case 8:  return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

floe_status dev_cuda__fail_cublas(int st, const char *what) {
    if (st == 0)
        return FLOE_OK;
    return floe_fail(dev_cuda__status_cublas(st), "%s: %s (cuBLAS status %d)", what,
                     dev_cuda__cublas_name(st), st);
}

/* ---- cuDNN 9: codes are grouped by thousands (cudnn_graph.h) ---------------------- */

floe_status dev_cuda__status_cudnn(int st) {
    if (st == 0)
        return FLOE_OK;
    if (st == 4004 || st == 4003)       /* INTERNAL_ERROR_{DEVICE,HOST}_ALLOCATION_FAILED */
        return FLOE_RESOURCE_EXHAUSTED;
    switch (st / 1000) {
    case 2:  return FLOE_INVALID_ARGUMENT;     /* BAD_PARAM_* */
    case 3:  return st == 3005 ? FLOE_UNAVAILABLE : FLOE_UNIMPLEMENTED; /* NOT_SUPPORTED_* */
    case 1:  return FLOE_FAILED_PRECONDITION;  /* NOT_INITIALIZED, version mismatches */
    default: return FLOE_INTERNAL;             /* INTERNAL_ERROR_*, EXECUTION_FAILED_* */
    }
}

floe_status dev_cuda__fail_cudnn(int st, const char *what) {
    const char *name = NULL;
    if (st == 0)
        return FLOE_OK;
    if (dev_cuda__dnn.loaded)
        name = dev_cuda__dnn.cudnnGetErrorString((cudnnStatus_t)st);
    return floe_fail(dev_cuda__status_cudnn(st), "%s: %s (cuDNN status %d)", what,
                     name != NULL ? name : "cuDNN error", st);
}

void dev_cuda__format_dims(const int64_t *dims, int ndim, char *buf, size_t len) {
    size_t used;
    if (len == 0)
        return;
    used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "," : "",
                                 (long long)dims[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
}
