// Error checking for the CUDA backend. Every CUDA, cuDNN and cuBLAS call goes through one of these
// macros: a failure prints where it happened, the call as written and the library's own message,
// then exits. There is no recovery path: a failed call mid-step leaves the device state unknown.
#ifndef KERNELS_CUDA_CUDA_CHECK_H
#define KERNELS_CUDA_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

// cuDNN's own description of its latest failure (cuDNN 9 and later), into char buf[].
#if CUDNN_MAJOR >= 9
#define CUDNN_LAST_ERROR(buf) cudnnGetLastErrorString((buf), sizeof(buf))
#else
#define CUDNN_LAST_ERROR(buf) ((void)(buf))
#endif

// Prints "error: <file>:<line>: <lib> call failed: <call>: <message>" (+ detail) and exits(1).
[[noreturn]] void cuda_fail(const char* file, int line, const char* lib, const char* call,
                            const char* message, const char* detail);

// Activations stored in bf16 (ConvShape.x_bf16, a batch norm's y_bf16) are the CPU's: this backend has
// no bf16_activations, so the engine never asks for them; a caller that does anyway stops here.
#define CUDA_REFUSE_BF16_ACTIVATIONS(flag)                                                        \
    do {                                                                                          \
        if (flag)                                                                                 \
            cuda_fail(__FILE__, __LINE__, "drnet", #flag, "activations stored in bf16",           \
                      "the CUDA backend reads and writes FP32 activations only");                 \
    } while (0)

// After a kernel launch: reports launch errors (bad configuration, no kernel image for this GPU),
// and with DRNET_CUDA_SYNC=1 waits for the kernel so that a fault is reported at the kernel that
// caused it rather than at the next synchronizing call.
void cuda_after_launch(const char* file, int line, const char* kernel);
// After a cuDNN or cuBLAS computation: the same DRNET_CUDA_SYNC=1 wait, naming the call.
void cuda_after_library(const char* file, int line, const char* call);

#define CUDA_CHECK(call)                                                                          \
    do {                                                                                          \
        cudaError_t err_ = (call);                                                                \
        if (err_ != cudaSuccess)                                                                  \
            cuda_fail(__FILE__, __LINE__, "CUDA", #call, cudaGetErrorString(err_),                \
                      cudaGetErrorName(err_));                                                    \
    } while (0)

#define CUDNN_CHECK(call)                                                                         \
    do {                                                                                          \
        cudnnStatus_t st_ = (call);                                                               \
        if (st_ != CUDNN_STATUS_SUCCESS) {                                                        \
            char detail_[512] = "";                                                               \
            CUDNN_LAST_ERROR(detail_);                                                            \
            cuda_fail(__FILE__, __LINE__, "cuDNN", #call, cudnnGetErrorString(st_), detail_);     \
        }                                                                                         \
    } while (0)

#define CUBLAS_CHECK(call)                                                                        \
    do {                                                                                          \
        cublasStatus_t st_ = (call);                                                              \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                         \
            cuda_fail(__FILE__, __LINE__, "cuBLAS", #call, cublasGetStatusString(st_), "");       \
    } while (0)

#define KERNEL_CHECK(name) cuda_after_launch(__FILE__, __LINE__, (name))
#define LIBRARY_DONE(name) cuda_after_library(__FILE__, __LINE__, (name))

#endif
