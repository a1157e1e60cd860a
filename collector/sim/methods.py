"""The public JSON-RPC methods that read the market (shared by HTTP and WebSocket).

``call(market, method, params)`` returns the ``result`` or raises RpcError with Deribit's codes.
HTTP query values arrive as strings; they are coerced here like Deribit does. Parameters a method does
not take are ignored, as Deribit ignores them. ``currency=`` is what Deribit lists under: ``BTC``,
``ETH``, ``USDC`` (SOL, XRP, ... and ``BTC_USDC-...``), ``USDT``/``EURR`` (accepted, empty here), ``any``
where the exchange takes it; a base such as ``SOL`` is refused (-32602), as on Deribit.

What is modelled (REST and WebSocket alike; the session methods and channels: :mod:`collector.sim.server`)
===========================================  ==================================================================
method                                       modelled / not
===========================================  ==================================================================
``get_instruments``                          ``currency`` optional (none or ``any``: every instrument), ``kind``,
                                             ``expired``; objects as the real 2021 BTC and 2022 USDC listings
``get_instrument``, ``get_contract_size``    yes
``get_book_summary_by_currency``             ``currency`` required (no ``any``), ``kind``
``get_book_summary_by_instrument``           yes (live instruments)
``ticker``, ``get_order_book``               yes; ``depth`` in 1,5,10,20,50,100,1000,10000; closed tickers of
                                             expired instruments (``estimated_delivery_price: "expired"``)
``get_last_trades_by_instrument(_and_time)`` seq and time ranges, ``count`` 1..1000, ``sorting``, ``has_more``
``get_last_trades_by_currency(_and_time)``   ``kind`` incl. ``any``, ``start_id``/``end_id``; ``currency=any``
``get_tradingview_chart_data``               from the simulated trades; resolutions 1..720, 1D; ``no_data``
``get_funding_rate_history`` / ``_value``    hourly rows of the perpetual's own premium (linear ones too)
``get_index_price``, ``get_index_price_names``  ``btc_usd``, ``sol_usdc``, ``btc_usdc``...; ``extended``
``get_supported_index_names``                plain strings (the docs' example), ``type`` checked, not applied
``get_expirations``                          ``currency`` incl. ``any``/``grouped``; ``currency_pair`` ignored
``get_currencies``                           BTC, ETH, USDC (what settles; not SOL)
``get_time``, ``test``, ``hello``, ``status``  yes; ``test`` with ``expected_result=exception`` -> 11094
``private/*``                                13009 unauthorized
anything else                                -32601 Method not found (not modelled: ``get_combos``,
                                             ``get_combo_ids``, ``get_combo_details``, ``get_delivery_prices``,
                                             ``get_historical_volatility``, ``get_volatility_index_data``,
                                             ``get_last_settlements_*``, ``get_mark_price_history``,
                                             ``get_funding_chart_data``, ``get_order_book_by_instrument_id``,
                                             spot and combo instruments)
===========================================  ==================================================================

Errors: -32602 ``Invalid params`` with ``data: {reason, param}`` (an unknown instrument: ``instrument not
found``, as the production capture), -32601, 13009, 11094, and from the server 10028
``too_many_requests``, 11050 ``bad_request`` (unparsable, no ``id``), -32600, 13778 (``.raw``).
A missing parameter is -32602 ``must be present`` (the real code may be -32000 ``Missing params``: no
capture says which).
"""

from __future__ import annotations

import heapq

from collector.deribit.instruments import is_option, settlement_of
from collector.sim import views
from collector.sim.market import Inst, Market
from collector.sim.rules import RpcError, invalid
from collector.sim.universe import CurrencySpec, currency_spec

USDC_SPEC = CurrencySpec("USDC", 1.0, 0.0, 0.0001, 0.0001, 1.0, 0.0001, 1.0, 6, "USD Coin", "USDC")

VERSION = "1.2.26"
KINDS = ("future", "option", "spot", "future_combo", "option_combo")
TRADE_KINDS = KINDS + ("combo", "any")
DEPTHS = (1, 5, 10, 20, 50, 100, 1000, 10000)
EMPTY_CURRENCIES = ("USDT", "EURR")   # Deribit answers them; the simulator lists nothing under them


def _req(params: dict, name: str):
    val = params.get(name)
    if val is None or val == "":
        raise invalid(name, "must be present")
    return val


def _int(params: dict, name: str, default=None, required: bool = False):
    if required:
        _req(params, name)
    val = params.get(name, default)
    if val is None:
        return None
    try:
        if isinstance(val, bool):
            raise ValueError
        return int(val)
    except (TypeError, ValueError):
        raise invalid(name, "must be an integer") from None


def _bool(params: dict, name: str, default: bool = False) -> bool:
    val = params.get(name, default)
    if isinstance(val, bool):
        return val
    if str(val).lower() in ("true", "1"):
        return True
    if str(val).lower() in ("false", "0"):
        return False
    raise invalid(name, "must be a boolean")


def _currency(m: Market, params: dict, allow_any: bool = False, required: bool = True) -> list[str]:
    """The ``currency=`` values asked for: BTC, ETH, USDC (SOL's, XRP's, BTC_USDC-...), or all for
    ``any`` (and, where the exchange allows it, for none). A base that is listed under USDC (``SOL``)
    is no currency here, as on Deribit."""
    raw = params.get("currency")
    if not required and (raw is None or raw == ""):
        return list(m.settlements)
    cur = str(_req(params, "currency")).upper()
    if cur == "ANY" and allow_any:
        return list(m.settlements)
    if cur not in m.settlements and cur not in EMPTY_CURRENCIES:
        raise invalid("currency", "wrong format")
    return [cur]


def _kind(params: dict, allowed=KINDS) -> str | None:
    kind = params.get("kind")
    if kind in (None, "", "any"):
        return None
    if kind not in allowed:
        raise invalid("kind", "wrong format")
    return kind


def _instrument(m: Market, params: dict, live_only: bool = False) -> Inst:
    name = str(_req(params, "instrument_name"))
    inst = m.live.get(name) if live_only else m.find(name)
    if inst is None:
        raise invalid("instrument_name", "instrument not found")
    return inst


def _count(params: dict) -> int:
    count = _int(params, "count", 10)
    if not 1 <= count <= 1000:
        raise invalid("count", "must be between 1 and 1000")
    return count


def _sorting(params: dict) -> str:
    sorting = params.get("sorting") or "default"
    if sorting not in ("asc", "desc", "default"):
        raise invalid("sorting", "wrong format")
    return sorting


def _perp(m: Market, params: dict) -> Inst:
    inst = _instrument(m, params)
    if not inst.perp:
        raise invalid("instrument_name", "instrument not found")
    return inst


def get_instruments(m: Market, p: dict):
    kind = _kind(p)
    pool = m.expired.values() if _bool(p, "expired") else m.live.values()
    curs = _currency(m, p, allow_any=True, required=False)   # none or "any": every instrument
    return [dict(i.obj) for i in pool if i.settle in curs and (kind is None or i.kind == kind)]


def get_currencies(m: Market, p: dict):
    out = []
    for c in m.settlements:   # BTC, ETH, USDC: what settles (SOL is a base listed under USDC)
        spec = currency_spec(c) if c != "USDC" else USDC_SPEC
        out.append({"coin_type": spec.coin_type, "currency": c, "currency_long": spec.long_name,
                    "min_confirmations": 1, "min_withdrawal_fee": 0.0001, "withdrawal_fee": 0.0001,
                    "withdrawal_priorities": [], "network_currency": c, "network_fee": 0.0001,
                    "decimals": spec.decimals, "in_cross_collateral_pool": True})
    return out


def get_index_price(m: Market, p: dict):
    name = str(_req(p, "index_name"))
    c = m.index_names().get(name)
    if c is None:
        raise invalid("index_name", "wrong format")
    cs = m.cur[c]
    price = cs.px(cs.index)
    return {"index_price": price, "estimated_delivery_price": price}


def get_index_price_names(m: Market, p: dict):
    ext = _bool(p, "extended")
    out = []
    for name, c in m.index_names().items():
        row: dict = {"name": name}
        if ext and not m.cur[c].spec.linear:   # combos exist on BTC and ETH only
            row.update({"future_combo_creation_enabled": True, "option_combo_creation_enabled": True})
        out.append(row)
    return out


def get_tradingview_chart_data(m: Market, p: dict):
    inst = _instrument(m, p)
    start = _int(p, "start_timestamp", required=True)
    end = _int(p, "end_timestamp", required=True)
    res = str(_req(p, "resolution"))
    if res not in views.RESOLUTIONS:
        raise invalid("resolution", "wrong format")
    return views.chart(inst.trades, inst, start, end, views.RESOLUTIONS[res], m.now)


def get_book_summary_by_currency(m: Market, p: dict):
    curs, kind = _currency(m, p), _kind(p)
    return [views.book_summary(m, i) for i in list(m.live.values())
            if i.settle in curs and (kind is None or i.kind == kind)]


def get_book_summary_by_instrument(m: Market, p: dict):
    return [views.book_summary(m, _instrument(m, p, live_only=True))]


def ticker(m: Market, p: dict):
    return views.ticker(m, _instrument(m, p))


def get_order_book(m: Market, p: dict):
    inst = _instrument(m, p, live_only=True)
    depth = _int(p, "depth", 5)
    if depth not in DEPTHS:
        raise invalid("depth", "must be one of " + ", ".join(map(str, DEPTHS)))
    return views.order_book(m, inst, depth)


def get_funding_rate_history(m: Market, p: dict):
    inst = _perp(m, p)
    return views.funding_history(m, inst.cur, _int(p, "start_timestamp", required=True),
                                 _int(p, "end_timestamp", required=True))


def get_funding_rate_value(m: Market, p: dict):
    inst = _perp(m, p)
    return views.funding_value(m, inst.cur, _int(p, "start_timestamp", required=True),
                               _int(p, "end_timestamp", required=True))


def _trades_by_instrument(m: Market, p: dict, timed: bool):
    inst = _instrument(m, p)
    kw = dict(start_ts=_int(p, "start_timestamp", required=timed), end_ts=_int(p, "end_timestamp", required=timed),
              count=_count(p), sorting=_sorting(p))
    if not timed:
        kw.update(start_seq=_int(p, "start_seq"), end_seq=_int(p, "end_seq"))
    return views.select_trades(inst.trades, **kw)


def _trades_by_currency(m: Market, p: dict, timed: bool):
    curs, kind = _currency(m, p, allow_any=True), _kind(p, TRADE_KINDS)
    # each base's history is in time order; a currency= may span several bases (USDC: SOL, XRP, BTC_USDC)
    streams = [[t for t in m.cur_trades[c] if settlement_of(t["instrument_name"]) in curs
                and (kind is None or _trade_kind(m, t) == kind)] for c in m.cur_trades]
    streams = [s for s in streams if s]
    trades = streams[0] if len(streams) == 1 else list(heapq.merge(*streams, key=lambda t: t["timestamp"]))
    start_id, end_id = p.get("start_id"), p.get("end_id")
    if start_id or end_id:
        trades = [t for t in trades if (not start_id or _tid(t) >= _tid_s(start_id))
                  and (not end_id or _tid(t) <= _tid_s(end_id))]
    return views.select_trades(trades, start_ts=_int(p, "start_timestamp", required=timed),
                               end_ts=_int(p, "end_timestamp", required=timed), count=_count(p),
                               sorting=_sorting(p))


def get_supported_index_names(m: Market, p: dict):
    kind = p.get("type") or "all"
    if kind not in ("all", "spot", "derivative"):
        raise invalid("type", "wrong format")
    return list(m.index_names())   # plain strings, as in the docs' example


def get_expirations(m: Market, p: dict):
    """``{future: [...], option: [...]}`` of ``currency`` (``any``/``grouped`` too), Deribit's date codes."""
    raw = str(_req(p, "currency")).upper()
    curs = list(m.settlements) if raw in ("ANY", "GROUPED") else _currency(m, p)
    kind = p.get("kind") or "any"
    if kind not in ("future", "option", "any"):
        raise invalid("kind", "wrong format")
    out: dict[str, list[str]] = {}
    for k in ("future", "option"):
        if kind in (k, "any"):
            codes = {i.name.split("-")[1]: i.expiry for i in m.live.values() if i.kind == k and i.settle in curs}
            out[k] = sorted(codes, key=lambda c: codes[c])
    return out


def get_contract_size(m: Market, p: dict):
    return {"contract_size": _instrument(m, p).obj["contract_size"]}


def _tid_s(text) -> int:
    try:
        return int(str(text).rsplit("-", 1)[-1])
    except ValueError:
        raise invalid("start_id", "wrong format") from None


def _tid(t: dict) -> int:
    return int(t["trade_id"].rsplit("-", 1)[-1])


def _trade_kind(m: Market, t: dict) -> str:
    name = t["instrument_name"]
    return "option" if is_option(name) else "future"


HANDLERS = {
    "public/get_instruments": get_instruments,
    "public/get_instrument": lambda m, p: dict(_instrument(m, p).obj),
    "public/get_currencies": get_currencies,
    "public/get_index_price": get_index_price,
    "public/get_index_price_names": get_index_price_names,
    "public/get_tradingview_chart_data": get_tradingview_chart_data,
    "public/get_book_summary_by_currency": get_book_summary_by_currency,
    "public/get_book_summary_by_instrument": get_book_summary_by_instrument,
    "public/ticker": ticker,
    "public/get_order_book": get_order_book,
    "public/get_funding_rate_history": get_funding_rate_history,
    "public/get_funding_rate_value": get_funding_rate_value,
    "public/get_last_trades_by_instrument": lambda m, p: _trades_by_instrument(m, p, False),
    "public/get_last_trades_by_instrument_and_time": lambda m, p: _trades_by_instrument(m, p, True),
    "public/get_last_trades_by_currency": lambda m, p: _trades_by_currency(m, p, False),
    "public/get_last_trades_by_currency_and_time": lambda m, p: _trades_by_currency(m, p, True),
    "public/get_supported_index_names": get_supported_index_names,
    "public/get_expirations": get_expirations,
    "public/get_contract_size": get_contract_size,
    "public/get_time": lambda m, p: m.clock_ms(),
    "public/status": lambda m, p: {"locked_currencies": [], "locked": False},
    "public/hello": lambda m, p: {"version": VERSION},
}


def call(m: Market, method: str, params: dict):
    if method == "public/test":
        if params.get("expected_result") == "exception":
            raise RpcError(11094)
        return {"version": VERSION}
    handler = HANDLERS.get(method)
    if handler is None:
        if method.startswith("private/"):
            raise RpcError(13009)
        raise RpcError(-32601)
    return handler(m, params)
