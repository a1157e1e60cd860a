"""`collector ws` as systemd runs it: heartbeats, sd_notify (READY, WATCHDOG gated on progress, STOPPING),
SIGTERM (exit 0, nothing lost) and SIGKILL (the next start loses nothing that was spooled)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from collector.systemd import Notifier

from tests.jobs.wsrun import (
    FAST, JobThread, control, db_option_trades, process_env as _env, rows, settings_for, sim_option_trades,
    start_sim, wait_until,
)
from tests.pgtools import engine_server, migrated_database, server_pair

COLLECTOR = str(Path(sys.executable).parent / "collector")
pg_kill_plain, pg_kill_tsdb = server_pair()
pg_kill = engine_server("pg_kill_plain", "pg_kill_tsdb")


class NotifySocket:
    """The receiving end of NOTIFY_SOCKET, as systemd has it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.seen: list[tuple[float, str]] = []

    def read(self, seconds: float) -> list[str]:
        """Every message received within ``seconds``."""
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                msg = self.sock.recv(65536).decode()
            except socket.timeout:
                break
            self.seen.append((time.monotonic(), msg))
            out.append(msg)
        return out

    def wait_for(self, field: str, timeout: float) -> list[str]:
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.read(min(0.5, max(0.01, deadline - time.monotonic())))
            got.extend(msgs)
            if any(field in m.split("\n") for m in msgs):
                return got
        raise AssertionError(f"no {field} within {timeout} s; got {got[-5:]}")

    def close(self) -> None:
        self.sock.close()


def test_heartbeats_keep_a_quiet_connection_open(dsn, tmp_path):
    """Only illiquid instruments, nothing sent for a long while (in heartbeats): every test_request is
    answered, the simulator never closes the connection, the collector never reconnects."""
    sim = start_sim(strikes=2, rate=0, trade_rate=0, min_heartbeat=0.5)
    job = JobThread(settings_for(sim, dsn, tmp_path / "spool"), options=replace(FAST, heartbeat_s=1)).start()
    try:
        wait_until(lambda: job.job.ready, 30, what="READY")
        # 10 heartbeat intervals with no market data at all
        wait_until(lambda: job.job.session.heartbeats_answered >= 10, 60, what="10 answered heartbeats")
        assert job.alive
        assert job.job.session.connects == 1
        assert job.job.pipeline.counts["trades"] == 0
        events = control(sim, "stats")["events"]
        assert events.get("heartbeat_closed", 0) == 0
        assert job.stop() == 0
    finally:
        job.stop()
        sim.stop()


def test_sd_notify_ready_watchdog_gated_on_progress_and_stopping(dsn, tmp_path):
    sim = start_sim(strikes=3, rate=200, trade_rate=50)
    ns = NotifySocket(tmp_path / "notify")
    notifier = Notifier({"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "1000000"})  # pet every 0.5 s
    opts = replace(FAST, progress_window_s=2.0, status_every_s=0.5)
    job = JobThread(settings_for(sim, dsn, tmp_path / "spool"), options=opts, notifier=notifier).start()
    try:
        before = ns.wait_for("READY=1", 30)
        assert not any("WATCHDOG=1" in m for m in before), "the watchdog was petted before READY"
        assert job.job.session.subscribed, "READY before the subscriptions were answered"
        flowing = ns.read(2.5)
        assert sum("WATCHDOG=1" in m for m in flowing) >= 3
        assert any(m.startswith("STATUS=running:") for m in flowing)

        control(sim, "fault", {"kind": "stall", "seconds": 7})   # no frames, no heartbeats
        ns.read(3.0)                                                # > the 2 s progress window (drained)
        stalled = ns.read(2.5)
        assert not any("WATCHDOG=1" in m for m in stalled), "watchdog petted while nothing arrived"
        assert any(m.startswith("STATUS=stalled:") for m in stalled)
        ns.wait_for("WATCHDOG=1", 10)                               # the stream is back: so is the watchdog
        assert job.alive

        job.stop()
        ns.wait_for("STOPPING=1", 10)
        assert job.rc == 0
    finally:
        job.stop()
        ns.close()
        sim.stop()


def _stopped_line(stderr: str) -> dict:
    for line in stderr.splitlines():
        if '"ws_stopped"' in line:
            return json.loads(line)
    raise AssertionError("no ws_stopped log line:\n" + stderr[-3000:])


def test_sigterm_mid_stream_exits_0_with_everything_stored(dsn, tmp_path):
    sim = start_sim(strikes=3, rate=500, trade_rate=200)
    ns = NotifySocket(tmp_path / "notify")
    spool = tmp_path / "spool"
    proc = subprocess.Popen([COLLECTOR, "ws", "--currency", "BTC"], env=_env(sim, dsn, spool, ns.path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ns.wait_for("READY=1", 30)
        wait_until(lambda: rows(dsn, "SELECT count(*) FROM btc_option_quotes")[0][0] > 0, 30, what="quotes stored")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)   # a bound for a hung process, not a speed target
        assert proc.returncode == 0, err[-3000:]
        assert '"ws_stopping"' in err                                   # the signal was handled, not fatal
        assert any("STOPPING=1" in m for m in ns.read(0.5) + [m for _, m in ns.seen])
        done = _stopped_line(err)
        assert done["trades"] > 0 and done["quotes"] > 0
        # everything it received is in the database: nothing left in memory, nothing in the spool
        assert rows(dsn, "SELECT count(*) FROM btc_option_trades")[0][0] == done["trades"] + done["backfilled_trades"]
        assert rows(dsn, "SELECT count(*) FROM btc_option_quotes")[0][0] == done["quotes"]
        assert not list(spool.rglob("*.spool"))
        assert rows(dsn, "SELECT state FROM collector_status WHERE job = 'ws:BTC'") == [("stopped",)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        ns.close()
        sim.stop()


@pytest.fixture
def kill_dsn(pg_kill):
    return migrated_database(pg_kill, ["BTC"])


def test_sigkill_while_the_database_is_down_loses_nothing_on_the_next_start(pg_kill, kill_dsn, tmp_path):
    sim = start_sim(strikes=3, rate=300, trade_rate=200, speed=0, trade_history=200_000)
    spool = tmp_path / "spool"
    env = _env(sim, kill_dsn, spool)
    pg_kill.stop()
    first = subprocess.Popen([COLLECTOR, "ws", "--currency", "BTC"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    second = None
    try:
        wait_until(lambda: control(sim, "stats")["notifications"]["active_channels"] > 10, 30,
                   what="the first process to subscribe")
        time.sleep(0.5)
        control(sim, "clock", {"speed": 1})
        wait_until(lambda: len(list(spool.rglob("*.option_trades.spool"))) >= 3, 30, what="trades spooled")
        first.kill()                                  # SIGKILL: no flush, no goodbye
        first.communicate(timeout=10)
        time.sleep(2)                                 # trades go on while nobody listens
        pg_kill.start()

        second = subprocess.Popen([COLLECTOR, "ws", "--currency", "BTC"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: not list(spool.rglob("*.spool")), 60, what="the spool to be replayed")
        wait_until(lambda: rows(kill_dsn, "SELECT count(*) FROM data_gaps WHERE cause = 'restart' "
                                          "AND relation = 'btc_option_trades' AND backfilled_at IS NOT NULL")[0][0],
                   60, what="the restart backfill")
        time.sleep(2)
        control(sim, "clock", {"speed": 0})
        time.sleep(1.5)
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=15)
        assert second.returncode == 0, err[-3000:]

        truth = sim_option_trades(sim)
        stored = db_option_trades(kill_dsn)
        assert len(stored) == len(set(stored))
        missing = truth - set(stored)
        assert not missing, f"{len(missing)} trades lost, e.g. {sorted(missing)[:5]}"
        assert set(stored) == truth
        quotes_gap = rows(kill_dsn, "SELECT recoverable FROM data_gaps WHERE cause = 'restart' "
                                    "AND relation = 'btc_option_quotes'")
        assert quotes_gap == [(False,)]
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate()
        sim.stop()
