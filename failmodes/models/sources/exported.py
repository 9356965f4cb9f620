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
        net = torch.export.unflatten(ep)
        _copy_by_reloading(net, path)
        return net, _static_input(ep), None


def _copy_by_reloading(net: nn.Module, path: Path) -> None:
    """Make ``copy.deepcopy(net)`` work (Grad-CAM's sanity check randomises a copy): the
    unflattened graph holds tensors with symbolic sizes (a dynamic batch), which deepcopy
    cannot copy, so a copy is the file loaded again with ``net``'s current tensors."""
    def deepcopy(memo):
        other = torch.export.unflatten(torch.export.load(str(path)))
        other.load_state_dict(net.state_dict())
        other.train(net.training)
        _copy_by_reloading(other, path)
        memo[id(net)] = other
        return other
    object.__setattr__(net, "__deepcopy__", deepcopy)


def _static_input(ep) -> Shape | None:
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in ep.graph_signature.user_inputs:
            val = node.meta.get("val")
            if val is not None and val.ndim == 4:
                return [d if isinstance(d, int) else None for d in val.shape]
    return None
