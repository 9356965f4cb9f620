"""``timm:NAME``: any timm model (the optional extra ``failmodes[timm]``); weights come from
``--weights FILE``, so mean/std follow the rule every source shares (``statistics_by_size``):
a ``pretrained_cfg`` describes timm's pretrained weights, not the user's."""
from __future__ import annotations

from ..errors import ModelError
from ._arch import ArchitectureSource, Builder
from ._base import register_source


@register_source
class TimmSource(ArchitectureSource):
    syntax = "timm:NAME"
    kind = "timm"
    prefix = "timm:"
    order = 20
    input = "cfg"
    classes = "weights"

    def describe(self) -> str:
        return "any timm model with --weights FILE (pip install 'failmodes[timm]')"

    def builder(self, arch: str) -> Builder:
        name = arch[len(self.prefix):]
        try:
            import timm
        except ImportError:
            raise ModelError(f"timm:{name} needs timm: pip install 'failmodes[timm]'") from None
        if name not in timm.list_models() and not timm.is_model(name):
            raise ModelError(f"timm:{name} is not a timm model (timm.list_models('*{name[:5]}*') "
                             "lists similar names)")

        def build(num_classes=None, **kw):
            # num_classes only when asked: None keeps timm's own head.
            extra = {} if num_classes is None else {"num_classes": num_classes}
            return timm.create_model(name, pretrained=False, **extra, **kw)
        return build
