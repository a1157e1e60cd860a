"""Fixtures of the job tests."""

from __future__ import annotations

import pytest

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
