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
def corrupt():
    """Write corrupted copies of an image or folder (and a contact sheet)."""
    _pending(4, "corrupt")


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
def cam(run_dir: Path = typer.Argument(..., help="run folder holding results.sqlite"),
        out: Optional[Path] = typer.Option(None, help="where cam.json and figures/ go "
                                           "(default: RUN_DIR)"),
        method: str = typer.Option("gradcam", help="gradcam | gradcam++ | scorecam "
                                   "(gradient-free, one forward pass per channel: slow)"),
        sample: int = typer.Option(200, help="fixed images for attention drift (same for "
                                   "every model)"),
        layer: Optional[str] = typer.Option(None, help="module to hook, e.g. layer4.1 "
                                            "(default: the model's last conv block)"),
        stressors: Optional[str] = typer.Option(None, help="comma-separated stressors "
                                                "(default: every corruption in the store)"),
        target: str = typer.Option("clean", help="drift CAM target: clean (the clean-"
                                   "predicted class) or pred (each level's prediction)"),
        failures_per_cell: int = typer.Option(8, help="high-confidence failures explained "
                                              "per cell (most confident first)"),
        device: str = typer.Option("auto", help="auto | cpu | cuda"),
        seed: int = typer.Option(0, help="chooses the drift sample")):
    """Grad-CAM failure explanations and attention drift under corruption."""
    from .analysis.cam import CamError, run_cam
    names = [s.strip() for s in stressors.split(",") if s.strip()] if stressors else None
    try:
        res = run_cam(run_dir, out or run_dir, method=method, sample=sample, layer=layer,
                      stressors=names, target=target, failures_per_cell=failures_per_cell,
                      device=device, seed=seed)
    except CamError as e:
        fail(str(e))
    for note in res["notes"]:
        typer.echo(note)
    typer.echo(f"wrote {(out or run_dir) / 'cam.json'} and {len(res['figures'])} figures")


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
