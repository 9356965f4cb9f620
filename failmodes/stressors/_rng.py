"""Counter-based per-image randomness.

Why our own generator: the Stressor contract says image *i*'s noise depends only on
(stressor, severity, seed, dataset index i), never on batch size, order or device.
A stateless hash of (key_i, stream, element counter) gives exactly that, batched, on any
device, with no Python loop over images; torch.Generator streams cannot.

The element hash is murmur3's 32-bit finaliser on int32 tensors (multiplication wraps
mod 2**32, shifts are masked to be logical), run in cache-sized chunks of images on CPU:
about as fast as ``torch.rand`` (measured ~16 us per 32×32×3 image on one core).
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

_M32 = 0xFFFFFFFF
# Elements per CPU chunk: 128 Ki int32 (512 KB) stay in L2, which makes the hash ~6x
# faster than running it over a whole batch in main memory. 2^17 rather than 2^16: on two
# stressor threads, half as many torch calls contend for the GIL (2000 32-px images, two
# threads: gaussian noise 56 -> 68 k img/s, impulse 53 -> 68 k, glass 20 -> 23 k; the
# others within noise). The numbers drawn do not depend on it (counter-based).
_CPU_CHUNK = 1 << 17
_GOLDEN = -1640531535  # 0x9E3779B1 as int32: Weyl increment of the element counter
_C1 = -2048144789  # 0x85EBCA6B as int32
_C2 = -1028477387  # 0xC2B2AE35 as int32
_INV24 = 1.0 / 16777216.0


def _as_i32(v: int) -> int:
    v &= _M32
    return v - (1 << 32) if v >= (1 << 31) else v


def _fmix32_(h: torch.Tensor) -> torch.Tensor:
    """murmur3's finaliser, in place on an int32 tensor (wrapping arithmetic)."""
    h ^= (h >> 16) & 0xFFFF
    h *= _C1
    h ^= (h >> 13) & 0x7FFFF
    h *= _C2
    h ^= (h >> 16) & 0xFFFF
    return h


def _fmix32_py(h: int) -> int:
    """The same finaliser on a Python int (the slow, obvious reference; used for keys)."""
    h &= _M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


def base_key(*parts) -> int:
    """A stable 32-bit key from any printable parts (stressor name, severity, seed, stream)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


class ImageRNG:
    """Random numbers for a batch of images, each image with its own stream.

    ``keys`` is an int64 tensor (N,) of 32-bit per-image keys. Every draw method takes a
    per-image ``shape`` and returns ``(N, *shape)``; successive draws use new streams,
    so the sequence of draws an op makes is what defines its randomness.

    >>> rng = ImageRNG.for_images("fog", 3.0, 0, torch.arange(4), torch.device("cpu"))
    >>> rng.uniform((2,)).shape
    torch.Size([4, 2])
    """

    def __init__(self, keys: torch.Tensor):
        self.keys = keys
        self.device = keys.device
        self._stream = 0

    @classmethod
    def for_images(cls, name: str, severity: float, seed: int, indices: torch.Tensor,
                   device: torch.device) -> ImageRNG:
        base = base_key(name, round(float(severity), 6), int(seed))
        idx = indices.to(device=device, dtype=torch.int64) & _M32
        k = _fmix32_(_i32(idx ^ base))
        k ^= _as_i32(_fmix32_py(base * 0x9E3779B1))
        k = _fmix32_(k)
        return cls(k.to(torch.int64) & _M32)

    def __len__(self) -> int:
        return self.keys.numel()

    # ---------------------------------------------------------------- raw bits
    def _next_stream(self) -> int:
        self._stream += 1
        return self._stream

    def _stream_keys(self, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Two int32 per-image keys (N,) for one stream: an additive and an xor key."""
        k = _i32(self.keys)
        k ^= _as_i32(_fmix32_py(stream * 0x27D4EB2F))
        k1 = _fmix32_(k)
        k2 = _fmix32_(k1 ^ 0x5BD1E995)
        return k1, k2

    def _hash(self, k1: torch.Tensor, k2: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
        # The xor key breaks the additive structure, so two images never share a shifted
        # run of the same numbers (which k1 + counter alone would allow).
        h = counter * _GOLDEN + k1
        h ^= k2
        return _fmix32_(h)

    def _chunked(self, n_el: int, fill, out: torch.Tensor) -> torch.Tensor:
        """Call ``fill(rows, counter, out_rows)`` over image chunks (CPU) or all at once."""
        counter = torch.arange(n_el, device=self.device, dtype=torch.int32)
        n = len(self)
        step = n if self.device.type != "cpu" else max(1, _CPU_CHUNK // max(n_el, 1))
        for s in range(0, n, step):
            fill(slice(s, min(n, s + step)), counter, out[s:s + step])
        return out

    def _uniform_flat(self, n_el: int, dtype) -> torch.Tensor:
        k1, k2 = self._stream_keys(self._next_stream())
        out = torch.empty(len(self), n_el, device=self.device, dtype=dtype)

        def fill(rows, counter, o):
            h = self._hash(k1[rows, None], k2[rows, None], counter)
            torch.mul((h >> 8) & 0xFFFFFF, _INV24, out=o)

        return self._chunked(n_el, fill, out)

    # ---------------------------------------------------------------- draws
    def uniform(self, shape=(), dtype=torch.float32) -> torch.Tensor:
        """Uniform [0, 1) with 24 bits of resolution, (N, *shape)."""
        shape = tuple(shape)
        return self._uniform_flat(math.prod(shape), dtype).view(len(self), *shape)

    def uniform_at(self, stream: int, rows: torch.Tensor, counter: torch.Tensor,
                   dtype=torch.float64) -> torch.Tensor:
        """Uniforms for selected (image row, element) pairs of a given ``stream``.

        The value at (row, element) is the same whatever else is selected, which lets
        rejection samplers redraw only the rejected elements and stay batch-invariant.
        """
        k1, k2 = self._stream_keys(stream)
        h = self._hash(k1[rows], k2[rows], counter.to(torch.int32))
        return ((h >> 8) & 0xFFFFFF).to(dtype) * _INV24

    def normal(self, shape=(), dtype=torch.float32) -> torch.Tensor:
        """Standard normal via Box-Muller (both the cos and sin halves), (N, *shape).

        24-bit uniforms cap |z| at 5.77; the probability mass beyond is 8e-9.
        """
        shape = tuple(shape)
        n_el = math.prod(shape)
        half = (n_el + 1) // 2
        k1, k2 = self._stream_keys(self._next_stream())
        out = torch.empty(len(self), 2 * half, device=self.device, dtype=torch.float32)

        def fill(rows, counter, o):
            h = self._hash(k1[rows, None], k2[rows, None], counter)
            u = ((h >> 8) & 0xFFFFFF).float()
            # (0, 1] for the log, [0, 2pi) for the angle.
            r = torch.sqrt(torch.log((u[:, :half] + 1.0) * _INV24).mul_(-2.0))
            theta = u[:, half:].mul_(2.0 * math.pi * _INV24)
            torch.mul(r, torch.cos(theta), out=o[:, :half])
            torch.mul(r, torch.sin(theta), out=o[:, half:])

        self._chunked(2 * half, fill, out)
        return out[:, :n_el].to(dtype).reshape(len(self), *shape)

    def randint(self, low: int, high: int, shape=()) -> torch.Tensor:
        """Integers uniform in [low, high) (numpy's convention), (N, *shape) int64."""
        return low + (self.uniform(shape, torch.float64) * (high - low)).floor().long()

    def poisson(self, rate: torch.Tensor) -> torch.Tensor:
        """Exact Poisson samples with per-element ``rate`` (N, ...) in [0, 4096], float32.

        Poisson(l) = Poisson(floor(l)) + Poisson(l - floor(l)) for independent draws: the
        integer part goes through the table sampler (``poisson_levels``), the fractional
        part (< 1) through a few steps of sequential inversion. Both are batched and use
        one uniform per element, so a sample depends only on its image key and position.
        """
        n = len(self)
        # float32: the rate is a float32 image times a constant, the CDFs below are
        # compared with 24-bit uniforms.
        lam = rate.detach().to(self.device, torch.float32).reshape(n, -1)
        lmax = float(lam.max()) if lam.numel() else 0.0
        if not (lmax <= MAX_POISSON_RATE and bool((lam >= 0).all())):
            raise ValueError(f"Poisson rates must lie in [0, {MAX_POISSON_RATE}], got max {lmax:g}")
        whole = torch.floor(lam)
        table = torch.arange(int(lmax) + 1, device=self.device, dtype=torch.float64)
        counts = self.poisson_levels(whole.to(torch.int32), table)
        counts += self._poisson_below_one(lam - whole)
        return counts.view(rate.shape)

    def _poisson_below_one(self, lam: torch.Tensor) -> torch.Tensor:
        """Poisson samples for rates in [0, 1) (N, M) float32, by sequential inversion."""
        stream = self._next_stream()
        k1, k2 = self._stream_keys(stream)
        out = torch.empty(lam.shape, device=self.device, dtype=torch.float32)
        left = []

        def invert(u, lv, steps):
            k = torch.zeros_like(lv)
            p = torch.exp(-lv)
            cdf = p.clone()
            for j in range(1, steps + 1):
                more = u > cdf
                if steps > _DENSE_STEPS and not bool(more.any()):
                    break
                k += more
                p = p * lv / j
                cdf += p
            return k, u > cdf

        def fill(rows, counter, o):
            u = ((self._hash(k1[rows, None], k2[rows, None], counter) >> 8) & 0xFFFFFF).float()
            k, more = invert(u.add_(1.0).mul_(_INV24), lam[rows], _DENSE_STEPS)  # u in (0, 1]
            o.copy_(k)
            miss = torch.nonzero(more)
            if miss.numel():
                left.append(miss + torch.tensor([rows.start, 0], device=self.device))

        self._chunked(lam.shape[1], fill, out)
        if left:  # P(count > 4) < 0.004 at rate 1: redo those few from scratch, sparse
            rows, cols = torch.cat(left).unbind(1)
            u = self.uniform_at(stream, rows, cols, torch.float32) + _INV24
            out[rows, cols] = invert(u, lam[rows, cols], 64)[0]
        return out

    def poisson_levels(self, levels: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """Exact Poisson samples with rate ``lam[levels]``, float32 (N, ...).

        ``levels`` (N, ...) integer indexes a small table ``lam`` (L,) of distinct rates
        (shot noise on 8-bit images has 256). Inversion of the 24-bit uniform on integer
        CDF thresholds with a guide table: a gather or two per element, ~5x faster than
        numpy's sampler; the probabilities are exact to 2**-24.
        """
        n_lv = lam.numel()
        lam = lam.to(device=self.device, dtype=torch.float64).reshape(-1)
        lmax = float(lam.max()) if n_lv else 0.0
        n_k = int(lmax + 12.0 * math.sqrt(lmax) + 32)  # support; the tail beyond is < 1e-25
        k = torch.arange(n_k, device=self.device, dtype=torch.float64)
        logpmf = k * torch.log(lam)[:, None] - lam[:, None] - torch.lgamma(k + 1)
        pmf = torch.where(lam[:, None] > 0, torch.exp(logpmf), (k == 0).double())
        # thresh[l, k] = CDF(k) in units of 2**-24: sample = min{k : u24 < thresh[l, k]}.
        thresh = torch.round(torch.cumsum(pmf, 1).clamp_(max=1.0) * 16777216.0)
        thresh[:, -1] = 16777216.0
        # Guide entry m: the sample for the lowest u24 of bin m, a lower bound for the bin.
        shift = max(0, 24 - max(1, 2 * n_k - 1).bit_length())
        n_guide = 1 << (24 - shift)
        starts = (torch.arange(n_guide, device=self.device, dtype=torch.float64) * (1 << shift))
        guide = torch.searchsorted(thresh, starts.expand(n_lv, -1).contiguous(), right=True)
        guide += torch.arange(n_lv, device=self.device)[:, None] * n_k
        flat_t = thresh.to(torch.int32).reshape(-1)
        flat_g = guide.to(torch.int32).reshape(-1)
        stream = self._next_stream()
        k1, k2 = self._stream_keys(stream)
        lv = levels.to(self.device, torch.int32).reshape(len(self), -1)
        out = torch.empty(lv.shape, device=self.device, dtype=torch.int32)
        left = []

        def fill(rows, counter, o):
            u = (self._hash(k1[rows, None], k2[rows, None], counter) >> 8) & 0xFFFFFF
            lvr = lv[rows]
            idx = flat_g.index_select(0, (lvr * n_guide + (u >> shift)).view(-1)).view(u.shape)
            idx += flat_t.index_select(0, idx.view(-1)).view(u.shape) <= u
            torch.sub(idx, lvr * n_k, out=o)
            miss = torch.nonzero(flat_t.index_select(0, idx.view(-1)).view(u.shape) <= u)
            if miss.numel():
                left.append(miss + torch.tensor([rows.start, 0], device=self.device))

        self._chunked(lv.shape[1], fill, out)
        if left:  # the few longer walks, sparse over the whole batch
            rows, cols = torch.cat(left).unbind(1)
            u = (self.uniform_at(stream, rows, cols) * 16777216.0).to(torch.int32)
            base = lv[rows, cols] * n_k
            idx = base + out[rows, cols]
            act = torch.arange(rows.numel(), device=self.device)
            while act.numel():
                idx[act] += 1
                act = act[flat_t.index_select(0, idx[act]) <= u[act]]
            out[rows, cols] = idx - base
        return out.view(levels.shape).to(torch.float32)

    # ---------------------------------------------------------------- escape hatches
    def generators(self) -> list[torch.Generator]:
        """One CPU torch.Generator per image, for samplers torch has but we do not."""
        self._stream += 1
        seeds = (self.keys.to("cpu").tolist())
        return [torch.Generator().manual_seed(k * 1000003 + self._stream) for k in seeds]

    def numpy(self) -> list[np.random.Generator]:
        """One numpy Generator per image, for ops that must run per image on CPU."""
        self._stream += 1
        return [np.random.default_rng([k, self._stream]) for k in self.keys.to("cpu").tolist()]


def _i32(v: torch.Tensor) -> torch.Tensor:
    """int64 values in [0, 2**32) -> the int32 with the same bits."""
    v = v & _M32
    return torch.where(v >= (1 << 31), v - (1 << 32), v).to(torch.int32)


# Poisson rates above this would need a table of rate x rate entries; shot noise peaks at 500.
MAX_POISSON_RATE = 4096.0
# Dense inversion steps for rates < 1 before the rare remaining elements go sparse.
_DENSE_STEPS = 4
