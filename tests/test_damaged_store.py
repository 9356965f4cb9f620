"""Damaged run folders (issue 35): a store with corrupt pages, a dropped column, bad JSON in
a row, or a future schema version is one ``error:`` line (exit 2) for every command that
reads it, and writes nothing; a cell missing rows or a cell row deleted by hand is computed
again by the rerun instead of being read short or blocking every later run."""
import shutil
import sqlite3

import pytest
from typer.testing import CliRunner

from failmodes.cli import app
from failmodes.errors import EXIT_USAGE
from failmodes.evaluate import EvalConfig, run_evaluation
from failmodes.store import CellKey, ResultsStore, StoreError
from failmodes.store._schema import SCHEMA_VERSION

runner = CliRunner()


def _config(out):
    return EvalConfig(models={"cnn": "small_cnn"}, data="synthetic", subset=8,
                      stressors=["gaussian_noise"], severities=[1.0, 2.0], device="cpu",
                      batch_size=4, out=str(out))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("damaged") / "run"
    s = run_evaluation(_config(out), progress="off")
    assert s.computed == 3 and not s.failed
    return out


def _copy(run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def _sql(path, script):
    db = sqlite3.connect(path)
    db.executescript(script)
    db.commit()
    db.close()


def _corrupt_last_pages(path):
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(len(data) - 3 * page, len(data), page):  # predictions' leaf pages
        data[start:start + 512] = b"\xa5" * 512
    path.write_bytes(bytes(data))


DAMAGE = {
    "corrupt pages": (_corrupt_last_pages, "malformed"),
    "dropped column": (lambda p: _sql(p, "ALTER TABLE predictions DROP COLUMN margin;"),
                       "table predictions has no column margin"),
    "bad JSON": (lambda p: _sql(p, "UPDATE models SET class_names_json='[\"a\", ';"),
                 "bad JSON in a row"),
    "future schema": (lambda p: _sql(p, f"PRAGMA user_version={SCHEMA_VERSION + 1};"),
                      f"store schema {SCHEMA_VERSION + 1}; this one reads up to"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", ["report", "analyze", "evaluate"])
def test_a_damaged_store_is_one_error_line_for_every_command(run, tmp_path, damage, command):
    d = _copy(run, tmp_path)
    store = d / "results.sqlite"
    fn, words = DAMAGE[damage]
    fn(store)
    before = store.read_bytes()
    argv = {"report": ["report", str(d), "--out", str(tmp_path / "rep")],
            "analyze": ["analyze", str(d), "--out", str(tmp_path / "an")],
            "evaluate": ["evaluate", "--model", "small_cnn", "--name", "cnn", "--data",
                         "synthetic", "--subset", "8", "--stressors", "gaussian_noise",
                         "--severities", "1,2", "--device", "cpu", "--out", str(d)]}[command]
    res = runner.invoke(app, argv)
    assert res.exit_code == EXIT_USAGE, res.output
    assert "Traceback" not in res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(store) in last and words in last, res.output
    assert [ln for ln in res.output.splitlines() if ln.startswith("error:")] == [last]
    assert store.read_bytes() == before  # nothing written into the damaged store


def test_a_new_store_records_its_schema_version_and_an_old_one_gets_it(run, tmp_path):
    d = _copy(run, tmp_path)
    path = d / "results.sqlite"

    def version():
        db = sqlite3.connect(path)
        v = db.execute("PRAGMA user_version").fetchone()[0]
        db.close()
        return v
    assert version() == SCHEMA_VERSION
    _sql(path, "PRAGMA user_version=0;")  # as written before versions were kept
    with ResultsStore(path, readonly=True) as st:  # read as layout 1, nothing written
        assert len(st.cells()) == 3
    assert version() == 0
    ResultsStore(path).close()
    assert version() == SCHEMA_VERSION


def test_a_cell_deleted_by_hand_leaves_no_orphan_that_blocks_the_rerun(run, tmp_path):
    d = _copy(run, tmp_path)
    path = d / "results.sqlite"
    # sqlite3's shell does not enforce foreign keys: the predictions stay behind.
    _sql(path, "DELETE FROM cells WHERE id=(SELECT max(id) FROM cells);")
    s = run_evaluation(_config(d), progress="off")
    assert (s.computed, s.skipped) == (1, 2) and not s.failed
    db = sqlite3.connect(path)
    orphans = db.execute("SELECT count(*) FROM predictions WHERE cell_id NOT IN "
                         "(SELECT id FROM cells)").fetchone()[0]
    rows = db.execute("SELECT c.n_images, count(p.idx) FROM cells c JOIN predictions p ON "
                      "p.cell_id=c.id GROUP BY c.id").fetchall()
    db.close()
    assert orphans == 0 and rows == [(8, 8)] * 3


def test_a_cell_missing_rows_is_refused_on_read_and_computed_again(run, tmp_path):
    d = _copy(run, tmp_path)
    path = d / "results.sqlite"
    _sql(path, "DELETE FROM predictions WHERE cell_id=1 AND idx < (SELECT idx FROM predictions "
               "WHERE cell_id=1 ORDER BY idx LIMIT 1 OFFSET 4);")  # the first 4 of 8 rows
    with ResultsStore(path, readonly=True) as st:
        cell = st.cells()[0]
        with pytest.raises(StoreError, match="holds 4 rows of its 8 images"):
            st.predictions(cell)
        assert not st.has_cell(cell.key)
    s = run_evaluation(_config(d), progress="off")
    assert (s.computed, s.skipped) == (1, 2)
    with ResultsStore(path, readonly=True) as st:
        assert all(len(st.predictions(c)["idx"]) == 8 for c in st.cells())


def test_a_cell_with_fewer_rows_than_its_images_is_not_written(tmp_path):
    import numpy as np
    rows = {f: np.zeros(3) for f in ("idx", "label", "pred", "conf", "p_true", "entropy",
                                      "margin")}
    rows["idx"] = np.arange(3)
    with ResultsStore(tmp_path / "results.sqlite") as st:
        st.register_model("m", spec="x", arch="x", weights_hash="h", class_names=["a", "b"])
        with pytest.raises(StoreError, match="3 rows for the 5 images"):
            st.write_cell(CellKey("m", "synthetic:test@5", "clean", 0.0), rows)
        assert st.cells(status=None) == []
        st.write_cell(CellKey("m", "synthetic:test@3", "clean", 0.0), rows)
        assert len(st.cells()) == 1
