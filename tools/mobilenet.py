"""MobileNet for CIFAR-10 in plain PyTorch: the network ./train trains, layer for layer and name for
name, so the weights of a drnet checkpoint load into it as they are (tools/export.py writes them).

    import torch, sys; sys.path.insert(0, "tools")
    from mobilenet import MobileNet
    model = MobileNet(width=0.5)                      # the --width of the run
    model.load_state_dict(torch.load("model.pt"))     # what tools/export.py wrote
    model.eval()                                      # batch norm with the running statistics
    logits = model(images)                            # images: (n, 3, 32, 32), normalized as below

Inputs are normalized as ./train does: pixel / 255, then (x - MEAN[c]) / STD[c] per channel.

It is kuangliu/pytorch-cifar's MobileNet (conv1, bn1, layers.{i}.conv1/bn1/conv2/bn2, linear) with a
width multiplier that turns every channel count c into int(c * width) exactly as models/mobilenet.c
does: width is first rounded to float32 (./train parses --width into a C float), then multiplied in
double precision. Needs only torch and numpy.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# (out channels, stride) of the 13 depthwise-separable blocks, as in kuangliu's MobileNet.cfg.
CFG = [64, (128, 2), 128, (256, 2), 256, (512, 2), 512, 512, 512, 512, 512, (1024, 2), 1024]


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



# The input normalization of data/loader.c (ToTensor + Normalize), in float32.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


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
