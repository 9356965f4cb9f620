"""Evaluation: the cell grid, the SQLite results store, resumption."""
from .store import Cell, CellKey, ResultsStore, StoreError, per_image_rows

__all__ = ["Cell", "CellKey", "ResultsStore", "StoreError", "per_image_rows"]
