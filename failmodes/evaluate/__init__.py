"""Evaluation: the cell grid, the SQLite results store, resumption, torchrun sharding.

>>> from failmodes.evaluate import EvalConfig, run_evaluation, open_run
>>> run_evaluation(EvalConfig(models=["runs/cnn/model.pt"], suite="cifar10-c", subset=500,
...                           out="runs/cnn-eval"))                    # doctest: +SKIP
>>> ctx = open_run("runs/cnn-eval")                                    # doctest: +SKIP
"""
from .context import RunContext, open_run
from .grid import (CONFIG_NAME, STORE_NAME, EvalConfig, EvalError, build_cells, build_model,
                   dataset_key, load_eval_dataset, resolve_config, run_evaluation)
from .store import Cell, CellKey, ResultsStore, StoreError, per_image_rows

__all__ = ["CONFIG_NAME", "STORE_NAME", "Cell", "CellKey", "EvalConfig", "EvalError",
           "ResultsStore", "RunContext", "StoreError", "build_cells", "build_model",
           "dataset_key", "load_eval_dataset", "open_run", "per_image_rows", "resolve_config",
           "run_evaluation"]
