#!/usr/bin/env python3
"""Writes the bf16 reference that tests/test_parity_bf16.c compares ./train --precision bf16 against:
the first training step of the committed parity run (parity_mobilenet_w0.2_b16.bin: its init.* state
and its batch of CIFAR-10 images), computed two ways.

1. PyTorch's own mixed precision: the forward under torch.autocast("cpu", dtype=torch.bfloat16), the
   loss and backward as PyTorch does them after it (records autocast.logits, autocast.loss,
   autocast.grad.<param>). This is what "bf16 training in PyTorch" means, but it does not round what
   we round. PyTorch 1.13's CPU autocast runs conv2d and linear in bf16 *and returns bf16 tensors*:
   their outputs are rounded to bf16 as well as their inputs and weights. Batch norm is not on
   autocast's list, so it takes the bf16 conv output as it is and returns bf16; ReLU and pooling stay
   bf16; only the loss is computed in FP32 (cross_entropy is on the FP32 list). So every activation
   between two convolutions is a bf16 tensor there, each rounded (2^-8 relative) at least twice,
   while ./train keeps activations in FP32 and rounds only the operands of each GEMM.
2. Our semantics written in PyTorch (emulation.logits, emulation.loss, emulation.grad.<param>): every
   convolution and linear layer rounds both operands of each of its three products (forward,
   backward-data, backward-filter) to bf16, sums in float64, and returns FP32; everything else FP32.
   ./train --precision bf16 should match this up to FP32 summation order (and the rare operand that
   rounds to the other bf16 neighbour because of it).

The script prints the distance between the two, tensor kind by tensor kind: the size of the
difference in *what is rounded*, which the C test's bounds against autocast are derived from. It needs
no CIFAR-10 data and no GPU. The committed file was made by the command in tests/reference/README.md.
"""
import argparse
import os
import shlex
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import drnet_ckpt  # noqa: E402
import mobilenet_ref  # noqa: E402

FORMAT_VERSION = 1  # test_parity_bf16.c checks it


def bf16(t):
    """t rounded to bf16 (nearest even, as nn/bf16.h), denormals flushed as vdpbf16ps does, in t's dtype."""
    r = t.to(torch.bfloat16).to(t.dtype)
    return torch.where(r.abs() < 2.0 ** -126, torch.zeros_like(r), r)


class Bf16Conv(torch.autograd.Function):
    """conv2d whose three products each take bf16-rounded operands, summed in float64."""

    @staticmethod
    def forward(ctx, x, w, stride, padding, groups):
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, groups)
        return F.conv2d(bf16(x).double(), bf16(w).double(), None, stride, padding, 1, groups).float()

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        stride, padding, groups = ctx.conf
        dy16 = bf16(dy).double()
        dx = torch.nn.grad.conv2d_input(x.shape, bf16(w).double(), dy16, stride, padding, 1, groups)
        dw = torch.nn.grad.conv2d_weight(bf16(x).double(), w.shape, dy16, stride, padding, 1, groups)
        return dx.float(), dw.float(), None, None, None


class Bf16Linear(torch.autograd.Function):
    """x w^T + b with bf16-rounded operands in each product; the bias and its gradient in FP32."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return ((bf16(x).double() @ bf16(w).double().t()) + b.double()).float()

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        dy16 = bf16(dy).double()
        return (dy16 @ bf16(w).double()).float(), (dy16.t() @ bf16(x).double()).float(), dy.sum(0)


def emulate(model):
    """Replaces every Conv2d and Linear forward of model by the bf16 functions above."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.forward = (lambda mod: lambda x: Bf16Conv.apply(x, mod.weight, mod.stride, mod.padding, mod.groups))(m)
        elif isinstance(m, torch.nn.Linear):
            m.forward = (lambda mod: lambda x: Bf16Linear.apply(x, mod.weight, mod.bias))(m)
    return model


def first_step(model, x, y, autocast):
    model.train()
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
    loss.backward()
    grads = {n: p.grad.detach().float().numpy().copy() for n, p in model.named_parameters()}
    return logits.detach().float().numpy(), float(loss), grads


def kind(name):
    if name.startswith("linear"):
        return "grad linear"
    if ".bn" in name or name.startswith("bn"):
        return "grad bn"
    return "grad conv/depthwise"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parity", default=os.path.join(here, "parity_mobilenet_w0.2_b16.bin"))
    ap.add_argument("--out", default=os.path.join(here, "parity_bf16_mobilenet_w0.2_b16.bin"))
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ref = drnet_ckpt.read(args.parity)
    width, classes = drnet_ckpt.scalar(ref, "ref.width"), drnet_ckpt.scalar(ref, "ref.num_classes")
    x = torch.from_numpy(ref["input.images"])
    y = torch.from_numpy(ref["input.labels"])

    def fresh():
        m = mobilenet_ref.MobileNet(width, classes)
        m.load_state_dict(mobilenet_ref.tensors_to_state(
            m, {n[5:]: v for n, v in ref.items() if n.startswith("init.")}))
        return m

    # What autocast does to each layer's output, printed so the docstring's claims can be rechecked.
    probe = fresh().train()
    kinds = {}
    def note(mod, inputs, output):  # returns None: a hook's return value would replace the output
        kinds.setdefault(type(mod).__name__, f"{inputs[0].dtype} -> {output.dtype}")
    hooks = [m.register_forward_hook(note) for m in probe.modules() if not list(m.children())]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = probe(x)
        lossdt = F.cross_entropy(out, y).dtype
    for h in hooks:
        h.remove()
    print("autocast output dtypes:", ", ".join(f"{k} {v}" for k, v in kinds.items()), f"; loss {lossdt}")

    a_logits, a_loss, a_grads = first_step(fresh(), x, y, autocast=True)
    e_logits, e_loss, e_grads = first_step(emulate(fresh()), x, y, autocast=False)
    f_logits, f_loss, f_grads = ref["logits"], float(ref["loss.0"]), {n[5:]: v for n, v in ref.items()
                                                                      if n.startswith("grad.")}

    def rel(a, b):
        return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))

    print(f"{'':24s} {'emulation vs autocast':>22s} {'emulation vs fp32':>18s} {'autocast vs fp32':>17s}")
    print(f"{'logits':24s} {rel(e_logits, a_logits):22.3e} {rel(e_logits, f_logits):18.3e} {rel(a_logits, f_logits):17.3e}")
    print(f"{'loss':24s} {abs(e_loss - a_loss) / abs(a_loss):22.3e} {abs(e_loss - f_loss) / abs(f_loss):18.3e} "
          f"{abs(a_loss - f_loss) / abs(f_loss):17.3e}")
    worst = {}
    for n in a_grads:
        k = kind(n)
        worst[k] = max(worst.get(k, (0, 0, 0)), (rel(e_grads[n], a_grads[n]), rel(e_grads[n], f_grads[n]),
                                                rel(a_grads[n], f_grads[n])))
    for k, (ea, ef, af) in worst.items():
        print(f"{k + ' (worst)':24s} {ea:22.3e} {ef:18.3e} {af:17.3e}")
    # Every gradient as one vector: what test_parity_bf16 bounds (single tensors swing by ReLU flips).
    cat = {name: np.concatenate([g[n].ravel() for n in a_grads]) for name, g in
           (("a", a_grads), ("e", e_grads), ("f", f_grads))}
    print(f"{'all gradients':24s} {rel(cat['e'], cat['a']):22.3e} {rel(cat['e'], cat['f']):18.3e} "
          f"{rel(cat['a'], cat['f']):17.3e}")

    # How far a correct implementation of our semantics may land from the emulation: ours sums in
    # FP32 in another order, so its batch-norm outputs differ by ~1e-7 relative, and the next
    # convolution rounds a few of those operands to the other bf16 neighbour, which the network then
    # amplifies. The same noise put on the emulation's batch-norm outputs shows the size (3 draws).
    batch_norm = F.batch_norm
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        F.batch_norm = lambda *a, **k: (lambda o: o * (1 + 1e-7 * torch.randn(o.shape, generator=gen, dtype=o.dtype)))(
            batch_norm(*a, **k))
        p_logits, p_loss, p_grads = first_step(emulate(fresh()), x, y, autocast=False)
        F.batch_norm = batch_norm
        p_cat = np.concatenate([p_grads[n].ravel() for n in a_grads])
        print(f"emulation with BN outputs x (1 + 1e-7 N(0,1)), draw {seed}: logits {rel(p_logits, e_logits):.3e}, loss "
              f"{abs(p_loss - e_loss) / abs(e_loss):.3e}, linear.weight gradient "
              f"{rel(p_grads['linear.weight'], e_grads['linear.weight']):.3e}, all gradients {rel(p_cat, cat['e']):.3e}")

    command = "/usr/bin/python3 tests/reference/make_bf16_reference.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = {"ref.version": FORMAT_VERSION, "ref.torch": torch.__version__, "ref.command": command,
           "ref.source": os.path.basename(args.parity), "ref.width": float(width), "ref.num_classes": int(classes),
           "autocast.logits": a_logits.astype(np.float32), "autocast.loss": np.array(a_loss, dtype=np.float32),
           "emulation.logits": e_logits.astype(np.float32), "emulation.loss": np.array(e_loss, dtype=np.float32)}
    for n in a_grads:
        out[f"autocast.grad.{n}"] = a_grads[n].astype(np.float32)
        out[f"emulation.grad.{n}"] = e_grads[n].astype(np.float32)
    drnet_ckpt.write(args.out, out)
    print(f"wrote {args.out}: {len(out)} records, {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
