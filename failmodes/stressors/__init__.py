"""Stressors: CIFAR-10-C / ImageNet-C corruptions and parametric sweeps, batched in torch.

Importing the package imports every public module in it, and the family modules register
their stressors into ``registry`` as they load (timm's way): a new family is one new
module here, with no list to edit. ``_underscore`` modules are private machinery.
"""
import importlib
import pkgutil
import sys

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

# A module run as a script (``python -m failmodes.stressors.fidelity``) is left for runpy
# to execute: importing it here too would run it twice.
_script = sys.orig_argv[sys.orig_argv.index("-m") + 1] if "-m" in sys.orig_argv[:-1] else None
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and f"{__name__}.{_module.name}" != _script:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["CORRUPTION_FAMILIES", "Stressor", "StressorError", "describe_stressors", "get_stressor",
           "list_stressors", "parse_sweep", "parse_values", "quantize", "register_stressor",
           "suite"]
