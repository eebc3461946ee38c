// A backend under test against the reference backend (kernels/ref), op by op (tests/op_compare.c):
// the shared op table, the diagonalwise depthwise sweep and the kernels the table does not reach.
// test_gradcheck runs it for the tuned CPU backend, test_cuda_ops for CUDA.
#ifndef TESTS_OP_COMPARE_H
#define TESTS_OP_COMPARE_H

#include "op_cases.h"

#define COMPARE_EXACT 1e-5 // FP32 on both sides: the bound for every tensor of a single op

// Relative-error bounds of one comparison: activations (and an op's output), logits, loss,
// parameter gradients, BN running statistics, weights after SGD, logits of the evaluation forward.
typedef struct Bounds {
    double act, logits, loss, grad, stats, weights, eval;
} Bounds;
extern const Bounds COMPARE_SINGLE; // one op (and the small chain): COMPARE_EXACT everywhere
extern const Bounds COMPARE_NET;    // a whole MobileNet in FP32 (op_compare.c says why)
// Both backends in bf16 mixed precision (BackendOptions.bf16; op_compare.c derives each):
extern const Bounds COMPARE_BF16_CHAIN; // several ops, where rounding to bf16 follows a computed value
extern const Bounds COMPARE_BF16_NET;   // a whole MobileNet
extern int compare_bf16; // 1: the backends were opened in bf16 mode, and compare_case takes these bounds:
// by default COMPARE_SINGLE, COMPARE_BF16_CHAIN and COMPARE_BF16_NET; a test whose backend rounds more
// (CUDA: cuDNN rounds each convolution's result to bf16 too) points them at its own.
extern const Bounds* compare_bf16_single;
extern const Bounds* compare_bf16_chain;
extern const Bounds* compare_bf16_net;

// The two backends every function below compares: ref must be the reference backend. Call first.
void compare_backends(const Backend* ref, const Backend* tested);
// Whether both backends store activations in bf16 (Backend.bf16_activations): engines compared with
// each other set fp32_activations unless they do, so that their arenas are laid out alike.
int compare_bf16_activations(void);
extern int compare_quiet_ok;                        // 1: print only the rows that fail
extern void (*compare_on_failure)(const char* where); // called after a failing row, once per case

// ||test - ref|| / ||ref|| of n host floats, printed as a row and checked against bound; returns it.
double compare(const char* where, const char* tensor, const float* test_v, const float* ref_v, size_t n,
               double bound);
// The same for backend arrays p[0] (the reference engine's) and p[1] (the tested one's) of n floats,
// for two tensors, and for every trainable parameter's gradient (grad = 1) or every parameter's and
// buffer's data (grad = 0; buffers only when buffers_only). e[0] runs on the reference backend.
double compare_arrays(Engine* const* e, const float* const* p, size_t n, const char* where, const char* tensor,
                      double bound);
double compare_data(Engine* const* e, Tensor* const* t, const char* where, const char* tensor, double bound);
double compare_params(Engine* const* e, const char* where, int grad, int buffers_only, double bound);
void compare_header(const char* title); // a table's title and column names

float* read_floats(const Backend* b, const float* p, size_t n);     // a host copy (free it)
void* to_device(const Backend* b, const void* host, size_t bytes); // a new backend copy (b->free it)
// NaN everywhere in the activation arena (0xFF bytes: a NaN as float, -1 as int).
void poison_activations(Engine* e);
// Elements of ReLU outputs (standalone or fused into batch norm) that are positive on one backend
// and not on the other, over the whole tape of the step just run forward.
long relu_disagreements(Engine* const* e);
// Copies the reference engine's forward state (activations and everything saved for backward: BN
// statistics, argmax, probabilities, DR weights, labels; all in the activation arena) into the
// tested engine's arena. Both engines planned the same model, so the arenas have the same layout.
// Used when the backends' ReLU masks differ: both backward passes then start from the same state.
void align_forward(Engine* const* e);

// One case of the op table: forward (training), running statistics, backward, a second backward
// (which makes every activation-gradient write an accumulate), and the evaluation-mode forward.
void compare_case(const OpCase* c);
// Diagonalwise depthwise layers: C in {3, 32, 45, 64}, g in {1, 3, 32, C}, stride 1 and 2, odd size.
void compare_depthwise_sweep(void);
// The kernels outside the table, each compared exactly or at COMPARE_EXACT.
void test_maxpool_special(void); // ties, -inf and NaN decide the winner
void test_relu_overwrite(void);  // overwrite, then accumulate onto a NaN-filled dx
void test_metrics(void);         // tied rows (the first maximum wins), twice to accumulate
void test_sgd_variants(void);    // no momentum, momentum, Nesterov; three steps each

#endif
