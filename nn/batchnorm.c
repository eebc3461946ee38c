// 2-D batch normalization with PyTorch's semantics, optionally fused with the ReLU that follows it
// everywhere in MobileNet (the fused op stores one tensor instead of two and reads it once), its
// output stored in bf16 where only convolutions read it (BN_FEEDS_CONV, nn/ops.h says why).
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "util.h"

void batchnorm2d_init(BatchNorm2d* m, Engine* e, const char* name, int c) {
    NN_ASSERT(c > 0, "batchnorm '%s': %d channels", name, c);
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->c = c;
    m->momentum = 0.1f;
    m->eps = 1e-5f;
    char pname[ENGINE_NAME_LEN];
    int dims[1] = {c};
    snprintf(pname, sizeof(pname), "%s.weight", name);
    m->weight = engine_param(e, pname, 1, dims, INIT_ONES, 0.0f);
    snprintf(pname, sizeof(pname), "%s.bias", name);
    m->bias = engine_param(e, pname, 1, dims, INIT_ZEROS, 0.0f);
    snprintf(pname, sizeof(pname), "%s.running_mean", name);
    m->running_mean = engine_buffer(e, pname, 1, dims, INIT_ZEROS);
    snprintf(pname, sizeof(pname), "%s.running_var", name);
    m->running_var = engine_buffer(e, pname, 1, dims, INIT_ONES);
}

static void batchnorm_backward(Engine* e, const TapeEntry* t) {
    Tensor *x = t->in[0], *gamma = t->in[1], *beta = t->in[2], *y = t->out;
    int acc = x->grad ? tensor_grad_accumulate(x) : 0;
    // beta lets the backend recompute the ReLU mask from x, unless y was edited since (a test adopting
    // another framework's decisions on ties overwrites y: then the mask must come from y).
    e->be->batchnorm_backward(x->grad, gamma->grad, beta->grad, y->grad, x->data, y->data, t->a.bn.mean,
                              t->a.bn.invstd, gamma->data, y->edited ? NULL : beta->data, x->n, x->c, x->h * x->w,
                              t->a.bn.relu, y->bf16, x->grad_bf16, acc);
}

static void bn_label(const TapeEntry* t, char* buf, size_t len) { snprintf(buf, len, t->a.bn.relu ? "bn+relu" : "bn"); }
static const OpDef BATCHNORM_OP = {.kind = "batchnorm", .backward = batchnorm_backward, .label = bn_label};
static const OpDef BATCHNORM_RELU_OP = {.kind = "batchnorm+relu", .backward = batchnorm_backward, .label = bn_label};

Tensor* batchnorm2d(Engine* e, const BatchNorm2d* m, Tensor* x, int flags) {
    if (x->c != m->c)
        nn_fatal("layer '%s' expects %d channels, got a (%d, %d, %d, %d) tensor", m->name, m->c, x->n,
                 x->c, x->h, x->w);
    engine_require_fp32(x, m->name);
    int relu = (flags & BN_RELU) != 0;
    // x's gradient, written only by this op's backward and read only by the convolution that made x,
    // in bf16: the first half of its float buffer holds the bf16 values.
    if (flags & BN_AFTER_CONV && e->bf16_activations && x->grad && !x->base) x->grad_bf16 = 1;
    Tensor* y = flags & BN_FEEDS_CONV ? engine_activation_rounded(e, x->n, x->c, x->h, x->w)
                                      : engine_activation(e, x->n, x->c, x->h, x->w);
    int hw = x->h * x->w;
    if (!e->training) {
        if (!engine_skip(e))
            e->be->batchnorm_forward_eval(y->data, x->data, m->weight->data, m->bias->data,
                                          m->running_mean->data, m->running_var->data, x->n, x->c, hw,
                                          m->eps, relu, y->bf16);
        return y;
    }
    if (x->n * hw < 2)
        nn_fatal("layer '%s': batch norm in training needs more than one value per channel, got a "
                 "(%d, %d, %d, %d) tensor (use a larger batch)", m->name, x->n, x->c, x->h, x->w);
    float* mean = engine_scratch(e, (size_t)x->c);   // (c) batch mean
    float* invstd = engine_scratch(e, (size_t)x->c); // (c) 1 / sqrt(biased batch var + eps)
    TapeEntry* t = engine_record(e, relu ? &BATCHNORM_RELU_OP : &BATCHNORM_OP, m->name, y);
    t->in[0] = x, t->in[1] = m->weight, t->in[2] = m->bias;
    t->a.bn.mean = mean, t->a.bn.invstd = invstd, t->a.bn.relu = relu;
    t->a.bn.running_mean = m->running_mean->data, t->a.bn.running_var = m->running_var->data;
    if (!engine_skip(e))
        e->be->batchnorm_forward_train(y->data, mean, invstd, m->running_mean->data,
                                       m->running_var->data, x->data, m->weight->data, m->bias->data,
                                       x->n, x->c, hw, m->momentum, m->eps, relu, y->bf16);
    return y;
}
