// Layers and ops. A layer struct holds its parameters (registered in the engine's arenas under
// PyTorch's state_dict names) and its configuration; an op takes the engine and input tensors,
// computes its output through the backend and records on the tape what its backward needs.
// All numerical conventions (init, batch-norm statistics, loss) are PyTorch's.
#ifndef NN_OPS_H
#define NN_OPS_H

#include <stdio.h>

#include "engine.h"

#define LAYER_NAME_LEN 48

typedef struct Conv2d {
    char name[LAYER_NAME_LEN]; // prefix of the parameter names, e.g. "conv1"
    Tensor* weight;            // (c_out, c_in / groups, k, k)
    int c_in, c_out, k, stride, pad, groups;
} Conv2d;

// Depthwise convolution, computed by diagonalwise refactorization (nn/depthwise.c).
typedef struct DepthwiseConv2d {
    char name[LAYER_NAME_LEN];
    Tensor* weight;      // (c, 1, k, k): the depthwise filters themselves, as in PyTorch
    int c, k, stride, pad;
    int g_requested;     // channels per block-diagonal group asked for (--dw-group)
    int g;               // channels per group used: the largest divisor of c not above g_requested
} DepthwiseConv2d;

typedef struct BatchNorm2d {
    char name[LAYER_NAME_LEN];
    Tensor* weight;       // (c) gamma
    Tensor* bias;         // (c) beta
    Tensor* running_mean; // (c) buffer
    Tensor* running_var;  // (c) buffer
    int c;
    float momentum, eps;  // 0.1 and 1e-5, PyTorch's defaults
} BatchNorm2d;

typedef struct Linear {
    char name[LAYER_NAME_LEN];
    Tensor* weight; // (out, in)
    Tensor* bias;   // (out)
    int in, out;
} Linear;

// Layer set-up: registers the parameters (call before engine_alloc_params).
void conv2d_init(Conv2d* m, Engine* e, const char* name, int c_in, int c_out, int k, int stride,
                 int pad, int groups);
void depthwise_init(DepthwiseConv2d* m, Engine* e, const char* name, int c, int k, int stride,
                    int pad, int g);
void batchnorm2d_init(BatchNorm2d* m, Engine* e, const char* name, int c);
void linear_init(Linear* m, Engine* e, const char* name, int in, int out);

// The largest divisor of c that is <= g (g >= 1): the group size diagonalwise refactorization uses.
int depthwise_group_size(int c, int g);
// Changes the group size of a depthwise layer (e.g. after --dw-group auto measured the best one).
void depthwise_set_group(DepthwiseConv2d* m, int g);
// --dw-group auto: times forward + backward of the layer for g = 1, 2, 4, ... on its real input shape
// (n, c, h, w) through the backend, sets and returns the fastest g, and logs the timings to `log`
// (may be NULL). Must run before the engine's planning pass (g changes the scratch sizes).
int depthwise_autotune(const Backend* be, DepthwiseConv2d* m, int n, int h, int w, FILE* log);

// Ops. Each returns a new activation; shapes are checked and a mismatch is a fatal error naming the
// layer. Only the convolutions (conv2d, depthwise_conv2d) read an input stored in bf16; every other
// op refuses one (engine_require_fp32).
Tensor* conv2d(Engine* e, const Conv2d* m, Tensor* x);
Tensor* depthwise_conv2d(Engine* e, const DepthwiseConv2d* m, Tensor* x);
// batchnorm2d's flags: BN_RELU fuses a ReLU into its output (one pass instead of two); BN_FEEDS_CONV
// promises that only convolutions read the output. Those round it to bf16 as they read it in bf16
// mixed precision, so the output may as well be stored rounded: where the backend takes bf16
// activations it is (engine_activation_rounded), which halves the bytes that the batch norm writes,
// its backward's ReLU mask and the convolutions read, and changes no result (what the convolutions
// multiply is bit for bit the same; the mask y > 0 differs only for a y below 2^-126, which rounds to 0).
// BN_AFTER_CONV promises that x is a convolution's output that nothing but this batch norm reads.
// x's gradient is then read by that convolution's backward alone, which rounds it to bf16: the batch
// norm's backward may store it rounded (Tensor.grad_bf16), with the same gain and no change either
// (a second backward pass over the same forward, as tests run, then adds into the rounded values).
enum { BN_RELU = 1, BN_FEEDS_CONV = 2, BN_AFTER_CONV = 4 };
Tensor* batchnorm2d(Engine* e, const BatchNorm2d* m, Tensor* x, int flags);
Tensor* relu(Engine* e, Tensor* x, const char* name);
// Residual add y = a + b; a and b of one shape (a fatal error names the layer otherwise), may be one tensor.
Tensor* add(Engine* e, Tensor* a, Tensor* b, const char* name);
Tensor* avgpool2d(Engine* e, Tensor* x, int k, int stride, int pad, const char* name);
Tensor* maxpool2d(Engine* e, Tensor* x, int k, int stride, int pad, const char* name);
Tensor* flatten(Engine* e, Tensor* x); // (n, c, h, w) -> (n, c*h*w, 1, 1), a view
Tensor* linear(Engine* e, const Linear* m, Tensor* x); // x: (n, in, 1, 1) -> (n, out, 1, 1)
// Mean softmax cross-entropy over the batch; labels (n) in backend memory. Returns (1, 1, 1, 1).
Tensor* cross_entropy(Engine* e, Tensor* logits, const int* labels, const char* name);

// Multiply-adds of a (grouped) convolution of that shape, for the op costs.
double conv_macs(const ConvShape* s);
// The backend shape of y = conv(x) for a layer named `name`; a fatal error names the layer if x does
// not fit (wrong channel count, too small for the kernel).
ConvShape conv2d_shape(const char* name, const Tensor* x, int c_in, int c_out, int k, int stride,
                       int pad, int groups);

// Output size of a convolution or pooling window along one dimension; <= 0 means impossible.
static inline int conv_out_size(int in, int k, int stride, int pad) {
    return (in + 2 * pad - k) / stride + 1;
}

#endif
