"""The run folder: the one list of the names of what it holds.

::

    RUN/
      results.sqlite (+ -wal, -shm)   the results store; results.sqlite.lock: one writer
      eval_config.json                the resolved evaluation config and library versions
      study.resolved.json             the resolved study (``failmodes run``)
      study_state.json                the commands that ran, each step's status and timing
      models/<name>/                  a training folder per model trained by a study:
                                      config.json, last.pt, model.pt, history.{csv,json},
                                      training_curves.png
      analysis/<name>.json            each analysis' result (+ analysis/figures/*.png)
      probes/<key>/                   probe results
      report.html  results.json  summary.md  tables/*.csv  figures/*.png   the report

>>> RunFolder("runs/demo").store
PosixPath('runs/demo/results.sqlite')
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STORE_NAME = "results.sqlite"
LOCK_NAME = STORE_NAME + ".lock"
CONFIG_NAME = "eval_config.json"
# A training folder (``failmodes train --out``, a study's models/<name>/).
TRAIN_CONFIG_NAME = "config.json"
LAST_CHECKPOINT = "last.pt"      # written after every epoch; resuming starts from it
FINAL_CHECKPOINT = "model.pt"    # written once every epoch is done
HISTORY_NAME = "history.json"
HISTORY_CSV_NAME = "history.csv"
TRAINING_CURVES_NAME = "training_curves.png"
# Configs analyses may rebuild images from: the engine's name first, then a plain config.
RUN_CONFIG_NAMES = (CONFIG_NAME, TRAIN_CONFIG_NAME)
RESOLVED_NAME = "study.resolved.json"
STATE_NAME = "study_state.json"
MODELS_DIR = "models"
ANALYSIS_DIR = "analysis"
FIGURES_DIR = "figures"
TABLES_DIR = "tables"
PROBES_DIR = "probes"
REPORT_NAME = "report.html"
RESULTS_NAME = "results.json"
SUMMARY_NAME = "summary.md"      # the report's headline tables as Markdown


@dataclass(frozen=True)
class RunFolder:
    """Paths inside one run folder (nothing is created or read here)."""

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    @property
    def store(self) -> Path:
        return self.root / STORE_NAME

    @property
    def lock(self) -> Path:
        return self.root / LOCK_NAME

    @property
    def eval_config(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def resolved(self) -> Path:
        return self.root / RESOLVED_NAME

    @property
    def state(self) -> Path:
        return self.root / STATE_NAME

    @property
    def models(self) -> Path:
        return self.root / MODELS_DIR

    @property
    def analysis(self) -> Path:
        return self.root / ANALYSIS_DIR

    @property
    def probes(self) -> Path:
        return self.root / PROBES_DIR

    @property
    def figures(self) -> Path:
        return self.root / FIGURES_DIR

    @property
    def tables(self) -> Path:
        return self.root / TABLES_DIR

    @property
    def report(self) -> Path:
        return self.root / REPORT_NAME

    @property
    def results(self) -> Path:
        return self.root / RESULTS_NAME

    def run_config(self) -> Path | None:
        """The first of ``RUN_CONFIG_NAMES`` present, else None."""
        return next((self.root / n for n in RUN_CONFIG_NAMES if (self.root / n).is_file()), None)
