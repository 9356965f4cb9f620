"""The training step of a study: each model's checkpoint, given, trained earlier (and
still matching its recipe) or trained now."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from .._atomic import write_text_atomic
from ..config import override, to_dict
from ..models import ModelSource
from ..store import FINAL_CHECKPOINT, HISTORY_NAME, TRAIN_CONFIG_NAME, RunFolder
from .config import StudyConfig, StudyError
from .state import StudyState, say, timing


def train_one(cfg: StudyConfig, spec, out: Path, state: StudyState) -> Path | dict:
    """The checkpoint of one model: given, already trained, or trained now (resuming a
    killed run from its last epoch)."""
    model_dir = RunFolder(out).models / spec.name
    key = f"train:{spec.name}"
    if spec.weights is not None:
        model_spec = _weights_spec(spec)
        if state.step(key).get("checkpoint") != model_spec["weights"]:
            state.set(key, status="ok", source="weights", checkpoint=model_spec["weights"],
                      seconds=0.0)
        return model_spec
    if spec.checkpoint is not None:
        ckpt = Path(spec.checkpoint).expanduser().resolve()
        if not ckpt.is_file():
            raise StudyError(f"models[{spec.name}].checkpoint {spec.checkpoint} not found")
        if state.step(key).get("checkpoint") != str(ckpt):
            _copy_history(ckpt, model_dir)
            state.set(key, status="ok", source="checkpoint", checkpoint=str(ckpt), seconds=0.0)
        return ckpt
    from ..train import train_model
    from ..train.recipes import changed_fields
    tc = train_config(cfg, spec)
    final = model_dir / FINAL_CHECKPOINT
    if final.is_file():
        saved = (json.loads((model_dir / TRAIN_CONFIG_NAME).read_text()).get("config", {})
                 if (model_dir / TRAIN_CONFIG_NAME).is_file() else {})
        now = to_dict(tc)
        diff = changed_fields(saved, tc) if saved else []
        if diff:
            what = ", ".join(f"{k}={saved.get(k)!r} (now {now[k]!r})" for k in diff)
            raise StudyError(f"models[{spec.name}]: {final} was trained with {what}; give the "
                             f"model a new name, or delete {model_dir} to retrain it")
        if state.step(key).get("status") != "ok":
            state.set(key, status="ok", source=f"recipe {spec.recipe} (trained earlier)",
                      checkpoint=str(final.relative_to(out)), seconds=None)
        return final
    say(cfg, f"training {spec.name}: {spec.arch} with {spec.recipe}, {tc.epochs} epochs"
         + (f" on {tc.subset} images" if tc.subset else ""))
    t, c = time.perf_counter(), time.process_time()
    result = train_model(tc, model_dir, resume=True)
    state.set(key, status="ok", source=f"recipe {spec.recipe}",
              checkpoint=str(Path(result.checkpoint).relative_to(out)),
              **timing(t, c), detail=f"{tc.epochs} epochs")
    return Path(result.checkpoint)


def train_config(cfg: StudyConfig, spec):
    """The TrainConfig of one study model: its recipe with the model's and study's overrides."""
    from ..train import load_recipe
    return override(load_recipe(spec.recipe), model=spec.arch, width=spec.width,
                    epochs=spec.epochs, subset=spec.train_subset, batch_size=spec.batch_size,
                    lr=spec.lr, test_subset=spec.test_subset, data=cfg.data, seed=cfg.seed,
                    device=cfg.device, image_size=cfg.image_size)


def _weights_spec(spec) -> dict:
    """The evaluate spec of a study model given by its weights (no training)."""
    from ..models import absolute_model_spec
    from ..models.weights import file_kind
    path = Path(spec.weights).expanduser()
    if not path.is_file():
        raise StudyError(f"models[{spec.name}].weights {spec.weights} not found")
    out: dict[str, Any] = {"weights": str(path)}
    if file_kind(path) in ("torch", "safetensors"):  # a state dict: the network is arch
        out["arch"] = spec.arch
    args = dict(spec.arch_args)
    if spec.width is not None:
        args.setdefault("width", spec.width)
    if args:
        out["arch_args"] = args
    for k in (f.name for f in dataclasses.fields(ModelSource)):  # the rest of the source
        if k not in ("arch", "weights", "arch_args") and getattr(spec, k) is not None:
            out[k] = getattr(spec, k)
    return absolute_model_spec(out)


def _copy_history(ckpt: Path, model_dir: Path) -> None:
    # A checkpoint trained elsewhere carries its per-epoch history: keep it for the report.
    from ..models import load_checkpoint
    _, payload = load_checkpoint(ckpt)
    if payload.get("history"):
        write_text_atomic(model_dir / HISTORY_NAME, json.dumps(payload["history"], indent=1))
