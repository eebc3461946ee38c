// Command-line options of ./train: every knob of the recipe, the model, the data and the run.
#ifndef TRAIN_OPTIONS_H
#define TRAIN_OPTIONS_H

#include <stdint.h>

#include "../nn/sgd.h"

#define PATH_LEN 1024

// --precision: FP32 throughout, or bf16 mixed precision (BackendOptions.bf16).
typedef enum { PRECISION_FP32 = 0, PRECISION_BF16 = 1 } Precision;
static inline const char* precision_name(int precision) { return precision == PRECISION_BF16 ? "bf16" : "fp32"; }

typedef struct Options {
    char model[32], dataset[32];
    // recipe
    int epochs, batch;
    float lr, momentum, weight_decay;
    int nesterov;
    ScheduleKind schedule;
    float warmup_epochs;
    int step_epochs;
    float step_gamma;
    uint64_t seed;
    int augment;
    int precision;   // Precision: kept in the checkpoint (recipe.precision), so a resume continues in it
    int accum_steps; // micro-batches per process summed into one SGD step (train/step.c)
    // model
    float width;
    int dw_group; // channels per diagonalwise group; 0 = auto (measure at start-up), -1 = the backend's default
    // data
    char data[PATH_LEN];
    int limit_train, limit_test; // use only the first N images (0 = all): quick experiments, tests
    // run
    char device[16];
    int threads, tf32;
    int deterministic; // CUDA: only deterministic cuDNN algorithms, chosen without timing (repeatable runs)
    long max_steps;
    int eval_only, print_model;
    char checkpoint[PATH_LEN], resume[PATH_LEN], init[PATH_LEN], log[PATH_LEN];
    // the run directory (train/rundir.c): config.json, checkpoint, log and final weights live there
    char out[PATH_LEN];
    int log_every; // also log the running training metrics every N steps (0: per epoch only)
    // profiling
    int profile, profile_steps;
    char profile_json[PATH_LEN];
    uint64_t given; // which flags the command line gave: one bit per entry of the settings table
    // speed (train/speed.c): GPU-resident data, CUDA graph of the step, --bench-steps (a timing run)
    int gpu_data, cuda_graph, bench_steps, bench_repeats;
} Options;

// Parses argv into o (defaults first). On --help or --version prints it and exits 0; on a bad flag
// or value prints a message naming it and exits 2.
void options_parse(Options* o, int argc, char** argv);

// 1 when the command trains (it writes a run directory, a checkpoint and a log); 0 for --eval-only,
// --profile (and --bench-steps, which implies it) and --print-model.
int options_training(const Options* o);

// version.c: `train --version` (the version and what this build contains).
void print_version(void);

#endif
