"""Evaluation: the cell grid, batching, resumption, torchrun sharding; it writes through the
store layer (``failmodes.store``).

>>> from failmodes.evaluate import EvalConfig, run_evaluation, open_run
>>> run_evaluation(EvalConfig(models=["runs/cnn/model.pt"], suite="cifar10-c", subset=500,
...                           out="runs/cnn-eval"))                    # doctest: +SKIP
>>> ctx = open_run("runs/cnn-eval")                                    # doctest: +SKIP
"""
from .config import EvalConfig, EvalError, resolve_config
from .context import RunContext, open_run
from .grid import build_cells
from .inputs import build_model, load_eval_dataset
from .runner import run_evaluation

__all__ = ["EvalConfig", "EvalError", "RunContext", "build_cells", "build_model",
           "load_eval_dataset", "open_run", "resolve_config", "run_evaluation"]
