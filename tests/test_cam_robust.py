"""Grad-CAM where it used to break (issue 35): an ExportedProgram with a dynamic batch
(the sanity check deep-copies it), one exported for batch 1 (hooks saw one chunk), a network
without a convolution (one line naming --cam-layer, with or without it), and a failed
analysis shown in the report as one line and the path of its log, never a traceback."""
from pathlib import Path

import model_zoo
import pytest
import torch
from typer.testing import CliRunner

from failmodes.analysis.cam._core import compute_cams
from failmodes.analysis.cam.sanity import cascading_randomisation
from failmodes.cli import app
from failmodes.errors import EXIT_USAGE
from failmodes.evaluate import EvalConfig, run_evaluation
from failmodes.models import load_model
from failmodes.report import render_report

ZOO = Path(model_zoo.__file__)
CLASSES = [str(i) for i in range(10)]
runner = CliRunner()


def _pt2(tmp_path, batch):
    net = model_zoo.Plain().eval()
    x = torch.rand(2 if batch is None else batch, 3, 32, 32)
    dyn = None if batch else {"x": {0: torch.export.Dim("n", min=1, max=1024)}}
    path = tmp_path / f"b{batch}.pt2"
    torch.export.save(torch.export.export(net, (x,), dynamic_shapes=dyn), str(path))
    return load_model(str(path), data_classes=CLASSES, data_size=32, say=lambda s: None)


def test_gradcam_on_pt2_batch_1_equals_the_dynamic_batch_maps(tmp_path):
    dyn, one = _pt2(tmp_path, None), _pt2(tmp_path, 1)
    assert dyn.fixed_batch is None and one.fixed_batch == 1
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a, b = compute_cams(dyn, x, batch_size=4), compute_cams(one, x, batch_size=4)
    assert a.shape == b.shape == (5, 32, 32)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)  # the same network, the same maps
    ref = compute_cams(load_model(f"{ZOO}:Plain", data_classes=CLASSES, data_size=32,
                                  say=lambda s: None), x)
    torch.testing.assert_close(a, ref, atol=1e-5, rtol=0)  # ... as the Python original's


def test_the_sanity_check_randomises_a_pt2_copy_and_leaves_the_model(tmp_path):
    model = _pt2(tmp_path, None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    c = cascading_randomisation(model, x)
    assert c["n_images"] == 8 and c["curve"][0]["spearman"] == pytest.approx(1.0)
    assert c["final_spearman"] < 0.9  # the copy's weights were really re-drawn
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("cam_layer, words", [
    (None, "no convolutional layer found in NoConv for Grad-CAM; pass --cam-layer NAME"),
    ("fc", "Grad-CAM cannot use layer 'fc' (Linear"),
])
def test_a_network_without_a_convolution_is_one_line_naming_cam_layer(tmp_path, cam_layer,
                                                                      words):
    spec = {"arch": f"{ZOO}:NoConv", **({"cam_layer": cam_layer} if cam_layer else {})}
    run_evaluation(EvalConfig(models={"nc": spec}, data="synthetic", subset=8,
                              stressors=["gaussian_noise"], severities=[3.0], device="cpu",
                              out=str(tmp_path / "run")), progress="off")
    res = runner.invoke(app, ["cam", str(tmp_path / "run"), "--out", str(tmp_path / "cam")])
    assert res.exit_code == EXIT_USAGE and "Traceback" not in res.output, res.output
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("error: ") and words in line and "--cam-layer" in line, line


def test_a_failed_analysis_is_one_line_and_its_log_in_the_report(tmp_path):
    from failmodes.study.state import StudyState, one_line, write_log
    run_evaluation(EvalConfig(models={"m": "small_cnn"}, data="synthetic", subset=8,
                              stressors=["gaussian_noise"], severities=[1.0], device="cpu",
                              out=str(tmp_path / "run")), progress="off")
    run = tmp_path / "run"
    try:
        raise ValueError("Invalid grads shape.\nShape of grads should be 4")
    except ValueError as e:
        msg, log = one_line(e), write_log(run, "analysis:cam")
    assert msg == "ValueError: Invalid grads shape." and log == "logs/analysis_cam.log"
    assert "Traceback (most recent call last)" in (run / log).read_text()
    state = StudyState(run)
    state.set("analysis:cam", status="failed", error=msg, log=log)
    # a run written before issue 35 kept the traceback's tail in the error itself
    state.set("analysis:calibration", status="failed",
              error='KeyError: x\nTraceback (most recent call last):\n  File "a.py"')
    html = render_report(run, tmp_path / "rep" / "report.html").read_text()
    assert "Traceback" not in html and "a.py" not in html
    assert f"ValueError: Invalid grads shape. (traceback: {run / log})" in html
    assert "KeyError: x (the traceback&#39;s tail is in study_state.json)" in html
