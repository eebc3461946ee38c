// Computes kernels/ref/ref_ops.c's ref_augment_batch faster (threads over images), and ref_sgd_step
// with the learning rate read from memory; the counters have no reference (ref leaves them NULL).
//
// The CPU side of the backend's speed entries: batches from resident records (the reference the
// CUDA kernel is compared with, computed from the shared definition in nn/augment.h), SGD with
// the learning rate read from memory, and the counters. Graph capture does not exist here (NULL).
#include "../../nn/augment.h"
#include "../../nn/util.h"
#include "cpu_kernels.h"

// images (n, 3, 32, 32), labels (n) from records (count, 3073) at dataset indices (n).
void cpu_augment_batch(float* images, int* labels, const uint8_t* records, int count, const int* indices, int n,
                       uint64_t seed, int epoch, int augment) {
    for (int j = 0; j < n; j++)
        NN_ASSERT(indices[j] >= 0 && indices[j] < count, "augment_batch: dataset index %d of batch row %d "
                  "is outside 0..%d", indices[j], j, count - 1);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < n; j++) {
        const uint8_t* record = records + (size_t)indices[j] * (3 * AUGMENT_SIDE * AUGMENT_SIDE + 1);
        int dx = 0, dy = 0, flip = 0;
        if (augment) augment_draw(seed, epoch, indices[j], &dx, &dy, &flip);
        augment_image(images + (size_t)j * 3 * AUGMENT_SIDE * AUGMENT_SIDE, record, dx, dy, flip);
        labels[j] = record[0];
    }
}

void cpu_sgd_step_device_lr(float* p, float* buf, const float* g, size_t count, const float* lr,
                            float momentum, float weight_decay, int nesterov) {
    cpu_sgd_step(p, buf, g, count, *lr, momentum, weight_decay, nesterov);
}

// Host memory: nothing to count that a step could do behind the caller's back.
void cpu_read_counters(BackendCounters* out) {
    BackendCounters none = {0};
    *out = none;
}
