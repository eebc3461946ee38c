// Softmax cross-entropy and the running training metrics. A batch is at most a few thousand rows
// of ~10 classes, so each forward/metrics call is one block: a thread per row, the rows' losses
// summed in double as the CPU backend does, and the result written by thread 0. Nothing here waits
// for the host: the loss and the metrics stay in device memory until someone downloads them.
#include <cfloat>
#include <cstdio>

#include "cuda_internal.h"
#include "cuda_reduce.h"

#define ROWS_BLOCK 256 // a multiple of 32, as block_sum requires

// probs (n, classes) = softmax(logits); loss[0] = mean over rows of logsumexp(z) - z[label].
// A label outside 0..classes-1 cannot stop the program from the device: the kernel prints it
// (visible at the next synchronization), fills that row of probs with NaN and makes the loss NaN.
static __global__ void ce_forward_kernel(float* loss, float* probs, const float* logits, const int* labels,
                                         int n, int classes) {
    __shared__ double shared[32];
    double total = 0.0, bad = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float* z = logits + (size_t)i * classes;
        float* p = probs + (size_t)i * classes;
        int label = labels[i];
        if (label < 0 || label >= classes) {
            printf("error: cross-entropy: label %d of batch row %d is outside 0..%d\n", label, i, classes - 1);
            for (int j = 0; j < classes; j++) p[j] = NAN;
            bad += 1.0;
            continue;
        }
        float m = -FLT_MAX;
        for (int j = 0; j < classes; j++) m = z[j] > m ? z[j] : m;
        double sum = 0.0;
        for (int j = 0; j < classes; j++) sum += exp((double)z[j] - m);
        double lse = m + log(sum);
        for (int j = 0; j < classes; j++) p[j] = (float)exp((double)z[j] - lse);
        total += lse - z[label];
    }
    total = block_sum(total, shared);
    bad = block_sum(bad, shared);
    if (threadIdx.x == 0) loss[0] = bad > 0.0 ? NAN : (float)(total / n);
}

// dlogits = dloss[0] * (probs - onehot(labels)) / n; dloss is read on the device, so the loss's
// gradient never travels to the host.
static __global__ void ce_backward_kernel(float* dlogits, const float* dloss, const float* probs, const int* labels,
                                          int n, int classes, int accumulate, size_t total) {
    const float scale = dloss[0] / (float)n;
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < total; k += (size_t)gridDim.x * blockDim.x) {
        size_t i = k / classes;
        int j = (int)(k - i * classes);
        float v = scale * (probs[k] - (j == labels[i] ? 1.0f : 0.0f));
        dlogits[k] = accumulate ? dlogits[k] + v : v;
    }
}

// loss_sum += loss * n; correct += rows whose first maximal logit is the label.
static __global__ void metrics_kernel(float* loss_sum, int* correct, const float* loss, const float* logits,
                                      const int* labels, int n, int classes) {
    __shared__ double shared[32];
    double hits = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float* z = logits + (size_t)i * classes;
        int best = 0;
        for (int j = 1; j < classes; j++)
            if (z[j] > z[best]) best = j;
        hits += best == labels[i] ? 1.0 : 0.0;
    }
    hits = block_sum(hits, shared);
    if (threadIdx.x == 0) {
        loss_sum[0] = __fadd_rn(loss_sum[0], __fmul_rn(loss[0], (float)n));
        correct[0] += (int)hits;
    }
}

void cuda_cross_entropy_forward(float* loss, float* probs, const float* logits, const int* labels,
                                int n, int classes) {
    if (n <= 0 || classes <= 0) return;
    ce_forward_kernel<<<1, ROWS_BLOCK, 0, g_cuda.stream>>>(loss, probs, logits, labels, n, classes);
    KERNEL_CHECK("ce_forward_kernel");
}

void cuda_cross_entropy_backward(float* dlogits, const float* dloss, const float* probs,
                                 const int* labels, int n, int classes, int accumulate) {
    size_t total = (size_t)n * classes;
    if (n <= 0 || classes <= 0) return;
    ce_backward_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(
        dlogits, dloss, probs, labels, n, classes, accumulate, total);
    KERNEL_CHECK("ce_backward_kernel");
}

void cuda_metrics_accumulate(float* loss_sum, int* correct, const float* loss, const float* logits,
                             const int* labels, int n, int classes) {
    if (n <= 0 || classes <= 0) return;
    metrics_kernel<<<1, ROWS_BLOCK, 0, g_cuda.stream>>>(loss_sum, correct, loss, logits, labels, n, classes);
    KERNEL_CHECK("metrics_kernel");
}
