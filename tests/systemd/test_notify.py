"""collector.systemd: sd_notify through the sdnotify package, on real datagram sockets."""

from __future__ import annotations

import os
import socket
import uuid

import pytest
import sdnotify

from collector.config import Settings, SystemdEnv
from collector.systemd import Notifier


class Receiver:
    """systemd's end of NOTIFY_SOCKET: a path, or a name in the abstract namespace."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2)

    def get(self) -> str:
        return self.sock.recv(65536).decode("utf-8")

    def nothing(self) -> bool:
        self.sock.settimeout(0.05)
        try:
            self.sock.recv(65536)
            return False
        except socket.timeout:
            return True

    def close(self) -> None:
        self.sock.close()


def test_without_notify_socket_everything_is_a_no_op():
    for env in ({}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "relative/path"}):
        n = Notifier(env)
        assert not n.enabled
        assert (n.ready("x"), n.status("x"), n.watchdog(), n.stopping()) == (False, False, False, False)
        n.close()


def test_messages_reach_a_path_socket(tmp_path):
    path = str(tmp_path / "notify")
    r = Receiver(path)
    n = Notifier({"NOTIFY_SOCKET": path})
    try:
        assert n.enabled
        assert n.ready("up: 3 channels")
        assert r.get() == "READY=1\nSTATUS=up: 3 channels"
        assert n.watchdog() and r.get() == "WATCHDOG=1"
        assert n.status("12 rows — ok, é") and r.get() == "STATUS=12 rows — ok, é"   # UTF-8, as systemd reads it
        assert n.stopping() and r.get() == "STOPPING=1"
    finally:
        n.close()
        r.close()


def test_messages_reach_an_abstract_socket():
    name = f"collector-test-{uuid.uuid4().hex}"
    r = Receiver(b"\0" + name.encode())
    n = Notifier({"NOTIFY_SOCKET": "@" + name})
    try:
        assert n.ready() and r.get() == "READY=1"
    finally:
        n.close()
        r.close()


def test_send_errors_never_raise_and_a_new_socket_is_found(tmp_path):
    path = str(tmp_path / "notify")
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.status("nobody listens yet") is False          # no socket: False, no exception
    r = Receiver(path)
    assert n.status("now") and r.get() == "STATUS=now"      # it appeared: delivered
    r.close()
    os.unlink(path)
    assert n.watchdog() is False                            # gone (systemd stopped): False, no exception
    r = Receiver(path)                                      # made anew (systemd re-executed): found again
    try:
        assert n.watchdog() and r.get() == "WATCHDOG=1"
    finally:
        n.close()
        r.close()


def test_the_sdnotify_package_sends(tmp_path, monkeypatch):
    sent = []
    real = sdnotify.SystemdNotifier.notify
    monkeypatch.setattr(sdnotify.SystemdNotifier, "notify", lambda self, state: sent.append(state) or real(self, state))
    path = str(tmp_path / "notify")
    r = Receiver(path)
    n = Notifier({"NOTIFY_SOCKET": path})
    try:
        assert n.ready() and r.get() == "READY=1"
        assert sent == ["READY=1"]
    finally:
        n.close()
        r.close()


@pytest.mark.parametrize("env,interval", [
    ({"WATCHDOG_USEC": "1000000"}, 0.5),
    ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}, 10.0),
    ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),   # another process's
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_interval_is_half_of_watchdog_usec(env, interval):
    assert Notifier(env).watchdog_interval_s == interval
    assert Notifier(SystemdEnv.load(env)).watchdog_interval_s == interval
    assert Notifier(Settings.load(env=env).systemd).watchdog_interval_s == interval


def test_default_is_this_process_environment(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    r = Receiver(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    n = Notifier()
    try:
        assert n.watchdog_interval_s == 2.0
        assert n.ready() and r.get() == "READY=1"
    finally:
        n.close()
        r.close()
