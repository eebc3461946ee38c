// The run directory: every training run keeps its files in one folder (default
// runs/MODEL-DATASET-YYYYmmdd-HHMMSS, --out DIR to choose):
//   config.json      every setting of the run, resolved (paths, data, limits, device, recipe, g per layer)
//   checkpoint.ckpt  the whole training state (--checkpoint PATH keeps it elsewhere)
//   log.jsonl        one JSON object per epoch, and per N steps with --log-every (--log PATH elsewhere)
//   final.ckpt       the weights at the end of the run (for --init, --eval-only and tools/export.py)
// --resume DIR (or the checkpoint inside it) reads config.json back, so a resumed run keeps saving
// where it saved, logging where it logged, and keeps its data, limits and device unless the command
// line says otherwise. The checkpoint itself holds the recipe and the run's position (train/state.c).
#ifndef TRAIN_RUNDIR_H
#define TRAIN_RUNDIR_H

#include "trainer.h"

typedef struct RunDir {
    char dir[PATH_LEN];    // the run directory; "" when the run has none (see rundir_prepare)
    char config[PATH_LEN]; // dir/config.json
    char final[PATH_LEN];  // dir/final.ckpt
    char restored[4096];   // what --resume took from config.json, for the start-up banner
    char command[4096];    // the command line, recorded in config.json
    int resumed_from_config;
    int create; // a new run: the directory is made when config.json is first written
} RunDir;

// Before the model is built: resolves --resume DIR|PATH and --init DIR to checkpoint files; for a
// resumed run applies the saved settings the command line does not override; for a new training run
// creates the run directory and points --checkpoint and --log into it unless they were given.
// A checkpoint resumed without its run's config.json keeps saving to that checkpoint (no directory).
// Exits with a message naming the path on any failure.
void rundir_prepare(RunDir* r, Options* o, int argc, char** argv);

// Writes config.json (atomically) once the run is set up: the resolved settings and the group size of
// every depthwise layer. A no-op without a run directory.
void rundir_write_config(const RunDir* r, const Trainer* t);

// Saves the final weights (no optimizer state) to r->final; returns the path written, or NULL.
const char* rundir_save_final(const RunDir* r, Trainer* t);

#endif
