// Computes kernels/ref/ref_norm.c (ref_batchnorm_forward_train, _forward_eval, _backward) faster:
// one pass for the statistics (shifted sums) and one to apply them, vectorized, threads over images.
//
// Batch normalization (+ the fused ReLU) on the CPU: two passes over the tensor each way.
//
//   forward (training): 1. per-channel statistics   2. y = max(x * scale + shift, 0)
//   backward:           1. per-channel sums of dz and dz * (x - mean), dz = dy masked by y > 0
//                       2. dx = A * dz + B * x + C     (per-channel A, B, C from those sums)
//
// The backward does not read y: the ReLU's mask (y > 0) is recomputed from x, which both passes
// read anyway, by the forward's own arithmetic (mask16 below), bit for bit the same mask with one
// stream of memory fewer (y is as big as x in FP32; the big maps' passes are bandwidth-bound). Only
// a y edited after the forward (no beta given: nn/backend.h) is read.
//
// Both passes split the batch over the threads (images [t*n/T, (t+1)*n/T)): every thread streams a
// contiguous block of memory and every channel is shared by all threads, so the layers with few
// channels and big maps parallelize as well as those with many channels and 2x2 maps. Per-thread
// partial sums are combined in thread order (deterministic for a thread count).
//
// The statistics take one pass: sums of (x - K) and (x - K)^2 with K = the channel's first value, a
// shift that keeps the variance free of cancellation (var = E[(x-K)^2] - E[x-K]^2 with x - K small).
// Within a row (one image, one channel) the sums run in 16 float lanes; rows are added in double.
// Kernels are plain C on GCC vector types, cloned for AVX-512, AVX2 and the baseline; the second
// pass's (cpu_norm_apply.h) once more for CPUs with AVX512_BF16, which store a bf16 output by their
// own conversion instead of the integer rounding that made that pass compute-bound.
// An output stored in bf16 (y_bf16: only convolutions read it, nn/ops.h BN_FEEDS_CONV) is rounded as
// it is stored and widened where the backward reads its ReLU mask: the same passes, half the bytes.
// So is dx with dx_bf16 (BN_AFTER_CONV).
// Maps smaller than 32 pixels are processed "flat": over the whole contiguous (c, h*w) block of each
// image with per-element coefficients, since a 4-pixel row is too short to vectorize; the float
// lanes then sum 8 images before going into double (a per-row sum of lanes would cost more than the
// row).
#include <math.h>
#include <string.h>

#include "../../nn/bf16.h"
#include "cpu_gemm.h"
#include "cpu_kernels.h"

// The v16 helpers below are always inlined, so no function ever passes a v16 by value: GCC's note
// that such an ABI would differ between the AVX-512 clone and the others does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

#define LANES 16
#define FLAT_BELOW 32 // h*w below this (4x4 maps and smaller): flat mode
#define FLUSH 8       // flat mode: images summed in float before adding into double

static int team_size(void) { return cpu_in_parallel() ? 1 : cpu_max_threads(); }

static void thread_images(int n, int T, int* lo, int* hi) {
    int t = cpu_thread_num();
    *lo = (int)((long)n * t / T), *hi = (int)((long)n * (t + 1) / T);
}

// --- pass 1 kernels: per-channel sums over images [lo, hi) ------------------------------------------
// Written with GCC vector types: a v16 is 16 floats, one zmm register in the AVX-512 clone, two ymm in
// the AVX2 one, four xmm in the portable one, and the accumulators stay in registers.
typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));
typedef int v16i __attribute__((vector_size(64)));
#define INLINE static inline __attribute__((always_inline)) // (always: a v16 never crosses a call)

typedef uint16_t v16h __attribute__((vector_size(32)));
typedef unsigned v16u __attribute__((vector_size(64)));

INLINE v16 load16(const float* p) {
    v16 v;
    memcpy(&v, p, sizeof(v));
    return v;
}
INLINE void store16(float* p, v16 v) { memcpy(p, &v, sizeof(v)); }

// The output y, stored as floats or (bf16 = 1) as bf16 values: element e of 16 (at y + e), or of one.
// bf16_operand's rounding on 16 lanes in integer arithmetic (nn/bf16.h: nearest even, NaN quiet,
// denormals to zero).
INLINE void put16(void* y, size_t e, v16 v, int bf16) {
    if (!bf16) {
        store16((float*)y + e, v);
        return;
    }
    v16u u = (v16u)v;
    v16u r = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    v16u nan = (v16u)((u & 0x7FFFFFFFu) > 0x7F800000u); // all ones where u is a NaN
    r = (nan & ((u | 0x00400000u) & 0xFFFF0000u)) | (~nan & r);
    v16u tiny = (v16u)((r & 0x7F800000u) == 0);
    r = (tiny & (r & 0x80000000u)) | (~tiny & r);
    v16h h = __builtin_convertvector(r >> 16, v16h);
    memcpy((uint16_t*)y + e, &h, sizeof(h));
}
INLINE void put1(void* y, size_t e, float v, int bf16) {
    if (bf16) ((uint16_t*)y)[e] = bf16_operand(v);
    else ((float*)y)[e] = v;
}
INLINE v16 get16(const void* y, size_t e, int bf16) {
    if (!bf16) return load16((const float*)y + e);
    v16h h;
    memcpy(&h, (const uint16_t*)y + e, sizeof(h));
    return (v16)(__builtin_convertvector(h, v16i) << 16);
}
INLINE float get1(const void* y, size_t e, int bf16) {
    return bf16 ? bf16_float(((const uint16_t*)y)[e]) : ((const float*)y)[e];
}
INLINE v16 splat(float f) { return (v16){0} + f; }
INLINE v16 keep_if(v16 v, v16i m) { return (v16)((v16i)v & m); } // lanes where m is all ones

// The forward's affine step, v = x * a + k (a = gamma * invstd, k = beta - mean * a per channel), in
// one place: the backward recomputes v to know where the ReLU let the gradient through, and the same
// expression in the same clone (GCC contracts it to an FMA where the clone has one, in both) gives
// the same bits.
INLINE v16 affine16(v16 x, v16 a, v16 k) { return x * a + k; }
INLINE float affine1(float x, float a, float k) { return x * a + k; }

// Where the forward's stored y = relu(v) is > 0, from v: where v, as bits, lies in [floor, +inf], so a
// NaN is masked as its y is. floor is the least positive float (1) for an FP32 y, and for a bf16 y the
// least float that rounds to a nonzero bf16 operand, 0x007F8000 = 2^-126 - 2^-134 (bf16_operand
// flushes what rounds below 2^-126 to zero: checked over every positive float when this was written).
// An integer compare, so that no MXCSR setting (denormals as zero) changes the answer, and one per
// lane: bits - floor, unsigned, is at most inf - floor exactly for bits in [floor, inf] (a negative
// v's bits wrap above it, a NaN's lie above it). Two compares and an AND of their results made GCC
// take the vector apart lane by lane (three times slower than the whole backward pass without it).
enum { RELU_FLOOR_FP32 = 1, RELU_FLOOR_BF16 = 0x007F8000, FLOAT_INF_BITS = 0x7F800000 };
INLINE v16i relu_kept16(v16 v, int floor) {
    return (v16u)v - (unsigned)floor <= (unsigned)(FLOAT_INF_BITS - floor);
}
INLINE int relu_kept1(float v, int floor) {
    uint32_t b;
    memcpy(&b, &v, sizeof(b));
    return b - (uint32_t)floor <= (uint32_t)(FLOAT_INF_BITS - floor);
}

// The backward's ReLU mask: recomputed from x with the forward's a and k (per channel, or per element
// in flat mode) and the floor for the y it stored; or, where the engine says y was edited after the
// forward (the backend function's beta NULL), read from y (bf16 values if yb) as stored now.
typedef struct ReluMask {
    const float *a, *k;
    int floor;
    const void* y;
    int yb;
} ReluMask;

// The mask for the 16 elements from `at` whose x is xv (a, k: the coefficients of their lanes).
INLINE v16i mask16(const ReluMask* mk, v16 xv, v16 a, v16 k, size_t at) {
    if (mk->y) return get16(mk->y, at, mk->yb) > (v16){0};
    return relu_kept16(affine16(xv, a, k), mk->floor);
}
INLINE int mask1(const ReluMask* mk, float x, float a, float k, size_t at) {
    if (mk->y) return get1(mk->y, at, mk->yb) > 0.0f;
    return relu_kept1(affine1(x, a, k), mk->floor);
}
// A channel's (or element's) coefficient for the mask: none when the mask is read from y.
INLINE float mask_coef(const float* v, size_t i) { return v ? v[i] : 0.0f; }
// The 16 lanes' sum, as a tree of halves (16 -> 8 -> 4 -> 1): ~8 operations instead of 15 dependent adds.
INLINE double hsum(v16 v) {
    v8 h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    v4 q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
    return (double)((q[0] + q[2]) + (q[1] + q[3]));
}

// Forward: s1 += sum(x - K), s2 += sum((x - K)^2) per channel, K = center.
__attribute__((target_clones("avx512f", "avx2", "default")))
static void stats_rows(double* s1, double* s2, const float* x, const float* center, int lo, int hi, int c, int hw) {
    for (int i = lo; i < hi; i++)
        for (int ch = 0; ch < c; ch++) {
            const float* xr = x + ((size_t)i * c + ch) * hw;
            float k = center[ch];
            v16 a = {0}, b = {0}, kv = splat(k);
            int j = 0;
            for (; j + LANES <= hw; j += LANES) {
                v16 d = load16(xr + j) - kv;
                a += d, b += d * d;
            }
            double ta = hsum(a), tb = hsum(b);
            for (; j < hw; j++) ta += xr[j] - k, tb += (double)(xr[j] - k) * (xr[j] - k);
            s1[ch] += ta, s2[ch] += tb;
        }
}

// Backward: s1 += sum(dz), s2 += sum(dz * (x - mean)) per channel, dz = dy masked by the ReLU (if
// relu: mk).
__attribute__((target_clones("avx512f", "avx2", "default")))
static void grad_rows(double* s1, double* s2, const float* x, const float* dy, const ReluMask* mk,
                      const float* mean, int lo, int hi, int c, int hw, int relu) {
    for (int i = lo; i < hi; i++)
        for (int ch = 0; ch < c; ch++) {
            size_t off = ((size_t)i * c + ch) * hw;
            const float *xr = x + off, *dyr = dy + off;
            float mu = mean[ch];
            float fa = mask_coef(mk->a, ch), fk = mask_coef(mk->k, ch);
            v16 a = {0}, b = {0}, mv = splat(mu), fav = splat(fa), fkv = splat(fk);
            int j = 0;
            for (; j + LANES <= hw; j += LANES) {
                v16 dz = load16(dyr + j), xv = load16(xr + j);
                if (relu) dz = keep_if(dz, mask16(mk, xv, fav, fkv, off + j));
                a += dz, b += dz * (xv - mv);
            }
            double ta = hsum(a), tb = hsum(b);
            for (; j < hw; j++) {
                float dz = relu && !mask1(mk, xr[j], fa, fk, off + j) ? 0.0f : dyr[j];
                ta += dz, tb += (double)dz * (xr[j] - mu);
            }
            s1[ch] += ta, s2[ch] += tb;
        }
}

// Flat mode (maps under FLAT_BELOW pixels): the same sums over whole (c*hw) images, 16 elements
// (16 / hw channels) at a time. For each 16-element block, FLUSH images are summed in registers, then
// added into per-element doubles acc1/acc2 (c*hw each); the caller folds those into channels.
typedef double v8d __attribute__((vector_size(64)));

INLINE void add_to_doubles(double* acc, v16 v) {
    v8d lo, hi;
    memcpy(&lo, acc, sizeof(lo));
    memcpy(&hi, acc + 8, sizeof(hi));
    lo += __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), v8d);
    hi += __builtin_convertvector(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), v8d);
    memcpy(acc, &lo, sizeof(lo));
    memcpy(acc + 8, &hi, sizeof(hi));
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void sums_flat(double* acc1, double* acc2, const float* x, const float* dy, const ReluMask* mk,
                      const float* center_el, int lo, int hi, size_t m, int relu) {
    for (int i0 = lo; i0 < hi; i0 += FLUSH) {
        int i1 = hi < i0 + FLUSH ? hi : i0 + FLUSH;
        size_t e = 0;
        for (; e + LANES <= m; e += LANES) {
            v16 a = {0}, b = {0}, k = load16(center_el + e);
            v16 fav = mk->a ? load16(mk->a + e) : k, fkv = mk->a ? load16(mk->k + e) : k;
            for (int i = i0; i < i1; i++) {
                size_t o = (size_t)i * m + e;
                v16 xv = load16(x + o), v = xv - k, u = v;
                if (dy) {
                    u = load16(dy + o);
                    if (relu) u = keep_if(u, mask16(mk, xv, fav, fkv, o));
                }
                a += u, b += u * v;
            }
            add_to_doubles(acc1 + e, a);
            add_to_doubles(acc2 + e, b);
        }
        for (; e < m; e++)
            for (int i = i0; i < i1; i++) {
                size_t o = (size_t)i * m + e;
                float v = x[o] - center_el[e];
                int pass = !relu || mask1(mk, x[o], mask_coef(mk->a, e), mask_coef(mk->k, e), o);
                float u = !dy ? v : pass ? dy[o] : 0.0f;
                acc1[e] += u, acc2[e] += (double)u * v;
            }
    }
}

// dst (c*hw) = each channel's value repeated over its hw elements: flat mode's per-element form.
static void per_element(float* dst, const float* v, int c, int hw) {
    for (int ch = 0; ch < c; ch++)
        for (int j = 0; j < hw; j++) dst[(size_t)ch * hw + j] = v[ch];
}

// Flat mode's form of the mask: its per-channel coefficients repeated per element into dst (2 * c*hw
// floats), if it has any (none for a forward, an unmasked backward or a mask read from y).
static ReluMask per_element_mask(const ReluMask* mk, float* dst, int c, int hw) {
    ReluMask flat = mk ? *mk : (ReluMask){0};
    if (flat.a) {
        size_t m = (size_t)c * hw;
        per_element(dst, mk->a, c, hw);
        per_element(dst + m, mk->k, c, hw);
        flat.a = dst, flat.k = dst + m;
    }
    return flat;
}

// Per-channel sums over the whole batch: partials per thread, then added in thread order. dy NULL:
// the forward's; else the backward's, masked by mk when relu.
static void channel_sums(double* s1, double* s2, const float* x, const float* dy, const ReluMask* mk,
                         const float* center, int n, int c, int hw, int relu) {
    int T = team_size(), flat = hw < FLAT_BELOW;
    size_t m = (size_t)c * hw;
    double* part[CPU_MAX_THREADS];
    float* center_el = NULL;
    ReluMask flat_mk = {0};
    if (flat) { // the per-element centers (and mask coefficients), shared by the threads
        center_el = cpu_scratch(SLOT_NORM_SHARED, 3 * m);
        per_element(center_el, center, c, hw);
        flat_mk = per_element_mask(relu ? mk : NULL, center_el + m, c, hw);
    }
#pragma omp parallel num_threads(T)
    {
        int lo, hi, t = cpu_thread_num();
        thread_images(n, T, &lo, &hi);
        // (2c doubles) this thread's sums; flat mode first sums per element, (2, c*hw) doubles
        double* p = (double*)cpu_scratch(SLOT_NORM, 4 * (size_t)c + (flat ? 4 * m : 0));
        memset(p, 0, (2 * (size_t)c + (flat ? 2 * m : 0)) * sizeof(double));
        part[t] = p;
        if (flat) {
            double *acc1 = p + 2 * c, *acc2 = acc1 + m;
            sums_flat(acc1, acc2, x, dy, &flat_mk, center_el, lo, hi, m, relu);
            for (int ch = 0; ch < c; ch++)
                for (int j = 0; j < hw; j++) p[ch] += acc1[(size_t)ch * hw + j], p[c + ch] += acc2[(size_t)ch * hw + j];
        }
        else if (dy) grad_rows(p, p + c, x, dy, mk, center, lo, hi, c, hw, relu);
        else stats_rows(p, p + c, x, center, lo, hi, c, hw);
    }
    for (int ch = 0; ch < c; ch++) {
        double a = 0, b = 0;
        for (int t = 0; t < T; t++) a += part[t][ch], b += part[t][c + ch];
        s1[ch] = a, s2[ch] = b;
    }
}

// --- pass 2 kernels ----------------------------------------------------------------------------------

// The pass-2 kernels (cpu_norm_apply.h), first as clones with the integer rounding...
#define NORM_KERNEL __attribute__((target_clones("avx512f", "avx2", "default"))) static
#define NORM_NAME(f) f
#define NORM_PUT16 put16
#include "cpu_norm_apply.h"
#undef NORM_KERNEL
#undef NORM_NAME
#undef NORM_PUT16

// ...then for CPUs with AVX512_BF16, storing bf16 by vcvtneps2bf16 and the one correction it needs
// (cpu_bf16_cvt.h). Only called where the CPU has it.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")
#include "cpu_bf16_cvt.h"
INLINE void put16_cvt(void* y, size_t e, v16 v, int bf16) {
    if (!bf16) {
        store16((float*)y + e, v);
        return;
    }
    __m256i h = (__m256i)_mm512_cvtneps_pbh((__m512)v);
    h = _mm256_mask_mov_epi16(h, bf16_cvt_rounds_up((__m512)v), _mm256_or_si256(h, _mm256_set1_epi16(0x0080)));
    memcpy((uint16_t*)y + e, &h, sizeof(h));
}
#define NORM_KERNEL static
#define NORM_NAME(f) f##_cvt
#define NORM_PUT16 put16_cvt
#include "cpu_norm_apply.h"
#undef NORM_KERNEL
#undef NORM_NAME
#undef NORM_PUT16
#pragma GCC pop_options

// How pass 2 stores a bf16 output: by vcvtneps2bf16 where the CPU has AVX512_BF16, unless a test
// chose (cpu_kernels.h; read on each call, nothing is written from the threads).
static int norm_rounding = -1;
void cpu_norm_set_rounding(int cvt) { norm_rounding = cvt; }
static int store_by_cvt(void) { return norm_rounding >= 0 ? norm_rounding : gemm_cpu_has_avx512bf16(); }

// Runs pass 2 over the batch with per-channel coefficients (b may be NULL in the forward; dy NULL: the
// forward, else the backward, masked by mk when relu). out (y in the forward, dx in the backward)
// stored as bf16 if ob (accumulate: the sum rounded).
static void apply(void* out, int ob, const float* x, const float* dy, const ReluMask* mk, const float* a,
                  const float* b, const float* k, int n, int c, int hw, int relu, int accumulate) {
    int T = team_size(), masked = dy && relu, cvt = ob && store_by_cvt(); // (an FP32 output: the clones)
    size_t m = (size_t)c * hw;
    if (hw < FLAT_BELOW) { // expand the coefficients per element: a, b, k (and the mask's a, k)
        float* ex = cpu_scratch(SLOT_NORM_SHARED, 5 * m);
        per_element(ex, a, c, hw);
        if (b) per_element(ex + m, b, c, hw);
        per_element(ex + 2 * m, k, c, hw);
        ReluMask flat_mk = per_element_mask(masked ? mk : NULL, ex + 3 * m, c, hw);
#pragma omp parallel num_threads(T)
        {
            int lo, hi;
            thread_images(n, T, &lo, &hi);
            (cvt ? apply_flat_cvt : apply_flat)(out, ob, x, dy, &flat_mk, ex, ex + m, ex + 2 * m, lo, hi, m, relu,
                                                accumulate);
        }
        return;
    }
#pragma omp parallel num_threads(T)
    {
        int lo, hi;
        thread_images(n, T, &lo, &hi);
        if (dy) (cvt ? dx_rows_cvt : dx_rows)(out, ob, x, dy, mk, a, b, k, lo, hi, c, hw, relu, accumulate);
        else (cvt ? normalize_rows_cvt : normalize_rows)(out, ob, x, a, k, lo, hi, c, hw, relu);
    }
}

// --- the backend functions -------------------------------------------------------------------------

// The training forward's y = relu(x * a + k): a = gamma * invstd, k = beta - mean * a, from the mean
// and invstd it saves. The backward calls this again for its ReLU mask: not inlined, so that the two
// calls run the same instructions and get the same bits.
__attribute__((noinline)) static void forward_coefficients(float* a, float* k, const float* gamma, const float* beta,
                                                           const float* mean, const float* invstd, int c) {
    for (int ch = 0; ch < c; ch++) {
        a[ch] = gamma[ch] * invstd[ch];
        k[ch] = beta[ch] - mean[ch] * a[ch];
    }
}

void cpu_batchnorm_forward_train(float* y, float* mean, float* invstd, float* running_mean,
                                 float* running_var, const float* x, const float* gamma,
                                 const float* beta, int n, int c, int hw, float momentum, float eps,
                                 int relu, int y_bf16) {
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
    }
    forward_coefficients(scale, shift, gamma, beta, mean, invstd, c);
    apply(y, y_bf16, x, NULL, NULL, scale, NULL, shift, n, c, hw, relu, 0);
}

void cpu_batchnorm_forward_eval(float* y, const float* x, const float* gamma, const float* beta,
                                const float* running_mean, const float* running_var, int n, int c,
                                int hw, float eps, int relu, int y_bf16) {
    float* buf = cpu_scratch(SLOT_NORM_CALLER, 2 * (size_t)c);
    float *scale = buf, *shift = buf + c;
    for (int ch = 0; ch < c; ch++) {
        scale[ch] = gamma[ch] / sqrtf(running_var[ch] + eps);
        shift[ch] = beta[ch] - running_mean[ch] * scale[ch];
    }
    apply(y, y_bf16, x, NULL, NULL, scale, NULL, shift, n, c, hw, relu, 0);
}

// With xhat = (x - mean) * invstd and dz = dy masked by the fused ReLU (y > 0), M = n * hw:
//   dbeta = sum(dz), dgamma = sum(dz * xhat),
//   dx = gamma * invstd * (dz - dbeta / M - xhat * dgamma / M)
//      = A * dz + B * x + C  with  A = gamma * invstd, B = -A * invstd * dgamma / M,
//                                  C = -A * dbeta / M - B * mean.
//
// The ReLU's mask (where the forward's y > 0) comes from x, gamma, beta, mean and invstd, y unread;
// without beta (y edited since the forward: nn/backend.h) from y.
void cpu_batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                            const float* y, const float* mean, const float* invstd, const float* gamma,
                            const float* beta, int n, int c, int hw, int relu, int y_bf16, int dx_bf16,
                            int accumulate) {
    double count = (double)n * hw;
    // (c) A, (c) B, (c) C, (c) unused, then (2c) doubles, then (c) the forward's a, (c) its k
    float* buf = cpu_scratch(SLOT_NORM_CALLER, 10 * (size_t)c);
    float *A = buf, *B = buf + c, *C = buf + 2 * c;
    double* s = (double*)(buf + 4 * c); // (2c): sum dz, sum dz * (x - mean)
    ReluMask mk = {.y = y, .yb = y_bf16};
    if (relu && beta) {
        forward_coefficients(buf + 8 * c, buf + 9 * c, gamma, beta, mean, invstd, c);
        mk = (ReluMask){buf + 8 * c, buf + 9 * c, y_bf16 ? RELU_FLOOR_BF16 : RELU_FLOOR_FP32, NULL, 0};
    }
    channel_sums(s, s + c, x, dy, &mk, mean, n, c, hw, relu);
    for (int ch = 0; ch < c; ch++) {
        double sum_dz = s[ch], sum_dz_xhat = s[c + ch] * invstd[ch];
        dbeta[ch] += (float)sum_dz;
        dgamma[ch] += (float)sum_dz_xhat;
        double a = (double)gamma[ch] * invstd[ch], b = -a * invstd[ch] * sum_dz_xhat / count;
        A[ch] = (float)a, B[ch] = (float)b, C[ch] = (float)(-a * sum_dz / count - b * mean[ch]);
    }
    if (dx) apply(dx, dx_bf16, x, dy, &mk, A, B, C, n, c, hw, relu, accumulate);
}
