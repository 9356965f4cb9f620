"""``NAME``: an architecture of the model registry (``failmodes models`` lists them), with
the registry card's input size, mean/std and Grad-CAM layer."""
from __future__ import annotations

from ..registry import get_entry
from ._arch import ArchitectureSource, Builder
from ._base import register_source


@register_source
class RegistrySource(ArchitectureSource):
    syntax = "NAME"
    kind = "registry"
    order = 0  # names without ":", which no other ARCH source takes
    input = "card"
    classes = "card"

    def matches(self, src) -> bool:
        return src.arch is not None and ":" not in src.arch

    def describe(self) -> str:
        return ("an architecture of the model registry (the rows above), with --weights FILE "
                "or initialised")

    def builder(self, arch: str) -> Builder:
        entry = get_entry(arch)

        def build(num_classes=None, **kw):
            return entry.build(num_classes=num_classes or entry.num_classes, **kw)
        return build

    def entry(self, arch: str):
        return get_entry(arch)

    def input_size(self, arch: str) -> int:
        return get_entry(arch).input_size

    def statistics(self, src, net, size) -> tuple:
        # failmodes' own architectures are trained by `failmodes train` with these.
        e = get_entry(src.arch)
        return e.mean, e.std, f"the registry entry {src.arch}"

    def registered_cam(self, arch: str) -> str | None:
        return get_entry(arch).cam_layer
