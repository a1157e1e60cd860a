"""Configuration: every bad value stops start-up with exit 2 and one line naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector.config import ConfigError, Settings, parse_duration, parse_size, validate_currency


def test_defaults_are_deribit_mainnet_and_btc_eth():
    s = Settings.load(env={})
    assert s.ws_url == "wss://www.deribit.com/ws/api/v2"
    assert s.rest_url == "https://www.deribit.com/api/v2"
    assert s.currencies == ("BTC", "ETH")
    assert s.top_n("ETH") == 50
    assert s.database_url is None


def test_environment_then_options_win():
    env = {"DATABASE_URL": "postgresql://u@h/db", "COLLECTOR_CURRENCIES": "btc, eth,SOL", "WS_ETH_TOP_N_INSTRUMENTS": "0",
           "DERIBIT_REST_URL": "http://127.0.0.1:9/api/v2/", "COLLECTOR_BATCH_MAX_AGE": "250ms",
           "COLLECTOR_SPOOL_MAX_BYTES": "512MiB", "STATE_DIRECTORY": "/var/lib/collector"}
    s = Settings.load(env=env, currencies="ETH")
    assert s.currencies == ("ETH",)
    assert s.top_n("ETH") == 0 and s.top_n("BTC") == 50
    assert s.rest_url == "http://127.0.0.1:9/api/v2"
    assert s.batch_max_age_s == 0.25
    assert s.spool_max_bytes == 512 * 1024**2
    assert s.spool_dir == Path("/var/lib/collector/spool")
    assert Settings.load(env=env).currencies == ("BTC", "ETH", "SOL")


@pytest.mark.parametrize("var,value", [
    ("COLLECTOR_CURRENCIES", "BTC,E TH"),
    ("COLLECTOR_CURRENCIES", "BTC;DROP TABLE x"),
    ("COLLECTOR_CURRENCIES", "BTC,,ETH"),
    ("DERIBIT_WS_URL", "http://x/ws"),
    ("DERIBIT_REST_URL", "ftp://x"),
    ("DATABASE_URL", "mysql://x"),
    ("WS_ETH_TOP_N_INSTRUMENTS", "-1"),
    ("WS_ETH_TOP_N_INSTRUMENTS", "all"),
    ("COLLECTOR_BATCH_ROWS", "0"),
    ("COLLECTOR_BATCH_MAX_AGE", "soon"),
    ("COLLECTOR_SPOOL_MAX_BYTES", "lots"),
    ("COLLECTOR_SPOOL_MAX_BYTES", "10"),
    ("COLLECTOR_LOG_LEVEL", "LOUD"),
    ("GREEKS_INTERVAL", "5s"),
    ("DEPTH_TOP_N", "0"),
])
def test_bad_values_name_the_variable(var, value):
    with pytest.raises(ConfigError) as err:
        Settings.load(env={var: value})
    assert var in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("var,value", [
    ("COLLECTOR_CURRENCIES", "BTC,E$H"),
    ("DERIBIT_WS_URL", "nope"),
    ("COLLECTOR_BATCH_ROWS", "many"),
    ("WS_BTC_TOP_N_INSTRUMENTS", "x"),
])
def test_cli_exits_2_with_one_line(var, value, tmp_path):
    env = {"PATH": "/usr/bin:/bin", var: value, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}
    p = subprocess.run([sys.executable, "-m", "collector.cli", "db", "status"], env=env, capture_output=True, text=True,
                       cwd=tmp_path, timeout=30)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and var in lines[0] and value in lines[0], p.stderr


def test_missing_database_url_is_a_config_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "collector.cli", "db", "migrate"], env={"PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert p.returncode == 2 and "DATABASE_URL" in p.stderr


def test_password_is_not_echoed():
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"DERIBIT_WS_URL": "https://user:secret@host/ws"})
    assert "secret" not in str(err.value)


def test_parsers():
    assert parse_duration("1h30m") == 5400 and parse_duration("90") == 90 and parse_duration("250ms") == 0.25
    assert parse_size("1GiB") == 1024**3 and parse_size("2MB") == 2_000_000
    assert validate_currency(" sol ") == "SOL"
    for bad in ("1x", "", "h1"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_help_reads_well():
    p = subprocess.run([sys.executable, "-m", "collector.cli", "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    for word in ("db", "sim", "DATABASE_URL"):
        assert word in p.stdout
