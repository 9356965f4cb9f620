"""Models: the registry, model sources (registry name, ``tv:``, ``timm:``, ``module:callable``,
ExportedProgram, TorchScript, ONNX), the pixel-space Classifier, checkpoints, weights files.

>>> model = create_model("cifar_resnet18", width=16)
>>> list_models("*resnet*")
['cifar_resnet18']
"""
from .cam_layers import CamLayer, find_cam_layer
from .checkpoint import library_versions, load_checkpoint, save_checkpoint, weights_hash
from .registry import create_model, describe_models, get_entry, list_models, register_model
from .sources import ModelSource, absolute_model_spec, load_model, spec_from_options
from .wrapper import Classifier, ModelError, wrap

__all__ = ["CamLayer", "Classifier", "ModelError", "ModelSource", "absolute_model_spec",
           "create_model", "describe_models", "find_cam_layer", "get_entry", "library_versions",
           "list_models", "load_checkpoint", "load_model", "register_model", "save_checkpoint",
           "spec_from_options", "weights_hash", "wrap"]
