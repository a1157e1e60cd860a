-- 0009: `collector db migrate` runs collector_ensure_currency() for every configured currency at every
-- run (a new currency gets its tables). Its CREATE INDEX IF NOT EXISTS took a SHARE lock on each existing
-- table (on a hypertable: on every chunk) before finding the index there, and a re-run of the playbook
-- deadlocked against the streams' inserts (the nspawn deployment test, 2026-12-02). The same function,
-- creating an index only when it is missing.

CREATE OR REPLACE FUNCTION collector_ensure_currency(cur text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    suffix text;
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
    -- only when missing: CREATE INDEX IF NOT EXISTS takes a SHARE lock on the table (and, on a hypertable,
    -- on every chunk) before it looks, which deadlocked against the streams' inserts on a re-run
    FOREACH suffix IN ARRAY ARRAY['_option_quotes', '_option_trades', '_option_orderbook_depth'] LOOP
        IF to_regclass(quote_ident(p || suffix || '_timestamp_idx')) IS NULL THEN
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (timestamp DESC)', p || suffix || '_timestamp_idx', p || suffix);
        END IF;
    END LOOP;
    PERFORM collector_hypertable(p || '_option_quotes', 'instrument');
    PERFORM collector_hypertable(p || '_option_trades', 'instrument', 'timestamp DESC, trade_seq DESC');
    PERFORM collector_hypertable(p || '_option_orderbook_depth', 'instrument');
    PERFORM collector_quotes_1h(c);
    INSERT INTO collector_currencies (currency) VALUES (c) ON CONFLICT DO NOTHING;
END $$;
