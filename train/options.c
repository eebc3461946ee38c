#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

static const char* USAGE =
    "usage: train MODEL DATASET [options]\n"
    "Trains MODEL on DATASET with depthwise convolutions computed by diagonalwise refactorization.\n"
    "  MODEL    mobilenet   (MobileNet v1, CIFAR-10 variant)\n"
    "  DATASET  cifar10\n"
    "\n"
    "Recipe (defaults: the standard MobileNet-CIFAR recipe)\n"
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
    "  --width X             width multiplier: every channel count c becomes int(c * X) (1.0)\n"
    "  --dw-group N|auto     channels per block-diagonal group of the depthwise layers; default: the\n"
    "                        backend's: 1 on the CPU (measured fastest there), 32 on CUDA (the paper's);\n"
    "                        N that does not divide a layer's channels is lowered to the largest\n"
    "                        divisor; auto times the candidates per layer at start-up\n"
    "  --print-model         print every layer (output shape, parameters, multiply-adds; depthwise\n"
    "                        g from --dw-group N, else the --device backend's default) and exit\n"
    "\n"
    "Data\n"
    "  --data PATH           cifar-10-binary.tar.gz or its extracted directory; default: the\n"
    "                        CIFAR10_PATH environment variable, else data/cifar-10-binary.tar.gz\n"
    "  --limit-train N       use only the first N training images (all)\n"
    "  --limit-test N        evaluate on only the first N test images (all)\n"
    "\n"
    "Run\n"
    "  --device NAME         auto | cpu | cuda (auto: the GPU when there is one, else the CPU)\n"
    "  --threads N           CPU threads (all cores)\n"
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
    "  --gpu-data on|off     keep the data set in backend memory and build each batch there (crop,\n"
    "                        flip, normalize from the same random stream as the CPU loader) (off)\n"
    "  --cuda-graph on|off   CUDA: capture the training step once as a graph and replay it (off)\n"
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

static void copy_path(char* dst, const char* flag, const char* v) {
    if (!*v || strlen(v) >= PATH_LEN) args_bad(flag, v, "expected a path (non-empty, shorter than 1024 bytes)");
    strcpy(dst, v);
}

int options_training(const Options* o) { return !o->eval_only && !o->profile && !o->print_model; }

void options_parse(Options* o, int argc, char** argv) {
    memset(o, 0, sizeof(*o));
    o->epochs = 200, o->batch = 128;
    o->lr = 0.1f, o->momentum = 0.9f, o->weight_decay = 5e-4f;
    o->schedule = SCHEDULE_COSINE;
    o->step_epochs = 30, o->step_gamma = 0.1f;
    o->seed = 1;
    o->augment = 1;
    o->accum_steps = 1;
    o->width = 1.0f;
    o->dw_group = -1;
    strcpy(o->device, "auto");
    o->tf32 = 1;
    o->profile_steps = 20;
    o->bench_repeats = 5;

    int positional = 0, repeats_given = 0;
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
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
        // Flags without a value.
        if (!strcmp(flag, "--eval-only") || !strcmp(flag, "--print-model") || !strcmp(flag, "--profile") ||
            !strcmp(flag, "--deterministic")) {
            if (v) args_bad(flag, v, "takes no value");
            if (!strcmp(flag, "--eval-only")) o->eval_only = 1;
            else if (!strcmp(flag, "--print-model")) o->print_model = 1;
            else if (!strcmp(flag, "--deterministic")) o->deterministic = 1, o->given |= GIVEN_DETERMINISTIC;
            else o->profile = 1;
            continue;
        }
        static const char* VALUE_FLAGS[] = {
            "--epochs", "--batch", "--lr", "--momentum", "--wd", "--nesterov", "--schedule",
            "--warmup-epochs", "--step-epochs", "--step-gamma", "--seed", "--augment", "--width",
            "--dw-group", "--data", "--limit-train", "--limit-test", "--device", "--threads", "--tf32",
            "--max-steps", "--checkpoint", "--resume", "--init", "--log", "--profile-steps",
            "--profile-json", "--accum-steps", "--gpu-data", "--cuda-graph", "--bench-steps", "--bench-repeats",
            "--out", "--log-every", NULL};
        int known = 0;
        for (int k = 0; VALUE_FLAGS[k]; k++) known |= !strcmp(flag, VALUE_FLAGS[k]);
        if (!known) args_bad(flag, NULL, "unknown option");
        if (!v) {
            if (i + 1 >= argc) args_bad(flag, NULL, "needs a value");
            v = argv[++i];
        }
        if (!strcmp(flag, "--epochs")) o->epochs = (int)args_long(flag, v, 1, 100000), o->given |= GIVEN_EPOCHS;
        else if (!strcmp(flag, "--batch")) o->batch = (int)args_long(flag, v, 2, 65536), o->given |= GIVEN_BATCH;
        else if (!strcmp(flag, "--lr")) o->lr = args_float(flag, v, 0, 100), o->given |= GIVEN_LR;
        else if (!strcmp(flag, "--momentum")) o->momentum = args_float(flag, v, 0, 0.9999), o->given |= GIVEN_MOMENTUM;
        else if (!strcmp(flag, "--wd")) o->weight_decay = args_float(flag, v, 0, 1), o->given |= GIVEN_WD;
        else if (!strcmp(flag, "--nesterov")) o->nesterov = args_onoff(flag, v), o->given |= GIVEN_NESTEROV;
        else if (!strcmp(flag, "--schedule")) {
            if (!strcmp(v, "cosine")) o->schedule = SCHEDULE_COSINE;
            else if (!strcmp(v, "step")) o->schedule = SCHEDULE_STEP;
            else if (!strcmp(v, "constant")) o->schedule = SCHEDULE_CONSTANT;
            else args_bad(flag, v, "expected cosine, step or constant");
            o->given |= GIVEN_SCHEDULE;
        } else if (!strcmp(flag, "--warmup-epochs")) o->warmup_epochs = args_float(flag, v, 0, 100000), o->given |= GIVEN_WARMUP;
        else if (!strcmp(flag, "--step-epochs")) o->step_epochs = (int)args_long(flag, v, 1, 100000), o->given |= GIVEN_STEP_EPOCHS;
        else if (!strcmp(flag, "--step-gamma")) o->step_gamma = args_float(flag, v, 0, 1), o->given |= GIVEN_STEP_GAMMA;
        else if (!strcmp(flag, "--seed")) o->seed = (uint64_t)args_long(flag, v, 0, 2147483647L), o->given |= GIVEN_SEED;
        else if (!strcmp(flag, "--augment")) o->augment = args_onoff(flag, v), o->given |= GIVEN_AUGMENT;
        else if (!strcmp(flag, "--accum-steps")) o->accum_steps = (int)args_long(flag, v, 1, 65536), o->given |= GIVEN_ACCUM;
        else if (!strcmp(flag, "--width")) o->width = args_float(flag, v, 0.01, 16), o->given |= GIVEN_WIDTH;
        else if (!strcmp(flag, "--dw-group")) {
            o->dw_group = !strcmp(v, "auto") ? 0 : (int)args_long(flag, v, 1, 1 << 20);
            o->given |= GIVEN_DW_GROUP;
        } else if (!strcmp(flag, "--data")) copy_path(o->data, flag, v), o->given |= GIVEN_DATA;
        else if (!strcmp(flag, "--limit-train")) o->limit_train = (int)args_long(flag, v, 1, 1 << 30), o->given |= GIVEN_LIMIT_TRAIN;
        else if (!strcmp(flag, "--limit-test")) o->limit_test = (int)args_long(flag, v, 1, 1 << 30), o->given |= GIVEN_LIMIT_TEST;
        else if (!strcmp(flag, "--device")) {
            if (strcmp(v, "auto") && strcmp(v, "cpu") && strcmp(v, "cuda")) args_bad(flag, v, "expected auto, cpu or cuda");
            snprintf(o->device, sizeof(o->device), "%s", v);
            o->given |= GIVEN_DEVICE;
        } else if (!strcmp(flag, "--threads")) o->threads = (int)args_long(flag, v, 1, 256), o->given |= GIVEN_THREADS;
        else if (!strcmp(flag, "--tf32")) o->tf32 = args_onoff(flag, v), o->given |= GIVEN_TF32;
        else if (!strcmp(flag, "--max-steps")) o->max_steps = args_long(flag, v, 0, 1L << 40), o->given |= GIVEN_MAX_STEPS;
        else if (!strcmp(flag, "--checkpoint")) copy_path(o->checkpoint, flag, v), o->given |= GIVEN_CHECKPOINT;
        else if (!strcmp(flag, "--resume")) copy_path(o->resume, flag, v);
        else if (!strcmp(flag, "--init")) copy_path(o->init, flag, v);
        else if (!strcmp(flag, "--log")) copy_path(o->log, flag, v), o->given |= GIVEN_LOG;
        else if (!strcmp(flag, "--out")) copy_path(o->out, flag, v), o->given |= GIVEN_OUT;
        else if (!strcmp(flag, "--log-every")) o->log_every = (int)args_long(flag, v, 0, 1 << 30), o->given |= GIVEN_LOG_EVERY;
        else if (!strcmp(flag, "--profile-steps")) o->profile_steps = (int)args_long(flag, v, 1, 100000), o->profile = 1;
        else if (!strcmp(flag, "--profile-json")) copy_path(o->profile_json, flag, v), o->profile = 1;
        else if (!strcmp(flag, "--gpu-data")) o->gpu_data = args_onoff(flag, v), o->given |= GIVEN_GPU_DATA;
        else if (!strcmp(flag, "--cuda-graph")) o->cuda_graph = args_onoff(flag, v), o->given |= GIVEN_CUDA_GRAPH;
        else if (!strcmp(flag, "--bench-steps")) o->bench_steps = (int)args_long(flag, v, 1, 1000000), o->profile = 1;
        else if (!strcmp(flag, "--bench-repeats")) o->bench_repeats = (int)args_long(flag, v, 1, 1000), repeats_given = 1;
    }
    if (positional < 2) {
        fprintf(stderr, "error: expected MODEL and DATASET, e.g. train mobilenet cifar10 (see train --help)\n");
        exit(2);
    }
    if (strcmp(o->model, "mobilenet") != 0) args_bad("MODEL", o->model, "unknown model (available: mobilenet)");
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
