// What ./train shows while it runs: per epoch a progress line (step, loss, accuracy, img/s, the
// epoch's ETA, and the whole run's elapsed time and ETA), a progress line during evaluation, and at
// the end a summary (final and best test accuracy, total time, mean throughput, where the files are).
// On a terminal the lines redraw in place; otherwise plain lines about ten times per epoch.
#ifndef TRAIN_PROGRESS_H
#define TRAIN_PROGRESS_H

#include "trainer.h"

typedef struct Progress {
    int tty;
    double start;                  // nn_now() when training began in this process
    double last_print;
    double train_images, train_seconds; // this process's training throughput, for the summary
    double whole_epoch_rate;       // img/s of the last whole epoch this process trained (0 = none yet)
    double recent_rate;            // img/s over the last tenth of an epoch of training (0 = none yet)
    double window_images, window_seconds; // where the tenth being measured began, in this epoch
    double eval_seconds;           // the last evaluation's duration (0 = none yet)
    double eval_start;
    int n_test;
    // For the summary (seeded from the log's earlier epochs on --resume).
    double best_acc, final_acc;
    int best_epoch, final_epoch, epochs_logged;
    int resumed;          // --resume: the summary also shows this process's share of the time
} Progress;

// On --resume, seeds the summary from the log, and the run's clock from it when the checkpoint
// predates train.run_seconds.
void progress_init(Progress* p, Trainer* t, const char* log_path, int resumed);
// A training line after `images` images in `seconds` of this epoch in this process; `force` prints
// regardless of the rate limit (last batch, stop).
void progress_train(Progress* p, Trainer* t, double images, double seconds, int force);
void progress_eval_begin(Progress* p);
void progress_eval_batch(Trainer* t, long seen); // Trainer.on_eval_batch
void progress_eval_end(Progress* p, Trainer* t, double test_acc);
// An epoch's training (or its part in this process) is over; `whole`: it ran from its first batch to
// its last in this process, so its rate is a measurement the ETAs can use.
void progress_add_training(Progress* p, double images, double seconds, int whole);
// After every training step: the epoch has trained `images` in `seconds` so far in this process
// (progress_train calls it; it measures the rate over each tenth of an epoch).
void progress_step(Progress* p, const Trainer* t, double images, double seconds);
// The rate both ETAs plan with at that point.
double progress_eta_rate(const Progress* p, double images, double seconds);
// Seconds left in the whole run at `rate` img/s, evaluations included.
double progress_run_eta(const Progress* p, const Trainer* t, double rate);
// The end-of-run summary. weights: the final weights file (or NULL), checkpoint, log: paths or "".
void progress_summary(const Progress* p, const Trainer* t, const char* weights, const char* checkpoint,
                      const char* log, const char* run_dir);
void format_duration(char* buf, size_t len, double seconds);

#endif
