#!/usr/bin/env python3
"""The PyTorch side of tests/test_exchange.sh: evaluate a state_dict on the CIFAR-10 test set, train a
MobileNet for a few steps, and compare the tensors of two checkpoints.

    exchange_torch.py eval WEIGHTS.pt --width W      prints "correct C N" last (C of N test images)
    exchange_torch.py train OUT.pt --width W [--steps 40 --batch 128 --seed 0 --lr 0.05]
    exchange_torch.py same A.ckpt B.ckpt             exit 0 iff every tensor of A is in B, bit-identical

Evaluation is the reference model in eval mode (running statistics), on the test images normalized
exactly as data/loader.c does (mobilenet_ref.decode), the prediction being the argmax of the logits:
what `./train --eval-only` computes. Training: SGD (momentum 0.9, nesterov, weight decay 5e-4) on
batches drawn in a seeded random order from the training set, without augmentation.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import drnet_ckpt  # noqa: E402
import mobilenet_ref  # noqa: E402


def load_model(path, width):
    state = mobilenet_ref.unwrap_state(torch.load(path, map_location="cpu"))
    model = mobilenet_ref.MobileNet(width, state["linear.weight"].shape[0])
    model.load_state_dict(state, strict=True)
    return model


def cmd_eval(args):
    model = load_model(args.weights, args.width)
    records = mobilenet_ref.load_cifar10(args.data, "test")
    if args.limit:
        records = records[:args.limit]
    images, labels = mobilenet_ref.decode(records)
    start = time.time()
    correct = mobilenet_ref.evaluate(model, images, labels)
    print(f"test: accuracy {100.0 * correct / len(labels):.2f}% ({len(labels)} images, "
          f"{time.time() - start:.1f} s)")
    print(f"correct {correct} {len(labels)}")


def cmd_train(args):
    torch.manual_seed(args.seed)
    model = mobilenet_ref.MobileNet(args.width, 10)
    records = mobilenet_ref.load_cifar10(args.data, "train")
    order = torch.randperm(len(records), generator=torch.Generator().manual_seed(args.seed)).numpy()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    model.train()
    start = time.time()
    for step in range(args.steps):
        idx = order[(step * args.batch) % len(order):][:args.batch]
        images, labels = mobilenet_ref.decode(records[idx])
        x, y = torch.from_numpy(images), torch.from_numpy(labels)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 10 == 0 or step + 1 == args.steps:
            print(f"step {step + 1}/{args.steps} loss {loss.item():.4f}", flush=True)
    torch.save(model.state_dict(), args.output)
    print(f"trained {args.steps} steps of {args.batch} in {time.time() - start:.1f} s; wrote {args.output}")


def cmd_same(args):
    a, b = drnet_ckpt.read(args.a), drnet_ckpt.read(args.b)
    differ = [n for n, v in a.items() if isinstance(v, np.ndarray) and v.ndim > 0 and
              (n not in b or b[n].dtype != v.dtype or not np.array_equal(b[n], v))]
    tensors = sum(1 for v in a.values() if isinstance(v, np.ndarray) and v.ndim > 0)
    if differ:
        print(f"{len(differ)} of {tensors} tensors differ or are missing, e.g. {', '.join(differ[:3])}")
        sys.exit(1)
    print(f"all {tensors} tensors of {args.a} are bit-identical in {args.b}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("eval")
    ev.add_argument("weights")
    ev.add_argument("--width", type=float, required=True)
    ev.add_argument("--limit", type=int, default=0, help="only the first N test images")
    tr = sub.add_parser("train")
    tr.add_argument("output")
    tr.add_argument("--width", type=float, required=True)
    tr.add_argument("--steps", type=int, default=40)
    tr.add_argument("--batch", type=int, default=128)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--lr", type=float, default=0.05)
    for p in (ev, tr):
        p.add_argument("--data", default=mobilenet_ref.default_data_path())
    sm = sub.add_parser("same")
    sm.add_argument("a")
    sm.add_argument("b")
    args = ap.parse_args()
    {"eval": cmd_eval, "train": cmd_train, "same": cmd_same}[args.command](args)


if __name__ == "__main__":
    main()
