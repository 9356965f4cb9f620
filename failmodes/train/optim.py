"""The optimiser and learning-rate schedule of a :class:`~failmodes.train.TrainConfig`.

SGD (optionally Nesterov) with two parameter groups, or (``optimizer: muon``) Muon for
the convolution filters and SGD for the rest (:func:`muon_groups`). BatchNorm parameters
may take a larger learning rate (``bias_lr_scale``) at the same weight-decay strength.
Schedules are stepped every iteration: ``cosine`` (to 0 over all steps), ``multistep``
(× ``gamma`` at each milestone epoch) and ``triangle`` (linear from ``lr_start`` to 1 over
the first ``warmup`` of the steps, then linear to ``lr_end``).

Decoupled hyper-parameters (``decoupled: true``, the parametrisation airbench and Myrtle's
"How to train your ResNet" use): with momentum m, steady gradients g move heavy-ball and
Nesterov SGD by lr_torch·g/(1 − m) per step, and weight decay shrinks each weight by
lr_torch·wd_torch/(1 − m). The recipe's ``lr`` and ``weight_decay`` are taken per 1024
examples with that gain divided out:

    lr_torch = lr · (batch_size / 1024) · (1 − m)      (loss: batch mean)
    wd_torch = weight_decay / lr

so a step of 1024 examples moves the weights by lr·(summed gradient)/1024 and decays them
by the fraction ``weight_decay`` at the peak lr, whatever the batch size and momentum, and
changing lr leaves the decay alone.

>>> from failmodes.train import load_recipe
>>> cfg = load_recipe("fast-sgd")
>>> round(torch_hyper(cfg)[0], 4), round(torch_hyper(cfg)[1], 4)  # lr, wd as torch sees them
(1.5, 0.0013)
"""
from __future__ import annotations

import torch
from torch import nn

from .muon import MuonSGD


def torch_hyper(cfg) -> tuple[float, float]:
    """(lr, weight_decay) in torch's SGD convention for the config's base group."""
    if not cfg.decoupled:
        return cfg.lr, cfg.weight_decay
    lr = cfg.lr * cfg.batch_size / 1024 * (1 - cfg.momentum)
    return lr, cfg.weight_decay / cfg.lr


def param_groups(model: nn.Module, cfg) -> list[dict]:
    """Trainable parameters in two groups: BatchNorm ones (lr × ``bias_lr_scale``, weight
    decay ÷ the same, so the decay per step is unchanged) and the rest. Parameters that
    do not require gradients at build time (frozen by the model) are left out; ones a
    recipe freezes later (a whitening bias) stay in and are skipped once gradless."""
    lr, wd = torch_hyper(cfg)
    norm_ids = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase)
                for p in m.parameters(recurse=False)}
    trainable = [p for p in model.parameters() if p.requires_grad]
    norm = [p for p in trainable if id(p) in norm_ids]
    rest = [p for p in trainable if id(p) not in norm_ids]
    s = cfg.bias_lr_scale
    groups = [{"params": rest, "lr": lr, "weight_decay": wd}]
    if norm:
        groups.append({"params": norm, "lr": lr * s, "weight_decay": wd / s})
    return groups


def muon_groups(model: nn.Module, cfg) -> list[dict]:
    """``optimizer: muon``: the other weights (the head) at (lr, weight_decay), every 1-D
    parameter (BatchNorm shifts, biases, a whitening bias) at lr × ``bias_lr_scale`` with
    the same decay per step, and the 4-D convolution filters by Muon at ``muon_lr`` with
    ``muon_momentum`` and no decay (airbench94_muon's grouping).

    With ``head_features`` set, lr and weight_decay are the values for a head reading that
    many features; a head of c features (a linear layer behind a fixed logit scale) takes
    lr × (head_features / c)² and weight_decay divided by the same, the step that keeps its
    logits moving as fast whatever the width, at the same decay per step."""
    lr, wd = torch_hyper(cfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    s = cfg.bias_lr_scale
    heads: dict[int | None, list] = {}   # by input features (linear layers only)
    for p in trainable:
        if p.dim() not in (1, 4):
            heads.setdefault(p.shape[1] if p.dim() == 2 else None, []).append(p)
    groups = []
    for features, params in heads.items():
        gain = (cfg.head_features / features) ** 2 if cfg.head_features and features else 1.0
        groups.append({"params": params, "lr": lr * gain, "weight_decay": wd / gain})
    groups += [{"params": [p for p in trainable if p.dim() == 1],
                "lr": lr * s, "weight_decay": wd / s},
               {"params": [p for p in trainable if p.dim() == 4], "muon": True,
                "lr": cfg.muon_lr, "momentum": cfg.muon_momentum, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, cfg, steps: int):
    """(optimizer, scheduler) for ``steps`` iterations per epoch."""
    optimizer: torch.optim.Optimizer
    if cfg.optimizer == "muon":
        optimizer = MuonSGD(muon_groups(model, cfg), lr=torch_hyper(cfg)[0],
                            momentum=cfg.momentum, nesterov=cfg.nesterov)
    else:
        optimizer = torch.optim.SGD(param_groups(model, cfg), momentum=cfg.momentum,
                                    nesterov=cfg.nesterov)
    return optimizer, build_scheduler(optimizer, cfg, steps)


def build_scheduler(optimizer, cfg, steps: int):
    total = cfg.epochs * steps
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if cfg.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=[m * steps for m in cfg.milestones], gamma=cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: triangle(step, total, cfg.warmup, cfg.lr_start, cfg.lr_end))


def triangle(step: int, total: int, warmup: float, start: float, end: float) -> float:
    """lr factor at ``step`` of ``total``: ``start`` -> 1 (at ``warmup``·total) -> ``end``.

    >>> [round(triangle(s, 10, 0.2, 0.2, 0.0), 2) for s in (0, 1, 2, 6, 10)]
    [0.2, 0.6, 1.0, 0.5, 0.0]
    """
    rise = int(total * warmup)
    if step < rise:
        return start + (1 - start) * step / rise
    return 1 + (end - 1) * min(1.0, (step - rise) / max(1, total - rise))
