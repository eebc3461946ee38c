// 2-D convolution (any kernel size, stride, padding and groups), no bias.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "util.h"

void conv2d_init(Conv2d* m, Engine* e, const char* name, int c_in, int c_out, int k, int stride,
                 int pad, int groups) {
    NN_ASSERT(c_in > 0 && c_out > 0 && k > 0 && stride > 0 && pad >= 0 && groups > 0,
              "conv '%s': bad configuration", name);
    NN_ASSERT(c_in % groups == 0 && c_out % groups == 0,
              "conv '%s': channels %d -> %d not divisible by groups %d", name, c_in, c_out, groups);
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->c_in = c_in, m->c_out = c_out, m->k = k, m->stride = stride, m->pad = pad, m->groups = groups;
    char pname[ENGINE_NAME_LEN];
    snprintf(pname, sizeof(pname), "%s.weight", name);
    int dims[4] = {c_out, c_in / groups, k, k};
    m->weight = engine_param(e, pname, 4, dims, INIT_UNIFORM, 1.0f / sqrtf((float)(c_in / groups * k * k)));
}

ConvShape conv2d_shape(const char* name, const Tensor* x, int c_in, int c_out, int k, int stride,
                            int pad, int groups) {
    if (x->c != c_in)
        nn_fatal("layer '%s' expects %d input channels, got a (%d, %d, %d, %d) tensor", name, c_in,
                 x->n, x->c, x->h, x->w);
    ConvShape s = {.n = x->n, .c_in = c_in, .h = x->h, .w = x->w, .c_out = c_out, .k = k,
                   .stride = stride, .pad = pad, .groups = groups, .x_bf16 = x->bf16};
    s.h_out = conv_out_size(x->h, k, stride, pad);
    s.w_out = conv_out_size(x->w, k, stride, pad);
    if (s.h_out <= 0 || s.w_out <= 0)
        nn_fatal("layer '%s': a %dx%d input is too small for a %dx%d kernel with padding %d", name,
                 x->h, x->w, k, k, pad);
    return s;
}

static void conv2d_backward(Engine* e, const TapeEntry* t) {
    const Backend* be = e->be;
    Tensor *x = t->in[0], *w = t->in[1], *y = t->out;
    ConvShape s = t->a.conv;
    s.dy_bf16 = y->grad_bf16; // (set after the forward, by the batch norm that read y)
    be->conv2d_backward_filter(w->grad, y->grad, x->data, &s, 1);
    if (x->grad) be->conv2d_backward_data(x->grad, y->grad, w->data, &s, tensor_grad_accumulate(x));
}

// Multiply-adds of the convolution at shape s: every output sums (c_in / groups) * k * k products.
double conv_macs(const ConvShape* s) {
    return (double)s->n * s->c_out * s->h_out * s->w_out * (s->c_in / s->groups) * s->k * s->k;
}

static void conv2d_cost(const TapeEntry* t, OpCost* c) {
    c->macs_fwd = conv_macs(&t->a.conv);
    c->macs_bwd = (t->in[0]->grad ? 2.0 : 1.0) * c->macs_fwd; // filter gradient, and data gradient if needed
}

static void conv2d_label(const TapeEntry* t, char* buf, size_t len) {
    const ConvShape* s = &t->a.conv;
    if (s->stride > 1) snprintf(buf, len, "conv %dx%d s%d", s->k, s->k, s->stride);
    else snprintf(buf, len, "conv %dx%d", s->k, s->k);
}

static const OpDef CONV2D_OP = {.kind = "conv2d", .backward = conv2d_backward, .cost = conv2d_cost, .label = conv2d_label,
                                 .bf16_products = 1};

Tensor* conv2d(Engine* e, const Conv2d* m, Tensor* x) {
    ConvShape s = conv2d_shape(m->name, x, m->c_in, m->c_out, m->k, m->stride, m->pad, m->groups);
    Tensor* y = engine_activation(e, s.n, s.c_out, s.h_out, s.w_out);
    TapeEntry* t = engine_record(e, &CONV2D_OP, m->name, y);
    if (t) {
        t->in[0] = x, t->in[1] = m->weight;
        t->a.conv = s;
    }
    if (!engine_skip(e)) e->be->conv2d_forward(y->data, x->data, m->weight->data, &s);
    return y;
}
