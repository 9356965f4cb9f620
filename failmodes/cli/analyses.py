"""The analyses of a run folder one at a time: `analyze` (the analyses registered with
``analyze=True``: metrics, curves and regimes, failures), `calibrate`, `cam` and `slices`. Their options
are generated from the analyses' options dataclasses (``failmodes.analysis``), so a new
option or a new analysis appears here without an edit."""
from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from ..analysis import get_analysis
from ..analysis.analyze import analyze_analyses
from ._app import RUN_DIR_HELP, parse_out_dir


def _out_param(help: str) -> inspect.Parameter:
    return inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, annotation=Path | None,
                             default=typer.Option(None, "--out", parser=parse_out_dir,
                                                  metavar="DIR", help=help))


_RUN_DIR = inspect.Parameter("run_dir", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                             annotation=Path, default=typer.Argument(..., help=RUN_DIR_HELP))


def _is_list(tp) -> bool:
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) \
        else (tp,)
    return any(a is list or typing.get_origin(a) is list for a in args)


def _option_fields(analyses) -> dict[str, tuple[dataclasses.Field, Any]]:
    """Every option field of ``analyses`` by name, with its resolved type; one name is one
    concept, so two analyses may share a field only with the same type and default."""
    out: dict[str, tuple[dataclasses.Field, Any]] = {}
    for a in analyses:
        hints = typing.get_type_hints(a.options)
        for f in dataclasses.fields(a.options):
            if f.name in out and (out[f.name][1] != hints[f.name]
                                  or out[f.name][0].default != f.default):
                raise TypeError(f"option {f.name!r} of analysis {a.name!r} differs from "
                                "another analysis's option of that name")
            out.setdefault(f.name, (f, hints[f.name]))
    return out


def _option_param(name: str, f: dataclasses.Field, tp) -> inspect.Parameter:
    meta = dict(f.metadata)
    default = f.default if f.default is not dataclasses.MISSING else None
    if _is_list(tp):   # a list option is one comma-separated value on the command line
        tp, default = str | None, None if default is None else ",".join(map(str, default))
    limits = {k: meta[k] for k in ("min", "max") if k in meta}
    flag = f"--{name.replace('_', '-')}"
    if tp is bool:
        flag = f"{flag}/--no-{name.replace('_', '-')}"
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=tp,
        default=typer.Option(default, flag, *meta.get("flags", ()),
                             help=meta.get("help", ""), **limits))


def _options(analyses, values: dict[str, Any]) -> dict[str, Any]:
    fields = _option_fields(analyses)
    out = {}
    for name, (_f, tp) in fields.items():
        v = values[name]
        if _is_list(tp) and isinstance(v, str):
            v = [s.strip() for s in v.split(",") if s.strip()] or None
        out[name] = v
    return out


def _command(name: str, analyses, out_help: str,
             body: Callable[[Path, Path | None, dict[str, Any]], None]):
    """A typer command ``name RUN_DIR [--out DIR] [--<option> ...]`` with one option per
    field of ``analyses``' options dataclasses; ``body(run_dir, out, options)`` does the work."""
    fields = _option_fields(analyses)
    params = [_RUN_DIR, _out_param(out_help),
              *(_option_param(n, f, tp) for n, (f, tp) in fields.items())]

    def command(**kwargs):
        body(kwargs.pop("run_dir"), kwargs.pop("out"), _options(analyses, kwargs))
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = command.__qualname__ = name
    command.__doc__ = body.__doc__
    return command


def _analyze(run_dir: Path, out: Path | None, options: dict[str, Any]) -> None:
    """Degradation curves, regimes, high-confidence failures and confusions of a run."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..analysis.analyze import analyze_run
    from ..store import RunFolder
    results = analyze_run(run_dir, out, **options)
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


def _calibrate(run_dir: Path, out: Path | None, options: dict[str, Any]) -> None:
    """Calibration under shift: ECE, reliability, temperature scaling, failure detection."""
    from rich.console import Console
    from rich.table import Table

    from ..analysis.calibration import calibrate_run, shift_table
    from ..store import RunFolder

    result = calibrate_run(run_dir, out, **options)
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


def _notes_and_json(name: str, doc: str):
    """The run function of a command that runs one analysis and prints its notes and what
    it wrote (cam, slices): the registered analysis, its result's notes, its JSON path."""
    def run(run_dir: Path, out: Path | None, options: dict[str, Any]) -> None:
        from ..store import RunFolder
        out = out or RunFolder(run_dir).analysis
        res = get_analysis(name).fn(run_dir, out, **options)
        for note in res.notes:
            typer.echo(note)
        typer.echo(f"wrote {out / (name + '.json')} and {len(res.figures)} figure(s)")
    run.__doc__ = doc
    return run


analyze = _command("analyze", analyze_analyses(),
                   "output folder [default: RUN_DIR/analysis, where the report reads it]",
                   _analyze)
calibrate = _command("calibrate", [get_analysis("calibration")],
                     "where JSON and figures go [default: RUN_DIR/analysis]", _calibrate)
cam = _command("cam", [get_analysis("cam")], "where cam.json and figures/ go "
               "(default: RUN_DIR/analysis, beside the other analyses)", _notes_and_json(
    "cam", "Grad-CAM failure explanations and attention drift under corruption."))
slices = _command("slices", [get_analysis("slices")], "where slices.json and figures/ go "
                  "(default: RUN_DIR/analysis, beside the other analyses)", _notes_and_json(
    "slices", "Failure slices (images that fail together, in words) and per-image breaking points."))
