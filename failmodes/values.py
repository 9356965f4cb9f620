"""The one check of the values a user types: command-line options and the study keys of the
same name. Each kind of value (a seed, a device, a thread count, mean/std, a class count, an
input size, architecture arguments, a stressor list, an output folder, repeats) is checked
here once, with its bounds; the CLI's options (``cli/_app.py``) and the study loader call
these functions, so ``--seed`` and ``seed:`` refuse the same values with the same words.

A refused value raises ``OptionValueError`` (one line naming the option and the fix; exit 2).

>>> seed("42"), device("cuda:1"), input_size(224)
(42, 'cuda:1', 224)
>>> seed(2 ** 64)
Traceback (most recent call last):
...
failmodes.values.OptionValueError: --seed 18446744073709551616: give an integer from 0 to 9223372036854775807
>>> norm_stats("nan,0,0", "--mean")
Traceback (most recent call last):
...
failmodes.values.OptionValueError: --mean 'nan,0,0': 'nan' is not a finite number
"""
from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path

from .errors import FailmodesError

__all__ = ["MAX_INPUT_SIZE", "MAX_NUM_CLASSES", "MAX_PROBE_REPEATS", "MAX_SEED",
           "NAMED_NORM_STATS", "OptionValueError", "arch_arg", "arch_value", "device",
           "in_path", "input_size", "model_name", "name_list", "name_text", "norm_stats", "num_classes",
           "out_dir", "repeats", "seed", "threads"]

log = logging.getLogger("failmodes")

# torch.Generator.manual_seed takes a signed 64-bit integer; numpy's SeedSequence any
# non-negative one. Seeds are stored in cell keys, so one range for both: [0, 2^63).
MAX_SEED = 2 ** 63 - 1
# The widest classifier heads in use have ~22 000 outputs (ImageNet-21k); 10^5 leaves room
# and stops a typo (10^9 outputs of a 512-wide head is 2 TB of weights) before any allocation.
MAX_NUM_CLASSES = 100_000
# Pixels per side a network is fed; 4096² × 3 float32 is 200 MB per image already.
MAX_INPUT_SIZE = 4096
# probe --repeats: each repeat is one stressed copy of every value's image, held together.
MAX_PROBE_REPEATS = 1000
# POSIX: one path component at most NAME_MAX bytes, a whole path at most PATH_MAX.
_NAME_MAX, _PATH_MAX = 255, 4095
NAMED_NORM_STATS = ("imagenet", "cifar10")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d{1,3})?)$")
_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
_ARCH_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class OptionValueError(ValueError, FailmodesError):
    """A value given for an option or a study key is out of its range; one line naming it."""


def _at(where: str, value=None, quote: bool = False) -> str:
    # "--seed 7" in the library; the CLI passes where="" (click already names the option).
    shown = "" if value is None else (repr(value) if quote else str(value))
    return " ".join(p for p in (where, shown) if p) + ("" if value is not None else
                                                        (": " if where else ""))


def _int(value, where: str) -> int:
    if isinstance(value, bool):
        raise OptionValueError(f"{_at(where, value, True)}: give an integer")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        raise OptionValueError(f"{_at(where, text, True)}: give an integer") from None


def _bounded(value, where: str, low: int, high: int, unit: str = "") -> int:
    n = _int(value, where)
    if not low <= n <= high:
        raise OptionValueError(f"{_at(where, n)}: give an integer from {low} to {high}{unit}")
    return n


def seed(value, where: str = "--seed") -> int:
    """A seed: an integer in [0, 2^63) (torch generators take 64-bit signed seeds)."""
    return _bounded(value, where, 0, MAX_SEED)


def device(value, where: str = "--device") -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; whether CUDA is there is checked when the
    device is used (``failmodes._device.resolve_device``). ``meta``, ``mps`` and the rest
    are refused: failmodes runs on CPUs and CUDA GPUs."""
    text = str(value).strip().lower()
    if not _DEVICE_RE.match(text):
        raise OptionValueError(f"{_at(where, str(value), True)}: failmodes runs on auto, cpu, cuda or "
                               "cuda:N")
    return text


def threads(value, where: str = "--threads") -> int:
    """Torch CPU threads: at least 1; more than this machine's CPUs is lowered to their
    number, with a warning (more threads than cores only slow every one of them down)."""
    n = _int(value, where)
    if n < 1:
        raise OptionValueError(f"{_at(where, n)}: give at least 1 thread")
    cpus = os.cpu_count() or 1
    if n > cpus:
        log.warning("warning: %s %d is more than the %d CPUs here; using %d",
                    where or "--threads", n, cpus, cpus)
        return cpus
    return n


def num_classes(value, where: str = "--num-classes") -> int:
    """Outputs of a classifier head: 1 .. ``MAX_NUM_CLASSES``."""
    return _bounded(value, where, 1, MAX_NUM_CLASSES)


def input_size(value, where: str = "--input-size") -> int:
    """Pixels per side of a square image: 1 .. ``MAX_INPUT_SIZE``."""
    return _bounded(value, where, 1, MAX_INPUT_SIZE, " pixels")


def repeats(value, where: str = "--repeats") -> int:
    """Stressor draws a probe averages: 1 .. ``MAX_PROBE_REPEATS``."""
    return _bounded(value, where, 1, MAX_PROBE_REPEATS)


def norm_stats(value, where: str = "--mean", *, std: bool = False) -> str:
    """``--mean``/``--std`` as typed: ``R,G,B`` (three finite numbers; a std above 0) or a
    name (``imagenet``, ``cifar10``). Returned as text, for ``models.spec_from_options``.
    Whether the values look like the 0-1 scale is a warning at evaluation, not a refusal."""
    text = str(value).strip()
    if text.lower() in NAMED_NORM_STATS:
        return text.lower()
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise OptionValueError(f"{_at(where, text, True)}: give R,G,B (e.g. 0.485,0.456,0.406) or "
                               f"{' / '.join(NAMED_NORM_STATS)}")
    for p in parts:
        try:
            x = float(p)
        except ValueError:
            raise OptionValueError(f"{_at(where, text, True)}: {p!r} is not a number") from None
        if not math.isfinite(x):
            raise OptionValueError(f"{_at(where, text, True)}: {p!r} is not a finite number")
        if std and x <= 0:
            raise OptionValueError(f"{_at(where, text, True)}: a standard deviation must be above 0")
    return text


def arch_arg(item, where: str = "--arch-arg") -> str:
    """One ``KEY=VALUE`` architecture argument: KEY an identifier, VALUE a YAML scalar; a
    number must be finite and not negative (a width, depth or rate below 0 builds no
    network: torch fails deep inside its constructor)."""
    import yaml
    key, sep, raw = str(item).partition("=")
    key = key.strip()
    if not sep or not _ARCH_KEY_RE.match(key):
        raise OptionValueError(f"{_at(where, item, True)}: write KEY=VALUE with KEY a Python "
                               "name (e.g. depth=2)")
    try:
        v = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        v = raw
    arch_value(key, v, _at(where, item, True))
    return f"{key}={raw}"


def arch_value(key: str, v, where: str) -> None:
    """One architecture argument's value (a study's ``arch_args`` too): numbers finite and
    not negative."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return
    if not math.isfinite(v):
        raise OptionValueError(f"{_at(where)}{key} must be a finite number")
    if v < 0:
        raise OptionValueError(f"{_at(where)}{key} must not be negative")


def name_list(value, where: str) -> list[str] | None:
    """A comma-separated list of names (``--stressors fog,glass_blur``); None when not given.
    Given but empty (``''``, ``','``) is refused: an empty list must not mean "all"."""
    if value is None:
        return None
    names = [s.strip() for s in str(value).split(",") if s.strip()]
    if not names:
        raise OptionValueError(f"{_at(where)}is empty; name at least one (leave the option out "
                               "for the default)")
    return names


def model_name(value, where: str = "--name") -> str:
    """A model's name in the store, its figures and its report anchors: letters, digits and
    ``_ - . +``, starting with a letter or digit, no ``..`` (a name is part of file names)."""
    text = str(value)
    if not _MODEL_NAME_RE.match(text) or ".." in text:
        raise OptionValueError(f"{_at(where, text, True)}: a model name must be letters, digits, "
                               "'_', '-', '.', '+' (starting with a letter or digit, no '..' "
                               "and no path separator)")
    return text


def name_text(value, where: str) -> str | None:
    """``name_list`` joined again by commas (what a command taking text expects)."""
    names = name_list(value, where)
    return None if names is None else ",".join(names)


def in_path(value, where: str = "path") -> str:
    """A path the command reads (a run folder, a study file, an image): not empty, within the
    system's name and path limits (beyond them the system refuses it: a bad value, exit 2,
    not a machine fault). Returned as text; the command makes it a Path."""
    text = str(value)
    if not text.strip():
        raise OptionValueError(f"{_at(where)}is empty; name a file or folder (. for this one)")
    out_dir(text, where)
    return text


def out_dir(value, where: str = "--out") -> Path:
    """An output folder: not empty, each part at most 255 bytes and the whole at most 4095
    (beyond, the system refuses to create it: a bad value, not a machine fault)."""
    text = str(value)
    if not text.strip():
        raise OptionValueError(f"{_at(where)}is empty; name a folder (e.g. --out runs/x, or . for "
                               "this one)")
    if "\x00" in text:
        raise OptionValueError(f"{_at(where)}holds a NUL byte")
    raw = os.fsencode(text)
    if len(raw) > _PATH_MAX:
        raise OptionValueError(f"{_at(where)}the path is {len(raw)} bytes long (at most "
                               f"{_PATH_MAX}); choose a shorter folder")
    for part in Path(text).parts:
        if len(os.fsencode(part)) > _NAME_MAX:
            raise OptionValueError(f"{_at(where)}the folder name {part[:24]!r}... is "
                                   f"{len(os.fsencode(part))} bytes (at most {_NAME_MAX} per "
                                   "name); choose a shorter one")
    return Path(text)


def in_memory_models(models) -> None:
    """Models handed to ``run_evaluation(models=...)`` / ``run_study(models=...)``: each a
    ``failmodes.models.Classifier`` (or an object that carries ``class_names`` and
    ``num_classes`` like one). A bare ``nn.Module`` has no mean/std or class names, and
    guessing them gives silent wrong numbers, so it is refused in one line naming
    ``fm.models.wrap``."""
    from .errors import InputError
    for name, m in dict(models or {}).items():
        if all(hasattr(m, a) for a in ("class_names", "num_classes")) and callable(m):
            continue
        what = type(m).__name__
        raise InputError(f"models[{name!r}] is a bare {what}, not a failmodes Classifier; wrap "
                         "it first: fm.models.wrap(net, mean=(R, G, B), std=(R, G, B), "
                         "classes=[...]) with the mean/std it was trained with")
