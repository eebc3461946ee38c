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

// Ranges: what the program can run, not what is sensible. --threads stops at 1024 because libgomp
// starts a team from a stack array per thread (100000 threads overflowed the main stack in the
// first parallel region); --width starts at 1/32, the least that leaves the 32-channel stem a
// channel. Limits and counters take 0 for "none": --limit-* 0 is every image, --max-steps 0 no
// limit, --log-every 0 off, as config.json and checkpoints write them.
const Setting SETTINGS[] = {
    // recipe (kept in the checkpoint; --resume takes it from there)
    {NUM("--epochs", SET_INT, epochs, 1, 100000, 200), .given = GIVEN_EPOCHS, .record = "recipe.epochs"},
    {NUM("--batch", SET_INT, batch, 2, 65536, 128), .given = GIVEN_BATCH, .record = "recipe.batch"},
    {NUM("--lr", SET_FLOAT, lr, 0, 100, 0.1), .given = GIVEN_LR, .record = "recipe.lr"},
    {NUM("--momentum", SET_FLOAT, momentum, 0, 0.9999, 0.9), .given = GIVEN_MOMENTUM, .record = "recipe.momentum"},
    {NUM("--wd", SET_FLOAT, weight_decay, 0, 1, 5e-4), .given = GIVEN_WD, .record = "recipe.weight_decay"},
    {NUM("--nesterov", SET_ONOFF, nesterov, 0, 1, 0), .given = GIVEN_NESTEROV, .record = "recipe.nesterov"},
    {OF("--schedule", SET_CHOICE, schedule), .dflt = SCHEDULE_COSINE, .choices = "cosine|step|constant",
     .values = SCHEDULES, .given = GIVEN_SCHEDULE, .record = "recipe.schedule"},
    {NUM("--warmup-epochs", SET_FLOAT, warmup_epochs, 0, 100000, 0), .given = GIVEN_WARMUP,
     .record = "recipe.warmup_epochs"},
    {NUM("--step-epochs", SET_INT, step_epochs, 1, 100000, 30), .given = GIVEN_STEP_EPOCHS,
     .record = "recipe.step_epochs"},
    {NUM("--step-gamma", SET_FLOAT, step_gamma, 0, 1, 0.1), .given = GIVEN_STEP_GAMMA, .record = "recipe.step_gamma"},
    {NUM("--seed", SET_U64, seed, 0, 2147483647.0, 1), .given = GIVEN_SEED, .record = "recipe.seed"},
    {NUM("--augment", SET_ONOFF, augment, 0, 1, 1), .given = GIVEN_AUGMENT, .record = "recipe.augment"},
    // (the checkpoint keeps --accum-steps x processes as recipe.micro_batches: state.c)
    {NUM("--accum-steps", SET_INT, accum_steps, 1, 65536, 1), .given = GIVEN_ACCUM},
    {NUM("--limit-train", SET_INT, limit_train, 0, 1 << 30, 0), .given = GIVEN_LIMIT_TRAIN, .key = "limit_train",
     .record = "recipe.limit_train"},
    // model
    {NUM("--width", SET_FLOAT, width, 0.03125, 16, 1.0), .given = GIVEN_WIDTH, .record = "meta.width"},
    {NUM("--dw-group", SET_INT, dw_group, 1, 1 << 20, -1), .word = "auto", .word_value = 0, .given = GIVEN_DW_GROUP},
    // data
    {OF("--data", SET_PATH, data), .given = GIVEN_DATA, .key = "data"},
    {NUM("--limit-test", SET_INT, limit_test, 0, 1 << 30, 0), .given = GIVEN_LIMIT_TEST, .key = "limit_test"},
    // run (kept in config.json; --resume restores them unless given again)
    {OF("--device", SET_WORD, device), .choices = "auto|cpu|cuda|ref", .given = GIVEN_DEVICE, .key = "device"},
    {NUM("--threads", SET_INT, threads, 1, 1024, 0), .given = GIVEN_THREADS, .key = "threads"},
    {NUM("--tf32", SET_ONOFF, tf32, 0, 1, 1), .given = GIVEN_TF32, .key = "tf32"},
    {NUM("--deterministic", SET_SWITCH, deterministic, 0, 1, 0), .given = GIVEN_DETERMINISTIC, .key = "deterministic"},
    {NUM("--max-steps", SET_LONG, max_steps, 0, 1099511627776.0, 0), .given = GIVEN_MAX_STEPS, .key = "max_steps"},
    {NUM("--eval-only", SET_SWITCH, eval_only, 0, 1, 0)},
    {OF("--checkpoint", SET_PATH, checkpoint), .given = GIVEN_CHECKPOINT, .key = "checkpoint"},
    {OF("--resume", SET_PATH, resume)},
    {OF("--init", SET_PATH, init)},
    {OF("--log", SET_PATH, log), .given = GIVEN_LOG, .key = "log"},
    {OF("--out", SET_PATH, out), .given = GIVEN_OUT},
    {NUM("--log-every", SET_INT, log_every, 0, 1 << 30, 0), .given = GIVEN_LOG_EVERY, .key = "log_every"},
    {NUM("--print-model", SET_SWITCH, print_model, 0, 1, 0)},
    {NUM("--profile", SET_SWITCH, profile, 0, 1, 0)},
    {NUM("--profile-steps", SET_INT, profile_steps, 1, 100000, 20)},
    {OF("--profile-json", SET_PATH, profile_json)},
    // auto (-1): on where the run can use it (train/speed.c, speed_resolve); config.json keeps the outcome
    {NUM("--gpu-data", SET_ONOFF, gpu_data, 0, 1, -1), .word = "auto", .word_value = -1, .given = GIVEN_GPU_DATA,
     .key = "gpu_data"},
    {NUM("--cuda-graph", SET_ONOFF, cuda_graph, 0, 1, -1), .word = "auto", .word_value = -1,
     .given = GIVEN_CUDA_GRAPH, .key = "cuda_graph"},
    {NUM("--bench-steps", SET_INT, bench_steps, 1, 1000000, 0)},
    {NUM("--bench-repeats", SET_INT, bench_repeats, 1, 1000, 5)},
    {.flag = NULL},
};

const Setting* setting_by_flag(const char* flag) {
    for (const Setting* s = SETTINGS; s->flag; s++)
        if (!strcmp(s->flag, flag)) return s;
    return NULL;
}

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
        else *(char*)field(s, o) = '\0';
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

void setting_show(const Setting* s, const Options* o, char* buf, size_t len) {
    double x = setting_value(s, o);
    char w[32];
    switch (s->type) {
    case SET_SWITCH: snprintf(buf, len, "%s%s", s->flag, x ? "" : " off"); break;
    case SET_ONOFF:
        snprintf(buf, len, "%s %s", s->flag, s->word && x == s->word_value ? s->word : x ? "on" : "off");
        break;
    case SET_FLOAT: snprintf(buf, len, "%s %g", s->flag, x); break;
    case SET_CHOICE:
        for (int i = 0; choice_word(s, i, w, sizeof(w)), w[0]; i++)
            if (s->values[i] == (int)x) break;
        snprintf(buf, len, "%s %s", s->flag, w);
        break;
    case SET_WORD:
    case SET_PATH: snprintf(buf, len, "%s %s", s->flag, (const char*)cfield(s, o)); break;
    default:
        if (s->word && x == s->word_value) snprintf(buf, len, "%s %s", s->flag, s->word);
        else snprintf(buf, len, "%s %.0f", s->flag, x);
    }
}
