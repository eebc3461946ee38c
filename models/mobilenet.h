// MobileNet v1, CIFAR-10 variant (as in kuangliu/pytorch-cifar): a 3x3 stem convolution, 13
// depthwise-separable blocks, average pooling and a linear classifier. Parameter names follow that
// PyTorch module's state_dict, so weights move between the two by name.
#ifndef MODELS_MOBILENET_H
#define MODELS_MOBILENET_H

#include <stdio.h>

#include "../nn/ops.h"
#include "model.h"

#define MOBILENET_BLOCKS 13

typedef struct MobileNetBlock {
    DepthwiseConv2d conv1; // "layers.i.conv1": depthwise 3x3, stride 1 or 2
    BatchNorm2d bn1;       // "layers.i.bn1" (+ ReLU)
    Conv2d conv2;          // "layers.i.conv2": pointwise 1x1
    BatchNorm2d bn2;       // "layers.i.bn2" (+ ReLU)
} MobileNetBlock;

typedef struct MobileNet {
    float width;     // width multiplier: every channel count c becomes int(c * width)
    int num_classes;
    Conv2d conv1;    // "conv1": stem, 3 -> 32, 3x3, stride 1, padding 1
    BatchNorm2d bn1; // "bn1" (+ ReLU)
    MobileNetBlock blocks[MOBILENET_BLOCKS];
    Linear linear;   // "linear": 1024 -> num_classes
} MobileNet;

// Registers the parameters in the engine (before engine_alloc_params). dw_group: channels per group
// of the diagonalwise depthwise layers (32 as in the paper). Fails with a message if the width leaves
// a layer without channels.
void mobilenet_init(MobileNet* m, Engine* e, float width, int dw_group, int num_classes);
// Logits (n, num_classes, 1, 1) for images x (n, 3, 32, 32).
Tensor* mobilenet_forward(Engine* e, const MobileNet* m, Tensor* x);
// (Its --print-model table and counts come from its ops: model_print, model_count in models/model.h.)

// The model interface (models/model.h) over the functions above: "mobilenet" in the registry.
extern const ModelDef MOBILENET_MODEL;

#endif
