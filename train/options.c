#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/dataset.h"
#include "../models/model.h"
#include "args.h"
#include "settings.h"

static const char* USAGE_HEAD =
    "usage: train MODEL DATASET [options]\n"
    "Trains MODEL on DATASET with depthwise convolutions computed by diagonalwise refactorization.\n";
// (then one MODEL line per registered model, models/model.c, and the flags of the settings table)
static const char* EXAMPLES =
    "\n"
    "Examples\n"
    "  train mobilenet cifar10                           the standard 200-epoch run\n"
    "  train mobilenet cifar10 --epochs 1                one epoch (a quick check)\n"
    "  train mobilenet cifar10 --out runs/first          resumable: --resume runs/first\n"
    "  train mobilenet cifar10 --profile                 per-layer timing table\n"
    "  mpirun -np 2 train mobilenet cifar10 --threads 1  2 processes, one share of each batch each\n";

#define HELP_COLUMN 24 // where the flags' descriptions start
#define HELP_WIDTH 100 // and the column they are wrapped before

// Prints text from column `at` on, wrapped at word boundaries before HELP_WIDTH, continuation lines
// starting at HELP_COLUMN.
static void print_wrapped(const char* text, int at) {
    while (*text) {
        size_t n = strcspn(text, " ");
        if (at > HELP_COLUMN && at + 1 + (int)n > HELP_WIDTH) {
            printf("\n%*s", HELP_COLUMN, "");
            at = HELP_COLUMN;
        } else if (at > HELP_COLUMN) {
            putchar(' ');
            at++;
        }
        printf("%.*s", (int)n, text);
        at += (int)n;
        text += n;
        while (*text == ' ') text++;
    }
    putchar('\n');
}

// --help: the models of the registry, then every entry of the settings table in its order: the
// flag, its value's name, its description, and what the table says besides (the default, a flag it
// implies or needs).
static void print_help(void) {
    fputs(USAGE_HEAD, stdout);
    for (int m = 0; model_at(m); m++)
        printf("  %-8s %-11s (%s)\n", m ? "" : "MODEL", model_at(m)->name, model_at(m)->summary);
    for (int d = 0; dataset_at(d); d++)
        printf("  %-8s %-11s (%s)\n", d ? "" : "DATASET", dataset_at(d)->name, dataset_at(d)->summary);
    for (const Setting* s = SETTINGS; s->flag; s++) {
        char arg[64], head[96], dflt[64], text[1024], extra[160] = "";
        if (s->section) printf("\n%s\n", s->section);
        setting_arg(s, arg, sizeof(arg));
        setting_default_text(s, dflt, sizeof(dflt));
        int n = snprintf(head, sizeof(head), "  %s%s%s", s->flag, arg[0] ? " " : "", arg);
        if (dflt[0]) snprintf(extra, sizeof(extra), "%s", dflt);
        if (s->implies)
            snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "%simplies %s", extra[0] ? "; " : "",
                     s->implies);
        if (s->needs)
            snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "%sneeds %s", extra[0] ? "; " : "",
                     s->needs);
        snprintf(text, sizeof(text), "%s%s%s%s", s->help, extra[0] ? " (" : "", extra, extra[0] ? ")" : "");
        if (n + 1 > HELP_COLUMN) printf("%s\n%*s", head, HELP_COLUMN, ""); // a long flag: text on the next line
        else printf("%-*s", HELP_COLUMN, head);
        print_wrapped(text, HELP_COLUMN);
    }
    fputs(EXAMPLES, stdout);
}

int options_training(const Options* o) {
    for (const Setting* s = SETTINGS; s->flag; s++)
        if (s->no_train && setting_value(s, o)) return 0;
    return 1;
}

// Parses one flag's value through the settings table (the same parser config.json's values go
// through), or exits 2 naming the flag, the value and what it accepts.
static void parse_value(const Setting* s, const char* v, Options* o) {
    if (setting_parse(s, v, o) == SETTING_OK) return;
    char want[128], msg[160];
    setting_want(s, want, sizeof(want));
    snprintf(msg, sizeof(msg), "expected %s", want);
    args_bad(s->flag, v, msg);
}

// The value of a flag as the message shows it (NULL for a switch).
static const char* shown_value(const Setting* s, const Options* o, char* buf, size_t len) {
    if (s->type == SET_SWITCH || s->type == SET_ACTION) return NULL;
    setting_show(s, o, buf, len); // "--out r"
    return buf + strlen(s->flag) + 1;
}

// The rules between flags that the table states: what a flag needs, what it cannot be combined
// with, and the files only a training run writes (where they would be ignored they are refused).
static void check_rules(const Options* o) {
    char value[PATH_LEN + 64], msg[256], stops[160] = "";
    for (const Setting* s = SETTINGS; s->flag; s++)
        if (s->no_train) // "--print-model, --eval-only or --profile": the commands that do not train
            snprintf(stops + strlen(stops), sizeof(stops) - strlen(stops), "%s%s", stops[0] ? ", " : "", s->flag);
    for (const Setting* s = SETTINGS; s->flag; s++) {
        if (!setting_given(s, o)) continue;
        if (s->conflicts && setting_given(setting_named(s->conflicts), o)) {
            snprintf(msg, sizeof(msg), "cannot be combined with %s", s->conflicts);
            args_bad(s->flag, shown_value(s, o, value, sizeof(value)), msg);
        }
        if (s->needs && !setting_given(setting_named(s->needs), o)) {
            char arg[64];
            setting_arg(setting_named(s->needs), arg, sizeof(arg));
            snprintf(msg, sizeof(msg), "needs %s %s", s->needs, arg);
            args_bad(s->flag, NULL, msg);
        }
        if (s->training_only && !options_training(o)) {
            snprintf(msg, sizeof(msg), "only a training run writes it (not with %s, or a flag that implies one)", stops);
            args_bad(s->flag, shown_value(s, o, value, sizeof(value)), msg);
        }
    }
}

void options_parse(Options* o, int argc, char** argv) {
    memset(o, 0, sizeof(*o));
    settings_defaults(o);

    int positional = 0;
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        if (strncmp(a, "--", 2) != 0 && strcmp(a, "-h") != 0) {
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
            snprintf(flag, sizeof(flag), "%s", strcmp(a, "-h") ? a : "--help");
        }
        const Setting* s = setting_by_flag(flag);
        if (!s) args_bad(flag, NULL, "unknown option");
        if (s->type == SET_ACTION) { // --help, --version: at once, whatever else the line holds
            if (!strcmp(s->flag, "--help")) print_help();
            else print_version();
            exit(0);
        }
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
        setting_mark_given(s, o);
        if (s->implies) setting_store(setting_named(s->implies), o, 1); // --profile-steps: --profile
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
    if (!dataset_find(o->dataset)) {
        fprintf(stderr, "error: unknown dataset '%s': known datasets: %s (see %s --help)\n", o->dataset,
                dataset_names(), args_program);
        exit(2);
    }
    check_rules(o);
    if (o->eval_only && !o->resume[0] && !o->init[0])
        args_bad("--eval-only", NULL, "needs weights: give --resume PATH or --init PATH");
}
