// The reference backend's ops (kernels/ref/), as the table in ref_backend.c exposes them: each is
// the op's defining formula written as plain loops, the oracle the tuned backends are tested
// against (tests/op_compare.c). Signatures and conventions are those of nn/backend.h.
//
// Rules of this folder: no intrinsics, no packing, no scratch memory; at most one
// `#pragma omp parallel for` per function, on an outer loop whose iterations write disjoint
// outputs, so that every output is computed by one thread in one fixed order and the results do
// not depend on the thread count. Sums run in double (a product of two floats is exact in double)
// and are rounded to float once, at the end.
#ifndef KERNELS_REF_KERNELS_H
#define KERNELS_REF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "../../nn/backend.h"
#include "../../nn/bf16.h"

// bf16 mode (BackendOptions.bf16, set by init): the factors of every convolution and linear product
// are rounded as the tuned kernels round them (nn/bf16.h), then multiplied and summed in double as
// in FP32 mode. So ref in bf16 mode differs from a tuned bf16 kernel by summation order alone.
extern int ref_bf16;
static inline double ref_factor(float v) { return ref_bf16 ? (double)bf16_operand_value(v) : (double)v; }
// A convolution's sum, to be stored (or added) as FP32: itself; with BackendOptions.bf16_conv_results
// (the CUDA backend's oracle) its FP32 value rounded to bf16, as cuDNN's bf16 convolutions write it.
extern int ref_bf16_conv_results;
static inline double ref_conv_result(double sum) {
    return ref_bf16 && ref_bf16_conv_results ? (double)bf16_float(bf16_round((float)sum)) : sum;
}

// Offset of element (n, c, y, x) in an NCHW tensor of C channels and H x W planes.
static inline size_t ref_at(int n, int c, int y, int x, int C, int H, int W) {
    return (((size_t)n * C + c) * H + y) * W + x;
}

// ref_conv.c
void ref_conv2d_forward(float* y, const float* x, const float* w, const ConvShape* s);
void ref_conv2d_backward_data(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate);
void ref_conv2d_backward_filter(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate);
void ref_dr_scatter(float* wbig, const float* w, int c, int g, int kk);
void ref_dr_gather(float* dw, const float* dwbig, int c, int g, int kk);

// ref_norm.c
void ref_batchnorm_forward_train(float* y, float* mean, float* invstd, float* running_mean,
                                 float* running_var, const float* x, const float* gamma,
                                 const float* beta, int n, int c, int hw, float momentum, float eps,
                                 int relu, int y_bf16);
void ref_batchnorm_forward_eval(float* y, const float* x, const float* gamma, const float* beta,
                                const float* running_mean, const float* running_var, int n, int c,
                                int hw, float eps, int relu, int y_bf16);
void ref_batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                            const float* y, const float* mean, const float* invstd, const float* gamma,
                            const float* beta, int n, int c, int hw, int relu, int y_bf16, int dx_bf16,
                            int accumulate);

// ref_ops.c
void ref_relu_forward(float* y, const float* x, size_t count);
void ref_relu_backward(float* dx, const float* dy, const float* y, size_t count, int accumulate);
void ref_add_forward(float* y, const float* a, const float* b, size_t count);
void ref_add_backward(float* da, float* db, const float* dy, size_t count, int accumulate_a, int accumulate_b);
void ref_avgpool_forward(float* y, const float* x, const PoolShape* p);
void ref_avgpool_backward(float* dx, const float* dy, const PoolShape* p, int accumulate);
void ref_maxpool_forward(float* y, int* argmax, const float* x, const PoolShape* p);
void ref_maxpool_backward(float* dx, const float* dy, const int* argmax, const PoolShape* p, int accumulate);
void ref_linear_forward(float* y, const float* x, const float* w, const float* b, int n, int in, int out);
void ref_linear_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                         const float* w, int n, int in, int out, int accumulate_dx);
void ref_cross_entropy_forward(float* loss, float* probs, const float* logits, const int* labels,
                               int n, int classes);
void ref_cross_entropy_backward(float* dlogits, const float* dloss, const float* probs,
                                const int* labels, int n, int classes, int accumulate);
void ref_metrics_accumulate(float* loss_sum, int* correct, const float* loss, const float* logits,
                            const int* labels, int n, int classes);
void ref_sgd_step(float* p, float* buf, const float* g, size_t count, float lr, float momentum,
                  float weight_decay, int nesterov);
void ref_augment_batch(float* images, int* labels, const uint8_t* records, int count, const int* indices,
                       int n, uint64_t seed, int epoch, int augment);

#endif
