"""sd_notify: READY / STATUS / WATCHDOG / STOPPING for ``Type=notify`` units; a no-op without systemd.

The messages are sent by the ``sdnotify`` package to the datagram socket named by ``NOTIFY_SOCKET`` (a
path, or ``@name`` for the abstract namespace). ``WATCHDOG_USEC`` (set by systemd when the unit has
``WatchdogSec=``, for the process ``WATCHDOG_PID`` when that is set) tells how often the service must pet
the watchdog; :attr:`Notifier.watchdog_interval_s` is half of it. The environment is read by
:class:`collector.config.SystemdEnv`. Sending never raises: a notification that cannot be delivered is
not a reason to stop recording.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping

import sdnotify

from collector.config import SystemdEnv


class _Sender(sdnotify.SystemdNotifier):
    """sdnotify's sender, connected to the address :class:`SystemdEnv` read (sdnotify's own constructor
    reads ``NOTIFY_SOCKET`` itself) and raising on failure, so that :class:`Notifier` can tell a delivered
    message from a lost one (sdnotify swallows every error unless ``debug``)."""

    def __init__(self, address: str | bytes) -> None:  # noqa: D107 - replaces SystemdNotifier.__init__
        self.debug = True
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self.socket.connect(address)
        except OSError:
            self.socket.close()
            raise

    def send(self, text: str) -> None:
        # sdnotify encodes as Latin-1; systemd reads UTF-8: hand it the UTF-8 bytes spelled as Latin-1
        self.notify(text.encode("utf-8").decode("latin-1"))

    def close(self) -> None:
        self.socket.close()


class Notifier:
    def __init__(self, env: SystemdEnv | Mapping[str, str] | None = None) -> None:
        """``env``: what :meth:`SystemdEnv.load` read (``Settings.systemd``), or a mapping to read it from
        (tests); None reads this process's environment."""
        sd = env if isinstance(env, SystemdEnv) else SystemdEnv.load(env)
        self._addr: str | bytes | None = None
        if sd.notify_socket.startswith("@"):
            self._addr = b"\0" + sd.notify_socket[1:].encode()
        elif sd.notify_socket.startswith("/"):
            self._addr = sd.notify_socket
        self._sender: _Sender | None = None
        watchdog = sd.watchdog_usec is not None and (not sd.watchdog_pid or sd.watchdog_pid == str(os.getpid()))
        self.watchdog_interval_s: float | None = sd.watchdog_usec / 2e6 if watchdog and sd.watchdog_usec is not None else None

    @property
    def enabled(self) -> bool:
        return self._addr is not None

    def notify(self, *fields: str) -> bool:
        """Send one message (``fields`` joined by newlines); False when there is no systemd or it failed.
        A failed send is tried once more on a new connection (the socket may have been made anew)."""
        if self._addr is None:
            return False
        for _ in range(2):
            try:
                if self._sender is None:
                    self._sender = _Sender(self._addr)
                self._sender.send("\n".join(fields))
                return True
            except OSError:
                self.close()
        return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None
