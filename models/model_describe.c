// --print-model and the model's totals, read off its ops rather than walked by hand per model: a
// twin of the model (same definition, width, classes and depthwise groups) takes one image through
// an engine that only describes (engine_describe_begin: no backend, nothing computed or allocated),
// and each op's row comes from its tape entry: the label and cost its OpDef gives from its shapes
// (nn/profile.c op_cost), and the parameters among its inputs. A new model or op needs nothing here.
#include <stdio.h>
#include <stdlib.h>

#include "../nn/engine.h"
#include "../nn/profile.h"
#include "model.h"

typedef struct Totals {
    long params, macs, macs_executed;
} Totals;

// The trainable values among an entry's inputs (weights, biases, batch norm's gamma and beta).
static long entry_params(const Engine* e, const TapeEntry* t) {
    long n = 0;
    for (int k = 0; k < 3; k++)
        for (int i = 0; t->in[k] && i < e->num_params; i++)
            if (t->in[k] == &e->params[i].t && !e->params[i].is_buffer) n += (long)e->params[i].numel;
    return n;
}

// One row per op for an input of one c x h x w image (into f when it is not NULL), summed into *sum.
static void describe(const Model* m, int c, int h, int w, int bf16, FILE* f, Totals* sum) {
    Engine* e = engine_create(&(Backend){0});
    Model twin;
    model_build(&twin, m->def, e, m->width, 1, m->num_classes);
    for (int i = 0; i < model_num_depthwise(m); i++)
        depthwise_set_group(model_depthwise(&twin, i), model_depthwise(m, i)->g);
    engine_describe_begin(e);
    model_forward(e, &twin, engine_input(e, 1, c, h, w, NULL));
    int n;
    const TapeEntry* tape = engine_described(e, &n);
    for (int i = 0; i < n; i++) {
        const TapeEntry* t = &tape[i];
        OpCost cost;
        op_cost(t, &cost);
        const long params = entry_params(e, t), executed = (long)cost.macs_fwd;
        const long macs = cost.g > 0 ? (long)cost.macs_true : executed; // DR executes g times the depthwise ones
        sum->params += params, sum->macs += macs, sum->macs_executed += executed;
        if (!f) continue;
        char label[32], shape[32], note[64] = "";
        if (t->op->label) t->op->label(t, label, sizeof(label));
        else snprintf(label, sizeof(label), "%s", t->op->kind);
        snprintf(shape, sizeof(shape), "%d x %d x %d", t->out->c, t->out->h, t->out->w);
        if (cost.g > 0) snprintf(note, sizeof(note), "DR g=%d: %ld executed", cost.g, executed);
        fprintf(f, "%-16s %-12s %-5s %-16s %10ld %12ld  %s\n", t->name, label, bf16 && t->op->bf16_products ? "bf16" : "fp32",
                shape, params, macs, note);
    }
    engine_describe_end(e);
    model_free(&twin);
    engine_destroy(e);
}

void model_print(const Model* m, int c, int h, int w, int bf16, FILE* f) {
    fprintf(f, "%s, width %g, %d classes (output shape per image: channels x height x width)\n", m->def->title,
            (double)m->width, m->num_classes);
    fprintf(f, "%-16s %-12s %-5s %-16s %10s %12s\n", "layer", "kind", "math", "output", "params", "mult-adds");
    Totals k = {0};
    describe(m, c, h, w, bf16, f, &k);
    fprintf(f, "total: %.3f M parameters, %.2f M multiply-adds per image (%.2f M as executed with "
               "diagonalwise refactorization, %.2fx)\n",
            k.params / 1e6, k.macs / 1e6, k.macs_executed / 1e6, (double)k.macs_executed / (double)k.macs);
}

void model_count(const Model* m, int c, int h, int w, long* params, long* macs, long* macs_executed) {
    Totals k = {0};
    describe(m, c, h, w, 0, NULL, &k);
    if (params) *params = k.params;
    if (macs) *macs = k.macs;
    if (macs_executed) *macs_executed = k.macs_executed;
}
