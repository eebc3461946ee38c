// The engine: parameter arenas, the planned activation arena and the autograd tape.
//
// Memory. Trainable parameters live in one flat arena, their gradients in a second and the SGD
// momentum in a third, all the same length and in the same order: zero-grad is one memset and the
// optimizer is one pass. Non-trainable buffers (batch-norm running statistics) live in a fourth.
// Every activation, every gradient of an activation and every op's saved scratch come from one
// activation arena, handed out by a bump pointer that is reset at the start of each step. Because a
// step issues the same ops in the same order, every tensor gets the same address every step, and the
// arena is sized once by a planning pass (engine_plan_begin/end) over the largest step: a training
// step allocates nothing in steady state.
//
// Autograd. Each op's forward appends a TapeEntry holding what its backward needs; engine_backward
// replays the tape in reverse. A backward writes its input gradients directly the first time and
// accumulates after that (Tensor.grad_written), so activation gradients need no zero-fill.
#ifndef NN_ENGINE_H
#define NN_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "tensor.h"

#define ENGINE_MAX_PARAMS 512
#define ENGINE_NAME_LEN 64

// How engine_init_params fills a parameter: PyTorch's defaults (nn.Conv2d and nn.Linear use
// kaiming_uniform_ with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases alike;
// nn.BatchNorm2d starts at weight 1, bias 0, running mean 0, running variance 1).
typedef enum ParamInit {
    INIT_ZEROS,   // BN beta, running_mean
    INIT_ONES,    // BN gamma, running_var
    INIT_UNIFORM, // U(-bound, bound): conv and linear weights and biases, bound = 1/sqrt(fan_in)
} ParamInit;

typedef struct Param {
    char name[ENGINE_NAME_LEN]; // PyTorch state_dict name, e.g. "layers.3.bn2.weight"
    int ndim;                   // as PyTorch would report it (conv weight 4, linear weight 2, bias 1)
    int dims[4];
    size_t numel;
    size_t offset;              // in floats, into the params (or buffers) arena
    int is_buffer;              // 1: non-trainable (running statistics), lives in the buffers arena
    ParamInit init;
    float bound;                // INIT_UNIFORM only
    Tensor t;                   // data (and grad, for parameters) point into the arenas
} Param;

typedef struct Engine Engine;
typedef struct TapeEntry TapeEntry;
typedef void (*BackwardFn)(Engine* e, const TapeEntry* t);

// What an op costs, computed from the shapes its tape entry holds (nn/profile.c: op_cost).
typedef struct OpCost {
    double macs_fwd, macs_bwd;   // multiply-adds executed (DR: g times the depthwise ones)
    double macs_true;            // depthwise layers: the depthwise multiply-adds themselves (forward)
    double bytes_fwd, bytes_bwd; // least bytes each pass must move: every input read once, every output written once
    int g;                       // depthwise layers: channels per block-diagonal group
} OpCost;

// An op kind, one static OpDef per kind next to its forward (nn/conv.c, ...): everything the
// engine, the profiler and --print-model know about the op beyond its tape entry.
typedef struct OpDef {
    const char* kind;    // "conv2d", "depthwise", "batchnorm", ...: the profiler's kind column
    BackwardFn backward; // replays the entry backwards (engine_backward)
    // Adds the op's arithmetic to c, and corrects its bytes where they are not op_cost's default (x,
    // parameters, y forward; dy, x, parameters, dx, dw backward). NULL: no arithmetic worth counting
    // and the default bytes.
    void (*cost)(const TapeEntry* t, OpCost* c);
    // The op as --print-model names it, from its shapes ("conv 3x3", "dw 3x3 s2"); NULL: the kind.
    void (*label)(const TapeEntry* t, char* buf, size_t len);
    // 1: under bf16 mixed precision (BackendOptions.bf16) its products take bf16-rounded operands with
    // FP32 sums (convolutions, depthwise by DR, linear); 0: it computes in FP32 whatever the precision.
    int bf16_products;
} OpDef;

// What one op's forward saved for its backward. The union holds the op-specific arguments.
struct TapeEntry {
    const OpDef* op;
    const char* name;   // layer name ("layers.3.conv1"): errors and the profiler use it
    Tensor* out;
    Tensor* in[3];      // inputs in op order (x, weight, bias/beta; add: a, b); parameters included
    union {
        ConvShape conv;
        struct { ConvShape conv; int g; float* wbig; float* dwbig; } dw; // depthwise (nn/depthwise.c)
        struct { float* mean; float* invstd; float* running_mean; float* running_var; int relu; } bn;
        PoolShape pool;
        struct { PoolShape pool; int* argmax; } maxpool;
        struct { int in_features, out_features; } linear;
        struct { const int* labels; float* probs; int classes; } ce;
    } a;
};

struct Engine {
    const Backend* be;

    // Parameters, registered while the model is built, then allocated by engine_alloc_params.
    Param params[ENGINE_MAX_PARAMS];
    int num_params;
    size_t num_param_floats;  // total length of the params/grads/momentum arenas
    size_t num_buffer_floats; // total length of the buffers arena
    float* param_data;        // (num_param_floats) every trainable parameter, flat
    float* param_grad;        // (num_param_floats) their gradients, same order
    float* param_momentum;    // (num_param_floats) SGD momentum buffers, same order
    float* buffer_data;       // (num_buffer_floats) running statistics

    // Activations: a bump allocator over one backend block, sized by the planning pass.
    char* act_base;
    size_t act_used, act_capacity, act_high_water;
    Tensor* tensors;          // pool of Tensor structs handed out per step
    int num_tensors, tensor_capacity;
    TapeEntry* tape;
    int tape_len, tape_capacity;
    int planning;             // 1 inside engine_plan_begin/end: ops measure, compute nothing
    Tensor** plan_tensors;    // planning only: host structs for the tensors being measured
    int plan_tensor_slots;
    TapeEntry plan_tape_stash;
    TapeEntry* described;     // engine_describe_begin/end: every entry of the pass, kept
    int num_described, described_slots;
    int planned;
    int training;             // 1: batch statistics, tape recorded, activation gradients allocated
    int bf16_activations;     // this step may store activations in bf16 (engine_begin: the backend's
                              // bf16_activations, unless fp32_activations)
    int fp32_activations;     // 1: store every activation in FP32 even where the backend could take
                              // bf16 (the A/B comparisons of tests and benchmarks; set before planning)
    size_t alloc_calls;       // backend allocations made by the engine (tests check steady state)
    struct Profiler* profiler; // when set (and active), every op boundary is timestamped (nn/profile.h)
};

Engine* engine_create(const Backend* be);
void engine_destroy(Engine* e);

// Parameter registration (before engine_alloc_params). ndim is 1, 2 or 4; dims as PyTorch.
Tensor* engine_param(Engine* e, const char* name, int ndim, const int* dims, ParamInit init, float bound);
Tensor* engine_buffer(Engine* e, const char* name, int ndim, const int* dims, ParamInit init);
void engine_alloc_params(Engine* e); // allocates the arenas, all zero
// Fills every parameter and buffer by its ParamInit; parameter i draws from stream (seed, i).
void engine_init_params(Engine* e, uint64_t seed);
Param* engine_find_param(Engine* e, const char* name); // parameters and buffers; NULL if absent

// Planning: ops issued between these two calls only measure the memory they will need. Issue the
// largest step the run will take (training mode, full batch), then engine_plan_end allocates it.
void engine_plan_begin(Engine* e);
void engine_plan_end(Engine* e);

// Describing: ops issued between these calls compute and allocate nothing, as in planning, but
// every tape entry is kept, with its shapes, for engine_described to return (--print-model reads a
// model's ops and their costs this way). No backend and no parameter arenas are needed: an engine
// created with a zeroed Backend describes. engine_describe_end frees what the pass made.
void engine_describe_begin(Engine* e);
const TapeEntry* engine_described(const Engine* e, int* count);
void engine_describe_end(Engine* e);

// Starts a step: resets the activation arena and the tape. training = 0 for evaluation.
void engine_begin(Engine* e, int training);

// A tensor for the step's input (no gradient) and uploads from host memory into it.
Tensor* engine_input(Engine* e, int n, int c, int h, int w, const float* host);
// Labels (n) uploaded into the activation arena.
int* engine_labels(Engine* e, int n, const int* host);

// For ops: a new activation (with a gradient buffer when training), scratch floats/ints that live
// until the next engine_begin, and a tape entry (NULL when not training).
Tensor* engine_activation(Engine* e, int n, int c, int h, int w);
// The same, its data stored as bf16 when the step allows it (e->bf16_activations; else FP32): for an
// op whose output every reader rounds to bf16 anyway. The tensor's bf16 flag says which it got.
Tensor* engine_activation_rounded(Engine* e, int n, int c, int h, int w);
// For ops that read their input as floats: a fatal error naming the layer if x is stored in bf16
// (a model asked for bf16 storage of a tensor that such an op reads).
void engine_require_fp32(const Tensor* x, const char* layer);
Tensor* engine_view(Engine* e, Tensor* base, int n, int c, int h, int w);
float* engine_scratch(Engine* e, size_t count);
int* engine_scratch_int(Engine* e, size_t count);
TapeEntry* engine_record(Engine* e, const OpDef* op, const char* name, Tensor* out);
// Whether ops must skip computing (planning pass).
static inline int engine_skip(const Engine* e) { return e->planning; }

// Backward from a scalar loss (its gradient seeded with 1): replays the whole tape in reverse,
// accumulating into the parameter-gradient arena and filling every activation gradient.
void engine_backward(Engine* e, Tensor* loss);
// The same from any tensor whose gradient is seeded from host memory (tests use it: the gradient of
// sum(out * seed) with respect to everything upstream). host_seed NULL: the caller has already
// written out->grad in backend memory (a captured CUDA graph cannot upload).
void engine_backward_from(Engine* e, Tensor* out, const float* host_seed);
void engine_zero_grad(Engine* e);

// Host <-> backend helpers for whole parameters and tensors.
void engine_read(Engine* e, float* host, const Tensor* t);  // data (bf16 storage widened to floats)
void engine_read_grad(Engine* e, float* host, const Tensor* t); // (bf16 storage widened)
void engine_write(Engine* e, Tensor* t, const float* host); // data
float engine_read_scalar(Engine* e, const Tensor* t);

#endif
