"""The one backoff: capped exponential, with full jitter (REST retries, WebSocket reconnects) or without."""

from __future__ import annotations

import random

from collector.backoff import exponential, full_jitter


def test_exponential_doubles_up_to_the_cap():
    assert [exponential(a, 0.5, 5.0) for a in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert exponential(10_000, 1.0, 60.0) == 60.0          # no overflow however long it failed


def test_full_jitter_is_capped_exponential_never_below_the_floor():
    rng = random.Random(1)
    for attempt in range(40):
        d = full_jitter(attempt, 1.0, 60.0, floor=0.5, rng=rng)
        assert 0.5 <= d <= min(60.0, 2.0 ** attempt)
    assert max(full_jitter(30, 1.0, 60.0, floor=0.5, rng=rng) for _ in range(200)) > 30   # spreads over the cap


def test_full_jitter_draws_once_from_the_given_rng():
    a, b = random.Random(7), random.Random(7)
    assert [full_jitter(n, 0.5, 4.0, rng=a) for n in range(8)] == [b.uniform(0.0, min(4.0, 0.5 * 2 ** n))
                                                                   for n in range(8)]
