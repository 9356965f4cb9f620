"""Counter-based per-image randomness.

Why our own generator: the Stressor contract says image *i*'s noise depends only on
(stressor, severity, seed, dataset index i), never on batch size, order or device.
A stateless hash of (key_i, element counter) gives exactly that, batched, on any
device, with no Python loop over images; torch.Generator streams cannot.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

_M32 = 0xFFFFFFFF


def _mul32(h: torch.Tensor, m: int) -> torch.Tensor:
    # (h * m) mod 2**32 without int64 overflow: split h into 16-bit halves.
    lo = h & 0xFFFF
    hi = h >> 16
    return (lo * m + (((hi * (m & 0xFFFF)) & 0xFFFF) << 16)) & _M32


def _fmix32(h: torch.Tensor) -> torch.Tensor:
    """murmur3's 32-bit finaliser on int64 tensors holding values < 2**32."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def _hash_torch(k: torch.Tensor, n_el: int) -> torch.Tensor:
    """Element hashes (N, n_el) of per-image keys k (N, 1), int64 arithmetic."""
    counter = torch.arange(n_el, device=k.device, dtype=torch.int64)
    return _fmix32(_fmix32(counter.view(1, -1) ^ k) + (k * 3 & _M32) & _M32)


def _fmix32_np(h: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    # In place on uint32, whose multiply wraps mod 2**32 by definition.
    np.right_shift(h, 16, out=tmp)
    h ^= tmp
    h *= np.uint32(0x85EBCA6B)
    np.right_shift(h, 13, out=tmp)
    h ^= tmp
    h *= np.uint32(0xC2B2AE35)
    np.right_shift(h, 16, out=tmp)
    h ^= tmp
    return h


def _hash_numpy(k: np.ndarray, n_el: int) -> np.ndarray:
    """The same hashes as _hash_torch, as uint32 (N, n_el).

    Why: on CPU, native uint32 arithmetic in place does in one pass what int64 needs
    seven for (16-bit split multiplies), ~15x faster; the values are identical.
    """
    k = k.astype(np.uint32).reshape(-1, 1)
    h = np.arange(n_el, dtype=np.uint32)[None, :] ^ k
    tmp = np.empty_like(h)
    _fmix32_np(h, tmp)
    h += k * np.uint32(3)
    return _fmix32_np(h, tmp)


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
                   device: torch.device) -> "ImageRNG":
        base = base_key(name, round(float(severity), 6), int(seed))
        idx = indices.to(device=device, dtype=torch.int64) & _M32
        keys = _fmix32(_fmix32(idx ^ base) ^ ((base * 0x9E3779B1) & _M32))
        return cls(keys)

    def __len__(self) -> int:
        return self.keys.numel()

    def _bits(self, shape) -> torch.Tensor:
        """Raw 32-bit hashes (N, *shape) as int64."""
        self._stream += 1
        n_el = math.prod(shape)
        stream = _fmix32(torch.tensor(self._stream * 0x27D4EB2F & _M32, device=self.device))
        k = _fmix32(self.keys ^ stream).view(-1, 1)
        if self.device.type == "cpu":
            h = torch.from_numpy(_hash_numpy(k.numpy(), n_el).astype(np.int64))
        else:
            h = _hash_torch(k, n_el)
        return h.view(len(self), *shape)

    def uniform(self, shape=(), dtype=torch.float32) -> torch.Tensor:
        """Uniform [0, 1) with 24 bits of resolution, (N, *shape)."""
        return ((self._bits(tuple(shape)) >> 8).to(dtype)) * (1.0 / 16777216.0)

    def normal(self, shape=(), dtype=torch.float32) -> torch.Tensor:
        """Standard normal via Box-Muller, (N, *shape)."""
        u1 = self.uniform(shape, torch.float64).clamp_min(1e-12)
        u2 = self.uniform(shape, torch.float64)
        return (torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2 * math.pi * u2)).to(dtype)

    def randint(self, low: int, high: int, shape=()) -> torch.Tensor:
        """Integers uniform in [low, high) (numpy's convention), (N, *shape) int64."""
        return low + (self.uniform(shape, torch.float64) * (high - low)).floor().long()

    def poisson(self, rate: torch.Tensor) -> torch.Tensor:
        """Poisson samples with per-element ``rate`` (N, ...), float.

        Each image gets a CPU torch.Generator seeded by its key: torch's Poisson sampler
        is exact for every rate, which a hash-based inversion would not be.
        """
        out = torch.empty_like(rate, device="cpu")
        rates = rate.detach().to("cpu")
        for i, (key, r) in enumerate(zip(self.generators(), rates)):
            out[i] = torch.poisson(r, generator=key)
        return out.to(rate.device)

    def generators(self) -> list[torch.Generator]:
        """One CPU torch.Generator per image, for samplers torch has but we do not."""
        self._stream += 1
        seeds = (self.keys.to("cpu").tolist())
        return [torch.Generator().manual_seed(k * 1000003 + self._stream) for k in seeds]

    def numpy(self) -> list[np.random.Generator]:
        """One numpy Generator per image, for ops that must run per image on CPU."""
        self._stream += 1
        return [np.random.default_rng([k, self._stream]) for k in self.keys.to("cpu").tolist()]
