"""`failmodes analyze` and `failmodes probe` through the typer app, on crafted data."""
import json

import numpy as np
import pytest
from synthetic_store import curve, write_store
from typer.testing import CliRunner

from failmodes.analysis.analyze import analyze_run
from failmodes.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    write_store(d / "results.sqlite", {"gaussian_noise": curve("threshold-collapse", [1, 2, 3, 4, 5])},
                n=300, conf_wrong=0.95).close()
    (d / "eval_config.json").write_text(json.dumps({"config": {"data": "synthetic",
                                                               "split": "test"}}))
    return d


def test_analyze_prints_headline_and_regimes(run_dir):
    res = runner.invoke(app, ["analyze", str(run_dir), "--threshold", "0.9"])
    assert res.exit_code == 0, res.output
    assert "largest drop: 44.0 points under gaussian_noise at severity 5" in res.output
    assert "threshold-collapse" in res.output
    out = run_dir / "analysis"                       # the default --out
    for name in ("curves.json", "failures.json"):
        assert (out / name).is_file()
    failures = json.loads((out / "failures.json").read_text())
    assert failures["per_model"]["m"]["clean_hc_count"] == 30
    assert any(f["path"].startswith("figures/gallery_clean") for f in failures["figures"])


def test_analyze_errors(run_dir, tmp_path):
    res = runner.invoke(app, ["analyze", str(run_dir), "--out", str(tmp_path),
                              "--superclasses", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "superclass file" in res.output
    res = runner.invoke(app, ["analyze", str(run_dir), "--threshold", "1.5"])
    assert res.exit_code != 0
    with pytest.raises(FileNotFoundError, match="no results.sqlite"):
        analyze_run(tmp_path / "empty")


def test_analyze_runs_the_store_analyses_in_report_order():
    from failmodes.analysis import list_analyses
    from failmodes.analysis.analyze import analyze_analyses
    names = [a.name for a in analyze_analyses()]
    assert names == [a.name for a in list_analyses() if a.analyze]   # report order
    # the store analyses in report order; a new analysis (one package) may join anywhere
    assert [n for n in names if n in ("metrics", "curves", "failures")] == [
        "metrics", "curves", "failures"]


def test_analyze_options_come_from_the_options_dataclasses(run_dir, tmp_path):
    # --confidence-threshold is failures' option field; --threshold its old spelling.
    res = runner.invoke(app, ["analyze", "--help"], env={"COLUMNS": "200"})
    assert "--confidence-threshold" in res.output and "--max-cases" in res.output
    res = runner.invoke(app, ["analyze", str(run_dir), "--out", str(tmp_path),
                              "--confidence-threshold", "0.99", "--no-gallery"])
    assert res.exit_code == 0, res.output
    failures = json.loads((tmp_path / "failures.json").read_text())
    assert failures["params"]["confidence_threshold"] == 0.99
    assert failures["per_model"]["m"]["clean_hc_count"] == 0
    with pytest.raises(TypeError, match="unknown option"):
        analyze_run(run_dir, tmp_path, threshold=0.9)


def test_probe_command(tmp_path):
    from PIL import Image
    img = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(img)
    out = tmp_path / "probe"
    res = runner.invoke(app, ["probe", str(img), "--model", "small_cnn", "--stressor",
                              "gaussian_noise", "--values", "0:4:2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "probe_gaussian_noise.json").read_text())
    assert data["values"] == [0.0, 2.0, 4.0] and len(data["rows"]) == 3
    assert (out / "figures" / "probe_strip_gaussian_noise.png").is_file()
    res = runner.invoke(app, ["probe", str(img), "--model", "small_cnn", "--stressor",
                              "gaussian_noise", "--values", "0:4", "--out", str(out)])
    assert res.exit_code == 2 and "START:STOP:STEP" in res.output
