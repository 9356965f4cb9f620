"""Input checks shared by the estimators: one error class, logits/probabilities in, float64
tensors out."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import FailmodesError


class EstimateError(ValueError, FailmodesError):
    """Inputs unusable for label-free estimation; one line naming what and why."""


def as_tensor(x, what: str, dtype=torch.float64) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise EstimateError(f"{what}: expected a tensor or array, got {type(x).__name__}")
    return x.detach().to(dtype)


def check_outputs(x, what: str, n_classes: int | None = None) -> torch.Tensor:
    """N×C finite float64 tensor (logits or probabilities), N ≥ 1, C ≥ 2."""
    t = as_tensor(x, what)
    if t.ndim != 2:
        raise EstimateError(f"{what}: expected an N×C matrix, got shape {tuple(t.shape)}")
    if t.shape[1] < 2:
        raise EstimateError(f"{what}: need at least 2 classes, got {t.shape[1]}")
    if n_classes is not None and t.shape[1] != n_classes:
        raise EstimateError(f"{what}: {t.shape[1]} classes where the reference has {n_classes}")
    if t.shape[0] == 0:
        raise EstimateError(f"{what}: no images")
    if not bool(torch.isfinite(t).all()):
        raise EstimateError(f"{what}: contains NaN or inf")
    return t


def check_labels(y, n: int, n_classes: int, what: str) -> torch.Tensor:
    t = as_tensor(y, what, torch.int64)
    if t.shape != (n,):
        raise EstimateError(f"{what}: {n} rows of outputs but labels of shape {tuple(t.shape)}")
    if n and (int(t.min()) < 0 or int(t.max()) >= n_classes):
        raise EstimateError(f"{what}: labels must lie in [0, {n_classes}), got "
                            f"[{int(t.min())}, {int(t.max())}]")
    return t


def to_logits(x: torch.Tensor, probabilities: bool) -> torch.Tensor:
    """Logits as given, or log-probabilities (softmax(log p / T) is p^(1/T) renormalised, so
    temperature scaling means the same on either)."""
    if not probabilities:
        return x
    if bool((x < 0).any()) or bool(((x.sum(1) - 1).abs() > 1e-3).any()):
        raise EstimateError("probabilities: rows must be non-negative and sum to 1 (pass "
                            "logits with probabilities=False)")
    return x.clamp_min(1e-30).log()


def check_level(level: float) -> None:
    if not (isinstance(level, float | int) and 0 < float(level) < 1):
        raise EstimateError(f"interval level must lie in (0, 1), got {level!r}")


def check_count(n, what: str, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or int(n) < minimum:
        raise EstimateError(f"{what} must be an integer >= {minimum}, got {n!r}")
    return int(n)
