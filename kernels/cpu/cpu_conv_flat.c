// Computes kernels/ref/ref_conv.c's three convolution sums faster for k x k kernels: the input is
// copied once into zero-padded phase planes, after which every tap is a constant shift and the sum
// over (channel, tap) is one indirect GEMM with no bounds checks.
//
// k x k convolutions (any stride, padding and groups) on the CPU through flat phase planes: the
// lowering of the 3x3 stem and of the depthwise layers, which diagonalwise refactorization runs as
// grouped convolutions with g channels per group (a dense (g, g, 3, 3) weight per group).
//
// im2col would copy every input pixel k*k times, and on MobileNet's 4x4 and 2x2 maps it would copy
// them in runs of 4 or 2 floats: slower than the arithmetic it feeds. Instead each group's input is
// copied once into "flat" planes: zero-padded, split into stride x stride phases (phase (a, b) holds
// padded rows a, a+s, ... and columns b, b+s, ...), every image's plane after the previous one:
//
//   flat[c][phase][n*plane + u*ws + v] = x[n][c][u*s + a - pad][v*s + b - pad]   (0 outside x)
//
// Output pixel (oy, ox) of tap (ky, kx) then reads phase (ky % s, kx % s) at (oy + ky/s, ox + kx/s):
// on the flat index q = n*plane + oy*ws + ox every tap is a constant shift. So the convolution is one
// GEMM over a grid of q that covers every image of the chunk:
//
//   grid (co, Q) = W_g (co, ci*k*k) * B (ci*k*k, Q),   B[(c, tap)][q] = flat[c][phase(tap)][q + shift(tap)]
//
// whose B rows are plain contiguous vectors: the micro-kernel reads them in place through a table of
// row pointers (gemm_indirect), nothing is packed, no bounds are checked. The price: the grid also
// covers the padding columns and rows (q with ox >= w_out or oy >= h_out), which are computed and
// dropped when the grid is copied out. The copies in and out are the real cost at small g (AVX-512:
// mask-driven expand / compress, cpu_conv_flat_avx512.c).
//
// Shared padding. A "same" convolution at stride 1 (k = 2 pad + 1: every depthwise layer that keeps
// its map) needs only pad zero columns per row and pad zero rows per image, not twice that: a tap
// that reads left of column 0 lands in the previous row's zero columns, one above row 0 in the
// previous image's zero rows (or in `lead` zeros before the first image). So those layouts put the
// data at the top left of an (h + pad) x (w + pad) plane, after `lead` = pad * ws + pad zeros, and
// the grid shrinks accordingly: 4x4 maps from 36 to 25 columns per image, 2x2 from 16 to 9, 32x32
// from 1156 to 1089 (the planes of the other layouts keep pad zeros on both sides). The forward and
// the data gradient add the same products in the same order as with unshared planes, bit for bit;
// the filter gradient's sums over the grid are grouped differently (other chunks, other lanes), so
// they differ in rounding only.
//
// Backward-data is the same machinery on dy (polyphase: output phase (a, b) of dx gathers the taps
// with ky = a + pad (mod s), each again a shift, with the weight transposed per tap); stride 1 is one
// phase with all taps. Backward-filter is a dot product along q of dy (laid out on the same grid,
// zeros at the dropped positions) with the shifted rows of the flat input.
//
// Threads split the batch (static: images [t*n/T, (t+1)*n/T)); each handles its images a few at a
// time (about 1024 grid columns per chunk), group by group, with single-threaded GEMMs. Filter
// gradients are summed per thread and then across threads in thread order: deterministic for a
// thread count.
#include <string.h>

#include "../../nn/bf16.h"
#include "../../nn/util.h"
#include "cpu_conv.h"
#include "cpu_conv_flat.h"
#include "cpu_gemm.h"
#include "cpu_kernels.h"

#define MAX_TAPS 256                // k*k of the largest kernel handled (16x16)
#define CHUNK_FLOATS (96 * 1024)    // flat input + output grid of one chunk: at most ~384 KiB (L2)
#define TARGET_COLUMNS 1024         // grid columns per chunk

static int cdiv(int a, int b) { return a <= 0 ? 0 : (a + b - 1) / b; }
static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

// A chunk of planes in flat layout.
typedef struct Flat {
    int s;             // phases per axis (the stride); s*s phase planes per channel
    int pad_y, pad_x;  // zero rows / columns before the data, in unsplit coordinates
    int h, w;          // the data planes
    int hs, ws, plane; // one phase plane: hs x ws = plane floats
    int lead;          // zeros before the first plane (the shared-padding layouts; else 0)
    int nb;            // images held
    size_t seq;        // floats per (channel, phase): lead, nb * plane, then zeros for the largest shift
} Flat;

// The lane masks of a flat plane for the AVX-512 copies (cpu_conv_flat.h): the data occupies rows
// [y0, y0 + h) and columns [x0, x0 + w) of the hs x ws plane. Returns NULL (use the loops) unless the
// CPU path is AVX-512 and the plane is small enough for the table.
static const FlatMasks* plane_masks(FlatMasks* fm, int hs, int ws, int y0, int x0, int h, int w) {
    int plane = hs * ws, nvec = (plane + 15) / 16;
    if (gemm_isa() != &gemm_isa_avx512 || nvec > FLAT_MAX_VECTORS) return NULL;
    fm->plane = plane;
    memset(fm->mask, 0, (size_t)nvec * sizeof(fm->mask[0]));
    for (int u = y0; u < y0 + h && u < hs; u++)
        for (int v = x0; v < x0 + w && v < ws; v++) {
            int e = u * ws + v;
            fm->mask[e / 16] |= (uint16_t)(1u << (e % 16));
        }
    for (int i = 0, sum = 0; i < nvec; i++) fm->offset[i] = sum, sum += __builtin_popcount(fm->mask[i]);
    return fm;
}

// Copies and zero fills of a few floats each: loops the compiler vectorizes in place (with the libc
// calls GCC would otherwise substitute, a 4-float row would cost more in the call than in the copy).
#define ROW_LOOPS __attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-tree-loop-distribute-patterns")))

// flat[(c*s*s + a*s + b) * seq + lead + n*plane + u*ws + v] = src[n][c][u*s + a - pad_y][v*s + b - pad_x],
// 0 outside the data. src: the chunk's first image and channel; images img_stride values apart.
// masks (stride-1 layouts only, else NULL): the AVX-512 expanding copy of plane_masks. round
// (cpu_conv_flat.h): FLAT_EXACT, or each value rounded to a bf16 operand as it is copied (nn/bf16.h),
// in every path, by the AVX-512 copies' method where they run; or FLAT_FROM_BF16, src holding bf16
// values (uint16_t) that are widened as they are copied. src, img_stride and the offsets below count
// values of the source's type.
ROW_LOOPS static void to_flat(float* flat, const Flat* F, const void* src, size_t img_stride, int channels,
                              const FlatMasks* masks, int round) {
    int bf16 = round != FLAT_EXACT, from_bf16 = round == FLAT_FROM_BF16;
    int s = F->s, ws = F->ws;
    size_t hw = (size_t)F->h * F->w;
    size_t end = (size_t)F->lead + (size_t)F->nb * F->plane; // after the last plane: zeros
    if (masks) {
        for (int c = 0; c < channels; c++) {
            float* seq = flat + (size_t)c * F->seq;
            for (int e = 0; e < F->lead; e++) seq[e] = 0.0f;
            flat_expand_avx512(seq + F->lead, F->plane, bf16_or_float_at(src, (ptrdiff_t)(c * hw), from_bf16), img_stride,
                               F->nb, masks, round);
            for (size_t e = end; e < F->seq; e++) seq[e] = 0.0f;
        }
        return;
    }
    if (s == 2 && F->pad_y == F->pad_x && gemm_isa() == &gemm_isa_avx512) {
        for (int c = 0; c < channels; c++) {
            float* seq = flat + (size_t)c * 4 * F->seq;
            if (F->h * F->w <= 64 && F->plane <= 64) { // each image's plane in registers, its phases stored whole
                flat_split2_small_avx512(seq + F->lead, F->seq, F->plane, F->hs, ws,
                                         bf16_or_float_at(src, (ptrdiff_t)(c * hw), from_bf16), img_stride, F->nb,
                                         F->h, F->w, F->pad_y, round);
                for (int p4 = 0; p4 < 4; p4++) {
                    float* ps = seq + (size_t)p4 * F->seq;
                    for (int e = 0; e < F->lead; e++) ps[e] = 0.0f;
                    for (size_t e = end; e < F->seq; e++) ps[e] = 0.0f;
                }
                continue;
            }
            // zero, then split plane by plane
            for (size_t e = 0; e < 4 * F->seq; e++) seq[e] = 0.0f;
            for (int n = 0; n < F->nb; n++)
                flat_split2_avx512(seq + F->lead + (size_t)n * F->plane, F->seq, ws,
                                   bf16_or_float_at(src, (ptrdiff_t)(n * img_stride + c * hw), from_bf16), F->h, F->w,
                                   F->pad_y, round);
        }
        return;
    }
    for (int c = 0; c < channels; c++)
        for (int a = 0; a < s; a++)
            for (int b = 0; b < s; b++) {
                float* seq = flat + ((size_t)c * s * s + a * s + b) * F->seq;
                for (int e = 0; e < F->lead; e++) seq[e] = 0.0f;
                // Rows u whose source row u*s + a - pad_y is inside [0, h); columns likewise.
                int u_lo = cdiv(F->pad_y - a, s), u_hi = imin(F->hs, cdiv(F->h + F->pad_y - a, s));
                int v_lo = cdiv(F->pad_x - b, s), v_hi = imin(ws, cdiv(F->w + F->pad_x - b, s));
                if (v_hi < v_lo) v_hi = v_lo;
                if (u_hi < u_lo) u_hi = u_lo;
                for (int n = 0; n < F->nb; n++) {
                    size_t sp = (size_t)n * img_stride + (size_t)c * hw; // the plane's first value
                    float* pl = seq + F->lead + (size_t)n * F->plane;
                    for (int e = 0; e < u_lo * ws; e++) pl[e] = 0.0f;
                    for (int u = u_lo; u < u_hi; u++) {
                        float* row = pl + (size_t)u * ws;
                        ptrdiff_t first = (ptrdiff_t)sp + (ptrdiff_t)(u * s + a - F->pad_y) * F->w + (b - F->pad_x);
                        const float* sr = (const float*)src + first;
                        const uint16_t* sh = (const uint16_t*)src + first;
                        for (int v = 0; v < v_lo; v++) row[v] = 0.0f;
                        if (round == FLAT_FROM_BF16) // already operands: widened exactly
                            for (int v = v_lo; v < v_hi; v++) row[v] = bf16_float(sh[(ptrdiff_t)v * s]);
                        else if (bf16 && s == 1)
                            for (int v = v_lo; v < v_hi; v++) row[v] = bf16_operand_value(sr[v]);
                        else if (bf16)
                            for (int v = v_lo; v < v_hi; v++) row[v] = bf16_operand_value(sr[(ptrdiff_t)v * s]);
                        else if (s == 1)
                            for (int v = v_lo; v < v_hi; v++) row[v] = sr[v];
                        else
                            for (int v = v_lo; v < v_hi; v++) row[v] = sr[(ptrdiff_t)v * s];
                        for (int v = v_hi; v < ws; v++) row[v] = 0.0f;
                    }
                    for (int e = u_hi * ws; e < F->plane; e++) pl[e] = 0.0f;
                }
                for (size_t e = end; e < F->seq; e++) seq[e] = 0.0f;
            }
}

// dst[n][c][a + step*u][b + step*v] (+)= grid[c*ld + n*plane + u*ws + v] for u < hu, v < wu: the valid
// part of an output grid back into NCHW (dst: the chunk's first image and channel).
// masks (only when the valid part is the whole destination plane: hu = h, wu = w, step 1, else NULL):
// the AVX-512 compressing copy of plane_masks.
ROW_LOOPS static void from_grid(float* dst, size_t img_stride, int h, int w, int channels, const float* grid,
                                size_t ld, const Flat* F, int hu, int wu, int step, int a, int b, int accumulate,
                                const FlatMasks* masks) {
    if (masks) {
        for (int c = 0; c < channels; c++)
            flat_compress_avx512(dst + (size_t)c * h * w, img_stride, grid + (size_t)c * ld, F->plane, F->nb, masks,
                                 accumulate);
        return;
    }

    for (int c = 0; c < channels; c++)
        for (int n = 0; n < F->nb; n++) {
            const float* g = grid + (size_t)c * ld + (size_t)n * F->plane;
            float* d = dst + (size_t)n * img_stride + (size_t)c * h * w + (size_t)a * w + b;
            for (int u = 0; u < hu; u++) {
                const float* gr = g + (size_t)u * F->ws;
                float* dr = d + (size_t)u * step * w;
                if (step == 1) {
                    if (accumulate)
                        for (int v = 0; v < wu; v++) dr[v] += gr[v];
                    else
                        for (int v = 0; v < wu; v++) dr[v] = gr[v];
                } else if (accumulate)
                    for (int v = 0; v < wu; v++) dr[(size_t)v * step] += gr[v];
                else
                    for (int v = 0; v < wu; v++) dr[(size_t)v * step] = gr[v];
            }
        }
}

// How the AVX-512 copies round in bf16 mode: the fastest way this CPU has, unless a test chose
// (looked up on each call, a read of the CPU's feature bits: nothing is written from the threads).
static int round_mode = -1;
void cpu_conv_flat_set_rounding(int mode) { round_mode = mode; }
static int bf16_rounding(void) { return round_mode >= 0 ? round_mode : flat_round_mode_avx512(); }

// to_flat, in bf16 mode with every value rounded to bf16 as it is copied: the FP32 indirect and dot
// kernels then multiply exactly what a bf16 product would (nn/bf16.h) and sum in FP32, with no pass
// over the planes of its own.
// src_bf16: src holds bf16 values (ConvShape.x_bf16), already operands; `at` is the first value's index.
static void to_flat_operand(float* flat, const Flat* F, const void* src, int src_bf16, size_t at, size_t img_stride,
                            int channels, const FlatMasks* masks) {
    int round = src_bf16 ? FLAT_FROM_BF16 : cpu_bf16 ? bf16_rounding() : FLAT_EXACT;
    to_flat(flat, F, bf16_or_float_at(src, at, round == FLAT_FROM_BF16), img_stride, channels, masks, round);
}

// The weight as a GEMM operand reads it: itself, or in bf16 mode its rounded copy (calling thread's scratch).
static const float* weight_operand(const float* w, size_t n) {
    if (!cpu_bf16) return w;
    float* r = cpu_scratch(SLOT_CONV_W, n);
    memcpy(r, w, n * sizeof(float));
    cpu_round_bf16(r, n);
    return r;
}

// A table of `count` row pointers in per-thread scratch (the indirect GEMM's B rows).
static const float** row_table(int slot, int count) {
    return (const float**)(void*)cpu_scratch(slot, ((size_t)count * sizeof(float*) + sizeof(float) - 1) / sizeof(float));
}

// Whether a stride-1 convolution with kernel k and padding pad keeps the map ("same"): then its
// planes can share their padding (the comment at the top).
static int shares_padding(int stride, int k, int pad) { return stride == 1 && k == 2 * pad + 1; }

// The shared-padding plane of an h x w map: the data at the top left of (h + pad) x (w + pad), after
// pad * ws + pad zeros, so a shift of (dy, dx) rows and columns (|dy|, |dx| <= pad) reads
// lead + dy * ws + dx past the sequence's start: never before it.
static void share_padding(Flat* F, int pad) {
    F->pad_y = F->pad_x = 0;
    F->hs = F->h + pad, F->ws = F->w + pad, F->plane = F->hs * F->ws;
    F->lead = pad * F->ws + pad;
}

// Geometry of the input side (forward and filter gradient): phase planes of the padded input, and
// each tap's phase and shift. The planes must reach row h_out - 1 + (k - 1) / s.
static Flat input_flat(const ConvShape* s, int* phase, ptrdiff_t* shift, ptrdiff_t* max_shift) {
    Flat F = {.s = s->stride, .pad_y = s->pad, .pad_x = s->pad, .h = s->h, .w = s->w};
    F.hs = imax(cdiv(s->h + 2 * s->pad, s->stride), s->h_out + (s->k - 1) / s->stride);
    F.ws = imax(cdiv(s->w + 2 * s->pad, s->stride), s->w_out + (s->k - 1) / s->stride);
    F.plane = F.hs * F.ws;
    int shared = shares_padding(s->stride, s->k, s->pad);
    if (shared) share_padding(&F, s->pad);
    *max_shift = 0;
    for (int ky = 0; ky < s->k; ky++)
        for (int kx = 0; kx < s->k; kx++) {
            int t = ky * s->k + kx;
            phase[t] = (ky % s->stride) * s->stride + kx % s->stride;
            // input (oy + ky - pad, ox + kx - pad) of output (oy, ox): unshared planes hold it pad
            // rows and columns further on, shared ones lead floats
            shift[t] = shared ? F.lead + (ptrdiff_t)(ky - s->pad) * F.ws + (kx - s->pad)
                              : (ptrdiff_t)(ky / s->stride) * F.ws + kx / s->stride;
            if (shift[t] > *max_shift) *max_shift = shift[t];
        }
    return F;
}

// The threads a pass uses (1 when called inside someone else's parallel region).
static int team_size(void) { return cpu_in_parallel() ? 1 : cpu_max_threads(); }

// Images per chunk: enough for about TARGET_COLUMNS grid columns (the GEMM's N; one 32x32 image is
// already 1156), no more (at most CHUNK_FLOATS of buffers, at most a thread's share of the batch).
// Few images per chunk matter more than cache fit: a chunk reads one group's channels of each of its
// images, so with one image the sweep over the groups walks through that image's memory in order,
// while with dozens it would hop between dozens of 4 KiB planes, defeating the prefetchers.
static int chunk_images(const ConvShape* s, int plane, size_t per_image, int T) {
    int share = (s->n + T - 1) / T;
    int want = (TARGET_COLUMNS + plane - 1) / plane;
    int fit = (int)(CHUNK_FLOATS / (per_image ? per_image : 1));
    return imax(1, imin(imin(want, fit), share));
}

// Thread t of T takes images [lo, hi): a static split of the batch.
static void thread_images(int n, int T, int* lo, int* hi) {
    int t = cpu_thread_num();
    *lo = (int)((long)n * t / T), *hi = (int)((long)n * (t + 1) / T);
}

// The forward's and the filter gradient's input grid: input_flat, with images chunked so a chunk's
// planes (ci * S2 input phases + co outputs per image) stay small, and the flat sequence long enough
// for the largest tap shift.
static Flat input_flat_chunked(const ConvShape* s, int* phase, ptrdiff_t* shift, int T) {
    int G = s->groups, ci = s->c_in / G, co = s->c_out / G, S2 = s->stride * s->stride;
    NN_ASSERT(s->k * s->k <= MAX_TAPS, "convolution kernel %dx%d is larger than the CPU backend handles", s->k, s->k);
    ptrdiff_t max_shift;
    Flat F = input_flat(s, phase, shift, &max_shift);
    F.nb = chunk_images(s, F.plane, (size_t)(ci * S2 + co) * F.plane, T);
    F.seq = (size_t)F.nb * F.plane + max_shift + GEMM_INDIRECT_SLACK;
    return F;
}

void cpu_conv_flat_forward(float* y, const float* x, const float* w, const ConvShape* s) {
    int G = s->groups, ci = s->c_in / G, co = s->c_out / G, kk = s->k * s->k, S2 = s->stride * s->stride;
    int phase[MAX_TAPS];
    ptrdiff_t shift[MAX_TAPS];
    int T = team_size();
    Flat F = input_flat_chunked(s, phase, shift, T);
    size_t img_x = (size_t)s->c_in * s->h * s->w, img_y = (size_t)s->c_out * s->h_out * s->w_out;
    size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->h_out * s->w_out;
    static __thread FlatMasks in_m, out_m; // (per calling thread: ~6 KiB each)
    const FlatMasks* in_masks = S2 == 1 ? plane_masks(&in_m, F.hs, F.ws, F.pad_y, F.pad_x, s->h, s->w) : NULL;
    const FlatMasks* out_masks = plane_masks(&out_m, F.hs, F.ws, 0, 0, s->h_out, s->w_out);
    w = weight_operand(w, (size_t)s->c_out * ci * kk);
#pragma omp parallel num_threads(T)
    {
        int lo, hi;
        thread_images(s->n, T, &lo, &hi);
        float* flat = cpu_scratch(SLOT_CONV_A, (size_t)ci * S2 * F.seq);          // (ci, s*s, seq)
        float* grid = cpu_scratch(SLOT_CONV_B, (size_t)co * F.nb * F.plane);      // (co, nb*plane)
        const float** rows = row_table(SLOT_CONV_ROWS, ci * kk); // B row (c, tap): its shifted phase plane
        for (int c = 0; c < ci; c++)
            for (int t = 0; t < kk; t++) rows[c * kk + t] = flat + ((size_t)c * S2 + phase[t]) * F.seq + shift[t];
        for (int n0 = lo; n0 < hi; n0 += F.nb) {
            Flat C = F;
            C.nb = imin(F.nb, hi - n0);
            int Q = C.nb * C.plane;
            for (int g = 0; g < G; g++) {
                to_flat_operand(flat, &C, x, s->x_bf16, n0 * img_x + g * ci * in_plane, img_x, ci, in_masks);
                GemmOperand A = gemm_a_matrix(w + (size_t)g * co * ci * kk, ci * kk, 0); // w[g] (co, ci*kk)
                GemmOut out = gemm_c_matrix(grid, Q);
                gemm_indirect(co, Q, ci * kk, &A, rows, &out);
                from_grid(y + n0 * img_y + g * co * out_plane, img_y, s->h_out, s->w_out, co, grid, Q, &C,
                          s->h_out, s->w_out, 1, 0, 0, 0, out_masks);
            }
        }
    }
}

void cpu_conv_flat_backward_data(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate) {
    int G = s->groups, ci = s->c_in / G, co = s->c_out / G, k = s->k, kk = k * k, st = s->stride, p = s->pad;
    NN_ASSERT(kk <= MAX_TAPS && st <= 16, "convolution kernel %dx%d stride %d is beyond the CPU backend", k, k, st);
    // Output phase a (dx rows a, a+st, ...) receives the taps ky = a + p (mod st), from dy row u + d,
    // d = (a + p - ky) / st. The same offsets serve columns.
    int ntap[16], tap[16][16], d[16][16], d_min = 0, d_max = 0;
    for (int a = 0; a < st; a++) {
        ntap[a] = 0;
        for (int ky = 0; ky < k; ky++)
            if (((a + p - ky) % st + st) % st == 0) {
                int dd = (a + p - ky) >= 0 ? (a + p - ky) / st : -((ky - a - p) / st);
                tap[a][ntap[a]] = ky, d[a][ntap[a]++] = dd;
                d_min = imin(d_min, dd), d_max = imax(d_max, dd);
            }
    }
    // dy in flat layout (one phase), padded so that every shift is >= 0 and every read in range: dy
    // row u + d of dx row u is at (d + pad_lo) * ws past the plane's row u (pad_lo = -d_min), or, in
    // the shared-padding layout (d from -pad to pad), lead + d * ws past it.
    int pad_lo = -d_min;
    Flat F = {.s = 1, .pad_y = pad_lo, .pad_x = pad_lo, .h = s->h_out, .w = s->w_out};
    F.hs = imax(pad_lo + s->h_out, cdiv(s->h, st) + d_max + pad_lo);
    F.ws = imax(pad_lo + s->w_out, cdiv(s->w, st) + d_max + pad_lo);
    F.plane = F.hs * F.ws;
    int shared = shares_padding(st, k, p);
    if (shared) share_padding(&F, p);
    ptrdiff_t at0 = shared ? F.lead : (ptrdiff_t)pad_lo * (F.ws + 1); // where shift (0, 0) reads
    ptrdiff_t max_shift = shared ? 2 * (ptrdiff_t)F.lead : (ptrdiff_t)(d_max + pad_lo) * (F.ws + 1);
    int T = team_size();
    F.nb = chunk_images(s, F.plane, (size_t)(co + ci) * F.plane, T);
    F.seq = (size_t)F.nb * F.plane + max_shift + GEMM_INDIRECT_SLACK;
    size_t img_x = (size_t)s->c_in * s->h * s->w, img_y = (size_t)s->c_out * s->h_out * s->w_out;
    size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->h_out * s->w_out;

    // Per phase (a, b) and group: A (ci, co * taps) with A[c][o*taps + t] = w[g][o][c][tap t].
    size_t wsize = (size_t)s->c_out * ci * kk, a_off[256];
    float* Aall = cpu_scratch(SLOT_CONV_W, wsize);
    size_t off = 0;
    for (int a = 0; a < st; a++)
        for (int b = 0; b < st; b++) {
            int L = ntap[a] * ntap[b];
            a_off[a * st + b] = off;
            for (int g = 0; g < G; g++)
                for (int c = 0; c < ci; c++)
                    for (int o = 0; o < co; o++)
                        for (int t = 0; t < L; t++) {
                            int ky = tap[a][t / ntap[b]], kx = tap[b][t % ntap[b]];
                            Aall[off + ((size_t)g * ci + c) * co * L + (size_t)o * L + t] =
                                w[(((size_t)g * co + o) * ci + c) * kk + ky * k + kx];
                        }
            off += (size_t)G * ci * co * L;
        }
    if (cpu_bf16) cpu_round_bf16(Aall, wsize);

    static __thread FlatMasks in_m, out_m; // (per calling thread: ~6 KiB each)
    const FlatMasks* in_masks = plane_masks(&in_m, F.hs, F.ws, F.pad_y, F.pad_x, s->h_out, s->w_out);
    int merge2 = st == 2 && gemm_isa() == &gemm_isa_avx512 && ntap[0] > 0 && ntap[1] > 0;
    // (8x8 maps and smaller: a whole plane in registers)
    int small_merge = merge2 && s->h * s->w <= 64 && ((s->h - 1) / 2) * F.ws + (s->w - 1) / 2 < 32;
    const FlatMasks* out_masks = st == 1 ? plane_masks(&out_m, F.hs, F.ws, 0, 0, s->h, s->w) : NULL;
#pragma omp parallel num_threads(T)
    {
        int lo, hi;
        thread_images(s->n, T, &lo, &hi);
        float* flat = cpu_scratch(SLOT_CONV_A, (size_t)co * F.seq);          // (co, seq)
        // (phases, ci, nb*plane): stride 2 on AVX-512 keeps the four phase grids and interleaves them
        // into dx in one pass (flat_merge2_avx512); otherwise each phase is written out on its own.
        float* grid = cpu_scratch(SLOT_CONV_B, (size_t)(merge2 ? 4 : 1) * ci * F.nb * F.plane);
        const float** rows = row_table(SLOT_CONV_ROWS, co * kk);             // B row (o, tap)
        for (int n0 = lo; n0 < hi; n0 += F.nb) {
            Flat C = F;
            C.nb = imin(F.nb, hi - n0);
            int Q = C.nb * C.plane;
            for (int g = 0; g < G; g++) {
                to_flat_operand(flat, &C, dy, s->dy_bf16, n0 * img_y + g * co * out_plane, img_y, co, in_masks);
                float* dxg = dx + n0 * img_x + g * ci * in_plane;
                for (int a = 0; a < st; a++)
                    for (int b = 0; b < st; b++) {
                        int L = ntap[a] * ntap[b], hu = cdiv(s->h - a, st), wu = cdiv(s->w - b, st);
                        if (L == 0) { // no tap reaches these pixels: their gradient is zero
                            if (!accumulate)
                                for (int n = 0; n < C.nb; n++)
                                    for (int c = 0; c < ci; c++)
                                        for (int u = 0; u < hu; u++)
                                            for (int v = 0; v < wu; v++)
                                                dxg[n * img_x + c * in_plane + (size_t)(a + u * st) * s->w + b + v * st] = 0.0f;
                            continue;
                        }
                        for (int o = 0; o < co; o++)
                            for (int t = 0; t < L; t++)
                                rows[o * L + t] = flat + (size_t)o * C.seq + at0 + (ptrdiff_t)d[a][t / ntap[b]] * C.ws +
                                                  d[b][t % ntap[b]];
                        GemmOperand A = gemm_a_matrix(Aall + a_off[a * st + b] + (size_t)g * ci * co * L, co * L, 0);
                        float* pg = grid + (merge2 ? (size_t)(a * st + b) * ci * Q : 0);
                        GemmOut out = gemm_c_matrix(pg, Q);
                        gemm_indirect(ci, Q, co * L, &A, rows, &out);
                        if (!merge2)
                            from_grid(dxg, img_x, s->h, s->w, ci, pg, Q, &C, hu, wu, st, a, b, accumulate, out_masks);
                    }
                if (small_merge)
                    for (int c = 0; c < ci; c++) { // all images of the channel at once
                        const float* ph[4];
                        for (int p4 = 0; p4 < 4; p4++) ph[p4] = grid + ((size_t)p4 * ci + c) * Q;
                        flat_merge2_small_avx512(dxg + c * in_plane, img_x, s->h, s->w, ph, C.plane, C.ws, C.nb,
                                                 accumulate);
                    }
                else if (merge2)
                    for (int c = 0; c < ci; c++)
                        for (int n = 0; n < C.nb; n++) {
                            const float* ph[4];
                            for (int p4 = 0; p4 < 4; p4++) ph[p4] = grid + ((size_t)p4 * ci + c) * Q + (size_t)n * C.plane;
                            flat_merge2_avx512(dxg + n * img_x + c * in_plane, s->h, s->w, ph, C.ws, accumulate);
                        }
            }
        }
    }
}

void cpu_conv_flat_backward_filter(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate) {
    int G = s->groups, ci = s->c_in / G, co = s->c_out / G, kk = s->k * s->k, S2 = s->stride * s->stride;
    int phase[MAX_TAPS];
    ptrdiff_t shift[MAX_TAPS];
    int T = team_size();
    Flat F = input_flat_chunked(s, phase, shift, T);
    // dy on the same grid as the forward output (zeros at the dropped positions), no shifts.
    Flat D = {.s = 1, .h = s->h_out, .w = s->w_out, .hs = F.hs, .ws = F.ws, .plane = F.plane, .nb = F.nb};
    D.seq = (size_t)F.nb * F.plane;
    size_t img_x = (size_t)s->c_in * s->h * s->w, img_y = (size_t)s->c_out * s->h_out * s->w_out;
    size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->h_out * s->w_out;
    size_t wsize = (size_t)s->c_out * ci * kk;
    float* partial[CPU_MAX_THREADS] = {0};
    static __thread FlatMasks in_m, dy_m;
    const FlatMasks* in_masks = S2 == 1 ? plane_masks(&in_m, F.hs, F.ws, F.pad_y, F.pad_x, s->h, s->w) : NULL;
    const FlatMasks* dy_masks = plane_masks(&dy_m, F.hs, F.ws, 0, 0, s->h_out, s->w_out);
    const GemmIsa* isa = gemm_isa();
#pragma omp parallel num_threads(T)
    {
        int lo, hi, t = cpu_thread_num();
        thread_images(s->n, T, &lo, &hi);
        float* part = cpu_scratch(SLOT_CONV_C, wsize); // this thread's dw (c_out, ci, k, k)
        memset(part, 0, wsize * sizeof(float));
        partial[t] = part;
        float* flat = cpu_scratch(SLOT_CONV_A, (size_t)ci * S2 * F.seq); // (ci, s*s, seq)
        float* dyg = cpu_scratch(SLOT_CONV_B, (size_t)co * D.seq);        // (co, nb*plane)
        enum { ROWS = 64 };
        const float *arow[ROWS], *brow[ROWS];
        for (int n0 = lo; n0 < hi; n0 += F.nb) {
            Flat C = F, E = D;
            C.nb = E.nb = imin(F.nb, hi - n0);
            int Q = C.nb * C.plane;
            for (int g = 0; g < G; g++) {
                to_flat_operand(flat, &C, x, s->x_bf16, n0 * img_x + g * ci * in_plane, img_x, ci, in_masks);
                to_flat_operand(dyg, &E, dy, s->dy_bf16, n0 * img_y + g * co * out_plane, img_y, co, dy_masks);
                // dw[g][o][c*kk + tap] += sum over q of dy[o][q] * flat[c][phase(tap)][q + shift(tap)]
                float* dwg = part + (size_t)g * co * ci * kk;
                for (int i0 = 0; i0 < co; i0 += ROWS)
                    for (int j0 = 0; j0 < ci * kk; j0 += ROWS) {
                        int m = imin(ROWS, co - i0), nn = imin(ROWS, ci * kk - j0);
                        for (int i = 0; i < m; i++) arow[i] = dyg + (size_t)(i0 + i) * E.seq;
                        for (int j = 0; j < nn; j++) {
                            int c = (j0 + j) / kk, tp = (j0 + j) % kk;
                            brow[j] = flat + ((size_t)c * S2 + phase[tp]) * C.seq + shift[tp];
                        }
                        isa->dot(m, nn, Q, arow, brow, dwg + (size_t)i0 * ci * kk + j0, ci * kk);
                    }
            }
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (size_t i = 0; i < wsize; i++) {
            float sum = accumulate ? dw[i] : 0.0f;
            for (int u = 0; u < T; u++) sum += partial[u][i];
            dw[i] = sum;
        }
    }
}
