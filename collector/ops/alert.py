"""Alerts that reach a person: one message per failure to a webhook (a JSON POST: ntfy, Slack/Discord,
Telegram or plain JSON) and/or by mail through the host's ``sendmail -t``.

Who calls it:

* ``collector-alert@UNIT.service`` (``OnFailure=`` of every unit) runs ``collector alert --unit UNIT``:
  :func:`unit_failed` sends what failed (for the monitor: its failed checks, which it left in the state
  file), the unit's ``systemctl status`` lines and the last error lines of its journal;
* ``collector db status --monitor`` (collector-monitor.service) records its failed checks for that, and
  when every check passes calls :func:`resolve`: each open alert gets its "resolved" message;
* ``collector run-all`` calls :func:`notify` / :func:`resolve` itself (key ``run-all``).

A failure already sent (the same check names under the same key) is not sent again for
``COLLECTOR_ALERT_REPEAT_SECONDS``. The state is one small JSON file (``alert-state.json`` in
``COLLECTOR_ALERT_STATE_DIR``; under systemd the units' shared ``StateDirectory=collector/alert``),
changed under an exclusive lock. The webhook URL may hold a token: it is read from the environment
(the env file) only, and only its host is ever logged.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from collector import __version__
from collector.config import ConfigError, Settings
from collector.ops import health
from collector.ops.health import Check

log = logging.getLogger(__name__)

MONITOR_UNIT = "collector-monitor.service"
STATE_FILE = "alert-state.json"
PENDING_MAX_AGE_S = 900.0        # the monitor's checks are used by an alert started within this long
HTTP_TIMEOUT_S = 10.0
JOURNAL_LINES = 20
TEXT_MAX = 3500                  # Slack, Telegram (4096); Discord's content is cut at 2000


@dataclass
class Message:
    kind: str                    # "failure", "resolved" or "test"
    key: str                     # the unit, or "run-all"
    title: str
    checks: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    journal: list[str] = field(default_factory=list)
    host: str = field(default_factory=socket.gethostname)

    def text(self) -> str:
        parts = []
        if self.checks:
            parts.append(("what failed:" if self.kind == "failure" else "what:")
                         + "".join(f"\n- {c}" for c in self.checks))
        if self.status:
            parts.append("status:\n" + "\n".join(self.status))
        if self.journal:
            parts.append(f"last error lines of {self.key}:\n" + "\n".join(self.journal))
        return "\n\n".join(parts)[:TEXT_MAX]

    def subject(self) -> str:
        return f"[collector] {self.title}"

    def as_json(self) -> dict[str, Any]:
        return {"event": self.kind, "unit": self.key, "host": self.host, "title": self.title, "checks": self.checks,
                "status": self.status, "journal": self.journal, "text": self.text(),
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "version": __version__}


# -- delivery -------------------------------------------------------------------------------------------

def configured(settings: Settings) -> bool:
    return bool(settings.alert_webhook or settings.alert_email)


def webhook_request(settings: Settings, msg: Message) -> tuple[str, dict[str, Any]]:
    """The URL to POST to and the JSON body, in ``COLLECTOR_ALERT_FORMAT``."""
    url = settings.alert_webhook or ""
    fmt = settings.alert_format
    full = f"{msg.subject()}\n\n{msg.text()}".strip()
    if fmt == "ntfy":   # JSON publishing goes to the server's root, the topic in the body
        parts = urlsplit(url)   # https://ntfy.sh/TOPIC[?auth=...]: the query (ntfy's auth) stays on the URL
        base, _, topic = parts.path.rstrip("/").rpartition("/")
        body = {"topic": topic, "title": msg.subject(), "message": msg.text() or msg.title,
                "priority": 4 if msg.kind == "failure" else 3,
                "tags": ["rotating_light"] if msg.kind == "failure" else ["white_check_mark"]}
        return parts._replace(path=base + "/").geturl(), body
    if fmt == "slack":  # Slack reads "text", Discord "content" (at most 2000 characters); each ignores the other
        return url, {"text": full, "content": full[:2000]}
    if fmt == "telegram":
        if not settings.alert_telegram_chat:
            raise ConfigError("COLLECTOR_ALERT_TELEGRAM_CHAT", "", "the chat_id the bot sends to "
                              "(COLLECTOR_ALERT_FORMAT=telegram)")
        return url, {"chat_id": settings.alert_telegram_chat, "text": full[:4096], "disable_web_page_preview": True}
    return url, msg.as_json()


def _post(url: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"deribit-collector/{__version__}"})
    with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:   # noqa: S310 - http(s) only (SecretUrl)
        resp.read()


def _sendmail_path() -> str | None:
    """sendmail on PATH, else where MTAs put it (systemd's PATH for services has /usr/sbin anyway)."""
    return shutil.which("sendmail") or next(
        (p for p in ("/usr/sbin/sendmail", "/usr/lib/sendmail") if os.access(p, os.X_OK)), None)


def _mail(settings: Settings, msg: Message) -> None:
    sendmail = _sendmail_path()
    if sendmail is None:
        raise OSError("no sendmail on PATH, /usr/sbin or /usr/lib (install an MTA, e.g. msmtp-mta)")
    mail = EmailMessage()
    mail["To"] = settings.alert_email
    mail["Subject"] = msg.subject()
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(msg.text() or msg.title)
    res = subprocess.run([sendmail, "-t", "-oi"], input=mail.as_bytes(), capture_output=True, timeout=60)
    if res.returncode != 0:
        raise OSError(f"sendmail exited {res.returncode}: {res.stderr.decode(errors='replace').strip()[:200]}")


def deliver(settings: Settings, msg: Message) -> bool:
    """Send ``msg`` on every configured channel; True when each took it. Failures are logged (the
    webhook by its host only)."""
    ok = True
    sent = []
    if settings.alert_webhook:
        host = urlsplit(settings.alert_webhook).hostname or "?"
        try:
            url, body = webhook_request(settings, msg)
            _post(url, body)
            sent.append(f"webhook:{host}")
        except urllib.error.HTTPError as err:
            ok = False
            log.error("alert_send_failed", extra={"channel": "webhook", "host": host, "status": err.code})
        except (OSError, ValueError) as err:   # URLError is an OSError
            ok = False
            reason = getattr(err, "reason", err)
            log.error("alert_send_failed", extra={"channel": "webhook", "host": host,
                                                  "error": type(reason).__name__ + ": " + str(reason)[:200]})
    if settings.alert_email:
        try:
            _mail(settings, msg)
            sent.append("email")
        except (OSError, subprocess.SubprocessError) as err:
            ok = False
            log.error("alert_send_failed", extra={"channel": "email", "error": str(err)[:300]})
    if sent:
        log.info("alert_sent", extra={"kind": msg.kind, "key": msg.key, "channels": sent, "checks": msg.checks})
    return ok


# -- state ------------------------------------------------------------------------------------------------

@contextmanager
def _state(settings: Settings) -> Iterator[dict[str, Any]]:
    """The state file's content, locked; written back when the block ends without an error."""
    path = Path(settings.alert_state_dir) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        try:
            state = json.loads(fh.read() or "{}")
        except ValueError:
            state = {}
        state.setdefault("open", {})
        state.setdefault("pending", {})
        yield state
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(state, indent=1, sort_keys=True))
        fh.flush()
        os.fsync(fh.fileno())


def record_pending(settings: Settings, unit: str, checks: list[Check]) -> None:
    """The monitor's failed checks, for the alert its OnFailure= starts."""
    with _state(settings) as st:
        st["pending"][unit] = {"at": time.time(), "checks": [c.text for c in checks],
                               "names": [c.name for c in checks]}


def notify(settings: Settings, key: str, checks: list[Check], *, status: list[str] | None = None,
           journal: list[str] | None = None, title: str | None = None) -> bool:
    """Send one failure message for ``key`` unless each of ``checks`` was sent within the repeat time.
    True when sent or suppressed, False when a channel failed (the next call tries again)."""
    now = time.time()
    with _state(settings) as st:
        entry = st["open"].setdefault(key, {"since": now, "sent": {}})
        fresh = [c for c in checks if now - entry["sent"].get(c.name, float("-inf")) >= settings.alert_repeat_s]
        if not fresh:
            log.info("alert_suppressed", extra={"key": key, "checks": [c.name for c in checks],
                                                "repeat_s": settings.alert_repeat_s})
            return True
        msg = Message("failure", key, title or f"FAILED on {socket.gethostname()}: {key}",
                      [c.text for c in checks], status or [], journal or [])
        ok = deliver(settings, msg)
        if ok:
            entry["sent"].update({c.name: now for c in checks})
        elif not entry["sent"]:
            del st["open"][key]
        return ok


def resolve(settings: Settings, keys: list[str] | None = None) -> bool:
    """A "resolved" message for each open alert (of ``keys``; default: every key whose unit is not in
    the failed state now). True when each was sent."""
    if not configured(settings):
        return True
    ok = True
    with _state(settings) as st:
        for key in list(st["open"]):
            if keys is not None and key not in keys:
                continue
            if keys is None and key != MONITOR_UNIT and _unit_is_failed(key):
                continue
            entry = st["open"][key]
            since = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(entry.get("since", time.time())))
            msg = Message("resolved", key, f"RESOLVED on {socket.gethostname()}: {key}",
                          [f"all is well again (failing since {since})"])
            if deliver(settings, msg):
                del st["open"][key]
            else:
                ok = False
    return ok


# -- systemd ----------------------------------------------------------------------------------------------

def _run(argv: list[str]) -> subprocess.CompletedProcess | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None


def _unit_is_failed(unit: str) -> bool:
    res = _run(["systemctl", "is-failed", "--quiet", unit])
    return res is not None and res.returncode == 0


def status_lines(unit: str) -> list[str]:
    res = _run(["systemctl", "status", "--no-pager", "--lines=0", unit])
    if res is None:
        return ["(systemctl is not available here)"]
    return [ln.rstrip() for ln in res.stdout.splitlines() if ln.strip()][:12]


def journal_lines(unit: str) -> list[str]:
    """The unit's last error lines: what ``journalctl -u UNIT -p err`` shows (systemd's own, e.g.
    "Failed to start …") and the collector's JSON log lines at ERROR or above (journald stores our
    stderr at priority info, so ``-p err`` alone would miss them)."""
    res = _run(["journalctl", "-u", unit, "-n", "400", "-o", "json", "--no-pager"])
    if res is None:
        return ["(journalctl is not available here: no journal lines)"]
    lines = []
    for raw in res.stdout.splitlines():
        try:
            entry = json.loads(raw)
            text = entry.get("MESSAGE", "")
            if isinstance(text, list):    # not UTF-8: an array of bytes
                text = bytes(text).decode(errors="replace")
            prio = int(entry.get("PRIORITY", 6))
        except (ValueError, TypeError):
            continue
        level = ""
        if text.startswith("{"):
            try:
                level = str(json.loads(text).get("level", ""))
            except (ValueError, AttributeError):
                pass
        if prio <= 3 or level in ("ERROR", "CRITICAL"):
            lines.append(text.rstrip()[:500])
    if res.returncode != 0 and not lines:
        return [f"(journalctl failed: {res.stderr.strip()[:200]})"]
    return lines[-JOURNAL_LINES:]


def unit_failed(settings: Settings, unit: str) -> int:
    """``collector alert --unit UNIT``: one message for a unit that entered the failed state."""
    if not configured(settings):
        log.warning("alert_not_configured", extra={"unit": unit, "hint": "set COLLECTOR_ALERT_WEBHOOK and/or "
                                                   "COLLECTOR_ALERT_EMAIL in the env file"})
        return 0
    checks: list[Check] = []
    with _state(settings) as st:
        pending = st["pending"].pop(unit, None)
    if pending and time.time() - pending["at"] < PENDING_MAX_AGE_S:
        checks = [Check(n, t) for n, t in zip(pending["names"], pending["checks"])]
    if not checks:
        checks = [Check(f"unit:{unit}", f"{unit} entered the failed state")]
    ok = notify(settings, unit, checks, status=status_lines(unit), journal=journal_lines(unit))
    return 0 if ok else 1


def test(settings: Settings) -> int:
    """``collector alert --test``."""
    if not configured(settings):
        raise ConfigError("COLLECTOR_ALERT_WEBHOOK", "", "set it and/or COLLECTOR_ALERT_EMAIL to send a test message")
    msg = Message("test", "test", f"TEST from {socket.gethostname()}: alerts reach you",
                  ["this is a test message of `collector alert --test`; nothing is wrong"])
    return 0 if deliver(settings, msg) else 1


def check(settings: Settings, key: str = "run-all") -> health.Report:
    """One health check as ``run-all`` runs it: a size sample, a warning per failed check, an alert when
    one is configured (repeats suppressed), "resolved" once all is well again."""
    report = health.collect_from(settings, record=True)
    for c in report.failures:
        log.warning("health_check_failed", extra={"check": c.name, "text": c.text})
    if configured(settings):
        if report.failures:
            notify(settings, key, report.failures)
        else:
            resolve(settings, keys=[key])
    return report
