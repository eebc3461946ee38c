// Stream timers around a training step and its optimizer, used by --profile.
#ifndef TRAIN_STEP_TIMERS_H
#define TRAIN_STEP_TIMERS_H

#include "../nn/profile.h"

struct StepTimers {
    StreamTimer step, optimizer;
};

#endif
