// Element-wise and pooling kernels, and the SGD step: one thread per output element in a
// grid-stride loop (size_t indices). Backward passes of pooling gather (each input element sums the
// outputs whose window covers it) instead of scattering, so they need no atomics and are
// deterministic. Semantics, ties and NaN handling are those of kernels/cpu/cpu_ops.c.
#include "cuda_internal.h"

#define GRID_STRIDE(i, total)                                                                     \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (total);                   \
         i += (size_t)gridDim.x * blockDim.x)

#define LAUNCH(kernel, total, ...)                                                                \
    do {                                                                                          \
        if ((total) == 0) break;                                                                  \
        kernel<<<cuda_grid((total), CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(__VA_ARGS__);    \
        KERNEL_CHECK(#kernel);                                                                    \
    } while (0)

// ---------------------------------------------------------------------------------------------
// ReLU (NaN maps to 0, as `x > 0 ? x : 0` does on the CPU)

static __global__ void relu_forward_kernel(float* y, const float* x, size_t count) {
    GRID_STRIDE(i, count) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static __global__ void relu_backward_kernel(float* dx, const float* dy, const float* y, size_t count, int accumulate) {
    GRID_STRIDE(i, count) {
        float v = y[i] > 0.0f ? dy[i] : 0.0f;
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

void cuda_relu_forward(float* y, const float* x, size_t count) {
    LAUNCH(relu_forward_kernel, count, y, x, count);
}

void cuda_relu_backward(float* dx, const float* dy, const float* y, size_t count, int accumulate) {
    LAUNCH(relu_backward_kernel, count, dx, dy, y, count, accumulate);
}

// ---------------------------------------------------------------------------------------------
// Residual add (ref_add_forward / ref_add_backward). da and db may be one buffer (y = x + x): one
// thread owns an element and applies da's update, then db's, as the reference does.

static __global__ void add_forward_kernel(float* y, const float* a, const float* b, size_t count) {
    GRID_STRIDE(i, count) y[i] = a[i] + b[i];
}

static __global__ void add_backward_kernel(float* da, float* db, const float* dy, size_t count, int accumulate_a,
                                           int accumulate_b) {
    GRID_STRIDE(i, count) {
        float g = dy[i];
        if (da) da[i] = accumulate_a ? da[i] + g : g;
        if (db) db[i] = accumulate_b ? db[i] + g : g;
    }
}

void cuda_add_forward(float* y, const float* a, const float* b, size_t count) {
    LAUNCH(add_forward_kernel, count, y, a, b, count);
}

void cuda_add_backward(float* da, float* db, const float* dy, size_t count, int accumulate_a, int accumulate_b) {
    if (!da && !db) return;
    LAUNCH(add_backward_kernel, count, da, db, dy, count, accumulate_a, accumulate_b);
}

// ---------------------------------------------------------------------------------------------
// Pooling. PoolShape is passed by value: kernels read it from the parameter space.

// Average over the k x k window, dividing by k * k (padding counts, PyTorch's count_include_pad).
static __global__ void avgpool_forward_kernel(float* y, const float* x, PoolShape p, size_t total) {
    const float inv = 1.0f / (float)(p.k * p.k);
    const size_t out_plane = (size_t)p.h_out * p.w_out;
    GRID_STRIDE(i, total) {
        size_t plane = i / out_plane;
        int r = (int)(i - plane * out_plane), oy = r / p.w_out, ox = r % p.w_out;
        const float* in = x + plane * p.h * p.w;
        float sum = 0.0f;
        for (int ky = 0; ky < p.k; ky++) {
            int iy = oy * p.stride - p.pad + ky;
            if (iy < 0 || iy >= p.h) continue;
            for (int kx = 0; kx < p.k; kx++) {
                int ix = ox * p.stride - p.pad + kx;
                if (ix >= 0 && ix < p.w) sum += in[iy * p.w + ix];
            }
        }
        y[i] = sum * inv;
    }
}

// Input element (iy, ix) lies in the window of output (oy, ox) when iy = oy * stride - pad + ky for
// some tap ky in [0, k): the loops below enumerate those outputs. Calls f(output index) for each.
template <typename F>
static __device__ __forceinline__ void for_each_window(const PoolShape& p, int iy, int ix, F f) {
    for (int ky = 0; ky < p.k; ky++) {
        int ty = iy + p.pad - ky;
        if (ty < 0 || ty % p.stride != 0 || ty / p.stride >= p.h_out) continue;
        for (int kx = 0; kx < p.k; kx++) {
            int tx = ix + p.pad - kx;
            if (tx < 0 || tx % p.stride != 0 || tx / p.stride >= p.w_out) continue;
            f((ty / p.stride) * p.w_out + tx / p.stride);
        }
    }
}

static __global__ void avgpool_backward_kernel(float* dx, const float* dy, PoolShape p, int accumulate, size_t total) {
    const float inv = 1.0f / (float)(p.k * p.k);
    const size_t in_plane = (size_t)p.h * p.w, out_plane = (size_t)p.h_out * p.w_out;
    GRID_STRIDE(i, total) {
        size_t plane = i / in_plane;
        int r = (int)(i - plane * in_plane), iy = r / p.w, ix = r % p.w;
        const float* g = dy + plane * out_plane;
        float sum = 0.0f;
        for_each_window(p, iy, ix, [&](int o) { sum += __fmul_rn(g[o], inv); });
        dx[i] = accumulate ? dx[i] + sum : sum;
    }
}

// The first maximum in scan order wins ties; a NaN wins over numbers (the last NaN, as on the CPU);
// argmax is the winner's index in the (h, w) plane, -1 (with y = -inf) for a window with no input.
static __global__ void maxpool_forward_kernel(float* y, int* argmax, const float* x, PoolShape p, size_t total) {
    const size_t out_plane = (size_t)p.h_out * p.w_out;
    GRID_STRIDE(i, total) {
        size_t plane = i / out_plane;
        int r = (int)(i - plane * out_plane), oy = r / p.w_out, ox = r % p.w_out;
        const float* in = x + plane * p.h * p.w;
        float best = -INFINITY;
        int where = -1;
        for (int ky = 0; ky < p.k; ky++) {
            int iy = oy * p.stride - p.pad + ky;
            if (iy < 0 || iy >= p.h) continue;
            for (int kx = 0; kx < p.k; kx++) {
                int ix = ox * p.stride - p.pad + kx;
                if (ix < 0 || ix >= p.w) continue;
                float v = in[iy * p.w + ix];
                if (where < 0 || v > best || isnan(v)) best = v, where = iy * p.w + ix;
            }
        }
        y[i] = best;
        argmax[i] = where;
    }
}

static __global__ void maxpool_backward_kernel(float* dx, const float* dy, const int* argmax, PoolShape p,
                                               int accumulate, size_t total) {
    const size_t in_plane = (size_t)p.h * p.w, out_plane = (size_t)p.h_out * p.w_out;
    GRID_STRIDE(i, total) {
        size_t plane = i / in_plane;
        int r = (int)(i - plane * in_plane), iy = r / p.w, ix = r % p.w;
        const float* g = dy + plane * out_plane;
        const int* win = argmax + plane * out_plane;
        float sum = 0.0f;
        for_each_window(p, iy, ix, [&](int o) {
            if (win[o] == r) sum += g[o];
        });
        dx[i] = accumulate ? dx[i] + sum : sum;
    }
}

void cuda_avgpool_forward(float* y, const float* x, const PoolShape* p) {
    size_t total = (size_t)p->n * p->c * p->h_out * p->w_out;
    LAUNCH(avgpool_forward_kernel, total, y, x, *p, total);
}

void cuda_avgpool_backward(float* dx, const float* dy, const PoolShape* p, int accumulate) {
    size_t total = (size_t)p->n * p->c * p->h * p->w;
    LAUNCH(avgpool_backward_kernel, total, dx, dy, *p, accumulate, total);
}

void cuda_maxpool_forward(float* y, int* argmax, const float* x, const PoolShape* p) {
    size_t total = (size_t)p->n * p->c * p->h_out * p->w_out;
    LAUNCH(maxpool_forward_kernel, total, y, argmax, x, *p, total);
}

void cuda_maxpool_backward(float* dx, const float* dy, const int* argmax, const PoolShape* p, int accumulate) {
    size_t total = (size_t)p->n * p->c * p->h * p->w;
    LAUNCH(maxpool_backward_kernel, total, dx, dy, argmax, *p, accumulate, total);
}

// ---------------------------------------------------------------------------------------------
// SGD over the flat parameter arena, PyTorch's rule (nn/backend.h), unfused as on the CPU.

// lr_dev: when not NULL the rate is read from device memory when the kernel runs (a captured graph
// replays with each step's rate), else `lr`. Both paths share this body, so they agree bit for bit.
static __global__ void sgd_kernel(float* p, float* buf, const float* g, size_t count, float lr,
                                  const float* lr_dev, float momentum, float weight_decay, int nesterov) {
    const float rate = lr_dev ? *lr_dev : lr;
    GRID_STRIDE(i, count) {
        float d = __fadd_rn(g[i], __fmul_rn(weight_decay, p[i]));
        float b = __fadd_rn(__fmul_rn(momentum, buf[i]), d);
        buf[i] = b;
        float step = nesterov ? __fadd_rn(d, __fmul_rn(momentum, b)) : b;
        p[i] = __fsub_rn(p[i], __fmul_rn(rate, step));
    }
}

void cuda_sgd_step(float* p, float* buf, const float* g, size_t count, float lr, float momentum,
                   float weight_decay, int nesterov) {
    LAUNCH(sgd_kernel, count, p, buf, g, count, lr, (const float*)NULL, momentum, weight_decay, nesterov);
}

void cuda_sgd_step_device_lr(float* p, float* buf, const float* g, size_t count, const float* lr,
                             float momentum, float weight_decay, int nesterov) {
    LAUNCH(sgd_kernel, count, p, buf, g, count, 0.0f, lr, momentum, weight_decay, nesterov);
}
