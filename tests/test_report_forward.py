"""The report says which forward pass each model was evaluated with (issue 18): the plain
network by default, flip test-time augmentation only when the model source asked for it,
on the model's first-screen card and in the appendix's provenance table."""
import html

import pytest
from typer.testing import CliRunner

from failmodes.cli import app
from failmodes.report import render_report
from failmodes.report.forward import PLAIN, forward_of, forward_short

FLIP = ("evaluated with flip test-time augmentation (mean logits of each image and its "
        "mirror; Grad-CAM explains the plain network)")


def test_forward_is_read_from_the_store_record():
    plain = {"name": "a", "arch": "small_cnn", "meta": {"provenance": {"arch": "small_cnn"}}}
    flip = {"name": "b", "arch": "small_cnn+flip-tta",
            "meta": {"provenance": {"arch": "small_cnn", "tta": "flip"}}}
    old = {"name": "c", "arch": "small_cnn+flip-tta", "meta": {}}  # no provenance: the arch says
    assert forward_of(plain) == PLAIN and forward_short(plain) == "plain"
    assert forward_of(flip) == FLIP and forward_short(flip) == "flip TTA"
    assert forward_of(old) == FLIP
    assert forward_of({"name": "d"}) == PLAIN  # a bare record: nothing says TTA


@pytest.mark.parametrize("tta, sentence, short", [(None, PLAIN, "plain"),
                                                   ("flip", FLIP, "flip TTA")])
def test_report_states_the_evaluated_forward(tmp_path, tta, sentence, short):
    out = tmp_path / "run"
    args = ["evaluate", "--model", "small_cnn", "--arch-arg", "width=8", "--data", "synthetic",
            "--subset", "8", "--stressors", "contrast", "--severities", "2", "--device", "cpu",
            "--out", str(out)] + (["--tta", tta] if tta else [])
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    page = html.unescape(render_report(out, tmp_path / "rep" / "report.html").read_text())
    assert f'<p class="forward">{sentence}</p>' in page          # the model card
    assert f"<td>{short}</td>" in page                           # the provenance table
    other = FLIP if tta is None else PLAIN
    assert other not in page
