"""The run/store layer: the run folder's layout, dataset keys, the stressor family lookup,
the SQLite results store (every SQL statement of the library), the resolved evaluation
config a run keeps (``ResolvedEvalConfig``) and rebuilding a cell's images. Evaluate,
analysis and report read and write runs only through this package.

>>> from failmodes.store import ResultsStore, RunFolder, parse_dataset_key
>>> store = ResultsStore(RunFolder("runs/demo").store, readonly=True)   # doctest: +SKIP
"""
from ._connect import StoreError, store_writable
from .families import UNKNOWN, StressorInfo, stressor_family, stressor_info
from .images import cell_images, stress_like_cell
from .keys import (
    CLEAN,
    FINISH_SEP,
    MAIN,
    OFFICIAL,
    OFFICIAL_NAME,
    OFFICIAL_SUFFIX,
    ROLES,
    SIZE_TAG,
    VAL_SPLIT,
    VALIDATION,
    DatasetKey,
    DatasetKeyError,
    dataset_key,
    dataset_role,
    is_official,
    is_validation,
    official_name,
    parse_dataset_key,
    sized_name,
)
from .layout import (
    ANALYSIS_DIR,
    CONFIG_NAME,
    FIGURES_DIR,
    FINAL_CHECKPOINT,
    HISTORY_CSV_NAME,
    HISTORY_NAME,
    LAST_CHECKPOINT,
    LOCK_NAME,
    MODELS_DIR,
    PROBES_DIR,
    REPORT_NAME,
    RESOLVED_NAME,
    RESULTS_NAME,
    RUN_CONFIG_NAMES,
    STATE_NAME,
    STORE_NAME,
    SUMMARY_NAME,
    TABLES_DIR,
    TRAIN_CONFIG_NAME,
    TRAINING_CURVES_NAME,
    RunFolder,
)
from .lock import RunBusy, RunLock
from .paired import paired_sums
from .results import ROW_FIELDS, Cell, CellKey, ResultsStore, timestamp
from .rows import per_image_rows
from .run_config import ResolvedEvalConfig, read_run_config

__all__ = [
    "ANALYSIS_DIR", "CLEAN", "CONFIG_NAME", "FIGURES_DIR", "FINAL_CHECKPOINT", "FINISH_SEP",
    "HISTORY_CSV_NAME", "HISTORY_NAME", "LAST_CHECKPOINT", "LOCK_NAME", "MAIN", "MODELS_DIR", "OFFICIAL",
    "OFFICIAL_NAME", "OFFICIAL_SUFFIX", "PROBES_DIR", "REPORT_NAME", "RESOLVED_NAME", "RESULTS_NAME",
    "SUMMARY_NAME", "ROLES", "SIZE_TAG", "ROW_FIELDS", "RUN_CONFIG_NAMES", "STATE_NAME", "STORE_NAME",
    "TABLES_DIR",
    "TRAINING_CURVES_NAME", "TRAIN_CONFIG_NAME", "UNKNOWN", "VALIDATION", "VAL_SPLIT", "Cell", "CellKey",
    "DatasetKey", "DatasetKeyError", "ResolvedEvalConfig", "ResultsStore", "RunBusy", "RunFolder",
    "RunLock", "StoreError",
    "StressorInfo", "cell_images", "dataset_key", "dataset_role", "is_official", "is_validation",
    "official_name", "paired_sums", "parse_dataset_key", "per_image_rows", "read_run_config",
    "sized_name",
    "store_writable", "stress_like_cell", "stressor_family", "stressor_info", "timestamp",
]
