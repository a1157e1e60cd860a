"""Alerts: a local HTTP receiver (loopback) gets exactly the expected messages — one per failure,
repeats suppressed, "resolved" after a pass — in each format's JSON shape; mail through a stand-in
`sendmail` on PATH (the host's program boundary); the webhook's token never in a log line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from collector.config import Settings
from collector.ops import alert
from collector.ops.health import Check
from collector.store import status
from tests.ops.fill import insert


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every POST (path and JSON body) and answers ``code``."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict]] = []
        self.code = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.got.append((self.path, json.loads(body)))
                self.send_response(outer.code)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.load({"COLLECTOR_ALERT_STATE_DIR": str(tmp_path / "state"), **env})


STALE = Check("stale:btc_option_quotes", "btc_option_quotes: newest row 20m old (limit 5m)")
HOLE = Check("hole:eth_option_trades", "eth_option_trades: 1 hole(s) over 5m")


@pytest.mark.parametrize("fmt", ["json", "ntfy", "slack", "telegram"])
def test_each_format_has_its_json_shape(receiver, tmp_path, fmt):
    url = receiver.url + ("/collector-alerts" if fmt == "ntfy" else "/bot123:TOKEN/sendMessage" if fmt == "telegram"
                          else "/hook")
    s = settings(tmp_path, COLLECTOR_ALERT_WEBHOOK=url, COLLECTOR_ALERT_FORMAT=fmt,
                 COLLECTOR_ALERT_TELEGRAM_CHAT="-100123")
    assert alert.notify(s, "collector-monitor.service", [STALE], status=["Active: failed"], journal=["boom"])
    assert len(receiver.got) == 1
    path, body = receiver.got[0]
    if fmt == "json":
        assert path == "/hook"
        assert body["event"] == "failure" and body["unit"] == "collector-monitor.service"
        assert body["checks"] == [STALE.text] and body["status"] == ["Active: failed"] and body["journal"] == ["boom"]
        assert body["host"] and "btc_option_quotes" in body["text"]
    elif fmt == "ntfy":   # JSON publishing: to the server's root, the topic in the body
        assert path == "/"
        assert body["topic"] == "collector-alerts" and body["priority"] == 4
        assert body["title"].startswith("[collector] FAILED") and STALE.text in body["message"]
    elif fmt == "slack":
        assert path == "/hook" and set(body) == {"text", "content"}
        assert STALE.text in body["text"] and body["content"] == body["text"][:2000]
    else:
        assert path == "/bot123:TOKEN/sendMessage"
        assert body["chat_id"] == "-100123" and STALE.text in body["text"]


def test_ntfy_keeps_its_auth_query_on_the_url_not_in_the_topic(receiver, tmp_path):
    s = settings(tmp_path, COLLECTOR_ALERT_WEBHOOK=receiver.url + "/collector-alerts?auth=tk", COLLECTOR_ALERT_FORMAT="ntfy")
    assert alert.notify(s, "collector-monitor.service", [STALE])
    (path, body), = receiver.got
    assert path == "/?auth=tk" and body["topic"] == "collector-alerts"


def test_one_message_per_failure_repeats_suppressed_resolved_after_a_pass(receiver, tmp_path):
    s = settings(tmp_path, COLLECTOR_ALERT_WEBHOOK=receiver.url + "/hook", COLLECTOR_ALERT_REPEAT_SECONDS="1h")
    key = "collector-monitor.service"
    assert alert.notify(s, key, [STALE])
    assert alert.notify(s, key, [STALE])            # the same failure again: suppressed
    assert len(receiver.got) == 1
    assert alert.notify(s, key, [STALE, HOLE])      # a new failure: one message, listing both
    assert len(receiver.got) == 2 and receiver.got[1][1]["checks"] == [STALE.text, HOLE.text]
    assert alert.notify(s, key, [HOLE])
    assert len(receiver.got) == 2
    assert alert.resolve(s)
    assert len(receiver.got) == 3
    assert receiver.got[2][1]["event"] == "resolved" and receiver.got[2][1]["unit"] == key
    assert alert.resolve(s)                         # nothing open any more
    assert len(receiver.got) == 3
    assert alert.notify(s, key, [STALE])            # after the resolve, the same failure is news again
    assert len(receiver.got) == 4
    # the repeat time over: sent again
    s0 = settings(tmp_path, COLLECTOR_ALERT_WEBHOOK=receiver.url + "/hook", COLLECTOR_ALERT_REPEAT_SECONDS="0")
    assert alert.notify(s0, key, [STALE])
    assert len(receiver.got) == 5


def test_a_failed_delivery_is_tried_again_and_the_token_is_never_logged(receiver, tmp_path):
    env = {**os.environ, "COLLECTOR_ALERT_WEBHOOK": receiver.url + "/bot999:SECRET-TOKEN/sendMessage",
           "COLLECTOR_ALERT_FORMAT": "telegram", "COLLECTOR_ALERT_TELEGRAM_CHAT": "42",
           "COLLECTOR_ALERT_STATE_DIR": str(tmp_path / "state"), "PATH": "/nonexistent:" + os.environ["PATH"]}
    receiver.code = 500

    def run(*args):
        return subprocess.run([sys.executable, "-m", "collector.cli", "alert", *args], capture_output=True, text=True,
                              timeout=60, env=env, cwd="/")
    bad = run("--unit", "depth.service")
    assert bad.returncode == 1 and len(receiver.got) == 1
    assert "alert_send_failed" in bad.stderr and "127.0.0.1" in bad.stderr
    assert "SECRET" not in bad.stderr + bad.stdout
    receiver.code = 200
    good = run("--unit", "depth.service")        # not suppressed: the first one never arrived
    assert good.returncode == 0 and len(receiver.got) == 2
    assert "depth.service entered the failed state" in receiver.got[1][1]["text"]
    assert "SECRET" not in good.stderr + good.stdout
    assert run("--unit", "depth.service").returncode == 0 and len(receiver.got) == 2   # a repeat
    test = run("--test")
    assert test.returncode == 0 and len(receiver.got) == 3 and "TEST" in receiver.got[2][1]["text"]


def test_mail_goes_through_sendmail_dash_t(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    out = tmp_path / "mail.txt"
    fake = bindir / "sendmail"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {out}.argv\ncat > {out}\n")
    fake.chmod(0o755)
    env = {**os.environ, "COLLECTOR_ALERT_EMAIL": "ops@example.org, me@example.org",
           "COLLECTOR_ALERT_STATE_DIR": str(tmp_path / "state"), "PATH": f"{bindir}:{os.environ['PATH']}"}
    res = subprocess.run([sys.executable, "-m", "collector.cli", "alert", "--unit", "ws-collector@BTC.service"],
                         capture_output=True, text=True, timeout=60, env=env, cwd="/")
    assert res.returncode == 0, res.stderr
    mail = out.read_text()
    assert (tmp_path / "mail.txt.argv").read_text().split() == ["-t", "-oi"]
    assert "To: ops@example.org, me@example.org" in mail
    assert "Subject: [collector] FAILED on " in mail and "ws-collector@BTC.service" in mail
    assert "ws-collector@BTC.service entered the failed state" in mail


def test_nothing_configured(tmp_path):
    env = {**os.environ, "COLLECTOR_ALERT_STATE_DIR": str(tmp_path / "state")}
    for var in ("COLLECTOR_ALERT_WEBHOOK", "COLLECTOR_ALERT_EMAIL"):
        env.pop(var, None)
    run = lambda *a: subprocess.run([sys.executable, "-m", "collector.cli", "alert", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=60, env=env, cwd="/")
    unit = run("--unit", "depth.service")
    assert unit.returncode == 0 and "alert_not_configured" in unit.stderr
    test = run("--test")
    assert test.returncode == 2 and "COLLECTOR_ALERT_WEBHOOK" in test.stderr


def test_monitor_stale_then_alert_unit_then_resolved(receiver, dsn, conn, tmp_path):
    """The systemd flow without systemd: the monitor fails and leaves its checks, the alert its
    OnFailure= starts sends them once, the next failing runs send nothing, a pass sends "resolved"."""
    env = {**os.environ, "DATABASE_URL": dsn, "COLLECTOR_CURRENCIES": "BTC,ETH",
           "COLLECTOR_ALERT_WEBHOOK": receiver.url + "/hook", "COLLECTOR_ALERT_STATE_DIR": str(tmp_path / "state"),
           "COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"), "COLLECTOR_BACKUP_DIR": str(tmp_path / "backups")}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "collector.cli", *args], capture_output=True, text=True,
                              timeout=120, env=env, cwd="/")

    def fill(age: str):
        for rel in status.relations_for(["BTC", "ETH"]):
            kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (rel,)).fetchone()
            if kind and kind[0] in ("r", "p") and not (rel == "btc_option_quotes" and age == "now()"):
                insert(conn, rel, [age])

    fill("now()")                                  # everything fresh but btc_option_quotes (empty)
    for round_ in range(2):
        mon = run("db", "status", "--monitor")
        assert mon.returncode == 1 and "FAILED btc_option_quotes" in mon.stdout
        assert len(receiver.got) == round_         # the monitor itself sends nothing: its OnFailure= does
        sent = run("alert", "--unit", "collector-monitor.service")
        assert sent.returncode == 0, sent.stderr
        assert len(receiver.got) == 1              # the second round: suppressed
    body = receiver.got[0][1]
    assert body["event"] == "failure" and body["unit"] == "collector-monitor.service"
    assert body["checks"] == ["btc_option_quotes: no rows (limit 5m)"]
    insert(conn, "btc_option_quotes", ["now()"])
    ok = run("db", "status", "--monitor")
    assert ok.returncode == 0, ok.stdout
    assert len(receiver.got) == 2 and receiver.got[1][1]["event"] == "resolved"
    assert run("db", "status", "--monitor").returncode == 0 and len(receiver.got) == 2
    assert conn.execute("SELECT count(*) FROM size_samples").fetchone()[0] == 4   # each monitor run: a sample


@pytest.mark.engines("postgres")   # the health report itself is tested on both engines (test_status.py)
def test_run_all_checks_health_in_its_process_warns_and_alerts_once(receiver, dsn, tmp_path):
    """`collector run-all` (what bin/run runs): every COLLECTOR_MONITOR_EVERY the same health check,
    a warning per failed check in its log and one alert (the repeats suppressed)."""
    from tests.jobs.wsrun import process_env, start_sim, wait_until

    sim = start_sim(currencies=["BTC"], strikes=3, rate=300, trade_rate=100)
    env = {**process_env(sim, dsn, tmp_path / "spool"), "COLLECTOR_MONITOR_EVERY": "10s",
           # a limit nothing can meet: funding_rates newer than 1 ms
           "COLLECTOR_MAX_AGE": "1h,funding_rates=1ms",
           "COLLECTOR_ALERT_WEBHOOK": receiver.url + "/hook", "COLLECTOR_ALERT_STATE_DIR": str(tmp_path / "state"),
           "COLLECTOR_BACKUP_DIR": str(tmp_path / "backups")}
    log = tmp_path / "run-all.log"
    with open(log, "w") as err:
        p = subprocess.Popen([sys.executable, "-m", "collector.cli", "run-all"], env=env, stdout=subprocess.DEVNULL,
                             stderr=err, cwd=str(tmp_path))
    try:
        def checks() -> list[dict]:
            return [e for e in (json.loads(ln) for ln in log.read_text().splitlines() if ln.startswith("{"))
                    if e["event"] == "health_checked"]
        wait_until(lambda: len(checks()) >= 2, 60, what="two health checks")
        assert all("stale:funding_rates" in c["failed"] for c in checks())
        msgs = [b for _, b in receiver.got]
        assert len(msgs) == 1, msgs
        assert msgs[0]["unit"] == "run-all" and any("funding_rates" in c for c in msgs[0]["checks"])
        warnings = [json.loads(ln) for ln in log.read_text().splitlines() if '"health_check_failed"' in ln]
        assert {w["level"] for w in warnings} == {"WARNING"}
        assert "stale:funding_rates" in {w["check"] for w in warnings}
    finally:
        p.send_signal(2)
        p.wait(timeout=30)
        sim.stop()
    assert p.returncode == 0, log.read_text()[-3000:]
