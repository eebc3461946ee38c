#include "model.h"

#include <stdlib.h>
#include <string.h>

#include "../nn/engine.h"
#include "mobilenet.h"
#include "mobilenetv2.h"

// The registry: one line per model.
static const ModelDef* const MODELS[] = {&MOBILENET_MODEL, &MOBILENETV2_MODEL, NULL};

const ModelDef* model_at(int i) {
    return i >= 0 && i < (int)(sizeof(MODELS) / sizeof(MODELS[0])) ? MODELS[i] : NULL;
}

const ModelDef* model_find(const char* name) {
    for (int i = 0; MODELS[i]; i++)
        if (!strcmp(MODELS[i]->name, name)) return MODELS[i];
    return NULL;
}

const char* model_names(void) {
    static char names[256];
    if (!names[0])
        for (int i = 0; MODELS[i]; i++)
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "", MODELS[i]->name);
    return names;
}

void model_build(Model* m, const ModelDef* def, Engine* e, float width, int dw_group, int num_classes) {
    m->def = def;
    m->width = width;
    m->num_classes = num_classes;
    m->self = def->build(e, width, dw_group, num_classes);
}

void model_free(Model* m) {
    if (m->def && m->self) m->def->destroy(m->self);
    m->self = NULL;
}

Tensor* model_forward(Engine* e, const Model* m, Tensor* x) { return m->def->forward(e, m->self, x); }
int model_num_depthwise(const Model* m) { return m->def->num_depthwise(m->self); }
DepthwiseConv2d* model_depthwise(const Model* m, int i) { return m->def->depthwise(m->self, i); }
int model_depthwise_input(const Model* m, int i) { return m->def->depthwise_input(m->self, i); }
// --dw-group auto, for any model: each depthwise layer timed on its own input shape (the accessors above).
void model_autotune(Model* m, const Backend* be, int n, FILE* log) {
    for (int i = 0; i < model_num_depthwise(m); i++) {
        int h = model_depthwise_input(m, i);
        depthwise_autotune(be, model_depthwise(m, i), n, h, h, log);
    }
}
float model_stats_momentum(const Model* m) { return m->def->stats_momentum(m->self); }
// (model_print and model_count: model_describe.c, from the model's ops)

unsigned long long model_values(const ModelDef* def, float width, int num_classes) {
    Engine* e = engine_create(&(Backend){0});
    Model m;
    model_build(&m, def, e, width, 1, num_classes);
    unsigned long long n = 0;
    for (int i = 0; i < e->num_params; i++) n += e->params[i].numel; // (the arenas pad each one)
    model_free(&m);
    engine_destroy(e);
    return n;
}
