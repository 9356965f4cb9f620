"""The models' one error type, in a leaf module every other models module may import."""
from __future__ import annotations

from ..errors import FailmodesError


class ModelError(ValueError, FailmodesError):
    """A model or checkpoint could not be built or loaded; one line naming what and why."""


def first_line(e: BaseException, width: int = 160) -> str:
    """``TypeName: first line of the message`` of an exception raised by a user's code."""
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0][:width]}" if msg else type(e).__name__
