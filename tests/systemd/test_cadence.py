"""The timers' cadences from the settings (`collector config timers`): systemd reads the drop-ins, and
they fire when ``run-all``'s UTC-aligned schedule would (the REST_*_INTERVAL, GREEKS_INTERVAL and
FUNDING_INTERVAL of the Docker setup, honoured under systemd too)."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from collector.config import Settings
from collector.config_tools import timer_dropins, write_timers
from collector.config_values import cadence_ok, on_calendar

from tests.systemd.test_units import ANALYZE, TIMERS, _firings, fake_root, verify  # noqa: F401 - fake_root: a fixture

pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed (bin/setup installs `systemd`)")

CADENCES = [m * 60 for m in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)] + [h * 3600 for h in (1, 2, 3, 4, 6, 8, 12, 24)]


def _ts(stamp: str) -> int:
    return int(dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc).timestamp())


def test_the_cadences_are_exactly_those_that_divide_an_hour_or_a_day():
    assert [s for s in range(1, 86401) if cadence_ok(s)] == CADENCES


@pytest.mark.parametrize("seconds", CADENCES)
def test_a_cadence_fires_on_its_utc_multiples(seconds):
    """What run-all does (every UTC multiple of the interval) is what the timer does."""
    minute = 1 if seconds >= 3600 else 0
    fired = [_ts(s) for s in _firings(on_calendar(seconds, minute), "2024-03-01 10:03:30 UTC", 4, "Asia/Kolkata")]
    assert all(t % seconds == (minute * 60) % seconds for t in fired), fired
    assert [b - a for a, b in zip(fired, fired[1:])] == [seconds] * 3


def test_the_default_dropins_fire_as_the_shipped_timers():
    for rel, text in timer_dropins(Settings.load(env={})).items():
        timer = rel.split(".d/")[0]
        expr = text.splitlines()[-1].removeprefix("OnCalendar=")
        base, expected = TIMERS[timer]
        assert _firings(expr, base, len(expected), "UTC") == expected, timer


def test_systemd_reads_the_dropins_silently(fake_root, tmp_path):  # noqa: F811 - the fixture
    root = tmp_path / "root"
    shutil.copytree(fake_root, root, symlinks=True)
    settings = Settings.load(env={"REST_OPTIONS_OHLCV_INTERVAL": "15m", "GREEKS_INTERVAL": "4h", "FUNDING_INTERVAL": "1d"})
    assert len(write_timers(settings, root / "etc/systemd/system")) == 3
    res = verify(root, "rest-collector.timer", "greeks.timer", "funding.timer")
    assert res.returncode == 0 and res.stdout == "" and res.stderr == "", res.stdout + res.stderr
