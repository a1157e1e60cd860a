"""A local Deribit for tests, benchmarks and the demo (`collector sim`).

Pure model: ``universe`` (calendar, names, instrument objects), ``pricing`` (Black-76 smile),
``book`` (levels and change_id), ``market`` + ``trades`` (the simulated market), ``views`` (Deribit-shaped
objects), ``channels`` (channel names and notification data), ``methods`` (public JSON-RPC methods),
``rules`` (credits, connection limit, error codes), ``clock``.
I/O: ``hub`` (subscriptions, tick, fan-out), ``session`` (one WS JSON-RPC session), ``server`` (the
socket: HTTP + WebSocket), ``control`` (/_sim ground truth and faults), ``runner`` (in a thread), ``cli``.
"""
