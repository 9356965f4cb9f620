"""Contract over the analysis registry: every registered analysis runs on one shared small
run (a real evaluation of an untrained small CNN on synthetic images) and returns a valid
``AnalysisResult`` whose JSON on disk is exactly ``to_dict()``."""
from __future__ import annotations

import json

import pytest

from failmodes.analysis import AnalysisResult, list_analyses
from failmodes.analysis.registry import _finite
from failmodes.evaluate import EvalConfig, run_evaluation

# Small options where an analysis would otherwise run for long (CAM: gradients).
FAST = {"cam": {"sample": 8, "failures_per_cell": 1, "device": "cpu"}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("contract") / "run"
    cfg = EvalConfig(models={"cnn": {"arch": "small_cnn", "width": 8}}, data="synthetic",
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
def test_every_analysis_returns_a_valid_typed_result(analysis, run_dir, tmp_path):
    import inspect
    opts = {k: v for k, v in FAST.get(analysis.name, {}).items()
            if k in inspect.signature(analysis.fn).parameters}
    res = analysis.fn(run_dir, tmp_path, **opts)
    assert isinstance(res, AnalysisResult) and res.name == analysis.name
    assert res.problems() == []
    assert set(res.per_model) <= {"cnn"}
    if analysis.name in STORE_ANALYSES:
        assert set(res.per_model) == {"cnn"} and res.per_model["cnn"]
    assert res.params, "an analysis records the parameters it used"
    for f in res.figures:
        assert (tmp_path / f.path).stat().st_size > 0 and f.caption
    saved = json.loads((tmp_path / f"{analysis.name}.json").read_text())
    assert saved == json.loads(json.dumps(_finite(res.to_dict()), default=str))
    assert AnalysisResult.from_dict(saved).per_model.keys() == res.per_model.keys()
