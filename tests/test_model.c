// The model interface (models/model.h): the registry finds MobileNet and MobileNetV2 by name and
// lists them, and a MobileNet built through the interface is the one mobilenet_init builds: the same
// parameters (names, shapes, order), the same depthwise layers in the same order with their group
// sizes. The counts and the --print-model table, read off the ops (models/model_describe.c), agree
// with the engine's own parameters and with each other. For MobileNetV2: its depthwise layers
// through the interface are the blocks' own, their input sizes follow the strides, and the counted
// parameters are the registered ones. Nothing is allocated (engines without a backend describe only).
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/mobilenet.h"
#include "../models/mobilenetv2.h"
#include "../models/model.h"
#include "../nn/engine.h"
#include "test_util.h"

// The --print-model table, as a string (caller frees).
static char* printed(const Model* m) {
    char* buf = NULL;
    size_t len = 0;
    FILE* f = open_memstream(&buf, &len);
    model_print(m, 3, 32, 32, 0, f);
    fclose(f);
    return buf;
}

static void check_mobilenetv2(void) {
    const float widths[] = {0.25f, 1.0f};
    for (int w = 0; w < 2; w++) {
        Engine* e = engine_create(&(Backend){0});
        Model m;
        model_build(&m, &MOBILENETV2_MODEL, e, widths[w], 8, 10);
        const MobileNetV2* net = m.self;
        CHECK(model_num_depthwise(&m) == MOBILENETV2_BLOCKS, "MobileNetV2: %d depthwise layers", model_num_depthwise(&m));
        int size = 32;
        for (int i = 0; i < model_num_depthwise(&m) && i < MOBILENETV2_BLOCKS; i++) {
            const DepthwiseConv2d* dw = model_depthwise(&m, i);
            CHECK(dw == &net->blocks[i].conv2 && dw->c == net->blocks[i].conv1.c_out,
                  "MobileNetV2 width %g: depthwise layer %d is block %d's conv2, on its expanded channels",
                  (double)widths[w], i, i);
            CHECK(model_depthwise_input(&m, i) == size, "MobileNetV2 width %g: depthwise layer %d's input is %dx%d",
                  (double)widths[w], i, size, size);
            size = conv_out_size(size, dw->k, dw->stride, dw->pad);
        }
        long trainable = 0, params;
        for (int i = 0; i < e->num_params; i++) trainable += e->params[i].is_buffer ? 0 : (long)e->params[i].numel;
        model_count(&m, 3, 32, 32, &params, NULL, NULL);
        CHECK(params == trainable, "MobileNetV2 width %g: --print-model counts %ld parameters, the engine holds %ld",
              (double)widths[w], params, trainable);
        char* s = printed(&m);
        CHECK(strstr(s, "layers.16.conv2") && strstr(s, "layers.2.add"), "MobileNetV2: --print-model lists the blocks");
        free(s);
        model_free(&m);
        engine_destroy(e);
    }
}

int main(void) {
    const ModelDef* def = model_find("mobilenet");
    CHECK(def && def == &MOBILENET_MODEL, "model_find(\"mobilenet\") is MOBILENET_MODEL");
    CHECK(model_find("resnet") == NULL && model_find("") == NULL, "unknown names are not found");
    CHECK(!strcmp(model_names(), "mobilenet, mobilenetv2"), "model_names() = \"%s\"", model_names());
    CHECK(model_find("mobilenetv2") == &MOBILENETV2_MODEL, "model_find(\"mobilenetv2\") is MOBILENETV2_MODEL");
    CHECK(model_at(0) == def && model_at(1) == &MOBILENETV2_MODEL && model_at(2) == NULL && model_at(-1) == NULL,
          "model_at walks the registry");
    if (!def) return test_finish("test_model");

    const float widths[] = {0.25f, 1.0f};
    for (int w = 0; w < 2; w++) {
        Engine* a = engine_create(&(Backend){0});
        Engine* b = engine_create(&(Backend){0});
        Model m;
        model_build(&m, def, a, widths[w], 8, 10);
        MobileNet direct;
        mobilenet_init(&direct, b, widths[w], 8, 10);
        CHECK(m.def == def && m.width == widths[w] && m.num_classes == 10, "width %g: the handle", (double)widths[w]);
        int same = a->num_params == b->num_params;
        unsigned long long values = 0;
        for (int i = 0; same && i < a->num_params; i++) {
            same = !strcmp(a->params[i].name, b->params[i].name) && a->params[i].numel == b->params[i].numel &&
                   a->params[i].is_buffer == b->params[i].is_buffer;
            values += a->params[i].numel;
        }
        CHECK(same, "width %g: the same %d parameters and buffers in the same order", (double)widths[w], b->num_params);
        CHECK(model_values(def, widths[w], 10) == values, "width %g: model_values = %llu", (double)widths[w], values);

        CHECK(model_num_depthwise(&m) == MOBILENET_BLOCKS, "%d depthwise layers", model_num_depthwise(&m));
        for (int i = 0; i < model_num_depthwise(&m) && i < MOBILENET_BLOCKS; i++) {
            const DepthwiseConv2d* dw = model_depthwise(&m, i);
            const DepthwiseConv2d* want = &direct.blocks[i].conv1;
            CHECK(!strcmp(dw->name, want->name) && dw->c == want->c && dw->stride == want->stride && dw->g == want->g,
                  "width %g: depthwise layer %d is %s (c %d, g %d)", (double)widths[w], i, want->name, want->c, want->g);
            CHECK(model_depthwise_input(&m, i) == (i ? conv_out_size(model_depthwise_input(&m, i - 1), 3,
                                                                     direct.blocks[i - 1].conv1.stride, 1) : 32),
                  "width %g: depthwise layer %d's input size", (double)widths[w], i);
        }
        depthwise_set_group(model_depthwise(&m, 0), 1); // a group set through the interface is the model's
        CHECK(((MobileNet*)m.self)->blocks[0].conv1.g == 1, "depthwise_set_group through model_depthwise");
        depthwise_set_group(model_depthwise(&m, 0), direct.blocks[0].conv1.g);

        // The described parameters are the engine's trainable ones; every layer's multiply-adds are
        // counted, and DR executes g times the depthwise ones (g = 8 here, 1 for the first layer).
        long params, macs, executed, trainable = 0;
        for (int i = 0; i < a->num_params; i++)
            if (!a->params[i].is_buffer) trainable += (long)a->params[i].numel;
        model_count(&m, 3, 32, 32, &params, &macs, &executed);
        CHECK(params == trainable, "width %g: %ld parameters counted, the engine holds %ld", (double)widths[w], params,
              trainable);
        CHECK(macs > 0 && executed > macs, "width %g: %ld multiply-adds, %ld executed", (double)widths[w], macs, executed);
        char* table = printed(&m);
        char total[160];
        snprintf(total, sizeof(total), "total: %.3f M parameters, %.2f M multiply-adds per image", params / 1e6,
                 macs / 1e6);
        CHECK(strstr(table, total) != NULL, "width %g: the table's total is model_count's: %s", (double)widths[w], total);
        for (int i = 0; i < MOBILENET_BLOCKS; i++) // a row per depthwise layer, naming its g
            CHECK(strstr(table, direct.blocks[i].conv1.name) != NULL, "width %g: a row for %s", (double)widths[w],
                  direct.blocks[i].conv1.name);
        CHECK(strstr(table, "DR g=8") != NULL, "width %g: the depthwise rows show g", (double)widths[w]);
        free(table);
        CHECK(model_stats_momentum(&m) == direct.bn1.momentum, "the running statistics' momentum");

        model_free(&m);
        CHECK(m.self == NULL, "model_free clears the handle");
        model_free(&m); // twice is harmless (trainer_destroy after a failed start)
        engine_destroy(a);
        engine_destroy(b);
    }
    check_mobilenetv2();
    Model none = {0};
    model_free(&none); // a trainer that never built its model
    return test_finish("test_model");
}
