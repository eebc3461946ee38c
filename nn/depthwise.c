// Depthwise convolution by diagonalwise refactorization (Qin et al., 2018, arXiv 1803.09926).
//
// A depthwise convolution gives every channel its own K x K filter: output channel c sees input
// channel c only. Libraries make standard (dense) convolutions fast and depthwise ones an afterthought,
// so we rewrite the depthwise layer as a standard convolution whose weight is block-diagonal.
// Split the C channels into groups of g. For each group, build the g x g matrix of K x K filters of a
// standard convolution with g inputs and g outputs, and put the depthwise filters on its diagonal:
//
//     depthwise weight w (C, 1, K, K)          block-diagonal weight W (C, g, K, K), here g = 4
//                                                     in: 0  1  2  3 | 4  5  6  7
//        w0  w1  w2  w3  w4  w5  w6  w7         out 0:  w0  .  .  . |
//                                               out 1:   . w1  .  . |
//                                               out 2:   .  . w2  . |      (group 0)
//                                               out 3:   .  .  . w3 |
//                                               out 4:              | w4  .  .  .
//                                               out 5:              |  . w5  .  .   (group 1)
//                                                ...                       ...      ( . = zero filter)
//
// A grouped convolution with C / g groups and weight W computes exactly the depthwise output: the
// zero filters add nothing. It costs g times the depthwise multiply-adds, but runs in the backend's
// tuned standard-convolution path (cuDNN on the GPU), one call per layer. Then:
//   forward:         y  = conv(x, W)                        scatter w into W, one grouped conv
//   backward-data:   dx = conv_backward_data(dy, W)         the same grouped conv's data gradient
//   backward-filter: dW = conv_backward_filter(dy, x)       its dense filter gradient (C, g, K, K);
//                    dw += diagonal of dW                   only the diagonal belongs to the layer
// The parameter, what SGD updates and checkpoints store, stays w (C, 1, K, K) as in PyTorch; W and dW
// are scratch rebuilt every step. g = 1 is a grouped convolution with C groups; g = C is the paper's
// "without grouping" case (one dense C x C convolution). If the requested g does not divide C, the
// largest divisor of C below it is used, so any C works with a single grouped call.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "util.h"

int depthwise_group_size(int c, int g) {
    if (g > c) g = c;
    if (g < 1) g = 1;
    while (c % g != 0) g--;
    return g;
}

void depthwise_set_group(DepthwiseConv2d* m, int g) {
    NN_ASSERT(g >= 1, "layer '%s': group size %d", m->name, g);
    m->g_requested = g;
    m->g = depthwise_group_size(m->c, g);
}

void depthwise_init(DepthwiseConv2d* m, Engine* e, const char* name, int c, int k, int stride, int pad,
                    int g) {
    NN_ASSERT(c > 0 && k > 0 && stride > 0 && pad >= 0, "depthwise '%s': bad configuration", name);
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->c = c, m->k = k, m->stride = stride, m->pad = pad;
    depthwise_set_group(m, g);
    char pname[ENGINE_NAME_LEN];
    snprintf(pname, sizeof(pname), "%s.weight", name);
    int dims[4] = {c, 1, k, k};
    // PyTorch's init for Conv2d(c, c, k, groups=c): fan_in = 1 * k * k.
    m->weight = engine_param(e, pname, 4, dims, INIT_UNIFORM, 1.0f / sqrtf((float)(k * k)));
}

static void depthwise_backward(Engine* e, const TapeEntry* t) {
    const Backend* be = e->be;
    Tensor *x = t->in[0], *w = t->in[1], *y = t->out;
    ConvShape shape = t->a.dw.conv;
    shape.dy_bf16 = y->grad_bf16; // (set after the forward, by the batch norm that read y)
    const ConvShape* s = &shape;
    int kk = s->k * s->k;
    // Dense filter gradient of the grouped convolution, then keep its diagonal.
    be->conv2d_backward_filter(t->a.dw.dwbig, y->grad, x->data, s, 0);
    be->dr_gather(w->grad, t->a.dw.dwbig, s->c_in, t->a.dw.g, kk);
    if (x->grad)
        be->conv2d_backward_data(x->grad, y->grad, t->a.dw.wbig, s, tensor_grad_accumulate(x));
}

// As executed: the grouped convolution of the block-diagonal weight, g times the depthwise
// arithmetic, which macs_true keeps.
static void depthwise_cost(const TapeEntry* t, OpCost* c) {
    const ConvShape* s = &t->a.dw.conv;
    c->macs_fwd = conv_macs(s);
    c->macs_bwd = (t->in[0]->grad ? 2.0 : 1.0) * c->macs_fwd; // filter gradient, and data gradient if needed
    c->g = t->a.dw.g;
    c->macs_true = c->macs_fwd / c->g;
    // DR also moves its block-diagonal weight and its gradient: (c, g, k, k) each.
    double big = 4.0 * (double)s->c_in * c->g * s->k * s->k;
    c->bytes_fwd += big;
    c->bytes_bwd += 2 * big;
}

static void depthwise_label(const TapeEntry* t, char* buf, size_t len) {
    const ConvShape* s = &t->a.dw.conv;
    if (s->stride > 1) snprintf(buf, len, "dw %dx%d s%d", s->k, s->k, s->stride);
    else snprintf(buf, len, "dw %dx%d", s->k, s->k);
}

static const OpDef DEPTHWISE_OP = {.kind = "depthwise", .backward = depthwise_backward, .cost = depthwise_cost,
                                   .label = depthwise_label, .bf16_products = 1};

Tensor* depthwise_conv2d(Engine* e, const DepthwiseConv2d* m, Tensor* x) {
    int g = m->g, kk = m->k * m->k;
    ConvShape s = conv2d_shape(m->name, x, m->c, m->c, m->k, m->stride, m->pad, m->c / g);
    Tensor* y = engine_activation(e, s.n, s.c_out, s.h_out, s.w_out);
    float* wbig = engine_scratch(e, (size_t)m->c * g * kk); // (C, g, K, K) block-diagonal weight
    TapeEntry* t = engine_record(e, &DEPTHWISE_OP, m->name, y);
    if (t) {
        t->in[0] = x, t->in[1] = m->weight;
        t->a.dw.conv = s;
        t->a.dw.g = g;
        t->a.dw.wbig = wbig;
        t->a.dw.dwbig = engine_scratch(e, (size_t)m->c * g * kk); // (C, g, K, K) its gradient
    }
    if (!engine_skip(e)) {
        e->be->dr_scatter(wbig, m->weight->data, m->c, g, kk);
        e->be->conv2d_forward(y->data, x->data, wbig, &s);
    }
    return y;
}
