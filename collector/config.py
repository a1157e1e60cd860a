"""One validated Settings object, built once from the environment and CLI options.

This module is the only reader of ``os.environ`` in the package. Every value is checked here; a bad
value raises :class:`ConfigError` whose text is one line naming the variable, the bad value and what is
allowed. The CLI turns that into exit code 2.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

DEFAULT_WS_URL = "wss://www.deribit.com/ws/api/v2"
DEFAULT_REST_URL = "https://www.deribit.com/api/v2"

_CURRENCY_RE = re.compile(r"^[A-Z0-9]{1,16}$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$", re.I)
_SIZE_UNITS = {
    "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3, "t": 1024**4, "tb": 1000**4, "tib": 1024**4,
}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(ValueError):
    """A configuration value is invalid. ``str(err)`` is the one-line message for the user."""

    def __init__(self, name: str, value: Any, allowed: str) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid {name}={value!r}: {allowed}")


def parse_duration(text: str) -> float:
    """``"90s"``, ``"5m"``, ``"1h30m"``, ``"8h"``, ``"2d"``, ``"250ms"`` or plain seconds -> seconds."""
    s = str(text).strip().lower().replace(" ", "")
    if not s:
        raise ValueError("empty duration")
    try:
        return float(s)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            raise ValueError(f"bad duration {text!r}")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"bad duration {text!r}")
    return total


def parse_size(text: str) -> int:
    """``"512MiB"``, ``"1G"``, ``"2000000"`` -> bytes."""
    m = _SIZE_RE.match(str(text).strip())
    if not m:
        raise ValueError(f"bad size {text!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])


def validate_currency(value: str, name: str = "currency") -> str:
    """Upper-cased currency code of letters/digits only; anything else is a ConfigError.

    Every currency passes through here before it is used anywhere, so no configuration value can
    reach SQL (or a channel name) as arbitrary text.
    """
    cur = str(value).strip().upper()
    if not _CURRENCY_RE.match(cur):
        raise ConfigError(name, value, "a currency is 1-16 letters or digits, e.g. BTC, ETH, SOL")
    return cur


@dataclass(frozen=True)
class Settings:
    """Everything the jobs need, validated. Build it with :meth:`load`."""

    database_url: str | None = None
    ws_url: str = DEFAULT_WS_URL
    rest_url: str = DEFAULT_REST_URL
    currencies: tuple[str, ...] = ("BTC", "ETH")
    # per currency: how many options the WS collector streams (0 = the whole chain)
    ws_top_n: Mapping[str, int] = field(default_factory=dict)
    ws_top_n_default: int = 50
    log_level: str = "INFO"
    # the store's batch writer
    spool_dir: Path = Path("spool")
    spool_max_bytes: int = 2 * 1024**3
    batch_rows: int = 5000
    batch_max_age_s: float = 1.0
    queue_max_rows: int = 200_000
    # REST jobs
    depth_top_n: int = 20
    depth_options_top_n: int = 0
    ohlcv_catchup_horizon_s: float = 7 * 86400.0
    funding_catchup_horizon_s: float = 30 * 86400.0
    greeks_interval_s: float = 3600.0
    rest_timeout_s: float = 10.0

    def top_n(self, currency: str) -> int:
        return self.ws_top_n.get(currency, self.ws_top_n_default)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError("DATABASE_URL", "", "set it (or --database-url) to a PostgreSQL URL, "
                              "e.g. postgresql://collector@localhost/collector")
        return self.database_url

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Build from ``env`` (default: ``os.environ``) then apply non-None CLI ``overrides``.

        Overrides use the field names (``database_url=...``); they win over the environment.
        """
        env = os.environ if env is None else env
        raw: dict[str, tuple[str, Any]] = {}  # field -> (variable name for messages, raw value)

        def take(fname: str, var: str) -> None:
            if overrides.get(fname) is not None:
                raw[fname] = ("--" + fname.replace("_", "-"), overrides[fname])
            elif env.get(var, "") != "":
                raw[fname] = (var, env[var])

        take("database_url", "DATABASE_URL")
        take("ws_url", "DERIBIT_WS_URL")
        take("rest_url", "DERIBIT_REST_URL")
        take("currencies", "COLLECTOR_CURRENCIES")
        take("log_level", "COLLECTOR_LOG_LEVEL")
        take("spool_dir", "COLLECTOR_SPOOL_DIR")
        take("spool_max_bytes", "COLLECTOR_SPOOL_MAX_BYTES")
        take("batch_rows", "COLLECTOR_BATCH_ROWS")
        take("batch_max_age_s", "COLLECTOR_BATCH_MAX_AGE")
        take("queue_max_rows", "COLLECTOR_QUEUE_MAX_ROWS")
        take("ws_top_n_default", "WS_TOP_N_INSTRUMENTS")
        take("depth_top_n", "DEPTH_TOP_N")
        take("depth_options_top_n", "DEPTH_OPTIONS_TOP_N")
        take("ohlcv_catchup_horizon_s", "OHLCV_CATCHUP_HORIZON")
        take("funding_catchup_horizon_s", "FUNDING_CATCHUP_HORIZON")
        take("greeks_interval_s", "GREEKS_INTERVAL")
        take("rest_timeout_s", "REST_TIMEOUT")

        values: dict[str, Any] = {}
        for fname, (var, value) in raw.items():
            values[fname] = _convert(fname, var, value)

        if "spool_dir" not in values:
            state = env.get("STATE_DIRECTORY")  # set by systemd's StateDirectory=
            values["spool_dir"] = Path(state.split(":")[0]) / "spool" if state else Path("spool")

        currencies = values.get("currencies", cls.currencies)
        top: dict[str, int] = {}
        for cur in currencies:
            var = f"WS_{cur}_TOP_N_INSTRUMENTS"
            if env.get(var, "") != "":
                top[cur] = _int(var, env[var], minimum=0)
        for cur, n in (overrides.get("ws_top_n") or {}).items():
            top[validate_currency(cur)] = _int("--top-n", n, minimum=0)
        values["ws_top_n"] = top
        return replace(cls(), **values)


def _int(var: str, value: Any, minimum: int = 0, maximum: int | None = None) -> int:
    allowed = f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ConfigError(var, value, allowed) from None
    if n < minimum or (maximum is not None and n > maximum):
        raise ConfigError(var, value, allowed)
    return n


def _duration(var: str, value: Any, minimum: float = 0.0) -> float:
    allowed = "a duration like 250ms, 30s, 5m, 8h, 7d (or seconds)" + (f", at least {minimum:g}s" if minimum else "")
    try:
        secs = value if isinstance(value, (int, float)) else parse_duration(value)
    except ValueError:
        raise ConfigError(var, value, allowed) from None
    if secs < minimum or secs != secs:
        raise ConfigError(var, value, allowed)
    return float(secs)


def _url(var: str, value: Any, schemes: tuple[str, ...]) -> str:
    s = str(value).strip()
    scheme = s.split("://", 1)[0].lower() if "://" in s else ""
    if scheme not in schemes or len(s) <= len(scheme) + 3:
        raise ConfigError(var, _redact(s), "a URL starting with " + " or ".join(f"{x}://" for x in schemes))
    return s


def _redact(url: str) -> str:
    """Hide a password in a URL before it appears in a message."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _convert(fname: str, var: str, value: Any) -> Any:
    if fname == "database_url":
        s = str(value).strip()
        if not (s.startswith(("postgresql://", "postgres://")) or "=" in s):
            raise ConfigError(var, _redact(s), "a PostgreSQL URL (postgresql://user@host:port/dbname) or a libpq 'key=value' string")
        return s
    if fname == "ws_url":
        return _url(var, value, ("ws", "wss"))
    if fname == "rest_url":
        return _url(var, value, ("http", "https")).rstrip("/")
    if fname == "currencies":
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        out: list[str] = []
        for item in items:
            if not str(item).strip():
                raise ConfigError(var, value, "a comma-separated list of currencies, e.g. BTC,ETH,SOL")
            try:
                cur = validate_currency(item, var)
            except ConfigError:
                raise ConfigError(var, value, f"{str(item).strip()!r} is not a currency: use 1-16 letters or digits "
                                  "per item, comma-separated, e.g. BTC,ETH,SOL") from None
            if cur not in out:
                out.append(cur)
        if not out:
            raise ConfigError(var, value, "at least one currency, e.g. BTC,ETH")
        return tuple(out)
    if fname == "log_level":
        s = str(value).strip().upper()
        if s not in _LOG_LEVELS:
            raise ConfigError(var, value, "one of " + ", ".join(_LOG_LEVELS))
        return s
    if fname == "spool_dir":
        s = str(value).strip()
        if not s or "\x00" in s:
            raise ConfigError(var, value, "a directory path")
        return Path(s)
    if fname == "spool_max_bytes":
        try:
            n = value if isinstance(value, int) else parse_size(value)
        except ValueError:
            raise ConfigError(var, value, "a size like 512MiB, 2GiB or bytes (at least 1MiB)") from None
        if n < 1024**2:
            raise ConfigError(var, value, "a size like 512MiB, 2GiB or bytes (at least 1MiB)")
        return n
    if fname == "batch_rows":
        return _int(var, value, minimum=1, maximum=1_000_000)
    if fname == "queue_max_rows":
        return _int(var, value, minimum=1, maximum=100_000_000)
    if fname in ("ws_top_n_default", "depth_options_top_n"):
        return _int(var, value, minimum=0)
    if fname == "depth_top_n":
        return _int(var, value, minimum=1, maximum=10_000)
    if fname == "batch_max_age_s":
        return _duration(var, value, minimum=0.001)
    if fname in ("ohlcv_catchup_horizon_s", "funding_catchup_horizon_s", "greeks_interval_s"):
        return _duration(var, value, minimum=60.0)
    if fname == "rest_timeout_s":
        return _duration(var, value, minimum=0.1)
    raise AssertionError(fname)  # pragma: no cover
