// SGD with momentum, Nesterov and weight decay (PyTorch's torch.optim.SGD, dampening 0), applied
// to the engine's whole flat parameter arena in one backend pass; and learning-rate schedules.
#ifndef NN_SGD_H
#define NN_SGD_H

#include "engine.h"

typedef struct SGD {
    float lr;           // current learning rate (set by the schedule before each step)
    float momentum;     // 0.9
    float weight_decay; // 5e-4, applied to every parameter (PyTorch's default with model.parameters())
    int nesterov;
} SGD;

void sgd_step(Engine* e, const SGD* opt);

typedef enum { SCHEDULE_CONSTANT, SCHEDULE_COSINE, SCHEDULE_STEP } ScheduleKind;

typedef struct Schedule {
    ScheduleKind kind;
    float base_lr;
    long total_steps;   // length of the whole run in optimizer steps
    long warmup_steps;  // linear warm-up from base_lr / warmup_steps to base_lr first
    long step_size;     // SCHEDULE_STEP: multiply by gamma every step_size steps (after warm-up)
    float gamma;
} Schedule;

// Learning rate for optimizer step `step` (0-based). Cosine: PyTorch's CosineAnnealingLR with
// eta_min 0, evaluated per step over the steps after warm-up: lr = base * (1 + cos(pi * t / T)) / 2.
float schedule_lr(const Schedule* s, long step);
const char* schedule_name(ScheduleKind kind);

#endif
