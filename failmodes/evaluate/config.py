"""The evaluation config in two types: ``EvalConfig``, what the user gave (one
``failmodes evaluate`` call, or a study's evaluation step), and ``ResolvedEvalConfig``
(``failmodes.store``), what ``resolve_config`` makes of it and what is saved with the run:
every default filled, models named, suites expanded, values parsed once, paths absolute.

>>> c = resolve_config(EvalConfig(models=["small_cnn"], stressors=["fog"], severities="1:3:1",
...                               sweeps=["rotation=-30:30:30"]))
>>> c.severities, c.stressors, c.sweeps
([1.0, 2.0, 3.0], ['fog'], {'rotation': [-30.0, 0.0, 30.0]})
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._device import resolve_device
from ..config import ConfigError, from_dict
from ..data import (
    CorruptedSpec,
    DataError,
    DataSpec,
    absolute_spec,
    find_data_spec,
    list_corrupted_specs,
)
from ..errors import FailmodesError
from ..models import absolute_model_spec, is_model_file
from ..ranges import parse_values, split_sweep
from ..store import ResolvedEvalConfig
from ..stressors import StressorError, get_stressor
from ..stressors import suite as stressor_suite
from ..stressors.finish import check_finish

IN_MEMORY = "<in-memory>"  # the spec of a model handed to run_evaluation as an object


class EvalError(ValueError, FailmodesError):
    """The evaluation cannot start (bad model, data, stressor or value); one line."""


@dataclass
class EvalConfig:
    """Everything one ``failmodes evaluate`` call needs, as given; ``resolve_config`` turns
    it into the ``ResolvedEvalConfig`` saved beside the store.

    models: ``{name: spec}`` (or a list of specs, named after their file stem / registry
        name). A spec is a checkpoint path, a registry name (weights initialised from
        ``seed``, for smoke tests and benchmarks) or ``{"arch": NAME, **kwargs}``.
    data/split/subset: dataset spec for ``failmodes.data.load_dataset``, its split, and a
        class-stratified subset size (None = all).
    suite/stressors: a suite name (cifar10-c, cifar10-c-extra, all, sweeps) and/or
        stressor names; the clean cell is always included.
    severities: corruption severities, a list or ``"1,2,3"`` / ``"0:5:0.25"``; 0 is the
        identity, i.e. the clean cell, and is not stored again per corruption.
    sweeps: ``{"rotation": [-90.0, ..., 90.0]}`` (a value string such as ``"-90:90:15"``
        is parsed too) or the command line's ``["rotation=-90:90:15", ...]``; values in the
        stressor's natural unit (for a corruption, extra severities of that corruption only).
    include_val: also evaluate the clean ``train-val`` split (temperature scaling), at most
        ``val_subset`` images.
    official: a released corrupted set (``cifar10c:PATH``, ``cifar100c:PATH``,
        ``imagenetc:PATH``, ``tinyimagenetc:PATH``); its cells go under the dataset
        ``<kind>-official:<split>`` (e.g. ``imagenetc-official:test``), no stressor applied,
        stored apart from the on-the-fly cells. ``cifar10c: PATH`` is short for
        ``official: cifar10c:PATH``.
    finish: ``jpeg85`` passes every on-the-fly stressed image through the JPEG quality-85
        save the released ImageNet-C files went through (``none``: no finish); the main
        dataset's key then reads ``<name>+jpeg85:<split>``.
    channels_last: feed the models NHWC batches (models converted for the run): faster
        convolutions on GPUs and oneDNN CPUs, the same predictions.
    autocast: ``"bf16"`` runs the models under bfloat16 autocast (CUDA or CPU; None: fp32).
        Logits then differ slightly, so a store keeps one precision per model name: a bf16
        run never reuses a name's fp32 cells, nor the reverse.
    """

    models: dict[str, Any] | list[Any] = field(default_factory=dict)
    data: str = "synthetic"
    split: str = "test"
    subset: int | None = None
    suite: str | None = None
    stressors: list[str] | None = None
    severities: list[float] | str = field(default_factory=lambda: [1.0, 2.0, 3.0, 4.0, 5.0])
    sweeps: dict[str, list[float]] | list[str] = field(default_factory=dict)
    seed: int = 0
    batch_size: int = 256
    device: str = "auto"
    include_val: bool = False
    val_subset: int | None = 5000
    cifar10c: str | None = None
    official: str | None = None
    finish: str = "none"
    image_size: int | None = None
    store_logits: bool = True
    channels_last: bool = False
    autocast: str | None = None
    out: str = "runs/eval"


AUTOCAST_DTYPES = ("bf16",)  # what --autocast takes (fp16 needs loss scaling, not offered)


def resolve_config(config: EvalConfig | Mapping) -> ResolvedEvalConfig:
    """The ``ResolvedEvalConfig`` of ``config``: models as ``{name: spec}``, severities and
    stressors as lists (the suite expanded), sweeps as ``{name: sorted values}``, paths
    absolute. Raises EvalError on unknown stressors, out-of-range values, bad numbers."""
    if not isinstance(config, EvalConfig):
        try:
            config = from_dict(EvalConfig, dict(config))
        except ConfigError as e:
            raise EvalError(str(e)) from None
    c = config
    models = _name_models(c.models)
    try:
        sev = sorted(set(parse_values(c.severities, where="--severities")))
    except ValueError as e:
        raise EvalError(str(e)) from None
    names = list(stressor_suite(c.suite)) if c.suite else []
    for n in c.stressors or []:
        if n not in names:
            names.append(n)
    sweep_names: list[str] = []
    corruptions: list[str] = []
    for n in names:
        s = _stressor(n)
        (corruptions if s.is_corruption else sweep_names).append(n)
    sweeps = _sweep_values(c.sweeps)
    for n in sweep_names:
        if n not in sweeps:
            raise EvalError(f"sweep stressor {n} needs values: --sweep {n}=START:STOP:STEP")
    for n in corruptions:
        for v in sev:
            _check_value(n, v)
    official = c.official
    if c.cifar10c:
        cifar10c = str(Path(c.cifar10c).expanduser().resolve())
        if official and absolute_spec(official) != f"cifar10c:{cifar10c}":
            raise EvalError("give either --cifar10c or --official, not both")
        official = f"cifar10c:{cifar10c}"
    if official:
        official = absolute_spec(official)
        if not isinstance(data_spec_of(official), CorruptedSpec):
            released = list_corrupted_specs()
            raise EvalError(f"--official {official!r} is not a released corrupted set; use "
                            f"{', '.join(s.forms[0] for s in released)}")
    try:
        check_finish(c.finish)
    except StressorError as e:
        raise EvalError(f"--finish: {e}") from None
    if c.batch_size < 1:
        raise EvalError(f"--batch-size must be positive, got {c.batch_size}")
    if c.subset is not None and c.subset < 1:
        raise EvalError(f"--subset must be positive, got {c.subset}")
    if c.autocast is not None and c.autocast not in AUTOCAST_DTYPES:
        raise EvalError(f"--autocast {c.autocast!r} is not supported; use --autocast bf16 "
                        "(or leave it out for fp32)")
    resolve_device(c.device)
    return ResolvedEvalConfig(
        models=models, data=absolute_spec(c.data), split=c.split, subset=c.subset,
        stressors=corruptions, severities=[float(v) for v in sev], sweeps=sweeps, seed=c.seed,
        batch_size=c.batch_size, device=c.device, include_val=c.include_val,
        val_subset=c.val_subset, official=official, finish=c.finish, image_size=c.image_size,
        store_logits=c.store_logits, channels_last=c.channels_last, autocast=c.autocast,
        out=str(Path(c.out).expanduser().resolve()))


def _sweep_values(given: Mapping[str, Any] | list[str]) -> dict[str, list[float]]:
    # The one parse of sweep values: a study hands floats over (parse_values checks them),
    # the command line "NAME=VALUES" texts; a name given twice gets the union of its values.
    items: list[tuple[str, Any]] = []
    try:
        if isinstance(given, Mapping):
            items = [(str(n), parse_values(v, where=f"sweep {n}")) for n, v in given.items()]
        else:
            items = [split_sweep(text) for text in given]
    except ValueError as e:
        raise EvalError(f"--sweep: {e}") from None
    out: dict[str, list[float]] = {}
    for n, vals in items:
        try:  # a corruption may be swept too: its values are extra severities
            st = get_stressor(n)
            for v in vals:
                st.check_value(v)
        except StressorError as e:
            raise EvalError(f"--sweep: {e}") from None
        out[n] = sorted(set(out.get(n, []) + vals))
    return out


def _name_models(models) -> dict[str, Any]:
    if isinstance(models, Mapping):
        out = {str(k): v for k, v in models.items()}
    else:
        out = {}
        for spec in models:
            base = _default_name(spec)
            name, k = base, 2
            while name in out:
                name, k = f"{base}-{k}", k + 1
            out[name] = spec
    if not out:
        raise EvalError("no model given; pass --model CKPT|NAME")
    for name, spec in out.items():
        if spec == IN_MEMORY:
            continue
        if not (isinstance(spec, str) or isinstance(spec, Mapping) and (
                isinstance(spec.get("arch"), str) or isinstance(spec.get("weights"), str))):
            raise EvalError(f"model {name!r}: spec must be a model file, a registry name "
                            f"or {{'arch': NAME, 'weights': FILE, ...}}, got {spec!r}")
        out[name] = absolute_model_spec(spec)
    return out


def _default_name(spec) -> str:
    if isinstance(spec, Mapping):
        if not isinstance(spec.get("weights"), str):
            return str(spec.get("arch", "model"))
        spec = spec["weights"]
    p = Path(str(spec))
    if _is_checkpoint(str(spec)):
        # runs/r18/best.pt -> r18: a generic file stem says less than its folder.
        generic = p.stem in ("model", "best", "last", "checkpoint")
        return p.parent.name if generic and p.parent.name else p.stem
    return str(spec)


def data_spec_of(spec: str) -> DataSpec:
    """The registered kind of data spec ``spec``; EvalError when unknown or incomplete."""
    try:
        kind = find_data_spec(spec)
        kind.argument(spec)
    except DataError as e:
        raise EvalError(str(e)) from None
    return kind


def _is_checkpoint(spec: str) -> bool:
    return is_model_file(spec)


def _stressor(name: str):
    try:
        return get_stressor(name)
    except StressorError as e:
        raise EvalError(str(e)) from None


def _check_value(name: str, value: float) -> None:
    try:
        _stressor(name).check_value(value)
    except StressorError as e:
        raise EvalError(str(e)) from None


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e6 else repr(v)
