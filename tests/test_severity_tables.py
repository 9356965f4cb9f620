"""The severity tables beside each op, checked against the published parameters.

The literals below are copied from the generators of the published datasets, Hendrycks &
Dietterich's hendrycks/robustness, ``ImageNet-C/create_c/``: ``make_cifar_c.py``
(CIFAR-10-C, 32 px), ``make_tinyimagenet_c.py`` (Tiny-ImageNet-C, 64 px) and
``make_imagenet_c.py`` (ImageNet-C, 224 px): the ``c`` list of each corruption, severities
1..5, written as there. They are data in this file on purpose, so the check runs everywhere
(no ../shared, no network) and a table edited by mistake fails.
"""
import pytest

from failmodes.stressors import get_stressor, list_stressors

IMSIZE = 32  # make_cifar_c.py's elastic_transform writes its parameters as IMSIZE * fraction

CIFAR10_C = {
    "gaussian_noise": [0.04, 0.06, .08, .09, .10],
    "shot_noise": [500, 250, 100, 75, 50],
    "impulse_noise": [.01, .02, .03, .05, .07],
    "speckle_noise": [.06, .1, .12, .16, .2],
    "gaussian_blur": [.4, .6, 0.7, .8, 1],
    "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
    "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
    "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
    # np.arange(1, stop, step) as (start, stop, step)
    "zoom_blur": [(1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.01),
                  (1, 1.26, 0.01)],
    "fog": [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
    "frost": [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
    "snow": [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
             (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
             (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)],
    "spatter": [(0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0),
                (0.65, 0.3, 1, 0.69, 0.5, 0), (0.65, 0.1, 0.7, 0.69, 0.6, 1),
                (0.65, 0.1, 0.5, 0.68, 0.6, 1)],
    "contrast": [.75, .5, .4, .3, 0.15],
    "brightness": [.05, .1, .15, .2, .3],
    "saturate": [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)],
    "jpeg_compression": [80, 65, 58, 50, 40],
    "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],
    "elastic_transform": [(IMSIZE * 0, IMSIZE * 0, IMSIZE * 0.08),
                          (IMSIZE * 0.05, IMSIZE * 0.2, IMSIZE * 0.07),
                          (IMSIZE * 0.08, IMSIZE * 0.06, IMSIZE * 0.06),
                          (IMSIZE * 0.1, IMSIZE * 0.04, IMSIZE * 0.05),
                          (IMSIZE * 0.1, IMSIZE * 0.03, IMSIZE * 0.03)],
}

IMAGENET_C = {
    "gaussian_noise": [.08, .12, 0.18, 0.26, 0.38],
    "shot_noise": [60, 25, 12, 5, 3],
    "impulse_noise": [.03, .06, .09, 0.17, 0.27],
    "speckle_noise": [.15, .2, 0.35, 0.45, 0.6],
    "gaussian_blur": [1, 2, 3, 4, 6],
    "glass_blur": [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
    "defocus_blur": [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
    "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
    "zoom_blur": [(1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02),
                  (1, 1.31, 0.03)],
    "fog": [(1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)],
    "frost": [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)],
    "snow": [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
             (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
             (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)],
    "spatter": [(0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0),
                (0.65, 0.3, 2, 0.68, 0.5, 0), (0.65, 0.3, 1, 0.65, 1.5, 1),
                (0.67, 0.4, 1, 0.65, 1.5, 1)],
    "contrast": [0.4, .3, .2, .1, .05],
    "brightness": [.1, .2, .3, .4, .5],
    "saturate": [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)],
    "jpeg_compression": [25, 18, 15, 10, 7],
    "pixelate": [0.6, 0.5, 0.4, 0.3, 0.25],
    # "244 should have been 224, but ultimately nothing is incorrect" (the generator's note)
    "elastic_transform": [(244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2),
                          (244 * 0.05, 244 * 0.01, 244 * 0.02),
                          (244 * 0.07, 244 * 0.01, 244 * 0.02),
                          (244 * 0.12, 244 * 0.01, 244 * 0.02)],
}

TINY_IMSIZE = 64  # make_tinyimagenet_c.py's IMSIZE

TINYIMAGENET_C = {
    "gaussian_noise": [0.04, 0.08, .12, .15, .18],
    "shot_noise": [250, 100, 50, 30, 15],
    "impulse_noise": [.01, .02, .05, .08, .14],
    "speckle_noise": [.15, .2, 0.25, 0.3, 0.35],
    "gaussian_blur": [.5, .75, 1, 1.25, 1.5],
    "glass_blur": [(0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)],
    "defocus_blur": [(0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)],
    "motion_blur": [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)],
    "zoom_blur": [(1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.01),
                  (1, 1.26, 0.01)],
    "fog": [(.4, 3), (.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)],
    "frost": [(1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)],
    "snow": [(0.1, 0.2, 1, 0.6, 8, 3, 0.8), (0.1, 0.2, 1, 0.5, 10, 4, 0.8),
             (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65),
             (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6)],
    "spatter": [(0.62, 0.1, 0.7, 0.7, 0.6, 0), (0.65, 0.1, 0.8, 0.7, 0.6, 0),
                (0.65, 0.3, 1, 0.69, 0.6, 0), (0.65, 0.1, 0.7, 0.68, 0.6, 1),
                (0.65, 0.1, 0.5, 0.67, 0.6, 1)],
    "contrast": [.4, .3, .2, .1, 0.05],
    "brightness": [.1, .2, .3, .4, .5],
    "saturate": [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)],
    "jpeg_compression": [65, 58, 50, 40, 25],
    "pixelate": [0.9, 0.8, 0.7, 0.6, 0.5],
    "elastic_transform": [(TINY_IMSIZE * 0, TINY_IMSIZE * 0, TINY_IMSIZE * 0.08),
                          (TINY_IMSIZE * 0.05, TINY_IMSIZE * 0.3, TINY_IMSIZE * 0.06),
                          (TINY_IMSIZE * 0.1, TINY_IMSIZE * 0.08, TINY_IMSIZE * 0.06),
                          (TINY_IMSIZE * 0.1, TINY_IMSIZE * 0.03, TINY_IMSIZE * 0.03),
                          (TINY_IMSIZE * 0.16, TINY_IMSIZE * 0.03, TINY_IMSIZE * 0.02)],
}
PUBLISHED = {"cifar": CIFAR10_C, "tinyimagenet": TINYIMAGENET_C, "imagenet": IMAGENET_C}
SIDE = {"cifar": 32, "tinyimagenet": 64, "imagenet": 224}
# Constants of the generator that our tables carry as extra trailing columns.
EXTRA = {("frost", "cifar"): (0.2,),          # cv2.resize(frost, fx=0.2, fy=0.2)
         ("frost", "tinyimagenet"): (0.3,),   # cv2.resize(frost, fx=0.3, fy=0.3)
         ("frost", "imagenet"): (1.0,),       # no resize
         ("fog", "cifar"): (32,),             # plasma_fractal(mapsize=32)
         ("fog", "tinyimagenet"): (64,),      # plasma_fractal(mapsize=64)
         ("fog", "imagenet"): (256,)}         # plasma_fractal(mapsize=256)


def _published(name: str, family: str) -> list[tuple]:
    rows = PUBLISHED[family][name]
    rows = [r if isinstance(r, tuple) else (r,) for r in rows]
    if name == "elastic_transform":  # our table: fractions of the image side
        rows = [tuple(v / SIDE[family] for v in r) for r in rows]
    return [r + EXTRA.get((name, family), ()) for r in rows]


def test_every_published_corruption_is_registered_and_nothing_else_has_a_table():
    with_tables = sorted(n for n in list_stressors() if get_stressor(n).tables is not None)
    assert with_tables == sorted(CIFAR10_C) == sorted(IMAGENET_C)


def test_every_corruption_has_the_three_published_tables():
    for name in CIFAR10_C:
        assert set(get_stressor(name).tables) == set(PUBLISHED), name


@pytest.mark.parametrize("family", list(PUBLISHED))
@pytest.mark.parametrize("name", sorted(CIFAR10_C))
def test_table_rows_1_to_5_are_the_published_parameters(name, family):
    s = get_stressor(name)
    ours = [tuple(r) for r in s.tables[family][1:]]
    published = _published(name, family)
    assert [len(r) for r in ours] == [len(r) for r in published]
    flat = [v for r in ours for v in r]
    assert flat == pytest.approx([v for r in published for v in r], rel=1e-9, abs=1e-12)
    # integer severities resolve to exactly those rows at the table's own image size
    for k in range(1, 6):
        assert s.resolve(float(k), SIDE[family]) == tuple(s.tables[family][k])
