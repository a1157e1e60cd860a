"""`collector db status`: every part of the health report on a real database (both engines), and the
exit code: 0 when every check passes, 1 when one fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from collector.config import Settings
from collector.ops import disk, health
from collector.store import status
from tests.ops.fill import insert

CURRENCIES = ("BTC", "ETH")


def fill_all(conn, age_s: float = 10) -> None:
    for rel in status.relations_for(CURRENCIES):
        kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (rel,)).fetchone()
        if kind and kind[0] in ("r", "p"):
            insert(conn, rel, [f"now() - interval '{age_s} seconds'"])


def cli(dsn: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector.cli", "--database-url", dsn, "db", "status", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLLECTOR_CURRENCIES": "BTC,ETH", **(env or {})}, cwd="/")


def settings(**env: str) -> Settings:
    return Settings.load({"COLLECTOR_CURRENCIES": "BTC,ETH", **env})


def test_fresh_data_passes_and_a_stale_relation_fails(dsn, conn, tmp_path):
    empty = cli(dsn, "--json", env={"COLLECTOR_SPOOL_DIR": str(tmp_path)})
    doc = json.loads(empty.stdout)
    assert empty.returncode == 1 and not doc["ok"]      # nothing recorded yet: stale by the default limits
    assert "stale:btc_option_quotes" in {f["check"] for f in doc["failures"]}

    fill_all(conn, age_s=10)
    ok = cli(dsn, "--json", env={"COLLECTOR_SPOOL_DIR": str(tmp_path)})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["ok"] and doc["failures"] == []
    limits = {r["relation"]: r["max_age_s"] for r in doc["relations"]}
    # the user's plan: tick data 5 minutes; the REST tables their cadence
    assert limits["btc_option_quotes"] == 300 and limits["eth_option_trades"] == 300
    assert limits["funding_rates"] == 9 * 3600 and limits["index_prices"] == 900
    assert set(doc) == {"ok", "failures", "relations", "gaps_24h", "tick_holes", "jobs", "disk", "backup"}

    stale = cli(dsn, env={"COLLECTOR_MAX_AGE": "15m,eth_option_quotes=5s", "COLLECTOR_SPOOL_DIR": str(tmp_path)})
    assert stale.returncode == 1
    assert "FAILED eth_option_quotes: newest row" in stale.stdout and "(limit 5s)" in stale.stdout
    assert "1 check(s) failed" in stale.stdout
    # --max-age replaces the setting
    again = cli(dsn, "--max-age", "1h", env={"COLLECTOR_MAX_AGE": "1s", "COLLECTOR_SPOOL_DIR": str(tmp_path)})
    assert again.returncode == 0, again.stdout


def test_a_tick_hole_longer_than_the_limit_is_found_and_measured(conn):
    now = conn.execute("SELECT date_trunc('minute', now())").fetchone()[0]
    start = now - timedelta(hours=2)
    hole7 = (now - timedelta(minutes=60), now - timedelta(minutes=53))   # 7 minutes without a row
    hole3 = (now - timedelta(minutes=30), now - timedelta(minutes=27))   # 3 minutes: under the 5 min limit
    stamps, t = [], start
    while t < now:
        if not (hole7[0] < t < hole7[1] or hole3[0] < t < hole3[1]):
            stamps.append(t)
        t += timedelta(seconds=30)
    insert(conn, "btc_option_quotes", stamps)
    fill_all(conn, age_s=5)

    rep = health.collect(conn, settings())
    holes = {h["relation"]: h for h in rep.tick_holes}
    btc = holes["btc_option_quotes"]
    assert btc["max_gap_s"] == 300 and btc["holes_over_limit"] == 1
    (hole,) = btc["holes"]
    assert hole["seconds"] == 420 and not hole["ongoing"]
    assert datetime.fromisoformat(hole["start"]) == hole7[0]
    assert btc["largest_hole_s"] == 420
    assert holes["eth_option_quotes"]["holes_over_limit"] == 0     # one row: nothing before it, no hole
    assert [c.name for c in rep.failures] == ["hole:btc_option_quotes"]
    assert "the longest 7m0s" in rep.failures[0].text

    assert health.collect(conn, settings(COLLECTOR_MAX_GAP="10m")).failures == []
    relaxed = health.collect(conn, settings(COLLECTOR_MAX_GAP="5m,btc_*=8m"))
    assert relaxed.failures == []


def test_jobs_show_state_restarts_and_rate_limit_hits(conn):
    fill_all(conn)
    status.upsert_job(conn, "ws:BTC", "running", rows_written=10)
    status.upsert_job(conn, "rest", "failed", errors=3)
    for minutes in (5, 20, 90):   # two restarts in the last hour, one before
        conn.execute("INSERT INTO data_gaps (timestamp, relation, currency, gap_start, gap_end, cause, recoverable) "
                     "VALUES (now() - make_interval(mins => %s), 'btc_option_quotes', 'BTC', now() - interval '1 day', "
                     "now(), 'restart', false)", (minutes,))
    conn.execute("ALTER TABLE collector_status ADD COLUMN IF NOT EXISTS rate_limit_hits_1h bigint")
    conn.execute("UPDATE collector_status SET rate_limit_hits_1h = 7 WHERE job = 'rest'")
    rep = health.collect(conn, settings())
    jobs = {j["job"]: j for j in rep.jobs}
    assert jobs["ws:BTC"]["restarts_1h"] == 2 and jobs["rest"]["restarts_1h"] == 0
    assert jobs["rest"]["rate_limit_hits"] == 7 and jobs["rest"]["rate_limit_column"] == "rate_limit_hits_1h"
    assert [c.name for c in rep.failures] == ["job:rest"]
    text = cli_text(rep)
    assert "rate-limit hits 7" in text and "restarts (1 h) 2" in text


def cli_text(rep) -> str:
    from collector.jobs import dbadmin
    return dbadmin.render(rep)


def test_disk_sizes_growth_and_days_left(conn, engine, tmp_path):
    fill_all(conn)
    s = settings(COLLECTOR_SPOOL_DIR=str(tmp_path / "spool"))
    rep = health.collect(conn, s, record=True)
    fss = {f["what"]: f for f in rep.disk["filesystems"]}
    # the test server is local and we are its superuser: its data directory is known
    assert fss["database"]["used_pct"] is not None and fss["database"]["free_bytes"] > 0
    assert fss["spool"]["used_pct"] is not None      # the spool's nearest existing parent
    sizes = {t["relation"]: t for t in rep.disk["tables"]}
    assert sizes["btc_option_quotes"]["total_bytes"] > 0
    assert sizes["btc_option_quotes"]["hypertable"] == (engine == "timescaledb")
    assert "btc_option_quotes_1h" not in sizes           # a view or an aggregate: not a table of ours
    assert rep.disk["growth"]["bytes_per_day"] is None   # one sample, just now: no history yet
    assert conn.execute("SELECT count(*) FROM size_samples").fetchone()[0] == 1

    # two days ago the database was 2 GiB smaller: 1 GiB a day
    gib = 1024**3
    total = disk.database_bytes(conn)
    conn.execute("INSERT INTO size_samples (timestamp, database_bytes, relations) VALUES "
                 "(now() - interval '2 days', %s, %s)",
                 (total - 2 * gib, json.dumps({"btc_option_quotes": sizes["btc_option_quotes"]["total_bytes"] - gib})))
    rep = health.collect(conn, s)
    grow = rep.disk["growth"]
    assert abs(grow["bytes_per_day"] - gib) < gib * 0.01
    assert abs(grow["relations"]["btc_option_quotes"] - gib / 2) < gib * 0.01
    free = {f["what"]: f for f in rep.disk["filesystems"]}["database"]["free_bytes"]
    assert rep.disk["days_left"] == pytest.approx(free / grow["bytes_per_day"], rel=0.02)
    assert rep.ok

    full = health.collect(conn, settings(COLLECTOR_SPOOL_DIR=str(tmp_path), COLLECTOR_DISK_MAX_USED="1"))
    assert {c.name for c in full.failures} == {"disk:database", "disk:spool"}


def test_compressed_sizes_on_timescaledb_plain_sizes_without(conn, engine):
    old = datetime.now(timezone.utc) - timedelta(days=10)
    insert(conn, "eth_option_quotes", [old + timedelta(seconds=i) for i in range(500)])
    if engine != "timescaledb":
        (t,) = disk.table_sizes(conn, ["eth_option_quotes"])
        assert not t["hypertable"] and t["total_bytes"] > 0
        assert t["compressed_chunks"] is None and t["compressed_bytes"] is None
        return
    conn.execute("SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('eth_option_quotes') c")
    (t,) = disk.table_sizes(conn, ["eth_option_quotes"])
    assert t["hypertable"] and t["compressed_chunks"] == 1 and t["chunks"] >= 1
    assert t["compressed_bytes"] > 0 and t["before_compression_bytes"] > 0


def test_newest_backup_and_its_age(conn, tmp_path):
    fill_all(conn)
    backups = tmp_path / "backups"
    backups.mkdir()
    for name, age in (("collector-20260101.dump", 3 * 86400), ("collector-20260103.dump", 3600)):
        p = backups / name
        p.write_bytes(b"x")
        t = time.time() - age
        os.utime(p, (t, t))
    (backups / "notes.txt").write_text("not a dump")
    rep = health.collect(conn, settings(COLLECTOR_BACKUP_DIR=str(backups)))
    assert rep.backup["newest"] == "collector-20260103.dump" and rep.backup["count"] == 2
    assert 3500 < rep.backup["age_s"] < 3700
    none = health.collect(conn, settings(COLLECTOR_BACKUP_DIR=str(tmp_path / "absent")))
    assert none.backup["newest"] is None and none.ok


def test_an_unreachable_database_is_a_failed_check(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = cli(f"postgresql://nobody@127.0.0.1:{port}/none", "--json")
    assert res.returncode == 1
    doc = json.loads(res.stdout)
    assert [f["check"] for f in doc["failures"]] == ["database"] and "cannot reach" in doc["failures"][0]["text"]


def test_database_directory_unknown_for_a_role_without_the_right(dsn, conn):
    role = f"nopriv_{os.getpid()}"
    conn.execute(f"DROP ROLE IF EXISTS {role}")
    conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        other = dsn.replace("://", f"://{role}@", 1).replace(f"{dsn.split('://')[1].split('@')[0]}@", "", 1)
        with psycopg.connect(other, autocommit=True) as c2:
            path, why = disk.data_directory(c2)
        assert path is None and "pg_read_all_settings" in why
    finally:
        conn.execute(f"DROP ROLE {role}")
