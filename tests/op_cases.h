// The op test table, shared by the finite-difference gradient check (CPU) and the CUDA-vs-CPU
// comparison: every op with several shapes (stride 2, padding, batch > 1, odd sizes, groups).
// A case's input is registered as an engine parameter named "x", so that its gradient lands in the
// gradient arena next to the layer's own parameter gradients, and backward fills all of them at once.
#ifndef TESTS_OP_CASES_H
#define TESTS_OP_CASES_H

#include "../models/mobilenet.h"
#include "../nn/ops.h"

typedef enum {
    OP_CONV, OP_DEPTHWISE, OP_BATCHNORM, OP_RELU, OP_AVGPOOL, OP_MAXPOOL, OP_LINEAR,
    OP_CROSS_ENTROPY, OP_CHAIN, OP_MOBILENET, OP_ADD,
} OpKind;

// What an OP_ADD case adds (its `groups`): x + b (a second input "b"), x + x (one tensor, both
// gradients into it), and the residual t + conv2(t) with t = conv(x) (1x1 convs): t's gradient is
// written by the add, then accumulated by conv2's backward.
enum { ADD_TWO, ADD_SAME, ADD_RESIDUAL };

typedef struct OpCase {
    const char* name;
    OpKind op;
    int n, c, h, w;            // input shape (OP_LINEAR: flattened; OP_CROSS_ENTROPY: (n, classes))
    int c_out, k, stride, pad; // conv / pooling / linear (c_out = out features)
    int groups;                // conv: groups; depthwise: g; mobilenet: g; add: ADD_* variant
    int relu;                  // batchnorm: fused ReLU
    float width;               // mobilenet
    int kinks;                 // the op is not smooth everywhere (ReLU, max): see test_gradcheck.c
    float eps;                 // finite-difference step (0: the default 1e-2)
} OpCase;

extern const OpCase OP_CASES[];
extern const int NUM_OP_CASES;

// Everything one case instantiates on one engine.
typedef struct OpCaseState {
    const OpCase* c;
    Tensor* x;
    Tensor* b;                 // OP_ADD's second input
    Conv2d conv, conv2;
    DepthwiseConv2d dw;
    BatchNorm2d bn, bn2;
    Linear lin;
    MobileNet net;
    int labels[64];
} OpCaseState;

// Registers the case's input and parameters (before engine_alloc_params).
void op_case_setup(Engine* e, OpCaseState* s, const OpCase* c);
// Fills every parameter and buffer with random, non-zero values (the same for the same seed).
void op_case_randomize(Engine* e, OpCaseState* s, uint64_t seed);
// Issues the case's ops on the engine (between engine_begin and backward); returns the output.
Tensor* op_case_forward(Engine* e, OpCaseState* s);

#endif
