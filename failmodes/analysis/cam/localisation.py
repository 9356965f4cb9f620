"""Does attention leave the object, or only spread out? Two findings, two claim kinds.

- **Localisation weakens** (claim ``cam_localisation: weakens``): the CAM's border-band share
  rises from clean, i.e. mass leaves the central region, whether the map spreads out or
  moves. A map that only becomes more diffuse (peak unmoved) rises toward the uniform map's
  share (``BAND_AREA``, 0.75) and counts.
- **Drift toward the background** (claim ``cam_drift: background``): the border share rises
  *more than diffusion alone would give*. The diffusion null of a shifted map is its clean
  map mixed with a uniform map until the mixture has the shifted map's entropy
  (``_measures.diffusion_null``, the mixing weight found by bisection, vectorised). A map
  that only became more diffuse equals its null: no drift. A blob that moved to a corner
  keeps its entropy, its null is the clean map, and the whole rise is drift.

Both verdicts rest on per-image values averaged over the corruptions at one severity, a
paired bootstrap over images, and a smallest change worth reporting (``MIN_CHANGE``):
supported when the interval is above 0 and the estimate at least ``MIN_CHANGE``;
contradicted when the whole interval is below ``MIN_CHANGE`` (no change, or a negligible
one); inconclusive otherwise. All-zero maps (Grad-CAM's ReLU of all-negative evidence) have
no border share: they are excluded and counted in the evidence.

>>> cells = [cell_evidence(per_image, s, 5) for s in ("fog", "contrast")]  # doctest: +SKIP
>>> attention_verdict("cam_drift", cells, 5, paired_bootstrap)[0]        # doctest: +SKIP
'supported'
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# Border-share change (fraction of the map's mass, range 0-1) below which a rise is
# negligible: 1 % of the mass, a fifteenth of the +0.157 that pure diffusion gave in review
# 2026-12-06 (appendix D).
MIN_CHANGE = 0.01
CLAIM_KINDS = {"cam_drift": "background", "cam_localisation": "weakens"}


def cell_evidence(per_image: dict | None, stressor: str, severity: float
                  ) -> dict[str, np.ndarray] | None:
    """Per-image arrays of one cell from the cam analysis's ``per_image`` record (as in
    ``cam.json``): clean and shifted border share, the shifted map's diffusion null, and
    whether each peak lies in the border band. None when the cell was not analysed."""
    if not per_image:
        return None
    cell = (per_image.get("cells") or {}).get(f"{stressor}@{float(severity):g}")
    if cell is None or "border_share_null" not in cell:
        return None

    def arr(xs):
        return np.asarray([np.nan if v is None else v for v in xs], dtype=np.float64)

    clean = per_image["clean"]
    return {"clean": arr(clean["border_share"]), "shifted": arr(cell["border_share"]),
            "null": arr(cell["border_share_null"]),
            "peak_clean": arr(clean["peak_in_border"]),
            "peak_shifted": arr(cell["peak_in_border"])}


Bootstrap = Callable[[np.ndarray], tuple[float, float, float]]


def attention_verdict(kind: str, cells: Sequence[dict[str, np.ndarray]], severity: float,
                      bootstrap: Bootstrap) -> tuple[str, str, dict] | None:
    """(verdict, reason, evidence) of a ``cam_drift`` or ``cam_localisation`` claim from
    the ``cell_evidence`` of the corruptions at ``severity`` (same images, sample order);
    ``bootstrap(values) -> (estimate, low, high)`` is the claims' paired bootstrap. None
    when fewer than two images have usable maps."""
    clean = cells[0]["clean"]
    shifted = np.stack([c["shifted"] for c in cells], 1)             # N × corruptions
    n_maps, n_zero = int(shifted.size), int(np.isnan(shifted).sum())
    n_zero_clean = int(np.isnan(clean).sum())
    with np.errstate(all="ignore"):
        shifted_img = np.nanmean(shifted, 1)       # per image, over its usable maps
        if kind == "cam_localisation":
            per = shifted_img - clean
        else:
            per = np.nanmean(shifted - np.stack([c["null"] for c in cells], 1), 1)
    keep = np.isfinite(per)
    per = per[keep]
    if per.size < 2:
        return None
    est, lo, hi = bootstrap(per)
    if lo > 0 and est >= MIN_CHANGE:
        verdict = "supported"
    elif hi < MIN_CHANGE:
        verdict = "contradicted"
    else:
        verdict = "inconclusive"
    peak_c = float(np.nanmean(cells[0]["peak_clean"]))
    peak_s = float(np.nanmean(np.stack([c["peak_shifted"] for c in cells])))
    # Means over the images the verdict used, so that shifted − clean is the change shown.
    clean_mean = float(np.mean(clean[keep]))
    shifted_mean = float(np.mean(shifted_img[keep]))
    if kind == "cam_localisation":
        what = (f"border-band share of CAM mass {clean_mean:.3f} clean → {shifted_mean:.3f} at "
                f"severity {severity:g}: change {est:+.3f} (95 % CI {lo:+.3f} to {hi:+.3f})")
    else:
        what = (f"border-band share {shifted_mean:.3f} at severity {severity:g} vs "
                f"{shifted_mean - est:.3f} for the clean maps diffused to the same entropy: "
                f"excess {est:+.3f} (95 % CI {lo:+.3f} to {hi:+.3f}); peaks in the border band "
                f"{100 * peak_c:.0f} % clean → {100 * peak_s:.0f} %")
    reason = (f"{what}; decided at ±{MIN_CHANGE:g} (smaller changes are negligible); "
              f"{per.size} images × {len(cells)} corruptions; {n_zero} of {n_maps} shifted maps "
              f"all-zero (no positive evidence), excluded"
              + (f", and {n_zero_clean} clean maps" if n_zero_clean else ""))
    evidence = {"border_share_clean": clean_mean, "border_share_shifted": shifted_mean,
                "change": est, "ci_low": lo, "ci_high": hi, "min_change": MIN_CHANGE,
                "peak_in_border_clean": peak_c, "peak_in_border_shifted": peak_s,
                "n_images": int(per.size), "n_corruptions": len(cells), "n_maps": n_maps,
                "n_maps_all_zero": n_zero, "n_clean_maps_all_zero": n_zero_clean,
                "compared_with": ("the clean map" if kind == "cam_localisation"
                                  else "the clean map mixed with uniform to the shifted "
                                       "map's entropy")}
    return verdict, reason, evidence
