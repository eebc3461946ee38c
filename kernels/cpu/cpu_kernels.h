// The tuned counterpart of every function in kernels/ref/ref_kernels.h (ref_x -> cpu_x), with the
// threads, scratch and GEMM they share to compute faster.
//
// The CPU backend's kernels (plain C + OpenMP), as the backend table in cpu_backend.c exposes them.
// Signatures and conventions are those of nn/backend.h.
#ifndef KERNELS_CPU_KERNELS_H
#define KERNELS_CPU_KERNELS_H

#include <stddef.h>

#include "../../nn/backend.h"

// Row-major single-precision GEMM: C (M, N) = alpha * op(A) * op(B) + beta * C, where op(A) is
// (M, K) and op(B) is (K, N); transA/transB say that A is stored (K, M) or B (N, K). beta = 0 never
// reads C. Called outside a parallel region it uses all threads (see cpu_gemm in cpu_gemm.h, the
// general form that the convolutions use); inside one, only the calling thread.
void cpu_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float* A, int lda,
               const float* B, int ldb, float beta, float* C, int ldc);

// bf16 mixed precision (BackendOptions.bf16, set by init): convolutions and linear layers round both
// operands of every product to bf16 and sum in FP32. cpu_gemm_product is their GEMM (cpu_gemm or
// cpu_gemm_bf16 by this switch, cpu_gemm.h); the k x k lowering rounds its planes and weights in
// place (cpu_round_bf16) and keeps its FP32 kernels, which multiply bf16 values exactly.
extern int cpu_bf16;
void cpu_round_bf16(float* x, size_t n); // x[i] = bf16_operand_value(x[i]) (nn/bf16.h)
// How batch norm stores a bf16 output (cpu_norm.c): -1 (the default) by AVX512_BF16's conversion where
// the CPU has it, else by integer arithmetic; 0 or 1 forces the integer rounding or the conversion
// (tests run both; 1 only on a CPU with AVX512_BF16). The same bits either way.
void cpu_norm_set_rounding(int cvt);

// Threads. Every parallel loop of the backend uses a static partition, so results are bit-identical
// run to run for a given thread count.
#define CPU_MAX_THREADS 256
int cpu_max_threads(void);  // the team size a parallel region gets
int cpu_thread_num(void);   // this thread's number in its team (0 outside parallel regions)
int cpu_in_parallel(void);  // inside an active parallel region: kernels must not start another

// Per-thread scratch that only grows: returns at least `count` floats (64-byte aligned) for slot
// `slot` of the calling thread. Steady-state steps therefore allocate nothing. Each user owns a slot:
enum {
    SLOT_GEMM_A,       // cpu_gemm.c: packed A block
    SLOT_GEMM_B,       // cpu_gemm.c: packed B block
    SLOT_GEMM_PARTIAL, // cpu_gemm.c: this thread's partial C when the depth is split
    SLOT_GEMM_STAGE,   // cpu_gemm.c: C staged for a layout the micro-kernel cannot store into
    SLOT_GEMM_PANEL,   // cpu_gemm_bf16.c: one FP32 panel on its way into bf16 pairs
    SLOT_CONV_A,       // cpu_conv_flat.c: flat input planes
    SLOT_CONV_B,       // cpu_conv_flat.c: output grid
    SLOT_CONV_C,       // cpu_conv_flat.c: this thread's partial filter gradient
    SLOT_CONV_W,       // cpu_conv_flat.c: rearranged weights (calling thread only)
    SLOT_CONV_ROWS,    // cpu_conv_flat.c: row pointers of the indirect GEMM
    SLOT_NORM,         // cpu_norm.c: per-thread partial statistics
    SLOT_NORM_SHARED,  // cpu_norm.c: per-element coefficients the threads share
    SLOT_NORM_CALLER,  // cpu_norm.c: per-channel coefficients (calling thread)
    SCRATCH_SLOTS
};
float* cpu_scratch(int slot, size_t count);

void cpu_conv2d_forward(float* y, const float* x, const float* w, const ConvShape* s);
void cpu_conv2d_backward_data(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate);
void cpu_conv2d_backward_filter(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate);
void cpu_dr_scatter(float* wbig, const float* w, int c, int g, int kk);
void cpu_dr_gather(float* dw, const float* dwbig, int c, int g, int kk);

void cpu_batchnorm_forward_train(float* y, float* mean, float* invstd, float* running_mean,
                                 float* running_var, const float* x, const float* gamma,
                                 const float* beta, int n, int c, int hw, float momentum, float eps,
                                 int relu, int y_bf16);
void cpu_batchnorm_forward_eval(float* y, const float* x, const float* gamma, const float* beta,
                                const float* running_mean, const float* running_var, int n, int c,
                                int hw, float eps, int relu, int y_bf16);
void cpu_batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                            const float* y, const float* mean, const float* invstd, const float* gamma,
                            const float* beta, int n, int c, int hw, int relu, int y_bf16, int dx_bf16,
                            int accumulate);

void cpu_relu_forward(float* y, const float* x, size_t count);
void cpu_relu_backward(float* dx, const float* dy, const float* y, size_t count, int accumulate);
void cpu_add_forward(float* y, const float* a, const float* b, size_t count); // cpu_add.c
void cpu_add_backward(float* da, float* db, const float* dy, size_t count, int accumulate_a, int accumulate_b);
void cpu_avgpool_forward(float* y, const float* x, const PoolShape* p);
void cpu_avgpool_backward(float* dx, const float* dy, const PoolShape* p, int accumulate);
void cpu_maxpool_forward(float* y, int* argmax, const float* x, const PoolShape* p);
void cpu_maxpool_backward(float* dx, const float* dy, const int* argmax, const PoolShape* p, int accumulate);
void cpu_linear_forward(float* y, const float* x, const float* w, const float* b, int n, int in, int out);
void cpu_linear_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                         const float* w, int n, int in, int out, int accumulate_dx);
void cpu_cross_entropy_forward(float* loss, float* probs, const float* logits, const int* labels,
                               int n, int classes);
void cpu_cross_entropy_backward(float* dlogits, const float* dloss, const float* probs,
                                const int* labels, int n, int classes, int accumulate);
void cpu_metrics_accumulate(float* loss_sum, int* correct, const float* loss, const float* logits,
                            const int* labels, int n, int classes);
void cpu_sgd_step(float* p, float* buf, const float* g, size_t count, float lr, float momentum,
                  float weight_decay, int nesterov);
// cpu_speed.c
void cpu_augment_batch(float* images, int* labels, const uint8_t* records, int count, const int* indices, int n,
                       uint64_t seed, int epoch, int augment);
void cpu_sgd_step_device_lr(float* p, float* buf, const float* g, size_t count, const float* lr,
                            float momentum, float weight_decay, int nesterov);
void cpu_read_counters(BackendCounters* out);

#endif
