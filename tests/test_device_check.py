"""bench/device_check.py --smoke: every part of the one-shot GPU check runs at toy size on
the CPU, so the script (and the CUDA tests it runs) cannot rot between GPU runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("environment", "cuda_tests", "stressors", "evaluation", "fast_recipe", "quick_study")


def test_device_check_smoke(tmp_path):
    out = tmp_path / "device.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "device_check.py"), "--smoke",
                        "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert out.exists(), r.stderr[-3000:]
    result = json.loads(out.read_text())
    parts = result["parts"]
    assert tuple(parts) == PARTS
    bad = {k: v.get("error") or v.get("reason") for k, v in parts.items() if v["status"] != "ok"}
    assert not bad, bad
    assert r.returncode == 0, r.stderr[-3000:]
    assert all(v["seconds"] >= 0 for v in parts.values())

    env_part = parts["environment"]
    assert env_part["torch"] == __import__("torch").__version__
    assert env_part["device_used"] == "cpu" and "versions" in env_part

    tests = parts["cuda_tests"]
    # The smoke pass runs a selection of tests/test_cuda.py against a second CPU pass.
    assert tests["passed"] >= 5 and tests["failed"] == tests["errors"] == 0, tests

    st = parts["stressors"]
    assert st["corruptions"] == 3
    # imagecorruptions' version where it is installed (then timed beside ours), else absent
    assert st["imagecorruptions"] == "absent" or "imagecorruptions" in st["32px"]
    for side in ("32px", "64px"):
        row = st[side]
        for who in ("device", "cpu"):
            rates = row[who]["images_per_s"]
            assert set(rates) == {"gaussian_noise", "fog", "jpeg_compression"}
            assert all(v > 0 for v in rates.values()) and row[who]["suite_images_per_s"] > 0
        assert set(row["device_over_cpu"]["per_corruption"]) == set(row["cpu"]["images_per_s"])

    ev = parts["evaluation"]["models"]["small_cnn"]
    assert set(ev) == {"fp32", "channels_last", "channels_last_bf16"}
    for mode in ev.values():
        assert mode["images"] == 64
        assert min(mode["plain_images_per_s"], mode["engine_images_per_s"],
                   mode["engine_without_logits_images_per_s"]) > 0
        # overhead = engine time / plain time - 1, in percent
        expect = 100 * (mode["plain_images_per_s"] / mode["engine_images_per_s"] - 1)
        assert abs(mode["overhead_pct"] - expect) < 0.5 + abs(expect) * 0.01

    fast = parts["fast_recipe"]
    assert 0 <= fast["test_accuracy"] <= 1 and fast["test_n"] == 2000  # the synthetic test split
    assert fast["n_train"] == 500 and len(fast["epoch_s"]) == fast["epochs"] == 1

    study = parts["quick_study"]
    assert study["exit_code"] == 0 and study["report"] is True
    # The tiny study's steps: train its one model, evaluate, run its one analysis.
    assert set(study["steps"]) == {"train:cnn", "evaluate", "analysis:metrics"}, study["steps"]
    assert all(v["status"] == "ok" for v in study["steps"].values()), study["steps"]
    assert study["step_s_total"] <= study["wall_s"]
    assert abs(study["step_s_total"] + study["other_s"] - study["wall_s"]) <= 0.2
