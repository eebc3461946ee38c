// The functions of the CUDA backend's table (nn/backend.h), declared with C linkage for both
// compilers: the .cu files define them (nvcc, C++), cuda_table.c fills the table with them (the C
// compiler, with designated initializers, so that every entry is matched to its field by name and a
// field added to Backend cannot shift the others). Functions the .cu files share among themselves
// only are in cuda_internal.h.
#ifndef KERNELS_CUDA_CUDA_TABLE_H
#define KERNELS_CUDA_CUDA_TABLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "../../nn/backend.h"

// cuda_backend.cu: device set-up, memory, copies, events, profiler ranges (no-ops without NVTX)
int cuda_init(const BackendOptions* opt, char* err, size_t errlen);
void cuda_describe(char* buf, size_t len);
void* cuda_alloc(size_t bytes, const char* what);
// cudaFree after the stream's queued work (which may still use p); counted, refused inside a capture.
void cuda_device_free(void* p);
void cuda_zero(void* p, size_t bytes);
void cuda_upload(void* dst, const void* src, size_t bytes);
void cuda_download(void* dst, const void* src, size_t bytes);
void cuda_copy(void* dst, const void* src, size_t bytes);
void cuda_synchronize(void);
void* cuda_event_create(void);
void cuda_event_destroy(void* ev);
void cuda_event_record(void* ev);
float cuda_event_elapsed_ms(void* start, void* end);
void cuda_range_push(const char* name);
void cuda_range_pop(void);

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
                                  int relu, int y_bf16);
void cuda_batchnorm_forward_eval(float* y, const float* x, const float* gamma, const float* beta,
                                 const float* running_mean, const float* running_var, int n, int c,
                                 int hw, float eps, int relu, int y_bf16);
void cuda_batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                             const float* y, const float* mean, const float* invstd,
                             const float* gamma, const float* beta, int n, int c, int hw, int relu, int y_bf16,
                             int dx_bf16, int accumulate);

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

#ifdef __cplusplus
}
#endif

#endif
