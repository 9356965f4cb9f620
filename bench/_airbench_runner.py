"""Train airbench's own airbench94 (PyPI ``airbench``, ``lib_airbench94.py``) on a CPU, on the
data failmodes' fast recipe trains on; called by ``bench/fast_recipe.py --anchor airbench``.

    python bench/_airbench_runner.py --data SPEC --epochs E --seed S --threads T [--subset N]
        [--test-subset N] [--batch-size B]

Prints one JSON row: accuracy (plain, mirror TTA as failmodes' flip TTA, and airbench's own
TTA level 2), wall and CPU seconds of ``train94`` (whitening init + epochs, no per-epoch
evaluation: ``verbose=False``), airbench's version and the changes a CPU run needs.

airbench is written for one CUDA GPU in fp16. Changed here, and nothing else: ``.cuda()`` is
the identity, ``.half()`` is ``.float()`` (fp16 convolutions are emulated and slow on a CPU),
``torch.load`` maps to the CPU, and ``torch.cuda.Event``/``synchronize`` time with the CPU
clock. Its hyperparameters (width 64/256/256, batch 1024, lr, momentum, wd, label smoothing,
lookahead, translate 2 + alternating flip, whitening) are its own; the epochs are set by the
caller (the same as failmodes' recipe, so both see the same number of images). Its data
loader reads ``cifar10/{train,test}.pt`` from the working directory; this runner writes those
from the failmodes data spec (train: the train-train split failmodes trains on; test: the
test split), so both train and test on the same images.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHANGES = [".cuda() -> identity (CPU)", ".half() -> .float() (fp32 on the CPU)",
           "torch.load(map_location=cpu)", "torch.cuda.Event/synchronize -> CPU clock"]


class _CpuEvent:
    def __init__(self, enable_timing: bool = True):
        self.t = 0.0

    def record(self, *_a, **_k) -> None:
        self.t = time.perf_counter()

    def elapsed_time(self, end: _CpuEvent) -> float:
        return 1e3 * (end.t - self.t)  # milliseconds, as torch.cuda.Event


def _cpu_shims() -> None:
    load = torch.load
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.Tensor.half = lambda self, *a, **k: self.float()  # type: ignore[method-assign]
    nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    nn.Module.half = lambda self: self.float()  # type: ignore[method-assign]
    torch.load = lambda *a, **k: load(*a, **{**k, "map_location": "cpu"})  # type: ignore[assignment]
    torch.cuda.Event = _CpuEvent  # type: ignore[misc, assignment]
    torch.cuda.synchronize = lambda *a, **k: None  # type: ignore[assignment]


def _write_data(where: Path, spec: str, subset: int | None, test_subset: int | None) -> int:
    from failmodes.constants import SUBSET_SEED
    from failmodes.data import load_dataset
    train = load_dataset(spec, "train-train")
    if subset is not None:
        train = train.subset(subset, seed=SUBSET_SEED)
    test = load_dataset(spec, "test")
    if test_subset is not None:
        test = test.subset(test_subset, seed=SUBSET_SEED)
    (where / "cifar10").mkdir(parents=True)
    for name, ds in (("train", train), ("test", test)):
        torch.save({"images": torch.as_tensor(ds.images).contiguous(),
                    "labels": torch.as_tensor(ds.labels), "classes": list(ds.classes)},
                   where / "cifar10" / f"{name}.pt")
    return len(train.labels)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=float, required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--subset", type=int, default=None)
    ap.add_argument("--test-subset", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="only for a smoke run on a few images (default: airbench's 1024)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import airbench
    from airbench import lib_airbench94 as ab
    from airbench.utils import CifarLoader, evaluate
    _cpu_shims()
    with tempfile.TemporaryDirectory() as tmp:
        n_train = _write_data(Path(tmp), args.data, args.subset, args.test_subset)
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            torch.manual_seed(args.seed)
            batch = args.batch_size or ab.hyp["opt"]["batch_size"]
            loader = CifarLoader("cifar10", train=True, batch_size=batch, aug=ab.hyp["aug"],
                                 altflip=True, gpu="cpu")
            if len(loader) == 0:
                raise SystemExit(f"error: {n_train} training images make no airbench batch of "
                                 f"{batch} (it drops the last partial batch); pass --batch-size")
            test = CifarLoader("cifar10", train=False, batch_size=2000, gpu="cpu")
            wall0, cpu0 = time.perf_counter(), time.process_time()
            model = ab.train94(loader, epochs=args.epochs, verbose=False)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            acc = [evaluate(model, test, tta_level=k) for k in (0, 1, 2)]
        finally:
            os.chdir(cwd)
    from importlib.metadata import version
    print(json.dumps({"anchor": "airbench94", "airbench": version("airbench"),
                      "module": airbench.__file__, "seed": args.seed, "epochs": args.epochs,
                      "n_train": n_train, "batch_size": batch, "acc": round(acc[0], 5),
                      "tta_acc": round(acc[1], 5), "tta2_acc": round(acc[2], 5),
                      "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                      "threads": args.threads, "changes_for_cpu": CHANGES}))


if __name__ == "__main__":
    main()
