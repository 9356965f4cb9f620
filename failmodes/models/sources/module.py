"""Your own network: ``package.module:callable`` or ``path/to/file.py:callable``, a class or
factory called with ``arch_args`` (and ``num_classes`` when it takes one); weights come
from ``--weights FILE``. Both keep the provenance kind ``module``."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from torch import nn

from ..errors import ModelError, first_line
from ._arch import ArchitectureSource, Builder
from ._base import register_source


class _CallableSource(ArchitectureSource):
    kind = "module"
    input = "any"
    classes = "weights"

    def builder(self, arch: str) -> Builder:
        fn = self.target(arch)
        takes_n = _accepts(fn, "num_classes")

        def build(num_classes=None, **kw):
            extra = {"num_classes": num_classes} if num_classes is not None and takes_n else {}
            net = fn(**extra, **kw)
            if not isinstance(net, nn.Module):
                raise ModelError(f"--model {arch} returned {type(net).__name__}, not an nn.Module")
            return net
        return build

    def target(self, arch: str) -> Callable:
        raise NotImplementedError


@register_source
class PythonFileSource(_CallableSource):
    syntax = "file.py:callable"
    order = 80

    def matches(self, src) -> bool:
        return src.arch is not None and src.arch.rpartition(":")[0].endswith(".py")

    def describe(self) -> str:
        return ("a class or factory in your own .py file, with --weights FILE and "
                "--arch-arg KEY=VALUE")

    def absolute(self, arch: str) -> str:
        f, _, attr = arch.rpartition(":")
        return f"{Path(f).expanduser().resolve()}:{attr}"

    def target(self, arch: str) -> Callable:
        file, _, attr = arch.rpartition(":")
        path = Path(file).expanduser().resolve()
        if not path.is_file():
            raise ModelError(f"--model {arch}: {path} not found")
        mod_name = f"_failmodes_user_{abs(hash(str(path)))}"
        if mod_name in sys.modules:
            module = sys.modules[mod_name]
        else:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:
                raise ModelError(f"--model {arch}: {path} cannot be imported as a module")
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(path.parent))  # so the file may import its neighbours
            try:
                spec.loader.exec_module(module)
            except SyntaxError as e:
                raise ModelError(f"--model {arch}: {path.name} line {e.lineno}: SyntaxError: "
                                 f"{e.msg}") from None
            except (Exception, SystemExit) as e:  # whatever the user's module raises on import
                raise ModelError(f"--model {arch}: importing {path.name} raised "
                                 f"{first_line(e)}") from None
            finally:
                sys.path.remove(str(path.parent))
            sys.modules[mod_name] = module
        return _callable(module, arch, file, attr)


@register_source
class ModuleSource(_CallableSource):
    syntax = "package.module:callable"
    order = 90  # the catch-all of ARCH:ATTR that no prefixed source claimed

    def matches(self, src) -> bool:
        return src.arch is not None and ":" in src.arch

    def describe(self) -> str:
        return ("a class or factory of an importable module, with --weights FILE and "
                "--arch-arg KEY=VALUE")

    def target(self, arch: str) -> Callable:
        name, _, attr = arch.rpartition(":")
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise ModelError(f"--model {arch}: cannot import {name} ({e})") from None
        except SyntaxError as e:
            raise ModelError(f"--model {arch}: {e.filename} line {e.lineno}: SyntaxError: "
                             f"{e.msg}") from None
        except (Exception, SystemExit) as e:
            raise ModelError(f"--model {arch}: importing {name} raised {first_line(e)}") from None
        return _callable(module, arch, name, attr)


def _callable(module, arch: str, target: str, attr: str) -> Callable:
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ModelError(f"--model {arch}: {target} has no callable {attr!r}")
    return fn


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
