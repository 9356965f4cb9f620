"""Everything a study names, checked before any work (a typo fails in a second, not after
hours of training)."""
from __future__ import annotations

from pathlib import Path

from .config import IN_MEMORY_ARCH, StudyConfig, StudyError, sweep_values
from .training import train_config


def check_study(cfg: StudyConfig) -> None:
    """Everything a study names, checked before any work: each model's recipe (file and
    keys), architecture, checkpoint or weights file; suites, stressors and sweep values;
    probe stressors; analyses and their options. Raises StudyError naming the key."""
    from ..errors import FailmodesError
    from ..models import check_model
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
        check(f"{key}.arch", check_model, {"arch": m.arch})
    for i, name in enumerate(cfg.suites):
        check(f"suites[{i}]", suite, name)
    for i, name in enumerate(cfg.stressors):
        check(f"stressors[{i}]", get_stressor, name)
    for name, values in cfg.sweeps.items():  # floats since the study loaded
        st = check(f"sweeps.{name}", get_stressor, name)
        for v in values:
            check(f"sweeps.{name}", st.check_value, v)
    for name in [n for s in cfg.suites for n in suite(s)] + list(cfg.stressors):
        for s in cfg.severities:
            check("severities", get_stressor(name).check_value, s)
    from ..analysis.probe import _resolve_stressor
    for i, p in enumerate(cfg.probes):
        st = check(f"probes[{i}]", _resolve_stressor, p.stressor, p.space)
        for v in sweep_values(p.values, f"probes[{i}].values"):
            check(f"probes[{i}].values", st.check_value, v)
    check_analyses(cfg)


def check_analyses(cfg: StudyConfig) -> list[str]:
    """The study's analyses in run order; unknown names and options raise StudyError."""
    from ..analysis import get_analysis, list_analyses
    names = [a.name for a in list_analyses()] if cfg.analyses is None else list(cfg.analyses)
    if cfg.analyses is None and not cfg.claims:
        names.remove("claims")      # nothing to check: no empty section in the report
    for name in names:
        try:
            analysis = get_analysis(name)
        except ValueError as e:
            raise StudyError(f"analyses: {e}") from None
        analysis_options(cfg, analysis)
    return names


def analysis_options(cfg: StudyConfig, analysis) -> dict:
    """The study's options for ``analysis`` (checked against its options dataclass: names
    and types), plus the study's device, seed and claims where the analysis takes them and
    the study file does not set them."""
    import dataclasses

    from ..config import ConfigError
    opts = dict(cfg.analysis_options.get(analysis.name, {}))
    fields = {f.name for f in dataclasses.fields(analysis.options)}
    for k, v in (("device", cfg.device), ("seed", cfg.seed), ("claims", cfg.claims)):
        if k in fields and k not in opts:
            opts[k] = v
    try:
        analysis.parse_options(opts)
    except ConfigError as e:
        raise StudyError(str(e)) from None
    return opts
