#include "parity_kinds.h"

#include <string.h>

static int param_index(const Engine* e, const Tensor* t) {
    for (int i = 0; i < e->num_params; i++)
        if (&e->params[i].t == t) return i;
    return -1;
}

static int is_bn(const TapeEntry* t) { return !strncmp(t->op->kind, "batchnorm", 9); }
static int is_add(const TapeEntry* t) { return !strcmp(t->op->kind, "add"); }
// Whether tape entry t reads x (an add reads two inputs).
static int reads(const TapeEntry* t, const Tensor* x) { return t->in[0] == x || (is_add(t) && t->in[1] == x); }

// Whether every use of x after tape entry `from` absorbs a per-channel shift of x: a residual add whose
// output does, or a 1x1 unpadded convolution whose output feeds batch norms only. At least one use.
static int shift_absorbed(const Engine* e, int from, const Tensor* x) {
    int uses = 0;
    for (int i = from + 1; i < e->tape_len; i++) {
        const TapeEntry* t = &e->tape[i];
        if (!reads(t, x)) continue;
        uses++;
        if (is_add(t)) {
            if (!shift_absorbed(e, i, t->out)) return 0;
        } else if (!strcmp(t->op->kind, "conv2d") && t->a.conv.k == 1 && t->a.conv.pad == 0) {
            int normalized = 0;
            for (int j = i + 1; j < e->tape_len; j++) {
                if (!reads(&e->tape[j], t->out)) continue;
                if (!is_bn(&e->tape[j])) return 0;
                normalized++;
            }
            if (!normalized) return 0;
        } else {
            return 0;
        }
    }
    return uses > 0;
}

static int param_at(const Engine* e, const float* data) {
    for (int i = 0; i < e->num_params; i++)
        if (e->params[i].t.data == data) return i;
    return -1;
}

static const TapeEntry* producer(const Engine* e, const Tensor* x) {
    for (int i = 0; i < e->tape_len; i++)
        if (e->tape[i].out == x) return &e->tape[i];
    return NULL;
}

// Whether x's per-channel batch mean is fixed by batch-norm betas: a batch norm's output (no ReLU), or
// a residual add of two such tensors.
static int mean_fixed(const Engine* e, const Tensor* x) {
    const TapeEntry* p = producer(e, x);
    if (!p) return 0;
    if (!strcmp(p->op->kind, "batchnorm")) return 1;
    return is_add(p) && mean_fixed(e, p->in[0]) && mean_fixed(e, p->in[1]);
}

void parity_param_kinds(const Engine* e, ParamKind* kinds, int* sibling) {
    for (int i = 0; i < e->num_params; i++) kinds[i] = e->params[i].is_buffer ? K_STAT : K_CONV, sibling[i] = -1;
    for (int i = 0; i < e->tape_len; i++) {
        const TapeEntry* t = &e->tape[i];
        ParamKind k = !strcmp(t->op->kind, "depthwise") ? K_DEPTHWISE : is_bn(t) ? K_BN
                    : !strcmp(t->op->kind, "linear") ? K_LINEAR : K_CONV;
        for (int j = 1; j < 3; j++) {
            int p = t->in[j] ? param_index(e, t->in[j]) : -1;
            if (p >= 0) kinds[p] = k;
        }
    }
    for (int i = 0; i < e->tape_len; i++) {
        const TapeEntry* t = &e->tape[i];
        if (!strcmp(t->op->kind, "depthwise")) { // scale-invariant: the batch norm + ReLU feeding it
            for (int j = 0; j < i; j++)
                if (e->tape[j].out == t->in[0] && !strcmp(e->tape[j].op->kind, "batchnorm+relu"))
                    kinds[param_index(e, e->tape[j].in[1])] = K_BN_SI;
        } else if (!strcmp(t->op->kind, "batchnorm") && shift_absorbed(e, i, t->out)) {
            int bias = param_index(e, t->in[2]);
            kinds[bias] = K_BN_SHIFT;
            sibling[bias] = param_index(e, t->in[1]);
        }
        const TapeEntry* conv = is_bn(t) ? producer(e, t->in[0]) : NULL;
        if (conv && !strcmp(conv->op->kind, "conv2d") && conv->a.conv.k == 1 && conv->a.conv.pad == 0 &&
            conv->a.conv.stride == 1 && mean_fixed(e, conv->in[0])) {
            int mean = param_at(e, t->a.bn.running_mean), var = param_at(e, t->a.bn.running_var);
            if (mean >= 0 && var >= 0) kinds[mean] = K_STAT_FIXED, sibling[mean] = var;
        }
    }
}
