"""The CUDA paths against the CPU path: ``pytest -m cuda`` (skipped where CUDA is absent).

What each test holds on the second device ``DEVICE`` (default ``cuda``):
- every registered stressor keeps dtype, shape and device, stays in [0, 1] on the 8-bit grid
  and gives the CPU's pixels for the same (stressor, severity, seed, dataset index), up to
  the float rounding listed in ``TOLERANCE``; and it is batch-invariant there too;
- PGD's random start is the CPU's, and the attack stays in its ε-ball and is as strong;
- an evaluation on the device stores the CPU's predictions;
- a few training steps (SGD and Muon, bf16 autocast, channels_last) train, and the
  checkpoint predicts on the CPU what the device's model predicted;
- Grad-CAM maps on the device are the CPU's.

``FAILMODES_TEST_DEVICE=cpu`` runs the same tests against a second CPU pass (every
comparison then holds exactly): ``bench/device_check.py --smoke`` does, so the file is
exercised between GPU runs.
"""
from __future__ import annotations

import importlib
import math
import os

import pytest
import torch

import failmodes as fm
from failmodes.stressors import get_stressor, list_stressors

DEVICE = os.environ.get("FAILMODES_TEST_DEVICE", "cuda")

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.usefixtures("memo_synthetic"),
    pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                       reason="needs CUDA (FAILMODES_TEST_DEVICE=cpu runs these on the CPU)"),
]

# Pixels may differ between devices only where float rounding (another summation order,
# another libm, FMA contraction) moves a value across an 8-bit level: a handful of pixels,
# by one level. (share of pixels allowed to differ, largest difference in grey levels)
DEFAULT_TOLERANCE = (2e-3, 1)
TOLERANCE = {
    # Sample positions are snapped to cv2's 1/32-px grid: a coordinate that rounds the
    # other way samples a neighbouring position, so an edge pixel can move many levels.
    "elastic_transform": (2e-3, 255),
    # A one-level flip of the uint8 first blur is displaced and blurred again, so it can
    # reach neighbouring pixels (each still by one level).
    "glass_blur": (5e-3, 1),
    # A blurred noise layer is thresholded (values below it become 0): a value within
    # float rounding of the threshold can land on the other side and add or drop a speck
    # of snow or a drop of spatter, changing its few pixels by many levels.
    "snow": (5e-3, 255),
    "spatter": (5e-3, 255),
}
# Adversarial stressors need a model: tested on their own below.
STRESSORS = [n for n in list_stressors() if not get_stressor(n).needs_model]


def _dev() -> torch.device:
    return torch.device(DEVICE)


def _images(n: int, size: int) -> torch.Tensor:
    """n synthetic test images (flat areas, edges, textures) as float N×3×size×size on the
    8-bit grid; upsampled bilinearly past 32 px."""
    ds = fm.data.load_dataset("synthetic", "test")
    x = ds.images[:n].permute(0, 3, 1, 2).float()
    if size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                            align_corners=False)
    return x.round().clamp(0, 255).div(255.0).contiguous()


def _values(name: str) -> list[float]:
    st = get_stressor(name)
    if st.is_corruption:
        return [1.0, 3.0, 5.0, 2.5]
    lo, hi = st.value_range
    # A quarter of the way from the identity toward the far end of the range.
    far = hi if hi > st.identity else lo
    return [st.identity + 0.25 * (far - st.identity)]


def _levels(y: torch.Tensor) -> torch.Tensor:
    return torch.round(y.detach().to("cpu", torch.float64) * 255.0)


def _on_grid(y: torch.Tensor) -> bool:
    v = y.detach().to("cpu", torch.float64) * 255.0
    return bool((v - v.round()).abs().max() < 1e-3)


def _compare(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(share of pixels that differ, largest difference in grey levels)."""
    d = (_levels(a) - _levels(b)).abs()
    return float((d > 0).double().mean()), float(d.max()) if d.numel() else 0.0


def _check_output(y: torch.Tensor, x: torch.Tensor, what: str) -> None:
    assert y.dtype == x.dtype and y.shape == x.shape, what
    assert y.device.type == x.device.type, f"{what}: output on {y.device}, input on {x.device}"
    assert bool(y.min() >= 0) and bool(y.max() <= 1), what
    assert _on_grid(y), f"{what}: off the 8-bit grid"


@pytest.mark.parametrize("name", STRESSORS)
def test_stressor_matches_cpu(name):
    st = get_stressor(name)
    share, levels = TOLERANCE.get(name, DEFAULT_TOLERANCE)
    for size, n in ((32, 16), (224, 2)):
        x = _images(n, size)
        idx = torch.arange(1000, 1000 + n) * 7  # dataset indices, not batch positions
        xd = x.to(_dev())
        for v in _values(name):
            what = f"{name} {v:g} at {size} px"
            ref = st(x, v, seed=3, indices=idx)
            got = st(xd, v, seed=3, indices=idx)
            _check_output(got, xd, what)
            diff_share, diff_max = _compare(got, ref)
            assert diff_share <= share and diff_max <= levels, (
                f"{what}: {diff_share:.2%} of pixels differ from the CPU's, by up to "
                f"{diff_max:g} levels (allowed {share:.2%}, {levels})")


@pytest.mark.parametrize("name", [n for n in STRESSORS if get_stressor(n).random])
def test_stressor_batch_invariant_on_device(name):
    """Image i's noise depends on its index, not its place in the batch, on the device too."""
    st = get_stressor(name)
    share, levels = TOLERANCE.get(name, DEFAULT_TOLERANCE)
    x = _images(12, 32).to(_dev())
    idx = torch.arange(12) * 5 + 11
    v = _values(name)[1 if st.is_corruption else 0]
    whole = st(x, v, seed=1, indices=idx)
    perm = torch.tensor([7, 2, 11, 0, 5])
    part = st(x[perm.to(x.device)], v, seed=1, indices=idx[perm])
    diff_share, diff_max = _compare(part, whole[perm.to(x.device)])
    assert diff_share <= share and diff_max <= levels, (name, diff_share, diff_max)
    other_seed = st(x, v, seed=2, indices=idx)
    assert _compare(other_seed, whole)[0] > 0.05, f"{name}: the seed changes nothing"


# ----------------------------------------------------------------------------- attacks
def _net(seed: int = 0) -> fm.models.Classifier:
    torch.manual_seed(seed)
    return fm.models.create_model("small_cnn", class_names=list(fm.data.load_dataset(
        "synthetic", "test").classes)).eval()


def test_pgd_random_start_matches_cpu():
    """With no step (step=0), PGD's output is its random start snapped to the grid: the
    same (stressor, ε, seed, index) gives the same start on both devices."""
    model = _net()
    x = _images(16, 32)
    idx = torch.arange(16) + 300
    with torch.no_grad():
        labels = model(x).argmax(1)
    for name, eps in (("pgd_linf[steps=1,step=0]", 8.0), ("pgd_l2[steps=1,step=0]", 0.5)):
        st = get_stressor(name)
        ref = st(x, eps, seed=5, indices=idx, model=model, labels=labels)
        got = st(x.to(_dev()), eps, seed=5, indices=idx, model=model.to(_dev()),
                 labels=labels.to(_dev()))
        model.to("cpu")
        _check_output(got, x.to(_dev()), name)
        diff_share, diff_max = _compare(got, ref)
        assert diff_share <= 2e-3 and diff_max <= 1, (name, diff_share, diff_max)


def test_pgd_on_device_is_as_strong_and_in_the_ball():
    """Labels are the model's own clean predictions (clean accuracy 100 % by construction);
    PGD-10 at ε = 8/255 must bring accuracy down on the device as on the CPU."""
    model = _net(1)
    x = _images(64, 32)
    with torch.no_grad():
        labels = model(x).argmax(1)
    st = get_stressor("pgd_linf")
    ref = st(x, 8.0, seed=0, model=model, labels=labels)
    dmodel = model.to(_dev())
    xd = x.to(_dev())
    got = st(xd, 8.0, seed=0, model=dmodel, labels=labels.to(_dev()))
    _check_output(got, xd, "pgd_linf")
    assert float((got.cpu() - x).abs().max()) <= 8 / 255 + 1e-6  # inside the ε-ball
    with torch.no_grad():
        acc_dev = float((dmodel(got).argmax(1).cpu() == labels).double().mean())
        acc_cpu = float((model.to("cpu")(ref).argmax(1) == labels).double().mean())
    assert acc_cpu < 0.5, f"PGD on the CPU left {acc_cpu:.0%}: the test's model is too robust"
    assert abs(acc_dev - acc_cpu) <= 0.1, (acc_dev, acc_cpu)


# ----------------------------------------------------------------------------- evaluation
def _evaluate(out, device, models=None, spec="small_cnn"):
    cfg = fm.evaluate.EvalConfig(
        models={} if models else {"cnn": spec}, data="synthetic", subset=64,
        stressors=["gaussian_noise", "fog", "jpeg_compression", "glass_blur"],
        severities=[1.0, 3.0], sweeps=["rotation=30"], seed=4, batch_size=24,
        device=str(device), out=str(out))
    fm.evaluate.run_evaluation(cfg, models=models, progress=False)
    from failmodes.store import ResultsStore
    with ResultsStore(out / "results.sqlite", readonly=True) as store:
        return {(c.model, c.stressor, c.severity): store.predictions(c, logits=True)
                for c in store.cells()}


def _same_predictions(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and len(a) == 2 * 4 + 1 + 1  # 4 × 2 severities, clean, rotation
    for key in a:
        pa, pb = a[key], b[key]
        assert (pa["idx"] == pb["idx"]).all() and (pa["label"] == pb["label"]).all(), key
        agree = float((pa["pred"] == pb["pred"]).mean())
        # An untrained network has near-ties: allow 3 of 64 images to flip.
        assert agree >= 0.95, f"{key}: predictions agree on {agree:.1%} of images"
        # cuDNN may run fp32 convolutions in TF32 (10-bit mantissa): logits to ~1e-3.
        assert abs(pa["conf"] - pb["conf"]).max() < 5e-3, key
        assert abs(pa["logits"] - pb["logits"]).max() < 2e-2, key


def test_evaluation_on_device_matches_cpu(tmp_path):
    cpu = _evaluate(tmp_path / "cpu", "cpu")
    dev = _evaluate(tmp_path / "dev", DEVICE)
    _same_predictions(cpu, dev)


def test_evaluation_moves_an_in_memory_model(tmp_path):
    """A model built on the CPU and evaluated with device=cuda (what device=auto picks on a
    GPU machine) gives the CPU's predictions."""
    cpu = _evaluate(tmp_path / "cpu", "cpu", models={"cnn": _net(4)})
    model = _net(4)
    dev = _evaluate(tmp_path / "dev", DEVICE, models={"cnn": model})
    _same_predictions(cpu, dev)
    assert next(model.parameters()).device.type == "cpu"  # back where the caller had it


# ----------------------------------------------------------------------------- training
def _train(tmp_path, recipe: str, **kw):
    from failmodes.config import override
    from failmodes.train import load_recipe, train_model
    cfg = override(load_recipe(recipe), data="synthetic", device=DEVICE, threads=None, **kw)
    return train_model(cfg, tmp_path, progress=False)


def test_training_steps_on_device(tmp_path):
    """SGD on the device (bf16 autocast on CUDA, channels_last) learns the synthetic shapes
    as on the CPU (tests/test_train.py: > 80 % after these 3 epochs), and the checkpoint
    predicts on the CPU what the device's model predicted."""
    r = _train(tmp_path / "sgd", "baseline-cosine", model="small_cnn", width=16, epochs=3,
               batch_size=64, lr=0.05, augment="none", test_subset=500)
    assert all(math.isfinite(h["train_loss"]) for h in r.history)
    assert r.history[-1]["train_loss"] < r.history[0]["train_loss"]
    assert r.test_acc > 0.7, f"3 epochs reached {r.test_acc:.1%} (CPU, fp32: > 80 %)"
    assert next(r.model.parameters()).device.type == _dev().type
    x = _images(200, 32)
    with torch.no_grad():
        on_device = r.model(x.to(_dev())).argmax(1).cpu()
        reloaded, _ = fm.models.load_checkpoint(r.checkpoint)
        on_cpu = reloaded.eval()(x).argmax(1)
    assert float((on_device == on_cpu).double().mean()) >= 0.98


def test_muon_fast_recipe_steps_on_device(tmp_path):
    """The fast recipe's machinery on the device: whitening from data, Muon, alternating
    flips, reflect-padded crops, the triangle schedule; Cutout and AugMix augmentation."""
    r = _train(tmp_path / "fast", "fast", width=8, epochs=2, subset=1000, batch_size=250,
               test_subset=500, whiten_images=500, whiten_bias_epochs=1)
    assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["test_loss"])
               for h in r.history)
    assert r.history[-1]["train_loss"] < r.history[0]["train_loss"], r.history
    for recipe, model in (("cutout", "small_cnn"), ("augmix", "small_cnn")):
        r = _train(tmp_path / recipe, recipe, model=model, epochs=1, subset=256,
                   batch_size=64, test_subset=128)
        assert math.isfinite(r.history[-1]["train_loss"]), recipe


# ----------------------------------------------------------------------------- Grad-CAM
def _cam_core():
    for module in ("failmodes.analysis.cam._core", "failmodes.analysis._cam_core"):
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    raise ImportError("no Grad-CAM core module (failmodes.analysis.cam._core)")


def test_grad_cam_on_device_matches_cpu():
    pytest.importorskip("pytorch_grad_cam", reason="grad-cam is not installed here")
    compute_cams = _cam_core().compute_cams
    model = _net(2)
    x = _images(8, 32)
    ref, ref_logits = compute_cams(model, x, return_logits=True)
    assert float(ref.amax()) > 0, "every CPU map is empty: nothing to compare"
    got, logits = compute_cams(model.to(_dev()), x, return_logits=True)
    assert got.device.type == "cpu" and got.dtype == torch.float32 and got.shape == ref.shape
    assert float((logits - ref_logits).abs().max()) < 2e-2
    assert float((got - ref).abs().mean()) < 5e-3
    assert float((got - ref).abs().max()) < 5e-2


# ----------------------------------------------------------------------------- wrappers
def test_tta_wrappers_run_on_the_models_device():
    """with_flip_tta / without_tta of a model on the device (Grad-CAM and slices unwrap it
    there) normalise on that device and give the plain and mirrored logits."""
    from failmodes.models.tta import with_flip_tta, without_tta
    model = _net(3).to(_dev())
    x = _images(8, 32).to(_dev())
    with torch.no_grad():
        plain = model(x)
        flipped = with_flip_tta(model)(x)
        unwrapped = without_tta(with_flip_tta(model))(x)
    assert torch.allclose(unwrapped, plain)
    assert torch.allclose(flipped, 0.5 * (plain + model(x.flip(3))), atol=1e-5)
