"""The whole deployment under a REAL systemd: the playbook, run inside a systemd-nspawn container.

`bin/container-test` prepares (once, cached outside the clone) a Debian bookworm root with systemd and
the Debian PostgreSQL package and a .deb of the vendored TimescaleDB (`bin/timescaledb --deb`), and runs
this module (marker `container`; skipped elsewhere). Here:

* a throwaway copy of that root is booted with `systemd-nspawn --boot` (it shares the host's network);
  the simulator runs on the host's 127.0.0.1 and the services inside reach it there;
* ansible-core is installed inside from wheels downloaded on the host (`--no-index`), and the project's
  wheels are built on the host; then `ansible-playbook -c local ansible/deploy.yml` runs inside with
  service management ON: the collector_db role installs TimescaleDB from the local .deb
  (`collector_db_timescaledb_deb`: no repository), preloads it and configures the container's PostgreSQL
  (restart and reload through systemd, peer authentication for the OS user `collector`), the collector
  role installs the venv, collector.env pointing at the simulator, the units, migrates (the time-series
  tables become hypertables: the restart came first) and enables/starts them;
* then: ws-collector@BTC/@ETH are active and write; the every-minute rest-collector.timer fires by
  itself and its job writes candles; depth/greeks/funding (5 min/hourly/8 h timers) are started once by
  hand and write; the monitor passes; a SIGSTOP'd collector is killed by the watchdog and restarted
  (a drop-in shortens WatchdogSec to 10 s); a second playbook run, with everything running, reports
  changed=0 (after a stop it would rightly start the units again); `systemctl stop collector.target`
  stops everything, the streams exiting 0 after flushing.

Timings on a 2-core machine: ~3.5 min with the cached root (the wait for the every-minute timer is
most of it), ~5.2 min when bin/container-test first builds the root. The cached root's apt lists may
be old: the roles' apt tasks then run `apt-get update` inside (Debian's mirror must be reachable).

The container is powered off and its copy removed whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.container

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COLLECTOR = str(BIN / "collector")
CACHED_ROOT = os.environ.get("COLLECTOR_NSPAWN_ROOT", "")
TIMESCALEDB_DEB = os.environ.get("COLLECTOR_NSPAWN_TIMESCALEDB_DEB", "")
NSPAWN = shutil.which("systemd-nspawn")
NSENTER = shutil.which("nsenter")
CURRENCIES = ["BTC", "ETH"]
WATCHDOG_S = 10
TIMERS = ["rest-collector.timer", "depth.timer", "greeks.timer", "funding.timer", "collector-monitor.timer"]
ONESHOTS = ["rest-collector.service", "depth.service", "greeks.service", "funding.service",
            "collector-monitor.service"]
PATH_IN = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# what migrate must have made hypertables of (with 0004's per-currency tables)
HYPERTABLES = ["index_prices", "perpetuals_ohlcv", "futures_ohlcv", "options_ohlcv", "options_greeks", "funding_rates",
               "perpetuals_orderbook_depth", "perpetuals_quotes", "perpetuals_trades",
               *(f"{cur.lower()}_option_{kind}" for cur in CURRENCIES for kind in ("quotes", "trades", "orderbook_depth"))]


def _skip_reason() -> str | None:
    if not CACHED_ROOT:
        return "the container test runs through bin/container-test (it prepares the cached root and sets COLLECTOR_NSPAWN_ROOT)"
    if os.geteuid() != 0:
        return "systemd-nspawn and nsenter need root"
    if NSPAWN is None or NSENTER is None:
        return "systemd-nspawn/nsenter missing (apt-get install systemd-container util-linux)"
    if not Path(CACHED_ROOT, ".collector-ready").exists():
        return f"{CACHED_ROOT} is not a prepared container root (bin/container-test --prepare)"
    if not TIMESCALEDB_DEB or not Path(TIMESCALEDB_DEB).is_file():
        return f"no TimescaleDB .deb ({TIMESCALEDB_DEB!r}): bin/container-test makes it (bin/timescaledb --deb)"
    return None


if (_reason := _skip_reason()) is not None:
    pytestmark = [pytest.mark.container, pytest.mark.skip(reason=_reason)]


def log(msg: str) -> None:
    print(f"[nspawn {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Container:
    """A booted copy of the cached root; commands run inside with nsenter."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.name = f"collector-e2e-{os.getpid()}"
        self.proc: subprocess.Popen | None = None
        self.pid = 0

    def copy_root(self) -> None:
        subprocess.run(["cp", "-a", "--reflink=auto", CACHED_ROOT, str(self.root)], check=True)

    def boot(self) -> None:
        console = open(self.base / "console.log", "wb")
        self.proc = subprocess.Popen(
            [NSPAWN, "-D", str(self.root), "-M", self.name, "--register=no", "--keep-unit", "--boot",
             "--console=pipe", "-q"],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, cwd="/",
            env={"PATH": os.environ.get("PATH", PATH_IN), "LANG": "C.UTF-8"})
        console.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.pid:
            assert self.proc.poll() is None, f"systemd-nspawn exited: {self.console()}"
            self.pid = self._init_pid()
            time.sleep(0.1)
        assert self.pid, f"no systemd inside the container: {self.console()}"
        # the bus answers only once systemd is up: retry
        while time.monotonic() < deadline + 60:
            res = self.sh("systemctl", "is-system-running", "--wait", check=False, timeout=60)
            state = res.stdout.strip()
            if state in ("running", "degraded"):
                if state == "degraded":
                    log("system degraded: " + self.sh("systemctl", "--failed", "--no-legend", check=False).stdout)
                return
            time.sleep(0.5)
        raise AssertionError(f"the container did not finish booting: {state}\n{self.console()}")

    def _init_pid(self) -> int:
        """The container's PID 1 (systemd) as the host sees it: a child of systemd-nspawn, pid 1 inside."""
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                status = (d / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            if int(fields.get("PPid", "0")) == self.proc.pid and fields.get("NSpid", "").split()[-1:] == ["1"]:
                return int(d.name)
        return 0

    def console(self) -> str:
        try:
            return (self.base / "console.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def sh(self, *cmd: str, check: bool = True, timeout: float = 120, env: dict | None = None,
           input: str | None = None) -> subprocess.CompletedProcess:
        """Run a command inside the container with a clean environment (none of the host's pip/TLS settings)."""
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        res = subprocess.run(
            [NSENTER, "-t", str(self.pid), "-a", "env", "-i", f"PATH={PATH_IN}", "HOME=/root", "LANG=C.UTF-8",
             "TERM=dumb", "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", *extra, *cmd],
            capture_output=True, text=True, timeout=timeout, input=input, cwd="/")
        if check:
            assert res.returncode == 0, f"{' '.join(cmd)} -> {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        return res

    def show(self, unit: str, *props: str) -> dict[str, str]:
        args = [a for p in props for a in ("-p", p)]
        out = self.sh("systemctl", "show", *args, unit).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str, lines: int = 40) -> str:
        return self.sh("journalctl", "--no-pager", "-o", "short-monotonic", "-n", str(lines), "-u", unit,
                       check=False).stdout

    def psql(self, sql: str) -> str:
        return self.sh("runuser", "-u", "postgres", "--", "psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1",
                       "-d", "collector", "-c", sql).stdout.strip()

    def count(self, relation: str) -> int:
        return int(self.psql(f"SELECT count(*) FROM {relation}"))

    def poweroff(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None and self.pid:
            subprocess.run([NSENTER, "-t", str(self.pid), "-a", "systemctl", "poweroff"], capture_output=True,
                           timeout=30)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # systemd-nspawn halts the container on SIGTERM
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        shutil.rmtree(f"/run/systemd/nspawn/propagate/{self.name}", ignore_errors=True)


def _recap(output: str) -> dict[str, int]:
    m = re.search(r"^localhost\s*:\s*(.*)$", output, re.M)
    assert m, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def _wait(what: str, check, timeout: float, step: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)


def _start_sim(logfile: Path) -> tuple[subprocess.Popen, dict]:
    out = open(logfile, "wb")
    proc = subprocess.Popen([COLLECTOR, "sim", "--host", "127.0.0.1", "--port", "0", "--seed", "7", "--strikes", "8",
                             "--rate", "300"], stdout=subprocess.PIPE, stderr=out, cwd="/")
    out.close()
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    assert ready, "the simulator printed no URLs within 30 s"
    line = proc.stdout.readline()
    assert line, f"the simulator exited: {logfile.read_text()[-2000:]}"
    return proc, json.loads(line)


@pytest.fixture(scope="module")
def env():
    """Simulator, wheels, a booted container with ansible-core; torn down whatever happens."""
    t0 = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="collector-nspawn-", dir="/var/tmp"))
    box = Container(base)
    sim = None
    try:
        sim, urls = _start_sim(base / "sim.log")
        log(f"simulator: {urls['ws']}")

        deploy = box.root / "deploy"
        wheels = base / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(wheels), str(REPO)],
                       check=True, cwd=str(base), capture_output=True, timeout=600)
        try:
            ansible_req = f"ansible-core=={metadata.version('ansible-core')}"
        except metadata.PackageNotFoundError:
            ansible_req = "ansible-core"
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d",
                        str(base / "ansible-wheels"), ansible_req], check=True, cwd=str(base), capture_output=True,
                       timeout=600)
        log(f"wheels built and downloaded on the host in {time.monotonic() - t0:.0f}s")

        t1 = time.monotonic()
        box.copy_root()
        deploy.mkdir()
        shutil.copytree(wheels, deploy / "wheels")
        shutil.copytree(base / "ansible-wheels", deploy / "ansible-wheels")
        # the .deb is on the controller, i.e. inside: ansible runs there with -c local
        shutil.copy2(TIMESCALEDB_DEB, deploy / Path(TIMESCALEDB_DEB).name)
        # the playbook as the repository has it: ansible/ and systemd/ side by side
        shutil.copytree(REPO / "ansible", deploy / "src/ansible")
        shutil.copytree(REPO / "systemd", deploy / "src/systemd")
        # a shorter watchdog so that the SIGSTOP check takes seconds, not minutes (not managed by the playbook)
        dropin = box.root / "etc/systemd/system/ws-collector@.service.d"
        dropin.mkdir(parents=True)
        (dropin / "50-test-watchdog.conf").write_text(f"[Service]\nWatchdogSec={WATCHDOG_S}s\n")
        log(f"root copied in {time.monotonic() - t1:.0f}s")

        t2 = time.monotonic()
        box.boot()
        log(f"container booted in {time.monotonic() - t2:.1f}s (systemd pid {box.pid} on the host)")

        t3 = time.monotonic()
        box.sh("python3", "-m", "venv", "/opt/ansible")
        box.sh("/opt/ansible/bin/pip", "install", "-q", "--no-index", "--find-links", "/deploy/ansible-wheels",
               "ansible-core", timeout=300, env={"PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        log(f"ansible-core installed inside in {time.monotonic() - t3:.0f}s")

        variables = {
            "ansible_python_interpreter": "/usr/bin/python3",
            # Timescale's apt repository is not reachable here: TimescaleDB from the local .deb
            "collector_db_timescaledb": True,
            "collector_db_timescaledb_deb": f"/deploy/{Path(TIMESCALEDB_DEB).name}",
            # the container sees the host's memory; keep PostgreSQL's buffers small
            "collector_db_memory_mb": 1024, "collector_db_cpus": 2,
            "collector_wheel_dir": "/deploy/wheels", "collector_pip_offline": True,
            "collector_pip_find_links": ["/deploy/wheels"],
            "collector_currencies": CURRENCIES, "collector_ws_top_n": {"BTC": 10, "ETH": 10},
            "collector_deribit_ws_url": urls["ws"], "collector_deribit_rest_url": urls["rest"],
            "collector_env": {"OHLCV_CATCHUP_HORIZON": "15m", "FUNDING_CATCHUP_HORIZON": "2d",
                              "COLLECTOR_BATCH_MAX_AGE": "0.5"},
        }
        (deploy / "vars.json").write_text(json.dumps(variables))
        (deploy / "inventory.yml").write_text("collector:\n  hosts:\n    localhost:\n      ansible_connection: local\n")

        def play(tag: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
            t = time.monotonic()
            res = box.sh("/opt/ansible/bin/ansible-playbook", "-i", "/deploy/inventory.yml", "-e", "@/deploy/vars.json",
                         *args, "/deploy/src/ansible/deploy.yml", check=False, timeout=900,
                         env={"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_LOCALHOST_WARNING": "0",
                              "ANSIBLE_RETRY_FILES_ENABLED": "0"})
            took = time.monotonic() - t
            (base / f"ansible-{tag}.log").write_text(res.stdout + res.stderr)
            return res, took

        yield {"box": box, "play": play, "urls": urls, "base": base, "t0": t0, "state": {}}
    finally:
        t = time.monotonic()
        if box.proc is not None and box.proc.poll() is None and box.pid:
            # what the services said, for a failed run's report
            res = subprocess.run([NSENTER, "-t", str(box.pid), "-a", "journalctl", "--no-pager", "-o", "short-monotonic"],
                                 capture_output=True, text=True, timeout=60)
            (base / "journal.log").write_text(res.stdout)
        box.poweroff()
        if sim is not None:
            sim.terminate()
            try:
                sim.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sim.kill()
        keep = os.environ.get("COLLECTOR_NSPAWN_KEEP") == "1"
        if keep:
            shutil.rmtree(box.root, ignore_errors=True)
            log(f"logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
        log(f"cleaned up in {time.monotonic() - t:.0f}s; whole container test {time.monotonic() - t0:.0f}s")


@pytest.fixture(scope="module")
def deployed(env):
    """The first playbook run, services managed for real."""
    res, took = env["play"]("first")
    log(f"first playbook run: {took:.0f}s: {res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ''}")
    env["state"]["deployed_at"] = time.monotonic()
    env["state"]["first"] = res
    return env


def test_first_run_deploys_with_services_managed(deployed):
    res = deployed["state"]["first"]
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    recap = _recap(res.stdout)
    assert recap["failed"] == 0 and recap["changed"] > 0, recap


def test_postgresql_runs_under_systemd_with_the_roles_settings(deployed):
    box = deployed["box"]
    assert box.sh("systemctl", "is-active", "postgresql.service").stdout.strip() == "active"
    assert box.sh("systemctl", "is-enabled", "postgresql.service").stdout.strip() == "enabled"
    # the conf.d file of the role is in effect (the handler restarted the cluster through systemd)
    shared = box.sh("runuser", "-u", "postgres", "--", "psql", "-X", "-qAt", "-c", "SHOW shared_buffers").stdout.strip()
    assert shared == "256MB", shared
    # the collector's OS user reaches the database as the writer by peer authentication
    who = box.sh("runuser", "-u", "collector", "--", "psql", "-X", "-qAt", "-d", "collector", "-U", "collector_writer",
                 "-c", "SELECT current_user").stdout.strip()
    assert who == "collector_writer"


def test_timescaledb_from_the_local_deb_preloaded_and_hypertables(deployed):
    """The role's offline path: the .deb installed (no repository), preloaded, restarted before migrate."""
    box = deployed["box"]
    pkg = box.sh("dpkg-query", "-W", "-f", "${Status} ${Version}", "timescaledb-2-postgresql-15").stdout
    assert pkg.startswith("install ok installed ") and pkg.endswith("~collector1"), pkg
    for path in ("/etc/apt/sources.list.d/timescaledb.sources", "/etc/apt/keyrings/timescaledb.asc"):
        assert not (box.root / path.lstrip("/")).exists(), f"{path}: the local .deb path adds no repository"
    preload = box.psql("SHOW shared_preload_libraries")
    assert "timescaledb" in preload.split(","), preload
    # restarted, not only reloaded: nothing is waiting for a restart
    pending = box.psql("SELECT string_agg(name, ',') FROM pg_settings WHERE pending_restart")
    assert pending == "", pending
    version = box.psql("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    assert version == pkg.split()[-1].split("~")[0], (version, pkg)
    hypertables = set(box.psql("SELECT hypertable_name FROM timescaledb_information.hypertables "
                               "WHERE hypertable_schema = 'public'").split())
    log(f"timescaledb {version}; hypertables: {sorted(hypertables)}")
    missing = sorted(set(HYPERTABLES) - hypertables)
    assert not missing, f"not hypertables: {missing}; hypertables: {sorted(hypertables)}"


def test_ws_collectors_are_active_and_writing(deployed):
    box = deployed["box"]
    for cur in CURRENCIES:
        unit = f"ws-collector@{cur}.service"
        props = box.show(unit, "ActiveState", "SubState", "UnitFileState", "MainPID", "StatusText", "WatchdogUSec")
        log(f"{unit}: {props}")
        assert props["ActiveState"] == "active", box.journal(unit)
        assert box.sh("systemctl", "is-enabled", unit).stdout.strip() == "enabled"
        assert props["WatchdogUSec"] in (f"{WATCHDOG_S}s", str(WATCHDOG_S * 1_000_000)), props
    # rows arrive and keep arriving, for both currencies
    rels = [f"{cur.lower()}_option_quotes" for cur in CURRENCIES]
    before = {r: _wait(f"rows in {r}", lambda r=r: box.count(r), 60) for r in rels}
    after = _wait("more rows", lambda: (lambda c: c if all(c[r] > before[r] for r in rels) else None)(
        {r: box.count(r) for r in rels}), 60)
    log(f"quotes: {before} -> {after}")
    idx = _wait("index prices of both currencies", lambda: (lambda v: v if "btc_usd" in v and "eth_usd" in v else None)(
        box.psql("SELECT string_agg(DISTINCT index_name, ',' ORDER BY index_name) FROM index_prices") or ""), 60)
    log(f"index_prices: {idx}")


def test_watchdog_kills_a_hung_collector_and_systemd_restarts_it(deployed):
    box = deployed["box"]
    unit = "ws-collector@BTC.service"
    before = box.show(unit, "MainPID", "NRestarts")
    pid, restarts = int(before["MainPID"]), int(before["NRestarts"])
    assert pid > 0
    t = time.monotonic()
    box.sh("systemctl", "kill", "--kill-whom=main", "--signal=SIGSTOP", unit)
    assert box.show(unit, "MainPID")["MainPID"] == str(pid)

    def restarted():
        p = box.show(unit, "MainPID", "NRestarts", "ActiveState", "SubState")
        ok = int(p["NRestarts"]) == restarts + 1 and p["ActiveState"] == "active" and int(p["MainPID"]) not in (0, pid)
        return p if ok else None

    # watchdog 10 s, then SIGABRT (pending while stopped), SIGKILL after TimeoutAbortSec (= TimeoutStopSec 30 s),
    # RestartSec 5 s, READY=1 again
    after = _wait("the watchdog restart", restarted, WATCHDOG_S + 30 + 5 + 60)
    log(f"watchdog: pid {pid} (NRestarts {restarts}) stopped -> pid {after['MainPID']} NRestarts {after['NRestarts']} "
        f"after {time.monotonic() - t:.0f}s")
    journal = box.journal(unit, 80)
    assert re.search(r"[Ww]atchdog timeout", journal), journal
    # and it writes again
    n = box.count("btc_option_quotes")
    _wait("quotes after the restart", lambda: box.count("btc_option_quotes") > n, 60)


def test_rest_timer_fires_by_itself_and_its_job_writes(deployed):
    box = deployed["box"]

    def fired():
        t = box.show("rest-collector.timer", "LastTriggerUSec", "NextElapseUSecRealtime")
        s = box.show("rest-collector.service", "ActiveState", "Result", "ExecMainStatus", "ExecMainStartTimestamp",
                     "ExecMainExitTimestamp")
        # systemctl shows these as dates, "n/a" or "" when never
        if t["LastTriggerUSec"] not in ("", "n/a") and s["ActiveState"] != "activating" \
                and s["ExecMainExitTimestamp"] not in ("", "n/a"):
            return {**t, **s}
        return None

    props = _wait("rest-collector.timer to fire and its run to finish", fired, 150)
    log(f"rest-collector: {props}")
    assert props["Result"] == "success" and props["ExecMainStatus"] == "0", box.journal("rest-collector.service")
    counts = {r: box.count(r) for r in ("perpetuals_ohlcv", "futures_ohlcv", "options_ohlcv")}
    log(f"rest rows: {counts}")
    assert all(v > 0 for v in counts.values()), counts
    # every timer is enabled and scheduled
    for timer in TIMERS:
        t = box.show(timer, "ActiveState", "UnitFileState")
        assert t["ActiveState"] == "active" and t["UnitFileState"] == "enabled", (timer, t)

    def scheduled():
        out = box.sh("systemctl", "list-timers", "--no-pager", *TIMERS).stdout
        lines = {t: next((ln for ln in out.splitlines() if t in ln), "") for t in TIMERS}
        return out if all(ln and not ln.startswith(("n/a", "-")) for ln in lines.values()) else None

    # A timer that has elapsed gets its next time only when the run it started ends: depth.timer
    # (every 5 min) may just have started a depth run, which takes ~15-20 s here.
    log("list-timers:\n" + _wait("every timer to have a next time", scheduled, 60))


@pytest.mark.parametrize("service,relations", [
    ("depth.service", ["perpetuals_orderbook_depth", "btc_option_orderbook_depth", "eth_option_orderbook_depth"]),
    ("greeks.service", ["options_greeks"]),
    ("funding.service", ["funding_rates"]),
])
def test_slow_timers_jobs_run_under_their_units_and_write(deployed, service, relations):
    """depth (5 min), greeks (hourly), funding (8 h): started once by hand, as their timer would."""
    box = deployed["box"]
    t = time.monotonic()
    res = box.sh("systemctl", "start", service, check=False, timeout=600)
    props = box.show(service, "Result", "ExecMainStatus")
    log(f"{service}: {props} in {time.monotonic() - t:.1f}s")
    assert res.returncode == 0 and props["Result"] == "success", res.stderr + box.journal(service)
    counts = {r: box.count(r) for r in relations}
    log(f"{service} rows: {counts}")
    assert all(v > 0 for v in counts.values()), counts


def test_monitor_passes_once_every_job_has_written(deployed):
    box = deployed["box"]
    res = box.sh("systemctl", "start", "collector-monitor.service", check=False, timeout=180)
    assert res.returncode == 0, box.journal("collector-monitor.service", 80)


def test_second_run_changes_nothing(deployed):
    res, took = deployed["play"]("second")
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("localhost")), "")
    log(f"second playbook run: {took:.0f}s: {line}")
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    recap = _recap(res.stdout)
    assert recap["changed"] == 0 and recap["failed"] == 0, res.stdout[-6000:]
    # nothing was restarted by it
    for cur in CURRENCIES:
        assert deployed["box"].show(f"ws-collector@{cur}.service", "ActiveState")["ActiveState"] == "active"


def test_a_stale_relation_and_a_crash_looping_unit_each_alert_once(deployed):
    """The alerts under a real systemd: a receiver on the host's loopback (the container shares the
    network) set as the webhook through an extra EnvironmentFile= (collector.env, managed by the
    playbook, says COLLECTOR_ALERT_WEBHOOK= empty). A monitor made to fail twice: one message, from
    collector-alert@collector-monitor.service.service, with the failed check; the monitor passing:
    "resolved". A ws-collector@ that crashes at once: the start limit ends the loop in the failed state,
    one message with its journal's error line (the alert unit reads the journal)."""
    from tests.ops.test_alert import Receiver

    box = deployed["box"]
    rx = Receiver()
    env_file = box.root / "etc/collector/alert-test.env"
    etc = box.root / "etc/systemd/system"
    try:
        env_file.write_text(f"COLLECTOR_ALERT_WEBHOOK={rx.url}/hook\nCOLLECTOR_MAX_AGE=1d,funding_rates=1s\n")
        for unit in ("collector-monitor.service", "collector-alert@.service"):
            (etc / f"{unit}.d").mkdir(exist_ok=True)
            (etc / f"{unit}.d/50-test-alert.conf").write_text(
                "[Service]\nEnvironmentFile=/etc/collector/alert-test.env\n")
        crash = etc / "ws-collector@XRP.service.d"
        crash.mkdir(exist_ok=True)
        (crash / "50-test-crash.conf").write_text(
            "[Service]\nRestartSec=1s\nExecStart=\n"
            # <3>: journald stores the line at priority err (what `journalctl -p err` shows)
            "ExecStart=/bin/sh -c 'echo \"<3>test_crash: boom\" >&2; exit 1'\n")
        box.sh("systemctl", "daemon-reload")
        alert_unit = "collector-alert@collector-monitor.service.service"

        def alert_runs(unit: str) -> int:
            out = box.sh("journalctl", "-u", unit, "-o", "cat", "--no-pager", check=False).stdout
            return sum(1 for ln in out.splitlines() if '"alert_sent"' in ln or '"alert_suppressed"' in ln)

        def idle(unit: str) -> bool:
            return box.show(unit, "ActiveState")["ActiveState"] in ("inactive", "failed")

        for n in (1, 2):   # the stale relation, twice: one message
            res = box.sh("systemctl", "start", "collector-monitor.service", check=False, timeout=180)
            assert res.returncode != 0, box.journal("collector-monitor.service", 40)
            _wait(f"alert run {n} of the monitor", lambda: alert_runs(alert_unit) >= n and idle(alert_unit), 90)
        log(f"monitor alerts: {rx.got}")
        monitor_msgs = [b for _, b in rx.got if b["unit"] == "collector-monitor.service"]
        assert len(monitor_msgs) == 1, (rx.got, box.journal(alert_unit, 40))
        assert monitor_msgs[0]["event"] == "failure"
        assert any(c.startswith("funding_rates: newest row") for c in monitor_msgs[0]["checks"]), monitor_msgs
        assert any("Active:" in ln for ln in monitor_msgs[0]["status"]), monitor_msgs   # systemctl status lines

        env_file.write_text(f"COLLECTOR_ALERT_WEBHOOK={rx.url}/hook\nCOLLECTOR_MAX_AGE=1d\nCOLLECTOR_MAX_GAP=1d\n")
        res = box.sh("systemctl", "start", "collector-monitor.service", check=False, timeout=180)
        assert res.returncode == 0, box.journal("collector-monitor.service", 40)
        resolved = [b for _, b in rx.got if b["event"] == "resolved"]
        assert [b["unit"] for b in resolved] == ["collector-monitor.service"], rx.got

        unit = "ws-collector@XRP.service"
        box.sh("systemctl", "start", unit, check=False, timeout=60)
        props = _wait("the crash loop to end in the failed state", lambda: (lambda p: p if p["ActiveState"] == "failed"
                      else None)(box.show(unit, "ActiveState", "Result", "NRestarts")), 120)
        log(f"{unit}: {props}")
        assert int(props["NRestarts"]) >= 4, props        # restarted, then the start limit ended the loop
        assert "Start request repeated too quickly" in box.journal(unit, 40)
        xrp_alert = f"collector-alert@{unit}.service"
        _wait("the crash loop's alert", lambda: alert_runs(xrp_alert) >= 1 and idle(xrp_alert), 90)
        msgs = [b for _, b in rx.got if b["unit"] == unit]
        log(f"crash-loop alert: {msgs}")
        assert len(msgs) == 1, rx.got
        assert msgs[0]["checks"] == [f"{unit} entered the failed state"]
        assert any("test_crash" in ln for ln in msgs[0]["journal"]), msgs[0]   # read from the journal
        assert f"{rx.url}/hook" not in box.journal(xrp_alert, 40)   # the webhook URL is never logged
    finally:
        rx.close()
        for path in (etc / "collector-monitor.service.d/50-test-alert.conf",
                     etc / "collector-alert@.service.d/50-test-alert.conf",
                     etc / "ws-collector@XRP.service.d/50-test-crash.conf", env_file):
            path.unlink(missing_ok=True)
        box.sh("systemctl", "daemon-reload", check=False)
        box.sh("systemctl", "reset-failed", "ws-collector@XRP.service", check=False)


def test_stopping_the_target_stops_everything_cleanly(deployed):
    box = deployed["box"]
    t = time.monotonic()
    box.sh("systemctl", "stop", "collector.target", timeout=180)
    returned = time.monotonic() - t
    # The target is ordered after the units it wants (a target's default dependencies), so it stops
    # first and `systemctl stop` returns before the streams have finished flushing: wait for them.
    streams = [f"ws-collector@{cur}.service" for cur in CURRENCIES]
    _wait("the streams to stop", lambda: all(box.show(u, "ActiveState")["ActiveState"] in ("inactive", "failed")
                                             for u in streams), 60, step=0.2)
    log(f"systemctl stop collector.target returned after {returned:.1f}s; streams stopped after "
        f"{time.monotonic() - t:.1f}s")
    states = {}
    for unit in streams:
        p = box.show(unit, "ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
        states[unit] = p
        assert p["ActiveState"] == "inactive", (p, box.journal(unit))
        # exited by itself on SIGTERM with status 0 (CLD_EXITED=1), after flushing
        assert p["ExecMainStatus"] == "0" and p["ExecMainCode"] == "1" and p["Result"] == "success", \
            (p, box.journal(unit))
    for unit in ["collector.target", *TIMERS]:
        p = box.show(unit, "ActiveState")
        states[unit] = p
        assert p["ActiveState"] == "inactive", (unit, p)
    for unit in ONESHOTS:  # nothing still running (a monitor run that failed earlier may stay 'failed')
        p = box.show(unit, "ActiveState", "Result")
        states[unit] = p
        assert p["ActiveState"] in ("inactive", "failed"), (unit, p)
    for unit, p in states.items():
        log(f"after stop: {unit}: {p}")
    # nothing of the collector's is left running
    left = box.sh("find", "/proc", "-mindepth", "1", "-maxdepth", "1", "-user", "collector", check=False).stdout.strip()
    assert left == "", left
