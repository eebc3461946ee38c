// Batch-norm training statistics split over many blocks per channel (cuda_norm_split.cu), used by
// cuda_norm.cu unless DRNET_CUDA_BN_SPLIT=0. Same semantics and argument conventions as there.
#ifndef KERNELS_CUDA_CUDA_NORM_SPLIT_H
#define KERNELS_CUDA_CUDA_NORM_SPLIT_H

// Whether the split kernels take this shape: their element indices are 32-bit.
int bn_split_fits(int n, int c, int hw);
void bn_split_forward_train(float* y, float* mean, float* invstd, float* running_mean, float* running_var,
                            const float* x, const float* gamma, const float* beta, int n, int c, int hw,
                            float momentum, float eps, int relu);
void bn_split_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* y,
                       const float* mean, const float* invstd, const float* gamma, const float* beta, int n, int c,
                       int hw, int relu, int accumulate);

// Whether the fused ReLU stopped the gradient at an element whose input is xo: its output y <= 0
// (y = relu && v < 0 ? 0 : v, so a NaN passes). With the forward's coefficients (beta given: the
// backend function's contract, nn/backend.h) v is recomputed by the forward's own arithmetic, the
// same _rn operations on the same operands, so bit for bit y's answer without reading y; without,
// y (edited since the forward) is read.
struct BnReluMask {
    const float* y; // read when beta was not given
    bool from_x;
    float scale, shift; // the forward's: gamma * invstd, beta - mean * scale
};
static __device__ __forceinline__ BnReluMask bn_relu_mask(const float* y, const float* gamma, const float* beta,
                                                          float mean, float invstd, int ch) {
    BnReluMask m = {y, beta != nullptr, 0.0f, 0.0f};
    if (m.from_x) {
        m.scale = __fmul_rn(gamma[ch], invstd);
        m.shift = __fsub_rn(beta[ch], __fmul_rn(mean, m.scale));
    }
    return m;
}
static __device__ __forceinline__ bool bn_relu_stopped(const BnReluMask& m, float xo, size_t o) {
    if (m.from_x) return __fadd_rn(__fmul_rn(xo, m.scale), m.shift) <= 0.0f;
    return m.y[o] <= 0.0f;
}

#endif
