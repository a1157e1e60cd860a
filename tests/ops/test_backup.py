"""`collector db backup` / `collector db restore` on both engines, with a database filled by a real run.

Back up a filled database (on TimescaleDB: every chunk compressed and the continuous aggregate
materialized first), restore it into a new, empty database: every relation's row count and a
checksum of its content are equal, TimescaleDB's hypertables, compression and policies came along,
and the restored database is one `collector db migrate` finds up to date. The size and the times are
printed (``-s`` shows them). Also: the newest N are kept, a non-empty database is refused unchanged,
a failed backup leaves nothing behind, the password never reaches argv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from collector.jobs import backup
from collector.store import pgtools
from tests.ops.filled import filled_clone
from tests.pgtools import create_database, drop_database, dsn_of

COLLECTOR = str(Path(sys.executable).parent / "collector")

RELATIONS = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1
"""
TSDB_SHAPE = [
    "SELECT hypertable_name, num_dimensions, compression_enabled FROM timescaledb_information.hypertables ORDER BY 1",
    "SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index "
    "FROM timescaledb_information.compression_settings ORDER BY 1, 2",
    "SELECT hypertable_name, count(*), count(*) FILTER (WHERE is_compressed) "
    "FROM timescaledb_information.chunks GROUP BY 1 ORDER BY 1",
    "SELECT proc_name, hypertable_name, config::text FROM timescaledb_information.jobs "
    "WHERE hypertable_name IS NOT NULL ORDER BY 1, 2",
    "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates ORDER BY 1",
]


def content(dsn: str) -> dict[str, tuple[int, str]]:
    """Per relation of ours: (rows, md5 of every row's text in order)."""
    out = {}
    with psycopg.connect(dsn) as conn:
        for (rel,) in conn.execute(RELATIONS).fetchall():
            q = sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                        "FROM {} t").format(sql.Identifier(rel))
            out[rel] = tuple(conn.execute(q).fetchone())
    return out


def tsdb_shape(dsn: str) -> list[list[tuple]]:
    with psycopg.connect(dsn) as conn:
        return [conn.execute(q).fetchall() for q in TSDB_SHAPE]


def collector(*args: str, dsn: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLLECTOR_", "DATABASE_URL", "PG"))}
    env["DATABASE_URL"] = dsn
    return subprocess.run([COLLECTOR, *args], env=env, capture_output=True, text=True, timeout=600)


def events(stderr: str) -> dict[str, dict]:
    return {e["event"]: e for e in (json.loads(ln) for ln in stderr.splitlines() if ln.startswith("{"))}


@pytest.fixture
def filled(pg, tmp_path_factory):
    dsn = filled_clone(pg, tmp_path_factory)
    yield dsn
    drop_database(pg, dsn.rsplit("/", 1)[1])


@pytest.fixture
def empty(pg):
    name = create_database(pg)
    yield dsn_of(pg, name)
    drop_database(pg, name)


def test_a_filled_database_comes_back_whole(filled, empty, engine, tmp_path):
    if engine == "timescaledb":   # the real shape of an old database: compressed chunks, a materialized aggregate
        with psycopg.connect(filled, autocommit=True) as conn:
            n = conn.execute("SELECT count(compress_chunk(c, if_not_compressed => true)) FROM "
                             "timescaledb_information.hypertables h, show_chunks(format('%I', h.hypertable_name)) c "
                             "WHERE h.compression_enabled AND h.hypertable_schema = 'public'").fetchone()[0]
            assert n >= 10
            for cur in ("btc", "eth"):
                conn.execute(f"CALL refresh_continuous_aggregate('{cur}_option_quotes_1h', NULL, NULL)")
    before = content(filled)
    assert before["btc_option_quotes"][0] > 0 and before["eth_option_trades"][0] > 0 and before["data_gaps"][0] > 0
    assert before["schema_migrations"][0] >= 4

    made = collector("db", "backup", "--dir", str(tmp_path / "b"), dsn=filled)
    assert made.returncode == 0, made.stderr
    done = events(made.stderr)["backup_done"]
    (dump,) = (tmp_path / "b").iterdir()
    assert dump.name.startswith(f"collector-{filled.rsplit('/', 1)[1]}-") and dump.suffix == ".dump"
    assert done["file"] == str(dump) and done["bytes"] == dump.stat().st_size
    assert (done["timescaledb"] is not None) == (engine == "timescaledb")
    assert "backup_pg_dump_said" not in events(made.stderr)   # TimescaleDB's expected warnings are counted only
    assert dump.stat().st_mode & 0o077 == 0

    restored = collector("db", "restore", str(dump), dsn=empty)
    assert restored.returncode == 0, restored.stderr
    back = events(restored.stderr)["restore_done"]
    assert back["timescaledb"] == (engine == "timescaledb")
    rows = sum(r for r, _ in before.values())
    print(f"\n[{engine}] backup of {len(before)} relations, {rows:,} rows: {done['bytes'] / 1e6:.2f} MB in "
          f"{done['seconds']:.2f} s; restore {back['seconds']:.2f} s + ANALYZE {back['analyze_seconds']:.2f} s")

    assert content(empty) == before
    if engine == "timescaledb":
        assert tsdb_shape(empty) == tsdb_shape(filled)
        with psycopg.connect(empty) as conn:   # post_restore ran: not left in restoring mode
            assert conn.execute("SHOW timescaledb.restoring").fetchone()[0] == "off"
    with psycopg.connect(empty) as conn:   # the database-level search_path (time_bucket without TimescaleDB)
        conn.execute("SELECT time_bucket(INTERVAL '1 hour', now())")
    migrate = collector("db", "migrate", dsn=empty)
    assert migrate.returncode == 0 and "database is up to date" in migrate.stdout, migrate.stdout + migrate.stderr


def test_restore_refuses_a_database_that_is_not_empty(dsn, tmp_path):
    made = collector("db", "backup", "--dir", str(tmp_path), dsn=dsn)
    assert made.returncode == 0, made.stderr
    (dump,) = tmp_path.iterdir()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO index_prices VALUES (now(), 'btc_usd', 1.0, NULL)")
        before = content(dsn)
    res = collector("db", "restore", str(dump), dsn=dsn)
    assert res.returncode == 1
    assert "is not empty" in res.stderr and "nothing was changed" in res.stderr
    assert content(dsn) == before


def test_the_owner_role_restores_plain_postgresql_and_timescaledb_takes_a_superuser(pg, dsn, engine, tmp_path):
    """The way a deploy has it: a database owned by a login role that is no superuser (the extension,
    if any, created by the superuser as the Ansible role does)."""
    owner = f"owner_{os.getpid()}"
    name = f"owned_{os.getpid()}_{engine}"
    with psycopg.connect(dsn_of(pg, "postgres"), autocommit=True) as conn:
        conn.execute(f"DO $$ BEGIN CREATE ROLE {owner} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        conn.execute(f"CREATE DATABASE {name} OWNER {owner} TEMPLATE template0")
    try:
        if engine == "timescaledb":
            with psycopg.connect(dsn_of(pg, name), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION timescaledb")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO index_prices VALUES (now(), 'btc_usd', 1.5, NULL)")
        dump = backup.make_backup(dsn, tmp_path, keep=1).path
        res = collector("db", "restore", str(dump), dsn=f"postgresql://{owner}@{pg.host}:{pg.port}/{name}")
        if engine == "timescaledb":
            assert res.returncode == 1 and "takes a superuser" in res.stderr and "nothing was changed" in res.stderr
            with psycopg.connect(dsn_of(pg, name)) as conn:
                assert pgtools.user_objects(conn) == []
                assert conn.execute("SHOW timescaledb.restoring").fetchone()[0] == "off"
        else:
            assert res.returncode == 0, res.stderr
            assert content(dsn_of(pg, name)) == content(dsn)
            with psycopg.connect(dsn_of(pg, name)) as conn:   # everything is the owner's now
                assert conn.execute("SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class "
                                    "WHERE relnamespace = 'public'::regnamespace").fetchall() == [(owner,)]
    finally:
        drop_database(pg, name)


def test_an_empty_database_with_the_extension_already_created_is_empty(empty, engine):
    with psycopg.connect(empty, autocommit=True) as conn:
        if engine == "timescaledb":
            conn.execute("CREATE EXTENSION timescaledb")   # what the Ansible role does before the migrations
        assert pgtools.user_objects(conn) == []
        conn.execute("CREATE SCHEMA mine")
        assert pgtools.user_objects(conn) == ["schema mine"]


def test_the_newest_n_are_kept_and_other_databases_are_left_alone(dsn, tmp_path):
    other = tmp_path / "collector-otherdb-20200101T000000Z.dump"
    other.write_bytes(b"not ours")
    t0 = datetime(2026, 3, 1, 3, 17, tzinfo=timezone.utc)
    made = [backup.make_backup(dsn, tmp_path, keep=2, now=t0 + timedelta(days=i)) for i in range(4)]
    dbname = dsn.rsplit("/", 1)[1]
    assert [p.name for _, p in backup.backups(tmp_path, dbname)] == [made[2].path.name, made[3].path.name]
    assert made[2].pruned == (made[0].path,) and made[3].pruned == (made[1].path,)
    assert other.exists() and not list(tmp_path.glob("*.partial"))
    assert backup.newest_backup(tmp_path, dbname) == (t0 + timedelta(days=3), made[3].path)
    assert made[3].path.name == f"collector-{dbname}-20260304T031700Z.dump"


def test_a_failed_backup_leaves_nothing(pg, tmp_path):
    res = collector("db", "backup", "--dir", str(tmp_path / "b"), dsn=dsn_of(pg, "no_such_database"))
    assert res.returncode == 1
    assert not (tmp_path / "b").exists() or not list((tmp_path / "b").iterdir())


def test_the_password_goes_to_the_environment_not_argv(dsn, tmp_path):
    with_pw = dsn.replace("://", "://", 1).replace("@", ":s3cret-pw@", 1)
    target, env = pgtools.child_connection(with_pw, env={})
    assert "s3cret-pw" not in target and env == {"PGPASSWORD": "s3cret-pw"}
    assert "s3cret-pw" not in pgtools.redacted(with_pw)
    # a pg_dump in PG_BINDIR that writes down its argv and PGPASSWORD, then is the real one
    with psycopg.connect(dsn) as conn:
        real = pgtools.program("pg_dump", conn.info.server_version // 10000).path
    spy = tmp_path / "bin"
    spy.mkdir()
    (spy / "pg_dump").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {tmp_path}/argv\n'
                                 f'printf "%s" "${{PGPASSWORD:-}}" > {tmp_path}/pgpassword\nexec {real} "$@"\n')
    (spy / "pg_dump").chmod(0o755)
    # the test server trusts loopback: the dump works with the password handed over that way
    made = backup.make_backup(with_pw, tmp_path / "dumps", keep=1, bindir=spy)
    assert made.bytes > 0
    argv = (tmp_path / "argv").read_text()
    assert "--format=custom" in argv and "s3cret-pw" not in argv
    assert (tmp_path / "pgpassword").read_text() == "s3cret-pw"


PG_DUMP_ON_TIMESCALEDB = """\
pg_dump: warning: there are circular foreign-key constraints on this table:
pg_dump: detail: continuous_agg
pg_dump: hint: You might not be able to restore the dump without using --disable-triggers or temporarily dropping the constraints.
pg_dump: hint: Consider using a full dump instead of a --data-only dump to avoid this problem.
"""   # what pg_dump 15 says about a migrated TimescaleDB 2.28 database of ours


def test_timescaledbs_own_circular_keys_are_expected_anything_else_is_reported():
    catalog = {"continuous_agg", "hypertable", "chunk"}
    assert backup.split_warnings(PG_DUMP_ON_TIMESCALEDB, catalog) == (1, [])
    mine = PG_DUMP_ON_TIMESCALEDB.replace("detail: continuous_agg", "detail: my_table")
    assert backup.split_warnings(mine, catalog) == (0, [ln for ln in mine.splitlines()])
    other = "pg_dump: warning: something else\n" + PG_DUMP_ON_TIMESCALEDB
    assert backup.split_warnings(other, catalog) == (1, ["pg_dump: warning: something else"])


def test_pg_dump_of_the_servers_major_version(dsn):
    with psycopg.connect(dsn) as conn:
        major = conn.info.server_version // 10000
    assert pgtools.program("pg_dump", major).major == major
    assert pgtools.program("pg_restore", major - 1).major >= major - 1   # a newer one reads an older server
    with pytest.raises(pgtools.ToolMissing, match="postgresql-client-99"):
        pgtools.program("pg_dump", 99)
