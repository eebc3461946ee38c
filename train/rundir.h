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
    int resuming;          // a training run resumed with its config.json: "command" is kept, this one added
    char first_command[6 * 4096 + 8]; // that config.json's "command", as written (a JSON string)
    char history[65536];   // its "resumed" entries, one per line ("    {...},\n")
    int resumed_from_config;
    int create;                   // a new run: rundir_create makes the directory, once the run is set up
    char base[PATH_LEN - 16];     // a default name's runs/MODEL-DATASET-STAMP ("" with --out)
    int own_checkpoint, own_log;  // the checkpoint and log are the directory's own (not given)
} RunDir;

// Before the model is built: resolves --resume DIR|PATH and --init DIR to checkpoint files; for a
// resumed run applies the saved settings the command line does not override; for a new training run
// creates the run directory and points --checkpoint and --log into it unless they were given.
// A checkpoint resumed without its run's config.json keeps saving to that checkpoint (no directory).
// Exits with a message naming the path on any failure.
void rundir_prepare(RunDir* r, Options* o, int argc, char** argv);

// A new run's directory, once the run is set up (so a failed start leaves nothing): --out DIR is
// created unless it exists; a default name is created atomically, with -2, -3, ... appended when
// another run took it, and the checkpoint and log paths inside it follow. Every process calls it
// (rank 0 creates, the others take its name). The caller then takes the lock, then writes.
void rundir_create(RunDir* r, Options* o);

// Writes config.json (atomically) once the run is set up: the resolved settings and the group size of
// every depthwise layer. A no-op without a run directory.
void rundir_write_config(const RunDir* r, const Trainer* t);

// Saves the final weights (no optimizer state) to r->final; returns the path written, or NULL.
const char* rundir_save_final(const RunDir* r, Trainer* t);

#endif
