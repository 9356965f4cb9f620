"""Studies: one YAML file (or a built-in preset) from data and models to the HTML report.

>>> from failmodes.study import load_preset, run_study
>>> run_study(load_preset("demo")).report          # doctest: +SKIP
PosixPath('runs/demo/report.html')
"""
from .config import (
                     ModelSpec,
                     ProbeSpec,
                     StudyConfig,
                     StudyError,
                     list_presets,
                     load_preset,
                     load_study,
                     resolve_study,
                     study_from_dict,
                     sweep_values,
)
from .runner import StudyResult, check_study, prepare_and_run, run_study

__all__ = ["ModelSpec", "ProbeSpec", "StudyConfig", "StudyError", "StudyResult", "check_study",
           "list_presets", "load_preset", "load_study", "prepare_and_run", "resolve_study",
           "run_study", "study_from_dict", "sweep_values"]
