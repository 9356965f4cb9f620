"""Dataset keys of the store: ``name:split[@n]``, and the ``clean`` cell's name.

``cifar10:test@2000`` is a 2000-image subset of the CIFAR-10 test split (no ``@n``: the
whole split); ``cifar10@224px:test`` its images resized to 224×224 (``--image-size``, only
when that differs from the data's own size, so keys at the own size stay as they were);
``cifar10:train-val@5000`` the held-out validation part used to fit a
temperature; ``cifar10c-official:test`` the published CIFAR-10-C ``.npy`` files
(``imagenetc-official:test`` ImageNet-C's JPEG tree, and so on for every released
corrupted set); ``imagenet+jpeg85:test`` on-the-fly cells finished with the JPEG q85 save.
The role of a key is ``main`` (an evaluated split), ``val`` (a validation split) or
``official``.

>>> k = parse_dataset_key("cifar10:train-val@5000")
>>> k.name, k.split, k.n, k.role
('cifar10', 'train-val', 5000, 'val')
>>> dataset_key("cifar10", "test", 2000, 10000)
'cifar10:test@2000'
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import FailmodesError

CLEAN = "clean"               # the stressor name of the clean cell (severity 0)
VAL_SPLIT = "train-val"       # the split training holds out for temperature scaling
OFFICIAL_SUFFIX = "-official"  # <kind>-official: the cells of a released corrupted set
OFFICIAL_NAME = "cifar10c" + OFFICIAL_SUFFIX  # the published CIFAR-10-C cells
FINISH_SEP = "+"  # <name>+<finish>: on-the-fly cells finished like the released files
SIZE_TAG = "@{}px"  # <name>@<N>px: images resized to N×N, away from the data's own size
_SIZE = re.compile(r"@(\d+)px(?=\+|$)")
MAIN, VALIDATION, OFFICIAL = "main", "val", "official"   # the roles of a key
ROLES = (MAIN, VALIDATION, OFFICIAL)


class DatasetKeyError(ValueError, FailmodesError):
    """A string that is not ``name:split[@n]``."""


@dataclass(frozen=True)
class DatasetKey:
    name: str            # the dataset's name (``cifar10``, ``synthetic``, a folder name ...)
    split: str           # ``test``, ``train-val``, ...
    n: int | None = None  # subset size; None = the whole split

    def __str__(self) -> str:
        return f"{self.name}:{self.images}"

    @property
    def role(self) -> str:
        if self.name.endswith(OFFICIAL_SUFFIX):
            return OFFICIAL
        return VALIDATION if self.split.endswith("-val") else MAIN

    @property
    def finish(self) -> str:
        """The finish of on-the-fly cells (``jpeg85``), ``none`` if the name has none."""
        base, sep, fin = self.name.rpartition(FINISH_SEP)
        return fin if sep and base else "none"

    @property
    def image_side(self) -> int | None:
        """N of a ``name@Npx`` key (images resized to N×N); None at the data's own size."""
        found = _SIZE.search(self.name)
        return int(found.group(1)) if found else None

    @property
    def images(self) -> str:
        """``split[@n]``: which images, whatever the pixels came from (an official
        CIFAR-10-C key and its on-the-fly twin of the same split and size agree)."""
        return self.split + (f"@{self.n}" if self.n is not None else "")


def sized_name(name: str, side: int) -> str:
    """``cifar10`` -> ``cifar10@224px``: the dataset name of images resized to side×side."""
    return name + SIZE_TAG.format(int(side))


def dataset_key(name: str, split: str, n_used: int, n_full: int) -> str:
    """The store's key: ``name:split``, plus ``@n`` when a subset is used."""
    return str(DatasetKey(name, split, n_used if n_used < n_full else None))


def parse_dataset_key(key: str) -> DatasetKey:
    """``name:split[@n]`` -> DatasetKey; the name may itself hold a colon (the split and
    ``@n`` never do)."""
    name, sep, rest = str(key).rpartition(":")
    split, at, n = rest.partition("@")
    if not sep or not name or not split or (at and not n.isdigit()):
        raise DatasetKeyError(f"dataset key {key!r} is not name:split[@n]")
    return DatasetKey(name, split, int(n) if at else None)


def dataset_role(key: str) -> str:
    """``main``, ``val`` or ``official`` of a store key."""
    return parse_dataset_key(key).role


def is_validation(key: str) -> bool:
    """True for a validation split's key, e.g. ``cifar10:train-val@5000``."""
    return dataset_role(key) == VALIDATION


def official_name(kind: str) -> str:
    """The dataset name of a released corrupted set's cells: ``imagenetc-official``."""
    return kind + OFFICIAL_SUFFIX


def is_official(key: str) -> bool:
    """True for a released corrupted set's key (``cifar10c-official:...``, ...)."""
    return dataset_role(key) == OFFICIAL
