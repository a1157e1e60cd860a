"""How long to wait before the next try: capped exponential backoff, with full jitter or without.

``attempt`` counts the failures so far from 0: the ceiling is ``initial * 2**attempt``, never above
``maximum``. :func:`full_jitter` draws uniformly under the ceiling (retries of many clients spread out
instead of arriving together); :func:`exponential` is the ceiling itself, for a caller that wants a
predictable wait. Imports nothing of ours: the REST client, the WebSocket session, the writer and the
jobs all use it.
"""

from __future__ import annotations

import random

__all__ = ["exponential", "full_jitter"]

_MAX_DOUBLINGS = 64  # past this every sane (initial, maximum) is at its cap; keeps 2**attempt finite


def exponential(attempt: int, initial: float, maximum: float) -> float:
    """``min(maximum, initial * 2**attempt)``."""
    return min(maximum, initial * 2.0 ** min(attempt, _MAX_DOUBLINGS))


def full_jitter(attempt: int, initial: float, maximum: float, *, floor: float = 0.0,
                rng: random.Random | None = None) -> float:
    """Uniform in ``[0, exponential(attempt, initial, maximum)]``, and never below ``floor``."""
    return max(floor, (rng or random).uniform(0.0, exponential(attempt, initial, maximum)))
