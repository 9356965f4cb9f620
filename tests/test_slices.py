"""Failure slices: known answers decided before the code.

(a) a planted spurious slice: in training one class always sits on a blue background; at
    test another class often does; a tiny CNN trained here confuses exactly those images,
    and the search must rank "blue background" first, with that confusion, significant;
(b) a null: errors drawn at random, independent of the images; over 200 resamples the
    share of runs with any Benjamini-Hochberg discovery (= the FDR under the complete null)
    stays within q plus its binomial tolerance;
(c) breaking points on correctness arrays and on a store where each image's flip severity
    is set by construction;
(d) the vectorised attributes against slow per-image references (colorsys, numpy);
    the exact test, Wilson interval and BH against scipy.
"""
from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from failmodes.analysis.slices._attributes import (
    COLOURS,
    attribute_conditions,
    image_attributes,
    named_colour_codes,
    rgb_to_hsv,
)
from failmodes.analysis.slices._breaks import (
    breaking_points,
    correctness_matrix,
    rank_correlations,
)
from failmodes.analysis.slices._claims import check_concentration
from failmodes.analysis.slices._describe import slice_sentence, typical_images
from failmodes.analysis.slices._features import penultimate_features
from failmodes.analysis.slices._find import (
    SliceError,
    bh_adjust,
    cluster_conditions,
    find_slices,
    fisher_greater,
    kmeans,
    wilson,
)

# --------------------------------------------------------------------------- a data set
CLASSES = ["disk", "square", "hbars", "vbars"]
DISK, SQUARE = 0, 1
BLUE_HUE = (205.0, 245.0)          # degrees: inside the named "blue" bin


def _hsv_to_rgb(h, s, v):
    """h in degrees, s and v in [0, 1] (tensors of one shape) -> (..., 3) RGB in [0, 1]."""
    h6 = (h % 360) / 60.0
    c = v * s
    x = c * (1 - (h6 % 2 - 1).abs())
    z = torch.zeros_like(h)
    sector = h6.floor().long().clamp(0, 5)
    table = torch.stack([torch.stack(t, -1) for t in
                         ((c, x, z), (x, c, z), (z, c, x), (z, x, c), (x, z, c), (c, z, x))], 0)
    rgb = table.gather(0, sector.unsqueeze(0).unsqueeze(-1).expand(1, *h.shape, 3))[0]
    return rgb + (v - c).unsqueeze(-1)


def make_blue_set(n: int, seed: int, blue_share: dict[int, float]):
    """``n`` 32 px images of 4 shapes; class k sits on a blue background with probability
    ``blue_share[k]`` (default 0), otherwise on a non-blue, saturated background. Objects are
    light grey-ish so the shape, not its colour, tells the classes apart."""
    g = torch.Generator().manual_seed(seed)
    size = 32
    labels = torch.arange(n) % len(CLASSES)
    labels = labels[torch.randperm(n, generator=g)]
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    cy = 0.5 + (torch.rand(n, 1, 1, generator=g) - 0.5) * 0.15
    cx = 0.5 + (torch.rand(n, 1, 1, generator=g) - 0.5) * 0.15
    r = 0.25 + torch.rand(n, 1, 1, generator=g) * 0.08
    dy, dx = (yy - cy) / r, (xx - cx) / r
    inside = (dy.abs() <= 1) & (dx.abs() <= 1)
    masks = torch.stack([dy ** 2 + dx ** 2 <= 1,
                         (dy.abs() <= 0.8) & (dx.abs() <= 0.8),
                         (torch.frac((dy + 2) / 0.5) < 0.5) & inside,
                         (torch.frac((dx + 2) / 0.5) < 0.5) & inside], 1)
    mask = masks[torch.arange(n), labels].float().unsqueeze(-1)
    share = torch.tensor([blue_share.get(k, 0.0) for k in range(len(CLASSES))])
    blue = torch.rand(n, generator=g) < share[labels]
    # Non-blue hues: 0-170 and 280-360 degrees (never the blue/cyan/purple bins' core).
    u = torch.rand(n, generator=g)
    other = torch.where(u < 0.7, u / 0.7 * 170.0, 280.0 + (u - 0.7) / 0.3 * 80.0)
    blue_h = BLUE_HUE[0] + torch.rand(n, generator=g) * (BLUE_HUE[1] - BLUE_HUE[0])
    hue = torch.where(blue, blue_h, other)
    sat = 0.6 + 0.3 * torch.rand(n, generator=g)
    val = 0.45 + 0.3 * torch.rand(n, generator=g)
    bg = _hsv_to_rgb(hue, sat, val).view(n, 1, 1, 3)
    fg = (0.85 + 0.1 * torch.rand(n, 1, 1, 1, generator=g)).expand(n, 1, 1, 3)
    img = bg + mask * (fg - bg) + (torch.rand(n, size, size, 3, generator=g) - 0.5) * 0.06
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), labels, blue


class TinyCNN(nn.Module):
    def __init__(self, n_classes: int = 4):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 12, 5, stride=2, padding=2), nn.ReLU(),
                                  nn.Conv2d(12, 24, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(24, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


@pytest.fixture(scope="module")
def planted():
    """Train: disks always on blue, nothing else on blue. Test: disks on blue, and half the
    squares on blue too; those squares are the images the model gets wrong (as disks)."""
    torch.manual_seed(0)
    x, y, _ = make_blue_set(2400, seed=1, blue_share={DISK: 1.0})
    xt, yt, blue_t = make_blue_set(1200, seed=2, blue_share={DISK: 1.0, SQUARE: 0.5})
    net = TinyCNN()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    xf = x.permute(0, 3, 1, 2).float() / 255
    g = torch.Generator().manual_seed(0)
    for _ in range(12):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 128):
            b = perm[i:i + 128]
            opt.zero_grad()
            nn.functional.cross_entropy(net(xf[b]), y[b]).backward()
            opt.step()
    net.eval()
    xtf = xt.permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        pred = net(xtf).argmax(1)
    feats = penultimate_features(net, xtf, batch_size=256)
    return {"images": xt, "labels": yt.numpy(), "pred": pred.numpy(), "blue": blue_t.numpy(),
            "features": feats, "net": net}


def test_planted_model_learnt_the_shortcut(planted):
    """The construction's premise: the blue squares are the errors (checked, not assumed)."""
    y, p, blue = planted["labels"], planted["pred"], planted["blue"]
    planted_set = (y == SQUARE) & blue
    assert (p[planted_set] == DISK).mean() > 0.8
    assert (p[~planted_set] != y[~planted_set]).mean() < 0.1


def test_planted_blue_slice_ranks_first(planted):
    y, p = planted["labels"], planted["pred"]
    attrs = image_attributes(planted["images"])
    conds = attribute_conditions(attrs)
    conds += cluster_conditions(planted["features"], k=6, seed=0)
    search = find_slices(conds, (p != y)[None], labels=y, preds=p, class_names=CLASSES, q=0.05)
    top = search.top(0)[0]
    assert ("background", "blue") in top.conditions
    assert top.significant and top.p_adj < 1e-6
    true, pred, count = top.confusions[0]
    assert (true, pred) == ("square", "disk") and count > 0.8 * ((y == SQUARE)
                                                               & planted["blue"]).sum()
    sentence = slice_sentence(top)
    assert "blue background" in sentence and "square → disk" in sentence
    # The typical thumbnails are members of the slice, and wrong.
    idx = typical_images(top, attrs.matrix(), k=4)
    assert len(idx) == 4 and all(top.members[i] and p[i] != y[i] for i in idx)


def test_representation_cluster_holds_the_planted_errors(planted):
    """A k-means cluster of the penultimate features gathers the blue squares with the disks
    (the model sees them alike); it is significant and described as blue background."""
    y, p = planted["labels"], planted["pred"]
    attrs = image_attributes(planted["images"])
    clusters = cluster_conditions(planted["features"], k=6, seed=0)
    search = find_slices(attribute_conditions(attrs) + clusters, (p != y)[None], labels=y,
                         preds=p, class_names=CLASSES, q=0.05, max_order=1)
    cl = [s for s in search.all_tests(0) if s.conditions[0][0] == "cluster"]
    assert cl and cl[0].significant
    assert "blue background" in cl[0].description


def test_penultimate_features_are_the_head_input(planted):
    net, x = planted["net"], planted["images"][:8].permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        want = net.body(x).numpy()
    assert np.allclose(penultimate_features(net, x), want, atol=1e-6)
    with pytest.raises(SliceError, match="Linear"):
        penultimate_features(nn.Sequential(nn.Conv2d(3, 2, 1)), x)


# --------------------------------------------------------------------------- (b) null
def test_null_errors_give_no_slice_beyond_the_stated_rate():
    """Errors independent of the images: 200 resamples; under the complete null, BH's FDR
    is the probability of any discovery, so the share of runs with one must be <= q plus
    3 binomial standard errors (the exact test is conservative, so it is usually far below)."""
    xt, yt, _ = make_blue_set(600, seed=5, blue_share={DISK: 0.5, SQUARE: 0.5})
    attrs = image_attributes(xt)
    feats = np.random.default_rng(0).normal(size=(600, 8))
    conds = attribute_conditions(attrs) + cluster_conditions(feats, k=5, seed=0)
    rng = np.random.default_rng(1)
    runs, q = 200, 0.05
    wrong = rng.random((runs, 600)) < 0.2
    preds = np.where(wrong, (yt.numpy() + 1) % 4, yt.numpy())
    search = find_slices(conds, wrong, labels=yt.numpy(), preds=preds[0], class_names=CLASSES,
                         q=q, per_cell_family=True)
    any_discovery = np.array([search.any_significant(c) for c in range(runs)])
    assert search.n_tested_per_cell > 200           # singles and pairs: a real family
    tol = 3 * math.sqrt(q * (1 - q) / runs)
    assert any_discovery.mean() <= q + tol


def test_null_with_one_family_over_many_cells():
    """The analysis's own mode: one BH family over every slice of every cell of a model
    (here 8 cells of the same 400 images, errors independent of the images and of each
    other); over 100 resampled stores, the share with any discovery stays <= q + 3 SE."""
    xt, yt, _ = make_blue_set(400, seed=12, blue_share={DISK: 0.5})
    conds = attribute_conditions(image_attributes(xt))
    rng = np.random.default_rng(13)
    runs, q, hits = 100, 0.05, 0
    for _ in range(runs):
        wrong = rng.random((8, 400)) < rng.uniform(0.05, 0.6, (8, 1))
        search = find_slices(conds, wrong, labels=yt.numpy(), preds=yt.numpy(),
                             class_names=CLASSES, q=q)
        hits += bool((search.p_adj <= q).any())
    assert hits / runs <= q + 3 * math.sqrt(q * (1 - q) / runs)


def test_fdr_with_a_planted_slice_and_null_rest():
    """A partial null: one attribute bin gets a raised error rate, every other slice is null
    except those overlapping it; the false-discovery proportion (discoveries that share no
    image with the planted slice) averaged over 100 resamples stays <= q + tolerance."""
    xt, yt, blue = make_blue_set(600, seed=6, blue_share={DISK: 0.5, SQUARE: 0.5})
    attrs = image_attributes(xt)
    conds = attribute_conditions(attrs)
    planted = next(c for c in conds if c.key == ("background", "blue")).mask
    rng = np.random.default_rng(2)
    runs, q = 100, 0.05
    rate = np.where(planted, 0.35, 0.15)
    wrong = rng.random((runs, 600)) < rate
    search = find_slices(conds, wrong, labels=yt.numpy(), preds=yt.numpy(),
                         class_names=CLASSES, q=q, per_cell_family=True)
    overlaps = np.array([(search.members(t) & planted).any()
                         for t in range(search.n_tested_per_cell)])
    sig = search.p_adj <= q                                          # runs × tests
    fdp = (sig & ~overlaps).sum(1) / np.maximum(1, sig.sum(1))
    assert np.mean(fdp) <= q + 3 * math.sqrt(q * (1 - q) / runs)
    # ... and the planted slice is found in most runs (power, not just silence).
    (blue_t,) = [t for t in range(search.n_tested_per_cell)
                 if search.pairs[t, 1] < 0
                 and search.conditions[search.pairs[t, 0]].key == ("background", "blue")]
    assert sig[:, blue_t].mean() > 0.8


# --------------------------------------------------------------------------- stats refs
def test_exact_test_interval_and_bh_match_scipy():
    rng = np.random.default_rng(3)
    for _ in range(30):
        n_all = int(rng.integers(20, 300))
        k_all = int(rng.integers(0, n_all + 1))
        n = int(rng.integers(1, n_all))
        k = int(rng.integers(max(0, n + k_all - n_all), min(n, k_all) + 1))
        table = [[k, n - k], [k_all - k, n_all - n - (k_all - k)]]
        want = scipy.stats.fisher_exact(table, alternative="greater").pvalue
        assert fisher_greater(np.array([k]), np.array([n]), k_all, n_all)[0] == \
            pytest.approx(want, rel=1e-9, abs=1e-300)
        lo, hi = wilson(np.array([k]), np.array([n]), 0.95)
        ref = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert (lo[0], hi[0]) == pytest.approx((ref.low, ref.high), abs=1e-12)
    p = rng.random(500) ** 3
    p[::7] = p[3]                                   # ties
    assert np.allclose(bh_adjust(p), scipy.stats.false_discovery_control(p, method="bh"))


def test_kmeans_recovers_separated_blobs_and_is_seeded():
    rng = np.random.default_rng(4)
    centres = np.array([[0, 0], [10, 0], [0, 10]], float)
    truth = np.repeat(np.arange(3), 50)
    x = centres[truth] + rng.normal(0, 0.5, (150, 2))
    a = kmeans(x, 3, seed=0)
    b = kmeans(x, 3, seed=0)
    assert np.array_equal(a, b)
    # Same partition as the truth up to renaming.
    assert len({(int(t), int(c)) for t, c in zip(truth, a)}) == 3
    with pytest.raises(SliceError, match="clusters"):
        kmeans(x[:2], 3, seed=0)


# --------------------------------------------------------------------------- (c) breaks
def test_breaking_points_on_constructed_correctness():
    """Each image's first wrong severity is set; later severities may be right again (the
    lowest wrong one counts); clean-wrong images have none (NaN); never = inf."""
    sev = np.array([3.0, 1.0, 5.0, 2.0, 4.0])             # unsorted on purpose
    rng = np.random.default_rng(5)
    n = 300
    flip = rng.choice([1, 2, 3, 4, 5, np.inf], n)
    clean = rng.random(n) > 0.1
    correct = np.stack([(s < flip) | (rng.random(n) < 0.3) * (s > flip) for s in sev])
    out = breaking_points(sev, correct, clean)
    assert np.array_equal(out[clean], flip[clean])
    assert np.isnan(out[~clean]).all()
    with pytest.raises(SliceError, match="severities"):
        breaking_points(sev[:3], correct, clean)


def test_breaking_points_from_a_store(tmp_path):
    """A store whose cells are written so image i first flips at severity flip[i]."""
    from synthetic_store import crafted_logits

    from failmodes.store import CellKey, ResultsStore, per_image_rows
    n, classes = 200, ["a", "b", "c"]
    rng = np.random.default_rng(6)
    labels = np.arange(n) % 3
    flip = rng.choice([1.0, 2.0, 3.0, np.inf], n)
    clean_ok = np.arange(n) % 10 != 0
    store = ResultsStore(tmp_path / "results.sqlite")
    store.register_model("m", spec="x", arch="x", weights_hash="h", class_names=classes)
    for name, s, ok in [("clean", 0.0, clean_ok)] + [("fog", s, s < flip) for s in (1., 2., 3.)]:
        logits = crafted_logits(labels, ok, (labels + 1) % 3, np.full(n, 0.8), 3, rng)
        store.write_cell(CellKey("m", "synthetic:test", name, s),
                         per_image_rows(logits, torch.as_tensor(labels), torch.arange(n)))
    m = correctness_matrix(store, "m", "synthetic:test", "fog")
    store.close()
    assert np.array_equal(m.severities, [1.0, 2.0, 3.0]) and np.array_equal(m.idx, np.arange(n))
    out = breaking_points(m.severities, m.correct, m.clean_correct)
    assert np.array_equal(out[clean_ok], flip[clean_ok]) and np.isnan(out[~clean_ok]).all()


def test_rank_correlation_matches_scipy_and_covers():
    """Breaking severity rises with contrast by construction; the point value is scipy's
    Spearman (never-breaking = the top rank), and the bootstrap interval covers it."""
    rng = np.random.default_rng(7)
    n = 800
    contrast = rng.random(n)
    noise = rng.random(n)
    brk = np.minimum(np.ceil(contrast * 5 + rng.normal(0, 1, n)).clip(1, 6), 6)
    brk = np.where(brk == 6, np.inf, brk)
    rows = rank_correlations(brk, {"contrast": contrast, "noise": noise}, n_boot=300, seed=0)
    by = {r["attribute"]: r for r in rows}
    want = scipy.stats.spearmanr(np.where(np.isinf(brk), 99, brk), contrast).statistic
    assert by["contrast"]["rho"] == pytest.approx(want, abs=1e-12)
    assert by["contrast"]["lo"] < want < by["contrast"]["hi"] and by["contrast"]["lo"] > 0.5
    assert by["noise"]["lo"] < 0 < by["noise"]["hi"]
    ref = scipy.stats.spearmanr(np.where(np.isinf(brk), 99, brk), noise)
    assert by["noise"]["p"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_midranks_match_scipy_rankdata():
    from failmodes.analysis.slices._breaks import _midranks
    rng = np.random.default_rng(14)
    tied = rng.integers(0, 5, (4, 300)).astype(float)
    tied[0, :10] = np.inf
    got = _midranks(torch.as_tensor(tied)).numpy()
    assert np.array_equal(got, np.stack([scipy.stats.rankdata(v) for v in tied]))
    x = rng.random(500)
    assert np.array_equal(_midranks(torch.as_tensor(x)).numpy(), scipy.stats.rankdata(x))


def test_rank_correlation_p_values_under_the_null():
    """Attributes independent of breaking severity (heavily tied: 5 levels and never);
    over 200 data sets the share with any BH discovery among 4 attributes stays <= q."""
    from failmodes.analysis.slices._find import bh_adjust
    rng = np.random.default_rng(11)
    runs, q, hits = 200, 0.05, 0
    for _ in range(runs):
        brk = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, np.inf], 200, p=[.1, .1, .1, .1, .1, .5])
        attrs = {f"a{j}": rng.random(200) for j in range(4)}
        ps = [r["p"] for r in rank_correlations(brk, attrs, n_boot=20, seed=0)]
        hits += bool((bh_adjust(ps) <= q).any())
    assert hits / runs <= q + 3 * math.sqrt(q * (1 - q) / runs)


# --------------------------------------------------------------------------- (d) attributes
def _slow_attributes(img: np.ndarray) -> dict:
    """One image (H×W×3 uint8), pixel by pixel with colorsys and plain numpy."""
    h, w, _ = img.shape
    b = max(1, round(min(h, w) / 8))
    rgb = img.astype(np.float64) / 255
    border = np.ones((h, w), bool)
    border[b:h - b, b:w - b] = False
    centre = np.zeros((h, w), bool)
    centre[h // 4:h - h // 4, w // 4:w - w // 4] = True

    def region(m):
        px = rgb[m]
        hsv = np.array([colorsys.rgb_to_hsv(*p) for p in px])
        names = [_slow_name(*c) for c in hsv]
        mean_hsv = colorsys.rgb_to_hsv(*px.mean(0))
        return mean_hsv, max(set(names), key=lambda s: (names.count(s), -COLOURS.index(s)))

    (bh, bs, bv), bname = region(border)
    (ch, cs, cv), cname = region(centre)
    y = rgb @ np.array([0.299, 0.587, 0.114])
    rg = (rgb[..., 0] - rgb[..., 1]) * 255
    yb = (0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]) * 255
    gx = np.diff(y, axis=1)[:-1, :]
    gy = np.diff(y, axis=0)[:, :-1]
    return {"background": bname, "centre": cname, "background_hue": bh * 360,
            "background_saturation": bs, "background_brightness": bv,
            "centre_saturation": cs, "centre_brightness": cv,
            "contrast": y.std(),
            "colourfulness": math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(),
                                                                             yb.mean()),
            "edge_energy": np.sqrt(gx ** 2 + gy ** 2).mean()}


def _slow_name(h, s, v):
    if v < 0.2:
        return "black"
    if s < 0.2:
        return "white" if v >= 0.8 else "grey"
    deg = h * 360
    for name, lo, hi in (("orange", 15, 45), ("yellow", 45, 70), ("green", 70, 165),
                         ("cyan", 165, 195), ("blue", 195, 255), ("purple", 255, 290),
                         ("pink", 290, 345)):
        if lo <= deg < hi:
            return name
    return "red"


def test_attributes_match_a_slow_reference():
    xt, _, _ = make_blue_set(6, seed=8, blue_share={DISK: 1.0})
    rng = np.random.default_rng(8)
    wild = torch.as_tensor(rng.integers(0, 256, (3, 24, 20, 3)), dtype=torch.uint8)
    for images in (xt, wild):
        attrs = image_attributes(images, batch_size=4)
        for i in range(len(images)):
            ref = _slow_attributes(images[i].numpy())
            for name, want in ref.items():
                got = attrs.value(name, i)
                if isinstance(want, str):
                    assert got == want, (name, i)
                elif name.endswith("_hue"):
                    assert abs((got - want + 180) % 360 - 180) < 1e-3, (name, i)
                else:
                    assert got == pytest.approx(want, abs=1e-4), (name, i)


def test_hsv_and_names_match_colorsys_on_random_pixels():
    rng = np.random.default_rng(9)
    px = rng.random((2000, 3))
    px[:50] = px[:50, :1]                       # greys: zero saturation
    hsv = rgb_to_hsv(torch.as_tensor(px)).numpy()
    ref = np.array([colorsys.rgb_to_hsv(*p) for p in px])
    assert np.allclose(hsv[:, 1:], ref[:, 1:], atol=1e-9)
    grey = ref[:, 1] == 0
    assert np.allclose(hsv[~grey, 0], ref[~grey, 0] * 360, atol=1e-7)
    names = [COLOURS[c] for c in named_colour_codes(torch.as_tensor(hsv)).tolist()]
    assert names == [_slow_name(*r) for r in ref]


def test_conditions_bins_and_bad_input():
    xt, _, _ = make_blue_set(400, seed=9, blue_share={DISK: 1.0})
    conds = attribute_conditions(image_attributes(xt), n_bins=4)
    contrast = [c for c in conds if c.key[0] == "contrast"]
    assert [c.key[1] for c in contrast] == ["low", "mid-low", "mid-high", "high"]
    sizes = sorted(int(c.mask.sum()) for c in contrast)
    assert sizes[0] >= 95 and sizes[-1] <= 105        # quartiles of 400 distinct values
    assert sum(c.mask for c in contrast).max() == 1   # a partition
    bg = {c.key[1]: int(c.mask.sum()) for c in conds if c.key[0] == "background"}
    assert bg["blue"] == 100                          # every disk, nothing else
    with pytest.raises(SliceError, match="uint8"):
        image_attributes(xt.float())
    with pytest.raises(SliceError, match="N×H×W×3"):
        image_attributes(xt[..., :2])


# --------------------------------------------------------------------------- claims
def test_concentration_claim_verdicts_and_error_rate():
    """Supported when errors (as the named class) concentrate in the slice; under no
    concentration, 'supported' comes out at most alpha of the time (300 simulated sets)."""
    rng = np.random.default_rng(10)
    n = 800
    names = ["airplane", "bird", "ship", "cat"]
    labels = rng.integers(0, 4, n)
    blue = rng.random(n) < 0.3
    conds = {("background", "blue"): blue}
    claim = {"errors_concentrate": {"background": "blue"}, "classes": ["ship", "bird"],
             "confused_with": "airplane"}
    target = np.isin(labels, [1, 2])
    wrong = target & blue & (rng.random(n) < 0.5)
    preds = np.where(wrong, 0, labels)
    v = check_concentration(claim, conds, labels, preds, names)
    assert v.verdict == "supported" and v.p < 1e-6 and "ship, bird" in v.evidence
    # The opposite: errors only off the blue background.
    wrong2 = target & ~blue & (rng.random(n) < 0.5)
    assert check_concentration(claim, conds, labels, np.where(wrong2, 0, labels),
                               names).verdict == "contradicted"
    verdicts = []
    for _ in range(300):
        w = target & (rng.random(n) < 0.15)
        verdicts.append(check_concentration(claim, conds, labels, np.where(w, 0, labels),
                                            names, min_ratio=1.0).verdict)
    tol = 3 * math.sqrt(0.05 * 0.95 / 300)
    assert verdicts.count("supported") / 300 <= 0.05 + tol
    assert verdicts.count("contradicted") / 300 <= 0.05 + tol
    # On the claim's boundary (errors exactly 1.25x as frequent inside, the default
    # min_ratio): "contradicted" at most alpha of the time.
    boundary = []
    for _ in range(300):
        w = target & (rng.random(n) < np.where(blue, 0.15 * 1.25, 0.15))
        boundary.append(check_concentration(claim, conds, labels, np.where(w, 0, labels),
                                            names).verdict)
    assert boundary.count("contradicted") / 300 <= 0.05 + tol
    with pytest.raises(SliceError, match="background"):
        check_concentration({"errors_concentrate": {"background": "mauve"}}, conds, labels,
                            preds, names)


# --------------------------------------------------------------------------- the analysis
@pytest.fixture(scope="module")
def planted_run(planted, tmp_path_factory):
    """A run folder of the planted test images (an image folder) with the tiny CNN's real
    predictions written to the store (clean, and fog 1-3 of the same images), so the
    registered analysis reads exactly what an evaluation would have stored."""
    import json

    from PIL import Image

    from failmodes.data import load_dataset
    from failmodes.evaluate import open_run
    from failmodes.store import CellKey, ResultsStore, per_image_rows
    from failmodes.stressors import get_stressor
    root = tmp_path_factory.mktemp("planted")
    data, run = root / "data", root / "run"
    n = 600
    for i in range(n):
        d = data / "test" / f"{planted['labels'][i]}_{CLASSES[planted['labels'][i]]}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(planted["images"][i].numpy()).save(d / f"{i:04d}.png")
    run.mkdir()
    cfg = {"data": f"imagefolder:{data}", "split": "test", "seed": 0, "models": {}}
    (run / "eval_config.json").write_text(json.dumps({"config": cfg}))
    ds = load_dataset(f"imagefolder:{data}", split="test")
    x = ds.images.permute(0, 3, 1, 2).float() / 255
    ResultsStore(run / "results.sqlite").close()
    with open_run(run) as ctx:
        key = ctx.dataset_key()            # the key an evaluation would have written
    net = planted["net"]
    with ResultsStore(run / "results.sqlite") as st:
        st.start_run("test", cfg, {})
        st.register_model("tiny", spec="test", arch="tiny", weights_hash="h",
                          class_names=CLASSES)
        for name, sev in [("clean", 0.0), ("fog", 1.0), ("fog", 2.0), ("fog", 3.0)]:
            xs = x if name == "clean" else get_stressor(name)(x, sev, seed=0,
                                                                indices=ds.indices)
            with torch.no_grad():
                logits = net(xs)
            st.write_cell(CellKey("tiny", key, name, sev, 0),
                          per_image_rows(logits, ds.labels, ds.indices))
    return run


def test_registered_analysis_finds_the_planted_slice(planted_run, tmp_path):
    from failmodes.analysis import get_analysis
    from failmodes.store import ResultsStore
    a = get_analysis("slices")
    res = a.run(planted_run, tmp_path, a.parse_options({"n_boot": 50}))
    assert res.problems() == []
    clean = [r for r in res.tables["slices"] if r["stressor"] == "clean"]
    assert clean and clean[0]["rank"] == 1
    assert "blue background" in clean[0]["slice"] and clean[0]["top_confusion"] == "square → disk"
    assert clean[0]["p_bh"] < 1e-6
    assert res.per_model["tiny"]["clean_slices"] >= 1
    assert res.per_model["tiny"]["clean_top_slice_error"] == clean[0]["error_rate"]
    assert any(n.startswith("tiny, clean: blue background") for n in res.notes)
    # The model cannot be rebuilt from its spec here: clusters fall back to stored logits.
    assert res.per_model["tiny"]["clusters_from"] == "stored clean logits"
    assert res.figures and (tmp_path / res.figures[0].path).stat().st_size > 0
    # Breaking points: the table's shares are those of the store read the slow way.
    with ResultsStore(planted_run / "results.sqlite", readonly=True) as st:
        m = correctness_matrix(st, "tiny", st.cells()[0].dataset, "fog")
    brk = breaking_points(m.severities, m.correct, m.clean_correct)
    (row,) = [r for r in res.tables["breaking_points"] if r["stressor"] == "fog"]
    ok = m.clean_correct
    assert row["n_right_clean"] == ok.sum()
    assert row["broken_by_2"] == pytest.approx(np.mean(brk[ok] <= 2))
    assert row["never_broken"] == pytest.approx(np.mean(np.isinf(brk[ok])))


def test_explorer_breaks_column_matches_the_store(planted_run):
    """The explorer embeds each image's breaking point per model and stressor: decoded, it
    equals breaking_points over the store's cells read the slow way."""
    import base64

    from failmodes.report.explorer import build_explorer_data
    from failmodes.store import ResultsStore
    p = build_explorer_data(planted_run, thumb_budget=2 ** 16).payload
    b = p["breaks"]
    codes = np.frombuffer(base64.b64decode(b["codes"]), dtype=b["dtype"]).reshape(
        len(p["models"]), len(p["stressors"]), p["n"])
    names = [s["name"] for s in p["stressors"]]
    si = names.index("fog")
    vals = b["values"][0][si]
    top = np.iinfo(b["dtype"]).max
    got = np.array([np.nan if c == top else np.inf if c == top - 1 else vals[c]
                    for c in codes[0, si]])
    with ResultsStore(planted_run / "results.sqlite", readonly=True) as st:
        m = correctness_matrix(st, "tiny", st.cells()[0].dataset, "fog")
    want = breaking_points(m.severities, m.correct, m.clean_correct)
    assert vals == [1.0, 2.0, 3.0]
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(got[~np.isnan(got)], want[~np.isnan(want)])
    assert (codes[0, names.index("clean")] == top).all()


def test_claim_on_a_run_folder(planted_run, planted):
    """The write-ups' sentence, on the planted run: squares on blue backgrounds are taken for
    disks far more often than squares elsewhere (supported); an unknown colour is one line."""
    from failmodes.analysis.slices import check_claim
    v = check_claim(planted_run, {"errors_concentrate": {"background": "blue"}, "model": "tiny",
                                  "classes": ["square"], "confused_with": "disk"})
    assert v.verdict == "supported" and v.rate_in > 0.8 and v.rate_out < 0.05
    # A shifted cell: the same numbers as counting the store's fog-1 rows by hand.
    from failmodes.store import ResultsStore
    v = check_claim(planted_run, {"errors_concentrate": {"background": "blue"}, "model": "tiny",
                                  "stressor": "fog", "severity": 1})
    with ResultsStore(planted_run / "results.sqlite", readonly=True) as st:
        r = st.predictions(st.cells(stressor="fog")[0])
    # Folder order: by class folder, then file name (the image's position i).
    order = np.lexsort((np.arange(600), planted["labels"][:600]))
    blue = planted["blue"][:600][order][r["idx"]]
    wrong = r["pred"] != r["label"]
    assert (v.n_in, v.n_out) == (blue.sum(), (~blue).sum())
    assert v.rate_in == pytest.approx(wrong[blue].mean())
    assert v.rate_out == pytest.approx(wrong[~blue].mean())
    # Every disk sits on blue: the claim's population has no image outside the slice.
    with pytest.raises(SliceError, match="both sides need images"):
        check_claim(planted_run, {"errors_concentrate": {"background": "blue"},
                                  "model": "tiny", "classes": ["disk"]})
    with pytest.raises(SliceError, match="no slice background: mauve"):
        check_claim(planted_run, {"errors_concentrate": {"background": "mauve"},
                                  "model": "tiny"})


_DOM = r"""
// A minimal DOM for explorer.js: elements by id, selects that drop an unknown value.
var ids = {};
function El(tag, id) {
  this.tagName = tag; this.id = id || ''; this.children = []; this.options = [];
  this.textContent = ''; this.hidden = false; this.attrs = {}; this.listeners = {};
  this.classList = {add: function () {}, remove: function () {}};
  this._value = '';
}
El.prototype.appendChild = function (c) {
  this.children.push(c);
  if (this.tagName === 'select' && c.tagName === 'option') { this.options.push(c); }
  return c;
};
El.prototype.removeChild = function (c) {
  this.children.splice(this.children.indexOf(c), 1); return c;
};
Object.defineProperty(El.prototype, 'firstChild', {get: function () { return this.children[0] || null; }});
El.prototype.remove = function (i) { this.options.splice(i, 1); };
El.prototype.addEventListener = function (t, f) { (this.listeners[t] = this.listeners[t] || []).push(f); };
El.prototype.setAttribute = function (k, v) { this.attrs[k] = String(v); };
El.prototype.getAttribute = function (k) { return this.attrs[k] || null; };
El.prototype.querySelector = function () { return null; };
El.prototype.getContext = function () { return {drawImage: function () {}}; };
Object.defineProperty(El.prototype, 'value', {
  get: function () { return this._value; },
  set: function (v) {
    v = String(v);
    if (this.tagName === 'select' && !this.options.some(function (o) { return o.value === v; })) { v = ''; }
    this._value = v;
  }
});
function select(id, values, chosen) {
  var s = new El('select', id);
  values.forEach(function (v) { var o = new El('option'); o.value = v; s.appendChild(o); });
  s.value = chosen || values[0]; ids[id] = s;
}
['fm-f-model', 'fm-f-family', 'fm-f-stressor', 'fm-f-severity', 'fm-f-true', 'fm-f-pred']
  .forEach(function (id) { select(id, ['all']); });
select('fm-f-outcome', ['all', 'wrong', 'right', 'flipped'], 'wrong');
select('fm-sort', ['conf-desc', 'conf-asc', 'flipped', 'breaks', 'index']);
[['fm-f-cmin', '0'], ['fm-f-cmax', '1'], ['fm-f-bmax', '']].forEach(function (p) {
  var e = new El('input', p[0]); e.value = p[1]; ids[p[0]] = e;
});
var data = new El('script', 'fm-explorer-data'); data.textContent = DATA; ids['fm-explorer-data'] = data;
global.document = {
  getElementById: function (id) { return ids[id] || (ids[id] = new El('div', id)); },
  createElement: function (tag) { return new El(tag); }
};
global.atob = function (s) { return Buffer.from(s, 'base64').toString('binary'); };
"""

_AFTER = r"""
function fire(id, type) { (ids[id].listeners[type] || []).forEach(function (f) { f(); }); }
function find(e, text) {   // the <dd> after the <dt> saying text, anywhere under e
  for (var i = 0; i < e.children.length; i++) {
    var c = e.children[i];
    if (c.tagName === 'div' && c.children.length === 2 && c.children[0].textContent === text) {
      return c.children[1].textContent;
    }
    var r = find(c, text); if (r !== null) { return r; }
  }
  return null;
}
var out = {};
ids['fm-f-bmax'].value = '1'; fire('fm-f-bmax', 'input');
out.count = +ids['fm-count'].textContent;
out.first = find(ids['fm-grid'].children[0], 'breaks at');
ids['fm-f-bmax'].value = ''; ids['fm-f-outcome'].value = 'all'; fire('fm-f-outcome', 'change');
ids['fm-sort'].value = 'breaks'; fire('fm-sort', 'change');
out.all = +ids['fm-count'].textContent;
out.sorted = ids['fm-grid'].children.slice(0, 5).map(function (c) { return find(c, 'breaks at'); });
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="node is not installed")
def test_explorer_breaks_filter_in_node(planted_run, tmp_path):
    """The page's own JavaScript under node with a minimal DOM: 'breaks at ≤ 1' keeps the
    wrong rows of images that first broke at fog 1, counted from the store by hand; cards
    say where each image breaks; 'breaks earliest first' puts severity 1 first."""
    import json
    import subprocess

    from failmodes.report.explorer import build_explorer_data, explorer_script, script_json
    from failmodes.store import ResultsStore
    payload = build_explorer_data(planted_run, thumb_budget=2 ** 16).payload
    payload.pop("thumbs", None)
    js = tmp_path / "run.js"
    js.write_text("var DATA = " + json.dumps(script_json(payload)) + ";\n" + _DOM
                  + explorer_script() + _AFTER)
    out = json.loads(subprocess.run(["node", str(js)], capture_output=True, text=True,
                                    check=True, timeout=60).stdout)
    with ResultsStore(planted_run / "results.sqlite", readonly=True) as st:
        m = correctness_matrix(st, "tiny", st.cells()[0].dataset, "fog")
    brk = breaking_points(m.severities, m.correct, m.clean_correct)
    want = int(sum(((brk <= 1) & ~m.correct[k]).sum() for k in range(3)))
    assert want > 0 and out["count"] == want
    assert out["first"] == "1"
    n_rows = len(m.idx) * 4                       # clean + fog 1-3, outcome "all"
    assert out["all"] == n_rows and out["sorted"] == ["1"] * 5


def test_claim_kind_in_the_claims_package(planted_run):
    """A study's claims list takes the kind: checked at load (an unknown bin is one line
    before any work) and decided by the claims analysis from the run folder."""
    from failmodes.analysis.claims import ClaimError, RunEvidence, check_claims, parse_claims
    raw = [{"errors_concentrate": {"background": "blue"}, "model": "tiny",
            "classes": ["square"], "confused_with": "disk"}]
    (claim,) = parse_claims(raw, models={"tiny"})
    assert claim.describe() == ("for tiny, square with background: blue are taken for disk "
                                "more often (clean)")
    ev = RunEvidence(planted_run)
    try:
        (v,) = check_claims([claim], ev)
    finally:
        ev.close()
    assert v.verdict == "supported" and v.evidence["p_value"] < 1e-6
    assert v.evidence["rate_inside"] > 0.8
    with pytest.raises(ClaimError, match="no bin background: mauve"):
        parse_claims([{"errors_concentrate": {"background": "mauve"}, "model": "tiny"}],
                     models={"tiny"})
    with pytest.raises(ClaimError, match="unknown stressor"):
        parse_claims([{"errors_concentrate": {"contrast": "low"}, "model": "tiny",
                       "stressor": "fogg"}], models={"tiny"})


def test_cli_command(planted_run, tmp_path):
    """`failmodes slices RUN --out DIR` with options generated from SlicesOptions; a bad
    option value is one error line."""
    from typer.testing import CliRunner

    from failmodes.cli import app
    r = CliRunner().invoke(app, ["slices", str(planted_run), "--out", str(tmp_path),
                                 "--n-boot", "30", "--features", "logits"])
    assert r.exit_code == 0, r.output
    assert "tiny, clean: blue background" in r.output and (tmp_path / "slices.json").is_file()
    r = CliRunner().invoke(app, ["slices", str(planted_run), "--out", str(tmp_path),
                                 "--features", "pixels"])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "features" in r.output
