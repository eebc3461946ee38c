// bench-cpu: training throughput of a registered model (--model, MobileNet-CIFAR by default) on the
// CPU backend, side by side with PyTorch.
//
//   bench-cpu [--model mobilenet|mobilenetv2] [--batch 128] [--threads 2] [--width 1] [--dw-group 1] [--steps 10] [--reps 5]
//             [--torch off|PYTHON] [--profile] [--sweep-g] [--isa avx512|avx2|generic]
//
// A step is exactly ./train's: zero-grad, forward, cross-entropy, backward, SGD (momentum 0.9, weight
// decay 5e-4), on synthetic images (the data loader is not what is measured). Our figure is the median
// img/s of --reps runs of --steps steps, taken before and after PyTorch's; PyTorch's is the median of
// tests/reference/bench_torch.py (same model with its native depthwise convolutions, batch, threads)
// run in between by PYTHON (default /usr/bin/python3; --torch off skips it), once in PyTorch's default
// NCHW layout and once in channels_last (oneDNN's fast path on this CPU). The last lines give the
// median and best run of each and our ratios (the best run is the least disturbed on a shared machine). --profile adds a per-layer table (forward/backward ms, GFLOP/s) and totals per kind of
// layer; --sweep-g times every depthwise layer shape and the whole step for g = 1, 2, 4, ..., 32.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/cpu_gemm.h"
#include "../models/model.h"
#include "../nn/ops.h"
#include "../nn/profile.h"
#include "../nn/rng.h"
#include "../nn/sgd.h"
#include "../nn/util.h"
#include "../train/args.h"

typedef struct Opts {
    int batch, threads, dw_group, steps, reps, warmup, profile, sweep;
    float width;
    const ModelDef* model;
    char torch[256];
} Opts;

typedef struct Bench {
    const Backend* be;
    Engine* e;
    Model model;
    SGD sgd;
    float* images; // host (batch, 3, 32, 32)
    int* labels;   // host (batch)
    int batch;
} Bench;

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

static double median(double* v, int n) {
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static Tensor* forward_loss(Bench* b, const float* images, const int* labels) {
    Engine* e = b->e;
    Tensor* x = engine_input(e, b->batch, 3, 32, 32, images);
    int* lab = engine_labels(e, b->batch, labels);
    return cross_entropy(e, model_forward(e, &b->model, x), lab, "loss");
}

static void step(Bench* b) {
    engine_zero_grad(b->e);
    engine_begin(b->e, 1);
    engine_backward(b->e, forward_loss(b, b->images, b->labels));
    sgd_step(b->e, &b->sgd);
}

static void bench_init(Bench* b, const Opts* o, int dw_group) {
    memset(b, 0, sizeof(*b));
    char err[512];
    BackendOptions bo = {.threads = o->threads};
    b->be = backend_open("cpu", &bo, err, sizeof(err));
    if (!b->be) nn_fatal("%s", err);
    b->batch = o->batch;
    b->e = engine_create(b->be);
    model_build(&b->model, o->model, b->e, o->width, dw_group, 10);
    engine_alloc_params(b->e);
    engine_init_params(b->e, 1);
    b->sgd = (SGD){.lr = 0.01f, .momentum = 0.9f, .weight_decay = 5e-4f};
    size_t n = (size_t)o->batch * 3 * 32 * 32;
    b->images = NN_MALLOC(n * sizeof(float));
    b->labels = NN_MALLOC((size_t)o->batch * sizeof(int));
    Rng rng = rng_derive(3, 4, 5);
    for (size_t i = 0; i < n; i++) b->images[i] = 2.0f * rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < o->batch; i++) b->labels[i] = i % 10;
    engine_plan_begin(b->e);
    engine_backward(b->e, forward_loss(b, NULL, NULL));
    engine_plan_end(b->e);
}

static void bench_free(Bench* b) {
    model_free(&b->model);
    engine_destroy(b->e);
    free(b->images), free(b->labels);
}

// img/s of each of `reps` runs of `steps` steps, appended to out.
static void time_steps(Bench* b, int steps, int reps, double* out) {
    for (int r = 0; r < reps; r++) {
        double t0 = nn_now();
        for (int i = 0; i < steps; i++) step(b);
        out[r] = steps * b->batch / (nn_now() - t0);
    }
}

static void print_load(const char* when) {
    FILE* f = fopen("/proc/loadavg", "r");
    char buf[128] = "?";
    if (f) {
        if (!fgets(buf, sizeof(buf), f)) strcpy(buf, "?");
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
    printf("load average %s: %s\n", when, buf);
}

// --- PyTorch ---------------------------------------------------------------------------------------

// PyTorch's median img/s (0 if it failed); *best gets its best run.
static double run_torch(const Opts* o, int channels_last, double* best) {
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s %s/tests/reference/bench_torch.py --model %s --batch %d --threads %d --width %g "
             "--steps %d --reps %d --warmup %d%s 2>&1", o->torch, DRNET_SOURCE_DIR, o->model->name, o->batch,
             o->threads, (double)o->width, o->steps, o->reps, o->warmup, channels_last ? " --channels-last" : "");
    printf("$ %s\n", cmd);
    fflush(stdout);
    FILE* p = popen(cmd, "r");
    if (!p) return 0;
    char line[1024];
    double rate = 0;
    while (fgets(line, sizeof(line), p)) {
        printf("  | %s", line);
        double lo;
        if (sscanf(line, "torch_img_per_s %lf %lf %lf", &rate, &lo, best) == 3) continue;
    }
    int status = pclose(p);
    if (status != 0 && rate == 0) printf("  (PyTorch run failed: status %d)\n", status);
    return rate;
}

// --- per-layer profile ----------------------------------------------------------------------------

static const char* layer_kind(const OpProfile* op) {
    if (!strcmp(op->kind, "depthwise")) return "depthwise (DR)";
    if (!strncmp(op->kind, "batchnorm", 9)) return "batchnorm+relu";
    if (!strcmp(op->kind, "conv2d")) return strcmp(op->name, "conv1") ? "conv 1x1" : "conv 3x3 (stem)";
    return "other";
}

static void profile(Bench* b, int steps) {
    Profiler* prof = profiler_create(b->be, b->e->tape_capacity);
    prof->active = 1;
    b->e->profiler = prof;
    double t0 = nn_now(), opt_ms = 0;
    for (int i = 0; i < steps; i++) {
        engine_zero_grad(b->e);
        engine_begin(b->e, 1);
        engine_backward(b->e, forward_loss(b, b->images, b->labels));
        double s0 = nn_now();
        sgd_step(b->e, &b->sgd);
        opt_ms += (nn_now() - s0) * 1e3;
        profiler_collect(prof, b->e);
    }
    double step_ms = (nn_now() - t0) * 1e3 / steps;
    opt_ms /= steps;
    b->e->profiler = NULL;

    printf("\nper-layer profile (mean of %d steps, batch %d):\n", steps, b->batch);
    printf("%-16s %-16s %-16s %8s %8s %6s %9s %8s\n", "layer", "kind", "output", "fwd ms", "bwd ms", "share",
           "M mul-add", "GFLOP/s");
    const char* kinds[] = {"conv 1x1", "depthwise (DR)", "batchnorm+relu", "conv 3x3 (stem)", "other"};
    double kf[5] = {0}, kb[5] = {0}, km[5] = {0}, sum = 0;
    for (int i = 0; i < prof->entries; i++) {
        const OpProfile* op = &prof->ops[i];
        double f = op->fwd_ms / steps, bw = op->bwd_ms / steps, macs = op->macs_fwd + op->macs_bwd;
        char shape[32];
        snprintf(shape, sizeof(shape), "%dx%dx%dx%d", op->n, op->c, op->h, op->w);
        printf("%-16s %-16s %-16s %8.3f %8.3f %5.1f%% %9.1f %8.1f\n", op->name, layer_kind(op), shape, f, bw,
               100 * (f + bw) / step_ms, macs / 1e6, f + bw > 0 ? 2 * macs / (f + bw) / 1e6 : 0.0);
        for (int k = 0; k < 5; k++)
            if (!strcmp(layer_kind(op), kinds[k])) kf[k] += f, kb[k] += bw, km[k] += macs;
        sum += f + bw;
    }
    printf("\nby kind of layer:\n%-16s %8s %8s %8s %6s %9s %8s\n", "kind", "fwd ms", "bwd ms", "total", "share",
           "G mul-add", "GFLOP/s");
    for (int k = 0; k < 5; k++)
        printf("%-16s %8.2f %8.2f %8.2f %5.1f%% %9.3f %8.1f\n", kinds[k], kf[k], kb[k], kf[k] + kb[k],
               100 * (kf[k] + kb[k]) / step_ms, km[k] / 1e9, kf[k] + kb[k] > 0 ? 2 * km[k] / (kf[k] + kb[k]) / 1e6 : 0.0);
    printf("%-16s %8s %8s %8.2f %5.1f%%\n", "optimizer (sgd)", "", "", opt_ms, 100 * opt_ms / step_ms);
    printf("%-16s %8s %8s %8.2f %5.1f%%  (zero-grad, input upload, gaps)\n", "unattributed", "", "",
           step_ms - sum - opt_ms, 100 * (step_ms - sum - opt_ms) / step_ms);
    printf("%-16s %8s %8s %8.2f         %.0f img/s with the profiler on\n", "step", "", "", step_ms,
           b->batch * 1e3 / step_ms);
    profiler_destroy(prof);
}

// --- the g sweep -------------------------------------------------------------------------------------

// Forward (scatter + grouped conv) and backward (filter gradient + gather + data gradient) of one DR
// layer with group size g, median ms of `reps`.
static void time_dr(const Backend* be, const ConvShape* base, int g, int reps, double* fwd, double* bwd) {
    ConvShape s = *base;
    s.groups = s.c_in / g;
    int c = s.c_in, kk = 9;
    size_t nx = (size_t)s.n * c * s.h * s.w, ny = (size_t)s.n * c * s.h_out * s.w_out;
    float* x = be->alloc(nx * sizeof(float), "x");
    float* dx = be->alloc(nx * sizeof(float), "dx");
    float* y = be->alloc(ny * sizeof(float), "y");
    float* dy = be->alloc(ny * sizeof(float), "dy");
    float* w = be->alloc((size_t)c * kk * sizeof(float), "w");
    float* dw = be->alloc((size_t)c * kk * sizeof(float), "dw");
    float* wbig = be->alloc((size_t)c * g * kk * sizeof(float), "wbig");
    float* dwbig = be->alloc((size_t)c * g * kk * sizeof(float), "dwbig");
    for (size_t i = 0; i < nx; i++) x[i] = (float)(i % 17) / 17.0f - 0.5f;
    for (size_t i = 0; i < ny; i++) dy[i] = (float)(i % 13) / 13.0f - 0.5f;
    for (int i = 0; i < c * kk; i++) w[i] = (float)(i % 7) / 7.0f, dw[i] = 0;
    double f[32], bk[32];
    if (reps > 31) reps = 31;
    for (int r = 0; r <= reps; r++) { // r = 0 warms up
        double t0 = nn_now();
        be->dr_scatter(wbig, w, c, g, kk);
        be->conv2d_forward(y, x, wbig, &s);
        double t1 = nn_now();
        be->conv2d_backward_filter(dwbig, dy, x, &s, 0);
        be->dr_gather(dw, dwbig, c, g, kk);
        be->conv2d_backward_data(dx, dy, wbig, &s, 0);
        double t2 = nn_now();
        if (r) f[r - 1] = (t1 - t0) * 1e3, bk[r - 1] = (t2 - t1) * 1e3;
    }
    *fwd = median(f, reps), *bwd = median(bk, reps);
    be->free(x), be->free(dx), be->free(y), be->free(dy), be->free(w), be->free(dw), be->free(wbig), be->free(dwbig);
}

static void sweep_g(const Opts* o) {
    static const int G[] = {1, 2, 4, 8, 16, 32};
    enum { NG = sizeof(G) / sizeof(G[0]) };
    Bench b;
    bench_init(&b, o, 1);
    printf("\nDR forward + backward per depthwise layer shape (batch %d), ms, median of %d:\n", o->batch, o->reps);
    printf("%-16s %-18s", "layer", "C x H x W, stride");
    for (int i = 0; i < NG; i++) printf("   g=%-2d fwd+bwd ", G[i]);
    printf("  best\n");
    double total[NG] = {0};
    const int layers = model_num_depthwise(&b.model);
    for (int L = 0; L < layers; L++) {
        const DepthwiseConv2d* m = model_depthwise(&b.model, L);
        int h = model_depthwise_input(&b.model, L);
        ConvShape s = {.n = o->batch, .c_in = m->c, .h = h, .w = h, .c_out = m->c, .k = 3, .stride = m->stride, .pad = 1};
        s.h_out = s.w_out = conv_out_size(h, 3, m->stride, 1);
        char shape[32];
        snprintf(shape, sizeof(shape), "%d x %d x %d, s%d", m->c, h, h, m->stride);
        printf("%-16s %-18s", m->name, shape);
        double best = 1e300;
        int best_g = 0;
        for (int i = 0; i < NG; i++) {
            int g = depthwise_group_size(m->c, G[i]);
            double f, bw;
            time_dr(b.be, &s, g, o->reps, &f, &bw);
            printf(" %6.2f+%-7.2f", f, bw);
            total[i] += f + bw;
            if (f + bw < best) best = f + bw, best_g = g;
        }
        printf("  g=%d\n", best_g);
    }
    char sum[40];
    snprintf(sum, sizeof(sum), "sum over the %d layers", layers);
    printf("%-35s", sum);
    for (int i = 0; i < NG; i++) printf(" %13.2f ", total[i]);
    printf("\n");
    bench_free(&b);
    printf("\nwhole training step (img/s, median of %d runs of %d steps) by g:\n", o->reps, o->steps);
    for (int i = 0; i < NG; i++) {
        bench_init(&b, o, G[i]);
        double r[64];
        for (int w = 0; w < o->warmup; w++) step(&b);
        time_steps(&b, o->steps, o->reps, r);
        printf("  g=%-2d %8.1f img/s\n", G[i], median(r, o->reps));
        fflush(stdout);
        bench_free(&b);
    }
}

int main(int argc, char** argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    args_program = "bench-cpu";
    Opts o = {.batch = 128, .threads = 2, .dw_group = 1, .steps = 10, .reps = 5, .warmup = 3, .width = 1.0f,
              .model = model_find("mobilenet")};
    snprintf(o.torch, sizeof(o.torch), "/usr/bin/python3");
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--profile")) o.profile = 1;
        else if (!strcmp(a, "--sweep-g")) o.sweep = 1;
        else if (v && !strcmp(a, "--model")) {
            char want[300];
            snprintf(want, sizeof(want), "expected %s", model_names());
            if (!(o.model = model_find(v))) args_bad(a, v, want);
            i++;
        } else if (v && !strcmp(a, "--batch")) o.batch = (int)args_long(a, v, 2, 65536), i++;
        else if (v && !strcmp(a, "--threads")) o.threads = (int)args_long(a, v, 1, 1024), i++;
        else if (v && !strcmp(a, "--width")) o.width = args_float(a, v, 0.01, 16), i++;
        else if (v && !strcmp(a, "--dw-group")) o.dw_group = (int)args_long(a, v, 1, 4096), i++;
        else if (v && !strcmp(a, "--steps")) o.steps = (int)args_long(a, v, 1, 1000000), i++;
        else if (v && !strcmp(a, "--reps")) o.reps = (int)args_long(a, v, 1, 32), i++;
        else if (v && !strcmp(a, "--warmup")) o.warmup = (int)args_long(a, v, 0, 1000000), i++;
        else if (v && !strcmp(a, "--torch")) snprintf(o.torch, sizeof(o.torch), "%s", v), i++;
        else if (v && !strcmp(a, "--isa")) {
            if (!gemm_set_isa(v)) nn_fatal("--isa %s: not supported by this CPU", v);
            i++;
        } else {
            int help = !strcmp(a, "--help");
            fprintf(help ? stdout : stderr,
                    "usage: %s [--model NAME] [--batch N] [--threads T] [--width W] [--dw-group G] [--steps S] [--reps R]\n"
                    "          [--warmup W] [--torch off|PYTHON] [--profile] [--sweep-g] [--isa NAME]\n", argv[0]);
            return help ? 0 : 2;
        }
    }

    Bench b;
    bench_init(&b, &o, o.dw_group);
    char dev[256];
    b.be->describe(dev, sizeof(dev));
    long params, macs, executed;
    model_count(&b.model, 3, 32, 32, &params, &macs, &executed); // CIFAR-10's images, as the bench's batches
    printf("device: %s; GEMM micro-kernel %s\n", dev, gemm_isa()->name);
    printf("model: %s width %g, batch %d, DR g = %d (%.2f M multiply-adds per image, %.2f M executed)\n",
           o.model->title, (double)o.width, o.batch, model_depthwise(&b.model, 0)->g, macs / 1e6, executed / 1e6);

    if (o.sweep) {
        bench_free(&b);
        sweep_g(&o);
        return 0;
    }

    print_load("before");
    for (int i = 0; i < o.warmup; i++) step(&b);
    double ours[96];
    time_steps(&b, o.steps, o.reps, ours);
    double torch = 0, torch_cl = 0, torch_best = 0, torch_cl_best = 0;
    if (strcmp(o.torch, "off")) torch = run_torch(&o, 0, &torch_best);
    time_steps(&b, o.steps, o.reps, ours + o.reps);
    if (strcmp(o.torch, "off")) torch_cl = run_torch(&o, 1, &torch_cl_best);
    time_steps(&b, o.steps, o.reps, ours + 2 * o.reps);
    print_load("after");
    printf("ours  runs:");
    for (int i = 0; i < 3 * o.reps; i++) printf(" %.1f", ours[i]);
    printf(" img/s\n");
    double med = median(ours, 3 * o.reps), best = ours[3 * o.reps - 1]; // (median sorted them)
    if (o.profile) profile(&b, o.steps);
    // Medians, and the best run of each side: on a shared machine the best run is the least disturbed.
    printf("\n%-24s %8s %8s   %s\n", "img/s", "median", "best", "ours / theirs (median, best)");
    printf("%-24s %8.1f %8.1f   (%d runs of %d steps)\n", "ours", med, best, 3 * o.reps, o.steps);
    if (torch > 0)
        printf("%-24s %8.1f %8.1f   %.2fx  %.2fx\n", "pytorch (NCHW)", torch, torch_best, med / torch, best / torch_best);
    if (torch_cl > 0)
        printf("%-24s %8.1f %8.1f   %.2fx  %.2fx\n", "pytorch (channels_last)", torch_cl, torch_cl_best, med / torch_cl,
               best / torch_cl_best);
    bench_free(&b);
    return 0;
}
