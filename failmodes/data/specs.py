"""Data specs, the strings ``--data``, study files and ``load_dataset`` take, as a registry.

Each kind of spec is a ``DataSpec`` subclass filed by ``@register_data_spec`` in the module
that loads it (``cifar.py`` files ``cifar10``, ``cifar100``, ``cifar10c``, ``cifar100c``);
``failmodes.data`` imports every public module of the package, so a new kind of spec is one
new file. The CLI's ``--data`` help (``data_help()``) and the table of specs at the end of
``failmodes.data``'s docstring (``data_specs_table()``) are generated from the registry.

``train-train`` / ``train-val`` (any base split) give the fixed 90/10 split.

>>> spec = find_data_spec("imagenetc:/data/ImageNet-C")
>>> spec.name, spec.argument("imagenetc:/data/ImageNet-C"), spec.clean, spec.title
('imagenetc', '/data/ImageNet-C', 'imagenet', 'ImageNet-C')
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, TypeVar

from ..constants import SUBSET_SEED
from .dataset import DataError, Dataset, train_val_split
from .decode import check_image_size

__all__ = ["CorruptedSpec", "DataSpec", "absolute_spec", "data_help", "data_specs_table",
           "find_data_spec", "get_data_spec", "list_corrupted_specs", "list_data_specs", "load_corrupted",
           "load_dataset", "register_data_spec"]

_SEVERITY = re.compile(r"^(?P<c>.+)-(?P<s>[1-5])$")


class DataSpec:
    """One kind of data spec: ``NAME`` or ``NAME:ARG`` (a folder, a hub name).

    Subclasses set the class attributes and ``load``; ``matches``, ``argument``,
    ``absolute`` and ``describe`` serve most as they are.
    """

    name: ClassVar[str]                   # the word before ':' ("imagenet")
    forms: ClassVar[tuple[str, ...]]      # how it is written, as the help shows it
    what: ClassVar[str]                   # what it loads, one line
    splits: ClassVar[str] = "train/test"  # the splits it takes
    needs_arg: ClassVar[bool] = False     # the bare name alone is an error
    folder_arg: ClassVar[bool] = False    # ARG is a local folder (made absolute when saved)
    fallback: ClassVar[bool] = False      # tried after every other spec (a bare folder)
    decodes_subset: ClassVar[bool] = False  # load_subset decodes only the kept images

    def matches(self, spec: str) -> bool:
        """Whether ``spec`` is of this kind."""
        return str(spec).partition(":")[0] == self.name

    def argument(self, spec: str) -> str:
        """What follows ``NAME:`` (checked: a spec that needs it has it)."""
        arg = str(spec).partition(":")[2]
        if self.needs_arg and not arg:
            raise DataError(f"data spec {spec!r} needs a path: {self.name}:PATH")
        return arg

    def load(self, arg: str, split: str, *, image_size: int | None = None,
             download: bool = True) -> Dataset:
        """The data set ``split`` of ``NAME:arg`` (train-val splitting is done by the caller)."""
        raise NotImplementedError

    def load_subset(self, arg: str, split: str, subset: int, *,
                    image_size: int | None = None) -> Dataset:
        """``load(...).subset(subset, SUBSET_SEED)``, decoding only those images (a spec
        that sets ``decodes_subset``: the rows are picked from its file list first)."""
        raise NotImplementedError

    def absolute(self, spec: str) -> str:
        """``spec`` with its folder made absolute, so a saved config names the same data from
        any working directory."""
        kind, sep, arg = str(spec).partition(":")
        if self.folder_arg and sep and arg:
            return f"{kind}:{Path(arg).expanduser().resolve()}"
        return spec

    def describe(self) -> str:
        """One line: its forms, what it loads, its splits."""
        return f"{' | '.join(self.forms)}  {self.what} (split: {self.splits})"


class CorruptedSpec(DataSpec):
    """A released corrupted set (CIFAR-10-C, ...): its split names a corruption and its
    severity (``fog-3``), and it was made from the clean spec ``clean``."""

    clean: ClassVar[str]   # the spec of the clean set it was made from ("cifar10")
    title: ClassVar[str]   # its published name ("CIFAR-10-C")
    splits = "CORRUPTION[-SEV]"
    needs_arg = True
    folder_arg = True

    def load(self, arg: str, split: str, *, image_size: int | None = None,
             download: bool = True, severity: int | None = None) -> Dataset:
        """Split ``fog-3``, or ``fog`` at ``severity`` (default 5)."""
        m = _SEVERITY.match(split)
        corruption, sev = (m["c"], int(m["s"])) if m else (split, severity or 5)
        return self.load_cell(arg, corruption, sev, image_size=image_size)

    def load_cell(self, arg: str, corruption: str, severity: int = 5, *,
                  image_size: int | None = None, subset: int | None = None,
                  subset_seed: int = SUBSET_SEED) -> Dataset:
        """One corruption × severity; ``subset`` gives ``Dataset.subset(subset, subset_seed)``
        of it (``full_size`` keeps the cell's size)."""
        raise NotImplementedError

    def survey(self, arg: str, corruptions: Sequence[str],
               severities: Sequence[float]) -> tuple[list[str], int]:
        """What the set lacks of ``corruptions`` (one entry per missing corruption, naming
        the missing file or folder) and its images per cell, without decoding any."""
        raise NotImplementedError


_REGISTRY: dict[str, DataSpec] = {}
_Kind = TypeVar("_Kind", bound=type[DataSpec])


def register_data_spec(cls: _Kind) -> _Kind:
    """Class decorator filing a kind of data spec under its ``name``."""
    spec = cls()
    for attr in ("name", "forms", "what"):
        if not getattr(spec, attr, None):
            raise TypeError(f"data spec {cls.__name__} sets no {attr}")
    if spec.name in _REGISTRY:
        raise ValueError(f"data spec {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return cls


def list_data_specs() -> list[DataSpec]:
    """The registered specs in help order (registration order, fallbacks last)."""
    specs = list(_REGISTRY.values())
    return [s for s in specs if not s.fallback] + [s for s in specs if s.fallback]


def list_corrupted_specs() -> list[CorruptedSpec]:
    """The registered released corrupted sets (``cifar10c``, ...), in help order."""
    return [s for s in list_data_specs() if isinstance(s, CorruptedSpec)]


def find_data_spec(spec: str) -> DataSpec:
    """The registered kind of ``spec``; DataError (one line, listing them) when none."""
    for s in list_data_specs():
        if s.matches(spec):
            return s
    raise DataError(f"unknown data spec {spec!r}; use one of: {data_help(', ')}")


def get_data_spec(name: str) -> DataSpec:
    """The registered spec named ``name`` (``cifar10c``)."""
    if name not in _REGISTRY:
        raise DataError(f"unknown data spec {name!r}; use one of: {data_help(', ')}")
    return _REGISTRY[name]


def data_help(sep: str = " | ") -> str:
    """Every form of every spec: the ``--data`` help and the unknown-spec message."""
    return sep.join(form for s in list_data_specs() for form in s.forms)


def data_specs_table() -> str:
    """The specs as a reStructuredText table (forms, what, splits)."""
    rows = [("spec", "what", "split")] + [
        (" | ".join(f"``{f}``" for f in s.forms), s.what, s.splits) for s in list_data_specs()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    rule = "  ".join("=" * w for w in widths)
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join([rule, lines[0], rule, *lines[1:], rule])


def absolute_spec(spec: str) -> str:
    """The spec with its folder made absolute (``imagenet:PATH``, ``hf:PATH``, a bare
    folder), so a saved config names the same data from any working directory; a spec of
    no registered kind comes back as it is (loading it names the error)."""
    for s in list_data_specs():
        if s.matches(spec):
            return s.absolute(spec)
    return spec


def load_dataset(spec: str, split: str = "test", *, image_size: int | None = None,
                 download: bool = True, severity: int | None = None,
                 subset: int | None = None) -> Dataset:
    """Load a data set by spec (``data_help()`` lists them).

    split: ``train`` / ``test`` (``train-val`` / ``train-train`` the fixed 90/10 split); for
    a released corrupted set, the corruption, with its severity as ``fog-3`` or
    ``severity=3`` (default 5). image_size: resize folder images to N×N (ImageNet: the
    crop size, default 224). subset: ``Dataset.subset(subset, SUBSET_SEED)`` of it
    (``full_size`` keeps the split's size); a folder of images decodes only those images
    (the rows are picked from the file list first), so ``--subset 16`` of ImageNet's val
    reads 16 files, not 50 000.
    """
    image_size = check_image_size(image_size)
    kind = find_data_spec(spec)
    arg = kind.argument(spec)
    if subset is not None:
        if kind.decodes_subset and "-" not in split and not isinstance(kind, CorruptedSpec):
            return kind.load_subset(arg, split, subset, image_size=image_size)
        full = load_dataset(spec, split, image_size=image_size, download=download,
                            severity=severity)
        kept = full.subset(subset, SUBSET_SEED)
        kept.full_size = len(full) if len(kept) < len(full) else None
        return kept
    if isinstance(kind, CorruptedSpec):
        return kind.load(arg, split, image_size=image_size, severity=severity)
    base_split, _, part = split.partition("-")
    if part:
        if part not in ("train", "val"):
            raise DataError(f"unknown split {split!r}; use train, test, train-train or train-val")
        train, val = train_val_split(load_dataset(spec, base_split, image_size=image_size,
                                                  download=download))
        return train if part == "train" else val
    return kind.load(arg, split, image_size=image_size, download=download)


def load_corrupted(spec: str, corruption: str, severity: int = 5, *,
                   image_size: int | None = None, subset: int | None = None,
                   subset_seed: int = SUBSET_SEED) -> Dataset:
    """One corruption × severity of a released corrupted set (``cifar10c:PATH``, ...);
    ``subset`` gives ``Dataset.subset(subset, subset_seed)`` of it, decoding only those
    images where the set is a JPEG tree (``full_size`` keeps the cell's size)."""
    kind = find_data_spec(spec)
    arg = kind.argument(spec)
    if not isinstance(kind, CorruptedSpec):
        raise DataError(f"{spec!r} is not a released corrupted set; use one of "
                        f"{', '.join(s.forms[0] for s in list_corrupted_specs())}")
    return kind.load_cell(arg, corruption, severity, image_size=image_size, subset=subset,
                          subset_seed=subset_seed)
