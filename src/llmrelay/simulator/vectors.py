"""Deterministic embedding vectors: the same text always maps to the same unit vector.

    >>> v = embed("hello", 4)
    >>> len(v), round(sum(x * x for x in v), 6), v == embed("hello", 4)
    (4, 1.0, True)
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
from array import array


def embed(text: str, dims: int) -> list[float]:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    rng = random.Random(seed)
    vec = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(x * x for x in vec)) or 1.0
    return [round(x / norm, 7) for x in vec]


def to_base64(vec: list[float]) -> str:
    """The float32 little-endian encoding the OpenAI API uses for ``encoding_format: base64``."""
    arr = array("f", vec)
    if arr.itemsize != 4:  # pragma: no cover - every platform CPython supports has 4-byte floats
        raise RuntimeError("float32 arrays are needed")
    return base64.b64encode(arr.tobytes()).decode()
