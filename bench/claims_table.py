"""A run's claim verdicts as a Markdown table (for write-ups such as docs/seed-study.md).

    python bench/claims_table.py RUN_FOLDER [--before VERDICTS.json]

Reads ``RUN_FOLDER/analysis/claims.json`` (what the claims analysis wrote) and prints one
row per claim: its text, kind, verdict and evidence, then the counts and the family-wise
line. ``--before`` takes a JSON list of earlier verdicts in claim order (e.g.
``["supported", "contradicted", ...]``) and adds a "before → after" column.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cell(text) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def table(claims: dict, before: list[str] | None = None) -> str:
    rows = claims["tables"]["claims"]
    if before is not None and len(before) != len(rows):
        raise SystemExit(f"--before has {len(before)} verdicts for {len(rows)} claims")
    head = ["#", "claim", "kind", "verdict" if before is None else "before → after", "evidence"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows):
        verdict = f"**{r['verdict']}**"
        if before is not None:
            verdict = f"{before[i]} → {verdict}"
        lines.append("| " + " | ".join(_cell(v) for v in
                                        (i + 1, r["claim"], r["kind"], verdict, r["reason"])) + " |")
    s = claims["summary"]
    lines += ["", f"Counts: {s['supported']} supported / {s['contradicted']} contradicted / "
                  f"{s['inconclusive']} inconclusive of {s['n_claims']}.",
              "", s.get("family_wise", "")]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--before", type=Path, default=None)
    args = ap.parse_args(argv)
    path = args.run / "analysis" / "claims.json"
    if not path.is_file():
        raise SystemExit(f"error: {path} not found (has the study's claims analysis run?)")
    before = json.loads(args.before.read_text()) if args.before else None
    print(table(json.loads(path.read_text()), before))


if __name__ == "__main__":
    sys.exit(main())
