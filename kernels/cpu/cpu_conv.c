// Convolution on the CPU by im2col + GEMM, one image and one group at a time, images spread over
// the OpenMP threads. A 1x1 convolution with stride 1 and no padding needs no im2col: the input
// plane is already the GEMM operand.
//
// For image n and group g (ci = c_in/groups channels in, co = c_out/groups out, kk = k*k, P = h_out*w_out):
//   col (ci*kk, P)   im2col of x[n, g]: row (c, ky, kx), column (oy, ox) holds x[c, oy*s-p+ky, ox*s-p+kx]
//   forward:          y[n, g] (co, P)        = w[g] (co, ci*kk)   * col
//   backward-data:    dcol    (ci*kk, P)     = w[g]^T             * dy[n, g];  dx[n, g] = col2im(dcol)
//   backward-filter:  dw[g]   (co, ci*kk)   += dy[n, g] (co, P)   * col^T
#include <string.h>

#include "cpu_kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

// Scratch slots of cpu_scratch used here (cpu_sgemm uses 2 and 3).
enum { SLOT_COL = 0, SLOT_DW = 1 };

static int is_pointwise(const ConvShape* s) {
    return s->k == 1 && s->stride == 1 && s->pad == 0;
}

// col (ci*k*k, ho*wo) from x (ci, h, w).
static void im2col(float* col, const float* x, int ci, int h, int w, int k, int stride, int pad,
                   int ho, int wo) {
    for (int c = 0; c < ci; c++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float* row = col + ((size_t)(c * k + ky) * k + kx) * ho * wo;
                const float* plane = x + (size_t)c * h * w;
                for (int oy = 0; oy < ho; oy++) {
                    int iy = oy * stride - pad + ky;
                    float* out = row + (size_t)oy * wo;
                    if (iy < 0 || iy >= h) {
                        memset(out, 0, (size_t)wo * sizeof(float));
                        continue;
                    }
                    const float* in = plane + (size_t)iy * w;
                    for (int ox = 0; ox < wo; ox++) {
                        int ix = ox * stride - pad + kx;
                        out[ox] = (ix >= 0 && ix < w) ? in[ix] : 0.0f;
                    }
                }
            }
}

// x (ci, h, w) += col2im(col): the adjoint of im2col.
static void col2im_add(float* x, const float* col, int ci, int h, int w, int k, int stride, int pad,
                       int ho, int wo) {
    for (int c = 0; c < ci; c++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const float* row = col + ((size_t)(c * k + ky) * k + kx) * ho * wo;
                float* plane = x + (size_t)c * h * w;
                for (int oy = 0; oy < ho; oy++) {
                    int iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= h) continue;
                    float* out = plane + (size_t)iy * w;
                    const float* in = row + (size_t)oy * wo;
                    for (int ox = 0; ox < wo; ox++) {
                        int ix = ox * stride - pad + kx;
                        if (ix >= 0 && ix < w) out[ix] += in[ox];
                    }
                }
            }
}

void cpu_conv2d_forward(float* y, const float* x, const float* w, const ConvShape* s) {
    int G = s->groups, ci = s->c_in / G, co = s->c_out / G, kk = s->k * s->k;
    int P = s->h_out * s->w_out, rows = ci * kk;
    size_t in_plane = (size_t)s->h * s->w;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < s->n; n++) {
        float* col = is_pointwise(s) ? NULL : cpu_scratch(SLOT_COL, (size_t)rows * P);
        for (int g = 0; g < G; g++) {
            const float* xg = x + ((size_t)n * s->c_in + (size_t)g * ci) * in_plane;
            const float* B = xg;
            if (col) {
                im2col(col, xg, ci, s->h, s->w, s->k, s->stride, s->pad, s->h_out, s->w_out);
                B = col;
            }
            float* yg = y + ((size_t)n * s->c_out + (size_t)g * co) * P;
            cpu_sgemm(0, 0, co, P, rows, 1.0f, w + (size_t)g * co * rows, rows, B, P, 0.0f, yg, P);
        }
    }
}

void cpu_conv2d_backward_data(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate) {
    int G = s->groups, ci = s->c_in / G, co = s->c_out / G, kk = s->k * s->k;
    int P = s->h_out * s->w_out, rows = ci * kk;
    size_t in_plane = (size_t)s->h * s->w;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < s->n; n++) {
        float* dcol = is_pointwise(s) ? NULL : cpu_scratch(SLOT_COL, (size_t)rows * P);
        for (int g = 0; g < G; g++) {
            float* dxg = dx + ((size_t)n * s->c_in + (size_t)g * ci) * in_plane;
            const float* dyg = dy + ((size_t)n * s->c_out + (size_t)g * co) * P;
            const float* wg = w + (size_t)g * co * rows;
            if (!dcol) {
                cpu_sgemm(1, 0, rows, P, co, 1.0f, wg, rows, dyg, P, accumulate ? 1.0f : 0.0f, dxg, P);
                continue;
            }
            cpu_sgemm(1, 0, rows, P, co, 1.0f, wg, rows, dyg, P, 0.0f, dcol, P);
            if (!accumulate) memset(dxg, 0, (size_t)ci * in_plane * sizeof(float));
            col2im_add(dxg, dcol, ci, s->h, s->w, s->k, s->stride, s->pad, s->h_out, s->w_out);
        }
    }
}

void cpu_conv2d_backward_filter(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate) {
    int G = s->groups, ci = s->c_in / G, co = s->c_out / G, kk = s->k * s->k;
    int P = s->h_out * s->w_out, rows = ci * kk;
    size_t in_plane = (size_t)s->h * s->w, wsize = (size_t)s->c_out * rows;
    int threads = cpu_max_threads();
    float* partial[256] = {0}; // each thread's own dw accumulator, summed in thread order below
    if (threads > 256) threads = 256;
#pragma omp parallel num_threads(threads)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        float* acc = cpu_scratch(SLOT_DW, wsize);
        memset(acc, 0, wsize * sizeof(float));
        partial[t] = acc;
        float* col = is_pointwise(s) ? NULL : cpu_scratch(SLOT_COL, (size_t)rows * P);
#pragma omp for schedule(static)
        for (int n = 0; n < s->n; n++) {
            for (int g = 0; g < G; g++) {
                const float* xg = x + ((size_t)n * s->c_in + (size_t)g * ci) * in_plane;
                const float* dyg = dy + ((size_t)n * s->c_out + (size_t)g * co) * P;
                const float* B = xg;
                if (col) {
                    im2col(col, xg, ci, s->h, s->w, s->k, s->stride, s->pad, s->h_out, s->w_out);
                    B = col;
                }
                cpu_sgemm(0, 1, co, rows, P, 1.0f, dyg, P, B, P, 1.0f, acc + (size_t)g * co * rows, rows);
            }
        }
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < wsize; i++) {
        float sum = accumulate ? dw[i] : 0.0f;
        for (int t = 0; t < threads; t++)
            if (partial[t]) sum += partial[t][i];
        dw[i] = sum;
    }
}

void cpu_dr_scatter(float* wbig, const float* w, int c, int g, int kk) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < c; o++) {
        float* row = wbig + (size_t)o * g * kk; // output channel o: its g input filters
        memset(row, 0, (size_t)g * kk * sizeof(float));
        memcpy(row + (size_t)(o % g) * kk, w + (size_t)o * kk, (size_t)kk * sizeof(float));
    }
}

void cpu_dr_gather(float* dw, const float* dwbig, int c, int g, int kk) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < c; o++) {
        const float* diag = dwbig + ((size_t)o * g + (size_t)(o % g)) * kk;
        for (int i = 0; i < kk; i++) dw[(size_t)o * kk + i] += diag[i];
    }
}
