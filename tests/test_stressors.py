"""Stressor registry contract (every stressor tested for free), sweeps, RNG and fidelity."""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from failmodes.ranges import RangeError
from failmodes.stressors import StressorError, get_stressor, list_stressors, parse_sweep, parse_values, suite
from failmodes.stressors._rng import ImageRNG, _fmix32_py

# Attacks need a model and labels; tests/test_adversarial.py checks the same contract on them.
ALL = [n for n in list_stressors() if not get_stressor(n).needs_model]
CORRUPTIONS = [n for n in ALL if get_stressor(n).is_corruption]
SWEEPS = [n for n in ALL if not get_stressor(n).is_corruption]
# CI has ../shared beside the repo root; FAILMODES_FIDELITY_DIR points elsewhere (worktrees).
FIDELITY = Path(os.environ.get("FAILMODES_FIDELITY_DIR",
                               Path(__file__).resolve().parents[2] / "shared" / "fidelity"))


def _images(n=4, size=32, seed=0):
    """Smooth random colour images with some texture, on the 8-bit grid."""
    g = torch.Generator().manual_seed(seed)
    low = F.interpolate(torch.rand(n, 3, size // 8, size // 8, generator=g), size=(size, size),
                        mode="bilinear", align_corners=False)
    x = 0.8 * low + 0.2 * torch.rand(n, 3, size, size, generator=g)
    return torch.round(x * 255) / 255


def _value(name):
    """A clearly non-identity severity/value: 3 for corruptions, 30% into a sweep's range."""
    s = get_stressor(name)
    if s.is_corruption:
        return 3.0
    lo, hi = s.value_range
    return s.identity + 0.3 * ((hi - s.identity) if hi > s.identity else (lo - s.identity))


def _damage(name, severity, x, seed=0):
    return (get_stressor(name)(x, severity, seed=seed) - x).abs().mean().item() * 255


X = _images()


# ----------------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", ALL)
def test_contract_shape_range_grid_and_no_mutation(name):
    x = X.clone()
    y = get_stressor(name)(x, _value(name), seed=1)
    assert torch.equal(x, X), "input was mutated"
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert y.min() >= 0 and y.max() <= 1
    assert torch.equal(torch.round(y * 255) / 255, y), "output is off the 8-bit grid"
    assert not torch.equal(y, x), "a non-identity value left the images unchanged"


@pytest.mark.parametrize("name", ALL)
def test_seed_determinism(name):
    s, v = get_stressor(name), _value(name)
    a, b = s(X, v, seed=3), s(X, v, seed=3)
    assert torch.equal(a, b)
    other = s(X, v, seed=4)
    if not s.random:
        assert torch.equal(a, other)
    else:
        assert not torch.equal(a, other), "a random stressor ignored its seed"


@pytest.mark.parametrize("name", ALL)
def test_batch_of_n_equals_n_batches_of_one_in_any_order(name):
    s, v = get_stressor(name), _value(name)
    idx = torch.tensor([7, 100, 3, 42])
    full = s(X, v, seed=2, indices=idx)
    singles = torch.cat([s(X[i:i + 1], v, seed=2, indices=idx[i:i + 1]) for i in range(len(X))])
    assert torch.equal(full, singles)
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.equal(s(X[perm], v, seed=2, indices=idx[perm]), full[perm])


@pytest.mark.parametrize("name", ALL)
def test_identity_value_returns_the_images(name):
    s = get_stressor(name)
    assert torch.equal(s(X, s.identity), X)


@pytest.mark.parametrize("name", [n for n in CORRUPTIONS if get_stressor(n).monotone])
def test_damage_grows_with_severity(name):
    x = _images(8, seed=5)
    d = [_damage(name, float(k), x) for k in range(6)]
    assert d[0] == 0
    for k in range(1, 5):
        assert d[k + 1] >= d[k] * 0.95, f"severity {k + 1} damages less than {k}: {d}"
    assert d[5] > d[1]


# Intervals whose interpolated parameters leave the band between the two levels' damage:
# these are properties of the published tables, not of the interpolation code.
FRACTIONAL_DIPS = {
    ("saturate", 2): "the factor path 0.1 -> 1.5 crosses the identity factor 1.0",
    ("snow", 2): "zoom and threshold interpolated together thin the flakes below both levels",
    ("elastic_transform", 1): "s1 is affine-only; s2 adds the elastic field with a smaller affine",
    ("elastic_transform", 2): "alpha and the affine shrink while sigma grows: damage is flat-noisy",
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_fractional_severity_damage_lies_between_neighbours(name):
    x = _images(24, seed=6)

    def per_image(sev):
        return (get_stressor(name)(x, sev) - x).abs().mean((1, 2, 3)) * 255

    d = {s: per_image(s).mean().item() for s in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)}
    for lo in range(5):
        if (name, lo) in FRACTIONAL_DIPS:
            continue
        dm = per_image(lo + 0.5)
        mid = dm.mean().item()
        a, b = sorted((d[lo], d[lo + 1]))
        # Random ops draw new noise per severity: allow 3 standard errors of the mean.
        se = 3 * dm.std().item() / math.sqrt(len(x)) if get_stressor(name).random else 0.0
        tol = 0.15 * (b - a) + 0.3 + se
        assert a - tol <= mid <= b + tol, f"severity {lo + 0.5}: {mid:.2f} not in [{a:.2f}, {b:.2f}]"


# The tables against the published parameters: tests/test_severity_tables.py.


@pytest.mark.parametrize("name", ALL)
def test_imagenet_size_smoke(name):
    x = _images(1, size=224, seed=9)
    y = get_stressor(name)(x, _value(name), seed=0)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    assert not torch.equal(x, y)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("severity", [-0.5, 5.5, float("nan"), float("inf"), "high"])
def test_bad_severity_raises(severity):
    with pytest.raises(StressorError, match="severity"):
        get_stressor("gaussian_noise")(X, severity)


def test_check_value_is_the_one_range_check():
    st, sweep = get_stressor("gaussian_noise"), get_stressor("rotation")
    assert st.check_value(3) == 3.0 and sweep.check_value("-90") == -90.0
    with pytest.raises(StressorError, match=r"gaussian_noise: severity 6 is outside \[0, 5\]"):
        st.check_value(6)
    with pytest.raises(StressorError, match=r"rotation: value \(degrees.*\) 400.0 is outside"):
        sweep.check_value(400.0)
    with pytest.raises(StressorError, match="is not a number"):
        st.check_value("high")


def test_every_public_module_is_loaded_by_the_package():
    # Family modules register as they load; the package imports them all, so a new family
    # is one new module (no list to edit) and the registry never imports them back.
    import pkgutil

    import failmodes.stressors as pkg
    public = [m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]
    assert {"noise", "blur", "weather", "digital", "sweeps", "adversarial"} <= set(public)
    assert all(f"failmodes.stressors.{m}" in sys.modules for m in public)
    assert {get_stressor(n).family for n in list_stressors()} == {
        "noise", "blur", "weather", "digital", "sweep", "adversarial"}


@pytest.mark.parametrize("images, what", [
    (torch.rand(3, 32, 32), "N×3×H×W"),
    (torch.rand(2, 1, 32, 32), "grayscale or RGBA"),
    (torch.rand(2, 4, 32, 32), "grayscale or RGBA"),
    ((torch.rand(2, 3, 32, 32) * 255).to(torch.uint8), "float"),
    (torch.full((2, 3, 8, 8), float("nan")), "NaN"),
    (torch.rand(2, 3, 8, 8) + 1, r"\[0, 1\]"),
    (np.zeros((2, 3, 8, 8), np.float32), "torch.Tensor"),
])
def test_bad_images_raise_one_clear_error(images, what):
    for name in ("gaussian_noise", "zoom_blur", "rotation"):
        with pytest.raises(StressorError, match=what):
            get_stressor(name)(images, _value(name))


def test_unknown_name_suggests_close_matches():
    with pytest.raises(StressorError, match="did you mean.*gaussian_noise"):
        get_stressor("gausian_noise")


def test_sweep_value_outside_range_raises():
    with pytest.raises(StressorError, match="outside"):
        get_stressor("occlusion")(X, 1.5)


# ----------------------------------------------------------------------------- registry
def test_registry_lists_suites_in_cifar10c_order():
    assert ALL[:len(CORRUPTIONS)] == CORRUPTIONS
    assert set(suite("all")) == set(CORRUPTIONS)
    assert "zoom_blur" in list_stressors("*blur*") and "rotation" not in list_stressors("*blur*")
    for name in ("gaussian_noise_std", "gaussian_noise_std_normalized", "rotation",
                 "gaussian_blur_sigma", "brightness_shift", "contrast_factor", "jpeg_quality",
                 "occlusion"):
        d = get_stressor(name).describe()
        assert d["family"] == "sweep" and d["unit"] and d["description"]


def test_shot_noise_interpolates_photons_reciprocally_from_identity():
    s = get_stressor("shot_noise")
    assert s.resolve(0.5) == (1000.0,) and s.resolve(1.0) == (500.0,)
    assert s.resolve(1.5) == (375.0,)


# ----------------------------------------------------------------------------- sweeps
def test_parse_values_ranges_and_lists():
    assert parse_values("0:1:0.1") == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert parse_values("0:1:0.3") == [0.0, 0.3, 0.6, 0.9]  # stop off the grid: excluded
    assert parse_values("90:-90:-90") == [90.0, 0.0, -90.0]
    assert parse_values(" 1, 2.5 ,5") == [1.0, 2.5, 5.0]
    assert parse_sweep("rotation=-90:90:45") == ("rotation", [-90.0, -45.0, 0.0, 45.0, 90.0])


@pytest.mark.parametrize("spec", ["rotation", "=1,2", "rotation=", "rotation=0:10:0",
                                  "rotation=a,b", "rotation=1:2", "rotation=0:10:-1",
                                  "rotation=0:400:100", "occlusion=nan", "nosuch=1,2",
                                  "rotation=0:1e9:1"])
def test_parse_sweep_rejects_bad_specs(spec):
    with pytest.raises((StressorError, RangeError)):
        parse_sweep(spec)


def test_rotation_turns_counter_clockwise_with_black_corners():
    x = torch.zeros(1, 3, 5, 5)
    x[0, :, 2, 4] = 1.0  # right of centre
    y = get_stressor("rotation")(x, 90.0)
    assert y[0, 0, 0, 2] == 1.0 and y.sum() == 3.0  # now above centre
    y = get_stressor("rotation")(torch.ones(1, 3, 32, 32), 45.0)
    assert y[0, :, 0, 0].eq(0).all() and y[0, :, 16, 16].eq(1).all()


def test_occlusion_covers_the_requested_area_with_grey():
    y = get_stressor("occlusion")(torch.zeros(1, 3, 32, 32), 0.25)
    assert y[0, :, 16, 16].eq(128 / 255).all()
    assert abs(y.mean().item() / (128 / 255) - 0.25) < 0.01


def test_normalized_noise_scales_by_channel_std():
    x = torch.full((64, 3, 32, 32), 0.5)
    y = get_stressor("gaussian_noise_std_normalized")(x, 0.2)
    std = (y - x).transpose(0, 1).reshape(3, -1).std(1)
    assert torch.allclose(std, 0.2 * torch.tensor([0.229, 0.224, 0.225]), rtol=0.05)


def test_contrast_and_brightness_sweeps():
    y = get_stressor("contrast_factor")(X, 0.0)
    assert (y - X.mean((2, 3), keepdim=True)).abs().max() <= 0.5 / 255 + 1e-6
    assert torch.allclose(get_stressor("brightness_shift")(X, -1.0), torch.zeros_like(X))


def test_jpeg_quality_damage_falls_with_quality():
    d = [_damage("jpeg_quality", q, X) for q in (10.0, 50.0, 95.0)]
    assert d[0] > d[1] > d[2] > 0


# ----------------------------------------------------------------------------- rng
def test_rng_hash_matches_the_python_reference():
    rng = ImageRNG.for_images("x", 1.0, 0, torch.tensor([0, 12345]), torch.device("cpu"))
    k1, k2 = rng._stream_keys(7)
    counter = torch.tensor([0, 1, 999, 2 ** 20], dtype=torch.int32)
    got = rng._hash(k1[:, None], k2[:, None], counter).to(torch.int64) & 0xFFFFFFFF
    for i in range(2):
        for j, c in enumerate(counter.tolist()):
            a = (c * 0x9E3779B1 + (int(k1[i]) & 0xFFFFFFFF)) & 0xFFFFFFFF
            assert got[i, j] == _fmix32_py(a ^ (int(k2[i]) & 0xFFFFFFFF))


@pytest.mark.parametrize("lam", [0.3, 4.0, 25.0, 480.0])
def test_poisson_samplers_have_poisson_moments(lam):
    rng = ImageRNG.for_images("p", 1.0, 0, torch.arange(40), torch.device("cpu"))
    n = 40 * 2500
    for draw in (rng.poisson_levels(torch.zeros(40, 2500, dtype=torch.int64), torch.tensor([lam])),
                 rng.poisson(torch.full((40, 2500), lam))):
        assert abs(draw.mean().item() - lam) < 5 * math.sqrt(lam / n)
        assert abs(draw.var().item() / lam - 1) < 0.05
        assert torch.equal(draw, draw.round()) and draw.min() >= 0


def test_normal_draws_are_standard_and_independent_across_images():
    z = ImageRNG.for_images("n", 1.0, 0, torch.arange(64), torch.device("cpu")).normal((4096,))
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs(np.corrcoef(z[:-1].flatten().numpy(), z[1:].flatten().numpy())[0, 1]) < 0.01


# ----------------------------------------------------------------------------- fidelity
def test_fidelity_against_the_original_generator(tmp_path):
    if not (FIDELITY / "check.py").exists():
        pytest.skip(f"no fidelity reference at {FIDELITY} (../shared beside the repo)")
    from failmodes.stressors.fidelity import make_candidate
    clean = np.load(FIDELITY / "cifar10c-dev.npz")["clean"]
    cand = tmp_path / "cand.npz"
    np.savez(cand, **make_candidate(clean, CORRUPTIONS))
    r = subprocess.run([sys.executable, str(FIDELITY / "check.py"), str(cand),
                        "--only", ",".join(CORRUPTIONS)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert f"{5 * len(CORRUPTIONS)} ok, 0 FAIL" in r.stdout


# ----------------------------------------------------------------------------- cli
def test_cli_lists_every_stressor_as_table_and_json():
    import json

    from typer.testing import CliRunner

    from failmodes.cli import app
    r = CliRunner().invoke(app, ["stressors", "--json"])
    assert r.exit_code == 0
    rows = json.loads(r.stdout)
    assert [d["name"] for d in rows] == list_stressors()
    assert all(("tables" in d) == get_stressor(d["name"]).is_corruption for d in rows)
    r = CliRunner().invoke(app, ["stressors", "*blur*"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "zoom_blur" in r.stdout and "rotation" not in r.stdout
    assert CliRunner().invoke(app, ["stressors", "nothing*"]).exit_code != 0


# ----------------------------------------------------------------------------- ops vs the
# reference's own library calls (slow, obvious), at sizes and parameters the CIFAR
# fidelity file does not reach (ImageNet-C tables, images above 96 px)
def _np(x):
    return x[0].permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("sigma", [0.4, 1.0, 3.0, 6.0])
def test_gaussian_filter_matches_skimage(sigma):
    from skimage.filters import gaussian

    from failmodes.stressors.blur import gaussian_filter
    x = _images(1, size=40, seed=1)
    ref = gaussian(_np(x), sigma=sigma, channel_axis=-1)  # mode "nearest", truncate 4
    assert np.abs(_np(gaussian_filter(x, sigma)) - ref).max() < 1e-5


@pytest.mark.parametrize("radius, alias", [(0.3, 0.4), (1.5, 0.1), (3, 0.1), (8, 0.5), (10, 0.5)])
def test_defocus_kernel_and_filter_match_opencv(radius, alias):
    cv2 = pytest.importorskip("cv2")
    from failmodes.stressors.blur import disk_kernel, filter2d
    # The reference's disk(), verbatim.
    if radius <= 8:
        L, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        L, ksize = np.arange(-radius, radius + 1), (5, 5)
    X, Y = np.meshgrid(L, L)
    d = np.array((X ** 2 + Y ** 2) <= radius ** 2, dtype=np.float32)
    d /= np.sum(d)
    ref_k = cv2.GaussianBlur(d, ksize=ksize, sigmaX=alias)
    k = disk_kernel(radius, alias)
    assert np.abs(k - ref_k).max() < 1e-6
    x = _images(1, size=48, seed=2)
    ref = np.stack([cv2.filter2D(_np(x)[:, :, c], -1, ref_k.astype(np.float64)) for c in range(3)], -1)
    assert np.abs(_np(filter2d(x, k)) - ref).max() < 1e-5


@pytest.mark.parametrize("size, stop, step", [(32, 1.26, 0.01), (120, 1.31, 0.03)])
def test_zoom_blur_matches_scipy_clipped_zoom(size, stop, step):
    from scipy.ndimage import zoom as scizoom

    from failmodes.stressors.blur import zoom_blur
    x = _images(1, size=size, seed=3)
    img = _np(x).astype(np.float32)
    out = np.zeros_like(img)
    for z in np.arange(1, stop, step):  # the reference's clipped_zoom, verbatim
        h = img.shape[0]
        ch = int(np.ceil(h / z))
        top = (h - ch) // 2
        zi = scizoom(img[top:top + ch, top:top + ch], (z, z, 1), order=1)
        trim = (zi.shape[0] - h) // 2
        out += zi[trim:trim + h, trim:trim + h]
    ref = (img + out) / (len(np.arange(1, stop, step)) + 1)
    got = zoom_blur(x, (1.0, stop, step), None)
    assert np.abs(_np(got) - ref).max() < 1e-4


@pytest.mark.parametrize("delta", [1, 2, 4])
def test_glass_displacement_pass_matches_the_sequential_copy_loop(delta):
    from failmodes.stressors.blur import _displace_pass
    n, h, w = 2, 20, 17
    x = torch.rand(n, 3, h, w)
    g = torch.Generator().manual_seed(delta)
    d = torch.randint(-delta, delta, (n, h - 2 * delta, w - 2 * delta, 2), generator=g)
    got = _displace_pass(x, d, delta)
    for i in range(n):  # the reference's loop, with its "swap" that is a copy
        a = x[i].permute(1, 2, 0).numpy().copy()
        for hh in range(h - delta, delta, -1):
            for ww in range(w - delta, delta, -1):
                dx, dy = d[i, hh - delta - 1, ww - delta - 1].tolist()
                hp, wp = hh + dy, ww + dx
                a[hh, ww], a[hp, wp] = a[hp, wp], a[hh, ww]
        assert np.array_equal(got[i].permute(1, 2, 0).numpy(), a)
