// The fast training step on a GPU, against what it replaces:
//  1. GPU batches (--gpu-data, the CUDA augment kernel) == the CPU loader's batches, bit for bit:
//     a whole training epoch and the start of another, the test set, and an index out of range
//     (the image becomes NaN, the label -1);
//  2. sgd_step_device_lr == sgd_step, bit for bit, on both backends;
//  3. train_step (train/step.c, train/speed.c: the trainer's own code) with --cuda-graph and/or
//     --gpu-data against the plain eager step from the same start: the running loss after every
//     step, the correct count, then every parameter, momentum and running statistic, and the
//     evaluation metrics. Over an epoch with a short last batch (run eagerly inside graph mode),
//     and with an allocation halfway that must make the trainer capture its graph again;
//  4. a steady-state step (eager, and replayed) does no cudaMalloc, no cudaFree and no stream
//     synchronization (the backend's counters).
//
// With deterministic cuDNN algorithms (BackendOptions.deterministic, train --deterministic) and
// TF32 off, every kernel of a step is deterministic, so graph replay, GPU batches and eager must
// agree bit for bit: GRAPH_BOUND is 0 (the test also prints whether each pair was bit-identical).
//
// Exits 77 without a CUDA build or device; DRNET_REQUIRE_GPU=1 turns that into a failure. Uses the
// real CIFAR-10 when CIFAR10_PATH names it, else random records. --dry-run-cpu puts the CPU backend
// in the GPU's place, with graph capture emulated (tests/graph_emu.c: ops recorded at capture, run
// again at launch, uploads/syncs/allocations refused while capturing), fewer steps, and without the
// out-of-range index (the CPU exits on it) and the batch-norm split (CUDA only): the test's code and
// the trainer's capture logic are exercised where there is no GPU.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "../nn/augment.h"
#include "../data/cifar10.h"
#include "../nn/util.h"
#include "../train/speed.h"
#include "graph_emu.h"
#include "test_util.h"

#define GRAPH_BOUND 0.0 // ||graph - eager|| / ||eager|| after the run, deterministic algorithms (above)
#define N_TRAIN 2000     // records used: 2000 / 64 = 31 full batches and one of 16
#define N_TEST 500
static int n_test = N_TEST; // --dry-run-cpu: fewer
#define BATCH 64
#define STEPS 40         // the first epoch and part of the second
static int steps = STEPS; // --dry-run-cpu: fewer (the CPU is ~1000x slower)

static const Backend* cpu;
static const Backend* gpu;

static int skip(const char* why) { return test_gpu_unavailable("test_cuda_speed", why); }

static uint8_t* records_on(const Backend* be, const uint8_t* host, int count) {
    uint8_t* d = be->alloc((size_t)count * CIFAR10_RECORD, "records");
    be->upload(d, host, (size_t)count * CIFAR10_RECORD);
    return d;
}

// ---------------------------------------------------------------------------------------------
// 1. GPU batches against the loader

static void compare_loader(const uint8_t* host, int count, int train, uint64_t seed, int epoch, int batches) {
    uint8_t* rec = records_on(gpu, host, count);
    int* idx = gpu->alloc(128 * sizeof(int), "indices");
    float* img = gpu->alloc(128 * CIFAR10_IMAGE * sizeof(float), "images");
    int* lab = gpu->alloc(128 * sizeof(int), "labels");
    float* h_img = NN_MALLOC(128 * CIFAR10_IMAGE * sizeof(float));
    int h_lab[128];
    LoaderConfig cfg = {.records = host, .count = count, .batch = 128, .train = train, .seed = seed};
    Loader* l = loader_create(&cfg);
    loader_start_epoch(l, epoch, 0);
    long bad_floats = 0, bad_labels = 0;
    int checked = 0;
    double worst = 0;
    for (const Batch* b; (b = loader_next(l)) && (!batches || checked < batches);) {
        gpu->upload(idx, b->indices, (size_t)b->n * sizeof(int));
        gpu->augment_batch(img, lab, rec, count, idx, b->n, seed, epoch, train);
        gpu->download(h_img, img, (size_t)b->n * CIFAR10_IMAGE * sizeof(float));
        gpu->download(h_lab, lab, (size_t)b->n * sizeof(int));
        for (size_t i = 0; i < (size_t)b->n * CIFAR10_IMAGE; i++)
            if (memcmp(&h_img[i], &b->images[i], sizeof(float)) != 0) {
                bad_floats++;
                double d = fabs((double)h_img[i] - b->images[i]);
                worst = d > worst ? d : worst;
            }
        for (int j = 0; j < b->n; j++) bad_labels += h_lab[j] != b->labels[j];
        checked++;
    }
    CHECK(bad_floats == 0 && bad_labels == 0, "%s seed %llu epoch %d: %ld floats (worst |diff| %.3g) and %ld labels "
          "differ between the GPU batch and the loader's", train ? "training" : "test", (unsigned long long)seed,
          epoch, bad_floats, worst, bad_labels);
    printf("%s GPU augment_batch == loader: %s, seed %llu, epoch %d, %d batches\n",
           bad_floats || bad_labels ? "FAIL" : "ok  ", train ? "training" : "test", (unsigned long long)seed, epoch,
           checked);
    loader_destroy(l);
    free(h_img);
    gpu->free(rec), gpu->free(idx), gpu->free(img), gpu->free(lab);
}

// An index outside the records: the kernel prints it, the image is NaN and the label -1.
static void bad_index(const uint8_t* host, int count) {
    uint8_t* rec = records_on(gpu, host, count);
    int h_idx[2] = {0, count}, h_lab[2];
    int* idx = gpu->alloc(sizeof h_idx, "indices");
    float* img = gpu->alloc(2 * CIFAR10_IMAGE * sizeof(float), "images");
    int* lab = gpu->alloc(sizeof h_lab, "labels");
    gpu->upload(idx, h_idx, sizeof h_idx);
    printf("     (the next line, from the kernel, is expected)\n");
    fflush(stdout);
    gpu->augment_batch(img, lab, rec, count, idx, 2, 1, 0, 1);
    float* h = NN_MALLOC(2 * CIFAR10_IMAGE * sizeof(float));
    gpu->download(h, img, 2 * CIFAR10_IMAGE * sizeof(float));
    gpu->download(h_lab, lab, sizeof h_lab);
    int nans = 0;
    for (int i = CIFAR10_IMAGE; i < 2 * CIFAR10_IMAGE; i++) nans += isnan(h[i]);
    CHECK(h_lab[1] == -1 && nans == CIFAR10_IMAGE && h_lab[0] == host[0] && !isnan(h[0]),
          "index %d of %d: label %d (want -1), %d NaN floats (want %d); the valid row: label %d", count, count,
          h_lab[1], nans, CIFAR10_IMAGE, h_lab[0]);
    printf("ok   an index out of range gives label -1 and a NaN image\n");
    free(h);
    gpu->free(rec), gpu->free(idx), gpu->free(img), gpu->free(lab);
}

// ---------------------------------------------------------------------------------------------
// 2. SGD with the rate in backend memory

static void sgd_device_lr(const Backend* be) {
    const size_t n = 10000;
    float* h = NN_MALLOC(3 * n * sizeof(float));
    Rng r = rng_derive(5, 6, 7);
    fill_uniform(h, 3 * n, -1, 1, &r);
    float* a = be->alloc(3 * n * sizeof(float), "sgd a");
    float* b = be->alloc(3 * n * sizeof(float), "sgd b");
    float* lr = be->alloc(sizeof(float), "lr");
    const float rate = 0.0371f;
    be->upload(a, h, 3 * n * sizeof(float));
    be->upload(b, h, 3 * n * sizeof(float));
    be->upload(lr, &rate, sizeof(float));
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        be->sgd_step(a, a + n, a + 2 * n, n, rate, 0.9f, 5e-4f, nesterov);
        be->sgd_step_device_lr(b, b + n, b + 2 * n, n, lr, 0.9f, 5e-4f, nesterov);
    }
    float* ha = NN_MALLOC(2 * n * sizeof(float));
    float* hb = NN_MALLOC(2 * n * sizeof(float));
    be->download(ha, a, 2 * n * sizeof(float));
    be->download(hb, b, 2 * n * sizeof(float));
    int same = memcmp(ha, hb, 2 * n * sizeof(float)) == 0;
    CHECK(same, "%s: sgd_step_device_lr differs from sgd_step (max |diff| %.3g)", be->name, max_abs_diff(ha, hb, 2 * n));
    printf("%s %s: sgd_step_device_lr == sgd_step (parameters and momentum, with and without nesterov)\n",
           same ? "ok  " : "FAIL", be->name);
    free(h), free(ha), free(hb);
    be->free(a), be->free(b), be->free(lr);
}

// ---------------------------------------------------------------------------------------------
// 2b. Batch norm split over many blocks (DRNET_CUDA_BN_SPLIT=1) against the CPU backend, on shapes
// with many chunks per channel (the first MobileNet layers at batch 128), few values per channel
// (the last ones), odd sizes. Forward: y, mean, invstd, running statistics. Backward from the CPU's
// saved state (so a ReLU mask on a kink cannot differ): dx written then accumulated, dgamma, dbeta.

static float* to_dev(const float* h, size_t n) {
    float* d = gpu->alloc(n * sizeof(float), "bn test");
    gpu->upload(d, h, n * sizeof(float));
    return d;
}

static void check_dev(const char* what, const char* tensor, const float* dev, const float* ref, size_t n) {
    float* h = NN_MALLOC(n * sizeof(float));
    gpu->download(h, dev, n * sizeof(float));
    double err = rel_error(h, ref, n);
    CHECK(err <= 1e-5, "%s %s: ||cuda - cpu|| / ||cpu|| = %.3g (bound 1e-5)", what, tensor, err);
    if (err > 1e-5) printf("FAIL %s %s: %.3g\n", what, tensor, err);
    free(h);
}

static void bn_split_case(int n, int c, int hw, int relu) {
    size_t total = (size_t)n * c * hw;
    Rng r = rng_derive(11, (uint64_t)n * c, (uint64_t)hw + relu);
    float* x = NN_MALLOC(total * sizeof(float));
    float* dy = NN_MALLOC(total * sizeof(float));
    fill_uniform(x, total, 2.0f, 4.0f, &r); // an offset: the one-pass sums must not lose the variance
    fill_uniform(dy, total, -1.0f, 1.0f, &r);
    float* p = NN_MALLOC(8 * (size_t)c * sizeof(float)); // gamma, beta, rmean, rvar, mean, invstd, dgamma, dbeta
    fill_uniform(p, 2 * (size_t)c, 0.5f, 1.5f, &r);
    for (int i = 0; i < c; i++) p[2 * c + i] = 0.1f * i, p[3 * c + i] = 1.0f + 0.01f * i, p[6 * c + i] = p[7 * c + i] = 0.5f;
    // CPU reference
    float* y = NN_CALLOC(total, sizeof(float));
    float* dx = NN_CALLOC(total, sizeof(float));
    float* cp = NN_MALLOC(8 * (size_t)c * sizeof(float));
    memcpy(cp, p, 8 * (size_t)c * sizeof(float));
    cpu->batchnorm_forward_train(y, cp + 4 * c, cp + 5 * c, cp + 2 * c, cp + 3 * c, x, cp, cp + c, n, c, hw, 0.1f, 1e-5f, relu, 0);
    // GPU forward
    float *gx = to_dev(x, total), *gy = to_dev(y, total), *gp = to_dev(p, 8 * (size_t)c);
    gpu->batchnorm_forward_train(gy, gp + 4 * c, gp + 5 * c, gp + 2 * c, gp + 3 * c, gx, gp, gp + c, n, c, hw, 0.1f,
                                 1e-5f, relu, 0);
    char what[96];
    snprintf(what, sizeof what, "bn split (%d, %d, %d)%s", n, c, hw, relu ? "+relu" : "");
    check_dev(what, "y", gy, y, total);
    check_dev(what, "mean", gp + 4 * c, cp + 4 * c, c);
    check_dev(what, "invstd", gp + 5 * c, cp + 5 * c, c);
    check_dev(what, "running mean", gp + 2 * c, cp + 2 * c, c);
    check_dev(what, "running var", gp + 3 * c, cp + 3 * c, c);
    // Backward twice (dx written, then added) from the CPU's y, mean and invstd.
    gpu->upload(gy, y, total * sizeof(float));
    gpu->upload(gp + 4 * c, cp + 4 * c, 2 * (size_t)c * sizeof(float));
    float *gdy = to_dev(dy, total), *gdx = to_dev(dx, total);
    for (int a = 0; a < 2; a++) {
        cpu->batchnorm_backward(dx, cp + 6 * c, cp + 7 * c, dy, x, y, cp + 4 * c, cp + 5 * c, cp, cp + c, n, c, hw, relu, 0,
                                0, a);
        gpu->batchnorm_backward(gdx, gp + 6 * c, gp + 7 * c, gdy, gx, gy, gp + 4 * c, gp + 5 * c, gp, gp + c, n, c, hw, relu,
                                0, 0, a);
    }
    check_dev(what, "dx (written, then accumulated)", gdx, dx, total);
    check_dev(what, "dgamma", gp + 6 * c, cp + 6 * c, c);
    check_dev(what, "dbeta", gp + 7 * c, cp + 7 * c, c);
    printf("     %s compared\n", what);
    free(x), free(dy), free(p), free(y), free(dx), free(cp);
    gpu->free(gx), gpu->free(gy), gpu->free(gp), gpu->free(gdy), gpu->free(gdx);
}

static void bn_split(BackendOptions* opt) {
    char err[512];
    setenv("DRNET_CUDA_BN_SPLIT", "1", 1);
    if (gpu->init(opt, err, sizeof err) != 0) nn_fatal("%s", err);
    int before = test_failures;
    bn_split_case(128, 32, 1024, 1); // the stem and first block: ~33 chunks per channel
    bn_split_case(128, 64, 256, 0);
    bn_split_case(128, 1024, 4, 1);  // the last blocks: one chunk, 512 values
    bn_split_case(5, 7, 33, 0);      // odd sizes: chunk and image boundaries everywhere
    bn_split_case(3, 4, 25, 1);
    bn_split_case(64, 3, 1, 0);      // 1x1 maps
    printf("%s batch norm split over many blocks == CPU (1e-5)\n", test_failures == before ? "ok  " : "FAIL");
    unsetenv("DRNET_CUDA_BN_SPLIT");
    if (gpu->init(opt, err, sizeof err) != 0) nn_fatal("%s", err);
}

// ---------------------------------------------------------------------------------------------
// 3, 4. The trainer's step: graph / GPU data against eager

typedef struct Run {
    double loss_sum[STEPS];
    long correct[STEPS];
    float* params;  // (num_param_floats) then momentum (num_param_floats) then buffers
    size_t floats;
    double eval_loss, eval_acc;
    long replays, captures;
} Run;

static void make_trainer(Trainer* t, const Cifar10* data, int graph, int gpu_data) {
    memset(t, 0, sizeof(*t));
    Options* o = &t->opt;
    o->batch = BATCH, o->seed = 3, o->augment = 1, o->width = 0.25f;
    o->limit_train = N_TRAIN, o->limit_test = n_test;
    o->cuda_graph = graph, o->gpu_data = gpu_data, o->accum_steps = 1;
    t->be = gpu;
    t->dataset = &CIFAR10_DATASET;
    t->data = *data;
    t->e = engine_create(gpu);
    model_build(&t->model, model_find("mobilenet"), t->e, o->width, 32, 10);
    engine_alloc_params(t->e);
    engine_init_params(t->e, o->seed);
    t->loss_sum = gpu->alloc(2 * sizeof(float), "metrics");
    t->correct = gpu->alloc(2 * sizeof(int), "metrics");
    gpu->zero(t->loss_sum, 2 * sizeof(float));
    gpu->zero(t->correct, 2 * sizeof(int));
    LoaderConfig lc = {.records = data->train, .count = N_TRAIN, .batch = BATCH, .train = 1, .seed = o->seed};
    LoaderConfig tc = {.records = data->test, .count = n_test, .batch = BATCH, .train = 0, .seed = o->seed};
    t->train_loader = loader_create(&lc);
    t->test_loader = loader_create(&tc);
    t->steps_per_epoch = loader_batches_per_epoch(t->train_loader);
    t->sgd = (SGD){.lr = 0.1f, .momentum = 0.9f, .weight_decay = 5e-4f};
    // Cosine over the run: the rate changes every step, so a graph that baked it in would show.
    t->schedule = (Schedule){.kind = SCHEDULE_COSINE, .base_lr = 0.1f, .total_steps = STEPS + 10};
    engine_plan_begin(t->e);
    engine_backward(t->e, forward_loss(t, BATCH, NULL, NULL));
    engine_plan_end(t->e);
    trainer_setup_micro_batches(t); // one micro-batch per step, one process
}

static void free_trainer(Trainer* t) {
    speed_destroy(t);
    loader_destroy(t->train_loader);
    loader_destroy(t->test_loader);
    gpu->free(t->loss_sum);
    gpu->free(t->correct);
    model_free(&t->model);
    engine_destroy(t->e);
}

static const Batch* next(Trainer* t) {
    const Batch* b = loader_next(t->train_loader);
    if (b) return b;
    t->epoch++;
    loader_start_epoch(t->train_loader, t->epoch, 0);
    return loader_next(t->train_loader);
}

static void run(Run* r, const Cifar10* data, int graph, int gpu_data, int steady_steps) {
    Trainer t;
    make_trainer(&t, data, graph, gpu_data);
    loader_start_epoch(t.train_loader, 0, 0);
    for (int s = 0; s < steps; s++) {
        // Halfway, an allocation such as a cuDNN workspace regrowth for a new shape makes: the graph
        // may now hold a freed pointer, so the next step must capture it again and train on exactly
        // as before (the path a real run takes after its first short batch or evaluation).
        if (graph && s == steps / 2) gpu->free(gpu->alloc(256, "an allocation that forces a recapture"));
        train_step(&t, next(&t), NULL);
        trainer_read_metrics(&t, METRICS_TRAIN, &r->loss_sum[s], &r->correct[s]);
    }
    Engine* e = t.e;
    r->floats = 2 * e->num_param_floats + e->num_buffer_floats;
    r->params = NN_MALLOC(r->floats * sizeof(float));
    gpu->download(r->params, e->param_data, e->num_param_floats * sizeof(float));
    gpu->download(r->params + e->num_param_floats, e->param_momentum, e->num_param_floats * sizeof(float));
    gpu->download(r->params + 2 * e->num_param_floats, e->buffer_data, e->num_buffer_floats * sizeof(float));
    evaluate(&t, &r->eval_loss, &r->eval_acc);

    // Steady state: steps without reading anything back; then count what they did.
    if (steady_steps) {
        loader_start_epoch(t.train_loader, ++t.epoch, 0); // fresh epoch: full batches, then one short
        train_step(&t, next(&t), NULL);
        gpu->synchronize();
        BackendCounters c0, c1;
        gpu->read_counters(&c0);
        for (int s = 0; s < steady_steps; s++) train_step(&t, next(&t), NULL);
        gpu->read_counters(&c1);
        size_t allocs = c1.allocs - c0.allocs, frees = c1.frees - c0.frees, syncs = c1.syncs - c0.syncs;
        CHECK(allocs == 0 && frees == 0 && syncs == 0, "graph %d gpu-data %d: %d steady-state steps did %zu "
              "allocations, %zu frees, %zu stream syncs (want none)", graph, gpu_data, steady_steps, allocs, frees, syncs);
        printf("%s steady state, graph %d gpu-data %d: %d steps, %zu allocations, %zu frees, %zu syncs, "
               "%zu upload-ring waits\n", allocs || frees || syncs ? "FAIL" : "ok  ", graph, gpu_data, steady_steps,
               allocs, frees, syncs, c1.ring_waits - c0.ring_waits);
    }
    r->replays = t.speed ? t.speed->replays : 0;
    r->captures = t.speed ? t.speed->captures : 0;
    free_trainer(&t);
}

static void compare_runs(const char* what, const Run* eager, const Run* other) {
    double worst_loss = 0;
    int exact = 1, correct_diff = 0;
    for (int s = 0; s < steps; s++) {
        double d = fabs(other->loss_sum[s] - eager->loss_sum[s]) / fmax(fabs(eager->loss_sum[s]), 1e-30);
        worst_loss = d > worst_loss ? d : worst_loss;
        exact &= other->loss_sum[s] == eager->loss_sum[s];
        correct_diff += other->correct[s] != eager->correct[s];
    }
    double err = rel_error(other->params, eager->params, eager->floats);
    exact &= memcmp(other->params, eager->params, eager->floats * sizeof(float)) == 0;
    int ok = worst_loss <= GRAPH_BOUND && err <= GRAPH_BOUND && isfinite(other->eval_loss) &&
             fabs(other->eval_loss - eager->eval_loss) <= GRAPH_BOUND * fmax(1.0, fabs(eager->eval_loss));
    CHECK(ok, "%s vs eager: running loss rel. diff %.3g, parameters/momentum/statistics %.3g (bound %.0e), "
          "eval loss %.6f vs %.6f", what, worst_loss, err, GRAPH_BOUND, other->eval_loss, eager->eval_loss);
    printf("%s %-26s vs eager over %d steps: loss %.2e, state %.2e, eval loss %.6f vs %.6f, acc %.2f vs %.2f, "
           "correct counts differ at %d steps; %s\n", ok ? "ok  " : "FAIL", what, steps, worst_loss, err,
           other->eval_loss, eager->eval_loss, other->eval_acc, eager->eval_acc, correct_diff,
           exact ? "bit-identical" : "not bit-identical");
}

static uint8_t* random_records(int count, uint64_t seed) {
    uint8_t* r = NN_MALLOC((size_t)count * CIFAR10_RECORD);
    Rng g = rng_derive(seed, 1, 2);
    for (size_t i = 0; i < (size_t)count * CIFAR10_RECORD; i++) r[i] = (uint8_t)(rng_next(&g) >> 56);
    for (int i = 0; i < count; i++) r[(size_t)i * CIFAR10_RECORD] %= 10;
    return r;
}

int main(int argc, char** argv) {
    const int dry = argc > 1 && strcmp(argv[1], "--dry-run-cpu") == 0;
    char why[256];
    if (!dry && test_cuda_missing(why, sizeof(why))) return skip(why);
    char err[512], desc[256];
    BackendOptions opt = {0}; // TF32 off: the comparisons isolate the graph, not TF32 rounding
    opt.deterministic = 1;    // no atomics in cuDNN's algorithms: eager repeats itself bit for bit
    cpu = backend_open("cpu", &opt, err, sizeof(err));
    if (!cpu) nn_fatal("%s", err);
    gpu = dry ? graph_emu_backend(cpu) : backend_open("cuda", &opt, err, sizeof(err));
    if (!gpu) {
        fprintf(stderr, "FAIL test_cuda_speed: a CUDA device is present but the backend did not start: %s\n", err);
        return 1;
    }
    gpu->describe(desc, sizeof(desc));
    printf("%s%s\n", desc, dry ? " (dry run: the CPU stands in for the GPU)" : "");

    Cifar10 data = {0};
    const char* path = getenv("CIFAR10_PATH");
    if (path && *path && cifar10_load(&data, path, err, sizeof(err)) == 0) {
        printf("data: %s (CIFAR-10)\n", path);
    } else {
        printf("data: random records (CIFAR10_PATH %s)\n", path && *path ? "did not load" : "unset");
        data.train = random_records(CIFAR10_TRAIN, 1), data.n_train = CIFAR10_TRAIN;
        data.test = random_records(CIFAR10_TEST, 2), data.n_test = CIFAR10_TEST;
    }

#ifdef DRNET_CUDA_EMU
    // The CUDA emulator (tests/cuda_emu) runs every kernel on the CPU: the dry run's sizes, the GPU's checks.
    const int small = 1;
#else
    const int small = dry;
#endif
    if (small) steps = 5, n_test = 128;
    compare_loader(data.train, data.n_train, 1, 1, 0, small ? 8 : 0); // a whole epoch, short last batch included
    compare_loader(data.train, data.n_train, 1, 1234, 5, 8);
    compare_loader(data.test, data.n_test, 0, 1, 0, 0);
    if (!dry) bad_index(data.train, 1000);

    sgd_device_lr(cpu);
    if (!dry) sgd_device_lr(gpu);
    if (!dry) bn_split(&opt);

    Run eager = {0}, graph = {0}, gdata = {0}, both = {0};
    run(&eager, &data, 0, 0, small ? 3 : 20);
    run(&gdata, &data, 0, 1, 0);
    run(&graph, &data, 1, 0, 0);
    run(&both, &data, 1, 1, small ? 3 : 40);
    // Replayed: all but the first step (eager, for the searches) and the short batch (if reached).
    CHECK(graph.replays >= steps - 2 && both.replays >= steps - 2, "graph replays: %ld and %ld of %d steps",
          graph.replays, both.replays, steps);
    printf("graph replays: %ld (graph), %ld (graph + gpu data) of %d steps + steady-state steps; the rest eager "
           "(the first step, short batches)\n", graph.replays, both.replays, steps);
    // The first capture, and the one forced halfway by an allocation.
    CHECK(graph.captures >= 2 && both.captures >= 2, "graph captures: %ld and %ld (want at least 2: the "
          "allocation halfway must make the trainer capture again)", graph.captures, both.captures);
    printf("%s graph captures: %ld (graph), %ld (graph + gpu data): captured again after an allocation\n",
           graph.captures >= 2 && both.captures >= 2 ? "ok  " : "FAIL", graph.captures, both.captures);
    compare_runs("--gpu-data on", &eager, &gdata);
    compare_runs("--cuda-graph on", &eager, &graph);
    compare_runs("--cuda-graph on --gpu-data on", &eager, &both);
    free(eager.params), free(graph.params), free(gdata.params), free(both.params);
    cifar10_free(&data);
    return test_finish("test_cuda_speed");
}
