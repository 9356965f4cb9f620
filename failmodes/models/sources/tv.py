"""``tv:NAME``: any torchvision classifier (``torchvision.models.list_models()``), with
ImageNet's classes; ``pretrained=true`` among the arch arguments downloads torchvision's
default weights (online only) and takes the statistics of their metadata. A state dict
from ``--weights`` gets the rule every source shares (``statistics_by_size``)."""
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

    def statistics(self, src, net, size) -> tuple:
        # torchvision's meta describes its own pretrained weights; a state dict of unknown
        # origin gets the rule every source shares, as the same network saved as .onnx does.
        import torchvision.models as tvm
        if not src.weights and src.arch_args.get("pretrained"):
            try:
                t = tvm.get_model_weights(src.arch[len(self.prefix):]).DEFAULT.transforms()
                return tuple(t.mean), tuple(t.std), "torchvision's pretrained weights meta"
            except (ValueError, KeyError, AttributeError, TypeError):
                pass
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
