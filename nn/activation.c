// ReLU. (MobileNet fuses it into batch norm; the standalone op is here for other models and tests.)
#include "ops.h"

static void relu_backward(Engine* e, const TapeEntry* t) {
    Tensor *x = t->in[0], *y = t->out;
    if (x->grad)
        e->be->relu_backward(x->grad, y->grad, y->data, tensor_numel(y), tensor_grad_accumulate(x));
}

static const OpDef RELU_OP = {.kind = "relu", .backward = relu_backward};

Tensor* relu(Engine* e, Tensor* x, const char* name) {
    engine_require_fp32(x, name);
    Tensor* y = engine_activation(e, x->n, x->c, x->h, x->w);
    TapeEntry* t = engine_record(e, &RELU_OP, name, y);
    if (t) t->in[0] = x;
    if (!engine_skip(e)) e->be->relu_forward(y->data, x->data, tensor_numel(x));
    return y;
}
