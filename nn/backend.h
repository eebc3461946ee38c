// The backend table: every computation and every byte of tensor memory the engine touches goes
// through one of these function pointers. kernels/ref implements it as each op's defining formula in
// plain loops (the reference the others are tested against), kernels/cpu as tuned C with OpenMP,
// kernels/cuda with cuDNN, cuBLAS and our own kernels. nn/ includes no backend-specific header.
//
// Conventions, the same for every backend:
//  - pointers are backend memory (host memory for the CPU backend, device memory for CUDA), NCHW;
//  - outputs come first in the argument list;
//  - `accumulate` = 0: overwrite the output; 1: add to it. Parameter gradients (dw, db, dgamma,
//    dbeta) are always accumulated: the engine zeroes the gradient arena once per step;
//  - every function is stream-ordered: it may return before the work is done (CUDA); `download`
//    and `synchronize` wait for everything issued before them;
//  - a backend keeps global state (handles, caches, workspace): call it from one thread. init may be
//    called again to change options (tests switch TF32 so); caches made before stay valid.
#ifndef NN_BACKEND_H
#define NN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct ConvShape {
    int n, c_in, h, w;  // input  x: (n, c_in, h, w)
    int c_out, k;       // weight w: (c_out, c_in / groups, k, k), square kernel
    int stride, pad;    // the same in both spatial dimensions
    int groups;         // c_in and c_out are multiples of groups
    int h_out, w_out;   // output y: (n, c_out, h_out, w_out)
    int x_bf16;         // x is stored as bf16 values (uint16_t, nn/bf16.h), not floats: only in bf16
                        // mode and only where bf16_activations says the backend reads it so
                        // (forward and filter gradient; the data gradient never reads x)
    int dy_bf16;        // likewise the output's gradient dy (data and filter gradients)
} ConvShape;

typedef struct PoolShape {
    int n, c, h, w;     // input  x: (n, c, h, w)
    int k, stride, pad; // square window; average pooling divides by k*k (PyTorch's count_include_pad)
    int h_out, w_out;   // output y: (n, c, h_out, w_out)
} PoolShape;

// What a backend did that a steady-state training step must not do (tests read these).
typedef struct BackendCounters {
    size_t allocs;     // device allocations (cudaMalloc), the engine's and the backend's own
    size_t frees;      // device frees
    size_t syncs;      // host waits for the whole stream (download, synchronize, free, searches)
    size_t ring_waits; // uploads that found their staging slot busy and waited (back-pressure)
} BackendCounters;

typedef struct BackendOptions {
    int threads;            // CPU worker threads; 0 = all cores
    int tf32;               // CUDA: let cuDNN/cuBLAS use TF32 tensor cores for float32 (PyTorch's default for convs)
    size_t workspace_limit; // CUDA: most bytes of convolution workspace; 0 = default
    int deterministic;      // CUDA: only deterministic cuDNN algorithms, chosen by heuristics, not timing
    int bf16;               // bf16 mixed precision: every convolution and linear GEMM (forward,
                            // backward-data, backward-filter) rounds both operands to bf16 (nearest
                            // even, denormals to zero: nn/bf16.h) and sums in FP32 or better;
                            // everything else, and every stored tensor but those bf16_activations
                            // allows, stays FP32. CUDA also rounds
                            // a convolution's result to bf16 (kernels/cuda/cuda_bf16.cu says why)
    int bf16_conv_results;  // reference backend in bf16 mode only: round each convolution's result
                            // (output, data gradient, filter gradient) to bf16 too, as the CUDA backend
                            // does, so that it is that backend's oracle (tests/test_cuda_ops.c)
} BackendOptions;

typedef struct Backend {
    const char* name; // "cpu", "cuda" or "ref"

    // Set-up: returns 0, or non-zero with a message in err (no device, library missing, ...).
    int (*init)(const BackendOptions* opt, char* err, size_t errlen);
    void (*describe)(char* buf, size_t len); // one line naming the device, for logs

    // Memory. alloc never returns NULL: on failure it exits with a message saying how many bytes
    // `what` asked for and what to lower. upload returns once `src` may be reused.
    void* (*alloc)(size_t bytes, const char* what);
    void (*free)(void* p);
    void (*zero)(void* p, size_t bytes);
    void (*upload)(void* dst, const void* src, size_t bytes);   // host -> backend
    void (*download)(void* dst, const void* src, size_t bytes); // backend -> host, waits
    void (*copy)(void* dst, const void* src, size_t bytes);     // backend -> backend, no overlap
    void (*synchronize)(void);

    // Convolution: y = conv(x, w), cross-correlation as in PyTorch, no bias.
    void (*conv2d_forward)(float* y, const float* x, const float* w, const ConvShape* s);
    void (*conv2d_backward_data)(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate);
    void (*conv2d_backward_filter)(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate);

    // Diagonalwise refactorization helpers (see nn/depthwise.c). With groups of g channels:
    //   scatter: wbig (c, g, kk) = block-diagonal weight, wbig[o][j] = (j == o % g) ? w[o] : 0
    //   gather:  dw (c, 1, kk) += the diagonal of dwbig (c, g, kk)
    void (*dr_scatter)(float* wbig, const float* w, int c, int g, int kk);
    void (*dr_gather)(float* dw, const float* dwbig, int c, int g, int kk);

    // Batch norm per channel over (n, hw), optionally fused with a ReLU on its output.
    // Training: batch mean and biased variance normalize; saves mean and invstd = 1/sqrt(var + eps);
    // running_mean/var move by `momentum` (running_var with the unbiased variance), as PyTorch.
    // y_bf16 (only where bf16_activations says so): y is stored as bf16 values (uint16_t), each the
    // FP32 result rounded as a bf16 operand is (bf16_operand: nearest even, denormals to zero).
    void (*batchnorm_forward_train)(float* y, float* mean, float* invstd, float* running_mean,
                                    float* running_var, const float* x, const float* gamma,
                                    const float* beta, int n, int c, int hw, float momentum, float eps,
                                    int relu, int y_bf16);
    void (*batchnorm_forward_eval)(float* y, const float* x, const float* gamma, const float* beta,
                                   const float* running_mean, const float* running_var, int n, int c,
                                   int hw, float eps, int relu, int y_bf16);
    // dy is the gradient of y; with relu, y (the fused output, bf16 values if y_bf16) masks it:
    // dy passes where y > 0. dx may be NULL. dx_bf16: dx is stored as bf16 values, each rounded as
    // y's are (with accumulate, the sum of the stored value and the new one is rounded).
    // gamma, beta, mean and invstd are the training forward's (y = relu(gamma * (x - mean) * invstd
    // + beta)): a backend may recompute the mask from them and x, bit for bit y's, instead of
    // reading y (the CPU and CUDA backends do: one stream of memory fewer). beta NULL: y was
    // changed after the forward (Tensor.edited), so the mask must be read from y.
    void (*batchnorm_backward)(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                               const float* y, const float* mean, const float* invstd,
                               const float* gamma, const float* beta, int n, int c, int hw, int relu,
                               int y_bf16, int dx_bf16, int accumulate);

    void (*relu_forward)(float* y, const float* x, size_t count);
    void (*relu_backward)(float* dx, const float* dy, const float* y, size_t count, int accumulate);

    // Residual add: y = a + b, elementwise. y, a, b (count), any shape, the same for all three.
    void (*add_forward)(float* y, const float* a, const float* b, size_t count);
    // da (+)= dy and db (+)= dy, each by its own flag; either may be NULL (no gradient wanted).
    // da and db may be one buffer (y = x + x): element by element, da's update comes first.
    void (*add_backward)(float* da, float* db, const float* dy, size_t count, int accumulate_a,
                         int accumulate_b);

    void (*avgpool_forward)(float* y, const float* x, const PoolShape* p);
    void (*avgpool_backward)(float* dx, const float* dy, const PoolShape* p, int accumulate);
    // argmax: (n, c, h_out, w_out) index into the (h, w) plane of the winning input, -1 if none
    void (*maxpool_forward)(float* y, int* argmax, const float* x, const PoolShape* p);
    void (*maxpool_backward)(float* dx, const float* dy, const int* argmax, const PoolShape* p, int accumulate);

    // Linear: y (n, out) = x (n, in) * w^T (w: (out, in)) + b (out). dx may be NULL.
    void (*linear_forward)(float* y, const float* x, const float* w, const float* b, int n, int in, int out);
    void (*linear_backward)(float* dx, float* dw, float* db, const float* dy, const float* x,
                            const float* w, int n, int in, int out, int accumulate_dx);

    // Softmax cross-entropy, mean over the batch. loss: (1); probs: (n, classes) saved for backward.
    // A label outside 0..classes-1 is an error: the CPU exits with a message; a GPU kernel cannot,
    // so it prints the label and makes the loss NaN, which the trainer reports (the loader has
    // already validated every label, so neither should happen).
    void (*cross_entropy_forward)(float* loss, float* probs, const float* logits, const int* labels,
                                  int n, int classes);
    // dlogits = dloss[0] * (probs - onehot(labels)) / n   (dloss: the loss's gradient, (1))
    void (*cross_entropy_backward)(float* dlogits, const float* dloss, const float* probs,
                                   const int* labels, int n, int classes, int accumulate);
    // Running metrics kept in backend memory so that training need not wait for the device each
    // step: loss_sum += loss * n; correct += number of rows whose argmax equals the label.
    void (*metrics_accumulate)(float* loss_sum, int* correct, const float* loss, const float* logits,
                               const int* labels, int n, int classes);

    // One SGD step over the whole flat parameter arena, PyTorch's rule:
    //   d = g + wd * p;  buf = momentum * buf + d;  d = nesterov ? d + momentum * buf : buf;  p -= lr * d
    // (buf starts at zero, which makes the first step buf = d, as in PyTorch)
    void (*sgd_step)(float* p, float* buf, const float* g, size_t count, float lr, float momentum,
                     float weight_decay, int nesterov);

    // Profiling. Events are timestamps taken in stream order (CPU: the host clock; CUDA: cudaEvent),
    // so timing every op needs no synchronization; event_elapsed_ms waits for `end`. The range
    // functions name what follows for external profilers (NVTX on CUDA) and may be NULL.
    void* (*event_create)(void);
    void (*event_destroy)(void* ev);
    void (*event_record)(void* ev);
    float (*event_elapsed_ms)(void* start, void* end);
    void (*range_push)(const char* name);
    void (*range_pop)(void);

    // Whether, as initialised now, the backend takes activations and gradients stored in bf16
    // (ConvShape.x_bf16 and dy_bf16, the batch norms' y_bf16 and dx_bf16): 1 only in bf16 mode on a
    // backend that implements them. NULL: never.
    int (*bf16_activations)(void);

    // The depthwise group size g this backend runs fastest on MobileNet, measured (bench-depthwise,
    // docs/results/): the default of --dw-group. 0 means the paper's 32.
    int default_dw_group;

    // ---- Speed: GPU-resident data, CUDA graphs, counters. A backend may leave the graph entries
    // NULL (the CPU does): callers then run the step eagerly.

    // A batch from dataset records already in backend memory (records: (count, 3073) bytes, label
    // then (3, 32, 32) pixels): images (n, 3, 32, 32) and labels (n) for the dataset indices
    // indices (n, backend memory), augmented as nn/augment.h defines for (seed, epoch, index)
    // when augment is 1 (crop with padding, flip), always normalized: the batches of
    // data/loader.c. An index outside 0..count-1 is an error (CPU: exit with a message; GPU: the
    // kernel prints it, the image becomes NaN and the label -1, which the loss then reports).
    void (*augment_batch)(float* images, int* labels, const uint8_t* records, int count,
                          const int* indices, int n, uint64_t seed, int epoch, int augment);
    // sgd_step with the learning rate read from backend memory lr (1) when the step runs, so that
    // a captured graph of the step replays with each step's rate. The same arithmetic as sgd_step.
    void (*sgd_step_device_lr)(float* p, float* buf, const float* g, size_t count, const float* lr,
                               float momentum, float weight_decay, int nesterov);
    // Graph capture: between graph_capture_begin and graph_capture_end nothing runs; every op is
    // recorded (no allocation, no upload/download/synchronize allowed) into a graph that
    // graph_launch replays, in stream order, with the same pointers. capture_begin returns 0, or
    // non-zero with a message in err when capture is impossible.
    int (*graph_capture_begin)(char* err, size_t errlen);
    void* (*graph_capture_end)(void);
    void (*graph_launch)(void* graph);
    void (*graph_destroy)(void* graph);
    void (*read_counters)(BackendCounters* out);
} Backend;

// The registry (kernels/backends.c). name: "cpu", "cuda", "ref" or "auto" (CUDA when a GPU is
// usable, else CPU; never the reference). Returns the initialised backend, or NULL with a message in
// err. When auto falls back to the CPU, err says why in one line meant for the user ("no GPU found,
// using the CPU"; clear err before the call to tell the cases apart).
const Backend* backend_open(const char* name, const BackendOptions* opt, char* err, size_t errlen);
// Whether this build contains the CUDA backend.
int backend_cuda_compiled(void);

#endif
