"""``python -m failmodes.cli ...``: the same command line as the ``failmodes`` script."""
from . import main

if __name__ == "__main__":  # not on import (doctest collection imports every module)
    main()
