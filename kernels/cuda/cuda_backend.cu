// The CUDA backend: device set-up, memory and error reporting (its table: cuda_table.c). Convolutions are
// in cuda_conv.cu (cuDNN), the linear layer in cuda_linear.cu (cuBLAS), the rest are our kernels.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"
#include "cuda_stream.h"

#if __has_include(<nvtx3/nvToolsExt.h>)
#include <nvtx3/nvToolsExt.h> // header-only NVTX 3: no library to link, a no-op without a profiler
#define HAVE_NVTX 1
#endif

CudaContext g_cuda;

#define DEFAULT_WORKSPACE_LIMIT ((size_t)256 << 20)
#define CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20) // cuBLAS would otherwise allocate its own lazily;
                                                  // 32 MiB: what NVIDIA advises for Hopper
#define RING_SLOTS 4                              // uploads in flight before the host waits
#define RING_SLOT_BYTES ((size_t)8 << 20)         // larger uploads go through the ring in chunks

// ---------------------------------------------------------------------------------------------
// Errors

const char* cuda_format_bytes(char* buf, size_t len, double bytes) {
    const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) bytes /= 1024.0, u++;
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
    return buf;
}

void cuda_fail(const char* file, int line, const char* lib, const char* call, const char* message,
               const char* detail) {
    fflush(stdout);
    fprintf(stderr, "error: %s:%d: %s call failed: %s\n  %s%s%s\n", file, line, lib, call, message,
            detail && *detail ? " | " : "", detail ? detail : "");
    if (!g_cuda.sync_debug)
        fprintf(stderr, "  (kernels run asynchronously: an error reported here may come from earlier "
                        "work; rerun with DRNET_CUDA_SYNC=1 to stop at the call that caused it)\n");
    exit(1);
}

void cuda_after_launch(const char* file, int line, const char* kernel) {
    char call[160];
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        snprintf(call, sizeof(call), "launch of kernel %s", kernel);
        cuda_fail(file, line, "CUDA", call, cudaGetErrorString(e), cudaGetErrorName(e));
    }
    if (g_cuda.sync_debug && !g_cuda.capturing) { // a capture cannot wait: graph_launch waits instead
        e = cudaStreamSynchronize(g_cuda.stream);
        if (e != cudaSuccess) {
            snprintf(call, sizeof(call), "kernel %s (while it ran)", kernel);
            cuda_fail(file, line, "CUDA", call, cudaGetErrorString(e), cudaGetErrorName(e));
        }
    }
}

void cuda_after_library(const char* file, int line, const char* call) {
    if (!g_cuda.sync_debug || g_cuda.capturing) return;
    cudaError_t e = cudaStreamSynchronize(g_cuda.stream);
    if (e != cudaSuccess) {
        char what[160];
        snprintf(what, sizeof(what), "%s (while it ran)", call);
        cuda_fail(file, line, "CUDA", what, cudaGetErrorString(e), cudaGetErrorName(e));
    }
}

void cuda_refuse_in_capture(const char* what) {
    if (!g_cuda.capturing) return;
    fflush(stdout);
    fprintf(stderr, "error: %s inside a CUDA graph capture: a captured step may only issue kernels and "
                    "library calls (run the first step eagerly, keep inputs at fixed addresses, or use "
                    "--cuda-graph off)\n", what);
    exit(1);
}

// ---------------------------------------------------------------------------------------------
// Memory

void* cuda_device_alloc(size_t bytes, const char* what) {
    cuda_refuse_in_capture("a device allocation");
    void* p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256);
    g_cuda.counters.allocs++;
    if (e == cudaSuccess && p) return p;
    if (e != cudaErrorMemoryAllocation) { // not a lack of memory: e.g. an earlier kernel faulted
        char call[160];
        snprintf(call, sizeof(call), "cudaMalloc of %zu bytes for %s", bytes, what);
        cuda_fail(__FILE__, __LINE__, "CUDA", call, cudaGetErrorString(e), cudaGetErrorName(e));
    }
    (void)cudaGetLastError(); // an allocation failure is not sticky: clear it before querying
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError(); // the message says 0 free
    char need[32], fr[32], tot[32];
    fflush(stdout);
    fprintf(stderr,
            "error: out of GPU memory: %s needs %s, but only %s of the GPU's %s are free (%s). "
            "Lower --batch or --width, or free the GPU of other processes.\n",
            what, cuda_format_bytes(need, sizeof(need), (double)bytes),
            cuda_format_bytes(fr, sizeof(fr), (double)free_b),
            cuda_format_bytes(tot, sizeof(tot), (double)total_b), cudaGetErrorString(e));
    exit(1);
}

void* cuda_alloc(size_t bytes, const char* what) { return cuda_device_alloc(bytes, what); }

void cuda_device_free(void* p) {
    if (!p) return;
    cuda_refuse_in_capture("freeing device memory");
    CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream)); // queued work may still use p
    CUDA_CHECK(cudaFree(p));
    g_cuda.counters.syncs++, g_cuda.counters.frees++;
}

void cuda_zero(void* p, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, g_cuda.stream));
}

// Uploads go through pinned staging slots, so that cudaMemcpyAsync is truly asynchronous and
// `src` may be reused as soon as upload returns. A slot is refilled only after the event recorded
// behind its previous copy has fired.
struct RingSlot {
    void* host;        // (RING_SLOT_BYTES) pinned
    cudaEvent_t done;  // recorded on the stream after the slot's latest copy
};
static RingSlot ring[RING_SLOTS];
static int ring_next;

void cuda_upload(void* dst, const void* src, size_t bytes) {
    const char* s = (const char*)src;
    char* d = (char*)dst;
    cuda_refuse_in_capture("an upload (the graph would replay the staging buffer's old contents)");
    while (bytes > 0) {
        size_t chunk = bytes < RING_SLOT_BYTES ? bytes : RING_SLOT_BYTES;
        RingSlot* slot = &ring[ring_next];
        ring_next = (ring_next + 1) % RING_SLOTS;
        // Count the waits that block (the query says "not ready"; a never-recorded event is ready).
        // Any other error the query returns is sticky and reported by the synchronize below.
        if (cudaEventQuery(slot->done) == cudaErrorNotReady) g_cuda.counters.ring_waits++;
        CUDA_CHECK(cudaEventSynchronize(slot->done));
        memcpy(slot->host, s, chunk);
        CUDA_CHECK(cudaMemcpyAsync(d, slot->host, chunk, cudaMemcpyHostToDevice, g_cuda.stream));
        CUDA_CHECK(cudaEventRecord(slot->done, g_cuda.stream));
        s += chunk, d += chunk, bytes -= chunk;
    }
}

void cuda_download(void* dst, const void* src, size_t bytes) {
    if (!bytes) return;
    cuda_refuse_in_capture("a download");
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g_cuda.stream));
    CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));
    g_cuda.counters.syncs++;
}

void cuda_copy(void* dst, const void* src, size_t bytes) {
    if (!bytes || dst == src) return;
    const char *d = (const char*)dst, *s = (const char*)src;
    if (d < s + bytes && s < d + bytes) {
        fprintf(stderr, "error: %s:%d: backend copy of %zu bytes between overlapping ranges (%p <- %p): "
                        "the CUDA backend's copy does not support overlap\n",
                __FILE__, __LINE__, bytes, dst, src);
        exit(1);
    }
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g_cuda.stream));
}

void cuda_synchronize(void) {
    cuda_refuse_in_capture("a synchronization");
    CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));
    g_cuda.counters.syncs++;
}

// ---------------------------------------------------------------------------------------------
// Profiling: events recorded on the stream, so timing an op never waits for the device.

void* cuda_event_create(void) {
    cudaEvent_t ev;
    CUDA_CHECK(cudaEventCreate(&ev)); // with timing
    return (void*)ev;
}

void cuda_event_destroy(void* ev) {
    if (ev) CUDA_CHECK(cudaEventDestroy((cudaEvent_t)ev));
}

void cuda_event_record(void* ev) { CUDA_CHECK(cudaEventRecord((cudaEvent_t)ev, g_cuda.stream)); }

float cuda_event_elapsed_ms(void* start, void* end) {
    float ms = 0.0f;
    cuda_refuse_in_capture("reading a timing event");
    CUDA_CHECK(cudaEventSynchronize((cudaEvent_t)end));
    g_cuda.counters.syncs++;
    CUDA_CHECK(cudaEventElapsedTime(&ms, (cudaEvent_t)start, (cudaEvent_t)end));
    return ms;
}

// Named ranges for Nsight Systems; without NVTX's header they do nothing (the table holds them either
// way: it is filled in C, which cannot see which headers nvcc found).
#ifdef HAVE_NVTX
void cuda_range_push(const char* name) { nvtxRangePushA(name); }
void cuda_range_pop(void) { nvtxRangePop(); }
#else
void cuda_range_push(const char* name) { (void)name; }
void cuda_range_pop(void) {}
#endif

extern "C" cudaStream_t drnet_cuda_stream(void) { return g_cuda.stream; }

// ---------------------------------------------------------------------------------------------
// Set-up

static __global__ void probe_kernel(int* out) { *out = 42; }

static int env_flag(const char* name) {
    const char* v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

// An on-by-default switch: only "0" turns it off.
static int env_flag_on(const char* name) {
    const char* v = getenv(name);
    return !(v && !strcmp(v, "0"));
}

#define INIT_CUDA(call)                                                                           \
    do {                                                                                          \
        cudaError_t e_ = (call);                                                                  \
        if (e_ != cudaSuccess) {                                                                  \
            (void)cudaGetLastError();                                                             \
            snprintf(err, errlen, "%s failed: %s (%s)", #call, cudaGetErrorString(e_),            \
                     cudaGetErrorName(e_));                                                       \
            return 1;                                                                             \
        }                                                                                         \
    } while (0)

// The current device (0 unless train/dist.c chose one), the stream, the library handles and the upload
// ring; once per process.
static int open_device(char* err, size_t errlen) {
    CudaContext* g = &g_cuda;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(err, errlen, "no usable CUDA device: cudaGetDeviceCount: %s (%s)", cudaGetErrorString(e),
                 cudaGetErrorName(e));
        return 1;
    }
    if (count == 0) {
        snprintf(err, errlen, "no CUDA device found (cudaGetDeviceCount returned 0)");
        return 1;
    }
    int dev = 0; // device 0, or the one train/dist.c made current for this process (one GPU per rank)
    INIT_CUDA(cudaGetDevice(&dev));
    INIT_CUDA(cudaSetDevice(dev));
    INIT_CUDA(cudaGetDeviceProperties(&g->prop, dev));
    INIT_CUDA(cudaStreamCreate(&g->stream));

    // One tiny kernel proves that this build has code for the device and that the context works.
    int* probe = NULL;
    int got = 0;
    INIT_CUDA(cudaMalloc(&probe, sizeof(int)));
    probe_kernel<<<1, 1, 0, g->stream>>>(probe);
    e = cudaGetLastError();
    if (e != cudaSuccess) {
        snprintf(err, errlen, "cannot run kernels on %s (sm_%d%d): %s (%s); this build targets "
                 "CMAKE_CUDA_ARCHITECTURES (default 80;90): rebuild with -DCMAKE_CUDA_ARCHITECTURES=%d%d",
                 g->prop.name, g->prop.major, g->prop.minor, cudaGetErrorString(e), cudaGetErrorName(e),
                 g->prop.major, g->prop.minor);
        return 1;
    }
    INIT_CUDA(cudaMemcpyAsync(&got, probe, sizeof(int), cudaMemcpyDeviceToHost, g->stream));
    INIT_CUDA(cudaStreamSynchronize(g->stream));
    INIT_CUDA(cudaFree(probe));
    if (got != 42) {
        snprintf(err, errlen, "a test kernel on %s did not run (read %d, expected 42)", g->prop.name, got);
        return 1;
    }

    size_t v = cudnnGetVersion();
    if ((int)(v / 10000) != CUDNN_MAJOR) {
        snprintf(err, errlen, "built against cuDNN %d.%d.%d but loaded cuDNN %zu.%zu.%zu", CUDNN_MAJOR,
                 CUDNN_MINOR, CUDNN_PATCHLEVEL, v / 10000, v % 10000 / 100, v % 100);
        return 1;
    }
    cudnnStatus_t ds = cudnnCreate(&g->cudnn);
    if (ds != CUDNN_STATUS_SUCCESS) {
        char detail[256] = "";
        CUDNN_LAST_ERROR(detail);
        snprintf(err, errlen, "cudnnCreate failed: %s %s", cudnnGetErrorString(ds), detail);
        return 1;
    }
    ds = cudnnSetStream(g->cudnn, g->stream);
    if (ds != CUDNN_STATUS_SUCCESS) {
        snprintf(err, errlen, "cudnnSetStream failed: %s", cudnnGetErrorString(ds));
        return 1;
    }
    cublasStatus_t bs = cublasCreate(&g->cublas);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetStream(g->cublas, g->stream);
    void* cublas_ws = NULL;
    if (bs == CUBLAS_STATUS_SUCCESS) {
        INIT_CUDA(cudaMalloc(&cublas_ws, CUBLAS_WORKSPACE_BYTES));
        bs = cublasSetWorkspace(g->cublas, cublas_ws, CUBLAS_WORKSPACE_BYTES); // after SetStream, which resets it
    }
    if (bs != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, errlen, "cuBLAS set-up failed: %s", cublasGetStatusString(bs));
        return 1;
    }

    for (int i = 0; i < RING_SLOTS; i++) {
        INIT_CUDA(cudaMallocHost(&ring[i].host, RING_SLOT_BYTES));
        INIT_CUDA(cudaEventCreateWithFlags(&ring[i].done, cudaEventDisableTiming));
    }
    g->sync_debug = env_flag("DRNET_CUDA_SYNC");
    g->verbose = env_flag("DRNET_CUDA_VERBOSE");
    g->initialized = 1;
    return 0;
}

// DRNET_CUDNN_ALGOS: which cuDNN convolution algorithms may be chosen (cuda_conv.cu).
//   all   (default) whatever the search ranks first
//   gemm  forward IMPLICIT_GEMM, IMPLICIT_PRECOMP_GEMM or GEMM; backward ALGO_1 (data and filter).
//         These sum each output as a plain dot product, so their FP32 (or TF32) rounding is that of a
//         direct convolution. The strict tests set it: FFT and Winograd round differently (FFT by
//         ~eps log n, Winograd by a transform-dependent factor), and whether cuDNN ranks one of them
//         first for a shape must not decide whether a 1e-5 bound holds.
// A setting from the environment among fixed words: *index is the position of the variable's value
// in names (unset or empty: 0, the default); any other value is an error naming the variable, the
// value and the choices.
static int env_choice(const char* name, const char* const* names, int count, int* index, char* err, size_t errlen) {
    const char* v = getenv(name);
    *index = 0;
    if (!v || !*v) return 0;
    for (int i = 0; i < count; i++)
        if (!strcmp(v, names[i])) return *index = i, 0;
    int n = snprintf(err, errlen, "%s=%s: expected %s (the default)", name, v, names[0]);
    for (int i = 1; i < count && n > 0 && (size_t)n < errlen; i++)
        n += snprintf(err + n, errlen - (size_t)n, "%s%s", i == count - 1 ? " or " : ", ", names[i]);
    return 1;
}

// DRNET_CUDA_BF16_DIRS (read at each init): with bf16 on, the convolution directions that run on
// cuDNN bf16 tensors, a comma-separated subset of fwd, data, filter (or none, the default); the
// others multiply bf16-valued FP32 copies in cuDNN's FP32 kernels (cuda_bf16.cu). Same operands,
// same FP32 sums; the bf16 tensors also round each result to bf16. It exists to measure: on an
// H200 with cuDNN 9.19 every direction on bf16 tensors made the step slower than FP32 with TF32
// (4.2 ms; forward alone 5.0, forward and backward-data 8.5, all three 19.6:
// docs/results/gpu-h200-2026-12-04b/bf16-dirs.log). No legacy-API backward-filter algorithm takes
// bf16 in NCHW (cuDNN logs "config != PSEUDO_HALF_CONFIG && config != FLOAT_CONFIG" for each).
static int read_bf16_dirs(char* err, size_t errlen) {
    const char* v = getenv("DRNET_CUDA_BF16_DIRS");
    if (!v || !*v) return g_cuda.bf16_conv_dirs = 0, 0;
    int dirs = 0;
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", v);
    for (char* t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        if (!strcmp(t, "fwd")) dirs |= 1 << CUDA_CONV_FWD;
        else if (!strcmp(t, "data")) dirs |= 1 << CUDA_CONV_BWD_DATA;
        else if (!strcmp(t, "filter")) dirs |= 1 << CUDA_CONV_BWD_FILTER;
        else if (strcmp(t, "none")) {
            snprintf(err, errlen, "DRNET_CUDA_BF16_DIRS=%s: expected a comma-separated subset of fwd, data, filter (or none)", v);
            return 1;
        }
    }
    g_cuda.bf16_conv_dirs = dirs;
    return 0;
}

// DRNET_CUDA_POINTWISE (read at each init): how 1x1 convolutions run (cuda_pointwise.cu). auto (the
// default): per shape and direction, the faster of cuDNN's fastest algorithm and one GEMM over the
// batch, both timed at the first step; gemm or cudnn force one, for the tests and for measuring.
static int read_pointwise(char* err, size_t errlen) {
    static const char* const names[] = {"auto", "gemm", "cudnn"};
    static const int values[] = {CUDA_POINTWISE_AUTO, CUDA_POINTWISE_GEMM, CUDA_POINTWISE_CUDNN};
    int i;
    if (env_choice("DRNET_CUDA_POINTWISE", names, 3, &i, err, errlen)) return 1;
    g_cuda.pointwise = values[i];
    return 0;
}

static int read_algo_filter(char* err, size_t errlen) {
    static const char* const names[] = {"all", "gemm"};
    int i;
    if (env_choice("DRNET_CUDNN_ALGOS", names, 2, &i, err, errlen)) return 1;
    g_cuda.gemm_only = i == 1;
    return 0;
}

// DRNET_CUDA_CAPTURE_MODE: the mode of the training step's graph capture (cuda_speed.cu).
//   global        (default) any unsafe call from any thread fails the capture, so nothing breaks it silently
//   thread-local  only this thread's unsafe calls do
//   relaxed       none do (a library call that would be refused in the other modes is let through)
// cuDNN's legacy calls are not documented as capture-safe in global mode; if a capture fails there,
// the same session retries with another mode without a rebuild (tests/device/speed.sh does).
static int read_capture_mode(char* err, size_t errlen) {
    static const char* const names[] = {"global", "thread-local", "relaxed"};
    static const cudaStreamCaptureMode values[] = {cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal,
                                                   cudaStreamCaptureModeRelaxed};
    int i;
    if (env_choice("DRNET_CUDA_CAPTURE_MODE", names, 3, &i, err, errlen)) return 1;
    g_cuda.capture_mode = values[i];
    return 0;
}

// DRNET_CUDA_REPORT=1: at exit, every convolution shape with the algorithm (or the GEMM over the
// batch, cuda_pointwise.cu) each direction ran, on stderr: what a per-layer profile (--profile) does
// not show. The plans are never destroyed, so the report can run after everything else.
static void conv_report_at_exit(void) { drnet_cuda_conv_report(stderr); }

// May be called again (tests switch TF32): the device stays, the options change. Convolution
// algorithms are cached per TF32 setting, so both settings can be used in one process.
int cuda_init(const BackendOptions* opt, char* err, size_t errlen) {
    if (read_algo_filter(err, errlen) || read_capture_mode(err, errlen) || read_bf16_dirs(err, errlen) ||
        read_pointwise(err, errlen))
        return 1;
    if (!g_cuda.initialized && open_device(err, errlen) != 0) return 1;
    static int report_registered;
    if (env_flag("DRNET_CUDA_REPORT") && !report_registered) report_registered = !atexit(conv_report_at_exit);
    g_cuda.tf32 = opt && opt->tf32;
    g_cuda.bf16 = opt && opt->bf16; // cuda_bf16.cu
    // On since the first GPU run (an H200): the split kernels matched the CPU there (test_cuda_ops with
    // the split) and took the training step from 8.6 to 6.3 ms (docs/results/gpu-h200-2026-12-04/).
    // DRNET_CUDA_BN_SPLIT=0 gives the one-block-per-channel kernels; read per init, so that a test
    // can compare both.
    g_cuda.bn_split = env_flag_on("DRNET_CUDA_BN_SPLIT");
    g_cuda.deterministic = opt && opt->deterministic;
    g_cuda.workspace_limit = opt && opt->workspace_limit ? opt->workspace_limit : DEFAULT_WORKSPACE_LIMIT;
    // The flag covers cuBLAS too (nn/backend.h). PyTorch's own default for matmuls is strict FP32
    // (torch.backends.cuda.matmul.allow_tf32 = False); our only GEMM is the classifier, 0.02% of
    // the FLOPs, so the choice changes neither speed nor accuracy measurably.
    CUBLAS_CHECK(cublasSetMathMode(g_cuda.cublas, g_cuda.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    return 0;
}

void cuda_describe(char* buf, size_t len) {
    const cudaDeviceProp* p = &g_cuda.prop;
    int runtime = 0, driver = 0;
    // Shown only: a failure leaves 0.0, which the line then reports.
    if (cudaRuntimeGetVersion(&runtime) != cudaSuccess) runtime = 0, (void)cudaGetLastError();
    if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0, (void)cudaGetLastError();
    size_t v = cudnnGetVersion();
    char ws[32];
    snprintf(buf, len,
             "CUDA: %s (sm_%d%d, %d SMs, %.1f GiB), runtime %d.%d, driver %d.%d, cuDNN %zu.%zu.%zu, "
             "TF32 %s%s, %s cuDNN algorithms%s, conv workspace limit %s%s",
             p->name, p->major, p->minor, p->multiProcessorCount, (double)p->totalGlobalMem / (1 << 30),
             runtime / 1000, runtime % 1000 / 10, driver / 1000, driver % 1000 / 10, v / 10000,
             v % 10000 / 100, v % 100, g_cuda.tf32 ? "on" : "off",
             !g_cuda.bf16 ? "" : g_cuda.bf16_conv_dirs == 0
                 ? ", bf16 mixed precision (conv and GEMM operands rounded to bf16, FP32 sums; convolutions in "
                   "cuDNN's FP32 kernels on the bf16 values)"
                 : ", bf16 mixed precision (conv and GEMM operands rounded to bf16, FP32 sums; some convolution "
                   "directions on cuDNN bf16 tensors, results rounded to bf16: DRNET_CUDA_BF16_DIRS)",
             g_cuda.deterministic ? "deterministic (heuristic)" : "measured (fastest)",
             g_cuda.gemm_only ? " limited to GEMM-like ones (DRNET_CUDNN_ALGOS=gemm)" : "",
             cuda_format_bytes(ws, sizeof(ws), (double)g_cuda.workspace_limit),
             g_cuda.pointwise == CUDA_POINTWISE_GEMM    ? ", 1x1 convolutions as one GEMM over the batch (DRNET_CUDA_POINTWISE=gemm)"
             : g_cuda.pointwise == CUDA_POINTWISE_CUDNN ? ", 1x1 convolutions by cuDNN only (DRNET_CUDA_POINTWISE=cudnn)"
                                                        : "");
}

// (The backend table is cuda_table.c: C99 designated initializers, which C++17 lacks.)
