"""One exception root: every error the collector raises on purpose is a CollectorError; the ones that were
a ValueError or a RuntimeError still are. The modules every layer imports import nothing of ours."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import collector
from collector import config_values
from collector.deribit import frames, rest, session, wsconn, wsframes
from collector.deribit.ratelimit import is_rate_limited
from collector.errors import CollectorError
from collector.store import migrate, spool, writer

TREE = [
    (frames.ParseError, ValueError),
    (frames.DecodeError, ValueError),
    (rest.DeribitError, None),
    (rest.TransportError, None),
    (rest.RateLimited, None),
    (rest.InstrumentNotFound, None),
    (wsconn.ConnectionClosed, None),
    (wsframes.ProtocolError, None),
    (migrate.MigrationError, RuntimeError),
    (writer.SchemaMismatch, RuntimeError),
    (spool.SpoolFull, None),
    (spool.SpoolCorrupt, None),
    (session.RpcFailed, None),
    (session.ConnectionLost, None),
    (config_values.ConfigError, ValueError),
]


@pytest.mark.parametrize("exc, also", TREE, ids=[e.__name__ for e, _ in TREE])
def test_every_error_hangs_under_collector_error(exc, also):
    assert issubclass(exc, CollectorError)
    if also is not None:
        assert issubclass(exc, also)


def test_rate_limit_codes_are_decided_once():
    assert is_rate_limited(10028) and is_rate_limited(10066) and is_rate_limited(http_status=429)
    assert not is_rate_limited(13028) and not is_rate_limited(None) and not is_rate_limited(http_status=503)
    assert isinstance(rest.error_from_body("public/ticker", {"code": 10028, "message": "too_many_requests"}, 200),
                      rest.RateLimited)


@pytest.mark.parametrize("module", ["errors.py", "backoff.py"])
def test_shared_modules_import_nothing_of_ours(module):
    tree = ast.parse((Path(collector.__file__).parent / module).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {n for n in names if n.startswith("collector")}
