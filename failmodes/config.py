"""Typed configuration: dataclasses are the truth; YAML -> dataclass -> CLI overrides.

Unknown keys and wrong types fail at load time, naming the key and the file.

>>> from dataclasses import dataclass
>>> @dataclass
... class C:
...     lr: float = 0.1
>>> from_dict(C, {"lr": 0.05}).lr
0.05
"""
from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ._atomic import write_text_atomic
from .errors import FailmodesError

T = TypeVar("T")


class ConfigError(ValueError, FailmodesError):
    """A config file or override is wrong; one line naming the key, the file and the fix."""


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_type(value, tp, where: str):
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {_short(value)}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {_short(value)}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        items = [_check_type(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_short(value)}")
        return dict(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true/false, got {_short(value)}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {_short(value)}")
    return value


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, checking keys and types recursively."""
    if not isinstance(data, dict):
        # Not the value itself: ``recipe: /etc/passwd`` must not print the file.
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} keys, got "
                          f"{type(data).__name__}; is it the right file?")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} "
                          f"(allowed: {', '.join(fields)})")
    kwargs = {k: _check_type(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


# A config file is a few kilobytes; these bounds stop a hostile one before it costs memory.
MAX_YAML_BYTES = 1 << 20
# Nodes of the document with every alias expanded: ``&a [*a, *a, ...]`` nested nine levels
# is ~10^9 nodes once ``dataclasses.asdict`` copies it, from a 200-byte file.
MAX_YAML_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses a document whose alias-expanded tree exceeds MAX_YAML_NODES."""

    def compose_document(self):
        node = super().compose_document()
        _check_expanded_size(node)
        return node

    def construct_mapping(self, node, deep=False):
        # PyYAML keeps the last of two equal keys: a study with two ``seed:`` lines would run
        # with one of them, silently. Merge keys (``<<: *base``) may be overridden; they
        # are not compared.
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                line, key = key_node.start_mark.line + 1, (key_node.tag, key_node.value)
                if key in first:
                    raise _Refused(f"key {key_node.value!r} appears twice (lines {first[key]} "
                                   f"and {line}); keep one")
                first[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_expanded_size(root: yaml.Node) -> None:
    # Memoised per node (aliases are shared nodes), so linear in the file whatever the
    # expansion would be; a node met again while still open is a recursive alias.
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise _Refused("an alias refers to itself (a recursive structure)")
        open_.add(key)
        n = 1
        if isinstance(node, yaml.SequenceNode):
            n += sum(size(c) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            n += sum(size(k) + size(v) for k, v in node.value)
        open_.discard(key)
        if n > MAX_YAML_NODES:
            raise _Refused(f"more than {MAX_YAML_NODES} values once its aliases are expanded")
        sizes[key] = n
        return n

    size(root)


class _Refused(Exception):
    pass


def read_yaml(path: str | os.PathLike) -> Any:
    """The data of a YAML file, refusing what no config file is: over ``MAX_YAML_BYTES``,
    not UTF-8 text, nested too deeply, recursive, or over ``MAX_YAML_NODES`` values with
    its aliases expanded. Errors name the file, never its contents (it may be any file)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    with open(path, "rb") as f:
        raw = f.read(MAX_YAML_BYTES + 1)
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_YAML_BYTES >> 10} KiB; not a config file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (UTF-8) file; give a YAML config file") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: holds NUL bytes; give a YAML config file")
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506  (a SafeLoader subclass)
    except _Refused as e:
        raise ConfigError(f"{path}: refused: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: refused: nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at} ({getattr(e, 'problem', None) or e})"
                          ) from None


def load_yaml(cls: type[T], path: str | os.PathLike) -> T:
    """Read a YAML file (see ``read_yaml``) into dataclass ``cls``; an empty file is an error."""
    data = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty; it needs the keys of {cls.__name__}")
    return from_dict(cls, data, where=str(path))


def override(obj: T, **changes) -> T:
    """A copy of ``obj`` with the non-None ``changes`` applied (CLI flags), type-checked."""
    hints = typing.get_type_hints(type(obj))
    clean = {}
    for k, v in changes.items():
        if v is None:
            continue
        if k not in hints:
            raise ConfigError(f"unknown option {k!r} for {type(obj).__name__}")
        clean[k] = _check_type(v, hints[k], f"--{k.replace('_', '-')}")
    return dataclasses.replace(obj, **clean)  # type: ignore[type-var]


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)


def save_resolved(obj, path: str | os.PathLike, versions: dict | None = None) -> Path:
    """Write the resolved config (and library versions) as JSON beside a run's outputs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config": to_dict(obj) if dataclasses.is_dataclass(obj) else obj}
    if versions is not None:
        payload["versions"] = versions
    return write_text_atomic(path, json.dumps(payload, indent=2, default=str))
