// One training step and the evaluation pass: the only places the model, loss, backward and
// optimizer are strung together. --gpu-data and --cuda-graph (train/speed.c) branch off here; with
// both off (the default) the step is the plain eager one.
#include "../nn/profile.h"
#include "../nn/util.h"
#include "speed.h"
#include "step_timers.h"
#include "trainer.h"

// The model's loss on inputs already in the activation arena: x (n, 3, 32, 32), labels (n).
Tensor* forward_loss_from(Trainer* t, Tensor* x, int* labels) {
    Engine* e = t->e;
    Tensor* logits = mobilenet_forward(e, &t->model, x);
    Tensor* loss = cross_entropy(e, logits, labels, "loss");
    // Metrics accumulate in backend memory: nothing here waits for the device.
    if (!engine_skip(e))
        e->be->metrics_accumulate(t->loss_sum + (e->training ? METRICS_TRAIN : METRICS_EVAL),
                                  t->correct + (e->training ? METRICS_TRAIN : METRICS_EVAL), loss->data,
                                  logits->data, labels, x->n, t->model.num_classes);
    return loss;
}

// The model's loss on a batch: images (n, 3, 32, 32) and labels (n) from host memory (NULL in the
// planning pass, which only sizes memory).
Tensor* forward_loss(Trainer* t, int n, const float* images, const int* labels_host) {
    Engine* e = t->e;
    Tensor* x = engine_input(e, n, 3, 32, 32, images);
    int* labels = engine_labels(e, n, labels_host);
    return forward_loss_from(t, x, labels);
}

void train_step(Trainer* t, const Batch* b, StepTimers* timers) {
    Engine* e = t->e;
    Speed* s = t->opt.gpu_data || t->opt.cuda_graph ? speed_get(t) : NULL;
    t->sgd.lr = schedule_lr(&t->schedule, t->step);
    if (!(s && speed_graph_step(t, b, timers))) { // the eager step
        if (timers) stream_timer_start(&timers->step);
        engine_zero_grad(e);
        engine_begin(e, 1);
        Tensor* loss;
        if (s && s->gpu_data) {
            Tensor* x;
            int* labels;
            speed_inputs(t, b, 1, &x, &labels);
            loss = forward_loss_from(t, x, labels);
        } else {
            loss = forward_loss(t, b->n, b->images, b->labels);
        }
        engine_backward(e, loss);
        if (timers) stream_timer_start(&timers->optimizer);
        sgd_step(e, &t->sgd);
        if (timers) stream_timer_stop(&timers->optimizer), stream_timer_stop(&timers->step);
        if (s && b->n == t->opt.batch) s->eager_full_steps++;
    }
    t->step++;
    t->batch++;
    t->seen += b->n;
}

// Mean loss and accuracy (%) over the test set (or its first --limit-test images).
void evaluate(Trainer* t, double* loss, double* acc) {
    Speed* s = t->opt.gpu_data ? speed_get(t) : NULL;
    trainer_set_metrics(t, METRICS_EVAL, 0.0f, 0);
    long seen = 0;
    loader_start_epoch(t->test_loader, 0, 0);
    const Batch* b;
    while ((b = loader_next(t->test_loader))) {
        engine_begin(t->e, 0);
        if (s) {
            Tensor* x;
            int* labels;
            speed_inputs(t, b, 0, &x, &labels);
            forward_loss_from(t, x, labels);
        } else {
            forward_loss(t, b->n, b->images, b->labels);
        }
        seen += b->n;
    }
    double loss_sum;
    long correct;
    trainer_read_metrics(t, METRICS_EVAL, &loss_sum, &correct);
    *loss = seen ? loss_sum / seen : 0.0;
    *acc = seen ? 100.0 * correct / seen : 0.0;
}
