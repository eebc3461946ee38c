"""The PyTorch side of the parity and weight-exchange tests: the reference MobileNet-CIFAR and the
mapping between a PyTorch state_dict and the tensors of a drnet checkpoint (both from
tools/mobilenet.py, re-exported here), and CIFAR-10 read exactly as our loader reads it.

The model is kuangliu/pytorch-cifar's MobileNet, layer for layer and name for name (conv1, bn1,
layers.{i}.conv1/bn1/conv2/bn2, linear), with a width multiplier that turns every channel count c into
int(c * width) exactly as models/mobilenet.c does: width is first rounded to float32 (./train parses
--width into a C float), then multiplied in double precision.
"""
import os
import sys
import tarfile

import numpy as np
import torch

# The model and the state_dict mapping live in tools/mobilenet.py (the user-facing module).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from mobilenet import CFG, Block, MobileNet, scaled, state_to_tensors, tensors_to_state, unwrap_state  # noqa: E402,F401

# data/loader.c: ToTensor + Normalize, computed in float32.
MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)
RECORD = 3073  # label byte + 3 x 32 x 32 pixel bytes (official binary layout)


# ---------------------------------------------------------------------------------------------------
# CIFAR-10

def default_data_path():
    """Where ./train looks: $CIFAR10_PATH, else data/cifar-10-binary.tar.gz in the checkout."""
    env = os.environ.get("CIFAR10_PATH")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "data", "cifar-10-binary.tar.gz"))


def load_cifar10(path, split):
    """Records (n, 3073) uint8 of the official binary CIFAR-10 -- the tar.gz, or (like data/cifar10.c)
    a directory holding cifar-10-batches-bin/ or being it: split 'train' (data_batch_1..5 in order,
    50000) or 'test' (test_batch, 10000)."""
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    found = {}
    if os.path.isdir(path):
        inner = os.path.join(path, "cifar-10-batches-bin")
        folder = inner if os.path.isdir(inner) else path
        for n in names:
            if os.path.isfile(os.path.join(folder, n)):
                with open(os.path.join(folder, n), "rb") as f:
                    found[n] = f.read()
    else:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                base = os.path.basename(member.name)
                if member.isfile() and base in names:
                    found[base] = tar.extractfile(member).read()
    missing = [n for n in names if n not in found]
    if missing:
        raise FileNotFoundError(f"'{path}' lacks {', '.join(missing)}: not the CIFAR-10 binary archive")
    data = np.frombuffer(b"".join(found[n] for n in names), dtype=np.uint8)
    return data.reshape(-1, RECORD)


def decode(records):
    """(images float32 (n, 3, 32, 32), labels int64 (n)) exactly as data/loader.c computes them:
    (pixel / 255 - mean[c]) / std[c] in float32, no augmentation."""
    pixels = records[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32)
    images = (pixels / np.float32(255.0) - MEAN[None, :, None, None]) / STD[None, :, None, None]
    return images.astype(np.float32), records[:, 0].astype(np.int64)


@torch.no_grad()
def evaluate(model, images, labels, batch=500):
    """Number of correctly classified images, in eval mode (running statistics)."""
    model.eval()
    correct = 0
    for i in range(0, len(images), batch):
        logits = model(torch.from_numpy(images[i:i + batch]))
        correct += int((logits.argmax(1) == torch.from_numpy(labels[i:i + batch])).sum())
    return correct
