// Every op of the test table (tests/op_cases.c), two ways:
//  1. finite differences, on the reference backend (the oracle, checked by calculus) and on the
//     tuned CPU backend: for L = sum(out * R) with a fixed random R, every gradient backward computes
//     (input and every parameter) is compared with the central difference
//     (L(p + eps) - L(p - eps)) / 2 eps on up to 48 elements per tensor;
//  2. the tuned CPU backend against the reference, tensor by tensor (tests/op_compare.c, as
//     test_cuda_ops does for CUDA): every case's output, running statistics, gradients, second
//     backward and evaluation forward at 1e-5, the depthwise sweep, and the kernels outside the table.
// Finite differences, in detail: Float32 forward passes limit how closely the two can agree, so the
// bound is |analytic - numeric| <= 2e-2 * |numeric| + 2e-3 * (largest analytic entry of the tensor).
// For ops with kinks (ReLU, max), an element whose difference quotient changes between eps and
// eps/2 straddles a kink and is skipped; at most a tenth of a tensor's elements may be skipped.
// Cases with a batch norm + ReLU use eps = 1e-3: a batch-norm parameter moves a whole channel, and
// larger steps push some of it across the ReLU kink.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/util.h"
#include "op_compare.h"
#include "test_util.h"


typedef struct Harness {
    Engine* e;
    OpCaseState s;
    float* seed;     // (numel(out)) R
    size_t out_size;
    float* out_host;
} Harness;

static double loss_at(Harness* h) {
    engine_begin(h->e, 1);
    Tensor* out = op_case_forward(h->e, &h->s);
    engine_read(h->e, h->out_host, out);
    double l = 0.0;
    for (size_t i = 0; i < h->out_size; i++) l += (double)h->out_host[i] * h->seed[i];
    return l;
}

static void set_element(Engine* e, Param* p, size_t j, float v) {
    e->be->upload(p->t.data + j, &v, sizeof(float));
}

static void check_case(const Backend* be, const OpCase* c) {
    Harness h = {0};
    h.e = engine_create(be);
    op_case_setup(h.e, &h.s, c);
    engine_alloc_params(h.e);
    op_case_randomize(h.e, &h.s, 1234);
    engine_plan_begin(h.e);
    op_case_forward(h.e, &h.s);
    engine_plan_end(h.e);

    // Analytic gradients.
    engine_begin(h.e, 1);
    Tensor* out = op_case_forward(h.e, &h.s);
    h.out_size = tensor_numel(out);
    h.seed = NN_MALLOC(h.out_size * sizeof(float));
    h.out_host = NN_MALLOC(h.out_size * sizeof(float));
    Rng rng = rng_derive(5, 6, 7);
    fill_uniform(h.seed, h.out_size, 0.5f, 1.5f, &rng);
    for (size_t i = 0; i < h.out_size; i++)
        if (rng_next(&rng) & 1) h.seed[i] = -h.seed[i];
    engine_zero_grad(h.e);
    engine_backward_from(h.e, out, h.seed);

    const float EPS = c->eps > 0 ? c->eps : 1e-2f;
    int checked_tensors = 0;
    for (int pi = 0; pi < h.e->num_params; pi++) {
        Param* p = &h.e->params[pi];
        if (p->is_buffer) continue;
        float* grad = NN_MALLOC(p->numel * sizeof(float));
        float* data = NN_MALLOC(p->numel * sizeof(float));
        engine_read_grad(h.e, grad, &p->t);
        engine_read(h.e, data, &p->t);
        double gmax = 0.0;
        for (size_t j = 0; j < p->numel; j++) gmax = fmax(gmax, fabs(grad[j]));
        size_t samples = p->numel < 48 ? p->numel : 48;
        int skipped = 0, bad = 0;
        double worst = 0.0;
        for (size_t si = 0; si < samples; si++) {
            size_t j = p->numel <= 48 ? si : rng_below(&rng, (uint32_t)p->numel);
            float x0 = data[j];
            set_element(h.e, p, j, x0 + EPS);
            double lp = loss_at(&h);
            set_element(h.e, p, j, x0 - EPS);
            double lm = loss_at(&h);
            double fd = (lp - lm) / (2.0 * EPS);
            if (c->kinks) {
                set_element(h.e, p, j, x0 + EPS / 2);
                double lp2 = loss_at(&h);
                set_element(h.e, p, j, x0 - EPS / 2);
                double lm2 = loss_at(&h);
                double fd2 = (lp2 - lm2) / EPS;
                if (fabs(fd - fd2) > 1e-2 * fabs(fd2) + 2e-3 * gmax + 1e-6) {
                    skipped++;
                    set_element(h.e, p, j, x0);
                    continue;
                }
            }
            set_element(h.e, p, j, x0);
            double diff = fabs(grad[j] - fd), tol = 2e-2 * fabs(fd) + 2e-3 * gmax + 1e-7;
            if (diff > tol) {
                if (bad < 3)
                    CHECK(0, "[%s] d/d %s[%zu]: backward %.6g, finite difference %.6g", c->name,
                          p->name, j, grad[j], fd);
                bad++;
            }
            worst = fmax(worst, diff / tol);
        }
        CHECK(bad == 0, "[%s] %s: %d of %zu sampled gradient entries out of tolerance", c->name,
              p->name, bad, samples);
        CHECK(skipped * 10 <= (int)samples, "[%s] %s: %d of %zu samples at kinks", c->name, p->name,
              skipped, samples);
        CHECK(gmax > 0.0, "[%s] %s: gradient is identically zero", c->name, p->name);
        printf("  %-3s %-36s %-28s %7zu elements, %2zu checked, worst error/tolerance %.3f%s\n", be->name,
               c->name, p->name, p->numel, samples - skipped, worst, skipped ? " (kinks skipped)" : "");
        checked_tensors++;
        free(grad);
        free(data);
    }
    CHECK(checked_tensors > 0, "[%s] no gradients checked", c->name);
    free(h.seed);
    free(h.out_host);
    engine_destroy(h.e);
}

static const Backend* open_backend(const char* name, int bf16) {
    char err[256];
    BackendOptions opt = {.bf16 = bf16};
    const Backend* be = backend_open(name, &opt, err, sizeof(err));
    if (!be) nn_fatal("%s", err);
    return be;
}

int main(void) {
    const Backend* ref = open_backend("ref", 0);
    const Backend* cpu = open_backend("cpu", 0);
    printf("Finite differences: analytic gradients against central differences\n");
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < NUM_OP_CASES; i++) {
            // A whole 28-layer ReLU network is too kinked for float32 finite differences (perturbing one
            // batch-norm scale moves thousands of activations across zero); its gradients are proven
            // against PyTorch instead (test_parity) and against the reference below. Every op in it is
            // checked here, alone and chained.
            if (OP_CASES[i].op == OP_MOBILENET) continue;
            check_case(b ? cpu : ref, &OP_CASES[i]);
        }

    compare_backends(ref, cpu);
    compare_header("The tuned CPU backend against the reference: kernels outside the op table");
    test_maxpool_special();
    test_relu_overwrite();
    test_metrics();
    test_sgd_variants();
    compare_header("Op table, cpu vs ref: output, running stats, gradients, 2nd backward, eval (bound 1e-5; "
                   "the MobileNet case: COMPARE_NET)");
    for (int i = 0; i < NUM_OP_CASES; i++) compare_case(&OP_CASES[i]);
    compare_header("Diagonalwise depthwise layers, cpu vs ref (bound 1e-5)");
    compare_depthwise_sweep();

    // bf16 mixed precision: both backends round the same operands, so the op table is compared again
    // with the bounds op_compare.c derives (single ops keep 1e-5).
    open_backend("ref", 1), open_backend("cpu", 1);
    compare_bf16 = 1;
    compare_header("Op table in bf16 mixed precision, cpu vs ref (bound 1e-5; the chain: COMPARE_BF16_CHAIN, "
                   "MobileNet: COMPARE_BF16_NET)");
    for (int i = 0; i < NUM_OP_CASES; i++) compare_case(&OP_CASES[i]);
    compare_header("Diagonalwise depthwise layers in bf16 mixed precision, cpu vs ref (bound 1e-5)");
    compare_depthwise_sweep();
    compare_bf16 = 0;
    open_backend("ref", 0), open_backend("cpu", 0);
    return test_finish("test_gradcheck");
}
