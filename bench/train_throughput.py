"""Training throughput: failmodes' trainer vs a plain torchvision DataLoader pipeline.

Both train the same ``cifar_resnet18`` (each width given) with SGD at the same batch size,
in one process, on the same uint8 training images:

* ours: the whole uint8 set resident on the device, batched crop/flip on the device with
  an explicit generator, the trainer's own epoch loop (channels_last; bf16 autocast on CUDA).
* reference: the way the reference projects train — a ``Dataset`` that turns each row of
  the same uint8 array into a PIL image (as ``torchvision.datasets.CIFAR10`` does), then
  ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip()``, ``ToTensor()``,
  ``Normalize(mean, std)``, a ``DataLoader(shuffle=True, num_workers=W)``, fp32 NCHW.

After ``--warmup`` steps each, the two alternate in rounds (ours, reference, ours, ...)
so a change in machine load hits both alike. Also reported: the data side alone
(augmented batches per second, no model). Prints one JSON object.

    PYTHONPATH=. python bench/train_throughput.py --widths 64,16 --steps 20 --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

from failmodes._device import cpu_description
from failmodes.config import override
from failmodes.data import load_dataset
from failmodes.models import create_model
from failmodes.train import load_recipe
from failmodes.train.augment import BatchAugment

# The trainer's private epoch loop is what we measure, so the bench calls it directly.
from failmodes.train.optim import build_scheduler
from failmodes.train.progress import Reporter
from failmodes.train.trainer import _resident, _Runtime, _train_epoch


class _PILRows(torch.utils.data.Dataset):
    """Rows of a uint8 N×H×W×3 array as PIL images, like torchvision's CIFAR10."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images.numpy(), labels.tolist(), transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def _reference_loader(ds, batch_size, workers, mean, std, seed, cuda):
    import torchvision.transforms as T
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(mean, std)])
    return torch.utils.data.DataLoader(
        _PILRows(ds.images, ds.labels, tf), batch_size=batch_size, shuffle=True,
        num_workers=workers, drop_last=True, pin_memory=cuda, persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _bench_width(width, ds, args, device):
    cfg = override(load_recipe("baseline-cosine"), model="cifar_resnet18", width=width,
                   batch_size=args.batch_size, device=device.type)
    rt = _Runtime(device)
    cl = cfg.channels_last

    # ours: the trainer's epoch loop, a fixed number of steps per call
    torch.manual_seed(0)
    ours = create_model("cifar_resnet18", width=width, class_names=ds.classes,
                        mean=ds.mean, std=ds.std).to(device)
    if cl:
        ours = ours.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = build_scheduler(opt, cfg, 10 ** 6)
    aug = BatchAugment.from_config(cfg, 32)
    x, y = _resident(ds, device, cl)
    report = Reporter(1, 0, 1, False, False)
    net = torch.compile(ours) if args.compile else ours
    epoch = [0]

    def run_ours(steps):
        _train_epoch(cfg, net, opt, sched, aug, x, y, epoch[0], steps, args.batch_size, rt,
                     report)
        epoch[0] += 1

    # reference: plain network (Normalize in the transform), fp32 NCHW, DataLoader
    torch.manual_seed(0)
    ref = create_model("cifar_resnet18", width=width, class_names=ds.classes).net.to(device)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loader = _reference_loader(ds, args.batch_size, args.workers, ds.mean, ds.std, 0,
                               device.type == "cuda")
    it = [iter(loader)]

    def run_ref(steps):
        for _ in range(steps):
            try:
                xb, yb = next(it[0])
            except StopIteration:
                it[0] = iter(loader)
                xb, yb = next(it[0])
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            loss = torch.nn.functional.cross_entropy(ref(xb), yb)
            ref_opt.zero_grad(set_to_none=True)
            loss.backward()
            ref_opt.step()
        float(loss.detach())  # the reference loops read the loss every step or so: one sync

    timings = {"ours": 0.0, "reference": 0.0}
    for _name, fn in (("ours", run_ours), ("reference", run_ref)):
        fn(args.warmup)
    steps = args.steps if width <= 32 else max(2, args.steps // args.wide_divisor)
    per_round = max(1, steps // args.rounds)
    done = 0
    while done < steps:
        n = min(per_round, steps - done)
        for name, fn in (("ours", run_ours), ("reference", run_ref)):
            _sync(device)
            t = time.perf_counter()
            fn(n)
            _sync(device)
            timings[name] += time.perf_counter() - t
        done += n
    images = steps * args.batch_size
    row = {"width": width, "steps": steps, "images": images,
           "ours_img_s": round(images / timings["ours"], 1),
           "reference_img_s": round(images / timings["reference"], 1)}
    row["ratio"] = round(row["ours_img_s"] / row["reference_img_s"], 3)
    return row


def _bench_data_only(ds, args, device):
    """Augmented batches alone: our on-device ops vs the DataLoader + PIL transforms."""
    cfg = override(load_recipe("baseline-cosine"), batch_size=args.batch_size)
    x, _ = _resident(ds, device, False)
    aug = BatchAugment.from_config(cfg, 32)
    g = torch.Generator(device=device).manual_seed(0)
    n = min(len(ds), args.data_batches * args.batch_size)
    mean = torch.tensor(ds.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(ds.std, device=device).view(1, 3, 1, 1)
    _sync(device)
    t = time.perf_counter()
    order = torch.randperm(len(ds), device=device)
    for i in range(0, n - args.batch_size + 1, args.batch_size):
        xb = aug(x[order[i:i + args.batch_size]], g)[0]
        (xb - mean) / std
    _sync(device)
    ours = n / (time.perf_counter() - t)
    loader = _reference_loader(ds, args.batch_size, args.workers, ds.mean, ds.std, 0,
                               device.type == "cuda")
    it = iter(loader)
    next(it)  # workers started
    t = time.perf_counter()
    for _ in range(n // args.batch_size):
        xb, _ = next(it)
        xb.to(device, non_blocking=True)
    _sync(device)
    ref = n / (time.perf_counter() - t)
    return {"images": n, "ours_img_s": round(ours, 1), "reference_img_s": round(ref, 1),
            "ratio": round(ours / ref, 2)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="/work/data" if os.path.isdir("/work/data") else "synthetic",
                   help="load_dataset spec of the training images (default: the CIFAR-10 "
                        "JPEG tree at /work/data, decoded once into the uint8 cache)")
    p.add_argument("--widths", default="64,16")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed steps per pipeline")
    p.add_argument("--wide-divisor", type=int, default=1,
                   help="time steps/D steps for widths > 32 (slow on a CPU)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=4, help="alternations of the two pipelines")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers (reference)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    p.add_argument("--data-batches", type=int, default=40)
    p.add_argument("--subset", type=int, default=10000, help="training images held")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    ds = load_dataset(args.data, "train").subset(args.subset)
    result = {
        "bench": "train_throughput",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_description(),
        "device_type": device.type, "cpu_count": os.cpu_count(), "torch_threads": args.threads,
        "torch": torch.__version__, "data": args.data, "n_images": len(ds),
        "source": "the same uint8 array: resident tensor (ours) vs PIL images per row (reference)",
        "batch_size": args.batch_size, "reference_workers": args.workers,
        "ours_extras": "channels_last" + (" + bf16 autocast" if device.type == "cuda" else ", fp32"),
        "data_only": _bench_data_only(ds, args, device),
        "results": [_bench_width(int(w), ds, args, device) for w in args.widths.split(",")],
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
