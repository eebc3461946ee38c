// Computes the inner sums of kernels/ref/ref_conv.c and ref_linear_* faster: the GEMM's operand
// views, which let it read a convolution's tensors in place.
//
// The CPU GEMM's internal interface: operand views, packing and the micro-kernels.
//
// C (M, N) = alpha * A (M, K) * B (K, N) + beta * C, computed the BLIS way: A is copied ("packed")
// into panels of MR rows and B into panels of NR columns, both k-major, so that a register-blocked
// micro-kernel computes an MR x NR tile of C from two contiguous streams. Packing is also where the
// layout is absorbed: an operand is described by a view (below) or by its own packer (im2col of a
// convolution input), never by a copy made beforehand.
#ifndef KERNELS_CPU_GEMM_H
#define KERNELS_CPU_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../nn/bf16.h"

// How an index i along one dimension of a matrix maps to memory: inside a block of `block`
// consecutive indices they are `stride` apart; blocks are `block_stride` apart.
//   offset(i) = (i / block) * block_stride + (i % block) * stride
// A plain dimension has one block (block = 0 means "unbounded"). This is what lets a GEMM see a
// whole NCHW batch as one matrix: for x (n, c, h, w), the matrix (c, n*h*w) has rows {stride h*w}
// and columns {stride 1, block h*w, block_stride c*h*w}.
typedef struct GemmAxis {
    ptrdiff_t stride;
    int block;
    ptrdiff_t block_stride;
} GemmAxis;

static inline ptrdiff_t gemm_offset(const GemmAxis* a, int i) {
    if (a->block <= 0) return (ptrdiff_t)i * a->stride;
    return (ptrdiff_t)(i / a->block) * a->block_stride + (ptrdiff_t)(i % a->block) * a->stride;
}

static inline GemmAxis gemm_axis(ptrdiff_t stride) { return (GemmAxis){stride, 0, 0}; }

// The end (exclusive) of the run of indices starting at i that lie in one block of the axis, capped
// at `end`: inside a run, memory is `stride` apart.
static inline int gemm_run_end(const GemmAxis* a, int i, int end) {
    if (a->block <= 0) return end;
    int e = (i / a->block + 1) * a->block;
    return e < end ? e : end;
}

typedef struct GemmOperand GemmOperand;

// Packs panels of an operand: panel q (q = 0 .. ceil(fn / W) - 1) is written to dst + q * W * rn as
// rn rows of W floats, row r holding the operand at free index f0 + q*W + w, reduction index r0 + r.
// (For A the free index is the row of A, for B the column of B; the reduction index is k.) Lanes past
// fn are zero-filled: the micro-kernel reads full panels.
typedef void (*GemmPackFn)(float* dst, const GemmOperand* op, int f0, int fn, int r0, int rn, int W,
                           float scale);

// An operand: element (free f, reduction r) at p + offset(&free, f) + offset(&red, r), unless `pack`
// is set, in which case that function produces the panels (ctx is its argument). bf16: p points at
// bf16 values (uint16_t, an activation stored in bf16), offsets counting them; only cpu_gemm_bf16 and
// gemm_pack_view take such an operand.
struct GemmOperand {
    const float* p;
    GemmAxis free, red;
    GemmPackFn pack;
    const void* ctx;
    int bf16;
};

// The result: C (i, j) at p + offset(&row, i) + offset(&col, j).
typedef struct GemmOut {
    float* p;
    GemmAxis row, col;
} GemmOut;

// Plain row-major matrices (leading dimension ld); trans: stored transposed.
GemmOperand gemm_a_matrix(const float* a, int lda, int trans); // A (M, K) or stored (K, M)
GemmOperand gemm_b_matrix(const float* b, int ldb, int trans); // B (K, N) or stored (N, K)
GemmOut gemm_c_matrix(float* c, int ldc);

// The general entry point. C = alpha * A B + beta * C; beta = 0 never reads C. When called outside
// an OpenMP parallel region it splits the work over the threads (a static partition chosen from the
// shape: the result is bit-identical for a given thread count); inside one it runs on the calling
// thread alone.
void cpu_gemm(int M, int N, int K, float alpha, const GemmOperand* A, const GemmOperand* B, float beta,
              const GemmOut* C);

// The same product with both operands rounded to bf16 and the products summed in FP32 (the
// convolutions and linear layers of mixed-precision training):
//   C = alpha * bf16(A) bf16(B) + beta * C,   bf16() = gemm_bf16_operand (below)
// alpha scales the FP32 sums; it is never rounded into A. Views, beta and the thread split as for
// cpu_gemm. The kernel is the one gemm_bf16_isa() names: vdpbf16ps where the CPU has AVX512_BF16,
// else a portable C loop that adds exactly as vdpbf16ps does (see "bf16" below).
void cpu_gemm_bf16(int M, int N, int K, float alpha, const GemmOperand* A, const GemmOperand* B, float beta,
                   const GemmOut* C);

// The GEMM of a convolution or linear layer: cpu_gemm_bf16 when the backend runs bf16 mixed precision
// (cpu_bf16, cpu_kernels.h), else cpu_gemm.
void cpu_gemm_product(int M, int N, int K, float alpha, const GemmOperand* A, const GemmOperand* B, float beta,
                      const GemmOut* C);

// C (M, N) = A (M, K) * B with B[k][j] = b[k][j]: row pointers, read in place by the indirect
// micro-kernel. C must be a plain matrix (rows evenly spaced, columns contiguous); b[k] + N +
// GEMM_INDIRECT_SLACK floats must be readable. Runs on the calling thread (convolutions call it from their own threads).
void gemm_indirect(int M, int N, int K, const GemmOperand* A, const float* const* b, const GemmOut* C);

// The packer for views (what cpu_gemm uses when op->pack is NULL).
void gemm_pack_view(float* dst, const GemmOperand* op, int f0, int fn, int r0, int rn, int W, float scale);

// --- pieces the FP32 and bf16 drivers share --------------------------------------------------------
// One thread's part of a GEMM: C[i0:i1, j0:j1] (+)= alpha * A[i0:i1, k0:k1] * B[k0:k1, j0:j1]
// (accumulate: add to C, else overwrite it). j0 is a multiple of the tile's NR.
typedef void (*GemmSerialFn)(int i0, int i1, int j0, int j1, int k0, int k1, float alpha, const GemmOperand* A,
                             const GemmOperand* B, int accumulate, const GemmOut* C);
// beta, and the split of the GEMM over the threads (see cpu_gemm), for a serial loop whose tile is
// mr x nr and whose depth block is at most kc: each thread's part goes through `serial`.
void gemm_run(int M, int N, int K, float alpha, const GemmOperand* A, const GemmOperand* B, float beta,
              const GemmOut* C, GemmSerialFn serial, int mr, int nr, int kc);
// Whether a micro-kernel of nr columns can store into C directly: rows evenly spaced and every
// half-tile of columns contiguous (tiles start at multiples of nr/2 inside a block). A batched NCHW
// view with 16 or more pixels per image (a multiple of 16) qualifies, its tiles' halves possibly in
// two images.
int gemm_c_direct(const GemmOut* C, int nr);
// Copies (or adds) a staged block S (m x n, row stride lds) into C at (i, j), run by run: for the
// layouts gemm_c_direct refuses.
void gemm_copy_out(const GemmOut* C, int i, int j, int m, int n, const float* S, int lds, int accumulate);
// Depth blocks of about equal size, none longer than kc_max (K = 288 -> 2 x 144, not 256 + 32).
int gemm_depth_block(int K, int kc_max);

// --- micro-kernels --------------------------------------------------------------------------------
// c (m x n tile, row stride ldc) = [c +] sum over k of a[k*MR + i] * b[k*NR + j], i < m <= MR,
// j < n <= NR; a and b are packed panels. accumulate = 0 overwrites c without reading it.
// The tile's columns are two contiguous halves: columns j < NR/2 at c + j, columns j >= NR/2 at
// c + hi + (j - NR/2) (hi = NR/2 for an ordinary matrix). A tile of a batched view whose halves fall
// in different images (16 pixels per image and NR = 32) is thus still stored straight from registers.
typedef void (*GemmKernelFn)(int k, const float* a, const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi,
                             int m, int n, int accumulate);

// The dot-product form, for products whose depth is long and contiguous in both operands (filter
// gradients: the depth is every pixel of the batch) and whose M and N are small:
//   c[i * ldc + j] += sum over t < len of a[i][t] * b[j][t],   i < m, j < n
// Rows are given by pointers, so they may be shifted views of one plane. Vectors run along t; each
// block of rows keeps its products in registers over the whole length and is reduced once.
typedef void (*GemmDotFn)(int m, int n, int len, const float* const* a, const float* const* b, float* c,
                          ptrdiff_t ldc);

// The indirect form of the micro-kernel: row k of B is not packed but read in place, NR floats at
// b[k] + j (rows given by pointers). A convolution lowered onto shifted planes has B rows that are
// already contiguous in memory, so packing them would only copy. Reads the full NR floats of each row
// even when n < NR (callers keep that memory readable); stores like the packed kernel.
typedef void (*GemmIndirectFn)(int k, const float* a, const float* const* b, ptrdiff_t j, float* c, ptrdiff_t ldc,
                               ptrdiff_t hi, int m, int n, int accumulate);
// Rows past the end of a B row that an indirect kernel may read (the widest tile).
#define GEMM_INDIRECT_SLACK 128

// Transposing copy for packing operands whose depth is contiguous (filter gradients read pixels
// along k): dst[r * W + w] = scale * src[w][r] for w < wn <= W, r < rn. NULL: the portable loop.
typedef void (*GemmTransposeFn)(float* dst, int W, const float* const* src, int wn, int rn, float scale);

typedef struct GemmIsa {
    const char* name;   // "avx512", "avx2", "generic"
    int mr, nr;         // tile of the micro-kernel
    int mc, kc, nc;     // cache blocking: A block (mc x kc) stays in L2, B panel (kc x nr) in L1
    GemmKernelFn kernel;
    GemmIndirectFn indirect;
    int indirect_wide[3]; // columns per indirect call for m = 1, 2 rows (0: nr): with so few rows, a wider
                          // tile keeps enough independent accumulators to hide the FMA latency
    GemmDotFn dot;
    GemmTransposeFn transpose;
} GemmIsa;

extern const GemmIsa gemm_isa_avx512, gemm_isa_avx2, gemm_isa_generic;
int gemm_cpu_has_avx512(void); // run-time CPU checks (the build never assumes them)
int gemm_cpu_has_avx2(void);

// The ISA in use: the best the CPU supports, or the one named by the environment variable
// DRNET_CPU_ISA (avx512, avx2, generic). gemm_set_isa overrides it (tests and benchmarks); it returns
// 0 if the CPU lacks that ISA.
const GemmIsa* gemm_isa(void);
int gemm_set_isa(const char* name);

// --- bf16 -------------------------------------------------------------------------------------------
// The rounding itself is nn/bf16.h's (the reference backend rounds with it too); these are its names
// here.
static inline uint16_t gemm_bf16_round(float x) { return bf16_round(x); }     // nearest, ties to even
static inline float gemm_bf16_float(uint16_t h) { return bf16_float(h); }     // exact
static inline uint16_t gemm_bf16_operand(float x) { return bf16_operand(x); } // rounded, denormals to 0

// Packed bf16 panels hold pairs: 32-bit word p * W + w of a panel of W lanes holds lane w at reduction
// index 2p in its low half and 2p + 1 in its high half (what vdpbf16ps multiplies lane by lane); an
// odd depth ends with a zero high half. dst (ceil(rn/2), W) = pairs of src (rn, W), a packed FP32 panel.
void gemm_bf16_pairs(uint32_t* dst, const float* src, int rn, int W);

// c (m x n tile, stored as GemmKernelFn stores) = alpha * s [+ c], s = the FP32 sum over the kp pairs
// of packed panels a (kp, MR) and b (kp, NR). Each pair is added as vdpbf16ps adds it: the high
// (odd-k) product first, then the low one, each step an FMA that treats a denormal accumulator as zero
// and flushes a denormal result to zero, rounding to nearest. alpha * s [+ c] is one FMA.
typedef void (*GemmBf16KernelFn)(int kp, const uint32_t* a, const uint32_t* b, float* c, ptrdiff_t ldc,
                                 ptrdiff_t hi, int m, int n, float alpha, int accumulate);

typedef struct GemmBf16Isa {
    const char* name;   // "avx512bf16" (vdpbf16ps), "generic" (portable C)
    int mr, nr;         // tile of the micro-kernel
    int mc, kc, nc;     // cache blocking as in GemmIsa; kc counts bf16 values (kc / 2 pairs)
    GemmBf16KernelFn kernel;
    // gemm_bf16_pairs, the same bits by this ISA's own conversion instructions where it has them
    void (*pairs)(uint32_t* dst, const float* src, int rn, int W);
    // Optional (NULL: the driver stages an FP32 panel, then pairs): pairs (ceil(n / 2), W) straight
    // from wn lanes whose n reduction values are adjacent in memory at src[w]; lanes past wn zero.
    // The values are floats, or with src_bf16 bf16 values (uint16_t) that are operands already.
    void (*pairs_from_rows)(uint32_t* dst, int W, const void* const* src, int wn, int n, int src_bf16);
    // Optional likewise: lanes [w, w + len) of the pairs (ceil(rn / 2), W) straight from lanes
    // adjacent in memory, rows[r] pointing at the first of them at reduction index r
    void (*pairs_from_lanes)(uint32_t* dst, int W, int w, int len, const void* const* rows, int rn, int src_bf16);
    // Optional likewise, for bf16 values whose reduction is made of short runs: a filter gradient's
    // pixels on small maps, L per image (L even, 32 % L == 0), each image's run `jump` values after the
    // previous one. src[w]: lane w's first run; n: runs * L. The same pairs as pairs_from_rows called
    // run by run, with 32 / L runs per vector instead of one.
    void (*pairs_from_runs)(uint32_t* dst, int W, const uint16_t* const* src, int wn, int L, ptrdiff_t jump, int n);
    // Optional (NULL: A panels stay as packed): the kernel reads A by rows, so each packed (kp, MR)
    // A panel is rearranged in place into (MR, kp), row i's pairs consecutive (the AMX kernel).
    void (*a_by_rows)(uint32_t* panel, int kp);
} GemmBf16Isa;

extern const GemmBf16Isa gemm_bf16_isa_avx512, gemm_bf16_isa_generic;
// tdpbf16ps on AMX tiles (cpu_gemm_amx.c), and the same kernel with the tile instructions emulated
// in C, for the tests on every machine.
extern const GemmBf16Isa gemm_bf16_isa_amx, gemm_bf16_isa_amx_emulated;
int gemm_cpu_has_avx512bf16(void); // run-time CPU check: AVX512F and AVX512_BF16
// Run-time check: AMX-BF16 and AVX512_BF16 on the CPU, and Linux's grant of the AMX tile state to
// this process (requested on the first call).
int gemm_cpu_has_amx(void);
// DRNET_CPU_AMX=1 in the environment (read once): AMX asked for, whether or not the CPU has it.
int gemm_amx_requested(void);
// The AVX512_BF16 packers (cpu_gemm_avx512bf16.c), which the AMX kernel shares: same panels.
void gemm_bf16_pairs_avx512(uint32_t* dst, const float* src, int rn, int W);
void gemm_bf16_pairs_from_rows_avx512(uint32_t* dst, int W, const void* const* src, int wn, int n, int src_bf16);
void gemm_bf16_pairs_from_lanes_avx512(uint32_t* dst, int W, int w, int len, const void* const* rows, int rn,
                                       int src_bf16);
void gemm_bf16_pairs_from_runs_avx512(uint32_t* dst, int W, const uint16_t* const* src, int wn, int L, ptrdiff_t jump,
                                      int n);

// The bf16 kernel in use: vdpbf16ps when the FP32 ISA in use is avx512 (gemm_isa) and the CPU has
// AVX512_BF16, else the portable one; DRNET_CPU_ISA=generic or gemm_set_isa("generic") runs the
// portable one anywhere. Both add each pair the same way over the same depth blocks (same kc), so
// on one thread and a C they can store into directly they give the same bits (test_gemm_bf16 checks
// it); elsewhere the tile can change the thread split or the staging of C, hence the summation order.
// AMX (tdpbf16ps) runs instead of vdpbf16ps only when asked, DRNET_CPU_AMX=1, on a CPU that has it:
// it has passed its tests on the emulation (cpu_gemm_amx_emulated.c), not yet on AMX hardware.
const GemmBf16Isa* gemm_bf16_isa(void);
// For the tests and benchmarks: run the bf16 kernel named ("avx512bf16", "generic", "amx",
// "amx-emulated") whatever the FP32 choice, or "auto" to go back to gemm_bf16_isa()'s rule. Returns
// 0, changing nothing, if this CPU cannot run it or the name is unknown.
int gemm_bf16_set_isa(const char* name);

#endif
