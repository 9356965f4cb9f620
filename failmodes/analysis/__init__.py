"""Analyses of a results store: metrics, curves and regimes, failures, calibration, CAMs."""
from .registry import Analysis, get_analysis, list_analyses, register_analysis, write_result
from .result import AnalysisResult, Figure

__all__ = ["Analysis", "AnalysisResult", "Figure", "get_analysis",
           "list_analyses", "register_analysis", "write_result"]
