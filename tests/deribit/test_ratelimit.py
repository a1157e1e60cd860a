"""The credit bucket with an injected clock: no wall-clock assertions."""

from __future__ import annotations

import threading

import pytest

from collector.deribit.ratelimit import CreditBucket, shared_bucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        with self._lock:
            self.sleeps.append(s)
            self.now += s


def bucket(clock: FakeClock, **kw) -> CreditBucket:
    return CreditBucket(clock=clock, sleep=clock.sleep, **kw)


def test_burst_of_100_then_20_per_second():
    c = FakeClock()
    b = bucket(c)
    for _ in range(100):
        assert b.acquire() == 0.0
    assert c.sleeps == []
    waited = b.acquire()
    assert waited == pytest.approx(0.05) and c.now == pytest.approx(1000.05)
    for _ in range(19):
        b.acquire()
    assert c.now == pytest.approx(1001.0)  # 20 more requests took one second
    assert b.waited_s == pytest.approx(1.0)


def test_refill_is_capped():
    c = FakeClock()
    b = bucket(c)
    for _ in range(100):
        b.acquire()
    c.now += 3600
    assert b.credits == 50_000


def test_try_acquire_reports_wait_without_taking():
    c = FakeClock()
    b = bucket(c, capacity=1000, refill_per_s=100, cost=500)
    assert b.try_acquire() == 0.0 and b.try_acquire() == 0.0
    assert b.try_acquire() == pytest.approx(5.0)
    assert b.credits == 0
    with pytest.raises(ValueError):
        b.try_acquire(5000)


def test_drain_after_10028_pauses_everyone():
    c = FakeClock()
    b = bucket(c)
    b.drain(pause_s=2.0)
    assert b.credits == 0 and b.drained == 1
    assert b.try_acquire() == pytest.approx(2.0)
    b.acquire()  # waits out the pause, then the refill of one request's credits
    assert c.now == pytest.approx(1002.05)


def test_threads_share_credits():
    c = FakeClock()
    b = bucket(c, capacity=50_000)
    taken: list[int] = []

    def worker():
        for _ in range(25):
            if b.try_acquire() == 0.0:
                taken.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 100  # exactly the burst, never more, with the clock standing still


def test_validation_and_shared():
    with pytest.raises(ValueError):
        CreditBucket(capacity=100, cost=500)
    assert shared_bucket() is shared_bucket()
