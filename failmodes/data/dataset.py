"""The Dataset record every loader returns, and the train/validation split."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .._device import to_device
from ..constants import SPLIT_SEED, SUBSET_SEED, VAL_FRACTION
from ..errors import FailmodesError


class DataError(ValueError, FailmodesError):
    """A data set could not be loaded; the message is one line naming the path and the fix."""


@dataclass
class Dataset:
    """Images decoded once into one uint8 tensor.

    images:  uint8 N×H×W×3 (may be a read-only memory map: index or convert, never write)
    labels:  int64 N
    classes: class names, ``labels`` index into it
    mean/std: per-channel statistics in [0, 1] pixel units (for a model's normaliser)
    indices: int64 N, each image's index in the full split (stressor randomness keys)
    full_size: images in the full split when only a subset was decoded (else None: len)
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    split: str
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    indices: torch.Tensor | None = None
    skipped: list[str] = field(default_factory=list)
    full_size: int | None = None

    def __post_init__(self):
        if self.indices is None:
            self.indices = torch.arange(len(self.labels), dtype=torch.int64)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.split}"

    def select(self, which: torch.Tensor) -> Dataset:
        """A view on the rows ``which`` (int64 positions), keeping their original indices."""
        which = torch.as_tensor(which, dtype=torch.int64)
        assert self.indices is not None  # set in __post_init__
        return Dataset(self.images[which], self.labels[which], list(self.classes), self.name,
                       self.split, self.mean, self.std, self.indices[which], list(self.skipped))

    def subset(self, n: int | None, seed: int = SUBSET_SEED) -> Dataset:
        """A class-stratified random subset of ``n`` images (all if n is None or ≥ len)."""
        if n is None or n >= len(self):
            return self
        return self.select(stratified_rows(self.labels, n, len(self.classes), seed))

    def float_batch(self, start: int, stop: int,
                    device: torch.device | str = "cpu") -> torch.Tensor:
        """Images ``start:stop`` as float32 N×3×H×W in [0, 1] on ``device`` (copied as
        uint8, through pinned memory when bound for CUDA)."""
        x = to_device(torch.as_tensor(self.images[start:stop]), device)
        return x.permute(0, 3, 1, 2).float().div_(255.0)


def stratified_rows(labels: torch.Tensor, n: int, n_classes: int,
                    seed: int = SUBSET_SEED) -> torch.Tensor:
    """Sorted positions of a class-stratified random subset of ``n`` of ``labels`` (all
    when n ≥ len): what ``Dataset.subset`` keeps, computable before decoding anything."""
    if n <= 0:
        raise DataError(f"subset size must be positive, got {n}")
    if n >= len(labels):
        return torch.arange(len(labels))
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    # Round-robin over classes in random order keeps the class balance of small subsets.
    by_class = [order[labels[order] == c] for c in range(n_classes)]
    picks: list[int] = []
    k = 0
    while len(picks) < n:
        for rows in by_class:
            if k < len(rows) and len(picks) < n:
                picks.append(int(rows[k]))
        k += 1
    return torch.tensor(sorted(picks))


def channel_stats(images: torch.Tensor, max_images: int = 10000) -> tuple[tuple, tuple]:
    """Per-channel mean and std in [0, 1] units of uint8 N×H×W×3 images (first ``max_images``).

    Summed in chunks, so 10 000 images at 224 px need ~60 MB, not a 12 GB float64 copy."""
    n = min(len(images), max_images)
    total = torch.zeros(3, dtype=torch.float64)
    sq = torch.zeros(3, dtype=torch.float64)
    chunk = max(1, (8 << 20) // max(1, images[0].numel())) if n else 1
    for s in range(0, n, chunk):
        x = torch.as_tensor(np.asarray(images[s:min(n, s + chunk)])).to(torch.float64) / 255.0
        total += x.sum(dim=(0, 1, 2))
        sq += (x * x).sum(dim=(0, 1, 2))
    count = n * (images.shape[1] * images.shape[2] if n else 1)
    mean = total / max(count, 1)
    var = (sq - count * mean ** 2) / max(count - 1, 1)  # unbiased, as torch.std
    std = var.clamp_min(0).sqrt()
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def train_val_split(ds: Dataset, val_fraction: float = VAL_FRACTION,
                    seed: int = SPLIT_SEED) -> tuple[Dataset, Dataset]:
    """Split ``ds`` into (train, validation) with a fixed seed; validation keeps its indices.

    The validation part is what temperature scaling is fitted on.
    """
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(ds), generator=g)
    n_val = max(1, int(round(len(ds) * val_fraction)))
    val_rows, train_rows = order[:n_val].sort().values, order[n_val:].sort().values
    train, val = ds.select(train_rows), ds.select(val_rows)
    train.split, val.split = f"{ds.split}-train", f"{ds.split}-val"
    return train, val
