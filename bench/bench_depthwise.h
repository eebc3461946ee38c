// The direct depthwise baselines of bench-depthwise (never used by the layer itself): a plain loop
// on the CPU (bench_depthwise_direct.c) and a plain kernel on CUDA (bench_depthwise_direct.cu).
// They dispatch on the backend's name.
#ifndef BENCH_DEPTHWISE_H
#define BENCH_DEPTHWISE_H

#include "../nn/backend.h"

#ifdef __cplusplus
extern "C" {
#endif
void direct_depthwise_forward(const Backend* be, float* y, const float* x, const float* w, const ConvShape* s);
void direct_depthwise_backward_data(const Backend* be, float* dx, const float* dy, const float* w, const ConvShape* s);
void direct_depthwise_backward_filter(const Backend* be, float* dw, const float* dy, const float* x, const ConvShape* s);
// CUDA versions (bench_depthwise_direct.cu), present when built with CUDA.
void direct_depthwise_forward_cuda(float* y, const float* x, const float* w, const ConvShape* s);
void direct_depthwise_backward_data_cuda(float* dx, const float* dy, const float* w, const ConvShape* s);
void direct_depthwise_backward_filter_cuda(float* dw, const float* dy, const float* x, const ConvShape* s);
#ifdef __cplusplus
}
#endif

#endif
