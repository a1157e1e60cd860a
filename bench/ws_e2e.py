"""End to end: simulator -> `collector ws` -> PostgreSQL, on loopback. Prints `name value unit` lines.

    .venv/bin/python bench/ws_e2e.py [--seconds 30] [--strikes 16] [--rate 200000] [--speed 1]
                                     [--currencies BTC,ETH]

Starts a throwaway PostgreSQL cluster, one `collector sim` process and one `collector ws` process per
currency (whole chain: WS_{CUR}_TOP_N_INSTRUMENTS=0), each in its own process like systemd runs them.
After a warm-up it measures, per collector process, over --seconds:

    ws_e2e_msgs_per_s        frames received, parsed and written (committed or spooled) per second
    ws_cpu_pct               the collector's CPU (user+system) as % of one core
    ws_cpu_us_per_msg        CPU microseconds per frame, so the ceiling on one core is 1e6 / this
    ws_peak_rss_mb           peak resident memory (VmHWM)
    ws_rows_per_s            rows committed per second (quotes change less often than tickers arrive)

The simulator sends at most one notification per channel per 100 ms (as Deribit's 100ms channels do),
so the offered rate is bounded by the number of channels: raise --strikes for a bigger universe.
With --speed 60 a 60 s run covers a simulated hour (expiries, listings) for the RSS-after-an-hour figure.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import COLLECTOR, cpu_s, emit, mem_mb, stop_all, throwaway_db  # noqa: E402,F401 (re-exported)


def status(dsn: str, job: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT (details->>'frames')::bigint, rows_written + rows_spooled "
                           "FROM collector_status WHERE job = %s", (job,)).fetchone()
    return (row[0] or 0, row[1] or 0) if row else (0, 0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=8)
    ap.add_argument("--strikes", type=int, default=16)
    ap.add_argument("--rate", type=float, default=200_000)
    ap.add_argument("--trade-rate", type=float, default=100)
    ap.add_argument("--speed", type=float, default=1)
    ap.add_argument("--currencies", default="BTC,ETH")
    args = ap.parse_args()
    curs = [c.strip().upper() for c in args.currencies.split(",") if c.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="bench-ws-"))
    cluster = None
    procs: list[subprocess.Popen] = []
    try:
        cluster, dsn = throwaway_db(tmp, curs, "-c shared_buffers=256MB -c synchronous_commit=off")
        sim = subprocess.Popen([COLLECTOR, "sim", "--seed", "1", "--currencies", ",".join(curs),
                                "--strikes", str(args.strikes), "--rate", str(args.rate),
                                "--trade-rate", str(args.trade_rate), "--speed", str(args.speed),
                                "--max-connections", "0", "--no-credits"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(sim)
        urls = json.loads(sim.stdout.readline())
        env = {**os.environ, "DATABASE_URL": dsn, "DERIBIT_WS_URL": urls["ws"], "DERIBIT_REST_URL": urls["rest"],
               "COLLECTOR_SPOOL_DIR": str(tmp / "spool"), "COLLECTOR_LOG_LEVEL": "WARNING"}
        ws = {}
        for cur in curs:
            env[f"WS_{cur}_TOP_N_INSTRUMENTS"] = "0"
            p = subprocess.Popen([COLLECTOR, "ws", "--currency", cur], env=env, stdout=subprocess.DEVNULL,
                                 stderr=open(tmp / f"ws-{cur}.log", "w"))
            procs.append(p)
            ws[cur] = p
        time.sleep(args.warmup)
        t0 = time.monotonic()
        start = {cur: (cpu_s(p.pid), *status(dsn, f"ws:{cur}")) for cur, p in ws.items()}
        time.sleep(args.seconds)
        wall = time.monotonic() - t0
        for cur, p in ws.items():
            c0, f0, r0 = start[cur]
            c1, (f1, r1) = cpu_s(p.pid), status(dsn, f"ws:{cur}")
            frames = f1 - f0
            emit(f"ws_e2e_msgs_per_s[{cur}]", frames / wall, "msg/s")
            emit(f"ws_rows_per_s[{cur}]", (r1 - r0) / wall, "rows/s")
            emit(f"ws_cpu_pct[{cur}]", 100 * (c1 - c0) / wall, "%")
            if frames:
                emit(f"ws_cpu_us_per_msg[{cur}]", 1e6 * (c1 - c0) / frames, "us")
            emit(f"ws_peak_rss_mb[{cur}]", mem_mb(p.pid, "VmHWM"), "MB")
            emit(f"ws_rss_end_mb[{cur}]", mem_mb(p.pid, "VmRSS"), "MB")
        emit("sim_cpu_pct", 100 * cpu_s(sim.pid) / (time.monotonic() - t0 + args.warmup), "%")
        for cur, p in ws.items():
            p.send_signal(signal.SIGTERM)
        for cur, p in ws.items():
            rc = p.wait(20)
            if rc != 0:
                print(f"# ws {cur} exited {rc}; see {tmp}/ws-{cur}.log", file=sys.stderr)
    finally:
        stop_all(procs, cluster, tmp)


if __name__ == "__main__":
    main()
