"""Models: the architecture registry, the model sources (``sources/``: a registry name,
``tv:``, ``timm:``, ``hf:``, ``module:callable``, ``file.py:callable``, a checkpoint,
ExportedProgram, TorchScript, ONNX), the pixel-space Classifier, checkpoints, weights files.

One way in from a spec: ``load_model``; from a live network: ``wrap``.

>>> model = create_model("cifar_resnet18", width=16)
>>> list_models("*resnet*")
['cifar_resnet18']
"""
from . import fastnet, zoo  # noqa: F401  (register the built-in architectures)
from .cam_layers import CamLayer, find_cam_layer
from .checkpoint import library_versions, save_checkpoint, weights_hash
from .errors import ModelError
from .load import absolute_model_spec, check_model, create_model, describe_models, load_model, model_help
from .registry import get_entry, list_models, register_model
from .sources import Source, find_source, list_sources, register_source
from .sources.checkpoint import load_checkpoint
from .specs import ModelSource, is_model_file, spec_from_options
from .wrapper import Classifier, wrap

__all__ = ["CamLayer", "Classifier", "ModelError", "ModelSource", "Source", "absolute_model_spec",
           "check_model", "create_model", "describe_models", "find_cam_layer", "find_source",
           "get_entry", "is_model_file", "library_versions", "list_models", "list_sources",
           "load_checkpoint", "load_model", "model_help", "register_model", "register_source",
           "save_checkpoint", "spec_from_options", "weights_hash", "wrap"]
