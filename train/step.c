// One training step and the evaluation pass: the only places the model, loss, backward and
// optimizer are strung together.
#include "../nn/profile.h"
#include "../nn/util.h"
#include "step_timers.h"
#include "trainer.h"

// The model's loss on a batch: images (n, 3, 32, 32) and labels (n) from host memory (NULL in the
// planning pass, which only sizes memory).
Tensor* forward_loss(Trainer* t, int n, const float* images, const int* labels_host) {
    Engine* e = t->e;
    Tensor* x = engine_input(e, n, 3, 32, 32, images);
    int* labels = engine_labels(e, n, labels_host);
    Tensor* logits = mobilenet_forward(e, &t->model, x);
    Tensor* loss = cross_entropy(e, logits, labels, "loss");
    // Metrics accumulate in backend memory: nothing here waits for the device.
    if (!engine_skip(e))
        e->be->metrics_accumulate(t->loss_sum + (e->training ? METRICS_TRAIN : METRICS_EVAL),
                                  t->correct + (e->training ? METRICS_TRAIN : METRICS_EVAL), loss->data, logits->data, labels, n, t->model.num_classes);
    return loss;
}

void train_step(Trainer* t, const Batch* b, StepTimers* timers) {
    Engine* e = t->e;
    if (timers) stream_timer_start(&timers->step);
    t->sgd.lr = schedule_lr(&t->schedule, t->step);
    engine_zero_grad(e);
    engine_begin(e, 1);
    Tensor* loss = forward_loss(t, b->n, b->images, b->labels);
    engine_backward(e, loss);
    if (timers) stream_timer_start(&timers->optimizer);
    sgd_step(e, &t->sgd);
    if (timers) stream_timer_stop(&timers->optimizer), stream_timer_stop(&timers->step);
    t->step++;
    t->batch++;
    t->seen += b->n;
}

// Mean loss and accuracy (%) over the test set (or its first --limit-test images).
void evaluate(Trainer* t, double* loss, double* acc) {
    trainer_set_metrics(t, METRICS_EVAL, 0.0f, 0);
    long seen = 0;
    loader_start_epoch(t->test_loader, 0, 0);
    const Batch* b;
    while ((b = loader_next(t->test_loader))) {
        engine_begin(t->e, 0);
        forward_loss(t, b->n, b->images, b->labels);
        seen += b->n;
        if (t->on_eval_batch) t->on_eval_batch(t, seen);
    }
    double loss_sum;
    long correct;
    trainer_read_metrics(t, METRICS_EVAL, &loss_sum, &correct);
    *loss = seen ? loss_sum / seen : 0.0;
    *acc = seen ? 100.0 * correct / seen : 0.0;
}
