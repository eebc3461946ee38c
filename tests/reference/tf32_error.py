#!/usr/bin/env python3
"""What TF32 does to the parity comparison of tests/test_parity.c, emulated on the CPU.

With TF32 (`test_parity cuda --tf32 on`, PyTorch's default for cuDNN convolutions) the tensor cores
multiply operands rounded to TF32 -- float32 with a 10-bit mantissa -- and accumulate in float32. This
script replays the parity reference with every convolution and the linear layer computed that way, in
forward and in both backward products (data gradient: dy and w rounded; weight gradient: dy and x
rounded), exactly as the C test replays it (each step from the reference's state, PyTorch's ReLU tie
decisions), and prints the worst relative error per kind of tensor, as the C test reports them. The
TF32 tolerances in test_parity.c are set from this with a margin.

    /usr/bin/python3 tests/reference/tf32_error.py [--rounding nearest|truncate] [REFERENCE]

Hardware converts by rounding to nearest (cuDNN's and cuBLAS's conversion) or, in some kernels, by
dropping the low 13 bits; --rounding truncate shows the second, which is biased and so worse.
"""
import argparse
import os
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import drnet_ckpt  # noqa: E402
import make_parity_reference as parity  # noqa: E402
import mobilenet_ref  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROUNDING = {"mode": "nearest"}


def tf32(t):
    """t rounded to TF32 (10 mantissa bits) and stored back as float32."""
    bits = t.contiguous().view(torch.int32)
    if ROUNDING["mode"] == "nearest":  # to nearest, ties to even, on the 13 dropped bits
        bits = bits + (0x0FFF + ((bits >> 13) & 1))
    return (bits & ~0x1FFF).view(torch.float32)


class Tf32Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, stride, padding, groups):
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, groups)
        return F.conv2d(tf32(x), tf32(w), None, stride, padding, 1, groups)

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        stride, padding, groups = ctx.conf
        dx, dw, _ = torch.ops.aten.convolution_backward(
            tf32(dy), tf32(x), tf32(w), None, stride, padding, (1, 1), False, (0, 0), groups,
            (True, True, False))
        return dx, dw, None, None, None


class Tf32Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return tf32(x) @ tf32(w).t() + b

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        return tf32(dy) @ tf32(w), tf32(dy).t() @ tf32(x), dy.sum(0)


def use_tf32(model):
    """Makes every Conv2d and Linear of model compute as TF32 tensor cores do."""
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.forward = types.MethodType(
                lambda m, x: Tf32Conv.apply(x, m.weight, m.stride, m.padding, m.groups), module)
        elif isinstance(module, torch.nn.Linear):
            module.forward = types.MethodType(lambda m, x: Tf32Linear.apply(x, m.weight, m.bias), module)


def kind(name):
    """The C test's kind of a compared record (test_parity.c: param_kind and the *_KIND tables)."""
    prefix, _, param = name.partition(".")
    if prefix in ("loss", "logits"):
        return prefix
    if param.endswith(("running_mean", "running_var")):
        return "running stats"
    blocks = len(mobilenet_ref.CFG)
    if param.startswith("linear."):
        layer = "linear"
    elif param == "bn1.weight" or (param.endswith(".bn2.weight") and int(param.split(".")[1]) < blocks - 1):
        layer = "bn (s.-inv.)"
    elif ".bn" in "." + param:
        layer = "bn"
    elif param.startswith("layers.") and ".conv1." in param:
        layer = "depthwise"
    else:
        layer = "conv"
    what = {"grad": "grad", "mom": "momentum"}.get(prefix.rstrip("0123456789"), "update")
    return f"{what} {layer}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reference", nargs="?", default=os.path.join(HERE, "parity_mobilenet_w0.2_b16.bin"))
    ap.add_argument("--rounding", choices=("nearest", "truncate"), default="nearest")
    args = ap.parse_args()
    ROUNDING["mode"] = args.rounding

    raw = drnet_ckpt.read(args.reference)
    ref = {n: torch.from_numpy(v) for n, v in raw.items() if isinstance(v, np.ndarray)}
    width = drnet_ckpt.scalar(raw, "ref.width")
    steps = drnet_ckpt.scalar(raw, "ref.steps")
    model = mobilenet_ref.MobileNet(width, drnet_ckpt.scalar(raw, "ref.num_classes"))
    use_tf32(model)
    x, y = ref["input.images"], ref["input.labels"]
    out = parity.run(model, x, y, steps, drnet_ckpt.scalar(raw, "ref.tie"), forced_by=ref)

    worst, worst_size = {}, {}
    for name in out:
        if name.startswith(("init.", "ties")) or name not in ref:
            continue
        a, b = parity.compared(out, name, ref), parity.compared(ref, name, ref)
        norm = float(b.norm())
        err = float((a - b).norm()) / norm if norm > 0 else float((a - b).norm())
        size = abs(float(a.norm()) - norm) / norm if norm > 0 else float(a.norm())
        k = kind(name)
        if k not in worst or err > worst[k][0]:
            worst[k] = (err, name)
        if k not in worst_size or size > worst_size[k][0]:
            worst_size[k] = (size, name)
    print(f"TF32 ({args.rounding}) emulated vs the float32 reference, worst per kind:")
    print(f"  {'kind':22s} {'rel err':>10s}  {'tensor':36s} {'size err':>10s}  tensor")
    for k, (err, name) in worst.items():
        size, size_name = worst_size[k]
        print(f"  {k:22s} {err:10.3e}  {name:36s} {size:10.3e}  {size_name}")
    print("(rel err: ||tf32 - ref|| / ||ref||; size err: | ||tf32|| - ||ref|| | / ||ref||)")


if __name__ == "__main__":
    main()
