"""The base of every error whose message is one line meant for the user."""


class FailmodesError(Exception):
    """Bad input or state a user can fix; the CLI prints ``error: <message>`` and exits 2."""
