-- 0005: perpetual tick data, as the user's Docker collector records it today.
--
-- * perpetuals_quotes: every change of a perpetual's best bid/ask (or their sizes), from its ticker
--   channel, with the mark and index prices, the funding (funding_rate = the ticker's current_funding,
--   funding_8h) and the open interest. An unchanged ticker adds no row.
-- * perpetuals_trades: every trade of a perpetual, contiguous by trade_seq per instrument (gaps are
--   backfilled like the option trades).
-- * One pair of tables for every currency (the instrument says which: BTC-PERPETUAL, ETH-PERPETUAL,
--   SOL_USDC-PERPETUAL...), no currency column: the user's tables have none.
-- * With TimescaleDB each is a hypertable with 1-day chunks, compressed after 7 days, segmented by
--   instrument (collector_hypertable of 0004); without it, plain tables. collector_timescaledb_setup
--   is re-created with these two added, so a database migrated while TimescaleDB was not loaded
--   converts them too on the `collector db migrate` that finds it loaded.

SELECT collector_check_layout('perpetuals_quotes', ARRAY[
    'timestamp', 'instrument', 'best_bid_price', 'best_bid_amount', 'best_ask_price', 'best_ask_amount',
    'mark_price', 'index_price', 'funding_rate', 'funding_8h', 'open_interest']);
SELECT collector_check_layout('perpetuals_trades', ARRAY[
    'timestamp', 'instrument', 'trade_seq', 'trade_id', 'price', 'amount', 'direction', 'tick_direction',
    'index_price', 'mark_price', 'liquidation']);

CREATE TABLE IF NOT EXISTS perpetuals_quotes (
    timestamp       timestamptz      NOT NULL,   -- exchange time of the change
    instrument      text             NOT NULL,   -- e.g. 'BTC-PERPETUAL'
    best_bid_price  double precision,
    best_bid_amount double precision,
    best_ask_price  double precision,
    best_ask_amount double precision,
    mark_price      double precision,
    index_price     double precision,
    funding_rate    double precision,            -- the ticker's current_funding
    funding_8h      double precision,
    open_interest   double precision,
    CONSTRAINT perpetuals_quotes_key UNIQUE (instrument, timestamp)
);
CREATE INDEX IF NOT EXISTS perpetuals_quotes_timestamp_idx ON perpetuals_quotes (timestamp DESC);

CREATE TABLE IF NOT EXISTS perpetuals_trades (
    timestamp      timestamptz      NOT NULL,
    instrument     text             NOT NULL,
    trade_seq      bigint           NOT NULL,   -- contiguous per instrument
    trade_id       text             NOT NULL,   -- e.g. '388457352'
    price          double precision NOT NULL,
    amount         double precision NOT NULL,   -- USD for the inverse perpetuals, base currency for linear ones
    direction      text             NOT NULL,   -- taker side: buy | sell
    tick_direction smallint,
    index_price    double precision,
    mark_price     double precision,
    liquidation    text,
    CONSTRAINT perpetuals_trades_key UNIQUE (instrument, trade_seq, timestamp)
);
CREATE INDEX IF NOT EXISTS perpetuals_trades_timestamp_idx ON perpetuals_trades (timestamp DESC);

SELECT collector_hypertable('perpetuals_quotes', 'instrument');
SELECT collector_hypertable('perpetuals_trades', 'instrument', 'timestamp DESC, trade_seq DESC');

-- 0004's set-up, with the two tables above added (the rest unchanged).
CREATE OR REPLACE FUNCTION collector_timescaledb_setup() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    spec text[];
    specs text[] := ARRAY[
        ARRAY['index_prices', 'index_name', 'timestamp DESC'],
        ARRAY['perpetuals_ohlcv', 'instrument', 'timestamp DESC'],
        ARRAY['futures_ohlcv', 'instrument', 'timestamp DESC'],
        ARRAY['options_ohlcv', 'instrument', 'timestamp DESC'],
        ARRAY['options_greeks', 'instrument', 'timestamp DESC'],
        ARRAY['funding_rates', 'instrument', 'timestamp DESC'],
        ARRAY['perpetuals_orderbook_depth', 'instrument', 'timestamp DESC'],
        ARRAY['perpetuals_quotes', 'instrument', 'timestamp DESC'],
        ARRAY['perpetuals_trades', 'instrument', 'timestamp DESC, trade_seq DESC']];
    cur text;
    installed text;
    available text;
BEGIN
    IF NOT collector_timescaledb_active() THEN
        SELECT default_version INTO available FROM pg_available_extensions WHERE name = 'timescaledb';
        IF available IS NULL THEN
            RETURN 'plain';
        END IF;
        IF current_setting('shared_preload_libraries') !~ 'timescaledb' THEN
            -- CREATE EXTENSION would end the connection with a FATAL here: never try it
            RAISE WARNING 'TimescaleDB % is installed but not loaded: keeping plain tables', available
                USING HINT = 'add timescaledb to shared_preload_libraries in postgresql.conf '
                             '(shared_preload_libraries = ''timescaledb''), restart PostgreSQL '
                             '(systemctl restart postgresql), then run `collector db migrate` again: '
                             'it converts the tables with their data';
            RETURN 'plain';
        END IF;
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'TimescaleDB is loaded but this role may not create the extension (%): keeping plain tables', SQLERRM
                USING HINT = 'as a superuser: CREATE EXTENSION timescaledb; in this database, then run `collector db migrate` again';
            RETURN 'plain';
        END;
    END IF;
    SELECT e.extversion, a.default_version INTO installed, available
    FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname WHERE e.extname = 'timescaledb';
    IF installed IS DISTINCT FROM available THEN
        RAISE WARNING 'TimescaleDB % is installed in this database but % is available', installed, available
            USING HINT = 'update it as the first command of a new session: psql -X -d <database> -c '
                         '"ALTER EXTENSION timescaledb UPDATE" (see README, TimescaleDB)';
    END IF;
    FOREACH spec SLICE 1 IN ARRAY specs LOOP
        PERFORM collector_hypertable(spec[1], spec[2], spec[3]);
    END LOOP;
    FOR cur IN SELECT currency FROM collector_currencies ORDER BY 1 LOOP
        PERFORM collector_ensure_currency(cur);
    END LOOP;
    RETURN 'timescaledb';
END $$;
