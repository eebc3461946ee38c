"""MobileNetV2 for CIFAR-10 in plain PyTorch: the network `./train mobilenetv2` trains, layer for layer
and name for name, so the weights of a drnet checkpoint load into it as they are (tools/export.py
writes them).

    import torch, sys; sys.path.insert(0, "tools")
    from mobilenetv2 import MobileNetV2
    model = MobileNetV2(width=0.5)                    # the --width of the run
    model.load_state_dict(torch.load("model.pt"))     # what tools/export.py wrote
    model.eval()
    logits = model(images)                            # images: (n, 3, 32, 32), normalized as ./train does

It is kuangliu/pytorch-cifar's MobileNetV2 (conv1, bn1, layers.{i}.conv1/bn1/conv2/bn2/conv3/bn3 and,
where a stride-1 block changes the channel count, layers.{i}.shortcut.0/1, conv2, bn2, linear), with
ReLU (not ReLU6), the expansion applied even where it is 1, and a residual add only at stride 1. The
width multiplier turns every channel count c (stem, each stage's output, the 1280 of the head) into
int(c * width) exactly as models/mobilenetv2.c does (mobilenet.scaled: width rounded to float32, the
product in double precision, truncated); an expanded block has expansion times its scaled input.
Needs only torch and numpy.
"""
import torch.nn as nn
import torch.nn.functional as F

from mobilenet import MEAN, STD, scaled, state_to_tensors, tensors_to_state, unwrap_state  # noqa: F401

# (expansion, out channels, blocks, stride of the first), as in kuangliu's MobileNetV2.cfg.
CFG = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class Block(nn.Module):
    """1x1 expansion -> BN -> ReLU -> depthwise 3x3 (stride s) -> BN -> ReLU -> 1x1 projection -> BN,
    plus the input (or its 1x1 conv + BN where the channel count changes) when the stride is 1."""

    def __init__(self, cin, cout, expansion, stride):
        super().__init__()
        self.stride = stride
        planes = expansion * cin
        self.conv1 = nn.Conv2d(cin, planes, 1, 1, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, groups=planes, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, 1, 0, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride == 1 and cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


class MobileNetV2(nn.Module):
    """kuangliu/pytorch-cifar MobileNetV2 with a width multiplier (PyTorch default initialisation)."""

    # The batch norms whose output feeds a ReLU (the others, bn3 and shortcut.1, feed the residual add).
    @staticmethod
    def relu_after(bn_name):
        return not bn_name.endswith(("bn3", "shortcut.1"))

    def __init__(self, width=1.0, num_classes=10):
        super().__init__()
        c = scaled(32, width)
        self.conv1 = nn.Conv2d(3, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        blocks = []
        for expansion, out, num, stride in CFG:
            out = scaled(out, width)
            for s in [stride] + [1] * (num - 1):
                blocks.append(Block(c, out, expansion, s))
                c = out
        self.layers = nn.Sequential(*blocks)
        head = scaled(1280, width)
        self.conv2 = nn.Conv2d(c, head, 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(head)
        self.linear = nn.Linear(head, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.avg_pool2d(x, 4)
        return self.linear(x.view(x.size(0), -1))
