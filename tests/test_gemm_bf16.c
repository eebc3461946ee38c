// The bf16 GEMM (cpu_gemm_bf16) and its rounding:
//   - gemm_bf16_round on hand-picked bit patterns (ties to even, carries into the next exponent and
//     into Inf, denormals, NaN, Inf) and on a million sampled floats against an oracle that picks the
//     nearer of the two neighbouring bf16 in double precision; the pair packing's layout and its DAZ;
//   - the GEMM, on every bf16 kernel the CPU can run, 1 and 2 threads, all four transpose
//     combinations, odd K, M and N off the tile, alpha and beta (beta 0 on a C full of NaN), depth
//     and thread splits, and the batched NCHW views of the 1x1 convolutions, against
//       (1) a plain loop over the same bf16 operands summed in FP32, k in order (the reference:
//           it rounds exactly where the kernels round, so only the summation order differs),
//       (2) the FP32 GEMM on the unrounded operands (bf16's rounding error, bounded),
//       (3) the portable kernel, bit for bit, when the vdpbf16ps kernel runs (1 thread, plain C),
//     with NaN and Inf propagated as the reference propagates them. The bounds are derived below.
#include <float.h>
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


// --- the rounding ----------------------------------------------------------------------------------

// Hand-picked FP32 bit patterns and the bf16 each must round to.
static void check_round_cases(void) {
    static const struct {
        uint32_t in;
        uint16_t out;
        const char* why;
    } cases[] = {
        {0x3F800000, 0x3F80, "1: exact"},
        {0x3F807FFF, 0x3F80, "just below the midpoint: down"},
        {0x3F808000, 0x3F80, "midpoint, even below: down"},
        {0x3F808001, 0x3F81, "just above the midpoint: up"},
        {0x3F818000, 0x3F82, "midpoint, odd below: up to even"},
        {0xBF808000, 0xBF80, "negative midpoint, even below: down in magnitude"},
        {0xBF818000, 0xBF82, "negative midpoint, odd below: up in magnitude"},
        {0x3FFF8000, 0x4000, "midpoint below 2: carries into the next exponent"},
        {0x3FFFFFFF, 0x4000, "just below 2: carries into the next exponent"},
        {0x7F7F7FFF, 0x7F7F, "just below the largest midpoint: largest finite bf16"},
        {0x7F7F8000, 0x7F80, "largest midpoint: overflows to Inf"},
        {0x7F7FFFFF, 0x7F80, "FLT_MAX: overflows to Inf"},
        {0xFF7FFFFF, 0xFF80, "-FLT_MAX: overflows to -Inf"},
        {0x7F800000, 0x7F80, "Inf"},
        {0xFF800000, 0xFF80, "-Inf"},
        {0x7FC00000, 0x7FC0, "quiet NaN"},
        {0x7FA00000, 0x7FE0, "signalling NaN: quieted, payload kept"},
        {0x7F800001, 0x7FC0, "NaN with payload only in the low bits: stays NaN, not Inf"},
        {0xFF800001, 0xFFC0, "negative NaN, low payload: stays a negative NaN"},
        {0x00000000, 0x0000, "+0"},
        {0x80000000, 0x8000, "-0"},
        {0x00000001, 0x0000, "smallest denormal: to +0"},
        {0x80000001, 0x8000, "smallest negative denormal: to -0"},
        {0x00008000, 0x0000, "denormal midpoint, even below: to 0"},
        {0x00018000, 0x0002, "denormal midpoint, odd below: up to even"},
        {0x00010000, 0x0001, "smallest bf16 denormal: exact"},
        {0x007FFFFF, 0x0080, "largest denormal: rounds up to FLT_MIN, a normal"},
        {0x007F7FFF, 0x007F, "largest bf16 denormal's neighbourhood: stays denormal"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint16_t got = gemm_bf16_round(bits_float(cases[i].in));
        CHECK(got == cases[i].out, "gemm_bf16_round(0x%08X) = 0x%04X, expected 0x%04X (%s)", cases[i].in, got,
              cases[i].out, cases[i].why);
    }
}

// The rounding by definition: of the two bf16 around x (its truncation h and the next one away from
// zero), the nearer in exact (double) arithmetic, the even one on a tie. Past the largest finite bf16
// the next one is Inf, which the tie rule treats as 2^128 (IEEE's overflow threshold).
static uint16_t round_oracle(uint32_t u) {
    uint16_t h = (uint16_t)(u >> 16), up = (uint16_t)(h + 1);
    double x = fabs((double)bits_float(u)), lo = fabs((double)gemm_bf16_float(h));
    double hi = (up & 0x7FFF) == 0x7F80 ? ldexp(1.0, 128) : fabs((double)gemm_bf16_float(up));
    if (x == lo) return h;
    if (x - lo != hi - x) return x - lo < hi - x ? h : up;
    return (h & 1) ? up : h;
}

// Every exponent and sign with the low 16 bits at and around the midpoint, plus a million random
// patterns, against the oracle; NaNs must stay NaNs of the same sign.
static void check_round_sampled(void) {
    static const uint32_t low[] = {0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF};
    static const uint32_t mant[] = {0x00, 0x01, 0x3F, 0x40, 0x7E, 0x7F};
    int bad = 0;
    Rng rng = rng_derive(11, 3, 5);
    for (long t = 0; t < (1L << 20) + 2 * 256 * 6 * 6; t++) {
        uint32_t u;
        if (t < 2 * 256 * 6 * 6) {
            long s = t;
            uint32_t lo16 = low[s % 6], m7 = mant[s / 6 % 6], e = (uint32_t)(s / 36 % 256), sign = (uint32_t)(s / 9216);
            u = sign << 31 | e << 23 | m7 << 16 | lo16;
        } else {
            u = (uint32_t)rng_next(&rng);
        }
        uint16_t got = gemm_bf16_round(bits_float(u));
        int ok = isnan(bits_float(u)) ? isnan(gemm_bf16_float(got)) && (got >> 15) == (u >> 31) : got == round_oracle(u);
        if (!ok && bad++ < 5)
            CHECK(0, "gemm_bf16_round(0x%08X) = 0x%04X, expected 0x%04X", u, got, round_oracle(u));
    }
}

// gemm_bf16_operand flushes bf16 denormals to a zero of their sign and leaves everything else;
// gemm_bf16_pairs puts reduction index 2p in the low half, 2p + 1 in the high half, zero past an odd end.
static void check_operand_and_pairs(void) {
    CHECK(gemm_bf16_operand(bits_float(0x00010000)) == 0x0000, "operand: a bf16 denormal must flush to +0");
    CHECK(gemm_bf16_operand(bits_float(0x80010000)) == 0x8000, "operand: a negative bf16 denormal must flush to -0");
    CHECK(gemm_bf16_operand(bits_float(0x007FFFFF)) == 0x0080, "operand: a float that rounds up to FLT_MIN stays");
    CHECK(gemm_bf16_operand(bits_float(0x3F818000)) == 0x3F82, "operand: a normal number is only rounded");
    CHECK(gemm_bf16_operand(NAN) == 0x7FC0 && gemm_bf16_operand(-INFINITY) == 0xFF80, "operand: NaN, Inf stay");
    const float src[3][2] = {{1.0f, 2.0f}, {3.0f, 0x1p-130f}, {5.0f, -6.0f}}; // (rn 3, W 2)
    uint32_t dst[2][2];                                                          // (2 pairs, W 2)
    gemm_bf16_pairs(&dst[0][0], &src[0][0], 3, 2);
    const uint32_t want[2][2] = {{0x40403F80u, 0x00004000u}, {0x000040A0u, 0x0000C0C0u}};
    for (int p = 0; p < 2; p++)
        for (int w = 0; w < 2; w++)
            CHECK(dst[p][w] == want[p][w], "gemm_bf16_pairs: pair %d lane %d = 0x%08X, expected 0x%08X", p, w,
                  dst[p][w], want[p][w]);
}

// The AVX512_BF16 pairs (vcvtne2ps2bf16 with the fix-up for denormals) against gemm_bf16_pairs, bit
// for bit: every sign and exponent with the high half's fraction and the low half at each rounding
// boundary (ties both ways, the carry into the exponent and into Inf, NaN payloads only the low half
// holds, the denormals that round up to 2^-126), in panels of 12 and 32 lanes (A and B) and 5 (a
// masked tail), with an odd depth (a zero high half last).
static void check_pairs_isa(void) {
    const GemmBf16Isa* fast = &gemm_bf16_isa_avx512;
    if (!gemm_cpu_has_avx512bf16()) {
        printf("pairs: the AVX512_BF16 packer not run (this CPU has no AVX512_BF16)\n");
        return;
    }
    size_t n;
    float* x = bf16_boundary_patterns(&n);
    const int widths[] = {12, 32, 5};
    size_t bad = 0, words = 0;
    for (int i = 0; i < 3; i++) {
        int W = widths[i], rn = (int)(n / W) - ((n / W) % 2 == 0); // odd
        size_t np = (size_t)(rn + 1) / 2 * W;
        uint32_t *want = NN_MALLOC(np * sizeof(uint32_t)), *got = NN_MALLOC(np * sizeof(uint32_t));
        gemm_bf16_pairs(want, x, rn, W);
        fast->pairs(got, x, rn, W);
        for (size_t k = 0; k < np; k++) bad += got[k] != want[k];
        words += np;
        free(want), free(got);
    }
    CHECK(bad == 0, "pairs: the AVX512_BF16 packer differs from gemm_bf16_pairs in %zu of %zu words", bad, words);
    printf("pairs: the AVX512_BF16 packer against gemm_bf16_pairs on %zu bit patterns, panels of 12, 32, 5 lanes: %s\n",
           n, bad ? "DIFFER" : "identical");

    // pairs_from_rows: the same patterns as 29 lanes of a 32-lane panel (three zero lanes), each lane's
    // values adjacent in memory, an odd count; against a staged FP32 panel put through gemm_bf16_pairs.
    enum { W = 32, WN = 29 };
    int rn = (int)(n / WN) - ((n / WN) % 2 == 0);
    size_t np = (size_t)(rn + 1) / 2 * W;
    const float* rows[W];
    for (int w = 0; w < WN; w++) rows[w] = x + (size_t)w * rn;
    float* panel = NN_CALLOC((size_t)rn * W, sizeof(float)); // (rn, W), lanes past WN zero
    for (int r = 0; r < rn; r++)
        for (int w = 0; w < WN; w++) panel[(size_t)r * W + w] = rows[w][r];
    uint32_t *want = NN_MALLOC(np * sizeof(uint32_t)), *got = NN_MALLOC(np * sizeof(uint32_t));
    gemm_bf16_pairs(want, panel, rn, W);
    fast->pairs_from_rows(got, W, (const void* const*)rows, WN, rn, 0);
    size_t bad_rows = 0;
    for (size_t k = 0; k < np; k++) bad_rows += got[k] != want[k];
    CHECK(bad_rows == 0, "pairs: pairs_from_rows differs from staged gemm_bf16_pairs in %zu of %zu words", bad_rows, np);
    printf("pairs: the AVX512_BF16 packer straight from rows, the same patterns in 29 of 32 lanes: %s\n",
           bad_rows ? "DIFFER" : "identical");
    // The same from the patterns stored as bf16 operands (an activation stored in bf16): the same words.
    uint16_t* x16 = NN_MALLOC(n * sizeof(uint16_t));
    for (size_t k = 0; k < n; k++) x16[k] = bf16_operand(x[k]);
    const uint16_t* rows16[W];
    for (int w = 0; w < WN; w++) rows16[w] = x16 + (size_t)w * rn;
    memset(got, 0xFF, np * sizeof(uint32_t));
    fast->pairs_from_rows(got, W, (const void* const*)rows16, WN, rn, 1);
    bad_rows = 0;
    for (size_t k = 0; k < np; k++) bad_rows += got[k] != want[k];
    CHECK(bad_rows == 0, "pairs: pairs_from_rows from bf16 values differs from staged gemm_bf16_pairs in %zu of %zu words",
          bad_rows, np);
    printf("pairs: the same from the patterns stored as bf16: %s\n", bad_rows ? "DIFFER" : "identical");
    free(panel), free(want), free(got);

    // pairs_from_lanes: the same patterns as rows of 32 adjacent lanes (reduction index r at x + r * 32,
    // an odd count), written as two runs of 13 and 19 lanes, against gemm_bf16_pairs on them in place.
    rn = (int)(n / W) - ((n / W) % 2 == 0);
    np = (size_t)(rn + 1) / 2 * W;
    const float** lane_rows = NN_MALLOC((size_t)rn * sizeof(*lane_rows));
    want = NN_MALLOC(np * sizeof(uint32_t)), got = NN_MALLOC(np * sizeof(uint32_t));
    gemm_bf16_pairs(want, x, rn, W);
    const int run[3] = {0, 13, W}; // two runs of lanes: [0, 13) and [13, 32)
    for (int k = 0; k < 2; k++) {
        for (int r = 0; r < rn; r++) lane_rows[r] = x + (size_t)r * W + run[k];
        fast->pairs_from_lanes(got, W, run[k], run[k + 1] - run[k], (const void* const*)lane_rows, rn, 0);
    }
    bad_rows = 0;
    for (size_t k = 0; k < np; k++) bad_rows += got[k] != want[k];
    CHECK(bad_rows == 0, "pairs: pairs_from_lanes differs from gemm_bf16_pairs in %zu of %zu words", bad_rows, np);
    printf("pairs: the AVX512_BF16 packer straight from adjacent lanes, the same patterns in runs of 13 and 19: %s\n",
           bad_rows ? "DIFFER" : "identical");
    const uint16_t** lane_rows16 = NN_MALLOC((size_t)rn * sizeof(*lane_rows16));
    memset(got, 0xFF, np * sizeof(uint32_t));
    for (int k = 0; k < 2; k++) {
        for (int r = 0; r < rn; r++) lane_rows16[r] = x16 + (size_t)r * W + run[k];
        fast->pairs_from_lanes(got, W, run[k], run[k + 1] - run[k], (const void* const*)lane_rows16, rn, 1);
    }
    bad_rows = 0;
    for (size_t k = 0; k < np; k++) bad_rows += got[k] != want[k];
    CHECK(bad_rows == 0, "pairs: pairs_from_lanes from bf16 values differs from gemm_bf16_pairs in %zu of %zu words",
          bad_rows, np);
    printf("pairs: the same from the patterns stored as bf16: %s\n", bad_rows ? "DIFFER" : "identical");
    free(lane_rows), free(lane_rows16), free(x16), free(want), free(got);
    free(x);
}

// --- the bounds ------------------------------------------------------------------------------------
// u = 2^-24 is FP32's unit roundoff, gamma(n) = n u / (1 - n u) the classic bound on n roundings in a
// row: a sum of products computed in FP32 in any order differs from the exact sum of the same products
// by at most gamma(n) * sum |product| when every product passes through at most n roundings.
//
// (1) kernel vs reference. Both multiply the same bf16 operands, and a product of two bf16 (8
// significant bits each) is exact in FP32. So they differ only in how the K products are summed:
// the reference adds them in k order, the kernels pair by pair per depth block, then scale each
// block's sum by alpha and add it to C (one FMA), after beta * C0; a depth split adds the threads'
// partial C's. Any one product passes through at most K - 1 additions inside a block sum, one
// alpha-FMA per depth block (K / 128 + 1 of them: blocks are at least kc / 2 = 128 deep when K is
// split), one per thread partial (2) and the beta term's addition: n = K + K / 64 + 8 covers it.
// Each side is within gamma(n) * mag of the exact value, mag = |alpha| sum_k |a_k b_k| + |beta c0|,
// so |kernel - reference| <= 2 gamma(n) mag. vdpbf16ps also flushes every denormal intermediate to
// zero (the portable kernel copies it, the reference does not): each flush moves the sum by less than
// 2^-126 and the reference's own denormal roundings by less than 2^-150, at most K + 8 of each, times
// |alpha| for the part that is scaled: (|alpha| + 1) (K + 8) 2^-126 absolute.
//
// (2) bf16 vs FP32 GEMM. Rounding to bf16 changes a value by at most u_b = 2^-8 of itself (half the
// 2^-7 step between neighbours in [1, 2)), so a product of two rounded operands is within
// (1 + u_b)^2 - 1 = 2 u_b + u_b^2 = 2^-7 + 2^-16 of the product of the originals, relative. (Not
// 2^-8 + 2^-16: that would take a step of 2^-8, i.e. 9 significant bits; the "just below a midpoint"
// case in check_bound_tight reaches 0.99 of 2^-7.) Summed: |alpha| (2^-7 + 2^-16) sum |a_k b_k|. Add
// the two FP32 summations, gamma(n) each over |alpha| sum |a b| (1 + u_b)^2 and |alpha| sum |a b| plus
// their beta terms, the flush allowance of (1), and the operands bf16 flushes to zero (DAZ: |a| < 2^-126
// drops |a b| < 2^-126 |b|): |alpha| 2^-126 sum_k (|a_k| + |b_k|).
static const double U32 = 0x1p-24, UB = 0x1p-8;

static double gamma_n(double n) { return n * U32 / (1.0 - n * U32); }
static double roundings(int K) { return K + K / 64 + 8; }
static double flush_allowance(int K, float alpha) { return (fabs(alpha) + 1.0) * (K + 8) * 0x1p-126; }

// --- cases -----------------------------------------------------------------------------------------

// One product to check: C (M, N) = alpha A B + beta C through the views; c0 holds C's initial
// contents in the same layout as C.p.
typedef struct Case {
    int M, N, K;
    GemmOperand A, B;
    GemmOut C;
    float alpha, beta;
    const float* c0;
    char what[160];
} Case;

static float op_at(const GemmOperand* op, int f, int r) { return op->p[gemm_offset(&op->free, f) + gemm_offset(&op->red, r)]; }
static size_t out_index(const GemmOut* C, int i, int j) { return (size_t)(gemm_offset(&C->row, i) + gemm_offset(&C->col, j)); }

// The reference element: alpha * (bf16 products summed in FP32, k in order) + beta * c0. *mag gets
// |alpha| sum |products| + |beta c0| (the scale of bound (1)).
static float ref_element(const Case* t, int i, int j, double* mag) {
    float s = 0.0f;
    double m = 0.0;
    for (int k = 0; k < t->K; k++) {
        float p = gemm_bf16_float(gemm_bf16_operand(op_at(&t->A, i, k))) * gemm_bf16_float(gemm_bf16_operand(op_at(&t->B, j, k)));
        s += p;
        m += fabs((double)p);
    }
    float c0 = t->beta != 0.0f ? t->c0[out_index(&t->C, i, j)] : 0.0f;
    *mag = fabs(t->alpha) * m + fabs((double)t->beta * c0);
    return t->beta != 0.0f ? t->alpha * s + t->beta * c0 : t->alpha * s;
}

// got matches ref: the same NaN/Inf class, or finite and within tol.
static int matches(float got, float ref, double tol) {
    if (isnan(ref)) return isnan(got);
    if (isinf(ref)) return got == ref;
    return fabs((double)got - ref) <= tol;
}

// (1): the computed C against the reference.
static void check_vs_reference(const Case* t) {
    int bad = 0;
    for (int i = 0; i < t->M; i++)
        for (int j = 0; j < t->N; j++) {
            double mag;
            float ref = ref_element(t, i, j, &mag), got = t->C.p[out_index(&t->C, i, j)];
            double tol = 2.0 * gamma_n(roundings(t->K)) * mag + flush_allowance(t->K, t->alpha);
            if (!matches(got, ref, tol) && bad++ < 5)
                CHECK(0, "%s: C[%d][%d] = %.9g, reference %.9g (bound %.3g)", t->what, i, j, got, ref, tol);
        }
}

// (2): the computed C against the FP32 GEMM's c32 (same layout), for finite operands.
static void check_vs_fp32(const Case* t, const float* c32) {
    int bad = 0;
    for (int i = 0; i < t->M; i++)
        for (int j = 0; j < t->N; j++) {
            double sum_ab = 0, sum_a_b = 0;
            for (int k = 0; k < t->K; k++) {
                double a = op_at(&t->A, i, k), b = op_at(&t->B, j, k);
                sum_ab += fabs(a * b), sum_a_b += fabs(a) + fabs(b);
            }
            double al = fabs(t->alpha), beta_c0 = t->beta != 0.0f ? fabs((double)t->beta * t->c0[out_index(&t->C, i, j)]) : 0;
            double g = gamma_n(roundings(t->K));
            double tol = al * (2 * UB + UB * UB) * sum_ab + g * (al * (1 + UB) * (1 + UB) * sum_ab + al * sum_ab + 2 * beta_c0) +
                         flush_allowance(t->K, t->alpha) + al * 0x1p-126 * sum_a_b;
            size_t o = out_index(&t->C, i, j);
            if (!matches(t->C.p[o], c32[o], tol) && bad++ < 5)
                CHECK(0, "%s: C[%d][%d] = %.9g, FP32 GEMM %.9g (bound %.3g)", t->what, i, j, t->C.p[o], c32[o], tol);
        }
}

// Bitwise equal, except that any NaN equals any NaN (which NaN an operation returns is the hardware's).
static int same_bits(const float* x, const float* y, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (float_bits(x[i]) != float_bits(y[i]) && !(isnan(x[i]) && isnan(y[i]))) return 0;
    return 1;
}

// (3): with the vdpbf16ps kernel in use at one thread, the portable kernel must give the same bits.
static void check_vs_portable(const Case* t, float* scratch, size_t n) {
    if (strcmp(gemm_bf16_isa()->name, "avx512bf16") != 0 || cpu_max_threads() != 1) return;
    memcpy(scratch, t->c0, n * sizeof(float));
    GemmOut C = t->C;
    C.p = scratch;
    const char* fp32_isa = gemm_isa()->name;
    gemm_set_isa("generic");
    cpu_gemm_bf16(t->M, t->N, t->K, t->alpha, &t->A, &t->B, t->beta, &C);
    gemm_set_isa(fp32_isa);
    CHECK(same_bits(t->C.p, scratch, n), "%s: the portable kernel's bits differ from vdpbf16ps's", t->what);
}

static int case_count;

// Runs a case whose C buffer holds n floats (c0 copied in first): the bf16 GEMM, then checks (1),
// (3) and, for finite operands, (2); the second run must repeat the first's bits.
static void run_case(Case* t, size_t n, int finite) {
    float* c32 = NN_MALLOC(n * sizeof(float)); // (n): C's buffer, same layout
    float* again = NN_MALLOC(n * sizeof(float));
    memcpy(t->C.p, t->c0, n * sizeof(float));
    cpu_gemm_bf16(t->M, t->N, t->K, t->alpha, &t->A, &t->B, t->beta, &t->C);
    check_vs_reference(t);
    if (finite) {
        memcpy(c32, t->c0, n * sizeof(float));
        GemmOut C32 = t->C;
        C32.p = c32;
        cpu_gemm(t->M, t->N, t->K, t->alpha, &t->A, &t->B, t->beta, &C32);
        check_vs_fp32(t, c32);
    }
    memcpy(again, t->c0, n * sizeof(float));
    GemmOut C2 = t->C;
    C2.p = again;
    cpu_gemm_bf16(t->M, t->N, t->K, t->alpha, &t->A, &t->B, t->beta, &C2);
    CHECK(same_bits(t->C.p, again, n), "%s: two runs differ", t->what);
    check_vs_portable(t, again, n);
    case_count++;
    free(c32), free(again);
}

// Plain row-major matrices with leading dimensions wider than the matrix; scale multiplies the
// operands (2^-63 puts the products and sums among FP32's denormals, where vdpbf16ps flushes).
static void check_plain(int M, int N, int K, int ta, int tb, float alpha, float beta, float scale, Rng* rng) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float* a = NN_MALLOC(na * sizeof(float));  // A (M, K) or (K, M), leading dimension lda
    float* b = NN_MALLOC(nb * sizeof(float));  // B (K, N) or (N, K), leading dimension ldb
    float* c0 = NN_MALLOC(nc * sizeof(float)); // C (M, N), leading dimension ldc
    float* c = NN_MALLOC(nc * sizeof(float));
    fill_uniform(a, na, -scale, scale, rng);
    fill_uniform(b, nb, -scale, scale, rng);
    fill_uniform(c0, nc, -1.0f, 1.0f, rng);
    if (beta == 0.0f)
        for (size_t i = 0; i < nc; i++) c0[i] = NAN; // beta = 0 must not read C
    Case t = {M, N, K, gemm_a_matrix(a, lda, ta), gemm_b_matrix(b, ldb, tb), gemm_c_matrix(c, ldc), alpha, beta, c0, ""};
    snprintf(t.what, sizeof(t.what), "bf16 %s %d thr, M %d N %d K %d, trans %d%d, alpha %g beta %g, scale %g",
             gemm_bf16_isa()->name, cpu_max_threads(), M, N, K, ta, tb, (double)alpha, (double)beta, (double)scale);
    run_case(&t, nc, 1);
    int untouched = 1; // the padding of ldc must not be written
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++)
            if (!same_bits(&c[(size_t)i * ldc + j], &c0[(size_t)i * ldc + j], 1)) untouched = 0;
    CHECK(untouched, "%s: wrote past column N", t.what);
    free(a), free(b), free(c0), free(c);
}

// The 1x1 convolution's forward, y (co, n*P) = w (co, ci) x (ci, n*P) through NCHW views (P = 4: C is
// staged; P = 16: stored directly), and its filter gradient dw (co, ci) = y x^T, depth n*P.
static void check_batched(int n, int ci, int co, int P, Rng* rng) {
    size_t nx = (size_t)n * ci * P, ny = (size_t)n * co * P, nw = (size_t)co * ci;
    float* x = NN_MALLOC(nx * sizeof(float));   // (n, ci, P)
    float* w = NN_MALLOC(nw * sizeof(float));   // (co, ci)
    float* y0 = NN_MALLOC(ny * sizeof(float));  // (n, co, P)
    float* y = NN_MALLOC(ny * sizeof(float));   // (n, co, P)
    float* dw0 = NN_MALLOC(nw * sizeof(float)); // (co, ci)
    float* dw = NN_MALLOC(nw * sizeof(float));  // (co, ci)
    fill_uniform(x, nx, -1.0f, 1.0f, rng);
    fill_uniform(w, nw, -1.0f, 1.0f, rng);
    fill_uniform(y0, ny, -1.0f, 1.0f, rng);
    fill_uniform(dw0, nw, -1.0f, 1.0f, rng);
    Case f = {co, n * P, ci, gemm_a_matrix(w, ci, 0), {.p = x, .free = {1, P, (ptrdiff_t)ci * P}, .red = gemm_axis(P)},
              {.p = y, .row = gemm_axis(P), .col = {1, P, (ptrdiff_t)co * P}}, 0.75f, 1.0f, y0, ""};
    snprintf(f.what, sizeof(f.what), "bf16 %s %d thr, batched forward n %d ci %d co %d P %d", gemm_bf16_isa()->name,
             cpu_max_threads(), n, ci, co, P);
    run_case(&f, ny, 1);
    Case g = {co, ci, n * P, {.p = y, .free = gemm_axis(P), .red = {1, P, (ptrdiff_t)co * P}},
              {.p = x, .free = gemm_axis(P), .red = {1, P, (ptrdiff_t)ci * P}}, gemm_c_matrix(dw, ci), 1.0f, 1.0f, dw0, ""};
    snprintf(g.what, sizeof(g.what), "bf16 %s %d thr, batched filter gradient n %d ci %d co %d P %d",
             gemm_bf16_isa()->name, cpu_max_threads(), n, ci, co, P);
    run_case(&g, nw, 1);
    free(x), free(w), free(y0), free(y), free(dw0), free(dw);
}

// NaN and Inf: a NaN in A poisons its row of C; +Inf in B makes its column +Inf where A's column is
// positive; +Inf and -Inf in one column of C's sums give NaN; FLT_MAX rounds to Inf in bf16 (the FP32
// GEMM would stay finite); 0 * Inf is NaN. Checked against the reference's classes, and spot checks
// that the reference itself says so.
static void check_nonfinite(int ta, int tb, Rng* rng) {
    const int M = 13, N = 37, K = 19;
    float A[13][19], B[19][37], c0[13][37], c[13][37], at[19][13], bt[37][19];
    fill_uniform(&A[0][0], sizeof(A) / sizeof(float), -1.0f, 1.0f, rng);
    fill_uniform(&B[0][0], sizeof(B) / sizeof(float), -1.0f, 1.0f, rng);
    fill_uniform(&c0[0][0], sizeof(c0) / sizeof(float), -1.0f, 1.0f, rng);
    for (int i = 0; i < M; i++)
        for (int k = 7; k <= 12; k++) A[i][k] = 0.5f + fabsf(A[i][k]); // positive columns 7..12
    A[2][5] = NAN;
    A[4][12] = 0.0f;
    B[7][11] = INFINITY;                     // column 11: +Inf
    B[8][20] = INFINITY, B[9][20] = -INFINITY; // column 20: Inf - Inf = NaN
    B[10][30] = FLT_MAX;                     // column 30: +Inf after rounding
    B[12][33] = INFINITY;                    // column 33: +Inf, but 0 * Inf = NaN in row 4
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) at[k][i] = A[i][k];
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++) bt[j][k] = B[k][j];
    Case t = {M, N, K, ta ? gemm_a_matrix(&at[0][0], M, 1) : gemm_a_matrix(&A[0][0], K, 0),
              tb ? gemm_b_matrix(&bt[0][0], K, 1) : gemm_b_matrix(&B[0][0], N, 0), gemm_c_matrix(&c[0][0], N),
              1.0f, 0.5f, &c0[0][0], ""};
    snprintf(t.what, sizeof(t.what), "bf16 %s %d thr, NaN/Inf, trans %d%d", gemm_bf16_isa()->name, cpu_max_threads(), ta, tb);
    double mag;
    CHECK(isnan(ref_element(&t, 2, 0, &mag)) && ref_element(&t, 0, 11, &mag) == INFINITY &&
              isnan(ref_element(&t, 0, 20, &mag)) && ref_element(&t, 0, 30, &mag) == INFINITY &&
              isnan(ref_element(&t, 4, 33, &mag)) && ref_element(&t, 5, 33, &mag) == INFINITY,
          "%s: the reference's own NaN/Inf classes are wrong", t.what);
    run_case(&t, sizeof(c) / sizeof(float), 0);
    for (int j = 0; j < N; j++) CHECK(isnan(c[2][j]), "%s: C[2][%d] = %g, expected NaN (NaN in row 2 of A)", t.what, j, c[2][j]);
    CHECK(c[0][11] == INFINITY && isnan(c[0][20]) && c[0][30] == INFINITY && isnan(c[4][33]) && c[5][33] == INFINITY,
          "%s: C[0][11] %g C[0][20] %g C[0][30] %g C[4][33] %g C[5][33] %g, expected inf nan inf nan inf", t.what,
          c[0][11], c[0][20], c[0][30], c[4][33], c[5][33]);
}

// Bound (2) is reached, not just respected: operands just below the midpoint 1 + 2^-8 all round down
// to 1, each product losing 2^-7 of itself with the same sign, so the error is 0.99 of the bound.
// Operands just below the bf16 number 1 + 2^-7 round up to it with an error of 2^-20, so here the bf16
// result must be far inside the bound: a rounding that truncated would lose a whole step (2^-6 per
// product) and fail.
static void check_bound_tight(void) {
    enum { K = 64 };
    static const float values[2] = {1.0f + 0x1p-8f - 0x1p-20f, 1.0f + 0x1p-7f - 0x1p-20f};
    for (int v = 0; v < 2; v++) {
        float a[K], b[K], c = 0.0f, c32 = 0.0f;
        for (int k = 0; k < K; k++) a[k] = b[k] = values[v];
        GemmOperand A = gemm_a_matrix(a, K, 0), B = gemm_b_matrix(b, 1, 0);
        GemmOut C = gemm_c_matrix(&c, 1), C32 = gemm_c_matrix(&c32, 1);
        cpu_gemm_bf16(1, 1, K, 1.0f, &A, &B, 0.0f, &C);
        cpu_gemm(1, 1, K, 1.0f, &A, &B, 0.0f, &C32);
        double exact = (double)K * values[v] * values[v], rel = fabs(c - exact) / exact;
        if (v == 0)
            CHECK(rel > 0.99 * 0x1p-7 && rel <= 0x1p-7 + 0x1p-16, "%s: rounding down at the midpoint lost %.6g of the sum, expected 0.99 to 1 of 2^-7 + 2^-16",
                  gemm_bf16_isa()->name, rel);
        else
            CHECK(rel < 0x1p-16, "%s: operands 2^-20 below a bf16 lost %.6g of the sum, expected < 2^-16 (a truncating rounding loses 2^-6)",
                  gemm_bf16_isa()->name, rel);
        CHECK(fabs(c32 - exact) <= 1e-6 * exact, "FP32 GEMM of the bound case: %.9g, expected %.9g", c32, exact);
    }
    case_count += 2;
}

// Every product check on the bf16 kernel in use, at 1 and 2 threads.
static void check_all(Rng* rng) {
    const int sizes[][3] = {{1, 1, 1},      {1, 17, 5},    {5, 7, 3},     {13, 33, 17},  {12, 32, 256},
                            {25, 47, 300},  {37, 65, 29},  {130, 70, 9},  {64, 600, 40}, {300, 40, 64},
                            {20, 30, 2100}, {97, 129, 520}, {11, 45, 513}};
    const float ab[][2] = {{1.0f, 0.0f}, {-0.7f, 1.0f}, {1.3f, 0.5f}};
    for (int threads = 1; threads <= 2; threads++) {
        set_threads(threads);
        int before = test_failures;
        for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++) {
                    const float* p = ab[(z + ta * 2 + tb) % 3];
                    check_plain(sizes[z][0], sizes[z][1], sizes[z][2], ta, tb, p[0], p[1], 1.0f, rng);
                }
        check_plain(29, 40, 77, 0, 1, 1.0f, 1.0f, 0x1p-63f, rng); // sums among the denormals
        check_plain(29, 40, 77, 1, 0, 1.0f, 0.0f, 0x1p-70f, rng); // products below FLT_MIN
        check_batched(5, 24, 40, 4, rng);
        check_batched(3, 33, 20, 16, rng);
        check_batched(64, 32, 24, 16, rng);
        check_batched(3, 12, 20, 9, rng);    // odd P: pairs straddle images, staged
        check_batched(2, 40, 16, 36, rng);   // 72 pixels: whole 32-index blocks and a tail
        check_batched(3, 19, 20, 144, rng);  // long runs: rows read 8 at a time, panels across images, odd depth
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) check_nonfinite(ta, tb, rng);
        check_bound_tight();
        printf("  %-12s %d thread%s: %s\n", gemm_bf16_isa()->name, threads, threads > 1 ? "s" : " ",
               test_failures == before ? "ok" : "FAILED");
    }
}

int main(void) {
    check_round_cases();
    check_round_sampled();
    check_operand_and_pairs();
    check_pairs_isa();
    printf("  rounding: %s\n", test_failures ? "FAILED" : "ok");
    printf("  bf16 kernel here: %s (CPU %s AVX512_BF16, %s AMX)\n", gemm_bf16_isa()->name,
           gemm_cpu_has_avx512bf16() ? "has" : "lacks", gemm_cpu_has_amx() ? "has" : "lacks");

    const char* isas[] = {"avx512", "generic"}; // the FP32 ISA that selects each bf16 kernel
    Rng rng = rng_derive(7, 1, 3);
    for (size_t s = 0; s < sizeof(isas) / sizeof(isas[0]); s++) {
        if (!gemm_set_isa(isas[s])) {
            printf("  %s: not supported by this CPU, skipped\n", isas[s]);
            continue;
        }
        check_all(&rng);
    }
    // The AMX kernel, chosen by name: its emulation on every machine (the packing, the A panels by
    // rows, the tiles and their tails), the hardware where the CPU and Linux allow it.
    const char* forced[] = {"amx-emulated", "amx"};
    for (size_t s = 0; s < sizeof(forced) / sizeof(forced[0]); s++) {
        if (!gemm_bf16_set_isa(forced[s])) {
            printf("  %s: this CPU has no AMX (or Linux did not grant its tile state), skipped\n", forced[s]);
            continue;
        }
        check_all(&rng);
        gemm_bf16_set_isa("auto");
    }
    printf("  %d products checked\n", case_count);
    return test_finish("test_gemm_bf16");
}
