"""The kinds of configuration value: each turns one raw value (text from the environment, or a CLI value)
into a checked one, or raises :class:`ConfigError` naming the variable and what is allowed.

Pure functions and small frozen objects: no environment, no I/O. :mod:`collector.config` declares which
setting has which kind.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.deribit.instruments import SETTLEMENT_CURRENCIES
from collector.errors import CollectorError

_CURRENCY_RE = re.compile(r"^[A-Z0-9]{1,16}$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$", re.I)
_SIZE_UNITS = {
    "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3, "t": 1024**4, "tb": 1000**4, "tib": 1024**4,
}


class ConfigError(CollectorError, ValueError):
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


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 604800 -> ``7d``, 900 -> ``15m``, 0.25 -> ``250ms``, 0 -> ``0``."""
    if seconds == 0:
        return "0"
    for unit in ("d", "h", "m", "s", "ms"):
        n = seconds / _DURATION_UNITS[unit]
        if n >= 1 and abs(n - round(n)) < 1e-9:
            return f"{round(n)}{unit}"
    return f"{seconds:g}s"


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
    if cur in SETTLEMENT_CURRENCIES:   # USDC is what SOL, XRP, ... settle in, not a base of its own
        raise ConfigError(name, value, f"{cur} is a settlement currency on Deribit: list the bases of its "
                                       "linear instruments instead (e.g. SOL, XRP)")
    return cur


def redact(url: str) -> str:
    """Hide a password in a URL before it appears in a message."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


# -- the kinds ------------------------------------------------------------------------------------
# Each: ``kind(var, raw) -> value`` (ConfigError on a bad one), ``allowed`` (for messages), ``brief`` (for
# the README), ``metavar`` (for --help) and ``show(value)`` (a value, spelled the way a user would write it).


@dataclass(frozen=True)
class Int:
    minimum: int = 0
    maximum: int | None = None
    metavar = "N"

    @property
    def allowed(self) -> str:
        return f"an integer >= {self.minimum}" + (f" and <= {self.maximum}" if self.maximum is not None else "")

    @property
    def brief(self) -> str:
        return f"integer {self.minimum}–{self.maximum}" if self.maximum is not None else f"integer ≥ {self.minimum}"

    def __call__(self, var: str, value: Any) -> int:
        try:
            n = int(str(value).strip())
        except ValueError:
            raise ConfigError(var, value, self.allowed) from None
        if n < self.minimum or (self.maximum is not None and n > self.maximum):
            raise ConfigError(var, value, self.allowed)
        return n

    def show(self, value: int) -> str:
        return str(value)


@dataclass(frozen=True)
class Duration:
    minimum: float = 0.0
    whole: bool = False        # whole seconds only (the value is an int)
    metavar = "DURATION"

    @property
    def allowed(self) -> str:
        return ("a duration like 250ms, 30s, 5m, 8h, 7d (or seconds)" + (", whole seconds" if self.whole else "")
                + (f", at least {format_duration(self.minimum)}" if self.minimum else ""))

    @property
    def brief(self) -> str:
        return ("duration" + (f" ≥ {format_duration(self.minimum)}" if self.minimum else "")
                + (", whole seconds" if self.whole else ""))

    def __call__(self, var: str, value: Any) -> float | int:
        try:
            secs = value if isinstance(value, (int, float)) and not isinstance(value, bool) else parse_duration(value)
        except ValueError:
            raise ConfigError(var, value, self.allowed) from None
        if secs < self.minimum or secs != secs or (self.whole and (math.isinf(secs) or secs != int(secs))):
            raise ConfigError(var, value, self.allowed)
        return int(secs) if self.whole else float(secs)

    def show(self, value: float) -> str:
        return format_duration(value)


@dataclass(frozen=True)
class Cadence:
    """How often a timer's job runs: whole minutes that divide an hour, or whole hours that divide a day,
    so that a systemd ``OnCalendar=`` (:func:`on_calendar`) and ``run-all``'s UTC-aligned schedule say the same."""

    metavar = "DURATION"
    allowed = ("a whole number of minutes dividing an hour (1m, 2m, 5m, 10m, 15m, 30m, … or 60, 300 seconds) "
               "or of hours dividing a day (1h, 2h, 3h, 4h, 6h, 8h, 12h, 24h)")
    brief = "duration: minutes dividing 1h, or hours dividing 1d"

    def __call__(self, var: str, value: Any) -> float:
        secs = Duration(minimum=60)(var, value)
        if not cadence_ok(secs):
            raise ConfigError(var, value, self.allowed)
        return float(secs)

    def show(self, value: float) -> str:
        return format_duration(value)


def cadence_ok(seconds: float) -> bool:
    if seconds != int(seconds) or seconds < 60:
        return False
    s = int(seconds)
    if s < 3600:
        return s % 60 == 0 and 3600 % s == 0
    return s % 3600 == 0 and 86400 % s == 0


def on_calendar(seconds: float, minute: int = 0) -> str:
    """The ``OnCalendar=`` of a cadence (see :class:`Cadence`), UTC; ``minute``: the minute past the hour
    for hourly and longer cadences (funding: 1, just after the 8-hourly funding time)."""
    if not cadence_ok(seconds):
        raise ValueError(f"not a cadence: {seconds!r} s")
    s = int(seconds)
    if s == 60:
        return "*-*-* *:*:00 UTC"
    if s < 3600:
        return f"*-*-* *:00/{s // 60}:00 UTC"
    if s == 3600:
        return f"*-*-* *:{minute:02d}:00 UTC"
    if s == 86400:
        return f"*-*-* 00:{minute:02d}:00 UTC"
    return f"*-*-* 00/{s // 3600}:{minute:02d}:00 UTC"


@dataclass(frozen=True)
class Size:
    minimum: int = 1024**2
    metavar = "SIZE"

    @property
    def allowed(self) -> str:
        return f"a size like 512MiB, 2GiB or bytes (at least {self.show(self.minimum)})"

    @property
    def brief(self) -> str:
        return f"size (512MiB, 2GiB, bytes) ≥ {self.show(self.minimum)}"

    def __call__(self, var: str, value: Any) -> int:
        try:
            n = value if isinstance(value, int) else parse_size(value)
        except ValueError:
            raise ConfigError(var, value, self.allowed) from None
        if n < self.minimum:
            raise ConfigError(var, value, self.allowed)
        return n

    def show(self, value: int) -> str:
        for unit in ("TiB", "GiB", "MiB", "KiB"):
            n = value / _SIZE_UNITS[unit.lower()]
            if n >= 1 and n == int(n):
                return f"{int(n)}{unit}"
        return str(value)


@dataclass(frozen=True)
class Url:
    schemes: tuple[str, ...]
    strip_slash: bool = False
    metavar = "URL"

    @property
    def allowed(self) -> str:
        return "a URL starting with " + " or ".join(f"{x}://" for x in self.schemes)

    @property
    def brief(self) -> str:
        return " or ".join(f"{x}://" for x in self.schemes) + " URL"

    def __call__(self, var: str, value: Any) -> str:
        s = str(value).strip()
        scheme = s.split("://", 1)[0].lower() if "://" in s else ""
        if scheme not in self.schemes or len(s) <= len(scheme) + 3:
            raise ConfigError(var, redact(s), self.allowed)
        return s.rstrip("/") if self.strip_slash else s

    def show(self, value: str) -> str:
        return value


@dataclass(frozen=True)
class DatabaseUrl:
    metavar = "URL"
    allowed = "a PostgreSQL URL (postgresql://user@host:port/dbname) or a libpq 'key=value' string"
    brief = "postgresql:// URL or libpq key=value string"

    def __call__(self, var: str, value: Any) -> str:
        s = str(value).strip()
        if not (s.startswith(("postgresql://", "postgres://")) or "=" in s):
            raise ConfigError(var, redact(s), self.allowed)
        return s

    def show(self, value: str | None) -> str:
        return value or "—"


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]
    metavar = "LEVEL"

    @property
    def allowed(self) -> str:
        return "one of " + ", ".join(self.choices)

    @property
    def brief(self) -> str:
        return ", ".join(self.choices[:-1]) + " or " + self.choices[-1]

    def __call__(self, var: str, value: Any) -> str:
        s = self._spelled(str(value).strip())
        if s not in self.choices:
            raise ConfigError(var, value, self.allowed)
        return s

    def _spelled(self, s: str) -> str:
        return s.upper()

    def show(self, value: str) -> str:
        return value


@dataclass(frozen=True)
class Currencies:
    metavar = "LIST"
    allowed = "a comma-separated list of currencies (1-16 letters or digits each), e.g. BTC,ETH,SOL"
    brief = "comma-separated, 1-16 letters or digits each"

    def __call__(self, var: str, value: Any) -> tuple[str, ...]:
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        out: list[str] = []
        for item in items:
            if not str(item).strip():
                raise ConfigError(var, value, "a comma-separated list of currencies, e.g. BTC,ETH,SOL")
            if str(item).strip().upper() in SETTLEMENT_CURRENCIES:
                validate_currency(item, var)   # raises: USDC is what SOL, XRP, ... settle in, not a base
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

    def show(self, value: tuple[str, ...]) -> str:
        return ",".join(value)


@dataclass(frozen=True)
class Directory:
    metavar = "DIR"
    allowed = brief = "a directory path"

    def __call__(self, var: str, value: Any) -> Path:
        s = str(value).strip()
        if not s or "\x00" in s:
            raise ConfigError(var, value, self.allowed)
        return Path(s)

    def show(self, value: Path | None) -> str:
        return str(value) if value is not None else "—"


@dataclass(frozen=True)
class Flag:
    metavar = "BOOL"
    allowed = "yes or no (also true/false, on/off, 1/0)"
    brief = "yes or no"

    def __call__(self, var: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in ("1", "yes", "true", "on"):
            return True
        if s in ("0", "no", "false", "off"):
            return False
        raise ConfigError(var, value, self.allowed)

    def show(self, value: bool) -> str:
        return "yes" if value else "no"


# -- the kinds of the health checks and the alerts ------------------------------------------------

_LIMIT_NAME_RE = re.compile(r"^[a-z0-9_*?]{1,80}$")


@dataclass(frozen=True)
class Limits:
    """``15m,*_quotes=5m,funding_rates=9h`` -> ``(("", 900.0), ("*_quotes", 300.0), ...)``: a duration per
    relation (a name or a glob), the bare one for every other relation. See :func:`limit_for`."""
    metavar = "LIST"
    allowed = ("a comma-separated list of DURATION (every relation) and RELATION=DURATION (RELATION: a name or "
               "a glob such as *_quotes), e.g. 15m,*_quotes=5m,funding_rates=9h")
    brief = "`[RELATION=]DURATION,…` (RELATION: a name or a glob)"

    def __call__(self, var: str, value: Any) -> tuple[tuple[str, float], ...]:
        if isinstance(value, tuple) and all(isinstance(x, tuple) for x in value):
            return value
        items = value if isinstance(value, list) else str(value).split(",")
        out: list[tuple[str, float]] = []
        for item in (str(x).strip() for x in items):
            if not item:
                continue
            name, sep, text = item.rpartition("=")
            name = name.strip().lower()
            try:
                secs = parse_duration(text)
            except ValueError:
                raise ConfigError(var, value, self.allowed) from None
            if sep and not _LIMIT_NAME_RE.match(name):
                raise ConfigError(var, value, self.allowed)
            out.append((name, float(secs)))
        return tuple(out)

    def show(self, value: tuple[tuple[str, float], ...]) -> str:
        return ",".join(f"{name}={format_duration(s)}" if name else format_duration(s) for name, s in value) or "—"


def limit_for(limits: tuple[tuple[str, float], ...], relation: str) -> float | None:
    """The limit of ``relation``: the last entry naming it (exactly or by glob), else the last bare one."""
    import fnmatch

    named = [s for name, s in limits if name and fnmatch.fnmatchcase(relation, name)]
    if named:
        return named[-1]
    bare = [s for name, s in limits if not name]
    return bare[-1] if bare else None


@dataclass(frozen=True)
class Text:
    metavar = "TEXT"
    allowed = "one line of text"
    brief = "text"

    def __call__(self, var: str, value: Any) -> str:
        s = str(value).strip()
        if "\n" in s or "\x00" in s:
            raise ConfigError(var, "…", self.allowed)
        return s

    def show(self, value: str) -> str:
        return value or "—"


@dataclass(frozen=True)
class SecretUrl(Url):
    """An http(s) URL that may carry a token (a webhook): :class:`Url`'s check, but an error message never
    shows the value, nor does ``show``."""
    schemes: tuple[str, ...] = ("http", "https")

    @property
    def brief(self) -> str:
        return super().brief + " (a secret: keep it in the env file)"

    def __call__(self, var: str, value: Any) -> str:
        try:
            return super().__call__(var, value)
        except ConfigError:
            raise ConfigError(var, "(hidden)", self.allowed) from None

    def show(self, value: str | None) -> str:
        return "—" if not value else "(set)"


@dataclass(frozen=True)
class Word(Choice):
    """One of a few lower-case names."""
    metavar = "NAME"

    def _spelled(self, s: str) -> str:
        return s.lower()
