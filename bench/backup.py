"""`collector db backup` / `collector db restore` on a database of some size, both engines.

    .venv/bin/python bench/backup.py [--rows 2000000] [--days 4]

For each engine a throwaway cluster (``bench/harness.py``) with a migrated database; ``--rows``
quote-shaped rows (``INSERT … SELECT generate_series``, 800 instruments, spread over ``--days`` days:
as many 1-day chunks) go into btc_option_quotes and a tenth of that into btc_option_trades; on
TimescaleDB every chunk is then compressed (what production looks like after 7 days). Then the backup
(pg_dump -Fc through ``collector.jobs.backup.make_backup``), a restore into a new, empty database
(``restore``: TimescaleDB's pre/post-restore, one transaction, ANALYZE) and a check that the row counts
are equal. Figures: ``name value unit``; ``[engine]`` names the engine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import emit, stop_all, throwaway_db  # noqa: E402

from collector.jobs import backup  # noqa: E402

QUOTES = """
INSERT INTO btc_option_quotes (timestamp, instrument, best_bid_price, best_bid_amount, best_ask_price, best_ask_amount,
    mark_price, mark_iv, bid_iv, ask_iv, underlying_price, underlying_index, index_price, open_interest,
    delta, gamma, vega, theta, rho, last_price, volume_24h, implied_volatility)
SELECT now() - make_interval(secs => (%(n)s - i) * %(step)s), 'BTC-27MAR26-' || (40000 + (i %% 800) * 100) || '-C',
       0.05 + (i %% 97) / 1e4, 10 + i %% 13, 0.051 + (i %% 97) / 1e4, 12 + i %% 11, 0.0505, 55 + (i %% 50) / 10.0,
       54.0, 56.0, 60000 + (i %% 1000), 'BTC-27MAR26', 60000 + (i %% 1000), 1000 + i %% 500,
       0.5, 0.0001, 12.5, -30.1, 4.2, 0.05, 123.0, 55.0
FROM generate_series(1, %(n)s) AS i
"""
TRADES = """
INSERT INTO btc_option_trades (timestamp, instrument, trade_seq, trade_id, price, amount, direction, contracts,
    tick_direction, index_price, mark_price, iv)
SELECT now() - make_interval(secs => (%(n)s - i) * %(step)s), 'BTC-27MAR26-' || (40000 + (i %% 800) * 100) || '-C',
       i, 'BTC-' || i, 0.05, 1.0, CASE WHEN i %% 2 = 0 THEN 'buy' ELSE 'sell' END, 1.0, 0, 60000, 0.05, 55.0
FROM generate_series(1, %(n)s) AS i
"""


def counts(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        return (conn.execute("SELECT count(*) FROM btc_option_quotes").fetchone()[0],
                conn.execute("SELECT count(*) FROM btc_option_trades").fetchone()[0])


def one(engine: str, rows: int, days: int, tmp: Path) -> None:
    cluster, dsn = throwaway_db(tmp, ["BTC", "ETH"], "-c shared_buffers=256MB", engine=engine, name=engine)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            t0 = time.monotonic()
            conn.execute(QUOTES, {"n": rows, "step": days * 86400 / rows})
            conn.execute(TRADES, {"n": rows // 10, "step": days * 86400 / (rows // 10)})
            emit(f"[{engine}] fill_s", time.monotonic() - t0, "s")
            if engine == "timescaledb":
                conn.execute("SELECT count(compress_chunk(c, if_not_compressed => true)) FROM "
                             "timescaledb_information.hypertables h, show_chunks(format('%I', h.hypertable_name)) c "
                             "WHERE h.compression_enabled")
            conn.execute("VACUUM ANALYZE")
            emit(f"[{engine}] database_bytes", conn.execute("SELECT pg_database_size(current_database())").fetchone()[0],
                 "B")
        emit(f"[{engine}] rows", sum(counts(dsn)), "rows")
        made = backup.make_backup(dsn, tmp / "dumps", keep=1)
        emit(f"[{engine}] backup_bytes", made.bytes, "B")
        emit(f"[{engine}] backup_s", made.seconds, "s")
        target = cluster.create_database("restored")
        out = backup.restore(target, made.path)
        emit(f"[{engine}] restore_s", out["seconds"], "s")
        emit(f"[{engine}] analyze_s", out["analyze_seconds"], "s")
        assert counts(target) == counts(dsn), (counts(target), counts(dsn))
    finally:
        stop_all([], cluster, tmp / engine)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--days", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        for engine in ("plain", "timescaledb"):
            one(engine, args.rows, args.days, Path(tmp))


if __name__ == "__main__":
    main()
