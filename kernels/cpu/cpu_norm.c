// Batch normalization (+ the fused ReLU) on the CPU: two passes over the tensor each way.
//
//   forward (training): 1. per-channel statistics   2. y = max(x * scale + shift, 0)
//   backward:           1. per-channel sums of dz and dz * (x - mean), dz = dy masked by y > 0
//                       2. dx = A * dz + B * x + C     (per-channel A, B, C from those sums)
//
// Both passes split the batch over the threads (images [t*n/T, (t+1)*n/T)): every thread streams a
// contiguous block of memory and every channel is shared by all threads, so the layers with few
// channels and big maps parallelize as well as those with many channels and 2x2 maps. Per-thread
// partial sums are combined in thread order (deterministic for a thread count).
//
// The statistics take one pass: sums of (x - K) and (x - K)^2 with K = the channel's first value, a
// shift that keeps the variance free of cancellation (var = E[(x-K)^2] - E[x-K]^2 with x - K small).
// Within a row (one image, one channel) the sums run in 16 float lanes; rows are added in double.
// Maps smaller than 32 pixels are processed "flat": image by image, over the whole contiguous
// (c, h*w) block with per-element coefficients, since a 4-pixel row is too short to vectorize; the
// float lanes then hold one image's (c, h*w) values and are added into double every 8 images.
#include <math.h>
#include <string.h>

#include "cpu_kernels.h"

#define LANES 16
#define FLAT_BELOW 32 // h*w below this: flat mode
#define FLUSH 8       // flat mode: images summed in float before adding into double

static int team_size(void) { return cpu_in_parallel() ? 1 : cpu_max_threads(); }

static void thread_images(int n, int T, int* lo, int* hi) {
    int t = cpu_thread_num();
    *lo = (int)((long)n * t / T), *hi = (int)((long)n * (t + 1) / T);
}

// --- pass 1 kernels: per-channel sums over images [lo, hi) -----------------------------------------
// s1[ch] += sum of u, s2[ch] += sum of u * v over the channel's values, where forward: u = v = x - K,
// backward: u = dz, v = x - mean. One function for both: `dy`/`y` NULL means forward.

__attribute__((target_clones("avx512f", "avx2", "default")))
static void sums_rows(double* s1, double* s2, const float* x, const float* dy, const float* y, const float* center,
                      int lo, int hi, int c, int hw, int relu) {
    for (int i = lo; i < hi; i++)
        for (int ch = 0; ch < c; ch++) {
            size_t off = ((size_t)i * c + ch) * hw;
            const float *xr = x + off, *dyr = dy ? dy + off : NULL, *yr = y ? y + off : NULL;
            float k = center[ch], l1[LANES] = {0}, l2[LANES] = {0};
            int j = 0;
            for (; j + LANES <= hw; j += LANES)
                for (int l = 0; l < LANES; l++) {
                    float v = xr[j + l] - k;
                    float u = !dyr ? v : relu && yr[j + l] <= 0.0f ? 0.0f : dyr[j + l];
                    l1[l] += u, l2[l] += u * v;
                }
            for (; j < hw; j++) {
                float v = xr[j] - k;
                float u = !dyr ? v : relu && yr[j] <= 0.0f ? 0.0f : dyr[j];
                l1[0] += u, l2[0] += u * v;
            }
            double a = 0, b = 0;
            for (int l = 0; l < LANES; l++) a += l1[l], b += l2[l];
            s1[ch] += a, s2[ch] += b;
        }
}

// Flat mode: acc1/acc2 (c*hw floats) are scratch; centers expanded per element (c*hw).
__attribute__((target_clones("avx512f", "avx2", "default")))
static void sums_flat(double* s1, double* s2, float* acc1, float* acc2, const float* x, const float* dy,
                      const float* y, const float* center_el, int lo, int hi, int c, int hw, int relu) {
    size_t m = (size_t)c * hw;
    for (int i0 = lo; i0 < hi; i0 += FLUSH) {
        memset(acc1, 0, m * sizeof(float));
        memset(acc2, 0, m * sizeof(float));
        for (int i = i0; i < hi && i < i0 + FLUSH; i++) {
            const float *xr = x + (size_t)i * m, *dyr = dy ? dy + (size_t)i * m : NULL, *yr = y ? y + (size_t)i * m : NULL;
            for (size_t e = 0; e < m; e++) {
                float v = xr[e] - center_el[e];
                float u = !dyr ? v : relu && yr[e] <= 0.0f ? 0.0f : dyr[e];
                acc1[e] += u, acc2[e] += u * v;
            }
        }
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++) s1[ch] += acc1[(size_t)ch * hw + j], s2[ch] += acc2[(size_t)ch * hw + j];
    }
}

// Per-channel sums over the whole batch: partials per thread, then added in thread order.
static void channel_sums(double* s1, double* s2, const float* x, const float* dy, const float* y, const float* center,
                         int n, int c, int hw, int relu) {
    int T = team_size(), flat = hw < FLAT_BELOW;
    size_t m = (size_t)c * hw;
    double* part[CPU_MAX_THREADS];
    float* center_el = NULL;
    if (flat) { // the per-element centers, shared by the threads
        center_el = cpu_scratch(SLOT_NORM_SHARED, m);
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++) center_el[(size_t)ch * hw + j] = center[ch];
    }
#pragma omp parallel num_threads(T)
    {
        int lo, hi, t = cpu_thread_num();
        thread_images(n, T, &lo, &hi);
        // (2c doubles) this thread's sums, then flat mode's (2, c*hw) float lanes
        float* buf = cpu_scratch(SLOT_NORM, 4 * (size_t)c + (flat ? 2 * m : 0));
        double* p = (double*)buf;
        memset(p, 0, 2 * (size_t)c * sizeof(double));
        part[t] = p;
        if (flat) sums_flat(p, p + c, buf + 4 * c, buf + 4 * c + m, x, dy, y, center_el, lo, hi, c, hw, relu);
        else sums_rows(p, p + c, x, dy, y, center, lo, hi, c, hw, relu);
    }
    for (int ch = 0; ch < c; ch++) {
        double a = 0, b = 0;
        for (int t = 0; t < T; t++) a += part[t][ch], b += part[t][c + ch];
        s1[ch] = a, s2[ch] = b;
    }
}

// --- pass 2 kernels: out = a * u + b * x + k per channel, u = dz (backward) or unused ------------------

// forward: y = relu?(x * a + k); backward: dx (+)= a * dz + b * x + k.
__attribute__((target_clones("avx512f", "avx2", "default")))
static void apply_rows(float* out, const float* x, const float* dy, const float* y, const float* a, const float* b,
                       const float* k, int lo, int hi, int c, int hw, int relu, int accumulate) {
    for (int i = lo; i < hi; i++)
        for (int ch = 0; ch < c; ch++) {
            size_t off = ((size_t)i * c + ch) * hw;
            const float* xr = x + off;
            float* o = out + off;
            float ac = a[ch], kc = k[ch];
            if (!dy) {
                for (int j = 0; j < hw; j++) {
                    float v = xr[j] * ac + kc;
                    o[j] = relu && v < 0.0f ? 0.0f : v;
                }
                continue;
            }
            const float *dyr = dy + off, *yr = y + off;
            float bc = b[ch];
            for (int j = 0; j < hw; j++) {
                float dz = relu && yr[j] <= 0.0f ? 0.0f : dyr[j];
                float v = ac * dz + bc * xr[j] + kc;
                o[j] = accumulate ? o[j] + v : v;
            }
        }
}

// The same over flat (c*hw) images with per-element coefficients.
__attribute__((target_clones("avx512f", "avx2", "default")))
static void apply_flat(float* out, const float* x, const float* dy, const float* y, const float* a, const float* b,
                       const float* k, int lo, int hi, size_t m, int relu, int accumulate) {
    for (int i = lo; i < hi; i++) {
        const float* xr = x + (size_t)i * m;
        float* o = out + (size_t)i * m;
        if (!dy) {
            for (size_t e = 0; e < m; e++) {
                float v = xr[e] * a[e] + k[e];
                o[e] = relu && v < 0.0f ? 0.0f : v;
            }
            continue;
        }
        const float *dyr = dy + (size_t)i * m, *yr = y + (size_t)i * m;
        for (size_t e = 0; e < m; e++) {
            float dz = relu && yr[e] <= 0.0f ? 0.0f : dyr[e];
            float v = a[e] * dz + b[e] * xr[e] + k[e];
            o[e] = accumulate ? o[e] + v : v;
        }
    }
}

// Runs pass 2 over the batch with per-channel coefficients (b may be NULL in the forward).
static void apply(float* out, const float* x, const float* dy, const float* y, const float* a, const float* b,
                  const float* k, int n, int c, int hw, int relu, int accumulate) {
    int T = team_size();
    size_t m = (size_t)c * hw;
    if (hw < FLAT_BELOW) { // expand the coefficients per element
        float* ex = cpu_scratch(SLOT_NORM_SHARED, 3 * m);
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++) {
                size_t e = (size_t)ch * hw + j;
                ex[e] = a[ch], ex[m + e] = b ? b[ch] : 0.0f, ex[2 * m + e] = k[ch];
            }
#pragma omp parallel num_threads(T)
        {
            int lo, hi;
            thread_images(n, T, &lo, &hi);
            apply_flat(out, x, dy, y, ex, ex + m, ex + 2 * m, lo, hi, m, relu, accumulate);
        }
        return;
    }
#pragma omp parallel num_threads(T)
    {
        int lo, hi;
        thread_images(n, T, &lo, &hi);
        apply_rows(out, x, dy, y, a, b, k, lo, hi, c, hw, relu, accumulate);
    }
}

// --- the backend functions -------------------------------------------------------------------------

void cpu_batchnorm_forward_train(float* y, float* mean, float* invstd, float* running_mean,
                                 float* running_var, const float* x, const float* gamma,
                                 const float* beta, int n, int c, int hw, float momentum, float eps,
                                 int relu) {
    double count = (double)n * hw;
    // (c) centers K, (c) scale, (c) shift, then (2c) doubles: sums of x-K and (x-K)^2
    float* buf = cpu_scratch(SLOT_NORM_CALLER, 8 * (size_t)c);
    float *center = buf, *scale = buf + c, *shift = buf + 2 * c;
    double* s = (double*)(buf + 4 * c); // (2c), 8-byte aligned: 4c floats in
    for (int ch = 0; ch < c; ch++) center[ch] = x[(size_t)ch * hw];
    channel_sums(s, s + c, x, NULL, NULL, center, n, c, hw, 0);
    for (int ch = 0; ch < c; ch++) {
        double d = s[ch] / count, mu = center[ch] + d;
        double var = s[c + ch] / count - d * d; // biased: what normalizes
        if (var < 0) var = 0;
        float is = (float)(1.0 / sqrt(var + eps));
        mean[ch] = (float)mu;
        invstd[ch] = is;
        running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * (float)mu;
        running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * (float)(var * count / (count - 1.0));
        scale[ch] = gamma[ch] * is;
        shift[ch] = beta[ch] - (float)mu * scale[ch];
    }
    apply(y, x, NULL, NULL, scale, NULL, shift, n, c, hw, relu, 0);
}

void cpu_batchnorm_forward_eval(float* y, const float* x, const float* gamma, const float* beta,
                                const float* running_mean, const float* running_var, int n, int c,
                                int hw, float eps, int relu) {
    float* buf = cpu_scratch(SLOT_NORM_CALLER, 2 * (size_t)c);
    float *scale = buf, *shift = buf + c;
    for (int ch = 0; ch < c; ch++) {
        scale[ch] = gamma[ch] / sqrtf(running_var[ch] + eps);
        shift[ch] = beta[ch] - running_mean[ch] * scale[ch];
    }
    apply(y, x, NULL, NULL, scale, NULL, shift, n, c, hw, relu, 0);
}

// With xhat = (x - mean) * invstd and dz = dy masked by the fused ReLU (y > 0), M = n * hw:
//   dbeta = sum(dz), dgamma = sum(dz * xhat),
//   dx = gamma * invstd * (dz - dbeta / M - xhat * dgamma / M)
//      = A * dz + B * x + C  with  A = gamma * invstd, B = -A * invstd * dgamma / M,
//                                  C = -A * dbeta / M - B * mean.
void cpu_batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                            const float* y, const float* mean, const float* invstd, const float* gamma,
                            int n, int c, int hw, int relu, int accumulate) {
    double count = (double)n * hw;
    float* buf = cpu_scratch(SLOT_NORM_CALLER, 8 * (size_t)c);
    float *A = buf, *B = buf + c, *C = buf + 2 * c;
    double* s = (double*)(buf + 4 * c); // (2c): sum dz, sum dz * (x - mean)
    channel_sums(s, s + c, x, dy, y, mean, n, c, hw, relu);
    for (int ch = 0; ch < c; ch++) {
        double sum_dz = s[ch], sum_dz_xhat = s[c + ch] * invstd[ch];
        dbeta[ch] += (float)sum_dz;
        dgamma[ch] += (float)sum_dz_xhat;
        double a = (double)gamma[ch] * invstd[ch], b = -a * invstd[ch] * sum_dz_xhat / count;
        A[ch] = (float)a, B[ch] = (float)b, C[ch] = (float)(-a * sum_dz / count - b * mean[ch]);
    }
    if (dx) apply(dx, x, dy, y, A, B, C, n, c, hw, relu, accumulate);
}
