// The bf16 rounding of the bf16 GEMM: gemm_bf16_round on hand-picked bit patterns (ties to even,
// carries into the next exponent and into Inf, denormals, NaN, Inf) and on a million sampled floats
// against an oracle that picks the nearer of the two neighbouring bf16 in double precision, and
// gemm_bf16_operand's flush of bf16 denormals.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../kernels/cpu/cpu_gemm.h"
#include "test_util.h"

static float float_of(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof(x));
    return x;
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
        uint16_t got = gemm_bf16_round(float_of(cases[i].in));
        CHECK(got == cases[i].out, "gemm_bf16_round(0x%08X) = 0x%04X, expected 0x%04X (%s)", cases[i].in, got,
              cases[i].out, cases[i].why);
    }
}

// The rounding by definition: of the two bf16 around x (its truncation h and the next one away from
// zero), the nearer in exact (double) arithmetic, the even one on a tie. Past the largest finite bf16
// the next one is Inf, which the tie rule treats as 2^128 (IEEE's overflow threshold).
static uint16_t round_oracle(uint32_t u) {
    uint16_t h = (uint16_t)(u >> 16), up = (uint16_t)(h + 1);
    double x = fabs((double)float_of(u)), lo = fabs((double)gemm_bf16_float(h));
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
        uint16_t got = gemm_bf16_round(float_of(u));
        int ok = isnan(float_of(u)) ? isnan(gemm_bf16_float(got)) && (got >> 15) == (u >> 31) : got == round_oracle(u);
        if (!ok && bad++ < 5)
            CHECK(0, "gemm_bf16_round(0x%08X) = 0x%04X, expected 0x%04X", u, got, round_oracle(u));
    }
}

// gemm_bf16_operand flushes bf16 denormals to a zero of their sign and leaves everything else.
static void check_operand(void) {
    CHECK(gemm_bf16_operand(float_of(0x00010000)) == 0x0000, "operand: a bf16 denormal must flush to +0");
    CHECK(gemm_bf16_operand(float_of(0x80010000)) == 0x8000, "operand: a negative bf16 denormal must flush to -0");
    CHECK(gemm_bf16_operand(float_of(0x007FFFFF)) == 0x0080, "operand: a float that rounds up to FLT_MIN stays");
    CHECK(gemm_bf16_operand(float_of(0x3F818000)) == 0x3F82, "operand: a normal number is only rounded");
    CHECK(gemm_bf16_operand(NAN) == 0x7FC0 && gemm_bf16_operand(-INFINITY) == 0xFF80, "operand: NaN, Inf stay");
}

int main(void) {
    check_round_cases();
    check_round_sampled();
    check_operand();
    printf("  rounding: %s\n", test_failures ? "FAILED" : "ok");
    return test_finish("test_gemm_bf16");
}
