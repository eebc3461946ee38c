// The ETAs of the progress line (train/progress.c) plan with the machine's current speed: the faster of
// the last whole epoch's rate and the last tenth of an epoch's, so a pause (Ctrl-Z, a suspended laptop)
// is forgotten once a clean tenth of an epoch has run after it, instead of dragging the process's mean
// rate down for the rest of the run. The whole-run ETA counts the training steps left (bounded by --max-steps) and one
// evaluation per epoch end still to come. Expected values are worked out by hand from those definitions.
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
    // The process's first epoch (or a resumed epoch's remainder): the mean until a tenth has run.
    progress_step(&p, &t, 3200, 6.4);
    near(progress_eta_rate(&p, 3200, 6.4), 500, "before a tenth of an epoch: the mean so far");
    // A pause in the first tenth (6400 images in 100 s), then a tenth at 500 img/s (6400 in 12.8 s):
    // the ETAs use 500, where the mean (12800 images in 112.8 s, 113 img/s) would make them 4.4x too long.
    progress_step(&p, &t, 6400, 100);
    near(progress_eta_rate(&p, 6400, 100), 64, "the first tenth, paused");
    progress_step(&p, &t, 12800, 112.8);
    near(progress_eta_rate(&p, 12800, 112.8), 500, "a pause is forgotten after a clean tenth");
    // That epoch ends at 50 img/s in all; the last tenth's 500 stays the faster.
    progress_add_training(&p, 50000, 1000, 1);
    near(progress_eta_rate(&p, 0, 0), 500, "after the paused epoch: the last tenth's rate");
    // The next epoch starts its tenths from zero: 1280 images are not yet a tenth.
    progress_step(&p, &t, 1280, 0.1);
    near(progress_eta_rate(&p, 1280, 0.1), 500, "a few steps measure nothing");
    // Its first tenth ran at 100 img/s: a slowdown, faster than the last whole epoch's 50: shown.
    progress_step(&p, &t, 6400, 64);
    near(progress_eta_rate(&p, 6400, 64), 100, "a slower tenth after a slower whole epoch");
    // That epoch ends at 500 img/s in all: the faster of 500 and the last tenth's 100.
    progress_add_training(&p, 50000, 100, 1);
    near(progress_eta_rate(&p, 0, 0), 500, "a slow tenth is covered by the last whole epoch");
    // A part of an epoch (a stop) is not a whole epoch's measurement.
    progress_add_training(&p, 20000, 400, 0);
    near(progress_eta_rate(&p, 0, 0), 500, "a part of an epoch does not replace the last whole one");

    // Left: 7 more epochs of 391 steps and 341 steps of this one = 3078 steps of 128 images at
    // 500 img/s = 787.968 s; epoch ends ahead: this one and 7 more = 8 evaluations. Before the first
    // evaluation one is estimated at a third of a training step per image: 10000 / 1500 s.
    near(progress_run_eta(&p, &t, 500), 787.968 + 8 * 10000 / 1500.0, "run ETA, no evaluation timed yet");
    p.eval_seconds = 10;
    near(progress_run_eta(&p, &t, 500), 787.968 + 80, "run ETA, evaluations at 10 s");
    // --max-steps 100 steps ahead: 100 steps (25.6 s) and the evaluation at the stop.
    t.opt.max_steps = t.step + 100;
    near(progress_run_eta(&p, &t, 500), 25.6 + 10, "run ETA, bounded by --max-steps");
    return test_finish("test_progress");
}
