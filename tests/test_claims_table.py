"""bench/claims_table.py: a run's claim verdicts as Markdown, with a before → after column."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CLAIMS = {"summary": {"n_claims": 2, "supported": 1, "contradicted": 1, "inconclusive": 0,
                      "family_wise": "2 claims, each decided at 95 %"},
          "tables": {"claims": [
              {"claim": "r18 loses about 43 points | contrast", "kind": "drop",
               "verdict": "contradicted", "reason": "measured 62.0 (CI 59.5 to 64.5)"},
              {"claim": "fog collapses", "kind": "regime", "verdict": "supported",
               "reason": "threshold-collapse in 100 % of resamples"}]}}


def _run(tmp_path, *extra):
    (tmp_path / "analysis").mkdir(exist_ok=True)
    (tmp_path / "analysis" / "claims.json").write_text(json.dumps(CLAIMS))
    return subprocess.run([sys.executable, str(ROOT / "bench" / "claims_table.py"),
                           str(tmp_path), *extra], capture_output=True, text=True)


def test_one_row_per_claim_with_counts_and_escaped_pipes(tmp_path):
    r = _run(tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 3  # header + 2 claims
    assert "| 1 | r18 loses about 43 points \\| contrast | drop | **contradicted** |" in rows[1]
    assert "Counts: 1 supported / 1 contradicted / 0 inconclusive of 2." in r.stdout


def test_before_column_and_a_wrong_length_is_refused(tmp_path):
    before = tmp_path / "before.json"
    before.write_text(json.dumps(["supported", "contradicted"]))
    r = _run(tmp_path, "--before", str(before))
    assert "| supported → **contradicted** |" in r.stdout
    assert "| contradicted → **supported** |" in r.stdout
    before.write_text(json.dumps(["supported"]))
    r = _run(tmp_path, "--before", str(before))
    assert r.returncode != 0 and "1 verdicts for 2 claims" in r.stderr
