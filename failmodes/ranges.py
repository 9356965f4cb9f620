"""The one parser of value lists: severities, sweep values, probe values.

Grammar: a comma list of items, each a number or ``START:STOP:STEP`` (STOP included when it
lands on the grid; a negative STEP counts down). Ranges are computed in decimal arithmetic so
``0:1:0.1`` gives 0.3, not 0.30000000000000004 (values become cell keys). NaN and inf are
refused, and a range may expand to at most ``constants.MAX_RANGE_VALUES`` values: the count
is known before any value is built, so ``0:1e12:1e-3`` fails at once instead of filling memory.

>>> parse_values("0:1:0.25")
[0.0, 0.25, 0.5, 0.75, 1.0]
>>> parse_values("90:-90:-90")
[90.0, 0.0, -90.0]
>>> parse_values("1, 2.5, 4:5:1")
[1.0, 2.5, 4.0, 5.0]
>>> parse_values([1, 2])
[1.0, 2.0]
>>> split_sweep("rotation=-90:90:45")
('rotation', [-90.0, -45.0, 0.0, 45.0, 90.0])
>>> parse_values("nan:1:1")
Traceback (most recent call last):
...
failmodes.ranges.RangeError: values 'nan:1:1': 'nan' is not a finite number
"""
from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from decimal import Decimal

from .constants import MAX_RANGE_VALUES
from .errors import FailmodesError

__all__ = ["RangeError", "parse_values", "split_sweep"]

_HINT = "write numbers or START:STOP:STEP, e.g. 1,2,3 or -90:90:15"


class RangeError(ValueError, FailmodesError):
    """A value list does not parse, is not finite or is too long; one line naming the text."""


def parse_values(spec: str | float | Sequence[float], *, where: str = "values",
                 max_values: int = MAX_RANGE_VALUES) -> list[float]:
    """Floats of ``spec``: a string in the grammar above, one number, or a list of numbers.

    ``where`` names the option or key in error messages (``--severities``, ``sweeps.rotation``).
    """
    if isinstance(spec, bool):
        raise RangeError(f"{where}: expected numbers, got {spec!r}")
    if isinstance(spec, (int, float)):
        return [_finite_float(spec, where, spec)]
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        if not spec:
            raise RangeError(f"{where}: the list is empty; {_HINT}")
        if len(spec) > max_values:
            raise RangeError(f"{where}: {len(spec)} values (more than {max_values})")
        for v in spec:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise RangeError(f"{where}: {v!r} in {list(spec)!r} is not a number")
        return [_finite_float(v, where, list(spec)) for v in spec]
    if not isinstance(spec, str):
        raise RangeError(f"{where}: expected a string or a list of numbers, got "
                         f"{type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise RangeError(f"{where}: empty; {_HINT}")
    out: list[float] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise RangeError(f"{where} {text!r}: an empty item between commas")
        if ":" in item:
            out += _range(item, text, where, max_values - len(out), max_values)
        else:
            out.append(_finite_float(_decimal(item, text, where), where, text))
        if len(out) > max_values:
            raise RangeError(f"{where} {text!r}: more than {max_values} values; use a larger step")
    return out


def split_sweep(spec: str, *, max_values: int = MAX_RANGE_VALUES) -> tuple[str, list[float]]:
    """``"NAME=VALUES"`` -> ``(NAME, parse_values(VALUES))``; the name is not checked here.

    >>> split_sweep("pgd_linf[steps=20]=0:8:4")
    ('pgd_linf[steps=20]', [0.0, 4.0, 8.0])
    """
    # The last "=": a name may carry options, ``pgd_linf[steps=20]=0:8:2``.
    name, sep, values = str(spec).rpartition("=")
    name = name.strip()
    if not sep or not name:
        raise RangeError(f"sweep {spec!r} must look like NAME=START:STOP:STEP or NAME=v1,v2 "
                         "(e.g. rotation=-90:90:15)")
    return name, parse_values(values, where=f"sweep {name}", max_values=max_values)


def _range(item: str, text: str, where: str, room: int, max_values: int) -> list[float]:
    bits = item.split(":")
    if len(bits) != 3:
        raise RangeError(f"{where} {text!r}: {item!r} should be START:STOP:STEP")
    start, stop, step = (_decimal(b, text, where) for b in bits)
    try:
        with decimal.localcontext():
            if step == 0 or (stop - start) * step < 0:
                raise RangeError(f"{where} {text!r}: step {step} never reaches {stop} from {start}")
            steps = (stop - start) / step
            count = int(steps.to_integral_value(rounding=decimal.ROUND_FLOOR)) + 1
            if count > room:
                raise RangeError(f"{where} {text!r}: {item} gives {count:,} values (at most "
                                 f"{max_values} in all); use a larger step")
            values = [start + i * step for i in range(count)]
    except decimal.DecimalException:
        raise RangeError(f"{where} {text!r}: {item} is out of range for arithmetic") from None
    return [_finite_float(v, where, text) for v in values]


def _decimal(token: str, text: str, where: str) -> Decimal:
    try:
        d = Decimal(token.strip())
    except decimal.InvalidOperation:
        raise RangeError(f"{where} {text!r}: {token.strip()!r} is not a number; {_HINT}") from None
    if not d.is_finite():
        raise RangeError(f"{where} {text!r}: {token.strip()!r} is not a finite number")
    return d


def _finite_float(v, where: str, whole) -> float:
    x = float(v)
    if not math.isfinite(x):
        raise RangeError(f"{where} {whole!r}: {v} is not a finite number (too large for a float)"
                         if isinstance(v, Decimal) else f"{where} {whole!r}: {v!r} is not finite")
    return x
