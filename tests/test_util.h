// Helpers shared by the tests: failure bookkeeping (a failed check prints and makes the test exit
// non-zero), random fills and error norms.
#ifndef TESTS_TEST_UTIL_H
#define TESTS_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../nn/rng.h"

extern int test_failures;

// A float's bit pattern and back (for bit-exact comparisons and hand-made patterns).
static inline uint32_t float_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    return u;
}
static inline float bits_float(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof(x));
    return x;
}

// Every bf16 rounding case as FP32 bit patterns (caller frees): each of the 65536 high halves (sign,
// exponent, the 7 fraction bits bf16 keeps) with the low half at each rounding boundary (0, 1,
// 0x3FFF, 0x7FFF, ties 0x8000, 0x8001, 0xBFFF, 0xC000, 0xFFFF): ties both ways, the carry into the
// exponent and into Inf, NaN payloads only the low half holds, denormals that round up to 2^-126.
float* bf16_boundary_patterns(size_t* n);

#define TEST_SKIP 77 // CTest's skip code (set as SKIP_RETURN_CODE)

// A GPU test that cannot run (no CUDA backend in the build, no device, a driver that fails):
// prints why and returns TEST_SKIP, or, when the environment sets DRNET_REQUIRE_GPU (to anything
// but 0), prints "FAIL" and returns 1, so that on a GPU machine a broken device is a failure and
// never hides as a skip. Use: return test_gpu_unavailable("test_x", why);
int test_gpu_unavailable(const char* test, const char* why);

// 1 with the reason in why when no CUDA device can be used here (no CUDA backend in this build, or no
// device), else 0.
int test_cuda_missing(char* why, size_t len);

// With DRNET_CUDNN_ALGOS=gemm in the environment (the strict GPU tests set it in tests/tests.cmake):
// checks, from the CUDA backend's report of every convolution plan, that no FFT, Winograd, DIRECT
// or atomic backward algorithm was chosen, and prints the report if one was. No-op otherwise and in
// builds without CUDA.
void test_check_algo_filter(void);

// The output file DIR/FILE of a ./train run, indented, for a failed check: without the candidate tables of
// the cuDNN searches that DRNET_CUDA_VERBOSE=1 prints; tail > 0 keeps only its last lines.
void test_show_output(const char* dir, const char* file, int tail);
// Only each cuDNN search's shape and its chosen candidate, from such an output (a GPU test that
// fails names the algorithms that ran).
void test_show_algorithms(const char* dir, const char* file);

// The CIFAR-10 data the tests read: $CIFAR10_PATH, which ctest sets to the path CMake chose when it
// configured (-DCIFAR10_PATH, else the environment's CIFAR10_PATH then, else data/ in the checkout).
// NULL if it is unset or unreadable, with why (len bytes) saying which path is missing and how to
// provide it, for the skip line a user reads in ctest's summary.
const char* test_data_path(char* why, size_t len);

// CIFAR10_PATH as a folder for --data, for tests that start ./train many times: an archive is
// unpacked once into scratch (each start then skips the decompression), a folder (an extracted copy,
// as a GPU session's converted one is) is used as it is. Writes it to folder; fatal if tar fails.
void test_data_folder(const char* scratch, char* folder, size_t len);

// A new run directory's path, DIR/run-N (N counting up from 1), for a ./train run's --out: without
// --out a new run makes its directory under runs/ in the working directory, which for ctest is the
// checkout, and a test must leave nothing there. Static storage, overwritten by the next call.
const char* test_run_dir(const char* dir);
// "--out DIR/run-N" for a ./train run that starts a new run, "" for one that does not (ARGS holds
// --resume or --eval-only, which refuse --out) or that names its own --out.
const char* test_out_flag(const char* dir, const char* args);
// A checkpoint record that holds wall-clock time (train.epoch_seconds, train.run_seconds): two runs
// of the same arithmetic differ there and nowhere else.
int test_wall_clock(const char* record);

// Records a failure (printing the message with the test's location) when cond is false.
#define CHECK(cond, ...) test_check((cond), __FILE__, __LINE__, __VA_ARGS__)
int test_check(int cond, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

// Prints a summary and returns the process exit status: 0 if nothing failed, 1 otherwise.
int test_finish(const char* name);

void fill_uniform(float* x, size_t n, float lo, float hi, Rng* rng);
// n new floats uniform in [-1, 1), from the stream rng_derive(a, b, seed) (free them).
float* uniform_floats(size_t n, uint64_t a, uint64_t b, uint64_t seed);
// ||a - b|| / ||b|| (0 when both are zero; 1e30 if any is NaN).
double rel_error(const float* a, const float* b, size_t n);
double max_abs_diff(const float* a, const float* b, size_t n);
double l2_norm(const float* a, size_t n);

#endif
