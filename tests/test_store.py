"""The run/store layer: dataset keys, the family lookup, the run-folder layout, read-only
stores (nothing written, no side file) and write errors that name the file."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from synthetic_store import write_store

from failmodes.store import (
    CLEAN,
    MAIN,
    OFFICIAL,
    UNKNOWN,
    VALIDATION,
    CellKey,
    DatasetKey,
    DatasetKeyError,
    ResultsStore,
    RunFolder,
    StoreError,
    dataset_key,
    paired_sums,
    parse_dataset_key,
    stressor_family,
    stressor_info,
)


# ----------------------------------------------------------------------------- dataset keys
@pytest.mark.parametrize("key, name, split, n, role", [
    ("cifar10:test", "cifar10", "test", None, MAIN),
    ("cifar10:test@2000", "cifar10", "test", 2000, MAIN),
    ("cifar10:train-val@5000", "cifar10", "train-val", 5000, VALIDATION),
    ("synthetic:train-val", "synthetic", "train-val", None, VALIDATION),
    ("cifar10c-official:test@500", "cifar10c-official", "test", 500, OFFICIAL),
    ("imagefolder:C:/data:val", "imagefolder:C:/data", "val", None, MAIN),  # colon in the name
])
def test_dataset_keys_parse_and_round_trip(key, name, split, n, role):
    k = parse_dataset_key(key)
    assert (k.name, k.split, k.n, k.role) == (name, split, n, role)
    assert str(k) == key


def test_dataset_key_adds_the_subset_size_only_for_a_subset():
    assert dataset_key("cifar10", "test", 2000, 10000) == "cifar10:test@2000"
    assert dataset_key("cifar10", "test", 10000, 10000) == "cifar10:test"
    # an official key and its on-the-fly twin name the same images
    assert parse_dataset_key("cifar10c-official:test@64").images == \
        parse_dataset_key("cifar10:test@64").images == "test@64"
    assert str(DatasetKey("x", "train-val", 7)) == "x:train-val@7"


@pytest.mark.parametrize("bad", ["cifar10", ":test", "cifar10:", "cifar10:test@", "a:test@x"])
def test_malformed_dataset_keys_fail_with_one_line(bad):
    with pytest.raises(DatasetKeyError, match="name:split"):
        parse_dataset_key(bad)


# ----------------------------------------------------------------------------- families
def test_one_family_lookup_with_one_rule_for_unknown_names():
    from failmodes.analysis.metrics import stressor_info as metrics_info
    assert stressor_family(CLEAN) == "clean" and stressor_info(CLEAN).kind == "clean"
    fog, rot = stressor_info("fog"), stressor_info("rotation")
    assert (fog.family, fog.kind, fog.benchmark) == ("weather", "corruption", True)
    assert (rot.family, rot.kind, rot.identity) == ("sweep", "sweep", 0.0)
    assert stressor_info("fgsm_linf").kind == "adversarial"
    unknown = stressor_info("made_up_by_a_newer_version")
    assert (unknown.family, unknown.kind, unknown.benchmark) == (UNKNOWN, UNKNOWN, False)
    # every consumer sees the same answer (they all ask failmodes.store)
    assert metrics_info("made_up_by_a_newer_version")["family"] == UNKNOWN
    assert metrics_info("fog") == {"family": "weather", "kind": "corruption", "benchmark": True}


def test_rebuilt_cell_images_are_the_stressed_images_and_attacks_ask_for_the_model():
    import torch

    from failmodes.store import Cell, stress_like_cell
    from failmodes.stressors import StressorError, get_stressor
    x = torch.rand(4, 3, 32, 32)
    idx = torch.tensor([3, 9, 11, 40])

    def cell(stressor, dataset="synthetic:test"):
        return Cell(1, "m", dataset, stressor, 2.0, 5, "done", 4, None, None)
    assert torch.equal(stress_like_cell(x, cell("fog"), idx),
                       get_stressor("fog")(x, 2.0, seed=5, indices=idx))
    assert stress_like_cell(x, cell(CLEAN), idx) is x
    assert stress_like_cell(x, cell("fog", "cifar10c-official:test"), idx) is x
    with pytest.raises(StressorError, match="needs model= and labels="):
        stress_like_cell(x, cell("fgsm_linf"), idx)


def test_run_folder_names_every_file():
    f = RunFolder("runs/demo")
    assert f.store == Path("runs/demo/results.sqlite")
    assert f.lock.name == "results.sqlite.lock" and f.eval_config.name == "eval_config.json"
    assert (f.analysis.name, f.state.name, f.resolved.name) == (
        "analysis", "study_state.json", "study.resolved.json")
    assert (f.report.name, f.results.name, f.tables.name, f.figures.name, f.probes.name,
            f.models.name) == ("report.html", "results.json", "tables", "figures", "probes",
                               "models")
    from failmodes.store import FINAL_CHECKPOINT, RUN_CONFIG_NAMES, TRAIN_CONFIG_NAME
    assert FINAL_CHECKPOINT == "model.pt" and RUN_CONFIG_NAMES == ("eval_config.json",
                                                                   TRAIN_CONFIG_NAME)


# ----------------------------------------------------------------------------- read-only
def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def closed_store(tmp_path) -> Path:
    d = tmp_path / "run"
    st = write_store(d / "results.sqlite", {"gaussian_noise": {1.0: 0.7, 3.0: 0.5}}, n=60)
    st.save_temperature("m", 1.5, "clean (n=60)", 0.9, 0.8)
    st.close()
    assert sorted(p.name for p in d.iterdir()) == ["results.sqlite"]  # WAL checkpointed
    return d


def test_a_read_only_store_writes_no_byte_and_no_side_file(closed_store):
    before = _snapshot(closed_store)
    path = closed_store / "results.sqlite"
    with ResultsStore(path, readonly=True) as st:
        assert [m["name"] for m in st.models()] == ["m"]
        cells = st.cells()
        assert len(cells) == 3 and len(st.predictions(cells[0], logits=True)["idx"]) == 60
        assert len(st.accuracy_table()) == 3 and st.per_class_accuracy()
        assert st.temperatures()["m"]["temperature"] == 1.5
        assert st.runs() == [] and st.latest_config() is None and st.fingerprint()[0][0] == 3
        for write in (lambda: st.start_run("x", {}, {}),
                      lambda: st.mark_failed(CellKey("m", "synthetic:test", "fog", 1.0), "x"),
                      lambda: st.save_temperature("m", None)):
            with pytest.raises(StoreError, match=f"{path}.*opened read-only"):
                write()
    assert paired_sums(path, "m", path, "m", per="cell")  # the ATTACH path is read-only too
    assert _snapshot(closed_store) == before  # no -wal, no -shm, same bytes


def test_a_read_only_reader_sees_a_live_writers_commits(tmp_path):
    writer = write_store(tmp_path / "results.sqlite", {"fog": {1.0: 0.5}}, n=20)
    writer.db.execute("PRAGMA wal_autocheckpoint = 0")  # keep the commit in -wal only
    writer.write_cell(CellKey("m", "synthetic:test", "fog", 2.0),
                      writer.predictions(writer.cells(stressor="fog")[0]))
    try:
        assert (tmp_path / "results.sqlite-wal").stat().st_size > 0
        with ResultsStore(tmp_path / "results.sqlite", readonly=True) as st:
            assert [c.severity for c in st.cells(stressor="fog")] == [1.0, 2.0]
    finally:
        writer.close()


def test_missing_or_foreign_stores_fail_with_one_line(tmp_path):
    with pytest.raises(StoreError, match="no results store at"):
        ResultsStore(tmp_path / "none.sqlite", readonly=True)
    (tmp_path / "x.sqlite").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="x.sqlite is not a usable results store"):
        ResultsStore(tmp_path / "x.sqlite", readonly=True)


def test_analyses_of_a_store_on_read_only_media_write_only_to_out(closed_store, tmp_path,
                                                                  monkeypatch):
    """Issue 14 item 11: read-only media, outputs elsewhere. Tests run as root, for whom
    chmod blocks nothing, so read-only media are simulated where the library asks
    (``store_writable``) and the proof is that the run folder is byte-identical after."""
    from failmodes.analysis import calibration, get_analysis
    before = _snapshot(closed_store)
    monkeypatch.setattr(calibration, "store_writable", lambda path: False)
    os.chmod(closed_store, 0o555)
    try:
        get_analysis("metrics").fn(closed_store, tmp_path / "out", figures=False)
        get_analysis("curves").fn(closed_store, tmp_path / "out")
        cal = calibration.calibrate_run(closed_store, tmp_path / "out")
    finally:
        os.chmod(closed_store, 0o755)
    assert {"metrics.json", "curves.json", "calibration.json"} <= {
        p.name for p in (tmp_path / "out").iterdir()}
    assert any("read-only" in n for n in cal.notes)
    # the temperature fitted now is in the JSON; the store keeps the one it had
    assert cal.data["temperatures"]["m"]["temperature"] != 1.5
    with ResultsStore(closed_store / "results.sqlite", readonly=True) as st:
        assert st.temperatures()["m"]["temperature"] == 1.5
    assert _snapshot(closed_store) == before


# ----------------------------------------------------------------------------- full disk
def test_a_full_disk_names_the_store_and_keeps_finished_cells(tmp_path):
    path = tmp_path / "results.sqlite"
    st = write_store(path, {"fog": {1.0: 0.5}}, n=200)
    rows = st.predictions(st.cells(stressor="fog")[0], logits=True)
    pages = st.db.execute("PRAGMA page_count").fetchone()[0]
    st.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk full" (SQLITE_FULL)
    with pytest.raises(StoreError, match=f"cannot write cell .* to {path}: .*full.*free disk"):
        st.write_cell(CellKey("m", "synthetic:test", "fog", 2.0), rows)
    st.close()
    with ResultsStore(path, readonly=True) as st:
        assert [(c.stressor, c.severity) for c in st.cells()] == [("clean", 0.0), ("fog", 1.0)]


def test_a_full_disk_on_rerun_names_the_file(tmp_path, monkeypatch):
    from failmodes.evaluate import EvalConfig, EvalError, run_evaluation, runner
    cfg = EvalConfig(models={"cnn": {"arch": "small_cnn", "arch_args": {"width": 4}}}, data="synthetic",
                     subset=16, stressors=["gaussian_noise"], severities=[1], batch_size=16,
                     out=str(tmp_path / "run"))
    run_evaluation(cfg, progress="off")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(runner, "save_resolved", full)
    with pytest.raises(EvalError, match=f"cannot write {tmp_path / 'run' / 'eval_config.json'}: "
                                        "No space left on device"):
        run_evaluation(cfg, progress="off")


def test_an_unreadable_write_ahead_log_says_what_to_do(tmp_path):
    import sqlite3

    from failmodes.store._connect import describe
    path = tmp_path / "results.sqlite"
    path.touch()
    (tmp_path / "results.sqlite-wal").write_bytes(b"")
    msg = str(describe(path, sqlite3.OperationalError("unable to open database file"), "open"))
    assert str(path) in msg and "results.sqlite-wal" in msg and "writable" in msg
