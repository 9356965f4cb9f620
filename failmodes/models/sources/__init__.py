"""Model sources: each way to name a model (a registry name, ``tv:``, ``timm:``, ``hf:``,
``module:callable``, ``file.py:callable``, a failmodes checkpoint, ``.pt2``, TorchScript,
ONNX) is a :class:`Source` class in its own module here, filed by ``@register_source``.
Every public module of this package is imported below, so a new source is one new file:
``load_model``, ``failmodes models`` and the ``--model`` help find it in the registry.

>>> [s.syntax for s in list_sources()][:3]
['NAME', 'tv:NAME', 'timm:NAME']
"""
from __future__ import annotations

import importlib
import pkgutil

from ._arch import ArchitectureSource
from ._base import Source, find_source, list_sources, register_source
from ._files import NetworkFileSource

__all__ = ["ArchitectureSource", "NetworkFileSource", "Source", "find_source", "list_sources",
           "register_source"]

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
