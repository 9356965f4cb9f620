"""Issue 35, study files: a model name that is a path refused at load; duplicate YAML keys
refused naming the key and both lines; a claim on a corruption or severity the study never
evaluates refused at load; one model whose cells all failed leaves the failures analysis of
the others standing."""
from __future__ import annotations

import pytest
from synthetic_store import write_store
from typer.testing import CliRunner

from failmodes.cli import app
from failmodes.config import ConfigError, read_yaml
from failmodes.errors import EXIT_USAGE
from failmodes.study import StudyError, load_study, study_from_dict

STUDY = {"name": "mini", "data": "synthetic", "models": [{"name": "a", "arch": "small_cnn"},
                                                          {"name": "b", "arch": "small_cnn"}],
         "suites": [], "stressors": ["fog"], "severities": [1, 3],
         "sweeps": {"rotation": [0, 30]}}


@pytest.mark.parametrize("name", ["..", "a..b", "../x", "a/b", "a\\b", ".hidden", ""])
def test_a_model_name_that_could_be_a_path_is_refused(name):
    with pytest.raises(StudyError, match="models\\[0\\].name"):
        study_from_dict({**STUDY, "models": [{"name": name, "arch": "small_cnn"}]})


def test_duplicate_keys_are_refused_naming_the_key_and_both_lines(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: mini\ndata: synthetic\nseed: 1\nmodels: [{name: a, arch: small_cnn}]\n"
                 "seed: 2\n")
    with pytest.raises(ConfigError, match=r"key 'seed' appears twice \(lines 3 and 5\)"):
        load_study(p)
    nested = tmp_path / "n.yaml"
    nested.write_text("models:\n  - {name: a, arch: small_cnn, name: b}\n")
    with pytest.raises(ConfigError, match="key 'name' appears twice"):
        read_yaml(nested)
    # a merge key may be overridden: that is what it is for
    merged = tmp_path / "m.yaml"
    merged.write_text("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n")
    assert read_yaml(merged)["c"] == {"x": 3, "y": 2}


def test_duplicate_keys_through_the_cli_are_one_line(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: mini\nname: other\n")
    res = CliRunner().invoke(app, ["run", str(p), "--out", str(tmp_path / "out")])
    assert res.exit_code == EXIT_USAGE
    assert res.output.strip().splitlines() == [
        f"error: {p}: refused: key 'name' appears twice (lines 1 and 2); keep one"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("claim, words", [
    ({"drop": "glass_blur", "model": "a", "at_least": 5, "severity": 3},
     "'glass_blur' is not evaluated by this study (it evaluates fog, rotation)"),
    ({"drop": "fog", "model": "a", "at_least": 5}, "severity 5 is not evaluated"),  # default 5
    ({"drop": "fog", "model": "a", "at_least": 5, "severity": 2}, "evaluates 1, 3"),
    ({"drop": "rotation", "model": "a", "at_least": 5, "severity": 3}, "evaluates 0, 30"),
    ({"harder": "fog", "than": "contrast", "model": "a"}, "'contrast' is not evaluated"),
    ({"graceful": ["snow"], "model": "a"}, "'snow' is not evaluated"),
    ({"gentlest": ["snow"], "model": "a"}, "'snow' is not evaluated"),
    ({"drop": "glass_blur", "model": "a", "about": 5, "severity": 3}, "'glass_blur' is not"),
    ({"more_robust": "a", "than": "b", "on": ["frost"]}, "'frost' is not evaluated"),
    ({"regime": "pixelate", "model": "a", "is": "linear"}, "'pixelate' is not evaluated"),
    ({"cam_drift": "background", "model": "a", "severity": 5}, "severity 5 is not evaluated"),
])
def test_a_claim_on_what_the_study_never_evaluates_fails_the_load(claim, words):
    with pytest.raises(StudyError, match="claims\\[0\\]") as e:
        study_from_dict({**STUDY, "claims": [claim]})
    assert words in str(e.value)


@pytest.mark.parametrize("claim", [
    {"drop": "fog", "model": "a", "at_least": 5, "severity": 3},
    {"drop": "fog", "model": "a", "at_least": 5, "severity": 0},        # clean: always there
    {"more_robust": "a", "than": "b"},
    {"cam_drift": "background", "model": "a", "severity": 3},
])
def test_a_claim_on_evaluated_cells_loads(claim):
    assert len(study_from_dict({**STUDY, "claims": [claim]}).claims) == 1


def test_every_preset_still_loads():
    from failmodes.study import list_presets, load_preset
    for name in list_presets():
        load_preset(name)


def test_a_model_whose_cells_all_failed_does_not_stop_the_failures_of_the_others(tmp_path):
    from failmodes.analysis.failures import failures
    # clean accuracy 0.9 of 50: 5 errors, each at confidence 0.95 (high-confidence)
    store = write_store(tmp_path / "results.sqlite", {"fog": {1: 0.8, 3: 0.5}}, n=50, model="m",
                        conf_wrong=0.95)
    store.register_model("broken", spec="synthetic", arch="none", weights_hash="h2",
                         class_names=[f"c{i}" for i in range(10)])   # every cell failed
    store.close()
    res = failures(tmp_path, tmp_path / "analysis", gallery=False)
    assert list(res.per_model) == ["m"]
    assert res.per_model["m"]["clean_hc_count"] == 5
    assert any(n.startswith("broken: no stored cells") for n in res.notes)
