"""Analyses of a results store: metrics, curves and regimes, failures, calibration, CAMs."""
from .registry import (STORE_NAME, Analysis, get_analysis, list_analyses, register_analysis,
                       write_result)
from .result import AnalysisResult, Figure

__all__ = ["STORE_NAME", "Analysis", "AnalysisResult", "Figure", "get_analysis",
           "list_analyses", "register_analysis", "write_result"]
