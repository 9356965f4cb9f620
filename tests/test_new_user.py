"""Issue 35, what a new user trips over: a bare nn.Module handed to the Python API is one line
naming fm.models.wrap; the tensor-level attack API takes ε in grey levels and refuses a
fraction of the pixel range instead of running a no-op attack; Grad-CAM maps for one batch
without a run folder (fm.cam.gradcam); the explorer shows each image's file for folder data
(image i = the i-th file of the sorted class folders, each sorted by name)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import failmodes as fm
from failmodes.errors import FailmodesError


def _bare():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10))


def test_a_bare_module_in_run_evaluation_is_one_line_naming_wrap(tmp_path):
    cfg = fm.evaluate.EvalConfig(data="synthetic", subset=10, stressors=["fog"], severities=[1],
                                 out=str(tmp_path / "run"), device="cpu")
    with pytest.raises(FailmodesError, match=r"models\['mine'\] is a bare Sequential.*"
                                             r"fm\.models\.wrap\(net, mean="):
        fm.evaluate.run_evaluation(cfg, models={"mine": _bare()})
    assert not (tmp_path / "run").exists()


def test_a_bare_module_in_run_study_is_one_line_naming_wrap(tmp_path):
    from failmodes.study import StudyConfig, run_study
    cfg = StudyConfig(name="byo", data="synthetic", subset=10, suites=[], stressors=["fog"],
                      severities=[1], analyses=["metrics"], device="cpu",
                      out=str(tmp_path / "run"))
    with pytest.raises(FailmodesError, match="fm.models.wrap"):
        run_study(cfg, models={"mine": _bare()})
    assert not (tmp_path / "run").exists()


def test_a_wrapped_module_is_accepted():
    from failmodes.values import in_memory_models
    in_memory_models({"mine": fm.models.wrap(_bare(), mean=(0.5,) * 3, std=(0.25,) * 3)})


def _attack_setup():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).eval()
    x = torch.rand(6, 3, 8, 8).mul(255).round().div(255)
    return net, x, torch.tensor([0, 1, 2, 3, 0, 1])


def test_pgd_takes_epsilon_in_grey_levels_and_refuses_a_fraction_of_the_range():
    net, x, y = _attack_setup()
    pgd = fm.stressors.get_stressor("pgd_linf")
    out = pgd(x, 8, model=net, labels=y)                   # ε = 8/255
    d = (out - x).abs().max().item()
    assert 1 / 255 <= d <= 8 / 255 + 1e-6                   # moved, inside the 8/255 ball
    with pytest.raises(FailmodesError, match=r"in grey levels \(/255 units\).*pass 8"):
        pgd(x, 8 / 255, model=net, labels=y)               # torchattacks' unit: refused
    assert "/255" in pgd.unit                               # the unit is stated
    fgsm = fm.stressors.get_stressor("fgsm_linf")
    with pytest.raises(FailmodesError, match="grey levels"):
        fgsm(x, 0.5, model=net, labels=y)                   # half a grey level moves nothing
    l2 = fm.stressors.get_stressor("pgd_l2")(x, 0.5, model=net, labels=y)  # L2: pixel units
    assert (l2 - x).flatten(1).norm(dim=1).max().item() <= 0.5 + 1e-5


class _Square(nn.Module):
    """Positive conv, ReLU, mean pool, positive head: class 0's evidence is wherever the
    image is bright, so its Grad-CAM is exactly the bright square (known answer)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        nn.init.constant_(self.conv.weight, 0.1)
        self.head = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0] * 4, [-1.0] * 4]))

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def test_gradcam_for_a_batch_without_a_run_folder_finds_the_evidence():
    x = torch.zeros(3, 3, 32, 32)
    x[:, :, 2:10, 2:10] = 1.0                               # a bright square, top left
    net = _Square()
    maps = fm.cam.gradcam(net, x, targets=[0, 0, 0], layer="conv")
    assert maps.shape == (3, 32, 32) and maps.dtype == torch.float32
    inside = maps[:, 3:9, 3:9].mean()
    outside = maps[:, 16:, 16:].mean()
    assert inside > 0.9 and outside < 0.01
    model = fm.models.wrap(net, mean=(0, 0, 0), std=(1, 1, 1), classes=["a", "b"],
                           cam_layer="conv")
    wrapped, raw = fm.cam.gradcam(model, x, raw=True)      # its own layer, predicted class
    assert torch.allclose(wrapped, maps, atol=1e-5) and raw.shape == (3, 32, 32)
    with pytest.raises(FailmodesError, match="pass layer="):
        fm.cam.gradcam(net, x)                              # a bare module names no layer
    with pytest.raises(FailmodesError, match="2 targets for 3 images"):
        fm.cam.gradcam(model, x, targets=[0, 1])
    assert not any(p.requires_grad is False for p in net.parameters())  # restored


def test_the_explorer_shows_file_names_for_folder_data(tmp_path):
    from failmodes.evaluate import EvalConfig, run_evaluation
    from failmodes.report.explorer import build_explorer_data
    rng = np.random.default_rng(0)
    for cls, names in (("b_dog", ["z.png", "a.png"]), ("a_cat", ["m.png"])):
        os.makedirs(tmp_path / "data" / cls)
        for n in names:
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                tmp_path / "data" / cls / n)
    run_evaluation(EvalConfig(models={"m": {"arch": "small_cnn", "num_classes": 2}},
                              data=str(tmp_path / "data"), stressors=["fog"], severities=[1],
                              out=str(tmp_path / "run"), device="cpu"))
    data = build_explorer_data(tmp_path / "run")
    # sorted class folders, then file names: a_cat/m.png is 0, b_dog/a.png 1, b_dog/z.png 2
    assert data.payload["files"] == ["a_cat/m.png", "b_dog/a.png", "b_dog/z.png"]
