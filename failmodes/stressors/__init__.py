"""Stressors: CIFAR-10-C / ImageNet-C corruptions and parametric sweeps, batched in torch."""
from .registry import (CORRUPTION_FAMILIES, Stressor, StressorError, get_stressor,
                       list_stressors, quantize, register_stressor, suite)

__all__ = ["CORRUPTION_FAMILIES", "Stressor", "StressorError", "get_stressor",
           "list_stressors", "quantize", "register_stressor", "suite"]
