"""Training: recipes, batched augmentation properties, learning, determinism, exact resume,
checkpoint contents, DDP (2 gloo processes under torchrun) and the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import failmodes.data as fmdata
from failmodes.config import ConfigError, override
from failmodes.models import create_model, weights_hash
from failmodes.train import (
    AUGMIX_OPS,
    BatchAugment,
    TrainError,
    augmix,
    cutout,
    epoch_order,
    jsd_loss,
    list_recipes,
    load_recipe,
    random_crop,
    random_flip,
    shard_indices,
    train_model,
)
from failmodes.train.augment import sample_gamma

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("memo_synthetic")


def tiny(**kw):
    """A run of a few seconds: small_cnn width 8 on 256 synthetic images."""
    base = dict(model="small_cnn", width=8, data="synthetic", epochs=1, subset=256,
                batch_size=64, lr=0.05, test_subset=200, threads=1)
    return override(load_recipe("baseline-cosine"), **{**base, **kw})


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- recipes
def test_recipes_match_the_issue():
    assert list_recipes() == ["augmix", "baseline-cosine", "baseline-multistep", "cutout", "fast",
                            "fast-cutout", "fast-sgd"]
    cos, step = load_recipe("baseline-cosine"), load_recipe("baseline-multistep")
    assert (cos.lr, cos.momentum, cos.weight_decay, cos.batch_size, cos.epochs, cos.seed) == \
        (0.1, 0.9, 5e-4, 128, 35, 42)
    assert (cos.schedule, cos.augment, cos.nesterov) == ("cosine", "standard", False)
    assert (step.epochs, step.nesterov, step.schedule, step.milestones, step.gamma) == \
        (50, True, "multistep", [25, 40], 0.1)
    cut = load_recipe("cutout")
    assert cut.augment == "cutout" and cut.scaled_cutout(32) == 16 and cut.scaled_cutout(64) == 32
    mix = load_recipe("augmix")
    assert (mix.augment, mix.jsd, mix.augmix_width, mix.augmix_severity) == ("augmix", True, 3, 3)
    assert cos.val_fraction == 0.1  # a validation split stays held out for calibration


def test_recipe_errors_name_the_key(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        load_recipe(bad)
    bad.write_text("schedule: linear\n")
    with pytest.raises(ConfigError, match="schedule='linear'"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="unknown recipe 'nope'"):
        load_recipe("nope")
    with pytest.raises(ConfigError, match="--epochs"):
        override(load_recipe("cutout"), epochs="ten")


# ----------------------------------------------------------------------------- augmentation
def test_random_crop_matches_a_per_image_reference():
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    out = random_crop(x, 4, gen(3))
    g = gen(3)  # the same draws, applied one image at a time
    oy = torch.randint(0, 9, (16,), generator=g)
    ox = torch.randint(0, 9, (16,), generator=g)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    ref = torch.stack([padded[i, :, oy[i]:oy[i] + 32, ox[i]:ox[i] + 32] for i in range(16)])
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert torch.equal(out, ref)
    assert len({(int(a), int(b)) for a, b in zip(oy, ox, strict=True)}) > 1  # per-sample offsets


def test_random_flip_mirrors_some_images_only():
    x = torch.rand(64, 3, 8, 8)
    out = random_flip(x, gen(1))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 10 < int(mirrored.sum()) < 54
    assert torch.equal(out, random_flip(x, gen(1)))
    assert not torch.equal(out, random_flip(x, gen(2)))


def test_cutout_one_clipped_hole_per_image():
    x = torch.rand(32, 3, 32, 32) * 0.5 + 0.5  # > 0.5 everywhere: the hole (fill 0) shows
    before = x.clone()
    out = cutout(x, 16, gen(0), fill=0.0)
    assert torch.equal(x, before)  # input untouched
    hole = (out == 0).all(1)  # N×H×W
    rows, cols = hole.any(2), hole.any(1)
    for i in range(32):
        r, c = rows[i].nonzero().flatten(), cols[i].nonzero().flatten()
        assert len(r) and len(c) and len(r) <= 16 and len(c) <= 16
        # one axis-aligned rectangle, contiguous rows and columns
        assert int(hole[i].sum()) == len(r) * len(c)
        assert int(r[-1] - r[0]) + 1 == len(r) and int(c[-1] - c[0]) + 1 == len(c)
    assert int((hole.sum((1, 2)) == 256).sum()) > 0  # unclipped holes are 16×16
    assert len({tuple(h.nonzero()[0].tolist()) for h in hole}) > 8  # per-sample positions
    mean = torch.tensor([0.1, 0.2, 0.3])
    filled = cutout(x, 16, gen(0), fill=mean)
    assert torch.allclose(filled[:, :, hole[0].nonzero()[0, 0], hole[0].nonzero()[0, 1]][0], mean)


def test_augmix_range_determinism_and_ops():
    assert not {"contrast", "color", "brightness", "sharpness"} & set(AUGMIX_OPS)
    x = torch.rand(16, 3, 32, 32)
    before = x.clone()
    y = augmix(x, gen(5))
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert torch.equal(x, before)
    assert torch.equal(y, augmix(x, gen(5))) and not torch.equal(y, augmix(x, gen(6)))
    assert float((y - x).abs().mean()) > 1e-3
    for depth in (1, 3):
        z = augmix(x, gen(0), width=2, depth=depth, severity=10, alpha=0.5)
        assert float(z.min()) >= 0 and float(z.max()) <= 1


def test_gamma_sampler_moments():
    for alpha in (0.5, 1.0, 3.0):
        s = sample_gamma(alpha, (40000,), gen(0))
        assert float(s.min()) > 0
        assert abs(float(s.mean()) - alpha) < 0.03 * alpha + 0.01
        assert abs(float(s.var()) - alpha) < 0.08 * alpha + 0.02


def test_jsd_loss_is_a_divergence():
    a, b, c = torch.randn(3, 64, 10).unbind(0)
    assert float(jsd_loss(a, b, c)) > 0
    assert float(jsd_loss(a * 5, b * 5, c * 5)) >= -1e-6
    assert abs(float(jsd_loss(a, a, a))) < 1e-6
    assert float(jsd_loss(a, a, a + 3 * torch.randn_like(a))) > float(jsd_loss(a, a, a + 0.1))


def test_batch_augment_views_and_dtype():
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    cfg = load_recipe("augmix")
    views = BatchAugment.from_config(cfg, 32)(x, gen(0))
    assert len(views) == 3 and all(v.shape == (8, 3, 32, 32) for v in views)
    assert all(v.dtype == torch.float32 and float(v.max()) <= 1 for v in views)
    plain = BatchAugment.from_config(override(cfg, augment="none", jsd=False), 32)(x, gen(0))
    assert torch.equal(plain[0], x.float() / 255)


def test_data_order_and_shards():
    assert torch.equal(epoch_order(100, 42, 3), epoch_order(100, 42, 3))
    assert not torch.equal(epoch_order(100, 42, 3), epoch_order(100, 42, 4))
    order = epoch_order(101, 0, 0)
    for world in (2, 3):
        shards = [shard_indices(order, r, world) for r in range(world)]
        assert len({len(s) for s in shards}) == 1  # equal steps on every rank
        assert set(torch.cat(shards).tolist()) == set(range(101))
        assert sum(len(s) for s in shards) - 101 < world  # padding only


# ----------------------------------------------------------------------------- training
def test_small_cnn_learns_synthetic(tmp_path):
    cfg = tiny(width=16, subset=None, epochs=3, augment="none", test_subset=500)
    result = train_model(cfg, tmp_path / "run", progress=False)
    h = result.history
    assert [r["epoch"] for r in h] == [1, 2, 3]
    assert h[-1]["test_n"] == 2000  # the last epoch is tested on the whole test split
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    assert result.test_acc > 0.8, h


def test_same_seed_gives_identical_weights(tmp_path):
    a = train_model(tiny(augment="cutout"), tmp_path / "a", progress=False)
    b = train_model(tiny(augment="cutout"), tmp_path / "b", progress=False)
    c = train_model(tiny(augment="cutout", seed=7), tmp_path / "c", progress=False)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert weights_hash(a.model) == weights_hash(b.model) != weights_hash(c.model)
    la = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["extra"]["optimizer"]
    lb = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["extra"]["optimizer"]
    assert all(torch.equal(la["state"][k]["momentum_buffer"], lb["state"][k]["momentum_buffer"])
               for k in la["state"])


def test_augmix_jsd_recipe_trains_with_a_live_bar(tmp_path):
    cfg = override(load_recipe("augmix"), **{**vars(tiny()), "augment": "augmix", "jsd": True,
                                              "recipe": "augmix", "subset": 128})
    result = train_model(cfg, tmp_path / "run", progress=True)
    row = result.history[0]
    assert torch.isfinite(torch.tensor(row["train_loss"])) and row["train_loss"] > 0
    assert torch.load(result.checkpoint, weights_only=True)["config"]["jsd"] is True


def test_resume_equals_uninterrupted(tmp_path):
    cfg = tiny(epochs=2, schedule="multistep", milestones=[1], nesterov=True)
    straight = train_model(cfg, tmp_path / "straight", progress=False)
    part = train_model(cfg, tmp_path / "killed", stop_after=1, progress=False)
    assert len(part.history) == 1 and part.checkpoint.name == "last.pt"
    assert not (tmp_path / "killed" / "model.pt").exists()
    resumed = train_model(cfg, tmp_path / "killed", resume=True, progress=False)
    assert weights_hash(resumed.model) == weights_hash(straight.model)
    keep = ("train_loss", "train_acc", "test_loss", "test_acc", "lr")
    assert [{k: r[k] for k in keep} for r in resumed.history] == \
        [{k: r[k] for k in keep} for r in straight.history]
    with pytest.raises(TrainError, match="already holds a run"):
        train_model(cfg, tmp_path / "killed", progress=False)
    with pytest.raises(TrainError, match=r"lr=0\.05 \(now 0\.2\)"):
        train_model(override(cfg, lr=0.2), tmp_path / "killed", resume=True, progress=False)


def test_checkpoint_is_self_describing(tmp_path):
    result = train_model(tiny(), tmp_path / "run", progress=False)
    out = tmp_path / "run"
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["arch"] == "small_cnn" and payload["arch_kwargs"] == {"width": 8}
    assert payload["class_names"] == fmdata.synthetic.CLASSES
    ds = fmdata.load_synthetic("train")   # the memoised copy (memo_synthetic)
    assert payload["mean"] == pytest.approx(ds.mean) and payload["std"] == pytest.approx(ds.std)
    assert payload["config"]["recipe"] == "baseline-cosine" and payload["config"]["subset"] == 256
    assert payload["history"][0]["test_acc"] == result.test_acc
    assert payload["extra"]["data"]["val_split"] == "train-val"
    assert payload["extra"]["data"]["n_train"] == 256
    assert set(payload["versions"]) >= {"torch", "failmodes"}
    last = torch.load(out / "last.pt", weights_only=True)["extra"]
    assert {"optimizer", "scheduler", "rng", "epoch"} <= set(last)
    # evaluate needs nothing else: the path alone rebuilds the model
    model = create_model(out / "model.pt")
    x = torch.rand(4, 3, 32, 32)
    assert torch.equal(model(x), result.model(x))
    rows = (out / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,lr,train_loss") and len(rows) == 2
    assert json.loads((out / "history.json").read_text())[0]["epoch"] == 1
    assert (out / "training_curves.png").stat().st_size > 5000
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["config"]["model"] == "small_cnn" and "torch" in resolved["versions"]


def test_ddp_two_gloo_processes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "failmodes.cli", "train", "--model", "small_cnn", "--width", "8",
           "--data", "synthetic", "--epochs", "1", "--subset", "256", "--batch-size", "64",
           "--test-subset", "200", "--device", "cpu", "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    payload = torch.load(tmp_path / "ddp" / "model.pt", weights_only=True)
    assert payload["extra"]["world_size"] == 2
    assert payload["extra"]["params_in_sync"] is True  # DDP kept both replicas equal
    assert payload["history"][0]["test_n"] == 2000


# ----------------------------------------------------------------------------- CLI
def test_cli_train_and_errors(tmp_path):
    from typer.testing import CliRunner

    from failmodes.cli import app
    runner = CliRunner()
    args = ["train", "--model", "small_cnn", "--width", "8", "--data", "synthetic",
            "--epochs", "1", "--subset", "128", "--batch-size", "64", "--test-subset", "100",
            "--threads", "1", "--recipe", "cutout", "--out", str(tmp_path / "cli")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "model.pt" in res.output and (tmp_path / "cli" / "model.pt").exists()
    assert torch.load(tmp_path / "cli" / "model.pt", weights_only=True)["config"]["augment"] \
        == "cutout"
    res = runner.invoke(app, args)  # the same --out again, without --resume
    assert res.exit_code != 0 and "already holds a run" in res.output
    res = runner.invoke(app, args[:-4] + ["--recipe", "nope", "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "error: unknown recipe 'nope'" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_cpu_bf16_runs_the_forward_in_bf16_and_is_part_of_the_run(tmp_path, monkeypatch):
    # Known answer: with cpu_bf16 the convolutions see bfloat16 under autocast (their output
    # dtype says so), without it float32; the weights then differ, and a resume that flips
    # the field is refused as a changed config (it changes what the run computes).
    import failmodes.train.trainer as trainer
    seen: list[torch.dtype] = []
    real = trainer._train_epoch

    def spy(cfg, net, *a, **kw):
        conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
        h = conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        try:
            return real(cfg, net, *a, **kw)
        finally:
            h.remove()

    monkeypatch.setattr(trainer, "_train_epoch", spy)
    fp32 = train_model(tiny(), tmp_path / "fp32", progress=False)
    assert set(seen) == {torch.float32}
    seen.clear()
    bf = train_model(tiny(cpu_bf16=True), tmp_path / "bf16", progress=False)
    assert set(seen) == {torch.bfloat16}
    assert weights_hash(fp32.model) != weights_hash(bf.model)
    assert abs(bf.test_acc - fp32.test_acc) < 0.15  # same tiny run, within noise
    with pytest.raises(TrainError, match="cpu_bf16"):
        train_model(tiny(), tmp_path / "bf16", resume=True, progress=False)
