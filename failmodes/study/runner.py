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

>>> result = run_study(load_preset("demo"))      # doctest: +SKIP
>>> result.report                                 # doctest: +SKIP
PosixPath('runs/demo/report.html')
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._atomic import write_text_atomic
from ..config import override, save_resolved, to_dict
from ..models.sources import ModelSource
from ..store import FINAL_CHECKPOINT, HISTORY_NAME, TRAIN_CONFIG_NAME, ResultsStore, RunFolder
from .config import IN_MEMORY_ARCH, ProbeSpec, StudyConfig, StudyError, sweep_values


@dataclass
class StudyResult:
    """``failures``: one line per analysis, probe or cell that failed (the report shows them)."""

    out_dir: Path
    report: Path
    seconds: float
    failures: list[str] = field(default_factory=list)


class _State:
    """``study_state.json``: the commands that built the run and every step's outcome."""

    def __init__(self, out: Path):
        self.path = RunFolder(out).state
        try:
            self.data = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self.data = {}
        self.data.setdefault("commands", [])
        self.data.setdefault("steps", {})

    def step(self, key: str) -> dict:
        return self.data["steps"].get(key, {})

    def set(self, key: str, **record) -> None:
        record["finished"] = _now()
        self.data["steps"][key] = record
        self.save()

    def command(self, command: str) -> None:
        self.data["commands"].append({"time": _now(), "command": command, "cwd": os.getcwd()})
        self.save()

    def save(self) -> None:
        write_text_atomic(self.path, json.dumps(self.data, indent=1, default=str))


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def _timing(t: float, c: float) -> dict:
    """Wall-clock and CPU seconds since ``t`` (perf_counter) and ``c`` (process_time)."""
    return {"seconds": round(time.perf_counter() - t, 1),
            "cpu_s": round(time.process_time() - c, 1)}


def _say(cfg: StudyConfig, msg: str) -> None:
    print(f"[{cfg.name}] {msg}", file=sys.stderr, flush=True)


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
    out.mkdir(parents=True, exist_ok=True)
    state = _State(out)
    state.command(command or f"failmodes.study.run_study(<{cfg.name}>)")
    save_resolved(cfg, RunFolder(out).resolved, versions=study_versions())
    checkpoints = {m.name: train_one(cfg, m, out, state) for m in cfg.models
                   if m.name not in prebuilt}
    failures = evaluate_all(cfg, checkpoints, out, state, command, prebuilt)
    failures += run_analyses(cfg, out, state)
    failures += run_probes(cfg, out, state)
    _say(cfg, "writing the report")
    from ..report import render_report
    report = render_report(out, thumb_budget=thumb_budget)
    seconds = time.perf_counter() - t0
    _say(cfg, f"done in {seconds:.0f} s: {report}")
    return StudyResult(out, report, seconds, failures)


# ----------------------------------------------------------------------------- checking
def check_study(cfg: StudyConfig) -> None:
    """Everything a study names, checked before any work: each model's recipe (file and
    keys), architecture, checkpoint or weights file; suites, stressors and sweep values;
    probe stressors; analyses and their options. Raises StudyError naming the key."""
    from ..errors import FailmodesError
    from ..models.sources import resolve_arch
    from ..stressors import get_stressor, suite
    from ..train import load_recipe

    def check(key: str, fn, *args):
        try:
            return fn(*args)
        except FailmodesError as e:
            raise StudyError(f"{key}: {e}") from None

    for i, m in enumerate(cfg.models):
        key = f"models[{i}] ({m.name})"
        if m.arch == IN_MEMORY_ARCH:  # handed to run_study(models=...) as an object
            continue
        for k in ("checkpoint", "weights"):
            if getattr(m, k) is not None and not Path(getattr(m, k)).expanduser().is_file():
                raise StudyError(f"{key}.{k}: {getattr(m, k)} not found")
        if m.checkpoint is not None or m.weights is not None:
            continue  # the file's own kind decides whether arch matters; evaluate checks it
        check(f"{key}.recipe", load_recipe, m.recipe)
        check(key, train_config, cfg, m)
        check(f"{key}.arch", resolve_arch, m.arch)
    for i, name in enumerate(cfg.suites):
        check(f"suites[{i}]", suite, name)
    for i, name in enumerate(cfg.stressors):
        check(f"stressors[{i}]", get_stressor, name)
    for name, values in cfg.sweeps.items():
        st = check(f"sweeps.{name}", get_stressor, name)
        for v in sweep_values(values, f"sweeps.{name}"):
            check(f"sweeps.{name}", st._check_severity, v)
    for name in [n for s in cfg.suites for n in suite(s)] + list(cfg.stressors):
        for s in cfg.severities:
            check("severities", get_stressor(name)._check_severity, s)
    from ..analysis.probe import _resolve_stressor
    for i, p in enumerate(cfg.probes):
        st = check(f"probes[{i}]", _resolve_stressor, p.stressor, p.space)
        for v in sweep_values(p.values, f"probes[{i}].values"):
            check(f"probes[{i}].values", st._check_severity, v)
    check_analyses(cfg)


# ----------------------------------------------------------------------------- training
def train_one(cfg: StudyConfig, spec, out: Path, state: _State) -> Path | dict:
    """The checkpoint of one model: given, already trained, or trained now (resuming a
    killed run from its last epoch)."""
    model_dir = RunFolder(out).models / spec.name
    key = f"train:{spec.name}"
    if spec.weights is not None:
        model_spec = _weights_spec(spec)
        if state.step(key).get("checkpoint") != model_spec["weights"]:
            state.set(key, status="ok", source="weights", checkpoint=model_spec["weights"],
                      seconds=0.0)
        return model_spec
    if spec.checkpoint is not None:
        ckpt = Path(spec.checkpoint).expanduser().resolve()
        if not ckpt.is_file():
            raise StudyError(f"models[{spec.name}].checkpoint {spec.checkpoint} not found")
        if state.step(key).get("checkpoint") != str(ckpt):
            _copy_history(ckpt, model_dir)
            state.set(key, status="ok", source="checkpoint", checkpoint=str(ckpt), seconds=0.0)
        return ckpt
    from ..train import train_model
    from ..train.recipes import RUNTIME_FIELDS
    tc = train_config(cfg, spec)
    final = model_dir / FINAL_CHECKPOINT
    if final.is_file():
        saved = (json.loads((model_dir / TRAIN_CONFIG_NAME).read_text()).get("config", {})
                 if (model_dir / TRAIN_CONFIG_NAME).is_file() else {})
        now = to_dict(tc)
        diff = [k for k in now if k not in RUNTIME_FIELDS and k in saved and saved[k] != now[k]]
        if diff:
            what = ", ".join(f"{k}={saved[k]!r} (now {now[k]!r})" for k in diff)
            raise StudyError(f"models[{spec.name}]: {final} was trained with {what}; give the "
                             f"model a new name, or delete {model_dir} to retrain it")
        if state.step(key).get("status") != "ok":
            state.set(key, status="ok", source=f"recipe {spec.recipe} (trained earlier)",
                      checkpoint=str(final.relative_to(out)), seconds=None)
        return final
    _say(cfg, f"training {spec.name}: {spec.arch} with {spec.recipe}, {tc.epochs} epochs"
         + (f" on {tc.subset} images" if tc.subset else ""))
    t, c = time.perf_counter(), time.process_time()
    result = train_model(tc, model_dir, resume=True)
    state.set(key, status="ok", source=f"recipe {spec.recipe}",
              checkpoint=str(Path(result.checkpoint).relative_to(out)),
              **_timing(t, c), detail=f"{tc.epochs} epochs")
    return Path(result.checkpoint)


def train_config(cfg: StudyConfig, spec):
    """The TrainConfig of one study model: its recipe with the model's and study's overrides."""
    from ..train import load_recipe
    return override(load_recipe(spec.recipe), model=spec.arch, width=spec.width,
                    epochs=spec.epochs, subset=spec.train_subset, batch_size=spec.batch_size,
                    lr=spec.lr, test_subset=spec.test_subset, data=cfg.data, seed=cfg.seed,
                    device=cfg.device, image_size=cfg.image_size)


def _weights_spec(spec) -> dict:
    """The evaluate spec of a study model given by its weights (no training)."""
    from ..models import absolute_model_spec
    from ..models.weights import file_kind
    path = Path(spec.weights).expanduser()
    if not path.is_file():
        raise StudyError(f"models[{spec.name}].weights {spec.weights} not found")
    out: dict[str, Any] = {"weights": str(path)}
    if file_kind(path) in ("torch", "safetensors"):  # a state dict: the network is arch
        out["arch"] = spec.arch
    args = dict(spec.arch_args)
    if spec.width is not None:
        args.setdefault("width", spec.width)
    if args:
        out["arch_args"] = args
    for k in (f.name for f in dataclasses.fields(ModelSource)):  # the rest of the source
        if k not in ("arch", "weights", "arch_args") and getattr(spec, k) is not None:
            out[k] = getattr(spec, k)
    return absolute_model_spec(out)


def _copy_history(ckpt: Path, model_dir: Path) -> None:
    # A checkpoint trained elsewhere carries its per-epoch history: keep it for the report.
    from ..models import load_checkpoint
    _, payload = load_checkpoint(ckpt)
    if payload.get("history"):
        write_text_atomic(model_dir / HISTORY_NAME, json.dumps(payload["history"], indent=1))


# ----------------------------------------------------------------------------- evaluation
def eval_config(cfg: StudyConfig, checkpoints: dict[str, Path], out: Path):
    """The one EvalConfig of the study: every model, the suites expanded, clean train-val
    cells for temperature scaling."""
    from ..evaluate import EvalConfig
    from ..stressors import suite
    names: list[str] = []
    for s in cfg.suites:
        names += [n for n in suite(s) if n not in names]
    names += [n for n in cfg.stressors if n not in names]
    sweeps = [f"{k}={v if isinstance(v, str) else ','.join(str(x) for x in v)}"
              for k, v in cfg.sweeps.items()]
    tta = {m.name: m.tta for m in cfg.models if m.tta is not None}
    models = {n: p if isinstance(p, dict) else
              ({"weights": str(p), "tta": tta[n]} if n in tta else str(p))
              for n, p in checkpoints.items()}
    return EvalConfig(models=models, data=cfg.data,
                      split=cfg.split, subset=cfg.subset, stressors=names,
                      severities=[float(s) for s in cfg.severities], sweeps=sweeps,
                      seed=cfg.seed, batch_size=cfg.batch_size, device=cfg.device,
                      include_val=True, val_subset=cfg.val_subset, official=cfg.official,
                      finish=cfg.finish, image_size=cfg.image_size, out=str(out))


def evaluate_all(cfg: StudyConfig, checkpoints: dict[str, Any], out: Path, state: _State,
                 command: str | None, prebuilt: dict | None = None) -> list[str]:
    from ..evaluate import run_evaluation
    ec = eval_config(cfg, checkpoints, out)
    n_models = len(checkpoints) + len(prebuilt or {})
    _say(cfg, f"evaluating {n_models} model(s) on {len(ec.stressors)} stressors × "
         f"{len(ec.severities)} severities + {len(ec.sweeps)} sweep(s) (stored cells are kept)")
    t, c = time.perf_counter(), time.process_time()
    summary = run_evaluation(ec, models=prebuilt or None,
                             command=f"{command or 'run_study'}  # evaluate step")
    failed = [f"cell {f['cell']['model']} {f['cell']['stressor']} {f['cell']['severity']:g}: "
              f"{f['error']}" for f in summary.get("failed", [])]
    state.set("evaluate", status="ok" if not failed else "partial",
              **_timing(t, c),
              detail=f"{summary['computed']} cells computed, {summary['skipped']} kept, "
                     f"{len(failed)} failed")
    return failed


# ----------------------------------------------------------------------------- analyses
def _fingerprint(out: Path, extra) -> str:
    """Changes whenever a cell is added or replaced, or the step's options change."""
    with ResultsStore(RunFolder(out).store, readonly=True) as st:
        stored = st.fingerprint()
    from .. import __version__
    # Through JSON once first: YAML 1.1 reads a bare `on:` (a claim's key) as True, and
    # sort_keys cannot order a bool key beside str keys; JSON makes every key a string.
    extra = json.loads(json.dumps(extra, default=str))
    blob = json.dumps([*stored, extra, __version__], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def check_analyses(cfg: StudyConfig) -> list[str]:
    """The study's analyses in run order; unknown names and options raise StudyError."""
    from ..analysis import get_analysis, list_analyses
    names = [a.name for a in list_analyses()] if cfg.analyses is None else list(cfg.analyses)
    if cfg.analyses is None and not cfg.claims:
        names.remove("claims")      # nothing to check: no empty section in the report
    for name in names:
        try:
            fn = get_analysis(name).fn
        except ValueError as e:
            raise StudyError(f"analyses: {e}") from None
        _analysis_options(cfg, fn, name)
    return names


def run_analyses(cfg: StudyConfig, out: Path, state: _State) -> list[str]:
    """Every selected analysis, in registry order, skipping those whose inputs are unchanged."""
    from ..analysis import get_analysis
    failures = []
    for name in check_analyses(cfg):
        a = get_analysis(name)
        opts = _analysis_options(cfg, a.fn, name)
        key = f"analysis:{name}"
        fp = _fingerprint(out, opts)
        prev = state.step(key)
        if prev.get("status") == "ok" and prev.get("fingerprint") == fp \
                and (RunFolder(out).analysis / f"{name}.json").is_file():
            continue
        _say(cfg, f"analysis {name}")
        t, c = time.perf_counter(), time.process_time()
        try:
            a.fn(out, RunFolder(out).analysis, **opts)
        except Exception as e:  # recorded, shown in the report and returned: never hidden
            msg = f"{type(e).__name__}: {e}"
            state.set(key, status="failed", error=msg + "\n" + _tail(), fingerprint=fp,
                      **_timing(t, c))
            failures.append(f"analysis {name}: {msg}")
            _say(cfg, f"analysis {name} FAILED: {msg}")
            continue
        state.set(key, status="ok", fingerprint=fp, **_timing(t, c))
    return failures


def _analysis_options(cfg: StudyConfig, fn, name: str) -> dict:
    """The study's options for analysis ``name``, plus its device and seed when the analysis
    takes them and the study file does not set them."""
    import inspect
    opts = dict(cfg.analysis_options.get(name, {}))
    params = inspect.signature(fn).parameters
    for k, v in (("device", cfg.device), ("seed", cfg.seed), ("claims", cfg.claims)):
        if k in params and k not in opts:
            opts[k] = v
    unknown = [k for k in opts if k not in params
               and not any(p.kind == p.VAR_KEYWORD for p in params.values())]
    if unknown:
        raise StudyError(f"analysis_options.{name}: unknown option(s) {', '.join(unknown)} "
                         f"(allowed: {', '.join(p for p in params if p not in ('run_dir', 'out_dir'))})")
    return opts


def _tail(lines: int = 6) -> str:
    return "".join(traceback.format_exc().splitlines(keepends=True)[-lines:])


# ----------------------------------------------------------------------------- probes
def probe_key(i: int, p: ProbeSpec) -> str:
    image = p.image.split(":")[-1].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return f"probe:{i:02d}-{image}-{p.stressor}"


def run_probes(cfg: StudyConfig, out: Path, state: _State) -> list[str]:
    failures = []
    for i, p in enumerate(cfg.probes):
        key = probe_key(i, p)
        spec = to_dict(p)
        prev = state.step(key)
        if prev.get("status") == "ok" and prev.get("spec") == spec \
                and (out / prev.get("json", "")).is_file():
            continue
        pdir = RunFolder(out).probes / key.split(":", 1)[1]
        _say(cfg, f"probe {p.model} on {p.image} under {p.stressor}")
        t, c = time.perf_counter(), time.process_time()
        try:
            rel = _probe(cfg, p, pdir).relative_to(out)
        except Exception as e:  # recorded and reported like an analysis failure
            msg = f"{type(e).__name__}: {e}"
            state.set(key, status="failed", spec=spec, error=msg + "\n" + _tail(),
                      **_timing(t, c))
            failures.append(f"probe {key}: {msg}")
            continue
        state.set(key, status="ok", spec=spec, json=str(rel),
                  **_timing(t, c))
    return failures


def _probe(cfg: StudyConfig, p: ProbeSpec, pdir: Path) -> Path:
    """Run one probe into ``pdir``; returns its JSON (figures listed relative to ``pdir``)."""
    from ..analysis.probe import probe
    from ..analysis.registry import write_result
    result = probe(p.image, p.model, p.stressor, p.values, label=p.label, space=p.space,
                   seed=cfg.seed, device=cfg.device, out_dir=pdir)
    written = sorted(pdir.glob("probe*.json"))
    return written[0] if written else write_result(pdir, "probe", result)


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
