"""The root of every error the collector raises on purpose: ``except CollectorError`` catches them all.

Each error lives beside the code that raises it and hangs under :class:`CollectorError` (the ones that
were a ``ValueError`` or a ``RuntimeError`` still are)::

    CollectorError
    ├── ConfigError                 collector.config          a bad setting (also ValueError)
    ├── ParseError                  collector.deribit.frames  a message lacks a field (also ValueError)
    │   └── DecodeError                                       not JSON
    ├── DeribitError                collector.deribit.rest    a REST call failed (its own tree there:
    │                                                         TransportError, RateLimited, ...)
    ├── RpcFailed                   collector.deribit.session a WebSocket request answered with an error
    ├── ConnectionLost              collector.deribit.session the WebSocket went away before an answer
    ├── ConnectionClosed            collector.deribit.wsconn  the WebSocket connection is gone
    ├── ProtocolError               collector.deribit.wsframes  a frame breaks RFC 6455
    ├── MigrationError              collector.store.migrate   a migration cannot be applied (also RuntimeError)
    ├── SchemaMismatch              collector.store.writer    a table or column is missing (also RuntimeError)
    ├── SpoolFull                   collector.store.spool     the spool is at its size limit
    └── SpoolCorrupt                collector.store.spool     a spooled segment cannot be decoded

Which Deribit codes mean "too many requests" (REST and WebSocket alike) is decided once, in
:func:`collector.deribit.ratelimit.is_rate_limited`. This module imports nothing of ours, so every
layer may import it.
"""

from __future__ import annotations

__all__ = ["CollectorError"]


class CollectorError(Exception):
    """Raised on purpose by the collector (a bug is any other exception)."""
