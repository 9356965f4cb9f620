"""The stressor registry: the one list of stressors that the CLI, grid, report and tests read.

A leaf of the package: the family modules (``noise``, ``blur``, ``weather``, ``digital``,
``sweeps``, ``adversarial``, or any new one) import ``register_stressor`` from here, and
``failmodes.stressors`` imports every family module, so the registry is full whenever the
package is imported and a new family is one new module.

A stressor maps a batch of images ``N×3×H×W`` float in ``[0, 1]`` to the same batch
under a shift. Corruptions take a severity in ``[0, 5]`` and look up their parameters in
a per-resolution severity table (row 0 = identity parameters, rows 1..5 = the published
levels); parametric sweeps take their natural unit (std, degrees, ...) as ``severity``.

>>> from failmodes.stressors import get_stressor
>>> y = get_stressor("gaussian_noise")(torch.rand(2, 3, 32, 32), 3.0, seed=0)
"""
from __future__ import annotations

import fnmatch
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .._device import exact_fp32
from ..constants import FAMILY_ORDER
from ..errors import FailmodesError
from ..ranges import split_sweep
from ._chunks import run_chunked, value_range
from ._rng import ImageRNG

CORRUPTION_FAMILIES = ("noise", "blur", "weather", "digital")
SWEEP_FAMILY = "sweep"
# Attacks: parametric in their budget ε like sweeps, but they need the model (and labels),
# so their cells are per model and never paired across models.
ADVERSARIAL_FAMILY = "adversarial"

# The published CIFAR-10-C order (15 benchmark corruptions, then the 4 extras); listings,
# suites and the report follow it.
CIFAR10C_ORDER = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
    "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
    "elastic_transform", "pixelate", "jpeg_compression",
    "speckle_noise", "gaussian_blur", "spatter", "saturate",
)

# Severity table by image side: CIFAR-10-C's (32 px) below 64 px, Tiny-ImageNet-C's
# (64 px, make_tinyimagenet_c.py) below 128 px, ImageNet-C's (224 px) above.
CIFAR_TABLE_MAX_SIDE = 64
TINY_TABLE_MAX_SIDE = 128
# The published set each table reproduces (listings, probe captions, the report).
TABLE_SOURCES = {"cifar": "CIFAR-10-C", "tinyimagenet": "Tiny-ImageNet-C",
                 "imagenet": "ImageNet-C"}

# op(x, params, rng) -> images; attacks also take model=, labels=, options= keywords.
OpFn = Callable[..., torch.Tensor]


class StressorError(ValueError, FailmodesError):
    """Bad stressor name, severity or input; the message is one line meant for users."""


@dataclass(frozen=True)
class Stressor:
    """One named shift.

    ``op(x, params, rng)`` does the work on a validated batch: ``x`` float32 N×3×H×W in
    [0, 1] (never mutate it), ``params`` the resolved parameter tuple for this severity,
    ``rng`` the per-image randomness. The wrapper clamps and quantises the result.
    """

    name: str
    family: str
    op: OpFn
    # Corruptions: {"cifar" | "tinyimagenet" | "imagenet": [row0..row5]}, each row a tuple.
    tables: dict | None = None
    param_names: tuple = ()
    # Sweeps: natural unit, allowed range, the value that leaves images unchanged.
    unit: str = "severity"
    value_range: tuple[float, float] = (0.0, 5.0)
    identity: float = 0.0
    description: str = ""
    # Sweep severities are interpolated by the op itself; corruptions interpolate rows.
    rounding: str = "floor"  # how the float result meets the 8-bit grid: floor | round
    # True for the 15 CIFAR-10-C benchmark corruptions, False for the 4 extras and sweeps.
    benchmark: bool = False
    # Fractional severities: "params" interpolates the table rows (the default); "outputs"
    # blends the op's outputs at the two neighbouring rows, for deterministic ops whose
    # parameters act discretely (defocus's binary disk) so in-between rows mean little.
    interpolate: str = "params"
    # Attacks: the op also receives ``model=``, ``labels=`` and ``options=``.
    needs_model: bool = False
    # Documented keyword options with their defaults (attacks: steps, step, restarts, ...);
    # ``get_stressor("pgd_linf[steps=20]")`` returns a copy with some of them set.
    options: tuple = ()
    # False when the output does not depend on the seed (blurs, digital ops, most sweeps).
    random: bool = True
    # False when the published table is not monotone in damage (glass_blur 11.8 11.9 11.7
    # 19.1 18.2 grey levels on 100 CIFAR images, saturate 11.6 15.0 8.1 ...).
    monotone: bool = True
    # For ops whose result is 8-bit by nature (a codec or an integer resampler: JPEG,
    # pixelate): ``u8_op(x, params, out=None)`` gives it as uint8 0..255 (``op`` is that
    # / 255). The wrapper divides it straight into the output instead of quantising a float
    # copy: the same numbers (a test checks) for one pass over the batch instead of seven.
    # Given ``out`` (the chunk's rows of the output), an op may instead write the float32
    # k/255 there itself and return ``out`` (pixelate gathers them from its small planes).
    u8_op: Callable | None = None
    # CPU chunks of ``chunk_scale`` x _chunks.CHUNK_PIXELS pixels. 4 for ops made of many
    # small steps whose per-call cost a larger chunk spreads over more images (fog's
    # plasma levels, the RNG-bound noises, motion blur's and snow's runs of images that
    # share a tap offset, which grow as more angles are sorted together); measured per
    # stressor at 32 and 224 px, both 1.1-2x faster, those left at 1 were as fast or slower.
    chunk_scale: int = 1

    @property
    def is_corruption(self) -> bool:
        return self.family in CORRUPTION_FAMILIES

    @property
    def base_name(self) -> str:
        return self.name.split("[", 1)[0]

    def table_family(self, height: int, params: str = "auto") -> str:
        if params == "auto":
            if height < CIFAR_TABLE_MAX_SIDE:
                return "cifar"
            if height < TINY_TABLE_MAX_SIDE and self.tables and "tinyimagenet" in self.tables:
                return "tinyimagenet"
            return "imagenet"
        if self.tables is not None and params not in self.tables:
            raise StressorError(f"{self.name}: unknown parameter table {params!r}; "
                                f"choose from auto, {', '.join(self.tables)}")
        return params

    def resolve(self, severity: float, height: int = 32, params: str = "auto") -> tuple:
        """Parameters for ``severity``: exact table rows at integers, linear in between."""
        if self.tables is None:
            return (float(severity),)
        rows = self.tables[self.table_family(height, params)]
        lo = min(int(math.floor(severity)), len(rows) - 2)
        t = severity - lo
        a, b = rows[lo], rows[lo + 1]
        if t == 0:
            return tuple(a)
        return tuple(_lerp(u, v, t) for u, v in zip(a, b))

    def __call__(self, images: torch.Tensor, severity: float, *, seed: int = 0,
                 indices: torch.Tensor | Sequence[int] | None = None,
                 params: str = "auto", model=None,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
        severity = self.check_value(severity)
        _check_images(images, self.name)
        if self.needs_model and (model is None or labels is None):
            raise StressorError(f"{self.name} attacks a model: pass model= and labels=")
        n = images.shape[0]
        if indices is None:
            indices = torch.arange(n)
        indices = torch.as_tensor(indices, dtype=torch.int64)
        if indices.shape != (n,):
            raise StressorError(f"{self.name}: indices has shape {tuple(indices.shape)}, "
                                f"expected ({n},)")
        if severity == self.identity or n == 0:
            return images.clone()
        if self.needs_model:  # attacks run whole batches: the model sees them as given
            labels = torch.as_tensor(labels, dtype=torch.int64, device=images.device)
            if labels.shape != (n,):
                raise StressorError(f"{self.name}: labels has shape {tuple(labels.shape)}, "
                                    f"expected ({n},)")
            rng = ImageRNG.for_images(self.name, severity, seed, indices, images.device)
            y = self.op(images.to(torch.float32), (severity,), rng, model=model, labels=labels,
                        options=dict(self.options))
            return quantize(y, self.rounding).to(images.dtype)
        # No TF32 on CUDA (the blurs' convolutions and matmuls): the 8-bit grid as on the CPU.
        with exact_fp32(images.device):
            return run_chunked(functools.partial(self._stress, severity=severity, seed=seed,
                                                 params=params), images, indices,
                               scale=self.chunk_scale)

    def _stress(self, images: torch.Tensor, indices: torch.Tensor,
                out: torch.Tensor | None = None, *, severity: float, seed: int,
                params: str) -> torch.Tensor:
        x = images.to(torch.float32)
        lo = math.floor(severity)
        blend = self.interpolate == "outputs" and self.tables is not None and severity != lo
        if self.u8_op is not None and not blend:
            # (an 8-bit op ignores the seed: no per-image generator to derive)
            y8 = self.u8_op(x, self.resolve(severity, images.shape[-2], params), out=out)
            if y8 is out:  # the op wrote the float32 k/255 there itself
                return out
            # float32 k/255, as op gives: the division in float32, then into out's dtype
            if out is not None and out.dtype == torch.float32:
                return torch.div(y8, 255.0, out=out)
            y = y8.to(torch.float32).div_(255.0).to(images.dtype)
            return y if out is None else out.copy_(y)
        else:
            rng = ImageRNG.for_images(self.name, severity, seed, indices, images.device)
            if blend:
                assert self.tables is not None
                rows = self.tables[self.table_family(images.shape[-2], params)]
                a, b = self.op(x, tuple(rows[lo]), rng), self.op(x, tuple(rows[lo + 1]), rng)
                y = torch.lerp(a, b, severity - lo)
            else:
                y = self.op(x, self.resolve(severity, images.shape[-2], params), rng)
        if out is not None and out.dtype == torch.float32:
            return quantize(y, self.rounding, out=out)
        y = quantize(y, self.rounding).to(images.dtype)
        return y if out is None else out.copy_(y)

    def check_value(self, severity) -> float:
        """``severity`` as a float, or a StressorError naming this stressor, the value and its
        allowed range (corruptions: severity in [0, 5]; sweeps: their natural unit)."""
        try:
            s = float(severity)
        except (TypeError, ValueError):
            raise StressorError(f"{self.name}: severity {severity!r} is not a number") from None
        lo, hi = self.value_range
        if not math.isfinite(s) or s < lo or s > hi:
            what = "severity" if self.is_corruption else f"value ({self.unit})"
            raise StressorError(f"{self.name}: {what} {severity!r} is outside [{lo:g}, {hi:g}]")
        return s

    def describe(self) -> dict:
        """A JSON-able summary: name, family, unit, range and the parameter tables."""
        d = {"name": self.name, "family": self.family, "benchmark": self.benchmark,
             "unit": self.unit,
             "range": list(self.value_range), "identity": self.identity,
             "description": self.description, "param_names": list(self.param_names),
             "needs_model": self.needs_model, "options": dict(self.options)}
        if self.tables is not None:
            d["tables"] = {k: [list(r) for r in rows[1:]] for k, rows in self.tables.items()}
        return d


def _lerp(u, v, t):
    if isinstance(u, (tuple, list)):
        return type(u)(_lerp(a, b, t) for a, b in zip(u, v))
    if u == math.inf:
        # An infinite identity entry (shot noise's photon count) interpolates its
        # reciprocal linearly: 1/c goes 0 -> 1/v as t goes 0 -> 1.
        return v / t
    return u + (v - u) * t


def quantize(y: torch.Tensor, rounding: str = "floor", *,
             out: torch.Tensor | None = None) -> torch.Tensor:
    """Clamp to [0, 1] and snap to k/255: floor mirrors the reference's ``np.uint8(float)``.

    The 1e-4 grey-level slack keeps values that are exactly on the grid in exact
    arithmetic (128.0 computed as 127.99999) from dropping a level. ``out`` (float32, y's
    shape) receives the result instead of a new tensor.
    """
    y = torch.mul(y, 255.0, out=out) if out is not None else y * 255.0
    y = y.add_(1e-4).floor_() if rounding == "floor" else y.round_()
    return y.clamp_(0, 255).div_(255.0)


def _check_images(images, name: str) -> None:
    if not isinstance(images, torch.Tensor):
        raise StressorError(f"{name}: images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        hint = (" (grayscale or RGBA? convert to RGB first)"
                if images.ndim == 4 and images.shape[1] in (1, 2, 4) else "")
        raise StressorError(f"{name}: images must be N×3×H×W, got {tuple(images.shape)}{hint}")
    if not images.is_floating_point():
        raise StressorError(f"{name}: images must be float in [0, 1], got {images.dtype} "
                            "(divide uint8 by 255)")
    if images.numel():
        # One pass: min/max propagate NaN, and inf shows up as an end of the range.
        lo, hi = value_range(images)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise StressorError(f"{name}: images contain NaN or inf")
        if lo < 0 or hi > 1:
            raise StressorError(f"{name}: images must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]")


_REGISTRY: dict[str, Stressor] = {}


def register_stressor(name: str, *, family: str, tables: dict | None = None,
                      param_names: Sequence[str] = (), unit: str = "severity",
                      value_range: tuple[float, float] | None = None, identity: float = 0.0,
                      description: str = "", rounding: str = "floor", benchmark: bool = False,
                      interpolate: str = "params", needs_model: bool = False,
                      options: dict | None = None, random: bool = True, monotone: bool = True,
                      u8_op: Callable | None = None, chunk_scale: int = 1):
    """Decorator filing ``op(x, params, rng)`` under ``name``.

    Corruptions pass ``tables`` ({"cifar": rows, "tinyimagenet": rows, "imagenet": rows},
    rows[0] = identity);
    sweeps pass ``family="sweep"``, ``unit``, ``value_range`` and ``identity``.
    ``random=False`` marks an op whose output ignores the seed; ``monotone=False`` one whose
    damage does not grow with severity through its published table; ``u8_op`` the same op
    returning uint8 0..255 (or writing k/255 into ``out=``), for ops whose result is 8-bit
    by nature (see ``Stressor``); ``chunk_scale`` the size of its CPU chunks in multiples
    of the default (see ``Stressor``).
    """
    if family not in CORRUPTION_FAMILIES + (SWEEP_FAMILY, ADVERSARIAL_FAMILY):
        raise ValueError(f"unknown family {family!r}")

    def wrap(op: OpFn) -> OpFn:
        if name in _REGISTRY:
            raise ValueError(f"stressor {name!r} registered twice")
        if tables is not None:
            for fam, rows in tables.items():
                if len(rows) != 6:
                    raise ValueError(f"{name}: table {fam!r} needs 6 rows (identity + 5)")
        rng = value_range or ((0.0, 5.0) if family in CORRUPTION_FAMILIES
                              else (-math.inf, math.inf))
        _REGISTRY[name] = Stressor(name=name, family=family, op=op, tables=tables,
                                   param_names=tuple(param_names), unit=unit,
                                   value_range=rng, identity=identity,
                                   description=description or (op.__doc__ or "").strip().split("\n")[0],
                                   rounding=rounding, benchmark=benchmark,
                                   interpolate=interpolate, needs_model=needs_model,
                                   options=tuple((options or {}).items()), random=random,
                                   monotone=monotone, u8_op=u8_op,
                                   chunk_scale=chunk_scale)
        return op

    return wrap


def get_stressor(name: str) -> Stressor:
    """The stressor called ``name``; unknown names raise one line listing close matches.

    A stressor with options takes them in brackets: ``pgd_linf[steps=20,restarts=2]``.
    """
    if "[" in name:
        return _with_options(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        import difflib
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise StressorError(f"unknown stressor {name!r}{hint}; `failmodes stressors` lists them") from None


def _with_options(spec: str) -> Stressor:
    import dataclasses
    base, _, rest = spec.partition("[")
    st = get_stressor(base.strip())
    if not rest.endswith("]"):
        raise StressorError(f"{spec!r}: options go in brackets, e.g. {base}[steps=20]")
    opts = dict(st.options)
    if not opts:
        raise StressorError(f"{base} takes no options")
    given = {}
    for item in filter(None, (p.strip() for p in rest[:-1].split(","))):
        key, eq, val = item.partition("=")
        key = key.strip()
        if not eq or key not in opts:
            raise StressorError(f"{spec!r}: unknown option {key!r}; {base} takes "
                                f"{', '.join(opts)}")
        try:
            v = float(val)
        except ValueError:
            raise StressorError(f"{spec!r}: option {key}={val!r} is not a number") from None
        if not math.isfinite(v) or v < 0 or (key in ("steps", "restarts") and
                                             (v != int(v) or v < 1 or v > 1000)):
            raise StressorError(f"{spec!r}: option {key}={val} is out of range")
        given[key] = int(v) if key in ("steps", "restarts", "random_start") else v
    opts.update(given)
    # The canonical name lists every option that differs from the default, sorted, so
    # the same attack always gets the same cell key.
    diff = {k: v for k, v in sorted(opts.items()) if v != dict(st.options)[k]}
    name = st.name if not diff else f"{st.name}[{','.join(f'{k}={v:g}' for k, v in diff.items())}]"
    return dataclasses.replace(st, name=name, options=tuple(opts.items()))


def list_stressors(pattern: str = "*", family: str | None = None) -> list[str]:
    """Names matching a shell-style ``pattern``: corruptions in the CIFAR-10-C order
    (15 benchmark, then 4 extras), then the others by family (``FAMILY_ORDER``: sweeps,
    then attacks), each family in registration order (whatever order its modules load in)."""
    names = [n for n, s in _REGISTRY.items()
             if fnmatch.fnmatchcase(n, pattern) and (family is None or s.family == family)]
    rank = {n: i for i, n in enumerate(CIFAR10C_ORDER)}
    fam = {f: i for i, f in enumerate(FAMILY_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)),
                                        fam.get(_REGISTRY[n].family, len(fam))))


def parse_sweep(spec: str) -> tuple[str, list[float]]:
    """``"rotation=-90:90:15"`` -> ``("rotation", [-90.0, -75.0, ..., 90.0])``.

    The grammar is ``failmodes.ranges``'; the name must be a registered stressor
    (corruptions take severities 0..5) and every value must lie in its range.
    """
    name, values = split_sweep(spec)
    stressor = get_stressor(name)
    for v in values:
        stressor.check_value(v)
    return name, values


def describe_stressors(pattern: str = "*") -> list[dict]:
    """``describe()`` of every stressor matching ``pattern``, in listing order (CLI, report)."""
    return [_REGISTRY[n].describe() for n in list_stressors(pattern)]


def suite(name: str) -> list[str]:
    """Stressor names of a suite: cifar10-c (15), cifar10-c-extra (4), all (19), sweeps."""
    corr = [n for n in list_stressors() if _REGISTRY[n].is_corruption]
    suites = {"cifar10-c": [n for n in corr if _REGISTRY[n].benchmark],
              "cifar10-c-extra": [n for n in corr if not _REGISTRY[n].benchmark],
              "all": corr,
              "sweeps": list_stressors(family=SWEEP_FAMILY)}
    if name not in suites:
        raise StressorError(f"unknown suite {name!r}; choose from {', '.join(suites)}")
    return suites[name]

