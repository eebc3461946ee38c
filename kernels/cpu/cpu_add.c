// The residual add: ref_add_forward and ref_add_backward (kernels/ref/ref_ops.c) as one OpenMP
// loop each. Memory-bound: one pass over the three (forward) or three to five (backward) arrays.
#include "cpu_kernels.h"

void cpu_add_forward(float* y, const float* a, const float* b, size_t count) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
}

// da and db may be one buffer (y = x + x): each element takes da's update, then db's, as the
// reference does; only one thread touches an element.
void cpu_add_backward(float* da, float* db, const float* dy, size_t count, int accumulate_a, int accumulate_b) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) {
        float g = dy[i];
        if (da) da[i] = accumulate_a ? da[i] + g : g;
        if (db) db[i] = accumulate_b ? db[i] + g : g;
    }
}
