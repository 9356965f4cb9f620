"""The run/store layer: the run folder's layout, dataset keys, the stressor family lookup,
the SQLite results store (every SQL statement of the library) and rebuilding a cell's
images. Evaluate, analysis and report read and write runs only through this package.

>>> from failmodes.store import ResultsStore, RunFolder, parse_dataset_key
>>> store = ResultsStore(RunFolder("runs/demo").store, readonly=True)   # doctest: +SKIP
"""
from ._connect import StoreError, store_writable
from .families import UNKNOWN, StressorInfo, stressor_family, stressor_info
from .images import cell_images, stress_like_cell
from .keys import (
    CLEAN,
    MAIN,
    OFFICIAL,
    OFFICIAL_NAME,
    ROLES,
    VAL_SPLIT,
    VALIDATION,
    DatasetKey,
    DatasetKeyError,
    dataset_key,
    dataset_role,
    is_official,
    is_validation,
    parse_dataset_key,
)
from .layout import (
    ANALYSIS_DIR,
    CONFIG_NAME,
    FIGURES_DIR,
    LOCK_NAME,
    MODELS_DIR,
    PROBES_DIR,
    REPORT_NAME,
    RESOLVED_NAME,
    RESULTS_NAME,
    RUN_CONFIG_NAMES,
    STATE_NAME,
    STORE_NAME,
    TABLES_DIR,
    RunFolder,
)
from .paired import paired_sums
from .results import ROW_FIELDS, Cell, CellKey, ResultsStore
from .rows import per_image_rows

__all__ = [
    "ANALYSIS_DIR", "CLEAN", "CONFIG_NAME", "FIGURES_DIR", "LOCK_NAME", "MAIN", "MODELS_DIR",
    "OFFICIAL", "OFFICIAL_NAME", "PROBES_DIR", "REPORT_NAME", "RESOLVED_NAME", "RESULTS_NAME",
    "ROLES", "ROW_FIELDS", "RUN_CONFIG_NAMES", "STATE_NAME", "STORE_NAME", "TABLES_DIR",
    "UNKNOWN", "VALIDATION", "VAL_SPLIT", "Cell", "CellKey", "DatasetKey", "DatasetKeyError",
    "ResultsStore", "RunFolder", "StoreError", "StressorInfo", "cell_images", "dataset_key",
    "dataset_role", "is_official", "is_validation", "paired_sums", "parse_dataset_key",
    "per_image_rows", "store_writable", "stress_like_cell", "stressor_family", "stressor_info",
]
