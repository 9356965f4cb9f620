"""Build results stores from crafted logits with known accuracy curves and confusions
(for the analysis tests; no model is run)."""
from __future__ import annotations

import math

import numpy as np
import torch

from failmodes.store import CellKey, ResultsStore, per_image_rows

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]


def crafted_logits(labels: np.ndarray, correct: np.ndarray, wrong_pred: np.ndarray,
                   conf: np.ndarray, n_classes: int, rng: np.random.Generator) -> torch.Tensor:
    """Logits whose top-1 is the label where ``correct`` else ``wrong_pred``, with top-1
    probability ≈ ``conf`` (the other classes share the rest nearly evenly)."""
    n = len(labels)
    z = rng.normal(0.0, 0.05, (n, n_classes))
    top = np.where(correct, labels, wrong_pred)
    # softmax top-1 p against (C-1) near-zero logits: L = ln(p (C-1) / (1-p))
    big = np.log(conf * (n_classes - 1) / (1 - conf))
    z[np.arange(n), top] = big
    return torch.tensor(z, dtype=torch.float32)


def write_store(path, curves: dict[str, dict[float, float]], *, clean_acc: float = 0.9,
                n: int = 400, classes=CIFAR10, model: str = "m", dataset: str = "synthetic:test",
                seeds=(0,), confusions: dict[int, int] | None = None, conf_correct: float = 0.8,
                conf_wrong: float | dict = 0.6, rng_seed: int = 0) -> ResultsStore:
    """A store with a clean cell and one cell per (stressor, severity, seed).

    ``curves[stressor][severity] = accuracy``: exactly round(accuracy·n) images are right.
    Wrong images are predicted as ``confusions[label]`` (default label+1 mod C) with
    confidence ``conf_wrong`` (a float, or {cell stressor: float}).
    """
    store = ResultsStore(path)
    store.register_model(model, spec="synthetic", arch="none", weights_hash="h",
                         class_names=list(classes))
    c = len(classes)
    labels = np.arange(n) % c
    idx = np.arange(n)
    wrong = np.array([(confusions or {}).get(int(lab), (int(lab) + 1) % c) for lab in labels])
    cells = [("clean", 0.0, s, clean_acc) for s in seeds]
    cells += [(name, float(sev), s, acc) for name, pts in curves.items()
              for sev, acc in pts.items() for s in seeds]
    for k, (name, sev, seed, acc) in enumerate(cells):
        rng = np.random.default_rng(rng_seed * 100003 + k)
        correct = np.zeros(n, bool)
        correct[rng.permutation(n)[:int(round(acc * n))]] = True
        cw = conf_wrong.get(name, 0.6) if isinstance(conf_wrong, dict) else conf_wrong
        conf = np.where(correct, conf_correct, cw)
        logits = crafted_logits(labels, correct, wrong, conf, c, rng)
        store.write_cell(CellKey(model, dataset, name, sev, seed),
                         per_image_rows(logits, torch.as_tensor(labels), torch.as_tensor(idx)))
    return store


def curve(shape: str, severities, clean: float = 0.9) -> dict[float, float]:
    """Noise-free accuracy at ``severities`` for a named shape (clean accuracy at 0)."""
    out = {}
    for s in severities:
        if shape == "graceful":
            a = clean - 0.005 * s
        elif shape == "linear":
            a = clean - 0.10 * s
        elif shape == "threshold-collapse":
            a = clean if s < 3 else clean - 0.22 * (s - 3)
        elif shape == "delayed-onset":       # unaffected at the mildest level, then steady
            a = clean if s < 1 else clean - 0.10 * (s - 1)
        elif shape == "early-damage-plateau":
            a = clean - 0.40 + 0.40 * math.exp(-s / 0.6)
        else:
            raise ValueError(shape)
        out[float(s)] = a
    return out
