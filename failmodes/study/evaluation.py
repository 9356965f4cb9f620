"""The evaluation step of a study: one EvalConfig for every model and stressor; the
evaluator keeps the cells already stored."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .config import StudyConfig
from .state import StudyState, say, timing


def eval_config(cfg: StudyConfig, checkpoints: dict[str, Path], out: Path):
    """The one EvalConfig of the study: every model, the suites expanded, the sweeps as
    the study parsed them, clean train-val cells for temperature scaling."""
    from ..evaluate import EvalConfig
    from ..stressors import suite
    names: list[str] = []
    for s in cfg.suites:
        names += [n for n in suite(s) if n not in names]
    names += [n for n in cfg.stressors if n not in names]
    tta = {m.name: m.tta for m in cfg.models if m.tta is not None}
    models = {n: p if isinstance(p, dict) else
              ({"weights": str(p), "tta": tta[n]} if n in tta else str(p))
              for n, p in checkpoints.items()}
    return EvalConfig(models=models, data=cfg.data,
                      split=cfg.split, subset=cfg.subset, stressors=names,
                      severities=[float(s) for s in cfg.severities],
                      sweeps={k: list(v) for k, v in cfg.sweeps.items()},
                      seed=cfg.seed, batch_size=cfg.batch_size, device=cfg.device,
                      include_val=True, val_subset=cfg.val_subset, official=cfg.official,
                      finish=cfg.finish, image_size=cfg.image_size,
                      channels_last=cfg.channels_last, autocast=cfg.autocast, out=str(out))


def evaluate_all(cfg: StudyConfig, checkpoints: dict[str, Any], out: Path, state: StudyState,
                 command: str | None, prebuilt: dict | None = None) -> list[str]:
    from ..evaluate import run_evaluation
    ec = eval_config(cfg, checkpoints, out)
    n_models = len(checkpoints) + len(prebuilt or {})
    say(cfg, f"evaluating {n_models} model(s) on {len(ec.stressors)} stressors × "
         f"{len(ec.severities)} severities + {len(ec.sweeps)} sweep(s) (stored cells are kept)")
    t, c = time.perf_counter(), time.process_time()
    summary = run_evaluation(ec, models=prebuilt or None,
                             command=f"{command or 'run_study'}  # evaluate step")
    failed = [f"cell {f['cell']['model']} {f['cell']['stressor']} {f['cell']['severity']:g}: "
              f"{f['error']}" for f in summary.failed]
    state.set("evaluate", status="ok" if not failed else "partial",
              **timing(t, c),
              detail=f"{summary.computed} cells computed, {summary.skipped} kept, "
                     f"{len(failed)} failed")
    return failed
