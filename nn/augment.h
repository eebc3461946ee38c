// The one definition of CIFAR-10 training-data randomness and pixel arithmetic, shared by the CPU
// loader (data/loader.c) and the backends' augment_batch (nn/backend.h: the CPU's in
// kernels/cpu/cpu_speed.c, the reference's in kernels/ref/ref_ops.c, the CUDA kernel that augments
// batches on the GPU in kernels/cuda/cuda_speed.cu). It lives beside the backend interface it
// defines, so the backends depend on nn/ and never on data/. Plain C with static inline functions
// that nvcc also compiles for the device (NN_HD); no CUDA header.
//
// Every random choice is a pure function of its key, never of thread timing or batch size:
//   order of epoch e:          Fisher-Yates over 0..n-1 driven by rng_derive(seed, 0xE90C, e)
//   augmentation of index i:   rng_derive(seed, e + 1, i): crop_dy, then crop_dx, uniform in -4..4
//                              (like RandomCrop's i then j), then flip = uniform < 0.5
// and a pixel is torchvision's ToTensor + Normalize in float32: (v / 255 - mean[c]) / std[c].
#ifndef NN_AUGMENT_H
#define NN_AUGMENT_H

#include <stdint.h>

#include "rng.h"

#define AUGMENT_SIDE 32 // CIFAR-10 images are 32x32
#define AUGMENT_PAD 4   // RandomCrop(32, padding=4)

// Per-channel mean and std of the CIFAR-10 training set (the values torchvision users normalize with).
NN_HD static inline float augment_mean(int c) { return c == 0 ? 0.4914f : c == 1 ? 0.4822f : 0.4465f; }
NN_HD static inline float augment_std(int c) { return c == 0 ? 0.2470f : c == 1 ? 0.2435f : 0.2616f; }

// The normalized value of byte v in channel c. IEEE float division on both sides (nvcc's default
// -prec-div=true; never build the kernel with --use_fast_math), so CPU and GPU give the same bits.
NN_HD static inline float augment_normalize(int c, int v) {
    return ((float)v / 255.0f - augment_mean(c)) / augment_std(c);
}

// The augmentation of dataset index `index` in epoch `epoch`.
NN_HD static inline void augment_draw(uint64_t seed, int epoch, int index, int* crop_dx, int* crop_dy,
                                      int* flip) {
    Rng r = rng_derive(seed, (uint64_t)epoch + 1, (uint64_t)index);
    *crop_dy = (int)rng_below(&r, 2 * AUGMENT_PAD + 1) - AUGMENT_PAD;
    *crop_dx = (int)rng_below(&r, 2 * AUGMENT_PAD + 1) - AUGMENT_PAD;
    *flip = rng_uniform(&r) < 0.5f;
}

// Output pixel (y, x) of an augmented image reads source pixel (sy, sx) = (y + dy, x' + dx) with
// x' = flip ? 31 - x : x; returns 0 when that lies in the zero padding (black before normalizing).
NN_HD static inline int augment_source(int y, int x, int dx, int dy, int flip, int* sy, int* sx) {
    *sy = y + dy;
    *sx = (flip ? AUGMENT_SIDE - 1 - x : x) + dx;
    return *sy >= 0 && *sy < AUGMENT_SIDE && *sx >= 0 && *sx < AUGMENT_SIDE;
}

// The order of epoch `epoch`: perm (n) receives a permutation of 0..n-1. Host only (sequential).
static inline void augment_epoch_order(int* perm, int n, uint64_t seed, int epoch) {
    Rng r = rng_derive(seed, 0xE90C, (uint64_t)epoch);
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint32_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

// One whole image: out (3, 32, 32) normalized floats from a record (label byte, then (3, 32, 32)
// bytes), with the given augmentation (0, 0, 0: none). The reference the loader's table-driven
// decoder and the GPU kernel are tested against.
static inline void augment_image(float* out, const uint8_t* record, int dx, int dy, int flip) {
    const uint8_t* pixels = record + 1;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < AUGMENT_SIDE; y++)
            for (int x = 0; x < AUGMENT_SIDE; x++) {
                int sy, sx;
                int in = augment_source(y, x, dx, dy, flip, &sy, &sx);
                int v = in ? pixels[(c * AUGMENT_SIDE + sy) * AUGMENT_SIDE + sx] : 0;
                out[(c * AUGMENT_SIDE + y) * AUGMENT_SIDE + x] = augment_normalize(c, v);
            }
}

#endif
