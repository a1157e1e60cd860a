-- 0003: TimescaleDB, when the extension is available (and preloaded); a no-op otherwise.
--   * every time-series table becomes a hypertable with 1-day chunks,
--   * compression segmented by instrument (index_name for index_prices), ordered by time, after 7 days,
--   * option_quotes_1h becomes a continuous aggregate refreshed every 30 minutes.
-- collector_timescaledb_setup() is idempotent; `collector db migrate` calls it on every run, so a
-- host that gets TimescaleDB after its first migration is converted on the next one.
--
-- Corrected in place (the one exception to append-only, see collector/store/migrate.py SUPERSEDED):
-- as first landed this file ended by calling collector_timescaledb_setup(), whose CREATE EXTENSION
-- raises a FATAL that ends the connection on a server where TimescaleDB is installed but not in
-- shared_preload_libraries. 0004 redefines the function with a preload check and migrate calls it.

CREATE OR REPLACE FUNCTION collector_timescaledb_setup() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    spec text[];
    specs text[] := ARRAY[
        ARRAY['index_prices', 'index_name'],
        ARRAY['perpetuals_ohlcv', 'instrument'],
        ARRAY['futures_ohlcv', 'instrument'],
        ARRAY['options_ohlcv', 'instrument'],
        ARRAY['options_greeks', 'instrument'],
        ARRAY['funding_rates', 'instrument'],
        ARRAY['option_quotes', 'instrument'],
        ARRAY['option_trades', 'instrument'],
        ARRAY['perpetuals_orderbook_depth', 'instrument'],
        ARRAY['option_orderbook_depth', 'instrument']];
    currencies text[];
    cur text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
            RETURN 'plain';
        END IF;
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'timescaledb is installed but could not be enabled (%); keeping plain tables', SQLERRM;
            RETURN 'plain';
        END;
    END IF;

    FOREACH spec SLICE 1 IN ARRAY specs LOOP
        IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                       WHERE hypertable_schema = current_schema() AND hypertable_name = spec[1]) THEN
            PERFORM create_hypertable(spec[1]::regclass, 'timestamp',
                                      chunk_time_interval => INTERVAL '1 day',
                                      create_default_indexes => false,
                                      migrate_data => true);
        END IF;
        IF NOT (SELECT compression_enabled FROM timescaledb_information.hypertables
                WHERE hypertable_schema = current_schema() AND hypertable_name = spec[1]) THEN
            EXECUTE format('ALTER TABLE %I SET (timescaledb.compress, timescaledb.compress_segmentby = %L, '
                           'timescaledb.compress_orderby = %L)', spec[1], spec[2], 'timestamp DESC');
        END IF;
        PERFORM add_compression_policy(spec[1]::regclass, INTERVAL '7 days', if_not_exists => true);
    END LOOP;

    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates
                   WHERE view_schema = current_schema() AND view_name = 'option_quotes_1h') THEN
        -- the plain view (and the per-currency views on it) make way for the continuous aggregate
        SELECT array_agg(upper(split_part(viewname, '_option_quotes_1h', 1))) INTO currencies
        FROM pg_views WHERE schemaname = current_schema() AND viewname LIKE '%\_option\_quotes\_1h';
        DROP VIEW IF EXISTS option_quotes_1h CASCADE;
        CREATE MATERIALIZED VIEW option_quotes_1h WITH (timescaledb.continuous) AS
        SELECT time_bucket(INTERVAL '1 hour', timestamp) AS hour,
               currency,
               instrument,
               first(best_bid_price, timestamp) AS bid_open,
               max(best_bid_price)              AS bid_high,
               min(best_bid_price)              AS bid_low,
               last(best_bid_price, timestamp)  AS bid_close,
               first(best_ask_price, timestamp) AS ask_open,
               max(best_ask_price)              AS ask_high,
               min(best_ask_price)              AS ask_low,
               last(best_ask_price, timestamp)  AS ask_close,
               count(*)                         AS quotes
        FROM option_quotes
        GROUP BY 1, 2, 3
        WITH NO DATA;
        PERFORM add_continuous_aggregate_policy('option_quotes_1h',
                                                start_offset => INTERVAL '1 day',
                                                end_offset => INTERVAL '1 hour',
                                                schedule_interval => INTERVAL '30 minutes',
                                                if_not_exists => true);
        FOREACH cur IN ARRAY coalesce(currencies, ARRAY['BTC', 'ETH']) LOOP
            PERFORM collector_ensure_currency(cur);
        END LOOP;
    END IF;
    RETURN 'timescaledb';
END $$;
