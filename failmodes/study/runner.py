"""Run a study: train what is missing, evaluate what is missing, run the analyses and the
probes, write the report. Every step is incremental, so re-running after a kill (or after
adding a model, a stressor or an analysis) does only the new work.

Layout of ``runs/<study>/``::

    report.html  results.json  tables/*.csv  figures/*.png
    results.sqlite             the store (one row per image per cell)
    study.resolved.json        the resolved study and library versions
    study_state.json           the commands that ran and each step's status and timing
    models/<name>/model.pt     trained checkpoints (+ history.json, training_curves.png)
    analysis/<name>.json       one per analysis (+ analysis/figures/)
    probes/<probe>/            single-image probe outputs

One module per step: ``check`` (everything named, before any work), ``training``,
``evaluation``, ``analyses`` (analyses and probes); ``state`` keeps ``study_state.json``.

>>> result = run_study(load_preset("demo"))      # doctest: +SKIP
>>> result.report                                 # doctest: +SKIP
PosixPath('runs/demo/report.html')
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import save_resolved
from ..store import RunFolder, RunLock
from ..values import in_memory_models
from .analyses import probe_key, run_analyses, run_probes
from .check import check_analyses, check_study
from .config import IN_MEMORY_ARCH, StudyConfig, StudyError
from .evaluation import eval_config, evaluate_all
from .state import StudyState, say
from .training import train_config, train_one

__all__ = ["StudyResult", "check_analyses", "check_study", "eval_config", "evaluate_all",
           "prepare_and_run", "probe_key", "run_analyses", "run_probes", "run_study",
           "study_versions", "train_config", "train_one"]


@dataclass
class StudyResult:
    """``failures``: one line per analysis, probe or cell that failed (the report shows them)."""

    out_dir: Path
    report: Path
    seconds: float
    failures: list[str] = field(default_factory=list)


def study_versions() -> dict:
    """Library versions and the machine, for the reproducibility appendix."""
    import platform
    from importlib import metadata

    import torch

    from ..models import library_versions
    v = dict(library_versions())
    for dist in ("jinja2", "matplotlib", "torchmetrics", "grad-cam", "scikit-image", "scipy",
                 "pillow", "efficientnet-lite-pytorch"):
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    v["platform"] = platform.platform()
    v["cpu_threads"] = torch.get_num_threads()
    v["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return v


def run_study(cfg: StudyConfig, *, command: str | None = None,
              models: Mapping[str, Any] | None = None,
              thumb_budget: int | None = None) -> StudyResult:
    """Run every missing step of ``cfg`` and write ``<out>/report.html`` (``thumb_budget``:
    bytes of explorer thumbnails it may embed, as ``report.render_report`` takes).

    ``models``: classifiers built in Python (``failmodes.models.wrap(net, ...)``) by name,
    evaluated and analysed beside the study's own models (Grad-CAM reaches them while
    they are alive in this process).

    Training or evaluation errors stop the study (nothing downstream could be right);
    an analysis or probe that fails is recorded, shown in the report, and listed in
    ``StudyResult.failures``, and the other steps still run.
    """
    import torch
    in_memory_models(models)  # a bare nn.Module: one line naming fm.models.wrap
    if models:
        from .config import ModelSpec, resolve_study
        cfg = resolve_study(dataclasses.replace(cfg, models=list(cfg.models) + [
            ModelSpec(name=n, arch=IN_MEMORY_ARCH, recipe=None) for n in models]))
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, command, dict(models or {}), thumb_budget)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: StudyConfig, command: str | None, prebuilt: dict,
         thumb_budget: int | None = None) -> StudyResult:
    t0 = time.perf_counter()
    check_study(cfg)  # a typo anywhere fails now, before any folder or training (hours)
    out = cfg.out_dir
    # One writer per run folder: a second `failmodes run` on this --out is refused before
    # it trains anything; the evaluations this study runs into its folder pass.
    with RunLock(out, "study run", nestable=True):
        return _run_locked(cfg, command, prebuilt, thumb_budget, out, t0)


def _run_locked(cfg: StudyConfig, command: str | None, prebuilt: dict,
                thumb_budget: int | None, out: Path, t0: float) -> StudyResult:
    out.mkdir(parents=True, exist_ok=True)
    state = StudyState(out)
    state.command(command or f"failmodes.study.run_study(<{cfg.name}>)")
    save_resolved(cfg, RunFolder(out).resolved, versions=study_versions())
    checkpoints = {m.name: train_one(cfg, m, out, state) for m in cfg.models
                   if m.name not in prebuilt}
    failures = evaluate_all(cfg, checkpoints, out, state, command, prebuilt)
    failures += run_analyses(cfg, out, state)
    failures += run_probes(cfg, out, state)
    say(cfg, "writing the report")
    from ..report import render_report
    # force: the study's own folder, whose report says which evaluations failed
    report = render_report(out, thumb_budget=thumb_budget, force=True)
    seconds = time.perf_counter() - t0
    say(cfg, f"done in {seconds:.0f} s: {report}")
    return StudyResult(out, report, seconds, failures)


def prepare_and_run(study: str | os.PathLike | None = None, preset: str | None = None, *,
                    command: str | None = None, out=None, data: str | None = None,
                    device: str | None = None, seed: int | None = None,
                    threads: int | None = None, thumb_budget: int | None = None) -> StudyResult:
    """Load a study file or a preset, apply the CLI overrides, and run it."""
    from .config import load_preset, load_study, resolve_study
    if (study is None) == (preset is None):
        raise StudyError("give exactly one of: a study file, a preset name")
    cfg = load_preset(preset) if preset is not None else load_study(Path(study or ""))
    cfg = resolve_study(cfg, where=f"preset {preset}" if preset else str(study),
                        out=str(out) if out is not None else None, data=data, device=device,
                        seed=seed, threads=threads)
    return run_study(cfg, command=command, thumb_budget=thumb_budget)
