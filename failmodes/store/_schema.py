"""The store's tables: ``SCHEMA`` is the truth (``results.py`` documents each table).

``SCHEMA_VERSION`` is written to SQLite's ``PRAGMA user_version``; a store without one (0)
was written before versions were kept and has the layout of version 1. A store of a higher
version than this library reads is refused in one line rather than read wrongly.
"""
import re

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    command TEXT,
    config_json TEXT,
    versions_json TEXT
);
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    arch TEXT,
    weights_hash TEXT,
    class_names_json TEXT NOT NULL,
    meta_json TEXT
);
CREATE TABLE IF NOT EXISTS cells (
    id INTEGER PRIMARY KEY,
    model_id INTEGER NOT NULL REFERENCES models(id),
    dataset TEXT NOT NULL,
    stressor TEXT NOT NULL,
    severity REAL NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    n_images INTEGER,
    started TEXT,
    finished TEXT,
    images_per_s REAL,
    error TEXT,
    UNIQUE (model_id, dataset, stressor, severity, seed)
);
CREATE TABLE IF NOT EXISTS predictions (
    cell_id INTEGER NOT NULL REFERENCES cells(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    label INTEGER NOT NULL,
    pred INTEGER NOT NULL,
    conf REAL NOT NULL,
    p_true REAL NOT NULL,
    entropy REAL NOT NULL,
    margin REAL NOT NULL,
    top5_json TEXT,
    logits BLOB,
    PRIMARY KEY (cell_id, idx)
) WITHOUT ROWID;
"""

# One row per model: the temperature analyses divide its logits by (written by calibration).
TEMPERATURES_SCHEMA = """
CREATE TABLE IF NOT EXISTS temperatures (
    model_id INTEGER PRIMARY KEY REFERENCES models(id) ON DELETE CASCADE,
    temperature REAL NOT NULL,   -- divide logits by this before the softmax
    fitted_on TEXT NOT NULL,     -- which cell / images, in words, with n
    nll_before REAL,             -- mean NLL (nats) on the fit images at T = 1
    nll_after REAL               -- ... at the fitted T
);
"""

# One row per attack cell (adversarial stressors): what the attack achieved on that model.
ATTACKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS attack_stats (
    cell_id INTEGER PRIMARY KEY REFERENCES cells(id) ON DELETE CASCADE,
    loss REAL NOT NULL,            -- mean cross-entropy (nats) at the adversarial images
    success_rate REAL,             -- share of the clean-correct images the attack made wrong
    n_clean_correct INTEGER NOT NULL
);
"""

ROW_FIELDS = ("idx", "label", "pred", "conf", "p_true", "entropy", "margin")


def table_columns(schema: str = SCHEMA) -> dict[str, list[str]]:
    """``{table: [column, ...]}`` of the ``CREATE TABLE`` statements in ``schema``."""
    out = {}
    for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\)(?: WITHOUT ROWID)?;",
                                 schema, re.S):
        cols = []
        for line in body.splitlines():
            word = line.strip().split(" ", 1)[0]
            if word and word.isidentifier() and word.upper() not in ("PRIMARY", "UNIQUE"):
                cols.append(word)
        out[name] = cols
    return out
