// The remaining ops by their definitions: ReLU, the residual add, pooling, linear, softmax
// cross-entropy, the running metrics, SGD, and batches from resident records.
#include <math.h>
#include <string.h>

#include "../../nn/augment.h"
#include "../../nn/util.h"
#include "ref_kernels.h"

// y = max(x, 0), NaN and -0 giving 0. y, x (count).
void ref_relu_forward(float* y, const float* x, size_t count) {
    for (size_t i = 0; i < count; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// dx (+)= dy where y > 0, else 0. dx, dy, y (count).
void ref_relu_backward(float* dx, const float* dy, const float* y, size_t count, int accumulate) {
    for (size_t i = 0; i < count; i++) {
        float v = y[i] > 0.0f ? dy[i] : 0.0f;
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

// y = a + b. y, a, b (count).
void ref_add_forward(float* y, const float* a, const float* b, size_t count) {
    for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
}

// da (+)= dy, db (+)= dy (dy/da = dy/db = 1). da, db (count) or NULL; they may be one buffer
// (y = x + x), then each element gets da's update, then db's.
void ref_add_backward(float* da, float* db, const float* dy, size_t count, int accumulate_a, int accumulate_b) {
    for (size_t i = 0; i < count; i++) {
        if (da) da[i] = accumulate_a ? da[i] + dy[i] : dy[i];
        if (db) db[i] = accumulate_b ? db[i] + dy[i] : dy[i];
    }
}

// Whether window position (oy, ox) + (ky, kx) falls inside the plane; its input pixel in *at.
static int window_pixel(const PoolShape* p, int oy, int ox, int ky, int kx, int* at) {
    int iy = oy * p->stride - p->pad + ky, ix = ox * p->stride - p->pad + kx;
    *at = iy * p->w + ix;
    return iy >= 0 && iy < p->h && ix >= 0 && ix < p->w;
}

// y[plane][oy][ox] = (sum of the window's inputs) / (k * k): padding counts as zeros (PyTorch's
// count_include_pad). x (n, c, h, w) = n * c planes, y (n, c, h_out, w_out).
void ref_avgpool_forward(float* y, const float* x, const PoolShape* p) {
    for (int pl = 0; pl < p->n * p->c; pl++)
        for (int oy = 0; oy < p->h_out; oy++)
            for (int ox = 0; ox < p->w_out; ox++) {
                double sum = 0.0;
                for (int ky = 0; ky < p->k; ky++)
                    for (int kx = 0; kx < p->k; kx++) {
                        int at;
                        if (window_pixel(p, oy, ox, ky, kx, &at)) sum += x[(size_t)pl * p->h * p->w + at];
                    }
                y[((size_t)pl * p->h_out + oy) * p->w_out + ox] = (float)(sum / (p->k * p->k));
            }
}

// dx (+)= every window's dy / (k * k), sent back to each of its inputs. dy (n, c, h_out, w_out), dx (n, c, h, w).
void ref_avgpool_backward(float* dx, const float* dy, const PoolShape* p, int accumulate) {
    if (!accumulate) memset(dx, 0, (size_t)p->n * p->c * p->h * p->w * sizeof(float));
    for (int pl = 0; pl < p->n * p->c; pl++)
        for (int oy = 0; oy < p->h_out; oy++)
            for (int ox = 0; ox < p->w_out; ox++) {
                float g = dy[((size_t)pl * p->h_out + oy) * p->w_out + ox] / (float)(p->k * p->k);
                for (int ky = 0; ky < p->k; ky++)
                    for (int kx = 0; kx < p->k; kx++) {
                        int at;
                        if (window_pixel(p, oy, ox, ky, kx, &at)) dx[(size_t)pl * p->h * p->w + at] += g;
                    }
            }
}

// y = the window's maximum; argmax = its index in the (h, w) plane, -1 for a window entirely in the
// padding. PyTorch's rule: a value replaces the best so far if it is larger or NaN (NaN propagates),
// so the first of equal maxima wins. x (n, c, h, w), y and argmax (n, c, h_out, w_out).
void ref_maxpool_forward(float* y, int* argmax, const float* x, const PoolShape* p) {
    for (int pl = 0; pl < p->n * p->c; pl++)
        for (int oy = 0; oy < p->h_out; oy++)
            for (int ox = 0; ox < p->w_out; ox++) {
                float best = -INFINITY;
                int where = -1;
                for (int ky = 0; ky < p->k; ky++)
                    for (int kx = 0; kx < p->k; kx++) {
                        int at;
                        if (!window_pixel(p, oy, ox, ky, kx, &at)) continue;
                        float v = x[(size_t)pl * p->h * p->w + at];
                        if (where < 0 || v > best || isnan(v)) best = v, where = at;
                    }
                size_t o = ((size_t)pl * p->h_out + oy) * p->w_out + ox;
                y[o] = best, argmax[o] = where;
            }
}

// dx (+)= dy sent to the window's winner. dy, argmax (n, c, h_out, w_out), dx (n, c, h, w).
void ref_maxpool_backward(float* dx, const float* dy, const int* argmax, const PoolShape* p, int accumulate) {
    if (!accumulate) memset(dx, 0, (size_t)p->n * p->c * p->h * p->w * sizeof(float));
    for (int pl = 0; pl < p->n * p->c; pl++)
        for (int o = 0; o < p->h_out * p->w_out; o++) {
            size_t at = (size_t)pl * p->h_out * p->w_out + o;
            if (argmax[at] >= 0) dx[(size_t)pl * p->h * p->w + argmax[at]] += dy[at];
        }
}

// y[i][j] = b[j] + sum over k of x[i][k] * w[j][k]. x (n, in), w (out, in), b (out), y (n, out).
// The products' factors go through ref_factor (bf16 mode rounds them); the bias and db stay FP32.
void ref_linear_forward(float* y, const float* x, const float* w, const float* b, int n, int in, int out) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < out; j++) {
            double sum = b[j];
            for (int k = 0; k < in; k++) sum += ref_factor(x[(size_t)i * in + k]) * ref_factor(w[(size_t)j * in + k]);
            y[(size_t)i * out + j] = (float)sum;
        }
}

// dx[i][k] (+)= sum_j dy[i][j] * w[j][k]  (dx may be NULL);  dw[j][k] += sum_i dy[i][j] * x[i][k];
// db[j] += sum_i dy[i][j]. dy (n, out), x and dx (n, in), w and dw (out, in), db (out).
void ref_linear_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                         const float* w, int n, int in, int out, int accumulate_dx) {
    if (dx)
        for (int i = 0; i < n; i++)
            for (int k = 0; k < in; k++) {
                double sum = 0.0;
                for (int j = 0; j < out; j++) sum += ref_factor(dy[(size_t)i * out + j]) * ref_factor(w[(size_t)j * in + k]);
                float* d = &dx[(size_t)i * in + k];
                *d = accumulate_dx ? (float)(*d + sum) : (float)sum;
            }
    for (int j = 0; j < out; j++) {
        double sum_b = 0.0;
        for (int i = 0; i < n; i++) sum_b += dy[(size_t)i * out + j];
        db[j] += (float)sum_b;
        for (int k = 0; k < in; k++) {
            double sum = 0.0;
            for (int i = 0; i < n; i++) sum += ref_factor(dy[(size_t)i * out + j]) * ref_factor(x[(size_t)i * in + k]);
            dw[(size_t)j * in + k] += (float)sum;
        }
    }
}

// Row i: probs = softmax(z) = exp(z - lse), lse = log(sum exp(z)) = m + log(sum exp(z - m)) with
// m = max(z) (no overflow); its loss is lse - z[label]. loss (1) = mean over the rows.
// logits and probs (n, classes), labels (n); a label outside 0..classes-1 is fatal.
void ref_cross_entropy_forward(float* loss, float* probs, const float* logits, const int* labels,
                               int n, int classes) {
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float* z = logits + (size_t)i * classes;
        if (labels[i] < 0 || labels[i] >= classes)
            nn_fatal("cross-entropy: label %d of batch row %d is outside 0..%d", labels[i], i, classes - 1);
        double m = z[0], sum = 0.0;
        for (int j = 1; j < classes; j++) m = z[j] > m ? z[j] : m;
        for (int j = 0; j < classes; j++) sum += exp(z[j] - m);
        double lse = m + log(sum);
        for (int j = 0; j < classes; j++) probs[(size_t)i * classes + j] = (float)exp(z[j] - lse);
        total += lse - z[labels[i]];
    }
    *loss = (float)(total / n);
}

// dlogits (+)= dloss[0] / n * (probs - onehot(labels)). dlogits, probs (n, classes); dloss (1).
void ref_cross_entropy_backward(float* dlogits, const float* dloss, const float* probs,
                                const int* labels, int n, int classes, int accumulate) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < classes; j++) {
            size_t k = (size_t)i * classes + j;
            float v = dloss[0] / (float)n * (probs[k] - (j == labels[i] ? 1.0f : 0.0f));
            dlogits[k] = accumulate ? dlogits[k] + v : v;
        }
}

// loss_sum (1) += loss * n; correct (1) += rows whose first maximal logit is the label.
void ref_metrics_accumulate(float* loss_sum, int* correct, const float* loss, const float* logits,
                            const int* labels, int n, int classes) {
    *loss_sum += loss[0] * (float)n;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int j = 1; j < classes; j++)
            if (logits[(size_t)i * classes + j] > logits[(size_t)i * classes + best]) best = j;
        *correct += best == labels[i];
    }
}

// PyTorch's SGD, in float as PyTorch computes it, element by element. p, buf, g (count):
//   d = g + weight_decay * p;  buf = momentum * buf + d;  d = nesterov ? d + momentum * buf : buf;
//   p -= lr * d
// PyTorch sets buf = d on the first step; the momentum arena starts zeroed, which gives the same.
void ref_sgd_step(float* p, float* buf, const float* g, size_t count, float lr, float momentum,
                  float weight_decay, int nesterov) {
    for (size_t i = 0; i < count; i++) {
        float d = g[i] + weight_decay * p[i];
        buf[i] = momentum * buf[i] + d;
        d = nesterov ? d + momentum * buf[i] : buf[i];
        p[i] -= lr * d;
    }
}

// images (n, 3, 32, 32) and labels (n) of the records (count, 3073) at dataset indices (n), by the
// one definition in nn/augment.h (the loader's batches).
void ref_augment_batch(float* images, int* labels, const uint8_t* records, int count, const int* indices,
                       int n, uint64_t seed, int epoch, int augment) {
    for (int j = 0; j < n; j++) {
        NN_ASSERT(indices[j] >= 0 && indices[j] < count, "augment_batch: dataset index %d of batch row %d "
                  "is outside 0..%d", indices[j], j, count - 1);
        const uint8_t* record = records + (size_t)indices[j] * (3 * AUGMENT_SIDE * AUGMENT_SIDE + 1);
        int dx = 0, dy = 0, flip = 0;
        if (augment) augment_draw(seed, epoch, indices[j], &dx, &dy, &flip);
        augment_image(images + (size_t)j * 3 * AUGMENT_SIDE * AUGMENT_SIDE, record, dx, dy, flip);
        labels[j] = record[0];
    }
}
