// Guards of a training run: checks that make every failure stop the run early and leave a valid
// run behind, instead of training for hours into a path that cannot be written or saving a
// checkpoint full of NaN. Each prints a message naming what went wrong (flag, file, epoch, step) and
// exits non-zero; none changes the run when all is well.
#ifndef TRAIN_GUARD_H
#define TRAIN_GUARD_H

#include <stdio.h>

#include "rundir.h"
#include "trainer.h"

// At start-up, once rundir_prepare has resolved every path (given, or from the run's config.json),
// before anything slow: --resume and --init are regular files where they exist; the checkpoint and
// final.ckpt can be saved (regular files or absent, their PATH.tmp too, in a writable directory);
// the log is a regular file that can be written, or can be created. A FIFO, a device or a directory
// is refused by name, and so is one path given for two of the run's files (--log F --checkpoint F,
// the log on the data archive or config.json).
void guard_paths(const Options* o, const RunDir* r);

// One training process per checkpoint: takes an exclusive lock on CHECKPOINT.lock (held until the
// process ends; the file is removed at exit) or stops (exit 1) naming the process that holds it, so
// a second `--resume` of a running run cannot overwrite its checkpoint, config and log. Returns 0
// when the checkpoint's directory does not exist yet (a new run directory: call again once it does),
// 1 when the lock is held (or the file system has no locks: a warning) or the run saves no checkpoint.
int guard_lock(const Options* o);

// Right after --resume or --init loaded a checkpoint (and before --eval-only evaluates it): every
// parameter, SGD momentum and running statistic it holds is finite. Otherwise it stops (exit 1)
// naming the file and the first tensor affected: NaN weights are not "the last good state" to go
// on from, and evaluating them gives garbage (ReLU turns NaN into 0, so even the loss can be finite).
void guard_loaded_weights(Trainer* t, const char* path);

// Where the training loss is read: a NaN or infinite running sum stops the run (exit 1) with the
// epoch and the step; the checkpoint on disk is the last good one.
void guard_train_loss(Trainer* t, double loss_sum);

// After training steps, before anything is saved: every parameter, SGD momentum and running
// statistic is finite. A NaN or infinity stops the run (exit 1) with the epoch, the step and the
// first tensor affected; the checkpoint on disk is the last good one.
void guard_weights(Trainer* t);

// After an evaluation: a NaN or infinite test loss stops the run the same way (exit 1), before the
// epoch's checkpoint is written.
void guard_test_loss(Trainer* t, double test_loss);

// The first non-finite value among the engine's parameters, momentum and buffers: returns 1 and
// writes "tensor 'NAME' (element I: VALUE)" into what, or returns 0 if everything is finite.
int guard_find_nonfinite(Engine* e, char* what, size_t len);

#endif
