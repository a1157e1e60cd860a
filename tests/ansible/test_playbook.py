"""The Ansible playbook: syntax, ansible-lint (production profile) and a real run on this machine.

The real run must not change this machine's own PostgreSQL or /opt, /etc: it targets a throwaway
PostgreSQL cluster (its own data directory, Unix socket only, configuration in the data directory the
way Debian keeps it in /etc/postgresql/V/main), puts the install paths (/opt/collector,
/etc/collector, /etc/systemd/system) under a temporary directory, installs the venv from wheels built
here (no index), runs as a throwaway system user, and leaves service management and the TimescaleDB
install off (no systemd as PID 1, no Timescale repository here). Then: a second run reports
changed=0, and --check --diff reports nothing to change.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = ROOT / "ansible"
BIN = Path(sys.executable).parent
PLAYBOOK = shutil.which("ansible-playbook", path=str(BIN)) or shutil.which("ansible-playbook")
LINT = shutil.which("ansible-lint", path=str(BIN)) or shutil.which("ansible-lint")
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))), None) \
    if Path("/usr/lib/postgresql").is_dir() else None
TEST_USER = "colltest"
READER_PASSWORD = "not-a-secret 'quoted' $x"

needs_ansible = pytest.mark.skipif(PLAYBOOK is None, reason="ansible-playbook not installed (pip install ansible-core: "
                                                            "the test extras of pyproject.toml)")


def _env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0",
            "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


@needs_ansible
def test_syntax_check():
    res = subprocess.run([PLAYBOOK, "--syntax-check", "-i", str(ANSIBLE_DIR / "inventory.example.yml"),
                          str(ANSIBLE_DIR / "deploy.yml")], capture_output=True, text=True, env=_env(), timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.skipif(LINT is None, reason="ansible-lint not installed (the test extras of pyproject.toml)")
def test_ansible_lint_production_profile():
    res = subprocess.run([LINT, "--offline", "--profile", "production", "--nocolor"], cwd=ANSIBLE_DIR,
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Profile 'production' was required, and it passed" in res.stdout + res.stderr


# --- the real run ------------------------------------------------------------------------------

def _run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=kw.pop("timeout", 120), **kw)
    assert res.returncode == 0, f"{cmd}: {res.stdout}{res.stderr}"
    return res


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recap(output: str) -> dict[str, int]:
    m = re.search(r"^localhost\s*:\s*(.*)$", output, re.M)
    assert m, output
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


@pytest.fixture(scope="module")
def deployment():
    """A throwaway cluster, wheels, variables; yields a function that runs the playbook."""
    if PLAYBOOK is None:
        pytest.skip("ansible-playbook not installed (the test extras of pyproject.toml)")
    if os.geteuid() != 0:
        pytest.skip("the real run creates a system user and runs commands as other users: run as root (CI does)")
    if PG_BIN is None or shutil.which("runuser") is None or shutil.which("psql") is None:
        pytest.skip("PostgreSQL server binaries, psql and runuser are needed (bin/setup installs postgresql)")
    try:
        subprocess.run(["/usr/bin/python3", "-c", "import packaging"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("/usr/bin/python3 lacks `packaging`, which Ansible's pip module needs (apt-get install python3-packaging)")
    try:
        pwd.getpwnam(TEST_USER)
        pytest.skip(f"the OS user {TEST_USER} exists already (a leftover of an earlier run? `userdel {TEST_USER}`)")
    except KeyError:
        pass

    base = Path(tempfile.mkdtemp(prefix="collector-ansible-"))
    base.chmod(0o755)  # the cluster runs as postgres, the migration as the test user: both pass through
    pgdata, sock = base / "pgdata", base / "sock"
    sock.mkdir()
    shutil.chown(sock, "postgres", "postgres")
    pgdata.mkdir(mode=0o700)
    shutil.chown(pgdata, "postgres", "postgres")
    port = _free_port()
    started = False
    try:
        _run("runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres",
             "--auth-local=peer", "--auth-host=reject", "-E", "UTF8", "--locale=C.UTF-8", cwd="/")
        # Debian's layout: postgresql.conf includes conf.d/
        (pgdata / "conf.d").mkdir()
        shutil.chown(pgdata / "conf.d", "postgres", "postgres")
        with open(pgdata / "postgresql.conf", "a") as f:
            f.write("include_dir = 'conf.d'\n")
        _run("runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(pgdata), "-l", str(sock / "pg.log"),
             "-o", f"-k {sock} -p {port} -c listen_addresses=127.0.0.1", "-w", "start", cwd="/")
        started = True

        wheels = base / "wheels"
        _run(sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(wheels), str(ROOT), cwd=str(base), timeout=600)

        url = f"postgresql:///collector?host={sock}&port={port}&user="
        extra = {
            "ansible_python_interpreter": "/usr/bin/python3",
            "collector_db_install_packages": False, "collector_db_timescaledb": False,
            "collector_db_manage_service": False, "collector_db_pg_conf_dir": str(pgdata),
            "collector_db_pg_socket_dir": str(sock), "collector_db_pg_port": port,
            "collector_db_peer_os_user": TEST_USER,
            "collector_user": TEST_USER, "collector_group": TEST_USER,
            "collector_prefix": str(base / "opt/collector"), "collector_config_dir": str(base / "etc/collector"),
            "collector_systemd_dir": str(base / "etc/systemd/system"),
            "collector_backup_dir": str(base / "var/backups/collector"),
            "collector_wheel_dir": str(wheels), "collector_pip_offline": True, "collector_pip_find_links": [str(wheels)],
            "collector_install_packages": False, "collector_manage_services": False,
            "collector_currencies": ["BTC", "ETH", "SOL"], "collector_ws_top_n": {"ETH": 0},
            "collector_database_url": url + "collector_writer", "collector_migrate_database_url": url + "collector_owner",
            "collector_monitor_on_failure": "notify-admin@%n.service",
            "collector_env": {"REST_OPTIONS_OHLCV_INTERVAL": "5m", "REST_PERPETUAL_INTERVAL": "5m",
                              "REST_FUTURES_INTERVAL": "15m", "FUNDING_INTERVAL": "4h"},
            "collector_db_reader_password": READER_PASSWORD, "collector_db_reader_networks": ["127.0.0.1/32"],
        }
        (base / "etc/systemd/system").mkdir(parents=True)
        (base / "vars.json").write_text(json.dumps(extra))
        (base / "inventory.yml").write_text("collector:\n  hosts:\n    localhost:\n      ansible_connection: local\n")

        def play(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [PLAYBOOK, "-i", str(base / "inventory.yml"), "-e", f"@{base / 'vars.json'}", *args,
                 str(ANSIBLE_DIR / "deploy.yml")],
                capture_output=True, text=True, env=_env(), timeout=300, cwd=str(base))

        yield {"play": play, "base": base, "sock": sock, "port": port, "vars": extra}
    finally:
        if started:
            subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(pgdata),
                            "-m", "immediate", "-w", "stop"], capture_output=True, cwd="/")
        subprocess.run(["userdel", TEST_USER], capture_output=True)
        subprocess.run(["groupdel", TEST_USER], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def runs(deployment):
    """First run, second run, --check --diff: their results, in order."""
    play = deployment["play"]
    t0 = time.monotonic()
    first = play()
    assert first.returncode == 0, first.stdout + first.stderr
    t1 = time.monotonic()
    second = play()
    t2 = time.monotonic()
    check = play("--check", "--diff")
    print(f"\nansible runs: first {t1 - t0:.1f}s, second {t2 - t1:.1f}s, check {time.monotonic() - t2:.1f}s")
    return {"first": first, "second": second, "check": check}


def psql(d, sql: str, user: str = "postgres", db: str = "collector") -> subprocess.CompletedProcess:
    """As the superuser, switched to a role with SET ROLE so that its rights are what is tested."""
    return subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1",
                           "-h", str(d["sock"]), "-p", str(d["port"]), "-d", db, "-c", sql],
                          capture_output=True, text=True, timeout=60, cwd="/")


def test_first_run_changes_things(runs):
    recap = _recap(runs["first"].stdout)
    print("first run:", recap)
    assert recap["failed"] == 0 and recap["unreachable"] == 0 and recap["changed"] > 0


def test_second_run_changes_nothing(runs):
    recap = _recap(runs["second"].stdout)
    print("second run:", recap)
    assert runs["second"].returncode == 0, runs["second"].stdout
    assert recap["changed"] == 0 and recap["failed"] == 0, runs["second"].stdout


def test_check_diff_after_a_run_changes_nothing(runs):
    recap = _recap(runs["check"].stdout)
    assert runs["check"].returncode == 0, runs["check"].stdout + runs["check"].stderr
    assert recap["changed"] == 0 and recap["failed"] == 0, runs["check"].stdout


def test_venv_is_versioned_and_current_is_a_symlink(runs, deployment):
    prefix = deployment["base"] / "opt/collector"
    current = prefix / "current"
    assert current.is_symlink()
    target = Path(os.readlink(current))
    assert target.parent == prefix and re.match(r"^\d+\.\d+", target.name)
    res = _run(str(current / "bin/collector"), "--version")
    assert target.name in res.stdout


def test_env_file_is_private_to_root_and_the_collector_group(runs, deployment):
    env = deployment["base"] / "etc/collector/collector.env"
    st = env.stat()
    assert st.st_mode & 0o777 == 0o640 and st.st_uid == 0
    import grp
    assert grp.getgrgid(st.st_gid).gr_name == TEST_USER
    text = env.read_text()
    assert "COLLECTOR_CURRENCIES=BTC,ETH,SOL\n" in text
    assert "WS_ETH_TOP_N_INSTRUMENTS=0\n" in text
    assert "DATABASE_URL=" + deployment["vars"]["collector_database_url"] + "\n" in text
    assert "COLLECTOR_MONITOR_ARGS=\n" in text     # the settings' limits (COLLECTOR_MAX_AGE)
    assert "COLLECTOR_ALERT_WEBHOOK=\n" in text and "COLLECTOR_ALERT_FORMAT=json\n" in text


def test_units_are_installed_with_the_install_paths(runs, deployment):
    units = deployment["base"] / "etc/systemd/system"
    names = {p.name for p in units.iterdir() if p.is_file()}
    assert names == {p.name for p in (ROOT / "systemd").iterdir() if p.suffix in (".service", ".timer", ".target")}
    ws = (units / "ws-collector@.service").read_text()
    assert f"ExecStart={deployment['base']}/opt/collector/current/bin/collector ws --currency %i" in ws
    assert f"EnvironmentFile={deployment['base']}/etc/collector/collector.env" in ws
    assert f"User={TEST_USER}\n" in ws
    drop_in = (units / "collector-monitor.service.d/on-failure.conf").read_text()
    assert "OnFailure=notify-admin@%n.service" in drop_in


def test_timer_cadences_follow_the_settings(runs, deployment):
    """REST_*_INTERVAL, GREEKS_INTERVAL, FUNDING_INTERVAL become the timers' OnCalendar= (drop-ins)."""
    units = deployment["base"] / "etc/systemd/system"

    def calendar(timer: str) -> list[str]:
        text = (units / f"{timer}.d/50-collector-cadence.conf").read_text()
        return re.findall(r"^OnCalendar=(.*)$", text, re.M)

    assert calendar("rest-collector.timer") == ["", "*-*-* *:00/5:00 UTC"]   # the shortest of the three
    assert calendar("funding.timer") == ["", "*-*-* 00/4:01:00 UTC"]
    assert calendar("greeks.timer") == ["", "*-*-* *:00:00 UTC"]           # the default


def test_migrated_through_peer_authentication(runs, deployment):
    assert "applied" in runs["first"].stdout or "migration" in runs["first"].stdout
    res = psql(deployment, "SELECT count(*) FROM schema_migrations")
    assert res.returncode == 0 and int(res.stdout) >= 1, res.stderr
    # the per-currency views of every configured currency
    res = psql(deployment, "SELECT to_regclass('sol_option_quotes') IS NOT NULL")
    assert res.stdout.strip() == "t"
    # the database and its tables belong to the owner role
    res = psql(deployment, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'collector'")
    assert res.stdout.strip() == "collector_owner"
    res = psql(deployment, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert res.stdout.split() == ["collector_owner"]


def test_the_collector_os_user_logs_in_as_writer_and_owner(runs, deployment):
    for role in ("collector_writer", "collector_owner"):
        res = subprocess.run(["runuser", "-u", TEST_USER, "--", "psql", "-X", "-qAt", "-h", str(deployment["sock"]),
                              "-p", str(deployment["port"]), "-U", role, "-d", "collector", "-c", "SELECT current_user"],
                             capture_output=True, text=True, timeout=60, cwd="/")
        assert res.returncode == 0 and res.stdout.strip() == role, res.stderr
    res = subprocess.run(["runuser", "-u", TEST_USER, "--", "psql", "-X", "-qAt", "-h", str(deployment["sock"]),
                          "-p", str(deployment["port"]), "-U", "postgres", "-d", "collector", "-c", "SELECT 1"],
                         capture_output=True, text=True, timeout=60, cwd="/")
    assert res.returncode != 0, "the collector's OS user must not get in as the superuser"


ROW = "INSERT INTO index_prices (timestamp, index_name, price) VALUES (now(), 'btc_usd', 1)"


@pytest.mark.parametrize("sql,role,allowed", [
    (ROW, "collector_writer", True),
    ("SELECT count(*) FROM eth_option_quotes", "collector_writer", True),
    ("INSERT INTO collector_status (job, timestamp, state) VALUES ('t', now(), 'running') "
     "ON CONFLICT (job) DO UPDATE SET state = EXCLUDED.state", "collector_writer", True),
    ("CREATE TEMP TABLE stage (LIKE btc_option_quotes INCLUDING DEFAULTS)", "collector_writer", True),
    ("SELECT time_bucket('1 hour', now())", "collector_writer", True),
    ("CREATE TABLE evil (x int)", "collector_writer", False),
    ("DELETE FROM index_prices", "collector_writer", False),
    ("UPDATE index_prices SET price = 2", "collector_writer", False),
    ("INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'x', 'x')", "collector_writer", False),
    ("DROP TABLE index_prices", "collector_writer", False),
    ("SELECT count(*) FROM btc_option_trades", "collector_reader", True),
    ("SELECT count(*) FROM btc_option_quotes_1h", "collector_reader", True),
    (ROW, "collector_reader", False),
    ("CREATE TABLE evil (x int)", "collector_reader", False),
])
def test_role_rights(runs, deployment, sql, role, allowed):
    res = psql(deployment, f"BEGIN; SET ROLE {role}; {sql}; ROLLBACK")
    assert (res.returncode == 0) == allowed, res.stderr


def test_reader_is_read_only_for_every_relation(runs, deployment):
    res = psql(deployment, """
        SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r','p','v','m')
          AND NOT has_table_privilege('collector_reader', c.oid, 'SELECT')""")
    assert res.returncode == 0 and res.stdout.strip() == "", res.stdout + res.stderr
    res = psql(deployment, """
        SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r','p')
          AND (has_table_privilege('collector_reader', c.oid, 'INSERT')
               OR has_table_privilege('collector_reader', c.oid, 'UPDATE')
               OR has_table_privilege('collector_reader', c.oid, 'DELETE'))""")
    assert res.returncode == 0 and res.stdout.strip() == "", res.stdout + res.stderr


def test_reader_logs_in_over_tcp_with_its_password(runs, deployment):
    """Set from the Vault variable as a SCRAM verifier; the second run left it alone (changed=0 above)."""
    def login(password: str) -> subprocess.CompletedProcess:
        return subprocess.run(["psql", "-X", "-qAt", "-h", "127.0.0.1", "-p", str(deployment["port"]),
                               "-U", "collector_reader", "-d", "collector", "-c", "SELECT current_user"],
                              capture_output=True, text=True, timeout=60, cwd="/",
                              env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"})
    ok = login(READER_PASSWORD)
    assert ok.returncode == 0 and ok.stdout.strip() == "collector_reader", ok.stderr
    assert login("wrong").returncode != 0
    # the writer has no TCP rule at all
    res = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(deployment["port"]), "-U", "collector_writer",
                          "-d", "collector", "-c", "SELECT 1"], capture_output=True, text=True, timeout=60, cwd="/",
                         env={**os.environ, "PGPASSWORD": "x", "PGCONNECT_TIMEOUT": "10"})
    assert res.returncode != 0
    for run in ("first", "second", "check"):
        assert READER_PASSWORD not in runs[run].stdout + runs[run].stderr


def test_no_backup_of_a_new_database_then_one_before_an_existing_database_is_migrated(runs, deployment):
    """Keep this test last: it changes the deployment. The first run migrated a new database (nothing to
    back up); then a migration is made pending again on the existing database: the next run dumps the
    database into the backup directory before it applies it."""
    backups = deployment["base"] / "var/backups/collector"
    assert backups.is_dir() and list(backups.iterdir()) == []
    assert "Back up the database before migrating it" in runs["first"].stdout   # the task was there, skipped
    res = psql(deployment, "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations) "
                           "RETURNING name")
    assert res.returncode == 0 and res.stdout.strip(), res.stderr
    again = deployment["play"]()
    assert again.returncode == 0, again.stdout + again.stderr
    (dump,) = backups.iterdir()
    assert re.fullmatch(r"collector-collector-\d{8}T\d{6}Z\.dump", dump.name) and dump.stat().st_size > 0
    assert dump.owner() == TEST_USER and dump.stat().st_mode & 0o077 == 0
    assert psql(deployment, f"SELECT count(*) FROM schema_migrations WHERE name = '{res.stdout.strip()}'").stdout.strip() == "1"
