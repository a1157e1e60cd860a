-- 0002: the user's per-currency relations, and time_bucket/first/last for plain PostgreSQL.
--
-- Option quotes, trades and depth of every currency live in one table each with a `currency` column;
-- the user reads them through views named {cur}_option_quotes, {cur}_option_trades,
-- {cur}_option_orderbook_depth (and {cur}_option_quotes_1h). collector_ensure_currency(cur) creates
-- them; `collector db migrate` calls it for every configured currency, so adding SOL needs no DDL.

-- time_bucket(), first() and last() come from TimescaleDB. On plain PostgreSQL the same queries work
-- through these stand-ins, kept in their own schema (placed after public on the search_path) so that
-- installing TimescaleDB later never collides with them.
CREATE SCHEMA IF NOT EXISTS collector_compat;

-- Buckets aligned like TimescaleDB's (origin 2000-01-03 00:00 UTC); month buckets are not supported.
CREATE OR REPLACE FUNCTION collector_compat.time_bucket(bucket_width interval, ts timestamptz)
RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    width  double precision := extract(epoch FROM bucket_width);
    origin double precision := 946857600;  -- 2000-01-03T00:00:00Z
BEGIN
    IF extract(month FROM bucket_width) <> 0 OR extract(year FROM bucket_width) <> 0 OR width <= 0 THEN
        RAISE EXCEPTION 'time_bucket without TimescaleDB supports fixed positive intervals only, not %', bucket_width;
    END IF;
    RETURN to_timestamp(floor((extract(epoch FROM ts) - origin) / width) * width + origin);
END $$;

-- first(value, time) / last(value, time) for double precision; state = {value, epoch seconds}.
CREATE OR REPLACE FUNCTION collector_compat.first_step(state float8[], value float8, ts timestamptz)
RETURNS float8[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ts IS NULL THEN state
                WHEN state IS NULL OR extract(epoch FROM ts) < state[2] THEN ARRAY[value, extract(epoch FROM ts)::float8]
                ELSE state END $$;
CREATE OR REPLACE FUNCTION collector_compat.first_merge(a float8[], b float8[])
RETURNS float8[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a WHEN b[2] < a[2] THEN b ELSE a END $$;
CREATE OR REPLACE FUNCTION collector_compat.last_step(state float8[], value float8, ts timestamptz)
RETURNS float8[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ts IS NULL THEN state
                WHEN state IS NULL OR extract(epoch FROM ts) > state[2] THEN ARRAY[value, extract(epoch FROM ts)::float8]
                ELSE state END $$;
CREATE OR REPLACE FUNCTION collector_compat.last_merge(a float8[], b float8[])
RETURNS float8[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a WHEN b[2] > a[2] THEN b ELSE a END $$;
CREATE OR REPLACE FUNCTION collector_compat.pick_value(state float8[])
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT state[1] $$;

CREATE OR REPLACE AGGREGATE collector_compat.first(float8, timestamptz) (
    SFUNC = collector_compat.first_step, STYPE = float8[],
    COMBINEFUNC = collector_compat.first_merge, FINALFUNC = collector_compat.pick_value, PARALLEL = SAFE);
CREATE OR REPLACE AGGREGATE collector_compat.last(float8, timestamptz) (
    SFUNC = collector_compat.last_step, STYPE = float8[],
    COMBINEFUNC = collector_compat.last_merge, FINALFUNC = collector_compat.pick_value, PARALLEL = SAFE);

-- Make the stand-ins visible to the user's own sessions (after public, where TimescaleDB's live).
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET search_path = "$user", public, collector_compat', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'not the database owner: run ALTER DATABASE ... SET search_path = "$user", public, collector_compat as its owner so time_bucket/first/last work without TimescaleDB';
END $$;

-- Hourly open/high/low/close of option bids and asks. A plain view here; 0003 replaces it with a
-- continuous aggregate when TimescaleDB is available.
CREATE OR REPLACE VIEW option_quotes_1h AS
SELECT collector_compat.time_bucket('1 hour', timestamp) AS hour,
       currency,
       instrument,
       collector_compat.first(best_bid_price, timestamp) AS bid_open,
       max(best_bid_price)                               AS bid_high,
       min(best_bid_price)                               AS bid_low,
       collector_compat.last(best_bid_price, timestamp)  AS bid_close,
       collector_compat.first(best_ask_price, timestamp) AS ask_open,
       max(best_ask_price)                               AS ask_high,
       min(best_ask_price)                               AS ask_low,
       collector_compat.last(best_ask_price, timestamp)  AS ask_close,
       count(*)                                          AS quotes
FROM option_quotes
GROUP BY 1, 2, 3;

CREATE OR REPLACE FUNCTION collector_ensure_currency(cur text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c text := upper(cur);
    t text;
BEGIN
    IF c !~ '^[A-Z0-9]{1,16}$' THEN
        RAISE EXCEPTION 'invalid currency %: letters and digits only', cur;
    END IF;
    FOREACH t IN ARRAY ARRAY['option_quotes', 'option_trades', 'option_orderbook_depth', 'option_quotes_1h'] LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %I AS SELECT * FROM %I WHERE currency = %L',
                       lower(c) || '_' || t, t, c);
    END LOOP;
END $$;

SELECT collector_ensure_currency('BTC');
SELECT collector_ensure_currency('ETH');
