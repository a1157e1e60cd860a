"""The table of settings: each one's name, environment variable, kind, default, help and CLI flag.

The table *is* the :class:`~collector.config.Settings` dataclass: every field declared with
:func:`setting` carries its row in the field's metadata, and :func:`rows` reads them back in declaration
order. From the rows follow the validation (:meth:`Settings.load`), the click options (``cli.py``) and
the README's configuration table (:func:`markdown`, ``python -m collector.config --markdown``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

_KEY = "collector.setting"


@dataclass(frozen=True)
class Setting:
    name: str                       # the Settings field
    env: str                        # the environment variable
    kind: Any                       # a kind from collector.config_values: kind(var, raw) -> value
    default: Any
    help: str
    option: str | None = None       # the CLI flag, e.g. "--rest-url"; None: environment only
    commands: tuple[str, ...] = ()  # where the flag is offered: "" is `collector` itself, else a subcommand
    shown_default: str | None = None   # the default in words, when it is not one value
    per_currency: str | None = None    # a per-currency override of this one, e.g. "WS_{CUR}_TOP_N_INSTRUMENTS"
    group: str = ""                    # "ws": a knob of the stream (Settings.ws_options)
    aliases: tuple[str, ...] = ()      # other names read when `env` is unset: the Docker setup's, e.g. LOG_LEVEL

    @property
    def default_text(self) -> str:
        return self.shown_default if self.shown_default is not None else self.kind.show(self.default)

    @property
    def cli_name(self) -> str:
        """How a value given in code or on the command line is named in an error message."""
        return self.option or "--" + self.name.replace("_", "-")

    def env_for(self, currency: str) -> str:
        assert self.per_currency, self.name
        return self.per_currency.replace("{CUR}", currency)

    def cli_help(self) -> str:
        env = ", ".join((self.env, *((self.per_currency,) if self.per_currency else ()), *self.aliases))
        default = "" if self.default is None and self.shown_default is None else f"; default {self.default_text}"
        return f"{self.help[:1].upper()}{self.help[1:]} [{self.kind.brief}; env {env}{default}]."


def setting(default: Any, env: str, kind: Any, help: str, **more: Any) -> Any:
    """A Settings field and its row of the table (``more``: the optional columns of :class:`Setting`)."""
    return dataclasses.field(default=default, metadata={_KEY: {"env": env, "kind": kind, "help": help, **more}})


def rows(cls: type) -> tuple[Setting, ...]:
    """The table of a settings dataclass, in declaration order (fields without a row are skipped)."""
    return tuple(Setting(name=f.name, default=f.default, **f.metadata[_KEY])
                 for f in dataclasses.fields(cls) if _KEY in f.metadata)


def _option_text(row: Setting) -> str:
    if not row.option:
        return ""
    where = [c for c in row.commands if c]
    return f"`{row.option}`" + (f" ({', '.join(where)})" if where else "")


def _variable_text(row: Setting) -> str:
    text = f"`{row.per_currency}`, `{row.env}` (every currency)" if row.per_currency else f"`{row.env}`"
    if row.aliases:
        text += " (also " + ", ".join(f"`{a}`" for a in row.aliases) + ")"
    return text


def markdown(table: tuple[Setting, ...]) -> str:
    """The README's configuration table: one line per setting, without a trailing newline."""
    lines = ["| variable | option | default | allowed (a duration: 250ms, 30s, 5m, 8h, 7d or seconds) | meaning |",
             "|---|---|---|---|---|"]
    for row in table:
        if row.shown_default is not None:
            default = row.shown_default
        else:
            default = "—" if row.default is None else f"`{row.default_text}`"
        cells = [_variable_text(row), _option_text(row), default, row.kind.brief, row.help]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
