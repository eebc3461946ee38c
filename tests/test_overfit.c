// Learning works: a width-0.25 MobileNet (with diagonalwise depthwise layers, g = 32) must overfit
// 64 fixed real CIFAR-10 training images, the training loss falling below 0.05 within 300 full-batch
// SGD steps. Also checks that steady-state steps allocate nothing and reuse the same addresses.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../data/cifar10.h"
#include "../data/loader.h"
#include "../models/mobilenet.h"
#include "../nn/sgd.h"
#include "../nn/util.h"
#include "test_util.h"

#define N 64

int main(void) {
    char why[600];
    const char* path = test_data_path(why, sizeof(why));
    if (!path) {
        printf("skipped: %s\n", why);
        return TEST_SKIP;
    }
    char err[2048];
    Cifar10 ds;
    if (cifar10_load(&ds, path, err, sizeof(err)) != 0) nn_fatal("%s", err);
    float* images = NN_MALLOC(sizeof(float) * N * 3 * 32 * 32); // (64, 3, 32, 32)
    int labels[N];
    for (int i = 0; i < N; i++) {
        const uint8_t* rec = ds.train + (size_t)i * CIFAR10_RECORD;
        cifar10_decode(images + (size_t)i * 3 * 32 * 32, rec, 0, 0, 0);
        labels[i] = rec[0];
    }

    BackendOptions opt = {0};
    const Backend* be = backend_open("cpu", &opt, err, sizeof(err));
    Engine* e = engine_create(be);
    MobileNet net;
    mobilenet_init(&net, e, 0.25f, 32, 10);
    engine_alloc_params(e);
    engine_init_params(e, 1);
    SGD sgd = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f};

    engine_plan_begin(e);
    Tensor* loss = cross_entropy(e, mobilenet_forward(e, &net, engine_input(e, N, 3, 32, 32, NULL)),
                                 engine_labels(e, N, NULL), "loss");
    engine_backward(e, loss);
    engine_plan_end(e);
    size_t allocs = e->alloc_calls;

    float first = 0, last = 0;
    float* first_data = NULL;
    int step;
    double t0 = nn_now();
    for (step = 0; step < 300; step++) {
        engine_begin(e, 1);
        Tensor* x = engine_input(e, N, 3, 32, 32, images);
        loss = cross_entropy(e, mobilenet_forward(e, &net, x), engine_labels(e, N, labels), "loss");
        if (step == 0) first_data = loss->data;
        CHECK(loss->data == first_data, "step %d: the loss moved to another address", step);
        engine_zero_grad(e);
        engine_backward(e, loss);
        sgd_step(e, &sgd);
        last = engine_read_scalar(e, loss);
        if (step == 0) first = last;
        if (step % 25 == 0) printf("  step %3d  loss %.4f\n", step, last);
        if (!isfinite(last) || last < 0.05f) break;
    }
    printf("loss %.4f -> %.4f after %d steps (%.1f s)\n", first, last, step + 1, nn_now() - t0);
    CHECK(first > 1.5f, "initial loss %.3f is implausibly low for 10 classes", first);
    CHECK(last < 0.05f, "did not overfit 64 images: loss %.4f after %d steps", last, step + 1);
    CHECK(e->alloc_calls == allocs, "steady-state steps allocated backend memory (%zu calls)", e->alloc_calls - allocs);
    engine_destroy(e);
    free(images);
    cifar10_free(&ds);
    return test_finish("test_overfit");
}
