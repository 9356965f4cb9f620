"""CIFAR DenseNet-121 speed on a CPU: failmodes' implementation vs the plain one.

The plain reference is the implementation it replaced (one ``torch.cat`` per dense layer,
kept in ``tests/test_densenet.py`` where it also checks that the two agree). For each
growth rate given, in one process, this times

* a training step (forward, backward, SGD step) at ``--batch`` images;
* an evaluation forward (``torch.no_grad``) at ``--eval-batch`` images;

for ours and the reference in alternating rounds (ours, reference, ours, ...), so a change
in machine load hits both alike, and a CIFAR ResNet-18 at ``--resnet-width`` as the
yardstick. CPU time (``time.process_time``), channels_last, ``--threads`` torch threads.
Prints one JSON object: images per CPU-second, median over rounds.

    PYTHONPATH=. python bench/densenet.py --growths 8,12 --rounds 3
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from failmodes._device import cpu_description
from failmodes.models.cifar import CifarDenseNet121, CifarResNet18


def _reference_class():
    path = Path(__file__).resolve().parents[1] / "tests" / "test_densenet.py"
    spec = importlib.util.spec_from_file_location("_densenet_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.RefDenseNet


def _train_step(net, opt, x, y):
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()
    opt.step()


def _eval(net, x):
    with torch.no_grad():
        net(x)


def _cpu_seconds(fn):
    t = time.process_time()
    fn()
    return time.process_time() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--growths", default="8,12")
    ap.add_argument("--resnet-width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--eval-batch", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cl = torch.channels_last
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32, generator=g).contiguous(memory_format=cl)
    y = torch.randint(0, 10, (args.batch,), generator=g)
    xe = torch.randn(args.eval_batch, 3, 32, 32, generator=g).contiguous(memory_format=cl)
    Ref = _reference_class()

    nets = {}
    for growth in (int(s) for s in args.growths.split(",")):
        torch.manual_seed(0)
        ours = CifarDenseNet121(growth=growth)
        ref = Ref(growth=growth)
        ref.load_state_dict(ours.state_dict())
        nets[f"densenet121_g{growth}/ours"] = ours
        nets[f"densenet121_g{growth}/reference"] = ref
    nets[f"resnet18_w{args.resnet_width}"] = CifarResNet18(width=args.resnet_width)

    runs = {}
    for name, net in nets.items():
        net = net.to(memory_format=cl)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        net.train()
        _train_step(net, opt, x, y)        # warm-up: allocator, oneDNN primitives
        net.eval()
        _eval(net, xe)
        runs[name] = (net, opt, {"train": [], "eval": []})
    for _ in range(args.rounds):
        for net, opt, times in runs.values():
            net.train()
            times["train"].append(_cpu_seconds(lambda net=net, opt=opt: _train_step(net, opt, x, y)))
            net.eval()
            times["eval"].append(_cpu_seconds(lambda net=net: _eval(net, xe)))

    result = {"threads": args.threads, "batch": args.batch, "eval_batch": args.eval_batch,
              "rounds": args.rounds, "memory_format": "channels_last",
              "torch": torch.__version__, "cpu": cpu_description(),
              "load_average": os.getloadavg(), "models": {}}
    for name, (net, _, times) in runs.items():
        result["models"][name] = {
            "params": sum(p.numel() for p in net.parameters()),
            "train_img_per_cpu_s": round(args.batch / statistics.median(times["train"]), 1),
            "eval_img_per_cpu_s": round(args.eval_batch / statistics.median(times["eval"]), 1),
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
