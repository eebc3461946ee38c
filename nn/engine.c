#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "profile.h"
#include "rng.h"
#include "util.h"

// Every activation starts on a 256-byte boundary: what cuDNN and vector loads like best.
#define ACT_ALIGN 256

Engine* engine_create(const Backend* be) {
    Engine* e = NN_CALLOC(1, sizeof(Engine));
    e->be = be;
    return e;
}

void engine_destroy(Engine* e) {
    if (!e) return;
    const Backend* be = e->be;
    if (e->param_data) be->free(e->param_data);
    if (e->param_grad) be->free(e->param_grad);
    if (e->param_momentum) be->free(e->param_momentum);
    if (e->buffer_data) be->free(e->buffer_data);
    if (e->act_base) be->free(e->act_base);
    free(e->tensors);
    free(e->tape);
    free(e);
}

// ---------------------------------------------------------------------------------------------
// Parameters

static Tensor* register_param(Engine* e, const char* name, int ndim, const int* dims, int is_buffer,
                              ParamInit init, float bound) {
    NN_ASSERT(!e->param_data, "parameter '%s' registered after engine_alloc_params", name);
    NN_ASSERT(e->num_params < ENGINE_MAX_PARAMS, "more than %d parameters", ENGINE_MAX_PARAMS);
    NN_ASSERT(ndim >= 1 && ndim <= 4, "parameter '%s': ndim %d", name, ndim);
    NN_ASSERT(strlen(name) < ENGINE_NAME_LEN, "parameter name '%s' too long", name);
    NN_ASSERT(!engine_find_param(e, name), "parameter '%s' registered twice", name);
    Param* p = &e->params[e->num_params++];
    memset(p, 0, sizeof(*p));
    strcpy(p->name, name);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < 4; i++) {
        p->dims[i] = i < ndim ? dims[i] : 1;
        p->numel *= (size_t)p->dims[i];
    }
    p->is_buffer = is_buffer;
    p->init = init;
    p->bound = bound;
    // Round each parameter to 64 floats so that every one starts aligned in the arena.
    size_t padded = (p->numel + 63) / 64 * 64;
    size_t* total = is_buffer ? &e->num_buffer_floats : &e->num_param_floats;
    p->offset = *total;
    *total += padded;
    // The tensor view: dims padded to 4-D in PyTorch order, e.g. a bias (C) is (C, 1, 1, 1).
    p->t.n = p->dims[0];
    p->t.c = p->dims[1];
    p->t.h = p->dims[2];
    p->t.w = p->dims[3];
    return &p->t;
}

Tensor* engine_param(Engine* e, const char* name, int ndim, const int* dims, ParamInit init, float bound) {
    return register_param(e, name, ndim, dims, 0, init, bound);
}

Tensor* engine_buffer(Engine* e, const char* name, int ndim, const int* dims, ParamInit init) {
    return register_param(e, name, ndim, dims, 1, init, 0.0f);
}

void engine_init_params(Engine* e, uint64_t seed) {
    NN_ASSERT(e->param_data, "engine_init_params before engine_alloc_params");
    size_t most = 0;
    for (int i = 0; i < e->num_params; i++)
        if (e->params[i].numel > most) most = e->params[i].numel;
    float* host = NN_MALLOC(most * sizeof(float));
    for (int i = 0; i < e->num_params; i++) {
        Param* p = &e->params[i];
        Rng rng = rng_derive(seed, 0x1417, (uint64_t)i);
        for (size_t j = 0; j < p->numel; j++) {
            switch (p->init) {
            case INIT_ZEROS: host[j] = 0.0f; break;
            case INIT_ONES: host[j] = 1.0f; break;
            case INIT_UNIFORM: host[j] = p->bound * (2.0f * rng_uniform(&rng) - 1.0f); break;
            }
        }
        engine_write(e, &p->t, host);
    }
    free(host);
}

Param* engine_find_param(Engine* e, const char* name) {
    for (int i = 0; i < e->num_params; i++)
        if (strcmp(e->params[i].name, name) == 0) return &e->params[i];
    return NULL;
}

void engine_alloc_params(Engine* e) {
    const Backend* be = e->be;
    size_t np = e->num_param_floats ? e->num_param_floats : 1;
    size_t nb = e->num_buffer_floats ? e->num_buffer_floats : 1;
    e->param_data = be->alloc(np * sizeof(float), "parameters");
    e->param_grad = be->alloc(np * sizeof(float), "parameter gradients");
    e->param_momentum = be->alloc(np * sizeof(float), "SGD momentum");
    e->buffer_data = be->alloc(nb * sizeof(float), "batch-norm running statistics");
    be->zero(e->param_data, np * sizeof(float));
    be->zero(e->param_grad, np * sizeof(float));
    be->zero(e->param_momentum, np * sizeof(float));
    be->zero(e->buffer_data, nb * sizeof(float));
    for (int i = 0; i < e->num_params; i++) {
        Param* p = &e->params[i];
        if (p->is_buffer) {
            p->t.data = e->buffer_data + p->offset;
        } else {
            p->t.data = e->param_data + p->offset;
            p->t.grad = e->param_grad + p->offset;
            p->t.grad_written = 1; // parameter gradients always accumulate
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Activation arena, tensor pool and tape

void engine_plan_begin(Engine* e) {
    NN_ASSERT(e->param_data, "engine_plan_begin before engine_alloc_params");
    e->planning = 1;
    e->act_high_water = 0;
    engine_begin(e, 1);
}

void engine_plan_end(Engine* e) {
    NN_ASSERT(e->planning, "engine_plan_end without engine_plan_begin");
    size_t need = e->act_high_water > e->act_used ? e->act_high_water : e->act_used;
    int tensors = e->num_tensors, tape = e->tape_len;
    for (int i = 0; i < tensors; i++) free(e->plan_tensors[i]);
    free(e->plan_tensors);
    e->plan_tensors = NULL;
    e->plan_tensor_slots = 0;
    e->planning = 0;
    if (need > e->act_capacity) {
        if (e->act_base) e->be->free(e->act_base);
        e->act_base = e->be->alloc(need, "activations (lower --batch or --width)");
        e->act_capacity = need;
        e->alloc_calls++;
    }
    if (tensors > e->tensor_capacity) {
        free(e->tensors);
        e->tensors = NN_CALLOC((size_t)tensors, sizeof(Tensor));
        e->tensor_capacity = tensors;
    }
    if (tape > e->tape_capacity) {
        free(e->tape);
        e->tape = NN_CALLOC((size_t)tape, sizeof(TapeEntry));
        e->tape_capacity = tape;
    }
    e->planned = 1;
    engine_begin(e, 1);
}

void engine_describe_begin(Engine* e) {
    e->planning = 1;
    e->act_high_water = 0;
    e->described_slots = 64;
    e->num_described = 0;
    e->described = NN_MALLOC((size_t)e->described_slots * sizeof(TapeEntry));
    engine_begin(e, 1);
}

const TapeEntry* engine_described(const Engine* e, int* count) {
    *count = e->num_described;
    return e->described;
}

void engine_describe_end(Engine* e) {
    NN_ASSERT(e->described_slots, "engine_describe_end without engine_describe_begin");
    for (int i = 0; i < e->num_tensors; i++) free(e->plan_tensors[i]);
    free(e->plan_tensors);
    free(e->described);
    e->plan_tensors = NULL, e->described = NULL;
    e->plan_tensor_slots = e->described_slots = e->num_described = 0;
    e->planning = 0;
    e->num_tensors = 0, e->tape_len = 0, e->act_used = 0;
}

void engine_begin(Engine* e, int training) {
    NN_ASSERT(e->planning || e->planned, "engine_begin before the planning pass");
    e->training = training;
    e->bf16_activations = !e->fp32_activations && e->be->bf16_activations && e->be->bf16_activations();
    e->act_used = 0;
    e->num_tensors = 0;
    e->tape_len = 0;
}

static void* act_alloc(Engine* e, size_t bytes) {
    size_t start = (e->act_used + ACT_ALIGN - 1) / ACT_ALIGN * ACT_ALIGN;
    e->act_used = start + bytes;
    if (e->act_used > e->act_high_water) e->act_high_water = e->act_used;
    if (e->planning) return NULL;
    NN_ASSERT(e->act_used <= e->act_capacity,
              "this step needs %zu bytes of activations but the plan made %zu: plan with the "
              "largest step (batch size, training mode) the run will take",
              e->act_used, e->act_capacity);
    return e->act_base + start;
}

static Tensor* new_tensor(Engine* e) {
    if (e->planning) {
        // Measuring only: each tensor gets its own host struct (freed at plan end), since the
        // model reads shapes from tensors it created earlier; count what the real steps need.
        if (e->num_tensors == e->plan_tensor_slots) {
            e->plan_tensor_slots = e->plan_tensor_slots ? 2 * e->plan_tensor_slots : 256;
            e->plan_tensors = realloc(e->plan_tensors, (size_t)e->plan_tensor_slots * sizeof(Tensor*));
            NN_ASSERT(e->plan_tensors, "out of host memory while planning");
        }
        Tensor* t = NN_CALLOC(1, sizeof(Tensor));
        e->plan_tensors[e->num_tensors++] = t;
        return t;
    }
    NN_ASSERT(e->num_tensors < e->tensor_capacity,
              "step creates more tensors (%d) than the plan made", e->num_tensors + 1);
    Tensor* t = &e->tensors[e->num_tensors++];
    memset(t, 0, sizeof(*t));
    return t;
}

float* engine_scratch(Engine* e, size_t count) {
    return act_alloc(e, count * sizeof(float));
}

int* engine_scratch_int(Engine* e, size_t count) {
    return act_alloc(e, count * sizeof(int));
}

Tensor* engine_activation(Engine* e, int n, int c, int h, int w) {
    Tensor* t = new_tensor(e);
    t->n = n, t->c = c, t->h = h, t->w = w;
    size_t count = tensor_numel(t);
    t->data = engine_scratch(e, count);
    t->grad = e->training ? engine_scratch(e, count) : NULL;
    return t;
}

Tensor* engine_activation_rounded(Engine* e, int n, int c, int h, int w) {
    if (!e->bf16_activations) return engine_activation(e, n, c, h, w);
    Tensor* t = new_tensor(e);
    t->n = n, t->c = c, t->h = h, t->w = w;
    t->bf16 = 1;
    size_t count = tensor_numel(t);
    t->data = act_alloc(e, count * sizeof(uint16_t));
    t->grad = e->training ? engine_scratch(e, count) : NULL;
    return t;
}

void engine_require_fp32(const Tensor* x, const char* layer) {
    if (x->bf16)
        nn_fatal("layer '%s' reads its input as floats, but the model stored it in bf16 (a batch norm "
                 "marked BN_FEEDS_CONV feeds it: only convolutions may read such a tensor)", layer);
}

Tensor* engine_view(Engine* e, Tensor* base, int n, int c, int h, int w) {
    NN_ASSERT((size_t)n * c * h * w == tensor_numel(base), "view changes the element count");
    Tensor* t = new_tensor(e);
    t->n = n, t->c = c, t->h = h, t->w = w;
    t->data = base->data;
    t->grad = base->grad;
    t->base = base->base ? base->base : base;
    t->bf16 = base->bf16;
    t->grad_bf16 = base->grad_bf16;
    return t;
}

Tensor* engine_input(Engine* e, int n, int c, int h, int w, const float* host) {
    Tensor* t = new_tensor(e);
    t->n = n, t->c = c, t->h = h, t->w = w;
    t->data = engine_scratch(e, tensor_numel(t));
    if (!e->planning && host) e->be->upload(t->data, host, tensor_numel(t) * sizeof(float));
    return t;
}

int* engine_labels(Engine* e, int n, const int* host) {
    int* labels = engine_scratch_int(e, (size_t)n);
    if (!e->planning && host) e->be->upload(labels, host, (size_t)n * sizeof(int));
    return labels;
}

TapeEntry* engine_record(Engine* e, const OpDef* op, const char* name, Tensor* out) {
    if (!e->training) return NULL;
    TapeEntry* t;
    if (e->described_slots) { // describing: keep every entry
        if (e->num_described == e->described_slots) {
            e->described_slots *= 2;
            e->described = realloc(e->described, (size_t)e->described_slots * sizeof(TapeEntry));
            NN_ASSERT(e->described, "out of host memory while describing the model");
        }
        t = &e->described[e->num_described++];
        e->tape_len++;
    } else if (e->planning) {
        t = &e->plan_tape_stash; // written, never replayed: backward skips the planning pass
        e->tape_len++;
    } else {
        NN_ASSERT(e->tape_len < e->tape_capacity, "step records more ops than the plan made");
        t = &e->tape[e->tape_len++];
    }
    memset(t, 0, sizeof(*t));
    t->op = op;
    t->name = name;
    t->out = out;
    if (!e->planning) profiler_mark_forward(e->profiler, e->tape_len - 1, name);
    return t;
}

// ---------------------------------------------------------------------------------------------
// Backward

void engine_backward_from(Engine* e, Tensor* out, const float* host_seed) {
    NN_ASSERT(e->training, "backward in evaluation mode: no tape was recorded");
    if (e->planning) return;
    NN_ASSERT(out->grad, "backward from a tensor without a gradient buffer");
    profiler_mark_forward(e->profiler, -1, NULL);
    if (host_seed) e->be->upload(out->grad, host_seed, tensor_numel(out) * sizeof(float));
    out->grad_written = 1;
    for (int i = e->tape_len - 1; i >= 0; i--) {
        TapeEntry* t = &e->tape[i];
        Tensor* o = t->out->base ? t->out->base : t->out;
        // An output nobody consumed has no gradient: its op contributes nothing.
        if (!o->grad_written) continue;
        profiler_mark_backward(e->profiler, i, t->name);
        t->op->backward(e, t);
    }
    profiler_mark_backward(e->profiler, -1, NULL);
}

void engine_backward(Engine* e, Tensor* loss) {
    NN_ASSERT(tensor_numel(loss) == 1, "backward from a non-scalar (%d,%d,%d,%d)", loss->n, loss->c,
              loss->h, loss->w);
    const float one = 1.0f;
    engine_backward_from(e, loss, &one);
}

void engine_zero_grad(Engine* e) {
    e->be->zero(e->param_grad, e->num_param_floats * sizeof(float));
}

// ---------------------------------------------------------------------------------------------
// Host access

// n values from backend memory src, stored as floats or (bf16) as bf16 values, into host floats.
static void download_floats(Engine* e, float* host, const void* src, size_t n, int bf16) {
    if (!bf16) {
        e->be->download(host, src, n * sizeof(float));
        return;
    }
    uint16_t* h = NN_MALLOC(n * sizeof(uint16_t));
    e->be->download(h, src, n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) host[i] = bf16_float(h[i]);
    free(h);
}

void engine_read(Engine* e, float* host, const Tensor* t) {
    download_floats(e, host, t->data, tensor_numel(t), t->bf16);
}

void engine_read_grad(Engine* e, float* host, const Tensor* t) {
    NN_ASSERT(t->grad, "tensor has no gradient");
    download_floats(e, host, t->grad, tensor_numel(t), t->grad_bf16);
}

void engine_write(Engine* e, Tensor* t, const float* host) {
    NN_ASSERT(!t->bf16, "engine_write into a tensor stored in bf16");
    e->be->upload(t->data, host, tensor_numel(t) * sizeof(float));
    t->edited = 1;
}

float engine_read_scalar(Engine* e, const Tensor* t) {
    float v;
    e->be->download(&v, t->data, sizeof(float));
    return v;
}
