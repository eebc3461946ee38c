#!/usr/bin/env python3
"""Writes the PyTorch reference of a short MobileNet-CIFAR (or, with --model mobilenetv2,
MobileNetV2-CIFAR) training run that tests/test_parity.c compares our engine against, tensor by tensor.

The run: the reference --model (tools/mobilenet.py or tools/mobilenetv2.py, kuangliu's layouts) at --width, initialised by
PyTorch's defaults after torch.manual_seed(--seed), then trained for --pretrain steps (see below); one
batch of real CIFAR-10 training images (the
first --batch records of data_batch_1, normalized exactly as data/loader.c does, no augmentation); in
training mode, --steps steps of SGD (lr 0.1, momentum 0.9, nesterov, weight decay 5e-4) on that batch,
each forward -> cross-entropy -> backward -> optimizer.step(), then one more forward for the loss the
last step reached.

Why pretrain. At initialisation this network is ill-conditioned: every batch-normalized layer
amplifies relative perturbations by ~1.2x, so PyTorch's own float32 logits are 1.6e-5 from float64
and float32 noise hides errors of that size. After 100 SGD steps (batch 128, lr 0.05, momentum 0.9, on
the training images that follow the recorded batch, fixed order, no augmentation) the same float32
logits are 4e-7 from float64 and every gradient 10x closer: the comparison becomes ~20x sharper, and
the logits meet a 1e-5 bound. The recorded run starts from those weights and running statistics
(init.*), with fresh momentum.

What the C test checks. The rule's every step, twice: from the reference's state before it (weights,
running statistics, momentum: each application of the rule judged alone), and along our own chained
3-step trajectory from init.* with 3x wider bounds, since rounding differences compound. (At
initialisation the trajectory was chaotic: at lr 0.1 the first steps move the small scale-invariant
weights by several times their norm, and PyTorch's own float32 and float64 runs ended ~1e-1 apart
after 3 steps; from the pretrained state they stay within ~1e-4.)

ReLU ties. A pre-activation within rounding error of zero may land on either side of the ReLU in two
correct implementations, and one flipped element moves the whole gradient by ~1e-2 (its gradient is
then spread over the batch by the batch norm's backward). The reference therefore records PyTorch's
decision for every pre-activation within --tie of zero, and the C test adopts it (a zeroed tie is set
to exactly 0, a passed one to at least 1e-30, changing the forward by less than its rounding error).
Only batch norms followed by a ReLU are recorded (MobileNetV2's bn3 and shortcut.1 feed the residual
add instead: the model's relu_after says which).

The output is a drnet checkpoint file (drnet_ckpt.py; docs/checkpoint-format.md), read in C by
nn/checkpoint.c. Records (k counts optimizer steps; names after the prefix are PyTorch state_dict names):
    ref.version (i64) ref.torch ref.command ref.model (text: mobilenet or mobilenetv2; a file without
    it holds a mobilenet) ref.width ref.tie (f32) ref.num_classes ref.batch
    ref.seed ref.steps (i64) ref.lr ref.momentum ref.weight_decay (f32) ref.nesterov (i64)
    input.images      (batch, 3, 32, 32) f32, normalized   input.labels, input.indices (batch) i64
    init.<name>       every parameter and running statistic before training
    logits            (batch, classes) f32, of the first forward
    grad.<param>      every parameter's gradient in the first backward
    loss.<k>          f32 scalar: the loss of the forward at the state after k steps, k = 0..steps
    step<k>.<name>    every parameter and running statistic after k steps, k = 1..steps
    mom<k>.<param>    every parameter's SGD momentum buffer after k steps, k = 1..steps-1
    float64.logits, float64.loss.<k>   the same forwards in float64 (rounded to f32), information
    ties<k>.<bn>      i64: the ReLU ties after batch norm <bn> in the forward of step k (k < steps):
                      flat index + 1 into the (n, c, h, w) output where PyTorch passed the element
                      (pre-activation > 0), -(index + 1) where it zeroed it

Eval mode (--eval-from REF): a second, small file for the same run, from the states REF records:
for k = 0..steps, the logits of REF's input batch in evaluation mode (batch norm normalizing by the
running statistics, not the batch's) from the state after k steps, in float32 (eval<k>.logits) and
float64 (float64.eval<k>.logits, information), plus the ref.* configuration records copied from REF.
The training-mode records cannot catch a wrong use of the running statistics; these do.

The script also reruns every step in float64 from the same float32 states and prints how far PyTorch's
own float32 result is from it, tensor by tensor: the scale of rounding error a correct float32
implementation shows, against which the C test's tolerances are set. The committed file was made by
the command in tests/reference/README.md.
"""
import argparse
import copy
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
import mobilenetv2  # noqa: E402

MODELS = {"mobilenet": mobilenet_ref.MobileNet, "mobilenetv2": mobilenetv2.MobileNetV2}

FORMAT_VERSION = 1  # bump when the records above change meaning; test_parity.c checks it
HYPER = dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)


def relu_ties(model, state, tau):
    """Forward hooks on every batch norm (each feeds a ReLU in this model). state["k"] is the step whose
    forward runs; state["enforce"] is None to record ties into state["rec"], or the records of a run
    whose decisions this run must take (then a zeroed tie becomes exactly 0, a passed one keeps its
    value if positive, else becomes 1e-30, and its gradient passes unchanged)."""
    def hook(name):
        def fn(module, inputs, out):
            key = f"ties{state['k']}.{name}"
            if state["enforce"] is None:
                if state["k"] == state["steps"]:
                    return out  # the last forward has no backward: no ties needed
                v = out.detach().reshape(-1)
                idx = torch.nonzero(v.abs() < tau).reshape(-1)
                state["rec"][key] = torch.where(v[idx] > 0, idx + 1, -(idx + 1))
                return out
            code = state["enforce"].get(key)
            if code is None:
                return out
            idx, on = code.abs() - 1, code > 0
            flat = out.reshape(-1)
            chosen = flat[idx]
            v = chosen.detach()
            target = torch.where(on, torch.where(v > 0, v, torch.full_like(v, 1e-30)), torch.zeros_like(v))
            # target + (x - x): exactly target, with x's gradient (adding a correction to x instead
            # would round 1e-30 away).
            return flat.index_put((idx,), target + (chosen - v)).view_as(out)
        return fn
    relu_after = getattr(model, "relu_after", lambda name: True)  # MobileNet: every batch norm
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d) and relu_after(name):
            module.register_forward_hook(hook(name))


def load_state(model, opt, rec, k):
    """Puts the recorded state after k steps into model and optimizer (teacher forcing)."""
    prefix = "init." if k == 0 else f"step{k}."
    model.load_state_dict({n: torch.as_tensor(rec[prefix + n]).to(t.dtype)
                           for n, t in model.state_dict().items() if prefix + n in rec}, strict=False)
    for n, p in model.named_parameters():
        opt.state[p].pop("momentum_buffer", None)
        if f"mom{k}.{n}" in rec:  # none before the first step (nor after the last)
            opt.state[p]["momentum_buffer"] = torch.as_tensor(rec[f"mom{k}.{n}"]).to(p.dtype).clone()


def pretrain(model, records, steps, batch=128):
    """Trains `steps` SGD steps (lr 0.05, momentum 0.9) on consecutive batches of `records`, in
    training mode: the recorded run then starts from a well-conditioned network (module docstring)."""
    if steps <= 0:
        return
    images, labels = mobilenet_ref.decode(records[:steps * batch])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for i in range(steps):
        x = torch.from_numpy(images[i * batch:(i + 1) * batch])
        y = torch.from_numpy(labels[i * batch:(i + 1) * batch])
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def run(model, x, y, steps, tau, forced_by=None):
    """The recorded run as {name: tensor} (see the module docstring). With forced_by (the records of
    the float32 run), every step starts from that run's state and takes its ReLU tie decisions."""
    rec = {f"init.{n}": t.detach().clone() for n, t in model.state_dict().items()}
    state = {"k": 0, "steps": steps, "rec": rec, "enforce": forced_by}
    relu_ties(model, state, tau)
    opt = torch.optim.SGD(model.parameters(), **HYPER)
    model.train()
    for k in range(steps + 1):
        state["k"] = k
        if forced_by is not None:
            load_state(model, opt, forced_by, k)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        rec[f"loss.{k}"] = loss.detach().clone()
        if k == 0:
            rec["logits"] = logits.detach().clone()
        if k == steps:
            break
        opt.zero_grad()
        loss.backward()
        if k == 0:
            rec.update({f"grad.{n}": p.grad.detach().clone() for n, p in model.named_parameters()})
        opt.step()
        rec.update({f"step{k + 1}.{n}": t.detach().clone() for n, t in model.state_dict().items()})
        if k + 1 < steps:
            rec.update({f"mom{k + 1}.{n}": opt.state[p]["momentum_buffer"].detach().clone()
                        for n, p in model.named_parameters()})
    return {n: t for n, t in rec.items() if not n.endswith("num_batches_tracked")}


def compared(rec, name, ref):
    """What test_parity.c compares for a record: a step's result as the change it made to the state it
    started from (the update, not the mostly unchanged weights), everything else as it is. `ref` holds
    the starting states (the float32 run)."""
    if name.startswith("step"):
        prefix, base = name.split(".", 1)
        k = int(prefix[len("step"):])
        start = ref[f"init.{base}" if k == 1 else f"step{k - 1}.{base}"]
        return rec[name].double() - start.double()
    return rec[name].double()


def report_float32_error(rec32, rec64):
    """Prints ||fp32 - fp64|| / ||fp64|| per compared record and the worst per kind."""
    worst = {}
    print(f"{'record':44s} {'||fp64||':>12s} {'rel err fp32':>13s}")
    for name in rec32:
        if name.startswith(("init.", "ties")):
            continue
        a, b = compared(rec32, name, rec32), compared(rec64, name, rec32)
        norm = float(b.norm())
        err = float((a - b).norm()) / norm if norm > 0 else float((a - b).norm())
        print(f"{name:44s} {norm:12.5g} {err:13.3e}")
        kind = name.split(".", 1)[0]
        if kind == "grad" and ".bn" in name and name.endswith("weight"):
            kind = "grad(bn.weight)"
        if err > worst.get(kind, (0, ""))[0]:
            worst[kind] = (err, name)
    print("\nPyTorch float32 vs float64 from the same state, worst relative error per kind:")
    for kind, (err, name) in worst.items():
        print(f"  {kind:16s} {err:.3e}  ({name})")


def eval_reference(ref_path, out_path):
    """Writes the eval-mode logits of REF's states (see the module docstring, "Eval mode")."""
    ref = drnet_ckpt.read(ref_path)
    width, steps = drnet_ckpt.scalar(ref, "ref.width"), drnet_ckpt.scalar(ref, "ref.steps")
    classes = drnet_ckpt.scalar(ref, "ref.num_classes")
    model = MODELS[drnet_ckpt.text(ref, "ref.model") if "ref.model" in ref else "mobilenet"](width, classes)
    x = torch.from_numpy(ref["input.images"])
    command = "/usr/bin/python3 tests/reference/make_parity_reference.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    out = {n: (drnet_ckpt.text(ref, n) if isinstance(v, bytes) else v) for n, v in ref.items() if n.startswith("ref.")}
    out.update({"ref.torch": torch.__version__, "ref.command": command,
                "ref.eval_source": os.path.basename(ref_path)})
    print(f"{'record':24s} {'||fp64||':>12s} {'rel err fp32':>13s}")
    for k in range(steps + 1):
        prefix = "init." if k == 0 else f"step{k}."
        model.load_state_dict(mobilenet_ref.tensors_to_state(
            model, {n[len(prefix):]: v for n, v in ref.items() if n.startswith(prefix)}))
        model.eval()
        model64 = copy.deepcopy(model).double()
        with torch.no_grad():
            logits, logits64 = model(x), model64(x.double())
        out[f"eval{k}.logits"] = logits.numpy().astype(np.float32)
        out[f"float64.eval{k}.logits"] = logits64.numpy().astype(np.float32)
        err = float((logits.double() - logits64).norm() / logits64.norm())
        print(f"eval{k}.logits{'':12s} {float(logits64.norm()):12.5g} {err:13.3e}")
    drnet_ckpt.write(out_path, out)
    print(f"wrote {out_path}: {len(out)} records, {os.path.getsize(out_path)} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="mobilenet")
    ap.add_argument("--width", type=float, default=0.2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--tie", type=float, default=2e-3,
                    help="record ReLU decisions for pre-activations within this of zero (default 2e-3)")
    ap.add_argument("--data", default=mobilenet_ref.default_data_path(),
                    help="cifar-10-binary.tar.gz (default: $CIFAR10_PATH, else data/cifar-10-binary.tar.gz)")
    ap.add_argument("--pretrain", type=int, default=100,
                    help="SGD steps (batch 128) before the recorded run, for a well-conditioned network (default 100)")
    ap.add_argument("--eval-from", metavar="REF",
                    help="instead: write the eval-mode logits of the states in the reference REF (docstring)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.eval_from:
        return eval_reference(args.eval_from, args.out)

    torch.manual_seed(args.seed)
    model = MODELS[args.model](args.width, 10)
    train_records = mobilenet_ref.load_cifar10(args.data, "train")
    pretrain(model, train_records[args.batch:], args.pretrain)
    model64 = copy.deepcopy(model).double()
    records = train_records[:args.batch]
    images, labels = mobilenet_ref.decode(records)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    rec = run(model, x, y, args.steps, args.tie)
    rec64 = run(model64, x.double(), y, args.steps, args.tie, forced_by=rec)
    report_float32_error(rec, rec64)

    command = "/usr/bin/python3 tests/reference/make_parity_reference.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    out = {
        "ref.version": FORMAT_VERSION,
        "ref.torch": torch.__version__,
        "ref.command": command,
        "ref.model": args.model,
        "ref.width": float(args.width),
        "ref.tie": float(args.tie),
        "ref.num_classes": 10,
        "ref.batch": args.batch,
        "ref.seed": args.seed,
        "ref.pretrain": args.pretrain,
        "ref.steps": args.steps,
        "ref.lr": HYPER["lr"],
        "ref.momentum": HYPER["momentum"],
        "ref.weight_decay": HYPER["weight_decay"],
        "ref.nesterov": int(HYPER["nesterov"]),
        "input.images": images,
        "input.labels": labels,
        "input.indices": np.arange(args.batch, dtype=np.int64),
    }
    for name, t in rec.items():
        out[name] = t.numpy().astype(np.int64 if name.startswith("ties") else np.float32)
    # The forward's results in float64 (rounded to float32), from the same states: how far float32
    # results are from exact, ours and PyTorch's alike (information the C test prints).
    out["float64.logits"] = rec64["logits"].numpy().astype(np.float32)
    for k in range(args.steps + 1):
        out[f"float64.loss.{k}"] = rec64[f"loss.{k}"].numpy().astype(np.float32)
    drnet_ckpt.write(args.out, out)
    ties = sum(v.size for n, v in out.items() if n.startswith("ties"))
    print(f"\nwrote {args.out}: {len(out)} records ({ties} ReLU ties), {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
