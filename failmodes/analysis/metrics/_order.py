"""The order corruptions are listed in: CIFAR-10-C's, then any other by name."""
from __future__ import annotations

from ...stressors.registry import CIFAR10C_ORDER


def corruption_order(name: str) -> tuple[int, str]:
    """Sort key: CIFAR-10-C's corruption order first, unknown names after, by name."""
    return (CIFAR10C_ORDER.index(name) if name in CIFAR10C_ORDER else len(CIFAR10C_ORDER), name)
