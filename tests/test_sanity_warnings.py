"""Obviously broken runs are loud (issue 35): a clean accuracy no better than guessing and
mean/std off the [0, 1] scale are printed by the evaluation and shown on the report's first
screen; the chance test is the exact one-sided binomial test against 1/K."""
import math

import pytest

from failmodes.evaluate import EvalConfig, run_evaluation
from failmodes.report import render_report
from failmodes.store.sanity import CHANCE_ALPHA, chance_warning, statistics_warning


def _p_reference(correct, n, k):
    # P(X >= correct), X ~ Binomial(n, 1/k), summed term by term (in logs: no overflow)
    lp, lq = math.log(1 / k), math.log(1 - 1 / k)
    return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                        + i * lp + (n - i) * lq) for i in range(correct, n + 1))


@pytest.mark.parametrize("correct, n, k, warned", [
    (1000, 10000, 10, True),    # exactly chance
    (9000, 10000, 10, False),   # a real model
    (0, 8, 10, True),           # nothing right
    (30, 200, 10, True),        # 15 % of 200: p = 0.016, not yet convincing
    (35, 200, 10, False),       # 17.5 % of 200: p = 8e-4
    (8, 8, 2, False),           # 8 of 8 on a coin flip: p = 1/256
    (6, 8, 2, True),            # 6 of 8: p = 0.145
])
def test_chance_warning_is_the_binomial_test(correct, n, k, warned):
    p = _p_reference(correct, n, k)
    assert (p >= CHANCE_ALPHA) == warned  # the known answer, from the slow sum
    w = chance_warning("m", correct, n, k)
    assert (w is not None) == warned
    if w:
        assert f"binomial p = {p:.2g}" in w and f"1/{k}" in w


def test_statistics_warning_flags_the_0_255_scale_only():
    assert statistics_warning("m", (0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616)) is None
    assert statistics_warning("m", (0, 0, 0), (1, 1, 1)) is None
    w = statistics_warning("m", (125.3, 123.0, 113.9), (63.0, 62.1, 66.7))
    assert w is not None and "0-255 scale" in w
    assert statistics_warning("m", (0.5, 0.5, 0.5), (1.2, 1.0, 1.0)) is not None  # std > 1
    assert statistics_warning("m", (-0.1, 0.5, 0.5), (0.2, 0.2, 0.2)) is not None


def test_a_random_network_and_0_255_statistics_are_loud(tmp_path, capsys):
    # small_cnn initialised from a seed and never trained: chance on the 10 synthetic classes
    cfg = EvalConfig(models={"untrained": "small_cnn",
                             "scale": {"arch": "small_cnn", "mean": [125.3, 123.0, 113.9],
                                       "std": [63.0, 62.1, 66.7]}},
                     data="synthetic", subset=200, stressors=["gaussian_noise"],
                     severities=[1.0], device="cpu", out=str(tmp_path / "run"))
    s = run_evaluation(cfg, progress="off")
    err = capsys.readouterr().err
    assert any(w.startswith("model 'untrained': clean accuracy") for w in s.warnings)
    assert any(w.startswith("model 'scale': mean (125.3") for w in s.warnings)
    for w in s.warnings:
        assert f"warning: {w}" in err
    html = render_report(tmp_path / "run", tmp_path / "rep" / "report.html").read_text()
    first = html[html.index('id="glance"'):]
    assert "Check this run before reading on" in first[:first.index("</section>")]
    assert "not above chance" in first and "0-255 scale" in first
