/*
 * libs.c - opens cuBLAS and cuDNN with dlopen when the first GPU device is set up
 * (see libs-impl.h for why), and fills the tables of their entry points.
 */
#include "libs-impl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FLOE_CUDA_LIBDIR
#  define FLOE_CUDA_LIBDIR "/usr/local/cuda/lib64"
#endif

dev_cuda__blas_lib dev_cuda__blas;
dev_cuda__dnn_lib dev_cuda__dnn;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static floe_status open_status = FLOE_OK;
static char open_error[512];

/* dlopen @soname from the default path, $FLOE_CUDA_LIBDIR, then FLOE_CUDA_LIBDIR. */
static void *open_lib(const char *soname) {
    const char *dirs[2] = {getenv("FLOE_CUDA_LIBDIR"), FLOE_CUDA_LIBDIR};
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    char path[1024];

    for (int i = 0; i < 2 && h == NULL; i++) {
        if (dirs[i] == NULL || dirs[i][0] == '\0')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dirs[i], soname);
        h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
    if (h == NULL)
        snprintf(open_error, sizeof(open_error), "cannot open %s: %s", soname, dlerror());
    return h;
}

static bool sym(void *h, const char *name, void **out) {
    *out = dlsym(h, name);
    if (*out == NULL)
        snprintf(open_error, sizeof(open_error), "%s lacks %s", "a CUDA library", name);
    return *out != NULL;
}

#define DEV_CUDA__LOAD(name) ok = ok && sym(h, #name, (void **)&lib->name);

static bool load_blas(dev_cuda__blas_lib *lib) {
    void *h = open_lib("libcublas.so." FLOE_CUDA_BLAS_MAJOR);
    bool ok = h != NULL;
    DEV_CUDA__BLAS_FNS(DEV_CUDA__LOAD)
    lib->loaded = ok; /* the handle stays open for the life of the process */
    return ok;
}

static bool load_dnn(dev_cuda__dnn_lib *lib) {
    void *h = open_lib("libcudnn.so." FLOE_CUDA_DNN_MAJOR);
    bool ok = h != NULL;
    DEV_CUDA__DNN_FNS(DEV_CUDA__LOAD)
    lib->loaded = ok;
    return ok;
}

#ifdef FLOE_CUDA_EMU
/* The emulator (emu/emu.h) links its cuBLAS and cuDNN into the module. */
#  define DEV_CUDA__TAKE(name) lib->name = name;
static void take_blas(dev_cuda__blas_lib *lib) {
    DEV_CUDA__BLAS_FNS(DEV_CUDA__TAKE)
    lib->loaded = true;
}

static void take_dnn(dev_cuda__dnn_lib *lib) {
    DEV_CUDA__DNN_FNS(DEV_CUDA__TAKE)
    lib->loaded = true;
}
#endif

static void open_once(void) {
#ifdef FLOE_CUDA_EMU
    take_blas(&dev_cuda__blas);
    take_dnn(&dev_cuda__dnn);
    (void)load_blas;
    (void)load_dnn;
#else
    if (!load_blas(&dev_cuda__blas) || !load_dnn(&dev_cuda__dnn))
        open_status = FLOE_UNAVAILABLE;
#endif
}

floe_status dev_cuda__libs_open(void) {
    pthread_once(&once, open_once);
    if (open_status != FLOE_OK)
        return floe_fail(open_status, "dev_cuda: %s (FLOE_CUDA_LIBDIR names another directory)",
                         open_error);
    return FLOE_OK;
}
