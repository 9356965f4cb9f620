"""Single-image probes with a small random CNN (fast) and, once, efficientnet_lite0."""
import json

import numpy as np
import pytest
import torch

from failmodes.analysis.probe import ProbeError, fit_to_input, probe
from failmodes.models import create_model
from failmodes.ranges import RangeError, parse_values
from failmodes.stressors import StressorError


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return create_model("small_cnn", width=8).eval()


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)


def test_parse_values():
    assert parse_values("-180:180:15") == [float(a) for a in range(-180, 181, 15)]
    assert parse_values("0:1.8:0.2")[-1] == 1.8 and len(parse_values("0:1.8:0.2")) == 10
    assert parse_values("0,0.5, 2") == [0.0, 0.5, 2.0]
    assert parse_values([1, 2]) == [1.0, 2.0]
    for bad in ("0:1", "1:0:1", "0:1:0", "a,b", ""):
        with pytest.raises(RangeError, match="values"):
            parse_values(bad)


def test_fit_to_input_resizes_and_centre_crops():
    img = np.zeros((32, 64, 3), np.uint8)
    img[:, :16, 0] = 255                     # a red band in the left quarter
    x, note = fit_to_input(img, 32)
    assert x.shape == (1, 3, 32, 32) and x[0, 0].max() == 0  # the band is cropped away
    assert "centre crop 32×32" in note and "64×32" in note
    big = np.full((300, 451, 3), 128, np.uint8)
    x, note = fit_to_input(big, 224)
    assert x.shape == (1, 3, 224, 224) and torch.allclose(x, torch.full_like(x, 128 / 255))
    same = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x, note = fit_to_input(same, 32)
    assert "not resized" in note
    assert torch.equal(x[0], torch.from_numpy(same).permute(2, 0, 1).float() / 255)


def test_probe_rows_and_outputs(cnn, image, tmp_path):
    r = probe(image, cnn, "gaussian_noise", "0:5:1", out_dir=tmp_path)
    assert r["values"] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and len(r["rows"]) == 6
    # value 0 is the identity: its prediction is the clean one, the target is its top-1
    assert r["rows"][0]["top1"]["id"] == r["target"]["id"] == r["clean_top5"][0]["id"]
    assert r["rows"][0]["p_target"] == pytest.approx(r["target"]["clean_prob"], abs=1e-6)
    assert r["target"]["chosen_as"] == "clean top-1"
    for row in r["rows"]:
        p = [t["prob"] for t in row["top5"]]
        assert p == sorted(p, reverse=True) and sum(p) <= 1 + 1e-6 and len(p) == 5
        assert row["top1"] == row["top5"][0]
        assert row["p_target_superclass"] is None     # class_0..9: no superclass map
    assert "centre crop 32×32" in r["image"]["resize"] and "CIFAR-10-C" in r["space"]
    saved = json.loads((tmp_path / "probe_gaussian_noise.json").read_text())
    assert saved["values"] == r["values"]
    for f in r["figures"]:
        assert (tmp_path / f["path"]).stat().st_size > 1000
    # the same probe twice gives the same numbers (seeded stressor)
    again = probe(image, cnn, "gaussian_noise", "0:5:1")
    assert [x["p_target"] for x in again["rows"]] == [x["p_target"] for x in r["rows"]]


def test_probe_label_and_errors(cnn, image):
    r = probe(image, cnn, "gaussian_noise", [0, 3], label="class_4")
    assert r["target"]["id"] == 4 and r["target"]["chosen_as"] == "given label"
    assert probe(image, cnn, "gaussian_noise", [0], label=4)["target"]["name"] == "class_4"
    with pytest.raises(ProbeError, match="outside 0..9"):
        probe(image, cnn, "gaussian_noise", [0], label=12)
    with pytest.raises(ProbeError, match="not a class"):
        probe(image, cnn, "gaussian_noise", [0], label="wolf")
    with pytest.raises(StressorError, match="outside"):
        probe(image, cnn, "gaussian_noise", [0, 6])
    with pytest.raises(ProbeError, match="only applies"):
        probe(image, cnn, "gaussian_noise", [0], space="pixel")
    with pytest.raises(ProbeError, match="not found"):
        probe("/nonexistent.png", cnn, "gaussian_noise", [0])
    cnn.train()
    try:
        with pytest.raises(ProbeError, match="eval mode"):
            probe(image, cnn, "gaussian_noise", [0])
    finally:
        cnn.eval()


def test_rotation_probe_identity_and_symmetry(cnn):
    img = np.zeros((32, 32, 3), np.uint8)
    img[8:24, 8:24] = 200
    r = probe(img, cnn, "rotation", "-180:180:90")
    p = {row["value"]: row["p_target"] for row in r["rows"]}
    assert p[0.0] == pytest.approx(r["target"]["clean_prob"], abs=1e-6)
    # a centred square is invariant to 90° turns (up to resampling)
    assert p[90.0] == pytest.approx(p[0.0], abs=0.02) and p[-180.0] == pytest.approx(p[180.0], abs=0.02)


def test_space_picks_the_noise_sweep(cnn, image):
    a = probe(image, cnn, "gaussian_noise_std", [0, 0.2], space="normalized")
    assert a["stressor"] == "gaussian_noise_std_normalized" and "normalised" in a["space"]
    b = probe(image, cnn, "gaussian_noise_std_normalized", [0, 0.2], space="pixel")
    assert b["stressor"] == "gaussian_noise_std" and "pixel" in b["space"]


def test_chelsea_is_an_egyptian_cat_with_efficientnet_lite0():
    pytest.importorskip("efficientnet_lite_pytorch")
    r = probe("skimage:chelsea", "efficientnet_lite0", "gaussian_noise", [0, 5], device="cpu")
    assert r["target"]["name"] == "Egyptian cat" and r["target"]["id"] == 285
    assert r["clean_top5"][0]["superclass"] == "cats" and r["target"]["superclass"] == "cats"
    for row in r["rows"]:   # p(any domestic cat) ≥ p(Egyptian cat)
        assert row["p_target_superclass"] >= row["p_target"] - 1e-6
    assert r["rows"][1]["p_target"] < r["rows"][0]["p_target"]   # severity-5 noise hurts
    assert r["image"]["size"] == [451, 300] and "shorter side to 224" in r["image"]["resize"]


def test_repeats_strip_titles_match_the_images(cnn, image, tmp_path, monkeypatch):
    from failmodes.analysis import probe as probe_mod
    seen = {}
    real = probe_mod.plot_strip

    def spy(result, images, out_dir):
        seen["titles"] = [r["first_draw"]["top1"]["prob"] for r in result["rows"]]
        seen["images"] = images
        return real(result, images, out_dir)
    monkeypatch.setattr(probe_mod, "plot_strip", spy)
    r = probe(image, cnn, "gaussian_noise", [1, 3], seed=0, repeats=4, out_dir=tmp_path)
    # Re-score the very images the strip shows: their top-1 probability is the title's.
    x = torch.from_numpy(seen["images"]).permute(0, 3, 1, 2)
    with torch.no_grad():
        p = torch.softmax(cnn(x), 1).max(1).values.numpy()
    assert p == pytest.approx(seen["titles"], abs=1e-5)
    assert "average 4 draws" in r["figures"][0]["caption"]


def test_repeats_average_the_draws(cnn, image):
    one = [probe(image, cnn, "gaussian_noise", [3], seed=s)["rows"][0]["p_target"] for s in (0, 1, 2)]
    mean = probe(image, cnn, "gaussian_noise", [3], seed=0, repeats=3)
    assert mean["rows"][0]["p_target"] == pytest.approx(np.mean(one), abs=1e-6)
    assert mean["repeats"] == 3
    # The strip shows draw seed 0: its titles are that draw's own numbers, not the mean.
    first = probe(image, cnn, "gaussian_noise", [3], seed=0)["rows"][0]
    shown = mean["rows"][0]["first_draw"]
    assert shown["seed"] == 0 and shown["p_target"] == pytest.approx(first["p_target"])
    assert shown["top1"] == first["top1"]
    with pytest.raises(ProbeError, match="repeats"):
        probe(image, cnn, "gaussian_noise", [3], repeats=0)
