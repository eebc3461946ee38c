// The bf16 GEMM driver: C = alpha * bf16(A) bf16(B) + beta * C with FP32 sums, in the BLIS loop order
// of cpu_gemm.c (which says why that order) and through its beta handling and thread split
// (gemm_run). What differs is the packed format: panels of bf16 pairs (cpu_gemm.h), which the
// micro-kernel multiplies two reduction indices at a time, and alpha, which the kernel applies to
// the FP32 sums rather than the packer to A (bf16(alpha * a) is not alpha * bf16(a)).
#include <stdlib.h>
#include <string.h>
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "../../nn/bf16.h"
#include "../../nn/util.h"
#include "cpu_gemm.h"
#include "cpu_kernels.h"

// --- run-time choice --------------------------------------------------------------------------------

int gemm_cpu_has_avx512bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}

// AMX needs the CPU's feature bits and, on Linux, the kernel's permission for this process to use
// the tile state (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA; without it the first tile
// instruction kills the process). Asked once; a second concurrent ask is harmless.
static int ask_for_amx(void) {
#if defined(__linux__) && defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-bf16") || !gemm_cpu_has_avx512bf16())
        return 0;
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

int gemm_cpu_has_amx(void) {
    static int state = -1; // -1: not asked yet
    int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
    if (s < 0) {
        s = ask_for_amx();
        __atomic_store_n(&state, s, __ATOMIC_RELEASE);
    }
    return s;
}

static const GemmBf16Isa* forced; // gemm_bf16_set_isa's choice, NULL for the rule below

// Tied to the FP32 choice so that one switch (DRNET_CPU_ISA, --isa, gemm_set_isa) picks both: a
// run that asks for the portable FP32 kernel gets the portable bf16 one too. AMX only when asked
// (cpu_gemm.h says why).
int gemm_amx_requested(void) {
    static int asked = -1; // -1: the environment not read yet
    int a = __atomic_load_n(&asked, __ATOMIC_ACQUIRE);
    if (a < 0) {
        const char* e = getenv("DRNET_CPU_AMX");
        a = e && strcmp(e, "1") == 0;
        __atomic_store_n(&asked, a, __ATOMIC_RELEASE);
    }
    return a;
}

const GemmBf16Isa* gemm_bf16_isa(void) {
    if (forced) return forced;
    if (gemm_isa() != &gemm_isa_avx512 || !gemm_cpu_has_avx512bf16()) return &gemm_bf16_isa_generic;
    return gemm_amx_requested() && gemm_cpu_has_amx() ? &gemm_bf16_isa_amx : &gemm_bf16_isa_avx512;
}

int gemm_bf16_set_isa(const char* name) {
    const GemmBf16Isa* isa = NULL;
    if (strcmp(name, "auto") == 0) {
        forced = NULL;
        return 1;
    }
    if (strcmp(name, "generic") == 0) isa = &gemm_bf16_isa_generic;
    else if (strcmp(name, "amx-emulated") == 0) isa = &gemm_bf16_isa_amx_emulated;
    else if (strcmp(name, "avx512bf16") == 0 && gemm_cpu_has_avx512bf16()) isa = &gemm_bf16_isa_avx512;
    else if (strcmp(name, "amx") == 0 && gemm_cpu_has_amx()) isa = &gemm_bf16_isa_amx;
    if (!isa) return 0;
    forced = isa;
    return 1;
}

// --- packing ----------------------------------------------------------------------------------------

// gemm_bf16_operand(x) in the high half of a word, the low half zero: bf16_operand_value's bits,
// computed in 32-bit lanes throughout (no narrowing to 16 bits and back), which vectorizes better.
static inline uint32_t operand_high(float x) {
    float r = bf16_operand_value(x);
    uint32_t u;
    memcpy(&u, &r, sizeof(u));
    return u;
}

// Rows 2p and 2p + 1 of the FP32 panel become row p of pairs. Plain C that the clones vectorize: the
// rounding is integer arithmetic and selects.
__attribute__((target_clones("avx512f", "avx2", "default")))
void gemm_bf16_pairs(uint32_t* restrict dst, const float* restrict src, int rn, int W) {
    for (int p = 0; p < rn / 2; p++) {
        const float *lo = src + (size_t)2 * p * W, *hi = lo + W;
        uint32_t* d = dst + (size_t)p * W;
        for (int w = 0; w < W; w++) d[w] = operand_high(lo[w]) >> 16 | operand_high(hi[w]);
    }
    if (rn % 2) { // an odd depth: the last pair's high half is zero
        const float* lo = src + (size_t)(rn - 1) * W;
        uint32_t* d = dst + (size_t)(rn / 2) * W;
        for (int w = 0; w < W; w++) d[w] = operand_high(lo[w]) >> 16;
    }
}

// Pairs straight from the operand, without an FP32 staging panel, for the two layouts a 1x1
// convolution's operands have (the ISA's optional packers, cpu_gemm.h):
//  - reduction adjacent in memory (pairs_from_rows): when every run of it starts at an even index
//    and all but the last have even length, so that no pair straddles two runs;
//  - lanes adjacent in memory (pairs_from_lanes), for depth blocks up to LANES_MAX_DEPTH (kc is 256).
#define LANES_MAX_DEPTH 512
static int pairs_by_rows(const GemmBf16Isa* isa, const GemmOperand* op, int r0, int W) {
    return isa->pairs_from_rows && !op->pack && op->red.stride == 1 && r0 % 2 == 0 && W <= 64 &&
           (op->red.block <= 0 || op->red.block % 2 == 0);
}
static int pairs_by_lanes(const GemmBf16Isa* isa, const GemmOperand* op, int rn) {
    return isa->pairs_from_lanes && !op->pack && op->free.stride == 1 && rn <= LANES_MAX_DEPTH;
}

// Whether the depth block [r0, r0 + rn) is whole short runs of bf16 values (pairs_from_runs), each
// starting on a pair (an even run length and distance between runs).
static int pairs_by_runs(const GemmBf16Isa* isa, const GemmOperand* op, int r0, int rn) {
    int L = op->red.block;
    return isa->pairs_from_runs && op->bf16 && op->red.stride == 1 && L >= 2 && L < 32 && 32 % L == 0 &&
           op->red.block_stride % 2 == 0 && r0 % L == 0 && rn % L == 0;
}

// Panel q of W lanes at dst + q * W * ceil(rn/2), lanes past fn zero.
static void pack_pairs_rows(const GemmBf16Isa* isa, uint32_t* dst, const GemmOperand* op, int f0, int fn, int r0,
                            int rn, int W) {
    const void* rows[64];
    size_t rp = (size_t)(rn + 1) / 2;
    int runs = pairs_by_runs(isa, op, r0, rn);
    for (int q = 0; q * W < fn; q++) {
        int lanes = fn - q * W < W ? fn - q * W : W;
        if (runs) { // every lane's runs in one call
            for (int w = 0; w < lanes; w++)
                rows[w] = bf16_or_float_at(op->p, gemm_offset(&op->free, f0 + q * W + w) + gemm_offset(&op->red, r0), 1);
            isa->pairs_from_runs(dst + (size_t)q * W * rp, W, (const uint16_t* const*)rows, lanes, op->red.block,
                                 op->red.block_stride, rn);
            continue;
        }
        for (int r = r0; r < r0 + rn;) { // one run of reduction indices adjacent in memory
            int re = gemm_run_end(&op->red, r, r0 + rn);
            ptrdiff_t ro = gemm_offset(&op->red, r);
            for (int w = 0; w < lanes; w++)
                rows[w] = bf16_or_float_at(op->p, gemm_offset(&op->free, f0 + q * W + w) + ro, op->bf16);
            isa->pairs_from_rows(dst + (size_t)q * W * rp + (size_t)(r - r0) / 2 * W, W, rows, lanes, re - r, op->bf16);
            r = re;
        }
    }
}

// In which order pack_pairs_lanes reads. A panel takes W lanes of every row of the depth block. On
// small maps (a run of lanes, one image's plane, under 4W pixels) the rows of an image lie next to
// one another, so panel by panel over all rows reads memory in order. On large maps each row is a
// long run far from the next one (1-4 KiB at 16x16 and 32x32), and a panel reads only 128 bytes of
// each: one stream per row, up to 256 at once, more than the prefetchers follow. There the rows go
// 8 at a time (4 pairs), each group walked along all the panels: 8 streams.
// (docs/cpu-performance.md has the measurements: the 32x32 data gradient went from 1.3x to 2x its
// FP32 twin; on 4x4 and 2x2 maps, where groups would only add calls, they are not used.)
enum { LANES_ROW_GROUP = 8, LANES_LONG_RUN = 4 };
static int lanes_row_group(const GemmOperand* op, int rn, int W) {
    return op->free.block <= 0 || op->free.block >= LANES_LONG_RUN * W ? LANES_ROW_GROUP : rn;
}

static void pack_pairs_lanes(const GemmBf16Isa* isa, uint32_t* dst, const GemmOperand* op, int f0, int fn, int r0,
                             int rn, int W) {
    const void* rows[LANES_MAX_DEPTH];
    size_t rp = (size_t)(rn + 1) / 2;
    int group = lanes_row_group(op, rn, W);
    for (int g = 0; g < rn; g += group) { // rows [g, g + gn): pair rows from g / 2 (group is even)
        int gn = rn - g < group ? rn - g : group;
        for (int q = 0; q * W < fn; q++) {
            uint32_t* panel = dst + (size_t)q * W * rp;
            int lanes = fn - q * W < W ? fn - q * W : W;
            for (int w = 0; w < lanes;) { // one run of lanes adjacent in memory
                int f = f0 + q * W + w, len = gemm_run_end(&op->free, f, f0 + q * W + lanes) - f;
                ptrdiff_t src = gemm_offset(&op->free, f);
                for (int r = 0; r < gn; r++)
                    rows[r] = bf16_or_float_at(op->p, src + gemm_offset(&op->red, r0 + g + r), op->bf16);
                isa->pairs_from_lanes(panel + (size_t)g / 2 * W, W, w, len, rows, gn, op->bf16);
                w += len;
            }
            if (lanes < W && g == 0)
                for (size_t p = 0; p < rp; p++) memset(panel + p * W + lanes, 0, (size_t)(W - lanes) * sizeof(uint32_t));
        }
    }
}

// Panels of pairs: panel q of W lanes at dst + q * W * ceil(rn/2). Straight from the operand where
// its layout allows (above); otherwise each panel first goes through the operand's own FP32 packer
// (views, in-register transposes, or op->pack: whatever cpu_gemm runs), into a staging panel small
// enough to stay in L1 (kc x W floats), and from there into pairs. So every layout cpu_gemm accepts
// works here without a bf16 copy of each packer (an operand of bf16 values goes through
// gemm_pack_view's widening copy: its values are operands already, which the pairs keep).
static void pack_pairs(const GemmBf16Isa* isa, uint32_t* dst, const GemmOperand* op, int f0, int fn, int r0, int rn,
                       int W) {
    if (pairs_by_rows(isa, op, r0, W)) {
        pack_pairs_rows(isa, dst, op, f0, fn, r0, rn, W);
        return;
    }
    if (pairs_by_lanes(isa, op, rn)) {
        pack_pairs_lanes(isa, dst, op, f0, fn, r0, rn, W);
        return;
    }
    size_t rp = (size_t)(rn + 1) / 2;
    float* panel = cpu_scratch(SLOT_GEMM_PANEL, (size_t)rn * W); // (rn, W)
    for (int q = 0; q * W < fn; q++) {
        int lanes = fn - q * W < W ? fn - q * W : W;
        (op->pack ? op->pack : gemm_pack_view)(panel, op, f0 + q * W, lanes, r0, rn, W, 1.0f);
        isa->pairs(dst + (size_t)q * W * rp, panel, rn, W);
    }
}

// --- the serial blocked loop --------------------------------------------------------------------------

// The depth block: gemm_depth_block's, made even so that only the last block of a range can end with
// a half-empty pair.
static int depth_block_even(int K, int kc_max) {
    int kc = gemm_depth_block(K, kc_max);
    return kc < K ? (kc + 1) / 2 * 2 : kc;
}

// gemm_serial of cpu_gemm.c for bf16 panels (GemmSerialFn).
static void serial_bf16(int i0, int i1, int j0, int j1, int k0, int k1, float alpha, const GemmOperand* A,
                        const GemmOperand* B, int accumulate, const GemmOut* C) {
    const GemmBf16Isa* isa = gemm_bf16_isa();
    int MR = isa->mr, NR = isa->nr, KC = depth_block_even(k1 - k0, isa->kc), KP = (KC + 1) / 2;
    int MC = isa->mc, NC = isa->nc;
    if (j1 - j0 < NC) NC = j1 - j0;
    int NCP = (NC + NR - 1) / NR * NR;
    uint32_t* bbuf = (uint32_t*)cpu_scratch(SLOT_GEMM_B, (size_t)KP * NCP);      // (nc/NR panels, kc/2, NR)
    uint32_t* abuf = (uint32_t*)cpu_scratch(SLOT_GEMM_A, (size_t)KP * (MC + MR)); // (mc/MR panels, kc/2, MR)
    // C that the kernel cannot store into is staged per column block, as in gemm_serial.
    int direct = gemm_c_direct(C, NR);
    float* stage = direct ? NULL : cpu_scratch(SLOT_GEMM_STAGE, (size_t)(i1 - i0) * NCP); // (i1 - i0, NCP)
    for (int jc = j0; jc < j1; jc += NC) {
        int nc = j1 - jc < NC ? j1 - jc : NC;
        for (int pc = k0; pc < k1; pc += KC) {
            int kc = k1 - pc < KC ? k1 - pc : KC, kp = (kc + 1) / 2;
            int acc = pc > k0 || (direct && accumulate);
            pack_pairs(isa, bbuf, B, jc, nc, pc, kc, NR);
            for (int ic = i0; ic < i1; ic += MC) {
                int mc = i1 - ic < MC ? i1 - ic : MC;
                pack_pairs(isa, abuf, A, ic, mc, pc, kc, MR);
                if (isa->a_by_rows)
                    for (int q = 0; q * MR < mc; q++) isa->a_by_rows(abuf + (size_t)q * MR * kp, kp);
                for (int jr = 0; jr < nc; jr += NR) {
                    int n = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int m = mc - ir < MR ? mc - ir : MR;
                        const uint32_t *ap = abuf + (size_t)ir * kp, *bp = bbuf + (size_t)jr * kp;
                        if (direct) {
                            int i = ic + ir, j = jc + jr;
                            float* c = C->p + gemm_offset(&C->row, i) + gemm_offset(&C->col, j);
                            ptrdiff_t hi = n > NR / 2 ? gemm_offset(&C->col, j + NR / 2) - gemm_offset(&C->col, j) : NR / 2;
                            isa->kernel(kp, ap, bp, c, C->row.stride, hi, m, n, alpha, acc);
                        } else {
                            float* c = stage + (size_t)(ic + ir - i0) * NCP + jr;
                            isa->kernel(kp, ap, bp, c, NCP, NR / 2, m, n, alpha, acc);
                        }
                    }
                }
            }
        }
        if (!direct) gemm_copy_out(C, i0, jc, i1 - i0, nc, stage, NCP, accumulate);
    }
}

void cpu_gemm_product(int M, int N, int K, float alpha, const GemmOperand* A, const GemmOperand* B, float beta,
                      const GemmOut* C) {
    (cpu_bf16 ? cpu_gemm_bf16 : cpu_gemm)(M, N, K, alpha, A, B, beta, C);
}

// In place, for the paths that keep FP32 kernels on bf16 values (cpu_conv_flat.c). The clones
// vectorize the integer rounding as they do gemm_bf16_pairs'.
__attribute__((target_clones("avx512f", "avx2", "default")))
void cpu_round_bf16(float* x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = bf16_operand_value(x[i]);
}

void cpu_gemm_bf16(int M, int N, int K, float alpha, const GemmOperand* A, const GemmOperand* B, float beta,
                   const GemmOut* C) {
    const GemmBf16Isa* isa = gemm_bf16_isa();
    gemm_run(M, N, K, alpha, A, B, beta, C, serial_bf16, isa->mr, isa->nr, isa->kc);
}
