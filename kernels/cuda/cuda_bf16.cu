// bf16 mixed precision on the GPU (BackendOptions.bf16, train --precision bf16): the operands of
// every convolution (cuda_conv.cu) and linear GEMM (cuda_linear.cu) are rounded into bf16 copies
// here, by nn/bf16.h's own bf16_operand (nearest even, denormals to zero: the operands the CPU
// kernels and the reference multiply), and cuDNN and cuBLAS multiply those with FP32 sums.
// Everything else stays FP32: weights, activations in the arena, batch norm, the loss, SGD.
//
// The one difference from the CPU: cuDNN's legacy API has no bf16-in, FP32-out convolution (its
// PSEUDO_BFLOAT16 configuration writes bf16), so a convolution's output, data gradient and filter
// gradient are rounded to bf16 too before they are widened back to FP32, as PyTorch's autocast
// rounds them. The linear layer's cublasGemmEx writes FP32 directly, as the CPU does.
//
// The copies live in three grow-only scratch buffers (two operands and an output), shared by every
// call: there is one stream, so no two calls ever use them at once. They reach their final size in
// the first training step, so later steps allocate nothing (and a CUDA graph can capture them).
#include "cuda_internal.h"

#include "../../nn/bf16.h"

static uint16_t* scratch[CUDA_BF16_SLOTS];   // (capacity[slot]) bf16 bit patterns
static size_t capacity[CUDA_BF16_SLOTS];     // elements

uint16_t* cuda_bf16_buffer(int slot, size_t n) {
    if (n <= capacity[slot]) return scratch[slot];
    cuda_refuse_in_capture("growing a bf16 scratch buffer (a first convolution or GEMM of a larger shape)");
    cuda_device_free(scratch[slot]); // after the queued work that may still read it
    static const char* const what[CUDA_BF16_SLOTS] = {"a bf16 copy of a convolution or GEMM operand",
                                                      "a bf16 copy of a convolution or GEMM operand",
                                                      "a bf16 convolution output"};
    scratch[slot] = (uint16_t*)cuda_device_alloc(n * sizeof(uint16_t), what[slot]);
    capacity[slot] = n;
    return scratch[slot];
}

// h (n) = bf16_operand(x), element by element.
static __global__ void to_bf16_kernel(uint16_t* h, const float* x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        h[i] = bf16_operand(x[i]);
}

// y (n) = h widened (exact), or y += h with accumulate.
static __global__ void from_bf16_kernel(float* y, const uint16_t* h, size_t n, int accumulate) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = accumulate ? y[i] + bf16_float(h[i]) : bf16_float(h[i]);
}

uint16_t* cuda_bf16_operand(int slot, const float* x, size_t n) {
    uint16_t* h = cuda_bf16_buffer(slot, n);
    if (n == 0) return h;
    to_bf16_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(h, x, n);
    KERNEL_CHECK("to_bf16_kernel");
    return h;
}

void cuda_bf16_widen(float* y, const uint16_t* h, size_t n, int accumulate) {
    if (n == 0) return;
    from_bf16_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(y, h, n, accumulate);
    KERNEL_CHECK("from_bf16_kernel");
}

// For tests (cuda_stream.h): the conversion alone, from and to device memory, so that its rounding
// can be compared bit for bit with nn/bf16.h on the host (ties, denormals, NaN, Inf).
extern "C" void drnet_cuda_bf16_round(uint16_t* h, const float* x, size_t n) {
    if (n == 0) return;
    to_bf16_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(h, x, n);
    KERNEL_CHECK("to_bf16_kernel");
}
