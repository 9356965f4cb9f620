"""`failmodes models` and `failmodes stressors`: list the two registries."""
from __future__ import annotations

import typer

from ._app import fail


def models(pattern: str = typer.Argument("*", help="shell-style filter, e.g. '*resnet*'")):
    """List the model registry (parameter counts, input sizes), then every model source
    that --model takes (tv:, timm:, hf:, model files, ...)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..models import describe_models

    table = Table(title="failmodes models")
    for col in ("name", "params", "input", "classes", "description"):
        table.add_column(col)
    for row in describe_models(pattern):
        table.add_row(row["name"], row["params"], row["input"], str(row["classes"]),
                      escape(row["description"]))  # "failmodes[onnx]" is not rich markup
    Console().print(table)


def stressors(pattern: str = typer.Argument("*", help="shell-style filter, e.g. '*blur*'"),
              as_json: bool = typer.Option(False, "--json", help="print the full descriptions "
                                           "(both parameter tables) as JSON")):
    """List every stressor with its family and parameters (CIFAR-10-C table for corruptions)."""
    import json

    from rich.console import Console
    from rich.table import Table

    from ..stressors import describe_stressors

    rows = describe_stressors(pattern)
    if not rows:
        fail(f"no stressor matches {pattern!r}; `failmodes stressors` lists them all")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="failmodes stressors")
    for col in ("name", "family", "benchmark"):
        table.add_column(col, no_wrap=True)
    table.add_column("unit")
    table.add_column("parameters (severity 1..5, 32 px)")
    for d in rows:
        if "tables" in d:
            names = ", ".join(d["param_names"])
            levels = "  ".join(str(r[0]) if len(r) == 1 else "(" + ", ".join(map(str, r)) + ")"
                               for r in d["tables"]["cifar"])
            params = f"{names}: {levels}"
        else:
            params = f"{d['range'][0]:g} .. {d['range'][1]:g}, identity {d['identity']:g}"
        table.add_row(d["name"], d["family"], "yes" if d["benchmark"] else "no", d["unit"], params)
    Console().print(table)
