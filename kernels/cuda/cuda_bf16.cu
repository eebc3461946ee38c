// bf16 mixed precision on the GPU (BackendOptions.bf16, train --precision bf16): the operands of
// every convolution (cuda_conv.cu) and linear GEMM (cuda_linear.cu) are rounded here by nn/bf16.h's
// own functions (nearest even, denormals to zero: the operands the CPU kernels and the reference
// multiply), and the products are summed in FP32. Everything else stays FP32: weights, activations
// in the arena, batch norm, the loss, SGD.
//
// Two ways to hand the rounded operands over:
//  - bf16-valued FP32 copies (cuda_bf16_rounded), for the convolutions by default: cuDNN's FP32
//    kernels then multiply them exactly (a bf16 value is exact in TF32 and a product of two is
//    exact in FP32) and sum in FP32, which is the CPU's arithmetic, and the result is FP32 as on the
//    CPU. It costs one rounding pass per operand over FP32; the second way ran 3.8-4.7x slower than
//    FP32 on H200s with cuDNN 9 (this one is not yet timed on a GPU);
//  - bf16 copies (cuda_bf16_operand) for cuDNN's bf16 tensors (the convolution directions named in
//    DRNET_CUDA_BF16_DIRS, cuda_backend.cu) and for the linear layer's cublasGemmEx. cuDNN's legacy
//    API has no bf16-in, FP32-out convolution (its PSEUDO_BFLOAT16 configuration writes bf16), so
//    there a convolution's result is rounded to bf16 too before it is widened back to FP32, as
//    PyTorch's autocast rounds it; the linear layer's GEMM writes FP32 directly.
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

// y (n) = bf16_operand_value(x): rounded to bf16, kept in FP32.
static __global__ void round_kernel(float* y, const float* x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = bf16_operand_value(x[i]);
}

const float* cuda_bf16_rounded(int slot, const float* x, size_t n) {
    float* y = (float*)(void*)cuda_bf16_buffer(slot, 2 * n); // n floats in the slot's bf16 elements
    if (n == 0) return y;
    round_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(y, x, n);
    KERNEL_CHECK("round_kernel");
    return y;
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
