// Convolutions through cuDNN's legacy API (NCHW float, cross-correlation, groups through
// cudnnSetConvolutionGroupCount). The depthwise layer's grouped convolutions come here too; its
// two small weight kernels are in cuda_dr.cu.
//
// Each distinct ConvShape (with the TF32 setting) gets a ConvPlan: its descriptors, created once,
// and per direction the algorithm cudnnFind* measured fastest among those that succeeded, keep the
// requested precision and need at most workspace_limit bytes of workspace. The search runs the
// first time a direction is used with that shape (the first training step); after that a call is
// a table look-up and one cuDNN call. All convolutions share one workspace buffer: there is one
// stream, so no two of them ever run at once. It only grows during a search.
//
// Deterministic mode (BackendOptions.deterministic, train --deterministic): PyTorch's
// cudnn.deterministic = True with benchmark = False. Timing cannot choose (two processes may time
// differently and pick different algorithms), so cuDNN's heuristics rank the algorithms
// (cudnnGet*Algorithm_v7, the same answer for the same GPU, cuDNN and shape) and the first one
// cuDNN marks CUDNN_DETERMINISTIC (no atomics) is taken. Same inputs then give the same bits in
// every run, which is what a bit-identical GPU resume needs.
//
// bf16 mixed precision (BackendOptions.bf16): each call rounds its two FP32 operands to bf16 values
// (cuda_bf16.cu) and runs the shape's FP32 plan on those copies, which multiplies them exactly and
// sums in FP32, as the CPU does. For the directions named in DRNET_CUDA_BF16_DIRS (cuda_backend.cu;
// slower on the GPUs measured so far) the plan's x, w and y descriptors are bf16 with FP32 compute
// (cuDNN's PSEUDO_BFLOAT16 configuration) instead: the operands become bf16 copies and the bf16
// result is widened into the FP32 destination, adding where the caller accumulates.
//
// A 1x1 convolution may instead run as one GEMM over the batch (cuda_pointwise.cu), per shape and
// direction where that measured faster than cuDNN's choice (consider_gemm).
//
// DRNET_CUDNN_ALGOS=gemm (cuda_backend.cu) limits the choice to the GEMM-like algorithms, whose
// rounding is a direct convolution's, for the tests with tight FP32 bounds; the plans are keyed by
// it too.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

enum { FWD = CUDA_CONV_FWD, BWD_DATA = CUDA_CONV_BWD_DATA, BWD_FILTER = CUDA_CONV_BWD_FILTER, DIRECTIONS = CUDA_CONV_DIRECTIONS };
static const char* const DIRECTION[DIRECTIONS] = {"forward", "backward-data", "backward-filter"};

static const char* algo_name(int dir, int algo) {
    static const char* const fwd[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                                      "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
    static const char* const data[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD",
                                       "WINOGRAD_NONFUSED"};
    static const char* const filter[] = {"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD",
                                         "WINOGRAD_NONFUSED", "FFT_TILING"};
    const char* const* names = dir == FWD ? fwd : dir == BWD_DATA ? data : filter;
    int count = dir == FWD ? 8 : dir == BWD_DATA ? 6 : 7;
    return algo >= 0 && algo < count ? names[algo] : "?";
}

static const char* math_name(cudnnMathType_t m) {
    switch (m) {
    case CUDNN_DEFAULT_MATH: return "default (TF32 allowed)";
    case CUDNN_TENSOR_OP_MATH: return "tensor-op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor-op + FP16 conversion";
    case CUDNN_FMA_MATH: return "FMA (strict FP32)";
    }
    return "?";
}

// bf16 operands: any math type but a conversion to FP16 (cuDNN runs bf16 on tensor cores; the TF32
// setting is moot, a bf16 value being exact in TF32). FP32: with TF32 off only FMA math keeps FP32 exact. cudnnFind reports per result the math type it
// measured, and may list CUDNN_DEFAULT_MATH results (TF32 allowed on sm_80+) whatever the descriptor
// asked for; those are refused. With TF32 on anything but a down-conversion to FP16 is acceptable.
static int math_allowed(cudnnMathType_t m, int bf16) {
    if (bf16) return m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    if (!g_cuda.tf32) return m == CUDNN_FMA_MATH;
    return m == CUDNN_DEFAULT_MATH || m == CUDNN_TENSOR_OP_MATH || m == CUDNN_FMA_MATH;
}

struct ConvPlan {
    ConvShape s; // the key, with tf32, deterministic, gemm_only, bf16 and pointwise
    int tf32, deterministic, gemm_only, bf16, pointwise;
    cudnnTensorDescriptor_t x;                     // (n, c_in, h, w), FP32 or bf16
    cudnnTensorDescriptor_t y;                     // (n, c_out, h_out, w_out), FP32 or bf16
    cudnnFilterDescriptor_t w;                     // (c_out, c_in / groups, k, k), FP32 or bf16
    cudnnConvolutionDescriptor_t conv[DIRECTIONS]; // one per direction: each carries its algorithm's math type
    int ready[DIRECTIONS];                         // the direction's algorithm has been chosen
    int algo[DIRECTIONS];                          // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
    size_t ws[DIRECTIONS];                         // workspace bytes that algorithm needs
    int gemm[DIRECTIONS];                          // a 1x1 convolution run as one GEMM instead (cuda_pointwise.cu)
    float cudnn_ms[DIRECTIONS], gemm_ms[DIRECTIONS]; // what the choice between them measured (0: not timed)
};

#define MAX_PLANS 1024
static ConvPlan plans[MAX_PLANS];
static int num_plans;
static void* workspace;        // (workspace_bytes) shared by every convolution
static size_t workspace_bytes;

static void shape_text(char* buf, size_t len, const ConvShape* s, int tf32, int bf16) {
    snprintf(buf, len, "x (%d, %d, %d, %d) -> y (%d, %d, %d, %d), %dx%d kernel, stride %d, pad %d, "
             "%d group%s, %s", s->n, s->c_in, s->h, s->w, s->n, s->c_out, s->h_out, s->w_out,
             s->k, s->k, s->stride, s->pad, s->groups, s->groups == 1 ? "" : "s",
             bf16 ? "bf16 operands, FP32 sums" : tf32 ? "TF32 on" : "TF32 off");
}

// A cuDNN failure on a convolution: the shape is what makes it actionable.
static void plan_check(const ConvPlan* p, cudnnStatus_t st, const char* call, const char* file, int line) {
    if (st == CUDNN_STATUS_SUCCESS) return;
    char detail[512] = "", shape[200], both[760];
    CUDNN_LAST_ERROR(detail);
    shape_text(shape, sizeof(shape), &p->s, p->tf32, p->bf16);
    snprintf(both, sizeof(both), "convolution %s%s%s", shape, *detail ? " | " : "", detail);
    cuda_fail(file, line, "cuDNN", call, cudnnGetErrorString(st), both);
}
#define PLAN_CHECK(p, call) plan_check((p), (call), #call, __FILE__, __LINE__)

static ConvPlan* plan_for(const ConvShape* s, int bf16) {
    for (int i = 0; i < num_plans; i++)
        if (plans[i].tf32 == g_cuda.tf32 && plans[i].deterministic == g_cuda.deterministic &&
            plans[i].gemm_only == g_cuda.gemm_only && plans[i].bf16 == bf16 &&
            plans[i].pointwise == g_cuda.pointwise && memcmp(&plans[i].s, s, sizeof(*s)) == 0)
            return &plans[i];
    if (num_plans == MAX_PLANS) {
        fprintf(stderr, "error: %s:%d: more than %d distinct convolution shapes; raise MAX_PLANS\n",
                __FILE__, __LINE__, MAX_PLANS);
        exit(1);
    }
    ConvPlan* p = &plans[num_plans];
    memset(p, 0, sizeof(*p));
    p->s = *s;
    p->tf32 = g_cuda.tf32;
    p->deterministic = g_cuda.deterministic;
    p->gemm_only = g_cuda.gemm_only;
    p->bf16 = bf16;
    p->pointwise = g_cuda.pointwise;
    const cudnnDataType_t type = p->bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT; // compute stays FP32
    PLAN_CHECK(p, cudnnCreateTensorDescriptor(&p->x));
    PLAN_CHECK(p, cudnnCreateTensorDescriptor(&p->y));
    PLAN_CHECK(p, cudnnCreateFilterDescriptor(&p->w));
    PLAN_CHECK(p, cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, type, s->n, s->c_in, s->h, s->w));
    PLAN_CHECK(p, cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, type, s->n, s->c_out, s->h_out, s->w_out));
    PLAN_CHECK(p, cudnnSetFilter4dDescriptor(p->w, type, CUDNN_TENSOR_NCHW, s->c_out,
                                             s->c_in / s->groups, s->k, s->k));
    for (int d = 0; d < DIRECTIONS; d++) {
        PLAN_CHECK(p, cudnnCreateConvolutionDescriptor(&p->conv[d]));
        PLAN_CHECK(p, cudnnSetConvolution2dDescriptor(p->conv[d], s->pad, s->pad, s->stride, s->stride, 1, 1,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
        PLAN_CHECK(p, cudnnSetConvolutionGroupCount(p->conv[d], s->groups));
        // What the search starts from; each direction then runs with the math type it measured.
        PLAN_CHECK(p, cudnnSetConvolutionMathType(p->conv[d], p->bf16 || g_cuda.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    }
    int n, c, h, w;
    PLAN_CHECK(p, cudnnGetConvolution2dForwardOutputDim(p->conv[FWD], p->x, p->w, &n, &c, &h, &w));
    if (n != s->n || c != s->c_out || h != s->h_out || w != s->w_out) {
        char shape[200];
        shape_text(shape, sizeof(shape), s, p->tf32, p->bf16);
        fprintf(stderr, "error: %s:%d: cuDNN computes output (%d, %d, %d, %d) for convolution %s\n",
                __FILE__, __LINE__, n, c, h, w, shape);
        exit(1);
    }
    num_plans++;
    return p;
}

// One result of a cudnnFind* call, whatever the direction.
struct Candidate {
    int algo;
    cudnnStatus_t status;
    float ms;
    size_t memory;
    cudnnMathType_t math;
    cudnnDeterminism_t determinism;
};
// cudnnFind times each algorithm with the descriptor's math type and also with CUDNN_DEFAULT_MATH
// when the two differ (its documentation), so with TF32 off it may list up to twice the algorithm
// count; room for all of them (see rank_candidates).
#define MAX_CANDIDATES 32

template <typename Perf>
static int to_candidates(const Perf* perf, int n, Candidate* c) {
    for (int i = 0; i < n; i++)
        c[i] = Candidate{(int)perf[i].algo, perf[i].status, perf[i].time, perf[i].memory, perf[i].mathType,
                         perf[i].determinism};
    return n;
}

// cuDNN's candidates for the direction, best first. timed: cudnnFind* runs every algorithm (cuDNN
// allocates its own buffers for this, so our tensors are untouched) and ranks them by measured time;
// otherwise cudnnGet*_v7 ranks them by cuDNN's heuristics without running anything (the
// deterministic mode, so that every process chooses alike). The two calls take the same arguments.
// How many results to ask for, given cuDNN's algorithm count: the timed search asks for twice as
// many, since it may return each algorithm once per math type (FMA and DEFAULT with TF32 off) and
// the list, sorted by time, would otherwise be cut after `count` entries that could all be TF32 ones
// (refused), leaving no strict-FP32 candidate although cuDNN measured several.
static int requested(int count, int timed) {
    int want = timed ? 2 * count : count;
    return want < MAX_CANDIDATES ? want : MAX_CANDIDATES;
}

static int rank_candidates(ConvPlan* p, int dir, int timed, Candidate* c) {
    cudnnHandle_t h = g_cuda.cudnn;
    int max = 0, n = 0;
    if (dir == FWD) {
        cudnnConvolutionFwdAlgoPerf_t perf[MAX_CANDIDATES];
        PLAN_CHECK(p, cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max));
        max = requested(max, timed);
        PLAN_CHECK(p, (timed ? cudnnFindConvolutionForwardAlgorithm : cudnnGetConvolutionForwardAlgorithm_v7)(
                          h, p->x, p->w, p->conv[FWD], p->y, max, &n, perf));
        return to_candidates(perf, n, c);
    }
    if (dir == BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[MAX_CANDIDATES];
        PLAN_CHECK(p, cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max));
        max = requested(max, timed);
        PLAN_CHECK(p, (timed ? cudnnFindConvolutionBackwardDataAlgorithm : cudnnGetConvolutionBackwardDataAlgorithm_v7)(
                          h, p->w, p->y, p->conv[BWD_DATA], p->x, max, &n, perf));
        return to_candidates(perf, n, c);
    }
    cudnnConvolutionBwdFilterAlgoPerf_t perf[MAX_CANDIDATES];
    PLAN_CHECK(p, cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max));
    max = requested(max, timed);
    PLAN_CHECK(p, (timed ? cudnnFindConvolutionBackwardFilterAlgorithm : cudnnGetConvolutionBackwardFilterAlgorithm_v7)(
                      h, p->x, p->y, p->conv[BWD_FILTER], p->w, max, &n, perf));
    return to_candidates(perf, n, c);
}

// Workspace for `algo` with the descriptor's current math type (not checked: a failure rejects the candidate).
static cudnnStatus_t workspace_size(const ConvPlan* p, int dir, int algo, size_t* bytes) {
    cudnnHandle_t h = g_cuda.cudnn;
    if (dir == FWD)
        return cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv[FWD], p->y,
                                                       (cudnnConvolutionFwdAlgo_t)algo, bytes);
    if (dir == BWD_DATA)
        return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv[BWD_DATA], p->x,
                                                            (cudnnConvolutionBwdDataAlgo_t)algo, bytes);
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->conv[BWD_FILTER], p->w,
                                                          (cudnnConvolutionBwdFilterAlgo_t)algo, bytes);
}

static void print_candidates(FILE* f, const ConvPlan* p, int dir, const Candidate* c, int n, int chosen) {
    char shape[200], mem[32];
    shape_text(shape, sizeof(shape), &p->s, p->tf32, p->bf16);
    fprintf(f, "cuda: %s %s: %d algorithms %s\n", DIRECTION[dir], shape, n,
            p->deterministic ? "ranked by cuDNN's heuristics (deterministic mode)" : "measured");
    for (int i = 0; i < n; i++)
        fprintf(f, "  %c %-22s %-26s %9.4f ms  workspace %-10s %-22s %s\n", i == chosen ? '*' : ' ',
                algo_name(dir, c[i].algo), c[i].status == CUDNN_STATUS_SUCCESS ? "ok" : cudnnGetErrorString(c[i].status),
                (double)c[i].ms, cuda_format_bytes(mem, sizeof(mem), (double)c[i].memory), math_name(c[i].math),
                c[i].determinism == CUDNN_DETERMINISTIC ? "deterministic" : "non-deterministic");
}

static void adopt(ConvPlan* p, int dir, int algo, size_t need) {
    p->algo[dir] = algo;
    p->ws[dir] = need;
    p->ready[dir] = 1;
    if (need <= workspace_bytes) return;
    size_t grown = (need + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1); // whole MiB
    cuda_device_free(workspace); // after the queued convolutions that may use it
    workspace = cuda_device_alloc(grown, "the cuDNN convolution workspace (capped by BackendOptions.workspace_limit)");
    workspace_bytes = grown;
}

// The algorithms cuDNN documents as accumulating with atomics: backward-data ALGO_0, backward-filter
// ALGO_0 and ALGO_3. Deterministic mode refuses them by name as well as by the determinism cuDNN
// reports, so that a wrong flag in a perf record cannot make a GPU resume differ from the
// uninterrupted run.
static int uses_atomics(int dir, int algo) {
    if (dir == BWD_DATA) return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
    if (dir == BWD_FILTER) return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
    return 0;
}

// The GEMM-like algorithms (DRNET_CUDNN_ALGOS=gemm): each output is one dot product over its
// receptive field, so the rounding is a direct convolution's. FFT and Winograd transform the
// operands first and round differently (larger for Winograd's bigger tiles); DIRECT is listed by
// cuDNN but implemented for no shape; the backward ALGO_0s and backward-filter ALGO_3 sum with atomics.
static int gemm_like(int dir, int algo) {
    if (dir == FWD)
        return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
               algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM;
    if (dir == BWD_DATA) return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
}

// A 1x1 convolution may run as one GEMM over the batch instead (cuda_pointwise.cu): forced by
// DRNET_CUDA_POINTWISE=gemm, else taken where it measured faster than the cuDNN algorithm just chosen
// (cudnn_ms; 0 when nothing was timed). Never for bf16 tensors (the path is FP32; bf16 values in FP32
// copies are fine) and, unless forced, never
// in deterministic mode, where nothing is chosen by timing.
static void consider_gemm(ConvPlan* p, int dir, float cudnn_ms) {
    p->gemm[dir] = 0;
    if (p->bf16 || !cuda_pointwise_fits(&p->s) || p->pointwise == CUDA_POINTWISE_CUDNN) return;
    if (p->pointwise == CUDA_POINTWISE_AUTO) {
        if (p->deterministic || !(cudnn_ms > 0.0f)) return;
        p->cudnn_ms[dir] = cudnn_ms;
        p->gemm_ms[dir] = cuda_pointwise_time(dir, &p->s);
        if (g_cuda.verbose) {
            char shape[200];
            shape_text(shape, sizeof(shape), &p->s, p->tf32, p->bf16);
            fprintf(stderr, "cuda: %s %s: one GEMM over the batch %.4f ms, cuDNN's choice %.4f ms: %s\n",
                    DIRECTION[dir], shape, (double)p->gemm_ms[dir], (double)cudnn_ms,
                    p->gemm_ms[dir] < cudnn_ms ? "GEMM" : "cuDNN");
        }
        if (!(p->gemm_ms[dir] < cudnn_ms)) return;
    }
    p->gemm[dir] = 1;
    cuda_pointwise_reserve(dir, &p->s); // now, not inside a later graph capture
}

static void choose(ConvPlan* p, int dir) {
    Candidate c[MAX_CANDIDATES] = {};
    // A shape first seen inside a graph capture (train/speed.c captures only after an eager step of
    // the same shapes): the synchronization and cudnnFind* below cannot be captured and would
    // invalidate the capture with a bare "operation not permitted when stream is capturing".
    cuda_refuse_in_capture("a cuDNN algorithm choice for a new convolution shape");
    if (!p->deterministic) CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream)); // time the algorithms on an idle GPU
    int n = rank_candidates(p, dir, !p->deterministic, c);
    // cudnnFind* allocates its own buffers per algorithm; one that does not fit is reported in its
    // result (CUDNN_STATUS_ALLOC_FAILED), but the failed cudaMalloc may also stay behind as the
    // runtime's last error, which the next kernel launch's check would report as its own. Our own
    // calls are all checked as they return, so anything pending here is cuDNN's (a sticky error,
    // a device fault, is not cleared by this and still surfaces at the next call).
    if (!p->deterministic) (void)cudaGetLastError();
    size_t limit = g_cuda.workspace_limit;
    for (int i = 0; i < n; i++) {
        if (c[i].status != CUDNN_STATUS_SUCCESS || !math_allowed(c[i].math, p->bf16) || c[i].memory > limit) continue;
        if (p->deterministic && (c[i].determinism != CUDNN_DETERMINISTIC || uses_atomics(dir, c[i].algo))) continue;
        if (p->gemm_only && !gemm_like(dir, c[i].algo)) continue;
        // Run with exactly the math type that was measured (cuDNN picks kernels by algo + math type).
        PLAN_CHECK(p, cudnnSetConvolutionMathType(p->conv[dir], c[i].math));
        size_t need = 0;
        if (workspace_size(p, dir, c[i].algo, &need) != CUDNN_STATUS_SUCCESS) continue;
        need = need > c[i].memory ? need : c[i].memory;
        if (need > limit) continue;
        if (g_cuda.verbose) print_candidates(stderr, p, dir, c, n, i);
        adopt(p, dir, c[i].algo, need);
        consider_gemm(p, dir, p->deterministic ? 0.0f : c[i].ms);
        return;
    }
    // Nothing qualified (never seen in practice): the generic implicit GEMM with the requested
    // precision, which cuDNN supports for every shape: forward algorithm 0; backward ALGO_1 in
    // deterministic and GEMM-only modes (the backward ALGO_0s accumulate with atomics), else ALGO_0.
    int fallback = dir != FWD && (p->deterministic || p->gemm_only) ? 1 : 0;
    print_candidates(stderr, p, dir, c, n, -1);
    fprintf(stderr, "cuda: warning: no %s algorithm above fits the %zu-byte workspace limit with the requested "
                    "precision%s%s; using %s\n", DIRECTION[dir], limit, p->deterministic ? " and determinism" : "",
            p->gemm_only ? " among the GEMM-like ones (DRNET_CUDNN_ALGOS=gemm)" : "", algo_name(dir, fallback));
    PLAN_CHECK(p, cudnnSetConvolutionMathType(p->conv[dir], p->bf16 || g_cuda.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    size_t need = 0;
    PLAN_CHECK(p, workspace_size(p, dir, fallback, &need));
    adopt(p, dir, fallback, need);
    consider_gemm(p, dir, 0.0f);
}

// In bf16 mode a direction runs on bf16 tensors only if it is in g_cuda.bf16_conv_dirs (none unless
// DRNET_CUDA_BF16_DIRS says otherwise); the others use the shape's FP32 plan on bf16-valued copies.
static ConvPlan* ready_plan(const ConvShape* s, int dir) {
    ConvPlan* p = plan_for(s, g_cuda.bf16 && (g_cuda.bf16_conv_dirs >> dir & 1));
    if (!p->ready[dir]) choose(p, dir);
    return p;
}

static const float ONE = 1.0f, ZERO = 0.0f; // cuDNN's alpha and beta (host pointers)

// Element counts of a shape's three tensors.
static size_t x_elems(const ConvShape* s) { return (size_t)s->n * s->c_in * s->h * s->w; }
static size_t y_elems(const ConvShape* s) { return (size_t)s->n * s->c_out * s->h_out * s->w_out; }
static size_t w_elems(const ConvShape* s) { return (size_t)s->c_out * (s->c_in / s->groups) * s->k * s->k; }

// What a direction's cuDNN call is given: its two FP32 inputs and FP32 output as they are, or in
// bf16 mode bf16 copies of the inputs and the bf16 scratch that receives the output (which the
// caller then widens into its FP32 destination).
struct Operands {
    const void *a, *b;
    void* out;
};
static Operands operands(const ConvPlan* p, const float* a, size_t na, const float* b, size_t nb, float* out, size_t nout) {
    if (p->bf16) // cuDNN's bf16 tensors
        return Operands{cuda_bf16_operand(CUDA_BF16_A, a, na), cuda_bf16_operand(CUDA_BF16_B, b, nb),
                        cuda_bf16_buffer(CUDA_BF16_OUT, nout)};
    if (g_cuda.bf16) // bf16 values in FP32, for the FP32 plan
        return Operands{cuda_bf16_rounded(CUDA_BF16_A, a, na), cuda_bf16_rounded(CUDA_BF16_B, b, nb), out};
    return Operands{a, b, out};
}

void cuda_conv2d_forward(float* y, const float* x, const float* w, const ConvShape* s) {
    CUDA_REFUSE_BF16_ACTIVATIONS(s->x_bf16);
    ConvPlan* p = ready_plan(s, FWD);
    Operands o = operands(p, x, x_elems(s), w, w_elems(s), y, y_elems(s));
    if (p->gemm[FWD]) return cuda_pointwise_forward(y, (const float*)o.a, (const float*)o.b, s);
    PLAN_CHECK(p, cudnnConvolutionForward(g_cuda.cudnn, &ONE, p->x, o.a, p->w, o.b, p->conv[FWD],
                                          (cudnnConvolutionFwdAlgo_t)p->algo[FWD], workspace, p->ws[FWD],
                                          &ZERO, p->y, o.out));
    LIBRARY_DONE("cudnnConvolutionForward");
    if (p->bf16) cuda_bf16_widen(y, (const uint16_t*)o.out, y_elems(s), 0);
}

// beta = 0 overwrites dx without reading it (it may hold NaN); beta = 1 adds. In bf16 mode cuDNN
// writes the bf16 copy (beta = 0) and the widening adds it to dx in FP32.
void cuda_conv2d_backward_data(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate) {
    CUDA_REFUSE_BF16_ACTIVATIONS(s->dy_bf16);
    ConvPlan* p = ready_plan(s, BWD_DATA);
    Operands o = operands(p, dy, y_elems(s), w, w_elems(s), dx, x_elems(s));
    if (p->gemm[BWD_DATA]) return cuda_pointwise_backward_data(dx, (const float*)o.a, (const float*)o.b, s, accumulate);
    PLAN_CHECK(p, cudnnConvolutionBackwardData(g_cuda.cudnn, &ONE, p->w, o.b, p->y, o.a, p->conv[BWD_DATA],
                                               (cudnnConvolutionBwdDataAlgo_t)p->algo[BWD_DATA], workspace,
                                               p->ws[BWD_DATA], accumulate && !p->bf16 ? &ONE : &ZERO, p->x, o.out));
    LIBRARY_DONE("cudnnConvolutionBackwardData");
    if (p->bf16) cuda_bf16_widen(dx, (const uint16_t*)o.out, x_elems(s), accumulate);
}

void cuda_conv2d_backward_filter(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate) {
    CUDA_REFUSE_BF16_ACTIVATIONS(s->x_bf16);
    CUDA_REFUSE_BF16_ACTIVATIONS(s->dy_bf16);
    ConvPlan* p = ready_plan(s, BWD_FILTER);
    Operands o = operands(p, x, x_elems(s), dy, y_elems(s), dw, w_elems(s));
    if (p->gemm[BWD_FILTER]) return cuda_pointwise_backward_filter(dw, (const float*)o.b, (const float*)o.a, s, accumulate);
    PLAN_CHECK(p, cudnnConvolutionBackwardFilter(g_cuda.cudnn, &ONE, p->x, o.a, p->y, o.b, p->conv[BWD_FILTER],
                                                 (cudnnConvolutionBwdFilterAlgo_t)p->algo[BWD_FILTER], workspace,
                                                 p->ws[BWD_FILTER], accumulate && !p->bf16 ? &ONE : &ZERO, p->w, o.out));
    LIBRARY_DONE("cudnnConvolutionBackwardFilter");
    if (p->bf16) cuda_bf16_widen(dw, (const uint16_t*)o.out, w_elems(s), accumulate);
}

// For tests and debugging (kernels/cuda/cuda_stream.h): every plan made so far with the algorithm and
// math type chosen per direction, so that a failing comparison names the cuDNN code that ran.
extern "C" void drnet_cuda_conv_report(FILE* f) {
    fprintf(f, "cuDNN algorithms in use (%d convolution shapes):\n", num_plans);
    for (int i = 0; i < num_plans; i++) {
        const ConvPlan* p = &plans[i];
        char shape[200];
        shape_text(shape, sizeof(shape), &p->s, p->tf32, p->bf16);
        fprintf(f, "  %s%s%s:", shape, p->deterministic ? ", deterministic" : "", p->gemm_only ? ", GEMM-like only" : "");
        for (int d = 0; d < DIRECTIONS; d++) {
            if (!p->ready[d]) continue;
            if (p->gemm[d]) {
                fprintf(f, " %s one GEMM over the batch (cuBLAS", DIRECTION[d]);
                if (p->gemm_ms[d] > 0.0f) fprintf(f, ", %.4f ms against cuDNN's %.4f", (double)p->gemm_ms[d], (double)p->cudnn_ms[d]);
                fprintf(f, ");");
                continue;
            }
            cudnnMathType_t m = CUDNN_DEFAULT_MATH;
            if (cudnnGetConvolutionMathType(p->conv[d], &m) != CUDNN_STATUS_SUCCESS) m = CUDNN_DEFAULT_MATH; // report only
            fprintf(f, " %s %s (%s);", DIRECTION[d], algo_name(d, p->algo[d]), math_name(m));
        }
        fprintf(f, "\n");
    }
}
