"""Misbehaving networks (issue 35): each one in tests/model_zoo.py ends in the documented
outcome through the command line — taken with a note, one ``error:`` line and exit 2, or
failed cells and exit 1 — never a traceback."""
from pathlib import Path

import model_zoo
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from failmodes.cli import app
from failmodes.errors import EXIT_FAILED, EXIT_USAGE
from failmodes.evaluate import EvalConfig, open_run, run_evaluation
from failmodes.models import ModelError, wrap
from failmodes.models.wrapper import logits_of

ZOO = Path(__file__).with_name("model_zoo.py")
runner = CliRunner()


def _evaluate(tmp_path, *models, extra=()):
    argv = ["evaluate", "--data", "synthetic", "--subset", "8", "--stressors",
            "gaussian_noise", "--severities", "1", "--device", "cpu", "--batch-size", "4",
            "--out", str(tmp_path / "run"), *extra]
    for m in models:
        argv += ["--model", f"{ZOO}:{m}"]
    return runner.invoke(app, argv)


def _error_line(res) -> str:
    assert res.exit_code == EXIT_USAGE, res.output
    assert "Traceback" not in res.output, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and res.output.strip().endswith(errors[0]), res.output
    return errors[0]


@pytest.mark.parametrize("name, words", [
    ("AmbiguousTuple", "tuple of 2 tensors (2 of them N×C)"),
    ("OneD", "shape (10,) for a batch of 2 images"),
    ("WrongBatch", "shape (1, 10) for a batch of 2 images"),
    ("ConvHead1000", "outputs 1000 logits per image but synthetic has 10 classes"),
    ("ExitsInForward", "SystemExit: 3"),
    ("broken_factory", "building the network raised RuntimeError: this factory needs a GPU"),
])
def test_a_network_that_cannot_be_evaluated_is_one_error_line(tmp_path, name, words):
    line = _error_line(_evaluate(tmp_path, name))
    assert words in line, line
    assert not (tmp_path / "run" / "results.sqlite").exists()  # refused before any write


@pytest.mark.parametrize("source, words", [
    ("def f(:\n", "line 1: SyntaxError"),
    ("import no_such_module_xyz\n", "ModuleNotFoundError: No module named 'no_such_module_xyz'"),
    ("raise SystemExit(4)\n", "SystemExit: 4"),
])
def test_a_broken_model_file_is_one_error_line(tmp_path, source, words):
    bad = tmp_path / "bad.py"
    bad.write_text(source + "def net():\n    pass\n")
    res = runner.invoke(app, ["evaluate", "--model", f"{bad}:net", "--data", "synthetic",
                              "--subset", "4", "--stressors", "gaussian_noise",
                              "--device", "cpu", "--out", str(tmp_path / "run")])
    assert words in _error_line(res)


@pytest.mark.parametrize("name, note", [
    ("TupleOut", "returns a tuple; its only N×C tensor (element 0) is used as the logits"),
    ("DictOut", "returns a dict; its 'logits' entry is used"),
])
def test_tuple_and_dict_outputs_give_their_logits_and_say_so(tmp_path, name, note):
    res = _evaluate(tmp_path, name)
    assert res.exit_code == 0, res.output
    assert note in res.output
    # The stored logits are the reference network's own (same seed, same weights).
    ref = model_zoo.Plain().eval()
    with open_run(tmp_path / "run") as ctx:
        ds = ctx.dataset()
        cell = ctx.store.cells(stressor="clean")[0]
        got = ctx.store.predictions(cell, logits=True)["logits"]
        meta = ctx.store.models()[0]["meta"]["provenance"]
    mean, std = (torch.tensor(meta[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    with torch.no_grad():
        want = ref((ds.float_batch(0, len(ds)) - mean) / std).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_a_network_that_raises_on_a_batch_fails_its_cells_and_the_others_run(tmp_path):
    res = _evaluate(tmp_path, "Plain", "RaisesLate")
    assert res.exit_code == EXIT_FAILED, res.output
    assert "Traceback" not in res.output
    failed = [ln for ln in res.output.splitlines() if ln.startswith("failed:")]
    assert len(failed) == 2 and all("RaisesLate" in ln and "RuntimeError: CUDA error" in ln
                                    for ln in failed), res.output
    with open_run(tmp_path / "run") as ctx:
        done = {(c.model.rpartition(":")[2], c.stressor) for c in ctx.store.cells()}
        bad = ctx.store.cells(status="failed")
    assert done == {("Plain", "clean"), ("Plain", "gaussian_noise")}
    assert len(bad) == 2 and all("dataset indices" in c.error for c in bad)


def test_a_factory_that_needs_num_classes_gets_it(tmp_path):
    torch.save(model_zoo.Plain().state_dict(),
               tmp_path / "w.pt")
    res = runner.invoke(app, ["evaluate", "--model", f"{ZOO}:needs_num_classes", "--weights",
                              str(tmp_path / "w.pt"), "--data", "synthetic", "--subset", "4",
                              "--stressors", "gaussian_noise", "--severities", "1",
                              "--device", "cpu", "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output


def test_logits_of_known_answers():
    z = torch.arange(6.0).view(2, 3)
    assert logits_of(z, 2)[0] is z and logits_of(z, 2)[1] is None
    assert logits_of((z, torch.zeros(2, 3, 4, 4)), 2)[0] is z   # the only N×C tensor
    assert logits_of([torch.zeros(5), z], 2)[0] is z
    assert logits_of({"logits": z, "hidden": z}, 2)[0] is z
    assert logits_of({"out": z}, 2)[0] is z
    for bad in ((z, z), {"a": z, "b": z}, "text", z[0], z[:1], z.view(2, 3, 1)):
        with pytest.raises(ModelError):
            logits_of(bad, 2)


def test_the_python_api_reports_the_failed_cells(tmp_path):
    m = wrap(model_zoo.RaisesLate().eval(), mean=(0.5,) * 3, std=(0.25,) * 3)
    s = run_evaluation(EvalConfig(models={}, data="synthetic", subset=4,
                                  stressors=["gaussian_noise"], severities=[1.0], device="cpu",
                                  out=str(tmp_path / "run")), models={"flaky": m},
                       progress="off")
    assert s.computed == 0 and len(s.failed) == 2


def test_a_study_goes_on_past_a_network_that_raises_and_writes_its_report(tmp_path):
    from failmodes.study import StudyConfig, run_study
    good = wrap(model_zoo.Plain().eval(), mean=(0.5,) * 3, std=(0.25,) * 3)
    flaky = wrap(model_zoo.RaisesLate().eval(), mean=(0.5,) * 3, std=(0.25,) * 3)
    cfg = StudyConfig(name="zoo", data="synthetic", subset=8, suites=[],
                      stressors=["gaussian_noise"], severities=[1], analyses=["metrics"],
                      device="cpu", out=str(tmp_path / "run"))
    res = run_study(cfg, models={"good": good, "flaky": flaky})
    assert res.report.is_file()
    cells = [f for f in res.failures if f.startswith("cell flaky")]
    # its test cells and the clean train-val cell a study adds for temperature scaling
    assert len(cells) == 3 and not [f for f in res.failures if "good" in f], res.failures
    with open_run(tmp_path / "run") as ctx:
        assert {c.model for c in ctx.store.cells()} == {"good"}


def test_an_explicit_class_map_evaluates_a_wider_head(tmp_path):
    from failmodes.data import load_dataset
    classes = load_dataset("synthetic").classes
    cmap = {c: [f"{100 * i}-{100 * i + 99}"] for i, c in enumerate(classes)}  # 10 × 100
    spec = {"arch": f"{ZOO}:ConvHead1000", "class_map": cmap, "mean": [0.5] * 3,
            "std": [0.25] * 3}
    s = run_evaluation(EvalConfig(models={"wide": spec}, data="synthetic", subset=8,
                                  stressors=["gaussian_noise"], severities=[1.0],
                                  device="cpu", out=str(tmp_path / "run")), progress="off")
    assert s.computed == 2 and not s.failed
    ref = model_zoo.ConvHead1000().eval()
    with open_run(tmp_path / "run") as ctx:
        ds = ctx.dataset()
        cell = ctx.store.cells(stressor="clean")[0]
        got = ctx.store.predictions(cell, logits=True)["logits"]
        assert ctx.model("wide").class_names == classes  # rebuilt with its map, same hash
        prov = ctx.store.models()[0]["meta"]["provenance"]
    with torch.no_grad():
        z = ref((ds.float_batch(0, len(ds)) - 0.5) / 0.25)
    want = torch.stack([torch.logsumexp(z[:, 100 * i:100 * i + 100], 1) for i in range(10)], 1)
    np.testing.assert_allclose(got, want.numpy(), atol=1e-4, rtol=0)
    # the summed probability: softmax over the groups = the network's own mass per group
    p = torch.softmax(z, 1).view(len(ds), 10, 100).sum(2)
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(got), 1).numpy(), p.numpy(),
                               atol=1e-5)
    assert prov["class_map"]["disk"][:2] == ["class_0", "class_1"]


def test_a_class_map_that_misses_a_class_is_one_line(tmp_path):
    res = runner.invoke(app, ["evaluate", "--model", f"{ZOO}:ConvHead1000", "--data",
                              "synthetic", "--subset", "4", "--stressors", "fog",
                              "--device", "cpu", "--out", str(tmp_path / "run")])
    assert "class_map in its spec" in _error_line(res)
    with pytest.raises(ModelError, match="missing \\['square'"):
        from failmodes.models import load_model
        load_model({"arch": f"{ZOO}:ConvHead1000", "class_map": {"disk": ["0-99"]}},
                   data_classes=["disk", "square"], say=lambda s: None)
