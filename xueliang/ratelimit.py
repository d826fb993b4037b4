"""Token buckets per key (a device, a client address): a stuck button or a noisy box
cannot starve the others."""

from __future__ import annotations

import time
from collections.abc import Callable


class DeviceLimiter:
    """`burst` messages at once, then `per_minute`, per device."""

    def __init__(
        self, burst: int, per_minute: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = float(burst)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # device → (tokens, at)

    def allow(self, device: str) -> bool:
        now = self._clock()
        tokens, at = self._buckets.get(device, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets[device] = (tokens, now)
            return False
        self._buckets[device] = (tokens - 1, now)
        if len(self._buckets) > 100_000:
            self._forget_full(now)
        return True

    def _forget_full(self, now: float) -> None:
        full = [
            d
            for d, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        for device in full:
            del self._buckets[device]
