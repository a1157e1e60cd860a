"""Everything that speaks Deribit; nothing here knows the database.

* ``frames``     -- decode bytes, classify JSON-RPC frames (pure)
* ``parse``      -- notification data / REST results -> records (pure); ``parse_rest`` holds the REST-only ones,
                    ``fields`` the shared conversion rules
* ``sequence``   -- trade_seq gaps and book change_id chains (pure)
* ``protocol``   -- JSON-RPC request builders, channel names, subscribe-result checks (pure)
* ``ratelimit``  -- the process-wide credit bucket
* ``rest``       -- the REST client with its exception tree and retry policy
"""
