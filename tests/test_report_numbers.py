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


def _excludes_zero(r) -> bool:
    return r["ci_holm_low"] > 0 or r["ci_holm_high"] < 0


def test_whiskers_are_holm_consistent():
    # Review item 9: impulse, glass blur, contrast had whiskers excluding 0 with Holm p 0.51,
    # 0.59, 0.10. One strong effect (−10 points) among 18 null corruptions: its whisker
    # excludes 0, and over 100 random families every whisker excludes 0 exactly when the row
    # is flagged: the whisker inverts the flagging test (issue 31: 0 disagreements).
    rng = np.random.default_rng(0)
    disagree = total = unadjusted_false = 0
    for _ in range(100):
        rows = delta_rows({k: list(v) for k, v in _family(rng, [-0.10] + [0.0] * 18).items()})
        strong = rows[0]
        assert strong["significant"] and _excludes_zero(strong)
        for r in rows:
            total += 1
            disagree += _excludes_zero(r) != r["significant"]
            unadjusted_false += (abs(r["delta"]) > r["ci95"]) and not r["significant"]
            assert r["ci_holm_low"] <= r["delta"] <= r["ci_holm_high"]
    assert disagree == 0, (disagree, total)
    # The unadjusted whiskers exclude 0 for ~5 % of the null rows that Holm does not flag.
    assert unadjusted_false > 0


def _mixed_family(rng, n, effects, levels=5):
    """Per corruption, per-image B − A differences averaged over ``levels`` severities
    (values on a 1/levels lattice), with mean shifts ``effects``."""
    from failmodes.stressors import suite
    out = {}
    for name, e in zip(suite("all"), effects):
        u = rng.random((n, levels))
        out[name] = list(np.where(u < 0.10 + e / 2, 1.0, np.where(u > 0.90 + e / 2, -1.0,
                                                                   0.0)).mean(1))
    return out


def test_whiskers_agree_with_the_flag_at_the_boundary_in_every_branch():
    # Effects spread over the Holm boundary; 2000 images (normal branch at 0), 300 (the
    # demo's size: Monte Carlo) and 12 (exact enumeration). Known answer: a whisker excludes
    # 0 exactly when its row is flagged, in every row.
    rng = np.random.default_rng(3)
    disagree = flagged = total = 0
    for n, fams in ((2000, 30), (300, 10), (12, 10)):
        for _ in range(fams):
            eff = rng.uniform(-0.12, 0.12, 19) * (300 / n) ** 0.5 * (0.2 if n < 20 else 1)
            rows = delta_rows(_mixed_family(rng, n, eff))
            for r in rows:
                total += 1
                flagged += r["significant"]
                disagree += _excludes_zero(r) != r["significant"]
    assert disagree == 0, (disagree, total)
    assert 0 < flagged < total           # both kinds of row were exercised


def test_the_whisker_is_the_inverted_sign_flip_test():
    # Slow obvious reference: scan δ on a fine grid, keep the δ where sign_flip_p(d − δ) is
    # at least the row's Holm level; the interval's ends match the scan to the grid step.
    from failmodes.analysis.paired import sign_flip_p
    rng = np.random.default_rng(5)
    for n, step in ((2000, 1e-3), (300, 4e-3)):
        fam = _mixed_family(rng, n, [0.04, -0.02, 0.0] + [0.0] * 16)
        rows = {r["stressor"]: r for r in delta_rows(fam)}
        for name in list(fam)[:2]:
            r, d = rows[name], np.asarray(fam[name])
            grid = np.arange(d.mean() - 0.25, d.mean() + 0.25, step)
            kept = [g for g in grid if sign_flip_p(d - g)[0] >= r["holm_level"]]
            assert abs(100 * min(kept) - r["ci_holm_low"]) <= 100 * step * 1.01, (n, name)
            assert abs(100 * max(kept) - r["ci_holm_high"]) <= 100 * step * 1.01, (n, name)
