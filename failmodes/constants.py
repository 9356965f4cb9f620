"""Defaults and reference values: one definition each.

Every other module imports these names; none restates the numbers. Analyses record the value
they actually used in their result's ``params``, and the report's prose reads it from there.
"""
from __future__ import annotations

# Normalisation statistics (per channel, images in [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# A prediction is "confident" above this max-probability (failures, dangerous rate, CAM).
CONFIDENT_THRESHOLD = 0.9
# Equal-width confidence bins of ECE and of the reliability diagram (torchmetrics' default).
CALIBRATION_BINS = 15

# The held-out validation part of a train split (``train-val``): this fraction, drawn with
# this seed (data.train_val_split). Training holds it out; temperature scaling fits on it.
VAL_FRACTION = 0.1
SPLIT_SEED = 42

# Subsets of a data set (``--subset``, ``Dataset.subset``) are drawn with this fixed seed, not
# the run's seed: runs with different stressor seeds then stay paired on the very same images.
SUBSET_SEED = 42

# Bytes of thumbnail sprite sheets the report's explorer may embed; past it, fewer images
# get thumbnails (flips and confident failures first; every image's row is still there).
# 6 MB keeps a report mailable (a 1000-image, 76-cell run: 27.3 MB at 24 MB, 7.0 MB at 6 MB);
# Chromium opens a 30 MB page in a few seconds; past the maximum it takes tens of seconds,
# and a phone may not open it at all.
DEFAULT_THUMB_BUDGET = 6 * 2 ** 20
# What a default report aims to stay under: the thumbnails get what the figures leave of it
# (less than DEFAULT_THUMB_BUDGET on a figure-heavy run, never under MIN_AUTO_THUMB_BUDGET).
REPORT_TARGET_BYTES = 10 * 2 ** 20
MIN_AUTO_THUMB_BUDGET = 1 * 2 ** 20
MAX_THUMB_BUDGET = 256 * 2 ** 20

# Report order of stressor families.
FAMILY_ORDER = ("noise", "blur", "weather", "digital", "sweep", "adversarial")

# Largest number of values a range "start:stop:step" may expand to (CLI and study files).
MAX_RANGE_VALUES = 10_000

# Regimes (analysis/curves/regimes.py). A knee names a collapse or a plateau only when the
# steep side loses at least this many points of accuracy (fitted, from the knee to the end
# or from clean to the knee): a 6-point fall after severity 3 is not a "collapse".
REGIME_MIN_LOSS_POINTS = 10.0
# The label's uncertainty: the curve is refitted on this many paired resamples of its test
# images (the same resampled images at every severity), with this seed.
REGIME_RESAMPLES = 200
REGIME_RESAMPLE_SEED = 0
# A regime claim is supported when its label wins in at least this share of the resamples,
# contradicted when it wins in at most 1 − this share, else inconclusive.
REGIME_DECISIVE_SHARE = 0.95
