"""``FILE.pt2``: a ``torch.export`` ExportedProgram (the format PyTorch recommends),
unflattened (``torch.export.unflatten``) so its submodules run and take Grad-CAM's hooks."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ._base import register_source
from ._files import NetworkFileSource, Shape, load_error


@register_source
class ExportedProgramSource(NetworkFileSource):
    syntax = "FILE.pt2"
    kind = file_kind = "exported"
    fmt = "torch.export ExportedProgram"
    order = 210

    def describe(self) -> str:
        return "a torch.export ExportedProgram (torch.export.save), Grad-CAM included"

    def open(self, path: Path) -> tuple[nn.Module, Shape | None, str | None]:
        try:
            ep = torch.export.load(str(path))
        except Exception as e:  # a corrupt archive or one from an incompatible torch
            raise load_error(path, "ExportedProgram", e) from None
        # Unflattened, the exported graph runs module by module, so forward hooks (Grad-CAM)
        # see each submodule's output; ep.module() alone is one flat graph.
        return torch.export.unflatten(ep), _static_input(ep), None


def _static_input(ep) -> Shape | None:
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in ep.graph_signature.user_inputs:
            val = node.meta.get("val")
            if val is not None and val.ndim == 4:
                return [d if isinstance(d, int) else None for d in val.shape]
    return None
