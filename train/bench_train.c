// --bench-steps N: the training-step throughput of this configuration (device, --gpu-data,
// --cuda-graph, --tf32, --batch), for the side-by-side comparison with PyTorch
// (tests/reference/bench_train_torch.py, tests/device/speed.sh). Real batches from the loader,
// full batches only (a short last batch would add a cuDNN search for its shape to the timing),
// WARMUP steps first (algorithm searches, the graph capture), then --bench-repeats repeats of N
// steps, each ended by one synchronization; the median repeat is the result. The backend counters
// over the timed steps show whether a step allocates or waits for the device.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/profile.h"
#include "../nn/util.h"
#include "speed.h"

#define WARMUP 10

// The next full batch (short ones skipped: the epoch then ends and the next one starts).
static const Batch* full_batch(Trainer* t, int* epoch) {
    for (;;) {
        const Batch* b = loader_next(t->train_loader);
        if (b && b->n == t->opt.batch) return b;
        loader_start_epoch(t->train_loader, ++*epoch, 0);
    }
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

int run_bench(Trainer* t) {
    const Options* o = &t->opt;
    const Backend* be = t->be;
    if (loader_batches_per_epoch(t->train_loader) < 1 || o->batch > (o->limit_train ? o->limit_train : t->data.n_train))
        nn_fatal("--bench-steps: no full batch of %d in the training set", o->batch);
    int epoch = 0, steps = o->bench_steps, repeats = o->bench_repeats;
    loader_start_epoch(t->train_loader, epoch, 0);
    for (int i = 0; i < WARMUP; i++) train_step(t, full_batch(t, &epoch), NULL);
    be->synchronize();
    // The step's work, from the tape of the last step recorded (a graph replays the captured one).
    StepCost cost = profile_step_cost(t->e);

    BackendCounters c0 = {0}, c1 = {0};
    if (be->read_counters) be->read_counters(&c0);
    double* ms = NN_MALLOC((size_t)repeats * sizeof(double));
    for (int r = 0; r < repeats; r++) {
        double t0 = nn_now();
        for (int i = 0; i < steps; i++) train_step(t, full_batch(t, &epoch), NULL);
        be->synchronize();
        ms[r] = (nn_now() - t0) * 1e3 / steps;
    }
    if (be->read_counters) be->read_counters(&c1);
    double loss_sum;
    long correct;
    trainer_read_metrics(t, METRICS_TRAIN, &loss_sum, &correct);

    double sorted[1000];
    for (int r = 0; r < repeats; r++) sorted[r] = ms[r];
    qsort(sorted, (size_t)repeats, sizeof(double), cmp_double);
    double median = repeats % 2 ? sorted[repeats / 2] : 0.5 * (sorted[repeats / 2 - 1] + sorted[repeats / 2]);
    long params;
    model_count(&t->model, t->dataset->channels, t->dataset->height, t->dataset->width, &params, NULL, NULL);
    // The least bytes a step moves: the layers' (each input read and output written once per pass)
    // plus the optimizer's 24 bytes per parameter (zero-grad writes g; SGD reads w, g, m, writes w, m).
    double bytes = cost.bytes + 24.0 * (double)params, sec = median * 1e-3;
    char dev[256];
    be->describe(dev, sizeof(dev));
    size_t timed = (size_t)steps * repeats;
    printf("%s\n", dev);
    printf("bench: batch %d, width %g, gpu-data %s, cuda-graph %s, tf32 %s, precision %s: %d warm-up steps, %d "
           "repeats x %d steps\n", o->batch, (double)o->width, o->gpu_data ? "on" : "off", o->cuda_graph ? "on" : "off",
           o->tf32 ? "on" : "off", precision_name(o->precision), WARMUP, repeats, steps);
    printf("bench: median %.4f ms/step = %.0f img/s (fastest repeat %.0f, slowest %.0f img/s)\n", median,
           o->batch * 1e3 / median, o->batch * 1e3 / sorted[0], o->batch * 1e3 / sorted[repeats - 1]);
    printf("bench: per step %.2f GFLOP as the model defines it (%.2f executed, DR included): %.2f TFLOP/s "
           "(%.2f executed); at least %.0f MB moved: %.0f GB/s\n", 2e-9 * cost.macs_model,
           2e-9 * cost.macs_executed, 2e-12 * cost.macs_model / sec, 2e-12 * cost.macs_executed / sec,
           bytes / 1e6, bytes / 1e9 / sec);
    printf("bench: in %zu timed steps: %zu allocations, %zu frees, %zu stream syncs (%d are the repeats' own), "
           "%zu upload-ring waits; %ld graph replays, %ld capture(s); final train loss %.4f\n", timed,
           c1.allocs - c0.allocs, c1.frees - c0.frees, c1.syncs - c0.syncs, repeats, c1.ring_waits - c0.ring_waits,
           t->speed ? t->speed->replays : 0L, t->speed ? t->speed->captures : 0L, t->seen ? loss_sum / t->seen : 0.0);
    const char* split = getenv("DRNET_CUDA_BN_SPLIT"); // the CUDA backend's batch-norm variant
    int bn_split = !strcmp(be->name, "cuda") && !(split && !strcmp(split, "0")); // on unless "0"
    const char* pw = getenv("DRNET_CUDA_POINTWISE"); // how the CUDA backend runs 1x1 convolutions
    const char* pointwise = strcmp(be->name, "cuda") ? "" : pw && *pw ? pw : "auto";
    int g = o->dw_group > 0 ? o->dw_group : be->default_dw_group > 0 ? be->default_dw_group : 32;
    char dw[16]; // the depthwise group size the run asked for: a number, or auto (chosen per layer)
    if (o->dw_group == 0) snprintf(dw, sizeof(dw), "auto");
    else snprintf(dw, sizeof(dw), "%d", g);
    printf("BENCH {\"impl\": \"drnet\", \"device\": \"%s\", \"gpu_data\": %d, \"cuda_graph\": %d, \"bn_split\": %d, \"pointwise\": \"%s\", \"dw_group\": \"%s\", "
           "\"tf32\": %d, \"precision\": \"%s\", "
           "\"batch\": %d, \"steps\": %d, \"repeats\": %d, \"median_ms\": %.5f, \"img_per_s\": %.1f, "
           "\"final_loss\": %.5f, \"flop_model\": %.0f, \"flop_executed\": %.0f, \"bytes_least\": %.0f, "
           "\"repeat_ms\": [", be->name, o->gpu_data, o->cuda_graph, bn_split, pointwise, dw, o->tf32, precision_name(o->precision), o->batch, steps, repeats, median,
           o->batch * 1e3 / median, t->seen ? loss_sum / t->seen : 0.0, 2 * cost.macs_model, 2 * cost.macs_executed,
           bytes);
    for (int r = 0; r < repeats; r++) printf("%s%.5f", r ? ", " : "", ms[r]);
    printf("]}\n");
    free(ms);
    speed_destroy(t);
    return 0;
}
