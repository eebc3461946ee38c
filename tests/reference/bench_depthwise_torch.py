#!/usr/bin/env python3
"""PyTorch companion of bench-depthwise: times torch.nn.Conv2d(C, C, 3, stride, 1, groups=C) -- what
users would otherwise use for a depthwise layer -- on the same 13 MobileNet-CIFAR layer shapes, in
NCHW and channels_last, on the same device. Forward, backward-data (gradient of the input only) and
backward-filter (gradient of the weight only) are timed separately, median of --reps runs after a
warm-up, with CUDA events on the GPU; in milliseconds, comparable with bench-depthwise's columns.

    python3 tests/reference/bench_depthwise_torch.py [--device cpu|cuda] [--batch 128] [--reps 20]
"""
import argparse
import statistics
import time

import torch

from cpu_malloc import keep_freed_memory

# (channels, input size, stride) of the 13 depthwise layers of the CIFAR-10 MobileNet (models/mobilenet.c)
LAYERS = []
_h, _c = 32, 32
for out, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
                    (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]:
    LAYERS.append((_c, _h, stride))
    _h = (_h + 2 - 3) // stride + 1
    _c = out


def timer(device):
    if device.type == "cuda":
        def run(fn):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
    else:
        def run(fn):
            t0 = time.perf_counter()
            fn()
            return 1e3 * (time.perf_counter() - t0)
    return run


def bench(c, h, stride, batch, reps, device, channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    conv = torch.nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False).to(device).to(memory_format=fmt)
    x = torch.randn(batch, c, h, h, device=device).to(memory_format=fmt)
    y = conv(x)
    dy = torch.randn_like(y).to(memory_format=fmt)
    x_req = x.clone().requires_grad_(True)
    run = timer(device)

    def forward():
        with torch.no_grad():
            conv(x)

    def backward_data():  # gradient of the input only
        conv.weight.requires_grad_(False)
        out = conv(x_req)
        torch.autograd.grad(out, x_req, dy)
        conv.weight.requires_grad_(True)

    def backward_filter():  # gradient of the weight only
        out = conv(x)
        torch.autograd.grad(out, conv.weight, dy)

    times = []
    for fn in (forward, backward_data, backward_filter):
        fn()  # warm-up (cuDNN autotuning if enabled)
        t = statistics.median(run(fn) for _ in range(reps))
        times.append(t)
    # backward_* include a forward: subtract it so the columns mean the same as bench-depthwise's
    times[1] = max(times[1] - times[0], 0.0)
    times[2] = max(times[2] - times[0], 0.0)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads, {keep_freed_memory()}"
    print(f"PyTorch {torch.__version__} nn.Conv2d(C, C, 3, groups=C) on {name}, batch {args.batch}, "
          f"median of {args.reps} runs, ms (backward columns exclude the forward)")
    print(f"{'layer':<6} {'shape':<16} {'layout':<14} {'forward':>9} {'bwd-data':>9} {'bwd-filt':>9} {'total':>9}")
    sums = {False: 0.0, True: 0.0}
    for i, (c, h, stride) in enumerate(LAYERS):
        for cl in (False, True):
            f, bd, bf = bench(c, h, stride, args.batch, args.reps, device, cl)
            sums[cl] += f + bd + bf
            layout = "channels_last" if cl else "NCHW"
            print(f"{i:<6} {f'{c}x{h}x{h} s{stride}':<16} {layout:<14} {f:9.3f} {bd:9.3f} {bf:9.3f} {f + bd + bf:9.3f}")
    print(f"all 13 layers: NCHW {sums[False]:.2f} ms, channels_last {sums[True]:.2f} ms")


if __name__ == "__main__":
    main()
