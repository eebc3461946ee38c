// The CPU GEMM against a naive double-precision product: every micro-kernel the CPU can run
// (AVX-512, AVX2, portable C), one and two threads, all four transpose combinations, odd sizes that
// leave partial tiles on every edge, leading dimensions wider than the matrix, alpha and beta (beta 0
// on a C full of NaN must not read it), sizes that make the driver split N, M or the depth K over
// the threads, and the batched NCHW views the 1x1 convolutions use. Also: two runs with the same
// thread count give bit-identical results.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/cpu_gemm.h"
#include "../kernels/cpu/cpu_kernels.h"
#include "../nn/util.h"
#include "test_util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static void set_threads(int t) {
#ifdef _OPENMP
    omp_set_num_threads(t);
#else
    (void)t;
#endif
}

// Element (i, j) of op(X) for a row-major X with leading dimension ld.
static double at(const float* x, int ld, int trans, int i, int j) {
    return trans ? x[(size_t)j * ld + i] : x[(size_t)i * ld + j];
}

// C must equal alpha * op(A) op(B) + beta * C0 within a bound proportional to the sum of the
// magnitudes that entered each element (the rounding of a float dot product of length K).
static int check_matrix(const char* what, const float* c, const float* c0, const float* a, const float* b,
                        int ta, int tb, int M, int N, int K, int lda, int ldb, int ldc, float alpha, float beta) {
    int bad = 0;
    for (int i = 0; i < M && bad < 5; i++)
        for (int j = 0; j < N && bad < 5; j++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double p = at(a, lda, ta, i, k) * at(b, ldb, tb, k, j);
                ref += p, mag += fabs(p);
            }
            ref *= alpha, mag *= fabs(alpha);
            if (beta != 0.0f) ref += (double)beta * c0[(size_t)i * ldc + j], mag += fabs(beta * c0[(size_t)i * ldc + j]);
            double got = c[(size_t)i * ldc + j];
            double tol = 2e-6 * mag * (1 + sqrt((double)K) / 4) + 1e-30;
            if (!(fabs(got - ref) <= tol)) {
                bad++;
                CHECK(0, "%s: C[%d][%d] = %.9g, expected %.9g (tolerance %.3g)", what, i, j, got, ref, tol);
            }
        }
    return bad == 0;
}

static int case_count;

static void check_case(int M, int N, int K, int ta, int tb, float alpha, float beta, Rng* rng) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float* a = NN_MALLOC(na * sizeof(float));
    float* b = NN_MALLOC(nb * sizeof(float));
    float* c0 = NN_MALLOC(nc * sizeof(float));
    float* c = NN_MALLOC(nc * sizeof(float));
    float* c2 = NN_MALLOC(nc * sizeof(float));
    fill_uniform(a, na, -1.0f, 1.0f, rng);
    fill_uniform(b, nb, -1.0f, 1.0f, rng);
    fill_uniform(c0, nc, -1.0f, 1.0f, rng);
    if (beta == 0.0f)
        for (size_t i = 0; i < nc; i++) c0[i] = NAN; // beta = 0 must not read C
    memcpy(c, c0, nc * sizeof(float));
    memcpy(c2, c0, nc * sizeof(float));
    cpu_sgemm(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
    char what[160];
    snprintf(what, sizeof(what), "%s %d thr, M %d N %d K %d, trans %d%d, alpha %g beta %g", gemm_isa()->name,
             cpu_max_threads(), M, N, K, ta, tb, (double)alpha, (double)beta);
    check_matrix(what, c, c0, a, b, ta, tb, M, N, K, lda, ldb, ldc, alpha, beta);
    // Outside the matrix (the padding of ldc) nothing may be written.
    int untouched = 1;
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++) {
            float x = c[(size_t)i * ldc + j], y = c0[(size_t)i * ldc + j];
            if (!(x == y || (isnan(x) && isnan(y)))) untouched = 0;
        }
    CHECK(untouched, "%s: wrote past column N", what);
    cpu_sgemm(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c2, ldc);
    CHECK(memcmp(c, c2, nc * sizeof(float)) == 0, "%s: two runs differ", what);
    case_count++;
    free(a), free(b), free(c0), free(c), free(c2);
}

// y[n] (co, P) = w (co, ci) x[n] (ci, P) for the whole batch as one GEMM: B and C are NCHW views
// whose columns (n, p) jump from image to image. P = 4 makes every tile straddle several images.
static void check_batched(int n, int ci, int co, int P, Rng* rng) {
    size_t nx = (size_t)n * ci * P, ny = (size_t)n * co * P, nw = (size_t)co * ci;
    float* x = NN_MALLOC(nx * sizeof(float));
    float* w = NN_MALLOC(nw * sizeof(float));
    float* y = NN_MALLOC(ny * sizeof(float));
    fill_uniform(x, nx, -1.0f, 1.0f, rng);
    fill_uniform(w, nw, -1.0f, 1.0f, rng);
    GemmOperand A = gemm_a_matrix(w, ci, 0);
    GemmOperand B = {.p = x, .free = {1, P, (ptrdiff_t)ci * P}, .red = gemm_axis(P)};
    GemmOut C = {.p = y, .row = gemm_axis(P), .col = {1, P, (ptrdiff_t)co * P}};
    cpu_gemm(co, n * P, ci, 1.0f, &A, &B, 0.0f, &C);
    int bad = 0;
    for (int i = 0; i < n; i++)
        for (int o = 0; o < co; o++)
            for (int p = 0; p < P; p++) {
                double ref = 0, mag = 0;
                for (int c = 0; c < ci; c++) {
                    double t = (double)w[(size_t)o * ci + c] * x[((size_t)i * ci + c) * P + p];
                    ref += t, mag += fabs(t);
                }
                double got = y[((size_t)i * co + o) * P + p];
                if (!(fabs(got - ref) <= 4e-6 * mag + 1e-30) && bad++ < 5)
                    CHECK(0, "batched %s n %d ci %d co %d P %d: y[%d][%d][%d] = %g, expected %g", gemm_isa()->name, n,
                          ci, co, P, i, o, p, got, ref);
            }
    // And the filter-gradient form: dw (co, ci) = sum over (n, p) of y (co, (n,p)) x^T ((n,p), ci),
    // both operands read along their contiguous pixel axis (the depth of this GEMM).
    float* dw = NN_MALLOC(nw * sizeof(float));
    GemmOperand Ay = {.p = y, .free = gemm_axis(P), .red = {1, P, (ptrdiff_t)co * P}};
    GemmOperand Bx = {.p = x, .free = gemm_axis(P), .red = {1, P, (ptrdiff_t)ci * P}};
    GemmOut D = gemm_c_matrix(dw, ci);
    cpu_gemm(co, ci, n * P, 1.0f, &Ay, &Bx, 0.0f, &D);
    for (int o = 0; o < co; o++)
        for (int c = 0; c < ci; c++) {
            double ref = 0, mag = 0;
            for (int i = 0; i < n; i++)
                for (int p = 0; p < P; p++) {
                    double t = (double)y[((size_t)i * co + o) * P + p] * x[((size_t)i * ci + c) * P + p];
                    ref += t, mag += fabs(t);
                }
            double got = dw[(size_t)o * ci + c];
            if (!(fabs(got - ref) <= 2e-6 * mag * (1 + sqrt((double)n * P) / 4) + 1e-30) && bad++ < 5)
                CHECK(0, "batched filter-gradient %s n %d ci %d co %d P %d: dw[%d][%d] = %g, expected %g",
                      gemm_isa()->name, n, ci, co, P, o, c, got, ref);
        }
    case_count += 2;
    free(x), free(w), free(y), free(dw);
}

// The AVX-512 shortcuts for B rows that come in threes, each one float after (or before) the
// previous (the taps of a kernel row in cpu_conv_flat.c's planes): the indirect one-row tile and the
// one-row dot product must give the same bits as the general paths, which run when the same rows
// are separate copies. NaN right after the floats the rows may read catches an unmasked over-read.
static void check_shifted_rows(Rng* rng) {
    const GemmIsa* isa = gemm_isa();
    enum { TAPS = 9, SPAN = 1200 + GEMM_INDIRECT_SLACK + 2 };
    const int lens[] = {1, 5, 14, 16, 17, 30, 32, 33, 100, 129, 1089};
    float* plane = NN_MALLOC(3 * (size_t)SPAN * sizeof(float));                 // (3 kernel rows, SPAN)
    float* copies = NN_MALLOC((size_t)TAPS * SPAN * sizeof(float));             // (TAPS, SPAN)
    float a[TAPS * 16], dy[1200], c1[2 * 1200], c2[2 * 1200];
    fill_uniform(a, TAPS * 16, -1.0f, 1.0f, rng);
    fill_uniform(dy, 1200, -1.0f, 1.0f, rng);
    for (size_t z = 0; z < sizeof(lens) / sizeof(lens[0]); z++)
        for (int down = 0; down < 2; down++) {
            int len = lens[z], bad = 0;
            const float *shifted[TAPS], *copied[TAPS];
            for (int r = 0; r < 3; r++) {
                float* row = plane + (size_t)r * SPAN;
                for (int e = 0; e < SPAN; e++) row[e] = NAN;
                fill_uniform(row, (size_t)len + 2, -1.0f, 1.0f, rng);
                for (int t = 0; t < 3; t++) {
                    int tap = 3 * r + t, off = down ? 2 - t : t;
                    shifted[tap] = row + off;
                    float* copy = copies + (size_t)tap * SPAN;
                    for (int e = 0; e < SPAN; e++) copy[e] = NAN;
                    memcpy(copy, row + off, (size_t)len * sizeof(float));
                    copied[tap] = copy;
                }
            }
            // the dot product (its shortcut: rows stepping up only); the indirect tile reads NR floats
            // of every row past n, so its rows are len + slack long: filled, not NaN
            if (!down) {
                for (int j = 0; j < TAPS; j++) c1[j] = c2[j] = 0.5f;
                const float* arow[1] = {dy};
                isa->dot(1, TAPS, len, arow, shifted, c1, TAPS);
                isa->dot(1, TAPS, len, arow, copied, c2, TAPS);
                for (int j = 0; j < TAPS; j++)
                    if (memcmp(&c1[j], &c2[j], sizeof(float)) && bad++ < 3)
                        CHECK(0, "%s dot over shifted rows, len %d: column %d is %.9g, separate rows give %.9g",
                              isa->name, len, j, c1[j], c2[j]);
            }
            for (int r = 0; r < 3; r++) { // readable past n for the indirect tile: values, not NaN
                fill_uniform(plane + (size_t)r * SPAN + len + 2, GEMM_INDIRECT_SLACK, -1.0f, 1.0f, rng);
                for (int t = 0; t < 3; t++) {
                    int tap = 3 * r + t;
                    memcpy(copies + (size_t)tap * SPAN, shifted[tap],
                           ((size_t)len + GEMM_INDIRECT_SLACK) * sizeof(float));
                }
            }
            GemmOperand A = gemm_a_matrix(a, TAPS, 0);
            GemmOut C1 = gemm_c_matrix(c1, len), C2 = gemm_c_matrix(c2, len);
            gemm_indirect(1, len, TAPS, &A, shifted, &C1);
            gemm_indirect(1, len, TAPS, &A, copied, &C2);
            for (int q = 0; q < len; q++)
                if (memcmp(&c1[q], &c2[q], sizeof(float)) && bad++ < 3)
                    CHECK(0, "%s indirect one-row tile, rows stepping %s, n %d: column %d is %.9g, separate rows give %.9g",
                          isa->name, down ? "down" : "up", len, q, c1[q], c2[q]);
            case_count += 2;
        }
    free(plane), free(copies);
}

int main(void) {
    const char* isas[] = {"avx512", "avx2", "generic"};
    // (M, N, K): single elements, every partial-tile edge, and shapes big enough for each thread split.
    const int sizes[][3] = {{1, 1, 1},     {1, 17, 5},   {5, 7, 3},     {13, 33, 17},  {12, 32, 256},
                            {25, 47, 300}, {37, 65, 29}, {130, 70, 9},  {64, 600, 40}, {300, 40, 64},
                            {20, 30, 2100}, {97, 129, 520}};
    const float ab[][2] = {{1.0f, 0.0f}, {-0.7f, 1.0f}, {1.3f, 0.5f}};
    Rng rng = rng_derive(7, 1, 2);
    for (size_t s = 0; s < sizeof(isas) / sizeof(isas[0]); s++) {
        if (!gemm_set_isa(isas[s])) {
            printf("  %s: not supported by this CPU, skipped\n", isas[s]);
            continue;
        }
        for (int threads = 1; threads <= 2; threads++) {
            set_threads(threads);
            int before = test_failures;
            for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++)
                for (int ta = 0; ta < 2; ta++)
                    for (int tb = 0; tb < 2; tb++) {
                        const float* p = ab[(z + ta * 2 + tb) % 3];
                        check_case(sizes[z][0], sizes[z][1], sizes[z][2], ta, tb, p[0], p[1], &rng);
                    }
            check_batched(5, 24, 40, 4, &rng);
            check_batched(3, 33, 20, 49, &rng);
            check_batched(64, 32, 24, 16, &rng);
            check_shifted_rows(&rng);
            printf("  %-8s %d thread%s: %s\n", isas[s], threads, threads > 1 ? "s" : " ",
                   test_failures == before ? "ok" : "FAILED");
        }
    }
    printf("  %d products checked\n", case_count);
    return test_finish("test_gemm");
}
