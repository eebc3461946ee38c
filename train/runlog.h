// The run's JSON-lines log: one object per epoch (train and test loss and accuracy, lr, time,
// throughput) and, with --log-every N, one per N steps (the running training loss and accuracy).
// A new run creates or overwrites the file; a resumed run appends to it. Every write is checked: a
// full disk or a vanished file stops the run with a message naming the file (exit 1).
#ifndef TRAIN_RUNLOG_H
#define TRAIN_RUNLOG_H

#include <stdio.h>

#include "trainer.h"

typedef struct RunLog {
    FILE* f; // NULL: no log
    char path[PATH_LEN];
} RunLog;

// Opens o->log ("" = no log): appends when append, else truncates.
void runlog_open(RunLog* l, const char* path, int append);
void runlog_epoch(RunLog* l, const Trainer* t, double train_loss, double train_acc, double test_loss,
                  double test_acc, double seconds, double img_s, int partial);
void runlog_step(RunLog* l, const Trainer* t, double loss, double acc);
void runlog_close(RunLog* l);

#endif
