"""The template of the sources whose file carries its own network (``--model FILE``, no
ARCH): torch.export ExportedPrograms, TorchScript and ONNX files. A subclass opens the file
(:meth:`NetworkFileSource.open`); the template decides classes, input size, mean/std and
the Grad-CAM layer, as the ARCH template does.

What Grad-CAM needs differs: an ExportedProgram is unflattened so its submodules run and
take hooks, with gradients; TorchScript gives gradients but runs no Python hooks on its
submodules; ONNX gives no gradients. ``Classifier.cam_unavailable`` says so, and the cam
analysis shows it. The network sees normalised input, as for a state dict: pass
``--mean 0,0,0 --std 1,1,1`` when the file normalises by itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from ..cam_layers import find_cam_layer
from ..errors import ModelError
from ..specs import ModelSource
from ..weights import file_kind, sha256_file
from ..wrapper import Classifier
from ._base import Source, fmt_stats, resolve_classes, statistics_by_size

Shape = list[int | None]  # N×3×H×W, None where the file leaves a dimension free


class FixedBatch(nn.Module):
    """Runs a network exported for a fixed batch size on any batch: chunks of ``batch``,
    the last one padded by repeating its final image (the padded outputs are dropped)."""

    def __init__(self, net: nn.Module, batch: int):
        super().__init__()
        self.inner, self.batch = net, int(batch)
        # Read by Classifier.fixed_batch: callers that hook layers (Grad-CAM) must feed
        # exactly this many images per call, as hooks see every chunk's activations.
        self.fixed_batch = self.batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.batch
        if x.shape[0] == b:
            return self.inner(x)
        outs = []
        for s in range(0, x.shape[0], b):
            chunk = x[s:s + b]
            k = chunk.shape[0]
            if k < b:
                chunk = torch.cat([chunk, chunk[-1:].expand(b - k, *chunk.shape[1:])])
            outs.append(self.inner(chunk)[:k])
        return torch.cat(outs)


class NetworkFileSource(Source):
    """A model file of one ``file_kind`` (see ``weights.file_kind``), given without ARCH."""

    file_kind: ClassVar[str]
    fmt: ClassVar[str]  # the format's name in the provenance
    input = "file"
    classes = "file"

    def matches(self, src: ModelSource) -> bool:
        return (src.arch is None and src.weights is not None
                and file_kind(Path(src.weights).expanduser().resolve()) == self.file_kind)

    def open(self, path: Path) -> tuple[nn.Module, Shape | None, str | None]:
        """(network, its static input shape or None, why Grad-CAM cannot run or None)."""
        raise NotImplementedError

    def load(self, src, *, data_classes=None, data_size=None, seed=0, say) -> Classifier:
        path = Path(src.weights).expanduser().resolve()
        net, shape, unavailable = self.open(path)
        if shape and shape[0] is not None:
            net = FixedBatch(net, shape[0])
            say(f"{path.name} was exported for a batch of exactly {shape[0]}: it runs "
                f"{shape[0]} image{'s' if shape[0] > 1 else ''} per call, which is slower; "
                "export it with a dynamic batch dimension (torch.export: dynamic_shapes with "
                "torch.export.Dim; ONNX: dynamic_axes) to run whole batches")
        fixed = shape[-1] if shape and shape[-1] is not None else None
        size = src.input_size or fixed or data_size or 224
        n_out = getattr(net, "n_out", None) or _count_outputs(net, shape, size)
        classes, classes_from = resolve_classes(src, n_out, data_classes)
        if src.mean is not None and src.std is not None:
            mean, std, norm_from = tuple(src.mean), tuple(src.std), "given"
        else:
            mean, std, norm_from = statistics_by_size(size)
            say(f"{path.name}: {fmt_stats(mean, std)} from {norm_from}; pass --mean/--std if "
                "it was trained with others (0,0,0 and 1,1,1 if it normalises itself)")
        layer = None
        if unavailable is None:
            root = net.inner if isinstance(net, FixedBatch) else net
            try:
                layer = find_cam_layer(root, src.cam_layer)
            except ModelError as e:
                unavailable = str(e)
            if isinstance(net, FixedBatch) and layer is not None:
                layer = type(layer)(f"inner.{layer.name}", layer.reshape)
        digest = sha256_file(path)
        # What weights_hash() keys on where torch sees no parameters (nn.Module's typed
        # __setattr__ takes tensors and modules only).
        object.__setattr__(net, "weights_digest", digest)
        fmt = self.fmt
        source = {"arch": fmt, "kind": self.file_kind, "weights": str(path),
                  "weights_sha256": digest, "format": fmt, "loaded": None, "mean": list(mean),
                  "std": list(std), "normalization_from": norm_from, "classes": list(classes),
                  "classes_from": classes_from, "input_size": size,
                  "resize": bool(src.input_size or fixed),
                  "spec": {"weights": str(path), "classes": list(classes), "mean": list(mean),
                           "std": list(std),
                           **({"input_size": src.input_size} if src.input_size else {}),
                           **({"cam_layer": src.cam_layer} if src.cam_layer else {})}}
        model = Classifier(net, arch=fmt, arch_kwargs={}, class_names=classes, mean=mean,
                           std=std, input_size=size, resize=bool(src.input_size or fixed),
                           cam_layer_name=layer.name if layer else "",
                           cam_reshape=layer.reshape if layer else None,
                           cam_unavailable=unavailable, source=source)
        return model.eval()


def load_error(path: Path, what: str, e: Exception) -> ModelError:
    return ModelError(f"{path} is not a loadable {what} "
                      f"({type(e).__name__}: {str(e).splitlines()[0][:120]})")


def _count_outputs(net: nn.Module, shape: Shape | None, size: int) -> int | None:
    b = shape[0] if shape and shape[0] is not None else 2
    h = shape[2] if shape and shape[2] is not None else size
    w = shape[3] if shape and shape[3] is not None else size
    with torch.no_grad():
        try:
            y = net(torch.zeros(b, 3, h, w))
        except Exception as e:  # whatever the exported graph raises on this input
            raise ModelError(f"the model file failed on a {b}×3×{h}×{w} input "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:100]}); "
                             "pass --input-size") from None
    return int(y.shape[-1]) if y.ndim == 2 else None
