// MobileNetV2, CIFAR-10 variant (as in kuangliu/pytorch-cifar, models/mobilenetv2.py): a 3x3 stem
// convolution, 17 inverted-residual blocks (1x1 expansion, depthwise 3x3, linear 1x1 projection, a
// residual add when the stride is 1), a 1x1 convolution to 1280 channels, 4x4 average pooling and a
// linear classifier. Parameter names follow that PyTorch module's state_dict, so weights move between
// the two by name. The depthwise layers run by diagonalwise refactorization, as MobileNet's do.
#ifndef MODELS_MOBILENETV2_H
#define MODELS_MOBILENETV2_H

#include <stdio.h>

#include "../nn/ops.h"
#include "model.h"

#define MOBILENETV2_BLOCKS 17

typedef struct MobileNetV2Block {
    Conv2d conv1;          // "layers.i.conv1": 1x1 expansion, in -> expansion * in
    BatchNorm2d bn1;       // "layers.i.bn1" (+ ReLU)
    DepthwiseConv2d conv2; // "layers.i.conv2": depthwise 3x3, stride 1 or 2
    BatchNorm2d bn2;       // "layers.i.bn2" (+ ReLU)
    Conv2d conv3;          // "layers.i.conv3": 1x1 projection, expansion * in -> out
    BatchNorm2d bn3;       // "layers.i.bn3" (no ReLU: the linear bottleneck)
    int in_size;           // height (= width) of the block's input for a 32x32 image
    // The residual: only at stride 1; the identity when in == out channels, else this 1x1 conv + BN.
    int residual, projected;
    char add_name[LAYER_NAME_LEN]; // "layers.i.add": the residual add, as the profiler names it
    Conv2d shortcut_conv;  // "layers.i.shortcut.0" (when projected)
    BatchNorm2d shortcut_bn; // "layers.i.shortcut.1" (when projected)
} MobileNetV2Block;

typedef struct MobileNetV2 {
    float width;     // width multiplier: every channel count c becomes int(c * width), as MobileNet's
    int num_classes;
    Conv2d conv1;    // "conv1": stem, 3 -> 32, 3x3, stride 1, padding 1
    BatchNorm2d bn1; // "bn1" (+ ReLU)
    MobileNetV2Block blocks[MOBILENETV2_BLOCKS];
    Conv2d conv2;    // "conv2": 1x1, 320 -> 1280
    BatchNorm2d bn2; // "bn2" (+ ReLU)
    Linear linear;   // "linear": 1280 -> num_classes
} MobileNetV2;

// Registers the parameters in the engine (before engine_alloc_params). dw_group: channels per group
// of the diagonalwise depthwise layers. Fails with a message if the width leaves a layer without channels.
void mobilenetv2_init(MobileNetV2* m, Engine* e, float width, int dw_group, int num_classes);
// Logits (n, num_classes, 1, 1) for images x (n, 3, 32, 32).
Tensor* mobilenetv2_forward(Engine* e, const MobileNetV2* m, Tensor* x);

// The model interface (models/model.h) over the functions above: "mobilenetv2" in the registry.
extern const ModelDef MOBILENETV2_MODEL;

#endif
