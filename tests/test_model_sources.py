"""Bring your own model: every source (torchvision, timm, a user module, safetensors,
torch.export, TorchScript, ONNX) evaluated through the grid. For each, the logits in the
store equal a direct forward pass of the very network on the same stressed images, and
Grad-CAM runs where gradients reach a layer (else the model says why not)."""
import numpy as np
import pytest
import torch
from torch import nn

from failmodes.analysis.cam._core import compute_cams
from failmodes.evaluate import EvalConfig, open_run, run_evaluation
from failmodes.models import ModelError, create_model, load_model, wrap
from failmodes.stressors import get_stressor

STRESS = {"gaussian_noise": 3.0, "contrast": 2.0}  # two cheap stressors
N_IMAGES = 8
CLASSES = ["disk", "square", "triangle", "plus", "ring",
           "hbars", "vbars", "checker", "diagonal", "xcross"]  # the synthetic set's names


def _evaluate(tmp_path, models, prebuilt=None):
    cfg = EvalConfig(models=models, data="synthetic", subset=N_IMAGES, stressors=list(STRESS),
                     severities=[3.0], sweeps=["contrast=2"], out=str(tmp_path / "run"),
                     device="cpu", batch_size=4)
    s = run_evaluation(cfg, models=prebuilt, progress="off")
    assert not s.failed, s.failed
    return tmp_path / "run"


def _check_logits(run_dir, name, forward):
    """Store logits of every cell == ``forward`` (normalised input -> logits) on the same
    stressed images."""
    with open_run(run_dir) as ctx:
        ds = ctx.dataset()
        clean = ds.float_batch(0, len(ds))
        cells = [c for c in ctx.store.cells(model=name) if c.status == "done"]
        assert {(c.stressor, c.severity) for c in cells} == {
            ("clean", 0.0), ("gaussian_noise", 3.0), ("contrast", 3.0), ("contrast", 2.0)}
        for cell in cells:
            x = clean if cell.stressor == "clean" else get_stressor(cell.stressor)(
                clean, cell.severity, seed=cell.seed, indices=ds.indices)
            with torch.no_grad():
                want = forward(x).float().numpy()
            got = ctx.store.predictions(cell, logits=True)["logits"]
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        return ctx.model(name, "cpu")


def _normalised(net, mean, std):
    mean, std = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    return lambda x: net((x - mean) / std)


def _cam_runs(model, size=32):
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    cams = compute_cams(model, x)
    assert cams.shape == (2, size, size) and torch.isfinite(cams).all()
    assert float(cams.std()) > 0  # a real map, not a constant


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CIFAR = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def test_torchvision_state_dict_with_module_prefix(tmp_path, capsys):
    torch.manual_seed(0)
    net = __import__("torchvision").models.resnet18(num_classes=10).eval()
    path = tmp_path / "r18.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}},
               path)
    run = _evaluate(tmp_path, {"r18": {"arch": "tv:resnet18", "weights": str(path)}})
    err = capsys.readouterr().err
    assert "took the state dict under 'state_dict'; stripped the key prefix 'module.'" in err
    # One rule for every source: a state dict records no statistics, so a 32-px input gets
    # CIFAR-10's, as the same network saved as .pt2/.onnx does (test_one_normalisation_rule).
    assert "mean (0.4914, 0.4822, 0.4465) std (0.247, 0.2435, 0.2616) from CIFAR-10" in err
    model = _check_logits(run, "r18", _normalised(net, *CIFAR))
    assert model.class_names == CLASSES and model.cam_layer_name == "layer4"
    _cam_runs(model, size=64)  # layer4 is 2×2 at 64 px (1×1 at 32 px)
    with open_run(run) as ctx:
        prov = ctx.store.models()[0]["meta"]["provenance"]
    assert prov["arch"] == "tv:resnet18" and prov["weights"] == str(path)
    assert len(prov["weights_sha256"]) == 64 and prov["mean"] == list(CIFAR[0])
    assert prov["classes"] == CLASSES
    assert prov["normalization_from"] == "CIFAR-10 statistics (32-px input)"


def test_timm_resnet_and_tiny_vit_safetensors(tmp_path):
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file
    torch.manual_seed(0)
    cnn = timm.create_model("resnet10t", num_classes=10).eval()
    vit_args = {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 48, "num_heads": 2}
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=10, **vit_args).eval()
    torch.save(cnn.state_dict(), tmp_path / "cnn.bin")
    save_file(vit.state_dict(), str(tmp_path / "vit.safetensors"))
    run = _evaluate(tmp_path, {
        "cnn": {"arch": "timm:resnet10t", "weights": str(tmp_path / "cnn.bin")},
        "vit": {"arch": "timm:vit_tiny_patch16_224", "weights": str(tmp_path / "vit.safetensors"),
                "arch_args": vit_args}})
    m_cnn = _check_logits(run, "cnn", _normalised(cnn, *CIFAR))  # the rule at 32 px
    assert m_cnn.cam_layer_name == "layer4"  # timm's feature_info
    _cam_runs(m_cnn, size=64)
    # pretrained_cfg describes timm's own weights, not these: the shared rule applies
    m_vit = _check_logits(run, "vit", _normalised(vit, *CIFAR))
    m_vit.cam_layer  # noqa: B018  (resolves the layer and its token reshape)
    assert m_vit.cam_layer_name == "blocks.1.norm1" and m_vit.cam_reshape.grid == (4, 4)
    _cam_runs(m_vit)


def test_user_module_file_and_package_callable(tmp_path):
    (tmp_path / "mynet.py").write_text(TINY_NET)
    import importlib.util
    spec = importlib.util.spec_from_file_location("mynet_ref", tmp_path / "mynet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    net = mod.TinyNet(num_classes=10, width=4).eval()
    torch.save({"ema": net.state_dict(), "optimizer": {"lr": 0.1}}, tmp_path / "tiny.pt")
    small = create_model("small_cnn", width=8).net.eval()
    torch.save({f"model.{k}": v for k, v in small.state_dict().items()}, tmp_path / "small.pth")
    run = _evaluate(tmp_path, {
        "tiny": {"arch": f"{tmp_path / 'mynet.py'}:TinyNet", "weights": str(tmp_path / "tiny.pt"),
                 "arch_args": {"width": 4}, "mean": [0.5] * 3, "std": [0.25] * 3},
        "small": {"arch": "failmodes.models.cifar:SmallCNN", "weights": str(tmp_path / "small.pth"),
                  "arch_args": {"width": 8}}})
    m = _check_logits(run, "tiny", _normalised(net, (0.5,) * 3, (0.25,) * 3))
    assert m.cam_layer_name == "body"
    _cam_runs(m)
    _check_logits(run, "small", _normalised(small, *CIFAR))  # CIFAR stats at 32 px


def _export_small(tmp_path):
    torch.manual_seed(0)
    return create_model("small_cnn", width=8).net.eval(), torch.rand(2, 3, 32, 32)


def test_exported_program_pt2(tmp_path):
    net, x = _export_small(tmp_path)
    ep = torch.export.export(net, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, tmp_path / "small.pt2")
    run = _evaluate(tmp_path, {"pt2": str(tmp_path / "small.pt2")})
    m = _check_logits(run, "pt2", _normalised(net, *CIFAR))
    assert m.cam_unavailable is None and m.cam_layer_name == "features"
    _cam_runs(m)


def test_torchscript_and_onnx_run_without_grad_cam(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net, x = _export_small(tmp_path)
    torch.jit.trace(net, x).save(str(tmp_path / "small_ts.pt"))  # TorchScript saved as .pt
    torch.onnx.export(net, (x,), str(tmp_path / "small.onnx"), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "n"}})
    # A second ONNX file with a fixed batch of 3: batches of 4 are run in padded chunks.
    torch.onnx.export(net, (torch.rand(3, 3, 32, 32),), str(tmp_path / "fixed.onnx"),
                      dynamo=False)
    run = _evaluate(tmp_path, {"ts": str(tmp_path / "small_ts.pt"),
                               "onnx": str(tmp_path / "small.onnx"),
                               "fixed": str(tmp_path / "fixed.onnx")})
    for name, why in (("ts", "TorchScript"), ("onnx", "no gradients"), ("fixed", "no gradients")):
        m = _check_logits(run, name, _normalised(net, *CIFAR))
        assert why in m.cam_unavailable
    from failmodes.analysis.cam import run_cam
    res = run_cam(run, tmp_path / "cam", sample=4, failures_per_cell=1, device="cpu")
    assert any("onnx: no Grad-CAM: ONNX models run in onnxruntime" in n for n in res.notes)
    assert res.per_model["ts"]["cam_unavailable"].startswith("TorchScript modules")


def test_wrap_in_python_and_grad_cam_from_the_run(tmp_path):
    torch.manual_seed(0)
    net = create_model("small_cnn", width=8).net.eval()
    model = wrap(net, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2), classes=CLASSES)
    assert model.cam_layer_name == "features" and model.source["format"] == "in-memory module"
    run = _evaluate(tmp_path, {}, prebuilt={"mine": model})
    kept = _check_logits(run, "mine", _normalised(net, (0.5,) * 3, (0.2,) * 3))
    assert kept is model  # the analyses of this process reach the very object
    with pytest.raises(ModelError, match="3 values"):
        wrap(net, mean=(0.5, 0.5), std=(1, 1, 1))


def test_full_module_pickle_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    torch.save({"state_dict": Evil()}, tmp_path / "evil.pt")
    torch.save(create_model("small_cnn", width=8).net, tmp_path / "module.pt")
    for f, what in (("evil.pt", "(exec)"), ("module.pt", "failmodes.models.cifar.SmallCNN")):
        with pytest.raises(ModelError, match="never unpickles") as e:
            load_model({"arch": "small_cnn", "weights": str(tmp_path / f)})
        assert what in str(e.value) and "torch.save(model.state_dict()" in str(e.value)
        with pytest.raises(ModelError, match="never unpickles"):
            load_model(str(tmp_path / f))
    assert not marker.exists()


def test_keys_classes_and_normalisation(tmp_path):
    torch.manual_seed(0)
    net = create_model("small_cnn", width=8, num_classes=7).net
    torch.save(net.state_dict(), tmp_path / "w7.pt")
    said = []
    m = load_model({"arch": "small_cnn", "weights": str(tmp_path / "w7.pt"),
                    "arch_args": {"width": 8}}, data_classes=CLASSES, say=said.append)
    assert m.num_classes == 7 and m.class_names[0] == "class_0"  # inferred from the head
    names = tmp_path / "names.txt"
    names.write_text("\n".join("abcdefg"))
    m = load_model({"arch": "small_cnn", "weights": str(tmp_path / "w7.pt"), "classes": str(names),
                    "arch_args": {"width": 8}, "mean": [0.1, 0.2, 0.3], "std": [1, 1, 1]},
                   say=said.append)
    assert m.class_names == list("abcdefg") and m.mean.flatten().tolist() == pytest.approx(
        [0.1, 0.2, 0.3]) and m.source["normalization_from"] == "given"
    # 4 conv blocks × (conv weight + 5 batch-norm tensors) + the head's weight and bias = 26
    assert said == ["w7.pt: loaded 26 tensors",
                    "small_cnn: mean (0.4914, 0.4822, 0.4465) std (0.247, 0.2435, 0.2616) from "
                    "the registry entry small_cnn; pass --mean/--std if it was trained with others",
                    "w7.pt: loaded 26 tensors"]
    with pytest.raises(ModelError, match=r"do not fit CifarResNet18: \d+ missing \(bn1.bias, "
                                         r"bn1.num_batches_tracked|bn1.running_mean"):
        load_model({"arch": "cifar_resnet18", "weights": str(tmp_path / "w7.pt"),
                    "arch_args": {"width": 8}, "num_classes": 7})
    with pytest.raises(ModelError, match="other shapes"):
        load_model({"arch": "small_cnn", "weights": str(tmp_path / "w7.pt"), "num_classes": 7})
    with pytest.raises(ModelError, match="3 class names for a 7-way head"):
        load_model({"arch": "small_cnn", "weights": str(tmp_path / "w7.pt"), "classes": "a,b,c",
                    "arch_args": {"width": 8}, "num_classes": 7})
    with pytest.raises(ModelError, match="holds weights only; say which network"):
        load_model(str(tmp_path / "w7.pt"))


def test_vit_input_is_resized_to_its_patch_grid():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=10, img_size=32, patch_size=8,
                            depth=1, embed_dim=48, num_heads=2).eval()
    m = wrap(vit, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert m.resize and m.input_size == 32 and m.num_classes == 10
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        small = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear",
                                                align_corners=False, antialias=True)
        torch.testing.assert_close(m(x), vit((small - 0.5) / 0.5))
    _cam_runs(m, size=48)  # maps come back at the input's size


def test_cam_layer_override_and_errors():
    net = create_model("small_cnn", width=8).net
    m = wrap(net, mean=(0,) * 3, std=(1,) * 3, classes=CLASSES, cam_layer="features.2")
    assert m.cam_layer is net.features[2]
    with pytest.raises(ModelError, match="--cam-layer 'nope' is not a module of SmallCNN"):
        wrap(net, mean=(0,) * 3, std=(1,) * 3, cam_layer="nope")

    class NoConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x.mean((2, 3)))

    with pytest.raises(ModelError, match="no convolutional layer .* pass --cam-layer"):
        wrap(NoConv(), mean=(0,) * 3, std=(1,) * 3).cam_layer  # noqa: B018


TINY_NET = ("import torch\nfrom torch import nn\n\n"
            "class TinyNet(nn.Module):\n"
            "    def __init__(self, num_classes=10, width=8):\n"
            "        super().__init__()\n"
            "        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),\n"
            "                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU())\n"
            "        self.head = nn.Linear(width, num_classes)\n"
            "    def forward(self, x):\n"
            "        return self.head(self.body(x).mean((2, 3)))\n")


def _tiny_files(tmp_path):
    (tmp_path / "mynet.py").write_text(TINY_NET)
    ns: dict = {}
    exec(compile(TINY_NET, "mynet", "exec"), ns)
    torch.manual_seed(1)
    net = ns["TinyNet"](width=4).eval()
    torch.save({"model": {f"module.{k}": v for k, v in net.state_dict().items()}},
               tmp_path / "tiny.pt")
    return net


def test_cli_evaluate_with_weights_and_options_then_cam(tmp_path):
    from typer.testing import CliRunner

    from failmodes.cli import app
    net = _tiny_files(tmp_path)
    out = tmp_path / "run"
    args = ["evaluate", "--model", f"{tmp_path / 'mynet.py'}:TinyNet", "--weights",
            str(tmp_path / "tiny.pt"), "--arch-arg", "width=4", "--classes", ",".join(CLASSES),
            "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "--cam-layer", "body.1",
            "--data", "synthetic", "--subset", str(N_IMAGES), "--stressors", "gaussian_noise",
            "--severities", "3", "--device", "cpu", "--out", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    with open_run(out) as ctx:
        rec = ctx.store.models()[0]
        m = ctx.model("tiny", "cpu")
    assert rec["name"] == "tiny" and rec["meta"]["provenance"]["cam_layer"] == "body.1"
    assert m.cam_layer is m.net.body[1] and m.class_names == CLASSES
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(m(x), net((x - 0.5) / 0.25))
    r = CliRunner().invoke(app, ["cam", str(out), "--sample", "4", "--failures-per-cell", "1",
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert (out / "analysis" / "cam.json").is_file()
    r = CliRunner().invoke(app, args[:5] + ["--weights", "x.pt"] + args[5:])
    assert r.exit_code == 2 and "--weights given 2 times for 1 --model" in r.output


@pytest.mark.slow
def test_study_file_and_python_models_end_to_end(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from failmodes.study import load_study, run_study
    monkeypatch.chdir(tmp_path)
    _tiny_files(tmp_path)
    net, x = _export_small(tmp_path)
    torch.onnx.export(net, (x,), str(tmp_path / "small.onnx"), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "n"}})
    (tmp_path / "study.yaml").write_text(
        "name: byo\ndata: synthetic\nsubset: 8\nval_subset: 8\ndevice: cpu\nsuites: []\n"
        "stressors: [gaussian_noise]\nseverities: [3]\n"
        "analyses: [metrics, cam]\nanalysis_options: {cam: {sample: 4, failures_per_cell: 1}}\n"
        "models:\n"
        "  - {name: tiny, arch: 'mynet.py:TinyNet', weights: tiny.pt, arch_args: {width: 4},\n"
        "     mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}\n"
        "  - {name: onnx, weights: small.onnx, num_classes: 10}\n")
    wrapped = wrap(create_model("small_cnn", width=8).net.eval(), mean=(0.5,) * 3,
                   std=(0.2,) * 3, classes=CLASSES)
    res = run_study(load_study(tmp_path / "study.yaml"), models={"py": wrapped})
    assert res.failures == []
    html = res.report.read_text()
    assert "Models: where each came from" in html and "mynet.py:TinyNet" in html
    assert "onnx: no Grad-CAM: ONNX models run in onnxruntime" in html
    import json
    cam = json.loads((tmp_path / "runs" / "byo" / "analysis" / "cam.json").read_text())
    assert set(cam["per_model"]) == {"tiny", "onnx", "py"}
    assert "cam_unavailable" in cam["per_model"]["onnx"]
    assert "cam_unavailable" not in cam["per_model"]["py"] and cam["data"]["models"]["py"]


def test_torchvision_vit_grad_cam_uses_the_token_reshape():
    from torchvision.models import VisionTransformer
    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                            mlp_dim=64, num_classes=10).eval()
    nn.init.normal_(vit.heads.head.weight, std=0.1)  # torchvision zero-inits the head: no gradient
    m = wrap(vit, mean=(0.5,) * 3, std=(0.5,) * 3, classes=CLASSES)
    assert m.cam_layer_name == "encoder.layers.encoder_layer_1.ln_1"
    assert m.cam_reshape.grid == (4, 4)
    assert m.cam_reshape.prefix == 1 and m.resize and m.input_size == 32
    tokens = torch.arange(2 * 17 * 3, dtype=torch.float32).view(2, 17, 3)
    grid = m.cam_reshape(tokens)  # N×C×h×w; patch token k sits at row k // 4, column k % 4
    assert grid.shape == (2, 3, 4, 4) and torch.equal(grid[1, 2, 2, 3], tokens[1, 1 + 2 * 4 + 3, 2])
    _cam_runs(m)


def test_a_spec_key_that_is_no_field_is_refused_naming_arch_args():
    # The older form put architecture arguments beside the fields ({"arch": ..., "width": 8});
    # 0.1.0 has no users to keep it for, and a typo (wieghts) must not become an arch argument.
    from failmodes.models import ModelSource
    from failmodes.models.errors import ModelError
    assert ModelSource.from_spec({"arch": "small_cnn", "arch_args": {"width": 8}}).arch_args == {"width": 8}
    with pytest.raises(ModelError, match="unknown model spec key.*width.*arch_args"):
        ModelSource.from_spec({"arch": "small_cnn", "width": 8})
    with pytest.raises(ModelError, match="wieghts"):
        ModelSource.from_spec({"arch": "small_cnn", "wieghts": "w.pt"})
