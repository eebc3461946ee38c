#include "mobilenetv2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/util.h"

// (expansion, out channels, blocks, stride of the first): the `cfg` of the CIFAR-10 MobileNetV2 in
// kuangliu/pytorch-cifar (models/mobilenetv2.py), which tools/mobilenetv2.py reproduces. Its CIFAR
// changes to the paper: stride 1 in the stem and in the second stage, 4x4 average pooling.
static const int CFG[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2},
                              {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};

// int(c * width), as MobileNet's (models/mobilenet.c): width is the C float ./train parsed, the
// product is taken in double precision and truncated.
static int scaled(int c, float width) {
    int s = (int)((double)c * (double)width);
    if (s < 1) nn_fatal("--width %g leaves a layer of %d channels with none", (double)width, c);
    return s;
}

static void block_init(MobileNetV2Block* b, Engine* e, int i, int in, int expansion, int out, int stride,
                       int in_size, int dw_group) {
    char name[LAYER_NAME_LEN];
    int planes = expansion * in; // kuangliu expands even when expansion is 1 (a 1x1 conv in -> in)
    b->in_size = in_size;
    snprintf(name, sizeof(name), "layers.%d.conv1", i);
    conv2d_init(&b->conv1, e, name, in, planes, 1, 1, 0, 1);
    snprintf(name, sizeof(name), "layers.%d.bn1", i);
    batchnorm2d_init(&b->bn1, e, name, planes);
    snprintf(name, sizeof(name), "layers.%d.conv2", i);
    depthwise_init(&b->conv2, e, name, planes, 3, stride, 1, dw_group);
    snprintf(name, sizeof(name), "layers.%d.bn2", i);
    batchnorm2d_init(&b->bn2, e, name, planes);
    snprintf(name, sizeof(name), "layers.%d.conv3", i);
    conv2d_init(&b->conv3, e, name, planes, out, 1, 1, 0, 1);
    snprintf(name, sizeof(name), "layers.%d.bn3", i);
    batchnorm2d_init(&b->bn3, e, name, out);
    b->residual = stride == 1;
    b->projected = stride == 1 && in != out;
    snprintf(b->add_name, sizeof(b->add_name), "layers.%d.add", i);
    if (!b->projected) return;
    snprintf(name, sizeof(name), "layers.%d.shortcut.0", i);
    conv2d_init(&b->shortcut_conv, e, name, in, out, 1, 1, 0, 1);
    snprintf(name, sizeof(name), "layers.%d.shortcut.1", i);
    batchnorm2d_init(&b->shortcut_bn, e, name, out);
}

void mobilenetv2_init(MobileNetV2* m, Engine* e, float width, int dw_group, int num_classes) {
    memset(m, 0, sizeof(*m));
    m->width = width;
    m->num_classes = num_classes;
    int c = scaled(32, width), size = 32, i = 0;
    conv2d_init(&m->conv1, e, "conv1", 3, c, 3, 1, 1, 1);
    batchnorm2d_init(&m->bn1, e, "bn1", c);
    for (int s = 0; s < 7; s++) {
        int out = scaled(CFG[s][1], width);
        for (int j = 0; j < CFG[s][2]; j++, i++) {
            int stride = j == 0 ? CFG[s][3] : 1;
            block_init(&m->blocks[i], e, i, c, CFG[s][0], out, stride, size, dw_group);
            size = conv_out_size(size, 3, stride, 1);
            c = out;
        }
    }
    NN_ASSERT(i == MOBILENETV2_BLOCKS, "MobileNetV2 has %d blocks, not %d", i, MOBILENETV2_BLOCKS);
    int head = scaled(1280, width);
    conv2d_init(&m->conv2, e, "conv2", c, head, 1, 1, 0, 1);
    batchnorm2d_init(&m->bn2, e, "bn2", head);
    linear_init(&m->linear, e, "linear", head, num_classes);
}

static Tensor* block_forward(Engine* e, const MobileNetV2Block* b, Tensor* x) {
    // Every batch norm reads a convolution's output that nothing else reads (BN_AFTER_CONV). Inside the
    // block only convolutions read the batch norms' outputs (BN_FEEDS_CONV); the block's output is
    // read by a residual add, or by the next block's convolutions and shortcut. (nn/ops.h says why.)
    Tensor* y = batchnorm2d(e, &b->bn1, conv2d(e, &b->conv1, x), BN_RELU | BN_AFTER_CONV | BN_FEEDS_CONV);
    y = batchnorm2d(e, &b->bn2, depthwise_conv2d(e, &b->conv2, y), BN_RELU | BN_AFTER_CONV | BN_FEEDS_CONV);
    y = batchnorm2d(e, &b->bn3, conv2d(e, &b->conv3, y), BN_AFTER_CONV);
    if (!b->residual) return y;
    Tensor* shortcut =
        b->projected ? batchnorm2d(e, &b->shortcut_bn, conv2d(e, &b->shortcut_conv, x), BN_AFTER_CONV) : x;
    return add(e, y, shortcut, b->add_name);
}

Tensor* mobilenetv2_forward(Engine* e, const MobileNetV2* m, Tensor* x) {
    if (x->c != 3 || x->h != 32 || x->w != 32)
        nn_fatal("MobileNetV2-CIFAR takes (n, 3, 32, 32) images, got (%d, %d, %d, %d)", x->n, x->c, x->h, x->w);
    x = batchnorm2d(e, &m->bn1, conv2d(e, &m->conv1, x), BN_RELU | BN_AFTER_CONV);
    for (int i = 0; i < MOBILENETV2_BLOCKS; i++) x = block_forward(e, &m->blocks[i], x);
    x = batchnorm2d(e, &m->bn2, conv2d(e, &m->conv2, x), BN_RELU | BN_AFTER_CONV);
    x = avgpool2d(e, x, 4, 4, 0, "avgpool"); // the final map is 4x4
    return linear(e, &m->linear, flatten(e, x));
}

// ---------------------------------------------------------------------------------------------
// The model interface

static void* build(Engine* e, float width, int dw_group, int num_classes) {
    MobileNetV2* m = NN_MALLOC(sizeof(*m));
    mobilenetv2_init(m, e, width, dw_group, num_classes);
    return m;
}

static void destroy(void* self) { free(self); }
static Tensor* forward(Engine* e, const void* self, Tensor* x) { return mobilenetv2_forward(e, self, x); }
static int num_depthwise(const void* self) { return (void)self, MOBILENETV2_BLOCKS; }
static DepthwiseConv2d* depthwise(void* self, int i) { return &((MobileNetV2*)self)->blocks[i].conv2; }
static int depthwise_input(const void* self, int i) { return ((const MobileNetV2*)self)->blocks[i].in_size; }

static float stats_momentum(const void* self) { return ((const MobileNetV2*)self)->bn1.momentum; }

const ModelDef MOBILENETV2_MODEL = {
    .name = "mobilenetv2",
    .summary = "MobileNetV2, CIFAR-10 variant",
    .title = "MobileNetV2-CIFAR",
    .noun = "MobileNetV2",
    .build = build,
    .destroy = destroy,
    .forward = forward,
    .num_depthwise = num_depthwise,
    .depthwise = depthwise,
    .depthwise_input = depthwise_input,
    .stats_momentum = stats_momentum,
};
