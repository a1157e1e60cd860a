"""The unit files in systemd/: verified by systemd itself, scored for hardening, timers checked.

No systemd as PID 1 is needed: ``systemd-analyze verify`` runs against a fake root (a copy of the
distribution's units, ours under /etc/systemd/system and a stub at the ExecStart path), and it exits 0
on unknown keys and bad values, so any output at all is a failure. ``systemd-analyze security
--offline`` scores each service; ``systemd-analyze calendar --base-time`` says when a timer fires.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
ANALYZE = shutil.which("systemd-analyze")
EXEC = "/opt/collector/current/bin/collector"
MAX_EXPOSURE = 2.0

pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze not installed (bin/setup installs the `systemd` package)")

SERVICES = ["ws-collector@ETH.service", "rest-collector.service", "depth.service", "greeks.service",
            "funding.service", "collector-monitor.service", "collector-backup.service"]
TIMERS = {  # timer -> (base time, the next firings in UTC)
    "rest-collector.timer": ("2024-03-01 23:59:30 UTC", ["2024-03-02 00:00:00", "2024-03-02 00:01:00"]),
    "depth.timer": ("2024-03-01 10:03:00 UTC", ["2024-03-01 10:05:00", "2024-03-01 10:10:00"]),
    "greeks.timer": ("2024-03-01 10:00:01 UTC", ["2024-03-01 11:00:00", "2024-03-01 12:00:00"]),
    "funding.timer": ("2024-03-01 07:59:00 UTC",
                      ["2024-03-01 08:01:00", "2024-03-01 16:01:00", "2024-03-02 00:01:00", "2024-03-02 08:01:00"]),
    "collector-monitor.timer": ("2024-03-01 10:00:00 UTC", ["2024-03-01 10:02:00", "2024-03-01 10:07:00"]),
    "collector-backup.timer": ("2024-03-01 10:00:00 UTC", ["2024-03-02 03:17:00", "2024-03-03 03:17:00"]),
}


def unit_files() -> list[Path]:
    return sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".timer", ".target"))


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value (keys may repeat, e.g. SystemCallFilter=)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        assert section is not None, f"{path.name}: {line!r} outside a section"
        out[section].setdefault(key.strip(), []).append(value.strip())
    return out


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", **(env or {})})


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    """/usr/lib/systemd/system from the host, our units in /etc/systemd/system, a stub collector."""
    root = tmp_path_factory.mktemp("root")
    system = Path("/lib/systemd/system")
    if not system.is_dir():
        pytest.skip("no /lib/systemd/system to build a fake root from (install the `systemd` package)")
    shutil.copytree(system, root / "usr/lib/systemd/system", symlinks=True)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    for p in unit_files():
        shutil.copy(p, etc / p.name)
    stub = root / EXEC.lstrip("/")
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    return root


def verify(root: Path, *units: str) -> subprocess.CompletedProcess:
    return run("verify", f"--root={root}", *units)


def test_the_expected_units_exist():
    names = {p.name for p in unit_files()}
    assert names == {
        "ws-collector@.service", "rest-collector.service", "rest-collector.timer", "depth.service", "depth.timer",
        "greeks.service", "greeks.timer", "funding.service", "funding.timer", "collector-monitor.service",
        "collector-monitor.timer", "collector-backup.service", "collector-backup.timer", "collector.target",
        "collector-alert@.service"}


def test_verify_is_silent(fake_root):
    units = [s for s in SERVICES] + list(TIMERS) + ["collector.target", ALERT_OF_WS]
    res = verify(fake_root, *units)
    assert res.returncode == 0 and res.stdout == "" and res.stderr == "", res.stdout + res.stderr


@pytest.mark.parametrize("change,expect", [
    (("Type=notify", "Type=notfiy"), "Failed to parse service type"),
    (("WatchdogSec=60s", "WatchdogSec=thirty"), "Failed to parse sec value"),
    (("[Install]", "[Instal]"), "Instal"),
])
def test_verify_catches_a_typo(fake_root, change, expect):
    """The check above would see these: systemd-analyze prints them but still exits 0."""
    text = (UNITS / "ws-collector@.service").read_text()
    assert change[0] in text
    bad = fake_root / "etc/systemd/system/typo@.service"
    bad.write_text(text.replace(change[0], change[1]))
    try:
        res = verify(fake_root, "typo@ETH.service")
    finally:
        bad.unlink()
    assert expect in res.stdout + res.stderr


@pytest.mark.parametrize("unit", SERVICES)
def test_security_exposure_at_most_2(fake_root, unit):
    res = run("security", "--offline=true", f"--root={fake_root}", "--no-pager", unit)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", res.stdout)
    assert m, res.stdout + res.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE, res.stdout
    # --threshold is on a 0-100 scale: 10x the number shown
    res = run("security", "--offline=true", f"--root={fake_root}", "--no-pager",
              f"--threshold={int(MAX_EXPOSURE * 10)}", unit)
    assert res.returncode == 0, res.stdout + res.stderr


def _firings(expr: str, base: str, n: int, tz: str) -> list[str]:
    res = run("calendar", f"--base-time={base}", f"--iterations={n}", expr, env={"TZ": tz})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"\s*(Next elapse|Iter\. #\d+): \w+ (\S+ \S+) (\S+)$", line)
        if not m:
            continue
        stamp, zone = m.group(2), m.group(3)
        if zone != "UTC":  # shown in local time, followed by an "(in UTC)" line
            m2 = re.match(r"\s*\(in UTC\): \w+ (\S+ \S+) UTC$", lines[i + 1])
            assert m2, res.stdout
            stamp = m2.group(1)
        out.append(stamp)
    return out


@pytest.mark.parametrize("timer", list(TIMERS))
def test_timer_fires_when_expected(timer):
    unit = parse_unit(UNITS / timer)
    (expr,) = unit["Timer"]["OnCalendar"]
    base, expected = TIMERS[timer]
    assert _firings(expr, base, len(expected), "UTC") == expected


def test_funding_is_on_utc_whatever_the_local_zone():
    (expr,) = parse_unit(UNITS / "funding.timer")["Timer"]["OnCalendar"]
    base, expected = TIMERS["funding.timer"]
    for tz in ("Europe/Berlin", "America/New_York", "Asia/Tokyo"):
        assert _firings(expr, base, len(expected), tz) == expected, tz


@pytest.mark.parametrize("timer", list(TIMERS))
def test_timer_is_persistent_with_a_small_random_delay(timer):
    t = parse_unit(UNITS / timer)
    assert t["Timer"]["Persistent"] == ["true"]
    (delay,) = t["Timer"]["RandomizedDelaySec"]
    seconds = int(delay.removesuffix("s"))
    assert 0 < seconds <= 60
    assert t["Timer"]["Unit"] == [timer.replace(".timer", ".service")]
    assert (UNITS / t["Timer"]["Unit"][0]).exists()
    assert t["Install"]["WantedBy"] == ["collector.target"]
    assert t["Unit"]["PartOf"] == ["collector.target"]


@pytest.mark.parametrize("unit", SERVICES)
def test_service_runs_as_collector_with_the_env_file(unit):
    s = parse_unit(UNITS / unit.replace("@ETH", "@"))
    svc = s["Service"]
    assert svc["User"] == ["collector"] and svc["Group"] == ["collector"]
    assert svc["EnvironmentFile"] == ["/etc/collector/collector.env"]
    (exec_start,) = svc["ExecStart"]
    assert exec_start.startswith(EXEC + " ")
    assert svc["ProtectSystem"] == ["strict"] and svc["NoNewPrivileges"] == ["yes"]
    assert s["Unit"]["PartOf"] == ["collector.target"]
    if unit not in ("collector-monitor.service", "collector-backup.service"):  # jobs with a spool in $STATE_DIRECTORY
        (state,) = svc["StateDirectory"]
        assert state.startswith("collector/")


def test_ws_collector_is_a_notify_service_with_watchdog():
    svc = parse_unit(UNITS / "ws-collector@.service")["Service"]
    assert svc["Type"] == ["notify"]
    assert svc["ExecStart"] == [f"{EXEC} ws --currency %i"]
    assert svc["Restart"] == ["always"]
    assert svc["WatchdogSec"] and svc["TimeoutStopSec"]
    assert svc["StateDirectory"] == ["collector/ws-%i"]


def test_oneshot_jobs_run_their_command():
    expect = {"rest-collector.service": "rest", "depth.service": "depth", "greeks.service": "greeks",
              "funding.service": "funding", "collector-monitor.service": "db status --monitor $COLLECTOR_MONITOR_ARGS",
              "collector-backup.service": "db backup"}
    for unit, cmd in expect.items():
        svc = parse_unit(UNITS / unit)["Service"]
        assert svc["Type"] == ["oneshot"], unit
        assert svc["ExecStart"] == [f"{EXEC} {cmd}"], unit


def test_monitor_checks_with_the_settings_limits_by_default():
    svc = parse_unit(UNITS / "collector-monitor.service")["Service"]
    (env,) = svc["Environment"]
    assert env.strip('"') == "COLLECTOR_MONITOR_ARGS="     # COLLECTOR_MAX_AGE & co. apply


ALERT_OF_WS = "collector-alert@ws-collector@ETH.service.service"   # what OnFailure=collector-alert@%n.service starts


def test_every_unit_but_the_alert_starts_an_alert_on_failure():
    services = sorted(p.name for p in UNITS.glob("*.service") if p.name != "collector-alert@.service")
    assert "collector-monitor.service" in services and "ws-collector@.service" in services
    for name in services:
        assert parse_unit(UNITS / name)["Unit"].get("OnFailure") == ["collector-alert@%n.service"], name
    alert = parse_unit(UNITS / "collector-alert@.service")
    assert "OnFailure" not in alert["Unit"] and "PartOf" not in alert["Unit"]   # no loop; a stop does not cut it
    assert alert["Service"]["ExecStart"] == [f"{EXEC} alert --unit %i"]
    assert alert["Service"]["Type"] == ["oneshot"] and alert["Service"]["User"] == ["collector"]
    assert alert["Service"]["EnvironmentFile"] == ["/etc/collector/collector.env"]   # the secrets: never in argv
    # the monitor and the alert share the alerts' state (the monitor sends "resolved")
    monitor = parse_unit(UNITS / "collector-monitor.service")["Service"]
    assert alert["Service"]["StateDirectory"] == monitor["StateDirectory"] == ["collector/alert"]


def test_a_crash_loop_of_a_stream_ends_in_the_failed_state():
    """Restart=always alone restarts forever and never fails (so never alerts): the start limit ends it."""
    unit = parse_unit(UNITS / "ws-collector@.service")
    (interval,) = unit["Unit"]["StartLimitIntervalSec"]
    (burst,) = unit["Unit"]["StartLimitBurst"]
    (restart_sec,) = unit["Service"]["RestartSec"]
    assert int(burst) >= 3
    # the burst fits in the interval at RestartSec (a loop is caught), a watchdog restart now and then is not one
    assert int(burst) * int(restart_sec.removesuffix("s")) < int(interval.removesuffix("min")) * 60


def test_the_alert_unit_is_hardened(fake_root):
    res = run("security", "--offline=true", f"--root={fake_root}", "--no-pager",
              f"--threshold={int(MAX_EXPOSURE * 10)}", ALERT_OF_WS)
    assert res.returncode == 0, res.stdout + res.stderr


def test_backup_writes_only_its_directory():
    svc = parse_unit(UNITS / "collector-backup.service")["Service"]
    assert svc["ReadWritePaths"] == ["/var/backups/collector"] and svc["ProtectSystem"] == ["strict"]


def test_collector_target_is_wanted_at_boot():
    t = parse_unit(UNITS / "collector.target")
    assert t["Install"]["WantedBy"] == ["multi-user.target"]


def _hardening(unit: Path) -> list[str]:
    lines = unit.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("NoNewPrivileges="))
    end = next(i for i, ln in enumerate(lines) if ln.startswith("SystemCallErrorNumber="))
    return lines[start:end + 1]


def test_every_service_has_the_same_hardening_block():
    """The ~33 hardening lines are repeated in each service: systemd has no clean way to share them
    here (a drop-in applies by unit-name prefix, and the units keep the names the user knows:
    ws-collector@, rest-collector, depth, greeks, funding, collector-monitor, collector-backup,
    collector-alert@), so this keeps them equal."""
    services = sorted(UNITS.glob("*.service"))
    assert len(services) == 8
    blocks = {s.name: _hardening(s) for s in services}
    reference = blocks["ws-collector@.service"]
    assert len(reference) >= 30
    for name, block in blocks.items():
        assert block == reference, f"{name}: hardening differs from ws-collector@.service"
