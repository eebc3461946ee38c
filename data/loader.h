// Turns CIFAR-10 records into training batches: per-epoch shuffling, the standard augmentation
// (random 32x32 crop of the image zero-padded by 4 pixels, horizontal flip with p = 0.5), and
// torchvision's ToTensor + Normalize, on one background thread that prepares the next batches while
// the trainer computes on the current one. Every random choice is a pure function of (seed, epoch)
// for the order and (seed, epoch, dataset index) for the augmentation, never of thread timing or
// batch size, so a run resumed at any batch sees bit-identical data.
#ifndef DATA_LOADER_H
#define DATA_LOADER_H

#include <stdint.h>

#include "dataset.h"

typedef struct Batch {
    float* images;  // (n, 3, 32, 32) normalized: (pixel/255 - mean[c]) / std[c]
    int* labels;    // (n)
    int* indices;   // (n) dataset index (record number) of each sample
    int n;          // <= batch size (the last batch of an epoch may be short)
    int index;      // batch index within the epoch
    int epoch;
} Batch;

typedef struct LoaderConfig {
    const uint8_t* records; // (count, 3073) dataset records (train or test); not copied, must outlive the loader
    int count;
    int batch;     // batch size
    int train;     // 1: shuffle each epoch + augment (random crop 32 with 4-px zero padding, horizontal flip p=0.5); 0: fixed order, no augmentation
    uint64_t seed;
    int drop_last; // 0 by default (PyTorch DataLoader's default)
} LoaderConfig;

// The functions below are called from one thread (the trainer's); the loader owns a second one.
typedef struct Loader Loader;

Loader* loader_create(const LoaderConfig* cfg);
// Starts (or restarts) producing epoch `epoch` from batch `start_batch` (0..batches_per_epoch) on the
// background thread. Batches handed out before are invalid from here on.
void loader_start_epoch(Loader* l, int epoch, int start_batch);
int loader_batches_per_epoch(const Loader* l);
// The next batch of the current epoch, or NULL at its end. The returned batch stays valid until the
// next loader_next/loader_start_epoch call. Blocks only if the background thread is behind.
const Batch* loader_next(Loader* l);
void loader_destroy(Loader* l);
// 1: batches carry labels and dataset indices only, no images (the GPU builds them from resident
// records, --gpu-data). Takes effect from the next batch the background thread prepares.
void loader_set_indices_only(Loader* l, int on);

// Decoding one record for tests: writes (3,32,32) normalized floats, with the given augmentation.
// out[c][y][x] = normalized pixel (c, y + crop_dy, x' + crop_dx) with x' = flip ? 31 - x : x, and
// pixels outside the image are 0 before normalization. crop_dx, crop_dy in -4..4: PyTorch's
// RandomCrop(32, padding=4) window top-left (i, j) in 0..8 is (crop_dy + 4, crop_dx + 4).
void cifar10_decode(float* out, const uint8_t* record, int crop_dx, int crop_dy, int flip);

// The randomness the loader uses (defined once, for the CPU and the GPU, in nn/augment.h), exposed so tests (and anyone reproducing a run) can recompute it.
// Order of epoch e: Fisher-Yates over 0..n-1 driven by rng_derive(seed, 0xE90C, e).
void loader_epoch_order(int* perm, int n, uint64_t seed, int epoch); // perm: (n)
// Augmentation of dataset index i in epoch e, from rng_derive(seed, e + 1, i): crop_dy, crop_dx
// uniform in -4..4 (drawn in that order, like RandomCrop's i then j), flip = uniform < 0.5.
void loader_augmentation(uint64_t seed, int epoch, int index, int* crop_dx, int* crop_dy, int* flip);

// Whether the batch builders (this loader, and the backends' augment_batch for --gpu-data, which
// share nn/augment.h) make d's images: 3x32x32 records normalized by the statistics of augment.h.
// A data set of another shape needs them generalized first; the trainer refuses it until then.
int loader_builds(const DatasetDef* d);

extern const float CIFAR10_MEAN[3]; // 0.4914, 0.4822, 0.4465
extern const float CIFAR10_STD[3];  // 0.2470, 0.2435, 0.2616

#endif
