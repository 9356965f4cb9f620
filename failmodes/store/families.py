"""Stressor name -> family, kind, benchmark flag and identity value: the one lookup.

Stores keep stressor *names*; a store written by another version may hold a name this
installation's registry does not know. Such a name always gets family and kind ``other``
(never an exception, never a guess), so every analysis lists its cells but leaves them out
of the corruption and sweep averages.

>>> stressor_family("fog"), stressor_family("clean"), stressor_family("no_such_thing")
('weather', 'clean', 'other')
"""
from __future__ import annotations

from dataclasses import dataclass

from .keys import CLEAN

UNKNOWN = "other"   # family and kind of a name the stressor registry does not know


@dataclass(frozen=True)
class StressorInfo:
    family: str       # clean | noise | blur | weather | digital | sweep | adversarial | other
    kind: str         # clean | corruption | sweep | adversarial | other
    benchmark: bool   # one of the 15 CIFAR-10-C benchmark corruptions
    identity: float   # the value at which the stressor leaves images unchanged


def stressor_info(name: str) -> StressorInfo:
    """What the registry says about ``name`` (``clean`` and unknown names included)."""
    if name == CLEAN:
        return StressorInfo(CLEAN, CLEAN, False, 0.0)
    from ..stressors import StressorError, get_stressor
    try:
        s = get_stressor(name)
    except StressorError:
        return StressorInfo(UNKNOWN, UNKNOWN, False, 0.0)
    kind = "corruption" if s.is_corruption else s.family   # sweep | adversarial
    return StressorInfo(s.family, kind, bool(s.benchmark), float(s.identity))


def stressor_family(name: str) -> str:
    """``clean``, a corruption family (noise, blur, weather, digital), ``sweep``,
    ``adversarial`` or ``other``."""
    return stressor_info(name).family
