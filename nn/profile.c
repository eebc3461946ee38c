#include "profile.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static int has_events(const Backend* be) {
    return be->event_create && be->event_record && be->event_elapsed_ms && be->event_destroy;
}

Profiler* profiler_create(const Backend* be, int capacity) {
    Profiler* p = NN_CALLOC(1, sizeof(Profiler));
    p->be = be;
    p->capacity = capacity;
    p->ops = NN_CALLOC((size_t)capacity, sizeof(OpProfile));
    p->ran_bwd = NN_CALLOC((size_t)capacity, sizeof(int));
    p->fwd_host = NN_CALLOC((size_t)capacity + 1, sizeof(double));
    p->bwd_host = NN_CALLOC((size_t)capacity + 1, sizeof(double));
    if (has_events(be)) {
        p->fwd_ev = NN_CALLOC((size_t)capacity + 1, sizeof(void*));
        p->bwd_ev = NN_CALLOC((size_t)capacity + 1, sizeof(void*));
        for (int i = 0; i <= capacity; i++) {
            p->fwd_ev[i] = be->event_create();
            p->bwd_ev[i] = be->event_create();
        }
    }
    return p;
}

void profiler_destroy(Profiler* p) {
    if (!p) return;
    if (p->fwd_ev)
        for (int i = 0; i <= p->capacity; i++) {
            p->be->event_destroy(p->fwd_ev[i]);
            p->be->event_destroy(p->bwd_ev[i]);
        }
    free(p->fwd_ev), free(p->bwd_ev), free(p->fwd_host), free(p->bwd_host);
    free(p->ran_bwd), free(p->ops), free(p);
}

static void mark(Profiler* p, void** events, double* host, int slot) {
    NN_ASSERT(slot >= 0 && slot <= p->capacity, "profiler: %d ops exceed its capacity %d", slot, p->capacity);
    if (events) {
        p->be->event_record(events[slot]);
    } else {
        p->be->synchronize();
        host[slot] = nn_now();
    }
}

static void range(Profiler* p, const char* name) {
    if (!p->be->range_push) return;
    if (p->in_range) p->be->range_pop();
    p->in_range = name != NULL;
    if (name) p->be->range_push(name);
}

void profiler_mark_forward(Profiler* p, int entry, const char* name) {
    if (!p || !p->active) return;
    range(p, entry < 0 ? NULL : name);
    if (entry < 0) {
        mark(p, p->fwd_ev, p->fwd_host, p->entries);
        return;
    }
    mark(p, p->fwd_ev, p->fwd_host, entry);
    p->entries = entry + 1;
}

void profiler_mark_backward(Profiler* p, int entry, const char* name) {
    if (!p || !p->active) return;
    range(p, entry < 0 ? NULL : name);
    if (entry < 0) {
        mark(p, p->bwd_ev, p->bwd_host, p->capacity);
        return;
    }
    mark(p, p->bwd_ev, p->bwd_host, entry);
    p->ran_bwd[entry] = 1;
}

static double elapsed(Profiler* p, void** events, const double* host, int a, int b) {
    if (events) return p->be->event_elapsed_ms(events[a], events[b]);
    return 1e3 * (host[b] - host[a]);
}

// Multiply-adds and bytes of one op, from its shapes: the default bytes (x, parameters, y forward;
// dy, x, parameters, dx, dw backward), then the op's own cost function (its OpDef), which adds its
// arithmetic and corrects the bytes where they differ. No op kind is named here. A tensor or gradient
// stored in bf16 (Tensor.bf16, grad_bf16) counts 2 bytes a value.
static double bytes(const Tensor* t, int bf16) { return (bf16 ? 2.0 : 4.0) * (double)tensor_numel(t); }

void op_cost(const TapeEntry* t, OpCost* c) {
    memset(c, 0, sizeof(*c));
    const Tensor *y = t->out, *x = t->in[0];
    double out = bytes(y, y->bf16), in = x ? bytes(x, x->bf16) : 0;
    double dy = bytes(y, y->grad_bf16), dx = x && x->grad ? bytes(x, x->grad_bf16) : 0;
    double params = 0;
    for (int k = 1; k < 3; k++)
        if (t->in[k]) params += 4.0 * (double)tensor_numel(t->in[k]);
    c->bytes_fwd = in + params + out;
    c->bytes_bwd = dy + in + params + dx + params; // dy, x, w; dx, dw
    if (t->op->cost) t->op->cost(t, c);
}

void profile_op_cost(OpProfile* o, const TapeEntry* t) {
    OpCost c;
    op_cost(t, &c);
    o->macs_fwd = c.macs_fwd, o->macs_bwd = c.macs_bwd, o->macs_true = c.macs_true;
    o->bytes_fwd = c.bytes_fwd, o->bytes_bwd = c.bytes_bwd, o->g = c.g;
}

StepCost profile_step_cost(const Engine* e) {
    StepCost c = {0};
    for (int i = 0; i < e->tape_len; i++) {
        OpProfile o = {0};
        profile_op_cost(&o, &e->tape[i]);
        double macs = o.macs_fwd + o.macs_bwd;
        c.macs_executed += macs;
        c.macs_model += o.g > 0 ? macs / o.g : macs; // DR executes g times the depthwise work
        c.bytes += o.bytes_fwd + o.bytes_bwd;
    }
    return c;
}

void profiler_collect(Profiler* p, const Engine* e) {
    if (!p->active) return;
    int n = e->tape_len;
    NN_ASSERT(p->entries == n, "profiler: %d forward marks for %d tape entries", p->entries, n);
    for (int i = 0; i < n; i++) {
        const TapeEntry* t = &e->tape[i];
        OpProfile* o = &p->ops[i];
        if (p->steps == 0) {
            snprintf(o->name, sizeof(o->name), "%s", t->name ? t->name : t->op->kind);
            snprintf(o->kind, sizeof(o->kind), "%s", t->op->kind);
            o->bf16_products = t->op->bf16_products;
            o->n = t->out->n, o->c = t->out->c, o->h = t->out->h, o->w = t->out->w;
            profile_op_cost(o, t);
        }
        // Forward of entry i: from its mark to the next one (the last ends at the pass's end mark).
        o->fwd_ms += elapsed(p, p->fwd_ev, p->fwd_host, i, i + 1);
        // Backward of entry i: from its mark to the next backward mark (entries run in reverse).
        if (p->ran_bwd[i]) {
            int next = p->capacity;
            for (int j = i - 1; j >= 0; j--)
                if (p->ran_bwd[j]) {
                    next = j;
                    break;
                }
            o->bwd_ms += elapsed(p, p->bwd_ev, p->bwd_host, i, next);
        }
    }
    memset(p->ran_bwd, 0, sizeof(int) * (size_t)p->capacity);
    p->steps++;
}

// ---------------------------------------------------------------------------------------------

void stream_timer_init(StreamTimer* t, const Backend* be) {
    memset(t, 0, sizeof(*t));
    t->be = be;
    if (has_events(be)) {
        t->start = be->event_create();
        t->end = be->event_create();
    }
}

void stream_timer_start(StreamTimer* t) {
    if (t->start) t->be->event_record(t->start);
    else t->be->synchronize(), t->host_start = nn_now();
}

void stream_timer_stop(StreamTimer* t) {
    if (t->end) t->be->event_record(t->end);
    else t->be->synchronize(), t->host_end = nn_now();
}

double stream_timer_ms(StreamTimer* t) {
    if (t->start) return t->be->event_elapsed_ms(t->start, t->end);
    return 1e3 * (t->host_end - t->host_start);
}

void stream_timer_free(StreamTimer* t) {
    if (t->start) t->be->event_destroy(t->start), t->be->event_destroy(t->end);
    t->start = t->end = NULL;
}
