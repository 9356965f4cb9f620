"""Architecture names -> network builders: a registry name, ``tv:NAME`` (torchvision),
``timm:NAME`` (timm), ``package.module:callable`` or ``path/to/file.py:callable``.

>>> build, kind = resolve_arch("small_cnn")
>>> kind
'registry'
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from torch import nn

from .wrapper import ModelError


def _library_builder(create: Callable[..., nn.Module], name: str, **fixed) -> Callable[..., nn.Module]:
    # num_classes only when asked: None keeps the library's own head (timm, torchvision).
    def build(num_classes=None, **kw):
        extra = {} if num_classes is None else {"num_classes": num_classes}
        return create(name, **fixed, **extra, **kw)
    return build


def _timm(name: str):
    try:
        import timm
    except ImportError:
        raise ModelError(f"timm:{name} needs timm: pip install 'failmodes[timm]'") from None
    if name not in timm.list_models() and not timm.is_model(name):
        raise ModelError(f"timm:{name} is not a timm model (timm.list_models('*{name[:5]}*') "
                         "lists similar names)")

    return _library_builder(timm.create_model, name, pretrained=False)


def _torchvision(name: str):
    import torchvision.models as tvm
    if name not in tvm.list_models(module=tvm):
        raise ModelError(f"tv:{name} is not a torchvision classifier "
                         "(e.g. tv:resnet50, tv:vit_b_16, tv:mobilenet_v3_small)")

    return _library_builder(tvm.get_model, name, weights=None)


def _user_callable(arch: str) -> Callable:
    target, _, attr = arch.rpartition(":")
    if target.endswith(".py"):
        path = Path(target).expanduser().resolve()
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
            finally:
                sys.path.remove(str(path.parent))
            sys.modules[mod_name] = module
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise ModelError(f"--model {arch}: cannot import {target} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ModelError(f"--model {arch}: {target} has no callable {attr!r}")
    return fn


def resolve_arch(arch: str) -> tuple[Callable[..., nn.Module], str]:
    """``arch`` -> (builder(num_classes=None|N, **arch_args) -> network, kind)."""
    if arch.startswith("timm:"):
        return _timm(arch[5:]), "timm"
    if arch.startswith("tv:"):
        return _torchvision(arch[3:]), "torchvision"
    if ":" in arch:
        fn = _user_callable(arch)
        takes_n = _accepts(fn, "num_classes")

        def build_user(num_classes=None, **kw):
            extra = {"num_classes": num_classes} if num_classes is not None and takes_n else {}
            net = fn(**extra, **kw)
            if not isinstance(net, nn.Module):
                raise ModelError(f"--model {arch} returned {type(net).__name__}, not an nn.Module")
            return net
        return build_user, "module"
    from .registry import get_entry
    entry = get_entry(arch)

    def build_registry(num_classes=None, **kw):
        return entry.build(num_classes=num_classes or entry.num_classes, **kw)
    return build_registry, "registry"


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
