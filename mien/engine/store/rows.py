"""How the in-memory index stores its per-face rows compactly.

Expression vectors are held as bfloat16 (with the error bound the ranking
relies on to stay exact, `window`) in growable numpy arrays (`Grow`). Shard
files (shards.py) store the same bfloat16 rows, so loading one is a copy.
"""

from __future__ import annotations

import math

import numpy as np

# bfloat16 (the top half of a float32, rounded to nearest even) rather than
# float16: decoding is a shift (4x faster than faiss's fp16 decoder, 15x numpy's
# cast). Its relative error is at most 2**-8 per vector, which `window` turns into
# a rigorous bound on squared distances.
BF16_EPS = 2.0 ** -8


def to_bf16(x: np.ndarray) -> np.ndarray:
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16(b: np.ndarray) -> np.ndarray:
    out = np.empty(b.shape, np.uint32)
    np.left_shift(b, np.uint32(16), out=out)  # widen and shift in one pass
    return out.view(np.float32)


def window(dk: float, eps: float) -> float:
    """Every face whose exact distance can be <= the k-th is within this approx distance.

    With |x - x~| <= eps: |d - d~| <= 2 eps sqrt(d) + eps^2 (d = squared distance).
    """
    r = math.sqrt(max(dk, 0.0)) + 2 * eps  # math, not numpy: the same sqrt without a ufunc call
    return dk + 4 * eps * r + 4 * eps * eps


class Grow:
    """A numpy array with amortised appends (growth factor 1.25, not 2: RAM)."""

    def __init__(self, dtype, width: int | None = None, cap: int = 1024):
        self.width = width
        shape = (cap,) if width is None else (cap, width)
        self.buf = np.zeros(shape, dtype=dtype)
        self.n = 0

    def extend(self, a: np.ndarray) -> None:
        need = self.n + len(a)
        if need > len(self.buf):
            cap = max(need, int(len(self.buf) * 1.25) + 1024)
            shape = (cap,) if self.width is None else (cap, self.width)
            new = np.zeros(shape, dtype=self.buf.dtype)
            new[: self.n] = self.buf[: self.n]
            self.buf = new
        self.buf[self.n : need] = a
        self.n = need

    @property
    def a(self) -> np.ndarray:
        return self.buf[: self.n]
