"""Device handling that a CPU can show (the CUDA runs themselves: tests/test_cuda.py)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import failmodes as fm


def test_in_memory_model_runs_on_the_evaluation_device_and_goes_home(tmp_path, monkeypatch):
    """run_evaluation moves an in-memory model to the evaluation's device before anything
    runs it (check_attackable included) and back to its own device at the end, also when
    the evaluation fails."""
    torch.manual_seed(0)
    model = fm.models.create_model("small_cnn").eval()
    moves: list[torch.device] = []
    forwards: list[int] = []
    to = type(model).to

    def spy(self, *args, **kwargs):
        if self in (model, wrong):
            moves.append(torch.device(args[0] if args else kwargs["device"]))
        return to(self, *args, **kwargs)

    wrong = fm.models.create_model("small_cnn", num_classes=7).eval()
    monkeypatch.setattr(type(model), "to", spy)
    model.register_forward_pre_hook(lambda m, inp: forwards.append(len(moves)))
    cfg = fm.evaluate.EvalConfig(data="synthetic", subset=24, stressors=["fog"],
                                 severities=[1.0], sweeps=["pgd_linf=2"], device="cpu",
                                 out=str(tmp_path / "run"))
    fm.evaluate.run_evaluation(cfg, models={"m": model}, progress=False)
    assert moves == [torch.device("cpu"), torch.device("cpu")]  # the eval device, then home
    assert forwards and min(forwards) == 1 and max(forwards) == 1  # every forward in between

    # A model the evaluation refuses (7 classes for a 10-class data set) after the move
    # still goes home.
    moves.clear()
    with pytest.raises(fm.evaluate.EvalError, match="7 classes"):
        fm.evaluate.run_evaluation(dataclasses.replace(cfg, out=str(tmp_path / "wrong")),
                                   models={"wrong": wrong}, progress=False)
    assert moves == [torch.device("cpu"), torch.device("cpu")]
