// The table of ./train's settings (settings.h) and the one parser every source of a value goes
// through. Nothing here prints or exits: each caller words the failure for its source (a flag, a
// config.json key, a checkpoint record).
#include "settings.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Designated initializers throughout, so that an entry names only what it has.
#define OF(flag_, type_, field_) .flag = flag_, .type = type_, .offset = offsetof(Options, field_)
#define NUM(flag_, type_, field_, lo_, hi_, dflt_) OF(flag_, type_, field_), .lo = lo_, .hi = hi_, .dflt = dflt_

static const int SCHEDULES[] = {SCHEDULE_COSINE, SCHEDULE_STEP, SCHEDULE_CONSTANT};
static const int PRECISIONS[] = {PRECISION_FP32, PRECISION_BF16};

// Ranges: what the program can run, not what is sensible. --threads stops at 1024 because libgomp
// starts a team from a stack array per thread (100000 threads overflowed the main stack in the
// first parallel region); --width starts at 1/32, the least that leaves the 32-channel stem a
// channel. Limits and counters take 0 for "none": --limit-* 0 is every image, --max-steps 0 no
// limit, --log-every 0 off, as config.json and checkpoints write them.
// The order is --help's; the checkpoint writes its records in this order too.
#define CKPT .keep = KEEP_CHECKPOINT
#define CONF .keep = KEEP_CONFIG
const Setting SETTINGS[] = {
    // The recipe: kept in the checkpoint, which --resume takes it from.
    {NUM("--epochs", SET_INT, epochs, 1, 100000, 200), .key = "epochs", .record = "recipe.epochs", CKPT,
     .section = "Recipe (defaults: the standard CIFAR-10 recipe)", .help = "training epochs"},
    {NUM("--batch", SET_INT, batch, 2, 65536, 128), .key = "batch", .record = "recipe.batch", CKPT,
     .help = "batch size"},
    {NUM("--lr", SET_FLOAT, lr, 0, 100, 0.1), .key = "lr", .record = "recipe.lr", CKPT, .help = "base learning rate"},
    {NUM("--momentum", SET_FLOAT, momentum, 0, 0.9999, 0.9), .key = "momentum", .record = "recipe.momentum", CKPT,
     .help = "SGD momentum"},
    {NUM("--wd", SET_FLOAT, weight_decay, 0, 1, 5e-4), .key = "weight_decay", .record = "recipe.weight_decay", CKPT,
     .help = "weight decay, applied to every parameter as PyTorch does"},
    {NUM("--nesterov", SET_ONOFF, nesterov, 0, 1, 0), .key = "nesterov", .record = "recipe.nesterov", CKPT,
     .help = "Nesterov momentum"},
    {OF("--schedule", SET_CHOICE, schedule), .dflt = SCHEDULE_COSINE, .choices = "cosine|step|constant",
     .values = SCHEDULES, .key = "schedule", .record = "recipe.schedule", CKPT,
     .help = "the learning-rate schedule: cosine goes to zero over the run, per step; step multiplies the "
             "rate by --step-gamma every --step-epochs; constant keeps it"},
    {NUM("--warmup-epochs", SET_FLOAT, warmup_epochs, 0, 100000, 0), .key = "warmup_epochs",
     .record = "recipe.warmup_epochs", CKPT, .help = "linear warm-up before the schedule"},
    {NUM("--step-epochs", SET_INT, step_epochs, 1, 100000, 30), .key = "step_epochs",
     .record = "recipe.step_epochs", CKPT, .help = "step schedule: multiply the rate by --step-gamma every N epochs"},
    {NUM("--step-gamma", SET_FLOAT, step_gamma, 0, 1, 0.1), .key = "step_gamma", .record = "recipe.step_gamma", CKPT,
     .help = "step schedule: the factor"},
    {NUM("--seed", SET_U64, seed, 0, 2147483647.0, 1), .key = "seed", .record = "recipe.seed", CKPT,
     .help = "seed of the initial weights, data order and augmentation"},
    {NUM("--augment", SET_ONOFF, augment, 0, 1, 1), .key = "augment", .record = "recipe.augment", CKPT,
     .help = "random crop (4-pixel padding) and horizontal flip"},
    {OF("--precision", SET_CHOICE, precision), .dflt = PRECISION_FP32, .choices = "fp32|bf16", .values = PRECISIONS,
     .key = "precision", .record = "recipe.precision", CKPT,
     .help = "bf16: mixed precision. Every convolution and linear product rounds its inputs and weights to "
             "bf16 (nearest even) and sums in FP32; "
             "weights, momentum, batch norm, loss and SGD stay FP32, and so do checkpoints. Kept in the "
             "checkpoint: a --resume continues in the run's precision"},
    // (the checkpoint keeps --accum-steps x processes as recipe.micro_batches: state.c)
    {NUM("--accum-steps", SET_INT, accum_steps, 1, 65536, 1), .key = "accum_steps", .arg = "K",
     .help = "gradient accumulation: each batch runs as K micro-batches of batch/K (batch norm per "
             "micro-batch), gradients summed, one SGD step"},
    // The model: its width is the checkpoint's (meta.width), its groups the checkpoint's meta.dw_groups.
    {NUM("--width", SET_FLOAT, width, 0.03125, 16, 1.0), .key = "width", .record = "meta.width", CKPT,
     .section = "Model",
     .help = "width multiplier: every channel count c becomes int(c * X); from 0.03125, where the stem's 32 "
             "channels keep one, to 16"},
    {NUM("--dw-group", SET_INT, dw_group, 1, 1 << 20, -1), .word = "auto", .word_value = 0, .key = "dw_group",
     .dflt_text = "backend default",
     .help = "channels per block-diagonal group of the depthwise layers; the backend's default is 1 on the CPU "
             "and on CUDA (measured fastest on both; the paper used 32); N that does not divide a layer's channels is "
             "lowered to the largest divisor; auto times the candidates per layer at start-up (and keeps the "
             "default where the timings vary more than the 5% it decides by)"},
    {NUM("--print-model", SET_SWITCH, print_model, 0, 1, 0), .no_train = 1,
     .help = "print every layer (output shape, parameters, multiply-adds; depthwise g from --dw-group N, else "
             "the --device backend's default) and exit"},
    // The data: where it is (config.json) and how much of it (the checkpoint's --limit-train).
    {OF("--data", SET_PATH, data), .key = "data", CONF, .section = "Data",
     .help = "the data set's file or directory (for cifar10: cifar-10-binary.tar.gz or its extracted "
             "directory); default: the CIFAR10_PATH environment variable, else data/cifar-10-binary.tar.gz"},
    {NUM("--limit-train", SET_INT, limit_train, 0, 1 << 30, 0), .key = "limit_train", .record = "recipe.limit_train",
     .keep = KEEP_CONFIG | KEEP_CHECKPOINT, .help = "use only the first N training images; 0 for all"},
    {NUM("--limit-test", SET_INT, limit_test, 0, 1 << 30, 0), .key = "limit_test", CONF,
     .help = "evaluate on only the first N test images; 0 for all"},
    // The run: kept in config.json, restored by --resume unless given again.
    {OF("--device", SET_WORD, device), .choices = "auto|cpu|cuda|ref", .key = "device", CONF, .section = "Run",
     .help = "auto: the GPU when there is one, else the CPU; ref: the reference backend, each op's defining "
             "loops, slow"},
    {NUM("--threads", SET_INT, threads, 1, 1024, 0), .key = "threads", CONF, .dflt_text = "every core",
     .help = "CPU threads (the CPU backend runs at most 256; more than the CPUs it may use is usually slower)"},
    {NUM("--tf32", SET_ONOFF, tf32, 0, 1, 1), .key = "tf32", CONF,
     .help = "CUDA: let cuDNN and cuBLAS round float32 operands to TF32 on tensor cores (about 10 bits of "
             "mantissa; faster), as PyTorch does for convolutions. No effect on the CPU."},
    {NUM("--deterministic", SET_SWITCH, deterministic, 0, 1, 0), .key = "deterministic", CONF,
     .help = "CUDA: only deterministic cuDNN algorithms, picked by cuDNN's heuristics instead of timing, so "
             "every run and every resume repeats bit for bit (PyTorch's cudnn.deterministic with benchmark off; "
             "may be slower). The CPU is always deterministic for a given --threads."},
    {NUM("--max-steps", SET_LONG, max_steps, 0, 1099511627776.0, 0), .key = "max_steps", CONF,
     .help = "stop once the run has taken N optimizer steps in all (smoke tests); 0 for no limit"},
    {NUM("--eval-only", SET_SWITCH, eval_only, 0, 1, 0), .no_train = 1,
     .help = "only evaluate on the test set (weights from --resume or --init)"},
    {.flag = "--version", .type = SET_ACTION,
     .help = "print the version and what this build contains, and exit"},
    // The run directory and what a run writes.
    {OF("--out", SET_PATH, out), .arg = "DIR", .training_only = 1, .conflicts = "--resume",
     .section = "Run directory (every training run keeps its files in one)",
     .help = "a new run's directory (runs/MODEL-DATASET-YYYYmmdd-HHMMSS); it holds config.json (every setting "
             "of the run), checkpoint.ckpt (the whole training state, saved at each epoch end, at --max-steps "
             "and on Ctrl-C, atomically), log.jsonl and final.ckpt (the weights, at the end)"},
    {OF("--resume", SET_PATH, resume), .arg = "DIR|PATH",
     .help = "continue a saved run exactly where it stopped (weights, momentum, batch-norm statistics, schedule "
             "position, data order) with every setting it had (checkpoint and log paths, data, limits, device, "
             "recipe) unless given again; PATH: a checkpoint (its run's settings are used when its directory "
             "holds the run's config.json)"},
    {OF("--init", SET_PATH, init), .arg = "DIR|PATH", .conflicts = "--resume",
     .help = "start a new run from the weights of a checkpoint (a run directory: its latest weights, final.ckpt "
             "or checkpoint.ckpt), with a fresh optimizer"},
    {OF("--checkpoint", SET_PATH, checkpoint), .key = "checkpoint", CONF, .training_only = 1,
     .help = "keep the training state here instead of DIR/checkpoint.ckpt"},
    {OF("--log", SET_PATH, log), .key = "log", CONF, .training_only = 1,
     .help = "the JSON-lines log instead of DIR/log.jsonl: one object per epoch (loss, accuracies, lr, seconds, "
             "img/s). A new run creates or overwrites it; --resume appends to it"},
    {NUM("--log-every", SET_INT, log_every, 0, 1 << 30, 0), .key = "log_every", CONF,
     .help = "also log the running training loss and accuracy every N steps; 0 for off"},
    {NUM("--profile", SET_SWITCH, profile, 0, 1, 0), .no_train = 1,
     .help = "time every layer after a few warm-up steps, print a table and exit"},
    {NUM("--profile-steps", SET_INT, profile_steps, 1, 100000, 20), .implies = "--profile",
     .help = "steps averaged by --profile"},
    {OF("--profile-json", SET_PATH, profile_json), .implies = "--profile", .help = "also write the profile as JSON"},
    // auto (-1): on where the run can use it (speed_resolve, train/speed.c); config.json keeps the outcome
    {NUM("--gpu-data", SET_ONOFF, gpu_data, 0, 1, -1), .word = "auto", .word_value = -1, .key = "gpu_data", CONF,
     .help = "keep the data set in backend memory and build each batch there (crop, flip, normalize from the "
             "same random stream as the CPU loader); auto: on with --device cuda in one process without "
             "--accum-steps"},
    {NUM("--cuda-graph", SET_ONOFF, cuda_graph, 0, 1, -1), .word = "auto", .word_value = -1, .key = "cuda_graph",
     CONF, .help = "CUDA: capture the training step once as a graph and replay it; auto: as --gpu-data, and "
                   "off with --profile"},
    {NUM("--bench-steps", SET_INT, bench_steps, 1, 1000000, 0), .implies = "--profile", .no_default = 1,
     .help = "time N training steps (after warm-up) per repeat, print img/s and exit"},
    {NUM("--bench-repeats", SET_INT, bench_repeats, 1, 1000, 5), .needs = "--bench-steps",
     .help = "repeats of --bench-steps; the median is reported"},
    {.flag = "--help", .type = SET_ACTION, .help = "this text"},
    {.flag = NULL},
};
#undef CKPT
#undef CONF

// Options.given has one bit per entry.
_Static_assert(sizeof(SETTINGS) / sizeof(SETTINGS[0]) <= 64, "Options.given holds 64 settings");

const Setting* setting_by_flag(const char* flag) {
    for (const Setting* s = SETTINGS; s->flag; s++)
        if (!strcmp(s->flag, flag)) return s;
    return NULL;
}

const Setting* setting_named(const char* flag) {
    const Setting* s = setting_by_flag(flag);
    if (!s) { // a flag the code names that the table lacks: a programming error, caught by any test run
        fprintf(stderr, "internal error: no setting %s in train/settings.c\n", flag);
        abort();
    }
    return s;
}

int setting_given(const Setting* s, const Options* o) { return (int)((o->given >> (s - SETTINGS)) & 1); }
void setting_mark_given(const Setting* s, Options* o) { o->given |= (uint64_t)1 << (s - SETTINGS); }

const Setting* setting_by_record(const char* name) {
    for (const Setting* s = SETTINGS; s->flag; s++)
        if (s->record && !strcmp(s->record, name)) return s;
    return NULL;
}

static void* field(const Setting* s, Options* o) { return (char*)o + s->offset; }
static const void* cfield(const Setting* s, const Options* o) { return (const char*)o + s->offset; }

static int is_number(const Setting* s) { return s->type <= SET_FLOAT; }

// The position of word in s->choices, -1 if it is not one of them.
static int choice_index(const Setting* s, const char* word) {
    const char* c = s->choices;
    for (int i = 0; c && *c; i++) {
        size_t n = strcspn(c, "|");
        if (strlen(word) == n && !strncmp(c, word, n)) return i;
        c += n + (c[n] == '|');
    }
    return -1;
}

// The i-th word of s->choices into buf ("" past the last).
static void choice_word(const Setting* s, int i, char* buf, size_t len) {
    const char* c = s->choices;
    for (; i > 0 && *c; i--) {
        c += strcspn(c, "|");
        if (*c) c++;
    }
    snprintf(buf, len, "%.*s", (int)strcspn(c, "|"), c);
}

void setting_store(const Setting* s, Options* o, double x) {
    switch (s->type) {
    case SET_SWITCH:
    case SET_ONOFF:
    case SET_INT: *(int*)field(s, o) = (int)x; break;
    case SET_LONG: *(long*)field(s, o) = (long)x; break;
    case SET_U64: *(uint64_t*)field(s, o) = (uint64_t)x; break;
    case SET_FLOAT: *(float*)field(s, o) = (float)x; break;
    case SET_CHOICE: *(int*)field(s, o) = (int)x; break;
    default: break;
    }
}

double setting_value(const Setting* s, const Options* o) {
    switch (s->type) {
    case SET_LONG: return (double)*(const long*)cfield(s, o);
    case SET_U64: return (double)*(const uint64_t*)cfield(s, o);
    case SET_FLOAT: return *(const float*)cfield(s, o);
    case SET_WORD:
    case SET_PATH: return 0;
    default: return *(const int*)cfield(s, o);
    }
}

void settings_defaults(Options* o) {
    for (const Setting* s = SETTINGS; s->flag; s++) {
        if (is_number(s) || s->type == SET_CHOICE) setting_store(s, o, s->dflt);
        else if (s->type == SET_WORD) choice_word(s, (int)s->dflt, (char*)field(s, o), 16);
        else if (s->type == SET_PATH) *(char*)field(s, o) = '\0';
    }
}

int setting_is_default(const Setting* s, const Options* o) {
    char w[32];
    if (s->type == SET_PATH) return *(const char*)cfield(s, o) == '\0';
    if (s->type != SET_WORD) return setting_value(s, o) == s->dflt;
    choice_word(s, (int)s->dflt, w, sizeof(w));
    return !strcmp(w, (const char*)cfield(s, o));
}

SettingStatus setting_check(const Setting* s, double x) {
    if (!is_number(s)) return SETTING_BAD;
    if (!isfinite(x) || x < s->lo || x > s->hi) return SETTING_RANGE;
    if (s->type != SET_FLOAT && x != floor(x)) return SETTING_RANGE;
    return SETTING_OK;
}

static int parse_onoff(const char* v) {
    if (!strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "true")) return 1;
    if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "false")) return 0;
    return -1;
}

// A whole-string number: an integer for the integer types (beyond long long it is out of range), any
// number for SET_FLOAT (inf and nan are out of range there).
static SettingStatus parse_number(const Setting* s, const char* v, double* x) {
    char* end;
    errno = 0;
    if (s->type == SET_FLOAT) *x = strtod(v, &end);
    else *x = (double)strtoll(v, &end, 10);
    if (end == v || *end) return SETTING_BAD;
    if (errno == ERANGE) return SETTING_RANGE;
    return setting_check(s, *x);
}

SettingStatus setting_parse(const Setting* s, const char* v, Options* o) {
    double x;
    int i;
    SettingStatus st;
    switch (s->type) {
    case SET_SWITCH:
    case SET_ONOFF:
        if (s->word && !strcmp(v, s->word)) i = (int)s->word_value;
        else if ((i = parse_onoff(v)) < 0) return SETTING_BAD;
        setting_store(s, o, i);
        return SETTING_OK;
    case SET_CHOICE:
    case SET_WORD:
        if ((i = choice_index(s, v)) < 0) return SETTING_BAD;
        if (s->type == SET_CHOICE) setting_store(s, o, s->values[i]);
        else snprintf((char*)field(s, o), 16, "%s", v);
        return SETTING_OK;
    case SET_PATH:
        if (!*v || strlen(v) >= PATH_LEN) return SETTING_BAD;
        strcpy((char*)field(s, o), v);
        return SETTING_OK;
    default:
        if (s->word && !strcmp(v, s->word)) {
            setting_store(s, o, s->word_value);
            return SETTING_OK;
        }
        if ((st = parse_number(s, v, &x)) == SETTING_OK) setting_store(s, o, x);
        return st;
    }
}

void setting_range(const Setting* s, char* buf, size_t len) {
    if (s->type == SET_SWITCH || s->type == SET_ONOFF) snprintf(buf, len, "on%s off%s%s", s->word ? "," : " or",
                                                                s->word ? " or " : "", s->word ? s->word : "");
    else if (s->type == SET_FLOAT) snprintf(buf, len, "%g..%g", s->lo, s->hi);
    else if (is_number(s)) snprintf(buf, len, "%.0f..%.0f", s->lo, s->hi);
    else setting_want(s, buf, len);
}

void setting_want(const Setting* s, char* buf, size_t len) {
    char range[64];
    if (s->type == SET_SWITCH || s->type == SET_ONOFF) {
        setting_range(s, buf, len);
    } else if (is_number(s)) {
        setting_range(s, range, sizeof(range));
        snprintf(buf, len, "%s in %s%s%s", s->type == SET_FLOAT ? "a number" : "an integer", range,
                 s->word ? " or " : "", s->word ? s->word : "");
    } else if (s->type == SET_PATH) {
        snprintf(buf, len, "a path (non-empty, shorter than %d bytes)", PATH_LEN);
    } else { // "cosine, step or constant"
        buf[0] = '\0';
        char w[32];
        int n = 0;
        while (choice_word(s, n, w, sizeof(w)), w[0]) n++;
        for (int i = 0; i < n; i++) {
            choice_word(s, i, w, sizeof(w));
            size_t used = strlen(buf);
            snprintf(buf + used, len - used, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", w);
        }
    }
}

void setting_text(const Setting* s, const Options* o, char* buf, size_t len) {
    double x = setting_value(s, o);
    char w[32];
    switch (s->type) {
    case SET_ACTION: snprintf(buf, len, "%s", ""); break;
    case SET_SWITCH:
    case SET_ONOFF: snprintf(buf, len, "%s", s->word && x == s->word_value ? s->word : x ? "on" : "off"); break;
    case SET_FLOAT: snprintf(buf, len, "%g", x); break;
    case SET_CHOICE:
        for (int i = 0; choice_word(s, i, w, sizeof(w)), w[0]; i++)
            if (s->values[i] == (int)x) break;
        snprintf(buf, len, "%s", w);
        break;
    case SET_WORD:
    case SET_PATH: snprintf(buf, len, "%s", (const char*)cfield(s, o)); break;
    default:
        if (s->word && x == s->word_value) snprintf(buf, len, "%s", s->word);
        else snprintf(buf, len, "%.0f", x);
    }
}

void setting_show(const Setting* s, const Options* o, char* buf, size_t len) {
    char text[PATH_LEN];
    if (s->type == SET_SWITCH) {
        snprintf(buf, len, "%s%s", s->flag, setting_value(s, o) ? "" : " off");
        return;
    }
    setting_text(s, o, text, sizeof(text));
    snprintf(buf, len, "%s %s", s->flag, text);
}

void setting_arg(const Setting* s, char* buf, size_t len) {
    if (s->arg) snprintf(buf, len, "%s", s->arg);
    else if (s->type == SET_SWITCH || s->type == SET_ACTION) snprintf(buf, len, "%s", "");
    else if (s->type == SET_ONOFF) snprintf(buf, len, "on|off%s%s", s->word ? "|" : "", s->word ? s->word : "");
    else if (s->type == SET_CHOICE || s->type == SET_WORD) snprintf(buf, len, "%s", s->choices);
    else if (s->type == SET_PATH) snprintf(buf, len, "PATH");
    else snprintf(buf, len, "%s%s%s", s->type == SET_FLOAT ? "X" : "N", s->word ? "|" : "", s->word ? s->word : "");
}

void setting_default_text(const Setting* s, char* buf, size_t len) {
    Options o;
    buf[0] = '\0';
    if (s->no_default || s->type == SET_SWITCH || s->type == SET_PATH || s->type == SET_ACTION) return;
    if (s->dflt_text) {
        snprintf(buf, len, "%s", s->dflt_text);
        return;
    }
    memset(&o, 0, sizeof(o));
    settings_defaults(&o);
    setting_text(s, &o, buf, len);
}

int setting_json(const Setting* s, const Options* o, char* buf, size_t len) {
    char w[32];
    const double x = setting_value(s, o);
    switch (s->type) {
    case SET_PATH:
    case SET_ACTION: return 0;
    case SET_WORD:
    case SET_CHOICE:
        setting_text(s, o, w, sizeof(w));
        snprintf(buf, len, "\"%s\"", w);
        return 1;
    default:
        if (s->word && x == s->word_value) snprintf(buf, len, "\"%s\"", s->word);
        else if (s->dflt_text && x == s->dflt) snprintf(buf, len, "\"%s\"", s->dflt_text);
        else if (s->type == SET_FLOAT) snprintf(buf, len, "%.7g", x);
        else snprintf(buf, len, "%.0f", x);
        return 1;
    }
}
