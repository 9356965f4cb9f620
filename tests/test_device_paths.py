"""Device handling that a CPU can show (the CUDA runs themselves: tests/test_cuda.py)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import failmodes as fm


def test_in_memory_model_runs_on_the_evaluation_device_and_goes_home(tmp_path, monkeypatch):
    """run_evaluation moves an in-memory model to the evaluation's device before anything
    runs it (check_attackable included) and back to its own device at the end, also when
    the evaluation fails."""
    torch.manual_seed(0)
    model = fm.models.create_model("small_cnn").eval()
    moves: list[torch.device] = []
    forwards: list[int] = []
    to = type(model).to

    def spy(self, *args, **kwargs):
        if self in (model, wrong):
            moves.append(torch.device(args[0] if args else kwargs["device"]))
        return to(self, *args, **kwargs)

    wrong = fm.models.create_model("small_cnn", num_classes=7).eval()
    monkeypatch.setattr(type(model), "to", spy)
    model.register_forward_pre_hook(lambda m, inp: forwards.append(len(moves)))
    cfg = fm.evaluate.EvalConfig(data="synthetic", subset=24, stressors=["fog"],
                                 severities=[1.0], sweeps=["pgd_linf=2"], device="cpu",
                                 out=str(tmp_path / "run"))
    fm.evaluate.run_evaluation(cfg, models={"m": model}, progress=False)
    assert moves == [torch.device("cpu"), torch.device("cpu")]  # the eval device, then home
    assert forwards and min(forwards) == 1 and max(forwards) == 1  # every forward in between

    # A model the evaluation refuses (7 classes for a 10-class data set) after the move
    # still goes home.
    moves.clear()
    with pytest.raises(fm.evaluate.EvalError, match="7 classes"):
        fm.evaluate.run_evaluation(dataclasses.replace(cfg, out=str(tmp_path / "wrong")),
                                   models={"wrong": wrong}, progress=False)
    assert moves == [torch.device("cpu"), torch.device("cpu")]


# ----------------------------------------------------------------------------- issue 32
# What a first GPU run usually breaks, shown on the CPU: the device a buffer is built on,
# which GPU a rank binds, host syncs per batch, pinned copies, cuDNN and TF32 settings.
import contextlib  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from torch import nn  # noqa: E402

from failmodes import _device  # noqa: E402
from failmodes.store import ResultsStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_wrap_builds_mean_and_std_on_the_networks_device():
    """A network already on the GPU gets its normalisation there too (meta stands in for
    cuda: a buffer built on the CPU would stay 'cpu'), and the buffers move with .to()."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).to("meta")
    model = fm.models.wrap(net, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert model.mean.device.type == model.std.device.type == "meta"
    cpu = fm.models.wrap(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)),
                         mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert cpu.mean.device.type == "cpu"
    moved = cpu.to("meta")
    assert moved.mean.device.type == moved.std.device.type == "meta"
    # A network with neither parameters nor buffers: the CPU, as before.
    bare = fm.models.wrap(nn.Flatten(), mean=(0, 0, 0), std=(1, 1, 1), classes=["a", "b"])
    assert bare.mean.device.type == "cpu"


class _FakeCuda:
    """torch.cuda as a machine with ``n`` GPUs would answer, recording set_device."""

    def __init__(self, monkeypatch, n=4):
        self.bound: list[torch.device] = []
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "set_device",
                            lambda d: self.bound.append(torch.device(d)))


def test_each_rank_binds_its_local_gpu(monkeypatch):
    cuda = _FakeCuda(monkeypatch)
    assert _device.rank_device(torch.device("cuda"), local_rank=3, world=4) == torch.device("cuda", 3)
    assert _device.rank_device(torch.device("cuda"), local_rank=0, world=1) == torch.device("cuda", 0)
    assert _device.rank_device(torch.device("cuda", 2)) == torch.device("cuda", 2)
    # cuda:N under torchrun: still one GPU per rank (evaluation always did this)
    assert _device.rank_device(torch.device("cuda", 0), local_rank=1, world=2) == torch.device("cuda", 1)
    assert cuda.bound == [torch.device("cuda", i) for i in (3, 0, 2, 1)]
    assert _device.rank_device(torch.device("cpu"), local_rank=3, world=4) == torch.device("cpu")
    assert len(cuda.bound) == 4  # the CPU binds nothing


def test_training_under_torchrun_binds_the_local_rank(monkeypatch):
    """Rank 1 of 2 under torchrun with device=cuda trains on cuda:1 and makes it CUDA's
    current device (NCCL, torch.cuda.* calls and new tensors all follow it)."""
    from failmodes.train import _dist
    from failmodes.train.recipes import TrainConfig
    cuda = _FakeCuda(monkeypatch)
    for k, v in (("WORLD_SIZE", "2"), ("RANK", "1"), ("LOCAL_RANK", "1")):
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    rt = _dist._runtime(TrainConfig(device="cuda"))
    assert rt.device == torch.device("cuda", 1) and (rt.rank, rt.world) == (1, 2)
    assert cuda.bound == [torch.device("cuda", 1)]


def test_evaluation_binds_its_rank_device(tmp_path, monkeypatch):
    """run_evaluation takes its device from rank_device with torchrun's LOCAL_RANK."""
    from failmodes.evaluate import runner
    calls = []

    def spy(device, local_rank=0, world=1):
        calls.append((torch.device(device), local_rank, world))
        return torch.device("cpu")

    monkeypatch.setattr(runner, "rank_device", spy)
    monkeypatch.setenv("LOCAL_RANK", "0")
    cfg = fm.evaluate.EvalConfig(models=["small_cnn"], data="synthetic", subset=8,
                                 stressors=[], device="cpu", out=str(tmp_path / "run"))
    fm.evaluate.run_evaluation(cfg, progress=False)
    assert calls == [(torch.device("cpu"), 0, 1)]


class _Syncs:
    """Counts the host syncs (Tensor.cpu / .item / .tolist / .numpy) made by failmodes code
    outside the stressors (theirs belong to the stressor contract's input checks)."""

    def __init__(self, monkeypatch):
        self.n = 0
        pkg = str(ROOT / "failmodes")
        for name in ("cpu", "item", "tolist", "numpy"):
            real = getattr(torch.Tensor, name)

            def spy(t, *a, _real=real, **k):
                caller = sys._getframe(1).f_code.co_filename
                if caller.startswith(pkg) and "/stressors/" not in caller:
                    self.n += 1
                return _real(t, *a, **k)
            monkeypatch.setattr(torch.Tensor, name, spy)


def _eval(tmp_path, name, model, batch, **kw):
    cfg = fm.evaluate.EvalConfig(data="synthetic", subset=32, stressors=["fog"], severities=[2],
                                 sweeps=["fgsm_linf=8"], batch_size=batch, device="cpu",
                                 out=str(tmp_path / name), **kw)
    fm.evaluate.run_evaluation(cfg, models={"m": model}, progress=False)
    return ResultsStore(tmp_path / name / "results.sqlite", readonly=True)


def test_host_syncs_per_cell_do_not_grow_with_the_batches(tmp_path, monkeypatch):
    """The evaluation keeps logits, the attack's clean-correct flags and the labels on the
    device and moves each cell's results once: the same host syncs for 1 batch of 32 as for
    8 batches of 4 (a per-batch .cpu() would add 7 per cell)."""
    torch.manual_seed(0)
    model = fm.models.create_model("small_cnn", width=8).eval()
    counts = {}
    for batch in (32, 4):
        syncs = _Syncs(monkeypatch)
        _eval(tmp_path, f"b{batch}", model, batch).close()
        counts[batch] = syncs.n
        monkeypatch.undo()
    assert counts[32] == counts[4], counts


def test_attack_cells_equal_a_direct_computation(tmp_path):
    """FGSM cell rows and attack stats equal the attack run by hand on the whole set, for
    any batch size (the numbers the per-batch code gave)."""
    torch.manual_seed(0)
    model = fm.models.create_model("small_cnn", width=8).eval()
    ds = fm.data.load_dataset("synthetic", "test").subset(32)
    x = ds.float_batch(0, len(ds))
    with torch.no_grad():
        clean = model(x).argmax(1)
    adv = fm.stressors.get_stressor("fgsm_linf")(x, 8.0, seed=0, indices=ds.indices,
                                                 model=model, labels=ds.labels)
    with torch.no_grad():
        z = model(adv)
    right = clean == ds.labels
    want_success = float((right & (z.argmax(1) != ds.labels)).sum()) / float(right.sum())
    want_loss = torch.nn.functional.cross_entropy(z.double(), ds.labels).item()
    for batch in (32, 5):
        with _eval(tmp_path, f"b{batch}", model, batch) as store:
            (cell,) = store.cells(stressor="fgsm_linf")
            r = store.predictions(cell, logits=True)
            np.testing.assert_array_equal(r["pred"], z.argmax(1).numpy())
            np.testing.assert_allclose(r["logits"], z.numpy(), atol=1e-4)
            (st,) = store.attack_stats()
            assert st["n_clean_correct"] == int(right.sum())
            assert st["success_rate"] == pytest.approx(want_success)
            assert st["loss"] == pytest.approx(want_loss, rel=1e-5)


def _fake_cuda_copies(monkeypatch):
    """Tensor.pin_memory and a copy to 'cuda' as a CPU can stand in for them; returns
    the pinned shapes and (non_blocking) of every copy to cuda."""
    pinned, copies = [], []
    monkeypatch.setattr(torch.Tensor, "pin_memory",
                        lambda t, *a: pinned.append(tuple(t.shape)) or t.clone())
    real_to = torch.Tensor.to

    def to(t, *args, **kw):
        dev = args[0] if args else kw.get("device")
        if isinstance(dev, (str, torch.device)) and torch.device(dev).type == "cuda":
            copies.append(bool(kw.get("non_blocking", False)))
            return real_to(t, "cpu")
        return real_to(t, *args, **kw)
    monkeypatch.setattr(torch.Tensor, "to", to)
    return pinned, copies


def test_batches_go_to_cuda_pinned_and_non_blocking_and_stay_plain_on_cpu(monkeypatch):
    ds = fm.data.load_dataset("synthetic", "test").subset(8)
    pinned, copies = _fake_cuda_copies(monkeypatch)
    x = ds.float_batch(0, 4, torch.device("cuda"))
    assert pinned == [(4, 32, 32, 3)] and copies == [True]
    assert torch.equal(x, ds.float_batch(0, 4, "cpu"))  # the same values either way
    ds.float_batch(0, 4, "cpu")
    assert len(pinned) == 1 and len(copies) == 1  # the CPU path pins nothing
    assert _device.to_device(torch.zeros(3), "cpu").device.type == "cpu"


@contextlib.contextmanager
def _restored_backend_flags():
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[:2]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def test_cudnn_settings_per_recipe_and_restored():
    from failmodes.train.trainer import backend_settings
    with _restored_backend_flags():
        torch.backends.cudnn.benchmark = torch.backends.cudnn.deterministic = False
        torch.use_deterministic_algorithms(False)
        with backend_settings(deterministic=False, cuda=True):
            assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
            assert not torch.are_deterministic_algorithms_enabled()
        with backend_settings(deterministic=True, cuda=True):
            assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
            assert torch.are_deterministic_algorithms_enabled()
        with backend_settings(deterministic=False, cuda=False):  # the CPU: as it was
            assert not torch.backends.cudnn.benchmark
            assert not torch.are_deterministic_algorithms_enabled()
        # Everything back as found after each.
        assert not torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
        assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.usefixtures("memo_synthetic")
def test_deterministic_recipe_field_trains_the_same_numbers_on_cpu(tmp_path, monkeypatch):
    """``deterministic: true`` is applied while the epochs run (and undone after); on the
    CPU it computes exactly what the default recipe computes."""
    from failmodes.config import override
    from failmodes.train import load_recipe, train_model, trainer
    seen = []
    epoch = trainer._train_epoch

    def spy(*a, **k):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return epoch(*a, **k)

    monkeypatch.setattr(trainer, "_train_epoch", spy)
    base = dict(model="small_cnn", width=8, data="synthetic", epochs=1, subset=128,
                batch_size=64, lr=0.05, test_subset=100, threads=1)
    assert load_recipe("fast").deterministic is False  # no recipe asks for it
    with _restored_backend_flags():
        torch.use_deterministic_algorithms(False)
        a = train_model(override(load_recipe("baseline-cosine"), **base), tmp_path / "a",
                        progress=False)
        b = train_model(override(load_recipe("baseline-cosine"), deterministic=True, **base),
                        tmp_path / "b", progress=False)
        assert seen == [False, True]
        assert not torch.are_deterministic_algorithms_enabled()
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_autocast_bf16_is_close_to_fp32_and_stored_as_another_configuration(tmp_path):
    torch.manual_seed(0)
    model = fm.models.create_model("small_cnn", width=8).eval()

    def run(name, store_name="m", **kw):
        cfg = fm.evaluate.EvalConfig(data="synthetic", subset=200, stressors=["fog"],
                                     severities=[2], device="cpu", batch_size=64,
                                     out=str(tmp_path / name), **kw)
        return fm.evaluate.run_evaluation(cfg, models={store_name: model}, progress=False)

    def rows(name, model_name="m"):
        with ResultsStore(tmp_path / name / "results.sqlite", readonly=True) as s:
            return {c.stressor: s.predictions(c, logits=True) for c in s.cells(model=model_name)}

    run("fp32")
    run("bf16", autocast="bf16")
    a, b = rows("fp32"), rows("bf16")
    for stressor in ("clean", "fog"):
        za, zb = a[stressor]["logits"], b[stressor]["logits"]
        assert not np.array_equal(za, zb)  # bf16 really ran
        # bf16 keeps 8 mantissa bits: logits within a few percent of their scale
        assert np.abs(za - zb).max() <= 0.05 * np.abs(za).max()
        acc = [float((r[stressor]["pred"] == r[stressor]["label"]).mean()) for r in (a, b)]
        assert abs(acc[0] - acc[1]) <= 0.03, acc
    with ResultsStore(tmp_path / "bf16" / "results.sqlite", readonly=True) as s:
        (rec,) = s.models()
        assert rec["meta"]["autocast"] == "bf16"
    # The fp32 store never hands its cells to a bf16 run (nor the reverse) under one name.
    with pytest.raises(fm.evaluate.EvalError, match="autocast"):
        run("fp32", autocast="bf16")
    with pytest.raises(fm.evaluate.EvalError, match="autocast"):
        run("bf16")
    s = run("fp32", store_name="m-bf16", autocast="bf16")  # another name: computed afresh
    assert s.computed == 2 and s.skipped == 0
    assert np.array_equal(rows("fp32", "m-bf16")["fog"]["logits"], b["fog"]["logits"])


def test_channels_last_gives_identical_predictions_and_hands_the_model_back(tmp_path):
    torch.manual_seed(0)
    model = fm.models.create_model("small_cnn", width=8).eval()

    def run(name, **kw):
        cfg = fm.evaluate.EvalConfig(data="synthetic", subset=64, stressors=["fog"],
                                     severities=[2], device="cpu", out=str(tmp_path / name), **kw)
        fm.evaluate.run_evaluation(cfg, models={"m": model}, progress=False)
        with ResultsStore(tmp_path / name / "results.sqlite", readonly=True) as s:
            return {c.stressor: s.predictions(c, logits=True) for c in s.cells()}

    a, b = run("nchw"), run("nhwc", channels_last=True)
    for k in a:
        np.testing.assert_array_equal(a[k]["pred"], b[k]["pred"])
        np.testing.assert_allclose(a[k]["logits"], b[k]["logits"], atol=1e-4)
    conv = next(p for p in model.parameters() if p.ndim == 4)
    assert conv.is_contiguous()  # the caller's model keeps its own memory format


@pytest.mark.parametrize("value", ["fp16", "BF16x", "float32"])
def test_autocast_other_than_bf16_is_one_clear_error(value, tmp_path):
    with pytest.raises(fm.evaluate.EvalError, match=r"--autocast .*bf16"):
        fm.evaluate.resolve_config(fm.evaluate.EvalConfig(models=["small_cnn"], autocast=value,
                                                          out=str(tmp_path / "r")))


def test_cli_evaluate_takes_channels_last_and_autocast(tmp_path):
    from typer.testing import CliRunner

    from failmodes.cli import app
    base = ["evaluate", "--model", "small_cnn", "--data", "synthetic", "--subset", "20",
            "--stressors", "fog", "--severities", "1", "--device", "cpu"]
    r = CliRunner().invoke(app, base + ["--channels-last", "--autocast", "bf16",
                                        "--out", str(tmp_path / "ok")])
    assert r.exit_code == 0, r.output
    cfg = fm.store.read_run_config(tmp_path / "ok" / "eval_config.json")
    assert cfg.channels_last is True and cfg.autocast == "bf16"
    r = CliRunner().invoke(app, base + ["--autocast", "fp16", "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2
    assert r.output.count("error:") == 1 and "--autocast" in r.output


def test_tf32_is_never_enabled_by_failmodes_code():
    """TF32 rounds fp32 convolutions and matmuls to 10 mantissa bits: a blur through it can
    land a pixel one grey level off the CPU's. No failmodes module may switch it on."""
    enable = re.compile(
        r"allow_tf32\s*=\s*True|fp32_precision\s*=\s*['\"]tf32['\"]"
        r"|set_float32_matmul_precision\(\s*['\"](high|medium)['\"]")
    bad = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "failmodes").rglob("*.py"))
           for i, line in enumerate(p.read_text().splitlines(), 1) if enable.search(line)]
    assert not bad, bad


def test_stressors_in_the_evaluation_run_without_tf32(tmp_path, monkeypatch):
    """exact_fp32 turns TF32 off for CUDA convolutions and matmuls and restores the flags;
    on the CPU it changes nothing. The evaluation runs every stressor batch inside it."""
    conv = torch.backends.cudnn.conv
    before = (conv.fp32_precision, torch.get_float32_matmul_precision())
    with _device.exact_fp32(torch.device("cuda")):
        assert conv.fp32_precision == "ieee"
        assert torch.get_float32_matmul_precision() == "highest"
    assert (conv.fp32_precision, torch.get_float32_matmul_precision()) == before
    with _device.exact_fp32(torch.device("cpu")):
        assert (conv.fp32_precision, torch.get_float32_matmul_precision()) == before

    from failmodes.evaluate import _compute
    entered = []

    @contextlib.contextmanager
    def spy(device):
        entered.append(torch.device(device))
        yield

    monkeypatch.setattr(_compute, "exact_fp32", spy)
    cfg = fm.evaluate.EvalConfig(models=["small_cnn"], data="synthetic", subset=12,
                                 stressors=["fog"], severities=[1, 2], batch_size=5,
                                 device="cpu", out=str(tmp_path / "run"))
    fm.evaluate.run_evaluation(cfg, progress=False)
    assert entered == [torch.device("cpu")] * 6  # 2 cells × 3 batches


def test_label_free_outputs_come_to_the_host_once(monkeypatch):
    """estimate's forward pass keeps logits and features where the model runs and moves
    them once: the same host syncs for 1 batch as for 8, and the same numbers."""
    from failmodes.estimate.forward import model_outputs
    torch.manual_seed(0)
    model = fm.models.create_model("small_cnn", width=8).eval()
    x = torch.rand(16, 3, 32, 32)
    out, counts = {}, {}
    for batch in (16, 2):
        syncs = _Syncs(monkeypatch)
        out[batch] = model_outputs(model, x, batch_size=batch)
        counts[batch] = syncs.n
        monkeypatch.undo()
    assert counts[16] == counts[2], counts
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(out[2].logits, want, atol=1e-5, rtol=1e-5)
    assert out[2].features is not None and out[2].features.shape[0] == 16
    torch.testing.assert_close(out[2].features, out[16].features, atol=1e-5, rtol=1e-5)
