// The batch loader: one background pthread fills a ring of LOADER_SLOTS preallocated batch buffers
// while the trainer consumes them, so decoding and augmentation overlap with compute and nothing is
// allocated per batch. The producer may run ahead of the trainer by LOADER_SLOTS - 1 batches; the
// slot of the batch the trainer holds is never written. Determinism does not depend on the thread:
// which record lands in which batch, and how it is augmented, is computed from (seed, epoch) and
// (seed, epoch, dataset index) alone, so restarting at batch k reproduces batch k exactly. The loader
// uses a single thread on purpose: the trainer's OpenMP threads own the cores.
#define _POSIX_C_SOURCE 200809L
#include "loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/augment.h"
#include "../nn/util.h"
#include "cifar10.h"

#define LOADER_SLOTS 3 // the batch the trainer holds, plus up to two prepared ahead
#define PLANE (CIFAR10_SIDE * CIFAR10_SIDE)

const float CIFAR10_MEAN[3] = {0.4914f, 0.4822f, 0.4465f}; // == augment_mean(c), checked by test_augment
const float CIFAR10_STD[3] = {0.2470f, 0.2435f, 0.2616f};  // == augment_std(c)

int loader_builds(const DatasetDef* d) {
    if (d->channels != 3 || d->height != CIFAR10_SIDE || d->width != CIFAR10_SIDE) return 0;
    for (int c = 0; c < 3; c++)
        if (d->mean[c] != augment_mean(c) || d->std[c] != augment_std(c)) return 0;
    return 1;
}

struct Loader {
    LoaderConfig cfg;
    int batches;           // per epoch
    float lut[3][256];     // normalized value of each byte value, per channel
    int* perm;             // (count) dataset index at each position of epoch perm_epoch; train only
    int perm_epoch;        // -1 before the first epoch
    float* images;         // (LOADER_SLOTS, batch, 3, 32, 32)
    int* labels;           // (LOADER_SLOTS, batch)
    int* indices;          // (LOADER_SLOTS, batch)
    Batch slots[LOADER_SLOTS]; // batch b lives in slot b % LOADER_SLOTS

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work;   // producer waits: nothing to do
    pthread_cond_t ready;  // trainer waits: batch not ready, or producer still writing
    // Guarded by mu. Batches [consumed - 1, produced) are in slots: the one the trainer holds, then
    // the prepared ones. epoch and perm change only while the producer is idle (running = 0, filling = 0).
    int epoch;
    int running;           // an epoch is started: the producer may work
    int produced;          // next batch the producer fills
    int consumed;          // next batch loader_next hands out
    int filling;           // the producer is writing a slot outside the lock
    int indices_only;      // skip decoding images (loader_set_indices_only)
    int quit;
};

// The 256 possible normalized values per channel, tabulated from the shared definition
// (nn/augment.h): the same bits as computing each pixel, faster.
static void build_lut(float lut[3][256]) {
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) lut[c][v] = augment_normalize(c, v);
}

// augment_image (nn/augment.h) with the table instead of the arithmetic.
static void decode_with(float* out, const uint8_t* record, const float lut[3][256], int dx, int dy,
                        int flip) {
    const uint8_t* pixels = record + 1; // (3, 32, 32)
    for (int c = 0; c < 3; c++) {
        const float* t = lut[c];
        const uint8_t* plane = pixels + c * PLANE;
        for (int y = 0; y < CIFAR10_SIDE; y++) {
            float* row = out + c * PLANE + y * CIFAR10_SIDE;
            for (int x = 0; x < CIFAR10_SIDE; x++) {
                int sy, sx;
                int in = augment_source(y, x, dx, dy, flip, &sy, &sx);
                row[x] = t[in ? plane[sy * CIFAR10_SIDE + sx] : 0]; // the padding is black
            }
        }
    }
}

void cifar10_decode(float* out, const uint8_t* record, int crop_dx, int crop_dy, int flip) {
    float lut[3][256];
    build_lut(lut);
    decode_with(out, record, (const float(*)[256])lut, crop_dx, crop_dy, flip);
}

void loader_epoch_order(int* perm, int n, uint64_t seed, int epoch) {
    augment_epoch_order(perm, n, seed, epoch);
}

void loader_augmentation(uint64_t seed, int epoch, int index, int* crop_dx, int* crop_dy, int* flip) {
    augment_draw(seed, epoch, index, crop_dx, crop_dy, flip);
}

// Fills batch b of the current epoch into its slot. Runs outside the lock: it reads epoch and perm,
// which do not change while filling is set, and writes a slot the trainer does not hold.
static void fill_batch(Loader* l, int b, int epoch, int indices_only) {
    const LoaderConfig* cfg = &l->cfg;
    Batch* out = &l->slots[b % LOADER_SLOTS];
    int first = b * cfg->batch;
    int n = cfg->count - first < cfg->batch ? cfg->count - first : cfg->batch;
    for (int j = 0; j < n; j++) {
        int idx = cfg->train ? l->perm[first + j] : first + j;
        const uint8_t* record = cfg->records + (size_t)idx * CIFAR10_RECORD;
        if (!indices_only) {
            int dx = 0, dy = 0, flip = 0;
            if (cfg->train) loader_augmentation(cfg->seed, epoch, idx, &dx, &dy, &flip);
            decode_with(out->images + (size_t)j * CIFAR10_IMAGE, record, (const float(*)[256])l->lut,
                        dx, dy, flip);
        }
        out->labels[j] = record[0];
        out->indices[j] = idx;
    }
    out->n = n;
    out->index = b;
    out->epoch = epoch;
}

// The producer may fill batch `produced` if the epoch has it and its slot is free: the slot is that
// of batch produced - LOADER_SLOTS, which must be older than the one the trainer holds.
static int can_produce(const Loader* l) {
    return l->running && l->produced < l->batches &&
           l->produced < l->consumed - 1 + LOADER_SLOTS;
}

static void* producer_main(void* arg) {
    Loader* l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->quit && !can_produce(l)) pthread_cond_wait(&l->work, &l->mu);
        if (l->quit) break;
        int b = l->produced, epoch = l->epoch, indices_only = l->indices_only;
        l->filling = 1;
        pthread_mutex_unlock(&l->mu);
        fill_batch(l, b, epoch, indices_only);
        pthread_mutex_lock(&l->mu);
        l->filling = 0;
        if (l->running) l->produced = b + 1; // else a restart is waiting to discard it
        pthread_cond_broadcast(&l->ready);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

Loader* loader_create(const LoaderConfig* cfg) {
    NN_ASSERT(cfg->records && cfg->count > 0 && cfg->batch > 0,
              "loader_create: bad config (records %p, count %d, batch %d)", (const void*)cfg->records,
              cfg->count, cfg->batch);
    Loader* l = NN_CALLOC(1, sizeof *l);
    l->cfg = *cfg;
    l->batches = cfg->drop_last ? cfg->count / cfg->batch : (cfg->count + cfg->batch - 1) / cfg->batch;
    build_lut(l->lut);
    l->perm = cfg->train ? NN_MALLOC((size_t)cfg->count * sizeof(int)) : NULL;
    l->perm_epoch = -1;
    size_t per_slot = (size_t)cfg->batch;
    l->images = NN_ALIGNED_ALLOC(64, LOADER_SLOTS * per_slot * CIFAR10_IMAGE * sizeof(float));
    l->labels = NN_MALLOC(LOADER_SLOTS * per_slot * sizeof(int));
    l->indices = NN_MALLOC(LOADER_SLOTS * per_slot * sizeof(int));
    for (int s = 0; s < LOADER_SLOTS; s++) {
        l->slots[s].images = l->images + s * per_slot * CIFAR10_IMAGE;
        l->slots[s].labels = l->labels + s * per_slot;
        l->slots[s].indices = l->indices + s * per_slot;
    }
    int rc = pthread_mutex_init(&l->mu, NULL);
    if (rc == 0) rc = pthread_cond_init(&l->work, NULL);
    if (rc == 0) rc = pthread_cond_init(&l->ready, NULL);
    if (rc == 0) rc = pthread_create(&l->thread, NULL, producer_main, l);
    NN_ASSERT(rc == 0, "loader_create: cannot start the loader thread (pthread error %d)", rc);
    return l;
}

int loader_batches_per_epoch(const Loader* l) { return l->batches; }

void loader_start_epoch(Loader* l, int epoch, int start_batch) {
    NN_ASSERT(epoch >= 0 && start_batch >= 0 && start_batch <= l->batches,
              "loader_start_epoch: epoch %d, start batch %d (the epoch has %d batches)", epoch,
              start_batch, l->batches);
    pthread_mutex_lock(&l->mu);
    l->running = 0; // stop the producer taking new work, then wait for the slot it is writing
    while (l->filling) pthread_cond_wait(&l->ready, &l->mu);
    if (l->cfg.train && epoch != l->perm_epoch) {
        loader_epoch_order(l->perm, l->cfg.count, l->cfg.seed, epoch);
        l->perm_epoch = epoch;
    }
    l->epoch = epoch;
    l->produced = l->consumed = start_batch;
    l->running = 1;
    pthread_cond_signal(&l->work);
    pthread_mutex_unlock(&l->mu);
}

const Batch* loader_next(Loader* l) {
    pthread_mutex_lock(&l->mu);
    NN_ASSERT(l->running, "loader_next called before loader_start_epoch");
    if (l->consumed >= l->batches) {
        pthread_mutex_unlock(&l->mu);
        return NULL;
    }
    while (l->produced <= l->consumed) pthread_cond_wait(&l->ready, &l->mu);
    int b = l->consumed++;
    pthread_cond_signal(&l->work); // the previous batch's slot is free now
    pthread_mutex_unlock(&l->mu);
    return &l->slots[b % LOADER_SLOTS];
}

void loader_set_indices_only(Loader* l, int on) {
    pthread_mutex_lock(&l->mu);
    l->indices_only = on;
    pthread_mutex_unlock(&l->mu);
}

void loader_destroy(Loader* l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->quit = 1;
    pthread_cond_signal(&l->work);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pthread_cond_destroy(&l->ready);
    pthread_cond_destroy(&l->work);
    pthread_mutex_destroy(&l->mu);
    free(l->images);
    free(l->labels);
    free(l->indices);
    free(l->perm);
    free(l);
}
