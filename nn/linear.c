// Fully connected layer with bias (PyTorch's nn.Linear), and the flatten that feeds it.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "util.h"

void linear_init(Linear* m, Engine* e, const char* name, int in, int out) {
    NN_ASSERT(in > 0 && out > 0, "linear '%s': %d -> %d", name, in, out);
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->in = in, m->out = out;
    char pname[ENGINE_NAME_LEN];
    float bound = 1.0f / sqrtf((float)in);
    int wdims[2] = {out, in}, bdims[1] = {out};
    snprintf(pname, sizeof(pname), "%s.weight", name);
    m->weight = engine_param(e, pname, 2, wdims, INIT_UNIFORM, bound);
    snprintf(pname, sizeof(pname), "%s.bias", name);
    m->bias = engine_param(e, pname, 1, bdims, INIT_UNIFORM, bound);
}

static void linear_backward(Engine* e, const TapeEntry* t) {
    Tensor *x = t->in[0], *w = t->in[1], *b = t->in[2], *y = t->out;
    int acc = x->grad ? tensor_grad_accumulate(x) : 0;
    e->be->linear_backward(x->grad, w->grad, b->grad, y->grad, x->data, w->data, x->n,
                           t->a.linear.in_features, t->a.linear.out_features, acc);
}

static void linear_cost(const TapeEntry* t, OpCost* c) {
    c->macs_fwd = (double)t->in[0]->n * t->a.linear.in_features * t->a.linear.out_features;
    c->macs_bwd = (t->in[0]->grad ? 2.0 : 1.0) * c->macs_fwd; // weight gradient, and input gradient if needed
}

static const OpDef LINEAR_OP = {.kind = "linear", .backward = linear_backward, .cost = linear_cost, .bf16_products = 1};

Tensor* linear(Engine* e, const Linear* m, Tensor* x) {
    engine_require_fp32(x, m->name);
    int in = x->c * x->h * x->w;
    if (in != m->in)
        nn_fatal("layer '%s' expects %d input features, got a (%d, %d, %d, %d) tensor", m->name, m->in,
                 x->n, x->c, x->h, x->w);
    Tensor* y = engine_activation(e, x->n, m->out, 1, 1);
    TapeEntry* t = engine_record(e, &LINEAR_OP, m->name, y);
    if (t) {
        t->in[0] = x, t->in[1] = m->weight, t->in[2] = m->bias;
        t->a.linear.in_features = m->in, t->a.linear.out_features = m->out;
    }
    if (!engine_skip(e))
        e->be->linear_forward(y->data, x->data, m->weight->data, m->bias->data, x->n, m->in, m->out);
    return y;
}

// A view: same memory, no tape entry; gradients written to the view land in x's buffer, and the
// view shares x's grad_written flag, so accumulation stays right.
Tensor* flatten(Engine* e, Tensor* x) {
    return engine_view(e, x, x->n, x->c * x->h * x->w, 1, 1);
}
