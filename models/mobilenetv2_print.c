// --print-model and the counts of MobileNetV2-CIFAR: one walk over the layers, which prints a row per
// layer (output shape for one 32x32 image, parameters, multiply-adds) and sums them.
#include <stdio.h>

#include "mobilenetv2.h"

typedef struct Counter {
    FILE* f; // NULL: count only
    long params, macs, macs_executed;
} Counter;

static void row(Counter* k, const char* name, const char* kind, int c, int h, long params, long macs,
                long executed, const char* note) {
    k->params += params, k->macs += macs, k->macs_executed += executed;
    if (!k->f) return;
    char shape[32];
    snprintf(shape, sizeof(shape), "%d x %d x %d", c, h, h);
    fprintf(k->f, "%-22s %-12s %-16s %10ld %12ld  %s\n", name, kind, shape, params, macs, note ? note : "");
}

// A 1x1 convolution from cin channels onto an h x h map, and its batch norm.
static void pointwise(Counter* k, const Conv2d* conv, const BatchNorm2d* bn, int h, const char* bn_kind) {
    long macs = (long)conv->c_out * conv->c_in * h * h;
    row(k, conv->name, "conv 1x1", conv->c_out, h, (long)conv->c_out * conv->c_in, macs, macs, NULL);
    row(k, bn->name, bn_kind, bn->c, h, 2L * bn->c, 0, 0, NULL);
}

static void walk(const MobileNetV2* m, Counter* k) {
    int h = 32, c = m->conv1.c_out;
    long stem = (long)c * h * h * 3 * 9;
    row(k, "conv1", "conv 3x3", c, h, (long)c * 3 * 9, stem, stem, NULL);
    row(k, "bn1", "bn+relu", c, h, 2L * c, 0, 0, NULL);
    for (int i = 0; i < MOBILENETV2_BLOCKS; i++) {
        const MobileNetV2Block* b = &m->blocks[i];
        pointwise(k, &b->conv1, &b->bn1, h, "bn+relu");
        const DepthwiseConv2d* dw = &b->conv2;
        int ho = conv_out_size(h, dw->k, dw->stride, dw->pad);
        long dw_macs = (long)dw->c * ho * ho * dw->k * dw->k;
        char note[64];
        snprintf(note, sizeof(note), "DR g=%d: %ld executed", dw->g, dw_macs * dw->g);
        row(k, dw->name, dw->stride == 2 ? "dw 3x3 s2" : "dw 3x3", dw->c, ho, (long)dw->c * dw->k * dw->k, dw_macs,
            dw_macs * dw->g, note);
        row(k, b->bn2.name, "bn+relu", dw->c, ho, 2L * dw->c, 0, 0, NULL);
        pointwise(k, &b->conv3, &b->bn3, ho, "bn");
        if (b->projected) pointwise(k, &b->shortcut_conv, &b->shortcut_bn, ho, "bn");
        if (b->residual) row(k, b->add_name, b->projected ? "add" : "add (ident)", b->conv3.c_out, ho, 0, 0, 0, NULL);
        h = ho, c = b->conv3.c_out;
    }
    pointwise(k, &m->conv2, &m->bn2, h, "bn+relu");
    c = m->conv2.c_out;
    row(k, "avgpool", "avgpool 4x4", c, 1, 0, 0, 0, NULL);
    long lin = (long)c * m->num_classes;
    row(k, "linear", "linear", m->num_classes, 1, lin + m->num_classes, lin, lin, NULL);
}

void mobilenetv2_count(const MobileNetV2* m, long* params, long* macs, long* macs_executed) {
    Counter k = {0};
    walk(m, &k);
    if (params) *params = k.params;
    if (macs) *macs = k.macs;
    if (macs_executed) *macs_executed = k.macs_executed;
}

void mobilenetv2_print(const MobileNetV2* m, FILE* f) {
    fprintf(f, "MobileNetV2-CIFAR, width %g, %d classes (output shape per image: channels x height x width)\n",
            (double)m->width, m->num_classes);
    fprintf(f, "%-22s %-12s %-16s %10s %12s\n", "layer", "kind", "output", "params", "mult-adds");
    Counter k = {.f = f};
    walk(m, &k);
    fprintf(f, "total: %.3f M parameters, %.2f M multiply-adds per image (%.2f M as executed with "
               "diagonalwise refactorization, %.2fx)\n",
            k.params / 1e6, k.macs / 1e6, k.macs_executed / 1e6, (double)k.macs_executed / (double)k.macs);
}
