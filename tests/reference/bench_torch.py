#!/usr/bin/env python3
"""PyTorch side of the CPU training-speed comparison (bench/bench_cpu.c runs it).

Trains the same MobileNet-CIFAR (kuangliu/pytorch-cifar layout: native depthwise convs, BN+ReLU, 2x2
average pool, linear; --model mobilenetv2: tools/mobilenetv2.py's MobileNetV2) on synthetic data, one SGD step (lr 0.1, momentum 0.9, wd 5e-4) per batch, and
prints the median img/s over --reps timed runs of --steps steps each after --warmup steps:

    /usr/bin/python3 tests/reference/bench_torch.py [--model mobilenetv2] --batch 128 --threads 2 --width 1 [--channels-last]

--channels-last runs the model and data in torch.channels_last (NHWC) memory format, in which oneDNN
needs no layout reorders; on our Xeon it is ~1.4x faster than the default NCHW, so both are reported.
The last line is machine-readable: "torch_img_per_s <median> <min> <max>". glibc's malloc is told to
keep freed memory (cpu_malloc.py: without it PyTorch page-faults its activations in at every step and
loses about a fifth of its speed); --malloc default measures PyTorch as glibc leaves it.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from cpu_malloc import keep_freed_memory
from mobilenet_ref import MobileNet  # the same model the parity test and the weight exchange use
from mobilenetv2 import MobileNetV2  # (tools/, on the path through mobilenet_ref)

MODELS = {"mobilenet": MobileNet, "mobilenetv2": MobileNetV2}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=sorted(MODELS), default="mobilenet")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--malloc", choices=["keep", "default"], default="keep",
                    help="keep: glibc keeps freed memory (as jemalloc/tcmalloc do); default: glibc's own")
    a = ap.parse_args()
    malloc = keep_freed_memory() if a.malloc == "keep" else "malloc: glibc's defaults"

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = MODELS[a.model](a.width)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 10, (a.batch,))
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    rates = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        rates.append(a.steps * a.batch / (time.perf_counter() - t0))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mkldnn {torch.backends.mkldnn.is_available()}, "
          f"{a.model}, {'channels_last' if a.channels_last else 'NCHW'}, batch {a.batch}, width {a.width}, {malloc}: "
          f"runs {' '.join(f'{r:.1f}' for r in rates)} img/s")
    print(f"torch_img_per_s {statistics.median(rates):.2f} {min(rates):.2f} {max(rates):.2f}")


if __name__ == "__main__":
    main()
