"""Deribit JSON-RPC frames: bytes in, a classified frame out. Pure: no I/O, no logging, no clock.

``decode`` turns raw WS/HTTP text into Python objects (orjson); ``classify`` tells what a decoded
message is (API.md §2, §5.3):

* :class:`Notification` -- ``{"method": "subscription", "params": {"channel", "data"}}``
* :class:`Response`     -- has ``result`` or ``error``; ``id`` may be absent (HTTP GET, unparsable request)
* :class:`Heartbeat`    -- ``{"method": "heartbeat", "params": {"type": "heartbeat"|"test_request"}}``
* :class:`Unknown`      -- anything else, with a ``reason``; ``classify`` never raises.

``split_notification`` is the stream's fast path: it decodes only the envelope of a frame (msgspec, no
dict built) and returns the channel and the still-encoded ``data`` (a ``msgspec.Raw``) of a well-formed
notification, or None for anything else (which then goes through ``decode`` + ``classify``).

Key order never matters (real bodies start with ``usOut``) and unknown envelope keys are ignored.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from collector.errors import CollectorError

__all__ = [
    "ParseError", "DecodeError", "RpcError", "Notification", "Response", "Heartbeat", "Unknown",
    "Frame", "decode", "classify", "split_notification",
]


class ParseError(CollectorError, ValueError):
    """A message (or one item of it) lacks a required field or has a field of the wrong type.

    Raised by the parsers instead of a bare KeyError/TypeError; ``str(err)`` names the field. The caller
    counts these and logs the first one.
    """


class DecodeError(ParseError):
    """The frame is not valid JSON (truncated, binary garbage, empty)."""


class RpcError(msgspec.Struct, frozen=True, gc=False):
    """The ``error`` object of a response: ``{code, message, data?}``."""

    code: int
    message: str
    data: Any = None


class Notification(msgspec.Struct, frozen=True, gc=False):
    channel: str
    data: Any


class Response(msgspec.Struct, frozen=True, gc=False):
    """A reply to a request. Exactly one of ``result``/``error`` is meaningful (``error`` is None on success)."""

    id: int | str | None
    result: Any = None
    error: RpcError | None = None


class Heartbeat(msgspec.Struct, frozen=True, gc=False):
    """``type`` is ``"heartbeat"`` or ``"test_request"`` (the latter must be answered with public/test)."""

    type: str


class Unknown(msgspec.Struct, frozen=True, gc=False):
    """A message that is none of the above; ``reason`` says why (for a counted, logged-once error)."""

    reason: str
    message: Any = None


Frame = Notification | Response | Heartbeat | Unknown

_loads = orjson.loads


def decode(raw: bytes | bytearray | memoryview | str | msgspec.Raw) -> Any:
    """Decode one JSON frame. Raises :class:`DecodeError` (never orjson's own error) on bad input."""
    if type(raw) is msgspec.Raw:
        raw = memoryview(raw)
    try:
        return _loads(raw)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None


class _Params(msgspec.Struct, gc=False):
    channel: str = ""
    data: msgspec.Raw = msgspec.Raw()


class _Envelope(msgspec.Struct, gc=False):
    method: str = ""
    params: _Params | None = None


_envelope = msgspec.json.Decoder(_Envelope)


def split_notification(raw: bytes | bytearray | memoryview | str) -> tuple[str, msgspec.Raw] | None:
    """``(channel, encoded data)`` of a well-formed subscription notification; None for anything else
    (another kind of frame, invalid JSON, a malformed envelope). Never raises."""
    try:
        env = _envelope.decode(raw)
    except (msgspec.DecodeError, RecursionError):  # includes ValidationError; RecursionError: nested too deep
        return None
    params = env.params
    if env.method != "subscription" or params is None or not params.channel or not len(params.data):
        return None
    return params.channel, params.data


def _rpc_error(err: Any) -> RpcError | None:
    if not isinstance(err, dict):
        return None
    code = err.get("code")
    if type(code) is not int:
        return None
    message = err.get("message")
    return RpcError(code, message if isinstance(message, str) else "", err.get("data"))


def classify(msg: Any) -> Frame:
    """Classify a decoded message. Never raises: malformed input becomes :class:`Unknown`."""
    if type(msg) is not dict:
        return Unknown(f"not a JSON object: {type(msg).__name__}", msg)
    method = msg.get("method")
    if method == "subscription":
        params = msg.get("params")
        if type(params) is not dict:
            return Unknown("subscription without params object", msg)
        channel = params.get("channel")
        if type(channel) is not str or not channel:
            return Unknown("subscription without channel", msg)
        if "data" not in params:
            return Unknown("subscription without data", msg)
        return Notification(channel, params["data"])
    if method == "heartbeat":
        params = msg.get("params")
        kind = params.get("type") if type(params) is dict else None
        if type(kind) is not str:
            return Unknown("heartbeat without type", msg)
        return Heartbeat(kind)
    rid = msg.get("id")
    if rid is not None and type(rid) not in (int, str):
        return Unknown(f"response id of type {type(rid).__name__}", msg)
    if "error" in msg:
        err = _rpc_error(msg["error"])
        if err is None:
            return Unknown("malformed error object", msg)
        return Response(rid, None, err)
    if "result" in msg:
        return Response(rid, msg["result"], None)
    if method is not None:
        return Unknown(f"unexpected method {method!r}", msg)
    return Unknown("neither result, error nor method", msg)
