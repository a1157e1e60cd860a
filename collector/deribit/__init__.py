"""Everything that speaks Deribit; nothing here knows the database.

* ``frames``     -- decode bytes, classify JSON-RPC frames (pure)
* ``parse``      -- notification data / REST results -> records (pure); ``parse_rest`` holds the REST-only ones,
                    ``fields`` the shared conversion rules
* ``instruments`` -- an instrument's kind from its name: option, perpetual, future, combo, spot (pure)
* ``sequence``   -- trade_seq gaps and book change_id chains (pure)
* ``pipeline``   -- the stream's core: notifications in, rows and continuity events out (pure)
* ``protocol``   -- JSON-RPC request builders, channel names, subscribe-result checks (pure)
* ``ratelimit``  -- the process-wide credit bucket; which answers mean "too many requests" (REST and WS)
* ``rest``       -- the REST client with its exception tree, retry policy and a typed helper per method
* ``paging``     -- the trade-history paging loops (by time, by sequence) on top of the REST client
* ``session``    -- the WebSocket session: connect, heartbeat, subscribe, reconnect (``wsconn``/``wsframes``
                    the socket and its frames)
"""
