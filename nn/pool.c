// Average and max pooling over square windows (PyTorch's AvgPool2d / MaxPool2d, no dilation,
// floor mode; average pooling divides by k*k, PyTorch's count_include_pad default).
#include <stdio.h>

#include "ops.h"
#include "util.h"

static PoolShape pool_shape(const char* name, const Tensor* x, int k, int stride, int pad) {
    NN_ASSERT(k > 0 && stride > 0 && pad >= 0 && pad <= k / 2,
              "pool '%s': kernel %d, stride %d, padding %d", name, k, stride, pad);
    PoolShape p = {.n = x->n, .c = x->c, .h = x->h, .w = x->w, .k = k, .stride = stride, .pad = pad};
    p.h_out = conv_out_size(x->h, k, stride, pad);
    p.w_out = conv_out_size(x->w, k, stride, pad);
    if (p.h_out <= 0 || p.w_out <= 0)
        nn_fatal("layer '%s': a %dx%d input is too small for a %dx%d pooling window", name, x->h, x->w,
                 k, k);
    return p;
}

static void avgpool_backward(Engine* e, const TapeEntry* t) {
    Tensor *x = t->in[0], *y = t->out;
    if (x->grad) e->be->avgpool_backward(x->grad, y->grad, &t->a.pool, tensor_grad_accumulate(x));
}

static void pool_label(const char* what, const PoolShape* p, char* buf, size_t len) {
    if (p->stride != p->k) snprintf(buf, len, "%s %dx%d s%d", what, p->k, p->k, p->stride);
    else snprintf(buf, len, "%s %dx%d", what, p->k, p->k);
}
static void avgpool_label(const TapeEntry* t, char* buf, size_t len) { pool_label("avgpool", &t->a.pool, buf, len); }
static const OpDef AVGPOOL_OP = {.kind = "avgpool", .backward = avgpool_backward, .label = avgpool_label};

Tensor* avgpool2d(Engine* e, Tensor* x, int k, int stride, int pad, const char* name) {
    engine_require_fp32(x, name);
    PoolShape p = pool_shape(name, x, k, stride, pad);
    Tensor* y = engine_activation(e, p.n, p.c, p.h_out, p.w_out);
    TapeEntry* t = engine_record(e, &AVGPOOL_OP, name, y);
    if (t) t->in[0] = x, t->a.pool = p;
    if (!engine_skip(e)) e->be->avgpool_forward(y->data, x->data, &p);
    return y;
}

static void maxpool_backward(Engine* e, const TapeEntry* t) {
    Tensor *x = t->in[0], *y = t->out;
    if (x->grad)
        e->be->maxpool_backward(x->grad, y->grad, t->a.maxpool.argmax, &t->a.maxpool.pool,
                                tensor_grad_accumulate(x));
}

static void maxpool_label(const TapeEntry* t, char* buf, size_t len) {
    pool_label("maxpool", &t->a.maxpool.pool, buf, len);
}
static const OpDef MAXPOOL_OP = {.kind = "maxpool", .backward = maxpool_backward, .label = maxpool_label};

Tensor* maxpool2d(Engine* e, Tensor* x, int k, int stride, int pad, const char* name) {
    engine_require_fp32(x, name);
    PoolShape p = pool_shape(name, x, k, stride, pad);
    Tensor* y = engine_activation(e, p.n, p.c, p.h_out, p.w_out);
    int* argmax = engine_scratch_int(e, tensor_numel(y)); // (n, c, h_out, w_out) winner's index
    TapeEntry* t = engine_record(e, &MAXPOOL_OP, name, y);
    if (t) t->in[0] = x, t->a.maxpool.pool = p, t->a.maxpool.argmax = argmax;
    if (!engine_skip(e)) e->be->maxpool_forward(y->data, argmax, x->data, &p);
    return y;
}
