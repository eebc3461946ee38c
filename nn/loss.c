// Softmax cross-entropy, mean over the batch (PyTorch's F.cross_entropy with default reduction).
#include "ops.h"
#include "util.h"

static void cross_entropy_backward(Engine* e, const TapeEntry* t) {
    Tensor *logits = t->in[0], *loss = t->out;
    if (logits->grad)
        e->be->cross_entropy_backward(logits->grad, loss->grad, t->a.ce.probs, t->a.ce.labels,
                                      logits->n, t->a.ce.classes, tensor_grad_accumulate(logits));
}

static const OpDef CROSS_ENTROPY_OP = {.kind = "cross_entropy", .backward = cross_entropy_backward};

Tensor* cross_entropy(Engine* e, Tensor* logits, const int* labels, const char* name) {
    engine_require_fp32(logits, name);
    int classes = logits->c * logits->h * logits->w;
    Tensor* loss = engine_activation(e, 1, 1, 1, 1);
    float* probs = engine_scratch(e, (size_t)logits->n * classes); // (n, classes) softmax
    TapeEntry* t = engine_record(e, &CROSS_ENTROPY_OP, name, loss);
    if (t) t->in[0] = logits, t->a.ce.labels = labels, t->a.ce.probs = probs, t->a.ce.classes = classes;
    if (!engine_skip(e))
        e->be->cross_entropy_forward(loss->data, probs, logits->data, labels, logits->n, classes);
    return loss;
}
