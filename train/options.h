// Command-line options of ./train: every knob of the recipe, the model, the data and the run.
#ifndef TRAIN_OPTIONS_H
#define TRAIN_OPTIONS_H

#include <stdint.h>

#include "../nn/sgd.h"

#define PATH_LEN 1024

// Bits of Options.given: which recipe flags the user set explicitly (--resume checks them).
enum {
    GIVEN_EPOCHS = 1 << 0, GIVEN_BATCH = 1 << 1, GIVEN_LR = 1 << 2, GIVEN_MOMENTUM = 1 << 3,
    GIVEN_WD = 1 << 4, GIVEN_NESTEROV = 1 << 5, GIVEN_SCHEDULE = 1 << 6, GIVEN_WARMUP = 1 << 7,
    GIVEN_STEP_EPOCHS = 1 << 8, GIVEN_STEP_GAMMA = 1 << 9, GIVEN_SEED = 1 << 10, GIVEN_WIDTH = 1 << 11,
    GIVEN_DW_GROUP = 1 << 12, GIVEN_AUGMENT = 1 << 13, GIVEN_LIMIT_TRAIN = 1 << 14,
    // run settings that --resume takes from the run's config.json unless given again
    GIVEN_LIMIT_TEST = 1 << 15, GIVEN_DATA = 1 << 16, GIVEN_DEVICE = 1 << 17, GIVEN_THREADS = 1 << 18,
    GIVEN_TF32 = 1 << 19, GIVEN_MAX_STEPS = 1 << 20, GIVEN_CHECKPOINT = 1 << 21, GIVEN_LOG = 1 << 22,
    GIVEN_OUT = 1 << 23, GIVEN_LOG_EVERY = 1 << 24,
    GIVEN_ACCUM = 1 << 25, GIVEN_DETERMINISTIC = 1 << 26, GIVEN_GPU_DATA = 1 << 27, GIVEN_CUDA_GRAPH = 1 << 28,
};

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
    unsigned given;
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
