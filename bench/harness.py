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


def throwaway_db(tmp: Path, currencies: list[str], options: str = "") -> tuple[LocalCluster, str]:
    """A PostgreSQL cluster in ``tmp/pg`` with a migrated database ``bench``; returns (cluster, dsn)."""
    cluster = LocalCluster(tmp / "pg")
    cluster.start(options)
    dsn = cluster.create_database("bench")
    with psycopg.connect(dsn) as conn:
        migrate.migrate(conn, currencies)
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
