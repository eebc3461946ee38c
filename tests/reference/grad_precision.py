#!/usr/bin/env python3
"""How far PyTorch's float32 training step is from float64 on the CPU, NCHW against channels_last.

For each seed: the MobileNet of train_torch.py at PyTorch's initialisation (torch.manual_seed(seed)),
./train's first training batch of that seed, one forward and backward in float64 (the reference) and
in float32 in both memory layouts; prints the loss's relative deviation and the relative error of
all parameter gradients together (||g32 - g64|| / ||g64||). Then one batch-norm layer alone (batch
128, 32 channels, 32x32, values of mean 2 and spread 0.5) in both layouts, which is where the
channels_last error comes from: PyTorch 1.13's channels_last batch norm sums its statistics less
accurately than its NCHW one.

    /usr/bin/python3 tests/reference/grad_precision.py [--seeds 1 2 3] [--threads 2]
"""
import argparse
import copy
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
from cpu_malloc import keep_freed_memory  # noqa: E402
from mobilenet_ref import MobileNet, default_data_path  # noqa: E402
from train_torch import Batches, load_or_exit  # noqa: E402

LAYOUTS = [("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)]


def rel(a, b):
    return float((a - b).norm() / b.norm())


def step(model, images, labels, dtype, layout):
    """One training-mode forward and backward: (loss, every parameter's gradient in float64)."""
    m = copy.deepcopy(model).to(dtype=dtype, memory_format=layout).train()
    loss = F.cross_entropy(m(images.to(dtype).contiguous(memory_format=layout)), labels)
    loss.backward()
    return float(loss), torch.cat([p.grad.double().flatten() for p in m.parameters()])


def batchnorm_alone(layout):
    """One BatchNorm2d forward and backward in float32: (output error, input-gradient error) vs float64."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 32, 32, 32, dtype=torch.float64, generator=g) * 0.5 + 2.0
    dy = torch.randn(x.shape, dtype=torch.float64, generator=g)
    out = []
    for dtype, lay in ((torch.float64, torch.contiguous_format), (torch.float32, layout)):
        xi = x.to(dtype).contiguous(memory_format=lay).detach().requires_grad_()
        y = torch.nn.BatchNorm2d(32).to(dtype).train()(xi)
        y.backward(dy.to(dtype).contiguous(memory_format=lay))
        out.append((y.double(), xi.grad.double()))
    (y64, dx64), (y32, dx32) = out
    return rel(y32, y64), rel(dx32, dx64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=None, help="CIFAR-10 (default: where ./train looks)")
    a = ap.parse_args()
    keep_freed_memory()
    torch.set_num_threads(a.threads)
    path = a.data or default_data_path()
    records = load_or_exit(path, "train")
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; data: {path}")
    print("first training step at initialisation, float32 against float64")
    print(f"{'seed':>4}  {'layout':<14} {'loss deviation':>15} {'gradient error':>15}")
    for seed in a.seeds:
        images, labels = next(Batches(records, True, seed, True).epoch(0, 128))
        torch.manual_seed(seed)
        model = MobileNet(1.0)
        loss64, grad64 = step(model, images, labels, torch.float64, torch.contiguous_format)
        for name, layout in LAYOUTS:
            loss32, grad32 = step(model, images, labels, torch.float32, layout)
            print(f"{seed:>4}  {name:<14} {abs(loss32 - loss64) / loss64:15.1e} {rel(grad32, grad64):15.1e}")
    print("one BatchNorm2d (128x32x32x32, mean 2, spread 0.5), float32 against float64")
    for name, layout in LAYOUTS:
        ey, edx = batchnorm_alone(layout)
        print(f"      {name:<14} output {ey:.1e}, input gradient {edx:.1e}")


if __name__ == "__main__":
    main()
