// The training run: the engine and model, the optimizer and schedule, the data loaders, the run's
// position (epoch, batch, step) and its running metrics. train.c drives it; state.c saves and
// restores it.
#ifndef TRAIN_TRAINER_H
#define TRAIN_TRAINER_H

#include "../data/dataset.h"
#include "../data/loader.h"
#include "../models/model.h"
#include "../nn/sgd.h"
#include "options.h"

typedef struct Trainer {
    Options opt;
    const Backend* be;
    Engine* e;
    Model model; // through models/model.h only: the trainer knows no model's internals
    SGD sgd;
    Schedule schedule;
    const DatasetDef* dataset; // through data/dataset.h only: classes, image shape, its files
    DataSet data;
    Loader* train_loader;
    Loader* test_loader;
    int steps_per_epoch;
    // Each global batch of opt.batch images runs as micro-batches of `micro` images, `accum` of them
    // on this process (train/step.c; with several processes each takes its own group, train/dist.h).
    int accum, micro;
    float* grad_sum; // (num_param_floats) backend memory: the micro-batches' summed gradients (accum > 1)

    // Position of the run: the next step is batch `batch` of epoch `epoch`, optimizer step `step`.
    int epoch, batch;
    long step;

    // Running metrics in backend memory, so a step need not wait for the device; one slot for the
    // training epoch, one for evaluation (METRICS_TRAIN, METRICS_EVAL).
    float* loss_sum; // (2) sum over samples of the loss
    int* correct;    // (2) samples whose argmax equals the label
    long seen;       // samples counted so far in the current epoch (host side)
    double epoch_seconds; // training time spent in the current epoch (across resumes)
    // The run's wall-clock time so far, across resumes (training, evaluation, saving, start-up) is
    // nn_now() - run_start: a new run sets it when it starts, --resume moves it back by the time the
    // checkpoint carries (train.run_seconds).
    double run_start;
    int run_clock_restored; // --resume: the checkpoint carried train.run_seconds (older ones do not)
    struct Speed* speed;  // --gpu-data / --cuda-graph state (train/speed.c), NULL when both are off

    // Called after each evaluation batch with the test images done so far (the progress line); may be NULL.
    void (*on_eval_batch)(struct Trainer* t, long seen);
} Trainer;

// step.c: one training step, evaluation. trainer_setup_micro_batches checks that --batch splits
// into --accum-steps x processes micro-batches (exit 2 naming the flags if not) and sets accum, micro.
void trainer_setup_micro_batches(Trainer* t);
// step.c: one training step, evaluation. timers may be NULL (they time the step and its optimizer).
typedef struct StepTimers StepTimers;
Tensor* forward_loss(Trainer* t, int n, const float* images, const int* labels);
void train_step(Trainer* t, const Batch* b, StepTimers* timers);
void evaluate(Trainer* t, double* loss, double* acc);

// profile.c: --profile (prints the per-layer table, writes --profile-json); returns the exit code.
// With --bench-steps it runs run_bench (train/bench_train.c) instead.
int run_profile(Trainer* t);
int run_bench(Trainer* t);

// state.c: the checkpoint of a whole run.
void trainer_save(Trainer* t, const char* path);
// Restores weights, momentum, running statistics, the recipe and the run's position. Refuses a
// checkpoint from another model/width, and explicit recipe flags that contradict it (exit 2).
void trainer_resume(Trainer* t, const char* path);
// Before the model is built, from the checkpoint --resume or --init names: its width (meta.width,
// validated) into o->width unless --width was given (a different --width is refused), and the
// model's size at that width against the values the file's tensors hold (a file that cannot hold
// the model is refused before gigabytes are allocated for it).
void trainer_checkpoint_model(const char* path, Options* o);
// meta.dw_groups: the group size of each of the model's depthwise layers (a checkpoint and final.ckpt).
struct CkptWriter;
void trainer_put_dw_groups(struct CkptWriter* w, const Trainer* t);
// Every setting whose checkpoint record starts with prefix ("meta.", "recipe."), in the table's order,
// as the record's type: float32 for numbers with a fraction, the word for a choice, else int64.
void trainer_put_settings(struct CkptWriter* w, const Options* o, const char* prefix);
// Loads only the weights and running statistics (--init, --eval-only).
void trainer_load_weights(Trainer* t, const char* path);
// Frees everything the trainer holds (engine, model, metrics, loaders, data); returns rc, so that main can
// `return trainer_destroy(&t, rc)` and a leak checker finds nothing at exit.
int trainer_destroy(Trainer* t, int rc);
// The running metrics of a slot (waits for the device), and setting them (zero at an epoch's start).
enum { METRICS_TRAIN, METRICS_EVAL };
void trainer_read_metrics(Trainer* t, int slot, double* loss_sum, long* correct);
void trainer_set_metrics(Trainer* t, int slot, float loss_sum, int correct);

#endif
