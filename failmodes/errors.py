"""The base of every error whose message is one line meant for the user, and the exit codes.

Exit codes of ``failmodes`` (one rule: the code says who has to act):

- 0: done.
- 1: the command ran, but some cells, analyses or probes failed; each is listed.
- 2: bad input: an option, a file, a value or a model the user gave (``FailmodesError``;
  command-line usage errors too). Fix the command or the file and run it again.
- 3: the machine refused: disk full, read-only folder, no permission (``WriteError``, any
  other ``OSError``). Free space or choose another ``--out``; finished work is kept.
- 130: interrupted (Ctrl-C); finished cells and epochs are kept, re-run to resume.
"""

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130


class FailmodesError(Exception):
    """Bad input or state a user can fix; the CLI prints ``error: <message>`` and exits 2."""

    exit_code = EXIT_USAGE


class WriteError(FailmodesError):
    """A file could not be written (disk full, read-only, permission); exit code 3."""

    exit_code = EXIT_ENVIRONMENT


class InputError(ValueError, FailmodesError):
    """A value, file or store given by the user is wrong, where no narrower error fits."""
