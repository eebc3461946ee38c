// Command-line values, checked whole: a number must parse to its last character and lie in range,
// a switch must be on or off. Anything else exits 2 with "error: FLAG VALUE: what was expected (see
// PROGRAM --help)", so a typo such as "--batch 12O" never runs as 12. ./train and the benchmarks
// share these.
#ifndef TRAIN_ARGS_H
#define TRAIN_ARGS_H

#include "../nn/util.h"

// The program named in the messages' "(see PROGRAM --help)"; "train" unless main sets another.
extern const char* args_program;

NN_NORETURN void args_bad(const char* flag, const char* value, const char* want);
long args_long(const char* flag, const char* v, long lo, long hi);
float args_float(const char* flag, const char* v, double lo, double hi);
int args_onoff(const char* flag, const char* v); // on|1|true or off|0|false

#endif
