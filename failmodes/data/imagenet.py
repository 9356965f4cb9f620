"""ImageNet validation folders and the released ImageNet-C tree, at 224 px.

- ``imagenet:PATH``: ``PATH/<wnid>/*.JPEG`` (1000 WordNet-id folders, or only some of
  them), or flat ``PATH/*.JPEG`` plus a labels file (``LOC_val_solution.csv``, or
  ``labels.txt`` / ``val.txt`` lines ``<file> <wnid or 0-based index>``). Images get the
  evaluation transform the ImageNet-C generator applied (resize 256, centre crop 224).
- ``imagenetc:PATH``: ``PATH/<corruption>/<severity>/<wnid>/*.JPEG`` as released (already
  224×224; decoded as is).

Class indices are torchvision's (sorted WordNet ids, the ILSVRC-2012 order), class names
torchvision's, so any pretrained torchvision / timm / EfficientNet model scores correctly;
a folder with only some classes keeps the 1000-way indices.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from ..constants import IMAGENET_MEAN, IMAGENET_STD, SUBSET_SEED
from .dataset import DataError, Dataset
from .folders import image_files, load_files
from .specs import CorruptedSpec, DataSpec, register_data_spec

WNID = re.compile(r"^n\d{8}$")
IMAGENET_SIZE = 224
LABEL_FILES = ("LOC_val_solution.csv", "labels.txt", "val.txt", "val_labels.txt")
CORRUPTED_HINT = ("download it from https://zenodo.org/records/2235448 and pass the folder "
                  "holding <corruption>/<severity>/<wnid>/*.JPEG")


@lru_cache(maxsize=1)
def imagenet_wnids() -> list[str]:
    """The 1000 ILSVRC-2012 WordNet ids in class-index order (sorted)."""
    text = (Path(__file__).parent / "assets" / "imagenet_wnids.txt").read_text()
    return text.split()


@lru_cache(maxsize=1)
def imagenet_class_names() -> list[str]:
    """torchvision's 1000 ImageNet class names (weight metadata, no download)."""
    from torchvision.models import ResNet50_Weights
    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def wnid_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(imagenet_wnids())}


def load_imagenet(path: str | Path, split: str = "test", image_size: int | None = None,
                  use_cache: bool = True, subset: int | None = None) -> Dataset:
    """An ImageNet folder (see the module docstring) as a 1000-class Dataset; ``subset``
    decodes only the images ``Dataset.subset(subset)`` keeps."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"ImageNet folder {root} not found; put the validation set there as "
                        "<wnid>/*.JPEG folders (or flat files plus LOC_val_solution.csv)")
    folder = _split_folder(root, split)
    files = _wnid_tree(folder) or _flat_with_labels(folder)
    return load_files(files, imagenet_class_names(), name="imagenet", split=split,
                      where=folder, image_size=image_size or IMAGENET_SIZE, resize="crop",
                      use_cache=use_cache, stats=(IMAGENET_MEAN, IMAGENET_STD),
                      subset=subset)


def load_imagenet_c(path: str | Path, corruption: str, severity: int = 5,
                    image_size: int | None = None, use_cache: bool = False,
                    subset: int | None = None, subset_seed: int = SUBSET_SEED) -> Dataset:
    """One corruption × severity of the released ImageNet-C tree.

    Not cached by default: an evaluation reads each of the 75 cells once, and caching
    them all would take 75 × 7.5 GB of disk; ``subset`` decodes only the rows
    ``Dataset.subset(subset, subset_seed)`` keeps."""
    root = Path(path).expanduser().resolve()
    folder = corrupted_cell(root, corruption, severity, "ImageNet-C")
    files = _wnid_tree(folder)
    if not files:
        raise DataError(f"{folder} holds no <wnid>/*.JPEG folders; {CORRUPTED_HINT}")
    return load_files(files, imagenet_class_names(), name="imagenetc",
                      split=f"{corruption}-{severity}", where=folder, image_size=image_size,
                      use_cache=use_cache, stats=(IMAGENET_MEAN, IMAGENET_STD),
                      subset=subset, subset_seed=subset_seed)


def corrupted_cell(root: Path, corruption: str, severity: int, title: str) -> Path:
    """``root/<corruption>/<severity>`` of a released -C tree, with one-line errors."""
    if not root.is_dir():
        raise DataError(f"{title} folder {root} not found; {CORRUPTED_HINT}")
    if not 1 <= int(severity) <= 5:
        raise DataError(f"{title} severity must be 1..5, got {severity}")
    cdir = root / corruption
    if not cdir.is_dir():
        have = sorted(d.name for d in root.iterdir() if d.is_dir() and (d / "1").is_dir())
        held = ", ".join(have[:6]) or "no <corruption>/<severity>/ folders"
        raise DataError(f"{title} folder {root} has no {corruption}/ (it holds: {held})")
    sdir = cdir / str(int(severity))
    if not sdir.is_dir():
        raise DataError(f"{title} folder {cdir} has no severity folder {int(severity)}/")
    return sdir


def survey_tree(root: Path, corruptions: Sequence[str],
                severities: Sequence[float]) -> tuple[list[str], int]:
    """``CorruptedSpec.survey`` of a ``<corruption>/<severity>/<wnid>/*`` tree: the
    corruptions without a folder for each requested integer severity (1 when none is) and
    the images of one cell."""
    sevs = sorted({int(s) for s in severities if s in (1, 2, 3, 4, 5)}) or [1]
    absent = [n for n in corruptions if not all((root / n / str(s)).is_dir() for s in sevs)]
    first = next((root / n / str(sevs[0]) for n in corruptions if n not in absent), None)
    n_full = sum(len(image_files(d)) for d in first.iterdir() if d.is_dir()) if first else 0
    return [f"{n}/<severity>/ folders" for n in absent], n_full


def corruptions_in(root: str | Path) -> list[str]:
    """The corruption folders of a released -C tree (those with severity folders)."""
    root = Path(root)
    return sorted(d.name for d in root.iterdir()
                  if d.is_dir() and any((d / str(s)).is_dir() for s in range(1, 6)))


def _split_folder(root: Path, split: str) -> Path:
    names = {"test": ("val", "test"), "val": ("val",), "train": ("train",)}.get(split, (split,))
    for n in names:
        if (root / n).is_dir() and not WNID.match(n):
            return root / n
    return root


def _wnid_tree(folder: Path) -> list[tuple[Path, int]]:
    """(file, 1000-way index) of ``folder/<wnid>/*``; [] when there are no wnid folders."""
    index = wnid_index()
    subdirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not subdirs:
        return []
    unknown = [d.name for d in subdirs if d.name not in index]
    if unknown:
        raise DataError(f"{folder / unknown[0]} is not an ImageNet-1k WordNet id folder "
                        f"({len(unknown)} such); class folders must be named like n02124075")
    files: list[tuple[Path, int]] = []
    for d in subdirs:
        entries = image_files(d)
        if not entries:
            raise DataError(f"class folder {d} holds no images; add them or remove the folder")
        files += [(Path(e.path), index[d.name]) for e in entries]
    return files


def _flat_with_labels(folder: Path) -> list[tuple[Path, int]]:
    """Flat ``folder/*.JPEG`` labelled by a labels file beside (or above) them."""
    entries = image_files(folder)
    if not entries:
        raise DataError(f"{folder} holds neither <wnid>/ class folders nor images; expected "
                        "the ImageNet validation set as <wnid>/*.JPEG")
    lab_file = next((d / n for d in (folder, folder.parent) for n in LABEL_FILES
                     if (d / n).is_file()), None)
    if lab_file is None:
        raise DataError(f"{folder} holds {len(entries)} images but no labels file; put one of "
                        f"{', '.join(LABEL_FILES)} beside them (lines '<file> <wnid|index>')")
    labels = read_labels_file(lab_file)
    files, missing = [], []
    for e in entries:
        stem = e.name.rsplit(".", 1)[0]
        lab = labels.get(e.name, labels.get(stem))
        if lab is None:
            missing.append(e.name)
        else:
            files.append((Path(e.path), lab))
    if missing:
        raise DataError(f"{lab_file} has no label for {missing[0]} ({len(missing)} of "
                        f"{len(entries)} images unlabelled)")
    return files


def read_labels_file(path: Path) -> dict[str, int]:
    """``{file or stem: index}`` from LOC_val_solution.csv or '<file> <wnid|index>' lines."""
    index, out = wnid_index(), {}
    rows: list[tuple[str, ...]]
    with open(path, newline="") as f:
        if path.suffix == ".csv":
            rows = [(r[0], r[1].split()[0] if len(r) > 1 and r[1].split() else "")
                    for r in csv.reader(f)]
            rows = [r for r in rows if r[0] != "ImageId"]
        else:
            rows = [tuple(line.replace(",", " ").split()[:2]) for line in f if line.strip()]
    for n, row in enumerate(rows, 1):
        if len(row) != 2:
            raise DataError(f"{path} line {n}: expected '<file> <wnid or index>', got {row!r}")
        name, lab = row
        if lab in index:
            out[name] = index[lab]
        elif lab.isdigit() and int(lab) < 1000:
            out[name] = int(lab)
        else:
            raise DataError(f"{path} line {n}: label {lab!r} is neither an ImageNet WordNet id "
                            "nor a class index 0..999")
    return out


@register_data_spec
class ImageNet(DataSpec):
    name = "imagenet"
    forms = ("imagenet:PATH",)
    what = "ImageNet val, <wnid>/ folders or flat files + labels file (crop 224)"
    splits = "test/val/train"
    needs_arg = True
    folder_arg = True

    decodes_subset = True

    def load(self, arg: str, split: str, *, image_size: int | None = None,
             download: bool = True) -> Dataset:
        return load_imagenet(arg, split, image_size)

    def load_subset(self, arg: str, split: str, subset: int, *,
                    image_size: int | None = None) -> Dataset:
        return load_imagenet(arg, split, image_size, subset=subset)


@register_data_spec
class ImageNetC(CorruptedSpec):
    name = "imagenetc"
    clean = "imagenet"
    title = "ImageNet-C"
    forms = ("imagenetc:PATH",)
    what = "released ImageNet-C <corruption>/<severity>/<wnid>/*.JPEG"

    def load_cell(self, arg: str, corruption: str, severity: int = 5, *,
                  image_size: int | None = None, subset: int | None = None,
                  subset_seed: int = SUBSET_SEED) -> Dataset:
        return load_imagenet_c(arg, corruption, severity, image_size, subset=subset,
                               subset_seed=subset_seed)

    def survey(self, arg: str, corruptions: Sequence[str],
               severities: Sequence[float]) -> tuple[list[str], int]:
        return survey_tree(Path(arg), corruptions, severities)
