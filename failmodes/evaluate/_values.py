"""Severity and sweep value lists: ``1,2,3``, ``0:5:0.25`` (inclusive), ``rotation=-90:90:15``.

The stressors package owns the canonical parser (``failmodes.stressors.sweeps.parse_values``
and ``parse_sweep``); until that lands this local fallback keeps the same grammar.
"""
from __future__ import annotations

import math

from ..errors import FailmodesError


class ValuesError(ValueError, FailmodesError):
    """A value list or sweep spec does not parse; one line naming the text."""


def parse_values(text) -> list[float]:
    """``"1,2,3"`` -> [1, 2, 3]; ``"0:5:0.25"`` -> 0, 0.25, ..., 5 (both ends included);
    a number or a list of numbers passes through as floats.

    >>> parse_values("0:1:0.5")
    [0.0, 0.5, 1.0]
    """
    try:
        from failmodes.stressors.sweeps import parse_values as canonical
    except ImportError:
        canonical = None
    if canonical is not None and isinstance(text, str):
        return [float(v) for v in canonical(text)]
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return [float(text)]
    if isinstance(text, (list, tuple)):
        return [_number(v, text) for v in text]
    if not isinstance(text, str) or not text.strip():
        raise ValuesError(f"empty value list {text!r}; use e.g. 1,2,3 or 0:5:0.25")
    out: list[float] = []
    for part in text.split(","):
        part = part.strip()
        if ":" in part:
            out.extend(_range(part))
        elif part:
            out.append(_number(part, text))
    return out


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """``"rotation=-90:90:15"`` -> ("rotation", [-90, -75, ..., 90])."""
    try:
        from failmodes.stressors.sweeps import parse_sweep as canonical
    except ImportError:
        canonical = None
    if canonical is not None:
        name, values = canonical(text)
        return name, [float(v) for v in values]
    name, eq, values = str(text).partition("=")
    if not eq or not name.strip():
        raise ValuesError(f"sweep {text!r} should look like NAME=START:STOP:STEP or NAME=v1,v2")
    return name.strip(), parse_values(values)


def _number(v, whole) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValuesError(f"{v!r} in {whole!r} is not a number") from None
    if not math.isfinite(x):
        raise ValuesError(f"{v!r} in {whole!r} is not finite")
    return x


def _range(part: str) -> list[float]:
    bits = part.split(":")
    if len(bits) != 3:
        raise ValuesError(f"range {part!r} should be START:STOP:STEP")
    a, b, step = (_number(v, part) for v in bits)
    if step <= 0 or b < a:
        raise ValuesError(f"range {part!r} needs STOP >= START and STEP > 0")
    n = int(math.floor((b - a) / step + 1e-9))
    # Rounded to 9 digits so 0.1 steps give 0.3, not 0.30000000000000004 (cell keys).
    return [round(a + i * step, 9) for i in range(n + 1)]
