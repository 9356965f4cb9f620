"""CIFAR-adapted networks: ResNet-18 and DenseNet-121 with a 3×3 stride-1 stem and no
max-pool, and a small fast CNN for tests. Inputs are normalised N×3×H×W tensors."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet18(nn.Module):
    """ResNet-18 for 32-px images: 3×3 stride-1 stem, no max-pool, stages of ``width``,
    2w, 4w, 8w channels (width 64 = the standard 11.2 M-parameter model)."""

    def __init__(self, num_classes: int = 10, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        c_in, stages = width, []
        for i, n_blocks in enumerate((2, 2, 2, 2)):
            c_out = width * 2 ** i
            blocks = []
            for j in range(n_blocks):
                blocks.append(BasicBlock(c_in, c_out, stride=2 if (i > 0 and j == 0) else 1))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class _DenseLayer(nn.Module):
    def __init__(self, c_in: int, growth: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def new_features(self, x):
        """The ``growth`` channels this layer adds (BN-ReLU-1×1 conv-BN-ReLU-3×3 conv)."""
        out = self.conv1(F.relu(self.bn1(x)))
        return self.conv2(F.relu(self.bn2(out), inplace=True))

    def forward(self, x):
        return torch.cat([self.new_features(x), x], 1)


class _DenseBlock(nn.Sequential):
    """Dense layers whose outputs are stacked newest-first: ``[f_n, ..., f_1, x]``.

    Without autograd (evaluation) the block writes every layer's features into one buffer
    allocated once, ``x`` at its tail and each new slice just before the last: layer k reads
    the tail view instead of a fresh ``torch.cat`` of everything so far, so the copies are
    O(L) instead of O(L²). With autograd the buffer cannot be used (writing into it would
    bump the version of tensors the earlier layers saved for backward), so training keeps
    the per-layer concatenation; the two paths compute the same function.
    """

    def forward(self, x):
        if torch.is_grad_enabled() and (x.requires_grad or any(
                p.requires_grad for p in self.parameters())):
            for layer in self:
                x = layer(x)
            return x
        n, c0, h, w = x.shape
        growth = self[0].conv2.out_channels
        c = c0 + growth * len(self)
        fmt = (torch.channels_last if x.dim() == 4 and not x.is_contiguous()
               and x.is_contiguous(memory_format=torch.channels_last)
               else torch.contiguous_format)
        buf = torch.empty((n, c, h, w), dtype=x.dtype, device=x.device, memory_format=fmt)
        start = c - c0
        buf[:, start:] = x
        for layer in self:
            buf[:, start - growth:start] = layer.new_features(buf[:, start:])
            start -= growth
        return buf


class _Transition(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class CifarDenseNet121(nn.Module):
    """DenseNet-BC-121 (blocks 6-12-24-16, compression 0.5) with a CIFAR stem: one 3×3
    stride-1 convolution of 2·growth channels, no max-pool. ``growth`` 32 is the standard."""

    def __init__(self, num_classes: int = 10, growth: int = 32, blocks=(6, 12, 24, 16)):
        super().__init__()
        c = 2 * growth
        self.conv1 = nn.Conv2d(3, c, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for i, n in enumerate(blocks):
            layers = []
            for _ in range(n):
                layers.append(_DenseLayer(c, growth))
                c += growth
            stages.append(_DenseBlock(*layers))
            if i < len(blocks) - 1:
                stages.append(_Transition(c, c // 2))
                c //= 2
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = F.relu(self.bn(self.features(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class SmallCNN(nn.Module):
    """A four-conv CNN (~0.1 M parameters at width 32) that trains in seconds on a CPU."""

    def __init__(self, num_classes: int = 10, width: int = 32):
        super().__init__()
        w = width

        def block(c_in, c_out, stride):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                                 nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))

        self.features = nn.Sequential(block(3, w, 1), block(w, w, 2), block(w, 2 * w, 1),
                                      block(2 * w, 2 * w, 2))
        self.fc = nn.Linear(2 * w, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))
