// Two backends side by side: the reference backend (kernels/ref, the oracle) and a backend under test
// (the tuned CPU backend in test_gradcheck, CUDA in test_cuda_ops), on every case of the shared op
// table (tests/op_cases.c), on the diagonalwise depthwise layer over many C and g, and on the
// kernels the table does not reach (max pooling with NaN and ties, ReLU's overwrite, metrics, SGD
// variants). Each comparison is ||test - ref|| / ||ref|| over a whole tensor, printed as a table row.
// Both compute in FP32 and differ only in summation order (the reference sums in double): the
// bound is 1e-5 for every tensor of a single op (and the small chain); whole networks amplify the
// differences layer by layer and get wider bounds (COMPARE_NET). Activation arenas are filled with
// NaN before each step, so an output a kernel forgets to write (or a beta = 0 that reads its
// destination) shows up as NaN.
//
// ReLU kinks: where a pre-activation lies within rounding of zero, the two backends may disagree on
// the ReLU mask and the gradients then legitimately differ by a whole element. A run counts such
// disagreements after the forward pass and, if there are any, retries with other random values
// (as test_gradcheck's finite differences skip samples at kinks). If every attempt has some, the
// forward results are compared as they are, then the reference's forward state is copied into the
// tested engine (align_forward) so that both backward passes use the same masks.
#include "op_compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/sgd.h"
#include "../nn/util.h"
#include "test_util.h"

#define ATTEMPTS 4 // random draws tried before aligning the forward state (ReLU kinks, see above)

static const Backend* be[2]; // [0] the reference, [1] the backend under test
int compare_quiet_ok;
void (*compare_on_failure)(const char* where);

void compare_backends(const Backend* ref, const Backend* tested) {
    NN_ASSERT(!strcmp(ref->name, "ref"), "the first backend of a comparison is the reference, not '%s'", ref->name);
    be[0] = ref, be[1] = tested;
}

int compare_bf16_activations(void) {
    for (int b = 0; b < 2; b++)
        if (!be[b]->bf16_activations || !be[b]->bf16_activations()) return 0;
    return 1;
}

// ---------------------------------------------------------------------------------------------
// Comparison and the result table

const Bounds COMPARE_SINGLE = {COMPARE_EXACT, COMPARE_EXACT, COMPARE_EXACT, COMPARE_EXACT,
                               COMPARE_EXACT, COMPARE_EXACT, COMPARE_EXACT};
// Whole networks in FP32 (the MobileNet op case, the MobileNet step with TF32 off). In training
// mode each BN+ReLU layer amplifies the differences of the layers before it by ~1.2x, so two
// correct FP32 implementations that sum in different orders differ by ~1e-7 after the first
// convolution but by ~5e-5 at the end of MobileNet. Measured with the tuned CPU backend against its
// first, simple version (git dcb6aba) as the second backend, 20 random draws, largest seen:
// activations 6e-5, logits 4e-5, loss 3e-6, running statistics 4e-5, weights 1e-5, eval logits
// 7e-6; gradients 1e-4 in the step, 3e-3 in the batch-2 op case (BN over 8 values). The bounds
// are 10-30x those: they catch a wrong kernel, a race, a TF32 leak or a lost accumulate, not the
// depth's rounding. Single ops keep 1e-5 (there the same measurement gave at most 2e-6).
const Bounds COMPARE_NET = {1e-3, 1e-3, 1e-4, 3e-2, 5e-4, 1e-3, 1e-4};

// bf16 mixed precision on both sides. The reference rounds exactly the operands the tuned kernels
// round (test_bf16_ref), so a single op's two results differ by summation order alone, as in FP32:
// COMPARE_SINGLE stands (a kernel that forgot to round an operand differs by ~1e-3: bf16's 2^-8
// relative step, averaged over a sum). Where an operand is itself a computed value (a convolution
// after batch norm, any gradient after the first), the two backends' FP32 values differ by ~1e-7
// relative, and an element that close to the midpoint between two bf16 numbers rounds differently
// on each: that operand then differs by one bf16 step, up to 2^-7 of itself. Such flips are rare
// (~1e-7 / 2^-8, a few in 1e5 elements) but each is ~1e5 times an FP32 difference, and batch norm
// amplifies it downstream like any other. Their ceiling, every element of an operand flipped, is
// 2^-7 = 7.8e-3 relative per rounded operand; past a normalization over few values (MobileNet's
// batch-2 case ends in BN over 8 values) no such ceiling survives. Measured over 20 random draws
// (test_gradcheck with the op cases' seeds shifted): the chain case at most 1.1e-7 on its outputs
// and 2.4e-5 on gradients (FP32's bound, 1e-5, is too tight for it); MobileNet 2.2e-4 on
// activations and running statistics, 3.8e-3 on eval logits, and 0.128 on gradients: the 4-element
// BN parameters of the stem and first block, whose gradients are sums that cancel, so a handful of
// flips moves them most (the big convolution weights stay under 1e-2). The chain keeps 1e-5 on its
// outputs and statistics and gets 3e-4 (~10x) on gradients; MobileNet ~10x on activations and
// statistics, and 0.3 on gradients (2.3x the worst draw), which still catches a wrong or missing term (error ~1) but not a subtle one: the single
// ops at 1e-5 are where a subtle bf16 error shows.
const Bounds COMPARE_BF16_CHAIN = {COMPARE_EXACT, COMPARE_EXACT, COMPARE_EXACT, 3e-4, COMPARE_EXACT, COMPARE_EXACT, COMPARE_EXACT};
const Bounds COMPARE_BF16_NET = {2e-3, 2e-3, 2e-3, 0.3, 2e-3, 2e-3, 3e-2};
int compare_bf16;
const Bounds* compare_bf16_single = &COMPARE_SINGLE;
const Bounds* compare_bf16_chain = &COMPARE_BF16_CHAIN;
const Bounds* compare_bf16_net = &COMPARE_BF16_NET;

double compare(const char* where, const char* tensor, const float* test_v, const float* ref_v, size_t n,
               double bound) {
    double err = rel_error(test_v, ref_v, n);
    if (!compare_quiet_ok || err > bound)
        printf("  %-34s %-30s %9zu  %9.2e  %s\n", where, tensor, n, err, err <= bound ? "ok" : "FAIL");
    CHECK(err <= bound, "[%s] %s: ||%s - ref|| / ||ref|| = %.3e exceeds %.1e (||ref|| = %.9g, ||%s|| = %.9g)",
          where, tensor, be[1]->name, err, bound, l2_norm(ref_v, n), be[1]->name, l2_norm(test_v, n));
    // Let the test name what ran (test_cuda_ops: the cuDNN algorithms), once per case.
    static char reported[64];
    if (err > bound && compare_on_failure && strncmp(reported, where, sizeof(reported) - 1) != 0) {
        snprintf(reported, sizeof(reported), "%s", where);
        fflush(stdout);
        compare_on_failure(where);
    }
    return err;
}

float* read_floats(const Backend* b, const float* p, size_t n) {
    float* h = NN_MALLOC((n ? n : 1) * sizeof(float));
    b->download(h, p, n * sizeof(float));
    return h;
}

// Backend arrays p[0] (reference) and p[1] (tested) of n floats.
double compare_arrays(Engine* const* e, const float* const* p, size_t n, const char* where, const char* tensor,
                      double bound) {
    float* a = read_floats(e[0]->be, p[0], n);
    float* b = read_floats(e[1]->be, p[1], n);
    double err = compare(where, tensor, b, a, n, bound);
    free(a), free(b);
    return err;
}

double compare_data(Engine* const* e, Tensor* const* t, const char* where, const char* tensor, double bound) {
    const float* p[2] = {t[0]->data, t[1]->data};
    return compare_arrays(e, p, tensor_numel(t[0]), where, tensor, bound);
}

double compare_params(Engine* const* e, const char* where, int grad, int buffers_only, double bound) {
    double worst = 0.0;
    for (int i = 0; i < e[0]->num_params; i++) {
        Param *p0 = &e[0]->params[i], *p1 = &e[1]->params[i];
        if (grad && p0->is_buffer) continue;
        if (!grad && buffers_only && !p0->is_buffer) continue;
        const float* p[2] = {grad ? p0->t.grad : p0->t.data, grad ? p1->t.grad : p1->t.data};
        char name[96];
        snprintf(name, sizeof(name), "%s%s", grad ? "d " : "", p0->name);
        double err = compare_arrays(e, p, p0->numel, where, name, bound);
        worst = err > worst ? err : worst;
    }
    return worst;
}

void poison_activations(Engine* e) {
    void* host = NN_MALLOC(e->act_capacity);
    memset(host, 0xFF, e->act_capacity);
    e->be->upload(e->act_base, host, e->act_capacity);
    free(host);
}

long relu_disagreements(Engine* const* e) {
    long flips = 0;
    NN_ASSERT(e[0]->tape_len == e[1]->tape_len, "the two engines recorded different tapes");
    for (int i = 0; i < e[0]->tape_len; i++) {
        const TapeEntry *t0 = &e[0]->tape[i], *t1 = &e[1]->tape[i];
        if (strcmp(t0->op->kind, "relu") != 0 && strcmp(t0->op->kind, "batchnorm+relu") != 0) continue;
        size_t n = tensor_numel(t0->out);
        float* a = read_floats(e[0]->be, t0->out->data, n);
        float* b = read_floats(e[1]->be, t1->out->data, n);
        for (size_t j = 0; j < n; j++) flips += (a[j] > 0.0f) != (b[j] > 0.0f);
        free(a), free(b);
    }
    return flips;
}

void compare_header(const char* title) {
    printf("\n%s\n  %-34s %-30s %9s  %9s\n", title, "case", "tensor", "elements", "rel.error");
}

void align_forward(Engine* const* e) {
    NN_ASSERT(e[0]->act_used == e[1]->act_used, "the two engines laid out their arenas differently");
    void* host = NN_MALLOC(e[0]->act_used ? e[0]->act_used : 1);
    e[0]->be->download(host, e[0]->act_base, e[0]->act_used);
    e[1]->be->upload(e[1]->act_base, host, e[0]->act_used);
    free(host);
    // Overwritten from outside, as engine_write would mark them: a batch norm's backward then reads its
    // ReLU mask from y (the reference's), rather than recomputing it from x by its own arithmetic.
    for (int i = 0; i < e[1]->num_tensors; i++) e[1]->tensors[i].edited = 1;
}

// ---------------------------------------------------------------------------------------------
// The op table

void compare_case(const OpCase* c) {
    const Bounds* bd = c->op == OP_MOBILENET ? (compare_bf16 ? compare_bf16_net : &COMPARE_NET)
                       : compare_bf16 && c->op == OP_CHAIN ? compare_bf16_chain
                       : compare_bf16                      ? compare_bf16_single
                                                           : &COMPARE_SINGLE;
    OpCaseState* s = NN_CALLOC(2, sizeof(OpCaseState));
    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        Engine* e[2];
        Tensor* out[2];
        for (int b = 0; b < 2; b++) {
            e[b] = engine_create(be[b]);
            // Activations in bf16 only where both backends store them so (the CPU and the reference;
            // not CUDA): the two arenas must be laid out alike, and the values compared are the same.
            e[b]->fp32_activations = !compare_bf16_activations();
            op_case_setup(e[b], &s[b], c);
            engine_alloc_params(e[b]);
            op_case_randomize(e[b], &s[b], 1234 + (uint64_t)attempt);
            engine_plan_begin(e[b]);
            op_case_forward(e[b], &s[b]);
            engine_plan_end(e[b]);
            poison_activations(e[b]);
            engine_begin(e[b], 1);
            out[b] = op_case_forward(e[b], &s[b]);
        }
        long flips = relu_disagreements(e);
        if (flips && attempt + 1 < ATTEMPTS) {
            printf("  %-34s %ld ReLU output(s) on a kink: retrying with other random values\n", c->name, flips);
            for (int b = 0; b < 2; b++) engine_destroy(e[b]);
            continue;
        }
        compare_data(e, out, c->name, "output", bd->act);
        compare_params(e, c->name, 0, 1, bd->stats); // running statistics after the forward
        if (flips) {
            printf("  %-34s %ld ReLU output(s) on a kink in every attempt: backward from the "
                   "reference's forward state\n", c->name, flips);
            align_forward(e);
        }

        size_t n = tensor_numel(out[0]);
        float* seed = NN_MALLOC(n * sizeof(float));
        Rng rng = rng_derive(5, 6, 7);
        fill_uniform(seed, n, 0.5f, 1.5f, &rng);
        for (size_t i = 0; i < n; i++)
            if (rng_next(&rng) & 1) seed[i] = -seed[i];
        for (int b = 0; b < 2; b++) {
            engine_zero_grad(e[b]);
            engine_backward_from(e[b], out[b], seed);
        }
        compare_params(e, c->name, 1, 0, bd->grad);
        for (int b = 0; b < 2; b++) engine_backward_from(e[b], out[b], seed);
        char where[96]; // the whole case name: a failing row must say which case (stride, g) it is
        snprintf(where, sizeof(where), "%s, 2nd bwd", c->name);
        compare_params(e, where, 1, 0, bd->grad);

        for (int b = 0; b < 2; b++) {
            poison_activations(e[b]);
            engine_begin(e[b], 0);
            out[b] = op_case_forward(e[b], &s[b]);
        }
        compare_data(e, out, c->name, "output (eval)", bd->act);
        free(seed);
        for (int b = 0; b < 2; b++) engine_destroy(e[b]);
        break;
    }
    free(s);
}

void compare_depthwise_sweep(void) {
    const int Cs[] = {3, 32, 45, 64};
    for (int ci = 0; ci < 4; ci++)
        for (int gi = 0; gi < 4; gi++)
            for (int stride = 1; stride <= 2; stride++) {
                int C = Cs[ci], gs[] = {1, 3, 32, C};
                char name[64];
                snprintf(name, sizeof(name), "dw C=%d g=%d (uses %d) s%d", C, gs[gi],
                         depthwise_group_size(C, gs[gi]), stride);
                OpCase c = {name, OP_DEPTHWISE, 3, C, 11, 11, C, 3, stride, 1, gs[gi], 0, 0.0f, 0, 0.0f};
                compare_case(&c);
            }
}

// ---------------------------------------------------------------------------------------------
// Kernels outside the table

void* to_device(const Backend* b, const void* host, size_t bytes) {
    void* p = b->alloc(bytes, "test buffer");
    b->upload(p, host, bytes);
    return p;
}

static int same_float(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

// Max pooling where ties, -inf and NaN decide the winner; forward must agree exactly.
void test_maxpool_special(void) {
    float x[50];
    for (int i = 0; i < 25; i++) x[i] = 0.5f; // plane 0: all ties ...
    x[3] = -INFINITY, x[12] = 0.75f, x[13] = 0.75f;
    for (int i = 25; i < 50; i++) x[i] = (float)((i * 7) % 11) * 0.1f - 0.5f; // plane 1: ... and NaN
    x[25 + 6] = NAN, x[25 + 8] = NAN, x[25 + 24] = NAN;
    const PoolShape shapes[2] = {{1, 2, 5, 5, 3, 2, 1, 3, 3}, {1, 2, 5, 5, 2, 2, 0, 2, 2}};
    for (int si = 0; si < 2; si++) {
        const PoolShape* p = &shapes[si];
        size_t no = (size_t)p->n * p->c * p->h_out * p->w_out, ni = 50;
        float y[2][18], dx[2][50], dy[18], dx0[50];
        int am[2][18];
        // Dyadic values: sums are exact in any order, so accumulation order cannot matter.
        for (size_t i = 0; i < no; i++) dy[i] = 0.25f * (float)(i + 1);
        for (size_t i = 0; i < ni; i++) dx0[i] = 0.5f * (float)((int)(i % 5) - 2);
        dx0[7] = NAN;
        for (int b = 0; b < 2; b++) {
            float* dxd = to_device(be[b], dx0, sizeof(dx0));
            float* xd = to_device(be[b], x, sizeof(x));
            float* yd = be[b]->alloc(no * sizeof(float), "test buffer");
            int* ad = be[b]->alloc(no * sizeof(int), "test buffer");
            float* dyd = to_device(be[b], dy, no * sizeof(float));
            be[b]->maxpool_forward(yd, ad, xd, p);
            // Overwrite first: dx0's NaN must not survive (the op table reaches max pooling only
            // with a parameter input, whose gradient always accumulates); then accumulate onto it.
            be[b]->maxpool_backward(dxd, dyd, ad, p, 0);
            be[b]->maxpool_backward(dxd, dyd, ad, p, 1);
            be[b]->download(y[b], yd, no * sizeof(float));
            be[b]->download(am[b], ad, no * sizeof(int));
            be[b]->download(dx[b], dxd, ni * sizeof(float));
            be[b]->free(dxd), be[b]->free(xd), be[b]->free(yd), be[b]->free(ad), be[b]->free(dyd);
        }
        int bad = 0;
        for (size_t i = 0; i < no; i++) bad += !same_float(y[0][i], y[1][i]) || am[0][i] != am[1][i];
        for (size_t i = 0; i < ni; i++) bad += !same_float(dx[0][i], dx[1][i]);
        CHECK(bad == 0, "max pooling %dx%d s%d p%d with ties and NaN: %d values differ", p->k, p->k,
              p->stride, p->pad, bad);
        printf("  %-34s %-30s %9zu  %9s  %s\n", "maxpool ties/-inf/NaN", si ? "2x2 s2" : "3x3 s2 p1", no, "exact",
               bad ? "FAIL" : "ok");
    }
}

// ReLU backward, overwrite then accumulate onto a NaN-filled dx (the op table reaches the standalone
// ReLU only with a parameter input, so never its overwrite path); x with +-0, NaN and +-inf.
void test_relu_overwrite(void) {
    enum { N = 1029 };
    float x[N], dy[N], dx0[N], dx[2][N], y[2][N];
    Rng rng = rng_derive(17, 18, 19);
    fill_uniform(x, N, -1.0f, 1.0f, &rng);
    fill_uniform(dy, N, -1.0f, 1.0f, &rng);
    x[0] = 0.0f, x[1] = -0.0f, x[2] = NAN, x[3] = -INFINITY, x[4] = INFINITY;
    for (int i = 0; i < N; i++) dx0[i] = NAN;
    for (int b = 0; b < 2; b++) {
        float* xd = to_device(be[b], x, sizeof(x));
        float* dyd = to_device(be[b], dy, sizeof(dy));
        float* dxd = to_device(be[b], dx0, sizeof(dx0));
        float* yd = be[b]->alloc(sizeof(x), "test buffer");
        be[b]->relu_forward(yd, xd, N);
        be[b]->relu_backward(dxd, dyd, yd, N, 0);
        be[b]->relu_backward(dxd, dyd, yd, N, 1);
        be[b]->download(y[b], yd, sizeof(x));
        be[b]->download(dx[b], dxd, sizeof(x));
        be[b]->free(xd), be[b]->free(dyd), be[b]->free(dxd), be[b]->free(yd);
    }
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += !same_float(y[0][i], y[1][i]) || !same_float(dx[0][i], dx[1][i]) || isnan(dx[1][i]);
    CHECK(bad == 0, "relu forward/backward (overwrite, then accumulate): %d values differ or are NaN", bad);
    printf("  %-34s %-30s %9d  %9s  %s\n", "relu overwrite + accumulate", "y, dx (dx starts NaN)", N, "exact",
           bad ? "FAIL" : "ok");
}

// Metrics over a batch with tied rows (the first maximum wins), called twice to accumulate.
void test_metrics(void) {
    enum { N = 37, C = 10 };
    float logits[N * C], loss = 2.25f, start_sum = 1.5f, sum[2];
    int labels[N], start_correct = 3, correct[2];
    Rng rng = rng_derive(11, 12, 13);
    fill_uniform(logits, N * C, -2.0f, 2.0f, &rng);
    for (int i = 0; i < N; i++) labels[i] = (int)rng_below(&rng, C);
    for (int i = 0; i < 5; i++) labels[i] = 0; // a few rows right for certain
    for (int i = 0; i < 5; i++) logits[i * C] = 5.0f;
    logits[5 * C + 2] = logits[5 * C + 5] = 9.0f, labels[5] = 2; // tie: class 2 wins, correct
    logits[6 * C + 2] = logits[6 * C + 5] = 9.0f, labels[6] = 5; // tie: class 2 wins, wrong
    // A third tie, right under the first-maximum rule: with only the two above, a kernel that let the
    // last maximum win would lose one hit and gain one, and the count would not show it.
    logits[7 * C + 3] = logits[7 * C + 4] = 9.0f, labels[7] = 3;
    for (int b = 0; b < 2; b++) {
        float* ld = to_device(be[b], logits, sizeof(logits));
        int* labd = to_device(be[b], labels, sizeof(labels));
        float* lossd = to_device(be[b], &loss, sizeof(float));
        float* sumd = to_device(be[b], &start_sum, sizeof(float));
        int* cord = to_device(be[b], &start_correct, sizeof(int));
        be[b]->metrics_accumulate(sumd, cord, lossd, ld, labd, N, C);
        be[b]->metrics_accumulate(sumd, cord, lossd, ld, labd, N, C);
        be[b]->download(&sum[b], sumd, sizeof(float));
        be[b]->download(&correct[b], cord, sizeof(int));
        be[b]->free(ld), be[b]->free(labd), be[b]->free(lossd), be[b]->free(sumd), be[b]->free(cord);
    }
    CHECK(correct[0] == correct[1], "metrics: correct %d on ref, %d on %s", correct[0], correct[1], be[1]->name);
    CHECK(sum[0] == sum[1], "metrics: loss_sum %.9g on ref, %.9g on %s", sum[0], sum[1], be[1]->name);
    printf("  %-34s %-30s %9d  %9s  %s\n", "metrics_accumulate x2", "loss_sum, correct (tie row)", N, "exact",
           correct[0] == correct[1] && sum[0] == sum[1] ? "ok" : "FAIL");
}

// SGD without momentum, with momentum, with Nesterov; three steps each.
void test_sgd_variants(void) {
    enum { N = 1031 };
    const float moms[3] = {0.0f, 0.9f, 0.9f}, wds[3] = {0.0f, 5e-4f, 5e-4f};
    const int nest[3] = {0, 0, 1};
    for (int v = 0; v < 3; v++) {
        float p[N], g[N], zeros[N] = {0};
        Rng rng = rng_derive(21, 22, (uint64_t)v);
        fill_uniform(p, N, -1.0f, 1.0f, &rng);
        float* res[2][2];
        for (int b = 0; b < 2; b++) {
            float* pd = to_device(be[b], p, sizeof(p));
            float* bd = to_device(be[b], zeros, sizeof(zeros));
            float* gd = be[b]->alloc(sizeof(g), "test buffer");
            Rng gr = rng_derive(23, 24, (uint64_t)v);
            for (int step = 0; step < 3; step++) {
                fill_uniform(g, N, -0.5f, 0.5f, &gr);
                be[b]->upload(gd, g, sizeof(g));
                be[b]->sgd_step(pd, bd, gd, N, 0.1f, moms[v], wds[v], nest[v]);
            }
            res[b][0] = read_floats(be[b], pd, N);
            res[b][1] = read_floats(be[b], bd, N);
            be[b]->free(pd), be[b]->free(bd), be[b]->free(gd);
        }
        char what[64];
        snprintf(what, sizeof(what), "momentum %.1f%s", (double)moms[v], nest[v] ? " nesterov" : "");
        compare("sgd_step x3", what, res[1][0], res[0][0], N, COMPARE_EXACT);
        if (moms[v] > 0.0f) compare("sgd_step x3 (momentum buffer)", what, res[1][1], res[0][1], N, COMPARE_EXACT);
        for (int b = 0; b < 2; b++) free(res[b][0]), free(res[b][1]);
    }
}
