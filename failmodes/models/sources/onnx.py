"""``FILE.onnx``: an ONNX classifier run by onnxruntime (the optional extra
``failmodes[onnx]``); onnxruntime gives no gradients, so no Grad-CAM."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError
from ._base import register_source
from ._files import NetworkFileSource, Shape

ONNX_NO_CAM = "ONNX models run in onnxruntime, which gives no gradients; Grad-CAM needs them"


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


@register_source
class OnnxSource(NetworkFileSource):
    syntax = "FILE.onnx"
    kind = file_kind = "onnx"
    fmt = "ONNX (onnxruntime)"
    order = 230

    def describe(self) -> str:
        return "an ONNX file run by onnxruntime (pip install 'failmodes[onnx]'); no Grad-CAM"

    def open(self, path: Path) -> tuple[nn.Module, Shape | None, str | None]:
        net = OnnxNet(path)
        return net, net.input_shape, ONNX_NO_CAM
