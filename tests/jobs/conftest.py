"""Fixtures of the job tests."""

from __future__ import annotations

import pytest

from collector.deribit.ratelimit import CreditBucket
from tests.jobs.restsim import start_sim


@pytest.fixture
def rest_sim():
    """``rest_sim(**SimConfig fields)`` -> a started simulator (seed 5, fixed start), stopped afterwards."""
    started = []

    def make(**kw):
        s = start_sim(**kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def bucket() -> CreditBucket:
    """A full credit pool for a test's fresh simulator (whose own pool starts full too)."""
    return CreditBucket()
