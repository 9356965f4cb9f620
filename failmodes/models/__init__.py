"""Model registry, the pixel-space wrapper and checkpoints.

>>> model = create_model("cifar_resnet18", width=16)
>>> list_models("*resnet*")
['cifar_resnet18']
"""
from .registry import (create_model, describe_models, get_entry, library_versions, list_models,
                       load_checkpoint, register_model, save_checkpoint, weights_hash)
from .wrapper import Classifier, ModelError

__all__ = ["Classifier", "ModelError", "create_model", "describe_models", "get_entry",
           "library_versions", "list_models", "load_checkpoint", "register_model",
           "save_checkpoint", "weights_hash"]
