"""The HTML report of a run folder and the comparison of two runs.

>>> render_report("runs/demo")                       # runs/demo/report.html  # doctest: +SKIP
>>> compare_runs("runs/a", "runs/b", "runs/a-vs-b")  # runs/a-vs-b/compare.html  # doctest: +SKIP
"""
from .compare import compare_runs
from .html import render_report

__all__ = ["compare_runs", "render_report"]
