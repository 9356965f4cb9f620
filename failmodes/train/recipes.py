"""Training configuration and the named recipes (``failmodes/recipes/*.yaml``).

A recipe is a YAML file of :class:`TrainConfig` keys; users copy one and edit it. Loading
goes YAML -> dataclass (unknown keys and wrong types fail naming the key and the file)
-> CLI overrides (:func:`failmodes.config.override`).

>>> cfg = load_recipe("baseline-cosine")
>>> cfg.lr, cfg.epochs, cfg.schedule, cfg.augment
(0.1, 35, 'cosine', 'standard')
>>> "cutout" in list_recipes()
True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import ConfigError, load_yaml, to_dict

RECIPE_DIR = Path(__file__).resolve().parent.parent / "recipes"
SCHEDULES = ("cosine", "multistep", "triangle")
AUGMENTS = ("none", "standard", "cutout", "augmix")
FLIPS = ("random", "alternating")
OPTIMIZERS = ("sgd", "muon")
PAD_MODES = ("zeros", "reflect")


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved with every checkpoint.

    The model trains on the ``train-train`` part of the training split: a fixed
    ``val_fraction`` (split seed 42, the data layer's ``train_val_split``) stays held out
    as ``train-val`` so temperature scaling can be fitted on data the model never saw.
    The test split is evaluated after every epoch and never used for any decision.
    """

    recipe: str = "custom"
    # --- model and data
    model: str = "cifar_resnet18"
    width: int | None = None            # None: the model's own default width
    data: str = "cifar10"               # a load_dataset spec: synthetic, cifar10, PATH, ...
    image_size: int | None = None       # resize an image folder to N×N on load
    subset: int | None = None           # class-stratified subset of train-train (None: all)
    val_fraction: float = 0.1           # held out of the training split (0: train on all)
    test_subset: int | None = None      # per-epoch test evaluation on a subset (final: all)
    # --- optimisation
    epochs: int = 35
    batch_size: int = 128               # global batch: split across DDP processes
    lr: float = 0.1                     # for batch_size 128; not rescaled automatically
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    # optimizer sgd: every parameter by (Nesterov) SGD. muon: convolution filters by Muon
    # (train/muon.py; muon_lr, muon_momentum, no weight decay), the rest by SGD as above.
    optimizer: str = "sgd"
    muon_lr: float = 0.24
    muon_momentum: float = 0.6
    head_features: int | None = None    # muon: lr/weight_decay are for a head of this many inputs
    # decoupled: lr is the step per 1024 examples with momentum's gain 1/(1 - momentum)
    # divided out, weight_decay the fraction of each weight decayed per 1024 examples at
    # the peak lr: each can change without retuning the others (see train/optim.py).
    decoupled: bool = False
    bias_lr_scale: float = 1.0          # lr factor for BatchNorm shifts (their decay unchanged)
    schedule: str = "cosine"            # cosine | multistep | triangle, stepped every iteration
    milestones: list[int] = field(default_factory=lambda: [25, 40])  # epochs (multistep)
    gamma: float = 0.1                  # lr factor at each milestone
    warmup: float = 0.23                # triangle: fraction of all steps spent rising
    lr_start: float = 0.2               # triangle: lr factor at step 0 ...
    lr_end: float = 0.07                # ... and at the last step (peak: 1)
    label_smoothing: float = 0.0
    lookahead: bool = False             # pull the weights toward their EMA every few steps
    lookahead_every: int = 5            # steps between pulls
    lookahead_decay: float = 0.774      # EMA decay per pull at the end (0.95 ** 5), ramped as t³
    whiten_bias_epochs: int | None = None  # train a data-whitening layer's bias this long
    whiten_images: int = 5000           # training images that initialise a whitening layer
    # --- augmentation
    augment: str = "standard"           # none | standard (crop+flip) | cutout | augmix
    flip: str = "random"                # random | alternating (each image flips every other epoch)
    crop_padding: int = 4               # px of padding for the random crop at 32 px
    pad_mode: str = "zeros"             # zeros | reflect: what the crop sees past the border
    cutout_size: int = 16               # hole side in px at 32 px; scaled with image size
    augmix_width: int = 3               # chains mixed per image
    augmix_depth: int = -1              # ops per chain; -1: uniform in 1..3
    augmix_severity: int = 3            # op magnitude, 1..10 scale of the paper
    augmix_alpha: float = 1.0           # Dirichlet (chain weights) and Beta (mix) parameter
    jsd: bool = False                   # Jensen-Shannon consistency loss (AugMix only)
    jsd_weight: float = 12.0            # lambda of the paper
    # --- reproducibility and runtime
    seed: int = 42
    device: str = "auto"                # auto | cpu | cuda | cuda:N
    channels_last: bool = True          # NHWC memory: faster on CUDA and oneDNN CPUs
    bf16: bool = True                   # bf16 autocast, CUDA only
    # bf16 autocast on the CPU as well. Off by default: fp32 is what every measured CPU
    # result in this project used. On an EPYC with AVX512_BF16 a fast-recipe training step
    # ran 1.84x and a ResNet-18 w16 one 1.65x faster (bench/bf16_cpu.py); a CPU without
    # native bf16 (AVX2 only) emulates it, slower than fp32. README "bf16 on the CPU".
    cpu_bf16: bool = False
    compile: bool = False               # torch.compile the network
    # deterministic: torch.use_deterministic_algorithms(True), cuDNN deterministic and no
    # cuDNN autotuning: a CUDA run repeats bit for bit, somewhat slower. False (default):
    # cuDNN benchmark mode picks the fastest kernels on CUDA. The CPU computes the same
    # either way.
    deterministic: bool = False
    threads: int | None = None          # torch CPU threads (None: leave as is)
    eval_batch_size: int = 500

    def __post_init__(self):
        _check(self)

    def scaled_cutout(self, image_size: int) -> int:
        """Cutout hole side for ``image_size`` px images (16 px at 32 px)."""
        return max(1, round(self.cutout_size * image_size / 32))

    def scaled_padding(self, image_size: int) -> int:
        """Random-crop padding for ``image_size`` px images (4 px at 32 px)."""
        return max(0, round(self.crop_padding * image_size / 32))


# Fields that do not change what a run computes: a resumed run may change them.
RUNTIME_FIELDS = ("device", "threads", "compile", "eval_batch_size", "deterministic")


def changed_fields(saved: dict, cfg: TrainConfig) -> list[str]:
    """The fields (runtime ones aside) in which ``cfg`` differs from a run's saved config.
    A field the saved config lacks was added to failmodes after that run: it counts as its
    default, which is what the run computed with, so an upgrade does not block a resume.

    >>> changed_fields({"epochs": 3}, TrainConfig(epochs=3, optimizer="sgd"))
    []
    >>> changed_fields({"epochs": 3}, TrainConfig(epochs=4, optimizer="muon"))
    ['epochs', 'optimizer']
    """
    defaults = to_dict(TrainConfig())
    now = to_dict(cfg)
    return sorted(k for k in now
                  if k not in RUNTIME_FIELDS and saved.get(k, defaults[k]) != now[k])


def _check(c: TrainConfig) -> None:
    def bad(key, value, allowed):
        raise ConfigError(f"train config: {key}={value!r} is not valid; use {allowed}")

    if c.schedule not in SCHEDULES:
        bad("schedule", c.schedule, " | ".join(SCHEDULES))
    if c.optimizer not in OPTIMIZERS:
        bad("optimizer", c.optimizer, " | ".join(OPTIMIZERS))
    if c.muon_lr <= 0:
        bad("muon_lr", c.muon_lr, "a positive number")
    if not 0 <= c.muon_momentum < 1:
        bad("muon_momentum", c.muon_momentum, "a number in [0, 1)")
    if c.augment not in AUGMENTS:
        bad("augment", c.augment, " | ".join(AUGMENTS))
    if c.device != "auto":
        try:
            torch.device(c.device)
        except RuntimeError:
            bad("device", c.device, "auto | cpu | cuda | cuda:N")
    if c.flip not in FLIPS:
        bad("flip", c.flip, " | ".join(FLIPS))
    if c.pad_mode not in PAD_MODES:
        bad("pad_mode", c.pad_mode, " | ".join(PAD_MODES))
    for key in ("epochs", "batch_size", "eval_batch_size", "augmix_width", "augmix_severity",
                "lookahead_every", "whiten_images"):
        if getattr(c, key) < 1:
            bad(key, getattr(c, key), "a positive integer")
    for key in ("subset", "test_subset", "threads", "width", "image_size", "head_features"):
        v = getattr(c, key)
        if v is not None and v < 1:
            bad(key, v, "a positive integer or null")
    if not 0 <= c.val_fraction < 1:
        bad("val_fraction", c.val_fraction, "a fraction in [0, 1)")
    if c.lr <= 0 or c.bias_lr_scale <= 0:
        bad("lr" if c.lr <= 0 else "bias_lr_scale", min(c.lr, c.bias_lr_scale),
            "a positive number")
    if not 0 <= c.momentum < 1:
        bad("momentum", c.momentum, "a number in [0, 1)")
    for key in ("label_smoothing", "lookahead_decay"):
        if not 0 <= getattr(c, key) < 1:
            bad(key, getattr(c, key), "a number in [0, 1)")
    for key in ("lr_start", "lr_end", "warmup"):
        if not 0 <= getattr(c, key) <= 1:
            bad(key, getattr(c, key), "a number in [0, 1]")
    if c.whiten_bias_epochs is not None and c.whiten_bias_epochs < 0:
        bad("whiten_bias_epochs", c.whiten_bias_epochs, "an epoch count ≥ 0 or null")
    if c.augmix_depth == 0 or c.augmix_depth < -1:
        bad("augmix_depth", c.augmix_depth, "-1 (random 1..3) or a positive integer")
    if c.jsd and c.augment != "augmix":
        bad("jsd", c.jsd, "false unless augment is augmix")
    if any(m < 1 for m in c.milestones) or list(c.milestones) != sorted(c.milestones):
        bad("milestones", c.milestones, "increasing epoch numbers ≥ 1")


def list_recipes() -> list[str]:
    """Names of the built-in recipes, e.g. ``['augmix', 'baseline-cosine', ...]``."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def load_recipe(name_or_path: str | Path) -> TrainConfig:
    """A built-in recipe by name, or any YAML file of TrainConfig keys by path."""
    s = str(name_or_path)
    path = RECIPE_DIR / f"{s}.yaml" if s in list_recipes() else Path(s).expanduser()
    if not path.is_file():
        raise ConfigError(f"unknown recipe {s!r}; built-in: {', '.join(list_recipes())} "
                          "(or pass the path of a YAML file)")
    cfg = load_yaml(TrainConfig, path)
    if cfg.recipe == "custom":
        cfg.recipe = path.stem
    return cfg
