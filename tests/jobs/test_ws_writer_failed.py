"""`collector ws` when the database refuses its writes for good (a column dropped under it): one clear
error, the process exits non-zero (systemd shows it and restarts it), every row received is kept in the
spool -- and lands once the schema is fixed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg

from collector.store.spool import Spool
from collector.store.writer import BatchStore

from tests.jobs.wsrun import process_env, rows, start_sim, wait_until

COLLECTOR = str(Path(sys.executable).parent / "collector")


def alter(dsn: str, sql: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


def log_lines(stderr: str, name: str) -> list[dict]:
    return [json.loads(ln) for ln in stderr.splitlines() if f'"{name}"' in ln]


def test_a_permanent_write_failure_exits_non_zero_with_every_row_kept(dsn, tmp_path):
    sim = start_sim(strikes=3, rate=500, trade_rate=0)
    spool = tmp_path / "spool"
    proc = subprocess.Popen([COLLECTOR, "ws", "--currency", "BTC"], env=process_env(sim, dsn, spool),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: rows(dsn, "SELECT count(*) FROM btc_option_quotes")[0][0] > 0, 30, what="quotes stored")
        alter(dsn, "ALTER TABLE btc_option_quotes DROP COLUMN rho")
        _, err = proc.communicate(timeout=60)   # a bound for a process that would retry for ever
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        sim.stop()
    assert proc.returncode == 1, err[-3000:]
    failed = log_lines(err, "writer_failed")
    assert len(failed) == 1 and "rho" in failed[0]["error"], err[-3000:]   # one clear error, naming the cause
    assert not log_lines(err, "flush_failed") and not log_lines(err, "row_rejected")
    made = log_lines(err, "ws_stopped")[-1]["quotes"]
    assert rows(dsn, "SELECT state FROM collector_status WHERE job = 'ws:BTC'") == [("failed",)]   # what db status shows
    kept = Spool(spool / "ws-BTC", 1 << 40)
    spooled = sum(len(kept.load(s)) for s in kept.segments() if s.table == "option_quotes")
    stored = rows(dsn, "SELECT count(*) FROM btc_option_quotes")[0][0]
    assert spooled > 0 and stored + spooled == made   # every quote it made: committed before, or in the spool
    alter(dsn, "ALTER TABLE btc_option_quotes ADD COLUMN rho double precision")   # the schema fixed
    store = BatchStore(dsn, kept)
    assert store.flush_spool()
    store.close()
    assert rows(dsn, "SELECT count(*) FROM btc_option_quotes")[0][0] == made
