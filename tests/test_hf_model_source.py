"""The ``hf:`` model source, offline: a tiny randomly initialised transformers ViT saved with
``save_pretrained`` (and its image processor) loads as a Classifier whose logits are the
model's own on normalised input, with the processor's mean/std and size, the config's
class names and Grad-CAM on its patch tokens."""
import pytest
import torch

from failmodes.models import find_source, load_model
from failmodes.models.specs import ModelSource

transformers = pytest.importorskip("transformers")

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
LABELS = [f"label{i}" for i in range(10)]


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_vit")
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32,
                                    num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=37, num_labels=10,
                                    id2label=dict(enumerate(LABELS)),
                                    label2id={n: i for i, n in enumerate(LABELS)})
    net = transformers.ViTForImageClassification(config).eval()
    net.save_pretrained(path)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=list(MEAN),
                                   image_std=list(STD)).save_pretrained(path)
    return path, net


def test_predictions_are_the_models_logits_on_normalised_input(tiny_vit):
    path, net = tiny_vit
    said = []
    model = load_model(f"hf:{path}", say=said.append)
    assert type(find_source(ModelSource(arch=f"hf:{path}"))).__name__ == "HuggingFaceSource"
    assert model.mean.flatten().tolist() == pytest.approx(MEAN)
    assert model.std.flatten().tolist() == pytest.approx(STD)
    assert model.class_names == LABELS and model.input_size == 32 and model.resize
    assert said and "from the image processor (ViTImageProcessor" in said[0]
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        want = net(pixel_values=(x - mean) / std).logits
        torch.testing.assert_close(model(x), want)
        assert model(x).argmax(1).tolist() == want.argmax(1).tolist()
    prov = model.source
    assert prov["kind"] == "hf" and prov["classes_from"] == "config.id2label"
    assert prov["weights"].endswith("model.safetensors") and len(prov["weights_sha256"]) == 64
    assert prov["normalization_from"].startswith("the image processor")


def test_given_options_override_the_processor(tiny_vit):
    path, _ = tiny_vit
    model = load_model({"arch": f"hf:{path}", "mean": [0.5] * 3, "std": [0.5] * 3,
                        "classes": ",".join("abcdefghij")}, say=lambda line: None)
    assert model.mean.flatten().tolist() == [0.5] * 3 and model.class_names == list("abcdefghij")
    with pytest.raises(ValueError, match="3 class names for a 10-way head"):
        load_model({"arch": f"hf:{path}", "classes": "a,b,c"}, say=lambda line: None)


def test_grad_cam_on_the_vit_tokens(tiny_vit):
    from failmodes.analysis.cam._core import compute_cams
    path, _ = tiny_vit
    model = load_model(f"hf:{path}", say=lambda line: None)
    assert model.cam_layer_name.endswith(".1.layernorm_before")  # the last of 2 layers
    assert model.cam_reshape.prefix == 1 and model.cam_reshape.grid == (4, 4)
    tokens = torch.arange(2 * 17 * 3, dtype=torch.float32).view(2, 17, 3)  # (B, 1+HW, C)
    grid = model.cam_reshape(tokens)  # (B, C, H, W), the class token dropped
    assert grid.shape == (2, 3, 4, 4) and torch.equal(grid[1, 2, 2, 3], tokens[1, 1 + 2 * 4 + 3, 2])
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))  # resized to 32
    cams = compute_cams(model, x)
    assert cams.shape == (2, 48, 48) and torch.isfinite(cams).all() and float(cams.std()) > 0


def test_through_the_grid_and_the_cam_analysis(tiny_vit, tmp_path):
    """Evaluated cells store the model's logits; the cam analysis (its randomisation check
    names the layer, so the source's token reshape must follow the name) runs on it."""
    from failmodes.analysis.cam import run_cam
    from failmodes.evaluate import EvalConfig, open_run, run_evaluation
    path, net = tiny_vit
    classes = ["disk", "square", "triangle", "plus", "ring",
               "hbars", "vbars", "checker", "diagonal", "xcross"]  # the synthetic set's
    cfg = EvalConfig(models={"vit": {"arch": f"hf:{path}", "classes": ",".join(classes)}},
                     data="synthetic", subset=8, stressors=["gaussian_noise"], severities=[3.0],
                     out=str(tmp_path / "run"), device="cpu", batch_size=4)
    assert not run_evaluation(cfg, progress="off").failed
    with open_run(tmp_path / "run") as ctx:
        ds = ctx.dataset()
        clean = next(c for c in ctx.store.cells(model="vit") if c.stressor == "clean")
        got = ctx.store.predictions(clean, logits=True)["logits"]
        assert ctx.store.models()[0]["meta"]["provenance"]["kind"] == "hf"
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        want = net(pixel_values=(ds.float_batch(0, len(ds)) - mean) / std).logits
    torch.testing.assert_close(torch.as_tensor(got), want, atol=1e-5, rtol=0)
    res = run_cam(tmp_path / "run", tmp_path / "cam", sample=4, failures_per_cell=1,
                  device="cpu")
    assert "cam_unavailable" not in res.per_model["vit"]
    assert any("vit: randomisation sanity check" in n for n in res.notes)
