"""Which forward pass each model was evaluated with, in words: the plain network, or a
test-time augmentation (``models/tta.py``) that the user asked for. Read back from the
store's model record, so the report says what was measured, not what is usual.

>>> forward_of({"arch": "small_cnn+flip-tta", "meta": {"provenance": {"tta": "flip"}}})
'evaluated with flip test-time augmentation (mean logits of each image and its mirror; ...)'
>>> forward_short({"arch": "small_cnn", "meta": {}})
'plain'
"""
from __future__ import annotations

from ..models.tta import recorded_tta

PLAIN = "evaluated with the plain forward pass"
# tta mode -> (the card's sentence, the provenance table's word); one entry per TTA_MODES.
TTA_WORDS = {
    "flip": ("evaluated with flip test-time augmentation (mean logits of each image and its "
             "mirror; Grad-CAM explains the plain network)", "flip TTA"),
}


def _tta(record: dict) -> str | None:
    return recorded_tta(record.get("arch"), (record.get("meta") or {}).get("provenance"))


def forward_of(record: dict) -> str:
    """The sentence for a ``ResultsStore.models()`` record: how its cells were computed."""
    tta = _tta(record)
    if tta is None:
        return PLAIN
    return TTA_WORDS[tta][0] if tta in TTA_WORDS else f"evaluated with test-time augmentation {tta!r}"


def forward_short(record: dict) -> str:
    """One word or two for a table cell: ``plain`` or e.g. ``flip TTA``."""
    tta = _tta(record)
    if tta is None:
        return "plain"
    return TTA_WORDS[tta][1] if tta in TTA_WORDS else f"{tta} TTA"
