#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/model.h"
#include "args.h"
#include "settings.h"

static const char* USAGE_HEAD =
    "usage: train MODEL DATASET [options]\n"
    "Trains MODEL on DATASET with depthwise convolutions computed by diagonalwise refactorization.\n";
// (then one MODEL line per registered model, models/model.c)
static const char* USAGE =
    "  DATASET  cifar10\n"
    "\n"
    "Recipe (defaults: the standard CIFAR-10 recipe)\n"
    "  --epochs N            training epochs (200)\n"
    "  --batch N             batch size (128)\n"
    "  --lr X                base learning rate (0.1)\n"
    "  --momentum X          SGD momentum (0.9)\n"
    "  --wd X                weight decay, applied to every parameter as PyTorch does (5e-4)\n"
    "  --nesterov on|off     Nesterov momentum (off, PyTorch's default)\n"
    "  --schedule NAME       cosine | step | constant (cosine: to zero over the run, per step)\n"
    "  --warmup-epochs X     linear warm-up before the schedule (0)\n"
    "  --step-epochs N       step schedule: multiply the rate by --step-gamma every N epochs (30)\n"
    "  --step-gamma X        (0.1)\n"
    "  --seed N              seed of the initial weights, data order and augmentation (1)\n"
    "  --augment on|off      random crop (4-pixel padding) and horizontal flip (on)\n"
    "  --accum-steps K       gradient accumulation: each batch runs as K micro-batches of batch/K\n"
    "                        (batch norm per micro-batch), gradients summed, one SGD step (1)\n"
    "\n"
    "Model\n"
    "  --width X             width multiplier: every channel count c becomes int(c * X) (1.0;\n"
    "                        0.03125..16: the stem's 32 channels keep at least one)\n"
    "  --dw-group N|auto     channels per block-diagonal group of the depthwise layers; default: the\n"
    "                        backend's: 1 on the CPU (measured fastest there), 32 on CUDA (the paper's);\n"
    "                        N that does not divide a layer's channels is lowered to the largest\n"
    "                        divisor; auto times the candidates per layer at start-up (and keeps the\n"
    "                        default where the timings vary more than the 5% it decides by)\n"
    "  --print-model         print every layer (output shape, parameters, multiply-adds; depthwise\n"
    "                        g from --dw-group N, else the --device backend's default) and exit\n"
    "\n"
    "Data\n"
    "  --data PATH           cifar-10-binary.tar.gz or its extracted directory; default: the\n"
    "                        CIFAR10_PATH environment variable, else data/cifar-10-binary.tar.gz\n"
    "  --limit-train N       use only the first N training images (0: all, the default)\n"
    "  --limit-test N        evaluate on only the first N test images (0: all, the default)\n"
    "\n"
    "Run\n"
    "  --device NAME         auto | cpu | cuda | ref (auto: the GPU when there is one, else the CPU;\n"
    "                        ref: the reference backend, each op's defining loops, slow)\n"
    "  --threads N           CPU threads, 1..1024 (all cores)\n"
    "  --tf32 on|off         CUDA: let cuDNN and cuBLAS round float32 operands to TF32 on tensor\n"
    "                        cores (about 10 bits of mantissa; faster). On by default, as PyTorch\n"
    "                        does for convolutions. No effect on the CPU.\n"
    "  --deterministic       CUDA: only deterministic cuDNN algorithms, picked by cuDNN's heuristics\n"
    "                        instead of timing, so every run and every resume repeats bit for bit\n"
    "                        (PyTorch's cudnn.deterministic with benchmark off; may be slower).\n"
    "                        The CPU is always deterministic for a given --threads.\n"
    "  --max-steps N         stop once the run has taken N optimizer steps in all (smoke tests)\n"
    "  --eval-only           only evaluate on the test set (weights from --resume or --init)\n"
    "  --version             print the version and what this build contains, and exit\n"
    "\n"
    "Run directory (every training run keeps its files in one)\n"
    "  --out DIR             a new run's directory (runs/MODEL-DATASET-YYYYmmdd-HHMMSS); it holds\n"
    "                        config.json (every setting of the run), checkpoint.ckpt (the whole\n"
    "                        training state, saved at each epoch end, at --max-steps and on Ctrl-C,\n"
    "                        atomically), log.jsonl and final.ckpt (the weights, at the end)\n"
    "  --resume DIR|PATH     continue a saved run exactly where it stopped (weights, momentum,\n"
    "                        batch-norm statistics, schedule position, data order) with every\n"
    "                        setting it had (checkpoint and log paths, data, limits, device, recipe)\n"
    "                        unless given again; PATH: a checkpoint (its run's settings are used when\n"
    "                        its directory holds the run's config.json)\n"
    "  --init DIR|PATH       start a new run from the weights of a checkpoint (a run directory: its\n"
    "                        latest weights, final.ckpt or checkpoint.ckpt), with a fresh optimizer\n"
    "  --checkpoint PATH     keep the training state here instead of DIR/checkpoint.ckpt\n"
    "  --log PATH            the JSON-lines log instead of DIR/log.jsonl: one object per epoch (loss,\n"
    "                        accuracies, lr, seconds, img/s). A new run creates or overwrites it;\n"
    "                        --resume appends to it\n"
    "  --log-every N         also log the running training loss and accuracy every N steps (0: off)\n"
    "  --profile             time every layer after a few warm-up steps, print a table and exit\n"
    "  --profile-steps N     steps averaged by --profile (20; implies --profile)\n"
    "  --profile-json PATH   also write the profile as JSON (implies --profile)\n"
    "  --gpu-data on|off|auto  keep the data set in backend memory and build each batch there (crop,\n"
    "                        flip, normalize from the same random stream as the CPU loader) (auto:\n"
    "                        on with --device cuda in one process without --accum-steps, else off)\n"
    "  --cuda-graph on|off|auto  CUDA: capture the training step once as a graph and replay it (auto:\n"
    "                        as --gpu-data, and off with --profile)\n"
    "  --bench-steps N       time N training steps (after warm-up) per repeat, print img/s and exit\n"
    "  --bench-repeats N     repeats of --bench-steps; the median is reported (5)\n"
    "  --help                this text\n"
    "\n"
    "Examples\n"
    "  train mobilenet cifar10                           the standard 200-epoch run\n"
    "  train mobilenet cifar10 --epochs 1                one epoch (a quick check)\n"
    "  train mobilenet cifar10 --out runs/first          resumable: --resume runs/first\n"
    "  train mobilenet cifar10 --profile                 per-layer timing table\n"
    "  mpirun -np 2 train mobilenet cifar10 --threads 1  2 processes, one share of each batch each\n";

int options_training(const Options* o) { return !o->eval_only && !o->profile && !o->print_model; }

// Parses one flag's value through the settings table (the same parser config.json's values go
// through), or exits 2 naming the flag, the value and what it accepts.
static void parse_value(const Setting* s, const char* v, Options* o) {
    if (setting_parse(s, v, o) == SETTING_OK) return;
    char want[128], msg[160];
    setting_want(s, want, sizeof(want));
    snprintf(msg, sizeof(msg), "expected %s", want);
    args_bad(s->flag, v, msg);
}

void options_parse(Options* o, int argc, char** argv) {
    memset(o, 0, sizeof(*o));
    settings_defaults(o);

    int positional = 0, repeats_given = 0;
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE_HEAD, stdout);
            for (int m = 0; model_at(m); m++)
                printf("  %-8s %-11s (%s)\n", m ? "" : "MODEL", model_at(m)->name, model_at(m)->summary);
            fputs(USAGE, stdout);
            exit(0);
        }
        if (!strcmp(a, "--version")) {
            print_version();
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0) {
            if (positional == 0) snprintf(o->model, sizeof(o->model), "%s", a);
            else if (positional == 1) snprintf(o->dataset, sizeof(o->dataset), "%s", a);
            else args_bad(a, NULL, "unexpected extra argument");
            positional++;
            continue;
        }
        // --flag=value or --flag value
        char flag[64];
        const char* v = NULL;
        const char* eq = strchr(a, '=');
        if (eq) {
            snprintf(flag, sizeof(flag), "%.*s", (int)(eq - a), a);
            v = eq + 1;
        } else {
            snprintf(flag, sizeof(flag), "%s", a);
        }
        const Setting* s = setting_by_flag(flag);
        if (!s) args_bad(flag, NULL, "unknown option");
        if (s->type == SET_SWITCH) { // a flag without a value
            if (v) args_bad(flag, v, "takes no value");
            setting_store(s, o, 1);
        } else {
            if (!v) {
                if (i + 1 >= argc) args_bad(flag, NULL, "needs a value");
                v = argv[++i];
            }
            parse_value(s, v, o);
        }
        o->given |= s->given;
        // Flags that ask for a profile or a benchmark imply --profile.
        if (!strcmp(flag, "--profile-steps") || !strcmp(flag, "--profile-json") || !strcmp(flag, "--bench-steps"))
            o->profile = 1;
        if (!strcmp(flag, "--bench-repeats")) repeats_given = 1;
    }
    if (positional < 2) {
        fprintf(stderr, "error: expected MODEL and DATASET, e.g. train mobilenet cifar10 (see train --help)\n");
        exit(2);
    }
    if (!model_find(o->model)) {
        fprintf(stderr, "error: unknown model '%s': known models: %s (see %s --help)\n", o->model, model_names(),
                args_program);
        exit(2);
    }
    if (strcmp(o->dataset, "cifar10") != 0) args_bad("DATASET", o->dataset, "unknown dataset (available: cifar10)");
    if (o->resume[0] && o->init[0]) args_bad("--init", o->init, "cannot be combined with --resume");
    if (repeats_given && !o->bench_steps) args_bad("--bench-repeats", NULL, "needs --bench-steps N");
    // A run's files: --out names a new run's directory, --checkpoint and --log where a training run
    // writes. Where they would be ignored they are refused instead.
    if (o->out[0] && o->resume[0])
        args_bad("--out", o->out, "cannot be combined with --resume (a resumed run continues in its own directory)");
    if (!options_training(o)) {
        const struct { int given; const char* flag; const char* value; } files[] = {
            {GIVEN_OUT, "--out", o->out}, {GIVEN_CHECKPOINT, "--checkpoint", o->checkpoint}, {GIVEN_LOG, "--log", o->log}};
        for (int i = 0; i < 3; i++)
            if (o->given & files[i].given)
                args_bad(files[i].flag, files[i].value, "only a training run writes it (not --eval-only, --profile, "
                                                   "--bench-steps or --print-model)");
    }
    if (o->eval_only && !o->resume[0] && !o->init[0])
        args_bad("--eval-only", NULL, "needs weights: give --resume PATH or --init PATH");
}
