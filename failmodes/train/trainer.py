"""The training loop: data resident on the device, batched augmentation, SGD, per-epoch
checkpoints that resume exactly, DDP under ``torchrun``.

>>> from failmodes.config import override
>>> from failmodes.train import load_recipe, train_model
>>> cfg = override(load_recipe("baseline-cosine"), model="small_cnn", data="synthetic",
...                epochs=1, subset=512)
>>> result = train_model(cfg, "runs/demo")            # doctest: +SKIP
>>> result.checkpoint, result.history[-1]["test_acc"]  # doctest: +SKIP
(PosixPath('runs/demo/model.pt'), 0.61)

Files written in ``out_dir``: ``config.json`` (resolved config + library versions),
``last.pt`` (every epoch, with optimizer/scheduler/RNG state: what ``resume`` reads),
``model.pt`` (the final model), ``history.csv`` / ``history.json`` (one row per epoch)
and ``training_curves.png`` (written by :mod:`failmodes.train.history`).

Randomness: the network's initialisation comes from ``seed``; epoch ``e``'s data order
from a CPU generator seeded with (seed, e) and its augmentation from a device generator
seeded with (seed, e, rank). Nothing depends on state carried across epochs except the
weights, the optimizer and the scheduler, which the checkpoint holds, so a resumed run
reproduces the uninterrupted one bit for bit on a CPU. The learning rate is stepped every
iteration (:mod:`failmodes.train.optim`). A model with a data-whitening first layer
(``net.init_whitening``) is initialised from ``whiten_images`` training images (a fixed
sample); with ``lookahead`` the weights are pulled toward their moving average
(:mod:`failmodes.train.lookahead`), whose state the checkpoint also holds.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..config import save_resolved, to_dict
from ..constants import SPLIT_SEED  # the train/validation split and subsets
from ..errors import FailmodesError
from ..models import Classifier, create_model, library_versions, load_checkpoint, save_checkpoint
from ..store import FINAL_CHECKPOINT, LAST_CHECKPOINT, TRAIN_CONFIG_NAME, TRAINING_CURVES_NAME, RunLock
from ._dist import _barrier, _on_cuda, _params_in_sync, _Runtime, _runtime, shard_indices
from .augment import BatchAugment, alternating_flips, jsd_loss
from .history import plot_history, write_history
from .lookahead import Lookahead
from .optim import build_optimizer
from .progress import Reporter
from .recipes import TrainConfig, changed_fields

LAST, FINAL = LAST_CHECKPOINT, FINAL_CHECKPOINT


class TrainError(ValueError, FailmodesError):
    """A run cannot start or resume; one line naming the file or key and what to do."""


@dataclass
class TrainResult:
    """What :func:`train_model` produced. ``history``: one dict per epoch (epoch, lr,
    train_loss, train_acc, test_loss, test_acc, test_n, time_s, images_per_s)."""

    checkpoint: Path
    out_dir: Path
    history: list[dict]
    model: Classifier = field(repr=False)
    main_process: bool = True  # False on DDP ranks other than 0 (they write nothing)

    @property
    def test_acc(self) -> float:
        return self.history[-1]["test_acc"] if self.history else float("nan")


def train_model(config: TrainConfig, out_dir: str | os.PathLike, *, resume: bool = False,
                stop_after: int | None = None, progress: bool | None = None) -> TrainResult:
    """Train ``config.model`` on ``config.data`` and write a run into ``out_dir``.

    resume: continue from ``out_dir/last.pt`` (the same config, bar device/threads/compile;
        starts from scratch when there is no checkpoint yet).
    stop_after: stop once this many epochs are done, as if killed (time-boxed sessions);
        the run resumes later with ``resume=True``.
    progress: a live progress bar (True), plain log lines (False); None picks the bar on
        a terminal. Under ``torchrun`` only rank 0 reports and writes files.
    """
    out = Path(out_dir)
    rt = _runtime(config)
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    cuda = [rt.device.index or 0] if rt.device.type == "cuda" else []
    lock = None
    try:
        # One writer per run folder: a second `train` (or `run`) on this --out is refused
        # before it writes anything. Only rank 0 writes under torchrun.
        lock = RunLock(out, "training") if rt.main else None
        # The run owns the global RNG (initialisation, dropout) and the cuDNN / determinism
        # flags without disturbing the caller's.
        with torch.random.fork_rng(devices=cuda), backend_settings(
                deterministic=config.deterministic, cuda=rt.device.type == "cuda"):
            return _train(config, out, rt, resume, stop_after, progress)
    finally:
        if lock is not None:
            lock.release()
        torch.set_num_threads(threads)
        if rt.owns_group:
            torch.distributed.destroy_process_group()


@contextlib.contextmanager
def backend_settings(*, deterministic: bool, cuda: bool):
    """The recipe's kernel choice while a run trains, the previous flags restored after.

    deterministic: deterministic algorithms everywhere (an op without one raises, naming
    itself), cuDNN deterministic, no autotuning; cuBLAS gets the fixed workspace it needs
    (``CUBLAS_WORKSPACE_CONFIG``, unless set). Otherwise on CUDA: cuDNN benchmark mode
    (autotuned convolutions: a fixed input shape per step, so the search pays off). On
    the CPU without ``deterministic`` nothing changes.
    """
    cudnn = torch.backends.cudnn
    saved = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        if deterministic:
            if cuda:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            cudnn.deterministic, cudnn.benchmark = True, False
        elif cuda:
            cudnn.benchmark = True
        yield
    finally:
        cudnn.benchmark, cudnn.deterministic = saved[0], saved[1]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def _train(cfg, out, rt, resume, stop_after, progress) -> TrainResult:
    payload = _prepare_out_dir(cfg, out, resume, rt)
    train, test = _load_data(cfg, rt)
    channels_last = cfg.channels_last
    x_train, y_train = _resident(train, rt.device, channels_last)
    x_test, y_test = _resident(test, rt.device, channels_last)
    model, optimizer, scheduler, steps = _build(cfg, train, rt)
    if payload is None:
        _init_from_data(model, x_train, cfg)
    lookahead = (Lookahead(model.net, every=cfg.lookahead_every, decay=cfg.lookahead_decay,
                           total_steps=cfg.epochs * steps) if cfg.lookahead else None)
    history, start = _restore(payload, model, optimizer, scheduler, lookahead, rt)
    eval_rows = _eval_rows(cfg, test)
    net = _wrap(model, cfg, rt)
    fill = tuple(float(v) for v in model.mean.flatten())  # Cutout holes: the data mean
    augment = BatchAugment.from_config(cfg, train.image_size[0], fill=fill)
    report = Reporter(cfg.epochs, steps, rt.world, progress, rt.main)
    data_info = _data_info(cfg, train, test)
    if rt.main:
        save_resolved(cfg, out / TRAIN_CONFIG_NAME, versions=library_versions())
        report.line(f"training {cfg.model} on {len(train)} images of {cfg.data} "
                    f"({data_info['train_split']}), testing on {len(test)}, "
                    f"{cfg.epochs} epochs × {steps} steps of {cfg.batch_size} on {rt.device}"
                    + (f" × {rt.world} processes" if rt.distributed else ""))

    end = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    for epoch in range(start, end):
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        _set_whiten_bias(model, cfg, epoch)
        tr = _train_epoch(cfg, net, optimizer, scheduler, augment, x_train, y_train,
                          epoch, steps, cfg.batch_size // rt.world, rt, report, lookahead)
        if lookahead is not None and epoch == cfg.epochs - 1:
            lookahead.finish()
        train_time = time.perf_counter() - t0
        rows = None if epoch == cfg.epochs - 1 else eval_rows  # the last epoch: all of test
        te = _evaluate(model, x_test, y_test, rows, cfg, rt)
        history.append({"epoch": epoch + 1, "lr": lr, **tr, **te,
                        "time_s": round(time.perf_counter() - t0, 3),
                        "images_per_s": round(steps * cfg.batch_size / train_time, 1)})
        report.epoch_done(history[-1])
        if rt.main:
            extra = {"epoch": epoch + 1, "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "rng": _rng_state(rt),
                     "data": data_info, "world_size": rt.world}
            if lookahead is not None:
                extra["lookahead"] = lookahead.state_dict()
            save_checkpoint(model, out / LAST, config=to_dict(cfg), history=history, extra=extra)
            write_history(history, out)
            plot_history(history, out / TRAINING_CURVES_NAME)
        _barrier(rt)

    done = len(history) >= cfg.epochs
    if done:
        extra = {"epoch": len(history), "data": data_info, "world_size": rt.world,
                 "params_in_sync": _params_in_sync(model, rt)}
        if rt.main:
            save_checkpoint(model, out / FINAL, config=to_dict(cfg), history=history, extra=extra)
            report.line(f"done: test accuracy {history[-1]['test_acc']:.4f} -> {out / FINAL}")
        _barrier(rt)
    # The returned model is the checkpoint's: default layout, so outputs match a reload exactly.
    model = model.to(memory_format=torch.contiguous_format).eval()
    return TrainResult(out / (FINAL if done else LAST), out, history, model, rt.main)


def _build(cfg: TrainConfig, train, rt: _Runtime):
    """(model, optimizer, scheduler, steps per epoch); initialisation from ``cfg.seed``."""
    if cfg.batch_size % rt.world:
        raise TrainError(f"batch_size {cfg.batch_size} does not split over {rt.world} "
                         "processes; use a multiple of the process count")
    local_bs = cfg.batch_size // rt.world
    steps = max(1, math.ceil(len(train) / rt.world) // local_bs)  # drop the last partial batch
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, width=cfg.width, class_names=train.classes,
                         mean=train.mean, std=train.std).to(rt.device)
    model.train()
    if cfg.whiten_bias_epochs is not None and not _has_whitening(model):
        raise TrainError(f"whiten_bias_epochs={cfg.whiten_bias_epochs}: {cfg.model} has no "
                         "whitening layer (net.whiten); set it to null")
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = build_optimizer(model.net, cfg, steps)
    return model, optimizer, scheduler, steps


def _has_whitening(model: Classifier) -> bool:
    return hasattr(model.net, "init_whitening") and hasattr(model.net, "whiten")


def _init_from_data(model: Classifier, x_train: torch.Tensor, cfg: TrainConfig) -> None:
    """A whitening first layer learns its filters from a fixed sample of training images
    (the same for every seed: the sample is the data's, the seed the run's)."""
    if not _has_whitening(model):
        return
    g = torch.Generator().manual_seed(SPLIT_SEED)
    rows = torch.randperm(len(x_train), generator=g)[:cfg.whiten_images].to(x_train.device)
    net: Any = model.net  # a module with a whitening layer (checked above)
    net.init_whitening(model.normalize(x_train[rows].float().div_(255.0)))


def _set_whiten_bias(model: Classifier, cfg: TrainConfig, epoch: int) -> None:
    if cfg.whiten_bias_epochs is not None:
        net: Any = model.net
        net.whiten.bias.requires_grad_(epoch < cfg.whiten_bias_epochs)


def _restore(payload, model, optimizer, scheduler, lookahead, rt) -> tuple[list[dict], int]:
    """Load a ``last.pt`` payload into the run; (history so far, first epoch to train)."""
    if payload is None:
        return [], 0
    extra = payload["extra"]
    model.net.load_state_dict(payload["state_dict"])
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    if lookahead is not None:
        lookahead.load_state_dict(extra["lookahead"])
    torch.set_rng_state(extra["rng"]["torch"])
    if _on_cuda(rt) and "cuda" in extra["rng"]:
        torch.cuda.set_rng_state(extra["rng"]["cuda"], rt.device)
    return list(payload["history"]), int(extra["epoch"])


def _rng_state(rt) -> dict:
    state = {"torch": torch.get_rng_state()}
    if _on_cuda(rt):
        state["cuda"] = torch.cuda.get_rng_state(rt.device)
    return state


def _wrap(model, cfg, rt):
    """The module the steps call: DDP under torchrun, compiled on request."""
    net = model
    if rt.distributed:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[rt.device.index] if _on_cuda(rt)
                                      else None)
    return torch.compile(net) if cfg.compile else net


# ----------------------------------------------------------------------------- set-up
def _prepare_out_dir(cfg: TrainConfig, out: Path, resume: bool, rt: _Runtime) -> dict | None:
    """The checkpoint to resume from (None: a fresh run); refuse to clobber a run."""
    last = out / LAST
    if not resume:
        if last.exists() or (out / FINAL).exists():
            raise TrainError(f"{out} already holds a run ({LAST}/{FINAL}); pass --resume to "
                             "continue it or choose another --out")
        return None
    if not last.exists():
        if rt.main:
            print(f"resume: no {last} yet; starting from scratch", file=sys.stderr, flush=True)
        return None
    _, payload = load_checkpoint(last)
    saved, now = payload["config"], to_dict(cfg)
    diff = changed_fields(saved, cfg)
    if diff:
        what = ", ".join(f"{k}={saved.get(k)!r} (now {now[k]!r})" for k in diff)
        raise TrainError(f"--resume: {last} was trained with {what}; rerun the original "
                         "command with --resume, or choose another --out")
    return payload


def _load_data(cfg: TrainConfig, rt: _Runtime):
    """(train, test): ``train-train`` (a fixed val_fraction held out), optionally subset."""
    from ..data import load_dataset, train_val_split
    datasets = None
    for turn in ((0,) if not rt.distributed else (0, 1)):
        # Rank 0 decodes (and fills the cache) first, so ranks never write it together.
        if (turn == 0) == rt.main:
            full = load_dataset(cfg.data, "train", image_size=cfg.image_size)
            test = load_dataset(cfg.data, "test", image_size=cfg.image_size)
            datasets = full, test
        _barrier(rt)
    assert datasets is not None  # every rank loaded in its turn
    full, test = datasets
    train = full
    if cfg.val_fraction > 0:
        train, _ = train_val_split(full, cfg.val_fraction, seed=SPLIT_SEED)
    train = train.subset(cfg.subset, seed=SPLIT_SEED)
    if train.image_size != test.image_size:
        raise TrainError(f"{cfg.data}: train images are {train.image_size} but test images "
                         f"{test.image_size}; pass image_size to resize both")
    return train, test


def _data_info(cfg, train, test) -> dict:
    return {"spec": cfg.data, "classes": list(train.classes),
            "train_split": "train-train" if cfg.val_fraction > 0 else "train",
            "val_split": "train-val" if cfg.val_fraction > 0 else None,
            "val_fraction": cfg.val_fraction, "split_seed": SPLIT_SEED,
            "n_train": len(train), "n_test": len(test), "image_size": list(train.image_size)}


def _resident(ds, device, channels_last: bool):
    """The whole split on the device once: uint8 N×3×H×W (NHWC memory when channels_last)."""
    x = torch.as_tensor(ds.images).to(device).permute(0, 3, 1, 2)
    return (x if channels_last else x.contiguous()), ds.labels.to(device)


def _eval_rows(cfg, test):
    if cfg.test_subset is None or cfg.test_subset >= len(test):
        return None
    return test.subset(cfg.test_subset, seed=SPLIT_SEED).indices


# ----------------------------------------------------------------------------- one epoch
def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of ``epoch``: a permutation of 0..n-1 from (seed, epoch) alone."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def _seed(*parts: int) -> int:
    s = 0
    for p in parts:
        s = (s * 1_000_003 + int(p)) % (2 ** 63 - 1)
    return s


def _first_flips(n: int, seed: int, device) -> torch.Tensor:
    """Which images an alternating flip mirrors in epoch 0: a random half, from the seed."""
    g = torch.Generator().manual_seed(_seed(seed, 11))
    return (torch.rand(n, generator=g) < 0.5).to(device)


def _autocast(cfg, rt):
    """bf16 autocast for the forward passes: on CUDA when ``bf16``, on the CPU only when
    ``cpu_bf16`` too; else a no-op context."""
    if cfg.bf16 and _on_cuda(rt):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if cfg.bf16 and cfg.cpu_bf16 and rt.device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _train_epoch(cfg, net, optimizer, scheduler, augment, x, y, epoch, steps, bs, rt, report,
                 lookahead=None):
    order = shard_indices(epoch_order(len(y), cfg.seed, epoch), rt.rank, rt.world).to(rt.device)
    gen = torch.Generator(device=rt.device).manual_seed(_seed(cfg.seed, epoch, rt.rank, 7))
    flips = (alternating_flips(_first_flips(len(y), cfg.seed, rt.device), epoch)
             if cfg.flip == "alternating" else None)
    smooth = cfg.label_smoothing
    amp = _autocast(cfg, rt)
    channels_last = cfg.channels_last
    loss_sum = torch.zeros((), device=rt.device)
    correct = torch.zeros((), device=rt.device, dtype=torch.int64)
    seen = 0
    report.epoch_start(epoch)
    for step in range(steps):
        idx = order[step * bs:(step + 1) * bs]
        yb = y[idx]
        views = augment(x[idx], gen, flips=None if flips is None else flips[idx])
        xb = torch.cat(views) if len(views) > 1 else views[0]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with amp:
            logits = net(xb)
        logits = logits.float()
        if len(views) == 3:  # AugMix + JSD: clean, aug1, aug2 through one forward
            logits, l1, l2 = logits.chunk(3)
            loss = (F.cross_entropy(logits, yb, label_smoothing=smooth)
                    + cfg.jsd_weight * jsd_loss(logits, l1, l2))
        else:
            loss = F.cross_entropy(logits, yb, label_smoothing=smooth)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if lookahead is not None:
            lookahead.step(epoch * steps + step + 1)
        loss_sum += loss.detach() * len(yb)
        correct += (logits.detach().argmax(1) == yb).sum()
        seen += len(yb)
        report.step(step + 1, seen, loss_sum, correct)
    stats = torch.stack([loss_sum.double(), correct.double(),
                         torch.tensor(float(seen), device=rt.device, dtype=torch.float64)])
    if rt.distributed:
        torch.distributed.all_reduce(stats)
    loss_total, n_correct, n = stats.tolist()
    return {"train_loss": round(loss_total / n, 6), "train_acc": round(n_correct / n, 6)}


@torch.no_grad()
def _evaluate(model, x, y, rows, cfg, rt) -> dict:
    """Test loss and accuracy of ``model`` (rank 0's weights and BN statistics), the rows
    sharded over processes. Leaves the model in training mode, as it found it."""
    if rt.distributed:  # DDP only syncs BN buffers at forward: evaluate rank 0's exactly
        for b in model.buffers():
            torch.distributed.broadcast(b, 0)
    rows = torch.arange(len(y), device=y.device) if rows is None else rows.to(y.device)
    mine = rows[rt.rank::rt.world]
    amp = _autocast(cfg, rt)
    model.eval()
    loss_sum = torch.zeros((), device=rt.device, dtype=torch.float64)
    correct = torch.zeros((), device=rt.device, dtype=torch.float64)
    try:
        for i in range(0, len(mine), cfg.eval_batch_size):
            idx = mine[i:i + cfg.eval_batch_size]
            xb = x[idx].float().div_(255.0)
            with amp:
                logits = model(xb).float()
            loss_sum += F.cross_entropy(logits, y[idx], reduction="sum").double()
            correct += (logits.argmax(1) == y[idx]).sum().double()
    finally:
        model.train()
    stats = torch.stack([loss_sum, correct])
    if rt.distributed:
        torch.distributed.all_reduce(stats)
    loss_total, n_correct = stats.tolist()
    return {"test_loss": round(loss_total / len(rows), 6),
            "test_acc": round(n_correct / len(rows), 6), "test_n": len(rows)}
