"""Stressors: CIFAR-10-C / ImageNet-C corruptions and parametric sweeps, batched in torch."""
from ..ranges import parse_values
from .registry import (
                       CORRUPTION_FAMILIES,
                       Stressor,
                       StressorError,
                       describe_stressors,
                       get_stressor,
                       list_stressors,
                       parse_sweep,
                       quantize,
                       register_stressor,
                       suite,
)

__all__ = ["CORRUPTION_FAMILIES", "Stressor", "StressorError", "describe_stressors", "get_stressor",
           "list_stressors", "parse_sweep", "parse_values", "quantize", "register_stressor",
           "suite"]
