"""Tiny-ImageNet (200 classes, 64×64) and Tiny-ImageNet-C, as released.

- ``tinyimagenet:PATH``: the ``tiny-imagenet-200`` folder: ``wnids.txt``,
  ``train/<wnid>/images/*.JPEG`` and ``val/images/*.JPEG`` labelled by
  ``val/val_annotations.txt`` (a ``val/<wnid>/`` tree works too). ``test`` means the
  labelled validation set (the released test split has no labels).
- ``tinyimagenetc:PATH``: ``PATH/<corruption>/<severity>/<wnid>/*.JPEG`` (64×64).

Class indices follow the sorted WordNet ids (what torchvision's ImageFolder gives on the
train tree, and the order of the -C tree); class names are the ImageNet names of those
ids, so both sets and a model trained on either agree.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..constants import SUBSET_SEED
from .dataset import DataError, Dataset
from .folders import image_files, load_files
from .imagenet import WNID, corrupted_cell, imagenet_class_names, survey_tree, wnid_index
from .specs import CorruptedSpec, DataSpec, register_data_spec

TINY_SIZE = 64
TINY_HINT = ("download tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip),"
             " unzip it and pass the tiny-imagenet-200 folder")
TINY_C_HINT = ("download Tiny-ImageNet-C (https://zenodo.org/records/2536630) and pass the "
               "folder holding <corruption>/<severity>/<wnid>/*.JPEG")


def tiny_class_names(wnids: list[str]) -> list[str]:
    """ImageNet names for these WordNet ids (the id itself where it is not an ILSVRC one)."""
    index, names = wnid_index(), imagenet_class_names()
    return [names[index[w]] if w in index else w for w in wnids]


def _read_wnids(root: Path) -> list[str] | None:
    for d in (root, root.parent):
        f = d / "wnids.txt"
        if f.is_file():
            wnids = sorted(set(f.read_text().split()))
            bad = [w for w in wnids if not WNID.match(w)]
            if bad:
                raise DataError(f"{f}: {bad[0]!r} is not a WordNet id (like n01443537)")
            return wnids
    return None


def load_tinyimagenet(path: str | Path, split: str = "test", use_cache: bool = True) -> Dataset:
    """Tiny-ImageNet ``train`` or ``test`` (= the labelled ``val`` folder)."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"Tiny-ImageNet folder {root} not found; {TINY_HINT}")
    wnids = _read_wnids(root)
    if wnids is None:
        raise DataError(f"{root} has no wnids.txt; {TINY_HINT}")
    label = {w: i for i, w in enumerate(wnids)}
    if split == "train":
        files = _class_tree(root / "train", label, nested="images")
    elif split in ("test", "val"):
        files = _val(root / "val", label)
    else:
        raise DataError(f"tinyimagenet: unknown split {split!r}; choose train or test (= val)")
    return load_files(files, tiny_class_names(wnids), name="tinyimagenet", split=split,
                      where=root / ("train" if split == "train" else "val"),
                      image_size=TINY_SIZE, use_cache=use_cache)


def load_tinyimagenet_c(path: str | Path, corruption: str, severity: int = 5,
                        use_cache: bool = True, subset: int | None = None,
                        subset_seed: int = SUBSET_SEED) -> Dataset:
    """One corruption × severity of the released Tiny-ImageNet-C tree (64 px cells are
    small: 10 000 images = 120 MB, so they are cached)."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"Tiny-ImageNet-C folder {root} not found; {TINY_C_HINT}")
    folder = corrupted_cell(root, corruption, severity, "Tiny-ImageNet-C")
    wnids = _read_wnids(root) or sorted(d.name for d in folder.iterdir() if d.is_dir())
    if not wnids:
        raise DataError(f"{folder} holds no <wnid>/ folders; {TINY_C_HINT}")
    files = _class_tree(folder, {w: i for i, w in enumerate(wnids)}, nested=None)
    return load_files(files, tiny_class_names(wnids), name="tinyimagenetc",
                      split=f"{corruption}-{severity}", where=folder, image_size=TINY_SIZE,
                      use_cache=use_cache, subset=subset, subset_seed=subset_seed)


def _class_tree(folder: Path, label: dict[str, int], nested: str | None) -> list[tuple[Path, int]]:
    if not folder.is_dir():
        raise DataError(f"Tiny-ImageNet folder {folder} not found; {TINY_HINT}")
    files: list[tuple[Path, int]] = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        if d.name not in label:
            raise DataError(f"{d} is not one of the data set's WordNet ids (wnids.txt)")
        src = d / nested if nested and (d / nested).is_dir() else d
        entries = image_files(src)
        if not entries:
            raise DataError(f"class folder {src} holds no images")
        files += [(Path(e.path), label[d.name]) for e in entries]
    if not files:
        raise DataError(f"{folder} holds no <wnid>/ class folders with images")
    return files


def _val(folder: Path, label: dict[str, int]) -> list[tuple[Path, int]]:
    ann = folder / "val_annotations.txt"
    if not ann.is_file():
        if folder.is_dir() and any(p.is_dir() and p.name in label for p in folder.iterdir()):
            return _class_tree(folder, label, nested="images")
        raise DataError(f"{ann} not found (the val split's labels); {TINY_HINT}")
    files = []
    for n, line in enumerate(ann.read_text().splitlines(), 1):
        parts = line.split("\t") if "\t" in line else line.split()
        if not parts or not line.strip():
            continue
        if len(parts) < 2 or parts[1] not in label:
            raise DataError(f"{ann} line {n}: expected '<file>\\t<wnid>...' with a wnid of "
                            f"wnids.txt, got {line[:60]!r}")
        p = folder / "images" / parts[0]
        if not p.is_file():
            raise DataError(f"{ann} line {n}: {p} does not exist")
        files.append((p, label[parts[1]]))
    if not files:
        raise DataError(f"{ann} lists no images")
    return files


@register_data_spec
class TinyImageNet(DataSpec):
    name = "tinyimagenet"
    forms = ("tinyimagenet:PATH",)
    what = "the tiny-imagenet-200 folder (64 px; test = the labelled val set)"
    needs_arg = True
    folder_arg = True

    def load(self, arg: str, split: str, *, image_size: int | None = None,
             download: bool = True) -> Dataset:
        return load_tinyimagenet(arg, split)


@register_data_spec
class TinyImageNetC(CorruptedSpec):
    name = "tinyimagenetc"
    clean = "tinyimagenet"
    title = "Tiny-ImageNet-C"
    forms = ("tinyimagenetc:PATH",)
    what = "released Tiny-ImageNet-C <corruption>/<severity>/<wnid>/*.JPEG (64 px)"

    def load_cell(self, arg: str, corruption: str, severity: int = 5, *,
                  image_size: int | None = None, subset: int | None = None,
                  subset_seed: int = SUBSET_SEED) -> Dataset:
        return load_tinyimagenet_c(arg, corruption, severity, subset=subset,
                                   subset_seed=subset_seed)

    def survey(self, arg: str, corruptions: Sequence[str],
               severities: Sequence[float]) -> tuple[list[str], int]:
        return survey_tree(Path(arg), corruptions, severities)
