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
