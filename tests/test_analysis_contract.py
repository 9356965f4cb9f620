"""Contract over the analysis registry: every registered analysis declares its options
dataclass (exactly its function's keyword options), its section intro and headlines with
valid fields, runs on one shared small run (a real evaluation of an untrained small CNN on
synthetic images) and returns a valid ``AnalysisResult`` whose JSON on disk is exactly
``to_dict()`` and whose per-model numbers carry every declared headline key."""
from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

from failmodes.analysis import AnalysisResult, Headline, list_analyses
from failmodes.analysis.registry import UNITS, _finite
from failmodes.evaluate import EvalConfig, run_evaluation

# Small options where an analysis would otherwise run for long (CAM: gradients).
FAST = {"cam": {"sample": 8, "failures_per_cell": 1, "device": "cpu"}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("contract") / "run"
    cfg = EvalConfig(models={"cnn": {"arch": "small_cnn", "arch_args": {"width": 8}}}, data="synthetic",
                     subset=60, stressors=["gaussian_noise", "fog"], severities=[1, 3, 5],
                     sweeps=["rotation=-30:30:30"], include_val=True, val_subset=60,
                     batch_size=64, device="cpu", out=str(out))
    run_evaluation(cfg, progress="off")
    return out


# The analyses of a store; others (claims) need inputs of their own and may report no model.
STORE_ANALYSES = ["metrics", "curves", "failures", "calibration", "cam"]


def test_registry_is_in_report_order_and_complete():
    names = [a.name for a in list_analyses()]
    assert [n for n in names if n in STORE_ANALYSES] == STORE_ANALYSES
    orders = [a.order for a in list_analyses()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


@pytest.mark.parametrize("analysis", list_analyses(), ids=lambda a: a.name)
def test_every_analysis_declares_options_intro_and_headlines(analysis):
    # The options dataclass is exactly the function's keyword options, defaults included.
    assert dataclasses.is_dataclass(analysis.options)
    params = inspect.signature(analysis.fn).parameters
    kw = {n: p.default for n, p in params.items() if p.kind == p.KEYWORD_ONLY}
    fields = {f.name: f.default for f in dataclasses.fields(analysis.options)}
    assert fields == kw, f"{analysis.name}: options dataclass and fn keywords differ"
    assert all(f.default is not dataclasses.MISSING for f in dataclasses.fields(analysis.options))
    assert analysis.parse_options({}) == analysis.options()
    # One name per concept: the confident-failure threshold is confidence_threshold.
    assert not {"threshold", "conf_threshold", "dangerous_conf"} & set(fields)
    assert isinstance(analysis.intro, str) and len(analysis.intro) > 40
    assert analysis.intro[0].isupper() and analysis.intro.endswith(".")
    assert isinstance(analysis.analyze, bool) and analysis.title
    keys = [h.key for h in analysis.headlines]
    assert len(keys) == len(set(keys))
    for h in analysis.headlines:
        assert isinstance(h, Headline) and h.key and h.label
        assert h.unit in UNITS and isinstance(h.higher_is_better, bool)


@pytest.mark.parametrize("analysis", list_analyses(), ids=lambda a: a.name)
def test_every_analysis_returns_a_valid_typed_result(analysis, run_dir, tmp_path):
    opts = analysis.parse_options(FAST.get(analysis.name, {}))
    res = analysis.run(run_dir, tmp_path, opts)
    assert isinstance(res, AnalysisResult) and res.name == analysis.name
    assert res.problems() == []
    assert set(res.per_model) <= {"cnn"}
    if analysis.name in STORE_ANALYSES:
        assert set(res.per_model) == {"cnn"} and res.per_model["cnn"]
    for model, numbers in res.per_model.items():   # the declared headlines are really there
        missing = [h.key for h in analysis.headlines if h.key not in numbers]
        assert not missing, f"{analysis.name}: {model} lacks declared headline(s) {missing}"
    assert res.params, "an analysis records the parameters it used"
    for f in res.figures:
        assert (tmp_path / f.path).stat().st_size > 0 and f.caption
    saved = json.loads((tmp_path / f"{analysis.name}.json").read_text())
    assert saved == json.loads(json.dumps(_finite(res.to_dict()), default=str))
    assert AnalysisResult.from_dict(saved).per_model.keys() == res.per_model.keys()


def test_analyses_are_discovered_from_their_packages():
    # Every public subpackage of failmodes/analysis registers one analysis under its name:
    # no hand-kept list to forget.
    import pkgutil

    import failmodes.analysis as pkg
    packages = {m.name for m in pkgutil.iter_modules(pkg.__path__)
                if m.ispkg and not m.name.startswith("_")}
    assert packages == {a.name for a in list_analyses()}
    assert all(a.fn.__module__.split(".")[:3] == ["failmodes", "analysis", a.name]
               for a in list_analyses())
