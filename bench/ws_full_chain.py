"""Both currencies' whole option chains at the simulator's live rate: CPU, RSS, latency, a database stall.

    .venv/bin/python bench/ws_full_chain.py [--seconds 60] [--stall 60] [--strikes 16] [--currencies BTC,ETH]

One `collector sim` process (every ticker channel at its 100 ms cap: 10 notifications/s each, as
Deribit's ``ticker.*.100ms``) and one `collector ws` process per currency (whole chain), a throwaway
PostgreSQL with ``track_commit_timestamp = on``. Figures (`name value unit`), the worst process where
there is one per currency:

    ws_full_chain_msgs_per_s     frames received per second, all processes
    ws_full_chain_cpu_pct        CPU of the busiest collector process, % of one core
    ws_full_chain_peak_rss_mb    peak RSS (VmHWM) of the biggest collector process
    ws_latency_p50_s/_p99_s      exchange `timestamp` of a row -> the commit time of its transaction
                                 (pg_xact_commit_timestamp(xmin)), over every quote and trade row of the window
    ws_stall_*                   --stall S: every PostgreSQL process SIGSTOPped for S seconds (a stalled
                                 database: connections hang, nothing errors), then SIGCONT: RSS before /
                                 peak during / after, the rows spooled, the time to drain the backlog and
                                 the drain rate against the live rate
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import COLLECTOR, cpu_s, emit, mem_mb, stop_all, throwaway_db  # noqa: E402
from ws_e2e import status  # noqa: E402


def tables_of(curs: list[str]) -> list[str]:
    """The per-currency stream tables (``btc_option_quotes``, ``btc_option_trades``, ...)."""
    return [f"{c.lower()}_option_{kind}" for c in curs for kind in ("quotes", "trades")]


def currencies(args) -> list[str]:
    return [c.strip().upper() for c in args.currencies.split(",") if c.strip()]


def latency(dsn: str, tables: list[str], start: float, end: float) -> tuple[float, float, int]:
    one = sql.SQL("SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - timestamp) AS lat FROM {} "
                  "WHERE timestamp >= to_timestamp(%(s)s) AND timestamp < to_timestamp(%(e)s)")
    q = sql.SQL("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY lat), percentile_disc(0.99) WITHIN GROUP "
                "(ORDER BY lat), count(*) FROM ({}) t").format(
        sql.SQL(" UNION ALL ").join(one.format(sql.Identifier(t)) for t in tables))
    with psycopg.connect(dsn) as conn:
        p50, p99, n = conn.execute(q, {"s": start, "e": end}).fetchone()
    return float(p50 or 0), float(p99 or 0), n


def rows(dsn: str, tables: list[str]) -> int:
    with psycopg.connect(dsn) as conn:
        return sum(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                   for t in tables)


def pg_pids(datadir: Path) -> list[int]:
    master = int((datadir / "postmaster.pid").read_text().split()[0])
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                    kids.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return [master, *kids]


def signal_pids(pids: list[int], sig: int) -> list[int]:
    """Send ``sig`` to each pid still there; the ones signalled. A PostgreSQL process may exit at any
    moment (a backend whose client left, a worker done): that is no error of the benchmark."""
    done = []
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue
        done.append(pid)
    return done


def spool_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*.spool")) if d.exists() else 0


def stall(args, dsn: str, datadir: Path, spool: Path, ws: dict, live_rows_per_s: float) -> None:
    tables = tables_of(currencies(args))
    rss0 = max(mem_mb(p.pid, "VmRSS") for p in ws.values())
    pids = signal_pids(pg_pids(datadir), signal.SIGSTOP)
    peak, t0 = rss0, time.monotonic()
    try:
        while time.monotonic() - t0 < args.stall:
            time.sleep(2)
            peak = max(peak, *(mem_mb(p.pid, "VmRSS") for p in ws.values()))
    finally:
        signal_pids(pids, signal.SIGCONT)
    spooled = spool_bytes(spool)
    emit("ws_stall_s", time.monotonic() - t0, "s")
    emit("ws_stall_rss_before_mb", rss0, "MB")
    emit("ws_stall_rss_peak_during_mb", peak, "MB")
    emit("ws_stall_spool_mb", spooled / 1e6, "MB")
    t1, n1 = time.monotonic(), rows(dsn, tables)
    while spool_bytes(spool) > 0 and time.monotonic() - t1 < 600:   # the spooled backlog is replayed
        time.sleep(0.2)
    # the queue's backlog is not on disk: the drain ends at the first second committing < 1.5 x live
    prev, tp = rows(dsn, tables), time.monotonic()
    while time.monotonic() - t1 < 600:
        time.sleep(1)
        cur, tc = rows(dsn, tables), time.monotonic()
        if (cur - prev) / (tc - tp) < 1.5 * live_rows_per_s:
            break
        prev, tp = cur, tc
    drain = tp - t1
    committed = prev - n1
    emit("ws_stall_drain_s", drain, "s")
    emit("ws_stall_drain_rows_per_s", committed / drain if drain else 0, "rows/s")
    emit("ws_stall_drain_x_live", (committed / drain) / live_rows_per_s if drain and live_rows_per_s else 0, "x")
    emit("ws_stall_rss_after_mb", max(mem_mb(p.pid, "VmRSS") for p in ws.values()), "MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--strikes", type=int, default=16)
    ap.add_argument("--rate", type=float, default=200_000)
    ap.add_argument("--trade-rate", type=float, default=100)
    ap.add_argument("--currencies", default="BTC,ETH")
    ap.add_argument("--stall", type=float, default=60, help="seconds of SIGSTOPped PostgreSQL (0: no stall)")
    args = ap.parse_args()
    curs = currencies(args)
    tables = tables_of(curs)
    tmp = Path(tempfile.mkdtemp(prefix="bench-chain-"))
    cluster = None
    procs: list[subprocess.Popen] = []
    try:
        cluster, dsn = throwaway_db(tmp, curs, "-c shared_buffers=256MB -c track_commit_timestamp=on")
        sim = subprocess.Popen([COLLECTOR, "sim", "--seed", "1", "--currencies", ",".join(curs),
                                "--strikes", str(args.strikes), "--rate", str(args.rate),
                                "--trade-rate", str(args.trade_rate), "--max-connections", "0", "--no-credits"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(sim)
        urls = json.loads(sim.stdout.readline())
        env = {**os.environ, "DATABASE_URL": dsn, "DERIBIT_WS_URL": urls["ws"], "DERIBIT_REST_URL": urls["rest"],
               "COLLECTOR_SPOOL_DIR": str(tmp / "spool"), "COLLECTOR_LOG_LEVEL": "WARNING"}
        ws = {}
        for cur in curs:
            env[f"WS_{cur}_TOP_N_INSTRUMENTS"] = "0"
            ws[cur] = subprocess.Popen([COLLECTOR, "ws", "--currency", cur], env=env, stdout=subprocess.DEVNULL,
                                       stderr=open(tmp / f"ws-{cur}.log", "w"))
            procs.append(ws[cur])
        time.sleep(args.warmup)
        w0, t0 = time.time(), time.monotonic()
        start = {cur: (cpu_s(p.pid), *status(dsn, f"ws:{cur}")) for cur, p in ws.items()}
        r0 = rows(dsn, tables)
        time.sleep(args.seconds)
        wall = time.monotonic() - t0
        end = {cur: (cpu_s(p.pid), *status(dsn, f"ws:{cur}")) for cur, p in ws.items()}
        live = (rows(dsn, tables) - r0) / wall
        frames = sum(end[c][1] - start[c][1] for c in curs)
        emit("ws_full_chain_msgs_per_s", frames / wall, "msg/s")
        emit("ws_full_chain_rows_per_s", live, "rows/s")
        emit("ws_full_chain_cpu_pct", max(100 * (end[c][0] - start[c][0]) / wall for c in curs), "%")
        if frames:
            emit("ws_full_chain_cpu_us_per_msg", 1e6 * sum(end[c][0] - start[c][0] for c in curs) / frames, "us")
        emit("ws_full_chain_peak_rss_mb", max(mem_mb(p.pid, "VmHWM") for p in ws.values()), "MB")
        emit("sim_cpu_pct", 100 * cpu_s(sim.pid) / (wall + args.warmup), "%")
        time.sleep(3)  # the window's last batches commit (max age 1 s)
        p50, p99, n = latency(dsn, tables, w0, w0 + wall)
        emit("ws_latency_p50_s", p50, "s")
        emit("ws_latency_p99_s", p99, "s")
        emit("ws_latency_rows", n, "rows")
        if args.stall > 0:
            stall(args, dsn, cluster.datadir,
                  tmp / "spool", ws, live)
        for p in ws.values():
            p.send_signal(signal.SIGTERM)
        for cur, p in ws.items():
            if p.wait(30) != 0:
                print(f"# ws {cur} exited {p.returncode}; see {tmp}/ws-{cur}.log", file=sys.stderr)
    finally:
        stop_all(procs, cluster, tmp)


if __name__ == "__main__":
    main()
