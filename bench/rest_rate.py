"""Wall time of one pass of each REST job over the simulator's full universe, into a throwaway PostgreSQL.

    .venv/bin/python bench/rest_rate.py [--currencies BTC,ETH] [--strikes 16] [--threads 4]

Prints one line per figure: `name value unit`. For each job: the pass's wall time, its requests, and the
least time Deribit's credit scheme allows for that many requests from a full pool (the limiter's bound):
when the two are close, the limiter, not the code, bounds the pass. Each job gets a fresh credit pool and
the simulator's pool is left to refill between jobs, as between two timer runs.

Starts a simulator in-process (speed 60: a simulated minute per second, so consecutive `rest` passes see
new minutes) and its own PostgreSQL cluster in a temp dir, and removes both afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import psycopg

from collector.config import Settings
from collector.deribit.ratelimit import DEFAULT_CAPACITY, DEFAULT_COST, DEFAULT_REFILL_PER_S, CreditBucket
from collector.jobs import depth, funding, greeks, rest
from collector.jobs.restjob import CREDIT_MARGIN
from collector.sim.runner import running
from collector.sim.server import SimConfig
from collector.store import migrate
from collector.store.localpg import LocalCluster

REFILL_S = DEFAULT_CAPACITY / DEFAULT_REFILL_PER_S + 0.5  # the simulator's pool is full again


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3g} {unit}" if value < 100 else f"{name} {value:.0f} {unit}", flush=True)


def limiter_bound_s(requests: int) -> float:
    cost = DEFAULT_COST * (1 + CREDIT_MARGIN)
    return max(0.0, (requests * cost - DEFAULT_CAPACITY) / DEFAULT_REFILL_PER_S)


def timed(name: str, job, settings: Settings, threads: int) -> None:
    time.sleep(REFILL_S)
    t = time.perf_counter()
    out = job.run(settings, bucket=CreditBucket(), threads=threads)
    wall = time.perf_counter() - t
    if out.exit_code != 0:
        raise SystemExit(f"{name}: pass failed: {out.failures}")
    emit(f"{name}_pass_s", wall, "s")
    emit(f"{name}_requests", out.requests, "requests")
    emit(f"{name}_limiter_bound_s", limiter_bound_s(out.requests), "s")
    emit(f"{name}_rows", out.rows_inserted, "rows")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--currencies", default="BTC,ETH")
    ap.add_argument("--strikes", type=int, default=16)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    curs = [c.strip().upper() for c in args.currencies.split(",") if c.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="bench-rest-"))
    cluster = LocalCluster(tmp / "pg")
    try:
        cluster.start("-c shared_buffers=128MB")
        dsn = cluster.create_database("bench")
        with psycopg.connect(dsn) as conn:
            migrate.migrate(conn, curs)
        with running(SimConfig(seed=7, currencies=curs, strikes=args.strikes, speed=60.0)) as sim:
            settings = Settings.load(env={}, database_url=dsn, rest_url=sim.urls["rest"],
                                     currencies=",".join(curs), spool_dir=str(tmp / "spool"))
            n = sim.call(lambda: {k: sum(1 for i in sim.server.market.live.values() if i.kind == k)
                                  for k in ("future", "option")})
            emit("universe_futures", n["future"], "instruments")
            emit("universe_options", n["option"], "instruments")
            timed("rest_first", rest, settings, args.threads)   # fresh database: catch-up over the horizon
            timed("rest_full", rest, settings, args.threads)    # the every-minute pass
            timed("greeks_full", greeks, settings, args.threads)
            timed("depth_full", depth, settings, args.threads)
            timed("funding_full", funding, settings, args.threads)
    finally:
        cluster.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
