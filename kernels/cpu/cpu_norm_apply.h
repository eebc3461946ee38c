// Part of computing kernels/ref/ref_norm.c's batch norm faster (cpu_norm.c): its second pass, the
// kernels that write y (forward) and dx (backward), written once and compiled twice by cpu_norm.c:
//  - as they always were, cloned for AVX-512, AVX2 and the baseline (target_clones), storing a bf16
//    output by integer arithmetic (put16);
//  - for CPUs with AVX512_BF16, storing it by the CPU's own conversion (put16_cvt), the same bits in a
//    third of the instructions. Storing y and dx is all these passes do besides streaming x and dy,
//    and the integer rounding made them compute-bound: docs/cpu-performance.md has the measurements.
// The including file defines NORM_KERNEL (the attributes), NORM_NAME(f) (the function's name) and
// NORM_PUT16 (how 16 lanes are stored), and has defined the 16-lane helpers these use. Every other
// step (the affine step, the ReLU and its mask, the dx formula) is the same expression in both
// compilations, so both give the same bits: the same FMA contraction wherever the target has FMA.
// (No include guard: cpu_norm.c includes it twice, once per compilation of the kernels.)

// Forward: y = x * a + k per channel, then the ReLU.
NORM_KERNEL void NORM_NAME(normalize_rows)(void* y, int yb, const float* x, const float* a, const float* k, int lo,
                                           int hi, int c, int hw, int relu) {
    v16 zero = {0};
    for (int i = lo; i < hi; i++)
        for (int ch = 0; ch < c; ch++) {
            size_t off = ((size_t)i * c + ch) * hw;
            const float* xr = x + off;
            v16 av = splat(a[ch]), kv = splat(k[ch]);
            int j = 0;
            for (; j + LANES <= hw; j += LANES) {
                v16 v = affine16(load16(xr + j), av, kv);
                NORM_PUT16(y, off + j, relu ? keep_if(v, v > zero) : v, yb);
            }
            for (; j < hw; j++) {
                float v = affine1(xr[j], a[ch], k[ch]);
                put1(y, off + j, relu && v < 0.0f ? 0.0f : v, yb);
            }
        }
}

// Backward: dx (+)= a * dz + b * x + k per channel, dz = dy masked by the ReLU (as grad_rows).
NORM_KERNEL void NORM_NAME(dx_rows)(void* dx, int ob, const float* x, const float* dy, const ReluMask* mk,
                                    const float* a, const float* b, const float* k, int lo, int hi, int c, int hw,
                                    int relu, int accumulate) {
    for (int i = lo; i < hi; i++)
        for (int ch = 0; ch < c; ch++) {
            size_t off = ((size_t)i * c + ch) * hw;
            const float *xr = x + off, *dyr = dy + off;
            v16 av = splat(a[ch]), bv = splat(b[ch]), kv = splat(k[ch]);
            float fa = mask_coef(mk->a, ch), fk = mask_coef(mk->k, ch);
            v16 fav = splat(fa), fkv = splat(fk);
            int j = 0;
            for (; j + LANES <= hw; j += LANES) {
                v16 dz = load16(dyr + j), xv = load16(xr + j);
                if (relu) dz = keep_if(dz, mask16(mk, xv, fav, fkv, off + j));
                v16 v = av * dz + bv * xv + kv;
                NORM_PUT16(dx, off + j, accumulate ? get16(dx, off + j, ob) + v : v, ob);
            }
            for (; j < hw; j++) {
                float dz = relu && !mask1(mk, xr[j], fa, fk, off + j) ? 0.0f : dyr[j];
                float v = a[ch] * dz + b[ch] * xr[j] + k[ch];
                put1(dx, off + j, accumulate ? get1(dx, off + j, ob) + v : v, ob);
            }
        }
}

// Both over flat (c*hw) images with per-element coefficients (dy NULL: the forward; else the
// backward, its ReLU mask mk's coefficients per element too), 16 elements at a time for FLUSH images,
// so the coefficients are loaded once per block.
NORM_KERNEL void NORM_NAME(apply_flat)(void* out, int ob, const float* x, const float* dy, const ReluMask* mk,
                                       const float* a, const float* b, const float* k, int lo, int hi, size_t m,
                                       int relu, int accumulate) {
    v16 zero = {0};
    for (int i0 = lo; i0 < hi; i0 += FLUSH) {
        int i1 = hi < i0 + FLUSH ? hi : i0 + FLUSH;
        size_t e = 0;
        for (; e + LANES <= m; e += LANES) {
            v16 av = load16(a + e), kv = load16(k + e), bv = dy ? load16(b + e) : zero;
            v16 fav = mk->a ? load16(mk->a + e) : zero, fkv = mk->a ? load16(mk->k + e) : zero;
            for (int i = i0; i < i1; i++) {
                size_t o = (size_t)i * m + e;
                if (!dy) { // the forward: out is y
                    v16 v = affine16(load16(x + o), av, kv);
                    if (relu) v = keep_if(v, v > zero);
                    NORM_PUT16(out, o, v, ob);
                } else {
                    v16 dz = load16(dy + o), xv = load16(x + o);
                    if (relu) dz = keep_if(dz, mask16(mk, xv, fav, fkv, o));
                    v16 v = av * dz + bv * xv + kv;
                    if (accumulate) v += get16(out, o, ob);
                    NORM_PUT16(out, o, v, ob);
                }
            }
        }
        for (; e < m; e++)
            for (int i = i0; i < i1; i++) {
                size_t o = (size_t)i * m + e;
                if (!dy) {
                    float v = affine1(x[o], a[e], k[e]);
                    put1(out, o, relu && v < 0.0f ? 0.0f : v, ob);
                } else {
                    float dz = relu && !mask1(mk, x[o], mask_coef(mk->a, e), mask_coef(mk->k, e), o) ? 0.0f : dy[o];
                    float v = a[e] * dz + b[e] * x[o] + k[e];
                    put1(out, o, accumulate ? get1(out, o, ob) + v : v, ob);
                }
            }
    }
}
