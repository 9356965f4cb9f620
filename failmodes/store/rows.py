"""The per-image row of a cell, computed from logits (the fields ``ROW_FIELDS`` name)."""
from __future__ import annotations

import numpy as np


def per_image_rows(logits, labels, indices) -> dict[str, np.ndarray]:
    """The per-image fields of the store from logits (torch N×C), labels and indices (N).

    Entropy in nats of the softmax; margin = top-1 minus top-2 probability.
    """
    import torch
    logits = logits.detach().float()
    probs = torch.softmax(logits, dim=1)
    k = min(5, probs.shape[1])
    top = probs.topk(k, dim=1)
    labels = torch.as_tensor(labels, device=probs.device)
    p_true = probs.gather(1, labels.view(-1, 1)).squeeze(1)
    ent = -(probs * torch.log(probs.clamp_min(1e-12))).sum(1)
    margin = top.values[:, 0] - (top.values[:, 1] if k > 1 else 0.0)
    cpu = lambda t: t.cpu().numpy()  # noqa: E731
    return {"idx": cpu(torch.as_tensor(indices)), "label": cpu(labels),
            "pred": cpu(top.indices[:, 0]), "conf": cpu(top.values[:, 0]),
            "p_true": cpu(p_true), "entropy": cpu(ent), "margin": cpu(margin),
            "top5": cpu(top.indices), "logits": cpu(logits)}
