"""The analyses of a run folder one at a time: `analyze` (curves, regimes, failures),
`calibrate` and `cam`."""
from __future__ import annotations

from pathlib import Path

import typer

from ..constants import CALIBRATION_BINS, CONFIDENT_THRESHOLD
from ._app import DEVICE_HELP, RUN_DIR_HELP, parse_out_dir


def analyze(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    out: Path | None = typer.Option(None, "--out", parser=parse_out_dir, metavar="DIR",
                                       help="output folder [default: RUN_DIR/analysis, "
                                                  "where the report reads it]"),
    threshold: float = typer.Option(CONFIDENT_THRESHOLD, min=0.0, max=0.999999,
                                    help="confidence above which an error is high-confidence"),
    superclasses: str | None = typer.Option(
        None, help="superclass map: YAML file, cifar10, imagenet or none "
                   "[default: built in when the class names allow]"),
):
    """Degradation curves, regimes, high-confidence failures and confusions of a run."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..analysis.analyze import analyze_run
    from ..store import RunFolder
    results = analyze_run(run_dir, out, threshold=threshold, superclasses=superclasses)
    console = Console()
    curves = results.get("curves")
    console.print(curves.summary.get("headline", "") if curves else "", style="bold")
    rows = curves.tables.get("regimes", []) if curves else []
    several = len({r["model"] for r in rows}) > 1
    table = Table(title="regimes (rates and drop in accuracy points, per unit severity)")
    cols = (["model"] if several else []) + ["stressor", "regime", "break", "before", "after",
                                             "drop", "confidence"]
    for col in cols:
        table.add_column(col, no_wrap=col in ("stressor", "regime"))
    f = lambda v, fmt: "" if v is None else format(v + 0.0, fmt)  # noqa: E731  (+0.0: no -0)
    for r in rows:
        table.add_row(*([r["model"]] if several else []), escape(r["stressor"]), r["regime"] or "-",
                      f(r.get("breakpoint"), ".2g"), f(r.get("slope_before"), ".1f"),
                      f(r.get("slope_after"), ".1f"), f(r.get("total_drop"), ".1f"),
                      r.get("confidence") or "")
    console.print(table)
    for note in (results["failures"].notes if "failures" in results else []):
        console.print(note)
    console.print(f"written to {out or RunFolder(run_dir).analysis}")


def calibrate(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    out: Path | None = typer.Option(None, "--out", parser=parse_out_dir, metavar="DIR",
                                       help="where JSON and figures go "
                                       "[default: RUN_DIR/analysis]"),
    bins: int = typer.Option(CALIBRATION_BINS, "--bins",
                             help="equal-width (and equal-mass) ECE bins"),
):
    """Calibration under shift: ECE, reliability, temperature scaling, failure detection."""
    from rich.console import Console
    from rich.table import Table

    from ..analysis.calibration import calibrate_run, shift_table
    from ..store import RunFolder

    result = calibrate_run(run_dir, out, n_bins=bins)
    header, rows = shift_table(result)
    table = Table(title="calibration: clean vs shifted, before -> after temperature scaling")
    for col in header:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    for note in result.notes:
        console.print(f"- {note}", markup=False)
    console.print(f"wrote {(out or RunFolder(run_dir).analysis) / 'calibration.json'} and "
                  f"{len(result.figures)} figure(s)", markup=False)


def cam(run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
        out: Path | None = typer.Option(None, "--out", parser=parse_out_dir, metavar="DIR",
                                           help="where cam.json and figures/ go "
                                           "(default: RUN_DIR/analysis, beside the other analyses)"),
        method: str = typer.Option("gradcam", help="gradcam | gradcam++ | scorecam "
                                   "(gradient-free, one forward pass per channel: slow)"),
        sample: int = typer.Option(200, help="fixed images for attention drift (same for "
                                   "every model)"),
        layer: str | None = typer.Option(None, "--layer", "--cam-layer",
                                            help="module to hook, e.g. layer4.1 (default: "
                                            "the model's own, found automatically)"),
        stressors: str | None = typer.Option(None, help="comma-separated stressors "
                                                "(default: every corruption in the store)"),
        target: str = typer.Option("clean", help="drift CAM target: clean (the clean-"
                                   "predicted class) or pred (each level's prediction)"),
        failures_per_cell: int = typer.Option(8, help="high-confidence failures explained "
                                              "per cell (most confident first)"),
        device: str = typer.Option("auto", help=DEVICE_HELP),
        seed: int = typer.Option(0, help="chooses the drift sample")):
    """Grad-CAM failure explanations and attention drift under corruption."""
    from ..analysis.cam import run_cam
    from ..store import RunFolder
    names = [s.strip() for s in stressors.split(",") if s.strip()] if stressors else None
    out = out or RunFolder(run_dir).analysis
    res = run_cam(run_dir, out, method=method, sample=sample, layer=layer, stressors=names,
                  target=target, failures_per_cell=failures_per_cell, device=device, seed=seed)
    for note in res.notes:
        typer.echo(note)
    typer.echo(f"wrote {out / 'cam.json'} and {len(res.figures)} figures")
