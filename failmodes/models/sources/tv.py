"""``tv:NAME``: any torchvision classifier (``torchvision.models.list_models()``), with
ImageNet's classes and the statistics of its weights' metadata; ``pretrained=true`` among
the arch arguments downloads torchvision's default weights (online only)."""
from __future__ import annotations

from ...constants import IMAGENET_MEAN, IMAGENET_STD
from ..errors import ModelError
from ..imagenet import imagenet_classes
from ..registry import ModelEntry
from ._arch import ArchitectureSource, Builder
from ._base import register_source, statistics_by_size


@register_source
class TorchvisionSource(ArchitectureSource):
    syntax = "tv:NAME"
    kind = "torchvision"
    prefix = "tv:"
    order = 10
    input = "224×224"
    classes = "1000"

    def describe(self) -> str:
        return "any torchvision classifier, e.g. tv:resnet50 (pretrained weights download online only)"

    def builder(self, arch: str) -> Builder:
        return self.entry(arch).build

    def entry(self, arch: str) -> ModelEntry:
        import torchvision.models as tvm
        name = arch[len(self.prefix):]
        if name not in tvm.list_models(module=tvm):
            raise ModelError(f"tv:{name} is not a torchvision classifier "
                             "(e.g. tv:resnet50, tv:vit_b_16, tv:mobilenet_v3_small)")

        def build(num_classes=None, pretrained: bool = False, **kw):
            return _build(name, num_classes, pretrained, **kw)
        # cam layer "": found from the network (models/cam_layers.py), ViTs included.
        return ModelEntry(arch, build, f"torchvision {name}", 224, 1000, "", IMAGENET_MEAN,
                          IMAGENET_STD, imagenet_classes)

    def statistics(self, arch, net, size) -> tuple:
        import torchvision.models as tvm
        try:
            t = tvm.get_model_weights(arch[len(self.prefix):]).DEFAULT.transforms()
            return tuple(t.mean), tuple(t.std), "torchvision weights meta"
        except (ValueError, KeyError, AttributeError, TypeError):
            return statistics_by_size(size)


def _build(name: str, num_classes: int | None, pretrained: bool, **kw):
    # num_classes only when asked: None keeps torchvision's own 1000-way head.
    import torchvision.models as tvm
    extra = {} if num_classes is None else {"num_classes": num_classes}
    if not pretrained:
        return tvm.get_model(name, weights=None, **extra, **kw)
    try:
        return tvm.get_model(name, weights=tvm.get_model_weights(name).DEFAULT, **extra, **kw)
    except (OSError, RuntimeError) as e:
        raise ModelError(f"cannot download weights for tv:{name} ({type(e).__name__}); offline? "
                         "use pretrained=False, a checkpoint, or efficientnet_lite0 (offline)"
                         ) from None
