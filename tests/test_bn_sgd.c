// Batch norm and SGD against values computed by hand with PyTorch's rules (nn.BatchNorm2d's running
// variance is the unbiased n/(n-1) one; torch.optim.SGD's momentum, Nesterov and weight decay), and the
// learning-rate schedules at their landmarks.
#include <math.h>
#include <stdio.h>

#include "../nn/ops.h"
#include "../nn/sgd.h"
#include "../nn/util.h"
#include "test_util.h"

static const Backend* be;

static void near(double got, double want, double tol, const char* what) {
    CHECK(fabs(got - want) <= tol, "%s: got %.9g, expected %.9g", what, got, want);
}

// x: (n=2, c=2, h=1, w=2). Channel 0 holds 1, 2 | 3, 4; channel 1 holds -1, 0 | 5, 8.
static void test_batchnorm(int relu) {
    Engine* e = engine_create(be);
    int dims[4] = {2, 2, 1, 2};
    Tensor* x = engine_param(e, "x", 4, dims, INIT_ZEROS, 0.0f);
    BatchNorm2d bn;
    batchnorm2d_init(&bn, e, "bn", 2);
    engine_alloc_params(e);
    engine_init_params(e, 1); // gamma 1, beta 0, running mean 0, var 1
    const float xs[8] = {1, 2, -1, 0, 3, 4, 5, 8};
    const float gamma[2] = {2.0f, -0.5f}, beta[2] = {0.5f, 1.0f};
    engine_write(e, x, xs);
    engine_write(e, bn.weight, gamma);
    engine_write(e, bn.bias, beta);
    engine_plan_begin(e);
    batchnorm2d(e, &bn, x, relu);
    engine_plan_end(e);

    // Hand computation. Channel 0: mean 2.5, biased var 1.25, unbiased 5/3.
    // Channel 1: values -1, 0, 5, 8: mean 3, biased var (16 + 9 + 4 + 25) / 4 = 13.5, unbiased 18.
    const double mean[2] = {2.5, 3.0}, var[2] = {1.25, 13.5}, uvar[2] = {5.0 / 3.0, 18.0};
    engine_begin(e, 1);
    Tensor* y = batchnorm2d(e, &bn, x, relu);
    float yh[8], rm[2], rv[2];
    engine_read(e, yh, y);
    engine_read(e, rm, bn.running_mean);
    engine_read(e, rv, bn.running_var);
    for (int i = 0; i < 8; i++) {
        int c = (i / 2) % 2;
        double want = (xs[i] - mean[c]) / sqrt(var[c] + 1e-5) * gamma[c] + beta[c];
        if (relu && want < 0) want = 0;
        near(yh[i], want, 1e-5, relu ? "train output (relu)" : "train output");
    }
    for (int c = 0; c < 2; c++) {
        near(rm[c], 0.9 * 0.0 + 0.1 * mean[c], 1e-6, "running_mean after one step");
        near(rv[c], 0.9 * 1.0 + 0.1 * uvar[c], 1e-6, "running_var after one step (unbiased)");
    }
    // Evaluation uses the running statistics.
    engine_begin(e, 0);
    y = batchnorm2d(e, &bn, x, relu);
    engine_read(e, yh, y);
    for (int i = 0; i < 8; i++) {
        int c = (i / 2) % 2;
        double m = 0.1 * mean[c], v = 0.9 + 0.1 * uvar[c];
        double want = (xs[i] - m) / sqrt(v + 1e-5) * gamma[c] + beta[c];
        if (relu && want < 0) want = 0;
        near(yh[i], want, 1e-5, "eval output");
    }
    // Evaluation must not move the running statistics.
    float rm2[2];
    engine_read(e, rm2, bn.running_mean);
    near(rm2[0], rm[0], 0, "running_mean unchanged by eval");
    engine_destroy(e);
}

// One parameter p = 1 with gradient 0.5, lr 0.1, weight decay 0.01.
static void test_sgd(float momentum, int nesterov, const double* want, const char* what) {
    Engine* e = engine_create(be);
    int dims[1] = {1};
    Tensor* p = engine_param(e, "p", 1, dims, INIT_ONES, 0.0f);
    engine_alloc_params(e);
    engine_init_params(e, 1);
    SGD opt = {.lr = 0.1f, .momentum = momentum, .weight_decay = 0.01f, .nesterov = nesterov};
    const float g = 0.5f;
    for (int step = 0; step < 3; step++) {
        e->be->upload(p->grad, &g, sizeof(float));
        sgd_step(e, &opt);
        float v;
        engine_read(e, &v, p);
        char label[96];
        snprintf(label, sizeof(label), "%s, step %d", what, step + 1);
        near(v, want[step], 1e-6, label);
    }
    engine_destroy(e);
}

static void test_schedules(void) {
    Schedule cosine = {.kind = SCHEDULE_COSINE, .base_lr = 0.1f, .total_steps = 100};
    near(schedule_lr(&cosine, 0), 0.1, 1e-7, "cosine at 0");
    near(schedule_lr(&cosine, 50), 0.05, 1e-7, "cosine at half");
    near(schedule_lr(&cosine, 25), 0.1 * (1 + cos(M_PI / 4)) / 2, 1e-7, "cosine at a quarter");
    near(schedule_lr(&cosine, 100), 0.0, 1e-7, "cosine at the end");
    Schedule warm = {.kind = SCHEDULE_COSINE, .base_lr = 0.1f, .total_steps = 110, .warmup_steps = 10};
    near(schedule_lr(&warm, 0), 0.01, 1e-7, "warm-up first step");
    near(schedule_lr(&warm, 9), 0.1, 1e-7, "warm-up last step");
    near(schedule_lr(&warm, 60), 0.05, 1e-7, "cosine after warm-up, half way");
    Schedule step = {.kind = SCHEDULE_STEP, .base_lr = 0.1f, .total_steps = 100, .step_size = 30, .gamma = 0.1f};
    near(schedule_lr(&step, 29), 0.1, 1e-7, "step before the first drop");
    near(schedule_lr(&step, 30), 0.01, 1e-7, "step after the first drop");
    near(schedule_lr(&step, 65), 0.001, 1e-8, "step after the second drop");
}

int main(void) {
    char err[256];
    BackendOptions opt = {0};
    be = backend_open("cpu", &opt, err, sizeof(err));
    if (!be) nn_fatal("%s", err);
    test_batchnorm(0);
    test_batchnorm(1);
    // By hand: d = g + wd p; buf = m buf + d; step = nesterov ? d + m buf : buf; p -= lr step.
    // momentum 0.9: d1 = .51, buf1 = .51, p1 = .949; d2 = .50949, buf2 = .96849, p2 = .852151;
    //   d3 = .50852151, buf3 = 1.38016251, p3 = .714134749
    const double plain[3] = {0.949, 0.852151, 0.714134749};
    test_sgd(0.9f, 0, plain, "SGD momentum 0.9");
    // nesterov: step1 = .51 + .9 * .51 = .969, p1 = .9031; d2 = .509031, buf2 = .968031,
    //   step2 = .509031 + .8712279 = 1.3802589, p2 = .76507411; d3 = .5076507411,
    //   buf3 = .8712279 + .5076507411 = 1.3788786411, step3 = .5076507411 + 1.24099077699 = 1.74864151809,
    //   p3 = .590209958191
    const double nest[3] = {0.9031, 0.76507411, 0.590209958};
    test_sgd(0.9f, 1, nest, "SGD nesterov");
    // no momentum: p1 = 1 - .1 * .51 = .949; p2 = .949 - .1 * .50949 = .898051; p3 = .898051 - .1 * .50898051 = .847152949
    const double sgd[3] = {0.949, 0.898051, 0.847152949};
    test_sgd(0.0f, 0, sgd, "SGD without momentum");
    test_schedules();
    return test_finish("test_bn_sgd");
}
