// --dw-group auto: each depthwise layer picks its group size g by timing diagonalwise
// refactorization on its real shape, like cuDNN's algorithm search. Candidates are 1, 2, 4, ... up
// to C (as divisors of C); a step is forward (scatter + grouped conv) plus backward (filter gradient
// + gather + data gradient). Layers of the same shape share one measurement.
// Two runs on the same machine must choose the same g, so the search is built against noise:
//   1. climb: each candidate is timed once after a warm-up, and the climb stops once a candidate is
//      twice as slow as the best (the cost only grows from there: g times the arithmetic);
//   2. rounds: TUNE_REPS rounds each time every remaining candidate once, in turn, so a slow spell of
//      the machine falls on all candidates alike; each is scored by its median;
//   3. choice: the smallest g, unless a larger one is faster by more than TUNE_MARGIN (a larger g
//      does more redundant arithmetic, and a near tie would otherwise go either way between runs);
//   4. unless the rounds disagree with themselves: when any candidate's repeated timings spread by
//      more than that margin (the middle five of seven, so one stray timing does not count), the
//      medians cannot be ranked at that margin either (a machine busy with other work), so the
//      choice would be noise: the backend's default g is kept, and the log says so.
// The log gives every median and the winner's margin, so a near tie is visible as one.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "profile.h"
#include "rng.h"
#include "util.h"

#define TUNE_REPS 7
#define TUNE_MARGIN 1.05
#define MAX_CANDIDATES 16
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

// One forward + backward step with group size g, in milliseconds.
static double time_group(const Backend* be, const ConvShape* base, int g, float* x, float* y, float* dy,
                         float* dx, float* w, float* dw, float* wbig, float* dwbig) {
    ConvShape s = *base;
    s.groups = s.c_in / g;
    int kk = s.k * s.k;
    StreamTimer t;
    stream_timer_init(&t, be);
    stream_timer_start(&t);
    be->dr_scatter(wbig, w, s.c_in, g, kk);
    be->conv2d_forward(y, x, wbig, &s);
    be->conv2d_backward_filter(dwbig, dy, x, &s, 0);
    be->dr_gather(dw, dwbig, s.c_in, g, kk);
    be->conv2d_backward_data(dx, dy, wbig, &s, 0);
    stream_timer_stop(&t);
    double ms = stream_timer_ms(&t);
    stream_timer_free(&t);
    return ms;
}

static int compare_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

// How far a candidate's sorted timings disagree: the middle five of seven, relative to the median.
static double spread(const double* sorted) { return (sorted[TUNE_REPS - 2] - sorted[1]) / sorted[TUNE_REPS / 2]; }

// The backend's own group size for a layer of c channels (what the run would use without auto).
static int default_group(const Backend* be, int c) {
    return depthwise_group_size(c, be->default_dw_group > 0 ? be->default_dw_group : 32);
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
#define TIME(g) time_group(be, &s, (g), x, y, dy, dx, wt, dw, wbig, dwbig)
    // 1. climb (the first timing of each g warms it up: caches, cuDNN's algorithm choice)
    int cand[MAX_CANDIDATES] = {1}, nc = 0, last = 0;
    double fastest = 1e300;
    for (int c = 1; last < m->c && nc < MAX_CANDIDATES; c *= 2) {
        int g = depthwise_group_size(m->c, c);
        if (g == last) continue;
        last = g;
        TIME(g);
        double ms = TIME(g);
        cand[nc++] = g;
        if (ms < fastest) fastest = ms;
        if (ms > 2 * fastest) break;
    }
    // 2. interleaved rounds, scored by the median
    double ms[MAX_CANDIDATES][TUNE_REPS], med[MAX_CANDIDATES];
    for (int r = 0; r < TUNE_REPS; r++)
        for (int i = 0; i < nc; i++) ms[i][r] = TIME(cand[i]);
#undef TIME
    int noisiest = 0;
    for (int i = 0; i < nc; i++) {
        qsort(ms[i], TUNE_REPS, sizeof(double), compare_double);
        med[i] = ms[i][TUNE_REPS / 2];
        if (spread(ms[i]) > spread(ms[noisiest])) noisiest = i;
        if (log) fprintf(log, " g=%d %.3f ms", cand[i], med[i]);
    }
    // 3. the smallest g unless a larger one is clearly faster
    int pick = 0;
    for (int i = 1; i < nc; i++)
        if (med[i] * TUNE_MARGIN < med[pick]) pick = i;
    int best_g = cand[pick], other = -1; // other: the fastest of the rest, for the margin
    for (int i = 0; i < nc; i++)
        if (i != pick && (other < 0 || med[i] < med[other])) other = i;
    // 4. timings noisier than the margin: no choice can be made at that margin
    if (nc > 1 && spread(ms[noisiest]) > TUNE_MARGIN - 1) {
        best_g = default_group(be, m->c);
        if (log)
            fprintf(log, " -> noise-dominated: the timings of g = %d spread %.0f%%, more than the %.0f%% margin; "
                    "keeping the backend's default g = %d\n", cand[noisiest], 100 * spread(ms[noisiest]),
                    (TUNE_MARGIN - 1) * 100, best_g);
    } else if (log && other >= 0 && med[other] < med[pick])
        fprintf(log, " -> g = %d (g = %d is only %.2fx faster, within the %.0f%% margin)\n", best_g, cand[other],
                med[pick] / med[other], (TUNE_MARGIN - 1) * 100);
    else if (log && other >= 0)
        fprintf(log, " -> g = %d, %.2fx faster than g = %d\n", best_g, med[other] / med[pick], cand[other]);
    else if (log) fprintf(log, " -> g = %d (the only candidate)\n", best_g);
    be->free(x), be->free(dy), be->free(wt), be->free(y), be->free(dx), be->free(dw);
    be->free(wbig), be->free(dwbig);
    depthwise_set_group(m, best_g);
    if (num_tuned < MAX_SHAPES)
        tuned[num_tuned++] = (TunedShape){m->c, n, h, w, m->stride, best_g};
    return best_g;
}
