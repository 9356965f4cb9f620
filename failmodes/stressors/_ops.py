"""Imports every op module so that each registers its stressors (order = CIFAR-10-C order)."""
from . import _motion, blur, digital, noise, sweeps, weather  # noqa: F401
