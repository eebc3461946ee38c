// The reference backend's bf16 mode (BackendOptions.bf16), which the tuned bf16 kernels are tested
// against, checked on its own terms:
//   1. it rounds the factors of every product and nothing else: ref in bf16 mode on (x, w) gives the
//      same bits as ref in FP32 mode on (bf16(x), bf16(w)), for the convolution's three passes (a
//      3x3 grouped stride-2 convolution, a 1x1 one) and linear forward and backward. Both sum the
//      same products in double and round once, so any other rounding (of a sum, of the bias, of one
//      factor only) would show as a bit difference;
//   2. it does round: against plain FP32 the outputs move, and by no more than bf16 allows. Each
//      factor moves by at most 2^-8 of itself, so a product by at most (2^-8 + 2^-8 + 2^-16) of
//      |a b|, and a sum of K products by at most (2^-7 + 2^-16) * sum |a_k b_k|; both results are then
//      rounded to FP32 once (2^-24 of each). The test checks that per output element, and that the
//      largest move is at least 2^-12 of its own bound's scale, i.e. that rounding happened at all.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/backend.h"
#include "../nn/bf16.h"
#include "../nn/util.h"
#include "test_util.h"

static const Backend* open_ref(int bf16) {
    char err[256];
    BackendOptions opt = {.bf16 = bf16};
    const Backend* be = backend_open("ref", &opt, err, sizeof(err));
    if (!be) nn_fatal("%s", err);
    return be;
}

static float* random_floats(size_t n, uint64_t seed) { return uniform_floats(n, 31, 32, seed); }

static float* rounded(const float* x, size_t n) {
    float* r = NN_MALLOC(n * sizeof(float));
    for (size_t i = 0; i < n; i++) r[i] = bf16_operand_value(x[i]);
    return r;
}

static float* zeros(size_t n) { return NN_CALLOC(n, sizeof(float)); }

// One pass: out = f(a, b) three ways (bf16 mode on a, b; FP32 on the rounded a, b; FP32 on a, b).
// mag = f(|a|, |b|) in FP32, the sum of |products| each output's bound scales with.
typedef void (*PassFn)(float* out, const float* a, const float* b, const void* shape);

static void check_pass(const char* name, PassFn f, const void* shape, size_t na, size_t nb, size_t nout,
                       uint64_t seed) {
    float *a = random_floats(na, seed), *b = random_floats(nb, seed + 100);
    float *ar = rounded(a, na), *br = rounded(b, nb);
    float *abs_a = NN_MALLOC(na * sizeof(float)), *abs_b = NN_MALLOC(nb * sizeof(float));
    for (size_t i = 0; i < na; i++) abs_a[i] = fabsf(a[i]);
    for (size_t i = 0; i < nb; i++) abs_b[i] = fabsf(b[i]);
    float *y16 = zeros(nout), *y16r = zeros(nout), *y32 = zeros(nout), *mag = zeros(nout);
    open_ref(1);
    f(y16, a, b, shape);
    open_ref(0);
    f(y16r, ar, br, shape);
    f(y32, a, b, shape);
    f(mag, abs_a, abs_b, shape);
    size_t differ = 0, over = 0;
    double worst = 0.0, largest_move = 0.0;
    for (size_t i = 0; i < nout; i++) {
        differ += memcmp(&y16[i], &y16r[i], sizeof(float)) != 0;
        double move = fabs((double)y16[i] - y32[i]);
        double bound = (ldexp(1, -7) + ldexp(1, -16)) * mag[i] + ldexp(1, -24) * (fabs(y16[i]) + fabs(y32[i]));
        if (move > bound) over++;
        if (bound > 0) worst = fmax(worst, move / bound);
        largest_move = fmax(largest_move, move / (mag[i] > 0 ? mag[i] : 1));
    }
    CHECK(differ == 0, "%s: %zu of %zu outputs of bf16 mode differ from FP32 on pre-rounded operands", name, differ,
          nout);
    CHECK(over == 0, "%s: %zu of %zu outputs moved from FP32 by more than the bf16 bound", name, over, nout);
    CHECK(largest_move >= ldexp(1, -12), "%s: bf16 mode moved no output by 2^-12 of its scale (%.3g): no rounding?",
          name, largest_move);
    printf("  %-40s %7zu outputs  identical to FP32 on rounded operands: %s  worst move/bound %.3f\n", name, nout,
           differ ? "NO" : "yes", worst);
    free(a), free(b), free(ar), free(br), free(abs_a), free(abs_b), free(y16), free(y16r), free(y32), free(mag);
}

// The passes through the backend table (ref memory is host memory); the mode is the last init's.
static const Backend* ref;
static void conv_fwd_pass(float* y, const float* x, const float* w, const void* s) { ref->conv2d_forward(y, x, w, s); }
static void conv_data_pass(float* dx, const float* dy, const float* w, const void* s) {
    ref->conv2d_backward_data(dx, dy, w, s, 0);
}
static void conv_filter_pass(float* dw, const float* dy, const float* x, const void* s) {
    ref->conv2d_backward_filter(dw, dy, x, s, 0);
}

typedef struct LinearShape {
    int n, in, out;
} LinearShape;
static void linear_fwd_pass(float* y, const float* x, const float* w, const void* p) {
    const LinearShape* l = p;
    float* b = zeros((size_t)l->out);
    ref->linear_forward(y, x, w, b, l->n, l->in, l->out);
    free(b);
}
// dx = dy w (the filter gradient is checked below with dw as the output).
static void linear_data_pass(float* dx, const float* dy, const float* w, const void* p) {
    const LinearShape* l = p;
    float *dw = zeros((size_t)l->out * l->in), *db = zeros((size_t)l->out), *x = zeros((size_t)l->n * l->in);
    ref->linear_backward(dx, dw, db, dy, x, w, l->n, l->in, l->out, 0);
    free(dw), free(db), free(x);
}
static void linear_filter_pass(float* dw, const float* dy, const float* x, const void* p) {
    const LinearShape* l = p;
    float *db = zeros((size_t)l->out), *w = zeros((size_t)l->out * l->in);
    ref->linear_backward(NULL, dw, db, dy, x, w, l->n, l->in, l->out, 0);
    free(db), free(w);
}

static void check_conv(const char* name, ConvShape s, uint64_t seed) {
    size_t nx = (size_t)s.n * s.c_in * s.h * s.w, ny = (size_t)s.n * s.c_out * s.h_out * s.w_out;
    size_t nw = (size_t)s.c_out * (s.c_in / s.groups) * s.k * s.k;
    char what[96];
    snprintf(what, sizeof(what), "%s forward", name);
    check_pass(what, conv_fwd_pass, &s, nx, nw, ny, seed);
    snprintf(what, sizeof(what), "%s backward-data", name);
    check_pass(what, conv_data_pass, &s, ny, nw, nx, seed + 1);
    snprintf(what, sizeof(what), "%s backward-filter", name);
    check_pass(what, conv_filter_pass, &s, ny, nx, nw, seed + 2);
}

int main(void) {
    ref = open_ref(0);
    printf("The reference backend's bf16 mode: operands rounded, nothing else; moves within bf16's bound\n");
    // 3x3, stride 2, padding 1, groups of 2 channels (a depthwise layer by DR with g = 2), odd size.
    check_conv("conv 3x3 s2 g=2", (ConvShape){3, 8, 9, 9, 8, 3, 2, 1, 4, 5, 5, 0, 0}, 1);
    check_conv("conv 1x1 16->24", (ConvShape){2, 16, 5, 5, 24, 1, 1, 0, 1, 5, 5, 0, 0}, 11);
    LinearShape l = {5, 40, 10};
    check_pass("linear forward", linear_fwd_pass, &l, (size_t)l.n * l.in, (size_t)l.out * l.in, (size_t)l.n * l.out, 21);
    check_pass("linear backward-data", linear_data_pass, &l, (size_t)l.n * l.out, (size_t)l.out * l.in,
               (size_t)l.n * l.in, 22);
    check_pass("linear backward-filter", linear_filter_pass, &l, (size_t)l.n * l.out, (size_t)l.n * l.in,
               (size_t)l.out * l.in, 23);
    open_ref(0);
    return test_finish("test_bf16_ref");
}
