"""``cifar_fastnet``: a small wide VGG-like network for fast CIFAR training (after airbench,
Jordan 2024, arXiv 2404.00498), written for failmodes.

Layout (32 px input, ``width`` w = 64 by default):

    whiten   2×2 conv, 3 -> 24, no padding (31×31): weights fixed from data, bias trained
    GELU
    blocks.0 conv 3×3 -> w,  max-pool 2, BN, GELU, conv 3×3, BN, GELU   (15×15)
    blocks.1 conv 3×3 -> 4w, max-pool 2, BN, GELU, conv 3×3, BN, GELU   (7×7)
    blocks.2 conv 3×3 -> 4w, max-pool 2, BN, GELU, conv 3×3, BN, GELU   (3×3)
    max-pool 3, linear (no bias), logits × 1/9

The first layer whitens 2×2 patches: :meth:`FastNet.init_whitening` sets its 12 filters
to the eigenvectors of the training patches' covariance divided by the square root of
their eigenvalues, plus the 12 negated filters (GELU then passes both signs). BatchNorm
scales stay at 1 (only the shifts train): with the fixed logit scale this keeps the
network's output scale under the optimiser's control through the weights alone.

>>> net = FastNet(num_classes=10, width=16)
>>> net(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 10])
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import register_model

WHITEN_KERNEL = 2
# airbench's BN momentum 0.6 means "keep 60 % of the running average": torch's 0.4.
BN_MOMENTUM = 0.4
LOGIT_SCALE = 1 / 9


class _Conv(nn.Conv2d):
    """3×3 'same' conv, no bias, initialised as a partial identity: the first ``c_in``
    filters pass their input channel through (Dirac), the rest keep the default init.
    An identity start lets a deep plain (residual-free) stack train from the first step."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, padding=1, bias=False)

    def reset_parameters(self):
        super().reset_parameters()
        n = min(self.in_channels, self.out_channels)
        nn.init.dirac_(self.weight.data[:n])


def _norm(c: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(c, eps=1e-12, momentum=BN_MOMENTUM)
    bn.weight.requires_grad_(False)  # scale fixed at 1: only the shift is learned
    return bn


class ConvGroup(nn.Module):
    """conv -> max-pool 2 -> BN -> GELU -> conv -> BN -> GELU (halves the resolution)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = _Conv(c_in, c_out)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = _norm(c_out)
        self.conv2 = _Conv(c_out, c_out)
        self.norm2 = _norm(c_out)
        self.act = nn.GELU()

    def forward(self, x):
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class FastNet(nn.Module):
    """The network on normalised N×3×H×W input (H, W ≥ 16); logits N×num_classes."""

    def __init__(self, num_classes: int = 10, width: int = 64):
        super().__init__()
        c_white = 2 * 3 * WHITEN_KERNEL ** 2
        self.whiten = nn.Conv2d(3, c_white, WHITEN_KERNEL, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)  # set from data, never trained
        nn.init.zeros_(self.whiten.bias)  # type: ignore[arg-type]  # bias=True above
        widths = (width, 4 * width, 4 * width)
        self.blocks = nn.Sequential(ConvGroup(c_white, widths[0]),
                                    ConvGroup(widths[0], widths[1]),
                                    ConvGroup(widths[1], widths[2]))
        self.act = nn.GELU()
        self.pool = nn.AdaptiveMaxPool2d(1)  # the 3×3 map at 32 px: airbench's max-pool 3
        self.fc = nn.Linear(widths[2], num_classes, bias=False)

    def forward(self, x):
        x = self.blocks(self.act(self.whiten(x)))
        return self.fc(torch.flatten(self.pool(x), 1)) * LOGIT_SCALE

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from normalised images N×3×H×W (a few thousand are
        plenty). With patches p (all 2×2×3 patches, flattened) and their second-moment
        matrix C = E[p pᵀ] = V diag(λ) Vᵀ, filter k is V[:, k] / sqrt(λ_k + eps), largest
        eigenvalue first, then the same filters negated: on the training patches the 12
        positive responses are uncorrelated with variance λ/(λ + eps) ≈ 1."""
        k = WHITEN_KERNEL
        x = images.float()
        patches = x.unfold(2, k, 1).unfold(3, k, 1)              # N×C×H'×W'×k×k
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, x.shape[1] * k * k)
        cov = patches.double().T @ patches.double() / len(patches)
        eigval, eigvec = torch.linalg.eigh(cov)                  # ascending
        eigval, eigvec = eigval.flip(0), eigvec.flip(1)
        filters = (eigvec / torch.sqrt(eigval + eps)).T          # one filter per row
        filters = filters.reshape(-1, x.shape[1], k, k).to(self.whiten.weight.dtype)
        self.whiten.weight.copy_(torch.cat([filters, -filters]))


@register_model("cifar_fastnet", cam_layer="blocks.2",
                description="airbench-style VGG with a patch-whitening first layer; "
                            "trained by the `fast` recipe")
def cifar_fastnet(num_classes: int = 10, width: int = 64):
    return FastNet(num_classes, width)
