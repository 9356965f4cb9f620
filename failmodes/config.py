"""Typed configuration: dataclasses are the truth; YAML -> dataclass -> CLI overrides.

Unknown keys and wrong types fail at load time, naming the key and the file.

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

from ._atomic import write_text_atomic
from .errors import FailmodesError


T = TypeVar("T")


class ConfigError(ValueError, FailmodesError):
    """A config file or override is wrong; one line naming the key, the file and the fix."""


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
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        items = [_check_type(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, checking keys and types recursively."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} "
                          f"(allowed: {', '.join(fields)})")
    kwargs = {k: _check_type(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def load_yaml(cls: type[T], path: str | os.PathLike) -> T:
    """Read a YAML file into dataclass ``cls``."""
    import yaml
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
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
    return dataclasses.replace(obj, **clean)


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
