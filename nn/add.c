// The residual add, y = a + b (MobileNetV2's shortcut). No parameters and nothing saved: backward
// needs only dy, and each input's gradient follows the engine's convention (the first writer
// overwrites, later ones accumulate), decided per input, so y = x + x and y = t + f(t) are right.
#include "ops.h"

#include "util.h"

static void add_backward(Engine* e, const TapeEntry* t) {
    Tensor *a = t->in[0], *b = t->in[1], *y = t->out;
    if (!a->grad && !b->grad) return;
    // Decided in this order (a, then b): for a == b, a's update overwrites and b's accumulates,
    // and the kernels apply them per element in that order.
    int acc_a = a->grad ? tensor_grad_accumulate(a) : 0;
    int acc_b = b->grad ? tensor_grad_accumulate(b) : 0;
    e->be->add_backward(a->grad, b->grad, y->grad, tensor_numel(y), acc_a, acc_b);
}

// No arithmetic worth counting; two activation inputs, so the default bytes (one input and
// parameters) hold forward, and backward reads dy and writes da, db, never a or b.
static void add_cost(const TapeEntry* t, OpCost* c) {
    double out = 4.0 * (double)tensor_numel(t->out);
    c->bytes_bwd = out + (t->in[0]->grad ? 4.0 * (double)tensor_numel(t->in[0]) : 0) +
                   (t->in[1]->grad ? 4.0 * (double)tensor_numel(t->in[1]) : 0);
}

static const OpDef ADD_OP = {.kind = "add", .backward = add_backward, .cost = add_cost};

Tensor* add(Engine* e, Tensor* a, Tensor* b, const char* name) {
    engine_require_fp32(a, name);
    engine_require_fp32(b, name);
    if (a->n != b->n || a->c != b->c || a->h != b->h || a->w != b->w)
        nn_fatal("layer '%s' adds tensors of different shapes: (%d, %d, %d, %d) and (%d, %d, %d, %d)",
                 name, a->n, a->c, a->h, a->w, b->n, b->c, b->h, b->w);
    Tensor* y = engine_activation(e, a->n, a->c, a->h, a->w);
    TapeEntry* t = engine_record(e, &ADD_OP, name, y);
    if (t) t->in[0] = a, t->in[1] = b;
    if (!engine_skip(e)) e->be->add_forward(y->data, a->data, b->data, tensor_numel(a));
    return y;
}
