"""Configuration: every bad value stops start-up with exit 2 and one line naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector.config import (
    TABLE, ConfigError, Settings, SystemdEnv, parse_duration, parse_size, setting_from, validate_currency,
)
from collector.config_table import markdown

ROOT = Path(__file__).resolve().parents[1]


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


# -- the table: every setting has a default, takes a good value and refuses a bad one by name -----------

# variable -> (a good raw value, what Settings holds for it)
GOOD = {
    "DATABASE_URL": ("postgresql://u@h:5/db", "postgresql://u@h:5/db"),
    "DERIBIT_WS_URL": ("ws://127.0.0.1:9/ws/api/v2", "ws://127.0.0.1:9/ws/api/v2"),
    "DERIBIT_REST_URL": ("http://127.0.0.1:9/api/v2/", "http://127.0.0.1:9/api/v2"),
    "COLLECTOR_CURRENCIES": ("sol,BTC,sol", ("SOL", "BTC")),
    "COLLECTOR_LOG_LEVEL": ("debug", "DEBUG"),
    "COLLECTOR_SPOOL_DIR": ("/var/tmp/s", Path("/var/tmp/s")),
    "COLLECTOR_SPOOL_MAX_BYTES": ("3GiB", 3 * 1024**3),
    "COLLECTOR_BATCH_ROWS": ("100", 100),
    "COLLECTOR_BATCH_MAX_AGE": ("250ms", 0.25),
    "COLLECTOR_QUEUE_MAX_ROWS": ("1000", 1000),
    "WS_TOP_N_INSTRUMENTS": ("0", 0),
    "WS_HEARTBEAT": ("30s", 30),
    "WS_PROGRESS_WINDOW": ("2m", 120.0),
    "WS_RECONCILE_EVERY": ("1m", 60.0),
    "WS_TRADES_RECONCILE_EVERY": ("2m", 120.0),
    "COLLECTOR_RUNTIME_DIR": ("/run/x", Path("/run/x")),
    "DERIBIT_SHARED_BUDGET": ("no", False),
    "WS_RERANK_EVERY": ("1h", 3600.0),
    "WS_STATUS_EVERY": ("500ms", 0.5),
    "WS_BOOK_SNAPSHOT_EVERY": ("10s", 10.0),
    "WS_PERPETUAL_BOOK": ("no", False),
    "WS_BACKFILL_HORIZON": ("6h", 21600.0),
    "WS_STARTUP_REPLAY": ("0", 0.0),
    "WS_BACKOFF_INITIAL": ("100ms", 0.1),
    "WS_BACKOFF_MAX": ("2m", 120.0),
    "WS_STOP_TIMEOUT": ("3s", 3.0),
    "DEPTH_TOP_N": ("5", 5),
    "DEPTH_OPTIONS_TOP_N": ("30", 30),
    "OHLCV_CATCHUP_HORIZON": ("1d", 86400.0),
    "FUNDING_CATCHUP_HORIZON": ("90d", 90 * 86400.0),
    "GREEKS_INTERVAL": ("15m", 900.0),
    "REST_PERPETUAL_INTERVAL": ("300", 300.0),
    "REST_FUTURES_INTERVAL": ("2m", 120.0),
    "REST_OPTIONS_OHLCV_INTERVAL": ("1h", 3600.0),
    "FUNDING_INTERVAL": ("28800", 28800.0),
    "REST_TIMEOUT": ("2.5", 2.5),
    "COLLECTOR_MAX_AGE": ("10m, *_quotes=1m", (("", 600.0), ("*_quotes", 60.0))),
    "COLLECTOR_MAX_GAP": ("eth_option_trades=30m,5m", (("eth_option_trades", 1800.0), ("", 300.0))),
    "COLLECTOR_DISK_MAX_USED": ("90", 90),
    "COLLECTOR_MONITOR_EVERY": ("1m", 60.0),
    "COLLECTOR_ALERT_WEBHOOK": ("https://ntfy.sh/my-topic", "https://ntfy.sh/my-topic"),
    "COLLECTOR_ALERT_FORMAT": ("Slack", "slack"),
    "COLLECTOR_ALERT_TELEGRAM_CHAT": ("-100123", "-100123"),
    "COLLECTOR_ALERT_EMAIL": ("ops@example.org", "ops@example.org"),
    "COLLECTOR_ALERT_REPEAT_SECONDS": ("3600", 3600.0),
    "COLLECTOR_ALERT_STATE_DIR": ("/var/lib/x", Path("/var/lib/x")),
    "COLLECTOR_BACKUP_DIR": ("/srv/backups", Path("/srv/backups")),
    "COLLECTOR_BACKUP_KEEP": ("14", 14),
    "COLLECTOR_BACKUP_DATABASE_URL": ("postgresql:///c?user=collector_owner", "postgresql:///c?user=collector_owner"),
    "PG_BINDIR": ("/usr/lib/postgresql/16/bin", Path("/usr/lib/postgresql/16/bin")),
}
# variable -> a bad raw value
BAD = {
    "DATABASE_URL": "mysql://x", "DERIBIT_WS_URL": "https://x/ws", "DERIBIT_REST_URL": "wss://x",
    "COLLECTOR_CURRENCIES": "BTC,ET-H", "COLLECTOR_LOG_LEVEL": "TRACE", "COLLECTOR_SPOOL_DIR": " ",
    "COLLECTOR_SPOOL_MAX_BYTES": "1KiB", "COLLECTOR_BATCH_ROWS": "2000000", "COLLECTOR_BATCH_MAX_AGE": "0",
    "COLLECTOR_QUEUE_MAX_ROWS": "-5", "WS_TOP_N_INSTRUMENTS": "-1", "WS_HEARTBEAT": "5s",
    "WS_PROGRESS_WINDOW": "a while", "WS_RECONCILE_EVERY": "100ms", "WS_TRADES_RECONCILE_EVERY": "10ms",
    "COLLECTOR_RUNTIME_DIR": "\x00", "DERIBIT_SHARED_BUDGET": "maybe", "WS_RERANK_EVERY": "0",
    "WS_STATUS_EVERY": "1ms", "WS_BOOK_SNAPSHOT_EVERY": "x", "WS_PERPETUAL_BOOK": "maybe",
    "WS_BACKFILL_HORIZON": "-1h", "WS_STARTUP_REPLAY": "soon", "WS_BACKOFF_INITIAL": "1ms",
    "WS_BACKOFF_MAX": "0", "WS_STOP_TIMEOUT": "forever", "DEPTH_TOP_N": "10001", "DEPTH_OPTIONS_TOP_N": "x",
    "OHLCV_CATCHUP_HORIZON": "30s", "FUNDING_CATCHUP_HORIZON": "1", "GREEKS_INTERVAL": "59s",
    "REST_PERPETUAL_INTERVAL": "90", "REST_FUTURES_INTERVAL": "7m", "REST_OPTIONS_OHLCV_INTERVAL": "5h",
    "FUNDING_INTERVAL": "30s",
    "COLLECTOR_MAX_AGE": "quotes=soon", "COLLECTOR_MAX_GAP": "Bad Name=5m", "COLLECTOR_DISK_MAX_USED": "101",
    "COLLECTOR_MONITOR_EVERY": "1s", "COLLECTOR_ALERT_WEBHOOK": "ftp://x/bot1:SECRET",
    "COLLECTOR_ALERT_FORMAT": "pagerduty", "COLLECTOR_ALERT_TELEGRAM_CHAT": "a\nb", "COLLECTOR_ALERT_EMAIL": "a\x00b",
    "COLLECTOR_ALERT_REPEAT_SECONDS": "-1", "COLLECTOR_ALERT_STATE_DIR": "\x00",
    "REST_TIMEOUT": "0", "PG_BINDIR": "\x00",
    "COLLECTOR_BACKUP_DIR": "\x00", "COLLECTOR_BACKUP_KEEP": "0", "COLLECTOR_BACKUP_DATABASE_URL": "mysql://x",
}
ROWS = {row.env: row for row in TABLE}


def test_every_setting_has_a_good_and_a_bad_example():
    assert set(GOOD) == set(ROWS) == set(BAD)


def test_a_bad_webhook_url_is_not_shown():
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"COLLECTOR_ALERT_WEBHOOK": BAD["COLLECTOR_ALERT_WEBHOOK"]})
    assert "SECRET" not in str(err.value) and "COLLECTOR_ALERT_WEBHOOK" in str(err.value)


@pytest.mark.parametrize("var", sorted(ROWS))
def test_default(var):
    row = ROWS[var]
    assert getattr(Settings.load(env={}), row.name) == row.default
    assert setting_from({}, row.name) == row.default


@pytest.mark.parametrize("var", sorted(ROWS))
def test_good_value(var):
    raw, expected = GOOD[var]
    s = Settings.load(env={var: raw})
    assert getattr(s, ROWS[var].name) == expected
    assert setting_from({var: raw}, ROWS[var].name) == expected


@pytest.mark.parametrize("var", sorted(ROWS))
def test_bad_value_names_the_variable_and_what_is_allowed(var):
    with pytest.raises(ConfigError) as err:
        Settings.load(env={var: BAD[var]})
    msg = str(err.value)
    assert err.value.name == var and var in msg and "\n" not in msg
    assert err.value.allowed and msg.endswith(err.value.allowed)


def test_an_option_wins_and_a_bad_one_is_named_by_its_flag():
    assert Settings.load(env={"DEPTH_TOP_N": "7"}, depth_top_n=9).depth_top_n == 9
    with pytest.raises(ConfigError) as err:
        Settings.load(env={}, depth_top_n=0)
    assert err.value.name == "--top-n"
    with pytest.raises(TypeError):
        Settings.load(env={}, depth_top=3)   # not a setting: a programming error, not a user's


def test_per_currency_top_n():
    env = {"COLLECTOR_CURRENCIES": "BTC,SOL", "WS_TOP_N_INSTRUMENTS": "10", "WS_SOL_TOP_N_INSTRUMENTS": "0",
           "WS_XRP_TOP_N_INSTRUMENTS": "junk"}   # not a configured currency: not read
    s = Settings.load(env=env)
    assert s.top_n("SOL") == 0 and s.top_n("BTC") == 10
    assert Settings.load(env=env, ws_top_n={"sol": 3}).top_n("SOL") == 3
    with pytest.raises(ConfigError) as err:
        Settings.load(env={**env, "WS_SOL_TOP_N_INSTRUMENTS": "-2"})
    assert err.value.name == "WS_SOL_TOP_N_INSTRUMENTS"


def test_ws_options_are_the_stream_knobs():
    from collector.jobs.ws import WsOptions

    assert WsOptions(**Settings.load(env={}).ws_options()) == WsOptions()   # the table's defaults are the stream's
    env = {var: GOOD[var][0] for var in ROWS if var.startswith("WS_") and ROWS[var].group == "ws"}
    opts = WsOptions(**Settings.load(env=env).ws_options())
    for var in env:
        assert getattr(opts, ROWS[var].name.removeprefix("ws_")) == GOOD[var][1], var


def test_backoff_max_below_initial_is_refused():
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"WS_BACKOFF_INITIAL": "10s", "WS_BACKOFF_MAX": "5s"})
    assert err.value.name == "WS_BACKOFF_MAX" and "WS_BACKOFF_INITIAL" in str(err.value)
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"WS_BACKOFF_INITIAL": "2m"})       # above the default maximum (1m)
    assert err.value.name == "WS_BACKOFF_INITIAL" and "WS_BACKOFF_MAX (1m)" in str(err.value)


def test_systemd_environment_is_read_here_and_never_an_error():
    s = Settings.load(env={"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "12",
                           "STATE_DIRECTORY": "/var/lib/a:/var/lib/b"})
    assert s.systemd == SystemdEnv("@x", 3_000_000, "12", "/var/lib/a")
    assert s.spool_dir == Path("/var/lib/a/spool")
    for usec in ("", "0", "-1", "1e6", "soon"):
        assert SystemdEnv.load({"WATCHDOG_USEC": usec}).watchdog_usec is None


def test_cli_offers_the_table_options_where_it_says():
    from collector.cli import main

    for row in TABLE:
        for command in row.commands:
            cmd = main if command == "" else main.commands[command]
            params = {p.name: p for p in cmd.params}
            assert row.name in params and row.option in params[row.name].opts, (row.env, command)
    assert [o for p in main.commands["depth"].params for o in p.opts] == [
        "--rest-url", "--top-n", "--options-top-n"]
    assert [o for p in main.commands["ws"].params for o in p.opts] == [
        "--currency", "--ws-url", "--rest-url", "--top-n", "--archive"]


def test_readme_table_is_the_generated_one():
    section = (ROOT / "README.md").read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    assert table == markdown(TABLE), "regenerate it: python -m collector.config --markdown"


def test_markdown_command_prints_the_table():
    p = subprocess.run([sys.executable, "-m", "collector.config", "--markdown"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and p.stdout == markdown(TABLE) + "\n"


def test_only_config_reads_the_environment():
    readers = [f"{path.relative_to(ROOT)}:{n}" for path in (ROOT / "collector").rglob("*.py")
               if path.name != "config.py" or path.parent.name != "collector"
               for n, line in enumerate(path.read_text().splitlines(), 1)
               if "os.environ" in line or "getenv" in line]
    assert readers == []


@pytest.mark.parametrize("args,name", [
    (["--log-level", "LOUD", "db", "status"], "--log-level"),
    (["depth", "--top-n", "0"], "--top-n"),
    (["ws", "--currency", "BTC", "--top-n", "-1"], "--top-n"),
    (["run-all", "--ws-url", "http://x"], "--ws-url"),
])
def test_a_bad_option_exits_2_naming_it(args, name, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}
    p = subprocess.run([sys.executable, "-m", "collector.cli", *args], env=env, capture_output=True, text=True,
                       cwd=tmp_path, timeout=30)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and f"invalid {name}=" in lines[0], p.stderr


@pytest.mark.parametrize("alias,raw,name,expected", [
    ("LOG_LEVEL", "DEBUG", "log_level", "DEBUG"),
    ("TOP_N_INSTRUMENTS", "30", "ws_top_n_default", 30),
    ("REST_GREEKS_INTERVAL", "7200", "greeks_interval_s", 7200.0),
])
def test_the_docker_setups_names_are_read_and_ours_win(alias, raw, name, expected):
    """Their .env's names work as they are; when both are set, ours (the README's) wins."""
    row = next(r for r in TABLE if r.name == name)
    assert alias in row.aliases
    assert getattr(Settings.load(env={alias: raw}), name) == expected
    assert setting_from({alias: raw}, name) == expected
    ours = GOOD[row.env][0]
    assert getattr(Settings.load(env={alias: raw, row.env: ours}), name) == GOOD[row.env][1]
    with pytest.raises(ConfigError) as err:
        Settings.load(env={alias: BAD[row.env]})
    assert err.value.name == alias


def test_a_compose_style_database_url_is_accepted():
    url = "postgresql://postgres:secret@timescaledb:5432/crypto_data"
    assert Settings.load(env={"DATABASE_URL": url}).database_url == url
