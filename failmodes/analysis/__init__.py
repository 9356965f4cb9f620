"""Analyses of a results store: metrics, curves and regimes, failures, calibration, CAMs."""
from .registry import Analysis, get_analysis, list_analyses, register_analysis, write_result

__all__ = ["Analysis", "get_analysis", "list_analyses", "register_analysis", "write_result"]
