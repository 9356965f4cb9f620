"""An explicit map from a network's output classes to the evaluated data's classes, for a
head that is not as wide as the data (an ImageNet classifier on CIFAR-10): only when asked
(``class_map`` in the model's spec); without one, a width mismatch is refused.

Each data class gets the log of the summed probability of its source classes
(``logsumexp`` of their logits), so the softmax over the data's classes is the network's own
probability mass, renormalised over the mapped classes; unmapped outputs drop out.

The map: ``{data class: [source classes]}``, a source class being a name, an index or an
inclusive index range ``"151-268"`` — or a YAML file of that mapping.

>>> head = MappedHead(nn.Identity(), [[0, 1], [2]])
>>> head(torch.log(torch.tensor([[0.2, 0.2, 0.6]]))).exp()
tensor([[0.4000, 0.6000]])
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from .errors import ModelError


class MappedHead(nn.Module):
    """``net``'s logits N×C → N×K: log of the summed softmax mass of each group (up to the
    shared normaliser, which the K-way softmax removes)."""

    def __init__(self, net: nn.Module, groups: Sequence[Sequence[int]]):
        super().__init__()
        self.inner = net
        self.groups = [list(g) for g in groups]
        self.n_source = max(max(g) for g in self.groups) + 1
        # Keeps a fixed batch (a .pt2 for batch 1) visible to Grad-CAM through the map.
        if getattr(net, "fixed_batch", None):
            self.fixed_batch = net.fixed_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from .wrapper import logits_of
        z, _ = logits_of(self.inner(x), int(x.shape[0]))
        if z.shape[1] < self.n_source:
            raise ModelError(f"the class map names output {self.n_source - 1} but the network "
                             f"gives {z.shape[1]} logits")
        return torch.stack([torch.logsumexp(z[:, g], dim=1) for g in self.groups], dim=1)


def read_class_map(given) -> dict[str, list]:
    """A ``class_map`` as given (a mapping, or a YAML file of one) -> ``{class: [entries]}``."""
    if isinstance(given, (str, Path)):
        import yaml
        path = Path(given).expanduser()
        if not path.is_file():
            raise ModelError(f"class_map {given!r}: no such file (a YAML mapping of data "
                             "class -> source classes)")
        given = yaml.safe_load(path.read_text())
    if not isinstance(given, Mapping) or not given:
        raise ModelError("class_map must map each data class to a list of the network's "
                         "classes (names, indices or 'a-b' index ranges)")
    return {str(k): list(v) if isinstance(v, (list, tuple)) else [v] for k, v in given.items()}


def map_groups(mapping: Mapping[str, list], source: Sequence[str],
               target: Sequence[str]) -> list[list[int]]:
    """The source indices of each ``target`` class, in ``target``'s order; one ModelError
    line for a class the map leaves out, an unknown name or an index past the head."""
    missing = [c for c in target if c not in mapping]
    extra = [c for c in mapping if c not in target]
    if missing or extra:
        raise ModelError(f"class_map must name each data class once: missing {missing[:5]}, "
                         f"not in the data {extra[:5]}")
    index = {name: i for i, name in enumerate(source)}
    groups = []
    for c in target:
        idx: list[int] = []
        for entry in mapping[c]:
            idx += _entry(entry, index, len(source), c)
        if not idx:
            raise ModelError(f"class_map: {c!r} maps to no class of the network")
        groups.append(sorted(set(idx)))
    return groups


def _entry(entry, index: Mapping[str, int], n: int, c: str) -> list[int]:
    if isinstance(entry, int) and not isinstance(entry, bool):
        out = [entry]
    elif isinstance(entry, str) and entry in index:
        out = [index[entry]]
    elif isinstance(entry, str) and entry.count("-") == 1 and entry.replace("-", "").isdigit():
        a, b = (int(v) for v in entry.split("-"))
        out = list(range(a, b + 1))
    else:
        raise ModelError(f"class_map: {c!r} -> {entry!r} is not a class name, index or 'a-b' "
                         "range of the network's outputs")
    bad = [i for i in out if not 0 <= i < n]
    if bad:
        raise ModelError(f"class_map: {c!r} -> index {bad[0]} is outside the {n}-way head")
    return out


def apply_class_map(model, given, data_classes: Sequence[str] | None, say) -> None:
    """Put ``MappedHead`` on ``model`` (a Classifier, changed in place): its classes become
    the data's, its provenance and rebuild spec keep the map."""
    if not data_classes:
        raise ModelError("class_map maps onto the evaluated data's classes; load the model "
                         "for a data set (data_classes=...)")
    mapping = read_class_map(given)
    source_names = list(model.class_names)
    with torch.no_grad():  # the head's real width (a conv head hides it from the source);
        # 32 px is enough: a network of one input size gets it resized by the Classifier
        width = int(model(torch.zeros(2, 3, 32, 32)).shape[1])
    if width != len(source_names):
        source_names = [f"class_{i}" for i in range(width)]
    groups = map_groups(mapping, source_names, data_classes)
    model.net = MappedHead(model.net, groups)
    if model.cam_layer_name:
        model.cam_layer_name = f"inner.{model.cam_layer_name}"
    model.class_names = list(data_classes)
    resolved = {c: [source_names[i] for i in g] for c, g in zip(data_classes, groups, strict=True)}
    model.source["class_map"] = resolved
    if isinstance(model.source.get("spec"), dict):
        model.source["spec"]["class_map"] = resolved
    used = sum(len(g) for g in groups)
    say(f"class map: the {len(groups)} data classes from {used} of the network's "
        f"{len(source_names)} outputs (log of their summed probability; the other "
        f"{len(source_names) - used} drop out)")
