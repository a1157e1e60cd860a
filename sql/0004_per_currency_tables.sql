-- 0004: the per-currency relations become real tables, as the user has them, and the TimescaleDB
-- set-up never strands a user.
--
-- * {cur}_option_quotes, {cur}_option_trades, {cur}_option_orderbook_depth are tables (no currency
--   column: the table says it), created by collector_ensure_currency(cur) for every configured
--   currency (`collector db migrate` calls it; adding SOL needs no DDL). Quotes carry the ticker's
--   greeks, last price, 24 h volume and implied_volatility (the user's name for the mark IV) too.
-- * With TimescaleDB each is a hypertable with 1-day chunks, compressed after 7 days, segmented by
--   instrument; {cur}_option_quotes_1h is a continuous aggregate (real-time: the newest hour is read
--   from the quotes). Without TimescaleDB the same names are plain tables and a plain view.
-- * The 0001-0003 layout (one table per kind with a currency column, views per currency) is
--   converted with every row kept, then its tables are dropped.
-- * collector_timescaledb_setup() checks shared_preload_libraries before CREATE EXTENSION (which
--   otherwise ends the connection with a FATAL) and warns, naming the setting and the restart.

CREATE TABLE IF NOT EXISTS collector_currencies (
    currency text        PRIMARY KEY CHECK (currency ~ '^[A-Z0-9]{1,16}$'),
    added_at timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION collector_timescaledb_active() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') $$;

-- A table of ours becomes a compressed hypertable (1-day chunks, compressed after 7 days, segmented
-- by `segmentby`, ordered by `orderby`: every column of the unique key is in one of the two, so a
-- write into a compressed chunk checks its conflicts cheaply). Idempotent; a no-op without
-- TimescaleDB. Rows already there move into chunks (migrate_data).
CREATE OR REPLACE FUNCTION collector_hypertable(tbl text, segmentby text, orderby text DEFAULT 'timestamp DESC')
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT collector_timescaledb_active() THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_schema = current_schema() AND hypertable_name = tbl) THEN
        PERFORM create_hypertable(tbl::regclass, 'timestamp', chunk_time_interval => INTERVAL '1 day',
                                  create_default_indexes => false, migrate_data => true);
    END IF;
    IF NOT (SELECT compression_enabled FROM timescaledb_information.hypertables
            WHERE hypertable_schema = current_schema() AND hypertable_name = tbl) THEN
        EXECUTE format('ALTER TABLE %I SET (timescaledb.compress, timescaledb.compress_segmentby = %L, '
                       'timescaledb.compress_orderby = %L)', tbl, segmentby, orderby);
    END IF;
    PERFORM add_compression_policy(tbl::regclass, INTERVAL '7 days', if_not_exists => true);
END $$;

-- Refuse a same-named table of another layout (e.g. the user's current database): nothing is changed.
CREATE OR REPLACE FUNCTION collector_check_layout(tbl text, wanted text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    kind    "char";
    missing text[];
BEGIN
    SELECT c.relkind INTO kind FROM pg_class c
    WHERE c.relname = tbl AND c.relnamespace = current_schema()::regnamespace;
    IF kind IS NULL THEN
        RETURN;
    END IF;
    SELECT array_agg(w) INTO missing FROM unnest(wanted) AS w
    WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                      WHERE a.attrelid = (quote_ident(current_schema()) || '.' || quote_ident(tbl))::regclass
                        AND a.attname = w AND a.attnum > 0 AND NOT a.attisdropped);
    IF kind NOT IN ('r', 'p') OR missing IS NOT NULL THEN
        RAISE EXCEPTION 'relation % already exists with another layout (%): it was not made by the collector',
                        tbl, CASE WHEN kind NOT IN ('r', 'p') THEN 'not a table'
                                  ELSE 'no column ' || array_to_string(missing, ', ') END
            USING HINT = 'Point DATABASE_URL at a database of its own for the collector (the data of another '
                         'collector is copied over by an import, never migrated in place), or rename that table.';
    END IF;
END $$;

-- {cur}_option_quotes_1h: hourly open/high/low/close of bids and asks per instrument. A continuous
-- aggregate with TimescaleDB (refreshed every 30 minutes, real-time for the newest hour), else a view.
CREATE OR REPLACE FUNCTION collector_quotes_1h(cur text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    q text := lower(cur) || '_option_quotes';
    v text := lower(cur) || '_option_quotes_1h';
    body text := 'SELECT %s(INTERVAL ''1 hour'', timestamp) AS hour, instrument, '
                 '%s(best_bid_price, timestamp) AS bid_open, max(best_bid_price) AS bid_high, '
                 'min(best_bid_price) AS bid_low, %s(best_bid_price, timestamp) AS bid_close, '
                 '%s(best_ask_price, timestamp) AS ask_open, max(best_ask_price) AS ask_high, '
                 'min(best_ask_price) AS ask_low, %s(best_ask_price, timestamp) AS ask_close, '
                 'count(*) AS quotes FROM %I GROUP BY 1, 2';
BEGIN
    IF collector_timescaledb_active() THEN
        IF EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates
                   WHERE view_schema = current_schema() AND view_name = v) THEN
            RETURN;
        END IF;
        EXECUTE format('DROP VIEW IF EXISTS %I', v);  -- the plain view made before TimescaleDB was enabled
        EXECUTE format('CREATE MATERIALIZED VIEW %I WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS '
                       || body || ' WITH NO DATA', v, 'time_bucket', 'first', 'last', 'first', 'last', q);
        PERFORM add_continuous_aggregate_policy(v::regclass, start_offset => NULL, end_offset => INTERVAL '1 hour',
                                                schedule_interval => INTERVAL '30 minutes', if_not_exists => true);
    ELSE
        EXECUTE format('CREATE OR REPLACE VIEW %I AS ' || body, v, 'collector_compat.time_bucket',
                       'collector_compat.first', 'collector_compat.last', 'collector_compat.first',
                       'collector_compat.last', q);
    END IF;
END $$;

-- The three tables of a currency (+ its hourly aggregate); idempotent.
CREATE OR REPLACE FUNCTION collector_ensure_currency(cur text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c text := upper(cur);
    p text := lower(cur);
    depth_cols text[] := ARRAY['timestamp', 'instrument', 'change_id', 'depth', 'bid_prices', 'bid_amounts',
                               'ask_prices', 'ask_amounts', 'best_bid_price', 'best_ask_price', 'mark_price',
                               'index_price'];
BEGIN
    IF c !~ '^[A-Z0-9]{1,16}$' THEN
        RAISE EXCEPTION 'invalid currency %: letters and digits only', cur;
    END IF;
    PERFORM collector_check_layout(p || '_option_quotes', ARRAY[
        'timestamp', 'instrument', 'best_bid_price', 'best_bid_amount', 'best_ask_price', 'best_ask_amount',
        'mark_price', 'mark_iv', 'bid_iv', 'ask_iv', 'underlying_price', 'underlying_index', 'index_price',
        'open_interest', 'delta', 'gamma', 'vega', 'theta', 'rho', 'last_price', 'volume_24h',
        'implied_volatility']);
    PERFORM collector_check_layout(p || '_option_trades', ARRAY[
        'timestamp', 'instrument', 'trade_seq', 'trade_id', 'price', 'amount', 'direction', 'contracts',
        'tick_direction', 'index_price', 'mark_price', 'iv', 'liquidation', 'block_trade_id', 'combo_id']);
    PERFORM collector_check_layout(p || '_option_orderbook_depth', depth_cols);

    EXECUTE format($t$
        CREATE TABLE IF NOT EXISTS %I (
            timestamp          timestamptz      NOT NULL,   -- exchange time of the change
            instrument         text             NOT NULL,
            best_bid_price     double precision,
            best_bid_amount    double precision,
            best_ask_price     double precision,
            best_ask_amount    double precision,
            mark_price         double precision,
            mark_iv            double precision,            -- percent, as Deribit sends it
            bid_iv             double precision,
            ask_iv             double precision,
            underlying_price   double precision,
            underlying_index   text,
            index_price        double precision,
            open_interest      double precision,
            delta              double precision,
            gamma              double precision,
            vega               double precision,
            theta              double precision,
            rho                double precision,
            last_price         double precision,
            volume_24h         double precision,            -- the ticker's stats.volume
            implied_volatility double precision,            -- = mark_iv (the name the user's tables use)
            CONSTRAINT %I UNIQUE (instrument, timestamp))$t$, p || '_option_quotes', p || '_option_quotes_key');
    EXECUTE format($t$
        CREATE TABLE IF NOT EXISTS %I (
            timestamp      timestamptz      NOT NULL,
            instrument     text             NOT NULL,
            trade_seq      bigint           NOT NULL,   -- contiguous per instrument
            trade_id       text             NOT NULL,   -- e.g. 'ETH-2696055'
            price          double precision NOT NULL,
            amount         double precision NOT NULL,
            direction      text             NOT NULL,   -- taker side: buy | sell
            contracts      double precision,
            tick_direction smallint,
            index_price    double precision,
            mark_price     double precision,
            iv             double precision,
            liquidation    text,
            block_trade_id text,
            combo_id       text,
            CONSTRAINT %I UNIQUE (instrument, trade_seq, timestamp))$t$, p || '_option_trades', p || '_option_trades_key');
    EXECUTE format($t$
        CREATE TABLE IF NOT EXISTS %I (
            timestamp      timestamptz        NOT NULL,
            instrument     text               NOT NULL,
            change_id      bigint,
            depth          integer            NOT NULL,
            bid_prices     double precision[] NOT NULL,   -- best level first
            bid_amounts    double precision[] NOT NULL,
            ask_prices     double precision[] NOT NULL,
            ask_amounts    double precision[] NOT NULL,
            best_bid_price double precision,
            best_ask_price double precision,
            mark_price     double precision,
            index_price    double precision,
            CONSTRAINT %I UNIQUE (instrument, timestamp))$t$, p || '_option_orderbook_depth',
            p || '_option_orderbook_depth_key');
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (timestamp DESC)', p || '_option_quotes_timestamp_idx', p || '_option_quotes');
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (timestamp DESC)', p || '_option_trades_timestamp_idx', p || '_option_trades');
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (timestamp DESC)', p || '_option_orderbook_depth_timestamp_idx',
                   p || '_option_orderbook_depth');
    PERFORM collector_hypertable(p || '_option_quotes', 'instrument');
    PERFORM collector_hypertable(p || '_option_trades', 'instrument', 'timestamp DESC, trade_seq DESC');
    PERFORM collector_hypertable(p || '_option_orderbook_depth', 'instrument');
    PERFORM collector_quotes_1h(c);
    INSERT INTO collector_currencies (currency) VALUES (c) ON CONFLICT DO NOTHING;
END $$;

-- TimescaleDB when it is installed AND loaded; plain tables (with one clear warning) otherwise.
-- Returns 'timescaledb' or 'plain'. Called by `collector db migrate` after the files, every run.
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
        ARRAY['perpetuals_orderbook_depth', 'instrument']];
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
        PERFORM collector_hypertable(spec[1], spec[2]);
    END LOOP;
    FOR cur IN SELECT currency FROM collector_currencies ORDER BY 1 LOOP
        PERFORM collector_ensure_currency(cur);
    END LOOP;
    RETURN 'timescaledb';
END $$;

-- The conversion of the 0001-0003 layout: every row is copied into the currency's own table.
DO $$
DECLARE
    curs text[];
    cur text;
    p text;
    quote_cols text := 'timestamp, instrument, best_bid_price, best_bid_amount, best_ask_price, best_ask_amount, '
                       'mark_price, mark_iv, bid_iv, ask_iv, underlying_price, underlying_index, index_price, open_interest';
    trade_cols text := 'timestamp, instrument, trade_seq, trade_id, price, amount, direction, contracts, tick_direction, '
                       'index_price, mark_price, iv, liquidation, block_trade_id, combo_id';
    depth_cols text := 'timestamp, instrument, change_id, depth, bid_prices, bid_amounts, ask_prices, ask_amounts, '
                       'best_bid_price, best_ask_price, mark_price, index_price';
    t text;
BEGIN
    IF to_regclass('option_quotes') IS NULL THEN
        RETURN;
    END IF;
    -- the currencies of the old layout: its views, and every currency with rows (a skip scan of the
    -- (currency, timestamp) indexes: cheap whatever the size)
    SELECT array_agg(DISTINCT c ORDER BY c) INTO curs FROM (
        SELECT upper(substr(viewname, 1, length(viewname) - length('_option_quotes'))) AS c
        FROM pg_views WHERE schemaname = current_schema() AND viewname ~ '^[a-z0-9]+_option_quotes$'
        UNION ALL
        SELECT c FROM (WITH RECURSIVE s AS (
            SELECT min(currency) AS c FROM option_quotes
            UNION ALL SELECT (SELECT min(currency) FROM option_quotes WHERE currency > s.c) FROM s WHERE s.c IS NOT NULL)
            SELECT c FROM s) q
        UNION ALL
        SELECT c FROM (WITH RECURSIVE s AS (
            SELECT min(currency) AS c FROM option_trades
            UNION ALL SELECT (SELECT min(currency) FROM option_trades WHERE currency > s.c) FROM s WHERE s.c IS NOT NULL)
            SELECT c FROM s) q
        UNION ALL
        SELECT c FROM (WITH RECURSIVE s AS (
            SELECT min(currency) AS c FROM option_orderbook_depth
            UNION ALL SELECT (SELECT min(currency) FROM option_orderbook_depth WHERE currency > s.c) FROM s WHERE s.c IS NOT NULL)
            SELECT c FROM s) q) all_currencies
    WHERE c IS NOT NULL;
    -- a currency that is not a valid name cannot have a table: refuse rather than lose its rows
    IF EXISTS (SELECT 1 FROM unnest(curs) AS c WHERE c !~ '^[A-Z0-9]{1,16}$') THEN
        RAISE EXCEPTION 'rows with currency % cannot be moved to per-currency tables (letters/digits only)',
            (SELECT string_agg(c, ', ') FROM unnest(curs) AS c WHERE c !~ '^[A-Z0-9]{1,16}$');
    END IF;

    -- the old views give way (without CASCADE: a view of the user's own on them stops the migration
    -- with PostgreSQL's message naming it, and nothing is changed)
    BEGIN
        IF collector_timescaledb_active() THEN  -- (nested: plpgsql plans the whole condition at once)
            IF EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates
                       WHERE view_schema = current_schema() AND view_name = 'option_quotes_1h') THEN
                FOREACH cur IN ARRAY coalesce(curs, ARRAY[]::text[]) LOOP
                    EXECUTE format('DROP VIEW IF EXISTS %I', lower(cur) || '_option_quotes_1h');
                END LOOP;
                DROP MATERIALIZED VIEW option_quotes_1h;
            END IF;
        END IF;
        FOREACH cur IN ARRAY coalesce(curs, ARRAY[]::text[]) LOOP
            p := lower(cur);
            FOREACH t IN ARRAY ARRAY['_option_quotes_1h', '_option_quotes', '_option_trades', '_option_orderbook_depth'] LOOP
                IF EXISTS (SELECT 1 FROM pg_views WHERE schemaname = current_schema() AND viewname = p || t) THEN
                    EXECUTE format('DROP VIEW %I', p || t);
                END IF;
            END LOOP;
        END LOOP;
        DROP VIEW IF EXISTS option_quotes_1h;
    EXCEPTION WHEN dependent_objects_still_exist THEN
        RAISE EXCEPTION '%', SQLERRM USING
            HINT = 'the per-currency views become tables in this version: drop your own views on them, run '
                   '`collector db migrate` again, then re-create your views';
    END;

    FOREACH cur IN ARRAY coalesce(curs, ARRAY[]::text[]) LOOP
        p := lower(cur);
        PERFORM collector_ensure_currency(cur);
        EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM option_quotes WHERE currency = %L ON CONFLICT DO NOTHING',
                       p || '_option_quotes', quote_cols, quote_cols, cur);
        EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM option_trades WHERE currency = %L ON CONFLICT DO NOTHING',
                       p || '_option_trades', trade_cols, trade_cols, cur);
        EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM option_orderbook_depth WHERE currency = %L ON CONFLICT DO NOTHING',
                       p || '_option_orderbook_depth', depth_cols, depth_cols, cur);
    END LOOP;
    DROP TABLE option_quotes;
    DROP TABLE option_trades;
    DROP TABLE option_orderbook_depth;
END $$;

SELECT collector_ensure_currency('BTC');
SELECT collector_ensure_currency('ETH');
