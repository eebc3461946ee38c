#!/usr/bin/env python3
"""PyTorch twin of `./train mobilenet cifar10`: the same recipe on the same batches.

Trains tools/mobilenet.py's MobileNet (kuangliu's MobileNet-CIFAR, PyTorch's default initialisation
after torch.manual_seed(--seed)) with ./train's default recipe: SGD lr 0.1, momentum 0.9, weight
decay 5e-4 on every parameter, batch 128 with the epoch's short last batch kept, the cosine schedule
to zero over the run evaluated per step, random crop with 4-pixel zero padding and horizontal flip.
The batches are ./train's own: the epoch order and every crop and flip come from the same random
streams (a port of nn/rng.h and nn/augment.h below), the pixels are normalized in float32 as
data/loader.c does. With --init-out FILE it also writes its initial weights as one of our checkpoints,
and `./train mobilenet cifar10 --init FILE --seed S` then starts from the same weights and sees the
same batches: the two runs differ only in floating-point rounding (tests/test_twin_torch.sh).

The log has ./train's JSON lines (one per epoch; with --log-every N one per N steps with the epoch's
running loss and accuracy), so tools/plot_runs.py and a comparison read both alike.

    /usr/bin/python3 tests/reference/train_torch.py --epochs 3 --seed 1 --log torch.jsonl \\
        --init-out init.ckpt [--threads 2] [--channels-last] [--data PATH]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import drnet_ckpt  # noqa: E402
from cpu_malloc import keep_freed_memory  # noqa: E402
from mobilenet_ref import MEAN, STD, MobileNet, default_data_path, load_cifar10  # noqa: E402
from torch_to_ckpt import convert  # noqa: E402

# ---------------------------------------------------------------------------------------------------
# nn/rng.h (splitmix64 with derived streams) and nn/augment.h, in numpy uint64 (which wraps mod 2^64
# as C's uint64_t does). Each function is vectorized over the stream's second key where C loops.

U = np.uint64
MASK = (1 << 64) - 1
GAMMA, MIX1, MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB  # rng_next's constants


def _next(state):
    """rng_next on an array of states: (new states, outputs)."""
    with np.errstate(over="ignore"):
        state = state + U(GAMMA)
        z = state
        z = (z ^ (z >> U(30))) * U(MIX1)
        z = (z ^ (z >> U(27))) * U(MIX2)
    return state, z ^ (z >> U(31))


def _derive(seed, a, b):
    """rng_derive(seed, a, b) for an array b: the streams' states."""
    with np.errstate(over="ignore"):
        state = np.full(np.shape(b), U(seed) ^ U(0x5DEECE66D), dtype=U)
        state, z = _next(state)
        state = z ^ (U(a) * U(0xD1B54A32D192ED03))
        state, z = _next(state)
        state = z ^ (np.asarray(b, dtype=U) * U(0xABC98388FB8FAC03))
        state, _ = _next(state)
    return state


def _below(state, n):
    """rng_below(r, n): (new states, integers in [0, n))."""
    state, z = _next(state)
    return state, ((z >> U(32)) * U(n)) >> U(32)


def epoch_order(n, seed, epoch):
    """augment_epoch_order: Fisher-Yates over 0..n-1 from the stream (seed, 0xE90C, epoch). Sequential
    by nature (one draw per position), so in plain Python integers rather than numpy."""
    state = int(_derive(seed, 0xE90C, np.array([epoch], dtype=U))[0])
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        state = (state + GAMMA) & MASK  # rng_next, as _next does
        z = ((state ^ (state >> 30)) * MIX1) & MASK
        z = ((z ^ (z >> 27)) * MIX2) & MASK
        j = (((z ^ (z >> 31)) >> 32) * (i + 1)) >> 32  # rng_below(r, i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return np.array(perm, dtype=np.int64)


def augmentation(seed, epoch, index):
    """augment_draw for an array of dataset indices: (crop dx, crop dy, flip), each an array."""
    state = _derive(seed, epoch + 1, index)
    state, dy = _below(state, 9)
    state, dx = _below(state, 9)
    state, z = _next(state)
    flip = (z >> U(40)) < U(1 << 23)  # rng_uniform < 0.5: 24 random bits, below half of 2^24
    return dx.astype(np.int64) - 4, dy.astype(np.int64) - 4, flip


class Batches:
    """./train's batches of one split: pixels padded once, crops and flips gathered per batch, then
    normalized through the same float32 table as data/loader.c."""

    def __init__(self, records, train, seed, augment):
        self.labels = records[:, 0].astype(np.int64)
        pixels = records[:, 1:].reshape(-1, 3, 32, 32)
        self.padded = np.zeros((len(records), 3, 40, 40), dtype=np.uint8)  # the padding is black
        self.padded[:, :, 4:36, 4:36] = pixels
        v = np.arange(256, dtype=np.float32)[None, :]
        self.lut = (v / np.float32(255.0) - MEAN[:, None]) / STD[:, None]  # (3, 256) float32
        self.train, self.seed, self.augment = train, seed, augment

    def epoch(self, epoch, batch):
        n = len(self.labels)
        order = epoch_order(n, self.seed, epoch) if self.train else np.arange(n)
        for first in range(0, n, batch):
            idx = order[first:first + batch]
            if self.train and self.augment:
                dx, dy, flip = augmentation(self.seed, epoch, idx)
            else:
                dx = dy = np.zeros(len(idx), dtype=np.int64)
                flip = np.zeros(len(idx), dtype=bool)
            x = np.arange(32)
            rows = x[None, :] + dy[:, None] + 4                                   # (b, 32)
            cols = np.where(flip[:, None], 31 - x[None, :], x[None, :]) + dx[:, None] + 4
            c = np.arange(3)[None, :, None, None]
            bytes_ = self.padded[idx[:, None, None, None], c, rows[:, None, :, None], cols[:, None, None, :]]
            images = self.lut[c, bytes_]                                          # (b, 3, 32, 32)
            yield torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(self.labels[idx])


# ---------------------------------------------------------------------------------------------------

def load_or_exit(path, split):
    """load_cifar10, with missing, unreadable or truncated data reported in one line."""
    try:
        return load_cifar10(path, split)
    except (OSError, EOFError, ValueError) as e:
        raise SystemExit(f"error: cannot read CIFAR-10 from '{path}': {e}")


def cosine_lr(base, step, total):
    """nn/sgd.c's schedule_lr for the cosine schedule without warm-up."""
    if total <= 0 or step >= total:
        return 0.0
    return base * 0.5 * (1.0 + math.cos(math.pi * step / total))


@torch.no_grad()
def evaluate(model, batches, batch, layout, dtype):
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for images, labels in batches.epoch(0, batch):
        logits = model(images.to(dtype).contiguous(memory_format=layout))
        loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(1) == labels).sum())
        n += len(labels)
    model.train()
    return loss_sum / n, 100.0 * correct / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="CIFAR-10 binary archive or folder (default: as ./train)")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=1, help="initial weights (torch.manual_seed) and ./train's data streams")
    ap.add_argument("--augment", choices=["on", "off"], default="on")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--limit-train", type=int, default=0, help="the first N training images (0: all)")
    ap.add_argument("--limit-test", type=int, default=0, help="the first N test images (0: all)")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    ap.add_argument("--channels-last", action="store_true", help="the model and batches in channels_last")
    ap.add_argument("--log", required=True, help="the JSON-lines log to write")
    ap.add_argument("--log-every", type=int, default=0, help="also log the running loss every N steps")
    ap.add_argument("--init-out", default=None, help="write the initial weights here as our checkpoint")
    ap.add_argument("--max-steps", type=int, default=0,
                    help="stop after N steps in all (the schedule unchanged, as ./train's); no epoch record after the cut")
    ap.add_argument("--double", action="store_true",
                    help="train in float64 (the same batches, converted): a reference for float32's rounding")
    a = ap.parse_args()
    for flag, v in (("--epochs", a.epochs), ("--batch", a.batch)):
        if v < 1:
            raise SystemExit(f"error: {flag} {v}: must be at least 1")
    for flag, v in (("--limit-train", a.limit_train), ("--limit-test", a.limit_test), ("--log-every", a.log_every),
                    ("--max-steps", a.max_steps)):
        if v < 0:
            raise SystemExit(f"error: {flag} {v}: must not be negative")

    malloc = keep_freed_memory()
    if a.threads:
        torch.set_num_threads(a.threads)
    path = a.data or default_data_path()
    train, test = load_or_exit(path, "train"), load_or_exit(path, "test")
    if a.limit_train:
        train = train[:a.limit_train]
    if a.limit_test:
        test = test[:a.limit_test]
    if a.batch > len(train):
        raise SystemExit(f"error: --batch {a.batch} is larger than the {len(train)} training images")
    train_batches = Batches(train, True, a.seed, a.augment == "on")
    test_batches = Batches(test, False, a.seed, False)

    torch.manual_seed(a.seed)
    model = MobileNet(a.width)
    if a.init_out:
        drnet_ckpt.write(a.init_out, convert(model.state_dict(), a.width))
    layout = torch.channels_last if a.channels_last else torch.contiguous_format
    dtype = torch.float64 if a.double else torch.float32
    model = model.to(dtype=dtype, memory_format=layout)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.wd)
    steps_per_epoch = -(-len(train) // a.batch)
    total = a.epochs * steps_per_epoch
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, {malloc}"
          f"{', float64' if a.double else ''}", flush=True)
    print(f"data: {path} ({len(train)} training, {len(test)} test images); MobileNet width {a.width:g}, "
          f"seed {a.seed}, {a.epochs} epochs of {steps_per_epoch} steps", flush=True)

    step, start = 0, time.time()
    with open(a.log, "w") as log:
        def write(record):
            log.write(json.dumps(record) + "\n")
            log.flush()

        for epoch in range(a.epochs):
            t0 = time.time()
            loss_sum, correct, seen = 0.0, 0, 0
            for batch_index, (images, labels) in enumerate(train_batches.epoch(epoch, a.batch)):
                lr = cosine_lr(a.lr, step, total)
                for group in opt.param_groups:
                    group["lr"] = lr
                logits = model(images.to(dtype).contiguous(memory_format=layout))
                loss = F.cross_entropy(logits, labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                loss_sum += float(loss) * len(labels)
                correct += int((logits.argmax(1) == labels).sum())
                seen += len(labels)
                if not math.isfinite(loss_sum):
                    raise SystemExit(f"error: the training loss is {loss_sum} at step {step}")
                if a.log_every and step % a.log_every == 0:
                    write({"kind": "step", "epoch": epoch + 1, "batch": batch_index + 1, "step": step,
                           "loss": round(loss_sum / seen, 6), "acc": round(100.0 * correct / seen, 4), "lr": lr})
                if step == a.max_steps:  # cut mid-run: no epoch record, as no epoch ended
                    print(f"stopped at --max-steps {step}", flush=True)
                    return
            seconds = time.time() - t0
            test_loss, test_acc = evaluate(model, test_batches, a.batch, layout, dtype)
            write({"epoch": epoch + 1, "step": step, "train_loss": round(loss_sum / seen, 6),
                   "train_acc": round(100.0 * correct / seen, 4), "test_loss": round(test_loss, 6),
                   "test_acc": round(test_acc, 4), "lr": lr, "seconds": round(seconds, 3),
                   "img_per_s": round(seen / seconds, 2), "run_seconds": round(time.time() - start, 1)})
            print(f"epoch {epoch + 1}/{a.epochs}: train loss {loss_sum / seen:.4f} acc {100.0 * correct / seen:.2f}%, "
                  f"test loss {test_loss:.4f} acc {test_acc:.2f}%, {seconds:.0f} s ({seen / seconds:.0f} img/s)",
                  flush=True)


if __name__ == "__main__":
    main()
