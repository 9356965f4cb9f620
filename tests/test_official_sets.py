"""A released ImageNet-C-layout tree as the official cells of an evaluation: stored apart,
compared per cell with the on-the-fly cells; with the JPEG q85 finish both see the very
same pixels, so the comparison must come out exactly zero."""
import dataclasses

import pytest
import torch
from PIL import Image

from failmodes.data import imagenet_wnids, load_dataset
from failmodes.evaluate import EvalConfig, EvalError, run_evaluation
from failmodes.store import ResultsStore, RunFolder, cell_images


@pytest.fixture()
def imagenet_and_c(tmp_path):
    import skimage.data

    from failmodes.stressors.tree import write_corrupted_tree
    for wnid, img in (("n02124075", skimage.data.chelsea()), ("n07920052", skimage.data.coffee())):
        (tmp_path / "val" / wnid).mkdir(parents=True)
        Image.fromarray(img).save(tmp_path / "val" / wnid / "photo.png")
    ds = load_dataset(f"imagenet:{tmp_path}")
    write_corrupted_tree(ds, tmp_path / "imagenet-c", ["fog", "impulse_noise"], [1, 2],
                         imagenet_wnids(), seed=0)
    return tmp_path


def _cfg(root, out, **kw):
    return EvalConfig(models=["small_cnn"], data=f"imagenet:{root}",
                      stressors=["fog", "impulse_noise"],
                      severities=[1, 2], official=f"imagenetc:{root / 'imagenet-c'}",
                      device="cpu", batch_size=8, out=str(out), **kw)


def test_imagenetc_official_cells_match_finished_on_the_fly_cells(imagenet_and_c, tmp_path):
    from failmodes.analysis.metrics import compute_metrics
    out = tmp_path / "run"
    summary = run_evaluation(_cfg(imagenet_and_c, out, finish="jpeg85"), progress=False)
    assert summary.failed == []
    with ResultsStore(RunFolder(out).store, readonly=True) as store:
        datasets = {c.dataset for c in store.cells()}
        assert datasets == {"imagenet+jpeg85:test", "imagenetc-official:test"}
        t = compute_metrics(store)
        fog2 = store.cells(stressor="fog", dataset="imagenet+jpeg85:test")
        fog2 = [c for c in fog2 if c.severity == 2][0]
    assert len(t["official"]) == 4
    assert all(r["difference"] == 0.0 for r in t["official"])  # same pixels, same logits
    assert {r["official"] for r in t["official"]} == {"imagenetc-official:test"}
    # The stored cell's images can be rebuilt, finish included: equal to the released files.
    x = cell_images(out, fog2, [0, 1])
    official = load_dataset(f"imagenetc:{imagenet_and_c / 'imagenet-c'}", "fog-2")
    assert torch.equal((x * 255).round().to(torch.uint8).permute(0, 2, 3, 1), official.images)


def test_official_set_errors_are_one_line(imagenet_and_c, tmp_path):
    with pytest.raises(EvalError, match=r"has no snow/<severity>/ folders"):
        run_evaluation(dataclasses.replace(_cfg(imagenet_and_c, tmp_path / "r1"),
                                           stressors=["snow"]), progress=False)
    with pytest.raises(EvalError, match="not a released corrupted set"):
        run_evaluation(EvalConfig(models=["small_cnn"], data="synthetic", stressors=["fog"],
                                  official="synthetic", out=str(tmp_path / "r2")), progress=False)
    with pytest.raises(EvalError, match="--finish: unknown finish 'png'"):
        run_evaluation(EvalConfig(models=["small_cnn"], data="synthetic", stressors=["fog"],
                                  finish="png", out=str(tmp_path / "r3")), progress=False)


def test_cli_help_lists_every_data_spec():
    from failmodes.cli import DATA_HELP
    from failmodes.data import list_data_specs
    assert all(k.name in DATA_HELP for k in list_data_specs())


def test_study_file_names_the_official_set_and_finish(imagenet_and_c, tmp_path, monkeypatch):
    from failmodes.study import load_study
    from failmodes.study.runner import eval_config
    monkeypatch.chdir(imagenet_and_c)
    (tmp_path / "s.yaml").write_text(
        "name: s\ndata: imagenet:.\nofficial: imagenetc:imagenet-c\nfinish: jpeg85\n"
        "image_size: 160\nmodels: [{name: m, arch: small_cnn}]\nsuites: []\n"
        "stressors: [fog]\nseverities: [1, 2]\n")
    cfg = load_study(tmp_path / "s.yaml")
    ec = eval_config(cfg, {"m": tmp_path / "m.pt"}, tmp_path / "out")
    assert ec.data == f"imagenet:{imagenet_and_c}"
    assert ec.official == f"imagenetc:{imagenet_and_c / 'imagenet-c'}"
    assert (ec.finish, ec.image_size) == ("jpeg85", 160)


def test_subset_of_official_cells_decodes_and_pairs_the_same_images(imagenet_and_c, tmp_path):
    from failmodes.analysis.metrics import compute_metrics
    out = tmp_path / "run"
    cfg = dataclasses.replace(_cfg(imagenet_and_c, out, finish="jpeg85"), subset=1,
                              stressors=["fog"], severities=[2])
    assert run_evaluation(cfg, progress=False).failed == []
    with ResultsStore(RunFolder(out).store, readonly=True) as store:
        assert {c.dataset for c in store.cells()} == {"imagenet+jpeg85:test@1",
                                                       "imagenetc-official:test@1"}
        t = compute_metrics(store)
        off = next(c for c in store.cells() if c.dataset.startswith("imagenetc-official"))
        fly = next(c for c in store.cells()
                   if c.dataset.startswith("imagenet+") and c.stressor == "fog")
    assert [r["difference"] for r in t["official"]] == [0.0]
    idx = load_dataset(f"imagenet:{imagenet_and_c}").subset(1, seed=42).indices.tolist()
    assert torch.equal(cell_images(out, off, idx), cell_images(out, fly, idx))
