"""Read what a run folder holds (store, analysis JSON, study state, probes) into plain data
for the report. Nothing here computes an analysis; it only reads and groups."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis.registry import list_analyses
from ..analysis.result import AnalysisResult
from ..store import ANALYSIS_DIR, ResultsStore, RunFolder


@dataclass
class AnalysisView:
    """One analysis section: ``status`` is ok | failed | missing | skipped | unavailable."""

    name: str
    title: str
    status: str
    result: AnalysisResult | None = None     # set when status is ok
    message: str = ""
    seconds: float | None = None
    base: Path | None = None      # the folder its JSON is in: figure paths are relative to it


def analysis_json(run_dir: Path, name: str) -> Path | None:
    # Where analyses write (`failmodes analyze` / `calibrate` default, and the study runner);
    # a JSON directly in the run folder (e.g. `failmodes cam RUN`) is read too.
    for d in (RunFolder(run_dir).analysis, Path(run_dir)):
        if (d / f"{name}.json").is_file():
            return d / f"{name}.json"
    return None


@dataclass
class RunData:
    run_dir: Path
    title: str
    models: list[dict]
    acc: list[dict]               # one row per done cell of the main dataset
    dataset: str | None           # the main dataset key (the one with the most cells)
    other_datasets: dict          # dataset key -> cells (e.g. the clean train-val split)
    failed_cells: list[dict]
    store_runs: list[dict]        # the store's own `runs` table (commands, versions)
    analyses: list[AnalysisView]
    state: dict
    resolved: dict | None
    probes: list[dict]
    # The store's attack statistics (loss, success rate) of the main dataset's attack cells.
    attacks: list[dict] = field(default_factory=list)

    @property
    def model_names(self) -> list[str]:
        return [m["name"] for m in self.models]

    def analysis(self, name: str) -> AnalysisView | None:
        return next((a for a in self.analyses if a.name == name), None)

    def ok(self, name: str) -> AnalysisResult | None:
        a = self.analysis(name)
        return a.result if a is not None and a.status == "ok" else None

    @property
    def baseline(self) -> str | None:
        cfg = (self.resolved or {}).get("config", {})
        names = self.model_names
        if cfg.get("baseline") in names:
            return cfg["baseline"]
        return names[0] if names else None


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as e:
        return {"__error__": f"{Path(path).name} is unreadable ({e})"}


def load_state(run_dir: Path) -> dict:
    return read_json(RunFolder(run_dir).state) or {}


def collect_run(run_dir: str | Path) -> RunData:
    """Everything the report shows about ``run_dir``; a run without a store still renders."""
    run_dir = Path(run_dir)
    state = load_state(run_dir)
    resolved = read_json(RunFolder(run_dir).resolved)
    models, acc, failed, store_runs, attacks = [], [], [], [], []
    store_path = RunFolder(run_dir).store
    if store_path.exists():
        with ResultsStore(store_path, readonly=True) as store:
            models = store.models()
            acc = store.accuracy_table()
            failed = [{"model": c.model, "stressor": c.stressor, "severity": c.severity,
                       "error": c.error} for c in store.cells(status="failed")]
            store_runs = store.runs()
            attacks = store.attack_stats()
    counts: dict[str, int] = {}
    for r in acc:
        counts[r["dataset"]] = counts.get(r["dataset"], 0) + 1
    # The evaluated split has every stressed cell; others (the clean train-val cells kept
    # for temperature scaling) are reported by the analyses that use them.
    main = max(counts, key=counts.__getitem__) if counts else None
    cfg = (resolved or {}).get("config", {})
    title = cfg.get("name") or run_dir.name
    return RunData(run_dir=run_dir, title=title, models=models,
                   acc=[r for r in acc if r["dataset"] == main], dataset=main,
                   other_datasets={d: n for d, n in counts.items() if d != main},
                   failed_cells=failed,
                   store_runs=store_runs, analyses=_analysis_views(run_dir, state, cfg),
                   state=state, resolved=resolved, probes=_probes(run_dir, state),
                   attacks=[a for a in attacks if a["dataset"] == main])


def _analysis_views(run_dir: Path, state: dict, cfg: dict) -> list[AnalysisView]:
    steps = state.get("steps", {})
    selected = cfg.get("analyses")  # None = all
    views, seen = [], set()
    for a in list_analyses():
        seen.add(a.name)
        views.append(_view(run_dir, a.name, a.title, steps.get(f"analysis:{a.name}"),
                           selected is None or a.name in selected))
    # An analysis JSON from a module this installation lacks still shows what it found.
    for p in sorted(run_dir.glob("*.json")) + sorted((run_dir / ANALYSIS_DIR).glob("*.json")):
        res = read_json(p)
        if p.stem not in seen and isinstance(res, dict) and {"name", "per_model"} <= set(res):
            views.append(_view(run_dir, p.stem, p.stem.replace("_", " ").title(),
                               steps.get(f"analysis:{p.stem}"), True))
    return views


def failure_line(run_dir: Path, step: dict) -> str:
    """One line for a failed step: its error's first line (a run written before issue 35
    kept a traceback there) and where the full traceback is; never a traceback itself."""
    error = str(step.get("error") or "unknown error").strip()
    first = error.splitlines()[0] if error else "unknown error"
    log = step.get("log")
    if log:
        return f"{first} (traceback: {Path(run_dir) / log})"
    more = " (the traceback's tail is in study_state.json)" if "\n" in error else ""
    return first + more


def _view(run_dir: Path, name: str, title: str, step: dict | None, selected: bool) -> AnalysisView:
    seconds = step.get("seconds") if step else None
    if step and step.get("status") == "failed":
        # A JSON left over from an earlier run would be stale: show the failure, not it.
        return AnalysisView(name, title, "failed", message=failure_line(run_dir, step),
                            seconds=seconds)
    path = analysis_json(run_dir, name)
    res = read_json(path) if path else None
    if isinstance(res, dict) and "__error__" in res:
        return AnalysisView(name, title, "failed", message=failure_line(
            run_dir, {"error": res["__error__"]}), seconds=seconds)
    if res is not None and path is not None:
        try:
            typed = AnalysisResult.from_dict(res)
        except (KeyError, TypeError) as e:  # written by an older failmodes: say so, not guess
            return AnalysisView(name, title, "failed", seconds=seconds,
                                message=f"{path.name} is not an AnalysisResult ({e}); re-run "
                                        f"the {name} analysis with this version")
        return AnalysisView(name, title, "ok", result=typed, seconds=seconds, base=path.parent)
    if not selected:
        return AnalysisView(name, title, "skipped",
                            message="This study's `analyses` list leaves it out.")
    return AnalysisView(name, title, "missing",
                        message=f"The {name} analysis has not run on this run folder yet.")


def _probes(run_dir: Path, state: dict) -> list[dict]:
    out = []
    steps = state.get("steps", {})
    for key in sorted(k for k in steps if k.startswith("probe:")):
        st = steps[key]
        entry = {"key": key, "status": st.get("status"), "error": st.get("error"),
                 "spec": st.get("spec", {}), "result": None,
                 "dir": str(Path(st["json"]).parent) if st.get("json") else ""}
        if st.get("status") == "ok" and st.get("json"):
            entry["result"] = read_json(run_dir / st["json"])
        out.append(entry)
    return out


def finite(x) -> float | None:
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) \
        else None
