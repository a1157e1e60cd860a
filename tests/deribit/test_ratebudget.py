"""The host's one credit budget: a file-backed token bucket shared by processes (injected clock: no
wall-clock assertions), the budget's file per endpoint, and the rate-limit answers counted and logged."""

from __future__ import annotations

import logging
import multiprocessing
import os
import struct
import tempfile
from pathlib import Path

import pytest

from collector.config import Settings
from collector.deribit import rest as rest_mod
from collector.deribit.ratelimit import CreditBucket, shared_bucket
from collector.deribit.rest import RateLimited, RestClient, RestCounts
from collector.ratebudget import FileBucket, budget_for, budget_path, writable_dir


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def pair(path: Path, clock: FakeClock) -> tuple[FileBucket, FileBucket]:
    """Two buckets on one file: what two processes of the host see."""
    return (FileBucket(path, clock=clock, sleep=clock.sleep), FileBucket(path, clock=clock, sleep=clock.sleep))


def test_two_holders_of_the_file_share_one_burst_of_100(tmp_path):
    c = FakeClock()
    a, b = pair(tmp_path / "budget", c)
    for i in range(100):
        assert (a if i % 2 else b).acquire() == 0.0
    assert c.sleeps == []
    # the pool is empty for both: the next request of either waits for 500 credits at 10,000/s
    assert a.try_acquire() == pytest.approx(0.05)
    assert b.acquire() == pytest.approx(0.05)
    c.now += 1.0
    assert a.credits == pytest.approx(10_000)


def test_separate_in_memory_buckets_would_allow_twice_the_burst():
    # what the host had before: each process a pool of its own (the reason for the shared file)
    c = FakeClock()
    a = CreditBucket(clock=c, sleep=c.sleep)
    b = CreditBucket(clock=c, sleep=c.sleep)
    for _ in range(100):
        assert a.acquire() == 0.0 and b.acquire() == 0.0
    assert c.sleeps == []


def test_a_drain_pauses_every_holder_then_the_pool_refills_from_zero(tmp_path):
    c = FakeClock()
    a, b = pair(tmp_path / "budget", c)
    a.drain(2.0)
    assert b.try_acquire() == pytest.approx(2.0)
    c.now += 2.0
    assert b.try_acquire() == pytest.approx(0.05)   # refilling starts once the pause is over
    c.now += 0.05
    assert b.try_acquire() == 0.0
    assert a.drained == 1 and b.drained == 0


def test_a_file_from_an_earlier_boot_or_garbage_starts_full(tmp_path):
    path = tmp_path / "budget"
    c = FakeClock(now=50.0)
    # times far ahead of this clock (the monotonic clock restarted at boot): not to be believed
    path.write_bytes(struct.pack("<4sddd", b"DCB1", 0.0, 10_000.0, 10_000.0))
    assert FileBucket(path, clock=c, sleep=c.sleep).credits == pytest.approx(50_000)
    path.write_bytes(b"nonsense")
    assert FileBucket(path, clock=c, sleep=c.sleep).credits == pytest.approx(50_000)


def _take(path: str, n: int, q) -> None:
    b = FileBucket(path, capacity=1e9, refill_per_s=1e-3, cost=1.0)
    got = sum(1 for _ in range(n) if b.try_acquire() == 0.0)
    q.put(got)


def test_processes_never_lose_an_update(tmp_path):
    """Real processes hammering one file: every credit taken is taken once (the lock holds)."""
    path = tmp_path / "budget"
    first = FileBucket(path, capacity=1e9, refill_per_s=1e-3, cost=1.0)
    start = first.credits
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_take, args=(str(path), 2000, q)) for _ in range(4)]
    for p in procs:
        p.start()
    taken = sum(q.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(60)
    assert taken == 8000
    # what is left is what was there less what the four took (a lost update would leave more)
    assert start - first.credits == pytest.approx(8000, abs=1.0)


def test_one_file_per_endpoint_under_the_runtime_directory(tmp_path):
    assert budget_path(tmp_path, "https://www.deribit.com/api/v2").name == "deribit-credits-www.deribit.com"
    assert budget_path(tmp_path, "http://127.0.0.1:8123/api/v2").name == "deribit-credits-127.0.0.1_8123"
    s = Settings.load(env={"COLLECTOR_RUNTIME_DIR": str(tmp_path / "run"), "DERIBIT_REST_URL": "http://127.0.0.1:9/api/v2"})
    b = budget_for(s)
    assert isinstance(b, FileBucket) and b.path == tmp_path / "run" / "deribit-credits-127.0.0.1_9"
    assert budget_for(s) is b                                    # one object per file and process
    off = Settings.load(env={"COLLECTOR_RUNTIME_DIR": str(tmp_path / "run"), "DERIBIT_SHARED_BUDGET": "no"})
    assert budget_for(off) is shared_bucket()


def test_the_runtime_directory_comes_from_systemd_and_falls_back_to_a_user_temp_dir(tmp_path):
    assert Settings.load(env={}).runtime_dir == Path("/run/collector")
    assert Settings.load(env={"RUNTIME_DIRECTORY": "/run/collector:/run/other"}).runtime_dir == Path("/run/collector")
    blocked = tmp_path / "a-file"
    blocked.write_text("")                # a directory cannot be made under a file (not even by root)
    got = writable_dir(blocked / "run")
    assert got.name == f"collector-{os.getuid()}" and got.parent == Path(tempfile.gettempdir())
    assert os.access(got, os.W_OK)
    assert writable_dir(tmp_path / "ok") == tmp_path / "ok"


class _Answer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code, self.content = status, body


class _Session:
    """Answers 429 ``n`` times, then a result."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.headers: dict = {}

    def get(self, url, params=None, timeout=None):
        if self.n > 0:
            self.n -= 1
            return _Answer(429, b'{"error":{"code":10028,"message":"too_many_requests"}}')
        return _Answer(200, b'{"result": 1}')

    def close(self) -> None:
        pass


def test_rate_limit_answers_are_counted_and_logged_once_per_burst(caplog, monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(rest_mod, "_bursts", rest_mod._BurstLog(clock=c))
    counts = RestCounts()
    client = RestClient("http://x/api/v2", max_attempts=10, limiter=CreditBucket(clock=c, sleep=c.sleep),
                        session=_Session(3), sleep=c.sleep, counts=counts)
    with caplog.at_level(logging.DEBUG, logger="collector.deribit.rest"):
        assert client.call("public/get_time") == 1
    assert client.rate_limited == 3 and counts.rate_limited == 3 and counts.requests == 4
    warned = [r for r in caplog.records if r.getMessage() == "deribit_rate_limited"]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    # a later burst warns again, saying how many the previous one had
    c.now += rest_mod.RATE_LIMIT_BURST_S + 1
    client.session = _Session(1)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="collector.deribit.rest"):
        assert client.call("public/get_time") == 1
    warned = [r for r in caplog.records if r.getMessage() == "deribit_rate_limited"]
    assert len(warned) == 1 and warned[0].previous_burst_hits == 3
    with pytest.raises(RateLimited):
        RestClient("http://x/api/v2", max_attempts=1, limiter=CreditBucket(clock=c, sleep=c.sleep),
                   session=_Session(1), sleep=c.sleep).call("public/get_time")
