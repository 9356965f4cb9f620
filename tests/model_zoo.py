"""A zoo of misbehaving networks (issue 35), loaded by tests/test_model_zoo.py as
``tests/model_zoo.py:NAME``. Each is a tiny linear classifier on 32-px images with one
defect; ``Plain`` is the well-behaved reference the others are built on."""
import os
import sys

import torch
from torch import nn


class Plain(nn.Module):
    """10-way linear classifier on a 4×4 average-pooled image."""

    def __init__(self, num_classes=10, width=10):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, num_classes)

    def forward(self, x):
        return self.fc(nn.functional.adaptive_avg_pool2d(self.conv(x), 4).flatten(1))


class TupleOut(Plain):
    """(logits, a feature map): the only N×C tensor is the logits."""

    def forward(self, x):
        return super().forward(x), self.conv(x)


class DictOut(Plain):
    """{"logits": ..., "features": ...}, as transformers' outputs."""

    def forward(self, x):
        return {"features": self.conv(x), "logits": super().forward(x)}


class AmbiguousTuple(Plain):
    """Two N×C tensors: which are the logits cannot be told."""

    def forward(self, x):
        z = super().forward(x)
        return z, z * 2


class OneD(Plain):
    """The batch's mean logits, 1-D."""

    def forward(self, x):
        return super().forward(x).mean(0)


class WrongBatch(Plain):
    """Logits of the first image only."""

    def forward(self, x):
        return super().forward(x)[:1]


class ConvHead1000(nn.Module):
    """A 1000-way conv head (no Linear, as SqueezeNet): head_size cannot see its width."""

    def __init__(self, **kw):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 1000, 3, padding=1)

    def forward(self, x):
        return self.conv(x).mean((2, 3))


class RaisesLate(Plain):
    """Passes its first forward pass (the evaluation's check), then raises on every batch."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return super().forward(x)


class RunsOutOfMemory(RaisesLate):
    """Passes the check, then every batch fails to allocate (as a GPU at 224 px would)."""

    def forward(self, x):
        self.calls += 1
        if self.calls > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.60 GiB")
        return Plain.forward(self, x)


class KerasLike(Plain):
    """A random-generator state among its tensors (as Keras 3 on the torch backend keeps a
    SeedGenerator's state): new on every build, though the weights are the same."""

    def __init__(self, **kw):
        super().__init__(**kw)
        state = torch.tensor(list(os.urandom(8)), dtype=torch.int64)
        self.seed_generator_state = nn.Parameter(state, requires_grad=False)


class ExitsInForward(Plain):
    def forward(self, x):
        sys.exit(3)


class NoConv(nn.Module):
    """No convolution at all: Grad-CAM has no layer to find."""

    def __init__(self, **kw):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def broken_factory(**kw):
    raise RuntimeError("this factory needs a GPU")


def needs_num_classes(num_classes):
    return Plain(num_classes=num_classes)
