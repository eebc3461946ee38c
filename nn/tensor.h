// The tensor: a 4-D float32 array in NCHW order (PyTorch's default layout) living in the memory of
// the engine's backend (host memory for the CPU backend, device memory for CUDA), plus the buffer its
// gradient accumulates into. A vector of features is stored as (n, c, 1, 1).
//
// One exception to float32: in bf16 mixed precision an activation whose every reader rounds it to
// bf16 anyway (a batch norm's output feeding convolutions, nn/batchnorm.c) is stored as bf16, two
// bytes a value, half the traffic; `bf16` says so. Likewise a gradient that only a convolution's
// backward reads (a convolution's output that only a batch norm consumes): `grad_bf16`.
#ifndef NN_TENSOR_H
#define NN_TENSOR_H

#include <stddef.h>

typedef struct Tensor {
    int n, c, h, w;
    float* data;  // (n, c, h, w) in backend memory; if bf16, (n, c, h, w) uint16_t bf16 values there
    float* grad;  // (n, c, h, w) in backend memory, or NULL where no gradient flows
    // Backward bookkeeping: 0 until the first consumer has written `grad` during this backward pass;
    // after that, further consumers accumulate into it. This is what lets a backward kernel write its
    // result directly (no zero-fill of the whole activation-gradient arena each step).
    int grad_written;
    struct Tensor* base;  // a view (flatten) shares data, grad and grad_written with its base
    int bf16;             // 1: data holds bf16 values (nn/bf16.h), not floats
    int grad_bf16;        // 1: grad holds bf16 values (in the first half of its float buffer)
    int edited;           // 1: data overwritten from the host (engine_write) after the op that produced it,
                          // so a backward must read it as it is (a batch norm's ReLU mask: nn/backend.h)
} Tensor;

static inline size_t tensor_numel(const Tensor* t) {
    return (size_t)t->n * (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

// For a backward kernel about to write t's gradient: returns 1 if it must accumulate (someone wrote
// it already in this pass), 0 if it may overwrite, and marks the gradient as written.
static inline int tensor_grad_accumulate(Tensor* t) {
    Tensor* s = t->base ? t->base : t;
    int acc = s->grad_written;
    s->grad_written = 1;
    return acc;
}

#endif
