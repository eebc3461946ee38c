// The AMX bf16 GEMM micro-kernel: a 32 x 32 tile of C in four AMX tile registers (16 x 16 FP32
// each), fed by tdpbf16ps, which multiplies a 16-row tile of A pairs by a 16-column tile of B pairs
// over 16 pairs (32 reduction indices): 8192 multiply-adds per instruction, where vdpbf16ps does 32.
//
// It plugs into the bf16 driver (cpu_gemm_bf16.c) with the panels the other bf16 kernels take, but
// one: tdpbf16ps wants B as the driver packs it (a row of pairs per pair index, "VNNI" layout: B tile
// row p holds the pairs (2p, 2p + 1) of its 16 columns), and A the other way round, each of its rows
// holding that row's consecutive pairs. So this ISA asks the driver for A panels by rows (its
// a_by_rows hook transposes each packed (kp, MR) panel into (MR, kp) once per A block, which the
// kernel then reuses for every B panel of the block).
//
// The tiles are configured once per thread (16 rows x 64 bytes each: tmm0-3 C, tmm4-5 A, tmm6-7 B)
// and never shrunk: a depth that is not a multiple of 16 pairs ends with zero-padded copies of the
// last pairs, and a tile of C past the matrix's m rows or n columns computes zeros (the driver pads
// both panels with zero lanes) that the store leaves out. Linux grants a process the AMX tile state
// only on request (arch_prctl ARCH_REQ_XCOMP_PERM), which gemm_cpu_has_amx() makes: nothing chooses
// this kernel without asking it first.
//
// Compiled twice: for AMX hardware (this file), and with the four tile instructions emulated in C
// (cpu_gemm_amx_emulated.c defines AMX_EMULATE), so that the packing, the tiling and the tails are
// tested on every machine (test_gemm_bf16), as the CUDA backend is on its emulator. The emulation
// adds each pair as Intel's description of tdpbf16ps does (the even product, then the odd one, each
// one FP32 rounding); the hardware's order of additions is its own, so the tests bound the sums
// rather than compare bits.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef AMX_EMULATE
#define ISA_NAME "amx-emulated"
#define ISA_STRUCT gemm_bf16_isa_amx_emulated
#else
#define ISA_NAME "amx"
#define ISA_STRUCT gemm_bf16_isa_amx
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")
#include <immintrin.h>
#endif

#include "../../nn/bf16.h"
#include "../../nn/util.h"
#include "cpu_gemm.h"

enum { MR = 32, NR = 32, TP = 16 }; // the C tile; TP: pairs per tile step (64 bytes of a tile row)

#ifdef AMX_EMULATE
// The tile registers of the calling thread, each 16 rows of 64 bytes, and the four instructions.
typedef struct {
    uint8_t row[16][64];
} EmuTile;
static __thread EmuTile tmm[8];

static void emu_load(int t, const void* p, ptrdiff_t stride) {
    for (int r = 0; r < 16; r++) memcpy(tmm[t].row[r], (const uint8_t*)p + r * stride, 64);
}
static void emu_store(int t, void* p, ptrdiff_t stride) {
    for (int r = 0; r < 16; r++) memcpy((uint8_t*)p + r * stride, tmm[t].row[r], 64);
}
static void emu_zero(int t) { memset(&tmm[t], 0, sizeof(tmm[t])); }
// A bf16 value as an operand: a denormal is read as zero (tdpbf16ps's DAZ).
static float emu_operand(uint16_t h) { return (h & 0x7F80u) == 0 ? 0.0f : bf16_float(h); }
// The sum after each addition: a denormal result is flushed to zero (tdpbf16ps's FTZ).
static float emu_flush(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    return (u & 0x7F800000u) == 0 ? 0.0f * x : x;
}
// c (16 x 16 FP32) += a (16 rows x 16 pairs) * b (16 pair rows x 16 columns), as Intel describes it.
static void emu_dpbf16ps(int c, int a, int b) {
    for (int m = 0; m < 16; m++) {
        float* cr = (float*)(void*)tmm[c].row[m];
        const uint16_t* ar = (const uint16_t*)(const void*)tmm[a].row[m];
        for (int k = 0; k < 16; k++) {
            const uint16_t* br = (const uint16_t*)(const void*)tmm[b].row[k];
            for (int n = 0; n < 16; n++) {
                cr[n] = emu_flush(cr[n] + emu_operand(ar[2 * k]) * emu_operand(br[2 * n]));
                cr[n] = emu_flush(cr[n] + emu_operand(ar[2 * k + 1]) * emu_operand(br[2 * n + 1]));
            }
        }
    }
}
#define TILE_LOAD(t, p, stride) emu_load(t, p, stride)
#define TILE_STORE(t, p, stride) emu_store(t, p, stride)
#define TILE_ZERO(t) emu_zero(t)
#define TILE_DP(c, a, b) emu_dpbf16ps(c, a, b)
static void configure_tiles(void) {}
#else
// GCC's tile-load intrinsic (and ldtilecfg's, for all but 8 of its 64 bytes) does not tell the
// compiler that it reads memory: without this barrier, stores to a buffer that only a tile load
// reads (the tail copies, the configuration) could be dropped or moved past the load. The barrier
// costs nothing at run time.
#define READS(p) __asm__ volatile("" ::"r"(p) : "memory")
#define TILE_LOAD(t, p, stride)       \
    do {                              \
        READS(p);                     \
        _tile_loadd(t, p, stride);    \
    } while (0)
#define TILE_STORE(t, p, stride) _tile_stored(t, p, stride)
#define TILE_ZERO(t) _tile_zero(t)
#define TILE_DP(c, a, b) _tile_dpbf16ps(c, a, b)
// Palette 1, eight tiles of 16 rows x 64 bytes: the calling thread's tile state, set on its first
// kernel call and kept (the OpenMP threads live as long as the process).
static void configure_tiles(void) {
    static __thread int configured;
    if (configured) return;
    struct {
        uint8_t palette, start_row, reserved[14];
        uint16_t colsb[16];
        uint8_t rows[16];
    } __attribute__((aligned(64))) cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    READS(&cfg);
    _tile_loadconfig(&cfg);
    configured = 1;
}
#endif

// One depth step of 16 pairs: the four C tiles += the A tiles (rows 0-15, 16-31) times the B tiles
// (columns 0-15, 16-31). a: row 0's first pair, rows lda words apart; b: pair row 0, rows ldb apart.
#define STEP(a, lda, b, ldb)                              \
    do {                                                  \
        TILE_LOAD(4, (a), (lda) * 4);                     \
        TILE_LOAD(5, (a) + 16 * (ptrdiff_t)(lda), (lda) * 4); \
        TILE_LOAD(6, (b), (ldb) * 4);                     \
        TILE_LOAD(7, (b) + 16, (ldb) * 4);                \
        TILE_DP(0, 4, 6);                                 \
        TILE_DP(1, 4, 7);                                 \
        TILE_DP(2, 5, 6);                                 \
        TILE_DP(3, 5, 7);                                 \
    } while (0)

// GemmBf16KernelFn: a (MR, kp) by rows (this ISA's a_by_rows), b (kp, NR) as packed, c as the other
// kernels store it (columns 16-31 at c + hi).
static void kernel(int kp, const uint32_t* a, const uint32_t* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, int m, int n,
                   float alpha, int accumulate) {
    configure_tiles();
    TILE_ZERO(0);
    TILE_ZERO(1);
    TILE_ZERO(2);
    TILE_ZERO(3);
    int full = kp / TP * TP;
    for (int p = 0; p < full; p += TP) STEP(a + p, kp, b + (size_t)p * NR, NR);
    if (full < kp) { // the last pairs, zero-padded to a whole step
        uint32_t at[MR][TP] __attribute__((aligned(64))), bt[TP][NR] __attribute__((aligned(64)));
        memset(at, 0, sizeof(at));
        memset(bt, 0, sizeof(bt));
        for (int i = 0; i < MR; i++) memcpy(at[i], a + (size_t)i * kp + full, (size_t)(kp - full) * sizeof(uint32_t));
        memcpy(bt, b + (size_t)full * NR, (size_t)(kp - full) * NR * sizeof(uint32_t));
        STEP(&at[0][0], TP, &bt[0][0], NR);
    }
    float s[MR][NR] __attribute__((aligned(64))); // the tile's sums
    TILE_STORE(0, &s[0][0], NR * 4);
    TILE_STORE(1, &s[0][16], NR * 4);
    TILE_STORE(2, &s[16][0], NR * 4);
    TILE_STORE(3, &s[16][16], NR * 4);
    // c = alpha * s (+ c), one rounding as the other kernels' FMA: the FP32 FMA of the C library
    // (a single instruction where compiled for AVX-512).
    int n0 = n < 16 ? n : 16, n1 = n - n0;
    for (int i = 0; i < m; i++) {
        float* ci = c + i * ldc;
        if (accumulate) {
            for (int j = 0; j < n0; j++) ci[j] = __builtin_fmaf(alpha, s[i][j], ci[j]);
            for (int j = 0; j < n1; j++) ci[hi + j] = __builtin_fmaf(alpha, s[i][16 + j], ci[hi + j]);
        } else {
            for (int j = 0; j < n0; j++) ci[j] = alpha * s[i][j];
            for (int j = 0; j < n1; j++) ci[hi + j] = alpha * s[i][16 + j];
        }
    }
}

// A packed (kp, MR) panel of pairs becomes (MR, kp): row i's pairs consecutive, as tdpbf16ps reads A.
// Once per A block (mc x kc), which every B panel of the block then reuses. A plain loop: no AMX
// hardware has timed it yet (docs/cpu-performance.md).
static void a_by_rows(uint32_t* panel, int kp) {
    uint32_t tmp[MR * 128]; // 16 KiB: kc is at most 256 values, 128 pairs
    NN_ASSERT(kp <= 128, "AMX GEMM: a depth block of %d pairs, more than its kc of 256 values", kp);
    for (int p = 0; p < kp; p++)
        for (int i = 0; i < MR; i++) tmp[(size_t)i * kp + p] = panel[(size_t)p * MR + i];
    memcpy(panel, tmp, (size_t)kp * MR * sizeof(uint32_t));
}

#ifndef AMX_EMULATE
#pragma GCC pop_options
#endif

const GemmBf16Isa ISA_STRUCT = {
    .name = ISA_NAME,
    .mr = MR,
    .nr = NR,
    .mc = 256,  // A block 256 x 256 bf16 = 128 KiB in L2
    .kc = 256,  // at most 128 pairs: a_by_rows's buffer
    .nc = 3072, // B block 256 x 3072 bf16 = 1.5 MiB
    .kernel = kernel,
#ifdef AMX_EMULATE // any CPU: the portable packing (staged FP32 panels, then pairs)
    .pairs = gemm_bf16_pairs,
#else // every CPU with AMX has AVX512_BF16: its packers, the panels being the same
    .pairs = gemm_bf16_pairs_avx512,
    .pairs_from_rows = gemm_bf16_pairs_from_rows_avx512,
    .pairs_from_lanes = gemm_bf16_pairs_from_lanes_avx512,
    .pairs_from_runs = gemm_bf16_pairs_from_runs_avx512,
#endif
    .a_by_rows = a_by_rows,
};
