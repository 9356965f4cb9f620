"""Where a model comes from: ``--model ARCH --weights FILE`` (and the same in a study file or
a ``{"arch": ..., "weights": ...}`` spec) -> the pixel-space Classifier, with its provenance.

``ARCH`` is a registry name (``cifar_resnet18``), ``tv:NAME`` (torchvision), ``timm:NAME``
(timm, the optional extra ``failmodes[timm]``), ``package.module:callable`` or
``path/to/file.py:callable`` (the user's class or factory, called with ``arch_args`` and
``num_classes`` when it takes one). ``FILE`` is a state dict (see ``weights.py``). A file
given without ``ARCH`` is a failmodes checkpoint, a ``torch.export`` ExportedProgram
(``.pt2``), a TorchScript file or an ONNX file (see ``exported.py``).

>>> src = ModelSource(arch="tv:resnet18", weights="r18.pth")
>>> model = load_model(src, data_classes=ds.classes)                 # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..constants import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD
from .cam_layers import find_cam_layer, fixed_input_size
from .tta import apply_tta
from .wrapper import Classifier, ModelError, head_size

# Inputs up to this side are "CIFAR-sized": a network of unknown origin gets CIFAR-10
# statistics there, ImageNet statistics above.
CIFAR_SIZED = 32


@dataclass
class ModelSource:
    """One model as a user names it. ``classes``: names in output order, a list, a text file
    (one per line) or ``"a,b,c"``; ``mean``/``std``: per-channel statistics of the
    network's training data (default: see :func:`default_normalization`); ``input_size``:
    resize every batch to N×N first; ``cam_layer``: the Grad-CAM module name; ``tta``:
    ``flip`` evaluates the mean logits of each image and its mirror (test-time
    augmentation, only when asked: the default None is the plain forward pass)."""

    arch: str | None = None
    weights: str | None = None
    arch_args: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    classes: list[str] | str | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    input_size: int | None = None
    cam_layer: str | None = None
    tta: str | None = None

    @classmethod
    def from_spec(cls, spec: Mapping) -> ModelSource:
        """``{"arch": ..., "weights": ..., **fields}``; other keys are arch arguments (the
        older ``{"arch": "small_cnn", "width": 8}`` form)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in spec.items() if k in names}
        extra = {k: v for k, v in spec.items() if k not in names}
        kw["arch_args"] = {**extra, **dict(kw.get("arch_args") or {})}
        return cls(**kw)

    def to_spec(self) -> dict:
        """The JSON-able spec that rebuilds this model (stored with its results)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, {}, [])}


# ----------------------------------------------------------------------------- architectures
def _timm(name: str):
    try:
        import timm
    except ImportError:
        raise ModelError(f"timm:{name} needs timm: pip install 'failmodes[timm]'") from None
    if name not in timm.list_models() and not timm.is_model(name):
        raise ModelError(f"timm:{name} is not a timm model (timm.list_models('*{name[:5]}*') "
                         "lists similar names)")

    def build(num_classes=None, **kw):
        extra = {} if num_classes is None else {"num_classes": num_classes}
        return timm.create_model(name, pretrained=False, **extra, **kw)
    return build


def _torchvision(name: str):
    import torchvision.models as tvm
    if name not in tvm.list_models(module=tvm):
        raise ModelError(f"tv:{name} is not a torchvision classifier "
                         "(e.g. tv:resnet50, tv:vit_b_16, tv:mobilenet_v3_small)")

    def build(num_classes=None, **kw):
        extra = {} if num_classes is None else {"num_classes": num_classes}
        return tvm.get_model(name, weights=None, **extra, **kw)
    return build


def _user_callable(arch: str) -> Callable:
    target, _, attr = arch.rpartition(":")
    if target.endswith(".py"):
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise ModelError(f"--model {arch}: {path} not found")
        mod_name = f"_failmodes_user_{abs(hash(str(path)))}"
        if mod_name in sys.modules:
            module = sys.modules[mod_name]
        else:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:
                raise ModelError(f"--model {arch}: {path} cannot be imported as a module")
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(path.parent))  # so the file may import its neighbours
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(path.parent))
            sys.modules[mod_name] = module
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise ModelError(f"--model {arch}: cannot import {target} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ModelError(f"--model {arch}: {target} has no callable {attr!r}")
    return fn


def resolve_arch(arch: str) -> tuple[Callable[..., nn.Module], str]:
    """``arch`` -> (builder(num_classes=None|N, **arch_args) -> network, kind)."""
    if arch.startswith("timm:"):
        return _timm(arch[5:]), "timm"
    if arch.startswith("tv:"):
        return _torchvision(arch[3:]), "torchvision"
    if ":" in arch:
        fn = _user_callable(arch)
        takes_n = _accepts(fn, "num_classes")

        def build_user(num_classes=None, **kw):
            extra = {"num_classes": num_classes} if num_classes is not None and takes_n else {}
            net = fn(**extra, **kw)
            if not isinstance(net, nn.Module):
                raise ModelError(f"--model {arch} returned {type(net).__name__}, not an nn.Module")
            return net
        return build_user, "module"
    from .registry import get_entry
    entry = get_entry(arch)

    def build_registry(num_classes=None, **kw):
        return entry.build(num_classes=num_classes or entry.num_classes, **kw)
    return build_registry, "registry"


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


# ----------------------------------------------------------------------------- defaults
def default_normalization(arch: str, kind: str, net: nn.Module, size: int) -> tuple:
    """(mean, std, where from): the registry entry, timm's ``pretrained_cfg``, torchvision's
    weights meta, else CIFAR-10 statistics for CIFAR-sized input and ImageNet's above."""
    if kind == "registry":
        from .registry import get_entry
        e = get_entry(arch)
        return e.mean, e.std, f"the registry entry {arch}"
    if kind == "timm":
        cfg = getattr(net, "pretrained_cfg", None) or {}
        if cfg.get("mean") and cfg.get("std"):
            return tuple(cfg["mean"]), tuple(cfg["std"]), "timm pretrained_cfg"
    if kind == "torchvision":
        import torchvision.models as tvm
        try:
            t = tvm.get_model_weights(arch[3:]).DEFAULT.transforms()
            return tuple(t.mean), tuple(t.std), "torchvision weights meta"
        except (ValueError, KeyError, AttributeError, TypeError):
            pass
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
        from .imagenet import imagenet_classes
        return imagenet_classes(), "ImageNet (1000-way head)"
    return [f"class_{i}" for i in range(n)], "numbered (no names given)"


# ----------------------------------------------------------------------------- loading
def load_model(src: ModelSource | Mapping | str, *, data_classes=None, data_size: int | None = None,
               seed: int = 0, say: Callable[[str], None] | None = None) -> Classifier:
    """Build the Classifier ``src`` names, weights loaded, in eval mode on the CPU.

    ``data_classes``/``data_size``: the evaluated data's class names and image side, for
    the defaults; ``seed`` initialises weights that no file provides; ``say`` receives the
    lines worth printing (how the weights were fitted, the chosen mean/std).
    """
    say = say or (lambda line: print(line, file=sys.stderr))
    if isinstance(src, str):
        src = ModelSource(weights=src) if is_model_file(src) else ModelSource(src)
    elif isinstance(src, Mapping):
        src = ModelSource.from_spec(src)
    if src.arch is None:
        if src.weights is None:
            raise ModelError("a model needs --model ARCH (with --weights FILE) or a model file")
        from .exported import load_file_model
        return apply_tta(load_file_model(src, data_classes=data_classes, data_size=data_size,
                                         say=say), src.tta)
    build, kind = resolve_arch(src.arch)
    obj, digest, path = None, None, None
    if src.weights is not None:
        from .weights import read_state_dict, sha256_file
        path = Path(src.weights).expanduser().resolve()
        obj, digest = read_state_dict(path), sha256_file(path)
    n = src.num_classes or (None if src.classes is None else
                            len(resolve_classes(src, None, data_classes)[0]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            if n is None and obj is not None:
                from .weights import head_classes
                n = head_classes(_probe_build(build, src.arch_args), obj)
            if n is None and data_classes:
                n = len(data_classes)
            net = build(n, **src.arch_args)
        except TypeError as e:
            raise ModelError(f"{src.arch}: bad model argument ({e})") from None
    note = None
    if obj is not None:
        from .weights import fit_state_dict
        note = fit_state_dict(net, obj, str(path))
        say(note)
    net.eval()
    classes, classes_from = resolve_classes(src, head_size(net), data_classes)
    fixed = fixed_input_size(net)
    size = src.input_size or fixed or data_size or _entry_size(src.arch, kind)
    if src.mean is not None or src.std is not None:
        if src.mean is None or src.std is None:
            raise ModelError("--mean and --std go together; give both (R,G,B each)")
        mean, std, norm_from = tuple(src.mean), tuple(src.std), "given"
    else:
        mean, std, norm_from = default_normalization(src.arch, kind, net, size)
        say(f"{src.arch}: {fmt_stats(mean, std)} from {norm_from}; "
            "pass --mean/--std if it was trained with others")
    _check_norm(mean, std)
    layer = None
    if src.cam_layer or kind != "registry":
        try:
            layer = find_cam_layer(net, src.cam_layer)
        except ModelError:
            if src.cam_layer:
                raise  # a wrong name; without one, the cam analysis says why there is none
    resolved = dataclasses.replace(src, weights=str(path) if path else None,
                                   classes=list(classes), num_classes=len(classes),
                                   mean=list(mean), std=list(std))
    source = {"arch": src.arch, "arch_args": dict(src.arch_args), "kind": kind,
              "weights": str(path) if path else None, "weights_sha256": digest,
              "format": _format(path) if path else f"initialised (seed {seed})",
              "loaded": note, "mean": list(mean), "std": list(std),
              "normalization_from": norm_from, "classes": list(classes),
              "classes_from": classes_from, "input_size": size,
              "resize": bool(src.input_size or fixed),
              "cam_layer": layer.name if layer else _registry_cam(src.arch, kind),
              "spec": resolved.to_spec()}
    model = Classifier(net, arch=src.arch, arch_kwargs=dict(src.arch_args), class_names=classes,
                       mean=mean, std=std, input_size=size, resize=bool(src.input_size or fixed),
                       cam_layer_name=layer.name if layer else _registry_cam(src.arch, kind),
                       cam_reshape=layer.reshape if layer else None, source=source)
    return apply_tta(model.eval(), src.tta)


def is_model_file(spec: str) -> bool:
    """Whether a ``--model`` string names a file rather than an architecture."""
    return (Path(spec).expanduser().is_file() or spec.endswith(MODEL_FILE_SUFFIXES)
            or (os.sep in spec and ":" not in spec))


def _probe_build(build, arch_args) -> nn.Module:
    try:
        with torch.device("meta"):  # the default head's name, without allocating weights
            return build(None, **arch_args)
    except (RuntimeError, NotImplementedError):  # a module that cannot live on "meta"
        return build(None, **arch_args)


def _entry_size(arch: str, kind: str) -> int:
    if kind == "registry":
        from .registry import get_entry
        return get_entry(arch).input_size
    return 224


def _registry_cam(arch: str, kind: str) -> str:
    if kind == "registry":
        from .registry import get_entry
        return get_entry(arch).cam_layer
    return ""


def _format(path: Path) -> str:
    return "safetensors" if path.suffix == ".safetensors" else "torch state dict (weights_only)"


def _check_norm(mean, std) -> None:
    if len(mean) != 3 or len(std) != 3:
        raise ModelError(f"--mean/--std need 3 values each (R,G,B), got {mean} and {std}")
    if any(s <= 0 for s in std):
        raise ModelError(f"--std values must be positive, got {std}")


def fmt_stats(mean, std) -> str:
    """``mean (0.485, 0.456, 0.406) std (0.229, 0.224, 0.225)``: the line users see."""
    return " ".join(f"{k} (" + ", ".join(f"{x:.4g}" for x in v) + ")"
                    for k, v in (("mean", mean), ("std", std)))


# ----------------------------------------------------------------------------- specs
NAMED_STATS = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}


def absolute_model_spec(spec):
    """``spec`` with its file paths (weights, a ``file.py:callable``, a classes file) made
    absolute, so a saved config names the same files from any directory."""
    if isinstance(spec, str):
        p = Path(spec).expanduser()
        return str(p.resolve()) if p.is_file() or spec.endswith(MODEL_FILE_SUFFIXES) else spec
    out = dict(spec)
    if isinstance(out.get("weights"), str):
        out["weights"] = str(Path(out["weights"]).expanduser().resolve())
    arch = out.get("arch")
    if isinstance(arch, str) and ".py:" in arch:
        f, _, attr = arch.rpartition(":")
        out["arch"] = f"{Path(f).expanduser().resolve()}:{attr}"
    if isinstance(out.get("classes"), str) and Path(out["classes"]).expanduser().is_file():
        out["classes"] = str(Path(out["classes"]).expanduser().resolve())
    return out


MODEL_FILE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".pt2", ".onnx", ".ts")


def spec_from_options(model: str, weights: str | None = None, *, arch_args=(),
                      num_classes: int | None = None, classes: str | None = None,
                      mean: str | None = None, std: str | None = None,
                      input_size: int | None = None, cam_layer: str | None = None,
                      tta: str | None = None):
    """The spec of ``--model ARCH --weights FILE`` and its options (CLI strings): a plain
    string when nothing but ``--model`` is given, else a dict. ``arch_args``: ``key=value``
    strings, values read as YAML scalars (``depth=2``, ``drop_rate=0.1``, ``name=foo``);
    ``mean``/``std``: ``R,G,B`` or ``imagenet`` / ``cifar10``."""
    import yaml
    spec: dict[str, Any] = {}
    if weights is not None:
        spec["arch"], spec["weights"] = model, weights
    elif Path(model).expanduser().is_file():
        spec["weights"] = model
    else:
        spec["arch"] = model
    parsed = {}
    for item in arch_args:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ModelError(f"--arch-arg {item!r} is not key=value (e.g. depth=2)")
        parsed[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    if parsed:
        spec["arch_args"] = parsed
    for key, value in (("num_classes", num_classes), ("input_size", input_size),
                       ("cam_layer", cam_layer), ("classes", classes), ("tta", tta)):
        if value is not None:
            spec[key] = value
    for key, value in (("mean", mean), ("std", std)):
        if value is not None:
            spec[key] = _stats(key, value)
    if list(spec) == ["arch"]:
        return model
    if list(spec) == ["weights"]:
        return model
    return spec


def _stats(key: str, text: str) -> list[float]:
    name = text.strip().lower()
    if name in NAMED_STATS:
        return list(NAMED_STATS[name][0 if key == "mean" else 1])
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 3:
        raise ModelError(f"--{key} {text!r}: give R,G,B (e.g. 0.485,0.456,0.406) or "
                         f"{' / '.join(NAMED_STATS)}")
    return vals
