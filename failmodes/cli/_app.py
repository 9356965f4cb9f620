"""The typer app and what every command shares: the one place errors meet the user, the
``--out DIR`` parser and the help texts of options that recur across commands."""
from __future__ import annotations

import errno
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup
from typer.models import ArgumentInfo, OptionInfo

from .. import values
from ..constants import DEFAULT_THUMB_BUDGET, MAX_THUMB_BUDGET, REPORT_TARGET_BYTES
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
                     f"{MAX_THUMB_BUDGET // 2 ** 20}; default: what the figures leave of a "
                     f"{REPORT_TARGET_BYTES // 2 ** 20} MB page, at most "
                     f"{DEFAULT_THUMB_BUDGET // 2 ** 20}); flipped images first, then confident "
                     "failures; past it fewer images get thumbnails, every image's row stays")


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


# ---------------------------------------------------------------------------- option values
# Every option named in this table, in every command (the generated analysis commands and any
# command added later included: ``_OneLineErrors.__init__`` sets them), parses through its
# ``failmodes.values`` check before the command does anything; the study loader checks the
# keys of the same names with the same functions.
def _value(check: Callable[[Any, str], Any]) -> Callable[[Any], Any]:
    # Typer prints "Invalid value for '--seed': <message>", so the message starts at the
    # value (where="").
    def parse(text):
        try:
            return check(text, "")
        except values.OptionValueError as e:
            raise typer.BadParameter(str(e)) from None
    parse.__name__ = check.__name__
    return parse


VALUE_PARSERS: dict[str, Callable[[Any], Any]] = {
    "out": _value(values.out_dir),
    "seed": _value(values.seed),
    "device": _value(values.device),
    "threads": _value(values.threads),
    "num_classes": _value(values.num_classes),
    "input_size": _value(values.input_size),
    "image_size": _value(values.input_size),
    "mean": _value(values.norm_stats),
    "std": _value(lambda v, w: values.norm_stats(v, w, std=True)),
    "arch_arg": _value(values.arch_arg),
    "stressors": _value(values.name_text),
    "models": _value(values.name_text),
    "repeats": _value(values.repeats),
    "name": _value(values.model_name),
}


# The positional paths a command reads: checked for emptiness and the system's limits.
PATH_ARGUMENTS = ("run_dir", "run_a", "run_b", "study", "path", "image")


def checked_values(command: Callable) -> Callable:
    """``command`` with every option named in VALUE_PARSERS (and every path argument named
    in PATH_ARGUMENTS) parsing through its check (set on the typer parameters of its
    signature); ``app.command()`` applies it to every command."""
    for param in inspect.signature(command).parameters.values():
        if isinstance(param.default, OptionInfo) and param.name in VALUE_PARSERS:
            param.default.parser = VALUE_PARSERS[param.name]
        elif isinstance(param.default, ArgumentInfo) and param.name in PATH_ARGUMENTS:
            # the type the command declared: a Path, or text (``skimage:chelsea``)
            param.default.parser = _PATH if "Path" in str(param.annotation) else _PATH_TEXT
    return command


# The two listings run no torch; every other command takes --threads (README), given here
# to those that do not pass it on themselves (train and run put it in their config).
_NO_THREADS = ("models", "stressors")


def with_threads(command: Callable) -> Callable:
    """``command`` with a ``--threads N`` option that sets torch's CPU threads first, unless
    it has its own ``threads`` parameter or is a listing."""
    sig = inspect.signature(command)
    if "threads" in sig.parameters or command.__name__ in _NO_THREADS:
        return command

    @functools.wraps(command)
    def run(*args, threads: int | None = None, **kwargs):
        set_threads(threads)
        return command(*args, **kwargs)
    param = inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY, annotation=int | None,
                              default=typer.Option(None, "--threads", help=THREADS_HELP))
    params = list(sig.parameters.values())
    run.__signature__ = sig.replace(parameters=params + [param])  # type: ignore[attr-defined]
    run.__annotations__ = {**getattr(command, "__annotations__", {}), "threads": int | None}
    return run


class _App(typer.Typer):
    # Registering a command is where its options meet the value checks (and --threads): a
    # command added later, or generated from an options dataclass, cannot skip them.
    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)
        return lambda f: register(checked_values(with_threads(f)))


parse_out_dir = VALUE_PARSERS["out"]
def _path_argument(value, where: str) -> Path:
    return Path(values.in_path(value, where))


_PATH_TEXT = _value(values.in_path)
_PATH = _value(_path_argument)


def set_threads(threads: int | None) -> None:
    """``--threads N`` of a command that runs torch itself (train and run pass it on)."""
    if threads:
        import torch
        torch.set_num_threads(threads)


app = _App(cls=_OneLineErrors, help="Stress-test image classifiers and explain how "
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
    from .._malloc import tune_cpu_allocator
    tune_cpu_allocator()  # large CPU temporaries reuse mapped pages (see failmodes/_malloc.py)
    app()
