"""`bin/run`: the one-command local run. A database of its own when none is configured, the schema, then
every job (`collector run-all`) against Deribit -- or, with ``--sim``, against a local simulator.

    bin/run [--sim] [--for DURATION] [--keep-db] [--dir DIR]

* ``DATABASE_URL`` set: that database is used as it is (migrated first).
* Not set: a PostgreSQL cluster is created (initdb) and started under ``DIR/pg`` (default ``.local/`` in
  the project), listening on 127.0.0.1 only; as root its files belong to the ``postgres`` OS user. It is
  stopped when the run ends unless ``--keep-db`` (its data stays: the next run starts it again).
* ``--sim``: ``collector sim`` runs alongside and the collector is pointed at it (and, in the local
  cluster, at a database of its own, ``collector_sim``).
* ``--for 60s``: stop after that long; then ``collector db status`` is printed (exit 1 if stale).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

from collector.config import ConfigError, parse_duration, process_environment, setting_from

STATUS_LIMITS = ["--max-age", "10m", "--max-age", "funding_rates=9h", "--max-age", "options_greeks=2h"]


def _collector() -> str:
    return str(Path(sys.executable).parent / "collector")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bin/run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", action="store_true", help="run against a local simulator instead of Deribit")
    ap.add_argument("--for", dest="run_for", metavar="DURATION", help="stop after this long, then print db status")
    ap.add_argument("--keep-db", action="store_true", help="leave the local PostgreSQL running at the end")
    ap.add_argument("--dir", default=".local", help="where the local PostgreSQL cluster lives (default .local)")
    args = ap.parse_args(argv)
    if args.run_for:
        try:
            parse_duration(args.run_for)
        except ValueError:
            ap.error(f"--for: not a duration: {args.run_for!r} (e.g. 60s, 10m, 2h)")

    env = process_environment()   # handed to every process started here
    try:
        bindir = setting_from(env, "pg_bindir")
    except ConfigError as err:
        ap.error(str(err))
    cluster = None
    procs: list[subprocess.Popen] = []
    say = lambda msg: print(f"[run] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        if not env.get("DATABASE_URL"):
            from collector.store.localpg import LocalCluster

            cluster = LocalCluster(Path(args.dir).resolve() / "pg", bindir=bindir)
            fresh = not cluster.initialised()
            say(("creating" if fresh else "starting") + f" a local PostgreSQL cluster in {cluster.dir}")
            cluster.start()
            # simulated data never mixes with real data: --sim has a database of its own
            env["DATABASE_URL"] = cluster.create_database("collector_sim" if args.sim else "collector")
            say(f"DATABASE_URL={env['DATABASE_URL']}")
        env.setdefault("COLLECTOR_SPOOL_DIR", str(Path(args.dir).resolve() / "spool"))
        if args.sim:
            # the simulator lists what is recorded (SOL brings its USDC universe: XRP, BTC_USDC-PERPETUAL)
            currencies = ",".join(setting_from(env, "currencies"))
            sim = subprocess.Popen([_collector(), "sim", "--port", "0", "--seed", "1", "--strikes", "8",
                                    "--currencies", currencies], stdout=subprocess.PIPE, text=True, env=env)
            procs.append(sim)
            assert sim.stdout is not None  # stdout=PIPE
            line = sim.stdout.readline()
            if not line:
                say("the simulator did not start")
                return 1
            urls = json.loads(line)
            env["DERIBIT_WS_URL"], env["DERIBIT_REST_URL"] = urls["ws"], urls["rest"]
            # a small universe, so the hourly greeks pass fits in a short demo
            env.setdefault("DEPTH_OPTIONS_TOP_N", "20")
            say(f"simulator at {urls['ws']}")
        rc = subprocess.run([_collector(), "db", "migrate"], env=env).returncode
        if rc != 0:
            return rc
        cmd = [_collector(), "run-all"] + (["--for", args.run_for] if args.run_for else [])
        say("running: " + " ".join(cmd[1:]) + ("" if args.run_for else "  (Ctrl-C stops it)"))
        run = subprocess.Popen(cmd, env=env)
        procs.append(run)
        previous = {s: signal.signal(s, lambda signum, _f: run.send_signal(signum))
                    for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            rc = run.wait()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        say(f"collector run-all exited {rc}")
        status = subprocess.run([_collector(), "db", "status", *STATUS_LIMITS], env=env).returncode
        return rc or status
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        if cluster is not None and not args.keep_db:
            cluster.stop()
            say(f"local PostgreSQL stopped (data kept in {cluster.dir}; --keep-db leaves it running)")


if __name__ == "__main__":
    sys.exit(main())
