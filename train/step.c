// One training step and the evaluation pass: the only places the model, loss, backward and
// optimizer are strung together. --gpu-data and --cuda-graph (train/speed.c) branch off here; with
// both off (the default) the step is the plain eager one.
#include <stdio.h>
#include <stdlib.h>

#include "../nn/profile.h"
#include "../nn/util.h"
#include "dist.h"
#include "speed.h"
#include "step_timers.h"
#include "trainer.h"

// The model's loss on inputs already in the activation arena: x (n, c, h, w) of the data set, labels (n).
Tensor* forward_loss_from(Trainer* t, Tensor* x, int* labels) {
    Engine* e = t->e;
    Tensor* logits = model_forward(e, &t->model, x);
    Tensor* loss = cross_entropy(e, logits, labels, "loss");
    // Metrics accumulate in backend memory: nothing here waits for the device.
    if (!engine_skip(e))
        e->be->metrics_accumulate(t->loss_sum + (e->training ? METRICS_TRAIN : METRICS_EVAL),
                                  t->correct + (e->training ? METRICS_TRAIN : METRICS_EVAL), loss->data,
                                  logits->data, labels, x->n, t->model.num_classes);
    return loss;
}

// The model's loss on a batch: images (n, c, h, w) of the data set and labels (n) from host memory
// (NULL in the planning pass, which only sizes memory).
Tensor* forward_loss(Trainer* t, int n, const float* images, const int* labels_host) {
    Engine* e = t->e;
    const DatasetDef* d = t->dataset;
    Tensor* x = engine_input(e, n, d->channels, d->height, d->width, images);
    int* labels = engine_labels(e, n, labels_host);
    return forward_loss_from(t, x, labels);
}

void trainer_setup_micro_batches(Trainer* t) {
    const Options* o = &t->opt;
    int parts = o->accum_steps * dist_size();
    if ((o->gpu_data || o->cuda_graph) && parts > 1) {
        // Their device-side batch and captured step hold one whole batch per step and no all-reduce.
        fprintf(stderr, "error: --gpu-data and --cuda-graph run one process without --accum-steps; "
                "this run has --accum-steps %d x %d process%s\n", o->accum_steps, dist_size(),
                dist_size() > 1 ? "es" : "");
        exit(2);
    }
    if (o->batch % parts != 0) {
        if (dist_size() == 1)
            fprintf(stderr, "error: --accum-steps %d does not divide --batch %d: a batch runs as "
                    "--accum-steps micro-batches of equal size (see train --help)\n", o->accum_steps, o->batch);
        else
            fprintf(stderr, "error: --batch %d does not split into --accum-steps %d x %d processes = %d "
                    "micro-batches of equal size\n", o->batch, o->accum_steps, dist_size(), parts);
        exit(2);
    }
    t->accum = o->accum_steps;
    t->micro = o->batch / parts;
    if (t->accum > 1) t->grad_sum = t->be->alloc(t->e->num_param_floats * sizeof(float), "summed gradients (--accum-steps)");
}

// sum += g over the gradient arena, exactly (one rounded add per element). The backend's SGD pass
// with learning rate 0, momentum 1 and no weight decay is that add on its momentum argument:
// d = g + 0 * p = g; buf = 1 * buf + d; p -= 0 * buf (p is g itself, left as it was).
static void grad_sum_add(Engine* e, float* sum) {
    e->be->sgd_step(e->param_grad, sum, e->param_grad, e->num_param_floats, 0.0f, 1.0f, 0.0f, 0);
}

// One optimizer step on a global batch. This process runs its micro-batches (all of them in a single
// process), each from a zeroed gradient arena, and adds each one's gradients to grad_sum; then the
// processes' sums are summed (dist.h). Summing whole micro-batch gradients (rather than letting the
// backward accumulate into the arena) makes two processes (g0 + g1 by the all-reduce) agree to the
// bit with one process of two micro-batches (g0, then + g1).
// Each micro-batch's mean loss is weighted by its share of the batch, so the sum is the gradient of
// the whole batch's mean loss, as one big batch would give, except that batch norm normalizes each
// micro-batch by its own statistics (PyTorch's DDP without SyncBatchNorm does the same).
static void eager_step(Trainer* t, const Batch* b, Speed* s, StepTimers* timers) {
    Engine* e = t->e;
    // Micro-batches of this batch (a short last batch has fewer), and this process's: first..first+local-1.
    int total = (b->n + t->micro - 1) / t->micro;
    int first = dist_rank() * t->accum;
    int local = total - first < 0 ? 0 : total - first < t->accum ? total - first : t->accum;
    if (timers) stream_timer_start(&timers->step);
    dist_stats_begin(e);
    for (int k = 0; k < local; k++) {
        int start = (first + k) * t->micro;
        int n = b->n - start < t->micro ? b->n - start : t->micro;
        engine_zero_grad(e);
        engine_begin(e, 1);
        Tensor* loss;
        if (s && s->gpu_data) { // --gpu-data: one process, one micro-batch (the whole batch), on the device
            Tensor* x;
            int* labels;
            speed_inputs(t, b, 1, &x, &labels);
            loss = forward_loss_from(t, x, labels);
        } else {
            loss = forward_loss(t, n, b->images + (size_t)start * dataset_image_bytes(t->dataset), b->labels + start);
        }
        const float share = (float)n / (float)b->n; // exactly 1 for a single micro-batch
        engine_backward_from(e, loss, &share);
        if (local > 1 && k == 0) e->be->copy(t->grad_sum, e->param_grad, e->num_param_floats * sizeof(float));
        else if (local > 1) grad_sum_add(e, t->grad_sum);
    }
    if (local > 1) e->be->copy(e->param_grad, t->grad_sum, e->num_param_floats * sizeof(float));
    if (local == 0) engine_zero_grad(e); // nothing of this batch here: contribute zeros
    dist_stats_end(e, model_stats_momentum(&t->model), first, local, total);
    dist_allreduce_grads(e);
    if (timers) stream_timer_start(&timers->optimizer);
    sgd_step(e, &t->sgd);
    if (timers) stream_timer_stop(&timers->optimizer), stream_timer_stop(&timers->step);
    if (s && b->n == t->opt.batch) s->eager_full_steps++;
}

void train_step(Trainer* t, const Batch* b, StepTimers* timers) {
    // --gpu-data and --cuda-graph run one process with one micro-batch per step
    // (trainer_setup_micro_batches refuses the rest); a captured graph replays the whole step.
    Speed* s = t->opt.gpu_data || t->opt.cuda_graph ? speed_get(t) : NULL;
    t->sgd.lr = schedule_lr(&t->schedule, t->step);
    if (!(s && speed_graph_step(t, b, timers))) eager_step(t, b, s, timers);
    t->step++;
    t->batch++;
    t->seen += b->n;
    dist_check_step(t->e, t->step);
}

// Mean loss and accuracy (%) over the test set (or its first --limit-test images).
void evaluate(Trainer* t, double* loss, double* acc) {
    Speed* s = t->opt.gpu_data ? speed_get(t) : NULL;
    trainer_set_metrics(t, METRICS_EVAL, 0.0f, 0);
    long seen = 0;
    loader_start_epoch(t->test_loader, 0, 0);
    const Batch* b;
    while ((b = loader_next(t->test_loader))) {
        seen += b->n;
        if (b->index % dist_size() != dist_rank()) continue; // processes share the test set; metrics are summed
        engine_begin(t->e, 0);
        if (s) {
            Tensor* x;
            int* labels;
            speed_inputs(t, b, 0, &x, &labels);
            forward_loss_from(t, x, labels);
        } else {
            forward_loss(t, b->n, b->images, b->labels);
        }
        if (t->on_eval_batch) t->on_eval_batch(t, seen);
    }
    double loss_sum;
    long correct;
    trainer_read_metrics(t, METRICS_EVAL, &loss_sum, &correct);
    *loss = seen ? loss_sum / seen : 0.0;
    *acc = seen ? 100.0 * correct / seen : 0.0;
}
