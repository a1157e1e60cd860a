"""The stream's ceiling: load generator -> one `collector ws` process -> PostgreSQL, and each stage alone.

    .venv/bin/python bench/ws_max.py [--seconds 30] [--rate 0] [--strikes 24] [--currency BTC]

What is measured (honestly): the simulator's ticker channels replayed by bench/loadgen.py over a real
WebSocket on loopback (``--rate 0``: as fast as the collector drains the socket; a number: that offered
rate), into one `collector ws --currency CUR` process (whole chain) and a throwaway PostgreSQL, all on
this machine. Every ticker frame carries a new exchange timestamp and a changed book, so every frame is
one row through the idempotent COPY path. Figures (`name value unit`):

    ws_e2e_msgs_per_s          rows committed in {cur}_option_quotes per second (counted in the database)
    ws_e2e_frames_in_per_s     frames the load generator wrote to the collector's socket per second
    ws_e2e_spooled_rows        rows the collector had to spool in the window (0 = the writer kept up)
    ws_e2e_cpu_pct             the collector's CPU as % of one core (<= 100: it is one process, one core)
    ws_e2e_cpu_us_per_msg      collector CPU per frame received (or per row committed, the larger)
    ws_e2e_peak_rss_mb         the collector's peak RSS
    ws_stage_receive_msgs_per_s  a bare websockets client (uvloop) reading the same frames, no decoding
    ws_stage_parse_msgs_per_s    decode + Pipeline (quote filter, records) on recorded frames, one core
    ws_stage_write_rows_per_s    BatchStore.write of those rows (binary COPY + INSERT ON CONFLICT)

``--frames ours,websockets --rounds 2`` runs the e2e part once per reader and round, alternating
(ours, websockets, ours, websockets: the machine's noise falls on both alike) against the same
database (truncated, checkpointed and a fresh spool before each run), with the figures prefixed
``{prefix}_{reader}_r{round}``, then each reader's mean and websockets/ours ratios; the stages then add

    ws_stage_frames_{reader}_us_per_frame  CPU per frame of WsConnection.data_received + recv_batch
                                 alone (the recorded frames, as server frames in 64 kB reads; best of 5)

``--overload F`` (issue 14: overload keeps the connection) first finds the sustainable rate -- the rows
per second the database absorbs from one collector offered as fast as it reads (``--rate 0`` for
``--calibrate-seconds``; or ``--rate R`` given) -- then offers ``F`` times that for ``--seconds`` and,
after the collector stopped (SIGTERM: the queue flushed or spooled), prints both sides of the account
over the whole run (``{prefix}`` is ``ws_overload``):

    ws_overload_sustainable_rows_per_s  the calibration's committed rows/s; the offered rate is F x this
    ws_overload_quote_rows_made  quote rows the collector made (one per ticker frame it received)
    ws_overload_rows_committed   rows in {cur}_option_quotes    ws_overload_rows_in_spool  rows left in the spool
    ws_overload_rows_dropped     rows dropped (queue and spool full)    ws_overload_rows_unaccounted  made -
                                 committed - in spool - dropped: 0 = nothing lost, nothing twice
    ws_overload_rss_window_start_mb / _peak_rss_mb  RSS as the window starts (the queue already full) and
                                 the peak; ws_overload_queue_bound_mb what the queue's bound in rows
                                 (COLLECTOR_QUEUE_MAX_ROWS) holds, at the bytes per row measured here

``--db-delay-us N`` makes every row inserted into the quotes table wait N us in the database (a row
trigger; the collector's COPY and merge are unchanged): a database that absorbs a bounded number of rows
per second whatever the batch size, so that the overload is the database's and not the machine's (on a
loaded machine the collector's own reading may be what falls behind at high rates: the load generator
then drops it as a slow consumer, spooling or not).

``--engine timescaledb`` runs the database on PostgreSQL + TimescaleDB (``bin/timescaledb``: the quotes
table is a hypertable); ``--code DIR`` runs the collector (process and migrations) from another source
tree, e.g. a git worktree of an older commit (``bench/ws_layouts.py`` alternates the two). The count is
of ``{cur}_option_quotes``: the table, or in the layout before 0004 the view on ``option_quotes``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import COLLECTOR, ENGINES, code_env, cpu_s, emit, mem_mb, stop_all, throwaway_db  # noqa: E402


def account(dsn: str, job: str, table: str, spool: Path) -> dict[str, int]:
    """After the collector stopped: its own counters (the final status row), the rows in the database
    and those left in the spool (decoded)."""
    from collector.store.spool import Spool
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT details, rows_spooled, rows_written FROM collector_status WHERE job = %s",
                           (job,)).fetchone()
    details, spooled_, written = row if row else ({}, 0, 0)
    left = Spool(spool, 1 << 62)
    in_spool = sum(len(left.load(s)) for s in left.segments() if s.table == "option_quotes")
    return {"frames_received": int(details.get("frames", 0)), "quote_rows_made": int(details.get("quotes", 0)),
            "rows_committed": count(dsn, table), "rows_in_spool": in_spool, "rows_spooled": int(spooled_ or 0),
            "rows_dropped": int(details.get("dropped", 0)), "connections": int(details.get("connects", 0))}


def row_bytes(n: int = 20_000) -> float:
    """Memory per queued quote row (a record with every field set, as the parser makes them)."""
    import tracemalloc
    from datetime import datetime, timedelta, timezone

    from collector.records import OptionQuote
    names = [f"BTC-27DEC26-{50000 + 1000 * k}-C" for k in range(200)]
    t = datetime.now(timezone.utc)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    rest = OptionQuote.__struct_fields__[3:]
    rows = [OptionQuote(t + timedelta(microseconds=i), names[i % 200], "BTC",  # type: ignore[arg-type]
                        *("BTC-27DEC26" if f == "underlying_index" else i + k / 7 for k, f in enumerate(rest)))
            for i in range(n)]
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del rows
    return used / n


def imports_rss_mb() -> float:
    """RSS of a process that has imported what `collector ws` runs (its floor before any row)."""
    code = ("import collector.cli, collector.jobs.ws, psycopg, uvloop, websockets; "
            "print(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def start_loadgen(args, rate: float) -> tuple[subprocess.Popen, dict]:
    p = subprocess.Popen([sys.executable, str(ROOT / "bench" / "loadgen.py"), "--rate", str(rate),
                          "--strikes", str(args.strikes), "--currencies", args.currency],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return p, json.loads(p.stdout.readline())


def sent(control: str) -> int:
    import requests
    return requests.get(control + "/stats", timeout=10).json()["notifications"]["frames_sent"]


def count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # bench-only, static names


def connects(dsn: str, job: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT (details->>'connects')::int FROM collector_status WHERE job = %s", (job,)).fetchone()
    return row[0] if row and row[0] else 0


def spooled(dsn: str, job: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT rows_spooled FROM collector_status WHERE job = %s", (job,)).fetchone()
    return row[0] if row and row[0] else 0


async def _receive(url: str, channels: list[str], seconds: float, frames: list | None) -> float:
    from websockets.asyncio.client import connect
    async with connect(url, max_size=None, compression=None, max_queue=64) as ws:
        for i in range(0, len(channels), 200):
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": i, "method": "public/subscribe",
                                      "params": {"channels": channels[i:i + 200]}}))
        warm = time.monotonic() + 2
        while time.monotonic() < warm:
            raw = await ws.recv(decode=False)
            if frames is not None and len(frames) < 100_000:
                frames.append(raw)
        n, t0 = 0, time.monotonic()
        end = t0 + seconds
        while True:
            for _ in range(1000):
                await ws.recv(decode=False)
            n += 1000
            if time.monotonic() >= end:
                return n / (time.monotonic() - t0)


def stage_receive(args, frames: list) -> float:
    """A bare client on the load generator (as fast as the socket drains); keeps frames for the parse stage."""
    import requests
    import uvloop
    lg, urls = start_loadgen(args, 0)
    try:
        names = [i["instrument_name"] for i in requests.get(
            urls["rest"] + "/public/get_instruments", params={"currency": args.currency, "kind": "option"},
            timeout=10).json()["result"]]
        chans = [f"ticker.{n}.100ms" for n in names]
        return uvloop.run(_receive(urls["ws"], chans, min(args.seconds, 10), frames))
    finally:
        lg.kill()
        lg.wait()


def stage_parse(frames: list, currency: str) -> tuple[float, list]:
    from collector.deribit.frames import split_notification
    from collector.deribit.pipeline import Pipeline
    rows: list = []
    best = 0.0
    for _ in range(3):
        rows.clear()
        pipe = Pipeline(currency, rows.append)
        handle = pipe.handle
        t0 = time.perf_counter()
        for raw in frames:  # as WsSession(raw_data=True) hands them over
            note = split_notification(raw)
            if note is not None:
                handle(note[0], note[1])
        best = max(best, len(frames) / (time.perf_counter() - t0))
    return best, list(rows)


def stage_write(dsn: str, tmp: Path, rows: list, batch: int) -> float:
    from collector.store.spool import Spool
    from collector.store.writer import BatchStore
    store = BatchStore(dsn, Spool(tmp / "stage-spool", 1 << 30))
    try:
        t0 = time.perf_counter()
        for i in range(0, len(rows), batch):
            store.write(rows[i:i + batch])
        return len(rows) / (time.perf_counter() - t0)
    finally:
        store.close()


# runs `collector` with wsconn.FRAMES set (and optionally under cProfile): python -c LAUNCH FRAMES PROF ARGS...
LAUNCH = """import sys
frames, prof = sys.argv.pop(1), sys.argv.pop(1)
if frames:
    from collector.deribit import wsconn
    wsconn.FRAMES = frames
from collector.cli import main
if prof:
    import cProfile
    cProfile.run("main(prog_name='collector')", prof)
else:
    main(prog_name="collector")
"""


def stage_frames(frames: list, readers: list[str], rounds: int = 5) -> dict[str, float]:
    """CPU us per frame of WsConnection's receive path alone, per reader (alternating, best of ``rounds``)."""
    import asyncio

    from websockets.client import ClientProtocol
    from websockets.frames import Frame, Opcode
    from websockets.server import ServerProtocol
    from websockets.uri import parse_uri

    from collector.deribit.wsconn import WsConnection

    wire = b"".join(Frame(Opcode.TEXT, bytes(f)).serialize(mask=False, extensions=[]) for f in frames)
    chunks = [wire[i:i + 65536] for i in range(0, len(wire), 65536)]

    class Sink(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.out: list[bytes] = []

        def write(self, data) -> None:
            self.out.append(bytes(data))

    async def once(reader: str) -> float:
        hs = ClientProtocol(parse_uri("ws://bench/ws"), max_size=64 << 20)
        hs.send_request(hs.connect())
        conn, sink = WsConnection(hs, 64 << 20, 1 << 30, reader), Sink()
        conn.connection_made(sink)
        srv = ServerProtocol()
        srv.receive_data(b"".join(sink.out))
        srv.send_response(srv.accept(srv.events_received()[0]))
        conn.data_received(b"".join(srv.data_to_send()))
        n, t0 = 0, time.process_time()
        for c in chunks:  # every 64 kB read completes messages (ticker frames are ~1 kB)
            conn.data_received(c)
            n += len(await conn.recv_batch())  # as the session: every message of the read at once
        assert n == len(frames), (reader, n)
        return 1e6 * (time.process_time() - t0) / n

    best: dict[str, float] = {}
    for _ in range(rounds):
        for reader in readers:
            us = asyncio.run(once(reader))
            best[reader] = min(best.get(reader, us), us)
    return best


def e2e(args, dsn: str, tmp: Path, frames: str, prefix: str, procs: list, rate: float | None = None,
        seconds: float | None = None, accounts: bool = False) -> dict[str, float]:
    """One collector process against a fresh load generator: the ws_e2e_* figures, returned too."""
    cur = args.currency.upper()
    quotes = f"{cur.lower()}_option_quotes"
    rate = args.rate if rate is None else rate
    seconds = args.seconds if seconds is None else seconds
    lg, urls = start_loadgen(args, rate)
    procs.append(lg)
    spool = tempfile.mkdtemp(prefix="spool-", dir=tmp)  # a fresh spool: no replay of another run's rows
    env = {**code_env(args.code), "DATABASE_URL": dsn, "DERIBIT_WS_URL": urls["ws"], "DERIBIT_REST_URL": urls["rest"],
           "COLLECTOR_SPOOL_DIR": spool, "COLLECTOR_LOG_LEVEL": "WARNING",
           f"WS_{cur}_TOP_N_INSTRUMENTS": "0", **dict(e.split("=", 1) for e in args.env)}
    if frames or args.profile:
        cmd = [sys.executable, "-c", LAUNCH, frames, args.profile or ""]
    else:
        cmd = [COLLECTOR]
    wslog = tmp / "ws.log"
    log_from = wslog.stat().st_size if wslog.exists() else 0   # this run's lines only
    ws = subprocess.Popen([*cmd, "ws", "--currency", cur], env=env, stdout=subprocess.DEVNULL,
                          stderr=open(tmp / "ws.log", "a"))
    procs.append(ws)
    time.sleep(args.warmup)
    spy = None
    if args.py_spy:  # a sampling profile of the window (collapsed stacks, with the writer thread)
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(ws.pid), "-d",
                                str(int(args.seconds)), "-f", "raw", "-o", args.py_spy, "--threads"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c0, n0, s0, t0 = cpu_s(ws.pid), count(dsn, quotes), spooled(dsn, f"ws:{cur}"), time.monotonic()
    f0, rss = sent(urls["control"]), [mem_mb(ws.pid, "VmRSS")]
    while time.monotonic() - t0 < seconds and ws.poll() is None:
        time.sleep(min(1.0, max(0.0, seconds - (time.monotonic() - t0))))
        rss.append(mem_mb(ws.pid, "VmRSS"))
    c1, n1, t1 = cpu_s(ws.pid), count(dsn, quotes), time.monotonic()
    f1 = sent(urls["control"])
    lg0, peak = cpu_s(lg.pid), mem_mb(ws.pid, "VmHWM")
    if spy is not None:
        spy.wait(60)
    ws.send_signal(signal.SIGTERM)
    rc = ws.wait(180)  # the queue flushes or spools; a write in flight (replaying the spool first) ends
    s1 = spooled(dsn, f"ws:{cur}")
    wall, rows, P = t1 - t0, n1 - n0, prefix
    fig = {"msgs_per_s": rows / wall, "frames_in_per_s": (f1 - f0) / wall, "cpu_pct": 100 * (c1 - c0) / wall}
    emit(f"{P}_msgs_per_s", fig["msgs_per_s"], "msg/s")
    emit(f"{P}_frames_in_per_s", fig["frames_in_per_s"], "msg/s")
    emit(f"{P}_spooled_rows", s1 - s0, "rows")
    emit(f"{P}_connections", connects(dsn, f"ws:{cur}"), "connections")  # > 1: it was dropped
    emit(f"{P}_cpu_pct", fig["cpu_pct"], "%")
    if rows:
        fig["cpu_us_per_msg"] = 1e6 * (c1 - c0) / max(rows, f1 - f0)
        emit(f"{P}_cpu_us_per_msg", fig["cpu_us_per_msg"], "us")
    emit(f"{P}_peak_rss_mb", peak, "MB")
    emit(f"{P}_loadgen_cpu_pct", 100 * lg0 / (time.monotonic() - t0 + args.warmup), "%")
    if rc != 0:
        print(f"# collector exited {rc}; see {tmp}/ws.log", file=sys.stderr)
    lg.kill()
    lg.wait()
    if connects(dsn, f"ws:{cur}") > 1:  # why it was dropped: the collector's own words
        lines = [ln for ln in wslog.read_bytes()[log_from:].decode(errors="replace").splitlines()
                 if "disconnected" in ln]
        for ln in lines[-5:]:
            print(f"# {ln[:400]}", file=sys.stderr)
    if accounts:  # what the collector warned about, by event (spill_thread_behind: the loop spilled itself)
        events: dict[str, int] = {}
        for ln in wslog.read_bytes()[log_from:].decode(errors="replace").splitlines():
            try:
                ev = json.loads(ln).get("event", "?")
            except ValueError:
                continue
            events[ev] = events.get(ev, 0) + 1
        print("# collector log events: " + (", ".join(f"{k} x{v}" for k, v in sorted(events.items())) or "none"),
              file=sys.stderr)
        a = account(dsn, f"ws:{cur}", quotes, Path(spool) / f"ws-{cur}")
        for k, v in a.items():
            emit(f"{P}_{k}", v, "connections" if k == "connections" else "frames" if k == "frames_received" else "rows")
        emit(f"{P}_rows_unaccounted", a["quote_rows_made"] - a["rows_committed"] - a["rows_in_spool"]
             - a["rows_dropped"], "rows")
        emit(f"{P}_x_committed", fig["frames_in_per_s"] / fig["msgs_per_s"] if rows else 0, "x")  # offered/absorbed
        half = len(rss) // 2
        emit(f"{P}_rss_max_first_half_mb", max(rss[:half] or rss), "MB")   # flat = bounded
        emit(f"{P}_rss_max_second_half_mb", max(rss[half:]), "MB")
        fig.update({k: float(v) for k, v in a.items()})
        fig["peak_rss_mb"] = peak
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--rate", type=float, default=0, help="offered ticker frames/s (0: as fast as drained)")
    ap.add_argument("--strikes", type=int, default=24)
    ap.add_argument("--currency", default="BTC")
    ap.add_argument("--no-stages", action="store_true")
    ap.add_argument("--prefix", default="ws_e2e", help="name prefix of the e2e figures")
    ap.add_argument("--py-spy", help="sample the collector with py-spy during the window, into this file")
    ap.add_argument("--profile", help="run the collector under cProfile, writing this file")
    ap.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the collector")
    ap.add_argument("--engine", choices=ENGINES, default="plain", help="the database server")
    ap.add_argument("--code", type=Path, help="run the collector from this source tree (another commit)")
    ap.add_argument("--frames", default="", help="comma-separated frame readers (wsconn.FRAME_READERS), alternated")
    ap.add_argument("--rounds", type=int, default=1, help="with --frames: runs per reader")
    ap.add_argument("--overload", type=float, default=0,
                    help="offer this many times the sustainable rate (found first, or --rate) for --seconds")
    ap.add_argument("--calibrate-seconds", type=float, default=20, help="with --overload: the calibration window")
    ap.add_argument("--db-delay-us", type=float, default=0,
                    help="each row inserted into the quotes table waits this long in the database (a row "
                         "trigger): a database slower than the stream whatever the machine and the batch size")
    args = ap.parse_args()
    if args.overload:
        return overload(args)
    readers = [f.strip() for f in args.frames.split(",") if f.strip()]
    cur = args.currency.upper()
    quotes = f"{cur.lower()}_option_quotes"
    tmp = Path(tempfile.mkdtemp(prefix="bench-wsmax-"))
    cluster = None
    procs: list[subprocess.Popen] = []
    try:
        cluster, dsn = throwaway_db(tmp, [cur], "-c shared_buffers=256MB", engine=args.engine, code=args.code)
        figs: dict[str, list[dict]] = {}
        for r in range(1, args.rounds + 1):
            for reader in readers or [""]:
                if len(readers) > 1 or args.rounds > 1:
                    with psycopg.connect(dsn, autocommit=True) as conn:  # the same start for every run
                        conn.execute(f"TRUNCATE {quotes}")  # bench-only, a fixed name
                        conn.execute("CHECKPOINT")
                    prefix = f"{args.prefix}_{reader or 'default'}_r{r}"
                else:
                    prefix = args.prefix
                figs.setdefault(reader, []).append(e2e(args, dsn, tmp, reader, prefix, procs))
        if len(readers) > 1 or args.rounds > 1:
            mean = {f: {k: sum(run.get(k, 0) for run in runs) / len(runs) for k in runs[0]} for f, runs in figs.items()}
            for f, m in mean.items():
                for k, v in m.items():
                    emit(f"{args.prefix}_{f or 'default'}_mean_{k}", v, "%" if k == "cpu_pct" else
                         "us" if k.startswith("cpu_us") else "msg/s")
            if "ours" in mean and "websockets" in mean:
                for k in ("msgs_per_s", "frames_in_per_s", "cpu_us_per_msg"):
                    if k in mean["ours"] and mean["ours"][k]:
                        emit(f"{args.prefix}_websockets_vs_ours_{k}", mean["websockets"][k] / mean["ours"][k], "x")
        if not args.no_stages:
            frames: list = []
            emit("ws_stage_receive_msgs_per_s", stage_receive(args, frames), "msg/s")
            for reader, us in stage_frames(frames, readers or ["ours", "websockets"]).items():
                emit(f"ws_stage_frames_{reader}_us_per_frame", us, "us")
            rate, rows_ = stage_parse(frames, cur)
            emit("ws_stage_parse_msgs_per_s", rate, "msg/s")
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"TRUNCATE {quotes}")  # bench-only, a fixed name
            emit("ws_stage_write_rows_per_s", stage_write(dsn, tmp, rows_, 5000), "rows/s")
    finally:
        stop_all(procs, cluster, tmp)


def overload(args) -> None:
    """Find the sustainable rate (or take --rate), then offer --overload times it: the account."""
    cur = args.currency.upper()
    quotes = f"{cur.lower()}_option_quotes"
    tmp = Path(tempfile.mkdtemp(prefix="bench-wsmax-"))
    cluster = None
    procs: list[subprocess.Popen] = []
    prefix = args.prefix if args.prefix != "ws_e2e" else "ws_overload"
    try:
        cluster, dsn = throwaway_db(tmp, [cur], "-c shared_buffers=256MB", engine=args.engine, code=args.code)
        if args.db_delay_us:
            with psycopg.connect(dsn, autocommit=True) as conn:  # bench-only: fixed names, a float
                conn.execute("CREATE FUNCTION bench_slow() RETURNS trigger LANGUAGE plpgsql AS "
                             f"$$ BEGIN PERFORM pg_sleep({float(args.db_delay_us) / 1e6}); RETURN NULL; END $$")
                conn.execute(f"CREATE TRIGGER bench_slow AFTER INSERT ON {quotes} FOR EACH ROW "
                             "EXECUTE FUNCTION bench_slow()")
        max_rows = int(dict(e.split("=", 1) for e in args.env).get("COLLECTOR_QUEUE_MAX_ROWS", 200_000))
        per_row = row_bytes()
        base = args.rate
        if base <= 0:
            base = e2e(args, dsn, tmp, "", f"{prefix}_calibrate", procs, rate=0,
                       seconds=args.calibrate_seconds)["msgs_per_s"]
            with psycopg.connect(dsn, autocommit=True) as conn:  # the same start for the overload run
                conn.execute(f"TRUNCATE {quotes}")  # bench-only, a fixed name
                conn.execute("DELETE FROM collector_status")
                conn.execute("CHECKPOINT")
        emit(f"{prefix}_sustainable_rows_per_s", base, "rows/s")
        emit(f"{prefix}_offered_frames_per_s", args.overload * base, "msg/s")
        emit(f"{prefix}_queue_bound_rows", max_rows, "rows")
        emit(f"{prefix}_row_bytes", per_row, "B")
        emit(f"{prefix}_queue_bound_mb", max_rows * per_row / 2**20, "MB")
        fig = e2e(args, dsn, tmp, "", prefix, procs, rate=args.overload * base, accounts=True)
        # the collector's floor + the queue's bound + one batch in flight to the database + one segment
        # being encoded by the spill thread (each at most max_batch_rows = max(4 x 5000, 20000) rows)
        floor = imports_rss_mb()
        bound = floor + (max_rows + 2 * 20_000) * per_row / 2**20
        emit(f"{prefix}_rss_imports_mb", floor, "MB")
        emit(f"{prefix}_rss_bound_mb", bound, "MB")
        emit(f"{prefix}_peak_rss_within_bound", float(fig["peak_rss_mb"] <= bound), "bool")
    finally:
        stop_all(procs, cluster, tmp)


if __name__ == "__main__":
    main()
