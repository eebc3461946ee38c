// 1x1 convolutions (stride 1, no padding, one group) as one cuBLAS GEMM over the whole batch.
//
// In NCHW a 1x1 convolution is, image by image, Y_n (c_out, P) = W (c_out, c_in) X_n (c_in, P) with
// P = h * w pixels. At MobileNet's deep layers P is 16 or 4, so cuDNN's NCHW kernels work on 128
// products of 16 or 4 columns each; the first H200 profiles had the 4x4 and 2x2 pointwise layers at
// 7-17 TFLOP/s, two fifths of the whole step in the 13 pointwise convolutions. Moving the batch next
// to the pixels, X' (c_in, N * P), turns the convolution into one GEMM with N * P columns (2048 or 512
// at batch 128), at the price of rewriting X and Y once each with a layout swap:
//
//   forward          x' = swap(x);   y'  = W x';        y  = swap(y')
//   backward-data    dy' = swap(dy); dx' = W^T dy';     dx = swap(dx')  (or dx += swap(dx'))
//   backward-filter  x' = swap(x); dy' = swap(dy);      dW = dy' x'^T   (or dW += ...)
//
// Whether a shape and direction take this path is cuda_conv.cu's choice (measured against cuDNN's
// fastest algorithm, or forced by DRNET_CUDA_POINTWISE). FP32 only: with TF32 on, cuBLAS rounds its
// operands as cuDNN does (the handle's math mode, cuda_backend.cu).
//
// cuBLAS is column-major: the row-major (r, c) matrices here are the column-major (c, r) ones, so
// each product is computed as the column-major product of the transposes (as in cuda_linear.cu).
#include "cuda_internal.h"

static const float ONE = 1.0f, ZERO = 0.0f; // cuBLAS alpha and beta (host pointer mode)

int cuda_pointwise_fits(const ConvShape* s) {
    return s->k == 1 && s->stride == 1 && s->pad == 0 && s->groups == 1 && s->h_out == s->h && s->w_out == s->w;
}

// out (b, a, p) = in (a, b, p), the first two axes swapped (p the contiguous one); out += with accumulate.
// One thread per output element, so that the writes are contiguous.
static __global__ void swap01_kernel(float* out, const float* in, int a_len, int b_len, int p_len, size_t total,
                                     int accumulate) {
    for (size_t o = blockIdx.x * (size_t)blockDim.x + threadIdx.x; o < total; o += (size_t)gridDim.x * blockDim.x) {
        size_t p = o % p_len, t = o / p_len;
        size_t a = t % a_len, b = t / a_len;
        float v = in[(a * b_len + b) * p_len + p];
        out[o] = accumulate ? out[o] + v : v;
    }
}

static void swap01(float* out, const float* in, int a_len, int b_len, int p_len, int accumulate) {
    size_t total = (size_t)a_len * b_len * p_len;
    swap01_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(out, in, a_len, b_len, p_len,
                                                                                  total, accumulate);
    KERNEL_CHECK("swap01_kernel");
}

// Each direction with its two scratch tensors given (sa, sb: the batch-major copies), so that
// cuda_pointwise_time can run it on buffers of its own.
static void forward_with(float* y, const float* x, const float* w, const ConvShape* s, float* sa, float* sb) {
    int n = s->n, ci = s->c_in, co = s->c_out, p = s->h * s->w, m = n * p;
    swap01(sa, x, n, ci, p, 0); // x' (ci, n, p)
    // Column-major: y'^T (m, co) = x'^T (m, ci) w^T (ci, co); w's memory is w^T (ci, co).
    CUBLAS_CHECK(cublasSgemm(g_cuda.cublas, CUBLAS_OP_N, CUBLAS_OP_N, m, co, ci, &ONE, sa, m, w, ci, &ZERO, sb, m));
    LIBRARY_DONE("pointwise forward GEMM");
    swap01(y, sb, co, n, p, 0); // y (n, co, p)
}

static void backward_data_with(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate,
                               float* sa, float* sb) {
    int n = s->n, ci = s->c_in, co = s->c_out, p = s->h * s->w, m = n * p;
    swap01(sa, dy, n, co, p, 0); // dy' (co, n, p)
    // Column-major: dx'^T (m, ci) = dy'^T (m, co) w (co, ci), w being op(T) of its memory w^T (ci, co).
    CUBLAS_CHECK(cublasSgemm(g_cuda.cublas, CUBLAS_OP_N, CUBLAS_OP_T, m, ci, co, &ONE, sa, m, w, ci, &ZERO, sb, m));
    LIBRARY_DONE("pointwise backward-data GEMM");
    swap01(dx, sb, ci, n, p, accumulate); // dx (n, ci, p)
}

static void backward_filter_with(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate,
                                 float* sa, float* sb) {
    int n = s->n, ci = s->c_in, co = s->c_out, p = s->h * s->w, m = n * p;
    swap01(sa, x, n, ci, p, 0);  // x' (ci, n, p)
    swap01(sb, dy, n, co, p, 0); // dy' (co, n, p)
    // Column-major: dw^T (ci, co) = x' (ci, m) dy'^T (m, co), x' being op(T) of its memory x'^T (m, ci).
    CUBLAS_CHECK(cublasSgemm(g_cuda.cublas, CUBLAS_OP_T, CUBLAS_OP_N, ci, co, m, &ONE, sa, m, sb, m,
                             accumulate ? &ONE : &ZERO, dw, ci));
    LIBRARY_DONE("pointwise backward-filter GEMM");
}

// Elements of the two scratch tensors a direction needs.
static void scratch_elems(int dir, const ConvShape* s, size_t* a, size_t* b) {
    size_t p = (size_t)s->n * s->h * s->w;
    size_t in = p * s->c_in, out = p * s->c_out;
    *a = dir == CUDA_CONV_BWD_DATA ? out : in;
    *b = dir == CUDA_CONV_BWD_DATA ? in : out;
}

// Two grow-only scratch tensors shared by every call (one stream: no two calls overlap). They
// reach their size when cuda_conv.cu adopts this path for a shape, in the first training step,
// so that later steps allocate nothing and a CUDA graph can capture the calls.
static float* scratch[2];
static size_t capacity[2]; // elements

static float* grow(int slot, size_t n) {
    if (n <= capacity[slot]) return scratch[slot];
    cuda_refuse_in_capture("growing the pointwise-convolution scratch (a first 1x1 convolution of a larger shape)");
    cuda_device_free(scratch[slot]); // after the queued work that may still read it
    scratch[slot] = (float*)cuda_device_alloc(n * sizeof(float), "the batch-major copies of a 1x1 convolution's tensors");
    capacity[slot] = n;
    return scratch[slot];
}

void cuda_pointwise_reserve(int dir, const ConvShape* s) {
    size_t a, b;
    scratch_elems(dir, s, &a, &b);
    grow(0, a);
    grow(1, b);
}

void cuda_pointwise_forward(float* y, const float* x, const float* w, const ConvShape* s) {
    cuda_pointwise_reserve(CUDA_CONV_FWD, s);
    forward_with(y, x, w, s, scratch[0], scratch[1]);
}

void cuda_pointwise_backward_data(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate) {
    cuda_pointwise_reserve(CUDA_CONV_BWD_DATA, s);
    backward_data_with(dx, dy, w, s, accumulate, scratch[0], scratch[1]);
}

void cuda_pointwise_backward_filter(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate) {
    cuda_pointwise_reserve(CUDA_CONV_BWD_FILTER, s);
    backward_filter_with(dw, dy, x, s, accumulate, scratch[0], scratch[1]);
}

// Milliseconds of one call of direction dir on this shape, the fastest of a few after one warm-up,
// on zeroed buffers of its own (the values do not change a GEMM's time), freed afterwards; the same
// measure as cudnnFind's for the algorithms it is compared with. Outside a graph capture only.
float cuda_pointwise_time(int dir, const ConvShape* s) {
    cuda_refuse_in_capture("timing the pointwise-convolution GEMM path");
    size_t xe = (size_t)s->n * s->c_in * s->h * s->w, ye = (size_t)s->n * s->c_out * s->h * s->w;
    size_t we = (size_t)s->c_out * s->c_in, ae, be;
    scratch_elems(dir, s, &ae, &be);
    const size_t elems[5] = {xe, ye, we, ae, be};
    float* buf[5];
    for (int i = 0; i < 5; i++) {
        buf[i] = (float*)cuda_device_alloc(elems[i] * sizeof(float), "timing a 1x1 convolution as a GEMM");
        CUDA_CHECK(cudaMemsetAsync(buf[i], 0, elems[i] * sizeof(float), g_cuda.stream));
    }
    float *x = buf[0], *y = buf[1], *w = buf[2];
    void *start = cuda_event_create(), *end = cuda_event_create(); // the profiler's events (cuda_backend.cu)
    float best = -1.0f;
    for (int rep = 0; rep < 6; rep++) { // the first is the warm-up
        cuda_event_record(start);
        if (dir == CUDA_CONV_FWD) forward_with(y, x, w, s, buf[3], buf[4]);
        else if (dir == CUDA_CONV_BWD_DATA) backward_data_with(x, y, w, s, 0, buf[3], buf[4]);
        else backward_filter_with(w, y, x, s, 0, buf[3], buf[4]);
        cuda_event_record(end);
        float ms = cuda_event_elapsed_ms(start, end);
        if (rep > 0 && (best < 0.0f || ms < best)) best = ms;
    }
    cuda_event_destroy(start);
    cuda_event_destroy(end);
    for (int i = 0; i < 5; i++) cuda_device_free(buf[i]);
    return best;
}
