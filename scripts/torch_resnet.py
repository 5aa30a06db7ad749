"""advcl's ResNet-18 in PyTorch, with advcl's tensor names, so a checkpoint's
safetensors load into it as they are: the CIFAR variant (3x3 stem, no
max-pool), widths w, 2w, 4w, 8w, one BN set, global mean pooling and a linear
classifier (`fc`). Used by scripts/autoattack_crosscheck.py (the model under
attack) and bench/resnet_step_bench.py (PyTorch's side of the timing).
"""

import torch.nn as nn
import torch.nn.functional as F


class Downsample(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = Downsample(cin, cout, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class FinetunedResNet18(nn.Module):
    """advcl's CIFAR ResNet-18 (3x3 stem, no max-pool) + linear classifier, with advcl's tensor names."""

    def __init__(self, width, in_channels, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cin = width
        for stage in range(4):
            cout = width << stage
            blocks = []
            for b in range(2):
                blocks.append(BasicBlock(cin, cout, 2 if stage > 0 and b == 0 else 1))
                cin = cout
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, classes)

    def features(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        for stage in range(4):
            h = getattr(self, f"layer{stage + 1}")(h)
        return h.mean(dim=(2, 3))

    def forward(self, x):
        return self.fc(self.features(x))
