"""Grad-CAM maps for one batch of images, without a run folder:
``fm.cam.gradcam(model, images, targets=None, layer=None)`` (see
``failmodes.analysis.cam.batch``, which holds it beside the cam analysis).

>>> import failmodes as fm, torch
>>> maps = fm.cam.gradcam(fm.models.create_model("small_cnn"), torch.rand(2, 3, 32, 32))
>>> tuple(maps.shape)
(2, 32, 32)
"""
from .analysis.cam.batch import METHODS, CamError, gradcam

__all__ = ["METHODS", "CamError", "gradcam"]
