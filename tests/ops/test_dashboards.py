"""The Grafana dashboards (grafana/dashboards/*.json) and their provisioning, without a Grafana.

* Every panel's SQL, expanded as Grafana's PostgreSQL datasource would (tests/ops/grafana.py: template
  variables, then the backend's macros, with the datasource's TimescaleDB switch off and on), runs as
  the read-only role -- given exactly the rights ansible/roles/collector_db/files/database.sql grants
  -- and returns rows, for each currency, on both engines, against a database filled by a real run of
  the jobs against the simulator (tests/ops/filled.py) plus two size samples.
* Each dashboard: valid JSON, schemaVersion set, a unique uid, every panel and query on the
  provisioned datasource (by uid), no numeric id but the panels' own, unique panel ids and refIds.
* The provisioning files the Ansible role writes render to the datasource the dashboards name.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import psycopg
import pytest
import yaml

from collector.store import pgtools
from tests.ops import grafana
from tests.ops.filled import CURRENCIES, filled_clone
from tests.pgtools import drop_database

ROOT = Path(__file__).resolve().parents[2]
BOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
ROLE = ROOT / "ansible" / "roles" / "collector_grafana"
DATABASE_SQL = ROOT / "ansible" / "roles" / "collector_db" / "files" / "database.sql"
DS_UID = "collector-postgres"
DS_TYPE = "grafana-postgresql-datasource"


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _targets() -> list[tuple[str, str, str, str]]:
    """(dashboard file, panel title, refId, rawSql) of every query of every panel."""
    out = []
    for path in BOARDS:
        for p in _load(path)["panels"]:
            for t in p.get("targets", []):
                out.append((path.stem, p["title"], t["refId"], t["rawSql"]))
    return out


TARGETS = _targets()


@pytest.fixture(scope="module")
def board_db(pg, engine, tmp_path_factory):
    """A filled clone with two size samples, and the DSN of a reader role given database.sql's rights."""
    dsn = filled_clone(pg, tmp_path_factory)
    dbname = dsn.rsplit("/", 1)[1]
    reader, writer = f"reader_{pg.port}", f"writer_{pg.port}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        for role in (reader, writer):
            conn.execute(f"DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        # what 0002 sets on the database it migrates (a clone from a template does not inherit it)
        conn.execute(f'ALTER DATABASE {dbname} SET search_path = "$user", public, collector_compat')
        # the history a monitor would have recorded: 2 h ago (10 % smaller) and now
        conn.execute("""
            INSERT INTO size_samples (timestamp, database_bytes, relations)
            SELECT now() - make_interval(hours => h), pg_database_size(current_database()) * f,
                   jsonb_object_agg(c.relname, (pg_total_relation_size(c.oid) * f)::bigint)
            FROM pg_class c, (VALUES (2, 0.9), (0, 1.0)) AS s(h, f)
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
            GROUP BY h, f""")
        major = conn.info.server_version // 10000
        owner = conn.info.user
        tsdb = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()[0] == 1
    psql = pgtools.program("psql", major)
    res = subprocess.run(
        [psql.path, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-v", f"db={dbname}", "-v", f"owner={owner}",
         "-v", f"writer={writer}", "-v", f"reader={reader}", "-v", "writer_update=collector_status,data_gaps",
         "-v", f"timescaledb={'on' if tsdb else 'off'}", "-f", str(DATABASE_SQL)],
        capture_output=True, text=True, env={**os.environ, "PGOPTIONS": ""})
    assert res.returncode == 0, res.stderr
    yield {"dsn": dsn, "reader": dsn.replace(f"//{owner}@", f"//{reader}@", 1), "engine": engine}
    drop_database(pg, dbname)


def _run(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        conn.execute("SET default_transaction_read_only = on")
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("board,title,ref,raw", TARGETS, ids=[f"{b}:{t}:{r}" for b, t, r, _ in TARGETS])
def test_every_query_runs_as_the_reader_and_returns_rows(board_db, board, title, ref, raw):
    dash = _load(ROOT / "grafana" / "dashboards" / f"{board}.json")
    now = datetime.now(timezone.utc)
    start, end = grafana.relative(dash["time"]["from"], now), grafana.relative(dash["time"]["to"], now)
    values = {v["name"]: v["current"]["value"] for v in dash["templating"]["list"]}
    per_currency = "$currency" in raw or "${currency" in raw
    for cur in (CURRENCIES if per_currency else CURRENCIES[:1]):
        if "currency" in values:
            values["currency"] = cur.lower()
        for timescaledb in (False, True):   # the datasource's TimescaleDB switch: either works on either engine
            sql = grafana.expand(raw, values, start, end, timescaledb=timescaledb)
            assert "$" not in sql.replace("$$", "").replace("%1$L", ""), sql   # nothing left unexpanded
            rows = _run(board_db["reader"], sql)
            assert rows, f"{board}/{title}/{ref} ({cur}, timescaledb={timescaledb}) returned no rows:\n{sql}"
            assert any(v is not None for v in rows[0]), (board, title, ref, rows[:3])


def test_the_variable_queries_run_as_the_reader(board_db):
    for path in BOARDS:
        for v in _load(path)["templating"]["list"]:
            if v["type"] == "query":
                rows = _run(board_db["reader"], v["query"])
                assert ("btc", "BTC") in rows and ("eth", "ETH") in rows, (path.name, rows)


def test_the_storage_panels_see_timescaledb_compression(board_db):
    """On TimescaleDB the live size query counts the chunks (compressed ones too), not the empty parent."""
    dash = _load(ROOT / "grafana" / "dashboards" / "storage.json")
    (size,) = [p for p in dash["panels"] if p["title"] == "Size per table (now)"]
    now = datetime.now(timezone.utc)
    sql = grafana.expand(size["targets"][0]["rawSql"], {}, grafana.relative("now-7d", now), now, timescaledb=False)
    sizes = {t: b for t, b, _ in _run(board_db["reader"], sql)}
    with psycopg.connect(board_db["dsn"]) as conn:
        parent = conn.execute("SELECT pg_total_relation_size('btc_option_quotes')").fetchone()[0]
    if board_db["engine"] == "timescaledb":
        assert sizes["btc_option_quotes"] > parent   # the chunks hold the rows
    else:
        assert sizes["btc_option_quotes"] == parent


def test_the_term_structure_reads_expiries_from_the_names(board_db):
    """Deribit's expiry is DMMMYY with a day of one or two digits (BTC-5MAR26-..., BTC-27MAR26-...)."""
    dash = _load(ROOT / "grafana" / "dashboards" / "option-chain.json")
    (term,) = [p for p in dash["panels"] if p["title"] == "ATM IV term structure"]
    now = datetime.now(timezone.utc)
    sql = grafana.expand(term["targets"][0]["rawSql"], {"currency": "btc"}, grafana.relative("now-1h", now), now,
                         timescaledb=False)
    rows = _run(board_db["reader"], sql)
    days = [float(r[1]) for r in rows]
    assert len(rows) >= 2 and days == sorted(days) and 0 < days[0] and days[-1] < 800, rows
    assert all(r[3] is not None and r[3] > 0 for r in rows)   # an ATM IV per expiry
    with psycopg.connect(board_db["dsn"]) as conn:
        assert conn.execute("SELECT to_date('5MAR26', 'DDMONYY'), to_date('27DEC26', 'DDMONYY')").fetchone() == (
            datetime(2026, 3, 5).date(), datetime(2026, 12, 27).date())


# --- structure -----------------------------------------------------------------------------------

def _numeric_ids(node, path="") -> list[str]:
    """Every "id" holding a number, except panels[*].id (and the dashboard's own id, which must be absent)."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            here = f"{path}.{k}"
            if k == "id" and isinstance(v, (int, float)) and not isinstance(v, bool) \
                    and not __import__("re").fullmatch(r"\.panels\[\d+\]\.id", here):
                found.append(here)
            found += _numeric_ids(v, here)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _numeric_ids(v, f"{path}[{i}]")
    return found


def _datasources(node) -> list:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource":
                out.append(v)
            out += _datasources(v)
    elif isinstance(node, list):
        for v in node:
            out += _datasources(v)
    return out


def test_four_dashboards_with_unique_uids_and_titles():
    boards = [_load(p) for p in BOARDS]
    assert {p.stem for p in BOARDS} == {"overview", "storage", "option-chain", "market"}
    assert len({b["uid"] for b in boards}) == 4 and len({b["title"] for b in boards}) == 4
    assert all(len(b["uid"]) <= 40 and b["uid"].startswith("collector-") for b in boards)


@pytest.mark.parametrize("path", BOARDS, ids=[p.stem for p in BOARDS])
def test_dashboard_structure(path):
    d = json.loads(path.read_text())   # valid JSON
    assert isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 36
    assert d.get("id") is None and "gnetId" not in d
    assert _numeric_ids(d) == []
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    assert d["panels"] and all(p.get("targets") for p in d["panels"])
    for ds in _datasources(d):   # panels, queries, variables: the provisioned datasource, by uid
        assert ds == {"type": DS_TYPE, "uid": DS_UID}, (path.name, ds)
    for p in d["panels"]:
        assert p["datasource"] == {"type": DS_TYPE, "uid": DS_UID}
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs))
        assert all(t["rawQuery"] and t["rawSql"].strip() and t["format"] in ("table", "time_series")
                   for t in p["targets"])
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
    uses_currency = any("$currency" in t["rawSql"] or "${currency" in t["rawSql"]
                        for p in d["panels"] for t in p["targets"])
    names = [v["name"] for v in d["templating"]["list"]]
    assert ("currency" in names) == uses_currency


def _render(name: str, **values) -> dict:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["to_json"] = json.dumps
    env.filters["bool"] = lambda v: v in (True, "true", "True", "yes", "1", 1)
    text = env.from_string((ROLE / "templates" / name).read_text()).render(ansible_managed="managed", **values)
    return yaml.safe_load(text)


def test_the_provisioned_datasource_is_the_one_the_dashboards_name():
    base = {"collector_grafana_db_host": "127.0.0.1:5432", "collector_grafana_db_user": "collector_reader",
            "collector_grafana_db_name": "collector", "collector_grafana_db_sslmode": "disable",
            "collector_grafana_timescaledb": True}
    with_pw = _render("collector-datasource.yaml.j2", **base, collector_grafana_db_password="pa$s 'x\"")
    (ds,) = with_pw["datasources"]
    assert ds["uid"] == DS_UID and ds["type"] == DS_TYPE and ds["user"] == "collector_reader"
    assert ds["jsonData"]["database"] == "collector" and ds["jsonData"]["timescaledb"] is True
    assert ds["secureJsonData"]["password"] == "pa$$s 'x\""   # Grafana reads $$ as a literal $
    (peer,) = _render("collector-datasource.yaml.j2", **{**base, "collector_grafana_db_host": "/var/run/postgresql"},
                      collector_grafana_db_password="")["datasources"]
    assert "secureJsonData" not in peer and peer["url"] == "/var/run/postgresql"
    (provider,) = _render("collector-dashboards.yaml.j2", collector_grafana_folder="Deribit collector",
                          collector_grafana_dashboards_dir="/var/lib/grafana/dashboards/x")["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards/x"


def test_the_expansion_matches_grafanas_documented_output():
    t0 = datetime(2018, 4, 12, 18, 0, tzinfo=timezone.utc)
    t1 = datetime(2018, 4, 12, 18, 5, tzinfo=timezone.utc)
    assert grafana.macros("WHERE $__timeFilter(time_column)", t0, t1, timescaledb=False) == \
        "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'"
    assert grafana.macros("GROUP BY $__timeGroup(time_column,'5m')", t0, t1, timescaledb=False) == \
        "GROUP BY floor(extract(epoch from time_column)/300)*300"
    assert grafana.macros("SELECT $__timeGroupAlias(time_column, '5m')", t0, t1, timescaledb=True) == \
        "SELECT time_bucket('300.000s',time_column) AS \"time\""
    assert grafana.macros("SELECT $__timeGroup(time_column,'5m'), x", t0, t1, timescaledb=False) == \
        "SELECT floor(extract(epoch from time_column)/300)*300 AS \"time\", x"   # the pre-5.3 spelling
    assert grafana.macros("$__unixEpochFilter(t)", t0, t1, timescaledb=False) == "t >= 1523556000 AND t <= 1523556300"
    assert grafana.variables("FROM ${currency:raw}_option_quotes WHERE c = upper('$currency') AND ${x:sqlstring}",
                             {"currency": "btc", "x": "it's"}, "1m") == \
        "FROM btc_option_quotes WHERE c = upper('btc') AND 'it''s'"
    with pytest.raises(ValueError, match="unknown macro"):
        grafana.macros("$__nope(x)", t0, t1, timescaledb=False)
