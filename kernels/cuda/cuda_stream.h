// The CUDA backend's one compute stream, for code outside the backend that launches its own kernels
// (the baselines in bench/): work issued on it is ordered with the backend's own work, so the
// backend's events time it and its download waits for it. Valid after the backend's init; before
// that it is 0, the legacy default stream.
#ifndef KERNELS_CUDA_CUDA_STREAM_H
#define KERNELS_CUDA_CUDA_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif
cudaStream_t drnet_cuda_stream(void);
// Prints every convolution shape seen so far with the cuDNN algorithm chosen per direction (tests
// print it when a comparison fails).
void drnet_cuda_conv_report(FILE* f);
// The bf16 mixed-precision rounding kernel alone (kernels/cuda/cuda_bf16.cu): h (n) = x (n) rounded
// as nn/bf16.h's bf16_operand does, both in device memory, on the backend's stream.
void drnet_cuda_bf16_round(uint16_t* h, const float* x, size_t n);
#ifdef __cplusplus
}
#endif

#endif
