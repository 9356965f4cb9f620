"""The source registry: :class:`Source` (``matches``/``load``/``describe``), the decorator
that files a source, the lookup, and the defaults every source shares (class names, mean/std
by input size).

A source is tried in ``order`` (lower first); the first whose ``matches`` is true loads the
spec. Catch-alls sit last: ``module:callable`` (any ``X:Y`` no prefixed source claimed) and
a registry name (any ARCH without ``:``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from ...constants import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD
from ..errors import ModelError
from ..specs import ModelSource
from ..wrapper import Classifier

# Inputs up to this side are "CIFAR-sized": a network of unknown origin gets CIFAR-10
# statistics there, ImageNet statistics above.
CIFAR_SIZED = 32

Say = Callable[[str], None]


class Source:
    """One way to name a model. Subclasses set ``syntax`` (how a user writes it, shown in
    ``--model`` help and ``failmodes models``), ``kind`` (stored in the provenance) and
    ``order``, and implement :meth:`matches`, :meth:`load` and :meth:`describe`.
    ``input``/``classes``: the ``failmodes models`` columns (what the source decides them
    from)."""

    syntax: ClassVar[str]
    kind: ClassVar[str]
    order: ClassVar[int] = 50
    input: ClassVar[str] = "-"
    classes: ClassVar[str] = "-"

    def matches(self, src: ModelSource) -> bool:
        """Whether this source loads ``src``."""
        raise NotImplementedError

    def load(self, src: ModelSource, *, data_classes: Sequence[str] | None = None,
             data_size: int | None = None, seed: int = 0, say: Say) -> Classifier:
        """The Classifier ``src`` names, in eval mode on the CPU (``tta`` not applied)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for ``failmodes models``: what the source loads and what it needs."""
        raise NotImplementedError

    def check(self, src: ModelSource) -> None:
        """What can be checked without building the network (a study checks it first)."""

    def absolute(self, arch: str) -> str:
        """``arch`` with the file paths it names made absolute (default: none)."""
        return arch


_SOURCES: list[Source] = []


def register_source(cls: type[Source]) -> type[Source]:
    """Class decorator filing a source (one instance) in the registry, kept in ``order``."""
    if any(type(s).__name__ == cls.__name__ for s in _SOURCES):
        raise ValueError(f"model source {cls.__name__} registered twice")
    _SOURCES.append(cls())
    _SOURCES.sort(key=lambda s: s.order)  # stable: equal orders keep their import order
    return cls


def list_sources() -> list[Source]:
    """Every registered source, in the order they are tried."""
    return list(_SOURCES)


def find_source(src: ModelSource) -> Source:
    """The first source (in ``order``) that matches ``src``."""
    if src.arch is None and src.weights is None:
        raise ModelError("a model needs --model ARCH (with --weights FILE) or a model file")
    for source in _SOURCES:
        if source.matches(src):
            return source
    what = src.arch if src.arch is not None else src.weights
    raise ModelError(f"no model source takes {what!r}; `failmodes models` lists the sources")


# ----------------------------------------------------------------------------- defaults
def statistics_by_size(size: int) -> tuple:
    """(mean, std, where from) of weights that record no statistics: the one rule for every
    source and file format (a tv: state dict, timm, .pt2, TorchScript, ONNX, file.py:callable),
    so one network saved in two formats is normalised alike. CIFAR-10's at inputs up to 32
    px, ImageNet's above. Only what the weights themselves record overrides it (a failmodes
    checkpoint, a transformers preprocessor config, torchvision's pretrained weights)."""
    if size <= CIFAR_SIZED:
        return CIFAR10_MEAN, CIFAR10_STD, f"CIFAR-10 statistics ({size}-px input)"
    return IMAGENET_MEAN, IMAGENET_STD, f"ImageNet statistics ({size}-px input)"


def resolve_classes(src: ModelSource, n_out: int | None, data_classes) -> tuple[list[str], str]:
    """Class names in output order and where they came from."""
    names = src.classes
    if isinstance(names, str):
        p = Path(names).expanduser()
        if p.is_file():
            names = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
            how = f"file {p}"
        else:
            names, how = [c.strip() for c in names.split(",") if c.strip()], "given"
    elif names is not None:
        names, how = list(names), "given"
    if names is not None:
        if n_out is not None and len(names) != n_out:
            raise ModelError(f"{len(names)} class names for a {n_out}-way head; give one name "
                             "per output, in output order")
        return names, how
    n = n_out or (len(data_classes) if data_classes else None)
    if n is None:
        raise ModelError("cannot tell the number of classes; pass --num-classes or --classes")
    if data_classes and len(data_classes) == n:
        return list(data_classes), "the data's class names"
    if n == 1000:
        from ..imagenet import imagenet_classes
        return imagenet_classes(), "ImageNet (1000-way head)"
    return [f"class_{i}" for i in range(n)], "numbered (no names given)"


def given_statistics(src: ModelSource) -> tuple | None:
    """(mean, std, "given") when the spec sets them, None when it sets neither."""
    if src.mean is None and src.std is None:
        return None
    if src.mean is None or src.std is None:
        raise ModelError("--mean and --std go together; give both (R,G,B each)")
    return tuple(src.mean), tuple(src.std), "given"


def check_statistics(mean, std) -> None:
    if len(mean) != 3 or len(std) != 3:
        raise ModelError(f"--mean/--std need 3 values each (R,G,B), got {mean} and {std}")
    if any(s <= 0 for s in std):
        raise ModelError(f"--std values must be positive, got {std}")


def fmt_stats(mean, std) -> str:
    """``mean (0.485, 0.456, 0.406) std (0.229, 0.224, 0.225)``: the line users see."""
    return " ".join(f"{k} (" + ", ".join(f"{x:.4g}" for x in v) + ")"
                    for k, v in (("mean", mean), ("std", std)))

