"""Commands on single images rather than run folders: `corrupt` writes stressed copies,
`probe` sweeps one image through a stressor."""
from __future__ import annotations

from pathlib import Path

import typer

from ._app import DEVICE_HELP, parse_out_dir


def corrupt(
    path: Path = typer.Argument(..., help="an image file, or a folder searched recursively"),
    stressor: str | None = typer.Option(None, "--stressor", "-s",
                                           help="stressor to apply, e.g. fog (see `failmodes stressors`)"),
    severity: float = typer.Option(3.0, "--severity", help="0..5 for corruptions (fractions "
                                   "interpolate), natural units for sweeps"),
    out: Path = typer.Option(..., "--out", parser=parse_out_dir, metavar="DIR",
                             help="folder for the PNGs and the contact sheet"),
    seed: int = typer.Option(0, "--seed", help="noise seed; image i of the sorted file list is index i"),
    params: str = typer.Option("auto", "--params", help="severity table: auto (CIFAR below 64 px, "
                               "else ImageNet), cifar or imagenet"),
    sheet: bool = typer.Option(True, "--sheet/--no-sheet",
                               help="also write contact_sheet.png: first image, stressors x severities 0..5"),
    stressors: str | None = typer.Option(None, "--stressors", help="contact-sheet rows, comma-"
                                             "separated (default: all 19 corruptions)"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
):
    """Write corrupted copies of an image or folder (and a contact sheet)."""
    from ..stressors.io import corrupt_path

    rows = stressors.split(",") if stressors is not None else None
    res = corrupt_path(path, stressor, severity, out=out, seed=seed, params=params,
                       sheet=sheet, sheet_stressors=rows, device=device)
    for bad, why in res.skipped:
        typer.secho(f"skipped {bad}: {why}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"wrote {len(res.written)} image(s) to {out}"
               + (f" and the contact sheet {res.sheet}" if res.sheet else ""))


def probe(
    image: str = typer.Argument(..., help="image file, or skimage:NAME (e.g. skimage:chelsea)"),
    model: str = typer.Option(..., help="registry name or checkpoint path"),
    stressor: str = typer.Option(..., help="stressor name, e.g. rotation or gaussian_noise_std"),
    values: str = typer.Option(..., help="START:STOP:STEP (stop included) or v1,v2,..."),
    label: str | None = typer.Option(None, help="target class (index or name) "
                                                   "[default: the clean top-1]"),
    space: str = typer.Option("auto", help="noise std space: auto, pixel or normalized"),
    seed: int = typer.Option(0, help="stressor seed"),
    repeats: int = typer.Option(1, help="average probabilities over this many stressor draws "
                                "(at most 1000)"),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    out: Path = typer.Option(Path("out/probe"), "--out", parser=parse_out_dir, metavar="DIR",
                             help="output folder"),
):
    """Sweep one image through a stressor and plot how the prediction changes."""
    from rich.console import Console
    from rich.table import Table

    from ..analysis.probe import probe as run_probe
    r = run_probe(image, model, stressor, values, label=label, space=space, seed=seed,
                  repeats=repeats, device=device, out_dir=out)
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
