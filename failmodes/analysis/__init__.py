"""Analyses of a results store, one package each (metrics, curves and regimes, failures,
calibration, Grad-CAM, claims). Importing this package imports every public subpackage,
and each files itself in the registry (``registry.py``): a new analysis is a new package.
"""
import importlib
import pkgutil

from .registry import (
    Analysis,
    Headline,
    get_analysis,
    list_analyses,
    register_analysis,
    write_result,
)
from .result import AnalysisResult, Figure

for _info in pkgutil.iter_modules(__path__):
    if _info.ispkg and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["Analysis", "AnalysisResult", "Figure", "Headline", "get_analysis",
           "list_analyses", "register_analysis", "write_result"]
