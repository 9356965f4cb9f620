"""`failmodes estimate RUN --images SPEC`: a run's models on new, unlabelled images —
label-free accuracy estimates with intervals, shift tests, the nearest stored cells."""
from __future__ import annotations

from pathlib import Path

import typer

from ._app import DEVICE_HELP, RUN_DIR_HELP, parse_out_dir


def estimate(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    images: str = typer.Option(..., "--images", help="a data spec (its labels are only shown "
                               "as the check) or a folder of images without class folders"),
    model: str | None = typer.Option(None, "--model", help="one model of the run [default: all]"),
    out: Path | None = typer.Option(None, "--out", parser=parse_out_dir, metavar="DIR",
                                    help="folder for estimate.json and estimate.html "
                                    "[default: RUN/analysis/estimate-images]"),
    split: str = typer.Option("test", "--split", help="split of a data spec"),
    limit: int | None = typer.Option(None, "--limit", min=2, help="a seeded random subset of "
                                     "this many images"),
    n_boot: int = typer.Option(1000, "--n-boot", min=10, help="bootstrap resamples"),
    seed: int = typer.Option(0, "--seed", help="seed of the subset, the bootstrap and the "
                             "permutations"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
):
    """Estimate accuracy on unlabelled images, test for shift, name the nearest stored cell."""
    from ..analysis.estimate.images import estimate_images
    from ..estimate import DEFAULT_HEADLINE

    res = estimate_images(run_dir, images, model=model, out_dir=out, split=split, limit=limit,
                          n_boot=n_boot, seed=seed, device=device)
    typer.echo(res.images.what)
    for line in table_lines(res.results):
        typer.echo(line)
    typer.echo("* the estimator closest to the truth on this run's stored cells (the estimate "
               f"analysis; {DEFAULT_HEADLINE} before it has run); intervals cover sampling, not "
               "bias")
    typer.echo(f"wrote {res.json_path} and {res.page_path}")


def table_lines(results: dict) -> list[str]:
    """One table: a row per model and estimator (the headline marked *: the estimator closest
    to the truth on the run's stored cells), then per model the shift tests, the check and
    the one-line answer."""
    lines = [f"{'model':<22} {'estimator':<11} {'accuracy %':>10} {'interval %':>13}"]
    for m, r in results.items():
        for e in r.estimates:
            mark = "*" if e.name == r.headline else " "
            lines.append(f"{m[:22]:<22} {e.name:<10}{mark} {100 * e.accuracy:>10.1f} "
                         f"{100 * e.low:>6.1f}–{100 * e.high:<6.1f}")
    for m, r in results.items():
        tests = f"KS p={r.ks.p_value:.3g}" + (f", MMD p={r.mmd.p_value:.3g}" if r.mmd else "")
        lines.append(f"{m}: {'SHIFTED' if r.shifted else 'no shift detected'} ({tests})")
        if r.true_accuracy is not None:
            lines.append(f"{m}: true accuracy from the images' labels {100 * r.true_accuracy:.1f} %")
        lines.append(f"{m}: {r.sentence()}")
    return lines
