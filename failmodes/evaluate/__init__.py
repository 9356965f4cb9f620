"""Evaluation: the raw config (``EvalConfig``) and its resolution (``resolve_config`` ->
``ResolvedEvalConfig``), the plan (data and models loaded and checked), the cell grid,
batching, resumption, torchrun sharding; it writes through the store layer
(``failmodes.store``) and returns an ``EvalSummary``.

>>> from failmodes.evaluate import EvalConfig, run_evaluation, open_run
>>> run_evaluation(EvalConfig(models=["runs/cnn/model.pt"], suite="cifar10-c", subset=500,
...                           out="runs/cnn-eval"))                    # doctest: +SKIP
>>> ctx = open_run("runs/cnn-eval")                                    # doctest: +SKIP
"""
from ..store import ResolvedEvalConfig
from .config import EvalConfig, EvalError, resolve_config
from .context import RunContext, open_run
from .grid import build_cells
from .inputs import build_model, load_eval_dataset
from .plan import Plan, prepare_plan
from .runner import run_evaluation
from .summary import EvalSummary

__all__ = ["EvalConfig", "EvalError", "EvalSummary", "Plan", "ResolvedEvalConfig", "RunContext",
           "build_cells", "build_model", "load_eval_dataset", "open_run", "prepare_plan",
           "resolve_config", "run_evaluation"]
