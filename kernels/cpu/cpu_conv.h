// Part of computing kernels/ref/ref_conv.c's convolutions faster: the k x k lowering's entry points.
//
// The CPU backend's general convolution lowering (cpu_conv_flat.c), used by cpu_conv.c for every
// convolution that is not a plain 1x1: same signatures and conventions as the backend table.
#ifndef KERNELS_CPU_CONV_H
#define KERNELS_CPU_CONV_H

#include "../../nn/backend.h"

void cpu_conv_flat_forward(float* y, const float* x, const float* w, const ConvShape* s);
void cpu_conv_flat_backward_data(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate);
void cpu_conv_flat_backward_filter(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate);

#endif
