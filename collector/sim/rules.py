"""Deribit's limits and error codes, as small pure objects: RpcError, the credit bucket, the
per-address connection limit. The server consults them; they hold no I/O."""

from __future__ import annotations

from dataclasses import dataclass

MAX_FRAME = 32 * 1024

# code -> message, as Deribit spells them
MESSAGES = {
    10028: "too_many_requests",
    11050: "bad_request",
    11094: "internal_server_error",
    13009: "unauthorized",
    13028: "temporarily_unavailable",
    13778: "raw_subscriptions_not_available_for_unauthorized",
    -32600: "request entity too large",
    -32601: "Method not found",
    -32602: "Invalid params",
    -32700: "Parse error",
}


class RpcError(Exception):
    def __init__(self, code: int, data: dict | None = None, message: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.data = data
        self.message = message or MESSAGES.get(code, "error")

    def body(self) -> dict:
        err: dict = {"message": self.message, "code": self.code}
        if self.data is not None:
            err["data"] = self.data
        return err


def invalid(param: str, reason: str) -> RpcError:
    return RpcError(-32602, {"reason": reason, "param": param})


@dataclass
class CreditLimits:
    cost: int = 500
    capacity: int = 50_000
    refill_per_s: int = 10_000
    enabled: bool = True


class CreditBucket:
    """Leaky bucket of credits: each request costs ``cost``; refills continuously up to ``capacity``."""

    __slots__ = ("limits", "credits", "at")

    def __init__(self, limits: CreditLimits, now: float) -> None:
        self.limits = limits
        self.credits = float(limits.capacity)
        self.at = now

    def take(self, now: float) -> bool:
        if not self.limits.enabled:
            return True
        lim = self.limits
        self.credits = min(lim.capacity, self.credits + (now - self.at) * lim.refill_per_s)
        self.at = now
        if self.credits < lim.cost:
            return False
        self.credits -= lim.cost
        return True


class ConnectionLimiter:
    """At most ``limit`` simultaneous connections per client address (WS and HTTP alike)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[str, int] = {}

    def acquire(self, addr: str) -> bool:
        n = self.open.get(addr, 0)
        if self.limit and n >= self.limit:
            return False
        self.open[addr] = n + 1
        return True

    def release(self, addr: str) -> None:
        n = self.open.get(addr, 0) - 1
        if n <= 0:
            self.open.pop(addr, None)
        else:
            self.open[addr] = n
