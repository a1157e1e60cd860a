"""The stream's end-to-end ceiling, per-currency tables (this checkout) vs the layout before them (one
``option_quotes`` table with a currency column, ``(currency, timestamp)`` index, views per currency),
alternated in one run so that the machine's noise falls on both alike.

    git worktree add /tmp/old-layout fa0f5fd         # the layout before 0004 (remove it afterwards)
    .venv/bin/python bench/ws_layouts.py --old /tmp/old-layout [--rounds 2] [--engines plain,timescaledb]

Each round runs ``bench/ws_max.py --rate 0 --no-stages`` (this checkout's script and load generator)
once with the collector of ``--old`` (its process and its migrations: ``ws_max.py --code``) and once
with this checkout's, in the order old, new, old, new, ... per engine. Prints ws_max's lines prefixed
``ws_layout_{old|new}_{engine}_r{round}``, then the mean committed rows/s of each.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from harness import ENGINES, emit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", type=Path, required=True, help="source tree of the old layout (a git worktree)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--engines", default="plain", help=f"comma-separated, of {', '.join(ENGINES)}")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--currency", default="BTC")
    args = ap.parse_args()
    committed: dict[str, list[float]] = {}
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        for r in range(1, args.rounds + 1):
            for layout in ("old", "new"):
                prefix = f"ws_layout_{layout}_{engine}_r{r}"
                cmd = [sys.executable, str(ROOT / "bench" / "ws_max.py"), "--rate", "0", "--no-stages",
                       "--seconds", str(args.seconds), "--currency", args.currency, "--engine", engine,
                       "--prefix", prefix]
                if layout == "old":
                    cmd += ["--code", str(args.old.resolve())]
                out = subprocess.run(cmd, capture_output=True, text=True)
                for line in out.stdout.splitlines():
                    print(line, flush=True)
                    if line.startswith(f"{prefix}_msgs_per_s "):
                        committed.setdefault(f"{layout}_{engine}", []).append(float(line.split()[1]))
                if out.returncode != 0:
                    print(f"# {prefix}: ws_max exited {out.returncode}: {out.stderr.strip()[-600:]}", file=sys.stderr)
    for key, vals in committed.items():
        emit(f"ws_layout_{key}_mean_msgs_per_s", sum(vals) / len(vals), f"msg/s (of {len(vals)} runs)")


if __name__ == "__main__":
    main()
