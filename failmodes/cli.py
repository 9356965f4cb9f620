"""The `failmodes` command line: thin typer commands that parse, build a config and call
the library. Every command takes ``--out DIR`` for what it writes."""
from __future__ import annotations

import errno
import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from .constants import (
    CALIBRATION_BINS,
    CONFIDENT_THRESHOLD,
    DEFAULT_THUMB_BUDGET,
    MAX_THUMB_BUDGET,
)
from .errors import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, FailmodesError

_UsageError: type[Exception]
try:  # typer >= 0.2x vendors click; its usage errors derive from TyperException
    from typer import TyperException as _UsageError
except ImportError:  # pragma: no cover  (older typer raises click's own)
    from click import ClickException as _UsageError

EPILOG = ("Exit codes: 0 done; 1 ran, but some cells, analyses or probes failed (listed); "
          "2 bad input (an option, file or value: fix it); 3 the machine refused (disk full, "
          "read-only, permission: free space or choose another --out); 130 interrupted "
          "(finished work is kept: re-run the same command to resume).")
DEVICE_HELP = "auto (cuda when available) | cpu | cuda | cuda:N"
THREADS_HELP = "torch CPU threads (1 is fastest on a machine shared with other jobs)"
INTERRUPTED = "interrupted: finished cells are kept; re-run the same command to resume"
THUMB_BUDGET_HELP = (f"MB of explorer thumbnails the report may embed (more than 0, at most "
                     f"{MAX_THUMB_BUDGET // 2 ** 20}; default {DEFAULT_THUMB_BUDGET // 2 ** 20}); "
                     "past it fewer images get thumbnails, every image's row stays")


def _error(msg: str, code: int) -> typer.Exit:
    # One line on stderr, whatever the message held (a YAML excerpt, a wrapped path).
    typer.secho("error: " + " ".join(str(msg).split()), fg=typer.colors.RED, err=True)
    return typer.Exit(code)


class _OneLineErrors(TyperGroup):
    """The one place where errors meet the user: ``FailmodesError`` (and a usage error) ->
    ``error: <one line>`` and its exit code; ``OSError`` -> exit 3 naming the file;
    Ctrl-C -> ``interrupted: ...``, exit 130. Anything else is a bug and keeps its traceback.

    Caught here, not around ``app()`` in ``main``: typer turns KeyboardInterrupt into a
    silent exit 130 before ``app()`` returns, and the test runner calls ``app`` directly.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _UsageError as e:  # usage: unknown option, bad value, missing --out
            where = getattr(getattr(e, "ctx", None), "command_path", None)
            hint = f" (see `{where} --help`)" if where else ""
            raise _error(getattr(e, "format_message", e.__str__)() + hint, EXIT_USAGE) from None
        except FailmodesError as e:
            raise _error(str(e), e.exit_code) from None
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
            raise _error(_os_message(e), EXIT_USAGE) from None
        except OSError as e:
            if e.errno == errno.EPIPE:  # `failmodes stressors | head`: typer quiets it
                raise
            raise _error(_os_message(e), EXIT_ENVIRONMENT) from None
        except KeyboardInterrupt:
            typer.secho(INTERRUPTED, err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None


def _os_message(e: OSError) -> str:
    if e.strerror and e.filename:
        return f"{e.strerror}: {e.filename}"
    return str(e.strerror or e)


def _out_dir(value) -> Path:
    # ``--out ""`` is refused rather than read as the current folder.
    if not str(value).strip():
        raise typer.BadParameter("is empty; name a folder (e.g. --out runs/x, or . for this one)")
    return Path(value)

app = typer.Typer(cls=_OneLineErrors, help="Stress-test image classifiers and explain how "
                  "they fail.", epilog=EPILOG, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)


def fail(msg: str) -> None:
    """Refuse a command line the options alone cannot check: ``error: <msg>``, exit 2."""
    raise FailmodesError(msg)


# ----------------------------------------------------------------------------- models
# The data specs of failmodes.data.specs (``failmodes.data.DATA_SPECS``).
DATA_HELP = ("synthetic | cifar10 | cifar100 | imagefolder:PATH | cifar10c:PATH | cifar100c:PATH"
             " | imagenet:PATH | imagenetc:PATH | tinyimagenet:PATH | tinyimagenetc:PATH | "
             "hf:NAME[:split] | hf:PATH | PATH")

@app.command()
def models(pattern: str = typer.Argument("*", help="shell-style filter, e.g. '*resnet*'")):
    """List the model registry with parameter counts and input sizes."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .models import describe_models

    table = Table(title="failmodes models")
    for col in ("name", "params", "input", "classes", "description"):
        table.add_column(col)
    for row in describe_models(pattern):
        table.add_row(row["name"], row["params"], row["input"], str(row["classes"]),
                      escape(row["description"]))  # "failmodes[onnx]" is not rich markup
    Console().print(table)


# ----------------------------------------------------------------------------- stressors
@app.command()
def stressors(pattern: str = typer.Argument("*", help="shell-style filter, e.g. '*blur*'"),
              as_json: bool = typer.Option(False, "--json", help="print the full descriptions "
                                           "(both parameter tables) as JSON")):
    """List every stressor with its family and parameters (CIFAR-10-C table for corruptions)."""
    import json

    from rich.console import Console
    from rich.table import Table

    from .stressors import describe_stressors

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


# ----------------------------------------------------------------------------- corrupt
@app.command()
def corrupt(
    path: Path = typer.Argument(..., help="an image file, or a folder searched recursively"),
    stressor: str | None = typer.Option(None, "--stressor", "-s",
                                           help="stressor to apply, e.g. fog (see `failmodes stressors`)"),
    severity: float = typer.Option(3.0, "--severity", help="0..5 for corruptions (fractions "
                                   "interpolate), natural units for sweeps"),
    out: Path = typer.Option(..., "--out", parser=_out_dir, metavar="DIR",
                             help="folder for the PNGs and the contact sheet"),
    seed: int = typer.Option(0, "--seed", help="noise seed; image i of the sorted file list is index i"),
    params: str = typer.Option("auto", "--params", help="severity table: auto (CIFAR below 64 px, "
                               "else ImageNet), cifar or imagenet"),
    sheet: bool = typer.Option(True, "--sheet/--no-sheet",
                               help="also write contact_sheet.png: first image, stressors x severities 0..5"),
    stressors_: str | None = typer.Option(None, "--stressors", help="contact-sheet rows, comma-"
                                             "separated (default: all 19 corruptions)"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
):
    """Write corrupted copies of an image or folder (and a contact sheet)."""
    from .stressors.io import corrupt_path

    rows = [s.strip() for s in stressors_.split(",") if s.strip()] if stressors_ else None
    res = corrupt_path(path, stressor, severity, out=out, seed=seed, params=params,
                       sheet=sheet, sheet_stressors=rows, device=device)
    for bad, why in res.skipped:
        typer.secho(f"skipped {bad}: {why}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"wrote {len(res.written)} image(s) to {out}"
               + (f" and the contact sheet {res.sheet}" if res.sheet else ""))


# ----------------------------------------------------------------------------- train
@app.command()
def train(
    model: str | None = typer.Option(None, help="registry model (`failmodes models`); "
                                        "default: the recipe's, else cifar_resnet18"),
    width: int | None = typer.Option(None, help="model width (default: the model's own)"),
    recipe: str = typer.Option("baseline-cosine", help="a recipe (`failmodes/recipes/*.yaml`: "
                               "baseline-cosine, cutout, augmix, fast, ...)"),
    config: Path | None = typer.Option(None, "--config",
                                          help="YAML recipe file (replaces --recipe)"),
    data: str | None = typer.Option(None, help=DATA_HELP + "; default: the recipe's, "
                                       "else cifar10"),
    epochs: int | None = typer.Option(None, help="override the recipe's epochs"),
    subset: int | None = typer.Option(None, help="train on a class-balanced subset of N"),
    lr: float | None = typer.Option(None, help="override the learning rate"),
    batch_size: int | None = typer.Option(None, help="global batch size"),
    seed: int | None = typer.Option(None, help="seed of init, data order, augmentation"),
    device: str | None = typer.Option(None, help=DEVICE_HELP + " [default: the recipe's]"),
    threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
    num_threads: int | None = typer.Option(None, "--num-threads", hidden=True,
                                              help="old name of --threads"),
    test_subset: int | None = typer.Option(None, help="per-epoch test on N images "
                                              "(the last epoch uses all)"),
    compile: bool | None = typer.Option(None, "--compile/--no-compile",
                                           help="torch.compile the network"),
    out: Path = typer.Option(..., "--out", parser=_out_dir, metavar="DIR",
                             help="run directory (checkpoints, history, curves)"),
    resume: bool = typer.Option(False, help="continue the run in --out from last.pt"),
    stop_after: int | None = typer.Option(None, help="stop after N epochs in total "
                                             "(resume later with --resume)"),
):
    """Train a registry model on a dataset with a named recipe (DDP under torchrun)."""
    from .config import override
    from .train import load_recipe, train_model
    cfg = override(load_recipe(config or recipe), model=model, width=width, data=data,
                   epochs=epochs, subset=subset, lr=lr, batch_size=batch_size, seed=seed,
                   device=device, threads=threads if threads is not None else num_threads,
                   test_subset=test_subset, compile=compile)
    result = train_model(cfg, out, resume=resume, stop_after=stop_after)
    if result.main_process:
        typer.echo(f"{result.checkpoint}  test accuracy {result.test_acc:.4f} "
                   f"after {len(result.history)}/{cfg.epochs} epochs")


# ----------------------------------------------------------------------------- evaluate
@app.command()
def evaluate(
    model: list[str] = typer.Option(..., "--model", help="ARCH (registry name, tv:NAME, "
                                    "timm:NAME, package.module:callable, file.py:callable) or a "
                                    "model file (checkpoint, .pt2, TorchScript, .onnx); repeat "
                                    "for several models"),
    weights: list[str] | None = typer.Option(None, "--weights", help="state dict of each "
                                                "--model ARCH, in order (.pt/.pth/.bin, "
                                                ".safetensors)"),
    arch_arg: list[str] | None = typer.Option(None, "--arch-arg", help="KEY=VALUE for the "
                                                 "architecture, e.g. depth=2; repeatable"),
    num_classes: int | None = typer.Option(None, "--num-classes",
                                              help="outputs of the head (default: from weights)"),
    classes: str | None = typer.Option(None, "--classes", help="class names in output "
                                          "order: FILE (one per line) or a,b,c"),
    mean: str | None = typer.Option(None, "--mean", help="R,G,B, imagenet or cifar10 "
                                       "(default: timm/torchvision meta, else by input size)"),
    std: str | None = typer.Option(None, "--std", help="R,G,B, imagenet or cifar10"),
    input_size: int | None = typer.Option(None, "--input-size", help="resize each batch "
                                             "to N×N before the network"),
    cam_layer: str | None = typer.Option(None, "--cam-layer", help="Grad-CAM module, e.g. "
                                            "layer4.1 (default: found automatically)"),
    name: list[str] | None = typer.Option(None, "--name", help="store name of each --model, "
                                             "in order (default: checkpoint stem)"),
    tta: str | None = typer.Option(None, "--tta", help="flip: evaluate the mean logits of "
                                      "each image and its mirror (default: the plain forward "
                                      "pass)"),
    data: str = typer.Option(..., "--data", help=DATA_HELP),
    split: str = typer.Option("test", help="data split to evaluate (a released -C set: "
                              "CORRUPTION-SEVERITY, e.g. fog-3)"),
    suite: str | None = typer.Option(None, help="cifar10-c | cifar10-c-extra | all | sweeps "
                                        "(default cifar10-c unless --stressors/--sweep)"),
    stressors: str | None = typer.Option(None, help="comma-separated stressor names"),
    severities: str = typer.Option("1,2,3,4,5", help="1,2,3 or START:STOP:STEP, e.g. 0:5:0.25"),
    sweep: list[str] | None = typer.Option(None, "--sweep", help="NAME=START:STOP:STEP, "
                                              "e.g. rotation=-90:90:15; repeatable"),
    subset: int | None = typer.Option(None, help="class-stratified subset of N images"),
    seed: int = typer.Option(0, help="stressor randomness seed"),
    batch_size: int = typer.Option(256, "--batch-size"),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    val: bool = typer.Option(False, "--val", help="also evaluate the clean train-val split "
                             "(for temperature scaling)"),
    cifar10c: Path | None = typer.Option(None, "--cifar10c", help="official CIFAR-10-C .npy "
                                            "folder: evaluate on it too and compare"),
    official: str | None = typer.Option(None, "--official", help="a released corrupted set "
                                           "(cifar10c:PATH | cifar100c:PATH | imagenetc:PATH | "
                                           "tinyimagenetc:PATH): evaluate on it too and compare"),
    finish: str = typer.Option("none", "--finish", help="none | jpeg85: finish on-the-fly "
                               "corrupted images with the JPEG q85 save of ImageNet-C's files"),
    image_size: int | None = typer.Option(None, "--image-size", help="resize folder images"),
    out: Path = typer.Option(..., "--out", parser=_out_dir, metavar="DIR",
                             help="run folder (results.sqlite; resumes)"),
):
    """Evaluate a model over a grid of stressor cells into the results store."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .evaluate import EvalConfig, run_evaluation

    if name and len(name) != len(model):
        fail(f"--name given {len(name)} times for {len(model)} --model; give one per model")
    if weights and len(weights) != len(model):
        fail(f"--weights given {len(weights)} times for {len(model)} --model; give one per "
             "--model ARCH (or evaluate model files in a separate call)")
    from .models import spec_from_options
    specs = [spec_from_options(m, weights[i] if weights else None, arch_args=arch_arg or (),
                               num_classes=num_classes, classes=classes, mean=mean, std=std,
                               input_size=input_size, cam_layer=cam_layer, tta=tta)
             for i, m in enumerate(model)]
    names = stressors.split(",") if stressors else None
    cfg = EvalConfig(models=dict(zip(name, specs)) if name else specs, data=data,
                     split=split, subset=subset,
                     suite=suite or (None if names or sweep else "cifar10-c"),
                     stressors=[n.strip() for n in names if n.strip()] if names else None,
                     severities=severities, sweeps=list(sweep or []), seed=seed,
                     batch_size=batch_size, device=device, include_val=val,
                     cifar10c=str(cifar10c) if cifar10c else None, official=official,
                     finish=finish, image_size=image_size, out=str(out))
    summary = run_evaluation(cfg)
    if summary is None:  # a non-zero torchrun rank
        return
    table = Table(title=f"accuracy per corruption (mean over severities) — {summary['store']}")
    for col in ("model", "stressor", "family", "levels", "accuracy"):
        table.add_column(col, justify="right" if col in ("levels", "accuracy") else "left")
    for r in summary["table"]:
        table.add_row(r["model"], escape(r["stressor"]), r["family"], str(r["severities"]),
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
        raise typer.Exit(EXIT_FAILED)


# ----------------------------------------------------------------------------- analyze
@app.command()
def analyze(
    run_dir: Path = typer.Argument(..., help="run folder holding results.sqlite"),
    out: Path | None = typer.Option(None, "--out", parser=_out_dir, metavar="DIR",
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

    from .analysis.analyze import analyze_run
    from .store import RunFolder
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


# ----------------------------------------------------------------------------- probe
@app.command()
def probe(
    image: str = typer.Argument(..., help="image file, or skimage:NAME (e.g. skimage:chelsea)"),
    model: str = typer.Option(..., help="registry name or checkpoint path"),
    stressor: str = typer.Option(..., help="stressor name, e.g. rotation or gaussian_noise_std"),
    values: str = typer.Option(..., help="START:STOP:STEP (stop included) or v1,v2,..."),
    label: str | None = typer.Option(None, help="target class (index or name) "
                                                   "[default: the clean top-1]"),
    space: str = typer.Option("auto", help="noise std space: auto, pixel or normalized"),
    seed: int = typer.Option(0, help="stressor seed"),
    repeats: int = typer.Option(1, help="average probabilities over this many stressor draws"),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    out: Path = typer.Option(Path("out/probe"), "--out", parser=_out_dir, metavar="DIR",
                             help="output folder"),
):
    """Sweep one image through a stressor and plot how the prediction changes."""
    from rich.console import Console
    from rich.table import Table

    from .analysis.probe import probe as run_probe
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


# ----------------------------------------------------------------------------- calibrate
@app.command()
def calibrate(
    run_dir: Path = typer.Argument(..., help="run folder holding results.sqlite"),
    out: Path | None = typer.Option(None, "--out", parser=_out_dir, metavar="DIR",
                                       help="where JSON and figures go "
                                       "[default: RUN_DIR/analysis]"),
    bins: int = typer.Option(CALIBRATION_BINS, "--bins",
                             help="equal-width (and equal-mass) ECE bins"),
):
    """Calibration under shift: ECE, reliability, temperature scaling, failure detection."""
    from rich.console import Console
    from rich.table import Table

    from .analysis.calibration import calibrate_run, shift_table
    from .store import RunFolder

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


# ----------------------------------------------------------------------------- cam
@app.command()
def cam(run_dir: Path = typer.Argument(..., help="run folder holding results.sqlite"),
        out: Path | None = typer.Option(None, "--out", parser=_out_dir, metavar="DIR",
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
    from .analysis.cam import run_cam
    from .store import RunFolder
    names = [s.strip() for s in stressors.split(",") if s.strip()] if stressors else None
    out = out or RunFolder(run_dir).analysis
    res = run_cam(run_dir, out, method=method, sample=sample, layer=layer, stressors=names,
                  target=target, failures_per_cell=failures_per_cell, device=device, seed=seed)
    for note in res.notes:
        typer.echo(note)
    typer.echo(f"wrote {out / 'cam.json'} and {len(res.figures)} figures")


# ----------------------------------------------------------------------------- run
@app.command()
def run(
    study: Path | None = typer.Argument(None, help="study YAML file (or use --preset)"),
    preset: str | None = typer.Option(None, "--preset", help="built-in study: demo (offline, "
                                         "~2 min on CPU) | quick (CIFAR-10, ~20 min on CPU) | "
                                         "paper (full protocol, GPU)"),
    out: Path | None = typer.Option(None, "--out", parser=_out_dir, metavar="DIR",
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
    from .study import prepare_and_run

    if (study is None) == (preset is None):
        fail("give exactly one of: a study file, --preset NAME (demo, quick, paper)")
    budget = _thumb_budget(thumb_budget)   # checked now, not after hours of training
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


def _thumb_budget(mb: float | None) -> int | None:
    """``--thumb-budget MB`` as bytes, or one ``error:`` line (exit 2) when out of range."""
    if mb is None:
        return None
    from .report.explorer import check_thumb_budget
    return check_thumb_budget(mb * 2 ** 20, "--thumb-budget")


# ----------------------------------------------------------------------------- report
@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="run folder holding results.sqlite"),
    out: Path | None = typer.Option(None, "--out", parser=_out_dir, metavar="DIR",
                                    help="folder for report.html and its figures/, tables/ "
                                         "and results.json (default: RUN_DIR); with --out "
                                         "nothing is written into RUN_DIR, which may be "
                                         "read-only"),
    thumb_budget: float | None = typer.Option(None, "--thumb-budget", metavar="MB",
                                              help=THUMB_BUDGET_HELP),
):
    """Write the HTML report of a run folder from what it holds (runs no model)."""
    from .report import render_report
    from .store import REPORT_NAME

    budget = _thumb_budget(thumb_budget)
    path = render_report(run_dir, out / REPORT_NAME if out is not None else None,
                         thumb_budget=budget)
    typer.echo(f"report: {path}")


# ----------------------------------------------------------------------------- compare
@app.command()
def compare(
    run_a: Path = typer.Argument(..., help="run folder A (its baseline model is the reference)"),
    run_b: Path = typer.Argument(..., help="run folder B"),
    out: Path | None = typer.Option(None, "--out", parser=_out_dir, metavar="DIR",
                                       help="folder for compare.html "
                                       "(default <parent of A>/<A>-vs-<B>)"),
):
    """Compare two runs in one report."""
    from .report import compare_runs

    path = compare_runs(run_a, run_b, out)
    typer.echo(f"comparison: {path}")


def main() -> None:
    """Console entry point (``failmodes``, ``python -m failmodes``); errors are turned into
    one line by ``_OneLineErrors`` above."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
