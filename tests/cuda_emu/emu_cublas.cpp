// A strict CPU stand-in for the part of cuBLAS 13 the CUDA backend uses: the handle (stream,
// workspace, math mode, pointer mode), cublasSgemm, and cublasGemmEx for FP32 data or bf16 A and B
// with an FP32 C and FP32 compute (bf16 mixed precision). Compiled against the real <cublas_v2.h>,
// so cublasSgemm and friends are the _v2 entry points nvcc-compiled code links to.
//
// Strictness, as in emu_cudnn.cpp: arguments real cuBLAS rejects get its status
// (CUBLAS_STATUS_INVALID_VALUE for bad sizes, leading dimensions, operations, math modes); what
// would be undefined behaviour or a fault on a GPU aborts through emu::fatal (a matrix that is not
// device memory covering what the GEMM reads or writes, an output overlapping an input, a workspace
// freed while the handle still uses it, alpha/beta on the wrong side in the handle's pointer mode);
// what real cuBLAS accepts but this emulator does not implement aborts too, saying so.
//
// Numerics: column-major C = alpha * op(A) op(B) + beta * C, accumulated in double and rounded to
// float once; C is not read when beta == 0, A and B are not read when alpha == 0 or k == 0 (the BLAS
// convention cuBLAS follows). With CUBLAS_TF32_TENSOR_OP_MATH the elements of A and B are rounded to
// TF32 first; bf16 elements are widened exactly. Device memory is touched only inside the closure
// given to emu::submit.
#include <cublas_v2.h>

#include "emu.h"
#include "nn/bf16.h" // bf16_float: reading bf16 elements

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <set>
#include <vector>

// The opaque handle of <cublas_api.h>, defined here.
struct cublasContext {
    cudaStream_t stream;              // cublasSetStream; 0 = the legacy default stream
    void* workspace;                  // cublasSetWorkspace; NULL = cuBLAS's own pool
    size_t workspace_bytes;
    cublasMath_t math;                // cublasSetMathMode
    cublasPointerMode_t pointer_mode; // where alpha and beta live
};

namespace {

// Handles used after cublasDestroy would be a use after free in real cuBLAS.
std::set<const cublasContext*> live; // the emulator runs on one host thread (emu.h): no lock

// false for NULL (cuBLAS returns CUBLAS_STATUS_NOT_INITIALIZED); aborts for a dead handle.
bool check_handle(const cublasContext* h, const char* call) {
    if (!h) return false;
    if (!live.count(h)) emu::fatal("%s: handle %p was destroyed or never created (a use after free in real cuBLAS)", call, (const void*)h);
    return true;
}

#define REQUIRE_HANDLE(h, call)                                                                   \
    do {                                                                                          \
        if (!check_handle((h), (call))) return CUBLAS_STATUS_NOT_INITIALIZED;                     \
    } while (0)

// The math mode without its flag bit; what cublasSetMathMode accepts.
int base_math(int mode) { return mode & ~(int)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION; }
bool valid_math(int mode) {
    int b = base_math(mode);
    return b == CUBLAS_DEFAULT_MATH || b == CUBLAS_TENSOR_OP_MATH || b == CUBLAS_PEDANTIC_MATH ||
           b == CUBLAS_TF32_TENSOR_OP_MATH || b == CUBLAS_FP32_EMULATED_BF16X9_MATH ||
           b == CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH;
}

// A matrix argument: what the GEMM reads or writes of it, column-major, rows x cols with leading
// dimension ld: the last column needs only `rows` elements, the others `ld`.
struct Matrix {
    const char* name;
    const void* ptr;
    size_t bytes;
};
Matrix matrix(const char* name, const void* ptr, int rows, int cols, int ld, size_t elem_bytes) {
    size_t elems = rows == 0 || cols == 0 ? 0 : (size_t)ld * (cols - 1) + rows;
    return Matrix{name, ptr, elems * elem_bytes};
}

void require_device(const char* call, const Matrix& m) {
    if ((uintptr_t)m.ptr % sizeof(float) != 0)
        emu::fatal("%s: %s = %p is not aligned to 4 bytes (a misaligned address on a GPU)", call, m.name, m.ptr);
    if (!emu::is_device_range(m.ptr, m.bytes))
        emu::fatal("%s: %s = %p is not device memory covering the %zu bytes the GEMM accesses (an illegal memory "
                   "access on a GPU)", call, m.name, m.ptr, m.bytes);
}

void require_disjoint(const char* call, const Matrix& out, const Matrix& in) {
    const char *o = (const char*)out.ptr, *i = (const char*)in.ptr;
    if (o < i + in.bytes && i < o + out.bytes)
        emu::fatal("%s: %s [%p, +%zu) overlaps %s [%p, +%zu): GEMM is not in-place (undefined results on a GPU)",
                   call, out.name, out.ptr, out.bytes, in.name, in.ptr, in.bytes);
}

// The handle's workspace must still be the device memory it was when set.
void require_workspace(const char* call, const void* ws, size_t bytes) {
    if (bytes > 0 && !emu::is_device_range(ws, bytes))
        emu::fatal("%s: the handle's workspace %p (%zu bytes, cublasSetWorkspace) is no longer device memory: it "
                   "was freed while the handle still uses it", call, ws, bytes);
}

// `count` vectors of length `depth` taken from the column-major matrix M (leading dimension ld),
// packed densely: vector i, element l is M[i * ld + l] when `contiguous` (vector i is column i of
// M), else M[i + l * ld] (vector i is row i of M). bf16 elements (bf16) are widened; float ones
// TF32-rounded on request. The GEMM gathers op(A) as its m rows and op(B) as its n columns, so that
// each C element is one dot product.
std::vector<float> gather(const void* M, bool bf16, int ld, bool contiguous, int count, int depth, bool tf32) {
    std::vector<float> v((size_t)count * depth);
    for (int i = 0; i < count; i++)
        for (int l = 0; l < depth; l++) {
            size_t at = contiguous ? (size_t)i * ld + l : i + (size_t)l * ld;
            float e = bf16 ? bf16_float(((const uint16_t*)M)[at]) : ((const float*)M)[at];
            v[(size_t)i * depth + l] = tf32 && !bf16 ? emu::round_tf32(e) : e;
        }
    return v;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Status strings (cuBLAS's own wording)

const char* cublasGetStatusName(cublasStatus_t status) {
    switch (status) {
#define NAME(s) case s: return #s;
        NAME(CUBLAS_STATUS_SUCCESS)
        NAME(CUBLAS_STATUS_NOT_INITIALIZED)
        NAME(CUBLAS_STATUS_ALLOC_FAILED)
        NAME(CUBLAS_STATUS_INVALID_VALUE)
        NAME(CUBLAS_STATUS_ARCH_MISMATCH)
        NAME(CUBLAS_STATUS_MAPPING_ERROR)
        NAME(CUBLAS_STATUS_EXECUTION_FAILED)
        NAME(CUBLAS_STATUS_INTERNAL_ERROR)
        NAME(CUBLAS_STATUS_NOT_SUPPORTED)
        NAME(CUBLAS_STATUS_LICENSE_ERROR)
#undef NAME
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
    }
    return "unknown error";
}

// ---------------------------------------------------------------------------------------------
// The handle

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    cublasContext* h = new cublasContext{0, nullptr, 0, CUBLAS_DEFAULT_MATH, CUBLAS_POINTER_MODE_HOST};
    live.insert(h);
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    REQUIRE_HANDLE(handle, "cublasDestroy");
    live.erase(handle);
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

// Like cuBLAS, setting the stream also resets the workspace to cuBLAS's own pool: a user workspace
// must be set again after it.
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
    REQUIRE_HANDLE(handle, "cublasSetStream");
    handle->stream = stream;
    handle->workspace = nullptr;
    handle->workspace_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* stream) {
    REQUIRE_HANDLE(handle, "cublasGetStream");
    if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

// The workspace must be 256-byte aligned (else CUBLAS_STATUS_INVALID_VALUE, as documented) and
// device memory of the given size (else cuBLAS would fault when it uses it); size 0 means none.
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t bytes) {
    REQUIRE_HANDLE(handle, "cublasSetWorkspace");
    if (bytes > 0) {
        if (!workspace || (uintptr_t)workspace % 256 != 0) return CUBLAS_STATUS_INVALID_VALUE;
        if (!emu::is_device_range(workspace, bytes))
            emu::fatal("cublasSetWorkspace: workspace = %p is not device memory covering %zu bytes (cuBLAS would "
                       "fault using it)", workspace, bytes);
    }
    handle->workspace = bytes > 0 ? workspace : nullptr;
    handle->workspace_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    REQUIRE_HANDLE(handle, "cublasSetMathMode");
    if (!valid_math(mode)) return CUBLAS_STATUS_INVALID_VALUE;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
    REQUIRE_HANDLE(handle, "cublasGetMathMode");
    if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->math;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
    REQUIRE_HANDLE(handle, "cublasSetPointerMode");
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
    handle->pointer_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t* mode) {
    REQUIRE_HANDLE(handle, "cublasGetPointerMode");
    if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->pointer_mode;
    return CUBLAS_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// SGEMM: C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C, column-major.

namespace {

// Both GEMMs: FP32 C and scalars; A and B float, or both bf16 (ab_bf16).
cublasStatus_t gemm(const char* call, cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                    int n, int k, const float* alpha, const void* A, int lda, const void* B, int ldb, bool ab_bf16,
                    const float* beta, float* C, int ldc) {
    REQUIRE_HANDLE(handle, call);
    // For real data CUBLAS_OP_C is CUBLAS_OP_T; CUBLAS_OP_CONJG and anything else are invalid.
    auto valid_op = [](cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; };
    if (!valid_op(transa) || !valid_op(transb)) return CUBLAS_STATUS_INVALID_VALUE;
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    const int a_rows = ta ? k : m, a_cols = ta ? m : k; // A as stored
    const int b_rows = tb ? n : k, b_cols = tb ? k : n;
    if (lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m)) return CUBLAS_STATUS_INVALID_VALUE;
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS; // nothing to compute, nothing read

    const int math = base_math(handle->math);
    if (math == CUBLAS_TENSOR_OP_MATH)
        emu::fatal("%s: CUBLAS_TENSOR_OP_MATH (deprecated: may down-convert FP32 inputs to FP16) is not emulated", call);
    // DEFAULT and PEDANTIC are strict FP32; BF16x9 emulates FP32 to FP32 accuracy; FP64 emulation does not apply.
    const bool tf32 = math == CUBLAS_TF32_TENSOR_OP_MATH;

    // alpha and beta: read now in host pointer mode, at execution in device pointer mode.
    const bool device_scalars = handle->pointer_mode == CUBLAS_POINTER_MODE_DEVICE;
    float alpha_v = 0, beta_v = 0;
    if (device_scalars) {
        require_device(call, Matrix{"alpha (device pointer mode)", alpha, sizeof(float)});
        require_device(call, Matrix{"beta (device pointer mode)", beta, sizeof(float)});
    } else {
        for (const float* s : {alpha, beta})
            if (emu::is_device_range(s, sizeof(float)))
                emu::fatal("%s: %s = %p is device memory but the handle is in CUBLAS_POINTER_MODE_HOST (a segfault)",
                           call, s == alpha ? "alpha" : "beta", (const void*)s);
        alpha_v = *alpha;
        beta_v = *beta;
    }

    // What the GPU touches: C always (written); A and B unless alpha == 0 or k == 0 (known only in
    // host pointer mode, so in device mode they must always be valid).
    const bool reads_ab = device_scalars || (k > 0 && alpha_v != 0.0f);
    const size_t ab_bytes = ab_bf16 ? sizeof(uint16_t) : sizeof(float);
    const Matrix MA = matrix("A", A, a_rows, a_cols, lda, ab_bytes), MB = matrix("B", B, b_rows, b_cols, ldb, ab_bytes);
    const Matrix MC = matrix("C", C, m, n, ldc, sizeof(float));
    require_device(call, MC);
    if (reads_ab) {
        require_device(call, MA);
        require_device(call, MB);
        require_disjoint(call, MC, MA);
        require_disjoint(call, MC, MB);
    }
    const void* ws = handle->workspace;
    const size_t ws_bytes = handle->workspace_bytes;
    require_workspace(call, ws, ws_bytes);

    emu::submit(handle->stream, call, [=] {
        require_workspace(call, ws, ws_bytes);
        const double al = device_scalars ? *alpha : alpha_v, be = device_scalars ? *beta : beta_v;
        const bool use_ab = k > 0 && al != 0.0;
        // op(A) as m rows of length k, op(B) as n columns of length k.
        std::vector<float> a_rows_v, b_cols_v;
        if (use_ab) {
            a_rows_v = gather(A, ab_bf16, lda, ta, m, k, tf32);  // op(A)(i, l) = ta ? A[l + i*lda] : A[i + l*lda]
            b_cols_v = gather(B, ab_bf16, ldb, !tb, n, k, tf32); // op(B)(l, j) = tb ? B[j + l*ldb] : B[l + j*ldb]
        }
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double acc = 0.0;
                if (use_ab) {
                    const float* ar = &a_rows_v[(size_t)i * k];
                    const float* bc = &b_cols_v[(size_t)j * k];
                    for (int l = 0; l < k; l++) acc += (double)ar[l] * bc[l];
                }
                float& c = C[i + (size_t)j * ldc];
                // beta == 0: C is not read (it may hold NaN).
                c = (float)(al * acc + (be != 0.0 ? be * (double)c : 0.0));
            }
    });
    return CUBLAS_STATUS_SUCCESS;
}

} // namespace

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                              int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                              const float* beta, float* C, int ldc) {
    return gemm("cublasSgemm", handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, false, beta, C, ldc);
}

// GEMM with explicit types: emulated for all-FP32 and for bf16 A and B with an FP32 C, both with
// CUBLAS_COMPUTE_32F (FP32 scalars). Other valid combinations exist in cuBLAS and abort here, saying so;
// A and B of different types are no combination cuBLAS supports (CUBLAS_STATUS_NOT_SUPPORTED).
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
    static const char call[] = "cublasGemmEx";
    REQUIRE_HANDLE(handle, call);
    if (Atype != Btype) return CUBLAS_STATUS_NOT_SUPPORTED;
    const bool bf16 = Atype == CUDA_R_16BF;
    if ((Atype != CUDA_R_32F && !bf16) || Ctype != CUDA_R_32F || computeType != CUBLAS_COMPUTE_32F)
        emu::fatal("%s: A/B type %d, C type %d, compute type %d: the emulated cuBLAS implements only FP32 A, B and C, or bf16 "
                   "A and B with an FP32 C, with CUBLAS_COMPUTE_32F", call, (int)Atype, (int)Ctype, (int)computeType);
    if (algo != CUBLAS_GEMM_DEFAULT && algo != CUBLAS_GEMM_DEFAULT_TENSOR_OP)
        emu::fatal("%s: algorithm %d: the emulator implements CUBLAS_GEMM_DEFAULT (and its tensor-op alias) only", call, (int)algo);
    return gemm(call, handle, transa, transb, m, n, k, (const float*)alpha, A, lda, B, ldb, bf16, (const float*)beta,
                (float*)C, ldc);
}
