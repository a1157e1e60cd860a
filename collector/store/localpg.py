"""A PostgreSQL cluster of the collector's own (initdb + pg_ctl), for benchmarks and the local run.

PostgreSQL refuses to run as root; as root the cluster's directory is handed to the ``postgres`` OS
user and the server runs as that user (``runuser``). The server listens on 127.0.0.1 and a Unix socket
inside the cluster directory only, on a port chosen free at start unless one is given. The server
programs are found by :func:`find_bindir` unless the caller names them (``PG_BINDIR``, read by
:mod:`collector.config`).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


class LocalPostgresError(RuntimeError):
    pass


def find_bindir(configured: Path | str | None = None) -> Path:
    """``configured`` when given; else the newest ``/usr/lib/postgresql/N/bin`` (Debian/Ubuntu), or the
    directory of ``pg_ctl`` on PATH."""
    if configured:
        return Path(configured)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_ctl") or shutil.which("initdb")
    if which:
        return Path(which).parent
    raise LocalPostgresError("PostgreSQL server binaries not found: install the `postgresql` package (bin/setup does)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    def __init__(self, directory: Path | str, port: int | None = None, user: str = "postgres",
                 bindir: Path | str | None = None) -> None:
        self.dir = Path(directory).resolve()
        self.datadir = self.dir / "data"
        self.port = port
        self.user = user  # the database superuser name
        self.bindir = find_bindir(bindir)
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        p = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
        if check and p.returncode != 0:
            raise LocalPostgresError(f"{' '.join(args[:2])} failed: {(p.stderr or p.stdout).strip()[-800:]}")
        return p

    def _hand_to_postgres(self) -> None:
        if not self.as_root:
            return
        subprocess.run(["chown", "-R", "postgres:", str(self.dir)], check=True)
        d = self.dir
        while d != d.parent:  # the server must be able to reach its directory
            try:
                os.chmod(d, os.stat(d).st_mode | 0o001)
            except PermissionError:
                pass
            d = d.parent

    def initialised(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        if self.initialised():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self._hand_to_postgres()
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user, "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C",
                  "--lc-collate=C")  # byte-order text keys: cheaper index inserts (bench/README.md)

    def running(self) -> bool:
        return self._run(str(self.bindir / "pg_ctl"), "status", "-D", str(self.datadir), check=False).returncode == 0

    def start(self, options: str = "") -> None:
        self.init()
        if self.running():
            pid_line = (self.datadir / "postmaster.pid").read_text().splitlines()
            self.port = int(pid_line[3])
            return
        self.port = self.port or free_port()
        self._hand_to_postgres()
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{self.dir}' "
                f"-c fsync=on -c max_wal_size=4GB {options}")
        self._run(str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.datadir),
                  "-l", str(self.dir / "postgresql.log"), "-o", opts)

    def stop(self, mode: str = "fast") -> None:
        if self.initialised() and self.running():
            self._run(str(self.bindir / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.datadir))

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise LocalPostgresError(f"PostgreSQL did not accept connections on port {self.port}")


def _has_c_utf8() -> bool:
    p = subprocess.run(["locale", "-a"], capture_output=True, text=True)
    return any(x.lower() in ("c.utf8", "c.utf-8") for x in p.stdout.split())
