// bench-depthwise: does diagonalwise refactorization win? For each depthwise layer of a registered
// model (--model, MobileNet-CIFAR by default, at --width 1 and --batch 128) it times forward,
// backward-data and backward-filter:
//   DR g=...     our layer as it runs: block-diagonal weight (scatter), one grouped convolution
//                with C/g groups, the dense filter gradient's diagonal (gather); g in 1..64 and C
//                (g = 1 is the CPU backend's default; it differs from the first baseline only by
//                the scatter and gather);
//   grouped C    BASELINE: the backend's grouped convolution with groups = C on the (C,1,3,3)
//                weight (cuDNN's native depthwise path on the GPU; im2col + GEMM on the CPU);
//   direct       BASELINE: a straightforward direct depthwise loop (CPU, OpenMP) or kernel (CUDA,
//                bench_depthwise_direct.cu). Baselines exist only in this benchmark.
// Each time is the median of --reps runs after a warm-up, measured with backend events. The
// multiply-adds each method executes are printed next to it; the last table names the winner per
// layer. Usage: bench-depthwise [--device cpu|cuda|ref] [--model NAME] [--width W] [--batch N] [--reps N]
// [--tf32 on|off] [--precision fp32|bf16] [--groups LIST]
// --precision bf16 opens the backend in bf16 mode (nn/backend.h: the convolutions round their
// operands to bf16), so the DR and grouped rows show what that rounding costs; the direct baseline
// stays FP32.
// --groups 1,32,C times only those DR group sizes (C: one group of all channels); on a GPU each g
// costs three cuDNN algorithm searches per layer shape, so a short session times fewer.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/model.h"
#include "../nn/profile.h"
#include "../nn/rng.h"
#include "../nn/util.h"
#include "../train/args.h"
#include "bench_depthwise.h"

#define MAX_METHODS 12

typedef struct Method {
    char name[24];
    int g;       // DR group size; 0: a baseline
    int kind;    // 0 DR, 1 grouped conv with groups = C, 2 direct
    double ms[3]; // forward, backward-data, backward-filter
    double macs; // per pass
} Method;

typedef struct Layer {
    int c, h, stride, ho;
    Method m[MAX_METHODS];
    int methods;
    int same_as; // index of an earlier layer of the same shape, or -1
} Layer;

static const Backend* be;
static int reps = 10, batch = 128;

// The DR group sizes to time (--groups): a mask of the powers of two 1..64 (g itself is its bit), and g = C.
static unsigned groups_wanted = 0x7f;
static int group_c_wanted = 1;

// "--groups 1,8,32,C": fills the two above; exits 2 naming the value on anything else.
static void parse_groups(const char* flag, const char* list) {
    const char* want = "expected a comma-separated list of 1, 2, 4, 8, 16, 32, 64 and C";
    groups_wanted = 0, group_c_wanted = 0;
    char buf[128];
    if (strlen(list) >= sizeof(buf)) args_bad(flag, list, want);
    snprintf(buf, sizeof(buf), "%s", list);
    for (char* tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "C")) {
            group_c_wanted = 1;
            continue;
        }
        char* end = NULL;
        long g = strtol(tok, &end, 10);
        if (*end || g < 1 || g > 64 || (g & (g - 1))) args_bad(flag, list, want);
        groups_wanted |= (unsigned)g;
    }
    if (!groups_wanted && !group_c_wanted) args_bad(flag, list, want);
}

static float* device_random(size_t count, uint64_t seed) {
    float* host = NN_MALLOC(count * sizeof(float));
    Rng rng = rng_derive(seed, 1, count);
    for (size_t i = 0; i < count; i++) host[i] = 2.0f * rng_uniform(&rng) - 1.0f;
    float* p = be->alloc(count * sizeof(float), "benchmark buffers");
    be->upload(p, host, count * sizeof(float));
    free(host);
    return p;
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

typedef struct Buffers {
    float *x, *y, *dy, *dx, *w, *dw, *wbig, *dwbig;
    ConvShape s;
} Buffers;

// One pass of one method: 0 forward, 1 backward-data, 2 backward-filter.
static void run_pass(const Method* m, Buffers* b, int pass) {
    ConvShape s = b->s;
    int c = s.c_in, kk = 9;
    if (m->kind == 2) {
        if (pass == 0) direct_depthwise_forward(be, b->y, b->x, b->w, &s);
        else if (pass == 1) direct_depthwise_backward_data(be, b->dx, b->dy, b->w, &s);
        else direct_depthwise_backward_filter(be, b->dw, b->dy, b->x, &s);
        return;
    }
    int g = m->kind == 1 ? 1 : m->g;
    s.groups = c / g;
    float* weight = m->kind == 1 ? b->w : b->wbig;
    if (pass == 0) {
        if (m->kind == 0) be->dr_scatter(b->wbig, b->w, c, g, kk);
        be->conv2d_forward(b->y, b->x, weight, &s);
    } else if (pass == 1) {
        be->conv2d_backward_data(b->dx, b->dy, weight, &s, 0);
    } else if (m->kind == 0) {
        be->conv2d_backward_filter(b->dwbig, b->dy, b->x, &s, 0);
        be->dr_gather(b->dw, b->dwbig, c, g, kk);
    } else {
        be->conv2d_backward_filter(b->dw, b->dy, b->x, &s, 0);
    }
}

static void time_method(Method* m, Buffers* b) {
    StreamTimer t;
    stream_timer_init(&t, be);
    double* ms = NN_MALLOC(sizeof(double) * (size_t)reps);
    for (int pass = 0; pass < 3; pass++) {
        run_pass(m, b, pass); // warm-up (cuDNN picks its algorithm here)
        for (int r = 0; r < reps; r++) {
            stream_timer_start(&t);
            run_pass(m, b, pass);
            stream_timer_stop(&t);
            ms[r] = stream_timer_ms(&t);
        }
        qsort(ms, (size_t)reps, sizeof(double), cmp_double);
        m->ms[pass] = ms[reps / 2];
    }
    free(ms);
    stream_timer_free(&t);
}

static void add_method(Layer* l, const char* name, int kind, int g) {
    Method* m = &l->m[l->methods++];
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->kind = kind, m->g = g;
    m->macs = (double)batch * l->c * l->ho * l->ho * 9 * (kind == 0 ? g : 1);
}

static void bench_layer(Layer* l) {
    Buffers b;
    b.s = (ConvShape){.n = batch, .c_in = l->c, .h = l->h, .w = l->h, .c_out = l->c, .k = 3,
                      .stride = l->stride, .pad = 1, .h_out = l->ho, .w_out = l->ho};
    size_t nx = (size_t)batch * l->c * l->h * l->h, ny = (size_t)batch * l->c * l->ho * l->ho;
    size_t nw = (size_t)l->c * 9, nbig = nw * l->c;
    b.x = device_random(nx, 1), b.dy = device_random(ny, 2), b.w = device_random(nw, 3);
    b.y = be->alloc(ny * sizeof(float), "benchmark buffers");
    b.dx = be->alloc(nx * sizeof(float), "benchmark buffers");
    b.dw = be->alloc(nw * sizeof(float), "benchmark buffers");
    b.wbig = be->alloc(nbig * sizeof(float), "benchmark buffers");
    b.dwbig = be->alloc(nbig * sizeof(float), "benchmark buffers");
    be->zero(b.dw, nw * sizeof(float));
    for (int i = 0; i < l->methods; i++) time_method(&l->m[i], &b);
    be->free(b.x), be->free(b.dy), be->free(b.w), be->free(b.y), be->free(b.dx), be->free(b.dw);
    be->free(b.wbig), be->free(b.dwbig);
}

static double total(const Method* m) { return m->ms[0] + m->ms[1] + m->ms[2]; }

int main(int argc, char** argv) {
    const char* device = "cpu";
    const char* model_name = "mobilenet";
    float width = 1.0f;
    int tf32 = 1, bf16 = 0;
    args_program = "bench-depthwise";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) model_name = argv[++i];
        else if (!strcmp(argv[i], "--width") && i + 1 < argc) width = args_float(argv[i], argv[i + 1], 0.03125, 16), i++;
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = (int)args_long(argv[i], argv[i + 1], 1, 65536), i++;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = (int)args_long(argv[i], argv[i + 1], 1, 1000), i++;
        else if (!strcmp(argv[i], "--tf32") && i + 1 < argc) tf32 = args_onoff(argv[i], argv[i + 1]), i++;
        else if (!strcmp(argv[i], "--groups") && i + 1 < argc) parse_groups(argv[i], argv[i + 1]), i++;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            if (strcmp(argv[i + 1], "fp32") && strcmp(argv[i + 1], "bf16")) args_bad(argv[i], argv[i + 1], "expected fp32 or bf16");
            bf16 = !strcmp(argv[++i], "bf16");
        } else {
            int help = !strcmp(argv[i], "--help");
            fprintf(help ? stdout : stderr,
                    "usage: bench-depthwise [--device cpu|cuda|ref|auto] [--model NAME] [--width W] [--batch N] [--reps N] "
                    "[--tf32 on|off] [--precision fp32|bf16] [--groups 1,2,...,64,C]\n");
            return help ? 0 : 2;
        }
    }
    const ModelDef* def = model_find(model_name);
    char want[300];
    snprintf(want, sizeof(want), "expected %s", model_names());
    if (!def) args_bad("--model", model_name, want);
    char err[512], dev[256];
    BackendOptions bo = {.tf32 = tf32, .bf16 = bf16};
    be = backend_open(device, &bo, err, sizeof(err));
    if (!be) nn_fatal("%s", err);
    be->describe(dev, sizeof(dev));
    printf("bench-depthwise: %s\n%s width %g, batch %d, %s, median of %d runs per pass, times in ms; M = million "
           "multiply-adds per pass\n", dev, def->title, (double)width, batch,
           bf16 ? "bf16 mixed precision (the direct baseline in FP32)" : "FP32", reps);

    // The model's depthwise layers, each on its own input size (model_depthwise_input).
    Model net;
    Engine* e = engine_create(be);
    model_build(&net, def, e, width, 32, 10);
    const int count = model_num_depthwise(&net);
    Layer* layers = NN_CALLOC((size_t)count, sizeof(Layer));
    for (int i = 0; i < count; i++) {
        const DepthwiseConv2d* d = model_depthwise(&net, i);
        Layer* l = &layers[i];
        int h = model_depthwise_input(&net, i);
        l->c = d->c, l->h = h, l->stride = d->stride, l->ho = conv_out_size(h, 3, d->stride, 1);
        l->same_as = -1;
        for (int j = 0; j < i; j++)
            if (layers[j].c == l->c && layers[j].h == l->h && layers[j].stride == l->stride) l->same_as = j;
        const int gs[] = {1, 2, 4, 8, 16, 32, 64};
        for (int k = 0; k < 7; k++)
            if ((groups_wanted & (unsigned)gs[k]) && gs[k] < l->c && l->c % gs[k] == 0) {
                char name[24];
                snprintf(name, sizeof(name), "DR g=%d", gs[k]);
                add_method(l, name, 0, gs[k]);
            }
        char name[24];
        snprintf(name, sizeof(name), "DR g=C=%d", l->c);
        if (group_c_wanted || l->methods == 0) add_method(l, name, 0, l->c); // at least one DR row per layer
        add_method(l, "grouped C (base)", 1, 1);
        add_method(l, "direct (base)", 2, 1);
        if (l->same_as >= 0) {
            memcpy(l->m, layers[l->same_as].m, sizeof(l->m));
            continue;
        }
        bench_layer(l);
        printf("\nlayer %d: %d channels, %dx%d -> %dx%d (stride %d)\n", i, l->c, l->h, l->h, l->ho, l->ho, l->stride);
        printf("  %-18s %10s %9s %9s %9s %9s\n", "method", "M per pass", "forward", "bwd-data", "bwd-filt", "total");
        for (int k = 0; k < l->methods; k++) {
            const Method* m = &l->m[k];
            printf("  %-18s %10.1f %9.3f %9.3f %9.3f %9.3f\n", m->name, m->macs / 1e6, m->ms[0], m->ms[1],
                   m->ms[2], total(m));
        }
    }

    printf("\nsummary (forward + backward-data + backward-filter, ms):\n");
    printf("%-6s %-16s %-12s %9s %-12s %9s %9s %9s  %s\n", "layer", "shape", "best DR", "ms", "DR g=32", "ms",
           "grouped C", "direct", "winner");
    double sum_best = 0, sum32 = 0, sum_grouped = 0, sum_direct = 0;
    for (int i = 0; i < count; i++) {
        const Layer* l = &layers[i];
        const Method *best = NULL, *g32 = NULL, *grouped = NULL, *direct = NULL, *winner = NULL;
        for (int k = 0; k < l->methods; k++) {
            const Method* m = &l->m[k];
            if (m->kind == 0 && (!best || total(m) < total(best))) best = m;
            if (m->kind == 0 && m->g == 32) g32 = m;
            if (m->kind == 1) grouped = m;
            if (m->kind == 2) direct = m;
            if (!winner || total(m) < total(winner)) winner = m;
        }
        char shape[32];
        snprintf(shape, sizeof(shape), "%dx%dx%d s%d", l->c, l->h, l->h, l->stride);
        printf("%-6d %-16s %-12s %9.3f %-12s %9.3f %9.3f %9.3f  %s\n", i, shape, best->name, total(best),
               g32 ? g32->name : "-", g32 ? total(g32) : 0.0, total(grouped), total(direct), winner->name);
        sum_best += total(best), sum32 += g32 ? total(g32) : total(best);
        sum_grouped += total(grouped), sum_direct += total(direct);
    }
    // (Where a layer has fewer than 32 channels, its best DR row stands in for g = 32.)
    if (groups_wanted & 32) {
        printf("%-6s %-16s %-12s %9.3f %-12s %9.3f %9.3f %9.3f\n", "all", "", "best DR", sum_best, "DR g=32", sum32,
               sum_grouped, sum_direct);
        printf("\nall %d layers, one training step's depthwise work: best DR per layer %.2f ms, DR g=32 %.2f ms, "
               "grouped conv groups=C %.2f ms (baseline), direct %.2f ms (baseline)\n",
               count, sum_best, sum32, sum_grouped, sum_direct);
    } else { // g = 32 was not timed (--groups)
        printf("%-6s %-16s %-12s %9.3f %-12s %9s %9.3f %9.3f\n", "all", "", "best DR", sum_best, "-", "-",
               sum_grouped, sum_direct);
        printf("\nall %d layers, one training step's depthwise work: best DR timed per layer %.2f ms, "
               "grouped conv groups=C %.2f ms (baseline), direct %.2f ms (baseline)\n", count, sum_best, sum_grouped,
               sum_direct);
    }
    free(layers);
    model_free(&net);
    engine_destroy(e);
    return 0;
}
