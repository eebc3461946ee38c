// `train --version`: the version and what this build contains (backends, library versions), so a
// log or a bug report says which program produced it. CMake passes the values (CMakeLists.txt).
#include <stdio.h>

#include "options.h"

#ifndef DRNET_VERSION
#define DRNET_VERSION "unknown"
#endif
#ifndef DRNET_BUILD_TYPE
#define DRNET_BUILD_TYPE "unknown"
#endif

void print_version(void) {
    printf("drnet %s\n", DRNET_VERSION);
#if defined(__clang__)
    printf("build: %s, clang %d.%d.%d\n", DRNET_BUILD_TYPE, __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
    printf("build: %s, GCC %d.%d.%d\n", DRNET_BUILD_TYPE, __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
    printf("build: %s\n", DRNET_BUILD_TYPE);
#endif
    printf("backends: cpu (OpenMP; AVX-512 and AVX2 kernels chosen at run time)");
#ifdef WITH_CUDA
#ifndef DRNET_CUDA_VERSION
#define DRNET_CUDA_VERSION "unknown"
#endif
#ifndef DRNET_CUDNN_VERSION
#define DRNET_CUDNN_VERSION "unknown"
#endif
    printf(", cuda (CUDA %s, cuDNN %s, cuBLAS)\n", DRNET_CUDA_VERSION, DRNET_CUDNN_VERSION);
#else
    printf("; no CUDA backend in this build\n");
#endif
}
