"""Silent wrong results and lost work around the run folder (issue 35): the image size is
part of a dataset key; `report` never replaces a report with an empty one unless forced;
one writer per run folder for training, evaluation and whole studies; one normalisation
rule whatever the file format; model hashes ignore RNG states and name what differs; the
batch fits the memory, and running out is one line."""
from pathlib import Path

import model_zoo
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from failmodes.cli import app
from failmodes.errors import EXIT_ENVIRONMENT, EXIT_USAGE
from failmodes.evaluate import EvalConfig, open_run, run_evaluation
from failmodes.evaluate._memory import affordable_batch
from failmodes.models import load_model
from failmodes.store import RunBusy, RunLock, parse_dataset_key

ZOO = Path(model_zoo.__file__)
runner = CliRunner()


def _one_error(res, code=EXIT_USAGE) -> str:
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.output
    return errors[0]


# ----------------------------------------------------------------------------- image size
@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A 32-px image folder: 2 classes × 4 images."""
    root = tmp_path_factory.mktemp("folder") / "tiny"
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / "test" / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                root / "test" / c / f"{i}.png")
    return root


def _eval_folder(folder, out, image_size=None):
    # mean/std given: the rule by input size would pick ImageNet's at 224 px, another model
    spec = {"arch": f"{ZOO}:Plain", "num_classes": 2, "mean": [0.5] * 3, "std": [0.25] * 3}
    return run_evaluation(EvalConfig(models={"m": spec},
                                     data=str(folder), stressors=["gaussian_noise"],
                                     severities=[1.0], device="cpu", image_size=image_size,
                                     out=str(out)), progress="off")


def test_the_image_size_is_part_of_the_dataset_key(folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert _eval_folder(folder, out).computed == 2
    again = _eval_folder(folder, out, image_size=32)  # the data's own size: the same cells
    assert (again.computed, again.skipped) == (0, 2)
    big = _eval_folder(folder, out, image_size=224)
    assert (big.computed, big.skipped) == (2, 0)  # not the 32-px cells again
    err = capsys.readouterr().err
    assert "--image-size 224: the corruptions take ImageNet-C's severity parameters" in err
    assert "not the CIFAR-10-C ones of the data's own 32-px images" in err
    with open_run(out) as ctx:
        keys = sorted({c.dataset for c in ctx.store.cells()})
        assert keys == ["tiny:test", "tiny@224px:test"]
        assert ctx.dataset_key() == "tiny@224px:test"  # the latest config's size
    assert parse_dataset_key("tiny@224px:test").image_side == 224


def test_an_old_store_with_untagged_resized_cells_is_still_read(folder, tmp_path):
    out = tmp_path / "run"
    _eval_folder(folder, out, image_size=64)
    import sqlite3
    db = sqlite3.connect(out / "results.sqlite")  # as written before keys held the size
    db.execute("UPDATE cells SET dataset='tiny:test'")
    db.commit()
    db.close()
    with open_run(out) as ctx:
        assert ctx.dataset_key() == "tiny:test"


# ----------------------------------------------------------------------------- report
def test_report_never_replaces_a_report_with_an_empty_one(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("report.html", "results.json", "summary.md"):
        (run / name).write_text("the good report")
    line = _one_error(runner.invoke(app, ["report", str(run)]))
    assert "has no results store" in line and "--force" in line
    assert all((run / n).read_text() == "the good report"
               for n in ("report.html", "results.json", "summary.md"))
    res = runner.invoke(app, ["report", str(run), "--force"])
    assert res.exit_code == 0, res.output
    assert "No evaluated cells" in (run / "report.html").read_text()


# ----------------------------------------------------------------------------- one writer
def test_training_is_refused_while_another_step_writes_the_folder(tmp_path):
    from failmodes.config import override
    from failmodes.train import load_recipe, train_model
    cfg = override(load_recipe("baseline-cosine"), model="small_cnn", width=4, data="synthetic",
                   epochs=1, subset=20, batch_size=10, device="cpu", test_subset=10)
    with RunLock(tmp_path / "t"):  # as if an evaluation were writing there
        with pytest.raises(RunBusy, match="another evaluation .pid"):
            train_model(cfg, tmp_path / "t", progress=False)
        assert not (tmp_path / "t" / "last.pt").exists()
    with RunLock(tmp_path / "e", "training"):
        res = runner.invoke(app, ["evaluate", "--model", "small_cnn", "--data", "synthetic",
                                  "--subset", "4", "--stressors", "fog", "--device", "cpu",
                                  "--out", str(tmp_path / "e")])
        assert "another training (pid" in _one_error(res)


def test_a_second_study_on_one_folder_is_refused_before_training(tmp_path):
    from failmodes.study import load_study
    study = tmp_path / "s.yaml"
    study.write_text(f"name: s\ndata: synthetic\nsubset: 8\nout: {tmp_path / 'run'}\n"
                     "models: [{name: a, arch: small_cnn, width: 4, epochs: 1, "
                     "train_subset: 20}]\n")
    load_study(study)
    with RunLock(tmp_path / "run", "study run"):
        res = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "run"),
                                  "--device", "cpu"])
        assert "another study run (pid" in _one_error(res)
    assert not (tmp_path / "run" / "models").exists()


def test_a_study_lets_its_own_steps_into_its_folder(tmp_path):
    import subprocess
    import sys
    child = ["-c", "from failmodes.store import RunLock; "
             f"RunLock({str(tmp_path)!r}, 'evaluation').release()"]
    with RunLock(tmp_path, "study run", nestable=True):
        RunLock(tmp_path).release()  # the study's own evaluation into the same folder
        other = subprocess.run([sys.executable, *child], capture_output=True, text=True)
        assert other.returncode != 0 and "another study run (pid" in other.stderr
    assert subprocess.run([sys.executable, *child]).returncode == 0  # free again


# ----------------------------------------------------------------------------- normalisation
def _export(net, path, batch=None, size=32):
    # batch None: a dynamic batch dimension; the image side is fixed at ``size``
    x = torch.rand(2 if batch is None else batch, 3, size, size)
    dyn = None if batch else {"x": {0: torch.export.Dim("n", min=1, max=1024)}}
    torch.export.save(torch.export.export(net, (x,), dynamic_shapes=dyn), str(path))


def test_one_normalisation_rule_for_every_file_format(tmp_path):
    import torchvision
    net = torchvision.models.resnet18(num_classes=10).eval()
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    classes = [str(i) for i in range(10)]
    for size, want in ((32, (0.4914, 0.4822, 0.4465)), (224, (0.485, 0.456, 0.406))):
        _export(net, tmp_path / f"r18-{size}.pt2", size=size)
        torch.onnx.export(net, (torch.rand(2, 3, size, size),), str(tmp_path / f"r18-{size}.onnx"),
                          dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "n"}})
        lines: list[str] = []
        got = [load_model(spec, data_classes=classes, data_size=size, say=lines.append)
               for spec in ({"arch": "tv:resnet18", "weights": str(tmp_path / "r18.pth")},
                            str(tmp_path / f"r18-{size}.pt2"), str(tmp_path / f"r18-{size}.onnx"))]
        for m in got:
            np.testing.assert_allclose(m.mean.flatten().numpy(), want, atol=1e-6)
            assert m.source["mean"] == pytest.approx(list(want))
            assert m.source["normalization_from"].endswith(f"({size}-px input)")
        assert sum("from CIFAR-10" in ln or "from ImageNet" in ln for ln in lines) == 3


def test_a_pt2_exported_for_batch_1_says_why_it_is_slow(tmp_path):
    _export(model_zoo.Plain().eval(), tmp_path / "b1.pt2", batch=1)
    lines: list[str] = []
    m = load_model(str(tmp_path / "b1.pt2"), data_classes=[str(i) for i in range(10)],
                   data_size=32, say=lines.append)
    assert any("exported for a batch of exactly 1: it runs 1 image per call" in ln
               for ln in lines), lines
    assert m(torch.rand(5, 3, 32, 32)).shape == (5, 10)


def test_a_factory_that_loads_its_own_weights_is_recorded_as_such(tmp_path):
    classes = [str(i) for i in range(10)]
    own = load_model(f"{ZOO}:Plain", data_classes=classes, say=lambda s: None)
    assert own.source["format"].startswith("weights set by") and "itself" in own.source["format"]
    fresh = load_model(f"{ZOO}:NoConv", data_classes=classes, say=lambda s: None)  # seeds itself too
    assert "itself" in fresh.source["format"]
    rnd = load_model("small_cnn", data_classes=classes, say=lambda s: None)
    assert rnd.source["format"] == "initialised (seed 0)"


# ----------------------------------------------------------------------------- model hashes
def _eval_zoo(tmp_path, name, model, extra=()):
    return runner.invoke(app, ["evaluate", "--model", f"{ZOO}:{model}", "--name", name,
                               "--data", "synthetic", "--subset", "4", "--stressors",
                               "gaussian_noise", "--severities", "1", "--device", "cpu",
                               "--out", str(tmp_path / "run"), *extra])


def test_a_keras_like_rng_state_does_not_change_the_model_hash(tmp_path):
    assert _eval_zoo(tmp_path, "k", "KerasLike").exit_code == 0
    res = _eval_zoo(tmp_path, "k", "KerasLike")  # a new RNG state, the same weights
    assert res.exit_code == 0, res.output
    assert "0 cells computed, 2 already stored" in res.output


def test_other_weights_under_a_used_name_are_refused_naming_the_tensors(tmp_path):
    assert _eval_zoo(tmp_path, "m", "Plain").exit_code == 0
    net = model_zoo.Plain()
    with torch.no_grad():
        net.fc.bias += 1
    torch.save(net.state_dict(), tmp_path / "w.pt")
    line = _one_error(_eval_zoo(tmp_path, "m", "Plain", ["--weights", str(tmp_path / "w.pt")]))
    assert "already in" in line and "(differing: net.fc.bias)" in line


def test_a_failed_first_attempt_does_not_block_the_fixed_rerun(tmp_path):
    res = _eval_zoo(tmp_path, "m", "RaisesLate")
    assert res.exit_code == 1  # every cell failed
    net = model_zoo.Plain()
    with torch.no_grad():
        net.fc.weight.mul_(2)  # the fixed model: other weights under the same name
    torch.save(net.state_dict(), tmp_path / "w.pt")
    res = _eval_zoo(tmp_path, "m", "Plain", ["--weights", str(tmp_path / "w.pt")])
    assert res.exit_code == 0, res.output
    assert "2 cells computed" in res.output
    with open_run(tmp_path / "run") as ctx:
        assert [m["name"] for m in ctx.store.models()] == ["m"]
        assert ctx.store.cells(status="failed") == []


# ----------------------------------------------------------------------------- memory
def test_the_batch_is_capped_by_the_image_size_and_free_memory():
    gib = 2 ** 30
    assert affordable_batch(256, (32, 32), 8 * gib) == 256     # 786 KB per image
    assert affordable_batch(256, (224, 224), 8 * gib) == 55    # 38.5 MB per image
    assert affordable_batch(256, (224, 224), 16 * 2 ** 20) == 1
    assert affordable_batch(64, (224, 224), None) == 64        # unknown: as asked


def test_a_capped_batch_gives_the_same_rows(tmp_path, monkeypatch, capsys):
    import failmodes.evaluate.plan as plan
    cfg = dict(models={"m": "small_cnn"}, data="synthetic", subset=12,
               stressors=["gaussian_noise"], severities=[2.0], device="cpu", batch_size=256)
    run_evaluation(EvalConfig(**cfg, out=str(tmp_path / "a")), progress="off")
    per_image = 3 * 32 * 32 * 4 * 64
    monkeypatch.setattr(plan, "free_bytes", lambda device: 5 * 4 * per_image)  # fits 5
    run_evaluation(EvalConfig(**cfg, out=str(tmp_path / "b")), progress="off")
    assert "batch: 5 images of 32×32 px per forward pass (asked 256" in capsys.readouterr().err
    with open_run(tmp_path / "a") as a, open_run(tmp_path / "b") as b:
        for ca, cb in zip(a.store.cells(), b.store.cells(), strict=True):
            pa, pb = a.store.predictions(ca, logits=True), b.store.predictions(cb, logits=True)
            np.testing.assert_allclose(pa["logits"], pb["logits"], atol=1e-5)


def test_running_out_of_memory_is_one_line_with_the_fix(tmp_path):
    line = _one_error(_eval_zoo(tmp_path, "m", "RunsOutOfMemory"), EXIT_ENVIRONMENT)
    assert "out of memory on cpu at a batch of 4 images of 32×32 px" in line
    assert "pass --batch-size 1" in line


def test_an_image_size_the_data_does_not_take_is_said(tmp_path, capsys):
    run_evaluation(EvalConfig(models={"m": "small_cnn"}, data="synthetic", subset=4,
                              stressors=["gaussian_noise"], severities=[1.0], device="cpu",
                              image_size=224, out=str(tmp_path / "run")), progress="off")
    assert ("--image-size 224 is not applied to synthetic: its images stay 32×32 px"
            in capsys.readouterr().err)
    with open_run(tmp_path / "run") as ctx:  # 32-px cells, stored under the plain key
        assert {c.dataset for c in ctx.store.cells()} == {"synthetic:test@4"}


def test_another_size_that_changes_the_default_statistics_says_so(folder, tmp_path):
    spec = {"arch": f"{ZOO}:Plain", "num_classes": 2}  # no mean/std: the rule by input size
    cfg = dict(models={"m": spec}, data=str(folder), stressors=["gaussian_noise"],
               severities=[1.0], device="cpu", out=str(tmp_path / "run"))
    run_evaluation(EvalConfig(**cfg), progress="off")  # 32 px: CIFAR-10 statistics
    res = runner.invoke(app, ["evaluate", "--model", f"{ZOO}:Plain", "--num-classes", "2",
                              "--name", "m", "--data", str(folder), "--stressors",
                              "gaussian_noise", "--severities", "1", "--device", "cpu",
                              "--image-size", "224", "--out", str(tmp_path / "run")])
    line = _one_error(res)  # 224 px: ImageNet's, so other weights under the same name
    assert "(differing: mean, std); its normalisation differs" in line and "--mean/--std" in line
