"""Model files that carry their own network: failmodes checkpoints, ``torch.export``
ExportedPrograms (``.pt2``, the format PyTorch recommends), TorchScript files and ONNX
files (run by onnxruntime, the optional extra ``failmodes[onnx]``).

Each becomes a Classifier like any other. What Grad-CAM needs differs: an ExportedProgram
is unflattened (``torch.export.unflatten``) so its submodules run and take hooks, with
gradients; TorchScript gives gradients but runs no Python hooks on its submodules; ONNX
gives no gradients. ``Classifier.cam_unavailable`` says so, and the cam analysis shows it.
The network sees normalised input, as for a state dict: pass ``--mean 0,0,0 --std 1,1,1``
when the file normalises by itself.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .wrapper import Classifier, ModelError

TORCHSCRIPT_NO_CAM = ("TorchScript modules run no Python hooks on their submodules, so "
                      "Grad-CAM cannot reach a layer; save the model with torch.export.save "
                      "(.pt2) for Grad-CAM")
ONNX_NO_CAM = "ONNX models run in onnxruntime, which gives no gradients; Grad-CAM needs them"


class FixedBatch(nn.Module):
    """Runs a network exported for a fixed batch size on any batch: chunks of ``batch``,
    the last one padded by repeating its final image (the padded outputs are dropped)."""

    def __init__(self, net: nn.Module, batch: int):
        super().__init__()
        self.inner, self.batch = net, int(batch)

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


class OnnxNet(nn.Module):
    """An ONNX classifier in onnxruntime: N×3×H×W float32 in, logits out, on the input's
    device (computed on the CPU, or on CUDA where onnxruntime-gpu provides it)."""

    def __init__(self, path: Path):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError(f"{path} is an ONNX file; running it needs onnxruntime: "
                             "pip install 'failmodes[onnx]'") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()  # honour --threads, like torch
        opts.log_severity_level = 3
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"{path} is not a loadable ONNX model "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
        inp = self.session.get_inputs()
        if len(inp) != 1 or len(inp[0].shape) != 4:
            raise ModelError(f"{path}: expected one N×3×H×W input, got "
                             f"{[(i.name, i.shape) for i in inp]}")
        self.input_name = inp[0].name
        self.input_shape = [d if isinstance(d, int) else None for d in inp[0].shape]
        out = self.session.get_outputs()[0].shape
        self.n_out = out[-1] if out and isinstance(out[-1], int) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().to("cpu", torch.float32).contiguous().numpy()
        y = self.session.run(None, {self.input_name: arr})[0]
        return torch.from_numpy(y).to(x.device)


def _static_input(ep) -> list[int | None] | None:
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in ep.graph_signature.user_inputs:
            val = node.meta.get("val")
            if val is not None and val.ndim == 4:
                return [d if isinstance(d, int) else None for d in val.shape]
    return None


def _load_exported(path: Path) -> tuple[nn.Module, list[int | None] | None]:
    try:
        ep = torch.export.load(str(path))
    except Exception as e:  # a corrupt archive or one from an incompatible torch
        raise ModelError(f"{path} is not a loadable ExportedProgram "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    shape = _static_input(ep)
    # Unflattened, the exported graph runs module by module, so forward hooks (Grad-CAM)
    # see each submodule's output; ep.module() alone is one flat graph.
    return torch.export.unflatten(ep), shape


def _load_torchscript(path: Path) -> nn.Module:
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # torch.jit raises RuntimeError and its own types
        raise ModelError(f"{path} is not a loadable TorchScript file "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None


def load_file_model(src, *, data_classes=None, data_size: int | None = None,
                    say: Callable[[str], None]) -> Classifier:
    """The Classifier in a model file ``src.weights`` (no ``--model ARCH`` given)."""
    from .cam_layers import find_cam_layer
    from .sources import default_normalization, fmt_stats, resolve_classes
    from .weights import file_kind, read_state_dict, sha256_file
    path = Path(src.weights).expanduser().resolve()
    kind = file_kind(path)
    if kind in ("torch", "safetensors"):
        obj = read_state_dict(path)
        from .checkpoint import CKPT_FORMAT, load_checkpoint
        if isinstance(obj, dict) and obj.get("format") == CKPT_FORMAT:
            model, payload = load_checkpoint(path)
            model.source.update(weights=str(path), weights_sha256=sha256_file(path),
                                format="failmodes checkpoint", classes=model.class_names,
                                train_data=(payload.get("extra") or {}).get("data"),
                                mean=model.mean.flatten().tolist(),
                                std=model.std.flatten().tolist(),
                                normalization_from="the checkpoint")
            return model
        raise ModelError(f"{path} holds weights only; say which network they fit: "
                         "--model ARCH --weights FILE (ARCH: a registry name, tv:NAME, "
                         "timm:NAME or module:callable)")
    shape, unavailable = None, None
    if kind == "exported":
        net, shape = _load_exported(path)
        fmt = "torch.export ExportedProgram"
    elif kind == "torchscript":
        net, fmt, unavailable = _load_torchscript(path), "TorchScript", TORCHSCRIPT_NO_CAM
    else:
        net = OnnxNet(path)
        shape, fmt, unavailable = net.input_shape, "ONNX (onnxruntime)", ONNX_NO_CAM
    if shape and shape[0] is not None:
        net = FixedBatch(net, shape[0])
    fixed = shape[-1] if shape and shape[-1] is not None else None
    size = src.input_size or fixed or data_size or 224
    n_out = getattr(net, "n_out", None) or _count_outputs(net, shape, size)
    classes, classes_from = resolve_classes(src, n_out, data_classes)
    if src.mean is not None and src.std is not None:
        mean, std, norm_from = tuple(src.mean), tuple(src.std), "given"
    else:
        mean, std, norm_from = default_normalization(str(path), kind, net, size)
        say(f"{path.name}: {fmt_stats(mean, std)} from {norm_from}; pass "
            "--mean/--std if it was trained with others (0,0,0 and 1,1,1 if it normalises itself)")
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
    source = {"arch": fmt, "kind": kind, "weights": str(path), "weights_sha256": digest,
              "format": fmt, "loaded": None, "mean": list(mean), "std": list(std),
              "normalization_from": norm_from, "classes": list(classes),
              "classes_from": classes_from, "input_size": size,
              "resize": bool(src.input_size or fixed),
              "spec": {"weights": str(path), "classes": list(classes), "mean": list(mean),
                       "std": list(std), **({"input_size": src.input_size} if src.input_size
                                            else {}),
                       **({"cam_layer": src.cam_layer} if src.cam_layer else {})}}
    model = Classifier(net, arch=fmt, arch_kwargs={}, class_names=classes, mean=mean, std=std,
                       input_size=size, resize=bool(src.input_size or fixed),
                       cam_layer_name=layer.name if layer else "",
                       cam_reshape=layer.reshape if layer else None,
                       cam_unavailable=unavailable, source=source)
    return model.eval()


def _count_outputs(net: nn.Module, shape, size: int) -> int | None:
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

