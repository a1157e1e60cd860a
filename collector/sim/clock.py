"""The simulated wall clock: real time times a speed factor, from a chosen start; the speed can change
(0 pauses it)."""

from __future__ import annotations

import time


class SimClock:
    def __init__(self, start_ms: int, speed: float = 1.0) -> None:
        self.start_ms = start_ms
        self.speed = speed
        self._t0 = time.monotonic()

    def now_ms(self) -> int:
        return self.start_ms + int((time.monotonic() - self._t0) * 1000 * self.speed)

    def set_speed(self, speed: float) -> int:
        """Change the speed from now on (0 pauses the clock); returns the simulated time of the change."""
        now = self.now_ms()
        self.start_ms, self._t0, self.speed = now, time.monotonic(), float(speed)
        return now
