"""`collector run-all`: every job in one process; SIGINT/SIGTERM stop it cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.jobs.wsrun import process_env, rows, start_sim, wait_until

COLLECTOR = str(Path(sys.executable).parent / "collector")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_all_streams_and_passes_then_stops_cleanly_on_a_signal(dsn, tmp_path, sig):
    sim = start_sim(currencies=["BTC"], strikes=3, rate=300, trade_rate=100)
    env = process_env(sim, dsn, tmp_path / "spool")
    p = subprocess.Popen([COLLECTOR, "run-all"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: rows(dsn, "SELECT count(*) FROM btc_option_quotes")[0][0] > 0, 30, what="quotes")
        wait_until(lambda: rows(dsn, "SELECT count(*) FROM funding_rates")[0][0] > 0, 30, what="the funding pass")
        wait_until(lambda: rows(dsn, "SELECT count(*) FROM options_ohlcv")[0][0] > 0, 30, what="the rest pass")
        t = time.monotonic()
        p.send_signal(sig)
        _, err = p.communicate(timeout=20)
        assert p.returncode == 0, err[-3000:]
        assert time.monotonic() - t < 10
        events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
        assert "run_all_stopped" in events and "ws_stopped" in events
        assert rows(dsn, "SELECT state FROM collector_status WHERE job = 'ws:BTC'") == [("stopped",)]
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
        sim.stop()
