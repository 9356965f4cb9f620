"""The two commands that run networks over data: `train` a model, `evaluate` models over a
grid of stressor cells into the results store."""
from __future__ import annotations

from pathlib import Path

import typer

from ..errors import EXIT_FAILED
from ..models import model_help, spec_from_options
from ._app import DATA_HELP, DEVICE_HELP, OFFICIAL_HELP, THREADS_HELP, fail, parse_out_dir


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
    test_subset: int | None = typer.Option(None, help="per-epoch test on N images "
                                              "(the last epoch uses all)"),
    compile: bool | None = typer.Option(None, "--compile/--no-compile",
                                           help="torch.compile the network"),
    out: Path = typer.Option(..., "--out", parser=parse_out_dir, metavar="DIR",
                             help="run directory (checkpoints, history, curves)"),
    resume: bool = typer.Option(False, help="continue the run in --out from last.pt"),
    stop_after: int | None = typer.Option(None, help="stop after N epochs in total "
                                             "(resume later with --resume)"),
):
    """Train a registry model on a dataset with a named recipe (DDP under torchrun)."""
    from ..config import override
    from ..train import load_recipe, train_model
    cfg = override(load_recipe(config or recipe), model=model, width=width, data=data,
                   epochs=epochs, subset=subset, lr=lr, batch_size=batch_size, seed=seed,
                   device=device, threads=threads,
                   test_subset=test_subset, compile=compile)
    result = train_model(cfg, out, resume=resume, stop_after=stop_after)
    if result.main_process:
        typer.echo(f"{result.checkpoint}  test accuracy {result.test_acc:.4f} "
                   f"after {len(result.history)}/{cfg.epochs} epochs")


def evaluate(
    model: list[str] = typer.Option(..., "--model", help=model_help() + "; repeat for "
                                    "several models"),
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
                                           f"({OFFICIAL_HELP}): evaluate on it too and compare"),
    finish: str = typer.Option("none", "--finish", help="none | jpeg85: finish on-the-fly "
                               "corrupted images with the JPEG q85 save of ImageNet-C's files"),
    image_size: int | None = typer.Option(None, "--image-size", help="resize folder images"),
    channels_last: bool = typer.Option(False, "--channels-last", help="NHWC batches and "
                                       "weights (faster convolutions; same predictions)"),
    autocast: str | None = typer.Option(None, "--autocast", metavar="bf16",
                                           help="bf16: run the models under bfloat16 autocast "
                                           "(a store keeps one precision per model name)"),
    out: Path = typer.Option(..., "--out", parser=parse_out_dir, metavar="DIR",
                             help="run folder (results.sqlite; resumes)"),
):
    """Evaluate a model over a grid of stressor cells into the results store."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..evaluate import EvalConfig, run_evaluation

    if name and len(name) != len(model):
        fail(f"--name given {len(name)} times for {len(model)} --model; give one per model")
    if weights and len(weights) != len(model):
        fail(f"--weights given {len(weights)} times for {len(model)} --model; give one per "
             "--model ARCH (or evaluate model files in a separate call)")
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
                     finish=finish, image_size=image_size, channels_last=channels_last,
                     autocast=autocast, out=str(out))
    summary = run_evaluation(cfg)
    table = Table(title=f"accuracy per corruption (mean over severities) — {summary.store}")
    for col in ("model", "stressor", "family", "levels", "accuracy"):
        table.add_column(col, justify="right" if col in ("levels", "accuracy") else "left")
    for r in summary.table:
        table.add_row(r["model"], escape(r["stressor"]), r["family"], str(r["severities"]),
                      f"{r['accuracy'] * 100:.2f}%")
    console = Console()
    console.print(table)
    console.print(f"{summary.computed} cells computed, {summary.skipped} already stored, "
                  f"{len(summary.failed)} failed; {summary.images} images in "
                  f"{summary.wall_s:.1f} s")
    for f in summary.failed:
        c = f["cell"]
        typer.secho(f"failed: {c['model']} {c['stressor']} {c['severity']:g}: {f['error']}",
                    fg=typer.colors.RED, err=True)
    if summary.failed:
        raise typer.Exit(EXIT_FAILED)
