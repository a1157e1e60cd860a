"""What the benchmark scripts share: the output format, process CPU/memory from /proc, a throwaway
PostgreSQL cluster with the schema, and cleaning up. Not a benchmark itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from collector.store import migrate  # noqa: E402
from collector.store.localpg import LocalCluster  # noqa: E402

COLLECTOR = str(Path(sys.executable).parent / "collector")
TICK = os.sysconf("SC_CLK_TCK")


def emit(name: str, value: float, unit: str) -> None:
    """One figure: ``name value unit``."""
    print(f"{name} {value:.0f} {unit}" if abs(value) >= 100 else f"{name} {value:.3g} {unit}", flush=True)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def mem_mb(pid: int, key: str) -> float:
    """``VmRSS`` or ``VmHWM`` (peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


ENGINES = ("plain", "timescaledb")


def timescaledb_bindir() -> Path:
    """The bin/ of a PostgreSQL that carries TimescaleDB (``bin/timescaledb``: built once, cached)."""
    out = subprocess.run([str(ROOT / "bin" / "timescaledb")], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bin/timescaledb failed: {out.stderr.strip()[-500:]}")
    return Path(out.stdout.strip())


def cluster_for(directory: Path, engine: str = "plain") -> tuple[LocalCluster, str]:
    """A (not yet started) cluster of ``engine`` and the extra server options it needs. TimescaleDB's
    background jobs (compression, aggregate refresh) are left to the benchmark: it pauses them."""
    cluster = LocalCluster(directory)
    if engine == "plain":
        return cluster, ""
    if engine != "timescaledb":
        raise ValueError(f"engine {engine!r}: one of {', '.join(ENGINES)}")
    cluster.bindir = timescaledb_bindir()
    return cluster, "-c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"


def pause_timescaledb_jobs(conn: psycopg.Connection) -> int:
    """Stop the compression and refresh policies from running during a measurement; returns how many."""
    if not conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')").fetchone()[0]:
        return 0
    return len(conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs "
                            "WHERE proc_name IN ('policy_compression', 'policy_refresh_continuous_aggregate')")
               .fetchall())


def code_env(code: Path | None) -> dict[str, str]:
    """The environment that makes ``collector`` (its processes, its migrations) come from the source tree
    ``code`` (e.g. a git worktree of an older commit) instead of this checkout: PYTHONPATH comes before
    the editable install's finder."""
    return {**os.environ, "PYTHONPATH": str(code)} if code else dict(os.environ)


def throwaway_db(tmp: Path, currencies: list[str], options: str = "", engine: str = "plain",
                 name: str = "pg", code: Path | None = None) -> tuple[LocalCluster, str]:
    """A PostgreSQL cluster (``engine``: plain or timescaledb) in ``tmp/name`` with a migrated database
    ``bench``; returns (cluster, dsn). With TimescaleDB the policies are paused (see above). ``code``:
    migrate with the migrations of that source tree (see ``code_env``)."""
    cluster, engine_options = cluster_for(tmp / name, engine)
    cluster.start(f"{engine_options} {options}")
    dsn = cluster.create_database("bench")
    if code:
        script = ("import sys, psycopg; from collector.store import migrate; "
                  "migrate.migrate(psycopg.connect(sys.argv[1]), sys.argv[2].split(','))")
        subprocess.run([sys.executable, "-c", script, dsn, ",".join(currencies)], env=code_env(code), check=True,
                       cwd="/")
    with psycopg.connect(dsn) as conn:
        if not code:
            migrate.migrate(conn, currencies)
        pause_timescaledb_jobs(conn)
    return cluster, dsn


def stop_all(procs: list[subprocess.Popen], cluster: LocalCluster | None, tmp: Path) -> None:
    """Kill what is still running, stop the cluster, remove the temp directory."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    if cluster is not None:
        cluster.stop()
    shutil.rmtree(tmp, ignore_errors=True)
