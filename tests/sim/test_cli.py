"""`collector sim --port 0` as a real subprocess: one JSON line, then it serves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def test_cli_prints_urls_and_serves():
    exe = Path(sys.executable).with_name("collector")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "collector.cli"]
    proc = subprocess.Popen([*cmd, "sim", "--host", "127.0.0.1", "--port", "0", "--seed", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        urls = json.loads(proc.stdout.readline())
        assert set(urls) == {"ws", "rest", "control"}
        assert urls["ws"].startswith("ws://127.0.0.1:") and urls["ws"].endswith("/ws/api/v2")
        r = requests.get(urls["rest"] + "/public/get_time", timeout=5)
        assert r.json()["result"] > 0
        assert requests.get(urls["control"] + "/stats", timeout=5).json()["live_instruments"] > 600
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        proc.stdout.close()
        proc.stderr.close()
