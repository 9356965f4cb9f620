"""Test-time augmentation only when asked: ``tta: flip`` on a model source (``evaluate
--tta flip``, a study model's ``tta:``) evaluates the mean logits of each image and its
mirror; without it every path evaluates the plain forward pass. Grad-CAM explains the plain
network either way."""
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from failmodes.cli import app
from failmodes.evaluate import open_run
from failmodes.models import ModelError, load_model, spec_from_options
from failmodes.models.tta import FlipAveraged, apply_tta, with_flip_tta, without_tta


def _x():
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_flip_source_averages_the_image_and_its_mirror():
    plain = load_model({"arch": "small_cnn", "arch_args": {"width": 8}}, seed=3, say=print)
    tta = load_model({"arch": "small_cnn", "arch_args": {"width": 8}, "tta": "flip"},
                     seed=3, say=print)
    x = _x()
    with torch.no_grad():
        want = 0.5 * (plain(x) + plain(x.flip(3)))
        torch.testing.assert_close(tta(x), want)
        assert not torch.allclose(plain(x), want)  # a random net is not mirror-symmetric
    assert tta.arch == "small_cnn+flip-tta" and plain.arch == "small_cnn"
    assert tta.source["tta"] == "flip" and "tta" not in plain.source
    assert tta.source["spec"]["tta"] == "flip"  # the stored spec rebuilds the same model


def test_unknown_tta_is_one_clear_error():
    with pytest.raises(ModelError, match="tta 'mirror' is not one of: flip"):
        load_model({"arch": "small_cnn", "tta": "mirror"}, say=print)
    assert apply_tta(m := load_model("small_cnn", say=print), None) is m


def test_without_tta_gives_back_the_plain_network_sharing_weights():
    plain = load_model({"arch": "small_cnn", "arch_args": {"width": 8}}, say=print)
    wrapped = with_flip_tta(plain)
    assert isinstance(wrapped.net, FlipAveraged)
    back = without_tta(wrapped)
    assert back.net is plain.net and back.arch == plain.arch
    assert back.cam_layer_name == plain.cam_layer_name and "tta" not in back.source
    assert without_tta(plain) is plain
    with torch.no_grad():
        torch.testing.assert_close(back(_x()), plain(_x()))


def test_cli_option_reaches_the_spec():
    assert spec_from_options("small_cnn", tta="flip") == {"arch": "small_cnn", "tta": "flip"}
    assert spec_from_options("small_cnn") == "small_cnn"


def test_evaluate_tta_flip_stores_the_averaged_logits_and_cam_uses_the_plain_net(tmp_path):
    out = tmp_path / "run"
    base = ["evaluate", "--model", "small_cnn", "--arch-arg", "width=8", "--data", "synthetic",
            "--subset", "8", "--stressors", "contrast", "--severities", "2", "--device", "cpu"]
    r = CliRunner().invoke(app, [*base, "--tta", "flip", "--out", str(out)])
    assert r.exit_code == 0, r.output
    with open_run(out) as ctx:
        rec = ctx.store.models()[0]
        assert rec["arch"] == "small_cnn+flip-tta"
        m = ctx.model(rec["name"], "cpu")  # rebuilt from the stored spec: still flip-averaged
        assert isinstance(m.net, FlipAveraged)
        cell = next(c for c in ctx.store.cells() if c.stressor == "clean")
        got = ctx.store.predictions(cell, logits=True)["logits"]
        ds = ctx.dataset()
        x = ds.float_batch(0, len(ds))
        plain = without_tta(m)
        with torch.no_grad():
            want = (0.5 * (plain(x) + plain(x.flip(3)))).numpy()
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    r = CliRunner().invoke(app, ["cam", str(out), "--sample", "4", "--failures-per-cell", "1",
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    import json
    notes = json.loads((out / "analysis" / "cam.json").read_text())["notes"]
    assert any("Grad-CAM explains the plain forward pass" in n for n in notes)
    r = CliRunner().invoke(app, [*base, "--tta", "bogus", "--out", str(tmp_path / "r2")])
    assert r.exit_code == 2 and "tta 'bogus' is not one of: flip" in r.output


def test_study_model_tta_is_checked_at_load_and_passed_to_evaluate(tmp_path):
    from failmodes.study import StudyError, load_study
    from failmodes.study.runner import eval_config
    text = ("name: s\ndata: synthetic\nmodels: [{name: a, arch: small_cnn, tta: %s}, "
            "{name: b, arch: small_cnn}]\nsuites: []\nstressors: [fog]\nseverities: [1]\n")
    (tmp_path / "bad.yaml").write_text(text % "mirror")
    with pytest.raises(StudyError, match=r"models\[0\]\.tta 'mirror' is not one of: flip"):
        load_study(tmp_path / "bad.yaml")
    (tmp_path / "s.yaml").write_text(text % "flip")
    cfg = load_study(tmp_path / "s.yaml")
    ec = eval_config(cfg, {"a": tmp_path / "a.pt", "b": tmp_path / "b.pt"}, tmp_path / "out")
    assert ec.models == {"a": {"weights": str(tmp_path / "a.pt"), "tta": "flip"},
                         "b": str(tmp_path / "b.pt")}
