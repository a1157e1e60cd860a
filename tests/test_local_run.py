"""The README's main-job command, `bin/run --sim --for 60s`, on a fresh clone: it sets itself up, makes a
PostgreSQL cluster of its own, records from the simulator for a minute and ends with every relation fresh."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from collector.store.status import relations_for

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bin_run_with_the_simulator_on_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "DERIBIT_", "COLLECTOR_", "WS_", "VIRTUAL_ENV", "PYTEST"))}
    env["SKIP_APT"] = "1"       # the system packages are the outer bin/setup's business here
    p = subprocess.run(["bin/run", "--sim", "--for", "60s"], cwd=clone, env=env, capture_output=True, text=True,
                       timeout=900)
    out = p.stdout
    assert p.returncode == 0, out[-3000:] + p.stderr[-3000:]
    table = out.split("relation", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert len(table) == len(relations_for(["BTC", "ETH"])), out   # 15 with the perpetuals' tick tables
    assert all(line.rstrip().endswith(" ok") for line in table), out
    assert "collector_sim" in p.stderr                    # the demo's own database, never the real one
    assert (clone / ".local" / "pg" / "data" / "PG_VERSION").exists()
