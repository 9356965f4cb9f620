"""The models' one error type, in a leaf module every other models module may import."""
from __future__ import annotations

from ..errors import FailmodesError


class ModelError(ValueError, FailmodesError):
    """A model or checkpoint could not be built or loaded; one line naming what and why."""
