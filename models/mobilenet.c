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

Tensor* mobilenet_forward(Engine* e, const MobileNet* m, Tensor* x) {
    if (x->c != 3 || x->h != 32 || x->w != 32)
        nn_fatal("MobileNet-CIFAR takes (n, 3, 32, 32) images, got (%d, %d, %d, %d)", x->n, x->c, x->h, x->w);
    // Every batch norm reads a convolution's output that nothing else reads (BN_AFTER_CONV), and every
    // batch norm's output but the last feeds a convolution only (BN_FEEDS_CONV): in bf16 mixed
    // precision those tensors and gradients are stored in bf16 where the backend allows (nn/ops.h).
    const int bn = BN_RELU | BN_AFTER_CONV;
    x = batchnorm2d(e, &m->bn1, conv2d(e, &m->conv1, x), bn | BN_FEEDS_CONV);
    for (int i = 0; i < MOBILENET_BLOCKS; i++) {
        const MobileNetBlock* b = &m->blocks[i];
        int last = i == MOBILENET_BLOCKS - 1;
        x = batchnorm2d(e, &b->bn1, depthwise_conv2d(e, &b->conv1, x), bn | BN_FEEDS_CONV);
        x = batchnorm2d(e, &b->bn2, conv2d(e, &b->conv2, x), last ? bn : bn | BN_FEEDS_CONV);
    }
    x = avgpool2d(e, x, 2, 2, 0, "avgpool"); // the final map is 2x2
    return linear(e, &m->linear, flatten(e, x));
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

static float stats_momentum(const void* self) { return ((const MobileNet*)self)->bn1.momentum; }

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
    .stats_momentum = stats_momentum,
};
