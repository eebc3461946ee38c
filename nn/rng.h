// A small, fast, seedable random number generator (splitmix64). Streams are derived from
// (seed, a, b) so that what a number is used for decides its value, not the order in which numbers
// were drawn: parameter i of a model, or sample j of epoch k, gets the same randomness however the
// work is scheduled, which is what makes --resume bit-identical.
#ifndef NN_RNG_H
#define NN_RNG_H

#include <stdint.h>

// Host and device: nn/augment.h draws the augmentation from these streams inside a CUDA kernel
// too. A macro, not a CUDA header: nn/ stays plain C.
#ifdef __CUDACC__
#define NN_HD __host__ __device__
#else
#define NN_HD
#endif

typedef struct Rng {
    uint64_t state;
} Rng;

NN_HD static inline uint64_t rng_next(Rng* r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// An independent stream for (seed, a, b).
NN_HD static inline Rng rng_derive(uint64_t seed, uint64_t a, uint64_t b) {
    Rng r = {seed ^ 0x5DEECE66Dull};
    r.state = rng_next(&r) ^ (a * 0xD1B54A32D192ED03ull);
    r.state = rng_next(&r) ^ (b * 0xABC98388FB8FAC03ull);
    rng_next(&r);
    return r;
}

// Uniform in [0, 1) with 24 random bits (every float32 value of that grid equally likely).
NN_HD static inline float rng_uniform(Rng* r) {
    return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

// Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; the bias is below 2^-32 for small n).
NN_HD static inline uint32_t rng_below(Rng* r, uint32_t n) {
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

#endif
