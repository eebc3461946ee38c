// Batch-norm training statistics over many blocks per channel (the default; DRNET_CUDA_BN_SPLIT=0
// turns it off): the one-block-per-channel kernels of cuda_norm.cu occupy only c blocks, ~32 of a
// Hopper's 132 SMs in the first layers, where each channel has n * hw = 131072 values at batch 128.
// Here a channel's values are cut into `chunks` contiguous ranges, one block each (grid chunks x c,
// about 8 blocks per SM in all):
//   1. partial kernel: per (channel, chunk) block, double sums of the chunk -> part (c, chunks)
//   2. finalize kernel: per channel, the chunk sums in chunk order (deterministic) -> the statistics,
//      the running statistics / parameter gradients, and per-channel coefficients -> coef (c)
//   3. apply kernel: element-wise y (forward) or dx (backward) from coef, one thread per element.
// Forward sums are shifted by the channel's first value (sum and sum of squares of x - shift in
// double, one pass): the variance keeps full float accuracy without a second pass over x. Element
// indices are 32-bit (bn_split_fits), and the reduction walks (image, position) incrementally, so no
// element pays a 64-bit division; the apply kernels pay two 32-bit ones. Element arithmetic is that
// of cuda_norm.cu (the _rn intrinsics where the CPU multiplies then adds).
#include <stdint.h>

#include "cuda_internal.h"
#include "cuda_norm_split.h"
#include "cuda_reduce.h"

#define SPLIT_BLOCK 256    // threads per reduction block, a multiple of 32 (block_sum)
#define MIN_PER_THREAD 4   // a chunk gives each thread at least this many values
#define MAX_CHUNKS 1024
#define COEF_BLOCK 128     // threads of the finalize kernels (one per channel)

// Scratch shared by every call (one stream: never two at once): grown, never shrunk, only outside a
// graph capture (the first training step sees every shape a captured step will).
static double2* partials; // (partial_cap) (sum, sum) pairs, (c, chunks) in use
static float4* coefs;     // (coef_cap) per-channel coefficients
static size_t partial_cap, coef_cap;

int bn_split_fits(int n, int c, int hw) {
    return c <= 65535 && (uint64_t)n * c * hw < ((uint64_t)1 << 31); // grid.y limit; 32-bit indices
}

static void ensure_scratch(size_t parts, size_t chans) {
    if (parts <= partial_cap && chans <= coef_cap) return;
    cuda_refuse_in_capture("growing the batch-norm scratch (a new batch-norm shape inside a capture)");
    if (parts > partial_cap) {
        cuda_device_free(partials);
        partials = (double2*)cuda_device_alloc(parts * sizeof(double2), "batch-norm partial sums");
        partial_cap = parts;
    }
    if (chans > coef_cap) {
        cuda_device_free(coefs);
        coefs = (float4*)cuda_device_alloc(chans * sizeof(float4), "batch-norm coefficients");
        coef_cap = chans;
    }
}

// Chunks per channel: enough blocks in all for ~8 per SM, none with fewer than MIN_PER_THREAD values a thread.
static int chunks_for(int n, int c, int hw) {
    size_t m = (size_t)n * hw;
    size_t target = (size_t)(g_cuda.prop.multiProcessorCount > 0 ? g_cuda.prop.multiProcessorCount : 1) * 8;
    size_t want = (target + c - 1) / c;
    size_t most = (m + SPLIT_BLOCK * MIN_PER_THREAD - 1) / (SPLIT_BLOCK * MIN_PER_THREAD);
    size_t k = want < most ? want : most;
    if (k < 1) k = 1;
    if (k > MAX_CHUNKS) k = MAX_CHUNKS;
    return (int)k;
}

// The chunk's range [begin, end) of channel ch's m values, and this thread's walk through it:
// value i lives at ((img * c + ch) * hw + j) with (img, j) = divmod(i, hw), advanced by the block
// stride without dividing again.
struct ChunkWalk {
    unsigned i, end, img, j, step_img, step_j, hw;
    __device__ ChunkWalk(unsigned m, int chunks, int hw_) {
        hw = (unsigned)hw_;
        const unsigned per = (m + (unsigned)chunks - 1) / (unsigned)chunks;
        const unsigned begin = blockIdx.x * per;
        end = begin + per < m ? begin + per : m;
        i = begin + threadIdx.x;
        img = i / hw, j = i - img * hw;
        step_img = blockDim.x / hw, step_j = blockDim.x - step_img * hw;
    }
    __device__ bool more() const { return i < end; }
    __device__ size_t offset(int c, int ch) const { return ((size_t)img * c + ch) * hw + j; }
    __device__ void next() {
        i += blockDim.x, img += step_img, j += step_j;
        if (j >= hw) j -= hw, img++;
    }
};

// part[ch][chunk] = (sum, sum of squares) of x - shift over the chunk, shift = channel ch's first value.
static __global__ void bn_stats_partial_kernel(double2* part, const float* x, int c, int hw, unsigned m, int chunks) {
    __shared__ double shared[32];
    const int ch = blockIdx.y;
    const double shift = x[(size_t)ch * hw];
    double sum = 0.0, sq = 0.0;
    for (ChunkWalk w(m, chunks, hw); w.more(); w.next()) {
        double d = (double)x[w.offset(c, ch)] - shift;
        sum += d, sq += d * d;
    }
    sum = block_sum(sum, shared);
    sq = block_sum(sq, shared);
    if (threadIdx.x == 0) part[(size_t)ch * chunks + blockIdx.x] = make_double2(sum, sq);
}

// Per channel: mean, invstd, the running statistics (PyTorch's rule, unbiased running variance) and
// coef = (scale, shift) with y = x * scale + shift, as cuda_norm.cu computes them.
static __global__ void bn_stats_finalize_kernel(float* mean, float* invstd, float* running_mean, float* running_var,
                                                float4* coef, const double2* part, const float* x, const float* gamma,
                                                const float* beta, int c, int hw, unsigned m, int chunks,
                                                float momentum, float eps) {
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double s = 0.0, q = 0.0;
    for (int k = 0; k < chunks; k++) {
        double2 p = part[(size_t)ch * chunks + k];
        s += p.x, q += p.y;
    }
    const double count = (double)m;
    const double shifted_mean = s / count;
    double var = q / count - shifted_mean * shifted_mean; // biased: what normalizes
    var = var > 0.0 ? var : 0.0;
    const double mu = (double)x[(size_t)ch * hw] + shifted_mean;
    const float is = (float)(1.0 / sqrt(var + eps));
    mean[ch] = (float)mu;
    invstd[ch] = is;
    running_mean[ch] = __fadd_rn(__fmul_rn(1.0f - momentum, running_mean[ch]), __fmul_rn(momentum, (float)mu));
    running_var[ch] = __fadd_rn(__fmul_rn(1.0f - momentum, running_var[ch]),
                                __fmul_rn(momentum, (float)(var * count / (count - 1.0))));
    const float scale = __fmul_rn(gamma[ch], is);
    coef[ch] = make_float4(scale, __fsub_rn(beta[ch], __fmul_rn((float)mu, scale)), 0.0f, 0.0f);
}

static __global__ void bn_apply_kernel(float* y, const float* x, const float4* coef, int c, int hw, unsigned total,
                                       int relu) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const float4 k = coef[(i / (unsigned)hw) % (unsigned)c];
        float v = __fadd_rn(__fmul_rn(x[i], k.x), k.y);
        y[i] = relu && v < 0.0f ? 0.0f : v;
    }
}

// part[ch][chunk] = (sum dz, sum dz * xhat), dz = dy masked by the fused ReLU (y > 0; bn_relu_stopped).
static __global__ void bn_grad_partial_kernel(double2* part, const float* dy, const float* x, const float* y,
                                              const float* mean, const float* invstd, const float* gamma,
                                              const float* beta, int c, int hw, unsigned m, int chunks, int relu) {
    __shared__ double shared[32];
    const int ch = blockIdx.y;
    const float mu = mean[ch], is = invstd[ch];
    const BnReluMask mask = bn_relu_mask(y, gamma, beta, mu, is, ch);
    double s_dz = 0.0, s_dz_xhat = 0.0;
    for (ChunkWalk w(m, chunks, hw); w.more(); w.next()) {
        const size_t o = w.offset(c, ch);
        float dz = relu && bn_relu_stopped(mask, x[o], o) ? 0.0f : dy[o];
        s_dz += dz;
        s_dz_xhat += (double)dz * __fmul_rn(__fsub_rn(x[o], mu), is);
    }
    s_dz = block_sum(s_dz, shared);
    s_dz_xhat = block_sum(s_dz_xhat, shared);
    if (threadIdx.x == 0) part[(size_t)ch * chunks + blockIdx.x] = make_double2(s_dz, s_dz_xhat);
}

// dbeta += sum dz, dgamma += sum dz * xhat; coef = (gamma * invstd, mean dz, mean dz * xhat, the forward's
// shift for the ReLU mask: bn_relu_mask's, whose scale is coef.x).
static __global__ void bn_grad_finalize_kernel(float* dgamma, float* dbeta, float4* coef, const double2* part,
                                               const float* gamma, const float* beta, const float* mean,
                                               const float* invstd, int c, unsigned m, int chunks) {
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double s_dz = 0.0, s_dz_xhat = 0.0;
    for (int k = 0; k < chunks; k++) {
        double2 p = part[(size_t)ch * chunks + k];
        s_dz += p.x, s_dz_xhat += p.y;
    }
    dbeta[ch] += (float)s_dz;
    dgamma[ch] += (float)s_dz_xhat;
    const double count = (double)m;
    const BnReluMask mask = bn_relu_mask(nullptr, gamma, beta, mean[ch], invstd[ch], ch);
    coef[ch] = make_float4(__fmul_rn(gamma[ch], invstd[ch]), (float)(s_dz / count), (float)(s_dz_xhat / count),
                           mask.shift);
}

// dx = gamma * invstd * (dz - mean(dz) - xhat * mean(dz * xhat)), written or added.
// mask_from_x: the ReLU mask from x with coef's scale and shift (beta was given), else from y.
static __global__ void bn_grad_apply_kernel(float* dx, const float* dy, const float* x, const float* y,
                                            const float* mean, const float* invstd, const float4* coef, int c,
                                            int hw, unsigned total, int relu, int mask_from_x, int accumulate) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const unsigned ch = (i / (unsigned)hw) % (unsigned)c;
        const float4 k = coef[ch];
        const BnReluMask mask = {y, mask_from_x != 0, k.x, k.w};
        float dz = relu && bn_relu_stopped(mask, x[i], i) ? 0.0f : dy[i];
        float xhat = __fmul_rn(__fsub_rn(x[i], mean[ch]), invstd[ch]);
        float v = __fmul_rn(k.x, __fsub_rn(__fsub_rn(dz, k.y), __fmul_rn(xhat, k.z)));
        dx[i] = accumulate ? __fadd_rn(dx[i], v) : v;
    }
}

void bn_split_forward_train(float* y, float* mean, float* invstd, float* running_mean, float* running_var,
                            const float* x, const float* gamma, const float* beta, int n, int c, int hw,
                            float momentum, float eps, int relu) {
    const int chunks = chunks_for(n, c, hw);
    const unsigned m = (unsigned)n * (unsigned)hw, total = m * (unsigned)c;
    ensure_scratch((size_t)c * chunks, (size_t)c);
    bn_stats_partial_kernel<<<dim3(chunks, c), SPLIT_BLOCK, 0, g_cuda.stream>>>(partials, x, c, hw, m, chunks);
    KERNEL_CHECK("bn_stats_partial_kernel");
    bn_stats_finalize_kernel<<<(c + COEF_BLOCK - 1) / COEF_BLOCK, COEF_BLOCK, 0, g_cuda.stream>>>(
        mean, invstd, running_mean, running_var, coefs, partials, x, gamma, beta, c, hw, m, chunks, momentum, eps);
    KERNEL_CHECK("bn_stats_finalize_kernel");
    bn_apply_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(y, x, coefs, c, hw, total, relu);
    KERNEL_CHECK("bn_apply_kernel");
}

void bn_split_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* y,
                       const float* mean, const float* invstd, const float* gamma, const float* beta, int n, int c,
                       int hw, int relu, int accumulate) {
    const int chunks = chunks_for(n, c, hw);
    const unsigned m = (unsigned)n * (unsigned)hw, total = m * (unsigned)c;
    ensure_scratch((size_t)c * chunks, (size_t)c);
    bn_grad_partial_kernel<<<dim3(chunks, c), SPLIT_BLOCK, 0, g_cuda.stream>>>(partials, dy, x, y, mean, invstd,
                                                                                gamma, beta, c, hw, m, chunks, relu);
    KERNEL_CHECK("bn_grad_partial_kernel");
    bn_grad_finalize_kernel<<<(c + COEF_BLOCK - 1) / COEF_BLOCK, COEF_BLOCK, 0, g_cuda.stream>>>(
        dgamma, dbeta, coefs, partials, gamma, beta, mean, invstd, c, m, chunks);
    KERNEL_CHECK("bn_grad_finalize_kernel");
    if (!dx) return;
    bn_grad_apply_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(
        dx, dy, x, y, mean, invstd, coefs, c, hw, total, relu, beta != nullptr, accumulate);
    KERNEL_CHECK("bn_grad_apply_kernel");
}
