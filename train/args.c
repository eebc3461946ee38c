#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char* args_program = "train";

void args_bad(const char* flag, const char* value, const char* want) {
    fprintf(stderr, "error: %s%s%s: %s (see %s --help)\n", flag, value ? " " : "", value ? value : "", want,
            args_program);
    exit(2);
}

long args_long(const char* flag, const char* v, long lo, long hi) {
    char* end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        char want[96];
        snprintf(want, sizeof(want), "expected an integer in %ld..%ld", lo, hi);
        args_bad(flag, v, want);
    }
    return x;
}

float args_float(const char* flag, const char* v, double lo, double hi) {
    char* end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || x > hi) {
        char want[96];
        snprintf(want, sizeof(want), "expected a number in %g..%g", lo, hi);
        args_bad(flag, v, want);
    }
    return (float)x;
}

int args_onoff(const char* flag, const char* v) {
    if (!strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "true")) return 1;
    if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "false")) return 0;
    args_bad(flag, v, "expected on or off");
}
