"""`collector config`: check (every setting and its source), from-env (their .env -> ours), timers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from collector.config import ConfigError, Settings
from collector.config_tools import (
    EnvFileError, check, env_text, from_env, inventory_text, read_env_file, timer_dropins, write_timers,
)

DATA = Path(__file__).resolve().parent / "data" / "legacy_env"
ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("COLLECTOR_", "WS_", "REST_", "DATABASE_URL"))}
    return subprocess.run([sys.executable, "-m", "collector.cli", *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, cwd=str(ROOT), timeout=60)


def test_env_file_syntax(tmp_path):
    f = tmp_path / "x.env"
    f.write_text("# c\n\nexport A=1\nB = two words # said\nC='x # y'\nD=\"q\"\nE=a#b\n")
    assert read_env_file(f) == {"A": "1", "B": "two words", "C": "x # y", "D": "q", "E": "a#b"}
    f.write_text("A=1\nthis is not a line\n")
    with pytest.raises(EnvFileError) as err:
        read_env_file(f)
    assert f"{f}:2" in str(err.value) and "\n" not in str(err.value)


def test_the_plans_env_becomes_ours():
    conv = from_env(read_env_file(DATA / "plan.env"))
    assert conv.env == {
        "COLLECTOR_LOG_LEVEL": "INFO", "REST_PERPETUAL_INTERVAL": "1m", "REST_FUTURES_INTERVAL": "1m",
        "REST_OPTIONS_OHLCV_INTERVAL": "1m", "GREEKS_INTERVAL": "1h", "FUNDING_INTERVAL": "8h",
        "COLLECTOR_CURRENCIES": "BTC,ETH", "WS_BTC_TOP_N_INSTRUMENTS": "50", "WS_ETH_TOP_N_INSTRUMENTS": "50"}
    # the compose database is theirs, not ours: named for the import, never carried as our DATABASE_URL
    assert conv.legacy_database_url.endswith("@timescaledb:5432/crypto_data")
    assert "DATABASE_URL" not in conv.env and "collector_database_url" not in conv.inventory
    assert conv.inventory["collector_currencies"] == ["BTC", "ETH"]
    assert conv.inventory["collector_ws_top_n"] == {"BTC": 50, "ETH": 50}
    assert conv.inventory["collector_env"]["GREEKS_INTERVAL"] == "1h"
    text = env_text(conv)
    assert "not-the-real-one" not in text and "#" not in "".join(x for x in text.splitlines() if not x.startswith("#"))
    # what it writes is what we read back, to the same settings
    ours = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    s = Settings.load(env=ours)
    assert (s.greeks_interval_s, s.funding_interval_s, s.top_n("ETH"), s.log_level) == (3600.0, 28800.0, 50, "INFO")
    import yaml
    assert yaml.safe_load(inventory_text(conv)) == conv.inventory


def test_from_env_says_what_it_leaves_out_and_takes_a_currency():
    conv = from_env({"CURRENCY": "SOL", "TOP_N_INSTRUMENTS": "30", "POSTGRES_PASSWORD": "x", "SOMETHING": "1"})
    assert conv.env["COLLECTOR_CURRENCIES"] == "BTC,ETH,SOL" and conv.env["WS_TOP_N_INSTRUMENTS"] == "30"
    said = "\n".join(conv.notes)
    assert "POSTGRES_PASSWORD is not carried over" in said and "SOMETHING is not carried over" in said
    assert "TOP_N_INSTRUMENTS -> WS_TOP_N_INSTRUMENTS" in said


def test_from_env_refuses_a_bad_value_by_its_name():
    with pytest.raises(ConfigError) as err:
        from_env({"REST_PERPETUAL_INTERVAL": "90"})
    assert err.value.name == "REST_PERPETUAL_INTERVAL"


def test_check_names_each_source_and_hides_the_password():
    env = {"LOG_LEVEL": "DEBUG", "GREEKS_INTERVAL": "2h", "DATABASE_URL": "postgresql://u:pw@timescaledb/crypto_data",
           "CURRENCY": "ETH"}
    lines, notes = check(env, {"depth_top_n": 7})
    by = {x.variable: x for x in lines}
    assert by["COLLECTOR_LOG_LEVEL"].value == "DEBUG" and "LOG_LEVEL (the Docker setup's name" in by["COLLECTOR_LOG_LEVEL"].source
    assert (by["GREEKS_INTERVAL"].value, by["GREEKS_INTERVAL"].source) == ("2h", "env GREEKS_INTERVAL")
    assert (by["DEPTH_TOP_N"].value, by["DEPTH_TOP_N"].source) == ("7", "option --top-n")
    assert by["REST_TIMEOUT"].source == "default"
    assert by["WS_ETH_TOP_N_INSTRUMENTS"].source == "as WS_TOP_N_INSTRUMENTS"
    assert "pw" not in by["DATABASE_URL"].value and "***" in by["DATABASE_URL"].value
    assert any("compose service name" in n for n in notes) and any(n.startswith("CURRENCY is not used") for n in notes)


def test_cli_config_check_and_a_bad_value(tmp_path):
    f = tmp_path / "collector.env"
    f.write_text("FUNDING_INTERVAL=4h\nLOG_LEVEL=WARNING\n")
    res = cli("config", "check", "--env-file", str(f))
    assert res.returncode == 0, res.stderr
    assert any(x.split()[:3] == ["FUNDING_INTERVAL", "4h", "env"] for x in res.stdout.splitlines()), res.stdout
    f.write_text("FUNDING_INTERVAL=7h\n")
    res = cli("config", "check", "--env-file", str(f))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("collector: error: invalid FUNDING_INTERVAL='7h'")
    res = cli("config", "check", env={"REST_GREEKS_INTERVAL": "soon"})
    assert res.returncode == 2 and "REST_GREEKS_INTERVAL" in res.stderr and res.stderr.count("\n") == 1


def test_cli_from_env_writes_both_files(tmp_path):
    res = cli("config", "from-env", str(DATA / "plan.env"), "--env-out", str(tmp_path / "c.env"),
              "--inventory-out", str(tmp_path / "inv.yml"))
    assert res.returncode == 0, res.stderr
    assert "GREEKS_INTERVAL=1h\n" in (tmp_path / "c.env").read_text()
    assert "collector_ws_top_n:" in (tmp_path / "inv.yml").read_text()
    assert "REST_GREEKS_INTERVAL -> GREEKS_INTERVAL" in res.stderr and "not-the-real-one" not in res.stderr + res.stdout


def test_timers_are_written_once(tmp_path):
    env = {"REST_OPTIONS_OHLCV_INTERVAL": "5m", "REST_PERPETUAL_INTERVAL": "10m", "REST_FUTURES_INTERVAL": "10m"}
    s = Settings.load(env=env)
    assert "OnCalendar=*-*-* *:00/5:00 UTC" in timer_dropins(s)["rest-collector.timer.d/50-collector-cadence.conf"]
    first = write_timers(s, tmp_path)
    assert len(first) == 3 and write_timers(s, tmp_path) == []
    res = cli("config", "timers", "--dir", str(tmp_path), env={**env, "GREEKS_INTERVAL": "6h"})
    assert res.returncode == 0 and res.stdout.strip() == f"changed {tmp_path}/greeks.timer.d/50-collector-cadence.conf"
