"""The results store and the typed config loader."""
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from failmodes.config import ConfigError, from_dict, load_yaml, override
from failmodes.store import CellKey, ResultsStore, StoreError, per_image_rows


def _rows(n=50, c=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return per_image_rows(torch.randn(n, c, generator=g), torch.randint(0, c, (n,), generator=g),
                          torch.arange(n))


def test_per_image_rows_match_definitions():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
    r = per_image_rows(logits, torch.tensor([0, 1]), torch.tensor([7, 9]))
    p = torch.softmax(logits, 1)
    assert r["pred"].tolist() == [0, 2] and r["idx"].tolist() == [7, 9]
    assert np.allclose(r["conf"], p.max(1).values) and np.allclose(r["p_true"], [p[0, 0], p[1, 1]])
    assert np.allclose(r["entropy"], -(p * p.log()).sum(1))
    assert np.allclose(r["margin"], [p[0, 0] - p[0, 1], p[1, 2] - p[1, 0]])


def test_store_round_trip_resume_and_failures(tmp_path):
    s = ResultsStore(tmp_path / "r.sqlite")
    s.register_model("m", spec="small_cnn", arch="small_cnn", weights_hash="h",
                     class_names=list("abcdefghij"))
    k = CellKey("m", "synthetic:test", "fog", 3.0, 0)
    assert not s.has_cell(k)
    rows = _rows()
    s.write_cell(k, rows)
    assert s.has_cell(k)
    got = s.predictions(s.cells()[0], logits=True)
    assert np.array_equal(got["pred"], rows["pred"]) and np.allclose(got["logits"], rows["logits"])
    acc = s.accuracy_table()[0]["accuracy"]
    assert acc == pytest.approx((rows["pred"] == rows["label"]).mean())
    s.mark_failed(CellKey("m", "synthetic:test", "snow", 1.0), "NaN logits in batch 0")
    assert [c.stressor for c in s.cells(status="failed")] == ["snow"]
    s.write_cell(k, rows)  # rewriting a cell replaces it
    assert len(s.cells()) == 1 and len(s.predictions(s.cells()[0])["idx"]) == 50


def test_store_refuses_same_name_other_weights_and_junk_files(tmp_path):
    s = ResultsStore(tmp_path / "r.sqlite")
    s.register_model("m", spec="x", arch="x", weights_hash="a", class_names=["a"])
    assert s.register_model("m", spec="x", arch="x", weights_hash="a", class_names=["a"]) == 1
    with pytest.raises(StoreError, match="other weights"):
        s.register_model("m", spec="x", arch="x", weights_hash="b", class_names=["a"])
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable results store"):
        ResultsStore(junk)
    with pytest.raises(StoreError, match="no results store"):
        ResultsStore(tmp_path / "absent.sqlite", readonly=True)


def test_a_half_written_cell_is_absent(tmp_path):
    s = ResultsStore(tmp_path / "r.sqlite")
    s.register_model("m", spec="x", arch="x", weights_hash="a", class_names=list("abcdefghij"))
    rows = _rows()
    rows["conf"] = rows["conf"][:10]  # breaks mid-insert
    with pytest.raises(IndexError):
        s.write_cell(CellKey("m", "d", "fog", 1.0), rows)
    assert s.cells() == [] and s.db.execute("SELECT count(*) FROM predictions").fetchone()[0] == 0


@dataclass
class Inner:
    k: int = 1


@dataclass
class Cfg:
    lr: float = 0.1
    name: str = "x"
    tags: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    cap: int | None = None


def test_config_checks_keys_and_types(tmp_path):
    c = from_dict(Cfg, {"lr": 1, "tags": ["a"], "inner": {"k": 3}})
    assert c.lr == 1.0 and c.inner.k == 3
    with pytest.raises(ConfigError, match="unknown key.*lrr"):
        from_dict(Cfg, {"lrr": 0.1})
    with pytest.raises(ConfigError, match="config.name: expected str"):
        from_dict(Cfg, {"name": 3})
    with pytest.raises(ConfigError, match="inner.k"):
        from_dict(Cfg, {"inner": {"k": "three"}})
    f = tmp_path / "c.yaml"
    f.write_text("lr: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(Cfg, f)
    assert override(c, lr=None, name="y").name == "y"
    with pytest.raises(ConfigError, match="--lr"):
        override(c, lr="fast")
