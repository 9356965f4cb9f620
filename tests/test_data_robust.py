"""Issue 35, data: a class folder whose name is not UTF-8 gets a stable escaped class name
and the run goes through evaluate, analyze and report (again and again); a symlink loop in
a class folder skips that entry only; ``hf:...?label=image`` is refused before any value is
read; ``--subset N`` of a folder decodes only N images (the same ones a full load would
keep); ``corrupt --out`` equal to or inside its input folder is refused."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from failmodes.cli import app
from failmodes.data import DataError, load_dataset, load_imagefolder
from failmodes.data import folders as folders_mod
from failmodes.data.folders import display_name, folder_files
from failmodes.errors import EXIT_USAGE


def _folder(root, classes: list[bytes], n: int = 6, size: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    for c in classes:
        d = os.path.join(os.fsencode(str(root)), c)
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                os.path.join(d, b"%02d.png" % i))
    return root


def test_a_class_folder_that_is_not_utf8_gets_a_stable_escaped_name(tmp_path):
    root = _folder(tmp_path / "data", [b"caf\xe9", b"dog"])
    ds = load_imagefolder(root, "test", use_cache=False)
    assert ds.classes == ["caf\\xe9", "dog"] and len(ds) == 12
    assert load_imagefolder(root, "test").classes == ds.classes          # the same every load
    assert display_name(os.fsdecode(b"caf\xe9")) == "caf\\xe9"
    assert folder_files(root, "test")[0] == "caf\\xe9/00.png"
    "".join(ds.classes).encode("utf-8")                                   # storable as text


def test_a_non_utf8_class_runs_through_evaluate_analyze_and_report_twice(tmp_path):
    from failmodes.analysis.analyze import analyze_run
    from failmodes.evaluate import EvalConfig, run_evaluation
    from failmodes.report import render_report
    root = _folder(tmp_path / "data", [b"caf\xe9", b"d\xffg"], n=4)
    run = tmp_path / "run"
    summary = run_evaluation(EvalConfig(models={"m": {"arch": "small_cnn", "num_classes": 2}},
                                        data=str(root), stressors=["fog"], severities=[1],
                                        out=str(run), device="cpu"))
    assert summary.failed == [] and summary.computed == 2
    for _ in range(2):   # "analyze and report fail forever after": a second round too
        analyze_run(run)
        report = render_report(run)
        text = report.read_text(encoding="utf-8")
        assert "caf\\xe9" in text


def test_a_symlink_loop_in_a_class_folder_skips_that_entry_with_a_warning(tmp_path, caplog):
    root = _folder(tmp_path / "data", [b"cat", b"dog"], n=3)
    cat = root / "cat"
    os.symlink("b.png", cat / "a.png")
    os.symlink("a.png", cat / "b.png")     # a.png -> b.png -> a.png
    with caplog.at_level(logging.WARNING, logger="failmodes.data"):
        ds = load_imagefolder(root, "test", use_cache=False)
    assert len(ds) == 6 and ds.classes == ["cat", "dog"]
    assert "a.png" in caplog.text and "cannot be followed" in caplog.text


def test_hf_label_must_be_a_class_label_column(tmp_path):
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)) for _ in range(4)]
    feats = datasets.Features({"image": datasets.Image(), "fine": datasets.ClassLabel(
        names=["a", "b"]), "caption": datasets.Value("string")})
    datasets.Dataset.from_dict({"image": imgs, "fine": [0, 1, 0, 1], "caption": list("wxyz")},
                               features=feats).save_to_disk(str(tmp_path / "hf"))
    with pytest.raises(DataError, match="'image' is the image column"):
        load_dataset(f"hf:{tmp_path / 'hf'}?label=image")
    with pytest.raises(DataError, match=r"'caption' holds Value\(string\), not class labels"):
        load_dataset(f"hf:{tmp_path / 'hf'}?label=caption")
    res = CliRunner().invoke(app, ["evaluate", "--model", "small_cnn", "--data",
                                   f"hf:{tmp_path / 'hf'}?label=image", "--out",
                                   str(tmp_path / "run")])
    assert res.exit_code == EXIT_USAGE
    assert res.output.strip().splitlines()[-1].startswith("error: ")
    assert load_dataset(f"hf:{tmp_path / 'hf'}?label=fine").classes == ["a", "b"]


def test_a_folder_subset_decodes_only_the_images_it_keeps(tmp_path, monkeypatch):
    root = _folder(tmp_path / "data", [b"a", b"b", b"c"], n=20)      # 60 images
    full = load_dataset(str(root))
    calls = []
    real = folders_mod.decode_image

    def counting(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)
    monkeypatch.setattr(folders_mod, "decode_image", counting)
    part = load_dataset(str(root), subset=12)
    assert len(calls) == 12                                          # not 60
    expected = full.subset(12)
    assert torch.equal(part.images, expected.images)
    assert torch.equal(part.labels, expected.labels)
    assert torch.equal(part.indices, expected.indices)
    assert part.full_size == 60 and part.labels.bincount().tolist() == [4, 4, 4]
    # a spec that cannot pick before decoding gives the same subset of its full load
    syn = load_dataset("synthetic", subset=100)
    assert torch.equal(syn.indices, load_dataset("synthetic").subset(100).indices)
    assert syn.full_size == 2000


@pytest.mark.parametrize("out", [".", "sub", "sub/deeper", "../data"])
def test_corrupt_out_equal_to_or_inside_its_input_is_refused(tmp_path, monkeypatch, out):
    data = _folder(tmp_path / "data", [b"a"], n=2)
    monkeypatch.chdir(data)
    before = sorted(p.name for p in data.rglob("*"))
    res = CliRunner().invoke(app, ["corrupt", ".", "--stressor", "fog", "--out", out])
    assert res.exit_code == EXIT_USAGE
    line, = res.output.strip().splitlines()
    assert line.startswith("error: --out") and "input folder" in line
    assert sorted(p.name for p in data.rglob("*")) == before


def test_evaluate_with_subset_on_a_folder_decodes_only_the_subset(tmp_path, monkeypatch):
    from failmodes.evaluate import EvalConfig, run_evaluation
    from failmodes.evaluate.inputs import _load_full
    from failmodes.store import ResultsStore
    root = _folder(tmp_path / "data", [b"a", b"b"], n=30)            # 60 images
    calls = []
    real = folders_mod.decode_image
    monkeypatch.setattr(folders_mod, "decode_image",
                        lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    _load_full.cache_clear()
    s = run_evaluation(EvalConfig(models={"m": {"arch": "small_cnn", "num_classes": 2}},
                                  data=str(root), subset=10, stressors=["fog"], severities=[1],
                                  out=str(tmp_path / "run"), device="cpu"))
    assert s.failed == [] and len(calls) == 10
    with ResultsStore(tmp_path / "run" / "results.sqlite", readonly=True) as st:
        assert {c.dataset for c in st.cells()} == {"data:test@10"}      # the key as before
