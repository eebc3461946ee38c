// --gpu-data and --cuda-graph (train/speed.h).
//
// GPU-resident data: the train and test records are uploaded once; a batch is then n dataset
// indices uploaded (512 bytes at batch 128) and one backend call that crops, flips, normalizes and
// writes the labels, from the same definition the CPU loader uses (nn/augment.h). The loader
// still runs, for the order and the indices only (loader_set_indices_only).
//
// CUDA graph: after the first eager step with a full batch (it runs cuDNN's algorithm searches,
// which synchronize and may grow the workspace), the next full-batch step is captured once:
// zero-grad, forward, the loss seed copied from device memory, backward, and SGD reading its
// learning rate from device memory. The capture runs nothing; each step then writes its inputs and
// rate to the fixed addresses the graph reads and launches it. The activation arena gives every
// tensor the same address each step, which is what makes the replay valid. A batch of another size
// (the epoch's short last batch) runs eagerly; between eager steps and replays nothing else
// changes, because every buffer a step reads is either written earlier in the same step or is
// persistent state (parameters, momentum, running statistics, metrics). If an eager step of another
// shape made the backend allocate (a cuDNN search that regrew the shared workspace), the graph is
// captured again before its next replay: it would otherwise read a freed workspace.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/util.h"
#include "dist.h"
#include "settings.h"
#include "speed.h"
#include "step_timers.h"

static uint8_t* upload_records(const Trainer* t, const uint8_t* host, int count, const char* what) {
    const Backend* be = t->be;
    size_t bytes = (size_t)count * dataset_record_bytes(t->dataset);
    uint8_t* dev = be->alloc(bytes, what);
    be->upload(dev, host, bytes);
    return dev;
}

// auto -> possible; a value from the run's config.json (not given again) that this backend or process
// count cannot use -> off, so that a CUDA run resumes on the CPU; a value given on the command line
// stays, and speed_check refuses it where it cannot work.
static int resolve(int value, int given, int possible) {
    if (value < 0) return possible;
    return !given && value && !possible ? 0 : value;
}

// On by default since the first GPU run (an H200): a replayed step matched the eager one bit for bit,
// the GPU batches matched the CPU loader's (test_cuda_speed), and together they were the fastest
// setting (docs/results/gpu-h200-2026-12-04/speed.log). The CPU keeps its loader and eager steps.
void speed_resolve(Trainer* t) {
    Options* o = &t->opt;
    const int cuda = !strcmp(t->be->name, "cuda");
    const int one_batch = o->accum_steps * dist_size() == 1; // what trainer_setup_micro_batches demands
    o->gpu_data = resolve(o->gpu_data, OPTION_GIVEN(o, "--gpu-data"), cuda && one_batch);
    o->cuda_graph = resolve(o->cuda_graph, OPTION_GIVEN(o, "--cuda-graph"),
                            cuda && one_batch && !(o->profile && !o->bench_steps));
}

void speed_check(const Trainer* t) {
    const Backend* be = t->be;
    const Options* o = &t->opt;
    if (o->profile && !o->bench_steps && o->cuda_graph) {
        fprintf(stderr, "error: --profile times every op, which a replayed CUDA graph hides: use --cuda-graph "
                        "off (or --bench-steps N for the step time with graphs)\n");
        exit(2);
    }
    if (o->cuda_graph && !(be->graph_capture_begin && be->graph_capture_end && be->graph_launch &&
                           be->graph_destroy && be->sgd_step_device_lr && be->read_counters)) {
        fprintf(stderr, "error: --cuda-graph on: the %s backend cannot capture graphs (use --device cuda, "
                        "or --cuda-graph off)\n", be->name);
        exit(2);
    }
    if (o->gpu_data && !be->augment_batch) {
        fprintf(stderr, "error: --gpu-data on: the %s backend cannot build batches\n", be->name);
        exit(2);
    }
}

Speed* speed_get(Trainer* t) {
    if (t->speed) return t->speed;
    const Backend* be = t->be;
    const Options* o = &t->opt;
    speed_check(t);
    Speed* s = NN_CALLOC(1, sizeof(Speed));
    s->gpu_data = o->gpu_data;
    s->use_graph = o->cuda_graph;
    if (s->gpu_data) {
        // The loaders' counts (--limit-train/--limit-test): indices never exceed them.
        s->train_count = o->limit_train && o->limit_train < t->data.n_train ? o->limit_train : t->data.n_train;
        s->test_count = o->limit_test && o->limit_test < t->data.n_test ? o->limit_test : t->data.n_test;
        s->train_records = upload_records(t, t->data.train, s->train_count, "the training set (--gpu-data)");
        s->test_records = upload_records(t, t->data.test, s->test_count, "the test set (--gpu-data)");
        s->indices = be->alloc((size_t)o->batch * sizeof(int), "batch indices (--gpu-data)");
        loader_set_indices_only(t->train_loader, 1);
        loader_set_indices_only(t->test_loader, 1);
    }
    if (s->use_graph) {
        s->lr = be->alloc(sizeof(float), "the learning rate (--cuda-graph)");
        s->one = be->alloc(sizeof(float), "the loss seed (--cuda-graph)");
        const float one = 1.0f;
        be->upload(s->one, &one, sizeof(float));
    }
    t->speed = s;
    return s;
}

// Writes the batch into x (n, c, h, w) and labels (n), both backend memory.
static void build_batch(Trainer* t, const Batch* b, int train, float* x, int* labels) {
    Speed* s = t->speed;
    const Backend* be = t->be;
    be->upload(s->indices, b->indices, (size_t)b->n * sizeof(int));
    be->augment_batch(x, labels, train ? s->train_records : s->test_records, train ? s->train_count : s->test_count,
                      s->indices, b->n, t->opt.seed, b->epoch, train && t->opt.augment);
}

void speed_inputs(Trainer* t, const Batch* b, int train, Tensor** x, int** labels) {
    Engine* e = t->e;
    *x = engine_input(e, b->n, t->dataset->channels, t->dataset->height, t->dataset->width, NULL);
    *labels = engine_labels(e, b->n, NULL);
    build_batch(t, b, train, (*x)->data, *labels);
}

// Records one whole step into s->graph (nothing runs).
static void capture(Trainer* t, int n) {
    Speed* s = t->speed;
    Engine* e = t->e;
    const Backend* be = t->be;
    char err[512];
    if (be->graph_capture_begin(err, sizeof(err)) != 0) nn_fatal("--cuda-graph on: %s", err);
    engine_zero_grad(e);
    engine_begin(e, 1);
    Tensor* x = engine_input(e, n, t->dataset->channels, t->dataset->height, t->dataset->width, NULL);
    int* labels = engine_labels(e, n, NULL);
    Tensor* loss = forward_loss_from(t, x, labels);
    be->copy(loss->grad, s->one, sizeof(float));
    engine_backward_from(e, loss, NULL);
    be->sgd_step_device_lr(e->param_data, e->param_momentum, e->param_grad, e->num_param_floats, s->lr,
                           t->sgd.momentum, t->sgd.weight_decay, t->sgd.nesterov);
    s->graph = be->graph_capture_end();
    BackendCounters c;
    be->read_counters(&c);
    s->allocs_at_capture = c.allocs;
    s->captures++;
    s->x = x->data;
    s->labels = labels;
    s->graph_n = n;
}

int speed_graph_step(Trainer* t, const Batch* b, StepTimers* timers) {
    Speed* s = t->speed;
    if (!t->opt.cuda_graph || b->n != t->opt.batch || s->eager_full_steps == 0) return 0;
    const Backend* be = t->be;
    if (s->x) {
        // An eager step of another shape (a short batch, evaluation) may have run a cuDNN search
        // that regrew the shared workspace: the graph would then use freed memory. Capture again.
        BackendCounters c;
        be->read_counters(&c);
        if (c.allocs != s->allocs_at_capture) {
            be->graph_destroy(s->graph);
            s->graph = NULL, s->x = NULL;
        }
    }
    if (!s->x) capture(t, b->n);
    if (timers) stream_timer_start(&timers->step);
    if (s->gpu_data) {
        build_batch(t, b, 1, s->x, s->labels);
    } else {
        be->upload(s->x, b->images, (size_t)b->n * dataset_image_bytes(t->dataset) * sizeof(float));
        be->upload(s->labels, b->labels, (size_t)b->n * sizeof(int));
    }
    be->upload(s->lr, &t->sgd.lr, sizeof(float));
    be->graph_launch(s->graph);
    if (timers) stream_timer_stop(&timers->step);
    s->replays++;
    return 1;
}

void speed_destroy(Trainer* t) {
    Speed* s = t->speed;
    if (!s) return;
    const Backend* be = t->be;
    if (s->x) be->graph_destroy(s->graph);
    if (s->train_records) be->free(s->train_records);
    if (s->test_records) be->free(s->test_records);
    if (s->indices) be->free(s->indices);
    if (s->lr) be->free(s->lr);
    if (s->one) be->free(s->one);
    free(s);
    t->speed = NULL;
}
