"""The template of the sources that name an architecture (``--model ARCH``, optionally with
``--weights FILE``, a state dict): build the network, fit the weights, then decide classes,
input size, mean/std and the Grad-CAM layer. A subclass overrides the hooks where its
architectures know better than the defaults (:meth:`builder` always)."""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from ..cam_layers import find_cam_layer, fixed_input_size
from ..errors import ModelError, first_line
from ..registry import ModelEntry
from ..specs import ModelSource
from ..weights import fit_state_dict, head_classes, read_state_dict, sha256_file
from ..wrapper import Classifier, head_size
from ._base import (
    Source,
    check_statistics,
    find_source,
    fmt_stats,
    given_statistics,
    resolve_classes,
    statistics_by_size,
)

Builder = Callable[..., nn.Module]  # build(num_classes: int | None, **arch_args) -> network


class ArchitectureSource(Source):
    """An ``ARCH`` source; ``prefix`` (e.g. ``tv:``) is what :meth:`matches` looks for."""

    prefix: ClassVar[str] = ""

    def matches(self, src: ModelSource) -> bool:
        return src.arch is not None and bool(self.prefix) and src.arch.startswith(self.prefix)

    # ------------------------------------------------------------------ hooks
    def builder(self, arch: str) -> Builder:
        """``build(num_classes, **arch_args)``; None keeps the architecture's own head.
        Raises ModelError for a name the source does not know."""
        raise NotImplementedError

    def entry(self, arch: str) -> ModelEntry | None:
        """The architecture's registry card, for ``create_model`` (None: it has none)."""
        return None

    def input_size(self, arch: str) -> int:
        """The input side when neither the spec, the network nor the data says."""
        return 224

    def statistics(self, src: ModelSource, net: nn.Module, size: int) -> tuple:
        """(mean, std, where from) when the spec gives none: what the weights record (the
        source overrides this where they do), else the one rule of ``statistics_by_size``."""
        return statistics_by_size(size)

    def registered_cam(self, arch: str) -> str | None:
        """The Grad-CAM module the architecture names (None: found from the network)."""
        return None

    def check(self, src: ModelSource) -> None:
        assert src.arch is not None
        self.builder(src.arch)

    # ------------------------------------------------------------------ the template
    def load(self, src, *, data_classes=None, data_size=None, seed=0, say) -> Classifier:
        assert src.arch is not None
        build = self.builder(src.arch)
        obj, digest, path = None, None, None
        if src.weights is not None:
            path = Path(src.weights).expanduser().resolve()
            obj, digest = read_state_dict(path), sha256_file(path)
        n = src.num_classes or (None if src.classes is None else
                                len(resolve_classes(src, None, data_classes)[0]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                if n is None and obj is not None:
                    hint = len(data_classes) if data_classes else None
                    n = head_classes(_probe_build(build, src.arch_args, hint), obj)
                if n is None and data_classes:
                    n = len(data_classes)
                net = build(n, **src.arch_args)
            except ModelError:
                raise
            except TypeError as e:
                raise ModelError(f"{src.arch}: bad model argument ({e})") from None
            except (Exception, SystemExit) as e:  # whatever the user's factory raises
                raise ModelError(f"{src.arch}: building the network raised "
                                 f"{first_line(e)}") from None
        note = None
        if obj is not None:
            note = fit_state_dict(net, obj, str(path))
            say(note)
        net.eval()
        classes, classes_from = resolve_classes(src, head_size(net), data_classes)
        fixed = fixed_input_size(net)
        size = src.input_size or fixed or data_size or self.input_size(src.arch)
        given = given_statistics(src)
        if given is not None:
            mean, std, norm_from = given
        else:
            mean, std, norm_from = self.statistics(src, net, size)
            say(f"{src.arch}: {fmt_stats(mean, std)} from {norm_from}; "
                "pass --mean/--std if it was trained with others")
        check_statistics(mean, std)
        registered = self.registered_cam(src.arch)
        layer = None
        if src.cam_layer or registered is None:
            try:
                layer = find_cam_layer(net, src.cam_layer)
            except ModelError:
                if src.cam_layer:
                    raise  # a wrong name; without one, the cam analysis says why there is none
        cam_name = layer.name if layer else (registered or "")
        resolved = dataclasses.replace(src, weights=str(path) if path else None,
                                       classes=list(classes), num_classes=len(classes),
                                       mean=list(mean), std=list(std))
        source = {"arch": src.arch, "arch_args": dict(src.arch_args), "kind": self.kind,
                  "weights": str(path) if path else None, "weights_sha256": digest,
                  "format": _format(path) if path else self.unfiled(src, build, n, net, seed),
                  "loaded": note, "mean": list(mean), "std": list(std),
                  "normalization_from": norm_from, "classes": list(classes),
                  "classes_from": classes_from, "input_size": size,
                  "resize": bool(src.input_size or fixed), "cam_layer": cam_name,
                  "spec": resolved.to_spec()}
        model = Classifier(net, arch=src.arch, arch_kwargs=dict(src.arch_args),
                           class_names=classes, mean=mean, std=std, input_size=size,
                           resize=bool(src.input_size or fixed), cam_layer_name=cam_name,
                           cam_reshape=layer.reshape if layer else None, source=source)
        return model.eval()

    def unfiled(self, src: ModelSource, build: Builder, n: int | None, net: nn.Module,
                seed: int) -> str:
        """How a network built without a weights file got its weights, for the provenance:
        ``initialised (seed N)``, unless the builder sets them itself (a user factory that
        loads its own file): then another seed builds the very same weights."""
        if self.kind != "module":
            return f"initialised (seed {seed})"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            other = build(n, **src.arch_args)
        mine, theirs = net.state_dict(), other.state_dict()
        float_keys = [k for k, v in mine.items() if v.is_floating_point()]
        if float_keys and all(k in theirs and torch.equal(mine[k], theirs[k].to(mine[k].device))
                              for k in float_keys):
            return f"weights set by {src.arch} itself (the same for every seed)"
        return f"initialised (seed {seed})"

    def create(self, arch: str, *, class_names: list[str] | None = None,
               num_classes: int | None = None, mean=None, std=None, **kwargs) -> Classifier:
        """``create_model``: the registry card's defaults, weights from the global RNG, the
        network's training mode kept."""
        entry = self.entry(arch)
        if entry is None:
            raise ModelError(f"{arch}: create_model builds registry names and tv:NAME "
                             f"(`failmodes models`); load_model({{'arch': {arch!r}}}) "
                             f"builds {self.syntax}")
        if class_names is None and entry.class_names is not None:
            class_names = entry.class_names()
        if class_names is None:
            n = num_classes or entry.num_classes
            class_names = [f"class_{i}" for i in range(n)]
        if num_classes is not None and num_classes != len(class_names):
            raise ModelError(f"{arch}: num_classes={num_classes} but {len(class_names)} "
                             "class names")
        try:
            net = entry.build(num_classes=len(class_names), **kwargs)
        except TypeError as e:
            raise ModelError(f"{arch}: bad model argument ({e})") from None
        return Classifier(net, arch=arch, arch_kwargs=kwargs, class_names=class_names,
                          mean=mean or entry.mean, std=std or entry.std,
                          input_size=entry.input_size, cam_layer_name=entry.cam_layer)


def _probe_build(build: Builder, arch_args, n_hint: int | None = None) -> nn.Module:
    def probe(device=None):
        try:
            with torch.device(device) if device else contextlib.nullcontext():
                return build(None, **arch_args)
        except TypeError as e:  # a factory that requires num_classes: any count names the head
            if n_hint is None or "num_classes" not in str(e):
                raise
            with torch.device(device) if device else contextlib.nullcontext():
                return build(n_hint, **arch_args)
    try:
        return probe("meta")  # the default head's name, without allocating weights
    except (RuntimeError, NotImplementedError):  # a module that cannot live on "meta"
        return probe()


def _format(path: Path) -> str:
    return "safetensors" if path.suffix == ".safetensors" else "torch state dict (weights_only)"


def create(arch: str, **kwargs) -> Classifier:
    """``create_model`` of an architecture name: the ARCH source that takes it builds it.
    ``None`` keyword arguments are dropped, so CLI defaults never override a model's own."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    source = find_source(ModelSource(arch=arch))
    if not isinstance(source, ArchitectureSource):
        raise ModelError(f"{arch}: not an architecture; load_model takes model files")
    return source.create(arch, **kwargs)
