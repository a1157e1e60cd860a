"""The public JSON-RPC methods that read the market (shared by HTTP and WebSocket).

``call(market, method, params)`` returns the ``result`` or raises RpcError with Deribit's codes.
HTTP query values arrive as strings; they are coerced here like Deribit does.
"""

from __future__ import annotations

from collector.deribit.instruments import is_option
from collector.sim import views
from collector.sim.market import Inst, Market
from collector.sim.rules import RpcError, invalid
from collector.sim.universe import currency_spec

VERSION = "1.2.26"
KINDS = ("future", "option", "spot", "future_combo", "option_combo")
TRADE_KINDS = KINDS + ("combo", "any")
DEPTHS = (1, 5, 10, 20, 50, 100, 1000, 10000)


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


def _currency(m: Market, params: dict, allow_any: bool = False) -> list[str]:
    cur = str(_req(params, "currency")).upper()
    if cur == "ANY" and allow_any:
        return list(m.cur)
    if cur not in m.cur:
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
    curs = _currency(m, p, allow_any=True)
    return [dict(i.obj) for i in pool if i.cur in curs and (kind is None or i.kind == kind)]


def get_currencies(m: Market, p: dict):
    out = []
    for c in m.cur:
        spec = currency_spec(c)
        out.append({"coin_type": spec.coin_type, "currency": c, "currency_long": spec.long_name,
                    "min_confirmations": 1, "min_withdrawal_fee": 0.0001, "withdrawal_fee": 0.0001,
                    "withdrawal_priorities": [], "network_currency": c, "network_fee": 0.0001,
                    "decimals": spec.decimals, "in_cross_collateral_pool": True})
    return out


def get_index_price(m: Market, p: dict):
    name = str(_req(p, "index_name"))
    for c, cs in m.cur.items():
        if cs.spec.index_name == name:
            price = round(cs.index, 2)
            return {"index_price": price, "estimated_delivery_price": price}
    raise invalid("index_name", "wrong format")


def get_index_price_names(m: Market, p: dict):
    ext = _bool(p, "extended")
    out = []
    for cs in m.cur.values():
        row: dict = {"name": cs.spec.index_name}
        if ext:
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
            if i.cur in curs and (kind is None or i.kind == kind)]


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
    trades: list[dict] = []
    for c in curs:
        trades.extend(t for t in m.cur_trades[c] if kind is None or _trade_kind(m, t) == kind)
    if len(curs) > 1:
        trades.sort(key=lambda t: t["timestamp"])
    start_id, end_id = p.get("start_id"), p.get("end_id")
    if start_id or end_id:
        trades = [t for t in trades if (not start_id or _tid(t) >= _tid_s(start_id))
                  and (not end_id or _tid(t) <= _tid_s(end_id))]
    return views.select_trades(trades, start_ts=_int(p, "start_timestamp", required=timed),
                               end_ts=_int(p, "end_timestamp", required=timed), count=_count(p),
                               sorting=_sorting(p))


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
