"""Study files, presets and the whole pipeline on synthetic data."""
from __future__ import annotations

import json
import re

import pytest

from failmodes.config import ConfigError
from failmodes.study import (
    StudyError,
    list_presets,
    load_preset,
    load_study,
    resolve_study,
    study_from_dict,
    sweep_values,
)

MINI = {"name": "mini", "data": "synthetic",
        "models": [{"name": "a", "arch": "small_cnn", "recipe": "baseline-cosine"}]}


def _write(tmp_path, text: str):
    p = tmp_path / "study.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads_and_passes_the_whole_study_check(name):
    from failmodes.study.runner import check_study
    cfg = load_preset(name)
    check_study(cfg)  # recipes, archs, suites, stressors, sweeps, probes, analyses


def test_presets_load_and_are_sized_as_documented():
    assert {"demo", "quick", "paper"} <= set(list_presets())
    demo, quick, paper = (load_preset(n) for n in ("demo", "quick", "paper"))
    assert demo.data == "synthetic" and len(demo.models) >= 2 and demo.probes
    assert all(p.model == "efficientnet_lite0" and p.image.startswith("skimage:")
               for p in demo.probes)
    assert quick.subset >= 1000 and quick.severities == [1, 2, 3, 4, 5]
    assert {m.recipe for m in quick.models} == {"fast", "fast-cutout"}
    assert all(m.arch == "cifar_fastnet" and m.train_subset is None for m in quick.models)
    assert paper.subset is None and {m.arch for m in paper.models} == {
        "cifar_resnet18", "cifar_densenet121"}
    assert {m.recipe for m in paper.models} == {"baseline-cosine", "cutout", "augmix"}
    assert "GPU" in paper.description
    for cfg in (demo, quick, paper):
        assert cfg.analyses is None and cfg.suites == ["all"] and cfg.seed == 42


def test_unknown_key_names_file_and_key(tmp_path):
    p = _write(tmp_path, "name: x\nmodels: [{name: a, arch: small_cnn}]\nsevereties: [1]\n")
    with pytest.raises(ConfigError, match=r"study.yaml: unknown key\(s\) severeties"):
        load_study(p)
    p = _write(tmp_path, "name: x\nmodels: [{name: a, archh: small_cnn}]\n")
    with pytest.raises(ConfigError, match=r"models\[0\]: unknown key\(s\) archh"):
        load_study(p)


def test_wrong_type_names_the_key(tmp_path):
    p = _write(tmp_path, "name: x\nmodels: [{name: a, epochs: three}]\n")
    with pytest.raises(ConfigError, match=r"models\[0\]\.epochs: expected int"):
        load_study(p)
    p = _write(tmp_path, "name: x\nmodels: [{name: a}]\nseed: 1.5\n")
    with pytest.raises(ConfigError, match=r"\.seed: expected int"):
        load_study(p)
    with pytest.raises(ConfigError, match="not found"):
        load_study(tmp_path / "nope.yaml")


@pytest.mark.parametrize("change, message", [
    ({"models": []}, "models is empty"),
    ({"models": [{"name": "a"}, {"name": "a"}]}, "used twice"),
    ({"models": [{"name": "a", "recipe": None}]}, "needs a recipe to train, a checkpoint or weights"),
    ({"models": [{"name": "a b"}]}, "must be letters"),
    ({"baseline": "zzz"}, "baseline 'zzz' is not one of the models"),
    ({"severities": [6]}, "severities must lie in"),
    ({"sweeps": {"rotation": "90:-90:15"}}, "step 15 never reaches -90"),
    ({"sweeps": {"rotation": "a:b"}}, "should be START:STOP:STEP"),
    # issue 14: ranges are capped before any value is built, NaN/inf refused, in lists too
    ({"sweeps": {"rotation": "0:1e12:1e-3"}}, r"1,000,000,000,000,001 values \(at most 10000"),
    ({"sweeps": {"rotation": "nan:1:1"}}, "'nan' is not a finite number"),
    ({"sweeps": {"rotation": [0.0, float("nan")]}}, "nan is not finite"),
    ({"probes": [{"image": "skimage:chelsea", "values": "0:inf:1"}]}, "probes\\[0\\].values"),
    ({"analyses": ["metrics"], "analysis_options": {"cam": {}}}, "'cam' is not in analyses"),
    ({"subset": 0}, "subset must be positive"),
    ({"autocast": "fp16"}, "autocast 'fp16' is not supported; use bf16"),
])
def test_semantic_errors(change, message):
    with pytest.raises(StudyError, match=message):
        study_from_dict({**MINI, **change})


def test_precision_and_layout_reach_the_evaluation(tmp_path):
    from failmodes.study.evaluation import eval_config
    cfg = study_from_dict({**MINI, "channels_last": True, "autocast": "bf16"})
    ec = eval_config(cfg, {"a": tmp_path / "a.pt"}, tmp_path)
    assert ec.channels_last is True and ec.autocast == "bf16"
    plain = eval_config(study_from_dict(MINI), {"a": tmp_path / "a.pt"}, tmp_path)
    assert plain.channels_last is False and plain.autocast is None


def test_overrides_and_sweep_values():
    cfg = resolve_study(study_from_dict(MINI), out="elsewhere", seed=7, device="cpu")
    assert str(cfg.out_dir) == "elsewhere" and cfg.seed == 7 and cfg.device == "cpu"
    assert study_from_dict(MINI).out_dir.as_posix() == "runs/mini"
    with pytest.raises(ConfigError, match="--seed: expected int"):
        resolve_study(study_from_dict(MINI), seed="x")
    assert sweep_values("0:0.3:0.1") == [0.0, 0.1, 0.2, 0.3]
    assert sweep_values([1, 2]) == [1.0, 2.0]


# ----------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_tiny_study_end_to_end_and_resume(tmp_path, monkeypatch):
    from failmodes.study import run_study
    monkeypatch.chdir(tmp_path)
    cfg = study_from_dict({
        "name": "tiny", "data": "synthetic", "subset": 60, "val_subset": 60,
        "models": [{"name": "base", "arch": "small_cnn", "recipe": "baseline-cosine",
                    "epochs": 1, "train_subset": 300, "width": 8},
                   {"name": "cut", "arch": "small_cnn", "recipe": "cutout",
                    "epochs": 1, "train_subset": 300, "width": 8}],
        "suites": [], "stressors": ["gaussian_noise", "contrast"], "severities": [1, 5],
        "analyses": ["metrics", "curves"], "seed": 3, "device": "cpu"})
    res = run_study(cfg, command="failmodes run tiny.yaml")
    out = tmp_path / "runs" / "tiny"
    html = res.report.read_text()
    assert res.report.resolve() == out / "report.html" and res.failures == []
    for f in ("results.json", "results.sqlite", "study.resolved.json", "study_state.json",
              "tables/accuracy_cells.csv", "tables/comparison.csv", "analysis/metrics.json",
              "models/base/model.pt", "models/cut/history.json"):
        assert (out / f).exists(), f
    results = json.loads((out / "results.json").read_text())
    assert {m["model"] for m in results["models"]} == {"base", "cut"}
    assert len(results["cells"]) == 2 * (1 + 2 * 2)  # clean + 2 stressors × 2 severities
    assert results["analyses"]["cam"]["status"] == "skipped"
    assert "failmodes run tiny.yaml" in html
    # The only scripts are the explorer's data block and its hashed code.
    assert re.findall(r"<script[^>]*>", html) == [
        '<script type="application/json" id="fm-explorer-data">', "<script>"]
    assert re.search(r'<section id="comparison">', html)
    # Re-running does no new work: same checkpoint, same cells, analyses skipped.
    state = json.loads((out / "study_state.json").read_text())
    mtime = (out / "models" / "base" / "model.pt").stat().st_mtime_ns
    run_study(cfg, command="failmodes run tiny.yaml")
    state2 = json.loads((out / "study_state.json").read_text())
    assert (out / "models" / "base" / "model.pt").stat().st_mtime_ns == mtime
    assert state2["steps"]["analysis:metrics"] == state["steps"]["analysis:metrics"]
    assert "0 cells computed" in state2["steps"]["evaluate"]["detail"]
    assert len(state2["commands"]) == 2
    # A changed recipe for a model that already has a checkpoint is refused, not ignored.
    import dataclasses
    changed = dataclasses.replace(cfg, models=[dataclasses.replace(cfg.models[0], epochs=2),
                                               cfg.models[1]])
    with pytest.raises(StudyError, match=r"models\[base\].*epochs=1 \(now 2\)"):
        run_study(changed)


def test_cli_run_fails_early_with_one_line(tmp_path):
    from typer.testing import CliRunner

    from failmodes.cli import app
    p = _write(tmp_path, "name: t\ndata: synthetic\nmodels: [{name: a, arch: small_cnn}]\n"
                         "analysis_options: {cam: {samples: 3}}\n")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["run", str(p), "--out", str(out)])
    assert r.exit_code == 2 and not out.exists()  # nothing written before the check
    # refused when the study file loads (the options dataclass), so it names the file too
    assert r.output.startswith("error: ")
    assert "analysis_options.cam: unknown option(s) samples" in r.output
    r = CliRunner().invoke(app, ["run"])
    assert r.exit_code == 2 and "exactly one of" in r.output


@pytest.mark.parametrize("options, message", [
    # the option's old name: refused, naming it and the one name it now has
    ("{failures: {threshold: high}}",
     r"analysis_options\.failures: unknown option\(s\) threshold \(allowed: "
     r"confidence_threshold"),
    # a wrong type, from the options dataclass
    ("{failures: {confidence_threshold: high}}",
     r"analysis_options\.failures\.confidence_threshold: expected float, got str 'high'"),
    ("{calibration: {n_bins: 1.5}}", r"analysis_options\.calibration\.n_bins: expected int"),
    ("{cam: {stressors: fog}}", r"analysis_options\.cam\.stressors: expected a list"),
    ("{metrics: {figures: 'no'}}", r"analysis_options\.metrics\.figures: expected true/false"),
    ("{nosuch: {}}", r"unknown analysis 'nosuch'"),
])
def test_analysis_options_are_type_checked_when_the_study_loads(tmp_path, options, message):
    p = _write(tmp_path, "name: t\ndata: synthetic\nmodels: [{name: a, arch: small_cnn, "
                         f"recipe: baseline-cosine}}]\nanalysis_options: {options}\n")
    with pytest.raises(StudyError, match=message):
        load_study(p)


def test_a_bad_analysis_option_fails_before_any_training(tmp_path):
    from typer.testing import CliRunner

    from failmodes.cli import app
    p = _write(tmp_path, "name: t\ndata: synthetic\nmodels: [{name: a, arch: small_cnn, "
                         "recipe: baseline-cosine}]\n"
                         "analysis_options: {failures: {threshold: high}}\n")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["run", str(p), "--out", str(out)])
    assert r.exit_code == 2 and not out.exists()  # refused at load: nothing trained or written
    assert r.output.startswith("error: ") and "analysis_options.failures" in r.output
    assert "threshold" in r.output


def test_analysis_fingerprint_takes_yaml_on_keys(tmp_path):
    # YAML 1.1 reads a claim's bare `on:` as the key True; the fingerprint must still hash it.
    from failmodes.store import ResultsStore
    from failmodes.study.analyses import step_fingerprint
    ResultsStore(tmp_path / "results.sqlite").close()
    a = step_fingerprint(tmp_path, {"claims": [{"more_robust": "b", True: "all"}]})
    b = step_fingerprint(tmp_path, {"claims": [{"more_robust": "b", True: "fog"}]})
    assert a != b and len(a) == 16
