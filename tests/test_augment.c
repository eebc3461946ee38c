// The shared definition of the training data's randomness and pixels (nn/augment.h) against
// (1) a textbook implementation written from torchvision's semantics (zero-pad to 40x40, crop the
// 32x32 window at (dy + 4, dx + 4), then flip horizontally, then (v / 255 - mean) / std), and
// (2) the CPU loader (data/loader.c) on the real CIFAR-10 data: the CPU backend's augment_batch,
// which computes every pixel from the shared definition alone given only the dataset indices, must
// give bit-identical images and labels, and the indices must be the shared epoch order. The CUDA
// kernel is held to the same batches by tests/test_cuda_speed.c on a GPU.
//
// Exits 77 when CIFAR10_PATH does not name the data set.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/augment.h"
#include "../data/cifar10.h"
#include "../data/loader.h"
#include "../nn/backend.h"
#include "../nn/util.h"
#include "test_util.h"

// torchvision's RandomCrop(32, padding=4) at window (dy + 4, dx + 4), then the flip, then ToTensor
// and Normalize, spelled out on a padded copy.
static void textbook(float* out, const uint8_t* record, int dx, int dy, int flip) {
    static uint8_t padded[3][40][40];
    memset(padded, 0, sizeof padded);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) padded[c][y + 4][x + 4] = record[1 + (c * 32 + y) * 32 + x];
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                int cx = flip ? 31 - x : x; // the flip acts on the cropped image
                uint8_t v = padded[c][y + dy + 4][cx + dx + 4];
                out[(c * 32 + y) * 32 + x] = ((float)v / 255.0f - CIFAR10_MEAN[c]) / CIFAR10_STD[c];
            }
}

static void test_definition(const uint8_t* records) {
    for (int c = 0; c < 3; c++)
        CHECK(augment_mean(c) == CIFAR10_MEAN[c] && augment_std(c) == CIFAR10_STD[c],
              "channel %d: augment.h mean/std %g/%g, loader %g/%g", c, (double)augment_mean(c),
              (double)augment_std(c), (double)CIFAR10_MEAN[c], (double)CIFAR10_STD[c]);
    float a[CIFAR10_IMAGE], b[CIFAR10_IMAGE];
    int bad = 0, cases = 0;
    for (int i = 0; i < 40; i++) {
        const uint8_t* rec = records + (size_t)(i * 997) * CIFAR10_RECORD;
        for (int dy = -4; dy <= 4; dy++)
            for (int dx = -4; dx <= 4; dx++)
                for (int flip = 0; flip < 2; flip++) {
                    augment_image(a, rec, dx, dy, flip);
                    textbook(b, rec, dx, dy, flip);
                    bad += memcmp(a, b, sizeof a) != 0;
                    cases++;
                }
    }
    CHECK(bad == 0, "augment_image differs from the textbook crop/flip/normalize in %d of %d cases", bad, cases);
    printf("ok   augment_image == textbook RandomCrop(32, 4) + flip + Normalize (%d cases)\n", cases);
}

// Every batch of (seed, epoch) from the loader against the CPU backend's augment_batch given only
// the batch's indices; `batches` limits how many are checked (0 = the whole epoch).
static void compare_epoch(const Backend* be, const uint8_t* records, int count, int train, uint64_t seed,
                          int epoch, int batch, int batches) {
    LoaderConfig cfg = {.records = records, .count = count, .batch = batch, .train = train, .seed = seed};
    Loader* l = loader_create(&cfg);
    int* perm = NN_MALLOC((size_t)count * sizeof(int));
    augment_epoch_order(perm, count, seed, epoch);
    float* img = NN_MALLOC((size_t)batch * CIFAR10_IMAGE * sizeof(float));
    int* labels = NN_MALLOC((size_t)batch * sizeof(int));
    int bad_img = 0, bad_idx = 0, seen = 0, checked = 0;
    loader_start_epoch(l, epoch, 0);
    for (const Batch* b; (b = loader_next(l));) {
        if (batches && b->index >= batches && b->index != loader_batches_per_epoch(l) - 1) {
            seen += b->n;
            continue; // the first ones and the (short) last one
        }
        for (int j = 0; j < b->n; j++) {
            int want = train ? perm[seen + j] : seen + j;
            bad_idx += b->indices[j] != want;
        }
        be->augment_batch(img, labels, records, count, b->indices, b->n, seed, epoch, train);
        bad_img += memcmp(img, b->images, (size_t)b->n * CIFAR10_IMAGE * sizeof(float)) != 0 ||
                   memcmp(labels, b->labels, (size_t)b->n * sizeof(int)) != 0;
        seen += b->n;
        checked++;
    }
    CHECK(bad_idx == 0, "seed %llu epoch %d: %d indices differ from augment_epoch_order",
          (unsigned long long)seed, epoch, bad_idx);
    CHECK(bad_img == 0, "seed %llu epoch %d%s: %d of %d batches differ between the loader and augment_batch",
          (unsigned long long)seed, epoch, train ? "" : " (test set)", bad_img, checked);
    printf("%s loader == augment_batch: %s, seed %llu, epoch %d, %d batches of %d\n",
           bad_img || bad_idx ? "FAIL" : "ok  ", train ? "training" : "test", (unsigned long long)seed, epoch,
           checked, batch);
    free(perm);
    free(img);
    free(labels);
    loader_destroy(l);
}

int main(void) {
    Cifar10 ds = {0};
    char err[2048];
    const char* path = test_data_path(err, sizeof err);
    if (!path) {
        printf("skipped: %s\n", err);
        return TEST_SKIP;
    }
    if (cifar10_load(&ds, path, err, sizeof err) != 0) {
        printf("skipped: needs the real CIFAR-10, and %s did not load: %s\n", path, err);
        return TEST_SKIP;
    }
    BackendOptions bo = {0};
    const Backend* be = backend_open("cpu", &bo, err, sizeof err);
    if (!be) nn_fatal("%s", err);

    test_definition(ds.train);
    compare_epoch(be, ds.train, ds.n_train, 1, 1, 0, 128, 0);  // one whole epoch
    compare_epoch(be, ds.train, ds.n_train, 1, 1, 7, 128, 4);
    compare_epoch(be, ds.train, ds.n_train, 1, 1234, 2, 100, 4);
    compare_epoch(be, ds.test, ds.n_test, 0, 1, 0, 128, 4);   // evaluation: fixed order, no augmentation
    cifar10_free(&ds);
    return test_finish("test_augment");
}
