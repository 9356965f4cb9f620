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
def evaluate(
    model: list[str] = typer.Option(..., "--model", help="checkpoint path or registry name; "
                                    "repeat for several models"),
    name: Optional[list[str]] = typer.Option(None, "--name", help="store name of each --model, "
                                             "in order (default: checkpoint stem)"),
    data: str = typer.Option(..., "--data", help="synthetic | cifar10 | imagefolder:PATH | PATH"),
    split: str = typer.Option("test", help="data split to evaluate"),
    suite: Optional[str] = typer.Option(None, help="cifar10-c | cifar10-c-extra | all | sweeps "
                                        "(default cifar10-c unless --stressors/--sweep)"),
    stressors: Optional[str] = typer.Option(None, help="comma-separated stressor names"),
    severities: str = typer.Option("1,2,3,4,5", help="1,2,3 or START:STOP:STEP, e.g. 0:5:0.25"),
    sweep: Optional[list[str]] = typer.Option(None, "--sweep", help="NAME=START:STOP:STEP, "
                                              "e.g. rotation=-90:90:15; repeatable"),
    subset: Optional[int] = typer.Option(None, help="class-stratified subset of N images"),
    seed: int = typer.Option(0, help="stressor randomness seed"),
    batch_size: int = typer.Option(256, "--batch-size"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    val: bool = typer.Option(False, "--val", help="also evaluate the clean train-val split "
                             "(for temperature scaling)"),
    cifar10c: Optional[Path] = typer.Option(None, "--cifar10c", help="official CIFAR-10-C .npy "
                                            "folder: evaluate on it too and compare"),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="resize folder images"),
    out: Path = typer.Option(..., "--out", help="run folder (results.sqlite; resumes)"),
):
    """Evaluate a model over a grid of stressor cells into the results store."""
    from .evaluate import EvalConfig, StoreError, run_evaluation
    from rich.console import Console
    from rich.table import Table

    if name and len(name) != len(model):
        fail(f"--name given {len(name)} times for {len(model)} --model; give one per model")
    names = stressors.split(",") if stressors else None
    cfg = EvalConfig(models=dict(zip(name, model)) if name else list(model), data=data,
                     split=split, subset=subset,
                     suite=suite or (None if names or sweep else "cifar10-c"),
                     stressors=[n.strip() for n in names if n.strip()] if names else None,
                     severities=severities, sweeps=list(sweep or []), seed=seed,
                     batch_size=batch_size, device=device, include_val=val,
                     cifar10c=str(cifar10c) if cifar10c else None, image_size=image_size,
                     out=str(out))
    try:
        summary = run_evaluation(cfg)
    except (ValueError, StoreError) as e:
        fail(str(e))
    if summary is None:  # a non-zero torchrun rank
        return
    table = Table(title=f"accuracy per corruption (mean over severities) — {summary['store']}")
    for col in ("model", "stressor", "family", "levels", "accuracy"):
        table.add_column(col, justify="right" if col in ("levels", "accuracy") else "left")
    for r in summary["table"]:
        table.add_row(r["model"], r["stressor"], r["family"], str(r["severities"]),
                      f"{r['accuracy'] * 100:.2f}%")
    console = Console()
    console.print(table)
    console.print(f"{summary['computed']} cells computed, {summary['skipped']} already stored, "
                  f"{len(summary['failed'])} failed; {summary['images']} images in "
                  f"{summary['wall_s']:.1f} s")
    for f in summary["failed"]:
        c = f["cell"]
        typer.secho(f"failed: {c['model']} {c['stressor']} {c['severity']:g}: {f['error']}",
                    fg=typer.colors.RED, err=True)
    if summary["failed"]:
        raise typer.Exit(1)


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
