// A strict CPU stand-in for the part of cuDNN 9 the CUDA backend uses: the legacy convolution API
// (tensor, filter and convolution descriptors, algorithm search and the three convolutions), for
// 4-d NCHW float tensors, and bf16 ones with FP32 compute (cuDNN's PSEUDO_BFLOAT16 configuration: x, w
// and y all bf16; the result is rounded to bf16 to nearest even). It is compiled against the real <cudnn.h>, so every signature and enum is
// exactly what nvcc-compiled code sees.
//
// Strictness, so that the first run on a real GPU behaves like the emulated one:
//   - What real cuDNN rejects with a status is rejected with the same status and a precise message
//     (cudnnGetLastErrorString): inconsistent shapes, a workspace smaller than the algorithm needs,
//     an algorithm that does not support the shape, a bad requested count, ...
//   - What would be undefined behaviour or a crash on a GPU aborts through emu::fatal: a data or
//     workspace pointer that is not device memory covering the whole tensor, a descriptor used after
//     it was destroyed, an output that overlaps an input, alpha/beta in device memory.
//   - What real cuDNN accepts but this emulator does not implement (NHWC, half, double, ...) also
//     aborts, saying so, rather than returning a status real cuDNN would not return.
//
// Numerics: a reference loop that accumulates in double and rounds to float once (then to bf16 for
// bf16 tensors, whose operands are read exactly), with
// out = alpha * result + beta * out (and out not read at all when beta == 0). When the
// convolution's math type allows tensor ops, both factors of every product are first rounded to
// TF32, so TF32 error is realistic. Non-deterministic algorithms (backward-data ALGO_0,
// backward-filter ALGO_0 and ALGO_3, the ones with atomics) perturb some outputs by one ulp,
// differently at every run, so that code relying on bitwise reproducibility with them fails here too.
//
// Algorithms: each direction has cuDNN's full enum of algorithms, each with a support rule and a
// workspace formula per shape (see algo_support). Find ranks the supported ones by a pseudo time,
// a hash of the shape and the algorithm, so that runs are reproducible; Get*_v7 returns a fixed
// heuristic order. Some algorithms need no workspace, FFT needs gigabytes for large shapes, so a
// caller's workspace limit matters as on a GPU.
//
// All device memory is read and written only inside closures passed to emu::submit, which capture
// by value everything they need (descriptors may be destroyed before the work runs, and a captured
// graph may replay it many times).
#include <cudnn.h>

#include "emu.h"
#include "nn/bf16.h" // the result's rounding to bf16 (nearest even), and reading bf16 operands

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <vector>

// The opaque types of <cudnn.h>, defined here.
struct cudnnContext {
    cudaStream_t stream; // where the convolutions run (cudnnSetStream); 0 = the legacy default stream
};
struct cudnnTensorStruct {
    bool set;       // cudnnSetTensor4dDescriptor succeeded at least once
    int n, c, h, w; // NCHW, packed
    bool bf16;      // CUDNN_DATA_BFLOAT16 (else CUDNN_DATA_FLOAT)
};
struct cudnnFilterStruct {
    bool set;
    int k, c, r, s; // output channels, input channels per group, height, width (NCHW = KCRS)
    bool bf16;
};
struct cudnnConvolutionStruct {
    bool set; // cudnnSetConvolution2dDescriptor succeeded at least once
    int pad_h, pad_w, stride_h, stride_w, dil_h, dil_w;
    cudnnConvolutionMode_t mode;
    int groups;           // 1 until cudnnSetConvolutionGroupCount
    cudnnMathType_t math; // CUDNN_DEFAULT_MATH until cudnnSetConvolutionMathType
};

namespace {

// ---------------------------------------------------------------------------------------------
// Errors

// cuDNN 9 keeps the last error message per thread (cudnnGetLastErrorString).
thread_local char last_error[1024];

// Records "<call>: <STATUS>: <message>" as the last error and returns `st`.
__attribute__((format(printf, 3, 4))) cudnnStatus_t fail(cudnnStatus_t st, const char* call, const char* fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(last_error, sizeof(last_error), "%s: %s: %s", call, cudnnGetErrorString(st), msg);
    return st;
}

// ---------------------------------------------------------------------------------------------
// Live objects: a handle or descriptor used after cudnnDestroy* (or never created) would be a
// use-after-free in real cuDNN, so it aborts here.

std::set<const void*> live; // the emulator runs on one host thread (emu.h): no lock

template <typename T> T* make_live(T* p) {
    live.insert(p);
    return p;
}

// false for NULL (the caller returns CUDNN_STATUS_BAD_PARAM); aborts for a dead pointer.
bool check_live(const void* p, const char* call, const char* what) {
    if (!p) return false;
    if (!live.count(p)) emu::fatal("%s: %s %p was destroyed or never created (a use after free in real cuDNN)", call, what, p);
    return true;
}

// Destroys a live object; NULL is accepted like cuDNN does (it returns success for it).
template <typename T> cudnnStatus_t destroy(T* p, const char* call, const char* what) {
    if (!p) return CUDNN_STATUS_SUCCESS;
    check_live(p, call, what);
    live.erase(p);
    delete p;
    return CUDNN_STATUS_SUCCESS;
}

// NULL check + liveness check of an argument, returning BAD_PARAM for NULL.
#define REQUIRE(ptr, call, what)                                                                  \
    do {                                                                                          \
        if (!check_live((ptr), (call), (what)))                                                   \
            return fail(CUDNN_STATUS_BAD_PARAM, (call), "%s is NULL", (what));                    \
    } while (0)

// Data types and layouts: invalid enumerants are BAD_PARAM as in cuDNN; valid ones this emulator
// does not implement abort (real cuDNN would accept them, so no status would be faithful).
bool valid_data_type(cudnnDataType_t t) { return (int)t >= CUDNN_DATA_FLOAT && (int)t <= CUDNN_DATA_FAST_FLOAT_FOR_FP8; }
bool valid_format(cudnnTensorFormat_t f) { return f == CUDNN_TENSOR_NCHW || f == CUDNN_TENSOR_NHWC || f == CUDNN_TENSOR_NCHW_VECT_C; }

cudnnStatus_t check_float_nchw(const char* call, cudnnTensorFormat_t format, cudnnDataType_t type) {
    if (!valid_format(format)) return fail(CUDNN_STATUS_BAD_PARAM, call, "invalid tensor format %d", (int)format);
    if (!valid_data_type(type)) return fail(CUDNN_STATUS_BAD_PARAM, call, "invalid data type %d", (int)type);
    if (format == CUDNN_TENSOR_NCHW_VECT_C)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "CUDNN_TENSOR_NCHW_VECT_C needs a vectorized data type, not %d", (int)type);
    if (format != CUDNN_TENSOR_NCHW || (type != CUDNN_DATA_FLOAT && type != CUDNN_DATA_BFLOAT16))
        emu::fatal("%s: format %d, data type %d: the emulated cuDNN implements only CUDNN_TENSOR_NCHW with "
                   "CUDNN_DATA_FLOAT or CUDNN_DATA_BFLOAT16", call, (int)format, (int)type);
    return CUDNN_STATUS_SUCCESS;
}

// Four dimensions, each > 0, at most 2^31 - 1 elements in all (cuDNN's limit: NOT_SUPPORTED beyond).
cudnnStatus_t check_dims(const char* call, const char* what, const int d[4], const char* names) {
    for (int i = 0; i < 4; i++)
        if (d[i] <= 0)
            return fail(CUDNN_STATUS_BAD_PARAM, call, "%s dimension %c = %d must be positive", what, names[i], d[i]);
    double total = (double)d[0] * d[1] * d[2] * d[3];
    if (total > 2147483647.0)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "%s has %.0f elements, more than 2^31 - 1", what, total);
    return CUDNN_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// A convolution problem: everything a computation needs, by value.

enum Dir { FWD, BWD_DATA, BWD_FILTER };

struct Problem {
    int n, c, h, w;   // x (dx for backward data)
    int k, cg, r, s;  // filter (dw for backward filter); cg = c / groups
    int oh, ow;       // y's (dy's) height and width; y is (n, k, oh, ow)
    int groups;
    int pad_h, pad_w, stride_h, stride_w, dil_h, dil_w;
    bool flip;        // CUDNN_CONVOLUTION: the filter is applied rotated by 180 degrees
    bool tf32;        // the math type allows tensor ops: products of TF32-rounded factors
    cudnnMathType_t math;
    bool bf16;        // x, w and y are bf16 (FP32 compute): 2-byte elements, the result rounded to bf16
    size_t x_elems() const { return (size_t)n * c * h * w; }
    size_t w_elems() const { return (size_t)k * cg * r * s; }
    size_t y_elems() const { return (size_t)n * k * oh * ow; }
};

// The descriptors' names in each direction's signature, for messages.
const char* x_name(Dir d) { return d == BWD_DATA ? "dxDesc" : "xDesc"; }
const char* y_name(Dir d) { return d == FWD ? "yDesc" : "dyDesc"; }
const char* w_name(Dir d) { return d == BWD_FILTER ? "dwDesc" : "wDesc"; }

// Output size along one spatial dimension (cudnnGetConvolution2dForwardOutputDim), or <= 0 when
// the dilated filter does not fit in the padded input.
int out_size(int in, int pad, int filter, int dil, int stride) {
    int span = (filter - 1) * dil + 1;
    int padded = in + 2 * pad;
    return padded < span ? 0 : (padded - span) / stride + 1;
}

// Checks x, filter and convolution against each other (as cudnnGetConvolution2dForwardOutputDim).
cudnnStatus_t check_conv(const char* call, Dir d, const cudnnTensorStruct* x, const cudnnFilterStruct* f,
                         const cudnnConvolutionStruct* cv) {
    if (!x->set) return fail(CUDNN_STATUS_BAD_PARAM, call, "%s was created but never set", x_name(d));
    if (!f->set) return fail(CUDNN_STATUS_BAD_PARAM, call, "%s was created but never set", w_name(d));
    if (!cv->set) return fail(CUDNN_STATUS_BAD_PARAM, call, "convDesc was created but never set");
    if (x->c != f->c * cv->groups)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "%s has %d channels but %s has %d input channels per group x %d group%s = %d",
                    x_name(d), x->c, w_name(d), f->c, cv->groups, cv->groups == 1 ? "" : "s", f->c * cv->groups);
    if (out_size(x->h, cv->pad_h, f->r, cv->dil_h, cv->stride_h) <= 0 ||
        out_size(x->w, cv->pad_w, f->s, cv->dil_w, cv->stride_w) <= 0)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "the %dx%d filter (dilation %dx%d) is larger than the %dx%d input padded by %dx%d",
                    f->r, f->s, cv->dil_h, cv->dil_w, x->h, x->w, cv->pad_h, cv->pad_w);
    return CUDNN_STATUS_SUCCESS;
}

// Validates a handle and the four descriptors of a direction as the convolution calls, the
// workspace queries and the algorithm searches all do, and fills `p`.
cudnnStatus_t make_problem(const char* call, Dir d, cudnnHandle_t handle, cudnnTensorDescriptor_t xd,
                           cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd,
                           Problem* p) {
    REQUIRE(handle, call, "handle");
    REQUIRE(xd, call, x_name(d));
    REQUIRE(wd, call, w_name(d));
    REQUIRE(cd, call, "convDesc");
    REQUIRE(yd, call, y_name(d));
    cudnnStatus_t st = check_conv(call, d, xd, wd, cd);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    if (!yd->set) return fail(CUDNN_STATUS_BAD_PARAM, call, "%s was created but never set", y_name(d));
    // Mixed data types (say bf16 x and w with a float y) are no configuration the legacy API supports.
    if (xd->bf16 != wd->bf16 || xd->bf16 != yd->bf16)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "%s, %s and %s must have one data type (here %s, %s, %s)", x_name(d),
                    w_name(d), y_name(d), xd->bf16 ? "bf16" : "float", wd->bf16 ? "bf16" : "float",
                    yd->bf16 ? "bf16" : "float");
    if (wd->k % cd->groups != 0)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "%s has %d output channels, not a multiple of the group count %d",
                    w_name(d), wd->k, cd->groups);
    if (yd->n != xd->n)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "%s has %d images but %s has %d", y_name(d), yd->n, x_name(d), xd->n);
    if (yd->c != wd->k)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "%s has %d channels but %s has %d output channels", y_name(d), yd->c,
                    w_name(d), wd->k);
    int oh = out_size(xd->h, cd->pad_h, wd->r, cd->dil_h, cd->stride_h);
    int ow = out_size(xd->w, cd->pad_w, wd->s, cd->dil_w, cd->stride_w);
    // cuDNN's documentation lists this one under CUDNN_STATUS_NOT_SUPPORTED, not BAD_PARAM.
    if (yd->h != oh || yd->w != ow)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "%s is %dx%d but the convolution of the %dx%d input gives %dx%d",
                    y_name(d), yd->h, yd->w, xd->h, xd->w, oh, ow);
    *p = Problem{xd->n, xd->c, xd->h, xd->w, wd->k, wd->c, wd->r, wd->s, oh, ow, cd->groups,
                 cd->pad_h, cd->pad_w, cd->stride_h, cd->stride_w, cd->dil_h, cd->dil_w,
                 cd->mode == CUDNN_CONVOLUTION, cd->math != CUDNN_FMA_MATH && !xd->bf16, cd->math, xd->bf16};
    return CUDNN_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// The algorithm model.
//
// Every algorithm of cuDNN's enums is one of these kinds; a kind decides support and workspace.
enum Kind {
    IMPLICIT,          // implicit GEMM: every shape, no workspace
    PRECOMP,           // implicit GEMM with precomputed indices: every shape, a small index table
    EXPLICIT,          // explicit im2col + GEMM: every shape, one image's column matrix
    FFT,               // whole-image FFT: stride 1, no dilation, filter > pad, padded input <= 256
    FFT_TILING,        // 32x32-tile FFT: stride 1, no dilation, filter <= 32 and > pad
    WINOGRAD,          // fused Winograd: 3x3, stride 1, no dilation, one group; no workspace
    WINOGRAD_NONFUSED, // Winograd with transformed tensors in the workspace: 3x3 or 5x5, stride 1, no dilation, one group
    NEVER,             // DIRECT and backward-filter WINOGRAD: listed by cuDNN, supported for no shape
};

struct Algo {
    Kind kind;
    bool deterministic;
};

// Indexed by cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t.
const Algo fwd_algos[CUDNN_CONVOLUTION_FWD_ALGO_COUNT] = {
    {IMPLICIT, true}, {PRECOMP, true}, {EXPLICIT, true}, {NEVER, true},
    {FFT, true}, {FFT_TILING, true}, {WINOGRAD, true}, {WINOGRAD_NONFUSED, true}};
const Algo bwd_data_algos[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT] = {
    {IMPLICIT, false}, {PRECOMP, true}, {FFT, true}, {FFT_TILING, true}, {WINOGRAD, true}, {WINOGRAD_NONFUSED, true}};
const Algo bwd_filter_algos[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT] = {
    {IMPLICIT, false}, {EXPLICIT, true}, {FFT, true}, {PRECOMP, false}, {NEVER, true}, {WINOGRAD_NONFUSED, true},
    {FFT_TILING, true}};

int algo_count(Dir d) {
    return d == FWD ? (int)CUDNN_CONVOLUTION_FWD_ALGO_COUNT
         : d == BWD_DATA ? (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT : (int)CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
}
const Algo& algo_info(Dir d, int a) { return (d == FWD ? fwd_algos : d == BWD_DATA ? bwd_data_algos : bwd_filter_algos)[a]; }

// Get*Algorithm_v7's fixed "heuristic" order. The backward lists start with a non-deterministic
// algorithm, as cuDNN's heuristics often do, so that a caller's determinism filter is exercised.
const int fwd_heuristic[] = {6, 1, 0, 7, 5, 2, 4, 3};
const int bwd_data_heuristic[] = {0, 1, 4, 5, 3, 2};
const int bwd_filter_heuristic[] = {0, 1, 3, 5, 6, 2, 4};
const int* heuristic_order(Dir d) { return d == FWD ? fwd_heuristic : d == BWD_DATA ? bwd_data_heuristic : bwd_filter_heuristic; }

size_t next_pow2(size_t v) {
    size_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

// Whether algorithm `a` of direction `d` supports `p`; if so its workspace bytes go to *ws, if not
// the reason goes to *why.
bool algo_support(Dir d, int a, const Problem& p, size_t* ws, const char** why) {
    const size_t n = p.n, c = p.c, k = p.k, cg = p.cg, rs = (size_t)p.r * p.s, oh = p.oh, ow = p.ow;
    const bool unit = p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1;
    const bool fits_pad = p.r > p.pad_h && p.s > p.pad_w;
    *ws = 0;
    const Kind kind = algo_info(d, a).kind;
    if (p.bf16 && (kind == FFT || kind == FFT_TILING || kind == WINOGRAD || kind == WINOGRAD_NONFUSED))
        return *why = "the FFT and Winograd algorithms take float or half data, not bf16", false;
    switch (kind) {
    case IMPLICIT: return true;
    case PRECOMP: *ws = 2 * sizeof(int) * cg * rs + 256; return true;
    case EXPLICIT: *ws = sizeof(float) * c * rs * oh * ow; return true;
    case FFT: {
        if (!unit || !fits_pad) return *why = "FFT needs stride 1, no dilation and a filter larger than the padding", false;
        size_t fh = next_pow2((size_t)p.h + 2 * p.pad_h), fw = next_pow2((size_t)p.w + 2 * p.pad_w);
        if (fh > 256 || fw > 256) return *why = "FFT needs a padded input of at most 256x256", false;
        // Complex spectra of x, w and y, all at once.
        *ws = 8 * fh * (fw / 2 + 1) * (n * c + k * cg + n * k);
        return true;
    }
    case FFT_TILING: {
        if (!unit || !fits_pad || p.r > 32 || p.s > 32)
            return *why = "FFT_TILING needs stride 1, no dilation and a filter larger than the padding, at most 32x32", false;
        size_t tiles = ((size_t)p.h + 31) / 32 * (((size_t)p.w + 31) / 32);
        *ws = 8 * 32 * 17 * (k * cg + (c + k) * tiles);
        return true;
    }
    case WINOGRAD:
        if (!unit || p.r != 3 || p.s != 3 || p.groups != 1)
            return *why = "WINOGRAD needs a 3x3 filter, stride 1, no dilation and one group", false;
        return true;
    case WINOGRAD_NONFUSED: {
        if (!unit || p.r != p.s || (p.r != 3 && p.r != 5) || p.groups != 1)
            return *why = "WINOGRAD_NONFUSED needs a 3x3 or 5x5 filter, stride 1, no dilation and one group", false;
        size_t tile = p.r == 3 ? 36 : 64, tiles = (oh + 3) / 4 * ((ow + 3) / 4);
        *ws = sizeof(float) * tile * (n * c * tiles + k * c + n * k * tiles);
        return true;
    }
    case NEVER: break;
    }
    *why = "this algorithm is not implemented for any shape";
    return false;
}

// FNV-1a over the problem and the algorithm: the "measured" time of cudnnFind, reproducible.
float pseudo_time_ms(Dir d, int a, const Problem& p) {
    const int fields[] = {(int)d, a, p.n, p.c, p.h, p.w, p.k, p.cg, p.r, p.s, p.groups, p.pad_h, p.pad_w,
                          p.stride_h, p.stride_w, p.dil_h, p.dil_w, (int)p.math};
    uint64_t h = 1469598103934665603ull;
    for (int f : fields)
        for (int b = 0; b < 4; b++) h = (h ^ ((unsigned)f >> (8 * b) & 0xff)) * 1099511628211ull;
    double flops = 2.0 * p.y_elems() * p.cg * p.r * p.s;
    return (float)((0.5 + (double)(h >> 11) / 9007199254740992.0) * (0.002 + flops / 2e10)); // ~20 TFLOP/s +- 2x
}

// Checks a requested algorithm for a convolution or workspace query.
cudnnStatus_t check_algo(const char* call, Dir d, int a, const Problem& p, size_t* ws) {
    if (a < 0 || a >= algo_count(d)) return fail(CUDNN_STATUS_BAD_PARAM, call, "algorithm %d is not a valid enumerant", a);
    const char* why = "";
    if (!algo_support(d, a, p, ws, &why)) return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "algorithm %d: %s", a, why);
    return CUDNN_STATUS_SUCCESS;
}

// cudnnFind*Algorithm (timed) and cudnnGet*Algorithm_v7 (heuristic) for any direction; Perf is
// the direction's perf struct (they differ only in the type of .algo).
template <typename Perf>
cudnnStatus_t list_algorithms(const char* call, Dir d, bool timed, cudnnHandle_t handle, cudnnTensorDescriptor_t xd,
                              cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd,
                              int requested, int* returned, Perf* perf) {
    Problem p;
    cudnnStatus_t st = make_problem(call, d, handle, xd, wd, cd, yd, &p);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    if (!returned || !perf) return fail(CUDNN_STATUS_BAD_PARAM, call, "returnedAlgoCount or perfResults is NULL");
    if (requested < 1) return fail(CUDNN_STATUS_BAD_PARAM, call, "requestedAlgoCount = %d must be at least 1", requested);
    if (timed) {
        // The non-Ex search synchronizes the device and allocates its own buffers with cudaMalloc, neither
        // of which a stream capture permits: CUDA would refuse it with cudaErrorStreamCaptureUnsupported
        // (and invalidate the capture), which cuDNN reports as a CUDA runtime execution failure.
        if (emu::is_capturing(0))
            return fail(CUDNN_STATUS_EXECUTION_FAILED_CUDART, call, "a stream is capturing a CUDA graph: the search's "
                        "device synchronization and cudaMalloc are not permitted (cudaErrorStreamCaptureUnsupported)");
        emu::flush_all();
    }
    const int count = algo_count(d);
    std::vector<Perf> all;
    for (int i = 0; i < count; i++) {
        int a = timed ? i : heuristic_order(d)[i];
        Perf e;
        memset(&e, 0, sizeof(e));
        e.algo = (decltype(e.algo))a;
        const char* why = "";
        size_t ws = 0;
        bool ok = algo_support(d, a, p, &ws, &why);
        e.status = ok ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_SUPPORTED;
        e.time = ok && timed ? pseudo_time_ms(d, a, p) : -1.0f;
        e.memory = ok ? ws : 0;
        e.determinism = algo_info(d, a).deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
        e.mathType = p.math;
        all.push_back(e);
    }
    // Supported first (stable: keeps the heuristic order), then by time when timed.
    std::stable_sort(all.begin(), all.end(), [timed](const Perf& a, const Perf& b) {
        bool oa = a.status == CUDNN_STATUS_SUCCESS, ob = b.status == CUDNN_STATUS_SUCCESS;
        if (oa != ob) return oa;
        return timed && oa && a.time < b.time;
    });
    int n = std::min(requested, count);
    std::copy(all.begin(), all.begin() + n, perf);
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// The computation.

// Calls row(xi, x_step, wi, yi, count) for every run of `count` (input element, filter element,
// output element) triples that meet in the convolution along an output row: y[yi + t] gets
// x[xi + t * x_step] * w[wi] for t < count. All three directions are sums over these same triples,
// each accumulating into a different one of the three tensors, so they share this loop; the runs
// keep the innermost loop contiguous in y (the emulator's time goes here).
template <typename Row> void for_each_row(const Problem& p, Row&& row) {
    const int kg = p.k / p.groups; // output channels per group
    for (int n = 0; n < p.n; n++)
        for (int g = 0; g < p.groups; g++)
            for (int kk = 0; kk < kg; kk++) {
                const int k = g * kg + kk;
                for (int cc = 0; cc < p.cg; cc++) {
                    const int c = g * p.cg + cc;
                    for (int r = 0; r < p.r; r++) {
                        const int wr = p.flip ? p.r - 1 - r : r;
                        for (int s = 0; s < p.s; s++) {
                            const int ws = p.flip ? p.s - 1 - s : s;
                            const size_t wi = (((size_t)k * p.cg + cc) * p.r + wr) * p.s + ws;
                            // Output columns whose input column iw = ow * stride - pad + s * dil is inside.
                            const int off = s * p.dil_w - p.pad_w;
                            int ow_lo = off >= 0 ? 0 : (-off + p.stride_w - 1) / p.stride_w;
                            int ow_hi = p.w - 1 - off < 0 ? -1 : (p.w - 1 - off) / p.stride_w;
                            if (ow_hi > p.ow - 1) ow_hi = p.ow - 1;
                            if (ow_lo > ow_hi) continue;
                            for (int oh = 0; oh < p.oh; oh++) {
                                const int ih = oh * p.stride_h - p.pad_h + r * p.dil_h;
                                if (ih < 0 || ih >= p.h) continue;
                                const size_t yi = (((size_t)n * p.k + k) * p.oh + oh) * p.ow + ow_lo;
                                const size_t xi = (((size_t)n * p.c + c) * p.h + ih) * p.w +
                                                  (size_t)(ow_lo * p.stride_w + off);
                                row(xi, (size_t)p.stride_w, wi, yi, ow_hi - ow_lo + 1);
                            }
                        }
                    }
                }
            }
}

// A copy of a device tensor as floats: bf16 elements widened (exactly), float ones TF32-rounded when
// the math type allows tensor ops.
std::vector<float> operand(const void* src, size_t n, bool tf32, bool bf16) {
    std::vector<float> v(n);
    if (bf16) {
        const uint16_t* h = (const uint16_t*)src;
        for (size_t i = 0; i < n; i++) v[i] = bf16_float(h[i]);
        return v;
    }
    memcpy(v.data(), src, n * sizeof(float));
    if (tf32)
        for (float& f : v) f = emu::round_tf32(f);
    return v;
}

uint64_t runs; // executions of non-deterministic algorithms, for their jitter

// Runs direction `d` on device memory (inside a submitted closure): the two inputs `a` and `b`
// (forward: x, w; backward data: dy, w; backward filter: x, dy) and the output `out`.
void convolve(Dir d, const Problem& p, const void* a, const void* b, void* out, double alpha, double beta,
              bool deterministic) {
    const size_t a_elems = d == BWD_DATA ? p.y_elems() : p.x_elems();
    const size_t b_elems = d == FWD || d == BWD_DATA ? p.w_elems() : p.y_elems();
    const size_t out_elems = d == FWD ? p.y_elems() : d == BWD_DATA ? p.x_elems() : p.w_elems();
    const std::vector<float> A = operand(a, a_elems, p.tf32, p.bf16), B = operand(b, b_elems, p.tf32, p.bf16);
    std::vector<double> acc(out_elems, 0.0);
    switch (d) {
    case FWD: // a = x, b = w
        for_each_row(p, [&](size_t xi, size_t xs, size_t wi, size_t yi, int count) {
            const double wv = B[wi];
            for (int t = 0; t < count; t++) acc[yi + t] += (double)A[xi + t * xs] * wv;
        });
        break;
    case BWD_DATA: // a = dy, b = w
        for_each_row(p, [&](size_t xi, size_t xs, size_t wi, size_t yi, int count) {
            const double wv = B[wi];
            for (int t = 0; t < count; t++) acc[xi + t * xs] += (double)A[yi + t] * wv;
        });
        break;
    case BWD_FILTER: // a = x, b = dy
        for_each_row(p, [&](size_t xi, size_t xs, size_t wi, size_t yi, int count) {
            double sum = 0.0;
            for (int t = 0; t < count; t++) sum += (double)A[xi + t * xs] * B[yi + t];
            acc[wi] += sum;
        });
        break;
    }
    const uint64_t run = ++runs;
    float* out_f = (float*)out;
    uint16_t* out_h = (uint16_t*)out;
    for (size_t i = 0; i < out_elems; i++) {
        // beta == 0: the old output is not read (it may be uninitialized or NaN).
        const double old = beta == 0.0 ? 0.0 : p.bf16 ? (double)bf16_float(out_h[i]) : (double)out_f[i];
        float v = (float)(alpha * acc[i] + beta * old);
        if (p.bf16) {
            // FP32 compute, then the result rounded to bf16; atomics' order shows as one bf16 step.
            uint16_t h = bf16_round(v);
            if (!deterministic && v != 0.0f && std::isfinite(bf16_float(h)) && (h & 0x7FFFu) != 0) {
                uint64_t r = (runs * 0x9E3779B97F4A7C15ull) ^ (i * 0xC2B2AE3D27D4EB4Full);
                r ^= r >> 29;
                r *= 0xBF58476D1CE4E5B9ull;
                r ^= r >> 32;
                const uint16_t next = (uint16_t)(r & 8 ? h + 1 : h - 1); // the neighbour above or below in magnitude
                if ((r & 7) == 0 && std::isfinite(bf16_float(next)) && (next & 0x8000u) == (h & 0x8000u) && (next & 0x7FFFu))
                    h = next;
            }
            out_h[i] = h;
            continue;
        }
        if (!deterministic && v != 0.0f && std::isfinite(v)) {
            // Atomics add in a different order at every run: one ulp either way on some elements.
            uint64_t h = (run * 0x9E3779B97F4A7C15ull) ^ (i * 0xC2B2AE3D27D4EB4Full);
            h ^= h >> 29;
            h *= 0xBF58476D1CE4E5B9ull;
            h ^= h >> 32;
            if ((h & 7) == 0) v = std::nextafter(v, (h & 8) ? INFINITY : -INFINITY);
        }
        out_f[i] = v;
    }
}

// A device buffer a convolution touches: its argument name, address and extent.
struct Buffer {
    const char* name;
    const void* ptr;
    size_t bytes;
};

// Not device memory covering the whole extent, or not float-aligned: a fault on a GPU. Checked at
// the call and again when the work runs (a captured graph may replay after a buffer was freed).
void require_device(const char* call, const Buffer& b) {
    if ((uintptr_t)b.ptr % sizeof(float) != 0)
        emu::fatal("%s: %s = %p is not aligned to 4 bytes (a misaligned address on a GPU)", call, b.name, b.ptr);
    if (!emu::is_device_range(b.ptr, b.bytes))
        emu::fatal("%s: %s = %p is not device memory covering the %zu bytes the call accesses (an illegal memory "
                   "access on a GPU)", call, b.name, b.ptr, b.bytes);
}

// An output overlapping an input: cuDNN convolutions are not in-place.
void require_disjoint(const char* call, const Buffer& out, const Buffer& in) {
    const char *o = (const char*)out.ptr, *i = (const char*)in.ptr;
    if (o < i + in.bytes && i < o + out.bytes)
        emu::fatal("%s: %s [%p, +%zu) overlaps %s [%p, +%zu): cuDNN convolutions are not in-place (undefined "
                   "results on a GPU)", call, out.name, out.ptr, out.bytes, in.name, in.ptr, in.bytes);
}

// alpha and beta of the legacy API are host pointers to float (for float data).
cudnnStatus_t read_scale(const char* call, const char* arg, const void* ptr, double* v) {
    if (!ptr) return fail(CUDNN_STATUS_BAD_PARAM, call, "%s is NULL", arg);
    if (emu::is_device_range(ptr, sizeof(float)))
        emu::fatal("%s: %s = %p points to device memory; cuDNN reads alpha and beta on the host (a segfault)", call, arg, ptr);
    *v = *(const float*)ptr;
    return CUDNN_STATUS_SUCCESS;
}

// The three convolution calls: validation, then one submitted closure.
//   a, b: the inputs (see convolve), out: the output; names for messages.
cudnnStatus_t run_convolution(const char* call, Dir d, cudnnHandle_t handle, const void* alpha_p,
                              cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd,
                              cudnnTensorDescriptor_t yd, int algo, void* workspace, size_t ws_bytes,
                              const void* beta_p, const void* a, const char* a_name, const void* b,
                              const char* b_name, void* out, const char* out_name) {
    Problem p;
    cudnnStatus_t st = make_problem(call, d, handle, xd, wd, cd, yd, &p);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    double alpha = 0, beta = 0;
    if ((st = read_scale(call, "alpha", alpha_p, &alpha)) != CUDNN_STATUS_SUCCESS) return st;
    if ((st = read_scale(call, "beta", beta_p, &beta)) != CUDNN_STATUS_SUCCESS) return st;
    if (!a || !b || !out)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "%s is NULL", !a ? a_name : !b ? b_name : out_name);
    size_t need = 0;
    if ((st = check_algo(call, d, algo, p, &need)) != CUDNN_STATUS_SUCCESS) return st;
    if (ws_bytes < need)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "algorithm %d needs %zu bytes of workspace but workSpaceSizeInBytes = %zu",
                    algo, need, ws_bytes);
    if (need > 0 && !workspace)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "workSpace is NULL but algorithm %d needs %zu bytes", algo, need);

    // What a GPU would touch. The caller's claim about its workspace must hold even where this
    // algorithm uses less of it; the part the algorithm uses must not overlap the tensors.
    const size_t F = p.bf16 ? sizeof(uint16_t) : sizeof(float);
    const Buffer A{a_name, a, F * (d == BWD_DATA ? p.y_elems() : p.x_elems())};
    const Buffer B{b_name, b, F * (d == BWD_FILTER ? p.y_elems() : p.w_elems())};
    const Buffer O{out_name, out, F * (d == FWD ? p.y_elems() : d == BWD_DATA ? p.x_elems() : p.w_elems())};
    const Buffer USED{"workspace", workspace, need};
    for (const Buffer& buf : {A, B, O}) require_device(call, buf);
    if (ws_bytes > 0) {
        if (!workspace) emu::fatal("%s: workSpace is NULL but workSpaceSizeInBytes = %zu", call, ws_bytes);
        if (!emu::is_device_range(workspace, ws_bytes))
            emu::fatal("%s: workspace = %p is not device memory covering workSpaceSizeInBytes = %zu bytes (an illegal "
                       "memory access on a GPU)", call, workspace, ws_bytes);
    }
    for (const Buffer& in : {A, B, USED}) require_disjoint(call, O, in);
    for (const Buffer& in : {A, B}) require_disjoint(call, USED, in);

    const bool deterministic = algo_info(d, algo).deterministic;
    emu::submit(handle->stream, call, [=] {
        for (const Buffer& buf : {A, B, O}) require_device(call, buf);
        // The algorithm's scratch: whatever it held before is garbage now (0xff bytes are NaNs).
        if (need > 0) {
            if (!emu::is_device_range(workspace, need))
                emu::fatal("%s: the workspace %p (%zu bytes) was freed before the work ran", call, workspace, need);
            memset(workspace, 0xff, need);
        }
        convolve(d, p, a, b, out, alpha, beta, deterministic);
    });
    return CUDNN_STATUS_SUCCESS;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Library, handle, errors

size_t cudnnGetVersion(void) { return CUDNN_VERSION; }

const char* cudnnGetErrorString(cudnnStatus_t status) {
    switch (status) {
#define NAME(s) case s: return #s;
        NAME(CUDNN_STATUS_SUCCESS)
        NAME(CUDNN_STATUS_NOT_INITIALIZED)
        NAME(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH)
        NAME(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH)
        NAME(CUDNN_STATUS_DEPRECATED)
        NAME(CUDNN_STATUS_LICENSE_ERROR)
        NAME(CUDNN_STATUS_RUNTIME_IN_PROGRESS)
        NAME(CUDNN_STATUS_RUNTIME_FP_OVERFLOW)
        NAME(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED)
        NAME(CUDNN_STATUS_BAD_PARAM)
        NAME(CUDNN_STATUS_INVALID_VALUE)
        NAME(CUDNN_STATUS_BAD_PARAM_NULL_POINTER)
        NAME(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER)
        NAME(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED)
        NAME(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND)
        NAME(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT)
        NAME(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH)
        NAME(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH)
        NAME(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES)
        NAME(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE)
        NAME(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH)
        NAME(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE)
        NAME(CUDNN_STATUS_NOT_SUPPORTED)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_SHAPE)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_PADDING)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API)
        NAME(CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE)
        NAME(CUDNN_STATUS_INTERNAL_ERROR)
        NAME(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED)
        NAME(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE)
        NAME(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED)
        NAME(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
        NAME(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM)
        NAME(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED)
        NAME(CUDNN_STATUS_EXECUTION_FAILED)
        NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER)
        NAME(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS)
        NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDART)
        NAME(CUDNN_STATUS_EXECUTION_FAILED_CURAND)
#undef NAME
    }
    return "CUDNN_UNKNOWN_STATUS_FOUND";
}

void cudnnGetLastErrorString(char* message, size_t max_size) {
    if (!message || max_size == 0) return;
    snprintf(message, max_size, "%s", last_error);
}

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
    if (!handle) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreate", "handle is NULL");
    *handle = make_live(new cudnnContext{0});
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) { return destroy(handle, "cudnnDestroy", "handle"); }

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream) {
    REQUIRE(handle, "cudnnSetStream", "handle");
    handle->stream = stream;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t* stream) {
    REQUIRE(handle, "cudnnGetStream", "handle");
    if (!stream) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetStream", "streamId is NULL");
    *stream = handle->stream;
    return CUDNN_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// Descriptors

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* desc) {
    if (!desc) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateTensorDescriptor", "tensorDesc is NULL");
    *desc = make_live(new cudnnTensorStruct{});
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t desc) {
    return destroy(desc, "cudnnDestroyTensorDescriptor", "tensorDesc");
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t desc, cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c, int h, int w) {
    const char* call = "cudnnSetTensor4dDescriptor";
    REQUIRE(desc, call, "tensorDesc");
    cudnnStatus_t st = check_float_nchw(call, format, type);
    const int d[4] = {n, c, h, w};
    if (st == CUDNN_STATUS_SUCCESS) st = check_dims(call, "the tensor", d, "nchw");
    if (st != CUDNN_STATUS_SUCCESS) return st;
    *desc = cudnnTensorStruct{true, n, c, h, w, type == CUDNN_DATA_BFLOAT16};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* desc) {
    if (!desc) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateFilterDescriptor", "filterDesc is NULL");
    *desc = make_live(new cudnnFilterStruct{});
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t desc) {
    return destroy(desc, "cudnnDestroyFilterDescriptor", "filterDesc");
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t desc, cudnnDataType_t type,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w) {
    const char* call = "cudnnSetFilter4dDescriptor";
    REQUIRE(desc, call, "filterDesc");
    cudnnStatus_t st = check_float_nchw(call, format, type);
    const int d[4] = {k, c, h, w};
    if (st == CUDNN_STATUS_SUCCESS) st = check_dims(call, "the filter", d, "kchw");
    if (st != CUDNN_STATUS_SUCCESS) return st;
    *desc = cudnnFilterStruct{true, k, c, h, w, type == CUDNN_DATA_BFLOAT16};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* desc) {
    if (!desc) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateConvolutionDescriptor", "convDesc is NULL");
    cudnnConvolutionStruct* cv = new cudnnConvolutionStruct{};
    cv->mode = CUDNN_CONVOLUTION;
    cv->groups = 1;
    cv->math = CUDNN_DEFAULT_MATH;
    *desc = make_live(cv);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t desc) {
    return destroy(desc, "cudnnDestroyConvolutionDescriptor", "convDesc");
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t desc, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
    const char* call = "cudnnSetConvolution2dDescriptor";
    REQUIRE(desc, call, "convDesc");
    if (pad_h < 0 || pad_w < 0) return fail(CUDNN_STATUS_BAD_PARAM, call, "padding %dx%d is negative", pad_h, pad_w);
    if (u <= 0 || v <= 0) return fail(CUDNN_STATUS_BAD_PARAM, call, "stride %dx%d must be positive", u, v);
    if (dilation_h <= 0 || dilation_w <= 0)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "dilation %dx%d must be positive", dilation_h, dilation_w);
    if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "invalid convolution mode %d", (int)mode);
    if (!valid_data_type(compute)) return fail(CUDNN_STATUS_BAD_PARAM, call, "invalid compute type %d", (int)compute);
    if (compute != CUDNN_DATA_FLOAT)
        emu::fatal("%s: compute type %d: the emulated cuDNN implements only CUDNN_DATA_FLOAT", call, (int)compute);
    desc->set = true;
    desc->pad_h = pad_h, desc->pad_w = pad_w, desc->stride_h = u, desc->stride_w = v;
    desc->dil_h = dilation_h, desc->dil_w = dilation_w, desc->mode = mode;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t desc, int groups) {
    const char* call = "cudnnSetConvolutionGroupCount";
    REQUIRE(desc, call, "convDesc");
    if (groups < 1) return fail(CUDNN_STATUS_BAD_PARAM, call, "groupCount = %d must be at least 1", groups);
    desc->groups = groups;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionGroupCount(cudnnConvolutionDescriptor_t desc, int* groups) {
    const char* call = "cudnnGetConvolutionGroupCount";
    REQUIRE(desc, call, "convDesc");
    if (!groups) return fail(CUDNN_STATUS_BAD_PARAM, call, "groupCount is NULL");
    *groups = desc->groups;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t desc, cudnnMathType_t math) {
    const char* call = "cudnnSetConvolutionMathType";
    REQUIRE(desc, call, "convDesc");
    if (math != CUDNN_DEFAULT_MATH && math != CUDNN_TENSOR_OP_MATH && math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
        math != CUDNN_FMA_MATH)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "invalid math type %d", (int)math);
    desc->math = math;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t desc, cudnnMathType_t* math) {
    const char* call = "cudnnGetConvolutionMathType";
    REQUIRE(desc, call, "convDesc");
    if (!math) return fail(CUDNN_STATUS_BAD_PARAM, call, "mathType is NULL");
    *math = desc->math;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t cd,
                                                    const cudnnTensorDescriptor_t xd, const cudnnFilterDescriptor_t wd,
                                                    int* n, int* c, int* h, int* w) {
    const char* call = "cudnnGetConvolution2dForwardOutputDim";
    REQUIRE(cd, call, "convDesc");
    REQUIRE(xd, call, "inputTensorDesc");
    REQUIRE(wd, call, "filterDesc");
    if (!n || !c || !h || !w) return fail(CUDNN_STATUS_BAD_PARAM, call, "an output pointer is NULL");
    cudnnStatus_t st = check_conv(call, FWD, xd, wd, cd);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    *n = xd->n;
    *c = wd->k;
    *h = out_size(xd->h, cd->pad_h, wd->r, cd->dil_h, cd->stride_h);
    *w = out_size(xd->w, cd->pad_w, wd->s, cd->dil_w, cd->stride_w);
    return CUDNN_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// Algorithm counts, searches and workspace sizes

static cudnnStatus_t max_count(const char* call, cudnnHandle_t handle, int* count, int value) {
    REQUIRE(handle, call, "handle");
    if (!count) return fail(CUDNN_STATUS_BAD_PARAM, call, "count is NULL");
    *count = value;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
    return max_count("cudnnGetConvolutionForwardAlgorithmMaxCount", handle, count, CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
    return max_count("cudnnGetConvolutionBackwardDataAlgorithmMaxCount", handle, count,
                     CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
    return max_count("cudnnGetConvolutionBackwardFilterAlgorithmMaxCount", handle, count,
                     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t handle, const cudnnTensorDescriptor_t xd,
                                                   const cudnnFilterDescriptor_t wd,
                                                   const cudnnConvolutionDescriptor_t cd,
                                                   const cudnnTensorDescriptor_t yd, const int requested,
                                                   int* returned, cudnnConvolutionFwdAlgoPerf_t* perf) {
    return list_algorithms("cudnnFindConvolutionForwardAlgorithm", FWD, true, handle, xd, wd, cd, yd, requested,
                           returned, perf);
}
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t xd,
                                                     const cudnnFilterDescriptor_t wd,
                                                     const cudnnConvolutionDescriptor_t cd,
                                                     const cudnnTensorDescriptor_t yd, const int requested,
                                                     int* returned, cudnnConvolutionFwdAlgoPerf_t* perf) {
    return list_algorithms("cudnnGetConvolutionForwardAlgorithm_v7", FWD, false, handle, xd, wd, cd, yd, requested,
                           returned, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(cudnnHandle_t handle, const cudnnFilterDescriptor_t wd,
                                                        const cudnnTensorDescriptor_t dyd,
                                                        const cudnnConvolutionDescriptor_t cd,
                                                        const cudnnTensorDescriptor_t dxd, const int requested,
                                                        int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
    return list_algorithms("cudnnFindConvolutionBackwardDataAlgorithm", BWD_DATA, true, handle, dxd, wd, cd, dyd,
                           requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t handle, const cudnnFilterDescriptor_t wd,
                                                          const cudnnTensorDescriptor_t dyd,
                                                          const cudnnConvolutionDescriptor_t cd,
                                                          const cudnnTensorDescriptor_t dxd, const int requested,
                                                          int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
    return list_algorithms("cudnnGetConvolutionBackwardDataAlgorithm_v7", BWD_DATA, false, handle, dxd, wd, cd, dyd,
                           requested, returned, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(cudnnHandle_t handle, const cudnnTensorDescriptor_t xd,
                                                          const cudnnTensorDescriptor_t dyd,
                                                          const cudnnConvolutionDescriptor_t cd,
                                                          const cudnnFilterDescriptor_t dwd, const int requested,
                                                          int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
    return list_algorithms("cudnnFindConvolutionBackwardFilterAlgorithm", BWD_FILTER, true, handle, xd, dwd, cd, dyd,
                           requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t xd,
                                                            const cudnnTensorDescriptor_t dyd,
                                                            const cudnnConvolutionDescriptor_t cd,
                                                            const cudnnFilterDescriptor_t dwd, const int requested,
                                                            int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
    return list_algorithms("cudnnGetConvolutionBackwardFilterAlgorithm_v7", BWD_FILTER, false, handle, xd, dwd, cd,
                           dyd, requested, returned, perf);
}

static cudnnStatus_t workspace_size(const char* call, Dir d, cudnnHandle_t handle, cudnnTensorDescriptor_t xd,
                                    cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd,
                                    cudnnTensorDescriptor_t yd, int algo, size_t* bytes) {
    Problem p;
    cudnnStatus_t st = make_problem(call, d, handle, xd, wd, cd, yd, &p);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    if (!bytes) return fail(CUDNN_STATUS_BAD_PARAM, call, "sizeInBytes is NULL");
    return check_algo(call, d, algo, p, bytes);
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xd,
                                                      const cudnnFilterDescriptor_t wd,
                                                      const cudnnConvolutionDescriptor_t cd,
                                                      const cudnnTensorDescriptor_t yd, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t* bytes) {
    return workspace_size("cudnnGetConvolutionForwardWorkspaceSize", FWD, handle, xd, wd, cd, yd, algo, bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle, const cudnnFilterDescriptor_t wd,
                                                           const cudnnTensorDescriptor_t dyd,
                                                           const cudnnConvolutionDescriptor_t cd,
                                                           const cudnnTensorDescriptor_t dxd,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
    return workspace_size("cudnnGetConvolutionBackwardDataWorkspaceSize", BWD_DATA, handle, dxd, wd, cd, dyd, algo,
                          bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xd,
                                                             const cudnnTensorDescriptor_t dyd,
                                                             const cudnnConvolutionDescriptor_t cd,
                                                             const cudnnFilterDescriptor_t dwd,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
    return workspace_size("cudnnGetConvolutionBackwardFilterWorkspaceSize", BWD_FILTER, handle, xd, dwd, cd, dyd, algo,
                          bytes);
}

// ---------------------------------------------------------------------------------------------
// The convolutions

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xd,
                                      const void* x, const cudnnFilterDescriptor_t wd, const void* w,
                                      const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo,
                                      void* workspace, size_t ws_bytes, const void* beta,
                                      const cudnnTensorDescriptor_t yd, void* y) {
    return run_convolution("cudnnConvolutionForward", FWD, handle, alpha, xd, wd, cd, yd, algo, workspace, ws_bytes,
                           beta, x, "x", w, "w", y, "y");
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha, const cudnnFilterDescriptor_t wd,
                                           const void* w, const cudnnTensorDescriptor_t dyd, const void* dy,
                                           const cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdDataAlgo_t algo,
                                           void* workspace, size_t ws_bytes, const void* beta,
                                           const cudnnTensorDescriptor_t dxd, void* dx) {
    return run_convolution("cudnnConvolutionBackwardData", BWD_DATA, handle, alpha, dxd, wd, cd, dyd, algo, workspace,
                           ws_bytes, beta, dy, "dy", w, "w", dx, "dx");
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xd,
                                             const void* x, const cudnnTensorDescriptor_t dyd, const void* dy,
                                             const cudnnConvolutionDescriptor_t cd,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workspace, size_t ws_bytes,
                                             const void* beta, const cudnnFilterDescriptor_t dwd, void* dw) {
    return run_convolution("cudnnConvolutionBackwardFilter", BWD_FILTER, handle, alpha, xd, dwd, cd, dyd, algo,
                           workspace, ws_bytes, beta, x, "x", dy, "dy", dw, "dw");
}
