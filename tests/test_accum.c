// Gradient accumulation (train/step.c) gives the big batch's mean gradient. Batch norm normalizes each
// micro-batch by its own statistics, so in general the two differ; on a batch made of one set of
// images repeated, every micro-batch has the statistics of the whole batch and the two must agree to
// rounding. Checked through train_step itself (learning rate 0, so the step leaves the summed
// gradient in the arena) against one plain forward and backward of the whole batch: K = 1, 2 and 4,
// and a short last batch (12 images as
// micro-batches of 8 and 4, which must be weighted 2/3 and 1/3). Also: the epoch's loss sum and
// correct count agree, and --accum-steps that does not divide --batch is refused (exit 2, a message
// naming both flags) — that case runs in a child process.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../nn/util.h"
#include "../data/cifar10.h"
#include "../train/trainer.h"
#include "test_util.h"

#define SET 4     // distinct images in a batch
#define MAXN 16   // largest batch

static const Backend* be;

static void make(Trainer* t, int batch, int accum) {
    memset(t, 0, sizeof(*t));
    t->dataset = &CIFAR10_DATASET;
    t->opt.batch = batch;
    t->opt.accum_steps = accum;
    t->be = be;
    t->e = engine_create(be);
    model_build(&t->model, model_find("mobilenet"), t->e, 0.25f, 1, 10);
    engine_alloc_params(t->e);
    engine_init_params(t->e, 7);
    t->loss_sum = be->alloc(2 * sizeof(float), "metrics");
    t->correct = be->alloc(2 * sizeof(int), "metrics");
    be->zero(t->loss_sum, 2 * sizeof(float));
    be->zero(t->correct, 2 * sizeof(int));
    trainer_setup_micro_batches(t);
    engine_plan_begin(t->e);
    engine_backward(t->e, forward_loss(t, t->micro, NULL, NULL));
    engine_plan_end(t->e);
    t->sgd = (SGD){.lr = 0.0f};
    t->schedule = (Schedule){.kind = SCHEDULE_CONSTANT, .base_lr = 0.0f};
}

static void destroy(Trainer* t) {
    be->free(t->loss_sum);
    be->free(t->correct);
    if (t->grad_sum) be->free(t->grad_sum);
    model_free(&t->model);
    engine_destroy(t->e);
}

// One step on batch b with --batch `batch` and --accum-steps k through train_step, or (k = 0) the
// reference: the whole batch's mean loss, one forward and one backward, without train_step. Returns
// the gradient arena (grad: num_param_floats), the loss sum and the correct count.
static void step(float* grad, double* loss_sum, long* correct, const Batch* b, int batch, int k) {
    Trainer t;
    make(&t, batch, k ? k : 1);
    if (k) {
        train_step(&t, b, NULL);
    } else {
        engine_zero_grad(t.e);
        engine_begin(t.e, 1);
        engine_backward(t.e, forward_loss(&t, b->n, b->images, b->labels));
    }
    t.be->download(grad, t.e->param_grad, t.e->num_param_floats * sizeof(float));
    trainer_read_metrics(&t, METRICS_TRAIN, loss_sum, correct);
    destroy(&t);
}

static size_t param_floats(void) {
    Trainer t;
    make(&t, MAXN, 1);
    size_t n = t.e->num_param_floats;
    destroy(&t);
    return n;
}

static void compare(const char* what, const Batch* b, int batch, int k) {
    size_t n = param_floats();
    float* ref = NN_MALLOC(n * sizeof(float));
    float* got = NN_MALLOC(n * sizeof(float));
    double ref_loss, got_loss;
    long ref_correct, got_correct;
    step(ref, &ref_loss, &ref_correct, b, batch, 0);
    step(got, &got_loss, &got_correct, b, batch, k);
    double err = rel_error(got, ref, n);
    printf("%-44s ||g_accum - g_batch|| / ||g_batch|| = %.2e (||g|| = %.4g), loss sum %.6f vs %.6f\n", what,
           err, l2_norm(ref, n), got_loss, ref_loss);
    CHECK(err < 2e-5, "%s: the accumulated gradient differs from the big batch's by %.3e relative", what, err);
    CHECK(l2_norm(ref, n) > 1e-3, "%s: the gradient is implausibly small (%g)", what, l2_norm(ref, n));
    CHECK(fabs(got_loss - ref_loss) <= 1e-5 * fabs(ref_loss), "%s: loss sum %.7f vs %.7f", what, got_loss, ref_loss);
    CHECK(got_correct == ref_correct, "%s: %ld correct vs %ld", what, got_correct, ref_correct);
    free(ref);
    free(got);
}

int main(void) {
    char err[512];
    be = backend_open("cpu", &(BackendOptions){.threads = 2}, err, sizeof(err));
    if (!be) nn_fatal("%s", err);
    // SET random images (normalized-pixel scale) and labels, repeated to fill MAXN.
    float* images = NN_MALLOC((size_t)MAXN * CIFAR10_IMAGE * sizeof(float)); // (MAXN, 3, 32, 32)
    int labels[MAXN], indices[MAXN];
    Rng rng = rng_derive(3, 1, 4);
    fill_uniform(images, (size_t)SET * CIFAR10_IMAGE, -2.0f, 2.0f, &rng);
    for (int i = 0; i < MAXN; i++) {
        if (i >= SET) memcpy(images + (size_t)i * CIFAR10_IMAGE, images + (size_t)(i % SET) * CIFAR10_IMAGE, CIFAR10_IMAGE * sizeof(float));
        labels[i] = i < SET ? (int)(rng_uniform(&rng) * 10) % 10 : labels[i % SET];
        indices[i] = i;
    }
    Batch b = {.images = images, .labels = labels, .indices = indices, .n = MAXN};
    compare("batch 16, --accum-steps 1", &b, 16, 1);
    compare("batch 16, --accum-steps 2 (2 x 8)", &b, 16, 2);
    compare("batch 16, --accum-steps 4 (4 x 4)", &b, 16, 4);
    b.n = 12; // a short last batch of --batch 16: micro-batches of 8 and 4
    compare("short batch 12 of 16, --accum-steps 2 (8 + 4)", &b, 16, 2);

    // --accum-steps 3 does not divide --batch 16.
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        Trainer t;
        make(&t, 16, 3);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2, "--accum-steps 3 with --batch 16 was not refused with exit 2");
    free(images);
    return test_finish("test_accum");
}
