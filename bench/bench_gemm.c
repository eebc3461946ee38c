// bench-gemm: the CPU GEMM against the machine's measured peak.
//
//   bench-gemm [--threads T] [--isa avx512|avx2|generic] [--reps R] [--bf16 [--bf16-also KERNEL]]
//
// First it measures the FMA peak of each thread count with a register-only loop (12 independent
// FMA chains, no memory traffic): that is the ceiling any GEMM can reach. Then it times the GEMM on
// square matrices and on the exact products of a MobileNet-CIFAR training step at batch 128 (the 1x1
// convolutions' forward, data gradient and filter gradient, as the CPU backend issues them: whole
// batches as one GEMM through NCHW views), reporting the median and the best GFLOP/s of R timed runs
// and the best as a fraction of the peak (the best run is the uncontended figure on a shared
// machine). A short FMA probe before and after each shape flags rows measured while something else ran.
// --bf16 times the pointwise shapes in FP32 and bf16 side by side; on a CPU with AMX it adds the AMX
// kernel's columns next to the default bf16 kernel's (--bf16-also names another kernel: amx,
// amx-emulated, avx512bf16, generic).
#include <immintrin.h> // its intrinsics carry their own target attributes; callers below match them
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/cpu_gemm.h"
#include "../kernels/cpu/cpu_kernels.h"
#include "../nn/util.h"
#include "../train/args.h"

#ifdef _OPENMP
#include <omp.h>
#endif

// --- peak -------------------------------------------------------------------------------------------

__attribute__((target("avx512f"))) static float fma_chains_512(long iters) {
    __m512 a[12], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_chains_256(long iters) {
    __m256 a[12], b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

// 12 independent vdpbf16ps chains: 64 flops per instruction (16 lanes, 2 multiply-adds each).
__attribute__((target("avx512f,avx512bf16"))) static float dp_chains_bf16(long iters) {
    __m512 a[12];
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x3F803F80), y = (__m512bh)_mm512_set1_epi32(0x33803380); // 1, 2^-24
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_dpbf16_ps(a[i], x, y);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

static volatile float sink;

// GFLOP/s of T threads running the FMA chains (lanes: 16 for AVX-512, 8 for AVX2), best of `tries`
// runs of `iters` iterations.
static double fma_rate(int threads, int lanes, long iters, int tries) {
    double best = 0;
    for (int rep = 0; rep < tries; rep++) {
        double t0 = nn_now();
#pragma omp parallel num_threads(threads)
        sink = lanes == 16 ? fma_chains_512(iters) : fma_chains_256(iters);
        double g = threads * iters * 12.0 * lanes * 2 / (nn_now() - t0) / 1e9;
        if (g > best) best = g;
    }
    return best;
}

static double peak_gflops(int threads, int lanes) { return fma_rate(threads, lanes, 20000000, 3); }

// GFLOP/s of T threads running the vdpbf16ps chains, best of 3; 0 where the CPU has no AVX512_BF16.
static double peak_bf16_gflops(int threads) {
    if (!gemm_cpu_has_avx512bf16()) return 0;
    const long iters = 20000000;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = nn_now();
#pragma omp parallel num_threads(threads)
        sink = dp_chains_bf16(iters);
        double g = threads * iters * 12.0 * 64 / (nn_now() - t0) / 1e9;
        if (g > best) best = g;
    }
    return best;
}
// A ~10 ms probe taken right before and after each shape: the machine is shared, and a row whose
// probes fall short of the section's peak was measured while something else ran.
static double probe_gflops(int threads, int lanes) { return fma_rate(threads, lanes, 2000000, 1); }

// --- GEMM timing -------------------------------------------------------------------------------------

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

typedef struct Shape {
    const char* what;
    int M, N, K;
    // 0: plain row-major A (M, K), B (K, N); 1..3: 1x1 convolution of a batch of n images of P
    // pixels (forward, data gradient, filter gradient) through NCHW views.
    int conv, n, P;
} Shape;

typedef void (*GemmFn)(int M, int N, int K, float alpha, const GemmOperand* A, const GemmOperand* B, float beta,
                       const GemmOut* C); // cpu_gemm or cpu_gemm_bf16

// GFLOP/s of the median and of the best of `reps` runs (*best) of `gemm`.
static double time_shape(const Shape* s, GemmFn gemm, int reps, double* best) {
    int M = s->M, N = s->N, K = s->K, P = s->P;
    size_t sa = (size_t)M * K, sb = (size_t)K * N, sc = (size_t)M * N;
    float* a = NN_ALIGNED_ALLOC(64, sa * sizeof(float));
    float* b = NN_ALIGNED_ALLOC(64, sb * sizeof(float));
    float* c = NN_ALIGNED_ALLOC(64, sc * sizeof(float));
    for (size_t i = 0; i < sa; i++) a[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
    for (size_t i = 0; i < sb; i++) b[i] = (float)((i * 5) % 11) / 11.0f - 0.5f;
    memset(c, 0, sc * sizeof(float));
    GemmOperand A, B;
    GemmOut C;
    switch (s->conv) {
    case 0: // plain
        A = gemm_a_matrix(a, K, 0), B = gemm_b_matrix(b, N, 0), C = gemm_c_matrix(c, N);
        break;
    case 1: // forward: y (co, n*P) = w (co, ci) * x (ci, n*P); M = co, K = ci
        A = gemm_a_matrix(a, K, 0);
        B = (GemmOperand){.p = b, .free = {1, P, (ptrdiff_t)K * P}, .red = gemm_axis(P)};
        C = (GemmOut){.p = c, .row = gemm_axis(P), .col = {1, P, (ptrdiff_t)M * P}};
        break;
    case 2: // data gradient: dx (ci, n*P) = w^T (ci, co) * dy (co, n*P); M = ci, K = co
        A = gemm_a_matrix(a, M, 1);
        B = (GemmOperand){.p = b, .free = {1, P, (ptrdiff_t)K * P}, .red = gemm_axis(P)};
        C = (GemmOut){.p = c, .row = gemm_axis(P), .col = {1, P, (ptrdiff_t)M * P}};
        break;
    default: // filter gradient: dw (co, ci) = dy (co, n*P) * x^T (n*P, ci); M = co, N = ci, K = n*P
        A = (GemmOperand){.p = a, .free = gemm_axis(P), .red = {1, P, (ptrdiff_t)M * P}};
        B = (GemmOperand){.p = b, .free = gemm_axis(P), .red = {1, P, (ptrdiff_t)N * P}};
        C = gemm_c_matrix(c, N);
        break;
    }
    gemm(M, N, K, 1.0f, &A, &B, 0.0f, &C); // warm-up: scratch, caches
    double t[64];
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps; r++) {
        double t0 = nn_now();
        gemm(M, N, K, 1.0f, &A, &B, s->conv == 3 ? 1.0f : 0.0f, &C);
        t[r] = nn_now() - t0;
    }
    qsort(t, reps, sizeof(double), cmp_double);
    free(a), free(b), free(c);
    *best = 2.0 * M * N * K / t[0] / 1e9;
    return 2.0 * M * N * K / t[reps / 2] / 1e9;
}

// Which bf16 kernel runs, and why the portable one when it does.
static void print_bf16_kernel(void) {
    const GemmBf16Isa* b = gemm_bf16_isa();
    const char* why = !strcmp(b->name, "avx512bf16")   ? "vdpbf16ps"
                      : !strcmp(b->name, "amx")        ? "tdpbf16ps on AMX tiles, DRNET_CPU_AMX=1"
                      : !gemm_cpu_has_avx512bf16()     ? "portable C: this CPU has no AVX512_BF16"
                                                       : "portable C: the FP32 ISA chosen is not avx512";
    printf("bf16 micro-kernel: %s (%d x %d tile, %s), blocking mc %d kc %d nc %d\n", b->name, b->mr, b->nr, why, b->mc,
           b->kc, b->nc);
}

// Every shape through cpu_gemm at t threads, against the FMA peak.
static void bench_fp32_section(const Shape* shapes, int nshapes, int t, int reps, int lanes) {
    // The peak is the best FMA rate seen in the section (the initial measurement or any probe):
    // on a shared machine any single reading may have been taken while something else ran.
    double peak = peak_gflops(t, lanes), rate[64], best[64], low[64];
    for (int i = 0; i < nshapes; i++) {
        double before = probe_gflops(t, lanes);
        rate[i] = time_shape(&shapes[i], cpu_gemm, reps, &best[i]);
        double after = probe_gflops(t, lanes);
        low[i] = before < after ? before : after;
        if (before > peak) peak = before;
        if (after > peak) peak = after;
    }
    printf("\n%d thread%s: measured peak %.1f GFLOP/s (%s FMA chains)\n", t, t > 1 ? "s" : "", peak,
           lanes == 16 ? "AVX-512" : "AVX2");
    printf("  %-26s %6s %7s %7s %9s %9s %7s\n", "shape", "M", "N", "K", "median", "best", "% peak");
    int busy = 0;
    for (int i = 0; i < nshapes; i++) {
        const Shape* s = &shapes[i];
        printf("  %-26s %6d %7d %7d %9.1f %9.1f %6.1f%%", s->what, s->M, s->N, s->K, rate[i], best[i],
               100.0 * best[i] / peak);
        if (low[i] < 0.9 * peak) printf("   (busy: the FMA probe around it ran at %.0f%% of peak)", 100.0 * low[i] / peak), busy++;
        printf("\n");
    }
    if (busy) printf("  ** %d row(s) measured while the machine was busy: discard them **\n", busy);
}

// The pointwise shapes through cpu_gemm and cpu_gemm_bf16 at t threads, side by side, each against
// its own peak (FMA chains, vdpbf16ps chains), with the FP32 table's busy flags.
// also: a second bf16 kernel (gemm_bf16_set_isa's name) timed in columns of its own, or NULL.
static void bench_bf16_section(const Shape* shapes, int nshapes, int t, int reps, int lanes, const char* also) {
    double peak = peak_gflops(t, lanes), peak16 = peak_bf16_gflops(t);
    double rate[64], best[64], rate16[64], best16[64], low[64], rate2[64], best2[64];
    for (int i = 0; i < nshapes; i++) {
        if (!shapes[i].conv) continue;
        double before = probe_gflops(t, lanes);
        rate[i] = time_shape(&shapes[i], cpu_gemm, reps, &best[i]);
        rate16[i] = time_shape(&shapes[i], cpu_gemm_bf16, reps, &best16[i]);
        if (also) {
            gemm_bf16_set_isa(also);
            rate2[i] = time_shape(&shapes[i], cpu_gemm_bf16, reps, &best2[i]);
            gemm_bf16_set_isa("auto");
        }
        double after = probe_gflops(t, lanes);
        low[i] = before < after ? before : after;
        if (before > peak) peak = before;
        if (after > peak) peak = after;
    }
    double again = peak_bf16_gflops(t); // the FMA probes refresh only the FP32 peak: take two readings
    if (again > peak16) peak16 = again;
    printf("\n%d thread%s: measured peak FP32 %.1f GFLOP/s (%s FMA chains), ", t, t > 1 ? "s" : "", peak,
           lanes == 16 ? "AVX-512" : "AVX2");
    if (peak16 > 0) printf("bf16 %.1f GFLOP/s (vdpbf16ps chains)\n", peak16);
    else printf("bf16: no vdpbf16ps on this CPU\n");
    printf("  %-26s %6s %7s %7s  %9s %9s %6s  %9s %9s %6s  %9s", "shape", "M", "N", "K", "FP32 med", "FP32 best",
           "%peak", "bf16 med", "bf16 best", "%peak", "bf16/FP32");
    if (also) printf("  %13s %13s %9s", also, "best", "/FP32");
    printf("\n");
    int busy = 0;
    for (int i = 0; i < nshapes; i++) {
        const Shape* s = &shapes[i];
        if (!s->conv) continue;
        printf("  %-26s %6d %7d %7d  %9.1f %9.1f %5.1f%%  %9.1f %9.1f ", s->what, s->M, s->N, s->K, rate[i], best[i],
               100.0 * best[i] / peak, rate16[i], best16[i]);
        if (peak16 > 0) printf("%5.1f%%", 100.0 * best16[i] / peak16);
        else printf("%6s", "-");
        printf("  %8.2fx", best16[i] / best[i]);
        if (also) printf("  %13.1f %13.1f %8.2fx", rate2[i], best2[i], best2[i] / best[i]);
        if (low[i] < 0.9 * peak) printf("   (busy: the FMA probe around it ran at %.0f%% of peak)", 100.0 * low[i] / peak), busy++;
        printf("\n");
    }
    if (busy) printf("  ** %d row(s) measured while the machine was busy: discard them **\n", busy);
}

int main(int argc, char** argv) {
    int threads = 0, reps = 7, bf16 = 0;
    const char *isa = NULL, *also = NULL;
    args_program = "bench-gemm";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = (int)args_long(argv[i], argv[i + 1], 1, 1024), i++;
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) isa = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = (int)args_long(argv[i], argv[i + 1], 1, 1000), i++;
        else if (!strcmp(argv[i], "--bf16")) bf16 = 1;
        else if (!strcmp(argv[i], "--bf16-also") && i + 1 < argc) also = argv[++i];
        else {
            int help = !strcmp(argv[i], "--help");
            fprintf(help ? stdout : stderr,
                    "usage: %s [--threads T] [--isa avx512|avx2|generic] [--reps R] [--bf16 [--bf16-also KERNEL]]\n"
                    "  --bf16-also amx|amx-emulated|avx512bf16|generic: a second bf16 kernel in columns of its own\n"
                    "  (default: amx where the CPU has it)\n",
                    argv[0]);
            return help ? 0 : 2;
        }
    }
    if (isa && !gemm_set_isa(isa)) nn_fatal("--isa %s: not supported by this CPU", isa);
    if (also && !bf16) args_bad("--bf16-also", also, "needs --bf16");
    if (also && !gemm_bf16_set_isa(also))
        args_bad("--bf16-also", also, "expected amx, amx-emulated, avx512bf16 or generic, one this CPU runs");
    gemm_bf16_set_isa("auto");
    if (bf16 && !also && gemm_cpu_has_amx()) also = "amx";
    int max_threads = threads > 0 ? threads : cpu_max_threads();
    int lanes = !strcmp(gemm_isa()->name, "avx512") ? 16 : 8;
    printf("GEMM micro-kernel: %s (%d x %d tile), blocking mc %d kc %d nc %d\n", gemm_isa()->name,
           gemm_isa()->mr, gemm_isa()->nr, gemm_isa()->mc, gemm_isa()->kc, gemm_isa()->nc);
    if (bf16) print_bf16_kernel();
    if (also) printf("and beside it: %s\n", also);

    const int n = 128; // the training batch
    const Shape shapes[] = {
        {"square 256", 256, 256, 256, 0, 0, 0},
        {"square 512", 512, 512, 512, 0, 0, 0},
        {"square 1024", 1024, 1024, 1024, 0, 0, 0},
        {"square 2048", 2048, 2048, 2048, 0, 0, 0},
        {"pw  32->64   32x32 fwd", 64, n * 1024, 32, 1, n, 1024},
        {"pw 128->128  16x16 fwd", 128, n * 256, 128, 1, n, 256},
        {"pw 256->256   8x8  fwd", 256, n * 64, 256, 1, n, 64},
        {"pw 512->512   4x4  fwd", 512, n * 16, 512, 1, n, 16},
        {"pw 1024->1024 2x2  fwd", 1024, n * 4, 1024, 1, n, 4},
        {"pw  32->64   32x32 dgrad", 32, n * 1024, 64, 2, n, 1024},
        {"pw 128->128  16x16 dgrad", 128, n * 256, 128, 2, n, 256},
        {"pw 512->512   4x4  dgrad", 512, n * 16, 512, 2, n, 16},
        {"pw 1024->1024 2x2  dgrad", 1024, n * 4, 1024, 2, n, 4},
        {"pw  32->64   32x32 wgrad", 64, 32, n * 1024, 3, n, 1024},
        {"pw 128->128  16x16 wgrad", 128, 128, n * 256, 3, n, 256},
        {"pw 512->512   4x4  wgrad", 512, 512, n * 16, 3, n, 16},
        {"pw 1024->1024 2x2  wgrad", 1024, 1024, n * 4, 3, n, 4},
    };
    const int nshapes = sizeof(shapes) / sizeof(shapes[0]);
    for (int t = 1; t <= max_threads; t *= 2) {
#ifdef _OPENMP
        omp_set_num_threads(t);
#endif
        if (bf16) bench_bf16_section(shapes, nshapes, t, reps, lanes, also);
        else bench_fp32_section(shapes, nshapes, t, reps, lanes);
        if (t == max_threads) break;
        if (t * 2 > max_threads) t = max_threads / 2;
    }
    return 0;
}
