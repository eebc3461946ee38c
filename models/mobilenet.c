#include "mobilenet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/util.h"

// (out channels, stride) of the 13 blocks: the `cfg` list of the CIFAR-10 MobileNet in
// kuangliu/pytorch-cifar (models/mobilenet.py), which tools/mobilenet.py reproduces.
static const int BLOCK_OUT[MOBILENET_BLOCKS] = {64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024};
static const int BLOCK_STRIDE[MOBILENET_BLOCKS] = {1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1};

static int scaled(int c, float width) {
    int s = (int)((double)c * (double)width);
    if (s < 1) nn_fatal("--width %g leaves a layer of %d channels with none", (double)width, c);
    return s;
}

void mobilenet_init(MobileNet* m, Engine* e, float width, int dw_group, int num_classes) {
    memset(m, 0, sizeof(*m));
    m->width = width;
    m->num_classes = num_classes;
    int c = scaled(32, width);
    conv2d_init(&m->conv1, e, "conv1", 3, c, 3, 1, 1, 1);
    batchnorm2d_init(&m->bn1, e, "bn1", c);
    for (int i = 0; i < MOBILENET_BLOCKS; i++) {
        MobileNetBlock* b = &m->blocks[i];
        int out = scaled(BLOCK_OUT[i], width);
        char name[LAYER_NAME_LEN];
        snprintf(name, sizeof(name), "layers.%d.conv1", i);
        depthwise_init(&b->conv1, e, name, c, 3, BLOCK_STRIDE[i], 1, dw_group);
        snprintf(name, sizeof(name), "layers.%d.bn1", i);
        batchnorm2d_init(&b->bn1, e, name, c);
        snprintf(name, sizeof(name), "layers.%d.conv2", i);
        conv2d_init(&b->conv2, e, name, c, out, 1, 1, 0, 1);
        snprintf(name, sizeof(name), "layers.%d.bn2", i);
        batchnorm2d_init(&b->bn2, e, name, out);
        c = out;
    }
    linear_init(&m->linear, e, "linear", c, num_classes);
}

void mobilenet_autotune(MobileNet* m, const Backend* be, int n, FILE* log) {
    int h = 32;
    for (int i = 0; i < MOBILENET_BLOCKS; i++) {
        DepthwiseConv2d* dw = &m->blocks[i].conv1;
        depthwise_autotune(be, dw, n, h, h, log);
        h = conv_out_size(h, dw->k, dw->stride, dw->pad);
    }
}

Tensor* mobilenet_forward(Engine* e, const MobileNet* m, Tensor* x) {
    if (x->c != 3 || x->h != 32 || x->w != 32)
        nn_fatal("MobileNet-CIFAR takes (n, 3, 32, 32) images, got (%d, %d, %d, %d)", x->n, x->c, x->h, x->w);
    x = batchnorm2d(e, &m->bn1, conv2d(e, &m->conv1, x), 1);
    for (int i = 0; i < MOBILENET_BLOCKS; i++) {
        const MobileNetBlock* b = &m->blocks[i];
        x = batchnorm2d(e, &b->bn1, depthwise_conv2d(e, &b->conv1, x), 1);
        x = batchnorm2d(e, &b->bn2, conv2d(e, &b->conv2, x), 1);
    }
    x = avgpool2d(e, x, 2, 2, 0, "avgpool"); // the final map is 2x2
    return linear(e, &m->linear, flatten(e, x));
}

// ---------------------------------------------------------------------------------------------
// Summary

typedef struct Counter {
    FILE* f; // NULL: count only
    long params, macs, macs_executed;
} Counter;

static void row(Counter* k, const char* name, const char* kind, int c, int h, int w, long params,
                long macs, long executed, const char* note) {
    k->params += params, k->macs += macs, k->macs_executed += executed;
    if (!k->f) return;
    char shape[32];
    snprintf(shape, sizeof(shape), "%d x %d x %d", c, h, w);
    fprintf(k->f, "%-16s %-12s %-16s %10ld %12ld  %s\n", name, kind, shape, params, macs, note ? note : "");
}

static void walk(const MobileNet* m, Counter* k) {
    int h = 32, c = m->conv1.c_out;
    long cin = 3;
    row(k, "conv1", "conv 3x3", c, h, h, (long)c * cin * 9, (long)c * h * h * cin * 9, (long)c * h * h * cin * 9, NULL);
    row(k, "bn1", "bn+relu", c, h, h, 2L * c, 0, 0, NULL);
    for (int i = 0; i < MOBILENET_BLOCKS; i++) {
        const MobileNetBlock* b = &m->blocks[i];
        h = conv_out_size(h, 3, b->conv1.stride, 1);
        long dw_macs = (long)c * h * h * 9;
        char note[64];
        snprintf(note, sizeof(note), "DR g=%d: %ld executed", b->conv1.g, dw_macs * b->conv1.g);
        row(k, b->conv1.name, b->conv1.stride == 2 ? "dw 3x3 s2" : "dw 3x3", c, h, h, (long)c * 9,
            dw_macs, dw_macs * b->conv1.g, note);
        row(k, b->bn1.name, "bn+relu", c, h, h, 2L * c, 0, 0, NULL);
        int out = b->conv2.c_out;
        long pw = (long)out * c * h * h;
        row(k, b->conv2.name, "conv 1x1", out, h, h, (long)out * c, pw, pw, NULL);
        row(k, b->bn2.name, "bn+relu", out, h, h, 2L * out, 0, 0, NULL);
        c = out;
    }
    row(k, "avgpool", "avgpool 2x2", c, 1, 1, 0, 0, 0, NULL);
    long lin = (long)c * m->num_classes;
    row(k, "linear", "linear", m->num_classes, 1, 1, lin + m->num_classes, lin, lin, NULL);
}

void mobilenet_count(const MobileNet* m, long* params, long* macs, long* macs_executed) {
    Counter k = {0};
    walk(m, &k);
    if (params) *params = k.params;
    if (macs) *macs = k.macs;
    if (macs_executed) *macs_executed = k.macs_executed;
}

void mobilenet_print(const MobileNet* m, FILE* f) {
    fprintf(f, "MobileNet-CIFAR, width %g, %d classes (output shape per image: channels x height x width)\n",
            (double)m->width, m->num_classes);
    fprintf(f, "%-16s %-12s %-16s %10s %12s\n", "layer", "kind", "output", "params", "mult-adds");
    Counter k = {.f = f};
    walk(m, &k);
    fprintf(f, "total: %.3f M parameters, %.2f M multiply-adds per image (%.2f M as executed with "
               "diagonalwise refactorization, %.2fx)\n",
            k.params / 1e6, k.macs / 1e6, k.macs_executed / 1e6, (double)k.macs_executed / (double)k.macs);
}

// ---------------------------------------------------------------------------------------------
// The model interface

static void* build(Engine* e, float width, int dw_group, int num_classes) {
    MobileNet* m = NN_MALLOC(sizeof(*m));
    mobilenet_init(m, e, width, dw_group, num_classes);
    return m;
}

static void destroy(void* self) { free(self); }
static Tensor* forward(Engine* e, const void* self, Tensor* x) { return mobilenet_forward(e, self, x); }
static int num_depthwise(const void* self) { return (void)self, MOBILENET_BLOCKS; }
static DepthwiseConv2d* depthwise(void* self, int i) { return &((MobileNet*)self)->blocks[i].conv1; }
static int depthwise_input(const void* self, int i) {
    const MobileNet* m = self;
    int h = 32;
    for (int b = 0; b < i; b++) h = conv_out_size(h, 3, m->blocks[b].conv1.stride, 1);
    return h;
}

static void autotune(void* self, const Backend* be, int n, FILE* log) { mobilenet_autotune(self, be, n, log); }
static float stats_momentum(const void* self) { return ((const MobileNet*)self)->bn1.momentum; }
static void print(const void* self, FILE* f) { mobilenet_print(self, f); }

static void count(const void* self, long* params, long* macs, long* macs_executed) {
    mobilenet_count(self, params, macs, macs_executed);
}

const ModelDef MOBILENET_MODEL = {
    .name = "mobilenet",
    .summary = "MobileNet v1, CIFAR-10 variant",
    .title = "MobileNet-CIFAR",
    .noun = "MobileNet",
    .build = build,
    .destroy = destroy,
    .forward = forward,
    .num_depthwise = num_depthwise,
    .depthwise = depthwise,
    .depthwise_input = depthwise_input,
    .autotune = autotune,
    .stats_momentum = stats_momentum,
    .print = print,
    .count = count,
};
