"""Do two run folders hold the same numbers? Used to show that a refactor changed no output:
run the demo before and after (`failmodes run --preset demo --out A`, then `--out B`) and

    python bench/same_numbers.py A B

It compares every per-image row of the two stores (models, cells, predictions, temperatures,
attack stats), every value of `results.json` and `analysis/*.json`, every CSV under `tables/`
and `analysis/`, and `summary.md`, ignoring only what must differ between two runs (wall
times, timestamps, absolute paths). Prints one JSON object: per part, how many values were
compared and the first differences; exits 1 when anything differs.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sqlite3
import sys
from pathlib import Path

# Keys whose values differ between two honest runs of the same study.
VOLATILE = re.compile(r"(^|_)(generated|created|started|finished|time|timestamp|wall|seconds|"
                      r"elapsed|duration|path|dir|root|out|host|pid|versions?|python|torch|"
                      r"platform|cpu|threads|load|bytes|report|spec|checkpoint|weights)(_|$)|_s$|"
                      # a checkpoint file embeds its run folder, so its hash differs between
                      # two runs of the same weights; the predictions are compared instead
                      r"^weights_sha256$", re.I)


def _flatten(x, prefix: str, out: dict) -> dict:
    if isinstance(x, dict):
        for k, v in x.items():
            if not VOLATILE.search(str(k)):
                _flatten(v, f"{prefix}.{k}", out)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = x
    return out


def _same(a, b, tol: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return abs(a - b) <= tol * max(1.0, abs(a), abs(b))
    if isinstance(a, str) and isinstance(b, str):
        return _scrub(a) == _scrub(b)
    return a == b


def _scrub(s: str) -> str:
    # Absolute paths of the two run folders and durations inside sentences.
    s = re.sub(r"/\S+", "<path>", s)
    s = re.sub(r"`[^`]*`", "<name>", s) if s.startswith("Run folder") else s
    s = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "<date>", s)
    return re.sub(r"\b\d+(\.\d+)? ?(s|min|ms)\b", "<dur>", s)


def _compare(a: dict, b: dict, tol: float) -> dict:
    common = sorted(set(a) & set(b), key=str)
    diffs = [{"key": k, "a": a[k], "b": b[k]} for k in common if not _same(a[k], b[k], tol)]
    only_a, only_b = sorted(set(a) - set(b), key=str), sorted(set(b) - set(a), key=str)
    # A value present on one side only is a difference too ("differ" counts it); the
    # split says whether a run lost or gained outputs (a new analysis) or changed any.
    return {"compared": len(common), "changed": len(diffs),
            "only_in_a": len(only_a), "only_in_b": len(only_b),
            "differ": len(diffs) + len(only_a) + len(only_b), "first": diffs[:10],
            "first_only_in_a": only_a[:5], "first_only_in_b": only_b[:5]}


def _store(run: Path) -> dict:
    con = sqlite3.connect(f"file:{run / 'results.sqlite'}?mode=ro", uri=True)
    out: dict = {}
    tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
    for t in sorted(tables):
        cols = [r[1] for r in con.execute(f"pragma table_info({t})")]
        keep = [c for c in cols if not VOLATILE.search(c) and c not in ("id", "rowid")]
        if not keep:
            continue
        rows = con.execute(f"select {', '.join(keep)} from {t}").fetchall()
        for i, row in enumerate(sorted(rows, key=repr)):
            for c, v in zip(keep, row):
                key = f"{t}[{i}].{c}"
                if isinstance(v, str) and v[:1] in "{[":
                    try:
                        _flatten(json.loads(v), key, out)
                        continue
                    except ValueError:
                        pass
                out[key] = v if not isinstance(v, bytes) else v.hex()
    con.close()
    return out


def _json_files(run: Path) -> dict:
    out: dict = {}
    for p in [run / "results.json", *sorted((run / "analysis").glob("*.json"))]:
        if p.is_file():
            _flatten(json.loads(p.read_text()), p.name, out)
    return out


def _csv_files(run: Path) -> dict:
    out: dict = {}
    for p in sorted([*run.glob("tables/*.csv"), *run.glob("analysis/*.csv")]):
        with open(p, newline="") as f:
            for i, row in enumerate(csv.DictReader(f)):
                for k, v in row.items():
                    if not VOLATILE.search(str(k)):
                        try:
                            out[f"{p.parent.name}/{p.name}[{i}].{k}"] = float(v)
                        except (TypeError, ValueError):
                            out[f"{p.parent.name}/{p.name}[{i}].{k}"] = v
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--tol", type=float, default=0.0,
                    help="relative tolerance for floats (default 0: bit-identical)")
    args = ap.parse_args()
    parts = {
        "store": _compare(_store(args.a), _store(args.b), args.tol),
        "json": _compare(_json_files(args.a), _json_files(args.b), args.tol),
        "csv": _compare(_csv_files(args.a), _csv_files(args.b), args.tol),
    }
    sa, sb = (r / "summary.md" for r in (args.a, args.b))
    if sa.is_file() or sb.is_file():
        la = sa.read_text().splitlines() if sa.is_file() else []
        lb = sb.read_text().splitlines() if sb.is_file() else []
        parts["summary_md"] = _compare({i: _scrub(s) for i, s in enumerate(la)},
                                       {i: _scrub(s) for i, s in enumerate(lb)}, 0.0)
    same = all(p["differ"] == 0 for p in parts.values())
    print(json.dumps({"bench": "same_numbers", "a": str(args.a), "b": str(args.b),
                      "same": same, "parts": parts}, indent=1, default=str))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
