"""The report's adversarial section against a store whose attack numbers are set here
(known answers): robust accuracy per ε, the stored success rate and loss, the settings from
the stressor registry, ε in natural units, the first screen's line, and that attacks are
never paired across models."""
from __future__ import annotations

import csv
import dataclasses
import json
import re

import numpy as np
import pytest

from failmodes.analysis import registry
from failmodes.report import render_report
from failmodes.report._collect import collect_run
from failmodes.report.adversarial import NOT_PAIRED, attack_rows, settings
from failmodes.store import CellKey, ResultsStore

N = 200
EVIL_MODEL = "net-<b>&"
# model -> (clean correct, {attack: {ε: (correct, loss, success rate, clean-correct)}})
CELLS = {
    "net-a": (180, {"pgd_linf": {0.0: (180, 0.30, 0.0, 180), 2.0: (120, 1.10, 0.3333, 180),
                                 4.0: (40, 2.50, 0.7778, 180)},
                    "fgsm_linf": {4.0: (90, 1.70, 0.5, 180)},
                    "pgd_linf[steps=20]": {4.0: (30, 2.75, 0.8333, 180)},
                    "pgd_l2": {0.25: (150, 0.80, 0.1667, 180), 0.5: (100, 1.40, 0.4444, 180)}}),
    EVIL_MODEL: (160, {"pgd_linf": {2.0: (130, 0.90, 0.1875, 160),
                                    4.0: (70, 1.90, 0.5625, 160)}}),
}


def _write(path) -> None:
    labels = np.arange(N) % 3
    rows = lambda k: {"idx": np.arange(N), "label": labels,  # noqa: E731
                      "pred": np.where(np.arange(N) < k, labels, (labels + 1) % 3),
                      "conf": np.full(N, 0.8), "p_true": np.full(N, 0.5),
                      "entropy": np.full(N, 0.5), "margin": np.full(N, 0.3)}
    with ResultsStore(path) as st:
        st.start_run("failmodes evaluate --fake", {}, {})
        for m, (clean, attacks) in CELLS.items():
            st.register_model(m, spec="fake", arch="fake", weights_hash=m,
                              class_names=["a", "b", "c"])
            st.write_cell(CellKey(m, "fake:test", "clean", 0.0), rows(clean))
            for k in range(1, 6):   # one corruption, paired like the real grid
                st.write_cell(CellKey(m, "fake:test", "fog", float(k)), rows(clean - 20 * k))
            for name, by_eps in attacks.items():
                for eps, (k, loss, success, right) in by_eps.items():
                    st.write_cell(CellKey(m, "fake:test", name, eps), rows(k), attack={
                        "loss": loss, "success_rate": success, "n_clean_correct": right})


@pytest.fixture
def run(tmp_path, monkeypatch):
    reg = {n: dataclasses.replace(registry.get_analysis(n), title=n.title(),
                                  fn=lambda *a, **k: None, order=i)
           for i, n in enumerate(("metrics", "curves"))}
    monkeypatch.setattr(registry, "_REGISTRY", reg)
    run = tmp_path / "run"
    run.mkdir()
    _write(run / "results.sqlite")
    return run


def _section(html: str, sid: str) -> str:
    return html[html.index(f'<section id="{sid}">'):].split("</section>")[0]


def test_rows_are_the_stored_numbers(run):
    rows = attack_rows(collect_run(run))
    assert len(rows) == sum(len(v) for _, a in CELLS.values() for v in a.values())
    for r in rows:
        k, loss, success, right = CELLS[r["model"]][1][r["attack"]][r["eps"]]
        assert r["accuracy"] == pytest.approx(k / N) and r["n"] == N
        assert (r["loss"], r["success_rate"], r["n_clean_correct"]) == (loss, success, right)
        assert r["norm"] == ("l2" if r["attack"] == "pgd_l2" else "linf")
    assert [r["model"] for r in rows][:1] == ["net-a"]          # study order, then ε


def test_settings_come_from_the_registry():
    pgd, fgsm = settings("pgd_linf"), settings("fgsm_linf")
    assert (pgd.steps, pgd.step, pgd.restarts, pgd.random_start) == (10, "2.5·ε/10", 1, True)
    assert (fgsm.steps, fgsm.step, fgsm.random_start) == (1, "ε", False)
    assert settings("pgd_linf[steps=20]").step == "2.5·ε/20"
    fixed = settings("pgd_l2[step=0.1,restarts=3,random_start=0]")
    assert (fixed.step, fixed.restarts, fixed.random_start) == ("0.1", 3, False)
    assert settings("pgd_linf").step_at(4) == "1/255" and settings("pgd_l2").step_at(0.5) == "0.125"
    assert settings("no_such_attack") is None


def test_section_tables_figure_and_first_screen(run):
    html = render_report(run).read_text()
    sec = _section(html, "adversarial")
    assert NOT_PAIRED.split(":")[0] in sec and "not paired across models" in sec
    assert sec.count("<img") == 1                                   # one figure, all attacks
    cells = [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr,
                                                                     re.S)]
             for tr in re.findall(r"<tr>(.*?)</tr>", sec, re.S)]
    by = {(c[0], c[1], c[2]): c for c in cells if len(c) == 9}
    # ε in natural units: L∞ in /255 grey levels, L2 in pixel units.
    assert by[("net-a", "pgd_linf", "4/255")][3:] == ["20.0 %", "77.8 %", "2.5", "180", "200",
                                                     "1/255"]
    assert by[("net-a", "pgd_l2", "0.5")][3:6] == ["50.0 %", "44.4 %", "1.4"]
    assert by[("net-a", "fgsm_linf", "4/255")][8] == "4/255"        # FGSM: one step of ε
    assert by[("net-&lt;b&gt;&amp;", "pgd_linf", "2/255")][3:5] == ["65.0 %", "18.8 %"]
    assert EVIL_MODEL not in html                                   # model names are data
    settings_rows = {c[0]: c for c in cells if len(c) == 7}
    assert settings_rows["pgd_linf[steps=20]"][3:] == ["20", "2.5·ε/20", "1", "yes"]
    assert settings_rows["fgsm_linf"][3:] == ["1", "ε", "1", "no"]
    assert settings_rows["pgd_l2"][1:3] == ["L2", "0.25, 0.5"]
    # Never paired: the comparison's paired tests cover the corruption only.
    comp = _section(html, "comparison")
    assert "fog" in comp and "pgd" not in comp and "fgsm" not in comp
    # First screen: of each attack's largest ε, the lowest accuracy (net-a: PGD-20 at 4/255).
    glance = _section(html, "glance")
    assert "robust accuracy under white-box attack" in glance
    assert "15.0 %" in glance and "pgd_linf[steps=20] at ε = 4/255" in glance
    assert "35.0 %" in glance and "attack success 56.2 %" in glance
    assert 'href="#adversarial"' in glance
    # Machine-readable: the same rows in results.json and tables/adversarial.csv.
    res = json.loads((run / "results.json").read_text())
    assert len(res["attacks"]) == len(by)
    with open(run / "tables" / "adversarial.csv") as f:
        got = {(r["model"], r["attack"], float(r["eps"])): r for r in csv.DictReader(f)}
    assert float(got[("net-a", "pgd_l2", 0.25)]["success_rate"]) == pytest.approx(0.1667)


def test_no_attacks_no_line(run, tmp_path):
    other = tmp_path / "plain"
    other.mkdir()
    with ResultsStore(other / "results.sqlite") as st:
        st.register_model("m", spec="fake", arch="fake", weights_hash="m", class_names=["a"])
        st.write_cell(CellKey("m", "fake:test", "clean", 0.0), {
            "idx": np.arange(4), "label": np.zeros(4, int), "pred": np.zeros(4, int),
            "conf": np.ones(4), "p_true": np.ones(4), "entropy": np.zeros(4),
            "margin": np.ones(4)})
    html = render_report(other).read_text()
    assert "white-box attack" not in _section(html, "glance")
    assert "no attack cells" in _section(html, "adversarial")
