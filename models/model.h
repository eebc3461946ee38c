// The model interface: what the trainer, its checkpoints, the run directory and --print-model know
// about a model. A model is a ModelDef (a name and a small table of functions) registered by name in
// models/model.c; the trainer holds a Model (the definition and the built model's own state) and
// reaches the model only through the model_* functions below, never through its structs.
// Parameter names are the engine's (nn/engine.h Param.name): each model registers its parameters
// under the names PyTorch's state_dict gives them, which is what checkpoints and the exporter use.
#ifndef MODELS_MODEL_H
#define MODELS_MODEL_H

#include <stdio.h>

#include "../nn/ops.h"

typedef struct ModelDef {
    const char* name;    // the MODEL word of ./train, meta.model in checkpoints, "model" in config.json
    const char* summary; // one line for --help, e.g. "MobileNet v1, CIFAR-10 variant"
    const char* title;   // the model in the lines ./train prints, e.g. "MobileNet-CIFAR"
    const char* noun;    // the model in messages ("a MobileNet of width 16 has ..."), e.g. "MobileNet"
    // Registers the parameters and buffers in the engine (before engine_alloc_params) and returns the
    // model's own state, which destroy frees. width: the channel multiplier; dw_group: channels per
    // group of the diagonalwise depthwise layers. Fails with a message (nn_fatal) if the width leaves a
    // layer without channels.
    void* (*build)(Engine* e, float width, int dw_group, int num_classes);
    void (*destroy)(void* self);
    // Logits (n, num_classes, 1, 1) for a batch of images x (n, c, h, w).
    Tensor* (*forward)(Engine* e, const void* self, Tensor* x);
    // The depthwise layers in order: their group sizes are --dw-group per layer, meta.dw_groups in a
    // checkpoint and "dw_groups" in config.json. A model without depthwise layers has none.
    int (*num_depthwise)(const void* self);
    DepthwiseConv2d* (*depthwise)(void* self, int i);
    // The height (= width) of depthwise layer i's input for a 32x32 image: what the benchmarks time
    // each layer on.
    int (*depthwise_input)(const void* self, int i);
    // The momentum of the running statistics (batch norm's), with which several processes merge theirs.
    float (*stats_momentum)(const void* self);
    // (No print or count: the --print-model table and the counts come from the model's own ops,
    // model_print and model_count below.)
} ModelDef;

// A built model.
typedef struct Model {
    const ModelDef* def;
    void* self; // the model's own state (def->build)
    float width;
    int num_classes;
} Model;

// The registered model of that name, or NULL.
const ModelDef* model_find(const char* name);
// The registered names, ", "-separated ("mobilenet, mobilenetv2"), for --help and error messages.
const char* model_names(void);
// The i-th registered model (NULL past the last).
const ModelDef* model_at(int i);

void model_build(Model* m, const ModelDef* def, Engine* e, float width, int dw_group, int num_classes);
void model_free(Model* m); // frees the model's state (not its parameters: the engine holds those)
Tensor* model_forward(Engine* e, const Model* m, Tensor* x);
int model_num_depthwise(const Model* m);
DepthwiseConv2d* model_depthwise(const Model* m, int i);
int model_depthwise_input(const Model* m, int i);
void model_autotune(Model* m, const Backend* be, int n, FILE* log);
float model_stats_momentum(const Model* m);
// --print-model: every op of the model for one c x h x w image (its name, kind, arithmetic, output
// shape, parameters and multiply-adds, from the op's own cost function) and the totals; bf16: the run
// is in bf16 mixed precision, so the ops whose OpDef.bf16_products is set show "bf16"; model_count gives
// the totals alone (per image: trainable parameters, true multiply-adds, multiply-adds as executed,
// where depthwise layers cost g times their own under diagonalwise refactorization). Any may be NULL.
// model_describe.c reads them off the ops, so a model defines neither.
void model_print(const Model* m, int c, int h, int w, int bf16, FILE* f);
void model_count(const Model* m, int c, int h, int w, long* params, long* macs, long* macs_executed);
// The trainable parameters and running statistics (floats) of the model at this width, counted on a
// model described but not allocated (a checkpoint that cannot hold them is refused before the build).
unsigned long long model_values(const ModelDef* def, float width, int num_classes);

#endif
