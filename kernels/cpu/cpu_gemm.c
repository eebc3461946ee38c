// Computes the inner sums of kernels/ref/ref_conv.c and ref_ops.c (ref_linear_forward/_backward)
// faster: as a GEMM, blocked for the caches and split over the threads (BLIS).
//
// The CPU GEMM driver: cache blocking (BLIS loop order), packing of strided views, the C tile
// store, and the split of one GEMM over the threads.
//
// Per thread, for its part of the problem:
//   for each block of NC columns of B:
//     for each block of KC rows (the depth):      pack B block (kc x nc) into NR-column panels
//       for each block of MC rows of A:           pack A block (mc x kc) into MR-row panels
//         for each NR panel of B, each MR panel of A:  micro-kernel -> MR x NR tile of C
// The B panel (kc x NR) stays in L1 while the A panels stream past it from L2.
#include <stdlib.h>
#include <string.h>

#include "../../nn/util.h"
#include "cpu_gemm.h"
#include "cpu_kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

// --- run-time ISA choice --------------------------------------------------------------------------

int gemm_cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

int gemm_cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static const GemmIsa* chosen;

int gemm_set_isa(const char* name) {
    if (strcmp(name, "avx512") == 0 && gemm_cpu_has_avx512()) chosen = &gemm_isa_avx512;
    else if (strcmp(name, "avx2") == 0 && gemm_cpu_has_avx2()) chosen = &gemm_isa_avx2;
    else if (strcmp(name, "generic") == 0) chosen = &gemm_isa_generic;
    else return 0;
    return 1;
}

const GemmIsa* gemm_isa(void) {
    if (!chosen) {
        const char* env = getenv("DRNET_CPU_ISA");
        if (!env || !gemm_set_isa(env))
            chosen = gemm_cpu_has_avx512() ? &gemm_isa_avx512
                     : gemm_cpu_has_avx2() ? &gemm_isa_avx2
                                           : &gemm_isa_generic;
    }
    return chosen;
}

// --- views ------------------------------------------------------------------------------------------

GemmOperand gemm_a_matrix(const float* a, int lda, int trans) {
    // A (M, K): free index = row; stored transposed (K, M): free index = column.
    return trans ? (GemmOperand){.p = a, .free = gemm_axis(1), .red = gemm_axis(lda)}
                 : (GemmOperand){.p = a, .free = gemm_axis(lda), .red = gemm_axis(1)};
}

GemmOperand gemm_b_matrix(const float* b, int ldb, int trans) {
    // B (K, N): free index = column; stored transposed (N, K): free index = row.
    return trans ? (GemmOperand){.p = b, .free = gemm_axis(ldb), .red = gemm_axis(1)}
                 : (GemmOperand){.p = b, .free = gemm_axis(1), .red = gemm_axis(ldb)};
}

GemmOut gemm_c_matrix(float* c, int ldc) { return (GemmOut){.p = c, .row = gemm_axis(ldc), .col = gemm_axis(1)}; }


// --- packing views ------------------------------------------------------------------------------------
// Two layouts cover every operand the convolutions produce, each read in its memory order:
//   free axis contiguous (activations as B, W^T as A): per reduction row, copy runs of W lanes;
//   reduction axis contiguous (W as A, transposed activations): per lane, a strided column write.

// (no-tree-loop-distribute-patterns: keep the copy loops inline; a libc memcpy call per 32-float
// row costs more than the copy)
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-tree-loop-distribute-patterns")))
static void pack_free_contiguous(float* dst, const GemmOperand* op, int f0, int fn, int r0, int rn, int W,
                                 float scale) {
    for (int q = 0; q * W < fn; q++) {
        float* panel = dst + (size_t)q * W * rn;
        int lanes = fn - q * W < W ? fn - q * W : W;
        for (int w = 0; w < lanes;) { // one run of lanes adjacent in memory
            int f = f0 + q * W + w, fe = gemm_run_end(&op->free, f, f0 + q * W + lanes);
            const float* src = op->p + gemm_offset(&op->free, f);
            int len = fe - f;
            for (int r = 0; r < rn; r++) {
                const float* s = src + gemm_offset(&op->red, r0 + r);
                float* d = panel + (size_t)r * W + w;
                if (scale == 1.0f)
                    for (int t = 0; t < len; t++) d[t] = s[t];
                else
                    for (int t = 0; t < len; t++) d[t] = s[t] * scale;
            }
            w += len;
        }
        if (lanes < W)
            for (int r = 0; r < rn; r++)
                for (int w = lanes; w < W; w++) panel[(size_t)r * W + w] = 0.0f;
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void pack_red_contiguous(float* dst, const GemmOperand* op, int f0, int fn, int r0, int rn, int W,
                                float scale) {
    for (int q = 0; q * W < fn; q++) {
        float* panel = dst + (size_t)q * W * rn;
        int lanes = fn - q * W < W ? fn - q * W : W;
        for (int w = 0; w < lanes; w++) {
            const float* src = op->p + gemm_offset(&op->free, f0 + q * W + w);
            for (int r = r0; r < r0 + rn;) { // one run of reduction indices adjacent in memory
                int re = gemm_run_end(&op->red, r, r0 + rn);
                const float* s = src + gemm_offset(&op->red, r);
                float* d = panel + (size_t)(r - r0) * W + w;
                for (int t = 0; t < re - r; t++) d[(size_t)t * W] = s[t] * scale;
                r = re;
            }
        }
        if (lanes < W)
            for (int r = 0; r < rn; r++) memset(panel + (size_t)r * W + lanes, 0, (size_t)(W - lanes) * sizeof(float));
    }
}

// The same through the ISA's in-register transpose: per run of contiguous reduction indices, the
// panel's lanes are W row pointers.
static void pack_red_transpose(float* dst, const GemmOperand* op, int f0, int fn, int r0, int rn, int W, float scale,
                               GemmTransposeFn transpose) {
    const float* rows[64];
    for (int q = 0; q * W < fn; q++) {
        float* panel = dst + (size_t)q * W * rn;
        int lanes = fn - q * W < W ? fn - q * W : W;
        for (int r = r0; r < r0 + rn;) {
            int re = gemm_run_end(&op->red, r, r0 + rn);
            ptrdiff_t ro = gemm_offset(&op->red, r);
            for (int w = 0; w < lanes; w++) rows[w] = op->p + gemm_offset(&op->free, f0 + q * W + w) + ro;
            transpose(panel + (size_t)(r - r0) * W, W, rows, lanes, re - r, scale);
            r = re;
        }
        if (lanes < W)
            for (int r = 0; r < rn; r++) memset(panel + (size_t)r * W + lanes, 0, (size_t)(W - lanes) * sizeof(float));
    }
}

// An operand of bf16 values (GemmOperand.bf16), widened exactly, element by element: the bf16 driver's
// fallback for layouts its own packers do not read (and for the portable kernel).
static void pack_bf16_view(float* dst, const GemmOperand* op, int f0, int fn, int r0, int rn, int W, float scale) {
    const uint16_t* p = (const uint16_t*)(const void*)op->p;
    for (int q = 0; q * W < fn; q++)
        for (int r = 0; r < rn; r++)
            for (int w = 0; w < W; w++) {
                int f = f0 + q * W + w;
                dst[((size_t)q * rn + r) * W + w] =
                    f < f0 + fn ? bf16_float(p[gemm_offset(&op->free, f) + gemm_offset(&op->red, r0 + r)]) * scale : 0.0f;
            }
}

// One or two lanes (fn <= 2 <= W: one panel), as the one-row GEMMs of depthwise layers at g = 1 pack
// their weight thousands of times per layer: zero the panel in one call, then copy the few values,
// where the transpose's setup and the row-by-row zero fill of the other lanes cost more.
static void pack_few_lanes(float* dst, const GemmOperand* op, int f0, int fn, int r0, int rn, int W, float scale) {
    memset(dst, 0, (size_t)rn * W * sizeof(float));
    for (int w = 0; w < fn; w++) {
        const float* p = op->p + gemm_offset(&op->free, f0 + w);
        for (int r = 0; r < rn; r++) dst[(size_t)r * W + w] = p[gemm_offset(&op->red, r0 + r)] * scale;
    }
}

void gemm_pack_view(float* dst, const GemmOperand* op, int f0, int fn, int r0, int rn, int W, float scale) {
    if (fn <= 2 && fn <= W && !op->bf16) {
        pack_few_lanes(dst, op, f0, fn, r0, rn, W, scale);
        return;
    }
    if (op->bf16) {
        pack_bf16_view(dst, op, f0, fn, r0, rn, W, scale);
        return;
    }
    GemmTransposeFn transpose = gemm_isa()->transpose;
    if (op->free.stride == 1) pack_free_contiguous(dst, op, f0, fn, r0, rn, W, scale);
    else if (op->red.stride == 1 && transpose && W <= 64) pack_red_transpose(dst, op, f0, fn, r0, rn, W, scale, transpose);
    else if (op->red.stride == 1) pack_red_contiguous(dst, op, f0, fn, r0, rn, W, scale);
    else
        for (int q = 0; q * W < fn; q++)
            for (int r = 0; r < rn; r++)
                for (int w = 0; w < W; w++) {
                    int f = f0 + q * W + w;
                    dst[((size_t)q * rn + r) * W + w] =
                        f < f0 + fn ? op->p[gemm_offset(&op->free, f) + gemm_offset(&op->red, r0 + r)] * scale : 0.0f;
                }
}

static inline void pack(float* dst, const GemmOperand* op, int f0, int fn, int r0, int rn, int W, float scale) {
    (op->pack ? op->pack : gemm_pack_view)(dst, op, f0, fn, r0, rn, W, scale);
}

// --- the serial blocked loop ----------------------------------------------------------------------------

// (gemm_c_direct, gemm_copy_out, gemm_depth_block: cpu_gemm.h says what each does; they are not static
// so that a second driver, for other packed formats, can share them.)
int gemm_c_direct(const GemmOut* C, int nr) {
    return C->row.block <= 0 && C->col.stride == 1 && (C->col.block <= 0 || C->col.block % (nr / 2) == 0);
}

void gemm_copy_out(const GemmOut* C, int i, int j, int m, int n, const float* S, int lds, int accumulate) {
    for (int t = 0; t < n;) {
        int te = gemm_run_end(&C->col, j + t, j + n) - j; // columns t..te-1 are adjacent in memory
        ptrdiff_t cs = C->col.stride, col = gemm_offset(&C->col, j + t);
        for (int r = 0; r < m; r++) {
            float* c = C->p + gemm_offset(&C->row, i + r) + col;
            const float* src = S + (size_t)r * lds + t;
            if (accumulate)
                for (int u = 0; u < te - t; u++) c[u * cs] += src[u];
            else
                for (int u = 0; u < te - t; u++) c[u * cs] = src[u];
        }
        t = te;
    }
}

int gemm_depth_block(int K, int kc_max) {
    int blocks = (K + kc_max - 1) / kc_max;
    return (K + blocks - 1) / blocks;
}

// C[i0:i1, j0:j1] (+)= alpha * A[i0:i1, k0:k1] * B[k0:k1, j0:j1] on the calling thread. j0 is a
// multiple of NR (the thread split keeps it so), which keeps tiles aligned inside images.
static void gemm_serial(int i0, int i1, int j0, int j1, int k0, int k1, float alpha, const GemmOperand* A,
                        const GemmOperand* B, int accumulate, const GemmOut* C) {
    const GemmIsa* isa = gemm_isa();
    int MR = isa->mr, NR = isa->nr, KC = gemm_depth_block(k1 - k0, isa->kc);
    int MC = isa->mc, NC = isa->nc;
    if (j1 - j0 < NC) NC = j1 - j0;
    int NCP = (NC + NR - 1) / NR * NR;
    float* bbuf = cpu_scratch(SLOT_GEMM_B, (size_t)KC * NCP);      // (nc/NR panels, kc, NR)
    float* abuf = cpu_scratch(SLOT_GEMM_A, (size_t)KC * (MC + MR)); // (mc/MR panels, kc, MR)
    // A C that the kernel cannot store into (4 pixels per image, transposed) is staged per column
    // block in a contiguous (i1 - i0, NCP) buffer, then copied out once: with the depth of those
    // layers (512 and more) the copy is a fraction of a percent of the arithmetic.
    int direct = gemm_c_direct(C, isa->nr);
    float* stage = direct ? NULL : cpu_scratch(SLOT_GEMM_STAGE, (size_t)(i1 - i0) * NCP);
    for (int jc = j0; jc < j1; jc += NC) {
        int nc = j1 - jc < NC ? j1 - jc : NC;
        for (int pc = k0; pc < k1; pc += KC) {
            int kc = k1 - pc < KC ? k1 - pc : KC;
            int acc = pc > k0 || (direct && accumulate);
            pack(bbuf, B, jc, nc, pc, kc, NR, 1.0f);
            for (int ic = i0; ic < i1; ic += MC) {
                int mc = i1 - ic < MC ? i1 - ic : MC;
                pack(abuf, A, ic, mc, pc, kc, MR, alpha);
                for (int jr = 0; jr < nc; jr += NR) {
                    int n = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int m = mc - ir < MR ? mc - ir : MR;
                        const float *ap = abuf + (size_t)ir * kc, *bp = bbuf + (size_t)jr * kc;
                        if (direct) {
                            int i = ic + ir, j = jc + jr;
                            float* c = C->p + gemm_offset(&C->row, i) + gemm_offset(&C->col, j);
                            ptrdiff_t hi = n > NR / 2 ? gemm_offset(&C->col, j + NR / 2) - gemm_offset(&C->col, j) : NR / 2;
                            isa->kernel(kc, ap, bp, c, C->row.stride, hi, m, n, acc);
                        } else {
                            float* c = stage + (size_t)(ic + ir - i0) * NCP + jr;
                            isa->kernel(kc, ap, bp, c, NCP, NR / 2, m, n, acc);
                        }
                    }
                }
            }
        }
        if (!direct) gemm_copy_out(C, i0, jc, i1 - i0, nc, stage, NCP, accumulate);
    }
}

void gemm_indirect(int M, int N, int K, const GemmOperand* A, const float* const* b, const GemmOut* C) {
    const GemmIsa* isa = gemm_isa();
    int MR = isa->mr, NR = isa->nr, KC = gemm_depth_block(K, 512);
    NN_ASSERT(C->row.block <= 0 && C->col.stride == 1 && C->col.block <= 0, "gemm_indirect: C must be a plain matrix");
    float* abuf = cpu_scratch(SLOT_GEMM_A, (size_t)KC * ((M + MR - 1) / MR * MR)); // (M/MR panels, kc, MR)
    for (int pc = 0; pc < K; pc += KC) {
        int kc = K - pc < KC ? K - pc : KC;
        pack(abuf, A, 0, M, pc, kc, MR, 1.0f);
        int NW = M <= 2 && isa->indirect_wide[M] ? isa->indirect_wide[M] : NR; // columns per call
        for (int j = 0; j < N; j += NW) { // a column tile's B rows stay in L1 across the A panels
            int n = N - j < NW ? N - j : NW;
            for (int i = 0; i < M; i += MR) {
                int m = M - i < MR ? M - i : MR;
                float* c = C->p + gemm_offset(&C->row, i) + j;
                isa->indirect(kc, abuf + (size_t)i * kc, b + pc, j, c, C->row.stride, NR / 2, m, n, pc > 0);
            }
        }
    }
}

// --- beta and the thread split --------------------------------------------------------------------------

static void scale_c(const GemmOut* C, int M, int N, float beta) {
#pragma omp parallel for schedule(static) if (!cpu_in_parallel())
    for (int i = 0; i < M; i++) {
        float* row = C->p + gemm_offset(&C->row, i);
        for (int j = 0; j < N; j++) {
            float* c = row + gemm_offset(&C->col, j);
            *c = beta == 0.0f ? 0.0f : *c * beta;
        }
    }
}

// Parts of [0, n) for `parts` threads in multiples of `unit`: part t is [t*chunk, (t+1)*chunk).
static int chunk_of(int n, int parts, int unit) {
    int c = (n + parts - 1) / parts;
    return (c + unit - 1) / unit * unit;
}

typedef enum { SPLIT_NONE, SPLIT_N, SPLIT_M, SPLIT_K } Split;

// Which dimension to split over T threads: the one that packs the fewest elements per thread.
// Splitting N makes every thread pack all of A, splitting M all of B; splitting K packs nothing twice
// but adds a reduction of T partial C's. Small problems run on one thread.
static Split choose_split(int M, int N, int K, int T, int mr, int nr, int kc) {
    if (T < 2 || (double)M * N * K < 64.0 * 64 * 64) return SPLIT_NONE;
    double best = 1e300;
    Split s = SPLIT_NONE;
    if (N >= 2 * nr) {
        double cost = (double)M * K + (double)K * N / T;
        if (cost < best) best = cost, s = SPLIT_N;
    }
    if (M >= 2 * mr) {
        double cost = (double)K * N + (double)M * K / T;
        if (cost < best) best = cost, s = SPLIT_M;
    }
    if (K >= 4 * kc) {
        double cost = ((double)M * K + (double)K * N) / T + 2.0 * M * N;
        if (cost < best) best = cost, s = SPLIT_K;
    }
    return s;
}

// (gemm_run: the FP32 entry point below is one serial loop through it; cpu_gemm.h.)
void gemm_run(int M, int N, int K, float alpha, const GemmOperand* A, const GemmOperand* B, float beta,
              const GemmOut* C, GemmSerialFn serial, int mr, int nr, int kc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        if (beta != 1.0f) scale_c(C, M, N, beta);
        return;
    }
    if (beta != 0.0f && beta != 1.0f) { // the loop itself only overwrites (beta 0) or adds (beta 1)
        scale_c(C, M, N, beta);
        beta = 1.0f;
    }
    int accumulate = beta == 1.0f;
    int T = cpu_in_parallel() ? 1 : cpu_max_threads();
    Split split = choose_split(M, N, K, T, mr, nr, kc);
    if (split == SPLIT_NONE) {
        serial(0, M, 0, N, 0, K, alpha, A, B, accumulate, C);
        return;
    }
    if (split == SPLIT_N || split == SPLIT_M) {
        int chunk = split == SPLIT_N ? chunk_of(N, T, nr) : chunk_of(M, T, mr);
#pragma omp parallel num_threads(T)
        {
            int t = cpu_thread_num();
            int lo = t * chunk, hi = split == SPLIT_N ? N : M;
            if (lo + chunk < hi) hi = lo + chunk;
            if (lo < hi) {
                if (split == SPLIT_N) serial(0, M, lo, hi, 0, K, alpha, A, B, accumulate, C);
                else serial(lo, hi, 0, N, 0, K, alpha, A, B, accumulate, C);
            }
        }
        return;
    }
    // SPLIT_K: thread t computes its depth range into its own (M, N) buffer; then every element of C
    // adds the partials in thread order, so the sum does not depend on timing.
    float* partial[CPU_MAX_THREADS] = {0};
    int chunk = chunk_of(K, T, 1);
#pragma omp parallel num_threads(T)
    {
        int t = cpu_thread_num();
        int lo = t * chunk, hi = lo + chunk < K ? lo + chunk : K;
        float* part = cpu_scratch(SLOT_GEMM_PARTIAL, (size_t)M * N); // (M, N)
        partial[t] = part;
        GemmOut P = gemm_c_matrix(part, N);
        if (lo < hi) serial(0, M, 0, N, lo, hi, alpha, A, B, 0, &P);
        else memset(part, 0, (size_t)M * N * sizeof(float));
#pragma omp barrier
#pragma omp for schedule(static)
        for (int i = 0; i < M; i++) {
            float* row = C->p + gemm_offset(&C->row, i);
            for (int j = 0; j < N; j++) {
                float* c = row + gemm_offset(&C->col, j);
                float sum = accumulate ? *c : 0.0f;
                for (int u = 0; u < T; u++) sum += partial[u][(size_t)i * N + j];
                *c = sum;
            }
        }
    }
}

void cpu_gemm(int M, int N, int K, float alpha, const GemmOperand* A, const GemmOperand* B, float beta,
              const GemmOut* C) {
    const GemmIsa* isa = gemm_isa();
    NN_ASSERT(!A->bf16 && !B->bf16, "cpu_gemm: an operand stored in bf16 (only cpu_gemm_bf16 reads those)");
    gemm_run(M, N, K, alpha, A, B, beta, C, gemm_serial, isa->mr, isa->nr, isa->kc);
}

// --- the row-major interface --------------------------------------------------------------------------

void cpu_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float* A, int lda,
               const float* B, int ldb, float beta, float* C, int ldc) {
    GemmOperand a = gemm_a_matrix(A, lda, transA), b = gemm_b_matrix(B, ldb, transB);
    GemmOut c = gemm_c_matrix(C, ldc);
    cpu_gemm(M, N, K, alpha, &a, &b, beta, &c);
}
