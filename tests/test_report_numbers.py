"""Numbers beside verdicts in the report (statistics review 2026-12-06, N9 and 2(d)): one name
per mean, and comparison whiskers that agree with the flags the table prints (Holm)."""
from pathlib import Path

import numpy as np

from failmodes.report.comparison import delta_rows, model_facts


def _rows(n_corr: int, n_extra: int) -> list[dict]:
    from failmodes.stressors import suite
    bench = list(suite("cifar10-c"))[:n_corr]
    extra = [s for s in suite("all") if s not in suite("cifar10-c")][:n_extra]
    rows = [{"model": "m", "dataset": "d", "stressor": "clean", "severity": 0.0, "n": 100,
             "accuracy": 0.9}]
    rows += [{"model": "m", "dataset": "d", "stressor": s, "severity": float(v), "n": 100,
              "accuracy": 0.7} for s in bench + extra for v in range(1, 6)]
    return rows


def test_the_mean_over_every_corruption_names_its_count():
    (f,) = model_facts(_rows(15, 4))
    assert f["n_corruptions"] == 19 and f["n_corruption_cells"] == 95
    assert f["mean_label"] == "mean accuracy, 19 corruptions"
    (g,) = model_facts(_rows(3, 0))
    assert g["mean_label"] == "mean accuracy, 3 corruptions"


def test_no_rendered_text_calls_two_means_by_one_name():
    # "mean corruption accuracy" named both the 19-corruption mean and the 15-benchmark mCA.
    pkg = Path(__file__).resolve().parents[1] / "failmodes"
    roots = [pkg / "report", pkg / "analysis" / "claims", pkg / "analysis" / "metrics"]
    for p in [f for r in roots for f in list(r.rglob("*.py")) + list(r.rglob("*.j2"))]:
        assert "mean corruption acc" not in p.read_text().lower(), p


def _family(rng, effects, n=2000):
    """Per corruption, per-image paired differences in {-1, 0, 1} with a given mean."""
    from failmodes.stressors import suite
    out = {}
    for name, e in zip(suite("all"), effects):
        u = rng.random(n)
        out[name] = np.where(u < 0.08 + e / 2, 1.0, np.where(u > 0.92 + e / 2, -1.0, 0.0))
    return out


def test_whiskers_are_holm_consistent():
    # Review item 9: impulse, glass blur, contrast had whiskers excluding 0 with Holm p 0.51,
    # 0.59, 0.10. One strong effect (−10 points) among 18 null corruptions: its whisker
    # excludes 0, and over 100 random families every whisker excludes 0 exactly when the row
    # is flagged (≥ 99 % of rows: the flag is the sign-flip test, the whisker its normal
    # approximation at the same Holm step level, so they can part only at the boundary).
    rng = np.random.default_rng(0)
    agree = total = unadjusted_false = 0
    for _ in range(100):
        rows = delta_rows({k: list(v) for k, v in _family(rng, [-0.10] + [0.0] * 18).items()})
        strong = rows[0]
        assert strong["significant"] and abs(strong["delta"]) > strong["ci_holm"]
        for r in rows:
            total += 1
            agree += (abs(r["delta"]) > r["ci_holm"]) == r["significant"]
            unadjusted_false += (abs(r["delta"]) > r["ci95"]) and not r["significant"]
            assert r["ci_holm"] >= r["ci95"]
    assert agree / total >= 0.99, agree / total
    # The unadjusted whiskers exclude 0 for ~5 % of the null rows that Holm does not flag.
    assert unadjusted_false > 0
