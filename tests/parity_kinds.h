// What each parameter of a model is, for test_parity's tolerances, read off the tape of one recorded
// training step (the ops name their parameters in TapeEntry.in[1], in[2]), so that the test knows no
// model's layer names.
#ifndef TESTS_PARITY_KINDS_H
#define TESTS_PARITY_KINDS_H

#include "../nn/engine.h"

typedef enum {
    K_CONV,      // a convolution's weight
    K_DEPTHWISE, // a depthwise layer's weight
    K_BN,        // a batch norm's weight or bias
    // A batch norm's weight whose output reaches, through a ReLU, a depthwise convolution (and its
    // batch norm): the loss is invariant to it but through BN's eps, so its gradient is ~1e-4 of the
    // terms it is summed from and carries that much more relative rounding error.
    K_BN_SI,
    // A batch norm's bias (no ReLU after it) whose output reaches the loss only through residual adds
    // and 1x1 unpadded convolutions each followed by a batch norm (MobileNetV2's bn3 and shortcut.1):
    // a per-channel shift passes such a convolution as a per-channel shift, which the next batch norm
    // subtracts, so its gradient is exactly zero and every float computation of it is rounding noise.
    K_BN_SHIFT,
    K_LINEAR,    // the classifier
    K_STAT,      // a running statistic (buffer)
    // The running mean of a batch norm whose input is a 1x1 unpadded stride-1 convolution of a tensor
    // whose per-channel batch mean the betas of batch norms fix (a batch norm's output without ReLU, or
    // a residual add of such): the batch mean it tracks then stays put from step to step, and a step
    // changes it by rounding noise alone. Measured against momentum * ||sqrt(running_var)||, the scale
    // of its input (sibling: the running variance).
    K_STAT_FIXED,
    K_COUNT
} ParamKind;

// kinds[i] for every parameter and buffer i of e, from e's tape (a training step's forward must have
// been recorded); sibling[i] is, for K_BN_SHIFT, the index of the same batch norm's weight, for
// K_STAT_FIXED its running variance (else -1).
void parity_param_kinds(const Engine* e, ParamKind* kinds, int* sibling);

#endif
