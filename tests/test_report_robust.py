"""Issue 35, report presentation: thumbnails go first to what the explorer opens on (flips,
then confident failures) within a budget that keeps the page small, and the page says what
it left out; the severities a run evaluated are printed as they are; an empty training
section is neither first nor shown as done; a study without claims says so; a lone model
is not tagged baseline; one table never mixes fractions and percents."""
from __future__ import annotations

import numpy as np

from failmodes.constants import DEFAULT_THUMB_BUDGET
from failmodes.report.explorer import MISSING, thumb_note, thumb_order


def _cells():
    return [{"model": "m", "stressor": "clean"}, {"model": "m", "stressor": "fog"}]


def test_thumbnails_go_to_flips_then_confident_failures_then_the_rest():
    # 6 images, label 0. clean: right on 0-3, wrong on 4 (conf .95) and 5 (conf .5).
    # fog: wrong on 1 (conf .7) and 3 (conf .9): flips; wrong on 4, 5 as well.
    label = np.zeros(6, np.int64)
    pred = np.array([[0, 0, 0, 0, 1, 1],
                     [0, 1, 0, 1, 1, 1]], np.uint16)
    conf = np.array([[.9, .9, .9, .9, .95, .5],
                     [.9, .7, .9, .9, .97, .6]], np.float32)
    order, n_flip, n_conf = thumb_order(pred, conf, label, _cells())
    # flips by their most confident wrong prediction (3 at .9, 1 at .7); then the confident
    # failure 4 (.97); then the rest by index: 0, 2, 5 (5 is wrong but at .6 at most)
    assert order.tolist() == [3, 1, 4, 0, 2, 5]
    assert (n_flip, n_conf) == (2, 1)


def test_an_image_missing_from_a_cell_is_not_a_flip():
    label = np.zeros(2, np.int64)
    pred = np.array([[0, 0], [MISSING, 1]], np.uint16)
    conf = np.array([[.9, .9], [-1, .8]], np.float32)
    order, n_flip, _ = thumb_order(pred, conf, label, _cells())
    assert order.tolist() == [1, 0] and n_flip == 1


def test_the_page_says_what_the_budget_left_out_and_how_to_get_more():
    note = thumb_note(218, 1000, 532, 40, 6 * 2 ** 20)
    assert "218 of the 1000 images (218 of the 532 flipped images)" in note
    assert "the other 782 keep their rows" in note and "--thumb-budget MB" in note
    note = thumb_note(600, 1000, 532, 100, 6 * 2 ** 20)
    assert "every flipped image, 68 of the 100 other confident failures" in note
    assert DEFAULT_THUMB_BUDGET <= 8 * 2 ** 20     # a report meant to be mailed


def _one_model_run(tmp_path, severities=(1, 3, 5), models=("m",)):
    from synthetic_store import write_store

    from failmodes.analysis import get_analysis
    curve = {float(s): 0.9 - 0.1 * s for s in severities}
    for i, m in enumerate(models):
        write_store(tmp_path / "results.sqlite", {"fog": curve, "contrast": curve}, n=40,
                    model=m, rng_seed=i).close()
    get_analysis("metrics").fn(tmp_path, tmp_path / "analysis")
    return tmp_path


def _text(html_path) -> str:
    import html
    import re
    t = html_path.read_text(encoding="utf-8")
    t = re.sub(r"<script.*?</script>|<style.*?</style>", "", t, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", t)))


def test_a_1_3_5_grid_is_printed_as_it_is(tmp_path):
    from failmodes.report import render_report
    page = render_report(_one_model_run(tmp_path))
    text = _text(page)
    assert "over severities 1, 3, 5" in text
    md = (page.parent / "summary.md").read_text(encoding="utf-8")
    assert "averaged over severities 1, 3, 5" in md and "over severities 1–5" not in md
    # "severities 1–5" stays only where it defines a metric ("needs ... at severities 1–5")
    assert "over severities 1–5" not in text


def test_a_lone_model_has_no_baseline_tag_and_empty_sections_say_so_in_place(tmp_path):
    import re

    from failmodes.report import render_report
    page = render_report(_one_model_run(tmp_path))
    raw, text = page.read_text(encoding="utf-8"), _text(page)
    assert 'class="tag">baseline' not in raw and "(baseline m)" not in text
    # no training history: not the first numbered section, not "ok", said in its place
    titles = re.findall(r"<h2>(\d+)\. ([^<]+)<span class=\"badge (\w*)", raw)
    first = titles[0]
    assert first[1] != "Training curves"
    training = next(t for t in titles if t[1] == "Training curves")
    assert training[2] == "empty" and int(training[0]) > int(first[0])
    assert "No training history is recorded in this run folder" in text
    # a study without claims says so, not "not run"
    claims = next(t for t in titles if t[1].startswith("Claims"))
    assert claims[2] == "empty" and "No claims in this study" in text


def test_two_models_keep_their_baseline_tag(tmp_path):
    from failmodes.report import render_report
    raw = render_report(_one_model_run(tmp_path, models=("a", "b"))).read_text()
    assert raw.count('class="tag">baseline') == 1


def test_one_table_never_mixes_fractions_and_percents(tmp_path):
    import re

    from failmodes.report import render_report
    raw = render_report(_one_model_run(tmp_path)).read_text(encoding="utf-8")
    # the metrics headline table: clean accuracy 0.9 (a fraction) and the mean corruption
    # error (a percent) both as percentages
    sec = raw[raw.index('id="metrics"'):]
    sec = sec[:sec.index("</section>")]
    rows = dict(re.findall(r"<tr><td>([a-z0-9 ]+)</td><td[^>]*>([^<]*)</td>", sec))
    assert rows["clean accuracy"] == "90.0 %"
    assert rows["mean corruption error"].endswith(" %") and rows["mca"].endswith(" %")


def test_the_default_budget_is_what_the_figures_leave_of_a_10_mb_page():
    from failmodes.constants import MIN_AUTO_THUMB_BUDGET, REPORT_TARGET_BYTES
    from failmodes.report.explorer import OTHER_BYTES, auto_thumb_budget
    mb = 2 ** 20
    assert REPORT_TARGET_BYTES == 10 * mb
    assert auto_thumb_budget(0) == DEFAULT_THUMB_BUDGET              # small figures: 6 MB
    assert auto_thumb_budget(3 * mb) == 10 * mb - 3 * mb - OTHER_BYTES  # 5 MB left
    assert auto_thumb_budget(30 * mb) == MIN_AUTO_THUMB_BUDGET        # figure-heavy: 1 MB
