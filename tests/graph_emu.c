// A CPU stand-in for CUDA graph capture, for tests: the CPU backend's table with graph entries
// whose capture records every op (arguments by value, shapes copied) instead of running it, and
// whose launch runs the recorded ops again with the same pointers, as a replayed CUDA graph does.
// Like the CUDA backend it refuses uploads, downloads, syncs, allocations and frees while capturing,
// so the trainer's capture code is held to the same rules on a machine without a GPU.
#include "graph_emu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/util.h"

enum {
    K_ZERO, K_COPY, K_CONV_F, K_CONV_BD, K_CONV_BF, K_SCATTER, K_GATHER, K_BN_FT, K_BN_FE, K_BN_B, K_RELU_F,
    K_RELU_B, K_AVG_F, K_AVG_B, K_MAX_F, K_MAX_B, K_LIN_F, K_LIN_B, K_CE_F, K_CE_B, K_METRICS, K_SGD, K_SGD_DEV,
    K_AUGMENT, K_ADD_F, K_ADD_B,
};

typedef struct Call {
    int kind;
    void* p[10];
    int i[7];
    float f[3];
    size_t n;
    uint64_t u;
    ConvShape cs;
    PoolShape ps;
} Call;

typedef struct Graph {
    Call* calls;
    int count;
} Graph;

static const Backend* base;
static Backend emu;
static Graph* recording; // non-NULL while capturing
// Counted as the CUDA backend counts them (the CPU backend counts nothing): the trainer recaptures
// its graph when the allocation count moved, and tests read these to prove a step allocates nothing.
static BackendCounters counters;

static Call* rec(int kind) {
    Graph* g = recording;
    if (g->count % 256 == 0) {
        g->calls = realloc(g->calls, (size_t)(g->count + 256) * sizeof(Call));
        NN_ASSERT(g->calls, "graph_emu: out of memory");
    }
    Call* c = &g->calls[g->count++];
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    return c;
}

static void refuse(const char* what) {
    if (recording) nn_fatal("graph_emu: %s inside a graph capture", what);
}

static void* e_alloc(size_t bytes, const char* what) {
    refuse("an allocation");
    counters.allocs++;
    return base->alloc(bytes, what);
}
static void e_free(void* p) {
    refuse("a free");
    if (p) counters.frees++, counters.syncs++; // CUDA waits for the stream before freeing
    base->free(p);
}
static void e_upload(void* d, const void* s, size_t n) { refuse("an upload"); base->upload(d, s, n); }
static void e_download(void* d, const void* s, size_t n) {
    refuse("a download");
    if (n) counters.syncs++;
    base->download(d, s, n);
}
static void e_sync(void) { refuse("a synchronization"); counters.syncs++; base->synchronize(); }
static void e_read_counters(BackendCounters* out) { *out = counters; }

#define P(x) ((void*)(x))
static void e_zero(void* p, size_t n) {
    if (!recording) return base->zero(p, n);
    Call* c = rec(K_ZERO);
    c->p[0] = p, c->n = n;
}
static void e_copy(void* d, const void* s, size_t n) {
    if (!recording) return base->copy(d, s, n);
    Call* c = rec(K_COPY);
    c->p[0] = d, c->p[1] = P(s), c->n = n;
}
static void e_conv_f(float* y, const float* x, const float* w, const ConvShape* s) {
    if (!recording) return base->conv2d_forward(y, x, w, s);
    Call* c = rec(K_CONV_F);
    c->p[0] = y, c->p[1] = P(x), c->p[2] = P(w), c->cs = *s;
}
static void e_conv_bd(float* dx, const float* dy, const float* w, const ConvShape* s, int acc) {
    if (!recording) return base->conv2d_backward_data(dx, dy, w, s, acc);
    Call* c = rec(K_CONV_BD);
    c->p[0] = dx, c->p[1] = P(dy), c->p[2] = P(w), c->cs = *s, c->i[0] = acc;
}
static void e_conv_bf(float* dw, const float* dy, const float* x, const ConvShape* s, int acc) {
    if (!recording) return base->conv2d_backward_filter(dw, dy, x, s, acc);
    Call* c = rec(K_CONV_BF);
    c->p[0] = dw, c->p[1] = P(dy), c->p[2] = P(x), c->cs = *s, c->i[0] = acc;
}
static void e_scatter(float* wbig, const float* w, int ch, int g, int kk) {
    if (!recording) return base->dr_scatter(wbig, w, ch, g, kk);
    Call* c = rec(K_SCATTER);
    c->p[0] = wbig, c->p[1] = P(w), c->i[0] = ch, c->i[1] = g, c->i[2] = kk;
}
static void e_gather(float* dw, const float* dwbig, int ch, int g, int kk) {
    if (!recording) return base->dr_gather(dw, dwbig, ch, g, kk);
    Call* c = rec(K_GATHER);
    c->p[0] = dw, c->p[1] = P(dwbig), c->i[0] = ch, c->i[1] = g, c->i[2] = kk;
}
static void e_bn_ft(float* y, float* mean, float* invstd, float* rm, float* rv, const float* x, const float* gamma,
                    const float* beta, int n, int ch, int hw, float momentum, float eps, int relu, int y_bf16) {
    if (!recording)
        return base->batchnorm_forward_train(y, mean, invstd, rm, rv, x, gamma, beta, n, ch, hw, momentum, eps, relu, y_bf16);
    Call* c = rec(K_BN_FT);
    c->p[0] = y, c->p[1] = mean, c->p[2] = invstd, c->p[3] = rm, c->p[4] = rv, c->p[5] = P(x), c->p[6] = P(gamma);
    c->p[7] = P(beta), c->i[0] = n, c->i[1] = ch, c->i[2] = hw, c->f[0] = momentum, c->f[1] = eps, c->i[3] = relu;
    c->i[4] = y_bf16;
}
static void e_bn_fe(float* y, const float* x, const float* gamma, const float* beta, const float* rm, const float* rv,
                    int n, int ch, int hw, float eps, int relu, int y_bf16) {
    if (!recording) return base->batchnorm_forward_eval(y, x, gamma, beta, rm, rv, n, ch, hw, eps, relu, y_bf16);
    Call* c = rec(K_BN_FE);
    c->p[0] = y, c->p[1] = P(x), c->p[2] = P(gamma), c->p[3] = P(beta), c->p[4] = P(rm), c->p[5] = P(rv);
    c->i[0] = n, c->i[1] = ch, c->i[2] = hw, c->f[0] = eps, c->i[3] = relu, c->i[4] = y_bf16;
}
static void e_bn_b(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* y,
                   const float* mean, const float* invstd, const float* gamma, const float* beta, int n, int ch, int hw,
                   int relu, int y_bf16, int dx_bf16, int acc) {
    if (!recording)
        return base->batchnorm_backward(dx, dgamma, dbeta, dy, x, y, mean, invstd, gamma, beta, n, ch, hw, relu, y_bf16,
                                        dx_bf16, acc);
    Call* c = rec(K_BN_B);
    c->p[0] = dx, c->p[1] = dgamma, c->p[2] = dbeta, c->p[3] = P(dy), c->p[4] = P(x), c->p[5] = P(y), c->p[6] = P(mean);
    c->p[7] = P(invstd), c->p[8] = P(gamma), c->p[9] = P(beta), c->i[0] = n, c->i[1] = ch, c->i[2] = hw, c->i[3] = relu, c->i[4] = y_bf16, c->i[5] = acc;
    c->i[6] = dx_bf16;
}
static void e_relu_f(float* y, const float* x, size_t n) {
    if (!recording) return base->relu_forward(y, x, n);
    Call* c = rec(K_RELU_F);
    c->p[0] = y, c->p[1] = P(x), c->n = n;
}
static void e_relu_b(float* dx, const float* dy, const float* y, size_t n, int acc) {
    if (!recording) return base->relu_backward(dx, dy, y, n, acc);
    Call* c = rec(K_RELU_B);
    c->p[0] = dx, c->p[1] = P(dy), c->p[2] = P(y), c->n = n, c->i[0] = acc;
}
static void e_add_f(float* y, const float* a, const float* b, size_t n) {
    if (!recording) return base->add_forward(y, a, b, n);
    Call* c = rec(K_ADD_F);
    c->p[0] = y, c->p[1] = P(a), c->p[2] = P(b), c->n = n;
}
static void e_add_b(float* da, float* db, const float* dy, size_t n, int acc_a, int acc_b) {
    if (!recording) return base->add_backward(da, db, dy, n, acc_a, acc_b);
    Call* c = rec(K_ADD_B);
    c->p[0] = da, c->p[1] = db, c->p[2] = P(dy), c->n = n, c->i[0] = acc_a, c->i[1] = acc_b;
}
static void e_avg_f(float* y, const float* x, const PoolShape* p) {
    if (!recording) return base->avgpool_forward(y, x, p);
    Call* c = rec(K_AVG_F);
    c->p[0] = y, c->p[1] = P(x), c->ps = *p;
}
static void e_avg_b(float* dx, const float* dy, const PoolShape* p, int acc) {
    if (!recording) return base->avgpool_backward(dx, dy, p, acc);
    Call* c = rec(K_AVG_B);
    c->p[0] = dx, c->p[1] = P(dy), c->ps = *p, c->i[0] = acc;
}
static void e_max_f(float* y, int* argmax, const float* x, const PoolShape* p) {
    if (!recording) return base->maxpool_forward(y, argmax, x, p);
    Call* c = rec(K_MAX_F);
    c->p[0] = y, c->p[1] = argmax, c->p[2] = P(x), c->ps = *p;
}
static void e_max_b(float* dx, const float* dy, const int* argmax, const PoolShape* p, int acc) {
    if (!recording) return base->maxpool_backward(dx, dy, argmax, p, acc);
    Call* c = rec(K_MAX_B);
    c->p[0] = dx, c->p[1] = P(dy), c->p[2] = P(argmax), c->ps = *p, c->i[0] = acc;
}
static void e_lin_f(float* y, const float* x, const float* w, const float* b, int n, int in, int out) {
    if (!recording) return base->linear_forward(y, x, w, b, n, in, out);
    Call* c = rec(K_LIN_F);
    c->p[0] = y, c->p[1] = P(x), c->p[2] = P(w), c->p[3] = P(b), c->i[0] = n, c->i[1] = in, c->i[2] = out;
}
static void e_lin_b(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w, int n, int in,
                    int out, int acc) {
    if (!recording) return base->linear_backward(dx, dw, db, dy, x, w, n, in, out, acc);
    Call* c = rec(K_LIN_B);
    c->p[0] = dx, c->p[1] = dw, c->p[2] = db, c->p[3] = P(dy), c->p[4] = P(x), c->p[5] = P(w);
    c->i[0] = n, c->i[1] = in, c->i[2] = out, c->i[3] = acc;
}
static void e_ce_f(float* loss, float* probs, const float* logits, const int* labels, int n, int classes) {
    if (!recording) return base->cross_entropy_forward(loss, probs, logits, labels, n, classes);
    Call* c = rec(K_CE_F);
    c->p[0] = loss, c->p[1] = probs, c->p[2] = P(logits), c->p[3] = P(labels), c->i[0] = n, c->i[1] = classes;
}
static void e_ce_b(float* dlogits, const float* dloss, const float* probs, const int* labels, int n, int classes, int acc) {
    if (!recording) return base->cross_entropy_backward(dlogits, dloss, probs, labels, n, classes, acc);
    Call* c = rec(K_CE_B);
    c->p[0] = dlogits, c->p[1] = P(dloss), c->p[2] = P(probs), c->p[3] = P(labels);
    c->i[0] = n, c->i[1] = classes, c->i[2] = acc;
}
static void e_metrics(float* loss_sum, int* correct, const float* loss, const float* logits, const int* labels, int n,
                      int classes) {
    if (!recording) return base->metrics_accumulate(loss_sum, correct, loss, logits, labels, n, classes);
    Call* c = rec(K_METRICS);
    c->p[0] = loss_sum, c->p[1] = correct, c->p[2] = P(loss), c->p[3] = P(logits), c->p[4] = P(labels);
    c->i[0] = n, c->i[1] = classes;
}
static void e_sgd(float* p, float* buf, const float* g, size_t count, float lr, float momentum, float wd, int nesterov) {
    if (!recording) return base->sgd_step(p, buf, g, count, lr, momentum, wd, nesterov);
    Call* c = rec(K_SGD);
    c->p[0] = p, c->p[1] = buf, c->p[2] = P(g), c->n = count, c->f[0] = lr, c->f[1] = momentum, c->f[2] = wd;
    c->i[0] = nesterov;
}
static void e_sgd_dev(float* p, float* buf, const float* g, size_t count, const float* lr, float momentum, float wd,
                      int nesterov) {
    if (!recording) return base->sgd_step_device_lr(p, buf, g, count, lr, momentum, wd, nesterov);
    Call* c = rec(K_SGD_DEV);
    c->p[0] = p, c->p[1] = buf, c->p[2] = P(g), c->p[3] = P(lr), c->n = count, c->f[1] = momentum, c->f[2] = wd;
    c->i[0] = nesterov;
}
static void e_augment(float* images, int* labels, const uint8_t* records, int count, const int* indices, int n,
                      uint64_t seed, int epoch, int augment) {
    if (!recording) return base->augment_batch(images, labels, records, count, indices, n, seed, epoch, augment);
    Call* c = rec(K_AUGMENT);
    c->p[0] = images, c->p[1] = labels, c->p[2] = P(records), c->p[3] = P(indices), c->i[0] = count, c->i[1] = n;
    c->u = seed, c->i[2] = epoch, c->i[3] = augment;
}

static void run(const Call* c) {
    const Backend* b = base;
    void* const* p = c->p;
    const int* i = c->i;
    switch (c->kind) {
    case K_ZERO: b->zero(p[0], c->n); break;
    case K_COPY: b->copy(p[0], p[1], c->n); break;
    case K_CONV_F: b->conv2d_forward(p[0], p[1], p[2], &c->cs); break;
    case K_CONV_BD: b->conv2d_backward_data(p[0], p[1], p[2], &c->cs, i[0]); break;
    case K_CONV_BF: b->conv2d_backward_filter(p[0], p[1], p[2], &c->cs, i[0]); break;
    case K_SCATTER: b->dr_scatter(p[0], p[1], i[0], i[1], i[2]); break;
    case K_GATHER: b->dr_gather(p[0], p[1], i[0], i[1], i[2]); break;
    case K_BN_FT: b->batchnorm_forward_train(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], i[0], i[1], i[2], c->f[0], c->f[1], i[3], i[4]); break;
    case K_BN_FE: b->batchnorm_forward_eval(p[0], p[1], p[2], p[3], p[4], p[5], i[0], i[1], i[2], c->f[0], i[3], i[4]); break;
    case K_BN_B: b->batchnorm_backward(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], i[0], i[1], i[2], i[3], i[4], i[6], i[5]); break;
    case K_RELU_F: b->relu_forward(p[0], p[1], c->n); break;
    case K_RELU_B: b->relu_backward(p[0], p[1], p[2], c->n, i[0]); break;
    case K_ADD_F: b->add_forward(p[0], p[1], p[2], c->n); break;
    case K_ADD_B: b->add_backward(p[0], p[1], p[2], c->n, i[0], i[1]); break;
    case K_AVG_F: b->avgpool_forward(p[0], p[1], &c->ps); break;
    case K_AVG_B: b->avgpool_backward(p[0], p[1], &c->ps, i[0]); break;
    case K_MAX_F: b->maxpool_forward(p[0], p[1], p[2], &c->ps); break;
    case K_MAX_B: b->maxpool_backward(p[0], p[1], p[2], &c->ps, i[0]); break;
    case K_LIN_F: b->linear_forward(p[0], p[1], p[2], p[3], i[0], i[1], i[2]); break;
    case K_LIN_B: b->linear_backward(p[0], p[1], p[2], p[3], p[4], p[5], i[0], i[1], i[2], i[3]); break;
    case K_CE_F: b->cross_entropy_forward(p[0], p[1], p[2], p[3], i[0], i[1]); break;
    case K_CE_B: b->cross_entropy_backward(p[0], p[1], p[2], p[3], i[0], i[1], i[2]); break;
    case K_METRICS: b->metrics_accumulate(p[0], p[1], p[2], p[3], p[4], i[0], i[1]); break;
    case K_SGD: b->sgd_step(p[0], p[1], p[2], c->n, c->f[0], c->f[1], c->f[2], i[0]); break;
    case K_SGD_DEV: b->sgd_step_device_lr(p[0], p[1], p[2], c->n, p[3], c->f[1], c->f[2], i[0]); break;
    case K_AUGMENT: b->augment_batch(p[0], p[1], p[2], i[0], p[3], i[1], c->u, i[2], i[3]); break;
    default: nn_fatal("graph_emu: unknown recorded call %d", c->kind);
    }
}

static int e_capture_begin(char* err, size_t errlen) {
    if (recording) {
        snprintf(err, errlen, "graph_emu: a capture is already in progress");
        return 1;
    }
    recording = NN_CALLOC(1, sizeof(Graph));
    return 0;
}

static void* e_capture_end(void) {
    Graph* g = recording;
    recording = NULL;
    return g;
}

static void e_launch(void* graph) {
    const Graph* g = graph;
    for (int k = 0; k < g->count; k++) run(&g->calls[k]);
}

static void e_destroy(void* graph) {
    Graph* g = graph;
    if (!g) return;
    free(g->calls);
    free(g);
}

const Backend* graph_emu_backend(const Backend* cpu) {
    base = cpu;
    emu = *cpu;
    emu.name = "cpu-graph-emulation";
    emu.alloc = e_alloc, emu.free = e_free, emu.upload = e_upload, emu.download = e_download, emu.synchronize = e_sync;
    emu.zero = e_zero, emu.copy = e_copy;
    emu.conv2d_forward = e_conv_f, emu.conv2d_backward_data = e_conv_bd, emu.conv2d_backward_filter = e_conv_bf;
    emu.dr_scatter = e_scatter, emu.dr_gather = e_gather;
    emu.batchnorm_forward_train = e_bn_ft, emu.batchnorm_forward_eval = e_bn_fe, emu.batchnorm_backward = e_bn_b;
    emu.relu_forward = e_relu_f, emu.relu_backward = e_relu_b;
    emu.add_forward = e_add_f, emu.add_backward = e_add_b;
    emu.avgpool_forward = e_avg_f, emu.avgpool_backward = e_avg_b, emu.maxpool_forward = e_max_f;
    emu.maxpool_backward = e_max_b, emu.linear_forward = e_lin_f, emu.linear_backward = e_lin_b;
    emu.cross_entropy_forward = e_ce_f, emu.cross_entropy_backward = e_ce_b, emu.metrics_accumulate = e_metrics;
    emu.sgd_step = e_sgd, emu.sgd_step_device_lr = e_sgd_dev, emu.augment_batch = e_augment;
    emu.graph_capture_begin = e_capture_begin, emu.graph_capture_end = e_capture_end;
    emu.graph_launch = e_launch, emu.graph_destroy = e_destroy, emu.read_counters = e_read_counters;
    return &emu;
}
