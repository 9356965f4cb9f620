"""The import rules of the layers (README "Layout of the code"), checked on the source: every
``import`` statement of every module under failmodes/, lazy ones inside functions included."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "failmodes"

# (importing package, forbidden targets, why)
RULES = [
    ("failmodes.stressors", ("failmodes.models", "failmodes.evaluate", "failmodes.analysis",
                             "failmodes.report", "failmodes.train", "failmodes.study",
                             "failmodes.store"),
     "an attack receives the model as an argument; stressors sit below the store"),
    ("failmodes.data", ("failmodes.models", "failmodes.stressors", "failmodes.evaluate",
                        "failmodes.analysis", "failmodes.report", "failmodes.train",
                        "failmodes.study", "failmodes.store"),
     "data is the bottom layer"),
    ("failmodes.store", ("failmodes.evaluate", "failmodes.analysis", "failmodes.report",
                         "failmodes.train", "failmodes.study", "failmodes.models"),
     "evaluate, analysis and report build on the store, never the reverse"),
    ("failmodes.evaluate", ("failmodes.analysis", "failmodes.report", "failmodes.study",
                            "failmodes.train"),
     "evaluation writes cells; analysing them is a later step"),
    ("failmodes.analysis", ("failmodes.train", "failmodes.report", "failmodes.study"),
     "analyses read the store and never train"),
    ("failmodes.report", ("failmodes.evaluate", "failmodes.train"),
     "the report renders results and never runs a model"),
]


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path))
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # `from . import cli` / `from .. import report` import a module by its name
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def _hits(imported: set[str], target: str) -> list[str]:
    return sorted(i for i in imported if i == target or i.startswith(target + "."))


MODULES = _modules()


def test_the_rules_see_every_module():
    names = {n for n, _ in MODULES}
    assert {"failmodes.store.results", "failmodes.evaluate.runner", "failmodes.cli",
            "failmodes.report.html", "failmodes.stressors.registry"} <= names


@pytest.mark.parametrize("layer, forbidden, why", RULES, ids=[r[0] for r in RULES])
def test_layer_imports(layer, forbidden, why):
    bad = []
    for name, path in MODULES:
        if name == layer or name.startswith(layer + "."):
            imported = _imports(name, path)
            bad += [f"{name} imports {h}" for t in forbidden for h in _hits(imported, t)]
    assert not bad, f"{why}:\n" + "\n".join(bad)


def test_nothing_imports_the_cli():
    bad = [f"{name} imports failmodes.cli" for name, path in MODULES
           if name != "failmodes.__main__" and _hits([name], "failmodes.cli") == []
           and _hits(_imports(name, path), "failmodes.cli")]
    assert not bad, "the library never imports its command line:\n" + "\n".join(bad)


def test_only_the_store_speaks_sql():
    bad = [f"{name} imports sqlite3" for name, path in MODULES
           if not name.startswith("failmodes.store")
           and _hits(_imports(name, path), "sqlite3")]
    assert not bad, "SQL lives in failmodes/store only:\n" + "\n".join(bad)


def test_relative_imports_resolve_like_python():
    # the resolver itself, on a known module: evaluate/runner.py `from ..store import ...`
    name, path = next((n, p) for n, p in MODULES if n == "failmodes.evaluate.runner")
    imported = _imports(name, path)
    assert "failmodes.store" in imported and "failmodes.evaluate.grid" in imported


def test_no_sql_text_outside_the_store():
    import re
    sql = re.compile(r"\b(SELECT .+ FROM|INSERT INTO|DELETE FROM|CREATE TABLE|PRAGMA \w+|"
                     r"ATTACH DATABASE)\b")
    bad = []
    for name, path in MODULES:
        if name.startswith("failmodes.store"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and sql.search(node.value):
                bad.append(f"{name}:{node.lineno}: {node.value.strip()[:60]!r}")
    assert not bad, "SQL lives in failmodes/store only:\n" + "\n".join(bad)
