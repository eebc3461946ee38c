"""The PyTorch side of the parity and weight-exchange tools: the reference MobileNet-CIFAR, CIFAR-10
read exactly as our loader reads it, and the mapping between a PyTorch state_dict and the tensors of
a drnet checkpoint.

The model is kuangliu/pytorch-cifar's MobileNet, layer for layer and name for name (conv1, bn1,
layers.{i}.conv1/bn1/conv2/bn2, linear), with a width multiplier that turns every channel count c into
int(c * width) exactly as models/mobilenet.c does: width is first rounded to float32 (./train parses
--width into a C float), then multiplied in double precision.
"""
import os
import tarfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# (out channels, stride) of the 13 depthwise-separable blocks, as in kuangliu's MobileNet.cfg.
CFG = [64, (128, 2), 128, (256, 2), 256, (512, 2), 512, 512, 512, 512, 512, (1024, 2), 1024]

# data/loader.c: ToTensor + Normalize, computed in float32.
MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)
RECORD = 3073  # label byte + 3 x 32 x 32 pixel bytes (official binary layout)


def scaled(c, width):
    """int(c * width) with width as the C float ./train holds (see models/mobilenet.c:scaled)."""
    s = int(c * float(np.float32(width)))
    if s < 1:
        raise ValueError(f"width {width} leaves a layer of {c} channels with none")
    return s


class Block(nn.Module):
    """Depthwise 3x3 (stride s) -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv2 = nn.Conv2d(cin, cout, 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x)))


class MobileNet(nn.Module):
    """kuangliu/pytorch-cifar MobileNet with a width multiplier (PyTorch default initialisation)."""

    def __init__(self, width=1.0, num_classes=10):
        super().__init__()
        c = scaled(32, width)
        self.conv1 = nn.Conv2d(3, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        blocks = []
        for entry in CFG:
            out, stride = (entry, 1) if isinstance(entry, int) else entry
            out = scaled(out, width)
            blocks.append(Block(c, out, stride))
            c = out
        self.layers = nn.Sequential(*blocks)
        self.linear = nn.Linear(c, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        x = F.avg_pool2d(x, 2)
        return self.linear(x.view(x.size(0), -1))


# ---------------------------------------------------------------------------------------------------
# CIFAR-10

def default_data_path():
    """$CIFAR10_PATH, else ../shared/data/cifar-10-binary.tar.gz next to the checkout."""
    env = os.environ.get("CIFAR10_PATH")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "data", "cifar-10-binary.tar.gz"))


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


# ---------------------------------------------------------------------------------------------------
# state_dict <-> checkpoint tensors

def state_to_tensors(state):
    """The checkpoint tensors of a state_dict: every parameter and running statistic as float32 under
    its own name; num_batches_tracked is not stored (our batch norm always uses momentum 0.1, so the
    counter changes nothing)."""
    return {name: t.detach().cpu().to(torch.float32).contiguous().numpy()
            for name, t in state.items() if not name.endswith("num_batches_tracked")}


def tensors_to_state(model, records, num_batches_tracked=0):
    """A state_dict for `model` from checkpoint records, checking that every tensor is there with the
    right shape (a mismatch names the tensor and both shapes)."""
    state = {}
    for name, ref in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(num_batches_tracked, dtype=torch.long)
            continue
        if name not in records:
            raise KeyError(f"the checkpoint has no tensor '{name}' (another model or width?)")
        value = records[name]
        if not isinstance(value, np.ndarray) or value.dtype != np.float32 or tuple(value.shape) != tuple(ref.shape):
            shape = getattr(value, "shape", "?")
            raise ValueError(f"tensor '{name}' has shape {tuple(shape)}, the model needs {tuple(ref.shape)} "
                             f"(another --width?)")
        state[name] = torch.from_numpy(value.copy())
    return state


def unwrap_state(obj):
    """The state_dict inside what torch.load returned: a bare state_dict, kuangliu's {'net': ...}
    checkpoint, or {'state_dict': ...} / {'model': ...}; a DataParallel 'module.' prefix is removed."""
    for key in ("net", "state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise TypeError(f"expected a state_dict, got {type(obj).__name__}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


@torch.no_grad()
def evaluate(model, images, labels, batch=500):
    """Number of correctly classified images, in eval mode (running statistics)."""
    model.eval()
    correct = 0
    for i in range(0, len(images), batch):
        logits = model(torch.from_numpy(images[i:i + batch]))
        correct += int((logits.argmax(1) == torch.from_numpy(labels[i:i + batch])).sum())
    return correct
