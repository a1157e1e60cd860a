"""The simulated wall clock: real time times a speed factor, from a chosen start."""

from __future__ import annotations

import time


class SimClock:
    def __init__(self, start_ms: int, speed: float = 1.0) -> None:
        self.start_ms = start_ms
        self.speed = speed
        self._t0 = time.monotonic()

    def now_ms(self) -> int:
        return self.start_ms + int((time.monotonic() - self._t0) * 1000 * self.speed)
