"""The typer app and what every command shares: the one place errors meet the user, the
``--out DIR`` parser and the help texts of options that recur across commands."""
from __future__ import annotations

import errno
from pathlib import Path

import typer
from typer.core import TyperGroup

from ..constants import DEFAULT_THUMB_BUDGET, MAX_THUMB_BUDGET
from ..data import data_help, list_corrupted_specs
from ..errors import EXIT_ENVIRONMENT, EXIT_INTERRUPTED, EXIT_USAGE, FailmodesError

_UsageError: type[Exception]
try:  # typer >= 0.2x vendors click; its usage errors derive from TyperException
    from typer import TyperException as _UsageError
except ImportError:  # pragma: no cover  (older typer raises click's own)
    from click import ClickException as _UsageError

EPILOG = ("Exit codes: 0 done; 1 ran, but some cells, analyses or probes failed (listed); "
          "2 bad input (an option, file or value: fix it); 3 the machine refused (disk full, "
          "read-only, permission: free space or choose another --out); 130 interrupted "
          "(finished work is kept: re-run the same command to resume).")
DEVICE_HELP = "auto (cuda when available) | cpu | cuda | cuda:N"
RUN_DIR_HELP = "run folder holding results.sqlite"
THREADS_HELP = "torch CPU threads (1 is fastest on a machine shared with other jobs)"
INTERRUPTED = "interrupted: finished cells are kept; re-run the same command to resume"
THUMB_BUDGET_HELP = (f"MB of explorer thumbnails the report may embed (more than 0, at most "
                     f"{MAX_THUMB_BUDGET // 2 ** 20}; default {DEFAULT_THUMB_BUDGET // 2 ** 20}); "
                     "past it fewer images get thumbnails, every image's row stays")


def _error(msg: str, code: int) -> typer.Exit:
    # One line on stderr, whatever the message held (a YAML excerpt, a wrapped path).
    typer.secho("error: " + " ".join(str(msg).split()), fg=typer.colors.RED, err=True)
    return typer.Exit(code)


class _OneLineErrors(TyperGroup):
    """The one place where errors meet the user: ``FailmodesError`` (and a usage error) ->
    ``error: <one line>`` and its exit code; ``OSError`` -> exit 3 naming the file;
    Ctrl-C -> ``interrupted: ...``, exit 130. Anything else is a bug and keeps its traceback.

    Caught here, not around ``app()`` in ``main``: typer turns KeyboardInterrupt into a
    silent exit 130 before ``app()`` returns, and the test runner calls ``app`` directly.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _UsageError as e:  # usage: unknown option, bad value, missing --out
            where = getattr(getattr(e, "ctx", None), "command_path", None)
            hint = f" (see `{where} --help`)" if where else ""
            raise _error(getattr(e, "format_message", e.__str__)() + hint, EXIT_USAGE) from None
        except FailmodesError as e:
            raise _error(str(e), e.exit_code) from None
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
            raise _error(_os_message(e), EXIT_USAGE) from None
        except OSError as e:
            if e.errno == errno.EPIPE:  # `failmodes stressors | head`: typer quiets it
                raise
            raise _error(_os_message(e), EXIT_ENVIRONMENT) from None
        except KeyboardInterrupt:
            typer.secho(INTERRUPTED, err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None


def _os_message(e: OSError) -> str:
    if e.strerror and e.filename:
        return f"{e.strerror}: {e.filename}"
    return str(e.strerror or e)


def parse_out_dir(value) -> Path:
    # ``--out ""`` is refused rather than read as the current folder.
    if not str(value).strip():
        raise typer.BadParameter("is empty; name a folder (e.g. --out runs/x, or . for this one)")
    return Path(value)


app = typer.Typer(cls=_OneLineErrors, help="Stress-test image classifiers and explain how "
                  "they fail.", epilog=EPILOG, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)


def fail(msg: str) -> None:
    """Refuse a command line the options alone cannot check: ``error: <msg>``, exit 2."""
    raise FailmodesError(msg)


# Every form of every registered data spec (``failmodes.data.list_data_specs``), and the
# released corrupted sets among them.
DATA_HELP = data_help()
OFFICIAL_HELP = " | ".join(s.forms[0] for s in list_corrupted_specs())


def thumb_budget_bytes(mb: float | None) -> int | None:
    """``--thumb-budget MB`` as bytes, or one ``error:`` line (exit 2) when out of range."""
    if mb is None:
        return None
    from ..report.explorer import check_thumb_budget
    return check_thumb_budget(mb * 2 ** 20, "--thumb-budget")


def main() -> None:
    """Console entry point (``failmodes``, ``python -m failmodes``); errors are turned into
    one line by ``_OneLineErrors`` above."""
    app()
