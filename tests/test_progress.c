// The ETAs of the progress line (train/progress.c) plan with the machine's current speed: the faster of
// the last whole epoch's rate and the current epoch's (once it has run a tenth of an epoch), so a pause
// (Ctrl-Z, a suspended laptop) is forgotten as soon as either has recovered, instead of dragging the
// process's mean rate down for the rest of the run. The whole-run ETA counts the training steps left
// (bounded by --max-steps) and one evaluation per epoch end still to come. Expected values are worked
// out by hand from those definitions.
#include <math.h>
#include <string.h>

#include "../train/progress.h"
#include "test_util.h"

static void near(double got, double want, const char* what) { // each case's message names it
    CHECK(fabs(got - want) <= 1e-9 * fabs(want), "%s: %.9g, expected %.9g", what, got, want);
}

int main(void) {
    Trainer t;
    memset(&t, 0, sizeof(t));
    t.opt.epochs = 10, t.opt.batch = 128;
    t.steps_per_epoch = 391;                          // a tenth of an epoch: 5004.8 images
    t.epoch = 2, t.batch = 50, t.step = 2 * 391 + 50; // in the third epoch, 50 steps done

    Progress p;
    memset(&p, 0, sizeof(p));
    p.n_test = 10000;
    near(progress_eta_rate(&p, &t, 6400, 12.8), 500, "a fresh run's first epoch: its rate so far");
    // Epoch 1 held a long pause: 50 img/s.
    progress_add_training(&p, 50000, 1000, 1);
    near(progress_eta_rate(&p, &t, 6400, 12.8), 500, "after a paused epoch: this epoch's rate, once settled");
    near(progress_eta_rate(&p, &t, 1280, 0.1), 50, "this epoch's rate over a few steps does not count");
    // Epoch 2 ran at 500 img/s; epoch 3 is paused so far (6400 images in 100 s): the ETAs use 500,
    // where the process's mean (106400 images in 1200 s, 89 img/s) would make them 5.6 times too long.
    progress_add_training(&p, 50000, 100, 1);
    near(progress_eta_rate(&p, &t, 6400, 100), 500, "a pause in this epoch: the last whole epoch's rate");
    // A part of an epoch (a stop) is not a whole epoch's measurement.
    progress_add_training(&p, 20000, 400, 0);
    near(progress_eta_rate(&p, &t, 0, 0), 500, "a part of an epoch does not replace the last whole one");

    // Left: 7 more epochs of 391 steps and 341 steps of this one = 3078 steps of 128 images at
    // 500 img/s = 787.968 s; epoch ends ahead: this one and 7 more = 8 evaluations. Before the first
    // evaluation one is estimated at a third of a training step per image: 10000 / 1500 s.
    near(progress_run_eta(&p, &t, 500), 787.968 + 8 * 10000 / 1500.0, "run ETA, no evaluation timed yet");
    p.eval_seconds = 10;
    near(progress_run_eta(&p, &t, 500), 787.968 + 80, "run ETA, evaluations at 10 s");
    // --max-steps 100 steps ahead: 100 steps (25.6 s) and the evaluation at the stop.
    t.opt.max_steps = t.step + 100;
    near(progress_run_eta(&p, &t, 500), 25.6 + 10, "run ETA, bounded by --max-steps");

    // A resumed run: its first (partial) epoch's 20000 images in 50 s, then this epoch's 1000 in 5 s:
    // the mean until a whole epoch has run in this process.
    Progress r;
    memset(&r, 0, sizeof(r));
    progress_add_training(&r, 20000, 50, 0);
    near(progress_eta_rate(&r, &t, 1000, 5), 21000 / 55.0, "resumed: the mean until a whole epoch");
    progress_add_training(&r, 50000, 125, 1);
    near(progress_eta_rate(&r, &t, 1000, 5), 400, "resumed: then the whole epoch's rate");
    return test_finish("test_progress");
}
