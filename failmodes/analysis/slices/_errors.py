from ...errors import InputError


class SliceError(InputError):
    """Bad input to the slice search, its attributes, breaking points or claims."""
