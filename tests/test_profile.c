// The profiler's bookkeeping: every op of a MobileNet step appears once, in order, with non-negative
// times; the multiply-adds it counts equal the model's own count; the per-op times add up to no more
// than the measured step and to most of it; a step's total cost (profile_step_cost) matches the
// model's count (its ops described for one image, models/model_describe.c) and the convolution
// formula for the stem; the profiler stays attached across steps without
// disturbing the results; the layers that compute in bf16 under --precision bf16 are the conv, depthwise
// and linear ones. And --dw-group auto chooses a valid group size for every layer.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/mobilenet.h"
#include "../models/model.h"
#include "../nn/profile.h"
#include "../nn/util.h"
#include "test_util.h"

#define BATCH 8

static Tensor* step(Engine* e, MobileNet* m, const float* images, const int* labels) {
    engine_zero_grad(e);
    engine_begin(e, 1);
    Tensor* loss = cross_entropy(e, mobilenet_forward(e, m, engine_input(e, BATCH, 3, 32, 32, images)),
                                 engine_labels(e, BATCH, labels), "loss");
    engine_backward(e, loss);
    return loss;
}

int main(void) {
    char err[256];
    BackendOptions opt = {0};
    const Backend* be = backend_open("cpu", &opt, err, sizeof(err));
    Engine* e = engine_create(be);
    MobileNet m;
    mobilenet_init(&m, e, 0.125f, 32, 10);

    // --dw-group auto: every chosen g divides its layer's channels and is one of the candidates.
    Model handle = {.def = &MOBILENET_MODEL, .self = &m, .width = 0.125f, .num_classes = 10};
    model_autotune(&handle, be, BATCH, stdout);
    for (int i = 0; i < MOBILENET_BLOCKS; i++) {
        const DepthwiseConv2d* dw = &m.blocks[i].conv1;
        int g = dw->g, power = g > 0 && (g & (g - 1)) == 0;
        CHECK(g >= 1 && g <= dw->c && dw->c % g == 0, "%s: auto chose g = %d for %d channels", dw->name, g, dw->c);
        CHECK(power || g == dw->c || g == depthwise_group_size(dw->c, 1 << 30), "%s: g = %d is no candidate", dw->name, g);
    }

    engine_alloc_params(e);
    engine_init_params(e, 3);
    engine_plan_begin(e);
    step(e, &m, NULL, NULL);
    engine_plan_end(e);
    float* images = NN_MALLOC(sizeof(float) * BATCH * 3 * 32 * 32);
    int labels[BATCH];
    Rng rng = rng_derive(1, 2, 3);
    fill_uniform(images, (size_t)BATCH * 3 * 32 * 32, -2, 2, &rng);
    for (int i = 0; i < BATCH; i++) labels[i] = i % 10;

    // The loss without the profiler, then with it: identical.
    float plain = engine_read_scalar(e, step(e, &m, images, labels));
    Profiler* p = profiler_create(be, e->tape_capacity);
    p->active = 1;
    e->profiler = p;
    StreamTimer timer;
    stream_timer_init(&timer, be);
    double step_ms = 0;
    float profiled = 0;
    const int steps = 3;
    for (int s = 0; s < steps; s++) {
        stream_timer_start(&timer);
        Tensor* loss = step(e, &m, images, labels);
        stream_timer_stop(&timer);
        step_ms += stream_timer_ms(&timer);
        profiler_collect(p, e);
        profiled = engine_read_scalar(e, loss);
    }
    CHECK(plain == profiled, "profiling changed the loss: %.9g vs %.9g", plain, profiled);

    // One row per tape entry, in order, named like the layers.
    CHECK(p->entries == e->tape_len && p->steps == steps, "profiler saw %d ops in %d steps; the tape has %d",
          p->entries, p->steps, e->tape_len);
    double sum = 0, macs = 0;
    int depthwise = 0, convs = 0;
    for (int i = 0; i < p->entries; i++) {
        const OpProfile* op = &p->ops[i];
        CHECK(!strcmp(op->name, e->tape[i].name), "row %d is '%s', the tape has '%s'", i, op->name, e->tape[i].name);
        CHECK(op->fwd_ms >= 0 && op->bwd_ms >= 0, "%s: negative time", op->name);
        CHECK(op->bytes_fwd > 0, "%s: no bytes counted", op->name);
        sum += op->fwd_ms + op->bwd_ms;
        macs += op->macs_fwd;
        if (!strcmp(op->kind, "depthwise")) {
            depthwise++;
            CHECK(op->g >= 1 && op->macs_fwd == op->macs_true * op->g, "%s: g %d, macs %.0f vs %.0f", op->name,
                  op->g, op->macs_fwd, op->macs_true);
        }
        convs += !strcmp(op->kind, "conv2d");
        // What --profile and --print-model show as the layer's arithmetic under --precision bf16: the
        // ops whose products the backends round to bf16 (conv, depthwise, linear), and only those.
        int gemm = !strcmp(op->kind, "conv2d") || !strcmp(op->kind, "depthwise") || !strcmp(op->kind, "linear");
        CHECK(op->bf16_products == gemm, "%s (%s): bf16_products %d", op->name, op->kind, op->bf16_products);
    }
    CHECK(depthwise == MOBILENET_BLOCKS && convs == MOBILENET_BLOCKS + 1, "%d depthwise and %d conv rows", depthwise, convs);
    long model_params, model_macs, model_executed;
    model_count(&handle, 3, 32, 32, &model_params, &model_macs, &model_executed); // its described ops, one image
    CHECK(macs == (double)model_executed * BATCH, "profiled forward multiply-adds %.0f, the model counts %ld x %d",
          macs, model_executed, BATCH);
    // A step's cost (what --bench-steps reports): forward, data gradient and filter gradient of every
    // layer, less the stem's data gradient (the images need none); DR executes g times the depthwise
    // work; and every op moves some bytes.
    StepCost cost = profile_step_cost(e);
    double stem = (double)BATCH * m.conv1.c_out * 32 * 32 * m.conv1.c_in * m.conv1.k * m.conv1.k;
    CHECK(cost.macs_model == 3.0 * model_macs * BATCH - stem, "step cost: %.0f model multiply-adds, expected "
          "3 x %ld x %d - %.0f", cost.macs_model, model_macs, BATCH, stem);
    CHECK(cost.macs_executed == 3.0 * model_executed * BATCH - stem, "step cost: %.0f executed multiply-adds, "
          "expected 3 x %ld x %d - %.0f", cost.macs_executed, model_executed, BATCH, stem);
    CHECK(cost.bytes > 0, "step cost: no bytes");
    CHECK(sum <= step_ms * 1.001 + 0.01, "op times (%.3f ms) exceed the measured steps (%.3f ms)", sum, step_ms);
    CHECK(sum >= 0.8 * step_ms, "op times (%.3f ms) cover less than 80%% of the steps (%.3f ms)", sum, step_ms);
    printf("profile: %d ops, %.3f ms of %.3f ms attributed over %d steps\n", p->entries, sum, step_ms, steps);
    stream_timer_free(&timer);
    profiler_destroy(p);
    engine_destroy(e);
    free(images);
    return test_finish("test_profile");
}
