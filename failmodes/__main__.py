"""``python -m failmodes ...``: the same command line as the ``failmodes`` script."""
from .cli import main

main()
