"""Batched training augmentation on the caller's device: random crop, flip, Cutout, AugMix.

Every function takes a whole batch N×C×H×W and an explicit ``torch.Generator`` on the
batch's device; per-sample randomness comes from per-sample offsets and masks combined
with ``torch.where``, so there is no per-image Python work and no host sync (the
airbench recipe). Same generator state + same input -> same output.

>>> g = torch.Generator().manual_seed(0)
>>> x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
>>> random_flip(random_crop(x, 4, g), g).shape
torch.Size([8, 3, 32, 32])
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# AugMix operations: the paper's CIFAR list (Hendrycks et al. 2020, ``augmentations``),
# chosen so none overlaps a CIFAR-10-C corruption. contrast, color, brightness and
# sharpness are deliberately absent: they are (or resemble) test corruptions.
AUGMIX_OPS = ("autocontrast", "equalize", "posterize", "rotate", "solarize",
              "shear_x", "shear_y", "translate_x", "translate_y")
_GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")


def _uniform(n: int, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Per-sample random crop of the zero-padded batch back to H×W (torchvision's
    ``RandomCrop(H, padding)``). x: N×C×H×W, any dtype; offsets uniform in 0..2·padding."""
    if padding <= 0:
        return x
    n, c, h, w = x.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    span = 2 * padding + 1
    oy = torch.randint(0, span, (n,), generator=generator, device=x.device)
    ox = torch.randint(0, span, (n,), generator=generator, device=x.device)
    rows = oy[:, None] + torch.arange(h, device=x.device)  # N×H
    cols = ox[:, None] + torch.arange(w, device=x.device)  # N×W
    xp = xp.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * padding))
    return xp.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def random_flip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``. x: N×C×H×W, any dtype."""
    flip = _uniform(len(x), generator, x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator,
           fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """One ``size``×``size`` hole per image (DeVries & Taylor 2017): centre uniform over
    the image, hole clipped at the border, filled with ``fill`` (a scalar or a per-channel
    tensor of C values; the dataset mean reproduces the paper, which cut after normalising).
    x: N×C×H×W. Returns a new tensor."""
    n, c, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=generator, device=x.device)
    cx = torch.randint(0, w, (n,), generator=generator, device=x.device)
    y0, x0 = cy - size // 2, cx - size // 2  # rows y0..y0+size-1, clipped by the mask
    yy = torch.arange(h, device=x.device)[None, :]
    xx = torch.arange(w, device=x.device)[None, :]
    in_y = (yy >= y0[:, None]) & (yy < y0[:, None] + size)  # N×H
    in_x = (xx >= x0[:, None]) & (xx < x0[:, None] + size)  # N×W
    hole = (in_y[:, :, None] & in_x[:, None, :])[:, None]  # N×1×H×W
    fill_t = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    if fill_t.ndim == 1:
        fill_t = fill_t.view(1, -1, 1, 1)
    return torch.where(hole, fill_t, x)


# ----------------------------------------------------------------------------- AugMix
def _level(n, severity, generator, device):
    # The paper's ``sample_level``: uniform in [0.1, severity) on its 0..10 scale.
    return 0.1 + _uniform(n, generator, device) * (severity - 0.1)


def _sign(n, generator, device):
    return torch.where(_uniform(n, generator, device) < 0.5, -1.0, 1.0)


def _quantise(x):
    # PIL works on uint8 images: every op's output lands back on the 8-bit grid.
    return x.mul(255.0).round_().div_(255.0)


def _affine_matrices(op, level, sign, h, w):
    """Per-sample 3×3 maps from output to input pixel coordinates (PIL's AFFINE
    convention, pixel centres at +0.5), the paper's magnitudes; identity where the
    sample's op is not geometric. op: N int64 index into AUGMIX_OPS; level, sign: N."""
    n, dev = len(op), level.device
    m = torch.eye(3, device=dev).repeat(n, 1, 1)
    shear = sign * level * 0.3 / 10                                  # up to 0.3 at level 10
    shift = sign * torch.floor(level * (w / 3) / 10)                 # px, up to w/3
    shift_y = sign * torch.floor(level * (h / 3) / 10)
    deg = sign * torch.floor(level * 30 / 10)                        # degrees, up to 30
    k = {name: op == AUGMIX_OPS.index(name) for name in _GEOMETRIC}
    m[:, 0, 1] = torch.where(k["shear_x"], shear, m[:, 0, 1])
    m[:, 1, 0] = torch.where(k["shear_y"], shear, m[:, 1, 0])
    m[:, 0, 2] = torch.where(k["translate_x"], shift, m[:, 0, 2])
    m[:, 1, 2] = torch.where(k["translate_y"], shift_y, m[:, 1, 2])
    # PIL rotate(deg): counter-clockwise about the centre; input = R(-deg) · output.
    a = -torch.deg2rad(deg)
    cos, sin = torch.cos(a), torch.sin(a)
    cx, cy = w / 2, h / 2
    rot = torch.stack([
        torch.stack([cos, sin, cx - cos * cx - sin * cy], 1),
        torch.stack([-sin, cos, cy + sin * cx - cos * cy], 1),
        torch.tensor([0.0, 0.0, 1.0], device=dev).expand(n, 3)], 1)
    return torch.where(k["rotate"][:, None, None], rot, m)


def _apply_affine(x, m):
    """Warp x (N×C×H×W float) by pixel-space maps m (N×3×3), bilinear, black outside."""
    n, _, h, w = x.shape
    # theta in affine_grid's normalised coordinates (align_corners=False): P⁻¹·M·P.
    p = torch.tensor([[w / 2, 0, w / 2], [0, h / 2, h / 2], [0, 0, 1]],
                     dtype=x.dtype, device=x.device)
    theta = (torch.linalg.inv(p) @ m.to(x.dtype) @ p)[:, :2]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _augmix_step(x, op, level, sign):
    """One op per sample (op: N indices into AUGMIX_OPS) on x in [0, 1] on the 8-bit grid.

    Every op runs on the whole batch and ``torch.where`` keeps each sample's own: ~6
    cheap passes, no host sync and no data-dependent shapes."""
    from torchvision.transforms.v2 import functional as TF
    n, _, h, w = x.shape
    sel = lambda name: (op == AUGMIX_OPS.index(name))[:, None, None, None]  # noqa: E731
    u8 = x.mul(255.0).round_().to(torch.uint8)

    out = _quantise(_apply_affine(x, _affine_matrices(op, level, sign, h, w)))
    geometric = sum(sel(name) for name in _GEOMETRIC).bool()
    out = torch.where(geometric, out, x)
    out = torch.where(sel("autocontrast"), TF.autocontrast(u8).float() / 255.0, out)
    out = torch.where(sel("equalize"), TF.equalize(u8).float() / 255.0, out)
    # posterize keeps 4 - int(level·4/10) bits; solarize inverts pixels ≥ 256 - int(level·256/10).
    bits = (4 - torch.floor(level * 4 / 10)).to(torch.int32)
    keep = ((255 << (8 - bits)) & 255).to(torch.uint8)[:, None, None, None]
    out = torch.where(sel("posterize"), (u8 & keep).float() / 255.0, out)
    thr = (256 - torch.floor(level * 256 / 10))[:, None, None, None]
    sol = torch.where(u8.float() >= thr, 255 - u8, u8)
    return torch.where(sel("solarize"), sol.float() / 255.0, out)


def sample_gamma(alpha: float, shape: tuple, generator: torch.Generator,
                 device=None) -> torch.Tensor:
    """Gamma(alpha, 1) samples from an explicit generator (``torch.distributions`` only
    draws from the global RNG). Marsaglia–Tsang: each candidate is accepted with
    probability > 0.95, so 16 candidates leave a miss at < 1e-20 (then the first is used)."""
    a = alpha + 1.0 if alpha < 1 else alpha
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    z = torch.randn(*shape, 16, generator=generator, device=device)
    u = torch.rand(*shape, 16, generator=generator, device=device)
    v = (1 + c * z) ** 3
    ok = (v > 0) & (torch.log(u) < 0.5 * z * z + d - d * v + d * torch.log(v.clamp_min(1e-30)))
    first = ok.to(torch.uint8).argmax(-1, keepdim=True)
    g = d * v.gather(-1, first).squeeze(-1)
    if alpha < 1:  # Gamma(a) = Gamma(a + 1) · U^(1/a)
        g = g * torch.rand(*shape, generator=generator, device=device) ** (1.0 / alpha)
    return g


def augmix(x: torch.Tensor, generator: torch.Generator, *, width: int = 3, depth: int = -1,
           severity: int = 3, alpha: float = 1.0) -> torch.Tensor:
    """AugMix (Hendrycks et al. 2020) of a batch: ``width`` chains of ``depth`` ops
    (-1: uniform in 1..3 per chain and sample) from :data:`AUGMIX_OPS` at ``severity``,
    mixed with Dirichlet(alpha) weights, then blended with the original by m ~ Beta(alpha,
    alpha). x: float N×C×H×W in [0, 1]; returns the same shape in [0, 1].

    >>> g = torch.Generator().manual_seed(0)
    >>> y = augmix(torch.rand(4, 3, 32, 32), g)
    >>> bool(y.min() >= 0 and y.max() <= 1)
    True
    """
    n, dev = len(x), x.device
    src = _quantise(x.clamp(0, 1))
    gam = sample_gamma(alpha, (n, width), generator, dev)
    ws = gam / gam.sum(1, keepdim=True)  # Dirichlet(alpha, ..., alpha)
    g1, g2 = sample_gamma(alpha, (2, n), generator, dev)
    m = (g1 / (g1 + g2))[:, None, None, None]  # Beta(alpha, alpha)
    max_depth = depth if depth > 0 else 3
    mix = torch.zeros_like(x)
    for i in range(width):
        steps = (torch.full((n,), depth, device=dev) if depth > 0
                 else torch.randint(1, 4, (n,), generator=generator, device=dev))
        chain = src
        for s in range(max_depth):
            op = torch.randint(0, len(AUGMIX_OPS), (n,), generator=generator, device=dev)
            level = _level(n, severity, generator, dev)
            sign = _sign(n, generator, dev)
            stepped = _augmix_step(chain, op, level, sign)
            chain = torch.where((steps > s)[:, None, None, None], stepped, chain)
        mix = mix + ws[:, i, None, None, None] * chain
    return ((1 - m) * x + m * mix).clamp_(0, 1)


def jsd_loss(logits_clean: torch.Tensor, logits_aug1: torch.Tensor,
             logits_aug2: torch.Tensor) -> torch.Tensor:
    """Jensen–Shannon divergence between the three predictive distributions (AugMix's
    consistency loss, batch mean; the paper's formula with the mixture clamped to 1e-7).
    Each input N×K logits; returns a scalar ≥ 0 (up to float rounding, ~1e-7)."""
    p = [F.softmax(t.float(), dim=1) for t in (logits_clean, logits_aug1, logits_aug2)]
    log_m = torch.clamp((p[0] + p[1] + p[2]) / 3.0, 1e-7, 1.0).log()
    return sum(F.kl_div(log_m, pi, reduction="batchmean") for pi in p) / 3.0


# ----------------------------------------------------------------------------- pipeline
@dataclass
class BatchAugment:
    """A recipe's augmentation as one callable: uint8 N×3×H×W batch -> list of float
    [0, 1] views (one view; three — clean, AugMix, AugMix — for the JSD loss).

    kind: none | standard (crop + flip) | cutout (standard + Cutout) | augmix
    (standard + AugMix, as the paper's CIFAR training applies crop and flip first)."""

    kind: str = "standard"
    padding: int = 4
    cutout_size: int = 16
    fill: tuple[float, ...] | float = 0.0
    augmix_width: int = 3
    augmix_depth: int = -1
    augmix_severity: int = 3
    augmix_alpha: float = 1.0
    jsd: bool = False

    @classmethod
    def from_config(cls, cfg, image_size: int, fill=0.0) -> BatchAugment:
        return cls(kind=cfg.augment, padding=cfg.scaled_padding(image_size),
                   cutout_size=cfg.scaled_cutout(image_size), fill=fill,
                   augmix_width=cfg.augmix_width, augmix_depth=cfg.augmix_depth,
                   augmix_severity=cfg.augmix_severity, augmix_alpha=cfg.augmix_alpha,
                   jsd=cfg.jsd)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        x = images
        if self.kind != "none":
            x = random_flip(random_crop(x, self.padding, generator), generator)
        x = x.float().div_(255.0) if not x.is_floating_point() else x
        if self.kind == "cutout":
            x = cutout(x, self.cutout_size, generator, self.fill)
        if self.kind != "augmix":
            return [x]
        mixed = lambda: augmix(x, generator, width=self.augmix_width,  # noqa: E731
                               depth=self.augmix_depth, severity=self.augmix_severity,
                               alpha=self.augmix_alpha)
        return [x, mixed(), mixed()] if self.jsd else [mixed()]
