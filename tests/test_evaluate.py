"""The evaluation grid: cells, resumption, pairing, failures, bad input, kill/resume, DDP."""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from failmodes.data.synthetic import CLASSES as SYNTHETIC_CLASSES
from failmodes.evaluate import EvalConfig, EvalError, build_cells, open_run, run_evaluation
from failmodes.models import create_model, save_checkpoint
from failmodes.store import CellKey, ResultsStore
from failmodes.stressors import get_stressor
from failmodes.stressors import registry as stressor_registry

N = 48  # images per cell: small enough for a 1-core CI, large enough for several batches
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- stub stressors
def _shift(x, p, rng):
    return torch.roll(x, shifts=int(p[0]), dims=-1)


def _darken(x, p, rng):
    (f,) = p
    return x * (1.0 - f)


def _slow_darken(x, p, rng):
    time.sleep(0.12)  # stretches each cell so a SIGKILL lands mid-run
    return x * (1.0 - p[0] / 2)


STUBS = {
    "_t_shift": dict(op=_shift, family="sweep", unit="pixels", value_range=(-8.0, 8.0)),
    "_t_darken": dict(op=_darken, family="digital",
                      tables={"cifar": [(0.0,), (0.2,), (0.4,), (0.6,), (0.8,), (1.0,)]}),
    "_t_slow": dict(op=_slow_darken, family="digital",
                    tables={"cifar": [(0.0,), (0.1,), (0.2,), (0.3,), (0.4,), (0.5,)]}),
}


def register_stubs() -> None:
    """Test-only stressors; also called by the subprocess scripts below."""
    for name, kw in STUBS.items():
        if name not in stressor_registry._REGISTRY:
            kw = dict(kw)
            stressor_registry.register_stressor(name, **{k: v for k, v in kw.items()
                                                         if k != "op"})(kw["op"])


@pytest.fixture
def stubs():
    register_stubs()
    yield
    for name in STUBS:  # never leak into tests that loop over the registry
        stressor_registry._REGISTRY.pop(name, None)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    torch.manual_seed(0)
    model = create_model("small_cnn", width=8, class_names=list(SYNTHETIC_CLASSES))
    return str(save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "cnn.pt"))


def cfg(out, ckpt, **kw) -> EvalConfig:
    base = dict(models={"cnn": ckpt}, data="synthetic", subset=N, stressors=["gaussian_noise"],
                severities=[1, 3], batch_size=16, out=str(out))
    base.update(kw)
    return EvalConfig(**base)


def all_rows(run_dir) -> list[tuple]:
    """Every prediction row with its cell key, sorted (what 'identical results' means)."""
    db = sqlite3.connect(Path(run_dir) / "results.sqlite")
    rows = db.execute(
        "SELECT m.name, c.dataset, c.stressor, c.severity, c.seed, c.status, p.idx, p.label, "
        "p.pred, p.conf, p.p_true, p.entropy, p.margin, p.top5_json, p.logits FROM cells c "
        "JOIN models m ON m.id = c.model_id LEFT JOIN predictions p ON p.cell_id = c.id").fetchall()
    db.close()
    return sorted(rows, key=lambda r: tuple(str(v) for v in r[:7]))


# ----------------------------------------------------------------------------- the grid
def test_grid_lists_clean_first_skips_severity_zero_and_adds_sweeps_and_val(stubs, ckpt, tmp_path):
    c = cfg(tmp_path / "r", ckpt, models={"a": ckpt, "b": ckpt}, stressors=["_t_darken"],
            severities="0:2:1", sweeps=["_t_shift=-2:2:2", "_t_darken=2,3.5"], include_val=True,
            val_subset=30)
    keys = build_cells(c)
    ds = f"synthetic:test@{N}"
    expect = []
    for stressor, sev in [("clean", 0), ("_t_darken", 1), ("_t_darken", 2), ("_t_shift", -2),
                          ("_t_shift", 0), ("_t_shift", 2), ("_t_darken", 3.5)]:
        expect += [CellKey(m, ds, stressor, float(sev), 0) for m in ("a", "b")]
    expect += [CellKey(m, "synthetic:train-val@30", "clean", 0.0, 0) for m in ("a", "b")]
    assert keys == expect
    assert not (tmp_path / "r").exists()  # planning writes nothing


def test_resolved_config_is_typed_parses_sweeps_once_and_reads_back(ckpt, tmp_path):
    from failmodes.config import save_resolved
    from failmodes.evaluate import ResolvedEvalConfig, resolve_config
    from failmodes.store import read_run_config
    cli = resolve_config(cfg(tmp_path / "r", ckpt, severities="3,1,3",
                             sweeps=["rotation=-30:30:30", "rotation=45", "fog=2.5"]))
    assert isinstance(cli, ResolvedEvalConfig)
    assert cli.severities == [1.0, 3.0] and cli.stressors == ["gaussian_noise"]
    assert cli.sweeps == {"rotation": [-30.0, 0.0, 30.0, 45.0], "fog": [2.5]}
    # A study hands its parsed floats over as a mapping: the same resolved config.
    study = resolve_config(cfg(tmp_path / "r", ckpt, severities=[1.0, 3.0],
                               sweeps={"rotation": [-30.0, 0.0, 30.0, 45.0], "fog": [2.5]}))
    assert study == cli
    save_resolved(cli, tmp_path / "eval_config.json", {"torch": torch.__version__})
    assert read_run_config(tmp_path / "eval_config.json") == cli


def test_a_study_parses_its_sweeps_once_and_hands_the_floats_down(tmp_path):
    from failmodes.study import load_preset
    from failmodes.study.evaluation import eval_config
    study = load_preset("demo")  # rotation: "-90:90:30" in the file
    assert study.sweeps["rotation"] == [-90.0, -60.0, -30.0, 0.0, 30.0, 60.0, 90.0]
    assert all(isinstance(v, float) for vals in study.sweeps.values() for v in vals)
    ec = eval_config(study, {m.name: tmp_path / f"{m.name}.pt" for m in study.models}, tmp_path)
    assert ec.sweeps == study.sweeps


def test_run_resumes_only_missing_cells_and_records_everything(ckpt, tmp_path):
    out = tmp_path / "r"
    s1 = run_evaluation(cfg(out, ckpt), progress="off", command="failmodes evaluate test")
    assert (s1.cells, s1.computed, s1.skipped, s1.failed) == (3, 3, 0, [])
    s2 = run_evaluation(cfg(out, ckpt, severities=[1, 2, 3]), progress="off")
    assert (s2.cells, s2.computed, s2.skipped) == (4, 1, 3)
    with ResultsStore(out / "results.sqlite") as st:
        first = st.cells(stressor="gaussian_noise")[0].id
        st.db.execute("DELETE FROM cells WHERE id=?", (first,))
        st.db.commit()
    s3 = run_evaluation(cfg(out, ckpt, severities=[1, 2, 3]), progress="off")
    assert (s3.computed, s3.skipped) == (1, 3)
    with ResultsStore(out / "results.sqlite", readonly=True) as st:
        (m,) = st.models()
        assert m["spec"] == ckpt and m["arch"] == "small_cnn" and len(m["weights_hash"]) == 40
        assert m["meta"]["checkpoint"] == ckpt and m["meta"]["arch_kwargs"] == {"width": 8}
        assert [c.stressor for c in st.cells()] == ["clean"] + ["gaussian_noise"] * 3
        assert all(c.n_images == N and c.images_per_s > 0 for c in st.cells())
        runs = st.db.execute("SELECT command, config_json, versions_json FROM runs").fetchall()
    assert len(runs) == 3 and runs[0][0] == "failmodes evaluate test"
    assert json.loads(runs[0][2])["torch"] == torch.__version__
    saved = json.loads((out / "eval_config.json").read_text())["config"]
    assert saved["severities"] == [1.0, 2.0, 3.0] and saved["models"] == {"cnn": ckpt}


def test_a_second_writer_on_the_same_run_folder_is_refused(ckpt, tmp_path):
    from failmodes.store import RunBusy, RunLock
    lock = RunLock(tmp_path / "r")  # as if another evaluation were running there
    try:
        with pytest.raises(RunBusy, match=f"another evaluation \\(pid {os.getpid()}\\)"):
            run_evaluation(cfg(tmp_path / "r", ckpt), progress="off")
        assert not (tmp_path / "r" / "results.sqlite").exists()
    finally:
        lock.release()
    assert run_evaluation(cfg(tmp_path / "r", ckpt), progress="off").computed == 3


def test_rows_equal_a_direct_computation(ckpt, tmp_path):
    run_evaluation(cfg(tmp_path / "r", ckpt, severities=[4]), progress="off")
    ctx = open_run(tmp_path / "r")
    ds, model = ctx.dataset(), ctx.model("cnn")
    x = ds.float_batch(0, len(ds))
    x = get_stressor("gaussian_noise")(x, 4.0, seed=0, indices=ds.indices)
    with torch.no_grad():
        p = torch.softmax(model(x).double(), 1)
    (cell,) = ctx.store.cells(stressor="gaussian_noise")
    r = ctx.store.predictions(cell, logits=True)
    top2 = p.topk(2, 1).values
    np.testing.assert_array_equal(r["idx"], ds.indices.numpy())
    np.testing.assert_array_equal(r["label"], ds.labels.numpy())
    np.testing.assert_array_equal(r["pred"], p.argmax(1).numpy())
    np.testing.assert_allclose(r["conf"], top2[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(r["margin"], (top2[:, 0] - top2[:, 1]).numpy(), atol=1e-5)
    np.testing.assert_allclose(r["p_true"], p[torch.arange(len(ds)), ds.labels].numpy(), atol=1e-5)
    np.testing.assert_allclose(r["entropy"], -(p * p.log()).sum(1).numpy(), atol=1e-4)
    np.testing.assert_allclose(r["logits"], model(x).detach().numpy(), atol=1e-5)
    ctx.close()


def test_two_models_and_two_batch_sizes_see_the_same_images(ckpt, tmp_path):
    run_evaluation(cfg(tmp_path / "a", ckpt, models={"a": ckpt, "b": ckpt}), progress="off")
    run_evaluation(cfg(tmp_path / "c", ckpt, models={"c": ckpt}, batch_size=7), progress="off")
    rows = {}
    for run in ("a", "c"):
        for r in all_rows(tmp_path / run):
            rows.setdefault(r[0], []).append(r[1:])
    assert len(rows["a"]) == 3 * N
    assert rows["a"] == rows["b"]
    # Another run, another batch size: the same predictions (floats to conv rounding).
    for ra, rc in zip(rows["a"], rows["c"]):
        assert ra[:8] == rc[:8]
        np.testing.assert_allclose(np.frombuffer(ra[-1], np.float32),
                                   np.frombuffer(rc[-1], np.float32), atol=1e-5)


class _NaNOnDark(torch.nn.Module):
    """Logits are NaN for nearly black images: a stand-in for a numerically broken model."""

    def __init__(self, model):
        super().__init__()
        self.inner = model
        self.class_names, self.arch, self.num_classes = model.class_names, "nan_probe", 10

    def forward(self, x):
        z = self.inner(x)
        return torch.where((x.amax(dim=(1, 2, 3)) < 0.01)[:, None], torch.nan, z)


def test_nan_logits_fail_only_their_cell(stubs, ckpt, tmp_path):
    from failmodes.models import load_checkpoint
    model = _NaNOnDark(load_checkpoint(ckpt)[0]).train()
    s = run_evaluation(cfg(tmp_path / "r", ckpt, models={}, stressors=["_t_darken"],
                           severities=[1, 5]), models={"nan": model}, progress="off")
    assert s.computed == 2 and len(s.failed) == 1
    assert s.failed[0]["cell"]["severity"] == 5.0
    assert "non-finite logits for 48 of 48" in s.failed[0]["error"]
    assert model.training  # the caller's mode is restored
    with ResultsStore(tmp_path / "r" / "results.sqlite", readonly=True) as st:
        failed = st.cells(status="failed")
        assert [(c.stressor, c.severity) for c in failed] == [("_t_darken", 5.0)]
        assert "non-finite" in failed[0].error
        assert len(st.cells()) == 2 and not st.has_cell(failed[0].key)


@pytest.mark.parametrize("change, message", [
    (dict(stressors=["fogg"]), "unknown stressor 'fogg'"),
    (dict(severities=[1, 6]), "severity 6.0 is outside [0, 5]"),
    (dict(severities="1:x:1"), "not a number"),
    (dict(models={"bad": "GARBAGE"}), "not a readable model file"),
    (dict(models={"five": "FIVE"}), "has 5 classes but synthetic has 10"),
    (dict(models={"gone": "/nonexistent/model.pt"}), "not found"),
    (dict(sweeps=["_t_shift=-20:0:10"]), "outside [-8, 8]"),
])
def test_bad_input_is_one_clear_error_and_writes_nothing(stubs, ckpt, tmp_path, change, message):
    if change.get("models") == {"bad": "GARBAGE"}:
        (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
        change = dict(models={"bad": str(tmp_path / "bad.pt")})
    if change.get("models") == {"five": "FIVE"}:
        five = create_model("small_cnn", width=8, num_classes=5)
        change = dict(models={"five": str(save_checkpoint(five, tmp_path / "five.pt"))})
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        run_evaluation(cfg(out, ckpt, **change), progress="off")
    assert not out.exists()


def test_cli_evaluate_prints_the_table_and_fails_cleanly(ckpt, tmp_path):
    from typer.testing import CliRunner

    from failmodes.cli import app
    out = tmp_path / "cli"
    args = ["evaluate", "--model", ckpt, "--name", "cnn", "--data", "synthetic", "--subset",
            str(N), "--stressors", "gaussian_noise", "--severities", "2", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "gaussian_noise" in res.output and "2 cells computed" in res.output
    bad = CliRunner().invoke(app, args[:-1] + [str(tmp_path / "x"), "--severities", "9"])
    assert bad.exit_code == 2 and "error: gaussian_noise: severity 9.0" in bad.output
    assert not (tmp_path / "x").exists()


def test_open_run_rebuilds_models_and_data(ckpt, tmp_path):
    c = cfg(tmp_path / "r", ckpt,
            models={"cnn": ckpt, "fresh": {"arch": "small_cnn", "arch_args": {"width": 4}}})
    run_evaluation(c, progress="off")
    with open_run(tmp_path / "r") as ctx:
        assert ctx.model_names() == ["cnn", "fresh"]
        assert ctx.config.subset == N and ctx.dataset_key() == f"synthetic:test@{N}"
        fresh = ctx.model("fresh")  # a registry model: same seeded init, same weights hash
        assert not fresh.training
        clean = ctx.store.cells(model="fresh", stressor="clean")[0]
        r = ctx.store.predictions(clean, logits=True)
        with torch.no_grad():
            z = fresh(ctx.dataset().float_batch(0, N))
        np.testing.assert_allclose(r["logits"], z.numpy(), atol=1e-5)
        with pytest.raises(EvalError, match="not in"):
            ctx.model("nope")


# ----------------------------------------------------------------------------- subprocesses
SCRIPT = """
import json, os, sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
from test_evaluate import register_stubs
register_stubs()
from failmodes.evaluate import EvalConfig, run_evaluation, runner
cfg = EvalConfig(**json.loads(sys.argv[1]))
if os.environ.get("WORLD_SIZE"):  # log which rank computed which group
    real = runner.compute_group
    def logged(plan, g, cache, bar):
        with open(os.path.join(cfg.out + "-ranks", os.environ["RANK"]), "a") as f:
            f.write(g.label + "\\n")
        return real(plan, g, cache, bar)
    runner.compute_group = logged
s = run_evaluation(cfg, progress="plain")
print("SUMMARY", json.dumps({{k: getattr(s, k) for k in ("computed", "skipped")}}))
"""


def _script(tmp_path) -> Path:
    p = tmp_path / "run_eval.py"
    p.write_text(SCRIPT.format(tests=str(ROOT / "tests")))
    return p


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def _done_cells(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1)
        n = db.execute("SELECT count(*) FROM cells WHERE status='done'").fetchone()[0]
        db.close()
        return n
    except sqlite3.Error:
        return 0


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(stubs, ckpt, tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    conf = dict(models={"cnn": ckpt}, data="synthetic", subset=N, batch_size=16, seed=3,
                stressors=["_t_slow", "gaussian_noise"], severities=[1, 2, 3])
    proc = subprocess.Popen([sys.executable, str(_script(tmp_path)),
                             json.dumps({**conf, "out": str(killed)})], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while _done_cells(killed / "results.sqlite") < 2 and time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail("evaluation ended before it could be killed:\n" + proc.stdout.read().decode())
        time.sleep(0.05)
    time.sleep(0.15)  # into the next cell's batches
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    db = sqlite3.connect(killed / "results.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    k = db.execute("SELECT count(*) FROM cells").fetchone()[0]
    per_cell = db.execute("SELECT c.n_images, count(p.idx) FROM cells c LEFT JOIN predictions p "
                          "ON p.cell_id = c.id GROUP BY c.id").fetchall()
    db.close()
    assert 2 <= k < 7 and all(a == b == N for a, b in per_cell)  # no half-written cell
    resumed = run_evaluation(EvalConfig(**conf, out=str(killed)), progress="off")
    assert (resumed.computed, resumed.skipped) == (7 - k, k)
    run_evaluation(EvalConfig(**conf, out=str(clean)), progress="off")
    assert all_rows(killed) == all_rows(clean)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_rank_gloo_run_shards_cells_and_rank0_writes_the_same_rows(stubs, ckpt, tmp_path):
    conf = dict(models={"cnn": ckpt}, data="synthetic", subset=N, batch_size=16,
                stressors=["gaussian_noise", "_t_darken"], severities=[2, 4])
    out = tmp_path / "ddp"
    (tmp_path / "ddp-ranks").mkdir()
    port, script = _free_port(), _script(tmp_path)
    procs = []
    for rank in range(2):
        env = dict(_env(), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen([sys.executable, str(script),
                                       json.dumps({**conf, "out": str(out)})], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    logs = [p.communicate(timeout=180)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(logs)
    assert all('"computed": 5' in log for log in logs)  # every rank returns the summary
    done = [set((tmp_path / "ddp-ranks" / str(r)).read_text().split("\n")) - {""} for r in (0, 1)]
    assert done[0] and done[1] and not done[0] & done[1] and len(done[0] | done[1]) == 5
    run_evaluation(EvalConfig(**conf, out=str(tmp_path / "single")), progress="off")
    assert all_rows(out) == all_rows(tmp_path / "single")
