"""Failures analysis on crafted stores: high-confidence failures, cases, confusions,
superclasses, galleries."""
import json
from collections import Counter

import numpy as np
import pytest
import torch
from synthetic_store import CIFAR10, write_store

from failmodes.analysis import get_analysis
from failmodes.analysis.failures import cell_images, failures
from failmodes.analysis.superclasses import (
    SuperclassError,
    builtin_map,
    load_superclasses,
    resolve_superclasses,
)
from failmodes.store import ResultsStore

CAT, DOG, SHIP, AIRPLANE, BIRD = 3, 5, 8, 0, 2
CONFUSIONS = {CAT: DOG, DOG: CAT, SHIP: AIRPLANE, BIRD: AIRPLANE}
ANIMALS = {2, 3, 4, 5, 6, 7}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    # clean errors are confident (0.97), noise errors are not (0.6)
    write_store(d / "results.sqlite",
                {"gaussian_noise": {1.0: 0.7, 3.0: 0.5}},
                n=500, confusions=CONFUSIONS, conf_wrong={"clean": 0.97, "gaussian_noise": 0.6},
                classes=CIFAR10).close()
    (d / "config.json").write_text(json.dumps({"config": {"data": "synthetic", "split": "test"}}))
    return d


@pytest.fixture(scope="module")
def result(run_dir, tmp_path_factory):
    return failures(run_dir, tmp_path_factory.mktemp("out"), confidence_threshold=0.9)


def _reference(run_dir):
    """Slow obvious counts straight from the store."""
    out = {}
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as st:
        for cell in st.cells():
            p = st.predictions(cell)
            pairs = Counter((int(t), int(q)) for t, q in zip(p["label"], p["pred"]) if t != q)
            within = sum(((t in ANIMALS) == (q in ANIMALS)) * c for (t, q), c in pairs.items())
            out[(cell.stressor, cell.severity)] = (p, pairs, within)
    return out


def test_high_confidence_counts(result, run_dir):
    rows = {(r["stressor"], r["severity"]): r for r in result.tables["cells"]}
    clean = rows[("clean", 0.0)]
    assert clean["n"] == 500 and clean["n_errors"] == 50
    assert clean["n_hc_failures"] == 50 and clean["hc_rate"] == pytest.approx(0.1)
    assert clean["hc_share_of_errors"] == 1.0
    noisy = rows[("gaussian_noise", 3.0)]
    assert noisy["n_errors"] == 250 and noisy["n_hc_failures"] == 0
    s = result.per_model["m"]
    assert s["clean_hc_count"] == 50 and s["shifted_hc_count"] == 0
    assert result.params["confidence_threshold"] == 0.9
    (per_model,) = result.tables["models"]     # one row per model, for the report
    assert per_model["model"] == "m" and per_model["clean_hc_rate"] == pytest.approx(0.1)
    assert get_analysis("failures").order == 30


def test_threshold_above_confidence_finds_none(run_dir, tmp_path):
    res = failures(run_dir, tmp_path, confidence_threshold=0.99, gallery=False)
    assert res.per_model["m"]["clean_hc_count"] == 0 and res.data["cases"] == []
    with pytest.raises(ValueError, match="threshold"):
        failures(run_dir, tmp_path, confidence_threshold=1.5)


def test_case_records(result, run_dir):
    cases = result.data["cases"]
    assert len(cases) == 50          # every clean hc failure; noise has none
    ref = _reference(run_dir)[("clean", 0.0)][0]
    for c in cases:
        i = int(np.searchsorted(ref["idx"], c["dataset_index"]))
        assert c["true"]["id"] == ref["label"][i] and c["predicted"]["id"] == ref["pred"][i]
        assert c["predicted"]["id"] == CONFUSIONS.get(c["true"]["id"], (c["true"]["id"] + 1) % 10)
        assert c["confidence"] == pytest.approx(0.97, abs=0.01) and c["confidence"] > 0.9
        assert c["top3"][0]["id"] == c["predicted"]["id"]
        assert c["top3"][0]["prob"] == pytest.approx(c["confidence"], abs=1e-5)
        assert sum(t["prob"] for t in c["top3"]) <= 1 + 1e-6
        assert c["case_id"].endswith(f"/{c['dataset_index']}") and c["cell"]["stressor"] == "clean"
    assert [c["confidence"] for c in cases] == sorted((c["confidence"] for c in cases), reverse=True)


def test_confusion_pairs_match_reference(result, run_dir):
    ref = _reference(run_dir)
    clean_pairs = ref[("clean", 0.0)][1]
    got = [p for p in result.tables["confusion_pairs"] if p["group"] == "clean"]
    expect = sorted(clean_pairs.items(), key=lambda kv: -kv[1])
    assert got[0]["count"] == expect[0][1]
    for p in got:
        t, q = CIFAR10.index(p["true"]), CIFAR10.index(p["predicted"])
        assert p["count"] == clean_pairs[(t, q)] and p["reverse_count"] == clean_pairs[(q, t)]
    # the noise family pools both severities
    noise = [p for p in result.tables["confusion_pairs"] if p["group"] == "noise"]
    pooled = ref[("gaussian_noise", 1.0)][1] + ref[("gaussian_noise", 3.0)][1]
    assert noise[0]["count"] == max(pooled.values())
    mats = {m["group"]: np.array(m["counts"]) for m in result.data["confusion_matrices"]}
    assert list(mats) == ["clean", "noise"] and mats["noise"].sum() == 1000
    pc = {(r["group"], r["class"]): r["accuracy"] for r in result.tables["per_class_accuracy"]}
    lab, pred = ref[("clean", 0.0)][0]["label"], ref[("clean", 0.0)][0]["pred"]
    assert pc[("clean", "cat")] == pytest.approx(np.mean(pred[lab == CAT] == CAT))


def test_superclass_levels(result, run_dir):
    ref = _reference(run_dir)
    for r in result.tables["cells"]:
        p, pairs, within = ref[(r["stressor"], r["severity"])]
        ne = sum(pairs.values())
        assert r["errors_within_superclass"] == pytest.approx(within / ne)
        assert r["superclass_accuracy"] == pytest.approx(r["accuracy"] + within / 500)
    assert result.per_model["m"]["superclass_map"] == "built-in cifar10"


def test_figures_and_gallery(result, run_dir):
    paths = [f.path for f in result.figures]
    assert "figures/confusion_m.png" in paths and "figures/per_class_m.png" in paths
    assert "figures/gallery_clean_m.png" in paths   # noise cells have no confident failures
    assert not any("no clean failure gallery" in n for n in result.notes)


def test_cell_images_recreate_the_evaluated_inputs(run_dir):
    from failmodes.data import load_dataset
    from failmodes.stressors import get_stressor
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as st:
        clean, noisy = st.cells(stressor="clean")[0], st.cells(stressor="gaussian_noise")[1]
    ds = load_dataset("synthetic", "test")
    idx = [4, 17, 250]
    x = ds.images[idx].permute(0, 3, 1, 2).float() / 255
    assert torch.equal(cell_images(run_dir, clean, idx), x)
    y = get_stressor("gaussian_noise")(x, 3.0, seed=0, indices=torch.tensor(idx))
    assert torch.equal(cell_images(run_dir, noisy, idx), y)


def test_missing_config_skips_gallery_with_a_note(tmp_path):
    write_store(tmp_path / "results.sqlite", {}, n=100, conf_wrong=0.99).close()
    res = failures(tmp_path, tmp_path / "out")
    assert any("no clean failure gallery" in n and "config.json" in n for n in res.notes)
    assert res.per_model["m"]["clean_hc_count"] == 10


def test_superclass_yaml_and_builtins(tmp_path):
    f = tmp_path / "sc.yaml"
    f.write_text("pets: [cat, dog]\nrest: ['0-2', 4]\n")
    m = load_superclasses(f, CIFAR10)
    assert m.names == ["pets", "rest"]
    assert m.group_of.tolist() == [1, 1, 1, 0, 1, 0, -1, -1, -1, -1]
    assert len(set(m.singleton_groups().tolist())) == 2 + 4
    f.write_text("pets: [cat, wolf]\n")
    with pytest.raises(SuperclassError, match="'wolf' is not a class"):
        load_superclasses(f, CIFAR10)
    f.write_text("a: [cat]\nb: [3]\n")
    with pytest.raises(SuperclassError, match="in both"):
        load_superclasses(f, CIFAR10)
    with pytest.raises(SuperclassError, match="not found"):
        load_superclasses(tmp_path / "nope.yaml", CIFAR10)
    names = [f"c{i}" for i in range(1000)]
    im = resolve_superclasses(None, names)
    g = {n: int((im.group_of == i).sum()) for i, n in enumerate(im.names)}
    assert g["dogs"] == 118 and g["cats"] == 5 and g["big_cats"] == 8 and g["birds"] == 59
    assert im.group_of[151] == im.group_of[268] == im.names.index("dogs")
    assert resolve_superclasses(None, ["a", "b"]) is None
    assert resolve_superclasses("none", CIFAR10) is None
    assert builtin_map("cifar10", CIFAR10).names == ["animals", "vehicles"]


def test_validation_clean_cells_stay_apart(tmp_path):
    db = tmp_path / "results.sqlite"
    write_store(db, {}, n=100, dataset="synthetic:test", conf_wrong=0.5).close()
    write_store(db, {}, n=100, dataset="synthetic:train-val@100", conf_wrong=0.99).close()
    res = failures(tmp_path, tmp_path / "out", gallery=False)
    assert res.per_model["m"]["clean_hc_count"] == 0           # only the test split's clean cell
    groups = {m["group"] for m in res.data["confusion_matrices"]}
    assert groups == {"clean", "clean (val)"}
    assert not any(p["group"] == "all shifted" for p in res.tables["confusion_pairs"])


def test_gallery_picks_cap_each_shifted_cell():
    from failmodes.analysis.failures import GALLERY_PER_CELL, GALLERY_SIZE, _gallery_picks
    # cell 1 is clean; cells 2..4 are shifted; cell 2 holds the 30 most confident failures;
    # candidates are (confidence, cell id, row, dataset index)
    cands = [(0.999 - 1e-4 * i, 2, i, i) for i in range(30)]
    cands += [(0.95, 3, i, i) for i in range(5)] + [(0.94, 4, i, 100 + i) for i in range(5)]
    cands += [(0.93, 1, i, i) for i in range(40)]
    g = _gallery_picks(cands, clean_ids={1})
    assert len(g["clean"]) == GALLERY_SIZE and all(cid == 1 for cid, _ in g["clean"])
    per_cell = Counter(cid for cid, _ in g["shifted"])
    assert per_cell == {2: GALLERY_PER_CELL, 3: GALLERY_PER_CELL, 4: GALLERY_PER_CELL}
    assert g["shifted"][0] == (2, 0)       # the most confident first
    # each image once: cell 3's rows 0 and 1 are images cell 2 already shows
    assert [i for cid, i in g["shifted"] if cid == 3] == [2, 3]


def test_sink_class_is_reported(tmp_path):
    frog = CIFAR10.index("frog")
    to_frog = {k: frog for k in range(10) if k != frog}
    write_store(tmp_path / "results.sqlite", {"gaussian_noise": {5.0: 0.2}}, n=300,
                confusions=to_frog).close()
    res = failures(tmp_path, tmp_path / "out", gallery=False)
    noisy = next(r for r in res.tables["cells"] if r["stressor"] == "gaussian_noise")
    assert noisy["most_predicted"] == "frog" and noisy["most_predicted_share"] >= 0.7
    assert res.per_model["m"]["sink_classes"] == "frog"
    sink = res.per_model["m"]["largest_sink"]
    assert sink.startswith("frog 7") and sink.endswith("under gaussian_noise 5")
    assert any("sink class 'frog'" in n for n in res.notes)


def test_family_confusions_pool_integer_levels_only(tmp_path):
    write_store(tmp_path / "results.sqlite",
                {"gaussian_noise": {1.0: 0.7, 1.5: 0.6, 2.0: 0.5}}, n=100).close()
    res = failures(tmp_path, tmp_path / "out", gallery=False)
    mats = {m["group"]: np.array(m["counts"]) for m in res.data["confusion_matrices"]}
    assert mats["noise"].sum() == 200                      # severities 1 and 2, not 1.5
    assert len([r for r in res.tables["cells"] if r["stressor"] == "gaussian_noise"]) == 3

