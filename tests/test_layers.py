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
    ("failmodes.estimate", ("failmodes.evaluate", "failmodes.report", "failmodes.study",
                            "failmodes.train"),
     "label-free estimation works on a model and tensors; runs are opened above it"),
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
            "failmodes.report.html", "failmodes.stressors.registry",
            "failmodes.analysis.cam.drift", "failmodes.analysis.curves.regimes"} <= names


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


def _analysis_package(name: str) -> str | None:
    """``failmodes.analysis.<pkg>`` for a module inside an analysis package, else None."""
    parts = name.split(".")
    if len(parts) >= 3 and parts[:2] == ["failmodes", "analysis"]:
        pkg = ".".join(parts[:3])
        return pkg if (PKG / "analysis" / parts[2]).is_dir() else None
    return None


def test_an_analysis_package_keeps_its_private_modules():
    # An analysis package's `_x` modules are its own: the other analyses, the report and the
    # CLI use its public names, so a package can be rewritten without an edit elsewhere.
    bad = []
    for name, path in MODULES:
        for imp in _imports(name, path):
            owner = _analysis_package(imp)
            rest = imp[len(owner) + 1:].split(".") if owner and imp != owner else []
            if owner and rest and rest[0].startswith("_") \
                    and not (name == owner or name.startswith(owner + ".")):
                bad.append(f"{name} imports {imp}")
    assert not bad, "private modules of an analysis package:\n" + "\n".join(bad)


def test_headline_keys_are_read_through_the_declarations():
    # The first screen and summary.md read each analysis's declared headlines: no module
    # outside the analysis's package writes one of its headline keys as a literal.
    from failmodes.analysis import list_analyses
    owner = {h.key: f"failmodes.analysis.{a.name}" for a in list_analyses() for h in a.headlines}
    bad = []
    for name, path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if name.startswith("failmodes.analysis."):
                break   # another analysis may name its own column alike (MCE: max cal. error)
            if isinstance(node, ast.Constant) and node.value in owner \
                    and not (name + ".").startswith(owner[node.value] + "."):
                bad.append(f"{name}:{node.lineno}: {node.value!r}")
    assert not bad, "headline keys outside their analysis:\n" + "\n".join(bad)


def _edges(name: str, path: Path, known: set[str]) -> set[str]:
    """The failmodes modules ``name`` imports, each resolved to the module that holds it
    (``from .x import f`` -> ``x``; ``from . import x`` -> ``x``); TYPE_CHECKING blocks left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.dump(node.test) for n in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] \
                if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_cycle_finder_finds_a_known_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle_inside_failmodes():
    # Registries are filled by importing the modules from the package's __init__ (timm's
    # way), never by a registry importing its members back; imports inside functions count.
    known = {n for n, _ in MODULES}
    graph = {n: _edges(n, p, known) for n, p in MODULES}
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)
