#include "test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "../nn/backend.h"
#include "../nn/util.h"

#ifdef WITH_CUDA
#include <cuda_runtime.h>

#include "../kernels/cuda/cuda_stream.h" // drnet_cuda_conv_report
#endif

int test_failures = 0;

int test_check(int cond, const char* file, int line, const char* fmt, ...) {
    if (cond) return 1;
    test_failures++;
    // The rows printed so far first: when both streams go to one pipe or file (ctest, the GPU
    // session's logs), a buffered stdout would otherwise put this line in the middle of a row.
    fflush(stdout);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 0;
}

int test_finish(const char* name) {
    fflush(stdout);
    if (test_failures) {
        fprintf(stderr, "%s: %d check(s) FAILED\n", name, test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

void fill_uniform(float* x, size_t n, float lo, float hi, Rng* rng) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng_uniform(rng);
}

float* uniform_floats(size_t n, uint64_t a, uint64_t b, uint64_t seed) {
    float* x = NN_MALLOC(n * sizeof(float));
    Rng rng = rng_derive(a, b, seed);
    fill_uniform(x, n, -1.0f, 1.0f, &rng);
    return x;
}

double l2_norm(const float* a, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * a[i];
    return sqrt(s);
}

double rel_error(const float* a, const float* b, size_t n) {
    double d = 0.0, r = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) return 1e30;
        double e = (double)a[i] - b[i];
        d += e * e;
        r += (double)b[i] * b[i];
    }
    if (r == 0.0) return d == 0.0 ? 0.0 : 1e30;
    return sqrt(d / r);
}

double max_abs_diff(const float* a, const float* b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (isnan(e)) return 1e30;
        if (e > m) m = e;
    }
    return m;
}

int test_gpu_unavailable(const char* test, const char* why) {
    const char* req = getenv("DRNET_REQUIRE_GPU");
    if (req && *req && strcmp(req, "0") != 0) {
        fprintf(stderr, "FAIL %s: DRNET_REQUIRE_GPU is set but %s\n", test, why);
        return 1;
    }
    printf("%s: skipped: %s\n", test, why);
    return TEST_SKIP;
}

// What the CUDA backend's convolution report says, in a string to free.
#ifdef WITH_CUDA
static char* conv_report(void) {
    char* report = NULL;
    size_t len = 0;
    FILE* f = open_memstream(&report, &len);
    if (!f) nn_fatal("open_memstream failed");
    drnet_cuda_conv_report(f);
    fclose(f);
    return report;
}
#endif

void test_check_algo_filter(void) {
#ifdef WITH_CUDA
    const char* pointwise = getenv("DRNET_CUDA_POINTWISE");
    if (pointwise && !strcmp(pointwise, "gemm")) {
        // Forced, every direction of every 1x1 convolution runs as one GEMM: the report must say so
        // for all three, or the forced path was never exercised.
        char* report = conv_report();
        static const char* const dirs[] = {"forward one GEMM", "backward-data one GEMM", "backward-filter one GEMM"};
        int missing = 0;
        for (int i = 0; i < 3; i++) missing += strstr(report, dirs[i]) == NULL;
        CHECK(missing == 0, "DRNET_CUDA_POINTWISE=gemm, but no 1x1 convolution ran as one GEMM in %d of the three "
              "directions:\n%s", missing, report);
        if (!missing) printf("DRNET_CUDA_POINTWISE=gemm honoured: 1x1 convolutions ran as one GEMM in all three directions\n");
        free(report);
    }
    const char* want = getenv("DRNET_CUDNN_ALGOS");
    if (!want || strcmp(want, "gemm") != 0) return;
    char* report = conv_report();
    // The report names each direction's algorithm ("forward WINOGRAD (...)"); these are the
    // non-GEMM ones by cuDNN's names, read independently of the backend's own filter.
    static const char* const banned[] = {" FFT", " FFT_TILING", " WINOGRAD", " WINOGRAD_NONFUSED", " DIRECT",
                                         "backward-data ALGO_0", "backward-filter ALGO_0", "backward-filter ALGO_3"};
    int bad = 0;
    for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++) bad += strstr(report, banned[i]) != NULL;
    CHECK(bad == 0, "DRNET_CUDNN_ALGOS=gemm, but a plan uses a non-GEMM cuDNN algorithm:\n%s", report);
    if (!bad) printf("DRNET_CUDNN_ALGOS=gemm honoured: every convolution plan uses a GEMM-like algorithm\n");
    free(report);
#endif
}

int test_cuda_missing(char* why, size_t len) {
    if (!backend_cuda_compiled()) {
        snprintf(why, len, "this build has no CUDA backend (it is built when CMake finds nvcc, cuDNN and cuBLAS)");
        return 1;
    }
#ifdef WITH_CUDA
    int devices = 0;
    cudaError_t ce = cudaGetDeviceCount(&devices);
    if (ce != cudaSuccess || devices == 0) {
        (void)cudaGetLastError();
        snprintf(why, len, "no CUDA device (cudaGetDeviceCount: %s)", ce != cudaSuccess ? cudaGetErrorString(ce) : "0 devices");
        return 1;
    }
#endif
    return 0;
}

// The lines DRNET_CUDA_VERBOSE=1 adds to an output: a search's header, and its candidate rows.
#define SEARCH_HEADER "^cuda: (forward|backward-data|backward-filter) "
#define SEARCH_ROW "^  [ *] (IMPLICIT_|GEMM|DIRECT|FFT|WINOGRAD|ALGO_|\\?)"

void test_show_output(const char* dir, const char* file, int tail) {
    char cmd[1024], keep[32] = "";
    if (tail > 0) snprintf(keep, sizeof(keep), " | tail -%d", tail);
    snprintf(cmd, sizeof(cmd), "grep -vE '" SEARCH_HEADER "|" SEARCH_ROW "' %s/%s | sed 's/^/    | /'%s", dir, file,
             keep);
    fflush(stdout);
    if (system(cmd) != 0) fprintf(stderr, "(could not show %s/%s)\n", dir, file);
}

void test_show_algorithms(const char* dir, const char* file) {
    char cmd[1024];
    printf("  cuDNN algorithms chosen in %s (shape, then the chosen candidate):\n", file);
    fflush(stdout);
    snprintf(cmd, sizeof(cmd), "grep -E '" SEARCH_HEADER "|^  \\* ' %s/%s | sed 's/^/    | /'", dir, file);
    if (system(cmd) != 0) fprintf(stderr, "(could not show the algorithms of %s/%s)\n", dir, file);
}

const char* test_data_path(char* why, size_t len) {
    const char* path = getenv("CIFAR10_PATH");
    if (path && *path && access(path, R_OK) == 0) return path;
    if (!path || !*path)
        snprintf(why, len, "no CIFAR-10 data: CIFAR10_PATH is not set (ctest sets it to the path CMake chose)");
    else
        snprintf(why, len,
                 "no CIFAR-10 data at %s (the path CMake chose when it configured; `cmake -P "
                 "cmake/fetch_cifar10.cmake` puts the archive in data/, -DCIFAR10_PATH=... names another)",
                 path);
    return NULL;
}

void test_data_folder(const char* scratch, char* folder, size_t len) {
    const char* path = getenv("CIFAR10_PATH");
    struct stat st;
    if (path && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(folder, len, "%s", path);
        return;
    }
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "tar -xzf '%s' -C %s", path ? path : "", scratch);
    if (system(cmd) != 0) nn_fatal("%s failed", cmd);
    snprintf(folder, len, "%s/cifar-10-batches-bin", scratch);
}

const char* test_run_dir(const char* dir) {
    static char path[400];
    static int runs;
    snprintf(path, sizeof(path), "%s/run-%d", dir, ++runs);
    return path;
}

const char* test_out_flag(const char* dir, const char* args) {
    static char flag[420];
    if (strstr(args, "--resume") || strstr(args, "--eval-only") || strstr(args, "--out ")) return "";
    snprintf(flag, sizeof(flag), "--out %s", test_run_dir(dir));
    return flag;
}

int test_wall_clock(const char* record) {
    return !strcmp(record, "train.epoch_seconds") || !strcmp(record, "train.run_seconds");
}

float* bf16_boundary_patterns(size_t* n) {
    static const uint32_t low[] = {0x0000, 0x0001, 0x3FFF, 0x7FFF, 0x8000, 0x8001, 0xBFFF, 0xC000, 0xFFFF};
    const size_t nl = sizeof(low) / sizeof(low[0]);
    *n = (size_t)65536 * nl;
    float* x = NN_MALLOC(*n * sizeof(float));
    for (uint32_t hi = 0; hi < 65536; hi++)
        for (size_t j = 0; j < nl; j++) x[hi * nl + j] = bits_float(hi << 16 | low[j]);
    return x;
}
