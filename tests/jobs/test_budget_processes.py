"""One credit budget per host: every REST job started in the same second as a process of its own, against
one simulator that enforces Deribit's credits per address (API.md §8: 500 a request, 50,000 at most,
10,000 a second back). With the shared budget file no request draws a 10028; with a budget per process
(``DERIBIT_SHARED_BUDGET=no``: what the host had before) the same start does draw them -- so the shared
budget is what keeps the exchange happy, and each job counts its hits in ``collector_status``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.jobs.restsim import HOUR_MS, START_MS, pause, refused_10028, run_until

JOBS = ("rest", "depth", "greeks", "funding")


def start_all(sim, dsn: str, tmp_path, shared: bool) -> dict[str, subprocess.CompletedProcess]:
    procs = {}
    for job in JOBS:
        env = {**os.environ, "DATABASE_URL": dsn, "DERIBIT_REST_URL": sim.urls["rest"],
               "COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"), "COLLECTOR_LOG_LEVEL": "WARNING",
               "COLLECTOR_RUNTIME_DIR": str(tmp_path / "run"), "COLLECTOR_CURRENCIES": "BTC,ETH",
               "DERIBIT_SHARED_BUDGET": "yes" if shared else "no", "OHLCV_CATCHUP_HORIZON": "1h",
               "FUNDING_CATCHUP_HORIZON": "1d"}
        procs[job] = subprocess.Popen([sys.executable, "-m", "collector.cli", job], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out = {}
    for job, p in procs.items():
        _, err = p.communicate(timeout=300)
        out[job] = subprocess.CompletedProcess(p.args, p.returncode, "", err)
    return out


def hits(conn) -> dict[str, int]:
    return dict(conn.execute("SELECT job, rate_limited FROM collector_status WHERE job = ANY(%s)",
                             (list(JOBS),)).fetchall())


@pytest.mark.engines("postgres")   # the credit budget does not depend on the database engine
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-process"])
def test_every_rest_job_at_once_draws_no_10028_only_with_the_shared_budget(rest_sim, dsn, conn, tmp_path, shared):
    sim = rest_sim(speed=3600, trade_rate=100, strikes=4)
    run_until(sim, START_MS + 2 * HOUR_MS)
    pause(sim)
    done = start_all(sim, dsn, tmp_path, shared)
    refused = refused_10028(sim)
    served = sim.server.requests_served
    counted = hits(conn)
    print(f"\nbudget {'shared' if shared else 'per process'}: {served} requests served, {refused} answered 10028; "
          f"rate_limited per job {counted}")
    assert sorted(counted) == sorted(JOBS)                      # every job wrote its status row
    assert served > 3 * 100                                     # more than three bursts' worth, together
    if shared:
        for job, p in done.items():
            assert p.returncode == 0, (job, p.stderr[-2000:])
        assert refused == 0
        assert counted == {job: 0 for job in JOBS}
        assert "deribit_rate_limited" not in "".join(p.stderr for p in done.values())
    else:
        assert refused > 0
        assert sum(counted.values()) == refused                 # each 10028 is counted by the job that got it
        assert "deribit_rate_limited" in "".join(p.stderr for p in done.values())   # at WARNING, not DEBUG
