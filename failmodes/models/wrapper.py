"""The model wrapper: pixel-space [0, 1] images in, logits out; carries its class names,
normalisation, input size, Grad-CAM layer and where it came from.

>>> net = torchvision.models.resnet18(num_classes=10)                     # doctest: +SKIP
>>> model = wrap(net, mean=IMAGENET_MEAN, std=IMAGENET_STD, classes=ds.classes)  # doctest: +SKIP
>>> model(torch.rand(4, 3, 32, 32)).shape                                 # doctest: +SKIP
torch.Size([4, 10])
"""
from __future__ import annotations

import itertools
import weakref
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .cam_layers import find_cam_layer, fixed_input_size
from .errors import ModelError


class Classifier(nn.Module):
    """Wraps a network that expects normalised input.

    ``model(x)`` with x float N×3×H×W in [0, 1] returns logits N×C. ``arch`` and
    ``arch_kwargs`` rebuild the network from the registry; ``cam_layer_name`` names the
    module Grad-CAM hooks (found automatically when empty), ``cam_reshape`` turns that
    layer's tokens into a map (ViTs), ``cam_unavailable`` says why Grad-CAM cannot run
    (ONNX, TorchScript). ``resize``: images are resized (bilinear) to ``input_size`` when
    their size differs, for networks that accept one size only. ``source`` is the
    provenance stored with every result: arch, weights file and its SHA-256, mean/std and
    where they came from, classes.
    """

    mean: torch.Tensor  # buffers 1×3×1×1, registered in __init__
    std: torch.Tensor

    def __init__(self, net: nn.Module, *, arch: str, arch_kwargs: dict, class_names: list[str],
                 mean, std, input_size: int, cam_layer_name: str, resize: bool = False,
                 cam_reshape=None, cam_unavailable: str | None = None,
                 source: dict | None = None):
        super().__init__()
        self.net = net
        self.arch = arch
        self.arch_kwargs = dict(arch_kwargs)
        self.class_names = list(class_names)
        self.input_size = int(input_size)
        self.resize = bool(resize)
        self.cam_layer_name = cam_layer_name
        self.cam_reshape = cam_reshape
        self.cam_unavailable = cam_unavailable
        self.source = dict(source or {"arch": arch})
        # On the network's device: a net already on the GPU must not meet CPU statistics.
        home = _device_of(net)
        for key, v in (("mean", mean), ("std", std)):
            self.register_buffer(key, torch.tensor(v, dtype=torch.float32, device=home)
                                 .view(1, 3, 1, 1))
        # How the logits were taken from a network that returns more than a tensor (a tuple,
        # a dict, a ModelOutput); None for a plain tensor. Said once by the evaluation.
        self.output_note: str | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def fixed_batch(self) -> int | None:
        """The one batch size the network runs (a file exported for batch 1), else None."""
        b = getattr(self.net, "fixed_batch", None)
        return int(b) if b else None

    @property
    def cam_layer(self) -> nn.Module:
        """The module Grad-CAM hooks; found automatically when none was named."""
        if self.cam_unavailable:
            raise ModelError(self.cam_unavailable)
        if not self.cam_layer_name:
            found = find_cam_layer(self.net)
            self.cam_layer_name, self.cam_reshape = found.name, found.reshape
        try:
            return self.net.get_submodule(self.cam_layer_name)
        except AttributeError:  # re-raised: hasattr() would read it as "no cam_layer"
            raise ModelError(f"{self.arch}: no module {self.cam_layer_name!r} for Grad-CAM; "
                             "pass --cam-layer NAME") from None

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.input_size
        if self.resize and tuple(x.shape[-2:]) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False,
                              antialias=min(x.shape[-2:]) > s)
        logits, note = logits_of(self.net(self.normalize(x)), int(x.shape[0]), self.arch)
        if note is not None and self.output_note is None:
            self.output_note = note
        return logits

    def n_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters())


def _device_of(net: nn.Module) -> torch.device:
    """Where ``net``'s first parameter (else buffer) lives; the CPU for a bare module."""
    t = next(itertools.chain(net.parameters(), net.buffers()), None)
    return torch.device("cpu") if t is None else t.device


def logits_of(out, n: int, arch: str = "the network") -> tuple[torch.Tensor, str | None]:
    """The N×C logits in a network's output and, when the output was not a plain tensor,
    one line saying which part was taken. A dict (or ``ModelOutput``) gives its ``logits``
    entry, else its only tensor; a tuple/list its only tensor, else its only N×C tensor.
    Anything ambiguous, 1-D, or for another batch size raises ModelError (one line)."""
    note = None
    if not isinstance(out, torch.Tensor):
        what = type(out).__name__
        if isinstance(out, Mapping) or hasattr(out, "logits"):
            items = dict(out) if isinstance(out, Mapping) else {"logits": out.logits}
            if isinstance(items.get("logits"), torch.Tensor):
                out, note = items["logits"], f"returns a {what}; its 'logits' entry is used"
            else:
                tensors = [k for k, v in items.items() if isinstance(v, torch.Tensor)]
                if len(tensors) != 1:
                    raise ModelError(f"{arch} returns a {what} with {len(tensors)} tensors "
                                     f"({', '.join(map(str, tensors[:4])) or 'none'}) and no "
                                     "'logits' entry; make forward return the N×C logits")
                out = items[tensors[0]]
                note = f"returns a {what}; its only tensor {tensors[0]!r} is used as the logits"
        elif isinstance(out, (tuple, list)):
            elements = [(i, v) for i, v in enumerate(out) if isinstance(v, torch.Tensor)]
            fit = [(i, v) for i, v in elements if v.ndim == 2 and v.shape[0] == n]
            if len(elements) == 1 or len(fit) == 1:
                which = "only tensor" if len(elements) == 1 else "only N×C tensor"
                i, out = elements[0] if len(elements) == 1 else fit[0]
                note = f"returns a {what}; its {which} (element {i}) is used as the logits"
            else:
                raise ModelError(f"{arch} returns a {what} of {len(elements)} tensors "
                                 f"({len(fit)} of them N×C), so which are the logits is "
                                 "ambiguous; make forward return the N×C logits")
        else:
            raise ModelError(f"{arch} returns a {what}, not a tensor of logits")
    if out.ndim != 2 or out.shape[0] != n:
        raise ModelError(f"{arch} returned a tensor of shape {tuple(out.shape)} for a batch "
                         f"of {n} images; expected {n}×C logits (one row per image)")
    return out, note


def wrap(net: nn.Module, *, mean: Sequence[float], std: Sequence[float],
         classes: Sequence[str] | None = None, input_size: int | None = None,
         cam_layer: str | None = None, arch: str | None = None) -> Classifier:
    """Any ``nn.Module`` taking normalised N×3×H×W input -> the pixel-space Classifier.

    ``mean``/``std``: the per-channel statistics the network was trained with (pass
    ``(0, 0, 0)``/``(1, 1, 1)`` when it normalises itself). ``classes``: names in output
    order (default ``class_0..``, counted from the head). ``input_size``: resize every
    batch to N×N first (default: only for networks that accept one size, e.g. ViTs).
    ``cam_layer``: the Grad-CAM module name (default: found automatically).
    """
    if not isinstance(net, nn.Module):
        raise ModelError(f"wrap() takes a torch.nn.Module, got {type(net).__name__}")
    for key, v in (("mean", mean), ("std", std)):
        if len(tuple(v)) != 3:
            raise ModelError(f"wrap(): {key} needs 3 values (R, G, B), got {tuple(v)}")
    if any(float(v) <= 0 for v in std):
        raise ModelError(f"wrap(): std must be positive, got {tuple(std)}")
    if classes is None:
        n = head_size(net)
        if n is None:
            raise ModelError("wrap(): cannot tell the number of outputs of "
                             f"{type(net).__name__}; pass classes=[...]")
        classes = [f"class_{i}" for i in range(n)]
    fixed = fixed_input_size(net)
    size = input_size or fixed or 32
    layer = None
    try:
        layer = find_cam_layer(net, cam_layer)
    except ModelError:
        if cam_layer:
            raise
    name = arch or f"{type(net).__module__}.{type(net).__qualname__}"
    model = Classifier(net, arch=name, arch_kwargs={}, class_names=list(classes),
                      mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
                      input_size=size, resize=bool(input_size or fixed),
                      cam_layer_name=layer.name if layer else "",
                      cam_reshape=layer.reshape if layer else None,
                      source={"arch": name, "weights": None, "format": "in-memory module",
                              "mean": [float(v) for v in mean], "std": [float(v) for v in std],
                              "normalization_from": "wrap()", "classes": list(classes),
                              "input_size": size, "cam_layer": layer.name if layer else None})
    model.training = net.training  # the wrapper takes the network's mode, changing nothing
    return model


def head_size(net: nn.Module) -> int | None:
    """Outputs of the classifier head: timm's ``get_classifier()``, else the last Linear."""
    get = getattr(net, "get_classifier", None)
    if callable(get):
        head = get()
        if isinstance(head, nn.Linear):
            return head.out_features
    last = None
    for m in net.modules():
        if isinstance(m, nn.Linear):
            last = m
    return last.out_features if last is not None else None


# In-memory models evaluated in this process, by weights hash, held weakly: the analyses of
# a run (Grad-CAM) reach a model passed to run_evaluation(models=...) while the caller keeps it.
_KEPT: weakref.WeakValueDictionary[str, Classifier] = weakref.WeakValueDictionary()


def remember(key: str, model: Classifier) -> None:
    _KEPT[key] = model


def recall(key: str) -> Classifier | None:
    return _KEPT.get(key)
