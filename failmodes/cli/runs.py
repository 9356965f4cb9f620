"""Whole runs: `run` a study end to end, `report` a run folder, `compare` two."""
from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import EXIT_FAILED
from ..study import list_presets
from ._app import (
    DATA_HELP,
    DEVICE_HELP,
    RUN_DIR_HELP,
    THREADS_HELP,
    THUMB_BUDGET_HELP,
    fail,
    parse_out_dir,
    thumb_budget_bytes,
)


def run(
    study: Path | None = typer.Argument(None, help="study YAML file (or use --preset)"),
    preset: str | None = typer.Option(None, "--preset", help="built-in study (failmodes/presets/"
                                         "NAME.yaml): " + " | ".join(list_presets())),
    out: Path | None = typer.Option(None, "--out", parser=parse_out_dir, metavar="DIR",
                                       help="run folder (default runs/<study>); "
                                       "re-running resumes it"),
    data: str | None = typer.Option(None, "--data", help="override the data: " + DATA_HELP),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP + " [default: the study's]"),
    seed: int | None = typer.Option(None, "--seed", help="override the study's seed"),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
    thumb_budget: float | None = typer.Option(None, "--thumb-budget", metavar="MB",
                                              help=THUMB_BUDGET_HELP),
):
    """Run a whole study (train, evaluate, analyse) and write the HTML report."""
    from ..study import prepare_and_run

    if (study is None) == (preset is None):
        fail(f"give exactly one of: a study file, --preset NAME ({', '.join(list_presets())})")
    budget = thumb_budget_bytes(thumb_budget)   # checked now, not after hours of training
    command = "failmodes " + " ".join(_quote(a) for a in sys.argv[1:])
    result = prepare_and_run(study, preset, command=command, out=out, data=data,
                             device=device, seed=seed, threads=threads, thumb_budget=budget)
    typer.echo(f"report: {result.report}")
    for f in result.failures:
        typer.secho(f"warning: {f}", fg=typer.colors.YELLOW, err=True)
    if result.failures:
        raise typer.Exit(EXIT_FAILED)


def _quote(arg: str) -> str:
    import shlex
    return shlex.quote(arg)


def report(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    out: Path | None = typer.Option(None, "--out", parser=parse_out_dir, metavar="DIR",
                                    help="folder for report.html and its figures/, tables/ "
                                         "and results.json (default: RUN_DIR); with --out "
                                         "nothing is written into RUN_DIR, which may be "
                                         "read-only"),
    thumb_budget: float | None = typer.Option(None, "--thumb-budget", metavar="MB",
                                              help=THUMB_BUDGET_HELP),
    force: bool = typer.Option(False, "--force", help="write the report even where the "
                               "folder has no results.sqlite (it replaces any report there)"),
):
    """Write the HTML report of a run folder from what it holds (runs no model)."""
    from ..report import render_report
    from ..store import REPORT_NAME

    budget = thumb_budget_bytes(thumb_budget)
    path = render_report(run_dir, out / REPORT_NAME if out is not None else None,
                         thumb_budget=budget, force=force)
    typer.echo(f"report: {path}")


def compare(
    run_a: Path = typer.Argument(..., help="run folder A (its baseline model is the reference)"),
    run_b: Path = typer.Argument(..., help="run folder B"),
    out: Path | None = typer.Option(None, "--out", parser=parse_out_dir, metavar="DIR",
                                       help="folder for compare.html "
                                       "(default <parent of A>/<A>-vs-<B>)"),
):
    """Compare two runs in one report."""
    from ..report import compare_runs

    path = compare_runs(run_a, run_b, out)
    typer.echo(f"comparison: {path}")
