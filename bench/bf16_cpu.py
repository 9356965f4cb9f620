"""bf16 autocast on the CPU: training and evaluation images/s with and without, and what it
does to a trained model's predictions.

    PYTHONPATH=. python bench/bf16_cpu.py --threads 2 \\
        --checkpoint RUN/models/NAME/model.pt --data /path/to/cifar10-tree

For each network (``--archs``, default the fast recipe's ``cifar_fastnet`` and the seed
study's ``cifar_resnet18`` width 16; random weights, channels_last as the trainer uses):
SGD training steps (forward, cross-entropy, backward, step) and no-grad forward passes on
random 32-px batches, fp32 and ``torch.autocast("cpu", dtype=torch.bfloat16)`` alternating
in rounds so a change in machine load hits both alike. With ``--checkpoint`` and ``--data``:
that trained model on the test images in fp32 and under bf16 autocast: accuracy of each,
the share of predictions that agree, and the largest change of a softmax probability.
Prints one JSON object, with the CPU's bf16 instruction sets (AVX512_BF16, AMX) as the
kernel reports them.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from failmodes._device import cpu_description  # noqa: E402
from failmodes.models import create_model  # noqa: E402


def cpu_bf16_flags() -> list[str]:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if "bf16" in f or f.startswith("amx"))


def _amp(on: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if on else contextlib.nullcontext()


def bench_arch(arch: str, width: int | None, args) -> dict:
    torch.manual_seed(0)
    kw = {"width": width} if width else {}
    model = create_model(arch, num_classes=10, **kw).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, 32, 32, generator=g).contiguous(
        memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,), generator=g)

    def train(steps: int, bf16: bool) -> None:
        model.train()
        for _ in range(steps):
            with _amp(bf16):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def evaluate(steps: int, bf16: bool) -> None:
        model.eval()
        with torch.no_grad(), _amp(bf16):
            for _ in range(steps):
                model(x)

    out: dict = {"arch": arch, "width": width, "batch": args.batch}
    for part, fn, steps in (("train", train, args.train_steps), ("eval", evaluate, args.eval_steps)):
        secs = {False: 0.0, True: 0.0}
        for bf16 in (False, True):
            fn(args.warmup, bf16)
        for _ in range(args.rounds):
            for bf16 in (False, True):
                t = time.perf_counter()
                fn(steps, bf16)
                secs[bf16] += time.perf_counter() - t
        n = args.rounds * steps * args.batch
        fp32, bf = n / secs[False], n / secs[True]
        out[part] = {"fp32_img_s": round(fp32, 1), "bf16_img_s": round(bf, 1),
                     "bf16_speedup": round(bf / fp32, 3), "images_each": n}
    return out


def accuracy_check(checkpoint: str, data: str, n: int | None, batch: int) -> dict:
    from failmodes.data import load_dataset
    from failmodes.models import load_model
    model = load_model(checkpoint).eval()
    ds = load_dataset(data, "test", subset=n)
    logits = {}
    for bf16 in (False, True):
        parts = []
        with torch.no_grad(), _amp(bf16):
            for s in range(0, len(ds), batch):
                parts.append(model(ds.float_batch(s, min(len(ds), s + batch))).float())
        logits[bf16] = torch.cat(parts)
    labels = torch.as_tensor(ds.labels)
    pred = {k: v.argmax(1) for k, v in logits.items()}
    prob = {k: v.softmax(1) for k, v in logits.items()}
    return {"checkpoint": checkpoint, "images": len(ds),
            "fp32_accuracy": round((pred[False] == labels).float().mean().item() * 100, 2),
            "bf16_accuracy": round((pred[True] == labels).float().mean().item() * 100, 2),
            "predictions_agree": round((pred[False] == pred[True]).float().mean().item() * 100, 2),
            "max_softmax_change": round((prob[False] - prob[True]).abs().max().item(), 4)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--archs", default="cifar_fastnet,cifar_resnet18:16",
                    help="comma-separated ARCH[:WIDTH]")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--train-steps", type=int, default=4, help="steps per round and mode")
    ap.add_argument("--eval-steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--checkpoint", action="append", default=[],
                    help="a trained failmodes model file (repeatable)")
    ap.add_argument("--data", default=None, help="test images for --checkpoint")
    ap.add_argument("--test-subset", type=int, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"what": "bf16 autocast on the CPU vs fp32: images/s and a trained model's "
                      "predictions",
              "command": " ".join([Path(sys.executable).name] + sys.argv),
              "machine": {"cpu": cpu_description(), "bf16_flags": cpu_bf16_flags(),
                          "torch": torch.__version__, "threads": args.threads,
                          "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
              "speed": [], "accuracy": []}
    for spec in args.archs.split(","):
        arch, _, width = spec.partition(":")
        result["speed"].append(bench_arch(arch, int(width) if width else None, args))
    if args.checkpoint and args.data:
        result["accuracy"] = [accuracy_check(c, args.data, args.test_subset, 500)
                              for c in args.checkpoint]
    result["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
