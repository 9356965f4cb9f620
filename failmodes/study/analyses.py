"""The steps after evaluation: the analyses, then the single-image probes; each is skipped
when its inputs (stored cells, options) are unchanged, and a failure is recorded, not raised."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from ..config import to_dict
from ..store import ResultsStore, RunFolder
from .check import analysis_options, check_analyses
from .config import ProbeSpec, StudyConfig
from .state import StudyState, one_line, say, timing, write_log


def step_fingerprint(out: Path, extra) -> str:
    """Changes whenever a cell is added or replaced, or the step's options change."""
    with ResultsStore(RunFolder(out).store, readonly=True) as st:
        stored = st.fingerprint()
    from .. import __version__
    # Through JSON once first: YAML 1.1 reads a bare `on:` (a claim's key) as True, and
    # sort_keys cannot order a bool key beside str keys; JSON makes every key a string.
    extra = json.loads(json.dumps(extra, default=str))
    blob = json.dumps([*stored, extra, __version__], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def run_analyses(cfg: StudyConfig, out: Path, state: StudyState) -> list[str]:
    """Every selected analysis, in registry order, skipping those whose inputs are unchanged."""
    from ..analysis import get_analysis
    failures = []
    for name in check_analyses(cfg):
        a = get_analysis(name)
        opts = analysis_options(cfg, a)
        key = f"analysis:{name}"
        fp = step_fingerprint(out, opts)
        prev = state.step(key)
        if prev.get("status") == "ok" and prev.get("fingerprint") == fp \
                and (RunFolder(out).analysis / f"{name}.json").is_file():
            continue
        say(cfg, f"analysis {name}")
        t, c = time.perf_counter(), time.process_time()
        try:
            a.run(out, RunFolder(out).analysis, a.parse_options(opts))
        except Exception as e:  # recorded, shown in the report and returned: never hidden
            msg = one_line(e)  # the traceback goes to a log file, never into the report
            state.set(key, status="failed", error=msg, log=write_log(out, key), fingerprint=fp,
                      **timing(t, c))
            failures.append(f"analysis {name}: {msg}")
            say(cfg, f"analysis {name} FAILED: {msg}")
            continue
        state.set(key, status="ok", fingerprint=fp, **timing(t, c))
    return failures


def probe_key(i: int, p: ProbeSpec) -> str:
    image = p.image.split(":")[-1].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return f"probe:{i:02d}-{image}-{p.stressor}"


def run_probes(cfg: StudyConfig, out: Path, state: StudyState) -> list[str]:
    failures = []
    for i, p in enumerate(cfg.probes):
        key = probe_key(i, p)
        spec = to_dict(p)
        prev = state.step(key)
        if prev.get("status") == "ok" and prev.get("spec") == spec \
                and (out / prev.get("json", "")).is_file():
            continue
        pdir = RunFolder(out).probes / key.split(":", 1)[1]
        say(cfg, f"probe {p.model} on {p.image} under {p.stressor}")
        t, c = time.perf_counter(), time.process_time()
        try:
            rel = _probe(cfg, p, pdir).relative_to(out)
        except Exception as e:  # recorded and reported like an analysis failure
            msg = one_line(e)
            state.set(key, status="failed", spec=spec, error=msg, log=write_log(out, key),
                      **timing(t, c))
            failures.append(f"probe {key}: {msg}")
            continue
        state.set(key, status="ok", spec=spec, json=str(rel),
                  **timing(t, c))
    return failures


def _probe(cfg: StudyConfig, p: ProbeSpec, pdir: Path) -> Path:
    """Run one probe into ``pdir``; returns its JSON (figures listed relative to ``pdir``)."""
    from ..analysis.probe import probe
    from ..analysis.registry import write_result
    result = probe(p.image, p.model, p.stressor, p.values, label=p.label, space=p.space,
                   seed=cfg.seed, device=cfg.device, out_dir=pdir)
    written = sorted(pdir.glob("probe*.json"))
    return written[0] if written else write_result(pdir, "probe", result)
