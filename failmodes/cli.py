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
def analyze(
    run_dir: Path = typer.Argument(..., help="run folder holding results.sqlite"),
    out: Optional[Path] = typer.Option(None, help="output folder [default: RUN_DIR, where "
                                                  "the report reads it]"),
    threshold: float = typer.Option(0.9, min=0.0, max=0.999999,
                                    help="confidence above which an error is high-confidence"),
    superclasses: Optional[str] = typer.Option(
        None, help="superclass map: YAML file, cifar10, imagenet or none "
                   "[default: built in when the class names allow]"),
):
    """Degradation curves, regimes, high-confidence failures and confusions of a run."""
    from rich.console import Console
    from rich.table import Table

    from .analysis.analyze import analyze_run
    from .analysis.superclasses import SuperclassError
    try:
        results = analyze_run(run_dir, out, threshold=threshold, superclasses=superclasses)
    except SuperclassError as e:
        fail(str(e))
    console = Console()
    curves = results.get("curves", {})
    console.print(curves.get("summary", {}).get("headline", ""), style="bold")
    rows = curves.get("tables", {}).get("regimes", [])
    several = len({r["model"] for r in rows}) > 1
    table = Table(title="regimes (rates and drop in accuracy points, per unit severity)")
    cols = (["model"] if several else []) + ["stressor", "regime", "break", "before", "after",
                                             "drop", "confidence"]
    for col in cols:
        table.add_column(col, no_wrap=col in ("stressor", "regime"))
    f = lambda v, fmt: "" if v is None else format(v + 0.0, fmt)  # noqa: E731  (+0.0: no -0)
    for r in rows:
        table.add_row(*([r["model"]] if several else []), r["stressor"], r["regime"] or "-",
                      f(r.get("breakpoint"), ".2g"), f(r.get("slope_before"), ".1f"),
                      f(r.get("slope_after"), ".1f"), f(r.get("total_drop"), ".1f"),
                      r.get("confidence") or "")
    console.print(table)
    for note in results.get("failures", {}).get("notes", []):
        console.print(note)
    console.print(f"written to {out or run_dir}")


# ----------------------------------------------------------------------------- probe
@app.command()
def probe(
    image: str = typer.Argument(..., help="image file, or skimage:NAME (e.g. skimage:chelsea)"),
    model: str = typer.Option(..., help="registry name or checkpoint path"),
    stressor: str = typer.Option(..., help="stressor name, e.g. rotation or gaussian_noise_std"),
    values: str = typer.Option(..., help="START:STOP:STEP (stop included) or v1,v2,..."),
    label: Optional[str] = typer.Option(None, help="target class (index or name) "
                                                   "[default: the clean top-1]"),
    space: str = typer.Option("auto", help="noise std space: auto, pixel or normalized"),
    seed: int = typer.Option(0, help="stressor seed"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    out: Path = typer.Option(Path("out/probe"), help="output folder"),
):
    """Sweep one image through a stressor and plot how the prediction changes."""
    from rich.console import Console
    from rich.table import Table

    from .analysis.probe import ProbeError
    from .analysis.probe import probe as run_probe
    try:
        r = run_probe(image, model, stressor, values, label=label, space=space, seed=seed,
                      device=device, out_dir=out)
    except ProbeError as e:
        fail(str(e))
    t = r["target"]
    table = Table(title=f"{r['model']} on {r['image']['source']} under {r['stressor']} "
                        f"({r['space']}); target {t['name']} ({t['chosen_as']})")
    for col in ("value", "top-1", "conf", f"p({t['name']})"):
        table.add_column(col)
    for row in r["rows"]:
        table.add_row(f"{row['value']:g}", row["top1"]["name"], f"{row['top1']['prob']:.3f}",
                      f"{row['p_target']:.3f}")
    Console().print(table)
    Console().print(f"{r['image']['resize']}; written to {out}")


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
