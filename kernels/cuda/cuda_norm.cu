// Batch normalization, optionally fused with the ReLU that follows it. The statistics kernels give
// each channel one block, which reduces the channel's n * hw values in double in two passes (the
// mean, then squared deviations from it): at least as accurate as the CPU backend's shifted
// one-pass sums, so both backends agree to float rounding. Element-wise arithmetic uses the _rn
// intrinsics where the CPU expression is a multiply followed by an add, so that nvcc does not fuse
// them into one FMA (the CPU's vectorized kernels may, so this is no longer bit-exact).
// A block per channel under-fills the GPU when channels are few, so by default the training
// statistics use the many-block kernels of cuda_norm_split.cu where the shape fits them; the
// kernels here remain for the rest, for inference, and with DRNET_CUDA_BN_SPLIT=0.
#include "cuda_internal.h"
#include "cuda_norm_split.h"
#include "cuda_reduce.h"

#define BN_BLOCK 512 // threads per channel block: a multiple of 32, as block_sum requires

// Element i of a channel's n * hw values, in (n, c, hw) memory.
static __device__ __forceinline__ size_t channel_offset(size_t i, int c, int hw, int ch) {
    size_t img = i / hw, j = i - img * hw;
    return (img * c + ch) * hw + j;
}

// Saves mean and invstd, moves the running statistics (PyTorch: running_var takes the unbiased
// variance), writes y = x * scale + shift with scale = gamma * invstd, shift = beta - mean * scale.
static __global__ void bn_forward_train_kernel(float* y, float* mean, float* invstd, float* running_mean,
                                               float* running_var, const float* x, const float* gamma,
                                               const float* beta, int n, int c, int hw, float momentum,
                                               float eps, int relu) {
    __shared__ double shared[32];
    const int ch = blockIdx.x;
    const size_t m = (size_t)n * hw;
    const double count = (double)m;
    double sum = 0.0;
    for (size_t i = threadIdx.x; i < m; i += blockDim.x) sum += x[channel_offset(i, c, hw, ch)];
    const double mu = block_sum(sum, shared) / count;
    double sq = 0.0;
    for (size_t i = threadIdx.x; i < m; i += blockDim.x) {
        double d = x[channel_offset(i, c, hw, ch)] - mu;
        sq += d * d;
    }
    const double var = block_sum(sq, shared) / count; // biased: what normalizes
    const float is = (float)(1.0 / sqrt(var + eps));
    if (threadIdx.x == 0) {
        mean[ch] = (float)mu;
        invstd[ch] = is;
        running_mean[ch] = __fadd_rn(__fmul_rn(1.0f - momentum, running_mean[ch]), __fmul_rn(momentum, (float)mu));
        running_var[ch] = __fadd_rn(__fmul_rn(1.0f - momentum, running_var[ch]),
                                    __fmul_rn(momentum, (float)(var * count / (count - 1.0))));
    }
    const float scale = __fmul_rn(gamma[ch], is), shift = __fsub_rn(beta[ch], __fmul_rn((float)mu, scale));
    for (size_t i = threadIdx.x; i < m; i += blockDim.x) {
        size_t o = channel_offset(i, c, hw, ch);
        float v = __fadd_rn(__fmul_rn(x[o], scale), shift);
        y[o] = relu && v < 0.0f ? 0.0f : v;
    }
}

// The running statistics normalize; element-wise over all of x.
static __global__ void bn_forward_eval_kernel(float* y, const float* x, const float* gamma, const float* beta,
                                              const float* running_mean, const float* running_var, int c,
                                              int hw, float eps, int relu, size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        int ch = (int)(i / hw % c);
        float scale = gamma[ch] / sqrtf(running_var[ch] + eps);
        float shift = __fsub_rn(beta[ch], __fmul_rn(running_mean[ch], scale));
        float v = __fadd_rn(__fmul_rn(x[i], scale), shift);
        y[i] = relu && v < 0.0f ? 0.0f : v;
    }
}

// With xhat = (x - mean) * invstd and dz = dy masked by the fused ReLU (y > 0; bn_relu_stopped):
//   dbeta += sum(dz), dgamma += sum(dz * xhat),
//   dx = gamma * invstd * (dz - sum(dz) / M - xhat * sum(dz * xhat) / M), M = n * hw.
static __global__ void bn_backward_kernel(float* dx, float* dgamma, float* dbeta, const float* dy,
                                          const float* x, const float* y, const float* mean,
                                          const float* invstd, const float* gamma, const float* beta, int n,
                                          int c, int hw, int relu, int accumulate) {
    __shared__ double shared[32];
    const int ch = blockIdx.x;
    const size_t m = (size_t)n * hw;
    const double count = (double)m;
    const float mu = mean[ch], is = invstd[ch];
    const BnReluMask mask = bn_relu_mask(y, gamma, beta, mu, is, ch);
    double s_dz = 0.0, s_dz_xhat = 0.0;
    for (size_t i = threadIdx.x; i < m; i += blockDim.x) {
        size_t o = channel_offset(i, c, hw, ch);
        float dz = relu && bn_relu_stopped(mask, x[o], o) ? 0.0f : dy[o];
        s_dz += dz;
        s_dz_xhat += (double)dz * __fmul_rn(__fsub_rn(x[o], mu), is);
    }
    const double sum_dz = block_sum(s_dz, shared);
    const double sum_dz_xhat = block_sum(s_dz_xhat, shared);
    if (threadIdx.x == 0) {
        dbeta[ch] += (float)sum_dz;
        dgamma[ch] += (float)sum_dz_xhat;
    }
    if (!dx) return; // uniform across the block, and after the last block_sum
    const float k = __fmul_rn(gamma[ch], is);
    const float mean_dz = (float)(sum_dz / count), mean_dz_xhat = (float)(sum_dz_xhat / count);
    for (size_t i = threadIdx.x; i < m; i += blockDim.x) {
        size_t o = channel_offset(i, c, hw, ch);
        float dz = relu && bn_relu_stopped(mask, x[o], o) ? 0.0f : dy[o];
        float xhat = __fmul_rn(__fsub_rn(x[o], mu), is);
        float v = __fmul_rn(k, __fsub_rn(__fsub_rn(dz, mean_dz), __fmul_rn(xhat, mean_dz_xhat)));
        dx[o] = accumulate ? __fadd_rn(dx[o], v) : v;
    }
}

void cuda_batchnorm_forward_train(float* y, float* mean, float* invstd, float* running_mean,
                                  float* running_var, const float* x, const float* gamma,
                                  const float* beta, int n, int c, int hw, float momentum, float eps,
                                  int relu, int y_bf16) {
    CUDA_REFUSE_BF16_ACTIVATIONS(y_bf16);
    if (c <= 0 || (size_t)n * hw == 0) return;
    if (g_cuda.bn_split && bn_split_fits(n, c, hw)) {
        bn_split_forward_train(y, mean, invstd, running_mean, running_var, x, gamma, beta, n, c, hw, momentum,
                               eps, relu);
        return;
    }
    bn_forward_train_kernel<<<c, BN_BLOCK, 0, g_cuda.stream>>>(y, mean, invstd, running_mean, running_var, x,
                                                               gamma, beta, n, c, hw, momentum, eps, relu);
    KERNEL_CHECK("bn_forward_train_kernel");
}

void cuda_batchnorm_forward_eval(float* y, const float* x, const float* gamma, const float* beta,
                                 const float* running_mean, const float* running_var, int n, int c,
                                 int hw, float eps, int relu, int y_bf16) {
    CUDA_REFUSE_BF16_ACTIVATIONS(y_bf16);
    size_t total = (size_t)n * c * hw;
    if (!total) return;
    bn_forward_eval_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(
        y, x, gamma, beta, running_mean, running_var, c, hw, eps, relu, total);
    KERNEL_CHECK("bn_forward_eval_kernel");
}

void cuda_batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                             const float* y, const float* mean, const float* invstd,
                             const float* gamma, const float* beta, int n, int c, int hw, int relu, int y_bf16,
                             int dx_bf16, int accumulate) {
    CUDA_REFUSE_BF16_ACTIVATIONS(y_bf16);
    CUDA_REFUSE_BF16_ACTIVATIONS(dx_bf16);
    if (c <= 0 || (size_t)n * hw == 0) return;
    if (g_cuda.bn_split && bn_split_fits(n, c, hw)) {
        bn_split_backward(dx, dgamma, dbeta, dy, x, y, mean, invstd, gamma, beta, n, c, hw, relu, accumulate);
        return;
    }
    bn_backward_kernel<<<c, BN_BLOCK, 0, g_cuda.stream>>>(dx, dgamma, dbeta, dy, x, y, mean, invstd, gamma, beta,
                                                          n, c, hw, relu, accumulate);
    KERNEL_CHECK("bn_backward_kernel");
}
