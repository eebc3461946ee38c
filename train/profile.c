// --profile: a per-layer timing table of the training step (the darknet-style table, with a cost
// model). After warm-up steps, it times --profile-steps steps without the profiler (the reference
// step time) and as many with it, and prints, per op: forward and backward milliseconds, the share of
// the step, multiply-adds, achieved GFLOP/s, the least bytes moved and GB/s, and for depthwise
// layers the group size g and the arithmetic overhead it implies. The totals put the sum of the op
// times next to the measured step, so the unattributed part is visible; the profiler's own cost
// is the difference between the two step times.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/profile.h"
#include "../nn/util.h"
#include "step_timers.h"
#include "trainer.h"

#define WARMUP_STEPS 5

static const Batch* next_batch(Trainer* t) {
    const Batch* b = loader_next(t->train_loader);
    if (!b) {
        loader_start_epoch(t->train_loader, 0, 0);
        b = loader_next(t->train_loader);
    }
    return b;
}

// Runs `steps` steps; returns the mean step time (ms) and the summed optimizer time.
static double timed_steps(Trainer* t, int steps, Profiler* prof, double* optimizer_ms) {
    StepTimers tm;
    stream_timer_init(&tm.step, t->be);
    stream_timer_init(&tm.optimizer, t->be);
    double total = 0;
    for (int i = 0; i < steps; i++) {
        train_step(t, next_batch(t), &tm);
        total += stream_timer_ms(&tm.step);
        if (optimizer_ms) *optimizer_ms += stream_timer_ms(&tm.optimizer);
        if (prof) profiler_collect(prof, t->e);
    }
    stream_timer_free(&tm.step);
    stream_timer_free(&tm.optimizer);
    return total / steps;
}

// The arithmetic of a layer under --precision: bf16 products where its op says so (OpDef.bf16_products:
// the convolutions, depthwise by DR included, and linear layers) in bf16 mode, FP32 for everything else.
static const char* op_math(const OpProfile* op, int precision) {
    return op->bf16_products && precision == PRECISION_BF16 ? "bf16" : "fp32";
}

int run_profile(Trainer* t) {
    const Options* o = &t->opt;
    if (o->bench_steps) return run_bench(t);
    int steps = o->profile_steps;
    loader_start_epoch(t->train_loader, 0, 0);
    printf("profile: %d warm-up steps, then %d step%s without and %d with the profiler (batch %d)\n",
           WARMUP_STEPS, steps, steps == 1 ? "" : "s", steps, o->batch);
    timed_steps(t, WARMUP_STEPS, NULL, NULL);
    double plain_ms = timed_steps(t, steps, NULL, NULL);

    Profiler* prof = profiler_create(t->be, t->e->tape_capacity);
    prof->active = 1;
    t->e->profiler = prof;
    double optimizer_ms = 0;
    double step_ms = timed_steps(t, steps, prof, &optimizer_ms);
    t->e->profiler = NULL;
    optimizer_ms /= steps;

    char dev[256];
    t->be->describe(dev, sizeof(dev));
    printf("\n%s\n", dev);
    printf("%-18s %-14s %-5s %-18s %8s %8s %6s %9s %8s %9s %7s  %s\n", "layer", "kind", "math", "output", "fwd ms",
           "bwd ms", "share", "M mult-add", "GFLOP/s", "MB moved", "GB/s", "depthwise");
    double sum_fwd = 0, sum_bwd = 0, sum_macs = 0, sum_bytes = 0;
    int n = prof->entries;
    for (int i = 0; i < n; i++) {
        OpProfile* op = &prof->ops[i];
        double f = op->fwd_ms / steps, b = op->bwd_ms / steps, ms = f + b;
        double macs = op->macs_fwd + op->macs_bwd, bytes = op->bytes_fwd + op->bytes_bwd;
        sum_fwd += f, sum_bwd += b, sum_macs += macs, sum_bytes += bytes;
        char shape[32], dw[48] = "";
        snprintf(shape, sizeof(shape), "%dx%dx%dx%d", op->n, op->c, op->h, op->w);
        if (op->g) snprintf(dw, sizeof(dw), "g=%d: %dx the depthwise arithmetic", op->g, op->g);
        printf("%-18s %-14s %-5s %-18s %8.3f %8.3f %5.1f%% %9.2f %8.1f %9.2f %7.1f  %s\n", op->name, op->kind,
               op_math(op, o->precision), shape, f, b, 100.0 * ms / step_ms, macs / 1e6, ms > 0 ? 2 * macs / ms / 1e6 : 0.0,
               bytes / 1e6, ms > 0 ? bytes / ms / 1e6 : 0.0, dw);
    }
    double layers = sum_fwd + sum_bwd;
    printf("%-18s %-14s %-5s %-18s %8s %8.3f %5.1f%%\n", "optimizer", "sgd", "fp32", "", "", optimizer_ms,
           100.0 * optimizer_ms / step_ms);
    printf("\ntotal of the layers: forward %.3f ms + backward %.3f ms = %.3f ms; optimizer %.3f ms\n",
           sum_fwd, sum_bwd, layers, optimizer_ms);
    printf("measured step: %.3f ms (%.0f img/s); unattributed %.3f ms (%.1f%%): zero-grad, input upload, "
           "loss seed, gaps between ops\n", step_ms, o->batch * 1e3 / step_ms, step_ms - layers - optimizer_ms,
           100.0 * (step_ms - layers - optimizer_ms) / step_ms);
    printf("arithmetic: %.2f G multiply-adds per step, %.1f GFLOP/s over the layers; %.1f MB moved at least\n",
           sum_macs / 1e9, 2 * sum_macs / layers / 1e6, sum_bytes / 1e6);
    printf("profiler overhead: step %.3f ms without it, %.3f ms with it (%+.1f%%)\n", plain_ms, step_ms,
           100.0 * (step_ms - plain_ms) / plain_ms);

    if (o->profile_json[0]) {
        char why[128];
        FILE* f = nn_fopen_file(o->profile_json, "w", why, sizeof(why)); // not a FIFO: it would block
        if (!f) nn_fatal("cannot write --profile-json '%s': %s", o->profile_json, why);
        fprintf(f, "{\n  \"device\": ");
        nn_json_string(f, dev);
        fprintf(f, ",\n  \"batch\": %d,\n  \"width\": %g,\n  \"steps\": %d,\n  \"step_ms\": %.6f,\n"
                "  \"step_ms_without_profiler\": %.6f,\n  \"optimizer_ms\": %.6f,\n  \"layers_fwd_ms\": %.6f,\n"
                "  \"layers_bwd_ms\": %.6f,\n  \"unattributed_ms\": %.6f,\n  \"ops\": [\n",
                o->batch, (double)o->width, steps, step_ms, plain_ms, optimizer_ms, sum_fwd, sum_bwd,
                step_ms - layers - optimizer_ms);
        for (int i = 0; i < n; i++) {
            OpProfile* op = &prof->ops[i];
            fprintf(f, "    {\"name\": ");
            nn_json_string(f, op->name);
            fprintf(f, ", \"kind\": ");
            nn_json_string(f, op->kind);
            fprintf(f, ", \"math\": \"%s\"", op_math(op, o->precision));
            fprintf(f, ", \"shape\": [%d, %d, %d, %d], \"fwd_ms\": %.6f, \"bwd_ms\": %.6f, "
                    "\"macs_fwd\": %.0f, \"macs_bwd\": %.0f, \"macs_depthwise\": %.0f, \"bytes_fwd\": %.0f, "
                    "\"bytes_bwd\": %.0f, \"g\": %d}%s\n",
                    op->n, op->c, op->h, op->w, op->fwd_ms / steps, op->bwd_ms / steps, op->macs_fwd,
                    op->macs_bwd, op->macs_true, op->bytes_fwd, op->bytes_bwd, op->g, i + 1 < n ? "," : "");
        }
        fprintf(f, "  ]\n}\n");
        fclose(f);
        printf("wrote %s\n", o->profile_json);
    }
    profiler_destroy(prof);
    return 0;
}
