// State and declarations shared by the CUDA backend's files (kernels/cuda/*.cu). Everything the
// backend does is issued on one stream, in order, so the backend needs no locks and no events
// except those of the upload ring (cuda_backend.cu).
#ifndef KERNELS_CUDA_CUDA_INTERNAL_H
#define KERNELS_CUDA_CUDA_INTERNAL_H

#include <stddef.h>

extern "C" {
#include "../../nn/backend.h"
}

#include "cuda_check.h"

struct CudaContext {
    int initialized;
    cudaDeviceProp prop;    // device 0
    cudaStream_t stream;    // the one compute stream: kernels, copies, cuDNN and cuBLAS
    cudnnHandle_t cudnn;    // bound to `stream`
    cublasHandle_t cublas;  // bound to `stream`, with its own fixed workspace
    int tf32;               // BackendOptions.tf32 of the latest init
    int deterministic;      // BackendOptions.deterministic of the latest init (cuda_conv.cu)
    size_t workspace_limit; // most bytes one convolution algorithm may use as workspace
    int sync_debug;         // DRNET_CUDA_SYNC=1: wait after every kernel and library call
    int verbose;            // DRNET_CUDA_VERBOSE=1: print every algorithm search
    int bn_split;           // unless DRNET_CUDA_BN_SPLIT=0 (read at each init): batch-norm statistics over many blocks
    int gemm_only;          // DRNET_CUDNN_ALGOS=gemm (read at each init): only GEMM-like convolution algorithms
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
// cudaFree after the stream's queued work (which may still use p); counted, refused inside a capture.
void cuda_device_free(void* p);
// "12.3 MiB" into buf.
const char* cuda_format_bytes(char* buf, size_t len, double bytes);

// Exits with a message naming `what` when called inside a graph capture: the call cannot be recorded
// (a wait, an allocation) or would replay stale host memory (an upload).
void cuda_refuse_in_capture(const char* what);

// cuda_conv.cu, cuda_dr.cu
void cuda_conv2d_forward(float* y, const float* x, const float* w, const ConvShape* s);
void cuda_conv2d_backward_data(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate);
void cuda_conv2d_backward_filter(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate);
void cuda_dr_scatter(float* wbig, const float* w, int c, int g, int kk);
void cuda_dr_gather(float* dw, const float* dwbig, int c, int g, int kk);

// cuda_norm.cu
void cuda_batchnorm_forward_train(float* y, float* mean, float* invstd, float* running_mean,
                                  float* running_var, const float* x, const float* gamma,
                                  const float* beta, int n, int c, int hw, float momentum, float eps,
                                  int relu);
void cuda_batchnorm_forward_eval(float* y, const float* x, const float* gamma, const float* beta,
                                 const float* running_mean, const float* running_var, int n, int c,
                                 int hw, float eps, int relu);
void cuda_batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                             const float* y, const float* mean, const float* invstd,
                             const float* gamma, int n, int c, int hw, int relu, int accumulate);

// cuda_ops.cu
void cuda_relu_forward(float* y, const float* x, size_t count);
void cuda_relu_backward(float* dx, const float* dy, const float* y, size_t count, int accumulate);
void cuda_add_forward(float* y, const float* a, const float* b, size_t count);
void cuda_add_backward(float* da, float* db, const float* dy, size_t count, int accumulate_a, int accumulate_b);
void cuda_avgpool_forward(float* y, const float* x, const PoolShape* p);
void cuda_avgpool_backward(float* dx, const float* dy, const PoolShape* p, int accumulate);
void cuda_maxpool_forward(float* y, int* argmax, const float* x, const PoolShape* p);
void cuda_maxpool_backward(float* dx, const float* dy, const int* argmax, const PoolShape* p, int accumulate);
void cuda_sgd_step(float* p, float* buf, const float* g, size_t count, float lr, float momentum,
                   float weight_decay, int nesterov);

void cuda_sgd_step_device_lr(float* p, float* buf, const float* g, size_t count, const float* lr,
                             float momentum, float weight_decay, int nesterov);

// cuda_speed.cu
void cuda_augment_batch(float* images, int* labels, const uint8_t* records, int count, const int* indices,
                        int n, uint64_t seed, int epoch, int augment);
int cuda_graph_capture_begin(char* err, size_t errlen);
void* cuda_graph_capture_end(void);
void cuda_graph_launch(void* graph);
void cuda_graph_destroy(void* graph);
void cuda_read_counters(BackendCounters* out);

// cuda_loss.cu
void cuda_cross_entropy_forward(float* loss, float* probs, const float* logits, const int* labels,
                                int n, int classes);
void cuda_cross_entropy_backward(float* dlogits, const float* dloss, const float* probs,
                                 const int* labels, int n, int classes, int accumulate);
void cuda_metrics_accumulate(float* loss_sum, int* correct, const float* loss, const float* logits,
                             const int* labels, int n, int classes);

// cuda_linear.cu
void cuda_linear_forward(float* y, const float* x, const float* w, const float* b, int n, int in, int out);
void cuda_linear_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                          const float* w, int n, int in, int out, int accumulate_dx);

#endif
