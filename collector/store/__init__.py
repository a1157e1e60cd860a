"""Everything that speaks PostgreSQL; nothing here knows Deribit.

* ``db``       -- connections and the one rule of which errors mean "the database went away"
* ``writer``   -- BatchStore: records -> binary COPY into a staging table -> INSERT … ON CONFLICT DO NOTHING,
                  routed to the per-currency tables; the spool while the database is away
* ``queue``    -- the stream's bounded in-memory queue in front of the writer
* ``spool``    -- fsync'd local segments for outages
* ``migrate``  -- the migration runner (sql/), TimescaleDB set-up, per-currency tables
* ``resume``   -- where catch-up jobs and a restarted stream resume
* ``status``   -- freshness of the relations and the collector_status rows
* ``localpg``  -- a local cluster for ``bin/run``
"""
