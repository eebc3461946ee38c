// --dw-group auto: each depthwise layer picks its group size g by timing diagonalwise
// refactorization on its real shape, like cuDNN's algorithm search. Candidates are 1, 2, 4, ... up
// to C (as divisors of C); a step is forward (scatter + grouped conv) plus backward (filter gradient
// + gather + data gradient). The search stops climbing once a candidate is twice as slow as the best,
// since the cost only grows from there (g times the arithmetic). Layers of the same shape share one
// measurement. Each candidate is timed TUNE_REPS times after a warm-up and scored by the median, so
// one disturbed repetition (another process, a page fault) does not decide; the log gives the
// winner's margin over the runner-up, so a near tie is visible as one.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "profile.h"
#include "rng.h"
#include "util.h"

#define TUNE_REPS 7
#define MAX_SHAPES 64

typedef struct TunedShape {
    int c, n, h, w, stride, g;
} TunedShape;

static TunedShape tuned[MAX_SHAPES];
static int num_tuned;

static void* alloc_random(const Backend* be, size_t count, uint64_t seed) {
    float* host = NN_MALLOC(count * sizeof(float));
    Rng rng = rng_derive(seed, 0x70e, count);
    for (size_t i = 0; i < count; i++) host[i] = 2.0f * rng_uniform(&rng) - 1.0f;
    void* p = be->alloc(count * sizeof(float), "--dw-group auto buffers");
    be->upload(p, host, count * sizeof(float));
    free(host);
    return p;
}

// Median over TUNE_REPS (after one warm-up) of one forward + backward step with group size g, in milliseconds.
static double time_group(const Backend* be, const ConvShape* base, int g, float* x, float* y, float* dy,
                         float* dx, float* w, float* dw, float* wbig, float* dwbig) {
    ConvShape s = *base;
    s.groups = s.c_in / g;
    int kk = s.k * s.k;
    StreamTimer t;
    stream_timer_init(&t, be);
    double ms[TUNE_REPS + 1];
    for (int r = 0; r <= TUNE_REPS; r++) { // r = 0 warms up (and lets cuDNN pick its algorithms)
        stream_timer_start(&t);
        be->dr_scatter(wbig, w, s.c_in, g, kk);
        be->conv2d_forward(y, x, wbig, &s);
        be->conv2d_backward_filter(dwbig, dy, x, &s, 0);
        be->dr_gather(dw, dwbig, s.c_in, g, kk);
        be->conv2d_backward_data(dx, dy, wbig, &s, 0);
        stream_timer_stop(&t);
        ms[r] = stream_timer_ms(&t);
    }
    stream_timer_free(&t);
    // median of the timed repetitions
    for (int i = 1; i <= TUNE_REPS; i++)
        for (int j = i + 1; j <= TUNE_REPS; j++)
            if (ms[j] < ms[i]) {
                double tmp = ms[i];
                ms[i] = ms[j], ms[j] = tmp;
            }
    return ms[1 + TUNE_REPS / 2];
}

int depthwise_autotune(const Backend* be, DepthwiseConv2d* m, int n, int h, int w, FILE* log) {
    for (int i = 0; i < num_tuned; i++) {
        TunedShape* t = &tuned[i];
        if (t->c == m->c && t->n == n && t->h == h && t->w == w && t->stride == m->stride) {
            depthwise_set_group(m, t->g);
            if (log) fprintf(log, "  %-16s %4d channels, %2dx%-2d stride %d: g = %d (same shape as above)\n",
                             m->name, m->c, h, w, m->stride, m->g);
            return m->g;
        }
    }
    ConvShape s = {.n = n, .c_in = m->c, .h = h, .w = w, .c_out = m->c, .k = m->k, .stride = m->stride,
                   .pad = m->pad};
    s.h_out = conv_out_size(h, m->k, m->stride, m->pad);
    s.w_out = conv_out_size(w, m->k, m->stride, m->pad);
    size_t nx = (size_t)n * m->c * h * w, ny = (size_t)n * m->c * s.h_out * s.w_out;
    size_t nw = (size_t)m->c * m->k * m->k, nbig = nw * m->c; // room for g = C
    float* x = alloc_random(be, nx, 1);
    float* dy = alloc_random(be, ny, 2);
    float* wt = alloc_random(be, nw, 3);
    float* y = be->alloc(ny * sizeof(float), "--dw-group auto buffers");
    float* dx = be->alloc(nx * sizeof(float), "--dw-group auto buffers");
    float* dw = be->alloc(nw * sizeof(float), "--dw-group auto buffers");
    float* wbig = be->alloc(nbig * sizeof(float), "--dw-group auto buffers");
    float* dwbig = be->alloc(nbig * sizeof(float), "--dw-group auto buffers");
    be->zero(dw, nw * sizeof(float));

    if (log) fprintf(log, "  %-16s %4d channels, %2dx%-2d stride %d:", m->name, m->c, h, w, m->stride);
    int best_g = 1, last = 0, second_g = 0; // second_g = 0: no runner-up yet
    double best = 1e300, second = 1e300;
    for (int cand = 1; last < m->c; cand *= 2) {
        int g = depthwise_group_size(m->c, cand);
        if (g == last) continue;
        last = g;
        double ms = time_group(be, &s, g, x, y, dy, dx, wt, dw, wbig, dwbig);
        if (log) fprintf(log, " g=%d %.3f ms", g, ms);
        if (ms < best) second = best, second_g = best < 1e300 ? best_g : 0, best = ms, best_g = g;
        else if (ms < second) second = ms, second_g = g;
        if (ms > 2 * best) break;
    }
    if (log && second_g) fprintf(log, " -> g = %d, %.2fx faster than g = %d\n", best_g, second / best, second_g);
    else if (log) fprintf(log, " -> g = %d (the only candidate)\n", best_g);
    be->free(x), be->free(dy), be->free(wt), be->free(y), be->free(dx), be->free(dw);
    be->free(wbig), be->free(dwbig);
    depthwise_set_group(m, best_g);
    if (num_tuned < MAX_SHAPES)
        tuned[num_tuned++] = (TunedShape){m->c, n, h, w, m->stride, best_g};
    return best_g;
}
