"""Imports every op module so that each registers its stressors (order = CIFAR-10-C order)."""
from . import noise, blur, _motion, weather, digital, sweeps  # noqa: F401
