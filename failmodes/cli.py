"""The `failmodes` command line: thin typer commands that parse, build a config and call
the library. Every command takes ``--out DIR`` for what it writes."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Stress-test image classifiers and explain how they fail.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def fail(msg: str, code: int = 2) -> None:
    """Print one clear line to stderr and exit non-zero."""
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _pending(issue: int, what: str) -> None:
    fail(f"`failmodes {what}` is not built yet (tracked in issue {issue}).")


# ----------------------------------------------------------------------------- models
@app.command()
def models(pattern: str = typer.Argument("*", help="shell-style filter, e.g. '*resnet*'")):
    """List the model registry with parameter counts and input sizes."""
    from .models import describe_models
    from rich.console import Console
    from rich.table import Table

    table = Table(title="failmodes models")
    for col in ("name", "params", "input", "classes", "description"):
        table.add_column(col)
    for row in describe_models(pattern):
        table.add_row(row["name"], row["params"], row["input"], str(row["classes"]),
                      row["description"])
    Console().print(table)


# ----------------------------------------------------------------------------- stressors
@app.command()
def stressors(pattern: str = typer.Argument("*", help="shell-style filter, e.g. '*blur*'")):
    """List every stressor with its family and parameters."""
    _pending(4, "stressors")


# ----------------------------------------------------------------------------- corrupt
@app.command()
def corrupt(
    path: Path = typer.Argument(..., help="an image file, or a folder searched recursively"),
    stressor: Optional[str] = typer.Option(None, "--stressor", "-s",
                                           help="stressor to apply, e.g. fog (see `failmodes stressors`)"),
    severity: float = typer.Option(3.0, "--severity", help="0..5 for corruptions (fractions "
                                   "interpolate), natural units for sweeps"),
    out: Path = typer.Option(..., "--out", help="folder for the PNGs and the contact sheet"),
    seed: int = typer.Option(0, "--seed", help="noise seed; image i of the sorted file list is index i"),
    params: str = typer.Option("auto", "--params", help="severity table: auto (CIFAR below 64 px, "
                               "else ImageNet), cifar or imagenet"),
    sheet: bool = typer.Option(True, "--sheet/--no-sheet",
                               help="also write contact_sheet.png: first image, stressors x severities 0..5"),
    stressors_: Optional[str] = typer.Option(None, "--stressors", help="contact-sheet rows, comma-"
                                             "separated (default: all 19 corruptions)"),
    device: str = typer.Option("auto", "--device", help="auto (cuda when available), cpu or cuda"),
):
    """Write corrupted copies of an image or folder (and a contact sheet)."""
    from .stressors.io import corrupt_path

    rows = [s.strip() for s in stressors_.split(",") if s.strip()] if stressors_ else None
    try:
        res = corrupt_path(path, stressor, severity, out=out, seed=seed, params=params,
                           sheet=sheet, sheet_stressors=rows, device=device)
    except ValueError as e:
        fail(str(e))
    for bad, why in res.skipped:
        typer.secho(f"skipped {bad}: {why}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"wrote {len(res.written)} image(s) to {out}"
               + (f" and the contact sheet {res.sheet}" if res.sheet else ""))


# ----------------------------------------------------------------------------- train
@app.command()
def train():
    """Train a registry model on a dataset with a named recipe."""
    _pending(5, "train")


# ----------------------------------------------------------------------------- evaluate
@app.command()
def evaluate():
    """Evaluate a model over a grid of stressor cells into the results store."""
    _pending(6, "evaluate")


# ----------------------------------------------------------------------------- analyze
@app.command()
def analyze():
    """Degradation curves, regimes, high-confidence failures and confusions of a run."""
    _pending(7, "analyze")


# ----------------------------------------------------------------------------- probe
@app.command()
def probe():
    """Sweep one image through a stressor and plot how the prediction changes."""
    _pending(7, "probe")


# ----------------------------------------------------------------------------- calibrate
@app.command()
def calibrate():
    """Calibration under shift: ECE, reliability, temperature scaling, failure detection."""
    _pending(8, "calibrate")


# ----------------------------------------------------------------------------- cam
@app.command()
def cam():
    """Grad-CAM failure explanations and attention drift under corruption."""
    _pending(9, "cam")


# ----------------------------------------------------------------------------- run
@app.command()
def run():
    """Run a whole study (train, evaluate, analyse) and write the HTML report."""
    _pending(10, "run")


# ----------------------------------------------------------------------------- compare
@app.command()
def compare():
    """Compare two runs in one report."""
    _pending(10, "compare")


def _user_errors() -> tuple[type[BaseException], ...]:
    """Library exceptions whose message is already one line meant for the user."""
    from .config import ConfigError
    from .data import DataError
    from .evaluate import StoreError
    from .models import ModelError
    from .stressors import StressorError
    return (ConfigError, DataError, ModelError, StoreError, StressorError, FileNotFoundError)


def main() -> None:
    """Console entry point: a library error becomes ``error: <one line>`` and exit 2."""
    errors = _user_errors()
    try:
        app()
    except errors as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except OSError as e:  # full disk, permissions: say which file
        typer.secho(f"error: {e.strerror or e}: {getattr(e, 'filename', '') or ''}".rstrip(": "),
                    fg=typer.colors.RED, err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho("interrupted: finished cells are kept; re-run the same command to resume",
                    err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
