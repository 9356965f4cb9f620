"""Without labels: estimate a classifier's accuracy on unlabelled images, test whether they
are shifted at all, and name the stored stress cell they resemble.

- ``estimators``: AC, DoC, ATC-MC, ATC-NE and COT, each raw and temperature-scaled,
  fitted on labelled source data (``fit_reference``) and applied to target outputs
  (``estimate_accuracy``), each with a percentile bootstrap interval over target images.
- ``shift``: black-box shift detection (KS per softmax dimension, Bonferroni) and an MMD
  permutation test on penultimate features.
- ``nearest``: the stored cells of a run nearest to a batch by their softmax outputs.
- ``accuracy(model, images, reference=...)``: all of it for one batch.

>>> import failmodes as fm
>>> r = fm.estimate.accuracy(model, unlabelled_images, reference=val_set)  # doctest: +SKIP
>>> r.estimate("ATC-MC-TS").accuracy, r.shifted                            # doctest: +SKIP
(0.69, True)
"""
from ._accuracy import DEFAULT_HEADLINE, LabelFreeResult, accuracy
from ._checks import EstimateError
from .bootstrap import bootstrap_means
from .estimators import (
    METHODS,
    Estimate,
    Reference,
    atc_threshold,
    estimate_accuracy,
    estimator_names,
    fit_reference,
)
from .forward import Outputs, model_outputs
from .nearest import NearestCell, nearest_cells, output_distance, output_quantiles, stored_cell_outputs
from .shift import KSResult, MMDResult, ks_test, mmd_test
from .transport import transport_gain

__all__ = ["DEFAULT_HEADLINE", "METHODS", "Estimate", "EstimateError", "KSResult",
           "LabelFreeResult", "MMDResult", "NearestCell", "Outputs", "Reference", "accuracy",
           "atc_threshold", "bootstrap_means", "estimate_accuracy", "estimator_names",
           "fit_reference", "ks_test", "mmd_test", "model_outputs", "nearest_cells",
           "output_distance", "output_quantiles", "stored_cell_outputs", "transport_gain"]
