// Diagonalwise refactorization against a naive depthwise convolution (the oracle, which exists only
// here): output, input gradient and weight gradient, for g in {1, 3, 32, C} and C in {3, 32, 45, 64},
// stride 1 and 2, with an odd input size, on the reference backend (its grouped convolution is the
// defining sum, so this checks DR itself) and on the tuned CPU backend. A counting wrapper around
// the backend also proves that the layer issues exactly one grouped convolution per pass, with C / g
// groups.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/ops.h"
#include "../nn/util.h"
#include "test_util.h"

// --- the oracle: y[n][c] = sum_{ky,kx} w[c][ky][kx] * x[n][c][oy*s - p + ky][ox*s - p + kx] ------
static void naive_depthwise(double* y, double* dx, double* dw, const float* x, const float* w,
                            const float* dy, int N, int C, int H, int W, int K, int s, int p) {
    int Ho = (H + 2 * p - K) / s + 1, Wo = (W + 2 * p - K) / s + 1;
    memset(dx, 0, sizeof(double) * N * C * H * W);
    memset(dw, 0, sizeof(double) * C * K * K);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    size_t o = (((size_t)n * C + c) * Ho + oy) * Wo + ox;
                    double acc = 0.0;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int iy = oy * s - p + ky, ix = ox * s - p + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            size_t i = (((size_t)n * C + c) * H + iy) * W + ix;
                            size_t k = ((size_t)c * K + ky) * K + kx;
                            acc += (double)w[k] * x[i];
                            dx[i] += (double)w[k] * dy[o];
                            dw[k] += (double)x[i] * dy[o];
                        }
                    y[o] = acc;
                }
}

// --- a backend that counts the convolutions it is asked for -------------------------------------
static Backend counting;
static const Backend* real;
static int conv_calls[3], last_groups;
static void count_fwd(float* y, const float* x, const float* w, const ConvShape* s) {
    conv_calls[0]++, last_groups = s->groups;
    real->conv2d_forward(y, x, w, s);
}
static void count_bwd_data(float* dx, const float* dy, const float* w, const ConvShape* s, int acc) {
    conv_calls[1]++;
    real->conv2d_backward_data(dx, dy, w, s, acc);
}
static void count_bwd_filter(float* dw, const float* dy, const float* x, const ConvShape* s, int acc) {
    conv_calls[2]++;
    real->conv2d_backward_filter(dw, dy, x, s, acc);
}

static double rel_error_d(const float* a, const double* ref, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i])) return 1e30;
        d += (a[i] - ref[i]) * (a[i] - ref[i]);
        r += ref[i] * ref[i];
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

static void check(int C, int g, int stride) {
    const int N = 3, H = 11, W = 11, K = 3, P = 1;
    Engine* e = engine_create(&counting);
    int dims[4] = {N, C, H, W};
    Tensor* x = engine_param(e, "x", 4, dims, INIT_ZEROS, 0.0f); // a parameter: its gradient is kept
    DepthwiseConv2d dw;
    depthwise_init(&dw, e, "dw", C, K, stride, P, g);
    engine_alloc_params(e);
    Rng rng = rng_derive(42, (uint64_t)C, (uint64_t)(g * 10 + stride));
    size_t nx = (size_t)N * C * H * W, nw = (size_t)C * K * K;
    float* xh = NN_MALLOC(nx * sizeof(float));
    float* wh = NN_MALLOC(nw * sizeof(float));
    fill_uniform(xh, nx, -1.0f, 1.0f, &rng);
    fill_uniform(wh, nw, -1.0f, 1.0f, &rng);
    engine_write(e, x, xh);
    engine_write(e, dw.weight, wh);

    engine_plan_begin(e);
    depthwise_conv2d(e, &dw, x);
    engine_plan_end(e);
    memset(conv_calls, 0, sizeof(conv_calls));
    engine_begin(e, 1);
    Tensor* y = depthwise_conv2d(e, &dw, x);
    size_t ny = tensor_numel(y);
    float* dyh = NN_MALLOC(ny * sizeof(float));
    fill_uniform(dyh, ny, -1.0f, 1.0f, &rng);
    engine_zero_grad(e);
    engine_backward_from(e, y, dyh);

    float* yh = NN_MALLOC(ny * sizeof(float));
    float* dxh = NN_MALLOC(nx * sizeof(float));
    float* dwh = NN_MALLOC(nw * sizeof(float));
    engine_read(e, yh, y);
    engine_read_grad(e, dxh, x);
    engine_read_grad(e, dwh, dw.weight);
    double* yr = NN_MALLOC(ny * sizeof(double));
    double* dxr = NN_MALLOC(nx * sizeof(double));
    double* dwr = NN_MALLOC(nw * sizeof(double));
    naive_depthwise(yr, dxr, dwr, xh, wh, dyh, N, C, H, W, K, stride, P);

    double ey = rel_error_d(yh, yr, ny), edx = rel_error_d(dxh, dxr, nx), edw = rel_error_d(dwh, dwr, nw);
    int used = depthwise_group_size(C, g);
    printf("  %s C=%-3d g=%-3d (uses %-2d, %2d groups) stride %d: output %.1e  dx %.1e  dw %.1e  convs %d/%d/%d\n",
           real->name, C, g, used, C / used, stride, ey, edx, edw, conv_calls[0], conv_calls[1], conv_calls[2]);
    CHECK(ey <= 1e-5, "%s C=%d g=%d s=%d: output error %.2e", real->name, C, g, stride, ey);
    CHECK(edx <= 1e-5, "%s C=%d g=%d s=%d: input gradient error %.2e", real->name, C, g, stride, edx);
    CHECK(edw <= 1e-5, "%s C=%d g=%d s=%d: weight gradient error %.2e", real->name, C, g, stride, edw);
    CHECK(conv_calls[0] == 1 && conv_calls[1] == 1 && conv_calls[2] == 1,
          "C=%d g=%d: expected one grouped convolution per pass, got %d/%d/%d", C, g, conv_calls[0],
          conv_calls[1], conv_calls[2]);
    CHECK(last_groups == C / used, "C=%d g=%d: %d groups, expected %d", C, g, last_groups, C / used);
    CHECK(C % used == 0 && used <= g && used >= 1, "C=%d g=%d: group size %d", C, g, used);
    free(xh), free(wh), free(dyh), free(yh), free(dxh), free(dwh), free(yr), free(dxr), free(dwr);
    engine_destroy(e);
}

// --dw-group auto against a scripted clock: a backend whose events read a virtual clock that only
// the forward convolution advances, by 1/g ms (a larger g clearly faster) times a factor. Quiet
// (factor 1): auto picks the largest g. Noisy (factors from 0.6 to 1.4, so each candidate's repeated
// timings disagree by far more than the 5% margin the choice uses): auto must say so and keep the
// backend's default g instead of crowning a winner by chance.
static Backend scripted;
static double virtual_ms;
static int noisy, noise_at;
static void* ev_create(void) { return NN_CALLOC(1, sizeof(double)); }
static void ev_destroy(void* ev) { free(ev); }
static void ev_record(void* ev) { *(double*)ev = virtual_ms; }
static float ev_elapsed(void* a, void* b) { return (float)(*(double*)b - *(double*)a); }
static void scripted_fwd(float* y, const float* x, const float* w, const ConvShape* s) {
    static const double factors[] = {0.6, 1.4, 1.0, 0.8, 1.2, 0.7, 1.3};
    real->conv2d_forward(y, x, w, s);
    virtual_ms += (double)s->groups / s->c_in * (noisy ? factors[noise_at++ % 7] : 1.0);
}

static int autotune_with(int is_noisy, char* log, size_t len) {
    noisy = is_noisy, noise_at = 0;
    Engine* e = engine_create(&scripted);
    DepthwiseConv2d m;
    char name[32];
    snprintf(name, sizeof(name), "tune%d", is_noisy); // another name, another shape: no cached choice
    depthwise_init(&m, e, name, 16 + 8 * is_noisy, 3, 1, 1, 1);
    engine_alloc_params(e);
    FILE* f = fmemopen(log, len, "w");
    int g = depthwise_autotune(&scripted, &m, 2, 8, 8, f);
    fclose(f);
    engine_destroy(e);
    return g;
}

static void autotune_noise(void) {
    scripted = *real;
    scripted.conv2d_forward = scripted_fwd;
    scripted.event_create = ev_create, scripted.event_destroy = ev_destroy;
    scripted.event_record = ev_record, scripted.event_elapsed_ms = ev_elapsed;
    scripted.default_dw_group = 2;
    char log[1024] = "";
    int g = autotune_with(0, log, sizeof(log));
    CHECK(g == 16, "quiet timings, 1/g ms: auto chose g = %d, not 16: %s", g, log);
    printf("ok   --dw-group auto, quiet timings:%s", log);
    g = autotune_with(1, log, sizeof(log));
    CHECK(g == 2 && strstr(log, "noise-dominated") && strstr(log, "keeping the backend's default g = 2"),
          "noisy timings: auto chose g = %d without keeping the default: %s", g, log);
    printf("%s --dw-group auto, noisy timings:%s", g == 2 ? "ok  " : "FAIL", log);
}

// Wraps backend `name` into `counting` (and `real`).
static void use_backend(const char* name) {
    char err[256];
    BackendOptions opt = {0};
    real = backend_open(name, &opt, err, sizeof(err));
    if (!real) nn_fatal("%s", err);
    counting = *real;
    counting.conv2d_forward = count_fwd;
    counting.conv2d_backward_data = count_bwd_data;
    counting.conv2d_backward_filter = count_bwd_filter;
}

int main(void) {
    // The group size rule: the largest divisor of C not above the request.
    CHECK(depthwise_group_size(64, 32) == 32, "g(64, 32)");
    CHECK(depthwise_group_size(45, 32) == 15, "g(45, 32)");
    CHECK(depthwise_group_size(3, 32) == 3, "g(3, 32)");
    CHECK(depthwise_group_size(47, 32) == 1, "g(47, 32)");
    CHECK(depthwise_group_size(1024, 1024) == 1024, "g(1024, 1024)");

    const int Cs[] = {3, 32, 45, 64};
    for (int b = 0; b < 2; b++) {
        use_backend(b ? "cpu" : "ref");
        for (int ci = 0; ci < 4; ci++) {
            int C = Cs[ci];
            const int gs[] = {1, 3, 32, C};
            for (int gi = 0; gi < 4; gi++)
                for (int s = 1; s <= 2; s++) check(C, gs[gi], s);
        }
    }
    autotune_noise(); // on the tuned CPU backend
    return test_finish("test_depthwise");
}
