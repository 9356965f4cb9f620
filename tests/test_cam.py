"""Grad-CAM analysis: CAM computation, drift metrics on hand-made maps, the failure rule,
the Adebayo et al. (2018) randomisation sanity check and the analysis end to end."""
import json
import math

import numpy as np
import pytest
import torch

from failmodes.analysis.cam import cam_analysis
from failmodes.analysis.cam._core import CamError, cam_mode, compute_cams, finer_layer, resolve_layer
from failmodes.analysis.cam._measures import (
    border_mask,
    border_share,
    cam_entropy,
    center_of_mass,
    drift_metrics,
    image_drift,
    is_constant,
    overlap,
    raw_mass,
    spearman,
    upsample,
)
from failmodes.analysis.cam.categories import categorize_failure, null_rule, superclass_lookup
from failmodes.analysis.cam.drift import DriftResult, drift_failure_link
from failmodes.analysis.cam.sanity import cascading_randomisation
from failmodes.data import CIFAR10_CLASSES as CIFAR10
from failmodes.data import load_dataset
from failmodes.models import create_model


def _x(ds, n, start=0):
    return ds.images[start:start + n].permute(0, 3, 1, 2).float() / 255


@pytest.fixture(scope="module")
def synth():
    return load_dataset("synthetic", "train"), load_dataset("synthetic", "test")


@pytest.fixture(scope="module")
def trained(synth):
    """small_cnn (width 16) trained ~10 s on 3000 synthetic images: ~80 % test accuracy."""
    train, test = synth
    torch.manual_seed(0)
    m = create_model("small_cnn", class_names=train.classes, width=16)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    x, y = _x(train, 3000), train.labels[:3000]
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 100):
            b = perm[i:i + 100]
            loss = torch.nn.functional.cross_entropy(m(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    with torch.no_grad():
        acc = (m(_x(test, 400)).argmax(1) == test.labels[:400]).float().mean().item()
    assert acc > 0.6, f"fixture model did not learn ({acc:.2f})"
    return m


# ----------------------------------------------------------------------------- computing CAMs
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "scorecam"])
def test_cams_shape_range(trained, synth, method):
    x = _x(synth[1], 3)
    cams = compute_cams(trained, x, method=method)
    assert cams.shape == (3, 32, 32) and cams.dtype == torch.float32
    assert cams.min() >= 0 and cams.max() <= 1
    assert torch.allclose(cams.amax(dim=(1, 2)), torch.ones(3), atol=1e-4)  # min-max scaled


def test_batched_equals_one_by_one(trained, synth):
    x = _x(synth[1], 7)
    t = torch.tensor([0, 3, 5, 1, 9, 2, 2])
    whole = compute_cams(trained, x, t, batch_size=4)
    single = torch.cat([compute_cams(trained, x[i:i + 1], t[i:i + 1]) for i in range(7)])
    assert torch.allclose(whole, single, atol=1e-5)


def test_default_target_is_prediction_and_targets_matter(trained, synth):
    x = _x(synth[1], 8)
    with torch.no_grad():
        pred = trained(x).argmax(1)
    auto, logits = compute_cams(trained, x, return_logits=True)
    assert torch.equal(logits.argmax(1), pred)
    assert torch.allclose(auto, compute_cams(trained, x, pred), atol=1e-6)
    other = compute_cams(trained, x, (pred + 5) % 10)
    assert np.nanmean(spearman(auto, other)) < 0.9  # another class, another map


def test_modes_and_grads_restored(trained, synth):
    m = trained
    m.zero_grad(set_to_none=True)
    m.train()
    m.net.features[0].eval()  # a mixed state: must come back exactly
    p0 = next(m.parameters())
    p0.grad = torch.full_like(p0, 7.0)
    m.net.fc.weight.requires_grad_(False)
    x = _x(synth[1], 2)
    x0 = x.clone()
    try:
        compute_cams(m, x)
        with torch.no_grad():  # callers inside no_grad still get CAMs
            compute_cams(m, x, method="gradcam++")
        assert m.training and m.net.features[1].training and not m.net.features[0].training
        assert torch.equal(p0.grad, torch.full_like(p0, 7.0))
        assert not m.net.fc.weight.requires_grad and p0.requires_grad
        assert m.net.fc.bias.grad is None
        assert torch.equal(x, x0) and not x.requires_grad
    finally:
        m.eval()
        m.net.fc.weight.requires_grad_(True)
        p0.grad = None


def test_cam_mode_restores_on_error(trained):
    trained.train()
    with pytest.raises(RuntimeError):
        with cam_mode(trained):
            assert not trained.training
            raise RuntimeError("boom")
    assert trained.training
    trained.eval()


def test_layer_override_and_errors(trained, synth):
    assert resolve_layer(trained) is trained.net.features[3]
    assert resolve_layer(trained, "features.2") is trained.net.features[2]
    assert resolve_layer(trained, "net.features.2") is trained.net.features[2]
    x = _x(synth[1], 2)
    a = compute_cams(trained, x, layer="features.2")
    assert a.shape == (2, 32, 32)
    with pytest.raises(CamError, match="features"):
        resolve_layer(trained, "layer9")
    with pytest.raises(CamError, match="gradcam"):
        compute_cams(trained, x, method="lime")
    with pytest.raises(CamError, match="targets"):
        compute_cams(trained, x, [1, 2, 3])


def test_every_registry_cifar_model_has_a_cam_layer():
    for name, kw in (("cifar_resnet18", {"width": 4}), ("cifar_densenet121", {"growth": 4}),
                     ("small_cnn", {"width": 4})):
        m = create_model(name, **kw)
        cams = compute_cams(m, torch.rand(2, 3, 32, 32))
        assert cams.shape == (2, 32, 32) and torch.isfinite(cams).all()


# ----------------------------------------------------------------------------- measurements
def _maps():
    border = torch.tensor(border_mask(32, 32), dtype=torch.float32)
    centre = 1 - border
    blob = torch.zeros(32, 32)
    blob[14:18, 10:14] = 1.0  # centre of mass (15.5, 11.5)
    return border, centre, blob


def test_border_share_on_hand_made_maps():
    border, centre, blob = _maps()
    assert border.sum() == 32 * 32 - 16 * 16  # outer 8 px on every side of 32
    s = border_share(torch.stack([border, centre, torch.ones(32, 32), blob]))
    assert np.allclose(s, [1.0, 0.0, 0.75, 0.0])
    ring = torch.zeros(32, 32)
    ring[:3], ring[:, -3:] = 1, 1
    assert border_share(ring[None])[0] == pytest.approx(1.0)
    assert math.isnan(border_share(torch.zeros(1, 32, 32))[0])  # empty map: no share


def test_drift_metrics_on_hand_made_maps():
    _, centre, blob = _maps()
    noise = torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(0))
    ref = torch.stack([blob, centre + 0.1 * noise[0]])
    d = drift_metrics(ref, ref)
    assert np.allclose(d["pearson"], 1) and np.allclose(d["spearman"], 1)
    assert np.allclose(d["com_shift_px"], 0)
    moved = torch.roll(blob, shifts=(3, -4), dims=(0, 1))  # 5 px away
    d = drift_metrics(moved[None], blob[None])
    assert d["com_shift_px"][0] == pytest.approx(5.0)
    assert d["pearson"][0] < 0.1
    assert np.allclose(center_of_mass(blob[None]), [[15.5, 11.5]])
    # Spearman is invariant to monotone rescaling, Pearson is not.
    d = drift_metrics((noise ** 3), noise)
    assert d["spearman"][0] == pytest.approx(1.0) and d["pearson"][0] < 0.99


def test_entropy_and_overlap():
    one = torch.zeros(1, 32, 32)
    one[0, 5, 5] = 1
    assert cam_entropy(one)[0] == pytest.approx(0.0)
    assert cam_entropy(torch.ones(1, 32, 32))[0] == pytest.approx(1.0)
    border, centre, blob = _maps()
    assert overlap(border[None], centre[None])[0] == pytest.approx(0.0)
    assert overlap(blob[None], (3 * blob)[None])[0] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- categories
def test_category_rule_on_crafted_cases():
    sc = superclass_lookup("auto", CIFAR10)
    # Same superclass wins whatever the CAMs say.
    assert categorize_failure("cat", "dog", 0.95, 0.0, sc) == "fine_grained"
    assert categorize_failure("automobile", "truck", 0.2, 0.9, sc) == "fine_grained"
    # auto is the failures analysis's map (animals / vehicles): ship -> airplane is within
    # it; the finer map (mammal, bird, ..., watercraft, aircraft) keeps them apart.
    assert categorize_failure("ship", "airplane", 0.2, 0.9, sc) == "fine_grained"
    fine = superclass_lookup("fine", CIFAR10)
    assert categorize_failure("ship", "airplane", 0.2, 0.9, fine) == "other"
    with pytest.raises(ValueError, match="wordnet"):
        superclass_lookup("wordnet")
    assert superclass_lookup("auto", ["disk", "ring"])("disk") is None  # no map: never fine
    assert superclass_lookup("auto", list(CIFAR10))("deer") == "animals"
    assert fine("deer") == "mammal"
    # The same map as failures' auto, by construction.
    from failmodes.analysis.superclasses import resolve_superclasses
    m = resolve_superclasses(None, list(CIFAR10))
    assert all(sc(c) == m.names[g] for c, g in zip(CIFAR10, m.group_of))
    # Cross-superclass with evidence on the border band; low overlap with the true-class
    # CAM alone is not context unless a caller passes a calibrated overlap threshold.
    assert categorize_failure("ship", "bird", 0.9, 0.8, sc) == "context"
    assert categorize_failure("ship", "bird", 0.3, 0.2, sc) == "other"
    assert categorize_failure("ship", "bird", 0.3, 0.2, sc, overlap_threshold=0.5) == "context"
    # Cross-superclass, on the object, overlapping the true evidence.
    assert categorize_failure("ship", "bird", 0.3, 0.8, sc) == "other"
    # Unknown superclasses never count as fine-grained; NaN statistics fall to other.
    assert categorize_failure("disk", "ring", 0.3, 0.8, lambda n: None) == "other"
    assert categorize_failure("ship", "bird", float("nan"), float("nan"), sc) == "other"


# ----------------------------------------------------------------------------- sanity check
def test_randomised_weights_give_different_cams(trained, synth):
    """Adebayo et al. 2018: a saliency method that survives weight randomisation explains
    the input, not the model. Grad-CAM must not."""
    x = _x(synth[1], 64)
    with torch.no_grad():
        pred = trained(x).argmax(1)
    torch.manual_seed(1)
    rand = create_model("small_cnn", class_names=synth[1].classes, width=16).eval()
    a = compute_cams(trained, x, pred)
    b = compute_cams(rand, x, pred)
    rho_random = np.nanmean(spearman(a, b))
    rho_self = np.nanmean(spearman(a, compute_cams(trained, x, pred)))
    assert rho_self == pytest.approx(1.0)
    assert rho_random < 0.5, rho_random


def test_cascading_randomisation_of_a_trained_model(trained, synth):
    x = _x(synth[1], 32)
    before = [p.clone() for p in trained.parameters()]
    r = cascading_randomisation(trained, x)
    steps = [c["randomised"] for c in r["curve"]]
    assert steps == ["none", "fc", "features.3", "features.2", "features.1", "features.0"]
    assert r["curve"][0]["spearman"] == 1.0 and r["n_images"] == 32
    assert r["passed"] and r["final_spearman"] < 0.5
    assert all(torch.equal(a, b) for a, b in zip(before, trained.parameters()))  # a copy


# ----------------------------------------------------------------------------- raw maps
def test_raw_mass_is_kept_where_min_max_hides_it():
    # A flat 8×8 map with a 2 % bump in its centre 2×2: as evidence it is flat (border share
    # ≈ 0.75, the band's area); min-max scaling makes it look fully focused (share ≈ 0).
    raw = torch.ones(1, 8, 8)
    raw[0, 3:5, 3:5] = 1.02
    mass = upsample(raw, (32, 32))
    assert border_share(mass)[0] == pytest.approx(0.75, abs=0.005)
    assert raw_mass(raw)[0] == pytest.approx(64 + 4 * 0.02)
    scaled = (mass - mass.amin()) / (mass.amax() - mass.amin())
    assert border_share(scaled)[0] < 0.05


def test_constant_maps_are_maximal_drift_and_counted():
    ref = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    cams = ref.clone()
    cams[1] = 0.0          # Grad-CAM's all-negative case
    cams[2] = 0.3          # uniform
    d = drift_metrics(cams, ref)
    assert d["constant"].tolist() == [False, True, True]
    assert np.isnan(d["spearman"][1]) and d["drift"].tolist() == [0.0, 1.0, 1.0]
    assert d["mass_ratio"][1] == 0.0
    assert is_constant(torch.zeros(1, 4, 4))[0] and not is_constant(ref[:1])[0]
    assert image_drift([0.5, -0.3, np.nan], [False, False, False]).tolist() == [0.5, 1.0, 1.0]


def test_finer_layer_for_a_coarse_cifar_resnet():
    m = create_model("cifar_resnet18", width=8).eval()
    x = torch.rand(1, 3, 32, 32)
    name, size = finer_layer(m, x)
    assert (name, size) == ("layer3", (8, 8))            # layer4 gives 4×4
    _, raw = compute_cams(m, x, raw=True)
    assert tuple(raw.shape[-2:]) == (4, 4)
    _, raw3 = compute_cams(m, x, layer=name, raw=True)
    assert tuple(raw3.shape[-2:]) == (8, 8)


def test_the_finer_layer_note_names_the_chosen_layers_size():
    # The note must not present the finer block's 8×8 as the default layer's 4×4.
    from failmodes.analysis.cam import _choose_layer
    from failmodes.analysis.result import AnalysisResult
    from failmodes.data import load_dataset
    m = create_model("cifar_resnet18", width=8).eval()
    result = AnalysisResult("cam")
    assert _choose_layer(result, "r", m, load_dataset("synthetic", "test"), None) \
        == "layer3"
    (note,) = result.notes
    assert "smaller than 8×8" in note and "layer3 (8×8 maps) is used instead" in note


# ----------------------------------------------------------------------------- null of categories
@pytest.mark.parametrize("size", [(4, 4), (8, 8)])
def test_context_category_is_calibrated_against_structureless_maps(size):
    rule = null_rule(size, (32, 32))
    assert rule.null_context_rate <= 0.10 and not rule.uniform_is_context
    # A fresh draw of random maps and uniform maps, through the category rule itself.
    g = torch.Generator().manual_seed(123)
    pred = upsample(torch.rand(500, *size, generator=g), (32, 32))
    true = upsample(torch.rand(500, *size, generator=g), (32, 32))
    bs, ov = border_share(pred), overlap(pred, true)
    kinds = [categorize_failure("ship", "bird", b, o, lambda n: None,
                                border_threshold=rule.border_threshold,
                                overlap_threshold=rule.overlap_threshold)
             for b, o in zip(bs, ov)]
    assert kinds.count("context") / 500 <= 0.10
    flat = torch.ones(1, 32, 32)
    assert categorize_failure("ship", "bird", border_share(flat)[0], overlap(flat, flat)[0],
                              lambda n: None, border_threshold=rule.border_threshold,
                              overlap_threshold=rule.overlap_threshold) == "other"
    # The old fixed rule (border share > 0.75) called about half of random maps context.
    old = [categorize_failure("ship", "bird", b, o, lambda n: None) for b, o in zip(bs, ov)]
    assert old.count("context") / 500 > 0.3


# ----------------------------------------------------------------------------- drift link
def _drift(cells: dict, n: int, labels=None) -> DriftResult:
    labels = np.zeros(n, dtype=int) if labels is None else labels
    r = DriftResult(np.arange(n), labels, labels.copy(),
                    {"entropy": np.full(n, 0.9), "border_share": np.full(n, 0.5),
                     "mass": np.ones(n), "constant": np.zeros(n, bool)})
    for key, (drift, pred) in cells.items():
        r.cells[key] = {"drift": np.asarray(drift, float), "pred": np.asarray(pred),
                        "constant": np.zeros(n, bool),
                        **{m: np.zeros(n) for m in ("pearson", "spearman", "com_shift_px",
                                                    "entropy", "border_share", "mass_ratio")}}
    return r


def test_drift_damage_correlation_is_taken_within_severity():
    # Three corruptions at two severities. Both drift and damage grow with severity (a
    # pooled correlation would be strongly positive), but WITHIN each severity the most
    # drifting corruption loses the least: the within-severity Spearman r is exactly -1.
    n = 10
    drift = {("a", 1.0): 0.1, ("b", 1.0): 0.2, ("c", 1.0): 0.3,
             ("a", 5.0): 0.7, ("b", 5.0): 0.8, ("c", 5.0): 0.9}
    wrong = {("a", 1.0): 3, ("b", 1.0): 2, ("c", 1.0): 1,
             ("a", 5.0): 9, ("b", 5.0): 8, ("c", 5.0): 7}
    cells = {k: (np.full(n, drift[k]), np.where(np.arange(n) < wrong[k], 1, 0)) for k in drift}
    link = drift_failure_link(_drift(cells, n))
    assert link["cells"]["spearman_r"] == pytest.approx(-1.0)
    assert link["cells"]["n_severities_used"] == 2
    # 3! permutations per severity, 36 joint ones; the mean of two r is ±1 only when both
    # are +1 or both -1: 2 of 36, so the permutation p ≈ 2/36 = 0.056.
    assert link["cells"]["p"] == pytest.approx(2 / 36, abs=0.015)
    acc = {("clean", 0.0): 1.0, **{k: 1 - wrong[k] / n for k in drift}}
    assert drift_failure_link(_drift(cells, n), acc)["cells"]["accuracy_source"] == ["store"]


def test_flip_vs_stay_counts_each_image_once():
    # 4 images, 6 corruptions at one severity. Image i flips in cells k <= i (drift 0.9
    # there) and stays right elsewhere (drift 0.2): images 0..3 all do both, each with a
    # positive paired difference (flip − stay within the severity, cells centred first).
    # Pooling (image, cell) pairs would count 1+2+3+4 = 10 flips as independent; per image
    # there are 4 observations, all positive: exact sign-flip p = 2 / 2^4 = 0.125.
    n, cells = 4, {}
    for k in range(6):
        flips = np.arange(n) >= k          # image i flips in cells 0..i
        cells[(f"c{k}", 3.0)] = (np.where(flips, 0.9, 0.2), flips.astype(int))
    link = drift_failure_link(_drift(cells, n))
    i = link["images"]
    assert i["n_images_both"] == 4
    assert i["mean_drift_flip"] == pytest.approx(0.9) and i["mean_drift_stay"] == pytest.approx(0.2)
    assert i["mean_paired_difference"] > 0
    assert i["p"] == pytest.approx(0.125) and "exact" in i["test"]
    # At different severities an image's flip and stay cells are never compared.
    sev = {(("fog", float(k + 1))): v for k, (_, v) in enumerate(cells.items())}
    assert drift_failure_link(_drift(sev, n))["images"]["n_images_both"] == 0


# ----------------------------------------------------------------------------- end to end
def test_cam_analysis_end_to_end(trained, synth, tmp_path):
    from failmodes.models import weights_hash
    from failmodes.store import CellKey, ResultsStore, per_image_rows
    from failmodes.stressors import get_stressor
    test = synth[1].select(torch.arange(300))
    store = ResultsStore(tmp_path / "results.sqlite")
    store.register_model("cnn", spec="small_cnn", arch="small_cnn",
                         weights_hash=weights_hash(trained), class_names=test.classes)
    x = _x(test, 300)
    st = get_stressor("gaussian_noise")
    for name, sev in (("clean", 0.0), ("gaussian_noise", 1.0), ("gaussian_noise", 3.0),
                      ("gaussian_noise", 5.0)):
        xs = x if name == "clean" else st(x, sev, seed=0, indices=test.indices)
        with torch.no_grad():
            logits = trained(xs)
        store.write_cell(CellKey("cnn", "synthetic:test", name, sev, 0),
                         per_image_rows(logits, test.labels, test.indices))
    # Cells of another data set (official CIFAR-10-C, validation) must stay out.
    wrong = per_image_rows(torch.zeros(300, 10), (test.labels + 1) % 10, test.indices)
    store.write_cell(CellKey("cnn", "cifar10c-official:test", "gaussian_noise", 2.0, 0), wrong)
    res = cam_analysis(store, lambda name: trained, test, tmp_path / "analysis", sample=40,
                       failures_per_cell=4, confidence_threshold=0.5, dataset_key="synthetic:test")
    saved = json.loads((tmp_path / "analysis" / "cam.json").read_text())
    # The attention claims read the saved per-image values back from the run folder.
    from failmodes.analysis.claims import RunEvidence, check_claims, parse_claims
    ev = RunEvidence(tmp_path)
    try:
        cell = ev.cam_cell("cnn", "gaussian_noise", 5.0)
        assert set(cell) == {"clean", "shifted", "null", "peak_clean", "peak_shifted"}
        assert all(len(v) == 40 for v in cell.values())
        raw = [{"cam_drift": "background", "model": "cnn", "severity": 5},
               {"cam_localisation": "weakens", "model": "cnn", "severity": 5}]
        for v in check_claims(parse_claims(raw, models={"cnn"}), ev):
            assert v.verdict in ("supported", "contradicted", "inconclusive")
            assert v.evidence["n_maps"] == 40 and v.stressors == ["gaussian_noise"]
            assert "shifted maps all-zero" in v.reason
    finally:
        ev.close()
    m = saved["data"]["models"]["cnn"]
    assert len(m["sample_indices"]) == 40
    c = m["drift"]["gaussian_noise"]
    assert c["severity"] == [0.0, 1.0, 3.0, 5.0] and c["spearman"][0] == 1.0
    assert c["drift"][0] == 0.0 and c["drift"][3] > c["drift"][1]  # more noise, more drift
    assert m["link"]["cells"]["n"] == 3 and m["link"]["cells"]["accuracy_source"] == ["store"]
    assert m["largest_drift_stressor"] == "gaussian_noise"
    assert m["prediction_reproduced"] == 1.0  # the store's failures were rebuilt exactly
    types = m["failure_types"]
    for g in types.values():
        assert g["fine_grained"] + g["context"] + g["other"] == g["n_categorised"]
        assert g["fine_grained"] == 0  # synthetic classes have no superclass
    assert {r["group"] for r in saved["tables"]["cam_failure_types"]} >= {"noise", "all_corrupted"}
    assert all(r["null_context_rate"] <= 0.10 for r in saved["tables"]["cam_failure_types"])
    assert m["map_size"] == [8, 8] and m["layer"] is None      # small_cnn's maps are 8×8
    # The sanity check ran on this model, and the report gets its curve and verdict.
    assert res.per_model["cnn"]["sanity_passed"] is True
    assert [r["step"] for r in res.tables["cam_sanity"]][:2] == [0, 1]
    assert any("randomisation sanity check" in n and "passed" in n for n in res.notes)
    for f in res.figures:
        assert (tmp_path / "analysis" / f.path).stat().st_size > 1000
    assert len(res.figures) == 4 and "figures/cam_sanity.png" in [f.path for f in res.figures]
    # The explorer's thumbnails come from the same drift pass: clean + 3 levels, 40 images.
    z = np.load(tmp_path / "analysis" / "cam_maps.npz")
    assert z["maps"].shape == (1, 4, 40, 8, 8) and z["present"].all()
    assert list(z["indices"]) == m["sample_indices"]
    with pytest.raises(CamError, match="nope"):
        cam_analysis(store, lambda name: trained, test, tmp_path / "o2", models=["nope"])


def test_cli_cam_help_lists_every_method_and_rejects_bad_options(tmp_path):
    from typer.testing import CliRunner

    from failmodes.analysis.cam._core import METHODS
    from failmodes.cli import app
    runner = CliRunner()
    res = runner.invoke(app, ["cam", "--help"])
    assert res.exit_code == 0
    for m in METHODS:
        assert m in res.output
    res = runner.invoke(app, ["cam", str(tmp_path), "--method", "lime"])
    assert res.exit_code == 2 and "gradcam++" in res.output


def test_failure_gallery_is_varied():
    from failmodes.analysis.cam.explain import gallery
    ex = [{"stressor": s, "idx": i, "conf": c}
          for s, i, c in [("fog", 7, 0.99), ("fog", 7, 0.98), ("fog", 8, 0.97),
                          ("snow", 7, 0.96), ("snow", 9, 0.95), ("clean", 1, 0.91),
                          ("clean", 2, 0.90)]]
    # Clean first; then one per stressor, never an image twice.
    assert [(e["stressor"], e["idx"]) for e in gallery(ex, clean_rows=1)] == \
        [("clean", 1), ("fog", 7), ("snow", 9)]
    assert len(gallery(ex, rows=2)) == 2
