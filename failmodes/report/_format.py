"""Small value formatters and the table/figure records the templates render."""
from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..analysis.registry import Headline

# Tables longer than this show their first rows; the full table is in the CSV beside it.
MAX_ROWS = 30
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".svg": "image/svg+xml", ".gif": "image/gif", ".webp": "image/webp"}


@dataclass
class Figure:
    src: str | None            # a data: URI, or None when the file is missing
    caption: str
    name: str                  # file name, shown when the image is missing
    wide: bool = True          # spans the page; narrow figures sit two per row


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    total: int
    csv: str | None = None     # relative path of the full table
    numeric: list[bool] = field(default_factory=list)
    open: bool = False         # shown unfolded (small tables); large ones start folded

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


def fmt(v, digits: int = 4) -> str:
    """A table cell: floats to ``digits`` significant digits, None as an em dash."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "—"
        if v == 0:
            return "0"
        if abs(v) >= 1e5 or abs(v) < 1e-3:
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x, digits) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, default=str)[:200]
    return str(v)


def pct(v, digits: int = 1) -> str:
    """A fraction in [0, 1] as a percentage."""
    return "—" if v is None else f"{100 * v:.{digits}f} %"


def points(v, digits: int = 1, signed: bool = True) -> str:
    """Accuracy points (already in %): +1.2 pt."""
    if v is None:
        return "—"
    return f"{v:+.{digits}f} pt" if signed else f"{v:.{digits}f} pt"


def table(title: str, rows: list[dict], csv: str | None = None,
          columns: list[str] | None = None, formatters: dict | None = None,
          max_rows: int = MAX_ROWS) -> Table:
    """A Table from row dicts: columns in order of first appearance (or as given)."""
    if columns is None:
        columns = []
        for r in rows:
            for k in r:
                if k not in columns:
                    columns.append(k)
    formatters = formatters or {}
    shown = rows[:max_rows]
    cells = [[formatters.get(c, fmt)(r.get(c)) for c in columns] for r in shown]
    numeric = [all(_numberlike(x[j]) or x[j] == "—" for x in cells)
               and any(_numberlike(x[j]) for x in cells) for j in range(len(columns))]
    title = title[:1].upper() + title[1:]
    return Table(title, columns, cells, len(rows), csv, numeric,
                 open=len(rows) <= 12 and len(columns) <= 10)


_NUMBER = re.compile(r"^[+±-]?\d[\d.,]*(e[+-]?\d+)?( ?(%|pt|s))?\*?$")


def _numberlike(text: str) -> bool:
    return bool(_NUMBER.match(text))


# A figure PNG over this many bytes is embedded as WebP (quality 90) when that halves it at
# least: the page is meant to be mailed (~10 MB), and the photo-like montages (Grad-CAM
# overlays, probe strips) shrink 3-6x with no visible loss; the PNG on disk is unchanged.
EMBED_AS_WEBP_OVER = 150_000


def data_uri(path: Path) -> str | None:
    """The file as a base64 data: URI, or None when it is missing or not an image type."""
    mime = _MIME.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return None
    data = path.read_bytes()
    if mime == "image/png" and len(data) > EMBED_AS_WEBP_OVER:
        small = _webp(data)
        if small is not None and 2 * len(small) <= len(data):
            mime, data = "image/webp", small
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _webp(png: bytes) -> bytes | None:
    import io

    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(png)) as im:
            buf = io.BytesIO()
            im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB").save(
                buf, "WEBP", quality=90, method=4)
    except (OSError, UnidentifiedImageError, ValueError):
        return None   # Pillow built without WebP, or an odd PNG: embed it as it is
    return buf.getvalue()


def figure(base: Path, rel: str, caption: str) -> Figure:
    """Embed ``base / rel``; a path leaving ``base`` (``..``, absolute) is refused, as data."""
    base = Path(base).resolve()
    p = (base / rel).resolve()
    inside = p == base or base in p.parents
    src = data_uri(p) if inside else None
    return Figure(src, caption, Path(rel).name, wide=_is_wide(p) if src else True)


def _is_wide(path: Path) -> bool:
    # Wider than 1.25:1 or large: full width; tall or small figures pair up side by side.
    try:
        from PIL import Image
        with Image.open(path) as im:
            w, h = im.size
    except Exception:  # an SVG or an unreadable file: give it the full width
        return True
    return w > 1.25 * h and w > 600


def _pt_abs(v):
    return "—" if v is None else f"{v:.1f}"


def _pt_delta(v):
    return "—" if v is None else f"{v:+.1f}"


def _pt_ci(v):
    return "—" if v is None else f"±{v:.1f}"


def _pt_interval(v):
    """[low, high] in points -> "-1.2 to +0.4"."""
    return "—" if v is None else f"{v[0]:+.1f} to {v[1]:+.1f}"


def format_headline(h: Headline, v: float | None) -> str:
    """A headline value in its unit: a fraction as a percentage, a percent with one
    decimal, a ratio with three significant digits; "—" when absent."""
    if v is None:
        return "—"
    if h.unit == "fraction":
        return pct(v)
    if h.unit == "percent":
        return f"{v:.1f} %"
    return fmt(v, 3)


# Per-model numbers and table columns that are percents (0-100) although their names read
# like the fractions beside them (an analysis keeps accuracy as a fraction, the CIFAR-10-C
# error as the literature's percent).
# (Headline keys come from their analysis's declarations, not from here.)
PERCENT_KEYS = frozenset({"mean_corruption_error"})
_FRACTION_WORDS = re.compile(r"(^|[_ ])(acc|accuracy|mca|rate|share|ece|error|coverage)"
                             r"([_ ]|$)")


def unit_of(key: str, values, declared: dict[str, str] | None = None) -> str | None:
    """``fraction``, ``percent`` or None (show as it is) for a per-model number or a table
    column: the unit its analysis declared for a headline, else a percent key, else a
    fraction when its name says accuracy/rate/share/error/ECE and every value lies in [0, 1].
    Tables print both as percentages, so one table never mixes 0.91 with 93.8."""
    if declared and key in declared:
        return declared[key] if declared[key] != "ratio" else None
    if key in PERCENT_KEYS:
        return "percent"
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if nums and _FRACTION_WORDS.search(key.lower()) and all(0 <= v <= 1 for v in nums):
        return "fraction"
    return None


def unit_formatter(unit: str | None):
    """The cell formatter of ``unit_of``'s answer (None: ``fmt``)."""
    if unit == "fraction":
        return lambda v: fmt(v) if not isinstance(v, (int, float)) or isinstance(v, bool) \
            else pct(v)
    if unit == "percent":
        return lambda v: fmt(v) if not isinstance(v, (int, float)) or isinstance(v, bool) \
            else f"{v:.1f} %"
    return fmt


def evaluated_severities(acc_rows: list[dict]) -> list[int]:
    """The integer severities 1-5 a run evaluated its corruptions at (what the "mean over
    severities" numbers average), from the accuracy rows; sweeps and attacks left out."""
    from ..store import stressor_family
    return sorted({int(r["severity"]) for r in acc_rows
                   if isinstance(r.get("severity"), (int, float))
                   and float(r["severity"]).is_integer() and 1 <= r["severity"] <= 5
                   and stressor_family(str(r.get("stressor"))) not in ("clean", "sweep",
                                                                          "adversarial")})


def severities_text(levels) -> str:
    """``severities 1–5`` only for 1, 2, 3, 4, 5; else the real list.

    >>> severities_text([1, 2, 3, 4, 5]), severities_text([1, 3, 5]), severities_text([3])
    ('severities 1–5', 'severities 1, 3, 5', 'severity 3')
    >>> severities_text([2, 3, 4]), severities_text([])
    ('severities 2–4', 'severities 1–5')
    """
    ints = sorted({int(v) for v in levels})
    if not ints:
        return "severities 1–5"   # nothing evaluated yet: the definition's own range
    if len(ints) == 1:
        return f"severity {ints[0]}"
    if len(ints) >= 3 and ints == list(range(ints[0], ints[-1] + 1)):
        return f"severities {ints[0]}–{ints[-1]}"
    return "severities " + ", ".join(map(str, ints))
