// State and declarations shared by the CUDA backend's files (kernels/cuda/*.cu). Everything the
// backend does is issued on one stream, in order, so the backend needs no locks and no events
// except those of the upload ring (cuda_backend.cu).
#ifndef KERNELS_CUDA_CUDA_INTERNAL_H
#define KERNELS_CUDA_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cuda_table.h" // nn/backend.h, and the table's functions with C linkage

#include "cuda_check.h"

enum { CUDA_POINTWISE_AUTO, CUDA_POINTWISE_GEMM, CUDA_POINTWISE_CUDNN };

struct CudaContext {
    int initialized;
    cudaDeviceProp prop;    // device 0
    cudaStream_t stream;    // the one compute stream: kernels, copies, cuDNN and cuBLAS
    cudnnHandle_t cudnn;    // bound to `stream`
    cublasHandle_t cublas;  // bound to `stream`, with its own fixed workspace
    int tf32;               // BackendOptions.tf32 of the latest init
    int bf16;               // BackendOptions.bf16 of the latest init: bf16 operands for cuDNN and cuBLAS (cuda_bf16.cu)
    int bf16_conv_dirs;     // with bf16: the convolution directions run on cuDNN bf16 tensors, bits 1 << CUDA_CONV_* (cuda_conv.cu)
    int deterministic;      // BackendOptions.deterministic of the latest init (cuda_conv.cu)
    size_t workspace_limit; // most bytes one convolution algorithm may use as workspace
    int sync_debug;         // DRNET_CUDA_SYNC=1: wait after every kernel and library call
    int verbose;            // DRNET_CUDA_VERBOSE=1: print every algorithm search
    int bn_split;           // unless DRNET_CUDA_BN_SPLIT=0 (read at each init): batch-norm statistics over many blocks
    int gemm_only;          // DRNET_CUDNN_ALGOS=gemm (read at each init): only GEMM-like convolution algorithms
    int pointwise;          // DRNET_CUDA_POINTWISE (read at each init): CUDA_POINTWISE_AUTO, _GEMM or _CUDNN
    int capture_mode;       // DRNET_CUDA_CAPTURE_MODE (read at each init): a cudaStreamCaptureMode
    int capturing;          // inside graph_capture_begin/end: uploads, downloads, syncs, allocs are errors
    BackendCounters counters; // allocations, frees and host waits, for the steady-state test
};
extern CudaContext g_cuda;

#define CUDA_BLOCK 256 // threads per block of the element-wise kernels

// Blocks for a grid-stride loop over n > 0 items: one item per thread up to a few waves of the
// whole GPU, beyond which each thread loops (the index is size_t everywhere).
static inline unsigned cuda_grid(size_t n, unsigned block) {
    size_t blocks = (n + block - 1) / block;
    size_t cap = (size_t)(g_cuda.prop.multiProcessorCount > 0 ? g_cuda.prop.multiProcessorCount : 1) * 32;
    return (unsigned)(blocks < cap ? blocks : cap);
}

// cudaMalloc that never returns NULL: on failure it exits saying what asked for how much and what
// is free. Used for the engine's arenas and the backend's own buffers.
void* cuda_device_alloc(size_t bytes, const char* what);
// "12.3 MiB" into buf.
const char* cuda_format_bytes(char* buf, size_t len, double bytes);

// bf16 mixed precision (cuda_bf16.cu). Three grow-only scratch buffers of bf16 bit patterns, shared
// by every call (one stream): two operands and a convolution's output.
enum { CUDA_BF16_A, CUDA_BF16_B, CUDA_BF16_OUT, CUDA_BF16_SLOTS };
uint16_t* cuda_bf16_buffer(int slot, size_t n);                   // the slot, grown to n elements
uint16_t* cuda_bf16_operand(int slot, const float* x, size_t n);  // x (n) rounded into the slot, as nn/bf16.h does
const float* cuda_bf16_rounded(int slot, const float* x, size_t n); // the same values as FP32 (2n elements of the slot)
void cuda_bf16_widen(float* y, const uint16_t* h, size_t n, int accumulate); // y = h, or y += h

// The three directions of a convolution (cuda_conv.cu's plans, cuda_pointwise.cu).
enum { CUDA_CONV_FWD, CUDA_CONV_BWD_DATA, CUDA_CONV_BWD_FILTER, CUDA_CONV_DIRECTIONS };

// 1x1 convolutions as one GEMM over the batch (cuda_pointwise.cu), FP32; cuda_conv.cu decides when.
int cuda_pointwise_fits(const ConvShape* s);             // k = 1, stride 1, no padding, one group
void cuda_pointwise_reserve(int dir, const ConvShape* s); // grow the shared scratch now (outside a capture)
float cuda_pointwise_time(int dir, const ConvShape* s);   // ms of one call, on buffers of its own
void cuda_pointwise_forward(float* y, const float* x, const float* w, const ConvShape* s);
void cuda_pointwise_backward_data(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate);
void cuda_pointwise_backward_filter(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate);

// Exits with a message naming `what` when called inside a graph capture: the call cannot be recorded
// (a wait, an allocation) or would replay stale host memory (an upload).
void cuda_refuse_in_capture(const char* what);

#endif
