#include "op_cases.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/util.h"
#include "test_util.h"

// name, op, n, c, h, w, c_out, k, stride, pad, groups, relu, width, kinks, eps
const OpCase OP_CASES[] = {
    {"conv 3x3 s1 p1", OP_CONV, 2, 3, 7, 7, 4, 3, 1, 1, 1, 0, 0, 0, 0},
    {"conv 3x3 s2 p1 odd", OP_CONV, 3, 4, 9, 7, 5, 3, 2, 1, 1, 0, 0, 0, 0},
    {"conv 3x3 s2 groups2", OP_CONV, 2, 6, 9, 9, 4, 3, 2, 1, 2, 0, 0, 0, 0},
    {"conv 1x1", OP_CONV, 2, 5, 5, 5, 7, 1, 1, 0, 1, 0, 0, 0, 0},
    {"conv 1x1 s2", OP_CONV, 2, 5, 7, 7, 3, 1, 2, 0, 1, 0, 0, 0, 0},
    {"conv 5x5 s2 p2", OP_CONV, 2, 3, 11, 10, 4, 5, 2, 2, 1, 0, 0, 0, 0},
    {"depthwise g3 s1", OP_DEPTHWISE, 2, 6, 7, 7, 6, 3, 1, 1, 3, 0, 0, 0, 0},
    {"depthwise g1 s2", OP_DEPTHWISE, 3, 5, 9, 9, 5, 3, 2, 1, 1, 0, 0, 0, 0},
    {"depthwise g32>c s2 odd", OP_DEPTHWISE, 2, 5, 9, 8, 5, 3, 2, 1, 32, 0, 0, 0, 0},
    {"depthwise g4 c6 (g->3)", OP_DEPTHWISE, 2, 6, 6, 6, 6, 3, 1, 1, 4, 0, 0, 0, 0},
    {"batchnorm", OP_BATCHNORM, 3, 4, 5, 5, 4, 0, 0, 0, 0, 0, 0, 0, 0},
    {"batchnorm+relu", OP_BATCHNORM, 3, 4, 5, 5, 4, 0, 0, 0, 0, 1, 0, 1, 1e-3f},
    {"batchnorm 1x1 maps", OP_BATCHNORM, 8, 3, 1, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0},
    // 784 values per channel and 49 per map: CUDA's batch-norm threads each walk several values
    // across image boundaries (a map that does not divide the block), a path the other cases miss.
    {"batchnorm 7x7 n=16", OP_BATCHNORM, 16, 3, 7, 7, 3, 0, 0, 0, 0, 0, 0, 0, 0},
    {"relu", OP_RELU, 2, 3, 5, 5, 3, 0, 0, 0, 0, 0, 0, 1, 0},
    {"avgpool 2x2 s2", OP_AVGPOOL, 2, 3, 6, 6, 3, 2, 2, 0, 0, 0, 0, 0, 0},
    {"avgpool 3x3 s2 p1 odd", OP_AVGPOOL, 2, 3, 7, 7, 3, 3, 2, 1, 0, 0, 0, 0, 0},
    {"maxpool 2x2 s2", OP_MAXPOOL, 2, 3, 6, 6, 3, 2, 2, 0, 0, 0, 0, 1, 0},
    {"maxpool 3x3 s2 p1 odd", OP_MAXPOOL, 2, 3, 7, 7, 3, 3, 2, 1, 0, 0, 0, 1, 0},
    {"linear (flatten)", OP_LINEAR, 4, 3, 2, 2, 5, 0, 0, 0, 0, 0, 0, 0, 0},
    {"cross_entropy", OP_CROSS_ENTROPY, 5, 7, 1, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0},
    {"chain conv-bn-dw-bn-pool-linear-ce", OP_CHAIN, 3, 3, 8, 8, 6, 3, 1, 1, 2, 1, 0, 1, 1e-3f},
    {"add x + b", OP_ADD, 2, 3, 5, 4, 3, 0, 0, 0, ADD_TWO, 0, 0, 0, 0},
    {"add x + x", OP_ADD, 3, 2, 3, 3, 2, 0, 0, 0, ADD_SAME, 0, 0, 0, 0},
    {"add residual t + conv(t)", OP_ADD, 2, 4, 5, 5, 4, 1, 1, 0, ADD_RESIDUAL, 0, 0, 0, 0},
    {"mobilenet width 0.125", OP_MOBILENET, 2, 3, 32, 32, 10, 0, 0, 0, 32, 1, 0.125f, 1, 1e-3f},
};
const int NUM_OP_CASES = (int)(sizeof(OP_CASES) / sizeof(OP_CASES[0]));

void op_case_setup(Engine* e, OpCaseState* s, const OpCase* c) {
    memset(s, 0, sizeof(*s));
    s->c = c;
    int dims[4] = {c->n, c->c, c->h, c->w};
    if (c->op != OP_MOBILENET) s->x = engine_param(e, "x", 4, dims, INIT_ZEROS, 0.0f);
    switch (c->op) {
    case OP_CONV: conv2d_init(&s->conv, e, "conv", c->c, c->c_out, c->k, c->stride, c->pad, c->groups); break;
    case OP_DEPTHWISE: depthwise_init(&s->dw, e, "dw", c->c, c->k, c->stride, c->pad, c->groups); break;
    case OP_BATCHNORM: batchnorm2d_init(&s->bn, e, "bn", c->c); break;
    case OP_LINEAR: linear_init(&s->lin, e, "linear", c->c * c->h * c->w, c->c_out); break;
    case OP_CHAIN:
        conv2d_init(&s->conv, e, "conv", c->c, c->c_out, c->k, c->stride, c->pad, 1);
        batchnorm2d_init(&s->bn, e, "bn", c->c_out);
        depthwise_init(&s->dw, e, "dw", c->c_out, 3, 2, 1, c->groups);
        batchnorm2d_init(&s->bn2, e, "bn2", c->c_out);
        linear_init(&s->lin, e, "linear", c->c_out * 2 * 2, 4);
        break;
    case OP_ADD:
        if (c->groups == ADD_TWO) s->b = engine_param(e, "b", 4, dims, INIT_ZEROS, 0.0f);
        if (c->groups == ADD_RESIDUAL) {
            conv2d_init(&s->conv, e, "conv", c->c, c->c, 1, 1, 0, 1);
            conv2d_init(&s->conv2, e, "conv2", c->c, c->c, 1, 1, 0, 1);
        }
        break;
    case OP_MOBILENET: {
        mobilenet_init(&s->net, e, c->width, c->groups, c->c_out);
        s->x = engine_param(e, "x", 4, dims, INIT_ZEROS, 0.0f);
        break;
    }
    default: break;
    }
    Rng rng = rng_derive(99, 1, 2);
    int classes = c->op == OP_CROSS_ENTROPY ? c->c : c->op == OP_CHAIN ? 4 : c->c_out;
    NN_ASSERT(c->n <= 64, "op case batch too large");
    for (int i = 0; i < c->n; i++) s->labels[i] = (int)rng_below(&rng, (uint32_t)classes);
}

void op_case_randomize(Engine* e, OpCaseState* s, uint64_t seed) {
    for (int i = 0; i < e->num_params; i++) {
        Param* p = &e->params[i];
        Rng rng = rng_derive(seed, 7, (uint64_t)i);
        float* host = NN_MALLOC(p->numel * sizeof(float));
        int is_var = strstr(p->name, "running_var") != NULL;
        int is_input = strcmp(p->name, "x") == 0;
        for (size_t j = 0; j < p->numel; j++) {
            float u = rng_uniform(&rng);
            // A variance: positive and log-uniform over [1e-4, 1.5], so that eps (1e-5) matters in
            // evaluation mode for the small ones (with all of them near 1 it is below the bounds).
            if (is_var) host[j] = 1e-4f * powf(1.5e4f, u);
            else if (is_input && s->c->kinks) {
                // Keep inputs of non-smooth ops away from their kinks (0 for ReLU, ties for max).
                float mag = 0.1f + 0.9f * u;
                host[j] = (rng_next(&rng) & 1) ? mag : -mag;
            } else host[j] = 2.0f * u - 1.0f;                     // U(-1, 1)
            if (host[j] == 0.0f) host[j] = 0.25f;
        }
        engine_write(e, &p->t, host);
        free(host);
    }
}

Tensor* op_case_forward(Engine* e, OpCaseState* s) {
    const OpCase* c = s->c;
    Tensor* x = s->x;
    switch (c->op) {
    case OP_CONV: return conv2d(e, &s->conv, x);
    case OP_DEPTHWISE: return depthwise_conv2d(e, &s->dw, x);
    case OP_BATCHNORM: return batchnorm2d(e, &s->bn, x, c->relu);
    case OP_RELU: return relu(e, x, "relu");
    case OP_AVGPOOL: return avgpool2d(e, x, c->k, c->stride, c->pad, "avgpool");
    case OP_MAXPOOL: return maxpool2d(e, x, c->k, c->stride, c->pad, "maxpool");
    case OP_LINEAR: return linear(e, &s->lin, flatten(e, x));
    case OP_CROSS_ENTROPY: return cross_entropy(e, x, engine_labels(e, c->n, s->labels), "loss");
    case OP_CHAIN: {
        Tensor* y = batchnorm2d(e, &s->bn, conv2d(e, &s->conv, x), 1);
        y = batchnorm2d(e, &s->bn2, depthwise_conv2d(e, &s->dw, y), 0);
        y = avgpool2d(e, y, 2, 2, 0, "avgpool"); // 8x8 -> dw s2 -> 4x4 -> 2x2
        y = linear(e, &s->lin, flatten(e, y));
        return cross_entropy(e, y, engine_labels(e, c->n, s->labels), "loss");
    }
    case OP_ADD:
        if (c->groups == ADD_TWO) return add(e, x, s->b, "add");
        if (c->groups == ADD_SAME) return add(e, x, x, "add");
        x = conv2d(e, &s->conv, x);
        return add(e, x, conv2d(e, &s->conv2, x), "add");
    case OP_MOBILENET: {
        Tensor* logits = mobilenet_forward(e, &s->net, x);
        return cross_entropy(e, logits, engine_labels(e, c->n, s->labels), "loss");
    }
    }
    return NULL;
}
