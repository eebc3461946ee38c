#!/usr/bin/env python3
"""Where PyTorch's CPU training step spends its time, by the same kinds of layer as our
`train --profile` (bench/cpu_step_breakdown.sh prints both side by side).

Runs MobileNet-CIFAR (mobilenet_ref.py, width 1) at batch 128 in channels_last, PyTorch's faster CPU
layout, FP32 or under torch.autocast bf16, with freed memory kept (cpu_malloc.py) as the other CPU
comparisons do. After --warmup steps it times --steps steps without the profiler, then the same
number under torch.profiler, and sums each operator's own time (self time: nothing counted twice)
per kind:

  depthwise   convolutions with one input channel per group (forward: mkldnn_convolution;
              backward: convolution_backward, data and filter gradients together)
  1x1         the pointwise convolutions          stem   the 3x3 convolution on the image
  bn+relu     native_batch_norm(_backward), relu / clamp_min / threshold_backward
  other       everything else (the classifier, pooling, the loss, SGD, autograd's own work, dtype
              conversions under autocast, allocation)

The profiler adds its own cost to every operator call, so the kinds sum to more than the unprofiled
step: compare kinds with kinds, in proportion, not with our milliseconds one to one.

    /usr/bin/python3 tests/reference/profile_train_torch.py [--autocast off|bf16] [--threads 2]
"""
import argparse
import collections
import os
import sys
import time


def kind_of(name, shapes):
    """The kind of one operator call from its name and input shapes (None: not a layer kind)."""
    if name in ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution_depthwise2d",
                "aten::thnn_conv2d", "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward"):
        w = shapes[2] if name == "aten::convolution_backward" else shapes[1]
        if len(w) != 4:
            return None
        if w[1] == 1 and w[0] > 1:
            return "depthwise"
        return "1x1" if w[2] == 1 and w[3] == 1 else "stem"
    if name in ("aten::native_batch_norm", "aten::native_batch_norm_backward", "aten::clamp_min",
                "aten::relu", "aten::relu_", "aten::clamp_min_", "aten::threshold_backward"):
        return "bn+relu"
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--autocast", choices=["off", "bf16"], default="off")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    a = p.parse_args()

    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    from cpu_malloc import keep_freed_memory
    from mobilenet_ref import MobileNet

    malloc_note = keep_freed_memory()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = MobileNet(1.0).to(memory_format=torch.channels_last).train()
    x = torch.randn(a.batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (a.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast == "bf16"):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    plain_ms = (time.perf_counter() - t0) * 1e3 / a.steps
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        profiled_ms = (time.perf_counter() - t0) * 1e3 / a.steps

    ms = collections.defaultdict(float)  # (kind, "fwd"/"bwd") -> ms per step of self time
    total = 0.0
    for e in prof.key_averages(group_by_input_shape=True):
        t = e.self_cpu_time_total / 1e3 / a.steps
        total += t
        k = kind_of(e.key, e.input_shapes)
        bwd = "backward" in e.key
        ms[(k or "other", "bwd" if bwd else "fwd")] += t
    print(f"PyTorch {torch.__version__} training step, MobileNet-CIFAR width 1, batch {a.batch}, channels_last, "
          f"{a.threads} threads, autocast {a.autocast}; {malloc_note}")
    print(f"step: {plain_ms:.1f} ms without the profiler, {profiled_ms:.1f} ms with it "
          f"(mean of {a.steps} steps after {a.warmup} warm-up steps)")
    print("self time per step under the profiler, ms ('other': forward and backward together)")
    print(f"{'kind':<10} {'fwd ms':>8} {'bwd ms':>8} {'total':>8} {'share':>7}")
    for k in ["1x1", "depthwise", "stem", "bn+relu", "other"]:
        f, b = ms[(k, "fwd")], ms[(k, "bwd")]
        cols = f"{'-':>8} {'-':>8}" if k == "other" else f"{f:8.2f} {b:8.2f}"
        print(f"{k:<10} {cols} {f + b:8.2f} {100 * (f + b) / total:6.1f}%")
    print(f"{'all':<10} {'':>8} {'':>8} {total:8.2f}")


if __name__ == "__main__":
    main()
