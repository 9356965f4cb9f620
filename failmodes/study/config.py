"""The study file: which data, which models (a recipe to train or a checkpoint), which
stressors, sweeps, probes and analyses; one YAML file -> ``StudyConfig``.

Unknown keys and wrong types fail at load time, naming the file and the key. Relative
paths (``data``, ``checkpoint``, probe images, ``out``) are taken from the current
directory, like every other ``failmodes`` command.

>>> cfg = load_preset("demo")
>>> cfg.name, [m.name for m in cfg.models]
('demo', ['small_cnn-baseline', 'small_cnn-cutout'])
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .. import values
from ..config import ConfigError, from_dict, load_yaml, override
from ..models import ModelSource
from ..models.tta import TTA_MODES
from ..ranges import RangeError, parse_values

__all__ = ["ModelSpec", "ProbeSpec", "StudyConfig", "StudyError", "list_presets", "load_preset",
           "load_study", "resolve_study", "study_from_dict", "sweep_values"]

IN_MEMORY_ARCH = "<in-memory>"  # a model handed to run_study(models=...) in Python
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class StudyError(ConfigError):
    """A study file or a study option is wrong; one line naming the key and the fix."""


@dataclass(kw_only=True)
class ModelSpec(ModelSource):
    """One model of a study: trained from ``recipe`` unless ``checkpoint`` or ``weights``
    is given.

    ``arch`` is a model-registry name (``failmodes models``), ``tv:NAME``, ``timm:NAME`` or
    ``module:callable``; ``width``, ``epochs``, ``train_subset`` (images), ``batch_size`` and
    ``lr`` override the recipe; ``test_subset`` test images are scored after each epoch
    (the last epoch: all of them). The fields it shares with ``evaluate``'s model sources
    (``weights``: a state dict for ``arch``, or a model file (.pt2, TorchScript, .onnx) that
    needs no ``arch``; ``arch_args``, ``num_classes``, ``classes``, ``mean``, ``std``,
    ``input_size``, ``cam_layer``) are :class:`failmodes.models.ModelSource`'s.
    """

    name: str
    arch: str = "cifar_resnet18"
    recipe: str | None = "baseline-cosine"
    checkpoint: str | None = None
    width: int | None = None
    epochs: int | None = None
    train_subset: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    test_subset: int | None = None


@dataclass
class ProbeSpec:
    """A single-image probe: ``image`` is a file or ``skimage:<name>`` (e.g. skimage:chelsea);
    ``values`` a list or ``start:stop:step`` in the stressor's natural unit; ``space``
    ``pixel`` or ``normalized`` says where a noise std is added (``auto``: as named)."""

    image: str
    model: str = "efficientnet_lite0"
    stressor: str = "rotation"
    values: str | list[float] = "-180:180:30"
    label: int | str | None = None
    space: str = "auto"


@dataclass
class StudyConfig:
    """Everything a study does. ``suites`` and ``stressors`` add up (suite names:
    ``cifar10-c``, ``cifar10-c-extra``, ``all``); ``sweeps`` maps a sweep stressor to its
    values (``"-90:90:15"`` or a list in the file, a list of floats once loaded);
    ``analyses`` None means every registered analysis; ``baseline`` names the model that
    relative mCE and the comparison deltas refer to (default: the first model);
    ``val_subset`` clean images of the held-out training split are evaluated for
    temperature scaling; ``threads`` sets torch's CPU threads (None: torch's default; 1 is
    fastest on a machine shared with other jobs)."""

    name: str
    data: str = "cifar10"
    split: str = "test"
    subset: int | None = None
    val_subset: int | None = 2000
    models: list[ModelSpec] = field(default_factory=list)
    suites: list[str] = field(default_factory=lambda: ["all"])
    stressors: list[str] = field(default_factory=list)
    severities: list[float] = field(default_factory=lambda: [1.0, 2.0, 3.0, 4.0, 5.0])
    # The file may give "start:stop:step" or a list; resolve_study parses it to floats.
    sweeps: dict[str, list[float]] = field(default_factory=dict)
    probes: list[ProbeSpec] = field(default_factory=list)
    analyses: list[str] | None = None
    analysis_options: dict[str, Any] = field(default_factory=dict)
    # Statements about the models checked against the data (failmodes.analysis.claims).
    claims: list[Any] = field(default_factory=list)
    baseline: str | None = None
    seed: int = 42
    device: str = "auto"
    threads: int | None = None
    batch_size: int = 256
    # The evaluation's precision and layout (EvalConfig): NHWC batches, bf16 autocast.
    channels_last: bool = False
    autocast: str | None = None
    out: str | None = None
    # A released corrupted set evaluated beside the on-the-fly cells (imagenetc:PATH, ...),
    # the finish of on-the-fly cells (none | jpeg85) and a folder resize (see EvalConfig).
    official: str | None = None
    finish: str = "none"
    image_size: int | None = None
    description: str = ""

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / self.name

    @property
    def baseline_model(self) -> str | None:
        return self.baseline or (self.models[0].name if self.models else None)


def list_presets() -> list[str]:
    """Names of the built-in studies (``failmodes/presets/*.yaml``)."""
    root = resources.files("failmodes") / "presets"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> StudyConfig:
    """A built-in study by name: ``demo``, ``quick`` or ``paper``."""
    if name not in list_presets():
        raise StudyError(f"unknown preset {name!r}; choose from {', '.join(list_presets())}")
    with resources.as_file(resources.files("failmodes") / "presets" / f"{name}.yaml") as p:
        return resolve_study(load_yaml(StudyConfig, p), where=f"preset {name}")


def load_study(path: str | Path) -> StudyConfig:
    """Read and check a study YAML file."""
    return resolve_study(load_yaml(StudyConfig, path), where=str(path))


def resolve_study(cfg: StudyConfig, where: str = "study", **overrides) -> StudyConfig:
    """Apply non-None CLI ``overrides`` (out, data, device, seed, ...) and check the whole
    study for mistakes a YAML type check cannot see (names, duplicates, sweep syntax)."""
    try:
        cfg = override(cfg, **overrides)
    except ConfigError as e:
        raise StudyError(str(e)) from None
    cfg = dataclasses.replace(cfg, data=absolute_data_spec(cfg.data),
                              official=absolute_data_spec(cfg.official) if cfg.official else None)
    if not _NAME_RE.match(cfg.name) or ".." in cfg.name:
        raise StudyError(f"{where}: name {cfg.name!r} must be letters, digits, '_', '-', '.', '+' "
                         "(no '..')")
    if not cfg.models:
        raise StudyError(f"{where}: models is empty; list at least one model")
    seen = set()
    for i, m in enumerate(cfg.models):
        key = f"{where}: models[{i}]"
        _checked(values.model_name, m.name, f"{key}.name")
        if m.name in seen:
            raise StudyError(f"{key}.name {m.name!r} is used twice; model names must be unique")
        seen.add(m.name)
        if m.checkpoint is None and m.weights is None and not m.recipe \
                and m.arch != IN_MEMORY_ARCH:
            raise StudyError(f"{key} ({m.name}) needs a recipe to train, a checkpoint or "
                             "weights")
        if m.tta is not None and m.tta not in TTA_MODES:
            raise StudyError(f"{key}.tta {m.tta!r} is not one of: {', '.join(TTA_MODES)} "
                             "(leave it out for the plain forward pass)")
        for k in ("width", "epochs", "train_subset", "batch_size", "test_subset"):
            v = getattr(m, k)
            if v is not None and v <= 0:
                raise StudyError(f"{key}.{k} must be positive, got {v}")
        # The keys the command line also takes: the same checks as --num-classes, ...
        for k, check in (("num_classes", values.num_classes), ("input_size", values.input_size)):
            if getattr(m, k) is not None:
                _checked(check, getattr(m, k), f"{key}.{k}")
        for k, stats in (("mean", m.mean), ("std", m.std)):
            if stats is not None:
                _checked(lambda v, w, s=k == "std": values.norm_stats(v, w, std=s),
                         ",".join(map(str, stats)), f"{key}.{k}")
        for k, v in m.arch_args.items():
            _checked(lambda v, w, k=k: values.arch_value(str(k), v, w), v, f"{key}.arch_args")
    if cfg.baseline is not None and cfg.baseline not in seen:
        raise StudyError(f"{where}: baseline {cfg.baseline!r} is not one of the models "
                         f"({', '.join(seen)})")
    for k in ("subset", "val_subset", "batch_size"):
        v = getattr(cfg, k)
        if v is not None and v <= 0:
            raise StudyError(f"{where}: {k} must be positive, got {v}")
    cfg = dataclasses.replace(
        cfg, seed=_checked(values.seed, cfg.seed, f"{where}: seed"),
        device=_checked(values.device, cfg.device, f"{where}: device"),
        threads=None if cfg.threads is None else _checked(values.threads, cfg.threads,
                                                          f"{where}: threads"),
        image_size=None if cfg.image_size is None else _checked(
            values.input_size, cfg.image_size, f"{where}: image_size"))
    from ..evaluate.config import AUTOCAST_DTYPES
    if cfg.autocast is not None and cfg.autocast not in AUTOCAST_DTYPES:
        raise StudyError(f"{where}: autocast {cfg.autocast!r} is not supported; use "
                         f"{' or '.join(AUTOCAST_DTYPES)}, or leave it out for fp32")
    for s in cfg.severities:
        if not 0 <= s <= 5:
            raise StudyError(f"{where}: severities must lie in [0, 5], got {s}")
    # The one parse of the sweeps: a "start:stop:step" string or a list becomes floats here,
    # and the floats go down to the evaluation grid as they are.
    cfg = dataclasses.replace(cfg, sweeps={
        str(name): sweep_values(values, f"{where}: sweeps.{name}")
        for name, values in cfg.sweeps.items()})
    for i, p in enumerate(cfg.probes):
        sweep_values(p.values, f"{where}: probes[{i}].values")
    from ..analysis.claims import ClaimError, normalize_claim_keys, parse_claims
    try:
        claims = parse_claims(cfg.claims, models=seen, where=f"{where}: claims")
    except ClaimError as e:
        raise StudyError(str(e)) from None
    _check_claims_evaluated(cfg, claims, f"{where}: claims")
    cfg = dataclasses.replace(cfg, claims=normalize_claim_keys(cfg.claims))
    from ..analysis import get_analysis
    for name, opts in cfg.analysis_options.items():
        if cfg.analyses is not None and name not in cfg.analyses:
            raise StudyError(f"{where}: analysis_options.{name} is given but {name!r} is not "
                             "in analyses")
        try:    # names and types now, from the analysis's options dataclass: not after training
            get_analysis(name).parse_options(opts, f"{where}: analysis_options.{name}")
        except ValueError as e:
            raise StudyError(str(e) if isinstance(e, ConfigError)
                             else f"{where}: analysis_options: {e}") from None
    return cfg


def _evaluated(cfg: StudyConfig) -> dict[str, list[float]]:
    """Each stressor the study evaluates -> its severities or sweep values (an unknown suite
    counts as none here; ``check_study`` names it)."""
    from ..stressors import suite
    out: dict[str, list[float]] = {}
    for name in cfg.suites:
        try:
            out.update({n: list(cfg.severities) for n in suite(name)})
        except ValueError:
            pass
    out.update({n: list(cfg.severities) for n in cfg.stressors})
    out.update({n: list(v) for n, v in cfg.sweeps.items()})
    return out


def _check_claims_evaluated(cfg: StudyConfig, claims, where: str) -> None:
    # A claim on a corruption or a severity the study never evaluates could only ever come
    # out "inconclusive" after hours of work: refuse it at load, naming what is evaluated.
    evaluated = _evaluated(cfg)
    for i, c in enumerate(claims):
        names = _claim_stressors(c)
        for n in names:
            if n not in evaluated:
                raise StudyError(f"{where}[{i}]: {n!r} is not evaluated by this study "
                                 f"(it evaluates {', '.join(sorted(evaluated)) or 'nothing'}); "
                                 "add it to stressors or drop the claim")
        sev = c.params.get("severity")
        if sev is None or sev == 0:
            continue
        levels = (evaluated[c.subject] if c.kind == "drop"
                  else sorted({v for n, v_ in evaluated.items() if n not in cfg.sweeps
                               for v in v_}))
        if sev not in levels:
            raise StudyError(f"{where}[{i}]: severity {sev:g} is not evaluated (the study "
                             f"evaluates {', '.join(f'{v:g}' for v in levels) or 'none'}); "
                             "add it to severities or change the claim")


def _claim_stressors(c) -> list[str]:
    if c.kind in ("drop", "regime"):
        return [c.subject]
    if c.kind in ("harder", "graceful", "gentlest"):
        return [*c.subject, *c.params.get("than", ())]
    if c.kind == "more_robust" and c.params["on"] != "all":
        return list(c.params["on"])
    return []


def _checked(check, value, where: str):
    try:
        return check(value, where)
    except values.OptionValueError as e:
        raise StudyError(str(e)) from None


def absolute_data_spec(spec: str) -> str:
    """Folder paths made absolute (``PATH``, ``imagefolder:PATH``, ``imagenet:PATH``, ...), so
    the saved study and the trained checkpoints name the same data from any directory."""
    from ..data import absolute_spec
    return absolute_spec(spec)


def sweep_values(values, where: str = "sweep") -> list[float]:
    """``"start:stop:step"``, ``"v1,v2"`` or a list -> floats (``failmodes.ranges`` grammar,
    capped at ``MAX_RANGE_VALUES``, NaN and inf refused), as a StudyError naming ``where``.

    >>> sweep_values("-90:90:45")
    [-90.0, -45.0, 0.0, 45.0, 90.0]
    """
    try:
        return parse_values(values, where=where)
    except RangeError as e:
        raise StudyError(str(e)) from None


def study_to_dict(cfg: StudyConfig) -> dict:
    return dataclasses.asdict(cfg)


def study_from_dict(data: dict, where: str = "study") -> StudyConfig:
    """A checked study from a mapping (what a YAML file holds)."""
    return resolve_study(from_dict(StudyConfig, data, where), where=where)
