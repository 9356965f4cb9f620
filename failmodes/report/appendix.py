"""The report's last section, "Reproducibility": seed, device and versions, the resolved
study as YAML, the commands and steps that built the run, where each model came from, the
store's evaluation runs and the cells that failed."""
from __future__ import annotations

from ._collect import RunData
from ._format import fmt, table
from ._section import INTROS, Section
from .forward import forward_short


def appendix_section(run: RunData) -> Section:
    import yaml
    s = Section("appendix", "Reproducibility", intro=INTROS["appendix"])
    cfg = (run.resolved or {}).get("config")
    versions = (run.resolved or {}).get("versions") or {}
    if cfg is not None:
        s.facts.append(("seed", fmt(cfg.get("seed"))))
        s.facts.append(("device", str(cfg.get("device"))))
    s.facts += [(k, str(v)) for k, v in versions.items()]
    s.resolved_yaml = yaml.safe_dump(cfg, sort_keys=False) if cfg is not None else None
    s.commands = [{"time": c.get("time", ""), "command": c.get("command", ""),
                   "cwd": c.get("cwd", "")} for c in run.state.get("commands", [])]
    steps = [{"step": k, "status": v.get("status"), "wall s": v.get("seconds"),
              "CPU s": v.get("cpu_s"), "finished": v.get("finished"),
              "detail": (v.get("detail") or v.get("error") or "").split("\n")[0]}
             for k, v in run.state.get("steps", {}).items()]
    if steps:
        s.tables.append(table("Study steps (latest invocation that ran each)", steps))
    if run.models:
        s.tables.append(table("Models: where each came from", _provenance_rows(run.models)))
    if run.store_runs:
        s.tables.append(table("Evaluation runs recorded in the store",
                              [{"id": r["id"], "started": r["started"], "command": r["command"]}
                               for r in run.store_runs]))
    if run.failed_cells:
        s.tables.append(table("Cells that failed to evaluate", run.failed_cells))
    return s


def _provenance_rows(models: list[dict]) -> list[dict]:
    # meta["provenance"]: what failmodes.models recorded when it built the model.
    rows = []
    for m in models:
        p = (m.get("meta") or {}).get("provenance") or {}
        classes = p.get("classes") or m.get("class_names") or []
        rows.append({
            "model": m["name"], "arch": p.get("arch") or m.get("arch"),
            "forward pass": forward_short(m),
            "weights": p.get("weights") or p.get("format") or m.get("spec"),
            "file SHA-256": (p.get("weights_sha256") or "")[:16] or "—",
            "format": p.get("format") or "—",
            "mean": ", ".join(f"{v:.4g}" for v in p["mean"]) if p.get("mean") else "—",
            "std": ", ".join(f"{v:.4g}" for v in p["std"]) if p.get("std") else "—",
            "mean/std from": p.get("normalization_from") or "—",
            "classes": f"{len(classes)}: " + ", ".join(classes[:4])
                       + (", ..." if len(classes) > 4 else ""),
            "input": p.get("input_size") or "—"})
    return rows
